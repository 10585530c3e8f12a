//! The handle table's encoding: an [`EnumHandle`] packs the table's identity, a slot index
//! and the slot's generation into one `u64`, so that any 64-bit value a caller presents
//! can be checked without touching memory it does not name.

use crate::sync::next_table_id;

/// Bits of the slot index: a table has at most `1 << SLOT_BITS` enumeration slots.
pub(crate) const SLOT_BITS: u32 = 12;
/// Bits of the table identity.
pub(crate) const TABLE_BITS: u32 = 20;
/// The largest `max_enumerations` a table accepts (the handle layout names 12 bits of slot).
///
/// ```
/// let t = rtm::RouteTable::<rtm::Ipv4Net, ()>::with_max_enumerations(1 << 20);
/// assert_eq!(t.max_enumerations(), rtm::MAX_ENUMERATIONS);
/// ```
pub const MAX_ENUMERATIONS: usize = 1 << SLOT_BITS;

/// An RTM-style enumeration handle: a plain value that names an open enumeration of one
/// table. Closed, stale, forged and foreign handles are rejected with
/// [`Error::InvalidHandle`](crate::Error::InvalidHandle), never undefined behaviour.
///
/// ```
/// use rtm::{Criteria, EnumHandle, Error, Ipv4Net, RouteTable};
/// let t = RouteTable::<Ipv4Net, u32>::new();
/// let h = t.create_enumeration_handle(Criteria::all()).unwrap();
/// let raw = h.into_raw();                  // hand it to C, store it, ...
/// let h = EnumHandle::from_raw(raw);
/// assert_eq!(t.enumerate_get_next_route(h), Err(Error::NoMoreRoutes));
/// t.close_enumeration_handle(h).unwrap();
/// assert_eq!(t.close_enumeration_handle(h), Err(Error::InvalidHandle));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnumHandle(u64);

impl EnumHandle {
    /// A handle from any 64-bit value (as a C caller would pass one).
    ///
    /// ```
    /// let h = rtm::EnumHandle::from_raw(42);
    /// assert_eq!(h.into_raw(), 42);
    /// ```
    pub fn from_raw(raw: u64) -> EnumHandle {
        EnumHandle(raw)
    }

    /// The handle's 64-bit value.
    ///
    /// ```
    /// let h = rtm::EnumHandle::from_raw(7);
    /// assert_eq!(h.into_raw(), 7);
    /// ```
    pub fn into_raw(self) -> u64 {
        self.0
    }

    /// The identity of the table this handle claims to belong to: the value
    /// [`RouteTable::table_id`](crate::RouteTable::table_id) of that table. A registry of
    /// tables (a C layer, where next and close take only the handle) finds the table here;
    /// the table itself then validates the rest of the handle.
    ///
    /// ```
    /// use rtm::{Criteria, Ipv4Net, RouteTable};
    /// let t = RouteTable::<Ipv4Net, u32>::new();
    /// let h = t.create_enumeration_handle(Criteria::all()).unwrap();
    /// assert_eq!(h.table_id(), t.table_id());
    /// # t.close_enumeration_handle(h).unwrap();
    /// ```
    pub fn table_id(self) -> u64 {
        self.unpack().0 as u64
    }

    pub(crate) fn pack(table: u32, slot: usize, gen: u32) -> EnumHandle {
        debug_assert!(slot < MAX_ENUMERATIONS && table < 1 << TABLE_BITS);
        EnumHandle((table as u64) << (64 - TABLE_BITS) | (slot as u64) << 32 | gen as u64)
    }

    /// `(table, slot, generation)`.
    pub(crate) fn unpack(self) -> (u32, usize, u32) {
        let table = (self.0 >> (64 - TABLE_BITS)) as u32;
        let slot = ((self.0 >> 32) & ((1 << SLOT_BITS) - 1)) as usize;
        (table, slot, self.0 as u32)
    }
}

/// A fresh table identity in `1..2^TABLE_BITS`. Identities repeat only after 2^20 - 1
/// tables have been created in one process.
pub(crate) fn table_id() -> u32 {
    loop {
        let id = next_table_id() & ((1 << TABLE_BITS) - 1);
        if id != 0 {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_unpack_round_trip() {
        let h = EnumHandle::pack(0xfffff, 4095, u32::MAX);
        assert_eq!(h.unpack(), (0xfffff, 4095, u32::MAX));
        let h = EnumHandle::pack(1, 0, 1);
        assert_eq!(h.unpack(), (1, 0, 1));
        assert_eq!(EnumHandle::from_raw(h.into_raw()), h);
    }
}

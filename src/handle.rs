//! The handle table's encoding: an [`EnumHandle`] packs the table's identity and a serial
//! that names one slot under one generation into a `u64`, so that any 64-bit value a
//! caller presents can be checked without touching memory it does not name.
//!
//! # Layout
//!
//! ```text
//!  63        52 51                                                0
//! +------------+---------------------------------------------------+
//! | table id   | serial = generation * max_enumerations + slot      |
//! | (12 bits)  | (52 bits)                                          |
//! +------------+---------------------------------------------------+
//! ```
//!
//! The serial is mixed-radix: a table with `n` slots decodes `slot = serial % n`,
//! `generation = serial / n`. Its slots share the table's whole 2^52 serial space, each
//! getting `floor(2^52 / n)` generations, whatever `n` is (a power of two or not).
//!
//! **A table never wears out in practice.** Only handles use generations: an RAII
//! [`Enumeration`](crate::Enumeration) (and anything else that keeps its own cursor) gives
//! its slot back under the same generation. Closing a handle moves its slot to the next
//! generation, and the free slots are handed out in rotation (next fit from where the last
//! open stopped), so a steady open/close load spreads over every free slot. A table that
//! opens and closes 10 million handles per second for 10 years uses
//! 10^7 * 3.156 * 10^8 s = 3.2 * 10^15 < 2^52 = 4.5 * 10^15 serials: with its handles
//! spread over its slots, no slot reaches its last generation. The worst case is one slot
//! cycling alone while every other slot is held open: it has `2^52 / n` generations (2^52
//! for a one-slot table, 2^42 = 4.4 * 10^12 for the default 1024). A slot whose generation
//! would pass its last one is retired rather than reused (`Stats::retired_slots`), so no
//! handle value is ever issued twice by a table.
//!
//! **Table ids are leased, not counted.** 12 bits name 4095 ids (0 is never a table's:
//! the handle 0 is invalid everywhere). A table takes a free id when it is built and gives
//! it back when dropped, so at most one live table has a given id (a registry keyed by
//! [`RouteTable::table_id`](crate::RouteTable::table_id) stays unambiguous). With each id
//! the process keeps a *floor*: the first serial no table holding that id has issued. A
//! table starts every slot at the first generation whose serials are all at or above the
//! floor, and raises the floor past every serial it issued when it is dropped. So a handle
//! of a dropped table decodes, on a later table with the same id, to a generation below
//! every generation that table uses, and is invalid there: no handle value is ever valid
//! for two different enumerations in one process. An id whose floor passed 2^51 is not
//! leased again (at that point a table holding it may have used up half of its serials).
//! If all 4095 ids are held by live tables, a new table gets id 0: it works in every way
//! except that it cannot open handles ([`Error::NoSystemResources`](crate::Error)).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Bits of the table identity.
const ID_BITS: u32 = 12;
/// Bits of the serial (slot and generation).
pub(crate) const SERIAL_BITS: u32 = 64 - ID_BITS;
/// The serial space of one table id.
pub(crate) const SERIALS: u64 = 1 << SERIAL_BITS;
/// Table ids in use are `1..IDS`.
const IDS: usize = 1 << ID_BITS;
/// An id whose floor reached this is not leased any more.
const WORN: u64 = 1 << (SERIAL_BITS - 1);

/// The largest `max_enumerations` a table accepts. It bounds how few generations a slot
/// can have: at least `2^52 / 4096 = 2^40` (see the module's arithmetic).
///
/// ```
/// let t = rtm::RouteTable::<rtm::Ipv4Net, ()>::with_max_enumerations(1 << 20);
/// assert_eq!(t.max_enumerations(), rtm::MAX_ENUMERATIONS);
/// ```
pub const MAX_ENUMERATIONS: usize = 4096;

/// An RTM-style enumeration handle: a plain value that names an open enumeration of one
/// table. Closed, stale, forged and foreign handles, and handles of dropped tables, are
/// rejected with [`Error::InvalidHandle`](crate::Error::InvalidHandle), never undefined
/// behaviour; a handle that another thread's call is using gives
/// [`Error::Busy`](crate::Error::Busy) and stays valid. The slot of an RAII
/// [`Enumeration`](crate::Enumeration) is never reachable through a handle.
///
/// Layout: the table id in the top 12 bits, then a 52-bit serial naming a slot and its
/// generation. No handle value is ever valid for two different enumerations in one
/// process, and a table issues each handle value at most once; a table can issue
/// 2^52 = 4.5 * 10^15 handles (ten years at ten million opens a second) before one of
/// its slots is retired.
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
        self.0 >> SERIAL_BITS
    }

    pub(crate) fn pack(table: u16, serial: u64) -> EnumHandle {
        debug_assert!((table as usize) < IDS && serial < SERIALS);
        EnumHandle((table as u64) << SERIAL_BITS | serial)
    }

    /// The serial: slot and generation, mixed-radix in the table's slot count.
    pub(crate) fn serial(self) -> u64 {
        self.0 & (SERIALS - 1)
    }
}

/// Per table id: `floor << 1 | leased`. Plain `std` atomics even under loom: the registry
/// is process-wide, not part of any protocol a model checks.
static REGISTRY: [AtomicU64; IDS] = [const { AtomicU64::new(0) }; IDS];
/// Where the next lease search starts, so ids are used in rotation.
static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// A table's lease on an id, and the floor of serials it may use.
#[derive(Debug)]
pub(crate) struct IdLease {
    /// `0`: no id (every id was leased), so no handles.
    pub(crate) id: u16,
    /// Every serial this table issues is at least this.
    pub(crate) floor: u64,
}

impl IdLease {
    /// Leases a free id: O(1) unless thousands of tables are alive.
    pub(crate) fn acquire() -> IdLease {
        for _ in 1..IDS {
            let id = 1 + NEXT_ID.fetch_add(1, Ordering::Relaxed) % (IDS - 1);
            let e = &REGISTRY[id];
            let cur = e.load(Ordering::Relaxed);
            // Relaxed: the floor is the word itself, so the CAS reads the value the last
            // holder stored (coherence); nothing else is published through it.
            if cur & 1 == 0
                && cur >> 1 < WORN
                && e.compare_exchange(cur, cur | 1, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                return IdLease {
                    id: id as u16,
                    floor: cur >> 1,
                };
            }
        }
        IdLease { id: 0, floor: 0 }
    }

    /// Gives the id back, with `used`: no serial at or above it was issued under the lease.
    pub(crate) fn release(&self, used: u64) {
        if self.id != 0 {
            let floor = used.max(self.floor).min(SERIALS);
            REGISTRY[self.id as usize].store(floor << 1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trip() {
        let h = EnumHandle::pack(4095, SERIALS - 1);
        assert_eq!((h.table_id(), h.serial()), (4095, SERIALS - 1));
        let h = EnumHandle::pack(1, 0);
        assert_eq!((h.table_id(), h.serial()), (1, 0));
        assert_eq!(EnumHandle::from_raw(h.into_raw()), h);
    }

    #[test]
    fn floors_only_rise() {
        let a = IdLease::acquire();
        assert_ne!(a.id, 0);
        a.release(a.floor + 1000);
        // Another table may lease the id meanwhile, but it can only raise the floor.
        assert!(REGISTRY[a.id as usize].load(Ordering::Relaxed) >> 1 >= a.floor + 1000);
    }
}

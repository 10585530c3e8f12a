//! The RAII enumeration: an iterator over one snapshot that closes itself when dropped.

use std::fmt;

use crate::cursor::Cursor;
use crate::error::Error;
use crate::prefix::Prefix;
use crate::route::{Route, Version};
use crate::table::RouteTable;

/// An open enumeration of a [`RouteTable`]: it yields, in ascending key order, exactly the
/// routes matching its criteria that were live at its snapshot, whatever writers do
/// meanwhile. It holds no epoch guard between calls, so it may live long and move between
/// threads; [`close`](Enumeration::close) or drop releases its slot and snapshot.
///
/// ```
/// use rtm::{Criteria, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
/// let t = RouteTable::<Ipv4Net, u32>::new();
/// let k = RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId(1), InterfaceId(1), "192.0.2.1".parse().unwrap());
/// t.add_route(Route::new(k, 1)).unwrap();
/// let mut e = t.enumerate(Criteria::all()).unwrap();
/// t.add_route(Route::new(k, 2)).unwrap();
/// let r = std::thread::scope(|s| s.spawn(move || e.next()).join().unwrap());
/// assert_eq!(r.unwrap().value, 1);
/// ```
pub struct Enumeration<'t, P: Prefix, V: Clone + Send + Sync + 'static> {
    table: &'t RouteTable<P, V>,
    slot: usize,
    gen: u64,
    cursor: Cursor<P>,
    open: bool,
}

impl<'t, P: Prefix, V: Clone + Send + Sync + 'static> Enumeration<'t, P, V> {
    pub(crate) fn new(
        table: &'t RouteTable<P, V>,
        slot: usize,
        gen: u64,
        cursor: Cursor<P>,
    ) -> Self {
        Self {
            table,
            slot,
            gen,
            cursor,
            open: true,
        }
    }

    /// The version this enumeration sees.
    ///
    /// ```
    /// let t = rtm::RouteTable::<rtm::Ipv4Net, ()>::new();
    /// let e = t.enumerate(rtm::Criteria::all()).unwrap();
    /// assert_eq!(e.snapshot(), t.version());
    /// ```
    pub fn snapshot(&self) -> Version {
        Version(self.cursor.snapshot())
    }

    /// Closes the enumeration, releasing its slot and its snapshot (dropping does the same).
    ///
    /// ```
    /// let t = rtm::RouteTable::<rtm::Ipv4Net, ()>::new();
    /// let e = t.enumerate(rtm::Criteria::all()).unwrap();
    /// assert_eq!(e.close(), Ok(()));
    /// assert_eq!(t.stats().open_enumerations, 0);
    /// ```
    pub fn close(mut self) -> Result<(), Error> {
        self.release();
        Ok(())
    }

    fn release(&mut self) {
        if std::mem::replace(&mut self.open, false) {
            self.table.close_owned(self.slot, self.gen);
        }
    }
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> Iterator for Enumeration<'_, P, V> {
    type Item = Route<P, V>;

    fn next(&mut self) -> Option<Route<P, V>> {
        self.table.next_owned(&mut self.cursor)
    }
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> Drop for Enumeration<'_, P, V> {
    fn drop(&mut self) {
        self.release();
    }
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> fmt::Debug for Enumeration<'_, P, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enumeration")
            .field("snapshot", &self.cursor.snapshot())
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

//! The RAII enumerations: iterators over one snapshot that close themselves when dropped.
//!
//! [`Enumeration`] borrows its table; [`OwnedEnumeration`] holds an `Arc` of it, so it is
//! `'static` and can be stored or sent anywhere (as `tokio`'s `lock_owned` or `arc-swap`'s
//! guards do). Both are the same code: a [`Core`] generic over how the table is held.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::criteria::Criteria;
use crate::cursor::{Cursor, Mark};
use crate::error::Error;
use crate::handle::EnumHandle;
use crate::prefix::Prefix;
use crate::route::{Route, Version};
use crate::slots::Kind;
use crate::table::RouteTable;

/// Routes read under one epoch pin before the pin is renewed, in a batch read.
const PIN_SPAN: usize = 1024;

/// What both enumerations are: a table holder `T`, the slot that pins the snapshot, and
/// the cursor. The wrappers release the slot once, on close or drop.
struct Core<T, P: Prefix> {
    table: T,
    slot: usize,
    gen: u64,
    cursor: Cursor<P>,
    open: bool,
}

impl<T, P, V> Core<T, P>
where
    T: Deref<Target = RouteTable<P, V>>,
    P: Prefix,
    V: Clone + Send + Sync + 'static,
{
    fn open(table: T, criteria: Criteria<P>) -> Result<Self, Error> {
        let (slot, gen, cursor) = table.open_raii(criteria)?;
        Ok(Self {
            table,
            slot,
            gen,
            cursor,
            open: true,
        })
    }

    fn next(&mut self) -> Option<Route<P, V>> {
        self.table.next_owned(&mut self.cursor)
    }

    fn next_batch(&mut self, max: usize, out: &mut Vec<Route<P, V>>) -> usize {
        self.table.next_batch_of(&mut self.cursor, max, out)
    }

    fn release(&mut self) {
        if std::mem::replace(&mut self.open, false) {
            self.table.close_owned(self.slot, self.gen);
        }
    }
}

/// An open enumeration of a [`RouteTable`]: it yields, in ascending key order, exactly the
/// routes matching its criteria that were live at its snapshot, whatever writers do
/// meanwhile. It holds no epoch guard between calls, so it may live long and move between
/// threads; [`close`](Enumeration::close) or drop releases its slot and snapshot. Once
/// exhausted it keeps returning `None` and stays open, holding its slot and snapshot,
/// until it is closed or dropped.
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
    core: Core<&'t RouteTable<P, V>, P>,
}

/// An [`Enumeration`] that owns a share of its table (`Arc<RouteTable>`), so it is
/// `'static + Send`: it can be kept in a struct, returned, or moved into a spawned thread
/// or task without borrowing the table. It makes the same promises, and is opened by
/// [`RouteTable::enumerate_owned`].
///
/// ```
/// use std::sync::Arc;
/// use rtm::{Criteria, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
/// let t = Arc::new(RouteTable::<Ipv4Net, u32>::new());
/// let k = RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId::BGP, InterfaceId(1), "192.0.2.1".parse().unwrap());
/// t.add_route(Route::new(k, 1)).unwrap();
/// let dump = t.enumerate_owned(Criteria::all()).unwrap();
/// t.delete_route(&k).unwrap();
/// let seen = std::thread::spawn(move || dump.map(|r| r.value).collect::<Vec<_>>()).join().unwrap();
/// assert_eq!(seen, [1]);
/// ```
pub struct OwnedEnumeration<P: Prefix, V: Clone + Send + Sync + 'static> {
    core: Core<Arc<RouteTable<P, V>>, P>,
}

/// The methods both enumerations share, written once.
macro_rules! enumeration_methods {
    ($open:literal) => {
        /// The version this enumeration sees.
        ///
        /// ```
        /// # use std::sync::Arc;
        /// let t = Arc::new(rtm::RouteTable::<rtm::Ipv4Net, ()>::new());
        #[doc = concat!("let e = t.", $open, "(rtm::Criteria::all()).unwrap();")]
        /// assert_eq!(e.snapshot(), t.version());
        /// ```
        pub fn snapshot(&self) -> Version {
            Version(self.core.cursor.snapshot())
        }

        /// Appends up to `max` next routes to `out` under one epoch pin, and returns how
        /// many it appended: fewer than `max` only when the enumeration is exhausted. A
        /// dump read in batches pays the pin and the call once per batch, not per route.
        ///
        /// ```
        /// use std::sync::Arc;
        /// use rtm::{Criteria, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
        /// let t = Arc::new(RouteTable::<Ipv4Net, u32>::new());
        /// for i in 0..5u32 {
        ///     let p = Ipv4Net::new(std::net::Ipv4Addr::from(i << 8), 24).unwrap();
        ///     t.add_route(Route::new(RouteKey::new(p, ProtocolId::RIP, InterfaceId(1), "192.0.2.1".parse().unwrap()), i)).unwrap();
        /// }
        #[doc = concat!("let mut e = t.", $open, "(Criteria::all()).unwrap();")]
        /// let mut page = Vec::new();
        /// assert_eq!(e.next_batch(3, &mut page), 3);
        /// assert_eq!(e.next_batch(3, &mut page), 2);
        /// assert_eq!(e.next_batch(3, &mut page), 0);
        /// assert_eq!(page.iter().map(|r| r.value).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        /// ```
        pub fn next_batch(&mut self, max: usize, out: &mut Vec<Route<P, V>>) -> usize {
            self.core.next_batch(max, out)
        }

        /// Closes the enumeration, releasing its slot and its snapshot (dropping does the
        /// same).
        ///
        /// ```
        /// # use std::sync::Arc;
        /// let t = Arc::new(rtm::RouteTable::<rtm::Ipv4Net, ()>::new());
        #[doc = concat!("let e = t.", $open, "(rtm::Criteria::all()).unwrap();")]
        /// assert_eq!(e.close(), Ok(()));
        /// assert_eq!(t.stats().open_enumerations, 0);
        /// ```
        pub fn close(mut self) -> Result<(), Error> {
            self.core.release();
            Ok(())
        }
    };
}

impl<'t, P: Prefix, V: Clone + Send + Sync + 'static> Enumeration<'t, P, V> {
    enumeration_methods!("enumerate");

    /// The cursor, for a walk that acts on the nodes it visits (the block operations).
    pub(crate) fn cursor_mut(&mut self) -> &mut Cursor<P> {
        &mut self.core.cursor
    }
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> OwnedEnumeration<P, V> {
    enumeration_methods!("enumerate_owned");
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> Iterator for Enumeration<'_, P, V> {
    type Item = Route<P, V>;

    fn next(&mut self) -> Option<Route<P, V>> {
        self.core.next()
    }
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> Iterator for OwnedEnumeration<P, V> {
    type Item = Route<P, V>;

    fn next(&mut self) -> Option<Route<P, V>> {
        self.core.next()
    }
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> Drop for Enumeration<'_, P, V> {
    fn drop(&mut self) {
        self.core.release();
    }
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> Drop for OwnedEnumeration<P, V> {
    fn drop(&mut self) {
        self.core.release();
    }
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> fmt::Debug for Enumeration<'_, P, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enumeration")
            .field("snapshot", &self.core.cursor.snapshot())
            .field("slot", &self.core.slot)
            .finish_non_exhaustive()
    }
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> fmt::Debug for OwnedEnumeration<P, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedEnumeration")
            .field("snapshot", &self.core.cursor.snapshot())
            .field("slot", &self.core.slot)
            .finish_non_exhaustive()
    }
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> RouteTable<P, V> {
    /// An RAII enumeration over a snapshot taken now; closing or dropping it releases the
    /// snapshot. [`Error::NoSystemResources`] when no slot is free,
    /// [`Error::InvalidParameter`] for a prefix with host bits set in `criteria`.
    ///
    /// ```
    /// use rtm::{Criteria, Ipv4Net, RouteTable};
    /// let t = RouteTable::<Ipv4Net, u32>::new();
    /// let e = t.enumerate(Criteria::all().within("10.0.0.0/8".parse().unwrap())).unwrap();
    /// assert_eq!(e.count(), 0);
    /// ```
    pub fn enumerate(&self, criteria: Criteria<P>) -> Result<Enumeration<'_, P, V>, Error> {
        Ok(Enumeration {
            core: Core::open(self, criteria)?,
        })
    }

    /// Opens a handle-based enumeration over a snapshot taken now (RTMv1's
    /// `RtmCreateEnumerationHandle`). Errors as [`RouteTable::enumerate`].
    ///
    /// ```
    /// use rtm::{Criteria, Ipv4Net, RouteTable};
    /// let t = RouteTable::<Ipv4Net, u32>::new();
    /// let h = t.create_enumeration_handle(Criteria::all()).unwrap();
    /// assert_eq!(t.stats().open_enumerations, 1);
    /// t.close_enumeration_handle(h).unwrap();
    /// ```
    pub fn create_enumeration_handle(&self, criteria: Criteria<P>) -> Result<EnumHandle, Error> {
        criteria.validate()?;
        let mut criteria = Some(criteria);
        let (slot, gen, _) = self
            .slots
            .open(Kind::Handle, &self.clock, |s| {
                Some(Cursor::new(s, criteria.take().expect("called once")))
            })
            .ok_or(Error::NoSystemResources)?;
        Ok(self.slots.handle(slot, gen))
    }

    /// The next route of a handle's enumeration (RTMv1's `RtmEnumerateGetNextRoute`):
    /// [`Error::NoMoreRoutes`] once exhausted and on every later call until the handle is
    /// closed (it stays open),
    /// [`Error::InvalidHandle`] for a closed, stale, forged or foreign handle,
    /// [`Error::Busy`] while another call on the same handle is in flight (the handle
    /// stays valid). If `V::clone` panics, the panic propagates to the caller and the
    /// handle stays open and usable, positioned after the route whose clone panicked.
    ///
    /// ```
    /// use rtm::{Criteria, Error, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
    /// let t = RouteTable::<Ipv4Net, u32>::new();
    /// let k = RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId(1), InterfaceId(1), "192.0.2.1".parse().unwrap());
    /// t.add_route(Route::new(k, 1)).unwrap();
    /// let h = t.create_enumeration_handle(Criteria::all()).unwrap();
    /// assert_eq!(t.enumerate_get_next_route(h).unwrap().key, k);
    /// assert_eq!(t.enumerate_get_next_route(h), Err(Error::NoMoreRoutes));
    /// assert_eq!(t.enumerate_get_next_route(rtm::EnumHandle::from_raw(12345)), Err(Error::InvalidHandle));
    /// # t.close_enumeration_handle(h).unwrap();
    /// ```
    pub fn enumerate_get_next_route(&self, h: EnumHandle) -> Result<Route<P, V>, Error> {
        let r = self.slots.with_handle(h, |cursor| {
            let guard = self.epoch.pin();
            cursor.next(&self.list, &self.clock, &guard)
        })?;
        r.ok_or(Error::NoMoreRoutes)
    }

    /// Closes a handle (RTMv1's `RtmCloseEnumerationHandle`), releasing its slot and its
    /// snapshot. Every later use of the handle is [`Error::InvalidHandle`].
    ///
    /// ```
    /// use rtm::{Criteria, Error, Ipv4Net, RouteTable};
    /// let t = RouteTable::<Ipv4Net, u32>::new();
    /// let h = t.create_enumeration_handle(Criteria::all()).unwrap();
    /// assert_eq!(t.close_enumeration_handle(h), Ok(()));
    /// assert_eq!(t.enumerate_get_next_route(h), Err(Error::InvalidHandle));
    /// ```
    pub fn close_enumeration_handle(&self, h: EnumHandle) -> Result<(), Error> {
        self.slots.close_handle(h)?;
        self.after_close();
        Ok(())
    }

    /// An RAII enumeration over a snapshot taken now, like [`RouteTable::enumerate`], that
    /// holds a clone of this `Arc` instead of a borrow: it is `'static + Send`. Errors as
    /// [`RouteTable::enumerate`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use rtm::{Criteria, Error, Ipv4Net, OwnedEnumeration, RouteTable};
    /// let t = Arc::new(RouteTable::<Ipv4Net, u32>::with_max_enumerations(1));
    /// let e: OwnedEnumeration<Ipv4Net, u32> = t.enumerate_owned(Criteria::all()).unwrap();
    /// assert_eq!(t.enumerate_owned(Criteria::all()).err(), Some(Error::NoSystemResources));
    /// drop(e);
    /// let bad = Criteria::all().network("10.1.2.3/8".parse().unwrap());
    /// assert_eq!(t.enumerate_owned(bad).err(), Some(Error::InvalidParameter));
    /// ```
    pub fn enumerate_owned(
        self: &Arc<Self>,
        criteria: Criteria<P>,
    ) -> Result<OwnedEnumeration<P, V>, Error> {
        Ok(OwnedEnumeration {
            core: Core::open(Arc::clone(self), criteria)?,
        })
    }

    /// Appends up to `max` next routes of a handle's enumeration to `out`, under one epoch
    /// pin, and returns how many (RTMv2's `RtmGetEnumRoutes`). `Ok(0)` means exhausted
    /// (the handle stays open). [`Error::InvalidParameter`] when `max` is 0,
    /// [`Error::InvalidHandle`] as for [`RouteTable::enumerate_get_next_route`].
    ///
    /// ```
    /// use rtm::{Criteria, Error, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
    /// let t = RouteTable::<Ipv4Net, u32>::new();
    /// for i in 0..300u32 {
    ///     let p = Ipv4Net::new(std::net::Ipv4Addr::from(i << 8), 24).unwrap();
    ///     t.add_route(Route::new(RouteKey::new(p, ProtocolId::OSPF, InterfaceId(1), "192.0.2.1".parse().unwrap()), i)).unwrap();
    /// }
    /// let h = t.create_enumeration_handle(Criteria::all()).unwrap();
    /// let mut page = Vec::with_capacity(256);
    /// assert_eq!(t.enumerate_get_next_routes(h, 256, &mut page), Ok(256));
    /// page.clear();
    /// assert_eq!(t.enumerate_get_next_routes(h, 256, &mut page), Ok(44));
    /// assert_eq!(page.last().unwrap().value, 299);
    /// assert_eq!(t.enumerate_get_next_routes(h, 256, &mut page), Ok(0));
    /// assert_eq!(t.enumerate_get_next_routes(h, 0, &mut page), Err(Error::InvalidParameter));
    /// t.close_enumeration_handle(h).unwrap();
    /// assert_eq!(t.enumerate_get_next_routes(h, 256, &mut page), Err(Error::InvalidHandle));
    /// ```
    pub fn enumerate_get_next_routes(
        &self,
        h: EnumHandle,
        max: usize,
        out: &mut Vec<Route<P, V>>,
    ) -> Result<usize, Error> {
        if max == 0 {
            // Ok(0) means exhausted; a request for nothing would be indistinguishable.
            return Err(Error::InvalidParameter);
        }
        self.on_handle(h, |cursor| self.next_batch_of(cursor, max, out))
    }

    /// The snapshot version a handle's enumeration sees. [`Error::InvalidHandle`] as for
    /// [`RouteTable::enumerate_get_next_route`].
    ///
    /// ```
    /// use rtm::{Criteria, Error, Ipv4Net, RouteTable};
    /// let t = RouteTable::<Ipv4Net, u32>::new();
    /// let h = t.create_enumeration_handle(Criteria::all()).unwrap();
    /// assert_eq!(t.enumeration_snapshot(h), Ok(t.version()));
    /// t.close_enumeration_handle(h).unwrap();
    /// assert_eq!(t.enumeration_snapshot(h), Err(Error::InvalidHandle));
    /// ```
    pub fn enumeration_snapshot(&self, h: EnumHandle) -> Result<Version, Error> {
        self.on_handle(h, |cursor| Version(cursor.snapshot()))
    }

    /// Runs `f` on the cursor of handle `h`, with the handle errors of the table.
    fn on_handle<R>(&self, h: EnumHandle, f: impl FnOnce(&mut Cursor<P>) -> R) -> Result<R, Error> {
        Ok(self.slots.with_handle(h, f)?)
    }

    /// Takes a slot and a snapshot for an RAII enumeration.
    fn open_raii(&self, criteria: Criteria<P>) -> Result<(usize, u64, Cursor<P>), Error> {
        criteria.validate()?;
        let (slot, gen, snapshot) = self
            .slots
            .open(Kind::Owned, &self.clock, |_| None)
            .ok_or(Error::NoSystemResources)?;
        Ok((slot, gen, Cursor::new(snapshot, criteria)))
    }

    /// Reads up to `max` routes of `cursor` into `out`, renewing the epoch pin every
    /// [`PIN_SPAN`] routes so that a huge batch does not hold back reclamation.
    ///
    /// All or nothing: if the embedder's `Clone` panics, the unwinding puts the cursor
    /// back where the batch started and `out` back to its length then, so the next call
    /// returns what this one would have.
    pub(crate) fn next_batch_of(
        &self,
        cursor: &mut Cursor<P>,
        max: usize,
        out: &mut Vec<Route<P, V>>,
    ) -> usize {
        let mut batch = Undo {
            mark: cursor.mark(),
            len: out.len(),
            cursor,
            out,
            done: false,
        };
        let mut guard = self.epoch.pin();
        let mut n = 0;
        while n < max {
            let want = (max - n).min(PIN_SPAN);
            let got = batch
                .cursor
                .next_batch(&self.list, &self.clock, &guard, want, batch.out);
            n += got;
            if got < want {
                break;
            }
            guard.repin();
        }
        batch.done = true;
        n
    }
}

/// Undoes a batch read that a panic interrupted (see [`RouteTable::next_batch_of`]).
struct Undo<'a, P: Prefix, V> {
    cursor: &'a mut Cursor<P>,
    out: &'a mut Vec<Route<P, V>>,
    mark: Mark,
    len: usize,
    /// Set when the batch is complete: nothing to undo.
    done: bool,
}

impl<P: Prefix, V> Drop for Undo<'_, P, V> {
    fn drop(&mut self) {
        if !self.done {
            self.out.truncate(self.len);
            self.cursor.rewind(self.mark);
        }
    }
}

//! Feeds: what changed since a snapshot, read from the journal.
//!
//! A feed is a position in the journal (its *floor*: every change up to it has been
//! returned), its criteria, and a slot that publishes the floor to the reclaimer. To turn
//! the commit at `t` into a [`Change`], it reads the table at `t - 1` and at `t`: the key's
//! version before and after for plain criteria, the network's best route before and after
//! for `best_only`, its best set before and after for `best_multipath`. The reclaimer
//! keeps every version newer than the lowest floor (see `reclaim`), so both reads see
//! exactly what the table held then.
//!
//! Unless the feed fell a whole journal behind: then the reclaimer no longer honours its
//! floor and may free what the commit names. The feed finds that out *before* it reads:
//! after pinning, a SeqCst fence, then the horizon the reclaimer announced. A reclaimer
//! that may prune for position `t` announced `now >= t + capacity` first; if the
//! announcement is before our fence in the single total order we see it and report
//! `Lagged`, and if it is after, our pin came first and the epoch keeps everything it
//! unlinks alive until we unpin. The same check after the reads rejects a read that such a
//! reclaimer overlapped (its unlinking stores follow its announcement; had we read one,
//! the announcement would precede our second fence).

use std::collections::VecDeque;
use std::fmt;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::criteria::{Best as Choice, Criteria};
use crate::cursor::route as route_of;
use crate::enumeration::{Enumeration, OwnedEnumeration};
use crate::error::Error;
use crate::hash::FastMap;
use crate::journal::Read;
use crate::prefix::Prefix;
use crate::route::{Route, RouteKey, Version};
use crate::skiplist::Node;
use crate::sync::{fence, Guard, Ordering};
use crate::table::RouteTable;
use crate::version::{Entry, VersionNode};

/// One committed change of what an enumeration with the feed's criteria would return.
///
/// For criteria without `best_only`, `old` and `new` are the same key's route before and
/// after the commit (`None`: absent from the result, or filtered out). For `best_only`
/// criteria they are the network's entry before and after: its best route if that matches
/// the other filters, else `None`, so their keys may differ. At least one is `Some`; they
/// are equal only when the commit rewrote a route with an identical one.
///
/// For [`best_multipath`](Criteria::best_multipath) criteria the result is "the routes in
/// their network's best set", and changes are per route, as for plain criteria: `old` and
/// `new` are the same key's route, before and after, as members of the set. A route that
/// joins its network's best set is `(None, route)`, one that leaves it `(route, None)`, one
/// that stays in it but is rewritten `(before, after)`. One commit (even of one route: a
/// better path evicts all the equal ones) may change several routes of a network's set:
/// its changes come one after another, in key order, network by network, and
/// [`Feed::version`] passes the commit only after the last. So a consumer that removes
/// `old` and inserts `new` holds every network's exact best set at each version, and one
/// that wants to act once per network per commit (a forwarding plane installing a group)
/// acts when the next change has another network or version, or [`Feed::next_commit`]
/// gives the whole commit at once.
///
/// ```
/// use rtm::{Criteria, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
/// let t = RouteTable::<Ipv4Net, u32>::new();
/// let k = |hop: &str| RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId::BGP, InterfaceId(1), hop.parse().unwrap());
/// let mut feed = t.feed(Criteria::all().best_multipath()).unwrap();
/// t.add_route(Route { metric: 5, ..Route::new(k("192.0.2.1"), 1) }).unwrap();
/// t.add_route(Route { metric: 5, ..Route::new(k("192.0.2.2"), 2) }).unwrap(); // a second path
/// t.add_route(Route { metric: 1, ..Route::new(k("192.0.2.3"), 3) }).unwrap(); // better: evicts both
/// let mut seen = Vec::new();
/// while let Some(c) = feed.try_next().unwrap() {
///     seen.push((c.old.map(|r| r.value), c.new.map(|r| r.value)));
/// }
/// assert_eq!(seen, [(None, Some(1)), (None, Some(2)), (Some(1), None), (Some(2), None), (None, Some(3))]);
/// ```
///
/// ```
/// use rtm::{Criteria, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
/// let t = RouteTable::<Ipv4Net, u32>::new();
/// let mut feed = t.feed(Criteria::all()).unwrap();
/// let k = RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId(14), InterfaceId(1), "192.0.2.1".parse().unwrap());
/// t.add_route(Route::new(k, 1)).unwrap();
/// let c = feed.try_next().unwrap().unwrap();
/// assert_eq!((c.old, c.new.map(|r| r.value)), (None, Some(1)));
/// assert_eq!(c.version, t.version());
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(
        serialize = "P: serde::Serialize, P::Addr: serde::Serialize, V: serde::Serialize",
        deserialize = "P: serde::Deserialize<'de>, P::Addr: serde::Deserialize<'de>, V: serde::Deserialize<'de>"
    ))
)]
pub struct Change<P: Prefix, V> {
    /// The version of the commit.
    pub version: Version,
    /// The route before the commit.
    pub old: Option<Route<P, V>>,
    /// The route after the commit.
    pub new: Option<Route<P, V>>,
}

/// A stream of the changes committed to a table after a point in its history, for one
/// criteria (see [`RouteTable::subscribe`] and [`RouteTable::feed`]).
///
/// Changes come in version order; no commit that changes the result is skipped or
/// repeated, and a commit that does not change it gives nothing. While open, a feed counts
/// as an open enumeration in [`RouteTable::stats`] and in the slot pool.
///
/// It reads the table's journal, which records every commit of the table and holds the
/// last [`journal_capacity`](RouteTable::journal_capacity) of them: a feed that has not
/// read a commit the journal dropped (whether or not that commit matches its criteria)
/// gets [`Error::Lagged`] and is dead from then on (subscribe again). Writers never
/// wait for it. It holds one of the table's enumeration slots until dropped.
///
/// ```
/// use rtm::{Criteria, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
/// use std::collections::BTreeMap;
/// let t = RouteTable::<Ipv4Net, u32>::new();
/// let k = |p: &str| RouteKey::new(p.parse().unwrap(), ProtocolId(14), InterfaceId(1), "192.0.2.1".parse().unwrap());
/// t.add_route(Route::new(k("10.0.0.0/8"), 1)).unwrap();
///
/// let (dump, mut feed) = t.subscribe(Criteria::all()).unwrap();
/// t.add_route(Route::new(k("10.1.0.0/16"), 2)).unwrap();   // after the snapshot
/// let mut copy: BTreeMap<_, _> = dump.map(|r| (r.key, r.value)).collect();
/// while let Some(c) = feed.try_next().unwrap() {
///     if let Some(o) = c.old { copy.remove(&o.key); }
///     if let Some(n) = c.new { copy.insert(n.key, n.value); }
/// }
/// assert_eq!(copy.len(), 2);
/// assert_eq!(feed.version(), t.version());
/// ```
pub struct Feed<'t, P: Prefix, V: Clone + Send + Sync + 'static> {
    core: FeedCore<&'t RouteTable<P, V>, P, V>,
}

/// A [`Feed`] that owns a share of its table (`Arc<RouteTable>`), so it is
/// `'static + Send`: it can be kept in a struct, returned, or moved into a spawned thread
/// or task without borrowing the table. It makes the same promises, and is opened by
/// [`RouteTable::feed_owned`] or [`RouteTable::subscribe_owned`].
///
/// ```
/// use std::sync::Arc;
/// use rtm::{Criteria, InterfaceId, Ipv4Net, OwnedFeed, ProtocolId, Route, RouteKey, RouteTable};
/// let t = Arc::new(RouteTable::<Ipv4Net, u32>::new());
/// let mut feed: OwnedFeed<Ipv4Net, u32> = t.feed_owned(Criteria::all()).unwrap();
/// let k = RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId(14), InterfaceId(1), "192.0.2.1".parse().unwrap());
/// t.add_route(Route::new(k, 1)).unwrap();
/// let reader = std::thread::spawn(move || feed.try_next().unwrap().unwrap());
/// assert_eq!(reader.join().unwrap().new.unwrap().value, 1);
/// ```
pub struct OwnedFeed<P: Prefix, V: Clone + Send + Sync + 'static> {
    core: FeedCore<Arc<RouteTable<P, V>>, P, V>,
}

/// What both feeds are, written once: a table holder `T` (a borrow or an `Arc`), the slot
/// that publishes the feed's floor, its criteria and position. Dropping it closes the slot.
pub(crate) struct FeedCore<T, P, V>
where
    T: Deref<Target = RouteTable<P, V>>,
    P: Prefix,
    V: Clone + Send + Sync + 'static,
{
    table: T,
    slot: usize,
    gen: u64,
    criteria: Criteria<P>,
    pos: u64,
    /// Entries of the batch record at `pos + 1` already returned (or passed over): a
    /// batch's changes may take several calls of `try_next`.
    sub: usize,
    lagged: bool,
    /// For `best_only` criteria: each network's best route (node and entry) and number of
    /// enabled routes as of `pos`, for networks whose commits this feed has read. With it
    /// a commit that does not dethrone its network's best, or changes a network's only
    /// route, costs no walk of the network's chains (which, behind a floor, hold every
    /// version since it: a walk per commit would make catching up cost the square of the
    /// backlog). Cleared when it outgrows [`BEST_CACHE`].
    best: BestCache<P, V>,
    /// For `best_multipath` criteria: the changes of the network being read that are made
    /// (cloned) and not yet returned. A network's best set may change by several routes
    /// in one commit; they are returned one per call, and the feed stays before the
    /// commit until the last is.
    pending: VecDeque<Change<P, V>>,
    /// Whether the commit after the feed's position is read to its end once `pending` is
    /// returned (else more of its networks follow).
    pending_ends: bool,
    /// Whether a caught-up `next_timeout` naps ([`NAP`]) and reads again rather than asks
    /// to be woken: set when a change ended a wait within [`BUSY`], cleared by a nap that
    /// found nothing.
    nap: bool,
}

/// How long a caught-up `next_timeout` sleeps before it reads again while changes come
/// fast ([`BUSY`]). A consumer that keeps up with a busy writer is caught up after nearly
/// every change; if it asked to be woken each time, the writer would pay a wake-up (a
/// `futex` call, several microseconds) on nearly every commit. A nap is a sleep, not a
/// spin: it costs the writer nothing and the machine no CPU.
const NAP: Duration = Duration::from_micros(50);

/// A wait that a change ended within this long says changes come fast: nap next time. Not
/// tied to [`NAP`]: on a busy machine the woken thread may wait longer than a nap for a
/// core, and a feed that took that for a quiet writer would go back to a wake-up per
/// commit.
const BUSY: Duration = Duration::from_millis(1);

/// A `best_only` feed's memory of each network's best route.
type BestCache<P, V> = FastMap<P, Best<P, V>>;

/// Networks a `best_only` feed remembers the best route of, at most.
const BEST_CACHE: usize = 1 << 20;

/// What a `best_only` feed remembers of a network as of its position.
struct Best<P: Prefix, V> {
    /// The best route.
    best: Option<BestRef<P, V>>,
    /// How many of the network's routes are enabled.
    enabled: u32,
}

/// Where a network's best route was at the feed's position: its key's node and the entry
/// of its version then. That version is one the floor sees, so the reclaimer keeps it,
/// and its chain then has a version someone sees, so the node is not retired either,
/// until a commit after the floor changes it (which the feed reads, and then forgets
/// this). 16 bytes, so that the cache of a busy day's networks stays small.
struct BestRef<P: Prefix, V> {
    node: NonNull<Node<RouteKey<P>, V>>,
    entry: NonNull<Entry<V>>,
}

impl<P: Prefix, V> Clone for Best<P, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P: Prefix, V> Copy for Best<P, V> {}

impl<P: Prefix, V> Clone for BestRef<P, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P: Prefix, V> Copy for BestRef<P, V> {}

impl<P: Prefix, V> BestRef<P, V> {
    fn new((node, entry): (&Node<RouteKey<P>, V>, &Entry<V>)) -> Self {
        Self {
            node: NonNull::from(node),
            entry: NonNull::from(entry),
        }
    }

    /// The node and the entry.
    ///
    /// # Safety
    /// The feed has not moved past a commit of the route's key since this was made (so
    /// both are still alive, see the type's docs), and `_guard` pins the epoch.
    unsafe fn get(self, _guard: &Guard) -> (&Node<RouteKey<P>, V>, &Entry<V>) {
        // SAFETY: alive for as long as the caller's contract holds, which covers the
        // guard's borrow.
        unsafe { (self.node.as_ref(), self.entry.as_ref()) }
    }
}

// SAFETY: a `BestRef` is only dereferenced by its feed, under an epoch guard, while the
// feed's floor keeps the node and version alive (see the type's docs); both are shared
// data of a `V: Send + Sync` (and a `Prefix`, which is `Send + Sync`).
unsafe impl<P: Prefix, V: Send + Sync> Send for BestRef<P, V> {}
// SAFETY: as above.
unsafe impl<P: Prefix, V: Send + Sync> Sync for BestRef<P, V> {}

impl<T, P, V> fmt::Debug for FeedCore<T, P, V>
where
    T: Deref<Target = RouteTable<P, V>>,
    P: Prefix,
    V: Clone + Send + Sync + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Feed")
            .field("criteria", &self.criteria)
            .field("version", &self.pos)
            .field("lagged", &self.lagged)
            .finish_non_exhaustive()
    }
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> fmt::Debug for Feed<'_, P, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt(f)
    }
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> fmt::Debug for OwnedFeed<P, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt(f)
    }
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> RouteTable<P, V> {
    /// A snapshot enumeration of `criteria` and a feed of every change of its result
    /// committed after the snapshot: start from the enumeration's routes, apply each
    /// change in order (remove `old`, insert `new`), and the result always equals what an
    /// enumeration at [`Feed::version`] would return. Takes two slots (the enumeration
    /// and the feed): [`Error::NoSystemResources`] when they are not free;
    /// [`Error::InvalidParameter`] as [`RouteTable::enumerate`].
    ///
    /// ```
    /// use rtm::{Criteria, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
    /// let t = RouteTable::<Ipv4Net, u32>::new();
    /// let k = RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId(14), InterfaceId(1), "192.0.2.1".parse().unwrap());
    /// let (dump, mut feed) = t.subscribe(Criteria::all()).unwrap();
    /// t.add_route(Route::new(k, 7)).unwrap();
    /// assert_eq!(dump.count(), 0);
    /// assert_eq!(feed.try_next().unwrap().unwrap().new.unwrap().value, 7);
    /// assert_eq!(feed.try_next(), Ok(None));
    /// ```
    #[allow(clippy::type_complexity)] // the signature the crate docs promise
    pub fn subscribe(
        &self,
        criteria: Criteria<P>,
    ) -> Result<(Enumeration<'_, P, V>, Feed<'_, P, V>), Error> {
        let (e, core) = subscribe_in(self, criteria, |c| self.enumerate(c), Enumeration::snapshot)?;
        Ok((e, Feed { core }))
    }

    /// As [`RouteTable::subscribe`], but the enumeration and the feed each hold a clone
    /// of this `Arc` instead of a borrow: both are `'static + Send`. Same slots, same
    /// errors.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use rtm::{Criteria, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
    /// let t = Arc::new(RouteTable::<Ipv4Net, u32>::new());
    /// let k = |p: &str| RouteKey::new(p.parse().unwrap(), ProtocolId(14), InterfaceId(1), "192.0.2.1".parse().unwrap());
    /// t.add_route(Route::new(k("10.0.0.0/8"), 1)).unwrap();
    /// let (dump, mut feed) = t.subscribe_owned(Criteria::all()).unwrap();
    /// t.add_route(Route::new(k("10.1.0.0/16"), 2)).unwrap();
    /// let (seen, change) = std::thread::spawn(move || {
    ///     (dump.map(|r| r.value).collect::<Vec<_>>(), feed.try_next().unwrap().unwrap())
    /// })
    /// .join()
    /// .unwrap();
    /// assert_eq!(seen, [1]);
    /// assert_eq!(change.new.unwrap().value, 2);
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn subscribe_owned(
        self: &Arc<Self>,
        criteria: Criteria<P>,
    ) -> Result<(OwnedEnumeration<P, V>, OwnedFeed<P, V>), Error> {
        let (e, core) = subscribe_in(
            Arc::clone(self),
            criteria,
            |c| self.enumerate_owned(c),
            OwnedEnumeration::snapshot,
        )?;
        Ok((e, OwnedFeed { core }))
    }

    /// A feed of the changes of `criteria`'s result committed after now (see
    /// [`RouteTable::subscribe`]). Takes one slot: [`Error::NoSystemResources`] when none
    /// is free; [`Error::InvalidParameter`] as [`RouteTable::enumerate`].
    ///
    /// ```
    /// use rtm::{Criteria, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
    /// let t = RouteTable::<Ipv4Net, u32>::new();
    /// let k = |p: &str| RouteKey::new(p.parse().unwrap(), ProtocolId(14), InterfaceId(1), "192.0.2.1".parse().unwrap());
    /// let mut feed = t.feed(Criteria::all().within("10.0.0.0/8".parse().unwrap())).unwrap();
    /// t.add_route(Route::new(k("192.168.0.0/16"), 1)).unwrap();  // not within 10/8
    /// t.add_route(Route::new(k("10.1.0.0/16"), 2)).unwrap();
    /// let c = feed.try_next().unwrap().unwrap();
    /// assert_eq!(c.new.unwrap().key, k("10.1.0.0/16"));
    /// assert_eq!(feed.try_next(), Ok(None));
    /// ```
    pub fn feed(&self, criteria: Criteria<P>) -> Result<Feed<'_, P, V>, Error> {
        Ok(Feed {
            core: FeedCore::open(self, criteria)?,
        })
    }

    /// As [`RouteTable::feed`], but the feed holds a clone of this `Arc` instead of a
    /// borrow, so it is `'static + Send`. Takes one slot; errors as [`RouteTable::feed`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use rtm::{Criteria, Error, Ipv4Net, RouteTable};
    /// let t = Arc::new(RouteTable::<Ipv4Net, u32>::with_max_enumerations(1));
    /// let feed = t.feed_owned(Criteria::all()).unwrap();
    /// assert_eq!(t.feed_owned(Criteria::all()).err(), Some(Error::NoSystemResources));
    /// drop(feed);
    /// assert_eq!(t.stats().open_enumerations, 0);
    /// ```
    pub fn feed_owned(self: &Arc<Self>, criteria: Criteria<P>) -> Result<OwnedFeed<P, V>, Error> {
        Ok(OwnedFeed {
            core: FeedCore::open(Arc::clone(self), criteria)?,
        })
    }
}

/// A snapshot enumeration (opened by `enumerate`, whose snapshot `snapshot` reads) and a
/// feed of `table` from that snapshot on: the one way both subscriptions, and the Fib
/// follower's, are opened.
pub(crate) fn subscribe_in<T, P, V, E>(
    table: T,
    criteria: Criteria<P>,
    enumerate: impl Fn(Criteria<P>) -> Result<E, Error>,
    snapshot: impl Fn(&E) -> Version,
) -> Result<(E, FeedCore<T, P, V>), Error>
where
    T: Deref<Target = RouteTable<P, V>>,
    P: Prefix,
    V: Clone + Send + Sync + 'static,
{
    criteria.validate()?;
    if criteria.unchanged_since.is_some() {
        return Err(Error::InvalidParameter);
    }
    loop {
        let e = enumerate(criteria.clone())?;
        let s = snapshot(&e).0;
        match table.slots.open_feed_at(s) {
            Ok(Some((slot, gen))) => {
                return Ok((e, FeedCore::new(table, slot, gen, criteria, s)));
            }
            Ok(None) => return Err(Error::NoSystemResources),
            // A reclaimer announced past the snapshot before the feed's floor was
            // visible; start over from a fresh snapshot (rare: it needs a scan of the
            // slots to start in between).
            Err(()) => continue,
        }
    }
}

/// Either side of a change, before it is cloned: the key's node and the version's entry.
type Side<'g, P, V> = Option<(&'g Node<RouteKey<P>, V>, &'g Entry<V>)>;

/// Both sides of a change, before they are cloned.
type Sides<'g, P, V> = (Side<'g, P, V>, Side<'g, P, V>);

impl<T, P, V> FeedCore<T, P, V>
where
    T: Deref<Target = RouteTable<P, V>>,
    P: Prefix,
    V: Clone + Send + Sync + 'static,
{
    /// A feed of the changes of `criteria`'s result committed after now.
    fn open(table: T, criteria: Criteria<P>) -> Result<Self, Error> {
        criteria.validate()?;
        if criteria.unchanged_since.is_some() {
            return Err(Error::InvalidParameter);
        }
        let (slot, gen, floor) = table
            .slots
            .open_feed(&table.clock)
            .ok_or(Error::NoSystemResources)?;
        Ok(Self::new(table, slot, gen, criteria, floor))
    }

    fn new(table: T, slot: usize, gen: u64, criteria: Criteria<P>, pos: u64) -> Self {
        Self {
            table,
            slot,
            gen,
            criteria,
            pos,
            sub: 0,
            lagged: false,
            best: FastMap::default(),
            pending: VecDeque::new(),
            pending_ends: false,
            nap: false,
        }
    }

    /// Makes room in a `best_only` feed's memory of networks for `networks` of them, so
    /// that it does not grow (and rehash, a pause of milliseconds at 100,000 networks)
    /// while a busy writer waits to be followed.
    pub(crate) fn reserve_networks(&mut self, networks: usize) {
        if self.criteria.best == Choice::Only {
            self.best
                .reserve(networks.min(BEST_CACHE).saturating_sub(self.best.len()));
        }
    }

    pub(crate) fn version(&self) -> Version {
        Version(self.pos)
    }

    /// The best set of network `prefix` at `t`, a commit this feed has returned changes of
    /// and not moved past the end of: at `t` (the feed's position, or the commit it is
    /// inside), so its floor is at most `t` and the reclaimer keeps every version `t`
    /// sees, unless the feed fell a journal behind meanwhile, which is checked before and
    /// after the read as `try_next` checks it: [`Error::Lagged`] then (the feed is dead).
    pub(crate) fn best_set_at(&mut self, prefix: P, t: u64) -> Result<Vec<Route<P, V>>, Error> {
        debug_assert!(self.pos <= t && t <= self.pos + 1);
        let table = &*self.table;
        let cap = table.clock.journal.capacity();
        let guard = table.epoch.pin();
        if self.lagged || !still_covered(table, t, cap) {
            self.lagged = true;
            return Err(Error::Lagged);
        }
        let set = set_at(table, prefix, t, None, &guard);
        let routes = set.iter().map(|(n, e)| route_of(n.key, e)).collect();
        if !still_covered(table, t, cap) {
            self.lagged = true;
            return Err(Error::Lagged);
        }
        Ok(routes)
    }

    /// Whether the feed is inside a batch's commit: it has returned some of its changes,
    /// not all (its version is still the one before).
    pub(crate) fn in_commit(&self) -> bool {
        self.sub != 0 || !self.pending.is_empty()
    }

    pub(crate) fn try_next(&mut self) -> Result<Option<Change<P, V>>, Error> {
        self.next_upto(u64::MAX)
    }

    /// The changes of the next commit that has any for this feed (module docs).
    pub(crate) fn next_commit(
        &mut self,
        out: &mut Vec<Change<P, V>>,
    ) -> Result<Option<Version>, Error> {
        let start = out.len();
        let (pos, sub) = (self.pos, self.sub);
        // Changes made before this call, which it returns first: a panic gives them back.
        let had = self.pending.len();
        let Some(first) = self.try_next()? else {
            return Ok(None);
        };
        let t = first.version.0;
        // Where commit `t` started for this feed: here, or (if the first call passed over
        // commits with nothing for it) at its first entry.
        let begun = if pos + 1 == t { sub } else { 0 };
        out.push(first);
        let rest = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            while self.pos < t {
                match self.next_upto(t)? {
                    Some(c) => out.push(c),
                    None => break,
                }
            }
            Ok(())
        }));
        match rest {
            Ok(Ok(())) => Ok(Some(Version(t))),
            Ok(Err(e)) => {
                out.truncate(start);
                Err(e)
            }
            Err(panic) => {
                // The embedder's `Clone` panicked inside the commit: go back to where it
                // began, so that the next call returns all of it. What the feed remembered
                // of networks it passed meanwhile is as of `t`: forget it all (a miss only
                // costs a walk of the network).
                // Clones are made only once `pending` is empty, so the changes it held
                // are all in `out`, first.
                let mut back: Vec<_> = out.drain(start..).collect();
                back.truncate(had);
                self.pending = back.into();
                self.sub = begun;
                self.best.clear();
                std::panic::resume_unwind(panic)
            }
        }
    }

    /// As `try_next`, but never past position `limit`.
    fn next_upto(&mut self, limit: u64) -> Result<Option<Change<P, V>>, Error> {
        let table = &*self.table;
        let cap = table.clock.journal.capacity();
        loop {
            if !self.pending.is_empty() && !self.lagged && !holds(table, self.pos + 1, cap) {
                // The commit these changes come from left the journal: the feed lags as
                // it would on reading the commit's next entry, so that when a feed lags
                // depends only on where it is, not on how its changes were computed.
                self.lagged = true;
                self.pending.clear();
                self.pending_ends = false;
            }
            if let Some(c) = self.pending.pop_front() {
                if self.pending.is_empty() && self.pending_ends {
                    // The last change of the commit: the feed moves past it.
                    self.pending_ends = false;
                    self.sub = 0;
                    self.pos += 1;
                    table.slots.advance_feed(self.slot, self.pos);
                }
                return Ok(Some(c));
            }
            if self.lagged {
                return Err(Error::Lagged);
            }
            let t = self.pos + 1;
            if t > limit {
                return Ok(None);
            }
            let guard = table.epoch.pin();
            if !still_covered(table, t, cap) {
                self.lagged = true;
                continue;
            }
            let change = match table.clock.journal.read(t, &guard) {
                Read::NotYet => return Ok(None),
                Read::Lost => {
                    self.lagged = true;
                    continue;
                }
                Read::Gap => None,
                Read::Commit(version) => {
                    // SAFETY: see `sides`: the version is alive while the floor is below
                    // `t`; the writer set the node before naming the version.
                    let node = unsafe { &*version.cast::<VersionNode<V>>() }.node();
                    if self.criteria.best == Choice::Multipath {
                        let sides = self.set_sides(node, version, t, &guard);
                        if !still_covered(table, t, cap) {
                            self.lagged = true;
                            continue;
                        }
                        let first = Self::take_set(
                            &mut self.pending,
                            &mut self.pending_ends,
                            &sides,
                            true,
                            t,
                        );
                        if !self.pending.is_empty() {
                            return Ok(first);
                        }
                        self.pos = t;
                        table.slots.advance_feed(self.slot, t);
                        if first.is_some() {
                            return Ok(first);
                        }
                        continue;
                    }
                    let (sides, best) = self.sides(node, version, t, &guard);
                    if !still_covered(table, t, cap) {
                        self.lagged = true;
                        continue;
                    }
                    Self::take(&mut self.best, sides, best, t)
                }
                Read::Batch(log) => {
                    // SAFETY: a record the journal names is alive while it is named, and
                    // `guard` pins; one that names versions after this feed's floor is not
                    // taken out before the feed reads past it (`reclaim`).
                    let log = unsafe { &*log };
                    let mut change = None;
                    if !log.cancelled {
                        while self.criteria.best == Choice::Multipath
                            && self.sub < log.entries.len()
                            && change.is_none()
                        {
                            let (end, sides) =
                                self.batch_set_sides(&log.entries, self.sub, t, &guard);
                            if !still_covered(table, t, cap) {
                                self.lagged = true;
                                break;
                            }
                            change = Self::take_set(
                                &mut self.pending,
                                &mut self.pending_ends,
                                &sides,
                                end == log.entries.len(),
                                t,
                            );
                            self.sub = end;
                        }
                        while self.criteria.best != Choice::Multipath
                            && self.sub < log.entries.len()
                            && change.is_none()
                        {
                            let (end, sides, best) =
                                self.batch_sides(&log.entries, self.sub, t, &guard);
                            if !still_covered(table, t, cap) {
                                self.lagged = true;
                                break;
                            }
                            change = Self::take(&mut self.best, sides, best, t);
                            self.sub = end;
                        }
                        if self.lagged {
                            continue;
                        }
                        if self.sub < log.entries.len() || !self.pending.is_empty() {
                            // More of this commit to come: the feed stays before `t`.
                            return Ok(change);
                        }
                    }
                    self.sub = 0;
                    change
                }
            };
            self.pos = t;
            table.slots.advance_feed(self.slot, t);
            if change.is_some() {
                return Ok(change);
            }
        }
    }

    pub(crate) fn next_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Change<P, V>>, Error> {
        // No deadline: a timeout too long for an `Instant` waits as long as it takes.
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if let Some(c) = self.try_next()? {
                return Ok(Some(c));
            }
            let start = Instant::now();
            let left = match deadline {
                Some(d) => match d.checked_duration_since(start) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Ok(None),
                },
                None => None,
            };
            if self.nap {
                // Changes have been coming fast: sleep a moment, then read what came.
                std::thread::sleep(left.map_or(NAP, |l| l.min(NAP)));
                self.nap = false;
                if let Some(c) = self.try_next()? {
                    self.nap = true;
                    return Ok(Some(c));
                }
                // The nap found nothing: wait to be woken from now on.
                continue;
            }
            let table = &*self.table;
            table
                .clock
                .journal
                .wait(self.pos + 1, left, || table.epoch.pin());
            // Woken soon by a change (not by the timeout): changes come fast, nap next time.
            self.nap = start.elapsed() <= BUSY && deadline.is_none_or(|d| Instant::now() < d);
        }
    }

    /// Makes the change of `sides` (cloning its routes: the embedder's `Clone` may panic,
    /// and then nothing of the feed has changed yet, so the next call reads this commit
    /// again and returns what this one would have), then remembers `best`.
    fn take(
        cache: &mut BestCache<P, V>,
        sides: Option<(Side<'_, P, V>, Side<'_, P, V>)>,
        best: Option<(P, Best<P, V>)>,
        t: u64,
    ) -> Option<Change<P, V>> {
        let change = sides.map(|(old, new)| Change {
            version: Version(t),
            old: old.map(|(n, e)| route_of(n.key, e)),
            new: new.map(|(n, e)| route_of(n.key, e)),
        });
        if let Some((prefix, b)) = best {
            if cache.len() >= BEST_CACHE {
                cache.clear();
            }
            cache.insert(prefix, b);
        }
        change
    }

    /// The change of the next key (or, for `best_only` criteria, the next network) of a
    /// batch committed at `t`, from entry `from` of its record: where the next one starts,
    /// the two sides, and what to remember of the network.
    #[allow(clippy::type_complexity)]
    fn batch_sides<'g>(
        &self,
        entries: &[(*const (), *const ())],
        from: usize,
        t: u64,
        guard: &'g Guard,
    ) -> (
        usize,
        Option<(Side<'g, P, V>, Side<'g, P, V>)>,
        Option<(P, Best<P, V>)>,
    ) {
        let (node, version) = entries[from];
        if self.criteria.best != Choice::Only {
            let (sides, best) = self.sides(node, version, t, guard);
            return (from + 1, sides, best);
        }
        let node_of = |p: *const ()| {
            // SAFETY: the record's nodes are linked while the feed's floor is below `t`
            // (as a single commit's, see `sides`), and `guard` pins.
            unsafe { &*p.cast::<Node<RouteKey<P>, V>>() }
        };
        let prefix = node_of(node).key.prefix;
        let mut end = from + 1;
        while end < entries.len() && node_of(entries[end].0).key.prefix == prefix {
            end += 1;
        }
        if !network_may_match(&self.criteria, &prefix) {
            return (end, None, None);
        }
        let table = &*self.table;
        let before: Side<'g, P, V> = match self.best.get(&prefix) {
            // SAFETY: remembered as of the feed's position, before `t` (`BestRef`).
            Some(b) => b.best.map(|b| unsafe { b.get(guard) }),
            None => network_at(table, prefix, t - 1, None, guard).0,
        };
        let (after, enabled) = network_at(table, prefix, t, None, guard);
        let remember = Some((
            prefix,
            Best {
                best: after.map(BestRef::new),
                enabled,
            },
        ));
        (end, self.best_change(before, after), remember)
    }

    /// Makes the changes of one network's best set (cloning their routes: if a clone
    /// panics, nothing of the feed has changed), keeps all but the first in `pending`, and
    /// returns the first. `ends`: the network is the commit's last.
    fn take_set(
        pending: &mut VecDeque<Change<P, V>>,
        pending_ends: &mut bool,
        sides: &[Sides<'_, P, V>],
        ends: bool,
        t: u64,
    ) -> Option<Change<P, V>> {
        let mut made: VecDeque<Change<P, V>> = sides
            .iter()
            .map(|(old, new)| Change {
                version: Version(t),
                old: old.map(|(n, e)| route_of(n.key, e)),
                new: new.map(|(n, e)| route_of(n.key, e)),
            })
            .collect();
        let first = made.pop_front();
        *pending = made;
        *pending_ends = ends && !pending.is_empty();
        first
    }

    /// For `best_multipath` criteria, the changes a single commit (of `node`'s key, its
    /// version `version`, at `t`) makes to its network's best set: see [`set_diff`].
    #[allow(clippy::type_complexity)]
    fn set_sides<'g>(
        &self,
        node: *const (),
        version: *const (),
        t: u64,
        guard: &'g Guard,
    ) -> Vec<(Side<'g, P, V>, Side<'g, P, V>)> {
        // SAFETY: as in `sides`: the version a commit after the floor names is kept, and
        // linked, with its node, while the floor is below `t`; `guard` pins.
        let version = unsafe { &*version.cast::<VersionNode<V>>() };
        // SAFETY: as just argued.
        let node = unsafe { &*node.cast::<Node<RouteKey<P>, V>>() };
        let prefix = node.key.prefix;
        if !network_may_match(&self.criteria, &prefix) {
            return Vec::new();
        }
        // The key's own route before and after, from the commit (as `sides` reads them),
        // so that its chain is not walked.
        let mine_before = version
            .older(guard)
            .and_then(|o| o.effective(guard))
            .and_then(|o| o.entry.as_ref());
        let table = &*self.table;
        let before = set_at(table, prefix, t - 1, Some((node, mine_before)), guard);
        let after = set_at(
            table,
            prefix,
            t,
            Some((node, version.entry.as_ref())),
            guard,
        );
        set_diff(&self.criteria, &before, &after)
    }

    /// For `best_multipath` criteria, the changes a batch committed at `t` makes to the
    /// best set of the network of entry `from` of its record, and where the next network's
    /// entries start.
    #[allow(clippy::type_complexity)]
    fn batch_set_sides<'g>(
        &self,
        entries: &[(*const (), *const ())],
        from: usize,
        t: u64,
        guard: &'g Guard,
    ) -> (usize, Vec<(Side<'g, P, V>, Side<'g, P, V>)>) {
        let node_of = |p: *const ()| {
            // SAFETY: the record's nodes are linked while the feed's floor is below `t`
            // (as a single commit's, see `sides`), and `guard` pins.
            unsafe { &*p.cast::<Node<RouteKey<P>, V>>() }
        };
        let prefix = node_of(entries[from].0).key.prefix;
        let mut end = from + 1;
        while end < entries.len() && node_of(entries[end].0).key.prefix == prefix {
            end += 1;
        }
        if !network_may_match(&self.criteria, &prefix) {
            return (end, Vec::new());
        }
        let table = &*self.table;
        let before = set_at(table, prefix, t - 1, None, guard);
        let after = set_at(table, prefix, t, None, guard);
        (end, set_diff(&self.criteria, &before, &after))
    }

    /// The change a `best_only` feed returns when its network's best goes from `before`
    /// to `after`: none if it is the same version, else each side if the criteria admit it.
    #[allow(clippy::type_complexity)]
    fn best_change<'g>(
        &self,
        before: Side<'g, P, V>,
        after: Side<'g, P, V>,
    ) -> Option<(Side<'g, P, V>, Side<'g, P, V>)> {
        let same = match (before, after) {
            (Some((_, a)), Some((_, b))) => std::ptr::eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if same {
            return None;
        }
        let c = &self.criteria;
        let pass = |side: Side<'g, P, V>| side.filter(|(n, e)| c.admits(&n.key, e.enabled));
        let (old, new) = (pass(before), pass(after));
        (old.is_some() || new.is_some()).then_some((old, new))
    }

    /// The two sides of the commit `version` at `t`, as this feed's criteria see them, or
    /// `None` when the commit does not change the result; and, for `best_only` criteria,
    /// what to remember of the commit's network as of `t` once the change is returned.
    /// Changes nothing: the caller commits (after the clones, which may panic).
    #[allow(clippy::type_complexity)]
    fn sides<'g>(
        &self,
        node: *const (),
        version: *const (),
        t: u64,
        guard: &'g Guard,
    ) -> (
        Option<(Side<'g, P, V>, Side<'g, P, V>)>,
        Option<(P, Best<P, V>)>,
    ) {
        let table = &*self.table;
        // The reclaimer keeps (linked, so alive) every version that a commit after this
        // feed's floor names, and its node: the floor is below `t`, and `still_covered`
        // checked that no reclaimer ignores it (module docs and `reclaim`).
        // SAFETY: so `version` is alive; `guard` pins the epoch besides.
        let version = unsafe { &*version.cast::<VersionNode<V>>() };
        // SAFETY: as just argued (a version's node is linked while the version is).
        let node = unsafe { &*node.cast::<Node<RouteKey<P>, V>>() };
        let c = &self.criteria;
        if !network_may_match(c, &node.key.prefix) {
            return (None, None);
        }
        if c.best == Choice::All {
            let key = node.key;
            // The version this commit shadowed is the next one down: nothing is linked
            // between them, and the reclaimer unlinks neither (it keeps everything newer
            // than the floor and what the floor sees).
            let before = version
                .older(guard)
                .and_then(|o| o.effective(guard))
                .and_then(|o| o.entry.as_ref());
            let after = version.entry.as_ref();
            let pass = |e: Option<&'g Entry<V>>| {
                e.filter(|e| c.admits(&key, e.enabled)).map(|e| (node, e))
            };
            let (old, new) = (pass(before), pass(after));
            return ((old.is_some() || new.is_some()).then_some((old, new)), None);
        }
        let prefix = node.key.prefix;
        let k = node.key;
        // `k`'s route before and after the commit: the version it shadowed (the next one
        // down, as above) and its own.
        let mine_before = version
            .older(guard)
            .and_then(|o| o.effective(guard))
            .and_then(|o| o.entry.as_ref());
        let mine_after = version.entry.as_ref();
        let rank = |(n, e): (&Node<RouteKey<P>, V>, &Entry<V>)| (e.priority, e.metric, n.key);
        // The network's best at `s` (`t - 1` or `t`), where `k`'s route at `s` is `mine_at`
        // (known from the commit, so `k`'s own chain, which behind the floor holds every
        // later version of a flapping route, is not walked), and how many of its routes are
        // enabled then.
        let walk = |s: u64, mine_at: Option<&'g Entry<V>>| {
            network_at(table, prefix, s, Some((node, mine_at)), guard)
        };
        let slot = match self.best.get(&prefix) {
            Some(b) => *b,
            None => {
                let (best, enabled) = walk(t - 1, mine_before);
                Best {
                    best: best.map(BestRef::new),
                    enabled,
                }
            }
        };
        // SAFETY: the remembered route was the network's best at `pos = t - 1`; the floor
        // keeps its version and node alive (`BestRef`); `guard` pins.
        let before: Side<'g, P, V> = slot.best.map(|b| unsafe { b.get(guard) });
        // Only `k` changed at `t`: the network's enabled routes change by `k`'s.
        let on = |e: Option<&Entry<V>>| e.is_some_and(|e| e.enabled) as u32;
        let enabled = (slot.enabled + on(mine_after)).checked_sub(on(mine_before));
        let mine = mine_after.filter(|e| e.enabled).map(|e| (node, e));
        let (after, enabled): (Side<'g, P, V>, u32) = match (before, mine, enabled) {
            (_, _, None) => walk(t, mine_after), // a miscount: read the network
            (None, mine, Some(n)) => (mine, n),
            (Some(b), Some(m), Some(n)) if b.0.key != k => {
                (Some(if rank(m) < rank(b) { m } else { b }), n)
            }
            (Some(b), None, Some(n)) if b.0.key != k => (Some(b), n),
            // The best route itself changed: still the best if it did not get worse or
            // if it is the network's only route...
            (Some(b), Some(m), Some(n)) if n == 1 || rank(m) <= rank(b) => (Some(m), n),
            // ...and none if it went and was the only one; else read the network at `t`.
            (Some(_), None, Some(0)) => (None, 0),
            _ => walk(t, mine_after),
        };
        let remember = Some((
            prefix,
            Best {
                best: after.map(BestRef::new),
                enabled,
            },
        ));
        (self.best_change(before, after), remember)
    }
}

/// The enabled routes of network `prefix` at snapshot `s`, in key order, each with its
/// entry then. With `mine = (node, entry)`, that node's route at `s` is taken to be `entry`
/// (known from the commit being read) instead of read from its chain.
#[allow(clippy::type_complexity)]
fn enabled_at<'t, 'g, P: Prefix, V: Clone + Send + Sync + 'static>(
    table: &'t RouteTable<P, V>,
    prefix: P,
    s: u64,
    mine: Option<(&Node<RouteKey<P>, V>, Option<&'g Entry<V>>)>,
    guard: &'g Guard,
) -> impl Iterator<Item = (&'g Node<RouteKey<P>, V>, &'g Entry<V>)> + use<'t, 'g, P, V> {
    // Compared by address only.
    let mine = mine.map(|(node, e)| (std::ptr::from_ref(node), e));
    let mut cur = table.list.lower_bound(&RouteKey::first_of(prefix), guard);
    std::iter::from_fn(move || {
        let r = cur.take()?;
        cur = r.next(guard);
        Some(r.get())
    })
    .take_while(move |n| n.key.prefix == prefix)
    .filter_map(move |n| {
        let e = match mine {
            Some((node, mine_at)) if std::ptr::eq(n, node) => mine_at,
            _ => n
                .chain
                .visible(s, &table.clock, guard)
                .and_then(|v| v.entry.as_ref()),
        };
        e.filter(|e| e.enabled).map(|e| (n, e))
    })
}

/// The best route of network `prefix` at snapshot `s`, and how many of its routes are
/// enabled then. `mine` as in [`enabled_at`].
#[allow(clippy::type_complexity)]
fn network_at<'g, P: Prefix, V: Clone + Send + Sync + 'static>(
    table: &RouteTable<P, V>,
    prefix: P,
    s: u64,
    mine: Option<(&Node<RouteKey<P>, V>, Option<&'g Entry<V>>)>,
    guard: &'g Guard,
) -> (Side<'g, P, V>, u32) {
    let rank = |(n, e): (&Node<RouteKey<P>, V>, &Entry<V>)| (e.priority, e.metric, n.key);
    let (mut best, mut enabled): (Side<'g, P, V>, u32) = (None, 0);
    for (n, e) in enabled_at(table, prefix, s, mine, guard) {
        enabled += 1;
        if best.is_none_or(|b| rank((n, e)) < rank(b)) {
            best = Some((n, e));
        }
    }
    (best, enabled)
}

/// The best set of network `prefix` at snapshot `s`, in key order: its enabled routes of
/// the smallest `(priority, metric)`. `mine` as in [`enabled_at`].
#[allow(clippy::type_complexity)]
fn set_at<'g, P: Prefix, V: Clone + Send + Sync + 'static>(
    table: &RouteTable<P, V>,
    prefix: P,
    s: u64,
    mine: Option<(&Node<RouteKey<P>, V>, Option<&'g Entry<V>>)>,
    guard: &'g Guard,
) -> Vec<(&'g Node<RouteKey<P>, V>, &'g Entry<V>)> {
    let mut set: Vec<(&'g Node<RouteKey<P>, V>, &'g Entry<V>)> = Vec::new();
    for (n, e) in enabled_at(table, prefix, s, mine, guard) {
        match set.first().map(|(_, b)| (b.priority, b.metric)) {
            Some(rank) if (e.priority, e.metric) > rank => {}
            Some(rank) if (e.priority, e.metric) == rank => set.push((n, e)),
            _ => {
                set.clear();
                set.push((n, e));
            }
        }
    }
    set
}

/// What a `best_multipath` feed returns when a network's best set goes from `before` to
/// `after` (both in key order): per key of either, in key order, `(old, new)` as a plain
/// feed's for the result "routes in their network's best set". A route that left the set
/// is `(route, None)`, one that joined it `(None, route)`, one that stayed but was
/// rewritten `(route before, route after)`; a route that stayed as it was gives nothing.
/// Each side only if the other criteria admit it.
#[allow(clippy::type_complexity)]
fn set_diff<'g, P: Prefix, V>(
    c: &Criteria<P>,
    before: &[(&'g Node<RouteKey<P>, V>, &'g Entry<V>)],
    after: &[(&'g Node<RouteKey<P>, V>, &'g Entry<V>)],
) -> Vec<(Side<'g, P, V>, Side<'g, P, V>)> {
    let pass = |side: Side<'g, P, V>| side.filter(|(n, e)| c.admits(&n.key, e.enabled));
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    loop {
        let (old, new) = match (before.get(i), after.get(j)) {
            (Some(b), Some(a)) if b.0.key == a.0.key => {
                i += 1;
                j += 1;
                if std::ptr::eq(b.1, a.1) {
                    continue;
                }
                (Some(*b), Some(*a))
            }
            (Some(b), Some(a)) if b.0.key < a.0.key => {
                i += 1;
                (Some(*b), None)
            }
            (Some(b), None) => {
                i += 1;
                (Some(*b), None)
            }
            (_, Some(a)) => {
                j += 1;
                (None, Some(*a))
            }
            (None, None) => break,
        };
        let (old, new) = (pass(old), pass(new));
        if old.is_some() || new.is_some() {
            out.push((old, new));
        }
    }
    out
}

/// Whether routes of network `p` can pass the criteria's network filters (a cheap test
/// before reading the network's routes; `Criteria::admits` decides).
#[inline]
fn network_may_match<P: Prefix>(c: &Criteria<P>, p: &P) -> bool {
    c.network.is_none_or(|n| n == *p)
        && c.within
            .is_none_or(|w| p.plen() >= w.plen() && crate::prefix::covers(&w, p.net_bits()))
}

/// Whether the reclaimer still keeps what position `t` needs in `table` (module docs);
/// the feed is lagged when not.
#[inline]
/// Whether the journal still holds position `t`, as a read of it would find.
fn holds<P: Prefix, V: Clone + Send + Sync + 'static>(
    table: &RouteTable<P, V>,
    t: u64,
    cap: u64,
) -> bool {
    let guard = table.epoch.pin();
    still_covered(table, t, cap) && !matches!(table.clock.journal.read(t, &guard), Read::Lost)
}

fn still_covered<P: Prefix, V: Clone + Send + Sync + 'static>(
    table: &RouteTable<P, V>,
    t: u64,
    cap: u64,
) -> bool {
    // SeqCst fence: orders our pin (before) and reads (before, for the second check)
    // against the reclaimer's announcement; see the module docs.
    fence(Ordering::SeqCst);
    table.slots.horizon() < t.saturating_add(cap)
}

impl<T, P, V> Drop for FeedCore<T, P, V>
where
    T: Deref<Target = RouteTable<P, V>>,
    P: Prefix,
    V: Clone + Send + Sync + 'static,
{
    fn drop(&mut self) {
        self.table.close_owned(self.slot, self.gen);
    }
}

/// The methods both feeds share, written once (the examples open the feed with `$open`).
macro_rules! feed_methods {
    ($open:literal) => {
        /// Every change with a version at or below this one has been returned; it is at
        /// least the version of every change returned so far.
        ///
        /// ```
        /// let t = std::sync::Arc::new(rtm::RouteTable::<rtm::Ipv4Net, ()>::new());
        #[doc = concat!("let f = t.", $open, "(rtm::Criteria::all()).unwrap();")]
        /// assert_eq!(f.version(), t.version());
        /// ```
        pub fn version(&self) -> Version {
            self.core.version()
        }

        /// The next change, if one is committed; `Ok(None)` when caught up (the commits not
        /// yet returned are still in flight). [`Error::Lagged`] when the journal dropped a
        /// commit this feed had not read; the feed is dead from then on.
        ///
        /// ```
        /// use rtm::{Criteria, Error, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
        /// let t = std::sync::Arc::new(RouteTable::<Ipv4Net, u32>::builder().journal_capacity(64).build());
        /// let k = RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId(14), InterfaceId(1), "192.0.2.1".parse().unwrap());
        #[doc = concat!("let mut feed = t.", $open, "(Criteria::all()).unwrap();")]
        /// for i in 0..100 {
        ///     t.add_route(Route::new(k, i)).unwrap();   // more than the journal holds
        /// }
        /// assert_eq!(feed.try_next(), Err(Error::Lagged));
        /// assert_eq!(feed.try_next(), Err(Error::Lagged));
        /// ```
        pub fn try_next(&mut self) -> Result<Option<Change<P, V>>, Error> {
            self.core.try_next()
        }

        /// As [`Feed::try_next`], but waits up to `timeout` for a change, without spinning:
        /// `Ok(None)` only when the timeout passed with nothing to return. While changes come
        /// at least every millisecond, a caught-up feed sleeps 50 µs and reads again instead
        /// of asking the next writer to wake it, so that a busy writer pays no wake-up per commit
        /// (a change may then be returned up to a nap later than it was committed).
        ///
        /// ```
        /// use std::time::Duration;
        /// use rtm::{Criteria, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
        /// let t = std::sync::Arc::new(RouteTable::<Ipv4Net, u32>::new());
        #[doc = concat!("let mut feed = t.", $open, "(Criteria::all()).unwrap();")]
        /// assert_eq!(feed.next_timeout(Duration::from_millis(10)), Ok(None));
        /// let k = RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId(14), InterfaceId(1), "192.0.2.1".parse().unwrap());
        /// std::thread::scope(|s| {
        ///     s.spawn(|| t.add_route(Route::new(k, 1)).unwrap());
        ///     let c = feed.next_timeout(Duration::from_secs(10)).unwrap().unwrap();
        ///     assert_eq!(c.new.unwrap().value, 1);
        /// });
        /// ```
        pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<Change<P, V>>, Error> {
            self.core.next_timeout(timeout)
        }

        /// Appends every change of the next commit that has any for this feed to `out`, in
        /// key order, and returns that commit's version; `Ok(None)` when caught up;
        /// [`Error::Lagged`] as [`Feed::try_next`] (then `out` is as it was). A batch's
        /// changes come together: one per key (per network for `best_only` criteria, per
        /// route entering, leaving or changing inside a best set for `best_multipath`), all
        /// with the commit's version, and [`Feed::version`] reaches it only after the last.
        /// If the embedder's `Clone` panics, `out` is left as it was and the next call
        /// returns the whole commit.
        ///
        /// ```
        /// use rtm::{Batch, Criteria, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
        /// let t = std::sync::Arc::new(RouteTable::<Ipv4Net, u32>::new());
        /// let key = |p: &str| RouteKey::new(p.parse().unwrap(), ProtocolId(2), InterfaceId(1), "192.0.2.1".parse().unwrap());
        #[doc = concat!("let mut feed = t.", $open, "(Criteria::all()).unwrap();")]
        /// let mut b = Batch::new();
        /// b.add_route(Route::new(key("10.0.0.0/8"), 1)).add_route(Route::new(key("10.1.0.0/16"), 2));
        /// let v = t.commit(b).unwrap();
        /// t.add_route(Route::new(key("10.2.0.0/16"), 3)).unwrap();
        /// let mut out = Vec::new();
        /// assert_eq!(feed.next_commit(&mut out), Ok(Some(v)));
        /// assert_eq!(out.len(), 2);
        /// assert_eq!(feed.version(), v);
        /// out.clear();
        /// assert_eq!(feed.next_commit(&mut out), Ok(Some(t.version())));
        /// assert_eq!(out.len(), 1);
        /// assert_eq!(feed.next_commit(&mut out), Ok(None));
        /// ```
        pub fn next_commit(
            &mut self,
            out: &mut Vec<Change<P, V>>,
        ) -> Result<Option<Version>, Error> {
            self.core.next_commit(out)
        }
    };
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> Feed<'_, P, V> {
    feed_methods!("feed");
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> OwnedFeed<P, V> {
    feed_methods!("feed_owned");
}

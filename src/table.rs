//! The public table: the skip list, the clock, the slots and the reclaimer put together.

use std::fmt;

use crate::clock::Clock;
use crate::cursor::{best_in_run, best_of, best_set, route as route_of, Cursor};
use crate::error::Error;
use crate::handle::MAX_ENUMERATIONS;
use crate::prefix::sealed::AddrBits;
use crate::prefix::{common_len, covers, is_canonical, mask, Prefix};
use crate::reclaim::{Parts, Reclaimer};
use crate::route::{Route, RouteKey, Version};
use crate::skiplist::{Inserted, Node, NodeRef, SkipList};
use crate::slots::Slots;
use crate::sync::{fence, AtomicBool, AtomicUsize, CachePadded, Epoch, Ordering};
use crate::version::{Entry, VersionNode};

/// The skip list orders routes by key, with the prefix's order hint first.
impl<P: Prefix> crate::skiplist::SkipKey for RouteKey<P> {
    #[inline]
    fn hint(&self) -> u64 {
        crate::prefix::sealed::Bits::order_hint(&self.prefix)
    }
}

/// The smallest journal a table gets (a loom model may use a tiny one to make a feed lag).
#[cfg(not(loom))]
const MIN_JOURNAL_CAPACITY: usize = 64;
#[cfg(loom)]
const MIN_JOURNAL_CAPACITY: usize = 2;

/// The largest journal a table gets: 2^28 commits (2 GiB once every position has been
/// written, and a 2 MiB directory from the start).
pub(crate) const MAX_JOURNAL_CAPACITY: usize = 1 << 28;

/// A lock-free routing table whose enumerations see consistent snapshots.
///
/// Reads (`get_route`, `best_route`, `lookup`, an enumeration's `next`) take no lock and
/// never wait. They write shared memory only to help: a read at a version (`best_route`,
/// `lookup`, `next`) that meets a version whose writer has not decided its timestamp yet
/// ticks the clock and decides the timestamp for it with one CAS. Writes are lock-free;
/// enumerations pin a snapshot version for their whole life and never make a writer wait.
///
/// ```
/// use rtm::{Criteria, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
///
/// let table = RouteTable::<Ipv4Net, &str>::new();
/// let key = |p: &str| RouteKey::new(p.parse().unwrap(), ProtocolId(2), InterfaceId(1), "192.0.2.1".parse().unwrap());
/// table.add_route(Route::new(key("10.0.0.0/8"), "a")).unwrap();
/// table.add_route(Route::new(key("10.1.0.0/16"), "b")).unwrap();
///
/// let dump = table.enumerate(Criteria::all()).unwrap();   // snapshot taken here
/// table.delete_route(&key("10.0.0.0/8")).unwrap();         // writers keep going
/// let seen: Vec<_> = dump.map(|r| r.value).collect();
/// assert_eq!(seen, ["a", "b"]);                            // ... the dump does not move
///
/// assert_eq!(table.lookup("10.1.2.3".parse().unwrap()).unwrap().value, "b");
/// ```
pub struct RouteTable<P: Prefix, V> {
    pub(crate) list: SkipList<RouteKey<P>, V>,
    pub(crate) clock: Clock,
    pub(crate) slots: Slots<Cursor<P>>,
    pub(crate) reclaimer: Reclaimer,
    routes: CachePadded<AtomicUsize>,
    journal_capacity: usize,
    /// The Fib follower whose writers help it, if one is registered.
    pub(crate) fib_help: HelpSlot,
    // Declared last: dropped after the list, whose nodes it may still guard under loom.
    pub(crate) epoch: Epoch,
}

/// A snapshot of the table's counters.
///
/// ```
/// let t = rtm::RouteTable::<rtm::Ipv4Net, u32>::new();
/// let s = t.stats();
/// assert_eq!((s.live_routes, s.dead_versions, s.open_enumerations), (0, 0, 0));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Live routes, disabled ones included (as [`RouteTable::route_count`]).
    pub live_routes: usize,
    /// Route values still retained that are no longer current (replaced or deleted).
    /// Right after [`RouteTable::collect`], exactly those some open snapshot can see.
    /// Deletion markers are not counted.
    pub dead_versions: usize,
    /// RAII enumerations, handles and feeds not yet closed (a `subscribe` counts two, a
    /// Fib's follower one).
    pub open_enumerations: usize,
    /// Enumeration slots retired because their generation counter would wrap.
    pub retired_slots: usize,
    /// The newest committed version.
    pub version: Version,
    /// Commits the journal overwrote before the reclaimer read them (each makes the next
    /// [`RouteTable::collect`] walk the whole table once). Zero unless the reclaimer fell a
    /// whole journal behind the writers.
    pub reclaimer_overruns: u64,
    /// Bytes the table holds, as requested from the allocator: skip-list nodes, versions
    /// (current, dead and deletion markers), the journal's allocated segments and the
    /// slots' (not the cursors that open handles keep). The heap memory a value `V` owns itself is not counted, nor the
    /// allocator's rounding, nor what is unlinked and waiting for the epoch.
    pub memory_bytes: usize,
}

impl<P: Prefix, V> fmt::Debug for RouteTable<P, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteTable")
            .field("routes", &self.routes.load(Ordering::Relaxed))
            .field("version", &self.clock.now())
            .field("max_enumerations", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> RouteTable<P, V> {
    /// This table's identity, as carried by its handles ([`EnumHandle::table_id`](crate::EnumHandle::table_id)): no
    /// other live table has it. Ids are leased from 4095 and come back when a table is
    /// dropped; a handle of a dropped table is invalid on every later table with its id.
    /// While 4095 tables are alive, a new one gets 0 and cannot open handles (see
    /// [`EnumHandle`](crate::EnumHandle)).
    ///
    /// ```
    /// let a = rtm::RouteTable::<rtm::Ipv4Net, ()>::new();
    /// let b = rtm::RouteTable::<rtm::Ipv4Net, ()>::new();
    /// assert_ne!(a.table_id(), b.table_id());
    /// ```
    pub fn table_id(&self) -> u64 {
        self.slots.table_id()
    }

    /// How many commits the journal holds (see [`Builder::journal_capacity`](crate::Builder::journal_capacity)).
    ///
    /// ```
    /// assert_eq!(rtm::RouteTable::<rtm::Ipv4Net, ()>::new().journal_capacity(), rtm::DEFAULT_JOURNAL_CAPACITY);
    /// ```
    pub fn journal_capacity(&self) -> usize {
        self.journal_capacity
    }

    /// A table on its own epoch collector, so that a loom model can drop the collector and
    /// check that every deferred value was freed.
    #[cfg(loom)]
    pub fn with_collector(n: usize, collector: crossbeam_epoch::Collector) -> Self {
        Self::with_collector_and_journal(n, 8, collector)
    }

    /// As [`RouteTable::with_collector`], with a journal of `journal_capacity` commits
    /// (at least 2 under loom), so that a model can make a feed lag in a few commits.
    #[cfg(loom)]
    pub fn with_collector_and_journal(
        n: usize,
        journal_capacity: usize,
        collector: crossbeam_epoch::Collector,
    ) -> Self {
        Self::build(n, journal_capacity, Epoch::with_collector(collector))
    }

    pub(crate) fn build(n: usize, journal_capacity: usize, epoch: Epoch) -> Self {
        let n = n.clamp(1, MAX_ENUMERATIONS);
        let journal_capacity = journal_capacity
            .clamp(MIN_JOURNAL_CAPACITY, MAX_JOURNAL_CAPACITY)
            .next_power_of_two();
        Self {
            list: SkipList::new(),
            clock: Clock::new(journal_capacity),
            slots: Slots::new(n),
            reclaimer: Reclaimer::new(),
            routes: CachePadded::new(AtomicUsize::new(0)),
            journal_capacity,
            fib_help: HelpSlot::new(),
            epoch,
        }
    }

    /// Inserts `route`, or replaces the route with the same key; returns the replaced one.
    /// A prefix with host bits set is [`Error::InvalidParameter`].
    ///
    /// ```
    /// use rtm::{Error, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
    /// let t = RouteTable::<Ipv4Net, u32>::new();
    /// let k = RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId(1), InterfaceId(1), "192.0.2.1".parse().unwrap());
    /// assert_eq!(t.add_route(Route::new(k, 1)), Ok(None));
    /// assert_eq!(t.add_route(Route::new(k, 2)).unwrap().unwrap().value, 1);
    /// let bad = RouteKey { prefix: "10.1.2.3/8".parse().unwrap(), ..k };
    /// assert_eq!(t.add_route(Route::new(bad, 3)), Err(Error::InvalidParameter));
    /// ```
    pub fn add_route(&self, route: Route<P, V>) -> Result<Option<Route<P, V>>, Error> {
        if !is_canonical(&route.key.prefix) {
            return Err(Error::InvalidParameter);
        }
        let key = route.key;
        let v = VersionNode::alloc(Some(Entry {
            priority: route.priority,
            metric: route.metric,
            enabled: route.enabled,
            value: route.value,
        }));
        let guard = self.epoch.pin();
        // SAFETY: `v` was just allocated, pending and alone, and is still ours.
        let (node, prev) = match unsafe { self.list.insert(key, v, &self.clock, &guard) } {
            Inserted::New(node) => (node, None),
            Inserted::Pushed(node, prev) => (node, prev),
        };
        let ts = self.commit_one(node, v, prev, &guard);
        let old = prev
            .and_then(|p| p.entry.as_ref())
            .map(|e| route_of(key, e));
        drop(guard);
        self.after_write(ts);
        Ok(old)
    }

    /// Deletes the route with this key and returns it; [`Error::NoSuchRoute`] if absent.
    ///
    /// ```
    /// use rtm::{Error, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
    /// let t = RouteTable::<Ipv4Net, u32>::new();
    /// let k = RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId(1), InterfaceId(1), "192.0.2.1".parse().unwrap());
    /// t.add_route(Route::new(k, 1)).unwrap();
    /// assert_eq!(t.delete_route(&k).unwrap().value, 1);
    /// assert_eq!(t.delete_route(&k), Err(Error::NoSuchRoute));
    /// ```
    pub fn delete_route(&self, key: &RouteKey<P>) -> Result<Route<P, V>, Error> {
        if !is_canonical(&key.prefix) {
            return Err(Error::InvalidParameter);
        }
        let guard = self.epoch.pin();
        let node = self.list.find(key, &guard).ok_or(Error::NoSuchRoute)?;
        let has_value = |v: Option<&VersionNode<V>>| v.is_some_and(|v| v.entry.is_some());
        let (ts, prev) = self
            .push_in(node, VersionNode::alloc(None), &guard, has_value)
            .ok_or(Error::NoSuchRoute)?;
        let e = prev
            .and_then(|p| p.entry.as_ref())
            .expect("checked by push_if");
        let old = route_of(*key, e);
        drop(guard);
        self.after_write(ts);
        Ok(old)
    }

    /// Links `v` (pending, unpublished) as the newest version of `node` if `cond` holds for
    /// the version it would shadow, and commits it. Returns its timestamp and the version it
    /// shadowed, or `None` (and frees `v`) if `cond` refused or the key was retired.
    pub(crate) fn push_in<'g>(
        &self,
        node: NodeRef<'g, RouteKey<P>, V>,
        v: *mut VersionNode<V>,
        guard: &'g crossbeam_epoch::Guard,
        cond: impl Fn(Option<&VersionNode<V>>) -> bool,
    ) -> Option<(u64, Option<&'g VersionNode<V>>)> {
        match node.chain.push_if(v, &self.clock, guard, cond) {
            Ok(Ok(prev)) => Some((self.commit_one(node, v, prev, guard), prev)),
            Ok(Err(_)) | Err(_) => {
                // SAFETY: `v` was not linked: it is still ours alone.
                unsafe { VersionNode::free_unpublished(v) };
                None
            }
        }
    }

    /// Finishes a write whose version `v` was just linked on `node` over `prev`: decides
    /// its timestamp, records the commit in the journal and keeps the counters. Every
    /// commit of the table passes here once.
    fn commit_one(
        &self,
        node: NodeRef<'_, RouteKey<P>, V>,
        v: *mut VersionNode<V>,
        prev: Option<&VersionNode<V>>,
        guard: &crossbeam_epoch::Guard,
    ) -> u64 {
        // SAFETY: `v` is linked in `node`'s chain; it is freed only through the epoch,
        // which `guard` pins.
        let version = unsafe { &*v };
        // A write that slid under an unfinished batch is decided already (and a reader
        // may have helped decide any other): no clock value of its own then.
        let ts = match version.ts() {
            crate::version::PENDING => version.decide(&self.clock, guard),
            t => t,
        };
        self.record(ts, node, v, guard);
        self.count_commit(
            prev.is_some_and(|p| p.entry.is_some()),
            version.entry.is_some(),
        );
        ts
    }

    /// Keeps the counters for one key's commit: whether the version it shadowed was a
    /// value, and whether the new one is.
    pub(crate) fn count_commit(&self, was: bool, is_value: bool) {
        if was {
            self.reclaimer.shadowed();
        }
        if !is_value {
            self.reclaimer.marked();
        }
        match (was, is_value) {
            (false, true) => {
                self.routes.fetch_add(1, Ordering::Relaxed);
            }
            (true, false) => {
                self.routes.fetch_sub(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// The route with this key, if present (`None` for a prefix with host bits set).
    ///
    /// ```
    /// use rtm::{InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
    /// let t = RouteTable::<Ipv4Net, u32>::new();
    /// let k = RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId(1), InterfaceId(1), "192.0.2.1".parse().unwrap());
    /// assert!(t.get_route(&k).is_none());
    /// t.add_route(Route::new(k, 5)).unwrap();
    /// assert_eq!(t.get_route(&k).unwrap().value, 5);
    /// ```
    pub fn get_route(&self, key: &RouteKey<P>) -> Option<Route<P, V>> {
        if !is_canonical(&key.prefix) {
            return None;
        }
        let guard = self.epoch.pin();
        let node = self.list.find(key, &guard)?;
        let e = node.chain.current(&guard)?.entry.as_ref()?;
        Some(route_of(*key, e))
    }

    /// The best route of exactly this network: the enabled route with the smallest
    /// `(priority, metric)`, ties to the smaller key. `None` for a prefix with host bits
    /// set.
    ///
    /// ```
    /// use rtm::{InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
    /// let t = RouteTable::<Ipv4Net, &str>::new();
    /// let k = |proto| RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId(proto), InterfaceId(1), "192.0.2.1".parse().unwrap());
    /// t.add_route(Route { priority: 20, ..Route::new(k(1), "ospf") }).unwrap();
    /// t.add_route(Route { priority: 10, ..Route::new(k(2), "static") }).unwrap();
    /// assert_eq!(t.best_route(&"10.0.0.0/8".parse().unwrap()).unwrap().value, "static");
    /// ```
    pub fn best_route(&self, prefix: &P) -> Option<Route<P, V>> {
        if !is_canonical(prefix) {
            return None;
        }
        self.read_at_now(|s, guard| self.best_at(*prefix, s, guard))
    }

    /// The network's *best set*: every enabled route of exactly this network whose
    /// `(priority, metric)` equals its best route's (its equal-cost paths), in key order,
    /// read at one version as [`RouteTable::best_route`] is. Empty when the network has no
    /// enabled route, and for a prefix with host bits set.
    ///
    /// ```
    /// use rtm::{InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
    /// let t = RouteTable::<Ipv4Net, &str>::new();
    /// let k = |hop: &str| RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId::BGP, InterfaceId(1), hop.parse().unwrap());
    /// t.add_route(Route { metric: 10, ..Route::new(k("192.0.2.2"), "b") }).unwrap();
    /// t.add_route(Route { metric: 10, ..Route::new(k("192.0.2.1"), "a") }).unwrap();
    /// t.add_route(Route { metric: 20, ..Route::new(k("192.0.2.3"), "backup") }).unwrap();
    /// let set: Vec<&str> = t.best_routes(&"10.0.0.0/8".parse().unwrap()).into_iter().map(|r| r.value).collect();
    /// assert_eq!(set, ["a", "b"]);
    /// assert!(t.best_routes(&"10.0.0.1/8".parse().unwrap()).is_empty()); // host bits
    /// ```
    pub fn best_routes(&self, prefix: &P) -> Vec<Route<P, V>> {
        if !is_canonical(prefix) {
            return Vec::new();
        }
        self.read_at_now(|s, guard| {
            best_set(&self.list, *prefix, guard, |n: &Node<RouteKey<P>, V>| {
                n.chain
                    .visible(s, &self.clock, guard)
                    .and_then(|v| v.entry.as_ref())
            })
            .into_iter()
            .map(|(k, e)| route_of(k, e))
            .collect()
        })
    }

    /// Runs a read of several keys at one point of history, without registering a slot.
    ///
    /// `f` reads at `s`, the clock value taken first. A reclaimer that announced a horizon
    /// at or below `s` keeps every version `s` sees (it keeps all versions newer than its
    /// announcement and the ones visible at it). One that announces past `s` might prune
    /// under us; then, if `f` observed any of its unlinking stores (Release, read by our
    /// Acquire loads), the announcement happens-before our fence and the horizon load after
    /// it sees it, and we read again at a newer `s`. A retry needs a new sweep to start
    /// during the read, so it is rare, and each one means the reclaimer made progress.
    #[inline]
    fn read_at_now<R>(&self, f: impl Fn(u64, &crossbeam_epoch::Guard) -> R) -> R {
        loop {
            let s = self.clock.now();
            let guard = self.epoch.pin();
            let r = f(s, &guard);
            #[cfg(rtm_negative = "no-horizon-recheck")]
            {
                // Broken on purpose: trust a read that a reclaimer may have pruned under.
                return r;
            }
            #[cfg(not(rtm_negative = "no-horizon-recheck"))]
            {
                fence(Ordering::SeqCst);
                if self.slots.horizon() <= s {
                    return r;
                }
            }
        }
    }

    fn best_at(&self, prefix: P, s: u64, guard: &crossbeam_epoch::Guard) -> Option<Route<P, V>> {
        best_of(&self.list, prefix, guard, |n: &Node<RouteKey<P>, V>| {
            n.chain
                .visible(s, &self.clock, guard)
                .and_then(|v| v.entry.as_ref())
        })
        .map(|(k, e)| route_of(k, e))
    }

    /// Longest-prefix match: the best route of the longest network that covers `addr` and
    /// has a best route.
    ///
    /// It runs predecessor searches in (address, length) order: the last network at or
    /// before `addr` is the candidate; if it does not cover `addr`, the length they have in
    /// common bounds the next candidate, so a lookup is a few searches, not one per length.
    ///
    /// ```
    /// use rtm::{InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
    /// let t = RouteTable::<Ipv4Net, u8>::new();
    /// for (p, v) in [("10.0.0.0/8", 8), ("10.1.0.0/16", 16), ("10.1.2.128/25", 25)] {
    ///     let k = RouteKey::new(p.parse().unwrap(), ProtocolId(1), InterfaceId(1), "192.0.2.1".parse().unwrap());
    ///     t.add_route(Route::new(k, v)).unwrap();
    /// }
    /// assert_eq!(t.lookup("10.1.2.3".parse().unwrap()).unwrap().value, 16);
    /// assert_eq!(t.lookup("10.1.2.200".parse().unwrap()).unwrap().value, 25);
    /// assert_eq!(t.lookup("10.9.9.9".parse().unwrap()).unwrap().value, 8);
    /// assert!(t.lookup("11.0.0.1".parse().unwrap()).is_none());
    /// ```
    pub fn lookup(&self, addr: P::Addr) -> Option<Route<P, V>> {
        let a = addr.to_bits();
        self.read_at_now(|s, guard| {
            let mut len = P::MAX_LEN;
            // Each search starts where the previous one ended (its bound is smaller and
            // usually a few nodes back), not from the head.
            let mut fingers = self.list.fingers(guard);
            loop {
                // The longest network that can still cover `a` is (a masked to len, len).
                let bound = RouteKey::last_of(P::from_parts(a & mask::<P>(len), len));
                let same = |x: &RouteKey<P>, y: &RouteKey<P>| x.prefix == y.prefix;
                let (last, run) = self.list.floor_run(&mut fingers, &bound, same, guard)?;
                let q = last.key.prefix;
                if covers(&q, a) {
                    // q.len <= len: a longer covering network would sort after the bound.
                    let best = match run {
                        // the search saw where q's routes start: read them, up to `last`
                        Some(first) => best_in_run(q, Some(first), Some(last), guard, |n| {
                            n.chain
                                .visible(s, &self.clock, guard)
                                .and_then(|v| v.entry.as_ref())
                        })
                        .map(|(k, e)| route_of(k, e)),
                        None => self.best_at(q, s, guard),
                    };
                    if let Some(r) = best {
                        return Some(r);
                    }
                    len = q.plen().checked_sub(1)?;
                } else {
                    // Every covering network longer than the common length would sort
                    // between q and the bound, so none exists; the common length is < len.
                    len = common_len::<P>(q.net_bits(), a);
                }
            }
        })
    }

    /// Live routes, disabled ones included.
    ///
    /// ```
    /// let t = rtm::RouteTable::<rtm::Ipv4Net, ()>::new();
    /// assert_eq!(t.route_count(), 0);
    /// ```
    pub fn route_count(&self) -> usize {
        self.routes.load(Ordering::Relaxed)
    }

    /// Networks with at least one live route, disabled routes included. This walks the
    /// table (O(routes)).
    ///
    /// ```
    /// let t = rtm::RouteTable::<rtm::Ipv4Net, ()>::new();
    /// assert_eq!(t.network_count(), 0);
    /// ```
    pub fn network_count(&self) -> usize {
        let guard = self.epoch.pin();
        let mut count = 0;
        let mut last: Option<P> = None;
        let mut node = self.list.first(&guard);
        while let Some(n) = node {
            if last != Some(n.key.prefix)
                && n.chain.current(&guard).is_some_and(|v| v.entry.is_some())
            {
                count += 1;
                last = Some(n.key.prefix);
            }
            node = n.next(&guard);
        }
        count
    }

    /// The newest committed version.
    ///
    /// ```
    /// let t = rtm::RouteTable::<rtm::Ipv4Net, ()>::new();
    /// assert_eq!(t.version(), rtm::Version(0));
    /// ```
    pub fn version(&self) -> Version {
        Version(self.clock.now())
    }

    /// Reclaims now whatever no open enumeration or feed can see any more, and lets the
    /// epoch free it. (This also happens on its own, a bounded step on each write and each
    /// close.) If another thread is running a step, this waits for that step to end (a
    /// few chain visits), then does all the pending work.
    ///
    /// ```
    /// use rtm::{Criteria, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
    /// let t = RouteTable::<Ipv4Net, u32>::new();
    /// let k = RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId(1), InterfaceId(1), "192.0.2.1".parse().unwrap());
    /// t.add_route(Route::new(k, 1)).unwrap();
    /// let e = t.enumerate(Criteria::all()).unwrap();
    /// t.add_route(Route::new(k, 2)).unwrap();
    /// t.collect();
    /// assert_eq!(t.stats().dead_versions, 1);   // the snapshot still sees value 1
    /// drop(e);
    /// t.collect();
    /// assert_eq!(t.stats().dead_versions, 0);
    /// ```
    pub fn collect(&self) {
        self.reclaimer.collect(&self.parts());
    }

    /// The table's counters.
    ///
    /// ```
    /// let t = rtm::RouteTable::<rtm::Ipv4Net, u32>::new();
    /// assert_eq!(t.stats().live_routes, 0);
    /// ```
    pub fn stats(&self) -> Stats {
        Stats {
            live_routes: self.route_count(),
            dead_versions: self.reclaimer.dead(),
            open_enumerations: self.slots.open_count(),
            retired_slots: self.slots.retired_count(),
            reclaimer_overruns: self.reclaimer.overruns(),
            version: self.version(),
            memory_bytes: self.memory_bytes(),
        }
    }

    /// See [`Stats::memory_bytes`].
    fn memory_bytes(&self) -> usize {
        let versions = self.route_count() + self.reclaimer.dead() + self.reclaimer.markers();
        std::mem::size_of::<Self>()
            + self.list.bytes()
            + versions * std::mem::size_of::<VersionNode<V>>()
            + self.clock.journal.bytes()
            + self.slots.bytes()
    }

    /// The maximum number of open enumerations.
    ///
    /// ```
    /// assert_eq!(rtm::RouteTable::<rtm::Ipv4Net, ()>::with_max_enumerations(0).max_enumerations(), 1);
    /// ```
    pub fn max_enumerations(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn next_owned(&self, cursor: &mut Cursor<P>) -> Option<Route<P, V>> {
        let guard = self.epoch.pin();
        cursor.next(&self.list, &self.clock, &guard)
    }

    pub(crate) fn close_owned(&self, slot: usize, gen: u64) {
        self.slots.close_owned(slot, gen);
        self.after_close();
    }

    /// Records the commit of version `v` (timestamp `ts`) of `node` in the journal.
    #[inline]
    fn record(
        &self,
        ts: u64,
        node: NodeRef<'_, RouteKey<P>, V>,
        v: *const VersionNode<V>,
        guard: &crossbeam_epoch::Guard,
    ) {
        // SAFETY: `v` is linked in `node`'s chain and freed only through the epoch, which
        // `guard` pins.
        let version = unsafe { &*v };
        version.set_node(node.as_ptr().cast::<()>());
        self.clock.journal.commit(ts, version.erased(), guard);
    }

    pub(crate) fn parts(&self) -> Parts<'_, P, V, Cursor<P>> {
        Parts {
            list: &self.list,
            clock: &self.clock,
            slots: &self.slots,
            epoch: &self.epoch,
        }
    }

    #[inline]
    pub(crate) fn after_write(&self, _ts: u64) {
        // The Fib first: the reclaimer's step does not delay the write's way to the
        // forwarding table.
        self.help_fib(1);
        self.reclaimer.step(&self.parts());
    }

    /// A commit of `changes` keys is done: the registered Fib follower, if any, applies
    /// what is pending within a budget, unless someone is applying already (never waits).
    #[inline]
    pub(crate) fn help_fib(&self, changes: usize) {
        // Relaxed: a hint. A writer that misses a registration made meanwhile leaves its
        // commit to the next writer or to the follower thread.
        if self.fib_help.set.load(Ordering::Relaxed) {
            self.fib_help.run(changes);
        }
    }

    #[inline]
    pub(crate) fn after_close(&self) {
        self.reclaimer.closed();
        if self.reclaimer.held() {
            self.reclaimer.step(&self.parts());
        }
    }
}

/// A Fib follower that lets the table's writers apply their own commits to its Fib
/// (`Fib::follow_helped`).
pub(crate) trait WriterHelp: Send + Sync {
    /// A writer committed `changes` keys: apply what is pending, within a budget.
    fn help(&self, changes: usize);
}

/// Where a table keeps its helped follower: a weak reference (the follower owns a share
/// of the table, so a strong one would be a cycle), read with `try_read` so that a writer
/// never waits for a registration.
pub(crate) struct HelpSlot {
    /// Whether a follower is registered (a hint checked before the lock).
    set: AtomicBool,
    helper: std::sync::RwLock<Option<std::sync::Weak<dyn WriterHelp>>>,
}

impl HelpSlot {
    fn new() -> Self {
        HelpSlot {
            set: AtomicBool::new(false),
            helper: std::sync::RwLock::new(None),
        }
    }

    fn run(&self, changes: usize) {
        let helper = match self.helper.try_read() {
            Ok(slot) => slot.as_ref().and_then(std::sync::Weak::upgrade),
            // Being registered or unregistered: leave the commit to the follower thread.
            Err(_) => None,
        };
        if let Some(h) = helper {
            h.help(changes);
        }
    }

    /// Registers `helper`; false if another live one is registered.
    pub(crate) fn register(&self, helper: std::sync::Weak<dyn WriterHelp>) -> bool {
        let mut slot = self.helper.write().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_some_and(|w| w.strong_count() > 0) {
            return false;
        }
        *slot = Some(helper);
        // Relaxed: a hint (see `help_fib`).
        self.set.store(true, Ordering::Relaxed);
        true
    }

    /// Unregisters `helper` if it is the one registered.
    pub(crate) fn unregister(&self, helper: &std::sync::Weak<dyn WriterHelp>) {
        let mut slot = self.helper.write().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_some_and(|w| w.ptr_eq(helper)) {
            *slot = None;
            // Relaxed: a hint (see `help_fib`).
            self.set.store(false, Ordering::Relaxed);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::criteria::Criteria;
    use ipnet::Ipv4Net;

    fn key(p: &str, proto: u32) -> RouteKey<Ipv4Net> {
        RouteKey::new(
            p.parse().unwrap(),
            crate::ProtocolId(proto),
            crate::InterfaceId(1),
            "192.0.2.1".parse().unwrap(),
        )
    }

    #[test]
    fn retired_keys_leave_the_skip_list() {
        let t = RouteTable::<Ipv4Net, u32>::new();
        for i in 0..100u32 {
            t.add_route(Route::new(key(&format!("10.{}.0.0/16", i), 1), i))
                .unwrap();
        }
        for i in 0..100u32 {
            t.delete_route(&key(&format!("10.{}.0.0/16", i), 1))
                .unwrap();
        }
        t.collect();
        let g = t.epoch.pin();
        assert_eq!(t.list.len_slow(&g), 0);
        drop(g);
        // the keys come back as new nodes
        t.add_route(Route::new(key("10.5.0.0/16", 1), 5)).unwrap();
        assert_eq!(t.get_route(&key("10.5.0.0/16", 1)).unwrap().value, 5);
    }

    /// After the writers ran a whole journal ahead of the reclaimer (its steps paused, as
    /// a stalled or outpaced reclaimer would be), ordinary steps find every key the lost
    /// commits named and give its memory back, without `collect`.
    #[test]
    fn steps_recover_from_an_overrun_without_collect() {
        let t = RouteTable::<Ipv4Net, u32>::builder()
            .journal_capacity(64)
            .build();
        let k = |i: u32| key(&format!("10.{}.{}.0/24", i / 256, i % 256), 1);
        crate::reclaim::pause(true);
        for i in 0..500u32 {
            t.add_route(Route::new(k(i), i)).unwrap();
            t.add_route(Route::new(k(i), i + 1)).unwrap();
        }
        for i in 0..400u32 {
            t.delete_route(&k(i)).unwrap();
        }
        crate::reclaim::pause(false);
        let g = t.epoch.pin();
        assert_eq!(
            t.list.len_slow(&g),
            500,
            "deleted keys wait for the reclaimer"
        );
        drop(g);
        assert_eq!(t.stats().dead_versions, 900);
        // New keys, each write running one step (and shadowing nothing).
        for i in 0..100u32 {
            t.add_route(Route::new(key(&format!("192.168.{i}.0/24"), 1), i))
                .unwrap();
        }
        let s = t.stats();
        assert!(s.reclaimer_overruns > 0, "the journal was overrun");
        assert_eq!(s.dead_versions, 0, "the replaced and deleted values went");
        let g = t.epoch.pin();
        assert_eq!(
            t.list.len_slow(&g),
            200,
            "the deleted keys left the skip list"
        );
    }

    #[test]
    fn a_slot_whose_generation_would_wrap_is_retired() {
        let t = RouteTable::<Ipv4Net, u32>::with_max_enumerations(1);
        t.slots.force_last_generation(0);
        // an RAII enumeration uses no generation: the slot survives it
        drop(t.enumerate(Criteria::all()).unwrap());
        let h = t.create_enumeration_handle(Criteria::all()).unwrap();
        assert_eq!(h.into_raw() & ((1 << 52) - 1), (1 << 52) - 1);
        t.close_enumeration_handle(h).unwrap();
        assert_eq!(t.stats().retired_slots, 1);
        assert_eq!(
            t.create_enumeration_handle(Criteria::all()),
            Err(Error::NoSystemResources)
        );
        assert_eq!(t.enumerate_get_next_route(h), Err(Error::InvalidHandle));
    }
}

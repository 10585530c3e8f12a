//! The follower: keeps a [`Fib`] in step with a [`RouteTable`]'s best routes (or best
//! sets) by applying the table's best-route (or best-set) feed.

//!
//! [`FibFollower`] borrows its table and [`OwnedFibFollower`] holds an `Arc` of it; both
//! are one [`Follower`], generic over how the table is held (as the enumerations are) and
//! over what id a network maps to ([`Paths`]): the next hop of its best route
//! ([`BestRoute`], [`Fib::follow`]) or the interned group of its best set's next hops
//! ([`Multipath`], [`Fib::follow_multipath`]). The feed, the rebuild on lag, the
//! publishing and the panic safety are the same code for both.

use std::collections::hash_map::Entry as Slot;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use super::reader::Fib;
use super::writer::FibWriter;
use crate::feed::{subscribe_in, FeedCore};
use crate::journal::Read;
use crate::nexthop::NexthopGroups;
use crate::sync::{fence, AtomicBool, AtomicU64, Mutex, MutexGuard, Ordering};
use crate::table::WriterHelp;
use crate::{Change, Criteria, Error, Prefix, Route, RouteTable, Version};

/// The embedder's map from a best route to a next-hop id.
type NextHop<'t, P, V> = Box<dyn Fn(&Route<P, V>) -> u32 + Send + 't>;

/// The embedder's map from a route of a best set to its next hop, a group member.
type MemberOf<'t, P, V, N> = Box<dyn Fn(&Route<P, V>) -> N + Send + 't>;

/// The follower of an [`OwnedFibFollower`].
type OwnedInner<P, V> = Follower<Arc<RouteTable<P, V>>, P, V, BestRoute<'static, P, V>>;

/// What id a follower's networks map to, and how it keeps them: the part of a follower
/// that differs between [`Fib::follow`] and [`Fib::follow_multipath`].
pub(crate) trait Paths<P: Prefix, V: Clone + Send + Sync + 'static> {
    /// The criteria of the follower's snapshot and feed.
    fn criteria(&self) -> Criteria<P>;

    /// Applies one change of the feed (which stands at or just before its version).
    /// [`Error::Lagged`] when what it had to read is gone (the follower rebuilds); another
    /// error leaves the Fib as it was for this change (the next sync tries it again).
    fn apply<T: Deref<Target = RouteTable<P, V>>>(
        &mut self,
        writer: &mut FibWriter<P>,
        feed: &mut FeedCore<T, P, V>,
        change: &Change<P, V>,
    ) -> Result<(), Error>;

    /// Makes `prefix`'s entry that of `routes`, the network's routes in a snapshot of the
    /// criteria (at least one).
    fn install(
        &mut self,
        writer: &mut FibWriter<P>,
        prefix: P,
        routes: &[Route<P, V>],
    ) -> Result<(), Error>;

    /// Removes `prefix`'s entry.
    fn remove(&mut self, writer: &mut FibWriter<P>, prefix: P);

    /// The writer published everything applied so far.
    fn published(&mut self);
}

/// How a [`Fib::follow`] follower maps networks: each to its best route's next hop, the
/// `u32` the embedder's `next_hop` gives. It only names the default of
/// [`FibFollower`]'s last parameter; nothing is done with it directly.
///
/// ```
/// use rtm::{BestRoute, Fib, FibFollower, Ipv4Net, RouteTable};
/// let table = RouteTable::<Ipv4Net, u32>::new();
/// let (_fib, f): (_, FibFollower<'_, Ipv4Net, u32, BestRoute<'_, Ipv4Net, u32>>) =
///     Fib::follow(&table, |r| r.value).unwrap();
/// # let _ = f;
/// ```
pub struct BestRoute<'t, P: Prefix, V> {
    next_hop: NextHop<'t, P, V>,
}

/// How a [`Fib::follow_multipath`] follower maps networks: each to the id, in its
/// [`NexthopGroups`], of the group of its best set's next hops. It holds one reference
/// to each group some network of its Fib uses, however many networks share it.
///
/// ```
/// use rtm::{Fib, FibFollower, Ipv4Net, Multipath, NexthopGroups, RouteTable};
/// use std::net::Ipv4Addr;
/// let table = RouteTable::<Ipv4Net, ()>::new();
/// let groups = NexthopGroups::<Ipv4Addr>::new();
/// let (_fib, f): (_, FibFollower<'_, Ipv4Net, (), Multipath<'_, Ipv4Net, (), Ipv4Addr>>) =
///     Fib::follow_multipath(&table, &groups, |r| r.key.next_hop).unwrap();
/// # let _ = f;
/// ```
pub struct Multipath<'t, P: Prefix, V, N: Clone + Eq + Hash + Send + Sync + 'static> {
    groups: &'t NexthopGroups<N>,
    next_hop: MemberOf<'t, P, V, N>,
    /// Per group id this follower holds a reference of: how many networks of the writer's
    /// (working) state use it.
    uses: HashMap<u32, u32>,
    /// Ids whose use count fell to zero since the last publish: released at the next one
    /// (if still unused), so that no published version names a released id.
    unused: Vec<u32>,
    /// The network and version last installed from a table read: the other changes of
    /// that network in that commit have nothing more to say.
    last: Option<(P, Version)>,
}

/// The single writer of a [`Fib`] made by [`Fib::follow`]: applies the table's best-route
/// changes, in version order, and publishes them.
///
/// A follower that must keep the Fib within a millisecond of a table written flat out
/// needs its core when changes come: on a loaded machine, run its thread ahead of
/// ordinary tasks (a reserved core, or a real-time policy such as `SCHED_FIFO`). A
/// follower thread waiting behind another task for a millisecond leaves every change of
/// that millisecond, and of its catch-up after it, that much behind (docs/BENCHMARKS.md,
/// the `thread-first` mode of `benches/fib.rs`). First in line, it takes its core from
/// whatever runs there each time changes wake it: where it shares cores with busy
/// threads, they pay for its millisecond (the example `forwarding_engine`, with
/// `--follower-first`).
///
/// If the embedder's `next_hop` (or its `V`'s `Clone`) panics inside a sync, the panic
/// comes out of that sync and nothing is lost: the next sync starts with the change the
/// panic interrupted and returns what the failed one would have (counting the changes it
/// applied before the panic). Until then readers see the last version published.
///
/// ```
/// use rtm::{Fib, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
///
/// let table = RouteTable::<Ipv4Net, u32>::new();
/// let (fib, mut follower) = Fib::follow(&table, |r: &Route<Ipv4Net, u32>| r.value).unwrap();
/// let key = RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId(2), InterfaceId(1),
///                         "192.0.2.1".parse().unwrap());
/// table.add_route(Route::new(key, 42)).unwrap();
/// assert_eq!(fib.lookup("10.1.1.1".parse().unwrap()), None); // not synced yet
/// assert_eq!(follower.sync(), Ok(1));
/// assert_eq!(fib.lookup("10.1.1.1".parse().unwrap()), Some(42));
/// assert_eq!(fib.version(), table.version());
/// ```
///
/// The last parameter says what the Fib's ids are: [`BestRoute`] (the default) for
/// [`Fib::follow`], [`Multipath`] for [`Fib::follow_multipath`].
pub struct FibFollower<'t, P: Prefix, V: Clone + Send + Sync + 'static, M = BestRoute<'t, P, V>> {
    inner: Follower<&'t RouteTable<P, V>, P, V, M>,
}

/// A [`FibFollower`] that owns a share of its table (`Arc<RouteTable>`), so it is
/// `'static + Send`: it can be kept in a struct or moved into a spawned thread without
/// borrowing the table. It makes the same promises, and is made by [`Fib::follow_owned`].
///
/// ```
/// use std::sync::Arc;
/// use rtm::{Fib, InterfaceId, Ipv4Net, OwnedFibFollower, ProtocolId, Route, RouteKey, RouteTable};
///
/// let table = Arc::new(RouteTable::<Ipv4Net, u32>::new());
/// let (fib, mut follower): (Fib<Ipv4Net>, OwnedFibFollower<Ipv4Net, u32>) =
///     Fib::follow_owned(Arc::clone(&table), |r| r.value).unwrap();
/// let key = RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId(2), InterfaceId(1),
///                         "192.0.2.1".parse().unwrap());
/// table.add_route(Route::new(key, 42)).unwrap();
/// let synced = std::thread::spawn(move || follower.sync()).join().unwrap();
/// assert_eq!(synced, Ok(1));
/// assert_eq!(fib.lookup("10.1.1.1".parse().unwrap()), Some(42));
/// ```
pub struct OwnedFibFollower<P: Prefix, V: Clone + Send + Sync + 'static> {
    inner: OwnedInner<P, V>,
}

/// What every follower is, written once: a table holder `T` (a borrow or an `Arc`), what
/// its networks map to (`M`, a [`Paths`]: the embedder's `next_hop`, which may borrow),
/// the feed and the writer.
pub(crate) struct Follower<T, P, V, M>
where
    T: Deref<Target = RouteTable<P, V>>,
    P: Prefix,
    V: Clone + Send + Sync + 'static,
{
    table: T,
    paths: M,
    /// `None` from a sync that lagged, or a rebuild that failed or unwound, until the
    /// next one subscribes again.
    feed: Option<FeedCore<T, P, V>>,
    writer: FibWriter<P>,
    /// The version last published.
    published: Version,
    /// The change being applied: read from the feed (which has moved past it) and not
    /// yet in the writer. Left here by a `next_hop` that panicked, for the next sync.
    unapplied: Option<Change<P, V>>,
    /// Changes applied by the sync in progress, or by one that unwound (the next sync
    /// counts them as its own, as the failed one would have).
    applied: usize,
}

impl<P: Prefix, V: Clone + Send + Sync + 'static, M> std::fmt::Debug for FibFollower<'_, P, V, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FibFollower")
            .field("writer", &self.inner.writer)
            .finish_non_exhaustive()
    }
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> std::fmt::Debug for OwnedFibFollower<P, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedFibFollower")
            .field("writer", &self.inner.writer)
            .finish_non_exhaustive()
    }
}

impl<P: Prefix> Fib<P> {
    /// A Fib of `table`'s current best routes, and the follower that keeps it in step.
    /// `next_hop` maps a network's best route to the id lookups return. It should depend
    /// on the route alone: a change whose old and new best routes map to the same id
    /// writes nothing to the Fib.
    ///
    /// Holds one enumeration slot of the table (its feed) and needs one more while it
    /// builds: [`Error::NoSystemResources`] when they are not free. The directory size is
    /// chosen from the table's size ([`FibWriter::for_prefixes`]), and a sync grows it when
    /// the table outgrows it ([`FibWriter::set_direct_bits`]: one build of the Fib, in the
    /// thread that syncs).
    ///
    /// ```
    /// use rtm::{Fib, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
    /// let table = RouteTable::<Ipv4Net, u32>::new();
    /// let key = RouteKey::new("192.0.2.0/24".parse().unwrap(), ProtocolId(2), InterfaceId(3),
    ///                         "198.51.100.1".parse().unwrap());
    /// table.add_route(Route::new(key, 0)).unwrap();
    /// let (fib, _follower) = Fib::follow(&table, |r| r.key.interface.0).unwrap();
    /// assert_eq!(fib.lookup("192.0.2.77".parse().unwrap()), Some(3));
    /// assert_eq!(fib.len(), 1);
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn follow<'t, V: Clone + Send + Sync + 'static>(
        table: &'t RouteTable<P, V>,
        next_hop: impl Fn(&Route<P, V>) -> u32 + Send + 't,
    ) -> Result<(Fib<P>, FibFollower<'t, P, V>), Error> {
        let paths = BestRoute {
            next_hop: Box::new(next_hop),
        };
        let (fib, inner) = Follower::start(table, paths)?;
        Ok((fib, FibFollower { inner }))
    }

    /// A Fib whose lookups return, for each network, the id in `groups` of the group of
    /// its best set's next hops (each route of
    /// [`RouteTable::best_routes`](crate::RouteTable::best_routes) mapped through
    /// `next_hop`), and the follower that keeps it in step. Networks with the same set of
    /// next hops share one id; forward with [`Fib::lookup`] (or `lookup_batch`) and then
    /// [`NexthopGroups::select`], and take a failed next hop out of every network at once
    /// with [`NexthopGroups::set_down`], without a write to the table or the Fib.
    ///
    /// The Fib holds ids only, as [`Fib::follow`]'s does: its memory per prefix and its
    /// lookup are the same. A change of a network's best set is one update of its entry
    /// (a lookup sees the old group or the new one, never a group missing a path of
    /// both): the follower interns the new set's group before it installs it, and
    /// releases a group only once a published version no longer uses it.
    ///
    /// References: the follower holds one reference to each group any of its networks
    /// uses (it interns a set once per distinct set, not per network), gives it back after
    /// the publish that stops using it, and gives back all it holds when dropped. After
    /// that drop the Fib's last version still names those ids, which may then be gone or
    /// reused: stop forwarding with a Fib whose follower is dropped. `next_hop` should
    /// depend on the route alone. A set the registry refuses (more than
    /// [`MAX_MEMBERS`](crate::MAX_MEMBERS) next hops, or no id free) makes `sync` return
    /// that error with the network's entry as it was; the next sync tries again.
    ///
    /// Slots and errors as [`Fib::follow`].
    ///
    /// ```
    /// use rtm::{Fib, InterfaceId, Ipv4Net, NexthopGroups, ProtocolId, Route, RouteKey, RouteTable};
    /// use std::net::Ipv4Addr;
    /// let table = RouteTable::<Ipv4Net, ()>::new();
    /// let groups = NexthopGroups::<Ipv4Addr>::new();
    /// let (fib, mut follower) = Fib::follow_multipath(&table, &groups, |r| r.key.next_hop).unwrap();
    /// let key = |p: &str, hop: &str| RouteKey::new(p.parse().unwrap(), ProtocolId::BGP, InterfaceId(1), hop.parse().unwrap());
    /// for p in ["10.0.0.0/8", "172.16.0.0/12"] {
    ///     table.add_route(Route::new(key(p, "192.0.2.1"), ())).unwrap();
    ///     table.add_route(Route::new(key(p, "192.0.2.2"), ())).unwrap(); // equal cost
    /// }
    /// follower.sync().unwrap();
    /// let id = fib.lookup("10.1.2.3".parse().unwrap()).unwrap();
    /// assert_eq!(fib.lookup("172.16.0.1".parse().unwrap()), Some(id)); // one shared group
    /// assert_eq!(groups.members(id).unwrap().len(), 2);
    /// assert_eq!(groups.len(), 1);
    ///
    /// groups.set_down(&"192.0.2.1".parse().unwrap(), true);           // a next hop fails
    /// assert_eq!(groups.select(id, 7), Some("192.0.2.2".parse().unwrap()));
    ///
    /// table.delete_routes(rtm::Criteria::all()).unwrap();
    /// follower.sync().unwrap();
    /// assert!(fib.is_empty());
    /// assert_eq!(groups.len(), 0);                                      // released
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn follow_multipath<
        't,
        V: Clone + Send + Sync + 'static,
        N: Clone + Eq + Hash + Send + Sync + 'static,
    >(
        table: &'t RouteTable<P, V>,
        groups: &'t NexthopGroups<N>,
        next_hop: impl Fn(&Route<P, V>) -> N + Send + 't,
    ) -> Result<(Fib<P>, FibFollower<'t, P, V, Multipath<'t, P, V, N>>), Error> {
        let paths = Multipath {
            groups,
            next_hop: Box::new(next_hop),
            uses: HashMap::new(),
            unused: Vec::new(),
            last: None,
        };
        let (fib, inner) = Follower::start(table, paths)?;
        Ok((fib, FibFollower { inner }))
    }

    /// As [`Fib::follow`], but the follower holds `table` (a share of it) instead of a
    /// borrow, so it is `'static + Send`. Same slots, same errors.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use rtm::{Error, Fib, Ipv4Net, RouteTable};
    /// let table = Arc::new(RouteTable::<Ipv4Net, u32>::with_max_enumerations(2));
    /// let (fib, follower) = Fib::follow_owned(Arc::clone(&table), |r| r.value).unwrap();
    /// assert!(fib.is_empty());
    /// assert_eq!(table.stats().open_enumerations, 1);     // the follower's feed
    /// assert_eq!(Fib::follow_owned(Arc::clone(&table), |r| r.value).err(), Some(Error::NoSystemResources));
    /// drop(follower);
    /// assert_eq!(table.stats().open_enumerations, 0);
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn follow_owned<V: Clone + Send + Sync + 'static>(
        table: Arc<RouteTable<P, V>>,
        next_hop: impl Fn(&Route<P, V>) -> u32 + Send + 'static,
    ) -> Result<(Fib<P>, OwnedFibFollower<P, V>), Error> {
        let paths = BestRoute {
            next_hop: Box::new(next_hop),
        };
        let (fib, inner) = Follower::start(table, paths)?;
        Ok((fib, OwnedFibFollower { inner }))
    }
}

impl<T, P, V, M> Follower<T, P, V, M>
where
    T: Deref<Target = RouteTable<P, V>> + Clone,
    P: Prefix,
    V: Clone + Send + Sync + 'static,
    M: Paths<P, V>,
{
    /// A follower of `table`'s best routes (or sets), built, and a reader handle of its Fib.
    fn start(table: T, paths: M) -> Result<(Fib<P>, Self), Error> {
        // Under loom a model's Fib is a few words: a directory of 2 bits.
        #[cfg(not(loom))]
        let writer = FibWriter::for_prefixes(table.network_count());
        #[cfg(loom)]
        let writer = FibWriter::with_direct_bits(2);
        let mut follower = Follower {
            table,
            paths,
            feed: None,
            writer,
            published: Version(0),
            unapplied: None,
            applied: 0,
        };
        follower.rebuild()?;
        // Built before any reader handle exists: trim the arena to what is used, leaving
        // room for churn to grow into.
        let used = follower.writer.used_words();
        follower.writer.shrink_to_fit(used / 8 + (1 << 9));
        Ok((follower.writer.fib(), follower))
    }

    /// The writer, for statistics.
    fn writer(&self) -> &FibWriter<P> {
        &self.writer
    }

    fn drain(&mut self, wait: Option<Duration>) -> Result<usize, Error> {
        // A panic (in the embedder's `next_hop`, or in its `V`'s `Clone` inside the feed)
        // leaves everything here consistent: the feed has not moved past a change it did
        // not return, a returned change is in `unapplied` until it is in the writer, and
        // the writer holds every change before it (unpublished). So the next sync goes on
        // where the failed one stopped.
        let Some(feed) = self.feed.as_mut() else {
            return self.rebuild();
        };
        let mut next = match self.unapplied.take() {
            Some(change) => Ok(Some(change)),
            None => match wait {
                Some(t) => feed.next_timeout(t),
                None => feed.try_next(),
            },
        };
        // The changes committed by now, and no more: a writer that commits faster than
        // they are applied must not keep a sync from publishing.
        let target = self.table.version();
        // Changes applied since this sync last published.
        let mut unpublished = 0usize;
        loop {
            match next {
                Ok(Some(change)) => {
                    let change = self.unapplied.insert(change);
                    match self.paths.apply(&mut self.writer, feed, change) {
                        Ok(()) => {}
                        Err(Error::Lagged) => return self.rebuild(),
                        // Left in `unapplied`: the next sync tries it again.
                        Err(e) => return Err(e),
                    }
                    self.unapplied = None;
                    self.applied += 1;
                    unpublished += 1;
                    // Never inside a batch's commit: the Fib shows commits whole. So the
                    // step is the first commit boundary after `PUBLISH_EVERY` changes (a
                    // multiple of it may well fall inside a commit).
                    if unpublished >= PUBLISH_EVERY && !feed.in_commit() {
                        // A long backlog (after the follower was descheduled, say) shows
                        // up in steps rather than all at its end.
                        unpublished = 0;
                        self.published = feed.version();
                        self.writer.publish(self.published);
                        self.paths.published();
                    }
                }
                Ok(None) => break,
                Err(Error::Lagged) => return self.rebuild(),
                Err(e) => return Err(e),
            }
            if feed.version() >= target {
                break;
            }
            next = feed.try_next();
        }
        // Nothing new (an idle table): no publish, which would bump the recycling counter
        // and make readers inside a lookup walk again.
        if feed.version() != self.published {
            self.published = feed.version();
            self.publish_sized(self.published);
            self.paths.published();
        } else if self.outgrown() {
            // Writers applied everything (a helped follower), but only a sync grows the
            // directory: the same version, laid out again.
            self.publish_sized(self.published);
        }
        Ok(std::mem::take(&mut self.applied))
    }

    /// Whether the table has outgrown the Fib's directory ([`FibWriter::direct_bits_for`]).
    fn outgrown(&self) -> bool {
        !cfg!(loom)
            && FibWriter::<P>::direct_bits_for(self.writer.len()) > self.writer.direct_bits()
    }

    /// Publishes the writer as `version`, laid out again in a larger directory if the
    /// table has outgrown its own ([`FibWriter::direct_bits_for`]; a table that shrinks
    /// keeps its directory). Only in the follower thread's syncs and rebuilds: a relayout
    /// is a pass over the whole table, never a helping writer's.
    fn publish_sized(&mut self, version: Version) {
        // Under loom a model's Fib keeps its directory of 2 bits (`outgrown`).
        if self.outgrown() {
            let bits = FibWriter::<P>::direct_bits_for(self.writer.len());
            self.writer.set_direct_bits(bits, version);
        } else {
            self.writer.publish(version);
        }
    }

    /// A writer's share of the work: applies at most `budget` of the changes readable now
    /// and publishes at the last commit boundary it reached. Never rebuilds: a feed that
    /// lagged is dropped, and the follower thread's next sync rebuilds. `None` when there
    /// is no feed to apply from; else how many changes it applied.
    fn help_step(&mut self, budget: usize) -> Option<usize> {
        let feed = self.feed.as_mut()?;
        let mut done = 0;
        let mut lagged = false;
        while done < budget {
            let next = match self.unapplied.take() {
                Some(change) => Ok(Some(change)),
                None => feed.try_next(),
            };
            match next {
                Ok(Some(change)) => {
                    let change = self.unapplied.insert(change);
                    match self.paths.apply(&mut self.writer, feed, change) {
                        Ok(()) => {}
                        Err(Error::Lagged) => {
                            lagged = true;
                            break;
                        }
                        // Left in `unapplied`, for the follower thread's sync to report.
                        Err(_) => break,
                    }
                    self.unapplied = None;
                    done += 1;
                }
                Ok(None) => break,
                Err(_) => {
                    lagged = true;
                    break;
                }
            }
        }
        if lagged {
            self.feed = None;
            self.unapplied = None;
            return Some(done);
        }
        // Only between commits: the Fib shows commits whole. A writer that stopped inside
        // one leaves the rest of it in the writer, unpublished, for the next to finish.
        if !feed.in_commit() && feed.version() != self.published {
            self.published = feed.version();
            self.writer.publish(self.published);
            self.paths.published();
        }
        Some(done)
    }

    /// The journal position of the next commit this follower reads (0: no feed).
    fn next_position(&self) -> u64 {
        self.feed.as_ref().map_or(0, |f| f.version().0 + 1)
    }

    /// Subscribes afresh and makes the writer's prefixes those of the snapshot (only the
    /// differences are written), publishing them at the snapshot's version. Returns the
    /// number of networks.
    fn rebuild(&mut self) -> Result<usize, Error> {
        // The dead feed's slot is needed for the new subscription; the snapshot holds
        // whatever it had not applied.
        self.feed = None;
        self.unapplied = None;
        self.applied = 0;
        let table = &self.table;
        let (snapshot, feed) = subscribe_in(
            T::clone(table),
            self.paths.criteria(),
            |c| table.enumerate(c),
            |e| e.snapshot(),
        )?;
        let version = snapshot.snapshot();
        let mut seen = HashSet::new();
        // The snapshot's routes of one network (one for best routes; a best set's come
        // together, in key order).
        let mut run: Vec<Route<P, V>> = Vec::new();
        for route in snapshot {
            if let Some(first) = run.first() {
                if first.key.prefix != route.key.prefix {
                    let prefix = first.key.prefix;
                    self.paths.install(&mut self.writer, prefix, &run)?;
                    seen.insert(prefix);
                    run.clear();
                }
            }
            run.push(route);
        }
        if let Some(first) = run.first() {
            let prefix = first.key.prefix;
            self.paths.install(&mut self.writer, prefix, &run)?;
            seen.insert(prefix);
        }
        if seen.len() != self.writer.len() {
            for prefix in self.writer.prefixes() {
                if !seen.contains(&prefix) {
                    self.paths.remove(&mut self.writer, prefix);
                }
            }
        }
        self.publish_sized(version);
        self.paths.published();
        self.published = version;
        let mut feed = feed;
        // Room for the networks a day's churn touches, about an eighth of a full table's
        // (RIPE RIS, 2026-05-11: 134,867 of 1,042,325).
        feed.reserve_networks(self.writer.len() / 8);
        self.feed = Some(feed);
        Ok(self.writer.len())
    }
}

/// The methods both followers share, written once. `$follow` is the constructor an
/// example calls; `$table` how it is given the table.
macro_rules! follower_methods {
    ($follow:literal, $table:literal, $clone:literal) => {
        /// Applies every change committed so far (those committed while it runs are left
        /// for the next call), publishes them (as one version, or one per 256 changes of a
        /// long backlog), and returns how many. On [`Error::Lagged`] it rebuilds the Fib
        /// from a fresh snapshot and goes on (readers keep reading the old state meanwhile)
        /// and returns the number of networks in the rebuilt Fib.
        ///
        /// ```
        /// use rtm::{Fib, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
        #[doc = concat!("let table = ", $table, ";")]
        #[doc = concat!("let (fib, mut f) = Fib::", $follow, "(", $clone, ", |r| r.value).unwrap();")]
        /// assert_eq!(f.sync(), Ok(0));
        /// let key = RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId(2), InterfaceId(1),
        ///                         "192.0.2.1".parse().unwrap());
        /// table.add_route(Route::new(key, 5)).unwrap();
        /// table.delete_route(&key).unwrap();
        /// assert_eq!(f.sync(), Ok(2));
        /// assert!(fib.is_empty());
        /// ```
        pub fn sync(&mut self) -> Result<usize, Error> {
            self.inner.drain(None)
        }

        /// As `sync`, waiting up to `timeout` for the first change (as
        /// [`Feed::next_timeout`](crate::Feed::next_timeout) does: a follower that keeps up
        /// with a busy writer naps between syncs rather than have each commit wake it).
        ///
        /// ```
        /// use std::time::Duration;
        /// use rtm::{Fib, Ipv4Net, RouteTable};
        #[doc = concat!("let table = ", $table, ";")]
        #[doc = concat!("let (_fib, mut f) = Fib::", $follow, "(", $clone, ", |r| r.value).unwrap();")]
        /// assert_eq!(f.sync_timeout(Duration::from_millis(1)), Ok(0));
        /// ```
        pub fn sync_timeout(&mut self, timeout: Duration) -> Result<usize, Error> {
            self.inner.drain(Some(timeout))
        }

        /// The follower's writer, for statistics.
        ///
        /// ```
        /// use rtm::{Fib, Ipv4Net, RouteTable};
        #[doc = concat!("let table = ", $table, ";")]
        #[doc = concat!("let (_fib, f) = Fib::", $follow, "(", $clone, ", |r| r.value).unwrap();")]
        /// assert!(f.writer().is_empty());
        /// ```
        pub fn writer(&self) -> &FibWriter<P> {
            self.inner.writer()
        }
    };
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> FibFollower<'_, P, V> {
    follower_methods!("follow", "RouteTable::<Ipv4Net, u32>::new()", "&table");
}

impl<P: Prefix, V: Clone + Send + Sync + 'static, N: Clone + Eq + Hash + Send + Sync + 'static>
    FibFollower<'_, P, V, Multipath<'_, P, V, N>>
{
    follower_methods!(
        "follow_multipath",
        "RouteTable::<Ipv4Net, u32>::new();\nlet groups = rtm::NexthopGroups::<u32>::new()",
        "&table, &groups"
    );
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> OwnedFibFollower<P, V> {
    follower_methods!(
        "follow_owned",
        "std::sync::Arc::new(RouteTable::<Ipv4Net, u32>::new())",
        "table.clone()"
    );
}

/// A sync publishes at the first commit boundary after this many changes.
const PUBLISH_EVERY: usize = 256;

impl<P: Prefix, V: Clone + Send + Sync + 'static> Paths<P, V> for BestRoute<'_, P, V> {
    fn criteria(&self) -> Criteria<P> {
        Criteria::all().best_only()
    }

    /// The network's next hop becomes `new`'s, or goes.
    fn apply<T: Deref<Target = RouteTable<P, V>>>(
        &mut self,
        writer: &mut FibWriter<P>,
        _feed: &mut FeedCore<T, P, V>,
        change: &Change<P, V>,
    ) -> Result<(), Error> {
        let next_hop = &self.next_hop;
        match (&change.old, &change.new) {
            (old, Some(new)) => {
                let id = next_hop(new);
                // The Fib holds `old`'s next hop for the network: if the new best route has
                // the same, there is nothing to write (most BGP updates change attributes,
                // not where the traffic goes).
                if old.as_ref().is_none_or(|old| next_hop(old) != id) {
                    let _ = writer.insert(new.key.prefix, id);
                }
            }
            (Some(old), None) => {
                let _ = writer.remove(old.key.prefix);
            }
            (None, None) => {}
        }
        Ok(())
    }

    fn install(
        &mut self,
        writer: &mut FibWriter<P>,
        prefix: P,
        routes: &[Route<P, V>],
    ) -> Result<(), Error> {
        if let Some(best) = routes.first() {
            // A table's prefixes are canonical, so insert cannot fail.
            let _ = writer.insert(prefix, (self.next_hop)(best));
        }
        Ok(())
    }

    fn remove(&mut self, writer: &mut FibWriter<P>, prefix: P) {
        let _ = writer.remove(prefix);
    }

    fn published(&mut self) {}
}

impl<P, V, N> Multipath<'_, P, V, N>
where
    P: Prefix,
    V: Clone + Send + Sync + 'static,
    N: Clone + Eq + Hash + Send + Sync + 'static,
{
    /// Makes `prefix`'s entry the group of `members` (none: no entry). The new group is
    /// interned (and counted) before the entry changes, and the old one is uncounted
    /// after, so a group in use is never released.
    fn set(&mut self, writer: &mut FibWriter<P>, prefix: P, members: &[N]) -> Result<(), Error> {
        let old = writer.get(prefix);
        if members.is_empty() {
            if let Some(o) = old {
                let _ = writer.remove(prefix);
                self.unuse(o);
            }
            return Ok(());
        }
        let id = self.groups.intern(members)?;
        match self.uses.entry(id) {
            Slot::Occupied(mut e) => {
                // This follower holds a reference already: give the new one back (it
                // cannot fail, the group is live).
                let _ = self.groups.release(id);
                *e.get_mut() += 1;
            }
            Slot::Vacant(e) => {
                e.insert(1);
            }
        }
        if old == Some(id) {
            self.unuse(id);
            return Ok(());
        }
        // A table's prefixes are canonical, so insert cannot fail.
        let _ = writer.insert(prefix, id);
        if let Some(o) = old {
            self.unuse(o);
        }
        Ok(())
    }

    /// One network fewer uses `id`.
    fn unuse(&mut self, id: u32) {
        if let Some(n) = self.uses.get_mut(&id) {
            *n -= 1;
            if *n == 0 {
                self.unused.push(id);
            }
        }
    }
}

impl<P, V, N> Paths<P, V> for Multipath<'_, P, V, N>
where
    P: Prefix,
    V: Clone + Send + Sync + 'static,
    N: Clone + Eq + Hash + Send + Sync + 'static,
{
    fn criteria(&self) -> Criteria<P> {
        Criteria::all().best_multipath()
    }

    /// A change of a route in a network's best set: the network's entry becomes the group
    /// of its whole set at the change's version, read from the table (the feed gives the
    /// set's changes route by route; the first of a commit's changes of a network installs
    /// the set the commit left, the others find it installed).
    fn apply<T: Deref<Target = RouteTable<P, V>>>(
        &mut self,
        writer: &mut FibWriter<P>,
        feed: &mut FeedCore<T, P, V>,
        change: &Change<P, V>,
    ) -> Result<(), Error> {
        let Some(prefix) = change
            .new
            .as_ref()
            .or(change.old.as_ref())
            .map(|r| r.key.prefix)
        else {
            return Ok(());
        };
        if self.last == Some((prefix, change.version)) {
            return Ok(());
        }
        if let (Some(o), Some(n)) = (&change.old, &change.new) {
            // A route of the set rewritten in place: the set of next hops is the same if
            // its next hop is (the commit's other changes of the network come on their own).
            if (self.next_hop)(o) == (self.next_hop)(n) {
                return Ok(());
            }
        }
        let routes = feed.best_set_at(prefix, change.version.0)?;
        let members: Vec<N> = routes.iter().map(|r| (self.next_hop)(r)).collect();
        self.set(writer, prefix, &members)?;
        self.last = Some((prefix, change.version));
        Ok(())
    }

    fn install(
        &mut self,
        writer: &mut FibWriter<P>,
        prefix: P,
        routes: &[Route<P, V>],
    ) -> Result<(), Error> {
        self.last = None;
        let members: Vec<N> = routes.iter().map(|r| (self.next_hop)(r)).collect();
        self.set(writer, prefix, &members)
    }

    fn remove(&mut self, writer: &mut FibWriter<P>, prefix: P) {
        if let Some(o) = writer.get(prefix) {
            let _ = writer.remove(prefix);
            self.unuse(o);
        }
    }

    /// Releases the groups no network uses since the last publish, unless one uses
    /// them again.
    fn published(&mut self) {
        for id in std::mem::take(&mut self.unused) {
            if self.uses.get(&id) == Some(&0) {
                self.uses.remove(&id);
                let _ = self.groups.release(id);
            }
        }
    }
}

impl<P: Prefix, V, N: Clone + Eq + Hash + Send + Sync + 'static> Drop for Multipath<'_, P, V, N> {
    /// Gives back every reference the follower holds (see [`Fib::follow_multipath`]).
    fn drop(&mut self) {
        for (&id, _) in self.uses.iter() {
            let _ = self.groups.release(id);
        }
    }
}

/// How many changes beyond its own commit's a helping writer may apply (see
/// [`Fib::follow_helped`]).
pub(crate) const HELP_SLICE: usize = 64;

/// What a [`HelpedFibFollower`] shares with its table's writers: the follower, behind a
/// lock that only the follower thread ever waits for.
struct Helped<P: Prefix, V: Clone + Send + Sync + 'static> {
    state: Mutex<OwnedInner<P, V>>,
    table: Arc<RouteTable<P, V>>,
    /// The journal position of the next commit to apply, as the last holder of `state`
    /// left it (0: no feed). Relaxed: the follower thread's hint of whether to wait.
    next: AtomicU64,
    /// Changes applied by writers (a statistic).
    by_writers: AtomicU64,
    /// Set by a writer whose changes made the table outgrow the Fib's directory: growing
    /// it is a pass over the table, so it is left to the follower thread's next sync.
    /// Relaxed: a hint.
    outgrown: AtomicBool,
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> Helped<P, V> {
    /// Whether journal position `ts` holds a commit (or a gap) yet.
    fn written(&self, ts: u64) -> bool {
        let guard = self.table.epoch.pin();
        !matches!(self.table.clock.journal.read(ts, &guard), Read::NotYet)
    }

    /// The state, if nobody holds it. A poisoned lock (a panic in a `next_hop` called by
    /// the follower thread's sync) is taken as it is: the follower is consistent after a
    /// panic (see [`FibFollower`]).
    fn try_state(&self) -> Option<MutexGuard<'_, OwnedInner<P, V>>> {
        match self.state.try_lock() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// The state, waiting for a writer that holds it (the follower thread only).
    fn state(&self) -> MutexGuard<'_, OwnedInner<P, V>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Releases the state and says whether a commit may be waiting that a writer left
    /// to the holder (the handoff protocol of [`Fib::follow_helped`]).
    fn release(&self, state: MutexGuard<'_, OwnedInner<P, V>>) -> bool {
        let next = state.next_position();
        // Relaxed: a hint for the follower thread's wait; the handoff below does not use it.
        self.next.store(next, Ordering::Relaxed);
        drop(state);
        #[cfg(rtm_negative = "fib-help-no-recheck")]
        {
            // Broken on purpose: a writer that found the state held is never answered.
            let _ = next;
            false
        }
        #[cfg(not(rtm_negative = "fib-help-no-recheck"))]
        {
            // SeqCst fence: store buffering against a writer's fence between its journal
            // record and its `try_lock`. Either the writer's `try_lock` comes after our
            // unlock in the lock's order (and it takes the state itself), or this fence
            // comes after its fence and our read of the journal sees its record.
            fence(Ordering::SeqCst);
            next != 0 && self.written(next)
        }
    }
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> WriterHelp for Helped<P, V> {
    fn help(&self, changes: usize) {
        let mut budget = changes.saturating_add(HELP_SLICE);
        loop {
            // SeqCst fence: our commit's journal record, before it, against the holder's
            // fence after its unlock (see `release`).
            fence(Ordering::SeqCst);
            let Some(mut state) = self.try_state() else {
                // The holder looks at the journal again after it unlocks.
                return;
            };
            // A panic in the embedder's `next_hop` does not come out of a write: the
            // change stays unapplied (the follower is consistent) and the follower
            // thread's next sync meets it again.
            let done =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| state.help_step(budget)));
            // Relaxed: a hint for the follower thread (see `outgrown`); stored once, not
            // by every write until the next sync.
            if state.outgrown() && !self.outgrown.load(Ordering::Relaxed) {
                self.outgrown.store(true, Ordering::Relaxed);
            }
            let again = self.release(state);
            let Ok(Some(done)) = done else {
                // No feed (it lagged): rebuilding is the follower thread's work.
                return;
            };
            // Relaxed: a statistic.
            self.by_writers.fetch_add(done as u64, Ordering::Relaxed);
            // At least one per round, so a writer's rounds are bounded by its budget.
            budget = budget.saturating_sub(done.max(1));
            if !again || budget == 0 {
                return;
            }
        }
    }
}

/// A follower whose table's writers apply their own commits to the Fib: made by
/// [`Fib::follow_helped`]. A follower thread calling [`sync_timeout`](Self::sync_timeout)
/// is optional; it picks up what writers left (a commit beyond a writer's budget, a
/// rebuild after [`Error::Lagged`]).
///
/// ```
/// use std::sync::Arc;
/// use rtm::{Fib, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
/// let table = Arc::new(RouteTable::<Ipv4Net, u32>::new());
/// let (fib, follower) = Fib::follow_helped(Arc::clone(&table), |r| r.value).unwrap();
/// let key = RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId(2), InterfaceId(1),
///                         "192.0.2.1".parse().unwrap());
/// table.add_route(Route::new(key, 42)).unwrap();       // the writer applies it
/// assert_eq!(fib.lookup("10.1.1.1".parse().unwrap()), Some(42));
/// assert_eq!(fib.version(), table.version());
/// assert_eq!(follower.applied_by_writers(), 1);
/// ```
pub struct HelpedFibFollower<P: Prefix, V: Clone + Send + Sync + 'static> {
    shared: Arc<Helped<P, V>>,
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> std::fmt::Debug for HelpedFibFollower<P, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HelpedFibFollower")
            .field("applied_by_writers", &self.applied_by_writers())
            .finish_non_exhaustive()
    }
}

impl<P: Prefix> Fib<P> {
    /// As [`Fib::follow_owned`], but every writer of `table` that finds the follower idle
    /// applies the changes pending, its own commit's first, to the Fib itself before its
    /// write returns: the Fib keeps up with the writers without a follower thread, and
    /// one that waits for a core no longer leaves the Fib behind.
    ///
    /// A writer never waits: it takes the follower with a `try_lock`, and if someone holds
    /// it (the follower thread, another writer) it leaves its commit to that holder, which
    /// after unlocking looks at the journal again and goes on if a commit came meanwhile.
    /// A writer applies at most its own commit's number of keys plus 64 changes, and
    /// publishes only at a commit boundary; what it leaves, the next writer or the
    /// follower thread applies. On [`Error::Lagged`] writers stop helping and the follower
    /// thread's next sync rebuilds (an O(table) pass is never a writer's). A panic in
    /// `next_hop` inside a write is caught: the change stays for the next sync.
    ///
    /// One helped follower per table: [`Error::Busy`] while another is alive. Slots and
    /// other errors as [`Fib::follow`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use rtm::{Batch, Error, Fib, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
    /// let table = Arc::new(RouteTable::<Ipv4Net, u32>::new());
    /// let (fib, mut follower) = Fib::follow_helped(Arc::clone(&table), |r| r.value).unwrap();
    /// assert_eq!(Fib::follow_helped(Arc::clone(&table), |r| r.value).err(), Some(Error::Busy));
    /// let mut b = Batch::new();
    /// for i in 0..3u8 {
    ///     let key = RouteKey::new(format!("10.{i}.0.0/16").parse().unwrap(), ProtocolId(2),
    ///                             InterfaceId(1), "192.0.2.1".parse().unwrap());
    ///     b.add_route(Route::new(key, u32::from(i)));
    /// }
    /// table.commit(b).unwrap();
    /// assert_eq!(fib.version(), table.version());          // no sync
    /// assert_eq!(fib.lookup("10.2.0.1".parse().unwrap()), Some(2));
    /// assert_eq!(follower.sync(), Ok(0));                   // nothing left
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn follow_helped<V: Clone + Send + Sync + 'static>(
        table: Arc<RouteTable<P, V>>,
        next_hop: impl Fn(&Route<P, V>) -> u32 + Send + 'static,
    ) -> Result<(Fib<P>, HelpedFibFollower<P, V>), Error> {
        let paths = BestRoute {
            next_hop: Box::new(next_hop),
        };
        let (fib, inner) = Follower::start(Arc::clone(&table), paths)?;
        let shared = Arc::new(Helped {
            next: AtomicU64::new(inner.next_position()),
            state: Mutex::new(inner),
            table,
            by_writers: AtomicU64::new(0),
            outgrown: AtomicBool::new(false),
        });
        let weak: std::sync::Weak<dyn WriterHelp> = Arc::downgrade(&shared) as _;
        if !shared.table.fib_help.register(weak) {
            return Err(Error::Busy);
        }
        Ok((fib, HelpedFibFollower { shared }))
    }
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> HelpedFibFollower<P, V> {
    /// Applies every change committed so far that writers left, as
    /// [`FibFollower::sync`] (waiting for a writer that is applying), and returns how many
    /// this call applied (writers' changes are counted by
    /// [`applied_by_writers`](Self::applied_by_writers)).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use rtm::{Fib, Ipv4Net, RouteTable};
    /// let table = Arc::new(RouteTable::<Ipv4Net, u32>::new());
    /// let (_fib, mut f) = Fib::follow_helped(Arc::clone(&table), |r| r.value).unwrap();
    /// assert_eq!(f.sync(), Ok(0));
    /// ```
    pub fn sync(&mut self) -> Result<usize, Error> {
        let mut state = self.shared.state();
        // Relaxed: a hint; the drain below grows the directory if it is outgrown.
        self.shared.outgrown.store(false, Ordering::Relaxed);
        let r = state.drain(None);
        if self.shared.release(state) {
            // A writer left a commit while we held the state: take it too, unless a
            // writer holds the state now (then it is that writer's).
            if let Some(mut state) = self.shared.try_state() {
                let more = state.drain(None);
                let _ = self.shared.release(state);
                return match (r, more) {
                    (Ok(a), Ok(b)) => Ok(a + b),
                    (Err(e), _) | (_, Err(e)) => Err(e),
                };
            }
        }
        r
    }

    /// As `sync`, after a nap of `timeout` (without holding the follower, so that writers
    /// apply their commits meanwhile) if writers left nothing. It never asks a commit to
    /// wake it: a wake-up would hand the core to this thread in the middle of the write
    /// that is applying its own commit. If after the nap writers have still left nothing
    /// (no commit, and no directory the table has outgrown), it returns 0 without taking
    /// the follower, so no writer finds it held.
    ///
    /// ```
    /// use std::time::Duration;
    /// use std::sync::Arc;
    /// use rtm::{Fib, Ipv4Net, RouteTable};
    /// let table = Arc::new(RouteTable::<Ipv4Net, u32>::new());
    /// let (_fib, mut f) = Fib::follow_helped(Arc::clone(&table), |r| r.value).unwrap();
    /// assert_eq!(f.sync_timeout(Duration::from_millis(1)), Ok(0));
    /// ```
    pub fn sync_timeout(&mut self, timeout: Duration) -> Result<usize, Error> {
        // Relaxed: a hint; the sync below reads the feed under the lock.
        // The position only grows, and a holder stores it as it leaves, so a position not
        // written yet is the follower's own: nothing is pending.
        let next = self.shared.next.load(Ordering::Relaxed);
        // Relaxed: a hint (see `Helped::outgrown`).
        let idle = |s: &Helped<P, V>| !s.written(next) && !s.outgrown.load(Ordering::Relaxed);
        if next != 0 && idle(&self.shared) {
            std::thread::sleep(timeout);
            if idle(&self.shared) {
                return Ok(0);
            }
        }
        self.sync()
    }

    /// How many changes the table's writers applied to the Fib.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use rtm::{Fib, Ipv4Net, RouteTable};
    /// let table = Arc::new(RouteTable::<Ipv4Net, u32>::new());
    /// let (_fib, f) = Fib::follow_helped(Arc::clone(&table), |r| r.value).unwrap();
    /// assert_eq!(f.applied_by_writers(), 0);
    /// ```
    pub fn applied_by_writers(&self) -> u64 {
        // Relaxed: a statistic.
        self.shared.by_writers.load(Ordering::Relaxed)
    }

    /// The number of networks in the follower's writer (as published or about to be).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use rtm::{Fib, Ipv4Net, RouteTable};
    /// let table = Arc::new(RouteTable::<Ipv4Net, u32>::new());
    /// let (_fib, f) = Fib::follow_helped(Arc::clone(&table), |r| r.value).unwrap();
    /// assert_eq!(f.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.shared.state().writer.len()
    }

    /// Whether the follower's writer holds no network.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use rtm::{Fib, Ipv4Net, RouteTable};
    /// let table = Arc::new(RouteTable::<Ipv4Net, u32>::new());
    /// let (_fib, f) = Fib::follow_helped(Arc::clone(&table), |r| r.value).unwrap();
    /// assert!(f.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> Drop for HelpedFibFollower<P, V> {
    /// Writers stop helping (one in the middle of it finishes first, holding its share).
    fn drop(&mut self) {
        let weak: std::sync::Weak<dyn WriterHelp> = Arc::downgrade(&self.shared) as _;
        self.shared.table.fib_help.unregister(&weak);
    }
}

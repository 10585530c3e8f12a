//! The follower: keeps a [`Fib`] in step with a [`RouteTable`]'s best routes by applying
//! the table's best-route feed.

//!
//! [`FibFollower`] borrows its table and [`OwnedFibFollower`] holds an `Arc` of it; both
//! are one [`Follower`], generic over how the table is held (as the enumerations are).

use std::collections::HashSet;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use super::reader::Fib;
use super::writer::FibWriter;
use crate::feed::{subscribe_in, FeedCore};
use crate::{Change, Criteria, Error, Prefix, Route, RouteTable, Version};

/// The embedder's map from a best route to a next-hop id.
type NextHop<'t, P, V> = Box<dyn Fn(&Route<P, V>) -> u32 + Send + 't>;

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
pub struct FibFollower<'t, P: Prefix, V: Clone + Send + Sync + 'static> {
    inner: Follower<'t, &'t RouteTable<P, V>, P, V>,
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
    inner: Follower<'static, Arc<RouteTable<P, V>>, P, V>,
}

/// What both followers are, written once: a table holder `T` (a borrow or an `Arc`), the
/// embedder's `next_hop` (which may borrow for `'h`), the best-route feed and the writer.
pub(crate) struct Follower<'h, T, P, V>
where
    T: Deref<Target = RouteTable<P, V>>,
    P: Prefix,
    V: Clone + Send + Sync + 'static,
{
    table: T,
    next_hop: NextHop<'h, P, V>,
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

impl<P: Prefix, V: Clone + Send + Sync + 'static> std::fmt::Debug for FibFollower<'_, P, V> {
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
    /// chosen from the table's size ([`FibWriter::for_prefixes`]).
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
        let (fib, inner) = Follower::start(table, Box::new(next_hop))?;
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
        let (fib, inner) = Follower::start(table, Box::new(next_hop))?;
        Ok((fib, OwnedFibFollower { inner }))
    }
}

impl<'h, T, P, V> Follower<'h, T, P, V>
where
    T: Deref<Target = RouteTable<P, V>> + Clone,
    P: Prefix,
    V: Clone + Send + Sync + 'static,
{
    /// A follower of `table`'s best routes, built, and a reader handle of its Fib.
    fn start(table: T, next_hop: NextHop<'h, P, V>) -> Result<(Fib<P>, Self), Error> {
        let writer = FibWriter::for_prefixes(table.network_count());
        let mut follower = Follower {
            table,
            next_hop,
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
        follower.writer.shrink_to_fit(used / 8 + (1 << 12));
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
        loop {
            match next {
                Ok(Some(change)) => {
                    let change = self.unapplied.insert(change);
                    apply(&mut self.writer, &*self.next_hop, change);
                    self.unapplied = None;
                    self.applied += 1;
                    // Never inside a batch's commit: the Fib shows commits whole.
                    if self.applied.is_multiple_of(PUBLISH_EVERY) && !feed.in_commit() {
                        // A long backlog (after the follower was descheduled, say) shows
                        // up in steps rather than all at its end.
                        self.published = feed.version();
                        self.writer.publish(self.published);
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
            self.writer.publish(self.published);
        }
        Ok(std::mem::take(&mut self.applied))
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
            Criteria::all().best_only(),
            |c| table.enumerate(c),
            |e| e.snapshot(),
        )?;
        let version = snapshot.snapshot();
        let mut seen = HashSet::new();
        for route in snapshot {
            let prefix = route.key.prefix;
            // A table's prefixes are canonical, so insert cannot fail.
            let _ = self.writer.insert(prefix, (self.next_hop)(&route));
            seen.insert(prefix);
        }
        if seen.len() != self.writer.len() {
            for prefix in self.writer.prefixes() {
                if !seen.contains(&prefix) {
                    let _ = self.writer.remove(prefix);
                }
            }
        }
        self.writer.publish(version);
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

impl<P: Prefix, V: Clone + Send + Sync + 'static> OwnedFibFollower<P, V> {
    follower_methods!(
        "follow_owned",
        "std::sync::Arc::new(RouteTable::<Ipv4Net, u32>::new())",
        "table.clone()"
    );
}

/// A sync publishes at least once per this many changes.
const PUBLISH_EVERY: usize = 256;

/// Applies one best-route change: the network's next hop becomes `new`'s, or goes.
fn apply<P: Prefix, V>(
    writer: &mut FibWriter<P>,
    next_hop: &dyn Fn(&Route<P, V>) -> u32,
    change: &Change<P, V>,
) {
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
}

//! A panic in the embedder's `Clone` of a route value, on every read path: where it
//! surfaces, that it loses nothing, and that the table stays fully usable afterwards.
//!
//! The rule: the panic propagates out of the call, the call has no effect on the cursor,
//! feed or follower it was made on, and the next call returns what the failed one would
//! have. Where each panic surfaces:
//!
//! * `get_route`, `best_route`, `lookup`: out of the call. They hold no slot, only an epoch
//!   guard, which the unwinding drops; nothing else changes.
//! * `enumerate_get_next_route`, `enumerate_get_next_routes`: out of the call. The handle's
//!   slot goes back to idle while the panic unwinds (or is released, if a close arrived
//!   meanwhile), so the handle stays open, usable and closable; its cursor has not moved.
//! * `add_route` replacing a route, `delete_route`: out of the call, after the write
//!   committed (the clone is of the route being returned); the counters already count it.
//! * `Enumeration::next`, `Enumeration::next_batch`: out of the call. The enumeration stays
//!   open and has not moved (a batch leaves `out` as it found it); if the unwinding drops
//!   it, that closes it.
//! * `Feed::try_next`, of every kind of criteria: out of the call; the feed has not moved.
//! * `FibFollower::sync`: out of the call (as does a panic in its `next_hop`); the next sync
//!   applies and counts what the failed one would have.
//!
//! The payload counts its copies, so every test also checks that no value is dropped twice
//! or leaked.

use std::net::Ipv4Addr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;

use rtm::{
    Change, Criteria, Error, Fib, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable,
};

/// What the payloads of one test share: the switches and the count of live copies.
#[derive(Default)]
struct Ctl {
    /// `Clone` panics while this is set.
    panic: AtomicBool,
    /// When not zero, counts clones down: the clone that takes it to zero panics.
    fuse: AtomicU32,
    /// `Clone` waits while this is set, after raising `entered`.
    hold: AtomicBool,
    entered: AtomicBool,
    live: AtomicIsize,
}

/// A route value whose `Clone` panics (or waits) on demand, and whose copies are counted.
struct Payload {
    id: u32,
    ctl: Arc<Ctl>,
}

impl Payload {
    fn new(ctl: &Arc<Ctl>, id: u32) -> Payload {
        ctl.live.fetch_add(1, Ordering::SeqCst);
        Payload {
            id,
            ctl: Arc::clone(ctl),
        }
    }
}

impl Clone for Payload {
    fn clone(&self) -> Self {
        if self.ctl.hold.load(Ordering::SeqCst) {
            self.ctl.entered.store(true, Ordering::SeqCst);
            while self.ctl.hold.load(Ordering::SeqCst) {
                thread::yield_now();
            }
        }
        if self.ctl.panic.load(Ordering::SeqCst) {
            panic!("clone of route value {} refused", self.id);
        }
        let fuse = self
            .ctl
            .fuse
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| f.checked_sub(1));
        if fuse == Ok(1) {
            panic!("clone of route value {} blew the fuse", self.id);
        }
        Payload::new(&self.ctl, self.id)
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Payload({})", self.id)
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        let before = self.ctl.live.fetch_sub(1, Ordering::SeqCst);
        assert!(
            before > 0,
            "value {} dropped more often than created",
            self.id
        );
    }
}

type Table = RouteTable<Ipv4Net, Payload>;

fn key(i: u32) -> RouteKey<Ipv4Net> {
    RouteKey::new(
        Ipv4Net::new(Ipv4Addr::new(10, i as u8, 0, 0), 16).unwrap(),
        ProtocolId(1),
        InterfaceId(1),
        Ipv4Addr::new(192, 0, 2, 1),
    )
}

/// A one-slot table (so a slot that is never freed blocks every later enumeration) with
/// routes 1..=n, value i for key i.
fn table(ctl: &Arc<Ctl>, n: u32) -> Table {
    let t = Table::with_max_enumerations(1);
    for i in 1..=n {
        t.add_route(Route::new(key(i), Payload::new(ctl, i)))
            .unwrap();
    }
    t
}

fn quiet<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    catch_unwind(AssertUnwindSafe(f))
}

/// The table still enumerates keys 1..=n, through both APIs, in its single slot.
fn fully_usable(t: &Table, n: u32) {
    assert_eq!(t.stats().open_enumerations, 0);
    let keys: Vec<_> = t
        .enumerate(Criteria::all())
        .unwrap()
        .map(|r| r.key)
        .collect();
    assert_eq!(keys, (1..=n).map(key).collect::<Vec<_>>());
    let h = t.create_enumeration_handle(Criteria::all()).unwrap();
    for i in 1..=n {
        assert_eq!(t.enumerate_get_next_route(h).unwrap().key, key(i));
    }
    assert_eq!(t.enumerate_get_next_route(h), Err(Error::NoMoreRoutes));
    t.close_enumeration_handle(h).unwrap();
    assert_eq!(t.stats().open_enumerations, 0);
}

/// Drops the table and checks that every value was dropped exactly once. Values that
/// `collect()` unlinked are freed by crossbeam-epoch's process-wide collector once no
/// thread is pinned, hence the flushes (and the tests of this file run one at a time).
fn all_freed(t: Table, ctl: &Ctl) {
    drop(t);
    for _ in 0..64 {
        if ctl.live.load(Ordering::SeqCst) == 0 {
            break;
        }
        crossbeam_epoch::pin().flush();
    }
    assert_eq!(ctl.live.load(Ordering::SeqCst), 0, "leaked route values");
}

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn a_panic_in_handle_next_leaves_the_handle_usable() {
    let _s = serial();
    let ctl = Arc::new(Ctl::default());
    let t = table(&ctl, 3);
    let h = t.create_enumeration_handle(Criteria::all()).unwrap();
    assert_eq!(t.enumerate_get_next_route(h).unwrap().value.id, 1);

    ctl.panic.store(true, Ordering::SeqCst);
    assert!(quiet(|| t.enumerate_get_next_route(h)).is_err());
    ctl.panic.store(false, Ordering::SeqCst);

    // The handle is open and idle, not busy forever: it returns route 2 (whose clone
    // panicked), goes on, and closes normally.
    assert_eq!(t.stats().open_enumerations, 1);
    assert_eq!(t.enumerate_get_next_route(h).unwrap().value.id, 2);
    assert_eq!(t.enumerate_get_next_route(h).unwrap().value.id, 3);
    assert_eq!(t.enumerate_get_next_route(h), Err(Error::NoMoreRoutes));
    assert_eq!(t.close_enumeration_handle(h), Ok(()));
    assert_eq!(t.enumerate_get_next_route(h), Err(Error::InvalidHandle));
    fully_usable(&t, 3);
    all_freed(t, &ctl);
}

#[test]
fn a_panicking_handle_call_unpins_its_snapshot_once_closed() {
    let _s = serial();
    let ctl = Arc::new(Ctl::default());
    let t = table(&ctl, 2);
    let h = t.create_enumeration_handle(Criteria::all()).unwrap();
    // Replace route 1: the handle's snapshot still sees the old value.
    t.add_route(Route::new(key(1), Payload::new(&ctl, 11)))
        .unwrap();
    t.collect();
    assert_eq!(t.stats().dead_versions, 1);

    ctl.panic.store(true, Ordering::SeqCst);
    assert!(quiet(|| t.enumerate_get_next_route(h)).is_err());
    ctl.panic.store(false, Ordering::SeqCst);

    t.collect();
    assert_eq!(t.stats().dead_versions, 1, "the snapshot is still open");
    t.close_enumeration_handle(h).unwrap();
    t.collect();
    assert_eq!(t.stats().dead_versions, 0, "the snapshot stayed pinned");
    assert_eq!(t.stats().open_enumerations, 0);
    let h = t.create_enumeration_handle(Criteria::all()).unwrap();
    assert_eq!(t.enumerate_get_next_route(h).unwrap().value.id, 11);
    t.close_enumeration_handle(h).unwrap();
    all_freed(t, &ctl);
}

/// A call held inside `Clone`: another call on the handle is `Busy` (the handle stays
/// valid), a close succeeds, and the panicking call releases the slot as it unwinds.
#[test]
fn a_close_during_a_panicking_call_is_finished_by_the_unwinding() {
    let _s = serial();
    let ctl = Arc::new(Ctl::default());
    let t = table(&ctl, 2);
    let h = t.create_enumeration_handle(Criteria::all()).unwrap();
    t.add_route(Route::new(key(2), Payload::new(&ctl, 22)))
        .unwrap();

    ctl.hold.store(true, Ordering::SeqCst);
    ctl.panic.store(true, Ordering::SeqCst);
    thread::scope(|s| {
        let caller = s.spawn(|| quiet(|| t.enumerate_get_next_route(h)).is_err());
        while !ctl.entered.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        // The call holds the cursor.
        assert_eq!(t.enumerate_get_next_route(h), Err(Error::Busy));
        assert_eq!(Error::Busy.code(), 170);
        assert_eq!(t.close_enumeration_handle(h), Ok(()));
        // Closed is closed, even while the call in flight still holds the slot.
        assert_eq!(t.enumerate_get_next_route(h), Err(Error::InvalidHandle));
        assert_eq!(t.close_enumeration_handle(h), Err(Error::InvalidHandle));
        ctl.hold.store(false, Ordering::SeqCst);
        assert!(caller.join().unwrap(), "the clone did not panic");
    });
    ctl.panic.store(false, Ordering::SeqCst);

    // The unwinding released the slot and its snapshot.
    assert_eq!(t.stats().open_enumerations, 0);
    t.collect();
    assert_eq!(t.stats().dead_versions, 0);
    assert_eq!(t.enumerate_get_next_route(h), Err(Error::InvalidHandle));
    let ids: Vec<u32> = t
        .enumerate(Criteria::all())
        .unwrap()
        .map(|r| r.value.id)
        .collect();
    assert_eq!(ids, [1, 22]);
    all_freed(t, &ctl);
}

#[test]
fn a_busy_handle_stays_valid() {
    let _s = serial();
    let ctl = Arc::new(Ctl::default());
    let t = table(&ctl, 3);
    let h = t.create_enumeration_handle(Criteria::all()).unwrap();
    ctl.hold.store(true, Ordering::SeqCst);
    thread::scope(|s| {
        let caller = s.spawn(|| t.enumerate_get_next_route(h).map(|r| r.value.id));
        while !ctl.entered.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        assert_eq!(t.enumerate_get_next_route(h), Err(Error::Busy));
        ctl.hold.store(false, Ordering::SeqCst);
        assert_eq!(caller.join().unwrap(), Ok(1));
    });
    assert_eq!(t.enumerate_get_next_route(h).unwrap().value.id, 2);
    assert_eq!(t.enumerate_get_next_route(h).unwrap().value.id, 3);
    assert_eq!(t.close_enumeration_handle(h), Ok(()));
    fully_usable(&t, 3);
    all_freed(t, &ctl);
}

#[test]
fn a_panic_in_enumeration_next_keeps_the_enumeration_or_closes_it() {
    let _s = serial();
    let ctl = Arc::new(Ctl::default());
    let t = table(&ctl, 3);
    let mut e = t.enumerate(Criteria::all()).unwrap();
    ctl.panic.store(true, Ordering::SeqCst);
    assert!(quiet(|| e.next()).is_err());
    ctl.panic.store(false, Ordering::SeqCst);
    // Still open, and route 1 (whose clone panicked) comes next.
    assert_eq!(t.stats().open_enumerations, 1);
    assert_eq!(e.next().unwrap().value.id, 1);
    assert_eq!(e.next().unwrap().value.id, 2);
    drop(e);

    // An enumeration dropped by the unwinding is closed.
    ctl.panic.store(true, Ordering::SeqCst);
    assert!(quiet(|| t.enumerate(Criteria::all()).unwrap().count()).is_err());
    ctl.panic.store(false, Ordering::SeqCst);
    fully_usable(&t, 3);
    all_freed(t, &ctl);
}

#[test]
fn panics_in_point_reads_leave_the_table_usable() {
    let _s = serial();
    let ctl = Arc::new(Ctl::default());
    let t = table(&ctl, 3);
    let net = key(2).prefix;
    ctl.panic.store(true, Ordering::SeqCst);
    assert!(quiet(|| t.get_route(&key(2))).is_err());
    assert!(quiet(|| t.best_route(&net)).is_err());
    assert!(quiet(|| t.lookup(Ipv4Addr::new(10, 2, 3, 4))).is_err());
    ctl.panic.store(false, Ordering::SeqCst);

    assert_eq!(t.get_route(&key(2)).unwrap().value.id, 2);
    assert_eq!(t.best_route(&net).unwrap().value.id, 2);
    assert_eq!(t.lookup(Ipv4Addr::new(10, 2, 3, 4)).unwrap().value.id, 2);
    // Writes and reclamation go on.
    assert_eq!(t.delete_route(&key(3)).unwrap().value.id, 3);
    t.add_route(Route::new(key(2), Payload::new(&ctl, 20)))
        .unwrap();
    t.collect();
    assert_eq!(t.stats().dead_versions, 0);
    fully_usable(&t, 2);
    all_freed(t, &ctl);
}

#[test]
fn panics_in_writes_come_after_the_commit() {
    let _s = serial();
    let ctl = Arc::new(Ctl::default());
    let t = table(&ctl, 3);
    ctl.panic.store(true, Ordering::SeqCst);
    // Replacing route 1 returns a clone of the old value: the replacement is committed.
    assert!(quiet(|| t.add_route(Route::new(key(1), Payload::new(&ctl, 10)))).is_err());
    assert!(quiet(|| t.delete_route(&key(3))).is_err());
    ctl.panic.store(false, Ordering::SeqCst);

    assert_eq!(t.route_count(), 2);
    assert_eq!(t.get_route(&key(1)).unwrap().value.id, 10);
    assert!(t.get_route(&key(3)).is_none());
    assert_eq!(t.stats().dead_versions, 2, "the shadowed values 1 and 3");
    t.collect();
    assert_eq!(t.stats().dead_versions, 0);
    fully_usable_keys(&t, &[1, 2]);
    all_freed(t, &ctl);
}

fn fully_usable_keys(t: &Table, keys: &[u32]) {
    assert_eq!(t.stats().open_enumerations, 0);
    let got: Vec<_> = t
        .enumerate(Criteria::all())
        .unwrap()
        .map(|r| r.key)
        .collect();
    assert_eq!(got, keys.iter().map(|&i| key(i)).collect::<Vec<_>>());
}

fn ids(routes: &[Route<Ipv4Net, Payload>]) -> Vec<u32> {
    routes.iter().map(|r| r.value.id).collect()
}

#[test]
fn a_panic_in_a_batch_read_loses_nothing() {
    let _s = serial();
    let ctl = Arc::new(Ctl::default());
    let t = table(&ctl, 5);
    let mut e = t.enumerate(Criteria::all()).unwrap();
    let mut page = Vec::new();
    assert_eq!(e.next_batch(1, &mut page), 1);
    // The second clone of the batch panics: the batch is undone, `page` as it was.
    ctl.fuse.store(2, Ordering::SeqCst);
    assert!(quiet(|| e.next_batch(3, &mut page)).is_err());
    assert_eq!(ids(&page), [1]);
    assert_eq!(e.next_batch(3, &mut page), 3);
    assert_eq!(ids(&page), [1, 2, 3, 4]);
    drop(e);

    let h = t.create_enumeration_handle(Criteria::all()).unwrap();
    page.clear();
    assert_eq!(t.enumerate_get_next_routes(h, 2, &mut page), Ok(2));
    ctl.fuse.store(3, Ordering::SeqCst);
    assert!(quiet(|| t.enumerate_get_next_routes(h, 3, &mut page)).is_err());
    assert_eq!(ids(&page), [1, 2]);
    assert_eq!(t.enumerate_get_next_routes(h, 3, &mut page), Ok(3));
    assert_eq!(ids(&page), [1, 2, 3, 4, 5]);
    t.close_enumeration_handle(h).unwrap();
    drop(page);
    fully_usable(&t, 5);
    all_freed(t, &ctl);
}

/// Routes 1..=n, value i for key i, in a table with room for feeds and Fibs.
fn roomy(ctl: &Arc<Ctl>, n: u32) -> Table {
    let t = Table::new();
    for i in 1..=n {
        t.add_route(Route::new(key(i), Payload::new(ctl, i)))
            .unwrap();
    }
    t
}

/// Opens a feed of `criteria` on `t`, commits route 4 (new) and a replacement of route 1,
/// makes the first clone of the feed's next read panic, and checks that the reads after
/// it return exactly the changes the failed read would have.
fn a_feed_loses_nothing(criteria: Criteria<Ipv4Net>) {
    let _s = serial();
    let ctl = Arc::new(Ctl::default());
    let t = roomy(&ctl, 3);
    let mut feed = t.feed(criteria.clone()).unwrap();
    let v0 = t.version().0;
    t.add_route(Route::new(key(4), Payload::new(&ctl, 4)))
        .unwrap();
    drop(t.add_route(Route::new(key(1), Payload::new(&ctl, 10))));
    // What a feed returns that no panic met (each network has one route, so a best_only
    // feed returns the same).
    let expected = [
        Change {
            version: rtm::Version(v0 + 1),
            old: None,
            new: Some(Route::new(key(4), Payload::new(&ctl, 4))),
        },
        Change {
            version: rtm::Version(v0 + 2),
            old: Some(Route::new(key(1), Payload::new(&ctl, 1))),
            new: Some(Route::new(key(1), Payload::new(&ctl, 10))),
        },
    ];
    ctl.fuse.store(1, Ordering::SeqCst);
    assert!(quiet(|| feed.try_next()).is_err());
    assert_eq!(feed.version().0, v0, "the failed read moved the feed");
    assert_eq!(feed.try_next().unwrap().as_ref(), Some(&expected[0]));
    // A panic on the second clone of a change (its `new`, after its `old`).
    ctl.fuse.store(2, Ordering::SeqCst);
    assert!(quiet(|| feed.try_next()).is_err());
    assert_eq!(feed.try_next().unwrap().as_ref(), Some(&expected[1]));
    assert_eq!(feed.try_next(), Ok(None));
    assert_eq!(feed.version(), t.version());
    drop((feed, expected));
    t.collect();
    all_freed(t, &ctl);
}

#[test]
fn a_panic_in_a_feed_loses_no_change() {
    a_feed_loses_nothing(Criteria::all());
}

#[test]
fn a_panic_in_a_best_only_feed_loses_no_change() {
    a_feed_loses_nothing(Criteria::all().best_only());
}

/// The Fib ends equal to the table: every network of keys 1..=n answers as the table does.
fn fib_is_table(fib: &Fib<Ipv4Net>, t: &Table, n: u32) {
    for i in 1..=n + 1 {
        let a = Ipv4Addr::new(10, i as u8, 1, 1);
        assert_eq!(fib.lookup(a), t.lookup(a).map(|r| r.value.id), "{a}");
    }
    assert_eq!(fib.version(), t.version());
}

#[test]
fn a_panic_in_a_followers_clone_loses_no_change() {
    let _s = serial();
    let ctl = Arc::new(Ctl::default());
    let t = roomy(&ctl, 3);
    let (fib, mut follower) = Fib::follow(&t, |r: &Route<Ipv4Net, Payload>| r.value.id).unwrap();
    t.add_route(Route::new(key(4), Payload::new(&ctl, 4)))
        .unwrap();
    ctl.fuse.store(1, Ordering::SeqCst);
    assert!(quiet(|| follower.sync()).is_err());
    // What the failed sync would have done: one change, not a rebuild of four networks.
    assert_eq!(follower.sync(), Ok(1));
    fib_is_table(&fib, &t, 4);
    drop((fib, follower));
    all_freed(t, &ctl);
}

#[test]
fn a_panic_in_next_hop_loses_no_change() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, u32>::new();
    for i in 1..=3 {
        t.add_route(Route::new(key(i), i)).unwrap();
    }
    let boom = AtomicBool::new(false);
    let (fib, mut follower) = Fib::follow(&t, |r: &Route<Ipv4Net, u32>| {
        if boom.swap(false, Ordering::SeqCst) {
            panic!("the embedder's next_hop");
        }
        r.value
    })
    .unwrap();
    t.add_route(Route::new(key(4), 4)).unwrap();
    t.delete_route(&key(2)).unwrap();
    boom.store(true, Ordering::SeqCst);
    assert!(quiet(|| follower.sync()).is_err());
    assert_eq!(follower.sync(), Ok(2));
    for i in 1..=5 {
        let a = Ipv4Addr::new(10, i as u8, 1, 1);
        assert_eq!(fib.lookup(a), t.lookup(a).map(|r| r.value), "{a}");
    }
    assert_eq!(fib.version(), t.version());
}

//! Reclamation with drop-counting payloads: nothing is dropped while a snapshot can see
//! it; everything is dropped exactly once after the last such snapshot closes and
//! `collect()` runs.
//!
//! The tests of this file run one at a time: crossbeam-epoch's collector is process-wide,
//! and `collect()` promises to free at once only when no other thread is pinned.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rtm::{Criteria, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A payload that counts how often each stored original is dropped. Clones (what the
/// table returns) are not counted.
#[derive(Debug)]
struct Tracked {
    id: usize,
    drops: Arc<Vec<AtomicUsize>>,
    original: bool,
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Tracked {
            id: self.id,
            drops: self.drops.clone(),
            original: false,
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if self.original {
            self.drops[self.id].fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct Payloads(Arc<Vec<AtomicUsize>>);

impl Payloads {
    fn new(n: usize) -> Self {
        Payloads(Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect()))
    }
    fn make(&self, id: usize) -> Tracked {
        Tracked {
            id,
            drops: self.0.clone(),
            original: true,
        }
    }
    fn drops(&self, ids: std::ops::Range<usize>) -> Vec<usize> {
        ids.map(|i| self.0[i].load(Ordering::Relaxed)).collect()
    }
}

fn key(k: u32) -> RouteKey<Ipv4Net> {
    RouteKey::new(
        Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 | k << 8), 24).unwrap(),
        ProtocolId(1),
        InterfaceId(1),
        Ipv4Addr::LOCALHOST,
    )
}

const N: usize = 100;

#[test]
fn a_snapshot_keeps_what_it_sees_until_it_closes() {
    let _s = serial();
    let p = Payloads::new(3 * N);
    let t = RouteTable::<Ipv4Net, Tracked>::new();
    for k in 0..N {
        t.add_route(Route::new(key(k as u32), p.make(k))).unwrap();
    }
    let old = t.enumerate(Criteria::all()).unwrap();
    for k in 0..N {
        // replace every route; the returned clone does not count
        let prev = t
            .add_route(Route::new(key(k as u32), p.make(N + k)))
            .unwrap()
            .unwrap();
        assert_eq!(prev.value.id, k);
    }
    for k in 0..N / 2 {
        t.delete_route(&key(k as u32)).unwrap();
    }
    t.collect();
    assert_eq!(
        p.drops(0..N),
        vec![0; N],
        "dropped while a snapshot can see it"
    );
    // the replaced values 0..N are pinned by `old`; the deleted replacements are seen by
    // no snapshot and are gone already
    assert_eq!(t.stats().dead_versions, N);
    assert_eq!(p.drops(N..N + N / 2), vec![1; N / 2]);

    let seen: Vec<usize> = old.map(|r| r.value.id).collect();
    assert_eq!(seen, (0..N).collect::<Vec<_>>());
    // `old` was consumed and dropped by the iteration: its snapshot is released.
    assert_eq!(t.stats().open_enumerations, 0);
    t.collect();
    assert_eq!(
        p.drops(0..N),
        vec![1; N],
        "each original dropped exactly once"
    );
    assert_eq!(
        p.drops(N..N + N / 2),
        vec![1; N / 2],
        "deleted values are dropped"
    );
    assert_eq!(
        p.drops(N + N / 2..2 * N),
        vec![0; N / 2],
        "live values stay"
    );
    assert_eq!(t.stats().dead_versions, 0);
    drop(t);
    assert_eq!(
        p.drops(0..2 * N),
        vec![1; 2 * N],
        "dropping the table drops the rest once"
    );
}

#[test]
fn each_snapshot_releases_only_what_it_alone_sees() {
    let _s = serial();
    let p = Payloads::new(3 * N);
    let t = RouteTable::<Ipv4Net, Tracked>::new();
    let write_all = |base: usize| {
        for k in 0..N {
            t.add_route(Route::new(key(k as u32), p.make(base + k)))
                .unwrap();
        }
    };
    write_all(0);
    let h0 = t.create_enumeration_handle(Criteria::all()).unwrap();
    write_all(N);
    let e1 = t.enumerate(Criteria::all()).unwrap();
    write_all(2 * N);
    t.collect();
    assert_eq!(t.stats().dead_versions, 2 * N);
    e1.close().unwrap();
    t.collect();
    // generation 1 was seen only by e1
    assert_eq!(p.drops(N..2 * N), vec![1; N]);
    assert_eq!(p.drops(0..N), vec![0; N]);
    assert_eq!(t.stats().dead_versions, N);
    // h0 still reads generation 0, in order
    for k in 0..N {
        assert_eq!(t.enumerate_get_next_route(h0).unwrap().value.id, k);
    }
    t.close_enumeration_handle(h0).unwrap();
    t.collect();
    assert_eq!(p.drops(0..N), vec![1; N]);
    assert_eq!(p.drops(2 * N..3 * N), vec![0; N]);
    assert_eq!(t.stats().dead_versions, 0);
}

#[test]
fn a_version_between_two_snapshots_is_freed_while_both_stay_open() {
    let _s = serial();
    let p = Payloads::new(4);
    let t = RouteTable::<Ipv4Net, Tracked>::new();
    t.add_route(Route::new(key(1), p.make(0))).unwrap();
    let a = t.enumerate(Criteria::all()).unwrap();
    t.add_route(Route::new(key(1), p.make(1))).unwrap();
    t.add_route(Route::new(key(1), p.make(2))).unwrap();
    let b = t.enumerate(Criteria::all()).unwrap();
    t.add_route(Route::new(key(1), p.make(3))).unwrap();
    t.collect();
    // value 1 is visible to no snapshot: a sees 0, b sees 2
    assert_eq!(p.drops(0..4), vec![0, 1, 0, 0]);
    assert_eq!(t.stats().dead_versions, 2);
    let (a, b): (Vec<_>, Vec<_>) = (
        a.map(|r| r.value.id).collect(),
        b.map(|r| r.value.id).collect(),
    );
    assert_eq!((a, b), (vec![0], vec![2]));
}

#[test]
fn open_handles_are_released_when_the_table_drops() {
    let _s = serial();
    let p = Payloads::new(2 * N);
    let t = RouteTable::<Ipv4Net, Tracked>::new();
    for k in 0..N {
        t.add_route(Route::new(key(k as u32), p.make(k))).unwrap();
    }
    let _h = t.create_enumeration_handle(Criteria::all()).unwrap();
    for k in 0..N {
        t.delete_route(&key(k as u32)).unwrap();
    }
    drop(t);
    // the table's own memory is freed directly; what the reclaimer deferred needs the epoch
    for _ in 0..8 {
        crossbeam_epoch::pin().flush();
    }
    assert_eq!(p.drops(0..N), vec![1; N]);
}

#[test]
fn churn_without_snapshots_keeps_garbage_bounded_without_collect() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, u64>::new();
    let keys = 1000u32;
    let mut worst = 0;
    for i in 0..200_000u64 {
        let k = (i % keys as u64) as u32;
        if i % 5 == 4 {
            let _ = t.delete_route(&key(k));
        } else {
            t.add_route(Route::new(key(k), i)).unwrap();
        }
        worst = worst.max(t.stats().dead_versions);
    }
    // amortized sweeps start every 4096 + live/2 + retained writes
    assert!(
        worst <= 4096 + 2 * keys as usize,
        "dead versions grew to {worst}"
    );
}

#[test]
fn after_a_close_later_writes_reclaim_what_it_pinned_without_collect() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, u64>::new();
    for k in 0..20_000u32 {
        t.add_route(Route::new(key(k), 0)).unwrap();
    }
    let e = t.enumerate(Criteria::all()).unwrap();
    for k in 0..20_000u32 {
        t.add_route(Route::new(key(k), 1)).unwrap();
    }
    assert!(t.stats().dead_versions >= 20_000);
    drop(e);
    // The close itself does one bounded step, not a pass over what the snapshot pinned...
    assert!(
        t.stats().dead_versions > 19_000,
        "the close paid for the table"
    );
    // ... and each later write does one more, so a bounded number of writes clears it.
    // (The replaced versions of the key written meanwhile stay until the reclaimer next
    // scans the slots, which it does every few hundred commits.)
    let other = key(30_000);
    for i in 0..6_000u64 {
        t.add_route(Route::new(other, i)).unwrap();
    }
    assert!(
        t.stats().dead_versions <= 300,
        "dead versions left: {}",
        t.stats().dead_versions
    );
}

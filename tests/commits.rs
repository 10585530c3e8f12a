//! Commits: a batch applies at one version, all or nothing, seen whole by every reader.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rtm::{
    Batch, Change, Criteria, Error, Fib, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey,
    RouteTable, Version,
};

fn key(p: &str, proto: u32) -> RouteKey<Ipv4Net> {
    RouteKey::new(
        p.parse().unwrap(),
        ProtocolId(proto),
        InterfaceId(1),
        "192.0.2.1".parse().unwrap(),
    )
}

/// Values that a reclamation step unlinked are freed by crossbeam-epoch's process-wide
/// collector once no thread is pinned, and a test that counts drops cannot wait for that
/// while another test's readers pin in a loop: the tests of this file run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn net(i: u32) -> String {
    format!("10.{}.{}.0/24", i / 256, i % 256)
}

#[test]
fn a_batch_commits_at_one_version() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, u32>::new();
    t.add_route(Route::new(key("10.0.0.0/8", 1), 0)).unwrap();
    let before = t.version();
    let mut b = Batch::new();
    b.delete_route(key("10.0.0.0/8", 1));
    for i in 0..100 {
        b.add_route(Route::new(key(&net(i), 1), i));
    }
    let v = t.commit(b).unwrap();
    assert_eq!(t.version(), v);
    assert_eq!(v.0, before.0 + 1, "one clock value for the whole batch");
    assert_eq!(t.route_count(), 100);
    assert!(t.get_route(&key("10.0.0.0/8", 1)).is_none());
    assert_eq!(t.get_route(&key(&net(7), 1)).unwrap().value, 7);
}

#[test]
fn changes_of_one_key_apply_in_batch_order() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, u32>::new();
    let k = key("10.0.0.0/8", 1);
    let mut b = Batch::new();
    b.add_route(Route::new(k, 1)).add_route(Route::new(k, 2));
    t.commit(b).unwrap();
    assert_eq!(t.get_route(&k).unwrap().value, 2, "the last add wins");

    let fresh = key("11.0.0.0/8", 1);
    let mut b = Batch::new();
    b.add_route(Route::new(fresh, 1)).delete_route(fresh);
    t.commit(b).unwrap();
    assert!(
        t.get_route(&fresh).is_none(),
        "add then delete of a new key leaves nothing"
    );

    let mut b = Batch::new();
    b.delete_route(k).add_route(Route::new(k, 3));
    t.commit(b).unwrap();
    assert_eq!(t.get_route(&k).unwrap().value, 3);
}

#[test]
fn a_failed_batch_changes_nothing() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, u32>::new();
    t.add_route(Route::new(key("10.0.0.0/8", 1), 0)).unwrap();
    let v0 = t.version();
    let mut feed = t.feed(Criteria::all()).unwrap();

    let mut b = Batch::new();
    b.add_route(Route::new(key("10.1.0.0/16", 1), 1))
        .delete_route(key("10.0.0.0/8", 1))
        .delete_route(key("10.9.0.0/16", 1)); // not live
    assert_eq!(t.commit(b), Err(Error::NoSuchRoute));

    let mut b = Batch::new();
    b.delete_route(key("10.0.0.0/8", 1))
        .delete_route(key("10.0.0.0/8", 1)); // not live after the first
    assert_eq!(t.commit(b), Err(Error::NoSuchRoute));

    // a delete of a key that is not live fails the batch even when a later add of the
    // same key would make it live
    let mut b = Batch::new();
    b.delete_route(key("10.1.0.0/16", 1))
        .add_route(Route::new(key("10.1.0.0/16", 1), 1));
    assert_eq!(t.commit(b), Err(Error::NoSuchRoute));

    let mut b = Batch::new();
    b.add_route(Route::new(key("10.1.0.0/16", 1), 1))
        .add_route(Route::new(key("10.1.2.3/16", 1), 1)); // host bits
    assert_eq!(t.commit(b), Err(Error::InvalidParameter));

    assert!(t.get_route(&key("10.0.0.0/8", 1)).is_some());
    assert!(t.get_route(&key("10.1.0.0/16", 1)).is_none());
    assert_eq!(t.route_count(), 1);
    assert_eq!(
        feed.try_next(),
        Ok(None),
        "a feed sees nothing of a failed batch"
    );
    let e = t.enumerate(Criteria::all()).unwrap();
    assert_eq!(e.count(), 1);
    assert!(t.version() >= v0);
    drop(feed);
    t.collect();
    // the failed batches' adds of new keys were linked and cancelled; their nodes are
    // gone, and the counts are right (a lone cancelled version is no deletion marker)
    let s = t.stats();
    assert_eq!((s.live_routes, s.dead_versions), (1, 0));
    assert!(s.memory_bytes < 1 << 20, "{s:?}");
}

#[test]
fn an_empty_batch_returns_the_current_version() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, u32>::new();
    t.add_route(Route::new(key("10.0.0.0/8", 1), 0)).unwrap();
    assert_eq!(t.commit(Batch::new()), Ok(t.version()));
    let mut b = Batch::new();
    b.withdraw_route(key("12.0.0.0/8", 1));
    assert_eq!(t.commit(b), Ok(t.version()));
}

/// A value that counts how often it is dropped, per id.
#[derive(Debug)]
struct Counted {
    id: usize,
    drops: Arc<Vec<AtomicUsize>>,
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        // Clones are their own values: count them apart (index + half).
        let half = self.drops.len() / 2;
        Counted {
            id: self.id % half + half,
            drops: Arc::clone(&self.drops),
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops[self.id].fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn every_value_of_a_batch_is_dropped_once_whatever_the_outcome() {
    let _s = serial();
    let n = 50;
    let drops: Arc<Vec<AtomicUsize>> = Arc::new((0..2 * n).map(|_| AtomicUsize::new(0)).collect());
    {
        let t = RouteTable::<Ipv4Net, Counted>::new();
        // a batch that commits
        let mut b = Batch::new();
        for i in 0..n / 2 {
            b.add_route(Route::new(
                key(&net(i as u32), 1),
                Counted {
                    id: i,
                    drops: Arc::clone(&drops),
                },
            ));
        }
        t.commit(b).unwrap();
        // a batch that fails
        let mut b = Batch::new();
        for i in n / 2..n {
            b.add_route(Route::new(
                key(&net(i as u32), 2),
                Counted {
                    id: i,
                    drops: Arc::clone(&drops),
                },
            ));
        }
        b.delete_route(key("99.0.0.0/8", 1));
        assert_eq!(t.commit(b).map(|_| ()), Err(Error::NoSuchRoute));
        // a batch dropped unsent
        let mut b = Batch::new();
        b.add_route(Route::new(
            key("1.0.0.0/8", 1),
            Counted {
                id: 0,
                drops: Arc::clone(&drops),
            },
        ));
        drop(b);
        assert_eq!(drops[0].load(Ordering::SeqCst), 1);
        drops[0].store(0, Ordering::SeqCst);
        t.collect();
    }
    // Only this thread pins now, so a few flushes advance the epoch past the deferrals.
    for _ in 0..64 {
        if (0..n).all(|i| drops[i].load(Ordering::SeqCst) > 0) {
            break;
        }
        crossbeam_epoch_flush();
    }
    for i in 0..n {
        assert_eq!(drops[i].load(Ordering::SeqCst), 1, "value {i}");
    }
}

fn crossbeam_epoch_flush() {
    // The table's epoch is the global one: pinning and flushing runs deferred drops.
    let t = RouteTable::<Ipv4Net, u32>::new();
    t.collect();
}

#[test]
fn a_feed_returns_a_batch_together_and_reaches_its_version_after_the_last_change() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, u32>::new();
    for i in 0..10 {
        t.add_route(Route::new(key(&net(i), 1), i)).unwrap();
    }
    let mut feed = t.feed(Criteria::all()).unwrap();
    let mut best = t.feed(Criteria::all().best_only()).unwrap();
    let mut b = Batch::new();
    for i in 0..10 {
        b.delete_route(key(&net(i), 1));
        b.add_route(Route::new(key(&net(i), 2), 100 + i)); // a second route of each network
    }
    let v = t.commit(b).unwrap();
    t.add_route(Route::new(key("11.0.0.0/8", 1), 0)).unwrap();

    // one at a time: the version stays before the batch until its last change
    let mut seen = 0;
    loop {
        let c = feed.try_next().unwrap().unwrap();
        assert_eq!(c.version, v);
        seen += 1;
        if seen < 20 {
            assert!(
                feed.version() < v,
                "not before the last change of the commit"
            );
        } else {
            assert_eq!(feed.version(), v);
            break;
        }
    }
    // best-only: one change per network, all at once
    let mut out: Vec<Change<Ipv4Net, u32>> = Vec::new();
    assert_eq!(best.next_commit(&mut out), Ok(Some(v)));
    assert_eq!(out.len(), 10);
    for (i, c) in out.iter().enumerate() {
        assert_eq!(c.old.as_ref().unwrap().value, i as u32);
        assert_eq!(c.new.as_ref().unwrap().value, 100 + i as u32);
        assert_eq!(c.version, v);
    }
    assert_eq!(best.version(), v);
    out.clear();
    assert_eq!(best.next_commit(&mut out), Ok(Some(t.version())));
    assert_eq!(out.len(), 1);
}

#[test]
fn block_operations_are_one_commit() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, u32>::new();
    for i in 0..300 {
        t.add_route(Route::new(key(&net(i), 14), i)).unwrap();
    }
    t.add_route(Route::new(key("11.0.0.0/8", 2), 0)).unwrap();
    let mut feed = t.feed(Criteria::all()).unwrap();
    let before = t.version();
    assert_eq!(
        t.delete_routes(Criteria::all().protocol(ProtocolId(14))),
        Ok(300)
    );
    assert_eq!(t.version().0, before.0 + 1);
    let mut out = Vec::new();
    assert_eq!(feed.next_commit(&mut out), Ok(Some(t.version())));
    assert_eq!(out.len(), 300);
    assert_eq!(t.route_count(), 1);
}

#[test]
fn a_graceful_restart_sweeps_what_was_not_announced_again() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, u32>::new();
    for i in 0..100 {
        t.add_route(Route::new(key(&net(i), 14), i)).unwrap();
    }
    let v0 = t.version();
    for i in (0..100).step_by(2) {
        t.add_route(Route::new(key(&net(i), 14), i)).unwrap(); // re-announced, identical
    }
    let stale = Criteria::all()
        .protocol(ProtocolId(14))
        .include_disabled()
        .unchanged_since(v0);
    assert_eq!(t.delete_routes(stale.clone()), Ok(50));
    assert_eq!(t.route_count(), 50);
    assert!(t.get_route(&key(&net(2), 14)).is_some());
    assert!(t.get_route(&key(&net(3), 14)).is_none());
    assert_eq!(t.feed(stale).err(), Some(Error::InvalidParameter));
}

/// Readers racing commits never see half of a batch: each batch swaps a whole set of
/// networks for another (value = batch number), and every read of a snapshot finds one
/// batch's routes, complete.
#[test]
fn readers_never_see_half_a_batch() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, u32>::new();
    let keys: Vec<_> = (0..64).map(|i| key(&net(i), 1)).collect();
    let mut b = Batch::new();
    for k in &keys {
        b.add_route(Route::new(*k, 0));
    }
    t.commit(b).unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for round in 1..300u32 {
                let mut b = Batch::new();
                for k in &keys {
                    b.add_route(Route::new(*k, round));
                }
                t.commit(b).unwrap();
            }
            stop.store(true, Ordering::SeqCst);
        });
        // a single writer of the same keys, cancelling batches as it goes
        s.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                let r = t.get_route(&keys[5]).unwrap();
                t.add_route(r).unwrap();
            }
        });
        while !stop.load(Ordering::SeqCst) {
            let e = t.enumerate(Criteria::all()).unwrap();
            let mut values: Vec<u32> = e.map(|r| r.value).collect();
            assert_eq!(values.len(), 64);
            // key 5 is also written by the single writer, with a value it read earlier
            values.remove(5);
            assert!(
                values.iter().all(|&v| v == values[0]),
                "a snapshot saw half a batch: {values:?}"
            );
            let a = t.lookup("10.0.3.1".parse().unwrap()).unwrap().value;
            let z = t.lookup("10.0.60.1".parse().unwrap()).unwrap().value;
            assert!(z >= a, "a later read saw an older batch");
        }
    });
    assert_eq!(t.route_count(), 64);
    t.collect();
    assert_eq!(t.stats().dead_versions, 0);
}

#[test]
fn the_fib_shows_a_commit_whole() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, u32>::new();
    t.add_route(Route::new(key("10.0.0.0/8", 1), 1)).unwrap();
    let (fib, mut follower) = Fib::follow(&t, |r| r.value).unwrap();
    let mut b = Batch::new();
    b.delete_route(key("10.0.0.0/8", 1));
    for i in 0..600 {
        b.add_route(Route::new(key(&net(i), 1), 2)); // more than one publish's worth
    }
    let v = t.commit(b).unwrap();
    follower.sync().unwrap();
    assert_eq!(fib.version(), v);
    assert_eq!(fib.lookup("10.0.5.1".parse().unwrap()), Some(2));
    assert_eq!(fib.lookup("10.200.0.1".parse().unwrap()), None);
    let _: Version = v;
}

/// Single writers that meet a batch of adds mid-install slide under it: the batch is not
/// cancelled by them, and the history stays serial. Two writers rewrite and delete the
/// batch's keys while batches of adds of the same keys commit; a feed opened before, folded
/// in order, passes only through values each key held (every change's old value is the
/// one the fold holds) and ends at the table's contents, and the route count agrees.
#[test]
fn writers_that_slide_under_batches_keep_the_history_serial() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, u32>::new();
    let keys: Vec<_> = (0..256).map(|i| key(&net(i), 1)).collect();
    for k in &keys {
        t.add_route(Route::new(*k, 0)).unwrap();
    }
    let mut feed = t.feed(Criteria::all()).unwrap();
    let mut fold: std::collections::BTreeMap<RouteKey<Ipv4Net>, u32> =
        keys.iter().map(|k| (*k, 0)).collect();
    let stop = AtomicBool::new(false);
    let versions = std::thread::scope(|s| {
        let committer = s.spawn(|| {
            let mut versions = Vec::new();
            for round in 1..40u32 {
                let mut b = Batch::new();
                for k in &keys {
                    b.add_route(Route::new(*k, round * 1_000_000));
                }
                versions.push(t.commit(b).unwrap());
            }
            stop.store(true, Ordering::SeqCst);
            versions
        });
        for w in 0..2u32 {
            let (t, keys, stop) = (&t, &keys, &stop);
            s.spawn(move || {
                let mut i = w as usize;
                let mut n = 1u32;
                while !stop.load(Ordering::SeqCst) {
                    let k = &keys[(i * 7) % keys.len()];
                    if n.is_multiple_of(5) {
                        // a delete may find the key deleted by the other writer
                        let _ = t.delete_route(k);
                    } else {
                        t.add_route(Route::new(*k, n * 2 + w)).unwrap();
                    }
                    i += 2;
                    n += 1;
                }
            });
        }
        // drain the feed while everything runs, so the journal never laps it
        while !stop.load(Ordering::SeqCst) {
            while let Some(c) = feed.try_next().unwrap() {
                apply(&mut fold, &c);
            }
        }
        committer.join().unwrap()
    });
    while let Some(c) = feed.try_next().unwrap() {
        apply(&mut fold, &c);
    }
    assert!(versions.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(feed.version(), t.version());
    let table: std::collections::BTreeMap<_, _> = t
        .enumerate(Criteria::all())
        .unwrap()
        .map(|r| (r.key, r.value))
        .collect();
    assert_eq!(fold, table, "the feed's changes do not add up to the table");
    assert_eq!(t.route_count(), table.len());
    t.collect();
    assert_eq!(t.stats().dead_versions, 0);

    fn apply(
        fold: &mut std::collections::BTreeMap<RouteKey<Ipv4Net>, u32>,
        c: &Change<Ipv4Net, u32>,
    ) {
        let k = c.old.as_ref().or(c.new.as_ref()).unwrap().key;
        assert_eq!(
            fold.get(&k).copied(),
            c.old.as_ref().map(|r| r.value),
            "a change of {k:?} from a value it did not have"
        );
        match &c.new {
            Some(r) => fold.insert(k, r.value),
            None => fold.remove(&k),
        };
    }
}

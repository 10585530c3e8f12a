//! Concurrency tests: writers churn while enumerations run, checked by properties that any
//! consistent snapshot satisfies and a moving iterator breaks. These are also the stress
//! tests CI runs under AddressSanitizer.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Barrier;
use std::thread;

use rtm::{
    Criteria, EnumHandle, Error, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable,
};

/// How many times longer to run every test: `RTM_STRESS_SCALE` (default 1). CI raises it
/// when it runs these tests under AddressSanitizer.
fn scale() -> u32 {
    std::env::var("RTM_STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// Rounds of the sliding window; enough for readers to overlap many writes.
fn steps() -> u32 {
    20_000 * scale()
}

/// Key `k` of the sliding window: one network, ordered by next hop.
fn wkey(k: u32) -> RouteKey<Ipv4Net> {
    RouteKey::new(
        "10.0.0.0/8".parse().unwrap(),
        ProtocolId(1),
        InterfaceId(1),
        Ipv4Addr::from(k),
    )
}

fn window_writer(t: &RouteTable<Ipv4Net, u32>, done: &AtomicBool) {
    for k in 0..steps() {
        t.add_route(Route::new(wkey(k + 1), k + 1)).unwrap();
        t.delete_route(&wkey(k)).unwrap();
    }
    done.store(true, Ordering::Release);
}

/// Every snapshot of the window holds one key, or two adjacent ones: never none, never a gap.
fn check_window(seen: &[u32]) {
    match seen {
        [_] => {}
        [a, b] => assert_eq!(a + 1, *b, "a gap in the window: {seen:?}"),
        _ => panic!("a snapshot saw {} keys of the window: {seen:?}", seen.len()),
    }
}

#[test]
fn sliding_window_through_raii_enumerations() {
    let t = RouteTable::<Ipv4Net, u32>::new();
    t.add_route(Route::new(wkey(0), 0)).unwrap();
    let done = AtomicBool::new(false);
    let dumps = AtomicUsize::new(0);
    thread::scope(|s| {
        s.spawn(|| window_writer(&t, &done));
        for slow in [false, true] {
            let (t, done, dumps) = (&t, &done, &dumps);
            s.spawn(move || {
                while !done.load(Ordering::Acquire) {
                    let mut seen = Vec::new();
                    for r in t.enumerate(Criteria::all()).unwrap() {
                        assert_eq!(
                            r.value,
                            u32::from(r.key.next_hop),
                            "a value from another version"
                        );
                        seen.push(r.value);
                        if slow {
                            // let the writer run several steps between two routes
                            for _ in 0..50 {
                                thread::yield_now();
                            }
                        }
                    }
                    check_window(&seen);
                    dumps.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert!(dumps.load(Ordering::Relaxed) > 0);
    let last: Vec<u32> = t
        .enumerate(Criteria::all())
        .unwrap()
        .map(|r| r.value)
        .collect();
    assert_eq!(last, [steps()]);
}

#[test]
fn sliding_window_through_handles_moving_between_threads() {
    let t = RouteTable::<Ipv4Net, u32>::new();
    t.add_route(Route::new(wkey(0), 0)).unwrap();
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| window_writer(&t, &done));
        s.spawn(|| {
            while !done.load(Ordering::Acquire) {
                let h = t.create_enumeration_handle(Criteria::all()).unwrap();
                // the first route is read here, the rest on another thread
                let first = t.enumerate_get_next_route(h).unwrap().value;
                let rest = thread::scope(|s2| {
                    s2.spawn(|| {
                        let mut v = Vec::new();
                        loop {
                            thread::yield_now();
                            match t.enumerate_get_next_route(h) {
                                Ok(r) => v.push(r.value),
                                Err(Error::NoMoreRoutes) => return v,
                                Err(e) => panic!("unexpected {e}"),
                            }
                        }
                    })
                    .join()
                    .unwrap()
                });
                let mut seen = vec![first];
                seen.extend(rest);
                check_window(&seen);
                assert_eq!(t.close_enumeration_handle(h), Ok(()));
            }
        });
    });
}

/// Writers rewrite every key of a block in key order, round after round. A snapshot sees
/// a prefix of the block at round r + 1 and the rest at round r.
#[test]
fn snapshots_see_whole_rounds_while_the_reclaimer_runs() {
    const KEYS: u32 = 64;
    let rounds = 300 * scale();
    let t = RouteTable::<Ipv4Net, (u32, Box<u32>)>::new();
    let block = |w: u32, k: u32| {
        RouteKey::new(
            Ipv4Net::new(Ipv4Addr::new(10, w as u8, k as u8, 0), 24).unwrap(),
            ProtocolId(1),
            InterfaceId(1),
            Ipv4Addr::LOCALHOST,
        )
    };
    for w in 0..2 {
        for k in 0..KEYS {
            t.add_route(Route::new(block(w, k), (0, Box::new(k))))
                .unwrap();
        }
    }
    let done = AtomicUsize::new(0);
    thread::scope(|s| {
        for w in 0..2u32 {
            let (t, done) = (&t, &done);
            s.spawn(move || {
                for r in 1..=rounds {
                    for k in 0..KEYS {
                        let old = t
                            .add_route(Route::new(block(w, k), (r, Box::new(k))))
                            .unwrap()
                            .unwrap();
                        assert_eq!(old.value.0, r - 1);
                    }
                }
                done.fetch_add(1, Ordering::Release);
            });
        }
        s.spawn(|| {
            while done.load(Ordering::Acquire) < 2 {
                t.collect();
            }
        });
        for _ in 0..2 {
            s.spawn(|| {
                while done.load(Ordering::Acquire) < 2 {
                    for w in 0..2u32 {
                        let c = Criteria::all()
                            .within(Ipv4Net::new(Ipv4Addr::new(10, w as u8, 0, 0), 16).unwrap());
                        let rounds: Vec<u32> = t
                            .enumerate(c)
                            .unwrap()
                            .inspect(|r| {
                                assert_eq!(
                                    *r.value.1,
                                    u32::from(r.key.prefix.network().octets()[2])
                                )
                            })
                            .map(|r| r.value.0)
                            .collect();
                        assert_eq!(rounds.len(), KEYS as usize);
                        let r0 = rounds[0];
                        let cut = rounds.iter().position(|&r| r != r0).unwrap_or(rounds.len());
                        assert!(
                            rounds[cut..].iter().all(|&r| r + 1 == r0),
                            "not a snapshot: {rounds:?}"
                        );
                    }
                }
            });
        }
    });
    t.collect();
    assert_eq!(t.stats().dead_versions, 0);
}

/// Lookups never miss while a covering route is always present (new one added before the
/// old one is deleted), and always return a route that covers the address.
#[test]
fn lookups_never_miss_during_make_before_break() {
    let t = RouteTable::<Ipv4Net, u32>::new();
    let nets: Vec<Ipv4Net> = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let key = |i: usize, hop: u32| {
        RouteKey::new(
            nets[i % 3],
            ProtocolId(1),
            InterfaceId(1),
            Ipv4Addr::from(hop),
        )
    };
    t.add_route(Route::new(key(0, 0), 0)).unwrap();
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..30_000 * scale() {
                t.add_route(Route::new(key(i as usize + 1, i + 1), i + 1))
                    .unwrap();
                t.delete_route(&key(i as usize, i)).unwrap();
            }
            done.store(true, Ordering::Release);
        });
        for _ in 0..2 {
            s.spawn(|| {
                let a: Ipv4Addr = "10.1.2.3".parse().unwrap();
                while !done.load(Ordering::Acquire) {
                    let r = t.lookup(a).expect("a covering route always exists");
                    assert!(r.key.prefix.contains(&a));
                }
            });
        }
    });
}

/// `next` and `close` racing on one handle: every `next` gives a route, `NoMoreRoutes`,
/// `InvalidHandle` or `Busy` (the other `next` holds the cursor); exactly one close wins; afterwards the handle is invalid.
#[test]
fn next_and_close_race_on_one_handle() {
    let t = RouteTable::<Ipv4Net, u32>::with_max_enumerations(4);
    for k in 0..50 {
        t.add_route(Route::new(wkey(k), k)).unwrap();
    }
    for _ in 0..300 * scale() {
        let h = t.create_enumeration_handle(Criteria::all()).unwrap();
        let wins = AtomicUsize::new(0);
        let barrier = Barrier::new(4);
        thread::scope(|s| {
            for role in 0..4 {
                let (t, wins, barrier) = (&t, &wins, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    if role < 2 {
                        let mut last = None;
                        for _ in 0..60 {
                            match t.enumerate_get_next_route(h) {
                                Ok(r) => {
                                    assert!(last < Some(r.key), "order broken");
                                    last = Some(r.key);
                                }
                                Err(Error::NoMoreRoutes | Error::InvalidHandle | Error::Busy) => {}
                                Err(e) => panic!("unexpected {e}"),
                            }
                        }
                    } else if t.close_enumeration_handle(h).is_ok() {
                        wins.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(wins.load(Ordering::Relaxed), 1);
        assert_eq!(t.enumerate_get_next_route(h), Err(Error::InvalidHandle));
        assert_eq!(t.stats().open_enumerations, 0);
    }
}

/// Slots are reused under contention and an old handle never reaches a new enumeration.
#[test]
fn stale_handles_never_reach_reused_slots() {
    let t = RouteTable::<Ipv4Net, u32>::with_max_enumerations(2);
    t.add_route(Route::new(wkey(1), 1)).unwrap();
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut old: Vec<EnumHandle> = Vec::new();
                for _ in 0..5_000 * scale() {
                    match t.create_enumeration_handle(Criteria::all()) {
                        Ok(h) => {
                            for o in old.iter().rev().take(4) {
                                assert_eq!(
                                    t.enumerate_get_next_route(*o),
                                    Err(Error::InvalidHandle)
                                );
                                assert_eq!(
                                    t.close_enumeration_handle(*o),
                                    Err(Error::InvalidHandle)
                                );
                            }
                            assert_eq!(t.enumerate_get_next_route(h).unwrap().value, 1);
                            t.close_enumeration_handle(h).unwrap();
                            old.push(h);
                        }
                        Err(e) => assert_eq!(e, Error::NoSystemResources),
                    }
                }
            });
        }
    });
    assert_eq!(t.stats().open_enumerations, 0);
}

/// Many writers insert and delete overlapping keys; at the end the table equals what the
/// last operations say, and the skip list holds every surviving key once, in order.
#[test]
fn concurrent_inserts_and_deletes_keep_a_sorted_set() {
    let t = RouteTable::<Ipv4Net, u32>::new();
    thread::scope(|s| {
        for w in 0..4u32 {
            let t = &t;
            s.spawn(move || {
                for i in 0..20_000 * scale() {
                    let k = (i * 7 + w) % 512;
                    let _ = t.add_route(Route::new(wkey(k), k));
                    if i % 3 == 0 {
                        let _ = t.delete_route(&wkey((k + 5) % 512));
                    }
                    if i % 1000 == 0 {
                        t.collect();
                    }
                }
            });
        }
        s.spawn(|| {
            for _ in 0..200 {
                let keys: Vec<_> = t
                    .enumerate(Criteria::all())
                    .unwrap()
                    .map(|r| r.key)
                    .collect();
                assert!(keys.windows(2).all(|w| w[0] < w[1]), "order broken");
            }
        });
    });
    let keys: Vec<_> = t
        .enumerate(Criteria::all())
        .unwrap()
        .map(|r| r.key)
        .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(keys.len(), t.route_count());
    for k in 0..512 {
        assert_eq!(t.get_route(&wkey(k)).is_some(), keys.contains(&wkey(k)));
    }
}

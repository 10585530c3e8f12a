//! Block operations, covering walks, batch reads and owned enumerations under concurrency,
//! and their error cases.

#[path = "../benches/data/mod.rs"]
mod data;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rtm::{
    Criteria, EnumHandle, Error, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable,
};

type Key = RouteKey<Ipv4Net>;

fn key(i: u32, proto: ProtocolId) -> Key {
    RouteKey::new(
        Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 | (i << 8)), 24).unwrap(),
        proto,
        InterfaceId(1),
        Ipv4Addr::new(192, 0, 2, 1),
    )
}

/// A peer's routes are flushed while another writer changes some of them and readers dump
/// the table. The flush is one commit, so every snapshot sees all of the peer's keys or
/// none (then, at most the last key, written again after the flush); a route rewritten
/// after the flush's snapshot survives; and the count is exact: deleted + left == routes +
/// fresh inserts.
#[test]
fn flush_while_writing_and_reading() {
    const N: u32 = 20_000;
    for round in 0..5u64 {
        let t = Arc::new(RouteTable::<Ipv4Net, u64>::new());
        for i in 0..N {
            t.add_route(Route::new(key(i, ProtocolId::BGP), 0)).unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (t, stop) = (Arc::clone(&t), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut seen = 0;
                while !stop.load(Ordering::Relaxed) || seen == 0 {
                    let e = t.enumerate_owned(Criteria::all()).unwrap();
                    let keys: Vec<u32> = e
                        .map(|r| (u32::from(r.key.prefix.network()) & 0x00ff_ffff) >> 8)
                        .filter(|&i| i < N)
                        .collect();
                    if let Some(&first) = keys.first() {
                        // a suffix: first, first + 1, ..., N - 1
                        assert_eq!(keys.len() as u32, N - first, "a gap in a snapshot");
                    }
                    seen += 1;
                }
            })
        };
        let writer = {
            let t = Arc::clone(&t);
            std::thread::spawn(move || {
                // Wait until the flush has deleted the first key: its snapshot is then
                // older than every write below (the tombstone's publication orders it).
                while t.get_route(&key(0, ProtocolId::BGP)).is_some() {
                    std::hint::spin_loop();
                }
                let last = key(N - 1, ProtocolId::BGP);
                let replaced = t.add_route(Route::new(last, 1 + round)).unwrap();
                let mut fresh = usize::from(replaced.is_none());
                for i in N..N + 100 {
                    if t.add_route(Route::new(key(i, ProtocolId::BGP), 1 + round))
                        .unwrap()
                        .is_none()
                    {
                        fresh += 1;
                    }
                }
                fresh
            })
        };
        let deleted = t
            .delete_routes(Criteria::all().protocol(ProtocolId::BGP))
            .unwrap();
        let fresh = writer.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap();
        // the rewritten last key and the new keys are newer than the snapshot
        assert_eq!(
            t.get_route(&key(N - 1, ProtocolId::BGP)).unwrap().value,
            1 + round
        );
        for i in N..N + 100 {
            assert!(t.get_route(&key(i, ProtocolId::BGP)).is_some());
        }
        assert!(deleted == N as usize || deleted == N as usize - 1);
        assert_eq!(deleted + t.route_count(), N as usize + fresh);
        assert_eq!(t.stats().open_enumerations, 0);
        t.collect();
        assert_eq!(t.stats().dead_versions, 0);
    }
}

/// Two flushes of the same routes race: each route is deleted once, by one of them.
#[test]
fn racing_flushes_delete_each_route_once() {
    const N: u32 = 20_000;
    let t = Arc::new(RouteTable::<Ipv4Net, u64>::new());
    for i in 0..N {
        t.add_route(Route::new(key(i, ProtocolId::RIP), i as u64))
            .unwrap();
        t.add_route(Route::new(key(i, ProtocolId::OSPF), i as u64))
            .unwrap();
    }
    let flush = |t: Arc<RouteTable<Ipv4Net, u64>>| {
        std::thread::spawn(move || {
            t.delete_routes(Criteria::all().protocol(ProtocolId::RIP))
                .unwrap()
        })
    };
    let (a, b) = (flush(Arc::clone(&t)), flush(Arc::clone(&t)));
    assert_eq!(a.join().unwrap() + b.join().unwrap(), N as usize);
    assert_eq!(t.route_count(), N as usize);
    assert_eq!(
        t.enumerate(Criteria::all().protocol(ProtocolId::OSPF))
            .unwrap()
            .count(),
        N as usize
    );
}

/// Disabling and enabling race with each other and with an enumeration of enabled routes:
/// the counts add up, and a snapshot never sees a route twice.
#[test]
fn racing_enable_and_disable() {
    const N: u32 = 10_000;
    let t = Arc::new(RouteTable::<Ipv4Net, u64>::new());
    for i in 0..N {
        t.add_route(Route::new(key(i, ProtocolId::NETMGMT), 0))
            .unwrap();
    }
    let set = |t: Arc<RouteTable<Ipv4Net, u64>>, on: bool| {
        std::thread::spawn(move || {
            (0..4)
                .map(|_| t.set_routes_enabled(Criteria::all(), on).unwrap())
                .sum::<usize>()
        })
    };
    let (off, on) = (set(Arc::clone(&t), false), set(Arc::clone(&t), true));
    let (off, on) = (off.join().unwrap(), on.join().unwrap());
    // every route starts enabled; each change flips it, so the flips decide its state
    let disabled = t
        .enumerate(Criteria::all().include_disabled())
        .unwrap()
        .filter(|r| !r.enabled)
        .count();
    assert_eq!(off - on, disabled);
    assert_eq!(t.route_count(), N as usize);
    assert_eq!(
        t.enumerate(Criteria::all()).unwrap().count(),
        N as usize - disabled
    );
}

#[test]
fn block_operations_reject_bad_criteria_and_need_a_slot() {
    let t = RouteTable::<Ipv4Net, u64>::with_max_enumerations(1);
    t.add_route(Route::new(key(1, ProtocolId::BGP), 1)).unwrap();
    for bad in [
        Criteria::all().network("10.1.2.3/8".parse().unwrap()),
        Criteria::all().within("10.1.2.3/8".parse().unwrap()),
        Criteria::all().covering("10.1.2.3/8".parse().unwrap()),
        Criteria::all().start_after(RouteKey {
            prefix: "10.1.2.3/8".parse().unwrap(),
            ..key(1, ProtocolId::BGP)
        }),
    ] {
        assert_eq!(t.delete_routes(bad.clone()), Err(Error::InvalidParameter));
        assert_eq!(
            t.set_routes_enabled(bad.clone(), false),
            Err(Error::InvalidParameter)
        );
        assert_eq!(
            t.enumerate(bad.clone()).err(),
            Some(Error::InvalidParameter)
        );
    }
    let e = t.enumerate(Criteria::all()).unwrap();
    assert_eq!(
        t.delete_routes(Criteria::all()),
        Err(Error::NoSystemResources)
    );
    drop(e);
    assert_eq!(t.delete_routes(Criteria::all()), Ok(1));
    assert_eq!(t.delete_routes(Criteria::all()), Ok(0));
    assert_eq!(t.stats().open_enumerations, 0);
}

#[test]
fn batch_and_snapshot_errors() {
    let t = RouteTable::<Ipv4Net, u64>::new();
    let other = RouteTable::<Ipv4Net, u64>::new();
    let mut out = Vec::new();
    let foreign = other.create_enumeration_handle(Criteria::all()).unwrap();
    for h in [
        EnumHandle::from_raw(0),
        EnumHandle::from_raw(u64::MAX),
        foreign,
    ] {
        assert_eq!(
            t.enumerate_get_next_routes(h, 8, &mut out),
            Err(Error::InvalidHandle)
        );
        assert_eq!(t.enumeration_snapshot(h), Err(Error::InvalidHandle));
    }
    let h = t.create_enumeration_handle(Criteria::all()).unwrap();
    assert_eq!(
        t.enumerate_get_next_routes(h, 0, &mut out),
        Err(Error::InvalidParameter)
    );
    assert_eq!(t.enumerate_get_next_routes(h, 8, &mut out), Ok(0));
    assert_eq!(t.enumerate_get_next_routes(h, 8, &mut out), Ok(0));
    t.close_enumeration_handle(h).unwrap();
    assert_eq!(
        t.enumerate_get_next_routes(h, 8, &mut out),
        Err(Error::InvalidHandle)
    );
    assert_eq!(t.enumeration_snapshot(h), Err(Error::InvalidHandle));
    assert!(out.is_empty());
    other.close_enumeration_handle(foreign).unwrap();
}

/// A batch far larger than the table reads it all, and a large one renews its pin along
/// the way while writers go on, without changing what it returns.
#[test]
fn huge_batches_read_the_snapshot() {
    const N: u32 = 5_000;
    let t = Arc::new(RouteTable::<Ipv4Net, u64>::new());
    for i in 0..N {
        t.add_route(Route::new(key(i, ProtocolId::BGP), i as u64))
            .unwrap();
    }
    let mut e = t.enumerate_owned(Criteria::all()).unwrap();
    let writer = {
        let t = Arc::clone(&t);
        std::thread::spawn(move || {
            for i in 0..N {
                t.delete_route(&key(i, ProtocolId::BGP)).unwrap();
            }
        })
    };
    let mut out = Vec::new();
    assert_eq!(e.next_batch(usize::MAX, &mut out), N as usize);
    assert!(out.iter().enumerate().all(|(i, r)| r.value == i as u64));
    assert_eq!(e.next_batch(usize::MAX, &mut out), 0);
    writer.join().unwrap();
    drop(e);
    t.collect();
    assert_eq!(t.stats().dead_versions, 0);
}

/// The covering walk on a table where every other network lies between the covering ones:
/// brute force agrees, for every /24 and host route of a sample.
#[test]
fn covering_matches_brute_force_on_a_dense_table() {
    let t = RouteTable::<Ipv4Net, u32>::new();
    let mut nets: Vec<Ipv4Net> = Vec::new();
    for len in [0u8, 8, 12, 16, 20, 22, 24, 26, 32] {
        for i in 0..64u32 {
            let a = (0x0a00_0000u32 | i.wrapping_mul(0x0001_3579))
                & !(u32::MAX.checked_shr(len as u32).unwrap_or(0));
            let n = Ipv4Net::new(Ipv4Addr::from(a), len).unwrap();
            nets.push(n);
        }
    }
    nets.sort();
    nets.dedup();
    for (i, n) in nets.iter().enumerate() {
        let k = RouteKey::new(
            *n,
            ProtocolId::LOCAL,
            InterfaceId(1),
            Ipv4Addr::new(192, 0, 2, 1),
        );
        t.add_route(Route::new(k, i as u32)).unwrap();
    }
    for p in &nets {
        let got: Vec<Ipv4Net> = t
            .enumerate(Criteria::all().covering(*p))
            .unwrap()
            .map(|r| r.key.prefix)
            .collect();
        let want: Vec<Ipv4Net> = nets.iter().filter(|q| q.contains(p)).copied().collect();
        assert_eq!(got, want, "covering {p}");
        // the last range filter given wins
        let within_then_covering: Vec<Ipv4Net> = t
            .enumerate(
                Criteria::all()
                    .within("0.0.0.0/0".parse().unwrap())
                    .covering(*p),
            )
            .unwrap()
            .map(|r| r.key.prefix)
            .collect();
        assert_eq!(within_then_covering, want);
    }
}

#[test]
fn display_reads_like_show_ip_route() {
    let k = RouteKey::new(
        "10.1.0.0/16".parse::<Ipv4Net>().unwrap(),
        ProtocolId::BGP,
        InterfaceId(7),
        Ipv4Addr::new(192, 0, 2, 9),
    );
    let r = Route {
        priority: 20,
        metric: 5,
        ..Route::new(k, ())
    };
    assert_eq!(r.to_string(), "10.1.0.0/16 bgp if 7 via 192.0.2.9 [20/5]");
    let names: Vec<String> = (1..=15).map(|i| ProtocolId(i).to_string()).collect();
    assert_eq!(
        names,
        [
            "other",
            "local",
            "netmgmt",
            "icmp",
            "egp",
            "ggp",
            "hello",
            "rip",
            "is-is",
            "es-is",
            "ciscoIgrp",
            "bbnSpfIgp",
            "ospf",
            "bgp",
            "15"
        ]
    );
}

#[cfg(feature = "serde")]
#[test]
fn serde_round_trips() {
    let k = RouteKey::new(
        "10.1.0.0/16".parse::<Ipv4Net>().unwrap(),
        ProtocolId::OSPF,
        InterfaceId(7),
        Ipv4Addr::new(192, 0, 2, 9),
    );
    let r = Route {
        priority: 110,
        ..Route::new(k, String::from("payload"))
    };
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("\"protocol\":13"), "{json}");
    let back: Route<Ipv4Net, String> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
    let v: rtm::Version = serde_json::from_str("42").unwrap();
    assert_eq!(v, rtm::Version(42));
}

/// An owned enumeration can go where a borrow cannot: into a `'static` thread, a struct
/// field, a `Box<dyn Iterator + Send>`.
#[test]
fn owned_enumerations_are_static_and_send() {
    fn assert_static_send<T: Send + 'static>(_: &T) {}
    let t = Arc::new(RouteTable::<Ipv4Net, u64>::with_max_enumerations(2));
    t.add_route(Route::new(key(1, ProtocolId::BGP), 7)).unwrap();
    let e = t.enumerate_owned(Criteria::all()).unwrap();
    assert_static_send(&e);
    let boxed: Box<dyn Iterator<Item = Route<Ipv4Net, u64>> + Send> = Box::new(e);
    // the table may go away while the enumeration lives: it holds its own share
    let weak = Arc::downgrade(&t);
    drop(t);
    let seen: Vec<u64> = std::thread::spawn(move || boxed.map(|r| r.value).collect())
        .join()
        .unwrap();
    assert_eq!(seen, [7]);
    assert!(
        weak.upgrade().is_none(),
        "the last share went with the enumeration"
    );
}

/// On the real RIS IPv6 table: covering walks agree with the covering networks found by
/// masking, and a block deletion of one range deletes exactly that range.
#[test]
fn ipv6_covering_and_block_delete_on_the_ris_table() {
    use rtm::Ipv6Net;
    use std::collections::HashSet;
    use std::net::Ipv6Addr;

    let mut prefixes = data::ris_v6();
    prefixes.sort();
    prefixes.dedup();
    let set: HashSet<Ipv6Net> = prefixes.iter().copied().collect();
    let t = RouteTable::<Ipv6Net, u64>::new();
    for (i, p) in prefixes.iter().enumerate() {
        t.add_route(data::route(data::key_v6(*p), i as u64))
            .unwrap();
    }
    for p in prefixes.iter().step_by(prefixes.len() / 500) {
        let a = u128::from(p.network());
        let want: Vec<Ipv6Net> = (0..=p.prefix_len())
            .map(|m| {
                let mask = u128::MAX.checked_shl(128 - m as u32).unwrap_or(0);
                Ipv6Net::new(Ipv6Addr::from(a & mask), m).unwrap()
            })
            .filter(|n| set.contains(n))
            .collect();
        let got: Vec<Ipv6Net> = t
            .enumerate(Criteria::all().covering(*p))
            .unwrap()
            .map(|r| r.key.prefix)
            .collect();
        assert_eq!(got, want, "covering {p}");
    }
    let range: Ipv6Net = "2a00::/12".parse().unwrap();
    let inside = prefixes.iter().filter(|p| range.contains(*p)).count();
    assert!(inside > 1000);
    assert_eq!(t.delete_routes(Criteria::all().within(range)), Ok(inside));
    assert_eq!(t.route_count(), prefixes.len() - inside);
    assert_eq!(
        t.enumerate(Criteria::all().within(range)).unwrap().count(),
        0
    );
    let first = t.enumerate(Criteria::all()).unwrap().next().unwrap();
    assert!(first.to_string().contains(" via 2001:db8::"), "{first}");
}

/// A feed sees the routes a block operation changes as one commit, in key order, all with
/// the commit's version; replaying them converges on the table.
#[test]
fn feeds_see_a_block_operation_as_one_commit() {
    let t = RouteTable::<Ipv4Net, u64>::new();
    for i in 0..300 {
        t.add_route(Route::new(key(i, ProtocolId::BGP), i as u64))
            .unwrap();
        t.add_route(Route::new(key(i, ProtocolId::OSPF), i as u64))
            .unwrap();
    }
    let mut feed = t.feed(Criteria::all().include_disabled()).unwrap();
    let before = t.version();
    assert_eq!(
        t.set_routes_enabled(Criteria::all().protocol(ProtocolId::OSPF), false),
        Ok(300)
    );
    assert_eq!(
        t.delete_routes(Criteria::all().protocol(ProtocolId::BGP)),
        Ok(300)
    );
    assert_eq!(
        t.version().0 - before.0,
        2,
        "one version per block operation"
    );
    let mut changes = Vec::new();
    let mut out = Vec::new();
    while let Some(v) = feed.next_commit(&mut out).unwrap() {
        assert!(out.iter().all(|c| c.version == v));
        assert_eq!(out.len(), 300);
        changes.append(&mut out);
    }
    assert_eq!(changes.len(), 600);
    assert!(changes.windows(2).all(|w| w[0].version <= w[1].version));
    let (disabled, deleted) = changes.split_at(300);
    for (i, c) in disabled.iter().enumerate() {
        let (old, new) = (c.old.as_ref().unwrap(), c.new.as_ref().unwrap());
        assert_eq!(old.key, key(i as u32, ProtocolId::OSPF));
        assert_eq!((old.enabled, new.enabled), (true, false));
        assert_eq!((old.value, new.value), (i as u64, i as u64));
    }
    for (i, c) in deleted.iter().enumerate() {
        assert_eq!(c.old.as_ref().unwrap().key, key(i as u32, ProtocolId::BGP));
        assert!(c.new.is_none());
    }
}

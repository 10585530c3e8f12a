//! Multipath: best sets (`RouteTable::best_routes`, `Criteria::best_multipath`, best-set
//! feeds) and `Fib::follow_multipath` over `NexthopGroups`, against what the API promises:
//!
//! 1. after `sync`, every lookup's group holds exactly the next hops of the best set of the
//!    longest covering network, and networks with the same next hops share one id;
//! 2. a change of a network's best set reaches lookups in one step (no group missing a
//!    path of both the old and the new set);
//! 3. `set_down` reaches every `select` that starts after it, without a write to the table
//!    or the Fib;
//! 4. ids are released: no routes, synced, no groups.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Barrier;

use rtm::{
    Batch, Criteria, Error, Fib, InterfaceId, Ipv4Net, NexthopGroups, ProtocolId, Route, RouteKey,
    RouteTable,
};

type Key = RouteKey<Ipv4Net>;
type R = Route<Ipv4Net, u32>;

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn hop(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, i)
}

fn key(p: Ipv4Net, proto: u32, h: u8) -> Key {
    RouteKey::new(p, ProtocolId(proto), InterfaceId(1), hop(h))
}

fn route(k: Key, priority: u32, metric: u32, enabled: bool, value: u32) -> R {
    Route {
        key: k,
        priority,
        metric,
        enabled,
        value,
    }
}

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The best set as the model computes it: enabled routes of the smallest (priority, metric).
fn model_set(routes: &BTreeMap<Key, R>, p: Ipv4Net) -> Vec<R> {
    let of: Vec<&R> = routes
        .values()
        .filter(|r| r.key.prefix == p && r.enabled)
        .collect();
    let Some(rank) = of.iter().map(|r| (r.priority, r.metric)).min() else {
        return Vec::new();
    };
    of.into_iter()
        .filter(|r| (r.priority, r.metric) == rank)
        .cloned()
        .collect()
}

#[test]
fn best_routes_is_the_equal_cost_set_in_key_order() {
    let t = RouteTable::<Ipv4Net, u32>::new();
    let p = net("10.0.0.0/8");
    assert!(t.best_routes(&p).is_empty());
    t.add_route(route(key(p, 14, 3), 10, 5, true, 3)).unwrap();
    t.add_route(route(key(p, 14, 1), 10, 5, true, 1)).unwrap();
    t.add_route(route(key(p, 14, 2), 10, 5, false, 2)).unwrap(); // disabled: not a path
    t.add_route(route(key(p, 14, 4), 10, 6, true, 4)).unwrap(); // worse metric
    t.add_route(route(key(p, 2, 5), 20, 1, true, 5)).unwrap(); // worse priority
    let got: Vec<u32> = t.best_routes(&p).into_iter().map(|r| r.value).collect();
    assert_eq!(got, [1, 3], "the equal-cost set, in key order");
    assert_eq!(t.best_routes(&p)[0], t.best_route(&p).unwrap());
    assert!(t.best_routes(&net("10.0.0.0/16")).is_empty());
    let host_bits = Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 1), 8).unwrap();
    assert!(t.best_routes(&host_bits).is_empty());
    // a better route alone replaces the set; disabling it brings the set back
    t.add_route(route(key(p, 14, 9), 1, 1, true, 9)).unwrap();
    assert_eq!(t.best_routes(&p).len(), 1);
    t.add_route(route(key(p, 14, 9), 1, 1, false, 9)).unwrap();
    assert_eq!(t.best_routes(&p).len(), 2);
}

/// Enumerations, handles and block operations with `best_multipath` keep exactly the best
/// sets (chosen before the other filters), and the last of it and `best_only` wins.
#[test]
fn best_multipath_criteria_keep_the_best_sets() {
    let t = RouteTable::<Ipv4Net, u32>::new();
    let mut model = BTreeMap::new();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let nets: Vec<Ipv4Net> = (0..40u32)
        .map(|i| Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 | (i << 12)), 20).unwrap())
        .collect();
    for i in 0..400 {
        let p = nets[rng.below(nets.len() as u64) as usize];
        let r = route(
            key(p, 1 + rng.below(3) as u32, 1 + rng.below(5) as u8),
            rng.below(2) as u32,
            rng.below(2) as u32,
            rng.below(8) != 0,
            i,
        );
        model.insert(r.key, r.clone());
        t.add_route(r).unwrap();
    }
    let want: Vec<R> = nets.iter().flat_map(|p| model_set(&model, *p)).collect();
    assert!(want.len() > nets.len(), "some networks have several paths");
    let got: Vec<R> = t
        .enumerate(Criteria::all().best_multipath())
        .unwrap()
        .collect();
    assert_eq!(got, want);
    // chosen among all the network's routes, then filtered
    let proto2: Vec<R> = t
        .enumerate(Criteria::all().best_multipath().protocol(ProtocolId(2)))
        .unwrap()
        .collect();
    let want2: Vec<R> = want
        .iter()
        .filter(|r| r.key.protocol == ProtocolId(2))
        .cloned()
        .collect();
    assert_eq!(proto2, want2);
    // include_disabled does not put disabled routes in a best set
    let with_disabled: Vec<R> = t
        .enumerate(Criteria::all().include_disabled().best_multipath())
        .unwrap()
        .collect();
    assert_eq!(with_disabled, want);
    // the last choice wins
    let best: Vec<R> = t
        .enumerate(Criteria::all().best_multipath().best_only())
        .unwrap()
        .collect();
    let want_best: Vec<R> = nets.iter().filter_map(|p| t.best_route(p)).collect();
    assert_eq!(best, want_best);
    let again: Vec<R> = t
        .enumerate(Criteria::all().best_only().best_multipath())
        .unwrap()
        .collect();
    assert_eq!(again, want);
    // handles
    let h = t
        .create_enumeration_handle(Criteria::all().best_multipath())
        .unwrap();
    let mut by_handle = Vec::new();
    loop {
        match t.enumerate_get_next_route(h) {
            Ok(r) => by_handle.push(r),
            Err(Error::NoMoreRoutes) => break,
            Err(e) => panic!("{e}"),
        }
    }
    t.close_enumeration_handle(h).unwrap();
    assert_eq!(by_handle, want);
    // block operations: disabling every best set leaves the next-best sets
    let n = t
        .set_routes_enabled(Criteria::all().best_multipath(), false)
        .unwrap();
    assert_eq!(n, want.len());
    for r in &want {
        model.get_mut(&r.key).unwrap().enabled = false;
    }
    for p in &nets {
        assert_eq!(t.best_routes(p), model_set(&model, *p), "{p}");
    }
}

/// A best-set feed, folded into a copy (remove `old`, insert `new`), equals a best-set
/// enumeration at its version after every commit, single writes and batches alike; and a
/// commit's changes share its version, the feed passing it after the last.
#[test]
fn a_best_set_feed_folds_into_the_exact_best_sets() {
    let t = RouteTable::<Ipv4Net, u32>::new();
    let nets = [net("10.0.0.0/8"), net("10.1.0.0/16"), net("192.168.0.0/16")];
    let (dump, mut feed) = t.subscribe(Criteria::all().best_multipath()).unwrap();
    let mut copy: BTreeMap<Key, R> = dump.map(|r| (r.key, r)).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut multi = 0;
    for i in 0..3000u32 {
        let pick = |rng: &mut Rng| {
            key(
                nets[rng.below(3) as usize],
                1 + rng.below(2) as u32,
                1 + rng.below(4) as u8,
            )
        };
        let r = |rng: &mut Rng, k: Key| {
            route(
                k,
                rng.below(2) as u32,
                rng.below(2) as u32,
                rng.below(6) != 0,
                i,
            )
        };
        let v = if rng.below(4) == 0 {
            let mut b = Batch::new();
            for _ in 0..1 + rng.below(5) {
                let k = pick(&mut rng);
                if rng.below(3) == 0 {
                    b.withdraw_route(k);
                } else {
                    b.add_route(r(&mut rng, k));
                }
            }
            t.commit(b).unwrap()
        } else {
            let k = pick(&mut rng);
            if rng.below(4) == 0 {
                let _ = t.delete_route(&k);
            } else {
                t.add_route(r(&mut rng, k)).unwrap();
            }
            t.version()
        };
        let mut out = Vec::new();
        while let Some(cv) = feed.next_commit(&mut out).unwrap() {
            assert!(out.iter().all(|c| c.version == cv));
            multi += usize::from(out.len() > 1);
            for c in out.drain(..) {
                if let (Some(o), Some(n)) = (&c.old, &c.new) {
                    assert_eq!(o.key, n.key, "one key per change: {c:?}");
                }
                if let Some(o) = &c.old {
                    assert_eq!(copy.remove(&o.key).as_ref(), Some(o), "{c:?}");
                } else if let Some(n) = &c.new {
                    assert!(!copy.contains_key(&n.key), "{c:?}");
                }
                if let Some(n) = c.new {
                    copy.insert(n.key, n);
                }
            }
            assert_eq!(feed.version(), cv);
        }
        assert_eq!(feed.version(), v);
        let fresh: BTreeMap<Key, R> = t
            .enumerate(Criteria::all().best_multipath())
            .unwrap()
            .map(|r| (r.key, r))
            .collect();
        assert_eq!(copy, fresh, "after commit {i}");
    }
    assert!(
        multi > 50,
        "commits that change several routes of a set: {multi}"
    );
}

/// One change at a time (`try_next`): the changes of one commit come one after another,
/// and the feed's version stays before the commit until the last of them.
#[test]
fn a_best_set_feed_returns_a_commits_changes_one_by_one() {
    let t = RouteTable::<Ipv4Net, u32>::new();
    let p = net("10.0.0.0/8");
    for h in 1..=3 {
        t.add_route(route(key(p, 14, h), 0, 5, true, h as u32))
            .unwrap();
    }
    let mut feed = t.feed(Criteria::all().best_multipath()).unwrap();
    let before = feed.version();
    t.add_route(route(key(p, 14, 9), 0, 1, true, 9)).unwrap(); // evicts the three
    let mut seen = Vec::new();
    while let Some(c) = feed.try_next().unwrap() {
        assert_eq!(c.version, t.version());
        seen.push((c.old.map(|r| r.value), c.new.map(|r| r.value)));
        if seen.len() < 4 {
            assert_eq!(feed.version(), before, "inside the commit");
        }
    }
    assert_eq!(
        seen,
        [
            (Some(1), None),
            (Some(2), None),
            (Some(3), None),
            (None, Some(9))
        ]
    );
    assert_eq!(feed.version(), t.version());
}

/// Next hops of the pool by index, so that networks get one to four of them.
fn pool(i: u64) -> u8 {
    1 + (i % 6) as u8
}

/// Promise 1, on a table of networks with one to four equal-cost paths (and worse
/// backups), nested so that longest match matters: every address's group is the next hops
/// of its network's best set, and equal sets share an id.
fn check_promise_1(
    t: &RouteTable<Ipv4Net, u32>,
    groups: &NexthopGroups<Ipv4Addr>,
    fib: &Fib<Ipv4Net>,
    rng: &mut Rng,
) {
    let mut ids_of_sets: BTreeMap<BTreeSet<Ipv4Addr>, BTreeSet<u32>> = BTreeMap::new();
    for _ in 0..5000 {
        let a = Ipv4Addr::from(0x0a00_0000 | (rng.next() as u32 & 0x00ff_ffff));
        let want: Option<BTreeSet<Ipv4Addr>> = t.lookup(a).map(|best| {
            t.best_routes(&best.key.prefix)
                .iter()
                .map(|r| r.key.next_hop)
                .collect()
        });
        let got = fib.lookup(a);
        match (want, got) {
            (None, None) => {}
            (Some(w), Some(id)) => {
                let m: BTreeSet<Ipv4Addr> = groups
                    .members(id)
                    .expect("a live id")
                    .iter()
                    .copied()
                    .collect();
                assert_eq!(m, w, "address {a}");
                ids_of_sets.entry(m).or_default().insert(id);
            }
            (w, g) => panic!("address {a}: want {w:?}, got {g:?}"),
        }
    }
    for (set, ids) in &ids_of_sets {
        assert_eq!(
            ids.len(),
            1,
            "one id per set of next hops: {set:?} has {ids:?}"
        );
    }
    assert!(ids_of_sets.len() > 1);
}

fn multipath_table(t: &RouteTable<Ipv4Net, u32>, rng: &mut Rng, nets: u32) {
    for i in 0..nets {
        let len = 12 + (i % 3) as u8 * 4; // /12, /16, /20: nested
        let p = Ipv4Net::new(
            Ipv4Addr::from(0x0a00_0000 | (rng.next() as u32 & 0x00ff_ffff)),
            len,
        )
        .unwrap()
        .trunc();
        let paths = 1 + rng.below(4);
        let first = rng.below(6);
        for j in 0..paths {
            t.add_route(route(key(p, 14, pool(first + j)), 0, 10, true, i))
                .unwrap();
        }
        // a worse backup and a disabled equal one: in no best set
        t.add_route(route(key(p, 14, 100), 0, 20, true, i)).unwrap();
        t.add_route(route(key(p, 14, 101), 0, 10, false, i))
            .unwrap();
    }
}

#[test]
fn promise_1_lookups_give_the_group_of_the_best_set() {
    let t = RouteTable::<Ipv4Net, u32>::new();
    let groups = NexthopGroups::<Ipv4Addr>::new();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    multipath_table(&t, &mut rng, 300);
    // built from the snapshot
    let (fib, mut f) = Fib::follow_multipath(&t, &groups, |r| r.key.next_hop).unwrap();
    check_promise_1(&t, &groups, &fib, &mut rng);
    assert_eq!(
        groups.len(),
        distinct_sets(&t),
        "a group per distinct set, not per network"
    );
    // and kept by the feed, through single writes and commits
    multipath_table(&t, &mut rng, 300);
    for _ in 0..200 {
        let routes: Vec<R> = t.enumerate(Criteria::all()).unwrap().collect();
        let r = &routes[rng.below(routes.len() as u64) as usize];
        match rng.below(3) {
            0 => {
                t.delete_route(&r.key).unwrap();
            }
            1 => {
                let mut b = Batch::new();
                b.delete_route(r.key);
                b.add_route(route(
                    key(r.key.prefix, 14, pool(rng.next())),
                    0,
                    10,
                    true,
                    0,
                ));
                t.commit(b).unwrap();
            }
            _ => {
                t.add_route(route(r.key, 0, rng.below(3) as u32 * 10, true, 0))
                    .unwrap();
            }
        }
    }
    f.sync().unwrap();
    assert_eq!(fib.version(), t.version());
    check_promise_1(&t, &groups, &fib, &mut rng);
    // the follower holds one reference per group it uses: as many groups as distinct sets
    assert_eq!(groups.len(), distinct_sets(&t));
}

/// How many distinct sets of next hops the table's networks' best sets have.
fn distinct_sets(t: &RouteTable<Ipv4Net, u32>) -> usize {
    let sets: BTreeSet<BTreeSet<Ipv4Addr>> = t
        .enumerate(Criteria::all().best_multipath())
        .unwrap()
        .fold(
            BTreeMap::<Ipv4Net, BTreeSet<Ipv4Addr>>::new(),
            |mut m, r| {
                m.entry(r.key.prefix).or_default().insert(r.key.next_hop);
                m
            },
        )
        .into_values()
        .collect();
    assert!(sets.len() < t.network_count(), "networks share sets");
    sets.len()
}

/// Promise 2: a network's best set flips between {1, 2} and {2, 3} by commits (one path
/// out, one in), and by single writes through {1, 2, 3} (a path in, then one out); a
/// reader that looks up and selects all the while sees only those sets, never a group
/// without a path of both sides of a change ({2} alone, say, or no group at all).
#[test]
fn promise_2_a_set_change_reaches_lookups_in_one_step() {
    let t = RouteTable::<Ipv4Net, u32>::new();
    let groups = NexthopGroups::<Ipv4Addr>::new();
    let p = net("10.0.0.0/8");
    let r = |h: u8| route(key(p, 14, h), 0, 10, true, 0);
    t.add_route(r(1)).unwrap();
    t.add_route(r(2)).unwrap();
    let (fib, mut f) = Fib::follow_multipath(&t, &groups, |r| r.key.next_hop).unwrap();
    let allowed: [BTreeSet<Ipv4Addr>; 3] = [
        [hop(1), hop(2)].into(),
        [hop(2), hop(3)].into(),
        [hop(1), hop(2), hop(3)].into(),
    ];
    let done = AtomicBool::new(false);
    let seen = AtomicUsize::new(0);
    let start = Barrier::new(3);
    const FLIPS: usize = 3000;
    std::thread::scope(|s| {
        s.spawn(|| {
            start.wait();
            let mut h = 0u64;
            while !done.load(Ordering::Acquire) {
                let id = fib
                    .lookup(Ipv4Addr::new(10, 1, 2, 3))
                    .expect("the network always has a path");
                h = h.wrapping_mul(6364136223846793005).wrapping_add(1);
                // The id may be released (after the publish that stopped using it)
                // between the lookup and these reads; every group ever interned here is
                // one of the allowed sets.
                if let Some(m) = groups.members(id) {
                    let m: BTreeSet<Ipv4Addr> = m.iter().copied().collect();
                    assert!(allowed.contains(&m), "a torn set: {m:?}");
                    seen.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(x) = groups.select(id, h) {
                    assert!([hop(1), hop(2), hop(3)].contains(&x));
                }
            }
        });
        s.spawn(|| {
            start.wait();
            while !done.load(Ordering::Acquire) {
                f.sync().unwrap();
            }
            f.sync().unwrap();
        });
        start.wait();
        for i in 0..FLIPS {
            if i % 2 == 0 {
                // {1, 2} -> {2, 3}
                if i % 4 == 0 {
                    let mut b = Batch::new();
                    b.delete_route(r(1).key).add_route(r(3));
                    t.commit(b).unwrap();
                } else {
                    t.add_route(r(3)).unwrap();
                    t.delete_route(&r(1).key).unwrap();
                }
            } else {
                // {2, 3} -> {1, 2}
                let mut b = Batch::new();
                b.add_route(r(1)).delete_route(r(3).key);
                t.commit(b).unwrap();
            }
            // let the reader and the follower run on a busy machine
            if i % 64 == 0 {
                while seen.load(Ordering::Relaxed) == 0 {
                    std::thread::yield_now();
                }
                std::thread::yield_now();
            }
        }
        done.store(true, Ordering::Release);
    });
    assert!(seen.load(Ordering::Relaxed) > 0);
    let id = fib.lookup(Ipv4Addr::new(10, 1, 2, 3)).unwrap();
    let m: BTreeSet<Ipv4Addr> = groups.members(id).unwrap().iter().copied().collect();
    assert_eq!(m, allowed[0]);
    assert_eq!(groups.len(), 1, "the other sets' groups were released");
}

/// Promise 3: `set_down` repoints every network using the groups that hold the next hop,
/// with no write to the table or the Fib; `select` never returns it; bringing it back up
/// makes it selectable again.
#[test]
fn promise_3_set_down_reaches_every_network_without_writes() {
    let t = RouteTable::<Ipv4Net, u32>::new();
    let groups = NexthopGroups::<Ipv4Addr>::new();
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    multipath_table(&t, &mut rng, 200);
    let (fib, mut f) = Fib::follow_multipath(&t, &groups, |r| r.key.next_hop).unwrap();
    f.sync().unwrap();
    let (tv, fv) = (t.version(), fib.version());
    let addrs: Vec<Ipv4Addr> = (0..2000)
        .map(|_| Ipv4Addr::from(0x0a00_0000 | (rng.next() as u32 & 0x00ff_ffff)))
        .collect();
    let ids: Vec<Option<u32>> = addrs.iter().map(|a| fib.lookup(*a)).collect();
    let failed = hop(pool(2));
    let holding = ids
        .iter()
        .flatten()
        .filter(|id| groups.members(**id).unwrap().contains(&failed))
        .count();
    assert!(holding > 0, "some networks use the failing next hop");
    let selected = |down: bool| {
        let mut hit = 0;
        for id in ids.iter().flatten() {
            for h in 0..64u64 {
                let x = groups.select(*id, h.wrapping_mul(0x9e37_79b9_7f4a_7c15));
                if x == Some(failed) {
                    assert!(!down, "select returned a member marked down");
                    hit += 1;
                }
                let m = groups.members(*id).unwrap();
                if m.len() == 1 && m[0] == failed && down {
                    assert_eq!(x, None, "its only member is down");
                }
            }
        }
        hit
    };
    assert!(selected(false) > 0);
    assert!(groups.set_down(&failed, true) > 0);
    assert!(groups.is_down(&failed));
    assert_eq!(selected(true), 0);
    // nothing was written
    assert_eq!((t.version(), fib.version()), (tv, fv));
    assert_eq!(f.sync(), Ok(0));
    let again: Vec<Option<u32>> = addrs.iter().map(|a| fib.lookup(*a)).collect();
    assert_eq!(again, ids, "the Fib's entries are as they were");
    groups.set_down(&failed, false);
    assert!(selected(false) > 0);
}

/// Promise 4: every group the follower interned is released once no network uses it, and
/// all of them when it is dropped; another follower's references are its own.
#[test]
fn promise_4_ids_are_released() {
    let t = RouteTable::<Ipv4Net, u32>::new();
    let groups = NexthopGroups::<Ipv4Addr>::new();
    let mut rng = Rng(0x0bad_5eed_0bad_5eed);
    multipath_table(&t, &mut rng, 200);
    let (fib, mut f) = Fib::follow_multipath(&t, &groups, |r| r.key.next_hop).unwrap();
    let (fib2, f2) = Fib::follow_multipath(&t, &groups, |r| r.key.next_hop).unwrap();
    let live = groups.len();
    assert!(live > 1);
    // another set for some networks, then back: the groups follow
    let routes: Vec<R> = t
        .enumerate(Criteria::all().best_multipath())
        .unwrap()
        .collect();
    for r in routes.iter().step_by(3) {
        t.delete_route(&r.key).unwrap();
    }
    f.sync().unwrap();
    // the rest, by single deletes and one block operation
    let rest: Vec<R> = t
        .enumerate(Criteria::all().include_disabled())
        .unwrap()
        .collect();
    for r in rest.iter().take(rest.len() / 2) {
        t.delete_route(&r.key).unwrap();
    }
    f.sync().unwrap();
    t.delete_routes(Criteria::all().include_disabled()).unwrap();
    assert_eq!(t.route_count(), 0);
    f.sync().unwrap();
    assert!(fib.is_empty());
    // only the second follower's (unsynced) references are left
    assert_eq!(groups.len(), live);
    drop(f2);
    assert_eq!(groups.len(), 0);
    assert_eq!(fib2.len(), fib2.len()); // its readers are still valid handles
                                        // a follower dropped with networks installed gives its references back too
    multipath_table(&t, &mut rng, 50);
    let (_fib3, mut f3) = Fib::follow_multipath(&t, &groups, |r| r.key.next_hop).unwrap();
    f3.sync().unwrap();
    assert!(!groups.is_empty());
    drop(f3);
    assert_eq!(groups.len(), 0);
    drop(f);
}

/// A follower that lags rebuilds from a fresh snapshot; the rebuild keeps the references
/// right (promise 1 holds after it, and deleting everything releases every group).
#[test]
fn a_lagging_multipath_follower_rebuilds_and_releases() {
    let t = RouteTable::<Ipv4Net, u32>::builder()
        .journal_capacity(64)
        .build();
    let groups = NexthopGroups::<Ipv4Addr>::new();
    let mut rng = Rng(0x5151_5151_7777_1111);
    multipath_table(&t, &mut rng, 20);
    let (fib, mut f) = Fib::follow_multipath(&t, &groups, |r| r.key.next_hop).unwrap();
    multipath_table(&t, &mut rng, 200); // far more than the journal holds
    let n = f.sync().unwrap();
    assert!(n > 100, "rebuilt: {n} networks");
    check_promise_1(&t, &groups, &fib, &mut rng);
    t.delete_routes(Criteria::all().include_disabled()).unwrap();
    f.sync().unwrap();
    assert!(fib.is_empty());
    assert_eq!(groups.len(), 0);
}

/// A `next_hop` that panics inside a sync loses nothing: the panic comes out of that sync,
/// the next one applies the change it interrupted, and the references stay exact.
#[test]
fn a_panicking_next_hop_loses_nothing() {
    let t = RouteTable::<Ipv4Net, u32>::new();
    let groups = NexthopGroups::<Ipv4Addr>::new();
    let armed = AtomicBool::new(false);
    let (fib, mut f) = Fib::follow_multipath(&t, &groups, |r| {
        if r.key.next_hop == hop(66) && armed.swap(false, Ordering::Relaxed) {
            panic!("next_hop failed");
        }
        r.key.next_hop
    })
    .unwrap();
    let p = net("10.0.0.0/8");
    t.add_route(route(key(p, 14, 1), 0, 10, true, 0)).unwrap();
    t.add_route(route(key(p, 14, 66), 0, 10, true, 0)).unwrap();
    armed.store(true, Ordering::Relaxed);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.sync()));
    assert!(r.is_err(), "the panic comes out of the sync");
    assert_eq!(
        f.sync(),
        Ok(2),
        "counting the change applied before the panic"
    );
    let id = fib.lookup(Ipv4Addr::new(10, 0, 0, 1)).unwrap();
    let m: BTreeSet<Ipv4Addr> = groups.members(id).unwrap().iter().copied().collect();
    assert_eq!(m, [hop(1), hop(66)].into());
    assert_eq!(groups.len(), 1);
    t.delete_routes(Criteria::all()).unwrap();
    f.sync().unwrap();
    assert_eq!(groups.len(), 0);
}

/// A value whose `Clone` panics while `CLONE_PANICS` is set.
#[derive(Debug, PartialEq)]
struct Fragile(u32);

static CLONE_PANICS: AtomicBool = AtomicBool::new(false);

impl Clone for Fragile {
    fn clone(&self) -> Self {
        if CLONE_PANICS.load(Ordering::Relaxed) {
            panic!("clone failed");
        }
        Fragile(self.0)
    }
}

/// A best-set feed whose embedder's `Clone` panics in the middle of a commit (after some
/// of its changes were returned one by one, in the next network's) loses nothing: the
/// next `next_commit` returns the rest of the commit whole.
#[test]
fn a_best_set_feed_survives_a_panicking_clone_inside_a_commit() {
    let t = RouteTable::<Ipv4Net, Fragile>::new();
    let (a, b) = (net("10.0.0.0/8"), net("192.168.0.0/16"));
    let r = |p: Ipv4Net, h: u8, metric: u32| Route {
        metric,
        ..Route::new(key(p, 14, h), Fragile(u32::from(h)))
    };
    for h in 1..=3 {
        t.add_route(r(a, h, 5)).unwrap();
        t.add_route(r(b, h, 5)).unwrap();
    }
    let (dump, mut feed) = t.subscribe(Criteria::all().best_multipath()).unwrap();
    let mut copy: BTreeMap<Key, Route<Ipv4Net, Fragile>> = dump.map(|r| (r.key, r)).collect();
    // one commit: a better path in each network evicts its three
    let mut batch = Batch::new();
    batch.add_route(r(a, 9, 1)).add_route(r(b, 9, 1));
    let v = t.commit(batch).unwrap();
    let fold = |copy: &mut BTreeMap<Key, Route<Ipv4Net, Fragile>>,
                c: rtm::Change<Ipv4Net, Fragile>| {
        assert_eq!(c.version, v);
        if let Some(o) = c.old {
            assert_eq!(copy.remove(&o.key), Some(o));
        }
        if let Some(n) = c.new {
            copy.insert(n.key, n);
        }
    };
    let first = feed.try_next().unwrap().unwrap(); // network a's first change
    fold(&mut copy, first);
    CLONE_PANICS.store(true, Ordering::Relaxed);
    let mut out = Vec::new();
    let r1 = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| feed.next_commit(&mut out)));
    CLONE_PANICS.store(false, Ordering::Relaxed);
    assert!(r1.is_err(), "the clone of network b's changes panicked");
    assert!(out.is_empty(), "out as it was");
    assert_eq!(feed.next_commit(&mut out), Ok(Some(v)));
    assert_eq!(out.len(), 3 + 4, "a's other three changes, then b's four");
    for c in out.drain(..) {
        fold(&mut copy, c);
    }
    assert_eq!(feed.next_commit(&mut out), Ok(None));
    let fresh: BTreeMap<Key, Route<Ipv4Net, Fragile>> = t
        .enumerate(Criteria::all().best_multipath())
        .unwrap()
        .map(|r| (r.key, r))
        .collect();
    assert_eq!(copy, fresh);
}

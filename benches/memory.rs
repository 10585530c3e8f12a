//! Memory per route, measured with a counting global allocator: rtm against
//! crossbeam-skiplist's `SkipMap`, scc's `TreeIndex` and a `BTreeMap` holding the same 1M
//! routes; then the dead versions rtm retains while one snapshot is open under churn, and
//! what close + collect gives back.
//!
//! ```text
//! cargo bench --bench memory --target-dir target/bench
//! ```
//!
//! "requested" is what the maps asked the allocator for; "malloc est." adds glibc's
//! per-chunk overhead (8 bytes, rounded up to 16, at least 32), closer to the resident cost.

mod counting;
mod data;

use data::Attrs;

use std::collections::BTreeMap;
use std::hint::black_box;

use crossbeam_skiplist::SkipMap;
use rtm::{Criteria, Ipv4Net, Route, RouteKey, RouteTable};
use scc::TreeIndex;

#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    bytes: isize,
    chunks: isize,
    allocs: isize,
}

fn usage() -> Usage {
    Usage {
        bytes: counting::bytes(),
        chunks: counting::chunks(),
        allocs: counting::allocs(),
    }
}

impl std::ops::Sub for Usage {
    type Output = Usage;
    fn sub(self, o: Usage) -> Usage {
        Usage {
            bytes: self.bytes - o.bytes,
            chunks: self.chunks - o.chunks,
            allocs: self.allocs - o.allocs,
        }
    }
}

type Key = RouteKey<Ipv4Net>;
type R = Route<Ipv4Net, u64>;

const TABLE: usize = 1_000_000;

/// Lets crossbeam-epoch run what was deferred: each flush frees a bounded number of
/// bags, so flush until the allocator's count stops moving.
fn settle() {
    let mut last = usage().bytes;
    let mut still = 0;
    while still < 4 {
        for _ in 0..256 {
            crossbeam_epoch::pin().flush();
        }
        let now = usage().bytes;
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
}

fn row(name: &str, u: Usage, n: usize, base: Option<f64>) {
    let per = u.bytes as f64 / n as f64;
    println!(
        "{name:<20} {:>10.1} {:>12.1} {:>12.2} {:>10}",
        per,
        u.chunks as f64 / n as f64,
        u.allocs as f64 / n as f64,
        base.map_or(String::from("-"), |b| format!("{:.2}x", per / b)),
    );
}

fn measure<T>(build: impl FnOnce() -> T) -> (T, Usage) {
    settle();
    let before = usage();
    let t = build();
    settle();
    (t, usage() - before)
}

fn main() {
    let prefixes = data::ipv4_prefixes(TABLE + 200_000, 1);
    let routes: Vec<R> = prefixes
        .iter()
        .enumerate()
        .map(|(i, p)| data::route(data::key_v4(*p), i as u64))
        .collect();
    let (table, churn) = routes.split_at(TABLE);

    println!("bytes per route, {TABLE} routes (RouteKey<Ipv4Net> -> attributes + u64)");
    println!(
        "{:<20} {:>10} {:>12} {:>12} {:>10}",
        "map", "requested", "malloc est.", "allocs", "vs skipmap"
    );
    let (skip, u_skip) = measure(|| {
        let m = SkipMap::new();
        for r in table {
            m.insert(r.key, Attrs::of(r));
        }
        m
    });
    let base = u_skip.bytes as f64 / TABLE as f64;
    let (rtm, u_rtm) = measure(|| {
        let t = RouteTable::<Ipv4Net, u64>::new();
        for r in table {
            t.add_route(r.clone()).unwrap();
        }
        t
    });
    row("rtm", u_rtm, TABLE, Some(base));
    row("skipmap", u_skip, TABLE, Some(base));
    drop(skip);
    let (tree, u_tree) = measure(|| {
        let m = TreeIndex::<Key, Attrs>::new();
        for r in table {
            m.insert_sync(r.key, Attrs::of(r)).unwrap();
        }
        m
    });
    row("treeindex", u_tree, TABLE, Some(base));
    drop(tree);
    let (btree, u_btree) = measure(|| {
        let mut m = BTreeMap::<Key, Attrs>::new();
        for r in table {
            m.insert(r.key, Attrs::of(r));
        }
        m
    });
    row("btreemap", u_btree, TABLE, Some(base));
    drop(btree);

    // Dead versions under churn with one snapshot open: replace 200k random routes (some
    // twice or more), delete 50k, and add and delete 200k others.
    println!("\nrtm dead versions with one snapshot open under churn ({TABLE} routes)");
    println!(
        "{:<44} {:>13} {:>13} {:>13}",
        "stage", "dead_versions", "live_routes", "MB retained"
    );
    settle();
    let base = usage();
    let stage = |name: &str| {
        let s = rtm.stats();
        println!(
            "{name:<44} {:>13} {:>13} {:>13.1}",
            s.dead_versions,
            s.live_routes,
            (usage() - base).bytes as f64 / 1e6
        );
    };
    stage("before (baseline for MB)");
    let snap = rtm.enumerate(Criteria::all()).unwrap();
    let mut rng = data::Rng::new(7);
    let mut deleted = std::collections::HashSet::new();
    for i in 0..200_000u64 {
        let r = &table[rng.below(TABLE as u64) as usize];
        if !deleted.contains(&r.key) {
            rtm.add_route(Route {
                value: r.value + i,
                ..r.clone()
            })
            .unwrap();
        }
        if i % 4 == 0 {
            let d = &table[rng.below(TABLE as u64) as usize];
            if deleted.insert(d.key) {
                rtm.delete_route(&d.key).unwrap();
            }
        }
        let c = &churn[i as usize];
        rtm.add_route(c.clone()).unwrap();
        rtm.delete_route(&c.key).unwrap();
    }
    settle();
    stage("after churn, snapshot open");
    rtm.collect();
    settle();
    stage("after collect, snapshot open");
    drop(snap);
    rtm.collect();
    settle();
    stage("after close + collect");
    black_box(&rtm);
}

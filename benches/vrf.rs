//! What a router with a thousand VRFs pays: 1,000 tables of 1,000 routes each, networks
//! sampled from the real RIS IPv4 table (a different sample per VRF), held in
//! crossbeam-skiplist `SkipMap`s, then in `RouteTable`s each with a `Fib` and its follower
//! and one open feed; the tables churned, dumped once each, and collected; then one empty
//! table with its Fib.
//!
//! The churn replays, to each table, every update of the real BGP day whose network is in
//! that VRF's sample, in day order: an announcement replaces the route with a new value
//! (so a new next hop), a withdrawal deletes it (`NoSuchRoute` ignored). The follower is
//! synced and the feed drained every 64 writes of a table and at the end.
//!
//! ```text
//! cargo bench --bench vrf --target-dir target/bench
//! ```
//!
//! One process, one phase after the other. Resident memory is read from `/proc/self/statm`
//! before and after each phase (the previous phase's structures dropped and
//! `malloc_trim(0)` called in between, so that the RSS comes back), beside the exact bytes
//! a counting allocator saw requested. RSS is the machine's: it includes glibc's per-chunk
//! overhead and fragmentation, and the Fib arenas' pages as they are touched.

mod counting;
mod data;

use std::collections::{HashMap, HashSet};
use std::hint::black_box;

use std::time::Instant;

use crossbeam_skiplist::SkipMap;
use data::Update;
use rtm::{Criteria, Error, Fib, Ipv4Net, RouteKey, RouteTable};

const VRFS: usize = 1_000;
const ROUTES: usize = 1_000;
/// The follower is synced and the feed drained every this many writes of a table's
/// replay, as a follower thread and a feed reader would keep up.
const SYNC_EVERY: usize = 64;

/// The values a `SkipMap` holds per route: priority, metric, enabled, value.
type Attrs = (u32, u32, bool, u64);

/// Resident bytes of this process (`/proc/self/statm`: resident pages x page size; 0
/// where there is no such file).
fn rss() -> isize {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `sysconf` reads a configuration value; no memory is passed.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as isize;
        if let Some(pages) = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<isize>().ok())
        {
            return pages * page;
        }
    }
    0
}

/// Lets crossbeam-epoch run what was deferred (flush until the allocator's count stops
/// moving), then gives glibc's free memory back to the system.
fn settle() {
    let mut last = counting::bytes();
    let mut still = 0;
    while still < 4 {
        for _ in 0..256 {
            crossbeam_epoch::pin().flush();
        }
        let now = counting::bytes();
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only returns free heap memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// RSS and allocator bytes at one point.
#[derive(Clone, Copy)]
struct Mark {
    rss: isize,
    bytes: isize,
}

fn mark() -> Mark {
    settle();
    Mark {
        rss: rss(),
        bytes: counting::bytes(),
    }
}

const MB: f64 = 1e6;

fn header() {
    println!(
        "{:<34} {:>8} {:>10} {:>9} {:>9} {:>11} {:>9}",
        "phase (from its own start)",
        "RSS MB",
        "RSS B/tbl",
        "RSS B/rt",
        "alloc MB",
        "alloc B/tbl",
        "RSS / SM"
    );
}

fn row(name: &str, start: Mark, now: Mark, skip_rss: Option<isize>) {
    let (rss, bytes) = (now.rss - start.rss, now.bytes - start.bytes);
    println!(
        "{name:<34} {:>8.1} {:>10} {:>9.1} {:>9.1} {:>11} {:>9}",
        rss as f64 / MB,
        rss / VRFS as isize,
        rss as f64 / (VRFS * ROUTES) as f64,
        bytes as f64 / MB,
        bytes / VRFS as isize,
        skip_rss.map_or(String::from("-"), |s| format!(
            "{:.2}x",
            rss as f64 / s as f64
        )),
    );
}

/// A VRF's networks: `ROUTES` distinct ones drawn from `table`, in the order drawn.
fn sample(table: &[Ipv4Net], vrf: usize) -> Vec<Ipv4Net> {
    let mut rng = data::Rng::new(0x5652_4600 + vrf as u64);
    let mut seen = HashSet::with_capacity(ROUTES);
    let mut out = Vec::with_capacity(ROUTES);
    while out.len() < ROUTES {
        let p = table[rng.below(table.len() as u64) as usize];
        if seen.insert(p) {
            out.push(p);
        }
    }
    out
}

/// Summed over the tables: `Stats::memory_bytes`, then `fib_bytes`, then
/// `Stats::dead_versions` and `Stats::live_routes`.
fn sums(tables: &[RouteTable<Ipv4Net, u64>], fib_bytes: usize) -> [usize; 4] {
    let mut out = [0, fib_bytes, 0, 0];
    for s in tables.iter().map(RouteTable::stats) {
        out[0] += s.memory_bytes;
        out[2] += s.dead_versions;
        out[3] += s.live_routes;
    }
    out
}

fn main() {
    let t0 = Instant::now();
    // The data, before the baseline: each VRF's networks and its share of the day (the
    // updates to a network of its sample, in day order).
    let (samples, shares, day) = {
        let table = data::ris_v4();
        let day = data::ris_v4_updates();
        let samples: Vec<Vec<Ipv4Net>> = (0..VRFS).map(|v| sample(&table, v)).collect();
        let mut vrfs_of: HashMap<Ipv4Net, Vec<u16>> = HashMap::new();
        for (v, s) in samples.iter().enumerate() {
            for p in s {
                vrfs_of.entry(*p).or_default().push(v as u16);
            }
        }
        let mut shares: Vec<Vec<Update<Ipv4Net>>> = vec![Vec::new(); VRFS];
        for u in &day {
            let (Update::Announce(p) | Update::Withdraw(p)) = *u;
            for v in vrfs_of.get(&p).into_iter().flatten() {
                shares[*v as usize].push(*u);
            }
        }
        for s in &mut shares {
            s.shrink_to_fit();
        }
        (samples, shares, day.len())
    };
    let replayed: usize = shares.iter().map(Vec::len).sum();
    let withdrawals: usize = shares
        .iter()
        .flatten()
        .filter(|u| matches!(u, Update::Withdraw(_)))
        .count();
    let (least, most) = shares
        .iter()
        .map(Vec::len)
        .fold((usize::MAX, 0), |(a, b), n| (a.min(n), b.max(n)));

    println!(
        "{VRFS} VRFs x {ROUTES} routes (RouteKey<Ipv4Net>), networks sampled per VRF from the \
         real RIS IPv4 table (1,042,325 prefixes); source: RIPE NCC RIS"
    );
    println!(
        "churn: the day's updates ({day}) to each VRF's networks: {replayed} in all \
         ({withdrawals} withdrawals), {least}-{most} per VRF"
    );

    // 1. Baseline.
    let base = mark();
    println!(
        "baseline RSS {:.1} MB (the samples and shares held), allocator {:.1} MB; \
         alloc = bytes the counting allocator saw requested, SM = the SkipMaps' RSS\n",
        base.rss as f64 / MB,
        base.bytes as f64 / MB
    );
    header();

    // 2. SkipMaps.
    let start = mark();
    let maps: Vec<SkipMap<RouteKey<Ipv4Net>, Attrs>> = samples
        .iter()
        .map(|s| {
            let m = SkipMap::new();
            for (i, p) in s.iter().enumerate() {
                let r = data::route(data::key_v4(*p), i as u64);
                m.insert(r.key, (r.priority, r.metric, r.enabled, r.value));
            }
            m
        })
        .collect();
    let built = mark();
    let skip_rss = built.rss - start.rss;
    row("SkipMap x1000, built", start, built, Some(skip_rss));
    black_box(&maps);
    drop(maps);

    // 3. RouteTables, each with a Fib, its follower and one open feed.
    let start = mark();
    let after_drop = start.rss - base.rss;
    let tables: Vec<RouteTable<Ipv4Net, u64>> = samples
        .iter()
        .map(|s| {
            let t = RouteTable::new();
            for (i, p) in s.iter().enumerate() {
                t.add_route(data::route(data::key_v4(*p), i as u64))
                    .unwrap();
            }
            t
        })
        .collect();
    row("rtm x1000, tables only", start, mark(), Some(skip_rss));
    let s_tables = sums(&tables, 0);
    let fib_bytes = |a: &[(Fib<Ipv4Net>, _, _)]| a.iter().map(|a| a.0.memory_bytes()).sum();
    let mut attached: Vec<_> = tables
        .iter()
        .map(|t| {
            let (fib, mut follower) = Fib::follow(t, |r| r.value as u32).unwrap();
            follower.sync().unwrap();
            let feed = t.feed(Criteria::all()).unwrap();
            (fib, follower, feed)
        })
        .collect();
    let built = mark();
    let s_built = sums(&tables, fib_bytes(&attached));
    row(
        "rtm x1000 + Fib, follower, feed",
        start,
        built,
        Some(skip_rss),
    );

    // Churn: each table's share of the day, the follower synced and the feed drained every
    // SYNC_EVERY writes and at the end.
    let mut value = ROUTES as u64;
    let mut changes = 0usize;
    let mut applied = 0usize;
    for ((t, (_, follower, feed)), share) in tables.iter().zip(&mut attached).zip(&shares) {
        for (i, u) in share.iter().enumerate() {
            match *u {
                Update::Announce(p) => {
                    value += 1;
                    t.add_route(data::route(data::key_v4(p), value)).unwrap();
                }
                Update::Withdraw(p) => match t.delete_route(&data::key_v4(p)) {
                    Ok(_) | Err(Error::NoSuchRoute) => {}
                    Err(e) => panic!("delete_route: {e:?}"),
                },
            }
            if (i + 1) % SYNC_EVERY == 0 {
                applied += follower.sync().unwrap();
                while feed.try_next().unwrap().is_some() {
                    changes += 1;
                }
            }
        }
    }
    for (_, follower, feed) in &mut attached {
        applied += follower.sync().unwrap();
        while feed.try_next().unwrap().is_some() {
            changes += 1;
        }
    }
    let churned = mark();
    let s_churned = sums(&tables, fib_bytes(&attached));
    row(
        "  after churn (synced, drained)",
        start,
        churned,
        Some(skip_rss),
    );

    // One dump of every table, read to the end.
    let mut dumped = 0usize;
    for t in &tables {
        dumped += t.enumerate(Criteria::all()).unwrap().count();
    }
    let after_dump = mark();
    let s_dumped = sums(&tables, fib_bytes(&attached));
    row(
        "  after one dump of each",
        start,
        after_dump,
        Some(skip_rss),
    );

    for t in &tables {
        t.collect();
    }
    let collected = mark();
    let s_collected = sums(&tables, fib_bytes(&attached));
    row(
        "  after collect() of each",
        start,
        collected,
        Some(skip_rss),
    );

    println!(
        "\n{:<18} {:>26} {:>24} {:>14} {:>12}",
        "summed over 1000",
        "table memory_bytes (/tbl)",
        "Fib memory_bytes (/tbl)",
        "dead_versions",
        "live_routes"
    );
    for (name, [mem, fib, dead, live]) in [
        ("tables only", s_tables),
        ("built", s_built),
        ("after churn", s_churned),
        ("after dump", s_dumped),
        ("after collect()", s_collected),
    ] {
        println!(
            "{name:<18} {:>13.1} MB {:>9} {:>11.1} MB {:>9} {:>14} {:>12}",
            mem as f64 / MB,
            mem / VRFS,
            fib as f64 / MB,
            fib / VRFS,
            dead,
            live
        );
    }
    println!(
        "churn: {replayed} updates, {changes} feed changes read, {applied} Fib changes \
         applied; dump: {dumped} routes"
    );
    println!(
        "RSS before the tables, after the SkipMaps were dropped: {:+.1} MB from the baseline",
        after_drop as f64 / MB
    );
    black_box(&attached);
    drop(attached);
    drop(tables);

    // 4. One empty table with its Fib.
    let start = mark();
    let table = RouteTable::<Ipv4Net, u64>::new();
    let (fib, mut follower) = Fib::follow(&table, |r| r.value as u32).unwrap();
    follower.sync().unwrap();
    let now = mark();
    println!(
        "\none empty table + Fib + follower: allocator {} bytes; table memory_bytes {} + Fib \
         memory_bytes {} = {} (RSS {:+} KiB)",
        now.bytes - start.bytes,
        table.stats().memory_bytes,
        fib.memory_bytes(),
        table.stats().memory_bytes + fib.memory_bytes(),
        (now.rss - start.rss) / 1024,
    );
    drop(follower);
    drop(fib);
    drop(table);
    println!("run time {:.1} s", t0.elapsed().as_secs_f64());
}

//! Next-hop groups, first on the real IPv4 table (RIPE RIS AS3333, 2026-05-11; source:
//! RIPE NCC RIS): every network gets 1 to 4 equal-cost paths from a pool of 8 next hops; a
//! forwarding step (`Fib::lookup_batch`, then a `Selector`'s select per address) beside
//! `lookup_batch` alone; then one next hop fails, and `set_down` is timed beside the repair
//! by one commit that deletes every route through it.
//!
//! Then selection alone: `NexthopGroups::select` and a `Selector`'s beside a naive
//! alternative in the same run, a `RwLock<Vec<Vec<u32>>>` of each group's up members picked
//! by `flow_hash % up members` (no resilient hashing: every change moves most flows), alone,
//! while a writer thread marks members down and up again, and on two reader threads.
//!
//! ```text
//! cargo bench --bench nexthop                  # everything (~2 min)
//! NEXTHOP_SKIP_REAL=1 cargo bench --bench nexthop  # selection alone
//! ```
//!
//! 1,000 groups of 2 to 8 members drawn from 64 next hops; each measurement selects 4,096
//! (group, flow) pairs. Before criterion's runs, one plain timing of each (the median of
//! 15 rounds) gives the ratios.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use criterion::Criterion;
use rtm::{
    Batch, Fib, InterfaceId, Ipv4Net, NexthopGroups, ProtocolId, Route, RouteKey, RouteTable,
};

mod counting;
mod data;

const GROUPS: u32 = 1_000;
const HOPS: u32 = 64;
const PAIRS: usize = 4_096;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The naive registry: each group's up members under one lock.
struct Naive {
    all: Vec<Vec<u32>>,
    up: RwLock<Vec<Vec<u32>>>,
}

impl Naive {
    fn select(&self, id: u32, flow_hash: u64) -> Option<u32> {
        let up = self.up.read().unwrap();
        let g = up.get(id as usize)?;
        if g.is_empty() {
            return None;
        }
        Some(g[(flow_hash % g.len() as u64) as usize])
    }

    fn set_down(&self, hop: u32, down: bool) {
        let mut up = self.up.write().unwrap();
        for (g, all) in up.iter_mut().zip(&self.all) {
            if all.contains(&hop) {
                if down {
                    g.retain(|&h| h != hop);
                } else if !g.contains(&hop) {
                    g.push(hop);
                }
            }
        }
    }
}

struct Setup {
    rtm: Arc<NexthopGroups<u32>>,
    naive: Arc<Naive>,
    pairs: Vec<(u32, u64)>,
}

fn setup() -> Setup {
    let mut rng = Rng(0x6e68);
    let rtm = Arc::new(NexthopGroups::new());
    let mut all = Vec::new();
    let mut g = 0;
    while g < GROUPS {
        let n = 2 + (rng.next() % 7) as usize;
        let members: Vec<u32> = (0..n)
            .map(|_| (rng.next() % u64::from(HOPS)) as u32)
            .collect();
        let id = rtm.intern(&members).unwrap();
        if id == g {
            let mut m = rtm.members(id).unwrap().to_vec();
            m.sort();
            all.push(m);
            g += 1;
        }
    }
    let naive = Arc::new(Naive {
        up: RwLock::new(all.clone()),
        all,
    });
    let pairs = (0..PAIRS)
        .map(|_| ((rng.next() % u64::from(GROUPS)) as u32, rng.next()))
        .collect();
    Setup { rtm, naive, pairs }
}

fn run_rtm(s: &Setup) -> u64 {
    let mut sum = 0u64;
    for &(id, h) in &s.pairs {
        sum += u64::from(black_box(s.rtm.select(black_box(id), h)).unwrap_or(0));
    }
    sum
}

fn run_naive(s: &Setup) -> u64 {
    let mut sum = 0u64;
    for &(id, h) in &s.pairs {
        sum += u64::from(black_box(s.naive.select(black_box(id), h)).unwrap_or(0));
    }
    sum
}

/// A writer thread that marks next hop `i % HOPS` down and up again in both registries,
/// with a pause between changes, until the returned flag is set.
fn churn(s: &Setup) -> (Arc<AtomicBool>, thread::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (rtm, naive, flag) = (Arc::clone(&s.rtm), Arc::clone(&s.naive), Arc::clone(&stop));
    let h = thread::spawn(move || {
        let mut n = 0u64;
        while !flag.load(Ordering::Relaxed) {
            let hop = (n % u64::from(HOPS)) as u32;
            rtm.set_down(&hop, true);
            naive.set_down(hop, true);
            rtm.set_down(&hop, false);
            naive.set_down(hop, false);
            n += 1;
            thread::sleep(Duration::from_micros(50));
        }
        n
    });
    (stop, h)
}

/// ns per select, the median of 15 rounds of all pairs.
fn time(s: &Setup, f: fn(&Setup) -> u64) -> f64 {
    let mut ns: Vec<f64> = (0..15)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..50 {
                black_box(f(s));
            }
            t.elapsed().as_nanos() as f64 / (50 * PAIRS) as f64
        })
        .collect();
    ns.sort_by(f64::total_cmp);
    ns[ns.len() / 2]
}

fn run_selector(s: &Setup, sel: &mut rtm::Selector<'_, u32>) -> u64 {
    let mut sum = 0u64;
    for &(id, h) in &s.pairs {
        sum += u64::from(black_box(sel.select(black_box(id), h)).unwrap_or(0));
    }
    sum
}

/// ns per select through one `Selector`, the median of 15 rounds of all pairs.
fn time_selector(s: &Setup) -> f64 {
    let mut sel = s.rtm.selector();
    let mut ns: Vec<f64> = (0..15)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..50 {
                black_box(run_selector(s, &mut sel));
            }
            t.elapsed().as_nanos() as f64 / (50 * PAIRS) as f64
        })
        .collect();
    ns.sort_by(f64::total_cmp);
    ns[ns.len() / 2]
}

/// The three ways, each timed on `threads` threads at once (each thread its own
/// selector); ns per select, the mean of the threads' medians.
fn timed(s: &Setup, threads: usize) -> (f64, f64, f64) {
    let each = |f: &(dyn Fn() -> f64 + Sync)| -> f64 {
        thread::scope(|sc| {
            let hs: Vec<_> = (0..threads).map(|_| sc.spawn(f)).collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<f64>() / threads as f64
        })
    };
    (
        each(&|| time(s, run_rtm)),
        each(&|| time_selector(s)),
        each(&|| time(s, run_naive)),
    )
}

fn ratios(s: &Setup) {
    for (what, writer, threads) in [
        ("alone", false, 1),
        ("with a writer", true, 1),
        ("two readers", false, 2),
    ] {
        let churner = writer.then(|| churn(s));
        let (r, c, n) = timed(s, threads);
        let changes = churner.map(|(stop, h)| {
            stop.store(true, Ordering::Relaxed);
            h.join().unwrap()
        });
        println!(
            "nexthop select {what}: rtm select {r:.2} ns, rtm Selector {c:.2} ns, naive RwLock {n:.2} ns: ratio naive/select {:.2}, naive/Selector {:.2}{}",
            n / r,
            n / c,
            changes.map_or(String::new(), |c| format!(" ({c} down/up rounds of each)"))
        );
    }
}

/// The pool of next hops the real table's networks draw their equal-cost paths from.
const POOL: u32 = 8;

/// A route of `p` through next hop `hop` of the pool, with the group id as its value.
fn path(p: Ipv4Net, hop: u32, group: u32) -> Route<Ipv4Net, u64> {
    Route::new(
        RouteKey::new(
            p,
            ProtocolId(14),
            InterfaceId(hop),
            std::net::Ipv4Addr::new(198, 51, 100, hop as u8 + 1),
        ),
        u64::from(group),
    )
}

/// ns per address of `f` over `addrs` in batches of 256: the median of `rounds`.
fn per_address(rounds: usize, addrs: usize, mut f: impl FnMut() -> u64) -> f64 {
    let mut ns: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed().as_nanos() as f64 / addrs as f64
        })
        .collect();
    ns.sort_by(f64::total_cmp);
    ns[ns.len() / 2]
}

/// On the real IPv4 table (RIPE RIS AS3333, 2026-05-11; source: RIPE NCC RIS): every
/// network gets 1 to 4 equal-cost paths from a pool of 8 next hops, a table holds each path
/// as a route, and a Fib maps each network to its group's id. A forwarding step is
/// `lookup_batch` and a `Selector`'s select per address, beside `lookup_batch` alone;
/// then next hop 0 fails: `set_down` beside the repair by rewriting, as one commit, every
/// route through it.
fn forwarding() {
    let prefixes = data::ris_v4();
    let groups = NexthopGroups::<u32>::new();
    let table = RouteTable::<Ipv4Net, u64>::new();
    let mut rng = Rng(0x5eed);
    let mut fib_ids = rtm::FibWriter::<Ipv4Net>::for_prefixes(prefixes.len());
    let (mut through, mut routes_through) = (0usize, Vec::new());
    for p in &prefixes {
        let k = 1 + (rng.next() % 4) as usize;
        let mut set = Vec::with_capacity(k);
        while set.len() < k {
            let h = (rng.next() % u64::from(POOL)) as u32;
            if !set.contains(&h) {
                set.push(h);
            }
        }
        let id = groups.intern(&set).unwrap();
        fib_ids.insert(*p, id).unwrap();
        for &h in &set {
            let r = path(*p, h, id);
            if h == 0 {
                routes_through.push(r.key);
            }
            table.add_route(r).unwrap();
        }
        through += usize::from(set.contains(&0));
    }
    fib_ids.publish(rtm::Version(1));
    let fib: Fib<Ipv4Net> = fib_ids.fib();
    println!(
        "\nreal IPv4 table: {} networks, {} routes, {} groups; next hop 0 is in {} networks' sets ({:.1}%)",
        prefixes.len(),
        table.route_count(),
        groups.len(),
        through,
        100.0 * through as f64 / prefixes.len() as f64
    );

    const N: usize = 1 << 21;
    let addrs = data::announced_v4(&prefixes, N, 9);
    let mut out = vec![None; 256];
    let mut sel = groups.selector();
    let rounds = 9;
    let (mut alone, mut step) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        alone.push(per_address(rounds, N, || {
            let mut sum = 0u64;
            for chunk in addrs.chunks(256) {
                fib.lookup_batch(chunk, &mut out);
                sum += out.iter().flatten().map(|&id| u64::from(id)).sum::<u64>();
            }
            sum
        }));
        step.push(per_address(rounds, N, || {
            let mut sum = 0u64;
            for chunk in addrs.chunks(256) {
                fib.lookup_batch(chunk, &mut out);
                for (a, id) in chunk.iter().zip(&out) {
                    if let Some(id) = *id {
                        let flow = u64::from(u32::from(*a)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                        sum += u64::from(sel.select(id, flow).unwrap_or(0));
                    }
                }
            }
            sum
        }));
    }
    alone.sort_by(f64::total_cmp);
    step.sort_by(f64::total_cmp);
    let (a, st) = (alone[1], step[1]);
    println!(
        "forwarding step over {N} announced addresses: lookup_batch {a:.2} ns per address, lookup_batch + Selector::select {st:.2} ns: ratio {:.2}",
        st / a
    );

    // Next hop 0 fails.
    let mut downs = Vec::new();
    let mut changed = 0;
    for _ in 0..15 {
        let t = Instant::now();
        changed = groups.set_down(&0, true);
        downs.push(t.elapsed().as_nanos() as f64);
        assert_eq!(groups.set_down(&0, false), changed);
    }
    downs.sort_by(f64::total_cmp);
    let down = downs[downs.len() / 2];
    let version = table.version();
    let mut b = Batch::new();
    for k in &routes_through {
        b.delete_route(*k);
    }
    let t = Instant::now();
    let v = table.commit(b).unwrap();
    let commit = t.elapsed().as_nanos() as f64;
    assert_eq!(v.0, version.0 + 1);
    println!(
        "next hop 0 down: set_down {:.1} us for {changed} groups ({:.2} us per group); the commit deleting its {} routes {:.1} ms: ratio {:.0}x",
        down / 1e3,
        down / 1e3 / changed as f64,
        routes_through.len(),
        commit / 1e6,
        commit / down
    );
}

/// Resilient hashing, measured: for groups of 2 to 16 members, the share of 100,000 flows
/// that move when one member goes down (ideally its own share, 1 / members, and no other),
/// the spread of the flows over the members still up (largest / smallest share), and the
/// flows that move when it comes back (ideally the same ones back).
fn resilience() {
    let flows: Vec<u64> = {
        let mut r = Rng(0x7e5);
        (0..100_000).map(|_| r.next()).collect()
    };
    println!("\n| members | flows moved by one down | of which not its own | up members' shares, largest / smallest | flows moved by its return | not back where they were |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
    for k in [2u32, 3, 4, 5, 8, 16] {
        let g = NexthopGroups::<u32>::new();
        let id = g.intern(&(0..k).collect::<Vec<_>>()).unwrap();
        let before: Vec<u32> = flows.iter().map(|&h| g.select(id, h).unwrap()).collect();
        g.set_down(&0, true);
        let down: Vec<u32> = flows.iter().map(|&h| g.select(id, h).unwrap()).collect();
        let moved = before.iter().zip(&down).filter(|(a, b)| a != b).count();
        let foreign = before
            .iter()
            .zip(&down)
            .filter(|(a, b)| a != b && **a != 0)
            .count();
        let mut share = vec![0usize; k as usize];
        for &m in &down {
            share[m as usize] += 1;
        }
        let up = &share[1..];
        let spread = *up.iter().max().unwrap() as f64 / *up.iter().min().unwrap() as f64;
        g.set_down(&0, false);
        let back: Vec<u32> = flows.iter().map(|&h| g.select(id, h).unwrap()).collect();
        let returned = down.iter().zip(&back).filter(|(a, b)| a != b).count();
        let astray = before.iter().zip(&back).filter(|(a, b)| a != b).count();
        println!(
            "| {k} | {:.2}% (1 / {k} = {:.2}%) | {foreign} | {spread:.3} | {:.2}% | {astray} |",
            100.0 * moved as f64 / flows.len() as f64,
            100.0 / f64::from(k),
            100.0 * returned as f64 / flows.len() as f64,
        );
    }
}

fn main() {
    if std::env::var_os("NEXTHOP_SKIP_REAL").is_none() {
        forwarding();
    }
    resilience();
    let s = setup();
    // The registry alone: the same sets interned into a fresh one.
    let (b, c) = (counting::bytes(), counting::chunks());
    let again = NexthopGroups::<u32>::new();
    for id in 0..GROUPS {
        again.intern(&s.rtm.members(id).unwrap()).unwrap();
    }
    let sizes: Vec<usize> = (0..GROUPS)
        .map(|id| again.members(id).unwrap().len())
        .collect();
    println!(
        "\n{GROUPS} groups of 2 to 8 members (mean {:.1}): {:.0} bytes requested per group ({:.0} in glibc chunks), the registry's records included",
        sizes.iter().sum::<usize>() as f64 / f64::from(GROUPS),
        (counting::bytes() - b) as f64 / f64::from(GROUPS),
        (counting::chunks() - c) as f64 / f64::from(GROUPS)
    );
    drop(again);
    assert_eq!(s.rtm.len(), GROUPS as usize);
    ratios(&s);
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut g = c.benchmark_group("nexthop_select_4096");
    g.bench_function("rtm", |b| b.iter(|| run_rtm(&s)));
    let mut sel = s.rtm.selector();
    g.bench_function("rtm_selector", |b| b.iter(|| run_selector(&s, &mut sel)));
    g.bench_function("naive_rwlock", |b| b.iter(|| run_naive(&s)));
    let (stop, h) = churn(&s);
    g.bench_function("rtm_with_writer", |b| b.iter(|| run_rtm(&s)));
    g.bench_function("naive_rwlock_with_writer", |b| b.iter(|| run_naive(&s)));
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
    g.finish();
    c.final_summary();
}

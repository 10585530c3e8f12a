//! Next-hop group selection: `NexthopGroups::select` and a `Selector`'s beside a naive alternative in the
//! same run, a `RwLock<Vec<Vec<u32>>>` of each group's up members picked by
//! `flow_hash % up members` (no resilient hashing: every change moves most flows), each
//! alone and while a writer thread marks members down and up again.
//!
//! ```text
//! cargo bench --bench nexthop --target-dir target/bench
//! ```
//!
//! 1,000 groups of 2 to 8 members drawn from 64 next hops; each measurement selects 4,096
//! (group, flow) pairs. Before criterion's runs, one plain timing of each (the median of
//! 15 rounds) gives the ratio, printed as `ratio naive/rtm`.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use criterion::Criterion;
use rtm::NexthopGroups;

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

fn main() {
    let s = setup();
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

//! Side-by-side comparisons: rtm against crossbeam-skiplist's `SkipMap`, scc's `TreeIndex`
//! and a `RwLock<BTreeMap>` (and prefix-trie's `PrefixMap` for longest-prefix match), on the
//! same keys, in the same process. docs/BENCHMARKS.md has the results and how to read them.
//!
//! ```text
//! cargo bench --bench compare --target-dir target/bench            # everything, a few minutes
//! cargo bench --bench compare --target-dir target/bench -- --quick # a quick pass
//! cargo bench --bench compare --target-dir target/bench -- lpm     # one family
//! ```
//!
//! Every map holds the same `RouteKey<Ipv4Net>` -> route attributes (priority, metric,
//! enabled, a u64 payload); rtm stores them as `Route<Ipv4Net, u64>`. The 1M tables are
//! built once and shared by every benchmark. A "writer" is a second thread that churns keys
//! the readers never ask for: it keeps a window of `WINDOW` extra routes, inserting one and
//! deleting the oldest per step, flat out.

mod churn;
mod data;

use churn::{routes_of, Churn, Churner, Key, Rtm, R};
use data::Attrs;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use crossbeam_skiplist::SkipMap;
use crossbeam_utils::CachePadded;
use prefix_trie::PrefixMap;
use rtm::{Criteria, Ipv4Net};
use scc::TreeIndex;

/// Routes in the big table.
const TABLE: usize = 1_000_000;
/// Keys the writers churn (never in the table, never read).
const CHURN: usize = 200_000;
/// Extra routes a writer keeps in the table while it churns.
const WINDOW: usize = 50_000;
/// Addresses per longest-prefix-match probe set.
const LPM_PROBES: usize = 1 << 18;

/// The ordered maps of benchmarks 1-3.
trait Map: Churn {
    fn get(&self, k: &Key) -> Option<Attrs>;
    /// A full ordered dump: (routes seen, a checksum over keys and values).
    fn dump(&self) -> (usize, u64);
}

#[inline]
fn fold(acc: (usize, u64), k: &Key, a: &Attrs) -> (usize, u64) {
    (
        acc.0 + 1,
        acc.1
            .wrapping_add(a.value ^ a.metric as u64)
            .wrapping_add(k.prefix.prefix_len() as u64),
    )
}

impl Map for Rtm {
    #[inline]
    fn get(&self, k: &Key) -> Option<Attrs> {
        self.get_route(k).map(|r| Attrs::of(&r))
    }
    fn dump(&self) -> (usize, u64) {
        self.enumerate(Criteria::all())
            .unwrap()
            .fold((0, 0), |acc, r| fold(acc, &r.key, &Attrs::of(&r)))
    }
}

impl Map for SkipMap<Key, Attrs> {
    #[inline]
    fn get(&self, k: &Key) -> Option<Attrs> {
        SkipMap::get(self, k).map(|e| *e.value())
    }
    fn dump(&self) -> (usize, u64) {
        self.iter()
            .fold((0, 0), |acc, e| fold(acc, e.key(), e.value()))
    }
}

impl Churn for TreeIndex<Key, Attrs> {
    #[inline]
    fn insert(&self, r: &R) {
        self.upsert_sync(r.key, Attrs::of(r));
    }
    #[inline]
    fn remove(&self, k: &Key) {
        assert!(self.remove_sync(k));
    }
}

impl Map for TreeIndex<Key, Attrs> {
    #[inline]
    fn get(&self, k: &Key) -> Option<Attrs> {
        self.peek_with(k, |_, v| *v)
    }
    fn dump(&self) -> (usize, u64) {
        let guard = scc::Guard::new();
        self.iter(&guard)
            .fold((0, 0), |acc, (k, v)| fold(acc, k, v))
    }
}

impl Churn for RwLock<BTreeMap<Key, Attrs>> {
    #[inline]
    fn insert(&self, r: &R) {
        self.write().unwrap().insert(r.key, Attrs::of(r));
    }
    #[inline]
    fn remove(&self, k: &Key) {
        assert!(self.write().unwrap().remove(k).is_some());
    }
}

impl Map for RwLock<BTreeMap<Key, Attrs>> {
    #[inline]
    fn get(&self, k: &Key) -> Option<Attrs> {
        self.read().unwrap().get(k).copied()
    }
    fn dump(&self) -> (usize, u64) {
        let m = self.read().unwrap();
        m.iter().fold((0, 0), |acc, (k, v)| fold(acc, k, v))
    }
}

/// Longest-prefix match on an address.
trait Lpm: Sync {
    fn lpm(&self, a: Ipv4Addr) -> Option<(Ipv4Net, Attrs)>;
}

impl Lpm for Rtm {
    #[inline]
    fn lpm(&self, a: Ipv4Addr) -> Option<(Ipv4Net, Attrs)> {
        self.lookup(a).map(|r| (r.key.prefix, Attrs::of(&r)))
    }
}

impl Lpm for PrefixMap<Ipv4Net, Attrs> {
    #[inline]
    fn lpm(&self, a: Ipv4Addr) -> Option<(Ipv4Net, Attrs)> {
        self.get_lpm(&Ipv4Net::from(a)).map(|(p, v)| (p, *v))
    }
}

impl Lpm for RwLock<PrefixMap<Ipv4Net, Attrs>> {
    #[inline]
    fn lpm(&self, a: Ipv4Addr) -> Option<(Ipv4Net, Attrs)> {
        self.read().unwrap().lpm(a)
    }
}

impl Churn for RwLock<PrefixMap<Ipv4Net, Attrs>> {
    #[inline]
    fn insert(&self, r: &R) {
        self.write().unwrap().insert(r.key.prefix, Attrs::of(r));
    }
    #[inline]
    fn remove(&self, k: &Key) {
        assert!(self.write().unwrap().remove(&k.prefix).is_some());
    }
}

/// What the benchmark thread can see of a running writer.
struct Probe<'a> {
    writes: &'a AtomicU64,
    /// The writer thread's `/proc/.../schedstat`, whose first field is its CPU time in ns.
    schedstat: Option<std::path::PathBuf>,
}

impl Probe<'_> {
    /// (writes so far, now, the writer's CPU time in ns if the platform tells).
    fn sample(&self) -> (u64, Instant, Option<u64>) {
        let cpu = self.schedstat.as_ref().and_then(|p| {
            std::fs::read_to_string(p)
                .ok()?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        });
        (self.writes.load(Ordering::Relaxed), Instant::now(), cpu)
    }
}

/// A writer thread churning `keys` in `map` flat out while `body` runs.
fn with_writer<M: Churn + ?Sized, T>(
    map: &M,
    keys: &[R],
    window: usize,
    body: impl FnOnce(&Probe<'_>) -> T,
) -> T {
    let stop = AtomicBool::new(false);
    let writes = CachePadded::new(AtomicU64::new(0));
    let ready = std::sync::OnceLock::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut c = Churner::fill(map, keys, window);
            // "PID/task/TID" on Linux
            let me = std::fs::read_link("/proc/thread-self").ok();
            ready.get_or_init(|| {
                me.map(|p| std::path::Path::new("/proc").join(p).join("schedstat"))
            });
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..16 {
                    c.step();
                }
                writes.fetch_add(32, Ordering::Relaxed);
            }
            c.drain();
        });
        let schedstat = loop {
            if let Some(p) = ready.get() {
                break p.clone();
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let out = body(&Probe {
            writes: &writes,
            schedstat,
        });
        stop.store(true, Ordering::Relaxed);
        out
    })
}

/// Everything built once and shared by the benchmarks.
struct Fixture {
    /// The table's routes, in insertion (random) order.
    routes: Vec<R>,
    /// Routes the writers churn.
    churn: Vec<R>,
    /// The table's keys in a shuffled order, for point gets.
    probe: Vec<Key>,
    rtm: Rtm,
    skip: SkipMap<Key, Attrs>,
    tree: TreeIndex<Key, Attrs>,
    btree: RwLock<BTreeMap<Key, Attrs>>,
}

fn shuffled<T: Clone>(v: &[T], seed: u64) -> Vec<T> {
    let mut out = v.to_vec();
    let mut rng = data::Rng::new(seed);
    for i in (1..out.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        out.swap(i, j);
    }
    out
}

impl Fixture {
    fn build() -> Self {
        let t0 = Instant::now();
        let prefixes = data::ipv4_prefixes(TABLE + CHURN, 1);
        let routes = routes_of(&prefixes[..TABLE], 0);
        let churn = routes_of(&prefixes[TABLE..], TABLE as u64);
        let probe = shuffled(&routes.iter().map(|r| r.key).collect::<Vec<_>>(), 2);
        let rtm = Rtm::new();
        let skip = SkipMap::new();
        let tree = TreeIndex::new();
        let mut btree = BTreeMap::new();
        for r in &routes {
            rtm.insert(r);
            Churn::insert(&skip, r);
            Churn::insert(&tree, r);
            btree.insert(r.key, Attrs::of(r));
        }
        let fx = Fixture {
            routes,
            churn,
            probe,
            rtm,
            skip,
            tree,
            btree: RwLock::new(btree),
        };
        for (name, n) in [
            ("rtm", fx.rtm.dump().0),
            ("skipmap", fx.skip.dump().0),
            ("treeindex", fx.tree.dump().0),
            ("rwlock_btreemap", fx.btree.dump().0),
        ] {
            assert_eq!(n, TABLE, "{name} holds the whole table");
        }
        eprintln!(
            "fixture: {TABLE} routes in 4 maps, built in {:.1?}",
            t0.elapsed()
        );
        fx
    }
}

/// Runs `$f(group, name, map, args...)` for each of the four maps of the fixture.
macro_rules! each_map {
    ($fx:expr, $f:ident ( $($arg:expr),* )) => {{
        $f("rtm", &$fx.rtm, $($arg),*);
        $f("skipmap", &$fx.skip, $($arg),*);
        $f("treeindex", &$fx.tree, $($arg),*);
        $f("rwlock_btreemap", &$fx.btree, $($arg),*);
    }};
}

fn get_one<M: Map>(name: &str, m: &M, g: &mut BenchmarkGroup<'_, WallTime>, probe: &[Key]) {
    let mut i = 0;
    g.bench_function(name, |b| {
        b.iter(|| {
            let k = &probe[i];
            i += 1;
            if i == probe.len() {
                i = 0;
            }
            black_box(m.get(black_box(k)))
        })
    });
}

fn get_with_writer<M: Map>(name: &str, m: &M, g: &mut BenchmarkGroup<'_, WallTime>, fx: &Fixture) {
    with_writer(m, &fx.churn, WINDOW, |_| get_one(name, m, g, &fx.probe));
}

/// Benchmark 1: point get by exact key, alone and beside a writer.
fn bench_get(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("get");
    g.throughput(Throughput::Elements(1));
    each_map!(fx, get_one(&mut g, &fx.probe));
    g.finish();
    let mut g = c.benchmark_group("get_with_writer");
    g.throughput(Throughput::Elements(1));
    each_map!(fx, get_with_writer(&mut g, fx));
    g.finish();
}

fn churn_one<M: Map>(name: &str, m: &M, g: &mut BenchmarkGroup<'_, WallTime>, fx: &Fixture) {
    let mut c = Churner::fill(m, &fx.churn, WINDOW);
    g.bench_function(name, |b| b.iter(|| c.step()));
    c.drain();
}

/// Benchmark 2: insert and delete churn on the 1M table: one iteration is one insert of a new key
/// and one delete of the key inserted `WINDOW` steps before.
fn bench_churn(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("churn");
    g.throughput(Throughput::Elements(2));
    each_map!(fx, churn_one(&mut g, fx));
    g.finish();
}

fn dump_one<M: Map>(name: &str, m: &M, g: &mut BenchmarkGroup<'_, WallTime>) {
    g.bench_function(name, |b| b.iter(|| black_box(m.dump())));
}

fn dump_with_writer<M: Map>(name: &str, m: &M, g: &mut BenchmarkGroup<'_, WallTime>, fx: &Fixture) {
    with_writer(m, &fx.churn, WINDOW, |_| dump_one(name, m, g));
}

/// The writer's throughput alone and while dumps run back to back, in alternating rounds
/// (so that background load hits both alike). Returns the medians of (solo, during) in
/// writes per wall-clock second, and in writes per second of the writer's own CPU time
/// (which a busy machine's scheduler does not skew).
fn writer_rates<M: Map>(
    m: &M,
    fx: &Fixture,
    rounds: usize,
    phase: Duration,
) -> ((f64, f64), Option<(f64, f64)>) {
    with_writer(m, &fx.churn, WINDOW, |probe| {
        let rate = |f: &mut dyn FnMut()| {
            let (w0, t0, c0) = probe.sample();
            f();
            let (w1, t1, c1) = probe.sample();
            let w = (w1 - w0) as f64;
            let cpu = c0.zip(c1).map(|(a, b)| w / ((b - a) as f64 / 1e9));
            (w / (t1 - t0).as_secs_f64(), cpu)
        };
        let (mut solo, mut during, mut solo_cpu, mut during_cpu) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        // settle: let the writer reach its steady state (sweeps included)
        std::thread::sleep(phase / 2);
        for _ in 0..rounds {
            let (w, c) = rate(&mut || std::thread::sleep(phase));
            solo.push(w);
            solo_cpu.extend(c);
            let (w, c) = rate(&mut || {
                let t = Instant::now();
                while t.elapsed() < phase {
                    black_box(m.dump());
                }
            });
            during.push(w);
            during_cpu.extend(c);
        }
        let cpu = (solo_cpu.len() == rounds && during_cpu.len() == rounds)
            .then(|| (median(&mut solo_cpu), median(&mut during_cpu)));
        ((median(&mut solo), median(&mut during)), cpu)
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Benchmark 3: full ordered dump of 1M routes, alone and beside a writer; then the writer's
/// throughput during dumps against its solo throughput.
fn bench_dump(c: &mut Criterion, fx: &Fixture, quick: bool, report: bool) {
    let mut g = c.benchmark_group("dump");
    g.throughput(Throughput::Elements(TABLE as u64));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(3));
    each_map!(fx, dump_one(&mut g));
    g.finish();
    let mut g = c.benchmark_group("dump_with_writer");
    g.throughput(Throughput::Elements(TABLE as u64));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(3));
    each_map!(fx, dump_with_writer(&mut g, fx));
    g.finish();

    if !report {
        return;
    }
    let (rounds, phase) = if quick {
        (3, Duration::from_millis(400))
    } else {
        (5, Duration::from_millis(1000))
    };
    println!("\ndump_writer_throughput: writer writes/s alone and during back-to-back dumps");
    println!("(median of {rounds} alternating rounds of {phase:?} each; per wall-clock second,");
    println!(" and per second of the writer thread's own CPU time)");
    println!(
        "{:<16} {:>12} {:>12} {:>7}   {:>12} {:>12} {:>7}",
        "map", "solo w/s", "during w/s", "kept", "solo w/cpu-s", "during", "kept"
    );
    let row = |name: &str, ((solo, during), cpu): ((f64, f64), Option<(f64, f64)>)| {
        let cpu = cpu.map_or(String::from("(no schedstat)"), |(s, d)| {
            format!("{s:>12.0} {d:>12.0} {:>6.1}%", 100.0 * d / s)
        });
        println!(
            "{name:<16} {solo:>12.0} {during:>12.0} {:>6.1}%   {cpu}",
            100.0 * during / solo
        );
    };
    row("rtm", writer_rates(&fx.rtm, fx, rounds, phase));
    row("skipmap", writer_rates(&fx.skip, fx, rounds, phase));
    row("treeindex", writer_rates(&fx.tree, fx, rounds, phase));
    row(
        "rwlock_btreemap",
        writer_rates(&fx.btree, fx, rounds, phase),
    );
    println!();
}

/// The LPM tables: rtm and a prefix-trie `PrefixMap` with the same routes, and keys for a
/// writer.
struct LpmTable<'a> {
    name: &'static str,
    rtm: &'a Rtm,
    trie: PrefixMap<Ipv4Net, Attrs>,
    churn: Vec<R>,
    window: usize,
    probes: [(&'static str, Vec<Ipv4Addr>); 2],
}

impl<'a> LpmTable<'a> {
    fn new(name: &'static str, rtm: &'a Rtm, routes: &[R], churn: Vec<R>) -> Self {
        let mut trie = PrefixMap::new();
        for r in routes {
            trie.insert(r.key.prefix, Attrs::of(r));
        }
        let prefixes: Vec<Ipv4Net> = routes.iter().map(|r| r.key.prefix).collect();
        let window = (churn.len() / 4).min(WINDOW);
        let t = Self {
            name,
            rtm,
            trie,
            churn,
            window,
            probes: [
                ("uniform", data::uniform_v4(LPM_PROBES, 3)),
                ("announced", data::announced_v4(&prefixes, LPM_PROBES, 4)),
            ],
        };
        // Both do the same work: the same answers.
        for (_, probe) in &t.probes {
            for a in probe.iter().take(20_000) {
                assert_eq!(t.rtm.lpm(*a), t.trie.lpm(*a), "lookup {a}");
            }
        }
        t
    }
}

fn lpm_one<L: Lpm + ?Sized>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    m: &L,
    probe: &[Ipv4Addr],
) {
    let mut i = 0;
    g.bench_function(name, |b| {
        b.iter(|| {
            let a = probe[i];
            i += 1;
            if i == probe.len() {
                i = 0;
            }
            black_box(m.lpm(black_box(a)))
        })
    });
}

/// Benchmark 4: longest-prefix match: rtm against prefix-trie single-threaded, and rtm against a
/// `RwLock<PrefixMap>` with a writer churning in both.
fn bench_lpm(c: &mut Criterion, t: LpmTable<'_>) {
    let locked = RwLock::new(t.trie);
    for (keys, probe) in &t.probes {
        let mut g = c.benchmark_group(format!("lpm_{}_{}", t.name, keys));
        g.throughput(Throughput::Elements(1));
        lpm_one(&mut g, "rtm", t.rtm, probe);
        // single-threaded prefix-trie: no lock taken
        lpm_one(&mut g, "prefix_trie", &*locked.read().unwrap(), probe);
        with_writer(t.rtm, &t.churn, t.window, |_| {
            lpm_one(&mut g, "rtm_with_writer", t.rtm, probe)
        });
        with_writer(&locked, &t.churn, t.window, |_| {
            lpm_one(&mut g, "rwlock_prefix_trie_with_writer", &locked, probe)
        });
        g.finish();
    }
}

/// Benchmark 5: open and close an enumeration (RAII and handle), at 10k and at 1M routes.
fn bench_open_close(c: &mut Criterion, fx: &Fixture) {
    let small = Rtm::new();
    for r in &fx.routes[..10_000] {
        small.insert(r);
    }
    let mut g = c.benchmark_group("open_close");
    for (size, t) in [("10k", &small), ("1m", &fx.rtm)] {
        g.bench_function(BenchmarkId::new("enumerate", size), |b| {
            b.iter(|| drop(black_box(t.enumerate(Criteria::all()).unwrap())))
        });
        g.bench_function(BenchmarkId::new("handle", size), |b| {
            b.iter(|| {
                let h = t.create_enumeration_handle(Criteria::all()).unwrap();
                t.close_enumeration_handle(black_box(h)).unwrap()
            })
        });
        // The same with a feed open (its floor is one more slot the reclaimer reads).
        let feed = t.feed(Criteria::all()).unwrap();
        g.bench_function(BenchmarkId::new("enumerate_with_feed", size), |b| {
            b.iter(|| drop(black_box(t.enumerate(Criteria::all()).unwrap())))
        });
        drop(feed);
    }
    g.finish();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    // The first free argument is criterion's filter; the writer report has no criterion id,
    // so it runs when no filter is given or the filter mentions it.
    const TAKES_VALUE: [&str; 14] = [
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--measurement-time",
        "--warm-up-time",
        "--sample-size",
        "--noise-threshold",
        "--significance-level",
        "--confidence-level",
        "--nresamples",
        "--profile-time",
        "--output-format",
        "--color",
    ];
    let mut filter = String::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if TAKES_VALUE.contains(&a.as_str()) {
            it.next();
        } else if !a.starts_with('-') {
            filter = a.clone();
            break;
        }
    }
    let report = filter.is_empty() || "dump_writer_throughput".contains(filter.as_str());
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();

    let fx = Fixture::build();
    bench_get(&mut c, &fx);
    bench_churn(&mut c, &fx);
    bench_dump(&mut c, &fx, quick, report);
    bench_open_close(&mut c, &fx);

    let mae = {
        let mut v = data::mae_west();
        v.sort();
        v.dedup();
        v
    };
    // inserted in a random order, as the 1M table
    let mae_routes = shuffled(&routes_of(&mae, 0), 6);
    let mae_rtm = Rtm::new();
    for r in &mae_routes {
        mae_rtm.insert(r);
    }
    let mae_churn = routes_of(&data::fresh_v4(&mae, 20_000, 5), 1 << 32);
    bench_lpm(
        &mut c,
        LpmTable::new("maewest", &mae_rtm, &mae_routes, mae_churn),
    );
    bench_lpm(
        &mut c,
        LpmTable::new("1m", &fx.rtm, &fx.routes, fx.churn.clone()),
    );

    c.final_summary();
}

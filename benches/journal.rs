//! What the journal and the bounded reclamation steps buy, on real data: the full IPv4
//! table of one RIPE RIS peer (AS3333, 1,042,325 prefixes, 2026-05-11) and the 1,393,421
//! updates it sent in the next 24 hours. Source: RIPE NCC RIS.
//!
//! A plain timing harness (latency distributions need every sample, not criterion's
//! means). It prints one table per section; docs/BENCHMARKS.md has the results.
//!
//! ```text
//! cargo bench --bench journal                       # every section, several minutes
//! cargo bench --bench journal -- --quick            # shorter churn rounds, 300k updates
//! cargo bench --bench journal -- latency close      # some sections
//! ```
//!
//! Sections: `latency` (each write's time while a reader opens, reads and closes
//! snapshots), `close` (each close of 32 snapshots 20k replaces apart), `churn`
//! (insert+delete at 1M routes: rtm, SkipMap, rtm while another thread reads a feed,
//! waiting with `next_timeout` or polling with `try_next`),
//! `dump` (a full dump after the day, rtm and SkipMap), `memory` (dead versions kept by a
//! snapshot and by a feed that stops reading), `commits` (the day as single writes and as
//! commits of 64 updates), `big-commit` (a commit of the whole table beside a replaying
//! writer), `commit-to-fib` (10,000-route commits reaching a followed Fib).

#[path = "churn/mod.rs"]
mod churn;
mod data;

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use churn::{routes_of, thread_cpu_ns, Churn, Churner, Key, Rtm, R};
use crossbeam_skiplist::SkipMap;
use data::{Attrs, Update};
use rtm::{Criteria, Error, Ipv4Net};

/// Keys the churn writer cycles through (never in the table).
const CHURN_KEYS: usize = 200_000;
/// Extra routes the churn writer keeps in the table.
const WINDOW: usize = 50_000;
/// Routes each snapshot of the latency section's reader reads.
const READ: usize = 300;

struct Opts {
    quick: bool,
    sections: Vec<String>,
}

impl Opts {
    fn parse() -> Self {
        let mut o = Opts {
            quick: false,
            sections: Vec::new(),
        };
        for a in std::env::args().skip(1) {
            match a.as_str() {
                "--quick" => o.quick = true,
                "--bench" => {} // cargo bench passes it
                s if s.starts_with('-') => {}
                s => o.sections.push(s.to_string()),
            }
        }
        o
    }

    fn wants(&self, s: &str) -> bool {
        self.sections.is_empty() || self.sections.iter().any(|x| s.contains(x.as_str()))
    }

    /// How many updates of the day the replaying sections use.
    fn day(&self) -> usize {
        if self.quick {
            300_000
        } else {
            usize::MAX
        }
    }
}

/// The real table and the real day, loaded once.
struct Real {
    prefixes: Vec<Ipv4Net>,
    updates: Vec<Update<Ipv4Net>>,
}

fn load(table: &Rtm, prefixes: &[Ipv4Net]) {
    for (i, p) in prefixes.iter().enumerate() {
        table
            .add_route(data::route(data::key_v4(*p), i as u64))
            .unwrap();
    }
}

/// Applies one update of the day; the value of an announcement is `value`.
#[inline]
fn apply(table: &Rtm, u: &Update<Ipv4Net>, value: u64) {
    match u {
        Update::Announce(p) => {
            table
                .add_route(data::route(data::key_v4(*p), value))
                .unwrap();
        }
        Update::Withdraw(p) => match table.delete_route(&data::key_v4(*p)) {
            Ok(_) | Err(Error::NoSuchRoute) => {}
            Err(e) => panic!("{e}"),
        },
    }
}

fn us(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1e3)
}

/// This thread's CPU time in ns (Linux; `None` elsewhere): the time a write costs itself,
/// without the time the scheduler gave the core to someone else.
#[cfg(target_os = "linux")]
fn thread_cpu_clock() -> Option<u64> {
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    clock_ns(CLOCK_THREAD_CPUTIME_ID)
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_clock() -> Option<u64> {
    None
}

/// CLOCK_MONOTONIC in ns (Linux; `None` elsewhere): the clock `perf record -k
/// CLOCK_MONOTONIC` stamps its samples with, so that slow writes can be matched with the
/// samples taken while they ran.
#[cfg(target_os = "linux")]
fn monotonic_ns() -> Option<u64> {
    const CLOCK_MONOTONIC: i32 = 1;
    clock_ns(CLOCK_MONOTONIC)
}

#[cfg(not(target_os = "linux"))]
fn monotonic_ns() -> Option<u64> {
    None
}

#[cfg(target_os = "linux")]
fn clock_ns(clock: i32) -> Option<u64> {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec (two C longs, i64 on 64-bit Linux, where
    // this is compiled) to a pointer that is valid for it.
    let rc = unsafe { clock_gettime(clock, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// How the latency section times a write.
#[derive(Clone, Copy, PartialEq)]
enum Clock {
    /// Wall time: what a caller waits, preemptions included.
    Wall,
    /// The writing thread's CPU time: what the write itself costs.
    Cpu,
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Each write's time, replaying the day onto the table, while one reader thread opens a
/// snapshot at a random key, reads `READ` routes and closes it, in a loop.
fn latency(real: &Real, opts: &Opts, with_reader: bool, clock: Clock) {
    let table = Rtm::new();
    load(&table, &real.prefixes);
    let keys: Vec<Key> = real.prefixes.iter().map(|p| data::key_v4(*p)).collect();
    let updates = &real.updates[..real.updates.len().min(opts.day())];
    let stop = AtomicBool::new(false);
    let base = real.prefixes.len() as u64;
    let (mut lat, switches, elapsed, reader) = std::thread::scope(|s| {
        let reader = with_reader.then(|| {
            s.spawn(|| {
                let mut rng = data::Rng::new(11);
                let (mut snaps, mut routes) = (0u64, 0u64);
                let mut close_max = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let k = keys[rng.below(keys.len() as u64) as usize];
                    let mut e = table.enumerate(Criteria::all().start_after(k)).unwrap();
                    routes += e.by_ref().take(READ).count() as u64;
                    let t0 = Instant::now();
                    e.close().unwrap();
                    close_max = close_max.max(t0.elapsed().as_nanos() as u64);
                    snaps += 1;
                }
                (snaps, routes, close_max)
            })
        });
        // Let the reader get going.
        std::thread::sleep(Duration::from_millis(20));
        let mut lat = Vec::with_capacity(updates.len());
        let sw0 = data::preempted();
        let t0 = Instant::now();
        if clock == Clock::Wall {
            // With RTM_BENCH_SLOW_LOG=path, the CLOCK_MONOTONIC interval of each write
            // slower than 50 us goes to that file, a line each (`start end` in ns).
            let log = std::env::var_os("RTM_BENCH_SLOW_LOG");
            let mut slow = Vec::new();
            for (i, u) in updates.iter().enumerate() {
                let t = monotonic_ns().unwrap_or(0);
                apply(&table, u, base + i as u64);
                let e = monotonic_ns().unwrap_or(0);
                lat.push(e - t);
                if log.is_some() && e - t > 50_000 {
                    slow.push((t, e));
                }
            }
            if let Some(path) = log {
                let text: String = slow.iter().map(|(a, b)| format!("{a} {b}\n")).collect();
                std::fs::write(path, text).expect("slow log");
            }
        } else {
            for (i, u) in updates.iter().enumerate() {
                let t = thread_cpu_clock().unwrap_or(0);
                apply(&table, u, base + i as u64);
                lat.push(thread_cpu_clock().unwrap_or(0) - t);
            }
        }
        let elapsed = t0.elapsed();
        let switches = data::preempted() - sw0;
        stop.store(true, Ordering::Relaxed);
        let reader = reader.map(|r| r.join().unwrap());
        (lat, switches, elapsed, reader)
    });
    let worst: Vec<(u64, usize)> = {
        let mut w: Vec<(u64, usize)> = lat.iter().copied().zip(0..).collect();
        w.sort_unstable_by(|a, b| b.cmp(a));
        w.truncate(5);
        w
    };
    lat.sort_unstable();
    println!(
        "latency  {} reader={:<5} writes={:>9}  p50 {:>7} us  p99 {:>7}  p99.9 {:>7}  p99.99 {:>8}  max {:>9}  ({:.2} s, {:.2} M writes/s, writer preempted {}x, load {})",
        if clock == Clock::Wall { "wall" } else { "cpu " },
        with_reader,
        lat.len(),
        us(data::pct(&lat, 0.5)),
        us(data::pct(&lat, 0.99)),
        us(data::pct(&lat, 0.999)),
        us(data::pct(&lat, 0.9999)),
        us(*lat.last().unwrap_or(&0)),
        elapsed.as_secs_f64(),
        lat.len() as f64 / elapsed.as_secs_f64() / 1e6,
        switches,
        loadavg(),
    );
    println!(
        "         slowest writes (us @ update index): {}",
        worst
            .iter()
            .map(|(t, i)| format!("{}@{i}", us(*t)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some((snaps, routes, close_max)) = reader {
        println!(
            "         reader: {snaps} snapshots opened, read ({routes} routes) and closed; slowest close {} us",
            us(close_max)
        );
    }
    println!(
        "         writes over 50 us: {}, over 1 ms: {}",
        lat.iter().filter(|&&t| t > 50_000).count(),
        lat.iter().filter(|&&t| t > 1_000_000).count()
    );
}

/// 32 snapshots opened 20k replaces apart, then closed one by one: each close's time.
fn close(real: &Real, newest_first: bool) {
    const SNAPS: usize = 32;
    const APART: usize = 20_000;
    let table = Rtm::new();
    load(&table, &real.prefixes);
    let mut keys: Vec<Key> = real.prefixes.iter().map(|p| data::key_v4(*p)).collect();
    let mut rng = data::Rng::new(5);
    for i in (1..keys.len()).rev() {
        keys.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut value = 1u64 << 40;
    let mut snaps = Vec::with_capacity(SNAPS);
    for s in 0..SNAPS {
        snaps.push(table.enumerate(Criteria::all()).unwrap());
        for j in 0..APART {
            let k = keys[(s * APART + j) % keys.len()];
            table.add_route(data::route(k, value)).unwrap();
            value += 1;
        }
    }
    if newest_first {
        snaps.reverse();
    }
    let dead_open = table.stats().dead_versions;
    let mut times = Vec::with_capacity(SNAPS);
    let sw0 = data::preempted();
    for e in snaps {
        let t = Instant::now();
        e.close().unwrap();
        times.push(t.elapsed().as_nanos() as u64);
    }
    let switches = data::preempted() - sw0;
    let t = Instant::now();
    table.collect();
    let collect = t.elapsed();
    let dead = table.stats().dead_versions;
    let mut sorted = times.clone();
    sorted.sort_unstable();
    println!(
        "close    {:<12} {SNAPS} closes: median {:>8} us  max {:>9} us  (over 1 ms: {})  dead before {dead_open}, after collect {dead} (collect {:.1?}); preempted {switches}x; load {}",
        if newest_first { "newest first" } else { "oldest first" },
        us(data::pct(&sorted, 0.5)),
        us(*sorted.last().unwrap()),
        times.iter().filter(|&&t| t > 1_000_000).count(),
        collect,
        loadavg(),
    );
    println!(
        "         each close (us): {}",
        times.iter().map(|t| us(*t)).collect::<Vec<_>>().join(" ")
    );
}

/// Insert+delete churn for `dur` on one thread: (steps per second of wall time, steps per
/// CPU second of the churning thread).
fn churn_rate<M: Churn + ?Sized>(map: &M, keys: &[R], dur: Duration) -> (f64, f64) {
    let mut c = Churner::fill(map, keys, WINDOW);
    let cpu0 = thread_cpu_ns();
    let t0 = Instant::now();
    let mut steps = 0u64;
    while t0.elapsed() < dur {
        for _ in 0..64 {
            c.step();
        }
        steps += 64;
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = thread_cpu_ns().zip(cpu0).map(|(b, a)| (b - a) as f64 / 1e9);
    c.drain();
    let ops = 2.0 * steps as f64;
    (ops / wall, cpu.map_or(f64::NAN, |c| ops / c))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Insert+delete at 1M routes (the real table): rtm, SkipMap with the same contents, and
/// rtm while another thread reads a feed of every change.
fn churn(real: &Real, opts: &Opts) {
    let table = Rtm::new();
    load(&table, &real.prefixes);
    let skip: SkipMap<Key, Attrs> = SkipMap::new();
    for (i, p) in real.prefixes.iter().enumerate() {
        Churn::insert(&skip, &data::route(data::key_v4(*p), i as u64));
    }
    let keys = routes_of(
        &data::fresh_v4(&real.prefixes, CHURN_KEYS, 7),
        real.prefixes.len() as u64,
    );
    let (rounds, dur) = if opts.quick {
        (3, Duration::from_millis(500))
    } else {
        (5, Duration::from_millis(1500))
    };
    let mut rows: Vec<(&str, Vec<f64>, Vec<f64>)> = vec![
        ("rtm", vec![], vec![]),
        ("skipmap", vec![], vec![]),
        // feeds:begin
        ("rtm + feed waited", vec![], vec![]),
        ("rtm + feed polled", vec![], vec![]),
        // feeds:end
    ];
    let mut feed_note = String::new();
    for _ in 0..rounds {
        for row in rows.iter_mut() {
            let (wall, cpu) = match row.0 {
                "rtm" => churn_rate(&table, &keys, dur),
                "skipmap" => churn_rate(&skip, &keys, dur),
                // feeds:begin
                name => {
                    let (r, note) = churn_with_feed(&table, &keys, dur, name.ends_with("waited"));
                    feed_note = note;
                    r
                }
                // feeds:end
                #[allow(unreachable_patterns)]
                _ => unreachable!(),
            };
            row.1.push(wall);
            row.2.push(cpu);
        }
    }
    let base = (
        median(&mut rows[0].1.clone()),
        median(&mut rows[0].2.clone()),
    );
    for (name, wall, cpu) in rows.iter_mut() {
        let (w, c) = (median(wall), median(cpu));
        println!(
            "churn    {name:<16} {:>6.2} M ops/s ({:.2}x rtm)   per writer CPU second {:>6.2} M ({:.2}x)",
            w / 1e6,
            w / base.0,
            c / 1e6,
            c / base.1
        );
    }
    println!(
        "         median of {rounds} interleaved rounds of {dur:?}; {} routes + {WINDOW} churned; load {}",
        real.prefixes.len(),
        loadavg()
    );
    if !feed_note.is_empty() {
        println!("         {feed_note}");
    }
}

// feeds:begin
/// As `churn_rate` on rtm, while another thread reads a feed of every change (and
/// subscribes again if it lags): with `next_timeout` (it parks when caught up, and a
/// commit wakes it) if `wait`, else with `try_next`, yielding when caught up.
fn churn_with_feed(table: &Rtm, keys: &[R], dur: Duration, wait: bool) -> ((f64, f64), String) {
    let stop = AtomicBool::new(false);
    let read = AtomicU64::new(0);
    let lagged = AtomicU64::new(0);
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            let mut feed = table.feed(Criteria::all()).unwrap();
            while !stop.load(Ordering::Relaxed) {
                let next = if wait {
                    feed.next_timeout(Duration::from_millis(1))
                } else {
                    feed.try_next()
                };
                match next {
                    Ok(Some(c)) => {
                        black_box(c);
                        read.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(None) => {
                        if !wait {
                            std::thread::yield_now();
                        }
                    }
                    Err(_) => {
                        lagged.fetch_add(1, Ordering::Relaxed);
                        feed = table.feed(Criteria::all()).unwrap();
                    }
                }
            }
        });
        let r = churn_rate(table, keys, dur);
        stop.store(true, Ordering::Relaxed);
        r
    });
    let note = format!(
        "feed reader (last round, {}): {} changes read, lagged {}x",
        if wait { "waited" } else { "polled" },
        read.load(Ordering::Relaxed),
        lagged.load(Ordering::Relaxed)
    );
    (r, note)
}
// feeds:end

/// A full dump after the day: rtm's enumeration and SkipMap's iteration over the same
/// contents, before and after `collect()`.
fn dump(real: &Real, opts: &Opts) {
    let table = Rtm::new();
    load(&table, &real.prefixes);
    let skip: SkipMap<Key, Attrs> = SkipMap::new();
    for (i, p) in real.prefixes.iter().enumerate() {
        Churn::insert(&skip, &data::route(data::key_v4(*p), i as u64));
    }
    let updates = &real.updates[..real.updates.len().min(opts.day())];
    let base = real.prefixes.len() as u64;
    for (i, u) in updates.iter().enumerate() {
        apply(&table, u, base + i as u64);
        match u {
            Update::Announce(p) => {
                let r = data::route(data::key_v4(*p), base + i as u64);
                skip.insert(r.key, Attrs::of(&r));
            }
            Update::Withdraw(p) => {
                skip.remove(&data::key_v4(*p));
            }
        }
    }
    let rtm_dump = |t: &Rtm| {
        t.enumerate(Criteria::all())
            .unwrap()
            .fold((0usize, 0u64), |a, r| {
                (a.0 + 1, a.1.wrapping_add(r.value ^ r.metric as u64))
            })
    };
    let skip_dump = |m: &SkipMap<Key, Attrs>| {
        m.iter().fold((0usize, 0u64), |a, e| {
            (
                a.0 + 1,
                a.1.wrapping_add(e.value().value ^ e.value().metric as u64),
            )
        })
    };
    assert_eq!(rtm_dump(&table), skip_dump(&skip), "same contents");
    let n = skip.len();
    let rounds = if opts.quick { 3 } else { 7 };
    for collected in [false, true] {
        if collected {
            table.collect();
        }
        let (mut r, mut s) = (vec![], vec![]);
        for _ in 0..rounds {
            let t = Instant::now();
            black_box(rtm_dump(&table));
            r.push(n as f64 / t.elapsed().as_secs_f64());
            let t = Instant::now();
            black_box(skip_dump(&skip));
            s.push(n as f64 / t.elapsed().as_secs_f64());
        }
        let (r, s) = (median(&mut r), median(&mut s));
        println!(
            "dump     {:<22} {n} routes: rtm {:>6.1} M routes/s  skipmap {:>6.1} M routes/s  ratio {:.2}x  (dead versions {}; median of {rounds}; load {})",
            if collected { "after collect()" } else { "right after the day" },
            r / 1e6,
            s / 1e6,
            r / s,
            table.stats().dead_versions,
            loadavg()
        );
    }
}

/// Dead versions kept while a snapshot stays open over the day, and after it closes;
/// then the same with a feed that never reads.
fn memory(real: &Real, opts: &Opts) {
    let updates = &real.updates[..real.updates.len().min(opts.day())];
    let base = real.prefixes.len() as u64;
    let replay = |table: &Rtm| {
        let mut peak = 0usize;
        for (i, u) in updates.iter().enumerate() {
            apply(table, u, base + i as u64);
            if i % 4096 == 0 {
                peak = peak.max(table.stats().dead_versions);
            }
        }
        peak
    };
    {
        let table = Rtm::new();
        load(&table, &real.prefixes);
        let snap = table.enumerate(Criteria::all()).unwrap();
        let peak = replay(&table);
        table.collect();
        let open = table.stats().dead_versions;
        snap.close().unwrap();
        table.collect();
        println!(
            "memory   snapshot open over {} updates: peak dead {peak}, after collect (open) {open}; after close + collect {}",
            updates.len(),
            table.stats().dead_versions
        );
        let table2 = Rtm::new();
        load(&table2, &real.prefixes);
        let peak = replay(&table2);
        table2.collect();
        println!(
            "memory   nothing open over {} updates: peak dead {peak}; after collect {}",
            updates.len(),
            table2.stats().dead_versions
        );
    }
    // feeds:begin
    {
        let table = Rtm::new();
        load(&table, &real.prefixes);
        let mut stalled = table.feed(Criteria::all()).unwrap();
        let peak = replay(&table);
        table.collect();
        let open = table.stats().dead_versions;
        let lagged = stalled.try_next();
        drop(stalled);
        table.collect();
        println!(
            "memory   feed never read over {} updates (journal {}): peak dead {peak}, after collect (open) {open}, its next read {:?}; after drop + collect {}",
            updates.len(),
            table.journal_capacity(),
            lagged.map(|c| c.map(|c| c.version)),
            table.stats().dead_versions
        );
    }
    // feeds:end
}

/// The day replayed as single writes and as commits of 64 updates, on two copies of the
/// real table, alternating rounds; the rates and their ratio.
fn commits(real: &Real, opts: &Opts) {
    const BATCH: usize = 64;
    let n = real.updates.len().min(opts.day()).min(300_000);
    let updates = &real.updates[..n];
    let (single, batched) = (Rtm::new(), Rtm::new());
    load(&single, &real.prefixes);
    load(&batched, &real.prefixes);
    let mut rates = (Vec::new(), Vec::new());
    let rounds = if opts.quick { 3 } else { 7 };
    for round in 0..rounds {
        let value = 1 + round as u64;
        let t0 = Instant::now();
        for u in updates {
            apply(&single, u, value);
        }
        rates.0.push(n as f64 / t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        for chunk in updates.chunks(BATCH) {
            let mut b = rtm::Batch::new();
            for u in chunk {
                match u {
                    Update::Announce(p) => {
                        b.add_route(data::route(data::key_v4(*p), value));
                    }
                    Update::Withdraw(p) => {
                        b.withdraw_route(data::key_v4(*p));
                    }
                }
            }
            batched.commit(b).unwrap();
        }
        rates.1.push(n as f64 / t0.elapsed().as_secs_f64());
    }
    assert_eq!(single.route_count(), batched.route_count());
    let (s, b) = (median(&mut rates.0), median(&mut rates.1));
    println!(
        "\n## commits: the day's first {n} updates, {rounds} rounds, medians (load {})",
        loadavg()
    );
    println!("| replay | updates/s | ratio |");
    println!("| --- | --- | --- |");
    println!("| single writes (add_route / delete_route) | {s:.0} | 1.00 |");
    println!(
        "| commits of {BATCH} updates (Batch) | {b:.0} | {:.2} |",
        b / s
    );
}

/// Percentiles of `lat` (ns, sorted) as one table row's cells.
fn lat_row(lat: &[u64]) -> String {
    format!(
        "{} | {} | {} | {} | {}",
        us(data::pct(lat, 0.5)),
        us(data::pct(lat, 0.99)),
        us(data::pct(lat, 0.9999)),
        us(*lat.last().unwrap_or(&0)),
        lat.iter().filter(|&&t| t > 50_000).count(),
    )
}

/// One commit that replaces every route of the real table while a second writer replays
/// the day as single writes on the same table: the second writer's write times beside the
/// same replay alone (same table, same process), and how long the big commit took.
fn big_commit(real: &Real, opts: &Opts) {
    let updates = &real.updates[..real.updates.len().min(opts.day())];
    // Each write timed twice: wall (what the caller waits) and the thread's CPU time (the
    // work it did; a write preempted by the other thread on two shared cores shows in the
    // first only).
    let replay = |table: &Rtm, value: u64| {
        let mut wall = Vec::with_capacity(updates.len());
        let mut cpu = Vec::with_capacity(updates.len());
        for u in updates {
            let (t, c) = (monotonic_ns().unwrap_or(0), thread_cpu_clock().unwrap_or(0));
            apply(table, u, value);
            cpu.push(thread_cpu_clock().unwrap_or(0) - c);
            wall.push(monotonic_ns().unwrap_or(0) - t);
        }
        wall.sort_unstable();
        cpu.sort_unstable();
        (wall, cpu)
    };
    let batch_of = |value: u64| {
        let mut b = rtm::Batch::new();
        for p in &real.prefixes {
            b.add_route(data::route(data::key_v4(*p), value));
        }
        b
    };
    let table = Rtm::new();
    load(&table, &real.prefixes);
    let alone = replay(&table, 1);
    // The big commit alone, for its own time.
    let b = batch_of(2);
    let t0 = Instant::now();
    table.commit(b).unwrap();
    let commit_alone = t0.elapsed();
    let b = batch_of(3);
    let go = AtomicBool::new(false);
    let (beside, commit_beside, replay_time, finished_first) = std::thread::scope(|s| {
        let committer = s.spawn(|| {
            while !go.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            let t0 = Instant::now();
            let v = table.commit(b).unwrap();
            (t0.elapsed(), v)
        });
        go.store(true, Ordering::Release);
        let t0 = Instant::now();
        let lat = replay(&table, 4);
        let replay_time = t0.elapsed();
        let finished_first = committer.is_finished();
        let (commit_time, _) = committer.join().unwrap();
        (lat, commit_time, replay_time, finished_first)
    });
    println!(
        "\n## big commit: {} routes replaced in one commit while a writer replays {} updates of the day (load {})",
        real.prefixes.len(),
        updates.len(),
        loadavg()
    );
    println!("| replaying writer | p50 us | p99 us | p99.99 us | max us | writes > 50 us |");
    println!("| --- | --- | --- | --- | --- | --- |");
    println!("| alone, wall | {} |", lat_row(&alone.0));
    println!("| beside the big commit, wall | {} |", lat_row(&beside.0));
    println!("| alone, thread CPU | {} |", lat_row(&alone.1));
    println!(
        "| beside the big commit, thread CPU | {} |",
        lat_row(&beside.1)
    );
    println!(
        "big commit: {:.0} ms alone, {:.0} ms beside the writer (whose replay took {:.0} ms; the commit {} before it ended)",
        commit_alone.as_secs_f64() * 1e3,
        commit_beside.as_secs_f64() * 1e3,
        replay_time.as_secs_f64() * 1e3,
        if finished_first { "finished" } else { "had not finished" },
    );
}

/// Commits of 10,000 routes (new next hops for a contiguous run of the real table) while a
/// follower thread keeps a Fib in sync: the time from `commit` returning to `Fib::version`
/// reaching its version, and the follower's CPU time per change.
fn commit_to_fib(real: &Real, opts: &Opts) {
    const N: usize = 10_000;
    let rounds = if opts.quick { 20 } else { 100 };
    let table = Rtm::new();
    load(&table, &real.prefixes);
    let (fib, mut follower) = rtm::Fib::follow(&table, |r| r.value as u32).unwrap();
    let stop = AtomicBool::new(false);
    let mut lag = Vec::with_capacity(rounds);
    let (changes, cpu) = std::thread::scope(|s| {
        let f = s.spawn(|| {
            let (mut changes, c0) = (0usize, thread_cpu_clock().unwrap_or(0));
            while !stop.load(Ordering::Relaxed) {
                changes += follower.sync_timeout(Duration::from_millis(1)).unwrap();
            }
            (changes, thread_cpu_clock().unwrap_or(0) - c0)
        });
        let mut rng = data::Rng::new(5);
        for round in 0..rounds {
            let start = rng.below((real.prefixes.len() - N) as u64) as usize;
            let mut b = rtm::Batch::new();
            for p in &real.prefixes[start..start + N] {
                b.add_route(data::route(data::key_v4(*p), 1_000 + round as u64));
            }
            let v = table.commit(b).unwrap();
            let t0 = Instant::now();
            while fib.version() < v {
                std::hint::spin_loop();
            }
            lag.push(t0.elapsed().as_nanos() as u64);
            // Let the follower nap, as between real commits.
            std::thread::sleep(Duration::from_millis(2));
        }
        stop.store(true, Ordering::Relaxed);
        f.join().unwrap()
    });
    lag.sort_unstable();
    println!(
        "\n## commit to Fib: {rounds} commits of {N} routes, follower on its own thread (load {})",
        loadavg()
    );
    println!("| commit returned -> Fib::version reaches it | p50 us | p99 us | max us |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| {N}-route commit | {} | {} | {} |",
        us(data::pct(&lag, 0.5)),
        us(data::pct(&lag, 0.99)),
        us(*lag.last().unwrap_or(&0))
    );
    println!(
        "follower: {changes} changes applied, {:.0} ns of its CPU per change",
        cpu as f64 / changes.max(1) as f64
    );
}

fn main() {
    let opts = Opts::parse();
    let t0 = Instant::now();
    let real = Real {
        prefixes: data::ris_v4(),
        updates: data::ris_v4_updates(),
    };
    println!(
        "real data: {} IPv4 prefixes (RIPE RIS AS3333, 2026-05-11), {} updates of the next 24 h, {} used here; loaded in {:.1?}. Source: RIPE NCC RIS",
        real.prefixes.len(),
        real.updates.len(),
        real.updates.len().min(opts.day()),
        t0.elapsed()
    );
    for (name, reader, clock) in [
        ("latency-wall-reader", true, Clock::Wall),
        ("latency-wall-alone", false, Clock::Wall),
        ("latency-cpu-reader", true, Clock::Cpu),
        ("latency-cpu-alone", false, Clock::Cpu),
    ] {
        if opts.wants(name) {
            latency(&real, &opts, reader, clock);
        }
    }
    if opts.wants("close") {
        close(&real, false);
        close(&real, true);
    }
    if opts.wants("churn") {
        churn(&real, &opts);
    }
    if opts.wants("dump") {
        dump(&real, &opts);
    }
    if opts.wants("memory") {
        memory(&real, &opts);
    }
    if opts.wants("commits") {
        commits(&real, &opts);
    }
    if opts.wants("big-commit") {
        big_commit(&real, &opts);
    }
    if opts.wants("commit-to-fib") {
        commit_to_fib(&real, &opts);
    }
}

//! A forwarding engine's routing table under load.
//!
//! Builds a BGP-like IPv4 table (1M prefixes by default), then runs lookup threads and a
//! churn writer while a dump reads the whole table through one enumeration, as a BGP
//! speaker does for a peer that just came up. It checks that the dump is exactly the table
//! as of the dump's snapshot, and prints lookups/s, dump routes/s, routes, and memory.
//!
//! ```text
//! cargo run --release --example forwarding_engine                  # 1M routes
//! cargo run --release --example forwarding_engine -- --routes 100000 --lookup-threads 1
//! ```

#[path = "../benches/data/mod.rs"]
mod data;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rtm::{Criteria, Ipv4Net, RouteKey, RouteTable};

struct Args {
    routes: usize,
    lookup_threads: usize,
    seconds: f64,
}

fn parse_args() -> Args {
    let mut a = Args {
        routes: 1_000_000,
        lookup_threads: 2,
        seconds: 2.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value =
            |name: &str| -> String { it.next().unwrap_or_else(|| panic!("{name} needs a value")) };
        match flag.as_str() {
            "--routes" => a.routes = value("--routes").parse().expect("--routes N"),
            "--lookup-threads" => {
                a.lookup_threads = value("--lookup-threads")
                    .parse()
                    .expect("--lookup-threads N")
            }
            "--seconds" => a.seconds = value("--seconds").parse().expect("--seconds S"),
            "-h" | "--help" => {
                println!(
                    "usage: forwarding_engine [--routes N] [--lookup-threads N] [--seconds S]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown flag {other} (try --help)"),
        }
    }
    a.routes = a.routes.max(1);
    a
}

/// Resident set size of this process, from /proc (Linux); 0 elsewhere.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// One change the churn writer made: the pool index and the value after it (None: deleted).
type Change = (usize, Option<u64>);

fn main() {
    let args = parse_args();
    let rss0 = rss_bytes();
    // The announced table, plus a pool of prefixes the churn writer announces and withdraws.
    let extra = (args.routes / 10).max(10);
    let pool: Vec<Ipv4Net> = data::ipv4_prefixes(args.routes + extra, 1);
    let keys: Vec<RouteKey<Ipv4Net>> = pool.iter().map(|p| data::key_v4(*p)).collect();
    let table = RouteTable::<Ipv4Net, u64>::new();

    let bar = ProgressBar::new(args.routes as u64).with_style(
        ProgressStyle::with_template("loading {bar:40} {pos}/{len} prefixes {per_sec}")
            .expect("template"),
    );
    let t0 = Instant::now();
    for (i, k) in keys.iter().take(args.routes).enumerate() {
        table
            .add_route(data::route(*k, i as u64))
            .expect("canonical prefix");
        if i % 4096 == 0 {
            bar.set_position(i as u64);
        }
    }
    bar.finish_and_clear();
    let load = t0.elapsed();
    println!(
        "loaded {} routes in {:.2?} ({:.2} M inserts/s), {} networks",
        table.route_count(),
        load,
        args.routes as f64 / load.as_secs_f64() / 1e6,
        table.network_count()
    );
    let rss_loaded = rss_bytes();

    // What the churn writer starts from, by pool index.
    let initial: Vec<Option<u64>> = (0..pool.len())
        .map(|i| (i < args.routes).then_some(i as u64))
        .collect();
    let lookups_keys = data::announced_v4(&pool[..args.routes], 1 << 20, 2);

    let stop = AtomicBool::new(false);
    let started = AtomicU64::new(0); // churn ops begun
    let finished = AtomicU64::new(0); // churn ops completed
    let lookups = AtomicU64::new(0);
    let hits = AtomicU64::new(0);
    let go = Barrier::new(args.lookup_threads + 2);

    let (dump, window, changes, churn_rate, dump_time, snapshot_stats) = thread::scope(|s| {
        for t in 0..args.lookup_threads {
            let (table, stop, lookups, hits, go, keys) =
                (&table, &stop, &lookups, &hits, &go, &lookups_keys);
            s.spawn(move || {
                go.wait();
                let (mut n, mut h) = (0u64, 0u64);
                let mut i = t * 7919;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..1024 {
                        i = (i + 1) & (keys.len() - 1);
                        h += table.lookup(keys[i]).is_some() as u64;
                    }
                    n += 1024;
                }
                lookups.fetch_add(n, Ordering::Relaxed);
                hits.fetch_add(h, Ordering::Relaxed);
            });
        }
        let writer = {
            let (table, stop, started, finished, go, keys, initial) =
                (&table, &stop, &started, &finished, &go, &keys, &initial);
            s.spawn(move || {
                go.wait();
                let mut state = initial.clone();
                let mut rng = data::Rng::new(3);
                let mut log: Vec<Change> = Vec::new();
                let t0 = Instant::now();
                let mut value = state.len() as u64;
                while !stop.load(Ordering::Relaxed) {
                    let i = rng.below(state.len() as u64) as usize;
                    started.fetch_add(1, Ordering::SeqCst);
                    let after = match state[i] {
                        Some(_) if rng.below(2) == 0 => {
                            table.delete_route(&keys[i]).expect("present");
                            None
                        }
                        _ => {
                            value += 1;
                            table
                                .add_route(data::route(keys[i], value))
                                .expect("canonical");
                            Some(value)
                        }
                    };
                    finished.fetch_add(1, Ordering::SeqCst);
                    state[i] = after;
                    log.push((i, after));
                }
                let rate = log.len() as f64 / t0.elapsed().as_secs_f64();
                (log, rate)
            })
        };
        go.wait();
        let phase = Instant::now();
        // Let the churn get going, then dump while it runs.
        thread::sleep(Duration::from_millis(200));
        let before = finished.load(Ordering::SeqCst);
        let mut e = table
            .enumerate(Criteria::all().include_disabled())
            .expect("a free slot");
        let after = started.load(Ordering::SeqCst);
        let t0 = Instant::now();
        let dump: Vec<(RouteKey<Ipv4Net>, u64)> = e.by_ref().map(|r| (r.key, r.value)).collect();
        let dump_time = t0.elapsed();
        // still open: what the reclaimer keeps for this snapshot
        table.collect();
        let snapshot_stats = table.stats();
        drop(e);
        let rest = Duration::from_secs_f64(args.seconds).saturating_sub(phase.elapsed());
        thread::sleep(rest);
        stop.store(true, Ordering::Relaxed);
        let (log, rate) = writer.join().expect("writer");
        (
            dump,
            (before as usize, after as usize),
            log,
            rate,
            dump_time,
            snapshot_stats,
        )
    });

    // The dump must be the table after exactly j churn changes, for some j the dump could
    // have seen: at least the changes finished before it opened, at most those begun.
    let index: HashMap<RouteKey<Ipv4Net>, usize> =
        keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    let mut dumped: Vec<Option<u64>> = vec![None; pool.len()];
    let mut ordered = true;
    for (n, (k, v)) in dump.iter().enumerate() {
        dumped[index[k]] = Some(*v);
        ordered &= n == 0 || dump[n - 1].0 < *k;
    }
    let mut state = initial;
    let mut mismatched = state.iter().zip(&dumped).filter(|(a, b)| a != b).count();
    let mut matches = Vec::new();
    for (j, &(i, after)) in changes.iter().enumerate().take(window.1) {
        if j >= window.0 && mismatched == 0 {
            matches.push(j);
        }
        mismatched -= (state[i] != dumped[i]) as usize;
        state[i] = after;
        mismatched += (state[i] != dumped[i]) as usize;
    }
    if window.1 >= window.0 && mismatched == 0 && changes.len() >= window.1 {
        matches.push(window.1);
    }
    let consistent = ordered && !matches.is_empty();

    let secs = args.seconds.max(1e-9);
    let lookups = lookups.load(Ordering::Relaxed);
    println!(
        "lookups: {:.2} M/s over {} threads ({:.1}% hits) while churning",
        lookups as f64 / secs / 1e6,
        args.lookup_threads,
        100.0 * hits.load(Ordering::Relaxed) as f64 / lookups.max(1) as f64
    );
    println!("churn writer: {:.2} M changes/s", churn_rate / 1e6);
    println!(
        "dump: {} routes in {:.2?} = {:.2} M routes/s, while {} changes ran",
        dump.len(),
        dump_time,
        dump.len() as f64 / dump_time.as_secs_f64() / 1e6,
        changes.len()
    );
    println!(
        "dump is the table as of its snapshot: {} (after change {} of the window {}..={})",
        if consistent { "yes" } else { "NO" },
        matches.first().map_or("-".to_string(), |j| j.to_string()),
        window.0,
        window.1
    );
    println!(
        "while the dump was open: {} dead versions retained (replaced or deleted values the \
         snapshot sees, and any a sweep running in the writer has not reached yet)",
        snapshot_stats.dead_versions
    );
    table.collect();
    let s = table.stats();
    println!(
        "routes: {}, dead versions after close + collect: {}",
        s.live_routes, s.dead_versions
    );
    println!(
        "memory: RSS {:.1} MiB (table loaded: +{:.1} MiB, {:.0} bytes/route incl. the example's own data)",
        rss_bytes() as f64 / (1 << 20) as f64,
        rss_loaded.saturating_sub(rss0) as f64 / (1 << 20) as f64,
        rss_loaded.saturating_sub(rss0) as f64 / args.routes as f64
    );
    if !consistent {
        eprintln!("the dump did not match any state of the table it could have seen");
        std::process::exit(1);
    }
}

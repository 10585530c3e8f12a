//! A forwarding engine's routing table on a real BGP day.
//!
//! Loads the full IPv4 table one RIPE RIS peer held on 2026-05-11 (1,042,325 prefixes) and
//! replays every update that peer sent in the next 24 hours on a writer thread (`A prefix`
//! adds or replaces the route, `W prefix` deletes it), flat out. Meanwhile lookup threads
//! run longest-prefix matches in batches on a `Fib` (the forwarding table), kept in step
//! with the table's best routes by the writer itself (`Fib::follow_helped`: each write
//! applies its own change to the Fib before it returns, and a follower thread picks up
//! what a writer leaves; `--no-help` for a plain follower thread alone), and a dumper does what a
//! BGP speaker does for a peer that
//! just came up: it subscribes (a snapshot enumeration and a feed of every change after
//! it), reads the dump into its own copy, then keeps the copy current from the feed. When
//! the day is over it checks that the copy equals a fresh enumeration at the feed's
//! version, and prints what it measured.
//!
//! With `--batch N` the writer commits the day as batches of N consecutive updates
//! (`Batch::add_route` for an announce, `Batch::withdraw_route` for a withdraw; an announce
//! and a withdraw of one prefix in the same batch apply in order), one version each.
//!
//! Then a graceful restart (unless `--no-graceful-restart`): the peer's session drops,
//! the engine notes the table's version `v0` and keeps forwarding on the stale routes; the
//! peer comes back and announces 95% of its routes again (each `add_route` rewrites its
//! route, an identical one too), and one `delete_routes` of the peer's routes unchanged
//! since `v0` sweeps the rest in one commit. Lookup threads on the Fib (kept in step by its
//! follower) and on the table count the "no route" answers for addresses inside the
//! re-announced networks all along: there must be none (the demo exits with status 1
//! otherwise).
//!
//! ```text
//! cargo run --release --example forwarding_engine                      # the real day
//! cargo run --release --example forwarding_engine -- --updates 200000  # its first 200k updates
//! cargo run --release --example forwarding_engine -- --routes 100000   # synthetic table + churn
//! cargo run --release --example forwarding_engine -- --batch 64        # the day as commits of 64
//! cargo run --release --example forwarding_engine -- --follower-first  # the follower at SCHED_FIFO
//! cargo run --release --example forwarding_engine -- --no-help         # the follower thread alone
//! cargo run --release --example forwarding_engine -- --no-graceful-restart  # the replay only
//! ```
//!
//! The real data: RIPE NCC Routing Information Service (see benches/data/README.md).
//! Source: RIPE NCC RIS.

#[path = "../benches/data/mod.rs"]
mod data;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use data::Update;
use indicatif::{ProgressBar, ProgressStyle};
use rtm::{
    Batch, Criteria, Error, Fib, FibFollower, HelpedFibFollower, Ipv4Net, ProtocolId, Route,
    RouteKey, RouteTable, Version,
};

type Table = RouteTable<Ipv4Net, u64>;
type Key = RouteKey<Ipv4Net>;

/// The Fib's follower: helped by the writers (the default) or on its own thread alone.
enum Follower<'t> {
    Plain(Box<FibFollower<'t, Ipv4Net, u64>>),
    Helped(HelpedFibFollower<Ipv4Net, u64>),
}

impl Follower<'_> {
    fn sync(&mut self) -> Result<usize, Error> {
        match self {
            Follower::Plain(f) => f.sync(),
            Follower::Helped(f) => f.sync(),
        }
    }

    fn sync_timeout(&mut self, timeout: Duration) -> Result<usize, Error> {
        match self {
            Follower::Plain(f) => f.sync_timeout(timeout),
            Follower::Helped(f) => f.sync_timeout(timeout),
        }
    }

    /// Changes the writers applied themselves.
    fn applied_by_writers(&self) -> u64 {
        match self {
            Follower::Plain(_) => 0,
            Follower::Helped(f) => f.applied_by_writers(),
        }
    }
}

const USAGE: &str =
    "usage: forwarding_engine [--routes N] [--updates N] [--batch N] [--lookup-threads N]
                         [--follower-first] [--no-help] [--no-graceful-restart]
  (no --routes)    the real RIPE RIS IPv4 table and its real BGP day
  --routes N       a synthetic BGP-like table of N routes and synthetic churn instead
  --updates N      replay at most N updates (default: the whole day; synthetic: 1,000,000)
  --batch N        replay the updates as commits of N consecutive updates (default: one
                   write per update)
  --lookup-threads N   threads running longest-prefix matches (default 1)
  --follower-first the Fib's follower thread at SCHED_FIFO priority 1 (Linux, CAP_SYS_NICE):
                   ahead of every ordinary thread when changes wake it
  --no-help        writers do not apply their own changes to the Fib (`Fib::follow`):
                   the follower thread alone keeps it in step
  --no-graceful-restart  skip the graceful restart after the replay (the peer announces 95%
                   of its routes again, one commit sweeps the rest)";

struct Args {
    routes: Option<usize>,
    updates: Option<usize>,
    batch: Option<usize>,
    lookup_threads: usize,
    follower_first: bool,
    help: bool,
    graceful_restart: bool,
}

/// Parses the command line; a bad one prints the usage and exits with status 2.
fn parse_args() -> Args {
    fn bad(msg: &str) -> ! {
        eprintln!("forwarding_engine: {msg}\n{USAGE}");
        std::process::exit(2);
    }
    let mut a = Args {
        routes: None,
        updates: None,
        batch: None,
        lookup_threads: 1,
        follower_first: false,
        help: true,
        graceful_restart: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut number = || -> usize {
            let v = it
                .next()
                .unwrap_or_else(|| bad(&format!("{flag} needs a value")));
            v.replace('_', "")
                .parse()
                .unwrap_or_else(|_| bad(&format!("{flag} {v}: not a number")))
        };
        match flag.as_str() {
            "--routes" => a.routes = Some(number().max(1)),
            "--updates" => a.updates = Some(number()),
            "--lookup-threads" => a.lookup_threads = number(),
            "--batch" => a.batch = Some(number().max(1)),
            "--follower-first" => a.follower_first = true,
            "--no-help" => a.help = false,
            "--no-graceful-restart" => a.graceful_restart = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => bad(&format!("unknown flag {flag}")),
        }
    }
    a
}

/// The table to load and the updates to replay.
struct Workload {
    prefixes: Vec<Ipv4Net>,
    updates: Vec<Update<Ipv4Net>>,
}

/// A synthetic BGP-like table of `n` prefixes, and `updates` changes over it and a pool
/// of 10% more prefixes: announce (add or replace) or withdraw, at random.
fn synthetic(n: usize, updates: usize) -> Workload {
    let pool = data::ipv4_prefixes(n + (n / 10).max(10), 1);
    let mut present: Vec<bool> = (0..pool.len()).map(|i| i < n).collect();
    let mut rng = data::Rng::new(3);
    let updates = (0..updates)
        .map(|_| {
            let i = rng.below(pool.len() as u64) as usize;
            if present[i] && rng.below(2) == 0 {
                present[i] = false;
                Update::Withdraw(pool[i])
            } else {
                present[i] = true;
                Update::Announce(pool[i])
            }
        })
        .collect();
    Workload {
        prefixes: pool[..n].to_vec(),
        updates,
    }
}

/// Resident set size of this process, from /proc (Linux); 0 elsewhere.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0.0, |kb| kb as f64 / 1024.0)
}

fn us(ns: u64) -> String {
    if ns >= 1_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.1} us", ns as f64 / 1e3)
    }
}

/// What the writer measured.
struct Replay {
    /// Per write, or per commit of a batch.
    latencies: Vec<u64>,
    updates: usize,
    elapsed: Duration,
    absent_withdrawals: usize,
    preempted: u64,
    /// The writer thread's CPU time over the replay, in seconds.
    cpu: f64,
}

/// What the dumper measured.
struct Dumper {
    dumped: usize,
    dump_time: Duration,
    /// Changes committed while the dump ran, applied from the feed afterwards.
    during_dump: usize,
    /// Changes applied until the feed first had nothing more (those of the dump, and
    /// those committed while catching up), and how long that took.
    caught_up: usize,
    catch_up: Duration,
    /// Changes followed after catching up, and their lag (versions, ns).
    live: usize,
    lag_versions: Vec<u64>,
    lag_ns: Vec<u64>,
    resubscribed: usize,
    dead_while_open: usize,
    copy: BTreeMap<Key, Route<Ipv4Net, u64>>,
    version: Version,
}

/// A progress bar on stderr (drawn only on a terminal) for one of the long steps.
fn bar(len: usize, what: &str) -> ProgressBar {
    let style = ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {elapsed}")
        .expect("a valid template")
        .progress_chars("=> ");
    ProgressBar::new(len as u64)
        .with_style(style)
        .with_message(what.to_string())
}

/// A spinner for a long step whose length is not known in advance.
fn spinner(what: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner().with_message(what.to_string());
    pb.enable_steady_tick(Duration::from_millis(100));
    pb
}

fn main() {
    let args = parse_args();
    let real = args.routes.is_none();
    let reading = spinner("reading the data");
    let w = match args.routes {
        Some(n) => synthetic(n, args.updates.unwrap_or(1_000_000)),
        None => {
            let mut updates = data::ris_v4_updates();
            updates.truncate(args.updates.unwrap_or(usize::MAX));
            Workload {
                prefixes: data::ris_v4(),
                updates,
            }
        }
    };
    reading.finish_and_clear();
    if real {
        println!(
            "Source: RIPE NCC RIS. The full IPv4 table of peer AS3333 at 2026-05-11 00:00 UTC, \
             and {} of its BGP updates of the next 24 hours.",
            w.updates.len()
        );
    } else {
        println!(
            "A synthetic BGP-like table and {} synthetic updates.",
            w.updates.len()
        );
    }

    // A journal of 2^20 commits: a feed may fall that far behind (a couple of seconds of
    // this writer) before it lags and has to subscribe again.
    let table: Arc<Table> = Arc::new(RouteTable::builder().journal_capacity(1 << 20).build());
    let loading = bar(w.prefixes.len(), "loading");
    let t0 = Instant::now();
    for (i, p) in w.prefixes.iter().enumerate() {
        table
            .add_route(data::route(data::key_v4(*p), i as u64))
            .expect("canonical prefix");
        if i % 65_536 == 0 {
            loading.set_position(i as u64);
        }
    }
    let load = t0.elapsed();
    loading.finish_and_clear();
    println!(
        "table: {} routes, {} networks, loaded in {:.2?} ({:.2} M inserts/s)",
        table.route_count(),
        table.network_count(),
        load,
        w.prefixes.len() as f64 / load.as_secs_f64() / 1e6
    );

    let lookup_addrs = data::announced_v4(&w.prefixes, 1 << 20, 2);
    // The forwarding table: each network's best route as a next-hop id (the interface).
    let next_hop = |r: &Route<Ipv4Net, u64>| r.key.interface.0;
    let building = spinner("building the Fib");
    let t0 = Instant::now();
    let (fib, mut follower) = if args.help {
        let (fib, f) = Fib::follow_helped(Arc::clone(&table), next_hop).expect("two free slots");
        (fib, Follower::Helped(f))
    } else {
        let (fib, f) = Fib::follow(&*table, next_hop).expect("two free slots");
        (fib, Follower::Plain(Box::new(f)))
    };
    building.finish_and_clear();
    println!(
        "fib: {} networks, built in {:.2?}, {:.1} bytes per prefix",
        fib.len(),
        t0.elapsed(),
        fib.memory_bytes() as f64 / fib.len().max(1) as f64
    );
    let v0 = table.version().0;
    let times = Times::new(w.updates.len() + w.updates.len() / 8, v0, Instant::now());
    let progress = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let lookups = AtomicU64::new(0);
    let hits = AtomicU64::new(0);
    let start = times.start;

    let (replay, looked, dumper, fib_lag) = thread::scope(|s| {
        // Lookup threads; the first also samples how far the Fib is behind the table
        // (versions, and time since the oldest commit it has not applied).
        let mut samplers = Vec::new();
        for t in 0..args.lookup_threads {
            let (fib, table, done, lookups, hits, addrs, times) =
                (&fib, &table, &done, &lookups, &hits, &lookup_addrs, &times);
            samplers.push(s.spawn(move || {
                let (mut n, mut h) = (0u64, 0u64);
                let (mut versions, mut ns) = (Vec::new(), Vec::new());
                let mut out = [None; 256];
                let mut i = (t * 7919) & !255;
                while !done.load(Ordering::Relaxed) {
                    for _ in 0..16 {
                        i = (i + 256) & (addrs.len() - 1);
                        fib.lookup_batch(&addrs[i..i + 256], &mut out);
                        h += out.iter().filter(|o| o.is_some()).count() as u64;
                    }
                    n += 16 * 256;
                    if t == 0 {
                        // The time first: a sampler descheduled after reading the
                        // versions must not count its own wait as the Fib's.
                        let now = times.now();
                        let (fv, tv) = (fib.version().0, table.version().0);
                        versions.push(tv.saturating_sub(fv));
                        // Since the start of the write of the oldest commit not applied.
                        let at = times.began(fv + 1);
                        ns.push(if tv > fv { now.saturating_sub(at) } else { 0 });
                    }
                }
                lookups.fetch_add(n, Ordering::Relaxed);
                hits.fetch_add(h, Ordering::Relaxed);
                (versions, ns)
            }));
        }
        // The follower applies the table's best-route changes to the Fib as they come.
        let follower_thread = {
            let (done, follower, follower_first) = (&done, &mut follower, args.follower_first);
            s.spawn(move || {
                // Asked for: put this thread first in line for a core when changes wake
                // it (where the system allows; else it runs as any thread).
                let first = if follower_first {
                    data::first_in_line()
                } else {
                    Err("not asked for".into())
                };
                let (p0, cpu0) = (data::preempted(), data::thread_cpu_secs());
                let (mut syncs, mut changes) = (0u64, 0usize);
                while !done.load(Ordering::Relaxed) {
                    changes += follower
                        .sync_timeout(Duration::from_millis(1))
                        .expect("the follower keeps its slots");
                    syncs += 1;
                }
                let cpu = data::thread_cpu_secs() - cpu0;
                (syncs, changes, (data::preempted() - p0, cpu), first)
            })
        };
        let dumper = s.spawn(|| dump_and_follow(&table, &w, &times, &progress, &done));
        // The replay's progress, read from the writer's counter ten times a second.
        s.spawn(|| {
            let replaying = bar(w.updates.len(), "replaying");
            while !done.load(Ordering::Relaxed) {
                replaying.set_position(progress.load(Ordering::Relaxed) as u64);
                thread::sleep(Duration::from_millis(100));
            }
            replaying.finish_and_clear();
        });
        let replay = replay(&table, &w, args.batch, &times, &progress);
        // The lookup threads ran from `start` to here.
        let looked = start.elapsed();
        done.store(true, Ordering::Relaxed);
        let mut lag = (Vec::new(), Vec::new());
        for (t, h) in samplers.into_iter().enumerate() {
            let sampled = h.join().expect("lookup thread");
            if t == 0 {
                lag = sampled;
            }
        }
        let followed = follower_thread.join().expect("follower");
        (
            replay,
            looked,
            dumper.join().expect("dumper"),
            (lag, followed),
        )
    });
    let (fib_lag, (syncs, followed, (follower_preempted, follower_cpu), follower_first)) = fib_lag;

    // The figures.
    let mut lat = replay.latencies;
    lat.sort_unstable();
    match args.batch {
        None => println!(
            "replay: {} updates in {:.2?} = {:.2} M/s ({} withdrawals of absent routes)",
            replay.updates,
            replay.elapsed,
            replay.updates as f64 / replay.elapsed.as_secs_f64() / 1e6,
            replay.absent_withdrawals
        ),
        Some(n) => println!(
            "replay: {} updates in {:.2?} = {:.2} M/s, as {} commits of {} consecutive updates",
            replay.updates,
            replay.elapsed,
            replay.updates as f64 / replay.elapsed.as_secs_f64() / 1e6,
            lat.len(),
            n
        ),
    }
    println!(
        "  {} latency: p50 {}, p99.9 {}, max {} (the writer thread was preempted {} times, \
         used {:.2} s of CPU)",
        if args.batch.is_some() {
            "commit"
        } else {
            "write"
        },
        us(data::pct(&lat, 0.5)),
        us(data::pct(&lat, 0.999)),
        us(*lat.last().unwrap_or(&0)),
        replay.preempted,
        replay.cpu
    );
    let lookups = lookups.load(Ordering::Relaxed);
    println!(
        "fib lookups: {:.2} M/s per thread over {} thread(s) (batches of 256), {:.1}% hits",
        lookups as f64 / looked.as_secs_f64() / 1e6 / args.lookup_threads.max(1) as f64,
        args.lookup_threads,
        100.0 * hits.load(Ordering::Relaxed) as f64 / lookups.max(1) as f64
    );
    let (mut fv, mut fns) = fib_lag;
    fv.sort_unstable();
    fns.sort_unstable();
    println!(
        "fib lag behind the table p50 / p99 / max: {} / {} / {} versions, {} / {} / {} \
         ({} samples by a lookup thread, timed from the start of the write; the writers \
         applied {} changes themselves; the follower thread applied {} in {} syncs and was \
         preempted {} times, used {:.2} s of CPU; it ran {})",
        data::pct(&fv, 0.5),
        data::pct(&fv, 0.99),
        fv.last().unwrap_or(&0),
        us(data::pct(&fns, 0.5)),
        us(data::pct(&fns, 0.99)),
        us(*fns.last().unwrap_or(&0)),
        fv.len(),
        follower.applied_by_writers(),
        followed,
        syncs,
        follower_preempted,
        follower_cpu,
        match &follower_first {
            Ok(()) => "first in line (SCHED_FIFO 1)".to_string(),
            Err(why) => format!("at the default priority ({why})"),
        }
    );
    // After a last sync the Fib must answer as the table's own longest-prefix match.
    follower.sync().expect("the follower keeps its slots");
    let fib_wrong = lookup_addrs
        .iter()
        .step_by(16)
        .filter(|a| fib.lookup(**a) != table.lookup(**a).map(|r| next_hop(&r)))
        .count();
    println!(
        "fib check: after a last sync, {} of {} sampled addresses answer differently from \
         the table's lookup",
        fib_wrong,
        lookup_addrs.len() / 16
    );
    let d = dumper;
    println!(
        "dump: {} routes in {:.2?} = {:.2} M routes/s; {} changes committed meanwhile; \
         the feed caught up in {:.2?} ({} changes applied: those and the ones committed \
         while catching up)",
        d.dumped,
        d.dump_time,
        d.dumped as f64 / d.dump_time.as_secs_f64() / 1e6,
        d.during_dump,
        d.catch_up,
        d.caught_up
    );
    let (mut lv, mut lt) = (d.lag_versions, d.lag_ns);
    lv.sort_unstable();
    lt.sort_unstable();
    println!(
        "feed: then {} changes followed live; lag behind the writer p50 / p99 / max: \
         {} / {} / {} versions, {} / {} / {}{}",
        d.live,
        data::pct(&lv, 0.5),
        data::pct(&lv, 0.99),
        lv.last().unwrap_or(&0),
        us(data::pct(&lt, 0.5)),
        us(data::pct(&lt, 0.99)),
        us(*lt.last().unwrap_or(&0)),
        if d.resubscribed > 0 {
            format!(" (lagged and subscribed again {} times)", d.resubscribed)
        } else {
            String::new()
        }
    );

    // The copy must equal what an enumeration at the feed's version returns. The writer
    // has stopped, so a fresh enumeration is at that version.
    let fresh = table.enumerate(Criteria::all()).expect("a free slot");
    let at = fresh.snapshot();
    let mut mismatches = 0usize;
    let mut n = 0usize;
    let mut copy = d.copy.values();
    for r in fresh {
        n += 1;
        mismatches += (copy.next() != Some(&r)) as usize;
    }
    mismatches += copy.count();
    let consistent = at == d.version && mismatches == 0;
    println!(
        "check: the copy kept from the feed equals a fresh enumeration at version {} \
         ({} routes): {}",
        at.0,
        n,
        if consistent { "yes" } else { "NO" }
    );

    table.collect();
    let st = table.stats();
    println!(
        "memory: {} dead versions while the dump was open; after close + collect: {} dead, \
         {} routes; RSS {:.0} MiB",
        d.dead_while_open,
        st.dead_versions,
        st.live_routes,
        rss_mib()
    );

    let restart_ok = !args.graceful_restart
        || graceful_restart(
            &table,
            &fib,
            &mut follower,
            next_hop,
            args.lookup_threads.max(1),
            args.batch,
        );
    if fib_wrong > 0 {
        eprintln!("the Fib does not match the table after its last sync");
        std::process::exit(1);
    }
    if !consistent {
        eprintln!(
            "the copy does not match the table (feed at version {}, enumeration at {}, {} differences)",
            d.version.0, at.0, mismatches
        );
        std::process::exit(1);
    }
    if !restart_ok {
        eprintln!("the graceful restart dropped traffic or swept the wrong routes");
        std::process::exit(1);
    }
}

/// The graceful restart (module docs): the peer's routes are all protocol 14 (BGP). Returns
/// whether no lookup of a re-announced network answered "no route" and the sweep removed
/// exactly the routes not announced again.
fn graceful_restart(
    table: &Table,
    fib: &Fib<Ipv4Net>,
    follower: &mut Follower<'_>,
    next_hop: impl Fn(&Route<Ipv4Net, u64>) -> u32,
    lookup_threads: usize,
    batch: Option<usize>,
) -> bool {
    let peer = ProtocolId(14);
    // The session drops: note the version, keep forwarding on the (now stale) routes.
    let v0 = table.version();
    let routes: Vec<Route<Ipv4Net, u64>> = table
        .enumerate(Criteria::all().protocol(peer).include_disabled())
        .expect("a free slot")
        .collect();
    // The peer comes back and announces 95% of them again (every 20th is gone for good).
    let (again, gone): (Vec<_>, Vec<_>) = routes
        .into_iter()
        .enumerate()
        .partition(|(i, _)| i % 20 != 19);
    let again: Vec<Route<Ipv4Net, u64>> = again.into_iter().map(|(_, r)| r).collect();
    // Addresses inside re-announced networks: a random host of each of 2^18 of them.
    let mut rng = data::Rng::new(5);
    let addrs: Vec<std::net::Ipv4Addr> = (0..1 << 18)
        .map(|_| {
            let p = again[rng.below(again.len() as u64) as usize].key.prefix;
            let host = (rng.next_u64() as u32)
                & (u32::MAX.checked_shr(u32::from(p.prefix_len())).unwrap_or(0));
            std::net::Ipv4Addr::from(u32::from(p.network()) | host)
        })
        .collect();
    let done = AtomicBool::new(false);
    let (fib_lookups, fib_misses) = (AtomicU64::new(0), AtomicU64::new(0));
    let (table_lookups, table_misses) = (AtomicU64::new(0), AtomicU64::new(0));
    let t0 = Instant::now();
    let (announce, sweep, swept) = thread::scope(|s| {
        for t in 0..lookup_threads {
            let (addrs, done, fl, fm, tl, tm) = (
                &addrs,
                &done,
                &fib_lookups,
                &fib_misses,
                &table_lookups,
                &table_misses,
            );
            s.spawn(move || {
                let mut out = [None; 256];
                let mut i = (t * 7919) & !255;
                let (mut n, mut miss, mut tn, mut tmiss) = (0u64, 0u64, 0u64, 0u64);
                while !done.load(Ordering::Relaxed) {
                    i = (i + 256) & (addrs.len() - 1);
                    fib.lookup_batch(&addrs[i..i + 256], &mut out);
                    n += 256;
                    miss += out.iter().filter(|o| o.is_none()).count() as u64;
                    // and one in 16 addresses on the table itself
                    for a in addrs[i..i + 256].iter().step_by(16) {
                        tn += 1;
                        tmiss += u64::from(table.lookup(*a).is_none());
                    }
                }
                fl.fetch_add(n, Ordering::Relaxed);
                fm.fetch_add(miss, Ordering::Relaxed);
                tl.fetch_add(tn, Ordering::Relaxed);
                tm.fetch_add(tmiss, Ordering::Relaxed);
            });
        }
        let follower_thread = {
            let done = &done;
            let follower = &mut *follower;
            s.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    follower
                        .sync_timeout(Duration::from_millis(1))
                        .expect("the follower keeps its slots");
                }
            })
        };
        // The re-announcement: each add rewrites its route (a fresh value: new attributes).
        let t1 = Instant::now();
        let fresh = |r: &Route<Ipv4Net, u64>| Route {
            value: r.value + (1 << 40),
            ..r.clone()
        };
        match batch {
            None => {
                for r in &again {
                    table.add_route(fresh(r)).expect("canonical prefix");
                }
            }
            Some(n) => {
                for chunk in again.chunks(n) {
                    let mut b = Batch::new();
                    for r in chunk {
                        b.add_route(fresh(r));
                    }
                    table.commit(b).expect("canonical prefixes");
                }
            }
        }
        let announce = t1.elapsed();
        // End of RIB: sweep what was not announced again, in one commit.
        let t2 = Instant::now();
        let swept = table
            .delete_routes(
                Criteria::all()
                    .protocol(peer)
                    .include_disabled()
                    .unchanged_since(v0),
            )
            .expect("a free slot");
        let sweep = t2.elapsed();
        // Let the lookups see the Fib after the sweep for a moment.
        thread::sleep(Duration::from_millis(50));
        done.store(true, Ordering::Relaxed);
        follower_thread.join().expect("follower");
        (announce, sweep, swept)
    });
    follower.sync().expect("the follower keeps its slots");
    let fib_wrong = addrs
        .iter()
        .step_by(16)
        .filter(|a| fib.lookup(**a) != table.lookup(**a).map(|r| next_hop(&r)))
        .count();
    let (fm, tm) = (
        fib_misses.load(Ordering::Relaxed),
        table_misses.load(Ordering::Relaxed),
    );
    println!(
        "graceful restart: the peer announced {} of its {} routes again in {:.2?} ({}); the \
         sweep of the routes unchanged since version {} removed {} in one commit in {:.2?} \
         ({} expected); {} routes left",
        again.len(),
        again.len() + gone.len(),
        announce,
        match batch {
            None => "single writes".to_string(),
            Some(n) => format!("commits of {n}"),
        },
        v0.0,
        swept,
        sweep,
        gone.len(),
        table.route_count()
    );
    println!(
        "  no-route answers for addresses in re-announced networks: {} of {} Fib lookups, {} \
         of {} table lookups (over {:.2?}); after a last sync the Fib differs from the table \
         at {} of {} sampled addresses",
        fm,
        fib_lookups.load(Ordering::Relaxed),
        tm,
        table_lookups.load(Ordering::Relaxed),
        t0.elapsed(),
        fib_wrong,
        addrs.len() / 16
    );
    fm == 0 && tm == 0 && fib_wrong == 0 && swept == gone.len()
}

/// When the write of each commit of the replay began, for the lag figures: a commit's lag
/// is counted from the start of its write (a helped Fib is updated inside the write).
struct Times {
    start: Instant,
    /// The table's version before the replay.
    v0: u64,
    /// By version - v0: ns after `start` at which the write of that commit began (0: not
    /// recorded yet).
    began: Vec<AtomicU64>,
    /// When the writer's latest write began (ns after `start`).
    writing: AtomicU64,
}

impl Times {
    fn new(versions: usize, v0: u64, start: Instant) -> Self {
        Times {
            start,
            v0,
            began: (0..=versions).map(|_| AtomicU64::new(0)).collect(),
            writing: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        (self.start.elapsed().as_nanos() as u64).max(1)
    }

    /// The writer, before a write: notes when it began.
    fn begin(&self) -> u64 {
        let t = self.now();
        self.writing.store(t, Ordering::Relaxed);
        t
    }

    /// The writer, after a write that committed `version`.
    fn committed(&self, version: u64, began: u64) {
        if let Some(at) = self.began.get((version - self.v0) as usize) {
            at.store(began, Ordering::Relaxed);
        }
    }

    /// When the write of commit `version` began; for a commit not recorded yet (the write
    /// in flight), when the latest write began.
    fn began(&self, version: u64) -> u64 {
        let writing = self.writing.load(Ordering::Relaxed);
        let at = self
            .began
            .get(version.saturating_sub(self.v0) as usize)
            .map_or(0, |a| a.load(Ordering::Relaxed));
        if at == 0 {
            writing
        } else {
            at
        }
    }
}

/// The writer: replays the updates flat out, timing each (or, with `batch`, each commit
/// of that many consecutive updates).
fn replay(
    table: &Table,
    w: &Workload,
    batch: Option<usize>,
    times: &Times,
    progress: &AtomicUsize,
) -> Replay {
    let base = w.prefixes.len() as u64;
    let mut latencies = Vec::with_capacity(w.updates.len());
    let mut absent = 0;
    let (p0, cpu0) = (data::preempted(), data::thread_cpu_secs());
    let t0 = Instant::now();
    if let Some(n) = batch {
        let mut done = 0;
        for chunk in w.updates.chunks(n) {
            let t = Instant::now();
            let began = times.begin();
            let mut b = Batch::new();
            for (j, u) in chunk.iter().enumerate() {
                match u {
                    Update::Announce(p) => {
                        b.add_route(data::route(data::key_v4(*p), base + (done + j) as u64))
                    }
                    Update::Withdraw(p) => b.withdraw_route(data::key_v4(*p)),
                };
            }
            let v = table.commit(b).expect("canonical prefixes");
            latencies.push(t.elapsed().as_nanos() as u64);
            times.committed(v.0, began);
            done += chunk.len();
            progress.store(done, Ordering::Relaxed);
        }
        return Replay {
            latencies,
            updates: done,
            elapsed: t0.elapsed(),
            absent_withdrawals: 0,
            preempted: data::preempted() - p0,
            cpu: data::thread_cpu_secs() - cpu0,
        };
    }
    for (i, u) in w.updates.iter().enumerate() {
        let t = Instant::now();
        let began = times.begin();
        let committed = match u {
            Update::Announce(p) => {
                let r = data::route(data::key_v4(*p), base + i as u64);
                table.add_route(r).expect("canonical prefix");
                true
            }
            Update::Withdraw(p) => match table.delete_route(&data::key_v4(*p)) {
                Ok(_) => true,
                Err(Error::NoSuchRoute) => false,
                Err(e) => panic!("{e}"),
            },
        };
        latencies.push(t.elapsed().as_nanos() as u64);
        absent += !committed as usize;
        if committed {
            // The only writer: the table's version is this commit's.
            // (A reader that helps decide a timestamp may skip a version now and then:
            // the array has room to spare.)
            times.committed(table.version().0, began);
        }
        progress.store(i + 1, Ordering::Relaxed);
    }
    Replay {
        updates: latencies.len(),
        latencies,
        elapsed: t0.elapsed(),
        absent_withdrawals: absent,
        preempted: data::preempted() - p0,
        cpu: data::thread_cpu_secs() - cpu0,
    }
}

/// The dumper: once an eighth of the replay is done, subscribes, reads the dump into a
/// copy, then keeps the copy current from the feed until the writer is done and the feed
/// has caught up. On `Lagged` it subscribes again and starts over.
fn dump_and_follow(
    table: &Table,
    w: &Workload,
    times: &Times,
    progress: &AtomicUsize,
    done: &AtomicBool,
) -> Dumper {
    while progress.load(Ordering::Relaxed) < w.updates.len() / 8 {
        thread::sleep(Duration::from_millis(1));
    }
    let mut d = Dumper {
        dumped: 0,
        dump_time: Duration::ZERO,
        during_dump: 0,
        caught_up: 0,
        catch_up: Duration::ZERO,
        live: 0,
        lag_versions: Vec::new(),
        lag_ns: Vec::new(),
        resubscribed: 0,
        dead_while_open: 0,
        copy: BTreeMap::new(),
        version: Version(0),
    };
    'subscribe: loop {
        let (mut dump, mut feed) = table.subscribe(Criteria::all()).expect("two free slots");
        let t0 = Instant::now();
        d.copy = dump.by_ref().map(|r| (r.key, r)).collect();
        d.dump_time = t0.elapsed();
        d.dumped = d.copy.len();
        d.dead_while_open = table.stats().dead_versions;
        // Closing the snapshot releases what only it could see; the feed keeps what it
        // still has to read.
        drop(dump);
        let end_of_dump = table.version();
        let t1 = Instant::now();
        d.during_dump = 0;
        d.caught_up = 0;
        d.lag_versions.clear();
        d.lag_ns.clear();
        let (mut caught_up, mut live) = (None, 0);
        loop {
            // Drain what is there; once caught up, wait for each change (a feed that keeps
            // up with a busy writer naps rather than have each commit wake it).
            let next = if caught_up.is_none() {
                feed.try_next()
            } else {
                feed.next_timeout(Duration::from_millis(20))
            };
            let change = match next {
                Ok(Some(c)) => c,
                Ok(None) if caught_up.is_none() => {
                    d.catch_up = t1.elapsed();
                    caught_up = Some(feed.version());
                    continue;
                }
                Ok(None) if done.load(Ordering::Acquire) => match feed.try_next() {
                    Ok(Some(c)) => c,
                    Ok(None) => break,
                    Err(_) => {
                        d.resubscribed += 1;
                        continue 'subscribe;
                    }
                },
                Ok(None) => continue,
                Err(Error::Lagged) => {
                    d.resubscribed += 1;
                    continue 'subscribe;
                }
                Err(e) => panic!("{e}"),
            };
            if let Some(old) = &change.old {
                d.copy.remove(&old.key);
            }
            if let Some(new) = change.new {
                d.copy.insert(new.key, new);
            }
            if change.version <= end_of_dump {
                d.during_dump += 1;
            }
            if caught_up.is_none() {
                d.caught_up += 1;
            } else {
                live += 1;
                d.lag_versions
                    .push(table.version().0.saturating_sub(change.version.0));
                let at = times.began(change.version.0);
                d.lag_ns.push(times.now().saturating_sub(at));
            }
        }
        d.live = live;
        d.version = feed.version();
        return d;
    }
}

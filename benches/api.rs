//! Whole-table operations and batch reads, side by side in one run, on the real RIPE RIS
//! IPv4 table (1,042,325 prefixes of one full-table BGP peer, benches/data/).
//!
//! ```text
//! cargo bench --bench api --target-dir target/bench -- --warm-up-time 1 --measurement-time 3
//! cargo bench --bench api --target-dir target/bench -- flush     # one family
//! ```
//!
//! * `flush`: the peer goes down and its routes go. `delete_routes` with the peer's
//!   protocol, against `delete_route` of each of its keys, known in advance and given in
//!   key order (the order that is kindest to one-by-one deletion: each search finds the
//!   previous one's path in cache). Only the deletion is timed; each iteration deletes
//!   from a freshly built table.
//! * `dump`: a full dump of the same table, route by route (`Iterator::next`,
//!   `enumerate_get_next_route`) against pages of 256 (`next_batch`,
//!   `enumerate_get_next_routes`).
//! * `covering`: `Criteria::covering` walks up from announced prefixes, beside one
//!   longest-prefix match of the same addresses for scale.
//!
//! Every figure is the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall
//! time: all of the work runs on that thread (the reclaimer's sweeps included, as they run
//! on the writing thread), and on a shared machine the wall clock mostly measures the
//! other processes. The ratios to quote are flush/delete_routes over
//! flush/delete_route_each, and dump/*_batch256 over the route-by-route line of the same
//! API.

mod data;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};
use rtm::{Criteria, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};

type Rtm = RouteTable<Ipv4Net, u64>;
type R = Route<Ipv4Net, u64>;

const PAGE: usize = 256;

/// This thread's CPU time so far.
fn cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The CPU time of `iters` runs of `f`.
fn cpu_time(iters: u64, mut f: impl FnMut()) -> Duration {
    let start = cpu_now();
    for _ in 0..iters {
        f();
    }
    cpu_now() - start
}

fn peer_routes() -> Vec<R> {
    let mut prefixes = data::ris_v4();
    prefixes.sort();
    prefixes.dedup();
    prefixes
        .iter()
        .enumerate()
        .map(|(i, p)| data::route(data::key_v4(*p), i as u64))
        .collect()
}

fn build(routes: &[R]) -> Rtm {
    let t = Rtm::new();
    for r in routes {
        t.add_route(r.clone()).unwrap();
    }
    t
}

/// Times `f` on a fresh table per iteration; building and dropping it are not timed.
fn timed_on_fresh(routes: &[R], iters: u64, f: impl Fn(&Rtm)) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let t = build(routes);
        total += cpu_time(1, || f(&t));
        assert_eq!(t.route_count(), 0);
        drop(t);
    }
    total
}

fn bench_flush(c: &mut Criterion, routes: &[R]) {
    let keys: Vec<RouteKey<Ipv4Net>> = routes.iter().map(|r| r.key).collect();
    let mut g = c.benchmark_group("flush");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(routes.len() as u64));
    g.bench_function("delete_routes", |b| {
        b.iter_custom(|iters| {
            timed_on_fresh(routes, iters, |t| {
                let n = t
                    .delete_routes(Criteria::all().protocol(ProtocolId::BGP))
                    .unwrap();
                assert_eq!(n, keys.len());
            })
        })
    });
    g.bench_function("delete_route_each", |b| {
        b.iter_custom(|iters| {
            timed_on_fresh(routes, iters, |t| {
                for k in &keys {
                    black_box(t.delete_route(k).unwrap());
                }
            })
        })
    });
    g.finish();
}

#[inline]
fn fold(acc: (usize, u64), r: &R) -> (usize, u64) {
    (acc.0 + 1, acc.1.wrapping_add(r.value ^ r.metric as u64))
}

fn bench_dump(c: &mut Criterion, t: &Rtm) {
    let n = t.route_count();
    let mut g = c.benchmark_group("dump");
    g.sample_size(10).throughput(Throughput::Elements(n as u64));
    g.bench_function("enumeration_next", |b| {
        b.iter_custom(|iters| {
            cpu_time(iters, || {
                let acc = t
                    .enumerate(Criteria::all())
                    .unwrap()
                    .fold((0, 0), |a, r| fold(a, &r));
                assert_eq!(acc.0, n);
                black_box(acc);
            })
        })
    });
    g.bench_function("enumeration_batch256", |b| {
        let mut page = Vec::with_capacity(PAGE);
        b.iter_custom(|iters| {
            cpu_time(iters, || {
                let mut e = t.enumerate(Criteria::all()).unwrap();
                let mut acc = (0, 0);
                loop {
                    page.clear();
                    if e.next_batch(PAGE, &mut page) == 0 {
                        break;
                    }
                    acc = page.iter().fold(acc, fold);
                }
                assert_eq!(acc.0, n);
                black_box(acc);
            })
        })
    });
    g.bench_function("handle_next_route", |b| {
        b.iter_custom(|iters| {
            cpu_time(iters, || {
                let h = t.create_enumeration_handle(Criteria::all()).unwrap();
                let mut acc = (0, 0);
                while let Ok(r) = t.enumerate_get_next_route(h) {
                    acc = fold(acc, &r);
                }
                t.close_enumeration_handle(h).unwrap();
                assert_eq!(acc.0, n);
                black_box(acc);
            })
        })
    });
    g.bench_function("handle_batch256", |b| {
        let mut page = Vec::with_capacity(PAGE);
        b.iter_custom(|iters| {
            cpu_time(iters, || {
                let h = t.create_enumeration_handle(Criteria::all()).unwrap();
                let mut acc = (0, 0);
                loop {
                    page.clear();
                    if t.enumerate_get_next_routes(h, PAGE, &mut page).unwrap() == 0 {
                        break;
                    }
                    acc = page.iter().fold(acc, fold);
                }
                t.close_enumeration_handle(h).unwrap();
                assert_eq!(acc.0, n);
                black_box(acc);
            })
        })
    });
    g.finish();
}

/// A covering walk (the networks above a prefix) per announced prefix, beside one
/// longest-prefix match of the same prefix's address for scale.
fn bench_covering(c: &mut Criterion, t: &Rtm, routes: &[R]) {
    let probes: Vec<Ipv4Net> = routes
        .iter()
        .step_by(routes.len() / 4096 + 1)
        .map(|r| r.key.prefix)
        .collect();
    let mut g = c.benchmark_group("covering");
    g.bench_function("covering_walk", |b| {
        let mut i = 0;
        b.iter_custom(|iters| {
            cpu_time(iters, || {
                let p = probes[i % probes.len()];
                i += 1;
                let n = t.enumerate(Criteria::all().covering(p)).unwrap().count();
                assert!(n >= 1);
                black_box(n);
            })
        })
    });
    g.bench_function("lookup", |b| {
        let mut i = 0;
        b.iter_custom(|iters| {
            cpu_time(iters, || {
                let p = probes[i % probes.len()];
                i += 1;
                black_box(t.lookup(p.network()).unwrap());
            })
        })
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let routes = peer_routes();
    let table = build(&routes);
    bench_dump(&mut c, &table);
    bench_covering(&mut c, &table, &routes);
    drop(table);
    bench_flush(&mut c, &routes);
    c.final_summary();
}

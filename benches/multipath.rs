//! `Fib::follow_multipath` beside `Fib::follow` on the real RIPE RIS tables (source: RIPE
//! NCC RIS, see benches/data/README.md): every network gets one to four equal-cost paths
//! from a pool of eight next hops (as a router with several upstreams sees them) and a
//! worse backup. Prints the Fib's bytes per prefix for both followers, the groups the
//! multipath one interned, and the median time of `lookup_batch` over 16,384 uniform
//! addresses for both Fibs, then of `lookup_batch` + a `Selector`'s `select` (a forwarding step), in
//! interleaved rounds, with the ratios; then replays the real BGP day on that table (each
//! announcement a path through one of the pool's next hops, each withdrawal one taken away)
//! with both followers synced every 64 writes, and prints each one's sync time per change
//! (`--quick`: the first 300,000 updates). A plain timing harness:
//!
//! ```text
//! cargo bench --bench multipath            # IPv4 and IPv6
//! cargo bench --bench multipath -- --quick # 3 rounds
//! ```

mod data;

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Instant;

use rtm::{Fib, InterfaceId, NexthopGroups, Prefix, ProtocolId, Route, RouteKey, RouteTable};

const BATCH: usize = 16_384;

/// The address of the pool's next hop `i` (0..8); the group member is `i` itself (the
/// route's value).
trait Hop {
    fn hop(i: u64) -> Self;
}

impl Hop for Ipv4Addr {
    fn hop(i: u64) -> Self {
        Ipv4Addr::new(192, 0, 2, 1 + (i % 8) as u8)
    }
}

impl Hop for std::net::Ipv6Addr {
    fn hop(i: u64) -> Self {
        std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1 + (i % 8) as u16)
    }
}

/// A table of `prefixes`, each with one to four equal-cost paths and a worse backup.
fn table<P: Prefix>(prefixes: &[P], rng: &mut data::Rng) -> RouteTable<P, u32>
where
    P::Addr: Hop,
{
    let t = RouteTable::<P, u32>::new();
    for p in prefixes {
        let paths = 1 + rng.below(4);
        let first = rng.below(8);
        for j in 0..paths {
            let k = RouteKey::new(*p, ProtocolId::BGP, InterfaceId(1), P::Addr::hop(first + j));
            t.add_route(Route {
                metric: 10,
                ..Route::new(k, ((first + j) % 8) as u32)
            })
            .unwrap();
        }
        let k = RouteKey::new(*p, ProtocolId::BGP, InterfaceId(2), P::Addr::hop(first + 7));
        t.add_route(Route {
            metric: 20,
            ..Route::new(k, 99)
        })
        .unwrap();
    }
    t
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Nanoseconds per address of `f` over the batch.
fn timed(f: impl FnOnce()) -> f64 {
    let s = Instant::now();
    f();
    s.elapsed().as_nanos() as f64 / BATCH as f64
}

fn run<P: Prefix>(
    name: &str,
    prefixes: &[P],
    addrs: &[P::Addr],
    rounds: usize,
    updates: &[data::Update<P>],
) where
    P::Addr: Hop + Copy,
{
    let mut rng = data::Rng::new(7);
    let t = table(prefixes, &mut rng);
    let groups = NexthopGroups::<u32>::new();
    let s = Instant::now();
    let (single, mut f1) = Fib::follow(&t, |r| r.value).unwrap();
    let single_build = s.elapsed().as_secs_f64();
    let s = Instant::now();
    let (multi, mut f2) = Fib::follow_multipath(&t, &groups, |r| r.value).unwrap();
    let multi_build = s.elapsed().as_secs_f64();
    let n = single.len();
    assert_eq!(multi.len(), n);
    println!(
        "{name}: {n} networks, {} routes; groups interned: {}",
        t.route_count(),
        groups.len()
    );
    println!(
        "  bytes per prefix: follow {:.2}, follow_multipath {:.2} (ratio {:.3}); build {:.2} s, {:.2} s",
        single.memory_bytes() as f64 / n as f64,
        multi.memory_bytes() as f64 / n as f64,
        multi.memory_bytes() as f64 / single.memory_bytes() as f64,
        single_build,
        multi_build,
    );
    let mut out = vec![None; BATCH];
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    // The forwarding thread's view of the groups, as a forwarding engine keeps one.
    let mut sel = groups.selector();
    for _ in 0..rounds {
        for chunk in addrs.chunks(BATCH) {
            a.push(timed(|| {
                single.lookup_batch(chunk, &mut out[..chunk.len()]);
                black_box(&out);
            }));
            b.push(timed(|| {
                multi.lookup_batch(chunk, &mut out[..chunk.len()]);
                black_box(&out);
            }));
            c.push(timed(|| {
                multi.lookup_batch(chunk, &mut out[..chunk.len()]);
                let mut x = 0u32;
                for (i, id) in out[..chunk.len()].iter().enumerate() {
                    if let Some(id) = id {
                        let h = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                        if let Some(m) = sel.select(*id, h) {
                            x ^= m;
                        }
                    }
                }
                black_box(x);
            }));
        }
    }
    let (a, b, c) = (median(a), median(b), median(c));
    println!(
        "  lookup_batch ns/address: follow {a:.2}, follow_multipath {b:.2} (ratio {:.3}); + select {c:.2} (ratio to follow's lookup_batch {:.3})",
        b / a,
        c / a
    );

    // The real day's updates on this table: an announcement adds (or rewrites) a path
    // through one of the pool's next hops, a withdrawal takes one away; both followers
    // sync every 64 writes, each timed on its own.
    let mut rng = data::Rng::new(11);
    let (mut t1, mut t2, mut n1, mut n2) = (0f64, 0f64, 0usize, 0usize);
    for (i, u) in updates.iter().enumerate() {
        let h = rng.below(8);
        match *u {
            data::Update::Announce(p) => {
                let k = RouteKey::new(p, ProtocolId::BGP, InterfaceId(1), P::Addr::hop(h));
                t.add_route(Route {
                    metric: 10,
                    ..Route::new(k, h as u32)
                })
                .unwrap();
            }
            data::Update::Withdraw(p) => {
                let k = RouteKey::new(p, ProtocolId::BGP, InterfaceId(1), P::Addr::hop(h));
                let _ = t.delete_route(&k);
            }
        }
        if i % 64 == 63 {
            let s = Instant::now();
            n1 += f1.sync().unwrap();
            t1 += s.elapsed().as_secs_f64();
            let s = Instant::now();
            n2 += f2.sync().unwrap();
            t2 += s.elapsed().as_secs_f64();
        }
    }
    if !updates.is_empty() {
        println!(
            "  {} updates, synced every 64: follow {n1} changes, {:.3} s ({:.0} ns/change); follow_multipath {n2} changes, {:.3} s ({:.0} ns/change); ratio of totals {:.2}; groups {}",
            updates.len(),
            t1,
            t1 * 1e9 / n1.max(1) as f64,
            t2,
            t2 * 1e9 / n2.max(1) as f64,
            t2 / t1,
            groups.len()
        );
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 3 } else { 11 };
    let mut rng = data::Rng::new(1);
    let v4 = data::ris_v4();
    let addrs: Vec<Ipv4Addr> = (0..BATCH * 4)
        .map(|_| Ipv4Addr::from(rng.next_u64() as u32))
        .collect();
    let mut updates = data::ris_v4_updates();
    updates.truncate(if quick { 300_000 } else { updates.len() });
    run("RIS IPv4", &v4, &addrs, rounds, &updates);
    drop(v4);
    let v6 = data::ris_v6();
    // addresses under the table's networks: a random network's address, random low bits
    let addrs: Vec<std::net::Ipv6Addr> = (0..BATCH * 4)
        .map(|_| {
            let p = v6[rng.below(v6.len() as u64) as usize];
            let low = u128::from(rng.next_u64()) >> p.prefix_len().min(64);
            std::net::Ipv6Addr::from(u128::from(p.network()) | low)
        })
        .collect();
    let mut updates = data::ris_v6_updates();
    updates.truncate(if quick { 300_000 } else { updates.len() });
    run("RIS IPv6", &v6, &addrs, rounds, &updates);
}

//! Multipath forwarding and prefix-independent convergence on the real IPv4 table.
//!
//! Every network of the real RIS table (1,042,325 prefixes, RIPE RIS AS3333, 2026-05-11;
//! source: RIPE NCC RIS) gets one to four equal-cost paths from a pool of eight next hops,
//! as a router with several upstreams sees them (next hop 0 is never a network's only one,
//! so every network survives its loss). `Fib::follow_multipath` keeps a Fib of
//! next-hop group ids; a forwarding thread runs `lookup_batch` and a `Selector`'s `select`
//! per packet over addresses inside announced networks, flat out.
//!
//! Then next hop 0 fails, twice:
//! 1. `NexthopGroups::set_down`: the groups that hold it change, each in one step; no table
//!    or Fib write. The demo prints how long the call took and when the forwarder sent its
//!    last packet to the failed next hop.
//! 2. The same repair by rewriting the routes: one commit that deletes every route through
//!    next hop 0; the follower applies it. The demo prints the commit's time and the time
//!    until the Fib shows it.
//!
//! After each repair it checks every sampled address: none is forwarded to next hop 0, and
//! every one still has a path. Exits nonzero if a check fails.
//!
//! ```text
//! cargo run --release --example multipath
//! ```

#[path = "../benches/data/mod.rs"]
mod data;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rtm::{
    Batch, Fib, InterfaceId, Ipv4Net, NexthopGroups, ProtocolId, Route, RouteKey, RouteTable,
};

/// The pool of next hops.
const POOL: u64 = 8;
/// Addresses the forwarder cycles through.
const ADDRESSES: usize = 1 << 20;

fn hop(i: u64) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, 1 + i as u8)
}

/// The flow hash of a packet: here, of its destination.
fn flow(a: Ipv4Addr) -> u64 {
    u64::from(u32::from(a)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn main() {
    let t0 = Instant::now();
    let prefixes = data::ris_v4();
    let table = RouteTable::<Ipv4Net, u64>::new();
    let mut rng = data::Rng::new(0x6d70);
    let mut through = Vec::new(); // the routes through next hop 0
    for p in &prefixes {
        let paths = 1 + rng.below(4);
        let mut first = rng.below(POOL);
        if paths == 1 && first == 0 {
            // Next hop 0 is never a network's only path: every network survives its loss.
            first = 1 + rng.below(POOL - 1);
        }
        for j in 0..paths {
            let h = (first + j) % POOL;
            let key = RouteKey::new(*p, ProtocolId::BGP, InterfaceId(h as u32), hop(h));
            if h == 0 {
                through.push(key);
            }
            table.add_route(Route::new(key, h)).unwrap();
        }
    }
    let groups = NexthopGroups::<u64>::new();
    let (fib, mut follower) = Fib::follow_multipath(&table, &groups, |r| r.value).unwrap();
    follower.sync().unwrap();
    println!(
        "real IPv4 table: {} networks, {} routes (1 to 4 equal-cost paths from {POOL} next hops), {} next-hop groups; next hop 0 carries {} networks; built in {:.1?}. Source: RIPE NCC RIS",
        prefixes.len(),
        table.route_count(),
        groups.len(),
        through.len(),
        t0.elapsed()
    );
    let addrs = data::announced_v4(&prefixes, ADDRESSES, 17);
    let mut failed = false;

    // The forwarder: packets over `addrs`, round after round. It records when it last sent
    // a packet to next hop 0, in ns since `epoch`.
    let epoch = Instant::now();
    let stop = AtomicBool::new(false);
    let last_to_zero = AtomicU64::new(0);
    let packets = AtomicU64::new(0);
    let (down, repaired_at) = std::thread::scope(|s| {
        s.spawn(|| {
            let mut sel = groups.selector();
            let mut ids = vec![None; 256];
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for chunk in addrs.chunks(256) {
                    fib.lookup_batch(chunk, &mut ids);
                    for (a, id) in chunk.iter().zip(&ids) {
                        if let Some(h) = id.and_then(|id| sel.select(id, flow(*a))) {
                            if h == 0 {
                                last_to_zero
                                    .store(epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
                            }
                        }
                    }
                    n += chunk.len() as u64;
                }
            }
            packets.store(n, Ordering::Relaxed);
        });
        std::thread::sleep(Duration::from_millis(300));
        // 1. Next hop 0 fails: prefix-independent convergence.
        let t = Instant::now();
        let changed = groups.set_down(&0, true);
        let took = t.elapsed();
        let returned = epoch.elapsed().as_nanos() as u64;
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Relaxed);
        ((changed, took), returned)
    });
    let last = last_to_zero.load(Ordering::Relaxed);
    let forwarded = packets.load(Ordering::Relaxed);
    println!(
        "forwarder: {forwarded} packets ({:.1} M/s) through lookup_batch + Selector::select",
        forwarded as f64 / 0.5 / 1e6
    );
    println!(
        "next hop 0 down by set_down: {} groups changed in {:.1} us; the last packet to it left {}",
        down.0,
        down.1.as_secs_f64() * 1e6,
        if last <= repaired_at {
            format!(
                "{:.1} us before set_down returned",
                (repaired_at - last) as f64 / 1e3
            )
        } else {
            failed = true;
            format!(
                "{:.1} us AFTER set_down returned",
                (last - repaired_at) as f64 / 1e3
            )
        }
    );
    failed |= !check(&fib, &groups, &addrs, "after set_down");

    // 2. The same repair by rewriting the routes through next hop 0, as one commit.
    assert_eq!(groups.set_down(&0, false), down.0);
    let mut b = Batch::new();
    for k in &through {
        b.delete_route(*k);
    }
    let done = AtomicBool::new(false);
    let (commit, seen) = std::thread::scope(|s| {
        let f = s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                follower.sync_timeout(Duration::from_millis(1)).unwrap();
            }
        });
        let t = Instant::now();
        let v = table.commit(b).unwrap();
        let commit = t.elapsed();
        while fib.version() < v {
            std::hint::spin_loop();
        }
        let seen = t.elapsed();
        done.store(true, Ordering::Relaxed);
        f.join().unwrap();
        (commit, seen)
    });
    println!(
        "the same repair by one commit deleting the {} routes through next hop 0: the commit {:.1} ms, in the Fib after {:.1} ms: {:.0}x set_down's time",
        through.len(),
        commit.as_secs_f64() * 1e3,
        seen.as_secs_f64() * 1e3,
        seen.as_secs_f64() / down.1.as_secs_f64()
    );
    failed |= !check(&fib, &groups, &addrs, "after the commit");
    if failed {
        std::process::exit(1);
    }
}

/// Every address of `addrs` has a path, and none is forwarded to next hop 0.
fn check(fib: &Fib<Ipv4Net>, groups: &NexthopGroups<u64>, addrs: &[Ipv4Addr], when: &str) -> bool {
    let (mut none, mut zero) = (0usize, 0usize);
    for a in addrs {
        match fib.lookup(*a).and_then(|id| groups.select(id, flow(*a))) {
            None => none += 1,
            Some(0) => zero += 1,
            Some(_) => {}
        }
    }
    println!(
        "check {when}: {} addresses, {zero} forwarded to next hop 0, {none} without a path",
        addrs.len()
    );
    zero == 0 && none == 0
}

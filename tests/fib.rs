//! The Fib against a brute-force longest-prefix-match oracle: on MAE-West, on the real RIPE
//! RIS IPv4 and IPv6 tables and their real updates, on random nested tables under churn;
//! then readers racing the writer, which must only ever see answers some published version
//! had; and memory that stays bounded under churn.

#[path = "../benches/data/mod.rs"]
mod data;

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use data::{Rng, Update};
use rtm::{Error, Fib, FibWriter, Ipv4Net, Ipv6Net, Prefix, Version};

/// What the tests need of a prefix family.
trait Family: Prefix {
    const W: u8;
    fn bits(&self) -> u128;
    fn make(bits: u128, len: u8) -> Self;
    fn addr(bits: u128) -> Self::Addr;
    fn addr_bits(a: Self::Addr) -> u128;
}

impl Family for Ipv4Net {
    const W: u8 = 32;
    fn bits(&self) -> u128 {
        u32::from(self.network()) as u128
    }
    fn make(bits: u128, len: u8) -> Self {
        Ipv4Net::new(Ipv4Addr::from(bits as u32), len)
            .unwrap()
            .trunc()
    }
    fn addr(bits: u128) -> Ipv4Addr {
        Ipv4Addr::from(bits as u32)
    }
    fn addr_bits(a: Ipv4Addr) -> u128 {
        u32::from(a) as u128
    }
}

impl Family for Ipv6Net {
    const W: u8 = 128;
    fn bits(&self) -> u128 {
        u128::from(self.network())
    }
    fn make(bits: u128, len: u8) -> Self {
        Ipv6Net::new(Ipv6Addr::from(bits), len).unwrap().trunc()
    }
    fn addr(bits: u128) -> Ipv6Addr {
        Ipv6Addr::from(bits)
    }
    fn addr_bits(a: Ipv6Addr) -> u128 {
        u128::from(a)
    }
}

/// The brute-force oracle: every prefix length, longest first.
fn oracle<P: Family>(model: &HashMap<P, u32>, a: P::Addr) -> Option<u32> {
    let bits = P::addr_bits(a);
    (0..=P::W)
        .rev()
        .find_map(|len| model.get(&P::make(bits, len)).copied())
}

fn last_bits<P: Family>(p: &P, len: u8) -> u128 {
    let host = if len == 0 {
        if P::W == 128 {
            u128::MAX
        } else {
            (1u128 << P::W) - 1
        }
    } else if len >= P::W {
        0
    } else {
        (1u128 << (P::W - len)) - 1
    };
    p.bits() | host
}

/// Checks `fib` against `model` on the first and last address of every prefix, the
/// addresses just outside them, and `extra`.
fn check<P: Family + Copy>(
    fib: &Fib<P>,
    model: &HashMap<P, u32>,
    prefixes: impl Iterator<Item = (P, u8)>,
    extra: &[P::Addr],
) {
    let max = if P::W == 128 {
        u128::MAX
    } else {
        (1u128 << P::W) - 1
    };
    let mut addrs: Vec<P::Addr> = extra.to_vec();
    for (p, len) in prefixes {
        let first = p.bits();
        let last = last_bits(&p, len);
        addrs.push(P::addr(first));
        addrs.push(P::addr(last));
        addrs.push(P::addr(first.wrapping_sub(1) & max));
        addrs.push(P::addr(last.wrapping_add(1) & max));
    }
    let mut batch = vec![None; addrs.len()];
    fib.lookup_batch(&addrs, &mut batch);
    for (a, b) in addrs.iter().zip(&batch) {
        let want = oracle(model, *a);
        assert_eq!(fib.lookup(*a), want, "lookup {a:?}");
        assert_eq!(*b, want, "lookup_batch {a:?}");
    }
    assert_eq!(fib.len(), model.len());
}

fn plen<P: Family>(p: &P) -> u8 {
    // the length through Debug-free means: the shortest length that makes the same prefix
    (0..=P::W).find(|&l| P::make(p.bits(), l) == *p).unwrap()
}

fn build<P: Family>(prefixes: &[P]) -> (Fib<P>, FibWriter<P>, HashMap<P, u32>) {
    let mut w = FibWriter::<P>::for_prefixes(prefixes.len());
    let mut model = HashMap::new();
    for (i, p) in prefixes.iter().enumerate() {
        w.insert(*p, i as u32).unwrap();
        model.insert(*p, i as u32);
    }
    w.publish(Version(1));
    (w.fib(), w, model)
}

#[test]
fn matches_brute_force_on_mae_west() {
    let prefixes = data::mae_west();
    let (fib, _w, model) = build(&prefixes);
    let extra = data::uniform_v4(100_000, 1);
    check(
        &fib,
        &model,
        prefixes.iter().map(|p| (*p, p.prefix_len())),
        &extra,
    );
}

#[test]
fn matches_brute_force_on_the_real_ipv4_table_and_its_updates() {
    let prefixes = data::ris_v4();
    let (fib, mut w, mut model) = build(&prefixes);
    let mut extra = data::uniform_v4(100_000, 2);
    extra.extend(data::announced_v4(&prefixes, 100_000, 3));
    let sample = prefixes.iter().step_by(7).map(|p| (*p, p.prefix_len()));
    check(&fib, &model, sample, &extra);

    // The first 200,000 real updates, published every 1,000, checked every 50,000.
    let updates = data::ris_v4_updates();
    let mut touched = Vec::new();
    for (i, u) in updates.iter().take(200_000).enumerate() {
        match *u {
            Update::Announce(p) => {
                let id = (i as u32).wrapping_mul(2_654_435_761);
                assert_eq!(w.insert(p, id).unwrap(), model.insert(p, id));
                touched.push(p);
            }
            Update::Withdraw(p) => {
                assert_eq!(w.remove(p).unwrap(), model.remove(&p));
                touched.push(p);
            }
        }
        if i % 1000 == 999 {
            w.publish(Version(i as u64));
        }
        if i % 50_000 == 49_999 {
            let t = touched.drain(..).map(|p| (p, p.prefix_len()));
            check(&fib, &model, t, &extra[..20_000]);
        }
    }
}

#[test]
fn matches_brute_force_on_the_real_ipv6_table_and_its_updates() {
    let prefixes = data::ris_v6();
    let (fib, mut w, mut model) = build(&prefixes);
    let mut extra = data::uniform_v6(50_000, 4);
    extra.extend(data::announced_v6(&prefixes, 100_000, 5));
    let sample = prefixes.iter().step_by(3).map(|p| (*p, p.prefix_len()));
    check(&fib, &model, sample, &extra);

    let updates = data::ris_v6_updates();
    let mut touched = Vec::new();
    for (i, u) in updates.iter().take(100_000).enumerate() {
        match *u {
            Update::Announce(p) => {
                let id = i as u32;
                assert_eq!(w.insert(p, id).unwrap(), model.insert(p, id));
                touched.push(p);
            }
            Update::Withdraw(p) => {
                assert_eq!(w.remove(p).unwrap(), model.remove(&p));
                touched.push(p);
            }
        }
        if i % 500 == 499 {
            w.publish(Version(i as u64));
        }
        if i % 25_000 == 24_999 {
            let t = touched.drain(..).map(|p| (p, p.prefix_len()));
            check(&fib, &model, t, &extra[..10_000]);
        }
    }
}

/// A random prefix nested in (or near) the ones already in `pool`, so that covers,
/// more-specifics and siblings all occur.
fn nested<P: Family>(rng: &mut Rng, pool: &[P]) -> P {
    let w = P::W as u64;
    if pool.is_empty() || rng.below(5) == 0 {
        let bits = (rng.next_u64() as u128) << 64 | rng.next_u64() as u128;
        let len = rng.below(w + 1) as u8;
        return P::make(bits, len);
    }
    let base = pool[rng.below(pool.len() as u64) as usize];
    let len = plen(&base);
    let noise = (rng.next_u64() as u128) << 64 | rng.next_u64() as u128;
    let new_len = match rng.below(3) {
        0 => len.saturating_sub(rng.below(8) as u8), // a cover
        1 => (len + 1 + rng.below(12) as u8).min(P::W), // a more-specific
        _ => len,                                    // a sibling (same length)
    };
    let shift = 128 - P::W as u32;
    let noise = (noise >> shift) >> len.min(P::W - 1);
    P::make(base.bits() | noise, new_len)
}

fn churn<P: Family>(seed: u64, steps: usize, dir_bits: u32) {
    let mut rng = Rng::new(seed);
    let mut w = FibWriter::<P>::with_direct_bits(dir_bits);
    let fib = w.fib();
    let mut model: HashMap<P, u32> = HashMap::new();
    let mut pool: Vec<P> = Vec::new();
    let mut touched = Vec::new();
    let mut published = 0;
    for step in 0..steps {
        match rng.below(10) {
            0..=5 => {
                let p = nested(&mut rng, &pool);
                let id = rng.next_u64() as u32;
                assert_eq!(w.insert(p, id).unwrap(), model.insert(p, id));
                pool.push(p);
                touched.push(p);
            }
            6 | 7 if !pool.is_empty() => {
                // replace an existing prefix's next hop
                let p = pool[rng.below(pool.len() as u64) as usize];
                let id = rng.next_u64() as u32;
                assert_eq!(w.insert(p, id).unwrap(), model.insert(p, id));
                touched.push(p);
            }
            _ if !pool.is_empty() => {
                let i = rng.below(pool.len() as u64) as usize;
                let p = pool.swap_remove(i);
                assert_eq!(w.remove(p).unwrap(), model.remove(&p));
                touched.push(p);
            }
            _ => {}
        }
        if rng.below(8) == 0 || step + 1 == steps {
            w.publish(Version(step as u64));
            published = step as u64;
            let t: Vec<_> = touched.drain(..).map(|p| (p, plen(&p))).collect();
            // also the covers still in the pool near the touched ones
            let near: Vec<_> = pool.iter().rev().take(8).map(|p| (*p, plen(p))).collect();
            check(&fib, &model, t.into_iter().chain(near), &[]);
        } else {
            // unpublished changes are invisible
            assert_eq!(fib.version(), Version(published));
        }
    }
}

#[test]
fn random_nested_ipv4_tables_under_churn() {
    for seed in 0..4 {
        churn::<Ipv4Net>(seed, 3_000, [8, 16][seed as usize % 2]);
    }
    // A 24-bit directory rewrites up to 2^(24 - len) entries for a prefix of length len,
    // as DIR-24-8 does: fewer steps of random (often short) prefixes.
    churn::<Ipv4Net>(4, 200, 24);
}

#[test]
fn random_nested_ipv6_tables_under_churn() {
    for seed in 0..4 {
        churn::<Ipv6Net>(100 + seed, 3_000, [8, 16][seed as usize % 2]);
    }
    churn::<Ipv6Net>(105, 300, 20);
    churn::<Ipv6Net>(106, 150, 24);
}

#[test]
fn edge_prefixes_and_errors() {
    let (fib, mut w) = Fib::<Ipv4Net>::new();
    assert_eq!(
        w.insert("10.0.0.1/8".parse().unwrap(), 1),
        Err(Error::InvalidParameter)
    );
    assert_eq!(
        w.remove("10.0.0.1/8".parse().unwrap()),
        Err(Error::InvalidParameter)
    );
    let all: Ipv4Net = "0.0.0.0/0".parse().unwrap();
    let host: Ipv4Net = "255.255.255.255/32".parse().unwrap();
    w.insert(all, u32::MAX).unwrap();
    w.insert(host, 0).unwrap();
    w.publish(Version(1));
    assert_eq!(fib.lookup("1.2.3.4".parse().unwrap()), Some(u32::MAX));
    assert_eq!(fib.lookup("255.255.255.255".parse().unwrap()), Some(0));
    assert_eq!(
        fib.lookup("255.255.255.254".parse().unwrap()),
        Some(u32::MAX)
    );
    w.remove(all).unwrap();
    w.publish(Version(2));
    assert_eq!(fib.lookup("1.2.3.4".parse().unwrap()), None);
    assert_eq!(fib.lookup("255.255.255.255".parse().unwrap()), Some(0));

    // lookup_batch with mismatched lengths answers the common part and clears the rest
    let addrs: Vec<Ipv4Addr> = vec!["255.255.255.255".parse().unwrap()];
    let mut out = [Some(7), Some(7)];
    fib.lookup_batch(&addrs, &mut out);
    assert_eq!(out, [Some(0), None]);

    let (fib6, mut w6) = Fib::<Ipv6Net>::new();
    w6.insert("::/0".parse().unwrap(), 1).unwrap();
    w6.insert(
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"
            .parse()
            .unwrap(),
        2,
    )
    .unwrap();
    w6.publish(Version(1));
    assert_eq!(
        fib6.lookup("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap()),
        Some(2)
    );
    assert_eq!(
        fib6.lookup("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe".parse().unwrap()),
        Some(1)
    );
}

#[test]
fn a_small_table_is_small_and_churn_does_not_grow_it() {
    let prefixes = data::ipv4_prefixes(1_000, 9);
    let (fib, mut w, _) = build(&prefixes);
    let after_build = fib.memory_bytes();
    assert!(
        after_build < 4 << 20,
        "{after_build} bytes for 1,000 prefixes"
    );
    let mut rng = Rng::new(10);
    for round in 0..10_000u64 {
        for _ in 0..10 {
            let p = prefixes[rng.below(prefixes.len() as u64) as usize];
            if rng.below(2) == 0 {
                w.remove(p).unwrap();
            } else {
                w.insert(p, rng.next_u64() as u32).unwrap();
            }
        }
        w.publish(Version(2 + round));
    }
    let after_churn = fib.memory_bytes();
    assert!(
        after_churn < 4 << 20,
        "{after_build} bytes after the build, {after_churn} after 100,000 changes"
    );
}

/// Readers race a writer that, at version v, gives 10.1.0.0/16 the id v and, at even v,
/// adds 10.1.2.0/24 with id 1,000,000 + v (removing it at odd v), while it churns other
/// prefixes so that blocks are recycled and the arena grows. 10.0.0.0/8 (id 7) exists
/// throughout. A lookup of 10.1.2.3 must return the answer of some version between the
/// versions read before and after it; 10.200.0.1 must always find 7 or a more-specific.
/// Every 1,000th version is published in a larger directory while it can grow
/// (`FibWriter::set_direct_bits`), so readers also cross from one layout to another.
#[test]
fn readers_see_only_whole_versions_while_the_writer_runs() {
    let (fib, mut w) = Fib::<Ipv4Net>::new();
    let wide: Ipv4Net = "10.0.0.0/8".parse().unwrap();
    let mid: Ipv4Net = "10.1.0.0/16".parse().unwrap();
    let narrow: Ipv4Net = "10.1.2.0/24".parse().unwrap();
    w.insert(wide, 7).unwrap();
    w.insert(mid, 1).unwrap();
    w.publish(Version(1));
    let first_arena = fib.memory_bytes();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let fib = fib.clone();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let a: Ipv4Addr = "10.1.2.3".parse().unwrap();
                let b: Ipv4Addr = "10.200.0.1".parse().unwrap();
                let mut seen = 0u64;
                let mut out = [None; 2];
                while !stop.load(Ordering::Relaxed) {
                    let before = fib.version().0;
                    let x = if r == 0 {
                        fib.lookup(a)
                    } else {
                        fib.lookup_batch(&[a, b], &mut out);
                        out[0]
                    };
                    let after = fib.version().0;
                    let x = x.expect("10/8 covers the address at every version") as u64;
                    let v = if x >= 1_000_000 { x - 1_000_000 } else { x };
                    assert!(
                        before <= v && v <= after,
                        "answer {x} of version {v} outside [{before}, {after}]"
                    );
                    assert_eq!(x >= 1_000_000, v % 2 == 0, "answer {x} no version had");
                    let y = fib.lookup(b).expect("10/8 covers 10.200.0.1 throughout");
                    assert!(y == 7 || y >= 2_000_000, "answer {y} for 10.200.0.1");
                    seen += 1;
                }
                seen
            })
        })
        .collect();
    let mut rng = Rng::new(77);
    for v in 2..20_000u64 {
        w.insert(mid, v as u32).unwrap();
        if v % 2 == 0 {
            w.insert(narrow, 1_000_000 + v as u32).unwrap();
        } else {
            w.remove(narrow).unwrap();
        }
        for _ in 0..4 {
            let bits = 0x0ac8_0000u32 | (rng.next_u64() as u32 & 0x0007_ffff);
            let len = 17 + rng.below(16) as u8;
            let p = Ipv4Net::new(Ipv4Addr::from(bits), len).unwrap().trunc();
            if rng.below(3) == 0 {
                w.remove(p).unwrap();
            } else {
                w.insert(p, 2_000_000 + rng.below(1000) as u32).unwrap();
            }
        }
        if v % 1_000 == 0 {
            // 16 (as `Fib::new` starts), 18, 20, .. 24, then asks that never shrink it.
            let bits = (16 + 2 * (v / 1_000) as u32).min(24);
            let before = fib.direct_bits();
            w.set_direct_bits(bits, Version(v));
            assert_eq!(fib.direct_bits(), bits.max(before));
            assert_eq!(fib.version(), Version(v));
        } else {
            w.publish(Version(v));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert_eq!(fib.version(), Version(19_999));
    assert_eq!(fib.direct_bits(), 24);
    // the arena was outgrown (and replaced) while the readers ran
    assert!(fib.memory_bytes() > first_arena);
}

mod follow {
    use super::*;
    use rtm::{InterfaceId, ProtocolId, Route, RouteKey, RouteTable};

    fn key(p: Ipv4Net, proto: u32) -> RouteKey<Ipv4Net> {
        RouteKey::new(
            p,
            ProtocolId(proto),
            InterfaceId(1),
            "192.0.2.1".parse().unwrap(),
        )
    }

    fn route(p: Ipv4Net, proto: u32, priority: u32, value: u32) -> Route<Ipv4Net, u32> {
        let mut r = Route::new(key(p, proto), value);
        r.priority = priority;
        r
    }

    /// The Fib's promise after sync with no write running: it answers as the table does.
    fn same_as_table(fib: &Fib<Ipv4Net>, table: &RouteTable<Ipv4Net, u32>, addrs: &[Ipv4Addr]) {
        for a in addrs {
            assert_eq!(fib.lookup(*a), table.lookup(*a).map(|r| r.value), "{a}");
        }
    }

    /// A `next_hop` that panics inside a sync loses no change: the next sync starts with
    /// the change it did not apply, and once `next_hop` stops panicking the Fib answers as
    /// the table does.
    #[test]
    fn a_panic_in_next_hop_loses_no_change() {
        let table = RouteTable::<Ipv4Net, u32>::new();
        let boom = AtomicBool::new(false);
        let (fib, mut follower) = Fib::follow(&table, |r: &Route<Ipv4Net, u32>| {
            if r.value == 666 && boom.load(Ordering::Relaxed) {
                panic!("the embedder's next_hop");
            }
            r.value
        })
        .unwrap();
        let p = |s: &str| s.parse::<Ipv4Net>().unwrap();
        table.add_route(route(p("10.0.0.0/8"), 1, 0, 1)).unwrap();
        assert_eq!(follower.sync(), Ok(1));
        boom.store(true, Ordering::Relaxed);
        table.add_route(route(p("10.1.0.0/16"), 1, 0, 666)).unwrap();
        table.add_route(route(p("10.2.0.0/16"), 1, 0, 2)).unwrap();
        let unwound =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| follower.sync())).is_err();
        assert!(unwound, "next_hop's panic comes out of sync");
        // The next sync starts with that change again: it panics too, and must leave no
        // half-applied Fib behind.
        let unwound =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| follower.sync())).is_err();
        assert!(unwound, "next_hop's panic comes out of the retry");
        assert_eq!(
            fib.lookup("10.2.3.4".parse().unwrap()),
            Some(1),
            "the last version published"
        );
        boom.store(false, Ordering::Relaxed);
        assert!(follower.sync().is_ok());
        let addrs: Vec<Ipv4Addr> = ["10.1.2.3", "10.2.3.4", "10.3.4.5", "11.0.0.1"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        same_as_table(&fib, &table, &addrs);
        assert_eq!(fib.lookup(addrs[0]), Some(666));
        assert_eq!(fib.version(), table.version());
        // And it goes on following.
        table.delete_route(&key(p("10.1.0.0/16"), 1)).unwrap();
        assert_eq!(follower.sync(), Ok(1));
        same_as_table(&fib, &table, &addrs);
        assert_eq!(fib.lookup(addrs[0]), Some(1));
    }

    /// A followed table of 1,000 networks gets a 12-bit directory (16 KiB), not the
    /// 256 KiB of a 16-bit one, and keeps answering as the table does.
    #[test]
    fn a_small_followed_table_gets_a_small_directory() {
        let prefixes = data::ipv4_prefixes(1_000, 9);
        let table = RouteTable::<Ipv4Net, u32>::new();
        for (i, p) in prefixes.iter().enumerate() {
            table.add_route(route(*p, 1, 10, i as u32)).unwrap();
        }
        let (fib, _follower) = Fib::follow(&table, |r: &Route<Ipv4Net, u32>| r.value).unwrap();
        assert_eq!(fib.direct_bits(), 12);
        let bytes = fib.memory_bytes();
        println!("{bytes} bytes for {} prefixes", fib.len());
        assert!(bytes < 160 << 10, "{bytes} bytes for 1,000 prefixes");
        let mut addrs = data::announced_v4(&prefixes, 5_000, 3);
        addrs.extend(data::uniform_v4(5_000, 4));
        same_as_table(&fib, &table, &addrs);
    }

    #[test]
    fn follows_a_table_through_churn() {
        let prefixes = data::mae_west();
        let table = RouteTable::<Ipv4Net, u32>::new();
        for (i, p) in prefixes.iter().enumerate() {
            table.add_route(route(*p, 1, 10, i as u32)).unwrap();
        }
        let (fib, mut follower) = Fib::follow(&table, |r: &Route<Ipv4Net, u32>| r.value).unwrap();
        assert_eq!(fib.len(), prefixes.len());
        assert_eq!(fib.version(), table.version());
        let mut addrs = data::announced_v4(&prefixes, 20_000, 31);
        addrs.extend(data::uniform_v4(5_000, 32));
        same_as_table(&fib, &table, &addrs);

        let mut rng = Rng::new(33);
        for round in 0..20 {
            for _ in 0..200 {
                let p = prefixes[rng.below(prefixes.len() as u64) as usize];
                match rng.below(4) {
                    // a better route from another protocol: the best changes
                    0 => drop(table.add_route(route(p, 2, 5, 1_000_000 + round))),
                    // a worse one: the best does not change
                    1 => drop(table.add_route(route(p, 3, 50, 2_000_000))),
                    2 => drop(table.delete_route(&key(p, 1))),
                    _ => drop(table.delete_route(&key(p, 2))),
                }
            }
            follower.sync().unwrap();
            assert_eq!(fib.version(), table.version());
            assert_eq!(fib.len(), table.network_count());
            same_as_table(&fib, &table, &addrs[..5_000]);
        }
        assert_eq!(follower.sync(), Ok(0));
    }

    /// Networks whose only route changes (its rank gets worse or better, it stays the
    /// best), routes disabled and enabled again, a second route that comes and goes, next
    /// hops that change and ones that stay; the follower syncs after 1 to 16 commits and
    /// then answers as the table does for every network touched. The prefixes spread
    /// over the whole space, so more chunks change than keep a spare block, and the
    /// arena (trimmed after the build) fills up.
    #[test]
    fn follows_sole_and_disabled_routes_through_short_syncs() {
        let prefixes = data::ipv4_prefixes(4_000, 42);
        let table = RouteTable::<Ipv4Net, u32>::new();
        for (i, p) in prefixes.iter().enumerate() {
            table.add_route(route(*p, 1, 10, i as u32 % 64)).unwrap();
        }
        // Four values share a next hop: many changes keep it, some do not.
        let next_hop = |r: &Route<Ipv4Net, u32>| r.value / 4;
        let (fib, mut follower) = Fib::follow(&table, next_hop).unwrap();
        let agrees = |p: &Ipv4Net| {
            for a in [p.network(), p.broadcast()] {
                assert_eq!(fib.lookup(a), table.lookup(a).map(|r| next_hop(&r)), "{a}");
            }
        };
        let mut rng = Rng::new(41);
        let (mut touched, mut until) = (Vec::new(), 1);
        for _ in 0..20_000 {
            let p = prefixes[rng.below(prefixes.len() as u64) as usize];
            let v = rng.below(64) as u32;
            match rng.below(8) {
                // the network's own route again, its metric up or down
                0..=3 => {
                    let mut r = route(p, 1, 10, v);
                    r.metric = v;
                    table.add_route(r).unwrap();
                }
                4 => {
                    let mut r = route(p, 1, 10, v);
                    r.enabled = false;
                    table.add_route(r).unwrap();
                }
                // a second route, better or worse than the first
                5 => {
                    let r = route(p, 2, 5 + rng.below(10) as u32, v);
                    table.add_route(r).unwrap();
                }
                6 => drop(table.delete_route(&key(p, 2))),
                _ => drop(table.delete_route(&key(p, 1))),
            }
            touched.push(p);
            if touched.len() == until {
                follower.sync().unwrap();
                assert_eq!(fib.version(), table.version());
                touched.iter().for_each(agrees);
                touched.clear();
                until = 1 + rng.below(16) as usize;
            }
        }
        follower.sync().unwrap();
        prefixes.iter().for_each(agrees);
    }

    #[test]
    fn a_lagged_follower_rebuilds() {
        let table = RouteTable::<Ipv4Net, u32>::builder()
            .journal_capacity(64)
            .build();
        let p = |s: &str| s.parse::<Ipv4Net>().unwrap();
        table.add_route(route(p("10.0.0.0/8"), 1, 10, 1)).unwrap();
        table.add_route(route(p("10.1.0.0/16"), 1, 10, 2)).unwrap();
        let (fib, mut follower) = Fib::follow(&table, |r: &Route<Ipv4Net, u32>| r.value).unwrap();
        // more commits than the journal holds: the feed lags
        for i in 0..200u32 {
            let q = Ipv4Net::new(Ipv4Addr::from(0x0b00_0000 + (i << 8)), 24).unwrap();
            table.add_route(route(q, 1, 10, 100 + i)).unwrap();
        }
        table.delete_route(&key(p("10.1.0.0/16"), 1)).unwrap();
        assert_eq!(fib.lookup("10.1.2.3".parse().unwrap()), Some(2));
        assert_eq!(follower.sync(), Ok(201)); // networks in the rebuilt Fib
        assert_eq!(fib.len(), 201);
        assert_eq!(fib.version(), table.version());
        assert_eq!(fib.lookup("10.1.2.3".parse().unwrap()), Some(1));
        assert_eq!(fib.lookup("11.0.5.9".parse().unwrap()), Some(105));
        // and it goes on following
        table.add_route(route(p("10.1.2.0/24"), 1, 10, 9)).unwrap();
        assert_eq!(follower.sync(), Ok(1));
        assert_eq!(fib.lookup("10.1.2.3".parse().unwrap()), Some(9));
    }

    #[test]
    fn follow_needs_two_free_slots() {
        let table = RouteTable::<Ipv4Net, u32>::with_max_enumerations(1);
        let err = Fib::follow(&table, |r: &Route<Ipv4Net, u32>| r.value).map(|_| ());
        assert_eq!(err, Err(Error::NoSystemResources));
        let table = RouteTable::<Ipv4Net, u32>::with_max_enumerations(2);
        let (_fib, _follower) = Fib::follow(&table, |r: &Route<Ipv4Net, u32>| r.value).unwrap();
        assert_eq!(table.stats().open_enumerations, 1);
    }

    /// A table writer, a follower thread and readers at once: 10.0.0.0/8 exists
    /// throughout, so a lookup inside it never finds nothing, whatever the follower is
    /// applying.
    #[test]
    fn readers_never_miss_a_covering_route_while_the_follower_runs() {
        let table = RouteTable::<Ipv4Net, u32>::builder()
            .journal_capacity(1 << 12)
            .build();
        table
            .add_route(route("10.0.0.0/8".parse().unwrap(), 1, 10, 7))
            .unwrap();
        let (fib, mut follower) = Fib::follow(&table, |r: &Route<Ipv4Net, u32>| r.value).unwrap();
        let stop = AtomicBool::new(false);
        let reading = AtomicBool::new(false);
        std::thread::scope(|s| {
            let follower_thread = s.spawn(|| {
                let mut syncs = 0;
                while !stop.load(Ordering::Relaxed) {
                    follower.sync().unwrap();
                    syncs += 1;
                }
                follower.sync().unwrap();
                syncs
            });
            let reader = s.spawn(|| {
                let mut rng = Rng::new(5);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let a = Ipv4Addr::from(0x0a00_0000 | (rng.next_u64() as u32 & 0x00ff_ffff));
                    let x = fib.lookup(a).expect("10/8 covers every address here");
                    assert!(x == 7 || (100..100 + 4096).contains(&x), "{x} for {a}");
                    n += 1;
                    reading.store(true, Ordering::Release);
                }
                n
            });
            // The writes start once the reader reads (a busy machine may schedule the
            // reader late), so that lookups overlap them.
            while !reading.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
            let mut rng = Rng::new(6);
            for i in 0..20_000u32 {
                let bits = 0x0a00_0000 | (rng.next_u64() as u32 & 0x00ff_ffff);
                let q = Ipv4Net::new(Ipv4Addr::from(bits), 12 + rng.below(21) as u8)
                    .unwrap()
                    .trunc();
                if rng.below(3) == 0 {
                    let _ = table.delete_route(&key(q, 1));
                } else {
                    table.add_route(route(q, 1, 10, 100 + i % 4096)).unwrap();
                }
            }
            stop.store(true, Ordering::Relaxed);
            assert!(follower_thread.join().unwrap() > 0);
            assert!(reader.join().unwrap() > 0);
        });
        // The table outgrew the small directory it started with (2^13 networks): the
        // follower laid the Fib out again while the reader ran.
        assert!(
            table.network_count() >= 1 << 13,
            "{}",
            table.network_count()
        );
        assert_eq!(fib.direct_bits(), 16);
        let addrs = data::uniform_v4(2_000, 8)
            .into_iter()
            .map(|a| Ipv4Addr::from(0x0a00_0000 | (u32::from(a) & 0x00ff_ffff)))
            .collect::<Vec<_>>();
        same_as_table(&fib, &table, &addrs);
        assert_eq!(fib.version(), table.version());
    }

    /// With no follower thread at all, a helped Fib is at the table's version after every
    /// write (single routes, a batch, a block delete), and answers as the table does.
    #[test]
    fn writers_alone_keep_a_helped_fib_at_the_tables_version() {
        let prefixes = data::mae_west();
        let table = Arc::new(RouteTable::<Ipv4Net, u32>::new());
        for (i, p) in prefixes.iter().enumerate().step_by(2) {
            table.add_route(route(*p, 1, 10, i as u32)).unwrap();
        }
        let (fib, mut follower) = Fib::follow_helped(Arc::clone(&table), |r| r.value).unwrap();
        assert_eq!(fib.version(), table.version());
        let mut addrs = data::announced_v4(&prefixes, 10_000, 41);
        addrs.extend(data::uniform_v4(2_000, 42));
        let mut rng = Rng::new(43);
        for round in 0..10u32 {
            for _ in 0..300 {
                let p = prefixes[rng.below(prefixes.len() as u64) as usize];
                match rng.below(4) {
                    0 => drop(table.add_route(route(p, 2, 5, 1_000_000 + round))),
                    1 => drop(table.add_route(route(p, 3, 50, 2_000_000))),
                    2 => drop(table.delete_route(&key(p, 1))),
                    _ => drop(table.delete_route(&key(p, 2))),
                }
                assert_eq!(fib.version(), table.version());
            }
            // A batch of 1,000 keys: its writer applies all of it.
            let mut b = rtm::Batch::new();
            for _ in 0..1_000 {
                let p = prefixes[rng.below(prefixes.len() as u64) as usize];
                b.add_route(route(p, 4, 1, 3_000_000 + round));
            }
            table.commit(b).unwrap();
            assert_eq!(fib.version(), table.version());
            assert_eq!(fib.len(), table.network_count());
            same_as_table(&fib, &table, &addrs);
        }
        // A block delete is a commit too.
        table
            .delete_routes(rtm::Criteria::all().protocol(ProtocolId(4)))
            .unwrap();
        assert_eq!(fib.version(), table.version());
        same_as_table(&fib, &table, &addrs);
        assert!(follower.applied_by_writers() > 3_000);
        assert_eq!(follower.sync(), Ok(0), "writers left nothing");
    }

    /// Writers on two threads, no follower thread: each applies what it finds pending, or
    /// leaves it to the one applying. After they stop, every further write applies up to
    /// 64 changes more than its own, so the Fib reaches the table's version within
    /// backlog / 64 + 1 writes of one thread, and answers as the table does.
    #[test]
    fn concurrent_writers_alone_bring_a_helped_fib_to_the_tables_version() {
        let table = Arc::new(RouteTable::<Ipv4Net, u32>::new());
        let (fib, follower) = Fib::follow_helped(Arc::clone(&table), |r| r.value).unwrap();
        let writes = 2_000u32;
        std::thread::scope(|s| {
            for t in 0..2u32 {
                let table = &table;
                s.spawn(move || {
                    let mut rng = Rng::new(50 + u64::from(t));
                    for i in 0..writes {
                        let bits = 0x0a00_0000 | (rng.next_u64() as u32 & 0x00ff_ffff);
                        let q = Ipv4Net::new(Ipv4Addr::from(bits), 12 + rng.below(13) as u8)
                            .unwrap()
                            .trunc();
                        if rng.below(3) == 0 {
                            let _ = table.delete_route(&key(q, 1 + t));
                        } else {
                            table.add_route(route(q, 1 + t, 10, i)).unwrap();
                        }
                    }
                });
            }
        });
        let filler = key("192.0.2.0/24".parse().unwrap(), 9);
        let mut extra = 0;
        while fib.version() != table.version() {
            assert!(extra <= 2 * writes / 64 + 1, "the Fib does not catch up");
            table.add_route(Route::new(filler, extra)).unwrap();
            extra += 1;
        }
        assert!(follower.applied_by_writers() > 0);
        let addrs = data::uniform_v4(2_000, 51)
            .into_iter()
            .map(|a| Ipv4Addr::from(0x0a00_0000 | (u32::from(a) & 0x00ff_ffff)))
            .collect::<Vec<_>>();
        same_as_table(&fib, &table, &addrs);
    }

    /// A `next_hop` that panics inside a write does not come out of the write; the change
    /// stays for the follower's sync, which surfaces the panic, and nothing is lost.
    #[test]
    fn a_panic_in_next_hop_inside_a_write_stays_in_the_follower() {
        let table = Arc::new(RouteTable::<Ipv4Net, u32>::new());
        let boom = Arc::new(AtomicBool::new(false));
        let b = Arc::clone(&boom);
        let (fib, mut follower) = Fib::follow_helped(Arc::clone(&table), move |r| {
            if r.value == 666 && b.load(Ordering::Relaxed) {
                panic!("the embedder's next_hop");
            }
            r.value
        })
        .unwrap();
        let p = |s: &str| s.parse::<Ipv4Net>().unwrap();
        table.add_route(route(p("10.0.0.0/8"), 1, 0, 1)).unwrap();
        assert_eq!(fib.version(), table.version());
        boom.store(true, Ordering::Relaxed);
        let v = fib.version();
        assert!(table.add_route(route(p("10.1.0.0/16"), 1, 0, 666)).is_ok());
        assert_eq!(fib.version(), v, "the panicking change is not published");
        let unwound =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| follower.sync())).is_err();
        assert!(unwound, "the sync meets the change again");
        boom.store(false, Ordering::Relaxed);
        table.add_route(route(p("10.2.0.0/16"), 1, 0, 2)).unwrap();
        assert_eq!(fib.version(), table.version());
        assert_eq!(fib.lookup("10.1.2.3".parse().unwrap()), Some(666));
        assert_eq!(fib.lookup("10.2.3.4".parse().unwrap()), Some(2));
        assert_eq!(follower.sync(), Ok(0));
    }

    /// Writers apply every change of a helped Fib, but only the follower thread's sync
    /// grows its directory: a table that grows from empty past 2^13 networks gets a
    /// 16-bit directory at the next sync, which has nothing else to apply.
    #[test]
    fn a_sync_grows_the_directory_of_a_helped_fib() {
        let table = Arc::new(RouteTable::<Ipv4Net, u32>::new());
        let (fib, mut follower) = Fib::follow_helped(Arc::clone(&table), |r| r.value).unwrap();
        assert_eq!(fib.direct_bits(), 12);
        let prefixes = data::ipv4_prefixes(9_000, 21);
        for (i, p) in prefixes.iter().enumerate() {
            table.add_route(route(*p, 1, 10, i as u32)).unwrap();
        }
        assert!(
            table.network_count() >= 1 << 13,
            "{}",
            table.network_count()
        );
        assert_eq!(fib.version(), table.version());
        assert_eq!(fib.direct_bits(), 12);
        // The nap of a follower thread's `sync_timeout` does not hide the growth.
        assert_eq!(
            follower.sync_timeout(std::time::Duration::from_millis(1)),
            Ok(0)
        );
        assert_eq!(fib.direct_bits(), 16);
        assert_eq!(follower.sync(), Ok(0));
        assert_eq!(fib.version(), table.version());
        let mut addrs = data::announced_v4(&prefixes, 5_000, 22);
        addrs.extend(data::uniform_v4(5_000, 23));
        same_as_table(&fib, &table, &addrs);
        // A clone made now takes the directory's shape with it.
        assert_eq!(fib.clone().direct_bits(), 16);
    }

    /// One helped follower per table; once it is dropped, writers stop helping it and
    /// another can be made.
    #[test]
    fn one_helped_follower_per_table() {
        let table = Arc::new(RouteTable::<Ipv4Net, u32>::new());
        let (fib, follower) = Fib::follow_helped(Arc::clone(&table), |r| r.value).unwrap();
        assert_eq!(
            Fib::follow_helped(Arc::clone(&table), |r| r.value).err(),
            Some(Error::Busy)
        );
        drop(follower);
        let p: Ipv4Net = "10.0.0.0/8".parse().unwrap();
        table.add_route(route(p, 1, 0, 7)).unwrap();
        assert_eq!(
            fib.lookup("10.1.1.1".parse().unwrap()),
            None,
            "nobody helps a dropped follower"
        );
        let (fib, _follower) = Fib::follow_helped(Arc::clone(&table), |r| r.value).unwrap();
        assert_eq!(fib.lookup("10.1.1.1".parse().unwrap()), Some(7));
        table.delete_route(&key(p, 1)).unwrap();
        assert_eq!(fib.lookup("10.1.1.1".parse().unwrap()), None);
    }
}

#[test]
fn handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Fib<Ipv4Net>>();
    send_sync::<Fib<Ipv6Net>>();
    send::<FibWriter<Ipv6Net>>();
    send::<rtm::FibFollower<'static, Ipv4Net, u64>>();
    // a clone is another handle to the same table
    let (fib, mut w) = Fib::<Ipv4Net>::new();
    let other = fib.clone();
    w.insert("10.0.0.0/8".parse().unwrap(), 3).unwrap();
    w.publish(Version(1));
    assert_eq!(other.lookup("10.0.0.1".parse().unwrap()), Some(3));
    drop(fib);
    assert_eq!(other.len(), 1);
}

//! Forwarding lookups on the real RIPE RIS tables (source: RIPE NCC RIS, see
//! benches/data/README.md): rtm's `Fib` beside prefix-trie's `PrefixMap::get_lpm`, a plain
//! DIR-24-8 array in DPDK rte_lpm's layout (written here as the reference), and
//! `RouteTable::lookup`; single lookups and `lookup_batch`; uniform and announced
//! addresses; plus what one crossbeam-epoch pin costs, build times and bytes per prefix.
//!
//! ```text
//! CARGO_TARGET_DIR=target/bench cargo bench --bench fib -- --warm-up-time 1 --measurement-time 3
//! python3 benches/medians.py target/bench/criterion
//! ```
//!
//! Each benchmark looks up the same 16,384 addresses per iteration (throughput: addresses).

mod data;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, Throughput};
use prefix_trie::PrefixMap;
use rtm::{FibWriter, Ipv4Net, Ipv6Net, RouteTable, Version};

struct Counting;

static BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is only
// a statistic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        BYTES.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        BYTES.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        BYTES.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: `p` was allocated by `System` with `l`.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns its result, the seconds it took and the bytes it left allocated.
fn measured<T>(f: impl FnOnce() -> T) -> (T, f64, isize) {
    let b = BYTES.load(Ordering::Relaxed);
    let t = Instant::now();
    let v = f();
    (
        v,
        t.elapsed().as_secs_f64(),
        BYTES.load(Ordering::Relaxed) - b,
    )
}

/// A plain DIR-24-8 table as in DPDK's rte_lpm: 2^24 entries indexed by the first 24 bits,
/// and groups of 256 entries for the last 8 bits of longer prefixes. An entry is
/// `VALID | EXT? | 24-bit value`; with EXT the value is a group number. Built once from a
/// prefix list (no updates), as the fastest reference there is.
struct Dir24 {
    tbl24: Vec<u32>,
    tbl8: Vec<u32>,
}

const VALID: u32 = 1 << 31;
const EXT: u32 = 1 << 30;

impl Dir24 {
    fn build(prefixes: &[(Ipv4Net, u32)]) -> Self {
        let mut sorted: Vec<_> = prefixes.to_vec();
        sorted.sort_by_key(|(p, _)| p.prefix_len());
        let mut d = Dir24 {
            tbl24: vec![0; 1 << 24],
            tbl8: Vec::new(),
        };
        for (p, id) in sorted {
            assert!(id < 1 << 24);
            let a = u32::from(p.network());
            let len = p.prefix_len() as u32;
            if len <= 24 {
                let first = (a >> 8) as usize;
                let n = 1usize << (24 - len);
                // shorter prefixes come first, and no group exists yet
                d.tbl24[first..first + n].fill(VALID | id);
            } else {
                let i = (a >> 8) as usize;
                if d.tbl24[i] & EXT == 0 {
                    let g = d.tbl8.len() / 256;
                    let fill = d.tbl24[i];
                    d.tbl8.extend(std::iter::repeat_n(fill, 256));
                    d.tbl24[i] = VALID | EXT | g as u32;
                }
                let g = (d.tbl24[i] & 0xff_ffff) as usize;
                let first = g * 256 + (a & 0xff) as usize;
                let n = 1usize << (32 - len);
                d.tbl8[first..first + n].fill(VALID | id);
            }
        }
        d
    }

    #[inline]
    fn lookup(&self, a: Ipv4Addr) -> Option<u32> {
        let a = u32::from(a);
        let mut e = self.tbl24[(a >> 8) as usize];
        if e & EXT != 0 {
            e = self.tbl8[(e & 0xff_ffff) as usize * 256 + (a & 0xff) as usize];
        }
        (e & VALID != 0).then_some(e & 0xff_ffff)
    }
}

const N: usize = 16_384;

/// One contender of an interleaved comparison: a name and a pass over the addresses that
/// returns a checksum of its answers.
type Pass<'a> = (&'static str, Box<dyn FnMut() -> u64 + 'a>);

/// Runs every contender's pass in turn, `rounds` times (each time the best of 3 passes, so
/// that a preempted pass does not count), and prints each one's median time per address
/// and the median over rounds of its ratio to the first contender. Interleaving puts every
/// contender under the same load, round by round; the ratios are the figures to read.
fn interleaved(title: &str, rounds: usize, passes: &mut [Pass<'_>]) {
    let mut times = vec![Vec::with_capacity(rounds); passes.len()];
    let mut sums = vec![0u64; passes.len()];
    for _ in 0..rounds {
        for (i, (_, pass)) in passes.iter_mut().enumerate() {
            let mut best = f64::MAX;
            for _ in 0..3 {
                let t = Instant::now();
                sums[i] = black_box(pass());
                best = best.min(t.elapsed().as_secs_f64() * 1e9 / N as f64);
            }
            times[i].push(best);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("{title}: {rounds} interleaved rounds, best of 3 passes of {N} addresses each");
    for (i, (name, _)) in passes.iter().enumerate() {
        let mut ratios: Vec<f64> = times[i]
            .iter()
            .zip(&times[0])
            .map(|(t, base)| t / base)
            .collect();
        let r = median(&mut ratios);
        let t = median(&mut times[i].clone());
        println!(
            "  {name:<22} {t:>8.2} ns/address   {r:>6.3}x {}   (checksum {:x})",
            passes[0].0, sums[i]
        );
    }
}

/// A checksum of lookup answers, so that no pass can be optimized away.
#[inline(always)]
fn sum(acc: u64, answer: Option<u32>) -> u64 {
    acc.wrapping_mul(31)
        .wrapping_add(answer.map_or(0, |v| v as u64 + 1))
}

/// Rounds of the interleaved comparisons (`FIB_ROUNDS`, default 15; 0 skips them).
fn rounds() -> usize {
    std::env::var("FIB_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15)
}

/// The next-hop id of the `i`th prefix, whose route leaves by `interface`: by default a
/// distinct id per prefix (the hardest case: no two prefixes share a leaf); with
/// `FIB_IDS=interface`, the interface (16 values), as a router with 16 adjacencies has.
fn id(i: usize, interface: u32) -> u32 {
    match std::env::var("FIB_IDS").as_deref() {
        Ok("interface") => interface,
        _ => i as u32,
    }
}

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(N as u64));
    g
}

fn v4(c: &mut Criterion) {
    let prefixes = data::ris_v4();
    let with_ids: Vec<(Ipv4Net, u32)> = prefixes
        .iter()
        .enumerate()
        .map(|(i, p)| (*p, id(i, data::key_v4(*p).interface.0)))
        .collect();

    let (fib, fib_s, fib_b) = measured(|| {
        let mut w = FibWriter::<Ipv4Net>::for_prefixes(with_ids.len());
        for (p, id) in &with_ids {
            w.insert(*p, *id).unwrap();
        }
        w.publish(Version(1));
        let fib = w.fib();
        (fib, w)
    });
    let (fib, writer) = fib;
    let (trie, trie_s, trie_b) = measured(|| {
        let mut t = PrefixMap::<Ipv4Net, u32>::new();
        for (p, id) in &with_ids {
            t.insert(*p, *id);
        }
        t
    });
    let (dir, dir_s, dir_b) = measured(|| Dir24::build(&with_ids));
    let (table, table_s, table_b) = measured(|| {
        let t = RouteTable::<Ipv4Net, u64>::new();
        for (p, id) in &with_ids {
            t.add_route(data::route(data::key_v4(*p), *id as u64))
                .unwrap();
        }
        t
    });
    let n = prefixes.len() as f64;
    println!("IPv4 RIS table: {} prefixes", prefixes.len());
    println!(
        "  build: Fib {fib_s:.2} s, prefix-trie {trie_s:.2} s, DIR-24-8 {dir_s:.2} s, RouteTable {table_s:.2} s"
    );
    println!(
        "  bytes/prefix: Fib arena {:.1} (allocated {:.1}, writer index included), prefix-trie {:.1}, DIR-24-8 {:.1}, RouteTable {:.1}",
        fib.memory_bytes() as f64 / n,
        fib_b as f64 / n,
        trie_b as f64 / n,
        dir_b as f64 / n,
        table_b as f64 / n
    );

    let uniform = data::uniform_v4(N, 11);
    let announced = data::announced_v4(&prefixes, N, 12);
    for a in uniform.iter().chain(&announced) {
        let want = trie.get_lpm(&Ipv4Net::from(*a)).map(|(_, v)| *v);
        assert_eq!(fib.lookup(*a), want, "{a}");
        assert_eq!(dir.lookup(*a), want, "{a}");
    }

    for (name, addrs) in [("v4_uniform", &uniform), ("v4_announced", &announced)] {
        let mut out = vec![None; N];
        let mut passes: Vec<Pass<'_>> = vec![
            (
                "DIR-24-8 array",
                Box::new(|| addrs.iter().fold(0, |s, a| sum(s, dir.lookup(*a)))),
            ),
            (
                "Fib::lookup",
                Box::new(|| addrs.iter().fold(0, |s, a| sum(s, fib.lookup(*a)))),
            ),
            (
                "Fib::lookup_batch",
                Box::new(|| {
                    fib.lookup_batch(addrs, &mut out);
                    out.iter().fold(0, |s, a| sum(s, *a))
                }),
            ),
            (
                "prefix-trie get_lpm",
                Box::new(|| {
                    addrs.iter().fold(0, |s, a| {
                        sum(s, trie.get_lpm(&Ipv4Net::from(*a)).map(|(_, v)| *v))
                    })
                }),
            ),
        ];
        if rounds() > 0 {
            interleaved(&format!("fib_{name}"), rounds(), &mut passes);
        }
        drop(passes);
        let mut g = group(c, &format!("fib_{name}"));
        g.bench_function("fib_lookup", |b| {
            b.iter(|| {
                for a in addrs {
                    black_box(fib.lookup(*a));
                }
            })
        });
        let mut out = vec![None; N];
        g.bench_function("fib_lookup_batch", |b| {
            b.iter(|| {
                fib.lookup_batch(addrs, &mut out);
                black_box(&out);
            })
        });
        g.bench_function("prefix_trie_get_lpm", |b| {
            b.iter(|| {
                for a in addrs {
                    black_box(trie.get_lpm(&Ipv4Net::from(*a)).map(|(_, v)| *v));
                }
            })
        });
        g.bench_function("dir24_8", |b| {
            b.iter(|| {
                for a in addrs {
                    black_box(dir.lookup(*a));
                }
            })
        });
        g.bench_function("fib_lookup_in_epoch_pin", |b| {
            b.iter(|| {
                for a in addrs {
                    let _guard = crossbeam_epoch::pin();
                    black_box(fib.lookup(*a));
                }
            })
        });
        g.bench_function("route_table_lookup", |b| {
            b.iter(|| {
                for a in &addrs[..N / 16] {
                    black_box(table.lookup(*a).map(|r| r.value));
                }
            })
        });
        g.finish();
    }
    drop(writer);
}

fn v6(c: &mut Criterion) {
    let prefixes = data::ris_v6();
    let (fib, fib_s, fib_b) = measured(|| {
        let mut w = FibWriter::<Ipv6Net>::for_prefixes(prefixes.len());
        for (i, p) in prefixes.iter().enumerate() {
            w.insert(*p, id(i, data::key_v6(*p).interface.0)).unwrap();
        }
        w.publish(Version(1));
        (w.fib(), w)
    });
    let (fib, writer) = fib;
    let (trie, trie_s, trie_b) = measured(|| {
        let mut t = PrefixMap::<Ipv6Net, u32>::new();
        for (i, p) in prefixes.iter().enumerate() {
            t.insert(*p, id(i, data::key_v6(*p).interface.0));
        }
        t
    });
    let (table, table_s, table_b) = measured(|| {
        let t = RouteTable::<Ipv6Net, u64>::new();
        for (i, p) in prefixes.iter().enumerate() {
            t.add_route(data::route(data::key_v6(*p), i as u64))
                .unwrap();
        }
        t
    });
    let n = prefixes.len() as f64;
    println!("IPv6 RIS table: {} prefixes", prefixes.len());
    println!("  build: Fib {fib_s:.2} s, prefix-trie {trie_s:.2} s, RouteTable {table_s:.2} s");
    println!(
        "  bytes/prefix: Fib arena {:.1} (allocated {:.1}, writer index included), prefix-trie {:.1}, RouteTable {:.1}",
        fib.memory_bytes() as f64 / n,
        fib_b as f64 / n,
        trie_b as f64 / n,
        table_b as f64 / n
    );
    let uniform = data::uniform_v6(N, 21);
    let announced = data::announced_v6(&prefixes, N, 22);
    for a in uniform.iter().chain(&announced) {
        let want = trie.get_lpm(&Ipv6Net::from(*a)).map(|(_, v)| *v);
        assert_eq!(fib.lookup(*a), want, "{a}");
    }
    let addr_sets: [(&str, &Vec<Ipv6Addr>); 2] =
        [("v6_uniform", &uniform), ("v6_announced", &announced)];
    for (name, addrs) in addr_sets {
        let mut out = vec![None; N];
        let mut passes: Vec<Pass<'_>> = vec![
            (
                "prefix-trie get_lpm",
                Box::new(|| {
                    addrs.iter().fold(0, |s, a| {
                        sum(s, trie.get_lpm(&Ipv6Net::from(*a)).map(|(_, v)| *v))
                    })
                }),
            ),
            (
                "Fib::lookup",
                Box::new(|| addrs.iter().fold(0, |s, a| sum(s, fib.lookup(*a)))),
            ),
            (
                "Fib::lookup_batch",
                Box::new(|| {
                    fib.lookup_batch(addrs, &mut out);
                    out.iter().fold(0, |s, a| sum(s, *a))
                }),
            ),
        ];
        if rounds() > 0 {
            interleaved(&format!("fib_{name}"), rounds(), &mut passes);
        }
        drop(passes);
        let mut g = group(c, &format!("fib_{name}"));
        g.bench_function("fib_lookup", |b| {
            b.iter(|| {
                for a in addrs {
                    black_box(fib.lookup(*a));
                }
            })
        });
        let mut out = vec![None; N];
        g.bench_function("fib_lookup_batch", |b| {
            b.iter(|| {
                fib.lookup_batch(addrs, &mut out);
                black_box(&out);
            })
        });
        g.bench_function("prefix_trie_get_lpm", |b| {
            b.iter(|| {
                for a in addrs {
                    black_box(trie.get_lpm(&Ipv6Net::from(*a)).map(|(_, v)| *v));
                }
            })
        });
        g.bench_function("route_table_lookup", |b| {
            b.iter(|| {
                for a in &addrs[..N / 16] {
                    black_box(table.lookup(*a).map(|r| r.value));
                }
            })
        });
        g.finish();
    }
    drop(writer);
}

/// What a crossbeam-epoch pin costs alone, per address (the price a Fib that freed its
/// memory through crossbeam-epoch would pay on every lookup).
fn pin(c: &mut Criterion) {
    let mut g = group(c, "fib_epoch_pin");
    g.bench_function("pin_unpin", |b| {
        b.iter(|| {
            for _ in 0..N {
                black_box(crossbeam_epoch::pin());
            }
        })
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    pin(&mut c);
    v4(&mut c);
    v6(&mut c);
    c.final_summary();
}

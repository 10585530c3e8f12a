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
//! Each benchmark looks up the same 16,384 addresses per iteration (throughput: addresses):
//! a hot working set, whose lines stay in cache. The cold comparisons (`fib_cold_*`, IPv4
//! and IPv6, interleaved rounds only) pass once over 2,000,000 distinct random addresses
//! (`FIB_COLD`; 0 skips them), uniform and announced, so that nearly every lookup starts
//! from lines and pages not touched since the last pass, as a router's traffic does.
//!
//! Before the lookups, the section `fib_update_throughput` (a plain timing harness, run
//! unless a filter that does not match its name is given) replays the real BGP day (the
//! 1,393,421 updates the same peer sent in the next 24 hours) onto the real IPv4 table:
//! the table alone, then the table with a `Fib::follow` follower synced on the writer's
//! thread every K writes, then with the follower on its own thread calling
//! `sync_timeout` (the writer at full speed, some 1.4 million updates a second, and paced
//! at 100,000 a second: a full table in ten seconds, the day's average rate times 6,000),
//! in rounds that alternate the modes. It prints each mode's median time, its ratio to
//! the table alone, the follower's cost per best-route change and, with the follower on
//! its own thread, the time from each commit to a reader's first sight of it in the Fib.
//! `-- --quick` replays the first 300,000 updates, one round; `FIB_UPDATE_MODES=table,64`
//! runs some modes only (`table`, `thread`, `thread-first`: the follower thread at
//! `SCHED_FIFO`, ahead of the machine's other tasks, `thread@R`: paced at R updates a
//! second, K, or `Knew`: sync every K writes with next hops that change on nearly every
//! update).
//!
//! ```text
//! cargo bench --bench fib -- update_throughput            # the replay section only
//! cargo bench --bench fib -- update_throughput --quick
//! ```

mod counting;
mod data;

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, Throughput};
use data::Update;
use prefix_trie::PrefixMap;
use rtm::{Error, Fib, FibWriter, Ipv4Net, Ipv6Net, Route, RouteTable, Version};

/// Runs `f` and returns its result, the seconds it took and the bytes it left allocated.
fn measured<T>(f: impl FnOnce() -> T) -> (T, f64, isize) {
    let b = counting::bytes();
    let t = Instant::now();
    let v = f();
    (v, t.elapsed().as_secs_f64(), counting::bytes() - b)
}

/// A plain DIR-24-8 table as in DPDK's rte_lpm: 2^24 entries indexed by the first 24 bits,
/// and groups of 256 entries for the last 8 bits of longer prefixes. An entry is
/// `VALID | EXT? | 24-bit value`; with EXT the value is a group number. Built once from a
/// prefix list (no updates), as the fastest reference there is.
struct Dir24<T = Vec<u32>> {
    tbl24: T,
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

    /// The same table with its 64 MiB first level on 2 MiB pages (where the system gives
    /// them), as DPDK allocates it; the Fib's arena asks for them too.
    fn on_huge_pages(&self) -> Dir24<HugeU32> {
        Dir24 {
            tbl24: HugeU32::copy_of(&self.tbl24),
            tbl8: self.tbl8.clone(),
        }
    }
}

impl<T: AsRef<[u32]>> Dir24<T> {
    #[inline]
    fn lookup(&self, a: Ipv4Addr) -> Option<u32> {
        let a = u32::from(a);
        let mut e = self.tbl24.as_ref()[(a >> 8) as usize];
        if e & EXT != 0 {
            e = self.tbl8[(e & 0xff_ffff) as usize * 256 + (a & 0xff) as usize];
        }
        (e & VALID != 0).then_some(e & 0xff_ffff)
    }
}

/// An array of `u32`s in an anonymous mapping, starting on a 2 MiB boundary inside it and
/// advised `MADV_HUGEPAGE` (transparent huge pages where the kernel allows them).
struct HugeU32 {
    map: *mut libc::c_void,
    map_len: usize,
    ptr: *mut u32,
    len: usize,
}

impl HugeU32 {
    fn copy_of(v: &[u32]) -> Self {
        const HUGE: usize = 2 << 20;
        let bytes = (v.len() * 4).next_multiple_of(HUGE);
        let map_len = bytes + HUGE;
        // SAFETY: a new anonymous mapping at an address of the kernel's choosing touches no
        // memory of this process.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(map != libc::MAP_FAILED, "mmap failed");
        // SAFETY: the offset is below `HUGE`, so `start..start + bytes` lies inside the
        // `bytes + HUGE` bytes just mapped.
        let start = unsafe { map.cast::<u8>().add((HUGE - map as usize % HUGE) % HUGE) };
        // SAFETY: `start..start + bytes` is inside the mapping; advice changes no data.
        unsafe { libc::madvise(start.cast(), bytes, libc::MADV_HUGEPAGE) };
        let ptr = start.cast::<u32>();
        // SAFETY: `v.len() * 4 <= bytes` bytes are written into the run, which is
        // writable, aligned for `u32` and refers to nothing else.
        unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), ptr, v.len()) };
        HugeU32 {
            map,
            map_len,
            ptr,
            len: v.len(),
        }
    }
}

impl AsRef<[u32]> for HugeU32 {
    fn as_ref(&self) -> &[u32] {
        // SAFETY: `ptr` starts `len` initialized `u32`s this value owns (see `copy_of`).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for HugeU32 {
    fn drop(&mut self) {
        // SAFETY: the mapping `copy_of` made, owned by this value.
        unsafe { libc::munmap(self.map, self.map_len) };
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
fn interleaved(title: &str, rounds: usize, n: usize, passes: &mut [Pass<'_>]) {
    let mut times = vec![Vec::with_capacity(rounds); passes.len()];
    let mut sums = vec![0u64; passes.len()];
    for _ in 0..rounds {
        for (i, (_, pass)) in passes.iter_mut().enumerate() {
            let mut best = f64::MAX;
            for _ in 0..3 {
                let t = Instant::now();
                sums[i] = black_box(pass());
                best = best.min(t.elapsed().as_secs_f64() * 1e9 / n as f64);
            }
            times[i].push(best);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("{title}: {rounds} interleaved rounds, best of 3 passes of {n} addresses each");
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

/// The Fib's contenders over `addrs`: single lookups, and batches written to `out`.
fn fib_passes<'a, P: rtm::Prefix>(
    fib: &'a rtm::Fib<P>,
    addrs: &'a [P::Addr],
    out: &'a mut [Option<u32>],
) -> [Pass<'a>; 2] {
    [
        (
            "Fib::lookup",
            Box::new(move || addrs.iter().fold(0, |s, a| sum(s, fib.lookup(*a)))),
        ),
        (
            "Fib::lookup_batch",
            Box::new(move || {
                fib.lookup_batch(addrs, out);
                out.iter().fold(0, |s, a| sum(s, *a))
            }),
        ),
    ]
}

/// Criterion benchmarks of the Fib over `addrs`: single lookups and batches.
fn fib_benches<P: rtm::Prefix>(
    g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    fib: &rtm::Fib<P>,
    addrs: &[P::Addr],
) {
    g.bench_function("fib_lookup", |b| {
        b.iter(|| {
            for a in addrs {
                black_box(fib.lookup(*a));
            }
        })
    });
    let mut out = vec![None; addrs.len()];
    g.bench_function("fib_lookup_batch", |b| {
        b.iter(|| {
            fib.lookup_batch(addrs, &mut out);
            black_box(&out);
        })
    });
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

/// Addresses per cold pass (`FIB_COLD`, default 2,000,000; 0 skips the cold comparisons).
fn cold() -> usize {
    std::env::var("FIB_COLD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000)
}

/// Rounds of the cold comparisons (`FIB_COLD_ROUNDS`, default 7): each pass is long, so
/// fewer rounds give a steady median.
fn cold_rounds() -> usize {
    std::env::var("FIB_COLD_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7)
}

/// `n` distinct addresses from `gen(count, seed)`, in the generator's random order: drawn
/// in rounds until `n` distinct ones are found (duplicates dropped after the first).
fn distinct<A: Ord + Copy + std::hash::Hash>(
    n: usize,
    gen: impl Fn(usize, u64) -> Vec<A>,
) -> Vec<A> {
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    let mut seed = 1_000;
    while out.len() < n {
        for a in gen(n - out.len(), seed) {
            if seen.insert(a) {
                out.push(a);
            }
        }
        seed += 1;
    }
    out
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
    let huge_dir = dir.on_huge_pages();
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
        "  on huge pages: {} MiB of this process (the Fib's arena, {} MiB, and DIR-24-8's first level, 64 MiB, asked for them)",
        data::anon_huge_kib() >> 10,
        fib.memory_bytes() >> 20
    );
    println!(
        "  build: Fib {fib_s:.2} s, prefix-trie {trie_s:.2} s, DIR-24-8 {dir_s:.2} s, RouteTable {table_s:.2} s"
    );
    println!(
        "  bytes/prefix: Fib arena {:.1} + heap {:.1} (the writer's index; an arena of 2 MiB or more is mapped, not on the heap), prefix-trie {:.1}, DIR-24-8 {:.1}, RouteTable {:.1}",
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
        let [single, batch] = fib_passes(&fib, addrs, &mut out);
        let mut passes: Vec<Pass<'_>> = vec![
            (
                "DIR-24-8 array",
                Box::new(|| addrs.iter().fold(0, |s, a| sum(s, dir.lookup(*a)))),
            ),
            (
                "DIR-24-8, huge pages",
                Box::new(|| addrs.iter().fold(0, |s, a| sum(s, huge_dir.lookup(*a)))),
            ),
            single,
            batch,
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
            interleaved(&format!("fib_{name}"), rounds(), N, &mut passes);
        }
        drop(passes);
        let mut g = group(c, &format!("fib_{name}"));
        fib_benches(&mut g, &fib, addrs);
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
    if cold() > 0 && rounds() > 0 {
        let n = cold();
        let uniform = distinct(n, data::uniform_v4);
        let announced = distinct(n, |k, seed| data::announced_v4(&prefixes, k, seed));
        for a in uniform.iter().chain(&announced).step_by(97) {
            assert_eq!(fib.lookup(*a), dir.lookup(*a), "{a}");
        }
        for (name, addrs) in [("v4_uniform", &uniform), ("v4_announced", &announced)] {
            let mut out = vec![None; n];
            let [single, batch] = fib_passes(&fib, addrs, &mut out);
            let mut passes: Vec<Pass<'_>> = vec![
                (
                    "DIR-24-8 array",
                    Box::new(|| addrs.iter().fold(0, |s, a| sum(s, dir.lookup(*a)))),
                ),
                (
                    "DIR-24-8, huge pages",
                    Box::new(|| addrs.iter().fold(0, |s, a| sum(s, huge_dir.lookup(*a)))),
                ),
                single,
                batch,
                (
                    "prefix-trie get_lpm",
                    Box::new(|| {
                        addrs.iter().fold(0, |s, a| {
                            sum(s, trie.get_lpm(&Ipv4Net::from(*a)).map(|(_, v)| *v))
                        })
                    }),
                ),
            ];
            interleaved(&format!("fib_cold_{name}"), cold_rounds(), n, &mut passes);
        }
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
        "  bytes/prefix: Fib arena {:.1} + heap {:.1} (the writer's index; an arena of 2 MiB or more is mapped, not on the heap), prefix-trie {:.1}, RouteTable {:.1}",
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
        let [single, batch] = fib_passes(&fib, addrs, &mut out);
        let mut passes: Vec<Pass<'_>> = vec![
            (
                "prefix-trie get_lpm",
                Box::new(|| {
                    addrs.iter().fold(0, |s, a| {
                        sum(s, trie.get_lpm(&Ipv6Net::from(*a)).map(|(_, v)| *v))
                    })
                }),
            ),
            single,
            batch,
        ];
        if rounds() > 0 {
            interleaved(&format!("fib_{name}"), rounds(), N, &mut passes);
        }
        drop(passes);
        let mut g = group(c, &format!("fib_{name}"));
        fib_benches(&mut g, &fib, addrs);
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
    if cold() > 0 && rounds() > 0 {
        let n = cold();
        let uniform = distinct(n, data::uniform_v6);
        let announced = distinct(n, |k, seed| data::announced_v6(&prefixes, k, seed));
        for a in uniform.iter().chain(&announced).step_by(97) {
            let want = trie.get_lpm(&Ipv6Net::from(*a)).map(|(_, v)| *v);
            assert_eq!(fib.lookup(*a), want, "{a}");
        }
        for (name, addrs) in [("v6_uniform", &uniform), ("v6_announced", &announced)] {
            let mut out = vec![None; n];
            let [single, batch] = fib_passes(&fib, addrs, &mut out);
            let mut passes: Vec<Pass<'_>> = vec![
                (
                    "prefix-trie get_lpm",
                    Box::new(|| {
                        addrs.iter().fold(0, |s, a| {
                            sum(s, trie.get_lpm(&Ipv6Net::from(*a)).map(|(_, v)| *v))
                        })
                    }),
                ),
                single,
                batch,
            ];
            interleaved(&format!("fib_cold_{name}"), cold_rounds(), n, &mut passes);
        }
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

/// How the update-throughput section keeps a Fib in step with the table.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// No Fib: the table alone.
    TableOnly,
    /// `sync()` on the writer's thread after every K writes (and once at the end).
    SyncEvery(usize),
    /// A follower thread calling `sync_timeout(1 ms)` until the writer is done and the
    /// Fib is at the table's last version.
    Thread,
    /// As `Thread`, with the follower thread scheduled ahead of the machine's other tasks
    /// (`SCHED_FIFO`, the lowest real-time priority), as a router runs the threads that
    /// forwarding waits on: what is left of its lag is then the follower's own work and
    /// the host's.
    ThreadFirst,
    /// As `Thread`, with the writer paced at this many updates a second (update `i` is
    /// applied no earlier than `i / rate` seconds after the start; a writer that fell
    /// behind catches up at full speed, as a daemon draining its sockets would).
    Paced(u64),
    /// As `SyncEvery`, with next hops that change on almost every update (the id is the
    /// route's value mod 16, and each announcement has a new value), so that nearly every
    /// change writes to the Fib. (Elsewhere a prefix's next hop is its interface, which
    /// `data::key_v4` derives from the prefix: a re-announcement keeps it.)
    NewHopEvery(usize),
}

impl Mode {
    fn name(self) -> String {
        match self {
            Mode::TableOnly => "table only".into(),
            Mode::SyncEvery(k) => format!("+ follower, sync every {k} writes"),
            Mode::Thread => "+ follower thread, sync_timeout".into(),
            Mode::ThreadFirst => "  same, follower first (SCHED_FIFO)".into(),
            Mode::Paced(r) => format!("  same, writer paced at {r}/s"),
            Mode::NewHopEvery(k) => format!("  same, next hop changes, every {k}"),
        }
    }
}

/// What one replay of the day measured.
struct Replayed {
    /// From the first write to the Fib at the table's last version (the table alone: to
    /// the last write).
    secs: f64,
    /// The writes alone: the replay loop without the time inside `sync`.
    write_secs: f64,
    /// Time inside `sync` (writer-thread modes), or the follower thread's CPU time.
    follow_secs: f64,
    /// Best-route changes the follower applied.
    changes: usize,
    /// Follower thread: each change's time from its commit to its publish in the Fib, ns,
    /// sorted.
    lag_ns: Vec<u64>,
    /// The Fib's arena bytes after the replay (`Fib::memory_bytes`).
    fib_bytes: usize,
    /// Follower thread: how many times the scheduler took its core away.
    follower_preempted: u64,
    /// Follower thread: the writer's CPU time and how many times it was preempted.
    writer_cpu: (f64, u64),
    /// Follower thread: how long it waited for a core while runnable (the guest's
    /// scheduler), ms.
    follower_wait_ms: f64,
    /// The machine's steal time during the replay (the hypervisor's), ms.
    steal_ms: u64,
}

type Table = RouteTable<Ipv4Net, u64>;

/// The 1-minute load average (Linux; "?" elsewhere): how busy the machine was.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Applies one update of the day (an announcement's value is `value`); true if it
/// committed (a withdrawal of an absent route does not).
#[inline]
fn apply_update(table: &Table, u: &Update<Ipv4Net>, value: u64) -> bool {
    match u {
        Update::Announce(p) => {
            table
                .add_route(data::route(data::key_v4(*p), value))
                .unwrap();
            true
        }
        Update::Withdraw(p) => match table.delete_route(&data::key_v4(*p)) {
            Ok(_) => true,
            Err(Error::NoSuchRoute) => false,
            Err(e) => panic!("{e}"),
        },
    }
}

/// Loads the table, makes the mode's follower, replays `updates` and checks the Fib
/// against the table afterwards.
fn replay_day(prefixes: &[Ipv4Net], updates: &[Update<Ipv4Net>], mode: Mode) -> Replayed {
    // A journal that holds a second or two of this writer, as a router's would, so that
    // a follower thread a little behind does not lag and rebuild.
    let table: Table = RouteTable::builder().journal_capacity(1 << 20).build();
    for (i, p) in prefixes.iter().enumerate() {
        table
            .add_route(data::route(data::key_v4(*p), i as u64))
            .unwrap();
    }
    let base = prefixes.len() as u64;
    let new_hops = matches!(mode, Mode::NewHopEvery(_));
    let next_hop = move |r: &Route<Ipv4Net, u64>| {
        if new_hops {
            (r.value % 16) as u32
        } else {
            r.key.interface.0
        }
    };
    let mut fib_and_follower = match mode {
        Mode::TableOnly => None,
        _ => Some(Fib::follow(&table, next_hop).unwrap()),
    };
    let t0 = Instant::now();
    let (mut follow_secs, mut changes, mut lag_ns) = (0.0, 0, Vec::new());
    let mut follower_preempted = 0;
    let mut follower_wait_ms = 0.0;
    let steal0 = data::steal_ms();
    let mut writer_cpu = (0.0, 0);
    let mut write_secs = 0.0;
    match (mode, fib_and_follower.as_mut()) {
        (Mode::TableOnly, _) => {
            for (i, u) in updates.iter().enumerate() {
                apply_update(&table, u, base + i as u64);
            }
            write_secs = t0.elapsed().as_secs_f64();
        }
        (Mode::SyncEvery(k) | Mode::NewHopEvery(k), Some((_, follower))) => {
            for (i, u) in updates.iter().enumerate() {
                apply_update(&table, u, base + i as u64);
                if (i + 1) % k == 0 {
                    let t = Instant::now();
                    changes += follower.sync().unwrap();
                    follow_secs += t.elapsed().as_secs_f64();
                }
            }
            let t = Instant::now();
            changes += follower.sync().unwrap();
            follow_secs += t.elapsed().as_secs_f64();
            write_secs = t0.elapsed().as_secs_f64() - follow_secs;
        }
        (Mode::Thread | Mode::ThreadFirst | Mode::Paced(_), Some((fib, follower))) => {
            let pace = match mode {
                Mode::Paced(rate) => Some(rate),
                _ => None,
            };
            // When each commit happened and when a reader first saw it in the Fib (ns
            // after t0), by version - v0. Both threads look at `fib.version()`: the writer
            // after each commit (one read of the Fib's root, some nanoseconds), the
            // follower after each sync; the first to see a version stamps it. So a change
            // published in the middle of a long sync (the follower publishes every 256
            // changes) counts from that publish, not from the sync's end.
            let v0 = table.version().0;
            let stamps: Vec<AtomicU64> =
                (0..updates.len() + 1).map(|_| AtomicU64::new(0)).collect();
            let seen_at: Vec<AtomicU64> =
                (0..updates.len() + 1).map(|_| AtomicU64::new(0)).collect();
            let done = AtomicBool::new(false);
            let ns = || t0.elapsed().as_nanos() as u64;
            // Stamps every version in (from, to] not stamped yet with `now`.
            let saw = |from: u64, to: u64, now: u64| {
                for at in seen_at
                    .get((from - v0) as usize + 1..=(to - v0) as usize)
                    .unwrap_or(&[])
                {
                    let _ = at.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
                }
            };
            std::thread::scope(|s| {
                let (fib, stamps, done, saw) = (&*fib, &stamps, &done, &saw);
                let follower = s.spawn(move || {
                    if mode == Mode::ThreadFirst {
                        if let Err(why) = data::first_in_line() {
                            println!("  ({why}; the follower runs at its default priority)");
                        }
                    }
                    let (cpu, p0) = (data::thread_cpu_secs(), data::preempted());
                    let w0 = data::runqueue_wait_ns();
                    let (mut n, mut seen) = (0, v0);
                    loop {
                        // Read `done` first: a sync that starts after the writer finished
                        // and finds nothing more has applied its last change.
                        let last = done.load(Ordering::Acquire);
                        let got = follower.sync_timeout(Duration::from_millis(1)).unwrap();
                        n += got;
                        // Every commit up to the Fib's version is published now.
                        let v = fib.version().0;
                        if v > seen {
                            saw(seen, v, ns());
                            seen = v;
                        }
                        if last && got == 0 {
                            break;
                        }
                    }
                    let wait = (data::runqueue_wait_ns() - w0) as f64 / 1e6;
                    (
                        n,
                        data::thread_cpu_secs() - cpu,
                        (data::preempted() - p0, wait),
                    )
                });
                let (cpu, p0) = (data::thread_cpu_secs(), data::preempted());
                let mut seen = v0;
                for (i, u) in updates.iter().enumerate() {
                    if let Some(rate) = pace {
                        let due = i as u64 * 1_000_000_000 / rate;
                        while ns() < due {
                            std::hint::spin_loop();
                        }
                    }
                    if apply_update(&table, u, base + i as u64) {
                        // The only writer: the table's version is this commit's.
                        if let Some(at) = stamps.get((table.version().0 - v0) as usize) {
                            at.store(ns(), Ordering::Relaxed);
                        }
                    }
                    let v = fib.version().0;
                    if v > seen {
                        saw(seen, v, ns());
                        seen = v;
                    }
                }
                write_secs = t0.elapsed().as_secs_f64();
                writer_cpu = (data::thread_cpu_secs() - cpu, data::preempted() - p0);
                done.store(true, Ordering::Release);
                (changes, follow_secs, (follower_preempted, follower_wait_ms)) =
                    follower.join().unwrap();
            });
            lag_ns = stamps
                .iter()
                .zip(&seen_at)
                .skip(1)
                .filter_map(|(c, s)| {
                    let (c, s) = (c.load(Ordering::Relaxed), s.load(Ordering::Relaxed));
                    // 0: a version this replay did not commit (a withdrawal of an absent
                    // prefix commits nothing).
                    (c != 0).then(|| s.saturating_sub(c))
                })
                .collect();
            lag_ns.sort_unstable();
        }
        _ => unreachable!(),
    }
    let secs = t0.elapsed().as_secs_f64();
    let steal_ms = data::steal_ms() - steal0;
    let fib_bytes = fib_and_follower
        .as_ref()
        .map_or(0, |(f, _)| f.memory_bytes());
    if let Some((fib, _)) = &fib_and_follower {
        assert_eq!(fib.version(), table.version());
        for a in data::announced_v4(prefixes, 4096, 5) {
            assert_eq!(fib.lookup(a), table.lookup(a).map(|r| next_hop(&r)), "{a}");
        }
    }
    Replayed {
        secs,
        write_secs,
        follow_secs,
        changes,
        lag_ns,
        fib_bytes,
        follower_preempted,
        writer_cpu,
        follower_wait_ms,
        steal_ms,
    }
}

/// The update-throughput section: the real day through the table alone and through the
/// table and a follower, in alternating rounds; prints medians and ratios.
fn update_throughput(quick: bool) {
    let prefixes = data::ris_v4();
    let mut updates = data::ris_v4_updates();
    if quick {
        updates.truncate(300_000);
    }
    let rounds = if quick { 1 } else { 3 };
    // FIB_UPDATE_MODES=table,64,thread (say) runs some modes only, e.g. to profile one;
    // the ratios need `table`.
    let modes: Vec<Mode> = std::env::var("FIB_UPDATE_MODES")
        .unwrap_or_else(|_| "table,1,64,4096,thread,thread-first,thread@100000,64new".into())
        .split(',')
        .map(|m| match m {
            "table" => Mode::TableOnly,
            "thread" => Mode::Thread,
            "thread-first" => Mode::ThreadFirst,
            m if m.starts_with("thread@") => Mode::Paced(
                m["thread@".len()..]
                    .parse()
                    .expect("thread@R: updates a second"),
            ),
            k => match k.strip_suffix("new") {
                Some(k) => Mode::NewHopEvery(k.parse().expect("Knew: a number of writes")),
                None => Mode::SyncEvery(k.parse().expect("table, thread, K or Knew")),
            },
        })
        .collect();
    println!(
        "fib_update_throughput: the real day ({} updates) onto the real IPv4 table ({} prefixes), \
         {rounds} round(s). Source: RIPE NCC RIS",
        updates.len(),
        prefixes.len()
    );
    let mut runs: Vec<Vec<Replayed>> = modes.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (m, mode) in modes.iter().enumerate() {
            runs[m].push(replay_day(&prefixes, &updates, *mode));
        }
    }
    let median = |v: Vec<f64>| {
        let mut v = v;
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let table_secs = modes
        .iter()
        .position(|m| *m == Mode::TableOnly)
        .map_or(f64::NAN, |t| {
            median(runs[t].iter().map(|r| r.secs).collect())
        });
    println!(
        "  {:<38} {:>8} {:>7} {:>8} {:>9} {:>9} {:>13} {:>9}",
        "mode", "total", "ratio", "writes", "follower", "changes", "follower/chg", "Fib MB"
    );
    for (m, mode) in modes.iter().enumerate() {
        let r = &runs[m];
        let secs = median(r.iter().map(|r| r.secs).collect());
        let writes = median(r.iter().map(|r| r.write_secs).collect());
        let follow = median(r.iter().map(|r| r.follow_secs).collect());
        let changes = r[0].changes;
        let per_change = if *mode == Mode::TableOnly {
            String::new()
        } else {
            format!("{:.2} us", follow / changes.max(1) as f64 * 1e6)
        };
        println!(
            "  {:<38} {:>6.3} s {:>6.2}x {:>6.3} s {:>7.3} s {:>9} {:>13} {:>9.1}",
            mode.name(),
            secs,
            secs / table_secs,
            writes,
            follow,
            changes,
            per_change,
            r[0].fib_bytes as f64 / (1 << 20) as f64
        );
        if matches!(mode, Mode::Thread | Mode::ThreadFirst | Mode::Paced(_)) {
            // Each round's lag beside what took the follower's core away in it, then the
            // round with the median total in full.
            for (i, round) in r.iter().enumerate() {
                println!(
                    "  {:<38} round {}: lag p99 {:.1} us; follower preempted {} times, waited \
                     {:.2} ms for a core; steal {} ms",
                    "",
                    i + 1,
                    data::pct(&round.lag_ns, 0.99) as f64 / 1e3,
                    round.follower_preempted,
                    round.follower_wait_ms,
                    round.steal_ms
                );
            }
            let mut by_total: Vec<&Replayed> = r.iter().collect();
            by_total.sort_by(|a, b| a.secs.total_cmp(&b.secs));
            let mid = by_total[by_total.len() / 2];
            let lag = &mid.lag_ns;
            println!(
                "  {:<38} median round: commit to Fib p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, \
                 max {:.1} us (writer preempted {} times, its CPU {:.3} s; load {})",
                "",
                data::pct(lag, 0.5) as f64 / 1e3,
                data::pct(lag, 0.99) as f64 / 1e3,
                data::pct(lag, 0.999) as f64 / 1e3,
                lag.last().copied().unwrap_or(0) as f64 / 1e3,
                mid.writer_cpu.1,
                mid.writer_cpu.0,
                loadavg()
            );
        }
    }
    println!(
        "  total: first write to the Fib at the table's last version; ratio: to the table \
         alone; writes: the replay without sync; follower: time in sync (thread: its CPU time); Fib MB: \
         the arena after the replay"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    // Criterion's filter: the first argument that is neither a flag nor a flag's number.
    let filter = args
        .iter()
        .find(|a| !a.starts_with('-') && a.parse::<f64>().is_err());
    if filter.is_none_or(|f| "fib_update_throughput".contains(f.as_str())) {
        update_throughput(quick);
    }
    if filter.is_some_and(|f| f.contains("update")) {
        return; // no lookup benchmark matches: skip building their tables
    }
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

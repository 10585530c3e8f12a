//! The deterministic data the benchmarks and the example share: BGP-like IPv4 and IPv6
//! tables, lookup keys, the real MAE-West IPv4 table and the real RIPE RIS tables and BGP
//! day; and the few per-thread counters and scheduling settings they report and use
//! (Linux's `/proc`, `SCHED_FIFO`).
#![allow(dead_code)]

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use rtm::{InterfaceId, Ipv4Net, Ipv6Net, ProtocolId, Route, RouteKey};

/// SplitMix64: small, fast, and the same sequence on every machine.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x6a09_e667_f3bc_c909)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// An IPv4 prefix length drawn from a full BGP table's shape: /24 about 54%, /23 8%,
/// /22 7%, /16 6%, about 5% longer than /24, the rest spread over /8-/21.
fn v4_len(rng: &mut Rng) -> u8 {
    let x = rng.below(1000);
    match x {
        0..=539 => 24,
        540..=619 => 23,
        620..=689 => 22,
        690..=749 => 16,
        750..=799 => 25 + rng.below(8) as u8, // /25../32
        _ => {
            // /8../21 without /16, weighted towards the longer ones as in real tables
            const SPREAD: [(u8, u32); 13] = [
                (8, 1),
                (9, 1),
                (10, 2),
                (11, 4),
                (12, 8),
                (13, 14),
                (14, 20),
                (15, 24),
                (17, 30),
                (18, 40),
                (19, 50),
                (20, 56),
                (21, 50),
            ];
            let total: u32 = SPREAD.iter().map(|s| s.1).sum();
            let mut pick = rng.below(total as u64) as u32;
            for (len, w) in SPREAD {
                if pick < w {
                    return len;
                }
                pick -= w;
            }
            21
        }
    }
}

/// A unicast-looking IPv4 address: first octet in 1..=223, not 10 or 127.
fn v4_addr(rng: &mut Rng) -> u32 {
    loop {
        let a = rng.next_u64() as u32;
        let first = a >> 24;
        if (1..=223).contains(&first) && first != 10 && first != 127 {
            return a;
        }
    }
}

fn v4_mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    }
}

/// `n` distinct canonical IPv4 prefixes with a BGP-like length distribution, in a
/// deterministic random order.
pub fn ipv4_prefixes(n: usize, seed: u64) -> Vec<Ipv4Net> {
    let mut rng = Rng::new(seed);
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let len = v4_len(&mut rng);
        let a = v4_addr(&mut rng) & v4_mask(len);
        if seen.insert((a, len)) {
            out.push(Ipv4Net::new(Ipv4Addr::from(a), len).unwrap());
        }
    }
    out
}

/// `n` distinct canonical IPv6 prefixes in 2000::/3: /48 and /32 dominant, the rest over
/// /29-/64.
pub fn ipv6_prefixes(n: usize, seed: u64) -> Vec<Ipv6Net> {
    let mut rng = Rng::new(seed);
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let x = rng.below(100);
        let len: u8 = match x {
            0..=49 => 48,
            50..=69 => 32,
            70..=74 => 44,
            75..=79 => 40,
            80..=82 => 36,
            83..=85 => 29,
            _ => 29 + rng.below(36) as u8, // /29../64
        };
        let hi = (rng.next_u64() as u128) << 64 | rng.next_u64() as u128;
        let a = (hi & !(0b111u128 << 125)) | (0b001u128 << 125);
        let mask = u128::MAX << (128 - len as u32);
        if seen.insert((a & mask, len)) {
            out.push(Ipv6Net::new(Ipv6Addr::from(a & mask), len).unwrap());
        }
    }
    out
}

/// The real MAE-West IPv4 table (28,895 prefixes, DPDK's LPM test data, BSD-3-Clause).
pub fn mae_west() -> Vec<Ipv4Net> {
    include_str!("mae-west-v4.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.parse().expect("a prefix per line"))
        .collect()
}

/// Reads one of the gzip text files of real RIPE RIS data in this directory (see
/// README.md here for the source and its attribution): a line each, trimmed, blank lines
/// skipped.
fn ris_lines(name: &str) -> Vec<String> {
    use std::io::BufRead;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/data")
        .join(name);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::io::BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .map(|l| l.expect("gzip text").trim().to_string())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// The real full IPv4 table of one RIPE RIS peer (AS3333) at 2026-05-11 00:00 UTC:
/// 1,042,325 prefixes, sorted. Source: RIPE NCC RIS.
pub fn ris_v4() -> Vec<Ipv4Net> {
    ris_lines("ris-as3333-2026-05-11-v4.txt.gz")
        .iter()
        .map(|l| l.parse().expect("a prefix per line"))
        .collect()
}

/// The same peer's full IPv6 table: 246,175 prefixes. Source: RIPE NCC RIS.
pub fn ris_v6() -> Vec<Ipv6Net> {
    ris_lines("ris-as3333-2026-05-11-v6.txt.gz")
        .iter()
        .map(|l| l.parse().expect("a prefix per line"))
        .collect()
}

/// One BGP update of the real day: announce (add or replace) or withdraw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update<P> {
    /// `A prefix`: the peer announced (or re-announced) the prefix.
    Announce(P),
    /// `W prefix`: the peer withdrew it (it may not be in the table).
    Withdraw(P),
}

fn parse_updates<P: std::str::FromStr>(name: &str) -> Vec<Update<P>>
where
    P::Err: std::fmt::Debug,
{
    ris_lines(name)
        .iter()
        .map(|l| {
            let (op, p) = l.split_once(' ').expect("`A prefix` or `W prefix`");
            let p = p.trim().parse().expect("a prefix");
            match op {
                "A" => Update::Announce(p),
                "W" => Update::Withdraw(p),
                _ => panic!("unknown update {l:?}"),
            }
        })
        .collect()
}

/// Every IPv4 update the peer sent in the 24 hours after [`ris_v4`]'s table, in time
/// order: 1,393,421 (1,355,568 announcements, 37,853 withdrawals). Source: RIPE NCC RIS.
pub fn ris_v4_updates() -> Vec<Update<Ipv4Net>> {
    parse_updates("ris-as3333-2026-05-11-v4-updates.txt.gz")
}

/// The same for IPv6: 1,238,235 updates. Source: RIPE NCC RIS.
pub fn ris_v6_updates() -> Vec<Update<Ipv6Net>> {
    parse_updates("ris-as3333-2026-05-11-v6-updates.txt.gz")
}

/// Addresses inside announced prefixes of `table`.
pub fn announced_v4(table: &[Ipv4Net], n: usize, seed: u64) -> Vec<Ipv4Addr> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let p = table[rng.below(table.len() as u64) as usize];
            let host = rng.next_u64() as u32 & !v4_mask(p.prefix_len());
            Ipv4Addr::from(u32::from(p.network()) | host)
        })
        .collect()
}

/// Uniformly random IPv4 addresses.
pub fn uniform_v4(n: usize, seed: u64) -> Vec<Ipv4Addr> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| Ipv4Addr::from(rng.next_u64() as u32))
        .collect()
}

/// Addresses inside announced prefixes of `table`.
pub fn announced_v6(table: &[Ipv6Net], n: usize, seed: u64) -> Vec<Ipv6Addr> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let p = table[rng.below(table.len() as u64) as usize];
            let r = (rng.next_u64() as u128) << 64 | rng.next_u64() as u128;
            let host = r & !(u128::MAX
                .checked_shl(128 - p.prefix_len() as u32)
                .unwrap_or(0));
            Ipv6Addr::from(u128::from(p.network()) | host)
        })
        .collect()
}

/// Uniformly random addresses in 2000::/3.
pub fn uniform_v6(n: usize, seed: u64) -> Vec<Ipv6Addr> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let r = (rng.next_u64() as u128) << 64 | rng.next_u64() as u128;
            Ipv6Addr::from((r & !(0b111u128 << 125)) | (0b001u128 << 125))
        })
        .collect()
}

/// The route key the benches and the example use for a prefix: protocol BGP (14), one of
/// 16 interfaces and next hops derived from the prefix.
pub fn key_v4(p: Ipv4Net) -> RouteKey<Ipv4Net> {
    let a = u32::from(p.network());
    RouteKey::new(
        p,
        ProtocolId(14),
        InterfaceId(a.rotate_left(7) % 16),
        Ipv4Addr::new(192, 0, 2, (a % 250) as u8 + 1),
    )
}

/// As [`key_v4`], for IPv6.
pub fn key_v6(p: Ipv6Net) -> RouteKey<Ipv6Net> {
    let a = u128::from(p.network());
    RouteKey::new(
        p,
        ProtocolId(14),
        InterfaceId((a >> 80) as u32 % 16),
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, (a >> 64) as u16 % 250 + 1),
    )
}

/// What the alternative maps store for a key: the attributes of an rtm route.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Attrs {
    pub priority: u32,
    pub metric: u32,
    pub enabled: bool,
    pub value: u64,
}

impl Attrs {
    /// The attributes of `r`.
    #[inline]
    pub fn of<P: rtm::Prefix>(r: &Route<P, u64>) -> Self {
        Attrs {
            priority: r.priority,
            metric: r.metric,
            enabled: r.enabled,
            value: r.value,
        }
    }
}

/// A route for `key` whose payload is a 64-bit attribute id.
pub fn route<P: rtm::Prefix>(key: RouteKey<P>, value: u64) -> Route<P, u64> {
    Route {
        key,
        priority: 20,
        metric: (value % 100) as u32,
        enabled: true,
        value,
    }
}

/// `n` distinct canonical IPv4 prefixes with the BGP-like shape of [`ipv4_prefixes`] that
/// are not in `table`: keys for writers that churn beside a loaded table.
pub fn fresh_v4(table: &[Ipv4Net], n: usize, seed: u64) -> Vec<Ipv4Net> {
    let mut taken: HashSet<Ipv4Net> = table.iter().copied().collect();
    let mut out = Vec::with_capacity(n);
    let mut round = 0u64;
    while out.len() < n {
        let batch = ipv4_prefixes(n + n / 2 + 64, seed.wrapping_add(round));
        for p in batch {
            if out.len() == n {
                break;
            }
            if taken.insert(p) {
                out.push(p);
            }
        }
        round += 1;
    }
    out
}

/// The `q`-quantile of sorted samples (0 for none).
pub fn pct(sorted: &[u64], q: f64) -> u64 {
    sorted
        .get(((q * sorted.len() as f64) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0)
}

/// Involuntary context switches of this thread so far (Linux; 0 elsewhere): a sample that
/// took long because the scheduler took the core away shows up here.
pub fn preempted() -> u64 {
    proc_field("/proc/thread-self/status", "nonvoluntary_ctxt_switches:")
}

/// The number after `key` on its line of the `/proc` file at `path` (0 if either is
/// missing).
fn proc_field(path: &str, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Nanoseconds this thread has spent runnable but waiting for a core (Linux's
/// `schedstat`; 0 elsewhere): the guest's own scheduler delays.
pub fn runqueue_wait_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Milliseconds of CPU time the hypervisor gave to others while this machine's cores had
/// work (steal time summed over the cores, from `/proc/stat`; 0 elsewhere or where the
/// hypervisor does not report it). Counted in scheduler ticks: 10 ms at a time.
pub fn steal_ms() -> u64 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `sysconf` reads a configuration value; no memory is passed.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let ticks = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            // cpu user nice system idle iowait irq softirq steal ...
            s.lines()
                .next()?
                .split_whitespace()
                .nth(8)?
                .parse::<u64>()
                .ok()
        });
        if let (Some(ticks), true) = (ticks, hz > 0) {
            return ticks * 1000 / hz as u64;
        }
    }
    0
}

/// KiB of this process's anonymous memory backed by transparent huge pages
/// (`AnonHugePages` in `/proc/self/smaps_rollup`; 0 elsewhere).
pub fn anon_huge_kib() -> u64 {
    proc_field("/proc/self/smaps_rollup", "AnonHugePages:")
}

/// Puts the calling thread ahead of every ordinary task (`SCHED_FIFO` at priority 1, the
/// lowest real-time one), as a router runs the threads its forwarding waits on; or says
/// why it stays where it is (the policy needs `CAP_SYS_NICE`; Linux only). By default the
/// kernel keeps 5% of each second for ordinary tasks (`sched_rt_runtime_us`), and a thread
/// that waits without spinning, as a Fib follower does, takes only the time its work needs.
pub fn first_in_line() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 1 };
        // SAFETY: changes the calling thread's own scheduling policy; `param` is a valid
        // `sched_param` that outlives the call.
        let r =
            unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
        if r != 0 {
            return Err(format!(
                "SCHED_FIFO refused: {}",
                std::io::Error::from_raw_os_error(r)
            ));
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    Err("SCHED_FIFO is set on Linux only".into())
}

/// CPU time of the calling thread, in seconds (Linux; 0 elsewhere).
pub fn thread_cpu_secs() -> f64 {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the call to fill.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0 {
            return ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9;
        }
    }
    0.0
}

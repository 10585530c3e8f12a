//! `multipath`: `Fib::follow_multipath` over a shared `NexthopGroups`, driven by single
//! writes, commits of several, block deletions, syncs (some inputs with a small journal,
//! so that the follower lags and rebuilds), `set_down` and lookups.
//!
//! The model is the table's routes (network, next hop) -> (metric, enabled). Checks after
//! every sync:
//! - for every probe address, `fib.lookup` is the id of a live group whose members are the
//!   next hops of the best set (enabled, smallest metric) of the longest network covering
//!   the address that has an enabled route, or `None` when there is none;
//! - networks with the same set of next hops share one id, and `groups.len()` is the number
//!   of distinct sets (the follower holds one reference per set in use, none for others);
//! - `select` on each looked-up id returns an up member of it, or `None` when all are down.
//!
//! At the end: everything deleted and synced leaves no group, and so does dropping a
//! follower that still has networks.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use arbitrary::Arbitrary;
use rtm::{
    Batch, Criteria, Fib, InterfaceId, Ipv4Net, NexthopGroups, ProtocolId, Route, RouteKey,
    RouteTable,
};

use crate::input::decode;

const NETS: [&str; 7] = [
    "0.0.0.0/0",
    "10.0.0.0/8",
    "10.0.0.0/16",
    "10.1.0.0/16",
    "10.1.2.0/24",
    "10.1.2.128/25",
    "192.168.0.0/16",
];
const PROBES: [[u8; 4]; 8] = [
    [10, 1, 2, 200],
    [10, 1, 2, 3],
    [10, 1, 9, 9],
    [10, 0, 5, 5],
    [10, 9, 9, 9],
    [192, 168, 1, 1],
    [8, 8, 8, 8],
    [172, 16, 0, 1],
];
/// Next hops 1..=5.
const HOPS: u8 = 5;

#[derive(Arbitrary, Debug, Default)]
pub struct Header {
    small_journal: bool,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct RouteIn {
    net: u8,
    hop: u8,
    metric: u8,
    disabled: bool,
}

#[derive(Arbitrary, Debug)]
pub enum Op {
    Add(RouteIn),
    Delete(u8, u8),
    /// One commit: adds (`Some`) and deletions (`None`).
    Commit(Vec<(RouteIn, bool)>),
    /// `delete_routes` of one network.
    DeleteNetwork(u8),
    Sync,
    SetDown(u8, bool),
}

type Model = BTreeMap<(usize, u8), (u32, bool)>;

fn net(i: usize) -> Ipv4Net {
    NETS[i].parse().unwrap()
}

fn hop(h: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, h)
}

fn key(n: usize, h: u8) -> RouteKey<Ipv4Net> {
    RouteKey::new(net(n), ProtocolId::BGP, InterfaceId(1), hop(h))
}

impl RouteIn {
    fn parts(&self) -> (usize, u8, u32, bool) {
        (
            usize::from(self.net) % NETS.len(),
            1 + self.hop % HOPS,
            u32::from(self.metric % 3),
            !self.disabled,
        )
    }

    fn route(&self) -> Route<Ipv4Net, ()> {
        let (n, h, metric, enabled) = self.parts();
        Route {
            metric,
            enabled,
            ..Route::new(key(n, h), ())
        }
    }
}

/// The model's best set of network `n`: its enabled next hops of the smallest metric.
fn best_set(m: &Model, n: usize) -> BTreeSet<Ipv4Addr> {
    let of: Vec<(u8, u32)> = m
        .iter()
        .filter(|((i, _), (_, e))| *i == n && *e)
        .map(|((_, h), (metric, _))| (*h, *metric))
        .collect();
    let Some(best) = of.iter().map(|(_, metric)| *metric).min() else {
        return BTreeSet::new();
    };
    of.iter()
        .filter(|(_, metric)| *metric == best)
        .map(|(h, _)| hop(*h))
        .collect()
}

fn check(
    m: &Model,
    fib: &Fib<Ipv4Net>,
    groups: &NexthopGroups<Ipv4Addr>,
    down: &BTreeSet<Ipv4Addr>,
) {
    let mut id_of: BTreeMap<BTreeSet<Ipv4Addr>, u32> = BTreeMap::new();
    for p in PROBES {
        let a = Ipv4Addr::from(p);
        let longest = (0..NETS.len())
            .filter(|i| net(*i).contains(&a) && !best_set(m, *i).is_empty())
            .max_by_key(|i| net(*i).prefix_len());
        let got = fib.lookup(a);
        match (longest, got) {
            (None, None) => {}
            (Some(i), Some(id)) => {
                let want = best_set(m, i);
                let members = groups.members(id).expect("a looked-up id is live");
                let set: BTreeSet<Ipv4Addr> = members.iter().copied().collect();
                assert_eq!(set.len(), members.len(), "a member twice");
                assert_eq!(set, want, "{a}: the group of {}'s best set", net(i));
                assert_eq!(*id_of.entry(set).or_insert(id), id, "one id per set");
                for h in [0u64, 1, 255, u64::MAX] {
                    match groups.select(id, h) {
                        Some(x) => {
                            assert!(want.contains(&x) && !down.contains(&x), "{a}: select {x}")
                        }
                        None => assert!(want.iter().all(|x| down.contains(x)), "{a}: no member"),
                    }
                }
            }
            (w, g) => panic!("{a}: want network {w:?}, got {g:?}"),
        }
    }
    let sets: BTreeSet<BTreeSet<Ipv4Addr>> = (0..NETS.len())
        .map(|i| best_set(m, i))
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        groups.len(),
        sets.len(),
        "one group per distinct set in use"
    );
}

pub fn run(data: &[u8]) {
    let (h, ops): (Header, Vec<Op>) = decode(data);
    let t = if h.small_journal {
        RouteTable::<Ipv4Net, ()>::builder()
            .journal_capacity(64)
            .build()
    } else {
        RouteTable::<Ipv4Net, ()>::new()
    };
    let groups = NexthopGroups::<Ipv4Addr>::new();
    let (fib, mut f) = Fib::follow_multipath(&t, &groups, |r| r.key.next_hop).unwrap();
    let mut m = Model::new();
    let mut down = BTreeSet::new();
    for op in ops.iter().take(512) {
        match op {
            Op::Add(r) => {
                let (n, h, metric, enabled) = r.parts();
                t.add_route(r.route()).unwrap();
                m.insert((n, h), (metric, enabled));
            }
            Op::Delete(n, h) => {
                let (n, h) = (usize::from(*n) % NETS.len(), 1 + h % HOPS);
                let got = t.delete_route(&key(n, h));
                assert_eq!(got.is_ok(), m.remove(&(n, h)).is_some());
            }
            Op::Commit(list) => {
                let mut b = Batch::new();
                for (r, add) in list.iter().take(8) {
                    let (n, h, metric, enabled) = r.parts();
                    if *add {
                        b.add_route(r.route());
                        m.insert((n, h), (metric, enabled));
                    } else {
                        b.withdraw_route(key(n, h));
                        m.remove(&(n, h));
                    }
                }
                if !b.is_empty() {
                    t.commit(b).unwrap();
                }
            }
            Op::DeleteNetwork(n) => {
                let n = usize::from(*n) % NETS.len();
                let c = Criteria::all().network(net(n)).include_disabled();
                let got = t.delete_routes(c).unwrap();
                let before = m.len();
                m.retain(|(i, _), _| *i != n);
                assert_eq!(got, before - m.len());
            }
            Op::Sync => {
                f.sync().unwrap();
                check(&m, &fib, &groups, &down);
            }
            Op::SetDown(h, d) => {
                let x = hop(1 + h % HOPS);
                groups.set_down(&x, *d);
                if *d {
                    down.insert(x);
                } else {
                    down.remove(&x);
                }
            }
        }
    }
    f.sync().unwrap();
    check(&m, &fib, &groups, &down);
    // A second follower on the same registry holds its own references.
    let (_fib2, f2) = Fib::follow_multipath(&t, &groups, |r| r.key.next_hop).unwrap();
    drop(f2);
    check(&m, &fib, &groups, &down);
    t.delete_routes(Criteria::all().include_disabled()).unwrap();
    f.sync().unwrap();
    assert!(fib.is_empty());
    assert!(groups.is_empty(), "every group released");
}

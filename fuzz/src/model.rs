//! The sequential model every target checks the table against, and the small key spaces
//! the inputs draw from.
//!
//! The model knows nothing of the table's internals: it is a `BTreeMap<RouteKey, Route>`
//! and the definitions of the crate docs, written out plainly (O(n) scans where that is simplest).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use rtm::{Batch, Error, InterfaceId, Ipv4Net, Ipv6Net, Prefix, ProtocolId, Route, RouteKey};

/// An address family as the model needs it: raw bits, lengths, and the pools the inputs
/// draw prefixes and next hops from.
pub trait Fam: Prefix {
    /// Address width in bits.
    const WIDTH: u8;
    /// Canonical prefixes that nest and neighbour each other, so that `within`, `network`,
    /// `lookup` and `start_after` meet real boundaries (including the last address).
    const CANONICAL: &'static [(u128, u8)];
    /// Prefixes with host bits set: every call must reject them.
    const NON_CANONICAL: &'static [(u128, u8)];
    /// Next hops, including the smallest and the largest address.
    const HOPS: &'static [u128];

    /// A prefix exactly as given, host bits and all.
    fn make(bits: u128, len: u8) -> Self;
    fn fz_bits(&self) -> u128;
    fn fz_len(&self) -> u8;
    fn addr(bits: u128) -> Self::Addr;
}

impl Fam for Ipv4Net {
    const WIDTH: u8 = 32;
    const CANONICAL: &'static [(u128, u8)] = &[
        (0, 0),
        (0x0a00_0000, 8),
        (0x0a00_0000, 16),
        (0x0a01_0000, 16),
        (0x0a01_0200, 24),
        (0x0a01_0280, 25),
        (0x0a01_0203, 32),
        (0xc0a8_0000, 16),
        (0xffff_ffff, 32),
    ];
    const NON_CANONICAL: &'static [(u128, u8)] = &[
        (0x0a01_0203, 8),
        (0x0a01_0281, 25),
        (1, 0),
        (0x0a01_0001, 16),
    ];
    const HOPS: &'static [u128] = &[0xc000_0201, 0xc000_0202, 0, 0xffff_ffff];

    fn make(bits: u128, len: u8) -> Self {
        Ipv4Net::new(Ipv4Addr::from(bits as u32), len).expect("length within 32")
    }
    fn fz_bits(&self) -> u128 {
        u128::from(u32::from(self.addr()))
    }
    fn fz_len(&self) -> u8 {
        self.prefix_len()
    }
    fn addr(bits: u128) -> Ipv4Addr {
        Ipv4Addr::from(bits as u32)
    }
}

const DB8: u128 = 0x2001_0db8 << 96;

impl Fam for Ipv6Net {
    const WIDTH: u8 = 128;
    const CANONICAL: &'static [(u128, u8)] = &[
        (0, 0),
        (DB8, 32),
        (DB8, 48),
        (DB8 | 1 << 80, 48),
        (DB8 | 1 << 80, 64),
        (DB8 | 1 << 80 | 1 << 63, 65),
        (DB8 | 1 << 80 | 1, 128),
        (0xfe80 << 112, 10),
        (u128::MAX, 128),
    ];
    const NON_CANONICAL: &'static [(u128, u8)] = &[
        (DB8 | 1 << 80 | 1, 32),
        (DB8 | 1 << 80 | 1, 64),
        (1, 0),
        (u128::MAX, 127),
    ];
    const HOPS: &'static [u128] = &[DB8 | 1, DB8 | 2, 0, u128::MAX];

    fn make(bits: u128, len: u8) -> Self {
        Ipv6Net::new(Ipv6Addr::from(bits), len).expect("length within 128")
    }
    fn fz_bits(&self) -> u128 {
        u128::from(self.addr())
    }
    fn fz_len(&self) -> u8 {
        self.prefix_len()
    }
    fn addr(bits: u128) -> Ipv6Addr {
        Ipv6Addr::from(bits)
    }
}

/// All address bits of the family.
pub fn all_ones<P: Fam>() -> u128 {
    u128::MAX >> (128 - u32::from(P::WIDTH))
}

/// The network bits of a `len`-long prefix.
pub fn net_mask<P: Fam>(len: u8) -> u128 {
    let host = if len >= P::WIDTH {
        0
    } else {
        all_ones::<P>() >> len
    };
    all_ones::<P>() & !host
}

pub fn canonical<P: Fam>(p: &P) -> bool {
    p.fz_bits() & !net_mask::<P>(p.fz_len()) == 0
}

pub fn covers<P: Fam>(p: &P, addr: u128) -> bool {
    addr & net_mask::<P>(p.fz_len()) == p.fz_bits()
}

/// The criteria as the model applies them (the values that are in force after the
/// builder calls, decoys overridden).
#[derive(Clone, Debug)]
pub struct Crit<P: Prefix> {
    pub network: Option<P>,
    pub interface: Option<InterfaceId>,
    pub protocol: Option<ProtocolId>,
    pub best_only: bool,
    pub include_disabled: bool,
    pub within: Option<P>,
    pub start_after: Option<RouteKey<P>>,
}

impl<P: Fam> Crit<P> {
    /// Every route, disabled ones included.
    pub fn everything() -> Self {
        Self {
            network: None,
            interface: None,
            protocol: None,
            best_only: false,
            include_disabled: true,
            within: None,
            start_after: None,
        }
    }

    /// No prefix in the criteria has host bits set.
    pub fn valid(&self) -> bool {
        self.network.as_ref().is_none_or(canonical)
            && self.within.as_ref().is_none_or(canonical)
            && self.start_after.is_none_or(|k| canonical(&k.prefix))
    }
}

/// The table as a plain ordered map.
#[derive(Clone, Debug)]
pub struct Model<P: Prefix, V> {
    pub routes: BTreeMap<RouteKey<P>, Route<P, V>>,
}

impl<P: Fam, V: Clone> Default for Model<P, V> {
    fn default() -> Self {
        Self {
            routes: BTreeMap::new(),
        }
    }
}

impl<P: Fam, V: Clone> Model<P, V> {
    /// The enabled route of exactly `net` with the smallest (priority, metric, key).
    pub fn best(&self, net: &P) -> Option<&Route<P, V>> {
        self.routes
            .values()
            .filter(|r| r.key.prefix == *net && r.enabled)
            .min_by_key(|r| (r.priority, r.metric, r.key))
    }

    /// The best route of the longest network covering `addr` that has a best route.
    pub fn lookup(&self, addr: u128) -> Option<&Route<P, V>> {
        let nets: BTreeSet<(u8, P)> = self
            .routes
            .keys()
            .filter(|k| covers(&k.prefix, addr))
            .map(|k| (k.prefix.fz_len(), k.prefix))
            .collect();
        nets.iter().rev().find_map(|(_, p)| self.best(p))
    }

    pub fn network_count(&self) -> usize {
        self.routes
            .keys()
            .map(|k| k.prefix)
            .collect::<BTreeSet<_>>()
            .len()
    }

    pub fn admits(&self, c: &Crit<P>, r: &Route<P, V>) -> bool {
        let k = &r.key;
        (r.enabled || c.include_disabled)
            && c.network.is_none_or(|n| n == k.prefix)
            && c.interface.is_none_or(|i| i == k.interface)
            && c.protocol.is_none_or(|p| p == k.protocol)
            && c.within
                .is_none_or(|w| k.prefix.fz_len() >= w.fz_len() && covers(&w, k.prefix.fz_bits()))
            && c.start_after.is_none_or(|s| *k > s)
            && (!c.best_only || self.best(&k.prefix).is_some_and(|b| b.key == *k))
    }

    /// What an enumeration opened now returns, in order.
    pub fn matching(&self, c: &Crit<P>) -> Vec<Route<P, V>> {
        self.routes
            .values()
            .filter(|r| self.admits(c, r))
            .cloned()
            .collect()
    }

    /// The key at `idx` (modulo the size), if the model has any.
    pub fn nth_key(&self, idx: u8) -> Option<RouteKey<P>> {
        if self.routes.is_empty() {
            return None;
        }
        self.routes
            .keys()
            .nth(usize::from(idx) % self.routes.len())
            .copied()
    }
}

/// One change of a batch, as queued.
#[derive(Clone, Debug)]
pub enum BatchOp<P: Prefix, V> {
    Add(Route<P, V>),
    Delete(RouteKey<P>),
    Withdraw(RouteKey<P>),
}

impl<P: Prefix, V> BatchOp<P, V> {
    pub fn key(&self) -> &RouteKey<P> {
        match self {
            BatchOp::Add(r) => &r.key,
            BatchOp::Delete(k) | BatchOp::Withdraw(k) => k,
        }
    }
}

/// The table's batch of the same changes, in the same order.
pub fn to_batch<P: Prefix, V: Clone>(ops: &[BatchOp<P, V>]) -> Batch<P, V> {
    let mut b = Batch::new();
    for op in ops {
        match op {
            BatchOp::Add(r) => b.add_route(r.clone()),
            BatchOp::Delete(k) => b.delete_route(*k),
            BatchOp::Withdraw(k) => b.withdraw_route(*k),
        };
    }
    assert_eq!(b.len(), ops.len());
    b
}

impl<P: Fam, V: Clone> Model<P, V> {
    /// What committing `ops` does, as the crate docs define a commit: `InvalidParameter` if
    /// any key has host bits set (before anything else), `NoSuchRoute` if a delete finds
    /// its key not live after the batch's earlier changes; otherwise the state after the
    /// changes, applied in order, and the keys whose route the commit changes (a key whose
    /// last change writes, or that ends deleted and was live before), in key order.
    pub fn commit(&self, ops: &[BatchOp<P, V>]) -> Result<(Self, Vec<RouteKey<P>>), Error> {
        if ops.iter().any(|op| !canonical(&op.key().prefix)) {
            return Err(Error::InvalidParameter);
        }
        let mut after = self.clone();
        let mut touched = BTreeSet::new();
        for op in ops {
            match op {
                BatchOp::Add(r) => {
                    after.routes.insert(r.key, r.clone());
                }
                BatchOp::Delete(k) => {
                    after.routes.remove(k).ok_or(Error::NoSuchRoute)?;
                }
                BatchOp::Withdraw(k) => {
                    after.routes.remove(k);
                }
            }
            touched.insert(*op.key());
        }
        let changed = touched
            .into_iter()
            .filter(|k| after.routes.contains_key(k) || self.routes.contains_key(k))
            .collect();
        Ok((after, changed))
    }
}

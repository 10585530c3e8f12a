//! The `arbitrary` building blocks the targets share: small selectors that map onto small
//! key spaces, so that operations collide (same key, same network) often.

use arbitrary::{Arbitrary, Unstructured};
use rtm::{Criteria, InterfaceId, ProtocolId, Route, RouteKey};

use crate::model::{all_ones, net_mask, BatchOp, Crit, Fam, Model};

const PROTOCOLS: [u32; 4] = [1, 2, 0, u32::MAX];
const INTERFACES: [u32; 4] = [1, 2, 0, u32::MAX];

/// A prefix: mostly canonical, sometimes one with host bits set.
pub fn prefix<P: Fam>(sel: u8) -> P {
    let (bits, len) = if sel >= 0xf0 {
        P::NON_CANONICAL[usize::from(sel) % P::NON_CANONICAL.len()]
    } else {
        P::CANONICAL[usize::from(sel) % P::CANONICAL.len()]
    };
    P::make(bits, len)
}

#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct KeyIn {
    pub prefix: u8,
    pub protocol: u8,
    pub interface: u8,
    pub hop: u8,
}

impl KeyIn {
    pub fn key<P: Fam>(&self) -> RouteKey<P> {
        RouteKey::new(
            prefix(self.prefix),
            ProtocolId(PROTOCOLS[usize::from(self.protocol) % 4]),
            InterfaceId(INTERFACES[usize::from(self.interface) % 4]),
            P::addr(P::HOPS[usize::from(self.hop) % P::HOPS.len()]),
        )
    }
}

/// A key from the pool, or one the model holds now.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum KeySel {
    Pool(KeyIn),
    Existing(u8),
}

impl KeySel {
    pub fn key<P: Fam, V: Clone>(&self, model: &Model<P, V>) -> RouteKey<P> {
        match *self {
            KeySel::Pool(k) => k.key(),
            KeySel::Existing(i) => model.nth_key(i).unwrap_or_else(|| {
                KeyIn {
                    prefix: i,
                    protocol: i,
                    interface: i >> 2,
                    hop: i >> 4,
                }
                .key()
            }),
        }
    }
}

#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct RouteIn {
    pub key: KeySel,
    pub priority: u8,
    pub metric: u8,
    pub enabled: u8,
    pub value: u16,
}

impl RouteIn {
    /// Few priorities and metrics, so that best-route ties go to the key.
    pub fn route<P: Fam, V: Clone, W>(&self, model: &Model<P, V>, value: W) -> Route<P, W> {
        self.with_key(self.key.key(model), value)
    }

    pub fn with_key<P: Fam, W>(&self, key: RouteKey<P>, value: W) -> Route<P, W> {
        Route {
            key,
            priority: u32::from(self.priority % 3),
            metric: u32::from(self.metric % 3),
            enabled: self.enabled % 4 != 0,
            value,
        }
    }
}

/// An address for `lookup`: a boundary of a pooled prefix, a point inside it, or anything.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct AddrIn {
    pub prefix: u8,
    pub mode: u8,
    pub raw: u128,
}

impl AddrIn {
    pub fn bits<P: Fam>(&self) -> u128 {
        let (net, len) = P::CANONICAL[usize::from(self.prefix) % P::CANONICAL.len()];
        let all = all_ones::<P>();
        let last = net | (all & !net_mask::<P>(len));
        match self.mode % 5 {
            0 => net,
            1 => last,
            2 => last.wrapping_add(1) & all,
            3 => net.wrapping_sub(1) & all,
            _ if self.mode & 0x80 == 0 => net | (self.raw & all & !net_mask::<P>(len)),
            _ => self.raw & all,
        }
    }
}

/// Enumeration criteria. `decoys` gives some filters an earlier, different value first:
/// the last value given must be the one in force.
#[derive(Arbitrary, Clone, Debug)]
pub struct CritIn {
    pub network: Option<u8>,
    pub interface: Option<u8>,
    pub protocol: Option<u8>,
    pub best_only: bool,
    pub include_disabled: bool,
    pub within: Option<u8>,
    pub start_after: Option<KeySel>,
    pub decoys: u8,
}

impl CritIn {
    /// The criteria for the table and the same criteria for the model.
    pub fn build<P: Fam, V: Clone>(&self, model: &Model<P, V>) -> (Criteria<P>, Crit<P>) {
        let crit = Crit {
            network: self.network.map(prefix),
            interface: self
                .interface
                .map(|i| InterfaceId(INTERFACES[usize::from(i) % 4])),
            protocol: self
                .protocol
                .map(|p| ProtocolId(PROTOCOLS[usize::from(p) % 4])),
            best_only: self.best_only,
            include_disabled: self.include_disabled,
            within: self.within.map(prefix),
            start_after: self.start_after.map(|k| k.key(model)),
        };
        let d = self.decoys;
        let mut c = Criteria::all();
        if d & 1 != 0 && crit.network.is_some() {
            c = c.network(prefix(d.wrapping_mul(7)));
        }
        if d & 2 != 0 && crit.within.is_some() {
            c = c.within(prefix(d.wrapping_mul(13)));
        }
        if d & 4 != 0 && crit.protocol.is_some() {
            c = c.protocol(ProtocolId(u32::from(d)));
        }
        if d & 8 != 0 && crit.interface.is_some() {
            c = c.interface(InterfaceId(u32::from(d) + 1));
        }
        if d & 16 != 0 && crit.start_after.is_some() {
            c = c.start_after(
                KeyIn {
                    prefix: d,
                    protocol: d >> 1,
                    interface: d >> 2,
                    hop: d >> 3,
                }
                .key(),
            );
        }
        let mut c = apply(c, &crit);
        if d & 32 != 0 {
            // best_only and include_disabled are flags: setting them twice is harmless.
            if crit.best_only {
                c = c.best_only();
            }
            if crit.include_disabled {
                c = c.include_disabled();
            }
        }
        (c, crit)
    }
}

fn apply<P: Fam>(mut c: Criteria<P>, m: &Crit<P>) -> Criteria<P> {
    if let Some(p) = m.network {
        c = c.network(p);
    }
    if let Some(i) = m.interface {
        c = c.interface(i);
    }
    if let Some(p) = m.protocol {
        c = c.protocol(p);
    }
    if m.best_only {
        c = c.best_only();
    }
    if m.include_disabled {
        c = c.include_disabled();
    }
    if let Some(p) = m.within {
        c = c.within(p);
    }
    if let Some(k) = m.start_after {
        c = c.start_after(k);
    }
    c
}

/// Decodes a header and then operations until the bytes run out. (`Vec`'s own
/// `arbitrary_take_rest` stops at the first even "go on" byte, which leaves random inputs
/// with one or two operations.)
pub fn decode<'a, H: Arbitrary<'a> + Default, O: Arbitrary<'a>>(data: &'a [u8]) -> (H, Vec<O>) {
    let mut u = Unstructured::new(data);
    let header = H::arbitrary(&mut u).unwrap_or_default();
    let mut ops = Vec::new();
    while !u.is_empty() {
        match O::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    (header, ops)
}

/// One change of a batch: an add, a delete or a withdraw (`kind % 3`) of the route's key,
/// or, with `again`, of the key an earlier change of the same batch named (so that one
/// batch changes a key several times). Pool keys give deletes of keys that are not live
/// and prefixes with host bits set.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct BatchOpIn {
    pub kind: u8,
    pub route: RouteIn,
    pub again: Option<u8>,
}

/// The batch's changes as the model applies them, each add carrying `value(change)`.
pub fn batch_ops<P: Fam, V: Clone, W>(
    changes: &[BatchOpIn],
    model: &Model<P, V>,
    mut value: impl FnMut(&RouteIn) -> W,
) -> Vec<BatchOp<P, W>> {
    let mut out: Vec<BatchOp<P, W>> = Vec::with_capacity(changes.len());
    for c in changes {
        let key = match c.again {
            Some(i) if !out.is_empty() => *out[usize::from(i) % out.len()].key(),
            _ => c.route.key.key(model),
        };
        out.push(match c.kind % 3 {
            0 => BatchOp::Add(c.route.with_key(key, value(&c.route))),
            1 => BatchOp::Delete(key),
            _ => BatchOp::Withdraw(key),
        });
    }
    out
}

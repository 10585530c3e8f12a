//! `capi_misuse`: the C ABI (`rtm-capi`) driven through its `extern "C"` functions with
//! arbitrary arguments: table pointers that are live, destroyed, NULL or any value;
//! handles that are live, closed, of destroyed tables, bit-flipped or any value; routes
//! from the shared pools, mutated in one field, or raw bytes; any flag bits; NULL output
//! pointers. Up to four tables of either family live at once, each with a model.
//!
//! The oracle is the C contract, written out: NULL where a value is needed is
//! `INVALID_PARAMETER`; a table value that is not a live table is `INVALID_HANDLE`; a route
//! of another family, with a prefix length beyond the width or with host bits is
//! `INVALID_PARAMETER`; so are unknown flag bits; a handle value is valid iff the model
//! holds it as an open handle of a live table, and then `next` pops the snapshot taken at
//! its creation; no handle value is issued twice; every result otherwise equals the
//! model's. Batches (`rtm_batch_*`) are created, filled with adds, deletes and withdraws of
//! routes well-formed or not, committed to tables of their family or not (and NULL, dead or
//! forged batch values passed everywhere): a commit takes a live batch whatever it returns,
//! and applies it whole (one commit: a feed gets its messages together) or not at all.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::ptr;

use arbitrary::Arbitrary;
use rtm::{InterfaceId, Ipv4Net, Ipv6Net, ProtocolId, Route, RouteKey};
use rtm_capi::*;

use crate::input::{decode, AddrIn, RouteIn};
use crate::model::{net_mask, BatchOp, Crit, Fam, Model};

const OK: u32 = RTM_NO_ERROR;
const IP: u32 = RTM_ERROR_INVALID_PARAMETER;
const IH: u32 = RTM_ERROR_INVALID_HANDLE;
const NMR: u32 = RTM_ERROR_NO_MORE_ROUTES;
const NSR: u32 = RTM_ERROR_NO_SYSTEM_RESOURCES;

/// The most tables an input keeps alive at once.
const MAX_TABLES: usize = 4;

/// The flags in the order a `FlagSel::Known` bit mask picks them.
const FLAGS: [u32; 7] = [
    RTM_ONLY_THIS_NETWORK,
    RTM_ONLY_THIS_INTERFACE,
    RTM_ONLY_THIS_PROTOCOL,
    RTM_ONLY_BEST_ROUTES,
    RTM_INCLUDE_DISABLED_ROUTES,
    RTM_ONLY_WITHIN_NETWORK,
    RTM_START_AFTER_ROUTE,
];
const KNOWN_FLAGS: u32 = 0x4000_030f;
const FLAGS_READING_CRITERIA: u32 = RTM_ONLY_THIS_NETWORK
    | RTM_ONLY_THIS_INTERFACE
    | RTM_ONLY_THIS_PROTOCOL
    | RTM_ONLY_WITHIN_NETWORK
    | RTM_START_AFTER_ROUTE;

#[derive(Arbitrary, Debug)]
pub enum Op {
    Create {
        family: u8,
        max: u8,
        journal: u8,
        null_out: u8,
    },
    Destroy(TableSel),
    Add {
        t: TableSel,
        r: RouteSel,
        null: u8,
    },
    Delete {
        t: TableSel,
        r: RouteSel,
        null: u8,
    },
    Get {
        t: TableSel,
        r: RouteSel,
        null: u8,
    },
    Best {
        t: TableSel,
        r: RouteSel,
        null: u8,
    },
    Lookup {
        t: TableSel,
        addr: AddrIn,
        raw: Option<[u8; 16]>,
        null: u8,
    },
    Count {
        t: TableSel,
        null: u8,
    },
    Stats {
        t: TableSel,
        null: u8,
    },
    Collect(TableSel),
    CreateHandle {
        t: TableSel,
        flags: FlagSel,
        crit: Option<RouteSel>,
        null: u8,
    },
    Next {
        h: HandleSel,
        null: u8,
    },
    Batch {
        h: HandleSel,
        max: u8,
        null: u8,
    },
    Close(HandleSel),
    BlockDelete {
        t: TableSel,
        flags: FlagSel,
        crit: Option<RouteSel>,
        null_count: bool,
    },
    FeedOpen {
        t: TableSel,
        flags: FlagSel,
        crit: Option<RouteSel>,
        null: u8,
    },
    Dequeue {
        f: FeedSel,
        null: u8,
    },
    FeedClose(FeedSel),
    FibCreate {
        t: TableSel,
        null: u8,
    },
    FibSync {
        f: FeedSel,
        null: u8,
    },
    FibLookup {
        f: FeedSel,
        addr: AddrIn,
        null: u8,
    },
    FibBatch {
        f: FeedSel,
        addrs: [AddrIn; 3],
        n: u8,
        null: u8,
    },
    FibDestroy(FeedSel),
    BatchCreate {
        family: u8,
        null_out: u8,
    },
    /// Queues an add, a delete or a withdraw (`kind % 3`).
    BatchQueue {
        b: BatchSel,
        kind: u8,
        r: RouteSel,
        null: u8,
    },
    BatchCommit {
        t: TableSel,
        b: BatchSel,
        null_version: bool,
    },
    BatchDestroy(BatchSel),
    /// A batch's whole life in one step: created, filled with `changes` (kind, route,
    /// NULL selector), then committed to `t` (a live selector: a table of the batch's
    /// family, if there is one), or destroyed for `end % 4 == 3`.
    BatchRun {
        family: u8,
        changes: Vec<(u8, RouteSel, u8)>,
        t: TableSel,
        end: u8,
        null_version: bool,
    },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum BatchSel {
    Live(u8),
    /// Committed or destroyed.
    Dead(u8),
    Null,
    Raw(u64),
}

/// A live batch: its family and the changes queued, in order (kind `% 3`: add, delete,
/// withdraw).
struct BatchModel {
    ptr: *mut rtm_batch,
    family: u8,
    ops: Vec<(u8, rtm_route)>,
}

/// The most batches an input keeps alive at once.
const MAX_BATCHES: usize = 4;

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum FeedSel {
    Live(u8),
    Closed(u8),
    Raw(u64),
}

/// A route change message: flags, current best, previous best.
type Message = (u32, Option<rtm_route>, Option<rtm_route>);

/// An open feed's criteria and the messages it has not returned yet, each with the
/// number of the commit that made it (the messages of one commit come in any order).
struct FeedModel {
    flags: u32,
    crit: Option<rtm_route>,
    queue: VecDeque<(usize, Message)>,
}

/// Takes the queued message the feed returned: of the first commit's messages, the one
/// equal to what was written to the outputs that are not NULL (else the first, which the
/// caller's comparison then reports).
fn take_message(
    q: &mut VecDeque<(usize, Message)>,
    flags: u32,
    cur: Option<&rtm_route>,
    prev: Option<&rtm_route>,
) -> Option<Message> {
    let first = q.front()?.0;
    let s = sentinel();
    let i = q
        .iter()
        .take_while(|m| m.0 == first)
        .position(|(_, (f, c, p))| {
            *f == flags
                && cur.is_none_or(|r| c.unwrap_or(s) == *r)
                && prev.is_none_or(|r| p.unwrap_or(s) == *r)
        })
        .unwrap_or(0);
    q.remove(i).map(|m| m.1)
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum TableSel {
    Live(u8),
    Destroyed(u8),
    Null,
    Raw(u64),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum HandleSel {
    Live(u8),
    Closed(u8),
    Flipped { idx: u8, bit: u8 },
    Raw(u64),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum FlagSel {
    /// A combination of the known flags (bit i picks `FLAGS[i]`).
    Known(u8),
    Raw(u32),
}

impl FlagSel {
    fn bits(self) -> u32 {
        match self {
            FlagSel::Known(m) => (0..7)
                .filter(|i| m & (1 << i) != 0)
                .fold(0, |a, i| a | FLAGS[i]),
            FlagSel::Raw(r) => r,
        }
    }
}

/// The route bytes a call reads.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum RouteSel {
    /// A route of the table's family from the shared pools (often well-formed).
    Pool { route: RouteIn, value: u64 },
    /// A pool route with one field overwritten.
    Mutated { route: RouteIn, field: u8, byte: u8 },
    /// Any bytes.
    Raw {
        family: u8,
        prefix_len: u8,
        enabled: u8,
        network: [u8; 16],
        next_hop: [u8; 16],
        protocol: u32,
        interface_id: u32,
        priority: u32,
        metric: u32,
        value: u64,
    },
}

/// A NULL pointer for one selector value in eight.
fn is_null(sel: u8) -> bool {
    sel % 8 == 7
}

/// The C side of a family: its family byte and address bytes.
pub trait CFam: Fam {
    const FAMILY: u8;
    const BYTES: usize;
    fn addr_bits(a: Self::Addr) -> u128;
}

impl CFam for Ipv4Net {
    const FAMILY: u8 = 4;
    const BYTES: usize = 4;
    fn addr_bits(a: Self::Addr) -> u128 {
        u128::from(u32::from(a))
    }
}

impl CFam for Ipv6Net {
    const FAMILY: u8 = 6;
    const BYTES: usize = 16;
    fn addr_bits(a: Self::Addr) -> u128 {
        u128::from(a)
    }
}

fn bytes_of<P: CFam>(bits: u128) -> [u8; 16] {
    if P::BYTES == 4 {
        let mut b = [0; 16];
        b[..4].copy_from_slice(&(bits as u32).to_be_bytes());
        b
    } else {
        bits.to_be_bytes()
    }
}

fn bits_of<P: CFam>(b: &[u8; 16]) -> u128 {
    if P::BYTES == 4 {
        u128::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    } else {
        u128::from_be_bytes(*b)
    }
}

/// A route as the C API returns it.
fn to_c<P: CFam>(r: &Route<P, u64>) -> rtm_route {
    rtm_route {
        family: P::FAMILY,
        prefix_len: r.key.prefix.fz_len(),
        enabled: u8::from(r.enabled),
        network: bytes_of::<P>(r.key.prefix.fz_bits()),
        next_hop: bytes_of::<P>(P::addr_bits(r.key.next_hop)),
        protocol: r.key.protocol.0,
        interface_id: r.key.interface.0,
        priority: r.priority,
        metric: r.metric,
        value: r.value,
    }
}

/// The contract's reading of C route bytes on a table of family `P`: `None` if malformed.
fn from_c<P: CFam>(r: &rtm_route) -> Option<Route<P, u64>> {
    if r.family != P::FAMILY || r.prefix_len > P::WIDTH {
        return None;
    }
    let bits = bits_of::<P>(&r.network);
    if bits & !net_mask::<P>(r.prefix_len) != 0 {
        return None;
    }
    Some(Route {
        key: RouteKey::new(
            P::make(bits, r.prefix_len),
            ProtocolId(r.protocol),
            InterfaceId(r.interface_id),
            P::addr(bits_of::<P>(&r.next_hop)),
        ),
        priority: r.priority,
        metric: r.metric,
        enabled: r.enabled != 0,
        value: r.value,
    })
}

/// What the model of one table answers, whichever its family.
trait CModel {
    fn family(&self) -> u8;
    fn route(&self, sel: &RouteSel) -> rtm_route;
    fn addr(&self, a: &AddrIn) -> [u8; 16];
    /// The expected code of an add, applied to the model.
    fn add(&mut self, r: &rtm_route) -> u32;
    fn delete(&mut self, r: &rtm_route) -> u32;
    fn get(&self, r: &rtm_route) -> Result<rtm_route, u32>;
    fn best(&self, r: &rtm_route) -> Result<rtm_route, u32>;
    fn lookup(&self, addr: &[u8; 16]) -> Result<rtm_route, u32>;
    /// The routes an enumeration opened now returns, or the parameter error.
    fn enumerate(&self, flags: u32, crit: Option<&rtm_route>) -> Result<Vec<rtm_route>, u32>;
    fn counts(&self) -> (usize, usize);
    /// Commits a batch's changes (routes checked when queued): `Ok(whether anything
    /// changed)`, or `NO_MORE_ROUTES` with the model unchanged.
    fn commit(&mut self, ops: &[(u8, rtm_route)]) -> Result<bool, u32>;
    /// A copy of the model (what a Fib synced now holds).
    fn snapshot(&self) -> Box<dyn CModel>;
}

impl<P: CFam> CModel for Model<P, u64> {
    fn family(&self) -> u8 {
        P::FAMILY
    }

    fn route(&self, sel: &RouteSel) -> rtm_route {
        match *sel {
            RouteSel::Pool { route, value } => to_c(&route.route(self, value)),
            RouteSel::Mutated { route, field, byte } => {
                let mut r = to_c(&route.route(self, u64::from(route.value)));
                match field % 6 {
                    0 => r.family = byte,
                    1 => r.family = if P::FAMILY == 4 { 6 } else { 4 },
                    2 => r.prefix_len = byte,
                    3 => r.network[usize::from(byte % 16)] ^= 1 << (byte / 16 % 8),
                    4 => r.next_hop[usize::from(byte % 16)] = byte,
                    _ => r.enabled = byte,
                }
                r
            }
            RouteSel::Raw {
                family,
                prefix_len,
                enabled,
                network,
                next_hop,
                protocol,
                interface_id,
                priority,
                metric,
                value,
            } => rtm_route {
                family,
                prefix_len,
                enabled,
                network,
                next_hop,
                protocol,
                interface_id,
                priority,
                metric,
                value,
            },
        }
    }

    fn addr(&self, a: &AddrIn) -> [u8; 16] {
        bytes_of::<P>(a.bits::<P>())
    }

    fn add(&mut self, r: &rtm_route) -> u32 {
        match from_c::<P>(r) {
            Some(r) => {
                self.routes.insert(r.key, r);
                OK
            }
            None => IP,
        }
    }

    fn delete(&mut self, r: &rtm_route) -> u32 {
        match from_c::<P>(r) {
            Some(r) => match self.routes.remove(&r.key) {
                Some(_) => OK,
                None => NMR,
            },
            None => IP,
        }
    }

    fn get(&self, r: &rtm_route) -> Result<rtm_route, u32> {
        let r = from_c::<P>(r).ok_or(IP)?;
        self.routes.get(&r.key).map(to_c).ok_or(NMR)
    }

    fn best(&self, r: &rtm_route) -> Result<rtm_route, u32> {
        let r = from_c::<P>(r).ok_or(IP)?;
        self.best(&r.key.prefix).map(to_c).ok_or(NMR)
    }

    fn lookup(&self, addr: &[u8; 16]) -> Result<rtm_route, u32> {
        Model::lookup(self, bits_of::<P>(addr)).map(to_c).ok_or(NMR)
    }

    fn enumerate(&self, flags: u32, crit: Option<&rtm_route>) -> Result<Vec<rtm_route>, u32> {
        if flags & !KNOWN_FLAGS != 0 {
            return Err(IP);
        }
        let mut c = Crit {
            network: None,
            interface: None,
            protocol: None,
            best_only: flags & RTM_ONLY_BEST_ROUTES != 0,
            include_disabled: flags & RTM_INCLUDE_DISABLED_ROUTES != 0,
            within: None,
            start_after: None,
        };
        if flags & FLAGS_READING_CRITERIA != 0 {
            let k = from_c::<P>(crit.ok_or(IP)?).ok_or(IP)?.key;
            if flags & RTM_ONLY_THIS_NETWORK != 0 {
                c.network = Some(k.prefix);
            }
            if flags & RTM_ONLY_THIS_INTERFACE != 0 {
                c.interface = Some(k.interface);
            }
            if flags & RTM_ONLY_THIS_PROTOCOL != 0 {
                c.protocol = Some(k.protocol);
            }
            if flags & RTM_ONLY_WITHIN_NETWORK != 0 {
                c.within = Some(k.prefix);
            }
            if flags & RTM_START_AFTER_ROUTE != 0 {
                c.start_after = Some(k);
            }
        }
        Ok(self.matching(&c).iter().map(to_c).collect())
    }

    fn snapshot(&self) -> Box<dyn CModel> {
        Box::new(self.clone())
    }

    fn counts(&self) -> (usize, usize) {
        (self.routes.len(), self.network_count())
    }

    fn commit(&mut self, ops: &[(u8, rtm_route)]) -> Result<bool, u32> {
        let ops: Vec<BatchOp<P, u64>> = ops
            .iter()
            .map(|(kind, r)| {
                let r = from_c::<P>(r).expect("checked when queued");
                match kind % 3 {
                    0 => BatchOp::Add(r),
                    1 => BatchOp::Delete(r.key),
                    _ => BatchOp::Withdraw(r.key),
                }
            })
            .collect();
        match Model::commit(self, &ops) {
            Ok((after, changed)) => {
                *self = after;
                Ok(!changed.is_empty())
            }
            Err(rtm::Error::NoSuchRoute) => Err(NMR),
            Err(e) => panic!("the model's commit: {e:?}"),
        }
    }
}

struct Table {
    ptr: *mut rtm_table,
    max: usize,
    model: Box<dyn CModel>,
    handles: BTreeMap<u64, VecDeque<rtm_route>>,
    feeds: BTreeMap<u64, FeedModel>,
    /// Open Fibs: the table as of their last sync.
    fibs: BTreeMap<u64, Box<dyn CModel>>,
    /// Committed writes: kept below every journal capacity used, so no feed lags.
    commits: usize,
}

/// The most writes an input commits to one table (below the smallest journal, 4096).
const MAX_COMMITS: usize = 3500;

/// A feed's entries: each selected network's best route, if the other filters admit it.
fn entries(model: &dyn CModel, f: &FeedModel) -> BTreeMap<(u8, [u8; 16]), rtm_route> {
    model
        .enumerate(f.flags | RTM_ONLY_BEST_ROUTES, f.crit.as_ref())
        .expect("criteria checked at open")
        .into_iter()
        .map(|r| ((r.prefix_len, r.network), r))
        .collect()
}

impl Table {
    fn slots_used(&self) -> usize {
        self.handles.len() + self.feeds.len() + self.fibs.len()
    }

    /// Runs one commit on the model and queues the messages each feed gets for it.
    /// `written`: the routes its adds wrote (an identical rewrite of a network's entry is a
    /// message too).
    fn write(&mut self, written: &[rtm_route], f: impl FnOnce(&mut dyn CModel) -> u32) -> u32 {
        let before: Vec<_> = self
            .feeds
            .values()
            .map(|fm| entries(&*self.model, fm))
            .collect();
        let rc = f(&mut *self.model);
        if rc != OK {
            return rc;
        }
        let commit = self.commits;
        self.commits += 1;
        for (fm, before) in self.feeds.values_mut().zip(before) {
            let after = entries(&*self.model, fm);
            let nets: std::collections::BTreeSet<_> =
                before.keys().chain(after.keys()).copied().collect();
            for n in nets {
                let (old, new) = (before.get(&n).copied(), after.get(&n).copied());
                let rewrite = written
                    .iter()
                    .any(|w| new.is_some_and(|r| r == to_canonical(w, &r)));
                if old != new || rewrite {
                    let flags = (u32::from(new.is_some()) * RTM_CURRENT_BEST_ROUTE)
                        | (u32::from(old.is_some()) * RTM_PREVIOUS_BEST_ROUTE);
                    fm.queue.push_back((commit, (flags, new, old)));
                }
            }
        }
        rc
    }
}

/// `w` as the table returns it, if it has the key of `like` (else something unequal).
fn to_canonical(w: &rtm_route, like: &rtm_route) -> rtm_route {
    let mut c = *w;
    if like.family == 4 {
        c.network[4..].fill(0);
        c.next_hop[4..].fill(0);
    }
    c.enabled = u8::from(w.enabled != 0);
    c
}

#[derive(Default)]
struct World {
    live: Vec<Table>,
    destroyed: Vec<*mut rtm_table>,
    issued: Vec<u64>,
    issued_set: HashSet<u64>,
    /// Closed handles and handles of destroyed tables.
    dead: Vec<u64>,
    /// Closed feeds and feeds of destroyed tables.
    dead_feeds: Vec<u64>,
    batches: Vec<BatchModel>,
    /// Committed and destroyed batches.
    dead_batches: Vec<*mut rtm_batch>,
}

impl World {
    /// The batch value a selector names, and the live batch it is, if any (a raw value
    /// may hit a live token).
    fn batch(&self, sel: BatchSel) -> (*mut rtm_batch, Option<usize>) {
        let p = match sel {
            BatchSel::Live(i) if !self.batches.is_empty() => {
                self.batches[usize::from(i) % self.batches.len()].ptr
            }
            BatchSel::Live(i) => ptr::without_provenance_mut(1 << 63 | usize::from(i) << 48),
            BatchSel::Dead(i) if !self.dead_batches.is_empty() => {
                self.dead_batches[usize::from(i) % self.dead_batches.len()]
            }
            BatchSel::Dead(i) => ptr::without_provenance_mut(usize::from(i) + 1),
            BatchSel::Null => ptr::null_mut(),
            BatchSel::Raw(r) => ptr::without_provenance_mut(r as usize),
        };
        (p, self.batches.iter().position(|b| b.ptr == p))
    }

    /// The pointer a selector names, and the live table it is, if any.
    fn table(&self, sel: TableSel) -> (*mut rtm_table, Option<usize>) {
        let p = match sel {
            TableSel::Live(i) if !self.live.is_empty() => {
                return (
                    self.live[usize::from(i) % self.live.len()].ptr,
                    Some(usize::from(i) % self.live.len()),
                );
            }
            TableSel::Live(i) => ptr::without_provenance_mut(usize::MAX - usize::from(i)),
            TableSel::Destroyed(i) if !self.destroyed.is_empty() => {
                self.destroyed[usize::from(i) % self.destroyed.len()]
            }
            TableSel::Destroyed(i) => ptr::without_provenance_mut(usize::from(i) << 40 | 1),
            TableSel::Null => ptr::null_mut(),
            TableSel::Raw(r) => ptr::without_provenance_mut(r as usize),
        };
        (p, self.live.iter().position(|t| t.ptr == p))
    }

    fn handle(&self, sel: HandleSel) -> u64 {
        fn nth(v: &[u64], i: u8) -> Option<u64> {
            (!v.is_empty()).then(|| v[usize::from(i) % v.len()])
        }
        match sel {
            HandleSel::Live(i) => {
                let live: Vec<u64> = self
                    .live
                    .iter()
                    .flat_map(|t| t.handles.keys().copied())
                    .collect();
                nth(&live, i).unwrap_or(u64::from(i))
            }
            HandleSel::Closed(i) => nth(&self.dead, i).unwrap_or(u64::MAX - u64::from(i)),
            HandleSel::Flipped { idx, bit } => {
                nth(&self.issued, idx).unwrap_or(0) ^ (1u64 << (bit % 64))
            }
            HandleSel::Raw(r) => r,
        }
    }

    fn feed(&self, sel: FeedSel) -> u64 {
        fn nth(v: &[u64], i: u8) -> Option<u64> {
            (!v.is_empty()).then(|| v[usize::from(i) % v.len()])
        }
        match sel {
            FeedSel::Live(i) => {
                let live: Vec<u64> = self
                    .live
                    .iter()
                    .flat_map(|t| t.feeds.keys().copied())
                    .collect();
                nth(&live, i).unwrap_or(u64::from(i) << 32 | 1)
            }
            FeedSel::Closed(i) => nth(&self.dead_feeds, i).unwrap_or(u64::MAX - u64::from(i)),
            FeedSel::Raw(r) => r,
        }
    }

    /// A Fib value: a live Fib's, or what `feed` picks (feeds, dead values, any value).
    fn fib(&self, sel: FeedSel) -> u64 {
        match sel {
            FeedSel::Live(i) => {
                let live: Vec<u64> = self
                    .live
                    .iter()
                    .flat_map(|t| t.fibs.keys().copied())
                    .collect();
                if live.is_empty() {
                    self.feed(sel)
                } else {
                    live[usize::from(i) % live.len()]
                }
            }
            _ => self.feed(sel),
        }
    }

    /// The live table holding Fib `f`.
    fn fib_owner(&mut self, f: u64) -> Option<&mut Table> {
        self.live.iter_mut().find(|t| t.fibs.contains_key(&f))
    }

    /// The live table holding feed `f` open.
    fn feed_owner(&mut self, f: u64) -> Option<&mut Table> {
        self.live.iter_mut().find(|t| t.feeds.contains_key(&f))
    }

    /// The live table holding handle `h` open.
    fn owner(&mut self, h: u64) -> Option<&mut Table> {
        self.live.iter_mut().find(|t| t.handles.contains_key(&h))
    }

    /// The model a route selector is built with: the table's, or a scratch IPv4 one.
    fn route(&self, t: Option<usize>, sel: &RouteSel) -> rtm_route {
        match t {
            Some(i) => self.live[i].model.route(sel),
            None => Model::<Ipv4Net, u64>::default().route(sel),
        }
    }
}

/// The route a call left in `out`, or the code it returned (out must be untouched then).
fn outcome(rc: u32, out: &rtm_route, sentinel: &rtm_route) -> Result<rtm_route, u32> {
    if rc == OK {
        Ok(*out)
    } else {
        assert_eq!(out, sentinel, "output written on error {rc}");
        Err(rc)
    }
}

fn sentinel() -> rtm_route {
    rtm_route {
        family: 0xee,
        prefix_len: 0xee,
        enabled: 0xee,
        network: [0xee; 16],
        next_hop: [0xee; 16],
        protocol: 0xeeee,
        interface_id: 0xeeee,
        priority: 0xeeee,
        metric: 0xeeee,
        value: 0xeeee,
    }
}

/// The checks before a table is looked up: NULL table, NULL arguments.
fn pre(p: *mut rtm_table, null_arg: bool) -> Option<u32> {
    (p.is_null() || null_arg).then_some(IP)
}

pub fn run(data: &[u8]) {
    let ((), ops): ((), Vec<Op>) = decode(data);
    let mut w = World::default();
    for op in &ops {
        step(&mut w, op);
    }
    finish(&mut w);
}

fn step(w: &mut World, op: &Op) {
    match *op {
        Op::Create {
            family,
            max,
            journal,
            null_out,
        } => {
            if w.live.len() >= MAX_TABLES {
                return;
            }
            let family = match family % 8 {
                0..=3 => 4,
                4..=6 => 6,
                _ => family,
            };
            let max = u32::from(max % 8);
            let mut p: *mut rtm_table = ptr::null_mut();
            let out = if is_null(null_out) {
                ptr::null_mut()
            } else {
                &mut p as *mut _
            };
            // SAFETY: `out` is NULL or points to `p`.
            let rc = unsafe {
                match journal % 4 {
                    // The default journal (65,536 entries) is slow to build: now and then.
                    0 if journal == 0 => rtm_table_create(family, max, out),
                    0 | 1 => rtm_table_create_ex(family, max, 0x1000, out),
                    _ => rtm_table_create_ex(family, max, 0x2000, out),
                }
            };
            if out.is_null() || (family != 4 && family != 6) {
                assert_eq!(rc, IP);
                assert!(p.is_null());
                return;
            }
            assert_eq!(rc, OK);
            assert!(!p.is_null() && w.live.iter().all(|t| t.ptr != p));
            assert!(!w.destroyed.contains(&p), "a table token was reused");
            let model: Box<dyn CModel> = if family == 4 {
                Box::new(Model::<Ipv4Net, u64>::default())
            } else {
                Box::new(Model::<Ipv6Net, u64>::default())
            };
            w.live.push(Table {
                ptr: p,
                max: max.max(1) as usize,
                model,
                handles: BTreeMap::new(),
                feeds: BTreeMap::new(),
                fibs: BTreeMap::new(),
                commits: 0,
            });
        }
        Op::Destroy(sel) => {
            let (p, t) = w.table(sel);
            // SAFETY: any pointer value may be passed.
            let rc = unsafe { rtm_table_destroy(p) };
            match (p.is_null(), t) {
                (true, _) => assert_eq!(rc, IP),
                (false, None) => assert_eq!(rc, IH),
                (false, Some(i)) => {
                    assert_eq!(rc, OK);
                    let t = w.live.swap_remove(i);
                    w.dead.extend(t.handles.keys());
                    w.dead_feeds.extend(t.feeds.keys());
                    w.dead_feeds.extend(t.fibs.keys());
                    w.destroyed.push(p);
                }
            }
        }
        Op::Add { t, r, null } | Op::Delete { t, r, null } => {
            let (p, ti) = w.table(t);
            if ti.is_some_and(|i| w.live[i].commits >= MAX_COMMITS) {
                return;
            }
            let route = w.route(ti, &r);
            let rp: *const rtm_route = if is_null(null) { ptr::null() } else { &route };
            let add = matches!(op, Op::Add { .. });
            // SAFETY: `rp` is NULL or points to `route`.
            let rc = unsafe {
                if add {
                    rtm_add_route(p, rp)
                } else {
                    rtm_delete_route(p, rp)
                }
            };
            let want = pre(p, rp.is_null()).unwrap_or_else(|| match ti {
                None => IH,
                Some(i) if add => w.live[i].write(&[route], |m| m.add(&route)),
                Some(i) => w.live[i].write(&[], |m| m.delete(&route)),
            });
            assert_eq!(rc, want, "{op:?}");
        }
        Op::Get { t, r, null } | Op::Best { t, r, null } => {
            let (p, ti) = w.table(t);
            let route = w.route(ti, &r);
            let s = sentinel();
            let mut out = s;
            let (rp, op_out): (*const rtm_route, *mut rtm_route) = match null % 16 {
                7 => (ptr::null(), &mut out),
                15 => (&route, ptr::null_mut()),
                _ => (&route, &mut out),
            };
            let get = matches!(op, Op::Get { .. });
            // SAFETY: each pointer is NULL or points to a local.
            let rc = unsafe {
                if get {
                    rtm_get_route(p, rp, op_out)
                } else {
                    rtm_best_route(p, rp, op_out)
                }
            };
            let got = outcome(rc, &out, &s);
            let want = match pre(p, rp.is_null() || op_out.is_null()) {
                Some(e) => Err(e),
                None => match ti {
                    None => Err(IH),
                    Some(i) if get => w.live[i].model.get(&route),
                    Some(i) => w.live[i].model.best(&route),
                },
            };
            assert_eq!(got, want, "{op:?}");
        }
        Op::Lookup { t, addr, raw, null } => {
            let (p, ti) = w.table(t);
            let a = match (raw, ti) {
                (Some(bytes), _) => bytes,
                (None, Some(i)) => w.live[i].model.addr(&addr),
                (None, None) => [0; 16],
            };
            let s = sentinel();
            let mut out = s;
            let (ap, op_out): (*const u8, *mut rtm_route) = match null % 16 {
                7 => (ptr::null(), &mut out),
                15 => (a.as_ptr(), ptr::null_mut()),
                _ => (a.as_ptr(), &mut out),
            };
            // SAFETY: `ap` is NULL or 16 readable bytes; `op_out` NULL or `out`.
            let rc = unsafe { rtm_lookup(p, ap, op_out) };
            let want = match pre(p, ap.is_null() || op_out.is_null()) {
                Some(e) => Err(e),
                None => ti.map_or(Err(IH), |i| w.live[i].model.lookup(&a)),
            };
            assert_eq!(outcome(rc, &out, &s), want, "{op:?}");
        }
        Op::Count { t, null } | Op::Stats { t, null } => {
            let (p, ti) = w.table(t);
            let mut n = u64::MAX;
            let mut st = rtm_stats::default();
            let count = matches!(op, Op::Count { .. });
            // SAFETY: the outputs are NULL or locals.
            let rc = unsafe {
                match (count, is_null(null)) {
                    (true, true) => rtm_route_count(p, ptr::null_mut()),
                    (true, false) => rtm_route_count(p, &mut n),
                    (false, true) => rtm_table_stats(p, ptr::null_mut()),
                    (false, false) => rtm_table_stats(p, &mut st),
                }
            };
            let want = pre(p, is_null(null)).unwrap_or(if ti.is_some() { OK } else { IH });
            assert_eq!(rc, want, "{op:?}");
            if rc == OK {
                let t = &w.live[ti.expect("OK on a live table")];
                let (routes, networks) = t.model.counts();
                if count {
                    assert_eq!(n, routes as u64);
                } else {
                    assert_eq!(st.live_routes, routes as u64);
                    assert_eq!(st.networks, networks as u64);
                    assert_eq!(st.open_enumerations, t.slots_used() as u64);
                    assert_eq!(st.max_enumerations as usize, t.max);
                    assert_eq!(st.family, t.model.family());
                }
            }
        }
        Op::BatchCreate { family, null_out } => {
            if w.batches.len() >= MAX_BATCHES {
                return;
            }
            let family = match family % 8 {
                0..=3 => 4,
                4..=6 => 6,
                _ => family,
            };
            let mut b: *mut rtm_batch = ptr::null_mut();
            let out: *mut *mut rtm_batch = if is_null(null_out) {
                ptr::null_mut()
            } else {
                &mut b
            };
            // SAFETY: `out` is NULL or points to `b`.
            let rc = unsafe { rtm_batch_create(family, out) };
            if out.is_null() || (family != 4 && family != 6) {
                assert_eq!(rc, IP);
                assert!(b.is_null());
                return;
            }
            assert_eq!(rc, OK);
            assert!(!b.is_null() && w.batches.iter().all(|x| x.ptr != b));
            assert!(!w.dead_batches.contains(&b), "a batch token was reused");
            w.batches.push(BatchModel {
                ptr: b,
                family,
                ops: Vec::new(),
            });
        }
        Op::BatchQueue { b, kind, r, null } => {
            let (bp, bi) = w.batch(b);
            // routes from a live table of the batch's family, if any
            let family = bi.map(|i| w.batches[i].family);
            let ti = w.live.iter().position(|t| Some(t.model.family()) == family);
            let route = w.route(ti, &r);
            let rp: *const rtm_route = if is_null(null) { ptr::null() } else { &route };
            // SAFETY: `rp` is NULL or points to `route`; any batch value may be passed.
            let rc = unsafe {
                match kind % 3 {
                    0 => rtm_batch_add_route(bp, rp),
                    1 => rtm_batch_delete_route(bp, rp),
                    _ => rtm_batch_withdraw_route(bp, rp),
                }
            };
            let want = if bp.is_null() || rp.is_null() {
                IP
            } else {
                match bi {
                    None => IH,
                    Some(i) => {
                        let ok = if w.batches[i].family == 4 {
                            from_c::<Ipv4Net>(&route).is_some()
                        } else {
                            from_c::<Ipv6Net>(&route).is_some()
                        };
                        if ok {
                            w.batches[i].ops.push((kind % 3, route));
                            OK
                        } else {
                            IP
                        }
                    }
                }
            };
            assert_eq!(rc, want, "{op:?}");
        }
        Op::BatchCommit { t, b, null_version } => {
            let (bp, bi) = w.batch(b);
            let (p, ti) = w.table(t);
            if ti.is_some_and(|i| w.live[i].commits >= MAX_COMMITS) {
                return;
            }
            let stats_version = |p: *mut rtm_table| {
                let mut st = rtm_stats::default();
                // SAFETY: `st` is a local; `p` is a live table.
                assert_eq!(unsafe { rtm_table_stats(p, &mut st) }, OK);
                st.version
            };
            let before = ti.map(|_| stats_version(p));
            let mut v = 0xeeee_u64;
            let vp: *mut u64 = if null_version {
                ptr::null_mut()
            } else {
                &mut v
            };
            // SAFETY: `vp` is NULL or a local; any table and batch value may be passed.
            let rc = unsafe { rtm_batch_commit(p, bp, vp) };
            let Some(bi) = bi else {
                assert_eq!(rc, if bp.is_null() { IP } else { IH }, "{op:?}");
                assert_eq!(v, 0xeeee);
                return;
            };
            // taken, whatever happens next
            let batch = w.batches.swap_remove(bi);
            w.dead_batches.push(batch.ptr);
            let want = match ti {
                _ if p.is_null() => IP,
                None => IH,
                Some(i) if w.live[i].model.family() != batch.family => IP,
                Some(i) => {
                    let t = &mut w.live[i];
                    let written: Vec<rtm_route> = batch
                        .ops
                        .iter()
                        .filter(|(k, _)| *k == 0)
                        .map(|(_, r)| *r)
                        .collect();
                    let mut changed = false;
                    let rc = t.write(&written, |m| match m.commit(&batch.ops) {
                        Ok(c) => {
                            changed = c;
                            OK
                        }
                        Err(e) => e,
                    });
                    let before = before.expect("a live table");
                    let after = stats_version(p);
                    if rc == OK {
                        let want = before + u64::from(changed);
                        assert_eq!(
                            after, want,
                            "one commit for the batch, if it changes anything"
                        );
                        if !null_version {
                            assert_eq!(v, after);
                        }
                    } else {
                        // a failed commit may take a clock value (and a journal slot)
                        t.commits += 1;
                        assert!(after >= before);
                    }
                    rc
                }
            };
            assert_eq!(rc, want, "{op:?}");
            if rc != OK {
                assert_eq!(v, 0xeeee, "version written on error {rc}");
            }
        }
        Op::BatchRun {
            family,
            ref changes,
            t,
            end,
            null_version,
        } => {
            step(
                w,
                &Op::BatchCreate {
                    family,
                    null_out: 0,
                },
            );
            // the newest batch (or, if none could be created, another live one)
            let b = BatchSel::Live(w.batches.len().saturating_sub(1) as u8);
            for &(kind, r, null) in changes {
                step(w, &Op::BatchQueue { b, kind, r, null });
            }
            // A live table selector picks among the tables of the batch's family (if any):
            // other selectors still reach the other families and dead or forged tables.
            let family = match w.batch(b).1 {
                Some(i) => w.batches[i].family,
                None => 0,
            };
            let same: Vec<usize> = (0..w.live.len())
                .filter(|&i| w.live[i].model.family() == family)
                .collect();
            let t = match t {
                TableSel::Live(i) if !same.is_empty() => {
                    TableSel::Live(same[usize::from(i) % same.len()] as u8)
                }
                t => t,
            };
            if end % 4 == 3 {
                step(w, &Op::BatchDestroy(b));
            } else {
                step(w, &Op::BatchCommit { t, b, null_version });
            }
        }
        Op::BatchDestroy(b) => {
            let (bp, bi) = w.batch(b);
            // SAFETY: any batch value may be passed.
            let rc = unsafe { rtm_batch_destroy(bp) };
            match bi {
                _ if bp.is_null() => assert_eq!(rc, IP),
                None => assert_eq!(rc, IH),
                Some(i) => {
                    assert_eq!(rc, OK);
                    let b = w.batches.swap_remove(i);
                    w.dead_batches.push(b.ptr);
                }
            }
        }
        Op::Collect(t) => {
            let (p, ti) = w.table(t);
            // SAFETY: any pointer value may be passed.
            let rc = unsafe { rtm_collect(p) };
            assert_eq!(
                rc,
                pre(p, false).unwrap_or(if ti.is_some() { OK } else { IH })
            );
        }
        Op::CreateHandle {
            t,
            flags,
            crit,
            null,
        } => {
            let (p, ti) = w.table(t);
            let flags = flags.bits();
            let crit = crit.map(|c| w.route(ti, &c));
            let cp: *const rtm_route = crit.as_ref().map_or(ptr::null(), |c| c);
            let mut h: rtm_handle = 0xeeee;
            let hp: *mut rtm_handle = if is_null(null) {
                ptr::null_mut()
            } else {
                &mut h
            };
            // SAFETY: `cp` is NULL or points to `crit`; `hp` NULL or `h`.
            let rc = unsafe { rtm_create_enumeration_handle(p, flags, cp, hp) };
            let want = match pre(p, hp.is_null()) {
                Some(e) => Err(e),
                None => match ti {
                    None => Err(IH),
                    Some(i) => {
                        let t = &w.live[i];
                        t.model.enumerate(flags, crit.as_ref()).and_then(|routes| {
                            if t.slots_used() >= t.max {
                                Err(NSR)
                            } else {
                                Ok(routes)
                            }
                        })
                    }
                },
            };
            match want {
                Ok(routes) => {
                    assert_eq!(rc, OK, "{op:?}");
                    assert!(w.issued_set.insert(h), "handle value {h:#x} issued twice");
                    w.issued.push(h);
                    let t = &mut w.live[ti.expect("created on a live table")];
                    t.handles.insert(h, routes.into());
                }
                Err(e) => {
                    assert_eq!(rc, e, "{op:?}");
                    assert_eq!(h, 0xeeee);
                }
            }
        }
        Op::Next { h, null } => {
            let h = w.handle(h);
            let s = sentinel();
            let mut out = s;
            let op_out: *mut rtm_route = if is_null(null) {
                ptr::null_mut()
            } else {
                &mut out
            };
            // SAFETY: `op_out` is NULL or `out`.
            let rc = unsafe { rtm_enumerate_get_next_route(h, op_out) };
            let want = if op_out.is_null() {
                Err(IP)
            } else {
                match w.owner(h) {
                    Some(t) => t.handles.get_mut(&h).unwrap().pop_front().ok_or(NMR),
                    None => Err(IH),
                }
            };
            assert_eq!(outcome(rc, &out, &s), want, "{op:?}");
        }
        Op::Batch { h, max, null } => {
            let h = w.handle(h);
            let mut buf = [sentinel(); 256];
            let mut n = u32::MAX;
            let (bp, np): (*mut rtm_route, *mut u32) = match null % 16 {
                7 => (ptr::null_mut(), &mut n),
                15 => (buf.as_mut_ptr(), ptr::null_mut()),
                _ => (buf.as_mut_ptr(), &mut n),
            };
            // SAFETY: `bp` is NULL or 256 routes (max <= 255); `np` NULL or `n`.
            let rc = unsafe { rtm_enumerate_get_next_routes(h, bp, u32::from(max), np) };
            if bp.is_null() || np.is_null() || max == 0 {
                assert_eq!(rc, IP);
                assert_eq!(n, u32::MAX);
                return;
            }
            let want: Result<Vec<rtm_route>, u32> = match w.owner(h) {
                Some(t) => {
                    let q = t.handles.get_mut(&h).unwrap();
                    if q.is_empty() {
                        Err(NMR)
                    } else {
                        let k = q.len().min(usize::from(max));
                        Ok(q.drain(..k).collect())
                    }
                }
                None => Err(IH),
            };
            match want {
                Ok(routes) => {
                    assert_eq!(rc, OK);
                    assert_eq!(n as usize, routes.len());
                    assert_eq!(&buf[..routes.len()], &routes[..]);
                }
                Err(e) => {
                    assert_eq!(rc, e);
                    assert_eq!(n, 0);
                }
            }
            assert!(buf[n as usize..].iter().all(|r| *r == sentinel()));
        }
        Op::Close(h) => {
            let h = w.handle(h);
            // SAFETY: any value may be passed.
            let rc = unsafe { rtm_close_enumeration_handle(h) };
            match w.owner(h) {
                Some(t) => {
                    assert_eq!(rc, OK);
                    t.handles.remove(&h);
                    w.dead.push(h);
                }
                None => assert_eq!(rc, IH),
            }
        }
        Op::BlockDelete {
            t,
            flags,
            crit,
            null_count,
        } => {
            let (p, ti) = w.table(t);
            if ti.is_some_and(|i| w.live[i].commits + w.live[i].model.counts().0 >= MAX_COMMITS) {
                return;
            }
            let flags = flags.bits();
            let crit = crit.map(|c| w.route(ti, &c));
            let cp: *const rtm_route = crit.as_ref().map_or(ptr::null(), |c| c);
            let mut n = 0xeeee_u32;
            let np: *mut u32 = if null_count { ptr::null_mut() } else { &mut n };
            // SAFETY: `cp` is NULL or `crit`; `np` NULL or `n`.
            let rc = unsafe { rtm_block_delete_routes(p, flags, cp, np) };
            let want = match pre(p, false) {
                Some(e) => Err(e),
                None => match ti {
                    None => Err(IH),
                    Some(i) => {
                        let t = &mut w.live[i];
                        match t.model.enumerate(flags, crit.as_ref()) {
                            Err(e) => Err(e),
                            Ok(_) if t.slots_used() >= t.max => Err(NSR),
                            Ok(routes) if routes.is_empty() => Ok(0),
                            Ok(routes) => {
                                // one commit: every matching route is live, and goes
                                let rc = t.write(&[], |m| {
                                    for r in &routes {
                                        assert_eq!(m.delete(r), OK);
                                    }
                                    OK
                                });
                                assert_eq!(rc, OK);
                                Ok(routes.len())
                            }
                        }
                    }
                },
            };
            match want {
                Ok(k) => {
                    assert_eq!(rc, OK, "{op:?}");
                    if !null_count {
                        assert_eq!(n as usize, k);
                    }
                }
                Err(e) => {
                    assert_eq!(rc, e, "{op:?}");
                    assert_eq!(n, 0xeeee);
                }
            }
        }
        Op::FeedOpen {
            t,
            flags,
            crit,
            null,
        } => {
            let (p, ti) = w.table(t);
            let flags = flags.bits();
            let crit = crit.map(|c| w.route(ti, &c));
            let cp: *const rtm_route = crit.as_ref().map_or(ptr::null(), |c| c);
            let mut f: rtm_feed = 0xeeee;
            let fp: *mut rtm_feed = if is_null(null) {
                ptr::null_mut()
            } else {
                &mut f
            };
            // SAFETY: `cp` is NULL or `crit`; `fp` NULL or `f`.
            let rc = unsafe { rtm_feed_open(p, flags, cp, fp) };
            let want = match pre(p, fp.is_null()) {
                Some(e) => Err(e),
                None => match ti {
                    None => Err(IH),
                    Some(i) => {
                        let t = &w.live[i];
                        match t
                            .model
                            .enumerate(flags | RTM_ONLY_BEST_ROUTES, crit.as_ref())
                        {
                            Err(e) => Err(e),
                            Ok(_) if t.slots_used() >= t.max => Err(NSR),
                            Ok(_) => Ok(()),
                        }
                    }
                },
            };
            match want {
                Ok(()) => {
                    assert_eq!(rc, OK, "{op:?}");
                    assert_eq!(f >> 32, p.addr() as u64, "a feed carries its table's token");
                    assert!(!w.dead_feeds.contains(&f), "a feed value was reused");
                    let t = &mut w.live[ti.expect("opened on a live table")];
                    assert!(!t.feeds.contains_key(&f));
                    t.feeds.insert(
                        f,
                        FeedModel {
                            flags,
                            crit,
                            queue: VecDeque::new(),
                        },
                    );
                }
                Err(e) => {
                    assert_eq!(rc, e, "{op:?}");
                    assert_eq!(f, 0xeeee);
                }
            }
        }
        Op::Dequeue { f, null } => {
            let f = w.feed(f);
            let s = sentinel();
            let (mut cur, mut prev, mut flags) = (s, s, 0xeeee_u32);
            let (fl, cp, pp): (*mut u32, *mut rtm_route, *mut rtm_route) = match null % 16 {
                7 => (ptr::null_mut(), &mut cur, &mut prev),
                14 => (&mut flags, ptr::null_mut(), &mut prev),
                15 => (&mut flags, &mut cur, ptr::null_mut()),
                _ => (&mut flags, &mut cur, &mut prev),
            };
            // SAFETY: each pointer is NULL or a local.
            let rc = unsafe { rtm_dequeue_route_change_message(f, fl, cp, pp) };
            if fl.is_null() {
                assert_eq!(rc, IP);
                return;
            }
            let Some(t) = w.feed_owner(f) else {
                assert_eq!(rc, IH);
                return;
            };
            let q = &mut t.feeds.get_mut(&f).unwrap().queue;
            let written = |p: *mut rtm_route, r: &rtm_route| (!p.is_null()).then_some(*r);
            let (wc, wp) = (written(cp, &cur), written(pp, &prev));
            match take_message(q, flags, wc.as_ref(), wp.as_ref()) {
                None => {
                    assert_eq!(rc, RTM_ERROR_NO_MESSAGES);
                    assert_eq!(flags, 0xeeee);
                }
                Some((mflags, mcur, mprev)) => {
                    assert_eq!(
                        rc,
                        if q.is_empty() {
                            OK
                        } else {
                            RTM_ERROR_MORE_MESSAGES
                        }
                    );
                    assert_eq!(flags, mflags);
                    let want_cur = if cp.is_null() { None } else { mcur };
                    let want_prev = if pp.is_null() { None } else { mprev };
                    assert_eq!(want_cur.unwrap_or(s), cur);
                    assert_eq!(want_prev.unwrap_or(s), prev);
                }
            }
        }
        Op::FeedClose(f) => {
            let f = w.feed(f);
            // SAFETY: any value may be passed.
            let rc = unsafe { rtm_feed_close(f) };
            match w.feed_owner(f) {
                Some(t) => {
                    assert_eq!(rc, OK);
                    t.feeds.remove(&f);
                    w.dead_feeds.push(f);
                }
                None => assert_eq!(rc, IH),
            }
        }
        Op::FibCreate { t, null } => {
            let (p, ti) = w.table(t);
            let mut f: rtm_fib = 0xeeee;
            let fp: *mut rtm_fib = if is_null(null) {
                ptr::null_mut()
            } else {
                &mut f
            };
            // SAFETY: `fp` is NULL or `f`.
            let rc = unsafe { rtm_fib_create(p, fp) };
            let want = match pre(p, fp.is_null()) {
                Some(e) => e,
                None => match ti {
                    None => IH,
                    // A Fib holds one slot and needs another while it builds.
                    Some(i) if w.live[i].slots_used() + 2 > w.live[i].max => NSR,
                    Some(_) => OK,
                },
            };
            assert_eq!(rc, want, "{op:?}");
            if rc == OK {
                assert!(!w.dead_feeds.contains(&f), "a Fib value was reused");
                let t = &mut w.live[ti.unwrap()];
                let snap = t.model.snapshot();
                t.fibs.insert(f, snap);
            } else {
                assert_eq!(f, 0xeeee);
            }
        }
        Op::FibSync { f, null } => {
            let f = w.fib(f);
            let mut n = 0xeeee_u32;
            let np: *mut u32 = if is_null(null) {
                ptr::null_mut()
            } else {
                &mut n
            };
            // SAFETY: `np` is NULL or `n`.
            let rc = unsafe { rtm_fib_sync(f, np) };
            match w.fib_owner(f) {
                Some(t) => {
                    assert_eq!(rc, OK);
                    let snap = t.model.snapshot();
                    t.fibs.insert(f, snap);
                }
                None => {
                    assert_eq!(rc, IH);
                    assert_eq!(n, 0xeeee);
                }
            }
        }
        Op::FibLookup { f, addr, null } => {
            let f = w.fib(f);
            let mut hop = 0xeeee_u32;
            let owner = w.live.iter().position(|t| t.fibs.contains_key(&f));
            let a = match owner {
                Some(i) => w.live[i].model.addr(&addr),
                None => [1; 16],
            };
            let (ap, hp): (*const u8, *mut u32) = match null % 16 {
                7 => (ptr::null(), &mut hop),
                15 => (a.as_ptr(), ptr::null_mut()),
                _ => (a.as_ptr(), &mut hop),
            };
            // SAFETY: `ap` is NULL or 16 readable bytes; `hp` NULL or `hop`.
            let rc = unsafe { rtm_fib_lookup(f, ap, hp) };
            let want = if ap.is_null() || hp.is_null() {
                Err(IP)
            } else {
                match owner {
                    None => Err(IH),
                    Some(i) => w.live[i].fibs[&f].lookup(&a).map(|r| r.value as u32),
                }
            };
            let got = if rc == OK { Ok(hop) } else { Err(rc) };
            assert_eq!(got, want, "{op:?}");
        }
        Op::FibBatch { f, addrs, n, null } => {
            let f = w.fib(f);
            let n = usize::from(n % 4);
            let owner = w.live.iter().position(|t| t.fibs.contains_key(&f));
            let width = owner.map_or(4, |i| if w.live[i].model.family() == 4 { 4 } else { 16 });
            let mut bytes = [0u8; 3 * 16];
            for (k, a) in addrs.iter().enumerate() {
                let b = owner.map_or([2; 16], |i| w.live[i].model.addr(a));
                bytes[k * width..k * width + width].copy_from_slice(&b[..width]);
            }
            let mut hops = [0xeeee_u32; 3];
            let mut found = [0xee_u8; 3];
            let nul = is_null(null) && n > 0;
            // SAFETY: the buffers hold 3 >= n elements; NULL only when `nul`.
            let rc = unsafe {
                rtm_fib_lookup_batch(
                    f,
                    if nul { ptr::null() } else { bytes.as_ptr() },
                    n as u32,
                    hops.as_mut_ptr(),
                    found.as_mut_ptr(),
                )
            };
            if nul {
                assert_eq!(rc, IP);
                return;
            }
            match owner {
                None => assert_eq!(rc, IH),
                Some(i) => {
                    assert_eq!(rc, OK);
                    let snap = &w.live[i].fibs[&f];
                    for k in 0..n {
                        let mut a = [0u8; 16];
                        a[..width].copy_from_slice(&bytes[k * width..k * width + width]);
                        let want = snap.lookup(&a).ok().map(|r| r.value as u32);
                        assert_eq!(
                            (found[k], hops[k]),
                            (u8::from(want.is_some()), want.unwrap_or(0))
                        );
                    }
                    assert!(hops[n..].iter().all(|&h| h == 0xeeee));
                }
            }
        }
        Op::FibDestroy(f) => {
            let f = w.fib(f);
            // SAFETY: any value may be passed.
            let rc = unsafe { rtm_fib_destroy(f) };
            match w.fib_owner(f) {
                Some(t) => {
                    assert_eq!(rc, OK);
                    t.fibs.remove(&f);
                    w.dead_feeds.push(f);
                }
                None => assert_eq!(rc, IH),
            }
        }
    }
}

/// Drains and closes every open handle against its snapshot, checks the counts, destroys
/// every table, and checks that nothing issued or destroyed is valid any more.
fn finish(w: &mut World) {
    for b in std::mem::take(&mut w.batches) {
        // SAFETY: a live batch.
        assert_eq!(unsafe { rtm_batch_destroy(b.ptr) }, OK);
        w.dead_batches.push(b.ptr);
    }
    for &b in &w.dead_batches {
        let r = sentinel();
        // SAFETY: any batch value may be passed; `r` is a local.
        unsafe {
            assert_eq!(rtm_batch_add_route(b, &r), IH);
            assert_eq!(rtm_batch_commit(ptr::null_mut(), b, ptr::null_mut()), IH);
            assert_eq!(rtm_batch_destroy(b), IH);
        }
    }
    for mut t in std::mem::take(&mut w.live) {
        for f in std::mem::take(&mut t.fibs).into_keys() {
            // SAFETY: any value may be passed.
            assert_eq!(unsafe { rtm_fib_destroy(f) }, OK);
            w.dead_feeds.push(f);
        }
        for (f, fm) in std::mem::take(&mut t.feeds) {
            let n = fm.queue.len();
            let mut queue = fm.queue;
            for i in 0..n {
                let s = sentinel();
                let (mut cur, mut prev, mut flags) = (s, s, 0);
                // SAFETY: locals.
                let rc =
                    unsafe { rtm_dequeue_route_change_message(f, &mut flags, &mut cur, &mut prev) };
                let (mflags, mcur, mprev) =
                    take_message(&mut queue, flags, Some(&cur), Some(&prev)).expect("queued");
                assert_eq!(
                    rc,
                    if i + 1 == n {
                        OK
                    } else {
                        RTM_ERROR_MORE_MESSAGES
                    }
                );
                assert_eq!(
                    (flags, mcur.unwrap_or(s), mprev.unwrap_or(s)),
                    (mflags, cur, prev)
                );
            }
            let mut flags = 0;
            // SAFETY: locals; any feed value may be passed.
            unsafe {
                let rc = rtm_dequeue_route_change_message(
                    f,
                    &mut flags,
                    ptr::null_mut(),
                    ptr::null_mut(),
                );
                assert_eq!(rc, RTM_ERROR_NO_MESSAGES);
                assert_eq!(rtm_feed_close(f), OK);
            }
            w.dead_feeds.push(f);
        }
        for (h, frozen) in std::mem::take(&mut t.handles) {
            for want in frozen {
                let mut out = sentinel();
                // SAFETY: `out` is a local.
                assert_eq!(unsafe { rtm_enumerate_get_next_route(h, &mut out) }, OK);
                assert_eq!(out, want);
            }
            let mut out = sentinel();
            // SAFETY: `out` is a local.
            assert_eq!(unsafe { rtm_enumerate_get_next_route(h, &mut out) }, NMR);
            // SAFETY: any value may be passed.
            assert_eq!(unsafe { rtm_close_enumeration_handle(h) }, OK);
        }
        let mut st = rtm_stats::default();
        // SAFETY: `st` is a local.
        assert_eq!(unsafe { rtm_table_stats(t.ptr, &mut st) }, OK);
        assert_eq!(st.open_enumerations, 0);
        let (routes, networks) = t.model.counts();
        assert_eq!(
            (st.live_routes, st.networks),
            (routes as u64, networks as u64)
        );
        // SAFETY: any pointer value may be passed.
        assert_eq!(unsafe { rtm_table_destroy(t.ptr) }, OK);
        w.destroyed.push(t.ptr);
    }
    for &h in &w.issued {
        let mut out = sentinel();
        // SAFETY: `out` is a local; any handle value may be passed.
        unsafe {
            assert_eq!(rtm_enumerate_get_next_route(h, &mut out), IH);
            assert_eq!(rtm_close_enumeration_handle(h), IH);
        }
    }
    for &f in &w.dead_feeds {
        let mut flags = 0;
        // SAFETY: a local; any feed value may be passed.
        unsafe {
            assert_eq!(
                rtm_dequeue_route_change_message(f, &mut flags, ptr::null_mut(), ptr::null_mut()),
                IH
            );
            assert_eq!(rtm_feed_close(f), IH);
            assert_eq!(rtm_fib_destroy(f), IH);
        }
    }
    for &p in &w.destroyed {
        // SAFETY: any pointer value may be passed.
        assert_eq!(unsafe { rtm_table_destroy(p) }, IH);
    }
}

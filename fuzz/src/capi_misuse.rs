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
//! model's.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::ptr;

use arbitrary::Arbitrary;
use rtm::{InterfaceId, Ipv4Net, Ipv6Net, ProtocolId, Route, RouteKey};
use rtm_capi::*;

use crate::input::{decode, AddrIn, RouteIn};
use crate::model::{net_mask, Crit, Fam, Model};

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
    /// Deletes the routes an enumeration would return; how many.
    fn delete_all(&mut self, routes: &[rtm_route]) -> usize;
    fn counts(&self) -> (usize, usize);
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

    fn delete_all(&mut self, routes: &[rtm_route]) -> usize {
        routes.iter().filter(|r| self.delete(r) == OK).count()
    }

    fn counts(&self) -> (usize, usize) {
        (self.routes.len(), self.network_count())
    }
}

struct Table {
    ptr: *mut rtm_table,
    max: usize,
    model: Box<dyn CModel>,
    handles: BTreeMap<u64, VecDeque<rtm_route>>,
}

#[derive(Default)]
struct World {
    live: Vec<Table>,
    destroyed: Vec<*mut rtm_table>,
    issued: Vec<u64>,
    issued_set: HashSet<u64>,
    /// Closed handles and handles of destroyed tables.
    dead: Vec<u64>,
}

impl World {
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
            let rc = unsafe { rtm_table_create(family, max, out) };
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
                    w.destroyed.push(p);
                }
            }
        }
        Op::Add { t, r, null } | Op::Delete { t, r, null } => {
            let (p, ti) = w.table(t);
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
                Some(i) if add => w.live[i].model.add(&route),
                Some(i) => w.live[i].model.delete(&route),
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
                    assert_eq!(st.open_enumerations, t.handles.len() as u64);
                    assert_eq!(st.max_enumerations as usize, t.max);
                    assert_eq!(st.family, t.model.family());
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
                            if t.handles.len() >= t.max {
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
                            Ok(_) if t.handles.len() >= t.max => Err(NSR),
                            Ok(routes) => Ok(t.model.delete_all(&routes)),
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
    }
}

/// Drains and closes every open handle against its snapshot, checks the counts, destroys
/// every table, and checks that nothing issued or destroyed is valid any more.
fn finish(w: &mut World) {
    for mut t in std::mem::take(&mut w.live) {
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
    for &p in &w.destroyed {
        // SAFETY: any pointer value may be passed.
        assert_eq!(unsafe { rtm_table_destroy(p) }, IH);
    }
}

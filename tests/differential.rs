//! Differential test: random operation sequences against a `BTreeMap` model that keeps
//! the history every open enumeration needs (a frozen copy of the table at its snapshot).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use proptest::prelude::*;
use rtm::{
    Criteria, EnumHandle, Enumeration, Error, InterfaceId, Ipv4Net, OwnedEnumeration, ProtocolId,
    Route, RouteKey, RouteTable, Version,
};

const PREFIXES: [&str; 9] = [
    "0.0.0.0/0",
    "10.0.0.0/8",
    "10.0.0.0/16",
    "10.1.0.0/16",
    "10.1.2.0/24",
    "10.1.2.128/25",
    "10.1.2.3/32",
    "192.168.0.0/16",
    "192.168.1.0/24",
];
/// Prefixes with host bits set: every call must reject them.
const BAD: [&str; 2] = ["10.1.2.3/8", "192.168.1.1/24"];

fn prefix(i: usize) -> Ipv4Net {
    PREFIXES[i % PREFIXES.len()].parse().unwrap()
}

type Key = RouteKey<Ipv4Net>;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Attrs {
    priority: u32,
    metric: u32,
    enabled: bool,
    value: u64,
    /// Which commit wrote this version (not part of the route): a block enable rewrites a
    /// route with the same value, and the dead-version count must still tell them apart.
    serial: u64,
}

type Model = BTreeMap<Key, Attrs>;

fn key_of(k: (usize, u32, u32, u8)) -> Key {
    RouteKey::new(
        prefix(k.0),
        ProtocolId(k.1),
        InterfaceId(k.2),
        Ipv4Addr::new(192, 0, 2, k.3),
    )
}

#[derive(Clone, Debug)]
enum Crit {
    Network(usize),
    Interface(u32),
    Protocol(u32),
    BestOnly,
    IncludeDisabled,
    Within(usize),
    StartAfter((usize, u32, u32, u8)),
    BadNetwork(usize),
    Covering(usize),
}

#[derive(Clone, Debug)]
enum Op {
    Add((usize, u32, u32, u8), u32, u32, bool),
    AddBad(usize),
    Delete((usize, u32, u32, u8)),
    Get((usize, u32, u32, u8)),
    Best(usize),
    Lookup(u32),
    /// Open with these criteria: 0 RAII, 1 handle, 2 owned.
    Open(Vec<Crit>, u8),
    Advance(usize, usize),
    /// Read a batch of at most this many (0 is invalid for a handle).
    Batch(usize, usize),
    BlockDelete(Vec<Crit>),
    BlockEnable(Vec<Crit>, bool),
    Close(usize),
    NextClosed(usize),
    Forged(u64),
    Flipped(usize, u8),
    Collect,
}

fn key_strategy() -> impl Strategy<Value = (usize, u32, u32, u8)> {
    (0..PREFIXES.len(), 1u32..4, 1u32..3, 1u8..3)
}

fn crit_strategy() -> impl Strategy<Value = Crit> {
    prop_oneof![
        (0..PREFIXES.len()).prop_map(Crit::Network),
        (1u32..3).prop_map(Crit::Interface),
        (1u32..4).prop_map(Crit::Protocol),
        Just(Crit::BestOnly),
        Just(Crit::IncludeDisabled),
        (0..PREFIXES.len()).prop_map(Crit::Within),
        key_strategy().prop_map(Crit::StartAfter),
        (0..BAD.len()).prop_map(Crit::BadNetwork),
        (0..PREFIXES.len()).prop_map(Crit::Covering),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let interesting_addr = prop_oneof![
        Just(0x0a01_0203u32),
        Just(0x0a01_0281),
        Just(0x0a01_0301),
        Just(0x0a00_0001),
        Just(0xc0a8_0101),
        Just(0xc0a8_0201),
        any::<u32>(),
    ];
    prop_oneof![
        6 => (key_strategy(), 0u32..3, 0u32..3, prop::bool::weighted(0.8)).prop_map(|(k, p, m, e)| Op::Add(k, p, m, e)),
        1 => (0..BAD.len()).prop_map(Op::AddBad),
        3 => key_strategy().prop_map(Op::Delete),
        2 => key_strategy().prop_map(Op::Get),
        2 => (0..PREFIXES.len()).prop_map(Op::Best),
        2 => interesting_addr.prop_map(Op::Lookup),
        2 => (prop::collection::vec(crit_strategy(), 0..3), 0u8..3).prop_map(|(c, h)| Op::Open(c, h)),
        4 => (0usize..8, 1usize..6).prop_map(|(i, n)| Op::Advance(i, n)),
        2 => (0usize..8, 0usize..5).prop_map(|(i, n)| Op::Batch(i, n)),
        1 => prop::collection::vec(crit_strategy(), 0..3).prop_map(Op::BlockDelete),
        1 => (prop::collection::vec(crit_strategy(), 0..3), any::<bool>()).prop_map(|(c, e)| Op::BlockEnable(c, e)),
        2 => (0usize..8).prop_map(Op::Close),
        1 => (0usize..8).prop_map(Op::NextClosed),
        1 => any::<u64>().prop_map(Op::Forged),
        1 => (0usize..8, 0u8..64).prop_map(|(i, b)| Op::Flipped(i, b)),
        1 => Just(Op::Collect),
    ]
}

fn build(crits: &[Crit]) -> Criteria<Ipv4Net> {
    let mut c = Criteria::all();
    for x in crits {
        c = match *x {
            Crit::Network(i) => c.network(prefix(i)),
            Crit::Interface(i) => c.interface(InterfaceId(i)),
            Crit::Protocol(p) => c.protocol(ProtocolId(p)),
            Crit::BestOnly => c.best_only(),
            Crit::IncludeDisabled => c.include_disabled(),
            Crit::Within(i) => c.within(prefix(i)),
            Crit::StartAfter(k) => c.start_after(key_of(k)),
            Crit::BadNetwork(i) => c.network(BAD[i].parse().unwrap()),
            Crit::Covering(i) => c.covering(prefix(i)),
        };
    }
    c
}

fn route(k: &Key, a: &Attrs) -> Route<Ipv4Net, u64> {
    Route {
        key: *k,
        priority: a.priority,
        metric: a.metric,
        enabled: a.enabled,
        value: a.value,
    }
}

fn best(model: &Model, p: Ipv4Net) -> Option<Route<Ipv4Net, u64>> {
    model
        .iter()
        .filter(|(k, a)| k.prefix == p && a.enabled)
        .min_by_key(|(k, a)| (a.priority, a.metric, **k))
        .map(|(k, a)| route(k, a))
}

/// What an enumeration with these criteria returns from this snapshot, by `Criteria`'s docs.
fn expected(model: &Model, crits: &[Crit]) -> Vec<Route<Ipv4Net, u64>> {
    let (mut network, mut interface, mut protocol, mut within, mut covering, mut start) =
        (None, None, None, None, None, None);
    let (mut best_only, mut disabled) = (false, false);
    for x in crits {
        match *x {
            Crit::Network(i) => network = Some(prefix(i)),
            Crit::Interface(i) => interface = Some(InterfaceId(i)),
            Crit::Protocol(p) => protocol = Some(ProtocolId(p)),
            Crit::BestOnly => best_only = true,
            Crit::IncludeDisabled => disabled = true,
            // within and covering are both range filters: the last one given wins
            Crit::Within(i) => (within, covering) = (Some(prefix(i)), None),
            Crit::Covering(i) => (within, covering) = (None, Some(prefix(i))),
            Crit::StartAfter(k) => start = Some(key_of(k)),
            Crit::BadNetwork(_) => network = None, // overridden by a later Network (checked by the caller)
        }
    }
    model
        .iter()
        .filter(|(k, a)| {
            (a.enabled || disabled)
                && network.is_none_or(|n| k.prefix == n)
                && interface.is_none_or(|i| k.interface == i)
                && protocol.is_none_or(|p| k.protocol == p)
                && within.is_none_or(|w: Ipv4Net| w.contains(&k.prefix))
                && covering.is_none_or(|c: Ipv4Net| k.prefix.contains(&c))
                && start.is_none_or(|s| **k > s)
                && (!best_only || best(model, k.prefix).is_some_and(|b| b.key == **k))
        })
        .map(|(k, a)| route(k, a))
        .collect()
}

/// The same filter twice keeps the last: bad only if the last network given is.
fn bad_network(crits: &[Crit]) -> bool {
    crits
        .iter()
        .rev()
        .find(|c| matches!(c, Crit::Network(_) | Crit::BadNetwork(_)))
        .is_some_and(|c| matches!(c, Crit::BadNetwork(_)))
}

enum Cursor<'t> {
    Raii(Enumeration<'t, Ipv4Net, u64>),
    Handle(EnumHandle),
    Owned(OwnedEnumeration<Ipv4Net, u64>),
}

struct Open<'t> {
    cursor: Cursor<'t>,
    snapshot: Version,
    expect: Vec<Route<Ipv4Net, u64>>,
    at: usize,
    /// The whole table at the snapshot: what this enumeration keeps alive.
    frozen: Model,
}

fn run(ops: Vec<Op>, max_enums: usize) -> Result<(), TestCaseError> {
    let table = Arc::new(RouteTable::<Ipv4Net, u64>::with_max_enumerations(max_enums));
    let other = RouteTable::<Ipv4Net, u64>::new();
    let foreign = other.create_enumeration_handle(Criteria::all()).unwrap();
    let mut model = Model::new();
    let mut open: Vec<Open> = Vec::new();
    let mut closed: Vec<EnumHandle> = Vec::new();
    let mut next_value = 0u64;
    let mut serial = 0u64;
    for op in ops {
        match op {
            Op::Add(k, priority, metric, enabled) => {
                let key = key_of(k);
                next_value += 1;
                serial += 1;
                let a = Attrs {
                    priority,
                    metric,
                    enabled,
                    value: next_value,
                    serial,
                };
                let r = table.add_route(route(&key, &a));
                let old = model.insert(key, a);
                prop_assert_eq!(r, Ok(old.map(|o| route(&key, &o))));
            }
            Op::AddBad(i) => {
                let key = RouteKey::new(
                    BAD[i].parse().unwrap(),
                    ProtocolId(1),
                    InterfaceId(1),
                    Ipv4Addr::LOCALHOST,
                );
                prop_assert_eq!(
                    table.add_route(Route::new(key, 0)),
                    Err(Error::InvalidParameter)
                );
                prop_assert_eq!(table.delete_route(&key), Err(Error::InvalidParameter));
                prop_assert_eq!(table.get_route(&key), None);
                prop_assert_eq!(table.best_route(&key.prefix), None);
            }
            Op::Delete(k) => {
                let key = key_of(k);
                let r = table.delete_route(&key);
                match model.remove(&key) {
                    Some(a) => prop_assert_eq!(r, Ok(route(&key, &a))),
                    None => prop_assert_eq!(r, Err(Error::NoSuchRoute)),
                }
            }
            Op::Get(k) => {
                let key = key_of(k);
                prop_assert_eq!(
                    table.get_route(&key),
                    model.get(&key).map(|a| route(&key, a))
                );
            }
            Op::Best(i) => {
                prop_assert_eq!(table.best_route(&prefix(i)), best(&model, prefix(i)));
            }
            Op::Lookup(a) => {
                let addr = Ipv4Addr::from(a);
                let mut nets: Vec<Ipv4Net> = model.keys().map(|k| k.prefix).collect();
                nets.dedup();
                nets.sort_by_key(|n| std::cmp::Reverse(n.prefix_len()));
                let want = nets
                    .iter()
                    .filter(|n| n.contains(&addr))
                    .find_map(|n| best(&model, *n));
                prop_assert_eq!(table.lookup(addr), want);
            }
            Op::Open(crits, as_handle) => {
                let c = build(&crits);
                let bad = bad_network(&crits);
                let r = match as_handle {
                    0 => table.enumerate(c).map(Cursor::Raii),
                    1 => table.create_enumeration_handle(c).map(Cursor::Handle),
                    _ => table.enumerate_owned(c).map(Cursor::Owned),
                };
                if bad {
                    prop_assert!(matches!(r, Err(Error::InvalidParameter)));
                } else if open.len() >= table.max_enumerations() {
                    prop_assert!(matches!(r, Err(Error::NoSystemResources)));
                } else {
                    let cursor = r.map_err(|e| TestCaseError::fail(format!("open failed: {e}")))?;
                    let snapshot = match &cursor {
                        Cursor::Raii(e) => e.snapshot(),
                        Cursor::Handle(h) => table.enumeration_snapshot(*h).unwrap(),
                        Cursor::Owned(e) => e.snapshot(),
                    };
                    prop_assert_eq!(snapshot, table.version());
                    open.push(Open {
                        cursor,
                        snapshot,
                        expect: expected(&model, &crits),
                        at: 0,
                        frozen: model.clone(),
                    });
                }
            }
            Op::Advance(i, n) => {
                if open.is_empty() {
                    continue;
                }
                let i = i % open.len();
                let o = &mut open[i];
                for _ in 0..n {
                    let want = o.expect.get(o.at).cloned();
                    match &mut o.cursor {
                        Cursor::Raii(e) => prop_assert_eq!(e.next(), want),
                        Cursor::Owned(e) => prop_assert_eq!(e.next(), want),
                        Cursor::Handle(h) => {
                            prop_assert_eq!(
                                table.enumerate_get_next_route(*h),
                                want.ok_or(Error::NoMoreRoutes)
                            );
                            prop_assert_eq!(table.enumeration_snapshot(*h), Ok(o.snapshot));
                        }
                    }
                    o.at = (o.at + 1).min(o.expect.len());
                }
            }
            Op::Batch(i, max) => {
                if open.is_empty() {
                    continue;
                }
                let i = i % open.len();
                let o = &mut open[i];
                let end = (o.at + max).min(o.expect.len());
                let want = o.expect[o.at..end].to_vec();
                // a batch appends: what `out` held before stays
                let mut out = vec![route(
                    &key_of((0, 9, 9, 9)),
                    &Attrs {
                        priority: 0,
                        metric: 0,
                        enabled: true,
                        value: 0,
                        serial: 0,
                    },
                )];
                let n = match &mut o.cursor {
                    Cursor::Raii(e) => Ok(e.next_batch(max, &mut out)),
                    Cursor::Owned(e) => Ok(e.next_batch(max, &mut out)),
                    Cursor::Handle(h) => table.enumerate_get_next_routes(*h, max, &mut out),
                };
                if max == 0 && matches!(o.cursor, Cursor::Handle(_)) {
                    prop_assert_eq!(n, Err(Error::InvalidParameter));
                    prop_assert_eq!(out.len(), 1);
                } else {
                    prop_assert_eq!(n, Ok(want.len()));
                    prop_assert_eq!(&out[1..], &want[..]);
                    o.at = end;
                }
            }
            Op::BlockDelete(crits) | Op::BlockEnable(crits, _) if bad_network(&crits) => {
                prop_assert_eq!(
                    table.delete_routes(build(&crits)),
                    Err(Error::InvalidParameter)
                );
                prop_assert_eq!(
                    table.set_routes_enabled(build(&crits), true),
                    Err(Error::InvalidParameter)
                );
            }
            Op::BlockDelete(crits) => {
                let r = table.delete_routes(build(&crits));
                if open.len() >= table.max_enumerations() {
                    // the snapshot of a block operation takes a slot for the call
                    prop_assert_eq!(r, Err(Error::NoSystemResources));
                } else {
                    let gone = expected(&model, &crits);
                    for g in &gone {
                        model.remove(&g.key);
                    }
                    prop_assert_eq!(r, Ok(gone.len()));
                }
            }
            Op::BlockEnable(crits, enabled) => {
                let r = table.set_routes_enabled(build(&crits), enabled);
                if open.len() >= table.max_enumerations() {
                    prop_assert_eq!(r, Err(Error::NoSystemResources));
                } else {
                    let mut all = crits.clone();
                    all.push(Crit::IncludeDisabled);
                    let mut changed = 0;
                    for m in expected(&model, &all) {
                        let a = model.get_mut(&m.key).unwrap();
                        if a.enabled != enabled {
                            serial += 1;
                            a.enabled = enabled;
                            a.serial = serial;
                            changed += 1;
                        }
                    }
                    prop_assert_eq!(r, Ok(changed));
                }
            }
            Op::Close(i) => {
                if open.is_empty() {
                    continue;
                }
                let o = open.swap_remove(i % open.len());
                match o.cursor {
                    Cursor::Raii(e) => prop_assert_eq!(e.close(), Ok(())),
                    Cursor::Owned(e) => prop_assert_eq!(e.close(), Ok(())),
                    Cursor::Handle(h) => {
                        prop_assert_eq!(table.close_enumeration_handle(h), Ok(()));
                        closed.push(h);
                    }
                }
            }
            Op::NextClosed(i) => {
                if closed.is_empty() {
                    continue;
                }
                let h = closed[i % closed.len()];
                prop_assert_eq!(table.enumerate_get_next_route(h), Err(Error::InvalidHandle));
                prop_assert_eq!(table.close_enumeration_handle(h), Err(Error::InvalidHandle));
                prop_assert_eq!(
                    table.enumerate_get_next_route(foreign),
                    Err(Error::InvalidHandle)
                );
            }
            Op::Forged(raw) => {
                let live = open
                    .iter()
                    .any(|o| matches!(o.cursor, Cursor::Handle(h) if h.into_raw() == raw));
                if !live {
                    let h = EnumHandle::from_raw(raw);
                    prop_assert_eq!(table.enumerate_get_next_route(h), Err(Error::InvalidHandle));
                    prop_assert_eq!(table.close_enumeration_handle(h), Err(Error::InvalidHandle));
                }
            }
            Op::Flipped(i, bit) => {
                let handles: Vec<EnumHandle> = open
                    .iter()
                    .filter_map(|o| match o.cursor {
                        Cursor::Handle(h) => Some(h),
                        Cursor::Raii(_) | Cursor::Owned(_) => None,
                    })
                    .collect();
                if handles.is_empty() {
                    continue;
                }
                let h = EnumHandle::from_raw(handles[i % handles.len()].into_raw() ^ (1 << bit));
                match open
                    .iter_mut()
                    .find(|o| matches!(o.cursor, Cursor::Handle(x) if x == h))
                {
                    Some(o) => {
                        // the flip named another live handle: it must behave as that one
                        let want = o.expect.get(o.at).cloned();
                        prop_assert_eq!(
                            table.enumerate_get_next_route(h),
                            want.ok_or(Error::NoMoreRoutes)
                        );
                        o.at = (o.at + 1).min(o.expect.len());
                    }
                    None => prop_assert_eq!(
                        table.enumerate_get_next_route(h),
                        Err(Error::InvalidHandle)
                    ),
                }
            }
            Op::Collect => {
                table.collect();
                let current: BTreeSet<u64> = model.values().map(|a| a.serial).collect();
                let pinned: BTreeSet<u64> = open
                    .iter()
                    .flat_map(|o| o.frozen.values().map(|a| a.serial))
                    .filter(|v| !current.contains(v))
                    .collect();
                let s = table.stats();
                prop_assert_eq!(s.dead_versions, pinned.len());
                prop_assert_eq!(s.open_enumerations, open.len());
                prop_assert_eq!(s.live_routes, model.len());
            }
        }
        prop_assert_eq!(table.route_count(), model.len());
    }
    let networks: BTreeSet<Ipv4Net> = model.keys().map(|k| k.prefix).collect();
    prop_assert_eq!(table.network_count(), networks.len());
    // Close everything: no dead version may survive a collect.
    for o in open {
        if let Cursor::Handle(h) = o.cursor {
            prop_assert_eq!(table.close_enumeration_handle(h), Ok(()));
        }
    }
    table.collect();
    prop_assert_eq!(table.stats().dead_versions, 0);
    prop_assert_eq!(table.stats().open_enumerations, 0);
    other.close_enumeration_handle(foreign).unwrap();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn table_matches_model(ops in prop::collection::vec(op_strategy(), 1..200), max_enums in 1usize..5) {
        run(ops, max_enums)?;
    }
}

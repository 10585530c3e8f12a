//! Feeds: what changed since a snapshot (the contract in the crate docs, `Feed`).
//!
//! - a differential test against a model that keeps the table's whole history, so that it
//!   can say what every commit did to `E(C, ·)` for any criteria `C`;
//! - subscribers that keep a copy current while several writers churn;
//! - `Lagged`, the slot pool, the memory a stalled feed may hold, `next_timeout`;
//! - reclamation with feeds open: every value dropped exactly once, and a panicking `Drop`.
//!
//! The tests of this file run one at a time: crossbeam-epoch's collector is process-wide,
//! and `collect()` frees at once only when no other thread is pinned.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rtm::{
    Change, Criteria, Enumeration, Error, Feed, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey,
    RouteTable, Version,
};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// How many times longer to run the concurrent tests: `RTM_STRESS_SCALE` (default 1), as
/// in `tests/concurrency.rs`.
fn scale() -> u32 {
    std::env::var("RTM_STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1)
}

type Key = RouteKey<Ipv4Net>;
type R = Route<Ipv4Net, u64>;
/// A set of routes, by key: an enumeration's result, or a copy kept from a feed.
type Routes = BTreeMap<Key, R>;

/// Nested and neighbouring networks, so that `within`, `network` and best routes meet.
const PREFIXES: [&str; 7] = [
    "0.0.0.0/0",
    "10.0.0.0/8",
    "10.0.0.0/16",
    "10.1.0.0/16",
    "10.1.2.0/24",
    "10.1.2.128/25",
    "192.168.0.0/16",
];

fn prefix(i: usize) -> Ipv4Net {
    PREFIXES[i % PREFIXES.len()].parse().unwrap()
}

/// (prefix index, protocol, interface, last byte of the next hop)
type KeyIn = (usize, u32, u32, u8);

fn key_of(k: KeyIn) -> Key {
    RouteKey::new(
        prefix(k.0),
        ProtocolId(k.1),
        InterfaceId(k.2),
        Ipv4Addr::new(192, 0, 2, k.3),
    )
}

fn route(key: Key, priority: u32, metric: u32, enabled: bool, value: u64) -> R {
    Route {
        key,
        priority,
        metric,
        enabled,
        value,
    }
}

/// The network's best route: enabled, smallest (priority, metric), ties to the smaller key.
fn best(t: &Routes, net: Ipv4Net) -> Option<&R> {
    t.range(RouteKey::new(net, ProtocolId(0), InterfaceId(0), Ipv4Addr::UNSPECIFIED)..)
        .map(|(_, r)| r)
        .take_while(|r| r.key.prefix == net)
        .filter(|r| r.enabled)
        .min_by_key(|r| (r.priority, r.metric, r.key))
}

/// The network's best set: its enabled routes of the smallest (priority, metric), by key.
fn best_set(t: &Routes, net: Ipv4Net) -> Routes {
    let Some(b) = best(t, net) else {
        return Routes::new();
    };
    let rank = (b.priority, b.metric);
    t.range(RouteKey::new(net, ProtocolId(0), InterfaceId(0), Ipv4Addr::UNSPECIFIED)..)
        .map(|(_, r)| r)
        .take_while(|r| r.key.prefix == net)
        .filter(|r| r.enabled && (r.priority, r.metric) == rank)
        .map(|r| (r.key, r.clone()))
        .collect()
}

/// Criteria as the model applies them.
#[derive(Clone, Debug, Default)]
struct Crit {
    network: Option<Ipv4Net>,
    interface: Option<InterfaceId>,
    protocol: Option<ProtocolId>,
    best_only: bool,
    /// `best_multipath` (never with `best_only`: the last one given wins).
    multipath: bool,
    include_disabled: bool,
    within: Option<Ipv4Net>,
    start_after: Option<Key>,
}

impl Crit {
    fn criteria(&self) -> Criteria<Ipv4Net> {
        let mut c = Criteria::all();
        if let Some(n) = self.network {
            c = c.network(n);
        }
        if let Some(i) = self.interface {
            c = c.interface(i);
        }
        if let Some(p) = self.protocol {
            c = c.protocol(p);
        }
        if self.best_only {
            c = c.best_only();
        }
        if self.multipath {
            c = c.best_multipath();
        }
        if self.include_disabled {
            c = c.include_disabled();
        }
        if let Some(w) = self.within {
            c = c.within(w);
        }
        if let Some(k) = self.start_after {
            c = c.start_after(k);
        }
        c
    }

    /// Every filter but best_only.
    fn filters(&self, r: &R) -> bool {
        let k = &r.key;
        (r.enabled || self.include_disabled)
            && self.network.is_none_or(|n| n == k.prefix)
            && self.interface.is_none_or(|i| i == k.interface)
            && self.protocol.is_none_or(|p| p == k.protocol)
            && self.within.is_none_or(|w| w.contains(&k.prefix))
            && self.start_after.is_none_or(|s| *k > s)
    }

    /// E(C) of a table state.
    fn result(&self, t: &Routes) -> Routes {
        t.values()
            .filter(|r| self.filters(r))
            .filter(|r| !self.best_only || best(t, r.key.prefix).is_some_and(|b| b.key == r.key))
            .filter(|r| !self.multipath || best_set(t, r.key.prefix).contains_key(&r.key))
            .map(|r| (r.key, r.clone()))
            .collect()
    }

    /// What a commit of `keys` (from `before` to `after`, at `version`) does to E(C) of
    /// multipath criteria in network `net`: per key of its best set before or after, in key
    /// order, the key's route in the set before and after (a key in both whose route the
    /// commit did not write gives nothing). Flags as in `change`.
    fn set_changes(
        &self,
        before: &Routes,
        after: &Routes,
        keys: &[Key],
        net: Ipv4Net,
        version: u64,
    ) -> Vec<(Change<Ipv4Net, u64>, bool)> {
        let (b, a) = (best_set(before, net), best_set(after, net));
        let all: std::collections::BTreeSet<Key> = b.keys().chain(a.keys()).copied().collect();
        let mut out = Vec::new();
        for k in all {
            let (old, new) = (b.get(&k), a.get(&k));
            if old.is_some() && new.is_some() && !keys.contains(&k) {
                continue;
            }
            let old = old.filter(|r| self.filters(r)).cloned();
            let new = new.filter(|r| self.filters(r)).cloned();
            if old.is_none() && new.is_none() {
                continue;
            }
            let optional = old == new;
            out.push((
                Change {
                    version: Version(version),
                    old,
                    new,
                },
                optional,
            ));
        }
        out
    }

    /// What the commit of `key` (from `before` to `after`, at `version`) does to E(C):
    /// the change a feed must return, or `None` when E(C) does not change. The flag marks
    /// a change with `old == new` (an identical rewrite), which a feed may report or not.
    fn change(
        &self,
        before: &Routes,
        after: &Routes,
        keys: &[Key],
        key: Key,
        version: u64,
    ) -> Option<(Change<Ipv4Net, u64>, bool)> {
        let (old, new) = if self.best_only {
            let net = key.prefix;
            let (b, a) = (best(before, net), best(after, net));
            // The network's entry changed iff its best route is another key, or the same
            // key rewritten by this commit.
            let moved =
                b.map(|r| r.key) != a.map(|r| r.key) || a.is_some_and(|r| keys.contains(&r.key));
            if !moved {
                return None;
            }
            (
                b.filter(|r| self.filters(r)).cloned(),
                a.filter(|r| self.filters(r)).cloned(),
            )
        } else {
            (
                before.get(&key).filter(|r| self.filters(r)).cloned(),
                after.get(&key).filter(|r| self.filters(r)).cloned(),
            )
        };
        if old.is_none() && new.is_none() {
            return None;
        }
        let optional = old == new;
        Some((
            Change {
                version: Version(version),
                old,
                new,
            },
            optional,
        ))
    }
}

/// Applies a change to a copy: removes `old` (which the copy must hold exactly) and
/// inserts `new`. For criteria without best_only both sides are one key's; with it, one
/// network's.
fn apply(copy: &mut Routes, c: &Change<Ipv4Net, u64>, best_only: bool) {
    assert!(c.old.is_some() || c.new.is_some(), "an empty change: {c:?}");
    if let (Some(o), Some(n)) = (&c.old, &c.new) {
        if best_only {
            assert_eq!(o.key.prefix, n.key.prefix, "one network per change: {c:?}");
        } else {
            assert_eq!(o.key, n.key, "one key per change: {c:?}");
        }
    }
    if let Some(o) = &c.old {
        assert_eq!(
            copy.remove(&o.key).as_ref(),
            Some(o),
            "old is not what the copy held: {c:?}"
        );
    } else if let Some(n) = &c.new {
        if best_only {
            assert!(
                !copy.keys().any(|k| k.prefix == n.key.prefix),
                "no old, but the copy holds the network: {c:?}"
            );
        } else {
            assert!(
                !copy.contains_key(&n.key),
                "no old, but the copy holds the key: {c:?}"
            );
        }
    }
    if let Some(n) = &c.new {
        copy.insert(n.key, n.clone());
    }
}

// ---------------------------------------------------------------------------------------
// Differential test

/// The table's history: its state after every commit.
struct History {
    empty: Routes,
    /// (version, keys written (in key order), state after)
    commits: Vec<(u64, Vec<Key>, Routes)>,
}

impl History {
    /// The table as of version `v`.
    fn at(&self, v: u64) -> &Routes {
        let i = self.commits.partition_point(|c| c.0 <= v);
        if i == 0 {
            &self.empty
        } else {
            &self.commits[i - 1].2
        }
    }

    /// What the commits in `(from, to]` do to E(C), in order.
    fn changes(&self, c: &Crit, from: u64, to: u64) -> Vec<(Change<Ipv4Net, u64>, bool)> {
        let start = self.commits.partition_point(|x| x.0 <= from);
        let mut out = Vec::new();
        for i in start..self.commits.len() {
            let (v, keys, after) = &self.commits[i];
            if *v > to {
                break;
            }
            let before = if i == 0 {
                &self.empty
            } else {
                &self.commits[i - 1].2
            };
            // One change per key; for best-only criteria, per network (a commit's keys are
            // in key order, so a network's keys are together).
            for (j, key) in keys.iter().enumerate() {
                if (c.best_only || c.multipath) && j > 0 && keys[j - 1].prefix == key.prefix {
                    continue;
                }
                if c.multipath {
                    out.extend(c.set_changes(before, after, keys, key.prefix, *v));
                    continue;
                }
                out.extend(c.change(before, after, keys, *key, *v));
            }
        }
        out
    }
}

#[derive(Clone, Debug)]
enum CritIn {
    Network(usize),
    Interface(u32),
    Protocol(u32),
    BestOnly,
    BestMultipath,
    IncludeDisabled,
    Within(usize),
    StartAfter(KeyIn),
}

#[derive(Clone, Debug)]
enum Op {
    Add(KeyIn, u32, u32, bool),
    /// Rewrites the nth route with an identical one.
    Rewrite(usize),
    /// Rewrites the nth route with other attributes (a new value, maybe disabled).
    Modify(usize, u32, u32, bool),
    Delete(KeyIn),
    DeleteNth(usize),
    /// `delete_routes` (None) or `set_routes_enabled` (Some): one commit of every route changed.
    Block(Vec<CritIn>, Option<bool>),
    Subscribe(Vec<CritIn>),
    Feed(Vec<CritIn>),
    /// A subscribe or feed with a prefix with host bits set.
    BadCriteria(bool),
    /// Reads up to n changes of a feed (`try_next`, or `next_timeout(0)`).
    Read(usize, usize, bool),
    /// Reads the dump of a subscription.
    Dump(usize),
    Close(usize),
    Collect,
}

fn key_strategy() -> impl Strategy<Value = KeyIn> {
    (0..PREFIXES.len(), 1u32..4, 1u32..3, 1u8..3)
}

fn crit_strategy() -> impl Strategy<Value = CritIn> {
    prop_oneof![
        1 => (0..PREFIXES.len()).prop_map(CritIn::Network),
        1 => (1u32..3).prop_map(CritIn::Interface),
        1 => (1u32..4).prop_map(CritIn::Protocol),
        3 => Just(CritIn::BestOnly),
        3 => Just(CritIn::BestMultipath),
        1 => Just(CritIn::IncludeDisabled),
        1 => (0..PREFIXES.len()).prop_map(CritIn::Within),
        1 => key_strategy().prop_map(CritIn::StartAfter),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (key_strategy(), 0u32..3, 0u32..3, prop::bool::weighted(0.8))
            .prop_map(|(k, p, m, e)| Op::Add(k, p, m, e)),
        1 => any::<usize>().prop_map(Op::Rewrite),
        3 => (any::<usize>(), 0u32..3, 0u32..3, prop::bool::weighted(0.8))
            .prop_map(|(i, p, m, e)| Op::Modify(i, p, m, e)),
        1 => key_strategy().prop_map(Op::Delete),
        3 => any::<usize>().prop_map(Op::DeleteNth),
        1 => (prop::collection::vec(crit_strategy(), 0..3), prop::option::of(any::<bool>()))
            .prop_map(|(c, e)| Op::Block(c, e)),
        2 => prop::collection::vec(crit_strategy(), 0..3).prop_map(Op::Subscribe),
        2 => prop::collection::vec(crit_strategy(), 0..3).prop_map(Op::Feed),
        1 => any::<bool>().prop_map(Op::BadCriteria),
        6 => (0usize..8, 1usize..8, prop::bool::weighted(0.2)).prop_map(|(i, n, t)| Op::Read(i, n, t)),
        1 => (0usize..8).prop_map(Op::Dump),
        1 => (0usize..8).prop_map(Op::Close),
        1 => Just(Op::Collect),
    ]
}

fn build(crits: &[CritIn]) -> Crit {
    let mut c = Crit::default();
    for x in crits {
        match *x {
            CritIn::Network(i) => c.network = Some(prefix(i)),
            CritIn::Interface(i) => c.interface = Some(InterfaceId(i)),
            CritIn::Protocol(p) => c.protocol = Some(ProtocolId(p)),
            CritIn::BestOnly => (c.best_only, c.multipath) = (true, false),
            CritIn::BestMultipath => (c.best_only, c.multipath) = (false, true),
            CritIn::IncludeDisabled => c.include_disabled = true,
            CritIn::Within(i) => c.within = Some(prefix(i)),
            CritIn::StartAfter(k) => c.start_after = Some(key_of(k)),
        }
    }
    c
}

struct Open<'t> {
    feed: Feed<'t, Ipv4Net, u64>,
    /// A subscription's snapshot enumeration, until it is read.
    dump: Option<Enumeration<'t, Ipv4Net, u64>>,
    crit: Crit,
    /// The consumer's copy of E(C, pos), once it has the dump.
    copy: Option<Routes>,
    /// Every commit at or below it has been accounted for.
    pos: u64,
    /// Changes of the commit at `pos + 1` already returned (the feed is inside it).
    consumed: usize,
    lagged: bool,
}

impl Open<'_> {
    /// Reads the dump (if not yet): it must be E(C) at the feed's starting point.
    fn take_dump(&mut self, h: &History) -> Result<(), TestCaseError> {
        if let Some(dump) = self.dump.take() {
            let snap = dump.snapshot().0;
            let got: Vec<R> = dump.collect();
            let want: Vec<R> = self.crit.result(h.at(snap)).into_values().collect();
            prop_assert_eq!(&got, &want, "the dump is E(C) at its snapshot");
            self.copy = Some(got.into_iter().map(|r| (r.key, r)).collect());
        }
        Ok(())
    }
}

/// The values the table still retains that are not current, by the reclaimer's rules:
/// a version shadowed at `w` is kept if a pinned snapshot sees it or if `w` is after the
/// lowest feed floor (a feed more than the journal behind counts as `now - capacity`).
fn expected_dead(versions: &[(u64, Option<u64>)], pinned: &[u64], floor: u64) -> usize {
    versions
        .iter()
        .filter(|(c, w)| w.is_some_and(|w| w > floor || pinned.iter().any(|&s| *c <= s && s < w)))
        .count()
}

fn run(ops: Vec<Op>, max_enums: usize, small_journal: bool) -> Result<(), TestCaseError> {
    let mut b = RouteTable::<Ipv4Net, u64>::builder().max_enumerations(max_enums);
    if small_journal {
        b = b.journal_capacity(64);
    }
    let table = b.build();
    let cap = table.journal_capacity() as u64;
    let mut model = Routes::new();
    let mut h = History {
        empty: Routes::new(),
        commits: Vec::new(),
    };
    // every value-carrying version: (committed at, shadowed at)
    let mut versions: Vec<(u64, Option<u64>)> = Vec::new();
    let mut current: BTreeMap<Key, usize> = BTreeMap::new();
    let mut open: Vec<Open> = Vec::new();
    let mut next_value = 0u64;

    // The write of `key` committed at `v`, leaving `model`.
    let commit_at = |v: u64,
                     h: &mut History,
                     model: &Routes,
                     keys: Vec<Key>,
                     versions: &mut Vec<(u64, Option<u64>)>,
                     current: &mut BTreeMap<Key, usize>|
     -> Result<(), TestCaseError> {
        let last = h.commits.last().map_or(0, |c| c.0);
        prop_assert!(v > last, "a commit must advance the version");
        for &key in &keys {
            if let Some(i) = current.remove(&key) {
                versions[i].1 = Some(v);
            }
            if model.contains_key(&key) {
                current.insert(key, versions.len());
                versions.push((v, None));
            }
        }
        h.commits.push((v, keys, model.clone()));
        Ok(())
    };

    for op in ops {
        match op {
            Op::Add(..) | Op::Rewrite(_) | Op::Modify(..) => {
                let r = match op {
                    Op::Add(k, p, m, e) => {
                        next_value += 1;
                        route(key_of(k), p, m, e, next_value)
                    }
                    Op::Rewrite(i) => {
                        if model.is_empty() {
                            continue;
                        }
                        model.values().nth(i % model.len()).unwrap().clone()
                    }
                    Op::Modify(i, p, m, e) => {
                        if model.is_empty() {
                            continue;
                        }
                        next_value += 1;
                        let k = *model.keys().nth(i % model.len()).unwrap();
                        route(k, p, m, e, next_value)
                    }
                    _ => unreachable!(),
                };
                let key = r.key;
                let old = model.insert(key, r.clone());
                prop_assert_eq!(table.add_route(r), Ok(old));
                commit_at(
                    table.version().0,
                    &mut h,
                    &model,
                    vec![key],
                    &mut versions,
                    &mut current,
                )?;
            }
            Op::Delete(_) | Op::DeleteNth(_) => {
                let key = match op {
                    Op::Delete(k) => key_of(k),
                    Op::DeleteNth(i) => {
                        if model.is_empty() {
                            continue;
                        }
                        *model.keys().nth(i % model.len()).unwrap()
                    }
                    _ => unreachable!(),
                };
                match model.remove(&key) {
                    Some(old) => {
                        prop_assert_eq!(table.delete_route(&key), Ok(old));
                        commit_at(
                            table.version().0,
                            &mut h,
                            &model,
                            vec![key],
                            &mut versions,
                            &mut current,
                        )?;
                    }
                    None => prop_assert_eq!(table.delete_route(&key), Err(Error::NoSuchRoute)),
                }
            }
            Op::Block(ref crits, enable) => {
                let mut crit = build(crits);
                if enable.is_some() {
                    // set_routes_enabled matches disabled routes whatever the criteria say
                    crit.include_disabled = true;
                }
                let c = build(crits).criteria();
                let got = match enable {
                    None => table.delete_routes(c),
                    Some(e) => table.set_routes_enabled(c, e),
                };
                if table.stats().open_enumerations == table.max_enumerations() {
                    // the block operation's snapshot needs a slot
                    prop_assert_eq!(got, Err(Error::NoSystemResources));
                    continue;
                }
                // the routes matching at the call, all changed by one commit
                let v0 = h.commits.last().map_or(0, |c| c.0);
                let set: Vec<R> = crit
                    .result(&model)
                    .into_values()
                    .filter(|r| enable.is_none_or(|e| r.enabled != e))
                    .collect();
                prop_assert_eq!(got, Ok(set.len()));
                let v = v0 + u64::from(!set.is_empty());
                prop_assert_eq!(table.version(), Version(v));
                let mut keys = Vec::new();
                for r in set {
                    match enable {
                        None => {
                            model.remove(&r.key);
                        }
                        Some(e) => {
                            model.insert(
                                r.key,
                                Route {
                                    enabled: e,
                                    ..r.clone()
                                },
                            );
                        }
                    }
                    keys.push(r.key);
                }
                if !keys.is_empty() {
                    commit_at(v, &mut h, &model, keys, &mut versions, &mut current)?;
                }
            }
            Op::Subscribe(ref crits) | Op::Feed(ref crits) => {
                let subscribe = matches!(op, Op::Subscribe(_));
                let crit = build(crits);
                let in_use = table.stats().open_enumerations;
                let need = if subscribe { 2 } else { 1 };
                let now = table.version().0;
                let opened = if subscribe {
                    table.subscribe(crit.criteria()).map(|(e, f)| (Some(e), f))
                } else {
                    table.feed(crit.criteria()).map(|f| (None, f))
                };
                if in_use + need > table.max_enumerations() {
                    prop_assert!(matches!(opened, Err(Error::NoSystemResources)));
                    prop_assert_eq!(table.stats().open_enumerations, in_use);
                    continue;
                }
                let (dump, feed) = opened.map_err(|e| TestCaseError::fail(format!("open: {e}")))?;
                // single-threaded: the feed starts at the table's version, and a
                // subscription's snapshot is that version too
                prop_assert_eq!(feed.version(), Version(now));
                if let Some(d) = &dump {
                    prop_assert_eq!(d.snapshot(), Version(now));
                }
                prop_assert_eq!(table.stats().open_enumerations, in_use + need);
                let copy = (!subscribe).then(|| crit.result(h.at(now)));
                open.push(Open {
                    feed,
                    dump,
                    crit,
                    copy,
                    pos: now,
                    consumed: 0,
                    lagged: false,
                });
            }
            Op::BadCriteria(subscribe) => {
                let bad: Ipv4Net = "10.1.2.3/8".parse().unwrap();
                let c = Criteria::all().within(bad);
                if subscribe {
                    prop_assert!(matches!(table.subscribe(c), Err(Error::InvalidParameter)));
                } else {
                    prop_assert!(matches!(table.feed(c), Err(Error::InvalidParameter)));
                }
            }
            Op::Dump(i) => {
                if open.is_empty() {
                    continue;
                }
                let n = open.len();
                open[i % n].take_dump(&h)?;
            }
            Op::Read(i, n, timeout) => {
                if open.is_empty() {
                    continue;
                }
                let len = open.len();
                let o = &mut open[i % len];
                o.take_dump(&h)?;
                for _ in 0..n {
                    let now = table.version().0;
                    prop_assert_eq!(o.feed.version(), Version(o.pos));
                    let got = if timeout {
                        o.feed.next_timeout(Duration::ZERO)
                    } else {
                        o.feed.try_next()
                    };
                    if o.lagged || now - o.pos > cap {
                        // a commit it had not read was dropped from the journal
                        prop_assert_eq!(got, Err(Error::Lagged));
                        o.lagged = true;
                        break;
                    }
                    let mut want = h.changes(&o.crit, o.pos, now).into_iter().skip(o.consumed);
                    let copy = o.copy.as_mut().expect("dump taken");
                    match got {
                        Ok(Some(c)) => {
                            prop_assert!(c.version.0 > o.pos, "versions strictly increase");
                            let mut same = 0;
                            loop {
                                let (w, optional) = want.next().ok_or_else(|| {
                                    TestCaseError::fail(format!("a change no commit made: {c:?}"))
                                })?;
                                same += usize::from(w.version == c.version);
                                if w == c {
                                    break;
                                }
                                prop_assert!(
                                    optional && w.version < c.version,
                                    "skipped or wrong change: want {:?}, got {:?}",
                                    w,
                                    c
                                );
                            }
                            let v = o.feed.version();
                            // Inside a commit of many keys, the feed stays just before it.
                            let inside = v.0 + 1 == c.version.0;
                            prop_assert!(v >= c.version || inside);
                            // what the feed passed over after c changed nothing
                            for (w, optional) in want {
                                prop_assert!(
                                    w.version > v || optional,
                                    "feed at {:?} skipped {:?}",
                                    v,
                                    w
                                );
                            }
                            apply(copy, &c, o.crit.best_only);
                            if inside {
                                o.consumed = if o.pos == v.0 {
                                    o.consumed + same
                                } else {
                                    same
                                };
                                o.pos = v.0;
                                continue;
                            }
                            o.consumed = 0;
                            o.pos = v.0;
                            prop_assert_eq!(
                                &*copy,
                                &o.crit.result(h.at(v.0)),
                                "convergence after {:?}",
                                c
                            );
                        }
                        Ok(None) => {
                            for (w, optional) in want {
                                prop_assert!(optional, "caught up without {:?}", w);
                            }
                            prop_assert_eq!(o.feed.version(), Version(now));
                            o.pos = now;
                            o.consumed = 0;
                            prop_assert_eq!(
                                &*copy,
                                &o.crit.result(h.at(now)),
                                "convergence when caught up"
                            );
                            break;
                        }
                        Err(e) => return Err(TestCaseError::fail(format!("try_next: {e}"))),
                    }
                }
            }
            Op::Close(i) => {
                if open.is_empty() {
                    continue;
                }
                let n = open.len();
                let before = table.stats().open_enumerations;
                let o = open.swap_remove(i % n);
                let slots = 1 + usize::from(o.dump.is_some());
                drop(o);
                prop_assert_eq!(table.stats().open_enumerations, before - slots);
            }
            Op::Collect => {
                table.collect();
                let now = table.version().0;
                let pinned: Vec<u64> = open
                    .iter()
                    .filter_map(|o| o.dump.as_ref().map(|d| d.snapshot().0))
                    .collect();
                let floor = open
                    .iter()
                    .map(|o| o.feed.version().0.max(now.saturating_sub(cap)))
                    .min()
                    .unwrap_or(now);
                let s = table.stats();
                prop_assert_eq!(s.dead_versions, expected_dead(&versions, &pinned, floor));
                let slots: usize = open.iter().map(|o| 1 + usize::from(o.dump.is_some())).sum();
                prop_assert_eq!(s.open_enumerations, slots);
                prop_assert_eq!(s.live_routes, model.len());
            }
        }
    }
    // Every feed that did not lag converges once it reads to the end.
    for o in &mut open {
        o.take_dump(&h)?;
        let now = table.version().0;
        let lag = o.lagged || now - o.pos > cap;
        let mut got = Vec::new();
        loop {
            match o.feed.try_next() {
                Ok(Some(c)) => got.push(c),
                Ok(None) => break,
                Err(e) => {
                    prop_assert!(lag && e == Error::Lagged, "unexpected {:?}", e);
                    break;
                }
            }
        }
        if lag {
            prop_assert_eq!(o.feed.try_next(), Err(Error::Lagged), "lagged for good");
            continue;
        }
        let copy = o.copy.as_mut().expect("dump taken");
        for c in &got {
            apply(copy, c, o.crit.best_only);
        }
        prop_assert_eq!(o.feed.version(), Version(now));
        prop_assert_eq!(&*copy, &o.crit.result(&model));
        let want: Vec<_> = h
            .changes(&o.crit, o.pos, now)
            .into_iter()
            .skip(o.consumed)
            .filter(|w| !w.1)
            .map(|w| w.0)
            .collect();
        let got: Vec<_> = got.into_iter().filter(|c| c.old != c.new).collect();
        prop_assert_eq!(got, want);
    }
    drop(open);
    table.collect();
    prop_assert_eq!(table.stats().dead_versions, 0);
    prop_assert_eq!(table.stats().open_enumerations, 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Random writes, feeds opened at random points with random criteria, reads
    /// interleaved: every feed returns exactly the changes of E(C, ·), in order, and its
    /// copy always equals E(C, feed.version()); lag exactly when it fell more than the
    /// journal behind; after collect() the table keeps exactly what feeds and dumps need.
    #[test]
    fn feeds_match_the_model(
        ops in prop::collection::vec(op_strategy(), 1..200),
        max_enums in 1usize..7,
        small_journal in any::<bool>(),
    ) {
        let _s = serial();
        run(ops, max_enums, small_journal)?;
    }
}

// ---------------------------------------------------------------------------------------
// Concurrency

/// SplitMix64: each writer its own deterministic stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Writes per writer thread.
fn churn_ops() -> u64 {
    8_000 * u64::from(scale())
}

/// Adds (insert or replace, some disabled, several protocols per network) and deletes of
/// a pool of keys that all writers share.
fn churn(t: &RouteTable<Ipv4Net, u64>, id: u64, ops: u64) {
    let mut rng = Rng(0x5eed ^ id);
    for i in 0..ops {
        if i % 16 == 15 {
            // let the subscribers run between bursts
            thread::yield_now();
        }
        let k = key_of((
            rng.below(PREFIXES.len() as u64) as usize,
            1 + rng.below(3) as u32,
            1 + rng.below(2) as u32,
            1 + rng.below(2) as u8,
        ));
        if rng.below(10) < 3 {
            let _ = t.delete_route(&k);
        } else {
            let r = route(
                k,
                rng.below(3) as u32,
                rng.below(3) as u32,
                rng.below(10) != 0,
                id << 32 | i,
            );
            t.add_route(r).unwrap();
        }
    }
}

/// What a subscriber saw.
#[derive(Default, Debug)]
struct Seen {
    changes: usize,
    lags: usize,
}

/// Keeps a copy of E(C) current from `subscribe` and the feed while writers run; on
/// `Lagged`, subscribes again. After the writers are done and the feed is drained, the
/// copy must equal a fresh enumeration at `feed.version()`, which is the table's.
/// A `slow` subscriber pauses now and then, so that it falls behind a small journal.
///
/// Quiescence needs every thread out of the table, readers too: a reader that meets a
/// pending version helps decide its timestamp, and a clock value it took but lost is
/// recorded in the journal (as a gap) only when its call goes on. So each subscriber,
/// once caught up after the writers stopped, waits at `all_caught_up` for the others
/// before it checks.
fn subscriber(
    t: &RouteTable<Ipv4Net, u64>,
    crit: &Crit,
    done: &AtomicBool,
    all_caught_up: &Barrier,
    slow: bool,
) -> Seen {
    let mut seen = Seen::default();
    let mut quiescent = false;
    'subscribe: loop {
        let (dump, mut feed) = t.subscribe(crit.criteria()).unwrap();
        assert_eq!(feed.version(), dump.snapshot());
        let mut copy: Routes = dump.map(|r| (r.key, r)).collect();
        let mut last = feed.version();
        let mut idle = 0u32;
        loop {
            // Read the flag before the feed: Ok(None) after it means every write is in.
            let finished = done.load(Ordering::Acquire);
            let got = if idle % 8 == 7 {
                feed.next_timeout(Duration::from_millis(1))
            } else {
                feed.try_next()
            };
            match got {
                Ok(Some(c)) if crit.multipath => {
                    // A commit may change several routes of a best set: its changes share
                    // its version, and the feed passes it after the last.
                    assert!(c.version >= last, "{:?} after {last:?}", c.version);
                    assert!(feed.version().0 + 1 >= c.version.0);
                    last = c.version;
                    apply(&mut copy, &c, false);
                    seen.changes += 1;
                    idle = 0;
                }
                Ok(Some(c)) => {
                    assert!(c.version > last, "{:?} after {last:?}", c.version);
                    assert!(feed.version() >= c.version);
                    last = c.version;
                    apply(&mut copy, &c, crit.best_only);
                    seen.changes += 1;
                    idle = 0;
                    if slow && seen.changes % 64 == 0 {
                        for _ in 0..200 {
                            thread::yield_now();
                        }
                    }
                }
                Ok(None) if finished && !quiescent => {
                    all_caught_up.wait();
                    quiescent = true;
                }
                Ok(None) if quiescent => {
                    assert_eq!(feed.version(), t.version(), "drained when quiescent");
                    let fresh: Routes = t
                        .enumerate(crit.criteria())
                        .unwrap()
                        .map(|r| (r.key, r))
                        .collect();
                    assert_eq!(copy, fresh, "the copy converged");
                    assert_eq!(copy, crit.result(&fresh_table(t)));
                    return seen;
                }
                Ok(None) => {
                    idle += 1;
                    thread::yield_now();
                }
                Err(Error::Lagged) => {
                    assert_eq!(feed.try_next(), Err(Error::Lagged), "lagged for good");
                    seen.lags += 1;
                    continue 'subscribe;
                }
                Err(e) => panic!("try_next: {e}"),
            }
        }
    }
}

/// The whole table now, disabled routes included.
fn fresh_table(t: &RouteTable<Ipv4Net, u64>) -> Routes {
    t.enumerate(Criteria::all().include_disabled())
        .unwrap()
        .map(|r| (r.key, r))
        .collect()
}

fn converge_under_churn(journal: usize, crits: &[Crit]) -> Vec<Seen> {
    let t = RouteTable::<Ipv4Net, u64>::builder()
        .journal_capacity(journal)
        .build();
    churn(&t, 99, 1_000);
    let done = AtomicBool::new(false);
    let barrier = Barrier::new(crits.len());
    let seen = thread::scope(|s| {
        let subs: Vec<_> = crits
            .iter()
            .map(|c| {
                let (t, done, barrier) = (&t, &done, &barrier);
                s.spawn(move || subscriber(t, c, done, barrier, journal < 1024))
            })
            .collect();
        let writers: Vec<_> = (0..3)
            .map(|id| {
                let t = &t;
                s.spawn(move || churn(t, id, churn_ops()))
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Release);
        subs.into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    drop(t);
    seen
}

fn churn_criteria() -> Vec<Crit> {
    vec![
        Crit {
            include_disabled: true,
            ..Crit::default()
        },
        Crit {
            within: Some(prefix(3)),
            protocol: Some(ProtocolId(2)),
            ..Crit::default()
        },
        Crit {
            best_only: true,
            ..Crit::default()
        },
        Crit {
            best_only: true,
            within: Some(prefix(1)),
            interface: Some(InterfaceId(1)),
            ..Crit::default()
        },
        Crit {
            multipath: true,
            ..Crit::default()
        },
        Crit {
            multipath: true,
            within: Some(prefix(1)),
            protocol: Some(ProtocolId(2)),
            ..Crit::default()
        },
    ]
}

/// The journal of the churn tests that should rarely lag. (Not larger: a best_only feed far
/// behind pays for the versions its floor keeps on every read, so a backlog of the whole
/// scaled churn makes the test quadratic under a sanitizer.)
const CHURN_JOURNAL: usize = 1 << 12;

/// Three writers churn a shared pool of keys while subscribers with four criteria
/// (everything, a filtered range, best routes, filtered best routes) keep copies; each copy
/// equals a fresh enumeration once the writers stop and the feed is drained, every change's
/// `old` is exactly what the copy held, and versions strictly increase. (A subscriber that
/// falls a journal behind, which a starved thread may, subscribes again.)
#[test]
fn subscribers_keep_copies_current_under_concurrent_writers() {
    let _s = serial();
    let seen = converge_under_churn(CHURN_JOURNAL, &churn_criteria());
    assert!(seen[0].changes > 0);
}

/// The same with a journal of 64 commits: subscribers lag often; each time they subscribe
/// again (a lagged feed stays lagged), and they still converge.
#[test]
fn subscribers_that_lag_subscribe_again_and_converge() {
    let _s = serial();
    converge_under_churn(64, &churn_criteria());
}

/// A FIB-like consumer of a best_only feed: network -> its best route. Each change's old
/// is the entry it holds for that network; at the end the map equals `best_route` of every
/// network, and the best_only enumeration. On Lagged it rebuilds from a new subscription.
#[test]
fn a_best_route_follower_matches_best_route_under_churn() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, u64>::builder()
        .journal_capacity(CHURN_JOURNAL)
        .build();
    churn(&t, 7, 1_000);
    let done = AtomicBool::new(false);
    let fib = thread::scope(|s| {
        let follower = s.spawn(|| 'subscribe: loop {
            let (dump, mut feed) = t.subscribe(Criteria::all().best_only()).unwrap();
            let mut fib: BTreeMap<Ipv4Net, R> = BTreeMap::new();
            for r in dump {
                assert!(
                    fib.insert(r.key.prefix, r).is_none(),
                    "one best route per network"
                );
            }
            loop {
                let finished = done.load(Ordering::Acquire);
                let got = match feed.next_timeout(Duration::from_millis(5)) {
                    Err(Error::Lagged) => continue 'subscribe,
                    got => got.unwrap(),
                };
                match got {
                    Some(c) => {
                        let net = c.old.as_ref().or(c.new.as_ref()).unwrap().key.prefix;
                        assert_eq!(fib.remove(&net), c.old, "old is the network's entry");
                        if let Some(n) = c.new {
                            assert_eq!(n.key.prefix, net);
                            assert!(n.enabled);
                            fib.insert(net, n);
                        }
                    }
                    None if finished => {
                        assert_eq!(feed.version(), t.version());
                        return fib;
                    }
                    None => {}
                }
            }
        });
        let writers: Vec<_> = (0..3)
            .map(|id| {
                let t = &t;
                s.spawn(move || churn(t, id, churn_ops()))
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Release);
        follower.join().unwrap()
    });
    for i in 0..PREFIXES.len() {
        assert_eq!(fib.get(&prefix(i)), t.best_route(&prefix(i)).as_ref());
    }
    let best: BTreeMap<Ipv4Net, R> = t
        .enumerate(Criteria::all().best_only())
        .unwrap()
        .map(|r| (r.key.prefix, r))
        .collect();
    assert_eq!(fib, best);
}

// ---------------------------------------------------------------------------------------
// Lagged

fn k(i: u32) -> Key {
    RouteKey::new(
        Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 | i << 8), 24).unwrap(),
        ProtocolId(1),
        InterfaceId(1),
        Ipv4Addr::LOCALHOST,
    )
}

/// With a journal of 64: a feed 64 commits behind reads them all; one 65 behind has lost
/// the first and gets Lagged, and stays Lagged (try_next and next_timeout) whatever
/// happens next.
#[test]
fn a_feed_more_than_the_journal_behind_lags_for_good() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, u64>::builder()
        .journal_capacity(64)
        .build();
    assert_eq!(t.journal_capacity(), 64);
    let mut full = t.feed(Criteria::all()).unwrap();
    for i in 0..64 {
        t.add_route(Route::new(k(i), u64::from(i))).unwrap();
    }
    let mut late = t.feed(Criteria::all()).unwrap();
    let mut n = 0;
    while let Some(c) = full.try_next().unwrap() {
        assert_eq!(c.new.unwrap().value, n);
        n += 1;
    }
    assert_eq!(n, 64, "exactly the journal behind: nothing lost");
    t.add_route(Route::new(k(64), 64)).unwrap();
    assert!(full.try_next().unwrap().is_some());
    // `full` is caught up; give `late` 65 unread commits
    for i in 0..64 {
        t.delete_route(&k(i)).unwrap();
        assert!(full.try_next().unwrap().is_some());
    }
    assert_eq!(late.try_next(), Err(Error::Lagged));
    assert_eq!(late.try_next(), Err(Error::Lagged));
    assert_eq!(
        late.next_timeout(Duration::from_millis(1)),
        Err(Error::Lagged)
    );
    t.collect();
    assert_eq!(late.try_next(), Err(Error::Lagged));
    assert_ne!(Error::Lagged.code(), 0);
    assert_eq!(full.try_next(), Ok(None));
}

/// Commits that do not match a feed's criteria still fill the journal: a feed of one
/// network lags when more than the journal's commits to other networks go unread; a
/// subscription's feed too.
#[test]
fn commits_outside_the_criteria_count_towards_lag() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, u64>::builder()
        .journal_capacity(64)
        .build();
    let net = k(1000).prefix;
    let mut f = t.feed(Criteria::all().network(net)).unwrap();
    let (dump, mut sub) = t.subscribe(Criteria::all().network(net)).unwrap();
    drop(dump);
    for i in 0..65 {
        t.add_route(Route::new(k(i), 1)).unwrap();
    }
    assert_eq!(f.try_next(), Err(Error::Lagged));
    assert_eq!(sub.try_next(), Err(Error::Lagged));
}

/// A feed that reads as it goes never lags, however many commits pass through a journal
/// of 64, and sees every one of them.
#[test]
fn a_feed_that_keeps_up_never_lags() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, u64>::builder()
        .journal_capacity(64)
        .build();
    let mut f = t.feed(Criteria::all()).unwrap();
    let mut filtered = t.feed(Criteria::all().network(k(3).prefix)).unwrap();
    let (mut changes, mut mine) = (0u64, 0u64);
    for i in 0..20_000u64 {
        t.add_route(Route::new(k((i % 7) as u32), i)).unwrap();
        if i % 50 == 49 {
            while let Some(c) = f.try_next().unwrap() {
                assert_eq!(c.version.0, changes + 1);
                changes += 1;
            }
            while let Some(c) = filtered.try_next().unwrap() {
                assert_eq!(c.new.unwrap().key, k(3));
                mine += 1;
            }
        }
    }
    assert_eq!(changes, 20_000);
    assert_eq!(mine, 20_000 / 7);
}

// ---------------------------------------------------------------------------------------
// Slots

/// subscribe takes two slots and feed one, from the pool enumerations and handles share;
/// NoSystemResources when they are not free (and a failed subscribe holds nothing);
/// stats().open_enumerations counts feeds; dropping closes.
#[test]
fn feeds_take_slots_from_the_enumeration_pool() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, u64>::with_max_enumerations(1);
    assert_eq!(
        t.subscribe(Criteria::all()).err(),
        Some(Error::NoSystemResources)
    );
    assert_eq!(t.stats().open_enumerations, 0);
    let f = t.feed(Criteria::all()).unwrap();
    assert_eq!(t.stats().open_enumerations, 1);
    assert_eq!(
        t.feed(Criteria::all()).err(),
        Some(Error::NoSystemResources)
    );
    assert_eq!(
        t.enumerate(Criteria::all()).err(),
        Some(Error::NoSystemResources)
    );
    assert_eq!(
        t.create_enumeration_handle(Criteria::all()),
        Err(Error::NoSystemResources)
    );
    drop(f);
    assert_eq!(t.stats().open_enumerations, 0);
    let e = t.enumerate(Criteria::all()).unwrap();
    assert_eq!(
        t.feed(Criteria::all()).err(),
        Some(Error::NoSystemResources)
    );
    drop(e);

    let t = RouteTable::<Ipv4Net, u64>::with_max_enumerations(3);
    let (dump, feed) = t.subscribe(Criteria::all()).unwrap();
    assert_eq!(t.stats().open_enumerations, 2);
    let h = t.create_enumeration_handle(Criteria::all()).unwrap();
    assert_eq!(t.stats().open_enumerations, 3);
    assert_eq!(
        t.feed(Criteria::all()).err(),
        Some(Error::NoSystemResources)
    );
    t.close_enumeration_handle(h).unwrap();
    // one slot free: not enough for a subscription
    assert_eq!(
        t.subscribe(Criteria::all()).err(),
        Some(Error::NoSystemResources)
    );
    assert_eq!(t.stats().open_enumerations, 2);
    drop(dump);
    assert_eq!(t.stats().open_enumerations, 1);
    let f2 = t.feed(Criteria::all()).unwrap();
    let f3 = t.feed(Criteria::all()).unwrap();
    assert_eq!(t.stats().open_enumerations, 3);
    drop((feed, f2, f3));
    assert_eq!(t.stats().open_enumerations, 0);
    // every slot comes back
    let all: Vec<_> = (0..3).map(|_| t.feed(Criteria::all()).unwrap()).collect();
    assert_eq!(t.stats().open_enumerations, 3);
    drop(all);

    let bad: Ipv4Net = "10.1.2.3/8".parse().unwrap();
    assert_eq!(
        t.feed(Criteria::all().network(bad)).err(),
        Some(Error::InvalidParameter)
    );
    assert_eq!(
        t.subscribe(Criteria::all().within(bad)).err(),
        Some(Error::InvalidParameter)
    );
    assert_eq!(t.stats().open_enumerations, 0);
}

// ---------------------------------------------------------------------------------------
// Memory

/// A feed that stops reading holds at most about a journal of dead versions: 50,000
/// replaces of four keys with one stalled feed, then collect(), leave no more than the
/// journal's capacity (plus what the floor itself sees, one per key); the stalled feed has
/// lagged; dropping it and collecting leaves nothing. A feed that has read everything
/// holds nothing.
#[test]
fn a_stalled_feed_holds_at_most_a_journal() {
    let _s = serial();
    let cap = 1024;
    let t = RouteTable::<Ipv4Net, u64>::builder()
        .journal_capacity(cap)
        .build();
    for i in 0..4 {
        t.add_route(Route::new(k(i), 0)).unwrap();
    }
    let mut stalled = t.feed(Criteria::all()).unwrap();
    let mut reader = t.feed(Criteria::all()).unwrap();
    let mut worst = 0;
    for i in 0..50_000u64 {
        t.add_route(Route::new(k((i % 4) as u32), i + 1)).unwrap();
        if i % 512 == 0 {
            while reader.try_next().unwrap().is_some() {}
        }
        worst = worst.max(t.stats().dead_versions);
    }
    while reader.try_next().unwrap().is_some() {}
    t.collect();
    let dead = t.stats().dead_versions;
    assert!(dead <= cap + 4, "a stalled feed keeps {dead} dead versions");
    // without collect, the bounded steps keep it in check too (the reclaimer rescans the
    // slots every few hundred commits, and prunes eagerly once it is half a journal behind)
    assert!(worst <= 2 * cap + 1024, "dead versions grew to {worst}");
    assert_eq!(stalled.try_next(), Err(Error::Lagged));
    drop(stalled);
    t.collect();
    assert_eq!(
        t.stats().dead_versions,
        0,
        "a feed that read everything holds nothing"
    );
    drop(reader);
    t.collect();
    assert_eq!(t.stats().dead_versions, 0);
}

/// A feed that has not read a commit keeps the value that commit replaced until it does
/// (it must still return it as `old`); collect() cannot free it before.
#[test]
fn a_feed_keeps_what_it_has_not_read() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, u64>::new();
    t.add_route(Route::new(k(1), 1)).unwrap();
    let mut f = t.feed(Criteria::all()).unwrap();
    for v in 2..=10 {
        t.add_route(Route::new(k(1), v)).unwrap();
    }
    t.collect();
    assert_eq!(
        t.stats().dead_versions,
        9,
        "values 1..=9 are still to be read as old"
    );
    for v in 2..=6 {
        let c = f.try_next().unwrap().unwrap();
        assert_eq!((c.old.unwrap().value, c.new.unwrap().value), (v - 1, v));
    }
    t.collect();
    assert_eq!(
        t.stats().dead_versions,
        4,
        "values 5..=9 are still to be read"
    );
    while f.try_next().unwrap().is_some() {}
    t.collect();
    assert_eq!(t.stats().dead_versions, 0);
}

// ---------------------------------------------------------------------------------------
// next_timeout

/// next_timeout returns a change another thread commits while it waits; Ok(None) only
/// once the timeout has passed (also when commits that do not match arrive meanwhile);
/// with a change already committed it returns at once, even with a zero timeout.
#[test]
fn next_timeout_wakes_for_a_change_and_waits_out_the_rest() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, u64>::new();
    let mut f = t.feed(Criteria::all().network(k(1).prefix)).unwrap();

    let timeout = Duration::from_millis(50);
    let start = Instant::now();
    assert_eq!(f.next_timeout(timeout), Ok(None));
    assert!(start.elapsed() >= timeout);

    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(20));
            t.add_route(Route::new(k(1), 7)).unwrap();
        });
        let c = f.next_timeout(Duration::from_secs(60)).unwrap().unwrap();
        assert_eq!(c.new.unwrap().value, 7);
    });

    // commits to another network wake the waiter, which must keep waiting
    let timeout = Duration::from_millis(100);
    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..10 {
                thread::sleep(Duration::from_millis(5));
                t.add_route(Route::new(k(2), i)).unwrap();
            }
        });
        let start = Instant::now();
        assert_eq!(f.next_timeout(timeout), Ok(None));
        assert!(start.elapsed() >= timeout);
    });

    t.add_route(Route::new(k(1), 8)).unwrap();
    let c = f.next_timeout(Duration::ZERO).unwrap().unwrap();
    assert_eq!(c.new.unwrap().value, 8);
    assert_eq!(f.version(), t.version());
}

/// Commits that come while next_timeout naps, and others that come after it went to
/// sleep on the journal (gaps from none to milliseconds, so that its naps both find
/// commits and come back empty), each arrive once and in order.
#[test]
fn next_timeout_returns_every_change_whether_it_napped_or_slept() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, u64>::new();
    let mut f = t.feed(Criteria::all()).unwrap();
    let gaps_us = [0u64, 0, 5, 20, 0, 200, 3_000, 1, 60, 0, 10_000, 30, 0, 500];
    let n = 400u64;
    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..n {
                let gap = gaps_us[i as usize % gaps_us.len()];
                if gap > 0 {
                    thread::sleep(Duration::from_micros(gap));
                }
                t.add_route(Route::new(k(i as u32 % 7), i)).unwrap();
            }
        });
        let mut last = 0;
        for i in 0..n {
            let c = f.next_timeout(Duration::from_secs(60)).unwrap().unwrap();
            assert_eq!(c.new.unwrap().value, i);
            assert!(c.version.0 > last);
            last = c.version.0;
        }
    });
    assert_eq!(f.try_next(), Ok(None));
    assert_eq!(f.version(), t.version());
}

/// Every `Duration` is a timeout a caller may pass: one too large to add to an `Instant`
/// (`Duration::MAX`) means "as long as it takes", not a panic.
#[test]
fn next_timeout_takes_any_duration() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, u64>::new();
    let mut f = t.feed(Criteria::all()).unwrap();
    t.add_route(Route::new(k(1), 1)).unwrap();
    let c = f.next_timeout(Duration::MAX).unwrap().unwrap();
    assert_eq!(c.new.unwrap().value, 1);
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(20));
            t.add_route(Route::new(k(1), 2)).unwrap();
        });
        let c = f.next_timeout(Duration::MAX).unwrap().unwrap();
        assert_eq!(c.new.unwrap().value, 2);
    });
}

/// A feed is `Send`: it can be opened on one thread and read on another.
#[test]
fn a_feed_moves_between_threads() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, u64>::new();
    let (dump, mut f) = t.subscribe(Criteria::all()).unwrap();
    t.add_route(Route::new(k(1), 1)).unwrap();
    thread::scope(|s| {
        s.spawn(move || {
            assert_eq!(dump.count(), 0);
            assert_eq!(f.try_next().unwrap().unwrap().new.unwrap().value, 1);
            assert_eq!(f.try_next(), Ok(None));
        });
    });
    assert_eq!(t.stats().open_enumerations, 0);
}

// ---------------------------------------------------------------------------------------
// Reclamation with feeds

/// A payload that counts how often each stored original is dropped (clones, which the
/// table returns, are not counted) and panics in `Drop` when its id is marked.
#[derive(Debug)]
struct Tracked {
    id: usize,
    book: Arc<Book>,
    original: bool,
}

#[derive(Debug)]
struct Book {
    drops: Vec<AtomicUsize>,
    panics: Vec<AtomicBool>,
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Tracked {
            id: self.id,
            book: self.book.clone(),
            original: false,
        }
    }
}

impl PartialEq for Tracked {
    fn eq(&self, o: &Self) -> bool {
        self.id == o.id
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if self.original {
            self.book.drops[self.id].fetch_add(1, Ordering::Relaxed);
            if self.book.panics[self.id].load(Ordering::Relaxed) {
                panic!("the payload's Drop panics (on purpose)");
            }
        }
    }
}

fn book(n: usize) -> Arc<Book> {
    Arc::new(Book {
        drops: (0..n).map(|_| AtomicUsize::new(0)).collect(),
        panics: (0..n).map(|_| AtomicBool::new(false)).collect(),
    })
}

fn tracked(b: &Arc<Book>, id: usize) -> Tracked {
    Tracked {
        id,
        book: b.clone(),
        original: true,
    }
}

fn drops(b: &Book, ids: impl IntoIterator<Item = usize>) -> Vec<usize> {
    ids.into_iter()
        .map(|i| b.drops[i].load(Ordering::Relaxed))
        .collect()
}

/// Replaces and deletes with feeds and subscriptions opened, read partly and closed in
/// between: no value a feed still has to return is dropped, every replaced or deleted value
/// is dropped exactly once after the feeds close and collect() runs, and dropping the table
/// drops the rest exactly once.
#[test]
fn every_value_is_dropped_exactly_once_with_feeds() {
    let _s = serial();
    const KEYS: usize = 16;
    const ROUNDS: usize = 40;
    let b = book(KEYS * ROUNDS);
    let t = RouteTable::<Ipv4Net, Tracked>::new();
    let mut feeds = Vec::new();
    let mut dumps = Vec::new();
    let mut live = vec![None; KEYS];
    let mut created = Vec::new();
    for round in 0..ROUNDS {
        for (key, slot) in live.iter_mut().enumerate() {
            let id = round * KEYS + key;
            if (round + key) % 5 == 4 && slot.is_some() {
                t.delete_route(&k(key as u32)).unwrap();
                *slot = None;
            } else {
                t.add_route(Route::new(k(key as u32), tracked(&b, id)))
                    .unwrap();
                *slot = Some(id);
                created.push(id);
            }
        }
        match round % 4 {
            0 => feeds.push(t.feed(Criteria::all()).unwrap()),
            1 => {
                let (d, f) = t.subscribe(Criteria::all().best_only()).unwrap();
                dumps.push(d);
                feeds.push(f);
            }
            2 => {
                // read some feeds partly, close the oldest ones
                for f in feeds.iter_mut().step_by(2) {
                    for _ in 0..KEYS {
                        let _ = f.try_next().unwrap();
                    }
                }
                if feeds.len() > 3 {
                    feeds.remove(0);
                }
                if let Some(d) = dumps.pop() {
                    let _ = d.count();
                }
            }
            _ => t.collect(),
        }
        // nothing a feed has yet to return is gone: the oldest open feed's next change
        // carries a value that is still alive
        if let Some(f) = feeds.first_mut() {
            if let Ok(Some(c)) = f.try_next() {
                for r in c.old.iter().chain(c.new.iter()) {
                    // its original may be dropped only if it is no longer current and
                    // was shadowed before the feed's floor, which this change is after
                    assert_eq!(drops(&b, [r.value.id]), vec![0], "{c:?}");
                }
            }
        }
    }
    drop(dumps);
    drop(feeds);
    t.collect();
    assert_eq!(t.stats().dead_versions, 0);
    let current: Vec<usize> = live.iter().flatten().copied().collect();
    for &id in &created {
        let want = usize::from(!current.contains(&id));
        assert_eq!(drops(&b, [id]), vec![want], "value {id}");
    }
    drop(t);
    for _ in 0..8 {
        crossbeam_epoch::pin().flush();
    }
    for id in 0..KEYS * ROUNDS {
        let want = usize::from(created.contains(&id));
        assert_eq!(drops(&b, [id]), vec![want], "value {id} once");
    }
}

/// The drop counts of `ids` once each has been dropped at least `want` times, or after
/// 64 flushes of the epoch: what the reclaimer unlinked goes through crossbeam-epoch's
/// process-wide collector, which a thread pinned elsewhere can hold back for a while.
fn settled(b: &Book, ids: impl IntoIterator<Item = usize> + Clone, want: usize) -> Vec<usize> {
    for _ in 0..64 {
        if drops(b, ids.clone()).iter().all(|&d| d >= want) {
            break;
        }
        crossbeam_epoch::pin().flush();
    }
    drops(b, ids)
}

/// A payload whose Drop panics: the panic stays inside the reclaimer (that one value is
/// leaked), later dead values are still dropped by collect(), feeds and writes go on, and
/// dropping the table with a panicking value in it does not abort.
#[test]
fn a_panicking_drop_does_not_stop_reclamation() {
    let _s = serial();
    let b = book(64);
    let t = RouteTable::<Ipv4Net, Tracked>::new();
    let mut f = t.feed(Criteria::all()).unwrap();
    t.add_route(Route::new(k(1), tracked(&b, 0))).unwrap();
    b.panics[0].store(true, Ordering::Relaxed);
    t.add_route(Route::new(k(1), tracked(&b, 1))).unwrap(); // shadows the panicking 0
    t.add_route(Route::new(k(2), tracked(&b, 2))).unwrap();
    while f.try_next().unwrap().is_some() {}
    t.collect(); // drops 0, which panics
    assert_eq!(settled(&b, [0], 1), vec![1]);

    // the table goes on: writes, feeds, enumerations, and later garbage is dropped
    for id in 3..10 {
        t.add_route(Route::new(k(1), tracked(&b, id))).unwrap();
    }
    t.delete_route(&k(2)).unwrap();
    let c = f.try_next().unwrap().unwrap();
    assert_eq!((c.old.unwrap().value.id, c.new.unwrap().value.id), (1, 3));
    while f.try_next().unwrap().is_some() {}
    t.collect();
    assert_eq!(t.stats().dead_versions, 0);
    assert_eq!(
        settled(&b, 1..9, 1),
        vec![1; 8],
        "dead values after the panic are dropped"
    );
    assert_eq!(drops(&b, [9]), vec![0], "the current value stays");
    let (dump, mut sub) = t.subscribe(Criteria::all()).unwrap();
    assert_eq!(dump.map(|r| r.value.id).collect::<Vec<_>>(), vec![9]);
    b.panics[10].store(true, Ordering::Relaxed);
    t.add_route(Route::new(k(3), tracked(&b, 10))).unwrap();
    assert_eq!(sub.try_next().unwrap().unwrap().new.unwrap().value.id, 10);
    t.delete_route(&k(3)).unwrap();
    t.add_route(Route::new(k(1), tracked(&b, 11))).unwrap();
    drop((f, sub));
    t.collect(); // drops 10 (panics) and 9
    assert_eq!(settled(&b, [9, 10], 1), vec![1, 1]);
    assert_eq!(t.get_route(&k(1)).unwrap().value.id, 11);
    // a panicking value still in the table when it drops
    b.panics[11].store(true, Ordering::Relaxed);
    drop(t);
    assert_eq!(settled(&b, [11], 1), vec![1]);
}

#[cfg(feature = "serde")]
#[test]
fn changes_serialize_and_come_back_equal() {
    let _s = serial();
    let t = RouteTable::<Ipv4Net, String>::new();
    let k = RouteKey::new(
        "10.1.0.0/16".parse::<Ipv4Net>().unwrap(),
        ProtocolId(14),
        InterfaceId(3),
        "192.0.2.9".parse().unwrap(),
    );
    let mut feed = t.feed(Criteria::all()).unwrap();
    t.add_route(Route::new(k, String::from("a"))).unwrap();
    t.add_route(Route::new(k, String::from("b"))).unwrap();
    for _ in 0..2 {
        let c = feed.try_next().unwrap().unwrap();
        let json = serde_json::to_string(&c).unwrap();
        let back: rtm::Change<Ipv4Net, String> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c, "{json}");
    }
}

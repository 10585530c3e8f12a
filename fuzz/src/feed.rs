//! `feed`: writes (block deletes and enables included), feeds opened at arbitrary points (`subscribe` and `feed`) with arbitrary
//! criteria, and reads interleaved, IPv4 or IPv6, with a journal of 64 commits in some
//! inputs.
//!
//! The model keeps the table's state after every commit, so it knows `E(C, v)` for any
//! criteria and version, and what each commit did to it. Checks:
//! - a subscription's dump is `E(C)` at its snapshot, and the feed starts there; a `feed`
//!   starts at the table's version;
//! - each change is exactly the one the next commit that changed `E(C, ·)` made (`old` and
//!   `new` as the docs of `rtm::Change` define them, best_only included), in strictly increasing version
//!   order, none skipped (an identical rewrite, `old == new`, may be reported or not);
//! - replaying the changes onto the dump (or onto `E(C, v0)`) gives `E(C, feed.version())`
//!   after every change and whenever `try_next` returns `Ok(None)`;
//! - `Lagged` exactly when the table is more than the journal's capacity ahead of the
//!   feed, and for good;
//! - slots: subscribe takes two, feed one, `NoSystemResources` otherwise,
//!   `open_enumerations` counts them; `InvalidParameter` for host bits;
//! - after `collect()`, `dead_versions` is exactly what the open dumps see plus what the
//!   feeds have yet to read (every version shadowed after the lowest floor).

use std::collections::BTreeMap;
use std::time::Duration;

use arbitrary::Arbitrary;
use rtm::{
    Change, Enumeration, Error, Feed, Ipv4Net, Ipv6Net, Route, RouteKey, RouteTable, Version,
};

use crate::input::{decode, CritIn, RouteIn};
use crate::model::{canonical, Crit, Fam, Model};

#[derive(Arbitrary, Debug, Default)]
pub struct Header {
    pub v6: bool,
    pub max_enumerations: u8,
    pub small_journal: bool,
}

#[derive(Arbitrary, Debug)]
pub enum Op {
    Add(RouteIn),
    /// Writes the nth route again, identical.
    Rewrite(u8),
    /// Deletes the nth route (or, with `None`, a key from the pool).
    Delete(Option<u8>, RouteIn),
    /// `delete_routes` (`None`) or `set_routes_enabled` (`Some`).
    Block(CritIn, Option<bool>),
    Subscribe(CritIn),
    Feed(CritIn),
    /// Reads up to `n` changes of one feed (`try_next`, or `next_timeout(0)`).
    Read {
        idx: u8,
        n: u8,
        timeout: bool,
    },
    /// Reads a subscription's dump.
    Dump(u8),
    Close(u8),
    Collect,
}

pub fn run(data: &[u8]) {
    let (h, ops): (Header, Vec<Op>) = decode(data);
    let max = usize::from(h.max_enumerations % 8) + 1;
    let journal = if h.small_journal { 64 } else { 1 << 16 };
    if h.v6 {
        run_ops::<Ipv6Net>(&ops, max, journal);
    } else {
        run_ops::<Ipv4Net>(&ops, max, journal);
    }
}

type M<P> = Model<P, u32>;

/// The table's history: its state after every commit.
struct History<P: Fam> {
    empty: M<P>,
    /// (version, key written, state after)
    commits: Vec<(u64, RouteKey<P>, M<P>)>,
}

impl<P: Fam> History<P> {
    fn at(&self, v: u64) -> &M<P> {
        let i = self.commits.partition_point(|c| c.0 <= v);
        if i == 0 {
            &self.empty
        } else {
            &self.commits[i - 1].2
        }
    }

    /// What the commits in `(from, to]` did to E(C): the change a feed returns, and
    /// whether it is an identical rewrite (which a feed may leave out).
    fn changes(&self, c: &Crit<P>, from: u64, to: u64) -> Vec<(Change<P, u32>, bool)> {
        let start = self.commits.partition_point(|x| x.0 <= from);
        let mut out = Vec::new();
        for i in start..self.commits.len() {
            let (v, key, after) = &self.commits[i];
            if *v > to {
                break;
            }
            let before = if i == 0 {
                &self.empty
            } else {
                &self.commits[i - 1].2
            };
            out.extend(change(c, before, after, *key, *v));
        }
        out
    }
}

/// Every filter but best_only.
fn filters<P: Fam>(c: &Crit<P>) -> Crit<P> {
    Crit {
        best_only: false,
        ..c.clone()
    }
}

/// What the commit of `key` did to E(C).
fn change<P: Fam>(
    c: &Crit<P>,
    before: &M<P>,
    after: &M<P>,
    key: RouteKey<P>,
    version: u64,
) -> Option<(Change<P, u32>, bool)> {
    let f = filters(c);
    let (old, new) = if c.best_only {
        let net = key.prefix;
        let (b, a) = (before.best(&net), after.best(&net));
        // the network's entry changed iff its best route is another key, or the same key
        // rewritten by this commit
        let moved = b.map(|r| r.key) != a.map(|r| r.key) || a.is_some_and(|r| r.key == key);
        if !moved {
            return None;
        }
        (
            b.filter(|r| before.admits(&f, r)).cloned(),
            a.filter(|r| after.admits(&f, r)).cloned(),
        )
    } else {
        (
            before
                .routes
                .get(&key)
                .filter(|r| before.admits(&f, r))
                .cloned(),
            after
                .routes
                .get(&key)
                .filter(|r| after.admits(&f, r))
                .cloned(),
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

type Routes<P> = BTreeMap<RouteKey<P>, Route<P, u32>>;

fn result<P: Fam>(m: &M<P>, c: &Crit<P>) -> Routes<P> {
    m.matching(c).into_iter().map(|r| (r.key, r)).collect()
}

/// Removes `old` (which the copy must hold exactly), inserts `new`.
fn apply<P: Fam>(copy: &mut Routes<P>, c: &Change<P, u32>, best_only: bool) {
    assert!(c.old.is_some() || c.new.is_some(), "an empty change: {c:?}");
    if let (Some(o), Some(n)) = (&c.old, &c.new) {
        if best_only {
            assert_eq!(o.key.prefix, n.key.prefix, "one network per change: {c:?}");
        } else {
            assert_eq!(o.key, n.key, "one key per change: {c:?}");
        }
    }
    match (&c.old, &c.new) {
        (Some(o), _) => assert_eq!(copy.remove(&o.key).as_ref(), Some(o), "old: {c:?}"),
        (None, Some(n)) if best_only => assert!(
            !copy.keys().any(|k| k.prefix == n.key.prefix),
            "no old, but the copy holds the network: {c:?}"
        ),
        (None, Some(n)) => assert!(!copy.contains_key(&n.key), "no old: {c:?}"),
        (None, None) => {}
    }
    if let Some(n) = &c.new {
        copy.insert(n.key, n.clone());
    }
}

struct Open<'t, P: Fam> {
    feed: Feed<'t, P, u32>,
    dump: Option<Enumeration<'t, P, u32>>,
    crit: Crit<P>,
    copy: Option<Routes<P>>,
    pos: u64,
    lagged: bool,
}

impl<P: Fam> Open<'_, P> {
    fn take_dump(&mut self, h: &History<P>) {
        if let Some(dump) = self.dump.take() {
            let snap = dump.snapshot().0;
            let got: Vec<_> = dump.collect();
            assert_eq!(got, h.at(snap).matching(&self.crit), "the dump");
            self.copy = Some(got.into_iter().map(|r| (r.key, r)).collect());
        }
    }

    fn slots(&self) -> usize {
        1 + usize::from(self.dump.is_some())
    }
}

fn run_ops<P: Fam>(ops: &[Op], max: usize, journal: usize) {
    let table = RouteTable::<P, u32>::builder()
        .max_enumerations(max)
        .journal_capacity(journal)
        .build();
    let cap = table.journal_capacity() as u64;
    let mut model = M::<P>::default();
    let mut h = History {
        empty: M::<P>::default(),
        commits: Vec::new(),
    };
    let mut ledger = Ledger::default();
    let mut open: Vec<Open<P>> = Vec::new();
    let mut next_value = 0u32;
    let commit = |h: &mut History<P>, ledger: &mut Ledger<P>, model: &M<P>, key| {
        ledger.commit(table.version().0, h, model, key);
    };

    for op in ops {
        match op {
            Op::Add(r) => {
                next_value += 1;
                let r: Route<P, u32> = r.route(&model, next_value);
                let got = table.add_route(r.clone());
                if canonical(&r.key.prefix) {
                    assert_eq!(got, Ok(model.routes.insert(r.key, r.clone())));
                    commit(&mut h, &mut ledger, &model, r.key);
                } else {
                    assert_eq!(got, Err(Error::InvalidParameter));
                }
            }
            Op::Rewrite(i) => {
                let Some(k) = model.nth_key(*i) else { continue };
                let r = model.routes[&k].clone();
                assert_eq!(table.add_route(r.clone()), Ok(Some(r)));
                commit(&mut h, &mut ledger, &model, k);
            }
            Op::Delete(nth, r) => {
                let k = match nth.and_then(|i| model.nth_key(i)) {
                    Some(k) => k,
                    None => r.key.key(&model),
                };
                let got = table.delete_route(&k);
                if !canonical(&k.prefix) {
                    assert_eq!(got, Err(Error::InvalidParameter));
                } else if let Some(old) = model.routes.remove(&k) {
                    assert_eq!(got, Ok(old));
                    commit(&mut h, &mut ledger, &model, k);
                } else {
                    assert_eq!(got, Err(Error::NoSuchRoute));
                }
            }
            Op::Block(c, enable) => {
                let (criteria, mut crit) = c.build(&model);
                let got = match enable {
                    None => table.delete_routes(criteria),
                    Some(e) => table.set_routes_enabled(criteria, *e),
                };
                let in_use: usize = open.iter().map(Open::slots).sum();
                if !crit.valid() {
                    assert_eq!(got, Err(Error::InvalidParameter));
                    continue;
                }
                if in_use == max {
                    // the operation's snapshot needs a slot
                    assert_eq!(got, Err(Error::NoSystemResources));
                    continue;
                }
                if enable.is_some() {
                    // disabled routes match whatever include_disabled says
                    crit.include_disabled = true;
                }
                // what matched at the call, each changed by its own commit, in key order
                let set: Vec<_> = model
                    .matching(&crit)
                    .into_iter()
                    .filter(|r| enable.is_none_or(|e| r.enabled != e))
                    .collect();
                assert_eq!(got, Ok(set.len()));
                let v0 = h.commits.last().map_or(0, |c| c.0);
                assert_eq!(table.version(), Version(v0 + set.len() as u64));
                for (i, r) in set.into_iter().enumerate() {
                    let k = r.key;
                    match enable {
                        None => model.routes.remove(&k),
                        Some(e) => model.routes.insert(k, Route { enabled: *e, ..r }),
                    };
                    ledger.commit(v0 + 1 + i as u64, &mut h, &model, k);
                }
                in_use_check(&table, &open);
            }
            Op::Subscribe(c) | Op::Feed(c) => {
                let subscribe = matches!(op, Op::Subscribe(_));
                let (criteria, crit) = c.build(&model);
                let in_use: usize = open.iter().map(Open::slots).sum();
                assert_eq!(table.stats().open_enumerations, in_use);
                let need = if subscribe { 2 } else { 1 };
                let now = table.version().0;
                let opened = if subscribe {
                    table.subscribe(criteria).map(|(e, f)| (Some(e), f))
                } else {
                    table.feed(criteria).map(|f| (None, f))
                };
                if !crit.valid() {
                    assert!(matches!(opened, Err(Error::InvalidParameter)));
                } else if in_use + need > max {
                    assert!(matches!(opened, Err(Error::NoSystemResources)));
                } else {
                    let (dump, feed) = opened.expect("a free slot and valid criteria");
                    assert_eq!(feed.version(), Version(now));
                    if let Some(d) = &dump {
                        assert_eq!(d.snapshot(), Version(now));
                    }
                    let copy = (!subscribe).then(|| result(&model, &crit));
                    open.push(Open {
                        feed,
                        dump,
                        crit,
                        copy,
                        pos: now,
                        lagged: false,
                    });
                    in_use_check(&table, &open);
                    continue;
                }
                in_use_check(&table, &open);
            }
            Op::Dump(i) => {
                let n = open.len();
                if n > 0 {
                    open[usize::from(*i) % n].take_dump(&h);
                }
            }
            Op::Read { idx, n, timeout } => {
                let len = open.len();
                if len == 0 {
                    continue;
                }
                let o = &mut open[usize::from(*idx) % len];
                o.take_dump(&h);
                read(o, &table, &h, cap, usize::from(*n % 16) + 1, *timeout);
            }
            Op::Close(i) => {
                let n = open.len();
                if n > 0 {
                    drop(open.swap_remove(usize::from(*i) % n));
                    in_use_check(&table, &open);
                }
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
                let dead = ledger
                    .versions
                    .iter()
                    .filter(|(c, w)| {
                        w.is_some_and(|w| w > floor || pinned.iter().any(|&s| *c <= s && s < w))
                    })
                    .count();
                let s = table.stats();
                assert_eq!(s.dead_versions, dead, "dead versions after collect");
                assert_eq!(s.live_routes, model.routes.len());
                in_use_check(&table, &open);
            }
        }
    }
    // Every feed reads to the end: it converges, or it lagged.
    for o in &mut open {
        o.take_dump(&h);
        read(o, &table, &h, cap, usize::MAX, false);
        if !o.lagged {
            assert_eq!(o.feed.version(), table.version());
            assert_eq!(o.copy.as_ref(), Some(&result(&model, &o.crit)));
        }
    }
    drop(open);
    table.collect();
    let s = table.stats();
    assert_eq!((s.dead_versions, s.open_enumerations), (0, 0));
}

/// Every value-carrying version: when it was committed and when shadowed.
struct Ledger<P: Fam> {
    versions: Vec<(u64, Option<u64>)>,
    current: BTreeMap<RouteKey<P>, usize>,
}

impl<P: Fam> Default for Ledger<P> {
    fn default() -> Self {
        Self {
            versions: Vec::new(),
            current: BTreeMap::new(),
        }
    }
}

impl<P: Fam> Ledger<P> {
    /// The write of `key` committed at `v`, leaving `model`.
    fn commit(&mut self, v: u64, h: &mut History<P>, model: &M<P>, key: RouteKey<P>) {
        assert!(v > h.commits.last().map_or(0, |c| c.0), "a commit advances");
        if let Some(i) = self.current.remove(&key) {
            self.versions[i].1 = Some(v);
        }
        if model.routes.contains_key(&key) {
            self.current.insert(key, self.versions.len());
            self.versions.push((v, None));
        }
        h.commits.push((v, key, model.clone()));
    }
}

fn in_use_check<P: Fam>(table: &RouteTable<P, u32>, open: &[Open<P>]) {
    let slots: usize = open.iter().map(Open::slots).sum();
    assert_eq!(table.stats().open_enumerations, slots);
}

/// Reads up to `n` changes (until caught up), checking each against the history.
fn read<P: Fam>(
    o: &mut Open<P>,
    table: &RouteTable<P, u32>,
    h: &History<P>,
    cap: u64,
    n: usize,
    timeout: bool,
) {
    for _ in 0..n {
        let now = table.version().0;
        assert_eq!(o.feed.version(), Version(o.pos));
        let got = if timeout {
            o.feed.next_timeout(Duration::ZERO)
        } else {
            o.feed.try_next()
        };
        if o.lagged || now - o.pos > cap {
            assert_eq!(got, Err(Error::Lagged), "{} commits behind", now - o.pos);
            o.lagged = true;
            return;
        }
        let mut want = h.changes(&o.crit, o.pos, now).into_iter();
        let copy = o.copy.as_mut().expect("dump taken");
        match got.expect("no lag") {
            Some(c) => {
                assert!(c.version.0 > o.pos, "versions strictly increase");
                loop {
                    let (w, optional) = want
                        .next()
                        .unwrap_or_else(|| panic!("no commit made {c:?}"));
                    if w == c {
                        break;
                    }
                    assert!(
                        optional && w.version < c.version,
                        "skipped or wrong: want {w:?}, got {c:?}"
                    );
                }
                let v = o.feed.version();
                assert!(v >= c.version);
                for (w, optional) in want {
                    assert!(w.version > v || optional, "at {v:?}, skipped {w:?}");
                }
                apply(copy, &c, o.crit.best_only);
                o.pos = v.0;
                assert_eq!(*copy, result(h.at(v.0), &o.crit), "convergence after {c:?}");
            }
            None => {
                for (w, optional) in want {
                    assert!(optional, "caught up without {w:?}");
                }
                assert_eq!(o.feed.version(), Version(now));
                o.pos = now;
                assert_eq!(*copy, result(h.at(now), &o.crit), "convergence, caught up");
                return;
            }
        }
    }
}

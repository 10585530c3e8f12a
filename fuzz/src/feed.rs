//! `feed`: writes (block deletes and enables, and batches valid or not, included), feeds
//! opened at arbitrary points (`subscribe` and `feed`) with arbitrary criteria, and reads
//! (`try_next`, `next_timeout`, `next_commit`) interleaved, IPv4 or IPv6, with a journal
//! of 64 commits in some inputs.
//!
//! The model keeps the table's state after every commit, so it knows `E(C, v)` for any
//! criteria and version, and what each commit did to it. Checks:
//! - a subscription's dump is `E(C)` at its snapshot, and the feed starts there; a `feed`
//!   starts at the table's version;
//! - each change is one the next commit that changed `E(C, ·)` made (`old` and `new` as the
//!   docs of `rtm::Change` define them, best_only included), commits in strictly increasing
//!   version order, none skipped (an identical rewrite, `old == new`, may be reported or
//!   not); the changes of one commit (a batch or a block operation: one per key, or per
//!   network for best_only) come together, each once, in any order, and `feed.version()`
//!   stays the version before the commit until its last change is returned;
//!   `next_commit` returns all of a commit's changes at once;
//! - replaying the changes onto the dump (or onto `E(C, v0)`) gives `E(C, feed.version())`
//!   after every change and whenever `try_next` returns `Ok(None)`;
//! - `Lagged` exactly when the table's clock is more than the journal's capacity ahead of
//!   the feed, and for good (a failed batch that had linked versions takes a clock value,
//!   recorded as a cancellation, and counts towards it);
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

use crate::input::{batch_ops, decode, BatchOpIn, CritIn, RouteIn};
use crate::model::{canonical, to_batch, Crit, Fam, Model};

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
    /// Reads up to `n` changes of one feed (`mode % 3`: `try_next`, `next_timeout(0)`, or
    /// `next_commit`, `n` commits).
    Read {
        idx: u8,
        n: u8,
        mode: u8,
    },
    /// Reads a subscription's dump.
    Dump(u8),
    Close(u8),
    Collect,
    /// Commits a batch (each add carries a fresh value).
    Batch(Vec<BatchOpIn>),
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
    /// (version, keys written, state after)
    commits: Vec<(u64, Vec<RouteKey<P>>, M<P>)>,
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

    /// What the commits in `(from, to]` did to E(C), per commit that did something: the
    /// changes a feed returns, each with whether it is an identical rewrite (which a feed
    /// may leave out).
    fn changes(&self, c: &Crit<P>, from: u64, to: u64) -> Vec<(u64, Pending<P>)> {
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
            let mut seen = Vec::new();
            let changes: Pending<P> = keys
                .iter()
                .filter(|k| {
                    // best_only: one change per network
                    let id = if c.best_only {
                        (k.prefix, None)
                    } else {
                        (k.prefix, Some(**k))
                    };
                    let new = !seen.contains(&id);
                    seen.push(id);
                    new
                })
                .filter_map(|k| change(c, before, after, keys, *k, *v))
                .collect();
            if !changes.is_empty() {
                out.push((*v, changes));
            }
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

/// A commit's changes a feed has yet to return, each with whether it may be left out.
type Pending<P> = Vec<(Change<P, u32>, bool)>;

/// What the commit of `keys` did to E(C) at `key` (at its network, for best_only).
fn change<P: Fam>(
    c: &Crit<P>,
    before: &M<P>,
    after: &M<P>,
    keys: &[RouteKey<P>],
    key: RouteKey<P>,
    version: u64,
) -> Option<(Change<P, u32>, bool)> {
    let f = filters(c);
    let (old, new) = if c.best_only {
        let net = key.prefix;
        let (b, a) = (before.best(&net), after.best(&net));
        // the network's entry changed iff its best route is another key, or the same key
        // rewritten by this commit
        let moved =
            b.map(|r| r.key) != a.map(|r| r.key) || a.is_some_and(|r| keys.contains(&r.key));
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
    /// `feed.version()` as the model expects it.
    pos: u64,
    /// The commit whose changes the feed has begun to return: its version and the rest.
    cur: Option<(u64, Pending<P>)>,
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
        ledger.commit(table.version().0, h, model, &[key]);
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
                let before = table.version();
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
                // what matched at the call, all changed by one commit
                let set: Vec<_> = model
                    .matching(&crit)
                    .into_iter()
                    .filter(|r| enable.is_none_or(|e| r.enabled != e))
                    .collect();
                assert_eq!(got, Ok(set.len()));
                if !set.is_empty() {
                    let keys: Vec<_> = set.iter().map(|r| r.key).collect();
                    for r in set {
                        match enable {
                            None => model.routes.remove(&r.key),
                            Some(e) => model.routes.insert(r.key, Route { enabled: *e, ..r }),
                        };
                    }
                    let v = table.version().0;
                    assert_eq!(v, before.0 + 1, "a block operation is one commit");
                    ledger.commit(v, &mut h, &model, &keys);
                } else {
                    assert_eq!(table.version(), before);
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
                        cur: None,
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
            Op::Read { idx, n, mode } => {
                let len = open.len();
                if len == 0 {
                    continue;
                }
                let o = &mut open[usize::from(*idx) % len];
                o.take_dump(&h);
                read(o, &table, &h, cap, usize::from(*n % 16) + 1, *mode % 3);
            }
            Op::Batch(changes) => {
                let ops = batch_ops(changes, &model, |_| {
                    next_value += 1;
                    next_value
                });
                let before = table.version();
                let got = table.commit(to_batch(&ops));
                match model.commit(&ops) {
                    Ok((after, keys)) => {
                        let v = got.unwrap_or_else(|e| panic!("commit of {ops:?}: {e:?}"));
                        assert_eq!(table.version(), v);
                        model = after;
                        if keys.is_empty() {
                            assert_eq!(v, before, "a batch that changes nothing");
                        } else {
                            assert_eq!(v.0, before.0 + 1, "one version for the batch");
                            ledger.commit(v.0, &mut h, &model, &keys);
                        }
                    }
                    Err(e) => {
                        assert_eq!(got, Err(e), "commit of {ops:?}");
                        assert!(table.version() >= before);
                    }
                }
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
        read(o, &table, &h, cap, usize::MAX, 0);
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
    /// The writes of `keys` committed at `v`, leaving `model`.
    fn commit(&mut self, v: u64, h: &mut History<P>, model: &M<P>, keys: &[RouteKey<P>]) {
        assert!(v > h.commits.last().map_or(0, |c| c.0), "a commit advances");
        for &key in keys {
            if let Some(i) = self.current.remove(&key) {
                self.versions[i].1 = Some(v);
            }
            if model.routes.contains_key(&key) {
                self.current.insert(key, self.versions.len());
                self.versions.push((v, None));
            }
        }
        h.commits.push((v, keys.to_vec(), model.clone()));
    }
}

fn in_use_check<P: Fam>(table: &RouteTable<P, u32>, open: &[Open<P>]) {
    let slots: usize = open.iter().map(Open::slots).sum();
    assert_eq!(table.stats().open_enumerations, slots);
}

/// Reads up to `n` changes (`mode` 0: `try_next`, 1: `next_timeout(0)`) or `n` commits
/// (mode 2: `next_commit`), until caught up, checking each against the history.
fn read<P: Fam>(
    o: &mut Open<P>,
    table: &RouteTable<P, u32>,
    h: &History<P>,
    cap: u64,
    n: usize,
    mode: u8,
) {
    for _ in 0..n {
        let now = table.version().0;
        assert_eq!(o.feed.version(), Version(o.pos));
        let mut out = Vec::new();
        let got = match mode {
            0 => o.feed.try_next().map(|c| c.map(|c| vec![c])),
            1 => o
                .feed
                .next_timeout(Duration::ZERO)
                .map(|c| c.map(|c| vec![c])),
            _ => o.feed.next_commit(&mut out).map(|v| {
                v.map(|v| {
                    assert!(!out.is_empty(), "next_commit returned {v:?} and no change");
                    assert!(out.iter().all(|c| c.version == v), "one commit: {out:?}");
                    std::mem::take(&mut out)
                })
            }),
        };
        assert!(out.is_empty(), "next_commit left {out:?} on {got:?}");
        if o.lagged || now - o.pos > cap {
            assert_eq!(got, Err(Error::Lagged), "{} commits behind", now - o.pos);
            o.lagged = true;
            return;
        }
        match got.expect("no lag") {
            Some(changes) => {
                for c in &changes {
                    o.accept(h, c);
                }
                let cv = changes[0].version.0;
                let v = o.feed.version().0;
                let rest = o.cur.as_ref().map_or(&[][..], |c| &c.1[..]);
                let mandatory = rest.iter().any(|(_, optional)| !optional);
                if mode == 2 {
                    assert_eq!(v, cv, "next_commit returns the whole commit");
                    assert!(!mandatory, "next_commit left out {rest:?}");
                } else if mandatory {
                    assert_eq!(
                        v,
                        cv - 1,
                        "the version before, until the commit's last change"
                    );
                } else {
                    // after the commit's last change (or with only identical rewrites
                    // left), the feed may not have seen yet that nothing more of the
                    // commit is for it: its next call tells
                    assert!(v == cv || v == cv - 1, "at {v}, in the commit {cv}");
                }
                if v == cv {
                    o.cur = None;
                }
                o.pos = v;
                if !mandatory {
                    let copy = o.copy.as_ref().expect("dump taken");
                    assert_eq!(*copy, result(h.at(cv), &o.crit), "convergence at {cv}");
                }
            }
            None => {
                for (_, rest) in o.pending(h, now) {
                    for (w, optional) in rest {
                        assert!(optional, "caught up without {w:?}");
                    }
                }
                assert_eq!(o.feed.version(), Version(now));
                o.pos = now;
                o.cur = None;
                let copy = o.copy.as_ref().expect("dump taken");
                assert_eq!(*copy, result(h.at(now), &o.crit), "convergence, caught up");
                return;
            }
        }
    }
}

impl<P: Fam> Open<'_, P> {
    /// The changes through `now` the feed has not returned: the rest of the commit it is
    /// in, then every later commit's.
    fn pending(&self, h: &History<P>, now: u64) -> Vec<(u64, Pending<P>)> {
        let mut out = Vec::new();
        let from = match &self.cur {
            Some((v, rest)) => {
                out.push((*v, rest.clone()));
                *v
            }
            None => self.pos,
        };
        out.extend(h.changes(&self.crit, from, now));
        out
    }

    /// Checks a change the feed returned against the history and applies it to the copy.
    fn accept(&mut self, h: &History<P>, c: &Change<P, u32>) {
        let cv = c.version.0;
        assert!(cv > self.pos, "versions increase: {c:?} at {}", self.pos);
        let now = h.commits.last().map_or(0, |x| x.0);
        let mut found = false;
        let mut cur = None;
        for (v, mut rest) in self.pending(h, now) {
            if v < cv {
                for (w, optional) in &rest {
                    assert!(*optional, "skipped {w:?} (got {c:?})");
                }
                continue;
            }
            assert_eq!(v, cv, "no commit made {c:?}");
            let i = rest.iter().position(|(w, _)| w == c).unwrap_or_else(|| {
                panic!("commit {cv} did not make {c:?} (or gave it already); it made {rest:?}")
            });
            rest.swap_remove(i);
            cur = Some((v, rest));
            found = true;
            break;
        }
        assert!(found, "no commit made {c:?}");
        self.cur = cur;
        let copy = self.copy.as_mut().expect("dump taken");
        apply(copy, c, self.crit.best_only);
    }
}

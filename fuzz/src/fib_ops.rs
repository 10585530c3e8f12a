//! `fib_ops`: a `Fib` kept in step with a table by its follower, across arbitrary writes
//! (add, replace, delete, enable/disable, `delete_routes`, `set_routes_enabled`) over the
//! pool's nested prefixes, syncs at arbitrary points, and lookups (one by one and in
//! batches) at arbitrary addresses, IPv4 or IPv6, with a journal of 64 commits in some
//! inputs so that the follower lags and rebuilds.
//!
//! The model is the table's state as of the last sync (or the last `follow`). Checks:
//! - `sync()` is `Ok` (a lagged follower rebuilds), `fib.version()` is then the table's
//!   version and `fib.len()` the number of networks with a best route; a sync returns at
//!   most one change per route written since the last one (a block operation is one
//!   commit of many routes), or the rebuilt Fib's size when it lagged;
//! - every lookup, at any point, is the synced model's `lookup(addr)` mapped to its next
//!   hop (the route's value, unique per write, so a stale answer shows), and, while no
//!   write ran since the sync, the table's own `lookup` gives the same;
//! - `lookup_batch` (through a cloned reader) writes exactly the single lookups' answers
//!   into every slot of `out`.

use std::collections::BTreeSet;

use arbitrary::Arbitrary;
use rtm::{Error, Fib, FibFollower, Ipv4Net, Ipv6Net, Route, RouteTable, Version};

use crate::input::{decode, AddrIn, CritIn, RouteIn};
use crate::model::{canonical, Fam, Model};

#[derive(Arbitrary, Debug, Default)]
pub struct Header {
    pub v6: bool,
    pub small_journal: bool,
    pub max_enumerations: u8,
}

#[derive(Arbitrary, Debug)]
pub enum Op {
    /// Adds or replaces a route (a new value, so a new next hop).
    Add(RouteIn),
    /// Deletes the nth route (or, with `None`, a key from the pool).
    Delete(Option<u8>, RouteIn),
    /// Rewrites the nth route with its `enabled` flipped.
    Toggle(u8),
    /// `delete_routes` (`None`) or `set_routes_enabled` (`Some`).
    Block(CritIn, Option<bool>),
    /// Several adds in a row (to reach the small journal's capacity quickly).
    Burst(RouteIn, u8),
    Sync,
    Lookup(AddrIn),
    Batch(Vec<AddrIn>),
    /// Drops the follower and follows the table afresh.
    Follow,
    Collect,
}

pub fn run(data: &[u8]) {
    let (h, ops): (Header, Vec<Op>) = decode(data);
    // The follower holds one slot and needs one more while it builds; a block operation
    // needs one for its snapshot.
    let max = usize::from(h.max_enumerations % 3) + 2;
    let journal = if h.small_journal { 64 } else { 1 << 16 };
    if h.v6 {
        run_ops::<Ipv6Net>(&ops, max, journal);
    } else {
        run_ops::<Ipv4Net>(&ops, max, journal);
    }
}

type M<P> = Model<P, u32>;

/// The next hop a route maps to: its value, which every write makes fresh, with the top
/// six bits set for odd values, so that half the ids are too large for a directory entry
/// (the Fib's shared leaf-only nodes) and the rest fit one. Values stay far below 2^26,
/// so the map is one-to-one.
fn next_hop<P: Fam>(r: &Route<P, u32>) -> u32 {
    if r.value & 1 == 1 {
        r.value | 0xfc00_0000
    } else {
        r.value
    }
}

/// What the Fib must hold after a sync at the model's state.
struct Synced<P: Fam> {
    model: M<P>,
    version: u64,
    /// No write has run since.
    clean: bool,
    /// Routes written since (each changes at most one network's entry).
    written: u64,
}

fn best_count<P: Fam>(m: &M<P>) -> usize {
    let nets: BTreeSet<P> = m.routes.keys().map(|k| k.prefix).collect();
    nets.iter().filter(|n| m.best(n).is_some()).count()
}

fn check_synced<P: Fam>(fib: &Fib<P>, table: &RouteTable<P, u32>, model: &M<P>) {
    assert_eq!(
        fib.version(),
        table.version(),
        "the Fib's version after a sync"
    );
    assert_eq!(fib.len(), best_count(model), "networks with a next hop");
    assert_eq!(fib.is_empty(), best_count(model) == 0);
}

fn follow<'t, P: Fam>(
    table: &'t RouteTable<P, u32>,
    model: &M<P>,
) -> (Fib<P>, FibFollower<'t, P, u32>, Synced<P>) {
    let (fib, follower) = Fib::follow(table, next_hop::<P>).expect("two free slots");
    check_synced(&fib, table, model);
    let synced = Synced {
        model: model.clone(),
        version: table.version().0,
        clean: true,
        written: 0,
    };
    (fib, follower, synced)
}

fn expect<P: Fam>(s: &Synced<P>, table: &RouteTable<P, u32>, a: &AddrIn) -> (P::Addr, Option<u32>) {
    let bits = a.bits::<P>();
    let addr = P::addr(bits);
    let want = s.model.lookup(bits).map(next_hop);
    if s.clean {
        assert_eq!(
            table.lookup(addr).as_ref().map(next_hop),
            want,
            "the model's lookup of {bits:#x} disagrees with the table's"
        );
    }
    (addr, want)
}

fn run_ops<P: Fam>(ops: &[Op], max: usize, journal: usize) {
    let table = RouteTable::<P, u32>::builder()
        .max_enumerations(max)
        .journal_capacity(journal)
        .build();
    let cap = table.journal_capacity() as u64;
    let mut model = M::<P>::default();
    let mut next_value = 0u32;
    let (mut fib, mut follower, mut synced) = follow(&table, &model);

    for op in ops {
        match op {
            Op::Add(r) | Op::Burst(r, _) => {
                let n = match op {
                    Op::Burst(_, n) => usize::from(*n % 80) + 1,
                    _ => 1,
                };
                for _ in 0..n {
                    next_value += 1;
                    let r: Route<P, u32> = r.route(&model, next_value);
                    let got = table.add_route(r.clone());
                    if canonical(&r.key.prefix) {
                        assert_eq!(got, Ok(model.routes.insert(r.key, r.clone())));
                        synced.clean = false;
                        synced.written += 1;
                    } else {
                        assert_eq!(got, Err(Error::InvalidParameter));
                        break;
                    }
                }
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
                    synced.clean = false;
                    synced.written += 1;
                } else {
                    assert_eq!(got, Err(Error::NoSuchRoute));
                }
            }
            Op::Toggle(i) => {
                let Some(k) = model.nth_key(*i) else { continue };
                next_value += 1;
                let old = model.routes[&k].clone();
                let new = Route {
                    enabled: !old.enabled,
                    value: next_value,
                    ..old.clone()
                };
                assert_eq!(table.add_route(new.clone()), Ok(Some(old)));
                model.routes.insert(k, new);
                synced.clean = false;
                synced.written += 1;
            }
            Op::Block(c, enable) => {
                let (criteria, mut crit) = c.build(&model);
                let v0 = table.version().0;
                let got = match enable {
                    None => table.delete_routes(criteria),
                    Some(e) => table.set_routes_enabled(criteria, *e),
                };
                if !crit.valid() {
                    assert_eq!(got, Err(Error::InvalidParameter));
                    continue;
                }
                if enable.is_some() {
                    // disabled routes match whatever include_disabled says
                    crit.include_disabled = true;
                }
                let set: Vec<_> = model
                    .matching(&crit)
                    .into_iter()
                    .filter(|r| enable.is_none_or(|e| r.enabled != e))
                    .collect();
                assert_eq!(got, Ok(set.len()), "block operation");
                // one commit, whatever its size
                let v1 = v0 + u64::from(!set.is_empty());
                assert_eq!(table.version(), Version(v1));
                synced.written += set.len() as u64;
                for r in set {
                    match enable {
                        None => model.routes.remove(&r.key),
                        Some(e) => model.routes.insert(r.key, Route { enabled: *e, ..r }),
                    };
                    synced.clean = false;
                }
            }
            Op::Sync => {
                let behind = table.version().0 - synced.version;
                let written = synced.written;
                let got = follower.sync();
                let Ok(n) = got else {
                    panic!("sync {behind} commits behind: {got:?}");
                };
                check_synced(&fib, &table, &model);
                if behind > cap {
                    assert_eq!(n, fib.len(), "a lagged sync returns the rebuilt size");
                } else {
                    assert!(
                        n as u64 <= written,
                        "{n} changes applied for {written} routes written"
                    );
                }
                synced = Synced {
                    model: model.clone(),
                    version: table.version().0,
                    clean: true,
                    written: 0,
                };
            }
            Op::Lookup(a) => {
                let (addr, want) = expect(&synced, &table, a);
                assert_eq!(fib.lookup(addr), want, "lookup of {addr:?}");
            }
            Op::Batch(addrs) => {
                let addrs = &addrs[..addrs.len().min(64)];
                let mut want = Vec::with_capacity(addrs.len());
                let mut batch = Vec::with_capacity(addrs.len());
                for a in addrs {
                    let (addr, w) = expect(&synced, &table, a);
                    batch.push(addr);
                    want.push(w);
                }
                // a sentinel no route maps to, so that an untouched slot shows
                let mut out = vec![Some(u32::MAX); batch.len()];
                let reader = fib.clone();
                reader.lookup_batch(&batch, &mut out);
                assert_eq!(out, want, "lookup_batch of {batch:?}");
                for (addr, w) in batch.iter().zip(&want) {
                    assert_eq!(reader.lookup(*addr), *w, "lookup of {addr:?}");
                }
            }
            Op::Follow => {
                drop(follower);
                (fib, follower, synced) = follow(&table, &model);
            }
            Op::Collect => table.collect(),
        }
    }

    // Catch up once more and check every pooled boundary.
    assert!(follower.sync().is_ok());
    check_synced(&fib, &table, &model);
    let s = Synced {
        model: model.clone(),
        version: table.version().0,
        clean: true,
        written: 0,
    };
    for prefix in 0..P::CANONICAL.len() as u8 {
        for mode in 0..4 {
            let a = AddrIn {
                prefix,
                mode,
                raw: 0,
            };
            let (addr, want) = expect(&s, &table, &a);
            assert_eq!(fib.lookup(addr), want, "final lookup of {addr:?}");
        }
    }
}

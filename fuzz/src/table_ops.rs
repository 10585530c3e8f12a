//! `table_ops`: every read and write of the table, IPv4 or IPv6, against the model;
//! enumerations with every criterion, through both the RAII and the handle API; batches
//! (valid and invalid) committed beside the single writes, with a snapshot open across
//! some of them.

use arbitrary::Arbitrary;
use rtm::{Criteria, EnumHandle, Error, Ipv4Net, Ipv6Net, RouteTable, Version};

use crate::input::{batch_ops, decode, prefix, AddrIn, BatchOpIn, CritIn, KeySel, RouteIn};
use crate::model::{canonical, to_batch, Crit, Fam, Model};

#[derive(Arbitrary, Debug)]
pub enum Op {
    Add(RouteIn),
    Delete(KeySel),
    Get(KeySel),
    Best(u8),
    Lookup(AddrIn),
    Enumerate {
        crit: CritIn,
        handle: bool,
    },
    Counts,
    /// Commits a batch; with `snapshot`, an enumeration opened before it is read after.
    Batch {
        changes: Vec<BatchOpIn>,
        snapshot: bool,
    },
}

pub fn run(data: &[u8]) {
    let (v6, ops): (bool, Vec<Op>) = decode(data);
    if v6 {
        run_ops::<Ipv6Net>(&ops);
    } else {
        run_ops::<Ipv4Net>(&ops);
    }
}

fn run_ops<P: Fam>(ops: &[Op]) {
    let table = RouteTable::<P, u16>::new();
    let mut model = Model::<P, u16>::default();
    for op in ops {
        let before = table.version();
        let mut wrote = false;
        match op {
            Op::Add(r) => {
                let r = r.route(&model, r.value);
                let got = table.add_route(r.clone());
                if canonical(&r.key.prefix) {
                    assert_eq!(got, Ok(model.routes.insert(r.key, r)));
                    wrote = true;
                } else {
                    assert_eq!(got, Err(Error::InvalidParameter));
                }
            }
            Op::Delete(k) => {
                let k = k.key(&model);
                let got = table.delete_route(&k);
                if canonical(&k.prefix) {
                    let want = model.routes.remove(&k).ok_or(Error::NoSuchRoute);
                    wrote = want.is_ok();
                    assert_eq!(got, want);
                } else {
                    assert_eq!(got, Err(Error::InvalidParameter));
                }
            }
            Op::Get(k) => {
                let k = k.key(&model);
                assert_eq!(table.get_route(&k).as_ref(), model.routes.get(&k));
            }
            Op::Best(p) => {
                let p: P = prefix(*p);
                // A prefix with host bits set has no routes in the model: `None` either way.
                assert_eq!(table.best_route(&p).as_ref(), model.best(&p));
            }
            Op::Lookup(a) => {
                let bits = a.bits::<P>();
                assert_eq!(table.lookup(P::addr(bits)).as_ref(), model.lookup(bits));
            }
            Op::Enumerate { crit, handle } => {
                let (criteria, m) = crit.build(&model);
                let want = m.valid().then(|| model.matching(&m));
                if *handle {
                    enumerate_handle(&table, criteria, want);
                } else {
                    match (table.enumerate(criteria), want) {
                        (Ok(mut it), Some(want)) => {
                            assert_eq!(it.snapshot(), table.version());
                            assert_eq!(it.by_ref().collect::<Vec<_>>(), want);
                            assert_eq!(it.next(), None);
                            assert_eq!(it.next(), None);
                            assert_eq!(table.stats().open_enumerations, 1);
                            assert_eq!(it.close(), Ok(()));
                        }
                        (Err(e), None) => assert_eq!(e, Error::InvalidParameter),
                        (got, want) => panic!("enumerate: got {got:?}, want {want:?}"),
                    }
                }
                assert_eq!(table.stats().open_enumerations, 0);
            }
            Op::Batch { changes, snapshot } => {
                wrote = commit(&table, &mut model, changes, *snapshot);
            }
            Op::Counts => {
                assert_eq!(table.network_count(), model.network_count());
                let s = table.stats();
                assert_eq!(s.live_routes, model.routes.len());
                assert_eq!(s.version, table.version());
            }
        }
        assert_eq!(table.route_count(), model.routes.len());
        let after = table.version();
        if wrote {
            assert!(after > before, "a committed write must advance the version");
        } else {
            assert!(after >= before);
        }
    }
    assert_eq!(table.network_count(), model.network_count());
}

/// Commits the batch and checks it against the model: applied whole at one new version,
/// or (on the model's error) not at all. Returns whether it changed anything.
fn commit<P: Fam>(
    table: &RouteTable<P, u16>,
    model: &mut Model<P, u16>,
    changes: &[BatchOpIn],
    snapshot: bool,
) -> bool {
    let all = || Criteria::all().include_disabled();
    let ops = batch_ops(changes, model, |r| r.value);
    let before = table.version();
    let old = model.matching(&Crit::everything());
    let snap = snapshot.then(|| table.enumerate(all()).expect("a free slot"));
    let got = table.commit(to_batch(&ops));
    let wrote = match model.commit(&ops) {
        Ok((after, changed)) => {
            let v = got.unwrap_or_else(|e| panic!("commit of {ops:?}: {e:?}"));
            if changed.is_empty() {
                assert_eq!(v, before, "a batch that changes nothing commits nothing");
            } else {
                assert_eq!(v, Version(before.0 + 1), "one version for the whole batch");
            }
            assert_eq!(table.version(), v);
            for k in &changed {
                assert_eq!(table.get_route(k).as_ref(), after.routes.get(k));
            }
            // every changed route is at the new version, every other one older
            let unchanged: Vec<_> = after
                .routes
                .values()
                .filter(|r| !changed.contains(&r.key))
                .cloned()
                .collect();
            let e = table
                .enumerate(all().unchanged_since(before))
                .expect("valid");
            assert_eq!(
                e.collect::<Vec<_>>(),
                unchanged,
                "unchanged since {before:?}"
            );
            let e = table.enumerate(all().unchanged_since(v)).expect("valid");
            assert_eq!(e.collect::<Vec<_>>(), after.matching(&Crit::everything()));
            *model = after;
            !changed.is_empty()
        }
        Err(e) => {
            assert_eq!(got, Err(e), "commit of {ops:?}");
            // A failed batch may have taken a clock value (a gap), nothing else.
            assert!(table.version() >= before);
            let now = table.enumerate(all()).expect("valid");
            assert_eq!(
                now.collect::<Vec<_>>(),
                model.matching(&Crit::everything()),
                "a failed batch changes nothing"
            );
            false
        }
    };
    if let Some(s) = snap {
        // a snapshot from before the batch sees none of it
        assert_eq!(s.snapshot(), before);
        assert_eq!(s.collect::<Vec<_>>(), old, "the snapshot before the batch");
    }
    wrote
}

fn enumerate_handle<P: Fam>(
    table: &RouteTable<P, u16>,
    criteria: rtm::Criteria<P>,
    want: Option<Vec<rtm::Route<P, u16>>>,
) {
    match (table.create_enumeration_handle(criteria), want) {
        (Ok(h), Some(want)) => {
            let mut got = Vec::new();
            let end = loop {
                match table.enumerate_get_next_route(h) {
                    Ok(r) if got.len() <= want.len() => got.push(r),
                    other => break other,
                }
            };
            assert_eq!(got, want);
            assert_eq!(end.map(|r| r.key), Err(Error::NoMoreRoutes));
            assert_eq!(table.enumerate_get_next_route(h), Err(Error::NoMoreRoutes));
            assert_eq!(table.stats().open_enumerations, 1);
            assert_eq!(table.close_enumeration_handle(h), Ok(()));
            assert_eq!(table.enumerate_get_next_route(h), Err(Error::InvalidHandle));
            assert_eq!(
                table.close_enumeration_handle(EnumHandle::from_raw(h.into_raw())),
                Err(Error::InvalidHandle)
            );
        }
        (Err(e), None) => assert_eq!(e, Error::InvalidParameter),
        (got, want) => panic!("create_enumeration_handle: got {got:?}, want {want:?}"),
    }
}

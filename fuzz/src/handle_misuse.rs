//! `handle_misuse`: the handle API under any sequence of calls and any handle value.
//!
//! Two tables, each with a model. Handles are drawn from the live ones, the closed ones,
//! arbitrary values, bit-flipped and nearby forgeries of issued ones, and (through the
//! table choice) the other table's. The oracle is simple and layout-free: a value is
//! valid on a table iff the model holds it as that table's open handle; then `next`
//! pops the frozen snapshot, else every call is `InvalidHandle`.

use std::collections::{BTreeMap, HashSet, VecDeque};

use arbitrary::Arbitrary;
use rtm::{EnumHandle, Enumeration, Error, Ipv4Net, Route, RouteTable};

use crate::input::{decode, CritIn, KeySel, RouteIn};
use crate::model::Model;

type P = Ipv4Net;
type R = Route<P, u16>;

#[derive(Arbitrary, Debug)]
pub enum Op {
    Create {
        other: bool,
        crit: CritIn,
    },
    Next {
        other: bool,
        h: HandleSel,
    },
    Close {
        other: bool,
        h: HandleSel,
    },
    OpenIter {
        other: bool,
        crit: CritIn,
    },
    IterNext {
        other: bool,
        idx: u8,
    },
    IterClose {
        other: bool,
        idx: u8,
        explicit: bool,
    },
    Add {
        other: bool,
        route: RouteIn,
    },
    Delete {
        other: bool,
        key: KeySel,
    },
}

#[derive(Arbitrary, Debug)]
pub enum HandleSel {
    Live(u8),
    Closed(u8),
    Raw(u64),
    Flipped {
        idx: u8,
        bit: u8,
    },
    /// The issued handle's top bits (its table) with a small slot and a nearby generation:
    /// the values a stale or forged handle is most likely to take.
    Near {
        idx: u8,
        slot: u8,
        gen: i8,
    },
}

/// The table's limit of open enumerations for a selector byte, and the table.
fn table_for(limit: u8) -> (usize, RouteTable<P, u16>) {
    match limit % 4 {
        0 => (rtm::DEFAULT_MAX_ENUMERATIONS, RouteTable::new()),
        // clamped to 1
        1 => (1, RouteTable::with_max_enumerations(0)),
        _ => {
            let n = usize::from(limit / 4 % 6) + 1;
            (n, RouteTable::with_max_enumerations(n))
        }
    }
}

struct Side<'t> {
    table: &'t RouteTable<P, u16>,
    model: Model<P, u16>,
    max: usize,
    handles: BTreeMap<u64, VecDeque<R>>,
    iters: Vec<(Enumeration<'t, P, u16>, VecDeque<R>)>,
}

impl<'t> Side<'t> {
    fn new(table: &'t RouteTable<P, u16>, max: usize) -> Self {
        assert_eq!(table.max_enumerations(), max);
        Self {
            table,
            model: Model::default(),
            max,
            handles: BTreeMap::new(),
            iters: Vec::new(),
        }
    }

    fn open(&self) -> usize {
        self.handles.len() + self.iters.len()
    }

    fn check_open_count(&self) {
        assert_eq!(self.table.stats().open_enumerations, self.open());
    }

    fn next(&mut self, raw: u64) {
        let got = self
            .table
            .enumerate_get_next_route(EnumHandle::from_raw(raw));
        match self.handles.get_mut(&raw) {
            Some(frozen) => assert_eq!(got, frozen.pop_front().ok_or(Error::NoMoreRoutes)),
            None => assert_eq!(got, Err(Error::InvalidHandle)),
        }
    }

    fn close(&mut self, raw: u64, closed: &mut Vec<u64>) {
        let got = self
            .table
            .close_enumeration_handle(EnumHandle::from_raw(raw));
        if self.handles.remove(&raw).is_some() {
            assert_eq!(got, Ok(()));
            closed.push(raw);
        } else {
            assert_eq!(got, Err(Error::InvalidHandle));
        }
        self.check_open_count();
    }

    /// Drains every open enumeration against its snapshot, then closes it.
    fn finish(&mut self, closed: &mut Vec<u64>) {
        for (mut it, frozen) in std::mem::take(&mut self.iters) {
            assert_eq!(it.by_ref().collect::<Vec<_>>(), Vec::from(frozen));
            assert_eq!(it.next(), None);
            assert_eq!(it.close(), Ok(()));
        }
        let raws: Vec<u64> = self.handles.keys().copied().collect();
        for raw in raws {
            while !self.handles[&raw].is_empty() {
                self.next(raw);
            }
            self.next(raw);
            self.next(raw);
            self.close(raw, closed);
        }
        assert_eq!(self.open(), 0);
        self.check_open_count();
    }
}

pub fn run(data: &[u8]) {
    let (limits, ops): ([u8; 2], Vec<Op>) = decode(data);
    let (max_a, table_a) = table_for(limits[0]);
    let (max_b, table_b) = table_for(limits[1]);
    let mut sides = [Side::new(&table_a, max_a), Side::new(&table_b, max_b)];
    // Every value either table ever issued, in order, and the closed ones.
    let mut issued: Vec<u64> = Vec::new();
    let mut issued_set: HashSet<u64> = HashSet::new();
    let mut closed: Vec<u64> = Vec::new();

    for op in &ops {
        match op {
            Op::Create { other, crit } => {
                let s = &mut sides[usize::from(*other)];
                let (criteria, m) = crit.build(&s.model);
                let full = s.open() >= s.max;
                let got = s.table.create_enumeration_handle(criteria);
                match got {
                    Ok(h) => {
                        assert!(
                            m.valid() && !full,
                            "created {h:?}: valid {} full {full}",
                            m.valid()
                        );
                        let raw = h.into_raw();
                        assert!(issued_set.insert(raw), "handle value {raw:#x} issued twice");
                        issued.push(raw);
                        s.handles.insert(raw, s.model.matching(&m).into());
                    }
                    Err(Error::InvalidParameter) => assert!(!m.valid()),
                    // Both may apply; either answer is acceptable then.
                    Err(Error::NoSystemResources) => assert!(full),
                    Err(e) => panic!("create: unexpected {e:?}"),
                }
                s.check_open_count();
            }
            Op::Next { other, h } => {
                let raw = pick(h, &sides, &issued, &closed);
                sides[usize::from(*other)].next(raw);
            }
            Op::Close { other, h } => {
                let raw = pick(h, &sides, &issued, &closed);
                sides[usize::from(*other)].close(raw, &mut closed);
            }
            Op::OpenIter { other, crit } => {
                let s = &mut sides[usize::from(*other)];
                let (criteria, m) = crit.build(&s.model);
                let full = s.open() >= s.max;
                match s.table.enumerate(criteria) {
                    Ok(it) => {
                        assert!(m.valid() && !full);
                        assert_eq!(it.snapshot(), s.table.version());
                        s.iters.push((it, s.model.matching(&m).into()));
                    }
                    Err(Error::InvalidParameter) => assert!(!m.valid()),
                    Err(Error::NoSystemResources) => assert!(full),
                    Err(e) => panic!("enumerate: unexpected {e:?}"),
                }
                s.check_open_count();
            }
            Op::IterNext { other, idx } => {
                let s = &mut sides[usize::from(*other)];
                if !s.iters.is_empty() {
                    let i = usize::from(*idx) % s.iters.len();
                    let (it, frozen) = &mut s.iters[i];
                    assert_eq!(it.next(), frozen.pop_front());
                }
            }
            Op::IterClose {
                other,
                idx,
                explicit,
            } => {
                let s = &mut sides[usize::from(*other)];
                if !s.iters.is_empty() {
                    let i = usize::from(*idx) % s.iters.len();
                    let (it, _) = s.iters.swap_remove(i);
                    if *explicit {
                        assert_eq!(it.close(), Ok(()));
                    } else {
                        drop(it);
                    }
                    s.check_open_count();
                }
            }
            Op::Add { other, route } => {
                let s = &mut sides[usize::from(*other)];
                let r = route.route(&s.model, route.value);
                let got = s.table.add_route(r.clone());
                if crate::model::canonical(&r.key.prefix) {
                    assert_eq!(got, Ok(s.model.routes.insert(r.key, r)));
                } else {
                    assert_eq!(got, Err(Error::InvalidParameter));
                }
            }
            Op::Delete { other, key } => {
                let s = &mut sides[usize::from(*other)];
                let k = key.key(&s.model);
                let got = s.table.delete_route(&k);
                if crate::model::canonical(&k.prefix) {
                    assert_eq!(got, s.model.routes.remove(&k).ok_or(Error::NoSuchRoute));
                } else {
                    assert_eq!(got, Err(Error::InvalidParameter));
                }
            }
        }
    }

    for s in &mut sides {
        s.finish(&mut closed);
    }
    // Closed forever, on either table.
    for &raw in &issued {
        for s in &mut sides {
            s.next(raw);
            s.close(raw, &mut closed);
        }
    }
}

/// The handle value a selector names.
fn pick(h: &HandleSel, sides: &[Side<'_>; 2], issued: &[u64], closed: &[u64]) -> u64 {
    fn nth(v: &[u64], i: u8) -> Option<u64> {
        (!v.is_empty()).then(|| v[usize::from(i) % v.len()])
    }
    match *h {
        HandleSel::Live(i) => {
            let live: Vec<u64> = sides
                .iter()
                .flat_map(|s| s.handles.keys().copied())
                .collect();
            nth(&live, i).unwrap_or(u64::from(i))
        }
        HandleSel::Closed(i) => nth(closed, i).unwrap_or(u64::MAX - u64::from(i)),
        HandleSel::Raw(raw) => raw,
        HandleSel::Flipped { idx, bit } => nth(issued, idx).unwrap_or(0) ^ (1u64 << (bit % 64)),
        HandleSel::Near { idx, slot, gen } => {
            let base = nth(issued, idx).unwrap_or(1 << 44 | 1);
            let table_bits = base & !((1u64 << 44) - 1);
            let g = (base as u32).wrapping_add_signed(i32::from(gen));
            table_bits | u64::from(slot % 16) << 32 | u64::from(g)
        }
    }
}

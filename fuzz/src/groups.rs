//! `groups`: `rtm::NexthopGroups` driven by arbitrary interns (member lists with
//! duplicates, in any order, empty ones), releases (of live ids, freed ids and any
//! value), `set_down` of members marked or not, selects of live and dead ids with pooled
//! and arbitrary flow hashes, and reads (`members`, `is_down`, `len`).
//!
//! The model is the set of live groups (member set and references), the members marked
//! down, and, per (id, flow) already selected, the member it got and the members that came
//! back since. Checks:
//! - `intern` dedups by set: the id of the live group with that set, or else the lowest id
//!   not live; no members is `InvalidParameter`;
//! - `release` of an id that is not live is `InvalidParameter`; the last one frees it;
//! - `set_down` returns how many live groups hold the member when its mark changes, else 0;
//! - `select` is `None` for an id that is not live or a group with every member down, else
//!   a member of the group not marked down; and, resilient hashing: the same member as the
//!   last select of that (id, flow), or a member that came back since, unless that member
//!   (or one that came back since) went down since;
//! - `members` is the group's set (each once), `len` and `is_down` the model's.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use arbitrary::Arbitrary;
use rtm::{Error, NexthopGroups, Selector};

use crate::input::decode;

/// Members are 0..8, so that groups share them.
const MEMBERS: u8 = 8;
const FLOWS: [u64; 6] = [0, 1, 255, 256, 0xdead_beef, u64::MAX];

#[derive(Arbitrary, Debug, Default)]
pub struct Header;

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum IdSel {
    /// The nth live id (or 0 if none).
    Live(u8),
    /// Any value.
    Raw(u32),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum FlowSel {
    Pool(u8),
    Raw(u64),
}

#[derive(Arbitrary, Debug)]
pub enum Op {
    Intern(Vec<u8>),
    Release(IdSel),
    SetDown(u8, bool),
    Select(IdSel, FlowSel),
    /// Selects every pooled flow of an id.
    SelectAll(IdSel),
    Members(IdSel),
    IsDown(u8),
    Len,
}

struct Group {
    members: BTreeSet<u8>,
    refs: u64,
}

/// The last answer of a (id, flow), and the members that came back since.
struct Seen {
    member: u8,
    back: BTreeSet<u8>,
}

#[derive(Default)]
struct Model {
    groups: BTreeMap<u32, Group>,
    down: BTreeSet<u8>,
    seen: HashMap<(u32, u64), Seen>,
}

impl Model {
    fn id(&self, sel: IdSel) -> u32 {
        match sel {
            IdSel::Live(n) => {
                let live: Vec<u32> = self.groups.keys().copied().collect();
                if live.is_empty() {
                    u32::from(n)
                } else {
                    live[usize::from(n) % live.len()]
                }
            }
            IdSel::Raw(v) => v,
        }
    }

    /// The lowest id not live.
    fn lowest_free(&self) -> u32 {
        (0..).find(|i| !self.groups.contains_key(i)).unwrap()
    }
}

fn flow(sel: FlowSel) -> u64 {
    match sel {
        FlowSel::Pool(i) => FLOWS[usize::from(i) % FLOWS.len()],
        FlowSel::Raw(v) => v,
    }
}

fn select(g: &NexthopGroups<u8>, sel: &mut Selector<'_, u8>, m: &mut Model, id: u32, h: u64) {
    let got = g.select(id, h);
    assert_eq!(sel.select(id, h), got, "a selector's select({id}, {h})");
    let Some(group) = m.groups.get(&id) else {
        assert_eq!(got, None, "select of dead id {id}");
        return;
    };
    if group.members.iter().all(|x| m.down.contains(x)) {
        assert_eq!(got, None, "select of an all-down group");
        m.seen.remove(&(id, h));
        return;
    }
    let x = got.unwrap_or_else(|| panic!("select({id}, {h}) is None with members up"));
    assert!(group.members.contains(&x), "{x} is not a member of {id}");
    assert!(!m.down.contains(&x), "select returned down member {x}");
    if let Some(s) = m.seen.get(&(id, h)) {
        assert!(
            x == s.member || s.back.contains(&x),
            "flow {h} of {id} moved from {} to {x}, which did not come back",
            s.member
        );
    }
    m.seen.insert(
        (id, h),
        Seen {
            member: x,
            back: BTreeSet::new(),
        },
    );
}

pub fn run(data: &[u8]) {
    let (_h, ops): (Header, Vec<Op>) = decode(data);
    let g = NexthopGroups::<u8>::new();
    // One selector for the whole run: its cached states must follow every change.
    let mut selector = g.selector();
    let mut m = Model::default();
    for op in ops.iter().take(512) {
        match op {
            Op::Intern(list) => {
                let list: Vec<u8> = list.iter().take(16).map(|x| x % MEMBERS).collect();
                let got = g.intern(&list);
                if list.is_empty() {
                    assert_eq!(got, Err(Error::InvalidParameter));
                    continue;
                }
                let set: BTreeSet<u8> = list.iter().copied().collect();
                let existing = m
                    .groups
                    .iter()
                    .find(|(_, gr)| gr.members == set)
                    .map(|(id, _)| *id);
                match existing {
                    Some(id) => {
                        assert_eq!(got, Ok(id), "intern of a live set");
                        m.groups.get_mut(&id).unwrap().refs += 1;
                    }
                    None => {
                        let id = m.lowest_free();
                        assert_eq!(got, Ok(id), "intern of a new set");
                        m.groups.insert(
                            id,
                            Group {
                                members: set,
                                refs: 1,
                            },
                        );
                    }
                }
            }
            Op::Release(sel) => {
                let id = m.id(*sel);
                let got = g.release(id);
                match m.groups.get_mut(&id) {
                    None => assert_eq!(got, Err(Error::InvalidParameter)),
                    Some(gr) => {
                        assert_eq!(got, Ok(()));
                        gr.refs -= 1;
                        if gr.refs == 0 {
                            m.groups.remove(&id);
                            m.seen.retain(|(i, _), _| *i != id);
                        }
                    }
                }
            }
            Op::SetDown(x, down) => {
                let x = x % MEMBERS;
                let got = g.set_down(&x, *down);
                let changes = if *down {
                    m.down.insert(x)
                } else {
                    m.down.remove(&x)
                };
                let holding: Vec<u32> = m
                    .groups
                    .iter()
                    .filter(|(_, gr)| gr.members.contains(&x))
                    .map(|(id, _)| *id)
                    .collect();
                let want = if changes { holding.len() } else { 0 };
                assert_eq!(got, want, "set_down({x}, {down})");
                if changes {
                    if *down {
                        // A flow on `x` may move to any member still up: one whose last
                        // answer was `x`, and one that may have moved to `x` since, when
                        // `x` came back.
                        m.seen.retain(|(id, _), s| {
                            !holding.contains(id) || (s.member != x && !s.back.contains(&x))
                        });
                    } else {
                        for ((id, _), s) in m.seen.iter_mut() {
                            if holding.contains(id) {
                                s.back.insert(x);
                            }
                        }
                    }
                }
            }
            Op::Select(sel, f) => {
                let id = m.id(*sel);
                select(&g, &mut selector, &mut m, id, flow(*f));
            }
            Op::SelectAll(sel) => {
                let id = m.id(*sel);
                for h in FLOWS {
                    select(&g, &mut selector, &mut m, id, h);
                }
            }
            Op::Members(sel) => {
                let id = m.id(*sel);
                let got = g.members(id);
                match m.groups.get(&id) {
                    None => assert!(got.is_none()),
                    Some(gr) => {
                        let got = got.expect("members of a live id");
                        let set: BTreeSet<u8> = got.iter().copied().collect();
                        assert_eq!(set.len(), got.len(), "a member twice");
                        assert_eq!(set, gr.members);
                    }
                }
            }
            Op::IsDown(x) => {
                let x = x % MEMBERS;
                assert_eq!(g.is_down(&x), m.down.contains(&x));
            }
            Op::Len => assert_eq!(g.len(), m.groups.len()),
        }
    }
    assert_eq!(g.len(), m.groups.len());
    // Release everything: nothing is left.
    for (id, gr) in &m.groups {
        for _ in 0..gr.refs {
            g.release(*id).unwrap();
        }
    }
    assert!(g.is_empty());
}

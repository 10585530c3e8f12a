//! Model 14: next-hop groups. `select` racing `set_down` and a group's release and the
//! re-intern of a different member set on the same id.
//!
//! Group 0 starts as {1, 2}. Thread A makes a `Selector` and selects from id 0 through it
//! (caching the state it sees), marks member 1 down, then selects from id 0, directly and
//! through the selector: after
//! its `set_down` returned, whichever group holds id 0 ({1, 2} with 1 down, or the new
//! {3, 1}, which must have started with 1 down), the select must not return 1. Thread B
//! selects from id 0 (a member of {1, 2} or {3, 1}, or None between the release and the
//! re-intern), releases it and interns {3, 1}, which reuses id 0 (lowest free first), and
//! selects again. After both: id 0 is {1, 3}, 1 is marked down, and every flow goes to 3.
//!
//! The members are `Hop`s: payloads whose clone and drop check a canary, counted in a
//! ledger, under the poisoning allocator of `common`: a reader that read a freed member
//! set panics, and a member set that is never freed shows as a leak at the end.
//!
//! Why a broken protocol fails here: `set_down` must record the mark and republish every
//! group that holds the member in one critical section of the writers' lock. The
//! `rtm_negative="nexthop-late-mark"` control republishes the groups, unlocks, and records
//! the mark in a second critical section: B's intern can run in between, see 1 up, and
//! create {3, 1} with 1 up after A's `set_down` has returned, so A's select (and the
//! final ones) can return the down member. The `rtm_negative="selector-stale"` control
//! makes the selector answer from its cached state without revalidating it: A's select
//! through it after `set_down` returns member 1 from the state it cached before.

#![cfg(loom)]

mod common;

use std::hash::{Hash, Hasher};
use std::sync::Arc as StdArc;

use common::{Ledger, Tracked};
use loom::sync::Arc;
use loom::thread;
use rtm::NexthopGroups;

/// A next hop: a tracked payload (its id is the next hop's number).
#[derive(Clone, Debug)]
struct Hop(Tracked);

impl Hop {
    fn id(&self) -> usize {
        self.0.id()
    }
}

impl PartialEq for Hop {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for Hop {}

impl Hash for Hop {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}

/// The flows each select tries: two buckets.
const FLOWS: [u64; 2] = [0, 1];

fn model() {
    let ledger: StdArc<Ledger> = Ledger::new(4);
    let hop = |i: usize| Hop(ledger.value(i));
    let groups = Arc::new(NexthopGroups::<Hop>::new());
    assert_eq!(groups.intern(&[hop(1), hop(2)]).unwrap(), 0);

    let a = {
        let groups = Arc::clone(&groups);
        let one = hop(1);
        thread::spawn(move || {
            // A selector that cached group 0's state before the mark.
            let mut sel = groups.selector();
            let got = sel.select(0, FLOWS[0]).map(|m| m.id());
            assert!(matches!(got, None | Some(1) | Some(2) | Some(3)), "{got:?}");
            groups.set_down(&one, true);
            for h in FLOWS {
                let got = groups.select(0, h).map(|m| m.id());
                assert!(
                    matches!(got, None | Some(2) | Some(3)),
                    "select after set_down(1) returned {got:?}"
                );
                let got = sel.select(0, h).map(|m| m.id());
                assert!(
                    matches!(got, None | Some(2) | Some(3)),
                    "a selector's select after set_down(1) returned {got:?}"
                );
            }
        })
    };
    let b = {
        let groups = Arc::clone(&groups);
        let (one, three) = (hop(1), hop(3));
        thread::spawn(move || {
            let got = groups.select(0, FLOWS[0]).map(|m| m.id());
            assert!(matches!(got, Some(1) | Some(2)), "before release: {got:?}");
            groups.release(0).unwrap();
            let id = groups.intern(&[three, one]).unwrap();
            assert_eq!(id, 0, "the freed id is reused");
            let got = groups.select(id, FLOWS[1]).map(|m| m.id());
            assert!(matches!(got, Some(1) | Some(3)), "after re-intern: {got:?}");
        })
    };
    a.join().unwrap();
    b.join().unwrap();

    assert!(groups.is_down(&hop(1)));
    let mut members: Vec<usize> = groups.members(0).unwrap().iter().map(Hop::id).collect();
    members.sort();
    assert_eq!(members, [1, 3]);
    for h in FLOWS {
        assert_eq!(groups.select(0, h).map(|m| m.id()), Some(3), "flow {h}");
    }
    assert_eq!(groups.len(), 1);
    groups.release(0).unwrap();
    assert_eq!(groups.select(0, 0).map(|m| m.id()), None);
    drop(groups);
    ledger.assert_all_freed();
}

#[test]
#[cfg(not(any(rtm_negative = "nexthop-late-mark", rtm_negative = "selector-stale")))]
fn nexthop_select_races_set_down_and_reintern() {
    common::check("nexthop_select_races_set_down_and_reintern", model);
}

#[test]
#[cfg(rtm_negative = "nexthop-late-mark")]
fn nexthop_select_fails_with_late_mark() {
    common::expect_failure(
        "nexthop_select_races_set_down_and_reintern/nexthop-late-mark",
        model,
    );
}

#[test]
#[cfg(rtm_negative = "selector-stale")]
fn nexthop_select_fails_with_a_stale_selector() {
    common::expect_failure(
        "nexthop_select_races_set_down_and_reintern/selector-stale",
        model,
    );
}

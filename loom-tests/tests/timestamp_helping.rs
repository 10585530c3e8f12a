//! Model 4: timestamps are decided once, with helping (invariants 1 and 2).
//!
//! A write links its version *pending* and then decides its timestamp with one CAS from
//! `PENDING` to a fresh clock value; a snapshot reader that meets the version pending takes
//! its own fresh clock value and tries the same CAS. Whoever wins, both must then use the
//! winner's timestamp.
//!
//! A writer adds route 1, then route 2. A reader opens two enumerations, one after the
//! other, and takes the first route of each. In key order route 1 comes first, so the
//! first route an enumeration returns tells whether it sees route 1 and, if it does not,
//! whether it sees route 2. What must hold, and why it catches the bug it is aimed at:
//!
//! * The first route is route 1 or none: route 2 was written after route 1 was committed,
//!   so no snapshot sees the second without the first.
//! * Two enumerations with the same snapshot version return the same first route. Taking
//!   the first route of the first enumeration, the reader may meet route 1 pending and
//!   decide it at a clock value past the snapshot (invisible). If the writer then
//!   overwrote that decision with its own, smaller, clock value (the
//!   `rtm_negative="decide-twice"` control stores instead of CASing), the second enumeration of
//!   the same snapshot would see route 1 after all: one snapshot, two different tables.
//! * Afterwards both routes are current and every value is dropped exactly once.

#![cfg(loom)]

mod common;

use common::{index, indices, route, table, Ledger};
use loom::sync::Arc;
use loom::thread;
use rtm::Criteria;

fn model() {
    let ledger = Ledger::new(3);
    let t = Arc::new(table(2));

    let writer = {
        let t = Arc::clone(&t);
        let ledger = ledger.clone();
        thread::spawn(move || {
            t.add_route(route(1, ledger.value(1))).unwrap();
            t.add_route(route(2, ledger.value(2))).unwrap();
        })
    };

    let mut first = t.enumerate(Criteria::all()).unwrap();
    let mut second = t.enumerate(Criteria::all()).unwrap();
    let (s1, s2) = (first.snapshot(), second.snapshot());
    let head1 = first.next().map(|r| index(&r.key));
    let head2 = second.next().map(|r| index(&r.key));
    drop((first, second));

    for head in [head1, head2] {
        assert!(
            matches!(head, None | Some(1)),
            "a snapshot saw route 2 without route 1"
        );
    }
    if s1 == s2 {
        assert_eq!(
            head1, head2,
            "two enumerations of snapshot {s1:?} disagree: a timestamp was decided twice"
        );
    }

    writer.join().unwrap();
    assert_eq!(indices(t.enumerate(Criteria::all()).unwrap()), [1, 2]);

    drop(t);
    ledger.assert_all_freed();
}

#[test]
#[cfg(not(rtm_negative = "decide-twice"))]
fn reader_and_writer_agree_on_timestamps() {
    common::check("reader_and_writer_agree_on_timestamps", model);
}

#[test]
#[cfg(rtm_negative = "decide-twice")]
fn timestamps_disagree_when_decided_twice() {
    common::expect_failure(
        "reader_and_writer_agree_on_timestamps/negative-decide-twice",
        model,
    );
}

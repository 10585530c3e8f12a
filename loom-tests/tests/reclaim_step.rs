//! Model 8: a reclamation step racing writers on the same chain, with a feed and a
//! snapshot open.
//!
//! The table starts with key 1 = value 0; `subscribe` opens a snapshot enumeration and a
//! feed there. A writer replaces key 1 twice (values 1 and 2); each write runs a step of
//! the reclaimer, and the main thread runs `collect()` meanwhile. Whatever the
//! interleaving, the snapshot still returns value 0, and the feed returns exactly
//! 0 -> 1 then 1 -> 2: the reclaimer must keep value 1 (seen by no snapshot, but needed
//! by the feed as the new side of one change and the old side of the next) until the
//! feed has read past it. Afterwards everything is freed exactly once.
//!
//! The `negative-step-ignores-floor` control prunes as if no feed were open: value 1 is
//! unlinked (and freed) before the feed reads it.

#![cfg(loom)]

mod common;

use common::{change_ids, route, table_with_journal, Ledger};
use loom::sync::Arc;
use loom::thread;
use rtm::Criteria;

fn model() {
    let ledger = Ledger::new(3);
    let t = Arc::new(table_with_journal(2, 8));
    t.add_route(route(1, ledger.value(0))).unwrap();
    let (dump, mut feed) = t.subscribe(Criteria::all()).unwrap();

    let writer = {
        let t = Arc::clone(&t);
        let ledger = ledger.clone();
        thread::spawn(move || {
            t.add_route(route(1, ledger.value(1))).unwrap();
            t.add_route(route(1, ledger.value(2))).unwrap();
        })
    };
    t.collect();
    writer.join().unwrap();
    t.collect();

    let mut got = Vec::new();
    while let Some(c) = feed.try_next().unwrap() {
        got.push(change_ids(&c));
    }
    assert_eq!(got, [(1, Some(0), Some(1)), (1, Some(1), Some(2))]);
    let seen: Vec<usize> = dump.map(|r| r.value.id()).collect();
    assert_eq!(seen, [0]);

    drop(feed);
    t.collect();
    assert_eq!(t.stats().dead_versions, 0);
    drop(t);
    ledger.assert_all_freed();
}

#[test]
#[cfg(not(rtm_negative = "step-ignores-floor"))]
fn step_keeps_what_a_feed_needs() {
    common::check("step_keeps_what_a_feed_needs", model);
}

#[test]
#[cfg(rtm_negative = "step-ignores-floor")]
fn step_frees_what_a_feed_needs_without_its_floor() {
    common::expect_failure(
        "step_keeps_what_a_feed_needs/negative-step-ignores-floor",
        model,
    );
}

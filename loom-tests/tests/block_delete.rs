//! Model 7: a block deletion racing single writes of the same keys.
//!
//! `delete_routes` pins a snapshot, walks it with a cursor, and on each node it stands on
//! pushes a deletion marker only if the key's newest version is still the one its snapshot
//! sees (a conditional push, decided by the same CAS on the chain head that every write
//! makes). A write committed after the snapshot is newer than the set the caller asked to
//! delete, and must survive.
//!
//! `racing_deletes_count_once`: routes 1 and 2; the main thread deletes every route with
//! `delete_routes` while another thread deletes route 2 with `delete_route`. What must hold:
//!
//! * Each route is deleted exactly once: the block's count plus the single delete's
//!   success is 2, and the table is empty. With `negative-block-unconditional` the block
//!   pushes over whatever head it finds, so when the single delete wins the race it deletes
//!   route 2 a second time and counts it: the sum is 3.
//!
//! `newer_write_survives`: routes 1 and 2; the other thread replaces route 2 by a new
//! value while the block runs. What must hold:
//!
//! * Route 1 is gone. Route 2 ends in one of three states, each with its count: gone and
//!   counted (the block's snapshot saw the replacement, which it deleted); or the write
//!   found it already deleted and added it anew (counted, present); or the write replaced
//!   the original after the block's snapshot, and the block left the replacement alone
//!   (present, not counted).
//!
//! In both, collecting after the block leaves nothing retained, and every value is dropped
//! exactly once when the table is dropped.

#![cfg(loom)]

mod common;

use common::{indices, key, route, table, Ledger, Table};
use loom::sync::Arc;
use loom::thread;
use rtm::Criteria;

fn two_routes(ledger: &std::sync::Arc<Ledger>) -> Arc<Table> {
    let t = Arc::new(table(2));
    for i in [1, 2] {
        t.add_route(route(i, ledger.value(i.into()))).unwrap();
    }
    t
}

fn finish(t: Arc<Table>, ledger: &Ledger) {
    t.collect();
    assert_eq!(t.stats().open_enumerations, 0);
    assert_eq!(t.stats().dead_versions, 0, "dead values retained");
    drop(t);
    ledger.assert_all_freed();
}

fn racing_deletes() {
    let ledger = Ledger::new(3);
    let t = two_routes(&ledger);
    let single = {
        let t = Arc::clone(&t);
        thread::spawn(move || t.delete_route(&key(2)).is_ok())
    };
    let counted = t.delete_routes(Criteria::all()).unwrap();
    let single = usize::from(single.join().unwrap());
    assert_eq!(
        counted + single,
        2,
        "a route was deleted twice or not at all"
    );
    assert_eq!(t.route_count(), 0);
    assert!(indices(t.enumerate(Criteria::all()).unwrap()).is_empty());
    finish(t, &ledger);
}

#[cfg_attr(rtm_negative = "block-unconditional", allow(dead_code))]
fn newer_write() {
    let ledger = Ledger::new(4);
    let t = two_routes(&ledger);
    let writer = {
        let t = Arc::clone(&t);
        let ledger = ledger.clone();
        thread::spawn(move || t.add_route(route(2, ledger.value(3))).unwrap().is_some())
    };
    let counted = t.delete_routes(Criteria::all()).unwrap();
    let replaced = writer.join().unwrap();
    let left: Vec<usize> = t
        .enumerate(Criteria::all())
        .unwrap()
        .map(|r| r.value.id())
        .collect();
    match (&left[..], replaced) {
        // the block deleted the replacement, which its snapshot saw
        ([], true) => assert_eq!(counted, 2),
        // the block deleted the original first; the write then added route 2 anew
        ([3], false) => assert_eq!(counted, 2),
        // the replacement is newer than the block's snapshot: left alone, not counted
        ([3], true) => assert_eq!(counted, 1, "the replacement survived but was counted"),
        _ => panic!("left {left:?}, replaced {replaced}, counted {counted}"),
    }
    finish(t, &ledger);
}

#[test]
#[cfg(not(rtm_negative = "block-unconditional"))]
fn racing_deletes_count_once() {
    common::check("racing_deletes_count_once", racing_deletes);
}

#[test]
#[cfg(rtm_negative = "block-unconditional")]
fn racing_deletes_count_twice_when_unconditional() {
    common::expect_failure(
        "racing_deletes_count_once/negative-block-unconditional",
        racing_deletes,
    );
}

#[test]
#[cfg(not(rtm_negative = "block-unconditional"))]
fn newer_write_survives() {
    common::check("newer_write_survives", newer_write);
}

//! Model 5: skip-list removal racing a parked cursor and an insertion (invariant 5 and the
//! cursor's node pointer).
//!
//! A cursor keeps, between calls, only the address of the node it returned last, and
//! walks on from it under a fresh epoch guard. That is sound because the node's value is
//! visible to the cursor's pinned snapshot, and the reclaimer removes a node only when its
//! chain is a lone deletion marker that every pinned snapshot sees. Removal marks the
//! node's tower (freezing its forward pointers, so that no insertion can link a node
//! behind it), unlinks it with a helping search, and hands it to crossbeam-epoch, which
//! frees it once no thread that could still stand on it is pinned.
//!
//! Two models, each of two threads (three would not finish in CI at two preemptions):
//!
//! `parked_cursor_survives_removal`: routes 1, 2 and 4 are added and route 2 deleted.
//! An enumeration opened then reads route 1 and is parked on node 1. A deleter deletes
//! route 1 (the parked node's own key) and runs `collect()`, which may remove node 2, the
//! parked node's successor, while the cursor steps over it. What must hold:
//!
//! * The cursor returns route 4 and ends: node 1 stays linked and allocated for its
//!   snapshot although route 1 is deleted, and the walk from it skips node 2 whether node 2
//!   is still linked, being unlinked, or gone. Had the reclaimer removed node 1, the
//!   cursor's pointer would lead into freed memory; with `rtm_negative="eager-free"` node 2 is
//!   freed while the cursor may stand on it. The test allocator poisons freed memory (see
//!   `common`), so either read panics.
//!
//! `insertion_races_removal`: routes 1, 2 and 4 are added and route 2 deleted. A sweeper
//! runs `collect()`, which removes node 2; concurrently the main thread adds route 3,
//! whose predecessor in the list is node 2, then enumerates. What must hold:
//!
//! * The enumeration and the final table are exactly routes 1, 3 and 4: no insertion is
//!   lost. With `rtm_negative="unlink-no-mark"`, removal unlinks node 2 without marking its
//!   forward pointer, so the insertion can link node 3 behind node 2 just before node 2 is
//!   unlinked: route 3 is lost, and a traversal that still reaches it through node 2
//!   reads freed memory.
//!
//! In both, one more `collect()` after the last close leaves nothing retained, and every
//! value is dropped exactly once when the table is dropped.

#![cfg(loom)]

mod common;

use common::{indices, key, route, table, Ledger, Table};
use loom::sync::Arc;
use loom::thread;
use rtm::Criteria;

/// Routes 1, 2 and 4, with route 2 deleted: node 2 holds a lone deletion marker.
fn table_with_deleted_2(ledger: &std::sync::Arc<Ledger>) -> Arc<Table> {
    let t = Arc::new(table(2));
    for i in [1, 2, 4] {
        t.add_route(route(i, ledger.value(i.into()))).unwrap();
    }
    drop(t.delete_route(&key(2)).unwrap());
    t
}

/// Collects once more with nothing open, and checks that nothing is retained and that
/// every value is dropped exactly once.
fn finish(t: Arc<Table>, ledger: &Ledger) {
    t.collect();
    assert_eq!(t.stats().open_enumerations, 0);
    assert_eq!(t.stats().dead_versions, 0, "dead values retained");
    drop(t);
    ledger.assert_all_freed();
}

fn parked_cursor() {
    let ledger = Ledger::new(5);
    let t = table_with_deleted_2(&ledger);
    let mut parked = t.enumerate(Criteria::all()).unwrap();
    assert_eq!(parked.next().map(|r| r.value.id()), Some(1));

    let deleter = {
        let t = Arc::clone(&t);
        thread::spawn(move || {
            drop(t.delete_route(&key(1)).unwrap());
            t.collect();
        })
    };

    let rest: Vec<_> = parked.by_ref().map(|r| r.value.id()).collect();
    assert_eq!(rest, [4], "the parked cursor did not continue from node 1");
    drop(parked);

    deleter.join().unwrap();
    assert_eq!(indices(t.enumerate(Criteria::all()).unwrap()), [4]);
    finish(t, &ledger);
}

fn insertion() {
    let ledger = Ledger::new(5);
    let t = table_with_deleted_2(&ledger);

    let sweeper = {
        let t = Arc::clone(&t);
        thread::spawn(move || t.collect())
    };

    assert!(t.add_route(route(3, ledger.value(3))).unwrap().is_none());
    assert_eq!(
        indices(t.enumerate(Criteria::all()).unwrap()),
        [1, 3, 4],
        "an enumeration after the insertion misses a route"
    );

    sweeper.join().unwrap();
    assert_eq!(
        indices(t.enumerate(Criteria::all()).unwrap()),
        [1, 3, 4],
        "an insertion was lost"
    );
    assert!(t.get_route(&key(3)).is_some(), "route 3 is not in the list");
    finish(t, &ledger);
}

#[test]
#[cfg(not(rtm_negative = "eager-free"))]
fn parked_cursor_survives_removal() {
    common::check("parked_cursor_survives_removal", parked_cursor);
}

#[test]
#[cfg(rtm_negative = "eager-free")]
fn parked_cursor_reads_freed_node_with_eager_free() {
    common::expect_failure(
        "parked_cursor_survives_removal/negative-eager-free",
        parked_cursor,
    );
}

#[test]
#[cfg(not(any(rtm_negative = "unlink-no-mark", rtm_negative = "eager-free")))]
fn insertion_races_removal() {
    common::check("insertion_races_removal", insertion);
}

#[test]
#[cfg(rtm_negative = "unlink-no-mark")]
fn insertion_lost_when_unlinking_without_mark() {
    common::expect_failure("insertion_races_removal/negative-unlink-no-mark", insertion);
}

//! Model 3: snapshot registration racing the reclaimer (invariants 3 and 5).
//!
//! An enumeration registers its snapshot by reading the clock, storing the value in its
//! slot, and then reading the horizon the reclaimer announced, retrying with a fresh clock
//! value if the horizon passed it. The reclaimer announces the clock value it prunes
//! below, then scans the slots. Either the scan sees the new snapshot, or the enumeration
//! sees the announcement; in both cases nothing it can see is pruned.
//!
//! The table holds route 1. A writer deletes it and runs `collect()`; concurrently the
//! main thread opens an enumeration, reads its first route, and closes it. What must
//! hold, and why it catches the bugs it is aimed at:
//!
//! * An enumeration whose snapshot is version 1 (taken before the delete) returns route 1
//!   with its value. Without the recheck (`rtm_negative="no-horizon-recheck"`) an enumeration
//!   can pin version 1 after the reclaimer scanned the slots; the reclaimer then unlinks
//!   the value and the whole key, and the enumeration finds nothing.
//! * A later snapshot may see route 1 or not (the delete's timestamp may be decided by
//!   the enumeration itself, helping), but nothing else.
//! * Nothing is freed while a thread can still read it: the reclaimer hands what it
//!   unlinks to crossbeam-epoch. With `rtm_negative="eager-free"` it frees at once, and an
//!   enumeration that is still walking the unlinked node reads freed memory. The test
//!   allocator poisons freed blocks, so that read panics (see `common`). Since each write
//!   runs a step of the reclaimer, that interleaving needs three preemptions (the
//!   enumeration registers after the delete, is preempted inside its walk, and the
//!   writer's step or collection frees the node), so `check.sh` runs this control at
//!   LOOM_MAX_PREEMPTIONS=3.
//! * After the close, one more `collect()` drops every value that no snapshot can see:
//!   the table retains nothing, and every value was dropped exactly once.

#![cfg(loom)]

mod common;

use common::{index, key, route, table, Ledger};
use loom::sync::Arc;
use loom::thread;
use rtm::{Criteria, Version};

fn model() {
    let ledger = Ledger::new(2);
    let t = Arc::new(table(2));
    t.add_route(route(1, ledger.value(1))).unwrap();

    let writer = {
        let t = Arc::clone(&t);
        thread::spawn(move || {
            let old = t.delete_route(&key(1)).unwrap();
            assert_eq!(old.value.id(), 1);
            t.collect();
        })
    };

    let mut e = t.enumerate(Criteria::all()).unwrap();
    let snapshot = e.snapshot();
    let first = e.next().map(|r| (index(&r.key), r.value.id()));
    e.close().unwrap();
    if snapshot == Version(1) {
        assert_eq!(
            first,
            Some((1, 1)),
            "snapshot 1 was taken before the delete but lost route 1"
        );
    } else {
        assert!(matches!(first, None | Some((1, 1))), "saw {first:?}");
    }

    writer.join().unwrap();
    assert_eq!(t.route_count(), 0);
    t.collect();
    let stats = t.stats();
    assert_eq!(stats.open_enumerations, 0);
    assert_eq!(
        stats.dead_versions, 0,
        "no snapshot is open, yet values are retained"
    );
    assert_eq!(
        ledger.live(1),
        0,
        "collect() after the last close did not drop the deleted value"
    );

    drop(t);
    ledger.assert_all_freed();
}

#[test]
#[cfg(not(any(rtm_negative = "no-horizon-recheck", rtm_negative = "eager-free")))]
fn registration_races_reclaimer() {
    common::check("registration_races_reclaimer", model);
}

#[test]
#[cfg(rtm_negative = "no-horizon-recheck")]
fn registration_fails_without_horizon_recheck() {
    common::expect_failure(
        "registration_races_reclaimer/negative-no-horizon-recheck",
        model,
    );
}

#[test]
#[cfg(rtm_negative = "eager-free")]
fn registration_fails_with_eager_free() {
    common::expect_failure("registration_races_reclaimer/negative-eager-free", model);
}

//! Model 12: a point read "now" (`get_route`, which reads the newest decided version
//! without registering a slot) racing a writer that replaces the route and then runs the
//! reclaimer.
//!
//! The table starts with one route. The writer replaces it and calls `collect()`; a
//! reader runs `get_route` of its key meanwhile, which must return the old value or the
//! new one: the key has a value at every version.
//!
//! Why a broken protocol fails here: the read finds the new version at the head, still
//! pending, and goes to the version below it. If it loads the head's `next` without
//! checking afterwards that the head is still pending, the writer may decide the head in
//! between and the reclaimer unlink the old value (no snapshot sees it) and clear the
//! link: the read finds nothing. `Chain::current` loads the timestamp again after `next`
//! and returns the head if it was decided meanwhile. The `rtm_negative="stale-current"`
//! control drops that second load.

#![cfg(loom)]

mod common;

use common::{key, route, table, Ledger};
use loom::sync::Arc;
use loom::thread;

fn model() {
    let ledger = Ledger::new(2);
    let t = Arc::new(table(1));
    t.add_route(route(1, ledger.value(0))).unwrap();

    // The reader is the spawned thread and the writer the main one, so that the failing
    // interleaving needs only two preemptions (writer after its link, reader between its
    // loads).
    let reader = {
        let t = Arc::clone(&t);
        thread::spawn(move || t.get_route(&key(1)).map(|r| r.value.id()))
    };

    t.add_route(route(1, ledger.value(1))).unwrap();
    t.collect();

    let found = reader.join().unwrap();
    assert!(
        matches!(found, Some(0) | Some(1)),
        "a point read during a replace returned {found:?}"
    );
    assert_eq!(t.get_route(&key(1)).map(|r| r.value.id()), Some(1));
    t.collect();
    assert_eq!(t.stats().dead_versions, 0);
    drop(t);
    ledger.assert_all_freed();
}

#[test]
#[cfg(not(any(rtm_negative = "stale-current", rtm_negative = "eager-free")))]
fn get_route_races_replace_and_reclaimer() {
    common::check("get_route_races_replace_and_reclaimer", model);
}

#[test]
#[cfg(rtm_negative = "stale-current")]
fn get_route_fails_without_second_ts_load() {
    common::expect_failure("get_route_races_replace_and_reclaimer/stale-current", model);
}

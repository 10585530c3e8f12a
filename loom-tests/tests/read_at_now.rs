//! Model 6: a lookup, which reads several keys at one version without registering a slot
//! (`RouteTable::read_at_now`), racing a writer that makes before it breaks and then runs
//! the reclaimer.
//!
//! The table starts with one route, to `10.1.0.0/16`. The writer adds `10.0.0.0/8`, then
//! deletes the /16 and calls `collect()`. A lookup of `10.1.2.3` must return the /16 or
//! the /8: at every version one of them covers the address.
//!
//! Why a broken protocol fails here: the lookup takes its version `s` from the clock
//! before the writer runs. If the reclaimer then announces a newer horizon, unlinks the
//! /16's value (no slot pins `s`) and retires its node, a lookup that does not re-check
//! the announcement after its fence finds the /16 gone and the /8 too new for `s`, and
//! returns nothing. With the re-check it sees the announcement and reads again at a newer
//! version. The `rtm_negative="no-horizon-recheck"` control removes the re-check (here and in
//! snapshot registration).

#![cfg(loom)]

mod common;

use common::{key, route, table, Ledger};
use loom::sync::Arc;
use loom::thread;
use rtm::{Ipv4Net, Route, RouteKey};

fn model() {
    let ledger = Ledger::new(2);
    let t = Arc::new(table(1));
    let wide = RouteKey {
        prefix: "10.0.0.0/8".parse::<Ipv4Net>().unwrap(),
        ..key(1)
    };
    t.add_route(route(1, ledger.value(1))).unwrap();

    let writer = {
        let t = Arc::clone(&t);
        let v0 = ledger.value(0);
        thread::spawn(move || {
            t.add_route(Route::new(wide, v0)).unwrap();
            t.delete_route(&key(1)).unwrap();
            t.collect();
        })
    };

    let found = t
        .lookup("10.1.2.3".parse().unwrap())
        .map(|r| (r.key.prefix.prefix_len(), r.value.id()));
    assert!(
        matches!(found, Some((16, 1)) | Some((8, 0))),
        "a lookup during make-before-break returned {found:?}"
    );

    writer.join().unwrap();
    t.collect();
    assert_eq!(t.stats().dead_versions, 0);
    drop(t);
    ledger.assert_all_freed();
}

#[test]
#[cfg(not(any(rtm_negative = "no-horizon-recheck", rtm_negative = "eager-free")))]
fn lookup_races_reclaimer() {
    common::check("lookup_races_reclaimer", model);
}

#[test]
#[cfg(rtm_negative = "no-horizon-recheck")]
fn lookup_fails_without_horizon_recheck() {
    common::expect_failure("lookup_races_reclaimer/negative-no-horizon-recheck", model);
}

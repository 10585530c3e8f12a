//! Model 2: slot reuse (ABA on the handle table, invariant 4).
//!
//! A table with one enumeration slot holds two routes and one open handle `h1`. Two
//! threads race:
//!
//! * the owner closes `h1`, opens a new handle `h2` (the only slot, so the same slot with
//!   the next generation, whenever the open succeeds) and reads `h2` to the end;
//! * a stale user keeps calling `next(h1)` twice, concurrently with the close and the
//!   reuse.
//!
//! What must hold, and why it catches the bug it is aimed at:
//!
//! * `h2` sees exactly routes 1 and 2, then `NoMoreRoutes`. A call through the stale `h1`
//!   that reached the reused slot would either advance `h2`'s cursor (the owner would miss
//!   route 1) or hold the slot `BUSY` while the owner calls (the owner would get
//!   `InvalidHandle`). Both are what the `rtm_negative="no-generation-check"` control produces,
//!   since it compares the slot's state against its current generation instead of the
//!   handle's.
//! * The stale user sees a prefix of `h1`'s own enumeration followed by `InvalidHandle`:
//!   `[1, 2]`, `[1, Invalid]` or `[Invalid, Invalid]`, never a route after an
//!   `InvalidHandle` (a closed handle is invalid forever).
//! * `h1` stays invalid after the reuse, and every value is dropped exactly once.

#![cfg(loom)]

mod common;

use common::{index, route, table, Ledger};
use loom::sync::Arc;
use loom::thread;
use rtm::{Criteria, Error};

fn model() {
    let ledger = Ledger::new(3);
    let t = Arc::new(table(1));
    t.add_route(route(1, ledger.value(1))).unwrap();
    t.add_route(route(2, ledger.value(2))).unwrap();
    let h1 = t.create_enumeration_handle(Criteria::all()).unwrap();

    let stale = {
        let t = Arc::clone(&t);
        thread::spawn(move || {
            let a = t.enumerate_get_next_route(h1).map(|r| index(&r.key));
            let b = t.enumerate_get_next_route(h1).map(|r| index(&r.key));
            (a, b)
        })
    };

    assert_eq!(t.close_enumeration_handle(h1), Ok(()));
    // NoSystemResources while the stale user's call that met the close is still in flight
    // (it releases the slot when it finishes).
    let reused = t.create_enumeration_handle(Criteria::all()).ok();
    if let Some(h2) = reused {
        assert_ne!(h2, h1, "a reused slot must issue a new handle value");
        let seen: Vec<_> = (0..3)
            .map(|_| t.enumerate_get_next_route(h2).map(|r| index(&r.key)))
            .collect();
        assert_eq!(
            seen,
            [Ok(1), Ok(2), Err(Error::NoMoreRoutes)],
            "the new enumeration was disturbed through the old handle"
        );
    }

    let (a, b) = stale.join().unwrap();
    const INVALID: Result<u8, Error> = Err(Error::InvalidHandle);
    assert!(
        matches!(
            (a, b),
            (Ok(1), Ok(2)) | (Ok(1), INVALID) | (INVALID, INVALID)
        ),
        "the old handle saw {a:?} then {b:?}"
    );

    assert_eq!(
        t.enumerate_get_next_route(h1).map(|r| index(&r.key)),
        INVALID
    );
    assert_eq!(t.close_enumeration_handle(h1), Err(Error::InvalidHandle));
    if let Some(h2) = reused {
        assert_eq!(t.close_enumeration_handle(h2), Ok(()));
    }
    assert_eq!(t.stats().open_enumerations, 0);

    drop(t);
    ledger.assert_all_freed();
}

#[test]
#[cfg(not(rtm_negative = "no-generation-check"))]
fn stale_handle_never_reaches_reused_slot() {
    common::check("stale_handle_never_reaches_reused_slot", model);
}

#[test]
#[cfg(rtm_negative = "no-generation-check")]
fn stale_handle_fails_without_generation_check() {
    common::expect_failure(
        "stale_handle_never_reaches_reused_slot/negative-no-generation-check",
        model,
    );
}

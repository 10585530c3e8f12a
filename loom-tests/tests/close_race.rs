//! Model 1: `enumerate_get_next_route` racing `close_enumeration_handle` on one handle,
//! and two closes racing each other (invariant 4, the slot state machine in `slots.rs`).
//!
//! A table with one enumeration slot holds two routes and one open handle `h`. Three
//! threads race on `h`:
//!
//! * a reader calls `next(h)` once;
//! * a closer calls `close(h)`, then opens a new handle (which can only get the same slot,
//!   with a new generation) and reads its first route;
//! * the main thread calls `close(h)` too.
//!
//! What must hold, and why it catches the bug it is aimed at:
//!
//! * The reader gets the first route or `InvalidHandle`, nothing else (not `Busy`: closes
//!   never hold the cursor, and no other call uses `h`).
//! * Exactly one close wins; the other gets `InvalidHandle`.
//! * The cursor is touched by one thread at a time. The protocol gives the cursor to the
//!   thread whose CAS moved the slot `IDLE -> BUSY`; a close that meets `BUSY` only marks
//!   the slot `CLOSED` and leaves the release (which clears the cursor) to the call in
//!   flight. The cursor lives in a loom `UnsafeCell`, so a close that released the slot
//!   under a running `next` (the `rtm_negative="close-ignores-busy"` control) is reported by loom
//!   as a concurrent access. The same holds for the closer's new handle: it may reuse the
//!   slot only after the reader is done with the old cursor.
//! * The new handle differs from `h` and starts from the first route: it got a fresh
//!   cursor, not the old one.
//! * Afterwards `h` is invalid for every call, no enumeration is open, and the single slot
//!   is free exactly once: one handle can be opened and a second one cannot. A slot
//!   released twice would sit on the free list twice and let both opens succeed.
//! * Every route value is dropped exactly once when the table is dropped.
//!
//! A second model, `two_nexts`, races two `next` calls on one handle (`Error::Busy`).

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
    let h = t.create_enumeration_handle(Criteria::all()).unwrap();

    let reader = {
        let t = Arc::clone(&t);
        thread::spawn(move || t.enumerate_get_next_route(h).map(|r| index(&r.key)))
    };
    let closer = {
        let t = Arc::clone(&t);
        thread::spawn(move || {
            let closed = t.close_enumeration_handle(h);
            // The only slot is free again once the close is complete (by this thread, by
            // the main thread, or by the reader if it was mid-call).
            if let Ok(h2) = t.create_enumeration_handle(Criteria::all()) {
                assert_ne!(h2, h, "a reused slot must issue a new handle value");
                let first = t.enumerate_get_next_route(h2).map(|r| index(&r.key));
                assert_eq!(first, Ok(1), "a new handle must start from the first route");
                assert_eq!(t.close_enumeration_handle(h2), Ok(()));
            }
            closed
        })
    };
    let closed_by_main = t.close_enumeration_handle(h);

    let read = reader.join().unwrap();
    let closed_by_closer = closer.join().unwrap();

    assert!(
        matches!(read, Ok(1) | Err(Error::InvalidHandle)),
        "next racing close returned {read:?}"
    );
    assert!(
        matches!(
            (closed_by_main, closed_by_closer),
            (Ok(()), Err(Error::InvalidHandle)) | (Err(Error::InvalidHandle), Ok(()))
        ),
        "exactly one of two racing closes must win: main {closed_by_main:?}, closer {closed_by_closer:?}"
    );

    // `h` is closed for good, and its slot was released exactly once.
    assert_eq!(t.enumerate_get_next_route(h), Err(Error::InvalidHandle));
    assert_eq!(t.close_enumeration_handle(h), Err(Error::InvalidHandle));
    assert_eq!(t.stats().open_enumerations, 0);
    let h3 = t
        .create_enumeration_handle(Criteria::all())
        .expect("the slot is free after the close");
    assert_eq!(
        t.create_enumeration_handle(Criteria::all()),
        Err(Error::NoSystemResources),
        "the single slot was put on the free list twice"
    );
    assert_eq!(t.close_enumeration_handle(h3), Ok(()));

    drop(t);
    ledger.assert_all_freed();
}

/// Two `next` calls racing on one handle over two routes: each gets a route or `Busy`
/// (never `InvalidHandle`: the handle stays valid), at least one gets a route, no route is
/// returned twice, and afterwards the handle goes on from where the winners left it and
/// closes normally. The `call-ignores-busy` control lets the loser use the cursor that the
/// winner holds, which loom reports as a concurrent access to it.
fn two_nexts() {
    let ledger = Ledger::new(3);
    let t = Arc::new(table(1));
    t.add_route(route(1, ledger.value(1))).unwrap();
    t.add_route(route(2, ledger.value(2))).unwrap();
    let h = t.create_enumeration_handle(Criteria::all()).unwrap();

    let other = {
        let t = Arc::clone(&t);
        thread::spawn(move || t.enumerate_get_next_route(h).map(|r| index(&r.key)))
    };
    let mine = t.enumerate_get_next_route(h).map(|r| index(&r.key));
    let theirs = other.join().unwrap();

    let mut got: Vec<u8> = [mine, theirs]
        .into_iter()
        .filter_map(|r| match r {
            Ok(i) => Some(i),
            Err(Error::Busy) => None,
            Err(e) => panic!("next racing next returned {e:?}"),
        })
        .collect();
    got.sort_unstable();
    assert!(
        got == [1] || got == [1, 2],
        "two racing nexts returned {mine:?} and {theirs:?}"
    );
    // The handle is still valid and idle: it goes on where the winners left it.
    let rest: Vec<u8> = (got.len() as u8 + 1..=2)
        .map(|_| index(&t.enumerate_get_next_route(h).unwrap().key))
        .collect();
    assert_eq!(rest, (got.len() as u8 + 1..=2).collect::<Vec<_>>());
    assert_eq!(t.enumerate_get_next_route(h), Err(Error::NoMoreRoutes));
    assert_eq!(t.close_enumeration_handle(h), Ok(()));
    assert_eq!(t.stats().open_enumerations, 0);

    drop(t);
    ledger.assert_all_freed();
}

#[test]
#[cfg(not(any(
    rtm_negative = "close-ignores-busy",
    rtm_negative = "call-ignores-busy"
)))]
fn next_races_close() {
    common::check("next_races_close", model);
}

#[test]
#[cfg(not(any(
    rtm_negative = "close-ignores-busy",
    rtm_negative = "call-ignores-busy"
)))]
fn next_races_next() {
    common::check("next_races_next", two_nexts);
}

#[test]
#[cfg(rtm_negative = "call-ignores-busy")]
fn next_races_next_fails_when_a_call_ignores_busy() {
    common::expect_failure("next_races_next/call-ignores-busy", two_nexts);
}

#[test]
#[cfg(rtm_negative = "close-ignores-busy")]
fn next_races_close_fails_when_close_ignores_busy() {
    common::expect_failure("next_races_close/negative-close-ignores-busy", model);
}

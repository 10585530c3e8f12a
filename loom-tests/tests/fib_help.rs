//! Model 15: writers that apply their own commits to a Fib (`Fib::follow_helped`).
//!
//! A helped follower sits behind a lock that writers take only with `try_lock`: a writer
//! that finds it held leaves its commit to the holder, which, after unlocking, issues a
//! `SeqCst` fence and reads the journal position of the next commit it would apply; if a
//! commit is there, it takes the lock again (a writer fences between its journal record
//! and its `try_lock`). So either the writer's `try_lock` comes after the unlock, or the
//! holder's read sees the writer's record (see `Helped::release` in `src/fib/follow.rs`).
//!
//! `two_writers`: two threads each add one route (and help); the main thread reads
//! `fib.version()` twice meanwhile. `writer_and_follower`: one thread adds a route while
//! the follower thread syncs. In both, once every thread is done and with no further
//! sync: the Fib is at the table's version and answers for every route (none lost), the
//! changes applied by writers and by syncs add up to the number of commits (none applied
//! twice), the version read never went backwards and was always a commit's.
//!
//! Why a broken protocol fails here: the `fib-help-no-recheck` control drops the holder's
//! look at the journal after unlocking. A writer whose commit came after the holder read
//! the feed and whose `try_lock` met the held lock leaves its commit behind: the Fib ends
//! a version short.

#![cfg(loom)]

mod common;

use std::sync::Arc;

use common::{route, table, Ledger};
use loom::thread;
use rtm::{Fib, Version};

/// The address of key `i`'s network (`10.i.0.0/16`).
fn addr(i: u8) -> std::net::Ipv4Addr {
    [10, i, 0, 1].into()
}

fn two_writers() {
    let ledger = Ledger::new(3);
    let t = Arc::new(table(2));
    let (fib, follower) = Fib::follow_helped(Arc::clone(&t), |r| r.value.id() as u32).unwrap();
    let writers: Vec<_> = [1u8, 2]
        .into_iter()
        .map(|i| {
            let t = Arc::clone(&t);
            let ledger = ledger.clone();
            thread::spawn(move || {
                t.add_route(route(i, ledger.value(usize::from(i)))).unwrap();
            })
        })
        .collect();
    let a = fib.version();
    let b = fib.version();
    assert!(a <= b, "the Fib went back from {a:?} to {b:?}");
    assert!(b <= Version(2), "{b:?} is no commit's version");
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(fib.version(), t.version(), "a commit was left behind");
    assert_eq!(fib.lookup(addr(1)), Some(1));
    assert_eq!(fib.lookup(addr(2)), Some(2));
    assert_eq!(follower.applied_by_writers(), 2, "a change applied twice");
    drop(follower);
}

fn writer_and_follower() {
    let ledger = Ledger::new(2);
    let t = Arc::new(table(2));
    let (fib, mut follower) = Fib::follow_helped(Arc::clone(&t), |r| r.value.id() as u32).unwrap();
    let writer = {
        let t = Arc::clone(&t);
        let ledger = ledger.clone();
        thread::spawn(move || {
            t.add_route(route(1, ledger.value(1))).unwrap();
        })
    };
    let synced = follower.sync().unwrap();
    let v = fib.version();
    writer.join().unwrap();
    assert!(v <= fib.version(), "the Fib went back");
    assert_eq!(fib.version(), t.version(), "the commit was left behind");
    assert_eq!(fib.lookup(addr(1)), Some(1));
    assert_eq!(
        synced as u64 + follower.applied_by_writers(),
        1,
        "the change applied twice"
    );
    drop(follower);
}

#[test]
#[cfg(not(rtm_negative = "fib-help-no-recheck"))]
fn fib_help_two_writers() {
    common::check("fib_help_two_writers", two_writers);
}

#[test]
#[cfg(not(rtm_negative = "fib-help-no-recheck"))]
fn fib_help_writer_and_follower() {
    common::check("fib_help_writer_and_follower", writer_and_follower);
}

#[test]
#[cfg(rtm_negative = "fib-help-no-recheck")]
fn fib_help_fails_without_recheck() {
    common::expect_failure("fib_help_two_writers/fib-help-no-recheck", two_writers);
}

//! Model 7: the journal protocol. A feed reads while a writer commits more changes than
//! the journal holds.
//!
//! The table starts with key 1 = value 0, and a feed opened after it. The writer commits
//! key 1 = value 1, key 2 = value 2, key 1 = value 3 into a journal of two records, so
//! the third commit overwrites the first one's slot. The feed reads twice while the writer
//! runs, then drains. Whatever the interleaving, it must have returned a prefix of the
//! three changes, in order, each once, and then either caught up with all of them or
//! reported `Lagged` (it never reads a record that a later lap overwrote, and never
//! returns a change twice or out of order).
//!
//! The `negative-journal-no-lap-check` control makes a read take a newer lap's record
//! for the position asked: a feed that fell behind then returns the third change in place
//! of the first.

#![cfg(loom)]

mod common;

use common::{change_ids, route, table_with_journal, Ledger};
use loom::sync::Arc;
use loom::thread;
use rtm::{Criteria, Error};

fn model() {
    let ledger = Ledger::new(4);
    let t = Arc::new(table_with_journal(1, 2));
    t.add_route(route(1, ledger.value(0))).unwrap();
    let mut feed = t.feed(Criteria::all()).unwrap();

    let writer = {
        let t = Arc::clone(&t);
        let ledger = ledger.clone();
        thread::spawn(move || {
            t.add_route(route(1, ledger.value(1))).unwrap();
            t.add_route(route(2, ledger.value(2))).unwrap();
            t.add_route(route(1, ledger.value(3))).unwrap();
        })
    };

    let mut got = Vec::new();
    let mut versions = Vec::new();
    let mut lagged = false;
    let mut read = |feed: &mut rtm::Feed<'_, _, _>| match feed.try_next() {
        Ok(Some(c)) => {
            versions.push(c.version);
            got.push(change_ids(&c));
            true
        }
        Ok(None) => false,
        Err(Error::Lagged) => {
            lagged = true;
            false
        }
        Err(e) => panic!("unexpected {e:?}"),
    };
    read(&mut feed);
    read(&mut feed);
    writer.join().unwrap();
    while read(&mut feed) {}

    let expected = [
        (1, Some(0), Some(1)),
        (2, None, Some(2)),
        (1, Some(1), Some(3)),
    ];
    assert!(
        got.len() <= 3 && got[..] == expected[..got.len()],
        "the feed returned {got:?}, not a prefix of {expected:?}"
    );
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "versions out of order: {versions:?}"
    );
    assert!(
        lagged || got.len() == 3,
        "the feed stopped after {got:?} without reporting Lagged"
    );
    if !lagged {
        assert_eq!(feed.version(), t.version());
    }

    drop(feed);
    drop(t);
    ledger.assert_all_freed();
}

#[test]
#[cfg(not(rtm_negative = "journal-no-lap-check"))]
fn feed_reads_the_journal_in_order_or_lags() {
    common::check("feed_reads_the_journal_in_order_or_lags", model);
}

#[test]
#[cfg(rtm_negative = "journal-no-lap-check")]
fn feed_returns_a_newer_lap_without_the_lap_check() {
    common::expect_failure(
        "feed_reads_the_journal_in_order_or_lags/negative-journal-no-lap-check",
        model,
    );
}

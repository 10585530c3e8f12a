//! Model 15: the commit protocol. A batch replaces two routes at one version, racing
//!
//! * a reader: a snapshot (an enumeration) sees both old values or both new ones, and a
//!   point read that saw one new value is followed by point reads that see the other;
//! * a single writer of a key the batch deletes: the writer never waits, and the outcome
//!   is serializable: if the writer shadowed the old value, it came first and the batch
//!   (which then cancelled and retried, or linked over it) deleted the key; if it found
//!   the key deleted, the batch came first and the writer's value is the newest;
//! * a single writer of a key the batch adds, which slides under the batch's version if it
//!   meets it unfinished (so the batch is not cancelled): the same serializability, and a
//!   feed opened before both reports changes that, folded in order, start from the table's
//!   old contents, each change's old value the one the fold holds, and end at its new ones
//!   (a writer decided after the batch but linked below it would break that);
//! * a writer sliding under the batch's add while another writer cancels the batch through
//!   its delete: the slider's write stays in the table's history;
//!
//! * another batch of the same two keys, queued in the opposite order: both commit, at two
//!   versions, and the later one's values are the table's, whole.
//!
//! Every value (the batch's, the clones a retry makes, the writer's) is dropped exactly
//! once, and nothing is read after it is freed (the poisoning allocator).
//!
//! Negative controls: `rtm_negative="batch-ready-early"` moves the batch to READY before
//! its versions are linked, so a reader helps decide it half-installed and sees half of it;
//! `rtm_negative="batch-no-abandon"` lets the writer link over an unfinished batch without
//! cancelling it, so the batch later commits underneath the writer's version;
//! `rtm_negative="slide-no-count"` lets a writer slide under a batch without holding its
//! decision back, so the batch may be decided before the writer's version below it.
//! (The freeze of a cancelled add's link has no control: with it removed, the
//! slide-under-a-cancelled-batch model still passes at bound 2, since the loss needs the
//! slider preempted across the committer's retry and a reclamation step.)

#![cfg(loom)]

mod common;

use common::{change_ids, key, route, table, table_with_journal, Ledger};
use loom::sync::Arc;
use loom::thread;
use rtm::{Batch, Criteria};
use std::collections::BTreeMap;

fn reader_model() {
    let ledger = Ledger::new(4);
    let t = Arc::new(table(2));
    t.add_route(route(1, ledger.value(0))).unwrap();
    t.add_route(route(2, ledger.value(1))).unwrap();

    let reader = {
        let t = Arc::clone(&t);
        thread::spawn(move || {
            let seen: Vec<usize> = t
                .enumerate(Criteria::all())
                .unwrap()
                .map(|r| r.value.id())
                .collect();
            assert!(
                seen == [0, 1] || seen == [2, 3],
                "a snapshot saw half of a batch: {seen:?}"
            );
            let a = t.get_route(&key(1)).map(|r| r.value.id());
            let b = t.get_route(&key(2)).map(|r| r.value.id());
            assert!(
                a != Some(2) || b == Some(3),
                "a read saw the batch's first change, a later one not its second: {a:?} {b:?}"
            );
        })
    };

    let mut b = Batch::new();
    b.add_route(route(1, ledger.value(2)))
        .add_route(route(2, ledger.value(3)));
    let v = t.commit(b).unwrap();
    reader.join().unwrap();
    // Readers that helped decide may have taken clock values of their own (gaps).
    assert!(t.version() >= v);
    assert_eq!(t.get_route(&key(1)).map(|r| r.value.id()), Some(2));
    t.collect();
    assert_eq!(t.stats().dead_versions, 0);
    drop(t);
    ledger.assert_all_freed();
}

fn writer_model() {
    let ledger = Ledger::new(4);
    let t = Arc::new(table(1));
    t.add_route(route(1, ledger.value(0))).unwrap();
    t.add_route(route(2, ledger.value(1))).unwrap();

    let writer = {
        let t = Arc::clone(&t);
        let ledger = std::sync::Arc::clone(&ledger);
        thread::spawn(move || {
            let old = t.add_route(route(1, ledger.value(3))).unwrap();
            old.map(|r| r.value.id())
        })
    };

    // The delete is conditional (key 1 must be live), so a writer may not slide under it.
    let mut b = Batch::new();
    b.delete_route(key(1)).add_route(route(2, ledger.value(2)));
    t.commit(b).unwrap();
    let shadowed = writer.join().unwrap();

    let now = t.get_route(&key(1)).map(|r| r.value.id());
    match shadowed {
        // the writer came first: the batch deleted its value
        Some(0) => {
            assert_eq!(now, None, "the writer came first, yet its value is there");
            assert_eq!(t.route_count(), 1);
        }
        // the batch came first: the writer's value is newest
        None => {
            assert_eq!(now, Some(3), "the batch came first, yet the key is deleted");
            assert_eq!(t.route_count(), 2);
        }
        other => panic!("the writer shadowed {other:?}"),
    }
    assert_eq!(t.get_route(&key(2)).map(|r| r.value.id()), Some(2));
    t.collect();
    assert_eq!(t.stats().dead_versions, 0);
    drop(t);
    ledger.assert_all_freed();
}

/// Drains `feed` (opened when key 1 held value 0 and key 2 value 1) and checks that its
/// changes, folded in order, pass only through values each key held and end at `now`.
/// Returns them as `(version, (key, old id, new id))`.
#[allow(clippy::type_complexity)]
fn fold_feed(
    feed: &mut rtm::Feed<'_, rtm::Ipv4Net, common::Tracked>,
    now: BTreeMap<u8, Option<usize>>,
) -> Vec<(rtm::Version, (u8, Option<usize>, Option<usize>))> {
    let mut changes = Vec::new();
    while let Some(c) = feed.try_next().unwrap() {
        changes.push((c.version, change_ids(&c)));
    }
    let mut fold = BTreeMap::from([(1u8, Some(0usize)), (2, Some(1))]);
    for (i, &(_, (k, old, new))) in changes.iter().enumerate() {
        assert!(
            i == 0 || changes[i - 1].0 <= changes[i].0,
            "changes out of order: {changes:?}"
        );
        assert_eq!(
            fold[&k], old,
            "a change of key {k} from a value it did not have: {changes:?}"
        );
        fold.insert(k, new);
    }
    assert_eq!(
        fold, now,
        "the feed's changes do not add up to the table: {changes:?}"
    );
    changes
}

fn slide_model() {
    let ledger = Ledger::new(5);
    let t = Arc::new(table_with_journal(1, 8));
    t.add_route(route(1, ledger.value(0))).unwrap();
    t.add_route(route(2, ledger.value(1))).unwrap();
    let mut feed = t.feed(Criteria::all()).unwrap();

    let writer = {
        let t = Arc::clone(&t);
        let ledger = std::sync::Arc::clone(&ledger);
        thread::spawn(move || {
            let old = t.add_route(route(1, ledger.value(4))).unwrap();
            old.map(|r| r.value.id())
        })
    };

    let mut b = Batch::new();
    b.add_route(route(1, ledger.value(2)))
        .add_route(route(2, ledger.value(3)));
    let v = t.commit(b).unwrap();
    let shadowed = writer.join().unwrap();

    let now = t.get_route(&key(1)).map(|r| r.value.id());
    match shadowed {
        // the writer came first (around the batch, or slid under it): the batch is newer
        Some(0) => assert_eq!(
            now,
            Some(2),
            "the writer came first, yet its value is newest"
        ),
        // the batch came first: the writer is newer
        Some(2) => assert_eq!(
            now,
            Some(4),
            "the batch came first, yet its value is newest"
        ),
        other => panic!("the writer shadowed {other:?}"),
    }
    assert_eq!(t.get_route(&key(2)).map(|r| r.value.id()), Some(3));
    assert_eq!(t.route_count(), 2);

    // The feed, folded in order, goes from the old contents to the new ones.
    let table_now = BTreeMap::from([(1u8, now), (2, t.get_route(&key(2)).map(|r| r.value.id()))]);
    let changes = fold_feed(&mut feed, table_now);
    assert!(feed.version() >= v, "{changes:?} (writer saw {shadowed:?})");
    assert_eq!(feed.version(), t.version());
    drop(feed);
    t.collect();
    assert_eq!(t.stats().dead_versions, 0);
    drop(t);
    ledger.assert_all_freed();
}

/// A writer slides under the batch's add of key 1 while another writer cancels the batch
/// through its delete of key 2: the slider's write must land in the chain (not in the
/// cancelled version the reclaimer unlinks), and the retried batch still serializes.
fn slide_cancel_model() {
    let ledger = Ledger::new(5);
    let t = Arc::new(table_with_journal(1, 8));
    t.add_route(route(1, ledger.value(0))).unwrap();
    t.add_route(route(2, ledger.value(1))).unwrap();
    let mut feed = t.feed(Criteria::all()).unwrap();

    let slider = {
        let t = Arc::clone(&t);
        let ledger = std::sync::Arc::clone(&ledger);
        thread::spawn(move || {
            t.add_route(route(1, ledger.value(3))).unwrap();
        })
    };
    let canceller = {
        let t = Arc::clone(&t);
        let ledger = std::sync::Arc::clone(&ledger);
        thread::spawn(move || {
            t.add_route(route(2, ledger.value(4))).unwrap();
        })
    };
    let mut b = Batch::new();
    b.add_route(route(1, ledger.value(2))).delete_route(key(2));
    t.commit(b).unwrap();
    slider.join().unwrap();
    canceller.join().unwrap();

    let now = BTreeMap::from([
        (1u8, t.get_route(&key(1)).map(|r| r.value.id())),
        (2, t.get_route(&key(2)).map(|r| r.value.id())),
    ]);
    let changes = fold_feed(&mut feed, now);
    assert!(
        changes
            .iter()
            .any(|&(_, (k, _, new))| k == 1 && new == Some(3)),
        "the slider's write is lost: {changes:?}"
    );
    drop(feed);
    t.collect();
    assert_eq!(t.stats().dead_versions, 0);
    drop(t);
    ledger.assert_all_freed();
}

fn two_batches_model() {
    let ledger = Ledger::new(6);
    let t = Arc::new(table(1));
    t.add_route(route(1, ledger.value(0))).unwrap();
    t.add_route(route(2, ledger.value(1))).unwrap();

    let other = {
        let t = Arc::clone(&t);
        let ledger = std::sync::Arc::clone(&ledger);
        thread::spawn(move || {
            // queued in the opposite order
            let mut b = Batch::new();
            b.add_route(route(2, ledger.value(5)))
                .add_route(route(1, ledger.value(4)));
            t.commit(b).unwrap()
        })
    };
    let mut b = Batch::new();
    b.add_route(route(1, ledger.value(2)))
        .add_route(route(2, ledger.value(3)));
    let mine = t.commit(b).unwrap();
    let theirs = other.join().unwrap();
    assert_ne!(mine, theirs, "two commits at one version");
    let now = (
        t.get_route(&key(1)).map(|r| r.value.id()),
        t.get_route(&key(2)).map(|r| r.value.id()),
    );
    // the later commit is the one whose values are there, whole
    let want = if mine > theirs {
        (Some(2), Some(3))
    } else {
        (Some(4), Some(5))
    };
    assert_eq!(now, want, "two batches did not serialize");
    t.collect();
    assert_eq!(t.stats().dead_versions, 0);
    drop(t);
    ledger.assert_all_freed();
}

#[test]
#[cfg(not(any(
    rtm_negative = "batch-ready-early",
    rtm_negative = "batch-no-abandon",
    rtm_negative = "slide-no-count",
    rtm_negative = "eager-free"
)))]
fn two_batches_of_the_same_keys_serialize() {
    common::check("two_batches_of_the_same_keys_serialize", two_batches_model);
}

#[test]
#[cfg(rtm_negative = "batch-no-abandon")]
fn batches_that_do_not_cancel_each_other_break_the_order() {
    common::expect_failure(
        "two_batches_of_the_same_keys_serialize/batch-no-abandon",
        two_batches_model,
    );
}

#[test]
#[cfg(not(any(
    rtm_negative = "batch-ready-early",
    rtm_negative = "batch-no-abandon",
    rtm_negative = "slide-no-count",
    rtm_negative = "eager-free"
)))]
fn a_reader_sees_a_batch_whole() {
    common::check("a_reader_sees_a_batch_whole", reader_model);
}

#[test]
#[cfg(not(any(
    rtm_negative = "batch-ready-early",
    rtm_negative = "batch-no-abandon",
    rtm_negative = "slide-no-count",
    rtm_negative = "eager-free"
)))]
fn a_writer_and_a_batch_serialize() {
    common::check("a_writer_and_a_batch_serialize", writer_model);
}

#[test]
#[cfg(not(any(
    rtm_negative = "batch-ready-early",
    rtm_negative = "batch-no-abandon",
    rtm_negative = "slide-no-count",
    rtm_negative = "eager-free"
)))]
fn a_writer_slides_under_a_batch_and_serializes() {
    common::check("a_writer_slides_under_a_batch_and_serializes", slide_model);
}

#[test]
#[cfg(not(any(
    rtm_negative = "batch-ready-early",
    rtm_negative = "batch-no-abandon",
    rtm_negative = "slide-no-count",
    rtm_negative = "eager-free"
)))]
fn a_slider_under_a_cancelled_batch_keeps_its_write() {
    common::check(
        "a_slider_under_a_cancelled_batch_keeps_its_write",
        slide_cancel_model,
    );
}

#[test]
#[cfg(rtm_negative = "slide-no-count")]
fn a_slider_that_does_not_hold_the_decision_back_breaks_the_order() {
    common::expect_failure(
        "a_writer_slides_under_a_batch_and_serializes/slide-no-count",
        slide_model,
    );
}

#[test]
#[cfg(rtm_negative = "batch-ready-early")]
fn a_batch_ready_before_it_is_linked_shows_half() {
    common::expect_failure(
        "a_reader_sees_a_batch_whole/batch-ready-early",
        reader_model,
    );
}

#[test]
#[cfg(rtm_negative = "batch-no-abandon")]
fn a_writer_that_does_not_cancel_breaks_the_order() {
    common::expect_failure(
        "a_writer_and_a_batch_serialize/batch-no-abandon",
        writer_model,
    );
}

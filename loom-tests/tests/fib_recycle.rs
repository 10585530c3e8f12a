//! Model 10: Fib readers against a writer that reuses the blocks it detached.
//!
//! The Fib's writer publishes each version as a new root (copying the root and chunk it
//! changes) and reuses the detached blocks of older versions after bumping a counter;
//! readers walk with loads only and retry when the counter moved during their walk (see
//! `src/fib/arena.rs`). The Fib has a 2-bit directory, so a root is 4 words and a chunk
//! 1 word, and 0.0.0.0/1 lives in a directory entry. The writer sets its next hop to 2,
//! 3 and 4, publishing each as that version: from version 3 on it writes into the blocks
//! version 1 used. A reader reads `version()`, looks up 1.2.3.4, reads `version()`
//! again: the answer must be the id of a version in between (ids equal versions).
//!
//! Why a broken protocol fails here: a reader that loaded version 1's root, and then
//! reads it while the writer rewrites it as version 3's root, returns 3 while the version
//! read after the lookup can still be 2. The `fib-no-recheck` control drops the re-check
//! of the counter after the walk.

#![cfg(loom)]

mod common;

use loom::thread;
use rtm::{FibWriter, Ipv4Net, Version};

fn model() {
    let half: Ipv4Net = "0.0.0.0/1".parse().unwrap();
    let mut w = FibWriter::<Ipv4Net>::with_direct_bits(2);
    w.insert(half, 1).unwrap();
    w.publish(Version(1));
    let fib = w.fib();

    let writer = thread::spawn(move || {
        for v in 2..=4u32 {
            w.insert(half, v).unwrap();
            w.publish(Version(v as u64));
        }
        w
    });

    let before = fib.version().0;
    let x = fib.lookup("1.2.3.4".parse().unwrap());
    let after = fib.version().0;
    let x = x.expect("0.0.0.0/1 is in every version") as u64;
    assert!(
        before <= x && x <= after,
        "lookup returned version {x}'s answer between versions {before} and {after}"
    );

    let w = writer.join().unwrap();
    assert_eq!(fib.version(), Version(4));
    assert_eq!(fib.lookup("1.2.3.4".parse().unwrap()), Some(4));
    drop(w);
}

#[test]
#[cfg(not(rtm_negative = "fib-no-recheck"))]
fn fib_readers_race_block_reuse() {
    common::check("fib_readers_race_block_reuse", model);
}

#[test]
#[cfg(rtm_negative = "fib-no-recheck")]
fn fib_reader_fails_without_recheck() {
    common::expect_failure("fib_readers_race_block_reuse/fib-no-recheck", model);
}

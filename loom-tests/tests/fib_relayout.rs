//! Model 16: a Fib reader against a writer that lays the Fib out again in a directory of
//! another size (`FibWriter::set_direct_bits`).
//!
//! A relayout builds the whole tree apart, in a new arena whose directory has the new
//! shape, and moves readers to it with one `Release` store of the arena pointer, as an
//! arena that grows does (see `src/fib/arena.rs`). The shape is a field of the arena, set
//! before the arena is published: a reader reads it from the arena it walks, so the shape
//! and the words always belong together. The old arena is retired, never written again.
//!
//! The Fib starts with a 2-bit directory holding 1.0.0.0/8 (next hop 1) and 177.0.0.0/8
//! (next hop 2), published as version 1. A reader looks up 1.2.3.4 and 177.1.2.3, each
//! between two reads of `version()`; meanwhile the writer gives 177.0.0.0/8 next hop 3 and
//! publishes version 2 in a 4-bit directory. Each answer must be that of a version the
//! reader's bracket allows.
//!
//! A reader handle also keeps the shape the directory had when it was made: a directory
//! only grows, so a handle made on a 24-bit directory (the largest) skips reading the
//! arena's. The `rtm_negative="fib-stale-geometry"` control takes a smaller handle's shape
//! for the arena's: a reader whose walk reads the 4-bit arena with the 2-bit shape indexes
//! its root with the wrong bits, and 177.1.2.3 lands in the entry of another part of the
//! address space.

#![cfg(loom)]

mod common;

use loom::thread;
use rtm::{FibWriter, Ipv4Net, Version};

fn model() {
    let p = |s: &str| s.parse::<Ipv4Net>().unwrap();
    let mut w = FibWriter::<Ipv4Net>::with_direct_bits(2);
    w.insert(p("1.0.0.0/8"), 1).unwrap();
    w.insert(p("177.0.0.0/8"), 2).unwrap();
    w.publish(Version(1));
    let fib = w.fib();

    let reader = thread::spawn(move || {
        for (addr, at_1, at_2) in [("1.2.3.4", 1, 1), ("177.1.2.3", 2, 3)] {
            let before = fib.version();
            let got = fib.lookup(addr.parse().unwrap());
            let after = fib.version();
            let allowed: Vec<Option<u32>> = [(Version(1), at_1), (Version(2), at_2)]
                .into_iter()
                .filter(|(v, _)| before <= *v && *v <= after)
                .map(|(_, id)| Some(id))
                .collect();
            assert!(
                allowed.contains(&got),
                "{addr}: {got:?} between versions {before:?} and {after:?}"
            );
        }
    });

    w.insert(p("177.0.0.0/8"), 3).unwrap();
    w.set_direct_bits(4, Version(2));

    reader.join().unwrap();
    let fib = w.fib();
    assert_eq!(fib.direct_bits(), 4);
    assert_eq!(fib.version(), Version(2));
    assert_eq!(fib.lookup("1.2.3.4".parse().unwrap()), Some(1));
    assert_eq!(fib.lookup("177.1.2.3".parse().unwrap()), Some(3));
    assert_eq!(fib.lookup("64.1.2.3".parse().unwrap()), None);
}

#[test]
#[cfg(not(rtm_negative = "fib-stale-geometry"))]
fn fib_readers_cross_a_relayout_whole() {
    common::check("fib_readers_cross_a_relayout_whole", model);
}

#[test]
#[cfg(rtm_negative = "fib-stale-geometry")]
fn fib_relayout_fails_with_a_stale_geometry() {
    common::expect_failure(
        "fib_readers_cross_a_relayout_whole/fib-stale-geometry",
        model,
    );
}

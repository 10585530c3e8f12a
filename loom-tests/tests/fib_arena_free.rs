//! Model 13: a Fib reader that looks up and drops its handle, against a writer that
//! outgrows the arena and frees the old one.
//!
//! When the writer needs more room it copies the arena into a bigger one and publishes
//! that. The old arena is freed at once if the writer's handle is the only one left (no
//! reader can be walking it), else kept until the last handle drops (see
//! `src/fib/arena.rs`). "The only one" is `Arc::get_mut` on the shared state: its `Acquire`
//! load of the count synchronizes with the `Release` decrement of each dropped reader
//! handle, so every load a reader made through its handle happens before the free.
//!
//! The Fib has a 2-bit directory and, under loom, an arena of 64 words; eleven /8 prefixes
//! nearly fill it and are published as version 1. A reader thread holding a `Fib` clone
//! looks up 1.2.3.4 (which must give 1) and drops its clone; meanwhile the main thread
//! inserts a twelfth /8, which outgrows the arena, and publishes version 2. Depending on
//! the interleaving the old arena is retired (the reader's handle still lives) or freed at
//! once (it was dropped first).
//!
//! Why a broken protocol fails here: under loom every arena carries an `UnsafeCell` that
//! each load of a word or of the root reads and the arena's free writes (`Arena::memory`),
//! so loom reports a causality violation when some load does not happen before the free.
//! A writer that decides it is alone from `Arc::strong_count(..) == 1`, a `Relaxed` load,
//! sees the reader's decrement without synchronizing with it, frees the arena, and loom
//! finds the reader's loads concurrent with the free: a data race in the memory model even
//! where the reader's loads came first in time. The sync shim's `Arc` counts in a loom
//! atomic with `std`'s orderings so that this is modelled (`loom::sync::Arc`'s own
//! `strong_count` would synchronize). The `rtm_negative="fib-strong-count"` control
//! restores that check in place of `Arc::get_mut`.

#![cfg(loom)]

mod common;

use loom::thread;
use rtm::{FibWriter, Ipv4Net, Version};

/// Prefix `i`: the network `(16 i + 1).0.0.0/8`, with next hop `i + 1`.
fn prefix(i: u8) -> Ipv4Net {
    Ipv4Net::new([16 * i + 1, 0, 0, 0].into(), 8).expect("valid prefix")
}

fn model() {
    let mut w = FibWriter::<Ipv4Net>::with_direct_bits(2);
    for i in 0..11 {
        w.insert(prefix(i), u32::from(i) + 1).unwrap();
    }
    w.publish(Version(1));
    let before = w.fib().memory_bytes();
    let fib = w.fib();

    let reader = thread::spawn(move || {
        assert_eq!(fib.lookup("1.2.3.4".parse().unwrap()), Some(1));
        drop(fib);
    });

    // Outgrows the arena: copies it, then frees or retires the old one.
    w.insert(prefix(11), 12).unwrap();
    w.publish(Version(2));

    reader.join().unwrap();
    let fib = w.fib();
    assert!(
        fib.memory_bytes() > before,
        "the model no longer outgrows the arena"
    );
    assert_eq!(fib.lookup("1.2.3.4".parse().unwrap()), Some(1));
    assert_eq!(fib.lookup("177.1.2.3".parse().unwrap()), Some(12));
    assert_eq!(fib.version(), Version(2));
}

#[test]
#[cfg(not(rtm_negative = "fib-strong-count"))]
fn fib_reader_drop_orders_arena_free() {
    common::check("fib_reader_drop_orders_arena_free", model);
}

#[test]
#[cfg(rtm_negative = "fib-strong-count")]
fn fib_arena_free_fails_with_strong_count() {
    common::expect_failure("fib_reader_drop_orders_arena_free/fib-strong-count", model);
}

//! The table's clock: the version counter every commit takes its timestamp from, with the
//! journal in which each value it hands out is recorded once.

use crate::journal::Journal;
use crate::sync::{AtomicU64, CachePadded, Ordering};

/// The table's clock: the newest timestamp handed out, and the journal in which every
/// timestamp it hands out is recorded once (as a commit or as a gap).
pub(crate) struct Clock {
    now: CachePadded<AtomicU64>,
    pub(crate) journal: Journal,
}

impl Clock {
    pub(crate) fn new(journal_capacity: usize) -> Self {
        Self {
            now: CachePadded::new(AtomicU64::new(0)),
            journal: Journal::new(journal_capacity),
        }
    }

    /// The current value. SeqCst: snapshot registration and the reclaimer's announcement
    /// form a store-buffering pattern with it (invariant 3, see `slots`).
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    /// A fresh timestamp, larger than every value `now` returned before. The caller
    /// records it in the journal: as its commit, or as a gap if it does not use it.
    #[inline]
    pub(crate) fn tick(&self) -> u64 {
        // SeqCst: part of the single total order the registration protocol reasons about.
        self.now.fetch_add(1, Ordering::SeqCst) + 1
    }
}

//! The reclaimer: unlinks what no snapshot can see and hands it to crossbeam-epoch.
//!
//! A sweep announces the clock and scans the slots (invariant 3, see `slots`), then walks
//! level 0 of the skip list once. In each chain it keeps the current version, every
//! version newer than the announcement, and for each pinned snapshot the one version that
//! snapshot sees; it unlinks the rest. A key whose chain is a lone deletion marker that
//! every snapshot sees is retired and its node removed. Unlinked memory goes to the epoch,
//! which frees it once no thread that could still hold it is pinned.
//!
//! Sweeps run one at a time (a flag taken with a swap, never waited on): a thread that
//! finds a sweep running asks it to run once more and returns. Writers start a sweep when
//! the clock passes `next_at`, set after each sweep in proportion to the table's size, so
//! a write pays O(1) amortized; a close starts one when the retained garbage is large.

use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Epoch, Ordering};

/// Writes between sweeps, at least.
const MIN_INTERVAL: u64 = 4096;

/// The reclaimer's shared state.
pub(crate) struct Reclaimer {
    sweeping: AtomicBool,
    again: AtomicBool,
    next_at: AtomicU64,
    /// Value versions that are no longer current but still linked.
    dead: AtomicUsize,
}

impl Reclaimer {
    pub(crate) fn new() -> Self {
        Self {
            sweeping: AtomicBool::new(false),
            again: AtomicBool::new(false),
            next_at: AtomicU64::new(MIN_INTERVAL),
            dead: AtomicUsize::new(0),
        }
    }

    /// A current value became a dead version (replaced or deleted).
    #[inline]
    pub(crate) fn shadowed(&self) {
        self.dead.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn dead(&self) -> usize {
        self.dead.load(Ordering::Relaxed)
    }

    /// Whether a writer that committed at `ts` should sweep.
    #[inline]
    pub(crate) fn due(&self, ts: u64) -> bool {
        ts >= self.next_at.load(Ordering::Relaxed)
    }

    /// Whether the retained garbage is large for a table of `live` routes.
    #[inline]
    pub(crate) fn heavy(&self, live: usize) -> bool {
        self.dead() as u64 > MIN_INTERVAL + live as u64 / 2
    }

    /// Runs `pass` as the only sweeper (twice at most, if asked again meanwhile), or asks
    /// the running sweeper for another pass. `pass` returns (value versions freed, value
    /// versions kept dead, live routes). Returns whether this thread swept.
    pub(crate) fn sweep(
        &self,
        now: impl Fn() -> u64,
        epoch: &Epoch,
        mut pass: impl FnMut() -> (usize, usize, usize),
    ) -> bool {
        // Acquire: we see the previous sweeper's unlinks before we start ours.
        if self.sweeping.swap(true, Ordering::Acquire) {
            self.again.store(true, Ordering::Relaxed);
            return false;
        }
        for _ in 0..2 {
            self.again.store(false, Ordering::Relaxed);
            let (freed, kept, live) = pass();
            self.dead.fetch_sub(freed, Ordering::Relaxed);
            let interval = MIN_INTERVAL + (live / 2 + kept) as u64;
            self.next_at
                .store(now().saturating_add(interval), Ordering::Relaxed);
            flush(epoch, freed);
            if !self.again.load(Ordering::Relaxed) {
                break;
            }
        }
        // Release: the next sweeper (Acquire swap) sees our unlinks.
        self.sweeping.store(false, Ordering::Release);
        true
    }
}

/// Pushes this thread's deferred garbage to the epoch and lets it advance, so that what a
/// sweep unlinked is freed now when no other thread is pinned in an old epoch.
fn flush(epoch: &Epoch, deferred: usize) {
    // Each flush frees a bounded number of sealed bags; the epoch needs two advances.
    let rounds = 4 + deferred / 256;
    for _ in 0..rounds.min(4096) {
        let guard = epoch.pin();
        guard.flush();
    }
}

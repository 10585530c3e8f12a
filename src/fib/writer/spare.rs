//! Spare blocks: the previous block of the root and of each directory chunk, kept so that
//! making it writable again copies only the words the last batch changed, and the clock
//! that gives spares back to the allocator when too many chunks keep one.

use std::collections::VecDeque;

use crate::fib::alloc::Alloc;
use crate::fib::arena::Arena;

/// A published block's previous version, kept to be reused as its next one: bringing it up
/// to date copies only the words the last batch changed, not the whole block (a 24-bit
/// directory has roots of 4,098 words and chunks of 2,048). It is written only after a
/// later publish detached it and a bump of the recycling counter (see
/// [`crate::fib::arena`]), as any reused block.
pub(super) struct Spare {
    /// The block (0: none).
    pub(super) block: usize,
    /// Word offsets at which `block` differs from the current block; `all`: too many to
    /// list, copy the whole block.
    delta: Vec<u32>,
    all: bool,
}

impl Spare {
    pub(super) const NONE: Spare = Spare {
        block: 0,
        delta: Vec::new(),
        all: false,
    };

    /// Notes that the current block's word `w` is written. `cap`: offsets listed at most.
    #[inline]
    pub(super) fn note(&mut self, w: usize, cap: usize) {
        if self.block == 0 || self.all || self.delta.last() == Some(&(w as u32)) {
            return;
        }
        if self.delta.len() >= cap {
            self.all = true;
            self.delta.clear();
        } else {
            self.delta.push(w as u32);
        }
    }

    /// Brings the spare up to date with `current` (`words` long) and returns it; the
    /// caller has bumped the recycling counter since the publish that detached it.
    pub(super) fn catch_up(&mut self, arena: &Arena, current: usize, words: usize) -> usize {
        if self.all {
            arena.copy(current, self.block, words);
        } else {
            for &w in &self.delta {
                arena.set(self.block + w as usize, arena.get(current + w as usize));
            }
        }
        self.block
    }

    /// Makes `block` the spare, equal to the current block so far.
    pub(super) fn reset(&mut self, block: usize) {
        self.block = block;
        self.delta.clear();
        self.all = false;
    }
}

/// A directory chunk's bookkeeping.
pub(super) struct ChunkSlot {
    /// The batch in which the chunk's current block became writable (`u64::MAX`: never).
    pub(super) written: u64,
    /// The chunk's previous block.
    pub(super) spare: Spare,
    /// Whether the spare was used since the clock hand last passed.
    pub(super) referenced: bool,
}

/// The spare blocks of the root and of the chunks, and the chunks' bookkeeping.
pub(super) struct Spares {
    /// The root before the working one, kept to become the next working root (see
    /// [`Spare`]); 0 before the first publish.
    pub(super) root: Spare,
    /// Each directory chunk's bookkeeping, by chunk number.
    pub(super) chunks: Vec<ChunkSlot>,
    /// Chunks that have a spare block, oldest first (the hand of a clock that gives
    /// recently used spares a second chance before evicting one).
    pub(super) clock: VecDeque<u32>,
    /// At most this many chunks keep a spare block.
    max: usize,
}

impl Spares {
    /// No spares yet, for a directory of `chunks` chunks, none of them ever written.
    pub(super) fn new(chunks: usize) -> Self {
        Self {
            root: Spare::NONE,
            chunks: (0..chunks)
                .map(|_| ChunkSlot {
                    written: u64::MAX,
                    spare: Spare::NONE,
                    referenced: false,
                })
                .collect(),
            clock: VecDeque::new(),
            // An eighth of the directory: the chunks a real day's churn touches most
            // (docs/FIB.md), at an eighth more directory memory at most.
            max: chunks.div_ceil(8),
        }
    }

    /// Gives spare blocks (of `words` words, a chunk's) back to `alloc` while more than
    /// `max` chunks keep one, and until `want` spares that are reusable in this batch
    /// (number `batch`; detached by an earlier publish) were given back. Passes over chunk
    /// `keep` and, once, over spares used since the hand last passed.
    pub(super) fn evict(
        &mut self,
        alloc: &mut Alloc,
        batch: u64,
        words: usize,
        keep: usize,
        mut want: usize,
    ) {
        // Each chunk is passed over at most twice (its second chance, then for good).
        let mut steps = 2 * self.clock.len();
        while (self.clock.len() > self.max || want > 0) && steps > 0 {
            steps -= 1;
            let Some(c) = self.clock.pop_front() else {
                return;
            };
            let slot = &mut self.chunks[c as usize];
            // Set in this batch: the published root still reaches it.
            let reachable = slot.written == batch;
            let over = self.clock.len() >= self.max;
            if c as usize == keep || slot.referenced || (reachable && !over) {
                slot.referenced = false;
                self.clock.push_back(c);
                continue;
            }
            let block = slot.spare.block;
            slot.spare.reset(0);
            if reachable {
                alloc.release(block, words);
            } else {
                alloc.release_detached(block, words);
                want = want.saturating_sub(1);
            }
        }
    }
}

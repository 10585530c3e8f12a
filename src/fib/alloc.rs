//! The writer's side of the arena: allocation, release, and when released blocks may be
//! reused (see [`super::arena`] for why that needs a counter bump).

use super::arena::{Arena, Shared};
use super::layout::Geometry;
use crate::hash::FastSet;
use crate::sync::Arc;

/// Blocks of the arena, handed out and taken back by the single writer.
pub(crate) struct Alloc {
    shared: Arc<Shared>,
    /// Words in use from the start of the arena (word 0 is never handed out).
    top: usize,
    /// Reusable blocks, by size in words.
    free: Vec<Vec<u32>>,
    /// Released since the last publish: the published root may still reach them.
    pending: Vec<(u32, u32)>,
    /// Released before the last publish: only older roots reach them; reusable after a
    /// counter bump.
    detached: Vec<(u32, u32)>,
    /// Blocks handed out since the last publish: no published root reaches them, so the
    /// writer may change them in place and free them at once.
    fresh: FastSet<u32>,
    /// Words in blocks that are handed out (for statistics).
    used: usize,
    /// Whether the recycling counter was bumped since the last publish.
    bumped: bool,
}

impl Alloc {
    /// An allocator over a new arena of `capacity` words for a directory of `geometry`.
    pub(crate) fn new(capacity: usize, geometry: Geometry) -> Self {
        Self {
            shared: Arc::new(Shared::new(Arena::new(capacity.max(2), geometry))),
            top: 1,
            free: Vec::new(),
            pending: Vec::new(),
            detached: Vec::new(),
            fresh: FastSet::default(),
            used: 0,
            bumped: false,
        }
    }

    /// The shared state readers hold.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The arena the writer writes (always the current one).
    #[inline]
    pub(crate) fn arena(&self) -> &Arena {
        self.shared.arena()
    }

    /// A block of `size` words. Its contents are arbitrary: the caller writes every word.
    pub(crate) fn alloc(&mut self, size: usize) -> usize {
        match self.try_alloc(size) {
            Some(start) => start,
            None => self.alloc_at_end(size),
        }
    }

    /// As [`Alloc::alloc`], but `None` rather than grow the arena.
    pub(crate) fn try_alloc(&mut self, size: usize) -> Option<usize> {
        if let Some(s) = self.take_free(size) {
            return Some(self.hand_out(s, size));
        }
        if !self.detached.is_empty() {
            // Readers on older roots may still walk these blocks: bump before any of them
            // is written again.
            self.reuse_detached();
            for (s, z) in std::mem::take(&mut self.detached) {
                self.put_free(s as usize, z as usize);
            }
            if let Some(s) = self.take_free(size) {
                return Some(self.hand_out(s, size));
            }
        }
        (self.top + size <= self.arena().capacity()).then(|| self.alloc_at_end(size))
    }

    /// A block of `size` words from the end of the arena (never a reused one), so that
    /// blocks taken one after another lie one after another.
    pub(crate) fn alloc_at_end(&mut self, size: usize) -> usize {
        let start = self.carve(size);
        self.hand_out(start, size)
    }

    /// Whether `block` was handed out since the last publish (no published root reaches
    /// it).
    pub(crate) fn is_fresh(&self, block: usize) -> bool {
        self.fresh.contains(&(block as u32))
    }

    /// The shared state, if the writer's handle is the only one: then no reader can be
    /// walking the arena, nor ever will while the `&mut` lives (a reader handle is made
    /// only from another handle, and the writer's is borrowed).
    ///
    /// `Arc::get_mut`, not `Arc::strong_count(..) == 1`: the count is a `Relaxed` load,
    /// which would not order a dropped reader's last loads from the arena before the
    /// writer frees or rewrites it. `get_mut` loads the count with `Acquire`, which
    /// synchronizes with the `Release` decrement in each reader handle's drop.
    #[cfg_attr(rtm_negative = "fib-strong-count", allow(dead_code))] // unused by the control
    fn unique(&mut self) -> Option<&mut Shared> {
        Arc::get_mut(&mut self.shared)
    }

    /// Whether the writer's handle is the only one (no reader can be walking the arena,
    /// and every dropped reader's loads happen before what the writer does next; see
    /// [`Alloc::unique`]).
    pub(crate) fn alone(&mut self) -> bool {
        #[cfg(not(rtm_negative = "fib-strong-count"))]
        {
            self.unique().is_some()
        }
        // Broken on purpose: the `Relaxed` count orders no dropped reader's loads before
        // what the writer does next.
        #[cfg(rtm_negative = "fib-strong-count")]
        {
            Arc::strong_count(&self.shared) == 1
        }
    }

    /// Makes `arena` the arena and frees the current one at once, if the writer's handle
    /// is the only one (see [`Alloc::unique`]); else gives `arena` back, unused.
    fn replace_alone(&mut self, arena: Box<Arena>) -> Result<(), Box<Arena>> {
        #[cfg(not(rtm_negative = "fib-strong-count"))]
        {
            match self.unique() {
                Some(shared) => {
                    shared.replace_arena_alone(arena);
                    Ok(())
                }
                None => Err(arena),
            }
        }
        // Broken on purpose, as `alone`: the old code's `strong_count(..) == 1`, then the
        // free through a shared reference.
        #[cfg(rtm_negative = "fib-strong-count")]
        {
            if Arc::strong_count(&self.shared) == 1 {
                self.shared.replace_arena_unordered(arena);
                Ok(())
            } else {
                Err(arena)
            }
        }
    }

    /// Makes `arena`, whose words `1..top` are all in use, the arena (no reader may
    /// exist: the current one is freed at once). Every block in it counts as fresh until
    /// the next publish; nothing is free or waiting.
    pub(crate) fn install(&mut self, arena: Box<Arena>, top: usize) {
        if self.replace_alone(arena).is_err() {
            panic!("installing an arena under readers");
        }
        self.top = top;
        self.used = top - 1;
        self.free.clear();
        self.pending.clear();
        self.detached.clear();
        self.fresh.clear();
        self.bumped = false;
    }

    /// Makes the arena of `other` (an allocator over a Fib that has no reader handle,
    /// built to replace this one's, its root published) the arena this allocator's
    /// readers walk, and `other`'s bookkeeping this allocator's. The current arena is
    /// retired as [`Alloc::grow`] retires one (freed at once if no reader handle exists).
    /// `other` must have no reader handle (the writer never makes one of it).
    pub(crate) fn adopt(&mut self, mut other: Alloc) {
        let arena = other
            .unique()
            .expect("an arena built apart has no reader handle")
            .take_arena_alone();
        if let Err(arena) = self.replace_alone(arena) {
            // Release (in the swap): a reader that loads the new arena sees its words.
            self.shared.retire_arena(arena);
        }
        // The new arena's blocks were never reachable from this Fib's published roots
        // before now, and none is released: no counter bump is owed.
        other.shared = Arc::clone(&self.shared);
        *self = other;
    }

    /// Blocks handed out since the last publish.
    pub(crate) fn fresh_blocks(&self) -> usize {
        self.fresh.len()
    }

    fn hand_out(&mut self, start: usize, size: usize) -> usize {
        self.fresh.insert(start as u32);
        self.used += size;
        start
    }

    /// Gives back a block that no published root reaches any more (one the writer kept
    /// since an earlier publish): reusable after a counter bump, without waiting for the
    /// next publish.
    pub(crate) fn release_detached(&mut self, start: usize, size: usize) {
        debug_assert!(!self.fresh.contains(&(start as u32)));
        self.used -= size;
        self.detached.push((start as u32, size as u32));
    }

    /// Gives back a block. A fresh one is reusable at once; one that a published root may
    /// reach waits for the next publish and a counter bump.
    pub(crate) fn release(&mut self, start: usize, size: usize) {
        self.used -= size;
        if self.fresh.remove(&(start as u32)) {
            self.put_free(start, size);
        } else {
            self.pending.push((start as u32, size as u32));
        }
    }

    /// Called right after a root is published: what it detached becomes reusable (after a
    /// bump), and nothing is fresh any more.
    pub(crate) fn published(&mut self) {
        self.detached.append(&mut self.pending);
        self.fresh.clear();
        self.bumped = false;
    }

    /// Makes blocks that the last publish (or an earlier one) detached safe to write:
    /// bumps the recycling counter unless it was bumped since that publish. The writer
    /// calls it before writing into a block it kept itself (a spare), as `alloc` does
    /// before handing out a detached one.
    pub(crate) fn reuse_detached(&mut self) {
        if !self.bumped {
            self.shared.bump_recycled();
            self.bumped = true;
        }
    }

    /// Words in blocks handed out.
    pub(crate) fn used_words(&self) -> usize {
        self.used
    }

    fn take_free(&mut self, size: usize) -> Option<usize> {
        self.free.get_mut(size)?.pop().map(|s| s as usize)
    }

    fn put_free(&mut self, start: usize, size: usize) {
        if self.free.len() <= size {
            self.free.resize_with(size + 1, Vec::new);
        }
        self.free[size].push(start as u32);
    }

    /// A never-used block from the end of the arena, growing it if needed.
    fn carve(&mut self, size: usize) -> usize {
        if self.top + size > self.arena().capacity() {
            self.grow(self.top + size);
        }
        let start = self.top;
        self.top += size;
        start
    }

    /// Copies the arena into one with room for `need` words and publishes it.
    fn grow(&mut self, need: usize) {
        let old = self.arena();
        let capacity = (old.capacity() * 2).max(need + need / 4);
        // Directory entries name nodes in 31 bits: 2^31 words (16 GiB) is the limit.
        assert!(capacity <= 1 << 31, "Fib arena beyond 2^31 words");
        let bigger = Arena::new(capacity, old.geometry());
        for i in 0..self.top {
            bigger.set(i, old.get(i));
        }
        bigger.publish_root(old.root());
        // Freed at once if only the writer's own handle is left (no reader can be walking
        // the old arena), else retired.
        if let Err(bigger) = self.replace_alone(bigger) {
            self.shared.retire_arena(bigger);
        }
    }

    /// Makes the arena exactly as big as what is in use plus `slack` words (used after a
    /// bulk build, before any reader exists, so no memory is retired).
    pub(crate) fn shrink_to_fit(&mut self, slack: usize) {
        if !self.alone() {
            return;
        }
        let old = self.arena();
        let capacity = self.top + slack;
        if capacity >= old.capacity() {
            return;
        }
        let smaller = Arena::new(capacity, old.geometry());
        for i in 0..self.top {
            smaller.set(i, old.get(i));
        }
        smaller.publish_root(old.root());
        // Cannot fail: the writer was alone above and still holds the only handle.
        let _ = self.replace_alone(smaller);
    }
}

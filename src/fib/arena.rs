//! The memory a Fib lives in, and the protocol that lets readers walk it with loads only.
//!
//! # The arena
//!
//! All nodes of a Fib live in one [`Arena`], an array of atomic words owned by the Fib's
//! [`Shared`] state. An arena is never freed while a reader handle lives: when the writer
//! needs more room it copies the arena into a bigger one, publishes that, and keeps the old
//! one (never written again) in `retired` until the last handle drops. So a reader's
//! pointer into an arena is always valid, and an index read from it is bounds-checked,
//! never trusted. The words of an arena of 2 MiB or more are mapped on huge pages where
//! the system gives them (`pages`), so that a lookup's one random line rarely costs a page
//! walk as well.
//!
//! # Publishing
//!
//! The writer never changes a word a reader can reach. It builds a change in fresh blocks
//! (copying the path from the root), then stores the new root index with `Release`. A
//! reader that loads the root with `Acquire` sees every word written before that store:
//! one whole version.
//!
//! # Recycling, and the counter that makes it safe
//!
//! Blocks that a publish detached still hang off older roots that a slow reader may be
//! walking. The writer reuses them only after bumping `recycled` (a `Release` store, then
//! a `Release` fence, then its writes into the reused blocks). A reader loads `recycled`
//! (`Acquire`) before it loads the root, walks, issues an `Acquire` fence and loads
//! `recycled` again; if it changed, it walks again.
//!
//! * A reader that read any word written into a reused block read a store that follows the
//!   writer's fence; its own fence then makes the bump visible to its second load, so it
//!   retries. (Fence-to-fence synchronization, as in a seqlock.)
//! * A reader whose first load already saw the bump synchronized with the bump's `Release`
//!   store, which follows the publish that detached the blocks: the root it loads next is
//!   that publish's or a later one, from which the reused blocks are unreachable until the
//!   writer publishes them again, complete.
//!
//! A walk is bounded (one step per `STRIDE` bits of the address) whatever it reads, so a
//! walk over reused words ends, and its answer is thrown away.
//!
//! The writer bumps the counter once per batch of reused blocks, not per block, so a
//! reader retries only if a bump lands inside its own walk (tens of nanoseconds).

use std::sync::Mutex;

use super::layout::Geometry;
use super::pages::Words;
use crate::sync::{fence, AtomicPtr, AtomicU64, Ordering};

/// A fixed-size array of atomic words. Reads out of bounds give 0 ("none").
pub(crate) struct Arena {
    words: Words,
    /// The index of the published root block.
    root: AtomicU64,
    /// The directory's shape, the same for every root block this arena holds. Fixed when
    /// the arena is made, before a reader can load its pointer, so a reader reads it
    /// with the arena (a directory of another shape is another arena).
    geometry: Geometry,
    /// Under loom, the arena's memory as loom sees plain data: every load of a word or of
    /// the root reads it and freeing the arena writes it, so that loom reports a free that
    /// some load does not happen before. (The words are loom atomics, and loom checks
    /// atomics for coherence, not against the free of the memory they live in.)
    #[cfg(loom)]
    memory: crate::sync::UnsafeCell<()>,
}

impl Arena {
    /// An arena of at least `capacity` zeroed words (a large one rounds up to whole huge
    /// pages, see `pages`) for a directory of shape `geometry`.
    pub(crate) fn new(capacity: usize, geometry: Geometry) -> Box<Self> {
        Box::new(Self {
            words: Words::zeroed(capacity),
            root: AtomicU64::new(0),
            geometry,
            #[cfg(loom)]
            memory: crate::sync::UnsafeCell::new(()),
        })
    }

    /// Under loom, records a read of the arena's memory (see `memory`); nothing otherwise.
    #[inline(always)]
    fn read_memory(&self) {
        #[cfg(loom)]
        self.memory.with(|_| ());
    }

    /// The shape of the directory this arena holds.
    #[inline(always)]
    pub(crate) fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// The number of words.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.words.len()
    }

    /// Word `i`, or 0 when `i` is out of bounds.
    ///
    /// `Relaxed`: the reader's ordering comes from the `Acquire` root load before and the
    /// `Acquire` fence after its walk (see the module docs); the writer reads its own
    /// stores.
    #[inline(always)]
    pub(crate) fn get(&self, i: usize) -> u64 {
        self.read_memory();
        match self.words.get(i) {
            Some(w) => w.load(Ordering::Relaxed),
            None => out_of_bounds(),
        }
    }

    /// Word `i`, without the bounds check of [`Arena::get`].
    ///
    /// # Safety
    ///
    /// `i < self.capacity()`.
    #[inline(always)]
    pub(crate) unsafe fn get_unchecked(&self, i: usize) -> u64 {
        debug_assert!(i < self.capacity());
        self.read_memory();
        // SAFETY: the caller promises `i` is in bounds.
        unsafe { self.words.get_unchecked(i) }.load(Ordering::Relaxed)
    }

    /// Hints the CPU to start loading word `i` (any `i`: nothing is read).
    #[inline(always)]
    pub(crate) fn prefetch(&self, i: usize) {
        crate::sync::prefetch(self.words.as_ptr().wrapping_add(i));
    }

    /// Stores word `i` (writer only; `i` in bounds).
    ///
    /// `Relaxed`: no reader can reach the word until a later `Release` publish (fresh
    /// blocks) or a reader that reaches it retries (reused blocks, after the counter's
    /// `Release` fence).
    #[inline]
    pub(crate) fn set(&self, i: usize, v: u64) {
        self.words[i].store(v, Ordering::Relaxed);
    }

    /// The `j`th of the `u32`s packed two per word from word `base` on, low half first
    /// (directory entries, child indices); 0 out of bounds, as [`Arena::get`].
    #[inline]
    pub(crate) fn get_u32(&self, base: usize, j: usize) -> u32 {
        (self.get(base + j / 2) >> (32 * (j & 1))) as u32
    }

    /// Sets the `j`th `u32` from word `base` on (writer only; in bounds), as
    /// [`Arena::set`].
    #[inline]
    pub(crate) fn set_u32(&self, base: usize, j: usize, v: u32) {
        let shift = 32 * (j & 1);
        let word = self.get(base + j / 2) & !(0xffff_ffffu64 << shift);
        self.set(base + j / 2, word | (v as u64) << shift);
    }

    /// Copies `n` words from `from` to `to` (writer only; both in bounds, not
    /// overlapping). `Relaxed`, as [`Arena::set`].
    pub(crate) fn copy(&self, from: usize, to: usize, n: usize) {
        self.copy_from(self, from, to, n);
    }

    /// Copies `n` words from `from` in `src` to `to` in this arena (writer only; both in
    /// bounds). `Relaxed`, as [`Arena::set`].
    pub(crate) fn copy_from(&self, src: &Arena, from: usize, to: usize, n: usize) {
        src.read_memory();
        for (d, s) in self.words[to..to + n]
            .iter()
            .zip(&src.words[from..from + n])
        {
            d.store(s.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// The published root index, loaded with `Acquire` so that the blocks it names are
    /// visible.
    #[inline(always)]
    pub(crate) fn root(&self) -> usize {
        self.read_memory();
        self.root.load(Ordering::Acquire) as usize
    }

    /// Publishes a root: every block written before this store is visible to a reader
    /// that loads it. `root` must name a whole root block inside this arena: readers
    /// index it without a bounds check (`lookup::entry_at`). So must the 0 an arena starts
    /// with: the writer makes every arena at least a root block long.
    pub(crate) fn publish_root(&self, root: usize) {
        self.root.store(root as u64, Ordering::Release);
    }

    /// Bytes of memory this arena holds.
    pub(crate) fn bytes(&self) -> usize {
        self.words.bytes() + std::mem::size_of::<Self>()
    }
}

/// Under loom, freeing an arena writes its memory: loom panics with a causality violation
/// unless every load from the arena (by any thread) happens before the free. Not while
/// unwinding from a failed model, whose threads may still be running: a second panic in a
/// destructor would abort the test binary.
#[cfg(loom)]
impl Drop for Arena {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.memory.with_mut(|_| ());
        }
    }
}

/// The word an out-of-bounds read gives: out of line and cold, so that a lookup's
/// in-bounds loads fall through.
#[cold]
#[inline(never)]
fn out_of_bounds() -> u64 {
    0
}

/// What every handle of one Fib shares: the current arena, the retired ones, and the
/// recycling counter.
pub(crate) struct Shared {
    /// Bumped before the writer reuses detached blocks (see the module docs).
    recycled: AtomicU64,
    /// The arena readers walk. Owned (a `Box` turned raw); replaced only by the writer.
    arena: AtomicPtr<Arena>,
    /// Arenas replaced by a bigger one, kept until the last handle drops because a reader
    /// may still be walking them. Touched by the writer (and by `Drop`) only.
    /// Boxed: readers hold pointers to the `Arena` itself (its `root`), which must not
    /// move when the vector grows.
    #[allow(clippy::vec_box)]
    retired: Mutex<Vec<Box<Arena>>>,
}

impl Shared {
    /// Shared state around a first arena.
    pub(crate) fn new(arena: Box<Arena>) -> Self {
        Self {
            recycled: AtomicU64::new(0),
            arena: AtomicPtr::new(Box::into_raw(arena)),
            retired: Mutex::new(Vec::new()),
        }
    }

    /// The current arena.
    ///
    /// `Acquire`: pairs with the `Release` in `Shared::swap_arena`, so the copied
    /// words are visible.
    #[inline(always)]
    pub(crate) fn arena(&self) -> &Arena {
        let p = self.arena.load(Ordering::Acquire);
        // SAFETY: `arena` always holds a pointer from `Box::into_raw`. A replaced arena is
        // either moved to `retired`, which lives as long as `self`, or freed (or taken
        // out) at once by `replace_arena_alone` or `take_arena_alone`, which take
        // `&mut self` and so cannot run while this borrow of `self` lives: the pointee
        // outlives the borrow.
        unsafe { &*p }
    }

    /// Runs `walk` on the published root until it ran without a recycling bump inside it,
    /// and returns its result.
    ///
    /// The first walk is inline and straight-line; the retries (rare: a bump must land
    /// inside the walk) are out of line, so that a caller's loop around a lookup keeps
    /// no backward edge of its own and its registers.
    #[inline(always)]
    pub(crate) fn read<R>(&self, mut walk: impl FnMut(&Arena, usize) -> R) -> R {
        let (r, clean) = self.try_read(&mut walk);
        if clean {
            r
        } else {
            self.read_again(walk)
        }
    }

    /// One walk, and whether no recycling bump can have landed inside it.
    #[inline(always)]
    fn try_read<R>(&self, walk: &mut impl FnMut(&Arena, usize) -> R) -> (R, bool) {
        // Acquire: a reader that sees a bump sees the publish that preceded it.
        let before = self.recycled.load(Ordering::Acquire);
        let arena = self.arena();
        let r = walk(arena, arena.root());
        // Acquire fence: if the walk read a word written after a bump, the bump is
        // visible to the load below.
        fence(Ordering::Acquire);
        #[cfg(not(rtm_negative = "fib-no-recheck"))]
        let clean = self.recycled.load(Ordering::Relaxed) == before;
        #[cfg(rtm_negative = "fib-no-recheck")]
        let clean = {
            let _ = before;
            true
        };
        (r, clean)
    }

    /// [`Shared::read`]'s retries, after a walk that a bump may have spoiled.
    #[cold]
    #[inline(never)]
    fn read_again<R>(&self, mut walk: impl FnMut(&Arena, usize) -> R) -> R {
        loop {
            if let (r, true) = self.try_read(&mut walk) {
                return r;
            }
        }
    }

    /// Announces that detached blocks are about to be reused (writer only). Every store
    /// into those blocks must come after this call.
    pub(crate) fn bump_recycled(&self) {
        let n = self.recycled.load(Ordering::Relaxed);
        // Release: orders the publishes that detached the blocks before the bump.
        self.recycled.store(n + 1, Ordering::Release);
        // Release fence: orders the bump before the writes into reused blocks that follow.
        fence(Ordering::Release);
    }

    /// Makes `bigger` (a copy of the current arena) the one readers walk (writer only),
    /// and retires the old one: a reader may still be walking it, so it is kept until the
    /// last handle drops.
    pub(crate) fn retire_arena(&self, bigger: Box<Arena>) {
        let old = self.swap_arena(bigger);
        self.retired
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(old);
    }

    /// Makes `bigger` the arena and frees the old one at once. The `&mut` is the proof
    /// that no reader can be walking it: the writer got it from `Arc::get_mut`, whose
    /// `Acquire` synchronizes with the `Release` decrement of every dropped reader handle,
    /// so each reader's last loads from the old arena happen before it is freed.
    #[cfg_attr(rtm_negative = "fib-strong-count", allow(dead_code))] // unused by the control
    pub(crate) fn replace_arena_alone(&mut self, bigger: Box<Arena>) {
        drop(self.swap_arena(bigger));
    }

    /// As [`Shared::replace_arena_alone`], through a shared reference: for the
    /// `fib-strong-count` negative control only, which frees after a `Relaxed`
    /// `strong_count(..) == 1` that proves nothing about a dropped reader's loads.
    #[cfg(rtm_negative = "fib-strong-count")]
    pub(crate) fn replace_arena_unordered(&self, bigger: Box<Arena>) {
        drop(self.swap_arena(bigger));
    }

    /// Takes the arena out (the writer's handle is the only one, as the `&mut` proves;
    /// see [`Shared::replace_arena_alone`]), leaving an empty one of `geometry` behind.
    pub(crate) fn take_arena_alone(&mut self) -> Box<Arena> {
        let g = self.arena().geometry();
        self.swap_arena(Arena::new(2, g))
    }

    /// Swaps `bigger` in as the arena; returns the old one.
    fn swap_arena(&self, bigger: Box<Arena>) -> Box<Arena> {
        // Release: the copied words are visible to a reader that loads the new pointer.
        let old = self.arena.swap(Box::into_raw(bigger), Ordering::Release);
        // SAFETY: `old` came from `Box::into_raw` and is no longer reachable through
        // `arena`; it is owned here exactly once.
        unsafe { Box::from_raw(old) }
    }

    /// Bytes held by the current and the retired arenas.
    pub(crate) fn bytes(&self) -> usize {
        let retired: usize = self
            .retired
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|a| a.bytes())
            .sum();
        self.arena().bytes() + retired + std::mem::size_of::<Self>()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let p = self.arena.load(Ordering::Relaxed);
        // SAFETY: `p` came from `Box::into_raw`, and `&mut self` means no reader is left.
        drop(unsafe { Box::from_raw(p) });
    }
}

//! The slot array: one slot per open enumeration, feed or handle, each with a state word,
//! the snapshot it pins and (for handles) its cursor; and the set of free slots.
//!
//! A slot's state word is `generation << 3 | state` (the states and their moves are in
//! `handles` for handle slots and `registration` for the others). A slot whose generation
//! would pass the table's last one is retired instead of reused.
//!
//! Free slots are a bitmap, one bit per slot, handed out next-fit: an open scans from
//! where the previous one stopped, so a steady open/close load rotates over all free slots
//! instead of wearing out one. A bitmap has no ABA problem (a word's value is the whole
//! state of its 64 slots, so a CAS that succeeds on a value that changed and changed back
//! is still right), hence no tag to outrun. The scan reads at most `n / 64` words (64 for
//! the largest table), and only when the slots near the last one taken are all in use.

use crate::handle::{IdLease, SERIALS};
use std::ptr;

use crate::sync::{AtomicPtr, AtomicU64, AtomicUsize, Ordering, UnsafeCell};

/// Slots per segment of the array: one word of the free bitmap. A segment is allocated
/// when one of its slots is first taken, so a table that never opens an enumeration holds
/// none, and one that opens a few holds one.
const SEGMENT: usize = 64;

pub(super) const FREE: u64 = 0;
pub(super) const INIT: u64 = 1;
pub(super) const IDLE: u64 = 2;
pub(super) const BUSY: u64 = 3;
pub(super) const CLOSED: u64 = 4;
pub(super) const OWNED: u64 = 5;
pub(super) const RETIRED: u64 = 6;
pub(super) const STATE_BITS: u32 = 3;
pub(super) const STATE_MASK: u64 = (1 << STATE_BITS) - 1;

/// `pinned` of a slot that pins nothing.
pub(super) const NONE: u64 = u64::MAX;

/// Set in `pinned` when the slot is a feed's: the value below it is the feed's *floor*
/// (every change after it is still to be read), and the reclaimer keeps every version
/// newer than the floor, not only the one the floor sees (see `reclaim`).
pub(super) const FEED: u64 = 1 << 63;

#[inline]
pub(super) fn word(gen: u64, state: u64) -> u64 {
    gen << STATE_BITS | state
}

#[inline]
pub(super) fn gen_of(w: u64) -> u64 {
    w >> STATE_BITS
}

/// Who uses a slot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// An RAII [`Enumeration`](crate::Enumeration) (or anything else that keeps its cursor
    /// itself). It uses no generation.
    Owned,
    /// An [`EnumHandle`](crate::EnumHandle), whose cursor lives in the slot.
    Handle,
}

/// One slot: its state word, the snapshot it pins, and a handle's cursor (boxed: only
/// handles keep one here, so a slot is three words and a segment of them 1.5 KiB).
pub(super) struct Slot<C> {
    pub(super) state: AtomicU64,
    pub(super) pinned: AtomicU64,
    pub(super) cursor: UnsafeCell<Option<Box<C>>>,
}

/// The slot array, its free set and the reclaimer's announced horizon.
pub(crate) struct Slots<C> {
    /// Segments of [`SEGMENT`] slots (the last may be shorter), null until first used.
    segments: Box<[AtomicPtr<Slot<C>>]>,
    /// How many slots.
    n: usize,
    /// Bit `i % 64` of word `i / 64` is set while slot `i` is free.
    pub(super) free: Box<[AtomicU64]>,
    /// Where the next open starts looking: one past the slot taken last. A hint only.
    pub(super) hint: AtomicUsize,
    /// The clock value the reclaimer announced last (invariant 3).
    pub(super) horizon: AtomicU64,
    pub(super) open: AtomicUsize,
    pub(super) retired: AtomicUsize,
    /// The table id and the serial floor of this table's handles.
    pub(super) lease: IdLease,
    /// The first generation of every slot: its serials are all at or above the floor.
    pub(super) first_gen: u64,
    /// One past the last generation a slot may use: `gen * n + slot < 2^52`.
    pub(super) gen_limit: u64,
    /// `log2(n)` when `n` is a power of two (the default 1024 is): then a handle decodes
    /// with a mask and a shift instead of a 64-bit division.
    pub(super) shift: Option<u32>,
}

impl<C> Slots<C> {
    pub(crate) fn new(n: usize) -> Self {
        let lease = IdLease::acquire();
        let n = n.max(1);
        let gen_limit = SERIALS / n as u64;
        let first_gen = lease.floor.div_ceil(n as u64);
        let segments = (0..n.div_ceil(SEGMENT))
            .map(|_| AtomicPtr::new(ptr::null_mut()))
            .collect();
        let free = (0..n.div_ceil(64))
            .map(|w| {
                let bits = (n - 64 * w).min(64);
                AtomicU64::new(if bits == 64 { !0 } else { (1 << bits) - 1 })
            })
            .collect();
        Self {
            segments,
            n,
            free,
            hint: AtomicUsize::new(0),
            horizon: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            retired: AtomicUsize::new(0),
            lease,
            first_gen,
            gen_limit,
            shift: n.is_power_of_two().then(|| n.trailing_zeros()),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// Slots in segment `k`.
    #[inline]
    fn segment_len(&self, k: usize) -> usize {
        (self.n - SEGMENT * k).min(SEGMENT)
    }

    /// Slot `i`, if its segment was ever allocated (a slot never taken is free at the
    /// first generation, and nothing can have pinned anything in it).
    #[inline]
    pub(super) fn slot(&self, i: usize) -> Option<&Slot<C>> {
        // Acquire pairs with the publishing CAS in `alloc_segment`: the slots are
        // initialized before we read them.
        let seg = self.segments.get(i / SEGMENT)?.load(Ordering::Acquire);
        // SAFETY: a non-null entry points to the first of `segment_len` initialized slots
        // that live until the array is dropped, and `i % SEGMENT` is below that length
        // (`i < n`, the only indices the table forms, since `locate` reduces mod `n`).
        (!seg.is_null()).then(|| unsafe { &*seg.add(i % SEGMENT) })
    }

    /// Slot `i`, which the caller took from the free set (so its segment exists).
    #[inline]
    pub(super) fn owned(&self, i: usize) -> &Slot<C> {
        match self.slot(i) {
            Some(s) => s,
            None => unreachable!("slot {i} was taken, so its segment was allocated"),
        }
    }

    /// Every allocated slot, with its index.
    pub(super) fn allocated(&self) -> impl Iterator<Item = (usize, &Slot<C>)> {
        (0..self.segments.len()).flat_map(move |k| {
            // Acquire: as in `slot`.
            let seg = self.segments[k].load(Ordering::Acquire);
            let len = if seg.is_null() {
                0
            } else {
                self.segment_len(k)
            };
            // SAFETY: as in `slot`: `j < len`, the segment's length.
            (0..len).map(move |j| (k * SEGMENT + j, unsafe { &*seg.add(j) }))
        })
    }

    /// Allocates segment `k` if no one has yet.
    fn alloc_segment(&self, k: usize) {
        if !self.segments[k].load(Ordering::Acquire).is_null() {
            return;
        }
        let first_gen = self.first_gen;
        let fresh: Box<[Slot<C>]> = (0..self.segment_len(k))
            .map(|_| Slot {
                state: AtomicU64::new(word(first_gen, FREE)),
                pinned: AtomicU64::new(NONE),
                cursor: UnsafeCell::new(None),
            })
            .collect();
        let fresh = Box::into_raw(fresh).cast::<Slot<C>>();
        // Release publishes the initialized slots; a loser frees its own segment.
        if self.segments[k]
            .compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // SAFETY: `fresh` was never published, so it is ours alone; it came from a
            // boxed slice of `segment_len(k)` slots.
            drop(unsafe {
                Box::from_raw(ptr::slice_from_raw_parts_mut(fresh, self.segment_len(k)))
            });
        }
    }

    /// Bytes the array holds now: its directory, free set and allocated segments.
    pub(crate) fn bytes(&self) -> usize {
        let segs = self
            .segments
            .iter()
            // Relaxed: a statistic.
            .filter(|s| !s.load(Ordering::Relaxed).is_null())
            .count();
        std::mem::size_of_val(&*self.segments)
            + std::mem::size_of_val(&*self.free)
            + segs * SEGMENT * std::mem::size_of::<Slot<C>>()
    }

    pub(crate) fn open_count(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    pub(crate) fn retired_count(&self) -> usize {
        self.retired.load(Ordering::Relaxed)
    }

    /// The table's id (0: none, so no handles).
    pub(crate) fn table_id(&self) -> u64 {
        self.lease.id as u64
    }

    /// Takes a free slot: next fit from `hint`, wrapping once.
    pub(super) fn take_free(&self) -> Option<usize> {
        let n = self.n;
        let words = self.free.len();
        // No division on this path: the hint is kept below `n` + 1, and words wrap by
        // subtraction.
        let start = match self.hint.load(Ordering::Relaxed) {
            h if h < n => h,
            _ => 0,
        };
        let (w0, b0) = (start / 64, start % 64);
        for k in 0..=words {
            let w = if w0 + k < words {
                w0 + k
            } else {
                w0 + k - words
            };
            // The first word from `start` on; the same word again at the end, below it.
            let mask = if k == 0 {
                !0u64 << b0
            } else if k == words {
                (1u64 << b0).wrapping_sub(1)
            } else {
                !0
            };
            let word = &self.free[w];
            // Acquire: we then own the slot, whose last release (Release `fetch_or`)
            // must be visible to us.
            let mut cur = word.load(Ordering::Acquire) & mask;
            while cur != 0 {
                let bit = 1u64 << cur.trailing_zeros();
                let before = word.fetch_and(!bit, Ordering::Acquire);
                if before & bit != 0 {
                    let i = w * 64 + bit.trailing_zeros() as usize;
                    // Relaxed: a hint for the next open; any value is safe.
                    self.hint.store(i + 1, Ordering::Relaxed);
                    self.alloc_segment(i / SEGMENT);
                    return Some(i);
                }
                // Another open took it: try the next free bit of this word.
                cur = before & mask & !bit;
            }
        }
        None
    }

    pub(super) fn put_free(&self, i: usize) {
        // Release: the slot's reset (state, cursor) happens before its next owner takes it.
        self.free[i / 64].fetch_or(1 << (i % 64), Ordering::Release);
    }

    /// Releases a slot held by its caller (state OWNED, CLOSED taken by a close from IDLE,
    /// or BUSY/CLOSED held by the handle call that a close met in flight). A handle's slot
    /// moves to the next generation; an owned one keeps its generation.
    pub(super) fn release(&self, i: usize, gen: u64, kind: Kind) {
        let slot = self.owned(i);
        // The caller holds the slot exclusively: OWNED by an Enumeration being closed,
        // CLOSED by this thread's CAS, or BUSY taken by this thread's call and CLOSED by a
        // close since. No other call or close touches the cursor until the slot is FREE
        // again and taken by a new owner.
        // SAFETY: exclusive access to the cursor, as just argued.
        slot.cursor.with_mut(|p| unsafe { *p = None });
        // Release: the reclaimer must not see the slot unpinned before our reads under it.
        slot.pinned.store(NONE, Ordering::Release);
        self.open.fetch_sub(1, Ordering::Relaxed);
        let next = match kind {
            Kind::Owned => gen,
            Kind::Handle => gen + 1,
        };
        if next < self.gen_limit {
            slot.state.store(word(next, FREE), Ordering::Release);
            self.put_free(i);
        } else {
            // The next generation would leave the serial space: retire the slot so that
            // no handle value repeats.
            slot.state.store(word(gen, RETIRED), Ordering::Release);
            self.retired.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl<C> Drop for Slots<C> {
    fn drop(&mut self) {
        // Raise the id's floor past every serial this table issued: a handle of a slot in
        // a handle state was issued under the slot's generation; a free, owned or never
        // used slot only under earlier ones (none if it is still at `first_gen`).
        let n = self.n as u64;
        let used = self
            .allocated()
            .map(|(i, s)| {
                let w = s.state.load(Ordering::Relaxed);
                let gen = gen_of(w);
                match w & STATE_MASK {
                    FREE | OWNED | INIT if gen == self.first_gen => 0,
                    FREE | OWNED | INIT => gen * n,
                    _ => gen * n + i as u64 + 1,
                }
            })
            .max()
            .unwrap_or(0);
        self.lease.release(used);
        for k in 0..self.segments.len() {
            let seg = self.segments[k].load(Ordering::Relaxed);
            if !seg.is_null() {
                // SAFETY: `&mut self`: no other thread uses the array; the segment came
                // from a boxed slice of `segment_len(k)` slots and is freed once.
                drop(unsafe {
                    Box::from_raw(ptr::slice_from_raw_parts_mut(seg, self.segment_len(k)))
                });
            }
        }
    }
}

impl<C> Slots<C> {
    /// Moves a free slot to its last generation; for the retirement test only.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn force_last_generation(&self, i: usize) {
        self.alloc_segment(i / SEGMENT);
        let s = self.owned(i);
        assert_eq!(s.state.load(Ordering::Relaxed) & STATE_MASK, FREE);
        s.state
            .store(word(self.gen_limit - 1, FREE), Ordering::Relaxed);
    }
}

// SAFETY: the cursors in the slots are only touched by the thread that owns the slot by
// the state protocol above (INIT by the opener, BUSY by one call); everything else is
// atomic. Cursors move between threads with their slot, hence `C: Send`.
unsafe impl<C: Send> Sync for Slots<C> {}
// SAFETY: as above; the slots own their cursors.
unsafe impl<C: Send> Send for Slots<C> {}

//! The snapshot slots: a fixed array, one slot per open enumeration, each holding the
//! snapshot it pins and (for handles) its cursor.
//!
//! A slot's state word is `generation << 32 | state`. The generation grows by one each
//! time the slot is released, so a handle (which carries the generation it was issued
//! with) can never reach a later enumeration of the same slot (invariant 4). A slot whose
//! generation would wrap is retired instead of reused.
//!
//! Handle slots move `FREE → INIT → IDLE ⇄ BUSY`, then `IDLE | BUSY → CLOSED → FREE`
//! (next generation). A call on a handle first CASes `IDLE → BUSY` with the handle's
//! generation: only then may it touch the cursor. `close` on an `IDLE` handle CASes
//! `IDLE → CLOSED` and releases the slot; `close` on a `BUSY` handle CASes
//! `BUSY → CLOSED`, and the call in flight, which was linearized before the close,
//! releases the slot when it finishes. Either way the winning close leaves the slot
//! `CLOSED`, where every other close and call fails, until it is `FREE` under the next
//! generation. So exactly one close wins, and no call that starts after a close reaches
//! the cursor.

use crate::sync::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering, UnsafeCell};
use crate::version::Clock;

const FREE: u64 = 0;
const INIT: u64 = 1;
const IDLE: u64 = 2;
const BUSY: u64 = 3;
const CLOSED: u64 = 4;
const OWNED: u64 = 5;
const RETIRED: u64 = 6;

/// `pinned` of a slot that pins nothing.
const NONE: u64 = u64::MAX;

/// Set in `pinned` when the slot is a feed's: the value below it is the feed's *floor*
/// (every change after it is still to be read), and the reclaimer keeps every version
/// newer than the floor, not only the one the floor sees (see `reclaim`).
const FEED: u64 = 1 << 63;

/// What the reclaimer found in the slots.
#[derive(Debug, Clone)]
pub(crate) struct Scan {
    /// The clock value it announced.
    pub(crate) now: u64,
    /// Snapshots pinned at or below `now`, sorted, deduplicated.
    pub(crate) pinned: Vec<u64>,
    /// The lowest feed floor, each raised to at least `now - journal capacity` (a feed
    /// further behind has lost changes and will find out), or `now` when no feed is open.
    pub(crate) floor: u64,
}

#[inline]
fn word(gen: u32, state: u64) -> u64 {
    (gen as u64) << 32 | state
}

/// Who uses a slot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// An RAII [`Enumeration`](crate::Enumeration), which keeps its cursor itself.
    Owned,
    /// An [`EnumHandle`](crate::EnumHandle), whose cursor lives in the slot.
    Handle,
}

struct Slot<C> {
    state: AtomicU64,
    pinned: AtomicU64,
    next_free: AtomicU32,
    cursor: UnsafeCell<Option<C>>,
}

/// The slot array, its free list and the reclaimer's announced horizon.
pub(crate) struct Slots<C> {
    slots: Box<[Slot<C>]>,
    /// Treiber stack of free slots: `tag << 32 | (index + 1)`, 0 when empty.
    free: AtomicU64,
    /// The clock value the reclaimer announced last (invariant 3).
    horizon: AtomicU64,
    open: AtomicUsize,
    retired: AtomicUsize,
}

/// Why a handle call failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Stale;

impl<C> Slots<C> {
    pub(crate) fn new(n: usize) -> Self {
        let slots: Box<[Slot<C>]> = (0..n)
            .map(|i| Slot {
                state: AtomicU64::new(word(1, FREE)),
                pinned: AtomicU64::new(NONE),
                // slot i links to slot i + 1; the last one ends the list
                next_free: AtomicU32::new(if i + 1 < n { i as u32 + 2 } else { 0 }),
                cursor: UnsafeCell::new(None),
            })
            .collect();
        Self {
            slots,
            free: AtomicU64::new(if n > 0 { 1 } else { 0 }),
            horizon: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            retired: AtomicUsize::new(0),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn open_count(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    pub(crate) fn retired_count(&self) -> usize {
        self.retired.load(Ordering::Relaxed)
    }

    fn pop_free(&self) -> Option<usize> {
        // Acquire: we read the popped slot's `next_free` and then own the slot, whose
        // last release (Release push) must be visible.
        let mut head = self.free.load(Ordering::Acquire);
        loop {
            let idx = (head & 0xffff_ffff) as usize;
            if idx == 0 {
                return None;
            }
            let next = self.slots[idx - 1].next_free.load(Ordering::Relaxed) as u64;
            let new = ((head >> 32).wrapping_add(1)) << 32 | next;
            // The tag in the high half makes an ABA on the head fail the CAS.
            match self
                .free
                .compare_exchange_weak(head, new, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => return Some(idx - 1),
                Err(h) => head = h,
            }
        }
    }

    fn push_free(&self, i: usize) {
        let mut head = self.free.load(Ordering::Relaxed);
        loop {
            self.slots[i]
                .next_free
                .store((head & 0xffff_ffff) as u32, Ordering::Relaxed);
            let new = ((head >> 32).wrapping_add(1)) << 32 | (i as u64 + 1);
            // Release: the slot's reset (state, cursor) happens before its next owner pops it.
            match self
                .free
                .compare_exchange_weak(head, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(h) => head = h,
            }
        }
    }

    /// Takes a free slot, registers a snapshot in it (invariant 3), and makes it usable by
    /// `kind`; for handles `make` builds the cursor from the snapshot. Returns the slot,
    /// its generation and the snapshot, or `None` when every slot is taken.
    pub(crate) fn open(
        &self,
        kind: Kind,
        clock: &Clock,
        make: impl FnOnce(u64) -> Option<C>,
    ) -> Option<(usize, u32, u64)> {
        let i = self.pop_free()?;
        let slot = &self.slots[i];
        let gen = (slot.state.load(Ordering::Relaxed) >> 32) as u32;
        slot.state.store(word(gen, INIT), Ordering::Relaxed);
        let snapshot = self.register(slot, clock, 0);
        let state = match kind {
            Kind::Owned => OWNED,
            Kind::Handle => {
                let c = make(snapshot);
                // SAFETY: the slot is INIT and popped from the free list by us: no handle
                // call can take it (they need IDLE), so we are its only user.
                slot.cursor.with_mut(|p| unsafe { *p = c });
                IDLE
            }
        };
        self.open.fetch_add(1, Ordering::Relaxed);
        // Release: a handle call that CASes IDLE -> BUSY (Acquire) sees the cursor.
        slot.state.store(word(gen, state), Ordering::Release);
        Some((i, gen, snapshot))
    }

    /// Pins the current clock value in `slot` so that no reclaimer prunes what it sees.
    ///
    /// The reader stores its snapshot, then reads the reclaimer's announcement; the
    /// reclaimer announces, then reads the slots (store buffering). Each side puts a SeqCst
    /// fence between its write and its read, and the two fences are ordered in the single
    /// total order of SeqCst operations. If the reader's fence comes first, the
    /// reclaimer's scan, after its own fence, sees the snapshot; otherwise the reader's
    /// horizon load sees the announcement and the reader retries with a newer clock value,
    /// which is at least the announced one (the announcement's Release RMW and the
    /// horizon's Acquire load order the reclaimer's clock read before ours). A retry happens
    /// only when a reclaimer announced meanwhile.
    ///
    /// The fences, not SeqCst accesses, carry the argument: it then rests on the fence
    /// rules alone, which is also what loom checks (it models SeqCst fences, but treats
    /// SeqCst loads and stores as Acquire and Release, so with SeqCst accesses alone it
    /// finds a reader and a reclaimer that both miss each other).
    fn register(&self, slot: &Slot<C>, clock: &Clock, tag: u64) -> u64 {
        loop {
            let s = clock.now();
            // Relaxed: the fence below orders this store before the horizon load.
            slot.pinned.store(s | tag, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            #[cfg(feature = "negative-no-horizon-recheck")]
            {
                return s;
            }
            #[cfg(not(feature = "negative-no-horizon-recheck"))]
            if self.horizon.load(Ordering::SeqCst) <= s {
                return s;
            }
        }
    }

    /// The last announced horizon. A reader that read at `s` without registering (a
    /// lookup) checks, after a SeqCst fence, that no reclaimer announced past `s` while it
    /// read; see `RouteTable::read_at_now`.
    #[inline]
    pub(crate) fn horizon(&self) -> u64 {
        self.horizon.load(Ordering::SeqCst)
    }

    /// The reclaimer's side of invariant 3: announces the clock value `now`, then collects
    /// the snapshots pinned at or below it and the feeds' floors (see [`Scan`]).
    pub(crate) fn announce_and_scan(&self, clock: &Clock, journal_capacity: u64) -> Scan {
        let now = clock.now();
        self.horizon.fetch_max(now, Ordering::SeqCst);
        // Orders the announcement before the scan; see `register`.
        fence(Ordering::SeqCst);
        let mut pinned = Vec::new();
        let mut floor = now;
        let oldest_kept = now.saturating_sub(journal_capacity);
        for slot in self.slots.iter() {
            let p = slot.pinned.load(Ordering::SeqCst);
            if p == NONE {
                continue;
            }
            if p & FEED != 0 {
                floor = floor.min((p & !FEED).max(oldest_kept));
            } else if p <= now {
                pinned.push(p);
            }
        }
        pinned.sort_unstable();
        pinned.dedup();
        Scan { now, pinned, floor }
    }

    /// Opens a feed's slot with its floor at a fresh clock value (registered as a snapshot
    /// is, invariant 3). Returns the slot, its generation and the floor.
    pub(crate) fn open_feed(&self, clock: &Clock) -> Option<(usize, u32, u64)> {
        let i = self.pop_free()?;
        let slot = &self.slots[i];
        let gen = (slot.state.load(Ordering::Relaxed) >> 32) as u32;
        slot.state.store(word(gen, INIT), Ordering::Relaxed);
        let floor = self.register(slot, clock, FEED);
        self.open.fetch_add(1, Ordering::Relaxed);
        slot.state.store(word(gen, OWNED), Ordering::Release);
        Some((i, gen, floor))
    }

    /// Opens a feed's slot with its floor at `s`, the snapshot of an enumeration that is
    /// registered and open (`subscribe`). `Ok(None)`: no free slot. `Err(())`: a reclaimer
    /// announced past `s` before the floor was visible, so it may have pruned a version
    /// newer than `s` that the feed needs; the slot is released, and the caller starts
    /// over with a fresh snapshot.
    #[allow(clippy::result_unit_err)]
    pub(crate) fn open_feed_at(&self, s: u64) -> Result<Option<(usize, u32)>, ()> {
        let Some(i) = self.pop_free() else {
            return Ok(None);
        };
        let slot = &self.slots[i];
        let gen = (slot.state.load(Ordering::Relaxed) >> 32) as u32;
        slot.state.store(word(gen, INIT), Ordering::Relaxed);
        // Relaxed, then a fence: the same store-buffering argument as `register`.
        slot.pinned.store(s | FEED, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        self.open.fetch_add(1, Ordering::Relaxed);
        slot.state.store(word(gen, OWNED), Ordering::Release);
        if self.horizon.load(Ordering::SeqCst) <= s {
            Ok(Some((i, gen)))
        } else {
            self.close_owned(i, gen);
            Err(())
        }
    }

    /// Moves a feed's floor forward to `floor`: it has read every change up to it.
    #[inline]
    pub(crate) fn advance_feed(&self, i: usize, floor: u64) {
        // Release: the feed's reads of versions at or below the old floor happen before a
        // reclaimer that reads the new floor (SeqCst load, which acquires) prunes them.
        self.slots[i].pinned.store(floor | FEED, Ordering::Release);
    }

    /// Releases a slot held by its caller (state OWNED, CLOSED taken by a close from IDLE,
    /// or BUSY/CLOSED held by the handle call that a close met in flight).
    fn release(&self, i: usize, gen: u32) {
        let slot = &self.slots[i];
        // The caller holds the slot exclusively: OWNED by an Enumeration being closed,
        // CLOSED by this thread's CAS, or BUSY taken by this thread's call and CLOSED by a
        // close since. No other call or close touches the cursor until the slot is FREE
        // again and popped by a new owner.
        // SAFETY: exclusive access to the cursor, as just argued.
        slot.cursor.with_mut(|p| unsafe { *p = None });
        // Release: the reclaimer must not see the slot unpinned before our reads under it.
        slot.pinned.store(NONE, Ordering::Release);
        self.open.fetch_sub(1, Ordering::Relaxed);
        match gen.checked_add(1) {
            Some(next) => {
                slot.state.store(word(next, FREE), Ordering::Release);
                self.push_free(i);
            }
            None => {
                // The generation would wrap: retire the slot so no handle value repeats.
                slot.state.store(word(gen, RETIRED), Ordering::Release);
                self.retired.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Closes an RAII enumeration's slot.
    pub(crate) fn close_owned(&self, i: usize, gen: u32) {
        debug_assert_eq!(
            self.slots[i].state.load(Ordering::Relaxed),
            word(gen, OWNED)
        );
        self.release(i, gen);
    }

    #[inline]
    fn handle_gen(&self, i: usize, gen: u32) -> u32 {
        #[cfg(feature = "negative-no-generation-check")]
        {
            // Broken on purpose: trust whatever generation the slot has now.
            let _ = gen;
            (self.slots[i].state.load(Ordering::Relaxed) >> 32) as u32
        }
        #[cfg(not(feature = "negative-no-generation-check"))]
        {
            let _ = i;
            gen
        }
    }

    /// Runs `f` on the cursor of handle `(i, gen)`, or fails if the handle is not open and
    /// idle (closed, stale, RAII, or in use by another call).
    pub(crate) fn with_handle<R>(
        &self,
        i: usize,
        gen: u32,
        f: impl FnOnce(&mut C) -> R,
    ) -> Result<R, Stale> {
        let slot = self.slots.get(i).ok_or(Stale)?;
        let gen = self.handle_gen(i, gen);
        // Acquire pairs with the Release that made the slot IDLE: we see its cursor.
        slot.state
            .compare_exchange(
                word(gen, IDLE),
                word(gen, BUSY),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .map_err(|_| Stale)?;
        // SAFETY: our CAS moved the slot from IDLE to BUSY under the handle's generation;
        // until we move it back (or release it) no other call may touch the cursor.
        let r = slot.cursor.with_mut(|p| match unsafe { (*p).as_mut() } {
            Some(c) => Ok(f(c)),
            None => Err(Stale),
        });
        // Release: our cursor writes happen before the next call's Acquire CAS.
        match slot.state.compare_exchange(
            word(gen, BUSY),
            word(gen, IDLE),
            Ordering::Release,
            Ordering::Relaxed,
        ) {
            Ok(_) => {}
            Err(_) => {
                // A close arrived while we ran (BUSY -> CLOSED): it is ours to finish.
                self.release(i, gen);
            }
        }
        r
    }

    /// Closes handle `(i, gen)`. Exactly one of racing closes succeeds.
    pub(crate) fn close_handle(&self, i: usize, gen: u32) -> Result<(), Stale> {
        let slot = self.slots.get(i).ok_or(Stale)?;
        let gen = self.handle_gen(i, gen);
        let mut cur = slot.state.load(Ordering::Relaxed);
        loop {
            if cur == word(gen, IDLE) {
                // Take the slot straight to CLOSED, then release it. Not through BUSY: a
                // racing close that met that BUSY would take us for a call in flight, mark
                // the slot CLOSED and report success, and so would we. Acquire pairs with
                // the Release that made the slot IDLE: we see the last call's cursor writes
                // before `release` clears the cursor.
                match slot.state.compare_exchange(
                    cur,
                    word(gen, CLOSED),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        self.release(i, gen);
                        return Ok(());
                    }
                    Err(c) => cur = c,
                }
            } else if cur == word(gen, BUSY) {
                #[cfg(feature = "negative-close-ignores-busy")]
                {
                    // Broken on purpose: release under the running call's feet.
                    if slot
                        .state
                        .compare_exchange(
                            cur,
                            word(gen, CLOSED),
                            Ordering::Acquire,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                    {
                        self.release(i, gen);
                        return Ok(());
                    }
                    cur = slot.state.load(Ordering::Relaxed);
                    continue;
                }
                // The running call finishes the close (see `with_handle`).
                #[cfg(not(feature = "negative-close-ignores-busy"))]
                match slot.state.compare_exchange(
                    cur,
                    word(gen, CLOSED),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Ok(()),
                    Err(c) => cur = c,
                }
            } else {
                return Err(Stale);
            }
        }
    }
}

impl<C> Slots<C> {
    /// Sets a slot's generation; for the wrap-around test only.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn force_generation(&self, i: usize, gen: u32) {
        let s = &self.slots[i];
        assert_eq!(s.state.load(Ordering::Relaxed) as u32 as u64, FREE);
        s.state.store(word(gen, FREE), Ordering::Relaxed);
    }
}

// SAFETY: the cursors in the slots are only touched by the thread that owns the slot by
// the state protocol above (INIT by the opener, BUSY by one call); everything else is
// atomic. Cursors move between threads with their slot, hence `C: Send`.
unsafe impl<C: Send> Sync for Slots<C> {}
// SAFETY: as above; the slots own their cursors.
unsafe impl<C: Send> Send for Slots<C> {}

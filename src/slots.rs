//! The snapshot slots: a fixed array, one slot per open enumeration, each holding the
//! snapshot it pins and (for handles) its cursor.
//!
//! A slot's state word is `generation << 3 | state`. Handle slots move
//! `FREE → INIT → IDLE ⇄ BUSY`, then `IDLE | BUSY → CLOSED → FREE` under the next
//! generation; slots of RAII enumerations (and of anything else that keeps its own cursor)
//! move `FREE → INIT → OWNED → FREE` and keep their generation, so only handles wear a
//! slot out (the arithmetic is in `handle.rs`). A handle carries the generation it was
//! issued with, so it can never reach a later enumeration of the same slot (invariant 4);
//! a slot whose generation would pass the table's last one is retired instead of reused.
//!
//! A call on a handle first CASes `IDLE → BUSY` with the handle's generation: only then may
//! it touch the cursor. A call that finds the slot `BUSY` under the handle's generation
//! fails with `Busy` (another call holds the cursor; the handle stays valid), any other
//! state with `Stale`. The call puts the slot back `BUSY → IDLE` when it is done, also when
//! the embedder's `Clone` panics under it (a drop guard does it while unwinding).
//! `close` on an `IDLE` handle CASes `IDLE → CLOSED` and releases the slot; `close` on a
//! `BUSY` handle CASes `BUSY → CLOSED`, and the call in flight, which was linearized before
//! the close, releases the slot when it finishes (or unwinds). Either way the winning close
//! leaves the slot `CLOSED`, where every other close and call fails, until it is `FREE`
//! under the next generation. So exactly one close wins, and no call that starts after a
//! close reaches the cursor.
//!
//! Free slots are a bitmap, one bit per slot, handed out next-fit: an open scans from
//! where the previous one stopped, so a steady open/close load rotates over all free slots
//! instead of wearing out one. A bitmap has no ABA problem (a word's value is the whole
//! state of its 64 slots, so a CAS that succeeds on a value that changed and changed back
//! is still right), hence no tag to outrun. The scan reads at most `n / 64` words (64 for
//! the largest table), and only when the slots near the last one taken are all in use.

use crate::error::Error;
use crate::handle::{EnumHandle, IdLease, SERIALS};
use crate::sync::{fence, AtomicU64, AtomicUsize, Ordering, UnsafeCell};
use crate::version::Clock;

const FREE: u64 = 0;
const INIT: u64 = 1;
const IDLE: u64 = 2;
const BUSY: u64 = 3;
const CLOSED: u64 = 4;
const OWNED: u64 = 5;
const RETIRED: u64 = 6;
const STATE_BITS: u32 = 3;
const STATE_MASK: u64 = (1 << STATE_BITS) - 1;

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
fn word(gen: u64, state: u64) -> u64 {
    gen << STATE_BITS | state
}

#[inline]
fn gen_of(w: u64) -> u64 {
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

struct Slot<C> {
    state: AtomicU64,
    pinned: AtomicU64,
    cursor: UnsafeCell<Option<C>>,
}

/// The slot array, its free set and the reclaimer's announced horizon.
pub(crate) struct Slots<C> {
    slots: Box<[Slot<C>]>,
    /// Bit `i % 64` of word `i / 64` is set while slot `i` is free.
    free: Box<[AtomicU64]>,
    /// Where the next open starts looking: one past the slot taken last. A hint only.
    hint: AtomicUsize,
    /// The clock value the reclaimer announced last (invariant 3).
    horizon: AtomicU64,
    open: AtomicUsize,
    retired: AtomicUsize,
    /// The table id and the serial floor of this table's handles.
    lease: IdLease,
    /// The first generation of every slot: its serials are all at or above the floor.
    first_gen: u64,
    /// One past the last generation a slot may use: `gen * n + slot < 2^52`.
    gen_limit: u64,
}

/// Why a handle call failed.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) enum HandleError {
    /// Closed, stale, forged, foreign, or an RAII enumeration's slot.
    Stale,
    /// Open, but another call holds its cursor.
    Busy,
}

impl From<HandleError> for Error {
    fn from(e: HandleError) -> Error {
        match e {
            HandleError::Stale => Error::InvalidHandle,
            HandleError::Busy => Error::Busy,
        }
    }
}

/// Puts a handle's slot back when its call ends, normally or by unwinding: `BUSY → IDLE`,
/// or, if a close marked the slot `CLOSED` meanwhile, releases it for the close.
struct CallEnd<'a, C> {
    slots: &'a Slots<C>,
    i: usize,
    gen: u64,
}

impl<C> Drop for CallEnd<'_, C> {
    fn drop(&mut self) {
        let slot = &self.slots.slots[self.i];
        // Release: our cursor writes happen before the next call's Acquire CAS.
        if slot
            .state
            .compare_exchange(
                word(self.gen, BUSY),
                word(self.gen, IDLE),
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_err()
        {
            // A close arrived while we ran (BUSY -> CLOSED): it is ours to finish.
            self.slots.release(self.i, self.gen, Kind::Handle);
        }
    }
}

impl<C> Slots<C> {
    pub(crate) fn new(n: usize) -> Self {
        let lease = IdLease::acquire();
        let n = n.max(1);
        let gen_limit = SERIALS / n as u64;
        let first_gen = lease.floor.div_ceil(n as u64);
        let slots: Box<[Slot<C>]> = (0..n)
            .map(|_| Slot {
                state: AtomicU64::new(word(first_gen, FREE)),
                pinned: AtomicU64::new(NONE),
                cursor: UnsafeCell::new(None),
            })
            .collect();
        let free = (0..n.div_ceil(64))
            .map(|w| {
                let bits = (n - 64 * w).min(64);
                AtomicU64::new(if bits == 64 { !0 } else { (1 << bits) - 1 })
            })
            .collect();
        Self {
            slots,
            free,
            hint: AtomicUsize::new(0),
            horizon: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            retired: AtomicUsize::new(0),
            lease,
            first_gen,
            gen_limit,
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

    /// The table's id (0: none, so no handles).
    pub(crate) fn table_id(&self) -> u64 {
        self.lease.id as u64
    }

    /// The handle of slot `i` under generation `gen`.
    pub(crate) fn handle(&self, i: usize, gen: u64) -> EnumHandle {
        EnumHandle::pack(self.lease.id, gen * self.slots.len() as u64 + i as u64)
    }

    /// The slot and generation a handle names, if it claims to be of this table.
    #[inline]
    fn locate(&self, h: EnumHandle) -> Result<(usize, u64), HandleError> {
        if self.lease.id == 0 || h.table_id() != self.lease.id as u64 {
            return Err(HandleError::Stale);
        }
        let n = self.slots.len() as u64;
        let s = h.serial();
        Ok(((s % n) as usize, s / n))
    }

    /// Takes a free slot: next fit from `hint`, wrapping once.
    fn take_free(&self) -> Option<usize> {
        let n = self.slots.len();
        let words = self.free.len();
        let start = self.hint.load(Ordering::Relaxed) % n;
        let (w0, b0) = (start / 64, start % 64);
        for k in 0..=words {
            let w = (w0 + k) % words;
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
                    return Some(i);
                }
                // Another open took it: try the next free bit of this word.
                cur = before & mask & !bit;
            }
        }
        None
    }

    fn put_free(&self, i: usize) {
        // Release: the slot's reset (state, cursor) happens before its next owner takes it.
        self.free[i / 64].fetch_or(1 << (i % 64), Ordering::Release);
    }

    /// Takes a free slot, registers a snapshot in it (invariant 3), and makes it usable by
    /// `kind`; for handles `make` builds the cursor from the snapshot. Returns the slot,
    /// its generation and the snapshot, or `None` when every slot is taken (or, for a
    /// handle, when the table has no id).
    pub(crate) fn open(
        &self,
        kind: Kind,
        clock: &Clock,
        make: impl FnOnce(u64) -> Option<C>,
    ) -> Option<(usize, u64, u64)> {
        if kind == Kind::Handle && self.lease.id == 0 {
            return None;
        }
        let i = self.take_free()?;
        let slot = &self.slots[i];
        let gen = gen_of(slot.state.load(Ordering::Relaxed));
        slot.state.store(word(gen, INIT), Ordering::Relaxed);
        let snapshot = self.register(slot, clock, 0);
        let state = match kind {
            Kind::Owned => OWNED,
            Kind::Handle => {
                let c = make(snapshot);
                // SAFETY: the slot is INIT and was taken from the free set by us: no handle
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
            #[cfg(rtm_negative = "no-horizon-recheck")]
            {
                return s;
            }
            #[cfg(not(rtm_negative = "no-horizon-recheck"))]
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
    pub(crate) fn open_feed(&self, clock: &Clock) -> Option<(usize, u64, u64)> {
        let i = self.take_free()?;
        let slot = &self.slots[i];
        let gen = gen_of(slot.state.load(Ordering::Relaxed));
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
    pub(crate) fn open_feed_at(&self, s: u64) -> Result<Option<(usize, u64)>, ()> {
        let Some(i) = self.take_free() else {
            return Ok(None);
        };
        let slot = &self.slots[i];
        let gen = gen_of(slot.state.load(Ordering::Relaxed));
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
    /// or BUSY/CLOSED held by the handle call that a close met in flight). A handle's slot
    /// moves to the next generation; an owned one keeps its generation.
    fn release(&self, i: usize, gen: u64, kind: Kind) {
        let slot = &self.slots[i];
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

    /// Closes an RAII enumeration's slot.
    pub(crate) fn close_owned(&self, i: usize, gen: u64) {
        debug_assert_eq!(
            self.slots[i].state.load(Ordering::Relaxed),
            word(gen, OWNED)
        );
        self.release(i, gen, Kind::Owned);
    }

    #[inline]
    fn handle_gen(&self, i: usize, gen: u64) -> u64 {
        #[cfg(rtm_negative = "no-generation-check")]
        {
            // Broken on purpose: trust whatever generation the slot has now.
            let _ = gen;
            gen_of(self.slots[i].state.load(Ordering::Relaxed))
        }
        #[cfg(not(rtm_negative = "no-generation-check"))]
        {
            let _ = i;
            gen
        }
    }

    /// Runs `f` on the cursor of handle `h`. Fails with `Busy` if another call holds the
    /// cursor, with `Stale` if the handle is not open (closed, stale, forged, foreign, or
    /// naming an RAII enumeration's slot).
    ///
    /// If `f` panics, the slot is put back (`IDLE`, or released if a close arrived
    /// meanwhile) while the panic unwinds, so the handle stays usable and closable; what
    /// `f` did to the cursor before the panic stays done.
    pub(crate) fn with_handle<R>(
        &self,
        h: EnumHandle,
        f: impl FnOnce(&mut C) -> R,
    ) -> Result<R, HandleError> {
        let (i, gen) = self.locate(h)?;
        let slot = &self.slots[i];
        let gen = self.handle_gen(i, gen);
        // Acquire pairs with the Release that made the slot IDLE: we see its cursor.
        if let Err(cur) = slot.state.compare_exchange(
            word(gen, IDLE),
            word(gen, BUSY),
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            if cur != word(gen, BUSY) {
                return Err(HandleError::Stale);
            }
            #[cfg(rtm_negative = "call-ignores-busy")]
            {
                // Broken on purpose: use the cursor that the call in flight holds.
                // SAFETY: none; this is the negative control of the busy state.
                return slot
                    .cursor
                    .with_mut(|p| unsafe { (*p).as_mut() }.map(f))
                    .ok_or(HandleError::Stale);
            }
            #[cfg(not(rtm_negative = "call-ignores-busy"))]
            return Err(HandleError::Busy);
        }
        let _end = CallEnd {
            slots: self,
            i,
            gen,
        };
        // SAFETY: our CAS moved the slot from IDLE to BUSY under the handle's generation;
        // until `_end` moves it back (or releases it), also if `f` panics, no other call
        // or close touches the cursor.
        let r = slot.cursor.with_mut(|p| unsafe { (*p).as_mut() }.map(f));
        r.ok_or(HandleError::Stale)
    }

    /// Closes handle `h`. Exactly one of racing closes succeeds.
    pub(crate) fn close_handle(&self, h: EnumHandle) -> Result<(), HandleError> {
        let (i, gen) = self.locate(h)?;
        let slot = &self.slots[i];
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
                        self.release(i, gen, Kind::Handle);
                        return Ok(());
                    }
                    Err(c) => cur = c,
                }
            } else if cur == word(gen, BUSY) {
                #[cfg(rtm_negative = "close-ignores-busy")]
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
                        self.release(i, gen, Kind::Handle);
                        return Ok(());
                    }
                    cur = slot.state.load(Ordering::Relaxed);
                    continue;
                }
                // The running call finishes the close (see `CallEnd`).
                #[cfg(not(rtm_negative = "close-ignores-busy"))]
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
                return Err(HandleError::Stale);
            }
        }
    }
}

impl<C> Drop for Slots<C> {
    fn drop(&mut self) {
        // Raise the id's floor past every serial this table issued: a handle of a slot in
        // a handle state was issued under the slot's generation; a free, owned or never
        // used slot only under earlier ones (none if it is still at `first_gen`).
        let n = self.slots.len() as u64;
        let used = self
            .slots
            .iter()
            .enumerate()
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
    }
}

impl<C> Slots<C> {
    /// Moves a free slot to its last generation; for the retirement test only.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn force_last_generation(&self, i: usize) {
        let s = &self.slots[i];
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

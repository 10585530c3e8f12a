//! Pinning snapshots (invariant 3): a reader registers the clock value it reads at in a
//! slot; the reclaimer announces its horizon, then scans the slots; each side fences
//! between its write and its read, so one of them sees the other. Feeds pin a *floor*
//! instead of a snapshot (every version newer than it stays).

use super::array::{gen_of, word, Kind, Slot, Slots, FEED, IDLE, INIT, NONE, OWNED};
use crate::clock::Clock;
use crate::sync::{fence, Ordering};

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

impl<C> Slots<C> {
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
        let slot = self.owned(i);
        let gen = gen_of(slot.state.load(Ordering::Relaxed));
        slot.state.store(word(gen, INIT), Ordering::Relaxed);
        let snapshot = self.register(slot, clock, 0);
        let state = match kind {
            Kind::Owned => OWNED,
            Kind::Handle => {
                let c = make(snapshot).map(Box::new);
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
    pub(super) fn register(&self, slot: &Slot<C>, clock: &Clock, tag: u64) -> u64 {
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
        for (_, slot) in self.allocated() {
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
        let slot = self.owned(i);
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
        let slot = self.owned(i);
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
        self.owned(i).pinned.store(floor | FEED, Ordering::Release);
    }

    /// Closes an RAII enumeration's slot.
    pub(crate) fn close_owned(&self, i: usize, gen: u64) {
        debug_assert_eq!(
            self.owned(i).state.load(Ordering::Relaxed),
            word(gen, OWNED)
        );
        self.release(i, gen, Kind::Owned);
    }
}

//! The journal: every commit of the table, once, in version order, in a bounded ring.
//!
//! Every value the clock hands out ends up in exactly one slot word here, at ring position
//! `version % capacity`:
//! - the version a write committed: the address of its `VersionNode` (which knows its
//!   skip-list node and its timestamp), put there by the writer that linked it once its
//!   timestamp is decided, whoever decided it. No allocation: the version is the record.
//! - a *gap*: a clock value taken by a `decide` whose CAS lost (another thread decided that
//!   version first). No version has that timestamp; the loser records the gap, so that a
//!   reader of the journal can tell "nothing here" from "not written yet".
//! - *reclaimed*: the reclaimer replaces a version's word with this marker before it
//!   hands the version to the epoch (`forget`). It does so only once every feed that is
//!   not lagging has read past the version (see `reclaim`), so a feed that meets the
//!   marker has lagged.
//!
//! - a batch's *record* ([`Log`]): one word for a whole commit of many keys, tagged
//!   `10`. It lists each key's node and version, and is what feeds and the reclaimer read
//!   for that commit. The record is the journal's own: whoever takes its word out of the
//!   slot (a newer lap's writer, `forget`, or the drop of the journal) hands it to the
//!   epoch. A batch that was cancelled is recorded too, at a clock value of its own, so
//!   that the reclaimer finds its versions; feeds skip it.
//!
//! Two readers use it: feeds (a cursor into the journal plus criteria) and the reclaimer
//! (which prunes exactly the chains the journal names). Both read position `t` and get
//! one of: the commit, a gap, *not yet* (the ring still holds an older lap: the commit is
//! in flight or not taken), or *lost* (a newer lap overwrote it, or the reclaimer freed it:
//! the reader fell more than the capacity behind).
//!
//! Writers never wait: a word goes in with a CAS that only ever moves a slot to a newer
//! lap. A writer that finds a newer lap already there (it was preempted for a whole lap
//! between deciding and recording) gives up; readers at that position see *lost*, which is
//! what they would see a moment later anyway.
//!
//! A version pointer in a slot is always alive: the reclaimer takes it out (`forget`)
//! before it defers the version's free, and it never prunes a version whose commit it has
//! not read yet (so the writer's later `put` cannot bring back a freed version). A reader
//! that loaded the pointer under a guard may read the version until it unpins. Markers are
//! the version shifted left by two with the low bits `01` (gap) or `11` (reclaimed);
//! versions are 8-aligned, so the bits are free.
//!
//! Waiting: a feed that wants to wait (after a short nap while changes come fast, see
//! `Feed::next_timeout`) takes the mutex, arms the `armed` flag (SeqCst), re-checks its
//! slot and sleeps on the condition variable. A writer, after its SeqCst CAS, loads
//! `armed` (SeqCst): in the single total order either the writer sees the flag or the
//! waiter's re-check sees the word. The first writer that sees it clears it (a swap) and
//! notifies under the mutex, so a burst of commits wakes a sleeper once; when nobody
//! waits, a writer pays that one load.
//!
//! Layout: the ring is cut into segments of [`SEGMENT`] words, allocated on first use (a
//! CAS publishes a zeroed segment; a writer that loses the race frees its own), so a table
//! pays for the commits it has made, not for the capacity it may use: 8 bytes a commit up
//! to the capacity, plus a directory of one pointer per segment. A segment that was never
//! written reads as *not yet* at every position. The flag, and the mutex with the
//! condition variable, each have their own cache line. Waiting and waking write them;
//! every commit reads the directory's address and mask, which must not share a line with
//! them.

use std::ptr;
use std::time::Duration;

use crate::sync::{
    AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, CachePadded, Condvar, Guard, Mutex, Ordering,
};

/// What a reader finds at one position.
pub(crate) enum Read {
    /// The commit of this version: the address of its `VersionNode<V>`.
    Commit(*const ()),
    /// The commit (or the cancellation) of a batch.
    Batch(*const Log),
    /// No version has this timestamp.
    Gap,
    /// Not recorded yet: the commit is in flight (or the clock has not reached it).
    NotYet,
    /// Overwritten by a newer lap, or reclaimed: the reader is more than the capacity
    /// behind.
    Lost,
}

/// The record of a batch: the commit of many keys at one version, or a cancelled batch.
///
/// `repr(C)` with the position first, so that a slot's stamp reads it as it reads a
/// version's timestamp.
#[repr(C)]
pub(crate) struct Log {
    /// The position it is recorded at: the commit's version, or the clock value taken to
    /// record a cancellation.
    pos: AtomicU64,
    /// The batch was cancelled: nobody sees its versions, and feeds skip the record.
    pub(crate) cancelled: bool,
    /// For each key of the batch, in key order: its skip-list node and the version the
    /// batch linked there, both type-erased.
    pub(crate) entries: Box<[(*const (), *const ())]>,
}

impl Log {
    /// A record for position `pos`, not yet in the journal.
    pub(crate) fn new(
        pos: u64,
        cancelled: bool,
        entries: Box<[(*const (), *const ())]>,
    ) -> Box<Self> {
        Box::new(Self {
            pos: AtomicU64::new(pos),
            cancelled,
            entries,
        })
    }

    /// Bytes the record holds.
    fn bytes(&self) -> usize {
        std::mem::size_of::<Self>() + std::mem::size_of_val(&*self.entries)
    }
}

/// A record handed to the epoch's destructor, which may run on any thread.
struct SendLog(*mut Log);
// SAFETY: a record holds addresses only, which its destructor does not follow; it is freed
// once, by whichever thread runs the destructor.
unsafe impl Send for SendLog {}

/// Words per segment of the ring (fewer when the whole ring is smaller).
#[cfg(not(loom))]
pub(crate) const SEGMENT: usize = 1024;
#[cfg(loom)]
pub(crate) const SEGMENT: usize = 2;

/// One segment: [`SEGMENT`] slot words (or the whole ring, if smaller).
type Segment = [AtomicPtr<()>];

/// The ring of commits.
pub(crate) struct Journal {
    /// The segments, allocated on first use (null until then).
    segments: Box<[AtomicPtr<AtomicPtr<()>>]>,
    /// Words per segment: `min(capacity, SEGMENT)`, a power of two.
    segment_len: usize,
    mask: u64,
    /// Bytes held by the batch records in the ring.
    logs: AtomicUsize,
    armed: CachePadded<AtomicBool>,
    sleep: CachePadded<Sleep>,
}

/// Where waiting feeds sleep.
struct Sleep {
    lock: Mutex<()>,
    wake: Condvar,
}

const GAP: usize = 0b01;
const LOG: usize = 0b10;
const RECLAIMED: usize = 0b11;

#[inline]
fn marker(ts: u64, kind: usize) -> *mut () {
    ptr::without_provenance_mut(((ts as usize) << 2) | kind)
}

/// The version a slot word stands for (0: never written; versions start at 1).
///
/// # Safety
/// `w` was loaded from a slot under `_guard`: if it is a version pointer, the version is
/// alive until the guard is dropped (module docs).
#[inline]
unsafe fn stamp(w: *mut (), _guard: &Guard) -> u64 {
    if w.is_null() {
        0
    } else if w.addr() & 0b11 == LOG {
        // SAFETY: a record in a slot is alive until its word is taken out of the slot and
        // handed to the epoch, which `_guard` holds off; `Log` is `repr(C)` with its
        // position first.
        unsafe { (*w.map_addr(|a| a & !0b11).cast::<AtomicU64>()).load(Ordering::Acquire) }
    } else if w.addr() & 0b11 != 0 {
        (w.addr() >> 2) as u64
    } else {
        // SAFETY: a version pointer loaded under the guard is alive (module docs); every
        // `VersionNode` is `repr(C)` with its timestamp, an `AtomicU64`, first.
        unsafe { (*w.cast::<AtomicU64>()).load(Ordering::Acquire) }
    }
}

impl Journal {
    /// A ring of `capacity` records (a power of two). Allocates only the directory.
    pub(crate) fn new(capacity: usize) -> Self {
        debug_assert!(capacity.is_power_of_two());
        let segment_len = capacity.min(SEGMENT);
        Self {
            segments: (0..capacity / segment_len)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect(),
            segment_len,
            mask: capacity as u64 - 1,
            logs: AtomicUsize::new(0),
            armed: CachePadded::new(AtomicBool::new(false)),
            sleep: CachePadded::new(Sleep {
                lock: Mutex::new(()),
                wake: Condvar::new(),
            }),
        }
    }

    /// How many records the ring holds.
    pub(crate) fn capacity(&self) -> u64 {
        self.mask + 1
    }

    /// Bytes the ring holds now: the directory and the segments allocated so far.
    pub(crate) fn bytes(&self) -> usize {
        let word = std::mem::size_of::<AtomicPtr<()>>();
        let used = self
            .segments
            .iter()
            // Relaxed: a statistic; a segment being published may be missed.
            .filter(|s| !s.load(Ordering::Relaxed).is_null())
            .count();
        // Relaxed: a statistic.
        self.segments.len() * word
            + used * self.segment_len * word
            + self.logs.load(Ordering::Relaxed)
    }

    /// The segment holding position `ts`, if it was ever allocated.
    #[inline]
    fn segment(&self, ts: u64) -> Option<&Segment> {
        let i = (ts & self.mask) as usize / self.segment_len;
        // Acquire pairs with the publishing CAS in `segment_or_alloc`: the segment's words
        // are initialized (null) before we read them.
        let p = self.segments[i].load(Ordering::Acquire);
        // SAFETY: a non-null directory entry points to a segment of `segment_len` words
        // that was allocated by `segment_or_alloc` and lives until the journal is dropped.
        (!p.is_null()).then(|| unsafe { std::slice::from_raw_parts(p, self.segment_len) })
    }

    /// The segment holding position `ts`, allocated if this is its first use.
    #[inline]
    fn segment_or_alloc(&self, ts: u64) -> &Segment {
        if let Some(s) = self.segment(ts) {
            return s;
        }
        let i = (ts & self.mask) as usize / self.segment_len;
        let fresh: Box<Segment> = (0..self.segment_len)
            .map(|_| AtomicPtr::new(ptr::null_mut()))
            .collect();
        let fresh = Box::into_raw(fresh).cast::<AtomicPtr<()>>();
        // Release publishes the segment's initialized words; Acquire on failure reads the
        // winner's.
        match self.segments[i].compare_exchange(
            ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: we just published `fresh`, a live segment of `segment_len` words; it
            // lives until the journal is dropped.
            Ok(_) => unsafe { std::slice::from_raw_parts(fresh, self.segment_len) },
            Err(winner) => {
                // SAFETY: `fresh` was never published: it is still ours alone, and came from
                // a `Box<[AtomicPtr<()>]>` of `segment_len` words.
                drop(unsafe {
                    Box::from_raw(std::ptr::slice_from_raw_parts_mut(fresh, self.segment_len))
                });
                // SAFETY: as for `fresh` above, for the segment another writer published.
                unsafe { std::slice::from_raw_parts(winner, self.segment_len) }
            }
        }
    }

    /// The slot word of position `ts` within its segment.
    #[inline]
    fn index(&self, ts: u64) -> usize {
        (ts & self.mask) as usize & (self.segment_len - 1)
    }

    /// Records the commit of `version` (a `VersionNode` whose timestamp is `ts`).
    pub(crate) fn commit(&self, ts: u64, version: *const (), guard: &Guard) {
        self.put(ts, version.cast_mut(), guard);
    }

    /// Records that no version has timestamp `ts`.
    pub(crate) fn gap(&self, ts: u64, guard: &Guard) {
        self.put(ts, marker(ts, GAP), guard);
    }

    /// Records a batch's commit (or its cancellation) at position `ts`. False when a
    /// newer lap was there already: then the record is freed here, and the reclaimer finds
    /// the batch's chains by its walk after the overrun.
    pub(crate) fn batch(&self, ts: u64, log: Box<Log>, guard: &Guard) -> bool {
        debug_assert_eq!(log.pos.load(Ordering::Relaxed), ts);
        let bytes = log.bytes();
        let p = Box::into_raw(log);
        // Relaxed: a statistic.
        self.logs.fetch_add(bytes, Ordering::Relaxed);
        let put = self.put(ts, p.map_addr(|a| a | LOG).cast(), guard);
        if !put {
            self.release(p.cast(), guard);
        }
        put
    }

    /// Takes the version `version` (timestamp `ts`) out of its slot, if it is still there,
    /// before the reclaimer hands it to the epoch; or, if the slot holds the record of the
    /// batch that committed it, the record. Only the reclaimer calls this.
    pub(crate) fn forget(&self, ts: u64, version: *const (), guard: &Guard) {
        // The version was put, so its segment exists.
        let Some(segment) = self.segment(ts) else {
            return;
        };
        let slot = &segment[self.index(ts)];
        // Acquire: if it is a record, we read its position (and may free it).
        let w = slot.load(Ordering::Acquire);
        let ours = if w.addr() & 0b11 == LOG {
            // SAFETY: loaded from the slot under `guard`.
            unsafe { stamp(w, guard) == ts }
        } else {
            std::ptr::eq(w, version)
        };
        if ours {
            self.take(slot, w, ts, guard);
        }
    }

    /// Takes the batch record at position `ts` out of its slot, if it is still there: the
    /// reclaimer, once every feed has read past it and the reclaimer has visited all of
    /// its chains.
    pub(crate) fn forget_batch(&self, ts: u64, guard: &Guard) {
        let Some(segment) = self.segment(ts) else {
            return;
        };
        let slot = &segment[self.index(ts)];
        let w = slot.load(Ordering::Acquire);
        // SAFETY: loaded from the slot under `guard`.
        if w.addr() & 0b11 == LOG && unsafe { stamp(w, guard) } == ts {
            self.take(slot, w, ts, guard);
        }
    }

    /// Replaces `w` in `slot` with the reclaimed marker of `ts`, and frees `w` if it was a
    /// record and the CAS took it.
    fn take(&self, slot: &AtomicPtr<()>, w: *mut (), ts: u64, guard: &Guard) {
        // Relaxed: the marker carries no data, and a reader that still loads the version
        // (or record) is protected by its guard (the free is deferred after this).
        // Failure: a newer lap is there already (and took a record with it).
        if slot
            .compare_exchange(
                w,
                marker(ts, RECLAIMED),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok()
            && w.addr() & 0b11 == LOG
        {
            self.release(w.map_addr(|a| a & !0b11), guard);
        }
    }

    /// Hands a record that no slot names any more to the epoch.
    fn release(&self, p: *mut (), guard: &Guard) {
        let p = SendLog(p.cast::<Log>());
        // SAFETY: the record at `p` is named by no slot now, and only the thread whose CAS
        // took it out (us) frees it; threads that loaded it before are pinned, and the
        // epoch waits them out.
        let bytes = unsafe { &*p.0 }.bytes();
        // Relaxed: a statistic.
        self.logs.fetch_sub(bytes, Ordering::Relaxed);
        // SAFETY: as above: unreachable for threads that pin after this, freed once.
        unsafe {
            guard.defer_unchecked(move || {
                let p = p;
                drop(Box::from_raw(p.0));
            });
        }
    }

    /// Puts `word` (for version `ts`) in its slot unless a newer lap is there already;
    /// true if it did. A record an older lap left there goes to the epoch.
    fn put(&self, ts: u64, word: *mut (), guard: &Guard) -> bool {
        let slot = &self.segment_or_alloc(ts)[self.index(ts)];
        let mut cur = slot.load(Ordering::Acquire);
        loop {
            // SAFETY: loaded from the slot under `guard`.
            if unsafe { stamp(cur, guard) } >= ts {
                return false;
            }
            // SeqCst: the waiting protocol (module docs) needs this store and the load of
            // `armed` below in the single total order. It is also a Release: a reader
            // that loads the version sees its node address. Acquire on failure: we read
            // the stamp of what we found.
            match slot.compare_exchange(cur, word, Ordering::SeqCst, Ordering::Acquire) {
                Ok(_) => break,
                Err(c) => cur = c,
            }
        }
        if cur.addr() & 0b11 == LOG {
            self.release(cur.map_addr(|a| a & !0b11), guard);
        }
        if self.armed.load(Ordering::SeqCst) && self.armed.swap(false, Ordering::SeqCst) {
            let _held = self.sleep.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.sleep.wake.notify_all();
        }
        true
    }

    /// What position `ts` holds.
    #[inline]
    pub(crate) fn read(&self, ts: u64, guard: &Guard) -> Read {
        // A segment never written holds no lap of this position.
        let Some(segment) = self.segment(ts) else {
            return Read::NotYet;
        };
        let slot = &segment[self.index(ts)];
        // SeqCst: see the waiting protocol; also an Acquire, pairing with `put`'s CAS, so
        // the version's node address is visible.
        let w = slot.load(Ordering::SeqCst);
        // SAFETY: loaded from the slot under `guard`.
        let st = unsafe { stamp(w, guard) };
        #[cfg(rtm_negative = "journal-no-lap-check")]
        // Broken on purpose: take a newer lap's record for the one asked for.
        let st = if st > ts { ts } else { st };
        if st < ts {
            Read::NotYet
        } else if st > ts || w.addr() & 0b11 == RECLAIMED {
            Read::Lost
        } else if w.addr() & 0b11 == GAP {
            Read::Gap
        } else if w.addr() & 0b11 == LOG {
            Read::Batch(w.map_addr(|a| a & !0b11).cast_const().cast())
        } else {
            Read::Commit(w.cast_const())
        }
    }

    /// Waits until position `ts` is written or `timeout` passes (`None`: no limit),
    /// without spinning. Returns at once when it is written already. The caller reads it
    /// again afterwards.
    pub(crate) fn wait(&self, ts: u64, timeout: Option<Duration>, pin: impl Fn() -> Guard) {
        let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
        loop {
            // Pinned before the lock: a fresh pin may run the epoch's destructors, and an
            // embedder's `Drop` may commit to the table, whose wake-up takes this lock.
            // Unpinning (below, under the lock) runs no destructor.
            let guard = pin();
            let held = self.sleep.lock.lock().unwrap_or_else(|e| e.into_inner());
            // SeqCst: see the waiting protocol in the module docs.
            self.armed.store(true, Ordering::SeqCst);
            let written = !matches!(self.read(ts, &guard), Read::NotYet);
            drop(guard);
            if written {
                return;
            }
            // The lock is held from the store of `armed` to the wait, which releases it:
            // a writer's wake-up (taken under the lock) cannot fall in between.
            match deadline {
                Some(d) => {
                    let now = std::time::Instant::now();
                    if now >= d {
                        return;
                    }
                    drop(self.sleep.wake.wait_timeout(held, d - now));
                }
                // A timeout too long for an `Instant`: wait without a deadline.
                None => drop(self.sleep.wake.wait(held)),
            }
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        for s in self.segments.iter() {
            let p = s.load(Ordering::Relaxed);
            if !p.is_null() {
                // SAFETY: `&mut self`; a segment's words are initialized.
                let words = unsafe { std::slice::from_raw_parts(p, self.segment_len) };
                for w in words {
                    let w = w.load(Ordering::Relaxed);
                    if w.addr() & 0b11 == LOG {
                        // SAFETY: a record named by a slot is the journal's, and nobody
                        // else can reach it now; freed once, here.
                        drop(unsafe { Box::from_raw(w.map_addr(|a| a & !0b11).cast::<Log>()) });
                    }
                }
                // SAFETY: `&mut self`: no other thread uses the journal. A non-null entry is
                // a segment of `segment_len` words from a `Box<[AtomicPtr<()>]>`, freed once.
                drop(unsafe {
                    Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, self.segment_len))
                });
            }
        }
    }
}

//! The journal: every commit of the table, once, in version order, in a bounded ring.
//!
//! Every value the clock hands out ends up as exactly one record here, at ring position
//! `version % capacity`:
//! - the version a write committed: a [`Record`] naming the skip-list node and the version
//!   node, written by the writer that linked the version once its timestamp is decided
//!   (whoever decided it);
//! - a *gap*: a clock value taken by a `decide` whose CAS lost (another thread decided that
//!   version first). No version has that timestamp; the loser records the gap, so that a
//!   reader of the journal can tell "nothing here" from "not written yet".
//!
//! Two readers use it: feeds (a cursor into the journal plus criteria) and the reclaimer
//! (which prunes exactly the chains the journal names). Both read position `t` and get
//! one of: the commit, a gap, *not yet* (the ring still holds an older lap: the commit is
//! in flight or not taken), or *lost* (a newer lap overwrote it: the reader fell more than
//! the capacity behind).
//!
//! Writers never wait: a record goes in with a CAS that only ever moves a slot to a newer
//! lap. A writer that finds a newer lap already there (it was preempted for a whole lap
//! between deciding and recording) drops its record; readers at that position see
//! *lost*, which is what they would see a moment later anyway.
//!
//! A slot holds either a pointer to a boxed [`Record`] or, for a gap, the version shifted
//! left by one with the low bit set (records are 8-aligned, so the bit is free). A replaced
//! record is handed to the epoch, so a reader that loaded the pointer under a guard may
//! read it until it unpins.
//!
//! Waiting: a feed that wants to wait registers in `waiters`, then re-checks under the
//! mutex and sleeps on the condition variable. A writer, after its SeqCst CAS, loads
//! `waiters` (SeqCst): in the single total order either the writer sees the waiter (and
//! notifies under the mutex) or the waiter's re-check sees the record. When nobody waits,
//! a writer pays that one load.

use std::ptr;
use std::time::Duration;

use crate::sync::{AtomicPtr, AtomicUsize, CachePadded, Condvar, Guard, Mutex, Ordering};

/// One committed version: the skip-list node of its key and the version node. Type-erased
/// (the table casts the pointers back), so that the clock can record gaps without knowing
/// the table's types. Only the reclaimer frees nodes and versions, and it does not free
/// what a record names while a reader may still need it (see `reclaim` and `feed`).
#[repr(C)]
pub(crate) struct Record {
    /// The version's timestamp. First field: the ring reads it through an untyped pointer.
    pub(crate) ts: u64,
    /// The `Node<RouteKey<P>, V>` of the key.
    pub(crate) node: *const (),
    /// The `VersionNode<V>` committed.
    pub(crate) version: *const (),
}

/// What a reader finds at one position.
pub(crate) enum Read<'g> {
    /// The commit of this version.
    Commit(&'g Record),
    /// No version has this timestamp.
    Gap,
    /// Not recorded yet: the commit is in flight (or the clock has not reached it).
    NotYet,
    /// Overwritten by a newer lap: the reader is more than the capacity behind.
    Lost,
}

/// The ring of records.
pub(crate) struct Journal {
    slots: Box<[AtomicPtr<()>]>,
    mask: u64,
    waiters: CachePadded<AtomicUsize>,
    sleep: Mutex<()>,
    wake: Condvar,
}

/// A raw record pointer that may travel to the thread that runs the epoch's destructor.
struct SendRecord(*mut Record);
// SAFETY: a `Record` is plain data (a timestamp and two addresses it never dereferences);
// whichever thread frees it, frees it once.
unsafe impl Send for SendRecord {}

#[inline]
fn gap_word(ts: u64) -> *mut () {
    ptr::without_provenance_mut(((ts as usize) << 1) | 1)
}

/// The version a slot word stands for (0: never written; versions start at 1).
///
/// # Safety
/// `w` was loaded from a slot under `_guard`: if it is a record pointer, the record is
/// alive until the guard is dropped.
#[inline]
unsafe fn stamp(w: *mut (), _guard: &Guard) -> u64 {
    if w.is_null() {
        0
    } else if w.addr() & 1 == 1 {
        (w.addr() >> 1) as u64
    } else {
        // SAFETY: a record pointer loaded under the guard; records are retired through
        // the epoch only after being replaced in their slot (see `put`), so it is alive.
        unsafe { (*w.cast::<Record>()).ts }
    }
}

impl Journal {
    /// A ring of `capacity` records (a power of two).
    pub(crate) fn new(capacity: usize) -> Self {
        debug_assert!(capacity.is_power_of_two());
        Self {
            slots: (0..capacity)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect(),
            mask: capacity as u64 - 1,
            waiters: CachePadded::new(AtomicUsize::new(0)),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    /// How many records the ring holds.
    pub(crate) fn capacity(&self) -> u64 {
        self.mask + 1
    }

    /// Records the commit of `version` (node `node`) at timestamp `ts`.
    pub(crate) fn commit(&self, ts: u64, node: *const (), version: *const (), guard: &Guard) {
        let rec = Box::into_raw(Box::new(Record { ts, node, version }));
        if !self.put(ts, rec.cast(), guard) {
            // SAFETY: `rec` was never published: the CAS in `put` did not take it.
            drop(unsafe { Box::from_raw(rec) });
        }
    }

    /// Records that no version has timestamp `ts`.
    pub(crate) fn gap(&self, ts: u64, guard: &Guard) {
        self.put(ts, gap_word(ts), guard);
    }

    /// Puts `word` (for version `ts`) in its slot unless a newer lap is there already.
    fn put(&self, ts: u64, word: *mut (), guard: &Guard) -> bool {
        let slot = &self.slots[(ts & self.mask) as usize];
        let mut cur = slot.load(Ordering::Acquire);
        loop {
            // SAFETY: loaded from the slot under `guard`.
            if unsafe { stamp(cur, guard) } >= ts {
                return false;
            }
            // SeqCst: the waiting protocol (module docs) needs this store and the load of
            // `waiters` below in the single total order. It is also a Release: a reader
            // that loads the record sees it initialized. Acquire on failure: we read the
            // stamp of what we found.
            match slot.compare_exchange(cur, word, Ordering::SeqCst, Ordering::Acquire) {
                Ok(_) => break,
                Err(c) => cur = c,
            }
        }
        if !cur.is_null() && cur.addr() & 1 == 0 {
            let old = SendRecord(cur.cast());
            // SAFETY: `old` is no longer reachable from the ring (our CAS replaced it), so
            // no thread that pins from now on can load it; threads pinned now are waited
            // out by the epoch. It is deferred once: only the CAS that replaced it does so.
            unsafe {
                guard.defer_unchecked(move || {
                    let old = old;
                    drop(Box::from_raw(old.0));
                });
            }
        }
        if self.waiters.load(Ordering::SeqCst) != 0 {
            let _held = self.sleep.lock().unwrap_or_else(|e| e.into_inner());
            self.wake.notify_all();
        }
        true
    }

    /// What position `ts` holds.
    #[inline]
    pub(crate) fn read<'g>(&self, ts: u64, guard: &'g Guard) -> Read<'g> {
        let slot = &self.slots[(ts & self.mask) as usize];
        // SeqCst: see the waiting protocol; also an Acquire, pairing with `put`'s CAS, so
        // the record's fields are visible.
        let w = slot.load(Ordering::SeqCst);
        // SAFETY: loaded from the slot under `guard`.
        let st = unsafe { stamp(w, guard) };
        #[cfg(rtm_negative = "journal-no-lap-check")]
        // Broken on purpose: take a newer lap's record for the one asked for.
        let st = if st > ts { ts } else { st };
        if st < ts {
            Read::NotYet
        } else if st > ts {
            Read::Lost
        } else if w.addr() & 1 == 1 {
            Read::Gap
        } else {
            // SAFETY: a record pointer loaded under `guard` (see `stamp`).
            Read::Commit(unsafe { &*w.cast::<Record>() })
        }
    }

    /// Waits until position `ts` is written or `timeout` passes (`None`: no timeout),
    /// without spinning. Returns at once when it is written already. The caller reads it
    /// again afterwards.
    pub(crate) fn wait(&self, ts: u64, timeout: Option<Duration>, pin: impl Fn() -> Guard) {
        // A timeout too long for an `Instant` is no timeout.
        let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
        // SeqCst: see the waiting protocol in the module docs.
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let mut held = self.sleep.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let written = {
                let guard = pin();
                !matches!(self.read(ts, &guard), Read::NotYet)
            };
            if written {
                break;
            }
            held = match deadline {
                Some(d) => {
                    let now = std::time::Instant::now();
                    if now >= d {
                        break;
                    }
                    match self.wake.wait_timeout(held, d - now) {
                        Ok((h, _)) => h,
                        Err(e) => e.into_inner().0,
                    }
                }
                None => self.wake.wait(held).unwrap_or_else(|e| e.into_inner()),
            };
        }
        drop(held);
        self.waiters.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        for slot in self.slots.iter() {
            let w = slot.load(Ordering::Relaxed);
            if !w.is_null() && w.addr() & 1 == 0 {
                // SAFETY: the journal is being dropped: no thread can read it; every
                // record in a slot is owned by the ring alone (replaced ones were handed
                // to the epoch and are no longer here).
                drop(unsafe { Box::from_raw(w.cast::<Record>()) });
            }
        }
    }
}

// SAFETY: the raw pointers in records are addresses the table casts back under its own
// protocols; the ring itself is atomics, a mutex and a condition variable.
unsafe impl Send for Journal {}
// SAFETY: as above.
unsafe impl Sync for Journal {}

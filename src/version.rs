//! The version chain of one route key: newest first, each version stamped once.
//!
//! A write links a new version at the head of its key's chain *pending* (no timestamp yet),
//! then decides its timestamp with one CAS from [`PENDING`] to a fresh value of the clock.
//! A snapshot reader that meets a pending version helps: it takes its own fresh clock value
//! and tries the same CAS. Whoever wins, the timestamp is decided once (invariant 2), and a
//! reader never waits for a writer.

use std::marker::PhantomData;
use std::ptr;

use crate::clock::Clock;
use crate::journal::Journal;
use crate::sync::{AtomicBool, AtomicPtr, AtomicU64, Guard, Ordering};

/// The timestamp of a version that is linked but not yet decided.
pub(crate) const PENDING: u64 = u64::MAX;

/// Set in the low bit of a chain's head pointer when the reclaimer has retired the whole
/// key: no version may be pushed any more, and the skip-list node is about to be
/// unlinked. A `VersionNode` is aligned to 8, so the bit is free; it is set and cleared
/// with `map_addr`, which keeps the pointer's provenance.
const DEAD: usize = 1;

/// Proof that the holder is the table's reclaimer: the one thread at a time that may prune
/// chains and retire keys (and remove skip-list nodes). The reclaimer mints one inside a
/// run that holds its lock; it cannot leave the thread (`!Send`).
pub(crate) struct SweepPermit {
    _not_send: PhantomData<*const ()>,
}

impl SweepPermit {
    /// A permit.
    ///
    /// # Safety
    /// For as long as the permit lives, no other permit of the same table exists: the
    /// caller is the table's only reclaimer (it holds the reclaimer's lock), or it owns
    /// the chains it prunes outright (a unit test).
    pub(crate) unsafe fn new() -> Self {
        Self {
            _not_send: PhantomData,
        }
    }
}

/// A route's attributes and payload as of one version.
#[derive(Debug)]
pub(crate) struct Entry<V> {
    pub(crate) priority: u32,
    pub(crate) metric: u32,
    pub(crate) enabled: bool,
    pub(crate) value: V,
}

/// One version of a key: a value or, when `entry` is `None`, a deletion marker.
///
/// `repr(C)` with the timestamp first: the journal, which holds versions type-erased,
/// reads the timestamp through that layout.
#[repr(C)]
pub(crate) struct VersionNode<V> {
    ts: AtomicU64,
    next: AtomicPtr<VersionNode<V>>,
    /// The skip-list node whose chain holds this version (type-erased), set by the writer
    /// before the journal names the version; read by the journal's readers.
    node: AtomicPtr<()>,
    pub(crate) entry: Option<Entry<V>>,
}

impl<V> VersionNode<V> {
    /// A pending version, not yet linked.
    pub(crate) fn alloc(entry: Option<Entry<V>>) -> *mut Self {
        Box::into_raw(Box::new(Self {
            ts: AtomicU64::new(PENDING),
            next: AtomicPtr::new(ptr::null_mut()),
            node: AtomicPtr::new(ptr::null_mut()),
            entry,
        }))
    }

    /// Frees a version that was never published.
    ///
    /// # Safety
    /// `p` came from [`VersionNode::alloc`] and no other thread can reach it.
    pub(crate) unsafe fn free_unpublished(p: *mut Self) -> Option<Entry<V>> {
        // SAFETY: the caller owns `p` exclusively (never linked, or unlinked and unreachable).
        let b = unsafe { Box::from_raw(p) };
        b.entry
    }

    /// Records the skip-list node whose chain holds this version, before the writer
    /// names the version in the journal.
    #[inline]
    pub(crate) fn set_node(&self, node: *const ()) {
        // Relaxed: the journal's Release CAS that names this version publishes it.
        self.node.store(node.cast_mut(), Ordering::Relaxed);
    }

    /// The skip-list node whose chain holds this version (set before the journal named it).
    #[inline]
    pub(crate) fn node(&self) -> *const () {
        // Relaxed: a reader found this version through the journal's Acquire load.
        self.node.load(Ordering::Relaxed).cast_const()
    }

    /// This version's address, type-erased, as the journal holds it.
    #[inline]
    pub(crate) fn erased(&self) -> *const () {
        (self as *const Self).cast()
    }

    /// Whether this version has no older version linked (true for an unpublished one).
    pub(crate) fn is_alone(&self) -> bool {
        self.next.load(Ordering::Relaxed).is_null()
    }

    /// The decided timestamp, or [`PENDING`].
    #[inline]
    pub(crate) fn ts(&self) -> u64 {
        // Acquire pairs with the Release of the deciding CAS, so a reader that sees the
        // timestamp also sees everything the decider did before (its earlier commits).
        self.ts.load(Ordering::Acquire)
    }

    /// Decides this version's timestamp if it is still pending, and returns the decided one.
    /// Called by the writer after linking, and by any snapshot reader that meets it pending.
    /// A caller whose clock value did not become the timestamp records it as a gap in the
    /// journal, so that every clock value is recorded once.
    #[inline]
    pub(crate) fn decide(&self, clock: &Clock, guard: &Guard) -> u64 {
        let t = clock.tick();
        #[cfg(rtm_negative = "decide-twice")]
        {
            // Broken on purpose: overwrite whatever was decided.
            self.ts.store(t, Ordering::Release);
            t
        }
        #[cfg(not(rtm_negative = "decide-twice"))]
        match self
            .ts
            .compare_exchange(PENDING, t, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => t,
            Err(decided) => {
                clock.journal.gap(t, guard);
                decided
            }
        }
    }

    /// The next older version.
    #[inline]
    pub(crate) fn older<'g>(&self, _guard: &'g Guard) -> Option<&'g VersionNode<V>> {
        // Acquire: the older version's contents were written before it was linked.
        let p = self.next.load(Ordering::Acquire);
        // SAFETY: versions reachable from a chain are freed only through the epoch after
        // being unlinked (see `Chain::prune`); `_guard` pins the epoch, so `p` outlives 'g.
        unsafe { p.as_ref() }
    }
}

/// The head of a key's version chain.
pub(crate) struct Chain<V> {
    /// The newest version, tagged with [`DEAD`] once the key is retired.
    head: AtomicPtr<VersionNode<V>>,
    /// Whether the reclaimer keeps this chain on its list of chains to visit again. Only
    /// the reclaimer reads or writes it, under its lock (so Relaxed).
    retained: AtomicBool,
    _marker: PhantomData<*mut VersionNode<V>>,
}

/// The outcome of [`Chain::push_if`]: `Ok(shadowed)` if pushed, `Err(shadowed)` if the
/// condition refused the version it would have shadowed.
pub(crate) type Pushed<'g, V> = Result<Option<&'g VersionNode<V>>, Option<&'g VersionNode<V>>>;

/// Why a push failed: the key was retired by the reclaimer and its node is being unlinked.
#[derive(Debug)]
pub(crate) struct Retired;

/// What pruning a chain did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pruned {
    /// Value versions unlinked and handed to the epoch.
    pub(crate) values: usize,
    /// Deletion markers unlinked and handed to the epoch.
    pub(crate) markers: usize,
    /// Value versions still linked that are not current.
    pub(crate) dead_kept: usize,
    /// The chain is one deletion marker that every snapshot sees: the key can be retired.
    pub(crate) retirable: bool,
    /// The head's timestamp (`PENDING` if undecided, 0 for an empty chain).
    pub(crate) head_ts: u64,
    /// The lowest horizon at which a later prune frees something this one kept (the
    /// version that shadowed the oldest dead version kept, or a deletion marker at the
    /// head); `u64::MAX` when it kept nothing dead.
    pub(crate) free_at: u64,
}

impl<V: Send + 'static> Chain<V> {
    pub(crate) fn new(first: *mut VersionNode<V>) -> Self {
        Self {
            head: AtomicPtr::new(first),
            retained: AtomicBool::new(false),
            _marker: PhantomData,
        }
    }

    #[inline]
    fn head_ptr<'g>(&self, _guard: &'g Guard) -> (Option<&'g VersionNode<V>>, bool) {
        // Acquire pairs with the Release of the push CAS: a reader that sees a version
        // sees its entry and its `next`.
        let w = self.head.load(Ordering::Acquire);
        let p = w.map_addr(|a| a & !DEAD);
        // SAFETY: see `VersionNode::older`; the head version is freed only with its node,
        // after the node is unlinked, through the epoch `_guard` pins.
        (unsafe { p.as_ref() }, w.addr() & DEAD != 0)
    }

    /// Hints the CPU to start loading the newest version.
    #[inline(always)]
    pub(crate) fn prefetch_head(&self) {
        // Relaxed: the word is only an address for a hint; nothing is read through it.
        let w = self.head.load(Ordering::Relaxed).map_addr(|a| a & !DEAD);
        crate::sync::prefetch(w.cast_const());
    }

    /// Whether the reclaimer has this chain on its list to visit again.
    #[inline]
    pub(crate) fn is_retained(&self) -> bool {
        self.retained.load(Ordering::Relaxed)
    }

    /// Sets or clears the reclaimer's mark (only the reclaimer, under its lock).
    #[inline]
    pub(crate) fn set_retained(&self, on: bool) {
        self.retained.store(on, Ordering::Relaxed);
    }

    /// True once the reclaimer has retired this key.
    #[inline]
    pub(crate) fn is_retired(&self) -> bool {
        self.head.load(Ordering::Acquire).addr() & DEAD != 0
    }

    /// The newest decided version: what a read "now" sees. A pending head is skipped (its
    /// write has not committed), so this read never writes shared memory.
    ///
    /// Skipping a pending head means reading its `next`, and the order of the loads
    /// matters. Between a load of the head's timestamp that says pending and the load of
    /// its `next`, the writer may decide the head and a reclaimer may then unlink the
    /// version below it and clear `next` (that version is shadowed and no snapshot sees
    /// it). So the timestamp is loaded again after `next`: if it is still pending, `next`
    /// was read while the head was pending, and the reclaimer never touches the link
    /// below a pending head (`prune` keeps the version a pending head shadows), so it is
    /// the current version. If it is decided by then, the head is the current version.
    /// The second load cannot miss a decision that the cleared link depended on: the
    /// reclaimer loaded the decided timestamp (Acquire) before it stored the cleared
    /// link (Release); a `next` load that reads that store synchronizes with it, so the
    /// timestamp load after it sees the decision (read-read coherence).
    #[inline]
    pub(crate) fn current<'g>(&self, guard: &'g Guard) -> Option<&'g VersionNode<V>> {
        let (h, _) = self.head_ptr(guard);
        let h = h?;
        if h.ts() != PENDING {
            return Some(h);
        }
        #[cfg(test)]
        tests::between_ts_and_next();
        let older = h.older(guard);
        #[cfg(rtm_negative = "stale-current")]
        {
            // Broken on purpose: trust `next` without checking that the head is still
            // pending, as if the reclaimer could not have cleared it meanwhile.
            older
        }
        #[cfg(not(rtm_negative = "stale-current"))]
        if h.ts() == PENDING {
            older
        } else {
            Some(h)
        }
    }

    /// The version snapshot `s` sees (invariant 1), helping to decide a pending head.
    #[inline]
    pub(crate) fn visible<'g>(
        &self,
        s: u64,
        clock: &Clock,
        guard: &'g Guard,
    ) -> Option<&'g VersionNode<V>> {
        let (mut v, _) = self.head_ptr(guard);
        while let Some(x) = v {
            let mut t = x.ts();
            if t == PENDING {
                t = x.decide(clock, guard);
            }
            if t <= s {
                return Some(x);
            }
            v = x.older(guard);
        }
        None
    }

    /// Links `new` (pending) as the newest version. On success returns the version it
    /// shadows, decided, if any. The caller then decides `new`. On failure `new` is
    /// returned to the caller unlinked, with no older version: a caller that then makes it
    /// the first version of a fresh node must not carry a pointer into this chain (the
    /// fresh chain and this one would share versions, and both would free them).
    pub(crate) fn push<'g>(
        &self,
        new: *mut VersionNode<V>,
        clock: &Clock,
        guard: &'g Guard,
    ) -> Result<Option<&'g VersionNode<V>>, Retired> {
        self.push_if(new, clock, guard, |_| true)
            .map(|r| r.unwrap_or_else(|_| unreachable!("the condition always holds")))
    }

    /// Like [`Chain::push`], but only if `cond` holds for the version it would shadow;
    /// otherwise `Ok(Err(shadowed))` and `new` stays the caller's.
    pub(crate) fn push_if<'g>(
        &self,
        new: *mut VersionNode<V>,
        clock: &Clock,
        guard: &'g Guard,
        cond: impl Fn(Option<&VersionNode<V>>) -> bool,
    ) -> Result<Pushed<'g, V>, Retired> {
        loop {
            let (h, dead) = self.head_ptr(guard);
            if dead {
                // SAFETY: `new` is still ours (not published); a failed CAS of an earlier
                // round left it pointing into this chain, which the caller may not keep.
                unsafe { (*new).next.store(ptr::null_mut(), Ordering::Relaxed) };
                return Err(Retired);
            }
            // Timestamps must grow from old to new along the chain: decide the old head
            // first (a no-op unless another writer of this key is between link and decide).
            if let Some(h) = h {
                if h.ts() == PENDING {
                    h.decide(clock, guard);
                }
            }
            if !cond(h) {
                // SAFETY: as above, `new` goes back to the caller as it came.
                unsafe { (*new).next.store(ptr::null_mut(), Ordering::Relaxed) };
                return Ok(Err(h));
            }
            let hp = h.map_or(ptr::null_mut(), |h| ptr::from_ref(h).cast_mut());
            // SAFETY: `new` is ours until the CAS below publishes it.
            unsafe { (*new).next.store(hp, Ordering::Relaxed) };
            // Release publishes `new`'s entry and `next`; Acquire on failure re-reads.
            if self
                .head
                .compare_exchange(hp, new, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Ok(Ok(h));
            }
        }
    }

    /// Keeps only the versions that a snapshot can still see, and hands the rest to the
    /// epoch. Only the reclaimer calls this, and only one reclaimer runs at a time.
    ///
    /// `now` is the clock value the reclaimer announced; `pinned` the sorted snapshots at or
    /// below `now` found in the slots. A version newer than `now` (or pending) is kept: a
    /// snapshot registered after the announcement may see it. An older version is kept iff
    /// it is the one some `s` in `pinned ∪ {now}` sees.
    ///
    /// Each unlinked version is taken out of the journal (`Journal::forget`) before it
    /// goes to the epoch, so the journal never names a freed version.
    ///
    /// The `_permit` proves the caller is that reclaimer: the unlinking stores below are
    /// plain stores that would race with another pruner, and what they unlink is handed to
    /// the epoch once, which needs one owner.
    pub(crate) fn prune(
        &self,
        now: u64,
        pinned: &[u64],
        journal: &Journal,
        guard: &Guard,
        _permit: &SweepPermit,
    ) -> Pruned {
        let mut out = Pruned {
            values: 0,
            markers: 0,
            dead_kept: 0,
            retirable: false,
            head_ts: 0,
            free_at: u64::MAX,
        };
        let (head, dead) = self.head_ptr(guard);
        let Some(head) = head else { return out };
        out.head_ts = head.ts();
        debug_assert!(
            !dead,
            "only the reclaimer retires, and it skips retired keys"
        );
        let mut newer_ts = head.ts(); // PENDING counts as +infinity
        let mut kept: &VersionNode<V> = head;
        let mut cur = head.older(guard);
        let mut garbage: Vec<*mut VersionNode<V>> = Vec::new();
        while let Some(v) = cur {
            let t = v.ts();
            debug_assert!(t != PENDING, "only a head can be pending");
            let keep = t > now || sees_between(t, newer_ts, now, pinned);
            let next = v.older(guard);
            if keep {
                if !ptr::eq(kept.next.load(Ordering::Relaxed), v) {
                    // Release: a reader that follows the new link sees `v` initialized (it
                    // was long ago, but the link is the edge readers follow).
                    kept.next.store(v as *const _ as *mut _, Ordering::Release);
                }
                if newer_ts != PENDING {
                    // Shadowed by a committed version: dead, kept for a pin or a feed. It
                    // can go once the horizon reaches the version that shadowed it.
                    out.free_at = out.free_at.min(newer_ts);
                    if v.entry.is_some() {
                        out.dead_kept += 1;
                    }
                }
                kept = v;
            } else {
                if v.entry.is_some() {
                    out.values += 1;
                } else {
                    out.markers += 1;
                }
                garbage.push(v as *const _ as *mut _);
            }
            newer_ts = t;
            cur = next;
        }
        if !kept.next.load(Ordering::Relaxed).is_null() {
            kept.next.store(ptr::null_mut(), Ordering::Release);
        }
        for g in garbage {
            // SAFETY: `g` was linked in this chain until just now; it is freed only through
            // the epoch (below), which `guard` pins.
            let ts = unsafe { &*g }.ts();
            journal.forget(ts, g.cast_const().cast());
            destroy_later(g, guard);
        }
        let lowest = pinned.first().copied().unwrap_or(now).min(now);
        out.retirable = ptr::eq(kept, head)
            && head.entry.is_none()
            && head.ts() != PENDING
            && head.ts() <= lowest;
        if head.entry.is_none() && head.ts() != PENDING && !out.retirable {
            // A deletion marker: the key can go once the horizon reaches it.
            out.free_at = out.free_at.min(head.ts());
        }
        out
    }

    /// Retires the key if its chain is still the lone deletion marker `prune` saw.
    /// Only the reclaimer retires (`_permit`): it then removes the node, once.
    /// On success the lone marker is taken out of the journal: the node (and with it the
    /// marker) goes to the epoch next.
    pub(crate) fn retire(&self, journal: &Journal, guard: &Guard, _permit: &SweepPermit) -> bool {
        let (h, dead) = self.head_ptr(guard);
        let Some(h) = h else { return false };
        if dead || h.entry.is_some() || h.older(guard).is_some() {
            return false;
        }
        let w = ptr::from_ref(h).cast_mut();
        // AcqRel: a writer that then fails its push sees the retirement.
        let retired = self
            .head
            .compare_exchange(
                w,
                w.map_addr(|a| a | DEAD),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok();
        if retired {
            journal.forget(h.ts(), h.erased());
        }
        retired
    }
}

impl<V> Chain<V> {
    /// Frees the chain of a node that no thread can reach any more.
    ///
    /// # Safety
    /// No other thread can reach this chain (its node is unreachable or being dropped with
    /// the table).
    pub(crate) unsafe fn free_all(&self) -> usize {
        let mut values = 0;
        let mut p = self.head.load(Ordering::Relaxed).map_addr(|a| a & !DEAD);
        while !p.is_null() {
            // SAFETY: exclusive access, per the caller's contract.
            let (next, value) =
                unsafe { ((*p).next.load(Ordering::Relaxed), (*p).entry.is_some()) };
            if value {
                values += 1;
            }
            // SAFETY: every version was allocated by `VersionNode::alloc`, is unreachable
            // (caller's contract) and is freed exactly once here.
            unsafe { drop_version(p) };
            p = next;
        }
        values
    }
}

/// True when some snapshot `s` in `pinned ∪ {now}` has `t <= s < newer`.
#[inline]
fn sees_between(t: u64, newer: u64, now: u64, pinned: &[u64]) -> bool {
    if t <= now && now < newer {
        return true;
    }
    // first pinned snapshot >= t
    let i = pinned.partition_point(|&s| s < t);
    pinned.get(i).is_some_and(|&s| s < newer)
}

/// Hands an unlinked version to the epoch.
fn destroy_later<V: Send + 'static>(p: *mut VersionNode<V>, guard: &Guard) {
    #[cfg(rtm_negative = "eager-free")]
    {
        let _ = guard;
        // Broken on purpose: free while readers may still hold the version.
        // SAFETY: none; this is the negative control of the reclamation model.
        drop(unsafe { Box::from_raw(p) });
    }
    #[cfg(not(rtm_negative = "eager-free"))]
    {
        let p = SendVersion(p);
        // SAFETY: `p` was unlinked from its chain (or its node from the skip list) by the
        // only reclaimer, so no thread that pins after this can reach it; threads pinned now
        // are waited out by the epoch. It is deferred exactly once, by that reclaimer.
        unsafe {
            guard.defer_unchecked(move || {
                let p = p;
                drop_version(p.0)
            });
        }
    }
}

/// A version pointer handed to the epoch's destructor, which may run on any thread.
struct SendVersion<V>(*mut VersionNode<V>);
// SAFETY: the version is unreachable and freed once by whichever thread runs the
// destructor; its value is `Send` (`V: Send` on every table).
unsafe impl<V: Send> Send for SendVersion<V> {}

/// Frees one version, containing a panic of the embedder's `Drop`.
///
/// The destructor runs inside crossbeam-epoch (when some thread pins or flushes), or while
/// the table is dropped; a panic unwinding out of it would leave the epoch's bag half run
/// on that thread. So it stops here: the value whose drop panicked is leaked (its memory,
/// and whatever its `Drop` did not release), and everything else goes on.
///
/// # Safety
/// `p` came from [`VersionNode::alloc`], is unreachable, and is freed exactly once.
unsafe fn drop_version<V>(p: *mut VersionNode<V>) -> bool {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: per the contract, exclusive ownership of a live allocation.
        drop(unsafe { Box::from_raw(p) })
    }));
    r.is_ok()
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    thread_local! {
        /// Runs once, inside `Chain::current`, between its first timestamp load and its
        /// load of `next`: the window a concurrent decide-and-prune can fall into.
        static BETWEEN: RefCell<Option<Box<dyn FnOnce()>>> = const { RefCell::new(None) };
    }

    pub(super) fn between_ts_and_next() {
        if let Some(f) = BETWEEN.with(|b| b.borrow_mut().take()) {
            f();
        }
    }

    #[cfg(not(loom))]
    mod plain {
        use super::super::{sees_between, Chain, Entry, SweepPermit, VersionNode, PENDING};
        use super::BETWEEN;
        use crate::clock::Clock;

        #[test]
        fn which_snapshots_see_a_version() {
            // version decided at 5, shadowed at 9: seen by snapshots 5..=8
            assert!(sees_between(5, 9, 100, &[5]));
            assert!(sees_between(5, 9, 100, &[2, 8]));
            assert!(!sees_between(5, 9, 100, &[2, 9, 20]));
            assert!(!sees_between(5, 9, 100, &[]));
            assert!(sees_between(5, 9, 7, &[]));
            assert!(sees_between(5, u64::MAX, 7, &[]));
        }

        fn entry(value: u32) -> Option<Entry<u32>> {
            Some(Entry {
                priority: 0,
                metric: 0,
                enabled: true,
                value,
            })
        }

        /// A read "now" that finds the head pending, then loses the race to the writer's
        /// decide and to a reclamation step that unlinks the version below, still returns
        /// a version: the new one. (Replays on one thread the interleaving in which a
        /// `get_route` of a key that always had a value returned `None`.)
        #[test]
        fn current_survives_a_decide_and_prune_between_its_loads() {
            let clock = std::rc::Rc::new(Clock::new(64));
            let guard = crossbeam_epoch::pin();
            let first = VersionNode::alloc(entry(1));
            let chain = std::rc::Rc::new(Chain::new(first));
            // SAFETY: `first` is linked in `chain`, alive until the chain is freed below.
            let t1 = unsafe { &*first }.decide(&clock, &guard);
            clock.journal.commit(t1, first.cast_const().cast(), &guard);
            let second = VersionNode::alloc(entry(2));
            chain.push(second, &clock, &guard).expect("not retired");
            // SAFETY: as `first`.
            assert_eq!(unsafe { &*second }.ts(), PENDING);

            let (c, k) = (std::rc::Rc::clone(&chain), std::rc::Rc::clone(&clock));
            BETWEEN.with(|b| {
                *b.borrow_mut() = Some(Box::new(move || {
                    let guard = crossbeam_epoch::pin();
                    // SAFETY: `second` is linked in the chain, which outlives this hook.
                    let t2 = unsafe { &*second }.decide(&k, &guard);
                    k.journal.commit(t2, second.cast_const().cast(), &guard);
                    let pruned = c.prune(
                        k.now(),
                        &[],
                        &k.journal,
                        &guard,
                        // SAFETY: this test owns the chain; no reclaimer runs on it.
                        &unsafe { SweepPermit::new() },
                    );
                    assert_eq!(pruned.values, 1, "the step unlinks the shadowed value");
                }))
            });
            let seen = chain
                .current(&guard)
                .and_then(|v| v.entry.as_ref())
                .map(|e| e.value);
            assert_eq!(seen, Some(2), "a read now of a key that always had a value");
            drop(guard);
            // Let the epoch free the unlinked version, then free the rest.
            for _ in 0..8 {
                crossbeam_epoch::pin().flush();
            }
            let chain = std::rc::Rc::into_inner(chain).expect("the hook ran and let go");
            // SAFETY: no other thread can reach the chain any more.
            assert_eq!(unsafe { chain.free_all() }, 1);
        }
    }
}

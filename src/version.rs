//! The version chain of one route key: newest first, each version stamped once.
//!
//! A write links a new version at the head of its key's chain *pending* (no timestamp yet),
//! then decides its timestamp with one CAS from [`PENDING`] to a fresh value of the clock.
//! A snapshot reader that meets a pending version helps: it takes its own fresh clock value
//! and tries the same CAS. Whoever wins, the timestamp is decided once (invariant 2), and a
//! reader never waits for a writer.
//!
//! A batch ([`crate::Batch`]) links one version per key whose word says [`BATCH`]: its
//! timestamp is its batch's [`Decision`], shared by every version of the batch and decided
//! once for all of them (see `commit` for the protocol). Readers treat an undecided batch
//! as not yet written; a writer that meets an unfinished one cancels it; once decided, the
//! committer writes the timestamp into each version's own word, and the versions no longer
//! need their decision. A cancelled batch's versions stay linked until the reclaimer has
//! read the record of the cancellation in the journal, and nobody ever sees them.

use std::marker::PhantomData;
use std::ptr;

use crate::clock::Clock;
use crate::journal::Journal;
use crate::sync::{AtomicBool, AtomicPtr, AtomicU64, Guard, Ordering};

/// The timestamp of a version that is linked but not yet decided.
pub(crate) const PENDING: u64 = u64::MAX;

/// The word of a version whose timestamp is its batch's [`Decision`] (`owner` points to it).
pub(crate) const BATCH: u64 = u64::MAX - 1;

/// Set in the word of a version whose batch was cancelled; the low bits hold the journal
/// position at which the committer recorded the cancellation.
pub(crate) const CANCELLED: u64 = 1 << 62;

/// The word of a batch's version that writes a value whatever the key held before (an
/// add): a single write that meets it unfinished slides under it instead of cancelling
/// the batch (see `Chain::push_if`). Otherwise as [`BATCH`].
pub(crate) const BATCH_PUT: u64 = u64::MAX - 2;

/// Whether a version's word says its timestamp is its batch's decision.
#[inline(always)]
fn is_batch_word(w: u64) -> bool {
    w == BATCH || w == BATCH_PUT
}

/// A decision's states besides a decided timestamp (which is below [`CANCELLED`]): bit 63
/// says undecided, bit 62 ready, bit 61 abandoned; the low 16 bits count the single
/// writers sliding under one of the batch's versions right now, and the 45 bits between
/// count how many ever registered (mod 2^45), so that a decider that loaded a state with
/// no slider, before a writer came and went, fails its CAS (the word is not the same).
const UNDECIDED: u64 = 1 << 63;
const READY_BIT: u64 = 1 << 62;
const ABANDONED_BIT: u64 = 1 << 61;
const SLIDERS: u64 = (1 << 16) - 1;
const GENERATION: u64 = ((1 << 61) - 1) & !SLIDERS;
const GENERATION_ONE: u64 = 1 << 16;
const INSTALLING: u64 = UNDECIDED;
const READY: u64 = UNDECIDED | READY_BIT;

/// What a version's word says once read through its decision, if it has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stamp {
    /// Decided at this timestamp.
    At(u64),
    /// Not decided yet: a pending single write, or a batch still being linked or ready.
    Open,
    /// Its batch was cancelled: nobody ever sees it. The position of the cancellation's
    /// record in the journal, or `u64::MAX` while the committer has not recorded it yet.
    Cancelled(u64),
}

/// The shared timestamp of a batch's versions.
///
/// `INSTALLING` while the committer links the versions, then `READY` (every version is
/// linked), then a timestamp, decided once by a CAS that anyone who meets the batch READY
/// with no writer sliding under it may make; or, from `INSTALLING` or from `READY` with
/// sliders (states nobody can decide), `ABANDONED`, by a writer that met a version of the
/// batch it may not slide under (or by the committer itself, when its batch fails). While undecided, the word also counts the
/// single writers sliding under the batch's add versions (`slide`): none of their
/// timestamps may come after the batch's, so the batch is decided only when the count is
/// zero, by the last of them if nobody else does. Every transition is SeqCst: the argument
/// that a snapshot never falls inside a batch (see `Decision::state`) is one about the
/// single total order.
pub(crate) struct Decision {
    state: AtomicU64,
}

impl Decision {
    /// A decision for a batch about to be linked.
    pub(crate) fn alloc() -> *mut Self {
        Box::into_raw(Box::new(Self {
            state: AtomicU64::new(INSTALLING),
        }))
    }

    /// The state now.
    ///
    /// `s` without its generation bits.
    #[inline]
    fn kind(s: u64) -> u64 {
        s & !GENERATION
    }

    /// SeqCst, and the reason every transition is SeqCst: a reader at snapshot `s` (a
    /// clock value it loaded, SeqCst, before this load) that finds the batch undecided and
    /// not decidable (`INSTALLING`, or `READY` with a writer sliding under it) skips the
    /// batch, so the batch's timestamp must come out above `s`. It does: the timestamp is
    /// the tick of a decider that loaded `READY` with no slider, and that state was stored
    /// (by the committer's `ready`, or by the last slider's `unslide`) after this load in
    /// the total order (this load read an earlier state of the word); the decider's tick
    /// follows its load, so the reader's clock load precedes the tick in the total order,
    /// and the tick returns more than `s`. A reader that finds `READY` with no slider helps
    /// decide instead, as it helps a pending single write.
    #[inline]
    fn state(&self) -> u64 {
        self.state.load(Ordering::SeqCst)
    }

    /// Moves `INSTALLING` to `READY` (the committer, once every version is linked), keeping
    /// the count of sliders; false if the batch was abandoned first.
    pub(crate) fn ready(&self) -> bool {
        let mut s = self.state();
        loop {
            if s & ABANDONED_BIT != 0 {
                return false;
            }
            debug_assert_eq!(
                Self::kind(s) & !SLIDERS,
                INSTALLING,
                "only the committer readies"
            );
            match self
                .state
                .compare_exchange(s, s | READY_BIT, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    /// Abandons the batch if it is still being linked, or ready but not decidable (writers
    /// are sliding under it); true if it is abandoned now (by this call or an earlier one).
    pub(crate) fn abandon(&self) -> bool {
        #[cfg(rtm_negative = "batch-no-abandon")]
        {
            // Broken on purpose: a writer goes over an unfinished batch without cancelling
            // it, so the batch may still commit underneath the writer's version.
            return self.abandoned();
        }
        #[cfg(not(rtm_negative = "batch-no-abandon"))]
        {
            let mut s = self.state();
            loop {
                if s & ABANDONED_BIT != 0 {
                    return true;
                }
                // Still being linked; or ready but held back by sliders, so that nobody can
                // decide it now and a writer of another of its keys could otherwise only
                // wait (a reader that met it so skipped it, as a cancelled batch).
                let held = Self::kind(s) & !SLIDERS == READY && s & SLIDERS != 0;
                if Self::kind(s) & !SLIDERS != INSTALLING && !held {
                    return false;
                }
                match self.state.compare_exchange(
                    s,
                    s | ABANDONED_BIT,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                ) {
                    Ok(_) => return true,
                    Err(now) => s = now,
                }
            }
        }
    }

    /// Whether a writer abandoned the batch.
    pub(crate) fn abandoned(&self) -> bool {
        self.state() & (UNDECIDED | ABANDONED_BIT) == UNDECIDED | ABANDONED_BIT
    }

    /// Registers a single writer about to slide a version under one of the batch's
    /// versions: true if the batch is still undecided and not abandoned, so that it will
    /// not be decided before the writer's `unslide`.
    pub(crate) fn slide(&self) -> bool {
        #[cfg(rtm_negative = "slide-no-count")]
        {
            // Broken on purpose: slide without counting, so the batch may be decided while
            // the writer's version under it is not, and come out older than that version.
            let s = self.state();
            return s & UNDECIDED != 0 && s & ABANDONED_BIT == 0;
        }
        #[cfg(not(rtm_negative = "slide-no-count"))]
        {
            let mut s = self.state();
            loop {
                if s & UNDECIDED == 0 || s & ABANDONED_BIT != 0 {
                    return false;
                }
                debug_assert!(s & SLIDERS < SLIDERS, "more sliders than threads");
                let generation = (s + GENERATION_ONE) & GENERATION;
                let new = ((s & !GENERATION) + 1) | generation;
                match self
                    .state
                    .compare_exchange(s, new, Ordering::SeqCst, Ordering::SeqCst)
                {
                    Ok(_) => return true,
                    Err(now) => s = now,
                }
            }
        }
    }

    /// Ends a writer's `slide` (its version is decided by then); the last slider of a
    /// ready batch decides it.
    pub(crate) fn unslide(&self, clock: &Clock, guard: &Guard) {
        #[cfg(rtm_negative = "slide-no-count")]
        {
            // Broken on purpose: `slide` counted nothing (see there), so nothing to undo.
            let _ = (clock, guard);
        }
        #[cfg(not(rtm_negative = "slide-no-count"))]
        {
            // SeqCst: a transition of the word (see `state`).
            let s = self.state.fetch_sub(1, Ordering::SeqCst) - 1;
            if Self::kind(s) == READY {
                self.decide(clock, guard);
            }
        }
    }

    /// Decides the timestamp of a `READY` batch that no writer is sliding under (anyone
    /// may) and returns the stamp it has now. A caller whose tick did not become the
    /// timestamp records it as a gap.
    pub(crate) fn decide(&self, clock: &Clock, guard: &Guard) -> Stamp {
        let s = self.state();
        if Self::kind(s) != READY {
            return Self::stamp_of(s);
        }
        let t = clock.tick();
        // The whole word, generation included: a writer that slid under the batch since
        // the load above took a timestamp after ours, so ours may not be the batch's.
        match self
            .state
            .compare_exchange(s, t, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => Stamp::At(t),
            Err(s) => {
                clock.journal.gap(t, guard);
                Self::stamp_of(s)
            }
        }
    }

    fn stamp_of(s: u64) -> Stamp {
        if s & UNDECIDED == 0 {
            Stamp::At(s)
        } else if s & ABANDONED_BIT != 0 {
            Stamp::Cancelled(u64::MAX)
        } else {
            Stamp::Open
        }
    }
}

/// Set in the low bit of a chain's head pointer when the reclaimer has retired the whole
/// key: no version may be pushed any more, and the skip-list node is about to be
/// unlinked. A `VersionNode` is aligned to 8, so the bit is free; it is set and cleared
/// with `map_addr`, which keeps the pointer's provenance.
const DEAD: usize = 1;

/// Set in the low bit of a version's `next` once the version is a cancelled batch's add
/// (see `VersionNode::freeze`): no writer may slide under it any more. Only such versions
/// carry it; every load of `next` masks it.
const FROZEN: usize = 1;

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
    /// A single write's version: the skip-list node whose chain holds it (type-erased),
    /// set by the writer before the journal names the version; read by the journal's
    /// readers. A batch's version: its [`Decision`], set before the version is linked and
    /// read while the word says [`BATCH`] (the journal names a batch's versions through
    /// its record, which holds their nodes).
    owner: AtomicPtr<()>,
    pub(crate) entry: Option<Entry<V>>,
}

impl<V> VersionNode<V> {
    /// A pending version, not yet linked.
    pub(crate) fn alloc(entry: Option<Entry<V>>) -> *mut Self {
        Box::into_raw(Box::new(Self {
            ts: AtomicU64::new(PENDING),
            next: AtomicPtr::new(ptr::null_mut()),
            owner: AtomicPtr::new(ptr::null_mut()),
            entry,
        }))
    }

    /// A version of the batch `decision` decides, not yet linked. `put`: the batch writes
    /// it whatever the key held (an add), so a single writer may slide under it.
    pub(crate) fn alloc_in_batch(
        entry: Option<Entry<V>>,
        decision: *const Decision,
        put: bool,
    ) -> *mut Self {
        Box::into_raw(Box::new(Self {
            ts: AtomicU64::new(if put { BATCH_PUT } else { BATCH }),
            next: AtomicPtr::new(ptr::null_mut()),
            owner: AtomicPtr::new(decision.cast_mut().cast()),
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
        self.owner.store(node.cast_mut(), Ordering::Relaxed);
    }

    /// The skip-list node whose chain holds this version (set before the journal named it).
    #[inline]
    pub(crate) fn node(&self) -> *const () {
        // Relaxed: a reader found this version through the journal's Acquire load.
        self.owner.load(Ordering::Relaxed).cast_const()
    }

    /// This version's address, type-erased, as the journal holds it.
    #[inline]
    pub(crate) fn erased(&self) -> *const () {
        (self as *const Self).cast()
    }

    /// Whether this version has no older version linked (true for an unpublished one).
    pub(crate) fn is_alone(&self) -> bool {
        self.next_ptr(Ordering::Relaxed).is_null()
    }

    /// The link to the next older version, without its [`FROZEN`] bit.
    #[inline(always)]
    fn next_ptr(&self, order: Ordering) -> *mut Self {
        self.next.load(order).map_addr(|a| a & !FROZEN)
    }

    /// Sets [`FROZEN`] on the link below a cancelled batch's add version, so that a writer
    /// still sliding under it fails its CAS (and links its version elsewhere) rather than
    /// into a version the reclaimer is about to unlink. The committer calls it before it
    /// writes the cancellation into the version's word.
    fn freeze(&self) {
        // Relaxed: the committer's Release store of the cancelled word publishes it to the
        // reclaimer; a slider's CAS reads the word itself.
        let mut w = self.next.load(Ordering::Relaxed);
        while let Err(now) = self.next.compare_exchange_weak(
            w,
            w.map_addr(|a| a | FROZEN),
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            w = now;
        }
    }

    /// Whether this is a batch's version its committer has not finished (its word still
    /// sends readers to the decision).
    #[inline]
    fn is_unfinished_batch(&self) -> bool {
        // Acquire: as `ts`.
        is_batch_word(self.ts.load(Ordering::Acquire))
    }

    /// The decided timestamp, or [`PENDING`].
    #[inline]
    pub(crate) fn ts(&self) -> u64 {
        // Acquire pairs with the Release of the deciding CAS, so a reader that sees the
        // timestamp also sees everything the decider did before (its earlier commits).
        self.ts.load(Ordering::Acquire)
    }

    /// The timestamp of a version a snapshot sees (decided, so `stamp` is `At`).
    #[inline]
    pub(crate) fn decided(&self) -> u64 {
        match self.stamp() {
            Stamp::At(t) => t,
            _ => u64::MAX,
        }
    }

    /// The version's stamp, read through its batch's decision while it has one; writes
    /// nothing.
    #[inline]
    pub(crate) fn stamp(&self) -> Stamp {
        match self.ts() {
            PENDING => Stamp::Open,
            BATCH | BATCH_PUT => self
                .decision()
                .map_or(Stamp::Open, |d| Decision::stamp_of(d.state())),
            w if w & CANCELLED != 0 => Stamp::Cancelled(w & !CANCELLED),
            t => Stamp::At(t),
        }
    }

    /// The decision of a version whose word said [`BATCH`].
    #[inline]
    fn decision(&self) -> Option<&Decision> {
        // Relaxed: set before the version was linked, and we reached the version through
        // the Acquire load of a link.
        let d = self.owner.load(Ordering::Relaxed).cast::<Decision>();
        // SAFETY: the committer frees a decision (through the epoch) only after it has
        // rewritten the word of every version of its batch; we read a batch word (`BATCH` or
        // `BATCH_PUT`) from this version's word under a guard before this load, so the
        // decision was not yet handed to the epoch then, and the guard keeps it.
        unsafe { d.as_ref() }
    }

    /// The stamp, after helping: a pending single write is decided, a `READY` batch is
    /// decided. Only a batch still being linked stays open.
    #[inline]
    pub(crate) fn settle(&self, clock: &Clock, guard: &Guard) -> Stamp {
        match self.ts() {
            PENDING => Stamp::At(self.decide(clock, guard)),
            BATCH | BATCH_PUT => match self.decision() {
                Some(d) => d.decide(clock, guard),
                None => Stamp::Open,
            },
            w if w & CANCELLED != 0 => Stamp::Cancelled(w & !CANCELLED),
            t => Stamp::At(t),
        }
    }

    /// As [`VersionNode::settle`], and a batch still being linked is abandoned: what a
    /// writer does to the head it is about to shadow, so that it never waits.
    #[inline]
    fn settle_for_write(&self, clock: &Clock, guard: &Guard) -> Stamp {
        if is_batch_word(self.ts()) {
            if let Some(d) = self.decision() {
                d.abandon();
            }
        }
        self.settle(clock, guard)
    }

    /// For a batch's decided but unfinished add: whether the version it shadows now is a
    /// value, if that may differ from when it was linked over `over` (a single write slid
    /// under it meanwhile); `None` when the version right below is still `over`.
    pub(crate) fn shadowed_now(&self, over: *const (), guard: &Guard) -> Option<bool> {
        if self.ts.load(Ordering::Relaxed) != BATCH_PUT {
            return None;
        }
        let below = self.older(guard);
        if below.map_or(ptr::null(), |b| b.erased()) == over {
            return None;
        }
        Some(
            below
                .and_then(|b| b.effective(guard))
                .is_some_and(|e| e.entry.is_some()),
        )
    }

    /// The committer's last word on one of its batch's versions: the decided timestamp, or
    /// the cancellation's journal position (with [`CANCELLED`]). After this no reader
    /// needs the decision.
    ///
    /// # Safety
    /// The caller is the version's committer, and has not handed the version's decision to
    /// the epoch yet.
    pub(crate) unsafe fn finish(&self, word: u64) {
        debug_assert!(is_batch_word(self.ts.load(Ordering::Relaxed)));
        // A slider still registered must not link its version below this one once the
        // reclaimer may unlink it: the frozen link makes its CAS fail.
        if word & CANCELLED != 0 && self.ts.load(Ordering::Relaxed) == BATCH_PUT {
            self.freeze();
        }
        // Release: a reader that reads the new word and goes on to a newer version still
        // sees what the decision's readers saw.
        self.ts.store(word, Ordering::Release);
    }

    /// The first version at or below this one that is decided (skipping cancelled ones):
    /// what a write over this version shadows. Call it on a settled head.
    #[inline]
    pub(crate) fn effective<'g>(&'g self, guard: &'g Guard) -> Option<&'g VersionNode<V>> {
        let mut v = Some(self);
        while let Some(x) = v {
            if let Stamp::At(_) = x.stamp() {
                return Some(x);
            }
            v = x.older(guard);
        }
        None
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
        let p = self.next_ptr(Ordering::Acquire);
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
    /// Versions of cancelled batches unlinked and handed to the epoch (never counted as
    /// routes, dead versions or markers).
    pub(crate) cancelled: usize,
    /// The head was a cancelled version, and went (a second pass pruned the new head).
    unlinked_head: bool,
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

impl Pruned {
    /// A prune that unlinked and kept nothing, reporting `head_ts` as the head's stamp.
    fn nothing(head_ts: u64) -> Self {
        Self {
            values: 0,
            markers: 0,
            cancelled: 0,
            dead_kept: 0,
            retirable: false,
            unlinked_head: false,
            head_ts,
            free_at: u64::MAX,
        }
    }
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

    /// The newest decided version: what a read "now" sees. An undecided head is skipped
    /// (its write has not committed), and so is a cancelled batch's version, so this read
    /// never writes shared memory.
    ///
    /// Skipping an undecided head means reading its `next`, and the order of the loads
    /// matters. Between a load of the head's stamp that says open and the load of its
    /// `next`, the head may be decided and a reclaimer may then unlink the version below
    /// it and clear `next` (that version is shadowed and no snapshot sees it). So the
    /// stamp is loaded again after `next`: if it is still open, `next` was read while the
    /// head was open, and the reclaimer never touches the link below an open head
    /// (`prune` keeps the version an open head shadows), so it is the current version. If
    /// it is decided by then, the head is the current version. The second load cannot miss
    /// a decision that the cleared link depended on: the reclaimer loaded the decided
    /// stamp (Acquire) before it stored the cleared link (Release); a `next` load that
    /// reads that store synchronizes with it, so the stamp load after it sees the decision
    /// (read-read coherence, for the version's word and for its batch's decision alike).
    #[inline]
    pub(crate) fn current<'g>(&self, guard: &'g Guard) -> Option<&'g VersionNode<V>> {
        let (mut v, _) = self.head_ptr(guard);
        // Besides the head, only a writer's version sliding under an unfinished batch's
        // version may be open; the same two loads step over it.
        while let Some(x) = v {
            v = match x.stamp() {
                Stamp::At(_) => return Some(x),
                Stamp::Cancelled(_) => x.older(guard),
                Stamp::Open => {
                    #[cfg(test)]
                    tests::between_ts_and_next();
                    let older = x.older(guard);
                    #[cfg(rtm_negative = "stale-current")]
                    {
                        // Broken on purpose: trust `next` without checking that the version
                        // is still open, as if the reclaimer could not have cleared it.
                        older
                    }
                    #[cfg(not(rtm_negative = "stale-current"))]
                    match x.stamp() {
                        Stamp::At(_) => return Some(x),
                        _ => older,
                    }
                }
            };
        }
        None
    }

    /// The version snapshot `s` sees (invariant 1), helping to decide an undecided head.
    #[inline]
    pub(crate) fn visible<'g>(
        &self,
        s: u64,
        clock: &Clock,
        guard: &'g Guard,
    ) -> Option<&'g VersionNode<V>> {
        let (mut v, _) = self.head_ptr(guard);
        while let Some(x) = v {
            // A batch still being linked is skipped: its timestamp, once decided, will be
            // above `s` (see `Decision::state`).
            if let Stamp::At(t) = x.settle(clock, guard) {
                if t <= s {
                    return Some(x);
                }
            }
            v = x.older(guard);
        }
        None
    }

    /// Links `new` (pending, or a batch's) as the newest version. On success returns the
    /// version it shadows, decided, if any. The caller then decides `new`. On failure `new`
    /// is returned to the caller unlinked, with no older version: a caller that then makes
    /// it the first version of a fresh node must not carry a pointer into this chain (the
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
    ///
    /// The head is settled first: a pending write or a ready batch is decided, and a batch
    /// still being linked is abandoned, so the push never waits for another writer and
    /// timestamps grow from old to new along the chain. The version shadowed is the newest
    /// decided one (cancelled versions in between are skipped; they stay linked under
    /// `new` until the reclaimer takes them out).
    ///
    /// One exception keeps a large batch from being cancelled by every single write that
    /// meets it: a single write (`new` pending) whose head is an unfinished batch's add
    /// slides under it (`slide_under`), and is decided there, before the batch.
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
            if let Some(h) = h {
                // Relaxed: `new` is ours.
                let single = new_is_single(new);
                if single && h.ts() == BATCH_PUT {
                    if let Some(d) = h.decision() {
                        if d.slide() {
                            let slid = self.slide_under(h, new, clock, guard, &cond);
                            d.unslide(clock, guard);
                            match slid {
                                Some(r) => return Ok(r),
                                // The batch was cancelled meanwhile: start again.
                                None => continue,
                            }
                        }
                    }
                }
                h.settle_for_write(clock, guard);
            }
            let shadowed = h.and_then(|h| h.effective(guard));
            if !cond(shadowed) {
                // SAFETY: as above, `new` goes back to the caller as it came.
                unsafe { (*new).next.store(ptr::null_mut(), Ordering::Relaxed) };
                return Ok(Err(shadowed));
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
                return Ok(Ok(shadowed));
            }
        }
    }

    /// Links the single write `new` right below `batch`, an add of an unfinished batch
    /// whose decision the caller registered with (`Decision::slide`), if `cond` holds for
    /// the version it then shadows, and decides `new`'s timestamp. `None` if the batch
    /// was cancelled first (the link below it is frozen): `new` is still the caller's.
    ///
    /// The write is serialized just before the batch: the batch cannot be decided before
    /// the caller's `unslide`, which follows `new`'s decision, so the batch's timestamp
    /// comes out above `new`'s and the chain stays ordered (batch, `new`, older). A reader
    /// at a snapshot sees `new` pending like any single write and helps decide it; the
    /// batch's version it skips or sees as before. The version below `batch` is settled
    /// first (another slider's write is decided), as a push settles the head.
    fn slide_under<'g>(
        &self,
        batch: &'g VersionNode<V>,
        new: *mut VersionNode<V>,
        clock: &Clock,
        guard: &'g Guard,
        cond: &impl Fn(Option<&VersionNode<V>>) -> bool,
    ) -> Option<Pushed<'g, V>> {
        loop {
            // Acquire: as `older`.
            let w = batch.next.load(Ordering::Acquire);
            if w.addr() & FROZEN != 0 {
                // SAFETY: `new` is still ours; it goes back with no older version.
                unsafe { (*new).next.store(ptr::null_mut(), Ordering::Relaxed) };
                return None;
            }
            // SAFETY: as in `VersionNode::older`: reachable from the chain, pinned.
            let below = unsafe { w.as_ref() };
            if let Some(b) = below {
                b.settle(clock, guard);
            }
            let shadowed = below.and_then(|b| b.effective(guard));
            if !cond(shadowed) {
                // SAFETY: as above.
                unsafe { (*new).next.store(ptr::null_mut(), Ordering::Relaxed) };
                return Some(Err(shadowed));
            }
            // SAFETY: `new` is ours until the CAS below publishes it.
            unsafe { (*new).next.store(w, Ordering::Relaxed) };
            // Release publishes `new`'s entry and `next` to whoever follows `batch`'s link;
            // Acquire on failure re-reads. Fails once the committer froze the link.
            if batch
                .next
                .compare_exchange(w, new, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                // SAFETY: `new` is linked now; the guard keeps it.
                unsafe { &*new }.decide(clock, guard);
                return Some(Ok(shadowed));
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
        permit: &SweepPermit,
    ) -> Pruned {
        let out = self.prune_once(now, pinned, journal, guard, permit);
        if !out.unlinked_head {
            return out;
        }
        // A cancelled head went: prune what is the head now.
        let more = self.prune_once(now, pinned, journal, guard, permit);
        Pruned {
            values: out.values + more.values,
            markers: out.markers + more.markers,
            cancelled: out.cancelled + more.cancelled,
            ..more
        }
    }

    fn prune_once(
        &self,
        now: u64,
        pinned: &[u64],
        journal: &Journal,
        guard: &Guard,
        _permit: &SweepPermit,
    ) -> Pruned {
        let mut out = Pruned::nothing(0);
        let (head, dead) = self.head_ptr(guard);
        let Some(head) = head else { return out };
        debug_assert!(
            !dead,
            "only the reclaimer retires, and it skips retired keys"
        );
        let head_stamp = head.stamp();
        out.head_ts = match head_stamp {
            Stamp::At(t) | Stamp::Cancelled(t) => t,
            Stamp::Open => PENDING,
        };
        // An open or cancelled head counts as +infinity: the version below it is current.
        let newer_ts = match head_stamp {
            Stamp::At(t) => t,
            _ => PENDING,
        };
        let kept = Self::sweep(head, newer_ts, now, pinned, journal, guard, &mut out);
        let lowest = pinned.first().copied().unwrap_or(now).min(now);
        match head_stamp {
            Stamp::Cancelled(at) if at <= now => {
                let below = head.next_ptr(Ordering::Relaxed);
                if below.is_null() {
                    // A lone cancelled version: the key never had a value; it can go.
                    out.retirable = true;
                } else {
                    let w = ptr::from_ref(head).cast_mut();
                    // Acquire on failure / Release on success: a writer's push CAS on the
                    // same word either comes first (and we leave the head alone) or finds
                    // the version below as the head, initialized long ago.
                    if self
                        .head
                        .compare_exchange(w, below, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        out.cancelled += 1;
                        out.unlinked_head = true;
                        destroy_later(w, guard);
                    }
                }
            }
            Stamp::Cancelled(at) => out.free_at = out.free_at.min(at),
            Stamp::At(t) if head.entry.is_none() => {
                out.retirable = ptr::eq(kept, head) && t <= lowest;
                if !out.retirable {
                    // A deletion marker: the key can go once the horizon reaches it.
                    out.free_at = out.free_at.min(t);
                }
            }
            _ => {}
        }
        out
    }

    /// Prunes the versions below `top`, which stays (with everything above it), as
    /// `prune` does: `newer_ts` is the timestamp that shadows the first version below `top`
    /// (`PENDING` if `top` is open or cancelled). Returns the lowest version kept.
    fn sweep<'g>(
        top: &'g VersionNode<V>,
        mut newer_ts: u64,
        now: u64,
        pinned: &[u64],
        journal: &Journal,
        guard: &'g Guard,
        out: &mut Pruned,
    ) -> &'g VersionNode<V> {
        let mut kept: &VersionNode<V> = top;
        let mut cur = top.older(guard);
        let mut garbage: Vec<(*mut VersionNode<V>, Option<u64>)> = Vec::new();
        while let Some(v) = cur {
            let next = v.older(guard);
            // The link below an unfinished batch's version is never written here: writers
            // may be sliding under it (CAS on that link), and its committer reads it to
            // count what the batch shadowed. So the version right below stays.
            let under_batch = kept.is_unfinished_batch();
            let (keep, ts) = match v.stamp() {
                Stamp::At(t) => (
                    under_batch || t > now || sees_between(t, newer_ts, now, pinned),
                    Some(t),
                ),
                // Nobody sees a cancelled version; it goes once the reclaimer has read the
                // cancellation's record (the record names this chain's node, which must
                // stay linked until then).
                Stamp::Cancelled(at) => (under_batch || at > now, None),
                // A single write sliding under an unfinished batch (the only open version
                // below a head): kept, and like an open head it counts as +infinity for
                // the version below it.
                Stamp::Open => {
                    newer_ts = PENDING;
                    (true, None)
                }
            };
            if keep {
                let link = kept.next.load(Ordering::Relaxed);
                if !under_batch && !ptr::eq(link.map_addr(|a| a & !FROZEN), v) {
                    // Release: a reader that follows the new link sees `v` initialized (it
                    // was long ago, but the link is the edge readers follow). A frozen
                    // link stays frozen.
                    let to = ptr::from_ref(v).cast_mut();
                    kept.next.store(
                        to.map_addr(|a| a | (link.addr() & FROZEN)),
                        Ordering::Release,
                    );
                }
                match ts {
                    Some(_) if newer_ts != PENDING => {
                        // Shadowed by a committed version: dead, kept for a pin or a feed.
                        // It can go once the horizon reaches the version that shadowed it.
                        out.free_at = out.free_at.min(newer_ts);
                        if v.entry.is_some() {
                            out.dead_kept += 1;
                        }
                    }
                    None => {
                        if let Stamp::Cancelled(at) = v.stamp() {
                            out.free_at = out.free_at.min(at);
                        }
                    }
                    _ => {}
                }
                kept = v;
            } else {
                match ts {
                    None => out.cancelled += 1,
                    Some(_) if v.entry.is_some() => out.values += 1,
                    Some(_) => out.markers += 1,
                }
                garbage.push((v as *const _ as *mut _, ts));
            }
            if let Some(t) = ts {
                newer_ts = t;
            }
            cur = next;
        }
        let link = kept.next.load(Ordering::Relaxed);
        if !kept.is_unfinished_batch() && !link.map_addr(|a| a & !FROZEN).is_null() {
            let cut = ptr::null_mut::<VersionNode<V>>();
            kept.next
                .store(cut.map_addr(|_| link.addr() & FROZEN), Ordering::Release);
        }
        for (g, ts) in garbage {
            if let Some(ts) = ts {
                journal.forget(ts, g.cast_const().cast(), guard);
            }
            destroy_later(g, guard);
        }
        kept
    }

    /// Prunes below `version`, the version a single write committed at `t`, which the
    /// journal names and which is therefore still linked (only the reclaimer unlinks a
    /// version that is not a cancelled head, and it takes it out of the journal first).
    /// The versions above it are newer than `t`, and `now <= t` keeps them all (see
    /// `Reclaimer::visit`): a prune from the head would walk them only to keep them, and
    /// a hot key's chain while the reclaimer is behind holds many. What `t` shadowed, and
    /// what lies below it, is pruned exactly as `prune` would. When `version` is the head
    /// (or is not decided at `t`), this is `prune`, which also finds whether the key can
    /// be retired; otherwise the result never says so (the head's own commit, processed
    /// later, will).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn prune_below(
        &self,
        version: &VersionNode<V>,
        t: u64,
        now: u64,
        pinned: &[u64],
        journal: &Journal,
        guard: &Guard,
        permit: &SweepPermit,
    ) -> Pruned {
        let (head, _) = self.head_ptr(guard);
        let at_head = head.is_some_and(|h| ptr::eq(h, version));
        if at_head || now > t || version.stamp() != Stamp::At(t) {
            return self.prune(now, pinned, journal, guard, permit);
        }
        let mut out = Pruned::nothing(PENDING);
        Self::sweep(version, t, now, pinned, journal, guard, &mut out);
        out
    }

    /// Retires the key if its chain is still the lone deletion marker (or lone cancelled
    /// version) `prune` saw. Only the reclaimer retires (`_permit`): it then removes the
    /// node, once. On success a lone marker is taken out of the journal: the node (and
    /// with it the marker) goes to the epoch next. Returns `None` if the chain was not
    /// retired, else whether its lone version was a deletion marker (`false`: a cancelled
    /// version, which the marker count never counted).
    pub(crate) fn retire(
        &self,
        journal: &Journal,
        guard: &Guard,
        _permit: &SweepPermit,
    ) -> Option<bool> {
        let (h, dead) = self.head_ptr(guard);
        let h = h?;
        if dead || h.older(guard).is_some() {
            return None;
        }
        let marker = match h.stamp() {
            Stamp::At(t) if h.entry.is_none() => Some(t),
            Stamp::Cancelled(at) if at != u64::MAX => None,
            _ => return None,
        };
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
        if !retired {
            return None;
        }
        if let Some(t) = marker {
            journal.forget(t, h.erased(), guard);
        }
        Some(marker.is_some())
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
            let (next, value) = unsafe { ((*p).next_ptr(Ordering::Relaxed), (*p).entry.is_some()) };
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

/// Whether `new`, a version about to be pushed, is a single write's (pending) rather than a
/// batch's.
#[inline]
fn new_is_single<V>(new: *mut VersionNode<V>) -> bool {
    // SAFETY: the caller of `push_if` owns `new` (not yet published).
    // Relaxed: nobody else has written it.
    unsafe { &*new }.ts.load(Ordering::Relaxed) == PENDING
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

/// Hands a batch's decision to the epoch, once the committer has finished every version of
/// the batch (so no version's word sends a reader to it any more).
pub(crate) fn destroy_decision_later(d: *mut Decision, guard: &Guard) {
    let d = SendDecision(d);
    // SAFETY: every version that named the decision has its own word now, so no thread
    // that pins after this reaches it; threads pinned now are waited out by the epoch. The
    // committer defers it once.
    unsafe {
        guard.defer_unchecked(move || {
            let d = d;
            drop(Box::from_raw(d.0))
        });
    }
}

/// A decision handed to the epoch's destructor.
struct SendDecision(*mut Decision);
// SAFETY: a decision is an atomic word, freed once by whichever thread runs the destructor.
unsafe impl Send for SendDecision {}

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

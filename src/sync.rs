//! The one place that chooses between `std` and `loom` primitives.
//!
//! Every atomic, every `UnsafeCell`, the `Arc` that a Fib's handles share and every epoch
//! pin of the crate goes through this module, so that the loom models in `loom-tests/`
//! check the very code that ships. Under `--cfg loom` the atomics are loom's, the `Arc`
//! counts in a loom atomic and a table pins its own [`crossbeam_epoch::Collector`];
//! otherwise they are `std`'s and the table pins the process-wide default collector, whose
//! thread-local handle keeps `pin()` cheap.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};

pub(crate) use std::sync::atomic::Ordering;

#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

pub(crate) use crossbeam_utils::CachePadded;

/// Gives the core to another thread (a committer backing off after a cancelled attempt).
#[cfg(loom)]
pub(crate) use loom::thread::yield_now;
/// Gives the core to another thread (a committer backing off after a cancelled attempt).
#[cfg(not(loom))]
pub(crate) use std::thread::yield_now;

#[cfg(loom)]
pub(crate) use loom_arc::Arc;
#[cfg(not(loom))]
pub(crate) use std::sync::Arc;

/// An `Arc` whose reference count is a loom atomic, with `std`'s orderings.
///
/// `loom::sync::Arc` will not do: its `strong_count` synchronizes (a `SeqCst` load of
/// the count), where `std`'s is a `Relaxed` load that orders nothing. A model of code that
/// trusts `strong_count` would then pass under loom and race in production. This one
/// counts in a loom `AtomicUsize` exactly as `std` does: `Relaxed` increments, `Release`
/// decrements (the last one followed by an `Acquire` fence before the value is dropped),
/// an `Acquire` load in `get_mut` and a `Relaxed` one in `strong_count`. The value lives
/// in a `std` `Arc`, whose own count always equals the modelled one (loom runs a model's
/// threads one at a time on one OS thread), so it is freed exactly when the modelled
/// count reaches zero.
#[cfg(loom)]
mod loom_arc {
    use super::{fence, AtomicUsize, Ordering};

    pub(crate) struct Arc<T> {
        inner: std::sync::Arc<Inner<T>>,
    }

    struct Inner<T> {
        strong: AtomicUsize,
        value: T,
    }

    impl<T> Arc<T> {
        pub(crate) fn new(value: T) -> Self {
            Self {
                inner: std::sync::Arc::new(Inner {
                    strong: AtomicUsize::new(1),
                    value,
                }),
            }
        }

        /// The number of handles: a `Relaxed` load, as `std`'s.
        #[allow(dead_code)] // `std`'s API; the crate decides with `get_mut` (see above)
        pub(crate) fn strong_count(this: &Self) -> usize {
            this.inner.strong.load(Ordering::Relaxed)
        }

        /// The value, if this is the only handle. `Acquire`, as `std`'s: synchronizes
        /// with the `Release` decrement of every dropped handle. (`std` first locks the
        /// weak count; this `Arc` has no `Weak`, so that step has nothing to model.)
        pub(crate) fn get_mut(this: &mut Self) -> Option<&mut T> {
            if this.inner.strong.load(Ordering::Acquire) != 1 {
                return None;
            }
            let inner = std::sync::Arc::get_mut(&mut this.inner)
                .expect("the modelled count and the std count agree");
            Some(&mut inner.value)
        }
    }

    impl<T> Clone for Arc<T> {
        fn clone(&self) -> Self {
            // Relaxed, as `std`'s: a new handle is made from a live one, which keeps the
            // value alive; the increment need not order anything.
            self.inner.strong.fetch_add(1, Ordering::Relaxed);
            Self {
                inner: std::sync::Arc::clone(&self.inner),
            }
        }
    }

    impl<T> Drop for Arc<T> {
        fn drop(&mut self) {
            // Release, as `std`'s: this handle's uses of the value happen before whatever
            // a thread that sees the decrement with `Acquire` does next (`get_mut`, or the
            // drop of the value after the last decrement's fence below).
            if self.inner.strong.fetch_sub(1, Ordering::Release) == 1 {
                fence(Ordering::Acquire);
            }
        }
    }

    impl<T> std::ops::Deref for Arc<T> {
        type Target = T;

        fn deref(&self) -> &T {
            &self.inner.value
        }
    }
}

pub(crate) use crossbeam_epoch::Guard;

/// A once-initialized cell: `std`'s in both builds. loom has no `OnceLock`; the crate
/// initializes one only under a writers' mutex and readers only call `get` (an `Acquire`
/// load that never blocks), so std's never waits inside a model. The loom models of
/// `NexthopGroups` stay inside its first segment of slots, whose one initialization
/// happens before any thread is spawned.
pub(crate) use std::sync::OnceLock;

/// A cell holding an optional `std::sync::Arc<T>` that readers load without a lock and
/// writers replace with one store: a next-hop group's published state
/// (`src/nexthop.rs`).
///
/// Normally it is [`arc_swap::ArcSwapOption`]: a load is a few atomic operations on
/// thread-local debt slots, never a lock, never a write to the `Arc`'s shared count, and
/// a store swaps the pointer and waits for no reader. arc-swap is not loom-aware (its
/// atomics are `std`'s, invisible to loom), so under `cfg(loom)` the cell is a loom
/// `Mutex<Option<Arc<T>>>`: a load clones the `Arc` under the lock and releases it
/// before the caller reads. That models arc-swap's documented contract, which is what
/// the crate relies on: every load and store is one atomic step in a single total order
/// (arc-swap's operations are `SeqCst`), a load returns the value of the last store
/// before it, and the loaded `Arc` stays alive while the reader holds it. arc-swap's own
/// lock-free internals are checked by its own test suite, not by our models.
pub(crate) struct ArcCell<T> {
    #[cfg(not(loom))]
    inner: arc_swap::ArcSwapOption<T>,
    #[cfg(loom)]
    inner: loom::sync::Mutex<Option<std::sync::Arc<T>>>,
}

impl<T> ArcCell<T> {
    /// An empty cell.
    pub(crate) fn empty() -> Self {
        Self {
            #[cfg(not(loom))]
            inner: arc_swap::ArcSwapOption::empty(),
            #[cfg(loom)]
            inner: loom::sync::Mutex::new(None),
        }
    }

    /// Runs `f` on the value of the last store. Normally through arc-swap's load guard:
    /// no lock, no allocation, no write to the `Arc`'s count.
    #[inline]
    pub(crate) fn read<R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        #[cfg(not(loom))]
        {
            let guard = self.inner.load();
            f(guard.as_deref())
        }
        #[cfg(loom)]
        {
            let value = self
                .inner
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            f(value.as_deref())
        }
    }

    /// A share of the value of the last store.
    pub(crate) fn load_full(&self) -> Option<std::sync::Arc<T>> {
        #[cfg(not(loom))]
        {
            self.inner.load_full()
        }
        #[cfg(loom)]
        {
            self.inner
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        }
    }

    /// Publishes `value` in one atomic step and returns the value it replaced.
    pub(crate) fn swap(&self, value: Option<std::sync::Arc<T>>) -> Option<std::sync::Arc<T>> {
        #[cfg(not(loom))]
        {
            self.inner.swap(value)
        }
        #[cfg(loom)]
        {
            std::mem::replace(
                &mut *self
                    .inner
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                value,
            )
        }
    }
}

impl<T> ArcCell<T> {
    /// A reader's cached share of this cell's value (see [`ArcCellCache`]).
    pub(crate) fn cache(&self) -> ArcCellCache<'_, T> {
        ArcCellCache {
            #[cfg(not(loom))]
            inner: arc_swap::Cache::new(&self.inner),
            #[cfg(loom)]
            cell: self,
            #[cfg(loom)]
            cached: self.load_full(),
        }
    }
}

/// One reader's cached share of an [`ArcCell`]'s value: [`arc_swap::Cache`]. A read first
/// revalidates: one `Relaxed` load of the cell's pointer, compared with the cached one;
/// only when they differ does it load the new value in full. The cached `Arc` keeps the
/// old value alive, so its address cannot be reused while cached and equal pointers mean
/// the same value. `Relaxed` is enough for what the crate promises: a store that
/// happens before a read (its caller saw the writer return, through whatever
/// synchronization told it so) is seen by that read, by read-write coherence; and the data
/// behind a new pointer is synchronized by the full load, not by this check.
///
/// Under `cfg(loom)` the check compares the cached `Arc` with the stand-in cell's current
/// one under its lock, the same contract in one modelled step.
pub(crate) struct ArcCellCache<'a, T> {
    #[cfg(not(loom))]
    inner: arc_swap::Cache<&'a arc_swap::ArcSwapOption<T>, Option<std::sync::Arc<T>>>,
    #[cfg(loom)]
    #[cfg_attr(rtm_negative = "selector-stale", allow(dead_code))]
    cell: &'a ArcCell<T>,
    #[cfg(loom)]
    cached: Option<std::sync::Arc<T>>,
}

impl<T> ArcCellCache<'_, T> {
    /// The cached share after revalidating it (`None`: the cell is empty): the value of
    /// the last store, borrowed from the cache, which keeps it alive until a later
    /// revalidation replaces it.
    #[inline]
    #[cfg_attr(all(loom, rtm_negative = "selector-stale"), allow(dead_code))]
    pub(crate) fn get(&mut self) -> Option<&std::sync::Arc<T>> {
        #[cfg(not(loom))]
        {
            self.inner.load().as_ref()
        }
        #[cfg(loom)]
        {
            let current = self.cell.load_full();
            let same = match (&current, &self.cached) {
                (Some(a), Some(b)) => std::sync::Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            if !same {
                self.cached = current;
            }
            self.cached.as_ref()
        }
    }

    /// The cached share without revalidating it: only the negative control
    /// `selector-stale` of the next-hop model uses it.
    #[cfg(all(loom, rtm_negative = "selector-stale"))]
    pub(crate) fn get_stale(&mut self) -> Option<&std::sync::Arc<T>> {
        self.cached.as_ref()
    }
}

/// An `UnsafeCell` with loom's closure API, so the rest of the crate is written once.
#[derive(Debug)]
pub(crate) struct UnsafeCell<T> {
    #[cfg(loom)]
    inner: loom::cell::UnsafeCell<T>,
    #[cfg(not(loom))]
    inner: std::cell::UnsafeCell<T>,
}

impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            #[cfg(loom)]
            inner: loom::cell::UnsafeCell::new(value),
            #[cfg(not(loom))]
            inner: std::cell::UnsafeCell::new(value),
        }
    }

    /// Runs `f` with a pointer that may be read through.
    #[allow(dead_code)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        #[cfg(loom)]
        {
            self.inner.with(f)
        }
        #[cfg(not(loom))]
        {
            f(self.inner.get())
        }
    }

    /// Runs `f` with a pointer that may be written through.
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(loom)]
        {
            self.inner.with_mut(f)
        }
        #[cfg(not(loom))]
        {
            f(self.inner.get())
        }
    }
}

/// How a table enters a crossbeam-epoch critical section.
pub(crate) struct Epoch {
    #[cfg(loom)]
    collector: crossbeam_epoch::Collector,
    /// Under loom, the participant of each loom thread that pinned this table: registered
    /// on the thread's first pin and kept until the table is dropped, as in production the
    /// default collector's thread-local handle lives as long as its thread. (Registering a
    /// participant per call would make every call insert into the collector's participant
    /// list and push a bag onto its global queue, work that no real call does, and loom
    /// would explore every interleaving of it.) Declared after `collector`: dropping the
    /// participants drops the last references to the collector, which then runs every
    /// destructor still deferred, so a model can count them once the table is dropped.
    #[cfg(loom)]
    participants: std::sync::Mutex<Vec<(loom::thread::ThreadId, Box<Participant>)>>,
}

/// A registered crossbeam-epoch participant, used only by the loom thread that registered
/// it (and dropped with its table).
#[cfg(loom)]
struct Participant(crossbeam_epoch::LocalHandle);

// A `LocalHandle` is `!Send` because its `Local` keeps per-thread state in plain cells.
// A `Participant` is only pinned by the loom thread that registered it (`Epoch::pin` looks
// it up by that thread's id), and is dropped with the table, when no call is running and
// every call that used it happened before the drop (the table is shared through loom's
// `Arc`, whose drop synchronizes). loom runs all of a model's threads on one OS thread.
// SAFETY: only its own thread uses a participant, as just argued.
#[cfg(loom)]
unsafe impl Send for Participant {}
// SAFETY: as above; no two threads use one participant.
#[cfg(loom)]
unsafe impl Sync for Participant {}

impl Epoch {
    /// The process-wide default collector (or, under loom, a fresh private one).
    pub(crate) fn new() -> Self {
        #[cfg(loom)]
        {
            Self::with_collector(crossbeam_epoch::Collector::new())
        }
        #[cfg(not(loom))]
        {
            Self {}
        }
    }

    /// A table built on its own collector, so that a loom model can check that everything
    /// it deferred is freed once the table (and with it the collector) is dropped.
    #[cfg(loom)]
    pub(crate) fn with_collector(collector: crossbeam_epoch::Collector) -> Self {
        Self {
            collector,
            participants: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Pins the current thread for the duration of one call.
    #[inline]
    pub(crate) fn pin(&self) -> Guard {
        #[cfg(loom)]
        {
            use std::sync::PoisonError;
            // The std mutex only guards the list; it is never held across a loom
            // operation (registering and pinning are), so no loom thread can block on it.
            let me = loom::thread::current().id();
            let known = self
                .participants
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .find(|(id, _)| *id == me)
                .map(|(_, p)| &**p as *const Participant);
            let participant = known.unwrap_or_else(|| {
                let p = Box::new(Participant(self.collector.register()));
                let addr = &*p as *const Participant;
                self.participants
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((me, p));
                addr
            });
            // SAFETY: the participant is boxed (its address survives the vector growing)
            // and dropped only with `self`, so it is live for this borrow; it belongs to
            // the current loom thread (see `Participant`).
            unsafe { &*participant }.0.pin()
        }
        #[cfg(not(loom))]
        {
            crossbeam_epoch::pin()
        }
    }

    /// Runs the epoch until every destructor this thread deferred so far has run, and
    /// says whether they have. The epoch frees the bags of deferred destructors in the
    /// order they were queued, a few bags per flush, and only once every pinned thread
    /// has caught up with it; the queue may hold other tables' or threads' garbage ahead
    /// of this thread's, and another thread may be pinned while the scheduler has it off
    /// its core. So a marker is deferred behind this thread's garbage, and the thread
    /// flushes until the marker has run: the bags ahead of it have run too. A flush costs
    /// a fraction of a microsecond; after 64 the thread yields between flushes, for at
    /// most [`FLUSH_FOR`] in all (a thread that stays pinned holds the epoch back for as
    /// long as it does). A thread already pinned (a destructor that calls back into its
    /// table) holds the epoch back itself, so it flushes 8 times and does not wait. Under
    /// loom, at most 8 flushes and no clock: the models check what a flush frees, not how
    /// long a caller waits.
    pub(crate) fn flush_deferred(&self) -> bool {
        #[cfg(not(loom))]
        let nested = crossbeam_epoch::is_pinned();
        #[cfg(loom)]
        let nested = false;
        let reached = std::sync::Arc::new(AtomicBool::new(false));
        let marker = std::sync::Arc::clone(&reached);
        // Release: pairs with the Acquire loads below, which then know the bags queued
        // before the marker's have run.
        self.pin()
            .defer(move || marker.store(true, Ordering::Release));
        #[cfg(not(loom))]
        let start = std::time::Instant::now();
        for flushes in 1.. {
            self.pin().flush();
            // Acquire: see the marker's Release.
            if reached.load(Ordering::Acquire) {
                return true;
            }
            if (nested || cfg!(loom)) && flushes == 8 {
                return false;
            }
            #[cfg(not(loom))]
            if flushes >= 64 {
                if start.elapsed() >= FLUSH_FOR {
                    return false;
                }
                std::thread::yield_now();
            }
        }
        unreachable!("the loop returns")
    }
}

/// The longest `Epoch::flush_deferred` waits for a pinned thread to let the epoch move.
#[cfg(not(loom))]
pub(crate) const FLUSH_FOR: std::time::Duration = std::time::Duration::from_millis(100);

/// Hints the CPU to start loading the cache line at `p`, so that a walk overlaps that miss
/// with other work. Nothing under loom (it models no caches) or off x86-64.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse", not(loom)))]
    // SAFETY: a prefetch is only a hint: it cannot fault, whatever `p` is, reads nothing
    // into the program and writes nothing.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>());
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse", not(loom))))]
    let _ = p;
}

//! Support shared by the loom models: keys, a payload whose drops are counted, an
//! allocator that turns a use-after-free into a panic, and the model runner.
//!
//! # Why a poisoning allocator
//!
//! loom checks the interleavings of atomics and `UnsafeCell`s, but it does not know when
//! plain heap memory is freed: a thread that reads a version or a skip-list node after
//! another thread freed it usually reads the stale bytes and carries on, so a broken
//! reclamation protocol would pass. [`Quarantine`] fills every freed block with
//! [`POISON`] and holds it back from reuse for the next [`QUARANTINE`] frees. Reading
//! through a freed node then meets either a loom atomic whose object index is the poison
//! pattern (loom panics on the out-of-range index) or a [`Tracked`] payload whose canary is
//! not [`ALIVE`] (the payload panics). Both are ordinary panics, which loom reports as a
//! failed model and the negative controls catch.

#![allow(dead_code)] // each model binary uses a different part of this module

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rtm::{InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};

// ---------------------------------------------------------------------------------------
// Poisoning quarantine allocator
// ---------------------------------------------------------------------------------------

/// The byte every freed block is filled with.
pub const POISON: u8 = 0xa5;
/// How many freed blocks are held back (poisoned) before the system allocator gets them.
const QUARANTINE: usize = 1 << 14;

/// A global allocator that poisons freed memory and delays its reuse.
pub struct Quarantine;

struct Ring {
    blocks: [(usize, usize, usize); QUARANTINE], // (address, size, align)
    next: usize,
}

/// The ring of quarantined blocks, guarded by `RING_LOCK`.
struct RingCell(UnsafeCell<Ring>);

// SAFETY: the ring is only accessed while `RING_LOCK` is held.
unsafe impl Sync for RingCell {}

static RING_LOCK: AtomicBool = AtomicBool::new(false);
static RING: RingCell = RingCell(UnsafeCell::new(Ring {
    blocks: [(0, 0, 0); QUARANTINE],
    next: 0,
}));

// SAFETY: every block handed out comes from `System` with the caller's layout, and is
// returned to `System` exactly once, with that layout, when it leaves the ring. The ring
// is only touched under `RING_LOCK`, a spin lock that never allocates.
unsafe impl GlobalAlloc for Quarantine {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout and contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller gives up `ptr`, a live block of `layout.size()` bytes.
        unsafe { std::ptr::write_bytes(ptr, POISON, layout.size()) };
        while RING_LOCK
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        // SAFETY: `RING_LOCK` is held, so this is the only access to `RING`.
        let evicted = unsafe {
            let ring = &mut *RING.0.get();
            let slot = &mut ring.blocks[ring.next];
            let old = *slot;
            *slot = (ptr as usize, layout.size(), layout.align());
            ring.next = (ring.next + 1) % QUARANTINE;
            old
        };
        RING_LOCK.store(false, Ordering::Release);
        let (addr, size, align) = evicted;
        if addr != 0 {
            // SAFETY: the evicted block was allocated by `System` with this size and
            // alignment (recorded above when it was freed) and is freed once, here.
            unsafe {
                System.dealloc(
                    addr as *mut u8,
                    Layout::from_size_align_unchecked(size, align),
                )
            };
        }
    }
}

#[global_allocator]
static ALLOCATOR: Quarantine = Quarantine;

// ---------------------------------------------------------------------------------------
// Tracked payloads
// ---------------------------------------------------------------------------------------

/// The canary of a live [`Tracked`]; a dropped one holds [`DEAD`], a freed one the poison.
const ALIVE: u64 = 0x600d_600d_600d_600d;
const DEAD: u64 = 0xdead_dead_dead_dead;

/// Counts, per value id, how many copies of the value exist. Plain `std` atomics: the
/// bookkeeping is not part of any protocol under test, so loom need not schedule it (loom
/// runs a model's threads one at a time on one OS thread, so it is exact).
pub struct Ledger {
    live: Vec<AtomicIsize>,
}

impl Ledger {
    pub fn new(ids: usize) -> Arc<Self> {
        Arc::new(Self {
            live: (0..ids).map(|_| AtomicIsize::new(0)).collect(),
        })
    }

    /// A new value `id`, owned by the caller (to be moved into the table).
    pub fn value(self: &Arc<Self>, id: usize) -> Tracked {
        self.live[id].fetch_add(1, Ordering::Relaxed);
        Tracked {
            canary: ALIVE,
            id,
            ledger: Arc::clone(self),
        }
    }

    /// Copies of value `id` that have not been dropped.
    pub fn live(&self, id: usize) -> isize {
        self.live[id].load(Ordering::Relaxed)
    }

    /// Asserts that every value ever created was dropped exactly once.
    pub fn assert_all_freed(&self) {
        for (id, n) in self.live.iter().enumerate() {
            let n = n.load(Ordering::Relaxed);
            assert_eq!(n, 0, "value {id}: {n} copies never dropped (leak)");
        }
    }
}

/// A route payload that panics when it is cloned or dropped after it was dropped or freed,
/// and counts its copies in a [`Ledger`].
pub struct Tracked {
    /// Checked before anything else is read: a freed payload has the poison here, and its
    /// `ledger` pointer must not be followed.
    canary: u64,
    id: usize,
    ledger: Arc<Ledger>,
}

impl Tracked {
    pub fn id(&self) -> usize {
        self.check("read");
        self.id
    }

    fn check(&self, what: &str) {
        // A volatile read: the compiler may not assume the canary still holds what the
        // last write through this reference stored.
        // SAFETY: `self` is a reference; reading a `u64` through it is always in bounds.
        let canary = unsafe { std::ptr::read_volatile(&self.canary) };
        match canary {
            ALIVE => {}
            DEAD => panic!("use after drop: a route value was {what} after it was dropped"),
            c => panic!("use after free: a route value was {what} in freed memory (canary {c:#x})"),
        }
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        self.check("cloned");
        self.ledger.value(self.id)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.check("dropped");
        let before = self.ledger.live[self.id].fetch_sub(1, Ordering::Relaxed);
        assert!(
            before > 0,
            "value {}: dropped more often than created",
            self.id
        );
        // SAFETY: `self` is valid for writes until the end of `drop`.
        unsafe { std::ptr::write_volatile(&mut self.canary, DEAD) };
    }
}

impl std::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tracked({})", self.id)
    }
}

impl PartialEq for Tracked {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

// ---------------------------------------------------------------------------------------
// Tables and keys
// ---------------------------------------------------------------------------------------

pub type Table = RouteTable<Ipv4Net, Tracked>;

/// A table on its own epoch collector: dropping the table drops the collector (the table
/// holds its only reference), which runs every destructor still deferred.
pub fn table(max_enumerations: usize) -> Table {
    RouteTable::with_collector(max_enumerations, crossbeam_epoch::Collector::new())
}

/// Key `i`: the network `10.i.0.0/16`; keys sort by `i`.
pub fn key(i: u8) -> RouteKey<Ipv4Net> {
    RouteKey::new(
        Ipv4Net::new([10, i, 0, 0].into(), 16).expect("valid prefix"),
        ProtocolId(1),
        InterfaceId(1),
        [192, 0, 2, 1].into(),
    )
}

/// The index `i` of key `i`.
pub fn index(k: &RouteKey<Ipv4Net>) -> u8 {
    k.prefix.addr().octets()[1]
}

pub fn route(i: u8, value: Tracked) -> Route<Ipv4Net, Tracked> {
    Route::new(key(i), value)
}

/// The key indices of a sequence of routes.
pub fn indices<I: IntoIterator<Item = Route<Ipv4Net, Tracked>>>(routes: I) -> Vec<u8> {
    routes.into_iter().map(|r| index(&r.key)).collect()
}

// ---------------------------------------------------------------------------------------
// Running models
// ---------------------------------------------------------------------------------------

/// Runs `model` under loom (preemption bound from `LOOM_MAX_PREEMPTIONS`), then prints how
/// many executions were explored and how long it took.
pub fn check<F>(name: &str, model: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let iterations = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&iterations);
    let mut builder = loom::model::Builder::new();
    // The skip list's searches touch every level of the head tower, so one execution has
    // more scheduling points than loom's default budget of 1000.
    builder.max_branches = 100_000;
    let start = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        model();
    });
    eprintln!(
        "loom model {name}: {} iterations in {:.1?} (LOOM_MAX_PREEMPTIONS={})",
        iterations.load(Ordering::Relaxed),
        start.elapsed(),
        builder
            .preemption_bound
            .map_or("unbounded".to_string(), |b| b.to_string()),
    );
}

/// Runs a model that a negative-control switch (`--cfg rtm_negative`) has broken, and asserts that loom finds a
/// failing execution. Prints the first line of the failure.
pub fn expect_failure<F>(name: &str, model: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let start = Instant::now();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| check(name, model)));
    let Err(payload) = outcome else {
        panic!("negative control {name}: the model passed, so it does not detect the bug");
    };
    let msg = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("<non-string panic>");
    // loom reports an atomic read in poisoned memory as an object index made of poison.
    let poisoned_index = u64::from_ne_bytes([POISON; 8]).to_string();
    let note = if msg.contains(&poisoned_index) {
        " (a loom atomic read in freed, poisoned memory: use after free)"
    } else {
        ""
    };
    eprintln!(
        "negative control {name}: the model failed as expected after {:.1?}: {}{note}",
        start.elapsed(),
        msg.lines().next().unwrap_or("")
    );
}

/// As [`table`], with a journal of `capacity` commits, so that a feed can lag in a few.
pub fn table_with_journal(max_enumerations: usize, capacity: usize) -> Table {
    RouteTable::with_collector_and_journal(
        max_enumerations,
        capacity,
        crossbeam_epoch::Collector::new(),
    )
}

/// A change as `(key index, old value id, new value id)`.
pub fn change_ids(c: &rtm::Change<Ipv4Net, Tracked>) -> (u8, Option<usize>, Option<usize>) {
    let k = c
        .old
        .as_ref()
        .or(c.new.as_ref())
        .map(|r| index(&r.key))
        .unwrap();
    (
        k,
        c.old.as_ref().map(|r| r.value.id()),
        c.new.as_ref().map(|r| r.value.id()),
    )
}

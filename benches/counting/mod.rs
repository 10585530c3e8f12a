//! A counting global allocator for the memory figures of the benchmarks: the bytes
//! requested, glibc's estimated chunk bytes, and the live allocations. Declaring the module
//! installs it as the binary's allocator.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;

static BYTES: AtomicIsize = AtomicIsize::new(0);
static CHUNKS: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicIsize = AtomicIsize::new(0);

/// glibc's chunk size for a request of `n` bytes.
fn chunk(n: usize) -> isize {
    ((n + 8 + 15) & !15).max(32) as isize
}

fn count(size: usize, sign: isize) {
    BYTES.fetch_add(sign * size as isize, Ordering::Relaxed);
    CHUNKS.fetch_add(sign * chunk(size), Ordering::Relaxed);
    ALLOCS.fetch_add(sign, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are
// only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count(l.size(), 1);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        count(l.size(), 1);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        count(l.size(), -1);
        // SAFETY: `p` was allocated by `System` with `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        count(l.size(), -1);
        count(new, 1);
        // SAFETY: `p` was allocated by `System` with `l`.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes requested and not yet freed.
pub fn bytes() -> isize {
    BYTES.load(Ordering::Relaxed)
}

/// glibc's chunk bytes for them (8 bytes of header, rounded up to 16, at least 32).
pub fn chunks() -> isize {
    CHUNKS.load(Ordering::Relaxed)
}

/// Allocations not yet freed.
pub fn allocs() -> isize {
    ALLOCS.load(Ordering::Relaxed)
}

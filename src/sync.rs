//! The one place that chooses between `std` and `loom` primitives.
//!
//! Every atomic, every `UnsafeCell` and every epoch pin of the crate goes through this
//! module, so that the loom models in `loom-tests/` check the very code that ships. Under
//! `--cfg loom` the atomics are loom's and a table pins its own
//! [`crossbeam_epoch::Collector`]; otherwise they are `std`'s and the table pins the
//! process-wide default collector, whose thread-local handle keeps `pin()` cheap.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize,
};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize,
};

pub(crate) use std::sync::atomic::Ordering;

pub(crate) use crossbeam_epoch::Guard;

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
}

impl Epoch {
    /// The process-wide default collector (or, under loom, a fresh private one).
    pub(crate) fn new() -> Self {
        Self {
            #[cfg(loom)]
            collector: crossbeam_epoch::Collector::new(),
        }
    }

    /// A table built on its own collector, so that a loom model can check that everything
    /// it deferred is freed once the collector is dropped.
    #[cfg(loom)]
    pub(crate) fn with_collector(collector: crossbeam_epoch::Collector) -> Self {
        Self { collector }
    }

    /// Pins the current thread for the duration of one call.
    #[inline]
    pub(crate) fn pin(&self) -> Guard {
        #[cfg(loom)]
        {
            self.collector.register().pin()
        }
        #[cfg(not(loom))]
        {
            crossbeam_epoch::pin()
        }
    }
}

/// A process-wide counter for table identities. Not part of any protocol between threads
/// (it only makes identities distinct), so it is a plain `std` atomic even under loom.
pub(crate) fn next_table_id() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

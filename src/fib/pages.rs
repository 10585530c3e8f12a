//! Zeroed arrays of atomic words for the arena, on huge pages where the system gives them.
//!
//! A full IPv4 Fib's arena is tens of MiB, and a lookup reads one line of it at a place
//! the address picks. On 4 KiB pages that line's page is rarely in the TLB, so most
//! lookups also walk the page table: a second miss in line behind the first. On 2 MiB
//! pages the whole arena needs a few dozen TLB entries. Linux backs anonymous memory with
//! transparent huge pages where the mapping asks for them (`madvise(MADV_HUGEPAGE)`) unless
//! the system turned them off, so a large array is mapped by hand, aligned to 2 MiB, and
//! asked. Small arrays, other systems, and a failed mapping take an ordinary allocation:
//! huge pages are a speed-up, never a requirement.

use std::ptr::NonNull;

use crate::sync::AtomicU64;

#[cfg(all(target_os = "linux", not(loom)))]
use mapped::HUGE;

/// A fixed-length array of atomic words, zeroed when made.
pub(crate) struct Words {
    /// The first word and the number of words, of the memory `owner` holds (kept apart
    /// from it so that reading the array takes no branch on where it lives).
    ptr: NonNull<AtomicU64>,
    len: usize,
    owner: Owner,
}

/// Who holds a [`Words`]'s memory.
enum Owner {
    /// A boxed slice, leaked, and given back by [`Words`]'s `Drop`.
    Boxed,
    /// A mapping, held only so that its own `Drop` unmaps it.
    #[cfg(all(target_os = "linux", not(loom)))]
    Mapped { _mapping: mapped::Mapping },
}

// SAFETY: a `Words` owns its memory exclusively, as a `Box<[AtomicU64]>` does, and hands
// out only shared references to atomics, which are `Sync`.
unsafe impl Send for Words {}
// SAFETY: as above: `&Words` gives `&[AtomicU64]` only.
unsafe impl Sync for Words {}

impl Words {
    /// At least `len` zeroed words: exactly `len` unless the array was mapped, which
    /// rounds up to whole huge pages.
    pub(crate) fn zeroed(len: usize) -> Self {
        #[cfg(all(target_os = "linux", not(loom)))]
        if len.saturating_mul(8) >= HUGE {
            if let Some(m) = mapped::Mapping::new(len) {
                // The rounding up to whole huge pages is memory held all the same: hand
                // it out as words.
                return Self {
                    ptr: m.ptr,
                    len: m.bytes / 8,
                    owner: Owner::Mapped { _mapping: m },
                };
            }
        }
        let boxed: Box<[AtomicU64]> = (0..len).map(|_| AtomicU64::new(0)).collect();
        // Leaked, so that no `Box` is moved (and asserted unique) while `ptr` points into
        // it; `Drop` turns it back into the box.
        Self {
            ptr: NonNull::from(Box::leak(boxed)).cast(),
            len,
            owner: Owner::Boxed,
        }
    }

    /// The words.
    #[inline(always)]
    fn as_slice(&self) -> &[AtomicU64] {
        // SAFETY: `ptr` and `len` describe the words `owner` holds (a box's contents or a
        // mapping of at least `8 * len` bytes, zeroed when made, aligned for `AtomicU64`),
        // which live as long as `self` and are only ever written through the atomics.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// Bytes of memory the array holds (a mapping's whole length, rounding included: its
    /// words are all handed out).
    pub(crate) fn bytes(&self) -> usize {
        self.len * std::mem::size_of::<AtomicU64>()
    }

    /// Whether the array was mapped and asked for huge pages.
    #[cfg(test)]
    pub(crate) fn is_mapped(&self) -> bool {
        !matches!(self.owner, Owner::Boxed)
    }
}

impl std::ops::Deref for Words {
    type Target = [AtomicU64];

    #[inline(always)]
    fn deref(&self) -> &[AtomicU64] {
        self.as_slice()
    }
}

impl Drop for Words {
    fn drop(&mut self) {
        match self.owner {
            Owner::Boxed => {
                let raw = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len);
                // SAFETY: `ptr` and `len` are the boxed slice `zeroed` leaked, owned by this
                // value alone and given back exactly once, here; no reference into it
                // outlives `&self`.
                drop(unsafe { Box::from_raw(raw) });
            }
            // Unmapped by the mapping's own `Drop`, which runs after this one.
            #[cfg(all(target_os = "linux", not(loom)))]
            Owner::Mapped { .. } => {}
        }
    }
}

#[cfg(all(target_os = "linux", not(loom)))]
mod mapped {
    use std::ptr::NonNull;
    use std::sync::atomic::AtomicU64;

    /// Arrays at least this large are mapped and asked for huge pages (one huge page's
    /// worth: below it, nothing would be gained and the rounding would waste memory).
    pub(super) const HUGE: usize = 2 << 20;

    /// An anonymous private mapping of whole huge pages, aligned to one, owned by this
    /// value and unmapped when it drops.
    pub(super) struct Mapping {
        pub(super) ptr: NonNull<AtomicU64>,
        pub(super) bytes: usize,
    }

    impl Mapping {
        /// A mapping of `len` zeroed words, or `None` if the system refused one.
        pub(super) fn new(len: usize) -> Option<Self> {
            let bytes = len.checked_mul(8)?.checked_next_multiple_of(HUGE)?;
            // One huge page more than needed, so that an aligned run of `bytes` fits.
            let total = bytes.checked_add(HUGE)?;
            // SAFETY: a new anonymous mapping at an address of the kernel's choosing
            // touches no memory of this process.
            let base = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    total,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            // (Never null without `MAP_FIXED`; checked so that no mapping is left behind
            // by the `NonNull` below.)
            if base == libc::MAP_FAILED || base.is_null() {
                return None;
            }
            let head = (HUGE - base as usize % HUGE) % HUGE;
            let tail = total - head - bytes;
            // `head < HUGE` and `head + bytes + tail == total`: the head handed back, the
            // aligned run `start..start + bytes` kept, and the tail handed back all lie in
            // the mapping `base..base + total` just made, readable and writable, which
            // nothing else refers to.
            // SAFETY: `base + head` and `base + head + bytes` are inside that mapping.
            let (start, end) = unsafe {
                (
                    base.cast::<u8>().add(head),
                    base.cast::<u8>().add(head + bytes),
                )
            };
            if head > 0 {
                // SAFETY: `base..start` is the head of the new mapping; nothing refers to it.
                unsafe { libc::munmap(base, head) };
            }
            if tail > 0 {
                // SAFETY: `end..end + tail` is the tail of the new mapping; nothing refers to it.
                unsafe { libc::munmap(end.cast(), tail) };
            }
            // Only advice: if the kernel has no huge pages to give, the run stays on small
            // ones, so the result is not checked.
            // SAFETY: `start..end` is the run this function keeps; advice changes no data.
            unsafe { libc::madvise(start.cast(), bytes, libc::MADV_HUGEPAGE) };
            // Fault every page in now, on the thread that makes the array (as a zeroed
            // allocation would), not later under a writer that first touches one: a huge
            // page's fault zeroes 2 MiB and may compact memory to find one.
            for page in (0..bytes).step_by(4096) {
                // SAFETY: `page < bytes`, so the byte is inside the writable run, which no
                // one else can see yet; it was zero and stays zero.
                unsafe { start.add(page).write_volatile(0) };
            }
            Some(Self {
                ptr: NonNull::new(start.cast())?,
                bytes,
            })
        }
    }

    impl Drop for Mapping {
        fn drop(&mut self) {
            // SAFETY: `ptr..ptr + bytes` is the mapping `new` made, owned by this value, and
            // no reference into it outlives `&self`.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.bytes) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::Ordering;

    #[test]
    fn small_arrays_are_boxed_and_zeroed() {
        let w = Words::zeroed(1000);
        assert!(!w.is_mapped());
        assert_eq!(w.as_slice().len(), 1000);
        assert_eq!(w.bytes(), 8000);
        assert!(w.as_slice().iter().all(|x| x.load(Ordering::Relaxed) == 0));
    }

    #[test]
    fn large_arrays_are_zeroed_and_hold_their_writes() {
        let len = (5 << 20) / 8 + 3;
        let w = Words::zeroed(len);
        assert!(w.as_slice().len() >= len);
        assert_eq!(w.bytes(), w.as_slice().len() * 8);
        #[cfg(target_os = "linux")]
        {
            // Mapped in whole huge pages, starting on one, all of them handed out.
            assert!(w.is_mapped());
            assert_eq!(w.bytes(), 6 << 20);
            assert_eq!(w.as_slice().as_ptr() as usize % HUGE, 0);
        }
        let s = w.as_slice();
        let len = s.len();
        assert!(s.iter().all(|x| x.load(Ordering::Relaxed) == 0));
        for (i, x) in s.iter().enumerate().step_by(4099) {
            x.store(i as u64 + 1, Ordering::Relaxed);
        }
        s[len - 1].store(7, Ordering::Relaxed);
        for (i, x) in s.iter().enumerate() {
            let want = if i == len - 1 {
                7
            } else if i % 4099 == 0 {
                i as u64 + 1
            } else {
                0
            };
            assert_eq!(x.load(Ordering::Relaxed), want, "word {i}");
        }
        // Moving the array keeps its words where they are.
        let p = s.as_ptr();
        let moved = w;
        assert_eq!(moved.as_slice().as_ptr(), p);
    }
}

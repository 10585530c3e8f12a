//! The write side: [`FibWriter`], the public handle that changes a Fib and publishes it,
//! over the untyped writer that these modules make up, each using only those listed
//! before it:
//!
//! * `routes`: the index of every prefix and its next hop, where a removal finds the
//!   prefix that covers it;
//! * `tree`: the nodes below the directory, decoded, edited and encoded again, and the
//!   allocator they and the directory take blocks from;
//! * `spare`: the previous block of the root and of each chunk, kept for reuse;
//! * `directory`: the root and chunks, copied on write and painted with the leaves of
//!   short prefixes;
//! * `compact`: a bulk load's nodes laid out again, or the whole tree copied into a new
//!   arena;
//! * `apply`: the untyped writer: one change at a time, then one publish.

mod apply;
mod compact;
mod directory;
mod routes;
mod spare;
mod tree;

use std::marker::PhantomData;

use super::reader::Fib;
use crate::prefix::{is_canonical, Prefix};
use crate::{Error, Version};
use apply::Writer;

impl<P: Prefix> Fib<P> {
    /// An empty Fib (at version 0) and the writer that changes it.
    ///
    /// ```
    /// let (fib, _writer) = rtm::Fib::<rtm::Ipv6Net>::new();
    /// assert!(fib.is_empty());
    /// ```
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> (Fib<P>, FibWriter<P>) {
        let writer = FibWriter::new();
        (writer.fib(), writer)
    }
}

/// The single writer of a [`Fib`]: sets and removes prefixes, then publishes them as one
/// version. Changes are invisible to readers until [`FibWriter::publish`].
///
/// ```
/// use rtm::{Fib, Ipv4Net, Version};
/// let (fib, mut w) = Fib::<Ipv4Net>::new();
/// w.insert("0.0.0.0/0".parse().unwrap(), 1).unwrap();
/// w.publish(Version(1));
/// assert_eq!(w.remove("0.0.0.0/0".parse().unwrap()), Ok(Some(1)));
/// assert_eq!(fib.lookup("8.8.8.8".parse().unwrap()), Some(1)); // still version 1
/// w.publish(Version(2));
/// assert_eq!(fib.lookup("8.8.8.8".parse().unwrap()), None);
/// ```
pub struct FibWriter<P: Prefix> {
    writer: Writer,
    _prefix: PhantomData<fn() -> P>,
}

impl<P: Prefix> std::fmt::Debug for FibWriter<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FibWriter")
            .field("len", &self.writer.len())
            .finish()
    }
}

impl<P: Prefix> Default for FibWriter<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Prefix> FibWriter<P> {
    /// A writer of a new, empty Fib, with no reader handle yet ([`FibWriter::fib`] makes
    /// them). Building before handing out handles lets the arena grow in place: an arena
    /// outgrown while handles exist is kept until they all drop.
    ///
    /// ```
    /// let mut w = rtm::FibWriter::<rtm::Ipv4Net>::new();
    /// w.insert("10.0.0.0/8".parse().unwrap(), 1).unwrap();
    /// w.publish(rtm::Version(1));
    /// let fib = w.fib();
    /// assert_eq!(fib.lookup("10.9.9.9".parse().unwrap()), Some(1));
    /// ```
    pub fn new() -> Self {
        Self::with_direct_bits(16)
    }

    /// A writer whose directory indexes the first `dir_bits` bits of the address directly
    /// (clamped to `2..=24` and to the address width), as the first table of DIR-24-8
    /// does; prefixes longer than that live in compressed nodes below. The directory takes
    /// up to `2^dir_bits * 4` bytes: 12 bits (16 KiB at most) suits a table of a few
    /// thousand prefixes, 16 bits (256 KiB at most) one of some hundred thousand, 24 bits
    /// (64 MiB at most) a full IPv4 table, where it makes most lookups one memory access.
    /// [`FibWriter::for_prefixes`] chooses for a table size, and
    /// [`FibWriter::set_direct_bits`] grows the directory later.
    ///
    /// ```
    /// let mut w = rtm::FibWriter::<rtm::Ipv4Net>::with_direct_bits(24);
    /// w.insert("10.1.2.0/24".parse().unwrap(), 3).unwrap();
    /// w.publish(rtm::Version(1));
    /// assert_eq!(w.fib().lookup("10.1.2.3".parse().unwrap()), Some(3));
    /// ```
    pub fn with_direct_bits(dir_bits: u32) -> Self {
        let dir_bits = dir_bits.clamp(2, 24).min(P::MAX_LEN as u32);
        // Under loom every word is a modelled atomic: start small.
        let capacity = if cfg!(loom) { 64 } else { 1 << 10 };
        FibWriter {
            writer: Writer::new(P::MAX_LEN as u32, dir_bits, capacity),
            _prefix: PhantomData,
        }
    }

    /// A writer with the directory size suited to about `prefixes` prefixes
    /// ([`FibWriter::direct_bits_for`]).
    ///
    /// ```
    /// let w = rtm::FibWriter::<rtm::Ipv6Net>::for_prefixes(1_000);
    /// assert_eq!(w.direct_bits(), 12);
    /// assert!(w.fib().memory_bytes() < 64 << 10);
    /// ```
    pub fn for_prefixes(prefixes: usize) -> Self {
        Self::with_direct_bits(Self::direct_bits_for(prefixes))
    }

    /// The directory size suited to about `prefixes` prefixes: 24 bits for IPv4 tables of
    /// 2^19 prefixes or more (a full table: most lookups are then one memory access) and
    /// for IPv6 tables of 2^16 or more; 16 bits for IPv4 tables of 2^13 or more and IPv6
    /// tables of 2^12 or more; 12 bits (a 16 KiB directory) below. A smaller directory
    /// costs a small table less than its prefixes do; a larger one saves a full table a
    /// level or two of nodes per lookup. (An IPv6 table fills few of a 24-bit directory's
    /// chunks: the others share one empty chunk.)
    ///
    /// ```
    /// use rtm::{FibWriter, Ipv4Net};
    /// assert_eq!(FibWriter::<Ipv4Net>::direct_bits_for(1_000), 12);
    /// assert_eq!(FibWriter::<Ipv4Net>::direct_bits_for(100_000), 16);
    /// assert_eq!(FibWriter::<Ipv4Net>::direct_bits_for(1_042_325), 24);
    /// ```
    pub fn direct_bits_for(prefixes: usize) -> u32 {
        let (full, medium) = if P::MAX_LEN == 32 {
            (1 << 19, 1 << 13)
        } else {
            (1 << 16, 1 << 12)
        };
        if prefixes >= full {
            24
        } else if prefixes >= medium {
            16
        } else {
            12
        }
        .min(P::MAX_LEN as u32)
    }

    /// The bits the directory indexes directly (the first level of a lookup).
    ///
    /// ```
    /// assert_eq!(rtm::FibWriter::<rtm::Ipv4Net>::with_direct_bits(24).direct_bits(), 24);
    /// ```
    pub fn direct_bits(&self) -> u32 {
        self.writer.geometry().dir_bits()
    }

    /// Publishes every change so far as `version` (as [`FibWriter::publish`]), in a
    /// directory of `dir_bits` bits if that is more than it has (clamped as in
    /// [`FibWriter::with_direct_bits`]; a directory only grows, so that a reader handle
    /// made on a full table's directory can count on its shape). To grow it, the Fib is
    /// built again apart, in an arena of just its size, and readers move to it with one
    /// store, each lookup answering from the old layout or the new one, never a mix. That
    /// costs one build of the whole table (about what [`Fib::follow`] pays on a table of
    /// that size), and the old arena is kept until the last reader handle drops, as an
    /// outgrown one is. [`Fib::follow`]'s follower grows the directory on its own when a
    /// table outgrows it ([`FibWriter::direct_bits_for`]). A handle made before the
    /// growth reads the directory's shape in each lookup; one made (or cloned) after it
    /// on a 24-bit directory does not.
    ///
    /// ```
    /// let (fib, mut w) = rtm::Fib::<rtm::Ipv4Net>::new();
    /// w.insert("10.1.2.0/24".parse().unwrap(), 3).unwrap();
    /// w.set_direct_bits(24, rtm::Version(1));
    /// assert_eq!((fib.direct_bits(), fib.version()), (24, rtm::Version(1)));
    /// assert_eq!(fib.lookup("10.1.2.3".parse().unwrap()), Some(3));
    /// w.set_direct_bits(12, rtm::Version(2)); // never smaller: a publish
    /// assert_eq!((fib.direct_bits(), fib.version()), (24, rtm::Version(2)));
    /// ```
    pub fn set_direct_bits(&mut self, dir_bits: u32, version: Version) {
        let dir_bits = dir_bits.clamp(2, 24).min(P::MAX_LEN as u32);
        if dir_bits > self.direct_bits() {
            self.writer.publish_relaid(version.0, dir_bits);
        } else {
            self.writer.publish(version.0);
        }
    }

    /// Sets the next hop of `prefix`; returns the one it replaces. A prefix with host bits
    /// set is `InvalidParameter`.
    ///
    /// ```
    /// let (_fib, mut w) = rtm::Fib::<rtm::Ipv4Net>::new();
    /// let p = "10.0.0.0/8".parse().unwrap();
    /// assert_eq!(w.insert(p, 1), Ok(None));
    /// assert_eq!(w.insert(p, 2), Ok(Some(1)));
    /// assert_eq!(w.insert("10.0.0.1/8".parse().unwrap(), 2), Err(rtm::Error::InvalidParameter));
    /// ```
    pub fn insert(&mut self, prefix: P, next_hop: u32) -> Result<Option<u32>, Error> {
        let (key, len) = Self::key(&prefix)?;
        Ok(self.writer.apply(key, len, Some(next_hop)))
    }

    /// Removes `prefix`; returns its next hop if it had one. A prefix with host bits set
    /// is `InvalidParameter`.
    ///
    /// ```
    /// let (_fib, mut w) = rtm::Fib::<rtm::Ipv4Net>::new();
    /// let p = "10.0.0.0/8".parse().unwrap();
    /// assert_eq!(w.remove(p), Ok(None));
    /// ```
    pub fn remove(&mut self, prefix: P) -> Result<Option<u32>, Error> {
        let (key, len) = Self::key(&prefix)?;
        Ok(self.writer.apply(key, len, None))
    }

    /// The next hop of exactly `prefix` in the working (possibly unpublished) state.
    ///
    /// ```
    /// let (_fib, mut w) = rtm::Fib::<rtm::Ipv4Net>::new();
    /// let p = "10.0.0.0/8".parse().unwrap();
    /// w.insert(p, 5).unwrap();
    /// assert_eq!(w.get(p), Some(5));
    /// ```
    pub fn get(&self, prefix: P) -> Option<u32> {
        let (key, len) = Self::key(&prefix).ok()?;
        self.writer.get(key, len)
    }

    /// Prefixes in the working state.
    ///
    /// ```
    /// let (_fib, w) = rtm::Fib::<rtm::Ipv4Net>::new();
    /// assert_eq!(w.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.writer.len()
    }

    /// True when the working state holds no prefix.
    ///
    /// ```
    /// assert!(rtm::Fib::<rtm::Ipv4Net>::new().1.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.writer.len() == 0
    }

    /// Makes every change so far visible to readers, as `version` (which
    /// [`Fib::version`] then returns). Versions should not decrease.
    ///
    /// ```
    /// let (fib, mut w) = rtm::Fib::<rtm::Ipv4Net>::new();
    /// w.publish(rtm::Version(42));
    /// assert_eq!(fib.version(), rtm::Version(42));
    /// ```
    pub fn publish(&mut self, version: Version) {
        self.writer.publish(version.0);
    }

    /// Another reader handle to the Fib this writer changes.
    ///
    /// ```
    /// let (_fib, w) = rtm::Fib::<rtm::Ipv4Net>::new();
    /// assert!(w.fib().is_empty());
    /// ```
    pub fn fib(&self) -> Fib<P> {
        Fib::of(&self.writer)
    }

    /// Every prefix in the working state, in no particular order.
    pub(crate) fn prefixes(&self) -> Vec<P> {
        let shift = 128 - P::MAX_LEN as u32;
        self.writer
            .keys()
            .map(|(bits, len)| P::from_parts(bits >> shift, len))
            .collect()
    }

    /// Words of the arena in use by the published and working trees (for statistics).
    pub(crate) fn used_words(&self) -> usize {
        self.writer.alloc().used_words()
    }

    /// Trims the arena to what is in use plus `slack` words, if no reader handle exists.
    pub(crate) fn shrink_to_fit(&mut self, slack: usize) {
        self.writer.alloc_mut().shrink_to_fit(slack);
    }

    fn key(prefix: &P) -> Result<(u128, u8), Error> {
        if !is_canonical(prefix) {
            return Err(Error::InvalidParameter);
        }
        let len = prefix.plen();
        Ok((prefix.net_bits() << (128 - P::MAX_LEN as u32), len))
    }
}

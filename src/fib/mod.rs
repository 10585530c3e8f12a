//! Forwarding lookups at the speed of a trie: a read-optimized longest-prefix-match table
//! from addresses to next-hop ids, kept in step with a [`RouteTable`](crate::RouteTable)'s
//! best routes.
//!
//! A [`Fib`] is a cheap reader handle (clone it per thread); one writer changes it, either a
//! [`FibWriter`] driven by the embedder or the follower of a table. Lookups take no lock,
//! write no shared memory, allocate nothing and never wait for the writer: a lookup is a
//! walk of a few loads from a published root, and a change is published by one store of a
//! new root, so each lookup sees one whole published version.
//!
//! The structure (`docs/FIB.md` has the measurements behind it): a direct-indexed
//! directory of the first 16, 20 or 24 address bits (a root of chunk indices, each chunk a
//! run of entries; [`FibWriter::for_prefixes`] picks the size), then popcount-compressed
//! nodes of 6 bits as in Poptrie, with each prefix
//! stored in the one node whose 6 bits end at or after its length. The memory is one arena
//! owned by the Fib's handles; see `arena` for how reused memory is made safe to read with
//! loads only.

mod alloc;
mod arena;
mod follow;
mod key;
mod layout;
mod lookup;
mod pages;
mod writer;

use std::marker::PhantomData;

pub use follow::{FibFollower, OwnedFibFollower};
pub use key::FibKey;

use crate::prefix::sealed::AddrBits;
use crate::prefix::{is_canonical, Prefix};
use crate::sync::Arc;
use crate::{Error, Version};
use arena::Shared;
use layout::{Geometry, ROOT_LEN, ROOT_VERSION};
use writer::Writer;

/// Addresses answered under one check of the recycling counter in
/// [`Fib::lookup_batch`].
const BATCH: usize = 32;

/// A longest-prefix-match table from addresses to next-hop ids, read without locks.
///
/// `Clone` gives another reader handle to the same table (a reference count, no copy).
///
/// ```
/// use rtm::{Fib, Ipv4Net, Version};
///
/// let (fib, mut writer) = Fib::<Ipv4Net>::new();
/// writer.insert("10.0.0.0/8".parse().unwrap(), 1).unwrap();
/// writer.insert("10.1.0.0/16".parse().unwrap(), 2).unwrap();
/// writer.publish(Version(7));
///
/// assert_eq!(fib.lookup("10.1.2.3".parse().unwrap()), Some(2));
/// assert_eq!(fib.lookup("10.2.0.1".parse().unwrap()), Some(1));
/// assert_eq!(fib.lookup("11.0.0.1".parse().unwrap()), None);
/// assert_eq!(fib.version(), Version(7));
/// assert_eq!(fib.len(), 2);
/// ```
pub struct Fib<P: Prefix> {
    shared: Arc<Shared>,
    geometry: Geometry,
    _prefix: PhantomData<fn() -> P>,
}

impl<P: Prefix> Clone for Fib<P> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            geometry: self.geometry,
            _prefix: PhantomData,
        }
    }
}

impl<P: Prefix> std::fmt::Debug for Fib<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fib")
            .field("version", &self.version())
            .field("len", &self.len())
            .finish()
    }
}

impl<P: Prefix> Fib<P> {
    /// A reader handle on the Fib that `writer` writes.
    pub(crate) fn of(writer: &Writer) -> Self {
        Fib {
            shared: Arc::clone(writer.alloc().shared()),
            geometry: writer.geometry(),
            _prefix: PhantomData,
        }
    }

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

    /// The next hop of the longest prefix that covers `addr`, or `None`.
    ///
    /// ```
    /// let (fib, mut w) = rtm::Fib::<rtm::Ipv6Net>::new();
    /// w.insert("2001:db8::/32".parse().unwrap(), 9).unwrap();
    /// w.publish(rtm::Version(1));
    /// assert_eq!(fib.lookup("2001:db8::1".parse().unwrap()), Some(9));
    /// ```
    #[inline(always)]
    pub fn lookup(&self, addr: P::Addr) -> Option<u32> {
        let key = addr.fib_key();
        let g = self.geometry;
        // The shape `FibWriter::for_prefixes` picks for a full table (24 bits for either
        // family), with constant shifts; other shapes as they come.
        if g == layout::Geometry::new(24) {
            self.find(lookup::Fixed::<12, 12>, key)
        } else {
            self.find(g, key)
        }
    }

    /// [`Fib::lookup`] for one directory shape.
    #[inline(always)]
    fn find<G: lookup::Shape>(&self, g: G, key: <P::Addr as AddrBits>::FibKey) -> Option<u32> {
        let width = P::MAX_LEN as u32;
        self.shared
            .read(move |arena, root| lookup::find(arena, g, root, key, width))
    }

    /// Looks up every address of `addrs` into the same position of `out`. Each address's
    /// answer is that of one published version. If the lengths differ, the first
    /// `min(addrs.len(), out.len())` are answered and the rest of `out` is set to `None`.
    ///
    /// ```
    /// let (fib, mut w) = rtm::Fib::<rtm::Ipv4Net>::new();
    /// w.insert("192.0.2.0/24".parse().unwrap(), 4).unwrap();
    /// w.publish(rtm::Version(1));
    /// let addrs = ["192.0.2.9".parse().unwrap(), "198.51.100.1".parse().unwrap()];
    /// let mut out = [None; 2];
    /// fib.lookup_batch(&addrs, &mut out);
    /// assert_eq!(out, [Some(4), None]);
    /// ```
    pub fn lookup_batch(&self, addrs: &[P::Addr], out: &mut [Option<u32>]) {
        let n = addrs.len().min(out.len());
        let (out, rest) = out.split_at_mut(n);
        rest.fill(None);
        lookup::with_shape!(self.geometry, |g| self.batch(g, &addrs[..n], out));
    }

    /// [`Fib::lookup_batch`] for one directory shape: `BATCH` addresses per check of the
    /// recycling counter.
    #[inline(always)]
    fn batch<G: lookup::Shape>(&self, g: G, addrs: &[P::Addr], out: &mut [Option<u32>]) {
        let width = P::MAX_LEN as u32;
        let mut deep = [(0u32, 0u32); BATCH];
        for (addrs, out) in addrs.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            self.shared.read(|arena, root| {
                lookup::find_many(arena, g, root, addrs, width, out, &mut deep)
            });
        }
    }

    /// The version whose prefixes the Fib holds (for a Fib that follows a table: the table
    /// version whose best routes it holds).
    ///
    /// ```
    /// let (fib, mut w) = rtm::Fib::<rtm::Ipv4Net>::new();
    /// assert_eq!(fib.version(), rtm::Version(0));
    /// w.publish(rtm::Version(3));
    /// assert_eq!(fib.version(), rtm::Version(3));
    /// ```
    pub fn version(&self) -> Version {
        Version(
            self.shared
                .read(|arena, root| arena.get(root + ROOT_VERSION)),
        )
    }

    /// The number of prefixes (networks with a next hop) in the published version.
    ///
    /// ```
    /// let (fib, mut w) = rtm::Fib::<rtm::Ipv4Net>::new();
    /// w.insert("10.0.0.0/8".parse().unwrap(), 1).unwrap();
    /// assert_eq!(fib.len(), 0); // not published yet
    /// w.publish(rtm::Version(1));
    /// assert_eq!(fib.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.shared.read(|arena, root| arena.get(root + ROOT_LEN)) as usize
    }

    /// True when the published version holds no prefix.
    ///
    /// ```
    /// assert!(rtm::Fib::<rtm::Ipv4Net>::new().0.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of memory the Fib's arenas hold (the current one, and any replaced arena kept
    /// until the last handle drops). The writer's own index of prefixes is not included.
    ///
    /// ```
    /// let (fib, _w) = rtm::Fib::<rtm::Ipv4Net>::new();
    /// assert!(fib.memory_bytes() < 4 << 20);
    /// ```
    pub fn memory_bytes(&self) -> usize {
        self.shared.bytes()
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
    /// up to `2^dir_bits * 4` bytes: 16 bits (256 KiB at most) suits small tables, 24 bits
    /// (64 MiB at most) a full IPv4 table, where it makes most lookups one memory access.
    /// [`FibWriter::for_prefixes`] chooses for a table size.
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
        let capacity = if cfg!(loom) { 64 } else { 1 << 16 };
        FibWriter {
            writer: Writer::new(P::MAX_LEN as u32, dir_bits, capacity),
            _prefix: PhantomData,
        }
    }

    /// A writer with the directory size suited to about `prefixes` prefixes: 24 bits for
    /// IPv4 tables of 2^19 prefixes or more (a full table) and for IPv6 tables of 2^16 or
    /// more, else 16. (An IPv6 table fills few of a 24-bit directory's chunks: the others
    /// share one empty chunk.)
    ///
    /// ```
    /// let w = rtm::FibWriter::<rtm::Ipv6Net>::for_prefixes(1_000);
    /// assert!(w.fib().memory_bytes() < 4 << 20);
    /// ```
    pub fn for_prefixes(prefixes: usize) -> Self {
        let bits = match P::MAX_LEN {
            32 if prefixes >= 1 << 19 => 24,
            128 if prefixes >= 1 << 16 => 24,
            _ => 16,
        };
        Self::with_direct_bits(bits)
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

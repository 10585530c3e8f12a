//! The reader handle: [`Fib`], the public type that answers longest-prefix matches from
//! the published root with loads only. It needs nothing of the write side: the writer
//! hands it the shared arena, and each arena knows its directory's shape.

use std::marker::PhantomData;

use super::arena::Shared;
use super::layout::{Geometry, ROOT_LEN, ROOT_VERSION};
use super::lookup;
use crate::prefix::sealed::AddrBits;
use crate::prefix::Prefix;
use crate::sync::Arc;
use crate::Version;

/// Addresses answered under one check of the recycling counter in
/// [`Fib::lookup_batch`].
const BATCH: usize = 32;

/// A longest-prefix-match table from addresses to next-hop ids, read without locks.
///
/// `Clone` gives another reader handle to the same table (a reference count, no copy).
/// A handle made on a full table's directory (24 bits, see
/// [`FibWriter::direct_bits_for`](crate::FibWriter::direct_bits_for)) looks up a little
/// faster than one made while the directory was smaller (which reads the directory's
/// shape in each lookup): clone a handle after a table has grown into a full one.
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
    /// The directory's shape when this handle was made. A directory only grows
    /// (`FibWriter::set_direct_bits`), so every arena this handle loads from now on has
    /// this shape or a larger one; 24 bits, the largest, is then the shape of every one.
    geometry: Geometry,
    _prefix: PhantomData<fn() -> P>,
}

impl<P: Prefix> Clone for Fib<P> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            geometry: self.shared.arena().geometry(),
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
    /// A reader handle on the arena `shared` of a Fib (see `Fib::of`).
    pub(crate) fn with_shared(shared: Arc<Shared>) -> Self {
        Fib {
            geometry: shared.arena().geometry(),
            shared,
            _prefix: PhantomData,
        }
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
        if self.geometry == Geometry::new(24) {
            // A full table's shape, which every arena has from now on (see `geometry`):
            // no look at the arena's shape, so that a caller's loop of lookups decides
            // this branch once.
            self.shared
                .read(move |arena, root| Self::find_full(arena, root, key))
        } else {
            self.shared.read(move |arena, root| {
                // The shape is the arena's own: the words and the shape they are laid
                // out in come from one load of the arena pointer.
                #[cfg(not(rtm_negative = "fib-stale-geometry"))]
                let g = arena.geometry();
                // Broken on purpose: the handle's shape taken for the arena's, which a
                // relayout since the handle was made has changed.
                #[cfg(rtm_negative = "fib-stale-geometry")]
                let g = self.geometry;
                if g == Geometry::new(24) {
                    // A handle made before the directory grew to a full table's.
                    Self::find_full(arena, root, key)
                } else {
                    Self::find_small(arena, g, root, key)
                }
            })
        }
    }

    /// [`Fib::lookup`] in a full table's directory (24 bits), with constant shifts.
    #[inline(always)]
    fn find_full(
        arena: &super::arena::Arena,
        root: usize,
        key: <P::Addr as AddrBits>::FibKey,
    ) -> Option<u32> {
        let width = P::MAX_LEN as u32;
        lookup::find(arena, lookup::Fixed::<12, 12>, root, key, width)
    }

    /// [`Fib::lookup`] in a directory of shape `g` (out of line: it does not lengthen the
    /// full table's path).
    #[inline(never)]
    fn find_small(
        arena: &super::arena::Arena,
        g: Geometry,
        root: usize,
        key: <P::Addr as AddrBits>::FibKey,
    ) -> Option<u32> {
        let width = P::MAX_LEN as u32;
        lookup::with_shape!(g, |s| lookup::find(arena, s, root, key, width))
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
        let width = P::MAX_LEN as u32;
        let mut deep = [(0u32, 0u32); BATCH];
        for (addrs, out) in addrs[..n].chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            // One dispatch on the arena's shape per `BATCH` addresses.
            self.shared.read(|arena, root| {
                lookup::with_shape!(arena.geometry(), |g| {
                    lookup::find_many(arena, g, root, addrs, width, out, &mut deep)
                })
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

    /// The bits the published directory indexes directly (the first level of a lookup;
    /// see [`FibWriter::direct_bits_for`](crate::FibWriter::direct_bits_for)).
    ///
    /// ```
    /// let w = rtm::FibWriter::<rtm::Ipv4Net>::with_direct_bits(24);
    /// assert_eq!(w.fib().direct_bits(), 24);
    /// ```
    pub fn direct_bits(&self) -> u32 {
        self.shared.arena().geometry().dir_bits()
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

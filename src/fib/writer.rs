//! The single writer: [`FibWriter`], the public handle, over the untyped writer that
//! applies prefix changes to a private working tree, copying every published block it
//! changes, and publishes the tree as one version.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::Arc;

use super::alloc::Alloc;
use super::arena::Arena;
use super::key::FibKey;
use super::layout::{
    entry_of_leaf, leaf, leaf_len, leaf_of_entry, node_words, Geometry, NODE, NODE_FALLBACK,
    NODE_HEADER, ROOT_CHUNKS, ROOT_LEN, ROOT_VERSION, STRIDE,
};
use super::reader::Fib;
use crate::hash::FastMap;
use crate::prefix::{is_canonical, Prefix};
use crate::{Error, Version};

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

impl<P: Prefix> Fib<P> {
    /// A reader handle on the Fib that `writer` writes.
    pub(crate) fn of(writer: &Writer) -> Self {
        Fib::with_shared(Arc::clone(writer.alloc().shared()), writer.geometry())
    }
}

/// Slots of a node.
const SLOTS: usize = 1 << STRIDE;

/// A publish lays out again the nodes of a batch that handed out at least this many
/// blocks (a bulk load), see [`Writer::relayout`]; smaller batches keep their nodes where
/// they are.
const RELAYOUT_BLOCKS: usize = 1 << 14;

/// A node, decoded for editing.
struct Image {
    leaves: [u64; SLOTS],
    /// Child node indices (0: none).
    children: [u32; SLOTS],
    /// The leaf of the directory entry above (nodes right below the directory only).
    fallback: u64,
}

/// Copies the node tree at `node` of `old` into `new`, in depth-first order (each node
/// before its children) at blocks from `carve`; returns the root's new index.
fn move_tree(
    old: &Arena,
    new: &Arena,
    carve: &mut impl FnMut(usize) -> usize,
    node: usize,
) -> usize {
    let (vector, leafvec) = (old.get(node), old.get(node + 1));
    let words = node_words(leafvec.count_ones() as usize, vector.count_ones() as usize);
    let to = carve(words);
    new.copy_from(old, node, to, words);
    for j in 0..vector.count_ones() as usize {
        let child = new.get_u32(to + NODE_HEADER, j) as usize;
        let moved = move_tree(old, new, carve, child);
        new.set_u32(to + NODE_HEADER, j, moved as u32);
    }
    to
}

/// Whether `node` is a shared leaf-only node ([`Writer::hops`]): no children, one leaf run,
/// empty.
fn is_hop(arena: &Arena, node: usize) -> bool {
    arena.get(node) == 0 && arena.get(node + 1) == 1 && arena.get(node + NODE_HEADER) == 0
}

/// The mask of the first `len` bits of a left-aligned 128-bit key.
#[inline]
fn mask(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - len as u32).unwrap_or(0)
}

/// The writer of one Fib. Keys are left-aligned in a `u128` for both families.
pub(crate) struct Writer {
    alloc: Alloc,
    geometry: Geometry,
    /// The address width in bits (32 or 128).
    width: u32,
    /// The working root: the published one, or a fresh copy with unpublished changes.
    root: usize,
    /// The one all-empty chunk, shared by every root slot that holds nothing.
    empty_chunk: usize,
    /// Every prefix and its next hop.
    routes: Routes,
    /// The leaf-only nodes that stand for a leaf too large for a directory entry (an id
    /// of [`ENTRY_ID`](super::layout::ENTRY_ID) or more), one per leaf word, shared by
    /// every entry that holds it: the node and how many entries point to it. A node
    /// without children whose leaves are all empty is always one of these (`encode` makes
    /// none otherwise), see [`is_hop`].
    hops: FastMap<u64, (u32, u32)>,
    /// The chunk last made writable: (chunk number, block).
    writable: (usize, usize),
    /// Publishes so far: the batch of changes being built is number `batch`.
    batch: u64,
    /// The batch in which the working root became writable (it is while this is `batch`).
    root_written: u64,
    /// The root before the working one, kept to become the next working root (see
    /// [`Spare`]); 0 before the first publish.
    root_spare: Spare,
    /// Each directory chunk's bookkeeping, by chunk number.
    chunks: Vec<ChunkSlot>,
    /// Chunks that have a spare block, oldest first (the hand of a clock that gives
    /// recently used spares a second chance before evicting one).
    spares: VecDeque<u32>,
    /// At most this many chunks keep a spare block.
    max_spares: usize,
}

/// A published block's previous version, kept to be reused as its next one: bringing it up
/// to date copies only the words the last batch changed, not the whole block (a 24-bit
/// directory has roots of 4,098 words and chunks of 2,048). It is written only after a
/// later publish detached it and a bump of the recycling counter (see
/// [`super::arena`]), as any reused block.
struct Spare {
    /// The block (0: none).
    block: usize,
    /// Word offsets at which `block` differs from the current block; `all`: too many to
    /// list, copy the whole block.
    delta: Vec<u32>,
    all: bool,
}

impl Spare {
    const NONE: Spare = Spare {
        block: 0,
        delta: Vec::new(),
        all: false,
    };

    /// Notes that the current block's word `w` is written. `cap`: offsets listed at most.
    #[inline]
    fn note(&mut self, w: usize, cap: usize) {
        if self.block == 0 || self.all || self.delta.last() == Some(&(w as u32)) {
            return;
        }
        if self.delta.len() >= cap {
            self.all = true;
            self.delta.clear();
        } else {
            self.delta.push(w as u32);
        }
    }

    /// Brings the spare up to date with `current` (`words` long) and returns it; the
    /// caller has bumped the recycling counter since the publish that detached it.
    fn catch_up(&mut self, arena: &Arena, current: usize, words: usize) -> usize {
        if self.all {
            arena.copy(current, self.block, words);
        } else {
            for &w in &self.delta {
                arena.set(self.block + w as usize, arena.get(current + w as usize));
            }
        }
        self.block
    }

    /// Makes `block` the spare, equal to the current block so far.
    fn reset(&mut self, block: usize) {
        self.block = block;
        self.delta.clear();
        self.all = false;
    }
}

/// A directory chunk's bookkeeping.
struct ChunkSlot {
    /// The batch in which the chunk's current block became writable (`u64::MAX`: never).
    written: u64,
    /// The chunk's previous block.
    spare: Spare,
    /// Whether the spare was used since the clock hand last passed.
    referenced: bool,
}

impl Writer {
    /// An empty Fib for addresses of `width` bits with a directory of `dir_bits` bits,
    /// published at version 0, in an arena of at least `capacity` words.
    pub(crate) fn new(width: u32, dir_bits: u32, capacity: usize) -> Self {
        let geometry = Geometry::new(dir_bits);
        let capacity = capacity.max(geometry.root_words() + geometry.chunk_words() + 1);
        let mut alloc = Alloc::new(capacity);
        let empty_chunk = alloc.alloc(geometry.chunk_words());
        let root = alloc.alloc(geometry.root_words());
        let arena = alloc.arena();
        for i in 0..geometry.chunk_words() {
            arena.set(empty_chunk + i, 0);
        }
        arena.set(root + ROOT_VERSION, 0);
        arena.set(root + ROOT_LEN, 0);
        for c in ROOT_CHUNKS..geometry.root_words() {
            arena.set(root + c, empty_chunk as u64);
        }
        let mut w = Self {
            alloc,
            geometry,
            width,
            root,
            empty_chunk,
            routes: Routes::new(width),
            writable: (usize::MAX, 0),
            batch: 0,
            root_written: 0,
            root_spare: Spare::NONE,
            chunks: (0..1usize << geometry.root_bits)
                .map(|_| ChunkSlot {
                    written: u64::MAX,
                    spare: Spare::NONE,
                    referenced: false,
                })
                .collect(),
            spares: VecDeque::new(),
            hops: FastMap::default(),
            // An eighth of the directory: the chunks a real day's churn touches most
            // (docs/FIB.md), at an eighth more directory memory at most.
            max_spares: (1usize << geometry.root_bits).div_ceil(8),
        };
        w.publish(0);
        w
    }

    /// The directory's shape.
    pub(crate) fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// The allocator (for the shared state and statistics).
    pub(crate) fn alloc(&self) -> &Alloc {
        &self.alloc
    }

    /// Mutable access to the allocator.
    pub(crate) fn alloc_mut(&mut self) -> &mut Alloc {
        &mut self.alloc
    }

    /// Prefixes held.
    pub(crate) fn len(&self) -> usize {
        self.routes.len()
    }

    /// Every prefix held, in no particular order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = (u128, u8)> + '_ {
        self.routes.keys()
    }

    /// The next hop of exactly this prefix.
    pub(crate) fn get(&self, key: u128, len: u8) -> Option<u32> {
        self.routes.get(key, len)
    }

    /// Sets (`Some`) or removes (`None`) the next hop of the prefix `key/len` (`key`
    /// left-aligned, no bits past `len`) in the working tree; returns the old one.
    pub(crate) fn apply(&mut self, key: u128, len: u8, id: Option<u32>) -> Option<u32> {
        debug_assert!(key & !mask(len) == 0 && len as u32 <= self.width);
        let old = match id {
            Some(id) => self.routes.insert(key, len, id),
            None => self.routes.remove(key, len),
        };
        if old == id {
            return old;
        }
        let dir = self.geometry.dir_bits();
        if len as u32 <= dir {
            let word = match id {
                Some(id) => leaf(len, id),
                None => self.cover(key, len, 0).map_or(0, |(l, id)| leaf(l, id)),
            };
            self.paint(key, len, word);
        } else {
            let op = |this: &Self, min: u8| match id {
                Some(id) => Op::Set(leaf(len, id)),
                None => Op::Remove(this.cover(key, len, min).map_or(0, |(l, id)| leaf(l, id))),
            };
            let t = key.slot(0, dir);
            let (chunk, i) = self.entry_for_write(t);
            let entry = self.entry(chunk, i);
            let node = if entry & NODE != 0 {
                (entry & !NODE) as usize
            } else {
                0
            };
            let fallback = self.entry_leaf(entry);
            let new = self.update(node, dir, key, len, &op, fallback);
            let entry = self.entry_of(new, fallback);
            self.set_entry(chunk, i, entry);
        }
        old
    }

    /// Publishes the working tree as `version`: readers that load the root from now on
    /// see every change applied so far.
    pub(crate) fn publish(&mut self, version: u64) {
        self.root_for_write();
        if self.alloc.fresh_blocks() >= RELAYOUT_BLOCKS {
            if self.alloc.alone() {
                self.compact();
            } else {
                self.relayout();
            }
        }
        let arena = self.alloc.arena();
        arena.set(self.root + ROOT_VERSION, version);
        arena.set(self.root + ROOT_LEN, self.routes.len() as u64);
        arena.publish_root(self.root);
        self.alloc.published();
        self.writable = (usize::MAX, 0);
        self.batch += 1;
    }

    /// Copies the working tree into a new arena of just its size, the root and chunks
    /// first, then each chunk's node trees in depth-first order, as [`Writer::relayout`]
    /// orders them but without the holes the moved nodes leave. Only while no reader
    /// handle exists (after a bulk load, before the Fib is handed out): the old arena
    /// and every older version in it go at once. Costs one copy of what is in use.
    fn compact(&mut self) {
        let g = self.geometry;
        let old = self.alloc.arena();
        let used = self.alloc.used_words();
        let new = Arena::new(1 + used + used / 8 + (1 << 12));
        let mut top = 1;
        let mut carve = |words: usize| {
            let at = top;
            top += words;
            at
        };
        let mut hops_moved = FastMap::<usize, usize>::default();
        let empty = carve(g.chunk_words());
        new.copy_from(old, self.empty_chunk, empty, g.chunk_words());
        let root = carve(g.root_words());
        new.copy_from(old, self.root, root, ROOT_CHUNKS);
        for c in 0..1usize << g.root_bits {
            let chunk = old.get(self.root + ROOT_CHUNKS + c) as usize;
            let moved = if chunk == self.empty_chunk {
                empty
            } else {
                let to = carve(g.chunk_words());
                new.copy_from(old, chunk, to, g.chunk_words());
                for i in 0..1usize << g.chunk_bits {
                    let entry = new.get_u32(to, i);
                    if entry & NODE == 0 {
                        continue;
                    }
                    let node = (entry & !NODE) as usize;
                    let moved = if is_hop(old, node) {
                        // Shared: moved once, beside the first entry that holds it.
                        *hops_moved
                            .entry(node)
                            .or_insert_with(|| move_tree(old, &new, &mut carve, node))
                    } else {
                        move_tree(old, &new, &mut carve, node)
                    };
                    new.set_u32(to, i, NODE | moved as u32);
                }
                to
            };
            new.set(root + ROOT_CHUNKS + c, moved as u64);
            // The copied chunks are this batch's (fresh); the shared empty chunk is never
            // written.
            let slot = &mut self.chunks[c];
            slot.written = if moved == empty { u64::MAX } else { self.batch };
            slot.spare = Spare::NONE;
            slot.referenced = false;
        }
        for (node, _) in self.hops.values_mut() {
            *node = hops_moved[&(*node as usize)] as u32;
        }
        self.alloc.install(new, top);
        self.root = root;
        self.empty_chunk = empty;
        self.root_written = self.batch;
        self.root_spare = Spare::NONE;
        self.spares.clear();
        self.writable = (usize::MAX, 0);
    }

    /// Moves the nodes this batch built, tree by tree in depth-first order, to blocks
    /// taken one after another from the end of the arena, so that the nodes one lookup
    /// walks lie near each other (the same page, often the same or the next cache line)
    /// rather than wherever each was last resized. Only fresh nodes move (no published
    /// root reaches them, and a fresh node's parent is fresh: changing a node copies its
    /// path). It scans the chunks this batch wrote, which costs about what copying them
    /// did, and copies each fresh node once more; the blocks it leaves go to the free
    /// lists.
    fn relayout(&mut self) {
        let g = self.geometry;
        for c in 0..1usize << g.root_bits {
            if self.chunks[c].written != self.batch {
                continue;
            }
            let chunk = self.alloc.arena().get(self.root + ROOT_CHUNKS + c) as usize;
            for i in 0..1usize << g.chunk_bits {
                let e = self.entry(chunk, i);
                // Shared leaf-only nodes stay: several entries point to each, and a
                // lookup that reaches one reads only it.
                let node = (e & !NODE) as usize;
                if e & NODE != 0 && self.alloc.is_fresh(node) && !is_hop(self.alloc.arena(), node) {
                    let moved = self.relocate(node);
                    let (chunk, i) = self.entry_for_write(c << g.chunk_bits | i);
                    self.set_entry(chunk, i, NODE | moved as u32);
                }
            }
        }
    }

    /// Moves the fresh node `node` and its fresh descendants (parents before children)
    /// to the end of the arena; returns its new index.
    fn relocate(&mut self, node: usize) -> usize {
        let arena = self.alloc.arena();
        let (vector, leafvec) = (arena.get(node), arena.get(node + 1));
        let words = node_words(leafvec.count_ones() as usize, vector.count_ones() as usize);
        let new = self.alloc.alloc_at_end(words);
        self.alloc.arena().copy(node, new, words);
        self.alloc.release(node, words);
        for j in 0..vector.count_ones() as usize {
            let child = self.alloc.arena().get_u32(new + NODE_HEADER, j) as usize;
            if self.alloc.is_fresh(child) {
                let moved = self.relocate(child);
                self.alloc
                    .arena()
                    .set_u32(new + NODE_HEADER, j, moved as u32);
            }
        }
        new
    }

    /// The longest prefix of `key` with a length in `min..len`: its length and next hop.
    fn cover(&self, key: u128, len: u8, min: u8) -> Option<(u8, u32)> {
        (min..len)
            .rev()
            .find_map(|l| self.routes.get(key & mask(l), l).map(|id| (l, id)))
    }

    /// Gives every directory entry that `key/len` covers, and that no longer prefix of
    /// length `<= dir_bits` owns, the leaf `word`. Such entries are owned by `key/len` or
    /// by a shorter prefix, or by none: those whose leaf (in the entry, or in its node's
    /// fallback) is empty or for a length of at most `len`.
    fn paint(&mut self, key: u128, len: u8, word: u64) {
        let g = self.geometry;
        let first = key.slot(0, g.dir_bits());
        let end = first + (1usize << (g.dir_bits() - len as u32));
        let mask = (1usize << g.chunk_bits) - 1;
        let mut t = first;
        while t < end {
            let c = t >> g.chunk_bits;
            let stop = end.min((c + 1) << g.chunk_bits);
            // The chunk as it stands (the working copy once one was made): only entries
            // that change are made writable.
            let mut chunk = self.alloc.arena().get(self.root + ROOT_CHUNKS + c) as usize;
            for u in t..stop {
                let owner = self.entry_leaf(self.entry(chunk, u & mask));
                if owner == 0 || leaf_len(owner) <= len {
                    chunk = self.set_leaf(u, word);
                }
            }
            t = stop;
        }
    }

    /// The leaf word of a directory entry: in the entry, or in its node's fallback.
    fn entry_leaf(&self, entry: u32) -> u64 {
        if entry & NODE != 0 {
            self.alloc
                .arena()
                .get((entry & !NODE) as usize + NODE_FALLBACK)
        } else {
            leaf_of_entry(entry)
        }
    }

    /// Sets the leaf of directory entry `t` (in the entry, or in the fallback of its node);
    /// returns the writable chunk that holds the entry.
    fn set_leaf(&mut self, t: usize, word: u64) -> usize {
        let (chunk, i) = self.entry_for_write(t);
        let entry = self.entry(chunk, i);
        let new = if entry & NODE != 0 {
            let node = (entry & !NODE) as usize;
            let mut image = self.decode(node);
            image.fallback = word;
            self.release_node(node);
            let new = self.encode(&image, false);
            self.entry_of(new, word)
        } else {
            self.entry_of(0, word)
        };
        self.set_entry(chunk, i, new);
        chunk
    }

    /// The entry for `node` (0: none) under a leaf `fallback`: a plain leaf if it fits,
    /// else a node (a leaf-only one if `node` is 0).
    fn entry_of(&mut self, node: usize, fallback: u64) -> u32 {
        if node != 0 {
            return NODE | node as u32;
        }
        if let Some(e) = entry_of_leaf(fallback) {
            return e;
        }
        if let Some((node, refs)) = self.hops.get_mut(&fallback) {
            *refs += 1;
            return NODE | *node;
        }
        let image = Image {
            leaves: [0; SLOTS],
            children: [0; SLOTS],
            fallback,
        };
        let node = self.encode(&image, true) as u32;
        self.hops.insert(fallback, (node, 1));
        NODE | node
    }

    fn entry(&self, chunk: usize, i: usize) -> u32 {
        self.alloc.arena().get_u32(chunk, i)
    }

    fn set_entry(&mut self, chunk: usize, i: usize, entry: u32) {
        self.alloc.arena().set_u32(chunk, i, entry);
    }

    /// The working root: the published one is copied first, into the spare root when
    /// there is one (only the chunk indices the last batch changed are copied).
    fn root_for_write(&mut self) -> usize {
        if self.root_written != self.batch {
            let words = self.geometry.root_words();
            let block = if self.root_spare.block != 0 {
                self.alloc.reuse_detached();
                self.root_spare
                    .catch_up(self.alloc.arena(), self.root, words)
            } else {
                let copy = self.alloc.alloc(words);
                self.alloc.arena().copy(self.root, copy, words);
                copy
            };
            self.root_spare.reset(self.root);
            self.root = block;
            self.root_written = self.batch;
        }
        self.root
    }

    /// The writable chunk holding directory entry `t`, and `t`'s index in it; the entry's
    /// word is noted as written. A published chunk is copied first, into its spare block
    /// when it has one; the shared empty chunk into a new block.
    fn entry_for_write(&mut self, t: usize) -> (usize, usize) {
        let g = self.geometry;
        let c = t >> g.chunk_bits;
        let i = t & ((1 << g.chunk_bits) - 1);
        let cap = g.chunk_words() / 8;
        if self.writable.0 == c {
            self.chunks[c].spare.note(i / 2, cap);
            return (self.writable.1, i);
        }
        let root = self.root_for_write();
        let current = self.alloc.arena().get(root + ROOT_CHUNKS + c) as usize;
        let chunk = if self.chunks[c].written == self.batch {
            current
        } else {
            let words = g.chunk_words();
            let slot = &mut self.chunks[c];
            let block = if slot.spare.block != 0 {
                slot.referenced = true;
                self.alloc.reuse_detached();
                slot.spare.catch_up(self.alloc.arena(), current, words)
            } else {
                let copy = match self.alloc.try_alloc(words) {
                    Some(b) => b,
                    None => {
                        // Spares give way to the Fib itself: free some rather than grow
                        // the arena.
                        self.evict_spares(c, 16);
                        self.alloc.alloc(words)
                    }
                };
                self.alloc.arena().copy(current, copy, words);
                copy
            };
            let slot = &mut self.chunks[c];
            slot.written = self.batch;
            if current != self.empty_chunk {
                if slot.spare.block == 0 {
                    self.spares.push_back(c as u32);
                }
                slot.spare.reset(current);
            }
            self.alloc.arena().set(root + ROOT_CHUNKS + c, block as u64);
            self.root_spare.note(ROOT_CHUNKS + c, g.root_words() / 8);
            self.evict_spares(c, 0);
            block
        };
        self.chunks[c].spare.note(i / 2, cap);
        self.writable = (c, chunk);
        (chunk, i)
    }

    /// Gives spare blocks back to the allocator while more than `max_spares` chunks keep
    /// one, and until `want` spares that are reusable in this batch (detached by an
    /// earlier publish) were given back. Passes over chunk `keep` and, once, over spares
    /// used since the hand last passed.
    fn evict_spares(&mut self, keep: usize, mut want: usize) {
        // Each chunk is passed over at most twice (its second chance, then for good).
        let mut steps = 2 * self.spares.len();
        while (self.spares.len() > self.max_spares || want > 0) && steps > 0 {
            steps -= 1;
            let Some(c) = self.spares.pop_front() else {
                return;
            };
            let slot = &mut self.chunks[c as usize];
            // Set in this batch: the published root still reaches it.
            let reachable = slot.written == self.batch;
            let over = self.spares.len() >= self.max_spares;
            if c as usize == keep || slot.referenced || (reachable && !over) {
                slot.referenced = false;
                self.spares.push_back(c);
                continue;
            }
            let block = slot.spare.block;
            slot.spare.reset(0);
            let words = self.geometry.chunk_words();
            if reachable {
                self.alloc.release(block, words);
            } else {
                self.alloc.release_detached(block, words);
                want = want.saturating_sub(1);
            }
        }
    }

    /// The node `old` (0: none) at `depth` with the change applied to `key/len` (in it or
    /// below it), as a new node (0: empty); `old`'s block is released. `fallback` is the
    /// node's fallback leaf (0 below the top level).
    fn update(
        &mut self,
        old: usize,
        depth: u32,
        key: u128,
        len: u8,
        op: &dyn Fn(&Self, u8) -> Op,
        fallback: u64,
    ) -> usize {
        let mut image = self.decode(old);
        image.fallback = fallback;
        if len as u32 <= depth + STRIDE {
            let op = op(self, depth as u8 + 1);
            let first = key.slot(depth, STRIDE);
            let count = 1usize << (depth + STRIDE - len as u32);
            for w in &mut image.leaves[first..first + count] {
                *w = op.apply(*w, len);
            }
        } else {
            let s = key.slot(depth, STRIDE);
            let child = image.children[s] as usize;
            image.children[s] = self.update(child, depth + STRIDE, key, len, op, 0) as u32;
        }
        self.release_node(old);
        self.encode(&image, false)
    }

    fn decode(&self, node: usize) -> Image {
        let mut image = Image {
            leaves: [0; SLOTS],
            children: [0; SLOTS],
            fallback: 0,
        };
        if node == 0 {
            return image;
        }
        let arena = self.alloc.arena();
        let (vector, leafvec) = (arena.get(node), arena.get(node + 1));
        image.fallback = arena.get(node + NODE_FALLBACK);
        let first_child = node + NODE_HEADER;
        let mut run = first_child + (vector.count_ones() as usize).div_ceil(2);
        let mut child = 0;
        for s in 0..SLOTS {
            if s > 0 && leafvec >> s & 1 == 1 {
                run += 1;
            }
            image.leaves[s] = arena.get(run);
            if vector >> s & 1 == 1 {
                image.children[s] = arena.get_u32(first_child, child);
                child += 1;
            }
        }
        image
    }

    /// Writes `image` as a new node block; 0 if it holds nothing (unless `keep`).
    fn encode(&mut self, image: &Image, keep: bool) -> usize {
        let vector = (0..SLOTS)
            .filter(|&s| image.children[s] != 0)
            .fold(0u64, |v, s| v | 1 << s);
        if !keep && vector == 0 && image.leaves.iter().all(|&w| w == 0) {
            return 0;
        }
        let mut leafvec = 0u64;
        for s in 0..SLOTS {
            if s == 0 || image.leaves[s] != image.leaves[s - 1] {
                leafvec |= 1 << s;
            }
        }
        let runs = leafvec.count_ones() as usize;
        let children = vector.count_ones() as usize;
        let node = self.alloc.alloc(node_words(runs, children));
        let arena = self.alloc.arena();
        arena.set(node, vector);
        arena.set(node + 1, leafvec);
        arena.set(node + NODE_FALLBACK, image.fallback);
        let mut at = node + NODE_HEADER;
        let mut pair = 0u64;
        let mut j = 0;
        for s in 0..SLOTS {
            if vector >> s & 1 == 1 {
                pair |= (image.children[s] as u64) << (32 * (j & 1));
                if j & 1 == 1 {
                    arena.set(at, pair);
                    at += 1;
                    pair = 0;
                }
                j += 1;
            }
        }
        if j & 1 == 1 {
            arena.set(at, pair);
            at += 1;
        }
        for s in 0..SLOTS {
            if leafvec >> s & 1 == 1 {
                arena.set(at, image.leaves[s]);
                at += 1;
            }
        }
        node
    }

    /// Releases a node's block (not its children's); for a shared leaf-only node, one
    /// entry's reference to it.
    fn release_node(&mut self, node: usize) {
        if node == 0 {
            return;
        }
        let arena = self.alloc.arena();
        if is_hop(arena, node) {
            let word = arena.get(node + NODE_FALLBACK);
            let Some((_, refs)) = self.hops.get_mut(&word) else {
                unreachable!("a leaf-only node is in the map of its leaf");
            };
            *refs -= 1;
            if *refs > 0 {
                return;
            }
            self.hops.remove(&word);
        }
        let (vector, leafvec) = (arena.get(node), arena.get(node + 1));
        let words = node_words(leafvec.count_ones() as usize, vector.count_ones() as usize);
        self.alloc.release(node, words);
    }
}

/// Every prefix and its next hop, one map per length from the left-aligned network to the
/// id. A network of up to 32 bits keys on its top 32 bits (an IPv4 entry is 8 bytes, so
/// a full table's maps stay small enough to be mostly cached), up to 64 on its top 64.
struct Routes {
    short: Vec<FastMap<u32, u32>>,
    medium: Vec<FastMap<u64, u32>>,
    long: Vec<FastMap<u128, u32>>,
    len: usize,
}

/// Applies `$f` to the map for `$len` and the key `$key` (a left-aligned `u128`) as that
/// map keys it.
macro_rules! with_map {
    ($routes:expr, $key:expr, $len:expr, |$m:ident, $k:ident| $f:expr) => {{
        let (key, len) = ($key, $len as usize);
        if len <= 32 {
            let ($m, $k) = (&mut $routes.short[len], (key >> 96) as u32);
            $f
        } else if len <= 64 {
            let ($m, $k) = (&mut $routes.medium[len - 33], (key >> 64) as u64);
            $f
        } else {
            let ($m, $k) = (&mut $routes.long[len - 65], key);
            $f
        }
    }};
}

impl Routes {
    fn new(width: u32) -> Self {
        let lengths = width as usize + 1;
        Self {
            short: (0..lengths.min(33)).map(|_| FastMap::default()).collect(),
            medium: (33..lengths.min(65)).map(|_| FastMap::default()).collect(),
            long: (65..lengths).map(|_| FastMap::default()).collect(),
            len: 0,
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    /// The id of `key/len`. (Most lengths hold nothing: those cost no hashing.)
    #[inline]
    fn get(&self, key: u128, len: u8) -> Option<u32> {
        let len = len as usize;
        if len <= 32 {
            let m = &self.short[len];
            (!m.is_empty()).then(|| m.get(&((key >> 96) as u32)).copied())?
        } else if len <= 64 {
            let m = &self.medium[len - 33];
            (!m.is_empty()).then(|| m.get(&((key >> 64) as u64)).copied())?
        } else {
            let m = &self.long[len - 65];
            (!m.is_empty()).then(|| m.get(&key).copied())?
        }
    }

    #[inline]
    fn insert(&mut self, key: u128, len: u8, id: u32) -> Option<u32> {
        let old = with_map!(self, key, len, |m, k| m.insert(k, id));
        self.len += old.is_none() as usize;
        old
    }

    #[inline]
    fn remove(&mut self, key: u128, len: u8) -> Option<u32> {
        let old = with_map!(self, key, len, |m, k| m.remove(&k));
        self.len -= old.is_some() as usize;
        old
    }

    fn keys(&self) -> impl Iterator<Item = (u128, u8)> + '_ {
        let short = self
            .short
            .iter()
            .enumerate()
            .flat_map(|(l, m)| m.keys().map(move |&k| ((k as u128) << 96, l as u8)));
        let medium = self
            .medium
            .iter()
            .enumerate()
            .flat_map(|(l, m)| m.keys().map(move |&k| ((k as u128) << 64, (l + 33) as u8)));
        let long = self
            .long
            .iter()
            .enumerate()
            .flat_map(|(l, m)| m.keys().map(move |&k| (k, (l + 65) as u8)));
        short.chain(medium).chain(long)
    }
}

/// What a change does to the leaf words of a node in its range.
enum Op {
    /// Store this leaf where no longer prefix wins.
    Set(u64),
    /// Where the removed prefix was the winner, store this (the next shorter cover in the
    /// node, or 0).
    Remove(u64),
}

impl Op {
    #[inline]
    fn apply(&self, word: u64, len: u8) -> u64 {
        match *self {
            Op::Set(new) if word == 0 || leaf_len(word) <= len => new,
            Op::Remove(cover) if word != 0 && leaf_len(word) == len => cover,
            _ => word,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fib::layout::ENTRY_ID;

    /// The words of the node at `node` and its child indices.
    fn node_at(arena: &Arena, node: usize) -> (usize, Vec<usize>) {
        let (vector, leafvec) = (arena.get(node), arena.get(node + 1));
        let children = vector.count_ones() as usize;
        let kids = (0..children)
            .map(|j| arena.get_u32(node + NODE_HEADER, j) as usize)
            .collect();
        (node_words(leafvec.count_ones() as usize, children), kids)
    }

    /// Checks every node below `node`: each one's first child follows it directly (the
    /// depth-first order of a relayout); returns how many nodes it saw.
    fn check_depth_first(arena: &Arena, node: usize) -> usize {
        let (words, kids) = node_at(arena, node);
        if let Some(&first) = kids.first() {
            assert_eq!(
                first,
                node + words,
                "node {node}'s first child is not next to it"
            );
        }
        1 + kids
            .iter()
            .map(|&k| check_depth_first(arena, k))
            .sum::<usize>()
    }

    /// Loads 12,000 /40s and /48s under a few thousand /28s into a 16-bit directory,
    /// publishes, and checks that every node's first child follows it and that lookups
    /// give the longest match. With `reader`, a reader handle exists during the load, so
    /// the publish moves the nodes within the arena ([`Writer::relayout`]) instead of
    /// copying the tree into a new one ([`Writer::compact`]).
    fn bulk_load(reader: bool) {
        let mut w = Writer::new(128, 16, 0);
        let g = w.geometry;
        let early = reader.then(|| crate::Fib::<crate::Ipv6Net>::of(&w));
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut prefixes = Vec::new();
        for i in 0..12_000u32 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let len = if i % 3 == 0 { 40 } else { 48 };
            let key =
                (0x2001u128 << 112 | (rng as u128 % 3_000) << 100 | (rng as u128 >> 20) << 64)
                    & mask(len);
            w.apply(key, len, Some(i));
            prefixes.push((key, len));
        }
        assert!(
            w.alloc.fresh_blocks() >= RELAYOUT_BLOCKS,
            "the load must be a bulk one"
        );
        w.publish(1);
        let arena = w.alloc.arena();
        let mut nodes = 0;
        for t in 0..1usize << g.dir_bits() {
            let chunk = arena.get(w.root + ROOT_CHUNKS + (t >> g.chunk_bits)) as usize;
            let i = t & ((1 << g.chunk_bits) - 1);
            let e = arena.get_u32(chunk, i);
            if e & NODE != 0 {
                nodes += check_depth_first(arena, (e & !NODE) as usize);
            }
        }
        assert!(nodes > 1_000, "only {nodes} nodes");
        let fib = early.unwrap_or_else(|| crate::Fib::of(&w));
        for &(key, _) in &prefixes {
            let addr = key | 1;
            let want = (0..=128u8).rev().find_map(|l| w.get(addr & mask(l), l));
            assert_eq!(fib.lookup(std::net::Ipv6Addr::from(addr)), want);
        }
        // The compacted arena holds the tree and some room, not the load's leftovers.
        if !reader {
            assert!(arena.capacity() < w.alloc.used_words() * 5 / 4 + (1 << 13));
        }
    }

    /// Checks that every directory entry pointing to a shared leaf-only node points to
    /// the one [`Writer::hops`] maps its leaf to, and that each is counted once per entry.
    fn check_hops(w: &Writer) {
        let (g, arena) = (w.geometry, w.alloc.arena());
        let mut seen = FastMap::<u64, u32>::default();
        for t in 0..1usize << g.dir_bits() {
            let chunk = arena.get(w.root + ROOT_CHUNKS + (t >> g.chunk_bits)) as usize;
            let e = arena.get_u32(chunk, t & ((1 << g.chunk_bits) - 1));
            let node = (e & !NODE) as usize;
            if e & NODE != 0 && is_hop(arena, node) {
                let word = arena.get(node + NODE_FALLBACK);
                assert_eq!(w.hops.get(&word).map(|h| h.0 as usize), Some(node));
                *seen.entry(word).or_default() += 1;
            }
        }
        let refs: FastMap<u64, u32> = w.hops.iter().map(|(&k, &(_, r))| (k, r)).collect();
        assert_eq!(seen, refs);
    }

    /// The longest match for `addr` among the writer's prefixes (IPv4, left-aligned).
    fn brute_v4(w: &Writer, addr: u32) -> Option<u32> {
        let key = (addr as u128) << 96;
        (0..=32u8).rev().find_map(|l| w.get(key & mask(l), l))
    }

    fn v4(s: &str) -> (u128, u8) {
        let net: ipnet::Ipv4Net = s.parse().unwrap();
        ((u32::from(net.network()) as u128) << 96, net.prefix_len())
    }

    #[test]
    fn ids_too_large_for_an_entry_share_one_node_per_leaf() {
        let mut w = Writer::new(32, 16, 0);
        let fib = crate::Fib::<crate::Ipv4Net>::of(&w);
        let big = u32::MAX - 5;
        let (wide, _) = v4("10.0.0.0/8");
        w.apply(wide, 8, Some(big));
        w.publish(1);
        check_hops(&w);
        assert_eq!(w.hops.len(), 1);
        assert_eq!(w.hops.values().next().unwrap().1, 256);
        let (mid, _) = v4("10.1.0.0/16");
        w.apply(mid, 16, Some(3));
        let (long, _) = v4("10.2.3.0/24");
        w.apply(long, 24, Some(9));
        // One more big id, on a /12 inside the /8: its own node for its 16 entries.
        let (twelve, _) = v4("10.16.0.0/12");
        w.apply(twelve, 12, Some(ENTRY_ID));
        w.publish(2);
        check_hops(&w);
        assert_eq!(w.hops[&leaf(8, big)].1, 256 - 1 - 1 - 16);
        assert_eq!(w.hops[&leaf(12, ENTRY_ID)].1, 16);
        for (addr, want) in [
            ("10.0.0.1", Some(big)),
            ("10.1.2.3", Some(3)),
            ("10.2.3.4", Some(9)),
            ("10.2.4.4", Some(big)),
            ("10.17.0.1", Some(ENTRY_ID)),
            ("10.255.0.1", Some(big)),
            ("11.0.0.1", None),
        ] {
            let a: std::net::Ipv4Addr = addr.parse().unwrap();
            assert_eq!(fib.lookup(a), want, "{addr}");
            assert_eq!(brute_v4(&w, a.into()), want, "{addr}");
        }
        // Once no entry holds them, the shared nodes go.
        w.apply(wide, 8, None);
        w.apply(twelve, 12, None);
        w.publish(3);
        check_hops(&w);
        assert!(w.hops.is_empty());
        assert_eq!(fib.lookup("10.2.4.4".parse().unwrap()), None);
        assert_eq!(fib.lookup("10.2.3.4".parse().unwrap()), Some(9));
    }

    #[test]
    fn a_compaction_moves_each_shared_node_once() {
        let mut w = Writer::new(32, 16, 0);
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        // Long prefixes (nodes below the directory), and short ones with large ids over
        // them.
        for i in 0..40_000u32 {
            let r = next();
            let len = 17 + (r % 16) as u8;
            w.apply((r as u32 as u128) << 96 & mask(len), len, Some(i));
        }
        for i in 0..64u32 {
            let r = next();
            let len = 6 + (r % 10) as u8;
            w.apply(
                (r as u32 as u128) << 96 & mask(len),
                len,
                Some(u32::MAX - i % 8),
            );
        }
        assert!(w.alloc.fresh_blocks() >= RELAYOUT_BLOCKS);
        assert!(w.alloc.alone());
        w.publish(1);
        check_hops(&w);
        assert!(!w.hops.is_empty());
        let fib = crate::Fib::<crate::Ipv4Net>::of(&w);
        for _ in 0..20_000 {
            let a = next() as u32;
            assert_eq!(fib.lookup(a.into()), brute_v4(&w, a), "{a:#x}");
        }
    }

    #[test]
    fn a_bulk_load_is_compacted_depth_first() {
        bulk_load(false);
    }

    #[test]
    fn a_bulk_load_under_a_reader_is_laid_out_depth_first_in_place() {
        bulk_load(true);
    }
}

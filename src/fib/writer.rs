//! The single writer: applies prefix changes to a private working tree, copying every
//! published block it changes, and publishes the tree as one version.

use std::collections::BTreeMap;

use super::alloc::Alloc;
use super::key::FibKey;
use super::layout::{
    entry_of_leaf, leaf, leaf_len, leaf_of_entry, node_words, Geometry, NODE, NODE_FALLBACK,
    NODE_HEADER, ROOT_CHUNKS, ROOT_LEN, ROOT_VERSION, STRIDE,
};

/// Slots of a node.
const SLOTS: usize = 1 << STRIDE;

/// A node, decoded for editing.
struct Image {
    leaves: [u64; SLOTS],
    /// Child node indices (0: none).
    children: [u32; SLOTS],
    /// The leaf of the directory entry above (nodes right below the directory only).
    fallback: u64,
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
    /// Every prefix and its next hop, in (network, length) order: (left-aligned network,
    /// length) -> id.
    routes: BTreeMap<(u128, u8), u32>,
    /// The chunk last made writable: (chunk number, block).
    writable: (usize, usize),
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
            routes: BTreeMap::new(),
            writable: (usize::MAX, 0),
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

    /// Every prefix held, in (network, length) order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = (u128, u8)> + '_ {
        self.routes.keys().copied()
    }

    /// The next hop of exactly this prefix.
    pub(crate) fn get(&self, key: u128, len: u8) -> Option<u32> {
        self.routes.get(&(key, len)).copied()
    }

    /// Sets (`Some`) or removes (`None`) the next hop of the prefix `key/len` (`key`
    /// left-aligned, no bits past `len`) in the working tree; returns the old one.
    pub(crate) fn apply(&mut self, key: u128, len: u8, id: Option<u32>) -> Option<u32> {
        debug_assert!(key & !mask(len) == 0 && len as u32 <= self.width);
        let old = match id {
            Some(id) => self.routes.insert((key, len), id),
            None => self.routes.remove(&(key, len)),
        };
        if old == id {
            return old;
        }
        let dir = self.geometry.dir_bits();
        if len as u32 <= dir {
            let word = match id {
                Some(id) => leaf(len, id),
                None => self.cover(key, len, 0),
            };
            self.paint(key, len, word);
        } else {
            let op = |this: &Self, min: u8| match id {
                Some(id) => Op::Set(leaf(len, id)),
                None => Op::Remove(this.cover(key, len, min)),
            };
            let t = key.slot(0, dir);
            let (chunk, i) = self.entry_for_write(t);
            let entry = self.entry(chunk, i);
            let (node, fallback) = if entry & NODE != 0 {
                let node = (entry & !NODE) as usize;
                (node, self.alloc.arena().get(node + NODE_FALLBACK))
            } else {
                (0, leaf_of_entry(entry))
            };
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
        let arena = self.alloc.arena();
        arena.set(self.root + ROOT_VERSION, version);
        arena.set(self.root + ROOT_LEN, self.routes.len() as u64);
        arena.publish_root(self.root);
        self.alloc.published();
        self.writable = (usize::MAX, 0);
    }

    /// The longest prefix of `key` with a length in `min..len`, as a leaf word (or 0).
    fn cover(&self, key: u128, len: u8, min: u8) -> u64 {
        (min..len)
            .rev()
            .find_map(|l| self.routes.get(&(key & mask(l), l)).map(|&id| leaf(l, id)))
            .unwrap_or(0)
    }

    /// Gives every directory entry that `key/len` covers, and that no longer prefix of
    /// length `<= dir_bits` owns, the leaf `word`.
    fn paint(&mut self, key: u128, len: u8, word: u64) {
        let dir = self.geometry.dir_bits();
        let first = key.slot(0, dir);
        let end = first + (1usize << (dir - len as u32));
        let last = key | !mask(len) & mask(self.width as u8);
        let mut owned = Vec::new();
        let mut cursor = first;
        // More-specifics in (network, length) order: a cover comes before what it covers.
        for &(k, l) in self
            .routes
            .range((key, len + 1)..=(last, dir as u8))
            .map(|(k, _)| k)
        {
            if l as u32 > dir || l <= len {
                continue;
            }
            let s = k.slot(0, dir);
            if s < cursor {
                continue; // inside a more-specific already skipped
            }
            owned.push((cursor, s));
            cursor = s + (1usize << (dir - l as u32));
        }
        owned.push((cursor, end));
        for (from, to) in owned {
            for t in from..to {
                self.set_leaf(t, word);
            }
        }
    }

    /// Sets the leaf of directory entry `t` (in the entry, or in the fallback of its node).
    fn set_leaf(&mut self, t: usize, word: u64) {
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
    }

    /// The entry for `node` (0: none) under a leaf `fallback`: a plain leaf if it fits,
    /// else a node (a leaf-only one if `node` is 0).
    fn entry_of(&mut self, node: usize, fallback: u64) -> u32 {
        if node != 0 {
            return NODE | node as u32;
        }
        match entry_of_leaf(fallback) {
            Some(e) => e,
            None => {
                let image = Image {
                    leaves: [0; SLOTS],
                    children: [0; SLOTS],
                    fallback,
                };
                NODE | self.encode(&image, true) as u32
            }
        }
    }

    fn entry(&self, chunk: usize, i: usize) -> u32 {
        (self.alloc.arena().get(chunk + i / 2) >> (32 * (i & 1))) as u32
    }

    fn set_entry(&mut self, chunk: usize, i: usize, entry: u32) {
        let arena = self.alloc.arena();
        let word = arena.get(chunk + i / 2);
        let shift = 32 * (i & 1);
        arena.set(
            chunk + i / 2,
            word & !(0xffff_ffffu64 << shift) | (entry as u64) << shift,
        );
    }

    /// The working root, copied first if it is published.
    fn root_for_write(&mut self) -> usize {
        if !self.alloc.is_fresh(self.root) {
            let words = self.geometry.root_words();
            let copy = self.alloc.alloc(words);
            copy_block(&self.alloc, self.root, copy, words);
            self.alloc.release(self.root, words);
            self.root = copy;
        }
        self.root
    }

    /// The writable chunk holding directory entry `t`, and `t`'s index in it. The chunk is
    /// copied first if it is published or the shared empty one.
    fn entry_for_write(&mut self, t: usize) -> (usize, usize) {
        let g = self.geometry;
        let c = t >> g.chunk_bits;
        let i = t & ((1 << g.chunk_bits) - 1);
        if self.writable.0 == c {
            return (self.writable.1, i);
        }
        let root = self.root_for_write();
        let chunk = self.alloc.arena().get(root + ROOT_CHUNKS + c) as usize;
        let chunk = if chunk != self.empty_chunk && self.alloc.is_fresh(chunk) {
            chunk
        } else {
            let copy = self.alloc.alloc(g.chunk_words());
            copy_block(&self.alloc, chunk, copy, g.chunk_words());
            if chunk != self.empty_chunk {
                self.alloc.release(chunk, g.chunk_words());
            }
            self.alloc.arena().set(root + ROOT_CHUNKS + c, copy as u64);
            copy
        };
        self.writable = (c, chunk);
        (chunk, i)
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
                let word = arena.get(first_child + child / 2);
                image.children[s] = (word >> (32 * (child & 1))) as u32;
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

    /// Releases a node's block (not its children's).
    fn release_node(&mut self, node: usize) {
        if node == 0 {
            return;
        }
        let arena = self.alloc.arena();
        let (vector, leafvec) = (arena.get(node), arena.get(node + 1));
        let words = node_words(leafvec.count_ones() as usize, vector.count_ones() as usize);
        self.alloc.release(node, words);
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

fn copy_block(alloc: &Alloc, from: usize, to: usize, words: usize) {
    let arena = alloc.arena();
    for i in 0..words {
        arena.set(to + i, arena.get(from + i));
    }
}

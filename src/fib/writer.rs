//! The single writer: applies prefix changes to a private working tree, copying every
//! published block it changes, and publishes the tree as one version.

use std::collections::HashMap;

use super::alloc::Alloc;
use super::key::FibKey;
use super::layout::{
    bases, leaf, leaf_len, CHUNK_BITS, CHUNK_WORDS, ENTRY_WORDS, NODE_WORDS, ROOT_CHUNKS,
    ROOT_LEN, ROOT_VERSION, ROOT_WORDS, STRIDE, TOP_BITS,
};

/// Slots of a node.
const SLOTS: usize = 1 << STRIDE;

/// A node's three words (all zero: no node).
type Header = [u64; NODE_WORDS];

/// A node, decoded for editing.
struct Image {
    leaves: [u64; SLOTS],
    children: [Header; SLOTS],
    vector: u64,
}

/// The mask of the first `len` bits of a left-aligned 128-bit key.
#[inline]
fn mask(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - len as u32).unwrap_or(0)
}

/// The writer of one Fib. Keys are left-aligned in a `u128` for both families.
pub(crate) struct Writer {
    alloc: Alloc,
    /// The address width in bits (32 or 128).
    width: u32,
    /// The working root: the published one, or a fresh copy with unpublished changes.
    root: usize,
    /// The one all-empty chunk, shared by every root slot that holds nothing.
    empty_chunk: usize,
    /// Every prefix and its next hop: (left-aligned network, length) -> id.
    routes: HashMap<(u128, u8), u32>,
}

impl Writer {
    /// An empty Fib for addresses of `width` bits, published at version 0, in an arena of
    /// at least `capacity` words.
    pub(crate) fn new(width: u32, capacity: usize) -> Self {
        let capacity = capacity.max(ROOT_WORDS + CHUNK_WORDS + 1);
        let mut alloc = Alloc::new(capacity);
        let empty_chunk = alloc.alloc(CHUNK_WORDS);
        let root = alloc.alloc(ROOT_WORDS);
        let arena = alloc.arena();
        for i in 0..CHUNK_WORDS {
            arena.set(empty_chunk + i, 0);
        }
        arena.set(root + ROOT_VERSION, 0);
        arena.set(root + ROOT_LEN, 0);
        for c in 0..(ROOT_WORDS - ROOT_CHUNKS) {
            arena.set(root + ROOT_CHUNKS + c, empty_chunk as u64);
        }
        let mut w = Self {
            alloc,
            width,
            root,
            empty_chunk,
            routes: HashMap::new(),
        };
        w.publish(0);
        w
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
        let op = |this: &Self, min: u8| match id {
            Some(id) => Op::Set(leaf(len, id)),
            None => Op::Remove(this.cover(key, len, min)),
        };
        if len as u32 <= TOP_BITS {
            let op = op(self, 0);
            let first = key.slot(0, TOP_BITS);
            let count = 1usize << (TOP_BITS - len as u32);
            let mut chunk = (usize::MAX, 0);
            for t in first..first + count {
                let c = t >> CHUNK_BITS;
                if chunk.0 != c {
                    chunk = (c, self.chunk_for_write(c));
                }
                let at = chunk.1 + ENTRY_WORDS * (t & ((1 << CHUNK_BITS) - 1));
                let word = self.alloc.arena().get(at);
                self.alloc.arena().set(at, op.apply(word, len));
            }
        } else {
            let t = key.slot(0, TOP_BITS);
            let chunk = self.chunk_for_write(t >> CHUNK_BITS);
            let at = chunk + ENTRY_WORDS * (t & ((1 << CHUNK_BITS) - 1)) + 1;
            let old_node = self.read_header(at);
            let new_node = self.update(old_node, TOP_BITS, key, len, &op);
            for (i, w) in new_node.iter().enumerate() {
                self.alloc.arena().set(at + i, *w);
            }
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
    }

    /// The longest prefix of `key` with a length in `min..len`, as a leaf word (or 0).
    fn cover(&self, key: u128, len: u8, min: u8) -> u64 {
        (min..len)
            .rev()
            .find_map(|l| self.routes.get(&(key & mask(l), l)).map(|&id| leaf(l, id)))
            .unwrap_or(0)
    }

    /// The working root, copied first if it is published.
    fn root_for_write(&mut self) -> usize {
        if !self.alloc.is_fresh(self.root) {
            let copy = self.alloc.alloc(ROOT_WORDS);
            copy_block(&self.alloc, self.root, copy, ROOT_WORDS);
            self.alloc.release(self.root, ROOT_WORDS);
            self.root = copy;
        }
        self.root
    }

    /// Chunk `c` of the working root, copied first if it is published or the shared empty
    /// chunk.
    fn chunk_for_write(&mut self, c: usize) -> usize {
        let root = self.root_for_write();
        let chunk = self.alloc.arena().get(root + ROOT_CHUNKS + c) as usize;
        if chunk != self.empty_chunk && self.alloc.is_fresh(chunk) {
            return chunk;
        }
        let copy = self.alloc.alloc(CHUNK_WORDS);
        copy_block(&self.alloc, chunk, copy, CHUNK_WORDS);
        if chunk != self.empty_chunk {
            self.alloc.release(chunk, CHUNK_WORDS);
        }
        self.alloc.arena().set(root + ROOT_CHUNKS + c, copy as u64);
        copy
    }

    fn read_header(&self, at: usize) -> Header {
        let arena = self.alloc.arena();
        [arena.get(at), arena.get(at + 1), arena.get(at + 2)]
    }

    /// The node `old` at `depth` with the change applied to `key/len` (in it or below it),
    /// as a new node; `old`'s own blocks are released.
    fn update(
        &mut self,
        old: Header,
        depth: u32,
        key: u128,
        len: u8,
        op: &dyn Fn(&Self, u8) -> Op,
    ) -> Header {
        let mut image = self.decode(old);
        if len as u32 <= depth + STRIDE {
            let op = op(self, depth as u8 + 1);
            let first = key.slot(depth, STRIDE);
            let count = 1usize << (depth + STRIDE - len as u32);
            for w in &mut image.leaves[first..first + count] {
                *w = op.apply(*w, len);
            }
        } else {
            let s = key.slot(depth, STRIDE);
            let child = self.update(image.children[s], depth + STRIDE, key, len, op);
            image.children[s] = child;
            if child[1] == 0 {
                image.vector &= !(1 << s);
            } else {
                image.vector |= 1 << s;
            }
        }
        self.release_node(old);
        self.encode(&image)
    }

    fn decode(&self, h: Header) -> Image {
        let mut image = Image {
            leaves: [0; SLOTS],
            children: [[0; NODE_WORDS]; SLOTS],
            vector: h[0],
        };
        let (vector, leafvec) = (h[0], h[1]);
        if leafvec == 0 {
            return image;
        }
        let arena = self.alloc.arena();
        let (child_base, leaf_base) = ((h[2] >> 32) as usize, h[2] as u32 as usize);
        let mut run = leaf_base;
        let mut child = child_base;
        for s in 0..SLOTS {
            if s > 0 && leafvec >> s & 1 == 1 {
                run += 1;
            }
            image.leaves[s] = arena.get(run);
            if vector >> s & 1 == 1 {
                image.children[s] = [arena.get(child), arena.get(child + 1), arena.get(child + 2)];
                child += NODE_WORDS;
            }
        }
        image
    }

    fn encode(&mut self, image: &Image) -> Header {
        if image.vector == 0 && image.leaves.iter().all(|&w| w == 0) {
            return [0; NODE_WORDS];
        }
        let mut leafvec = 0u64;
        let mut runs = 0;
        for s in 0..SLOTS {
            if s == 0 || image.leaves[s] != image.leaves[s - 1] {
                leafvec |= 1 << s;
                runs += 1;
            }
        }
        let leaf_base = self.alloc.alloc(runs);
        let children = image.vector.count_ones() as usize;
        let child_base = if children > 0 {
            self.alloc.alloc(children * NODE_WORDS)
        } else {
            0
        };
        let arena = self.alloc.arena();
        let mut at = leaf_base;
        for s in 0..SLOTS {
            if leafvec >> s & 1 == 1 {
                arena.set(at, image.leaves[s]);
                at += 1;
            }
        }
        let mut at = child_base;
        for s in 0..SLOTS {
            if image.vector >> s & 1 == 1 {
                for (i, w) in image.children[s].iter().enumerate() {
                    arena.set(at + i, *w);
                }
                at += NODE_WORDS;
            }
        }
        [image.vector, leafvec, bases(child_base, leaf_base)]
    }

    /// Releases a node's leaf block and its children block (not the children's own).
    fn release_node(&mut self, h: Header) {
        let (vector, leafvec) = (h[0], h[1]);
        if leafvec == 0 {
            return;
        }
        self.alloc
            .release(h[2] as u32 as usize, leafvec.count_ones() as usize);
        if vector != 0 {
            self.alloc.release(
                (h[2] >> 32) as usize,
                vector.count_ones() as usize * NODE_WORDS,
            );
        }
    }
}

/// What a change does to the leaf words in its range.
enum Op {
    /// Store this leaf where no longer prefix wins.
    Set(u64),
    /// Where the removed prefix was the winner, store this (the next shorter cover, or 0).
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

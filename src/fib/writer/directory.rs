//! The directory: the working root and its chunks, copied on write from the published ones
//! (into their spare blocks when they have one), and painted with the leaves of the
//! prefixes it resolves itself (of at most `dir_bits` bits). It owns the nodes below it.

use super::spare::Spares;
use super::tree::Nodes;
use crate::fib::alloc::Alloc;
use crate::fib::key::FibKey;
use crate::fib::layout::{
    entry_of_leaf, leaf_len, leaf_of_entry, Geometry, NODE, NODE_FALLBACK, ROOT_CHUNKS, ROOT_LEN,
    ROOT_VERSION,
};

/// The working tree of one Fib, from its root down.
pub(super) struct Directory {
    /// The directory's shape.
    pub(super) geometry: Geometry,
    /// The nodes below the directory, and the allocator of the whole arena.
    pub(super) nodes: Nodes,
    /// The working root: the published one, or a fresh copy with unpublished changes.
    pub(super) root: usize,
    /// The one all-empty chunk, shared by every root slot that holds nothing.
    pub(super) empty_chunk: usize,
    /// The chunk last made writable: (chunk number, block).
    pub(super) writable: (usize, usize),
    /// Publishes so far: the batch of changes being built is number `batch`.
    pub(super) batch: u64,
    /// The batch in which the working root became writable (it is while this is `batch`).
    pub(super) root_written: u64,
    /// The previous blocks of the root and of the chunks, and the chunks' bookkeeping.
    pub(super) spares: Spares,
}

impl Directory {
    /// An empty tree of shape `geometry` (every root slot on the one empty chunk), not
    /// published yet, in a new arena of at least `capacity` words.
    pub(super) fn new(geometry: Geometry, capacity: usize) -> Self {
        let capacity = capacity.max(geometry.root_words() + geometry.chunk_words() + 1);
        let mut alloc = Alloc::new(capacity, geometry);
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
        Self {
            geometry,
            nodes: Nodes::new(alloc),
            root,
            empty_chunk,
            writable: (usize::MAX, 0),
            batch: 0,
            root_written: 0,
            spares: Spares::new(1usize << geometry.root_bits),
        }
    }

    /// Publishes the working root as `version`, holding `len` prefixes: readers that load
    /// the root from now on see it. The caller made the root writable in this batch
    /// ([`Directory::root_for_write`]); the next change starts a new batch.
    pub(super) fn publish(&mut self, version: u64, len: u64) {
        let arena = self.nodes.alloc.arena();
        arena.set(self.root + ROOT_VERSION, version);
        arena.set(self.root + ROOT_LEN, len);
        arena.publish_root(self.root);
        self.nodes.alloc.published();
        self.writable = (usize::MAX, 0);
        self.batch += 1;
    }

    /// Gives every directory entry that `key/len` covers, and that no longer prefix of
    /// length `<= dir_bits` owns, the leaf `word`. Such entries are owned by `key/len` or
    /// by a shorter prefix, or by none: those whose leaf (in the entry, or in its node's
    /// fallback) is empty or for a length of at most `len`.
    pub(super) fn paint(&mut self, key: u128, len: u8, word: u64) {
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
            let mut chunk = self.nodes.alloc.arena().get(self.root + ROOT_CHUNKS + c) as usize;
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
    pub(super) fn entry_leaf(&self, entry: u32) -> u64 {
        if entry & NODE != 0 {
            self.nodes
                .alloc
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
            let mut image = self.nodes.decode(node);
            image.fallback = word;
            self.nodes.release_node(node);
            let new = self.nodes.encode(&image, false);
            self.entry_of(new, word)
        } else {
            self.entry_of(0, word)
        };
        self.set_entry(chunk, i, new);
        chunk
    }

    /// The entry for `node` (0: none) under a leaf `fallback`: a plain leaf if it fits,
    /// else a node (a leaf-only one if `node` is 0).
    pub(super) fn entry_of(&mut self, node: usize, fallback: u64) -> u32 {
        if node != 0 {
            return NODE | node as u32;
        }
        if let Some(e) = entry_of_leaf(fallback) {
            return e;
        }
        NODE | self.nodes.hop(fallback)
    }

    pub(super) fn entry(&self, chunk: usize, i: usize) -> u32 {
        self.nodes.alloc.arena().get_u32(chunk, i)
    }

    pub(super) fn set_entry(&mut self, chunk: usize, i: usize, entry: u32) {
        self.nodes.alloc.arena().set_u32(chunk, i, entry);
    }

    /// The working root: the published one is copied first, into the spare root when
    /// there is one (only the chunk indices the last batch changed are copied).
    pub(super) fn root_for_write(&mut self) -> usize {
        if self.root_written != self.batch {
            let words = self.geometry.root_words();
            let alloc = &mut self.nodes.alloc;
            let block = if self.spares.root.block != 0 {
                alloc.reuse_detached();
                self.spares.root.catch_up(alloc.arena(), self.root, words)
            } else {
                let copy = alloc.alloc(words);
                alloc.arena().copy(self.root, copy, words);
                copy
            };
            self.spares.root.reset(self.root);
            self.root = block;
            self.root_written = self.batch;
        }
        self.root
    }

    /// The writable chunk holding directory entry `t`, and `t`'s index in it; the entry's
    /// word is noted as written. A published chunk is copied first, into its spare block
    /// when it has one; the shared empty chunk into a new block.
    pub(super) fn entry_for_write(&mut self, t: usize) -> (usize, usize) {
        let g = self.geometry;
        let c = t >> g.chunk_bits;
        let i = t & ((1 << g.chunk_bits) - 1);
        let cap = g.chunk_words() / 8;
        if self.writable.0 == c {
            self.spares.chunks[c].spare.note(i / 2, cap);
            return (self.writable.1, i);
        }
        let root = self.root_for_write();
        let current = self.nodes.alloc.arena().get(root + ROOT_CHUNKS + c) as usize;
        let chunk = if self.spares.chunks[c].written == self.batch {
            current
        } else {
            let words = g.chunk_words();
            let alloc = &mut self.nodes.alloc;
            let slot = &mut self.spares.chunks[c];
            let block = if slot.spare.block != 0 {
                slot.referenced = true;
                alloc.reuse_detached();
                slot.spare.catch_up(alloc.arena(), current, words)
            } else {
                let copy = match alloc.try_alloc(words) {
                    Some(b) => b,
                    None => {
                        // Spares give way to the Fib itself: free some rather than grow
                        // the arena.
                        self.spares.evict(alloc, self.batch, words, c, 16);
                        alloc.alloc(words)
                    }
                };
                alloc.arena().copy(current, copy, words);
                copy
            };
            let slot = &mut self.spares.chunks[c];
            slot.written = self.batch;
            if current != self.empty_chunk {
                if slot.spare.block == 0 {
                    self.spares.clock.push_back(c as u32);
                }
                slot.spare.reset(current);
            }
            alloc.arena().set(root + ROOT_CHUNKS + c, block as u64);
            self.spares.root.note(ROOT_CHUNKS + c, g.root_words() / 8);
            self.spares.evict(alloc, self.batch, words, c, 0);
            block
        };
        self.spares.chunks[c].spare.note(i / 2, cap);
        self.writable = (c, chunk);
        (chunk, i)
    }
}

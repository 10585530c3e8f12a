//! Laying the tree out again after a bulk load, so that the nodes one lookup walks lie
//! near each other: in place, moving the batch's fresh nodes to the end of the arena in
//! depth-first order, or, while no reader handle exists, copying the whole tree into a new
//! arena of just its size.

use super::directory::Directory;
use super::spare::Spare;
use super::tree::is_hop;
use crate::fib::alloc::Alloc;
use crate::fib::arena::Arena;
use crate::fib::layout::{node_words, NODE, NODE_HEADER, ROOT_CHUNKS};
use crate::hash::FastMap;

/// A publish lays out again the nodes of a batch that handed out at least this many
/// blocks (a bulk load), see [`Directory::relayout`]; smaller batches keep their nodes
/// where they are.
pub(super) const RELAYOUT_BLOCKS: usize = 1 << 14;

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

/// Moves the fresh node `node` and its fresh descendants (parents before children) to the
/// end of `alloc`'s arena; returns its new index.
fn relocate(alloc: &mut Alloc, node: usize) -> usize {
    let arena = alloc.arena();
    let (vector, leafvec) = (arena.get(node), arena.get(node + 1));
    let words = node_words(leafvec.count_ones() as usize, vector.count_ones() as usize);
    let new = alloc.alloc_at_end(words);
    alloc.arena().copy(node, new, words);
    alloc.release(node, words);
    for j in 0..vector.count_ones() as usize {
        let child = alloc.arena().get_u32(new + NODE_HEADER, j) as usize;
        if alloc.is_fresh(child) {
            let moved = relocate(alloc, child);
            alloc.arena().set_u32(new + NODE_HEADER, j, moved as u32);
        }
    }
    new
}

impl Directory {
    /// Copies the working tree into a new arena of just its size, the root and chunks
    /// first, then each chunk's node trees in depth-first order, as [`Directory::relayout`]
    /// orders them but without the holes the moved nodes leave. Only while no reader
    /// handle exists (after a bulk load, before the Fib is handed out): the old arena
    /// and every older version in it go at once. Costs one copy of what is in use.
    pub(super) fn compact(&mut self) {
        let g = self.geometry;
        let old = self.nodes.alloc.arena();
        let used = self.nodes.alloc.used_words();
        let new = Arena::new(1 + used + used / 8 + (1 << 12), g);
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
            let slot = &mut self.spares.chunks[c];
            slot.written = if moved == empty { u64::MAX } else { self.batch };
            slot.spare = Spare::NONE;
            slot.referenced = false;
        }
        for (node, _) in self.nodes.hops.values_mut() {
            *node = hops_moved[&(*node as usize)] as u32;
        }
        self.nodes.alloc.install(new, top);
        self.root = root;
        self.empty_chunk = empty;
        self.root_written = self.batch;
        self.spares.root = Spare::NONE;
        self.spares.clock.clear();
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
    pub(super) fn relayout(&mut self) {
        let g = self.geometry;
        for c in 0..1usize << g.root_bits {
            if self.spares.chunks[c].written != self.batch {
                continue;
            }
            let chunk = self.nodes.alloc.arena().get(self.root + ROOT_CHUNKS + c) as usize;
            for i in 0..1usize << g.chunk_bits {
                let e = self.entry(chunk, i);
                // Shared leaf-only nodes stay: several entries point to each, and a
                // lookup that reaches one reads only it.
                let node = (e & !NODE) as usize;
                if e & NODE != 0
                    && self.nodes.alloc.is_fresh(node)
                    && !is_hop(self.nodes.alloc.arena(), node)
                {
                    let moved = relocate(&mut self.nodes.alloc, node);
                    let (chunk, i) = self.entry_for_write(c << g.chunk_bits | i);
                    self.set_entry(chunk, i, NODE | moved as u32);
                }
            }
        }
    }
}

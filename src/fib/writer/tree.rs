//! The nodes below the directory: a node decoded into an [`Image`], edited, and encoded
//! into a new block, and the shared leaf-only nodes that stand for leaves too large for a
//! directory entry. [`Nodes`] also owns the writer's allocator, which the directory above
//! takes its blocks from.

use crate::fib::alloc::Alloc;
use crate::fib::arena::Arena;
use crate::fib::key::FibKey;
use crate::fib::layout::{leaf_len, node_words, NODE_FALLBACK, NODE_HEADER, STRIDE};
use crate::hash::FastMap;

/// Slots of a node.
const SLOTS: usize = 1 << STRIDE;

/// A node, decoded for editing.
pub(super) struct Image {
    leaves: [u64; SLOTS],
    /// Child node indices (0: none).
    children: [u32; SLOTS],
    /// The leaf of the directory entry above (nodes right below the directory only).
    pub(super) fallback: u64,
}

/// Whether `node` is a shared leaf-only node ([`Nodes::hops`]): no children, one leaf run,
/// empty.
pub(super) fn is_hop(arena: &Arena, node: usize) -> bool {
    arena.get(node) == 0 && arena.get(node + 1) == 1 && arena.get(node + NODE_HEADER) == 0
}

/// The writer's nodes: the allocator of the whole arena, and the shared leaf-only nodes.
pub(super) struct Nodes {
    /// The allocator (of nodes, and of the directory's roots and chunks).
    pub(super) alloc: Alloc,
    /// The leaf-only nodes that stand for a leaf too large for a directory entry (an id
    /// of [`ENTRY_ID`](crate::fib::layout::ENTRY_ID) or more), one per leaf word, shared by
    /// every entry that holds it: the node and how many entries point to it. A node
    /// without children whose leaves are all empty is always one of these (`encode` makes
    /// none otherwise), see [`is_hop`].
    pub(super) hops: FastMap<u64, (u32, u32)>,
}

impl Nodes {
    /// No nodes yet, blocks from `alloc`.
    pub(super) fn new(alloc: Alloc) -> Self {
        Self {
            alloc,
            hops: FastMap::default(),
        }
    }

    /// The shared leaf-only node for `fallback` (a leaf too large for a directory entry),
    /// made if no entry holds it yet; counts one more entry pointing to it.
    pub(super) fn hop(&mut self, fallback: u64) -> u32 {
        if let Some((node, refs)) = self.hops.get_mut(&fallback) {
            *refs += 1;
            return *node;
        }
        let image = Image {
            leaves: [0; SLOTS],
            children: [0; SLOTS],
            fallback,
        };
        let node = self.encode(&image, true) as u32;
        self.hops.insert(fallback, (node, 1));
        node
    }

    /// The node `old` (0: none) at `depth` with the change applied to `key/len` (in it or
    /// below it), as a new node (0: empty); `old`'s block is released. `fallback` is the
    /// node's fallback leaf (0 below the top level). `op` gives the change for the node
    /// that holds `key/len`, from the shortest length that node holds.
    pub(super) fn update(
        &mut self,
        old: usize,
        depth: u32,
        key: u128,
        len: u8,
        op: &dyn Fn(u8) -> Op,
        fallback: u64,
    ) -> usize {
        let mut image = self.decode(old);
        image.fallback = fallback;
        if len as u32 <= depth + STRIDE {
            let op = op(depth as u8 + 1);
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

    /// The node at `node` (0: none, an empty image), decoded.
    pub(super) fn decode(&self, node: usize) -> Image {
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
    pub(super) fn encode(&mut self, image: &Image, keep: bool) -> usize {
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
    pub(super) fn release_node(&mut self, node: usize) {
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

/// What a change does to the leaf words of a node in its range.
pub(super) enum Op {
    /// Store this leaf where no longer prefix wins.
    Set(u64),
    /// Where the removed prefix was the winner, store this (the next shorter cover in the
    /// node, or 0).
    Remove(u64),
}

impl Op {
    #[inline]
    pub(super) fn apply(&self, word: u64, len: u8) -> u64 {
        match *self {
            Op::Set(new) if word == 0 || leaf_len(word) <= len => new,
            Op::Remove(cover) if word != 0 && leaf_len(word) == len => cover,
            _ => word,
        }
    }
}

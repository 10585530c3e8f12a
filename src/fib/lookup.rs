//! The read path: one walk from the root to the longest match, loads only.

use super::arena::Arena;
use super::key::FibKey;
use super::layout::{
    leaf_id, CHUNK_BITS, ENTRY_WORDS, NODE_WORDS, ROOT_BITS, ROOT_CHUNKS, STRIDE, TOP_BITS,
};

/// The leaf word of the longest prefix covering `key` in the tree at `root`, or 0.
///
/// `width` is the address width in bits. Every index is bounds-checked by
/// [`Arena::get`] and every step consumes `STRIDE` bits, so the walk ends and stays in
/// bounds whatever the words say (a walk over reused words is retried by the caller).
#[inline(always)]
pub(crate) fn walk<K: FibKey>(arena: &Arena, root: usize, key: K, width: u32) -> u64 {
    let chunk = arena.get(root.wrapping_add(ROOT_CHUNKS + key.slot(0, ROOT_BITS))) as usize;
    let entry = chunk.wrapping_add(ENTRY_WORDS * key.slot(ROOT_BITS, CHUNK_BITS));
    let mut best = arena.get(entry);
    // The entry's node is inline, right after its leaf.
    let mut node = entry.wrapping_add(1);
    let mut depth = TOP_BITS;
    while depth < width {
        let leafvec = arena.get(node.wrapping_add(1));
        if leafvec == 0 {
            break; // no node here
        }
        let vector = arena.get(node);
        let bases = arena.get(node.wrapping_add(2));
        let s = key.slot(depth, STRIDE);
        // Leaf runs up to and including slot s; the last one is s's.
        let run = (leafvec & (u64::MAX >> (63 - s))).count_ones() as usize;
        let leaf_base = bases as u32 as usize;
        let word = arena.get(leaf_base.wrapping_add(run).wrapping_sub(1));
        if word != 0 {
            best = word;
        }
        if vector >> s & 1 == 0 {
            break;
        }
        let rank = (vector & ((1u64 << s) - 1)).count_ones() as usize;
        node = ((bases >> 32) as usize).wrapping_add(rank * NODE_WORDS);
        depth += STRIDE;
    }
    best
}

/// The next hop of a leaf word (0 is none).
#[inline(always)]
pub(crate) fn answer(word: u64) -> Option<u32> {
    leaf_id(word)
}

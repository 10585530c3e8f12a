//! The read path: one walk from the root to the longest match, loads only.

use super::arena::Arena;
use super::key::FibKey;
use super::layout::{
    leaf_id, leaf_of_entry, Geometry, NODE, NODE_FALLBACK, NODE_HEADER, ROOT_CHUNKS, STRIDE,
};

/// Where a walk stands: the best leaf word so far, the node to visit next (0: done), and
/// the depth of that node.
#[derive(Clone, Copy)]
pub(crate) struct Walk {
    best: u64,
    node: usize,
    depth: u32,
}

/// The directory step: the walk for `key` after the first `dir_bits` bits.
#[inline(always)]
pub(crate) fn start<K: FibKey>(arena: &Arena, g: Geometry, root: usize, key: K) -> Walk {
    let chunk = arena.get(root.wrapping_add(ROOT_CHUNKS + key.slot(0, g.root_bits))) as usize;
    let i = key.slot(g.root_bits, g.chunk_bits);
    let entry = (arena.get(chunk.wrapping_add(i / 2)) >> (32 * (i & 1))) as u32;
    if entry & NODE == 0 {
        Walk {
            best: leaf_of_entry(entry),
            node: 0,
            depth: 0,
        }
    } else {
        let node = (entry & !NODE) as usize;
        Walk {
            best: arena.get(node.wrapping_add(NODE_FALLBACK)),
            node,
            depth: g.dir_bits(),
        }
    }
}

/// One node step of a walk that is not done. Every index is bounds-checked by
/// [`Arena::get`] and the depth grows by `STRIDE` per step, so a walk ends and stays in
/// bounds whatever the words say (a walk over reused words is retried by the caller).
#[inline(always)]
pub(crate) fn step<K: FibKey>(arena: &Arena, w: &mut Walk, key: K, width: u32) {
    let node = w.node;
    let vector = arena.get(node);
    let leafvec = arena.get(node.wrapping_add(1));
    let s = key.slot(w.depth, STRIDE);
    // Leaf runs up to and including slot s; the last of them is s's.
    let run = (leafvec & (u64::MAX >> (63 - s))).count_ones() as usize;
    let word = arena.get(node.wrapping_add(NODE_HEADER - 1).wrapping_add(run));
    if word != 0 {
        w.best = word;
    }
    w.depth += STRIDE;
    if vector >> s & 1 == 0 || w.depth >= width {
        w.node = 0;
        return;
    }
    let rank = (vector & ((1u64 << s) - 1)).count_ones() as usize;
    let at = node
        .wrapping_add(NODE_HEADER + leafvec.count_ones() as usize)
        .wrapping_add(rank / 2);
    w.node = (arena.get(at) >> (32 * (rank & 1))) as u32 as usize;
}

/// The leaf word of the longest prefix covering `key` in the tree at `root`, or 0.
#[inline(always)]
pub(crate) fn walk<K: FibKey>(arena: &Arena, g: Geometry, root: usize, key: K, width: u32) -> u64 {
    let mut w = start(arena, g, root, key);
    while w.node != 0 {
        step(arena, &mut w, key, width);
    }
    w.best
}

/// Walks up to `N` keys side by side, one level at a time, so that their memory accesses
/// overlap; writes each answer to `out`.
#[inline(always)]
pub(crate) fn walk_many<K: FibKey, const N: usize>(
    arena: &Arena,
    g: Geometry,
    root: usize,
    keys: &[K],
    width: u32,
    out: &mut [Option<u32>],
) {
    let n = keys.len().min(N).min(out.len());
    let mut walks = [Walk {
        best: 0,
        node: 0,
        depth: 0,
    }; N];
    // First touch every lane's directory word, so that their cache misses overlap.
    for key in &keys[..n] {
        let chunk = arena.get(root.wrapping_add(ROOT_CHUNKS + key.slot(0, g.root_bits))) as usize;
        arena.prefetch(chunk.wrapping_add(key.slot(g.root_bits, g.chunk_bits) / 2));
    }
    for i in 0..n {
        walks[i] = start(arena, g, root, keys[i]);
    }
    loop {
        let mut active = false;
        for i in 0..n {
            if walks[i].node != 0 {
                step(arena, &mut walks[i], keys[i], width);
                active = true;
            }
        }
        if !active {
            break;
        }
    }
    for i in 0..n {
        out[i] = answer(walks[i].best);
    }
}

/// The next hop of a leaf word (0 is none).
#[inline(always)]
pub(crate) fn answer(word: u64) -> Option<u32> {
    leaf_id(word)
}

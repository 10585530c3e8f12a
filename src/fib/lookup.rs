//! The read path: one walk from the root to the longest match, loads only.

use super::arena::Arena;
use super::key::FibKey;
use super::layout::{
    leaf_id, leaf_of_entry, Geometry, ENTRY_ID, NODE, NODE_FALLBACK, NODE_HEADER, ROOT_CHUNKS,
    STRIDE,
};
use crate::prefix::sealed::AddrBits;

/// A directory shape, known at run time ([`Geometry`]) or at compile time ([`Fixed`]), so
/// that the shapes [`FibWriter::for_prefixes`](crate::FibWriter::for_prefixes) picks
/// compile to constant shifts.
pub(crate) trait Shape: Copy {
    /// Bits the root block indexes.
    fn root_bits(self) -> u32;
    /// Bits each chunk indexes.
    fn chunk_bits(self) -> u32;
}

impl Shape for Geometry {
    #[inline(always)]
    fn root_bits(self) -> u32 {
        self.root_bits
    }
    #[inline(always)]
    fn chunk_bits(self) -> u32 {
        self.chunk_bits
    }
}

/// A directory of `R` root bits and `C` chunk bits.
#[derive(Clone, Copy)]
pub(crate) struct Fixed<const R: u32, const C: u32>;

impl<const R: u32, const C: u32> Shape for Fixed<R, C> {
    #[inline(always)]
    fn root_bits(self) -> u32 {
        R
    }
    #[inline(always)]
    fn chunk_bits(self) -> u32 {
        C
    }
}

/// Evaluates `$body` with `$s` bound to a [`Shape`] equal to the geometry `$g`: a
/// [`Fixed`] one for the 24- and 16-bit directories, else `$g` itself. Meant for
/// code that runs a loop under one dispatch (the match is not free per address).
macro_rules! with_shape {
    ($g:expr, |$s:ident| $body:expr) => {{
        let g: $crate::fib::layout::Geometry = $g;
        match (g.root_bits, g.chunk_bits) {
            (12, 12) => {
                let $s = $crate::fib::lookup::Fixed::<12, 12>;
                $body
            }
            (8, 8) => {
                let $s = $crate::fib::lookup::Fixed::<8, 8>;
                $body
            }
            _ => {
                let $s = g;
                $body
            }
        }
    }};
}
pub(crate) use with_shape;

/// Where a walk stands: the best leaf word so far, the node to visit next (0: done), and
/// the depth of that node.
#[derive(Clone, Copy)]
pub(crate) struct Walk {
    best: u64,
    node: usize,
    depth: u32,
}

/// The walk that follows directory entry `entry`: done if it is a leaf, else at its node
/// with the entry's own leaf (the node's fallback) as the best so far.
#[inline(always)]
fn from_entry<G: Shape>(arena: &Arena, g: G, entry: u32) -> Walk {
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
            depth: g.root_bits() + g.chunk_bits(),
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
    // The child indices come first, right after the header: the next step's address is
    // on the line just read whenever the node has few children.
    let pairs = (vector.count_ones() as usize).div_ceil(2);
    // Leaf runs up to and including slot s; the last of them is s's.
    let run = (leafvec & (u64::MAX >> (63 - s))).count_ones() as usize;
    let word = arena.get(node.wrapping_add(NODE_HEADER - 1 + pairs).wrapping_add(run));
    if word != 0 {
        w.best = word;
    }
    w.depth += STRIDE;
    if vector >> s & 1 == 0 || w.depth >= width {
        w.node = 0;
        return;
    }
    let rank = (vector & ((1u64 << s) - 1)).count_ones() as usize;
    let at = node.wrapping_add(NODE_HEADER).wrapping_add(rank / 2);
    w.node = (arena.get(at) >> (32 * (rank & 1))) as u32 as usize;
}

/// Where the directory entry for `key` is: its word's index and the shift of its half.
/// One load, the root's chunk index. `root` is a root index loaded from `arena`
/// ([`Arena::root`]) and `g` the Fib's shape.
#[inline(always)]
fn entry_at<K: FibKey, G: Shape>(arena: &Arena, g: G, root: usize, key: K) -> (usize, u32) {
    // The root block's words may be stale or reused: only the index must be in bounds,
    // and the chunk index read here is bounds-checked where it is used.
    let slot = key.slot(0, g.root_bits());
    // Every root index an arena holds names a whole root block of the arena's shape
    // inside that arena (`2 + 2^root_bits` words; the writer allocates it there before
    // storing the index, `Arena::publish_root`, and an arena's copy keeps every block it
    // held). `g` is that shape or a smaller one: the arena's own (`Arena::geometry`), or
    // a reader handle's 24 bits, the largest, which a directory that only grows keeps
    // (`Fib::geometry`).
    // SAFETY: so `root + ROOT_CHUNKS + slot` is in bounds, as `slot < 2^root_bits`.
    let chunk = unsafe { arena.get_unchecked(root + ROOT_CHUNKS + slot) } as usize;
    let i = key.slot(g.root_bits(), g.chunk_bits());
    (chunk.wrapping_add(i / 2), 32 * (i as u32 & 1))
}

/// The directory entry for `key`: two loads, the root's chunk index and the entry.
#[inline(always)]
pub(crate) fn entry<K: FibKey, G: Shape>(arena: &Arena, g: G, root: usize, key: K) -> u32 {
    let (word, shift) = entry_at(arena, g, root, key);
    (arena.get(word) >> shift) as u32
}

/// The answer of a directory entry that is not a node (`len << 26 | id + 1`, or 0 for
/// none).
#[inline(always)]
pub(crate) fn entry_answer(entry: u32) -> Option<u32> {
    (entry & ENTRY_ID).checked_sub(1)
}

/// Defines a function over a node walk twice: compiled as the crate is, and compiled for a
/// CPU with `popcnt` (a node step counts bits twice; without the instruction each count is
/// a dozen), and calls the second when this CPU has the instruction. Parameters are plain
/// names (rebind them `mut` inside); bounds on a generic are joined with `|`.
macro_rules! popcnt_fn {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident<$($gen:ident: $b0:path $(| $bn:path)*),*>(
            $($arg:ident: $ty:ty),* $(,)?
        ) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$meta])*
        #[inline(never)]
        $vis fn $name<$($gen: $b0 $(+ $bn)*),*>($($arg: $ty),*) $(-> $ret)? {
            #[cfg(all(target_arch = "x86_64", not(loom)))]
            {
                #[target_feature(enable = "popcnt")]
                unsafe fn with_popcnt<$($gen: $b0 $(+ $bn)*),*>($($arg: $ty),*) $(-> $ret)? $body
                if std::is_x86_feature_detected!("popcnt") {
                    // SAFETY: `with_popcnt` only needs `popcnt`, which this CPU was just
                    // found to have.
                    return unsafe { with_popcnt($($arg),*) };
                }
            }
            $body
        }
    };
}

popcnt_fn! {
    /// The answer for `key` whose directory entry `entry` is a node: the walk below the
    /// directory. Out of line, so that the directory path, which most IPv4 addresses
    /// take, stays a handful of instructions.
    pub(crate) fn below<K: FibKey, G: Shape>(arena: &Arena, g: G, key: K, entry: u32, width: u32) -> Option<u32> {
        let mut w = from_entry(arena, g, entry);
        while w.node != 0 {
            step(arena, &mut w, key, width);
        }
        answer(w.best)
    }
}

/// The answer for `key` in the tree at `root`: the directory inline, the nodes out of
/// line.
#[inline(always)]
pub(crate) fn find<K: FibKey, G: Shape>(
    arena: &Arena,
    g: G,
    root: usize,
    key: K,
    width: u32,
) -> Option<u32> {
    let e = entry(arena, g, root, key);
    if e & NODE == 0 {
        entry_answer(e)
    } else {
        below(arena, g, key, e, width)
    }
}

/// Answers `addrs` into `out` (as long as `addrs`, at most `deep.len()`): the directory for every
/// address first, in a tight loop whose cache misses overlap, then the addresses whose
/// entry is a node, walked side by side.
#[inline(always)]
pub(crate) fn find_many<A: AddrBits + Copy, G: Shape>(
    arena: &Arena,
    g: G,
    root: usize,
    addrs: &[A],
    width: u32,
    out: &mut [Option<u32>],
    deep: &mut [(u32, u32)],
) {
    debug_assert!(addrs.len() == out.len() && addrs.len() <= deep.len());
    // `deep`: the deep addresses' positions and entries, packed at the front (a store per
    // address, counted only when deep: no branch). The caller's, so that it is not
    // zeroed again for every batch.
    // The entries' lines first, as hints: the loads below then find them on their way,
    // more of them at once than the CPU would have started by itself.
    for a in addrs {
        arena.prefetch(entry_at(arena, g, root, a.fib_key()).0);
    }
    let mut n = 0;
    for (i, (a, out)) in addrs.iter().zip(out.iter_mut()).enumerate() {
        let e = entry(arena, g, root, a.fib_key());
        *out = entry_answer(e);
        deep[n] = (i as u32, e);
        n += (e >> 31) as usize;
    }
    if n != 0 {
        walk_deep(arena, g, addrs, &deep[..n], width, out);
    }
}

popcnt_fn! {
    /// The addresses at the positions of `deep` (with their directory entries, which are
    /// nodes) walked below the directory, one after another: a walk's loads depend on
    /// each other, but the next address's walk does not wait for this one's, so the CPU
    /// overlaps their misses by itself.
    fn walk_deep<A: AddrBits | Copy, G: Shape>(
        arena: &Arena,
        g: G,
        addrs: &[A],
        deep: &[(u32, u32)],
        width: u32,
        out: &mut [Option<u32>],
    ) {
        for &(i, e) in deep {
            let key = addrs[i as usize].fib_key();
            let mut w = from_entry(arena, g, e);
            while w.node != 0 {
                step(arena, &mut w, key, width);
            }
            out[i as usize] = answer(w.best);
        }
    }
}

/// The next hop of a leaf word (0 is none).
#[inline(always)]
pub(crate) fn answer(word: u64) -> Option<u32> {
    leaf_id(word)
}

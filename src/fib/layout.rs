//! Where things sit in the arena: the word layout that the reader and the writer share.
//!
//! The arena is one array of 64-bit words. Index 0 is never allocated, so 0 means "none"
//! wherever an index is stored.
//!
//! * **Root block** (`ROOT_WORDS`): `[version, len, chunk_0, .., chunk_{2^ROOT_BITS - 1}]`.
//!   The root's index is what a publish stores; everything a reader sees hangs off it.
//! * **Chunk block** (`CHUNK_WORDS`): `2^CHUNK_BITS` entries of four words, `[leaf, node]`
//!   where `node` is the three words of the node below the entry, inline (all zero: none).
//!   Root and chunks together are a direct-indexed directory of the first `TOP_BITS` bits
//!   of the address: `leaf` is the longest prefix of length `<= TOP_BITS` that covers the
//!   entry (leaf-pushed within the directory).
//! * **Node** (`NODE_WORDS`, inline in a chunk entry or inside a block of its siblings;
//!   `leafvec == 0` means "no node"): a popcount-compressed
//!   level of `STRIDE` bits, `[vector, leafvec, child_base << 32 | leaf_base]`. Bit `s` of
//!   `vector` says slot `s` has a child; children are consecutive nodes at `child_base`,
//!   in slot order. Every slot has a leaf word: the longest prefix stored in this node
//!   (lengths `depth + 1 ..= depth + STRIDE`) that covers the slot, or 0. Equal neighbours
//!   share one word: bit `s` of `leafvec` starts a new run, and runs are consecutive words
//!   at `leaf_base`.
//!
//! Prefixes are not pushed from one level into the next: a lookup remembers the last
//! non-zero leaf on its way down. So a change touches one node's slots (and the path above
//! it), never a subtree below.

/// Bits the root block indexes.
#[cfg(not(loom))]
pub(crate) const ROOT_BITS: u32 = 10;
/// Bits each chunk indexes.
#[cfg(not(loom))]
pub(crate) const CHUNK_BITS: u32 = 6;
// Under loom the directory is tiny, so that a model has few atomics to explore.
#[cfg(loom)]
pub(crate) const ROOT_BITS: u32 = 1;
#[cfg(loom)]
pub(crate) const CHUNK_BITS: u32 = 1;

/// Bits the directory (root + chunk) resolves.
pub(crate) const TOP_BITS: u32 = ROOT_BITS + CHUNK_BITS;
/// Bits each node below the directory resolves.
pub(crate) const STRIDE: u32 = 6;
/// Words of the root block.
pub(crate) const ROOT_WORDS: usize = 2 + (1 << ROOT_BITS);
/// Words of a chunk block.
pub(crate) const CHUNK_WORDS: usize = ENTRY_WORDS << CHUNK_BITS;
/// Words of a chunk entry: the leaf, then an inline node.
pub(crate) const ENTRY_WORDS: usize = 1 + NODE_WORDS;
/// Words of a node.
pub(crate) const NODE_WORDS: usize = 3;

/// Root word holding the version.
pub(crate) const ROOT_VERSION: usize = 0;
/// Root word holding the number of prefixes.
pub(crate) const ROOT_LEN: usize = 1;
/// Root word of the first chunk index.
pub(crate) const ROOT_CHUNKS: usize = 2;

/// Set in every leaf word that holds a next hop (so a /0 leaf is not 0).
pub(crate) const LEAF_PRESENT: u64 = 1 << 40;

/// The leaf word of a prefix of length `len` with next hop `id`. The reader uses only the
/// present bit and the low 32 bits; the length is for the writer.
#[inline]
pub(crate) fn leaf(len: u8, id: u32) -> u64 {
    LEAF_PRESENT | (len as u64) << 32 | id as u64
}

/// The prefix length a non-zero leaf word was made for.
#[inline]
pub(crate) fn leaf_len(word: u64) -> u8 {
    (word >> 32) as u8
}

/// The next hop a leaf word holds.
#[inline(always)]
pub(crate) fn leaf_id(word: u64) -> Option<u32> {
    (word & LEAF_PRESENT != 0).then_some(word as u32)
}

/// A node's third word: where its children and its leaf runs start.
#[inline]
pub(crate) fn bases(child_base: usize, leaf_base: usize) -> u64 {
    (child_base as u64) << 32 | leaf_base as u64
}

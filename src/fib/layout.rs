//! Where things sit in the arena: the word layout that the reader and the writer share.
//!
//! The arena is one array of 64-bit words. Index 0 is never allocated, so 0 means "none"
//! wherever an index is stored.
//!
//! * **Root block** (`2 + 2^root_bits` words): `[version, len, chunk_0, ..]`. The root's
//!   index is what a publish stores; everything a reader sees hangs off it.
//! * **Chunk block** (`2^chunk_bits / 2` words): `2^chunk_bits` directory entries, `u32`s
//!   packed two per word (low half first). Root and chunks together index the first
//!   `dir_bits = root_bits + chunk_bits` bits of the address directly, as DIR-24-8's
//!   first table does. An entry is 0 (no prefix), `len << 26 | id + 1` (the longest
//!   prefix of length `<= dir_bits` covering it is `len` bits long and has next hop `id`;
//!   leaf-pushed), or `NODE | index` (a node holds the longer prefixes below it, and its
//!   `fallback` word the entry's own leaf, length included). The length is the writer's:
//!   it tells which entries a change of a short prefix may overwrite (DIR-24-8 keeps a
//!   depth per entry for the same purpose). An id of [`ENTRY_ID`] or more does not fit
//!   beside it and takes a leaf-only node.
//! * **Node block**: a popcount-compressed level of `STRIDE` bits, in one block so that a
//!   step of a lookup touches one or two adjacent cache lines:
//!   `[vector, leafvec, fallback, child indices.., leaf runs..]`. Bit `s` of `vector` says
//!   slot `s` has a child; the children's indices follow the header, in slot order, as
//!   `u32`s packed two per word (low half first), so that the index the next step needs
//!   is near the words just read. Every slot has a leaf word: the longest
//!   prefix stored in this node (lengths `depth + 1 ..= depth + STRIDE`) that covers the
//!   slot, or 0. Equal neighbours share one word: bit `s` of `leafvec` starts a new run
//!   (bit 0 is always set).
//!
//! Prefixes are not pushed from one node into the next: a lookup remembers the last
//! non-zero leaf on its way down. So a change of a long prefix touches one node's slots
//! (and the path above it), never a subtree below; a change of a prefix of length
//! `<= dir_bits` rewrites the directory entries it covers that no longer prefix owns.

/// The directory's shape: how many address bits the root and each chunk index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Bits the root block indexes.
    pub(crate) root_bits: u32,
    /// Bits each chunk indexes.
    pub(crate) chunk_bits: u32,
}

impl Geometry {
    /// A directory of `dir_bits` bits, split evenly between root and chunks.
    pub(crate) fn new(dir_bits: u32) -> Self {
        Self {
            root_bits: dir_bits - dir_bits / 2,
            chunk_bits: dir_bits / 2,
        }
    }

    /// Bits the directory resolves.
    #[inline(always)]
    pub(crate) fn dir_bits(self) -> u32 {
        self.root_bits + self.chunk_bits
    }

    /// Words of the root block.
    pub(crate) fn root_words(self) -> usize {
        ROOT_CHUNKS + (1 << self.root_bits)
    }

    /// Words of a chunk block.
    pub(crate) fn chunk_words(self) -> usize {
        (1usize << self.chunk_bits).div_ceil(2)
    }
}

/// Bits each node below the directory resolves.
pub(crate) const STRIDE: u32 = 6;

/// Root word holding the version.
pub(crate) const ROOT_VERSION: usize = 0;
/// Root word holding the number of prefixes.
pub(crate) const ROOT_LEN: usize = 1;
/// Root word of the first chunk index.
pub(crate) const ROOT_CHUNKS: usize = 2;

/// Set in a directory entry that points to a node.
pub(crate) const NODE: u32 = 1 << 31;

/// Words of a node block before its child indices: vector, leafvec, fallback.
pub(crate) const NODE_HEADER: usize = 3;
/// Node word holding the fallback leaf.
pub(crate) const NODE_FALLBACK: usize = 2;

/// Words of a node block with `runs` leaf runs and `children` children.
#[inline]
pub(crate) fn node_words(runs: usize, children: usize) -> usize {
    NODE_HEADER + runs + children.div_ceil(2)
}

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

/// Bits of a leaf directory entry holding `id + 1`; the bits above them (below `NODE`)
/// hold the length of the prefix the entry is for.
pub(crate) const ENTRY_ID: u32 = (1 << ENTRY_LEN_SHIFT) - 1;

/// Where a leaf directory entry's prefix length starts.
pub(crate) const ENTRY_LEN_SHIFT: u32 = 26;

/// The directory entry of a leaf word, if it fits in one (ids below `ENTRY_ID`; a
/// directory of at most 24 bits holds prefixes of at most 24 bits, whose lengths fit the
/// five bits between the id and `NODE`).
#[inline]
pub(crate) fn entry_of_leaf(word: u64) -> Option<u32> {
    match leaf_id(word) {
        None => Some(0),
        Some(id) if id < ENTRY_ID => Some((leaf_len(word) as u32) << ENTRY_LEN_SHIFT | (id + 1)),
        Some(_) => None,
    }
}

/// The leaf word of a directory entry that is not a node, length included.
#[inline(always)]
pub(crate) fn leaf_of_entry(entry: u32) -> u64 {
    if entry == 0 {
        0
    } else {
        leaf((entry >> ENTRY_LEN_SHIFT) as u8, (entry & ENTRY_ID) - 1)
    }
}

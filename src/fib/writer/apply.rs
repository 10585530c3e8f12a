//! The untyped writer: the index of prefixes and the working tree of one Fib; applies one
//! prefix change at a time to the tree (a short prefix to the directory, a long one to the
//! nodes below it) and publishes the tree as one version.

use super::compact::RELAYOUT_BLOCKS;
use super::directory::Directory;
use super::routes::{mask, Routes};
use super::tree::Op;
use crate::fib::alloc::Alloc;
use crate::fib::key::FibKey;
use crate::fib::layout::{leaf, Geometry, NODE};
use crate::fib::reader::Fib;
use crate::prefix::Prefix;
use crate::sync::Arc;

/// The writer of one Fib. Keys are left-aligned in a `u128` for both families.
pub(crate) struct Writer {
    /// The address width in bits (32 or 128).
    width: u32,
    /// Every prefix and its next hop.
    routes: Routes,
    /// The working tree: the directory, and the nodes and the arena below it.
    dir: Directory,
}

impl<P: Prefix> Fib<P> {
    /// A reader handle on the Fib that `writer` writes.
    pub(crate) fn of(writer: &Writer) -> Self {
        Fib::with_shared(Arc::clone(writer.alloc().shared()))
    }
}

impl Writer {
    /// An empty Fib for addresses of `width` bits with a directory of `dir_bits` bits,
    /// published at version 0, in an arena of at least `capacity` words.
    pub(crate) fn new(width: u32, dir_bits: u32, capacity: usize) -> Self {
        let mut w = Self {
            width,
            routes: Routes::new(width),
            dir: Directory::new(Geometry::new(dir_bits), capacity),
        };
        w.publish(0);
        w
    }

    /// The directory's shape.
    pub(crate) fn geometry(&self) -> Geometry {
        self.dir.geometry
    }

    /// The allocator (for the shared state and statistics).
    pub(crate) fn alloc(&self) -> &Alloc {
        &self.dir.nodes.alloc
    }

    /// Mutable access to the allocator.
    pub(crate) fn alloc_mut(&mut self) -> &mut Alloc {
        &mut self.dir.nodes.alloc
    }

    /// Prefixes held.
    pub(crate) fn len(&self) -> usize {
        self.routes.len()
    }

    /// Every prefix held, in no particular order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = (u128, u8)> + '_ {
        self.routes.keys()
    }

    /// The next hop of exactly this prefix.
    pub(crate) fn get(&self, key: u128, len: u8) -> Option<u32> {
        self.routes.get(key, len)
    }

    /// Sets (`Some`) or removes (`None`) the next hop of the prefix `key/len` (`key`
    /// left-aligned, no bits past `len`) in the working tree; returns the old one.
    pub(crate) fn apply(&mut self, key: u128, len: u8, id: Option<u32>) -> Option<u32> {
        debug_assert!(key & !mask(len) == 0 && len as u32 <= self.width);
        let old = match id {
            Some(id) => self.routes.insert(key, len, id),
            None => self.routes.remove(key, len),
        };
        if old == id {
            return old;
        }
        let dir = self.dir.geometry.dir_bits();
        if len as u32 <= dir {
            let word = match id {
                Some(id) => leaf(len, id),
                None => self
                    .routes
                    .cover(key, len, 0)
                    .map_or(0, |(l, id)| leaf(l, id)),
            };
            self.dir.paint(key, len, word);
        } else {
            let routes = &self.routes;
            let op = |min: u8| match id {
                Some(id) => Op::Set(leaf(len, id)),
                None => Op::Remove(routes.cover(key, len, min).map_or(0, |(l, id)| leaf(l, id))),
            };
            let tree = &mut self.dir;
            let t = key.slot(0, dir);
            let (chunk, i) = tree.entry_for_write(t);
            let entry = tree.entry(chunk, i);
            let node = if entry & NODE != 0 {
                (entry & !NODE) as usize
            } else {
                0
            };
            let fallback = tree.entry_leaf(entry);
            let new = tree.nodes.update(node, dir, key, len, &op, fallback);
            let entry = tree.entry_of(new, fallback);
            tree.set_entry(chunk, i, entry);
        }
        old
    }

    /// Publishes the working tree as `version`: readers that load the root from now on
    /// see every change applied so far.
    pub(crate) fn publish(&mut self, version: u64) {
        self.dir.root_for_write();
        if self.dir.nodes.alloc.fresh_blocks() >= RELAYOUT_BLOCKS {
            if self.dir.nodes.alloc.alone() {
                self.dir.compact();
            } else {
                self.dir.relayout();
            }
        }
        self.dir.publish(version, self.routes.len() as u64);
    }

    /// Publishes the working tree as `version` (as [`Writer::publish`]) in a directory of
    /// `dir_bits` bits, more than it has: the tree is built again apart, in a new arena of
    /// just its size (one insert per prefix, the bulk load's compaction, a trim), and
    /// readers move to that arena with one pointer store, as when an arena grows. The old
    /// arena is retired (freed at once if no reader handle exists). Costs one build of the
    /// whole tree.
    pub(crate) fn publish_relaid(&mut self, version: u64, dir_bits: u32) {
        // Reader handles count on a directory that only grows (`Fib::geometry`).
        assert!(
            dir_bits > self.geometry().dir_bits(),
            "a directory only grows"
        );
        // Room for the whole tree, so that the build never grows its arena (a growth
        // would copy it): the nodes take no more than they do now (a wider directory
        // holds more of the prefixes itself), and each chunk some prefix covers one
        // block (counted in one pass over the prefixes). The trim below gives back what
        // is left.
        let g = Geometry::new(dir_bits);
        let mut touched = vec![false; 1 << g.root_bits];
        for (key, len) in self.routes.keys() {
            let first = key.slot(0, g.root_bits);
            let n = 1usize << g.root_bits.saturating_sub(u32::from(len));
            touched[first..first + n].fill(true);
        }
        let chunks = touched.iter().filter(|&&t| t).count();
        let used = self.alloc().used_words();
        let capacity = used + used / 2 + g.root_words() + (chunks + 1) * g.chunk_words();
        let mut fresh = Writer::new(self.width, dir_bits, capacity);
        for (key, len) in self.routes.keys() {
            if let Some(id) = self.routes.get(key, len) {
                fresh.apply(key, len, Some(id));
            }
        }
        fresh.publish(version);
        // Alone (no handle was ever made of `fresh`): the trim frees at once.
        let used = fresh.alloc().used_words();
        fresh.alloc_mut().shrink_to_fit(used / 8 + (1 << 10));
        let old = std::mem::replace(&mut self.dir, fresh.dir);
        let built = std::mem::replace(&mut self.dir.nodes.alloc, old.nodes.alloc);
        self.dir.nodes.alloc.adopt(built);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fib::arena::Arena;
    use crate::fib::layout::{node_words, ENTRY_ID, NODE_FALLBACK, NODE_HEADER, ROOT_CHUNKS};
    use crate::fib::writer::tree::is_hop;
    use crate::hash::FastMap;

    /// The words of the node at `node` and its child indices.
    fn node_at(arena: &Arena, node: usize) -> (usize, Vec<usize>) {
        let (vector, leafvec) = (arena.get(node), arena.get(node + 1));
        let children = vector.count_ones() as usize;
        let kids = (0..children)
            .map(|j| arena.get_u32(node + NODE_HEADER, j) as usize)
            .collect();
        (node_words(leafvec.count_ones() as usize, children), kids)
    }

    /// Checks every node below `node`: each one's first child follows it directly (the
    /// depth-first order of a relayout); returns how many nodes it saw.
    fn check_depth_first(arena: &Arena, node: usize) -> usize {
        let (words, kids) = node_at(arena, node);
        if let Some(&first) = kids.first() {
            assert_eq!(
                first,
                node + words,
                "node {node}'s first child is not next to it"
            );
        }
        1 + kids
            .iter()
            .map(|&k| check_depth_first(arena, k))
            .sum::<usize>()
    }

    /// Loads 12,000 /40s and /48s under a few thousand /28s into a 16-bit directory,
    /// publishes, and checks that every node's first child follows it and that lookups
    /// give the longest match. With `reader`, a reader handle exists during the load, so
    /// the publish moves the nodes within the arena ([`Directory::relayout`]) instead of
    /// copying the tree into a new one ([`Directory::compact`]).
    fn bulk_load(reader: bool) {
        let mut w = Writer::new(128, 16, 0);
        let g = w.geometry();
        let early = reader.then(|| crate::Fib::<crate::Ipv6Net>::of(&w));
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut prefixes = Vec::new();
        for i in 0..12_000u32 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let len = if i % 3 == 0 { 40 } else { 48 };
            let key =
                (0x2001u128 << 112 | (rng as u128 % 3_000) << 100 | (rng as u128 >> 20) << 64)
                    & mask(len);
            w.apply(key, len, Some(i));
            prefixes.push((key, len));
        }
        assert!(
            w.alloc().fresh_blocks() >= RELAYOUT_BLOCKS,
            "the load must be a bulk one"
        );
        w.publish(1);
        let arena = w.alloc().arena();
        let mut nodes = 0;
        for t in 0..1usize << g.dir_bits() {
            let chunk = arena.get(w.dir.root + ROOT_CHUNKS + (t >> g.chunk_bits)) as usize;
            let i = t & ((1 << g.chunk_bits) - 1);
            let e = arena.get_u32(chunk, i);
            if e & NODE != 0 {
                nodes += check_depth_first(arena, (e & !NODE) as usize);
            }
        }
        assert!(nodes > 1_000, "only {nodes} nodes");
        let fib = early.unwrap_or_else(|| crate::Fib::of(&w));
        for &(key, _) in &prefixes {
            let addr = key | 1;
            let want = (0..=128u8).rev().find_map(|l| w.get(addr & mask(l), l));
            assert_eq!(fib.lookup(std::net::Ipv6Addr::from(addr)), want);
        }
        // The compacted arena holds the tree and some room, not the load's leftovers.
        if !reader {
            assert!(arena.capacity() < w.alloc().used_words() * 5 / 4 + (1 << 13));
        }
    }

    /// Checks that every directory entry pointing to a shared leaf-only node points to
    /// the one [`Nodes::hops`](crate::fib::writer::tree::Nodes::hops) maps its leaf to, and that each is counted once per entry.
    fn check_hops(w: &Writer) {
        let (g, arena) = (w.geometry(), w.alloc().arena());
        let mut seen = FastMap::<u64, u32>::default();
        for t in 0..1usize << g.dir_bits() {
            let chunk = arena.get(w.dir.root + ROOT_CHUNKS + (t >> g.chunk_bits)) as usize;
            let e = arena.get_u32(chunk, t & ((1 << g.chunk_bits) - 1));
            let node = (e & !NODE) as usize;
            if e & NODE != 0 && is_hop(arena, node) {
                let word = arena.get(node + NODE_FALLBACK);
                assert_eq!(
                    w.dir.nodes.hops.get(&word).map(|h| h.0 as usize),
                    Some(node)
                );
                *seen.entry(word).or_default() += 1;
            }
        }
        let refs: FastMap<u64, u32> = w
            .dir
            .nodes
            .hops
            .iter()
            .map(|(&k, &(_, r))| (k, r))
            .collect();
        assert_eq!(seen, refs);
    }

    /// The longest match for `addr` among the writer's prefixes (IPv4, left-aligned).
    fn brute_v4(w: &Writer, addr: u32) -> Option<u32> {
        let key = (addr as u128) << 96;
        (0..=32u8).rev().find_map(|l| w.get(key & mask(l), l))
    }

    fn v4(s: &str) -> (u128, u8) {
        let net: ipnet::Ipv4Net = s.parse().unwrap();
        ((u32::from(net.network()) as u128) << 96, net.prefix_len())
    }

    #[test]
    fn ids_too_large_for_an_entry_share_one_node_per_leaf() {
        let mut w = Writer::new(32, 16, 0);
        let fib = crate::Fib::<crate::Ipv4Net>::of(&w);
        let big = u32::MAX - 5;
        let (wide, _) = v4("10.0.0.0/8");
        w.apply(wide, 8, Some(big));
        w.publish(1);
        check_hops(&w);
        assert_eq!(w.dir.nodes.hops.len(), 1);
        assert_eq!(w.dir.nodes.hops.values().next().unwrap().1, 256);
        let (mid, _) = v4("10.1.0.0/16");
        w.apply(mid, 16, Some(3));
        let (long, _) = v4("10.2.3.0/24");
        w.apply(long, 24, Some(9));
        // One more big id, on a /12 inside the /8: its own node for its 16 entries.
        let (twelve, _) = v4("10.16.0.0/12");
        w.apply(twelve, 12, Some(ENTRY_ID));
        w.publish(2);
        check_hops(&w);
        assert_eq!(w.dir.nodes.hops[&leaf(8, big)].1, 256 - 1 - 1 - 16);
        assert_eq!(w.dir.nodes.hops[&leaf(12, ENTRY_ID)].1, 16);
        for (addr, want) in [
            ("10.0.0.1", Some(big)),
            ("10.1.2.3", Some(3)),
            ("10.2.3.4", Some(9)),
            ("10.2.4.4", Some(big)),
            ("10.17.0.1", Some(ENTRY_ID)),
            ("10.255.0.1", Some(big)),
            ("11.0.0.1", None),
        ] {
            let a: std::net::Ipv4Addr = addr.parse().unwrap();
            assert_eq!(fib.lookup(a), want, "{addr}");
            assert_eq!(brute_v4(&w, a.into()), want, "{addr}");
        }
        // Once no entry holds them, the shared nodes go.
        w.apply(wide, 8, None);
        w.apply(twelve, 12, None);
        w.publish(3);
        check_hops(&w);
        assert!(w.dir.nodes.hops.is_empty());
        assert_eq!(fib.lookup("10.2.4.4".parse().unwrap()), None);
        assert_eq!(fib.lookup("10.2.3.4".parse().unwrap()), Some(9));
    }

    #[test]
    fn a_compaction_moves_each_shared_node_once() {
        let mut w = Writer::new(32, 16, 0);
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        // Long prefixes (nodes below the directory), and short ones with large ids over
        // them.
        for i in 0..40_000u32 {
            let r = next();
            let len = 17 + (r % 16) as u8;
            w.apply((r as u32 as u128) << 96 & mask(len), len, Some(i));
        }
        for i in 0..64u32 {
            let r = next();
            let len = 6 + (r % 10) as u8;
            w.apply(
                (r as u32 as u128) << 96 & mask(len),
                len,
                Some(u32::MAX - i % 8),
            );
        }
        assert!(w.alloc().fresh_blocks() >= RELAYOUT_BLOCKS);
        assert!(w.alloc_mut().alone());
        w.publish(1);
        check_hops(&w);
        assert!(!w.dir.nodes.hops.is_empty());
        let fib = crate::Fib::<crate::Ipv4Net>::of(&w);
        for _ in 0..20_000 {
            let a = next() as u32;
            assert_eq!(fib.lookup(a.into()), brute_v4(&w, a), "{a:#x}");
        }
    }

    #[test]
    fn a_bulk_load_is_compacted_depth_first() {
        bulk_load(false);
    }

    #[test]
    fn a_bulk_load_under_a_reader_is_laid_out_depth_first_in_place() {
        bulk_load(true);
    }
}

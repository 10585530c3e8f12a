//! A fast hasher for the crate's private maps, keyed by prefixes and arena indices.
//!
//! std's default SipHash costs more than the probe it feeds when the key is a prefix (five
//! bytes of IPv4) and the map is read once per committed change. This one mixes each word
//! written with one 64x64->128-bit multiply folded to 64 bits. Each map draws its seed from
//! std's `RandomState`, so which prefixes collide is not known in advance to whoever
//! announces them.

use std::hash::{BuildHasher, Hasher};

/// An odd constant with well-spread bits (the fractional part of the golden ratio).
const MUL: u64 = 0x9e37_79b9_7f4a_7c15;

/// The high and low halves of `a * b`, xored: every input bit reaches most output bits.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = a as u128 * b as u128;
    (p as u64) ^ (p >> 64) as u64
}

/// Builds [`FastHasher`]s, all with this map's random seed.
#[derive(Clone, Debug)]
pub(crate) struct FastState {
    seed: u64,
}

impl Default for FastState {
    fn default() -> Self {
        // A fresh `RandomState` has fresh keys (per thread, then incremented per call).
        let seed = std::collections::hash_map::RandomState::new().hash_one(MUL);
        Self { seed }
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;

    #[inline]
    fn build_hasher(&self) -> FastHasher {
        FastHasher { h: self.seed }
    }
}

/// The hasher [`FastState`] builds.
#[derive(Clone, Debug)]
pub(crate) struct FastHasher {
    h: u64,
}

impl FastHasher {
    #[inline(always)]
    fn mix(&mut self, word: u64) {
        self.h = fold(self.h ^ word, MUL);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        // The length, so that inputs that differ only in trailing zeros differ.
        self.mix(bytes.len() as u64);
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(i as u64);
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.mix(i as u64);
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(i as u64);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }

    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.mix(i as u64);
        self.mix((i >> 64) as u64);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.h
    }
}

/// A `HashMap` with the fast hasher.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, FastState>;

/// A `HashSet` with the fast hasher.
pub(crate) type FastSet<K> = std::collections::HashSet<K, FastState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_hash_equal_and_neighbours_spread() {
        let s = FastState::default();
        let p: ipnet::Ipv4Net = "10.0.0.0/8".parse().unwrap();
        assert_eq!(s.hash_one(p), s.hash_one(p));
        // Consecutive /24s land in many different buckets of a 2^16-bucket table, by
        // both the low bits (the index) and the top 7 (hashbrown's tag).
        let mut low = std::collections::HashSet::new();
        let mut top = std::collections::HashSet::new();
        for i in 0..4096u32 {
            let p = ipnet::Ipv4Net::new((0x0a00_0000 | i << 8).into(), 24).unwrap();
            let h = s.hash_one(p);
            low.insert(h & 0xffff);
            top.insert(h >> 57);
        }
        assert!(low.len() > 3500, "{}", low.len());
        assert_eq!(top.len(), 128);
        // A prefix and its length are both hashed.
        let a: ipnet::Ipv4Net = "10.0.0.0/8".parse().unwrap();
        let b: ipnet::Ipv4Net = "10.0.0.0/9".parse().unwrap();
        assert_ne!(s.hash_one(a), s.hash_one(b));
    }

    #[test]
    fn seeds_differ_between_maps() {
        let (a, b) = (FastState::default(), FastState::default());
        assert_ne!(a.hash_one(1u64), b.hash_one(1u64));
    }
}

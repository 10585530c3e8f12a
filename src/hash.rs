//! The hash maps of the crate's private indexes, keyed by prefixes and arena indices.
//!
//! std's default SipHash costs more than the probe it feeds when the key is a prefix (five
//! bytes of IPv4) and the map is read once per committed change. `foldhash` mixes each
//! word with one folded 64x64->128-bit multiply, and its `RandomState` seeds every map
//! afresh, so which prefixes collide is not known in advance to whoever announces them.

/// A `HashMap` with foldhash's seeded fast hasher.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A `HashSet` with foldhash's seeded fast hasher.
pub(crate) type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    #[test]
    fn every_map_has_its_own_seed() {
        let (a, b) = (
            foldhash::fast::RandomState::default(),
            foldhash::fast::RandomState::default(),
        );
        let p: ipnet::Ipv4Net = "10.0.0.0/8".parse().unwrap();
        assert_ne!(a.hash_one(p), b.hash_one(p));
    }
}

//! The writer's index of every prefix and its next hop, by length: what a change looks up
//! to find the longest prefix that covers another.

use crate::hash::FastMap;

/// The mask of the first `len` bits of a left-aligned 128-bit key.
#[inline]
pub(super) fn mask(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - len as u32).unwrap_or(0)
}

/// Every prefix and its next hop, one map per length from the left-aligned network to the
/// id. A network of up to 32 bits keys on its top 32 bits (an IPv4 entry is 8 bytes, so
/// a full table's maps stay small enough to be mostly cached), up to 64 on its top 64.
pub(super) struct Routes {
    short: Vec<FastMap<u32, u32>>,
    medium: Vec<FastMap<u64, u32>>,
    long: Vec<FastMap<u128, u32>>,
    len: usize,
}

/// Applies `$f` to the map for `$len` and the key `$key` (a left-aligned `u128`) as that
/// map keys it.
macro_rules! with_map {
    ($routes:expr, $key:expr, $len:expr, |$m:ident, $k:ident| $f:expr) => {{
        let (key, len) = ($key, $len as usize);
        if len <= 32 {
            let ($m, $k) = (&mut $routes.short[len], (key >> 96) as u32);
            $f
        } else if len <= 64 {
            let ($m, $k) = (&mut $routes.medium[len - 33], (key >> 64) as u64);
            $f
        } else {
            let ($m, $k) = (&mut $routes.long[len - 65], key);
            $f
        }
    }};
}

impl Routes {
    pub(super) fn new(width: u32) -> Self {
        let lengths = width as usize + 1;
        Self {
            short: (0..lengths.min(33)).map(|_| FastMap::default()).collect(),
            medium: (33..lengths.min(65)).map(|_| FastMap::default()).collect(),
            long: (65..lengths).map(|_| FastMap::default()).collect(),
            len: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The id of `key/len`. (Most lengths hold nothing: those cost no hashing.)
    #[inline]
    pub(super) fn get(&self, key: u128, len: u8) -> Option<u32> {
        let len = len as usize;
        if len <= 32 {
            let m = &self.short[len];
            (!m.is_empty()).then(|| m.get(&((key >> 96) as u32)).copied())?
        } else if len <= 64 {
            let m = &self.medium[len - 33];
            (!m.is_empty()).then(|| m.get(&((key >> 64) as u64)).copied())?
        } else {
            let m = &self.long[len - 65];
            (!m.is_empty()).then(|| m.get(&key).copied())?
        }
    }

    #[inline]
    pub(super) fn insert(&mut self, key: u128, len: u8, id: u32) -> Option<u32> {
        let old = with_map!(self, key, len, |m, k| m.insert(k, id));
        self.len += old.is_none() as usize;
        old
    }

    #[inline]
    pub(super) fn remove(&mut self, key: u128, len: u8) -> Option<u32> {
        let old = with_map!(self, key, len, |m, k| m.remove(&k));
        self.len -= old.is_some() as usize;
        old
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = (u128, u8)> + '_ {
        let short = self
            .short
            .iter()
            .enumerate()
            .flat_map(|(l, m)| m.keys().map(move |&k| ((k as u128) << 96, l as u8)));
        let medium = self
            .medium
            .iter()
            .enumerate()
            .flat_map(|(l, m)| m.keys().map(move |&k| ((k as u128) << 64, (l + 33) as u8)));
        let long = self
            .long
            .iter()
            .enumerate()
            .flat_map(|(l, m)| m.keys().map(move |&k| (k, (l + 65) as u8)));
        short.chain(medium).chain(long)
    }

    /// The longest prefix of `key` with a length in `min..len`: its length and next hop.
    pub(super) fn cover(&self, key: u128, len: u8, min: u8) -> Option<(u8, u32)> {
        (min..len)
            .rev()
            .find_map(|l| self.get(key & mask(l), l).map(|id| (l, id)))
    }
}

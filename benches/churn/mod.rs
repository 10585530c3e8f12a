//! The writer workload the benchmarks share: insert one key, delete the oldest, keeping a
//! fixed window of extra keys in the map. `benches/compare.rs` and `benches/journal.rs`
//! include it with `#[path = "churn/mod.rs"] mod churn;` next to `mod data;`.
#![allow(dead_code)]

use crossbeam_skiplist::SkipMap;
use rtm::{Ipv4Net, Route, RouteKey, RouteTable};

use crate::data::Attrs;

/// The key every benchmark map holds.
pub type Key = RouteKey<Ipv4Net>;
/// A route as rtm stores it; the other maps store its [`Attrs`].
pub type R = Route<Ipv4Net, u64>;
/// The table under test.
pub type Rtm = RouteTable<Ipv4Net, u64>;

/// A writer's two operations.
pub trait Churn: Sync {
    fn insert(&self, r: &R);
    fn remove(&self, k: &Key);
}

impl Churn for Rtm {
    #[inline]
    fn insert(&self, r: &R) {
        self.add_route(r.clone()).unwrap();
    }
    #[inline]
    fn remove(&self, k: &Key) {
        self.delete_route(k).unwrap();
    }
}

impl Churn for SkipMap<Key, Attrs> {
    #[inline]
    fn insert(&self, r: &R) {
        SkipMap::insert(self, r.key, Attrs::of(r));
    }
    #[inline]
    fn remove(&self, k: &Key) {
        assert!(SkipMap::remove(self, k).is_some());
    }
}

/// Insert-one, delete-the-oldest churn over `keys`, keeping `window` of them present.
pub struct Churner<'a, M: ?Sized> {
    map: &'a M,
    keys: &'a [R],
    window: usize,
    next: usize,
}

impl<'a, M: Churn + ?Sized> Churner<'a, M> {
    /// Inserts the first `window` keys.
    pub fn fill(map: &'a M, keys: &'a [R], window: usize) -> Self {
        assert!(window < keys.len());
        for r in &keys[..window] {
            map.insert(r);
        }
        Self {
            map,
            keys,
            window,
            next: window,
        }
    }

    /// One insert and one delete.
    #[inline]
    pub fn step(&mut self) {
        let n = self.keys.len();
        self.map.insert(&self.keys[self.next % n]);
        self.map
            .remove(&self.keys[(self.next + n - self.window) % n].key);
        self.next += 1;
    }

    /// Deletes what is still in the window, leaving the map as before `fill`.
    pub fn drain(self) {
        let n = self.keys.len();
        for i in self.next - self.window..self.next {
            self.map.remove(&self.keys[i % n].key);
        }
    }
}

/// Routes for `prefixes` (`key_v4`, values from `base` on).
pub fn routes_of(prefixes: &[Ipv4Net], base: u64) -> Vec<R> {
    prefixes
        .iter()
        .enumerate()
        .map(|(i, p)| crate::data::route(crate::data::key_v4(*p), base + i as u64))
        .collect()
}

/// This thread's CPU time in ns, from `/proc/thread-self/schedstat` (Linux); `None`
/// elsewhere.
pub fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

//! Fibs for C: a read-optimized longest-prefix-match table of next-hop ids kept in step
//! with a table by its follower ([`rtm::Fib`]).
//!
//! The follower is an [`OwnedFibFollower`], which holds a share of its table, and lives
//! in the table's registry entry (`Entry::fibs`), as feeds do. A Fib value (`rtm_fib`) is the table's token
//! in the high 32 bits and a serial (shared with feeds) in the low 32. Lookups take no
//! lock; one sync at a time drives the follower (a concurrent one gets `Busy`).

use std::collections::HashMap;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex, TryLockError};

use arc_swap::ArcSwap;
use rtm::{Error, Fib, Ipv4Net, Ipv6Net, OwnedFibFollower, RouteTable};

use crate::convert::Family;
use crate::feeds::next_serial;

/// A Fib and its follower, of either family.
pub(crate) enum FibState {
    V4(Fib<Ipv4Net>, Mutex<OwnedFibFollower<Ipv4Net, u64>>),
    V6(Fib<Ipv6Net>, Mutex<OwnedFibFollower<Ipv6Net, u64>>),
}

/// A family whose Fibs fit in [`FibState`].
pub(crate) trait FibFamily: Family {
    fn wrap(fib: Fib<Self>, follower: OwnedFibFollower<Self, u64>) -> FibState;
}

impl FibFamily for Ipv4Net {
    fn wrap(fib: Fib<Self>, follower: OwnedFibFollower<Self, u64>) -> FibState {
        FibState::V4(fib, Mutex::new(follower))
    }
}

impl FibFamily for Ipv6Net {
    fn wrap(fib: Fib<Self>, follower: OwnedFibFollower<Self, u64>) -> FibState {
        FibState::V6(fib, Mutex::new(follower))
    }
}

/// The Fibs of one table.
#[derive(Default)]
pub(crate) struct Fibs {
    map: ArcSwap<HashMap<u32, Arc<FibState>>>,
    /// Serializes the replacements of `map`.
    writer: Mutex<()>,
}

/// Builds a Fib of `table`'s best routes (next-hop id: the low 32 bits of the route's
/// value) and registers it.
pub(crate) fn create<P: FibFamily>(
    fibs: &Fibs,
    serials: &AtomicU32,
    table: &Arc<RouteTable<P, u64>>,
) -> Result<u32, Error> {
    let serial = next_serial(serials)?;
    let (fib, follower) = Fib::follow_owned(Arc::clone(table), |r| r.value as u32)?;
    let state = Arc::new(P::wrap(fib, follower));
    let _w = fibs.writer.lock().unwrap_or_else(|e| e.into_inner());
    let mut map = HashMap::clone(&fibs.map.load());
    map.insert(serial, state);
    fibs.map.store(Arc::new(map));
    Ok(serial)
}

/// Runs `f` on Fib `serial`; `InvalidHandle` if there is none.
pub(crate) fn with_fib<R>(
    fibs: &Fibs,
    serial: u32,
    f: impl FnOnce(&FibState) -> Result<R, Error>,
) -> Result<R, Error> {
    let map = fibs.map.load();
    f(map.get(&serial).ok_or(Error::InvalidHandle)?)
}

/// Applies the table's changes to the Fib; `Busy` if another sync is running.
pub(crate) fn sync(state: &FibState) -> Result<usize, Error> {
    fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>, Error> {
        match m.try_lock() {
            Ok(g) => Ok(g),
            Err(TryLockError::WouldBlock) => Err(Error::Busy),
            // A panic inside a sync left it poisoned; the follower rebuilds on its own
            // when it finds itself behind, so go on with it.
            Err(TryLockError::Poisoned(p)) => Ok(p.into_inner()),
        }
    }
    match state {
        FibState::V4(_, f) => lock(f)?.sync(),
        FibState::V6(_, f) => lock(f)?.sync(),
    }
}

/// Removes Fib `serial`; `InvalidHandle` if there is none. A call in flight on it finishes
/// first.
pub(crate) fn destroy(fibs: &Fibs, serial: u32) -> Result<(), Error> {
    let removed = {
        let _w = fibs.writer.lock().unwrap_or_else(|e| e.into_inner());
        let old = fibs.map.load_full();
        let mut map = HashMap::clone(&old);
        let removed = map.remove(&serial).ok_or(Error::InvalidHandle)?;
        fibs.map.store(Arc::new(map));
        (old, removed)
    };
    drop(removed);
    Ok(())
}

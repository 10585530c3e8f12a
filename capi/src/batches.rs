//! The process-wide registry of the batches created through the C ABI.
//!
//! C names a batch by an opaque token (the `rtm_batch *` value, never a Rust pointer), as it
//! names a table, so a destroyed, committed or forged batch pointer is looked up, found
//! missing and reported as `InvalidHandle`: it is never dereferenced. Tokens are a counter,
//! never reused; on 64-bit targets they have bit 63 set, so no batch token is ever a table
//! token (table tokens count up from 1) and a batch passed as a table is `InvalidHandle` too.
//!
//! Batches are created and consumed often (one per BGP UPDATE, say), so the registry is
//! not a copied snapshot as the table registry is: it is [`SHARDS`] maps, each behind a
//! mutex held only to insert, find (an `Arc` clone) or remove one entry, never while a
//! route is converted, queued or committed. A batch's contents sit behind their own mutex,
//! which calls only `try_lock`: a call that finds another thread's call using the batch
//! gets `Busy` at once.
//!
//! Committing or destroying a batch removes it from the registry first, so exactly one
//! call takes it and every later call is `InvalidHandle`. A call that found the batch just
//! before finishes on it, and the batch is freed when the last such call returns.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use rtm::{Batch, Error, Ipv4Net, Ipv6Net};

/// A batch of either family.
pub(crate) enum AnyBatch {
    V4(Batch<Ipv4Net, u64>),
    V6(Batch<Ipv6Net, u64>),
}

/// Runs a generic body on a batch, whichever its family.
macro_rules! on_batch {
    ($batch:expr, $b:ident => $body:expr) => {
        match $batch {
            $crate::batches::AnyBatch::V4($b) => $body,
            $crate::batches::AnyBatch::V6($b) => $body,
        }
    };
}
pub(crate) use on_batch;

/// A registered batch: `None` once a commit or a destroy took it.
type Cell = Mutex<Option<AnyBatch>>;

/// How many maps the registry is split into (a power of two).
const SHARDS: usize = 64;

/// One part of the registry: `None` until its first batch (a `HashMap` cannot be built in a
/// `static`).
type Shard = Option<HashMap<u64, Arc<Cell>>>;

static REGISTRY: [Mutex<Shard>; SHARDS] = [const { Mutex::new(None) }; SHARDS];

/// Set in every batch token where pointers have 64 bits: table tokens never reach it.
const TAG: u64 = if usize::BITS == 64 { 1 << 63 } else { 0 };

/// The next batch serial (the token without its tag). 0 is never one (it is NULL).
static NEXT: AtomicU64 = AtomicU64::new(1);

fn shard(token: u64) -> MutexGuard<'static, Shard> {
    // A panic never happens while a shard is locked (a map operation), but if one did,
    // the map is still whole.
    REGISTRY[token as usize % SHARDS]
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Registers `batch`, returning its token.
pub(crate) fn register(batch: AnyBatch) -> u64 {
    // Relaxed: the counter only has to give each caller a distinct value.
    let token = NEXT.fetch_add(1, Ordering::Relaxed) | TAG;
    let cell = Arc::new(Mutex::new(Some(batch)));
    shard(token)
        .get_or_insert_with(HashMap::new)
        .insert(token, cell);
    token
}

/// Runs `f` on the batch of `token`: `InvalidHandle` if there is none (or it was taken
/// meanwhile), `Busy` if another call is using it.
pub(crate) fn with_batch<R>(
    token: u64,
    f: impl FnOnce(&mut AnyBatch) -> Result<R, Error>,
) -> Result<R, Error> {
    let cell = shard(token)
        .as_ref()
        .and_then(|m| m.get(&token).cloned())
        .ok_or(Error::InvalidHandle)?;
    let mut guard = match cell.try_lock() {
        Ok(g) => g,
        Err(TryLockError::WouldBlock) => return Err(Error::Busy),
        // A panic in `f` left the batch as it was or with one more change: still a batch.
        Err(TryLockError::Poisoned(e)) => e.into_inner(),
    };
    let batch = guard.as_mut().ok_or(Error::InvalidHandle)?;
    f(batch)
}

/// Removes the batch of `token` from the registry and returns it: `InvalidHandle` if
/// there is none, `Busy` if another call is using it at this moment (the batch is gone
/// from the registry all the same, and freed when that call returns).
pub(crate) fn take(token: u64) -> Result<AnyBatch, Error> {
    let cell = shard(token)
        .as_mut()
        .and_then(|m| m.remove(&token))
        .ok_or(Error::InvalidHandle)?;
    let mut guard = match cell.try_lock() {
        Ok(g) => g,
        Err(TryLockError::WouldBlock) => return Err(Error::Busy),
        Err(TryLockError::Poisoned(e)) => e.into_inner(),
    };
    guard.take().ok_or(Error::InvalidHandle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_resolve_until_taken() {
        let t = register(AnyBatch::V4(Batch::new()));
        assert_ne!(t & TAG, 0);
        assert_eq!(with_batch(t, |b| Ok(on_batch!(b, b => b.len()))), Ok(0));
        assert!(take(t).is_ok());
        assert_eq!(with_batch(t, |_| Ok(())).err(), Some(Error::InvalidHandle));
        assert_eq!(take(t).err(), Some(Error::InvalidHandle));
        assert_eq!(take(t ^ 1).err(), Some(Error::InvalidHandle));
    }

    #[test]
    fn a_batch_in_use_is_busy_and_taking_it_still_removes_it() {
        let t = register(AnyBatch::V6(Batch::new()));
        with_batch(t, |_| {
            assert_eq!(with_batch(t, |_| Ok(())).err(), Some(Error::Busy));
            assert_eq!(take(t).err(), Some(Error::Busy));
            Ok(())
        })
        .unwrap();
        assert_eq!(with_batch(t, |_| Ok(())).err(), Some(Error::InvalidHandle));
    }
}

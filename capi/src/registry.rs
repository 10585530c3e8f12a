//! The process-wide registry of the tables created through the C ABI.
//!
//! C names a table by an opaque token (the `rtm_table *` value, never a Rust pointer) and an
//! enumeration only by its handle, so every call starts here: a token or a handle's table
//! identity ([`EnumHandle::table_id`]) is looked up in an immutable snapshot of the
//! registry. Readers load the snapshot without a lock ([`ArcSwap`]); create and destroy
//! replace it under a writers' mutex. A destroyed table leaves the snapshot at once, so
//! every later call with its token, its handles or its feeds is `InvalidHandle`, while
//! calls already in flight finish on the snapshot they loaded, which keeps the table alive
//! until they return.
//!
//! Handle values stay unique in the process by the crate's own guarantee: at most one live
//! table holds an identity, and a handle of a dropped table is invalid on every later table
//! with its identity. Tokens are a counter, never reused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use arc_swap::ArcSwap;
use rtm::{EnumHandle, Error, Ipv4Net, Ipv6Net, NexthopGroups, RouteTable};

use crate::feeds::Feeds;
use crate::fib::Fibs;

/// A table of either family. Shared: the table's feeds and Fibs hold a clone of the
/// `Arc` ([`rtm::OwnedFeed`], [`rtm::OwnedFibFollower`]), so the table lives as long as
/// the last of them, whatever order the entry's fields are dropped in.
pub(crate) enum AnyTable {
    V4(Arc<RouteTable<Ipv4Net, u64>>),
    V6(Arc<RouteTable<Ipv6Net, u64>>),
}

impl AnyTable {
    fn id(&self) -> u64 {
        match self {
            AnyTable::V4(t) => t.table_id(),
            AnyTable::V6(t) => t.table_id(),
        }
    }
}

/// Runs a generic body on the entry's table, whichever its family.
macro_rules! on_table {
    ($entry:expr, $t:ident => $body:expr) => {
        match &$entry.table {
            $crate::registry::AnyTable::V4($t) => $body,
            $crate::registry::AnyTable::V6($t) => $body,
        }
    };
}
pub(crate) use on_table;

/// A registered table.
pub(crate) struct Entry {
    /// The table's open feeds.
    pub(crate) feeds: Feeds,
    /// The table's Fibs.
    pub(crate) fibs: Fibs,
    /// The serials of feeds and Fibs.
    pub(crate) serials: AtomicU32,
    pub(crate) table: AnyTable,
    /// The table's identity (its handles carry it; 0: it cannot open handles).
    id: u64,
    /// The table's token (its feeds carry it).
    pub(crate) token: u64,
}

/// One immutable state of the registry.
#[derive(Clone, Default)]
struct Snapshot {
    by_token: HashMap<u64, Arc<Entry>>,
    by_id: HashMap<u64, Arc<Entry>>,
}

static REGISTRY: LazyLock<ArcSwap<Snapshot>> = LazyLock::new(ArcSwap::default);

/// Serializes the replacements of the snapshot (create and destroy).
static WRITER: Mutex<()> = Mutex::new(());

/// The next table token. Tokens are never reused; 0 is never one (it is NULL).
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// Registers `table`, returning its token.
pub(crate) fn register(table: AnyTable) -> u64 {
    // Relaxed: the counter only has to give each caller a distinct value.
    let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    let entry = Arc::new(Entry {
        feeds: Feeds::default(),
        fibs: Fibs::default(),
        serials: AtomicU32::new(0),
        id: table.id(),
        table,
        token,
    });
    let old = {
        let _w = WRITER.lock().unwrap_or_else(|e| e.into_inner());
        let old = REGISTRY.load_full();
        let mut new = Snapshot::clone(&old);
        new.by_token.insert(token, entry.clone());
        // The crate leases an identity to one live table at a time; identity 0 (every
        // identity leased) names no table and opens no handles.
        if entry.id != 0 {
            new.by_id.insert(entry.id, entry);
        }
        REGISTRY.store(Arc::new(new));
        old
    };
    drop(old);
    token
}

/// Removes the table of `token` from the registry. Calls in flight on it finish; the table
/// is dropped when the last of them returns. `InvalidHandle` for an unknown token.
pub(crate) fn unregister(token: u64) -> Result<(), Error> {
    let (old, entry) = {
        let _w = WRITER.lock().unwrap_or_else(|e| e.into_inner());
        let old = REGISTRY.load_full();
        let Some(entry) = old.by_token.get(&token).cloned() else {
            return Err(Error::InvalidHandle);
        };
        let mut new = Snapshot::clone(&old);
        new.by_token.remove(&token);
        if new.by_id.get(&entry.id).is_some_and(|e| e.token == token) {
            new.by_id.remove(&entry.id);
        }
        REGISTRY.store(Arc::new(new));
        (old, entry)
    };
    // Dropped outside the writers' lock: this may drop the whole table.
    drop(old);
    drop(entry);
    Ok(())
}

/// The registered next-hop groups objects, by token (from `NEXT_TOKEN`, as tables', so
/// no token names both). Read and replaced as `REGISTRY` is.
static GROUPS: LazyLock<ArcSwap<HashMap<u64, Arc<NexthopGroups<u32>>>>> =
    LazyLock::new(ArcSwap::default);

/// Registers a new, empty next-hop groups object, returning its token.
pub(crate) fn register_groups() -> u64 {
    // Relaxed: as in `register`.
    let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    let groups = Arc::new(NexthopGroups::new());
    let _w = WRITER.lock().unwrap_or_else(|e| e.into_inner());
    let mut map = HashMap::clone(&GROUPS.load());
    map.insert(token, groups);
    GROUPS.store(Arc::new(map));
    token
}

/// Removes the groups object of `token`; calls in flight on it finish first (their load
/// keeps it alive). `InvalidHandle` for an unknown token.
pub(crate) fn unregister_groups(token: u64) -> Result<(), Error> {
    let (old, removed) = {
        let _w = WRITER.lock().unwrap_or_else(|e| e.into_inner());
        let old = GROUPS.load_full();
        let mut map = HashMap::clone(&old);
        let removed = map.remove(&token).ok_or(Error::InvalidHandle)?;
        GROUPS.store(Arc::new(map));
        (old, removed)
    };
    // Dropped outside the writers' lock.
    drop(old);
    drop(removed);
    Ok(())
}

/// Runs `f` on the groups object of `token`; `InvalidHandle` if there is none.
pub(crate) fn with_groups<R>(
    token: u64,
    f: impl FnOnce(&NexthopGroups<u32>) -> Result<R, Error>,
) -> Result<R, Error> {
    let map = GROUPS.load();
    let groups = map.get(&token).ok_or(Error::InvalidHandle)?;
    f(groups)
}

/// Runs `f` on the table of `token`; `InvalidHandle` if there is none.
pub(crate) fn with_table<R>(
    token: u64,
    f: impl FnOnce(&Entry) -> Result<R, Error>,
) -> Result<R, Error> {
    // The guard keeps the snapshot, and so the entry, alive for the call, without
    // touching a shared reference count.
    let snap = REGISTRY.load();
    let entry = snap.by_token.get(&token).ok_or(Error::InvalidHandle)?;
    f(entry)
}

/// Runs `f` on the table that `handle` names; `InvalidHandle` if there is none (the table
/// itself then validates the rest of the handle).
pub(crate) fn with_handle_table<R>(
    handle: u64,
    f: impl FnOnce(&Entry) -> Result<R, Error>,
) -> Result<R, Error> {
    let id = EnumHandle::from_raw(handle).table_id();
    let snap = REGISTRY.load();
    let entry = snap.by_id.get(&id).ok_or(Error::InvalidHandle)?;
    f(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4() -> AnyTable {
        AnyTable::V4(Arc::new(RouteTable::new()))
    }

    #[test]
    fn tokens_resolve_until_unregistered() {
        let t = register(v4());
        let id = with_table(t, |e| Ok(e.id)).unwrap();
        assert_ne!(id, 0);
        assert_eq!(REGISTRY.load().by_id[&id].token, t);
        unregister(t).unwrap();
        assert_eq!(with_table(t, |_| Ok(())), Err(Error::InvalidHandle));
        assert_eq!(unregister(t), Err(Error::InvalidHandle));
        assert!(REGISTRY.load().by_id.get(&id).is_none_or(|e| e.token != t));
    }

    #[test]
    fn an_entry_outlives_its_unregistration_while_in_use() {
        let t = register(v4());
        let r = with_table(t, |e| {
            unregister(t).unwrap();
            // Still usable: the snapshot this call loaded holds it.
            match &e.table {
                AnyTable::V4(table) => Ok(table.route_count()),
                AnyTable::V6(_) => unreachable!(),
            }
        });
        assert_eq!(r, Ok(0));
        assert_eq!(with_table(t, |_| Ok(())), Err(Error::InvalidHandle));
    }
}

//! The process-wide registry of the tables created through the C ABI.
//!
//! C names a table by an opaque token (the `rtm_table *` value, never a Rust pointer) and an
//! enumeration only by its handle, so every call starts here: a token or a handle's table
//! identity ([`EnumHandle::table_id`]) is looked up in an immutable snapshot of the
//! registry. Readers load the snapshot without a lock ([`ArcSwap`]); create and destroy
//! replace it under a writers' mutex. A destroyed table leaves the snapshot at once, so
//! every later call with its token or its handles is `InvalidHandle`, while calls already in
//! flight finish on the snapshot they loaded, which keeps the table alive until they return.
//!
//! Handle values stay unique in the process: a table identity whose table issued a handle
//! is never given to another C table (see [`Ids`]), and within a table the crate never
//! reissues a handle value.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use rtm::{EnumHandle, Error, Ipv4Net, Ipv6Net, RouteTable};

/// A table of either family.
pub(crate) enum AnyTable {
    V4(RouteTable<Ipv4Net, u64>),
    V6(RouteTable<Ipv6Net, u64>),
}

impl AnyTable {
    fn id(&self) -> u64 {
        match self {
            AnyTable::V4(t) => t.table_id(),
            AnyTable::V6(t) => t.table_id(),
        }
    }
}

/// A registered table.
pub(crate) struct Entry {
    pub(crate) table: AnyTable,
    /// The table's identity (its handles carry it).
    id: u64,
    /// Set before the table is asked for its first handle; read when the entry is dropped.
    issued: AtomicBool,
}

impl Entry {
    /// Records that this table may issue a handle, so that its identity is retired when it
    /// goes. Called before every create, so that no handle escapes unrecorded.
    pub(crate) fn mark_issued(&self) {
        // Relaxed: the flag is read only in `drop`, which runs after the last `Arc` of the
        // entry is gone; `Arc`'s release decrement and acquire fence order this store
        // before that read.
        self.issued.store(true, Ordering::Relaxed);
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        // No call is in flight on this entry any more (we hold the last reference), so
        // the set of handles it issued is final.
        let mut ids = ids();
        ids.in_use.remove(&self.id);
        if *self.issued.get_mut() {
            ids.retired.insert(self.id);
        }
    }
}

/// The table identities the registry must not hand out again.
#[derive(Default)]
struct Ids {
    /// Identities of entries that exist (registered, or destroyed with a call in flight).
    in_use: HashSet<u64>,
    /// Identities of destroyed tables that issued a handle: a new table with one of them
    /// could accept a handle value of the old one.
    retired: HashSet<u64>,
}

/// Locks the identity sets. Never held while taking [`WRITER`] (entries are dropped
/// under `WRITER` at most, and their drop takes this lock), so the two cannot deadlock.
fn ids() -> MutexGuard<'static, Ids> {
    static IDS: LazyLock<Mutex<Ids>> = LazyLock::new(Mutex::default);
    // The sets stay consistent even if a holder panicked: each update is one insert or
    // remove.
    IDS.lock().unwrap_or_else(|e| e.into_inner())
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

/// The table identities there are (the crate's handles carry 20 bits of it).
const IDENTITIES: usize = (1 << 20) - 1;

/// How many tables `register` builds before it gives up on finding a free identity.
const ATTEMPTS: usize = 64;

/// Registers a table built by `build`, returning its token. `build` may be called more than
/// once: a table whose identity is in use or retired is dropped and another is built.
/// `NoSystemResources` when no free identity turns up.
pub(crate) fn register(build: impl Fn() -> AnyTable) -> Result<u64, Error> {
    let mut attempts = 0;
    let entry = loop {
        let table = build();
        let id = table.id();
        let mut ids = ids();
        if ids.in_use.len() + ids.retired.len() >= IDENTITIES || attempts == ATTEMPTS {
            return Err(Error::NoSystemResources);
        }
        if !ids.in_use.contains(&id) && !ids.retired.contains(&id) {
            ids.in_use.insert(id);
            drop(ids);
            break Arc::new(Entry {
                table,
                id,
                issued: AtomicBool::new(false),
            });
        }
        // The crate issues identities in turn: the next table gets another one.
        drop(ids);
        drop(table);
        attempts += 1;
    };
    // Relaxed: the counter only has to give each caller a distinct value.
    let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    let old = {
        let _w = WRITER.lock().unwrap_or_else(|e| e.into_inner());
        let old = REGISTRY.load_full();
        let mut new = Snapshot::clone(&old);
        new.by_token.insert(token, entry.clone());
        new.by_id.insert(entry.id, entry);
        REGISTRY.store(Arc::new(new));
        old
    };
    drop(old);
    Ok(token)
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
        new.by_id.remove(&entry.id);
        REGISTRY.store(Arc::new(new));
        (old, entry)
    };
    // Dropped outside the writers' lock: this may drop the whole table.
    drop(old);
    drop(entry);
    Ok(())
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

/// How many tables are registered (for tests).
#[cfg(test)]
pub(crate) fn len() -> usize {
    REGISTRY.load().by_token.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4() -> AnyTable {
        AnyTable::V4(RouteTable::new())
    }

    #[test]
    fn tokens_resolve_until_unregistered() {
        let t = register(v4).unwrap();
        let id = with_table(t, |e| Ok(e.id)).unwrap();
        assert!(len() >= 1);
        unregister(t).unwrap();
        assert_eq!(with_table(t, |_| Ok(())), Err(Error::InvalidHandle));
        assert_eq!(unregister(t), Err(Error::InvalidHandle));
        // No handle issued: the identity is free again, and not in use.
        assert!(!ids().in_use.contains(&id));
        assert!(!ids().retired.contains(&id));
    }

    #[test]
    fn an_identity_that_issued_handles_is_retired() {
        let t = register(v4).unwrap();
        let id = with_table(t, |e| {
            e.mark_issued();
            Ok(e.id)
        })
        .unwrap();
        unregister(t).unwrap();
        assert!(ids().retired.contains(&id));
    }

    #[test]
    fn an_entry_outlives_its_unregistration_while_in_use() {
        let t = register(v4).unwrap();
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

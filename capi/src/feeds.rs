//! Best-route feeds for C: RTMv1's route change messages, read from the crate's
//! [`Feed`]s.
//!
//! A feed is an [`OwnedFeed`], which holds a share of its table, and lives inside the
//! table's registry [`Entry`] (`Entry::feeds`). A feed value (`rtm_feed`) is the table's
//! token in the high 32 bits and a per-table serial in the low 32, so a call finds the
//! entry first (a destroyed table's feeds are gone with it) and then the feed. One call at a time uses a feed: a second concurrent call gets
//! `Busy` from `try_lock`, never waits.
//!
//! [`Entry`]: crate::registry::Entry

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

use arc_swap::ArcSwap;
use rtm::{Change, Error, Ipv4Net, Ipv6Net, OwnedFeed, RouteTable};

use crate::codes::{RTM_CURRENT_BEST_ROUTE, RTM_PREVIOUS_BEST_ROUTE};
use crate::convert::{route_out, Family};
use crate::types::rtm_route;

/// A feed of either family.
pub(crate) enum AnyFeed {
    V4(OwnedFeed<Ipv4Net, u64>),
    V6(OwnedFeed<Ipv6Net, u64>),
}

/// A family whose feeds fit in [`AnyFeed`].
pub(crate) trait FeedFamily: Family {
    fn wrap(f: OwnedFeed<Self, u64>) -> AnyFeed;
}

impl FeedFamily for Ipv4Net {
    fn wrap(f: OwnedFeed<Self, u64>) -> AnyFeed {
        AnyFeed::V4(f)
    }
}

impl FeedFamily for Ipv6Net {
    fn wrap(f: OwnedFeed<Self, u64>) -> AnyFeed {
        AnyFeed::V6(f)
    }
}

/// A change message: its flags, the current best route, the previous best route.
pub(crate) type Message = (u32, Option<rtm_route>, Option<rtm_route>);

/// A feed and the one message it read ahead (to tell "more messages" from "last one").
pub(crate) struct FeedState {
    feed: AnyFeed,
    ahead: Option<Result<Message, Error>>,
}

impl FeedState {
    fn read(&mut self) -> Result<Option<Message>, Error> {
        match &mut self.feed {
            AnyFeed::V4(f) => f.try_next().map(|c| c.map(message)),
            AnyFeed::V6(f) => f.try_next().map(|c| c.map(message)),
        }
    }

    /// The next message and whether another one is ready after it; `Ok(None)` when caught
    /// up. A `Lagged` feed returns `Lagged` from then on.
    pub(crate) fn dequeue(&mut self) -> Result<Option<(Message, bool)>, Error> {
        let first = match self.ahead.take() {
            Some(m) => m?,
            None => match self.read()? {
                Some(m) => m,
                None => return Ok(None),
            },
        };
        self.ahead = self.read().transpose();
        Ok(Some((first, self.ahead.is_some())))
    }
}

fn message<P: Family>(c: Change<P, u64>) -> Message {
    let mut flags = 0;
    if c.new.is_some() {
        flags |= RTM_CURRENT_BEST_ROUTE;
    }
    if c.old.is_some() {
        flags |= RTM_PREVIOUS_BEST_ROUTE;
    }
    (
        flags,
        c.new.as_ref().map(route_out),
        c.old.as_ref().map(route_out),
    )
}

/// The open feeds of one table.
#[derive(Default)]
pub(crate) struct Feeds {
    map: ArcSwap<HashMap<u32, Arc<Mutex<FeedState>>>>,
    /// Serializes the replacements of `map`.
    writer: Mutex<()>,
}

/// The next serial of a table's feeds and Fibs (they share one space, so a feed value is
/// never a Fib value); serials are never reused. `NoSystemResources` after 2^32 - 1.
pub(crate) fn next_serial(last: &AtomicU32) -> Result<u32, Error> {
    // Relaxed: the counter only has to give each open a distinct value.
    last.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| s.checked_add(1))
        .map(|s| s + 1)
        .map_err(|_| Error::NoSystemResources)
}

/// Opens a feed of `criteria`'s changes on `table` (whose entry owns `feeds`).
pub(crate) fn open<P: FeedFamily>(
    feeds: &Feeds,
    serials: &AtomicU32,
    table: &Arc<RouteTable<P, u64>>,
    criteria: rtm::Criteria<P>,
) -> Result<u32, Error> {
    let serial = next_serial(serials)?;
    let feed = table.feed_owned(criteria)?;
    let state = Arc::new(Mutex::new(FeedState {
        feed: P::wrap(feed),
        ahead: None,
    }));
    let _w = feeds.writer.lock().unwrap_or_else(|e| e.into_inner());
    let mut map = HashMap::clone(&feeds.map.load());
    map.insert(serial, state);
    feeds.map.store(Arc::new(map));
    Ok(serial)
}

/// Runs `f` on the feed `serial`, if no other call is using it: `InvalidHandle` if there
/// is no such feed, `Busy` if another call holds it.
pub(crate) fn with_feed<R>(
    feeds: &Feeds,
    serial: u32,
    f: impl FnOnce(&mut FeedState) -> R,
) -> Result<R, Error> {
    let map = feeds.map.load();
    let state = map.get(&serial).ok_or(Error::InvalidHandle)?;
    let mut guard = match state.try_lock() {
        Ok(g) => g,
        Err(TryLockError::WouldBlock) => return Err(Error::Busy),
        // A panic inside a feed call left it poisoned; the feed itself is still whole
        // (every crate call leaves it consistent), so go on with it.
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
    };
    Ok(f(&mut guard))
}

/// Closes feed `serial`; a call in flight on it finishes first. `InvalidHandle` if there is
/// no such feed.
pub(crate) fn close(feeds: &Feeds, serial: u32) -> Result<(), Error> {
    let removed = {
        let _w = feeds.writer.lock().unwrap_or_else(|e| e.into_inner());
        let old = feeds.map.load_full();
        let mut map = HashMap::clone(&old);
        let removed = map.remove(&serial).ok_or(Error::InvalidHandle)?;
        feeds.map.store(Arc::new(map));
        (old, removed)
    };
    // The feed is dropped here, or by the call in flight on it when it returns.
    drop(removed);
    Ok(())
}

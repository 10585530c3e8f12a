//! RTMv1's route change messages: `rtm_feed_open`, `rtm_dequeue_route_change_message`,
//! `rtm_feed_close`. The feeds themselves are in `feeds`.

use rtm::Error;

use crate::codes::{RTM_ERROR_MORE_MESSAGES, RTM_NO_ERROR};
use crate::convert::criteria_in;
use crate::feeds;
use crate::ffi::{ffi, optional_in, out_ptr, token, write_out};
use crate::registry::{self, on_table};
use crate::types::{join, rtm_feed, rtm_route, rtm_table, split};

/// Opens a feed of best-route changes (RTMv1's route change messages) for the networks
/// that `enumeration_flags` and `criteria` select, as in `rtm_create_enumeration_handle`;
/// `RTM_ONLY_BEST_ROUTES` is implied. The feed reports every change committed after this
/// call: a network whose best route (among those the other flags admit) appears,
/// disappears or changes gives one message.
///
/// Returns the errors of `rtm_create_enumeration_handle` (a feed takes one of the
/// table's enumeration slots until it is closed).
///
/// The feed belongs to the caller until `rtm_feed_close` or the table's destruction; one
/// call at a time uses it (a concurrent one gets `RTM_ERROR_BUSY`). Writers never wait
/// for a feed: one that falls further behind than the table's journal holds (65,536
/// commits) gets `RTM_ERROR_FEED_LAGGED`.
///
/// ```c
/// rtm_feed feed;
/// uint32_t rc = rtm_feed_open(table, 0, NULL, &feed);
/// ```
///
/// # Safety
/// `criteria` must be NULL or valid for reading an `rtm_route`; `out` NULL or valid for
/// writing an `rtm_feed`.
#[no_mangle]
pub unsafe extern "C" fn rtm_feed_open(
    table: *mut rtm_table,
    enumeration_flags: u32,
    criteria: *const rtm_route,
    out: *mut rtm_feed,
) -> u32 {
    ffi(|| {
        let t = token(table)?;
        let out = out_ptr(out)?;
        // SAFETY: the caller's contract on `criteria`.
        let c = unsafe { optional_in(criteria) };
        let serial = registry::with_table(t, |e| {
            on_table!(e, t => {
                let criteria = criteria_in(enumeration_flags, c.as_ref())?.best_only();
                feeds::open(&e.feeds, &e.serials, t, criteria)
            })
        })?;
        // SAFETY: checked non-NULL; valid for writes by the caller's contract.
        unsafe { write_out(out, join(t, serial)?) };
        Ok(())
    })
}

/// Dequeues the feed's next route change message (RTMv1's `RtmDequeueRouteChangeMessage`):
/// `*flags` is `RTM_ROUTE_ADDED` (the network got a best route, in `*current_best`),
/// `RTM_ROUTE_DELETED` (it lost it, in `*previous_best`) or `RTM_ROUTE_CHANGED` (both);
/// `current_best` and `previous_best` may be NULL, and each is written only if its flag is
/// set. Messages come in commit order, each commit once.
///
/// Returns, as RTMv1 does, `RTM_NO_ERROR` for a message that is the last one ready and
/// `RTM_ERROR_MORE_MESSAGES` for a message with more ready after it (call again);
/// `RTM_ERROR_NO_MESSAGES` if none is ready (nothing written). Also
/// `RTM_ERROR_FEED_LAGGED` once the feed fell behind the journal (every later call too),
/// `RTM_ERROR_BUSY` if another thread's call is using the feed, `RTM_ERROR_INVALID_HANDLE`
/// for a value that is not an open feed (closed, forged, or of a destroyed table),
/// `RTM_ERROR_INVALID_PARAMETER` if `flags` is NULL.
///
/// ```c
/// uint32_t flags, rc;
/// rtm_route cur, prev;
/// do {
///     rc = rtm_dequeue_route_change_message(feed, &flags, &cur, &prev);
///     if (rc == RTM_NO_ERROR || rc == RTM_ERROR_MORE_MESSAGES)
///         apply(flags, &cur, &prev);
/// } while (rc == RTM_ERROR_MORE_MESSAGES);
/// ```
///
/// # Safety
/// `flags` must be NULL or valid for writing a `uint32_t`; `current_best` and
/// `previous_best` NULL or valid for writing an `rtm_route`.
#[no_mangle]
pub unsafe extern "C" fn rtm_dequeue_route_change_message(
    feed: rtm_feed,
    flags: *mut u32,
    current_best: *mut rtm_route,
    previous_best: *mut rtm_route,
) -> u32 {
    let mut more = false;
    let rc = ffi(|| {
        let flags = out_ptr(flags)?;
        let (token, serial) = split(feed);
        let msg = registry::with_table(token, |e| {
            feeds::with_feed(&e.feeds, serial, |f| f.dequeue())?
        })?;
        let Some(((f, cur, prev), ahead)) = msg else {
            return Err(Error::NoMoreRoutes);
        };
        more = ahead;
        // SAFETY: checked non-NULL; valid for writes by the caller's contract.
        unsafe { write_out(flags, f) };
        if let (Some(r), false) = (cur, current_best.is_null()) {
            // SAFETY: non-NULL; valid for writes by the caller's contract.
            unsafe { write_out(current_best, r) };
        }
        if let (Some(r), false) = (prev, previous_best.is_null()) {
            // SAFETY: non-NULL; valid for writes by the caller's contract.
            unsafe { write_out(previous_best, r) };
        }
        Ok(())
    });
    if rc == RTM_NO_ERROR && more {
        RTM_ERROR_MORE_MESSAGES
    } else {
        rc
    }
}

/// Closes a feed and releases its slot. Returns `RTM_ERROR_INVALID_HANDLE` for a value that
/// is not an open feed (already closed, forged, or of a destroyed table: a destroyed
/// table's feeds need no close). A call in flight on the feed finishes first.
///
/// # Safety
/// None: any value may be passed.
#[no_mangle]
pub unsafe extern "C" fn rtm_feed_close(feed: rtm_feed) -> u32 {
    ffi(|| {
        let (token, serial) = split(feed);
        registry::with_table(token, |e| feeds::close(&e.feeds, serial))
    })
}

//! RTMv1's enumeration handles over a snapshot: `rtm_create_enumeration_handle`,
//! `rtm_enumerate_get_next_route`, `rtm_enumerate_get_next_routes`,
//! `rtm_close_enumeration_handle`.

use rtm::{EnumHandle, Error, RouteTable};

use crate::convert::{criteria_in, route_out, Family};
use crate::ffi::{ffi, optional_in, out_ptr, token, write_out};
use crate::registry::{self, on_table};
use crate::types::{rtm_handle, rtm_route, rtm_table};

/// Opens an enumeration over a snapshot of the table taken now, and stores its handle in
/// `*out`. `enumeration_flags` combine (AND) `RTM_ONLY_THIS_NETWORK`,
/// `RTM_ONLY_THIS_INTERFACE`, `RTM_ONLY_THIS_PROTOCOL`, `RTM_ONLY_BEST_ROUTES`,
/// `RTM_INCLUDE_DISABLED_ROUTES`, `RTM_ONLY_WITHIN_NETWORK` and `RTM_START_AFTER_ROUTE`;
/// without `RTM_INCLUDE_DISABLED_ROUTES` only enabled routes are returned. `criteria`
/// supplies the network, interface_id, protocol (and the key to resume after); it is read
/// only if a flag needs it, and may be NULL otherwise.
///
/// Returns `RTM_ERROR_INVALID_PARAMETER` if `out` is NULL, a flag bit is unknown, or a flag
/// needs `criteria` and it is NULL or malformed (family not the table's, prefix length
/// beyond the width, host bits); `RTM_ERROR_NO_SYSTEM_RESOURCES` if the table's
/// `max_enumerations` handles are open; `RTM_ERROR_INVALID_HANDLE` if `table` is not a live
/// table.
///
/// The handle belongs to the caller until `rtm_close_enumeration_handle` (or the table's
/// destruction); it may be passed between threads, but one call at a time uses it.
/// The enumeration sees exactly the routes of its snapshot, in key order, each once,
/// whatever writers do meanwhile; writers never wait for it.
///
/// ```c
/// rtm_route crit = {.family = 4, .prefix_len = 8, .network = {10}};
/// rtm_handle h;
/// rtm_route r;
/// uint32_t rc = rtm_create_enumeration_handle(table, RTM_ONLY_WITHIN_NETWORK, &crit, &h);
/// if (rc != RTM_NO_ERROR) return rc;
/// while ((rc = rtm_enumerate_get_next_route(h, &r)) == RTM_NO_ERROR)
///     dump(&r);
/// rtm_close_enumeration_handle(h); // rc is RTM_ERROR_NO_MORE_ROUTES here
/// ```
///
/// # Safety
/// `criteria` must be NULL or valid for reading an `rtm_route`; `out` NULL or valid for
/// writing an `rtm_handle`.
#[no_mangle]
pub unsafe extern "C" fn rtm_create_enumeration_handle(
    table: *mut rtm_table,
    enumeration_flags: u32,
    criteria: *const rtm_route,
    out: *mut rtm_handle,
) -> u32 {
    ffi(|| {
        let t = token(table)?;
        let out = out_ptr(out)?;
        // SAFETY: the caller's contract on `criteria`.
        let c = unsafe { optional_in(criteria) };
        let h = registry::with_table(
            t,
            |e| on_table!(e, t => create(t, enumeration_flags, c.as_ref())),
        )?;
        // SAFETY: checked non-NULL; valid for writes by the caller's contract.
        unsafe { write_out(out, h) };
        Ok(())
    })
}

fn create<P: Family>(
    t: &RouteTable<P, u64>,
    flags: u32,
    c: Option<&rtm_route>,
) -> Result<rtm_handle, Error> {
    let criteria = criteria_in::<P>(flags, c)?;
    Ok(t.create_enumeration_handle(criteria)?.into_raw())
}

/// Copies the enumeration's next route into `*out` (RTMv1's `RtmEnumerateGetNextRoute`).
///
/// Returns `RTM_ERROR_NO_MORE_ROUTES` once the enumeration is exhausted (and on every call
/// after; the handle stays open until closed), `RTM_ERROR_INVALID_HANDLE` for any value that
/// is not an open handle (closed, stale, forged, or of a destroyed table),
/// `RTM_ERROR_BUSY` if another thread's call is using the handle right now (nothing
/// happened; the handle stays valid), `RTM_ERROR_INVALID_PARAMETER` if `out` is NULL (the
/// enumeration does not advance). `*out` is written only on `RTM_NO_ERROR`.
///
/// Never waits: not for writers, and not for another call on the same handle.
///
/// # Safety
/// `out` must be NULL or valid for writing an `rtm_route`.
#[no_mangle]
pub unsafe extern "C" fn rtm_enumerate_get_next_route(
    handle: rtm_handle,
    out: *mut rtm_route,
) -> u32 {
    ffi(|| {
        let out = out_ptr(out)?;
        let r = registry::with_handle_table(handle, |e| {
            on_table!(e, t => {
                let r = t.enumerate_get_next_route(EnumHandle::from_raw(handle))?;
                Ok(route_out(&r))
            })
        })?;
        // SAFETY: checked non-NULL; valid for writes by the caller's contract.
        unsafe { write_out(out, r) };
        Ok(())
    })
}

/// Copies up to `max` next routes of the enumeration into `out[0..]` and stores how many in
/// `*count`.
///
/// Returns `RTM_NO_ERROR` with `*count` >= 1, or `RTM_ERROR_NO_MORE_ROUTES` with `*count`
/// = 0 once the enumeration is exhausted. Once the arguments are checked, `*count` is
/// written whatever the outcome (0 on an error). The batch is one call on the handle:
/// another thread's call on it meanwhile gets `RTM_ERROR_BUSY`. Errors as
/// `rtm_enumerate_get_next_route`, and
/// `RTM_ERROR_INVALID_PARAMETER` if `out` or `count` is NULL or `max` is 0.
///
/// # Safety
/// `out` must be NULL or valid for writing `max` `rtm_route`s; `count` NULL or valid for
/// writing a `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn rtm_enumerate_get_next_routes(
    handle: rtm_handle,
    out: *mut rtm_route,
    max: u32,
    count: *mut u32,
) -> u32 {
    ffi(|| {
        let out = out_ptr(out)?;
        let count = out_ptr(count)?;
        if max == 0 {
            return Err(Error::InvalidParameter);
        }
        let mut n = 0u32;
        let r = registry::with_handle_table(handle, |e| {
            on_table!(e, t => {
                let mut routes = Vec::new();
                let h = EnumHandle::from_raw(handle);
                n = t.enumerate_get_next_routes(h, max as usize, &mut routes)? as u32;
                for (i, r) in routes.iter().enumerate() {
                    // SAFETY: `out` is non-NULL and valid for `max` routes by the caller's
                    // contract, and the crate returned at most `max`.
                    unsafe { write_out(out.add(i), route_out(r)) };
                }
                if n == 0 {
                    Err(Error::NoMoreRoutes)
                } else {
                    Ok(())
                }
            })
        });
        // SAFETY: checked non-NULL; valid for writes by the caller's contract.
        unsafe { write_out(count, n) };
        r
    })
}

/// Closes an enumeration handle (RTMv1's `RtmCloseEnumerationHandle`): its slot and its
/// snapshot are released, and every later use of the value is `RTM_ERROR_INVALID_HANDLE`.
///
/// Returns `RTM_ERROR_INVALID_HANDLE` for any value that is not an open handle (already
/// closed, stale, forged, or of a destroyed table: a destroyed table's handles need no
/// close). Of racing closes exactly one succeeds. A close may come while another thread's
/// call on the handle is in flight: that call finishes normally, and the handle is closed
/// when it returns.
///
/// # Safety
/// None: any value may be passed.
#[no_mangle]
pub unsafe extern "C" fn rtm_close_enumeration_handle(handle: rtm_handle) -> u32 {
    ffi(|| {
        registry::with_handle_table(
            handle,
            |e| on_table!(e, t => t.close_enumeration_handle(EnumHandle::from_raw(handle))),
        )
    })
}

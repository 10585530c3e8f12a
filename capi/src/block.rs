//! RTMv1's block operations on every route an enumeration would return:
//! `rtm_block_delete_routes`, `rtm_block_set_route_enable`.

use rtm::{Error, RouteTable};

use crate::convert::{criteria_in, Family};
use crate::ffi::{ffi, optional_in, token, write_out};
use crate::registry::{self, on_table};
use crate::types::{rtm_route, rtm_table};

/// Deletes every route that matches `enumeration_flags` and `criteria` (as in
/// `rtm_create_enumeration_handle`) at a snapshot taken at the call (RTMv1's
/// `RtmBlockDeleteRoutes`), and stores how many were deleted in `*deleted` if it is not
/// NULL. The deletions are one commit, at one version (as `rtm_batch_commit`): concurrent
/// readers, enumerations and feeds see all of them or none. Each route is deleted only if
/// it is still the version the snapshot saw: a route that another writer replaced or
/// deleted after the snapshot is left alone and not counted (that write is newer, and
/// wins), and a route added after the snapshot is untouched.
///
/// Returns the errors of `rtm_create_enumeration_handle` (the snapshot takes one of the
/// table's enumeration slots while the call runs).
///
/// ```c
/// rtm_route crit = {.family = 4, .protocol = 14};
/// uint32_t deleted;
/// rtm_block_delete_routes(table, RTM_ONLY_THIS_PROTOCOL | RTM_INCLUDE_DISABLED_ROUTES,
///                         &crit, &deleted);
/// ```
///
/// # Safety
/// `criteria` must be NULL or valid for reading an `rtm_route`; `deleted` NULL or valid for
/// writing a `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn rtm_block_delete_routes(
    table: *mut rtm_table,
    enumeration_flags: u32,
    criteria: *const rtm_route,
    deleted: *mut u32,
) -> u32 {
    ffi(|| {
        let t = token(table)?;
        // SAFETY: the caller's contract on `criteria`.
        let c = unsafe { optional_in(criteria) };
        let n = registry::with_table(
            t,
            |e| on_table!(e, t => block_delete(t, enumeration_flags, c.as_ref())),
        )?;
        if !deleted.is_null() {
            // SAFETY: non-NULL; valid for writes by the caller's contract.
            unsafe { write_out(deleted, u32::try_from(n).unwrap_or(u32::MAX)) };
        }
        Ok(())
    })
}

/// Sets `enabled` (0: disable, anything else: enable) on every route that matches
/// `enumeration_flags` and `criteria` at a snapshot taken at the call, disabled routes
/// included whatever `RTM_INCLUDE_DISABLED_ROUTES` says (RTMv1's `RtmBlockSetRouteEnable`),
/// and stores how many routes changed in `*changed` if it is not NULL. A route already in
/// the requested state is not rewritten and not counted. As `rtm_block_delete_routes`, the
/// changes are one commit, and a route changed by another writer after the snapshot is left
/// alone. Errors as `rtm_block_delete_routes`.
///
/// ```c
/// rtm_route crit = {.family = 4, .interface_id = 3};
/// rtm_block_set_route_enable(table, RTM_ONLY_THIS_INTERFACE, &crit, 0, NULL); // link down
/// ```
///
/// # Safety
/// `criteria` must be NULL or valid for reading an `rtm_route`; `changed` NULL or valid for
/// writing a `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn rtm_block_set_route_enable(
    table: *mut rtm_table,
    enumeration_flags: u32,
    criteria: *const rtm_route,
    enable: u8,
    changed: *mut u32,
) -> u32 {
    ffi(|| {
        let t = token(table)?;
        // SAFETY: the caller's contract on `criteria`.
        let c = unsafe { optional_in(criteria) };
        let n = registry::with_table(
            t,
            |e| on_table!(e, t => t.set_routes_enabled(criteria_in(enumeration_flags, c.as_ref())?, enable != 0)),
        )?;
        if !changed.is_null() {
            // SAFETY: non-NULL; valid for writes by the caller's contract.
            unsafe { write_out(changed, u32::try_from(n).unwrap_or(u32::MAX)) };
        }
        Ok(())
    })
}

fn block_delete<P: Family>(
    t: &RouteTable<P, u64>,
    flags: u32,
    c: Option<&rtm_route>,
) -> Result<usize, Error> {
    t.delete_routes(criteria_in::<P>(flags, c)?)
}

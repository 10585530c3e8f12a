//! One route at a time, by its key or its network: `rtm_add_route`, `rtm_delete_route`,
//! `rtm_get_route`, `rtm_best_route`.

use rtm::{Error, RouteTable};

use crate::convert::{key_in, prefix_in, route_in, route_out, Family};
use crate::ffi::{ffi, out_ptr, read_in, token, write_out};
use crate::registry::{self, on_table};
use crate::types::{rtm_route, rtm_table};

/// Adds `*route` to the table, or replaces the route with the same key.
///
/// Returns `RTM_ERROR_INVALID_PARAMETER` if `route` is NULL, its family is not the table's,
/// its prefix length is beyond the family's width, or its network has host bits set;
/// `RTM_ERROR_INVALID_HANDLE` if `table` is not a live table.
///
/// Lock-free; any number of threads may add, delete, look up and enumerate at once.
/// The library copies `*route`; the caller keeps it.
///
/// ```c
/// rtm_route r = {.family = 4, .prefix_len = 8, .enabled = 1, .network = {10},
///                .next_hop = {192, 0, 2, 1}, .protocol = 14, .interface_id = 1,
///                .value = 7}; // the next-hop id
/// uint32_t rc = rtm_add_route(table, &r);
/// ```
///
/// # Safety
/// `route` must be NULL or valid for reading an `rtm_route`.
#[no_mangle]
pub unsafe extern "C" fn rtm_add_route(table: *mut rtm_table, route: *const rtm_route) -> u32 {
    ffi(|| {
        let t = token(table)?;
        // SAFETY: the caller's contract on `route`.
        let r = unsafe { read_in(route) }?;
        registry::with_table(t, |e| on_table!(e, t => add(t, &r)))
    })
}

fn add<P: Family>(t: &RouteTable<P, u64>, r: &rtm_route) -> Result<(), Error> {
    t.add_route(route_in(r)?).map(drop)
}

/// Deletes the route with the key of `*route` (network, prefix_len, protocol,
/// interface_id, next_hop; the other fields are ignored).
///
/// Returns `RTM_ERROR_NO_MORE_ROUTES` if no such route is in the table, and the errors of
/// `rtm_add_route` for a malformed route or a dead table.
///
/// # Safety
/// `route` must be NULL or valid for reading an `rtm_route`.
#[no_mangle]
pub unsafe extern "C" fn rtm_delete_route(table: *mut rtm_table, route: *const rtm_route) -> u32 {
    ffi(|| {
        let t = token(table)?;
        // SAFETY: the caller's contract on `route`.
        let r = unsafe { read_in(route) }?;
        registry::with_table(
            t,
            |e| on_table!(e, t => t.delete_route(&key_in(&r)?).map(drop)),
        )
    })
}

/// Copies the route with the key of `*key` (network, prefix_len, protocol, interface_id,
/// next_hop) into `*out`.
///
/// Returns `RTM_ERROR_NO_MORE_ROUTES` if there is none (then `*out` is untouched),
/// `RTM_ERROR_INVALID_PARAMETER` if `out` is NULL or `key` is NULL or malformed (as in
/// `rtm_add_route`), `RTM_ERROR_INVALID_HANDLE` if `table` is not a live table.
///
/// # Safety
/// `key` must be NULL or valid for reading an `rtm_route`; `out` NULL or valid for writing
/// one.
#[no_mangle]
pub unsafe extern "C" fn rtm_get_route(
    table: *mut rtm_table,
    key: *const rtm_route,
    out: *mut rtm_route,
) -> u32 {
    ffi(|| {
        let t = token(table)?;
        // SAFETY: the caller's contract on `key`.
        let k = unsafe { read_in(key) }?;
        let out = out_ptr(out)?;
        let r = registry::with_table(t, |e| {
            on_table!(e, t => {
                let r = t.get_route(&key_in(&k)?).ok_or(Error::NoMoreRoutes)?;
                Ok(route_out(&r))
            })
        })?;
        // SAFETY: checked non-NULL; valid for writes by the caller's contract.
        unsafe { write_out(out, r) };
        Ok(())
    })
}

/// Copies the best route of exactly the network of `*network` (its family, network and
/// prefix_len; the other fields are ignored) into `*out`: the enabled route with the
/// smallest (priority, metric), ties to the smaller key.
///
/// Returns `RTM_ERROR_NO_MORE_ROUTES` if the network has no enabled route, and the errors
/// of `rtm_get_route`.
///
/// # Safety
/// `network` must be NULL or valid for reading an `rtm_route`; `out` NULL or valid for
/// writing one.
#[no_mangle]
pub unsafe extern "C" fn rtm_best_route(
    table: *mut rtm_table,
    network: *const rtm_route,
    out: *mut rtm_route,
) -> u32 {
    ffi(|| {
        let t = token(table)?;
        // SAFETY: the caller's contract on `network`.
        let n = unsafe { read_in(network) }?;
        let out = out_ptr(out)?;
        let r = registry::with_table(t, |e| {
            on_table!(e, t => {
                let r = t.best_route(&prefix_in(&n)?).ok_or(Error::NoMoreRoutes)?;
                Ok(route_out(&r))
            })
        })?;
        // SAFETY: checked non-NULL; valid for writes by the caller's contract.
        unsafe { write_out(out, r) };
        Ok(())
    })
}

//! The C ABI of [`rtm`]: RTMv1-style routing tables, routes and enumeration handles for
//! forwarding engines written in C. The header is `capi/include/rtm.h`, generated from this
//! file by cbindgen; `capi/README.md` shows how to build and link.
//!
//! Every function returns a Win32 code (`uint32_t`): [`RTM_NO_ERROR`] or one of the
//! `RTM_ERROR_*` values, which are [`rtm::Error::code`] of the crate's errors. Every input
//! is checked: NULL and malformed arguments are [`RTM_ERROR_INVALID_PARAMETER`], unknown,
//! destroyed, closed or stale tables and handles are [`RTM_ERROR_INVALID_HANDLE`], and no
//! panic crosses the boundary ([`RTM_ERROR_INTERNAL`] if one ever happens).
//!
//! ```
//! use rtm_capi::*;
//!
//! let mut t: *mut rtm_table = std::ptr::null_mut();
//! let mut r = rtm_route::default();
//! r.family = 4;
//! r.prefix_len = 8;
//! r.network[0] = 10;
//! r.enabled = 1;
//! r.value = 42;
//! // SAFETY: every pointer is valid for the call.
//! unsafe {
//!     assert_eq!(rtm_table_create(4, 16, &mut t), RTM_NO_ERROR);
//!     assert_eq!(rtm_add_route(t, &r), RTM_NO_ERROR);
//!     let mut found = rtm_route::default();
//!     assert_eq!(rtm_lookup(t, [10, 1, 2, 3].as_ptr(), &mut found), RTM_NO_ERROR);
//!     assert_eq!(found.value, 42);
//!     assert_eq!(rtm_table_destroy(t), RTM_NO_ERROR);
//!     assert_eq!(rtm_table_destroy(t), RTM_ERROR_INVALID_HANDLE);
//! }
//! ```

#![warn(missing_docs, unsafe_op_in_unsafe_fn)]
#![allow(non_camel_case_types)]

mod codes;
mod convert;
mod feeds;
mod ffi;
mod fib;
mod registry;
mod types;

pub use codes::{
    RTM_CURRENT_BEST_ROUTE, RTM_ERROR_BUSY, RTM_ERROR_FEED_LAGGED, RTM_ERROR_INTERNAL,
    RTM_ERROR_INVALID_HANDLE, RTM_ERROR_INVALID_PARAMETER, RTM_ERROR_MORE_MESSAGES,
    RTM_ERROR_NO_MESSAGES, RTM_ERROR_NO_MORE_ROUTES, RTM_ERROR_NO_SYSTEM_RESOURCES,
    RTM_INCLUDE_DISABLED_ROUTES, RTM_NO_CHANGE, RTM_NO_ERROR, RTM_ONLY_BEST_ROUTES,
    RTM_ONLY_THIS_INTERFACE, RTM_ONLY_THIS_NETWORK, RTM_ONLY_THIS_PROTOCOL,
    RTM_ONLY_WITHIN_NETWORK, RTM_PREVIOUS_BEST_ROUTE, RTM_ROUTE_ADDED, RTM_ROUTE_CHANGED,
    RTM_ROUTE_DELETED, RTM_START_AFTER_ROUTE,
};
pub use types::{rtm_feed, rtm_fib, rtm_handle, rtm_route, rtm_stats, rtm_table};

use std::ptr;
use std::sync::Arc;

use rtm::{EnumHandle, Error, Ipv4Net, Ipv6Net, RouteTable};

use convert::{criteria_in, key_in, prefix_in, route_in, route_out, Family};
use ffi::{ffi, optional_in, out_ptr, read_in, token, write_out};
use registry::{on_table, AnyTable};
use types::{join, split};

/// Creates a table of `family` (4 or 6) that allows `max_enumerations` open enumeration
/// handles at once (clamped to 1..=4096), and stores it in `*out`.
///
/// Returns `RTM_ERROR_INVALID_PARAMETER` if `out` is NULL or `family` is not 4 or 6.
///
/// Up to 4095 tables can open enumeration handles at once (a handle carries its table's
/// 12-bit identity); a table created while 4095 others are alive works in every way, but
/// `rtm_create_enumeration_handle` on it returns `RTM_ERROR_NO_SYSTEM_RESOURCES`.
///
/// The table belongs to the library until `rtm_table_destroy`. It may be used from any
/// number of threads at once.
///
/// ```c
/// rtm_table *table;
/// uint32_t rc = rtm_table_create(4, 64, &table);
/// if (rc != RTM_NO_ERROR) return rc;
/// // ...
/// rtm_table_destroy(table);
/// ```
///
/// # Safety
/// `out` must be NULL or valid for writing an `rtm_table *`.
#[no_mangle]
pub unsafe extern "C" fn rtm_table_create(
    family: u8,
    max_enumerations: u32,
    out: *mut *mut rtm_table,
) -> u32 {
    // SAFETY: the same contract on `out`.
    unsafe { rtm_table_create_ex(family, max_enumerations, 0, out) }
}

/// As `rtm_table_create`, with the capacity of the table's journal: how many commits a
/// feed may fall behind before it gets `RTM_ERROR_FEED_LAGGED`. 0 means the default
/// (65,536); other values are clamped to 64..=2^30 and rounded up to a power of two. The
/// journal takes 8 bytes per entry.
///
/// ```c
/// rtm_table *table;
/// uint32_t rc = rtm_table_create_ex(6, 64, 1u << 20, &table); // feeds may lag 2^20 commits
/// ```
///
/// # Safety
/// `out` must be NULL or valid for writing an `rtm_table *`.
#[no_mangle]
pub unsafe extern "C" fn rtm_table_create_ex(
    family: u8,
    max_enumerations: u32,
    journal_capacity: u32,
    out: *mut *mut rtm_table,
) -> u32 {
    ffi(|| {
        let out = out_ptr(out)?;
        let n = max_enumerations as usize;
        let j = match journal_capacity {
            0 => rtm::DEFAULT_JOURNAL_CAPACITY,
            j => j as usize,
        };
        let table = match family {
            4 => AnyTable::V4(Arc::new(
                RouteTable::builder()
                    .max_enumerations(n)
                    .journal_capacity(j)
                    .build(),
            )),
            6 => AnyTable::V6(Arc::new(
                RouteTable::builder()
                    .max_enumerations(n)
                    .journal_capacity(j)
                    .build(),
            )),
            _ => return Err(Error::InvalidParameter),
        };
        let token = registry::register(table);
        // SAFETY: checked non-NULL; valid for writes by the caller's contract.
        unsafe { write_out(out, ptr::without_provenance_mut(token as usize)) };
        Ok(())
    })
}

/// Destroys a table: it leaves the registry at once, its open enumeration handles become
/// invalid, and its memory is freed when the last call in flight on it returns.
///
/// Returns `RTM_ERROR_INVALID_PARAMETER` for NULL and `RTM_ERROR_INVALID_HANDLE` for a
/// value that is not a live table (already destroyed, or never created): table pointers
/// are checked tokens, so passing a destroyed one again is an error, not undefined
/// behaviour.
///
/// Safe to call while other threads use the table or its handles: their calls finish
/// normally, and every call that starts after this one returned gets
/// `RTM_ERROR_INVALID_HANDLE`.
///
/// # Safety
/// None beyond the types: any pointer value may be passed.
#[no_mangle]
pub unsafe extern "C" fn rtm_table_destroy(table: *mut rtm_table) -> u32 {
    ffi(|| registry::unregister(token(table)?))
}

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

/// Longest-prefix match: copies into `*out` the best route of the longest network that
/// covers the address `addr` and has an enabled route. `addr` is in network byte order,
/// and its length is fixed by the table's family, not passed: this reads exactly 4 bytes
/// of `addr` for an IPv4 table and exactly 16 for an IPv6 table. Where the caller's buffer
/// may be shorter (or of the other family), use `rtm_lookup_len`, which checks the length.
///
/// Returns `RTM_ERROR_NO_MORE_ROUTES` if no network covers it (then `*out` is untouched),
/// `RTM_ERROR_INVALID_PARAMETER` if `addr` or `out` is NULL, `RTM_ERROR_INVALID_HANDLE` if
/// `table` is not a live table.
///
/// Lock-free: a lookup never waits for writers, enumerations or other lookups.
///
/// ```c
/// uint8_t addr[4] = {192, 0, 2, 1};
/// rtm_route r;
/// if (rtm_lookup(table, addr, &r) == RTM_NO_ERROR)
///     forward_to(r.value);
/// ```
///
/// # Safety
/// `addr` must be NULL or valid for reading 4 bytes (IPv4 table) or 16 bytes (IPv6
/// table); `out` NULL or valid for writing an `rtm_route`.
#[no_mangle]
pub unsafe extern "C" fn rtm_lookup(
    table: *mut rtm_table,
    addr: *const u8,
    out: *mut rtm_route,
) -> u32 {
    // SAFETY: the caller's contract, which is `lookup_in`'s with the family's length.
    unsafe { lookup_in(table, addr, None, out) }
}

/// As `rtm_lookup`, but with the length of `addr` given and checked: `addr_len` must be
/// the table's address length, 4 for an IPv4 table and 16 for an IPv6 table. No more than
/// `addr_len` bytes are read, and none if the length is wrong.
///
/// Returns `RTM_ERROR_INVALID_PARAMETER` if `addr` or `out` is NULL or `addr_len` is not
/// the table's address length, and otherwise as `rtm_lookup`.
///
/// ```c
/// struct in6_addr dst = packet_destination(pkt);
/// rtm_route r;
/// if (rtm_lookup_len(table, dst.s6_addr, sizeof dst.s6_addr, &r) == RTM_NO_ERROR)
///     forward_to(r.value);
/// ```
///
/// # Safety
/// `addr` must be NULL or valid for reading `addr_len` bytes; `out` NULL or valid for
/// writing an `rtm_route`.
#[no_mangle]
pub unsafe extern "C" fn rtm_lookup_len(
    table: *mut rtm_table,
    addr: *const u8,
    addr_len: usize,
    out: *mut rtm_route,
) -> u32 {
    // SAFETY: the caller's contract, which is `lookup_in`'s with `Some(addr_len)`.
    unsafe { lookup_in(table, addr, Some(addr_len), out) }
}

/// `rtm_lookup` (`addr_len` None: the family's length) and `rtm_lookup_len` (checked).
///
/// # Safety
/// `addr` must be NULL or valid for reading `addr_len` bytes, or the table family's
/// address length if `addr_len` is None; `out` NULL or valid for writing an `rtm_route`.
unsafe fn lookup_in(
    table: *mut rtm_table,
    addr: *const u8,
    addr_len: Option<usize>,
    out: *mut rtm_route,
) -> u32 {
    ffi(|| {
        let t = token(table)?;
        if addr.is_null() {
            return Err(Error::InvalidParameter);
        }
        let out = out_ptr(out)?;
        let r = registry::with_table(t, |e| {
            on_table!(e, t => {
                if addr_len.is_some_and(|n| n != address_len(t)) {
                    return Err(Error::InvalidParameter);
                }
                // SAFETY: `addr` is non-NULL and, by the caller's contract, valid for
                // reading the family's address length (which `addr_len`, if given, was
                // just checked to be); u8 needs no alignment.
                lookup(t, unsafe { addr_bytes(t, addr) })
            })
        })?;
        // SAFETY: checked non-NULL; valid for writes by the caller's contract.
        unsafe { write_out(out, r) };
        Ok(())
    })
}

/// The length in bytes of an address of `_t`'s family.
fn address_len<P: Family>(_t: &RouteTable<P, u64>) -> usize {
    P::ADDR_LEN
}

/// The address bytes a lookup in `_t` reads.
///
/// # Safety
/// `addr` must be valid for reading `P::ADDR_LEN` bytes.
unsafe fn addr_bytes<'a, P: Family>(_t: &RouteTable<P, u64>, addr: *const u8) -> &'a [u8] {
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(addr, P::ADDR_LEN) }
}

fn lookup<P: Family>(t: &RouteTable<P, u64>, addr: &[u8]) -> Result<rtm_route, Error> {
    let r = t.lookup(P::addr_in(addr)).ok_or(Error::NoMoreRoutes)?;
    Ok(route_out(&r))
}

/// Stores the number of live routes (disabled ones included) in `*out`.
///
/// Returns `RTM_ERROR_INVALID_PARAMETER` if `out` is NULL, `RTM_ERROR_INVALID_HANDLE` if
/// `table` is not a live table.
///
/// # Safety
/// `out` must be NULL or valid for writing a `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn rtm_route_count(table: *mut rtm_table, out: *mut u64) -> u32 {
    ffi(|| {
        let t = token(table)?;
        let out = out_ptr(out)?;
        let n = registry::with_table(t, |e| on_table!(e, t => Ok(t.route_count())))?;
        // SAFETY: checked non-NULL; valid for writes by the caller's contract.
        unsafe { write_out(out, n as u64) };
        Ok(())
    })
}

/// Stores the table's counters in `*out`. Errors as `rtm_route_count`.
///
/// # Safety
/// `out` must be NULL or valid for writing an `rtm_stats`.
#[no_mangle]
pub unsafe extern "C" fn rtm_table_stats(table: *mut rtm_table, out: *mut rtm_stats) -> u32 {
    ffi(|| {
        let t = token(table)?;
        let out = out_ptr(out)?;
        let s = registry::with_table(t, |e| on_table!(e, t => Ok(stats(t))))?;
        // SAFETY: checked non-NULL; valid for writes by the caller's contract.
        unsafe { write_out(out, s) };
        Ok(())
    })
}

fn stats<P: Family>(t: &RouteTable<P, u64>) -> rtm_stats {
    let s = t.stats();
    rtm_stats {
        live_routes: s.live_routes as u64,
        networks: t.network_count() as u64,
        dead_versions: s.dead_versions as u64,
        open_enumerations: s.open_enumerations as u64,
        version: s.version.0,
        max_enumerations: t.max_enumerations() as u32,
        family: P::FAMILY,
    }
}

/// Reclaims now whatever no open enumeration can see any more (this also happens on its
/// own, amortized over writes and closes).
///
/// Returns `RTM_ERROR_INVALID_PARAMETER` for NULL, `RTM_ERROR_INVALID_HANDLE` if `table` is
/// not a live table.
///
/// # Safety
/// None beyond the types: any pointer value may be passed.
#[no_mangle]
pub unsafe extern "C" fn rtm_collect(table: *mut rtm_table) -> u32 {
    ffi(|| {
        let t = token(table)?;
        registry::with_table(t, |e| {
            on_table!(e, t => t.collect());
            Ok(())
        })
    })
}

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

/// Deletes every route that matches `enumeration_flags` and `criteria` (as in
/// `rtm_create_enumeration_handle`) at a snapshot taken at the call (RTMv1's
/// `RtmBlockDeleteRoutes`), and stores how many were deleted in `*deleted` if it is not
/// NULL. Routes added after the snapshot are not touched; each deletion is its own change
/// of the table, so concurrent readers may see some deleted and not others.
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
/// and stores how many routes changed in `*changed` if it is not NULL. Each change is its
/// own commit. Errors as `rtm_block_delete_routes`.
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

/// Builds a Fib of the table's current best routes and stores its value in `*out`. A
/// network's next-hop id is the low 32 bits of its best route's `value`. The Fib does not
/// move by itself: `rtm_fib_sync` applies the table's changes committed since.
///
/// Returns `RTM_ERROR_INVALID_PARAMETER` if `out` is NULL, `RTM_ERROR_INVALID_HANDLE` if
/// `table` is not a live table, `RTM_ERROR_NO_SYSTEM_RESOURCES` if the table has fewer than
/// two free enumeration slots (the Fib holds one, and one more while it builds).
///
/// The Fib belongs to the caller until `rtm_fib_destroy` or the table's destruction.
///
/// ```c
/// rtm_fib fib;
/// uint32_t hop;
/// uint8_t addr[4] = {192, 0, 2, 1};
/// rtm_fib_create(table, &fib);
/// if (rtm_fib_lookup(fib, addr, &hop) == RTM_NO_ERROR)
///     send_via(hop);
/// ```
///
/// # Safety
/// `out` must be NULL or valid for writing an `rtm_fib`.
#[no_mangle]
pub unsafe extern "C" fn rtm_fib_create(table: *mut rtm_table, out: *mut rtm_fib) -> u32 {
    ffi(|| {
        let t = token(table)?;
        let out = out_ptr(out)?;
        let serial = registry::with_table(
            t,
            |e| on_table!(e, t => fib::create(&e.fibs, &e.serials, t)),
        )?;
        // SAFETY: checked non-NULL; valid for writes by the caller's contract.
        unsafe { write_out(out, join(t, serial)?) };
        Ok(())
    })
}

/// Applies every change of the table committed so far to the Fib, and stores how many in
/// `*applied` if it is not NULL (if the Fib fell a whole journal behind, it rebuilds from a
/// fresh snapshot instead and stores the number of networks). Lookups go on meanwhile and
/// see each network's old or new next hop, never anything else.
///
/// Returns `RTM_ERROR_BUSY` if another thread is syncing this Fib,
/// `RTM_ERROR_INVALID_HANDLE` for a value that is not a live Fib, and
/// `RTM_ERROR_NO_SYSTEM_RESOURCES` if a rebuild finds no free slot.
///
/// # Safety
/// `applied` must be NULL or valid for writing a `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn rtm_fib_sync(fib: rtm_fib, applied: *mut u32) -> u32 {
    ffi(|| {
        let (t, serial) = split(fib);
        let n = registry::with_table(t, |e| fib::with_fib(&e.fibs, serial, fib::sync))?;
        if !applied.is_null() {
            // SAFETY: non-NULL; valid for writes by the caller's contract.
            unsafe { write_out(applied, u32::try_from(n).unwrap_or(u32::MAX)) };
        }
        Ok(())
    })
}

/// Longest-prefix match in the Fib: stores the next-hop id of the longest network that
/// covers `addr` (4 bytes for IPv4, 16 for IPv6, network byte order) in `*next_hop`.
///
/// Returns `RTM_ERROR_NO_MORE_ROUTES` if no network covers it, `RTM_ERROR_INVALID_PARAMETER`
/// if `addr` or `next_hop` is NULL, `RTM_ERROR_INVALID_HANDLE` for a value that is not a
/// live Fib. Takes no lock and never waits for `rtm_fib_sync`.
///
/// # Safety
/// `addr` must be NULL or valid for reading the family's address length; `next_hop` NULL
/// or valid for writing a `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn rtm_fib_lookup(fib: rtm_fib, addr: *const u8, next_hop: *mut u32) -> u32 {
    ffi(|| {
        if addr.is_null() {
            return Err(Error::InvalidParameter);
        }
        let next_hop = out_ptr(next_hop)?;
        let (t, serial) = split(fib);
        let hop = registry::with_table(t, |e| {
            fib::with_fib(&e.fibs, serial, |f| {
                let len = match f {
                    fib::FibState::V4(..) => 4,
                    fib::FibState::V6(..) => 16,
                };
                // SAFETY: `addr` is non-NULL and valid for the family's address length by
                // the caller's contract.
                let a = unsafe { std::slice::from_raw_parts(addr, len) };
                Ok(match f {
                    fib::FibState::V4(f, _) => f.lookup(Ipv4Net::addr_in(a)),
                    fib::FibState::V6(f, _) => f.lookup(Ipv6Net::addr_in(a)),
                })
            })
        })?
        .ok_or(Error::NoMoreRoutes)?;
        // SAFETY: checked non-NULL; valid for writes by the caller's contract.
        unsafe { write_out(next_hop, hop) };
        Ok(())
    })
}

/// Looks up `count` addresses at once: `addrs` holds them back to back (4 bytes each for
/// IPv4, 16 for IPv6); for each, `found[i]` is 1 and `next_hops[i]` its next-hop id, or
/// `found[i]` is 0 and `next_hops[i]` 0.
///
/// Returns `RTM_ERROR_INVALID_PARAMETER` if a pointer is NULL (a `count` of 0 needs none),
/// `RTM_ERROR_INVALID_HANDLE` for a value that is not a live Fib.
///
/// # Safety
/// `addrs` must be NULL or valid for reading `count` addresses; `next_hops` and `found`
/// NULL or valid for writing `count` elements.
#[no_mangle]
pub unsafe extern "C" fn rtm_fib_lookup_batch(
    fib: rtm_fib,
    addrs: *const u8,
    count: u32,
    next_hops: *mut u32,
    found: *mut u8,
) -> u32 {
    ffi(|| {
        let n = count as usize;
        if n > 0 && (addrs.is_null() || next_hops.is_null() || found.is_null()) {
            return Err(Error::InvalidParameter);
        }
        let (t, serial) = split(fib);
        let hops = registry::with_table(t, |e| {
            fib::with_fib(&e.fibs, serial, |f| {
                Ok(match f {
                    // SAFETY: `addrs` is valid for `count` addresses by the caller's contract
                    // (non-NULL when count > 0).
                    fib::FibState::V4(f, _) => batch(f, unsafe { bytes(addrs, n * 4) }, 4),
                    // SAFETY: as above.
                    fib::FibState::V6(f, _) => batch(f, unsafe { bytes(addrs, n * 16) }, 16),
                })
            })
        })?;
        for (i, h) in hops.into_iter().enumerate() {
            // SAFETY: `next_hops` and `found` are valid for `count` elements by the
            // caller's contract, and i < count.
            unsafe {
                write_out(next_hops.add(i), h.unwrap_or(0));
                write_out(found.add(i), u8::from(h.is_some()));
            }
        }
        Ok(())
    })
}

/// `len` bytes at `p` (none when `len` is 0, whatever `p` is).
///
/// # Safety
/// If `len` > 0, `p` must be valid for reading `len` bytes.
unsafe fn bytes<'a>(p: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(p, len) }
}

fn batch<P: Family>(f: &rtm::Fib<P>, bytes: &[u8], width: usize) -> Vec<Option<u32>> {
    let addrs: Vec<P::Addr> = bytes.chunks_exact(width).map(P::addr_in).collect();
    let mut out = vec![None; addrs.len()];
    f.lookup_batch(&addrs, &mut out);
    out
}

/// Destroys a Fib and releases its slot. Returns `RTM_ERROR_INVALID_HANDLE` for a value that
/// is not a live Fib (already destroyed, forged, or of a destroyed table). Lookups and a
/// sync in flight on it finish first.
///
/// # Safety
/// None: any value may be passed.
#[no_mangle]
pub unsafe extern "C" fn rtm_fib_destroy(fib: rtm_fib) -> u32 {
    ffi(|| {
        let (t, serial) = split(fib);
        registry::with_table(t, |e| fib::destroy(&e.fibs, serial))
    })
}

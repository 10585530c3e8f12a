//! The C ABI of [`rtm`]: RTMv1-style routing tables, routes and enumeration handles for
//! forwarding engines written in C. The header is `capi/include/rtm.h`, generated from this
//! crate's modules by cbindgen; `capi/README.md` shows how to build and link.
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

// The modules of the entry points, in the order of their declarations in include/rtm.h,
// after those of this file: cbindgen reads the modules in the order they are declared, so
// moving a line here reorders the header (tests/header.rs catches it). A comment between
// two lines keeps rustfmt from sorting them.
// Return codes and flags.
mod codes;
// The C types.
mod types;
// Enumeration handles.
mod enumeration;
// Block delete and enable.
mod block;
// Route change messages.
mod messages;
// Fibs.
mod forwarding;

// The layers under the entry points, which declare nothing for C.
mod convert;
mod feeds;
mod ffi;
mod fib;
mod registry;

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

pub use block::{rtm_block_delete_routes, rtm_block_set_route_enable};
pub use enumeration::{
    rtm_close_enumeration_handle, rtm_create_enumeration_handle, rtm_enumerate_get_next_route,
    rtm_enumerate_get_next_routes,
};
pub use forwarding::{
    rtm_fib_create, rtm_fib_destroy, rtm_fib_lookup, rtm_fib_lookup_batch, rtm_fib_sync,
};
pub use messages::{rtm_dequeue_route_change_message, rtm_feed_close, rtm_feed_open};

use std::ptr;
use std::sync::Arc;

use rtm::{Error, RouteTable};

use convert::{key_in, prefix_in, route_in, route_out, Family};
use ffi::{ffi, out_ptr, read_in, token, write_out};
use registry::{on_table, AnyTable};

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

//! Longest-prefix match in a table: `rtm_lookup` and `rtm_lookup_len`.

use rtm::{Error, RouteTable};

use crate::convert::{route_out, Family};
use crate::ffi::{ffi, out_ptr, token, write_out};
use crate::registry::{self, on_table};
use crate::types::{rtm_route, rtm_table};

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

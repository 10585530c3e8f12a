//! Fibs, the read-optimized forwarding tables that follow a table: `rtm_fib_create`,
//! `rtm_fib_sync`, `rtm_fib_lookup`, `rtm_fib_lookup_batch`, `rtm_fib_destroy`. The Fibs
//! themselves are in `fib`.

use rtm::{Error, Ipv4Net, Ipv6Net};

use crate::convert::Family;
use crate::ffi::{ffi, out_ptr, token, write_out};
use crate::fib;
use crate::registry::{self, on_table};
use crate::types::{join, rtm_fib, rtm_table, split};

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

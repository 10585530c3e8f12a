//! What a table holds and retains: `rtm_route_count`, `rtm_table_stats`, and
//! `rtm_collect`, which reclaims the retained versions that `rtm_stats::dead_versions`
//! counts.

use rtm::RouteTable;

use crate::convert::Family;
use crate::ffi::{ffi, out_ptr, token, write_out};
use crate::registry::{self, on_table};
use crate::types::{rtm_stats, rtm_table};

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

//! Creating and destroying tables: `rtm_table_create`, `rtm_table_create_ex`,
//! `rtm_table_destroy`.

use std::ptr;
use std::sync::Arc;

use rtm::{Error, RouteTable};

use crate::ffi::{ffi, out_ptr, token, write_out};
use crate::registry::{self, AnyTable};
use crate::types::rtm_table;

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

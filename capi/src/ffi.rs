//! The boundary's plumbing, shared by every entry point: [`ffi`] runs an entry point's
//! body, returns its error as a code and catches panics; the others check and access the
//! caller's pointers.

use std::panic::{self, AssertUnwindSafe};
use std::ptr;

use rtm::Error;

use crate::codes::{RTM_ERROR_INTERNAL, RTM_NO_ERROR};

/// Runs an entry point's body: its error is returned as its code, and a panic, which
/// must not unwind into C, as `RTM_ERROR_INTERNAL`.
pub(crate) fn ffi(body: impl FnOnce() -> Result<(), Error>) -> u32 {
    // AssertUnwindSafe: after a panic nothing of the closure's state is used again; the
    // tables are concurrent structures whose every step leaves them consistent.
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => RTM_NO_ERROR,
        Ok(Err(e)) => e.code(),
        Err(_) => RTM_ERROR_INTERNAL,
    }
}

/// The token of a table or batch pointer (`rtm_table *`, `rtm_batch *`):
/// `InvalidParameter` for NULL.
pub(crate) fn token<T>(p: *mut T) -> Result<u64, Error> {
    if p.is_null() {
        Err(Error::InvalidParameter)
    } else {
        Ok(p.addr() as u64)
    }
}

/// The value behind a caller's input pointer: `InvalidParameter` for NULL.
///
/// # Safety
/// A non-NULL `p` must be valid for reads of a `T` (alignment is not required).
pub(crate) unsafe fn read_in<T: Copy>(p: *const T) -> Result<T, Error> {
    if p.is_null() {
        return Err(Error::InvalidParameter);
    }
    // SAFETY: non-NULL, and valid for reads by the caller's contract; read_unaligned
    // needs no alignment.
    Ok(unsafe { ptr::read_unaligned(p) })
}

/// A caller's output pointer, checked before the call does anything.
pub(crate) fn out_ptr<T>(p: *mut T) -> Result<*mut T, Error> {
    if p.is_null() {
        Err(Error::InvalidParameter)
    } else {
        Ok(p)
    }
}

/// Writes a result to a checked output pointer.
///
/// # Safety
/// `p` must be valid for writes of a `T` (alignment is not required).
pub(crate) unsafe fn write_out<T>(p: *mut T, v: T) {
    // SAFETY: valid for writes by the caller's contract; write_unaligned needs no
    // alignment.
    unsafe { ptr::write_unaligned(p, v) }
}

/// The value behind an optional input pointer.
///
/// # Safety
/// `p` must be NULL or valid for reading a `T`.
pub(crate) unsafe fn optional_in<T: Copy>(p: *const T) -> Option<T> {
    // SAFETY: the caller's contract.
    unsafe { read_in(p) }.ok()
}

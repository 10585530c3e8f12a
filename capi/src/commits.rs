//! Commits: route changes queued in a batch and applied at one version, all or nothing
//! (`rtm::Batch`, `rtm::RouteTable::commit`): `rtm_batch_create`, `rtm_batch_add_route`,
//! `rtm_batch_delete_route`, `rtm_batch_withdraw_route`, `rtm_batch_commit`,
//! `rtm_batch_destroy`.

use rtm::{Batch, Error, Ipv4Net, Ipv6Net};

use crate::batches::{self, on_batch, AnyBatch};
use crate::convert::{key_in, route_in};
use crate::ffi::{ffi, out_ptr, read_in, token, write_out};
use crate::registry::{self, AnyTable};
use crate::types::{rtm_batch, rtm_route, rtm_table};

/// Creates an empty batch of `family` (4 or 6) and stores it in `*out`.
///
/// Returns `RTM_ERROR_INVALID_PARAMETER` if `out` is NULL or `family` is not 4 or 6.
///
/// A batch belongs to the library from here until `rtm_batch_commit` or
/// `rtm_batch_destroy`, whichever comes first: the caller must end every batch it creates
/// with exactly one of them (a batch that is never ended stays allocated). A batch borrows
/// no table: it may be built on one thread and committed on another, to any table of its
/// family. One call at a time uses a batch: a call that finds another thread's call using
/// it returns `RTM_ERROR_BUSY` at once instead of waiting.
///
/// ```c
/// rtm_batch *batch;
/// uint32_t rc = rtm_batch_create(4, &batch);
/// if (rc != RTM_NO_ERROR) return rc;
/// ```
///
/// # Safety
/// `out` must be NULL or valid for writing an `rtm_batch *`.
#[no_mangle]
pub unsafe extern "C" fn rtm_batch_create(family: u8, out: *mut *mut rtm_batch) -> u32 {
    ffi(|| {
        let out = out_ptr(out)?;
        let batch = match family {
            4 => AnyBatch::V4(Batch::<Ipv4Net, u64>::new()),
            6 => AnyBatch::V6(Batch::<Ipv6Net, u64>::new()),
            _ => return Err(Error::InvalidParameter),
        };
        let token = batches::register(batch);
        // SAFETY: checked non-NULL; valid for writes by the caller's contract.
        unsafe { write_out(out, std::ptr::without_provenance_mut(token as usize)) };
        Ok(())
    })
}

/// Queues the insert of `*route` into the batch, or the replace of the route with the same
/// key (as `rtm_add_route` does, at the commit). A batch's changes to one key apply in the
/// order they were queued: of two adds, the last wins; an add after a delete re-adds.
///
/// Returns `RTM_ERROR_INVALID_PARAMETER` if `batch` or `route` is NULL, or the route is
/// malformed as `rtm_add_route` checks it (its family is not the batch's, its prefix length
/// is beyond the family's width, or its network has host bits set): the batch is then
/// unchanged. `RTM_ERROR_INVALID_HANDLE` if `batch` is not a live batch (committed,
/// destroyed, or never created), `RTM_ERROR_BUSY` if another thread's call is using it.
///
/// The library copies `*route`; the caller keeps it.
///
/// # Safety
/// `route` must be NULL or valid for reading an `rtm_route`.
#[no_mangle]
pub unsafe extern "C" fn rtm_batch_add_route(
    batch: *mut rtm_batch,
    route: *const rtm_route,
) -> u32 {
    ffi(|| {
        let b = token(batch)?;
        // SAFETY: the caller's contract on `route`.
        let r = unsafe { read_in(route) }?;
        batches::with_batch(b, |batch| {
            on_batch!(batch, b => {
                b.add_route(route_in(&r)?);
            });
            Ok(())
        })
    })
}

/// Queues the delete of the route with the key of `*route` (network, prefix_len, protocol,
/// interface_id, next_hop; the other fields are ignored). The route must be live when the
/// batch commits, after the batch's earlier changes: otherwise the whole commit fails with
/// `RTM_ERROR_NO_MORE_ROUTES` and applies nothing. To delete a route whether or not it is
/// there, use `rtm_batch_withdraw_route`.
///
/// Errors as `rtm_batch_add_route`.
///
/// # Safety
/// `route` must be NULL or valid for reading an `rtm_route`.
#[no_mangle]
pub unsafe extern "C" fn rtm_batch_delete_route(
    batch: *mut rtm_batch,
    route: *const rtm_route,
) -> u32 {
    ffi(|| {
        let b = token(batch)?;
        // SAFETY: the caller's contract on `route`.
        let r = unsafe { read_in(route) }?;
        batches::with_batch(b, |batch| {
            on_batch!(batch, b => {
                b.delete_route(key_in(&r)?);
            });
            Ok(())
        })
    })
}

/// Queues the withdrawal of the route with the key of `*route`: at the commit it is deleted
/// if it is live, and nothing happens otherwise (a BGP withdraw of a route that may not be
/// there). The other fields are ignored.
///
/// Errors as `rtm_batch_add_route`.
///
/// # Safety
/// `route` must be NULL or valid for reading an `rtm_route`.
#[no_mangle]
pub unsafe extern "C" fn rtm_batch_withdraw_route(
    batch: *mut rtm_batch,
    route: *const rtm_route,
) -> u32 {
    ffi(|| {
        let b = token(batch)?;
        // SAFETY: the caller's contract on `route`.
        let r = unsafe { read_in(route) }?;
        batches::with_batch(b, |batch| {
            on_batch!(batch, b => {
                b.withdraw_route(key_in(&r)?);
            });
            Ok(())
        })
    })
}

/// Applies the batch's changes to the table, in the order they were queued, as one commit,
/// and stores its version in `*version` if it is not NULL: every reader (a lookup, an
/// enumeration handle, a feed, a Fib after its sync) sees the table before the batch or
/// after it, never in between, and a feed reports the batch's changes together. The
/// version equals `rtm_stats::version` right after the commit (if nothing else wrote
/// meanwhile). A batch whose changes change nothing (an empty one, say) commits nothing
/// and returns the table's current version.
///
/// The call takes the batch in every case: whatever it returns, the batch is freed and
/// `batch` is invalid from then on (`RTM_ERROR_INVALID_HANDLE` everywhere, including a
/// second commit or a destroy).
///
/// Returns, with nothing of the batch applied (no reader or feed sees any of it; the
/// table's `rtm_stats::version` may still move on, as a failed commit is recorded):
/// * `RTM_ERROR_INVALID_PARAMETER` if `batch` or `table` is NULL (a NULL table frees the
///   batch too), or the batch's family is not the table's;
/// * `RTM_ERROR_NO_MORE_ROUTES` if a change queued by `rtm_batch_delete_route` names a
///   route that is not live at the commit;
/// * `RTM_ERROR_INVALID_HANDLE` if `batch` is not a live batch (nothing is freed then) or
///   `table` is not a live table;
/// * `RTM_ERROR_BUSY` if another thread's call is using the batch at this moment (the
///   batch is freed when that call returns).
///
/// Lock-free: readers and single writers never wait for a commit; a commit that meets
/// concurrent writers of the same keys tries again, so the call may take longer, but it
/// never leaves the table half changed.
///
/// A withdraw and an announce as one step: readers see the old /8 or the new /9, never a
/// table with neither.
///
/// ```c
/// rtm_route old = {.family = 4, .prefix_len = 8, .network = {10},
///                  .next_hop = {192, 0, 2, 1}, .protocol = 14, .interface_id = 1};
/// rtm_route repl = old;
/// repl.prefix_len = 9;
/// repl.enabled = 1;
/// repl.value = 8; // the next-hop id
/// rtm_batch *batch;
/// uint64_t version;
/// uint32_t rc = rtm_batch_create(4, &batch);
/// if (rc != RTM_NO_ERROR) return rc;
/// if ((rc = rtm_batch_withdraw_route(batch, &old)) != RTM_NO_ERROR ||
///     (rc = rtm_batch_add_route(batch, &repl)) != RTM_NO_ERROR) {
///     rtm_batch_destroy(batch);
///     return rc;
/// }
/// rc = rtm_batch_commit(table, batch, &version); // batch is gone, whatever rc says
/// ```
///
/// # Safety
/// `version` must be NULL or valid for writing a `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn rtm_batch_commit(
    table: *mut rtm_table,
    batch: *mut rtm_batch,
    version: *mut u64,
) -> u32 {
    ffi(|| {
        // The batch is ours from here on: it is dropped on every way out of this call.
        let batch = batches::take(token(batch)?)?;
        let t = token(table)?;
        let v = registry::with_table(t, |e| match (&e.table, batch) {
            (AnyTable::V4(t), AnyBatch::V4(b)) => t.commit(b),
            (AnyTable::V6(t), AnyBatch::V6(b)) => t.commit(b),
            _ => Err(Error::InvalidParameter),
        })?;
        if !version.is_null() {
            // SAFETY: non-NULL; valid for writes by the caller's contract.
            unsafe { write_out(version, v.0) };
        }
        Ok(())
    })
}

/// Discards a batch that was not committed, and frees it.
///
/// Returns `RTM_ERROR_INVALID_PARAMETER` for NULL and `RTM_ERROR_INVALID_HANDLE` for a
/// value that is not a live batch (already committed or destroyed, or never created): batch
/// pointers are checked tokens, so ending a batch twice is an error, not undefined
/// behaviour. A call that another thread is making on the batch at this moment finishes on
/// it, and the batch is freed when it returns; every call that starts after this one
/// returned gets `RTM_ERROR_INVALID_HANDLE`.
///
/// # Safety
/// None beyond the types: any pointer value may be passed.
#[no_mangle]
pub unsafe extern "C" fn rtm_batch_destroy(batch: *mut rtm_batch) -> u32 {
    ffi(|| {
        match batches::take(token(batch)?) {
            // Busy: gone from the registry all the same; the other call frees it.
            Ok(_) | Err(Error::Busy) => Ok(()),
            Err(e) => Err(e),
        }
    })
}

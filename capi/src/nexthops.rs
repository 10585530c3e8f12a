//! Next-hop groups for C ([`rtm::NexthopGroups`] of `uint32_t` next-hop ids):
//! `rtm_nexthop_groups_create`, `rtm_nexthop_groups_destroy`, `rtm_nexthop_group_intern`,
//! `rtm_nexthop_group_release`, `rtm_nexthop_group_select`, `rtm_nexthop_group_members`,
//! `rtm_nexthop_set_down`, `rtm_nexthop_is_down`.
//!
//! A groups object is registered as tables are (`registry`): its `rtm_nexthop_groups *`
//! value is a token from the same never-reused counter as table tokens, so no value names
//! both a table and a groups object, and a destroyed object's token stays invalid.

use std::ptr;

use rtm::Error;

use crate::ffi::{ffi, out_ptr, write_out};
use crate::registry;
use crate::types::rtm_nexthop_groups;

/// The token of a groups pointer: `InvalidParameter` for NULL.
fn groups_token(groups: *mut rtm_nexthop_groups) -> Result<u64, Error> {
    if groups.is_null() {
        Err(Error::InvalidParameter)
    } else {
        Ok(groups.addr() as u64)
    }
}

/// Creates an empty set of next-hop groups and stores it in `*out`. Groups are
/// deduplicated sets of next-hop ids (the embedder's `uint32_t` numbers, as a Fib's
/// next-hop ids are), named by small group ids; a forwarding engine points each network
/// at a group id and picks a next hop per flow with `rtm_nexthop_group_select`.
///
/// Returns `RTM_ERROR_INVALID_PARAMETER` if `out` is NULL.
///
/// The object belongs to the library until `rtm_nexthop_groups_destroy`; it may be used
/// from any number of threads at once.
///
/// ```c
/// rtm_nexthop_groups *groups;
/// uint32_t hops[] = {7, 9}, group, hop;
/// rtm_nexthop_groups_create(&groups);
/// rtm_nexthop_group_intern(groups, hops, 2, &group);
/// if (rtm_nexthop_group_select(groups, group, flow_hash, &hop) == RTM_NO_ERROR)
///     send_via(hop);
/// rtm_nexthop_groups_destroy(groups);
/// ```
///
/// # Safety
/// `out` must be NULL or valid for writing an `rtm_nexthop_groups *`.
#[no_mangle]
pub unsafe extern "C" fn rtm_nexthop_groups_create(out: *mut *mut rtm_nexthop_groups) -> u32 {
    ffi(|| {
        let out = out_ptr(out)?;
        let token = registry::register_groups();
        // SAFETY: checked non-NULL; valid for writes by the caller's contract.
        unsafe { write_out(out, ptr::without_provenance_mut(token as usize)) };
        Ok(())
    })
}

/// Destroys a groups object: it leaves the registry at once (every later call with it
/// returns `RTM_ERROR_INVALID_HANDLE`) and is freed when the last call in flight on it
/// returns.
///
/// Returns `RTM_ERROR_INVALID_PARAMETER` for NULL and `RTM_ERROR_INVALID_HANDLE` for a
/// value that is not a live groups object (already destroyed, never created, or a table).
///
/// # Safety
/// None: any pointer value may be passed.
#[no_mangle]
pub unsafe extern "C" fn rtm_nexthop_groups_destroy(groups: *mut rtm_nexthop_groups) -> u32 {
    ffi(|| registry::unregister_groups(groups_token(groups)?))
}

/// Stores in `*group_id` the id of the live group whose members are exactly the `count`
/// next-hop ids at `next_hops` (order and duplicates do not matter), creating the group if
/// none is live, and takes one reference on it (give it back with
/// `rtm_nexthop_group_release`). A new group starts with the next hops marked down
/// (`rtm_nexthop_set_down`) down. Group ids are small integers, lowest free first, reused
/// after the last release.
///
/// Returns `RTM_ERROR_INVALID_PARAMETER` if `count` is 0, `next_hops` or `group_id` is
/// NULL, or there are more than 65,536 distinct next hops; `RTM_ERROR_INVALID_HANDLE` if
/// `groups` is not a live groups object; `RTM_ERROR_NO_SYSTEM_RESOURCES` if every group id
/// (16,777,152) is live.
///
/// # Safety
/// `next_hops` must be NULL or valid for reading `count` `uint32_t`s; `group_id` NULL or
/// valid for writing a `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn rtm_nexthop_group_intern(
    groups: *mut rtm_nexthop_groups,
    next_hops: *const u32,
    count: u32,
    group_id: *mut u32,
) -> u32 {
    ffi(|| {
        let t = groups_token(groups)?;
        let group_id = out_ptr(group_id)?;
        if next_hops.is_null() || count == 0 {
            return Err(Error::InvalidParameter);
        }
        let mut hops = Vec::with_capacity(count as usize);
        for i in 0..count as usize {
            // SAFETY: non-NULL and valid for `count` elements by the caller's contract,
            // and i < count; read unaligned, so no alignment is required.
            hops.push(unsafe { ptr::read_unaligned(next_hops.add(i)) });
        }
        let id = registry::with_groups(t, |g| g.intern(&hops))?;
        // SAFETY: checked non-NULL; valid for writes by the caller's contract.
        unsafe { write_out(group_id, id) };
        Ok(())
    })
}

/// Gives back one reference on group `group_id`; after the last one the group is gone and
/// its id may be reused by a later intern.
///
/// Returns `RTM_ERROR_INVALID_PARAMETER` if `group_id` is not a live group, and
/// `RTM_ERROR_INVALID_HANDLE` if `groups` is not a live groups object.
///
/// # Safety
/// None: any values may be passed.
#[no_mangle]
pub unsafe extern "C" fn rtm_nexthop_group_release(
    groups: *mut rtm_nexthop_groups,
    group_id: u32,
) -> u32 {
    ffi(|| registry::with_groups(groups_token(groups)?, |g| g.release(group_id)))
}

/// Stores in `*next_hop` the next hop of group `group_id` that carries the flow
/// `flow_hash` (a hash of the packet's 5-tuple, say). Takes no lock, allocates nothing and
/// never waits for a writer. The same flow gets the same next hop while the group's up
/// members stay the same; when a next hop goes down only its flows move, and when it comes
/// back only flows move to it (resilient hashing over 256 buckets, more for groups of more
/// than 64 next hops). Never a next hop marked down by an `rtm_nexthop_set_down` that
/// returned before this call started.
///
/// Returns `RTM_ERROR_NO_MORE_ROUTES` if every member of the group is down or `group_id`
/// is not a live group, `RTM_ERROR_INVALID_PARAMETER` if `next_hop` is NULL,
/// `RTM_ERROR_INVALID_HANDLE` if `groups` is not a live groups object.
///
/// # Safety
/// `next_hop` must be NULL or valid for writing a `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn rtm_nexthop_group_select(
    groups: *mut rtm_nexthop_groups,
    group_id: u32,
    flow_hash: u64,
    next_hop: *mut u32,
) -> u32 {
    ffi(|| {
        let t = groups_token(groups)?;
        let next_hop = out_ptr(next_hop)?;
        let hop = registry::with_groups(t, |g| Ok(g.select(group_id, flow_hash)))?
            .ok_or(Error::NoMoreRoutes)?;
        // SAFETY: checked non-NULL; valid for writes by the caller's contract.
        unsafe { write_out(next_hop, hop) };
        Ok(())
    })
}

/// Copies the members of group `group_id` (each once, in a fixed order) into `out`, up to
/// `capacity` of them, and stores their total number in `*count` (which may exceed
/// `capacity`: call again with a larger buffer). `out` may be NULL when `capacity` is 0.
///
/// Returns `RTM_ERROR_INVALID_PARAMETER` if `count` is NULL, `out` is NULL with a nonzero
/// `capacity`, or `group_id` is not a live group; `RTM_ERROR_INVALID_HANDLE` if `groups`
/// is not a live groups object.
///
/// # Safety
/// `out` must be NULL or valid for writing `capacity` `uint32_t`s; `count` NULL or valid
/// for writing a `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn rtm_nexthop_group_members(
    groups: *mut rtm_nexthop_groups,
    group_id: u32,
    out: *mut u32,
    capacity: u32,
    count: *mut u32,
) -> u32 {
    ffi(|| {
        let t = groups_token(groups)?;
        let count = out_ptr(count)?;
        if out.is_null() && capacity > 0 {
            return Err(Error::InvalidParameter);
        }
        let members = registry::with_groups(t, |g| Ok(g.members(group_id)))?
            .ok_or(Error::InvalidParameter)?;
        for (i, &m) in members.iter().take(capacity as usize).enumerate() {
            // SAFETY: `out` is valid for `capacity` elements by the caller's contract
            // (non-NULL when capacity > 0), and i < capacity.
            unsafe { write_out(out.add(i), m) };
        }
        // SAFETY: checked non-NULL; valid for writes by the caller's contract.
        unsafe { write_out(count, u32::try_from(members.len()).unwrap_or(u32::MAX)) };
        Ok(())
    })
}

/// Marks next hop `next_hop` down (`down` nonzero) or up again (`down` 0) in every live
/// group that holds it, each group in one atomic step, and stores in `*changed` (if not
/// NULL) how many groups changed: 0 if it was already so marked. The mark is kept per next
/// hop: groups interned later while it is down start with it down. Every network using
/// those groups is repointed at once, with no write to any table or Fib.
///
/// Returns `RTM_ERROR_INVALID_HANDLE` if `groups` is not a live groups object.
///
/// # Safety
/// `changed` must be NULL or valid for writing a `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn rtm_nexthop_set_down(
    groups: *mut rtm_nexthop_groups,
    next_hop: u32,
    down: u8,
    changed: *mut u32,
) -> u32 {
    ffi(|| {
        let t = groups_token(groups)?;
        let n = registry::with_groups(t, |g| Ok(g.set_down(&next_hop, down != 0)))?;
        if !changed.is_null() {
            // SAFETY: non-NULL; valid for writes by the caller's contract.
            unsafe { write_out(changed, u32::try_from(n).unwrap_or(u32::MAX)) };
        }
        Ok(())
    })
}

/// Stores in `*down` 1 if next hop `next_hop` is marked down, else 0.
///
/// Returns `RTM_ERROR_INVALID_PARAMETER` if `down` is NULL, `RTM_ERROR_INVALID_HANDLE` if
/// `groups` is not a live groups object.
///
/// # Safety
/// `down` must be NULL or valid for writing a `uint8_t`.
#[no_mangle]
pub unsafe extern "C" fn rtm_nexthop_is_down(
    groups: *mut rtm_nexthop_groups,
    next_hop: u32,
    down: *mut u8,
) -> u32 {
    ffi(|| {
        let t = groups_token(groups)?;
        let down = out_ptr(down)?;
        let d = registry::with_groups(t, |g| Ok(g.is_down(&next_hop)))?;
        // SAFETY: checked non-NULL; valid for writes by the caller's contract.
        unsafe { write_out(down, u8::from(d)) };
        Ok(())
    })
}

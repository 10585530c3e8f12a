//! The C ABI of [`rtm`]: RTMv1-style routing tables, routes and enumeration handles for
//! forwarding engines written in C. The header is `capi/include/rtm.h`, generated from this
//! crate's modules by cbindgen; `capi/README.md` shows how to build and link.
//!
//! Every function returns a Win32 code (`uint32_t`): [`RTM_NO_ERROR`] or one of the
//! `RTM_ERROR_*` values, which are [`rtm::Error::code`] of the crate's errors. Every input
//! is checked: NULL and malformed arguments are [`RTM_ERROR_INVALID_PARAMETER`], unknown,
//! destroyed, closed or stale tables, batches and handles are
//! [`RTM_ERROR_INVALID_HANDLE`], and no panic crosses the boundary ([`RTM_ERROR_INTERNAL`]
//! if one ever happens).
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

// The modules of the entry points, in the order of their declarations in include/rtm.h:
// cbindgen reads the modules in the order they are declared, so moving a line here
// reorders the header (tests/header.rs catches it). A comment between two lines keeps
// rustfmt from sorting them.
// Return codes and flags.
mod codes;
// The C types.
mod types;
// Create and destroy.
mod tables;
// Add, delete, get, best.
mod routes;
// Longest-prefix match.
mod lookup;
// Counters and reclamation.
mod stats;
// Enumeration handles.
mod enumeration;
// Block delete and enable.
mod block;
// Batches that commit at one version.
mod commits;
// Route change messages.
mod messages;
// Fibs.
mod forwarding;
// Next-hop groups.
mod nexthops;

// The layers under the entry points, which declare nothing for C.
mod batches;
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
pub use types::{
    rtm_batch, rtm_feed, rtm_fib, rtm_handle, rtm_nexthop_groups, rtm_route, rtm_stats, rtm_table,
};

pub use block::{rtm_block_delete_routes, rtm_block_set_route_enable};
pub use commits::{
    rtm_batch_add_route, rtm_batch_commit, rtm_batch_create, rtm_batch_delete_route,
    rtm_batch_destroy, rtm_batch_withdraw_route,
};
pub use enumeration::{
    rtm_close_enumeration_handle, rtm_create_enumeration_handle, rtm_enumerate_get_next_route,
    rtm_enumerate_get_next_routes,
};
pub use forwarding::{
    rtm_fib_create, rtm_fib_destroy, rtm_fib_lookup, rtm_fib_lookup_batch, rtm_fib_sync,
};
pub use lookup::{rtm_lookup, rtm_lookup_len};
pub use messages::{rtm_dequeue_route_change_message, rtm_feed_close, rtm_feed_open};
pub use nexthops::{
    rtm_nexthop_group_intern, rtm_nexthop_group_members, rtm_nexthop_group_release,
    rtm_nexthop_group_select, rtm_nexthop_groups_create, rtm_nexthop_groups_destroy,
    rtm_nexthop_is_down, rtm_nexthop_set_down,
};
pub use routes::{rtm_add_route, rtm_best_route, rtm_delete_route, rtm_get_route};
pub use stats::{rtm_collect, rtm_route_count, rtm_table_stats};
pub use tables::{rtm_table_create, rtm_table_create_ex, rtm_table_destroy};

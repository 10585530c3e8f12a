//! The numbers of the C ABI: the Win32 codes every function returns, the enumeration
//! flags, and the flags of route change messages. The error codes are the values of
//! [`rtm::Error::code`]; `RTM_ERROR_INTERNAL` is the boundary's own, for a caught panic.

/// Success.
pub const RTM_NO_ERROR: u32 = 0u32;
/// The table, the batch or the enumeration handle is unknown, destroyed, committed, closed,
/// stale or forged (`ERROR_INVALID_HANDLE`).
pub const RTM_ERROR_INVALID_HANDLE: u32 = 6u32;
/// A NULL pointer where a value is needed, a family other than 4 or 6 or not the table's, a
/// prefix length beyond the family's width, a prefix with host bits set, unknown flag bits,
/// or a count of 0 (`ERROR_INVALID_PARAMETER`).
pub const RTM_ERROR_INVALID_PARAMETER: u32 = 87u32;
/// Another thread's call is using this enumeration handle or batch; it stays valid (except
/// for a batch passed to `rtm_batch_commit`, which is taken anyway), try again
/// (`ERROR_BUSY`).
pub const RTM_ERROR_BUSY: u32 = 170u32;
/// The enumeration is exhausted, the route to delete is absent (for a batch's delete: at
/// its commit), or a lookup found nothing (`ERROR_NO_MORE_ITEMS`).
pub const RTM_ERROR_NO_MORE_ROUTES: u32 = 259u32;
/// A failure inside the library, caught at the boundary instead of crossing into C
/// (`ERROR_INTERNAL_ERROR`). It indicates a bug in the library; the process may go on.
pub const RTM_ERROR_INTERNAL: u32 = 1359u32;
/// Every enumeration slot of the table is in use (handles and feeds share them), or the
/// table cannot open handles (`ERROR_NO_SYSTEM_RESOURCES`).
pub const RTM_ERROR_NO_SYSTEM_RESOURCES: u32 = 1450u32;

/// Enumerate only routes to exactly the criteria's network (RTMv1).
pub const RTM_ONLY_THIS_NETWORK: u32 = 0x00000001u32;
/// Enumerate only routes through the criteria's `interface_id` (RTMv1).
pub const RTM_ONLY_THIS_INTERFACE: u32 = 0x00000002u32;
/// Enumerate only routes of the criteria's `protocol` (RTMv1).
pub const RTM_ONLY_THIS_PROTOCOL: u32 = 0x00000004u32;
/// Enumerate only the best route of each network, as of the snapshot: best among all the
/// network's routes, then filtered by the other flags (RTMv1).
pub const RTM_ONLY_BEST_ROUTES: u32 = 0x00000008u32;
/// Enumerate disabled routes too (RTMv1; 0x40000000).
pub const RTM_INCLUDE_DISABLED_ROUTES: u32 = 0x40000000u32;
/// Extension: enumerate only the criteria's network and every more-specific network in it
/// (RTMv2's range enumeration).
pub const RTM_ONLY_WITHIN_NETWORK: u32 = 0x00000100u32;
/// Extension: resume strictly after the criteria's route key (network, protocol,
/// interface_id, next_hop), as RTMv2's enumeration resume does.
pub const RTM_START_AFTER_ROUTE: u32 = 0x00000200u32;

/// A route change message was returned and more are ready (RTMv1's `ERROR_MORE_MESSAGES`,
/// `ERROR_MORE_DATA`).
pub const RTM_ERROR_MORE_MESSAGES: u32 = 234u32;
/// No route change message is ready (RTMv1's `ERROR_NO_MESSAGES`, `ERROR_NO_MORE_ITEMS`).
pub const RTM_ERROR_NO_MESSAGES: u32 = 259u32;
/// The feed fell further behind than the table's journal holds and lost changes; it is
/// dead from then on: close it and open another (`ERROR_CONNECTION_ABORTED`).
pub const RTM_ERROR_FEED_LAGGED: u32 = 1236u32;

/// A change message carries the network's current best route (RTMv1).
pub const RTM_CURRENT_BEST_ROUTE: u32 = 0x00000001u32;
/// A change message carries the network's previous best route (RTMv1).
pub const RTM_PREVIOUS_BEST_ROUTE: u32 = 0x00000002u32;
/// No change (RTMv1).
pub const RTM_NO_CHANGE: u32 = 0u32;
/// A network got a best route: `RTM_CURRENT_BEST_ROUTE` only (RTMv1).
pub const RTM_ROUTE_ADDED: u32 = 0x00000001u32;
/// A network lost its best route: `RTM_PREVIOUS_BEST_ROUTE` only (RTMv1).
pub const RTM_ROUTE_DELETED: u32 = 0x00000002u32;
/// A network's best route changed: both (RTMv1's
/// `RTM_CURRENT_BEST_ROUTE | RTM_PREVIOUS_BEST_ROUTE`).
pub const RTM_ROUTE_CHANGED: u32 = 0x00000003u32;

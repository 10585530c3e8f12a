//! The C types: the opaque table and batch, the 64-bit handle values (and how feed and Fib values
//! pack their table's token), and the `#[repr(C)]` structs of routes and counters.

use rtm::Error;

/// An opaque table. The `rtm_table *` values the library hands out are tokens, not
/// addresses: never dereference one. A token is never reused in the process, so a
/// destroyed table's token stays invalid (`RTM_ERROR_INVALID_HANDLE`) forever.
pub struct rtm_table {
    _opaque: [u8; 0],
}

/// An opaque set of next-hop groups. As table pointers, the `rtm_nexthop_groups *`
/// values are tokens, not addresses (never dereference one), never reused in the process
/// and never equal to a table's.
pub struct rtm_nexthop_groups {
    _opaque: [u8; 0],
}

/// An opaque batch of route changes that commit together, at one version. Like tables,
/// the `rtm_batch *` values the library hands out are tokens, not addresses: never
/// dereference one. A token is never reused in the process (and is never a table's), so a
/// committed or destroyed batch's token stays invalid (`RTM_ERROR_INVALID_HANDLE`) forever.
pub struct rtm_batch {
    _opaque: [u8; 0],
}

/// An enumeration handle: any 64-bit value may be passed; only the values that
/// `rtm_create_enumeration_handle` returned, until closed, name an enumeration.
pub type rtm_handle = u64;

/// A feed of best-route changes: the table's token in the high 32 bits and a serial in
/// the low 32. Any 64-bit value may be passed; only the values that `rtm_feed_open`
/// returned, until closed (or their table destroyed), name a feed.
pub type rtm_feed = u64;

/// A Fib (a read-optimized longest-prefix-match table of next-hop ids that follows a
/// table): the table's token in the high 32 bits and a serial in the low 32. Any 64-bit
/// value may be passed; only the values that `rtm_fib_create` returned, until destroyed
/// (or their table destroyed), name a Fib.
pub type rtm_fib = u64;

/// A route. The key of a route is (network/prefix_len, protocol, interface_id, next_hop);
/// adding a route with the key of a route in the table replaces it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct rtm_route {
    /// 4 or 6.
    pub family: u8,
    /// The network's prefix length: at most 32 (IPv4) or 128 (IPv6).
    pub prefix_len: u8,
    /// 0 is disabled, anything else enabled; returned as 0 or 1.
    pub enabled: u8,
    /// The network address in network byte order, no host bits set. IPv4 uses the first 4
    /// bytes: the others are ignored on input and zero on output.
    pub network: [u8; 16],
    /// The next-hop address, as `network`.
    pub next_hop: [u8; 16],
    /// The protocol that owns the route.
    pub protocol: u32,
    /// The outgoing interface.
    pub interface_id: u32,
    /// Preference between protocols: lower wins.
    pub priority: u32,
    /// Preference within a protocol: lower wins.
    pub metric: u32,
    /// The embedder's payload (an index into its own next-hop or attribute table, say).
    pub value: u64,
}

/// A table's counters.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct rtm_stats {
    /// Live routes, disabled ones included.
    pub live_routes: u64,
    /// Networks with at least one live route.
    pub networks: u64,
    /// Replaced or deleted route values still retained; right after `rtm_collect`,
    /// exactly those that an open enumeration can still see.
    pub dead_versions: u64,
    /// Enumeration handles not yet closed.
    pub open_enumerations: u64,
    /// The newest committed version: every change of the table increments it.
    pub version: u64,
    /// The table's limit of open enumerations.
    pub max_enumerations: u32,
    /// 4 or 6.
    pub family: u8,
}

/// Splits a feed or Fib value into its table token and serial.
pub(crate) fn split(v: u64) -> (u64, u32) {
    (v >> 32, v as u32)
}

/// Joins a table token and a serial into a feed or Fib value.
pub(crate) fn join(token: u64, serial: u32) -> Result<u64, Error> {
    let token = u32::try_from(token).map_err(|_| Error::NoSystemResources)?;
    Ok(u64::from(token) << 32 | u64::from(serial))
}

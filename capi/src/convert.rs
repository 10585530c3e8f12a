//! Conversions between the C structs and the crate's types, with every check the C
//! contract promises: family, prefix length, host bits, flag bits.

use std::net::{Ipv4Addr, Ipv6Addr};

use rtm::{Criteria, Error, InterfaceId, Ipv4Net, Ipv6Net, Prefix, ProtocolId, Route, RouteKey};

use crate::codes::{
    RTM_INCLUDE_DISABLED_ROUTES, RTM_ONLY_BEST_ROUTES, RTM_ONLY_THIS_INTERFACE,
    RTM_ONLY_THIS_NETWORK, RTM_ONLY_THIS_PROTOCOL, RTM_ONLY_WITHIN_NETWORK, RTM_START_AFTER_ROUTE,
};
use crate::types::rtm_route;

/// Every enumeration flag the library knows; any other bit is `InvalidParameter`.
pub(crate) const KNOWN_FLAGS: u32 = RTM_ONLY_THIS_NETWORK
    | RTM_ONLY_THIS_INTERFACE
    | RTM_ONLY_THIS_PROTOCOL
    | RTM_ONLY_BEST_ROUTES
    | RTM_INCLUDE_DISABLED_ROUTES
    | RTM_ONLY_WITHIN_NETWORK
    | RTM_START_AFTER_ROUTE;

/// The flags that read the criteria route (the others are plain switches).
const FLAGS_READING_CRITERIA: u32 = RTM_ONLY_THIS_NETWORK
    | RTM_ONLY_THIS_INTERFACE
    | RTM_ONLY_THIS_PROTOCOL
    | RTM_ONLY_WITHIN_NETWORK
    | RTM_START_AFTER_ROUTE;

/// A prefix family as the C side names it: its family byte and the conversions of its
/// addresses from and to the 16-byte arrays of [`rtm_route`].
pub(crate) trait Family: Prefix {
    /// 4 or 6.
    const FAMILY: u8;
    /// The prefix from a family byte, address bytes and a length: `InvalidParameter` for
    /// another family, a length beyond the width, or host bits set.
    fn prefix(family: u8, network: &[u8; 16], len: u8) -> Result<Self, Error>;
    /// The address in the first 4 (IPv4) or 16 (IPv6) bytes.
    fn addr_in(bytes: &[u8]) -> Self::Addr;
    /// The address as 16 bytes, zero after the family's width.
    fn addr_out(addr: Self::Addr) -> [u8; 16];
    /// The network address bytes and the length.
    fn parts(self) -> ([u8; 16], u8);
    /// How many bytes of an address a lookup reads.
    const ADDR_LEN: usize;
}

impl Family for Ipv4Net {
    const FAMILY: u8 = 4;
    const ADDR_LEN: usize = 4;

    fn prefix(family: u8, network: &[u8; 16], len: u8) -> Result<Self, Error> {
        if family != Self::FAMILY {
            return Err(Error::InvalidParameter);
        }
        let addr = Self::addr_in(network);
        let net = Ipv4Net::new(addr, len).map_err(|_| Error::InvalidParameter)?;
        if net.network() != addr {
            return Err(Error::InvalidParameter);
        }
        Ok(net)
    }

    fn addr_in(bytes: &[u8]) -> Ipv4Addr {
        Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])
    }

    fn addr_out(addr: Ipv4Addr) -> [u8; 16] {
        let mut b = [0; 16];
        b[..4].copy_from_slice(&addr.octets());
        b
    }

    fn parts(self) -> ([u8; 16], u8) {
        (Self::addr_out(self.addr()), self.prefix_len())
    }
}

impl Family for Ipv6Net {
    const FAMILY: u8 = 6;
    const ADDR_LEN: usize = 16;

    fn prefix(family: u8, network: &[u8; 16], len: u8) -> Result<Self, Error> {
        if family != Self::FAMILY {
            return Err(Error::InvalidParameter);
        }
        let addr = Ipv6Addr::from(*network);
        let net = Ipv6Net::new(addr, len).map_err(|_| Error::InvalidParameter)?;
        if net.network() != addr {
            return Err(Error::InvalidParameter);
        }
        Ok(net)
    }

    fn addr_in(bytes: &[u8]) -> Ipv6Addr {
        let mut b = [0; 16];
        b.copy_from_slice(&bytes[..16]);
        Ipv6Addr::from(b)
    }

    fn addr_out(addr: Ipv6Addr) -> [u8; 16] {
        addr.octets()
    }

    fn parts(self) -> ([u8; 16], u8) {
        (self.addr().octets(), self.prefix_len())
    }
}

/// The checked prefix of a C route.
pub(crate) fn prefix_in<P: Family>(r: &rtm_route) -> Result<P, Error> {
    if r.family != 4 && r.family != 6 {
        return Err(Error::InvalidParameter);
    }
    P::prefix(r.family, &r.network, r.prefix_len)
}

/// The key of a C route (network, protocol, interface, next hop).
pub(crate) fn key_in<P: Family>(r: &rtm_route) -> Result<RouteKey<P>, Error> {
    Ok(RouteKey::new(
        prefix_in(r)?,
        ProtocolId(r.protocol),
        InterfaceId(r.interface_id),
        P::addr_in(&r.next_hop),
    ))
}

/// The whole route of a C route.
pub(crate) fn route_in<P: Family>(r: &rtm_route) -> Result<Route<P, u64>, Error> {
    Ok(Route {
        key: key_in(r)?,
        priority: r.priority,
        metric: r.metric,
        enabled: r.enabled != 0,
        value: r.value,
    })
}

/// The C form of a route: addresses zero past the family's width, `enabled` 0 or 1.
pub(crate) fn route_out<P: Family>(r: &Route<P, u64>) -> rtm_route {
    let (network, prefix_len) = r.key.prefix.parts();
    rtm_route {
        family: P::FAMILY,
        prefix_len,
        enabled: u8::from(r.enabled),
        network,
        next_hop: P::addr_out(r.key.next_hop),
        protocol: r.key.protocol.0,
        interface_id: r.key.interface.0,
        priority: r.priority,
        metric: r.metric,
        value: r.value,
    }
}

/// The criteria that `flags` and the criteria route ask for. The route is read only when a
/// flag needs it, and then it must be a well-formed route of the table's family.
pub(crate) fn criteria_in<P: Family>(
    flags: u32,
    criteria: Option<&rtm_route>,
) -> Result<Criteria<P>, Error> {
    if flags & !KNOWN_FLAGS != 0 {
        return Err(Error::InvalidParameter);
    }
    let mut c = Criteria::all();
    if flags & RTM_ONLY_BEST_ROUTES != 0 {
        c = c.best_only();
    }
    if flags & RTM_INCLUDE_DISABLED_ROUTES != 0 {
        c = c.include_disabled();
    }
    if flags & FLAGS_READING_CRITERIA == 0 {
        return Ok(c);
    }
    let r = criteria.ok_or(Error::InvalidParameter)?;
    let key = key_in::<P>(r)?;
    if flags & RTM_ONLY_THIS_NETWORK != 0 {
        c = c.network(key.prefix);
    }
    if flags & RTM_ONLY_THIS_INTERFACE != 0 {
        c = c.interface(key.interface);
    }
    if flags & RTM_ONLY_THIS_PROTOCOL != 0 {
        c = c.protocol(key.protocol);
    }
    if flags & RTM_ONLY_WITHIN_NETWORK != 0 {
        c = c.within(key.prefix);
    }
    if flags & RTM_START_AFTER_ROUTE != 0 {
        c = c.start_after(key);
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(net: [u8; 4], len: u8) -> rtm_route {
        let mut r = rtm_route {
            family: 4,
            prefix_len: len,
            enabled: 7,
            network: [0; 16],
            next_hop: [0xff; 16],
            protocol: 1,
            interface_id: 2,
            priority: 3,
            metric: 4,
            value: 5,
        };
        r.network[..4].copy_from_slice(&net);
        r.network[4..].fill(0xaa); // ignored for IPv4
        r
    }

    #[test]
    fn ipv4_round_trip_zeroes_the_unused_bytes_and_normalizes_enabled() {
        let r = route_in::<Ipv4Net>(&v4([10, 1, 0, 0], 16)).unwrap();
        assert_eq!(r.key.prefix, "10.1.0.0/16".parse().unwrap());
        assert!(r.enabled);
        let out = route_out(&r);
        assert_eq!(out.enabled, 1);
        assert_eq!(&out.network[4..], &[0; 12]);
        assert_eq!(&out.next_hop[..4], &[0xff; 4]);
        assert_eq!(&out.next_hop[4..], &[0; 12]);
        assert_eq!(
            (
                out.protocol,
                out.interface_id,
                out.priority,
                out.metric,
                out.value
            ),
            (1, 2, 3, 4, 5)
        );
    }

    #[test]
    fn malformed_routes_are_invalid_parameter() {
        let bad = [
            v4([10, 1, 0, 0], 8),  // host bits
            v4([10, 0, 0, 0], 33), // beyond the width
            rtm_route {
                family: 6,
                ..v4([10, 0, 0, 0], 8)
            },
            rtm_route {
                family: 0,
                ..v4([10, 0, 0, 0], 8)
            },
        ];
        for r in bad {
            assert_eq!(
                route_in::<Ipv4Net>(&r),
                Err(Error::InvalidParameter),
                "{r:?}"
            );
        }
        let mut six = v4([0; 4], 129);
        six.family = 6;
        six.network = [0; 16];
        assert_eq!(route_in::<Ipv6Net>(&six), Err(Error::InvalidParameter));
        six.prefix_len = 128;
        assert!(route_in::<Ipv6Net>(&six).is_ok());
    }

    #[test]
    fn flags() {
        assert_eq!(
            criteria_in::<Ipv4Net>(0x10, None),
            Err(Error::InvalidParameter)
        );
        assert_eq!(
            criteria_in::<Ipv4Net>(RTM_ONLY_THIS_PROTOCOL, None),
            Err(Error::InvalidParameter)
        );
        assert_eq!(
            criteria_in::<Ipv4Net>(RTM_ONLY_BEST_ROUTES | RTM_INCLUDE_DISABLED_ROUTES, None),
            Ok(Criteria::all().best_only().include_disabled())
        );
        let r = v4([10, 0, 0, 0], 8);
        assert_eq!(
            criteria_in::<Ipv4Net>(RTM_ONLY_WITHIN_NETWORK | RTM_ONLY_THIS_PROTOCOL, Some(&r)),
            Ok(Criteria::all()
                .within("10.0.0.0/8".parse().unwrap())
                .protocol(ProtocolId(1)))
        );
    }
}

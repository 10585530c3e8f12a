//! Route identities, routes, and versions of the table.

use crate::prefix::sealed::AddrBits;
use crate::prefix::Prefix;

/// The routing protocol that owns a route (RTMv1's protocol family / id).
///
/// ```
/// let bgp = rtm::ProtocolId(14);
/// assert!(bgp > rtm::ProtocolId(2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ProtocolId(pub u32);

/// The interface a route leaves through.
///
/// ```
/// let eth0 = rtm::InterfaceId(1);
/// assert_eq!(eth0.0, 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct InterfaceId(pub u32);

/// The identity of a route, as in RTMv1: network, protocol, interface and next hop.
///
/// Its `Ord` is the enumeration order: prefix (address, then length), then protocol,
/// interface and next hop.
///
/// ```
/// use rtm::{InterfaceId, Ipv4Net, ProtocolId, RouteKey};
/// let a: RouteKey<Ipv4Net> = RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId(1), InterfaceId(1), "192.0.2.1".parse().unwrap());
/// let b = RouteKey { prefix: "10.0.0.0/16".parse().unwrap(), ..a };
/// assert!(a < b);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteKey<P: Prefix> {
    /// The destination network.
    pub prefix: P,
    /// The protocol that owns the route.
    pub protocol: ProtocolId,
    /// The outgoing interface.
    pub interface: InterfaceId,
    /// The next-hop address.
    pub next_hop: P::Addr,
}

impl<P: Prefix> RouteKey<P> {
    /// A key from its four parts.
    ///
    /// ```
    /// use rtm::{Ipv4Net, InterfaceId, ProtocolId, RouteKey};
    /// let k: RouteKey<Ipv4Net> = RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId(1), InterfaceId(2), "192.0.2.1".parse().unwrap());
    /// assert_eq!(k.interface, InterfaceId(2));
    /// ```
    pub fn new(prefix: P, protocol: ProtocolId, interface: InterfaceId, next_hop: P::Addr) -> Self {
        Self {
            prefix,
            protocol,
            interface,
            next_hop,
        }
    }

    /// The smallest key of network `prefix`.
    pub(crate) fn first_of(prefix: P) -> Self {
        Self::new(prefix, ProtocolId(0), InterfaceId(0), P::Addr::from_bits(0))
    }

    /// The largest key of network `prefix`.
    pub(crate) fn last_of(prefix: P) -> Self {
        Self::new(
            prefix,
            ProtocolId(u32::MAX),
            InterfaceId(u32::MAX),
            P::Addr::from_bits(u128::MAX),
        )
    }

    /// The smallest key strictly greater than `self`, if there is one.
    pub(crate) fn successor(&self) -> Option<Self> {
        let max_hop = crate::prefix::mask::<P>(P::MAX_LEN);
        let hop = self.next_hop.to_bits();
        if hop < max_hop {
            return Some(Self {
                next_hop: P::Addr::from_bits(hop + 1),
                ..*self
            });
        }
        if self.interface.0 < u32::MAX {
            return Some(Self {
                interface: InterfaceId(self.interface.0 + 1),
                next_hop: P::Addr::from_bits(0),
                ..*self
            });
        }
        if self.protocol.0 < u32::MAX {
            return Some(Self {
                protocol: ProtocolId(self.protocol.0 + 1),
                interface: InterfaceId(0),
                next_hop: P::Addr::from_bits(0),
                ..*self
            });
        }
        // The next prefix in (address, length) order: a longer one at the same address if
        // the address allows it, else the shortest one at the next address.
        let (bits, len) = (self.prefix.net_bits(), self.prefix.plen());
        let next = if len < P::MAX_LEN {
            Some((bits, len + 1))
        } else if bits < max_hop {
            let a = bits + 1;
            // the shortest canonical prefix at address `a` has length 128 - trailing zeros
            let tz = a.trailing_zeros().min(P::MAX_LEN as u32) as u8;
            Some((a, P::MAX_LEN - tz))
        } else {
            None
        }?;
        // (bits, len + 1) may have host bits set only if bits has them at len, which a
        // canonical `bits` never has.
        Some(Self::first_of(P::from_parts(next.0, next.1)))
    }
}

impl<P: Prefix> crate::skiplist::SkipKey for RouteKey<P> {
    #[inline]
    fn hint(&self) -> u64 {
        crate::prefix::sealed::Bits::order_hint(&self.prefix)
    }
}

/// A route as stored and as returned. Returned routes are clones (`V: Clone`).
///
/// ```
/// use rtm::{Route, RouteKey, ProtocolId, InterfaceId, Ipv4Net};
/// let key = RouteKey::new("10.0.0.0/8".parse::<Ipv4Net>().unwrap(), ProtocolId(1), InterfaceId(1), "192.0.2.1".parse().unwrap());
/// let r = Route { key, priority: 20, metric: 1, enabled: true, value: "via peer A" };
/// assert_eq!(r.clone(), r);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route<P: Prefix, V> {
    /// The identity of the route.
    pub key: RouteKey<P>,
    /// Preference between protocols: lower wins.
    pub priority: u32,
    /// Preference within a protocol: lower wins.
    pub metric: u32,
    /// Disabled routes are never best and are enumerated only on request.
    pub enabled: bool,
    /// The embedder's payload.
    pub value: V,
}

impl<P: Prefix, V> Route<P, V> {
    /// A route with the given key and value, priority and metric 0, enabled.
    ///
    /// ```
    /// use rtm::{Route, RouteKey, ProtocolId, InterfaceId, Ipv4Net};
    /// let key = RouteKey::new("10.0.0.0/8".parse::<Ipv4Net>().unwrap(), ProtocolId(1), InterfaceId(1), "192.0.2.1".parse().unwrap());
    /// let r = Route::new(key, 7u32);
    /// assert!(r.enabled && r.priority == 0 && r.value == 7);
    /// ```
    pub fn new(key: RouteKey<P>, value: V) -> Self {
        Self {
            key,
            priority: 0,
            metric: 0,
            enabled: true,
            value,
        }
    }
}

/// A point in the table's history. Every committed change gets a larger `Version`.
///
/// ```
/// let t = rtm::RouteTable::<rtm::Ipv4Net, u32>::new();
/// let before = t.version();
/// t.add_route(rtm::Route::new(rtm::RouteKey::new("10.0.0.0/8".parse().unwrap(), rtm::ProtocolId(1), rtm::InterfaceId(1), "192.0.2.1".parse().unwrap()), 1)).unwrap();
/// assert!(t.version() > before);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u64);

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::Ipv4Net;
    use std::net::Ipv4Addr;

    fn key(p: &str, proto: u32, ifc: u32, hop: u32) -> RouteKey<Ipv4Net> {
        RouteKey::new(
            p.parse().unwrap(),
            ProtocolId(proto),
            InterfaceId(ifc),
            Ipv4Addr::from(hop),
        )
    }

    #[test]
    fn successor_is_the_next_key() {
        let k = key("10.0.0.0/8", 1, 2, 3);
        assert_eq!(k.successor(), Some(key("10.0.0.0/8", 1, 2, 4)));
        let k = key("10.0.0.0/8", 1, 2, u32::MAX);
        assert_eq!(k.successor(), Some(key("10.0.0.0/8", 1, 3, 0)));
        let k = key("10.0.0.0/8", u32::MAX, u32::MAX, u32::MAX);
        assert_eq!(k.successor(), Some(key("10.0.0.0/9", 0, 0, 0)));
        let k = key("10.0.0.0/32", u32::MAX, u32::MAX, u32::MAX);
        assert_eq!(k.successor(), Some(key("10.0.0.1/32", 0, 0, 0)));
        let k = key("10.0.0.255/32", u32::MAX, u32::MAX, u32::MAX);
        assert_eq!(k.successor(), Some(key("10.0.1.0/24", 0, 0, 0)));
        let k = key("255.255.255.255/32", u32::MAX, u32::MAX, u32::MAX);
        assert_eq!(k.successor(), None);
        for k in [
            key("10.0.0.0/8", u32::MAX, u32::MAX, u32::MAX),
            key("10.0.0.255/32", u32::MAX, u32::MAX, u32::MAX),
        ] {
            assert!(k < k.successor().unwrap());
        }
    }
}

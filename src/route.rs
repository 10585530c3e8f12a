//! Route identities, routes, and versions of the table.

use std::fmt;

use crate::prefix::sealed::AddrBits;
use crate::prefix::Prefix;

/// The routing protocol that owns a route (RTMv1's protocol family / id).
///
/// ```
/// let bgp = rtm::ProtocolId(14);
/// assert!(bgp > rtm::ProtocolId(2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct ProtocolId(pub u32);

/// The protocol identifiers RTMv1 uses for IP: the `ipRouteProto` values of the MIB-II
/// route table (RFC 1354, as RFC 1213), which Windows names `PROTO_IP_*`. Any other `u32`
/// is a valid `ProtocolId` too; these only give the common ones names, which `Display`
/// shows.
///
/// ```
/// use rtm::ProtocolId;
/// assert_eq!(ProtocolId::BGP, ProtocolId(14));
/// assert_eq!(ProtocolId::OSPF.to_string(), "ospf");
/// assert_eq!(ProtocolId::NETMGMT.name(), Some("netmgmt"));
/// assert_eq!(ProtocolId(10006).to_string(), "10006");
/// ```
impl ProtocolId {
    /// None of the others (`other(1)`).
    pub const OTHER: ProtocolId = ProtocolId(1);
    /// Not learned from a protocol, e.g. an interface's own network (`local(2)`).
    pub const LOCAL: ProtocolId = ProtocolId(2);
    /// Set through network management: static routes (`netmgmt(3)`).
    pub const NETMGMT: ProtocolId = ProtocolId(3);
    /// Learned from ICMP, e.g. a redirect (`icmp(4)`).
    pub const ICMP: ProtocolId = ProtocolId(4);
    /// Exterior Gateway Protocol (`egp(5)`).
    pub const EGP: ProtocolId = ProtocolId(5);
    /// Gateway-to-Gateway Protocol (`ggp(6)`).
    pub const GGP: ProtocolId = ProtocolId(6);
    /// HELLO (`hello(7)`).
    pub const HELLO: ProtocolId = ProtocolId(7);
    /// Routing Information Protocol (`rip(8)`).
    pub const RIP: ProtocolId = ProtocolId(8);
    /// IS-IS (`is-is(9)`).
    pub const IS_IS: ProtocolId = ProtocolId(9);
    /// ES-IS (`es-is(10)`).
    pub const ES_IS: ProtocolId = ProtocolId(10);
    /// Cisco IGRP (`ciscoIgrp(11)`).
    pub const CISCO_IGRP: ProtocolId = ProtocolId(11);
    /// BBN SPF IGP (`bbnSpfIgp(12)`).
    pub const BBN_SPF_IGP: ProtocolId = ProtocolId(12);
    /// Open Shortest Path First (`ospf(13)`).
    pub const OSPF: ProtocolId = ProtocolId(13);
    /// Border Gateway Protocol (`bgp(14)`).
    pub const BGP: ProtocolId = ProtocolId(14);

    /// The MIB name of a protocol this type names, `None` for other values.
    ///
    /// ```
    /// assert_eq!(rtm::ProtocolId::IS_IS.name(), Some("is-is"));
    /// assert_eq!(rtm::ProtocolId(0).name(), None);
    /// ```
    pub fn name(self) -> Option<&'static str> {
        const NAMES: [&str; 14] = [
            "other",
            "local",
            "netmgmt",
            "icmp",
            "egp",
            "ggp",
            "hello",
            "rip",
            "is-is",
            "es-is",
            "ciscoIgrp",
            "bbnSpfIgp",
            "ospf",
            "bgp",
        ];
        let i = (self.0 as usize).checked_sub(1)?;
        NAMES.get(i).copied()
    }
}

/// The MIB name for the protocols [`ProtocolId`] names, else the number.
impl fmt::Display for ProtocolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.pad(n),
            None => fmt::Display::fmt(&self.0, f),
        }
    }
}

/// The interface a route leaves through.
///
/// ```
/// let eth0 = rtm::InterfaceId(1);
/// assert_eq!(eth0.0, 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct InterfaceId(pub u32);

/// The interface index.
///
/// ```
/// assert_eq!(rtm::InterfaceId(3).to_string(), "3");
/// ```
impl fmt::Display for InterfaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

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
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(
        serialize = "P: serde::Serialize, P::Addr: serde::Serialize",
        deserialize = "P: serde::Deserialize<'de>, P::Addr: serde::Deserialize<'de>"
    ))
)]
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

/// `show ip route` style: network, protocol, interface and next hop.
///
/// ```
/// use rtm::{InterfaceId, Ipv4Net, ProtocolId, RouteKey};
/// let k: RouteKey<Ipv4Net> = RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId::BGP, InterfaceId(3), "192.0.2.1".parse().unwrap());
/// assert_eq!(k.to_string(), "10.0.0.0/8 bgp if 3 via 192.0.2.1");
/// ```
impl<P: Prefix + fmt::Display> fmt::Display for RouteKey<P>
where
    P::Addr: fmt::Display,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} if {} via {}",
            self.prefix, self.protocol, self.interface, self.next_hop
        )
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
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(
        serialize = "P: serde::Serialize, P::Addr: serde::Serialize, V: serde::Serialize",
        deserialize = "P: serde::Deserialize<'de>, P::Addr: serde::Deserialize<'de>, V: serde::Deserialize<'de>"
    ))
)]
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

/// `show ip route` style: the key, then `[priority/metric]`, and `disabled` when it is.
/// The payload is not shown.
///
/// ```
/// use rtm::{InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey};
/// let k: RouteKey<Ipv4Net> = RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId::OSPF, InterfaceId(2), "192.0.2.1".parse().unwrap());
/// let r = Route { priority: 110, metric: 20, ..Route::new(k, ()) };
/// assert_eq!(r.to_string(), "10.0.0.0/8 ospf if 2 via 192.0.2.1 [110/20]");
/// let off = Route { enabled: false, ..r };
/// assert_eq!(off.to_string(), "10.0.0.0/8 ospf if 2 via 192.0.2.1 [110/20] disabled");
/// ```
impl<P: Prefix + fmt::Display, V> fmt::Display for Route<P, V>
where
    P::Addr: fmt::Display,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}/{}]", self.key, self.priority, self.metric)?;
        if !self.enabled {
            f.write_str(" disabled")?;
        }
        Ok(())
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
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
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

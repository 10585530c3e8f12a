//! What an enumeration returns: RTMv1's enumeration flags, and RTMv2's range and resume.

use crate::error::Error;
use crate::prefix::{common_len, covers, is_canonical, last_addr, mask, Prefix};
use crate::route::RouteKey;
use crate::{InterfaceId, ProtocolId};

/// The filters of an enumeration. Filters combine with AND; giving one twice keeps the last.
///
/// ```
/// use rtm::{Criteria, Ipv4Net, ProtocolId};
/// let c: Criteria<Ipv4Net> = Criteria::all()
///     .within("10.0.0.0/8".parse().unwrap())
///     .protocol(ProtocolId(14))
///     .best_only();
/// # let _ = c;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Criteria<P: Prefix> {
    pub(crate) network: Option<P>,
    pub(crate) interface: Option<InterfaceId>,
    pub(crate) protocol: Option<ProtocolId>,
    pub(crate) best: Best,
    pub(crate) include_disabled: bool,
    pub(crate) within: Option<P>,
    pub(crate) covering: Option<P>,
    pub(crate) start_after: Option<RouteKey<P>>,
    pub(crate) unchanged_since: Option<u64>,
}

/// Which of a network's routes criteria keep (before their other filters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Best {
    /// Every route.
    All,
    /// The best route ([`Criteria::best_only`]).
    Only,
    /// The best set ([`Criteria::best_multipath`]).
    Multipath,
}

/// Where a walk in [`Criteria::covering`] mode goes from a node of network `q`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step<P: Prefix> {
    /// `q` covers the network: its routes are candidates.
    Here,
    /// No covering network lies between `q` and this key: search for it.
    Jump(RouteKey<P>),
    /// No covering network comes after `q`.
    End,
}

impl<P: Prefix> Default for Criteria<P> {
    fn default() -> Self {
        Self::all()
    }
}

impl<P: Prefix> Criteria<P> {
    /// Every enabled route.
    ///
    /// ```
    /// let c = rtm::Criteria::<rtm::Ipv4Net>::all();
    /// assert_eq!(c, Default::default());
    /// ```
    pub fn all() -> Self {
        Self {
            network: None,
            interface: None,
            protocol: None,
            best: Best::All,
            include_disabled: false,
            within: None,
            covering: None,
            start_after: None,
            unchanged_since: None,
        }
    }

    /// Only routes to exactly this network (`RTM_ONLY_THIS_NETWORK`).
    ///
    /// ```
    /// let c = rtm::Criteria::<rtm::Ipv4Net>::all().network("10.0.0.0/8".parse().unwrap());
    /// # let _ = c;
    /// ```
    pub fn network(mut self, p: P) -> Self {
        self.network = Some(p);
        self
    }

    /// Only routes through this interface (`RTM_ONLY_THIS_INTERFACE`).
    ///
    /// ```
    /// let c = rtm::Criteria::<rtm::Ipv4Net>::all().interface(rtm::InterfaceId(3));
    /// # let _ = c;
    /// ```
    pub fn interface(mut self, i: InterfaceId) -> Self {
        self.interface = Some(i);
        self
    }

    /// Only routes of this protocol (`RTM_ONLY_THIS_PROTOCOL`).
    ///
    /// ```
    /// let c = rtm::Criteria::<rtm::Ipv4Net>::all().protocol(rtm::ProtocolId(14));
    /// # let _ = c;
    /// ```
    pub fn protocol(mut self, p: ProtocolId) -> Self {
        self.protocol = Some(p);
        self
    }

    /// Only the best route of each network, as of the snapshot (`RTM_ONLY_BEST_ROUTES`).
    /// Best among all the network's routes, then filtered by the other criteria.
    ///
    /// ```
    /// let c = rtm::Criteria::<rtm::Ipv4Net>::all().best_only();
    /// # let _ = c;
    /// ```
    ///
    /// `best_only` and [`best_multipath`](Criteria::best_multipath) are both choices of
    /// which of a network's routes to keep: the last one given wins.
    pub fn best_only(mut self) -> Self {
        self.best = Best::Only;
        self
    }

    /// Only the routes in their network's *best set* as of the snapshot: every enabled
    /// route whose `(priority, metric)` equals the network's best route's (its equal-cost
    /// paths, see [`RouteTable::best_routes`](crate::RouteTable::best_routes)). Chosen
    /// among all the network's routes, then filtered by the other criteria.
    ///
    /// `best_multipath` and [`best_only`](Criteria::best_only) are both choices of which
    /// of a network's routes to keep: the last one given wins. A feed with it reports the
    /// routes that enter, leave or change inside each network's best set (see
    /// [`Change`](crate::Change)).
    ///
    /// ```
    /// use rtm::{Criteria, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
    /// let t = RouteTable::<Ipv4Net, u32>::new();
    /// let k = |hop: &str| RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId::BGP, InterfaceId(1), hop.parse().unwrap());
    /// t.add_route(Route { metric: 5, ..Route::new(k("192.0.2.1"), 1) }).unwrap();
    /// t.add_route(Route { metric: 5, ..Route::new(k("192.0.2.2"), 2) }).unwrap();
    /// t.add_route(Route { metric: 9, ..Route::new(k("192.0.2.3"), 3) }).unwrap();
    /// let set: Vec<u32> = t.enumerate(Criteria::all().best_multipath()).unwrap().map(|r| r.value).collect();
    /// assert_eq!(set, [1, 2]);
    /// let best: Vec<u32> = t
    ///     .enumerate(Criteria::all().best_multipath().best_only())   // the last one wins
    ///     .unwrap()
    ///     .map(|r| r.value)
    ///     .collect();
    /// assert_eq!(best, [1]);
    /// ```
    pub fn best_multipath(mut self) -> Self {
        self.best = Best::Multipath;
        self
    }

    /// Disabled routes too (`RTM_INCLUDE_DISABLED_ROUTES`).
    ///
    /// ```
    /// let c = rtm::Criteria::<rtm::Ipv4Net>::all().include_disabled();
    /// # let _ = c;
    /// ```
    pub fn include_disabled(mut self) -> Self {
        self.include_disabled = true;
        self
    }

    /// Only routes whose current version is `v` or older: not added, replaced, enabled or
    /// disabled after `v`. With [`RouteTable::delete_routes`](crate::RouteTable::delete_routes),
    /// a graceful restart's stale sweep: note `v = table.version()` when the peer goes away,
    /// let it announce its routes again (each `add_route` writes a new version, an identical
    /// route too), then delete what it did not announce, in one commit. For enumerations,
    /// handles and block operations; a feed (or a subscription) with it is
    /// [`Error::InvalidParameter`](crate::Error::InvalidParameter).
    ///
    /// ```
    /// use rtm::{Criteria, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
    /// let t = RouteTable::<Ipv4Net, u32>::new();
    /// let key = |p: &str| RouteKey::new(p.parse().unwrap(), ProtocolId::BGP, InterfaceId(1), "192.0.2.1".parse().unwrap());
    /// t.add_route(Route::new(key("10.0.0.0/8"), 1)).unwrap();
    /// t.add_route(Route::new(key("10.1.0.0/16"), 1)).unwrap();
    /// let v0 = t.version();                                  // the peer restarts
    /// t.add_route(Route::new(key("10.0.0.0/8"), 1)).unwrap(); // and announces one route again
    /// let stale = Criteria::all().protocol(ProtocolId::BGP).include_disabled().unchanged_since(v0);
    /// assert_eq!(t.delete_routes(stale), Ok(1));
    /// assert!(t.get_route(&key("10.0.0.0/8")).is_some());
    /// assert!(t.get_route(&key("10.1.0.0/16")).is_none());
    /// ```
    pub fn unchanged_since(mut self, v: crate::Version) -> Self {
        self.unchanged_since = Some(v.0);
        self
    }

    /// Whether a route whose visible version was decided at `t` passes
    /// [`Criteria::unchanged_since`].
    #[inline]
    pub(crate) fn unchanged(&self, t: u64) -> bool {
        self.unchanged_since.is_none_or(|u| t <= u)
    }

    /// Only `p` and its more-specific networks (`RTM_ENUM_RANGE`).
    ///
    /// ```
    /// let c = rtm::Criteria::<rtm::Ipv4Net>::all().within("192.168.0.0/16".parse().unwrap());
    /// # let _ = c;
    /// ```
    ///
    /// `within` and [`covering`](Criteria::covering) are both range filters: the last one
    /// given wins.
    pub fn within(mut self, p: P) -> Self {
        self.within = Some(p);
        self.covering = None;
        self
    }

    /// Only `p` and the networks that cover it, least specific first (RTMv2's walk up the
    /// less-specific networks, as `RTM_ENUM_RANGE` walks down). The enumeration finds them
    /// with one ordered search per candidate length at most, never by scanning what lies
    /// between them, so it costs O(prefix length) searches whatever the table holds.
    ///
    /// `covering` and [`within`](Criteria::within) are both range filters: the last one
    /// given wins.
    ///
    /// ```
    /// use rtm::{Criteria, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
    /// let t = RouteTable::<Ipv4Net, ()>::new();
    /// for p in ["0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.2.0.0/16", "10.1.2.0/25"] {
    ///     let k = RouteKey::new(p.parse().unwrap(), ProtocolId::NETMGMT, InterfaceId(1), "192.0.2.1".parse().unwrap());
    ///     t.add_route(Route::new(k, ())).unwrap();
    /// }
    /// let up: Vec<String> = t
    ///     .enumerate(Criteria::all().covering("10.1.2.0/24".parse().unwrap()))
    ///     .unwrap()
    ///     .map(|r| r.key.prefix.to_string())
    ///     .collect();
    /// assert_eq!(up, ["0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24"]);
    /// ```
    pub fn covering(mut self, p: P) -> Self {
        self.covering = Some(p);
        self.within = None;
        self
    }

    /// Resume strictly after `k` (`RTM_ENUM_NEXT`).
    ///
    /// ```
    /// use rtm::{Criteria, Ipv4Net, RouteKey, ProtocolId, InterfaceId};
    /// let k = RouteKey::new("10.0.0.0/8".parse::<Ipv4Net>().unwrap(), ProtocolId(1), InterfaceId(1), "192.0.2.1".parse().unwrap());
    /// let c = Criteria::all().start_after(k);
    /// # let _ = c;
    /// ```
    pub fn start_after(mut self, k: RouteKey<P>) -> Self {
        self.start_after = Some(k);
        self
    }

    /// Rejects prefixes with host bits set.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let ok = self.network.as_ref().is_none_or(is_canonical)
            && self.within.as_ref().is_none_or(is_canonical)
            && self.covering.as_ref().is_none_or(is_canonical)
            && self
                .start_after
                .as_ref()
                .is_none_or(|k| is_canonical(&k.prefix));
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidParameter)
        }
    }

    /// The key range `[lower, upper]` the criteria can match, or `None` if empty.
    pub(crate) fn range(&self) -> Option<(RouteKey<P>, Option<RouteKey<P>>)> {
        let mut lower: Option<RouteKey<P>> = None;
        let mut upper: Option<RouteKey<P>> = None;
        let mut raise = |k: RouteKey<P>| {
            lower = Some(lower.map_or(k, |l| l.max(k)));
        };
        if let Some(p) = self.network {
            raise(RouteKey::first_of(p));
        }
        if let Some(p) = self.within {
            raise(RouteKey::first_of(p));
        }
        if let Some(k) = self.start_after {
            raise(k.successor()?);
        }
        let mut lower_to = |k: RouteKey<P>| {
            upper = Some(upper.map_or(k, |u| u.min(k)));
        };
        if let Some(p) = self.network {
            lower_to(RouteKey::last_of(p));
        }
        if let Some(p) = self.within {
            lower_to(RouteKey::last_of(P::from_parts(last_addr(&p), P::MAX_LEN)));
        }
        if let Some(p) = self.covering {
            // every network covering p sorts at or before p
            lower_to(RouteKey::last_of(p));
        }
        let lower = lower.unwrap_or_else(|| RouteKey::first_of(P::from_parts(0, 0)));
        if let Some(u) = upper {
            if lower > u {
                return None;
            }
        }
        Some((lower, upper))
    }

    /// Whether a route passes every filter but `best_only` or `best_multipath` (which need
    /// the network's routes).
    #[inline]
    pub(crate) fn admits(&self, key: &RouteKey<P>, enabled: bool) -> bool {
        (enabled || self.include_disabled)
            && self.protocol.is_none_or(|p| p == key.protocol)
            && self.interface.is_none_or(|i| i == key.interface)
            && self.network.is_none_or(|n| n == key.prefix)
            && self.within.is_none_or(|w| {
                key.prefix.plen() >= w.plen() && crate::prefix::covers(&w, key.prefix.net_bits())
            })
            && self.covering.is_none_or(|c| covers_net(&key.prefix, &c))
            && self.start_after.is_none_or(|k| *key > k)
    }

    /// In [`covering`](Criteria::covering) mode, where a walk that reached a node of
    /// network `q` goes next; [`Step::Here`] when the criteria have no covering filter.
    ///
    /// The networks covering `p` (address `a`) are `c(m) = (a masked to m, m)` for `m` in
    /// `0..=p.len`, ascending in key order as `m` grows. If `q` is not one of them:
    /// - if `q`'s address is above `a`, every `c(m)` (address `<= a`) sorts before `q`;
    /// - else let `k` be the length `q`'s address and `a` share (`k < q.len`, or `q` would
    ///   cover `p`). For `m <= k`, `c(m)` has `q`'s address masked to `m`, which is at most
    ///   `q`'s address and equal only if `m >= q.len > k`: so `c(m)` sorts before `q`. For
    ///   `m > k`, `c(m)`'s address has bit `k` set where `q`'s has it clear: after `q`.
    ///   So the next covering network at or after `q` is `c(k + 1)`, if `k < p.len`.
    ///
    /// Each jump strictly raises the candidate length, so a walk makes at most
    /// `p.len + 1` searches.
    #[inline]
    pub(crate) fn step(&self, q: &P) -> Step<P> {
        let Some(p) = self.covering else {
            return Step::Here;
        };
        if covers_net(q, &p) {
            return Step::Here;
        }
        let (a, qa) = (p.net_bits(), q.net_bits());
        if qa > a {
            return Step::End;
        }
        let m = common_len::<P>(qa, a) as u16 + 1;
        if m > p.plen() as u16 {
            return Step::End;
        }
        let m = m as u8;
        Step::Jump(RouteKey::first_of(P::from_parts(a & mask::<P>(m), m)))
    }
}

/// True when network `q` is `p` or covers it.
#[inline]
fn covers_net<P: Prefix>(q: &P, p: &P) -> bool {
    q.plen() <= p.plen() && covers(q, p.net_bits())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::Ipv4Net;
    use std::net::Ipv4Addr;

    fn net(a: u32, len: u8) -> Ipv4Net {
        Ipv4Net::new(Ipv4Addr::from(a), len).unwrap().trunc()
    }

    /// `step` jumps exactly to the first covering network after `q`, as brute force says.
    #[test]
    fn covering_steps_match_brute_force() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200_000 {
            let r = rnd();
            let a = 0x0a00_0000 | (r as u32 & 0x00ff_ffff);
            let p = net(a, (r >> 32) as u8 % 33);
            // q near p: flip a few low bits of p's address, any length
            let b = a ^ ((r >> 40) as u32 & (0xff >> ((r >> 48) % 8)));
            let q = net(b, (r >> 56) as u8 % 33);
            let want = if q.contains(&p) {
                Step::Here
            } else {
                (0..=p.prefix_len())
                    .map(|m| net(a, m))
                    .find(|c| *c > q)
                    .map_or(Step::End, |c| Step::Jump(RouteKey::first_of(c)))
            };
            assert_eq!(Criteria::all().covering(p).step(&q), want, "p {p} q {q}");
        }
    }
}

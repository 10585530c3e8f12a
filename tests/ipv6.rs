//! The same table over IPv6: exact get, longest-prefix match against brute force, ranges.

#[path = "../benches/data/mod.rs"]
mod data;

use std::collections::HashSet;
use std::net::Ipv6Addr;

use rtm::{Criteria, Ipv6Net, RouteTable};

fn brute_force_lpm(set: &HashSet<(u128, u8)>, a: Ipv6Addr) -> Option<Ipv6Net> {
    let a = u128::from(a);
    (0..=128u8).rev().find_map(|len| {
        let m = u128::MAX.checked_shl(128 - len as u32).unwrap_or(0);
        set.contains(&(a & m, len))
            .then(|| Ipv6Net::new(Ipv6Addr::from(a & m), len).unwrap())
    })
}

#[test]
fn ipv6_lookups_gets_and_ranges() {
    let prefixes = data::ipv6_prefixes(20_000, 5);
    let t = RouteTable::<Ipv6Net, u64>::new();
    for (i, p) in prefixes.iter().enumerate() {
        assert_eq!(
            t.add_route(data::route(data::key_v6(*p), i as u64)),
            Ok(None)
        );
    }
    for (i, p) in prefixes.iter().enumerate().step_by(7) {
        assert_eq!(
            t.get_route(&data::key_v6(*p)).map(|r| r.value),
            Some(i as u64)
        );
    }
    let set: HashSet<(u128, u8)> = prefixes
        .iter()
        .map(|p| (u128::from(p.network()), p.prefix_len()))
        .collect();
    let mut addrs = data::announced_v6(&prefixes, 10_000, 1);
    addrs.extend(data::uniform_v6(10_000, 2));
    addrs.push(Ipv6Addr::UNSPECIFIED);
    addrs.push(Ipv6Addr::from(u128::MAX));
    for a in addrs {
        assert_eq!(
            t.lookup(a).map(|r| r.key.prefix),
            brute_force_lpm(&set, a),
            "lookup({a})"
        );
    }
    let w: Ipv6Net = "2400::/6".parse().unwrap();
    let mut want: Vec<Ipv6Net> = prefixes.iter().copied().filter(|p| w.contains(p)).collect();
    want.sort();
    let got: Vec<Ipv6Net> = t
        .enumerate(Criteria::all().within(w))
        .unwrap()
        .map(|r| r.key.prefix)
        .collect();
    assert_eq!(got, want);
    // a default route catches everything else
    let default = data::key_v6("::/0".parse().unwrap());
    t.add_route(data::route(default, 0)).unwrap();
    assert!(t.lookup(Ipv6Addr::LOCALHOST).is_some());
}

//! Longest-prefix match and range enumeration on a real table (MAE-West, 28,895 prefixes),
//! whose nesting is what lookups meet in the field, checked against brute force.

#[path = "../benches/data/mod.rs"]
mod data;

use std::collections::HashSet;
use std::net::Ipv4Addr;

use rtm::{Criteria, Ipv4Net, RouteTable};

fn brute_force_lpm(set: &HashSet<(u32, u8)>, a: Ipv4Addr) -> Option<Ipv4Net> {
    let a = u32::from(a);
    (0..=32u8).rev().find_map(|len| {
        let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        set.contains(&(a & m, len))
            .then(|| Ipv4Net::new(Ipv4Addr::from(a & m), len).unwrap())
    })
}

#[test]
fn lookups_match_brute_force_on_mae_west() {
    let prefixes = data::mae_west();
    assert_eq!(prefixes.len(), 28_895);
    let t = RouteTable::<Ipv4Net, u64>::new();
    for (i, p) in prefixes.iter().enumerate() {
        t.add_route(data::route(data::key_v4(*p), i as u64))
            .unwrap();
    }
    assert_eq!(t.network_count(), prefixes.len());
    let set: HashSet<(u32, u8)> = prefixes
        .iter()
        .map(|p| (u32::from(p.network()), p.prefix_len()))
        .collect();
    let mut addrs = data::announced_v4(&prefixes, 20_000, 7);
    addrs.extend(data::uniform_v4(20_000, 8));
    let mut hits = 0;
    for a in addrs {
        let want = brute_force_lpm(&set, a);
        let got = t.lookup(a).map(|r| r.key.prefix);
        assert_eq!(got, want, "lookup({a})");
        hits += got.is_some() as usize;
    }
    assert!(hits > 20_000, "announced addresses must hit");

    // Withdraw every /24: lookups fall back to the covering aggregates.
    for p in prefixes.iter().filter(|p| p.prefix_len() == 24) {
        t.delete_route(&data::key_v4(*p)).unwrap();
    }
    let set: HashSet<(u32, u8)> = set.into_iter().filter(|&(_, l)| l != 24).collect();
    for a in data::announced_v4(&prefixes, 20_000, 9) {
        assert_eq!(
            t.lookup(a).map(|r| r.key.prefix),
            brute_force_lpm(&set, a),
            "lookup({a})"
        );
    }
}

#[test]
fn range_enumeration_matches_a_filter_on_mae_west() {
    let prefixes = data::mae_west();
    let t = RouteTable::<Ipv4Net, u64>::new();
    for (i, p) in prefixes.iter().enumerate() {
        t.add_route(data::route(data::key_v4(*p), i as u64))
            .unwrap();
    }
    let mut sorted = prefixes.clone();
    sorted.sort();
    for within in [
        "0.0.0.0/0",
        "24.0.0.0/8",
        "192.0.0.0/2",
        "198.32.0.0/16",
        "12.0.0.0/7",
    ] {
        let w: Ipv4Net = within.parse().unwrap();
        let got: Vec<Ipv4Net> = t
            .enumerate(Criteria::all().within(w))
            .unwrap()
            .map(|r| r.key.prefix)
            .collect();
        let want: Vec<Ipv4Net> = sorted.iter().copied().filter(|p| w.contains(p)).collect();
        assert_eq!(got, want, "within {within}");
    }
    // best_only over a whole real table: every network has one route, so all are best
    assert_eq!(
        t.enumerate(Criteria::all().best_only()).unwrap().count(),
        prefixes.len()
    );
}

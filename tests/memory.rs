//! What a table holds in memory (`Stats::memory_bytes`): small when empty, growing with its
//! routes and shrinking again when they go, whatever capacity it was built with.

use std::net::Ipv4Addr;

use rtm::{Fib, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};

fn key(i: u32) -> RouteKey<Ipv4Net> {
    RouteKey::new(
        Ipv4Net::new(Ipv4Addr::from(i << 8), 24).unwrap(),
        ProtocolId(1),
        InterfaceId(1),
        "192.0.2.1".parse().unwrap(),
    )
}

#[test]
fn an_empty_table_with_its_fib_is_small() {
    let t = RouteTable::<Ipv4Net, u64>::new();
    assert!(
        t.stats().memory_bytes <= 4 << 10,
        "an empty table holds {} bytes",
        t.stats().memory_bytes
    );
    let (fib, follower) = Fib::follow(&t, |r| r.value as u32).unwrap();
    let total = t.stats().memory_bytes + fib.memory_bytes();
    assert!(
        total <= 64 << 10,
        "an empty table and its Fib hold {total} bytes"
    );
    drop(follower);
}

#[test]
fn a_large_journal_costs_only_what_is_written() {
    let t = RouteTable::<Ipv4Net, u64>::builder()
        .journal_capacity(usize::MAX)
        .build();
    assert_eq!(t.journal_capacity(), 1 << 28);
    let empty = t.stats().memory_bytes;
    assert!(
        empty <= 3 << 20,
        "a 2^28-commit journal holds {empty} bytes up front"
    );
    for i in 0..100 {
        t.add_route(Route::new(key(i), 0)).unwrap();
    }
    assert!(t.stats().memory_bytes - empty <= 64 << 10);
}

#[test]
fn memory_follows_the_routes() {
    let t = RouteTable::<Ipv4Net, u64>::new();
    let empty = t.stats().memory_bytes;
    for i in 0..10_000 {
        t.add_route(Route::new(key(i), u64::from(i))).unwrap();
    }
    let full = t.stats().memory_bytes;
    assert!(
        full - empty >= 10_000 * 64,
        "10,000 routes add only {} bytes",
        full - empty
    );
    for i in 0..10_000 {
        t.delete_route(&key(i)).unwrap();
    }
    t.collect();
    let after = t.stats().memory_bytes;
    // What stays is the journal's segments (it keeps its last 20,000 commits' positions).
    assert!(
        after - empty <= 256 << 10,
        "{} bytes stay after every route went",
        after - empty
    );
}

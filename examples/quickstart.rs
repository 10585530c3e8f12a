//! rtm in one page: a table, routes, lookups, a snapshot dump while a writer goes on, a
//! feed of what changed, and a Fib for forwarding lookups. No data files; well under a
//! second.
//!
//! ```text
//! cargo run --release --example quickstart
//! ```
//!
//! The README's example is this program.

use rtm::{Criteria, Fib, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};

fn main() {
    // A table of IPv4 routes whose values are the embedder's (here: a next-hop id).
    let table = RouteTable::<Ipv4Net, u32>::new();
    let key = |prefix: &str, hop: u32| -> RouteKey<Ipv4Net> {
        let (net, via) = (prefix.parse().unwrap(), "192.0.2.1".parse().unwrap());
        RouteKey::new(net, ProtocolId::BGP, InterfaceId(hop), via)
    };
    let add = |prefix: &str, hop: u32| table.add_route(Route::new(key(prefix, hop), hop));
    add("10.0.0.0/8", 1).unwrap();
    add("10.1.0.0/16", 2).unwrap();

    // Longest-prefix match on the table (the RIB's exact answer).
    let best = table.lookup("10.1.2.3".parse().unwrap()).unwrap();
    assert_eq!(best.key.prefix.to_string(), "10.1.0.0/16");

    // A dump sees the table as it was when it opened, while writers go on.
    let dump = table.enumerate(Criteria::all()).unwrap();
    table.delete_route(&key("10.1.0.0/16", 2)).unwrap();
    add("192.168.0.0/16", 3).unwrap();
    let dumped: Vec<String> = dump.map(|r| r.key.prefix.to_string()).collect();
    assert_eq!(dumped, ["10.0.0.0/8", "10.1.0.0/16"]);

    // A dump and a feed of every later change: the copy stays equal to the table.
    let (dump, mut feed) = table.subscribe(Criteria::all()).unwrap();
    let mut copy: Vec<_> = dump.map(|r| r.key).collect();
    add("172.16.0.0/12", 4).unwrap();
    while let Some(change) = feed.try_next().unwrap() {
        if let Some(old) = change.old {
            copy.retain(|k| *k != old.key);
        }
        if let Some(new) = change.new {
            copy.push(new.key);
        }
    }
    copy.sort();
    let now = table.enumerate(Criteria::all()).unwrap();
    assert!(now.map(|r| r.key).eq(copy));
    drop(feed);

    // A Fib: each network's best next hop, for forwarding lookups that never wait.
    let (fib, mut follower) = Fib::follow(&table, |r| r.value).unwrap();
    assert_eq!(fib.lookup("10.1.2.3".parse().unwrap()), Some(1));
    add("10.1.0.0/16", 2).unwrap();
    follower.sync().unwrap(); // applies what changed since the Fib was built
    assert_eq!(fib.lookup("10.1.2.3".parse().unwrap()), Some(2));
    assert_eq!(fib.version(), table.version());

    println!(
        "{} routes; 10.1.2.3 forwards to next hop {:?}",
        table.route_count(),
        fib.lookup("10.1.2.3".parse().unwrap())
    );
}

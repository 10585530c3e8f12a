//! Every error path of the public API, and the values each one reports.

use std::net::{Ipv4Addr, Ipv6Addr};

use rtm::{
    Criteria, EnumHandle, Error, InterfaceId, Ipv4Net, Ipv6Net, ProtocolId, Route, RouteKey,
    RouteTable,
};

fn k4(p: &str) -> RouteKey<Ipv4Net> {
    RouteKey::new(
        p.parse().unwrap(),
        ProtocolId(1),
        InterfaceId(1),
        Ipv4Addr::new(192, 0, 2, 1),
    )
}

fn k6(p: &str) -> RouteKey<Ipv6Net> {
    RouteKey::new(
        p.parse().unwrap(),
        ProtocolId(1),
        InterfaceId(1),
        Ipv6Addr::LOCALHOST,
    )
}

#[test]
fn codes_and_messages() {
    let all = [
        (Error::InvalidHandle, 6),
        (Error::NoSystemResources, 1450),
        (Error::NoMoreRoutes, 259),
        (Error::NoSuchRoute, 259),
        (Error::InvalidParameter, 87),
    ];
    for (e, code) in all {
        assert_eq!(e.code(), code);
        assert!(!e.to_string().is_empty());
        let _: &dyn std::error::Error = &e;
    }
}

#[test]
fn host_bits_are_invalid_parameters_everywhere() {
    let t = RouteTable::<Ipv4Net, u8>::new();
    let bad = k4("10.1.2.3/8");
    assert_eq!(
        t.add_route(Route::new(bad, 1)),
        Err(Error::InvalidParameter)
    );
    assert_eq!(t.delete_route(&bad), Err(Error::InvalidParameter));
    assert_eq!(t.get_route(&bad), None);
    assert_eq!(t.best_route(&bad.prefix), None);
    let p = bad.prefix;
    for c in [
        Criteria::all().network(p),
        Criteria::all().within(p),
        Criteria::all().start_after(bad),
        Criteria::all()
            .within("10.0.0.0/8".parse().unwrap())
            .network(p),
    ] {
        assert_eq!(t.enumerate(c.clone()).err(), Some(Error::InvalidParameter));
        assert_eq!(t.create_enumeration_handle(c), Err(Error::InvalidParameter));
    }
    // the same filter twice keeps the last: a good network replaces a bad one
    assert!(t
        .enumerate(
            Criteria::all()
                .network(p)
                .network("10.0.0.0/8".parse().unwrap())
        )
        .is_ok());
    assert_eq!(t.stats().open_enumerations, 0);
    assert_eq!(t.route_count(), 0);

    let t6 = RouteTable::<Ipv6Net, u8>::new();
    let bad6 = k6("2001:db8::1/32");
    assert_eq!(
        t6.add_route(Route::new(bad6, 1)),
        Err(Error::InvalidParameter)
    );
    assert_eq!(t6.delete_route(&bad6), Err(Error::InvalidParameter));
    assert_eq!(t6.get_route(&bad6), None);
    assert_eq!(t6.best_route(&bad6.prefix), None);
    assert_eq!(
        t6.create_enumeration_handle(Criteria::all().within(bad6.prefix)),
        Err(Error::InvalidParameter)
    );
    assert_eq!(t6.add_route(Route::new(k6("2001:db8::/32"), 1)), Ok(None));
}

#[test]
fn deleting_an_absent_route_is_no_such_route() {
    let t = RouteTable::<Ipv4Net, u8>::new();
    assert_eq!(t.delete_route(&k4("10.0.0.0/8")), Err(Error::NoSuchRoute));
    t.add_route(Route::new(k4("10.0.0.0/8"), 1)).unwrap();
    let other_hop = RouteKey {
        next_hop: Ipv4Addr::new(192, 0, 2, 2),
        ..k4("10.0.0.0/8")
    };
    assert_eq!(t.delete_route(&other_hop), Err(Error::NoSuchRoute));
    assert_eq!(t.delete_route(&k4("10.0.0.0/8")).map(|r| r.value), Ok(1));
    assert_eq!(t.delete_route(&k4("10.0.0.0/8")), Err(Error::NoSuchRoute));
    let v = t.version();
    assert_eq!(t.delete_route(&k4("10.0.0.0/8")), Err(Error::NoSuchRoute));
    assert_eq!(t.version(), v, "a failed delete commits nothing");
}

#[test]
fn an_exhausted_enumeration_keeps_saying_so_and_stays_open() {
    let t = RouteTable::<Ipv4Net, u8>::new();
    t.add_route(Route::new(k4("10.0.0.0/8"), 1)).unwrap();
    let h = t.create_enumeration_handle(Criteria::all()).unwrap();
    assert_eq!(t.enumerate_get_next_route(h).map(|r| r.value), Ok(1));
    for _ in 0..3 {
        assert_eq!(t.enumerate_get_next_route(h), Err(Error::NoMoreRoutes));
    }
    assert_eq!(t.stats().open_enumerations, 1);
    assert_eq!(t.close_enumeration_handle(h), Ok(()));

    let mut e = t.enumerate(Criteria::all()).unwrap();
    assert!(e.next().is_some());
    assert!(e.next().is_none());
    assert!(e.next().is_none());
    assert_eq!(t.stats().open_enumerations, 1);
    assert_eq!(e.close(), Ok(()));
    assert_eq!(t.stats().open_enumerations, 0);
}

#[test]
fn raii_and_handles_share_one_pool_of_slots() {
    let t = RouteTable::<Ipv4Net, u8>::with_max_enumerations(2);
    let e = t.enumerate(Criteria::all()).unwrap();
    let h = t.create_enumeration_handle(Criteria::all()).unwrap();
    assert_eq!(
        t.create_enumeration_handle(Criteria::all()),
        Err(Error::NoSystemResources)
    );
    assert_eq!(
        t.enumerate(Criteria::all()).err(),
        Some(Error::NoSystemResources)
    );
    drop(e);
    let h2 = t.create_enumeration_handle(Criteria::all()).unwrap();
    assert_eq!(
        t.enumerate(Criteria::all()).err(),
        Some(Error::NoSystemResources)
    );
    t.close_enumeration_handle(h).unwrap();
    t.close_enumeration_handle(h2).unwrap();
    assert_eq!(t.stats().open_enumerations, 0);

    let one = RouteTable::<Ipv4Net, u8>::with_max_enumerations(0);
    assert_eq!(one.max_enumerations(), 1, "clamped to at least one");
    let huge = RouteTable::<Ipv4Net, u8>::with_max_enumerations(usize::MAX);
    assert_eq!(huge.max_enumerations(), rtm::MAX_ENUMERATIONS);
}

#[test]
fn closed_stale_forged_and_foreign_handles_are_invalid() {
    let t = RouteTable::<Ipv4Net, u8>::with_max_enumerations(1);
    let other = RouteTable::<Ipv4Net, u8>::new();
    t.add_route(Route::new(k4("10.0.0.0/8"), 1)).unwrap();

    let h = t.create_enumeration_handle(Criteria::all()).unwrap();
    assert_eq!(t.close_enumeration_handle(h), Ok(()));
    assert_eq!(
        t.close_enumeration_handle(h),
        Err(Error::InvalidHandle),
        "double close"
    );
    assert_eq!(
        t.enumerate_get_next_route(h),
        Err(Error::InvalidHandle),
        "closed"
    );

    // the slot is reused (there is only one); the old handle still does not reach it
    let h2 = t.create_enumeration_handle(Criteria::all()).unwrap();
    assert_ne!(h, h2);
    assert_eq!(
        t.enumerate_get_next_route(h),
        Err(Error::InvalidHandle),
        "stale"
    );
    assert_eq!(t.close_enumeration_handle(h), Err(Error::InvalidHandle));
    assert_eq!(t.enumerate_get_next_route(h2).map(|r| r.value), Ok(1));

    // another table's live handle
    let f = other.create_enumeration_handle(Criteria::all()).unwrap();
    assert_eq!(t.enumerate_get_next_route(f), Err(Error::InvalidHandle));
    assert_eq!(t.close_enumeration_handle(f), Err(Error::InvalidHandle));
    assert_eq!(
        other.enumerate_get_next_route(h2),
        Err(Error::InvalidHandle)
    );
    assert_eq!(other.close_enumeration_handle(f), Ok(()));

    // forged values, and every single-bit corruption of a live handle
    for raw in [
        0,
        1,
        u64::MAX,
        0xdead_beef,
        h2.into_raw().wrapping_add(1 << 32),
    ] {
        let x = EnumHandle::from_raw(raw);
        assert_eq!(
            t.enumerate_get_next_route(x),
            Err(Error::InvalidHandle),
            "{raw:#x}"
        );
        assert_eq!(
            t.close_enumeration_handle(x),
            Err(Error::InvalidHandle),
            "{raw:#x}"
        );
    }
    for bit in 0..64 {
        let x = EnumHandle::from_raw(h2.into_raw() ^ (1 << bit));
        assert_eq!(
            t.enumerate_get_next_route(x),
            Err(Error::InvalidHandle),
            "bit {bit}"
        );
        assert_eq!(
            t.close_enumeration_handle(x),
            Err(Error::InvalidHandle),
            "bit {bit}"
        );
    }
    assert_eq!(t.stats().open_enumerations, 1, "misuse closed nothing");
    assert_eq!(t.close_enumeration_handle(h2), Ok(()));
}

#[test]
fn an_raii_enumeration_is_not_reachable_through_handles() {
    let t = RouteTable::<Ipv4Net, u8>::with_max_enumerations(1);
    t.add_route(Route::new(k4("10.0.0.0/8"), 1)).unwrap();
    let h = t.create_enumeration_handle(Criteria::all()).unwrap();
    t.close_enumeration_handle(h).unwrap();
    let mut e = t.enumerate(Criteria::all()).unwrap();
    // Guess the RAII enumeration's handle: same table and slot, any nearby generation.
    for d in 0..4u64 {
        let guess = EnumHandle::from_raw(h.into_raw() + d);
        assert_eq!(t.enumerate_get_next_route(guess), Err(Error::InvalidHandle));
        assert_eq!(t.close_enumeration_handle(guess), Err(Error::InvalidHandle));
    }
    assert_eq!(
        e.next().map(|r| r.value),
        Some(1),
        "the enumeration was not disturbed"
    );
}

#[test]
fn tables_are_shared_and_enumerations_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<RouteTable<Ipv4Net, String>>();
    send_sync::<RouteTable<Ipv6Net, std::sync::Arc<u8>>>();
    send::<rtm::Enumeration<'static, Ipv4Net, String>>();
    send_sync::<EnumHandle>();
    send_sync::<Error>();
}

#[test]
fn errors_compare_and_copy() {
    let e = Error::NoSuchRoute;
    let f = e;
    assert_eq!(e, f);
    assert_ne!(Error::NoSuchRoute, Error::NoMoreRoutes);
    assert_eq!(format!("{:?}", Error::InvalidHandle), "InvalidHandle");
}

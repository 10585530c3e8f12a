//! Handle values: unique among live tables, never valid on a later table with the same id,
//! spread over the slots, and not used up by RAII enumerations.

use rtm::{Criteria, EnumHandle, Error, Ipv4Net, RouteTable};

type Table = RouteTable<Ipv4Net, u32>;

/// The documented layout: a 52-bit serial under the table id, `generation * n + slot`.
fn serial(h: EnumHandle) -> u64 {
    h.into_raw() & ((1 << 52) - 1)
}

#[test]
fn live_tables_have_distinct_nonzero_ids() {
    let tables: Vec<Table> = (0..200).map(|_| Table::with_max_enumerations(1)).collect();
    let mut ids: Vec<u64> = tables.iter().map(|t| t.table_id()).collect();
    assert!(ids.iter().all(|&id| id != 0));
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), tables.len());
}

#[test]
fn a_handle_of_a_dropped_table_is_invalid_on_a_new_table_with_its_id() {
    let old = Table::with_max_enumerations(1);
    let h = old.create_enumeration_handle(Criteria::all()).unwrap();
    let id = old.table_id();
    drop(old); // with `h` still open

    // Ids are leased in rotation: within a few thousand tables one gets `id` again.
    let mut reused = 0;
    for _ in 0..3 * 4096 {
        let t = Table::with_max_enumerations(1);
        if t.table_id() != id {
            continue;
        }
        reused += 1;
        assert_eq!(h.table_id(), t.table_id());
        assert_eq!(t.enumerate_get_next_route(h), Err(Error::InvalidHandle));
        assert_eq!(t.close_enumeration_handle(h), Err(Error::InvalidHandle));
        // Its own handles in the same (single) slot are new values.
        for _ in 0..3 {
            let h2 = t.create_enumeration_handle(Criteria::all()).unwrap();
            assert!(serial(h2) > serial(h), "a serial below the old table's");
            assert_eq!(t.close_enumeration_handle(h), Err(Error::InvalidHandle));
            t.close_enumeration_handle(h2).unwrap();
        }
        if reused == 2 {
            break;
        }
    }
    assert!(reused > 0, "the id never came back");
}

#[test]
fn handles_rotate_over_the_free_slots() {
    let t = Table::with_max_enumerations(4);
    let slots: Vec<u64> = (0..8)
        .map(|_| {
            let h = t.create_enumeration_handle(Criteria::all()).unwrap();
            t.close_enumeration_handle(h).unwrap();
            serial(h) % 4
        })
        .collect();
    assert_eq!(slots, [0, 1, 2, 3, 0, 1, 2, 3]);

    // With one slot held, the other three share the load evenly.
    let held = t.enumerate(Criteria::all()).unwrap();
    let mut seen = [0; 4];
    for _ in 0..30 {
        let h = t.create_enumeration_handle(Criteria::all()).unwrap();
        t.close_enumeration_handle(h).unwrap();
        seen[(serial(h) % 4) as usize] += 1;
    }
    drop(held);
    assert_eq!(seen.iter().filter(|&&n| n == 10).count(), 3, "{seen:?}");
}

#[test]
fn raii_enumerations_use_no_generation() {
    let t = Table::with_max_enumerations(1);
    let h1 = t.create_enumeration_handle(Criteria::all()).unwrap();
    t.close_enumeration_handle(h1).unwrap();
    for _ in 0..1000 {
        drop(t.enumerate(Criteria::all()).unwrap());
    }
    let h2 = t.create_enumeration_handle(Criteria::all()).unwrap();
    assert_eq!(serial(h2), serial(h1) + 1);
    assert_ne!(h2, h1);
    assert_eq!(t.close_enumeration_handle(h1), Err(Error::InvalidHandle));
    t.close_enumeration_handle(h2).unwrap();
    assert_eq!(t.stats().retired_slots, 0);
}

#[test]
fn handle_zero_is_never_valid() {
    let t = Table::new();
    let h = t.create_enumeration_handle(Criteria::all()).unwrap();
    assert_eq!(
        t.enumerate_get_next_route(EnumHandle::from_raw(0)),
        Err(Error::InvalidHandle)
    );
    t.close_enumeration_handle(h).unwrap();
}

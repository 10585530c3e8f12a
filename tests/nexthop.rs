//! Next-hop groups (`rtm::NexthopGroups`): dedup, reference counts and id reuse, flow
//! stability and resilient hashing across downs and come-backs, per-member marks, and
//! readers racing `set_down`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use rtm::{Error, NexthopGroups, BUCKETS};

/// SplitMix64: flow hashes that cover every bucket.
fn flows(n: usize) -> Vec<u64> {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    (0..n)
        .map(|_| {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        })
        .collect()
}

fn picks(g: &NexthopGroups<u32>, id: u32, hs: &[u64]) -> Vec<Option<u32>> {
    hs.iter().map(|&h| g.select(id, h)).collect()
}

fn set(v: &[u32]) -> HashSet<u32> {
    v.iter().copied().collect()
}

#[test]
fn intern_dedups_by_set() {
    let g = NexthopGroups::<u32>::new();
    let a = g.intern(&[1, 2, 3]).unwrap();
    assert_eq!(g.intern(&[3, 2, 1]).unwrap(), a);
    assert_eq!(g.intern(&[2, 2, 3, 1, 1]).unwrap(), a);
    let b = g.intern(&[1, 2]).unwrap();
    let c = g.intern(&[1, 2, 3, 4]).unwrap();
    let d = g.intern(&[4]).unwrap();
    assert_eq!(set(&[a, b, c, d]).len(), 4);
    assert_eq!(g.len(), 4);
    assert_eq!(set(&g.members(a).unwrap()), set(&[1, 2, 3]));
    assert_eq!(g.members(a).unwrap().len(), 3, "each member once");
    assert_eq!(&*g.members(c).unwrap(), &[1, 2, 3, 4]);
    // Sets with the same hash sum are still told apart: {1, 4} vs {2, 3} differ.
    let e = g.intern(&[1, 4]).unwrap();
    let f = g.intern(&[2, 3]).unwrap();
    assert_ne!(e, f);
}

#[test]
fn empty_and_unknown_ids_are_invalid() {
    let g = NexthopGroups::<u32>::new();
    assert_eq!(g.intern(&[]), Err(Error::InvalidParameter));
    assert_eq!(g.release(0), Err(Error::InvalidParameter));
    assert_eq!(g.release(u32::MAX), Err(Error::InvalidParameter));
    assert_eq!(g.select(0, 1), None);
    assert_eq!(g.select(u32::MAX, 1), None);
    assert_eq!(g.select(rtm::MAX_GROUPS, 1), None);
    assert_eq!(g.members(u32::MAX), None);
    assert!(g.is_empty());
}

#[test]
fn refcounts_release_and_reuse() {
    let g = NexthopGroups::<u32>::new();
    let a = g.intern(&[1, 2]).unwrap();
    let b = g.intern(&[3]).unwrap();
    assert_eq!((a, b), (0, 1), "ids are small, lowest first");
    assert_eq!(g.intern(&[2, 1]).unwrap(), a);
    assert_eq!(g.intern(&[1, 2]).unwrap(), a); // three references
    g.release(a).unwrap();
    g.release(a).unwrap();
    assert_eq!(g.len(), 2);
    assert!(g.select(a, 7).is_some(), "one reference left: still live");
    g.release(a).unwrap();
    assert_eq!(g.len(), 1);
    assert_eq!(g.select(a, 7), None);
    assert_eq!(g.members(a), None);
    assert_eq!(g.release(a), Err(Error::InvalidParameter));
    // The set is gone: interning it again makes a new group, on the freed id.
    let c = g.intern(&[5, 6]).unwrap();
    assert_eq!(c, a);
    assert_eq!(set(&g.members(c).unwrap()), set(&[5, 6]));
    assert!(matches!(g.select(c, 7), Some(5 | 6)));
    let d = g.intern(&[1, 2]).unwrap();
    assert_eq!(d, 2);
    assert_eq!(g.len(), 3);
}

#[test]
fn many_groups_grow_the_segments() {
    let g = NexthopGroups::<u32>::new();
    let ids: Vec<u32> = (0..1000).map(|i| g.intern(&[i, i + 1]).unwrap()).collect();
    assert_eq!(ids, (0..1000).collect::<Vec<_>>());
    for (i, &id) in ids.iter().enumerate() {
        let m = g.select(id, 99).unwrap();
        assert!(m == i as u32 || m == i as u32 + 1);
    }
    for &id in &ids {
        g.release(id).unwrap();
    }
    assert!(g.is_empty());
}

#[test]
fn select_is_stable_and_spreads() {
    let g = NexthopGroups::<u32>::new();
    let a = g.intern(&[10, 20, 30, 40]).unwrap();
    let hs = flows(4096);
    let first = picks(&g, a, &hs);
    assert!(first == picks(&g, a, &hs), "same flow, same member");
    // Unrelated changes do not move a's flows.
    let b = g.intern(&[10, 50]).unwrap();
    g.set_down(&50, true);
    g.release(b).unwrap();
    assert!(first == picks(&g, a, &hs), "unrelated changes moved flows");
    // Every member carries about a quarter of the flows.
    for m in [10, 20, 30, 40] {
        let n = first.iter().filter(|p| **p == Some(m)).count();
        assert!((800..1250).contains(&n), "member {m} carries {n} of 4096");
    }
}

#[test]
fn down_moves_only_its_flows_and_back_moves_only_to_it() {
    let g = NexthopGroups::<u32>::new();
    let a = g.intern(&[1, 2, 3, 4, 5]).unwrap();
    let hs = flows(8192);
    let before = picks(&g, a, &hs);

    assert_eq!(g.set_down(&3, true), 1);
    assert!(g.is_down(&3));
    let down = picks(&g, a, &hs);
    for (b, d) in before.iter().zip(&down) {
        assert_ne!(*d, Some(3), "a flow landed on the down member");
        if *b != Some(3) {
            assert_eq!(b, d, "a flow of an up member moved");
        }
    }
    // 3's flows spread over all four others.
    let moved: HashSet<u32> = before
        .iter()
        .zip(&down)
        .filter(|(b, _)| **b == Some(3))
        .map(|(_, d)| d.unwrap())
        .collect();
    assert_eq!(moved, set(&[1, 2, 4, 5]));

    // A second member down: again only its flows move.
    assert_eq!(g.set_down(&1, true), 1);
    let down2 = picks(&g, a, &hs);
    for (d, d2) in down.iter().zip(&down2) {
        assert!(!matches!(d2, Some(1 | 3)));
        if *d != Some(1) {
            assert_eq!(d, d2);
        }
    }

    // 3 comes back: only flows that move to 3 move.
    assert_eq!(g.set_down(&3, false), 1);
    assert!(!g.is_down(&3));
    let back = picks(&g, a, &hs);
    for (d2, bk) in down2.iter().zip(&back) {
        assert_ne!(*bk, Some(1));
        if d2 != bk {
            assert_eq!(
                *bk,
                Some(3),
                "a flow moved to a member that did not come back"
            );
        }
    }
    let on3 = back.iter().filter(|p| **p == Some(3)).count();
    assert!(on3 > 8192 / 4 - 400, "3 took back too little: {on3}");

    // 1 back too: only flows that move to 1 move, and the load is even again.
    assert_eq!(g.set_down(&1, false), 1);
    let all = picks(&g, a, &hs);
    for (bk, al) in back.iter().zip(&all) {
        if bk != al {
            assert_eq!(
                *al,
                Some(1),
                "a flow moved to a member that did not come back"
            );
        }
    }
    for m in 1..=5 {
        let n = all.iter().filter(|p| **p == Some(m)).count();
        assert!((1400..1900).contains(&n), "member {m} carries {n} of 8192");
    }
}

#[test]
fn down_and_back_restores_the_flows() {
    let g = NexthopGroups::<u32>::new();
    let a = g.intern(&[1, 2, 3, 4, 5]).unwrap();
    let hs = flows(4096);
    let before = picks(&g, a, &hs);
    for m in [2, 5] {
        g.set_down(&m, true);
        g.set_down(&m, false);
        assert!(
            picks(&g, a, &hs) == before,
            "down and back of {m} moved flows"
        );
    }
    // Two down, back in the reverse order: the original assignment too.
    g.set_down(&1, true);
    g.set_down(&4, true);
    g.set_down(&4, false);
    g.set_down(&1, false);
    assert!(
        picks(&g, a, &hs) == before,
        "LIFO down and back moved flows"
    );
}

#[test]
fn all_down_is_none_and_first_back_takes_all() {
    let g = NexthopGroups::<u32>::new();
    let a = g.intern(&[1, 2]).unwrap();
    let hs = flows(1024);
    g.set_down(&1, true);
    g.set_down(&2, true);
    assert!(picks(&g, a, &hs).iter().all(Option::is_none));
    assert_eq!(g.members(a).unwrap().len(), 2, "members stay");
    g.set_down(&2, false);
    assert!(picks(&g, a, &hs).iter().all(|p| *p == Some(2)));
    g.set_down(&1, false);
    let both = picks(&g, a, &hs);
    let on1 = both.iter().filter(|p| **p == Some(1)).count();
    assert!((400..624).contains(&on1), "1 carries {on1} of 1024");
}

#[test]
fn set_down_counts_groups_that_changed() {
    let g = NexthopGroups::<u32>::new();
    g.intern(&[1, 2]).unwrap();
    g.intern(&[1, 3]).unwrap();
    let c = g.intern(&[2, 3]).unwrap();
    g.intern(&[1]).unwrap();
    assert_eq!(g.set_down(&1, true), 3);
    assert_eq!(g.set_down(&1, true), 0, "already down");
    assert_eq!(g.set_down(&9, true), 0, "no group holds it");
    assert_eq!(g.set_down(&9, false), 0);
    assert_eq!(g.set_down(&9, false), 0);
    g.release(c).unwrap();
    assert_eq!(
        g.set_down(&2, true),
        1,
        "the released group no longer counts"
    );
    assert_eq!(g.set_down(&1, false), 3);
    assert_eq!(g.set_down(&1, false), 0);
}

#[test]
fn groups_created_while_a_member_is_down_start_with_it_down() {
    let g = NexthopGroups::<u32>::new();
    let hs = flows(2048);
    assert_eq!(g.set_down(&2, true), 0);
    let a = g.intern(&[1, 2, 3]).unwrap();
    let down = picks(&g, a, &hs);
    assert!(down.iter().all(|p| matches!(p, Some(1 | 3))));
    // Coming back, 2 takes flows only: the others' flows stay.
    assert_eq!(g.set_down(&2, false), 1);
    let up = picks(&g, a, &hs);
    for (d, u) in down.iter().zip(&up) {
        if d != u {
            assert_eq!(*u, Some(2));
        }
    }
    // And it ends where a group created with all up would be.
    let fresh = NexthopGroups::<u32>::new();
    let f = fresh.intern(&[1, 2, 3]).unwrap();
    assert!(up == picks(&fresh, f, &hs), "not the all-up assignment");
    // A group whose only member is down selects nothing.
    g.set_down(&7, true);
    let b = g.intern(&[7]).unwrap();
    assert_eq!(g.select(b, 0), None);
}

#[test]
fn large_groups_use_every_member() {
    let g = NexthopGroups::<u32>::new();
    let members: Vec<u32> = (0..300).collect();
    let a = g.intern(&members).unwrap();
    let hs = flows(1 << 16);
    let used: HashSet<u32> = picks(&g, a, &hs).into_iter().flatten().collect();
    assert_eq!(used.len(), 300);
    const { assert!(BUCKETS < 300 * 4) };
}

#[test]
fn string_members_and_debug() {
    let g = NexthopGroups::<String>::default();
    let a = g.intern(&["x".to_string(), "y".to_string()]).unwrap();
    assert!(matches!(g.select(a, 3).as_deref(), Some("x" | "y")));
    g.set_down(&"x".to_string(), true);
    assert_eq!(g.select(a, 3).as_deref(), Some("y"));
    let s = format!("{g:?}");
    assert!(s.contains("live: 1") && s.contains("\"x\""), "{s}");
}

/// Readers select in a loop while a writer marks members down and up. After each
/// `set_down(m, true)` returns, the writer publishes `(round, m)`, and before it marks m up
/// again it publishes `(round, none)`. A reader that reads the same `(round, m)` before
/// and after a select ran that select entirely while m was down: it must not get m.
/// Readers also check that they only ever get members of the group they asked.
#[test]
fn readers_racing_set_down_never_see_a_down_member() {
    let g = Arc::new(NexthopGroups::<u32>::new());
    let members = [1u32, 2, 3, 4];
    let a = g.intern(&members).unwrap();
    let b = g.intern(&[1, 2]).unwrap();
    // round << 8 | the member down whose set_down returned (0: none).
    let phase = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let checked = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..2)
        .map(|t| {
            let (g, phase, stop, checked) = (
                Arc::clone(&g),
                Arc::clone(&phase),
                Arc::clone(&stop),
                Arc::clone(&checked),
            );
            thread::spawn(move || {
                let hs = flows(256);
                let mut n = 0usize;
                // Reader 1 selects through a Selector (its cached states revalidated).
                let mut sel = g.selector();
                while !stop.load(Ordering::Acquire) {
                    for (i, &h) in hs.iter().enumerate() {
                        // SeqCst, as the writer's stores: the select below starts after
                        // the set_down whose return the first load saw.
                        let before = phase.load(Ordering::SeqCst);
                        let id = if (i + t) % 2 == 0 { a } else { b };
                        let got = if t == 0 {
                            g.select(id, h)
                        } else {
                            sel.select(id, h)
                        };
                        let after = phase.load(Ordering::SeqCst);
                        match got {
                            Some(m) => {
                                assert!(members.contains(&m), "not a member: {m}");
                                assert!(id == a || m <= 2, "not a member of b: {m}");
                                let down = (before & 0xff) as u32;
                                if before == after && down != 0 {
                                    assert_ne!(m, down, "select returned {m} after set_down");
                                    n += 1;
                                }
                            }
                            None => assert_eq!(id, b, "a always has an up member"),
                        }
                    }
                }
                checked.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    for round in 1..=3000u64 {
        let m = members[(round % 4) as usize];
        assert!(g.set_down(&m, true) >= 1);
        phase.store(round << 8 | u64::from(m), Ordering::SeqCst);
        for _ in 0..20 {
            thread::yield_now();
        }
        phase.store(round << 8, Ordering::SeqCst);
        assert!(g.set_down(&m, false) >= 1);
    }
    stop.store(true, Ordering::Release);
    for r in readers {
        r.join().unwrap();
    }
    let checked = checked.load(Ordering::Relaxed);
    eprintln!("selects checked while a member was down: {checked}");
    assert!(checked > 0);
}

/// A selector answers as `select` does through downs, come-backs, releases and
/// re-interns of other sets on the same ids, whatever it cached before.
#[test]
fn a_selector_answers_as_select() {
    let g = NexthopGroups::<u32>::new();
    let hs = flows(512);
    let mut ids: Vec<u32> = (0..8u32)
        .map(|i| g.intern(&[i, i + 1, i + 2, 100]).unwrap())
        .collect();
    let mut sel = g.selector();
    let check = |sel: &mut rtm::Selector<'_, u32>, ids: &[u32]| {
        for &id in ids.iter().chain([&(ids.len() as u32 + 5), &u32::MAX]) {
            for &h in &hs {
                assert_eq!(sel.select(id, h), g.select(id, h), "id {id} flow {h}");
            }
        }
    };
    check(&mut sel, &ids);
    let mut changed = 0;
    for step in 0..40u32 {
        match step % 4 {
            0 => changed += g.set_down(&(step % 10), true),
            1 => changed += g.set_down(&((step - 1) % 10), false),
            2 => changed += g.set_down(&100, step % 8 == 2),
            _ => {
                let i = (step as usize / 4) % ids.len();
                g.release(ids[i]).unwrap();
                // A different set on the freed id (lowest free first).
                ids[i] = g.intern(&[50 + step, 51 + step]).unwrap();
            }
        }
        check(&mut sel, &ids);
    }
    assert!(changed >= 40, "the marks changed groups: {changed}");
    sel.clear();
    check(&mut sel, &ids);
}

/// Readers racing releases and re-interns of other sets on the same ids: a select returns
/// a member of one of the sets the id has held, or None.
#[test]
fn readers_racing_release_and_reintern() {
    let g = Arc::new(NexthopGroups::<u32>::new());
    let id = g.intern(&[1, 2]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (g, stop) = (Arc::clone(&g), Arc::clone(&stop));
        thread::spawn(move || {
            let mut seen = HashSet::new();
            let mut sel = g.selector();
            while !stop.load(Ordering::Acquire) {
                for h in 0..64 {
                    if let Some(m) = g.select(id, h) {
                        assert!(matches!(m, 1..=4), "member of no set: {m}");
                        seen.insert(m);
                    }
                    if let Some(m) = sel.select(id, h) {
                        assert!(matches!(m, 1..=4), "a selector's member of no set: {m}");
                    }
                    if let Some(ms) = g.members(id) {
                        let s: HashSet<u32> = ms.iter().copied().collect();
                        assert!(s == set(&[1, 2]) || s == set(&[3, 4]), "torn set {s:?}");
                    }
                }
            }
            seen
        })
    };
    for i in 0..5000 {
        g.release(id).unwrap();
        let set = if i % 2 == 0 { [3, 4] } else { [1, 2] };
        assert_eq!(g.intern(&set).unwrap(), id);
    }
    stop.store(true, Ordering::Release);
    reader.join().unwrap();
}

//! `reclaimer`: snapshots opened and closed at arbitrary points across heavy churn of a
//! few keys, `collect()` at arbitrary points, and payloads that count their clones and
//! drops per id.
//!
//! Checks: every open snapshot yields exactly its contents; right after `collect()`,
//! `stats()` agrees with the model (a dead version is a replaced or deleted value some
//! open snapshot can still see) and exactly the values no snapshot can see and that are
//! not current have been dropped (the epoch is flushed by `collect()`, and nothing else
//! pins it); at the end, with everything closed and the table dropped, every payload has
//! been dropped exactly as often as it was created.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use arbitrary::Arbitrary;
use rtm::{EnumHandle, Enumeration, Error, Ipv4Net, Route, RouteKey, RouteTable};

use crate::input::{decode, CritIn, KeySel, RouteIn};
use crate::model::{canonical, Model};

type P = Ipv4Net;

#[derive(Arbitrary, Debug)]
pub enum Op {
    Add(RouteIn),
    Delete(KeySel),
    /// Several writes to one key in a row: bit i of `pattern` deletes (if present) instead
    /// of replacing or re-adding.
    Churn {
        key: RouteIn,
        times: u8,
        pattern: u8,
    },
    Open {
        crit: CritIn,
        handle: bool,
    },
    Step {
        idx: u8,
        n: u8,
    },
    Close {
        idx: u8,
        drain: bool,
    },
    Collect,
}

/// Per payload id: (created, dropped). A clone creates.
#[derive(Debug, Default)]
pub struct Book(Mutex<Vec<(u32, u32)>>);

impl Book {
    fn counts(&self, id: u32) -> (u32, u32) {
        self.0.lock().unwrap()[id as usize]
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

#[derive(Debug)]
pub struct Payload {
    id: u32,
    book: Arc<Book>,
}

impl Payload {
    fn new(book: &Arc<Book>) -> Self {
        let mut v = book.0.lock().unwrap();
        v.push((1, 0));
        Payload {
            id: (v.len() - 1) as u32,
            book: Arc::clone(book),
        }
    }
}

impl Clone for Payload {
    fn clone(&self) -> Self {
        self.book.0.lock().unwrap()[self.id as usize].0 += 1;
        Payload {
            id: self.id,
            book: Arc::clone(&self.book),
        }
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        // Never panic here: a drop may run inside the epoch's collection. Excess drops are
        // visible as dropped > created.
        if let Ok(mut v) = self.book.0.lock() {
            v[self.id as usize].1 += 1;
        }
    }
}

/// A payload's life in model versions: written at `start`, replaced or deleted at `end`.
#[derive(Clone, Copy, Debug)]
struct Life {
    start: u64,
    end: Option<u64>,
}

enum Cursor<'t> {
    Iter(Box<Enumeration<'t, P, Payload>>),
    Handle(EnumHandle),
}

struct Open<'t> {
    cursor: Cursor<'t>,
    snapshot: u64,
    frozen: VecDeque<Route<P, u32>>,
}

struct State<'t> {
    table: &'t RouteTable<P, Payload>,
    book: Arc<Book>,
    model: Model<P, u32>,
    lives: Vec<Life>,
    /// The model's version: one more per committed write.
    now: u64,
    max: usize,
    opens: Vec<Open<'t>>,
}

fn ids(r: Route<P, Payload>) -> Route<P, u32> {
    Route {
        key: r.key,
        priority: r.priority,
        metric: r.metric,
        enabled: r.enabled,
        value: r.value.id,
    }
}

impl<'t> State<'t> {
    fn add(&mut self, key: RouteKey<P>, r: &RouteIn) {
        let p = Payload::new(&self.book);
        let id = p.id;
        self.lives.push(Life {
            start: self.now + 1,
            end: None,
        });
        let route = r.with_key(key, p);
        let m = r.with_key(key, id);
        let got = self.table.add_route(route).map(|o| o.map(ids));
        if canonical(&m.key.prefix) {
            self.now += 1;
            let old = self.model.routes.insert(m.key, m);
            if let Some(o) = &old {
                self.lives[o.value as usize].end = Some(self.now);
            }
            assert_eq!(got, Ok(old));
        } else {
            // Never stored: it was dropped by the failed call.
            self.lives[id as usize].end = Some(0);
            assert_eq!(got, Err(Error::InvalidParameter));
        }
    }

    fn delete(&mut self, k: RouteKey<P>) {
        let got = self.table.delete_route(&k).map(ids);
        if !canonical(&k.prefix) {
            assert_eq!(got, Err(Error::InvalidParameter));
            return;
        }
        match self.model.routes.remove(&k) {
            Some(old) => {
                self.now += 1;
                self.lives[old.value as usize].end = Some(self.now);
                assert_eq!(got, Ok(old));
            }
            None => assert_eq!(got, Err(Error::NoSuchRoute)),
        }
    }

    fn open(&mut self, crit: &CritIn, handle: bool) {
        let (criteria, m) = crit.build(&self.model);
        let full = self.opens.len() >= self.max;
        let cursor = if handle {
            self.table
                .create_enumeration_handle(criteria)
                .map(Cursor::Handle)
        } else {
            self.table
                .enumerate(criteria)
                .map(|e| Cursor::Iter(Box::new(e)))
        };
        match cursor {
            Ok(cursor) => {
                assert!(m.valid() && !full);
                self.opens.push(Open {
                    cursor,
                    snapshot: self.now,
                    frozen: self.model.matching(&m).into(),
                });
            }
            Err(Error::InvalidParameter) => assert!(!m.valid()),
            Err(Error::NoSystemResources) => assert!(full),
            Err(e) => panic!("open: unexpected {e:?}"),
        }
    }

    fn step(&mut self, idx: usize) {
        let table = self.table;
        let o = &mut self.opens[idx];
        let want = o.frozen.pop_front();
        match &mut o.cursor {
            Cursor::Iter(it) => assert_eq!(it.next().map(ids), want),
            Cursor::Handle(h) => assert_eq!(
                table.enumerate_get_next_route(*h).map(ids),
                want.ok_or(Error::NoMoreRoutes)
            ),
        }
    }

    fn close(&mut self, idx: usize, drain: bool) {
        if drain {
            while !self.opens[idx].frozen.is_empty() {
                self.step(idx);
            }
            self.step(idx);
        }
        let o = self.opens.swap_remove(idx);
        match o.cursor {
            Cursor::Iter(it) => assert_eq!(it.close(), Ok(())),
            Cursor::Handle(h) => {
                assert_eq!(self.table.close_enumeration_handle(h), Ok(()));
                assert_eq!(
                    self.table.enumerate_get_next_route(h).map(ids),
                    Err(Error::InvalidHandle)
                );
            }
        }
    }

    /// Whether the table must still hold payload `id` (current, or visible to a snapshot).
    fn retained(&self, id: usize) -> bool {
        let l = self.lives[id];
        match l.end {
            None => true,
            Some(end) => self
                .opens
                .iter()
                .any(|o| l.start <= o.snapshot && o.snapshot < end),
        }
    }

    fn collect_and_check(&self) {
        self.table.collect();
        let s = self.table.stats();
        assert_eq!(s.live_routes, self.model.routes.len());
        assert_eq!(s.open_enumerations, self.opens.len());
        let dead = (0..self.lives.len())
            .filter(|&id| self.lives[id].end.is_some() && self.retained(id))
            .count();
        assert_eq!(s.dead_versions, dead, "dead versions after collect()");
        assert_eq!(self.book.len(), self.lives.len());
        for id in 0..self.lives.len() {
            let (created, dropped) = self.book.counts(id as u32);
            // We hold no clone: the table holds exactly one copy of what it retains, and
            // the epoch has freed the rest.
            let held = u32::from(self.retained(id));
            assert_eq!(
                dropped + held,
                created,
                "payload {id}: dropped {dropped} of {created}, retained {held}, {:?}",
                self.lives[id]
            );
        }
    }
}

pub fn run(data: &[u8]) {
    let (limit, ops): (u8, Vec<Op>) = decode(data);
    let book = Arc::new(Book::default());
    {
        let (max, table) = if limit % 2 == 0 {
            let n = usize::from(limit / 2 % 12) + 1;
            (n, RouteTable::<P, Payload>::with_max_enumerations(n))
        } else {
            (rtm::DEFAULT_MAX_ENUMERATIONS, RouteTable::new())
        };
        let mut st = State {
            table: &table,
            book: Arc::clone(&book),
            model: Model::default(),
            lives: Vec::new(),
            now: 0,
            max,
            opens: Vec::new(),
        };
        for op in &ops {
            match op {
                Op::Add(r) => st.add(r.key.key(&st.model), r),
                Op::Delete(k) => st.delete(k.key(&st.model)),
                Op::Churn {
                    key,
                    times,
                    pattern,
                } => {
                    // One key for every write of the burst.
                    let k = key.key.key(&st.model);
                    let mut r = *key;
                    for i in 0..times % 8 + 1 {
                        if pattern >> i & 1 != 0 && st.model.routes.contains_key(&k) {
                            st.delete(k);
                        } else {
                            r.metric = r.metric.wrapping_add(i);
                            r.enabled = r.enabled.wrapping_add(i);
                            st.add(k, &r);
                        }
                    }
                }
                Op::Open { crit, handle } => st.open(crit, *handle),
                Op::Step { idx, n } => {
                    if !st.opens.is_empty() {
                        let i = usize::from(*idx) % st.opens.len();
                        for _ in 0..n % 8 + 1 {
                            st.step(i);
                        }
                    }
                }
                Op::Close { idx, drain } => {
                    if !st.opens.is_empty() {
                        let i = usize::from(*idx) % st.opens.len();
                        st.close(i, *drain);
                    }
                }
                Op::Collect => st.collect_and_check(),
            }
        }
        // Every snapshot still yields exactly its contents; then close them all.
        while !st.opens.is_empty() {
            st.close(st.opens.len() - 1, true);
        }
        st.collect_and_check();
        assert_eq!(st.table.stats().dead_versions, 0);
        // `table` drops here, after `st`.
        drop(st);
    }
    // The table is gone: every payload ever created has been dropped exactly once per
    // copy. Anything still deferred in the epoch goes with a few flushes (retried a while
    // in case another thread of a test process holds the epoch back).
    for _ in 0..1000 {
        let v = book.0.lock().unwrap().clone();
        assert!(
            v.iter().all(|&(c, d)| d <= c),
            "a payload was dropped twice: {v:?}"
        );
        if v.iter().all(|&(c, d)| c == d) {
            return;
        }
        crossbeam_epoch::pin().flush();
        std::thread::yield_now();
    }
    let v = book.0.lock().unwrap();
    for (id, &(created, dropped)) in v.iter().enumerate() {
        assert_eq!(created, dropped, "payload {id} after the table was dropped");
    }
}

//! An enumeration's cursor: its snapshot, criteria, and position in the skip list.

use std::ptr::NonNull;

use crate::clock::Clock;
use crate::criteria::{Best, Criteria, Step};
use crate::prefix::Prefix;
use crate::route::{Route, RouteKey};
use crate::skiplist::{Node, NodeRef, SkipList};
use crate::sync::Guard;
use crate::version::{Entry, VersionNode};

/// Where a cursor stands between calls.
#[derive(Clone, Copy, Debug)]
enum Pos {
    /// Nothing returned yet: seek to the criteria's lower bound.
    Start,
    /// The node last returned.
    At(NodeAddr),
    /// Exhausted.
    Done,
}

/// The address of a skip-list node, kept between calls with its type erased (a cursor
/// does not name the table's value type). A pointer, not an integer, so that it keeps
/// its provenance.
#[derive(Clone, Copy, Debug)]
struct NodeAddr(NonNull<()>);

// SAFETY: a `NodeAddr` is only an address: the cursor dereferences it under an epoch
// guard, on whichever thread drives the cursor, while its snapshot keeps the node alive
// (see `Cursor::advance`). Nodes are shared data of a table that is `Send + Sync`.
unsafe impl Send for NodeAddr {}
// SAFETY: as above; `&NodeAddr` gives nothing but the address.
unsafe impl Sync for NodeAddr {}

/// The state of one enumeration, kept between calls. It holds no guard and no reference,
/// only the address of the last node returned, so it is `Send`.
#[derive(Debug)]
pub(crate) struct Cursor<P: Prefix> {
    snapshot: u64,
    criteria: Criteria<P>,
    lower: RouteKey<P>,
    upper: Option<RouteKey<P>>,
    pos: Pos,
    /// The best route (key, priority, metric) of the network last examined under
    /// `best_only` or `best_multipath`.
    best: Option<(P, Option<Ranked<P>>)>,
}

impl<P: Prefix> Cursor<P> {
    /// A cursor over `snapshot`; `criteria` must be valid.
    pub(crate) fn new(snapshot: u64, criteria: Criteria<P>) -> Self {
        let (lower, upper, pos) = match criteria.range() {
            Some((l, u)) => (l, u, Pos::Start),
            None => (
                RouteKey::first_of(crate::prefix::sealed::Bits::from_parts(0, 0)),
                None,
                Pos::Done,
            ),
        };
        Self {
            snapshot,
            criteria,
            lower,
            upper,
            pos,
            best: None,
        }
    }

    /// The snapshot this cursor reads.
    pub(crate) fn snapshot(&self) -> u64 {
        self.snapshot
    }

    /// The next route of the snapshot that matches the criteria, in key order.
    ///
    /// If the embedder's `Clone` of the value panics, the cursor stays where it was, so
    /// the next call returns the same route (nothing is lost).
    ///
    /// The caller keeps the snapshot pinned in a slot for the cursor's whole life.
    pub(crate) fn next<V: Clone + Send + 'static>(
        &mut self,
        list: &SkipList<RouteKey<P>, V>,
        clock: &Clock,
        guard: &Guard,
    ) -> Option<Route<P, V>> {
        let from = self.mark();
        let h = self.advance(list, clock, guard)?;
        // The clone may panic: move only once it is made.
        let to = std::mem::replace(&mut self.pos, from.0);
        let r = route(h.node.key, h.entry);
        self.pos = to;
        Some(r)
    }

    /// Appends the next routes to `out`, at most `max`, under one guard; returns how many.
    ///
    /// If a clone panics, the cursor and `out` may be left part way: the caller undoes
    /// the batch (see `RouteTable::next_batch_of`).
    pub(crate) fn next_batch<V: Clone + Send + 'static>(
        &mut self,
        list: &SkipList<RouteKey<P>, V>,
        clock: &Clock,
        guard: &Guard,
        max: usize,
        out: &mut Vec<Route<P, V>>,
    ) -> usize {
        let mut n = 0;
        while n < max {
            match self.advance(list, clock, guard) {
                Some(h) => out.push(route(h.node.key, h.entry)),
                None => break,
            }
            n += 1;
        }
        n
    }

    /// Where the cursor stands, to come back to with [`Cursor::rewind`].
    pub(crate) fn mark(&self) -> Mark {
        Mark(self.pos)
    }

    /// Puts the cursor back where [`Cursor::mark`] found it. The node a mark names is one
    /// this cursor returned (or none), so it stays alive as `advance` requires.
    pub(crate) fn rewind(&mut self, mark: Mark) {
        self.pos = mark.0;
    }

    /// Moves to the next node with a route of the snapshot that matches the criteria, and
    /// returns it with the version the snapshot sees there.
    ///
    /// The caller keeps the snapshot pinned in a slot for the cursor's whole life.
    pub(crate) fn advance<'g, V: Send + 'static>(
        &mut self,
        list: &SkipList<RouteKey<P>, V>,
        clock: &Clock,
        guard: &'g Guard,
    ) -> Option<Hit<'g, P, V>> {
        let mut node = match self.pos {
            Pos::Done => return None,
            Pos::Start => list.lower_bound(&self.lower, guard),
            Pos::At(NodeAddr(addr)) => {
                // `addr` is a node this cursor returned, so a value of it is visible at
                // `self.snapshot`. The reclaimer retires a node only when its chain is a
                // lone deletion marker that every pinned snapshot sees, and our snapshot
                // stays pinned (its slot is held) for the cursor's life, so the node is
                // neither retired nor unlinked, let alone freed.
                // SAFETY: the node is alive and linked while our snapshot is pinned; the
                // address came from a `Node<RouteKey<P>, V>` of this table.
                unsafe {
                    NodeRef::from_ptr(addr.as_ptr().cast_const().cast::<Node<RouteKey<P>, V>>())
                }
                .and_then(|n| n.next(guard))
            }
        };
        while let Some(n) = node {
            if self.upper.is_some_and(|u| n.key > u) {
                break;
            }
            match self.criteria.step(&n.key.prefix) {
                Step::Here => {}
                Step::Jump(k) => {
                    node = list.lower_bound(&k, guard);
                    continue;
                }
                Step::End => break,
            }
            // Look ahead: start loading the node after the next one, and the next one's
            // newest version (a separate allocation), so that those misses overlap this
            // node's instead of following them. The next node itself was asked for one
            // step ago, so reading its links here rarely waits.
            let next = n.next(guard);
            if let Some(m) = next {
                if let Some(mm) = m.next(guard) {
                    mm.prefetch();
                }
                m.chain.prefetch_head();
            }
            if let Some(v) = n.chain.visible(self.snapshot, clock, guard) {
                if let Some(e) = v.entry.as_ref() {
                    if self.criteria.admits(&n.key, e.enabled)
                        && self.criteria.unchanged(v.decided())
                        && self.is_chosen(&n, e, list, clock, guard)
                    {
                        self.pos = Pos::At(NodeAddr(n.as_non_null().cast()));
                        return Some(Hit {
                            node: n,
                            version: v,
                            entry: e,
                        });
                    }
                }
            }
            node = next;
        }
        self.pos = Pos::Done;
        None
    }

    /// Whether the route of `n` (entry `e` at the snapshot) is among the network's routes
    /// the criteria keep: any, its best, or one of its best set.
    fn is_chosen<V: Send + 'static>(
        &mut self,
        n: &Node<RouteKey<P>, V>,
        e: &Entry<V>,
        list: &SkipList<RouteKey<P>, V>,
        clock: &Clock,
        guard: &Guard,
    ) -> bool {
        let which = self.criteria.best;
        if which == Best::All {
            return true;
        }
        let prefix = n.key.prefix;
        let best = match self.best {
            Some((p, b)) if p == prefix => b,
            _ => {
                let s = self.snapshot;
                let b = best_of(list, prefix, guard, |node| {
                    node.chain
                        .visible(s, clock, guard)
                        .and_then(|v| v.entry.as_ref())
                })
                .map(|(k, e)| (k, e.priority, e.metric));
                self.best = Some((prefix, b));
                b
            }
        };
        match (which, best) {
            (Best::Only, Some((k, _, _))) => k == n.key,
            (_, Some((_, p, m))) => e.enabled && (e.priority, e.metric) == (p, m),
            (_, None) => false,
        }
    }
}

/// A network's best route as a cursor remembers it: its key, priority and metric.
type Ranked<P> = (RouteKey<P>, u32, u32);

/// A position of a cursor (see [`Cursor::mark`]). The best-route memory is not part of it:
/// it is what the snapshot says of a network, true wherever the cursor stands.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mark(Pos);

/// What [`Cursor::advance`] found: a node, the version the snapshot sees there, and its
/// entry (that version is a value, not a deletion marker).
pub(crate) struct Hit<'g, P: Prefix, V> {
    pub(crate) node: NodeRef<'g, RouteKey<P>, V>,
    #[cfg_attr(rtm_negative = "block-unconditional", allow(dead_code))]
    pub(crate) version: &'g VersionNode<V>,
    pub(crate) entry: &'g Entry<V>,
}

/// A returned route: a clone of the stored one.
#[inline]
pub(crate) fn route<P: Prefix, V: Clone>(key: RouteKey<P>, e: &Entry<V>) -> Route<P, V> {
    Route {
        key,
        priority: e.priority,
        metric: e.metric,
        enabled: e.enabled,
        value: e.value.clone(),
    }
}

/// The best route of network `prefix` among the entries `read` gives for its nodes: the
/// enabled one with the smallest `(priority, metric, key)`.
pub(crate) fn best_of<'g, P: Prefix, V: Send + 'static>(
    list: &SkipList<RouteKey<P>, V>,
    prefix: P,
    guard: &'g Guard,
    read: impl Fn(&'g Node<RouteKey<P>, V>) -> Option<&'g Entry<V>>,
) -> Option<(RouteKey<P>, &'g Entry<V>)> {
    let first = list.lower_bound(&RouteKey::first_of(prefix), guard);
    best_in_run(prefix, first, None, guard, read)
}

/// [`best_of`] over a run already found: the nodes from `first` while their prefix is
/// `prefix`, and no further than `last` when the caller knows where the run ends (which
/// spares reading the node after it).
pub(crate) fn best_in_run<'g, P: Prefix, V: Send + 'static>(
    prefix: P,
    first: Option<NodeRef<'g, RouteKey<P>, V>>,
    last: Option<NodeRef<'g, RouteKey<P>, V>>,
    guard: &'g Guard,
    read: impl Fn(&'g Node<RouteKey<P>, V>) -> Option<&'g Entry<V>>,
) -> Option<(RouteKey<P>, &'g Entry<V>)> {
    let mut best: Option<(RouteKey<P>, &Entry<V>)> = None;
    let mut node = first;
    while let Some(n) = node {
        if n.key.prefix != prefix || last.is_some_and(|l| n.key > l.key) {
            break;
        }
        if let Some(e) = read(n.get()) {
            if e.enabled
                && best.is_none_or(|(bk, be)| {
                    (e.priority, e.metric, n.key) < (be.priority, be.metric, bk)
                })
            {
                best = Some((n.key, e));
            }
        }
        if last == Some(n) {
            break;
        }
        node = n.next(guard);
    }
    best
}

/// The best set of network `prefix` among the entries `read` gives for its nodes: every
/// enabled one whose `(priority, metric)` is the smallest, in key order. One walk of the
/// network's nodes: a route that ties the best so far joins it, a better one starts over.
pub(crate) fn best_set<'g, P: Prefix, V: Send + 'static>(
    list: &SkipList<RouteKey<P>, V>,
    prefix: P,
    guard: &'g Guard,
    read: impl Fn(&'g Node<RouteKey<P>, V>) -> Option<&'g Entry<V>>,
) -> Vec<(RouteKey<P>, &'g Entry<V>)> {
    let mut set: Vec<(RouteKey<P>, &Entry<V>)> = Vec::new();
    let mut node = list.lower_bound(&RouteKey::first_of(prefix), guard);
    while let Some(n) = node {
        if n.key.prefix != prefix {
            break;
        }
        if let Some(e) = read(n.get()).filter(|e| e.enabled) {
            match set.first().map(|(_, b)| (b.priority, b.metric)) {
                Some(rank) if (e.priority, e.metric) > rank => {}
                Some(rank) if (e.priority, e.metric) == rank => set.push((n.key, e)),
                _ => {
                    set.clear();
                    set.push((n.key, e));
                }
            }
        }
        node = n.next(guard);
    }
    set
}

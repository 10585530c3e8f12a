//! The reclaimer: unlinks what no snapshot or feed can see and hands it to crossbeam-epoch,
//! a bounded step at a time, visiting the chains the journal names.
//!
//! # What may go
//!
//! The reclaimer announces the clock value `now` and scans the slots (invariant 3, see
//! `slots`): the pinned snapshots, and the feeds' floors. A feed needs every version newer
//! than its floor (it reads each commit's old and new value), so the lowest floor `F` acts
//! as a lower `now`: versions newer than `F` all stay. With `pinned` the snapshots, a chain
//! keeps its current version, every version newer than `min(now, F)`, and for each pinned
//! snapshot the one version it sees; the rest is unlinked ([`Chain::prune`]). A key whose
//! chain is a lone deletion marker that every snapshot sees is retired and its node
//! removed from the skip list.
//!
//! A feed that falls more than the journal's capacity behind stops counting: its floor is
//! raised to `now - capacity` (it has lost changes, and finds out through the journal or
//! the announced horizon before it reads anything; see `feed`). So a feed that stops
//! reading holds at most a journal's worth of versions.
//!
//! # Where to look: the journal
//!
//! Every commit names its chain in the journal, in version order. The reclaimer keeps a
//! cursor there. The *horizon* `H` is the lowest of `now`, the pinned snapshots and `F`:
//! when it processes commit `t <= H`, the version `t` shadowed is visible to nobody, so one
//! prune of that chain frees it. Commits newer than `H` wait (a snapshot or a feed may
//! still want what they shadowed), unless the cursor falls half a journal behind: then it
//! prunes them anyway (keeping what the pins need) and puts the chain on the *retained*
//! list. A chain that keeps dead versions after a prune goes on that list too, tagged with
//! the horizon at which a prune frees something more (the commit that shadowed its oldest
//! dead version, or its deletion marker); the list is a min-heap on that tag, and a chain
//! is visited again once the horizon reaches its tag (a snapshot closed, a feed read on).
//! So each chain with garbage is visited when its garbage has become free, and never
//! because of the table's size.
//!
//! # Steps
//!
//! Each write and each close runs one step of at most [`STEP_BUDGET`] chain visits (a
//! commit of `n` keys runs one of `n` times that: its own record's visits). The slot scan
//! is refreshed every [`RESCAN`] commits or after a close, so it is amortized to a few
//! loads per write and one scan per close; a large step runs in slices of [`SLICE`]
//! visits, each checking its scan's age and re-pinning, and stops at the clock value it
//! started at. A visit for a single write's commit `t` prunes from that commit's own
//! version down (`Chain::prune_below`): a hot
//! key's newer versions, which the visit must keep anyway while the reclaimer is behind,
//! are not walked again for each of its commits. A step takes the reclaimer's lock with
//! `try_lock`: a thread that finds another one stepping goes on without waiting, and the
//! work stays in the journal for the next step. [`collect`](crate::RouteTable::collect)
//! takes the lock (waiting at most for one running step), processes the whole journal and
//! the whole retained list, and lets the epoch free what was unlinked.
//!
//! # Overruns
//!
//! If the writers ever get a whole journal ahead of the cursor, the commits they overwrote
//! are lost to the reclaimer (`Stats::reclaimer_overruns` counts them), and the chains they
//! named would keep their garbage forever. So a lost commit starts a *walk*: the steps
//! visit the table's nodes in key order, [`STEP_BUDGET`] of them per step besides their
//! journal work, from where the last step stopped, until the walk reaches the end. The
//! node the walk stops at is kept linked (a visit does not retire it) so that the next
//! step can resume from it. A new overrun during a walk starts it again from the first
//! node. `collect` finishes a walk in progress. Memory comes back without anyone calling
//! `collect`, and no step pays for more than its budget.
//!
//! # Embedder code
//!
//! The embedder's `Drop` runs only inside the epoch's destructors (and when the table is
//! dropped), which contain a panic and leak that one value (see `version::drop_version`).
//! The epoch runs destructors when a thread pins it afresh (not when a pinned thread pins
//! again) and on a flush. So a step or a collection pins *before* it takes the lock, and
//! flushes only after releasing it: no destructor runs while the lock is held, and a `Drop`
//! that calls back into the table (even `collect`) finds the lock free, never a deadlock.
//! Nothing else the reclaimer runs under its lock calls embedder code, so the lock is never
//! poisoned by it; a poisoned lock (an allocation failure, say) is taken over as is, since
//! the state is valid between any two of its statements that matter (the cursor moves
//! after a visit, and a visit is idempotent).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::clock::Clock;
use crate::journal::Read;
use crate::prefix::Prefix;
use crate::route::RouteKey;
use crate::skiplist::{Node, NodeRef, SkipList};
use crate::slots::{Scan, Slots};
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, CachePadded, Epoch, Guard, Mutex, Ordering};
use crate::version::{SweepPermit, VersionNode};

/// Chain visits per step of a write or a close.
pub(crate) const STEP_BUDGET: usize = 8;

/// Commits after which a step refreshes its scan of the slots.
const RESCAN: u64 = 256;

/// The visits of one slice of a long step (see `Reclaimer::run`): a slice takes well under
/// a millisecond, so its scan stays within a few hundred commits of the clock.
const SLICE: usize = 256;

/// A node on the retained list, by address, and the horizon at which visiting it again
/// frees something (`Pruned::free_at`). Only the reclaimer removes nodes, and it never
/// removes one while it is on the list, so the address stays valid. Ordered by that
/// horizon first (a min-heap through `Reverse`).
type Retained = Reverse<(u64, *const ())>;

/// The reclaimer's private state, under its lock.
struct State {
    /// Every commit at or below it has been processed.
    cursor: u64,
    /// Entries of the batch record at `cursor + 1` already visited (a record may take
    /// several steps).
    sub: usize,
    /// The last scan of the slots, and the close count when it was taken.
    scan: Option<(Scan, u64)>,
    retained: BinaryHeap<Retained>,
    /// The walk that recovers from an overrun (module docs).
    walk: Walk,
}

/// Where the walk after an overrun stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Walk {
    /// No overrun since the last walk finished.
    Idle,
    /// An overrun happened: walk from the first node.
    Start,
    /// Walk on from this node (by address). A visit never retires it, and only the
    /// reclaimer removes nodes, so it stays linked and allocated until the walk moves on.
    At(*const ()),
}

// SAFETY: the raw node addresses on the retained list are only dereferenced by the
// reclaimer under its lock, under an epoch guard, while the nodes are linked (see
// `Retained`).
unsafe impl Send for State {}

/// The reclaimer's shared state.
pub(crate) struct Reclaimer {
    state: CachePadded<Mutex<State>>,
    /// Value versions that are no longer current but still linked.
    dead: CachePadded<AtomicUsize>,
    /// Deletion markers still linked.
    markers: CachePadded<AtomicUsize>,
    /// Closes so far: a close may raise the horizon, so the next step scans again.
    closes: CachePadded<AtomicU64>,
    /// Commits overwritten in the journal before the reclaimer read them.
    overruns: AtomicU64,
    /// Whether the last run left work that a higher horizon would let it do (chains on the
    /// retained list, commits held back by a pin or a feed, a walk in progress). A close
    /// runs a step only then: a close can raise the horizon, but when nothing waits for
    /// it, the step would scan the slots for nothing.
    held: AtomicBool,
}

/// What a step or a collection may use: the table's parts.
pub(crate) struct Parts<'a, P: Prefix, V, C> {
    pub(crate) list: &'a SkipList<RouteKey<P>, V>,
    pub(crate) clock: &'a Clock,
    pub(crate) slots: &'a Slots<C>,
    pub(crate) epoch: &'a Epoch,
}

/// How much of the retained list and journal a run processes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// At most this many chain visits, commits up to the horizon.
    Step(usize),
    /// Everything: every commit up to `now`, every retained chain.
    All,
}

/// The chain of the reclaimer's work on one node, with the prune parameters of a scan.
struct Pass<'s> {
    now: u64,
    pinned: &'s [u64],
    horizon: u64,
    permit: SweepPermit,
}

impl Reclaimer {
    pub(crate) fn new() -> Self {
        Self {
            state: CachePadded::new(Mutex::new(State {
                cursor: 0,
                sub: 0,
                scan: None,
                retained: BinaryHeap::new(),
                walk: Walk::Idle,
            })),
            dead: CachePadded::new(AtomicUsize::new(0)),
            markers: CachePadded::new(AtomicUsize::new(0)),
            closes: CachePadded::new(AtomicU64::new(0)),
            overruns: AtomicU64::new(0),
            held: AtomicBool::new(false),
        }
    }

    /// A current value became a dead version (replaced or deleted).
    #[inline]
    pub(crate) fn shadowed(&self) {
        self.dead.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn dead(&self) -> usize {
        self.dead.load(Ordering::Relaxed)
    }

    /// A deletion marker was committed.
    #[inline]
    pub(crate) fn marked(&self) {
        self.markers.fetch_add(1, Ordering::Relaxed);
    }

    /// Deletion markers still linked.
    pub(crate) fn markers(&self) -> usize {
        self.markers.load(Ordering::Relaxed)
    }

    /// A slot was closed: the next step scans the slots again.
    #[inline]
    pub(crate) fn closed(&self) {
        self.closes.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the last run left work that waits for the horizon to move.
    #[inline]
    pub(crate) fn held(&self) -> bool {
        // Relaxed: a hint. A stale `false` leaves the work to the next write, close or
        // `collect`; a stale `true` costs one step.
        self.held.load(Ordering::Relaxed)
    }

    /// How often the journal overwrote commits before the reclaimer read them.
    pub(crate) fn overruns(&self) -> u64 {
        self.overruns.load(Ordering::Relaxed)
    }

    fn lock_state(&self, wait: bool) -> Option<crate::sync::MutexGuard<'_, State>> {
        if wait {
            Some(self.state.lock().unwrap_or_else(|e| e.into_inner()))
        } else {
            match self.state.try_lock() {
                Ok(s) => Some(s),
                Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        }
    }

    /// One bounded step, unless another thread is stepping (then nothing: the work waits
    /// in the journal for the next step).
    pub(crate) fn step<P: Prefix, V: Send + 'static, C>(&self, parts: &Parts<'_, P, V, C>) {
        self.step_for(parts, 1);
    }

    /// A step for a commit of `keys` keys: `keys` times the budget of a single write's, so
    /// that a batch pays for the chain visits its own commit needs (and the reclaimer keeps
    /// up with batches as it does with single writes).
    pub(crate) fn step_for<P: Prefix, V: Send + 'static, C>(
        &self,
        parts: &Parts<'_, P, V, C>,
        keys: usize,
    ) {
        #[cfg(test)]
        if tests::paused() {
            return;
        }
        // Pinned before the lock: a fresh pin may run the epoch's destructors, the
        // embedder's `Drop`s among them, and those may call back into the table (module
        // docs).
        let guard = parts.epoch.pin();
        if let Some(mut state) = self.lock_state(false) {
            self.run(
                &mut state,
                parts,
                Mode::Step(STEP_BUDGET.saturating_mul(keys.max(1))),
                guard,
            );
        }
    }

    /// Everything that can go now goes: the whole journal, the whole retained list (and
    /// the rest of a walk after an overrun); then the epoch is flushed so that it frees
    /// what was unlinked once no thread still reads it.
    pub(crate) fn collect<P: Prefix, V: Send + 'static, C>(&self, parts: &Parts<'_, P, V, C>) {
        // Pinned before the lock, as in `step`.
        let guard = parts.epoch.pin();
        let mut state = self.lock_state(true).expect("waits for the lock");
        self.run(&mut state, parts, Mode::All, guard);
        drop(state);
        // Flushed after the lock is released: a flush runs destructors.
        parts.epoch.flush_deferred();
    }

    /// Runs `mode`'s work. A step larger than [`SLICE`] visits (a big commit's) goes in
    /// slices, each against a scan at most [`RESCAN`] commits old and under a fresh pin:
    /// one scan for the whole step would fall ever further behind the writers meanwhile,
    /// and every version they write stays newer than its `now`, so the step's visits of a
    /// hot chain would each walk all of them without freeing any, and leave the chains
    /// long for the steps after it; one pin for the whole step would hold the epoch.
    fn run<P: Prefix, V: Send + 'static, C>(
        &self,
        state: &mut State,
        parts: &Parts<'_, P, V, C>,
        mode: Mode,
        mut guard: Guard,
    ) {
        let Mode::Step(mut left) = mode else {
            self.slice(state, parts, mode, &mut guard, u64::MAX, true);
            return;
        };
        // The commits made while the step runs are the next steps' work, and the walk
        // after an overrun moves by one step's budget per run, however large the run.
        let until = parts.clock.now();
        let mut first = true;
        while left > 0 {
            let budget = Mode::Step(left.min(SLICE));
            let used = self.slice(state, parts, budget, &mut guard, until, first);
            first = false;
            if used == 0 {
                break;
            }
            left = left.saturating_sub(used);
            guard.repin();
        }
    }

    /// One slice of a run: the journal up to `until`, then due retained chains, then (if
    /// `walk`) the walk, with at most `mode`'s budget of visits besides the walk's. Returns
    /// the visits it made (the walk's included), 0 when there was nothing to do.
    fn slice<P: Prefix, V: Send + 'static, C>(
        &self,
        state: &mut State,
        parts: &Parts<'_, P, V, C>,
        mode: Mode,
        guard: &mut Guard,
        until: u64,
        walk: bool,
    ) -> usize {
        let cap = parts.clock.journal.capacity();
        let closes = self.closes.load(Ordering::Relaxed);
        let fresh = match &state.scan {
            Some((scan, at)) => {
                mode == Mode::All
                    || *at != closes
                    || parts.clock.now().saturating_sub(scan.now) >= RESCAN
            }
            None => true,
        };
        if fresh {
            let scan = parts.slots.announce_and_scan(parts.clock, cap);
            state.scan = Some((scan, closes));
        }
        let scan = state
            .scan
            .as_ref()
            .map(|(s, _)| s.clone())
            .expect("scanned");
        #[cfg(rtm_negative = "step-ignores-floor")]
        // Broken on purpose: prune as if no feed needed the versions after its floor.
        let floor = scan.now;
        #[cfg(not(rtm_negative = "step-ignores-floor"))]
        let floor = scan.floor;
        let pass = Pass {
            now: scan.now.min(floor),
            pinned: &scan.pinned,
            horizon: scan
                .now
                .min(floor)
                .min(scan.pinned.first().copied().unwrap_or(u64::MAX)),
            // SAFETY: we hold the lock (`state` is borrowed from its guard), so we are the
            // table's one reclaimer for as long as the permit lives (it dies with `pass`,
            // before this function returns and the lock is released).
            permit: unsafe { SweepPermit::new() },
        };
        let mut budget = match mode {
            Mode::Step(n) => n,
            Mode::All => usize::MAX,
        };
        let given = budget;

        // The journal, in version order.
        while budget > 0 {
            let t = state.cursor + 1;
            if t > scan.now || t > until {
                break;
            }
            let behind = parts.clock.now().saturating_sub(state.cursor);
            if mode != Mode::All && t > pass.horizon && behind < cap / 2 {
                break;
            }
            match parts.clock.journal.read(t, guard) {
                Read::NotYet => break,
                Read::Lost => {
                    // Overwritten by a newer lap (the reclaimer forgets only versions at or
                    // below its cursor). Every position up to `now - cap` may be lost too:
                    // skip them in one move rather than one per iteration, and let the
                    // walk find what they named.
                    let oldest = parts.clock.now().saturating_sub(cap).max(t);
                    self.overruns
                        .fetch_add(oldest - state.cursor, Ordering::Relaxed);
                    state.walk = Walk::Start;
                    state.cursor = oldest;
                    state.sub = 0;
                    continue;
                }
                Read::Gap => {}
                Read::Commit(version) => {
                    // SAFETY: a version the journal names is alive while it is named (the
                    // reclaimer, us, takes it out before freeing it), and `guard` pins.
                    let version = unsafe { &*version.cast::<VersionNode<V>>() };
                    let node = version.node().cast::<Node<RouteKey<P>, V>>();
                    // The reclaimer removes a node only while processing (or after) the
                    // commit of its chain's head, its newest commit, and the cursor only
                    // moves forward; the version holds the whole allocation's address.
                    // SAFETY: so a node named by a commit at or after the cursor is
                    // linked, and `guard` pins.
                    let node = unsafe { NodeRef::from_ptr(node) }.expect("a commit names a node");
                    self.visit(state, parts, node, t, Some(version), &pass, guard);
                    budget -= 1;
                }
                Read::Batch(log) => {
                    // SAFETY: a record in a slot is alive while the slot names it (whoever
                    // takes it out defers its free), and `guard` pins.
                    let log = unsafe { &*log };
                    while state.sub < log.entries.len() && budget > 0 {
                        let node = log.entries[state.sub].0.cast::<Node<RouteKey<P>, V>>();
                        // Every version of a batch committed at `t` (or cancelled there) is
                        // kept while the cursor is below `t` (`visit` keeps what is newer
                        // than the cursor, and a cancelled version until its record is
                        // read), so its chain is not retired and its node is linked.
                        // SAFETY: so the node is linked, and `guard` pins.
                        let node =
                            unsafe { NodeRef::from_ptr(node) }.expect("a record names nodes");
                        self.visit(state, parts, node, t, None, &pass, guard);
                        state.sub += 1;
                        budget -= 1;
                    }
                    if state.sub < log.entries.len() {
                        break;
                    }
                    state.sub = 0;
                    if t <= pass.horizon {
                        // Every feed has read past it, and every chain it names has been
                        // visited: the record has done its work.
                        parts.clock.journal.forget_batch(t, guard);
                    }
                }
            }
            state.cursor = t;
        }

        // Chains kept for a snapshot or a feed that has since moved on: take every due
        // one first (a visit may put its chain back, and it must not be taken twice).
        let mut due = Vec::new();
        while due.len() < budget {
            match state.retained.peek() {
                Some(Reverse((at, _))) if mode == Mode::All || *at <= pass.horizon => {
                    let Reverse((_, node)) = state.retained.pop().expect("peeked");
                    due.push(node);
                }
                _ => break,
            }
        }
        let mut used = (given - budget) + due.len();
        for addr in due {
            // SAFETY: nodes on the retained list are linked (see `Retained`); the address is
            // that of the whole allocation (from `NodeRef::as_ptr`).
            let node = unsafe { NodeRef::from_ptr(addr.cast::<Node<RouteKey<P>, V>>()) }
                .expect("a retained node");
            node.chain.set_retained(false);
            let cursor = state.cursor;
            self.visit(state, parts, node, cursor, None, &pass, guard);
        }

        if walk && state.walk != Walk::Idle {
            let budget = match mode {
                Mode::Step(_) => STEP_BUDGET,
                Mode::All => usize::MAX,
            };
            used += self.walk(state, parts, &pass, guard, budget);
        }
        let held =
            !state.retained.is_empty() || state.cursor < scan.now || state.walk != Walk::Idle;
        // Relaxed: a hint (see `held`); the lock orders it for the next run.
        self.held.store(held, Ordering::Relaxed);
        used
    }

    /// Prunes one chain; retires its key when it is a lone deletion marker everyone sees
    /// and its newest commit has been processed (`upto`); otherwise puts it on the retained
    /// list if it still holds something a pin may release later.
    #[allow(clippy::too_many_arguments)]
    fn visit<P: Prefix, V: Send + 'static, C>(
        &self,
        state: &mut State,
        parts: &Parts<'_, P, V, C>,
        node: NodeRef<'_, RouteKey<P>, V>,
        upto: u64,
        from: Option<&VersionNode<V>>,
        pass: &Pass<'_>,
        guard: &Guard,
    ) {
        if node.chain.is_retired() {
            return;
        }
        // Versions newer than `upto` stay: their commits may not be in the journal yet, and
        // a writer must not name a version there after we freed it.
        let now = pass.now.min(upto);
        let journal = &parts.clock.journal;
        let p = match from {
            // A single write's commit: what it shadowed lies below its own version.
            Some(v) => {
                node.chain
                    .prune_below(v, upto, now, pass.pinned, journal, guard, &pass.permit)
            }
            None => node
                .chain
                .prune(now, pass.pinned, journal, guard, &pass.permit),
        };
        self.dead.fetch_sub(p.values, Ordering::Relaxed);
        if p.markers != 0 {
            self.markers.fetch_sub(p.markers, Ordering::Relaxed);
        }
        let retained = node.chain.is_retained();
        // The node a walk will resume from stays linked until the walk moves past it.
        let walk_stop = state.walk == Walk::At(node.as_ptr().cast::<()>());
        if p.retirable && p.head_ts <= upto && !retained && !walk_stop && SkipList::is_built(node) {
            if let Some(marker) = node.chain.retire(&parts.clock.journal, guard, &pass.permit) {
                // SAFETY: we are the reclaimer (we hold the permit), we just retired the
                // chain, the node is built, and a retired chain is skipped above, so the
                // node is removed once.
                unsafe { parts.list.remove(node, guard) };
                // The node goes with its chain: the lone marker, or a lone cancelled
                // version (a failed or cancelled batch's add of a new key), which was
                // never counted as a marker.
                if marker {
                    self.markers.fetch_sub(1, Ordering::Relaxed);
                }
            }
            return;
        }
        if p.free_at != u64::MAX && !retained {
            node.chain.set_retained(true);
            state
                .retained
                .push(Reverse((p.free_at, node.as_ptr().cast::<()>())));
        }
    }

    /// Up to `budget` nodes of the walk after an overrun, from where it stopped (module
    /// docs).
    fn walk<P: Prefix, V: Send + 'static, C>(
        &self,
        state: &mut State,
        parts: &Parts<'_, P, V, C>,
        pass: &Pass<'_>,
        guard: &mut Guard,
        budget: usize,
    ) -> usize {
        let mut node: *const Node<RouteKey<P>, V> = match state.walk {
            Walk::Idle => return 0,
            Walk::Start => parts
                .list
                .first(guard)
                .map_or(std::ptr::null(), |n| n.as_ptr()),
            Walk::At(at) => at.cast(),
        };
        let mut steps = 0usize;
        // `node` is null, or the walk's stop (kept linked by `visit`, see `Walk::At`), or
        // was read from a forward pointer under `guard` and not removed since: only the
        // reclaimer removes nodes, it runs under its lock, and it has not visited `node`
        // yet in this walk (we read the successor before visiting). So it is linked and
        // allocated, even across `repin` and across steps.
        // SAFETY: `node` is null or alive, as just argued.
        while let Some(n) = unsafe { NodeRef::from_ptr(node) } {
            if steps == budget {
                state.walk = Walk::At(node.cast());
                return steps;
            }
            let next = n.next(guard).map_or(std::ptr::null(), |n| n.as_ptr());
            // Move the stop first: the visit may retire `n`, and must not retire `next`.
            state.walk = Walk::At(next.cast());
            let cursor = state.cursor;
            self.visit(state, parts, n, cursor, None, pass, guard);
            node = next;
            steps += 1;
            if steps.is_multiple_of(256) {
                // Let the epoch advance during a long walk.
                guard.repin();
            }
        }
        state.walk = Walk::Idle;
        steps
    }
}

#[cfg(test)]
pub(crate) use tests::pause;

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    thread_local! {
        /// Makes this thread's steps do nothing, so that a test can let the writers run a
        /// whole journal ahead of the reclaimer.
        static PAUSED: Cell<bool> = const { Cell::new(false) };
    }

    pub(super) fn paused() -> bool {
        PAUSED.with(Cell::get)
    }

    pub(crate) fn pause(on: bool) {
        PAUSED.with(|p| p.set(on));
    }
}

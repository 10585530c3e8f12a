//! Commits: many route changes at one version, seen whole by every reader.
//!
//! # The protocol
//!
//! A [`Batch`] is first reduced to one change per key, in key order (the batch's changes of
//! one key apply in the order they were queued). Then, under one epoch pin:
//!
//! 1. **Install.** The committer allocates a [`Decision`] (`INSTALLING`) and links one
//!    version per key, in key order, each pointing at the decision instead of owning a
//!    timestamp. A reader that meets such a version skips it (it reads the version below),
//!    as it would skip a write that has not committed. A single writer that meets an add
//!    *slides under it*: it registers in the decision, links its own version right below
//!    the batch's, decides it, and leaves, so its write comes just before the batch. A
//!    writer that meets any other batch version (a delete, a withdrawal, a block
//!    operation's write: they depend on what the key held), or a batch that meets another
//!    batch, *abandons* the batch with one CAS on the decision (`INSTALLING ->
//!    ABANDONED`) and goes on. Neither waits for the committer, however long the committer
//!    is preempted.
//! 2. **Ready.** Once every version is linked, the committer moves the decision to
//!    `READY` with one CAS; if a writer abandoned it first, the attempt is cancelled.
//! 3. **Decide.** A `READY` batch gets one timestamp, decided once by a CAS that anyone may
//!    make once no writer is sliding under the batch: the committer, a reader that meets
//!    the batch (and helps, as it helps a pending single write), a writer about to shadow
//!    one of its versions, the last slider to leave. A snapshot taken before
//!    the decision sees none of the batch; one taken after sees all of it (the argument is
//!    in `Decision::state`): the commit is one step for every reader.
//! 4. **Finish.** The committer writes the timestamp into each version's own word, records
//!    the batch in the journal as one record listing every key, keeps the counters, and
//!    hands the decision to the epoch.
//!
//! A cancelled attempt is finished too: each version's word says cancelled, with the clock
//! value at which the committer records the cancellation in the journal, so that the
//! reclaimer finds the versions (nobody ever sees them) and frees them. Then the committer
//! tries again, with the values of the cancelled versions cloned (the first attempt moves
//! the batch's values; only a retry clones). A batch whose `delete_route` finds its key not
//! live is cancelled and fails.
//!
//! Serializability: every key's chain is linked in timestamp order (a writer settles the
//! head it shadows first; a slider's version, below the batch's, is decided before the
//! batch can be), a batch's versions are decided together after all of them are linked,
//! and nothing is linked over an undecided batch version without cancelling it. So the
//! batch's changes happen at its timestamp, over exactly the versions they shadow then
//! (the committer counts what a slider put below it), and every other commit is before or
//! after it.
//!
//! Progress: readers and single writers never wait for a batch, and single writers never
//! cancel a batch of adds. A committer waits only for the sliders in flight under its
//! batch (each a few instructions) once the batch is ready. Two batches that touch the
//! same key may cancel each other, as a writer cancels a batch's delete; each cancelled
//! committer backs off (a growing number of yields) before it tries again, so one of them
//! gets through.

use std::cell::Cell;
use std::fmt;

use crate::error::Error;
use crate::prefix::{is_canonical, Prefix};
use crate::route::{Route, RouteKey, Version};
use crate::skiplist::{Inserted, NodeRef};
use crate::table::RouteTable;
use crate::version::{destroy_decision_later, Decision, Entry, Stamp, VersionNode, CANCELLED};

/// Route changes that commit together, at one version.
///
/// Routing changes come in groups: the prefixes of one BGP UPDATE, the paths of an ECMP
/// route, the stale routes of a restarted peer. A `Batch` collects them, and
/// [`RouteTable::commit`] applies them all at one version: every reader (a `get_route`, a
/// `lookup`, an enumeration, a feed, a Fib) sees the table before the batch or after it,
/// never in between. A batch owns its routes and keys and borrows no table, so it can be
/// built on one thread and committed on another.
///
/// ```
/// use rtm::{Batch, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
/// let t = RouteTable::<Ipv4Net, &str>::new();
/// let key = |p: &str| RouteKey::new(p.parse().unwrap(), ProtocolId::BGP, InterfaceId(1), "192.0.2.1".parse().unwrap());
/// t.add_route(Route::new(key("10.0.0.0/8"), "old")).unwrap();
///
/// // withdraw a network and announce its replacement, as one step
/// let mut b = Batch::new();
/// b.delete_route(key("10.0.0.0/8")).add_route(Route::new(key("10.0.0.0/9"), "new"));
/// assert_eq!(b.len(), 2);
/// let v = t.commit(b).unwrap();
/// assert_eq!(t.version(), v);
/// assert_eq!(t.lookup("10.1.2.3".parse().unwrap()).unwrap().value, "new");
/// ```
pub struct Batch<P: Prefix, V> {
    ops: Vec<Op<P, V>>,
}

/// One queued change.
enum Op<P: Prefix, V> {
    Add(Route<P, V>),
    Delete(RouteKey<P>),
    Withdraw(RouteKey<P>),
}

impl<P: Prefix, V> Op<P, V> {
    fn key(&self) -> &RouteKey<P> {
        match self {
            Op::Add(r) => &r.key,
            Op::Delete(k) | Op::Withdraw(k) => k,
        }
    }
}

impl<P: Prefix, V> Default for Batch<P, V> {
    fn default() -> Self {
        Self { ops: Vec::new() }
    }
}

impl<P: Prefix, V: fmt::Debug> fmt::Debug for Batch<P, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_list();
        for op in &self.ops {
            match op {
                Op::Add(r) => l.entry(&("add", r)),
                Op::Delete(k) => l.entry(&("delete", k)),
                Op::Withdraw(k) => l.entry(&("withdraw", k)),
            };
        }
        l.finish()
    }
}

impl<P: Prefix, V> Batch<P, V> {
    /// An empty batch.
    ///
    /// ```
    /// let b = rtm::Batch::<rtm::Ipv4Net, u32>::new();
    /// assert!(b.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues an insert, or a replace of the route with the same key.
    ///
    /// ```
    /// use rtm::{Batch, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey};
    /// let k = RouteKey::<Ipv4Net>::new("10.0.0.0/8".parse().unwrap(), ProtocolId(1), InterfaceId(1), "192.0.2.1".parse().unwrap());
    /// let mut b = Batch::new();
    /// b.add_route(Route::new(k, 1)).add_route(Route::new(k, 2)); // the last add wins
    /// assert_eq!(b.len(), 2);
    /// ```
    pub fn add_route(&mut self, route: Route<P, V>) -> &mut Self {
        self.ops.push(Op::Add(route));
        self
    }

    /// Queues a delete. The key must be live when the batch commits (after the batch's
    /// earlier changes): otherwise the whole commit fails with [`Error::NoSuchRoute`].
    ///
    /// ```
    /// use rtm::{Batch, Error, InterfaceId, Ipv4Net, ProtocolId, RouteKey, RouteTable};
    /// let k = RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId(1), InterfaceId(1), "192.0.2.1".parse().unwrap());
    /// let mut b = Batch::<Ipv4Net, u32>::new();
    /// b.delete_route(k);
    /// assert_eq!(RouteTable::new().commit(b), Err(Error::NoSuchRoute));
    /// ```
    pub fn delete_route(&mut self, key: RouteKey<P>) -> &mut Self {
        self.ops.push(Op::Delete(key));
        self
    }

    /// Queues a withdrawal: a delete if the key is live, nothing otherwise.
    ///
    /// ```
    /// use rtm::{Batch, InterfaceId, Ipv4Net, ProtocolId, RouteKey, RouteTable};
    /// let k = RouteKey::new("10.0.0.0/8".parse().unwrap(), ProtocolId(1), InterfaceId(1), "192.0.2.1".parse().unwrap());
    /// let t = RouteTable::<Ipv4Net, u32>::new();
    /// let mut b = Batch::new();
    /// b.withdraw_route(k);
    /// assert_eq!(t.commit(b), Ok(t.version()));
    /// ```
    pub fn withdraw_route(&mut self, key: RouteKey<P>) -> &mut Self {
        self.ops.push(Op::Withdraw(key));
        self
    }

    /// How many changes are queued.
    ///
    /// ```
    /// assert_eq!(rtm::Batch::<rtm::Ipv4Net, ()>::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether no change is queued.
    ///
    /// ```
    /// assert!(rtm::Batch::<rtm::Ipv6Net, ()>::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// What a batch does to one key, once its changes of that key are folded together.
pub(crate) struct Plan<P: Prefix, V> {
    pub(crate) key: RouteKey<P>,
    /// `Some(entry)`: write this. `None`: delete the key if it is live (the entry was
    /// moved into a version by an attempt when this is `None` on a write; see `put`).
    pub(crate) entry: Option<Entry<V>>,
    /// Whether the plan writes a value (false: it deletes).
    pub(crate) put: bool,
    /// The key must be live before the batch (a `delete_route` it did not add first).
    pub(crate) must_live: bool,
    /// Block operations only: write only over exactly this version (by address), and skip
    /// the key (not fail) if its newest version is any other.
    pub(crate) over: Option<*const ()>,
}

impl<P: Prefix, V> Plan<P, V> {
    /// A plan of a block operation: `entry` (or a delete) over exactly `over`.
    #[cfg_attr(rtm_negative = "block-unconditional", allow(dead_code))]
    pub(crate) fn over(key: RouteKey<P>, entry: Option<Entry<V>>, over: *const ()) -> Self {
        Self {
            key,
            put: entry.is_some(),
            entry,
            must_live: false,
            over: Some(over),
        }
    }

    /// A block operation's plan that writes over whatever is there (the negative control
    /// of the block model only).
    #[cfg(rtm_negative = "block-unconditional")]
    pub(crate) fn anyway(key: RouteKey<P>, entry: Option<Entry<V>>) -> Self {
        Self {
            key,
            put: entry.is_some(),
            entry,
            must_live: false,
            // Null: over any version, a deletion marker included.
            over: Some(std::ptr::null()),
        }
    }
}

fn entry_of<P: Prefix, V>(r: Route<P, V>) -> Entry<V> {
    Entry {
        priority: r.priority,
        metric: r.metric,
        enabled: r.enabled,
        value: r.value,
    }
}

/// Folds the batch's changes into one plan per key, in key order.
fn plan<P: Prefix, V>(mut ops: Vec<Op<P, V>>) -> Result<Vec<Plan<P, V>>, Error> {
    // Stable: the changes of one key keep their order.
    ops.sort_by(|a, b| a.key().cmp(b.key()));
    let mut plans: Vec<Plan<P, V>> = Vec::new();
    // Whether the key is live after the changes folded so far: None while that depends on
    // the table (no change of the key folded yet).
    let mut live: Option<bool> = None;
    for op in ops {
        let key = *op.key();
        if plans.last().is_none_or(|p| p.key != key) {
            plans.push(Plan {
                key,
                entry: None,
                put: false,
                must_live: false,
                over: None,
            });
            live = None;
        }
        let p = plans.last_mut().expect("just pushed");
        match op {
            Op::Add(r) => {
                p.entry = Some(entry_of(r));
                p.put = true;
                live = Some(true);
            }
            Op::Delete(_) => {
                match live {
                    None => p.must_live = true,
                    Some(false) => return Err(Error::NoSuchRoute),
                    Some(true) => {}
                }
                p.entry = None;
                p.put = false;
                live = Some(false);
            }
            Op::Withdraw(_) => {
                p.entry = None;
                p.put = false;
                live = Some(false);
            }
        }
    }
    Ok(plans)
}

/// A version an attempt linked.
struct Linked<'g, P: Prefix, V> {
    plan: usize,
    node: NodeRef<'g, RouteKey<P>, V>,
    version: *mut VersionNode<V>,
    /// The version it shadows was a value (a single write that slides under the version
    /// before the decision changes that: see `VersionNode::shadowed_now`).
    was: Cell<bool>,
    /// The version it shadowed when it was linked (null: none).
    over: *const (),
}

/// How an attempt ended.
enum Attempt {
    /// Committed at this version (or changed nothing: the table's version then), with
    /// this many keys changed.
    Done(u64, usize),
    /// A writer cancelled it: try again.
    Cancelled,
    /// The batch fails (its `delete_route` found no live route).
    Failed(Error),
}

impl<P: Prefix, V: Clone + Send + Sync + 'static> RouteTable<P, V> {
    /// Applies the batch's changes, in the order they were queued, as one commit, and
    /// returns its version.
    ///
    /// All or nothing: [`Error::InvalidParameter`] when a route or key has a prefix with
    /// host bits set, [`Error::NoSuchRoute`] when a `delete_route` names a key that is not
    /// live at the commit (after the batch's earlier changes); then nothing of the batch is
    /// applied, and no reader or feed ever sees any of it. On `Ok(v)` every change has
    /// version `v`: a snapshot at `v` or later sees all of them, an older one none. An
    /// empty batch (or one whose changes change nothing) commits nothing and returns the
    /// table's current version. Every value the batch carries is dropped exactly once.
    ///
    /// Readers never wait for a commit and never see it unfinished, and a committer
    /// preempted halfway holds up nobody: a single write that meets an unfinished add
    /// goes in just before the batch, and one that meets an unfinished delete or
    /// withdrawal cancels the batch (the committer then tries again). A batch's size is bounded only by
    /// memory, and it costs less than its changes committed one at a time.
    ///
    /// ```
    /// use rtm::{Batch, Criteria, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
    /// let t = RouteTable::<Ipv4Net, u32>::new();
    /// let key = |i: u32| RouteKey::new(format!("10.{i}.0.0/16").parse().unwrap(), ProtocolId::BGP, InterfaceId(1), "192.0.2.1".parse().unwrap());
    /// let mut b = Batch::new();
    /// for i in 0..3 {
    ///     b.add_route(Route::new(key(i), i));
    /// }
    /// let before = t.enumerate(Criteria::all()).unwrap();
    /// let v = t.commit(b).unwrap();
    /// let after = t.enumerate(Criteria::all()).unwrap();
    /// assert_eq!((before.count(), after.count()), (0, 3));
    /// assert!(t.get_route(&key(1)).is_some());
    /// assert_eq!(t.version(), v);
    /// ```
    pub fn commit(&self, batch: Batch<P, V>) -> Result<Version, Error> {
        if batch.ops.iter().any(|op| !is_canonical(&op.key().prefix)) {
            return Err(Error::InvalidParameter);
        }
        let mut plans = plan(batch.ops)?;
        self.commit_plans(&mut plans).map(|(t, _)| Version(t))
    }

    /// Commits `plans` (one per key, in key order) as one version, trying again while
    /// writers cancel it. Returns its version and how many keys it changed.
    pub(crate) fn commit_plans(&self, plans: &mut [Plan<P, V>]) -> Result<(u64, usize), Error> {
        let mut yields = 1u32;
        loop {
            match self.attempt(plans) {
                Attempt::Done(t, n) => {
                    // The Fib first: the reclaimer's step does not delay the commit's
                    // way to the forwarding table.
                    self.help_fib(n);
                    if n > 0 {
                        self.reclaimer.step_for(&self.parts(), n);
                    }
                    return Ok((t, n));
                }
                Attempt::Failed(e) => return Err(e),
                Attempt::Cancelled => {
                    for _ in 0..yields {
                        crate::sync::yield_now();
                    }
                    yields = (yields * 2).min(1 << 10);
                }
            }
        }
    }

    /// One attempt at committing `plans` (module docs).
    fn attempt(&self, plans: &mut [Plan<P, V>]) -> Attempt {
        let decision = Decision::alloc();
        #[cfg(rtm_negative = "batch-ready-early")]
        {
            // Broken on purpose: ready before anything is linked, so a reader may decide
            // the batch while half of it is installed.
            // SAFETY: just allocated, ours.
            unsafe { &*decision }.ready();
        }
        let guard = self.epoch.pin();
        let mut linked: Vec<Linked<'_, P, V>> = Vec::with_capacity(plans.len());
        let mut failed = None;
        for (i, plan) in plans.iter_mut().enumerate() {
            // A writer may have cancelled us: stop linking early (a cheap load).
            // SAFETY: the decision is ours; it is freed below, after this loop.
            if i % 64 == 63 && unsafe { &*decision }.abandoned() {
                break;
            }
            let over = plan.over;
            let cond = |s: Option<&VersionNode<V>>| match over {
                // Broken on purpose (see `Plan::anyway`): write over whatever is there.
                #[cfg(rtm_negative = "block-unconditional")]
                Some(seen) if seen.is_null() => true,
                Some(seen) => s.is_some_and(|s| std::ptr::eq(s.erased(), seen)),
                None => s.is_some_and(|s| s.entry.is_some()),
            };
            if plan.put && over.is_none() {
                let entry = plan
                    .entry
                    .take()
                    .expect("an attempt starts with every entry");
                let v = VersionNode::alloc_in_batch(Some(entry), decision, !plan.must_live);
                // SAFETY: `v` was just allocated, undecided and alone, and is still ours.
                let (node, prev) =
                    match unsafe { self.list.insert(plan.key, v, &self.clock, &guard) } {
                        Inserted::New(node) => (node, None),
                        Inserted::Pushed(node, prev) => (node, prev),
                    };
                let was = prev.is_some_and(|p| p.entry.is_some());
                linked.push(Linked {
                    plan: i,
                    node,
                    version: v,
                    was: Cell::new(was),
                    over: prev.map_or(std::ptr::null(), |p| p.erased()),
                });
                if plan.must_live && !was {
                    // A `delete_route` before this key's add found it not live: the
                    // version just linked is cancelled with the rest of the attempt.
                    failed = Some(Error::NoSuchRoute);
                    break;
                }
                continue;
            }
            // A delete if live, or a block operation's write over one version.
            let node = self.list.find(&plan.key, &guard);
            let entry = if plan.put { plan.entry.take() } else { None };
            let pushed = node.and_then(|node| {
                let v = VersionNode::alloc_in_batch(entry, decision, false);
                match node.chain.push_if(v, &self.clock, &guard, cond) {
                    Ok(Ok(prev)) => Some(Linked {
                        plan: i,
                        node,
                        version: v,
                        was: Cell::new(prev.is_some_and(|p| p.entry.is_some())),
                        over: prev.map_or(std::ptr::null(), |p| p.erased()),
                    }),
                    Ok(Err(_)) | Err(_) => {
                        // SAFETY: `v` was not linked: it is still ours alone.
                        let e = unsafe { VersionNode::free_unpublished(v) };
                        if plan.put {
                            plan.entry = e;
                        }
                        None
                    }
                }
            });
            match pushed {
                Some(l) => linked.push(l),
                None if plan.must_live => {
                    failed = Some(Error::NoSuchRoute);
                    break;
                }
                None => {}
            }
        }
        // SAFETY: as above.
        let d = unsafe { &*decision };
        if linked.is_empty() {
            // Nothing was linked, so no other thread ever saw the decision.
            // SAFETY: allocated above, never published.
            drop(unsafe { Box::from_raw(decision) });
            return match failed {
                Some(e) => Attempt::Failed(e),
                None => Attempt::Done(self.clock.now(), 0),
            };
        }
        let entries = || {
            linked
                .iter()
                .map(|l| {
                    (
                        l.node.as_ptr().cast::<()>(),
                        l.version.cast_const().cast::<()>(),
                    )
                })
                .collect::<Box<[_]>>()
        };
        #[cfg(rtm_negative = "batch-ready-early")]
        let ready = failed.is_none() && d.decide(&self.clock, &guard) != Stamp::Open;
        #[cfg(not(rtm_negative = "batch-ready-early"))]
        let ready = failed.is_none() && d.ready();
        let committed = if ready {
            // Writers sliding under the batch's adds hold the decision back until their
            // own versions are decided; the last of them decides it, or this does.
            loop {
                match d.decide(&self.clock, &guard) {
                    Stamp::At(t) => break Some(t),
                    Stamp::Open => crate::sync::yield_now(),
                    // A writer of a delete of ours met the batch held back by sliders.
                    Stamp::Cancelled(_) => break None,
                }
            }
        } else {
            d.abandon();
            None
        };
        let Some(t) = committed else {
            // Cancelled: record it, so that the reclaimer finds the versions.
            let at = self.clock.tick();
            for l in &linked {
                // SAFETY: we are the committer, and the decision is not handed over yet.
                unsafe { (*l.version).finish(CANCELLED | at) };
            }
            self.clock
                .journal
                .batch(at, crate::journal::Log::new(at, true, entries()), &guard);
            destroy_decision_later(decision, &guard);
            if failed.is_none() {
                // The values go with the cancelled versions; the retry writes clones of
                // them (still alive: we are pinned since before the reclaimer could
                // read the cancellation).
                for l in &linked {
                    let p = &mut plans[l.plan];
                    if p.put {
                        // SAFETY: `l.version` is linked (or unlinked after we pinned).
                        let e = unsafe { &*l.version }.entry.as_ref().expect("a write");
                        p.entry = Some(Entry {
                            priority: e.priority,
                            metric: e.metric,
                            enabled: e.enabled,
                            value: e.value.clone(),
                        });
                    }
                }
            }
            let n = linked.len();
            drop(linked);
            drop(guard);
            self.reclaimer.step_for(&self.parts(), n);
            return match failed {
                Some(e) => Attempt::Failed(e),
                None => Attempt::Cancelled,
            };
        };
        for l in &linked {
            // SAFETY: `l.version` is linked, and the guard keeps it.
            let v = unsafe { &*l.version };
            // A single write may have slid under the version before the decision; what
            // the batch shadows is what is below it now (the reclaimer leaves the link
            // below a version whose word still names its decision alone).
            if let Some(below) = v.shadowed_now(l.over, &guard) {
                l.was.set(below);
            }
            // SAFETY: we are the committer, and the decision is not handed over yet.
            unsafe { v.finish(t) };
        }
        self.clock
            .journal
            .batch(t, crate::journal::Log::new(t, false, entries()), &guard);
        destroy_decision_later(decision, &guard);
        for l in &linked {
            // SAFETY: as above.
            let is_value = unsafe { &*l.version }.entry.is_some();
            self.count_commit(l.was.get(), is_value);
        }
        let n = linked.len();
        Attempt::Done(t, n)
    }
}

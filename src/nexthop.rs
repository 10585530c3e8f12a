//! Next-hop groups: deduplicated sets of next hops that many networks share, with a
//! lock-free, allocation-free flow selection and resilient hashing.
//!
//! # What it is for
//!
//! A network with several equal-cost best paths sends its traffic over all of them. Real
//! tables have many networks but few distinct sets of next hops, so forwarding planes keep
//! *groups*: a network names a group id, a group holds its members ([`NexthopGroups`]).
//! Two things follow:
//!
//! * a change of a group (a member marked down or up again) is one atomic store, seen at
//!   once by every network that uses the group;
//! * prefix-independent convergence: when a next hop fails, [`NexthopGroups::set_down`]
//!   repoints every network behind it in O(groups that hold it), however many networks
//!   there are, without writing to any table or Fib.
//!
//! # The published state: one `Arc` per group, through arc-swap
//!
//! Each live group's state (its members, which of them are down, and its bucket table) is
//! one immutable `Arc<GroupState>` in the group's slot. A writer builds a new state beside
//! the old one and publishes it with one store; a reader loads the `Arc` and reads one
//! whole state: never a member set of one version with the bucket table of another, and
//! never freed memory (the load keeps the state alive while the reader uses it). The cell
//! is [`arc_swap::ArcSwapOption`]: a load takes no lock, writes no shared reference count
//! and never waits for a writer, and a store never waits for a reader. (Under `cfg(loom)`
//! the cell is a loom-checked stand-in with the same contract; see `ArcCell` in
//! `src/sync.rs` for why.)
//!
//! The slots are indexed by id. Ids are small integers, handed out lowest first and reused
//! after a release. The slots live in segments of 64, 128, 256, ... slots (segment `k`
//! holds `64 << k`), each allocated once, by a writer, the first time an id in it is
//! handed out, and never moved or freed before the registry is dropped: a reader indexes
//! a segment that never reallocates under it. 18 segments give [`MAX_GROUPS`] ids.
//!
//! # Why no generation is needed on the read path
//!
//! A released id may be reused by another group. The classic hazard (ABA) is a reader
//! that reads a slot in two steps and mixes two incarnations. Here a reader takes one step:
//! one load of the slot's `Arc`. It gets the old group's whole state (the select then
//! happened before the release), nothing (`None`: the id is not live), or the new group's
//! whole state (the select happened after the re-intern). A stale reader keeps the old
//! state alive through its load guard, so it never reads freed members. What the id
//! alone cannot tell is *which* incarnation the caller meant: a caller that keeps using
//! an id it released gets whatever group holds the id now, as with any reused id.
//!
//! # Resilient hashing and the bucket count
//!
//! [`NexthopGroups::select`] maps a flow to a *bucket*, `flow_hash % buckets`, and the
//! bucket to a member. A group has 256 buckets, or `4 × members` rounded up to a power of
//! two when it has more than 64 members ([`BUCKETS`]), so the modulo is a mask and every
//! member owns at least four buckets. At creation the buckets are dealt to the members
//! round-robin (bucket `b` to member `b % members`: its *home* buckets). Then:
//!
//! * a member that goes down gives away exactly its buckets, each to the up member that
//!   owns the fewest at that point: only the flows that were on it move, evenly over the
//!   members still up;
//! * a member that comes back takes buckets, its home buckets first, then those of
//!   members still down, only from members that own more than their fair share
//!   (`buckets / up members`), until it owns its share: only flows that move *to* it
//!   move. Members that go down and come back in LIFO order (one alone, say) restore the
//!   assignment exactly: every flow returns to where it was;
//! * when every member is down, the bucket table stays as it was and `select` returns
//!   `None`; the first member to come back takes every bucket.
//!
//! Plain `hash % up members` would move almost every flow on every change; consistent
//! hashing on a ring would need a search per packet. The bucket table is one indexed load.
//!
//! # What a reader costs
//!
//! `select(id, flow_hash)`: the segment and offset of `id` (a shift, a leading-zero count
//! and a subtraction), one `Acquire` load of the segment pointer, an arc-swap load (a few
//! atomic operations on a thread-local debt slot, no shared cache line written), one load
//! of the bucket, one of the member, and `N::clone`. No lock, no allocation (if `N`'s
//! `Clone` allocates none), no hashing of the member set, no wait for a writer.
//!
//! The arc-swap load is most of that cost (its debt slot takes an atomic swap). A
//! forwarding thread that selects in a loop keeps a [`Selector`] instead: it caches, per
//! id, the last state it saw (arc-swap's `Cache`) and revalidates it with one `Relaxed`
//! load of the slot's pointer, so a warm select is an index, a load, a compare and the
//! bucket pick.
//!
//! # Writers
//!
//! [`intern`](NexthopGroups::intern), [`release`](NexthopGroups::release) and
//! [`set_down`](NexthopGroups::set_down) are control-plane operations, serialized by one
//! mutex that readers never take. It guards a map from member sets to ids (keyed by an
//! order-independent hash of the set, so `N` needs only `Eq + Hash`), each group's
//! reference count, the index from a member to the groups that hold it, and the set of
//! members marked down: the marks are per member, so a group interned while a member is
//! down starts with it down. The marks and every affected group's new state are published
//! inside one critical section, so an `intern` never sees a mark without the groups it
//! changed, nor the groups without the mark (the `nexthop-late-mark` negative control of
//! the loom model `loom-tests/tests/nexthop_select.rs` splits them and fails).
//!
//! A panic in `N`'s `Hash`, `Eq` or `Clone` during a writer's call leaves the registry
//! usable (the mutex's poison is cleared) but may leave that call's group half recorded.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Arc, PoisonError};

use crate::error::Error;
use crate::sync::{ArcCell, ArcCellCache, Mutex, MutexGuard, OnceLock};

/// The slots of the first segment; segment `k` holds `FIRST_SEGMENT << k`.
const FIRST_SEGMENT: usize = 64;
/// The number of segments.
const SEGMENTS: usize = 18;

/// How many groups can be live at once: ids run from 0 to `MAX_GROUPS - 1`
/// (16,777,152). An [`intern`](NexthopGroups::intern) of a new set when every id is
/// taken is [`Error::NoSystemResources`].
///
/// ```
/// assert_eq!(rtm::MAX_GROUPS, 64 * ((1 << 18) - 1));
/// ```
pub const MAX_GROUPS: u32 = (FIRST_SEGMENT * ((1 << SEGMENTS) - 1)) as u32;

/// The most distinct members one group may have (65,536); more is
/// [`Error::InvalidParameter`].
///
/// ```
/// let groups = rtm::NexthopGroups::<u32>::new();
/// let too_many: Vec<u32> = (0..=rtm::MAX_MEMBERS as u32).collect();
/// assert_eq!(groups.intern(&too_many), Err(rtm::Error::InvalidParameter));
/// ```
pub const MAX_MEMBERS: usize = 1 << 16;

/// The bucket count of a group of up to 64 members (256). A larger group has
/// `4 × members` buckets, rounded up to a power of two, so that every member owns at
/// least four; the flow's bucket is `flow_hash % buckets`.
///
/// ```
/// assert_eq!(rtm::BUCKETS, 256);
/// ```
pub const BUCKETS: usize = 256;

/// The bucket count of a group of `members` distinct members.
fn bucket_count(members: usize) -> usize {
    BUCKETS.max((members * 4).next_power_of_two())
}

/// One published state of a group: immutable once stored.
struct GroupState<N> {
    /// Each member once, in the order of its first occurrence in the first `intern`.
    members: Arc<[N]>,
    /// Per member: marked down.
    down: Box<[bool]>,
    /// How many members are up.
    up: usize,
    /// The member (an index into `members`, always `< members.len()`: `Selector` reads
    /// through it unchecked) of each bucket; a power of two long. While some member is
    /// up, every bucket's member is up.
    /// (`u16`: a group has at most [`MAX_MEMBERS`] = 2^16 members, so 256 buckets take
    /// 512 bytes.)
    buckets: Box<[u16]>,
}

impl<N> GroupState<N> {
    /// The member of `flow_hash`, if some member is up.
    #[inline]
    fn select(&self, flow_hash: u64) -> Option<&N> {
        if self.up == 0 {
            return None;
        }
        // The length is a power of two: the mask is `% len`. (Truncating the hash to
        // usize keeps its low bits, all the mask uses.)
        let bucket = (flow_hash as usize) & (self.buckets.len() - 1);
        let member = *self.buckets.get(bucket)?;
        self.members.get(member as usize)
    }
}

/// Deals `buckets` buckets to `members` members round-robin: bucket `b` to member
/// `b % members` (its home).
fn round_robin(members: usize, buckets: usize) -> Vec<u16> {
    (0..buckets).map(|b| (b % members) as u16).collect()
}

/// How many buckets each member owns.
fn counts(buckets: &[u16], members: usize) -> Vec<usize> {
    let mut c = vec![0; members];
    for &m in buckets {
        c[m as usize] += 1;
    }
    c
}

/// Member `gone`, now marked down in `down`, gives each of its buckets to the up member
/// that owns the fewest (ties to the lower index). With no member up the buckets stay.
fn take_down(buckets: &mut [u16], down: &[bool], gone: usize) {
    let c = counts(buckets, down.len());
    let mut heap: BinaryHeap<Reverse<(usize, usize)>> = (0..down.len())
        .filter(|&m| !down[m])
        .map(|m| Reverse((c[m], m)))
        .collect();
    for b in buckets.iter_mut().filter(|b| **b as usize == gone) {
        let Some(Reverse((n, m))) = heap.pop() else {
            return;
        };
        *b = m as u16;
        heap.push(Reverse((n + 1, m)));
    }
}

/// Member `back`, now marked up in `down`, takes buckets, each only from a member that
/// owns more than the fair share (`buckets / up members`): first every bucket of a down
/// member (there are such only when it is the one member up); then its home buckets; then,
/// while it owns less than the share, the home buckets of members that are down (the ones
/// it may have held before it went down: so downs and ups in LIFO order restore the
/// assignment exactly); then any.
fn bring_up(buckets: &mut [u16], down: &[bool], back: usize) {
    let members = down.len();
    let up = down.iter().filter(|d| !**d).count();
    for b in buckets.iter_mut() {
        if down[*b as usize] {
            *b = back as u16;
        }
    }
    let share = buckets.len() / up.max(1);
    let mut c = counts(buckets, members);
    let take = |buckets: &mut [u16], b: usize, c: &mut [usize]| {
        let owner = buckets[b] as usize;
        if owner != back && c[owner] > share {
            buckets[b] = back as u16;
            c[owner] -= 1;
            c[back] += 1;
        }
    };
    for b in (back..buckets.len()).step_by(members) {
        take(buckets, b, &mut c);
    }
    for b in (0..buckets.len()).filter(|b| down[b % members]) {
        if c[back] >= share {
            return;
        }
        take(buckets, b, &mut c);
    }
    for b in 0..buckets.len() {
        if c[back] >= share {
            return;
        }
        take(buckets, b, &mut c);
    }
}

/// What the writers know of a live group.
struct Record<N> {
    members: Arc<[N]>,
    /// The order-independent hash of the member set (`Writer::by_hash`'s key).
    set_hash: u64,
    /// References given out by `intern` and not yet released (at least 1).
    refs: u64,
}

/// The writers' state, under `NexthopGroups::writer`.
struct Writer<N> {
    /// By id: the live groups (`None`: free).
    groups: Vec<Option<Record<N>>>,
    /// The ids of the live groups by the hash of their member set.
    by_hash: HashMap<u64, Vec<u32>>,
    /// The ids of the live groups that hold each member.
    by_member: HashMap<N, Vec<u32>>,
    /// The members marked down.
    down: HashSet<N>,
    /// Released ids below `groups.len()`, lowest first.
    free: BinaryHeap<Reverse<u32>>,
    /// Live groups.
    live: usize,
}

/// Deduplicated next-hop groups, shared by the networks (and Fibs) that use them.
///
/// A group is a set of members (next hops of any type `N`), named by a small integer id.
/// [`intern`](Self::intern) returns the id of the live group with exactly a set of members,
/// creating it if there is none, and takes a reference; [`release`](Self::release) gives
/// it back, and the last release frees the id for reuse. [`select`](Self::select) picks
/// the member that carries a flow: lock-free and allocation-free, with resilient hashing,
/// so a flow stays on its member while that member is up. [`set_down`](Self::set_down)
/// marks a next hop down (or up) in every group that holds it at once.
///
/// The design (one `Arc` per group published through arc-swap, 256 buckets per group,
/// more for groups of more than 64 members, what a reader costs) is in `src/nexthop.rs`'s
/// module documentation and the "Next-hop groups" section of docs/DESIGN.md.
///
/// ```
/// use rtm::NexthopGroups;
///
/// let groups = NexthopGroups::<&str>::new();
/// let a = groups.intern(&["r1", "r2"]).unwrap();
/// assert_eq!(groups.intern(&["r2", "r1", "r2"]).unwrap(), a); // the same set
///
/// let hop = groups.select(a, 0xfeed).unwrap();
/// assert_eq!(groups.set_down(&hop, true), 1);
/// let other = groups.select(a, 0xfeed).unwrap();
/// assert_ne!(other, hop);
///
/// groups.release(a).unwrap();
/// groups.release(a).unwrap();
/// assert_eq!(groups.len(), 0);
/// assert_eq!(groups.select(a, 0xfeed), None);
/// ```
pub struct NexthopGroups<N> {
    /// The slots by id, in segments allocated on first use (see the module docs).
    segments: [OnceLock<Segment<N>>; SEGMENTS],
    /// Hashes member sets (order-independently) and members.
    hasher: RandomState,
    writer: Mutex<Writer<N>>,
}

/// One segment of slots: a group's published state each (empty: the id is free).
type Segment<N> = Box<[ArcCell<GroupState<N>>]>;

/// The segment and offset of slot `id`.
#[inline]
fn locate(id: u32) -> (usize, usize) {
    let id = id as usize;
    let j = id / FIRST_SEGMENT + 1;
    let k = (usize::BITS - 1 - j.leading_zeros()) as usize;
    (k, id - FIRST_SEGMENT * ((1 << k) - 1))
}

impl<N: Clone + Eq + Hash + Send + Sync + 'static> NexthopGroups<N> {
    /// An empty registry. It allocates no slots until the first [`intern`](Self::intern).
    ///
    /// ```
    /// let groups = rtm::NexthopGroups::<u32>::new();
    /// assert!(groups.is_empty());
    /// ```
    pub fn new() -> Self {
        Self {
            segments: std::array::from_fn(|_| OnceLock::new()),
            hasher: RandomState::new(),
            writer: Mutex::new(Writer {
                groups: Vec::new(),
                by_hash: HashMap::new(),
                by_member: HashMap::new(),
                down: HashSet::new(),
                free: BinaryHeap::new(),
                live: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Writer<N>> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot of `id`, if its segment exists.
    #[inline]
    fn slot(&self, id: u32) -> Option<&ArcCell<GroupState<N>>> {
        let (k, offset) = locate(id);
        self.segments.get(k)?.get()?.get(offset)
    }

    /// The slot of `id`, allocating its segment if needed. Writers only.
    fn slot_or_alloc(&self, id: u32) -> Option<&ArcCell<GroupState<N>>> {
        let (k, offset) = locate(id);
        self.segments
            .get(k)?
            .get_or_init(|| (0..FIRST_SEGMENT << k).map(|_| ArcCell::empty()).collect())
            .get(offset)
    }

    /// The id of the live group whose members are exactly this set (order and duplicates
    /// do not matter), created if none is live; takes one reference. A new group starts
    /// with the members that are marked down ([`set_down`](Self::set_down)) down.
    ///
    /// No members, or more than [`MAX_MEMBERS`] distinct ones:
    /// [`Error::InvalidParameter`]. A new set when [`MAX_GROUPS`] groups are live:
    /// [`Error::NoSystemResources`]. Ids are handed out lowest free first.
    ///
    /// ```
    /// use rtm::{Error, NexthopGroups};
    ///
    /// let groups = NexthopGroups::<u32>::new();
    /// let a = groups.intern(&[1, 2, 3]).unwrap();
    /// assert_eq!(groups.intern(&[3, 3, 2, 1]).unwrap(), a);
    /// let b = groups.intern(&[1, 2]).unwrap();
    /// assert_ne!(a, b);
    /// assert_eq!(groups.len(), 2);
    /// assert_eq!(groups.intern(&[]), Err(Error::InvalidParameter));
    /// ```
    pub fn intern(&self, members: &[N]) -> Result<u32, Error> {
        // Everything that runs `N`'s code, before the lock: dedup and hash the set.
        let mut seen: HashSet<&N> = HashSet::with_capacity(members.len());
        let uniq: Vec<N> = members
            .iter()
            .filter(|m| seen.insert(*m))
            .cloned()
            .collect();
        if uniq.is_empty() || uniq.len() > MAX_MEMBERS {
            return Err(Error::InvalidParameter);
        }
        // A sum of the members' hashes does not depend on their order.
        let set_hash = uniq
            .iter()
            .fold(0u64, |acc, m| acc.wrapping_add(self.hasher.hash_one(m)));

        let mut w = self.lock();
        let w = &mut *w;
        if let Some(ids) = w.by_hash.get(&set_hash) {
            for &id in ids {
                if let Some(Some(rec)) = w.groups.get_mut(id as usize) {
                    if rec.members.len() == uniq.len()
                        && rec.members.iter().all(|m| seen.contains(m))
                    {
                        rec.refs += 1;
                        return Ok(id);
                    }
                }
            }
        }

        // A new group: its state, with the members marked down already down.
        let members: Arc<[N]> = uniq.into();
        let down: Box<[bool]> = members.iter().map(|m| w.down.contains(m)).collect();
        let mut buckets = round_robin(members.len(), bucket_count(members.len()));
        let mut marked = vec![false; members.len()];
        for (i, &d) in down.iter().enumerate() {
            if d {
                marked[i] = true;
                take_down(&mut buckets, &marked, i);
            }
        }
        let state = Arc::new(GroupState {
            up: down.iter().filter(|d| !**d).count(),
            members: Arc::clone(&members),
            down,
            buckets: buckets.into(),
        });

        let id = match w.free.peek() {
            Some(&Reverse(id)) => id,
            None => u32::try_from(w.groups.len()).map_err(|_| Error::NoSystemResources)?,
        };
        if id >= MAX_GROUPS {
            return Err(Error::NoSystemResources);
        }
        let slot = self.slot_or_alloc(id).ok_or(Error::NoSystemResources)?;
        if w.free.pop().is_none() {
            w.groups.push(None);
        }
        for m in members.iter() {
            w.by_member.entry(m.clone()).or_default().push(id);
        }
        w.by_hash.entry(set_hash).or_default().push(id);
        w.groups[id as usize] = Some(Record {
            members,
            set_hash,
            refs: 1,
        });
        w.live += 1;
        // Published last, once the writers' records are complete (readers see only this).
        let old = slot.swap(Some(state));
        debug_assert!(old.is_none(), "a free id's slot is empty");
        Ok(id)
    }

    /// Gives one reference back; after the last one the group is gone (its slot empty:
    /// [`select`](Self::select) and [`members`](Self::members) of the id return `None`)
    /// and its id may be reused by the next new group.
    ///
    /// An id that is not live: [`Error::InvalidParameter`].
    ///
    /// ```
    /// use rtm::{Error, NexthopGroups};
    ///
    /// let groups = NexthopGroups::<u32>::new();
    /// let a = groups.intern(&[1, 2]).unwrap();
    /// groups.release(a).unwrap();
    /// assert_eq!(groups.release(a), Err(Error::InvalidParameter));
    /// let b = groups.intern(&[7]).unwrap();
    /// assert_eq!(b, a); // the id is reused
    /// assert_eq!(groups.members(b).as_deref(), Some(&[7][..]));
    /// ```
    pub fn release(&self, id: u32) -> Result<(), Error> {
        let old = {
            let mut w = self.lock();
            let w = &mut *w;
            let entry = w
                .groups
                .get_mut(id as usize)
                .ok_or(Error::InvalidParameter)?;
            let rec = entry.as_mut().ok_or(Error::InvalidParameter)?;
            if rec.refs > 1 {
                rec.refs -= 1;
                return Ok(());
            }
            let Some(rec) = entry.take() else {
                return Err(Error::InvalidParameter);
            };
            // First the readers' view: from this store on, the id is not live.
            let old = self.slot(id).and_then(|s| s.swap(None));
            if let Some(ids) = w.by_hash.get_mut(&rec.set_hash) {
                ids.retain(|&i| i != id);
                if ids.is_empty() {
                    w.by_hash.remove(&rec.set_hash);
                }
            }
            for m in rec.members.iter() {
                if let Some(ids) = w.by_member.get_mut(m) {
                    ids.retain(|&i| i != id);
                    if ids.is_empty() {
                        w.by_member.remove(m);
                    }
                }
            }
            w.free.push(Reverse(id));
            w.live -= 1;
            (old, rec)
        };
        // The members are dropped outside the lock.
        drop(old);
        Ok(())
    }

    /// The group's members, each once, in a fixed order (that of their first occurrence
    /// in the `intern` that created the group); `None` for an id that is not live.
    /// Lock-free: a load of the group's published state.
    ///
    /// ```
    /// let groups = rtm::NexthopGroups::<u32>::new();
    /// let a = groups.intern(&[5, 3, 5]).unwrap();
    /// assert_eq!(groups.members(a).as_deref(), Some(&[5, 3][..]));
    /// assert_eq!(groups.members(a + 1), None);
    /// ```
    pub fn members(&self, id: u32) -> Option<Arc<[N]>> {
        self.slot(id)?.read(|s| s.map(|s| Arc::clone(&s.members)))
    }

    /// The member that carries a flow. Lock-free, allocation-free (beyond what `N`'s
    /// `Clone` does), no wait for a writer: one load of the group's state, one of its
    /// bucket `flow_hash % buckets` ([`BUCKETS`]), one of the member.
    ///
    /// The same `flow_hash` gets the same member while the group's up members stay the
    /// same; when a member goes down, only the flows that were on it move (to the members
    /// still up); when it comes back, only flows move to it. `None` when every member is
    /// down or the id is not live. Never a member marked down by a
    /// [`set_down`](Self::set_down) that returned before this call started.
    ///
    /// ```
    /// let groups = rtm::NexthopGroups::<u32>::new();
    /// let a = groups.intern(&[10, 20, 30]).unwrap();
    /// let before: Vec<u32> = (0..1000).map(|h| groups.select(a, h).unwrap()).collect();
    /// groups.set_down(&20, true);
    /// for h in 0..1000 {
    ///     let now = groups.select(a, h).unwrap();
    ///     assert_ne!(now, 20);
    ///     if before[h as usize] != 20 {
    ///         assert_eq!(now, before[h as usize]); // only 20's flows moved
    ///     }
    /// }
    /// ```
    #[inline]
    pub fn select(&self, id: u32, flow_hash: u64) -> Option<N> {
        self.slot(id)?.read(|s| s?.select(flow_hash).cloned())
    }

    /// A [`Selector`]: one forwarding thread's cached view of these groups, whose
    /// `select` answers as this one does at a fraction of its cost.
    ///
    /// ```
    /// let groups = rtm::NexthopGroups::<u32>::new();
    /// let a = groups.intern(&[10, 20]).unwrap();
    /// let mut sel = groups.selector();
    /// assert_eq!(sel.select(a, 7), groups.select(a, 7));
    /// ```
    pub fn selector(&self) -> Selector<'_, N> {
        Selector {
            groups: self,
            cells: Vec::new(),
        }
    }

    /// Marks a next hop down (or up again, with `down == false`) in every live group that
    /// holds it, each group in one atomic step; returns how many groups changed (0 if the
    /// mark was already so). The mark is kept per member: groups interned later while it
    /// is down start with it down. Networks are not touched: this is prefix-independent
    /// convergence, O(groups that hold it) however many networks use them.
    ///
    /// ```
    /// let groups = rtm::NexthopGroups::<u32>::new();
    /// let a = groups.intern(&[1, 2]).unwrap();
    /// let b = groups.intern(&[1, 3]).unwrap();
    /// groups.intern(&[2, 3]).unwrap();
    /// assert_eq!(groups.set_down(&1, true), 2);
    /// assert_eq!(groups.set_down(&1, true), 0); // already down
    /// assert_eq!(groups.select(a, 42), Some(2));
    /// assert_eq!(groups.select(b, 42), Some(3));
    /// assert_eq!(groups.set_down(&1, false), 2);
    /// ```
    pub fn set_down(&self, member: &N, down: bool) -> usize {
        let mut w = self.lock();
        #[cfg(rtm_negative = "nexthop-late-mark")]
        {
            // Negative control: the groups are updated in one critical section and the
            // mark recorded in a second one, so an `intern` in between creates a group
            // with the member up after this call returns.
            let already = w.down.contains(member) == down;
            if already {
                return 0;
            }
            let n = self.republish(&w, member, down);
            drop(w);
            let mut w = self.lock();
            if down {
                w.down.insert(member.clone());
            } else {
                w.down.remove(member);
            }
            n
        }
        #[cfg(not(rtm_negative = "nexthop-late-mark"))]
        {
            let changed = if down {
                !w.down.contains(member) && w.down.insert(member.clone())
            } else {
                w.down.remove(member)
            };
            if !changed {
                return 0;
            }
            self.republish(&w, member, down)
        }
    }

    /// Publishes a new state of every live group that holds `member`, with it marked
    /// `down`; returns how many. Under the writers' lock.
    fn republish(&self, w: &Writer<N>, member: &N, down: bool) -> usize {
        let Some(ids) = w.by_member.get(member) else {
            return 0;
        };
        let mut changed = 0;
        for &id in ids {
            let Some(slot) = self.slot(id) else { continue };
            // Only writers store, and they hold the lock: this is the group's state.
            let Some(old) = slot.load_full() else {
                continue;
            };
            let Some(i) = old.members.iter().position(|m| m == member) else {
                continue;
            };
            if old.down[i] == down {
                continue;
            }
            let mut marks = old.down.clone();
            marks[i] = down;
            let mut buckets = old.buckets.to_vec();
            if down {
                take_down(&mut buckets, &marks, i);
            } else {
                bring_up(&mut buckets, &marks, i);
            }
            let state = GroupState {
                members: Arc::clone(&old.members),
                up: marks.iter().filter(|d| !**d).count(),
                down: marks,
                buckets: buckets.into(),
            };
            slot.swap(Some(Arc::new(state)));
            changed += 1;
        }
        changed
    }

    /// Whether `member` is marked down (by [`set_down`](Self::set_down)), whether or not
    /// a live group holds it.
    ///
    /// ```
    /// let groups = rtm::NexthopGroups::<u32>::new();
    /// assert!(!groups.is_down(&9));
    /// assert_eq!(groups.set_down(&9, true), 0); // no group holds 9 yet
    /// assert!(groups.is_down(&9));
    /// let a = groups.intern(&[9]).unwrap();
    /// assert_eq!(groups.select(a, 0), None); // its only member is down
    /// ```
    pub fn is_down(&self, member: &N) -> bool {
        self.lock().down.contains(member)
    }

    /// The number of live groups.
    ///
    /// ```
    /// let groups = rtm::NexthopGroups::<u32>::new();
    /// let a = groups.intern(&[1]).unwrap();
    /// groups.intern(&[1]).unwrap();
    /// assert_eq!(groups.len(), 1);
    /// groups.release(a).unwrap();
    /// assert_eq!(groups.len(), 1); // one reference left
    /// groups.release(a).unwrap();
    /// assert_eq!(groups.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.lock().live
    }

    /// Whether no group is live.
    ///
    /// ```
    /// let groups = rtm::NexthopGroups::<u32>::default();
    /// assert!(groups.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One forwarding thread's view of a [`NexthopGroups`], for the packet path: its
/// [`select`](Selector::select) returns what [`NexthopGroups::select`] would, with the
/// same guarantees (a [`set_down`](NexthopGroups::set_down) that returned before the call
/// is seen; never a freed or torn member set), at the cost of one load and a compare on
/// a group it selected before instead of a full arc-swap load.
///
/// How: it keeps, per group id it has selected, a share of the state it saw last (an
/// [`arc_swap::Cache`]); each `select` checks with one `Relaxed` load whether the group
/// still publishes that state and loads the new one if not. It is `&mut` (one per
/// thread) and not `Sync`, like arc-swap's `Cache` itself.
///
/// Memory: 16 bytes per id up to the highest id it has selected, allocated the first time
/// it selects that id; and the states it holds: a group released (or changed) since this
/// selector last selected it stays alive until it selects that id again, calls
/// [`clear`](Selector::clear), or is dropped.
///
/// ```
/// let groups = rtm::NexthopGroups::<u32>::new();
/// let a = groups.intern(&[10, 20, 30]).unwrap();
/// let mut sel = groups.selector();
/// let before: Vec<u32> = (0..100).map(|h| sel.select(a, h).unwrap()).collect();
/// groups.set_down(&20, true);
/// for h in 0..100 {
///     let now = sel.select(a, h).unwrap();
///     assert_ne!(now, 20);
///     assert_eq!(now, groups.select(a, h).unwrap());
///     if before[h as usize] != 20 {
///         assert_eq!(now, before[h as usize]);
///     }
/// }
/// ```
pub struct Selector<'g, N> {
    groups: &'g NexthopGroups<N>,
    /// By id: the cached share of the group's state, once selected.
    cells: Vec<Option<Cached<'g, N>>>,
}

/// A selector's entry for one id: the cached share of the group's state and, read from it
/// once, what a select needs, so that a warm select reads this entry, the bucket and the
/// member, and nothing else.
struct Cached<'g, N> {
    cache: ArcCellCache<'g, GroupState<N>>,
    /// The state the fields below were read from (null: the id was not live). The cache
    /// holds a share of it until a revalidation replaces it.
    seen: *const GroupState<N>,
    /// `seen`'s bucket table; null when no member is up (or no state).
    buckets: *const u16,
    /// `seen`'s bucket count minus one (a power of two minus one).
    mask: usize,
    /// `seen`'s members.
    members: *const N,
}

// SAFETY: a `Cached` is a share of an `Arc<GroupState<N>>` (through its cache) and raw
// pointers into that same state, which the share keeps alive wherever the entry goes;
// `Arc<GroupState<N>>` is `Send` when `N: Send + Sync`. Only the `&mut` owner reads
// through the pointers, so the entry is never shared between threads (it is not `Sync`).
unsafe impl<N: Send + Sync> Send for Cached<'_, N> {}

impl<'g, N: Clone> Cached<'g, N> {
    fn new(cache: ArcCellCache<'g, GroupState<N>>) -> Self {
        let mut c = Cached {
            cache,
            seen: std::ptr::null(),
            buckets: std::ptr::null(),
            mask: 0,
            members: std::ptr::null(),
        };
        c.refresh();
        c
    }

    /// The cached state, revalidated (or, under the negative control, not).
    #[inline]
    fn state(&mut self) -> Option<&Arc<GroupState<N>>> {
        #[cfg(not(all(loom, rtm_negative = "selector-stale")))]
        {
            self.cache.get()
        }
        // Broken on purpose: trust the cached state without checking it.
        #[cfg(all(loom, rtm_negative = "selector-stale"))]
        {
            self.cache.get_stale()
        }
    }

    /// Reads the fields from the state the cache holds now.
    #[cold]
    fn refresh(&mut self) {
        let (seen, buckets, mask, members) = match self.state() {
            Some(s) if s.up > 0 => (
                Arc::as_ptr(s),
                s.buckets.as_ptr(),
                s.buckets.len() - 1,
                s.members.as_ptr(),
            ),
            Some(s) => (Arc::as_ptr(s), std::ptr::null(), 0, std::ptr::null()),
            None => (std::ptr::null(), std::ptr::null(), 0, std::ptr::null()),
        };
        (self.seen, self.buckets, self.mask, self.members) = (seen, buckets, mask, members);
    }

    #[inline]
    fn pick(&mut self, flow_hash: u64) -> Option<N> {
        let now = self.state().map_or(std::ptr::null(), Arc::as_ptr);
        if now != self.seen {
            // A new state (or none). `now` cannot equal an older `seen` that was freed:
            // the cache held `seen` until this revalidation, so the state it holds now was
            // allocated while `seen` was alive.
            self.refresh();
        }
        if self.buckets.is_null() {
            return None;
        }
        let bucket = (flow_hash as usize) & self.mask;
        // SAFETY: `buckets`, `mask` and `members` were read from the state at `seen`, which
        // is the one the cache holds now (checked above, or just refreshed from it), so it
        // is alive. `bucket <= mask = buckets.len() - 1`. Every bucket holds the index of a
        // member of that state (`GroupState::buckets`), so `m < members.len()`.
        let m = unsafe { *self.buckets.add(bucket) };
        // SAFETY: as above; `N: Sync` (the registry's bound) lets this thread read it.
        Some(unsafe { &*self.members.add(usize::from(m)) }.clone())
    }
}

impl<N: Clone + Eq + Hash + Send + Sync + 'static> Selector<'_, N> {
    /// The member that carries a flow: [`NexthopGroups::select`]'s answer. No lock, no
    /// wait for a writer; no allocation except the first time an id is selected.
    ///
    /// ```
    /// let groups = rtm::NexthopGroups::<u32>::new();
    /// let a = groups.intern(&[1, 2]).unwrap();
    /// let mut sel = groups.selector();
    /// assert!(matches!(sel.select(a, 3), Some(1 | 2)));
    /// assert_eq!(sel.select(a + 1, 3), None); // not live
    /// ```
    #[inline]
    pub fn select(&mut self, id: u32, flow_hash: u64) -> Option<N> {
        match self.cells.get_mut(id as usize) {
            Some(Some(cell)) => cell.pick(flow_hash),
            _ => self.select_first(id, flow_hash),
        }
    }

    /// The first select of `id` through this selector: makes its cache entry.
    #[cold]
    fn select_first(&mut self, id: u32, flow_hash: u64) -> Option<N> {
        // An id whose segment was never allocated was never live: no entry for it (a
        // forged id costs nothing).
        let slot = self.groups.slot(id)?;
        let i = id as usize;
        if self.cells.len() <= i {
            self.cells.resize_with(i + 1, || None);
        }
        self.cells[i]
            .insert(Cached::new(slot.cache()))
            .pick(flow_hash)
    }

    /// Drops every cached state (each a share of a group's members), keeping nothing
    /// alive; later selects load afresh.
    ///
    /// ```
    /// let groups = rtm::NexthopGroups::<u32>::new();
    /// let a = groups.intern(&[1]).unwrap();
    /// let mut sel = groups.selector();
    /// sel.select(a, 0);
    /// groups.release(a).unwrap();
    /// sel.clear(); // the released group's members are freed now, not at the next select
    /// assert_eq!(sel.select(a, 0), None);
    /// ```
    pub fn clear(&mut self) {
        self.cells = Vec::new();
    }
}

impl<N> fmt::Debug for Selector<'_, N> {
    /// How many ids it caches.
    ///
    /// ```
    /// let groups = rtm::NexthopGroups::<u32>::new();
    /// assert!(format!("{:?}", groups.selector()).contains("cached: 0"));
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Selector")
            .field("cached", &self.cells.iter().filter(|c| c.is_some()).count())
            .finish_non_exhaustive()
    }
}

impl<N: Clone + Eq + Hash + Send + Sync + 'static> Default for NexthopGroups<N> {
    /// [`NexthopGroups::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl<N: Clone + Eq + Hash + Send + Sync + fmt::Debug + 'static> fmt::Debug for NexthopGroups<N> {
    /// The live groups and the members marked down.
    ///
    /// ```
    /// let groups = rtm::NexthopGroups::<u32>::new();
    /// groups.intern(&[1, 2]).unwrap();
    /// assert!(format!("{groups:?}").contains("live: 1"));
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.lock();
        f.debug_struct("NexthopGroups")
            .field("live", &w.live)
            .field("down", &w.down)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn locate_covers_every_id_once() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(63), (0, 63));
        assert_eq!(locate(64), (1, 0));
        assert_eq!(locate(191), (1, 127));
        assert_eq!(locate(192), (2, 0));
        let (k, off) = locate(MAX_GROUPS - 1);
        assert_eq!(k, SEGMENTS - 1);
        assert_eq!(off, (FIRST_SEGMENT << k) - 1);
        assert_eq!(locate(MAX_GROUPS).0, SEGMENTS);
        assert!(locate(u32::MAX).0 >= SEGMENTS);
    }

    /// After any sequence of downs and ups: while some member is up, every bucket's member
    /// is up, and the up members' bucket counts stay within two of each other.
    #[test]
    fn buckets_stay_on_up_members_and_balanced() {
        let m = 5;
        let mut buckets = round_robin(m, bucket_count(m));
        let mut down = vec![false; m];
        let mut rng = 0x1234_5678_u64;
        for _ in 0..2000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let i = (rng % m as u64) as usize;
            down[i] = !down[i];
            if down[i] {
                take_down(&mut buckets, &down, i);
            } else {
                bring_up(&mut buckets, &down, i);
            }
            let up = down.iter().filter(|d| !**d).count();
            if up > 0 {
                assert!(buckets.iter().all(|&b| !down[b as usize]));
                let c = counts(&buckets, m);
                let ups: Vec<usize> = (0..m).filter(|&i| !down[i]).map(|i| c[i]).collect();
                let (lo, hi) = (ups.iter().min().unwrap(), ups.iter().max().unwrap());
                assert!(hi - lo <= 2, "unbalanced: {ups:?}");
            }
        }
    }

    #[test]
    fn down_and_back_restores_home_buckets() {
        let m = 4;
        let home = round_robin(m, bucket_count(m));
        let mut buckets = home.clone();
        let mut down = vec![false; m];
        down[2] = true;
        take_down(&mut buckets, &down, 2);
        down[2] = false;
        bring_up(&mut buckets, &down, 2);
        assert_eq!(buckets, home);
    }

    #[test]
    fn large_groups_get_more_buckets() {
        assert_eq!(bucket_count(1), 256);
        assert_eq!(bucket_count(64), 256);
        assert_eq!(bucket_count(65), 512);
        assert_eq!(bucket_count(MAX_MEMBERS), 4 * MAX_MEMBERS);
    }
}

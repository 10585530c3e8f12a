//! The ordered index: a lock-free skip list on crossbeam-epoch, keyed by route key, whose
//! nodes carry a version chain.
//!
//! Insertion follows Fraser and Herlihy-Shavit: link level 0 with one CAS (the
//! linearization point), then build the tower. Removal marks the node's tower top-down
//! (a mark bit in each forward pointer freezes it) and unlinks it with a helping search.
//!
//! Two rules keep the unsafe surface small:
//!
//! * **One remover.** Only the reclaimer removes nodes, and it holds the reclaimer's lock
//!   (and with it the `SweepPermit`) while it does, so at most one node is ever between
//!   "marked" and "unlinked". A
//!   writer that meets that node (its chain is retired) helps mark and unlink it, but only
//!   the reclaimer frees it, after its own helping search has unlinked it at every level.
//! * **Built before removed.** A node is retired only after its inserter finished linking
//!   its tower (`built`), so no level can be linked behind the remover's back.
//!
//! Readers never write to the list: their searches step over marked nodes instead of
//! unlinking them. (A reader may still help decide a pending version's timestamp in a
//! node's chain; see `Chain::visible`.)
//!
//! Links are `AtomicPtr`s, and the mark bit is set and cleared with `map_addr`, so every
//! pointer keeps the provenance of the allocation it came from. A node is reached through a
//! [`NodeRef`], a pointer to its whole allocation (header and tower), never through a
//! reference to its header alone: a reference covers only the header's bytes, and the
//! tower lies after them.

use std::alloc::{self, Layout};
use std::hash::Hash;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::{self, NonNull};

use crate::clock::Clock;
use crate::sync::{AtomicBool, AtomicPtr, AtomicUsize, CachePadded, Guard, Ordering};
use crate::version::{Chain, Retired, VersionNode};

/// The tallest tower. With p = 1/2 per level this indexes 2^24 keys comfortably.
#[cfg(not(loom))]
pub(crate) const MAX_HEIGHT: usize = 24;
/// Under loom the tower stays as short as the models were sized for: every level a search
/// passes is an atomic load that loom schedules around, and the models hold a few keys.
#[cfg(loom)]
pub(crate) const MAX_HEIGHT: usize = 16;

/// Low bit of a forward pointer: the node owning the pointer is being removed.
const MARK: usize = 1;

/// A forward pointer: the successor, with [`MARK`] in its low bit once the pointer's owner
/// is being removed.
type Link<K, V> = AtomicPtr<Node<K, V>>;

#[inline(always)]
fn is_marked<T>(p: *mut T) -> bool {
    p.addr() & MARK != 0
}

#[inline(always)]
fn unmarked<T>(p: *mut T) -> *mut T {
    p.map_addr(|a| a & !MARK)
}

#[inline(always)]
fn marked<T>(p: *mut T) -> *mut T {
    p.map_addr(|a| a | MARK)
}

/// A key the skip list can order, with a cheap 64-bit summary of its order.
pub(crate) trait SkipKey: Ord + Copy + Hash {
    /// Monotone in the key order: `a < b` implies `a.hint() <= b.hint()`, so unequal hints
    /// decide a comparison without looking at the keys.
    fn hint(&self) -> u64;
}

/// A skip-list node: the key, its version chain, and a tower of `height` forward pointers
/// allocated inline after the header.
///
/// The two one-byte fields sit right after the key, where its alignment padding would be
/// (a `RouteKey<Ipv4Net>` is 20 bytes at offset 8), so the header is 40 bytes, not 48, and
/// a node of height 1 (half of them) is 48 bytes: key and level-0 link then share one
/// cache line more often.
#[repr(C)]
pub(crate) struct Node<K, V> {
    hint: u64,
    pub(crate) key: K,
    built: AtomicBool,
    height: u8,
    pub(crate) chain: Chain<V>,
    tower: [Link<K, V>; 0],
}

impl<K, V> Node<K, V> {
    fn layout(height: usize) -> (Layout, usize) {
        let (layout, offset) = Layout::new::<Self>()
            .extend(Layout::array::<Link<K, V>>(height).expect("tower layout"))
            .expect("node layout");
        (layout.pad_to_align(), offset)
    }

    /// The first tower entry of the node `this`.
    ///
    /// # Safety
    /// `this` came from [`Node::alloc`] (it carries the provenance of the whole
    /// allocation, not just the header's) and the node is not yet freed.
    #[inline(always)]
    unsafe fn tower(this: *const Self) -> *const Link<K, V> {
        // The header is `repr(C)` and ends with the zero-length, pointer-aligned `tower`,
        // so `offset_of!(tower) == layout(height).1`, where `alloc` put the entries.
        // SAFETY: the offset is within the allocation (the tower follows the header), per
        // the contract.
        unsafe {
            this.cast::<u8>()
                .add(std::mem::offset_of!(Self, tower))
                .cast::<Link<K, V>>()
        }
    }

    fn alloc(key: K, first: *mut VersionNode<V>, height: usize) -> *mut Self
    where
        K: SkipKey,
        V: Send + 'static,
    {
        let (layout, offset) = Self::layout(height);
        // SAFETY: the layout has non-zero size (the header holds a key and a chain).
        let p = unsafe { alloc::alloc(layout) }.cast::<Self>();
        if p.is_null() {
            alloc::handle_alloc_error(layout);
        }
        // SAFETY: `p` is a fresh allocation of `layout`, which holds the header at 0 and
        // `height` tower entries at `offset`; each is written once before any use.
        unsafe {
            ptr::write(
                p,
                Node {
                    hint: key.hint(),
                    key,
                    chain: Chain::new(first),
                    built: AtomicBool::new(false),
                    height: height as u8,
                    tower: [],
                },
            );
            let tower = p.cast::<u8>().add(offset).cast::<Link<K, V>>();
            for l in 0..height {
                ptr::write(tower.add(l), AtomicPtr::new(ptr::null_mut()));
            }
        }
        p
    }

    /// Drops the header and tower and frees the allocation (not the chain).
    ///
    /// # Safety
    /// `p` came from `Node::alloc` and no thread can reach it any more.
    unsafe fn dealloc(p: *mut Self) {
        // SAFETY: per the contract `p` is live, exclusively ours, and allocated with the
        // layout of its own height; header and tower entries are dropped once, then freed.
        unsafe {
            let height = (*p).height as usize;
            let (layout, offset) = Self::layout(height);
            let tower = p.cast::<u8>().add(offset).cast::<Link<K, V>>();
            for l in 0..height {
                ptr::drop_in_place(tower.add(l));
            }
            ptr::drop_in_place(p);
            alloc::dealloc(p.cast::<u8>(), layout);
        }
    }
}

/// A node reached under an epoch guard: a pointer to its whole allocation, valid for `'g`.
/// It dereferences to the header (key, chain); the tower is read through the pointer.
pub(crate) struct NodeRef<'g, K, V> {
    ptr: NonNull<Node<K, V>>,
    _guard: PhantomData<&'g ()>,
}

impl<K, V> Clone for NodeRef<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for NodeRef<'_, K, V> {}

impl<K, V> PartialEq for NodeRef<'_, K, V> {
    /// The same node.
    fn eq(&self, other: &Self) -> bool {
        self.ptr == other.ptr
    }
}

impl<'g, K, V> Deref for NodeRef<'g, K, V> {
    type Target = Node<K, V>;

    #[inline(always)]
    fn deref(&self) -> &Node<K, V> {
        self.get()
    }
}

impl<'g, K, V> NodeRef<'g, K, V> {
    /// The node at `p`, if `p` is not null.
    ///
    /// # Safety
    /// `p` is null or points to a node allocated by `Node::alloc`, with the provenance of
    /// its allocation, that stays allocated for `'g` (in practice: it was read from a link
    /// of a node or the head under the epoch guard that `'g` borrows, or it is a node the
    /// caller knows cannot be freed during `'g`).
    #[inline(always)]
    pub(crate) unsafe fn from_ptr(p: *const Node<K, V>) -> Option<Self> {
        NonNull::new(p.cast_mut()).map(|ptr| NodeRef {
            ptr,
            _guard: PhantomData,
        })
    }

    /// The pointer to the node's allocation.
    #[inline(always)]
    pub(crate) fn as_ptr(self) -> *const Node<K, V> {
        self.ptr.as_ptr()
    }

    /// The pointer to the node's allocation, never null.
    #[inline(always)]
    pub(crate) fn as_non_null(self) -> NonNull<Node<K, V>> {
        self.ptr
    }

    /// The header, for `'g`.
    #[inline(always)]
    pub(crate) fn get(self) -> &'g Node<K, V> {
        // SAFETY: the node is allocated for 'g (`from_ptr`'s contract) and its header is
        // initialized; everything in it that changes is atomic.
        unsafe { self.ptr.as_ref() }
    }

    /// Forward pointer `l` of the node's tower.
    #[inline(always)]
    fn level(self, l: usize) -> &'g Link<K, V> {
        debug_assert!(l < self.height as usize);
        // SAFETY: `ptr` points to the whole allocation (`from_ptr`'s contract), whose
        // tower has `height > l` entries, all initialized by `Node::alloc`.
        unsafe { &*Node::tower(self.as_ptr()).add(l) }
    }

    /// Hints the CPU to start loading the node's first cache line.
    #[inline(always)]
    pub(crate) fn prefetch(self) {
        crate::sync::prefetch(self.as_ptr());
    }

    /// The next node at level 0, whether or not either is being removed.
    #[inline]
    pub(crate) fn next(self, _guard: &'g Guard) -> Option<NodeRef<'g, K, V>> {
        // Acquire: the successor's header was written before it was linked (Release CAS).
        let p = unmarked(self.level(0).load(Ordering::Acquire));
        // SAFETY: a node is freed only through the epoch after it is unlinked; `_guard`
        // pins the epoch, so a pointer read from a node we can reach stays valid for 'g.
        unsafe { NodeRef::from_ptr(p) }
    }
}

/// A predecessor during a search: the head or a node.
struct Pred<K, V> {
    node: *const Node<K, V>,
    tower: *const Link<K, V>,
}

impl<K, V> Clone for Pred<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for Pred<K, V> {}

impl<K, V> Pred<K, V> {
    #[inline(always)]
    fn of(n: NodeRef<'_, K, V>) -> Self {
        Pred {
            node: n.as_ptr(),
            // SAFETY: a `NodeRef` points to a live node's whole allocation.
            tower: unsafe { Node::tower(n.as_ptr()) },
        }
    }

    #[inline]
    fn level(&self, l: usize) -> &Link<K, V> {
        // SAFETY: `tower` points to the head's MAX_HEIGHT entries (alive as long as the
        // list) or to the tower of a node protected by the caller's guard, and searches
        // only use a node as predecessor at levels below its height.
        unsafe { &*self.tower.add(l) }
    }
}

struct Position<'g, K, V> {
    preds: [Pred<K, V>; MAX_HEIGHT],
    succs: [*mut Node<K, V>; MAX_HEIGHT],
    found: Option<NodeRef<'g, K, V>>,
}

/// The last node of a run, and the run's first node when known.
pub(crate) type Run<'g, K, V> = (NodeRef<'g, K, V>, Option<NodeRef<'g, K, V>>);

/// Where a series of searches under one guard ended on each level; see
/// [`SkipList::floor_run`]. Valid only under the guard of the searches that filled it.
pub(crate) struct Fingers<'g, K, V> {
    preds: [Pred<K, V>; MAX_HEIGHT],
    /// The nodes are protected by the guard this borrows.
    _guard: PhantomData<&'g Guard>,
}

/// What an insertion did.
pub(crate) enum Inserted<'g, K, V> {
    /// A new node was linked with the version as its only version.
    New(NodeRef<'g, K, V>),
    /// The version was pushed onto an existing node; the shadowed version, if any.
    Pushed(NodeRef<'g, K, V>, Option<&'g VersionNode<V>>),
}

/// The skip list.
pub(crate) struct SkipList<K, V> {
    head: Box<[Link<K, V>]>,
    /// Bytes of the nodes linked now (headers and towers, not their chains).
    bytes: CachePadded<AtomicUsize>,
    _marker: std::marker::PhantomData<Node<K, V>>,
}

/// `node.key` compared with `key`, whose hint is `hint`.
#[inline(always)]
fn cmp_key<K: SkipKey, V>(node: &Node<K, V>, key: &K, hint: u64) -> std::cmp::Ordering {
    node.hint.cmp(&hint).then_with(|| node.key.cmp(key))
}

impl<K: SkipKey, V: Send + 'static> SkipList<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            head: (0..MAX_HEIGHT)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect(),
            bytes: CachePadded::new(AtomicUsize::new(0)),
            _marker: std::marker::PhantomData,
        }
    }

    #[inline]
    fn head_pred(&self) -> Pred<K, V> {
        Pred {
            node: ptr::null(),
            tower: self.head.as_ptr(),
        }
    }

    /// The first node whose key is `>= key`, stepping over nodes being removed.
    pub(crate) fn lower_bound<'g>(&self, key: &K, guard: &'g Guard) -> Option<NodeRef<'g, K, V>> {
        let hint = key.hint();
        let mut pred = self.head_pred();
        let mut found = ptr::null_mut();
        for l in (0..MAX_HEIGHT).rev() {
            let mut curr = unmarked(pred.level(l).load(Ordering::Acquire));
            // SAFETY (loop): nodes read from reachable forward pointers are protected by
            // `guard` (freed only through the epoch after being unlinked).
            while let Some(c) = unsafe { NodeRef::<'g, K, V>::from_ptr(curr) } {
                let succ = c.level(l).load(Ordering::Acquire);
                if is_marked(succ) {
                    curr = unmarked(succ);
                    continue;
                }
                if cmp_key(&c, key, hint).is_lt() {
                    pred = Pred::of(c);
                    curr = succ;
                } else {
                    break;
                }
            }
            found = curr;
        }
        let _ = guard;
        // SAFETY: as above, protected by `guard` for 'g.
        unsafe { NodeRef::from_ptr(found) }
    }

    /// Fingers for a series of [`floor_run`](Self::floor_run) searches under one guard:
    /// all at the head.
    pub(crate) fn fingers<'g>(&self, _guard: &'g Guard) -> Fingers<'g, K, V> {
        Fingers {
            _guard: PhantomData,
            preds: [self.head_pred(); MAX_HEIGHT],
        }
    }

    /// The last node whose key is `<= key`, stepping over nodes being removed.
    ///
    /// Also returns, when the search learned it, the first node of the *run* that node
    /// ends: the consecutive nodes whose keys are `same` as its key. The run start is known
    /// when the search stepped onto the run at level 0 from a node of another run (most
    /// searches, as most nodes are only linked at level 0); the caller can then read the
    /// run without a second search.
    ///
    /// The search starts from `fingers`, the predecessors an earlier search of the series
    /// ended at on each level, at the lowest level whose finger is still `<= key`, and
    /// leaves its own there. A longest-prefix match searches for smaller and smaller keys
    /// that are usually close behind the previous one: from a finger a level or a few up,
    /// such a search walks a few nodes it has just seen instead of descending from the
    /// head again.
    pub(crate) fn floor_run<'g>(
        &self,
        fingers: &mut Fingers<'g, K, V>,
        key: &K,
        same: impl Fn(&K, &K) -> bool,
        guard: &'g Guard,
    ) -> Option<Run<'g, K, V>> {
        let hint = key.hint();
        // Fingers are ordered: a higher level's is at or before a lower level's. Start at
        // the lowest level whose finger is a node `<= key`; a head finger says nothing
        // (the head is a finger on every level a search has not used), so from there up
        // the search starts from the head at the top level, as a fresh one.
        let (mut pred, top) = (0..MAX_HEIGHT)
            .find_map(|l| {
                // SAFETY: a finger is the head (null node) or a node a search of this list
                // stepped onto under the guard that `'g` borrows (the fingers' lifetime),
                // which the epoch keeps allocated while that guard is held.
                match unsafe { NodeRef::<'g, K, V>::from_ptr(fingers.preds[l].node) } {
                    None => Some((self.head_pred(), MAX_HEIGHT - 1)),
                    Some(f) if cmp_key(&f, key, hint).is_le() => Some((fingers.preds[l], l)),
                    Some(_) => None,
                }
            })
            .unwrap_or((self.head_pred(), MAX_HEIGHT - 1));
        let mut run: *const Node<K, V> = ptr::null();
        for l in (0..=top).rev() {
            let mut curr = unmarked(pred.level(l).load(Ordering::Acquire));
            // SAFETY (loop): see `lower_bound`. Starting from a finger changes nothing:
            // it was reached under `guard`, and if it is being removed its frozen links
            // still lead to nodes reached under `guard`.
            while let Some(c) = unsafe { NodeRef::<'g, K, V>::from_ptr(curr) } {
                let succ = c.level(l).load(Ordering::Acquire);
                if is_marked(succ) {
                    curr = unmarked(succ);
                    continue;
                }
                if cmp_key(&c, key, hint).is_le() {
                    if l == 0 {
                        // SAFETY: `pred.node` is null or a node protected by `guard`.
                        run = match unsafe { NodeRef::<'g, K, V>::from_ptr(pred.node) } {
                            Some(p) if same(&p.key, &c.key) => run,
                            _ => c.as_ptr(),
                        };
                    }
                    pred = Pred::of(c);
                    curr = succ;
                } else {
                    break;
                }
            }
            fingers.preds[l] = pred;
        }
        let _ = guard;
        // SAFETY: `pred.node` and `run` are null or nodes protected by `guard`.
        unsafe { NodeRef::from_ptr(pred.node).map(|n| (n, NodeRef::from_ptr(run))) }
    }

    /// The node with exactly `key`, if one is linked and not being removed.
    #[inline]
    pub(crate) fn find<'g>(&self, key: &K, guard: &'g Guard) -> Option<NodeRef<'g, K, V>> {
        self.lower_bound(key, guard).filter(|n| n.key == *key)
    }

    /// The first node.
    pub(crate) fn first<'g>(&self, _guard: &'g Guard) -> Option<NodeRef<'g, K, V>> {
        let p = unmarked(self.head[0].load(Ordering::Acquire));
        // SAFETY: protected by `_guard`, as every node read from a reachable pointer.
        unsafe { NodeRef::from_ptr(p) }
    }

    /// A writer's search: finds the position of `key` at every level and unlinks the nodes
    /// being removed that it meets on the way.
    fn search<'g>(&self, key: &K, _guard: &'g Guard) -> Position<'g, K, V> {
        let hint = key.hint();
        'retry: loop {
            let mut pos = Position {
                preds: [self.head_pred(); MAX_HEIGHT],
                succs: [ptr::null_mut(); MAX_HEIGHT],
                found: None,
            };
            let mut pred = self.head_pred();
            for l in (0..MAX_HEIGHT).rev() {
                let mut curr = pred.level(l).load(Ordering::Acquire);
                if is_marked(curr) {
                    // `pred` is being removed: start over from the head.
                    continue 'retry;
                }
                // SAFETY (loop): nodes read from reachable forward pointers are protected
                // by `_guard`.
                while let Some(c) = unsafe { NodeRef::<'g, K, V>::from_ptr(curr) } {
                    let succ = c.level(l).load(Ordering::Acquire);
                    if is_marked(succ) {
                        // Unlink `c` at this level. AcqRel: the CAS must not move before our
                        // reads of `c`, and a failure must see the newer link.
                        match pred.level(l).compare_exchange(
                            curr,
                            unmarked(succ),
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        ) {
                            Ok(_) => {
                                curr = unmarked(succ);
                                continue;
                            }
                            Err(_) => continue 'retry,
                        }
                    }
                    if cmp_key(&c, key, hint).is_lt() {
                        pred = Pred::of(c);
                        curr = succ;
                    } else {
                        break;
                    }
                }
                pos.preds[l] = pred;
                pos.succs[l] = curr;
            }
            // SAFETY: protected by `_guard`.
            pos.found = unsafe { NodeRef::from_ptr(pos.succs[0]) }.filter(|n| n.key == *key);
            return pos;
        }
    }

    /// Inserts `version` under `key`: pushed onto the key's node, or as the first version of
    /// a new node. `version` is pending; the caller decides it afterwards.
    ///
    /// # Safety
    /// `version` comes from `VersionNode::alloc`, is pending, has no older version, and is
    /// owned by the caller (never published): this call publishes it, and from then on it is
    /// the list's, freed only through the epoch.
    pub(crate) unsafe fn insert<'g>(
        &self,
        key: K,
        version: *mut VersionNode<V>,
        clock: &Clock,
        guard: &'g Guard,
    ) -> Inserted<'g, K, V> {
        let mut fresh: *mut Node<K, V> = ptr::null_mut();
        let height = random_height(&key);
        loop {
            let pos = self.search(&key, guard);
            if let Some(n) = pos.found {
                match n.chain.push(version, clock, guard) {
                    Ok(prev) => {
                        if !fresh.is_null() {
                            // SAFETY: `fresh` was never published; its chain head is
                            // `version`, now owned by `n`'s chain, so only the node itself
                            // is freed.
                            unsafe { Node::dealloc(fresh) };
                        }
                        return Inserted::Pushed(n, prev);
                    }
                    Err(Retired) => {
                        self.help_remove(n, guard);
                        continue;
                    }
                }
            }
            if fresh.is_null() {
                // SAFETY: `version` is ours until published; `Chain::push` hands it back
                // with no older version when it fails, so the new chain is just it.
                debug_assert!(unsafe { (*version).is_alone() });
                fresh = Node::alloc(key, version, height);
            }
            // SAFETY: `fresh` comes from `Node::alloc` and is ours until the CAS below links
            // it; once linked it is freed only through the epoch, which `guard` pins.
            let node = unsafe { NodeRef::<'g, K, V>::from_ptr(fresh) }.expect("allocated");
            node.level(0).store(pos.succs[0], Ordering::Relaxed);
            // Release: publishes the node's header, chain and first version.
            if pos.preds[0]
                .level(0)
                .compare_exchange(pos.succs[0], fresh, Ordering::Release, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            // Relaxed: a statistic.
            self.bytes
                .fetch_add(Node::<K, V>::layout(height).0.size(), Ordering::Relaxed);
            self.build_tower(node, pos, guard);
            return Inserted::New(node);
        }
    }

    /// Links levels 1.. of a node just linked at level 0.
    fn build_tower<'g>(
        &self,
        node: NodeRef<'g, K, V>,
        mut pos: Position<'g, K, V>,
        guard: &'g Guard,
    ) {
        let height = node.height as usize;
        'levels: for l in 1..height {
            loop {
                let succ = pos.succs[l];
                let old = node.level(l).load(Ordering::Relaxed);
                if is_marked(old) {
                    break 'levels;
                }
                if node
                    .level(l)
                    .compare_exchange(old, succ, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
                {
                    break 'levels;
                }
                if pos.preds[l]
                    .level(l)
                    .compare_exchange(
                        succ,
                        node.as_ptr().cast_mut(),
                        Ordering::Release,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    break;
                }
                pos = self.search(&node.key, guard);
            }
        }
        // Release: the reclaimer reads `built` with Acquire before it may retire the node,
        // so it sees every tower link made above.
        node.built.store(true, Ordering::Release);
    }

    /// Whether the node's tower is complete, so the reclaimer may retire it.
    #[inline]
    pub(crate) fn is_built(node: NodeRef<'_, K, V>) -> bool {
        node.built.load(Ordering::Acquire)
    }

    /// Marks a retired node's tower top-down (idempotent), then unlinks it with a search.
    fn help_remove(&self, node: NodeRef<'_, K, V>, guard: &Guard) {
        #[cfg(not(rtm_negative = "unlink-no-mark"))]
        for l in (0..node.height as usize).rev() {
            let a = node.level(l);
            let mut p = a.load(Ordering::Acquire);
            while !is_marked(p) {
                // AcqRel: the mark must be visible to an inserter whose CAS on this pointer
                // would otherwise link a node after a removed one.
                match a.compare_exchange(p, marked(p), Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => break,
                    Err(q) => p = q,
                }
            }
        }
        #[cfg(rtm_negative = "unlink-no-mark")]
        {
            // Broken on purpose: unlink the node at every level, as often as it takes, but
            // without marking (freezing) its forward pointers first, so an insertion can
            // still link a node behind it.
            loop {
                let pos = self.search(&node.key, guard);
                let mut linked = false;
                for l in 0..node.height as usize {
                    if ptr::eq(pos.succs[l], node.as_ptr()) {
                        linked = true;
                        let succ = node.level(l).load(Ordering::Acquire);
                        let _ = pos.preds[l].level(l).compare_exchange(
                            node.as_ptr().cast_mut(),
                            succ,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        );
                    }
                }
                if !linked {
                    break;
                }
            }
            return;
        }
        #[cfg(not(rtm_negative = "unlink-no-mark"))]
        {
            let _ = self.search(&node.key, guard);
        }
    }

    /// Removes a node whose chain the caller has just retired, and hands it to the epoch.
    ///
    /// # Safety
    /// The caller is the table's reclaimer (it holds the reclaimer's lock, so no other
    /// thread runs `remove` at the same time), `node`'s chain is retired by this caller,
    /// `node` is built ([`SkipList::is_built`]), and `remove` is called once per node. Then
    /// at most one node is between marked and unlinked, nothing relinks it, and it is
    /// deferred for freeing exactly once.
    pub(crate) unsafe fn remove(&self, node: NodeRef<'_, K, V>, guard: &Guard) {
        debug_assert!(node.chain.is_retired() && Self::is_built(node));
        self.help_remove(node, guard);
        // Relaxed: a statistic.
        self.bytes.fetch_sub(
            Node::<K, V>::layout(node.height as usize).0.size(),
            Ordering::Relaxed,
        );
        // The node is now unlinked at every level: our search passed its position at each
        // level after every level was marked, and nothing can relink it (module docs).
        let p = node.as_ptr().cast_mut();
        #[cfg(rtm_negative = "eager-free")]
        {
            let _ = guard;
            // SAFETY: none; the negative control of the reclamation model frees eagerly.
            unsafe { free_node::<K, V>(p) };
        }
        #[cfg(not(rtm_negative = "eager-free"))]
        // SAFETY: the node is unreachable for any thread that pins from now on, and is
        // deferred exactly once (the contract: one reclaimer, one call per node). Threads
        // pinned now are waited out by the epoch before the closure runs.
        unsafe {
            guard.defer_unchecked(move || free_node::<K, V>(p));
        }
    }

    /// Bytes of the nodes linked now: headers and towers, not their chains.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Number of nodes whose tower has `MAX_HEIGHT` levels or fewer; for tests.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn len_slow(&self, guard: &Guard) -> usize {
        let mut n = 0;
        let mut c = self.first(guard);
        while let Some(x) = c {
            n += 1;
            c = x.next(guard);
        }
        n
    }
}

/// Frees an unlinked node and its (already pruned) chain.
///
/// # Safety
/// `p` is a node from `Node::alloc` that no thread can reach any more, freed exactly once.
unsafe fn free_node<K, V: Send + 'static>(p: *mut Node<K, V>) {
    // SAFETY: per the contract, exclusive access to a live node.
    unsafe {
        (*p).chain.free_all();
        Node::dealloc(p);
    }
}

impl<K, V> Drop for SkipList<K, V> {
    fn drop(&mut self) {
        let mut p = unmarked(self.head[0].load(Ordering::Relaxed));
        while !p.is_null() {
            // SAFETY: `&mut self`: no other thread can reach the list. Nodes unlinked earlier
            // are not reachable from level 0 and belong to the epoch; each linked node is
            // freed here once, after reading its successor through its tower.
            unsafe {
                let next = unmarked((*Node::tower(p)).load(Ordering::Relaxed));
                (*p).chain.free_all();
                Node::dealloc(p);
                p = next;
            }
        }
    }
}

// SAFETY: the list owns its nodes; nodes hold keys and values that are shared across
// threads (`K: Send + Sync`, `V: Send + Sync`), and every shared mutation is atomic.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for SkipList<K, V> {}
// SAFETY: as above.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for SkipList<K, V> {}

/// A tower height with P(h > n) = 2^-n (4^-n under loom).
///
/// p = 1/2 rather than 1/4: the expected number of key comparisons per search is about the
/// same, but at 1M keys a search with p = 1/4 walks about three nodes per level on the
/// bottom levels, each a cache miss on a node nobody else touches, and measured 25-30%
/// slower for gets, lookups and inserts than with p = 1/2 (docs/BENCHMARKS.md). The price
/// is 16/3 bytes per node on average (towers of 2 entries instead of 4/3).
fn random_height<K: Hash>(key: &K) -> usize {
    #[cfg(loom)]
    let r: u64 = {
        // Deterministic under loom: models must replay the same schedule.
        use std::hash::{BuildHasher, BuildHasherDefault};
        BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(key)
    };
    #[cfg(not(loom))]
    let r: u64 = {
        let _ = key;
        use std::cell::Cell;
        thread_local! {
            static STATE: Cell<u64> = const { Cell::new(0) };
        }
        STATE.with(|s| {
            // xorshift64*, seeded from the address of this thread's state
            let mut x = s.get();
            if x == 0 {
                x = (s as *const Cell<u64> as u64) ^ 0x9e37_79b9_7f4a_7c15 | 1;
            }
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            s.set(x);
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        })
    };
    // Under loom, p = 1/4 as the models were sized for (taller towers add tower-building
    // CASes to every interleaving); the protocol does not depend on p.
    #[cfg(loom)]
    let h = 1 + (r | (1 << 62)).trailing_zeros() as usize / 2;
    #[cfg(not(loom))]
    let h = 1 + (r | (1 << 62)).trailing_zeros() as usize;
    h.min(MAX_HEIGHT)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    impl SkipKey for u64 {
        fn hint(&self) -> u64 {
            *self
        }
    }

    #[test]
    fn the_tower_starts_where_the_layout_puts_it() {
        for h in 1..=MAX_HEIGHT {
            let (_, offset) = Node::<u64, u64>::layout(h);
            assert_eq!(offset, std::mem::offset_of!(Node<u64, u64>, tower));
        }
    }
}

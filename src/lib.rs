//! A lock-free Routing Table Manager whose enumerations see a consistent snapshot while
//! writers keep going.
//!
//! # The problem
//!
//! A forwarding engine or a routing daemon keeps its routing table in its own memory.
//! Many threads look routes up and change them at line rate. Other threads *dump* the
//! table: to a BGP peer that just came up, to a hardware FIB being reprogrammed, to an
//! operator typing `show ip route`, to a netlink client that reads one page per call.
//!
//! A dump takes a long time compared to a write, and that is what makes it hard:
//!
//! * **Under a lock**, the dump is consistent, but every writer waits for it. A slow peer
//!   that reads a page per second stalls route changes for as long as it reads.
//! * **With a lock-free map's iterator**, writers go on, but the iterator sees a moving
//!   table. If a route moves from one key to another (a next hop changes, a prefix is
//!   re-announced), the dump can see it twice or not at all; it can mix routes from before
//!   and after a change that the writer made as one step. And an iterator that sits idle
//!   keeps an epoch pinned, so the whole process stops reclaiming memory.
//!
//! # What a snapshot buys
//!
//! Every committed change of an `rtm` table gets a [`Version`]. An enumeration pins the
//! version current when it opens and returns exactly the routes that were live at that
//! version, in key order, each once: the table as it was at one instant. Writers never
//! wait for it: they keep adding versions, and the old ones stay readable for as long as a
//! pinned snapshot can see them.
//!
//! The pin is a number in a slot, not an epoch guard, so an enumeration holds no
//! crossbeam-epoch [`Guard`](crossbeam_epoch::Guard) between calls. It can live for
//! minutes, move between threads (it is `Send`), and be driven one route at a time, while
//! the epoch keeps advancing for everyone else.
//!
//! # What closing releases
//!
//! Memory must come back. Closing an enumeration ([`Enumeration::close`], dropping it, or
//! [`RouteTable::close_enumeration_handle`]) unpins its version. Versions that no open
//! snapshot can see any more (a replaced value, a deleted route) are then unlinked by the
//! reclaimer and handed to crossbeam-epoch, which frees them when no thread can still be
//! reading them. Every value is dropped exactly once.
//!
//! The reclaimer never makes one caller pay for the whole table. Every commit is recorded
//! in the table's *journal*, in version order, naming the key it changed; the reclaimer
//! follows the journal and visits exactly those keys, a small bounded step on each write
//! and each close. A key whose old versions a pinned snapshot still sees waits on a list
//! of its own until that snapshot closes. Only [`RouteTable::collect`] does all the
//! pending work at once.
//!
//! # What changed since the dump: feeds
//!
//! A routing daemon that dumped its table to a peer must then send what changes. The
//! journal that paces the reclaimer serves that too: [`RouteTable::subscribe`] gives a
//! snapshot enumeration and a [`Feed`] of every later change of the same criteria, in
//! version order, each once; applied to the dump, they keep a copy exactly equal to the
//! table as of [`Feed::version`]. A feed of `best_only` criteria gives each network's best
//! route before and after a change: RTMv1's route change messages, and what a FIB needs;
//! one of [`Criteria::best_multipath`] criteria gives the routes that join, leave or change
//! inside each network's best set (its equal-cost paths, [`RouteTable::best_routes`]).
//! The journal is bounded: a feed that falls more than its capacity behind gets
//! [`Error::Lagged`] (as a `tokio::sync::broadcast` receiver does) and subscribes again,
//! so a consumer that stops reading costs at most the journal, and writers never wait.
//!
//! # Changes that belong together: commits
//!
//! Routing changes come in groups (a BGP UPDATE that withdraws a network and announces its
//! replacement, the paths of an ECMP route, a restarted peer's stale routes), and a reader
//! that sees half a group misroutes: between the withdrawal and the announcement, a lookup
//! finds no route. Because every version already carries a timestamp that decides who sees
//! it, a group can be made one step: a [`Batch`] gives all its versions one timestamp,
//! decided once after every version is linked, so [`RouteTable::commit`] is seen whole or
//! not at all by every read, enumeration, feed ([`Feed::next_commit`] returns it together)
//! and Fib. It stays lock-free: a writer that meets an unfinished batch cancels it (the
//! committer retries) instead of waiting, and readers skip it. Block operations
//! ([`RouteTable::delete_routes`], [`RouteTable::set_routes_enabled`]) are one commit each.
//!
//! # Forwarding lookups: the Fib
//!
//! A [`Fib`] holds only each network's best next hop, in a compressed trie under a
//! direct-indexed directory, and answers a longest-prefix match in a few loads, with no
//! lock, no store and no epoch pin. [`Fib::follow`] builds one from a table's best routes
//! and returns the [`FibFollower`] that applies the table's best-route feed to it; each
//! lookup sees one whole published version. [docs/FIB.md] has the design and its numbers.
//!
//! # Multipath: next-hop groups
//!
//! A network's equal-cost paths are its *best set* ([`RouteTable::best_routes`]). Real
//! tables have few distinct sets of next hops among many networks, so forwarding planes
//! share *groups*: [`NexthopGroups`] interns each set once, selects a member per flow
//! without a lock (resilient hashing), and takes a failed next hop out of every group at
//! once ([`NexthopGroups::set_down`]), however many networks use them.
//! [`Fib::follow_multipath`] keeps a Fib of group ids in step with a table's best sets:
//! a lookup then a `select` forwards, and a network's set changes in one step.
//!
//! # The handle API
//!
//! Besides the RAII [`Enumeration`], the table offers the Windows Routing Table Manager's
//! handle API: [`RouteTable::create_enumeration_handle`],
//! [`RouteTable::enumerate_get_next_route`] and [`RouteTable::close_enumeration_handle`].
//! A handle ([`EnumHandle`]) is a plain 64-bit value naming its table, a slot and a
//! generation; any value can be presented. A closed, stale, forged or foreign handle, or
//! one of a dropped table, gives [`Error::InvalidHandle`], never undefined behaviour; a
//! handle that another thread's call is using gives [`Error::Busy`] and stays valid. No
//! handle value is ever valid for two different enumerations in one process. The Win32
//! codes are kept ([`Error::code`]).
//!
//! # What the crate promises
//!
//! The items' docs give the details; these are the promises the rest is built on.
//!
//! **Enumerations** ([`RouteTable::enumerate`], handles, the dump of
//! [`RouteTable::subscribe`]):
//!
//! * An enumeration returns exactly the routes that match its [`Criteria`] and were live at
//!   its snapshot version, with their values as of that version, in ascending [`RouteKey`]
//!   order, each once, whatever writers do meanwhile. `best_only` keeps a route if it is its
//!   network's best at the snapshot among all the network's routes, not only the filtered
//!   ones.
//! * Writers never wait for an enumeration, and an enumeration never waits for a writer.
//! * Exhausted, it stays open: the iterator keeps returning `None` and a handle keeps
//!   returning [`Error::NoMoreRoutes`] until it is closed.
//! * Closing it (close, drop or [`RouteTable::close_enumeration_handle`]) releases its slot
//!   and its snapshot; what only it could see becomes reclaimable, and
//!   [`RouteTable::collect`] then drops those values. [`Stats::dead_versions`] counts
//!   retained route values that are no longer current (deletion markers are not counted);
//!   right after `collect()` it is exactly those some open snapshot or feed still needs.
//! * RAII enumerations, handles and feeds share one pool of
//!   [`max_enumerations`](RouteTable::max_enumerations) slots (default
//!   [`DEFAULT_MAX_ENUMERATIONS`], at most [`MAX_ENUMERATIONS`]); an open that finds none
//!   free is [`Error::NoSystemResources`].
//!
//! **Handles** ([`EnumHandle`]): any 64-bit value may be presented. A closed, stale, forged or
//! foreign handle, one of a dropped table, or the slot of an RAII enumeration is
//! [`Error::InvalidHandle`], never undefined behaviour or a panic; once closed, a handle is
//! invalid forever, even after its slot is reused. A handle in use by another thread's call
//! gives [`Error::Busy`] and stays valid. A table never issues a handle value twice (a slot
//! whose generation would wrap is retired), and no value is valid for two enumerations in one
//! process.
//!
//! **Writes and reads**: a prefix with host bits set is [`Error::InvalidParameter`] where a
//! call returns a `Result` and `None` where it returns an `Option`. Every committed change
//! gets a larger [`Version`]. `lookup`, `best_route` and `get_route` take no lock and read one
//! version of the table. The best route of a network is its enabled route with the smallest
//! `(priority, metric)`, ties to the smaller key.
//!
//! **Feeds** ([`Feed`]):
//!
//! * Convergence: start from the dump of [`RouteTable::subscribe`] (or from the result at
//!   the version a [`RouteTable::feed`] opened), remove each change's `old` and insert its
//!   `new`, in order: whenever a commit's changes have all been applied, and whenever
//!   [`Feed::try_next`] returns `Ok(None)`, the set equals what an enumeration at
//!   [`Feed::version`] would return.
//! * Order and completeness: changes come in version order; no commit that changes the
//!   result is skipped or repeated, and one that does not change it gives nothing. `old` and
//!   `new` are equal only when a commit rewrote a route with an identical one.
//! * Bounded: the journal records every commit of the table and holds the last
//!   [`journal_capacity`](RouteTable::journal_capacity) of them (default
//!   [`DEFAULT_JOURNAL_CAPACITY`], 65,536). A feed that has not read a commit the journal
//!   dropped, whether or not that commit matched its criteria, gets [`Error::Lagged`]
//!   (code 1236) and every later call does too; its consumer subscribes again. Writers
//!   never wait for a feed, and a feed that stops reading holds at most a journal's worth
//!   of old values.
//! * `subscribe` takes two slots (the enumeration and the feed), `feed` one; a feed counts
//!   as an open enumeration until it is dropped. [`Feed::next_timeout`] waits without
//!   spinning and returns `Ok(None)` only when the timeout passed with nothing to return.
//!
//! **The Fib** ([`Fib::follow`]):
//!
//! * After [`FibFollower::sync`] returns, and while no write runs, `fib.lookup(a)` equals
//!   `table.lookup(a).map(|r| next_hop(&r))` as of [`Fib::version`], for every address.
//! * While the follower applies changes, each lookup returns the answer of one version
//!   between the `fib.version()` read before the call and the one read after it: never a mix
//!   for one address, never an answer no version had.
//! * Lookups take no lock, write no shared memory, allocate nothing and never wait for the
//!   follower. The follower holds one slot (its feed) and needs one more while it builds; on
//!   [`Error::Lagged`] it rebuilds from a fresh snapshot while readers keep reading the old
//!   state.
//! * [`Fib::follow_multipath`]: after a sync with no write running, each lookup's id names
//!   the group of the next hops of the best set of the longest covering network that has
//!   an enabled route; networks with the same next hops share one id; a set's change
//!   reaches lookups in one step; the follower releases a group after the publish that
//!   stops using it, and all of them when it is dropped.
//!
//! # Panics in `V`'s Clone
//!
//! Every route a read returns is a clone of the stored value (`V: Clone`). If the
//! embedder's `Clone` panics, the panic comes out of the call and nothing is lost: the
//! enumeration, handle, feed (of any criteria) or Fib follower it was made on has not
//! moved (a batch read leaves its `out` as it found it), so the next call returns what
//! the failed one would have. A panic in a follower's `next_hop` is handled the same way.
//! The table stays consistent and usable; only the panicking call fails.
//!
//! # What `V`'s Drop may do
//!
//! A value the table no longer needs (replaced, deleted, and seen by no open snapshot or
//! feed) is dropped inside crossbeam-epoch's deferred destructors: on whichever thread next
//! pins the epoch afresh or flushes it, inside some later call of this or another table, or
//! when the table itself is dropped. So a `Drop`:
//!
//! * may call into any table, this one included (writes, reads, [`RouteTable::collect`],
//!   feeds): the table never runs destructors while it holds one of its locks, so such a
//!   call finds them free;
//! * should be quick: it runs inside another caller's call;
//! * must not count on running on a particular thread or at a particular moment;
//! * should not panic: a panic is contained where the destructor runs, and the value whose
//!   drop panicked is leaked (its memory, and whatever its `Drop` did not release).
//!
//! # Example
//!
//! ```
//! use rtm::{Criteria, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};
//!
//! let table = RouteTable::<Ipv4Net, u32>::new();
//! let hop = "192.0.2.1".parse().unwrap();
//! for (i, p) in ["10.0.0.0/8", "10.1.0.0/16", "192.168.0.0/16"].iter().enumerate() {
//!     let key = RouteKey::new(p.parse().unwrap(), ProtocolId(2), InterfaceId(1), hop);
//!     table.add_route(Route::new(key, i as u32)).unwrap();
//! }
//!
//! // A dump of 10/8 and everything in it, as of now.
//! let dump = table.enumerate(Criteria::all().within("10.0.0.0/8".parse().unwrap())).unwrap();
//! // Writers go on; the dump does not see this.
//! table.delete_route(&RouteKey::new("10.1.0.0/16".parse().unwrap(), ProtocolId(2), InterfaceId(1), hop)).unwrap();
//! let prefixes: Vec<String> = dump.map(|r| r.key.prefix.to_string()).collect();
//! assert_eq!(prefixes, ["10.0.0.0/8", "10.1.0.0/16"]);
//!
//! // Longest-prefix match sees the table as it is now.
//! assert_eq!(table.lookup("10.1.2.3".parse().unwrap()).unwrap().value, 0);
//! ```
//!
//! # Design
//!
//! Routes live in a lock-free skip list ordered by [`RouteKey`]; each node carries the
//! key's version chain, newest first. [docs/DESIGN.md] in the repository states the
//! invariants, the code that keeps each one, the loom model that checks it, and why each
//! memory ordering suffices.
//!
//! [docs/FIB.md]: https://github.com/rtm-rs/rtm/blob/main/docs/FIB.md
//! [docs/DESIGN.md]: https://github.com/rtm-rs/rtm/blob/main/docs/DESIGN.md

#![warn(missing_docs, unsafe_op_in_unsafe_fn)]

// The journal packs a 62-bit version and a 2-bit tag into a pointer-sized word, and the
// clock and the slots' state words are 64-bit atomics: a narrower target would truncate
// versions silently, so it does not build.
#[cfg(not(target_pointer_width = "64"))]
compile_error!("rtm needs 64-bit pointers (its journal packs versions into pointer words)");
#[cfg(not(target_has_atomic = "64"))]
compile_error!("rtm needs 64-bit atomics (its clock and slot words are AtomicU64)");

mod block;
mod builder;
mod clock;
mod commit;
mod criteria;
mod cursor;
mod enumeration;
mod error;
mod feed;
mod fib;
mod handle;
mod hash;
mod journal;
mod nexthop;
mod prefix;
mod reclaim;
mod route;
mod skiplist;
mod slots;
mod sync;
mod table;
mod version;

pub use builder::{Builder, DEFAULT_JOURNAL_CAPACITY, DEFAULT_MAX_ENUMERATIONS};
pub use commit::Batch;
pub use criteria::Criteria;
pub use enumeration::{Enumeration, OwnedEnumeration};
pub use error::Error;
pub use feed::{Change, Feed, OwnedFeed};
pub use fib::{
    BestRoute, Fib, FibFollower, FibKey, FibWriter, HelpedFibFollower, Multipath, OwnedFibFollower,
};
pub use handle::{EnumHandle, MAX_ENUMERATIONS};
pub use ipnet::{Ipv4Net, Ipv6Net};
pub use nexthop::{NexthopGroups, Selector, BUCKETS, MAX_GROUPS, MAX_MEMBERS};
pub use prefix::Prefix;
pub use route::{InterfaceId, ProtocolId, Route, RouteKey, Version};
pub use table::{RouteTable, Stats};

// The README's code blocks run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

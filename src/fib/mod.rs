//! Forwarding lookups at the speed of a trie: a read-optimized longest-prefix-match table
//! from addresses to next-hop ids, kept in step with a [`RouteTable`](crate::RouteTable)'s
//! best routes.
//!
//! A [`Fib`] is a cheap reader handle (clone it per thread); one writer changes it, either a
//! [`FibWriter`] driven by the embedder or the follower of a table. Lookups take no lock,
//! write no shared memory, allocate nothing and never wait for the writer: a lookup is a
//! walk of a few loads from a published root, and a change is published by one store of a
//! new root, so each lookup sees one whole published version.
//!
//! The structure (`docs/FIB.md` has the measurements behind it): a direct-indexed
//! directory of the first 12, 16 or 24 address bits (a root of chunk indices, each chunk a
//! run of entries; [`FibWriter::for_prefixes`] picks the size), then popcount-compressed
//! nodes of 6 bits as in Poptrie, with each prefix
//! stored in the one node whose 6 bits end at or after its length. The memory is one arena
//! owned by the Fib's handles; see `arena` for how reused memory is made safe to read with
//! loads only.

mod alloc;
mod arena;
mod follow;
mod key;
mod layout;
mod lookup;
mod pages;
mod reader;
mod writer;

pub use follow::{BestRoute, FibFollower, HelpedFibFollower, Multipath, OwnedFibFollower};
pub use key::FibKey;
pub use reader::Fib;
pub use writer::FibWriter;

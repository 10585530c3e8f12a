//! Fuzz targets for `rtm`. Each target is a function over raw bytes: the bytes decode
//! (with `arbitrary`) into a list of operations that run against a real table and a
//! sequential model, and every result must equal the model's. The `fuzz_targets/` binaries
//! are thin wrappers, and `tests/replay.rs` runs the same functions on the committed
//! corpus and on random inputs with plain `cargo test`.

pub mod capi_misuse;
pub mod feed;
pub mod fib_ops;
pub mod groups;
pub mod handle_misuse;
pub mod input;
pub mod model;
pub mod multipath;
pub mod reclaimer;
pub mod table_ops;

/// The C ABI's `extern "C"` functions with arbitrary tables, handles, routes, flags and
/// NULL pointers.
pub fn run_capi_misuse(data: &[u8]) {
    capi_misuse::run(data);
}

/// Handles: live, closed, forged, flipped and foreign, with writes in between.
pub fn run_handle_misuse(data: &[u8]) {
    handle_misuse::run(data);
}

/// Every read, write and enumeration criterion, IPv4 and IPv6.
pub fn run_table_ops(data: &[u8]) {
    table_ops::run(data);
}

/// Snapshots across churn, `collect()`, `stats()` and payload drops.
pub fn run_reclaimer(data: &[u8]) {
    reclaimer::run(data);
}

/// Feeds opened at arbitrary points with arbitrary criteria, reads interleaved with
/// writes, against a model that keeps the whole history.
pub fn run_feed(data: &[u8]) {
    feed::run(data);
}

/// A `Fib` and its follower across writes, block operations, syncs (lagging a small
/// journal in some inputs) and lookups, one by one and in batches.
pub fn run_fib_ops(data: &[u8]) {
    fib_ops::run(data);
}

/// Next-hop groups: interns, releases, `set_down` and selects against a model with
/// resilient-hashing checks.
pub fn run_groups(data: &[u8]) {
    groups::run(data);
}

/// `Fib::follow_multipath` over a shared `NexthopGroups`: writes, commits, block deletions,
/// syncs (lagging a small journal in some inputs), `set_down` and lookups, against a model
/// of the best sets and the groups in use.
pub fn run_multipath(data: &[u8]) {
    multipath::run(data);
}

//! loom model checks of rtm's atomic protocols. The models live in `tests/` and only
//! build under `RUSTFLAGS="--cfg loom --cfg crossbeam_loom"`; without those flags this
//! package compiles to nothing.
//!
//! | model file                    | protocol                                              |
//! |-------------------------------|-------------------------------------------------------|
//! | `close_race.rs`               | `next` racing `close`; two closes; two `next`s (Busy) |
//! | `slot_reuse.rs`               | a stale handle while its slot is reused (ABA)         |
//! | `snapshot_registration.rs`    | snapshot registration racing the reclaimer            |
//! | `timestamp_helping.rs`        | timestamps decided once, with helping readers         |
//! | `skiplist_traversal.rs`       | removal racing a parked cursor and an insertion       |
//! | `block_delete.rs`             | a block deletion racing single writes of its keys     |
//! | `nexthop_select.rs`           | `select` racing `set_down` and a release + re-intern  |
//!
//! `check.sh` runs them at `LOOM_MAX_PREEMPTIONS=2`, then the negative controls: each
//! `--cfg rtm_negative="..."` switch breaks one protocol in rtm, and the companion tests it enables
//! pass only if loom finds the failing execution.

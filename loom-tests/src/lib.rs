//! loom model checks of rtm's atomic protocols. The models live in `tests/` and only
//! build under `RUSTFLAGS="--cfg loom --cfg crossbeam_loom"`.

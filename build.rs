//! Passes a negative-control switch from the environment to the compiler.
//!
//! `RTM_NEGATIVE=<switch>` builds the crate with `--cfg rtm_negative="<switch>"`, which
//! breaks one protocol on purpose so that a loom model can show it detects the breakage
//! (see `loom-tests/check.sh`). It is the same switch as passing the cfg in RUSTFLAGS, but
//! it reaches only this crate (and `loom-tests`, which reads it too): the dependencies keep
//! their fingerprints, so each negative control rebuilds two crates, not thirty. Never set
//! it for a build that is used for anything else.

fn main() {
    println!("cargo:rerun-if-env-changed=RTM_NEGATIVE");
    if let Ok(switch) = std::env::var("RTM_NEGATIVE") {
        if !switch.is_empty() {
            println!("cargo:rustc-cfg=rtm_negative=\"{switch}\"");
        }
    }
}

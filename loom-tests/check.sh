#!/usr/bin/env bash
# Runs rtm's loom models, then their negative controls.
#
#   loom-tests/check.sh              models, then negative controls (about 1 minute warm)
#   loom-tests/check.sh models       models only
#   loom-tests/check.sh negative     negative controls only
#
# The models run at LOOM_MAX_PREEMPTIONS=2 unless the variable is set (3 takes several
# minutes; run it by hand before changing a protocol). Each negative control builds the
# crate with one `--cfg rtm_negative="..."` switch, which breaks one protocol on purpose,
# and runs the models that must detect it: those tests pass only if loom finds a failing
# execution. The switches are cfg flags, not cargo features, so no feature combination
# (`--all-features` included) builds a broken crate.
#
# Everything builds with --cfg loom --cfg crossbeam_loom, and only the loom-tests
# package: never the whole workspace under these flags, all in target/loom. The switch
# reaches the compiler through RTM_NEGATIVE, which the build scripts of `rtm` and
# `loom-tests` turn into `--cfg rtm_negative="..."` (RUSTFLAGS would do too, but they are
# part of every crate's fingerprint, so each switch would rebuild every dependency).
set -euo pipefail

cd "$(dirname "$0")/.."

what="${1:-all}"
case "$what" in
all | models | negative) ;;
*)
    echo "usage: $0 [all|models|negative]" >&2
    exit 2
    ;;
esac

base_flags="${RUSTFLAGS:-} --cfg loom --cfg crossbeam_loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"

# loom_test TARGET_DIR RUSTFLAGS [cargo test args...]
loom_test() {
    local dir="$1" flags="$2"
    shift 2
    RUSTFLAGS="$flags" cargo test --release -p loom-tests --target-dir "$dir" "$@" -- --nocapture
}

if [ "$what" != negative ]; then
    echo "== loom models (LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS)"
    loom_test target/loom "$base_flags"
fi

if [ "$what" != models ]; then
    # The negative controls need only find one failing execution, at the preemption bound
    # given for each (2, or 3 where the failing interleaving needs three preemptions).
    # switch, bound, then the model files that must detect it
    while read -r switch bound tests; do
        echo "== negative control rtm_negative=\"$switch\" (bound $bound): expecting $tests to fail"
        args=()
        for t in $tests; do args+=(--test "$t"); done
        RTM_NEGATIVE="$switch" LOOM_MAX_PREEMPTIONS="$bound" \
            loom_test target/loom "$base_flags" "${args[@]}"
    done <<'EOF'
close-ignores-busy 2 close_race
call-ignores-busy 2 close_race
no-generation-check 2 slot_reuse
no-horizon-recheck 2 snapshot_registration read_at_now
decide-twice 2 timestamp_helping
eager-free 2 skiplist_traversal
eager-free 3 snapshot_registration
unlink-no-mark 2 skiplist_traversal
step-ignores-floor 2 reclaim_step
journal-no-lap-check 2 journal_feed
block-unconditional 2 block_delete
fib-no-recheck 2 fib_recycle
fib-strong-count 2 fib_arena_free
stale-current 2 get_route
batch-ready-early 2 commit
batch-no-abandon 2 commit
slide-no-count 2 commit
nexthop-late-mark 2 nexthop_select
selector-stale 2 nexthop_select
fib-help-no-recheck 2 fib_help
fib-stale-geometry 2 fib_relayout
EOF
fi

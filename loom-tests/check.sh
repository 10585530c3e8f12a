#!/usr/bin/env bash
# Runs rtm's loom models, then their negative controls.
#
#   loom-tests/check.sh              models, then negative controls (about 1 minute warm)
#   loom-tests/check.sh models       models only
#   loom-tests/check.sh negative     negative controls only
#
# The models run at LOOM_MAX_PREEMPTIONS=2 unless the variable is set (3 takes several
# minutes; run it by hand before changing a protocol). Each negative control builds the
# crate with one `negative-*` feature, which breaks one protocol on purpose, and runs the
# models that must detect it: those tests pass only if loom finds a failing execution.
#
# Everything builds in target/loom with --cfg loom --cfg crossbeam_loom, and only the
# loom-tests package: never the whole workspace under these flags.
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

export RUSTFLAGS="${RUSTFLAGS:-} --cfg loom --cfg crossbeam_loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"

loom_test() {
    cargo test --release -p loom-tests --target-dir target/loom "$@" -- --nocapture
}

if [ "$what" != negative ]; then
    echo "== loom models (LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS)"
    loom_test
fi

if [ "$what" != models ]; then
    # The negative controls need only find one failing execution.
    export LOOM_MAX_PREEMPTIONS=2
    # feature, then the model files that must detect it
    while read -r feature tests; do
        echo "== negative control $feature: expecting $tests to fail"
        args=()
        for t in $tests; do args+=(--test "$t"); done
        loom_test --features "$feature" "${args[@]}"
    done <<'EOF'
negative-close-ignores-busy close_race
negative-no-generation-check slot_reuse
negative-no-horizon-recheck snapshot_registration read_at_now
negative-decide-twice timestamp_helping
negative-eager-free snapshot_registration skiplist_traversal
negative-unlink-no-mark skiplist_traversal
negative-step-ignores-floor reclaim_step
negative-journal-no-lap-check journal_feed
negative-block-unconditional block_delete
EOF
fi

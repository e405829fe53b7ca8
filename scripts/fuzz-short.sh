#!/usr/bin/env bash
# Each cargo-fuzz target (fuzz/) for a short, bounded time from its committed
# seeds: what CI runs after the tests. Only with a nightly toolchain, and
# cargo-fuzz installable; without them it says so and exits 0. A crash (a
# libFuzzer artifact) fails; so does a target that will not build on a
# working nightly, since that is this repository's code.
# Usage: scripts/fuzz-short.sh [SECONDS per target, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz: no nightly toolchain here; skipped"
    exit 0
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    if ! cargo install cargo-fuzz --locked --quiet; then
        echo "fuzz: cargo-fuzz could not be installed; skipped"
        exit 0
    fi
fi
# The stable build (cargo test, before this) built the embedded set; the
# nightly build embeds it as it is rather than building it again.
set_dir="$PWD/target/lkguard-policy-set/wasm32-wasip2/policy"
if [ ! -f "$set_dir/lkguard_policy_livekit.wasm" ]; then
    cargo build --quiet
fi
export LKGUARD_PREBUILT_POLICIES="$set_dir"
for target in load_yaml admission_review check_document; do
    seeds=fuzz/seeds/yaml
    [ "$target" = admission_review ] && seeds=fuzz/seeds/admission_review
    mkdir -p "fuzz/corpus/$target"
    echo "fuzz: $target for ${secs} s"
    log="$(mktemp)"
    status=0
    cargo +nightly fuzz run -O "$target" "fuzz/corpus/$target" "$seeds" -- \
        -max_total_time="$secs" -max_len=65536 > "$log" 2>&1 || status=$?
    grep -E '^(Done|INFO: seed corpus|SUMMARY|==[0-9]+==)' "$log" || true
    if ls "fuzz/artifacts/$target"/crash-* "fuzz/artifacts/$target"/oom-* \
        "fuzz/artifacts/$target"/timeout-* >/dev/null 2>&1; then
        tail -n 60 "$log"
        echo "fuzz: $target found an input that breaks lkguard:"
        ls "fuzz/artifacts/$target"
        exit 1
    fi
    if [ "$status" != 0 ]; then
        tail -n 60 "$log"
        echo "fuzz: $target failed (exit $status) without a crash artifact"
        exit 1
    fi
done

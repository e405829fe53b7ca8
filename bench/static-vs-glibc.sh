#!/usr/bin/env bash
# The webhook under load, the glibc build against the static musl build that
# ships (wheel, image), measured in one session, alternating, so the ratio is
# fair: musl's own allocator is slow under threads, which is why the static
# build links mimalloc (see Cargo.toml).
# Usage: bench/static-vs-glibc.sh   (RUNS, SECONDS_PER_RUN as webhook-load.sh;
# builds both binaries if missing)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
[ -x target/dist/lkguard ] || bash scripts/build-release.sh
cargo build --release --quiet
for round in 1 2; do
    for bin in target/release/lkguard target/dist/lkguard; do
        echo "=== round $round: $bin ($(file -b "$bin" | cut -d, -f1-2))"
        LKGUARD_BIN="$bin" bash bench/webhook-load.sh
    done
done

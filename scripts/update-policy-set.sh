#!/usr/bin/env bash
# Builds the embedded policy set from policies/ and copies it to
# policies/livekit/prebuilt/, the set `cargo install` embeds on a toolchain
# without the wasm32-wasip2 target. Run it after changing a policy and commit
# the result: the test `the_shipped_policy_set_is_what_policies_build` (host/tests/packaging.rs)
# fails until the two are equal. The build is reproducible (same toolchain:
# the same bytes from any checkout directory).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo build --profile policy --target wasm32-wasip2 \
    --target-dir target/lkguard-policy-set -p lkguard-policy-livekit
built=target/lkguard-policy-set/wasm32-wasip2/policy/lkguard_policy_livekit.wasm
cp "$built" policies/livekit/prebuilt/lkguard_policy_livekit.wasm
(cd policies/livekit/prebuilt && sha256sum lkguard_policy_livekit.wasm > SHA256SUMS && cat SHA256SUMS)

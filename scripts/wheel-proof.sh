#!/usr/bin/env bash
# The wheel as a newcomer installs it: a fresh virtualenv, no cargo or rustc
# on PATH, `pip install --no-index --find-links target/dist lkguard` (the
# wheel scripts/build-release.sh built; --no-index: nothing from PyPI), then
# `lkguard check` on a kustomize tree whose base holds a mistake finds it at
# the base's line (fixtures/kustomize/base-mistake). The binary is static (no libc needed: the image proof runs it
# in an image with no libc at all), so the one wheel serves glibc and musl.
# Usage: scripts/wheel-proof.sh   (CI runs it from .ci/run)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
fail() { echo "wheel proof FAILED: $*" >&2; exit 1; }
wheel="$(ls "$here"/target/dist/lkguard-*.whl 2>/dev/null | head -1)"
[ -n "$wheel" ] || fail "no wheel in target/dist: run scripts/build-release.sh"
echo "wheel: $(basename "$wheel"), $(du -k "$wheel" | cut -f1) KiB"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
PATH="$work/venv/bin:$(echo "$PATH" | tr ':' '\n' | grep -v -e '\.cargo/bin' -e rustup | paste -sd: -)"
export PATH
! command -v cargo >/dev/null || fail "cargo is on PATH"
! command -v rustc >/dev/null || fail "rustc is on PATH"
start=$(date +%s)
pip install -q --no-index --find-links "$here/target/dist" lkguard
echo "pip install: $(( $(date +%s) - start )) s"
[ "$(command -v lkguard)" = "$work/venv/bin/lkguard" ] || fail "lkguard is not the venv's: $(command -v lkguard)"
lkguard --version
cp -r "$here/fixtures/kustomize/base-mistake" "$work/tree"
cd "$work/tree"
set +e
lkguard check . > "$work/out" 2>&1
status=$?
set -e
cat "$work/out"
[ "$status" = 1 ] || fail "exit $status, not 1"
grep -q "base/livekit.yaml:20:7" "$work/out" || fail "the base mistake is not at base/livekit.yaml:20:7"
echo "ok: the wheel installs without Rust and finds the base mistake"

#!/usr/bin/env bash
# One release build for every way lkguard ships: a static lkguard binary for
# x86_64-unknown-linux-musl (the policy set embedded) and the maturin `bin`
# wheel that carries it, tagged manylinux2014 and musllinux_1_2 at once
# (PyO3/maturin#928), so one wheel installs on glibc and musl Linux alike.
# scripts/build-image.sh puts the same binary in the container image.
#
# Usage: scripts/build-release.sh   -> target/dist/{lkguard, lkguard-*.whl, SHA256SUMS}
# Needs: rustup, python3 with venv, musl-gcc (Debian: apt-get install musl-tools;
# ring and wasmtime compile a little C for the target).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=x86_64-unknown-linux-musl
MATURIN_VERSION=1.16.0
out="$PWD/target/dist"

rustup target add "$TARGET" wasm32-wasip2 >/dev/null 2>&1 || true
command -v musl-gcc >/dev/null || { echo "build-release: needs musl-gcc (apt-get install musl-tools)" >&2; exit 1; }
export CC_x86_64_unknown_linux_musl=musl-gcc
venv="$PWD/target/packaging-venv"
if ! "$venv/bin/maturin" --version 2>/dev/null | grep -q "$MATURIN_VERSION"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "maturin==$MATURIN_VERSION"
fi

rm -rf "$out"
mkdir -p "$out"
start=$(date +%s)
(cd packaging/pypi && "$venv/bin/maturin" build --release --target "$TARGET" \
    --compatibility manylinux2014 musllinux_1_2 --out "$out")
cp "target/$TARGET/release/lkguard" "$out/lkguard"
echo "build-release: $(( $(date +%s) - start )) s"
(cd "$out" && sha256sum lkguard ./*.whl | tee SHA256SUMS)
ls -l "$out"

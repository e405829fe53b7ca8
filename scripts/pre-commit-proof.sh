#!/usr/bin/env bash
# Proves the hooks with the real pre-commit from PyPI, as a user meets them: a
# scratch git repository holding the fixture tree adds one of this
# repository's hooks to its .pre-commit-config.yaml (at this repository's
# HEAD), installs it as a git hook, and commits. The clean tree passes
# (`pre-commit run --all-files`); a commit that sets `use_external_ip: true`
# in the base is rejected, naming the base file and line and both overlays.
#
# Usage: scripts/pre-commit-proof.sh [lkguard|lkguard-src]   (default lkguard)
#
# lkguard: `language: python`. pip installs the root shim, which pulls the
#   `lkguard` wheel from target/dist (PIP_FIND_LINKS, the stand-in for the
#   package index nothing here can publish to; setuptools for the shim still
#   comes from the index), with no cargo or rustc on PATH. The wheel is built
#   by scripts/build-release.sh. install-hooks must take under 60 s.
# lkguard-src: `language: rust`, `cargo install` of this repository, on a
#   toolchain that lacks wasm32-wasip2 (a hard-linked copy of the default one
#   without that target), so it also proves the shipped policy set is used.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
PRE_COMMIT_VERSION=4.7.0

if ! python3 -m pre_commit --version 2>/dev/null | grep -q "$PRE_COMMIT_VERSION"; then
    python3 -m pip install -q "pre-commit==$PRE_COMMIT_VERSION"
fi
python3 -m pre_commit --version
hook="${1:-lkguard}"
rev="$(git -C "$here" rev-parse HEAD)"
if [ -n "$(git -C "$here" status --porcelain)" ]; then
    echo "note: uncommitted changes in $here are not part of the hook (it installs $rev)"
fi

fail() { echo "pre-commit proof FAILED: $*" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export PRE_COMMIT_HOME="$work/store"
repo="$work/gitops"
mkdir -p "$repo"
cp -r "$here/fixtures/deploy" "$repo/"
cat > "$repo/.pre-commit-config.yaml" <<YAML
repos:
  - repo: $here
    rev: $rev
    hooks:
      - id: $hook
YAML
cd "$repo"
git init -q
git config user.email ci@example.invalid
git config user.name ci
python3 -m pre_commit install
git add -A

case "$hook" in
    lkguard)
        dist="$here/target/dist"
        ls "$dist"/lkguard-*.whl >/dev/null 2>&1 \
            || fail "no wheel in $dist: run scripts/build-release.sh first"
        export PIP_FIND_LINKS="$dist"
        # No Rust here: the hook must not need it.
        PATH="$(echo "$PATH" | tr ':' '\n' | grep -v -e '\.cargo/bin' -e rustup | paste -sd: -)"
        export PATH
        ! command -v cargo >/dev/null || fail "cargo is still on PATH"
        what="pip: the shim at the root + the lkguard wheel from $dist"
        ;;
    lkguard-src)
        # A toolchain like a fresh `rustup` one: no wasm32-wasip2.
        sysroot="$(rustc --print sysroot)"
        toolchain="$work/toolchain-without-wasm"
        cp -al "$sysroot" "$toolchain"
        rm -rf "$toolchain/lib/rustlib/wasm32-wasip2"
        rustup toolchain link lkguard-proof-nowasm "$toolchain"
        trap 'rustup toolchain uninstall lkguard-proof-nowasm >/dev/null 2>&1; rm -rf "$work"' EXIT
        export RUSTUP_TOOLCHAIN=lkguard-proof-nowasm
        [ ! -e "$(rustc --print sysroot)/lib/rustlib/wasm32-wasip2" ] || fail "the toolchain still has wasm32-wasip2"
        what="cargo install of lkguard at $rev, on a toolchain without wasm32-wasip2"
        ;;
    *) fail "unknown hook $hook (lkguard or lkguard-src)" ;;
esac

echo "--- installing the $hook hook ($what), cold pre-commit cache"
start=$(date +%s)
python3 -m pre_commit install-hooks
took=$(( $(date +%s) - start ))
echo "install-hooks ($hook): ${took} s"
if [ "$hook" = lkguard ] && [ "$took" -ge 60 ]; then
    fail "installing the wheel hook took ${took} s (more than 60)"
fi

echo "--- clean tree: every file through the hook"
if ! python3 -m pre_commit run "$hook" --all-files > "$work/clean.log" 2>&1; then
    cat "$work/clean.log"
    fail "the hook rejected the clean fixture tree"
fi
cat "$work/clean.log"
grep -q "Passed" "$work/clean.log" || fail "no Passed line"
git commit -qm "clean LiveKit tree" || fail "the clean commit was rejected"
echo "ok: clean tree passes and commits"

echo "--- a commit that turns on STUN discovery in the base"
sed -i 's/use_external_ip: false/use_external_ip: true/' deploy/k8s/base/livekit.yaml
git add deploy/k8s/base/livekit.yaml
set +e
git commit -m "turn on STUN" > "$work/bad.log" 2>&1
status=$?
set -e
cat "$work/bad.log"
[ "$status" -ne 0 ] || fail "the commit went through with use_external_ip: true in the base"
grep -q "deploy/k8s/base/livekit.yaml:16:7" "$work/bad.log" \
    || fail "the failure does not point at deploy/k8s/base/livekit.yaml:16:7"
grep -q "livekit/use-external-ip" "$work/bad.log" || fail "rule id missing"
grep -q "deploy/k8s/overlays/production, deploy/k8s/overlays/staging" "$work/bad.log" \
    || fail "the finding does not name both overlays the base reaches"
echo "ok: the bad commit is rejected at deploy/k8s/base/livekit.yaml:16:7"

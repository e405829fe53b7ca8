#!/usr/bin/env bash
# Proves the hook with the real pre-commit from PyPI, as a user meets it:
# `pre-commit try-repo <this repository> lkguard` in a scratch git repository
# holding the fixture tree. The clean tree passes; a commit that sets
# `use_external_ip: true` in the base fails, naming the base file and line.
#
# Usage: scripts/pre-commit-proof.sh   (from anywhere; CI runs it from .ci/run)
# pre-commit builds lkguard with `cargo install` (release) the first time;
# later runs of the same commit reuse its environment.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
PRE_COMMIT_VERSION=4.7.0

if ! python3 -m pre_commit --version 2>/dev/null | grep -q "$PRE_COMMIT_VERSION"; then
    python3 -m pip install -q "pre-commit==$PRE_COMMIT_VERSION"
fi
python3 -m pre_commit --version

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
repo="$work/gitops"
mkdir -p "$repo"
cp -r "$here/fixtures/deploy" "$repo/"
cd "$repo"
git init -q
git config user.email ci@example.invalid
git config user.name ci
git add -A
git commit -qm "clean LiveKit tree"

fail() { echo "pre-commit proof FAILED: $*" >&2; exit 1; }

echo "--- clean tree: every file through the hook"
if ! python3 -m pre_commit try-repo "$here" lkguard --all-files --verbose > "$work/clean.log" 2>&1; then
    cat "$work/clean.log"
    fail "the hook rejected the clean fixture tree"
fi
grep -q "Passed" "$work/clean.log" || { cat "$work/clean.log"; fail "no Passed line"; }
echo "ok: clean tree passes"

echo "--- a commit that turns on STUN discovery in the base"
sed -i 's/use_external_ip: false/use_external_ip: true/' deploy/k8s/base/livekit.yaml
git add deploy/k8s/base/livekit.yaml
set +e
python3 -m pre_commit try-repo "$here" lkguard > "$work/bad.log" 2>&1
status=$?
set -e
cat "$work/bad.log"
[ "$status" -ne 0 ] || fail "the hook passed a base with use_external_ip: true"
grep -q "deploy/k8s/base/livekit.yaml:16:7" "$work/bad.log" \
    || fail "the failure does not point at deploy/k8s/base/livekit.yaml:16:7"
grep -q "livekit/use-external-ip" "$work/bad.log" || fail "rule id missing"
grep -q "deploy/k8s/overlays/production, deploy/k8s/overlays/staging" "$work/bad.log" \
    || fail "the finding does not name both overlays the base reaches"
echo "ok: the bad commit is rejected at deploy/k8s/base/livekit.yaml:16:7"

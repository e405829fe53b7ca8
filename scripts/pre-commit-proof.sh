#!/usr/bin/env bash
# Proves the hook with the real pre-commit from PyPI, as a user meets it: a
# scratch git repository holding the fixture tree adds this repository's
# `lkguard` hook to its .pre-commit-config.yaml (at this repository's HEAD),
# installs it as a git hook, and commits. The clean tree passes
# (`pre-commit run --all-files`); a commit that sets `use_external_ip: true`
# in the base is rejected, naming the base file and line and both overlays.
#
# Usage: scripts/pre-commit-proof.sh   (CI runs it from .ci/run)
# pre-commit builds lkguard once with `cargo install` (release, ~8 min on 2
# cores), in a store under a temporary PRE_COMMIT_HOME.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
PRE_COMMIT_VERSION=4.7.0

if ! python3 -m pre_commit --version 2>/dev/null | grep -q "$PRE_COMMIT_VERSION"; then
    python3 -m pip install -q "pre-commit==$PRE_COMMIT_VERSION"
fi
python3 -m pre_commit --version
rev="$(git -C "$here" rev-parse HEAD)"
if [ -n "$(git -C "$here" status --porcelain)" ]; then
    echo "note: uncommitted changes in $here are not part of the hook (it installs $rev)"
fi

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
      - id: lkguard
YAML
cd "$repo"
git init -q
git config user.email ci@example.invalid
git config user.name ci
python3 -m pre_commit install
git add -A
fail() { echo "pre-commit proof FAILED: $*" >&2; exit 1; }

echo "--- installing the hook (cargo install of lkguard at $rev)"
python3 -m pre_commit install-hooks

echo "--- clean tree: every file through the hook"
if ! python3 -m pre_commit run lkguard --all-files > "$work/clean.log" 2>&1; then
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

#!/usr/bin/env bash
# Builds the lkguard container image (deploy/image/Containerfile, FROM
# scratch: the static binary of scripts/build-release.sh and nothing else)
# with buildah, exports it as an OCI layout with skopeo, and proves the image
# itself, not just the binary: it is unpacked with umoci and `lkguard serve`
# runs from the unpacked root filesystem (chroot, uid 65532, only the image's
# files), then answers real AdmissionReviews over TLS: a tag-pinned livekit
# Deployment is denied, the digest-pinned one allowed.
#
# `podman run` is not used: on these machines crun refuses the cgroup setup.
# No registry is reachable here, so the image is not pushed; the README says
# how (skopeo copy oci:target/image/oci:TAG docker://REGISTRY/lkguard:TAG).
#
# Usage: scripts/build-image.sh   (CI runs it from .ci/run; run as root)
# Needs: buildah, skopeo, umoci (Debian packages), openssl, curl, python3 + PyYAML.
set -euo pipefail
cd "$(dirname "$0")/.."
here="$PWD"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
tag="localhost/lkguard:$version"
bin="$here/target/dist/lkguard"
[ -x "$bin" ] || bash scripts/build-release.sh
# A storage of its own, vfs (no overlay mounts needed): nothing else on the
# machine shares it, and another storage driver set up there does not matter.
storage="$here/target/image/storage"
store=(--root "$storage/root" --runroot "$storage/run" --storage-driver vfs)
fail() { echo "image proof FAILED: $*" >&2; exit 1; }

work="$(mktemp -d)"
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    umount "$work/bundle/rootfs/proc" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "--- buildah: $tag from deploy/image/Containerfile"
mkdir -p "$storage"
ctx="$work/context"
mkdir -p "$ctx/tmp" "$ctx/bin/amd64"
cp "$bin" "$ctx/bin/amd64/lkguard"
buildah "${store[@]}" build --quiet --layers=false --build-arg TARGETARCH=amd64 \
    -f deploy/image/Containerfile -t "$tag" "$ctx" >/dev/null
oci="$here/target/image/oci"
rm -rf "$oci"
skopeo copy --quiet "containers-storage:[vfs@$storage/root+$storage/run]$tag" "oci:$oci:$version"
digest="$(skopeo inspect --format '{{.Digest}}' "oci:$oci:$version")"
layers="$(du -cb "$oci"/blobs/sha256/* | tail -1 | cut -f1)"
echo "image $tag: $digest, $((layers / 1024)) KiB as stored (compressed layers + config)"

echo "--- umoci unpack, and what the image holds"
umoci unpack --image "$oci:$version" "$work/bundle" >/dev/null
rootfs="$work/bundle/rootfs"
find "$rootfs" -mindepth 1 | sed "s|$rootfs||" | sort
config="$work/bundle/config.json"
python3 - "$config" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
p = c["process"]
assert p["args"][0] == "/lkguard", p["args"]
assert (p["user"]["uid"], p["user"]["gid"]) == (65532, 65532), p["user"]
print("entrypoint", p["args"], "user", p["user"]["uid"], "env", [e for e in p["env"] if "LKGUARD" in e])
PY
[ ! -e "$rootfs/bin/sh" ] || fail "the image has a shell"
unpacked="$(du -b "$rootfs/lkguard" | cut -f1)"
echo "binary in the image: $((unpacked / 1024 / 1024)) MiB"

echo "--- lkguard serve from the unpacked root filesystem"
mkdir -p "$rootfs/proc" "$rootfs/tls"
mount -t proc proc "$rootfs/proc"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$rootfs/tls/tls.key" -out "$rootfs/tls/tls.crt" 2>/dev/null
chown -R 65532:65532 "$rootfs/tls"
port=$((20000 + RANDOM % 20000))
chroot="$(command -v chroot)"
env -i LKGUARD_CACHE_DIR=/tmp/lkguard-cache LKGUARD_LOG=warn \
    "$chroot" --userspec=65532:65532 "$rootfs" /lkguard serve \
    --listen "127.0.0.1:$port" --tls-cert /tls/tls.crt --tls-key /tls/tls.key \
    > "$work/serve.out" 2> "$work/serve.err" &
server=$!
for _ in $(seq 1 600); do
    grep -q "listening on" "$work/serve.out" 2>/dev/null && break
    kill -0 "$server" 2>/dev/null || { cat "$work/serve.err"; fail "serve exited"; }
    sleep 0.1
done
grep -q "listening on" "$work/serve.out" || fail "serve did not start within 60 s"
url="https://127.0.0.1:$port"
for _ in $(seq 1 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$rootfs/tls/tls.crt" "$url/readyz")" = 200 ] && break
    sleep 0.1
done

review() {  # review FILE KIND NAME -> an AdmissionReview of that object
    python3 - "$@" <<'PY'
import json, sys, yaml
path, kind, name = sys.argv[1:]
obj = next(d for d in yaml.safe_load_all(open(path))
           if d and d.get("kind") == kind and d["metadata"]["name"] == name)
print(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
  "request": {"uid": "image-proof", "operation": "CREATE", "namespace": "memql",
    "kind": {"group": "apps", "version": "v1", "kind": kind},
    "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
    "userInfo": {"username": "ci"}, "object": obj}}))
PY
}
ask() {
    review "$1" Deployment livekit > "$work/review.json"
    curl -sS --fail --cacert "$rootfs/tls/tls.crt" -H 'content-type: application/json' \
        --data-binary @"$work/review.json" "$url/validate"
}
bad="$(ask fixtures/rendered/bad/image-digest-tag-only.yaml)"
echo "tag-pinned livekit Deployment: $bad"
echo "$bad" | python3 -c 'import json,sys; r=json.load(sys.stdin)["response"]; assert r["uid"]=="image-proof" and r["allowed"] is False and "livekit/image-digest" in r["status"]["message"], r' \
    || fail "the tag-pinned Deployment was not denied for livekit/image-digest"
good="$(ask fixtures/rendered/staging.yaml)"
echo "digest-pinned livekit Deployment: $good"
echo "$good" | python3 -c 'import json,sys; r=json.load(sys.stdin)["response"]; assert r["allowed"] is True, r' \
    || fail "the good Deployment was not allowed"
kill -TERM "$server"
wait "$server" || true
server=""
echo "ok: the image ($digest) serves admission from its own root filesystem"

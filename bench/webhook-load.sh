#!/usr/bin/env bash
# Load on `lkguard serve` over TLS on loopback, keep-alive, with a realistic
# AdmissionReview (the livekit Deployment of the staging render, CREATE):
#   - throughput at saturation (oha, 32 connections, 15 s)
#   - p50/p99 latency at a fixed 1,000 req/s (15 s)
#   - RSS idle (after ready) and the peak under load
# Usage: bench/webhook-load.sh   (builds lkguard in release; installs oha with cargo if missing)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
OHA="${OHA:-$(command -v oha || true)}"
if [ -z "$OHA" ]; then
    cargo install oha --locked --root target/bench-tools >/dev/null
    OHA=target/bench-tools/bin/oha
fi
cargo build --release --quiet
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$work/tls.key" -out "$work/tls.crt" -days 1 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
python3 - "$work/review.json" <<'PY'
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open("fixtures/rendered/staging.yaml")) if d]
obj = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "livekit")
review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
    "uid": "bench", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
    "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
    "requestKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
    "name": "livekit", "namespace": "memql", "operation": "CREATE",
    "userInfo": {"username": "system:serviceaccount:argocd:argocd-application-controller"},
    "object": obj, "dryRun": False}}
json.dump(review, open(sys.argv[1], "w"))
PY
export LKGUARD_CACHE_DIR="$work/cache"
./target/release/lkguard serve --listen 127.0.0.1:0 --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" \
    > "$work/out" 2> "$work/log" &
pid=$!
for _ in $(seq 1 600); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
url="$(sed -n 's/^lkguard serve: listening on //p' "$work/out")/validate"
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
sleep 1
idle=$(rss)
peak=$idle
sample() { while kill -0 "$pid" 2>/dev/null; do r=$(rss); [ "$r" -gt "$peak" ] && peak=$r && echo "$peak" > "$work/peak"; sleep 0.2; done; }
echo "$idle" > "$work/peak"
sample &
sampler=$!
common=(--no-tui --insecure -m POST -H "content-type: application/json" -D "$work/review.json" --output-format json)
# Warm up: compile caches, pool slots, connections.
"$OHA" "${common[@]}" -z 3s -c 8 "$url" > /dev/null
"$OHA" "${common[@]}" -z 15s -c 32 "$url" > "$work/sat.json"
"$OHA" "${common[@]}" -z 15s -c 32 -q 1000 "$url" > "$work/fixed.json"
kill "$sampler" 2>/dev/null || true
peak=$(cat "$work/peak")
python3 - "$work/sat.json" "$work/fixed.json" "$idle" "$peak" <<'PY'
import json, sys
sat, fixed = (json.load(open(p)) for p in sys.argv[1:3])
idle, peak = int(sys.argv[3]), int(sys.argv[4])
def codes(r): return r.get("statusCodeDistribution", {})
ms = lambda s: s * 1000
print("lkguard serve, 2-core loopback, TLS + keep-alive, livekit Deployment CREATE review")
print(f"  saturation (32 conns, 15 s):      {sat['summary']['requestsPerSec']:8.0f} req/s   status {codes(sat)}")
lp = fixed["latencyPercentiles"]
print(f"  fixed 1,000 req/s (15 s):         p50 {ms(lp['p50']):.3f} ms   p99 {ms(lp['p99']):.3f} ms   "
      f"achieved {fixed['summary']['requestsPerSec']:.0f} req/s   status {codes(fixed)}")
print(f"  RSS idle {idle/1024:.1f} MiB, peak under load {peak/1024:.1f} MiB")
PY

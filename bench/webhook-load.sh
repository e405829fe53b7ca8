#!/usr/bin/env bash
# Load on `lkguard serve` over TLS on loopback, keep-alive, with a realistic
# AdmissionReview (the livekit Deployment of the staging render, CREATE):
#   - RSS idle after a cold start (compiling every policy, as a pod's first
#     start does) and after a warm start (compiled code from the cache)
#   - throughput at saturation (oha, 32 connections), RUNS runs, median
#   - p50/p99 latency at a fixed 1,000 req/s, RUNS runs, median
#   - the server's own CPU time per request (from /proc, so the load
#     generator sharing the cores does not count), and the RSS peak
#   - oha against GET /healthz: what the load generator and TLS alone reach
# Usage: bench/webhook-load.sh   (RUNS=3 SECONDS_PER_RUN=10 by default;
# builds lkguard in release; installs oha with cargo if missing)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
RUNS="${RUNS:-3}"
SECS="${SECONDS_PER_RUN:-10}"
. bench/common.sh
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

start() {
    "$LKGUARD_BIN" serve --listen 127.0.0.1:0 --tls-cert "$work/tls.crt" \
        --tls-key "$work/tls.key" > "$work/out" 2> "$work/log" &
    pid=$!
    for _ in $(seq 1 1200); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
    base="$(sed -n 's/^lkguard serve: listening on //p' "$work/out")"
    # Health answers while the policies compile; idle means compiled.
    for _ in $(seq 1 1200); do
        curl -ksf "$base/readyz" >/dev/null && break
        sleep 0.1
    done
    sleep 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }

start
echo "$(rss)" > "$work/rss.cold"
stop
start
echo "$(rss)" > "$work/rss.warm"
common=(--no-tui --insecure --output-format json)
post=(-m POST -H "content-type: application/json" -D "$work/review.json")
# Warm up: pool slots, connections.
"$OHA" "${common[@]}" "${post[@]}" -z 3s -c 8 "$base/validate" > /dev/null
ticks_per_s=$(getconf CLK_TCK)
for i in $(seq 1 "$RUNS"); do
    for mode in sat fixed; do
        rate=()
        [ "$mode" = fixed ] && rate=(-q 1000)
        before=$(cpu_ticks)
        "$OHA" "${common[@]}" "${post[@]}" -z "${SECS}s" -c 32 "${rate[@]}" "$base/validate" \
            > "$work/$mode.$i.json"
        echo "$(( $(cpu_ticks) - before ))" > "$work/$mode.$i.ticks"
    done
done
"$OHA" "${common[@]}" -z "${SECS}s" -c 32 "$base/healthz" > "$work/healthz.json"
# The kernel's high-water mark of the warm server's RSS, over every run.
peak=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
stop
python3 - "$work" "$RUNS" "$peak" "$ticks_per_s" <<'PY'
import json, statistics, sys
work, runs, peak, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def load(mode, i):
    d = json.load(open(f"{work}/{mode}.{i}.json"))
    ticks = int(open(f"{work}/{mode}.{i}.ticks").read())
    codes = d.get("statusCodeDistribution", {})
    n = sum(codes.values())
    assert set(codes) == {"200"}, f"{mode} run {i}: status {codes}"
    return d, ticks * 1000 / hz / max(n, 1)
med = statistics.median
sat = [load("sat", i) for i in range(1, runs + 1)]
fixed = [load("fixed", i) for i in range(1, runs + 1)]
rps = [d["summary"]["requestsPerSec"] for d, _ in sat]
p50 = [d["latencyPercentiles"]["p50"] * 1000 for d, _ in fixed]
p99 = [d["latencyPercentiles"]["p99"] * 1000 for d, _ in fixed]
cpu_sat = [c for _, c in sat]
cpu_fixed = [c for _, c in fixed]
health = json.load(open(f"{work}/healthz.json"))["summary"]["requestsPerSec"]
cold, warm = (int(open(f"{work}/rss.{k}").read()) / 1024 for k in ("cold", "warm"))
f = lambda xs, p=0: "/".join(f"{x:.{p}f}" for x in xs)
print("lkguard serve, loopback TLS + keep-alive, 32 connections, livekit Deployment CREATE review")
print(f"  saturation:        median {med(rps):6.0f} req/s   (runs {f(rps)})")
print(f"  fixed 1,000 req/s: median p50 {med(p50):.2f} ms  p99 {med(p99):.2f} ms   (p99 runs {f(p99, 2)})")
print(f"  server CPU per request: {med(cpu_sat):.3f} ms at saturation, {med(cpu_fixed):.3f} ms at 1,000 req/s")
print(f"  oha alone on GET /healthz: {health:.0f} req/s (ratio to /validate saturation {health / med(rps):.1f}x)")
print(f"  RSS idle {cold:.1f} MiB after a cold start, {warm:.1f} MiB warm; peak under load {peak / 1024:.1f} MiB")
PY

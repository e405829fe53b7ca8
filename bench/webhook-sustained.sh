#!/usr/bin/env bash
# A sustained run of `lkguard serve` with a hostile policy loaded: 60 s at a
# steady 1,000 req/s over TLS on loopback, keep-alive, from four streams at
# once:
#   allowed   400/s  a good Service (CREATE)               -> 200, allowed
#   denied    400/s  a livekit Deployment pinned by tag    -> 200, denied
#   malformed 100/s  a body that is not JSON               -> 400
#   hostile   100/s  a ConfigMap named trap-*, on which the
#                    loaded hostile policy traps            -> 200, denied
# The hostile policy (fixtures/hostile/sometimes) traps on any batch with an
# object named trap-* and finds nothing otherwise, so every other request
# still gets its real verdict next to it.
# Reports per stream: requests sent, answered with the expected status,
# failed (any other status, or a transport error: must be 0), p99; the
# verdict counters from /metrics against what was sent; RSS after warm-up
# and at the end (growth must stay under 10 %). Exits 1 when a check fails.
# Usage: bench/webhook-sustained.sh   (SECONDS_TOTAL=60 RATE=1000 by default)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
SECS="${SECONDS_TOTAL:-60}"
RATE="${RATE:-1000}"
. bench/common.sh
# The hostile policy, built as the tests build it.
(cd fixtures/hostile && env -u RUSTFLAGS cargo build --quiet --release --target wasm32-wasip2 \
    --target-dir "$here/target/hostile-policies" -p hostile-sometimes)
hostile="$here/target/hostile-policies/wasm32-wasip2/release/hostile_sometimes.wasm"
python3 - "$work" <<'PY'
import json, sys, yaml
work = sys.argv[1]
docs = [d for d in yaml.safe_load_all(open("fixtures/rendered/staging.yaml")) if d]
bad = [d for d in yaml.safe_load_all(open("fixtures/rendered/bad/image-digest-tag-only.yaml")) if d]
def pick(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)
def review(obj, uid):
    api = obj["apiVersion"]
    group, version = api.rsplit("/", 1) if "/" in api else ("", api)
    kind = obj["kind"]
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": kind.lower() + "s"},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "name": obj["metadata"]["name"], "namespace": "memql", "operation": "CREATE",
        "userInfo": {"username": "system:serviceaccount:argocd:argocd-application-controller"},
        "object": obj, "dryRun": False}}
trap_me = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "trap-me", "namespace": "memql"}, "data": {"a": "b"}}
bodies = {
    "allowed": review(pick(docs, "Service", "livekit"), "allowed"),
    "denied": review(pick(bad, "Deployment", "livekit"), "denied"),
    "hostile": review(trap_me, "hostile"),
}
for name, body in bodies.items():
    json.dump(body, open(f"{work}/{name}.json", "w"))
open(f"{work}/malformed.json", "w").write('{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionRev')
PY
export LKGUARD_CACHE_DIR="$work/cache"
"$LKGUARD_BIN" serve --listen 127.0.0.1:0 --tls-cert "$work/tls.crt" \
    --tls-key "$work/tls.key" --policy "$hostile" > "$work/out" 2> "$work/log" &
pid=$!
for _ in $(seq 1 1200); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
base="$(sed -n 's/^lkguard serve: listening on //p' "$work/out")"
for _ in $(seq 1 1200); do curl -ksf "$base/readyz" >/dev/null && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
common=(--no-tui --insecure --output-format json -m POST -H "content-type: application/json")
# Warm up every path (pool slots, the hostile policy's trap, connections),
# then read the counters and RSS the run starts from.
for s in allowed denied malformed hostile; do
    "$OHA" "${common[@]}" -D "$work/$s.json" -z 3s -c 4 -q 200 "$base/validate" > /dev/null
done
curl -ks "$base/metrics" > "$work/metrics.before"
rss > "$work/rss.start"
declare -A share=([allowed]=40 [denied]=40 [malformed]=10 [hostile]=10)
for s in allowed denied malformed hostile; do
    rate=$(( RATE * share[$s] / 100 ))
    conns=$(( rate >= 200 ? 8 : 2 ))
    # -w: requests in flight at the end are waited for, not counted as
    # aborted (oha's own deadline, not a failure of the server).
    "$OHA" "${common[@]}" -D "$work/$s.json" -z "${SECS}s" -w -c "$conns" -q "$rate" \
        "$base/validate" > "$work/$s.result" &
done
peak=0
for _ in $(seq 1 "$SECS"); do
    sleep 1
    r=$(rss); [ "$r" -gt "$peak" ] && peak=$r
done
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
sleep 1
rss > "$work/rss.end"
curl -ks "$base/metrics" > "$work/metrics.after"
echo "$peak" > "$work/rss.peak"
python3 - "$work" "$SECS" "$RATE" <<'PY'
import json, re, sys
work, secs, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
expect = {"allowed": "200", "denied": "200", "malformed": "400", "hostile": "200"}
def counters(path):
    out = {}
    for line in open(path):
        m = re.match(r'lkguard_admission_requests_total\{verdict="(\w+)"\} (\d+)', line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out
before, after = counters(f"{work}/metrics.before"), counters(f"{work}/metrics.after")
delta = {k: after.get(k, 0) - before.get(k, 0) for k in ("allowed", "denied", "invalid")}
ok = True
print(f"lkguard serve, {secs} s at {rate} req/s (40 % allowed, 40 % denied, 10 % malformed, "
      f"10 % trapping the loaded hostile policy), loopback TLS + keep-alive")
total = {"sent": 0, "answered": 0, "failed": 0}
sent_by = {}
for s, status in expect.items():
    d = json.load(open(f"{work}/{s}.result"))
    codes = d.get("statusCodeDistribution", {})
    errors = sum(d.get("errorDistribution", {}).values())
    sent = sum(codes.values()) + errors
    answered = codes.get(status, 0)
    failed = sent - answered
    p99 = d["latencyPercentiles"]["p99"] * 1e3
    sent_by[s] = answered
    total["sent"] += sent; total["answered"] += answered; total["failed"] += failed
    ok &= failed == 0
    print(f"  {s:<9} sent {sent:>6}  answered {answered:>6} (HTTP {status})  failed {failed}  p99 {p99:.2f} ms"
          + (f"  errors {d.get('errorDistribution')}" if errors else ""))
print(f"  total     sent {total['sent']:>6}  answered {total['answered']:>6}  failed {total['failed']}")
want = {"allowed": sent_by["allowed"], "denied": sent_by["denied"] + sent_by["hostile"],
        "invalid": sent_by["malformed"]}
print(f"  verdicts from /metrics: {delta} (expected {want})")
ok &= delta == want
start, end, peak = (int(open(f"{work}/rss.{k}").read()) for k in ("start", "end", "peak"))
growth = (end - start) / start * 100
print(f"  RSS start {start / 1024:.1f} MiB, end {end / 1024:.1f} MiB ({growth:+.1f} %), peak {peak / 1024:.1f} MiB")
ok &= growth < 10
print("  result:", "ok" if ok else "FAILED")
sys.exit(0 if ok else 1)
PY

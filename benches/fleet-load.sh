#!/usr/bin/env bash
# benches/fleet-load.sh - fleet prevalence through `filerep serve` on loopback (issue 7; see docs/performance.md).
#
#   benches/fleet-load.sh [SIGHTINGS]      default 100000
#
# 1. `cargo bench --bench fleet -- SIGHTINGS`: the library figures (ingest, and the aggregate of one file with
#    SIGHTINGS sightings from as many participants), keeping that store;
# 2. `filerep serve` on that store, wrk GET /v1/files/{that file} with 1 and 8 connections (benches/fleet-get.lua):
#    the aggregate query latency over HTTP, with the JSON answer built and sent;
# 3. `filerep serve` on a new store, wrk POST /v1/sightings (benches/fleet-sightings.lua), batches of 100
#    executables: new participants with 1 and 8 connections, then 50 participants per wrk thread reporting
#    again: sightings/s.
# wrk and the server share the machine's cores. Env: FLEET_LOAD_DIR (work directory, kept), DURATION (20s).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${1:-100000}
DURATION=${DURATION:-20s}
command -v wrk >/dev/null || { echo "fleet-load: wrk is not installed (apt-get install wrk)" >&2; exit 2; }
cargo build --release --quiet
BIN=$ROOT/target/release/filerep
WORK=${FLEET_LOAD_DIR:-$(mktemp -d)}
mkdir -p "$WORK"
rm -rf "$WORK/agg.sqlite"* "$WORK/ingest.sqlite"*

echo "== machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
echo "== 1. library (cargo bench --bench fleet -- $N)"
FLEET_BENCH_STORE=$WORK/agg.sqlite cargo bench --quiet --bench fleet -- "$N" 2>/dev/null | grep '^|'

serve() { # DB LOG [ARGS...]
    local db=$1 log=$2
    shift 2
    FILEREP_SERVE_TOKEN=fleet-bench "$BIN" --db "$db" serve --listen 127.0.0.1:0 --rate-limit 0 "$@" 2> "$log" &
    PID=$!
    for _ in $(seq 100); do
        grep -q "listening on" "$log" 2>/dev/null && break
        sleep 0.1
    done
    ADDR=$(sed -n 's/.*listening on http:\/\/\([^ ]*\) .*/\1/p' "$log")
    [ -n "$ADDR" ] || { cat "$log" >&2; exit 2; }
}
trap 'kill ${PID:-0} 2>/dev/null || true' EXIT

echo "== 2. GET /v1/files/{sha256} of the file with $N sightings"
serve "$WORK/agg.sqlite" "$WORK/agg.log"
curl -fsS "http://$ADDR/v1/files/0100000000000000$(printf '00%.0s' $(seq 23))5a" |
    python3 -c 'import json,sys; p=json.load(sys.stdin)["reputation"]["prevalence"]; print("   participants", p["participants"], "sightings", p["sightings"], "withheld", p["withheld"])'
for c in 1 8; do
    echo "-- $c connection(s)"
    wrk -t1 -c$c -d"$DURATION" -s benches/fleet-get.lua "http://$ADDR" | tail -1
done
kill $PID; wait $PID 2>/dev/null || true

echo "== 3. POST /v1/sightings, 100 executables a batch, into a new store"
serve "$WORK/ingest.sqlite" "$WORK/ingest.log" --sightings-burst 1000000000
export FLEET_TOKEN=fleet-bench
for c in 1 8; do
    echo "-- new participants, $c connection(s)"
    wrk -t1 -c$c -d"$DURATION" -s benches/fleet-sightings.lua "http://$ADDR" | tail -2
done
echo "-- 50 participants reporting again, 1 connection"
FLEET_PARTICIPANTS=50 wrk -t1 -c1 -d"$DURATION" -s benches/fleet-sightings.lua "http://$ADDR" | tail -2
echo "   store: $(du -sh "$WORK/ingest.sqlite" | cut -f1) after $(curl -fsS "http://$ADDR/v1/info" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sightings"])') sightings"

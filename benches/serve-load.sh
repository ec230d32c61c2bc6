#!/usr/bin/env bash
# benches/serve-load.sh - load test of `filerep serve` with wrk on loopback (see docs/performance.md).
#
#   benches/serve-load.sh [SOAK_SECONDS]      default 600 (the 10-minute soak); 0 skips the soak
#
# Builds the release binary, makes a store of 1,000,000 generated SHA-256 (a hash list, class malicious)
# plus the LOLDrivers, MalwareBazaar and xcyclopedia samples in tests/data/feeds, starts `filerep serve` on
# 127.0.0.1 (rate limit off: wrk is one peer), and runs wrk with 64 connections:
#   1. GET /v1/files/{sha256}, half hits, half misses (benches/serve-get.lua), 30 s;
#   2. POST /v1/lookup of 1,000 hashes, half hits (benches/serve-lookup.lua), 30 s;
#   3. the soak: the GET mix for SOAK_SECONDS, with the server's RSS before and after.
# wrk and the server share the machine's cores. Env: SERVE_LOAD_DIR (work directory, kept), WRK_THREADS (2),
# DURATION (30s).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SOAK=${1:-600}
DURATION=${DURATION:-30s}
THREADS=${WRK_THREADS:-2}
command -v wrk >/dev/null || { echo "serve-load: wrk is not installed (apt-get install wrk)" >&2; exit 2; }

cargo build --release --quiet
BIN=$ROOT/target/release/filerep
WORK=${SERVE_LOAD_DIR:-$(mktemp -d)}
mkdir -p "$WORK"
DB=$WORK/store.sqlite
FEEDS=$ROOT/tests/data/feeds

if [ ! -f "$DB" ]; then
    echo "serve-load: generating 1,000,000 SHA-256 and building the store in $WORK" >&2
    python3 - "$WORK/hashes.txt" <<'PY'
import hashlib, sys
with open(sys.argv[1], "w") as f:
    for i in range(1_000_000):
        f.write(hashlib.sha256(b"filerep-load-%d" % i).hexdigest() + "\n")
PY
    "$BIN" --db "$DB" db import --format hashlist --source load-test --class malicious "$WORK/hashes.txt" >&2
    "$BIN" --db "$DB" db import --format loldrivers-json "$FEEDS/loldrivers/drivers.subset.json" >&2
    "$BIN" --db "$DB" db import --format malwarebazaar-csv "$FEEDS/malwarebazaar/recent_export_sample.csv" >&2
    "$BIN" --db "$DB" db import --format xcyclopedia "$FEEDS/xcyclopedia/xcyclopedia.subset.csv" >&2
    # Hits: hashes spread over the generated list.
    awk 'NR % 100 == 1' "$WORK/hashes.txt" > "$WORK/hits.txt"
fi
export SERVE_LOAD_HITS=$WORK/hits.txt

"$BIN" --db "$DB" serve --listen 127.0.0.1:0 --rate-limit 0 2> "$WORK/serve.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    grep -q "listening on" "$WORK/serve.log" 2>/dev/null && break
    sleep 0.1
done
ADDR=$(sed -n 's/.*listening on http:\/\/\([^ ]*\) .*/\1/p' "$WORK/serve.log")
[ -n "$ADDR" ] || { cat "$WORK/serve.log" >&2; exit 2; }
URL=http://$ADDR
rss() { awk '/^VmRSS|^VmHWM/ { printf "%s %s kB  ", $1, $2 } END { print "" }' "/proc/$PID/status"; }

echo "== machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); wrk and the server share them"
echo "== store: $(du -sh "$DB" "$DB.feeds" | awk '{print $1}' | paste -sd+) ($("$BIN" --db "$DB" db info | grep -c '^[a-z].*[0-9]') sources)"
curl -fsS "$URL/v1/files/$(head -1 "$SERVE_LOAD_HITS")" >/dev/null 2>&1 || true
echo "== warm-up (5 s)"
wrk -t"$THREADS" -c64 -d5s -s benches/serve-get.lua "$URL" >/dev/null
echo "== RSS after warm-up: $(rss)"
echo "== 1. GET /v1/files/{sha256}, 64 connections, $DURATION (wrk -t$THREADS -c64 -d$DURATION --latency -s benches/serve-get.lua)"
wrk -t"$THREADS" -c64 -d"$DURATION" --latency -s benches/serve-get.lua "$URL"
echo "== 2. POST /v1/lookup, 1,000 hashes, 64 connections, $DURATION (wrk -t$THREADS -c64 -d$DURATION --latency -s benches/serve-lookup.lua)"
wrk -t"$THREADS" -c64 -d"$DURATION" --latency --timeout 10s -s benches/serve-lookup.lua "$URL"
echo "== RSS after the runs: $(rss)"
if [ "$SOAK" != 0 ]; then
    echo "== 3. soak: GET mix, 64 connections, ${SOAK} s"
    echo "== RSS before the soak: $(rss)"
    # RSS once a minute: growth that levels off is caches and allocator arenas filling; a leak keeps going.
    T0=$SECONDS
    ( while sleep 60; do echo "   soak +$((SECONDS - T0)) s: $(rss)"; done ) &
    SAMPLER=$!
    wrk -t"$THREADS" -c64 -d"${SOAK}s" --latency -s benches/serve-get.lua "$URL"
    kill $SAMPLER 2>/dev/null || true
    echo "== RSS after the soak: $(rss)"
fi
kill -TERM $PID
wait $PID && echo "== filerep serve exited 0 after SIGTERM"

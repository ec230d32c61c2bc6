#!/usr/bin/env bash
# scripts/serve-screenshot.sh - make docs/serve-card.png: the card page of `filerep serve` in headless Chromium.
#
#   scripts/serve-screenshot.sh [OUTPUT.png]
#
# Builds a demo store from the samples in tests/data/feeds (LOLDrivers, MalwareBazaar, xcyclopedia), starts
# `filerep serve` on 127.0.0.1 with a throw-away token, stores the `filerep check --json` report of a real
# file (vcruntime140.dll from the test corpus when it has been fetched, else the filerep binary itself) and a
# record about it, and takes a screenshot of /files/{sha256}. Needs chromium (apt-get install chromium).
#
# FLEET=N (e.g. 300): also send N simulated participants' sightings of that file (POST /v1/sightings, the
# body `filerep observe --json` writes; figures, OS versions, countries and manufacturers drawn at random
# with a fixed seed), so that the page shows the fleet prevalence sections (docs/serve-card-fleet.png).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=${1:-docs/serve-card.png}
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || { echo "serve-screenshot: chromium is not installed" >&2; exit 2; }

cargo build --quiet
BIN=$ROOT/target/debug/filerep
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
PID=
DB=$WORK/store.sqlite
FEEDS=tests/data/feeds
"$BIN" --db "$DB" db import --format loldrivers-json "$FEEDS/loldrivers/drivers.subset.json" >/dev/null
"$BIN" --db "$DB" db import --format malwarebazaar-csv "$FEEDS/malwarebazaar/recent_export_sample.csv" >/dev/null
"$BIN" --db "$DB" db import --format xcyclopedia "$FEEDS/xcyclopedia/xcyclopedia.subset.csv" >/dev/null

CORPUS=${FILEREP_CORPUS:-$HOME/.cache/filerep/corpus}
FILE=$CORPUS/vcruntime140.dll
[ -f "$FILE" ] || FILE=$BIN
# (checked from its directory: the page shows the path as given, and a home directory is nobody's business)
(cd "$(dirname "$FILE")" && "$BIN" --db "$DB" check --json "$(basename "$FILE")") > "$WORK/report.json" || true
SHA=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["reports"][0]["hashes"]["sha256"])' "$WORK/report.json")
NAME=$(basename "$FILE")

export FILEREP_SERVE_TOKEN=demo-token-$$
"$BIN" --db "$DB" serve --listen 127.0.0.1:0 --rate-limit 0 2> "$WORK/serve.log" &
PID=$!
for _ in $(seq 100); do
    grep -q "listening on" "$WORK/serve.log" 2>/dev/null && break
    sleep 0.1
done
URL=http://$(sed -n 's/.*listening on http:\/\/\([^ ]*\) .*/\1/p' "$WORK/serve.log")
AUTH="Authorization: Bearer $FILEREP_SERVE_TOKEN"
curl -fsS -H "$AUTH" -H 'Content-Type: application/json' --data-binary @"$WORK/report.json" "$URL/v1/reports" >/dev/null
python3 - "$SHA" "$NAME" > "$WORK/records.json" <<'PY'
import json, sys
sha, name = sys.argv[1], sys.argv[2]
print(json.dumps({"source": "allowlist", "records": [{"class": "known-good", "hash": sha, "meta": {
    "file_name": name, "original_name": name, "company": "Microsoft Corporation",
    "product": "Microsoft Visual Studio", "path": "C:\\Windows\\System32\\" + name}}]}))
PY
curl -fsS -H "$AUTH" -H 'Content-Type: application/json' --data-binary @"$WORK/records.json" "$URL/v1/records" >/dev/null

if [ -n "${FLEET:-}" ]; then
    python3 - "$SHA" "$NAME" "$FLEET" "$WORK/fleet" <<'PY'
import hashlib, json, os, random, sys
sha, name, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
os.makedirs(out, exist_ok=True)
rnd = random.Random(7)
oses = [("Windows", "10.0.19045", 40), ("Windows", "10.0.22631", 35), ("Windows", "10.0.26100", 20), ("Windows", "6.1.7601", 5)]
countries = [("US", 30), ("DE", 18), ("GB", 10), ("FR", 9), ("JP", 8), ("BR", 7), ("IN", 6), ("CA", 5), ("NL", 4), ("LI", 1)]
makers = [("Dell Inc.", 30), ("LENOVO", 27), ("HP", 22), ("ASUSTeK COMPUTER INC.", 9), (None, 12)]
pick = lambda xs: rnd.choices(xs, weights=[x[-1] for x in xs])[0]
for i in range(n):
    os_name, os_version, _ = pick(oses)
    country, _ = pick(countries)
    maker, _ = pick(makers)
    ws = int(rnd.gauss(9_500_000, 2_000_000))
    host = {"os_name": os_name, "os_version": os_version, "country": country, "platform": "64-bit"}
    if maker:
        host["manufacturer"] = maker
    doc = {"schema_version": 1, "participant": hashlib.md5(b"p%d" % i).hexdigest(), "host": host,
           "started_at": "2026-11-%02dT%02d:00:00Z" % (1 + i % 27, i % 24), "duration_secs": 300.0,
           "samples": 301, "hashed": 1, "cached": 0, "skipped": {"kernel_threads": 0, "permission_denied": 0,
           "vanished": 0, "unhashable": 0},
           "files": [{"sha256": sha, "sha1": hashlib.sha1(sha.encode()).hexdigest(),
                      "md5": hashlib.md5(sha.encode()).hexdigest(),
                      "path": "C:\\Windows\\System32\\" + name if rnd.random() < 0.93 else "C:\\Program Files\\App\\" + name,
                      "deleted": False, "cached": False, "processes": rnd.choice([1, 1, 1, 2]),
                      "parent": rnd.choice(["explorer.exe", "explorer.exe", "svchost.exe"]),
                      "command_line": None, "owner": rnd.choice(["SYSTEM", "SYSTEM", "LOCAL SERVICE"]),
                      "platform": "64-bit", "cpu_percent": round(abs(rnd.gauss(0.4, 0.3)), 2),
                      "private_bytes": {"mean": int(ws * 0.6), "max": int(ws * 0.7)},
                      "virtual_bytes": {"mean": ws * 9, "max": ws * 10},
                      "working_set": {"mean": ws, "max": int(ws * 1.2)}, "peak_working_set": int(ws * 1.4),
                      "threads": {"mean": float(rnd.randint(3, 12)), "max": 12},
                      "handles": {"mean": float(rnd.randint(80, 300)), "max": 300}}]}
    with open(os.path.join(out, "%05d.json" % i), "w") as f:
        json.dump(doc, f)
PY
    for f in "$WORK"/fleet/*.json; do
        curl -fsS -H "$AUTH" -H 'Content-Type: application/json' --data-binary @"$f" "$URL/v1/sightings" >/dev/null
    done
    OUT=${1:-docs/serve-card-fleet.png}
    # The fleet sections make the page longer.
    HEIGHT=${HEIGHT:-3000}
fi

"$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --disable-dev-shm-usage --hide-scrollbars \
    --user-data-dir="$WORK/profile" --window-size=1200,${HEIGHT:-2200} --screenshot="$ROOT/$OUT" "$URL/files/$SHA" 2>/dev/null
echo "serve-screenshot: $OUT ($NAME, $SHA)" >&2

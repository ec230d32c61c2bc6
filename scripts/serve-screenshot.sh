#!/usr/bin/env bash
# scripts/serve-screenshot.sh - make docs/serve-card.png: the card page of `filerep serve` in headless Chromium.
#
#   scripts/serve-screenshot.sh [OUTPUT.png]
#
# Builds a demo store from the samples in tests/data/feeds (LOLDrivers, MalwareBazaar, xcyclopedia), starts
# `filerep serve` on 127.0.0.1 with a throw-away token, stores the `filerep check --json` report of a real
# file (vcruntime140.dll from the test corpus when it has been fetched, else the filerep binary itself) and a
# record about it, and takes a screenshot of /files/{sha256}. Needs chromium (apt-get install chromium).
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
"$BIN" --db "$DB" serve --listen 127.0.0.1:0 2> "$WORK/serve.log" &
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

"$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --disable-dev-shm-usage --hide-scrollbars \
    --user-data-dir="$WORK/profile" --window-size=1200,${HEIGHT:-2200} --screenshot="$ROOT/$OUT" "$URL/files/$SHA" 2>/dev/null
echo "serve-screenshot: $OUT ($NAME, $SHA)" >&2

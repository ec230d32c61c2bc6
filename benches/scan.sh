#!/usr/bin/env bash
# benches/scan.sh - `filerep scan` of a large tree against hashdeep and rhash (the figures in
# docs/performance.md, "filerep scan of a tree").
#
#   bash benches/scan.sh [OUT_DIR]
#
# 1. Builds the release binary and makes the tree with benches/make-scan-tree.py in a temporary directory
#    (30,000 files, 10% of them executables copied from the corpus; TREE=DIR reuses a tree made earlier,
#    FILES=N and EXEC_SHARE=F change the mix of a new one, KEEP_TREE=1 keeps it in OUT_DIR/tree).
# 2. Makes a store: the sample feeds under tests/data/feeds (LOLDrivers JSON and hash list, MalwareBazaar,
#    xcyclopedia) plus a hash list that marks 100 of the tree's executables malicious, so the scan finds
#    something and the SARIF has results.
# 3. Checks every command once (exit status, the SARIF parses), warms the page cache, then runs hyperfine
#    (--warmup 1 --runs 5) on:
#      filerep --db DB scan --format sarif --output FILE TREE              (executables by magic bytes)
#      filerep --db DB scan --all-files --format sarif --output FILE TREE  (every file fully processed)
#      hashdeep -r -c md5,sha1,sha256 TREE                                 (output to /dev/null)
#      rhash -r --md5 --sha1 --sha256 TREE                                 (output to /dev/null)
# 4. Prints files/s (files in the tree / mean wall time), the ratios against hashdeep and rhash, and each
#    command's CPU use ((user + system) / wall, from hyperfine's JSON: 2.0 = both cores busy).
# 5. Runs the four commands again in alternating rounds (ROUNDS=5) and prints the ratios within each round:
#    on a shared machine whose speed drifts, those are the fairer comparison.
#
# filerep reads only the first bytes of a file that is not PE/ELF/Mach-O (that is how it selects
# executables); hashdeep and rhash read every byte of every file. The --all-files run is the like-for-like
# figure. The SARIF goes to a real file (not /dev/null), so writing it is part of the time.
#
# Needs hyperfine, rhash, hashdeep (Debian packages), python3 and the fetched corpus (scripts/fetch-corpus).
# Results (markdown and JSON from hyperfine, the tree's mix, the SARIF, a summary) go to OUT_DIR, default a
# new temporary directory; the tree is deleted at the end unless it came from TREE or KEEP_TREE=1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

die() { echo "benches/scan.sh: $*" >&2; exit 1; }
for tool in hyperfine rhash hashdeep python3 sha256sum; do
    command -v "$tool" >/dev/null || die "$tool is needed (apt-get install $tool)"
done

OUT=${1:-$(mktemp -d "${TMPDIR:-/tmp}/filerep-scan-bench.XXXXXX")}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/filerep-scan-work.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

# FILEREP_BIN=PATH times that binary instead of a fresh release build.
[ -n "${FILEREP_BIN:-}" ] || cargo build --release -q
BIN=${FILEREP_BIN:-$ROOT/target/release/filerep}
[ -x "$BIN" ] || die "no binary at $BIN"
"$BIN" scan --help >/dev/null 2>&1 || die "$BIN has no scan command"

# ---- the tree
TREE_GIVEN=${TREE:-}
if [ -n "$TREE_GIVEN" ]; then
    [ -d "$TREE" ] || die "TREE=$TREE is not a directory"
    TREE=$(cd "$TREE" && pwd)
    echo "reusing the tree $TREE" | tee "$OUT/tree.txt"
else
    TREE=$WORK/tree
    [ "${KEEP_TREE:-0}" = 1 ] && TREE=$OUT/tree
    python3 benches/make-scan-tree.py "$TREE" --files "${FILES:-30000}" --exec-share "${EXEC_SHARE:-0.10}" \
        | tee "$OUT/tree.txt"
fi
NFILES=$(find "$TREE" -type f | wc -l)
[ "$NFILES" -gt 0 ] || die "the tree $TREE has no files"

# ---- the store
DB=$WORK/store.sqlite
FEEDS=tests/data/feeds
imp() { "$BIN" --db "$DB" db import "$@" >>"$OUT/import.log" 2>&1 || { cat "$OUT/import.log" >&2; die "db import $* failed"; }; }
imp --format loldrivers-json "$FEEDS/loldrivers/drivers.subset.json"
imp --format hashlist "$FEEDS/loldrivers/samples_vulnerable.sha256" --source loldrivers-hashes --class vulnerable
imp --format malwarebazaar-csv "$FEEDS/malwarebazaar/recent_export_sample.csv"
imp --format xcyclopedia "$FEEDS/xcyclopedia/xcyclopedia.subset.csv"
# 100 of the tree's executables, marked malicious: the scan has findings to report.
python3 - "$TREE" >"$WORK/exec-sample.txt" <<'EOF'
import os, sys
magics = (b"MZ", b"\x7fELF", b"\xfe\xed\xfa\xce", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe")
found = []
for dp, dn, fn in sorted(os.walk(sys.argv[1])):
    dn.sort()
    for f in sorted(fn):
        p = os.path.join(dp, f)
        with open(p, "rb") as fh:
            if fh.read(4).startswith(magics):
                found.append(p)
for p in found[:: max(1, len(found) // 100)][:100]:
    print(p)
EOF
tr '\n' '\0' <"$WORK/exec-sample.txt" | xargs -0 sha256sum >"$WORK/bench-malicious.sha256"
imp --format hashlist "$WORK/bench-malicious.sha256" --source bench-malicious --class malicious
"$BIN" --db "$DB" db info >"$OUT/db-info.txt" 2>&1 || true

# Other processes on the machine skew every figure: say so before timing.
read -r load1 _ </proc/loadavg
if awk -v l="$load1" 'BEGIN { exit !(l > 0.5) }'; then
    echo "benches/scan.sh: warning: load average $load1 before the benchmark; other work will skew the figures" >&2
fi

# ---- the commands (the SARIF goes to real files in the work directory)
SCAN="$BIN --db $DB scan --format sarif --output $WORK/scan.sarif $TREE"
SCAN_ALL="$BIN --db $DB scan --all-files --format sarif --output $WORK/scan-all.sarif $TREE"
HASHDEEP="hashdeep -r -c md5,sha1,sha256 $TREE"
RHASH="rhash -r --md5 --sha1 --sha256 $TREE"

{
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
    echo "filerep: $("$BIN" --version), $(hashdeep -V 2>&1 | head -1 | sed 's/^/hashdeep /'), $(rhash --version), $(hyperfine --version)"
    echo "tree: $TREE, $NFILES files, $(du -sb "$TREE" | cut -f1) bytes"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/environment.txt"

# ---- one checked run of each: exit status, what filerep says, the SARIF parses
check_run() { # NAME EXPECTED_CODES COMMAND...
    local name=$1 ok=$2 code=0
    shift 2
    "$@" >"$OUT/$name.stdout" 2>"$OUT/$name.stderr" || code=$?
    case " $ok " in *" $code "*) ;; *) cat "$OUT/$name.stderr" >&2; die "$name exited with $code" ;; esac
    echo "$name: exit $code, $(wc -l <"$OUT/$name.stdout") lines on stdout; stderr: $(tail -n 1 "$OUT/$name.stderr")"
}
# shellcheck disable=SC2086 # the command strings are split on purpose (no path here has spaces)
{
    check_run filerep-scan "0 1" $SCAN
    check_run filerep-scan-all-files "0 1" $SCAN_ALL
    check_run hashdeep "0" $HASHDEEP
    check_run rhash "0" $RHASH
} | tee "$OUT/check-runs.txt"
cp "$WORK/scan.sarif" "$OUT/scan.sarif"
python3 - "$WORK/scan.sarif" "$WORK/scan-all.sarif" <<'EOF' | tee -a "$OUT/check-runs.txt"
import json, sys
for path in sys.argv[1:]:
    doc = json.load(open(path))
    runs = doc.get("runs", [])
    results = sum(len(r.get("results", [])) for r in runs)
    rules = sorted({res.get("ruleId") for r in runs for res in r.get("results", [])})
    print(f"{path.rsplit('/', 1)[-1]}: SARIF {doc.get('version')}, {results} results, rules {', '.join(map(str, rules)) or '-'}")
EOF
hashdeep_lines=$(grep -vc '^[%#]' "$OUT/hashdeep.stdout" || true)
rhash_lines=$(wc -l <"$OUT/rhash.stdout")
echo "hashdeep hashed $hashdeep_lines files, rhash $rhash_lines, the tree has $NFILES" | tee -a "$OUT/check-runs.txt"

# ---- warm the page cache, then time
find "$TREE" -type f -print0 | xargs -0 cat >/dev/null
hyperfine -N -i --warmup 1 --runs "${RUNS:-5}" \
    --export-markdown "$OUT/scan.md" --export-json "$OUT/scan.json" \
    -n "filerep scan (executables by magic)" "$SCAN" \
    -n "filerep scan --all-files" "$SCAN_ALL" \
    -n "hashdeep -r -c md5,sha1,sha256" "$HASHDEEP" \
    -n "rhash -r --md5 --sha1 --sha256" "$RHASH"

python3 - "$OUT/scan.json" "$NFILES" "$(nproc)" <<'EOF' | tee "$OUT/summary.md"
import json, sys
doc = json.load(open(sys.argv[1]))
nfiles, cores = int(sys.argv[2]), int(sys.argv[3])
rows = {}
for r in doc["results"]:
    codes = sorted(set(r.get("exit_codes") or []))
    rows[r["command"]] = r | {"codes": codes}
print(f"| command | mean [s] | files/s | CPU (user+sys)/wall | exit |")
print(f"| --- | ---: | ---: | ---: | ---: |")
for name, r in rows.items():
    cpu = (r["user"] + r["system"]) / r["mean"]
    print(f"| {name} | {r['mean']:.3f} ± {r['stddev']:.3f} | {nfiles / r['mean']:,.0f} | {cpu:.2f} of {cores} | {','.join(map(str, r['codes']))} |")
fr = rows["filerep scan (executables by magic)"]
fa = rows["filerep scan --all-files"]
hd = rows["hashdeep -r -c md5,sha1,sha256"]
rh = rows["rhash -r --md5 --sha1 --sha256"]
print()
for label, f in (("filerep scan", fr), ("filerep scan --all-files", fa)):
    vs_hd = hd["mean"] / f["mean"]
    vs_rh = rh["mean"] / f["mean"]
    cpu = (f["user"] + f["system"]) / f["mean"]
    print(f"{label}: {vs_hd:.2f}x hashdeep (goal 2x: {'met' if vs_hd >= 2 else 'NOT met'}), "
          f"{vs_rh:.2f}x rhash (goal 1.2x: {'met' if vs_rh >= 1.2 else 'NOT met'}), "
          f"CPU {cpu:.2f} of {cores} cores")
bad = [n for n, r in rows.items() if any(c not in (0, 1) for c in r["codes"]) or (not n.startswith("filerep") and r["codes"] != [0])]
if bad:
    print(f"unexpected exit status from: {', '.join(bad)}")
    sys.exit(1)
EOF
# hyperfine runs all runs of one command before the next, so a drift in the machine's speed (a shared VM)
# lands on one command more than another. The same four commands again, alternated round by round: the
# ratios within each round, and their medians, are the fairer comparison.
python3 - "$NFILES" "${ROUNDS:-5}" "$SCAN" "$SCAN_ALL" "$HASHDEEP" "$RHASH" <<'EOF' | tee "$OUT/alternating.md"
import resource, statistics, subprocess, sys, time
nfiles, rounds = int(sys.argv[1]), int(sys.argv[2])
names = ["filerep scan", "filerep scan --all-files", "hashdeep", "rhash"]
cmds = [c.split() for c in sys.argv[3:7]]
wall = {n: [] for n in names}
cpu = {n: [] for n in names}
for _ in range(rounds):
    for n, c in zip(names, cmds):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        dt = time.perf_counter() - t
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall[n].append(dt)
        cpu[n].append((r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) / dt)
print(f"{rounds} alternating rounds (each round runs the four commands once, in this order)")
print()
print("| command | median [s] | files/s | CPU (user+sys)/wall |")
print("| --- | ---: | ---: | ---: |")
for n in names:
    m = statistics.median(wall[n])
    print(f"| {n} | {m:.3f} | {nfiles / m:,.0f} | {statistics.median(cpu[n]):.2f} |")
print()
for f in names[:2]:
    for o in names[2:]:
        ratios = sorted(b / a for a, b in zip(wall[f], wall[o]))
        print(f"{f} vs {o}: median {statistics.median(ratios):.2f}x per round (range {ratios[0]:.2f}-{ratios[-1]:.2f})")
EOF
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/environment.txt"
echo "benches/scan.sh: results in $OUT (scan.md, scan.json, summary.md, alternating.md, tree.txt, check-runs.txt)"
if [ -z "$TREE_GIVEN" ] && [ "${KEEP_TREE:-0}" = 1 ]; then
    echo "benches/scan.sh: the tree is kept in $TREE (TREE=$TREE bash benches/scan.sh reuses it)"
fi

#!/usr/bin/env bash
# benches/compare.sh - whole-command benchmarks with hyperfine (the figures in docs/performance.md).
#
#   bash benches/compare.sh [OUT_DIR]
#
# 1. `filerep check` on a 1 GiB file (over the 256 MiB in-memory cap, so only MD5/SHA-1/SHA-256 and the
#    entropy are computed, streamed, on two threads) against `rhash --md5 --sha1 --sha256` (the same three
#    digests, one thread) and `sha256sum` (one digest).
# 2. `filerep check` on a tiny executable (every digest, the full analysis, the JSON) against `sha256sum` on
#    the same file: the cost of starting filerep.
# 3. `filerep check` on a 10 MB Go executable (the full analysis with TLSH and ssdeep) for scale.
#
# Needs hyperfine and rhash (Debian packages) and a release build (cargo build --release). The files are
# generated (random bytes) or taken from the fetched corpus; the page cache holds them for every run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${1:-target/bench}
mkdir -p "$OUT"
BIN=${FILEREP_BIN:-target/release/filerep}
CORPUS=${FILEREP_CORPUS:-$HOME/.cache/filerep/corpus}
for tool in hyperfine rhash sha256sum; do
    command -v "$tool" >/dev/null || { echo "benches/compare.sh: $tool is needed (apt-get install $tool)" >&2; exit 1; }
done
[ -x "$BIN" ] || cargo build --release

BIG=$OUT/random-1GiB.bin
[ -f "$BIG" ] && [ "$(stat -c %s "$BIG")" = 1073741824 ] || head -c 1073741824 /dev/urandom > "$BIG"
TINY=$CORPUS/setuptools-cli-32.exe
MID=$CORPUS/esbuild-win32-x64.exe
if [ ! -f "$TINY" ] || [ ! -f "$MID" ]; then
    echo "benches/compare.sh: the corpus is missing; run scripts/fetch-corpus first" >&2
    exit 1
fi

{
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "filerep: $("$BIN" --version), rhash: $(rhash --version), $(sha256sum --version | head -1)"
} | tee "$OUT/environment.txt"

hyperfine -N --warmup 2 --runs 10 --export-markdown "$OUT/big.md" \
    "$BIN check --json $BIG" \
    "rhash --md5 --sha1 --sha256 $BIG" \
    "sha256sum $BIG"

hyperfine -N --warmup 20 --runs 300 --export-markdown "$OUT/tiny.md" \
    "$BIN check --json $TINY" \
    "sha256sum $TINY"

hyperfine -N --warmup 3 --runs 20 --export-markdown "$OUT/mid.md" \
    "$BIN check --json $MID" \
    "sha256sum $MID"
echo "benches/compare.sh: markdown tables in $OUT/{big,tiny,mid}.md"

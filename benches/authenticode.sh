#!/usr/bin/env bash
# Authenticode verification time per signed file: filerep against `osslsigncode verify`.
#   bash benches/authenticode.sh [CORPUS_DIR]   (default ~/.cache/filerep/corpus; needs hyperfine, osslsigncode)
# The signed corpus files are verified by each tool with the same anchors (data/trust/anchors.pem, the
# bundled set, passed to osslsigncode as -CAfile and -TSA-CAfile). filerep runs the whole `check --json`
# pipeline (hashes, PE analysis, verification) with no store; osslsigncode only verifies. Files/s counts
# one process per file for osslsigncode (how it is used) and, for filerep, both one process per file and
# all files in one process (anchors loaded once, files checked in parallel).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
corpus=${1:-$HOME/.cache/filerep/corpus}
cargo build --release -q
bin=target/release/filerep
anchors=data/trust/anchors.pem
files=(vcruntime140.dll msvcp140.dll shimx64.efi.signed fbx64.efi.signed tampered-vcruntime140.dll)
paths=()
for f in "${files[@]}"; do paths+=("$corpus/$f"); done
ossl_loop="for f in ${paths[*]}; do osslsigncode verify -CAfile $anchors -TSA-CAfile $anchors -in \$f >/dev/null 2>&1 || true; done"
frep_loop="for f in ${paths[*]}; do $bin check --no-store --json \$f >/dev/null || true; done"
hyperfine --warmup 3 --runs 20 \
    -n "osslsigncode verify, one process per file (${#files[@]} files)" "$ossl_loop" \
    -n "filerep check, one process per file (${#files[@]} files)" "$frep_loop" \
    -n "filerep check, all files in one process" "$bin check --no-store --json ${paths[*]} >/dev/null || true"
for f in vcruntime140.dll shimx64.efi.signed; do
    hyperfine -N --warmup 3 --runs 30 \
        -n "osslsigncode verify $f" "osslsigncode verify -CAfile $anchors -TSA-CAfile $anchors -in $corpus/$f" \
        -n "filerep check $f" "$bin check --no-store --json $corpus/$f" -i
done

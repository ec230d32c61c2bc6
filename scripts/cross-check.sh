#!/usr/bin/env bash
# scripts/cross-check.sh - type-check the library and binary for macOS and Windows on this Linux machine.
#
#   scripts/cross-check.sh [TARGET...]      default: x86_64-apple-darwin x86_64-pc-windows-gnu
#
# Proves that the code behind `cfg(not(target_os = "linux"))` and `cfg(windows)` (the sysinfo backend of
# `filerep observe`, the host profile, file times) compiles for those platforms. It is a `cargo check`:
# nothing is linked or run. The C of build scripts (ring, the bundled SQLite) needs the target's SDK, which a
# Linux machine does not have, so a stand-in compiler writes an empty object for each C file (never linked
# by a check). Needs `rustup target add TARGET` (done here when missing). Not part of .ci/run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(x86_64-apple-darwin x86_64-pc-windows-gnu)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/stub-cc" <<'SH'
#!/bin/sh
# Pretend to be gcc for cc-rs's compiler detection, and write an empty object for every compilation.
case "$1" in -E) exec gcc "$@" ;; "-?"|--version|-v) exit 1 ;; esac
out=""; prev=""
for a in "$@"; do
  [ "$prev" = "-o" ] && out="$a"
  case "$a" in -Fo*) out="${a#-Fo}" ;; esac
  prev="$a"
done
[ -n "$out" ] && echo 'int filerep_cross_check_stub;' | gcc -x c -c -o "$out" -
exit 0
SH
chmod +x "$WORK/stub-cc"
for t in "${TARGETS[@]}"; do
    rustup target list --installed | grep -qx "$t" || rustup target add "$t"
    v=${t//-/_}
    echo "== cargo check --target $t" >&2
    env "CC_$v=$WORK/stub-cc" "AR_$v=ar" CARGO_TARGET_DIR="${CROSS_CHECK_TARGET_DIR:-$ROOT/target/cross-check}" \
        cargo check --target "$t" --lib --bins
done

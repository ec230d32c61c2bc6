#!/usr/bin/env python3
"""Build the file tree that benches/scan.sh scans: executables from the corpus plus non-executables.

    python3 benches/make-scan-tree.py DIR [--files N] [--exec-share F] [--corpus DIR] [--seed S]

DIR must not exist or be empty. N files (default 30,000) go into nested directories (16 x 16 leaf
directories, about N/256 files in each, executables and other files mixed):

* round(N * F) executables (default F = 0.10): every corpus file whose first bytes are a PE ("MZ"), ELF or
  Mach-O magic (the selection `filerep scan` makes), copied round-robin, so each corpus file appears
  equally often and the executables keep the corpus sizes (one 10 MB Go executable among mostly
  10-500 KB files). Each copy is made unique by appending 16 bytes (an overlay: the copy's number and
  random bytes), so that no two files share a digest. A signed PE therefore has trailing data after its
  signature, which filerep reports; the verification still runs in full.
* the rest non-executables of three kinds, sizes drawn from log-normal distributions (seeded, so the
  same arguments give the same tree): text (source, docs, .d files; median 3 KiB), JSON/TOML/YAML
  (median 1.5 KiB) and binary blobs (random bytes, like compressed assets; median 12 KiB, up to 8 MiB).
  None starts with an executable magic.

The corpus is $FILEREP_CORPUS, else ~/.cache/filerep/corpus (scripts/fetch-corpus fills it). For scale,
real trees on the development machine: a Rust target/release has about 4% executables by file count
(18% of bytes), a Python standard library 0.2% (8.5% of bytes), /usr/lib/x86_64-linux-gnu 41% (86%).

Prints the mix: counts, bytes and size percentiles per kind, and the executables' share of files and
bytes. Nothing is written outside DIR, and nothing hidden inside it (a walker that skips dot files and
one that does not see the same tree).
"""

import argparse
import json
import math
import os
import random
import sys

MAGICS = (
    b"MZ",  # PE (DOS header)
    b"\x7fELF",
    b"\xfe\xed\xfa\xce",  # Mach-O 32-bit, big-endian
    b"\xce\xfa\xed\xfe",  # Mach-O 32-bit, little-endian
    b"\xfe\xed\xfa\xcf",  # Mach-O 64-bit, big-endian
    b"\xcf\xfa\xed\xfe",  # Mach-O 64-bit, little-endian
    b"\xca\xfe\xba\xbe",  # Mach-O universal (fat)
)

# Non-executable kinds: (share of the non-executables, median bytes, log-normal sigma, max bytes, extensions)
KINDS = {
    "text": (0.55, 3 * 1024, 1.3, 2 * 1024 * 1024, ["txt", "md", "rs", "py", "c", "h", "html", "d", "js"]),
    "json": (0.20, 1536, 1.5, 4 * 1024 * 1024, ["json", "toml", "yml"]),
    "blob": (0.25, 12 * 1024, 1.8, 8 * 1024 * 1024, ["bin", "dat", "pak", "png", "gz"]),
}

WORDS = (
    "the of and to in is for on with as by at from this that be are it an or not which file build "
    "release artifact version module function return value error result path config test data index "
    "library binary signature hash digest section import export header table entry offset size"
).split()


def is_executable(head: bytes) -> bool:
    return any(head.startswith(m) for m in MAGICS)


def corpus_executables(corpus: str):
    out = []
    for name in sorted(os.listdir(corpus)):
        path = os.path.join(corpus, name)
        if name.startswith(".") or not os.path.isfile(path) or os.path.islink(path):
            continue
        with open(path, "rb") as f:
            data = f.read()
        if is_executable(data[:4]):
            out.append((name, data))
    return out


def lognormal_size(rng: random.Random, median: int, sigma: float, cap: int) -> int:
    return max(1, min(cap, int(rng.lognormvariate(math.log(median), sigma))))


def make_text_pool(rng: random.Random, size: int) -> bytes:
    lines = []
    total = 0
    while total < size:
        n = rng.randint(3, 14)
        line = " ".join(rng.choice(WORDS) for _ in range(n))
        if rng.random() < 0.3:
            line = "    " + line + ";"
        lines.append(line)
        total += len(line) + 1
    return ("\n".join(lines) + "\n").encode()


def text_file(rng: random.Random, pool: bytes, size: int) -> bytes:
    if size >= len(pool):
        return (pool * (size // len(pool) + 1))[:size]
    start = rng.randrange(0, len(pool) - size)
    return pool[start : start + size]


def json_file(rng: random.Random, size: int, ext: str) -> bytes:
    if ext == "json":
        items = []
        total = 2
        i = 0
        while total < size:
            item = {
                "id": i,
                "name": rng.choice(WORDS) + "-" + rng.choice(WORDS),
                "version": f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}",
                "sha256": "%064x" % rng.getrandbits(256),
                "enabled": rng.random() < 0.5,
                "tags": [rng.choice(WORDS) for _ in range(rng.randint(0, 4))],
            }
            s = json.dumps(item, indent=2)
            items.append(s)
            total += len(s) + 2
            i += 1
        return ("[\n" + ",\n".join(items) + "\n]\n").encode()
    lines = []
    total = 0
    sep = " = " if ext == "toml" else ": "
    while total < size:
        key = rng.choice(WORDS) + "_" + rng.choice(WORDS)
        val = f'"{rng.choice(WORDS)}-{rng.randint(0, 9999)}"'
        if rng.random() < 0.1:
            line = f"[{rng.choice(WORDS)}]" if ext == "toml" else f"{rng.choice(WORDS)}:"
        else:
            line = key + sep + val
        lines.append(line)
        total += len(line) + 1
    return ("\n".join(lines) + "\n").encode()


def blob_file(rng: random.Random, size: int) -> bytes:
    data = rng.randbytes(size)
    if is_executable(data[:4]):
        data = b"\x00" + data[1:]
    return data


def percentiles(sizes):
    s = sorted(sizes)
    if not s:
        return {}

    def p(q):
        return s[min(len(s) - 1, int(q * len(s)))]

    return {"min": s[0], "p10": p(0.10), "p50": p(0.50), "p90": p(0.90), "p99": p(0.99), "max": s[-1]}


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--files", type=int, default=30000, help="files in the tree (default 30000)")
    ap.add_argument("--exec-share", type=float, default=0.10, help="share of files that are executables (0.10)")
    ap.add_argument("--corpus", default=os.environ.get("FILEREP_CORPUS") or os.path.expanduser("~/.cache/filerep/corpus"))
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    if args.files < 1 or not 0.0 <= args.exec_share <= 1.0:
        ap.error("--files must be positive and --exec-share within 0..1")
    if os.path.exists(args.dir) and os.listdir(args.dir):
        print(f"make-scan-tree: {args.dir} is not empty", file=sys.stderr)
        return 1
    if not os.path.isdir(args.corpus):
        print(f"make-scan-tree: no corpus at {args.corpus} (run scripts/fetch-corpus)", file=sys.stderr)
        return 1
    execs = corpus_executables(args.corpus)
    n_exec = round(args.files * args.exec_share)
    if n_exec and not execs:
        print(f"make-scan-tree: no PE/ELF/Mach-O file in {args.corpus}", file=sys.stderr)
        return 1

    rng = random.Random(args.seed)
    pool = make_text_pool(rng, 1 << 20)
    # Which slot gets which kind, shuffled so every directory holds a mix.
    plan = ["exec"] * n_exec
    rest = args.files - n_exec
    for kind, (share, *_rest) in KINDS.items():
        plan += [kind] * round(rest * share)
    plan = plan[: args.files]
    while len(plan) < args.files:
        plan.append("text")
    rng.shuffle(plan)

    os.makedirs(args.dir, exist_ok=True)
    sizes = {k: [] for k in ["exec", *KINDS]}
    per_corpus_file = {}
    exec_i = 0
    for i, kind in enumerate(plan):
        leaf = os.path.join(args.dir, f"d{(i // 16) % 16:02d}", f"d{i % 16:02d}")
        if i < 256:
            os.makedirs(leaf, exist_ok=True)
        if kind == "exec":
            name, data = execs[exec_i % len(execs)]
            exec_i += 1
            overlay = i.to_bytes(8, "little") + rng.randbytes(8)
            content = data + overlay
            path = os.path.join(leaf, f"{i:06d}-{name}")
            per_corpus_file[name] = per_corpus_file.get(name, 0) + 1
        else:
            _share, median, sigma, cap, exts = KINDS[kind]
            ext = rng.choice(exts)
            size = lognormal_size(rng, median, sigma, cap)
            if kind == "text":
                content = text_file(rng, pool, size)
            elif kind == "json":
                content = json_file(rng, size, ext)
            else:
                content = blob_file(rng, size)
            path = os.path.join(leaf, f"{i:06d}-{rng.choice(WORDS)}.{ext}")
        with open(path, "wb") as f:
            f.write(content)
        sizes[kind].append(len(content))

    total_files = sum(len(v) for v in sizes.values())
    total_bytes = sum(sum(v) for v in sizes.values())
    exec_bytes = sum(sizes["exec"])
    print(f"tree: {os.path.abspath(args.dir)} (seed {args.seed})")
    print(f"files: {total_files}, bytes: {total_bytes} ({human(total_bytes)}), 256 leaf directories")
    print(
        f"executables: {len(sizes['exec'])} files ({100 * len(sizes['exec']) / total_files:.1f}% of files), "
        f"{exec_bytes} bytes ({100 * exec_bytes / max(total_bytes, 1):.1f}% of bytes); "
        f"{len(execs)} corpus files with a PE/ELF/Mach-O magic, copied round-robin, 16 bytes appended to each copy"
    )
    print("| kind | files | bytes | min | p10 | p50 | p90 | p99 | max |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind in ["exec", *KINDS, "all"]:
        v = sizes[kind] if kind != "all" else [x for k in sizes.values() for x in k]
        if not v:
            continue
        pc = percentiles(v)
        cols = " | ".join(human(pc[k]) for k in ("min", "p10", "p50", "p90", "p99", "max"))
        print(f"| {kind} | {len(v)} | {human(sum(v))} | {cols} |")
    if per_corpus_file:
        big = max(execs, key=lambda e: len(e[1]))
        print(
            f"largest executable: {big[0]} ({human(len(big[1]))}), {per_corpus_file.get(big[0], 0)} copies, "
            f"{100 * per_corpus_file.get(big[0], 0) * len(big[1]) / max(exec_bytes, 1):.0f}% of the executable bytes"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

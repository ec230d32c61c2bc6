#!/usr/bin/env python3
"""Write tests/data/corpus/loadconfig.tsv: the load configuration of every corpus PE as pefile reads it.

The conformance test `tests/cli/hardening.rs` compares filerep's `pe.load_config` with these values, so that
the /GS, SafeSEH and CFG checks rest on numbers an independent parser agrees with.

    pip install pefile==2024.8.26
    scripts/gen-loadconfig-tsv.py [CORPUS_DIR]      # default: $FILEREP_CORPUS or ~/.cache/filerep/corpus

Which files: every `tests/data/corpus/expected/<name>.json` whose file is a PE that pefile parsed (the
expected JSON has `pe.magic`). Columns (tab-separated, `-` for "no value"):

    name  security_cookie  se_handler_count  guard_flags  size

* `size`: the structure's own Size field (IMAGE_LOAD_CONFIG_DIRECTORY.Size); `-` when pefile found no load
  configuration (no directory 10, or pefile could not read the structure).
* A field is given only when Size covers it, as the Windows loader reads the structure (pefile trims its format
  to Size only when Size falls on a field boundary, and otherwise reads fields past Size).
* `security_cookie` and `guard_flags` in lower-case hex (`0x...`), `se_handler_count` in decimal; the SafeSEH
  fields are x86-only (PE32), so `se_handler_count` is `-` for PE32+.
"""

import json
import os
import sys
from pathlib import Path

import pefile

PEFILE_VERSION = "2024.8.26"

# (offset, width) of the fields, IMAGE_LOAD_CONFIG_DIRECTORY32 / IMAGE_LOAD_CONFIG_DIRECTORY64 (winnt.h).
FIELDS = {
    "PE32": {"SecurityCookie": (0x3C, 4), "SEHandlerCount": (0x44, 4), "GuardFlags": (0x58, 4)},
    "PE32+": {"SecurityCookie": (0x58, 8), "GuardFlags": (0x90, 4)},
}


def field(lc, magic, name, fmt):
    spec = FIELDS[magic].get(name)
    if spec is None:
        return "-"
    off, width = spec
    if off + width > lc.Size or not hasattr(lc, name):
        return "-"
    return fmt(getattr(lc, name))


def row(name, path, magic):
    pe = pefile.PE(str(path), fast_load=True)
    pe.parse_data_directories(directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_LOAD_CONFIG"]])
    lc = getattr(pe, "DIRECTORY_ENTRY_LOAD_CONFIG", None)
    if lc is None:
        return [name, "-", "-", "-", "-"]
    s = lc.struct
    return [
        name,
        field(s, magic, "SecurityCookie", lambda v: f"0x{v:x}"),
        field(s, magic, "SEHandlerCount", str),
        field(s, magic, "GuardFlags", lambda v: f"0x{v:08x}"),
        str(s.Size),
    ]


def main():
    if pefile.__version__ != PEFILE_VERSION:
        sys.exit(f"pefile {PEFILE_VERSION} expected, found {pefile.__version__}")
    repo = Path(__file__).resolve().parent.parent
    data = repo / "tests" / "data" / "corpus"
    corpus = Path(
        sys.argv[1] if len(sys.argv) > 1 else os.environ.get("FILEREP_CORPUS") or Path.home() / ".cache/filerep/corpus"
    )
    rows = []
    for exp in sorted((data / "expected").glob("*.json")):
        doc = json.loads(exp.read_text())
        magic = (doc.get("pe") or {}).get("magic")
        if magic not in FIELDS:
            continue
        path = corpus / doc["name"]
        if not path.is_file():
            sys.exit(f"{path} is missing: run scripts/fetch-corpus")
        rows.append(row(doc["name"], path, magic))
    out = data / "loadconfig.tsv"
    with out.open("w") as f:
        f.write(f"# Load configuration of each corpus PE as pefile {PEFILE_VERSION} reads it (Python {sys.version.split()[0]}),\n")
        f.write("# written by scripts/gen-loadconfig-tsv.py; fields past the structure's Size are '-'.\n")
        f.write("# name\tsecurity_cookie\tse_handler_count\tguard_flags\tsize\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    print(f"{out}: {len(rows)} files")


if __name__ == "__main__":
    main()

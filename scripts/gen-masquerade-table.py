#!/usr/bin/env python3
"""Write data/windows-binaries.tsv, the known-Windows-binary table that src/masquerade.rs embeds.

Usage: scripts/gen-masquerade-table.py AGGREGATE.csv [OUTPUT.tsv]

AGGREGATE.csv is `windows_binaries_aggregate.csv`, the per-name aggregate of the xcyclopedia inventory
(github.com/strontic/xcyclopedia, commit b515c22c57214cb11925a7044fca211e1f3e9537, MIT License,
Copyright (c) 2020 strontic): one row per lower-case file name seen under C:\\Windows\\, with `;`-joined
columns, most frequent value first. OUTPUT.tsv defaults to data/windows-binaries.tsv next to this script's
parent directory.

The output keeps only what the detector uses. It starts with `#` comment lines (provenance, column names),
then one line per file name, sorted by name, seven TAB-separated columns, lists `;`-joined (an empty field is an
empty list):

    name  expected_dirs  signer_cns  original_filenames  companies  description  samples

- name: lower-case file name (unique).
- expected_dirs: lower-case `%windir%\\...` directories, in the aggregate's order, de-duplicated. Driver-store
  package folders (`...\\driverstore\\filerepository\\<package>_<hash>\\...`) collapse to
  `%windir%\\system32\\driverstore\\filerepository\\*`, and .NET Framework version folders
  (`%windir%\\microsoft.net\\framework64\\v4.0.30319`) to `%windir%\\microsoft.net\\framework64\\*`: the
  package hash and the runtime version differ from machine to machine. A trailing `*` stands for one or more
  path components.
- signer_cns: signer subject CNs, de-duplicated case-insensitively. A CN that starts with a double quote but has
  no closing one (`"Even Balance`, `"McAfee`: the aggregate cut a quoted CN such as `"McAfee, LLC"` at its
  comma) is dropped rather than kept truncated; surrounding quotes of a complete CN are removed.
- original_filenames: VERSIONINFO OriginalFilename values, trimmed, surrounding quotes removed, lower-cased, a
  trailing `.mui` stripped (the Windows version API reads the localised MUI resource), de-duplicated.
- companies: CompanyName values, trimmed, de-duplicated (normalisation for comparison is the detector's job).
- description: the first (most frequent) FileDescription, or empty.
- samples: how many inventory rows the name had.

Deterministic: the same input gives a byte-identical output (UTF-8, LF line ends). Standard library only.
"""

import csv
import os
import re
import sys

COLUMNS = ["name", "expected_dirs", "signer_cns", "original_filenames", "companies", "description", "samples"]
DRIVER_STORE = re.compile(r"^(%windir%\\system32\\driverstore\\filerepository)\\.+$")
DOTNET_VERSION = re.compile(r"^(%windir%\\microsoft\.net\\framework(?:64)?)\\v[0-9][^\\]*$")


def split_list(field):
    """The non-empty, trimmed items of a `;`-joined aggregate field."""
    return [item.strip() for item in field.split(";") if item.strip()]


def dedup(items, key=lambda item: item):
    """Items in their first-seen order, without repeats (compared by `key`)."""
    seen = set()
    out = []
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out


def strip_quotes(value):
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1].strip()
    return value


def norm_dir(d):
    d = d.strip().replace("/", "\\").rstrip("\\").lower()
    d = DRIVER_STORE.sub(r"\1\\*", d)
    d = DOTNET_VERSION.sub(r"\1\\*", d)
    return d


def norm_original_name(name):
    name = strip_quotes(name).lower()
    if name.endswith(".mui"):
        name = name[: -len(".mui")].strip()
    return name


def signer_cns(field):
    out = []
    for cn in split_list(field):
        if cn.startswith('"') and not (len(cn) >= 2 and cn.endswith('"')):
            continue  # cut at a comma inside a quoted CN: not a value we can compare against
        cn = strip_quotes(cn)
        if cn:
            out.append(cn)
    return dedup(out, key=str.lower)


def clean(value):
    """A field value safe for the TSV: no TAB, CR or LF, and no `;` (the list separator)."""
    value = re.sub(r"[\t\r\n]+", " ", value).strip()
    if ";" in value:
        raise ValueError(f"';' inside a value: {value!r}")
    return value


def row_of(record):
    name = record["file_name"].strip().lower()
    if not name or "\\" in name or "/" in name:
        raise ValueError(f"bad file_name {record['file_name']!r}")
    dirs = dedup([norm_dir(d) for d in split_list(record["expected_dirs"])])
    signers = signer_cns(record["signer_cns"])
    originals = dedup([o for o in (norm_original_name(o) for o in split_list(record["original_filenames"])) if o])
    companies = dedup(split_list(record["companies"]))
    descriptions = split_list(record["descriptions"])
    samples = int(record["samples"])
    fields = [
        name,
        ";".join(clean(d) for d in dirs),
        ";".join(clean(s) for s in signers),
        ";".join(clean(o) for o in originals),
        ";".join(clean(c) for c in companies),
        clean(descriptions[0]) if descriptions else "",
        str(samples),
    ]
    return fields


def main(argv):
    if len(argv) not in (2, 3):
        sys.stderr.write(__doc__)
        return 2
    source = argv[1]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    output = argv[2] if len(argv) == 3 else os.path.join(root, "data", "windows-binaries.tsv")
    with open(source, newline="", encoding="utf-8") as src:
        rows = [row_of(record) for record in csv.DictReader(src)]
    rows.sort(key=lambda fields: fields[0])
    for a, b in zip(rows, rows[1:]):
        if a[0] == b[0]:
            raise ValueError(f"duplicate name {a[0]!r}")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w", newline="\n", encoding="utf-8") as out:
        out.write("# Known Windows binaries, derived from xcyclopedia (github.com/strontic/xcyclopedia,\n")
        out.write("# commit b515c22c57214cb11925a7044fca211e1f3e9537), MIT License, Copyright (c) 2020 strontic.\n")
        out.write("# See data/README.md. Generated by scripts/gen-masquerade-table.py; do not edit by hand.\n")
        out.write("# " + "\t".join(COLUMNS) + "\n")
        for fields in rows:
            out.write("\t".join(fields) + "\n")
    sys.stderr.write(f"{output}: {len(rows)} names\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

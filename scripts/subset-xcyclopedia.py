#!/usr/bin/env python3
"""Write a small, deterministic subset of the xcyclopedia CSV for the parser tests.

Usage: scripts/subset-xcyclopedia.py SOURCE.csv OUTPUT.csv

Keeps the header, the first 300 data rows, and every later row whose file_name (case-insensitively) is one of
smss.exe, svchost.exe, cmd.exe, lsass.exe or explorer.exe. Each source row is written at most once, in source
order, every field double-quoted, lines ending in LF (the layout of the source file). Standard library only.
"""

import csv
import sys

FIRST_ROWS = 300
NAMES = {"smss.exe", "svchost.exe", "cmd.exe", "lsass.exe", "explorer.exe"}


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    source, output = argv[1], argv[2]
    with open(source, newline="", encoding="utf-8") as src:
        reader = csv.reader(src)
        header = next(reader)
        name_col = header.index("file_name")
        kept = []
        for index, row in enumerate(reader):
            if index < FIRST_ROWS or row[name_col].strip().lower() in NAMES:
                kept.append(row)
    with open(output, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(kept)
    sys.stderr.write(f"{output}: header + {len(kept)} rows\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

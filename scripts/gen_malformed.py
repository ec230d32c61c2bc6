#!/usr/bin/env python3
"""Deterministically derive one malformed test input from a real corpus file.

Usage:  python3 scripts/gen_malformed.py CACHE_DIR OUTPUT_NAME RECIPE INPUT_NAME

Called by scripts/fetch-corpus for the manifest rows whose source is `gen`
(tests/data/corpus/manifest.tsv: selector = recipe, member = input file).
CACHE_DIR is the directory that `scripts/fetch-corpus` fills; INPUT_NAME is a file already in it
("-" for recipes that need no input); OUTPUT_NAME is written into CACHE_DIR.
Only the Python standard library is used, and no randomness: the same input gives
the same bytes every time (`scripts/fetch-corpus` checks the SHA256 recorded in manifest.tsv).

Recipes (offsets are computed from the input's own headers):
  empty                     zero-length file
  text                      a plain ASCII text file (to be given a .exe name)
  truncate:N                keep the first N bytes
  pe-truncate-mid-sectab    cut in the middle of the 2nd section header
  pe-truncate-half          keep the first half of the file (section data cut)
  pe-truncate-in-certtable  cut in the middle of the Authenticode certificate table
  pe-set-elfanew:V          overwrite e_lfanew (offset 0x3C) with V
  pe-nsections:V            overwrite FILE_HEADER.NumberOfSections with V
  pe-dir-oob:I              set DataDirectory[I].VirtualAddress to 0x7FFF0000
                            (0 = export, 1 = import), size unchanged
  pe-flip-code-byte         XOR 0x01 one byte 0x40 into the first executable
                            section's raw data (breaks the Authenticode digest)
  pe-set-checksum:V         overwrite OPTIONAL_HEADER.CheckSum with V (the
                            Authenticode digest excludes this field)
  elf-truncate-before-shdr  cut the file just before the section header table
  macho-truncate-mid-cmds   cut a thin Mach-O in the middle of its load commands
"""
import os
import struct
import sys

TEXT = (
    "This is a plain text file, not a Windows executable.\n"
    "It only carries an .exe name so that tools must look at the content,\n"
    "not at the extension, to decide what it is.\n"
) * 8


def u16(b, o):
    return struct.unpack_from("<H", b, o)[0]


def u32(b, o):
    return struct.unpack_from("<I", b, o)[0]


def pe_offsets(b):
    if b[:2] != b"MZ":
        raise SystemExit("input is not an MZ/PE file")
    lfanew = u32(b, 0x3C)
    if b[lfanew:lfanew + 4] != b"PE\0\0":
        raise SystemExit("input has no PE signature at e_lfanew")
    fh = lfanew + 4
    opt = fh + 20
    magic = u16(b, opt)
    dd = opt + (96 if magic == 0x10B else 112)
    sectab = opt + u16(b, fh + 16)
    nsec = u16(b, fh + 2)
    return dict(lfanew=lfanew, fh=fh, opt=opt, magic=magic, dd=dd, sectab=sectab, nsec=nsec)


def put32(b, off, val):
    b = bytearray(b)
    struct.pack_into("<I", b, off, val & 0xFFFFFFFF)
    return bytes(b)


def put16(b, off, val):
    b = bytearray(b)
    struct.pack_into("<H", b, off, val & 0xFFFF)
    return bytes(b)


def make(recipe, data):
    name, _, arg = recipe.partition(":")
    if name == "empty":
        return b""
    if name == "text":
        return TEXT.encode("ascii")
    if name == "truncate":
        return data[: int(arg, 0)]
    if name == "pe-truncate-mid-sectab":
        p = pe_offsets(data)
        return data[: p["sectab"] + 40 + 20]
    if name == "pe-truncate-half":
        return data[: len(data) // 2]
    if name == "pe-truncate-in-certtable":
        p = pe_offsets(data)
        off, size = struct.unpack_from("<II", data, p["dd"] + 4 * 8)
        if not off or not size:
            raise SystemExit("input has no certificate table")
        return data[: off + size // 2]
    if name == "pe-set-elfanew":
        return put32(data, 0x3C, int(arg, 0))
    if name == "pe-nsections":
        p = pe_offsets(data)
        return put16(data, p["fh"] + 2, int(arg, 0))
    if name == "pe-dir-oob":
        p = pe_offsets(data)
        return put32(data, p["dd"] + 8 * int(arg, 0), 0x7FFF0000)
    if name == "pe-flip-code-byte":
        p = pe_offsets(data)
        for i in range(p["nsec"]):
            s = p["sectab"] + 40 * i
            raw_size, raw_ptr = struct.unpack_from("<II", data, s + 16)
            chars = u32(data, s + 36)
            if chars & 0x20000000 and raw_size > 0x40:  # IMAGE_SCN_MEM_EXECUTE
                b = bytearray(data)
                b[raw_ptr + 0x40] ^= 0x01
                return bytes(b)
        raise SystemExit("no executable section")
    if name == "pe-set-checksum":
        p = pe_offsets(data)
        return put32(data, p["opt"] + 64, int(arg, 0))
    if name == "elf-truncate-before-shdr":
        if data[:4] != b"\x7fELF":
            raise SystemExit("input is not ELF")
        if data[4] == 1:  # ELFCLASS32
            shoff = u32(data, 0x20)
        else:
            shoff = struct.unpack_from("<Q", data, 0x28)[0]
        return data[:shoff]
    if name == "macho-truncate-mid-cmds":
        magic = u32(data, 0)
        if magic == 0xFEEDFACF:
            hdr = 32
        elif magic == 0xFEEDFACE:
            hdr = 28
        else:
            raise SystemExit("input is not a thin little-endian Mach-O")
        sizeofcmds = u32(data, 20)
        return data[: hdr + sizeofcmds // 2]
    raise SystemExit("unknown recipe: " + recipe)


def main(argv):
    if len(argv) != 5:
        raise SystemExit(__doc__)
    cache, out_name, recipe, in_name = argv[1:]
    data = b""
    if in_name != "-":
        with open(os.path.join(cache, in_name), "rb") as f:
            data = f.read()
    out = make(recipe, data)
    tmp = os.path.join(cache, out_name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(out)
    os.replace(tmp, os.path.join(cache, out_name))


if __name__ == "__main__":
    main(sys.argv)

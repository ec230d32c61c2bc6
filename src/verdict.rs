//! The verdict: a pure policy from the facts of a report to an ordered level and its reasons.
//!
//! `decide` reads a [`Report`] (its `verdict` field is ignored) and returns the [`Verdict`]. It does no I/O and
//! reads no configuration, so it is table-tested below. Reason ids are kebab-case and stable once released;
//! the store and signature issues add reasons of their own here.
//!
//! Policy (from the file alone, before the store exists):
//! * the level is the highest level any reason supports, and never lower than `unknown`: nothing in a file
//!   alone makes it known good;
//! * a file that hit an analysis limit or could not be parsed says so (`not-fully-analysed`), and is never
//!   reported as clean.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::report::{Format, PeInfo, Report, SignatureReport, SignatureStatus, SignerListing, StoreMatch};
use crate::store::{Class, DigestKind};

/// Ordered verdict level: `good` < `unknown` < `suspicious` < `vulnerable` < `malicious`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Known good.
    Good,
    /// Nothing known either way.
    #[default]
    Unknown,
    /// Traits common in malware or tampered files.
    Suspicious,
    /// A known vulnerable file (for example a driver on a block list).
    Vulnerable,
    /// Known malicious.
    Malicious,
}

impl Level {
    /// All levels, lowest first.
    pub const ALL: [Level; 5] = [Level::Good, Level::Unknown, Level::Suspicious, Level::Vulnerable, Level::Malicious];

    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Good => "good",
            Level::Unknown => "unknown",
            Level::Suspicious => "suspicious",
            Level::Vulnerable => "vulnerable",
            Level::Malicious => "malicious",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::ALL.into_iter().find(|l| l.as_str() == s).ok_or_else(|| {
            format!("unknown level '{s}' (expected one of good, unknown, suspicious, vulnerable, malicious)")
        })
    }
}

/// One reason behind a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Reason {
    /// Stable kebab-case id (`packed`, `writable-executable-section`, …).
    pub id: String,
    /// The level this reason supports on its own; `unknown` for a reason that is only informative.
    pub level: Level,
    /// One line for humans.
    pub message: String,
    /// Where the fact comes from: `file` (computed from the file's bytes) or a data source (`loldrivers`,
    /// `nsrl`, `xcyclopedia`, …).
    pub source: String,
    /// The data set version (or date) of the source, for a data source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
}

impl Reason {
    fn file(id: &str, level: Level, message: impl Into<String>) -> Reason {
        Reason { id: id.to_string(), level, message: message.into(), source: "file".to_string(), source_version: None }
    }

    fn data(id: &str, level: Level, message: impl Into<String>, source: &str, version: Option<&str>) -> Reason {
        Reason {
            id: id.to_string(),
            level,
            message: message.into(),
            source: source.to_string(),
            source_version: version.map(str::to_string),
        }
    }
}

/// What is known about a file besides its own bytes: store matches and masquerading findings.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// Every store record that matched one of the file's digests.
    pub matches: Vec<StoreMatch>,
    /// Masquerading findings (a system binary's name with another binary's identity).
    pub masquerade: Vec<MasqueradeFinding>,
    /// The file's verified signers that a blocklist in the store lists.
    pub signer_listings: Vec<SignerListing>,
    /// What the opt-in providers (`--provider`) answered.
    pub providers: Vec<crate::providers::ProviderEvidence>,
}

/// One masquerading finding (see `crate::masquerade`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasqueradeFinding {
    /// Stable id (`masquerade-original-name`, …).
    pub id: String,
    /// One line for humans.
    pub message: String,
}

/// The data set the masquerading table was derived from.
pub const MASQUERADE_SOURCE: &str = "xcyclopedia";
/// Its version (commit and date of the xcyclopedia snapshot).
pub const MASQUERADE_SOURCE_VERSION: &str = "b515c22 (2021-01-11)";

/// The verdict on one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Verdict {
    /// The overall level.
    pub level: Level,
    /// Every reason, the strongest first (stable order for equal levels).
    pub reasons: Vec<Reason>,
}

/// Entropy above which executable code is considered compressed or encrypted.
pub const HIGH_ENTROPY_CODE: f64 = 7.2;

/// Decide the verdict from a report's facts and the evidence about it (the report's own `verdict` and
/// `reputation` are ignored).
pub fn decide(report: &Report, evidence: &Evidence) -> Verdict {
    let mut reasons = Vec::new();
    evidence_reasons(evidence, &mut reasons);

    if let Some(err) = &report.error {
        reasons.push(Reason::file("analysis-error", Level::Unknown, format!("could not be analysed: {err}")));
    } else if !report.fully_analysed {
        let why = match report.limits.as_slice() {
            [] => "a limit was reached".to_string(),
            [one] => one.clone(),
            [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
        };
        reasons.push(Reason::file("not-fully-analysed", Level::Unknown, format!("not fully analysed: {why}")));
    }

    match report.format {
        Format::Empty => reasons.push(Reason::file("empty-file", Level::Unknown, "the file is empty")),
        Format::Unknown if report.error.is_none() => {
            let damaged_mz = report.anomalies.iter().find(|a| MZ_DAMAGE.contains(&a.id.as_str()));
            match damaged_mz {
                Some(a) => reasons.push(Reason::file(
                    "malformed-header",
                    Level::Suspicious,
                    format!("an MZ executable whose PE header cannot be reached: {}", a.message),
                )),
                None => reasons.push(Reason::file("not-an-executable", Level::Unknown, "not a PE, ELF or Mach-O file")),
            }
        }
        _ => {}
    }

    let mut malformed: Vec<&str> = Vec::new();
    for a in &report.anomalies {
        if MALFORMED_HEADER_ANOMALIES.contains(&a.id.as_str()) && !malformed.contains(&a.id.as_str()) {
            malformed.push(a.id.as_str());
        }
    }
    if !malformed.is_empty() {
        reasons.push(Reason::file(
            "malformed-header",
            Level::Suspicious,
            format!("the executable's structure is damaged or crafted: {}", malformed.join(", ")),
        ));
    }
    if let Some(pe) = &report.pe {
        pe_reasons(pe, report, &mut reasons);
    }
    if let Some(elf) = &report.elf {
        if !elf.nx && elf.machine != "unknown" && report.fully_analysed && elf.kind != "rel" {
            reasons.push(Reason::file(
                "executable-stack",
                Level::Unknown,
                "no non-executable stack (PT_GNU_STACK missing or executable)",
            ));
        }
    }

    // A signer a blocklist names (LOLDrivers lists drivers signed even by Microsoft's hardware publisher) makes
    // a valid signature no evidence of goodness: it stays on the card, informative.
    if !evidence.signer_listings.is_empty() {
        for r in reasons.iter_mut().filter(|r| r.id == "signature-valid") {
            r.level = Level::Unknown;
            r.message.push_str(" (but the signer is on a blocklist, below)");
        }
    }

    // Strongest first; the sort is stable, so equal levels keep the order they were found in.
    reasons.sort_by_key(|r| std::cmp::Reverse(r.level));
    let level = level_of(&reasons, report.fully_analysed && report.error.is_none());
    Verdict { level, reasons }
}

/// The verdict on a hash alone (`filerep lookup`): the store's evidence, no file facts.
pub fn decide_evidence(evidence: &Evidence) -> Verdict {
    let mut reasons = Vec::new();
    evidence_reasons(evidence, &mut reasons);
    reasons.sort_by_key(|r| std::cmp::Reverse(r.level));
    let level = level_of(&reasons, true);
    Verdict { level, reasons }
}

/// Reasons from the store and the masquerading table. Per source, the strongest class matched by a file hash or
/// an authentihash gives one reason; an imphash match alone is weak evidence (suspicious for a malicious
/// sample, informative otherwise); "known file" (NSRL, hashlookup) is informative, never good.
fn evidence_reasons(evidence: &Evidence, reasons: &mut Vec<Reason>) {
    use std::collections::BTreeMap;
    // source -> (strong matches, imphash-only matches)
    let mut by_source: BTreeMap<&str, (Vec<&StoreMatch>, Vec<&StoreMatch>)> = BTreeMap::new();
    for m in &evidence.matches {
        let e = by_source.entry(m.source.as_str()).or_default();
        if m.matched_by == DigestKind::Imphash { e.1.push(m) } else { e.0.push(m) }
    }
    for (source, (strong, weak)) in by_source {
        if let Some(best) = strong.iter().max_by_key(|m| m.class) {
            reasons.push(match_reason(best, source));
        } else if let Some(best) = weak.iter().max_by_key(|m| m.class) {
            let level = if best.class == Class::Malicious { Level::Suspicious } else { Level::Unknown };
            if best.class != Class::KnownGood && best.class != Class::KnownFile {
                reasons.push(Reason::data(
                    "imphash-match",
                    level,
                    format!(
                        "imports identical to a {} sample{} (imphash {}; weak evidence: unrelated files share import tables)",
                        best.class,
                        describe(&best.meta).map(|d| format!(" ({d})")).unwrap_or_default(),
                        best.digest
                    ),
                    source,
                    version_of(best).as_deref(),
                ));
            }
        }
    }
    for l in &evidence.signer_listings {
        let example = l.example.as_deref().map(|e| format!(", e.g. {e}")).unwrap_or_default();
        let plural = if l.records == 1 { "" } else { "s" };
        reasons.push(Reason::data(
            "signer-on-blocklist",
            Level::Unknown,
            format!(
                "the signer {} also signed {} {} file{plural} in {}{example}",
                l.signer, l.records, l.class, l.source
            ),
            &l.source,
            l.source_version.as_deref(),
        ));
    }
    for p in evidence.providers.iter().filter(|p| p.found) {
        // "VirusTotal: 64/70 engines, first seen …": the reason names its source itself.
        let message = p.summary.split_once(": ").map_or(p.summary.as_str(), |(_, m)| m).to_string();
        let (id, level) = match p.level {
            Some(Level::Malicious) => ("provider-malicious", Level::Malicious),
            Some(l) if l >= Level::Suspicious => ("provider-suspicious", l),
            // Known to the provider and flagged by nothing: informative, never good on its own (a provider knows
            // clean and unknown files alike).
            _ => ("provider-known", Level::Unknown),
        };
        reasons.push(Reason::data(id, level, message, &p.provider, None));
    }
    for f in &evidence.masquerade {
        reasons.push(Reason::data(
            &f.id,
            Level::Suspicious,
            f.message.clone(),
            MASQUERADE_SOURCE,
            Some(MASQUERADE_SOURCE_VERSION),
        ));
    }
}

/// The data set version of a match: its version, else its date, else when it was imported.
fn version_of(m: &StoreMatch) -> Option<String> {
    match (m.source_version.as_deref(), m.source_date.as_deref()) {
        (Some(v), _) | (None, Some(v)) => Some(v.to_string()),
        (None, None) => m.source_imported.get(..10).map(|day| format!("imported {day}")),
    }
}

/// "smss.exe, Windows Session Manager by Microsoft Corporation" from whatever the record says.
fn describe(meta: &crate::store::Meta) -> Option<String> {
    let name = meta.original_name.as_deref().or(meta.file_name.as_deref());
    let mut parts = Vec::new();
    if let Some(n) = name {
        parts.push(n.to_string());
    }
    match (meta.description.as_deref().or(meta.product.as_deref()), meta.company.as_deref()) {
        (Some(d), Some(c)) => parts.push(format!("{d} by {c}")),
        (Some(d), None) => parts.push(d.to_string()),
        (None, Some(c)) => parts.push(format!("by {c}")),
        (None, None) => {}
    }
    if let (None, Some(s)) = (meta.company.as_deref(), meta.signer.as_deref()) {
        parts.push(format!("signer {s}"));
    }
    if let Some(f) = meta.family.as_deref() {
        parts.push(f.to_string());
    }
    if let Some(p) = meta.package.as_deref() {
        parts.push(format!("in {p}"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn match_reason(m: &StoreMatch, source: &str) -> Reason {
    let what = describe(&m.meta).map(|d| format!(": {d}")).unwrap_or_default();
    let by = if m.matched_by.is_file_hash() {
        format!("file {}", m.matched_by)
    } else {
        format!("{} (the signed image, whatever the signature or overlay)", m.matched_by)
    };
    let version = version_of(m);
    let version = version.as_deref();
    match m.class {
        Class::Malicious => Reason::data(
            "known-malicious",
            Level::Malicious,
            format!("known malware{what}; matched by {by}"),
            source,
            version,
        ),
        Class::Vulnerable => Reason::data(
            "known-vulnerable",
            Level::Vulnerable,
            format!("a known vulnerable file (legitimate but abusable){what}; matched by {by}"),
            source,
            version,
        ),
        Class::KnownGood => {
            Reason::data("known-good", Level::Good, format!("known good{what}; matched by {by}"), source, version)
        }
        Class::KnownFile => {
            let how = if m.probabilistic {
                format!(
                    "probably in the known-files set (Bloom filter, false-positive rate {})",
                    m.false_positive_rate.map(|p| format!("{p:e}")).unwrap_or_else(|| "unknown".into())
                )
            } else {
                format!("known published software{what}")
            };
            Reason::data(
                "known-file",
                Level::Unknown,
                format!("{how}; matched by {by}; known is not the same as safe"),
                source,
                version,
            )
        }
    }
}

/// The overall level from the reasons: the worst one from `suspicious` up; else `good` when a reason
/// supports it and the file was fully analysed; else `unknown`. Informative reasons (level `unknown`) neither
/// make a file good nor stop a good reason from counting.
pub fn level_of(reasons: &[Reason], fully_analysed: bool) -> Level {
    let worst = reasons.iter().map(|r| r.level).max().unwrap_or(Level::Unknown);
    if worst >= Level::Suspicious {
        worst
    } else if fully_analysed && reasons.iter().any(|r| r.level == Level::Good) {
        Level::Good
    } else {
        Level::Unknown
    }
}

/// Anomalies of an MZ file that show a damaged PE rather than a DOS program.
const MZ_DAMAGE: &[&str] = &["dos-header-truncated", "e-lfanew-out-of-bounds"];

/// Anomaly ids that mean the headers contradict each other or the file (not just an odd value).
const MALFORMED_HEADER_ANOMALIES: &[&str] = &[
    "pe-header-invalid",
    "section-table-truncated",
    "section-table-corrupt",
    "import-table-bogus",
    "resource-directory-cycle",
    "resource-directory-too-deep",
    "section-table-null-entry",
    "too-many-sections",
    "optional-header-truncated",
    "section-beyond-eof",
    "import-directory-invalid",
    "export-directory-invalid",
    "resource-directory-invalid",
    "certificate-table-beyond-eof",
    "elf-header-truncated",
    "elf-header-invalid",
    "elf-program-headers-invalid",
    "elf-section-headers-invalid",
    "elf-section-beyond-eof",
    "macho-fat-header-truncated",
    "macho-slice-out-of-bounds",
    "macho-slices-overlap",
    "macho-header-truncated",
    "macho-load-commands-truncated",
    "macho-load-command-invalid",
];

fn pe_reasons(pe: &PeInfo, report: &Report, reasons: &mut Vec<Reason>) {
    if let Some(p) = &pe.packer {
        reasons.push(Reason::file(
            "packed",
            Level::Suspicious,
            if p.name == "unknown" {
                format!("looks packed: {}", p.evidence)
            } else {
                format!("packed with {} ({})", p.name, p.evidence)
            },
        ));
    }

    let wx: Vec<&str> = pe
        .sections
        .iter()
        .filter(|s| s.characteristics & 0x2000_0000 != 0 && s.characteristics & 0x8000_0000 != 0)
        // Kernel drivers legitimately carry a writable+executable PAGE section (pefile makes the same exception).
        .filter(|s| !(s.name == "PAGE" && pe.subsystem == "native"))
        .map(|s| s.name.as_str())
        .collect();
    if !wx.is_empty() {
        reasons.push(Reason::file(
            "writable-executable-section",
            Level::Suspicious,
            format!("writable and executable section{}: {}", if wx.len() > 1 { "s" } else { "" }, wx.join(", ")),
        ));
    }

    let hot: Vec<String> = pe
        .sections
        .iter()
        .filter(|s| s.characteristics & 0x2000_0000 != 0 && s.raw_size > 0 && s.entropy > HIGH_ENTROPY_CODE)
        .map(|s| format!("{} {:.2}", s.name, s.entropy))
        .collect();
    if !hot.is_empty() {
        reasons.push(Reason::file(
            "high-entropy-code",
            Level::Suspicious,
            format!(
                "executable section with compressed or encrypted content (entropy > {HIGH_ENTROPY_CODE}): {}",
                hot.join(", ")
            ),
        ));
    }

    let windows_program = matches!(pe.subsystem.as_str(), "windows-gui" | "windows-cui");
    if windows_program && pe.imports.is_empty() && pe.dotnet.is_none() && pe.entry_point != 0 && report.fully_analysed {
        reasons.push(Reason::file(
            "no-imports",
            Level::Suspicious,
            "a Windows program with an entry point but no imports (resolves its API at run time)",
        ));
    }

    if pe.entry_point != 0 && !pe.sections.is_empty() {
        let inside = pe.sections.iter().any(|s| {
            let size = s.virtual_size.max(s.raw_size);
            pe.entry_point >= s.virtual_address
                && u64::from(pe.entry_point) < u64::from(s.virtual_address) + u64::from(size)
        });
        if !inside && pe.entry_point >= pe.size_of_headers {
            reasons.push(Reason::file(
                "entry-point-outside-sections",
                Level::Suspicious,
                format!("the entry point 0x{:x} lies in no section", pe.entry_point),
            ));
        }
    }

    if pe.checksum.header != 0 && !pe.checksum.matches {
        reasons.push(Reason::file(
            "checksum-mismatch",
            Level::Unknown,
            format!(
                "header checksum 0x{:08x} differs from the computed 0x{:08x}",
                pe.checksum.header, pe.checksum.computed
            ),
        ));
    }

    if let Some(sig) = &report.signature {
        signature_reasons(sig, reasons);
    }
}

/// Source name of reasons from Authenticode verification.
pub const SIGNATURE_SOURCE: &str = "authenticode";

/// Reasons from Authenticode verification: a valid chain to a trusted anchor is good evidence naming the
/// publisher; a signature that does not match the file, a broken structure or an unreadable signature is
/// suspicious; an untrusted chain is said, not judged; no embedded signature says nothing (catalog-signed
/// system files have none).
fn signature_reasons(sig: &SignatureReport, reasons: &mut Vec<Reason>) {
    let anchors = sig.trust.anchors_version.as_deref();
    let (id, level) = match sig.status {
        SignatureStatus::Absent => return,
        SignatureStatus::Valid => ("signature-valid", Level::Good),
        SignatureStatus::Untrusted => ("signature-untrusted", Level::Unknown),
        SignatureStatus::Invalid => ("signature-invalid", Level::Suspicious),
        SignatureStatus::Tampered => ("signature-tampered", Level::Suspicious),
        SignatureStatus::Malformed => ("signature-malformed", Level::Suspicious),
    };
    let message = match sig.status {
        SignatureStatus::Valid => format!("valid signature: {}", sig.summary),
        SignatureStatus::Untrusted => format!("Authenticode signature not trusted: {}", sig.summary),
        SignatureStatus::Invalid => format!("Authenticode signature invalid: {}", sig.summary),
        SignatureStatus::Tampered => format!("Authenticode structure tampered with: {}", sig.summary),
        _ => format!("Authenticode signature malformed: {}", sig.summary),
    };
    reasons.push(Reason::data(id, level, message, SIGNATURE_SOURCE, anchors));
    if sig.status == SignatureStatus::Valid {
        if let Some(weak) = sig.signatures.iter().find(|c| c.digest_weak) {
            reasons.push(Reason::data(
                "signature-weak-digest",
                Level::Unknown,
                format!("a signature uses {}, which no longer resists collisions", weak.digest_algorithm),
                SIGNATURE_SOURCE,
                anchors,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Anomaly, Packer, Section};

    fn pe_report() -> Report {
        Report {
            path: "x.exe".into(),
            size: Some(4096),
            format: Format::Pe,
            fully_analysed: true,
            pe: Some(PeInfo {
                subsystem: "windows-cui".into(),
                entry_point: 0x1000,
                size_of_headers: 0x400,
                sections: vec![Section {
                    name: ".text".into(),
                    virtual_address: 0x1000,
                    virtual_size: 0x800,
                    raw_size: 0x800,
                    entropy: 6.1,
                    characteristics: 0x6000_0020,
                    ..Default::default()
                }],
                imports: vec![crate::report::Import { library: "KERNEL32.dll".into(), functions: vec![] }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn ids(v: &Verdict) -> Vec<&str> {
        v.reasons.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn levels_are_ordered() {
        assert!(Level::Good < Level::Unknown);
        assert!(Level::Unknown < Level::Suspicious);
        assert!(Level::Suspicious < Level::Vulnerable);
        assert!(Level::Vulnerable < Level::Malicious);
        assert_eq!("vulnerable".parse::<Level>().unwrap(), Level::Vulnerable);
        assert!("bad".parse::<Level>().is_err());
    }

    #[test]
    fn table() {
        type Edit = fn(&mut Report);
        let cases: &[(&str, Edit, Level, &[&str])] = &[
            ("plain program", |_| {}, Level::Unknown, &[]),
            (
                "empty",
                |r| {
                    r.format = Format::Empty;
                    r.pe = None;
                },
                Level::Unknown,
                &["empty-file"],
            ),
            (
                "text",
                |r| {
                    r.format = Format::Unknown;
                    r.pe = None;
                },
                Level::Unknown,
                &["not-an-executable"],
            ),
            (
                "mz, e_lfanew past the end",
                |r| {
                    r.format = Format::Unknown;
                    r.pe = None;
                    r.anomalies.push(Anomaly::new("e-lfanew-out-of-bounds", "x"));
                },
                Level::Suspicious,
                &["malformed-header"],
            ),
            (
                "a DOS program",
                |r| {
                    r.format = Format::Unknown;
                    r.pe = None;
                    r.anomalies.push(Anomaly::new("no-pe-signature", "x"));
                },
                Level::Unknown,
                &["not-an-executable"],
            ),
            (
                "read error",
                |r| {
                    r.error = Some("permission denied".into());
                    r.pe = None;
                    r.format = Format::Unknown;
                },
                Level::Unknown,
                &["analysis-error"],
            ),
            (
                "size cap",
                |r| {
                    r.fully_analysed = false;
                    r.limits = vec!["over the size cap".into()];
                    r.pe = None;
                },
                Level::Unknown,
                &["not-fully-analysed"],
            ),
            (
                "upx",
                |r| {
                    let pe = r.pe.as_mut().unwrap();
                    pe.packer = Some(Packer {
                        name: "UPX".into(),
                        method: "section-names".into(),
                        evidence: "UPX0, UPX1".into(),
                    });
                },
                Level::Suspicious,
                &["packed"],
            ),
            (
                "w+x",
                |r| r.pe.as_mut().unwrap().sections[0].characteristics |= 0x8000_0000,
                Level::Suspicious,
                &["writable-executable-section"],
            ),
            (
                "PAGE in a driver is fine",
                |r| {
                    let pe = r.pe.as_mut().unwrap();
                    pe.subsystem = "native".into();
                    pe.sections[0].name = "PAGE".into();
                    pe.sections[0].characteristics |= 0x8000_0000;
                },
                Level::Unknown,
                &[],
            ),
            (
                "entropy",
                |r| r.pe.as_mut().unwrap().sections[0].entropy = 7.9,
                Level::Suspicious,
                &["high-entropy-code"],
            ),
            ("no imports", |r| r.pe.as_mut().unwrap().imports.clear(), Level::Suspicious, &["no-imports"]),
            (
                "no imports in an EFI app is normal",
                |r| {
                    let pe = r.pe.as_mut().unwrap();
                    pe.imports.clear();
                    pe.subsystem = "efi-application".into();
                },
                Level::Unknown,
                &[],
            ),
            (
                "entry point nowhere",
                |r| r.pe.as_mut().unwrap().entry_point = 0x9000,
                Level::Suspicious,
                &["entry-point-outside-sections"],
            ),
            (
                "damaged section table",
                |r| r.anomalies.push(Anomaly::new("section-table-null-entry", "x")),
                Level::Suspicious,
                &["malformed-header"],
            ),
            (
                "checksum is only informative",
                |r| {
                    let pe = r.pe.as_mut().unwrap();
                    pe.checksum.header = 5;
                    pe.checksum.computed = 6;
                },
                Level::Unknown,
                &["checksum-mismatch"],
            ),
        ];
        for (name, edit, level, want) in cases {
            let mut r = pe_report();
            edit(&mut r);
            let v = decide(&r, &Evidence::default());
            assert_eq!(v.level, *level, "{name}: {v:?}");
            assert_eq!(ids(&v), *want, "{name}");
        }
    }

    /// A reason supporting `good` (from a data source, in later versions) makes the file good when nothing
    /// worse is found and the file was fully analysed; informative reasons do not get in its way.
    #[test]
    fn a_good_reason_counts_only_when_nothing_worse_is_found() {
        let r = |id: &str, level| Reason {
            id: id.into(),
            level,
            message: "x".into(),
            source: "test".into(),
            source_version: None,
        };
        let good = r("known-good", Level::Good);
        let info = r("checksum-mismatch", Level::Unknown);
        let bad = r("packed", Level::Suspicious);
        assert_eq!(level_of(&[good.clone(), info.clone()], true), Level::Good);
        assert_eq!(
            level_of(&[good.clone(), info.clone()], false),
            Level::Unknown,
            "never good when not fully analysed"
        );
        assert_eq!(level_of(&[good.clone(), bad], true), Level::Suspicious);
        assert_eq!(level_of(&[info], true), Level::Unknown);
        assert_eq!(level_of(&[], true), Level::Unknown);
        assert_eq!(level_of(&[good, r("vulnerable-driver", Level::Vulnerable)], true), Level::Vulnerable);
    }

    #[test]
    fn strongest_reason_first_and_never_good_from_the_file_alone() {
        let mut r = pe_report();
        r.pe.as_mut().unwrap().checksum = crate::report::Checksum { header: 1, computed: 2, matches: false };
        r.pe.as_mut().unwrap().sections[0].characteristics |= 0x8000_0000;
        let v = decide(&r, &Evidence::default());
        assert_eq!(ids(&v), ["writable-executable-section", "checksum-mismatch"]);
        assert_ne!(decide(&pe_report(), &Evidence::default()).level, Level::Good);
    }
}

//! CSV for `filerep scan --format csv`: one row per file, with the columns of Sysinternals
//! `sigcheck -c -h -a` that filerep has (so that sheets and scripts built on sigcheck keep working), then
//! filerep's own: format, verdict, findings and error.
//!
//! Rows are written as files come (nothing is kept), with a header line first. Quoting is the `csv` crate's
//! (RFC 4180: a field with a comma, quote, CR or LF is quoted, quotes doubled); records end in `\n`.
//! Text that comes from the file or its name (path, version strings, signer, error) and starts with `=`,
//! `+`, `-`, `@`, a tab or a CR gets a leading `'`, so that a spreadsheet opening the file does not run it
//! as a formula (CSV injection); digests and filerep's own values never need it.

use std::io::{self, Write};

use super::{BaselineState, ScanEntry};
use crate::report::{Format, Report, SignatureStatus};

/// The header row.
pub const HEADER: [&str; 20] = [
    "Path",
    "Verified",
    "Date",
    "Publisher",
    "Company",
    "Description",
    "Product",
    "Product Version",
    "File Version",
    "Machine Type",
    "MD5",
    "SHA1",
    "PESHA1",
    "PESHA256",
    "SHA256",
    "IMP",
    "Format",
    "Verdict",
    "Findings",
    "Error",
];

/// Writes the CSV of a scan, a file at a time: [`begin`](Self::begin), then [`entry`](Self::entry) for each
/// file.
#[derive(Debug)]
pub struct CsvWriter {
    _private: (),
}

impl CsvWriter {
    /// Write the header row.
    pub fn begin(out: &mut dyn Write) -> io::Result<CsvWriter> {
        write_record(out, &HEADER)?;
        Ok(CsvWriter { _private: () })
    }

    /// Write one file's row.
    pub fn entry(&mut self, out: &mut dyn Write, entry: &ScanEntry) -> io::Result<()> {
        write_record(out, &row(entry))
    }
}

fn write_record<S: AsRef<[u8]>>(out: &mut dyn Write, fields: &[S]) -> io::Result<()> {
    let mut w = ::csv::WriterBuilder::new().has_headers(false).from_writer(&mut *out);
    w.write_record(fields)?;
    w.flush()
}

/// The values of one row, in [`HEADER`] order.
pub fn row(entry: &ScanEntry) -> Vec<String> {
    let r = &entry.report;
    let vi = r.pe.as_ref().and_then(|pe| pe.version_info.as_ref());
    let vi_field = |get: fn(&crate::report::VersionInfo) -> &Option<String>| {
        text(vi.and_then(|v| get(v).as_deref()).unwrap_or(""))
    };
    let h = &r.hashes;
    let hash = |v: &Option<String>| v.clone().unwrap_or_default();
    let findings: Vec<&str> = entry
        .findings
        .iter()
        .filter(|f| f.baseline != Some(BaselineState::Unchanged))
        .map(|f| f.rule.as_str())
        .collect();
    vec![
        text(&r.path),
        verified(r),
        date(r),
        text(publisher(r).unwrap_or("")),
        vi_field(|v| &v.company_name),
        vi_field(|v| &v.file_description),
        vi_field(|v| &v.product_name),
        vi_field(|v| &v.product_version),
        vi_field(|v| &v.file_version),
        machine_type(r),
        hash(&h.md5),
        hash(&h.sha1),
        hash(&h.authentihash_sha1),
        hash(&h.authentihash_sha256),
        hash(&h.sha256),
        hash(&h.imphash),
        if r.error.is_some() { String::new() } else { r.format.as_str().to_string() },
        r.verdict.level.as_str().to_string(),
        findings.join(";"),
        text(r.error.as_deref().unwrap_or("")),
    ]
}

/// Neutralise a spreadsheet formula at the start of a value from the file (see the module documentation).
fn text(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_string() }
}

/// sigcheck's "Verified": `Signed` for a valid signature, `Unsigned` without one, else the status
/// (`Untrusted`, `Invalid`, `Tampered`, `Malformed`); empty for a file that could not be read.
fn verified(r: &Report) -> String {
    if r.error.is_some() {
        return String::new();
    }
    let status = r.signature.as_ref().map_or(SignatureStatus::Absent, |s| s.status);
    match status {
        SignatureStatus::Valid => "Signed",
        SignatureStatus::Absent => "Unsigned",
        SignatureStatus::Untrusted => "Untrusted",
        SignatureStatus::Invalid => "Invalid",
        SignatureStatus::Tampered => "Tampered",
        SignatureStatus::Malformed => "Malformed",
    }
    .to_string()
}

/// The first (outer) signature, when the file has one.
fn outer_signature(r: &Report) -> Option<&crate::report::SignatureCheck> {
    let sig = r.signature.as_ref().filter(|s| s.status != SignatureStatus::Absent)?;
    sig.signatures.iter().find(|c| !c.nested).or(sig.signatures.first())
}

/// sigcheck's "Date": the signing time (verified, else as stated) when the file is signed, else the PE link
/// timestamp (RFC 3339 UTC), else empty.
fn date(r: &Report) -> String {
    let signed = outer_signature(r)
        .and_then(|c| c.timestamp.clone().or_else(|| c.countersignature.as_ref().and_then(|t| t.time.clone())));
    signed.or_else(|| r.pe.as_ref().and_then(|pe| pe.timestamp_utc.clone())).unwrap_or_default()
}

/// sigcheck's "Publisher": the signer's common name.
fn publisher(r: &Report) -> Option<&str> {
    outer_signature(r)?.signer_subject.as_deref().map(crate::authenticode::short_name)
}

/// sigcheck's "Machine Type": `32-bit` or `64-bit` (both, for a universal Mach-O with both).
fn machine_type(r: &Report) -> String {
    match r.format {
        Format::Pe => match r.pe.as_ref().map(|pe| pe.magic.as_str()) {
            Some("PE32+") => "64-bit".into(),
            Some("PE32") => "32-bit".into(),
            _ => String::new(),
        },
        Format::Elf => match r.elf.as_ref().map(|e| e.class.as_str()) {
            Some("elf64") => "64-bit".into(),
            Some("elf32") => "32-bit".into(),
            _ => String::new(),
        },
        Format::Macho => {
            let mut bits: Vec<&str> = Vec::new();
            for s in r.macho.iter().flat_map(|m| &m.slices) {
                let b = match s.cpu.as_str() {
                    "x86_64" | "arm64" | "ppc64" => "64-bit",
                    c if c.starts_with("unknown") => continue,
                    _ => "32-bit",
                };
                if !bits.contains(&b) {
                    bits.push(b);
                }
            }
            bits.sort_unstable();
            bits.join("/")
        }
        Format::Empty | Format::Unknown => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Hashes, MachoInfo, MachoSlice, PeInfo, SignatureCheck, SignatureReport, TimestampCheck};
    use crate::scan::{Finding, FindingKind, Severity};
    use crate::verdict::{Level, Verdict};

    fn finding(rule: &str, baseline: Option<BaselineState>) -> Finding {
        Finding {
            rule: rule.into(),
            kind: FindingKind::Verdict,
            level: Some(Level::Suspicious),
            severity: Severity::Warning,
            message: "m".into(),
            source: "file".into(),
            fails: true,
            suppression: None,
            baseline,
        }
    }

    fn signed_pe() -> ScanEntry {
        let report = Report {
            path: "dist/a, \"b\"\nc.exe".into(),
            size: Some(10),
            format: Format::Pe,
            hashes: Hashes {
                md5: Some("m".repeat(32)),
                sha1: Some("s".repeat(40)),
                sha256: Some("f".repeat(64)),
                imphash: Some("i".repeat(32)),
                authentihash_sha1: Some("a".repeat(40)),
                authentihash_sha256: Some("b".repeat(64)),
                ..Default::default()
            },
            pe: Some(PeInfo {
                magic: "PE32+".into(),
                timestamp_utc: Some("2001-01-01T00:00:00Z".into()),
                version_info: Some(crate::report::VersionInfo {
                    company_name: Some("=HYPERLINK(\"http://x\")".into()),
                    file_description: Some("Tool; with \"quotes\"".into()),
                    product_name: Some("Prödukt".into()),
                    product_version: Some("1.2".into()),
                    file_version: Some("1.2.3.4".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            signature: Some(SignatureReport {
                status: SignatureStatus::Valid,
                signatures: vec![SignatureCheck {
                    signer_subject: Some("CN=Example Corp, O=Example, C=US".into()),
                    countersignature: Some(TimestampCheck {
                        time: Some("2024-05-06T07:08:09Z".into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            verdict: Verdict { level: Level::Suspicious, reasons: vec![] },
            ..Default::default()
        };
        ScanEntry {
            relative_path: "a.exe".into(),
            root: "dist".into(),
            report,
            findings: vec![
                finding("packed", None),
                finding("known-malicious", Some(BaselineState::Unchanged)),
                finding("pe-aslr", Some(BaselineState::New)),
            ],
        }
    }

    fn parse(bytes: &[u8]) -> Vec<Vec<String>> {
        ::csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(bytes)
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect()
    }

    #[test]
    fn rows_round_trip_through_a_csv_reader() {
        let mut out = Vec::new();
        let mut w = CsvWriter::begin(&mut out).unwrap();
        let e = signed_pe();
        w.entry(&mut out, &e).unwrap();
        let mut err = ScanEntry {
            relative_path: "x".into(),
            root: ".".into(),
            report: Report { path: "-x".into(), error: Some("permission denied".into()), ..Default::default() },
            findings: vec![],
        };
        w.entry(&mut out, &err).unwrap();
        err.report.path = "plain".into();
        err.report.error = None;
        err.report.format = Format::Elf;
        err.report.elf = Some(crate::report::ElfInfo { class: "elf32".into(), ..Default::default() });
        w.entry(&mut out, &err).unwrap();

        let rows = parse(&out);
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0], HEADER);
        let r = &rows[1];
        let col = |name: &str| r[HEADER.iter().position(|h| *h == name).unwrap()].as_str();
        assert_eq!(col("Path"), "dist/a, \"b\"\nc.exe", "quotes, commas and newlines survive");
        assert_eq!(col("Verified"), "Signed");
        assert_eq!(col("Date"), "2024-05-06T07:08:09Z", "the signing time before the link time");
        assert_eq!(col("Publisher"), "Example Corp");
        assert_eq!(col("Company"), "'=HYPERLINK(\"http://x\")", "no formula");
        assert_eq!(col("Description"), "Tool; with \"quotes\"");
        assert_eq!(col("Product"), "Prödukt");
        assert_eq!(col("Product Version"), "1.2");
        assert_eq!(col("File Version"), "1.2.3.4");
        assert_eq!(col("Machine Type"), "64-bit");
        assert_eq!(col("MD5"), "m".repeat(32));
        assert_eq!(col("SHA1"), "s".repeat(40));
        assert_eq!(col("PESHA1"), "a".repeat(40));
        assert_eq!(col("PESHA256"), "b".repeat(64));
        assert_eq!(col("SHA256"), "f".repeat(64));
        assert_eq!(col("IMP"), "i".repeat(32));
        assert_eq!(col("Format"), "pe");
        assert_eq!(col("Verdict"), "suspicious");
        assert_eq!(col("Findings"), "packed;pe-aslr", "unchanged findings are left out");
        assert_eq!(col("Error"), "");

        let e = &rows[2];
        assert_eq!(e[0], "'-x");
        assert_eq!(e[1], "", "no signature status for an unreadable file");
        assert_eq!(e[16], "");
        assert_eq!(e[17], "unknown");
        assert_eq!(e[19], "permission denied");

        let elf = &rows[3];
        assert_eq!((elf[1].as_str(), elf[9].as_str(), elf[16].as_str()), ("Unsigned", "32-bit", "elf"));

        // The raw text: quoted where needed, one record per line ending in \n.
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("Path,Verified,Date,Publisher,Company,Description,Product,Product Version,"));
        assert!(text.contains("\"dist/a, \"\"b\"\"\nc.exe\",Signed,"), "{text}");
        assert!(text.ends_with('\n') && !text.contains('\r'));
    }

    #[test]
    fn dates_and_machine_types() {
        let mut e = signed_pe();
        e.report.signature = None;
        assert_eq!(date(&e.report), "2001-01-01T00:00:00Z", "the link time for an unsigned file");
        assert_eq!(verified(&e.report), "Unsigned");
        assert_eq!(publisher(&e.report), None);
        e.report.pe.as_mut().unwrap().magic = "PE32".into();
        assert_eq!(machine_type(&e.report), "32-bit");

        let slice = |cpu: &str| MachoSlice { cpu: cpu.into(), ..Default::default() };
        let mut m = Report { format: Format::Macho, ..Default::default() };
        m.macho = Some(MachoInfo { fat: true, slices: vec![slice("x86_64"), slice("arm64")] });
        assert_eq!(machine_type(&m), "64-bit");
        m.macho = Some(MachoInfo { fat: true, slices: vec![slice("x86_64"), slice("i386"), slice("unknown-7")] });
        assert_eq!(machine_type(&m), "32-bit/64-bit");
        assert_eq!(machine_type(&Report::default()), "");
    }
}

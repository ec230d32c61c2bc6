//! CIRCL hashlookup records: files known to NSRL and to Linux/BSD/Android package repositories.
//!
//! This module owns the `hashlookup` format: JSON records as the hashlookup API and its exports give them,
//! one object a line (NDJSON). A file that is one pretty-printed object (or several in a row), or a JSON array
//! of records (a `/bulk` response), is read too, with bounded memory. A record is a known file
//! ([`Class::KnownFile`]: known, not vouched for), or malicious when it carries `KnownMalicious`, keyed by its
//! MD5, SHA-1 and SHA-256 (SHA-512 has no digest kind), with the file name, size, NSRL product and operating
//! system, and the package (its own, or its parents').

use std::io::BufRead;

use serde_json::{Map, Value};

use super::loldrivers::{MAX_JSON_ENTRY, skip_bom_and_space, stream_json_array};
use super::xcyclopedia::no_hash_reason;
use super::{Error, FeedInfo, Line, Lines, ParseOptions, Sink};
use crate::store::{Class, Digest, DigestKind, FeedRecord, Meta};

const FORMAT: &str = "hashlookup";

/// How many distinct parent packages a record's `package` names.
const MAX_PARENTS: usize = 5;

/// Parse hashlookup records. Line numbers given to [`Sink::skipped`] are the line a record starts on, or for a
/// JSON array the 1-based element index.
///
/// - NDJSON: each non-blank line is a JSON object (a line holding an array gives each of its elements). A line
///   that is exactly `{` starts a pretty-printed object, read up to a line starting with `}` at which it parses
///   (at most 16 MiB; a new `{` line first means the previous one was truncated).
/// - A file whose first non-space byte is `[` is streamed as one array, one element at a time.
///
/// Input that does not start with `{` or `[` is [`Error::WrongFormat`]; empty input is an empty feed. Records
/// without a valid MD5, SHA-1 or SHA-256 (error bodies, `/info`, `/parents` responses) are skipped; an
/// invalid digest is dropped silently while the record keeps a valid one.
pub fn parse(reader: &mut dyn BufRead, opts: &ParseOptions, sink: &mut dyn Sink) -> Result<FeedInfo, Error> {
    let (first, newlines) = skip_bom_and_space(reader)?;
    match first {
        None => {}
        Some(b'[') => {
            stream_json_array(reader, FORMAT, &mut |index, value| take(index, &value, opts, sink))?;
        }
        Some(b'{') => ndjson(reader, newlines, opts, sink)?,
        Some(_) => {
            return Err(Error::WrongFormat {
                format: FORMAT,
                why: "expected JSON records (an object a line, or an array)".into(),
            });
        }
    }
    Ok(FeedInfo::default())
}

/// Read NDJSON (and pretty-printed objects); `offset` is the number of lines already skipped.
fn ndjson(reader: &mut dyn BufRead, offset: u64, opts: &ParseOptions, sink: &mut dyn Sink) -> Result<(), Error> {
    let mut lines = Lines::new(reader);
    // A pretty-printed object being gathered: its first line and its text so far.
    let mut pending: Option<(u64, String)> = None;
    while let Some(line) = lines.next()? {
        let (no, text) = match line {
            Line::Text(no, text) => (no + offset, text),
            Line::Bad(no, why) => {
                if let Some((start, _)) = pending.take() {
                    sink.skipped(start, &format!("a JSON object spanning lines: line {}: {why}", no + offset))?;
                } else {
                    sink.skipped(no + offset, why)?;
                }
                continue;
            }
        };
        if let Some((start, buf)) = &mut pending {
            let start = *start;
            if text.trim_end() == "{" {
                // A new top-level object: the pending one never closed.
                sink.skipped(start, "the JSON object ends early (truncated?)")?;
                pending = Some((no, String::from("{")));
                continue;
            }
            if buf.len() + 1 + text.len() > MAX_JSON_ENTRY as usize {
                sink.skipped(start, &format!("a JSON object larger than {} MiB", MAX_JSON_ENTRY >> 20))?;
                pending = None;
                continue;
            }
            buf.push('\n');
            buf.push_str(text);
            if text.starts_with('}') {
                match serde_json::from_str::<Value>(buf) {
                    Ok(value) => {
                        pending = None;
                        take(start, &value, opts, sink)?;
                    }
                    Err(e) if e.is_eof() => {}
                    Err(e) => {
                        pending = None;
                        sink.skipped(start, &format!("invalid JSON: {e}"))?;
                    }
                }
            }
            continue;
        }
        let t = text.trim();
        if t.is_empty() {
            continue;
        }
        if t == "{" {
            pending = Some((no, String::from("{")));
            continue;
        }
        match serde_json::from_str::<Value>(t) {
            Ok(value) => take(no, &value, opts, sink)?,
            Err(e) => sink.skipped(no, &format!("invalid JSON: {e}"))?,
        }
    }
    if let Some((start, buf)) = pending {
        match serde_json::from_str::<Value>(&buf) {
            Ok(value) => take(start, &value, opts, sink)?,
            Err(_) => sink.skipped(start, "the JSON object ends early (truncated?)")?,
        }
    }
    Ok(())
}

/// Give one parsed value (an object, or an array of them) to the sink.
fn take(no: u64, value: &Value, opts: &ParseOptions, sink: &mut dyn Sink) -> Result<(), Error> {
    match value {
        Value::Array(items) => {
            for item in items {
                take_one(no, item, opts, sink)?;
            }
            Ok(())
        }
        v => take_one(no, v, opts, sink),
    }
}

fn take_one(no: u64, value: &Value, opts: &ParseOptions, sink: &mut dyn Sink) -> Result<(), Error> {
    match record(value, opts) {
        Ok(rec) => sink.record(rec),
        Err(why) => sink.skipped(no, &why),
    }
}

/// One hashlookup record; `Err` with the reason when it is not an object or has no valid hash.
fn record(value: &Value, opts: &ParseOptions) -> Result<FeedRecord, String> {
    let Value::Object(o) = value else { return Err("not a JSON object".into()) };
    let mut digests = Vec::with_capacity(3);
    let mut invalid = Vec::new();
    for (key, kind) in [("MD5", DigestKind::Md5), ("SHA-1", DigestKind::Sha1), ("SHA-256", DigestKind::Sha256)] {
        let Some(value) = text(o.get(key)) else { continue };
        match Digest::parse_hex(kind, &value) {
            Ok(d) => digests.push(d),
            Err(e) => invalid.push(format!("{kind}: {e}")),
        }
    }
    if digests.is_empty() {
        return Err(no_hash_reason(&invalid));
    }
    let known_malicious = match o.get("KnownMalicious") {
        Some(Value::Array(items)) => {
            let names: Vec<String> = items.iter().filter_map(|v| text(Some(v))).collect();
            (!names.is_empty()).then(|| names.join(", "))
        }
        v => text(v),
    };
    let class = opts.class.unwrap_or(if known_malicious.is_some() { Class::Malicious } else { Class::KnownFile });
    let name = text(o.get("FileName"));
    let (file_name, path) = match name {
        Some(n) if n.contains('/') => (n.trim_end_matches('/').rsplit('/').next().and_then(Meta::clean), Some(n)),
        n => (n, None),
    };
    let product_code = o.get("ProductCode").and_then(Value::as_object);
    let os = o.get("OpSystemCode").and_then(Value::as_object).and_then(|os| {
        let parts: Vec<String> =
            [os.get("OpSystemName"), os.get("OpSystemVersion")].into_iter().filter_map(|v| known(text(v))).collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    });
    let size = match o.get("FileSize") {
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(v) => v.as_u64(),
        None => None,
    };
    Ok(FeedRecord {
        class,
        digests,
        meta: Meta {
            file_name,
            path,
            size,
            product: product_code.and_then(|p| text(p.get("ProductName"))),
            product_version: product_code.and_then(|p| text(p.get("ProductVersion"))),
            os,
            package: package_of(o).or_else(|| parents_packages(o.get("parents"))),
            family: known_malicious,
            ..Meta::default()
        },
    })
}

/// `"PackageName PackageVersion"` of a record (the name alone when it has no version).
fn package_of(o: &Map<String, Value>) -> Option<String> {
    let name = text(o.get("PackageName"))?;
    Some(match text(o.get("PackageVersion")) {
        Some(version) => format!("{name} {version}"),
        None => name,
    })
}

/// Up to [`MAX_PARENTS`] distinct parent packages, joined with "; ".
fn parents_packages(parents: Option<&Value>) -> Option<String> {
    let mut names: Vec<String> = Vec::new();
    for parent in parents?.as_array()? {
        let Some(name) = parent.as_object().and_then(package_of) else { continue };
        if !names.contains(&name) {
            names.push(name);
            if names.len() == MAX_PARENTS {
                break;
            }
        }
    }
    (!names.is_empty()).then(|| names.join("; "))
}

/// NSRL's placeholders for an unknown operating system (`TBD`, `none`) are no value.
fn known(value: Option<String>) -> Option<String> {
    value.filter(|v| !["tbd", "none", "unknown"].iter().any(|p| v.eq_ignore_ascii_case(p)))
}

/// A JSON string (or number) as a cleaned string.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Meta::clean(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::feeds::MAX_LINE;
    use crate::store::feeds::hashlist::test_sink::{TestSink, run, run_file, wrong_format};

    fn file(name: &str) -> (FeedInfo, TestSink) {
        run_file(parse, &format!("circl_hashlookup/{name}"), &ParseOptions::default())
    }

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/data/feeds/circl_hashlookup/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    /// The sample files with records, and how many each holds (`python3 -c "import json; d=json.load(open(f));
    /// print(len(d) if isinstance(d, list) else 1)"`).
    const RECORDS: [(&str, usize); 6] = [
        ("bulk_md5_200.json", 3),
        ("bulk_sha1_200.json", 3),
        ("draft_sample_binary_with_parents.json", 1),
        ("lookup_md5_200_nsrl_legacy_format.json", 1),
        ("lookup_sha1_200_nsrl_legacy_format.json", 1),
        ("lookup_sha256_200_newer_fields_THIRDPARTY.json", 1),
    ];
    /// The sample files without a record (error bodies, `/info`, `/parents`, a bulk request).
    const NOT_RECORDS: [&str; 5] = [
        "bulk_md5_request.json",
        "error_400_bad_md5.json",
        "error_404_not_found_sha256.json",
        "info_200.json",
        "parents_200.json",
    ];

    #[test]
    fn every_sample_gives_its_records() {
        for (name, n) in RECORDS {
            let (info, sink) = file(name);
            assert_eq!(info, FeedInfo::default());
            assert_eq!(sink.records.len(), n, "{name}");
            assert!(sink.skipped.is_empty(), "{name}: {:?}", sink.skipped);
            assert!(sink.records.iter().all(|r| r.class == Class::KnownFile), "{name}");
        }
        for name in NOT_RECORDS {
            let (_, sink) = file(name);
            assert!(sink.records.is_empty(), "{name}");
            assert_eq!(sink.skipped, [(1, "no hash".to_string())], "{name}");
        }
    }

    #[test]
    fn a_record_with_parents_names_the_package() {
        let (_, sink) = file("draft_sample_binary_with_parents.json");
        let rec = &sink.records[0];
        let kinds: Vec<DigestKind> = rec.digests.iter().map(|d| d.kind()).collect();
        assert_eq!(kinds, [DigestKind::Md5, DigestKind::Sha1, DigestKind::Sha256]);
        assert_eq!(rec.digests[1].hex(), "5848386f77b4c60319c68b69c4594e29959381a2");
        assert_eq!(
            rec.meta,
            Meta {
                file_name: Some("ls".into()),
                path: Some("./bin/ls".into()),
                size: Some(110080),
                product: Some("Vinux".into()),
                product_version: Some("5.1".into()),
                package: Some("coreutils 8.21-1ubuntu5.4".into()),
                ..Meta::default()
            }
        );
    }

    #[test]
    fn nsrl_product_and_flat_codes() {
        let (_, sink) = file("lookup_md5_200_nsrl_legacy_format.json");
        let m = &sink.records[0].meta;
        assert_eq!(m.product.as_deref(), Some("Cumulative Update for Windows Server 2016 for x64 (KB4338817)"));
        assert_eq!(m.product_version.as_deref(), Some("1709"));
        assert_eq!(m.os, None, "OpSystemName TBD, version none");
        assert_eq!(m.path, None);
        assert_eq!(m.size, Some(2520));
        let (_, sink) = file("bulk_md5_200.json");
        assert_eq!(sink.records[0].meta.file_name.as_deref(), Some("network"));
        assert_eq!(sink.records[0].meta.product, None, "a flat ProductCode is only a code");
        assert_eq!(sink.records[0].digests.len(), 2);
        let (_, sink) = file("lookup_sha256_200_newer_fields_THIRDPARTY.json");
        assert_eq!(sink.records[0].meta.file_name.as_deref(), Some("requires.txt"));
        assert_eq!(sink.records[0].meta.size, Some(0));
    }

    #[test]
    fn the_samples_as_ndjson() {
        // Each record of the sample files, one compact object a line, CRLF, a BOM, a blank line, no final newline.
        let mut lines = Vec::new();
        for (name, _) in RECORDS {
            match serde_json::from_slice::<Value>(&read(name)).unwrap() {
                Value::Array(items) => lines.extend(items.iter().map(|v| v.to_string())),
                v => lines.push(v.to_string()),
            }
        }
        assert_eq!(lines.len(), 10);
        let input = format!("\u{feff}\r\n{}", lines.join("\r\n"));
        let (res, sink) = run(parse, input.as_bytes(), &ParseOptions::default());
        res.unwrap();
        assert!(sink.skipped.is_empty(), "{:?}", sink.skipped);
        assert_eq!(sink.records.len(), 10);
        // Pretty-printed objects back to back, one of them truncated.
        let draft = String::from_utf8(read("draft_sample_binary_with_parents.json")).unwrap();
        let legacy = String::from_utf8(read("lookup_sha1_200_nsrl_legacy_format.json")).unwrap();
        let cut = &legacy[..legacy.len() / 2];
        let mut input = String::new();
        let mut starts = Vec::new();
        for part in [draft.trim_end(), cut, legacy.trim_end(), lines[0].as_str(), cut] {
            starts.push(input.matches('\n').count() as u64 + 1);
            input.push_str(part);
            input.push('\n');
        }
        input.pop();
        let (res, sink) = run(parse, input.as_bytes(), &ParseOptions::default());
        res.unwrap();
        assert_eq!(sink.records.len(), 3, "{:?}", sink.skipped);
        let truncated = "the JSON object ends early (truncated?)".to_string();
        assert_eq!(sink.skipped, [(starts[1], truncated.clone()), (starts[4], truncated)]);
        assert_eq!(sink.records[0].meta.package.as_deref(), Some("coreutils 8.21-1ubuntu5.4"));
        assert_eq!(sink.records[1].meta.product.as_deref(), Some("BlackArch Linux"));
    }

    #[test]
    fn known_malicious_parents_and_class_override() {
        let line = r#"{"SHA-1": "da39a3ee5e6b4b0d3255bfef95601890afd80709", "KnownMalicious": "malshare.com",
            "FileName": "a/b/", "FileSize": 7,
            "parents": [{"PackageName": "p", "PackageVersion": "1"}, {"PackageName": "p", "PackageVersion": "1"},
                        {"PackageName": "q"}, {"SHA-1": "x"}, {"PackageName": "r", "PackageVersion": "2"},
                        {"PackageName": "s"}, {"PackageName": "t"}, {"PackageName": "u"}],
            "OpSystemCode": {"OpSystemName": "Linux", "OpSystemVersion": "5"}}"#
            .replace('\n', " ");
        let (res, sink) = run(parse, line.as_bytes(), &ParseOptions::default());
        res.unwrap();
        let rec = &sink.records[0];
        assert_eq!(rec.class, Class::Malicious);
        assert_eq!(rec.meta.family.as_deref(), Some("malshare.com"));
        assert_eq!(rec.meta.package.as_deref(), Some("p 1; q; r 2; s; t"));
        assert_eq!(rec.meta.os.as_deref(), Some("Linux 5"));
        assert_eq!(rec.meta.file_name.as_deref(), Some("b"));
        assert_eq!(rec.meta.size, Some(7));
        let own = line.replace("\"FileSize\"", "\"PackageName\": \"own\", \"PackageVersion\": \"9\", \"FileSize\"");
        let opts = ParseOptions { class: Some(Class::KnownGood), ..ParseOptions::default() };
        let (_, sink) = run(parse, own.as_bytes(), &opts);
        assert_eq!(sink.records[0].meta.package.as_deref(), Some("own 9"));
        assert_eq!(sink.records[0].class, Class::KnownGood);
    }

    #[test]
    fn bad_lines_are_skipped() {
        let good = r#"{"MD5": "d41d8cd98f00b204e9800998ecf8427e", "SHA-1": "zz"}"#;
        let mut input = format!("{good}\n{{\"MD5\": \"d41d8\n[1, {good}]\n{{\"MD5\": \"zz\"}}\n\"just a string\"\n");
        input.push_str(&format!("{{\"FileName\": \"{}\"}}\n", "x".repeat(MAX_LINE)));
        input.push_str(good);
        let (res, sink) = run(parse, input.as_bytes(), &ParseOptions::default());
        res.unwrap();
        assert_eq!(sink.records.len(), 3, "the invalid SHA-1 is dropped, the MD5 kept");
        assert!(sink.records.iter().all(|r| r.digests.len() == 1));
        let lines: Vec<u64> = sink.skipped.iter().map(|s| s.0).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6], "{:?}", sink.skipped);
        assert!(sink.skipped[0].1.starts_with("invalid JSON"));
        assert_eq!(sink.skipped[1].1, "not a JSON object");
        assert!(sink.skipped[2].1.starts_with("no valid hash (md5"));
        assert_eq!(sink.skipped[3].1, "not a JSON object");
        assert!(sink.skipped[4].1.contains("longer than"));
    }

    #[test]
    fn arrays_are_streamed_and_broken_arrays_refused() {
        let input = b"\n\n [{\"MD5\": \"d41d8cd98f00b204e9800998ecf8427e\"}, 3, {\"SHA-256\": \"x\"}]";
        let (res, sink) = run(parse, input, &ParseOptions::default());
        res.unwrap();
        assert_eq!(sink.records.len(), 1);
        assert_eq!(sink.skipped.iter().map(|s| s.0).collect::<Vec<_>>(), [2, 3], "element indexes");
        let why = wrong_format(parse, b"[{\"MD5\": \"d41d8cd98f00b204e9800998ecf8427e\"}, {", &ParseOptions::default());
        assert!(why.contains("ends early"), "{why}");
    }

    #[test]
    fn empty_input_and_the_wrong_format() {
        let (res, sink) = run(parse, b"", &ParseOptions::default());
        assert_eq!(res.unwrap(), FeedInfo::default());
        assert!(sink.records.is_empty() && sink.skipped.is_empty());
        let (res, _) = run(parse, b"\xEF\xBB\xBF \r\n", &ParseOptions::default());
        res.unwrap();
        let csv =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/feeds/loldrivers/drivers.csv")).unwrap();
        assert!(wrong_format(parse, &csv, &ParseOptions::default()).contains("expected JSON records"));
        assert!(
            wrong_format(parse, b"d41d8cd98f00b204e9800998ecf8427e\n", &ParseOptions::default())
                .contains("expected JSON records")
        );
    }

    #[test]
    fn line_numbers_count_the_skipped_leading_blank_lines() {
        let (res, sink) = run(parse, b"\n\r\n\n{\"x\": 1}\n", &ParseOptions::default());
        res.unwrap();
        assert_eq!(sink.skipped, [(4, "no hash".to_string())]);
    }
}

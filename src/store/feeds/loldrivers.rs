//! LOLDrivers: known vulnerable and malicious Windows drivers, from `drivers.json` or `drivers.csv`.
//!
//! This module owns the two LOLDrivers formats. [`parse_json`] streams the `drivers.json` array one driver
//! entry at a time and gives one record per `KnownVulnerableSamples` element, with its file hashes,
//! Authenticode hashes, imphash and VERSIONINFO, the driver's CVEs as the family and its page as the
//! reference. [`parse_csv`] reads the flat `drivers.csv`, whose per-sample columns do not line up, so it gives
//! one record per hash value. It also owns the bounded-memory JSON array streamer the hashlookup parser
//! shares (`stream_json_array`).

use std::cell::Cell;
use std::fmt;
use std::io::{self, BufRead, Read};

use serde::de::{self, Deserializer as _, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::xcyclopedia::{CsvRecords, no_hash_reason};
use super::{Error, FeedInfo, MAX_LINE, ParseOptions, Sink};
use crate::store::{Class, Digest, DigestKind, FeedRecord, Meta};

const JSON_FORMAT: &str = "loldrivers-json";
const CSV_FORMAT: &str = "loldrivers-csv";

/// Largest JSON array element (one driver entry, one hashlookup record) a parser holds in memory, in bytes of
/// JSON text. The biggest LOLDrivers entry is a few hundred KB.
pub(crate) const MAX_JSON_ENTRY: u64 = 16 * MAX_LINE as u64;

/// Parse LOLDrivers `drivers.json`: one record per `KnownVulnerableSamples` element.
///
/// The class is [`Class::Malicious`] for `Category: "malicious"` and [`Class::Vulnerable`] otherwise (or
/// `opts.class`). Line numbers given to [`Sink::skipped`] are 1-based sample ordinals over the whole file (a
/// driver entry that is not an object or has no samples takes one ordinal). A sample needs a valid file hash
/// or Authenticode hash; invalid digests are dropped silently while one remains. The date in the [`FeedInfo`]
/// is the newest `Created` date of all entries.
pub fn parse_json(reader: &mut dyn BufRead, opts: &ParseOptions, sink: &mut dyn Sink) -> Result<FeedInfo, Error> {
    let mut ordinal = 0u64;
    let mut newest: Option<String> = None;
    stream_json_array(reader, JSON_FORMAT, &mut |index, entry| {
        driver_records(index, entry, opts, sink, &mut ordinal, &mut newest)
    })?;
    Ok(FeedInfo { version: None, date: newest })
}

/// The records of one driver entry (the `index`-th, 1-based).
fn driver_records(
    index: u64,
    entry: Value,
    opts: &ParseOptions,
    sink: &mut dyn Sink,
    ordinal: &mut u64,
    newest: &mut Option<String>,
) -> Result<(), Error> {
    let Value::Object(driver) = entry else {
        *ordinal += 1;
        return sink.skipped(*ordinal, &format!("driver entry {index} is not an object"));
    };
    let id = text(driver.get("Id"));
    let created = text(driver.get("Created"));
    if let Some(day) = created.as_deref().and_then(ymd) {
        if newest.as_deref().is_none_or(|n| n < day) {
            *newest = Some(day.to_string());
        }
    }
    let class = opts.class.unwrap_or_else(|| class_of(text(driver.get("Category")).as_deref()));
    let family = cves(driver.get("CVE")).or_else(|| cves(driver.get("CVEs")));
    let reference = id.as_deref().map(|id| format!("https://www.loldrivers.io/drivers/{id}/"));
    let label = id.as_deref().unwrap_or("without Id");
    let samples: Vec<&Value> = match driver.get("KnownVulnerableSamples") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => Vec::new(),
    };
    if samples.is_empty() {
        *ordinal += 1;
        return sink.skipped(*ordinal, &format!("driver entry {index} ({label}) has no KnownVulnerableSamples"));
    }
    for sample in samples {
        *ordinal += 1;
        let Value::Object(sample) = sample else {
            sink.skipped(*ordinal, &format!("a sample of driver {label} is not an object"))?;
            continue;
        };
        let digests = match sample_digests(sample) {
            Ok(d) => d,
            Err(why) => {
                sink.skipped(*ordinal, &format!("{why} (driver {label})"))?;
                continue;
            }
        };
        let meta = Meta {
            file_name: text(sample.get("Filename")),
            original_name: text(sample.get("OriginalFilename")),
            description: text(sample.get("Description")).or_else(|| text(sample.get("FileDescription"))),
            product: text(sample.get("Product")).or_else(|| text(sample.get("ProductName"))),
            company: text(sample.get("Company")).or_else(|| text(sample.get("CompanyName"))),
            file_version: text(sample.get("FileVersion")),
            product_version: text(sample.get("ProductVersion")),
            signer: signer(sample),
            family: family.clone(),
            first_seen: created.clone(),
            reference: reference.clone(),
            size: sample.get("Filesize").and_then(Value::as_u64),
            ..Meta::default()
        };
        sink.record(FeedRecord { class, digests, meta })?;
    }
    Ok(())
}

/// A sample's digests: file hashes, Authenticode SHA-1/SHA-256 (nested or legacy flat spelling) and imphash.
/// `Err` with the reason when no file or Authenticode hash is valid.
fn sample_digests(sample: &Map<String, Value>) -> Result<Vec<Digest>, String> {
    let nested = sample.get("Authentihash").and_then(Value::as_object);
    let candidates = [
        (sample.get("MD5"), DigestKind::Md5),
        (sample.get("SHA1"), DigestKind::Sha1),
        (sample.get("SHA256"), DigestKind::Sha256),
        (nested.and_then(|a| a.get("SHA1")), DigestKind::AuthentihashSha1),
        (nested.and_then(|a| a.get("SHA256")), DigestKind::AuthentihashSha256),
        (sample.get("AuthentihashSHA1"), DigestKind::AuthentihashSha1),
        (sample.get("AuthentihashSHA256"), DigestKind::AuthentihashSha256),
        (sample.get("Imphash"), DigestKind::Imphash),
    ];
    let mut digests: Vec<Digest> = Vec::with_capacity(candidates.len());
    let mut invalid = Vec::new();
    for (value, kind) in candidates {
        let Some(value) = text(value) else { continue };
        match Digest::parse_hex(kind, &value) {
            Ok(d) if !digests.contains(&d) => digests.push(d),
            Ok(_) => {}
            Err(e) => invalid.push(format!("{kind}: {e}")),
        }
    }
    if digests.iter().any(|d| d.kind() != DigestKind::Imphash) { Ok(digests) } else { Err(no_hash_reason(&invalid)) }
}

/// The signer: the leaf of the `Signature` chain when it is a list, else `Publisher`. A bare `Signature`
/// string is in practice sigcheck's verification status ("The digital signature of the object did not
/// verify."), so it is used only when there is no `Publisher` and it does not read like such a message.
fn signer(sample: &Map<String, Value>) -> Option<String> {
    match sample.get("Signature") {
        Some(Value::Array(chain)) => {
            if let Some(leaf) = chain.iter().find_map(|v| text(Some(v))) {
                return Some(leaf);
            }
        }
        Some(Value::String(s)) => {
            let publisher = text(sample.get("Publisher"));
            let lower = s.to_ascii_lowercase();
            let status = ["signature", "certificate", "verif"].iter().any(|w| lower.contains(w));
            if publisher.is_none() && !status {
                return Meta::clean(s);
            }
            return publisher;
        }
        _ => {}
    }
    text(sample.get("Publisher"))
}

/// The CVE list (`["CVE-…", …]`, a bare string, `[""]`) joined with ", ", or `None` when empty.
fn cves(value: Option<&Value>) -> Option<String> {
    let list: Vec<String> = match value? {
        Value::Array(items) => items.iter().filter_map(|v| text(Some(v))).collect(),
        v => text(Some(v)).into_iter().collect(),
    };
    if list.is_empty() { None } else { Some(list.join(", ")) }
}

fn class_of(category: Option<&str>) -> Class {
    match category {
        Some(c) if c.trim().eq_ignore_ascii_case("malicious") => Class::Malicious,
        _ => Class::Vulnerable,
    }
}

/// A JSON scalar as a cleaned string (numbers written out; objects, arrays, booleans and null are `None`).
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Meta::clean(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The `YYYY-MM-DD` day a date string starts with.
fn ymd(s: &str) -> Option<&str> {
    let day = s.get(..10)?;
    let b = day.as_bytes();
    let ok = b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() });
    ok.then_some(day)
}

/// Parse LOLDrivers `drivers.csv`: one record per hash value.
///
/// The `KnownVulnerableSamples_*` columns join the samples' values with ", " but skip missing ones, so
/// positions do not line up across columns: every MD5, SHA-1, SHA-256 and Authenticode SHA-1/SHA-256 value
/// (the Authenticode MD5 is not used) becomes its own record with only that digest and the row's metadata:
/// the class from `Category` (or `opts.class`), the first name in `Tags` as the file name, `Created` as first
/// seen, the driver page as the reference, and the company and description only when the column holds one
/// value (or the same value for every sample). A value repeated within a row gives one record; invalid values
/// are dropped silently while the row keeps a valid one, a row left with none is skipped. The date in the
/// [`FeedInfo`] is the newest `Created` date.
pub fn parse_csv(reader: &mut dyn BufRead, opts: &ParseOptions, sink: &mut dyn Sink) -> Result<FeedInfo, Error> {
    let mut records = CsvRecords::new(reader);
    let wrong = |why: String| Error::WrongFormat { format: CSV_FORMAT, why };
    let header = match records.next()? {
        None => return Err(wrong("empty input, no header".into())),
        Some((_, Ok(rec))) => rec,
        Some((no, Err(why))) => return Err(wrong(format!("line {no}: {why}"))),
    };
    let find = |name: &str| header.iter().position(|h| h.trim() == name);
    let required = |name: &str| find(name).ok_or_else(|| wrong(format!("the header has no `{name}` column")));
    let id_col = required("Id")?;
    let category_col = required("Category")?;
    let mut hash_cols = vec![
        (required("KnownVulnerableSamples_MD5")?, DigestKind::Md5),
        (required("KnownVulnerableSamples_SHA1")?, DigestKind::Sha1),
        (required("KnownVulnerableSamples_SHA256")?, DigestKind::Sha256),
    ];
    for (name, kind) in [
        ("KnownVulnerableSamples_Authentihash_SHA1", DigestKind::AuthentihashSha1),
        ("KnownVulnerableSamples_Authentihash_SHA256", DigestKind::AuthentihashSha256),
    ] {
        if let Some(i) = find(name) {
            hash_cols.push((i, kind));
        }
    }
    let created_col = find("Created");
    let tags_col = find("Tags");
    let company_col = find("KnownVulnerableSamples_Company");
    let description_col = find("KnownVulnerableSamples_Description");

    let mut newest: Option<String> = None;
    while let Some((no, rec)) = records.next()? {
        let rec = match rec {
            Ok(rec) => rec,
            Err(why) => {
                sink.skipped(no, why)?;
                continue;
            }
        };
        if rec.len() != header.len() {
            sink.skipped(no, &format!("expected {} fields, got {}", header.len(), rec.len()))?;
            continue;
        }
        let field = |i: Option<usize>| i.and_then(|i| rec.get(i)).unwrap_or("");
        let mut digests: Vec<Digest> = Vec::new();
        let mut invalid = Vec::new();
        for &(col, kind) in &hash_cols {
            for value in field(Some(col)).split(',').filter_map(Meta::clean) {
                match Digest::parse_hex(kind, &value) {
                    Ok(d) if !digests.contains(&d) => digests.push(d),
                    Ok(_) => {}
                    Err(e) => invalid.push(format!("{kind}: {e}")),
                }
            }
        }
        if digests.is_empty() {
            sink.skipped(no, &no_hash_reason(&invalid))?;
            continue;
        }
        let created = Meta::clean(field(created_col));
        if let Some(day) = created.as_deref().and_then(ymd) {
            if newest.as_deref().is_none_or(|n| n < day) {
                newest = Some(day.to_string());
            }
        }
        let class = opts.class.unwrap_or_else(|| class_of(Some(field(Some(category_col)))));
        let meta = Meta {
            file_name: first_tag(field(tags_col)),
            company: single_value(field(company_col)),
            description: single_value(field(description_col)),
            first_seen: created,
            reference: Meta::clean(field(Some(id_col))).map(|id| format!("https://www.loldrivers.io/drivers/{id}/")),
            ..Meta::default()
        };
        for digest in digests {
            sink.record(FeedRecord { class, digests: vec![digest], meta: meta.clone() })?;
        }
    }
    Ok(FeedInfo { version: None, date: newest })
}

/// The first driver name of a `Tags` cell (`"a.sys, b.sys"` or the Python repr `"['a.sys', 'b.sys']"`).
fn first_tag(tags: &str) -> Option<String> {
    let inner = tags.trim().trim_start_matches('[').trim_end_matches(']');
    inner.split(',').find_map(|t| Meta::clean(t.trim().trim_matches(|c| c == '\'' || c == '"')))
}

/// A per-sample column's value when every sample has the same one (`"Intel"`, `"Intel, Intel"`), else `None`.
fn single_value(cell: &str) -> Option<String> {
    let mut values = cell.split(", ").map(Meta::clean);
    let first = values.next()??;
    values.all(|v| v.as_deref() == Some(first.as_str())).then_some(first)
}

/// Skip a UTF-8 BOM and leading ASCII whitespace; the first other byte (not consumed) and how many `\n` were
/// skipped.
pub(crate) fn skip_bom_and_space(reader: &mut dyn BufRead) -> io::Result<(Option<u8>, u64)> {
    if reader.fill_buf()?.starts_with(b"\xEF\xBB\xBF") {
        reader.consume(3);
    }
    let mut newlines = 0;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok((None, newlines));
        }
        let space = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        newlines += buf[..space].iter().filter(|&&b| b == b'\n').count() as u64;
        if space < buf.len() {
            let first = buf[space];
            reader.consume(space);
            return Ok((Some(first), newlines));
        }
        reader.consume(space);
    }
}

/// Stream the elements of a top-level JSON array to `each` (with their 1-based index), holding one element at
/// a time as a [`Value`] (at most [`MAX_JSON_ENTRY`] bytes of JSON text each).
///
/// Empty input, a top level that is not an array, invalid or truncated JSON, an element over the cap and data
/// after the array are [`Error::WrongFormat`] (a stream cannot resynchronise after a JSON syntax error); an
/// error from `each` is returned unchanged. Returns the number of elements.
pub(crate) fn stream_json_array(
    reader: &mut dyn BufRead,
    format: &'static str,
    each: &mut dyn FnMut(u64, Value) -> Result<(), Error>,
) -> Result<u64, Error> {
    let wrong = |why: String| Error::WrongFormat { format, why };
    match skip_bom_and_space(reader)?.0 {
        None => return Err(wrong("empty input".into())),
        Some(b'[') => {}
        Some(_) => return Err(wrong("the top level is not a JSON array".into())),
    }
    let used = Cell::new(0u64);
    let over = Cell::new(false);
    let mut count = 0u64;
    let mut failed: Option<Error> = None;
    let capped = EntryCap { inner: reader, used: &used, over: &over };
    let mut de = serde_json::Deserializer::from_reader(capped);
    let res = de
        .deserialize_seq(ArrayVisitor { each, used: &used, count: &mut count, failed: &mut failed })
        .and_then(|()| de.end());
    if let Some(e) = failed {
        return Err(e);
    }
    match res {
        Ok(()) => Ok(count),
        Err(_) if over.get() => {
            Err(wrong(format!("array element {} is larger than {} MiB", count + 1, MAX_JSON_ENTRY >> 20)))
        }
        Err(e) if e.is_io() => Err(Error::Io(e.into())),
        Err(e) if e.is_eof() => Err(wrong(format!("the JSON ends early, after {count} elements (truncated?)"))),
        Err(e) => Err(wrong(format!("invalid JSON after {count} elements: {e}"))),
    }
}

/// A reader that fails once more than [`MAX_JSON_ENTRY`] bytes were read since `used` was last reset.
struct EntryCap<'a> {
    inner: &'a mut dyn BufRead,
    used: &'a Cell<u64>,
    over: &'a Cell<bool>,
}

impl Read for EntryCap<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.used.set(self.used.get() + n as u64);
        if self.used.get() > MAX_JSON_ENTRY {
            self.over.set(true);
            return Err(io::Error::new(io::ErrorKind::InvalidData, "JSON array element too large"));
        }
        Ok(n)
    }
}

struct ArrayVisitor<'a, 'f> {
    each: &'a mut (dyn FnMut(u64, Value) -> Result<(), Error> + 'f),
    used: &'a Cell<u64>,
    count: &'a mut u64,
    failed: &'a mut Option<Error>,
}

impl<'de> Visitor<'de> for ArrayVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            self.used.set(0);
            let Some(value) = seq.next_element::<Value>()? else { return Ok(()) };
            *self.count += 1;
            if let Err(e) = (self.each)(*self.count, value) {
                *self.failed = Some(e);
                return Err(de::Error::custom("stopped by the sink"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::feeds::hashlist::test_sink::{TestSink, run, run_file, wrong_format};

    const JSON: &str = "loldrivers/drivers.subset.json";
    const CSV: &str = "loldrivers/drivers.csv";

    fn find<'a>(sink: &'a TestSink, kind: DigestKind, hex: &str) -> Vec<&'a FeedRecord> {
        sink.records.iter().filter(|r| r.digests.iter().any(|d| d.kind() == kind && d.hex() == hex)).collect()
    }

    #[test]
    fn the_json_subset_gives_one_record_per_sample() {
        // `python3 -c "import json; d=json.load(open(JSON)); print(len(d), sum(len(x['KnownVulnerableSamples'])
        // for x in d))"` = 61 drivers, 69 samples; every sample has a file hash or an Authenticode hash (4 have
        // only Authenticode hashes); 15 malicious drivers with 15 samples (`Category == "malicious"`).
        let (info, sink) = run_file(parse_json, JSON, &ParseOptions::default());
        assert_eq!(sink.records.len(), 69);
        assert!(sink.skipped.is_empty(), "{:?}", sink.skipped);
        assert_eq!(sink.records.iter().filter(|r| r.class == Class::Malicious).count(), 15);
        // `max(x['Created'] for x in d)` = 2026-08-12.
        assert_eq!(info, FeedInfo { version: None, date: Some("2026-08-12".into()) });
        // The samples' digests: `MD5`/`SHA1`/`SHA256`/`Imphash`/`Authentihash.{SHA1,SHA256}`/legacy
        // `Authentihash{SHA1,SHA256}`, valid hex of the right length, distinct per sample = 392.
        assert_eq!(sink.records.iter().map(|r| r.digests.len()).sum::<usize>(), 392);
    }

    #[test]
    fn a_vulnerable_driver_is_found_by_sha256_and_by_authentihash() {
        let (_, sink) = run_file(parse_json, JSON, &ParseOptions::default());
        // MsIo32.sys, driver 4e5064b4-…, CVE-2019-18845 (also in the raw YAML of the reference set).
        let by_sha =
            find(&sink, DigestKind::Sha256, "525d9b51a80ca0cd4c5889a96f857e73f3a80da1ffbae59851e0f51bdfb0b6cd");
        assert_eq!(by_sha.len(), 1);
        let rec = by_sha[0];
        assert_eq!(rec.class, Class::Vulnerable);
        let ah = rec.digests.iter().find(|d| d.kind() == DigestKind::AuthentihashSha256).unwrap();
        assert_eq!(find(&sink, DigestKind::AuthentihashSha256, &ah.hex()), [rec]);
        let m = &rec.meta;
        assert_eq!(m.file_name.as_deref(), Some("MsIo32.sys"));
        assert_eq!(m.family.as_deref(), Some("CVE-2019-18845"));
        assert_eq!(
            m.reference.as_deref(),
            Some("https://www.loldrivers.io/drivers/4e5064b4-48d3-418c-a7a8-f0dc7ac0a176/")
        );
        assert_eq!(m.first_seen.as_deref(), Some("2023-01-09"));
        assert!(rec.digests.iter().any(|d| d.kind() == DigestKind::Md5));
        assert!(rec.digests.iter().any(|d| d.kind() == DigestKind::Imphash));
    }

    #[test]
    fn legacy_flat_fields_and_authentihash_only_samples() {
        let (_, sink) = run_file(parse_json, JSON, &ParseOptions::default());
        // SmSerl64.sys carries the legacy flat spelling.
        let rec = find(
            &sink,
            DigestKind::AuthentihashSha256,
            "c9b2be7c9a161967aa5028fa9ea400bb3bb8e70919bf69f6629c62dbe187d4c9",
        );
        assert_eq!(rec.len(), 1);
        assert_eq!(rec[0].meta.company.as_deref(), Some("Motorola Inc."));
        assert_eq!(rec[0].meta.description.as_deref(), Some("Motorola SM56 Modem WDM Driver"));
        assert_eq!(rec[0].meta.product.as_deref(), Some("Motorola SM56 Modem"));
        assert!(find(&sink, DigestKind::AuthentihashSha1, "b393c7504067827e5e5414a86342e7eadf4093e4").len() == 1);
        // WinIO32A.sys has only an Authenticode SHA-1.
        let rec = find(&sink, DigestKind::AuthentihashSha1, "01779ee53f999464465ed690d823d160f73f10e7");
        assert_eq!(rec.len(), 1);
        assert_eq!(rec[0].digests.len(), 1);
    }

    fn driver(extra: &str, sample: &str) -> String {
        format!(
            r#"{{"Id": "x-1", "Category": "malicious", "Created": "2024-01-02"{extra},
                "KnownVulnerableSamples": [{sample}]}}"#
        )
    }

    #[test]
    fn lenient_field_types() {
        let sha = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        let entries = [
            driver(r#", "CVE": "CVE-1""#, &format!(r#"{{"SHA256": "{sha}", "Signature": ["Leaf", "CA"]}}"#)),
            driver(
                r#", "CVE": [""], "CVEs": ["CVE-2", "CVE-3"]"#,
                &format!(r#"{{"SHA256": "{sha}", "Signature": null, "Publisher": "Pub"}}"#),
            ),
            driver(
                r#", "CVE": null"#,
                &format!(
                    r#"{{"SHA256": "{sha}", "Signature": "The digital signature of the object did not verify.", "Publisher": ""}}"#
                ),
            ),
            driver("", &format!(r#"{{"SHA256": "{sha}", "Signature": "Plain Signer", "Filesize": 42, "Company": 7}}"#)),
        ];
        let input = format!("\u{feff}[{}]", entries.join(",\r\n"));
        let (res, sink) = run(parse_json, input.as_bytes(), &ParseOptions::default());
        assert_eq!(res.unwrap().date.as_deref(), Some("2024-01-02"));
        assert!(sink.skipped.is_empty(), "{:?}", sink.skipped);
        let got: Vec<(Option<&str>, Option<&str>)> =
            sink.records.iter().map(|r| (r.meta.family.as_deref(), r.meta.signer.as_deref())).collect();
        assert_eq!(
            got,
            [
                (Some("CVE-1"), Some("Leaf")),
                (Some("CVE-2, CVE-3"), Some("Pub")),
                (None, None),
                (None, Some("Plain Signer"))
            ]
        );
        assert_eq!(sink.records[3].meta.size, Some(42));
        assert_eq!(sink.records[3].meta.company.as_deref(), Some("7"));
        assert!(sink.records.iter().all(|r| r.class == Class::Malicious && r.digests[0].hex() == sha.to_lowercase()));
        let (_, sink) = run(
            parse_json,
            input.as_bytes(),
            &ParseOptions { class: Some(Class::KnownGood), ..ParseOptions::default() },
        );
        assert!(sink.records.iter().all(|r| r.class == Class::KnownGood));
    }

    #[test]
    fn bad_json_samples_are_skipped_by_ordinal() {
        let input = format!(
            "[{}, 42, {}, {}]",
            driver("", r#"{"SHA256": "zz"}, {"MD5": "D41D8CD98F00B204E9800998ECF8427E", "SHA1": "abc"}, "nope""#),
            r#"{"Id": "empty", "KnownVulnerableSamples": []}"#,
            driver("", r#"{"Imphash": "d41d8cd98f00b204e9800998ecf8427e", "Filename": "x.sys"}"#),
        );
        let (res, sink) = run(parse_json, input.as_bytes(), &ParseOptions::default());
        res.unwrap();
        // Ordinals: 1 bad hex, 2 good (its invalid SHA1 dropped), 3 not an object, 4 entry 42, 5 no samples,
        // 6 imphash only.
        assert_eq!(sink.records.len(), 1);
        assert_eq!(sink.records[0].digests.len(), 1);
        let lines: Vec<u64> = sink.skipped.iter().map(|s| s.0).collect();
        assert_eq!(lines, [1, 3, 4, 5, 6], "{:?}", sink.skipped);
        assert!(sink.skipped[0].1.starts_with("no valid hash (sha256"), "{:?}", sink.skipped);
        assert!(sink.skipped[2].1.contains("not an object"));
        assert!(sink.skipped[3].1.contains("no KnownVulnerableSamples"));
        assert_eq!(sink.skipped[4].1, "no hash (driver x-1)");
    }

    #[test]
    fn json_that_is_not_an_array_or_is_broken_is_the_wrong_format() {
        let opts = ParseOptions::default();
        assert!(wrong_format(parse_json, b"", &opts).contains("empty"));
        assert!(wrong_format(parse_json, b" \n\t", &opts).contains("empty"));
        assert!(wrong_format(parse_json, b"{\"Id\": 1}", &opts).contains("not a JSON array"));
        assert!(wrong_format(parse_json, b"\"Id\",\"Author\"\n", &opts).contains("not a JSON array"));
        let truncated = format!("[{}, {{\"Id\": \"y", driver("", r#"{"MD5": "d41d8cd98f00b204e9800998ecf8427e"}"#));
        let (res, sink) = run(parse_json, truncated.as_bytes(), &opts);
        let Err(Error::WrongFormat { why, .. }) = res else { panic!("{res:?}") };
        assert!(why.contains("after 1 elements"), "{why}");
        assert_eq!(sink.records.len(), 1, "what came before the damage was given to the sink");
        assert!(wrong_format(parse_json, b"[1, 2,]", &opts).contains("invalid JSON"));
        assert!(wrong_format(parse_json, b"[] []", &opts).contains("invalid JSON"));
        let (res, _) = run(parse_json, b" [ ] \n", &opts);
        assert_eq!(res.unwrap(), FeedInfo::default());
    }

    #[test]
    fn a_giant_json_entry_is_refused_without_buffering_it() {
        let mut input = b"[{\"Id\": \"".to_vec();
        input.extend(std::iter::repeat_n(b'a', MAX_JSON_ENTRY as usize + 10));
        input.extend_from_slice(b"\"}]");
        let why = wrong_format(parse_json, &input, &ParseOptions::default());
        assert!(why.contains("larger than 16 MiB"), "{why}");
    }

    #[test]
    fn the_sink_can_abort_a_json_parse() {
        let input = format!("[{}]", driver("", r#"{"SHA256": "zz"}, {"SHA256": "zz"}"#));
        let mut sink = TestSink { abort_after_skipped: Some(1), ..TestSink::default() };
        let err = parse_json(&mut input.as_bytes(), &ParseOptions::default(), &mut sink).unwrap_err();
        assert!(matches!(err, Error::Aborted(_)), "{err}");
    }

    #[test]
    fn the_csv_gives_one_record_per_hash_value() {
        // Counted with Python's csv module: for every row, the distinct valid values of the MD5, SHA1, SHA256,
        // Authentihash_SHA1 and Authentihash_SHA256 columns split on "," (valid hex of the right length, distinct
        // per row) = 10059 records; no row without one.
        let (info, sink) = run_file(parse_csv, CSV, &ParseOptions::default());
        assert_eq!(sink.records.len(), 10059);
        assert!(sink.skipped.is_empty(), "{:?}", sink.skipped);
        assert!(sink.records.iter().all(|r| r.digests.len() == 1));
        // `max(row['Created'])` = 2026-08-12.
        assert_eq!(info.date.as_deref(), Some("2026-08-12"));
        let count = |k: DigestKind| sink.records.iter().filter(|r| r.digests[0].kind() == k).count();
        assert_eq!(
            [
                DigestKind::Md5,
                DigestKind::Sha1,
                DigestKind::Sha256,
                DigestKind::AuthentihashSha1,
                DigestKind::AuthentihashSha256
            ]
            .map(count),
            [2090, 2107, 2089, 1891, 1882]
        );
        assert_eq!(count(DigestKind::Imphash), 0);
    }

    #[test]
    fn a_csv_driver_is_found_by_sha256_and_by_authentihash() {
        let (_, sink) = run_file(parse_csv, CSV, &ParseOptions::default());
        // The first data row: nvflash.sys, vulnerable, one sample.
        let rec = find(&sink, DigestKind::Sha256, "9368e51ec98e2ad20893a5fc21e6a8b20c5bee158d5c49ca58649cff84db9d68");
        assert_eq!(rec.len(), 1);
        assert_eq!(rec[0].class, Class::Vulnerable);
        assert_eq!(rec[0].meta.file_name.as_deref(), Some("nvflash.sys"));
        assert_eq!(rec[0].meta.first_seen.as_deref(), Some("2023-07-22"));
        assert_eq!(
            rec[0].meta.reference.as_deref(),
            Some("https://www.loldrivers.io/drivers/2a6a38ca-f2e6-456e-9ccf-db59d8c80c9e/")
        );
        let ah = find(
            &sink,
            DigestKind::AuthentihashSha256,
            "4ae065383a4ef5564a515d12adf18427f8d74cc15140edb95e5e2a51ca44fe42",
        );
        assert_eq!(ah.len(), 1);
        assert_eq!(ah[0].meta, rec[0].meta);
        // The Authenticode MD5 is not imported.
        assert!(find(&sink, DigestKind::Md5, "7221126b272047b7ced2189f8a4bd484").is_empty());
    }

    const CSV_HEADER: &str = "\"Id\",\"Created\",\"Category\",\"KnownVulnerableSamples_MD5\",\"KnownVulnerableSamples_SHA1\",\
        \"KnownVulnerableSamples_SHA256\",\"KnownVulnerableSamples_Company\",\"KnownVulnerableSamples_Description\",\"Tags\"";

    #[test]
    fn csv_quoting_crlf_bom_company_and_tags() {
        let input = format!(
            "\u{feff}{CSV_HEADER}\r\n\
             \"a\",\"2024-05-06\",\"malicious\",\"D41D8CD98F00B204E9800998ECF8427E, d41d8cd98f00b204e9800998ecf8427e, zz\",\"\",\"\",\
             \"Intel, Intel\",\"One, Two\",\"['x.sys', 'y.sys']\"\r\n\
             \"b\",\"\",\"vulnerable driver\",\"\",\"da39a3ee5e6b4b0d3255bfef95601890afd80709\",\"\",\"Acme\",\", \",\"\"\r\n\
             \"c\",\"\",\"vulnerable driver\",\"\",\"\",\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\",\
             \"\",\"\",\"z.sys, w.sys\""
        );
        let (res, sink) = run(parse_csv, input.as_bytes(), &ParseOptions::default());
        assert_eq!(res.unwrap().date.as_deref(), Some("2024-05-06"));
        assert!(sink.skipped.is_empty(), "{:?}", sink.skipped);
        assert_eq!(sink.records.len(), 3, "the repeated MD5 gives one record, the invalid one none");
        let m = &sink.records[0].meta;
        assert_eq!(sink.records[0].class, Class::Malicious);
        assert_eq!(m.company.as_deref(), Some("Intel"));
        assert_eq!(m.description, None);
        assert_eq!(m.file_name.as_deref(), Some("x.sys"));
        assert_eq!(sink.records[1].meta.company.as_deref(), Some("Acme"));
        assert_eq!(sink.records[1].meta.file_name, None);
        assert_eq!(sink.records[2].meta.file_name.as_deref(), Some("z.sys"), "a truncated last line is read");
    }

    #[test]
    fn bad_csv_rows_are_skipped() {
        let mut input =
            format!("{CSV_HEADER}\n\"short\",\"x\"\n\"n\",\"\",\"malicious\",\"zz\",\"\",\"\",\"\",\"\",\"\"\n");
        input.push_str(&"\"".repeat(3));
        input.push_str(&"q".repeat(MAX_LINE + 5));
        input.push('\n');
        input.push_str("\"e\",\"\",\"malicious\",\"\",\"\",\"\",\"\",\"\",\"\"\n");
        input.push_str("\"ok\",\"\",\"malicious\",\"d41d8cd98f00b204e9800998ecf8427e\",\"\",\"\",\"\",\"\",\"\"\n");
        let (res, sink) = run(parse_csv, input.as_bytes(), &ParseOptions::default());
        res.unwrap();
        assert_eq!(sink.records.len(), 1);
        let lines: Vec<u64> = sink.skipped.iter().map(|s| s.0).collect();
        assert_eq!(lines, [2, 3, 4, 5], "{:?}", sink.skipped);
        assert!(sink.skipped[0].1.contains("expected 9 fields"));
        assert!(sink.skipped[1].1.starts_with("no valid hash"));
        assert!(sink.skipped[2].1.contains("longer than"));
        assert_eq!(sink.skipped[3].1, "no hash");
    }

    #[test]
    fn csv_wrong_format_and_empty_input() {
        let opts = ParseOptions::default();
        assert!(wrong_format(parse_csv, b"", &opts).contains("empty"));
        let json =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/feeds/loldrivers/drivers.subset.json"))
                .unwrap();
        assert!(wrong_format(parse_csv, &json, &opts).contains("no `Id` column"));
        let xcyclopedia = b"\"file_name\",\"file_path\",\"hash_sha256\"\n";
        assert!(wrong_format(parse_csv, xcyclopedia, &opts).contains("no `Id` column"));
        let no_sha256 = b"\"Id\",\"Category\",\"KnownVulnerableSamples_MD5\",\"KnownVulnerableSamples_SHA1\"\n";
        assert!(wrong_format(parse_csv, no_sha256, &opts).contains("KnownVulnerableSamples_SHA256"));
        // A header only is a valid, empty feed.
        let (res, sink) = run(parse_csv, CSV_HEADER.as_bytes(), &opts);
        assert_eq!(res.unwrap(), FeedInfo::default());
        assert!(sink.records.is_empty());
    }

    #[test]
    fn tags_and_single_values() {
        assert_eq!(first_tag("['a.sys', 'b.sys']").as_deref(), Some("a.sys"));
        assert_eq!(first_tag("[\"a.sys\"]").as_deref(), Some("a.sys"));
        assert_eq!(first_tag(" , b.sys").as_deref(), Some("b.sys"));
        assert_eq!(first_tag("[]"), None);
        assert_eq!(single_value("X"), Some("X".into()));
        assert_eq!(single_value("X, X, X"), Some("X".into()));
        assert_eq!(single_value("X, , X"), None);
        assert_eq!(single_value(""), None);
        assert_eq!(ymd("2024-01-02 10:00"), Some("2024-01-02"));
        assert_eq!(ymd("2024-1-2"), None);
    }
}

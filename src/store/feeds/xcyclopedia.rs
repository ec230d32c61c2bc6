//! xcyclopedia: an inventory of genuine Windows executables (path, hashes, signer, VERSIONINFO).
//!
//! This module owns the `xcyclopedia` format: strontic's CSV (`strontic-xcyclopedia.csv`, or a copy with some
//! columns dropped), one row per file, columns found by their header names. Every row is a known-good record
//! keyed by its file hashes, imphash and Authenticode hashes, with the path, original name, description,
//! product, company, versions and — when the signature verified — the signer's CN. It also owns
//! `CsvRecords`, the bounded-memory CSV record reader the LOLDrivers CSV parser shares.

use std::io::{self, BufRead};

use super::{Error, FeedInfo, Line, Lines, MAX_LINE, ParseOptions, Sink};
use crate::store::{Class, Digest, DigestKind, FeedRecord, Meta};

const FORMAT: &str = "xcyclopedia";

/// Parse an xcyclopedia CSV: the header names the columns (`file_name` and `hash_sha256` are required), each
/// row becomes one [`Class::KnownGood`] record (or `opts.class`). Rows with the wrong number of fields, or
/// without any valid file or Authenticode hash, are skipped.
pub fn parse(reader: &mut dyn BufRead, opts: &ParseOptions, sink: &mut dyn Sink) -> Result<FeedInfo, Error> {
    let mut records = CsvRecords::new(reader);
    let header = match records.next()? {
        None => return Err(wrong("empty input, no header")),
        Some((_, Ok(rec))) => rec,
        // The header is the first thing in the file: if it cannot be read, this is not a file we know.
        Some((no, Err(why))) => return Err(wrong(&format!("line {no}: {why}"))),
    };
    let cols = Columns::of(&header)?;
    let class = opts.class.unwrap_or(Class::KnownGood);
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
        match cols.record(&rec, class) {
            Ok(r) => sink.record(r)?,
            Err(why) => sink.skipped(no, &why)?,
        }
    }
    Ok(FeedInfo::default())
}

fn wrong(why: &str) -> Error {
    Error::WrongFormat { format: FORMAT, why: why.to_string() }
}

/// Column indexes, found by header name.
struct Columns {
    file_name: usize,
    file_path: Option<usize>,
    digests: Vec<(usize, DigestKind)>,
    signature_status: Option<usize>,
    signature_subject: Option<usize>,
    description: Option<usize>,
    original_name: Option<usize>,
    product: Option<usize>,
    company: Option<usize>,
    file_version: Option<usize>,
    product_version: Option<usize>,
}

impl Columns {
    fn of(header: &csv::StringRecord) -> Result<Columns, Error> {
        let find = |name: &str| header.iter().position(|h| h.trim().eq_ignore_ascii_case(name));
        let required = |name: &str| find(name).ok_or_else(|| wrong(&format!("the header has no `{name}` column")));
        let file_name = required("file_name")?;
        required("hash_sha256")?;
        let digests = [
            ("hash_md5", DigestKind::Md5),
            ("hash_sha1", DigestKind::Sha1),
            ("hash_sha256", DigestKind::Sha256),
            ("hash_pesha1", DigestKind::AuthentihashSha1),
            ("hash_pe256", DigestKind::AuthentihashSha256),
            ("hash_imp", DigestKind::Imphash),
        ]
        .into_iter()
        .filter_map(|(name, kind)| find(name).map(|i| (i, kind)))
        .collect();
        Ok(Columns {
            file_name,
            file_path: find("file_path"),
            digests,
            signature_status: find("signature_status"),
            signature_subject: find("signature_subject"),
            description: find("meta_description"),
            original_name: find("meta_original_filename"),
            product: find("meta_product_name"),
            company: find("meta_company_name"),
            file_version: find("meta_file_version"),
            product_version: find("meta_product_version"),
        })
    }

    /// One row as a record; `Err` with the reason when it has no usable digest.
    ///
    /// An invalid digest is dropped silently when the row keeps at least one valid file or Authenticode hash;
    /// only a row left with none is reported (the reason names the invalid values).
    fn record(&self, rec: &csv::StringRecord, class: Class) -> Result<FeedRecord, String> {
        let field = |i: Option<usize>| i.and_then(|i| rec.get(i)).and_then(Meta::clean);
        let mut digests = Vec::with_capacity(self.digests.len());
        let mut invalid = Vec::new();
        for &(i, kind) in &self.digests {
            let Some(value) = field(Some(i)) else { continue };
            match Digest::parse_hex(kind, &value) {
                Ok(d) => digests.push(d),
                Err(e) => invalid.push(format!("{kind}: {e}")),
            }
        }
        if !digests.iter().any(|d| d.kind() != DigestKind::Imphash) {
            return Err(no_hash_reason(&invalid));
        }
        let signer = match field(self.signature_status).as_deref() {
            Some("0") => field(self.signature_subject).map(|dn| dn_common_name(&dn).unwrap_or(dn)),
            _ => None,
        };
        Ok(FeedRecord {
            class,
            digests,
            meta: Meta {
                file_name: field(Some(self.file_name)),
                path: field(self.file_path),
                original_name: field(self.original_name),
                description: field(self.description),
                product: field(self.product),
                company: field(self.company),
                file_version: field(self.file_version),
                product_version: field(self.product_version),
                signer,
                ..Meta::default()
            },
        })
    }
}

/// The skip reason of a record left without a usable digest.
pub(crate) fn no_hash_reason(invalid: &[String]) -> String {
    if invalid.is_empty() { "no hash".to_string() } else { format!("no valid hash ({})", invalid.join("; ")) }
}

/// The `CN=` value of an X.500 distinguished name (`CN=Microsoft Windows, O=Microsoft Corporation, …` →
/// `Microsoft Windows`). Quoted values (`CN="GitHub, Inc."`) and backslash escapes are honoured.
fn dn_common_name(dn: &str) -> Option<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = dn.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '"' => quoted = !quoted,
            ',' | ';' if !quoted => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    parts.iter().find_map(|p| {
        let (key, value) = p.split_once('=')?;
        if key.trim().eq_ignore_ascii_case("CN") { Meta::clean(value) } else { None }
    })
}

/// Reads CSV records (`,`-separated, `"`-quoted, `""` an escaped quote) with bounded memory: input comes
/// through [`Lines`] (BOM, CRLF, a truncated last line, giant or non-UTF-8 lines handled there), a quoted
/// field may span lines, and a record longer than [`MAX_LINE`] is reported as bad instead of being buffered.
/// Blank lines are skipped. The `csv` crate splits each record (flexible: any number of fields).
pub(crate) struct CsvRecords<R> {
    lines: Lines<R>,
    buf: String,
}

/// One item of [`CsvRecords`]: the number of the record's first line and the record, or why it is bad.
pub(crate) type CsvItem = (u64, Result<csv::StringRecord, &'static str>);

impl<R: BufRead> CsvRecords<R> {
    /// Wrap a reader.
    pub(crate) fn new(inner: R) -> Self {
        CsvRecords { lines: Lines::new(inner), buf: String::new() }
    }

    /// The next record, or `None` at the end of input.
    ///
    /// A record whose quoted field is still open at the end of a line continues on the next line. When the
    /// joined record would grow beyond [`MAX_LINE`] (a stray, never-closed quote), or the input ends inside the
    /// quotes, the record is bad: the lines it took so far are lost (at most [`MAX_LINE`] bytes and one line)
    /// and reading resumes on the next line as a new record.
    #[allow(clippy::should_implement_trait)]
    pub(crate) fn next(&mut self) -> io::Result<Option<CsvItem>> {
        let mut start: Option<u64> = None;
        let mut state = QuoteState::StartField;
        self.buf.clear();
        loop {
            let (no, text) = match self.lines.next()? {
                None => return Ok(start.map(|first| (first, Err("unclosed quote at end of input")))),
                // A bad line inside an open record spoils the record.
                Some(Line::Bad(no, why)) => return Ok(Some((start.unwrap_or(no), Err(why)))),
                Some(Line::Text(no, text)) => (no, text),
            };
            match start {
                None if text.trim().is_empty() => continue,
                None => start = Some(no),
                Some(first) => {
                    if self.buf.len() + 1 + text.len() > MAX_LINE {
                        return Ok(Some((first, Err("record longer than 1 MiB (an unclosed quote?)"))));
                    }
                    self.buf.push('\n');
                    state = state.feed('\n');
                }
            }
            self.buf.push_str(text);
            state = text.chars().fold(state, QuoteState::feed);
            if state != QuoteState::InQuoted {
                return Ok(Some((start.unwrap_or(no), split_record(&self.buf))));
            }
        }
    }
}

/// Split one complete record with the `csv` crate (`\n` the only terminator, so a stray `\r` stays data).
fn split_record(text: &str) -> Result<csv::StringRecord, &'static str> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .buffer_capacity(text.len().clamp(64, 1 << 16))
        .from_reader(text.as_bytes());
    let mut rec = csv::StringRecord::new();
    match reader.read_record(&mut rec) {
        Ok(true) => Ok(rec),
        Ok(false) => Err("empty record"),
        Err(_) => Err("not a CSV record"),
    }
}

/// Where a CSV scanner is, mirroring `csv-core`: a quote opens a quoted field only at the start of a field,
/// and text after a closing quote continues the field unquoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuoteState {
    StartField,
    InField,
    InQuoted,
    QuoteInQuoted,
}

impl QuoteState {
    fn feed(self, c: char) -> QuoteState {
        use QuoteState::*;
        match (self, c) {
            (StartField, '"') => InQuoted,
            (StartField | InField, ',' | '\n') => StartField,
            (StartField | InField, _) => InField,
            (InQuoted, '"') => QuoteInQuoted,
            (InQuoted, _) => InQuoted,
            (QuoteInQuoted, '"') => InQuoted,
            (QuoteInQuoted, ',' | '\n') => StartField,
            (QuoteInQuoted, _) => InField,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::feeds::hashlist::test_sink::{run, run_file, wrong_format};

    const SUBSET: &str = "xcyclopedia/xcyclopedia.subset.csv";
    const HEADER: &str = "\"file_name\",\"file_path\",\"hash_md5\",\"hash_sha1\",\"hash_sha256\",\"hash_imp\",\
        \"hash_pesha1\",\"hash_pe256\",\"signature_status\",\"signature_subject\",\"meta_description\",\
        \"meta_original_filename\",\"meta_company_name\"\n";
    const SHA256: &str = "B6E357B520478920810317B363AA539595D386BC5EF3D5CF9581F325026BA397";

    fn rows(body: &str) -> Vec<u8> {
        format!("{HEADER}{body}").into_bytes()
    }

    #[test]
    fn the_subset_gives_one_record_a_row() {
        // `python3 -c "import csv; r=list(csv.reader(open(SUBSET))); print(len(r)-1)"` = 359 data rows (300 + 59
        // rows named smss/svchost/cmd/lsass/explorer.exe); every row has a valid hash_sha256 (checked the same way).
        let (info, sink) = run_file(parse, SUBSET, &ParseOptions::default());
        assert_eq!(info, FeedInfo::default());
        assert_eq!(sink.records.len(), 359);
        assert!(sink.skipped.is_empty(), "{:?}", sink.skipped);
        assert!(sink.records.iter().all(|r| r.class == Class::KnownGood));
        // Six hash columns; empty and `n/a` cells are absent. Valid hex of the right length over the subset
        // (`sum(1 for row in rows for k in hash columns if re.fullmatch(f"[0-9A-Fa-f]{{{n}}}", row[k]))`) = 1652;
        // the 13 other non-empty cells are all `n/a` imphashes.
        assert_eq!(sink.records.iter().map(|r| r.digests.len()).sum::<usize>(), 1652);
        let named = |n: &str| sink.records.iter().filter(|r| r.meta.file_name.as_deref() == Some(n)).count();
        assert_eq!(
            (named("smss.exe"), named("svchost.exe"), named("cmd.exe"), named("lsass.exe"), named("explorer.exe")),
            (6, 12, 12, 8, 21)
        );
    }

    #[test]
    fn smss_has_its_signer_original_name_and_path() {
        let (_, sink) = run_file(parse, SUBSET, &ParseOptions::default());
        let smss = sink
            .records
            .iter()
            .find(|r| r.digests.iter().any(|d| d.kind() == DigestKind::Sha256 && d.hex() == SHA256.to_lowercase()))
            .expect("smss.exe 10.0.17763.1");
        let kinds: Vec<DigestKind> = smss.digests.iter().map(|d| d.kind()).collect();
        assert_eq!(
            kinds,
            [
                DigestKind::Md5,
                DigestKind::Sha1,
                DigestKind::Sha256,
                DigestKind::AuthentihashSha1,
                DigestKind::AuthentihashSha256,
                DigestKind::Imphash
            ]
        );
        assert_eq!(smss.digests[0].hex(), "38e6700baa0e5484d2e00ec980fdd2e0");
        let m = &smss.meta;
        assert_eq!(m.file_name.as_deref(), Some("smss.exe"));
        assert_eq!(m.path.as_deref(), Some("C:\\Windows\\system32\\smss.exe"));
        assert_eq!(m.original_name.as_deref(), Some("smss.exe.mui"));
        assert_eq!(m.signer.as_deref(), Some("Microsoft Windows"));
        assert_eq!(m.description.as_deref(), Some("Windows Session Manager"));
        assert_eq!(m.product.as_deref(), Some("Microsoft Windows Operating System"));
        assert_eq!(m.company.as_deref(), Some("Microsoft Corporation"));
        assert_eq!(m.file_version.as_deref(), Some("10.0.17763.1 (WinBuild.160101.0800)"));
        assert_eq!(m.product_version.as_deref(), Some("10.0.17763.1"));
        assert_eq!(m.first_seen, None);
    }

    #[test]
    fn signer_needs_a_valid_signature_and_quoted_cns_work() {
        let body = format!(
            "\"a.exe\",\"C:\\a.exe\",\"\",\"\",\"{SHA256}\",\"\",\"\",\"\",\"0\",\
             \"CN=\"\"GitHub, Inc.\"\", O=\"\"GitHub, Inc.\"\", C=US\",\"\",\"\",\"\"\n\
             \"b.exe\",\"C:\\b.exe\",\"\",\"\",\"{SHA256}\",\"\",\"\",\"\",\"2\",\"CN=Microsoft Windows, O=x\",\
             \"\",\"\",\"\"\n"
        );
        let (res, sink) = run(parse, &rows(&body), &ParseOptions::default());
        res.unwrap();
        assert_eq!(sink.records.len(), 2, "{:?}", sink.skipped);
        assert_eq!(sink.records[0].meta.signer.as_deref(), Some("GitHub, Inc."));
        assert_eq!(sink.records[1].meta.signer, None);
        assert_eq!(dn_common_name("O=x, CN=Foo\\, Bar"), Some("Foo, Bar".into()));
        assert_eq!(dn_common_name("O=x"), None);
    }

    #[test]
    fn crlf_bom_commas_newlines_in_quotes_and_a_truncated_last_line() {
        let mut input = b"\xEF\xBB\xBF".to_vec();
        input.extend(
            format!(
                "{}\"a, b.exe\",\"C:\\x\",\"\",\"\",\"{SHA256}\",\"\",\"\",\"\",\"0\",\"CN=X\",\"line one\r\nline two\",\
                 \"\",\"n/a\"\r\n\r\n\"c.exe\",\"\",\"\",\"\",\"{}\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"",
                HEADER.replace('\n', "\r\n"),
                SHA256.to_lowercase()
            )
            .bytes(),
        );
        let (res, sink) = run(parse, &input, &ParseOptions::default());
        res.unwrap();
        assert!(sink.skipped.is_empty(), "{:?}", sink.skipped);
        assert_eq!(sink.records.len(), 2);
        let m = &sink.records[0].meta;
        assert_eq!(m.file_name.as_deref(), Some("a, b.exe"));
        assert_eq!(m.description.as_deref(), Some("line one\nline two"));
        assert_eq!(m.company, None, "n/a is no value");
        assert_eq!(sink.records[1].meta.file_name.as_deref(), Some("c.exe"));
        assert_eq!(sink.records[0].digests, sink.records[1].digests, "hex case is normalised");
    }

    #[test]
    fn bad_rows_are_skipped() {
        let good = format!("\"ok.exe\",\"\",\"\",\"\",\"{SHA256}\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"\n");
        let mut body = String::new();
        // 2: too few fields; 3: invalid hex and no other hash; 4: wrong length in sha256 but a valid md5 (kept,
        // the bad digest dropped); 5: only an imphash (not enough); 6: good; 7: giant line; 8: good; 9: unclosed
        // quote running to the end of input.
        body.push_str("\"short.exe\",\"x\"\n");
        body.push_str(&good.replace(SHA256, &SHA256.replace('B', "G")));
        body.push_str(
            &good.replace(&format!("\"\",\"\",\"{SHA256}\""), "\"D41D8CD98F00B204E9800998ECF8427E\",\"\",\"ABCD\""),
        );
        body.push_str(&good.replace(&format!("\"{SHA256}\",\"\""), "\"\",\"D41D8CD98F00B204E9800998ECF8427E\""));
        body.push_str(&good);
        body.push_str(&"x".repeat(MAX_LINE + 10));
        body.push('\n');
        body.push_str(&good);
        body.push_str("\"open.exe,\n");
        let (res, sink) = run(parse, &rows(&body), &ParseOptions::default());
        res.unwrap();
        assert_eq!(sink.records.len(), 3, "{:?}", sink.skipped);
        assert_eq!(sink.records[0].digests.len(), 1);
        assert_eq!(sink.records[0].digests[0].kind(), DigestKind::Md5);
        let skipped: Vec<u64> = sink.skipped.iter().map(|s| s.0).collect();
        assert_eq!(skipped, [2, 3, 5, 7, 9], "{:?}", sink.skipped);
        assert!(sink.skipped[0].1.contains("expected 13 fields, got 2"));
        assert!(sink.skipped[1].1.contains("no valid hash") && sink.skipped[1].1.contains("not a hex"));
        assert_eq!(sink.skipped[2].1, "no hash");
        assert!(sink.skipped[3].1.contains("longer than"));
        assert!(sink.skipped[4].1.contains("unclosed quote"));
    }

    #[test]
    fn a_never_closed_quote_costs_at_most_max_line() {
        // Line 2 opens a quote that never closes: lines 2.. are joined until the record would pass MAX_LINE, then
        // it is reported once and reading resumes; the following unquoted lines are rows of one field each.
        let mut body = String::from("\"never closed");
        let filler = MAX_LINE / 1000 + 3;
        for _ in 0..filler {
            body.push('\n');
            body.push_str(&"y".repeat(999));
        }
        body.push('\n');
        body.push_str(&format!("\"ok.exe\",\"\",\"\",\"\",\"{SHA256}\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"\n"));
        let (res, sink) = run(parse, &rows(&body), &ParseOptions::default());
        res.unwrap();
        assert_eq!(sink.skipped[0], (2, "record longer than 1 MiB (an unclosed quote?)".to_string()));
        // The joined record took the first line and floor((MAX_LINE - 13) / 1000) = 1048 filler lines, plus the
        // one that did not fit; the remaining filler lines are skipped one by one.
        let joined = (MAX_LINE - 13) / 1000 + 1;
        assert_eq!(sink.skipped.len(), 1 + filler - joined, "{:?}", &sink.skipped[..3]);
        assert!(sink.skipped[1..].iter().all(|s| s.1 == "expected 13 fields, got 1"));
        assert_eq!(sink.records.len(), 1);
        assert_eq!(sink.records[0].meta.file_name.as_deref(), Some("ok.exe"));
    }

    #[test]
    fn wrong_format_and_empty_input() {
        let opts = ParseOptions::default();
        assert!(wrong_format(parse, b"", &opts).contains("empty"));
        assert!(wrong_format(parse, b"\n\n", &opts).contains("empty"));
        assert!(wrong_format(parse, b"[{\"Id\": 1}]\n", &opts).contains("file_name"));
        let loldrivers = b"\"Id\",\"Author\",\"KnownVulnerableSamples_SHA256\"\n\"x\",\"y\",\"z\"\n";
        assert!(wrong_format(parse, loldrivers, &opts).contains("file_name"));
        assert!(wrong_format(parse, b"\"file_name\",\"hash_md5\"\n", &opts).contains("hash_sha256"));
    }

    #[test]
    fn the_class_can_be_overridden() {
        let opts = ParseOptions { class: Some(Class::KnownFile), ..ParseOptions::default() };
        let body = format!("\"ok.exe\",\"\",\"\",\"\",\"{SHA256}\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"\n");
        let (_, sink) = run(parse, &rows(&body), &opts);
        assert_eq!(sink.records[0].class, Class::KnownFile);
    }
}

//! Plain hash lists: one digest a line, the class (and optionally the kind) told by the user.
//!
//! This module owns the `hashlist` format: LOLDrivers' `detections/hashes/*` files, MalwareBazaar's `txt`
//! exports, a user's own allow or block list, or `sha256sum` output. Blank lines and `#` comment lines are
//! ignored; a line is trimmed, its first whitespace-separated token is the digest and the rest, if any, the file
//! name (`sha256sum`'s `*` binary marker and `\` escape prefix are undone). A list says nothing about what its
//! hashes are, so `--class` is required. It also holds the record-collecting sink the feed parsers' unit tests
//! share (`test_sink`, test builds only).

use std::io::BufRead;

use super::{Error, FeedInfo, Line, Lines, ParseOptions, Sink};
use crate::store::{Digest, FeedRecord, Meta};

/// Parse a hash list: one record per digest line, class `opts.class` (required), kind `opts.kind` or told by
/// the length (32/40/64 hex characters → MD5/SHA-1/SHA-256). Lines that are not a digest are skipped.
pub fn parse(reader: &mut dyn BufRead, opts: &ParseOptions, sink: &mut dyn Sink) -> Result<FeedInfo, Error> {
    let Some(class) = opts.class else {
        return Err(Error::WrongFormat { format: "hashlist", why: "a hash list needs --class".into() });
    };
    let mut lines = Lines::new(reader);
    while let Some(line) = lines.next()? {
        let (no, text) = match line {
            Line::Text(no, text) => (no, text),
            Line::Bad(no, why) => {
                sink.skipped(no, why)?;
                continue;
            }
        };
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let (token, rest) = match text.split_once(char::is_whitespace) {
            Some((token, rest)) => (token, rest.trim()),
            None => (text, ""),
        };
        // `sha256sum` prefixes the line with `\` when it escaped the file name.
        let escaped = token.starts_with('\\');
        let token = token.strip_prefix('\\').unwrap_or(token);
        let parsed = match opts.kind {
            Some(kind) => Digest::parse_hex(kind, token),
            None => Digest::parse_file_hash(token),
        };
        let digest = match parsed {
            Ok(d) => d,
            Err(e) => {
                sink.skipped(no, &format!("not a hash: {e}"))?;
                continue;
            }
        };
        let name = rest.strip_prefix('*').unwrap_or(rest);
        let file_name = if escaped { Meta::clean(&unescape_sum_name(name)) } else { Meta::clean(name) };
        sink.record(FeedRecord { class, digests: vec![digest], meta: Meta { file_name, ..Meta::default() } })?;
    }
    Ok(FeedInfo::default())
}

/// Undo `sha256sum`'s escaping of a file name (`\\` → `\`, `\n` → newline, `\r` → carriage return).
fn unescape_sum_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// A [`Sink`] that keeps everything, for the feed parsers' unit tests.
#[cfg(test)]
pub(crate) mod test_sink {
    use crate::store::FeedRecord;
    use crate::store::feeds::{Error, FeedInfo, ParseOptions, Sink};

    /// Every record and every skipped line, in order.
    #[derive(Debug, Default)]
    pub(crate) struct TestSink {
        /// The records taken.
        pub(crate) records: Vec<FeedRecord>,
        /// The skipped lines: number and reason.
        pub(crate) skipped: Vec<(u64, String)>,
        /// Abort (with [`Error::Aborted`]) on this many skipped lines.
        pub(crate) abort_after_skipped: Option<usize>,
    }

    impl Sink for TestSink {
        fn record(&mut self, rec: FeedRecord) -> Result<(), Error> {
            assert!(!rec.digests.is_empty(), "a record without digests: {rec:?}");
            self.records.push(rec);
            Ok(())
        }

        fn skipped(&mut self, line: u64, reason: &str) -> Result<(), Error> {
            self.skipped.push((line, reason.to_string()));
            if self.abort_after_skipped.is_some_and(|n| self.skipped.len() >= n) {
                return Err(Error::Aborted(format!("too many bad lines ({})", self.skipped.len())));
            }
            Ok(())
        }
    }

    /// A parser's signature.
    pub(crate) type ParseFn = fn(&mut dyn std::io::BufRead, &ParseOptions, &mut dyn Sink) -> Result<FeedInfo, Error>;

    /// Run a parser over bytes.
    pub(crate) fn run(parse: ParseFn, input: &[u8], opts: &ParseOptions) -> (Result<FeedInfo, Error>, TestSink) {
        let mut sink = TestSink::default();
        let mut reader = input;
        let res = parse(&mut reader, opts, &mut sink);
        (res, sink)
    }

    /// Run a parser over a file of `tests/data/feeds/`; the parse must succeed.
    pub(crate) fn run_file(parse: ParseFn, rel: &str, opts: &ParseOptions) -> (FeedInfo, TestSink) {
        let path = format!("{}/tests/data/feeds/{rel}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let (res, sink) = run(parse, &bytes, opts);
        (res.unwrap_or_else(|e| panic!("{path}: {e}")), sink)
    }

    /// The error of a parse that must fail with [`Error::WrongFormat`].
    pub(crate) fn wrong_format(parse: ParseFn, input: &[u8], opts: &ParseOptions) -> String {
        match run(parse, input, opts).0 {
            Err(Error::WrongFormat { why, .. }) => why,
            other => panic!("expected WrongFormat, got {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_sink::{run, run_file, wrong_format};
    use super::*;
    use crate::store::feeds::MAX_LINE;
    use crate::store::{Class, DigestKind};

    fn opts(class: Class, kind: Option<DigestKind>) -> ParseOptions {
        ParseOptions { class: Some(class), kind, ..ParseOptions::default() }
    }

    #[test]
    fn loldrivers_hash_lists_give_one_record_a_line() {
        // `wc -l samples_vulnerable.sha256` = 1698, every line a 64-hex digest (`grep -vc '^[0-9a-f]\{64\}$'` = 0).
        let (info, sink) = run_file(parse, "loldrivers/samples_vulnerable.sha256", &opts(Class::Vulnerable, None));
        assert_eq!(info, FeedInfo::default());
        assert_eq!(sink.records.len(), 1698);
        assert!(sink.skipped.is_empty(), "{:?}", sink.skipped);
        let first = &sink.records[0];
        assert_eq!(first.class, Class::Vulnerable);
        assert_eq!(first.digests[0].kind(), DigestKind::Sha256);
        assert_eq!(first.digests[0].hex(), "1072beb3ff6b191b3df1a339e3a8c87a8dc5eae727f2b993ea51b448e837636a");
        assert!(first.meta.is_empty());

        // 1446 lines, the first one blank (`grep -c . …` = 1445), forced to the Authenticode kind.
        let (_, sink) = run_file(
            parse,
            "loldrivers/authentihash_samples_vulnerable.sha256",
            &opts(Class::Vulnerable, Some(DigestKind::AuthentihashSha256)),
        );
        assert_eq!(sink.records.len(), 1445);
        assert!(sink.skipped.is_empty());
        assert!(sink.records.iter().all(|r| r.digests[0].kind() == DigestKind::AuthentihashSha256));
    }

    #[test]
    fn a_class_is_required() {
        let why = wrong_format(parse, b"d41d8cd98f00b204e9800998ecf8427e\n", &ParseOptions::default());
        assert!(why.contains("--class"), "{why}");
        let why = wrong_format(parse, b"", &ParseOptions::default());
        assert!(why.contains("--class"), "{why}");
    }

    #[test]
    fn comments_blanks_crlf_bom_case_and_sha256sum_lines() {
        let input = b"\xEF\xBB\xBFD41D8CD98F00B204E9800998ECF8427E\r\n\
            # a comment\r\n\
            \r\n\
            \t  da39a3ee5e6b4b0d3255bfef95601890afd80709  \r\n\
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 *empty file.bin\n\
            \\e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  a\\\\b\n\
            d41d8cd98f00b204e9800998ecf8427e  truncated.txt";
        let (res, sink) = run(parse, input, &opts(Class::KnownGood, None));
        res.unwrap();
        assert!(sink.skipped.is_empty(), "{:?}", sink.skipped);
        let got: Vec<(DigestKind, String, Option<String>)> =
            sink.records.iter().map(|r| (r.digests[0].kind(), r.digests[0].hex(), r.meta.file_name.clone())).collect();
        assert_eq!(
            got,
            [
                (DigestKind::Md5, "d41d8cd98f00b204e9800998ecf8427e".into(), None),
                (DigestKind::Sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709".into(), None),
                (
                    DigestKind::Sha256,
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
                    Some("empty file.bin".into())
                ),
                (
                    DigestKind::Sha256,
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
                    Some("a\\b".into())
                ),
                (DigestKind::Md5, "d41d8cd98f00b204e9800998ecf8427e".into(), Some("truncated.txt".into())),
            ]
        );
        assert!(sink.records.iter().all(|r| r.class == Class::KnownGood));
    }

    #[test]
    fn bad_lines_are_skipped_with_their_numbers() {
        let mut input = b"d41d8cd98f00b204e9800998ecf8427\n\
            z41d8cd98f00b204e9800998ecf8427e\n\
            \"d41d8cd98f00b204e9800998ecf8427e\",\"x\"\n"
            .to_vec();
        input.extend(vec![b'a'; MAX_LINE + 10]);
        input.extend_from_slice(b"\n\xff\xfe\nd41d8cd98f00b204e9800998ecf8427e\n");
        let (res, sink) = run(parse, &input, &opts(Class::Malicious, None));
        res.unwrap();
        assert_eq!(sink.records.len(), 1);
        let lines: Vec<u64> = sink.skipped.iter().map(|s| s.0).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5]);
        assert!(sink.skipped[0].1.contains("got 31"), "{:?}", sink.skipped);
        assert!(sink.skipped[1].1.contains("not a hex digit"), "{:?}", sink.skipped);
        assert!(sink.skipped[3].1.contains("longer than"), "{:?}", sink.skipped);
        assert!(sink.skipped[4].1.contains("UTF-8"), "{:?}", sink.skipped);

        // A forced kind checks the length against that kind.
        let (_, sink) =
            run(parse, b"d41d8cd98f00b204e9800998ecf8427e\n", &opts(Class::Malicious, Some(DigestKind::Sha1)));
        assert!(sink.records.is_empty());
        assert!(sink.skipped[0].1.contains("expected 40 hex characters"), "{:?}", sink.skipped);
    }

    #[test]
    fn empty_input_is_an_empty_list_and_the_sink_can_abort() {
        let (res, sink) = run(parse, b"", &opts(Class::Malicious, None));
        assert_eq!(res.unwrap(), FeedInfo::default());
        assert!(sink.records.is_empty() && sink.skipped.is_empty());

        let mut sink = test_sink::TestSink { abort_after_skipped: Some(2), ..Default::default() };
        let mut input: &[u8] = b"x\ny\nz\n";
        let err = parse(&mut input, &opts(Class::Malicious, None), &mut sink).unwrap_err();
        assert!(matches!(err, Error::Aborted(_)), "{err}");
        assert_eq!(sink.skipped.len(), 2);
    }
}

//! Feed parsers: one module per public data format, each turning a file into [`FeedRecord`]s.
//!
//! A parser reads, validates and hands records to a [`Sink`]; it never touches the database (the store owns
//! versions and transactions) and never prints. Bad lines are normal input: a parser reports each one to
//! [`Sink::skipped`] with its line number and goes on; the sink decides whether to abort (`--strict`, or too
//! many bad lines). Shared here: the format names, the options, the error type, a line reader that caps line
//! length (a giant line is skipped without being buffered), and [`open_input`], which undoes gzip and reads
//! the first entry of a zip archive, with a cap on how far a file may expand.

pub mod catalog;
pub mod hashlist;
pub mod hashlookup;
pub mod loldrivers;
pub mod malwarebazaar;
pub mod nsrl;
pub mod xcyclopedia;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use super::{Class, DigestKind, FeedRecord};

/// The feed formats `db import --format` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum FeedFormat {
    /// LOLDrivers `drivers.json` (array of driver entries with KnownVulnerableSamples).
    LoldriversJson,
    /// LOLDrivers `drivers.csv` (one row per driver entry, hashes joined with ", ").
    LoldriversCsv,
    /// MalwareBazaar CSV export (recent or full; `#` comment lines, `n/a` values).
    MalwarebazaarCsv,
    /// NIST NSRL RDSv3 SQLite database (minimal or full).
    NsrlRds3,
    /// CIRCL hashlookup JSON records, one per line.
    Hashlookup,
    /// The DCSO Bloom filter CIRCL publishes (SHA-1, queried in place).
    HashlookupBloom,
    /// xcyclopedia CSV (Windows binaries: path, signer, original name, description).
    Xcyclopedia,
    /// One hash a line (with `--class` and `--source`).
    Hashlist,
    /// Windows catalog files (a `.cat` file, or a directory of them): members of catalogs whose signature
    /// verifies, keyed by image hash.
    Catalog,
}

impl FeedFormat {
    /// The name used on the command line and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedFormat::LoldriversJson => "loldrivers-json",
            FeedFormat::LoldriversCsv => "loldrivers-csv",
            FeedFormat::MalwarebazaarCsv => "malwarebazaar-csv",
            FeedFormat::NsrlRds3 => "nsrl-rds3",
            FeedFormat::Hashlookup => "hashlookup",
            FeedFormat::HashlookupBloom => "hashlookup-bloom",
            FeedFormat::Xcyclopedia => "xcyclopedia",
            FeedFormat::Hashlist => "hashlist",
            FeedFormat::Catalog => "catalog",
        }
    }

    /// The source name a feed of this format gets when `--source` is not given.
    pub fn default_source(self) -> Option<&'static str> {
        match self {
            FeedFormat::LoldriversJson | FeedFormat::LoldriversCsv => Some("loldrivers"),
            FeedFormat::MalwarebazaarCsv => Some("malwarebazaar"),
            FeedFormat::NsrlRds3 => Some("nsrl"),
            FeedFormat::Hashlookup => Some("hashlookup"),
            FeedFormat::HashlookupBloom => Some("hashlookup-bloom"),
            FeedFormat::Xcyclopedia => Some("xcyclopedia"),
            FeedFormat::Hashlist => None,
            FeedFormat::Catalog => Some("catalog"),
        }
    }
}

/// Options a parser honours.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// The class to give records (required by `hashlist`; overrides the feed's own class elsewhere).
    pub class: Option<Class>,
    /// The digest kind of a hash list (by default told from each line's length: 32/40/64 hex characters).
    pub kind: Option<DigestKind>,
    /// Extra trust anchors (PEM or DER files) for verifying catalogs, besides the bundled ones.
    pub trust: Vec<std::path::PathBuf>,
}

/// What a feed says about itself (its data set version and date), when it says anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedInfo {
    /// The data set's own version ("2024.03.1", "5554706c", …).
    pub version: Option<String>,
    /// The data set's date (RFC 3339 or `YYYY-MM-DD`, as precise as the feed says).
    pub date: Option<String>,
}

/// Where parsed records go.
pub trait Sink {
    /// Take one record. An error aborts the parse (the parser returns it unchanged).
    fn record(&mut self, rec: FeedRecord) -> Result<(), Error>;
    /// A line (or entry) that was skipped, and why. An error aborts the parse.
    fn skipped(&mut self, line: u64, reason: &str) -> Result<(), Error>;
}

/// Why a feed could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The file is not in the format asked for (a wrong header, not JSON, not SQLite).
    #[error("not a {format} file: {why}")]
    WrongFormat {
        /// The format asked for.
        format: &'static str,
        /// What was wrong.
        why: String,
    },
    /// A compressed feed expanded beyond the cap.
    #[error(
        "the compressed feed expands beyond {limit} bytes (a decompression bomb?); raise --max-expanded if it is genuine"
    )]
    ExpandsTooFar {
        /// The cap, in bytes.
        limit: u64,
    },
    /// The sink stopped the parse (strict mode, too many bad lines, a store error).
    #[error("{0}")]
    Aborted(String),
    /// The NSRL database could not be read.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// Longest line (or CSV record) a parser accepts; a longer one is skipped as bad input.
pub const MAX_LINE: usize = 1 << 20;

/// Reads lines with a cap on their length, strips a UTF-8 BOM at the start and a trailing `\r`.
pub struct Lines<R> {
    inner: R,
    line_no: u64,
    buf: Vec<u8>,
}

/// One line from [`Lines`].
pub enum Line<'a> {
    /// A line (without its end-of-line bytes), with its 1-based number.
    Text(u64, &'a str),
    /// A line that is longer than [`MAX_LINE`] or not UTF-8 (skipped without being buffered whole).
    Bad(u64, &'static str),
}

impl<R: BufRead> Lines<R> {
    /// Wrap a reader.
    pub fn new(inner: R) -> Self {
        Lines { inner, line_no: 0, buf: Vec::new() }
    }

    /// The next line, or `None` at the end of input.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let mut too_long = false;
        let mut saw_any = false;
        loop {
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            saw_any = true;
            let (take, done) = match memchr(b'\n', chunk) {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            if !too_long {
                if self.buf.len() + take > MAX_LINE + 2 {
                    too_long = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(&chunk[..take]);
                }
            }
            self.inner.consume(take);
            if done {
                break;
            }
        }
        if !saw_any {
            return Ok(None);
        }
        self.line_no += 1;
        if too_long {
            return Ok(Some(Line::Bad(self.line_no, "line longer than 1 MiB")));
        }
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        let mut start = 0;
        if self.line_no == 1 && self.buf.starts_with(b"\xEF\xBB\xBF") {
            start = 3;
        }
        match std::str::from_utf8(&self.buf[start..]) {
            Ok(s) => Ok(Some(Line::Text(self.line_no, s))),
            Err(_) => Ok(Some(Line::Bad(self.line_no, "not UTF-8"))),
        }
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// Sees every raw byte read from a feed file, in order.
pub type Observer = Box<dyn FnMut(&[u8]) + Send>;

/// Default cap on the decompressed size of a compressed feed (NSRL and MalwareBazaar dumps are a few GB).
pub const DEFAULT_MAX_EXPANDED: u64 = 64 << 30;

/// Open a feed file for reading, undoing gzip (told by its magic bytes, not its name). `max_expanded` caps the
/// decompressed size; `observer` sees every raw (compressed) byte read, in order (for a progress bar and a
/// digest of the file's content).
pub fn open_input(path: &Path, max_expanded: u64, observer: Observer) -> io::Result<Box<dyn BufRead + Send>> {
    let mut file = File::open(path)?;
    let mut magic = [0u8; 4];
    let n = read_full(&mut file, &mut magic)?;
    io::Seek::seek(&mut file, io::SeekFrom::Start(0))?;
    let counted = Observed { inner: file, observer };
    let capped = |inner: Box<dyn Read + Send>| -> Box<dyn BufRead + Send> {
        Box::new(BufReader::with_capacity(1 << 16, Capped { inner, left: max_expanded, limit: max_expanded }))
    };
    if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Ok(capped(Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 16, counted)))))
    } else if n == 4 && magic == *b"PK\x03\x04" {
        let mut raw = BufReader::with_capacity(1 << 16, counted);
        let entry = zip_first_entry(&mut raw)?;
        match entry.method {
            8 => Ok(capped(Box::new(flate2::bufread::DeflateDecoder::new(raw)))),
            0 if entry.size_known => Ok(capped(Box::new(raw.take(entry.compressed_size)))),
            m => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("zip entry {} uses compression method {m}; only deflate and stored are read", entry.name),
            )),
        }
    } else {
        Ok(Box::new(BufReader::with_capacity(1 << 16, counted)))
    }
}

/// The local header of a zip archive's first entry (APPNOTE 4.3.7), read from the stream.
struct ZipEntry {
    name: String,
    method: u16,
    compressed_size: u64,
    size_known: bool,
}

/// Read the first local file header of a zip archive, leaving the reader at the entry's data. The archives
/// feeds come in (MalwareBazaar's `full.zip`) hold one CSV file; only that first entry is read.
fn zip_first_entry(r: &mut impl Read) -> io::Result<ZipEntry> {
    let mut h = [0u8; 30];
    r.read_exact(&mut h)?;
    let u16_at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let flags = u16_at(6);
    if flags & 1 != 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "the zip entry is encrypted"));
    }
    let method = u16_at(8);
    let compressed = u32_at(18);
    let (name_len, extra_len) = (usize::from(u16_at(26)), usize::from(u16_at(28)));
    let mut name = vec![0u8; name_len];
    r.read_exact(&mut name)?;
    io::copy(&mut r.take(extra_len as u64), &mut io::sink())?;
    // Bit 3: sizes are in a data descriptor after the data (fine for deflate, which ends by itself);
    // 0xffffffff: the size is in a ZIP64 extra field, which this reader does not parse.
    let size_known = flags & 8 == 0 && compressed != u32::MAX;
    Ok(ZipEntry {
        name: String::from_utf8_lossy(&name).into_owned(),
        method,
        compressed_size: u64::from(compressed),
        size_known,
    })
}

/// Read until `buf` is full or the input ends; returns how many bytes were read.
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

struct Observed<R> {
    inner: R,
    observer: Observer,
}

impl<R: Read> Read for Observed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.observer)(&buf[..n]);
        Ok(n)
    }
}

/// A reader that fails once more than `limit` bytes came out of it.
struct Capped<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(io::Error::other(Error::ExpandsTooFar { limit: self.limit }));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8]) -> Vec<String> {
        let mut lines = Lines::new(input);
        let mut out = Vec::new();
        while let Some(l) = lines.next().unwrap() {
            out.push(match l {
                Line::Text(n, s) => format!("{n}:{s}"),
                Line::Bad(n, why) => format!("{n}!{why}"),
            });
        }
        out
    }

    #[test]
    fn lines_strip_bom_crlf_and_keep_a_truncated_last_line() {
        assert_eq!(collect(b"\xEF\xBB\xBFa\r\nb\n\nc"), ["1:a", "2:b", "3:", "4:c"]);
        assert_eq!(collect(b""), Vec::<String>::new());
    }

    #[test]
    fn a_giant_line_is_skipped_not_buffered() {
        let mut input = vec![b'x'; MAX_LINE * 3];
        input.extend_from_slice(b"\nok\n\xff\xfe\n");
        assert_eq!(collect(&input), ["1!line longer than 1 MiB", "2:ok", "3!not UTF-8"]);
    }

    /// A one-entry zip archive as MalwareBazaar publishes its full dump: local header, raw deflate data.
    fn zip_of(name: &str, content: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut deflated = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        deflated.write_all(content).unwrap();
        let data = deflated.finish().unwrap();
        let mut z = Vec::new();
        z.extend_from_slice(b"PK\x03\x04");
        z.extend_from_slice(&20u16.to_le_bytes()); // version needed
        z.extend_from_slice(&0u16.to_le_bytes()); // flags
        z.extend_from_slice(&8u16.to_le_bytes()); // deflate
        z.extend_from_slice(&[0; 8]); // time, date, crc-32 (not checked)
        z.extend_from_slice(&(data.len() as u32).to_le_bytes());
        z.extend_from_slice(&(content.len() as u32).to_le_bytes());
        z.extend_from_slice(&(name.len() as u16).to_le_bytes());
        z.extend_from_slice(&0u16.to_le_bytes());
        z.extend_from_slice(name.as_bytes());
        z.extend_from_slice(&data);
        // A central directory would follow; the reader stops at the end of the deflate stream.
        z.extend_from_slice(b"PK\x01\x02 central directory...");
        z
    }

    #[test]
    fn a_zip_archive_is_read_from_its_first_entry_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full.zip");
        let content = "# header\nline one\n".repeat(10_000);
        std::fs::write(&path, zip_of("full.csv", content.as_bytes())).unwrap();
        let mut s = String::new();
        open_input(&path, 1 << 30, Box::new(|_: &[u8]| {})).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, content);
        let err = open_input(&path, 1000, Box::new(|_: &[u8]| {})).unwrap().read_to_string(&mut s).unwrap_err();
        assert!(err.to_string().contains("expands beyond 1000 bytes"), "{err}");
        // An encrypted entry, or a method other than deflate or stored: a clear error.
        let mut bad = zip_of("x.csv", b"abc");
        bad[8] = 12; // bzip2
        std::fs::write(&path, &bad).unwrap();
        let err = open_input(&path, 1 << 20, Box::new(|_: &[u8]| {})).err().unwrap();
        assert!(err.to_string().contains("compression method 12"), "{err}");
        bad[6] = 1;
        std::fs::write(&path, &bad).unwrap();
        let err = open_input(&path, 1 << 20, Box::new(|_: &[u8]| {})).err().unwrap();
        assert!(err.to_string().contains("encrypted"), "{err}");
    }

    #[test]
    fn gzip_is_undone_and_capped() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feed.gz");
        let mut gz = flate2::write::GzEncoder::new(File::create(&path).unwrap(), flate2::Compression::fast());
        gz.write_all(&vec![b'a'; 1 << 20]).unwrap();
        gz.finish().unwrap();
        let mut s = String::new();
        open_input(&path, 2 << 20, Box::new(|_: &[u8]| {})).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s.len(), 1 << 20);
        let err = open_input(&path, 1000, Box::new(|_: &[u8]| {})).unwrap().read_to_string(&mut s).unwrap_err();
        assert!(err.to_string().contains("expands beyond 1000 bytes"), "{err}");
    }
}

//! The DCSO Bloom filter (format v1), queried in place: CIRCL publishes its hashlookup data set as one
//! (`hashlookup-full.bloom`, about 1 GB, members the upper-case SHA-1 hex digests as ASCII).
//!
//! This module owns the file format: [`BloomFilter::open`] reads and validates the 48-byte header and keeps
//! the file open; [`BloomFilter::contains`] computes the `k` bit indices (FNV-1 64, then `k` multiplications
//! modulo the largest prime below 2^64, exactly as `github.com/DCSO/bloom` does) and reads only the 64-bit
//! words holding them, with positional reads, so a query costs at most `k` small reads and the filter is never
//! loaded whole. [`write_bloom`] writes the same format (for tests and benchmarks). It does not own where the
//! filter lives, how a hit is weighed in a verdict (a hit is "probably known", never proof), nor the newer poppy
//! v2 format (recognised, refused with a clear error), and it never decompresses (a gzip file is refused).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::{Digest, DigestKind};

/// Length of the header: flags, `n`, `p`, `k`, `m`, `N`, eight bytes each.
const HEADER_LEN: u64 = 48;
/// The largest prime below 2^64: the modulus of the DCSO hash chain.
const MOD: u64 = 18_446_744_073_709_551_557;
/// The multiplier of the DCSO hash chain.
const G: u64 = 18_446_744_073_709_550_147;
/// FNV-1 64 offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1 64 prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// Most hash functions a filter may use (CIRCL's uses far fewer; a larger `k` means a damaged header).
const MAX_K: u64 = 64;

/// Why a Bloom filter could not be opened or queried.
#[derive(Debug, thiserror::Error)]
pub enum BloomError {
    /// Reading the file failed.
    #[error("reading the Bloom filter failed: {0}")]
    Io(#[from] io::Error),
    /// The file is not a DCSO Bloom filter (an empty file, an unknown version byte, an impossible header).
    #[error("not a DCSO Bloom filter: {0}")]
    NotBloom(String),
    /// A Bloom filter format this reader does not read (poppy v2).
    #[error("{0}")]
    Unsupported(String),
    /// The file is gzip-compressed.
    #[error("the Bloom filter is gzip-compressed: decompress it first (gunzip)")]
    Compressed,
    /// The file is shorter than its header says.
    #[error("truncated Bloom filter: expected at least {expected} bytes, got {got} (an incomplete download?)")]
    Truncated {
        /// Bytes the header (or the header itself) needs.
        expected: u64,
        /// Bytes the file has.
        got: u64,
    },
}

/// The sizes and counts a DCSO v1 header gives.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Header {
    n: u64,
    p: f64,
    k: u64,
    m: u64,
    count: u64,
}

/// An open DCSO v1 Bloom filter: the validated header, and the file, read word by word on each query.
#[derive(Debug)]
pub struct BloomFilter {
    header: Header,
    #[cfg(unix)]
    file: File,
    #[cfg(not(unix))]
    file: std::sync::Mutex<File>,
}

impl BloomFilter {
    /// Open a filter: read and validate its header (version 1, `k` in 1..=64, `m` > 0, `p` in (0, 1), the
    /// file at least as long as the bit array) and keep the file open. Reads 48 bytes, whatever the file's size.
    pub fn open(path: &Path) -> Result<BloomFilter, BloomError> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let mut head = [0u8; HEADER_LEN as usize];
        let got = read_prefix(&file, &mut head)?;
        let header = parse_header(&head[..got], len)?;
        Ok(BloomFilter {
            header,
            #[cfg(unix)]
            file,
            #[cfg(not(unix))]
            file: std::sync::Mutex::new(file),
        })
    }

    /// `n`: the number of elements the filter was sized for.
    pub fn capacity(&self) -> u64 {
        self.header.n
    }

    /// `p`: the false-positive rate the filter was sized for (at `n` elements).
    pub fn fp_rate(&self) -> f64 {
        self.header.p
    }

    /// `k`: the number of bits set per element.
    pub fn hash_count(&self) -> u64 {
        self.header.k
    }

    /// `m`: the number of bits in the filter.
    pub fn bits(&self) -> u64 {
        self.header.m
    }

    /// `N`: the number of elements inserted (as the header says; duplicates counted).
    pub fn elements(&self) -> u64 {
        self.header.count
    }

    /// Whether `value` (its bytes, exactly as inserted) is probably a member: `false` is certain, `true` is
    /// wrong with about the filter's false-positive rate. Reads each 64-bit word holding one of the `k` bits
    /// once, in file order, and stops at the first word missing a bit.
    pub fn contains(&self, value: &[u8]) -> Result<bool, BloomError> {
        let Header { k, m, .. } = self.header;
        // (word index, bits wanted in it); k <= 64 by validation.
        let mut wants = [(0u64, 0u64); MAX_K as usize];
        let mut h = fnv1_64(value) % MOD;
        for want in wants.iter_mut().take(k as usize) {
            h = h.wrapping_mul(G) % MOD;
            let idx = h % m;
            *want = (idx / 64, 1u64 << (idx % 64));
        }
        let wants = &mut wants[..k as usize];
        wants.sort_unstable_by_key(|w| w.0);
        let mut i = 0;
        while i < wants.len() {
            let word_idx = wants[i].0;
            let mut mask = 0u64;
            while i < wants.len() && wants[i].0 == word_idx {
                mask |= wants[i].1;
                i += 1;
            }
            if self.read_word(word_idx)? & mask != mask {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether a SHA-1 digest is probably a member, as CIRCL's hashlookup filter stores them: the upper-case
    /// hex digest as ASCII. A digest of another kind is never a member (`Ok(false)`, nothing read).
    pub fn contains_sha1(&self, sha1: &Digest) -> Result<bool, BloomError> {
        if sha1.kind() != DigestKind::Sha1 {
            return Ok(false);
        }
        self.contains(sha1.hex().to_ascii_uppercase().as_bytes())
    }

    /// Read bit-array word `word_idx` (little-endian).
    fn read_word(&self, word_idx: u64) -> Result<u64, BloomError> {
        let mut buf = [0u8; 8];
        let offset = HEADER_LEN + word_idx * 8;
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            self.file.read_exact_at(&mut buf, offset)?;
        }
        #[cfg(not(unix))]
        {
            use std::io::{Read, Seek, SeekFrom};
            let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
            file.seek(SeekFrom::Start(offset))?;
            file.read_exact(&mut buf)?;
        }
        Ok(u64::from_le_bytes(buf))
    }
}

/// Read up to `buf.len()` bytes from the start of `file`; returns how many were read (fewer at end of file).
fn read_prefix(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    let mut r = file;
    super::feeds::read_full(&mut r, buf)
}

/// Validate the first (up to 48) bytes of a file of `len` bytes.
fn parse_header(head: &[u8], len: u64) -> Result<Header, BloomError> {
    if head.is_empty() {
        return Err(BloomError::NotBloom("the file is empty".into()));
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return Err(BloomError::Compressed);
    }
    match head[0] {
        1 => {}
        2 => {
            return Err(BloomError::Unsupported(
                "poppy v2 Bloom filters are not supported: only the DCSO v1 format (version byte 1) is read".into(),
            ));
        }
        v => {
            return Err(BloomError::NotBloom(format!("version byte {v} (a DCSO v1 filter starts with byte 1)")));
        }
    }
    if (head.len() as u64) < HEADER_LEN {
        return Err(BloomError::Truncated { expected: HEADER_LEN, got: len });
    }
    let word = |i: usize| u64::from_le_bytes(head[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    let header = Header { n: word(1), p: f64::from_bits(word(2)), k: word(3), m: word(4), count: word(5) };
    if header.n == 0 {
        return Err(BloomError::NotBloom("capacity n is 0".into()));
    }
    if !(header.p > 0.0 && header.p < 1.0) {
        return Err(BloomError::NotBloom(format!("false-positive rate p = {} is not in (0, 1)", header.p)));
    }
    if !(1..=MAX_K).contains(&header.k) {
        return Err(BloomError::NotBloom(format!("k = {} hash functions (expected 1 to {MAX_K})", header.k)));
    }
    if header.m == 0 {
        return Err(BloomError::NotBloom("m = 0 bits".into()));
    }
    // ceil(m / 64) <= 2^58 words: the byte count cannot overflow.
    let expected = HEADER_LEN + 8 * header.m.div_ceil(64);
    if len < expected {
        return Err(BloomError::Truncated { expected, got: len });
    }
    Ok(header)
}

/// FNV-1 64 (multiply, then xor; not FNV-1a), as Go's `hash/fnv.New64`.
fn fnv1_64(value: &[u8]) -> u64 {
    value.iter().fold(FNV_OFFSET, |h, &b| h.wrapping_mul(FNV_PRIME) ^ u64::from(b))
}

/// The `k` bit indices (each below `m`) of `value` in a filter of `m` bits, in the order DCSO computes them:
/// `h = FNV-1 64(value) mod P`, then `k` times `h = (h · G mod 2^64) mod P`, index `h mod m` (`P` the largest
/// prime below 2^64). Empty when `m` is 0.
pub fn fingerprint(value: &[u8], k: u64, m: u64) -> Vec<u64> {
    if m == 0 {
        return Vec::new();
    }
    let mut h = fnv1_64(value) % MOD;
    (0..k)
        .map(|_| {
            h = h.wrapping_mul(G) % MOD;
            h % m
        })
        .collect()
}

/// The bits `m` and hash count `k` DCSO gives a filter for `n` elements at false-positive rate `p`:
/// `m = |ceil(n · ln p / (ln 2)^2)|`, `k = ceil(ln 2 · m / n)`. (The ceiling is taken of the negative
/// quotient, as `DCSO/bloom` `Initialize` does, so `m` is the quotient's magnitude rounded down.)
pub fn sizing(n: u64, p: f64) -> (u64, u64) {
    let ln2 = std::f64::consts::LN_2;
    let m = (n as f64 * p.ln() / (ln2 * ln2)).ceil().abs();
    let k = (ln2 * m / n as f64).ceil();
    (m as u64, k as u64)
}

/// Write a DCSO v1 filter sized for `n` elements at false-positive rate `p` (see [`sizing`]) holding
/// `members`: flags 1, `n`, `p`, `k`, `m`, `N` (the number of members given, duplicates counted), then the
/// bit array as little-endian 64-bit words. Builds the bit array in memory (`m / 8` bytes): meant for tests,
/// benchmarks and small local filters. Fails with `InvalidInput` when `n` is 0, `p` is not in (0, 1), or the
/// sizing gives no bits or more than 64 hash functions.
pub fn write_bloom(path: &Path, n: u64, p: f64, members: impl IntoIterator<Item = impl AsRef<[u8]>>) -> io::Result<()> {
    let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
    if n == 0 {
        return Err(invalid("a Bloom filter needs a capacity n > 0".into()));
    }
    if !(p > 0.0 && p < 1.0) {
        return Err(invalid(format!("false-positive rate p = {p} is not in (0, 1)")));
    }
    let (m, k) = sizing(n, p);
    if m == 0 || !(1..=MAX_K).contains(&k) {
        return Err(invalid(format!("n = {n}, p = {p} gives m = {m} bits and k = {k} hash functions")));
    }
    let words = usize::try_from(m.div_ceil(64)).map_err(|_| invalid(format!("m = {m} bits does not fit in memory")))?;
    let mut bits = vec![0u64; words];
    let mut count = 0u64;
    for member in members {
        for idx in fingerprint(member.as_ref(), k, m) {
            bits[(idx / 64) as usize] |= 1u64 << (idx % 64);
        }
        count += 1;
    }
    let mut out = BufWriter::new(File::create(path)?);
    for field in [1u64, n, p.to_bits(), k, m, count] {
        out.write_all(&field.to_le_bytes())?;
    }
    for w in &bits {
        out.write_all(&w.to_le_bytes())?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha1::Digest as _;

    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/feeds/bloom");

    /// The DCSO test vector `test.bloom` (n=1000, p=1e-6, holding foo, bar, baz), decoded from its hex dump.
    fn test_vector() -> Vec<u8> {
        let hex = std::fs::read_to_string(format!("{DATA}/test.bloom.hex.txt")).unwrap();
        let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        assert_eq!(digits.len() % 2, 0);
        digits.chunks(2).map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap()).collect()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn sha1_upper(i: u64) -> (String, Digest) {
        let raw = sha1::Sha1::digest(i.to_le_bytes());
        let d = Digest::from_bytes(DigestKind::Sha1, &raw).unwrap();
        (d.hex().to_ascii_uppercase(), d)
    }

    #[test]
    fn the_dcso_test_vector_decodes_and_answers() {
        let bytes = test_vector();
        assert_eq!(bytes.len(), 3648);
        assert_eq!(
            crate::hex::encode(&sha2::Sha256::digest(&bytes)),
            "f49c7cd2901831410a329738ba98c3d193e2921e52133b6d67b885b17cfc89ab"
        );
        let dir = tempfile::tempdir().unwrap();
        let bloom = BloomFilter::open(&write(dir.path(), "test.bloom", &bytes)).unwrap();
        assert_eq!(
            (bloom.capacity(), bloom.fp_rate(), bloom.hash_count(), bloom.bits(), bloom.elements()),
            (1000, 1e-6, 20, 28755, 3)
        );
        let input = std::fs::read_to_string(format!("{DATA}/test-input.txt")).unwrap();
        let members: Vec<&str> = input.lines().collect();
        assert_eq!(members, ["foo", "bar", "baz"]);
        for m in members {
            assert!(bloom.contains(m.as_bytes()).unwrap(), "{m} is a member");
        }
        for not in ["", "12345", "FOO", "foo\n"] {
            assert!(!bloom.contains(not.as_bytes()).unwrap(), "{not:?} is not a member");
        }
    }

    #[test]
    fn fingerprint_and_sizing_match_dcso() {
        assert_eq!(sizing(100_000, 0.01), (958_505, 7));
        assert_eq!(sizing(1000, 1e-6), (28_755, 20));
        assert_eq!(fingerprint(b"bar", 7, 958_505), [20311, 36825, 412_501, 835_777, 658_914, 853_361, 307_361]);
        // The published vector file says the same.
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{DATA}/fingerprint_vectors.json")).unwrap())
                .unwrap();
        let want: Vec<u64> = json["fingerprint"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        let (m, k) = (json["filter"]["m"].as_u64().unwrap(), json["filter"]["k"].as_u64().unwrap());
        assert_eq!(fingerprint(json["value"].as_str().unwrap().as_bytes(), k, m), want);
        assert!(fingerprint(b"x", 3, 0).is_empty());
        // FNV-1 (not 1a) of "a": the published FNV-1 64 test value.
        assert_eq!(fnv1_64(b"a"), 0xaf63_bd4c_8601_b7be);
    }

    #[test]
    fn written_filters_round_trip_with_about_the_asked_false_positive_rate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sha1.bloom");
        let members: Vec<String> = (0..10_000).map(|i| sha1_upper(i).0).collect();
        write_bloom(&path, 10_000, 0.01, &members).unwrap();
        let bloom = BloomFilter::open(&path).unwrap();
        assert_eq!((bloom.capacity(), bloom.elements(), bloom.fp_rate()), (10_000, 10_000, 0.01));
        assert_eq!((bloom.bits(), bloom.hash_count()), sizing(10_000, 0.01));
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(len, 48 + 8 * bloom.bits().div_ceil(64));
        for i in 0..10_000 {
            let (hex, digest) = sha1_upper(i);
            assert!(bloom.contains(hex.as_bytes()).unwrap());
            assert!(bloom.contains_sha1(&digest).unwrap());
        }
        let false_positives = (10_000..20_000).filter(|&i| bloom.contains_sha1(&sha1_upper(i).1).unwrap()).count();
        // p = 0.01 over 10,000 trials: about 100 expected.
        assert!(false_positives < 200, "{false_positives} false positives in 10,000");
        // Lower-case hex is a different string: (almost surely) not a member.
        let lower_hits = (0..1000).filter(|&i| bloom.contains(sha1_upper(i).1.hex().as_bytes()).unwrap()).count();
        assert!(lower_hits < 50, "{lower_hits}");
        // Another digest kind is never a member.
        let md5 = Digest::from_bytes(DigestKind::Md5, &[0u8; 16]).unwrap();
        assert!(!bloom.contains_sha1(&md5).unwrap());
    }

    #[test]
    fn bad_files_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let good = test_vector();
        let msg = |path: &Path| BloomFilter::open(path).unwrap_err().to_string();

        let empty = msg(&write(dir.path(), "empty", b""));
        assert_eq!(empty, "not a DCSO Bloom filter: the file is empty");

        let half = msg(&write(dir.path(), "half", &good[..good.len() / 2]));
        assert_eq!(half, "truncated Bloom filter: expected at least 3648 bytes, got 1824 (an incomplete download?)");
        let short = msg(&write(dir.path(), "short", &good[..20]));
        assert!(short.contains("expected at least 48 bytes, got 20"), "{short}");

        let mut v2 = good.clone();
        v2[0] = 2;
        assert!(msg(&write(dir.path(), "v2", &v2)).starts_with("poppy v2 Bloom filters are not supported"));

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&good).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(
            msg(&write(dir.path(), "gz", &gz)),
            "the Bloom filter is gzip-compressed: decompress it first (gunzip)"
        );

        let text = msg(&write(dir.path(), "text", b"foo\nbar\nbaz\n"));
        assert!(text.starts_with("not a DCSO Bloom filter: version byte 102"), "{text}");

        let field = |i: usize, v: u64| {
            let mut b = good.clone();
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
            b
        };
        assert!(msg(&write(dir.path(), "k0", &field(3, 0))).contains("k = 0 hash functions"));
        assert!(msg(&write(dir.path(), "k65", &field(3, 65))).contains("k = 65 hash functions"));
        assert!(msg(&write(dir.path(), "m0", &field(4, 0))).contains("m = 0 bits"));
        assert_eq!(
            msg(&write(dir.path(), "mhuge", &field(4, u64::MAX))),
            format!(
                "truncated Bloom filter: expected at least {} bytes, got 3648 (an incomplete download?)",
                48 + (8u64 << 58)
            )
        );
        assert!(msg(&write(dir.path(), "mbig", &field(4, 1 << 40))).starts_with("truncated Bloom filter"));
        assert!(msg(&write(dir.path(), "p1", &field(2, 1f64.to_bits()))).contains("p = 1 is not in (0, 1)"));
        assert!(msg(&write(dir.path(), "pnan", &field(2, f64::NAN.to_bits()))).contains("p = NaN"));
        assert!(msg(&write(dir.path(), "n0", &field(1, 0))).contains("capacity n is 0"));

        let missing = BloomFilter::open(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(missing, BloomError::Io(_)), "{missing}");
    }

    #[test]
    fn a_file_cut_after_opening_gives_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "test.bloom", &test_vector());
        let bloom = BloomFilter::open(&path).unwrap();
        File::options().write(true).open(&path).unwrap().set_len(48).unwrap();
        let err = bloom.contains(b"foo").unwrap_err();
        assert!(err.to_string().starts_with("reading the Bloom filter failed:"), "{err}");
    }

    #[test]
    fn the_writer_refuses_impossible_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.bloom");
        let none: [&[u8]; 0] = [];
        for (n, p) in [(0, 0.01), (10, 0.0), (10, 1.0), (10, f64::NAN), (1, 0.9), (10, 1e-30)] {
            let err = write_bloom(&path, n, p, none).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "n={n} p={p}: {err}");
        }
    }
}

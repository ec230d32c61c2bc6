//! Store benchmarks: import rate, lookup latency and size per row on stores of realistic size.
//!
//! `cargo bench --bench store` (optionally `-- ROWS`, default 10,000,000) runs:
//! 1. a hash-list import: ROWS random SHA-256 lines written to a file, then `SqliteStore::import` (the code
//!    `filerep db import --format hashlist` runs: parse, stage, sort into the index, switch) → rows/s;
//! 2. an NSRL-shaped import: an RDSv3 minimal database with ROWS/5 FILE rows (SHA-256, SHA-1, MD5, name,
//!    size, package) over 2,000 packages, imported with `--format nsrl-rds3` → rows/s;
//! 3. point lookups on the hash-list store: a file's full digest set (SHA-256, SHA-1, MD5, both
//!    authentihashes, imphash) per lookup, half of them present, warm cache → p50/p99/max in µs;
//! 4. store size on disk per row.
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it runs once on 20,000 rows as a smoke test.
//! Results are written to stdout as a Markdown table; docs/performance.md keeps the figures.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use filerep::store::feeds::{DEFAULT_MAX_EXPANDED, FeedFormat, ParseOptions};
use filerep::store::sqlite::{ImportRequest, Mode, SqliteStore};
use filerep::store::{Class, Digest, DigestKind};

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn hex(&mut self, bytes: usize) -> String {
        let mut s = String::with_capacity(bytes * 2);
        while s.len() < bytes * 2 {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(bytes * 2);
        s
    }
}

fn request(format: FeedFormat, path: &Path, source: &str, class: Option<Class>) -> ImportRequest {
    ImportRequest {
        format,
        path: path.to_path_buf(),
        source: source.to_string(),
        version: None,
        date: None,
        options: ParseOptions { class, ..ParseOptions::default() },
        strict: false,
        max_expanded: DEFAULT_MAX_EXPANDED,
    }
}

fn size_on_disk(db: &Path) -> u64 {
    SqliteStore::open(db, Mode::Read).unwrap().info().unwrap().size
}

fn make_nsrl(path: &Path, files: u64, rng: &mut SplitMix) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
         CREATE TABLE FILE (sha256 VARCHAR NOT NULL, sha1 VARCHAR NOT NULL, md5 VARCHAR NOT NULL, crc32 VARCHAR NOT NULL,
                            file_name VARCHAR NOT NULL, file_size INTEGER NOT NULL, package_id INTEGER NOT NULL);
         CREATE TABLE MFG (manufacturer_id INTEGER NOT NULL, name VARCHAR NOT NULL);
         CREATE TABLE OS (operating_system_id INTEGER NOT NULL, name VARCHAR NOT NULL, version VARCHAR NOT NULL, manufacturer_id INTEGER NOT NULL);
         CREATE TABLE PKG (package_id INTEGER NOT NULL, name VARCHAR NOT NULL, version VARCHAR NOT NULL, operating_system_id INTEGER NOT NULL,
                           manufacturer_id INTEGER NOT NULL, language VARCHAR NOT NULL, application_type VARCHAR NOT NULL);
         CREATE TABLE VERSION (version VARCHAR UNIQUE NOT NULL, build_set VARCHAR NOT NULL, build_date TIMESTAMP NOT NULL,
                               release_date TIMESTAMP NOT NULL, description VARCHAR NOT NULL);
         INSERT INTO VERSION VALUES ('2024.03.1', 'modern', '2024-03-01', '2024-03-01', 'benchmark');
         INSERT INTO MFG VALUES (1, 'Microsoft Corporation');
         INSERT INTO OS VALUES (1, 'Windows', '10', 1);
         BEGIN;",
    )
    .unwrap();
    for p in 0..2000 {
        conn.execute(
            "INSERT INTO PKG VALUES (?1, ?2, '1.0', 1, 1, 'English', 'Operating System')",
            rusqlite::params![p, format!("Package {p}")],
        )
        .unwrap();
    }
    {
        let mut st = conn.prepare("INSERT INTO FILE VALUES (?1, ?2, ?3, '00000000', ?4, ?5, ?6)").unwrap();
        for i in 0..files {
            let (a, b, c) = (rng.hex(32).to_uppercase(), rng.hex(20).to_uppercase(), rng.hex(16).to_uppercase());
            st.execute(rusqlite::params![
                a,
                b,
                c,
                format!("file{}.dll", i % 50_000),
                (i % 100_000) as i64,
                (i % 2000) as i64
            ])
            .unwrap();
        }
    }
    conn.execute_batch("COMMIT").unwrap();
}

/// What `check` adds per file with a store: `reputation::consult` on a PE report (six digests, an original
/// name with hundreds of other versions in the store, eight imported libraries the store knows by name).
fn consult_latency(db: &Path, rng: &mut SplitMix, out: &mut impl Write) {
    use filerep::report::{Hashes, Import, PeInfo, Report, VersionInfo};
    let store = SqliteStore::open(db, Mode::Read).unwrap();
    let mut times = Vec::new();
    for i in 0..2000 {
        let mut report = Report {
            path: format!("file{}.dll", i % 50_000),
            fully_analysed: true,
            format: filerep::report::Format::Pe,
            hashes: Hashes {
                md5: Some(rng.hex(16)),
                sha1: Some(rng.hex(20)),
                sha256: Some(rng.hex(32)),
                imphash: Some(rng.hex(16)),
                authentihash_sha1: Some(rng.hex(20)),
                authentihash_sha256: Some(rng.hex(32)),
                ..Default::default()
            },
            pe: Some(PeInfo {
                version_info: Some(VersionInfo {
                    original_filename: Some(format!("file{}.dll", i % 50_000)),
                    ..Default::default()
                }),
                imports: (0..8)
                    .map(|k| Import { library: format!("FILE{}.DLL", (i * 8 + k) % 50_000), functions: vec![] })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let t = Instant::now();
        filerep::reputation::consult(&store, &mut report).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(report.reputation.as_ref().is_some_and(|r| !r.additional_versions.is_empty()));
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    writeln!(
        out,
        "| consult per file (check's store work) | {} PE reports | p50 {:.0} µs | p99 {:.0} µs | |",
        times.len(),
        pct(0.5),
        pct(0.99)
    )
    .unwrap();
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let rows: u64 =
        std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(if bench { 10_000_000 } else { 20_000 });
    let dir =
        tempfile::tempdir_in(std::env::var_os("FILEREP_BENCH_DIR").unwrap_or_else(|| std::env::temp_dir().into()))
            .unwrap();
    let mut rng = SplitMix(42);
    let mut out = std::io::stdout().lock();

    // 1. Hash list.
    let list = dir.path().join("list.txt");
    let mut sample = Vec::new();
    {
        let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&list).unwrap());
        for i in 0..rows {
            let h = rng.hex(32);
            if i % (rows / 1000).max(1) == 0 {
                sample.push(h.clone());
            }
            writeln!(f, "{h}").unwrap();
        }
    }
    let db = dir.path().join("list.sqlite");
    let mut store = SqliteStore::open(&db, Mode::Write).unwrap();
    let t = Instant::now();
    let s = store.import(&request(FeedFormat::Hashlist, &list, "list", Some(Class::Malicious)), &|_| {}).unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(s.digests, rows);
    drop(store);
    let size = size_on_disk(&db);
    writeln!(
        out,
        "| hash list import | {rows} rows | {secs:.1} s | {:.0} rows/s | {:.1} bytes/row |",
        rows as f64 / secs,
        size as f64 / rows as f64
    )
    .unwrap();

    // 3. Lookups on that store, warm: a file's six digests per lookup, half of the files present.
    let store = SqliteStore::open(&db, Mode::Read).unwrap();
    let mut lookups = Vec::new();
    for (i, h) in sample.iter().enumerate() {
        let sha256 = if i % 2 == 0 { h.clone() } else { rng.hex(32) };
        lookups.push(vec![
            Digest::parse_hex(DigestKind::Sha256, &sha256).unwrap(),
            Digest::parse_hex(DigestKind::Sha1, &rng.hex(20)).unwrap(),
            Digest::parse_hex(DigestKind::Md5, &rng.hex(16)).unwrap(),
            Digest::parse_hex(DigestKind::AuthentihashSha256, &rng.hex(32)).unwrap(),
            Digest::parse_hex(DigestKind::AuthentihashSha1, &rng.hex(20)).unwrap(),
            Digest::parse_hex(DigestKind::Imphash, &rng.hex(16)).unwrap(),
        ]);
    }
    for l in &lookups {
        store.lookup(l).unwrap(); // warm-up pass
    }
    let mut times = Vec::with_capacity(lookups.len() * 5);
    let mut found = 0;
    for _ in 0..5 {
        for l in &lookups {
            let t = Instant::now();
            let m = store.lookup(l).unwrap();
            times.push(t.elapsed().as_secs_f64() * 1e6);
            found += usize::from(!m.is_empty());
        }
    }
    assert_eq!(found, lookups.len().div_ceil(2) * 5);
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    writeln!(
        out,
        "| lookup, 6 digests | {} lookups on {rows} rows | p50 {:.1} µs | p99 {:.1} µs | max {:.1} µs |",
        times.len(),
        pct(0.5),
        pct(0.99),
        times[times.len() - 1]
    )
    .unwrap();
    drop(store);
    std::fs::remove_file(&list).unwrap();

    // 2. NSRL-shaped database.
    let files = (rows / 5).max(1000);
    let nsrl = dir.path().join("rds.db");
    make_nsrl(&nsrl, files, &mut rng);
    let db2 = dir.path().join("nsrl.sqlite");
    let mut store = SqliteStore::open(&db2, Mode::Write).unwrap();
    let t = Instant::now();
    let s = store.import(&request(FeedFormat::NsrlRds3, &nsrl, "nsrl", None), &|_| {}).unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(s.records, files);
    drop(store);
    consult_latency(&db2, &mut rng, &mut out);
    let size = size_on_disk(&db2);
    writeln!(
        out,
        "| NSRL RDSv3 import | {files} FILE rows ({} digests) | {secs:.1} s | {:.0} rows/s | {:.1} bytes/row |",
        s.digests,
        files as f64 / secs,
        size as f64 / files as f64
    )
    .unwrap();
}

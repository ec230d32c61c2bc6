//! Building one feed version's files: SQLite databases written once, then only ever read.
//!
//! An import writes its feed version into files of its own next to the store (`<store>.feeds/<id>.sqlite`,
//! and `<id>.p1.sqlite`… for the other partitions) with no journal and no fsync per transaction: nothing
//! reads them until they are complete, so a crash mid-build leaves only files that no `feeds` row points at,
//! which the next writer deletes. That is what makes an import fast (every page is written once, not to a WAL
//! first); the catalogue's one short switch transaction is what makes the version visible. Each file is
//! fsynced before that transaction.
//!
//! Digest rows are split by their first byte into partitions ([`part_of`]: one per core, at most
//! [`MAX_PARTS`]), collected in memory, sorted in runs of [`RUN_ROWS`] in all (spilled to scratch files
//! beyond that, so memory stays bounded whatever the feed's size), and at the end merged into each
//! partition's `d` table in key order, the partitions in parallel: SQLite builds a B-tree from sorted keys
//! several times faster than from random ones. Records with metadata go to the first file's `r` table as they
//! arrive; its name index is built at the end. Not here: the catalogue, versions and the switch
//! (`super::sqlite`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use super::{Class, Digest, DigestKind, FeedRecord, Meta};

/// The signer of a record, as the `r_signer` index and its queries spell it.
pub const SIGNER_EXPR: &str = "json_extract(meta, '$.signer')";

/// Digest rows sorted in memory at once (48 bytes each: about 100 MB).
pub const RUN_ROWS: usize = 2_000_000;

/// The schema of a partition file other than the first: its share of the digest rows.
pub const PART_SCHEMA: &str = "
    CREATE TABLE d (kind INTEGER NOT NULL, digest BLOB NOT NULL, record INTEGER NOT NULL, class INTEGER NOT NULL,
                    PRIMARY KEY (kind, digest, record)) WITHOUT ROWID;
";

/// The schema of a version's first file. `info` holds one row: the digest kinds present (a bit per kind
/// code) and the counts.
pub const FEED_SCHEMA: &str = "
    CREATE TABLE d (kind INTEGER NOT NULL, digest BLOB NOT NULL, record INTEGER NOT NULL, class INTEGER NOT NULL,
                    PRIMARY KEY (kind, digest, record)) WITHOUT ROWID;
    CREATE TABLE r (id INTEGER PRIMARY KEY, class INTEGER NOT NULL, name_key TEXT, best_kind INTEGER, best BLOB, meta TEXT);
    CREATE TABLE info (kinds INTEGER NOT NULL, digests INTEGER NOT NULL, records INTEGER NOT NULL);
";

/// One digest row, ordered by (kind, digest, record).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    kind: u8,
    digest: [u8; 32],
    record: u64,
    class: u8,
}

const ROW_BYTES: usize = 1 + 32 + 8 + 1;

impl Row {
    fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        let mut buf = [0u8; ROW_BYTES];
        buf[0] = self.kind;
        buf[1..33].copy_from_slice(&self.digest);
        buf[33..41].copy_from_slice(&self.record.to_le_bytes());
        buf[41] = self.class;
        w.write_all(&buf)
    }

    fn read(r: &mut impl Read) -> std::io::Result<Option<Row>> {
        let mut buf = [0u8; ROW_BYTES];
        match r.read_exact(&mut buf) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&buf[1..33]);
        let record = u64::from_le_bytes(buf[33..41].try_into().expect("8 bytes"));
        Ok(Some(Row { kind: buf[0], digest, record, class: buf[41] }))
    }

    fn bytes(&self) -> &[u8] {
        let len = DigestKind::from_code(i64::from(self.kind)).map_or(32, |k| k.len());
        &self.digest[..len]
    }
}

/// Counts of a finished feed version.
#[derive(Debug, Clone, Copy, Default)]
pub struct Built {
    /// Distinct digest rows.
    pub digests: u64,
    /// Records with metadata.
    pub records: u64,
    /// Digest kinds present (bit `1 << code`).
    pub kinds: u32,
}

/// Partitions a version's digest rows are split into at most (one per core when building, up to this).
pub const MAX_PARTS: usize = 4;

/// The file of partition `part` of the version whose first file is `first` (`7.sqlite` → `7.p1.sqlite`).
pub fn part_path(first: &Path, part: usize) -> PathBuf {
    if part == 0 {
        return first.to_path_buf();
    }
    let stem = first.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    first.with_file_name(format!("{stem}.p{part}.sqlite"))
}

/// The partition of a digest: its first byte modulo the number of partitions (digests are uniform).
pub fn part_of(digest: &[u8], parts: usize) -> usize {
    digest.first().map_or(0, |b| usize::from(*b) % parts.max(1))
}

/// One partition's file and the digest rows waiting for it.
struct Part {
    conn: Connection,
    path: PathBuf,
    rows: Vec<Row>,
    runs: Vec<PathBuf>,
}

impl Part {
    fn create(path: &Path, max_pages: Option<u64>, schema: &str) -> rusqlite::Result<Part> {
        let conn = Connection::open(path)?;
        // No journal: nothing reads this file before it is complete (see the module doc).
        conn.execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA locking_mode = EXCLUSIVE;
             PRAGMA cache_size = -65536; PRAGMA temp_store = FILE;",
        )?;
        if let Some(p) = max_pages {
            conn.query_row(&format!("PRAGMA max_page_count = {p}"), [], |_| Ok(()))?;
        }
        conn.execute_batch(schema)?;
        conn.execute_batch("BEGIN")?;
        Ok(Part { conn, path: path.to_path_buf(), rows: Vec::new(), runs: Vec::new() })
    }

    fn spill(&mut self) -> Result<(), BuildError> {
        self.rows.sort_unstable();
        self.rows.dedup_by(|a, b| a.kind == b.kind && a.digest == b.digest && a.record == b.record);
        let mut run = self.path.as_os_str().to_owned();
        run.push(format!(".run{}", self.runs.len()));
        let run = PathBuf::from(run);
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&run)?);
        for r in &self.rows {
            r.write(&mut w)?;
        }
        // No fsync: a run file is scratch space, gone when the import ends either way.
        w.into_inner().map_err(|e| e.into_error())?;
        self.runs.push(run);
        self.rows.clear();
        Ok(())
    }

    /// Merge the sorted runs (or sort the rows in memory) into `d`, in key order; returns the rows written.
    fn write_digests(&mut self) -> Result<u64, BuildError> {
        let mut digests = 0u64;
        if !self.runs.is_empty() && !self.rows.is_empty() {
            self.spill()?;
        }
        let mut st =
            self.conn.prepare("INSERT OR IGNORE INTO d (kind, digest, record, class) VALUES (?1, ?2, ?3, ?4)")?;
        let mut put = |r: &Row| -> rusqlite::Result<()> {
            digests += st.execute(params![r.kind, r.bytes(), r.record as i64, r.class])? as u64;
            Ok(())
        };
        if self.runs.is_empty() {
            self.rows.sort_unstable();
            self.rows.dedup_by(|a, b| a.kind == b.kind && a.digest == b.digest && a.record == b.record);
            for r in &self.rows {
                put(r)?;
            }
        } else {
            // k-way merge of the sorted runs.
            let mut readers: Vec<BufReader<File>> = self
                .runs
                .iter()
                .map(|p| File::open(p).map(|f| BufReader::with_capacity(1 << 20, f)))
                .collect::<Result<_, _>>()?;
            let mut heap = BinaryHeap::new();
            for (i, r) in readers.iter_mut().enumerate() {
                if let Some(row) = Row::read(r)? {
                    heap.push(Reverse((row, i)));
                }
            }
            let mut last: Option<Row> = None;
            while let Some(Reverse((row, i))) = heap.pop() {
                if last.is_none_or(|l| (l.kind, l.digest, l.record) != (row.kind, row.digest, row.record)) {
                    put(&row)?;
                    last = Some(row);
                }
                if let Some(next) = Row::read(&mut readers[i])? {
                    heap.push(Reverse((next, i)));
                }
            }
        }
        self.rows = Vec::new();
        Ok(digests)
    }

    /// Commit and make the file durable before the store points at it.
    fn close(&mut self) -> Result<(), BuildError> {
        self.conn.execute_batch("COMMIT")?;
        File::open(&self.path)?.sync_all()?;
        Ok(())
    }

    fn remove_runs(&self) {
        for r in &self.runs {
            let _ = std::fs::remove_file(r);
        }
    }
}

/// Writes one feed version: its first file (records, and partition 0 of the digests) and the other
/// partitions' files, which are sorted and written in parallel at the end.
pub struct FeedBuilder {
    parts: Vec<Part>,
    kinds: u32,
    records: u64,
}

impl FeedBuilder {
    /// Create the version's files (`parts` of them, 1 to [`MAX_PARTS`]); `first` must not exist.
    /// `max_pages` caps each file's size (a full disk, simulated).
    pub fn create(first: &Path, parts: usize, max_pages: Option<u64>) -> rusqlite::Result<FeedBuilder> {
        let n = parts.clamp(1, MAX_PARTS);
        let mut all = Vec::with_capacity(n);
        for i in 0..n {
            let schema = if i == 0 { FEED_SCHEMA } else { PART_SCHEMA };
            let path = part_path(first, i);
            let _ = std::fs::remove_file(&path);
            all.push(Part::create(&path, max_pages, schema)?);
        }
        Ok(FeedBuilder { parts: all, kinds: 0, records: 0 })
    }

    /// Add one record: its metadata row now, its digest rows to the sort of their partitions.
    pub fn add(&mut self, rec: &Prepared) -> Result<(), BuildError> {
        let record = match &rec.row {
            None => 0,
            Some(row) => {
                self.records += 1;
                let mut st = self.parts[0].conn.prepare_cached(
                    "INSERT INTO r (class, name_key, best_kind, best, meta) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                st.execute(params![
                    rec.class.code(),
                    row.name_key,
                    row.best.map(|d| d.kind().code()),
                    row.best.as_ref().map(|d| d.bytes()),
                    row.json
                ])?;
                self.parts[0].conn.last_insert_rowid() as u64
            }
        };
        let n = self.parts.len();
        for d in &rec.digests {
            let mut digest = [0u8; 32];
            digest[..d.bytes().len()].copy_from_slice(d.bytes());
            let kind = d.kind().code() as u8;
            self.kinds |= 1 << kind;
            let part = &mut self.parts[part_of(d.bytes(), n)];
            part.rows.push(Row { kind, digest, record, class: rec.class.code() as u8 });
            if part.rows.len() >= RUN_ROWS / n {
                part.spill()?;
            }
        }
        Ok(())
    }

    /// Sort and write every partition's digest rows (in parallel), build the indexes, close and fsync.
    pub fn finish(mut self) -> Result<Built, BuildError> {
        let result = self.finish_inner();
        for p in &self.parts {
            p.remove_runs();
        }
        result
    }

    fn finish_inner(&mut self) -> Result<Built, BuildError> {
        let (first, rest) = self.parts.split_first_mut().expect("at least one part");
        let results: Vec<Result<u64, BuildError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = rest
                .iter_mut()
                .map(|p| {
                    scope.spawn(move || {
                        let n = p.write_digests()?;
                        p.close()?;
                        Ok(n)
                    })
                })
                .collect();
            let mut results = vec![first.write_digests()];
            results.extend(handles.into_iter().map(|h| {
                h.join().unwrap_or_else(|_| Err(BuildError::Io(std::io::Error::other("a partition writer panicked"))))
            }));
            results
        });
        let mut digests = 0;
        for r in results {
            digests += r?;
        }
        let first = &mut self.parts[0];
        first.conn.execute_batch("CREATE INDEX r_name ON r (name_key, class) WHERE name_key IS NOT NULL;")?;
        // Signers of vulnerable and malicious records (LOLDrivers): a blocklist `check` consults for a file
        // whose signature verifies. Partial, so known-good and known-file sets (NSRL) add nothing to it.
        first.conn.execute_batch(&format!(
            "CREATE INDEX r_signer ON r ({SIGNER_EXPR} COLLATE NOCASE, class) WHERE class >= {};",
            Class::Vulnerable.code()
        ))?;
        first.conn.execute(
            "INSERT INTO info (kinds, digests, records) VALUES (?1, ?2, ?3)",
            params![self.kinds, digests as i64, self.records as i64],
        )?;
        first.close()?;
        Ok(Built { digests, records: self.records, kinds: self.kinds })
    }
}

/// Why building a feed file failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// SQLite refused (a full disk, most likely).
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// A run file could not be written or read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A record made ready for the builder on the parser's thread: the JSON and the keys are computed there, so
/// that the builder's thread does only SQLite's work.
pub struct Prepared {
    /// The class.
    pub class: Class,
    /// The digests.
    pub digests: Vec<Digest>,
    /// The record row, when the record has metadata.
    pub row: Option<PreparedRow>,
}

/// The `r` row of a record.
pub struct PreparedRow {
    name_key: Option<String>,
    best: Option<Digest>,
    json: String,
}

impl Prepared {
    /// Prepare a parsed record.
    pub fn from_record(rec: FeedRecord) -> Prepared {
        let row = (!rec.meta.is_empty()).then(|| PreparedRow {
            name_key: super::sqlite::name_key(&rec.meta),
            best: best_digest(&rec.digests).copied(),
            json: serde_json::to_string(&rec.meta).unwrap_or_default(),
        });
        Prepared { class: rec.class, digests: rec.digests, row }
    }
}

/// A record's strongest file digest: SHA-256, else SHA-1, else MD5.
fn best_digest(digests: &[Digest]) -> Option<&Digest> {
    [DigestKind::Sha256, DigestKind::Sha1, DigestKind::Md5]
        .into_iter()
        .find_map(|k| digests.iter().find(|d| d.kind() == k))
}

/// Insert one record row into `table`; returns its id.
pub fn insert_record(
    c: &Connection,
    table: &str,
    class: Class,
    digests: &[Digest],
    meta: &Meta,
) -> rusqlite::Result<i64> {
    let best = best_digest(digests);
    let json = serde_json::to_string(meta).unwrap_or_default();
    let mut st = c.prepare_cached(&format!(
        "INSERT INTO {table} (class, name_key, best_kind, best, meta) VALUES (?1, ?2, ?3, ?4, ?5)"
    ))?;
    st.execute(params![
        class.code(),
        super::sqlite::name_key(meta),
        best.map(|d| d.kind().code()),
        best.map(|d| d.bytes()),
        json
    ])?;
    Ok(c.last_insert_rowid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_sorted_and_deduplicated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.sqlite");
        let mut b = FeedBuilder::create(&path, 2, None).unwrap();
        // Force spilling by adding more than one run's worth in a small test: shrink via many duplicates.
        let d = |i: u32| Digest::from_bytes(DigestKind::Md5, &[&i.to_be_bytes()[..], &[0u8; 12]].concat()).unwrap();
        for i in (0..1000u32).rev() {
            b.add(&Prepared::from_record(FeedRecord {
                class: Class::Malicious,
                digests: vec![d(i), d(i)],
                meta: Meta::default(),
            }))
            .unwrap();
        }
        for p in &mut b.parts {
            p.spill().unwrap();
        }
        for i in 500..1500u32 {
            b.add(&Prepared::from_record(FeedRecord {
                class: Class::Malicious,
                digests: vec![d(i)],
                meta: Meta::default(),
            }))
            .unwrap();
        }
        let built = b.finish().unwrap();
        assert_eq!(built.digests, 1500);
        assert_eq!(built.kinds, 1 << DigestKind::Md5.code());
        let mut n = 0i64;
        for part in 0..2 {
            let c = Connection::open(part_path(&path, part)).unwrap();
            n += c.query_row("SELECT count(*) FROM d", [], |r| r.get::<_, i64>(0)).unwrap();
            // Each row is in the partition its first byte says.
            let mut st = c.prepare("SELECT digest FROM d").unwrap();
            let digests: Vec<Vec<u8>> = st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
            assert!(digests.iter().all(|d| part_of(d, 2) == part), "partition {part}");
        }
        assert_eq!(n, 1500);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "run files are removed");
    }
}

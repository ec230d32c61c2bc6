//! Building one feed version's file: an SQLite database written once, then only ever read.
//!
//! An import writes its feed version into a file of its own next to the store (`<store>.feeds/<id>.sqlite`)
//! with no journal and no fsync per transaction: nothing reads the file until it is complete, so a crash
//! mid-build leaves only a file that no `feeds` row points at, which the next writer deletes. That is what
//! makes an import fast (every page is written once, not to a WAL first), and the main store's one short
//! switch transaction is what makes it visible.
//!
//! Digest rows are collected in memory, sorted in runs of [`RUN_ROWS`] (spilled to temporary files beyond
//! that, so memory stays bounded whatever the feed's size), and merged into the `d` table in key order: SQLite
//! builds a B-tree from sorted keys several times faster than from random ones. Records with metadata go to
//! the `r` table as they arrive; its name index is built at the end.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use super::{Class, Digest, DigestKind, FeedRecord, Meta};

/// Digest rows sorted in memory at once (48 bytes each: about 100 MB).
pub const RUN_ROWS: usize = 2_000_000;

/// The schema of a feed file. `info` holds one row: the digest kinds present (a bit per kind code).
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

/// Counts of a finished feed file.
#[derive(Debug, Clone, Copy, Default)]
pub struct Built {
    /// Distinct digest rows.
    pub digests: u64,
    /// Records with metadata.
    pub records: u64,
    /// Digest kinds present (bit `1 << code`).
    pub kinds: u32,
}

/// Writes one feed file.
pub struct FeedBuilder {
    conn: Connection,
    path: PathBuf,
    rows: Vec<Row>,
    runs: Vec<PathBuf>,
    kinds: u32,
    records: u64,
}

impl FeedBuilder {
    /// Create the file (it must not exist). `max_pages` caps its size (a full disk, simulated).
    pub fn create(path: &Path, max_pages: Option<u64>) -> rusqlite::Result<FeedBuilder> {
        let conn = Connection::open(path)?;
        // No journal: nothing reads this file before it is complete (see the module doc).
        conn.execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA locking_mode = EXCLUSIVE;
             PRAGMA cache_size = -131072; PRAGMA temp_store = FILE;",
        )?;
        if let Some(p) = max_pages {
            conn.query_row(&format!("PRAGMA max_page_count = {p}"), [], |_| Ok(()))?;
        }
        conn.execute_batch(FEED_SCHEMA)?;
        conn.execute_batch("BEGIN")?;
        Ok(FeedBuilder { conn, path: path.to_path_buf(), rows: Vec::new(), runs: Vec::new(), kinds: 0, records: 0 })
    }

    /// Add one record: its metadata row now, its digest rows to the sort.
    pub fn add(&mut self, rec: &FeedRecord) -> Result<(), BuildError> {
        let record = if rec.meta.is_empty() {
            0
        } else {
            self.records += 1;
            insert_record(&self.conn, "r", rec.class, &rec.digests, &rec.meta)? as u64
        };
        for d in &rec.digests {
            let mut digest = [0u8; 32];
            digest[..d.bytes().len()].copy_from_slice(d.bytes());
            let kind = d.kind().code() as u8;
            self.kinds |= 1 << kind;
            self.rows.push(Row { kind, digest, record, class: rec.class.code() as u8 });
        }
        if self.rows.len() >= RUN_ROWS {
            self.spill()?;
        }
        Ok(())
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

    /// Sort and write the digest rows, build the indexes, close and fsync the file.
    pub fn finish(mut self) -> Result<Built, BuildError> {
        let result = self.finish_inner();
        for r in &self.runs {
            let _ = std::fs::remove_file(r);
        }
        result
    }

    fn finish_inner(&mut self) -> Result<Built, BuildError> {
        let mut digests = 0u64;
        if !self.runs.is_empty() && !self.rows.is_empty() {
            self.spill()?;
        }
        {
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
        }
        self.rows = Vec::new();
        self.conn.execute_batch("CREATE INDEX r_name ON r (name_key) WHERE name_key IS NOT NULL;")?;
        self.conn.execute(
            "INSERT INTO info (kinds, digests, records) VALUES (?1, ?2, ?3)",
            params![self.kinds, digests as i64, self.records as i64],
        )?;
        self.conn.execute_batch("COMMIT")?;
        // Make the file durable before the store points at it.
        File::open(&self.path)?.sync_all()?;
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

/// Insert one record row into `table`; returns its id.
pub fn insert_record(
    c: &Connection,
    table: &str,
    class: Class,
    digests: &[Digest],
    meta: &Meta,
) -> rusqlite::Result<i64> {
    let best = [DigestKind::Sha256, DigestKind::Sha1, DigestKind::Md5]
        .into_iter()
        .find_map(|k| digests.iter().find(|d| d.kind() == k));
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
        let mut b = FeedBuilder::create(&path, None).unwrap();
        // Force spilling by adding more than one run's worth in a small test: shrink via many duplicates.
        let d = |i: u32| Digest::from_bytes(DigestKind::Md5, &[&i.to_be_bytes()[..], &[0u8; 12]].concat()).unwrap();
        for i in (0..1000u32).rev() {
            b.add(&FeedRecord { class: Class::Malicious, digests: vec![d(i), d(i)], meta: Meta::default() }).unwrap();
        }
        b.spill().unwrap();
        for i in 500..1500u32 {
            b.add(&FeedRecord { class: Class::Malicious, digests: vec![d(i)], meta: Meta::default() }).unwrap();
        }
        let built = b.finish().unwrap();
        assert_eq!(built.digests, 1500);
        assert_eq!(built.kinds, 1 << DigestKind::Md5.code());
        let c = Connection::open(&path).unwrap();
        let n: i64 = c.query_row("SELECT count(*) FROM d", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1500);
        assert!(std::fs::read_dir(dir.path()).unwrap().count() == 1, "run files are removed");
    }
}

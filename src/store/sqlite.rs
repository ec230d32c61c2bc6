//! The embedded store: a small SQLite catalogue (bundled SQLite, WAL) and one immutable SQLite file per
//! imported feed version.
//!
//! Layout (schema version [`SCHEMA_VERSION`], migrated in order by [`MIGRATIONS`]):
//! * `feeds` in the catalogue: one row per feed version (`source`, `format`, the data set's `version`/`date`,
//!   counts, the digest kinds present, `state`, `location`). `state` is `staging` while an import runs,
//!   `active` once visible (at most one per source), `retired` when replaced. Lookups read active rows only.
//! * an imported version's data is the file `<store>.feeds/<id>.sqlite` (see [`super::build`]): a WITHOUT ROWID
//!   table `d` keyed by `(kind, digest, record)` with the class in each row, and `r`, the records with metadata
//!   (class, a lower-case name key for "other versions", the record's strongest file digest, the metadata as
//!   JSON). A record without metadata (a plain hash list) has no `r` row: its digest rows point to record 0.
//! * a source of the user's own (`db add`) lives in the catalogue itself, as tables `d{id}` and `r{id}` of the
//!   same shape, edited in place.
//!
//! * `provider_cache` (schema 2): the opt-in providers' answers, by provider and digest, with the time they were
//!   fetched (a TTL is applied on reading); `provider_requests`: the requests sent in the current budget window,
//!   shared by every process using the store; `file_reports`: analysis reports that `filerep serve` received,
//!   by SHA-256, for its HTML card page.
//! * `observations` (schema 3): one row per `filerep observe` run (participant id, start, duration, samples,
//!   the host profile as JSON); `sightings`: one row per executable (path) seen in a run, with its digests and
//!   the run's aggregated figures (CPU share, memory, threads, handles); `observed_files`: the digest cache of `observe`, by path, valid while the file's modification
//!   time and size are unchanged.
//! * `fleet_participants`, `fleet_totals`, `fleet_values`, `fleet_counts` (schema 4; `fleet_participants` and
//!   `fleet_values` keyed by participant first since schema 5): the sightings rolled up per participant and
//!   file, and per file, as they are recorded, for fleet prevalence (see [`super::fleet`]); the roll-up
//!   replaces the index of `sightings` by SHA-256.
//!
//! An import ([`SqliteStore::import`]) registers a `staging` row, builds the version's file (no journal: no
//! one reads it yet), fsyncs it, and then switches the source's active version in ONE short transaction. A
//! kill, a full disk or an abort at any point before that transaction leaves the previous version whole; the
//! next writer that opens the store deletes what is left of unfinished (`staging`) and replaced (`retired`)
//! versions. One writer at a time: a write open holds an exclusive `flock` on `<store>.lock` for as long as it
//! lives, and every catalogue write is `BEGIN IMMEDIATE` with a busy timeout; readers are never blocked (WAL,
//! and feed files that never change once visible).

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use sha2::{Digest as _, Sha256};

use super::bloom::BloomFilter;
use super::build::{BuildError, FeedBuilder, MAX_PARTS, Prepared, insert_record, part_of, part_path};
use super::feeds::{self, FeedFormat, FeedInfo, ParseOptions, Sink};
use super::{Class, Digest, DigestKind, FeedRecord, Meta};
use crate::report::{KnownLibrary, OtherVersion, StoreMatch};

/// The schema version this build writes (SQLite `user_version`).
pub const SCHEMA_VERSION: i64 = 5;

/// Schema migrations: `MIGRATIONS[i]` takes the store from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE feeds (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        source         TEXT NOT NULL,
        format         TEXT NOT NULL,
        version        TEXT,
        date           TEXT,
        imported_at    TEXT NOT NULL,
        state          TEXT NOT NULL CHECK (state IN ('staging', 'active', 'retired')),
        records        INTEGER NOT NULL DEFAULT 0,
        digests        INTEGER NOT NULL DEFAULT 0,
        skipped        INTEGER NOT NULL DEFAULT 0,
        content_sha256 TEXT,
        location       TEXT,
        fp_rate        REAL,
        kinds          INTEGER NOT NULL DEFAULT 0,
        parts          INTEGER NOT NULL DEFAULT 1
    );
    CREATE UNIQUE INDEX feeds_one_active ON feeds (source) WHERE state = 'active';
",
    "
    CREATE TABLE provider_cache (
        provider   TEXT NOT NULL,
        kind       INTEGER NOT NULL,
        digest     BLOB NOT NULL,
        fetched_at INTEGER NOT NULL,
        answer     TEXT NOT NULL,
        PRIMARY KEY (provider, kind, digest)
    ) WITHOUT ROWID;
    CREATE TABLE provider_requests (
        provider TEXT NOT NULL,
        at_ms    INTEGER NOT NULL
    );
    CREATE INDEX provider_requests_at ON provider_requests (provider, at_ms);
    CREATE TABLE file_reports (
        sha256      BLOB PRIMARY KEY,
        received_at INTEGER NOT NULL,
        report      TEXT NOT NULL
    ) WITHOUT ROWID;
",
    "
    CREATE TABLE observations (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        participant TEXT NOT NULL,
        started_at  INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        samples     INTEGER NOT NULL,
        host        TEXT NOT NULL
    );
    CREATE TABLE sightings (
        observation   INTEGER NOT NULL,
        participant   TEXT NOT NULL,
        sha256        BLOB NOT NULL,
        sha1          BLOB NOT NULL,
        md5           BLOB NOT NULL,
        path          TEXT NOT NULL,
        observed_at   INTEGER NOT NULL,
        processes     INTEGER NOT NULL,
        parent        TEXT,
        command_line  TEXT,
        owner         TEXT,
        platform      TEXT,
        cpu_percent   REAL,
        private_mean  INTEGER,
        private_max   INTEGER,
        virtual_mean  INTEGER,
        virtual_max   INTEGER,
        ws_mean       INTEGER,
        ws_max        INTEGER,
        peak_ws       INTEGER,
        threads_mean  REAL,
        threads_max   INTEGER,
        handles_mean  REAL,
        handles_max   INTEGER,
        PRIMARY KEY (observation, path)
    );
    CREATE INDEX sightings_sha256 ON sightings (sha256);
    CREATE TABLE observed_files (
        path      TEXT PRIMARY KEY,
        mtime_ns  INTEGER NOT NULL,
        size      INTEGER NOT NULL,
        sha256    BLOB NOT NULL,
        sha1      BLOB NOT NULL,
        md5       BLOB NOT NULL,
        hashed_at INTEGER NOT NULL
    ) WITHOUT ROWID;
",
    "
    CREATE INDEX observations_participant ON observations (participant, started_at);
    CREATE TABLE fleet_participants (
        sha256        BLOB NOT NULL,
        participant   TEXT NOT NULL,
        first_seen    INTEGER NOT NULL,
        last_seen     INTEGER NOT NULL,
        sightings     INTEGER NOT NULL,
        os            TEXT,
        country       TEXT,
        manufacturer  TEXT,
        cpu_n         INTEGER NOT NULL,
        cpu_sum       REAL NOT NULL,
        private_sum   REAL NOT NULL,
        virtual_sum   REAL NOT NULL,
        ws_sum        REAL NOT NULL,
        peak_sum      REAL NOT NULL,
        threads_sum   REAL NOT NULL,
        handles_sum   REAL NOT NULL,
        processes_sum REAL NOT NULL,
        PRIMARY KEY (sha256, participant)
    ) WITHOUT ROWID;
    CREATE TABLE fleet_totals (
        sha256           BLOB PRIMARY KEY,
        sha1             BLOB NOT NULL,
        md5              BLOB NOT NULL,
        participants     INTEGER NOT NULL,
        sightings        INTEGER NOT NULL,
        first_seen       INTEGER NOT NULL,
        last_seen        INTEGER NOT NULL,
        cpu_participants INTEGER NOT NULL,
        cpu_mean_sum     REAL NOT NULL,
        cpu_min          REAL,
        cpu_max          REAL,
        private_mean_sum REAL NOT NULL,
        private_min      REAL,
        private_max      REAL,
        virtual_mean_sum REAL NOT NULL,
        virtual_min      REAL,
        virtual_max      REAL,
        ws_mean_sum REAL NOT NULL,
        ws_min      REAL,
        ws_max      REAL,
        peak_mean_sum REAL NOT NULL,
        peak_min      REAL,
        peak_max      REAL,
        threads_mean_sum REAL NOT NULL,
        threads_min      REAL,
        threads_max      REAL,
        handles_mean_sum REAL NOT NULL,
        handles_min      REAL,
        handles_max      REAL,
        processes_mean_sum REAL NOT NULL,
        processes_min      REAL,
        processes_max      REAL
    ) WITHOUT ROWID;
    CREATE INDEX fleet_totals_sha1 ON fleet_totals (sha1);
    CREATE INDEX fleet_totals_md5 ON fleet_totals (md5);
    CREATE TABLE fleet_values (
        sha256      BLOB NOT NULL,
        field       INTEGER NOT NULL,
        value       TEXT NOT NULL,
        participant TEXT NOT NULL,
        PRIMARY KEY (sha256, field, value, participant)
    ) WITHOUT ROWID;
    CREATE TABLE fleet_counts (
        sha256       BLOB NOT NULL,
        field        INTEGER NOT NULL,
        value        TEXT NOT NULL,
        participants INTEGER NOT NULL,
        PRIMARY KEY (sha256, field, value)
    ) WITHOUT ROWID;
    CREATE INDEX fleet_counts_top ON fleet_counts (sha256, field, participants DESC, value);
    INSERT INTO fleet_participants
        SELECT s.sha256, s.participant, min(s.observed_at), max(s.observed_at), count(*),
            nullif(trim(coalesce(json_extract(o.host, '$.os_name'), '') || ' ' ||
                coalesce(json_extract(o.host, '$.os_version'), '')), ''),
            json_extract(o.host, '$.country'), json_extract(o.host, '$.manufacturer'),
            count(s.cpu_percent), coalesce(sum(s.cpu_percent), 0), sum(s.private_mean), sum(s.virtual_mean),
            sum(s.ws_mean), sum(s.peak_ws), sum(s.threads_mean), sum(s.handles_mean), sum(s.processes)
        FROM sightings s JOIN observations o ON o.id = s.observation
        GROUP BY s.sha256, s.participant;
    INSERT INTO fleet_totals
        SELECT p.sha256, (SELECT s.sha1 FROM sightings s WHERE s.sha256 = p.sha256 LIMIT 1),
            (SELECT s.md5 FROM sightings s WHERE s.sha256 = p.sha256 LIMIT 1),
            count(*), sum(p.sightings), min(p.first_seen), max(p.last_seen), count(nullif(p.cpu_n, 0)),
            coalesce(sum(p.cpu_sum / nullif(p.cpu_n, 0)), 0),
            (SELECT min(s.cpu_percent) FROM sightings s WHERE s.sha256 = p.sha256),
            (SELECT max(s.cpu_percent) FROM sightings s WHERE s.sha256 = p.sha256),
            sum(p.private_sum / p.sightings), (SELECT min(s.private_mean) FROM sightings s WHERE s.sha256 = p.sha256), (SELECT max(s.private_mean) FROM sightings s WHERE s.sha256 = p.sha256),
            sum(p.virtual_sum / p.sightings), (SELECT min(s.virtual_mean) FROM sightings s WHERE s.sha256 = p.sha256), (SELECT max(s.virtual_mean) FROM sightings s WHERE s.sha256 = p.sha256),
            sum(p.ws_sum / p.sightings), (SELECT min(s.ws_mean) FROM sightings s WHERE s.sha256 = p.sha256), (SELECT max(s.ws_mean) FROM sightings s WHERE s.sha256 = p.sha256),
            sum(p.peak_sum / p.sightings), (SELECT min(s.peak_ws) FROM sightings s WHERE s.sha256 = p.sha256), (SELECT max(s.peak_ws) FROM sightings s WHERE s.sha256 = p.sha256),
            sum(p.threads_sum / p.sightings), (SELECT min(s.threads_mean) FROM sightings s WHERE s.sha256 = p.sha256), (SELECT max(s.threads_mean) FROM sightings s WHERE s.sha256 = p.sha256),
            sum(p.handles_sum / p.sightings), (SELECT min(s.handles_mean) FROM sightings s WHERE s.sha256 = p.sha256), (SELECT max(s.handles_mean) FROM sightings s WHERE s.sha256 = p.sha256),
            sum(p.processes_sum / p.sightings), (SELECT min(s.processes) FROM sightings s WHERE s.sha256 = p.sha256), (SELECT max(s.processes) FROM sightings s WHERE s.sha256 = p.sha256)
        FROM fleet_participants p GROUP BY p.sha256;
    INSERT OR IGNORE INTO fleet_values SELECT sha256, 0, path, participant FROM sightings;
    INSERT OR IGNORE INTO fleet_values SELECT sha256, 1, parent, participant FROM sightings WHERE parent <> '';
    INSERT OR IGNORE INTO fleet_values
        SELECT sha256, 2, command_line, participant FROM sightings WHERE command_line <> '';
    INSERT OR IGNORE INTO fleet_values SELECT sha256, 3, owner, participant FROM sightings WHERE owner <> '';
    INSERT OR IGNORE INTO fleet_values SELECT sha256, 4, platform, participant FROM sightings WHERE platform <> '';
    INSERT INTO fleet_counts SELECT sha256, field, value, count(*) FROM fleet_values GROUP BY sha256, field, value;
    INSERT INTO fleet_counts SELECT sha256, 5, coalesce(os, ''), count(*) FROM fleet_participants
        GROUP BY sha256, coalesce(os, '');
    INSERT INTO fleet_counts SELECT sha256, 6, coalesce(country, ''), count(*) FROM fleet_participants
        GROUP BY sha256, coalesce(country, '');
    INSERT INTO fleet_counts SELECT sha256, 7, coalesce(manufacturer, ''), count(*) FROM fleet_participants
        GROUP BY sha256, coalesce(manufacturer, '');
    DROP INDEX sightings_sha256;
",
    // Schema 5: the privilege of a sighting (`root`, `elevated`, `user`: field 8 of the roll-ups).
    // The per-participant roll-ups are keyed by participant first. One run's rows then sit together
    // (a run of 100 executables dirtied some 600 pages of these two tables, keyed by file first, and each
    // commit wrote them all to the WAL); lookups are by the whole key, so nothing else changes.
    "
    CREATE TABLE fleet_participants5 (
        participant   TEXT NOT NULL,
        sha256        BLOB NOT NULL,
        first_seen    INTEGER NOT NULL,
        last_seen     INTEGER NOT NULL,
        sightings     INTEGER NOT NULL,
        os            TEXT,
        country       TEXT,
        manufacturer  TEXT,
        cpu_n         INTEGER NOT NULL,
        cpu_sum       REAL NOT NULL,
        private_sum   REAL NOT NULL,
        virtual_sum   REAL NOT NULL,
        ws_sum        REAL NOT NULL,
        peak_sum      REAL NOT NULL,
        threads_sum   REAL NOT NULL,
        handles_sum   REAL NOT NULL,
        processes_sum REAL NOT NULL,
        PRIMARY KEY (participant, sha256)
    ) WITHOUT ROWID;
    INSERT INTO fleet_participants5 (participant, sha256, first_seen, last_seen, sightings, os, country,
            manufacturer, cpu_n, cpu_sum, private_sum, virtual_sum, ws_sum, peak_sum, threads_sum, handles_sum,
            processes_sum)
        SELECT participant, sha256, first_seen, last_seen, sightings, os, country, manufacturer, cpu_n, cpu_sum,
            private_sum, virtual_sum, ws_sum, peak_sum, threads_sum, handles_sum, processes_sum
        FROM fleet_participants;
    DROP TABLE fleet_participants;
    ALTER TABLE fleet_participants5 RENAME TO fleet_participants;
    CREATE TABLE fleet_values5 (
        participant TEXT NOT NULL,
        sha256      BLOB NOT NULL,
        field       INTEGER NOT NULL,
        value       TEXT NOT NULL,
        PRIMARY KEY (participant, sha256, field, value)
    ) WITHOUT ROWID;
    INSERT INTO fleet_values5 (participant, sha256, field, value)
        SELECT participant, sha256, field, value FROM fleet_values;
    DROP TABLE fleet_values;
    ALTER TABLE fleet_values5 RENAME TO fleet_values;
    ALTER TABLE sightings ADD COLUMN privilege TEXT;
",
];

/// Feed files from this size up are built in partitions, one per core.
const PARALLEL_BUILD_BYTES: u64 = 32 << 20;

/// How long a writer waits for another writer before "store busy" (override: `FILEREP_BUSY_TIMEOUT_MS`).
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Matches listed per digest and source at most (the empty file is in 600,000 NSRL packages).
const MAX_MATCHES_PER_SOURCE: usize = 20;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another writer holds the store.
    #[error("store busy: another filerep is writing to {path} (waited {waited_ms} ms); try again when it is done")]
    Busy {
        /// The store.
        path: String,
        /// How long we waited.
        waited_ms: u128,
    },
    /// The disk (or the configured page cap) is full.
    #[error("store full: no space left for {path}; the previous data is unchanged")]
    Full {
        /// The store.
        path: String,
    },
    /// The file is not a store, or is damaged.
    #[error("store {path} is damaged or not a filerep store: {why}")]
    Corrupt {
        /// The store.
        path: String,
        /// What SQLite said.
        why: String,
    },
    /// A newer filerep wrote this store.
    #[error(
        "store {path} has schema version {found}; this filerep understands up to {SCHEMA_VERSION}: upgrade filerep"
    )]
    TooNew {
        /// The store.
        path: String,
        /// Its version.
        found: i64,
    },
    /// A file-system error (creating the directory, the lock file).
    #[error("store {path}: {source}")]
    Io {
        /// The store.
        path: String,
        /// The error (in the message, not chained: one line says it once).
        source: std::io::Error,
    },
    /// The feed could not be parsed.
    #[error(transparent)]
    Feed(#[from] feeds::Error),
    /// A Bloom filter could not be opened or read.
    #[error(transparent)]
    Bloom(#[from] super::bloom::BloomError),
    /// A request that makes no sense for the store's content.
    #[error("{0}")]
    Invalid(String),
    /// Building a feed version's file failed.
    #[error("{0}")]
    Build(String),
    /// Any other SQLite error.
    #[error("store {path}: {source}")]
    Sqlite {
        /// The store.
        path: String,
        /// The error (in the message, not chained).
        source: rusqlite::Error,
    },
}

/// One feed version as `feeds` holds it (and as `db info --json` shows it).
#[derive(Debug, Clone, serde::Serialize)]
pub struct FeedRow {
    /// Row id (also names the version's tables).
    #[serde(skip)]
    pub id: i64,
    /// Source name.
    pub source: String,
    /// Feed format (`manual` for `db add`).
    pub format: String,
    /// Data set version.
    pub version: Option<String>,
    /// Data set date.
    pub date: Option<String>,
    /// When it was imported (RFC 3339 UTC).
    pub imported_at: String,
    /// Records with metadata.
    pub records: i64,
    /// Digest rows.
    pub digests: i64,
    /// Lines skipped as bad.
    pub skipped: i64,
    /// The Bloom filter file, for `hashlookup-bloom`.
    pub location: Option<String>,
    /// The Bloom filter's false-positive rate.
    pub fp_rate: Option<f64>,
    /// Digest kinds present (bit `1 << code`; 0 = unknown, look up every kind).
    pub kinds: i64,
    /// Files the version's digests are partitioned into (by first byte).
    pub parts: i64,
}

/// An active source, ready for lookups: its own read-only connection for an imported version, or tables in
/// the catalogue for a source of the user's own.
struct Active {
    row: FeedRow,
    /// The version's files (partition 0 also holds the records); empty for a source in the catalogue.
    files: Vec<Connection>,
    d: String,
    r: String,
}

/// How to open the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Lookups only (the store is still created on first use).
    Read,
    /// Imports and edits: holds the writer lock while open.
    Write,
}

/// The store.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    active: Vec<Active>,
    blooms: Vec<(FeedRow, BloomFilter)>,
    _lock: Option<File>,
    fleet_floor: u64,
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportSummary {
    /// The source name.
    pub source: String,
    /// The data set version recorded.
    pub version: Option<String>,
    /// The data set date recorded.
    pub date: Option<String>,
    /// Records read.
    pub records: u64,
    /// Distinct digest rows stored.
    pub digests: u64,
    /// Lines or entries skipped as bad.
    pub skipped: u64,
    /// The first few skipped lines: (line, reason).
    pub skipped_examples: Vec<(u64, String)>,
    /// True when the same content was already the active version (nothing changed).
    pub unchanged: bool,
    /// The version it replaced, if any: (version, records + digests).
    pub replaced: Option<String>,
    /// Seconds taken.
    pub seconds: f64,
}

/// What `db import` asks for.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The feed format.
    pub format: FeedFormat,
    /// The feed file.
    pub path: PathBuf,
    /// The source name (defaults by format).
    pub source: String,
    /// Overrides the data set version.
    pub version: Option<String>,
    /// Overrides the data set date.
    pub date: Option<String>,
    /// Parser options (class, digest kind).
    pub options: ParseOptions,
    /// Abort on the first bad line.
    pub strict: bool,
    /// Cap on a compressed feed's expanded size.
    pub max_expanded: u64,
}

/// `db info`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoreInfo {
    /// The store file.
    pub path: String,
    /// Its size on disk in bytes (with the WAL).
    pub size: u64,
    /// Schema version.
    pub schema_version: i64,
    /// Active feeds.
    pub feeds: Vec<FeedRow>,
    /// Rows in `sightings` (`filerep observe`).
    pub sightings: i64,
}

fn default_store_path() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty() && Path::new(v).is_absolute())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".local/share"))
        })?;
    Some(data.join("filerep").join("store.sqlite"))
}

/// The store path: `--db`, else `FILEREP_DB`, else `$XDG_DATA_HOME/filerep/store.sqlite`
/// (`~/.local/share/filerep/store.sqlite`).
pub fn resolve_path(explicit: Option<&Path>) -> Result<PathBuf, Error> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("FILEREP_DB").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    default_store_path()
        .ok_or_else(|| Error::Invalid("no data directory: set HOME, XDG_DATA_HOME or FILEREP_DB, or pass --db".into()))
}

fn busy_timeout() -> Duration {
    std::env::var("FILEREP_BUSY_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_BUSY_TIMEOUT)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    crate::analysis::pe::rfc3339(secs as i64)
}

/// The directory of a store's feed files: `<store>.feeds`.
pub fn feeds_dir(store: &Path) -> PathBuf {
    let mut p = store.as_os_str().to_owned();
    p.push(".feeds");
    PathBuf::from(p)
}

fn max_page_count() -> Option<u64> {
    std::env::var("FILEREP_MAX_PAGE_COUNT").ok().and_then(|v| v.parse::<u64>().ok())
}

/// Open a feed version's file for reading. It never changes once visible (`immutable=1`: no locks taken).
fn open_feed_file(path: &Path) -> rusqlite::Result<Connection> {
    let uri = format!("file:{}?immutable=1", percent_path(path));
    let c = Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )?;
    // (default page cache: lookups touch a handful of pages)
    Ok(c)
}

/// A path as the path part of an SQLite `file:` URI.
fn percent_path(path: &Path) -> String {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(path)).unwrap_or_else(|_| path.to_path_buf())
    };
    let mut out = String::new();
    for b in abs.as_os_str().as_encoded_bytes() {
        match *b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => out.push(*b as char),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

impl SqliteStore {
    /// Open (creating on first use) the store at `path`.
    pub fn open(path: &Path, mode: Mode) -> Result<SqliteStore, Error> {
        let display = path.display().to_string();
        let io_err = |source| Error::Io { path: display.clone(), source };
        let exists = path.exists();
        if !exists {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::create_dir_all(dir).map_err(io_err)?;
            }
        } else if path.is_dir() {
            return Err(Error::Invalid(format!("store {display} is a directory")));
        }
        // A reader that would need to create or migrate the store takes the writer's role for that.
        let lock = if mode == Mode::Write || !exists { Some(writer_lock(path)?) } else { None };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| classify(&display, e))?;
        let mut store = SqliteStore {
            conn,
            path: path.to_path_buf(),
            active: Vec::new(),
            blooms: Vec::new(),
            _lock: lock,
            fleet_floor: super::fleet::DEFAULT_FLOOR,
        };
        store.configure()?;
        store.migrate()?;
        if store._lock.is_some() {
            store.clean_up()?;
        }
        store.load_active()?;
        Ok(store)
    }

    /// Open the store for lookups if it exists; `None` when there is no store file yet (nothing is created:
    /// `check` on a machine without a store costs nothing extra).
    pub fn open_existing(path: &Path) -> Result<Option<SqliteStore>, Error> {
        if !path.exists() {
            return Ok(None);
        }
        SqliteStore::open(path, Mode::Read).map(Some)
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The participant floor of fleet prevalence in lookups (never below [`super::fleet::MIN_FLOOR`]).
    pub fn set_fleet_floor(&mut self, floor: u64) {
        self.fleet_floor = floor.max(super::fleet::MIN_FLOOR);
    }

    /// The participant floor of fleet prevalence.
    pub fn fleet_floor(&self) -> u64 {
        self.fleet_floor
    }

    /// The connection (for the store's other modules).
    pub(super) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// An SQLite error with this store's path.
    pub(super) fn sql_err(&self, e: rusqlite::Error) -> Error {
        self.err(e)
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        classify(&self.path.display().to_string(), e)
    }

    fn configure(&mut self) -> Result<(), Error> {
        let timeout = busy_timeout();
        self.conn.busy_timeout(timeout).map_err(|e| self.err(e))?;
        // The last connection to close would checkpoint and delete the WAL and its index, and the next one
        // rebuild them: a millisecond of system calls on every `check`. Writers checkpoint after imports.
        let _ = self.conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true);
        // Recording an observation alone uses a dozen statements; the default cache (16) would re-prepare them.
        self.conn.set_prepared_statement_cache_capacity(64);
        if self._lock.is_none() {
            // A reader of an existing store sets nothing: the journal mode is the store's (WAL, set by the
            // writer that created it), and the rest only matters to writers. Start-up stays short.
            return Ok(());
        }
        // The header check: a file that is not SQLite fails here with "file is not a database".
        let mode: String = self.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).map_err(|e| self.err(e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Needs a write lock on a fresh store; fails only on a read-only medium.
            let set: String =
                self.conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(|e| self.err(e))?;
            if !set.eq_ignore_ascii_case("wal") {
                return Err(Error::Invalid(format!(
                    "store {}: cannot switch to WAL (journal mode {set})",
                    self.path.display()
                )));
            }
        }
        // The WAL is folded back every 16,384 pages (64 MiB) instead of SQLite's 1,000: a checkpoint copies each
        // page once however often it changed since the last, and syncs; at 1,000 pages the sightings benchmark
        // spent a sixth of its time in those syncs alone. A cap keeps the WAL file near that size afterwards.
        self.conn
            .execute_batch(
                "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF; PRAGMA cache_size = -65536; \
                 PRAGMA temp_store = FILE; PRAGMA wal_autocheckpoint = 16384; PRAGMA journal_size_limit = 67108864;",
            )
            .map_err(|e| self.err(e))?;
        // A cap on the store's size in pages: with it a test (or a cautious user) simulates a full disk.
        if let Some(pages) = max_page_count() {
            self.conn
                .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn user_version(&self) -> Result<i64, Error> {
        self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| self.err(e))
    }

    fn migrate(&mut self) -> Result<(), Error> {
        let found = self.user_version()?;
        if found > SCHEMA_VERSION {
            return Err(Error::TooNew { path: self.path.display().to_string(), found });
        }
        if found == SCHEMA_VERSION {
            return Ok(());
        }
        if self._lock.is_none() {
            self._lock = Some(writer_lock(&self.path)?);
        }
        if found == 0 {
            // A new store: a store that is not empty but has no user_version is someone else's database.
            let tables: i64 =
                self.conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0)).map_err(|e| self.err(e))?;
            if tables > 0 {
                return Err(Error::Corrupt {
                    path: self.path.display().to_string(),
                    why: "an SQLite database that filerep did not create".into(),
                });
            }
            // Incremental auto-vacuum gives the pages of dropped feed versions back to the file system.
            self.conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;").map_err(|e| self.err(e))?;
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            self.write(|c| {
                c.execute_batch(sql)?;
                c.pragma_update(None, "user_version", i as i64 + 1)?;
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Errors converted with `?` inside a transaction carry no path: give them this store's.
    fn name_path(&self, e: Error) -> Error {
        let path = self.path.display().to_string();
        match e {
            Error::Busy { path: p, waited_ms } if p.is_empty() => Error::Busy { path, waited_ms },
            Error::Full { path: p } if p.is_empty() => Error::Full { path },
            Error::Corrupt { path: p, why } if p.is_empty() => Error::Corrupt { path, why },
            Error::Io { path: p, source } if p.is_empty() => Error::Io { path, source },
            Error::Sqlite { path: p, source } if p.is_empty() => Error::Sqlite { path, source },
            e => e,
        }
    }

    fn begin_immediate(&self) -> Result<(), Error> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| self.err(e))
    }

    fn commit(&self) -> Result<(), Error> {
        self.conn.execute_batch("COMMIT").map_err(|e| self.err(e))
    }

    fn rollback(&self) {
        let _ = self.conn.execute_batch("ROLLBACK");
    }

    /// Run `f` inside `BEGIN IMMEDIATE … COMMIT`, rolling back on error.
    fn write<T>(&self, f: impl FnOnce(&Connection) -> Result<T, Error>) -> Result<T, Error> {
        self.begin_immediate()?;
        match f(&self.conn).map_err(|e| self.name_path(e)) {
            Ok(v) => match self.commit() {
                Ok(()) => Ok(v),
                Err(e) => {
                    self.rollback();
                    Err(e)
                }
            },
            Err(e) => {
                self.rollback();
                Err(e)
            }
        }
    }

    /// Drop what unfinished imports and replaced versions left behind (only a writer does this), and any
    /// file in the feeds directory that no row points at.
    fn clean_up(&mut self) -> Result<(), Error> {
        let stale: Vec<i64> = {
            let mut st = self
                .conn
                .prepare("SELECT id FROM feeds WHERE state IN ('staging', 'retired')")
                .map_err(|e| self.err(e))?;
            st.query_map([], |r| r.get(0)).and_then(|rows| rows.collect()).map_err(|e| self.err(e))?
        };
        for id in &stale {
            self.drop_version(*id)?;
        }
        if !stale.is_empty() {
            let _ = self.conn.execute_batch("PRAGMA incremental_vacuum");
        }
        let dir = feeds_dir(&self.path);
        if let Ok(entries) = fs::read_dir(&dir) {
            let rows: Vec<(String, i64)> = {
                let mut st = self
                    .conn
                    .prepare("SELECT location, parts FROM feeds WHERE location IS NOT NULL")
                    .map_err(|e| self.err(e))?;
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .and_then(|rows| rows.collect())
                    .map_err(|e| self.err(e))?
            };
            let mut known = BTreeSet::new();
            for (loc, parts) in rows {
                for part in 0..parts.clamp(1, MAX_PARTS as i64) as usize {
                    known.insert(part_path(Path::new(&loc), part).to_string_lossy().into_owned());
                }
            }
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !known.contains(&name) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }

    fn drop_version(&self, id: i64) -> Result<(), Error> {
        let location: Option<String> = self
            .conn
            .query_row(
                "SELECT location FROM feeds WHERE id = ?1 AND format NOT IN ('manual', 'hashlookup-bloom')",
                [id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?
            .flatten();
        self.write(|c| {
            c.execute_batch(&format!(
                "DROP TABLE IF EXISTS d{id}; DROP TABLE IF EXISTS r{id}; DELETE FROM feeds WHERE id = {id};"
            ))
            .map_err(|e| self.err(e))
        })?;
        // The row goes first: a file without a row is garbage the next clean-up removes anyway.
        if let Some(loc) = location {
            let first = feeds_dir(&self.path).join(&loc);
            for part in 0..MAX_PARTS {
                let _ = fs::remove_file(part_path(&first, part));
            }
        }
        Ok(())
    }

    fn load_active(&mut self) -> Result<(), Error> {
        // A writer may switch versions and delete the old files between our read of `feeds` and our open of
        // those files: read the catalogue again once before calling the store damaged.
        match self.load_active_once() {
            Err(Error::Corrupt { .. }) => self.load_active_once(),
            other => other,
        }
    }

    fn load_active_once(&mut self) -> Result<(), Error> {
        let rows: Vec<FeedRow> = {
            let mut st = self
                .conn
                .prepare(
                    "SELECT id, source, format, version, date, imported_at, records, digests, skipped, location, fp_rate, kinds, \
                     parts FROM feeds WHERE state = 'active' ORDER BY source",
                )
                .map_err(|e| self.err(e))?;
            st.query_map([], |r| {
                Ok(FeedRow {
                    id: r.get(0)?,
                    source: r.get(1)?,
                    format: r.get(2)?,
                    version: r.get(3)?,
                    date: r.get(4)?,
                    imported_at: r.get(5)?,
                    records: r.get(6)?,
                    digests: r.get(7)?,
                    skipped: r.get(8)?,
                    location: r.get(9)?,
                    fp_rate: r.get(10)?,
                    kinds: r.get(11)?,
                    parts: r.get(12)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))?
        };
        self.blooms.clear();
        self.active.clear();
        for row in rows {
            if row.format == FeedFormat::HashlookupBloom.as_str() {
                let loc = row.location.clone().unwrap_or_default();
                let bloom = BloomFilter::open(Path::new(&loc)).map_err(|e| {
                    Error::Invalid(format!("source {}: the Bloom filter {loc} cannot be used: {e}", row.source))
                })?;
                self.blooms.push((row, bloom));
            } else if row.format == "manual" {
                let id = row.id;
                self.active.push(Active { row, files: Vec::new(), d: format!("d{id}"), r: format!("r{id}") });
            } else {
                let first = feeds_dir(&self.path).join(row.location.as_deref().unwrap_or_default());
                let mut files = Vec::new();
                for part in 0..row.parts.clamp(1, MAX_PARTS as i64) as usize {
                    let file = part_path(&first, part);
                    files.push(open_feed_file(&file).map_err(|e| Error::Corrupt {
                        path: self.path.display().to_string(),
                        why: format!("source {}: its data file {} cannot be opened: {e}", row.source, file.display()),
                    })?);
                }
                self.active.push(Active { row, files, d: "d".into(), r: "r".into() });
            }
        }
        Ok(())
    }

    /// Where a source's records are.
    fn conn_of<'a>(&'a self, a: &'a Active) -> &'a Connection {
        a.files.first().unwrap_or(&self.conn)
    }

    /// Where a source's rows for this digest are.
    fn conn_for<'a>(&'a self, a: &'a Active, digest: &[u8]) -> &'a Connection {
        if a.files.is_empty() { &self.conn } else { &a.files[part_of(digest, a.files.len())] }
    }

    /// Number of active sources (Bloom filters included).
    pub fn source_count(&self) -> usize {
        self.active.len() + self.blooms.len()
    }

    /// The active feed versions (Bloom filters included).
    pub fn active_feeds(&self) -> Vec<FeedRow> {
        let mut all: Vec<FeedRow> =
            self.active.iter().map(|a| &a.row).chain(self.blooms.iter().map(|(r, _)| r)).cloned().collect();
        all.sort_by(|a, b| a.source.cmp(&b.source));
        all
    }

    // ------------------------------------------------------------------------------------------ import

    /// Import a feed as a new version of its source (see the module doc for the guarantees).
    pub fn import(&mut self, req: &ImportRequest, progress: &(dyn Fn(u64) + Sync)) -> Result<ImportSummary, Error> {
        if self._lock.is_none() {
            return Err(Error::Invalid("store opened for reading".into()));
        }
        let started = Instant::now();
        if req.format == FeedFormat::HashlookupBloom {
            return self.import_bloom(req, started);
        }
        let id = self.write(|c| {
            c.execute(
                "INSERT INTO feeds (source, format, version, date, imported_at, state) VALUES (?1, ?2, ?3, ?4, ?5, 'staging')",
                params![req.source, req.format.as_str(), req.version, req.date, now_rfc3339()],
            )?;
            let id = c.last_insert_rowid();
            c.execute("UPDATE feeds SET location = ?2 WHERE id = ?1", params![id, format!("{id}.sqlite")])?;
            Ok(id)
        })?;
        let result = self.build_version(id, req, progress);
        match result {
            Ok((info, content, counts, built, parts)) => {
                self.finish_import(id, req, info, content, counts, built, parts, started)
            }
            Err(e) => {
                // Best effort: a full disk may refuse even this; the next writer's clean-up removes it then.
                let _ = self.drop_version(id);
                Err(e)
            }
        }
    }

    fn build_error(&self, e: BuildError) -> Error {
        match e {
            BuildError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) if f.code == ErrorCode::DiskFull => {
                Error::Full { path: self.path.display().to_string() }
            }
            BuildError::Io(io) if io.raw_os_error() == Some(28) => {
                Error::Full { path: self.path.display().to_string() }
            }
            e => Error::Build(format!("writing the feed version failed: {e}")),
        }
    }

    #[allow(clippy::type_complexity)]
    fn build_version(
        &self,
        id: i64,
        req: &ImportRequest,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(FeedInfo, Option<String>, SinkCounts, super::build::Built, usize), Error> {
        let dir = feeds_dir(&self.path);
        fs::create_dir_all(&dir).map_err(|source| Error::Io { path: dir.display().to_string(), source })?;
        let file = dir.join(format!("{id}.sqlite"));
        let _ = fs::remove_file(&file);
        // Big feeds are split by digest into one file per core, sorted and written in parallel at the end.
        let size = fs::metadata(&req.path).map(|m| m.len()).unwrap_or(0);
        let parts = if size >= PARALLEL_BUILD_BYTES {
            std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_PARTS)
        } else {
            1
        };
        let mut builder =
            FeedBuilder::create(&file, parts, max_page_count()).map_err(|e| self.build_error(e.into()))?;
        // Two stages on two cores: this thread parses, the builder thread writes records and sorts runs (and
        // at the end merges them into the file). Batches keep the channel cheap; its bound keeps memory flat.
        let (tx, rx) = std::sync::mpsc::sync_channel::<BuildMsg>(8);
        std::thread::scope(|scope| {
            let writer = scope.spawn(move || -> Result<Option<super::build::Built>, BuildError> {
                for msg in rx {
                    match msg {
                        BuildMsg::Records(batch) => {
                            for rec in &batch {
                                builder.add(rec)?;
                            }
                        }
                        BuildMsg::Finish => return builder.finish().map(Some),
                    }
                }
                Ok(None) // the parse failed: nothing to finish
            });
            let mut sink = BuildSink {
                tx: Some(tx),
                batch: Vec::with_capacity(BUILD_BATCH),
                strict: req.strict,
                counts: SinkCounts::default(),
                progress: None,
            };
            let parsed = self.parse_into(req, progress, &mut sink);
            let flushed = sink.flush();
            let counts = sink.counts.clone();
            let outcome = match (parsed, flushed) {
                (Ok(ok), Ok(())) if counts.records > 0 => {
                    let _ = sink.tx.as_ref().map(|t| t.send(BuildMsg::Finish));
                    Ok(ok)
                }
                (Ok(_), Ok(())) => Err(Error::Invalid(format!(
                    "no record could be read from {} as {} ({} bad lines{}): nothing imported, the store is unchanged",
                    req.path.display(),
                    req.format.as_str(),
                    counts.skipped,
                    counts.examples.first().map(|(n, why)| format!("; line {n}: {why}")).unwrap_or_default()
                ))),
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
            drop(sink); // closes the channel: the writer stops (after finishing, if it was told to)
            let written = writer
                .join()
                .unwrap_or_else(|_| Err(BuildError::Io(std::io::Error::other("the writer thread panicked"))));
            match (outcome, written) {
                // A write error explains an aborted parse better than "aborted" does.
                (_, Err(e)) => Err(self.build_error(e)),
                (Err(e), _) => Err(e),
                (Ok((info, content)), Ok(Some(built))) => Ok((info, content, counts, built, parts)),
                (Ok(_), Ok(None)) => Err(Error::Build("the feed version was not finished".into())),
            }
        })
    }

    /// Run the format's parser over the feed into `sink`; returns what the feed says about itself and, for a
    /// file read as a stream, the SHA-256 of its bytes (for idempotent re-imports).
    fn parse_into<'p>(
        &self,
        req: &ImportRequest,
        progress: &'p (dyn Fn(u64) + Sync),
        sink: &mut BuildSink<'p>,
    ) -> Result<(FeedInfo, Option<String>), Error> {
        if req.format == FeedFormat::NsrlRds3 {
            return Ok((feeds::nsrl::parse(&req.path, &req.options, sink)?, None));
        }
        if req.format == FeedFormat::Catalog {
            let (info, digest) = feeds::catalog::parse(&req.path, &req.options, sink)?;
            return Ok((info, Some(digest)));
        }
        let hasher = std::sync::Arc::new(std::sync::Mutex::new(Sha256::new()));
        let h2 = hasher.clone();
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let seen2 = seen.clone();
        let observer = Box::new(move |bytes: &[u8]| {
            if let Ok(mut g) = h2.lock() {
                g.update(bytes);
            }
            seen2.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        });
        let mut reader = feeds::open_input(&req.path, req.max_expanded, observer).map_err(feeds::Error::Io)?;
        sink.progress = Some((progress, seen));
        let info = dispatch(req.format, &mut reader, &req.options, sink).map_err(unwrap_io_feed_error)?;
        // Read what the parser left (a footer) so that the digest covers the whole file.
        std::io::copy(&mut reader, &mut std::io::sink())
            .map_err(|e| Error::Feed(unwrap_io_feed_error(feeds::Error::Io(e))))?;
        let digest = hasher.lock().map(|g| crate::hex::encode(&g.clone().finalize())).ok();
        Ok((info, digest))
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_import(
        &mut self,
        id: i64,
        req: &ImportRequest,
        info: FeedInfo,
        content: Option<String>,
        counts: SinkCounts,
        built: super::build::Built,
        parts: usize,
        started: Instant,
    ) -> Result<ImportSummary, Error> {
        let version = req.version.clone().or(info.version);
        let date = req.date.clone().or(info.date);
        let previous = self.active.iter().map(|a| &a.row).find(|f| f.source == req.source).cloned();
        let same_content: Option<bool> = match (&content, &previous) {
            (Some(c), Some(p)) => self
                .conn
                .query_row(
                    "SELECT content_sha256 = ?1 AND format = ?2 FROM feeds WHERE id = ?3",
                    params![c, req.format.as_str(), p.id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.err(e))?,
            _ => None,
        };
        let mut summary = ImportSummary {
            source: req.source.clone(),
            version: version.clone(),
            date: date.clone(),
            records: counts.records,
            digests: built.digests,
            skipped: counts.skipped,
            skipped_examples: counts.examples.clone(),
            ..Default::default()
        };
        if same_content == Some(true) && req.version.is_none() && req.date.is_none() {
            // Idempotent: the same bytes are already the active version; keep it (and its import time).
            self.drop_version(id)?;
            let p = previous.expect("checked above");
            summary.unchanged = true;
            summary.digests = p.digests as u64;
            summary.version = p.version;
            summary.date = p.date;
            summary.seconds = started.elapsed().as_secs_f64();
            return Ok(summary);
        }
        // The one short transaction that makes the new version visible and retires the old one.
        self.write(|c| {
            c.execute(
                "UPDATE feeds SET state = 'retired' WHERE source = ?1 AND state = 'active'",
                params![req.source],
            )?;
            c.execute(
                "UPDATE feeds SET state = 'active', version = ?2, date = ?3, records = ?4, digests = ?5, skipped = ?6, \
                 content_sha256 = ?7, kinds = ?8, parts = ?9 WHERE id = ?1",
                params![
                    id,
                    version,
                    date,
                    built.records as i64,
                    built.digests as i64,
                    counts.skipped as i64,
                    content,
                    built.kinds,
                    parts as i64
                ],
            )?;
            Ok(())
        })?;
        if let Some(p) = previous {
            summary.replaced = Some(p.version.unwrap_or_else(|| p.imported_at.clone()));
            // Close our reader of the old file before it goes.
            self.active.retain(|a| a.row.id != p.id);
            self.drop_version(p.id)?;
        }
        self.load_active()?;
        // Fold the WAL back into the catalogue now (connections no longer do it on close).
        let _ = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        summary.seconds = started.elapsed().as_secs_f64();
        Ok(summary)
    }

    fn import_bloom(&mut self, req: &ImportRequest, started: Instant) -> Result<ImportSummary, Error> {
        // Queried in place: the filter (about 1 GB for CIRCL's) stays where it is; the store keeps its path.
        let abs =
            fs::canonicalize(&req.path).map_err(|e| Error::Io { path: req.path.display().to_string(), source: e })?;
        let bloom = BloomFilter::open(&abs)?;
        let elements = bloom.elements() as i64;
        let fp = bloom.fp_rate();
        let loc = abs.display().to_string();
        let previous = self.active_feeds().into_iter().find(|f| f.source == req.source);
        self.write(|c| {
            c.execute("UPDATE feeds SET state = 'retired' WHERE source = ?1 AND state = 'active'", params![req.source])?;
            c.execute(
                "INSERT INTO feeds (source, format, version, date, imported_at, state, records, digests, location, fp_rate)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'active', 0, ?6, ?7, ?8)",
                params![req.source, req.format.as_str(), req.version, req.date, now_rfc3339(), elements, loc, fp],
            )?;
            Ok(())
        })?;
        if let Some(p) = &previous {
            self.drop_version(p.id)?;
        }
        self.load_active()?;
        Ok(ImportSummary {
            source: req.source.clone(),
            version: req.version.clone(),
            date: req.date.clone(),
            records: 0,
            digests: elements as u64,
            replaced: previous.map(|p| p.version.unwrap_or(p.imported_at)),
            seconds: started.elapsed().as_secs_f64(),
            ..Default::default()
        })
    }

    // ------------------------------------------------------------------------------------------ edits

    /// Add one digest to a manual source (created on first use), with a class and optional metadata.
    pub fn add(&mut self, source: &str, class: Class, digest: &Digest, meta: &Meta) -> Result<bool, Error> {
        self.require_writer()?;
        let existing = self.active.iter().map(|a| &a.row).find(|f| f.source == source).cloned();
        if let Some(f) = &existing {
            if f.format != "manual" {
                return Err(Error::Invalid(format!(
                    "source {source} holds an imported {} feed; `db add` writes to a source of your own (pick another --source)",
                    f.format
                )));
            }
        }
        if self.blooms.iter().any(|(f, _)| f.source == source) {
            return Err(Error::Invalid(format!("source {source} is a Bloom filter; pick another --source")));
        }
        let added = self.write(|c| {
            let id = match &existing {
                Some(f) => f.id,
                None => {
                    c.execute(
                        "INSERT INTO feeds (source, format, imported_at, state) VALUES (?1, 'manual', ?2, 'active')",
                        params![source, now_rfc3339()],
                    )?;
                    let id = c.last_insert_rowid();
                    c.execute_batch(&format!(
                        "CREATE TABLE d{id} (kind INTEGER NOT NULL, digest BLOB NOT NULL, record INTEGER NOT NULL, class INTEGER NOT NULL,
                                             PRIMARY KEY (kind, digest, record)) WITHOUT ROWID;
                         CREATE TABLE r{id} (id INTEGER PRIMARY KEY, class INTEGER NOT NULL, name_key TEXT, best_kind INTEGER, best BLOB, meta TEXT);
                         CREATE INDEX r{id}_name ON r{id} (name_key, class) WHERE name_key IS NOT NULL;"
                    ))?;
                    id
                }
            };
            // Replace: a digest added again takes its new class and metadata.
            let old: Vec<i64> = {
                let mut st = c.prepare(&format!("SELECT record FROM d{id} WHERE kind = ?1 AND digest = ?2"))?;
                st.query_map(params![digest.kind().code(), digest.bytes()], |r| r.get(0))?.collect::<Result<_, _>>()?
            };
            for rec in &old {
                c.execute(&format!("DELETE FROM r{id} WHERE id = ?1"), params![rec])?;
            }
            c.execute(&format!("DELETE FROM d{id} WHERE kind = ?1 AND digest = ?2"), params![digest.kind().code(), digest.bytes()])?;
            let record = if meta.is_empty() {
                0
            } else {
                insert_record(c, &format!("r{id}"), class, std::slice::from_ref(digest), meta)?
            };
            c.execute(
                &format!("INSERT INTO d{id} (kind, digest, record, class) VALUES (?1, ?2, ?3, ?4)"),
                params![digest.kind().code(), digest.bytes(), record, class.code()],
            )?;
            c.execute(
                &format!(
                    "UPDATE feeds SET digests = (SELECT count(*) FROM d{id}), records = (SELECT count(*) FROM r{id}), \
                     date = ?2 WHERE id = ?1"
                ),
                params![id, now_rfc3339()],
            )?;
            Ok(old.is_empty())
        })?;
        self.load_active()?;
        Ok(added)
    }

    /// Remove a digest from one of the user's own sources, or from all of them when `source` is `None`.
    /// Returns the sources it was removed from. Imported feeds are never edited: a later import would bring
    /// the digest back; remove the feed, or add the digest with another class to a source of your own.
    pub fn remove(&mut self, digest: &Digest, source: Option<&str>) -> Result<Vec<String>, Error> {
        self.require_writer()?;
        if let Some(s) = source {
            match self.active_feeds().into_iter().find(|f| f.source == s) {
                None => return Err(Error::Invalid(format!("no source named {s} in the store"))),
                Some(f) if f.format != "manual" => {
                    return Err(Error::Invalid(format!(
                        "source {s} is an imported {} feed and is not edited by hand: `db remove-feed {s}` removes it, \
                         or `db add` the hash with another class to a source of your own",
                        f.format
                    )));
                }
                Some(_) => {}
            }
        }
        let feeds: Vec<FeedRow> = self
            .active
            .iter()
            .map(|a| &a.row)
            .filter(|f| f.format == "manual" && source.is_none_or(|s| f.source == s))
            .cloned()
            .collect();
        let removed = self.write(|c| {
            let mut removed = Vec::new();
            for f in &feeds {
                let id = f.id;
                let recs: Vec<i64> = {
                    let mut st = c.prepare(&format!("SELECT record FROM d{id} WHERE kind = ?1 AND digest = ?2"))?;
                    st.query_map(params![digest.kind().code(), digest.bytes()], |r| r.get(0))?.collect::<Result<_, _>>()?
                };
                if recs.is_empty() {
                    continue;
                }
                for rec in recs.iter().filter(|r| **r != 0) {
                    c.execute(&format!("DELETE FROM r{id} WHERE id = ?1"), params![rec])?;
                }
                c.execute(&format!("DELETE FROM d{id} WHERE kind = ?1 AND digest = ?2"), params![digest.kind().code(), digest.bytes()])?;
                c.execute(
                    &format!("UPDATE feeds SET digests = (SELECT count(*) FROM d{id}), records = (SELECT count(*) FROM r{id}) WHERE id = ?1"),
                    params![id],
                )?;
                removed.push(f.source.clone());
            }
            Ok(removed)
        })?;
        self.load_active()?;
        Ok(removed)
    }

    /// Remove a source and all its data. Returns false when there was no such source.
    pub fn remove_feed(&mut self, source: &str) -> Result<bool, Error> {
        self.require_writer()?;
        let Some(f) = self.active_feeds().into_iter().find(|f| f.source == source) else {
            return Ok(false);
        };
        self.write(|c| {
            c.execute("UPDATE feeds SET state = 'retired' WHERE id = ?1", params![f.id])?;
            Ok(())
        })?;
        self.active.retain(|a| a.row.id != f.id);
        self.drop_version(f.id)?;
        let _ = self.conn.execute_batch("PRAGMA incremental_vacuum");
        self.load_active()?;
        Ok(true)
    }

    fn require_writer(&self) -> Result<(), Error> {
        if self._lock.is_none() {
            return Err(Error::Invalid("store opened for reading".into()));
        }
        Ok(())
    }

    // ------------------------------------------------------------------------------------------ reads

    /// Every active record matching any of `digests`, listed per source (at most 20 per digest and source),
    /// strongest class first, then by source.
    pub fn lookup(&self, digests: &[Digest]) -> Result<Vec<StoreMatch>, Error> {
        let mut out = Vec::new();
        for a in &self.active {
            let f = &a.row;
            let sql = format!(
                "SELECT record, class FROM {} WHERE kind = ?1 AND digest = ?2 LIMIT {MAX_MATCHES_PER_SOURCE}",
                a.d
            );
            // Only the kinds this source has: a SHA-256 list costs one probe, not six.
            for d in digests.iter().filter(|d| f.kinds == 0 || f.kinds & (1 << d.kind().code()) != 0) {
                let mut st = self.conn_for(a, d.bytes()).prepare_cached(&sql).map_err(|e| self.err(e))?;
                let hits: Vec<(i64, i64)> = st
                    .query_map(params![d.kind().code(), d.bytes()], |r| Ok((r.get(0)?, r.get(1)?)))
                    .and_then(|rows| rows.collect())
                    .map_err(|e| self.err(e))?;
                for (record, class) in hits {
                    let Some(class) = Class::from_code(class) else { continue };
                    let meta = if record == 0 { Meta::default() } else { self.record_meta(a, record)? };
                    out.push(StoreMatch {
                        source: f.source.clone(),
                        source_version: f.version.clone(),
                        source_date: f.date.clone(),
                        source_imported: f.imported_at.clone(),
                        class,
                        matched_by: d.kind(),
                        digest: d.hex(),
                        probabilistic: false,
                        false_positive_rate: None,
                        meta,
                        remote: None,
                    });
                }
            }
        }
        for (f, bloom) in &self.blooms {
            for d in digests.iter().filter(|d| d.kind() == DigestKind::Sha1) {
                if bloom.contains_sha1(d)? {
                    out.push(StoreMatch {
                        source: f.source.clone(),
                        source_version: f.version.clone(),
                        source_date: f.date.clone(),
                        source_imported: f.imported_at.clone(),
                        class: Class::KnownFile,
                        matched_by: DigestKind::Sha1,
                        digest: d.hex(),
                        probabilistic: true,
                        false_positive_rate: f.fp_rate,
                        meta: Meta::default(),
                        remote: None,
                    });
                }
            }
        }
        out.sort_by(|a, b| b.class.cmp(&a.class).then_with(|| a.source.cmp(&b.source)));
        Ok(out)
    }

    fn record_meta(&self, a: &Active, record: i64) -> Result<Meta, Error> {
        let mut st = self
            .conn_of(a)
            .prepare_cached(&format!("SELECT meta FROM {} WHERE id = ?1", a.r))
            .map_err(|e| self.err(e))?;
        let json: Option<String> = st.query_row([record], |r| r.get(0)).optional().map_err(|e| self.err(e))?.flatten();
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default())
    }

    /// Other records with this name key (lower-case original name or file name), excluding `exclude`
    /// (the file's own digests); at most `limit`, newest file version first.
    pub fn versions_of(&self, name_key: &str, exclude: &[Digest], limit: usize) -> Result<Vec<OtherVersion>, Error> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        // A source without records (a plain hash list) has no names: not even a query for it.
        for a in self.active.iter().filter(|a| a.row.records > 0) {
            let f = &a.row;
            let mut st = self
                .conn_of(a)
                .prepare_cached(&format!(
                    "SELECT class, best_kind, best, meta FROM {} WHERE name_key = ?1 LIMIT 30",
                    a.r
                ))
                .map_err(|e| self.err(e))?;
            let rows: Vec<RecordRow> = st
                .query_map([name_key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .and_then(|rows| rows.collect())
                .map_err(|e| self.err(e))?;
            for (class, kind, best, meta) in rows {
                let (Some(class), Some(kind), Some(best)) =
                    (Class::from_code(class), kind.and_then(DigestKind::from_code), best)
                else {
                    continue;
                };
                let Some(digest) = Digest::from_bytes(kind, &best) else { continue };
                if exclude.contains(&digest) || !seen.insert(digest) {
                    continue;
                }
                let meta: Meta = meta.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default();
                out.push(OtherVersion {
                    source: f.source.clone(),
                    class,
                    hash_kind: kind,
                    hash: digest.hex(),
                    file_version: meta.file_version,
                    product: meta.product,
                    path: meta.path,
                });
            }
        }
        out.sort_by(|a, b| {
            version_key(b.file_version.as_deref())
                .cmp(&version_key(a.file_version.as_deref()))
                .then_with(|| a.hash.cmp(&b.hash))
        });
        out.truncate(limit);
        Ok(out)
    }

    /// What the store knows by name about each of `names` (lower-case library names); only known ones.
    pub fn known_names(&self, names: &[String]) -> Result<Vec<KnownLibrary>, Error> {
        let mut out = Vec::new();
        for name in names {
            let mut records = 0u64;
            let mut classes = BTreeSet::new();
            let mut sources = BTreeSet::new();
            for a in self.active.iter().filter(|a| a.row.records > 0) {
                let f = &a.row;
                let mut st = self
                    .conn_of(a)
                    .prepare_cached(&format!(
                        "SELECT class, count(*) FROM (SELECT class FROM {} WHERE name_key = ?1 LIMIT 100) GROUP BY class",
                        a.r
                    ))
                    .map_err(|e| self.err(e))?;
                let rows: Vec<(i64, i64)> = st
                    .query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))
                    .and_then(|rows| rows.collect())
                    .map_err(|e| self.err(e))?;
                for (class, n) in rows {
                    if let Some(c) = Class::from_code(class) {
                        classes.insert(c);
                        sources.insert(f.source.clone());
                        records += n as u64;
                    }
                }
            }
            if records > 0 {
                out.push(KnownLibrary {
                    name: name.clone(),
                    records: records.min(100),
                    classes: classes.into_iter().collect(),
                    sources: sources.into_iter().collect(),
                });
            }
        }
        Ok(out)
    }

    /// The vulnerable and malicious records each source lists with `signer` (compared without case), through
    /// the feed files' `r_signer` index. Feed versions imported before that index existed are not searched
    /// (a re-import adds it): a full scan of a large set would cost seconds per file.
    pub fn signer_listings(&self, signer: &str) -> Result<Vec<crate::report::SignerListing>, Error> {
        let mut out = Vec::new();
        for a in self.active.iter().filter(|a| a.row.records > 0 && !a.files.is_empty()) {
            let f = &a.row;
            let sql = format!(
                "SELECT class, count(*), min(json_extract(meta, '$.file_name')) FROM {} INDEXED BY r_signer \
                 WHERE {expr} = ?1 COLLATE NOCASE AND class >= {min} GROUP BY class",
                a.r,
                expr = super::build::SIGNER_EXPR,
                // A literal, as in the partial index's WHERE: SQLite uses the index only when it can see that
                // the query's condition implies it.
                min = Class::Vulnerable.code()
            );
            let mut st = match self.conn_of(a).prepare_cached(&sql) {
                Ok(st) => st,
                Err(e) if e.to_string().contains("no such index") => continue,
                Err(e) => return Err(self.err(e)),
            };
            let rows: Vec<(i64, i64, Option<String>)> = st
                .query_map(params![signer], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(|rows| rows.collect())
                .map_err(|e| self.err(e))?;
            for (class, n, example) in rows {
                if let Some(class) = Class::from_code(class) {
                    out.push(crate::report::SignerListing {
                        signer: signer.to_string(),
                        source: f.source.clone(),
                        source_version: f.version.clone().or_else(|| f.date.clone()),
                        class,
                        records: n as u64,
                        example,
                    });
                }
            }
        }
        Ok(out)
    }

    /// `db info`.
    pub fn info(&self) -> Result<StoreInfo, Error> {
        let mut size = 0;
        for suffix in ["", "-wal"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            size += fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        }
        for a in self.active.iter().filter(|a| !a.files.is_empty()) {
            let first = feeds_dir(&self.path).join(a.row.location.as_deref().unwrap_or_default());
            for part in 0..a.files.len() {
                size += fs::metadata(part_path(&first, part)).map(|m| m.len()).unwrap_or(0);
            }
        }
        Ok(StoreInfo {
            path: self.path.display().to_string(),
            size,
            schema_version: self.user_version()?,
            feeds: self.active_feeds(),
            sightings: self.sighting_count()?,
        })
    }

    /// A provider's cached answer about a digest, when it was fetched at most `max_age` ago:
    /// `(fetched_at in seconds since the epoch, the answer as JSON)`.
    pub fn provider_cache_get(
        &self,
        provider: &str,
        digest: &Digest,
        max_age: Duration,
    ) -> Result<Option<(i64, String)>, Error> {
        let oldest = unix_now().saturating_sub(i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX));
        self.conn
            .prepare_cached(
                "SELECT fetched_at, answer FROM provider_cache \
                 WHERE provider = ?1 AND kind = ?2 AND digest = ?3 AND fetched_at >= ?4",
            )
            .and_then(|mut st| {
                st.query_row(params![provider, digest.kind().code(), digest.bytes(), oldest], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
            })
            .map_err(|e| self.err(e))
    }

    /// Remember a provider's answer (JSON) about a digest, replacing an older one.
    pub fn provider_cache_put(&self, provider: &str, digest: &Digest, answer: &str) -> Result<(), Error> {
        self.write(|c| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO provider_cache (provider, kind, digest, fetched_at, answer) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![provider, digest.kind().code(), digest.bytes(), unix_now(), answer])?;
            Ok(())
        })
    }

    /// Reserve a request to `provider` under a budget of `limit` requests per `window`, shared by every
    /// filerep process using this store. Returns `None` when the request may go now (it is recorded), or how
    /// long to wait before the oldest request in the window leaves it.
    pub fn provider_budget_take(
        &self,
        provider: &str,
        limit: u32,
        window: Duration,
    ) -> Result<Option<Duration>, Error> {
        let now = unix_now_ms();
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        self.write(|c| {
            c.prepare_cached("DELETE FROM provider_requests WHERE provider = ?1 AND at_ms <= ?2")?
                .execute(params![provider, now.saturating_sub(window_ms)])?;
            let (count, oldest): (i64, Option<i64>) = c
                .prepare_cached("SELECT count(*), min(at_ms) FROM provider_requests WHERE provider = ?1")?
                .query_row(params![provider], |r| Ok((r.get(0)?, r.get(1)?)))?;
            if count < i64::from(limit) {
                c.prepare_cached("INSERT INTO provider_requests (provider, at_ms) VALUES (?1, ?2)")?
                    .execute(params![provider, now])?;
                return Ok(None);
            }
            let wait = oldest.map_or(window_ms, |o| (o + window_ms - now).max(1));
            Ok(Some(Duration::from_millis(u64::try_from(wait).unwrap_or(0))))
        })
    }

    /// Keep an analysis report (JSON) for a file, by its SHA-256, replacing an older one.
    pub fn put_report(&self, sha256: &[u8; 32], report: &str) -> Result<(), Error> {
        self.write(|c| {
            c.prepare_cached("INSERT OR REPLACE INTO file_reports (sha256, received_at, report) VALUES (?1, ?2, ?3)")?
                .execute(params![&sha256[..], unix_now(), report])?;
            Ok(())
        })
    }

    /// The analysis report (JSON) kept for a file's SHA-256, if any.
    pub fn get_report(&self, sha256: &[u8; 32]) -> Result<Option<String>, Error> {
        self.conn
            .prepare_cached("SELECT report FROM file_reports WHERE sha256 = ?1")
            .and_then(|mut st| st.query_row(params![&sha256[..]], |r| r.get(0)).optional())
            .map_err(|e| self.err(e))
    }

    /// How many analysis reports the store keeps.
    pub fn report_count(&self) -> Result<i64, Error> {
        self.conn.query_row("SELECT count(*) FROM file_reports", [], |r| r.get(0)).map_err(|e| self.err(e))
    }

    /// `db verify`: SQLite's integrity check, then the store's own invariants. Returns the problems found
    /// (empty when the store is sound).
    pub fn verify(&self) -> Result<Vec<String>, Error> {
        let mut problems = Vec::new();
        {
            let mut st = self.conn.prepare("PRAGMA integrity_check").map_err(|e| self.err(e))?;
            let rows: Vec<String> =
                st.query_map([], |r| r.get(0)).and_then(|rows| rows.collect()).map_err(|e| self.err(e))?;
            if rows != ["ok"] {
                problems.extend(rows.into_iter().take(20).map(|r| format!("integrity: {r}")));
            }
        }
        for a in &self.active {
            let f = &a.row;
            for c in &a.files {
                match c.prepare("PRAGMA integrity_check").and_then(|mut st| {
                    st.query_map([], |r| r.get::<_, String>(0)).and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                }) {
                    Ok(rows) if rows == ["ok"] => {}
                    Ok(rows) => problems
                        .extend(rows.into_iter().take(5).map(|r| format!("source {}: integrity: {r}", f.source))),
                    Err(e) => problems.push(format!("source {}: its data file cannot be read: {e}", f.source)),
                }
            }
            let conns: Vec<&Connection> = if a.files.is_empty() { vec![&self.conn] } else { a.files.iter().collect() };
            let mut total = 0i64;
            let mut unreadable = false;
            for c in conns {
                match c.query_row(&format!("SELECT count(*) FROM {}", a.d), [], |r| r.get::<_, i64>(0)) {
                    Ok(n) => total += n,
                    Err(e) => {
                        unreadable = true;
                        problems.push(format!("source {}: its digests cannot be read: {e}", f.source));
                    }
                }
            }
            if !unreadable && total != f.digests {
                problems.push(format!("source {}: {total} digest rows, the catalogue says {}", f.source, f.digests));
            }
        }
        for (f, _) in &self.blooms {
            if let Some(loc) = &f.location {
                if let Err(e) = BloomFilter::open(Path::new(loc)) {
                    problems.push(format!("source {}: {e}", f.source));
                }
            }
        }
        Ok(problems)
    }
}

/// A record row: class, strongest digest kind and bytes, metadata JSON.
type RecordRow = (i64, Option<i64>, Option<Vec<u8>>, Option<String>);

/// Progress for an import: the callback and the raw bytes read so far.
type Progress<'a> = (&'a (dyn Fn(u64) + Sync), std::sync::Arc<std::sync::atomic::AtomicU64>);

/// A numeric sort key for "10.0.19041.1" style versions (non-numeric parts sort as 0).
fn version_key(v: Option<&str>) -> Vec<u64> {
    v.map(|v| {
        v.split(|c: char| !c.is_ascii_digit())
            .filter(|p| !p.is_empty())
            .take(6)
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    })
    .unwrap_or_default()
}

/// The name key of a record: its original name (lower case, `.mui` stripped), else its file name's last
/// component (lower case).
pub fn name_key(meta: &Meta) -> Option<String> {
    let pick = meta.original_name.as_deref().or(meta.file_name.as_deref())?;
    Some(normalise_name(pick))
}

/// Lower case, last path component, a trailing `.mui` stripped.
pub fn normalise_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name).trim();
    let lower = last.to_lowercase();
    lower.strip_suffix(".mui").map(str::to_string).unwrap_or(lower)
}

/// Map SQLite errors to the store's: busy, full, damaged.
fn classify(path: &str, e: rusqlite::Error) -> Error {
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        let why = msg.clone().unwrap_or_else(|| f.to_string());
        match f.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                return Error::Busy { path: path.to_string(), waited_ms: busy_timeout().as_millis() };
            }
            ErrorCode::DiskFull => return Error::Full { path: path.to_string() },
            ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => {
                return Error::Corrupt { path: path.to_string(), why };
            }
            ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::PermissionDenied => {
                return Error::Io { path: path.to_string(), source: std::io::Error::other(why) };
            }
            _ => {}
        }
    }
    Error::Sqlite { path: path.to_string(), source: e }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        classify("", e)
    }
}

fn unwrap_io_feed_error(e: feeds::Error) -> feeds::Error {
    // The gzip cap travels as an io::Error wrapping feeds::Error; give it back its own message.
    if let feeds::Error::Io(io) = &e {
        if let Some(feeds::Error::ExpandsTooFar { limit }) = io.get_ref().and_then(|i| i.downcast_ref::<feeds::Error>())
        {
            return feeds::Error::ExpandsTooFar { limit: *limit };
        }
    }
    e
}

/// Take the writer lock (`<store>.lock`, exclusive `flock`), waiting up to the busy timeout.
fn writer_lock(path: &Path) -> Result<File, Error> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let display = path.display().to_string();
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| Error::Io { path: display.clone(), source })?;
    let timeout = busy_timeout();
    let start = Instant::now();
    loop {
        match try_lock(&file) {
            Ok(true) => return Ok(file),
            Ok(false) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(20)),
            Ok(false) => return Err(Error::Busy { path: display, waited_ms: start.elapsed().as_millis() }),
            Err(source) => return Err(Error::Io { path: display, source }),
        }
    }
}

/// An exclusive, non-blocking `flock`; released when the file is closed (or the process dies).
#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a file descriptor we own; no memory is passed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) { Ok(false) } else { Err(e) }
}

/// Elsewhere SQLite's own locking (BEGIN IMMEDIATE with a busy timeout) is the only writer lock.
#[cfg(not(unix))]
fn try_lock(_file: &File) -> std::io::Result<bool> {
    Ok(true)
}

#[derive(Debug, Clone, Default)]
struct SinkCounts {
    records: u64,
    skipped: u64,
    examples: Vec<(u64, String)>,
}

/// Records handed from the parser to the builder thread per message.
const BUILD_BATCH: usize = 4096;

/// A message to the builder thread.
enum BuildMsg {
    /// Records to add.
    Records(Vec<Prepared>),
    /// The parse succeeded: sort, write and close the file.
    Finish,
}

/// The sink an import writes through: batches of records to the builder thread.
struct BuildSink<'a> {
    tx: Option<std::sync::mpsc::SyncSender<BuildMsg>>,
    batch: Vec<Prepared>,
    strict: bool,
    counts: SinkCounts,
    progress: Option<Progress<'a>>,
}

impl BuildSink<'_> {
    fn flush(&mut self) -> Result<(), Error> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BUILD_BATCH));
        match &self.tx {
            Some(tx) if tx.send(BuildMsg::Records(batch)).is_ok() => Ok(()),
            // The writer stopped: its own error is reported once it is joined.
            _ => Err(Error::Build("the feed version could not be written".into())),
        }
    }
}

impl Sink for BuildSink<'_> {
    fn record(&mut self, rec: FeedRecord) -> Result<(), feeds::Error> {
        if rec.digests.is_empty() {
            return Ok(());
        }
        self.counts.records += 1;
        // The JSON and the keys are made here, on the parser's thread; the builder's thread only writes.
        self.batch.push(Prepared::from_record(rec));
        if self.batch.len() >= BUILD_BATCH {
            self.flush().map_err(|e| feeds::Error::Aborted(e.to_string()))?;
            if let Some((cb, seen)) = &self.progress {
                cb(seen.load(std::sync::atomic::Ordering::Relaxed));
            }
        }
        Ok(())
    }

    fn skipped(&mut self, line: u64, reason: &str) -> Result<(), feeds::Error> {
        self.counts.skipped += 1;
        if self.counts.examples.len() < 5 {
            self.counts.examples.push((line, reason.to_string()));
        }
        if self.strict {
            return Err(feeds::Error::Aborted(format!("line {line}: {reason} (--strict: nothing imported)")));
        }
        // Mostly bad lines: the wrong format or a damaged file, not a few odd rows.
        if self.counts.skipped > 1000 && self.counts.skipped > self.counts.records * 4 {
            return Err(feeds::Error::Aborted(format!(
                "{} bad lines and only {} good records so far (last: line {line}: {reason}); is it the right --format?",
                self.counts.skipped, self.counts.records
            )));
        }
        Ok(())
    }
}

/// Count how often each value occurs and return the most common (ties: the first seen).
pub fn most_common<'a>(values: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
    for (i, v) in values.enumerate() {
        counts.entry(v).or_insert((0, i)).0 += 1;
    }
    counts.into_iter().max_by(|a, b| a.1.0.cmp(&b.1.0).then(b.1.1.cmp(&a.1.1))).map(|(v, _)| v.to_string())
}

/// The parser of a line- or document-oriented format.
fn dispatch(
    format: FeedFormat,
    reader: &mut dyn std::io::BufRead,
    opts: &ParseOptions,
    sink: &mut dyn Sink,
) -> Result<FeedInfo, feeds::Error> {
    match format {
        FeedFormat::LoldriversJson => feeds::loldrivers::parse_json(reader, opts, sink),
        FeedFormat::LoldriversCsv => feeds::loldrivers::parse_csv(reader, opts, sink),
        FeedFormat::MalwarebazaarCsv => feeds::malwarebazaar::parse(reader, opts, sink),
        FeedFormat::Hashlookup => feeds::hashlookup::parse(reader, opts, sink),
        FeedFormat::Xcyclopedia => feeds::xcyclopedia::parse(reader, opts, sink),
        FeedFormat::Hashlist => feeds::hashlist::parse(reader, opts, sink),
        FeedFormat::NsrlRds3 | FeedFormat::HashlookupBloom | FeedFormat::Catalog => {
            Err(feeds::Error::Aborted(format!("{} is not read as a stream", format.as_str())))
        }
    }
}

// ------------------------------------------------------------------------------- long-lived readers

/// What a long-lived reader (`filerep serve`) checks before each use to notice feeds switched by another
/// connection: SQLite's `data_version` (changes whenever another connection commits) and a signature of the
/// active feed versions (changes only when the set of active feeds or their counts change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueState {
    /// `PRAGMA data_version` on this connection.
    pub data_version: i64,
    /// The active feed versions: id, records, digests and date of each.
    pub signature: String,
}

impl SqliteStore {
    /// `PRAGMA data_version`: a number that changes when another connection commits to the store.
    pub fn data_version(&self) -> Result<i64, Error> {
        self.conn.query_row("PRAGMA data_version", [], |r| r.get(0)).map_err(|e| self.err(e))
    }

    /// The data version and a signature of the active feed versions as the catalogue says now.
    pub fn catalogue_state(&self) -> Result<CatalogueState, Error> {
        let data_version = self.data_version()?;
        let signature: String = self
            .conn
            .query_row(
                "SELECT coalesce(group_concat(id || ':' || records || ':' || digests || ':' || coalesce(date, ''), ','), '') \
                 FROM (SELECT id, records, digests, date FROM feeds WHERE state = 'active' ORDER BY id)",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        Ok(CatalogueState { data_version, signature })
    }

    /// Read the active feed versions again (after another process imported or removed a feed).
    pub fn reload_feeds(&mut self) -> Result<(), Error> {
        self.load_active()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("s.sqlite"), Mode::Read).unwrap();
        (dir, s)
    }

    #[test]
    fn provider_answers_are_cached_with_an_age() {
        let (_d, s) = store();
        let d = Digest::parse_file_hash("d41d8cd98f00b204e9800998ecf8427e").unwrap();
        assert_eq!(s.provider_cache_get("virustotal", &d, Duration::from_secs(60)).unwrap(), None);
        s.provider_cache_put("virustotal", &d, "{\"found\":false}").unwrap();
        let (at, answer) = s.provider_cache_get("virustotal", &d, Duration::from_secs(60)).unwrap().unwrap();
        assert_eq!(answer, "{\"found\":false}");
        assert!((unix_now() - at).abs() <= 1);
        // Another provider, or another kind of digest with the same bytes, is another entry.
        assert_eq!(s.provider_cache_get("hashlookup", &d, Duration::from_secs(60)).unwrap(), None);
        let imp = Digest::parse_hex(DigestKind::Imphash, "d41d8cd98f00b204e9800998ecf8427e").unwrap();
        assert_eq!(s.provider_cache_get("virustotal", &imp, Duration::from_secs(60)).unwrap(), None);
        // An answer older than the TTL is not returned.
        s.conn.execute("UPDATE provider_cache SET fetched_at = fetched_at - 100", []).unwrap();
        assert_eq!(s.provider_cache_get("virustotal", &d, Duration::from_secs(60)).unwrap(), None);
        assert!(s.provider_cache_get("virustotal", &d, Duration::from_secs(200)).unwrap().is_some());
    }

    #[test]
    fn the_request_budget_is_shared_and_says_how_long_to_wait() {
        let (dir, s) = store();
        let window = Duration::from_secs(60);
        for _ in 0..4 {
            assert_eq!(s.provider_budget_take("virustotal", 4, window).unwrap(), None);
        }
        // A second connection (another process) sees the same budget.
        let other = SqliteStore::open(&dir.path().join("s.sqlite"), Mode::Read).unwrap();
        let wait = other.provider_budget_take("virustotal", 4, window).unwrap().expect("budget spent");
        assert!(wait > Duration::from_secs(55) && wait <= window, "{wait:?}");
        // Other providers have their own budget; requests older than the window leave it.
        assert_eq!(other.provider_budget_take("hashlookup", 1, window).unwrap(), None);
        s.conn.execute("UPDATE provider_requests SET at_ms = at_ms - 61000 WHERE provider = 'virustotal'", []).unwrap();
        assert_eq!(other.provider_budget_take("virustotal", 4, window).unwrap(), None);
    }

    #[test]
    fn reports_are_kept_by_sha256() {
        let (_d, s) = store();
        assert_eq!(s.get_report(&[7; 32]).unwrap(), None);
        s.put_report(&[7; 32], "{}").unwrap();
        s.put_report(&[7; 32], "{\"a\":1}").unwrap();
        assert_eq!(s.get_report(&[7; 32]).unwrap().as_deref(), Some("{\"a\":1}"));
        assert_eq!(s.report_count().unwrap(), 1);
    }
}

/// A file's digests as `observe` caches them (raw bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedDigests {
    /// SHA-256.
    pub sha256: [u8; 32],
    /// SHA-1.
    pub sha1: [u8; 20],
    /// MD5.
    pub md5: [u8; 16],
}

/// One `observe` run, as recorded.
#[derive(Debug, Clone)]
pub struct ObservationRow {
    /// The participant id.
    pub participant: String,
    /// Start, seconds since the epoch.
    pub started_at: i64,
    /// How long it ran, in milliseconds.
    pub duration_ms: i64,
    /// Samples taken.
    pub samples: i64,
    /// The host profile (JSON).
    pub host: String,
    /// The host's OS, country and manufacturer, as fleet prevalence counts them.
    pub host_key: super::fleet::HostKey,
}

/// One executable seen in an `observe` run, with the run's aggregated figures.
#[derive(Debug, Clone, Default)]
pub struct SightingRow {
    /// Digests.
    pub sha256: [u8; 32],
    /// SHA-1.
    pub sha1: [u8; 20],
    /// MD5.
    pub md5: [u8; 16],
    /// The executable's path.
    pub path: String,
    /// Processes seen running it.
    pub processes: i64,
    /// The most common parent process name.
    pub parent: Option<String>,
    /// A redacted command line.
    pub command_line: Option<String>,
    /// The owner's user name.
    pub owner: Option<String>,
    /// `root`, `elevated` or `user` (see `observe::privilege`).
    pub privilege: Option<String>,
    /// `32-bit` / `64-bit`.
    pub platform: Option<String>,
    /// CPU share in percent of the machine.
    pub cpu_percent: Option<f64>,
    /// Private bytes: mean, max.
    pub private: (i64, i64),
    /// Virtual bytes: mean, max.
    pub virtual_bytes: (i64, i64),
    /// Working set: mean, max.
    pub working_set: (i64, i64),
    /// Peak working set.
    pub peak_working_set: i64,
    /// Threads: mean, max.
    pub threads: (f64, i64),
    /// Handles (file descriptors): mean, max.
    pub handles: (f64, i64),
}

/// [`SqliteStore::record_observation`] inside the caller's transaction.
fn record_run(
    c: &Connection,
    run: &ObservationRow,
    hashed: &[(String, i64, u64, ObservedDigests)],
    sightings: &[SightingRow],
) -> Result<Option<i64>, Error> {
    let now = unix_now();
    let seen: Option<i64> = c
        .prepare_cached("SELECT id FROM observations WHERE participant = ?1 AND started_at = ?2")?
        .query_row(params![run.participant, run.started_at], |r| r.get(0))
        .optional()?;
    if seen.is_some() {
        return Ok(None);
    }
    {
        let mut st = c.prepare_cached(
            "INSERT OR REPLACE INTO observed_files (path, mtime_ns, size, sha256, sha1, md5, hashed_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (path, mtime_ns, size, d) in hashed {
            st.execute(params![
                path,
                mtime_ns,
                i64::try_from(*size).unwrap_or(i64::MAX),
                &d.sha256[..],
                &d.sha1[..],
                &d.md5[..],
                now
            ])?;
        }
    }
    c.prepare_cached(
        "INSERT INTO observations (participant, started_at, duration_ms, samples, host) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![run.participant, run.started_at, run.duration_ms, run.samples, run.host])?;
    let id = c.last_insert_rowid();
    let mut st = c.prepare_cached(
        "INSERT INTO sightings (observation, participant, sha256, sha1, md5, path, observed_at, processes, \
             parent, command_line, owner, platform, cpu_percent, private_mean, private_max, virtual_mean, \
             virtual_max, ws_mean, ws_max, peak_ws, threads_mean, threads_max, handles_mean, handles_max, privilege) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, \
             ?21, ?22, ?23, ?24, ?25)",
    )?;
    for s in sightings {
        st.execute(params![
            id,
            run.participant,
            &s.sha256[..],
            &s.sha1[..],
            &s.md5[..],
            s.path,
            run.started_at,
            s.processes,
            s.parent,
            s.command_line,
            s.owner,
            s.platform,
            s.cpu_percent,
            s.private.0,
            s.private.1,
            s.virtual_bytes.0,
            s.virtual_bytes.1,
            s.working_set.0,
            s.working_set.1,
            s.peak_working_set,
            s.threads.0,
            s.threads.1,
            s.handles.0,
            s.handles.1,
            s.privilege
        ])?;
        let roll = super::fleet::RollupRow {
            sha256: &s.sha256,
            sha1: &s.sha1,
            md5: &s.md5,
            path: &s.path,
            parent: s.parent.as_deref(),
            command_line: s.command_line.as_deref(),
            owner: s.owner.as_deref(),
            privilege: s.privilege.as_deref(),
            platform: s.platform.as_deref(),
            cpu_percent: s.cpu_percent,
            private_bytes: s.private.0 as f64,
            virtual_bytes: s.virtual_bytes.0 as f64,
            working_set: s.working_set.0 as f64,
            peak_working_set: s.peak_working_set as f64,
            threads: s.threads.0,
            handles: s.handles.0,
            processes: s.processes as f64,
        };
        super::fleet::add_sighting(c, &run.participant, run.started_at, &run.host_key, &roll)?;
    }
    Ok(Some(id))
}

fn blob<const N: usize>(v: Vec<u8>) -> Option<[u8; N]> {
    v.try_into().ok()
}

impl SqliteStore {
    /// `observe`'s cached digests of the file at `path`, if they were computed for this modification time
    /// and size.
    pub fn observed_file_get(&self, path: &str, mtime_ns: i64, size: u64) -> Result<Option<ObservedDigests>, Error> {
        let row: Option<(Vec<u8>, Vec<u8>, Vec<u8>)> = self
            .conn
            .prepare_cached(
                "SELECT sha256, sha1, md5 FROM observed_files WHERE path = ?1 AND mtime_ns = ?2 AND size = ?3",
            )
            .and_then(|mut st| {
                st.query_row(params![path, mtime_ns, i64::try_from(size).unwrap_or(i64::MAX)], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()
            })
            .map_err(|e| self.err(e))?;
        Ok(row.and_then(|(a, b, c)| Some(ObservedDigests { sha256: blob(a)?, sha1: blob(b)?, md5: blob(c)? })))
    }

    /// Record an `observe` run: the digests it computed (the cache, by path) and its sightings, rolled up
    /// for fleet prevalence too, in one transaction. Returns the observation's id, or `None` when this
    /// participant's run that started at the same second was recorded before (a replay is not counted twice).
    pub fn record_observation(
        &self,
        run: &ObservationRow,
        hashed: &[(String, i64, u64, ObservedDigests)],
        sightings: &[SightingRow],
    ) -> Result<Option<i64>, Error> {
        self.write(|c| record_run(c, run, hashed, sightings))
    }

    /// Record several runs (from other machines: no digest cache) in ONE transaction: a server that receives
    /// many at once commits them together. One answer per run, as [`Self::record_observation`]'s.
    pub fn record_observations(&self, runs: &[(&ObservationRow, &[SightingRow])]) -> Result<Vec<Option<i64>>, Error> {
        self.write(|c| runs.iter().map(|(run, sightings)| record_run(c, run, &[], sightings)).collect())
    }

    /// Rows in `sightings`.
    pub fn sighting_count(&self) -> Result<i64, Error> {
        self.conn.query_row("SELECT count(*) FROM sightings", [], |r| r.get(0)).map_err(|e| self.err(e))
    }
}

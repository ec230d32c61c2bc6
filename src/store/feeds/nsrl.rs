//! NIST NSRL RDSv3 importer: reads an RDS SQLite database (the flat "minimal" layout or the full/curated one)
//! read-only, row by row, and turns each `FILE` row into a [`FeedRecord`].
//!
//! Both layouts expose `FILE(sha256, sha1, md5, file_name, file_size, package_id)`, `PKG`, `OS` and `MFG` with
//! the same column names (tables in the flat layout, views over normalised tables in the full one), so the same
//! queries serve both. `PKG`, `OS` and `MFG` are small (NSRL has a few hundred thousand packages): they are read
//! once into memory, one row per id (a package has a row per operating system, manufacturer, language and
//! application type: one is picked, so rows are never multiplied), at most 5,000,000 of each. Then `FILE` is
//! scanned in storage order, each row given its package's name, `OS` and manufacturer (`MFG`) from memory: a
//! join per row would cost more than the rest of the import. A missing `PKG`, `OS` or `MFG` just leaves those
//! fields empty; a database without `FILE` is refused. The data set's version and date come from `VERSION`.
//! This module owns the SQL and the mapping; it does not own the store (de-duplication, versions,
//! transactions), never writes to the file (opened read-only, `immutable` on unix, `query_only`), and does not
//! read the legacy RDS 2.x text files, zip archives or delta `.sql` files.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags, Row};

use super::{Error, FeedInfo, ParseOptions, Sink};
use crate::store::{Class, Digest, DigestKind, FeedRecord, Meta};

/// The format name used in errors.
const FORMAT: &str = "nsrl-rds3";
/// The first 16 bytes of every SQLite 3 database.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Parse an NSRL RDSv3 SQLite database, handing one [`FeedRecord`] per `FILE` row to `sink` (class
/// [`Class::KnownFile`] unless `opts.class` says otherwise; digests SHA-256, SHA-1 and MD5, case-normalised,
/// invalid ones dropped; a row with no valid digest goes to [`Sink::skipped`] with its 1-based row number).
/// Returns the data set's version and date from `VERSION` (the greatest version), when it has them.
///
/// A file that is not SQLite, is truncated or corrupt, has no `FILE` table or view, or has more than 5,000,000
/// packages, operating systems or manufacturers gives [`Error::WrongFormat`]; other SQLite failures give
/// [`Error::Sqlite`]; a sink error is returned unchanged.
pub fn parse(path: &Path, opts: &ParseOptions, sink: &mut dyn Sink) -> Result<FeedInfo, Error> {
    check_header(path)?;
    let conn = open_read_only(path).map_err(|e| db_error(e, "when opening it"))?;
    let schema = Schema::read(&conn)?;
    let info = read_version(&conn, &schema)?;
    let packages = Packages::load(&conn, &schema, MAX_IDS)?;
    let sql = schema.file_query();
    let mut stmt = conn.prepare(&sql).map_err(|e| schema_error(e, "the FILE table"))?;
    let mut rows = stmt.query([]).map_err(|e| db_error(e, "at its first FILE row"))?;
    let class = opts.class.unwrap_or(Class::KnownFile);
    // The package of the previous row: NSRL stores a package's files together, so most rows skip the lookup.
    let mut last: Option<(i64, Option<usize>)> = None;
    let mut row_no = 0u64;
    loop {
        let row = match rows.next() {
            Ok(Some(row)) => row,
            Ok(None) => break,
            Err(e) if row_no == 0 => return Err(db_error(e, "at its first FILE row")),
            Err(e) => return Err(db_error(e, &format!("after FILE row {row_no}"))),
        };
        row_no += 1;
        let mut digests = Vec::with_capacity(3);
        for (i, kind) in [(0, DigestKind::Sha256), (1, DigestKind::Sha1), (2, DigestKind::Md5)] {
            if let Some(d) = digest(row.get_ref(i)?, kind) {
                digests.push(d);
            }
        }
        if digests.is_empty() {
            sink.skipped(row_no, "no valid sha256, sha1 or md5 hex digest")?;
            continue;
        }
        let pkg = match Id::of(row.get_ref(5)?) {
            Some(Id::Int(n)) => match last {
                Some((m, pkg)) if m == n => pkg,
                _ => {
                    let pkg = packages.ids.get(Id::Int(n));
                    last = Some((n, pkg));
                    pkg
                }
            },
            Some(id) => packages.ids.get(id),
            None => None,
        };
        let (package, os, company) = match pkg {
            Some(i) => packages.meta(i),
            None => (None, None, None),
        };
        let meta = Meta {
            file_name: text_ref(row, 3)?.as_deref().and_then(Meta::clean),
            size: size(row, 4)?,
            package,
            os,
            company,
            ..Meta::default()
        };
        sink.record(FeedRecord { class, digests, meta })?;
    }
    Ok(info)
}

/// The most packages (distinct `PKG` ids) read into memory, and the most operating systems and manufacturers:
/// NSRL's own databases have a few hundred thousand packages and a few thousand of the others. Beyond that the
/// database is refused rather than memory exhausted.
const MAX_IDS: usize = 5_000_000;

/// An id as the tables join on it (equal values of a kind join). Integers, integral reals and text spelling an
/// integer (as SQLite's integer affinity would store it) are numbers; NULL joins nothing.
#[derive(Clone, Copy)]
enum Id<'a> {
    Int(i64),
    /// A fractional real, by its bits.
    Real(u64),
    Text(&'a [u8]),
    Blob(&'a [u8]),
}

impl<'a> Id<'a> {
    fn of(v: ValueRef<'a>) -> Option<Id<'a>> {
        Some(match v {
            ValueRef::Null => return None,
            ValueRef::Integer(n) => Id::Int(n),
            // -2^63 .. 2^63 (exclusive) holds exactly the integral f64 that fit an i64.
            ValueRef::Real(f)
                if f.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) =>
            {
                Id::Int(f as i64)
            }
            ValueRef::Real(f) => Id::Real(f.to_bits()),
            ValueRef::Text(b) => match std::str::from_utf8(b).ok().and_then(|s| s.parse::<i64>().ok()) {
                Some(n) if n.to_string().as_bytes() == b => Id::Int(n),
                _ => Id::Text(b),
            },
            ValueRef::Blob(b) => Id::Blob(b),
        })
    }
}

/// Ids mapped to indexes (into a table's rows as read).
#[derive(Default)]
struct IdMap {
    ints: HashMap<i64, usize>,
    reals: HashMap<u64, usize>,
    texts: HashMap<Box<[u8]>, usize>,
    blobs: HashMap<Box<[u8]>, usize>,
}

impl IdMap {
    fn get(&self, id: Id<'_>) -> Option<usize> {
        match id {
            Id::Int(n) => self.ints.get(&n),
            Id::Real(bits) => self.reals.get(&bits),
            Id::Text(b) => self.texts.get(b),
            Id::Blob(b) => self.blobs.get(b),
        }
        .copied()
    }

    /// Map `id` to `i` unless it is mapped already (the first row of an id wins).
    fn insert(&mut self, id: Id<'_>, i: usize) {
        match id {
            Id::Int(n) => self.ints.entry(n).or_insert(i),
            Id::Real(bits) => self.reals.entry(bits).or_insert(i),
            Id::Text(b) => self.texts.entry(b.into()).or_insert(i),
            Id::Blob(b) => self.blobs.entry(b.into()).or_insert(i),
        };
    }

    fn len(&self) -> usize {
        self.ints.len() + self.reals.len() + self.texts.len() + self.blobs.len()
    }
}

/// One row per id of a table, each turned into `T` by `f`, read with `sql` (which gives the id first); more
/// than `max_ids` ids are refused.
fn load<T>(
    conn: &Connection,
    table: &str,
    sql: &str,
    max_ids: usize,
    mut f: impl FnMut(&Row<'_>) -> Result<T, Error>,
) -> Result<(IdMap, Vec<T>), Error> {
    let mut stmt = conn.prepare(sql).map_err(|e| schema_error(e, &format!("the {table} table")))?;
    let when = format!("in its {table} table");
    let mut rows = stmt.query([]).map_err(|e| db_error(e, &when))?;
    let mut ids = IdMap::default();
    let mut values = Vec::new();
    while let Some(row) = rows.next().map_err(|e| db_error(e, &when))? {
        let Some(id) = Id::of(row.get_ref(0)?) else { continue };
        if ids.get(id).is_some() {
            continue;
        }
        if ids.len() >= max_ids {
            return Err(wrong(format!(
                "its {table} table has more than {max_ids} distinct ids, far more than any NSRL release: \
                 refused rather than read into memory"
            )));
        }
        ids.insert(id, values.len());
        values.push(f(row)?);
    }
    Ok((ids, values))
}

/// One package: its "name version" and indexes into [`Packages::oses`] and [`Packages::companies`].
struct Package {
    name: Option<String>,
    os: Option<usize>,
    company: Option<usize>,
}

/// `PKG` (one row per package), `OS` and `MFG` (one row per id), read once before the `FILE` rows.
#[derive(Default)]
struct Packages {
    ids: IdMap,
    packages: Vec<Package>,
    /// "name version" of each operating system.
    oses: Vec<Option<String>>,
    /// Name of each manufacturer.
    companies: Vec<Option<String>>,
}

impl Packages {
    /// Read what the database has of `PKG`, `OS` and `MFG`, each reduced to one row per id (their keys are wider
    /// than the id: a package has a row per operating system, manufacturer, language and application type), the
    /// row picked as [`Schema::one_per_id`] says; at most `max_ids` ids each.
    fn load(conn: &Connection, schema: &Schema, max_ids: usize) -> Result<Packages, Error> {
        let has = |cols: &Option<Vec<String>>, c: &str| cols.as_ref().is_some_and(|cols| cols.iter().any(|x| x == c));
        if !(schema.file.iter().any(|c| c == "package_id") && has(&schema.pkg, "package_id")) {
            return Ok(Packages::default());
        }
        let os_joined = has(&schema.pkg, "operating_system_id") && has(&schema.os, "operating_system_id");
        let mfg_joined = has(&schema.pkg, "manufacturer_id") && has(&schema.mfg, "manufacturer_id");
        let (os_ids, oses) = if os_joined {
            let order = if has(&schema.os, "manufacturer_id") { "manufacturer_id" } else { "operating_system_id" };
            let sql = Schema::one_per_id("OS", &schema.os, "operating_system_id", &["name", "version"], order);
            load(conn, "OS", &sql, max_ids, |r| Ok(name_version(text(r, 1)?, text(r, 2)?)))?
        } else {
            Default::default()
        };
        let (mfg_ids, companies) = if mfg_joined {
            let sql = Schema::one_per_id("MFG", &schema.mfg, "manufacturer_id", &["name"], "manufacturer_id");
            load(conn, "MFG", &sql, max_ids, |r| Ok(text_ref(r, 1)?.as_deref().and_then(Meta::clean)))?
        } else {
            Default::default()
        };
        let order: Vec<&str> = ["operating_system_id", "manufacturer_id", "language", "application_type"]
            .into_iter()
            .filter(|c| has(&schema.pkg, c))
            .collect();
        let order = if order.is_empty() { "package_id".to_string() } else { order.join(", ") };
        let sql = Schema::one_per_id(
            "PKG",
            &schema.pkg,
            "package_id",
            &["name", "version", "operating_system_id", "manufacturer_id"],
            &order,
        );
        let (ids, packages) = load(conn, "PKG", &sql, max_ids, |r| {
            let os = if os_joined { Id::of(r.get_ref(3)?).and_then(|id| os_ids.get(id)) } else { None };
            let company = if mfg_joined { Id::of(r.get_ref(4)?).and_then(|id| mfg_ids.get(id)) } else { None };
            Ok(Package { name: name_version(text(r, 1)?, text(r, 2)?), os, company })
        })?;
        Ok(Packages { ids, packages, oses, companies })
    }

    /// Package, OS and company of package `i`.
    fn meta(&self, i: usize) -> (Option<String>, Option<String>, Option<String>) {
        let p = &self.packages[i];
        (p.name.clone(), p.os.and_then(|o| self.oses[o].clone()), p.company.and_then(|c| self.companies[c].clone()))
    }
}

fn wrong(why: impl Into<String>) -> Error {
    Error::WrongFormat { format: FORMAT, why: why.into() }
}

/// Map an SQLite error: a file SQLite cannot read as a database, or a corrupt one, is the wrong format (with
/// `when` saying where it was noticed); anything else stays an SQLite error.
fn db_error(e: rusqlite::Error, when: &str) -> Error {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => wrong(format!("it has an SQLite header but is not a readable database ({e})")),
        Some(ErrorCode::DatabaseCorrupt) => {
            wrong(format!("the database is corrupt {when} (a truncated or damaged download?): {e}"))
        }
        _ => Error::Sqlite(e),
    }
}

/// Map an error preparing a query over `what`: corruption as in [`db_error`]; any other failure (a view over
/// missing tables, a missing column) means the tables are not shaped like NSRL's.
fn schema_error(e: rusqlite::Error, what: &str) -> Error {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => db_error(e, "in its schema"),
        Some(ErrorCode::Unknown) | None => wrong(format!("{what} cannot be queried: {e}")),
        _ => Error::Sqlite(e),
    }
}

/// Check the SQLite header before SQLite sees the file, to name the common mistakes (a zip or gzip download,
/// an incomplete download) instead of a generic "file is not a database".
fn check_header(path: &Path) -> Result<(), Error> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut head = [0u8; 100];
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let head = &head[..n];
    if !head.starts_with(SQLITE_MAGIC) {
        return Err(wrong(if head.is_empty() {
            "the file is empty".to_string()
        } else if head.starts_with(&[0x1f, 0x8b]) {
            "it is gzip-compressed: decompress it first".to_string()
        } else if head.starts_with(b"PK\x03\x04") {
            "it is a zip archive: extract the RDS .db file from it first".to_string()
        } else {
            "no SQLite header (an RDSv3 database starts with \"SQLite format 3\")".to_string()
        }));
    }
    if head.len() < 100 {
        return Err(wrong(format!("truncated: the file has {len} bytes, less than an SQLite header")));
    }
    let page_size = match u16::from_be_bytes([head[16], head[17]]) {
        1 => 65536u64,
        s if s >= 512 && s.is_power_of_two() => u64::from(s),
        s => return Err(wrong(format!("invalid SQLite page size {s}"))),
    };
    let be32 = |i: usize| u32::from_be_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    // The in-header page count is valid when the "version valid for" number matches the change counter.
    let pages = u64::from(be32(28));
    if pages > 0 && be32(24) == be32(92) && len < pages * page_size {
        return Err(wrong(format!(
            "truncated: the SQLite header says {} bytes, the file has {len} (an incomplete download?)",
            pages * page_size
        )));
    }
    Ok(())
}

/// Open read-only: no writes, no journal, and on unix `immutable` (no locks, no `-wal`/`-shm` files created, so
/// a database on read-only media opens too).
fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(immutable_uri(path), flags)?;
    conn.execute_batch("PRAGMA query_only = ON")?;
    Ok(conn)
}

/// `file:` URI of `path` with `immutable=1`, every byte but unreserved ones and `/` percent-encoded.
#[cfg(unix)]
fn immutable_uri(path: &Path) -> PathBuf {
    use std::fmt::Write as _;
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    // An absolute path gets an empty authority ("file:///…"), so a path starting with "//" is not a host.
    let mut uri = String::from(if bytes.starts_with(b"/") { "file://" } else { "file:" });
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            uri.push(b as char);
        } else {
            let _ = write!(uri, "%{b:02X}");
        }
    }
    uri.push_str("?immutable=1");
    PathBuf::from(uri)
}

/// Elsewhere the path is opened as is (read-only, without `immutable`): a plain path is a valid URI filename.
#[cfg(not(unix))]
fn immutable_uri(path: &Path) -> PathBuf {
    path.to_path_buf()
}

/// Which of the tables (or views) and columns the query needs the database has.
struct Schema {
    /// Lower-case column names of `FILE`.
    file: Vec<String>,
    /// Columns of `PKG`, when it exists.
    pkg: Option<Vec<String>>,
    /// Columns of `OS`, when it exists.
    os: Option<Vec<String>>,
    /// Columns of `MFG`, when it exists.
    mfg: Option<Vec<String>>,
    /// Columns of `VERSION`, when it exists.
    version: Option<Vec<String>>,
}

impl Schema {
    fn read(conn: &Connection) -> Result<Schema, Error> {
        let file = columns(conn, "FILE")?.ok_or_else(|| wrong("no FILE table: not an NSRL RDSv3 database"))?;
        if !["sha256", "sha1", "md5"].iter().any(|c| file.iter().any(|f| f == c)) {
            return Err(wrong("the FILE table has no sha256, sha1 or md5 column: not an NSRL RDSv3 database"));
        }
        Ok(Schema {
            file,
            pkg: columns(conn, "PKG")?,
            os: columns(conn, "OS")?,
            mfg: columns(conn, "MFG")?,
            version: columns(conn, "VERSION")?,
        })
    }

    /// The record query: sha256, sha1, md5, file_name, file_size, package_id of every `FILE` row in storage
    /// order (NULL where the table lacks a column).
    fn file_query(&self) -> String {
        let col = |c: &str| if self.file.iter().any(|x| x == c) { format!("\"{c}\"") } else { "NULL".into() };
        format!(
            "SELECT {}, {}, {}, {}, {}, {} FROM FILE",
            col("sha256"),
            col("sha1"),
            col("md5"),
            col("file_name"),
            col("file_size"),
            col("package_id"),
        )
    }

    /// The query giving one row of `table` per `id` (its first by `order`): the id, then `fields` (NULL where
    /// the table lacks them).
    fn one_per_id(table: &str, cols: &Option<Vec<String>>, id: &str, fields: &[&str], order: &str) -> String {
        let col = |c: &str| {
            if cols.as_ref().is_some_and(|cols| cols.iter().any(|x| x == c)) {
                format!("\"{c}\"")
            } else {
                "NULL".into()
            }
        };
        let names: Vec<String> = fields.iter().map(|f| format!("f_{f}")).collect();
        let exprs: Vec<String> = fields.iter().map(|f| format!("{} AS f_{f}", col(f))).collect();
        format!(
            "SELECT {id}, {} FROM (SELECT {id}, {}, row_number() OVER (PARTITION BY {id} ORDER BY {order}) AS rn \
             FROM {table}) WHERE rn = 1",
            names.join(", "),
            exprs.join(", "),
        )
    }
}

/// The lower-case column names of table or view `name` (matched without regard to case), or `None` when the
/// database has no such table or view.
fn columns(conn: &Connection, name: &str) -> Result<Option<Vec<String>>, Error> {
    let exists: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type IN ('table', 'view') AND name = ?1 COLLATE NOCASE)",
            [name],
            |r| r.get(0),
        )
        .map_err(|e| db_error(e, "in its schema"))?;
    if !exists {
        return Ok(None);
    }
    let what = format!("the {name} table");
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)").map_err(|e| schema_error(e, &what))?;
    let cols = stmt
        .query_map([name], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.map(|c| c.map(|c| c.to_ascii_lowercase())).collect::<Result<Vec<_>, _>>())
        .map_err(|e| schema_error(e, &what))?;
    // A view over missing tables has no columns: it cannot be read.
    if cols.is_empty() {
        return Err(wrong(format!("{what} has no readable columns")));
    }
    Ok(Some(cols))
}

/// The data set's version and date: the row of `VERSION` with the greatest version (compared piecewise,
/// numbers as numbers), its `release_date`, else its `build_date`, as `YYYY-MM-DD`.
fn read_version(conn: &Connection, schema: &Schema) -> Result<FeedInfo, Error> {
    let Some(cols) = &schema.version else { return Ok(FeedInfo::default()) };
    if !cols.iter().any(|c| c == "version") {
        return Ok(FeedInfo::default());
    }
    let col = |c: &'static str| if cols.iter().any(|x| x == c) { c } else { "NULL" };
    let sql = format!("SELECT version, {}, {} FROM VERSION", col("release_date"), col("build_date"));
    let mut stmt = conn.prepare(&sql).map_err(|e| schema_error(e, "the VERSION table"))?;
    let mut rows = stmt.query([]).map_err(|e| db_error(e, "in its VERSION table"))?;
    let mut best: Option<FeedInfo> = None;
    while let Some(row) = rows.next().map_err(|e| db_error(e, "in its VERSION table"))? {
        let Some(version) = text(row, 0)?.as_deref().and_then(Meta::clean) else { continue };
        if best
            .as_ref()
            .and_then(|b| b.version.as_deref())
            .is_some_and(|b| version_cmp(&version, b) != Ordering::Greater)
        {
            continue;
        }
        let date = match text(row, 1)?.as_deref().and_then(date_of) {
            Some(d) => Some(d),
            None => text(row, 2)?.as_deref().and_then(date_of),
        };
        best = Some(FeedInfo { version: Some(version), date });
    }
    Ok(best.unwrap_or_default())
}

/// The `YYYY-MM-DD` a timestamp starts with (`2024-03-01`, `2024-03-01 12:00:00`, `2024-03-01T12:00:00Z`).
fn date_of(s: &str) -> Option<String> {
    let s = s.trim();
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let ok = b.len() >= 10
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b.len() == 10 || matches!(b[10], b' ' | b'T'));
    ok.then(|| s[..10].to_string())
}

/// Compare versions piecewise: runs of digits as numbers, other runs as text ("2024.12.1" > "2024.3.1").
fn version_cmp(a: &str, b: &str) -> Ordering {
    fn pieces(s: &str) -> impl Iterator<Item = &str> {
        let mut rest = s;
        std::iter::from_fn(move || {
            let first = rest.chars().next()?;
            let digit = first.is_ascii_digit();
            let end = rest.find(|c: char| c.is_ascii_digit() != digit).unwrap_or(rest.len());
            let (piece, tail) = rest.split_at(end);
            rest = tail;
            Some(piece)
        })
    }
    let mut pa = pieces(a);
    let mut pb = pieces(b);
    loop {
        match (pa.next(), pb.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let ord = if x.as_bytes()[0].is_ascii_digit() && y.as_bytes()[0].is_ascii_digit() {
                    let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                    x.len().cmp(&y.len()).then_with(|| x.cmp(y))
                } else {
                    x.cmp(y)
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

/// Column `i` as text (numbers formatted, invalid UTF-8 replaced), `None` when NULL.
fn text(row: &Row<'_>, i: usize) -> Result<Option<String>, Error> {
    Ok(match row.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(b) | ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
    })
}

/// Column `i` as text like [`text`], borrowed from the row when it is valid UTF-8 text.
fn text_ref<'r>(row: &'r Row<'_>, i: usize) -> Result<Option<Cow<'r, str>>, Error> {
    Ok(match row.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(Cow::Owned(n.to_string())),
        ValueRef::Real(f) => Some(Cow::Owned(f.to_string())),
        ValueRef::Text(b) | ValueRef::Blob(b) => Some(String::from_utf8_lossy(b)),
    })
}

/// A column as a digest of `kind`: hex of either case, surrounding whitespace ignored; `None` when it is not one.
fn digest(v: ValueRef<'_>, kind: DigestKind) -> Option<Digest> {
    // Fast path, for the usual ASCII hex text: the same digest `Digest::parse_hex` gives (hex is never
    // whitespace, so trimming less first changes nothing), without UTF-8 checks or allocations.
    if let ValueRef::Text(b) = v {
        let b = b.trim_ascii();
        let mut raw = [0u8; 32];
        let raw = &mut raw[..kind.len()];
        if b.len() == 2 * raw.len() && crate::store::decode_hex_into(b, raw) {
            return Digest::from_bytes(kind, raw);
        }
    }
    // Anything else (a number, a blob, odd whitespace, no digest at all) as text, as a string would be read.
    let s = match v {
        ValueRef::Null => return None,
        ValueRef::Integer(n) => Cow::Owned(n.to_string()),
        ValueRef::Real(f) => Cow::Owned(f.to_string()),
        ValueRef::Text(b) | ValueRef::Blob(b) => String::from_utf8_lossy(b),
    };
    Digest::parse_hex(kind, s.trim()).ok()
}

/// Column `i` as a size in bytes, `None` when NULL, negative or not a number.
fn size(row: &Row<'_>, i: usize) -> Result<Option<u64>, Error> {
    Ok(match row.get_ref(i)? {
        ValueRef::Integer(n) => u64::try_from(n).ok(),
        ValueRef::Text(b) => std::str::from_utf8(b).ok().and_then(|s| s.trim().parse().ok()),
        _ => None,
    })
}

/// "name version", either part left out when empty (a version `none`, NSRL's placeholder, too).
fn name_version(name: Option<String>, version: Option<String>) -> Option<String> {
    let name = name.as_deref().and_then(Meta::clean);
    let version = version.as_deref().and_then(Meta::clean).filter(|v| !v.eq_ignore_ascii_case("none"));
    match (name, version) {
        (Some(n), Some(v)) => Some(format!("{n} {v}")),
        (n, v) => n.or(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/feeds/nsrl");
    const MINIMAL_SCHEMA: &str =
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/feeds/nsrl/RDSv3_minimal.schema.sql.txt"));
    const CURATED_SCHEMA: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/feeds/nsrl/RDS_2021.12.2_curated.schema.sql.txt"
    ));
    /// The SHA-256 of `./bin/ls` (SHA-1 5848386F…), from draft-dulaunoy-hashlookup-format-00 §2.4.1.
    const LS_SHA256: &str = "08AC13B08BFE4407E0F0C2E12E7F5B1B5E77EB817349A5EA1D836E83CD5ACB13";
    const LS_SHA1: &str = "5848386F77B4C60319C68B69C4594E29959381A2";

    #[derive(Default)]
    struct Collect {
        records: Vec<FeedRecord>,
        skipped: Vec<(u64, String)>,
    }

    impl Sink for Collect {
        fn record(&mut self, rec: FeedRecord) -> Result<(), Error> {
            self.records.push(rec);
            Ok(())
        }
        fn skipped(&mut self, line: u64, reason: &str) -> Result<(), Error> {
            self.skipped.push((line, reason.to_string()));
            Ok(())
        }
    }

    fn run(path: &Path) -> Result<(FeedInfo, Collect), Error> {
        let mut sink = Collect::default();
        let info = parse(path, &ParseOptions::default(), &mut sink)?;
        Ok((info, sink))
    }

    /// The rows of one legacy RDS 2.x CSV file (header dropped).
    fn legacy(name: &str) -> Vec<Vec<String>> {
        let mut r = csv::Reader::from_path(format!("{DATA}/{name}")).unwrap();
        r.records().map(|rec| rec.unwrap().iter().map(str::to_string).collect()).collect()
    }

    /// A flat ("minimal") RDSv3 database built from NIST's schema, holding the real legacy RDS 2.x rows and a
    /// few synthetic ones (marked below).
    fn minimal_db(dir: &Path) -> PathBuf {
        let path = dir.join("RDS_test_minimal.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MINIMAL_SCHEMA).unwrap();
        for r in legacy("NSRLMfg.txt") {
            conn.execute("INSERT INTO MFG VALUES (?1, ?2)", (&r[0], &r[1])).unwrap();
        }
        for r in legacy("NSRLOS.txt") {
            conn.execute("INSERT INTO OS VALUES (?1, ?2, ?3, ?4)", (&r[0], &r[1], &r[2], &r[3])).unwrap();
        }
        for r in legacy("NSRLProd.txt") {
            conn.execute(
                "INSERT INTO PKG VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                (&r[0], &r[1], &r[2], &r[3], &r[4], &r[5], &r[6]),
            )
            .unwrap();
        }
        for r in legacy("NSRLFile.txt") {
            // RDS 2.x has no SHA-256 (''), except ./bin/ls whose SHA-256 the hashlookup draft gives.
            let sha256 = if r[0] == LS_SHA1 { LS_SHA256 } else { "" };
            conn.execute(
                "INSERT INTO FILE VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                (sha256, &r[0], &r[1], &r[2], &r[3], r[4].parse::<i64>().unwrap(), r[5].parse::<i64>().unwrap()),
            )
            .unwrap();
        }
        conn.execute_batch(
            "-- SYNTHETIC: the OS and manufacturers the real package rows point at (not in the sample).
             INSERT INTO OS VALUES (599, 'Test OS 599', '1.0', 1006);
             -- SYNTHETIC: a second OS row for 599 (OS is keyed by (id, manufacturer)): must not multiply.
             INSERT INTO OS VALUES (599, 'Test OS 599', '1.0', 1007);
             INSERT INTO MFG VALUES (534, 'Test Manufacturer 534');
             INSERT INTO MFG VALUES (1722, 'Test Manufacturer 1722');
             -- SYNTHETIC: package 163568 in a second language: must not multiply its files.
             INSERT INTO PKG VALUES (163568, 'Vinux ', '5.1', 599, 534, 'French', 'Operating System');
             -- SYNTHETIC: ./bin/ls also in package 163709 (one FILE row per file and package).
             INSERT INTO FILE SELECT sha256, sha1, md5, crc32, file_name, file_size, 163709 FROM FILE
                 WHERE sha1 = '5848386F77B4C60319C68B69C4594E29959381A2';
             -- SYNTHETIC: no valid digest at all.
             INSERT INTO FILE VALUES ('NOT-A-SHA256', 'ZZZZ', '', '00000000', 'bad.bin', 1, 163568);
             -- The empty file (real NSRL hashes), stored in lower case.
             INSERT INTO FILE VALUES ('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
                 'da39a3ee5e6b4b0d3255bfef95601890afd80709', 'd41d8cd98f00b204e9800998ecf8427e', '00000000',
                 'requires.txt', 0, 304062);
             -- SYNTHETIC version rows.
             INSERT INTO VERSION VALUES ('2023.12.1', 'modern', '2023-12-01 10:00:00', '2023-12-01', 'test');
             INSERT INTO VERSION VALUES ('2024.03.1', 'modern', '2024-03-02 10:00:00', '2024-03-01 00:00:00', 'test');",
        )
        .unwrap();
        path
    }

    fn by_sha1(records: &[FeedRecord]) -> HashMap<String, Vec<&FeedRecord>> {
        let mut map: HashMap<String, Vec<&FeedRecord>> = HashMap::new();
        for r in records {
            let sha1 = r.digests.iter().find(|d| d.kind() == DigestKind::Sha1).unwrap().hex();
            map.entry(sha1).or_default().push(r);
        }
        map
    }

    #[test]
    fn the_minimal_schema_runs_as_is_and_its_rows_become_records() {
        let dir = tempfile::tempdir().unwrap();
        let (info, got) = run(&minimal_db(dir.path())).unwrap();
        assert_eq!(info, FeedInfo { version: Some("2024.03.1".into()), date: Some("2024-03-01".into()) });
        // 8 real rows + ls in a second package + the bad row + the empty file.
        assert_eq!(got.records.len(), 10);
        assert_eq!(got.skipped.len(), 1);
        assert_eq!(got.skipped[0].1, "no valid sha256, sha1 or md5 hex digest");
        assert!((1..=11).contains(&got.skipped[0].0), "{:?}", got.skipped);
        assert!(got.records.iter().all(|r| r.class == Class::KnownFile));

        let map = by_sha1(&got.records);
        // ls: in two packages, so two records, never more (duplicate PKG and OS rows).
        let ls = &map["5848386f77b4c60319c68b69c4594e29959381a2"];
        assert_eq!(ls.len(), 2);
        let vinux = ls.iter().find(|r| r.meta.package.as_deref() == Some("Vinux 5.1")).unwrap();
        assert_eq!(
            vinux.digests.iter().map(|d| format!("{d:?}")).collect::<Vec<_>>(),
            [
                "sha256:08ac13b08bfe4407e0f0c2e12e7f5b1b5e77eb817349a5ea1d836e83cd5acb13",
                "sha1:5848386f77b4c60319c68b69c4594e29959381a2",
                "md5:945fedb3a3c290d69f075f997e5320ff",
            ]
        );
        assert_eq!(
            vinux.meta,
            Meta {
                file_name: Some("./bin/ls".into()),
                size: Some(110_080),
                package: Some("Vinux 5.1".into()),
                os: Some("Test OS 599 1.0".into()),
                company: Some("Test Manufacturer 534".into()),
                ..Meta::default()
            }
        );
        let blackarch = ls.iter().find(|r| r.meta.package.as_deref() == Some("BlackArch Linux 2017.03.01")).unwrap();
        assert_eq!(blackarch.meta.company.as_deref(), Some("Test Manufacturer 1722"));

        // A real package whose OS and manufacturer are not in the sample: package only.
        let kb = &map["00000079fd7aac9b2f9c988c50750e1f50b27eb5"];
        assert_eq!(kb.len(), 1);
        assert_eq!(
            kb[0].meta.package.as_deref(),
            Some("Cumulative Update for Windows Server 2016 for x64 (KB4338817) 1709")
        );
        assert_eq!((kb[0].meta.os.as_deref(), kb[0].meta.company.as_deref()), (None, None));
        assert_eq!(kb[0].meta.size, Some(2520));
        // No SHA-256 in the row (''): dropped, the row kept with SHA-1 and MD5.
        assert_eq!(kb[0].digests.len(), 2);
        // A package that is not in PKG at all.
        let network = &map["00000903319a8ce18a03dfa22c07c6ca43602061"][0];
        assert_eq!(network.meta, Meta { file_name: Some("network".into()), size: Some(7279), ..Meta::default() });

        // Lower-case hex in the database is read just the same.
        let empty = &map["da39a3ee5e6b4b0d3255bfef95601890afd80709"][0];
        assert_eq!(empty.digests.len(), 3);
        assert_eq!(empty.meta.size, Some(0));
    }

    #[test]
    fn the_class_can_be_overridden() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = Collect::default();
        let opts = ParseOptions { class: Some(Class::KnownGood), ..ParseOptions::default() };
        parse(&minimal_db(dir.path()), &opts, &mut sink).unwrap();
        assert!(sink.records.iter().all(|r| r.class == Class::KnownGood));
    }

    #[test]
    fn the_database_is_never_modified() {
        let dir = tempfile::tempdir().unwrap();
        let path = minimal_db(dir.path());
        let before = std::fs::read(&path).unwrap();
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        run(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["RDS_test_minimal.db"], "no journal, -wal or -shm file");
    }

    #[test]
    fn a_sink_error_stops_the_parse() {
        struct Refuse;
        impl Sink for Refuse {
            fn record(&mut self, _: FeedRecord) -> Result<(), Error> {
                Err(Error::Aborted("enough".into()))
            }
            fn skipped(&mut self, _: u64, _: &str) -> Result<(), Error> {
                Ok(())
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let err = parse(&minimal_db(dir.path()), &ParseOptions::default(), &mut Refuse).unwrap_err();
        assert!(matches!(err, Error::Aborted(ref m) if m == "enough"), "{err}");
    }

    /// The full ("curated") layout: NIST's schema as is (its views are created over its own tables), a real
    /// record spread over the normalised tables, with names of OS and manufacturer SYNTHETIC.
    #[test]
    fn the_curated_layout_reads_through_its_views() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("RDS_2021.12.2_curated.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(CURATED_SCHEMA).unwrap();
        // The schema's foreign key APPLICATION(package_id) -> PACKAGE_OBJECT(package_id) points at a column that
        // is not unique, which SQLite calls a "foreign key mismatch" on insert when foreign keys are enforced
        // (rusqlite's bundled SQLite enforces them by default): NIST's databases are built without.
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        conn.execute_batch(
            "INSERT INTO MANUFACTURER (manufacturer_id, name) VALUES (608, 'Test Manufacturer 608'), (1006, 'Unknown');
             INSERT INTO OPERATING_SYSTEM (operating_system_id, name, version) VALUES (868, 'Test OS 868', '10');
             INSERT INTO MANUFACTURER_OPERATING_SYSTEM VALUES (1, 868, 608), (2, 868, 1006);
             INSERT INTO APPLICATION (application_id, package_id, name, name_b64, name_coding, version) VALUES
                 (1, 190742, 'Cumulative Update for Windows Server 2016 for x64 (KB4338817)', '', 'utf-8', '1709');
             INSERT INTO OPERATING_SYSTEM_APPLICATION VALUES (1, 868, 1);
             INSERT INTO MANUFACTURER_APPLICATION VALUES (1, 608, 1);
             INSERT INTO LANGUAGE (language_id, name) VALUES (1, 'Multilanguage'), (2, 'English');
             INSERT INTO APPLICATION_LANGUAGE VALUES (1, 1, 1), (2, 2, 1);
             INSERT INTO APPLICATION_TYPE (application_type_id, description) VALUES (1, 'Security');
             INSERT INTO APPLICATION_APPLICATION_TYPE VALUES (1, 1, 1);
             INSERT INTO PACKAGE_OBJECT VALUES (1, 190742, 10);
             INSERT INTO METADATA (metadata_id, object_id, key_hash, path, file_name, extension, bytes, crc32, md5,
                 sha1, sha256) VALUES (1, 10, 'k', '/x',
                 'wow64_microsoft-windows-i..timezones.resources_31bf3856ad364e35_10.0.16299.579_de-de_f24979c73226184d',
                 'manifest', 2520, '7a5407ca', '8ed4b4ed952526d89899e723f3488de4',
                 '00000079fd7aac9b2f9c988c50750e1f50b27eb5', '');
             INSERT INTO VERSION VALUES ('2021.12.2', 'curated', '2021-12-20 00:00:00', '2021-12-21', 'test');",
        )
        .unwrap();
        // Two languages and two OS manufacturers: the PKG and OS views give several rows for one id.
        let pkg_rows: i64 =
            conn.query_row("SELECT count(*) FROM PKG WHERE package_id = 190742", [], |r| r.get(0)).unwrap();
        assert_eq!(pkg_rows, 2);
        drop(conn);
        let (info, got) = run(&path).unwrap();
        assert_eq!(info, FeedInfo { version: Some("2021.12.2".into()), date: Some("2021-12-21".into()) });
        assert!(got.skipped.is_empty());
        assert_eq!(got.records.len(), 1);
        let r = &got.records[0];
        assert_eq!(
            r.digests.iter().map(|d| d.hex()).collect::<Vec<_>>(),
            ["00000079fd7aac9b2f9c988c50750e1f50b27eb5", "8ed4b4ed952526d89899e723f3488de4"]
        );
        assert_eq!(
            r.meta,
            Meta {
                file_name: Some(
                    "wow64_microsoft-windows-i..timezones.resources_31bf3856ad364e35_10.0.16299.579_de-de_\
                     f24979c73226184d.manifest"
                        .into()
                ),
                size: Some(2520),
                package: Some("Cumulative Update for Windows Server 2016 for x64 (KB4338817) 1709".into()),
                os: Some("Test OS 868 10".into()),
                company: Some("Test Manufacturer 608".into()),
                ..Meta::default()
            }
        );
    }

    #[test]
    fn a_file_table_alone_is_enough() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file-only.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE FILE (sha1 VARCHAR, md5 VARCHAR, file_name VARCHAR);
             INSERT INTO FILE VALUES ('DA39A3EE5E6B4B0D3255BFEF95601890AFD80709', 'nope', 'empty');",
        )
        .unwrap();
        drop(conn);
        let (info, got) = run(&path).unwrap();
        assert_eq!(info, FeedInfo::default());
        assert_eq!(got.records.len(), 1);
        assert_eq!(got.records[0].digests.len(), 1);
        assert_eq!(got.records[0].meta, Meta { file_name: Some("empty".into()), ..Meta::default() });
    }

    /// Ids join by value as SQLite compares them: integers whatever their storage (an integral real, text spelling
    /// an integer in an untyped column), fractional reals, text, blobs; NULL joins nothing. The first row of an id
    /// (by the order of the other key columns) is the one used.
    #[test]
    fn ids_join_by_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("untyped.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE FILE (md5, file_name, package_id);
             CREATE TABLE PKG (package_id, name, version, operating_system_id, manufacturer_id);
             CREATE TABLE OS (operating_system_id, name, version);
             CREATE TABLE MFG (manufacturer_id, name);
             INSERT INTO PKG VALUES (5, 'P5', '1', 2, 1), (5, 'P5 later', '1', 1, 1), (9.5, 'P9.5', NULL, '1', 2),
                 ('x7', 'PX', 'none', NULL, NULL), (X'07', 'PB', '', 1, 3), (NULL, 'PN', '1', 1, 1);
             INSERT INTO OS VALUES (1, 'OS1', '10'), (2.0, 'OS2', NULL);
             INSERT INTO MFG VALUES (1, 'M1'), ('2', 'M2');",
        )
        .unwrap();
        let md5 = "D41D8CD98F00B204E9800998ECF8427E";
        for (name, id) in [
            ("int", rusqlite::types::Value::Integer(5)),
            ("text", rusqlite::types::Value::Text("5".into())),
            ("real", rusqlite::types::Value::Real(5.0)),
            ("frac", rusqlite::types::Value::Real(9.5)),
            ("x7", rusqlite::types::Value::Text("x7".into())),
            ("X7", rusqlite::types::Value::Text("X7".into())),
            ("blob", rusqlite::types::Value::Blob(vec![7])),
            ("spaced", rusqlite::types::Value::Text(" 5".into())),
            ("no id", rusqlite::types::Value::Null),
        ] {
            conn.execute("INSERT INTO FILE VALUES (?1, ?2, ?3)", (md5, name, id)).unwrap();
        }
        drop(conn);
        let (_, got) = run(&path).unwrap();
        let meta: Vec<_> = got
            .records
            .iter()
            .map(|r| {
                let m = &r.meta;
                (m.file_name.as_deref().unwrap(), m.package.as_deref(), m.os.as_deref(), m.company.as_deref())
            })
            .collect();
        let p5 = (Some("P5 later 1"), Some("OS1 10"), Some("M1"));
        assert_eq!(
            meta,
            [
                ("int", p5.0, p5.1, p5.2),
                ("text", p5.0, p5.1, p5.2),
                ("real", p5.0, p5.1, p5.2),
                ("frac", Some("P9.5"), Some("OS1 10"), Some("M2")),
                ("x7", Some("PX"), None, None),
                ("X7", None, None, None),
                ("blob", Some("PB"), Some("OS1 10"), None),
                ("spaced", None, None, None),
                ("no id", None, None, None),
            ]
        );
    }

    #[test]
    fn too_many_packages_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("pkgs.db")).unwrap();
        conn.execute_batch(MINIMAL_SCHEMA).unwrap();
        conn.execute_batch(
            "INSERT INTO MFG VALUES (1, 'M');
             INSERT INTO OS VALUES (1, 'OS', '1', 1);
             INSERT INTO PKG VALUES (1, 'a', '1', 1, 1, 'English', 'x'), (1, 'a', '1', 1, 1, 'French', 'x'),
                 (2, 'b', '1', 1, 1, 'English', 'x'), (3, 'c', '1', 1, 1, 'English', 'x');",
        )
        .unwrap();
        let schema = Schema::read(&conn).unwrap();
        let loaded = Packages::load(&conn, &schema, 3).map_err(|e| e.to_string()).unwrap();
        assert_eq!((loaded.packages.len(), loaded.ids.len()), (3, 3));
        assert_eq!(loaded.meta(0), (Some("a 1".into()), Some("OS 1".into()), Some("M".into())));
        match Packages::load(&conn, &schema, 2).map(|_| ()).unwrap_err() {
            Error::WrongFormat { format: "nsrl-rds3", why } => assert_eq!(
                why,
                "its PKG table has more than 2 distinct ids, far more than any NSRL release: refused rather than \
                 read into memory"
            ),
            e => panic!("{e:?}"),
        }
    }

    /// Digests are read like `Digest::parse_hex` of the trimmed text, through the fast path or not.
    #[test]
    fn digest_columns_read_like_trimmed_hex() {
        let sha1 = "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709";
        let want = Digest::parse_hex(DigestKind::Sha1, sha1).ok();
        let text = |s: &str| digest(ValueRef::Text(s.as_bytes()), DigestKind::Sha1);
        assert_eq!(text(sha1), want);
        assert_eq!(text(&sha1.to_ascii_lowercase()), want);
        assert_eq!(text(&format!(" \t{sha1}\r\n")), want);
        // Whitespace only `str::trim` knows (vertical tab, no-break space) takes the slow path, same answer.
        assert_eq!(text(&format!("\x0b{sha1}\u{a0}")), want);
        assert_eq!(digest(ValueRef::Blob(sha1.as_bytes()), DigestKind::Sha1), want);
        for bad in ["", "DA39", &sha1[1..], &format!("{sha1}0"), &sha1.replace('D', "G"), &sha1.replace('D', "\u{e9}")]
        {
            assert_eq!(text(bad), None, "{bad}");
        }
        assert_eq!(digest(ValueRef::Text(b"\xffA39A3EE5E6B4B0D3255BFEF95601890AFD80709"), DigestKind::Sha1), None);
        assert_eq!(digest(ValueRef::Null, DigestKind::Sha1), None);
        let digits = "12345678901234567890123456789012";
        assert_eq!(
            digest(ValueRef::Text(digits.as_bytes()), DigestKind::Md5),
            Digest::parse_hex(DigestKind::Md5, digits).ok()
        );
        assert_eq!(digest(ValueRef::Integer(1234), DigestKind::Md5), None);
    }

    fn wrong_why(path: &Path) -> String {
        match run(path) {
            Err(Error::WrongFormat { format: "nsrl-rds3", why }) => why,
            Err(e) => panic!("expected WrongFormat, got {e:?}"),
            Ok(_) => panic!("expected WrongFormat, got records"),
        }
    }

    #[test]
    fn files_that_are_not_rds_databases_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let why = wrong_why(&write("NSRLFile.txt", &std::fs::read(format!("{DATA}/NSRLFile.txt")).unwrap()));
        assert_eq!(why, "no SQLite header (an RDSv3 database starts with \"SQLite format 3\")");
        assert_eq!(wrong_why(&write("empty.db", b"")), "the file is empty");
        assert_eq!(wrong_why(&write("x.db.gz", b"\x1f\x8b\x08\0rest")), "it is gzip-compressed: decompress it first");
        assert!(wrong_why(&write("x.zip", b"PK\x03\x04rest")).contains("zip archive"));
        assert!(wrong_why(&write("short.db", b"SQLite format 3\0\x10\0")).starts_with("truncated"));
        // A valid header followed by garbage.
        let mut garbage = b"SQLite format 3\0".to_vec();
        garbage.extend(std::iter::repeat_n(0xA5u8, 4096 - 16));
        let why = wrong_why(&write("garbage.db", &garbage));
        assert!(why.contains("SQLite page size") || why.contains("not a readable database"), "{why}");

        let other = dir.path().join("other.db");
        Connection::open(&other).unwrap().execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);").unwrap();
        assert_eq!(wrong_why(&other), "no FILE table: not an NSRL RDSv3 database");

        let nohash = dir.path().join("nohash.db");
        Connection::open(&nohash).unwrap().execute_batch("CREATE TABLE file (name, size);").unwrap();
        assert!(wrong_why(&nohash).contains("no sha256, sha1 or md5 column"));

        let broken_view = dir.path().join("view.db");
        let conn = Connection::open(&broken_view).unwrap();
        conn.execute_batch("CREATE TABLE m (sha1); CREATE VIEW FILE AS SELECT sha1 FROM m; DROP TABLE m;").unwrap();
        drop(conn);
        let why = wrong_why(&broken_view);
        assert!(why.contains("FILE"), "{why}");

        let missing = run(&dir.path().join("missing.db")).map(|_| ()).unwrap_err();
        assert!(matches!(missing, Error::Io(_)), "{missing:?}");
    }

    /// A database big enough to span many pages.
    fn big_db(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        let mut conn = Connection::open(&path).unwrap();
        conn.execute_batch(MINIMAL_SCHEMA).unwrap();
        let tx = conn.transaction().unwrap();
        for i in 0..5000u32 {
            let h = format!("{i:040X}");
            tx.execute(
                "INSERT INTO FILE VALUES (?1, ?2, ?3, '0', ?4, ?5, 1)",
                (format!("{h}{}", &h[..24]), &h, &h[..32], format!("f{i}"), i),
            )
            .unwrap();
        }
        tx.commit().unwrap();
        path
    }

    #[test]
    fn truncated_and_corrupt_databases_give_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let whole = big_db(dir.path(), "whole.db");
        assert_eq!(run(&whole).unwrap().1.records.len(), 5000);
        let bytes = std::fs::read(&whole).unwrap();
        assert!(bytes.len() > 100_000);

        let half = dir.path().join("half.db");
        std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
        let why = wrong_why(&half);
        assert!(why.starts_with("truncated: the SQLite header says"), "{why}");

        // Cut in half, with the page count in the header invalidated: SQLite itself finds the damage.
        let mut cut = bytes[..bytes.len() / 2].to_vec();
        cut[92..96].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        let cut_path = dir.path().join("cut.db");
        std::fs::write(&cut_path, &cut).unwrap();
        let why = wrong_why(&cut_path);
        assert!(why.starts_with("the database is corrupt after FILE row "), "{why}");

        // Page 2 and more overwritten with garbage.
        let page = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
        for (name, range) in [("page2.db", page..2 * page), ("pages.db", page..bytes.len() / 2)] {
            let mut bad = bytes.clone();
            for (i, b) in bad[range].iter_mut().enumerate() {
                *b = (i as u8).wrapping_mul(151).wrapping_add(7);
            }
            let p = dir.path().join(name);
            std::fs::write(&p, &bad).unwrap();
            let why = wrong_why(&p);
            assert!(why.starts_with("the database is corrupt ") && why.ends_with("malformed"), "{why}");
        }
    }

    #[test]
    fn versions_compare_piecewise_and_dates_are_days() {
        assert_eq!(version_cmp("2024.12.1", "2024.3.1"), Ordering::Greater);
        assert_eq!(version_cmp("2024.03.1", "2024.3.1"), Ordering::Equal);
        assert_eq!(version_cmp("2.75", "2.9"), Ordering::Greater);
        assert_eq!(version_cmp("2024.03.1", "2024.03.1a"), Ordering::Less);
        assert_eq!(date_of("2024-03-01 00:00:00"), Some("2024-03-01".into()));
        assert_eq!(date_of("2024-03-01T00:00:00Z"), Some("2024-03-01".into()));
        assert_eq!(date_of(" 2024-03-01 "), Some("2024-03-01".into()));
        assert_eq!(date_of("03/01/2024"), None);
        assert_eq!(date_of("2024-03-01x"), None);
        assert_eq!(date_of("2024-03-é"), None);
        assert_eq!(name_version(Some("TBD".into()), Some("none".into())), Some("TBD".into()));
        assert_eq!(name_version(Some("Vinux ".into()), Some("5.1".into())), Some("Vinux 5.1".into()));
        assert_eq!(name_version(None, Some(" ".into())), None);
    }

    #[cfg(unix)]
    #[test]
    fn odd_paths_survive_the_uri() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a dir?#%&=x");
        std::fs::create_dir(&sub).unwrap();
        let path = minimal_db(&sub);
        assert_eq!(run(&path).unwrap().1.records.len(), 10);
        assert!(immutable_uri(Path::new("//host/x.db")).to_str().unwrap().starts_with("file:////host/"));
        // A relative path.
        assert_eq!(immutable_uri(Path::new("x y.db")).to_str().unwrap(), "file:x%20y.db?immutable=1");
    }
}

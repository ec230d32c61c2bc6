//! What SQLite itself can write on this machine, with none of filerep's code around it: the ceiling under
//! `filerep db import`. `cargo bench --bench sqlite_ceiling [-- ROWS]` (default 3,000,000).
//!
//! Each case inserts ROWS rows in key order into a fresh file with the settings an import uses (no journal,
//! no sync, one transaction) on one thread:
//! - `digest rows`: the layout of a feed version's digest table, `(kind, digest BLOB, record, class)` as a
//!   `WITHOUT ROWID` primary key, 32-byte digests;
//! - `integer keys`: a rowid table keyed by the first eight bytes of the digest, the cheapest B-tree SQLite
//!   builds (an upper bound for any digest-keyed layout);
//! - `records`: the record table, with an NSRL-like metadata JSON of about 100 bytes.

#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use rusqlite::{Connection, params};
use std::time::Instant;

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn fresh(dir: &std::path::Path, name: &str) -> Connection {
    let c = Connection::open(dir.join(name)).expect("open");
    c.execute_batch(
        "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-65536; PRAGMA locking_mode=EXCLUSIVE;",
    )
    .expect("pragmas");
    c
}

fn report(what: &str, rows: usize, t: Instant) {
    let s = t.elapsed().as_secs_f64();
    println!("{what:<14} {rows:>10} rows {s:>7.2} s {:>10.0} rows/s", rows as f64 / s);
}

fn main() {
    let rows: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.parse().expect("ROWS must be a number"))
        .unwrap_or(3_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut keys: Vec<[u8; 32]> = (0..rows)
        .map(|_| {
            let mut k = [0u8; 32];
            for c in k.chunks_mut(8) {
                c.copy_from_slice(&xorshift(&mut seed).to_le_bytes());
            }
            k
        })
        .collect();
    keys.sort_unstable();

    let c = fresh(dir.path(), "digests.sqlite");
    c.execute_batch(
        "CREATE TABLE d (kind INTEGER NOT NULL, digest BLOB NOT NULL, record INTEGER NOT NULL, class INTEGER NOT NULL,
                         PRIMARY KEY (kind, digest, record)) WITHOUT ROWID;",
    )
    .expect("schema");
    let t = Instant::now();
    c.execute_batch("BEGIN").expect("begin");
    {
        let mut st = c.prepare("INSERT INTO d VALUES (?1, ?2, ?3, ?4)").expect("prepare");
        for (i, k) in keys.iter().enumerate() {
            st.execute(params![3, &k[..], i as i64, 1]).expect("insert");
        }
    }
    c.execute_batch("COMMIT").expect("commit");
    report("digest rows", rows, t);

    let c = fresh(dir.path(), "integers.sqlite");
    c.execute_batch("CREATE TABLE d (k INTEGER PRIMARY KEY, record INTEGER NOT NULL);").expect("schema");
    let mut ints: Vec<i64> = keys.iter().map(|k| i64::from_be_bytes(k[..8].try_into().unwrap())).collect();
    ints.sort_unstable();
    ints.dedup();
    let t = Instant::now();
    c.execute_batch("BEGIN").expect("begin");
    {
        let mut st = c.prepare("INSERT INTO d VALUES (?1, ?2)").expect("prepare");
        for (i, k) in ints.iter().enumerate() {
            st.execute(params![k, i as i64]).expect("insert");
        }
    }
    c.execute_batch("COMMIT").expect("commit");
    report("integer keys", ints.len(), t);

    let metas: Vec<(String, String)> = (0..rows)
        .map(|i| {
            let name = format!("file{i}.dll");
            let meta = format!(
                r#"{{"file_name":"{name}","size":{i},"package":"Some Package 1.{}","os":"Windows 10","company":"Microsoft"}}"#,
                i % 2000
            );
            (name, meta)
        })
        .collect();
    let c = fresh(dir.path(), "records.sqlite");
    c.execute_batch(
        "CREATE TABLE r (id INTEGER PRIMARY KEY, class INTEGER NOT NULL, name_key TEXT, best_kind INTEGER, best BLOB, meta TEXT);",
    )
    .expect("schema");
    let t = Instant::now();
    c.execute_batch("BEGIN").expect("begin");
    {
        let mut st = c
            .prepare("INSERT INTO r (class, name_key, best_kind, best, meta) VALUES (?1, ?2, ?3, ?4, ?5)")
            .expect("prepare");
        for (k, (name, meta)) in keys.iter().zip(&metas) {
            st.execute(params![1, name, 3, &k[..], meta]).expect("insert");
        }
    }
    c.execute_batch("COMMIT").expect("commit");
    report("records", rows, t);
}

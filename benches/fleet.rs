//! Fleet prevalence benchmarks (issue 7): how fast the store records sightings, and how long the aggregate of
//! one file takes when 100,000 sightings of it are recorded.
//!
//! `cargo bench --bench fleet` (optionally `-- SIGHTINGS`, default 100,000) runs:
//! 1. ingest: `SqliteStore::record_observation` (what `POST /v1/sightings` and `filerep observe` call) of
//!    1,000 runs of 100 executables each from 1,000 participants → sightings/s;
//! 2. the aggregate: SIGHTINGS sightings of one file from SIGHTINGS distinct participants (the worst case:
//!    one roll-up row each), then `SqliteStore::prevalence` of that file (participants, every figure, three
//!    distributions, common paths), warm cache → p50/p99/max in ms over 200 queries;
//! 3. the same for a file below the floor (the early exit) and one never seen.
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it runs once on 2,000 sightings as a smoke test.
//! Results go to stdout as a Markdown table; docs/performance.md keeps the figures. The HTTP figures (ingest
//! rate over loopback, the query through `filerep serve`) come from benches/fleet-load.sh. The file with
//! SIGHTINGS sightings has the SHA-256 0100000000000000 followed by 23 zero bytes and 5a.

#![allow(clippy::print_stdout)]

use std::time::Instant;

use filerep::store::fleet::HostKey;
use filerep::store::sqlite::{Mode, ObservationRow, SightingRow, SqliteStore};
use filerep::store::{Digest, DigestKind};

fn digest_of(n: u64) -> ([u8; 32], [u8; 20], [u8; 16]) {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&n.to_le_bytes());
    s[31] = 0x5a;
    let mut s1 = [0u8; 20];
    s1[..8].copy_from_slice(&n.to_le_bytes());
    let mut m = [0u8; 16];
    m[..8].copy_from_slice(&n.to_le_bytes());
    (s, s1, m)
}

fn sighting(file: u64, participant: u64) -> SightingRow {
    let (sha256, sha1, md5) = digest_of(file);
    let p = participant as i64;
    SightingRow {
        sha256,
        sha1,
        md5,
        path: format!("/usr/lib/bench/tool-{file}"),
        processes: 1 + p % 3,
        parent: Some(["systemd", "bash", "sshd"][(participant % 3) as usize].into()),
        command_line: Some(format!("/usr/lib/bench/tool-{file} --mode {}", p % 7)),
        owner: Some(["root", "www-data"][(participant % 2) as usize].into()),
        privilege: Some(["root", "user"][(participant % 2) as usize].into()),
        platform: Some("64-bit".into()),
        cpu_percent: Some((p % 100) as f64 / 10.0),
        private: (1_000_000 + p * 13, 2_000_000),
        virtual_bytes: (50_000_000 + p, 60_000_000),
        working_set: (3_000_000 + p * 7, 4_000_000),
        peak_working_set: 5_000_000,
        threads: ((p % 16) as f64, 16),
        handles: ((p % 64) as f64, 64),
    }
}

/// SplitMix64: participant ids spread over the key space like real (random) ones, not in insertion order.
fn scramble(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn run(participant: u64, started_at: i64) -> ObservationRow {
    let countries = ["DE", "US", "FR", "JP", "BR", "IN", "GB", "NL"];
    let oses = ["Debian GNU/Linux 12", "Ubuntu 24.04", "Fedora Linux 41", "Alpine Linux 3.20"];
    ObservationRow {
        participant: format!("{:016x}{:016x}", scramble(participant), scramble(!participant)),
        started_at,
        duration_ms: 30_000,
        samples: 31,
        host: "{}".into(),
        host_key: HostKey {
            os: Some(oses[(participant % 4) as usize].into()),
            country: Some(countries[(participant % 8) as usize].into()),
            manufacturer: (participant % 5 != 0)
                .then(|| ["Dell Inc.", "LENOVO", "HP"][(participant % 3) as usize].into()),
        },
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn query(store: &SqliteStore, digests: &[Digest], rounds: usize) -> (f64, f64, f64, u64, bool) {
    let mut times = Vec::with_capacity(rounds);
    let mut last = None;
    for _ in 0..rounds {
        let t = Instant::now();
        let p = store.prevalence(digests, 200).expect("prevalence");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        last = Some(p);
    }
    times.sort_by(f64::total_cmp);
    let p = last.expect("at least one round");
    (percentile(&times, 0.5), percentile(&times, 0.99), times[times.len() - 1], p.participants, p.withheld)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(if bench { 100_000 } else { 2_000 });
    let dir = tempfile::tempdir().expect("temp dir");
    // FLEET_BENCH_STORE=PATH keeps the store (benches/fleet-load.sh serves it to measure the query over HTTP).
    let path = std::env::var_os("FLEET_BENCH_STORE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("fleet.sqlite"));
    assert!(!path.exists(), "{} exists: the benchmark builds a new store", path.display());
    let store = SqliteStore::open(&path, Mode::Write).expect("store");

    // 1. Ingest: runs of 100 executables.
    let runs = if bench { 1_000 } else { 20 };
    let files_per_run = 100;
    let t = Instant::now();
    for r in 0..runs {
        let mut rows: Vec<SightingRow> = (0..files_per_run).map(|f| sighting(1_000 + f, r)).collect();
        // A file only 150 participants (or fewer) ran: below the floor.
        if r < 150 {
            rows.push(sighting(500, r));
        }
        store.record_observation(&run(r, 1_700_000_000), &[], &rows).expect("record");
    }
    let ingest = t.elapsed().as_secs_f64();
    let sightings = (runs * files_per_run + runs.min(150)) as f64;
    // The same, eight runs a transaction (what `filerep serve` does when machines report at once).
    let t = Instant::now();
    for g in 0..runs / 8 {
        let group: Vec<(ObservationRow, Vec<SightingRow>)> = (0..8)
            .map(|k| {
                let r = 10_000_000 + g * 8 + k;
                (run(r, 1_700_000_000), (0..files_per_run).map(|f| sighting(1_000 + f, r)).collect())
            })
            .collect();
        let refs: Vec<(&ObservationRow, &[SightingRow])> = group.iter().map(|(r, s)| (r, s.as_slice())).collect();
        store.record_observations(&refs).expect("record");
    }
    let grouped = t.elapsed().as_secs_f64();
    let grouped_sightings = ((runs / 8) * 8 * files_per_run) as f64;

    // 2. One file seen by n participants, one sighting each (with one other file in each run).
    let t = Instant::now();
    for p in 0..n {
        let rows = [sighting(1, p), sighting(2 + p % 50, p)];
        store.record_observation(&run(1_000_000 + p, 1_700_000_000), &[], &rows).expect("record");
    }
    let build = t.elapsed().as_secs_f64();
    let sha = |file: u64| [Digest::from_bytes(DigestKind::Sha256, &digest_of(file).0).expect("a SHA-256")];
    let rounds = if bench { 200 } else { 5 };
    let (p50, p99, max, participants, withheld) = query(&store, &sha(1), rounds);
    assert_eq!((participants, withheld), (n, n < 200), "the aggregate counts every participant");
    // 3. Below the floor (a file in 150 runs of step 1 only) and never seen.
    let (b50, b99, bmax, bp, bw) = query(&store, &sha(500), rounds);
    assert!(bw && bp == runs.min(150), "below the floor");
    let (m50, m99, mmax, mp, _) = query(&store, &sha(999_999_999), rounds);
    assert_eq!(mp, 0);

    println!("| measure | figure |");
    println!("|---|---|");
    println!(
        "| ingest, `record_observation` of {runs} runs × {files_per_run} executables | {:.0} sightings/s ({:.2} ms a run) |",
        sightings / ingest,
        ingest * 1000.0 / runs as f64
    );
    println!(
        "| ingest, `record_observations`, 8 runs a transaction | {:.0} sightings/s ({:.2} ms a run) |",
        grouped_sightings / grouped,
        grouped * 1000.0 / ((runs / 8) * 8) as f64
    );
    println!("| building {n} sightings of one file (2 per run) | {:.1} s |", build);
    println!(
        "| `prevalence` of a file with {n} sightings from {n} participants | p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms |"
    );
    println!(
        "| `prevalence` below the floor ({bp} participants) | p50 {b50:.3} ms, p99 {b99:.3} ms, max {bmax:.3} ms |"
    );
    println!("| `prevalence` of a file never seen | p50 {m50:.3} ms, p99 {m99:.3} ms, max {mmax:.3} ms |");
}

//! Authenticode verification alone, per signed corpus file, in one process (the anchors are parsed once):
//! the image-hash ranges, the image hash itself (nothing precomputed: the algorithm the signature names is
//! hashed here), and every check of `authenticode::verify_pe`. No other digest, no PE analysis. "Cold" makes a
//! new verifier per file (no certificate link remembered); "warm" shares one, as a `check` of many files does.
//!
//! `cargo bench --bench verify` (corpus in `$FILEREP_CORPUS`, default `~/.cache/filerep/corpus`; files that
//! are missing are skipped). `benches/authenticode.sh` times the whole `check` against osslsigncode.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use filerep::analysis::authenticode::image_hash_layout;
use filerep::authenticode::trust::TrustStore;
use filerep::authenticode::{ImageHashes, Verifier, verify_pe};

const SIGNED: [&str; 5] =
    ["vcruntime140.dll", "msvcp140.dll", "shimx64.efi.signed", "fbx64.efi.signed", "tampered-vcruntime140.dll"];

fn corpus() -> PathBuf {
    std::env::var_os("FILEREP_CORPUS")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/filerep/corpus"))
}

fn verify(c: &mut Criterion) {
    let trust = Arc::new(TrustStore::bundled());
    let files: Vec<(&str, Vec<u8>)> =
        SIGNED.iter().filter_map(|n| Some((*n, std::fs::read(corpus().join(n)).ok()?))).collect();
    let mut g = c.benchmark_group("authenticode-verify");
    g.sample_size(20);
    let run = |data: &[u8], verifier: &Verifier| {
        let layout = image_hash_layout(data, data.len() as u64).expect("a PE");
        let mut hashes = ImageHashes::new(data, &layout.hashed, &[]);
        verify_pe(data, &layout, &mut hashes, verifier)
    };
    // Cold: a new verifier per file, so no certificate link is remembered from an earlier file.
    for (name, data) in &files {
        let status = run(data, &Verifier::new(trust.clone())).status;
        assert_ne!(status, filerep::report::SignatureStatus::Absent, "{name} is signed");
        g.bench_function(format!("{name} (cold)"), |b| b.iter(|| run(black_box(data), &Verifier::new(trust.clone()))));
    }
    g.bench_function(format!("all {} files (cold)", files.len()), |b| {
        b.iter(|| {
            files.iter().map(|(_, d)| run(black_box(d), &Verifier::new(trust.clone())).signatures.len()).sum::<usize>()
        })
    });
    // Warm: one verifier for the process, as `check` and `scan` use it: links checked once.
    let shared = Verifier::new(trust.clone());
    g.bench_function(format!("all {} files (warm)", files.len()), |b| {
        b.iter(|| files.iter().map(|(_, d)| run(black_box(d), &shared).signatures.len()).sum::<usize>())
    });
    g.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);

//! Throughput of each digest alone and of filerep's one-pass hashing, on in-memory data.
//!
//! `cargo bench --bench digests` prints MB/s per digest; docs/performance.md records the figures and uses
//! them to explain how `hashing::groups` splits the digests over two threads (MD5 is the slowest and cannot be
//! split, so it runs alone with the cheapest companions).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use filerep::hashing::{Plan, digest_in_memory};
use md5::Digest;

/// Deterministic, varied bytes (xorshift), so that TLSH and ssdeep do real work.
fn data(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

fn single_digests(c: &mut Criterion) {
    let d = data(8 << 20);
    let mut g = c.benchmark_group("digest-8MiB");
    g.throughput(Throughput::Bytes(d.len() as u64));
    g.sample_size(10);
    g.bench_function("md5", |b| b.iter(|| md5::Md5::digest(black_box(&d))));
    g.bench_function("sha1", |b| b.iter(|| sha1::Sha1::digest(black_box(&d))));
    g.bench_function("sha256", |b| b.iter(|| sha2::Sha256::digest(black_box(&d))));
    g.bench_function("entropy-histogram", |b| b.iter(|| filerep::entropy::shannon(black_box(&d))));
    g.bench_function("tlsh", |b| b.iter(|| tlsh2::TlshDefaultBuilder::build_from(black_box(&d)).map(|t| t.hash())));
    g.bench_function("ssdeep", |b| b.iter(|| filerep::ssdeep::hash(black_box(&d))));
    g.bench_function("ssdeep-fuzzyhash-crate", |b| b.iter(|| fuzzyhash::FuzzyHash::new(black_box(&d)).to_string()));
    g.finish();
}

fn one_pass(c: &mut Criterion) {
    let mut g = c.benchmark_group("one-pass");
    g.sample_size(10);
    for (name, n) in [("1MiB-one-thread", 1usize << 20), ("8MiB-two-threads", 8 << 20)] {
        let d = data(n);
        g.throughput(Throughput::Bytes(n as u64));
        let file_digests = Plan::default();
        let everything = Plan { fuzzy: true, authentihash: Some(vec![0..200, 216..n as u64]), ..Default::default() };
        g.bench_function(format!("{name}/file-digests"), |b| b.iter(|| digest_in_memory(black_box(&d), &file_digests)));
        g.bench_function(format!("{name}/all-digests"), |b| b.iter(|| digest_in_memory(black_box(&d), &everything)));
    }
    g.finish();
}

criterion_group!(benches, single_digests, one_pass);
criterion_main!(benches);

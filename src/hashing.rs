//! Hashing: every digest of a file in ONE pass over its bytes.
//!
//! The pass feeds, chunk by chunk while the chunk is hot in cache, MD5, SHA-1, SHA-256, the byte histogram
//! (whole-file entropy), TLSH, ssdeep and the Authenticode image hash (SHA-1 and SHA-256 over the file minus
//! the ranges [`crate::analysis::authenticode`] excludes; the ranges come from the headers before the pass
//! starts). For large inputs the digests are split over two threads that walk the same bytes, so the wall
//! time approaches the slowest single digest (MD5) instead of the sum of all of them.
//!
//! Files over the size cap are streamed through [`digest_stream`]: a reader thread fills fixed-size buffers
//! that the digest threads share, so memory stays bounded; only the file digests and the entropy are
//! computed then (the fuzzy hashes and the image hash need the analysis the cap rules out).
//!
//! Hashing never depends on parsing.

use std::io::{self, Read};
use std::ops::Range;
use std::sync::Arc;
use std::sync::mpsc;

use md5::{Digest, Md5};
use sha1::Sha1;
use sha2::Sha256;

use crate::entropy::Histogram;
use crate::hex;

/// Bytes handed to each digest at a time: small enough to stay in L2 while every digest reads it.
const CHUNK: usize = 16 * 1024;

/// Inputs at least this large are hashed on two threads.
pub const PARALLEL_THRESHOLD: usize = 2 * 1024 * 1024;

/// What to compute besides the file digests and entropy.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Compute TLSH and ssdeep.
    pub fuzzy: bool,
    /// Compute the Authenticode image hash over these ranges (from `image_hash_layout`).
    pub authentihash: Option<Vec<Range<u64>>>,
    /// Leave the byte histogram (entropy) out: the PE analysis assembles it from the sections' histograms.
    pub skip_entropy: bool,
    /// Never split the digests over two threads (the caller already runs one file per core).
    pub one_thread: bool,
}

/// The digests of one file (lower-case hex).
#[derive(Debug, Clone, PartialEq)]
pub struct Digests {
    /// MD5.
    pub md5: String,
    /// SHA-1.
    pub sha1: String,
    /// SHA-256.
    pub sha256: String,
    /// Shannon entropy in bits per byte.
    pub entropy: f64,
    /// Bytes hashed.
    pub size: u64,
    /// TLSH, "T1…" or "TNULL" (when planned).
    pub tlsh: Option<String>,
    /// ssdeep (when planned).
    pub ssdeep: Option<String>,
    /// Authenticode image hash, SHA-1 (when planned).
    pub authentihash_sha1: Option<String>,
    /// Authenticode image hash, SHA-256 (when planned).
    pub authentihash_sha256: Option<String>,
}

/// One group of digests that a thread runs over the bytes.
#[derive(Default)]
struct Group {
    md5: Option<Md5>,
    sha1: Option<Sha1>,
    sha256: Option<Sha256>,
    hist: Option<Box<Histogram>>,
    tlsh: Option<Box<tlsh2::TlshDefaultBuilder>>,
    ssdeep: Option<Box<crate::ssdeep::Ssdeep>>,
    auth: Option<(Vec<Range<u64>>, Sha1, Sha256)>,
    offset: u64,
}

impl Group {
    fn update(&mut self, chunk: &[u8]) {
        if let Some(h) = &mut self.md5 {
            h.update(chunk);
        }
        if let Some(h) = &mut self.sha1 {
            h.update(chunk);
        }
        if let Some(h) = &mut self.sha256 {
            h.update(chunk);
        }
        if let Some(h) = &mut self.hist {
            h.update(chunk);
        }
        if let Some(h) = &mut self.tlsh {
            h.update(chunk);
        }
        if let Some(h) = &mut self.ssdeep {
            h.update(chunk);
        }
        if let Some((ranges, s1, s256)) = &mut self.auth {
            let start = self.offset;
            let end = start + chunk.len() as u64;
            for r in ranges.iter() {
                let (a, b) = (r.start.max(start), r.end.min(end));
                if a < b {
                    let piece = &chunk[(a - start) as usize..(b - start) as usize];
                    s1.update(piece);
                    s256.update(piece);
                }
            }
        }
        self.offset += chunk.len() as u64;
    }

    fn run(&mut self, data: &[u8]) {
        for chunk in data.chunks(CHUNK) {
            self.update(chunk);
        }
    }

    fn finish_into(self, d: &mut Digests) {
        if let Some(h) = self.md5 {
            d.md5 = hex::encode(&h.finalize());
        }
        if let Some(h) = self.sha1 {
            d.sha1 = hex::encode(&h.finalize());
        }
        if let Some(h) = self.sha256 {
            d.sha256 = hex::encode(&h.finalize());
        }
        if let Some(h) = self.hist {
            d.entropy = h.entropy();
            d.size = h.total();
        }
        if let Some(h) = self.tlsh {
            d.tlsh = Some(match h.build() {
                Some(t) => String::from_utf8_lossy(&t.hash()).into_owned(),
                None => "TNULL".to_string(),
            });
        }
        if let Some(h) = self.ssdeep {
            d.ssdeep = Some(h.finish());
        }
        if let Some((_, s1, s256)) = self.auth {
            d.authentihash_sha1 = Some(hex::encode(&s1.finalize()));
            d.authentihash_sha256 = Some(hex::encode(&s256.finalize()));
        }
    }
}

fn empty_digests() -> Digests {
    Digests {
        md5: String::new(),
        sha1: String::new(),
        sha256: String::new(),
        entropy: 0.0,
        size: 0,
        tlsh: None,
        ssdeep: None,
        authentihash_sha1: None,
        authentihash_sha256: None,
    }
}

/// Split the planned digests for an input of `len` bytes over `threads` groups (1 or 2), balancing their
/// cost per byte.
///
/// Measured cost per byte on one core of the 2-core x86-64 development machine with SHA-NI (`cargo bench
/// --bench digests`, figures in docs/performance.md): MD5 ≈ 1.9 ns, SHA-1 ≈ 0.65 ns, SHA-256 ≈ 0.7 ns, the
/// histogram ≈ 0.5 ns, TLSH ≈ 8 ns, ssdeep ≈ 6.5 ns, the image hash (SHA-1 + SHA-256) ≈ 1.35 ns. MD5 cannot
/// be split, so it goes with TLSH on one thread (≈ 9.9 ns) and everything else on the other (≈ 9.7 ns).
fn groups(plan: &Plan, len: u64, threads: usize) -> Vec<Group> {
    let mut a = Group { md5: Some(Md5::new()), ..Default::default() };
    let mut b = Group {
        sha1: Some(Sha1::new()),
        sha256: Some(Sha256::new()),
        hist: (!plan.skip_entropy).then(Box::default),
        ..Default::default()
    };
    if plan.fuzzy {
        a.tlsh = Some(Box::new(tlsh2::TlshDefaultBuilder::new()));
        b.ssdeep = Some(Box::new(crate::ssdeep::Ssdeep::new(len)));
    }
    if let Some(r) = &plan.authentihash {
        b.auth = Some((r.clone(), Sha1::new(), Sha256::new()));
    }
    if threads <= 1 {
        // One thread: everything in one group.
        a.sha1 = b.sha1;
        a.sha256 = b.sha256;
        a.hist = b.hist;
        a.ssdeep = b.ssdeep;
        a.auth = b.auth;
        vec![a]
    } else {
        vec![a, b]
    }
}

/// Hash bytes held in memory, on two threads when the input is large.
pub fn digest_in_memory(data: &[u8], plan: &Plan) -> Digests {
    let threads = if data.len() >= PARALLEL_THRESHOLD && !plan.one_thread { 2 } else { 1 };
    let mut d = empty_digests();
    // Each thread owns its group, boxed: two groups side by side in one allocation would share cache lines
    // between the threads (the digest states are written on every block), which halved the throughput.
    let mut groups: Vec<Box<Group>> = groups(plan, data.len() as u64, threads).into_iter().map(Box::new).collect();
    let own = groups.remove(0);
    let other = groups.pop();
    let (own, other) = std::thread::scope(|s| {
        let h = other.map(|mut g| {
            s.spawn(move || {
                g.run(data);
                g
            })
        });
        let mut own = own;
        own.run(data);
        // A panic in a digest is a bug in a dependency; propagate it rather than hide it.
        let other = h.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        (own, other)
    });
    own.finish_into(&mut d);
    if let Some(g) = other {
        g.finish_into(&mut d);
    }
    d.size = data.len() as u64;
    d
}

/// Size of the buffers the reader thread fills when streaming.
const STREAM_BUFFER: usize = 1024 * 1024;

/// Hash a stream (a file over the size cap): `head` holds bytes already read from it, `rest` the remainder.
/// Only the file digests and the entropy are computed. Memory stays bounded: the reader fills 1 MiB buffers
/// that both digest threads read, at most a few ahead, and buffers are reused once both threads are done
/// with them (a fresh buffer per read cost a page fault per 4 KiB, a third of the time on a 1 GiB file).
pub fn digest_stream(head: Vec<u8>, rest: &mut dyn Read) -> io::Result<Digests> {
    let mut groups = groups(&Plan::default(), 0, 2).into_iter().map(Box::new);
    let (g0, g1) = (groups.next().expect("two groups"), groups.next().expect("two groups"));
    let mut d = empty_digests();
    std::thread::scope(|s| -> io::Result<()> {
        // Bounded channels: the reader can run at most a few buffers ahead of the slowest digest thread.
        let (tx0, rx0) = mpsc::sync_channel::<Arc<Vec<u8>>>(4);
        let (tx1, rx1) = mpsc::sync_channel::<Arc<Vec<u8>>>(4);
        let worker = |mut g: Box<Group>, rx: mpsc::Receiver<Arc<Vec<u8>>>| {
            move || {
                for buf in rx {
                    for c in buf.chunks(CHUNK) {
                        g.update(c);
                    }
                }
                g
            }
        };
        let h0 = s.spawn(worker(g0, rx0));
        let h1 = s.spawn(worker(g1, rx1));
        let send = |buf: &Arc<Vec<u8>>| -> bool { tx0.send(buf.clone()).is_ok() && tx1.send(buf.clone()).is_ok() };
        let mut in_flight: std::collections::VecDeque<Arc<Vec<u8>>> = std::collections::VecDeque::new();
        let mut result = Ok(());
        if !head.is_empty() {
            let head = Arc::new(head);
            send(&head);
            in_flight.push_back(head);
        }
        loop {
            // Reuse the oldest buffer once both digest threads have dropped it.
            let mut buf = match in_flight.front().map(Arc::strong_count) {
                Some(1) => Arc::try_unwrap(in_flight.pop_front().expect("front exists")).unwrap_or_default(),
                _ => Vec::new(),
            };
            buf.resize(STREAM_BUFFER, 0);
            let mut filled = 0;
            let mut eof = false;
            while filled < buf.len() {
                match rest.read(&mut buf[filled..]) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        result = Err(e);
                        eof = true;
                        break;
                    }
                }
            }
            buf.truncate(filled);
            if !buf.is_empty() {
                let buf = Arc::new(buf);
                if !send(&buf) {
                    break;
                }
                in_flight.push_back(buf);
                // Keep the pool small: buffers beyond what the channels can hold are left to be freed.
                while in_flight.len() > 12 {
                    in_flight.pop_front();
                }
            }
            if eof {
                break;
            }
        }
        drop(tx0);
        drop(tx1);
        for h in [h0, h1] {
            match h.join() {
                Ok(g) => g.finish_into(&mut d),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        result
    })?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        // A deterministic, varied byte pattern (xorshift).
        let mut x = 0x2545_f491_4f6c_dd1du64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn known_vectors() {
        let d = digest_in_memory(b"abc", &Plan::default());
        assert_eq!(d.md5, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(d.sha1, "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(d.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let e = digest_in_memory(b"", &Plan { fuzzy: true, ..Default::default() });
        assert_eq!(e.md5, "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(e.entropy, 0.0);
        assert_eq!(e.tlsh.as_deref(), Some("TNULL"));
        assert_eq!(e.ssdeep.as_deref(), Some("3::"));
    }

    #[test]
    fn tlsh_equals_the_reference() {
        for &(n, seed, _, _, tlsh) in crate::test_vectors::VECTORS {
            let d = digest_in_memory(&crate::test_vectors::lcg(n, seed), &Plan { fuzzy: true, ..Default::default() });
            assert_eq!(d.tlsh.as_deref(), Some(tlsh), "{n} bytes");
        }
    }

    #[test]
    fn one_thread_and_two_threads_agree() {
        let data = sample(PARALLEL_THRESHOLD + 12345);
        let plan = Plan { fuzzy: true, authentihash: Some(vec![0..100, 200..data.len() as u64]), ..Default::default() };
        let two = digest_in_memory(&data, &plan);
        let mut g = groups(&plan, data.len() as u64, 1);
        g[0].run(&data);
        let mut one = empty_digests();
        g.pop().unwrap().finish_into(&mut one);
        one.size = data.len() as u64;
        assert_eq!(one, two);
        // The image hash over ranges equals a plain hash of the concatenated ranges.
        let mut joined = data[..100].to_vec();
        joined.extend_from_slice(&data[200..]);
        let plain = digest_in_memory(&joined, &Plan::default());
        assert_eq!(two.authentihash_sha256.as_deref(), Some(plain.sha256.as_str()));
        assert_eq!(two.authentihash_sha1.as_deref(), Some(plain.sha1.as_str()));
    }

    #[test]
    fn streaming_equals_in_memory() {
        let data = sample(3 * STREAM_BUFFER + 777);
        let mem = digest_in_memory(&data, &Plan::default());
        let (head, rest) = data.split_at(4096);
        let streamed = digest_stream(head.to_vec(), &mut &rest[..]).unwrap();
        assert_eq!(streamed.md5, mem.md5);
        assert_eq!(streamed.sha1, mem.sha1);
        assert_eq!(streamed.sha256, mem.sha256);
        assert_eq!(streamed.entropy, mem.entropy);
        assert_eq!(streamed.size, data.len() as u64);
    }
}

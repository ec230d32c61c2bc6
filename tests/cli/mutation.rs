//! Mutation test: thousands of damaged variants of real and generated executables go through the library's
//! whole pipeline in-process, and nothing may panic, hang or break an invariant.
//!
//! Seeds are every corpus file when the corpus is fetched (see `conformance`), the generated fixtures, and a
//! few minimal headers built below. Each case is derived from (run seed, case number) alone by a xorshift
//! generator, so a failure is reproduced by its numbers whatever the thread schedule: it stacks one to four
//! mutations (byte flips, extreme values in header fields that the seed's own headers locate, truncation,
//! splicing two seeds, duplicated or zeroed regions, inserted or deleted bytes), biased towards the first
//! 4 KiB where the headers are. Each mutant goes through `pipeline::report_from_bytes`, `serde_json` and the
//! card renderer under `catch_unwind`, on worker threads watched by a 10 s hang guard (a guard, not a benchmark).
//!
//! Invariants: MD5/SHA-1/SHA-256 present and equal to an independent computation, `size` equal to the
//! mutant's length, never `good` unless fully analysed, the JSON reads back as a `Report`, and the colourless
//! card holds no control character but newlines (hostile strings must be neutralised).
//!
//! Environment: `FILEREP_MUTATION_CASES` (default 3000), `FILEREP_MUTATION_SEED` (decimal or 0x-hex; default
//! fixed), `FILEREP_MUTATION_CASE` (run only that case number, to reproduce one). A failing mutant is saved
//! under `target/tmp/mutation/`; the case in flight on each worker is kept in `target/tmp/mutation/in-flight-*`
//! so that even an abort (say, an allocation failure) leaves its numbers behind.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use filerep::report::Report;
use filerep::report::card;
use filerep::verdict::Level;

use crate::{conformance, fixtures};

const DEFAULT_CASES: u64 = 3000;
const DEFAULT_SEED: u64 = 0xf11e_5eed_2024_0001;
/// A single case running longer than this is a hang.
const CASE_TIMEOUT: Duration = Duration::from_secs(10);
/// Mutations favour this prefix, where the headers are.
const HEAD: usize = 4096;
/// Stop collecting after this many failures (the first ones are the useful ones).
const MAX_FAILURES: usize = 25;

// ------------------------------------------------------------------------------------------------ PRNG

/// xorshift64* (Vigna): tiny, fast, and good enough to pick mutations.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    /// A generator for one case, decorrelated from its neighbours by a splitmix64 step.
    fn for_case(seed: u64, case: u64) -> Rng {
        let mut z = seed ^ case.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(if z == 0 { 0x2545_f491_4f6c_dd1d } else { z })
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A position in `0..len` (`len > 0`), three times in four inside the first 4 KiB.
    fn position(&mut self, len: usize) -> usize {
        if len > HEAD && self.chance(75) { self.below(HEAD) } else { self.below(len) }
    }

    /// A length for a region: mostly short, sometimes long.
    fn span(&mut self) -> usize {
        match self.below(10) {
            0..=5 => 1 + self.below(16),
            6..=8 => 1 + self.below(512),
            _ => 1 + self.below(64 * 1024),
        }
    }
}

// ---------------------------------------------------------------------------------------------- seeds

struct Seed {
    name: String,
    data: Vec<u8>,
    /// Header fields found in this seed: (offset, width in bytes, big-endian).
    fields: Vec<Field>,
    /// Relative chance of being picked.
    weight: f64,
}

#[derive(Clone, Copy, Debug)]
struct Field {
    offset: usize,
    width: usize,
    big_endian: bool,
}

/// Seeds longer than this are used through their first `MAX_SEED` bytes: a debug build needs about a second
/// per MB to hash (TLSH and ssdeep unoptimised), and the hang guard must not fire on mere size.
const MAX_SEED: usize = 2 << 20;
/// Every seed longer than this is also used through its first `HEAD_SEED` bytes (the headers, cheap to run).
const HEAD_SEED: usize = 16 << 10;
/// Seeds are picked with a chance inversely proportional to their size, counted as at least this much, so that
/// every seed gets about the same time and the small ones most of the cases.
const WEIGHT_FLOOR: usize = 8 << 10;
/// At most this many bytes of another seed are spliced in.
const MAX_SPLICE: usize = 64 << 10;

fn seeds() -> Vec<Seed> {
    let mut list: Vec<(String, Vec<u8>)> = vec![
        ("minimal-pe32+".into(), minimal_pe(true)),
        ("minimal-pe32".into(), minimal_pe(false)),
        ("minimal-elf64".into(), minimal_elf()),
        ("minimal-macho64".into(), minimal_macho()),
        ("minimal-macho-fat".into(), minimal_fat_macho()),
        ("fixture-pe32+".into(), fixtures::valid_pe32_plus().bytes),
        ("fixture-pe32".into(), fixtures::valid_pe32().bytes),
        ("fixture-elf".into(), fixtures::Elf::sample().build()),
        ("fixture-macho".into(), fixtures::Macho::sample().build()),
        ("fixture-hostile-version".into(), fixtures::version_with_escape_sequences()),
        ("fixture-hostile-section".into(), fixtures::section_name_with_escapes()),
    ];
    if let Some(dir) = conformance::corpus_dir() {
        for row in conformance::manifest() {
            if let Ok(data) = std::fs::read(dir.join(&row.name)) {
                list.push((row.name, data));
            }
        }
    }
    let mut heads = Vec::new();
    for (name, data) in &mut list {
        if data.len() > MAX_SEED {
            data.truncate(MAX_SEED);
            name.push_str(" [first 2 MiB]");
        }
        if data.len() > HEAD_SEED {
            heads.push((format!("{name} [first 16 KiB]"), data[..HEAD_SEED].to_vec()));
        }
    }
    list.extend(heads);
    list.into_iter()
        .map(|(name, data)| {
            let fields = header_fields(&data);
            let weight = 1.0 / data.len().max(WEIGHT_FLOOR) as f64;
            Seed { name, data, fields, weight }
        })
        .collect()
}

/// Pick a seed by weight (deterministic: the same draws give the same seed).
fn pick_seed<'a>(rng: &mut Rng, seeds: &'a [Seed]) -> &'a Seed {
    let total: f64 = seeds.iter().map(|s| s.weight).sum();
    let mut x = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
    for s in seeds {
        if x < s.weight {
            return s;
        }
        x -= s.weight;
    }
    &seeds[seeds.len() - 1]
}

// --------------------------------------------------------------------------------- minimal images

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

/// A PE with one `.text` section, an import of KERNEL32!ExitProcess and (PE32) a certificate-table entry.
fn minimal_pe(plus: bool) -> Vec<u8> {
    let mut b = vec![0u8; 0x400];
    put(&mut b, 0, b"MZ");
    put(&mut b, 0x3c, &0x40u32.to_le_bytes());
    put(&mut b, 0x40, b"PE\0\0");
    let coff = 0x44;
    let opt_size: u16 = if plus { 0xf0 } else { 0xe0 };
    put(&mut b, coff, &(if plus { 0x8664u16 } else { 0x14c }).to_le_bytes());
    put(&mut b, coff + 2, &1u16.to_le_bytes()); // NumberOfSections
    put(&mut b, coff + 4, &0x6500_0000u32.to_le_bytes()); // TimeDateStamp
    put(&mut b, coff + 16, &opt_size.to_le_bytes());
    put(&mut b, coff + 18, &(if plus { 0x22u16 } else { 0x102 }).to_le_bytes());
    let opt = coff + 20;
    put(&mut b, opt, &(if plus { 0x20bu16 } else { 0x10b }).to_le_bytes());
    put(&mut b, opt + 16, &0x1000u32.to_le_bytes()); // AddressOfEntryPoint
    if plus {
        put(&mut b, opt + 24, &0x1_4000_0000u64.to_le_bytes());
    } else {
        put(&mut b, opt + 28, &0x40_0000u32.to_le_bytes());
    }
    put(&mut b, opt + 32, &0x1000u32.to_le_bytes()); // SectionAlignment
    put(&mut b, opt + 36, &0x200u32.to_le_bytes()); // FileAlignment
    put(&mut b, opt + 40, &6u16.to_le_bytes()); // MajorOperatingSystemVersion
    put(&mut b, opt + 48, &6u16.to_le_bytes()); // MajorSubsystemVersion
    put(&mut b, opt + 56, &0x2000u32.to_le_bytes()); // SizeOfImage
    put(&mut b, opt + 60, &0x200u32.to_le_bytes()); // SizeOfHeaders
    put(&mut b, opt + 68, &3u16.to_le_bytes()); // Subsystem: console
    put(&mut b, opt + 70, &0x8160u16.to_le_bytes()); // DllCharacteristics
    let (rva_count, dirs) = if plus { (opt + 108, opt + 112) } else { (opt + 92, opt + 96) };
    put(&mut b, rva_count, &16u32.to_le_bytes());
    put(&mut b, dirs + 8, &0x1100u32.to_le_bytes()); // import directory
    put(&mut b, dirs + 12, &40u32.to_le_bytes());
    let sec = opt + usize::from(opt_size);
    put(&mut b, sec, b".text\0\0\0");
    put(&mut b, sec + 8, &0x200u32.to_le_bytes()); // VirtualSize
    put(&mut b, sec + 12, &0x1000u32.to_le_bytes()); // VirtualAddress
    put(&mut b, sec + 16, &0x200u32.to_le_bytes()); // SizeOfRawData
    put(&mut b, sec + 20, &0x200u32.to_le_bytes()); // PointerToRawData
    put(&mut b, sec + 36, &0x6000_0020u32.to_le_bytes());
    // .text at file 0x200 = RVA 0x1000: code, then the import tables.
    let at = |rva: usize| rva - 0x1000 + 0x200;
    put(&mut b, at(0x1000), &[0x31, 0xc0, 0xc3]);
    put(&mut b, at(0x1100), &0x1140u32.to_le_bytes()); // OriginalFirstThunk
    put(&mut b, at(0x1100 + 12), &0x1180u32.to_le_bytes()); // Name
    put(&mut b, at(0x1100 + 16), &0x1160u32.to_le_bytes()); // FirstThunk
    for thunk in [0x1140, 0x1160] {
        if plus {
            put(&mut b, at(thunk), &0x1190u64.to_le_bytes());
        } else {
            put(&mut b, at(thunk), &0x1190u32.to_le_bytes());
        }
    }
    put(&mut b, at(0x1180), b"KERNEL32.dll\0");
    put(&mut b, at(0x1192), b"ExitProcess\0");
    if !plus {
        // A certificate table at the end: WIN_CERTIFICATE (rev 2.0, PKCS#7) around a DER SEQUENCE stub.
        let cert_at = b.len();
        let cert: Vec<u8> = [&24u32.to_le_bytes()[..], &0x200u16.to_le_bytes(), &2u16.to_le_bytes()]
            .concat()
            .into_iter()
            .chain([0x30, 0x82, 0x00, 0x0c].into_iter().chain(std::iter::repeat_n(0u8, 12)))
            .collect();
        b.extend_from_slice(&cert);
        put(&mut b, dirs + 32, &(cert_at as u32).to_le_bytes());
        put(&mut b, dirs + 36, &(cert.len() as u32).to_le_bytes());
    }
    b
}

/// An ELF64 shared object: PT_LOAD, PT_DYNAMIC (DT_NEEDED libc.so.6), PT_GNU_STACK, and section headers.
fn minimal_elf() -> Vec<u8> {
    let mut b = vec![0u8; 0x300];
    put(&mut b, 0, b"\x7fELF\x02\x01\x01");
    put(&mut b, 16, &3u16.to_le_bytes()); // ET_DYN
    put(&mut b, 18, &62u16.to_le_bytes()); // EM_X86_64
    put(&mut b, 20, &1u32.to_le_bytes());
    put(&mut b, 24, &0x200u64.to_le_bytes()); // e_entry
    put(&mut b, 32, &64u64.to_le_bytes()); // e_phoff
    put(&mut b, 40, &0x200u64.to_le_bytes()); // e_shoff
    put(&mut b, 52, &64u16.to_le_bytes()); // e_ehsize
    put(&mut b, 54, &56u16.to_le_bytes()); // e_phentsize
    put(&mut b, 56, &3u16.to_le_bytes()); // e_phnum
    put(&mut b, 58, &64u16.to_le_bytes()); // e_shentsize
    put(&mut b, 60, &4u16.to_le_bytes()); // e_shnum
    put(&mut b, 62, &3u16.to_le_bytes()); // e_shstrndx
    let phdr = |b: &mut Vec<u8>, i: usize, kind: u32, flags: u32, off: u64, size: u64| {
        let p = 64 + i * 56;
        put(b, p, &kind.to_le_bytes());
        put(b, p + 4, &flags.to_le_bytes());
        put(b, p + 8, &off.to_le_bytes());
        put(b, p + 16, &off.to_le_bytes());
        put(b, p + 24, &off.to_le_bytes());
        put(b, p + 32, &size.to_le_bytes());
        put(b, p + 40, &size.to_le_bytes());
        put(b, p + 48, &8u64.to_le_bytes());
    };
    phdr(&mut b, 0, 1, 5, 0, 0x300);
    phdr(&mut b, 1, 2, 6, 0x180, 0x40);
    phdr(&mut b, 2, 0x6474_e551, 6, 0, 0);
    // .dynstr at 0x140, .dynamic at 0x180, .shstrtab at 0x1c0.
    put(&mut b, 0x140, b"\0libc.so.6\0");
    for (i, (tag, val)) in [(1u64, 1u64), (5, 0x140), (10, 11), (0, 0)].into_iter().enumerate() {
        put(&mut b, 0x180 + i * 16, &tag.to_le_bytes());
        put(&mut b, 0x188 + i * 16, &val.to_le_bytes());
    }
    put(&mut b, 0x1c0, b"\0.dynstr\0.dynamic\0.shstrtab\0");
    let shdr = |b: &mut Vec<u8>, i: usize, name: u32, kind: u32, off: u64, size: u64, link: u32, ent: u64| {
        let s = 0x200 + i * 64;
        put(b, s, &name.to_le_bytes());
        put(b, s + 4, &kind.to_le_bytes());
        put(b, s + 8, &2u64.to_le_bytes());
        put(b, s + 16, &off.to_le_bytes());
        put(b, s + 24, &off.to_le_bytes());
        put(b, s + 32, &size.to_le_bytes());
        put(b, s + 40, &link.to_le_bytes());
        put(b, s + 56, &ent.to_le_bytes());
    };
    shdr(&mut b, 1, 1, 3, 0x140, 11, 0, 0);
    shdr(&mut b, 2, 9, 6, 0x180, 0x40, 1, 16);
    shdr(&mut b, 3, 18, 3, 0x1c0, 28, 0, 0);
    b
}

/// A thin arm64 Mach-O bundle: LC_SEGMENT_64 __TEXT, LC_UUID, LC_LOAD_DYLIB libSystem.
fn minimal_macho() -> Vec<u8> {
    let mut cmds = Vec::new();
    // LC_SEGMENT_64 (0x19), 72 bytes, no sections.
    cmds.extend_from_slice(&0x19u32.to_le_bytes());
    cmds.extend_from_slice(&72u32.to_le_bytes());
    let mut segname = [0u8; 16];
    segname[..6].copy_from_slice(b"__TEXT");
    cmds.extend_from_slice(&segname);
    for v in [0u64, 0x4000, 0, 0x4000] {
        cmds.extend_from_slice(&v.to_le_bytes());
    }
    for v in [5u32, 5, 0, 0] {
        cmds.extend_from_slice(&v.to_le_bytes());
    }
    // LC_UUID (0x1b), 24 bytes.
    cmds.extend_from_slice(&0x1bu32.to_le_bytes());
    cmds.extend_from_slice(&24u32.to_le_bytes());
    cmds.extend_from_slice(&[0x5a; 16]);
    // LC_LOAD_DYLIB (0xc): name offset 24, then the path, padded to 8.
    let path = b"/usr/lib/libSystem.B.dylib\0";
    let size = (24 + path.len()).next_multiple_of(8);
    cmds.extend_from_slice(&0xcu32.to_le_bytes());
    cmds.extend_from_slice(&(size as u32).to_le_bytes());
    for v in [24u32, 2, 0x0501_0000, 0x0001_0000] {
        cmds.extend_from_slice(&v.to_le_bytes());
    }
    cmds.extend_from_slice(path);
    cmds.resize(72 + 24 + size, 0);

    let mut b = Vec::new();
    for v in [0xfeed_facfu32, 0x0100_000c, 0, 8, 3, cmds.len() as u32, 0x85, 0] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&cmds);
    b.resize(0x400, 0);
    b
}

/// A fat (universal) file with one arm64 slice at 4096.
fn minimal_fat_macho() -> Vec<u8> {
    let thin = minimal_macho();
    let mut b = Vec::new();
    for v in [0xcafe_babeu32, 1, 0x0100_000c, 0, 4096, thin.len() as u32, 12] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.resize(4096, 0);
    b.extend_from_slice(&thin);
    b
}

// ------------------------------------------------------------------------------ where the headers are

fn rd(data: &[u8], at: usize, width: usize, big_endian: bool) -> Option<u64> {
    let bytes = data.get(at..at.checked_add(width)?)?;
    Some(bytes.iter().enumerate().fold(0u64, |acc, (i, &b)| {
        if big_endian { (acc << 8) | u64::from(b) } else { acc | (u64::from(b) << (8 * i)) }
    }))
}

/// Offsets of the header fields a parser trusts, found by walking the seed's own headers (PE, ELF, Mach-O).
fn header_fields(data: &[u8]) -> Vec<Field> {
    let mut out = Vec::new();
    let mut le = |offset: usize, width: usize| {
        if offset.checked_add(width).is_some_and(|end| end <= data.len()) {
            out.push(Field { offset, width, big_endian: false });
        }
    };
    let r = |at: usize, w: usize| rd(data, at, w, false).unwrap_or(0) as usize;
    if data.starts_with(b"MZ") {
        le(0x3c, 4);
        let pe = r(0x3c, 4);
        if data.get(pe..pe + 4) == Some(b"PE\0\0") {
            let coff = pe + 4;
            for (o, w) in [(2, 2), (4, 4), (8, 4), (12, 4), (16, 2), (18, 2)] {
                le(coff + o, w);
            }
            let opt = coff + 20;
            let plus = r(opt, 2) == 0x20b;
            for (o, w) in [(0, 2), (4, 4), (16, 4), (32, 4), (36, 4), (56, 4), (60, 4), (64, 4), (68, 2), (70, 2)] {
                le(opt + o, w);
            }
            let (count_at, dirs) = if plus { (opt + 108, opt + 112) } else { (opt + 92, opt + 96) };
            le(count_at, 4);
            for i in 0..16 {
                le(dirs + 8 * i, 4);
                le(dirs + 8 * i + 4, 4);
            }
            let sec_table = opt + r(coff + 16, 2);
            let nsec = r(coff + 2, 2).min(96);
            let mut sections = Vec::new();
            for i in 0..nsec {
                let s = sec_table + 40 * i;
                for (o, w) in [(0, 4), (8, 4), (12, 4), (16, 4), (20, 4), (36, 4)] {
                    le(s + o, w);
                }
                sections.push((r(s + 12, 4), r(s + 8, 4).max(r(s + 16, 4)), r(s + 20, 4)));
            }
            let to_offset = |rva: usize| {
                sections.iter().find(|(va, size, _)| rva >= *va && rva < va + size).map(|(va, _, raw)| rva - va + raw)
            };
            let dir = |i: usize| r(dirs + 8 * i, 4);
            // The first import descriptors (OriginalFirstThunk, Name, FirstThunk), the export directory
            // (counts and table addresses), the root resource directory's entry counts, the debug directory,
            // and the first WIN_CERTIFICATE (a file offset, not an RVA).
            if let Some(imp) = to_offset(dir(1)) {
                for d in 0..8 {
                    for o in [0, 12, 16] {
                        le(imp + 20 * d + o, 4);
                    }
                }
            }
            if let Some(exp) = to_offset(dir(0)) {
                for o in [12, 16, 20, 24, 28, 32, 36] {
                    le(exp + o, 4);
                }
            }
            if let Some(res) = to_offset(dir(2)) {
                le(res + 12, 2);
                le(res + 14, 2);
                le(res + 20, 4);
            }
            if let Some(dbg) = to_offset(dir(6)) {
                for o in [12, 16, 20, 24] {
                    le(dbg + o, 4);
                }
            }
            if let Some(clr) = to_offset(dir(14)) {
                for o in [8, 12, 16] {
                    le(clr + o, 4);
                }
            }
            let cert = dir(4);
            if cert != 0 {
                le(cert, 4);
                le(cert + 4, 2);
                le(cert + 6, 2);
            }
        }
    } else if data.starts_with(b"\x7fELF") && data.get(5) == Some(&1) {
        let wide = data.get(4) == Some(&2);
        let (word, phoff_at, shoff_at, rest) = if wide { (8, 32, 40, 48) } else { (4, 28, 32, 36) };
        le(phoff_at, word);
        le(shoff_at, word);
        for i in 0..6 {
            le(rest + 4 + 2 * i, 2); // e_ehsize .. e_shstrndx
        }
        let phoff = r(phoff_at, word);
        let phentsize = r(rest + 6, 2).max(1);
        for i in 0..r(rest + 8, 2).min(16) {
            let p = phoff.saturating_add(i * phentsize);
            if wide {
                for (o, w) in [(0, 4), (4, 4), (8, 8), (32, 8), (40, 8)] {
                    le(p + o, w);
                }
            } else {
                for o in [0, 4, 16, 20, 24] {
                    le(p + o, 4);
                }
            }
        }
        let shoff = r(shoff_at, word);
        let shentsize = r(rest + 10, 2).max(1);
        for i in 0..r(rest + 12, 2).min(32) {
            let s = shoff.saturating_add(i * shentsize);
            if wide {
                for (o, w) in [(0, 4), (4, 4), (24, 8), (32, 8), (40, 4), (56, 8)] {
                    le(s + o, w);
                }
            } else {
                for o in [0, 4, 16, 20, 24, 36] {
                    le(s + o, 4);
                }
            }
        }
    } else {
        macho_fields(data, 0, &mut out);
    }
    out
}

fn macho_fields(data: &[u8], base: usize, out: &mut Vec<Field>) {
    let push = |out: &mut Vec<Field>, offset: usize, width: usize, big_endian: bool| {
        if offset.checked_add(width).is_some_and(|end| end <= data.len()) {
            out.push(Field { offset, width, big_endian });
        }
    };
    match rd(data, base, 4, false) {
        Some(0xbeba_feca) if base == 0 => {
            // Fat header (big-endian): nfat_arch, then offset/size/align of each slice.
            push(out, 4, 4, true);
            let count = rd(data, 4, 4, true).unwrap_or(0).min(8) as usize;
            for i in 0..count {
                let a = 8 + 20 * i;
                for o in [8, 12, 16] {
                    push(out, a + o, 4, true);
                }
                let slice = rd(data, a + 8, 4, true).unwrap_or(0) as usize;
                if slice != 0 && slice < data.len() {
                    macho_fields(data, slice, out);
                }
            }
        }
        Some(magic @ (0xfeed_face | 0xfeed_facf)) => {
            for o in [4, 12, 16, 20, 24] {
                push(out, base + o, 4, false);
            }
            let mut at = base + if magic == 0xfeed_facf { 32 } else { 28 };
            let ncmds = rd(data, base + 16, 4, false).unwrap_or(0).min(64);
            for _ in 0..ncmds {
                let Some(size) = at.checked_add(4).and_then(|a| rd(data, a, 4, false)) else { break };
                for o in [0, 4, 8, 12, 16, 20, 24] {
                    push(out, at + o, 4, false);
                }
                if size < 8 {
                    break;
                }
                at = at.saturating_add(size as usize);
            }
        }
        _ => {}
    }
}

// --------------------------------------------------------------------------------------------- mutating

/// Values that break parsers: zero, all-ones, sign boundaries, the file's own length and near misses.
fn extreme(rng: &mut Rng, width: usize, old: u64, len: usize) -> u64 {
    let len = len as u64;
    let candidates = [
        0,
        1,
        0x7f,
        0x80,
        0xff,
        0x7fff,
        0x8000,
        0xffff,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        0xffff_fffe,
        0x7fff_0000,
        u64::MAX,
        len,
        len.wrapping_sub(1),
        len + 1,
        old.wrapping_add(1),
        old.wrapping_sub(1),
        old.wrapping_mul(2),
        old.wrapping_mul(0x1000),
        rng.next(),
    ];
    let v = *rng.pick(&candidates);
    if width >= 8 { v } else { v & ((1u64 << (8 * width)) - 1) }
}

fn write_int(data: &mut [u8], f: Field, v: u64) {
    for i in 0..f.width {
        let byte = if f.big_endian { (v >> (8 * (f.width - 1 - i))) as u8 } else { (v >> (8 * i)) as u8 };
        data[f.offset + i] = byte;
    }
}

/// Apply one random mutation to `data`; returns what it did, for the failure report.
fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, seed: &Seed, other: &Seed) -> String {
    if data.is_empty() {
        let n = rng.span();
        data.extend((0..n).map(|_| rng.next() as u8));
        return format!("fill empty with {n} random bytes");
    }
    let len = data.len();
    match rng.below(100) {
        // A header field of the seed set to an extreme value (if the mutant still has it).
        0..=29 if !seed.fields.is_empty() => {
            let f = *rng.pick(&seed.fields);
            if f.offset + f.width > len {
                return "header field gone (skipped)".into();
            }
            let old = rd(data, f.offset, f.width, f.big_endian).unwrap_or(0);
            let v = extreme(rng, f.width, old, len);
            write_int(data, f, v);
            format!(
                "field @{:#x} ({} bytes{}) {old:#x} -> {v:#x}",
                f.offset,
                f.width,
                if f.big_endian { " BE" } else { "" }
            )
        }
        // Any 2/4/8 bytes set to an extreme value.
        0..=44 => {
            let width = *rng.pick(&[2usize, 4, 8]);
            if len < width {
                return "too short for an integer (skipped)".into();
            }
            let offset = rng.position(len - width + 1);
            let f = Field { offset, width, big_endian: false };
            let old = rd(data, offset, width, false).unwrap_or(0);
            let v = extreme(rng, width, old, len);
            write_int(data, f, v);
            format!("int @{offset:#x} ({width} bytes) {old:#x} -> {v:#x}")
        }
        // A few bytes flipped or replaced.
        45..=64 => {
            let n = 1 + rng.below(8);
            let mut at = Vec::new();
            for _ in 0..n {
                let i = rng.position(len);
                if rng.chance(50) {
                    data[i] ^= 1 << rng.below(8);
                } else {
                    data[i] = rng.next() as u8;
                }
                at.push(format!("{i:#x}"));
            }
            format!("bytes changed at {}", at.join(","))
        }
        // Truncated.
        65..=74 => {
            let cut = rng.position(len);
            data.truncate(cut);
            format!("truncated to {cut}")
        }
        // Spliced: our head and another seed's tail.
        75..=79 => {
            let cut = rng.position(len);
            let from = if other.data.is_empty() { 0 } else { rng.below(other.data.len()) };
            let to = other.data.len().min(from + MAX_SPLICE);
            data.truncate(cut);
            data.extend_from_slice(&other.data[from..to]);
            format!("spliced at {cut} with {} bytes {from}..{to}", other.name)
        }
        // A region copied over another one.
        80..=86 => {
            let n = rng.span().min(len);
            let src = rng.position(len - n + 1);
            let dst = rng.position(len - n + 1);
            data.copy_within(src..src + n, dst);
            format!("copied {n} bytes {src:#x} -> {dst:#x}")
        }
        // A region zeroed or set to 0xFF.
        87..=92 => {
            let n = rng.span().min(len);
            let at = rng.position(len - n + 1);
            let v = if rng.chance(70) { 0 } else { 0xff };
            data[at..at + n].fill(v);
            format!("filled {n} bytes at {at:#x} with {v:#x}")
        }
        // Bytes inserted (shifting everything after them).
        93..=96 => {
            let n = rng.span().min(4096);
            let at = rng.position(len);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            data.splice(at..at, bytes);
            format!("inserted {n} bytes at {at:#x}")
        }
        // Bytes deleted.
        _ => {
            let n = rng.span().min(len);
            let at = rng.position(len - n + 1);
            data.drain(at..at + n);
            format!("deleted {n} bytes at {at:#x}")
        }
    }
}

struct Case {
    number: u64,
    seed_name: String,
    steps: Vec<String>,
    data: Vec<u8>,
}

fn make_case(run_seed: u64, number: u64, seeds: &[Seed]) -> Case {
    let mut rng = Rng::for_case(run_seed, number);
    let seed = pick_seed(&mut rng, seeds);
    let mut data = seed.data.clone();
    let mut steps = Vec::new();
    for _ in 0..1 + rng.below(4) {
        let other = rng.pick(seeds);
        steps.push(mutate_once(&mut rng, &mut data, seed, other));
    }
    Case { number, seed_name: seed.name.clone(), steps, data }
}

// ----------------------------------------------------------------------------------------- the checks

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Run the pipeline, serialise and render; returns the broken invariants (an empty list is a pass).
fn check(data: &[u8]) -> Vec<String> {
    let mut broken = Vec::new();
    let report = filerep::pipeline::report_from_bytes("mutant.bin", data);
    let json = match serde_json::to_string(&report) {
        Ok(json) => json,
        Err(e) => return vec![format!("the report does not serialise: {e}")],
    };
    if let Err(e) = serde_json::from_str::<Report>(&json) {
        broken.push(format!("the JSON does not read back as a Report: {e}"));
    }
    let card = card::render(&report, &card::Options::default());
    if let Some(c) = card.chars().find(|c| c.is_control() && *c != '\n') {
        broken.push(format!("the colourless card holds control character {c:?}"));
    }

    let h = &report.hashes;
    for (what, got, want) in [
        ("md5", &h.md5, hex(&Md5::digest(data))),
        ("sha1", &h.sha1, hex(&Sha1::digest(data))),
        ("sha256", &h.sha256, hex(&Sha256::digest(data))),
    ] {
        if got.as_deref() != Some(want.as_str()) {
            broken.push(format!("{what} is {got:?}, want {want}"));
        }
    }
    if report.size != Some(data.len() as u64) {
        broken.push(format!("size is {:?}, want {}", report.size, data.len()));
    }
    if !report.fully_analysed && report.verdict.level == Level::Good {
        broken.push("verdict `good` on a file that was not fully analysed".into());
    }
    broken
}

thread_local! {
    /// The message and location of the last panic on this thread (set by the hook, read after catch_unwind).
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

const WORKER_NAME: &str = "mutation-worker";

/// Remember each panic's location for the report; stay quiet on our workers (recovered parser panics are
/// expected there and an escaping one is reported with its case), keep the previous hook everywhere else.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if std::thread::current().name().is_some_and(|n| n.starts_with(WORKER_NAME)) {
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(info.to_string()));
            } else {
                previous(info);
            }
        }));
    });
}

fn run_case(data: &[u8]) -> Result<Vec<String>, String> {
    LAST_PANIC.with(|p| p.borrow_mut().take());
    panic::catch_unwind(AssertUnwindSafe(|| check(data))).map_err(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into());
        let located = LAST_PANIC.with(|p| p.borrow_mut().take());
        located.unwrap_or(msg)
    })
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

fn out_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mutation");
    std::fs::create_dir_all(&dir).expect("create target/tmp/mutation");
    dir
}

/// Describe a failing case and save the mutant, so it can be reproduced.
fn failure(run_seed: u64, case: &Case, what: &str) -> String {
    let file = out_dir().join(format!("case-{run_seed:#x}-{}.bin", case.number));
    let saved = match std::fs::write(&file, &case.data) {
        Ok(()) => format!("saved as {}", file.display()),
        Err(e) => format!("could not be saved: {e}"),
    };
    format!(
        "case {} (seed file {}, {} bytes after: {}): {what}\n    mutant {saved}\n    reproduce: \
         FILEREP_MUTATION_SEED={run_seed:#x} FILEREP_MUTATION_CASE={} cargo test --test cli mutation",
        case.number,
        case.seed_name,
        case.data.len(),
        case.steps.join("; "),
        case.number
    )
}

// ------------------------------------------------------------------------------------------ the workers

/// `in_flight` value of an idle worker.
const IDLE: u64 = u64::MAX;

/// What the workers and the hang guard share.
struct Shared {
    seeds: Vec<Seed>,
    cases: Vec<u64>,
    /// Index into `cases` of the next case to take.
    next: AtomicU64,
    stop: AtomicBool,
    failures: Mutex<Vec<String>>,
    /// Per worker: the case in flight (`IDLE` when none) and when it started (ms since `started`).
    in_flight: Vec<(AtomicU64, AtomicU64)>,
    started: Instant,
    run_seed: u64,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

fn worker(shared: &Shared, w: usize) {
    let run_seed = shared.run_seed;
    let marker = out_dir().join(format!("in-flight-{w}"));
    let slot = &shared.in_flight[w];
    while !shared.stop.load(Ordering::SeqCst) {
        let i = shared.next.fetch_add(1, Ordering::SeqCst) as usize;
        let Some(&number) = shared.cases.get(i) else { break };
        let case = make_case(run_seed, number, &shared.seeds);
        let _ =
            std::fs::write(&marker, format!("FILEREP_MUTATION_SEED={run_seed:#x} FILEREP_MUTATION_CASE={number}\n"));
        slot.1.store(shared.now_ms(), Ordering::SeqCst);
        slot.0.store(number, Ordering::SeqCst);
        let result = run_case(&case.data);
        slot.0.store(IDLE, Ordering::SeqCst);
        let problem = match result {
            Ok(broken) if broken.is_empty() => None,
            Ok(broken) => Some(format!("invariant broken: {}", broken.join("; "))),
            Err(panic) => Some(format!("PANIC escaped: {panic}")),
        };
        if let Some(problem) = problem {
            let mut list = shared.failures.lock().unwrap();
            list.push(failure(run_seed, &case, &problem));
            if list.len() >= MAX_FAILURES {
                shared.stop.store(true, Ordering::SeqCst);
            }
        }
    }
    let _ = std::fs::remove_file(&marker);
}

// -------------------------------------------------------------------------------------------- the test

#[test]
#[allow(clippy::print_stderr)] // the seed and the figures are part of the result
fn mutants_never_panic_hang_or_break_invariants() {
    install_panic_hook();
    let run_seed = env_u64("FILEREP_MUTATION_SEED").unwrap_or(DEFAULT_SEED);
    let only = env_u64("FILEREP_MUTATION_CASE");
    let cases: Vec<u64> = match only {
        Some(n) => vec![n],
        None => (0..env_u64("FILEREP_MUTATION_CASES").unwrap_or(DEFAULT_CASES)).collect(),
    };
    let seeds = seeds();
    let _heavy = conformance::HEAVY_TEST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let started = Instant::now();
    eprintln!(
        "mutation: seed {run_seed:#x}, {} cases over {} seed files (FILEREP_MUTATION_SEED / _CASES / _CASE)",
        cases.len(),
        seeds.len()
    );

    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
    let shared = Arc::new(Shared {
        seeds,
        cases,
        next: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        failures: Mutex::new(Vec::new()),
        in_flight: (0..workers).map(|_| (AtomicU64::new(IDLE), AtomicU64::new(0))).collect(),
        started,
        run_seed,
    });
    // Plain (not scoped) threads: a hung worker is left behind instead of being waited for; the process
    // ends with the test harness.
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("{WORKER_NAME}-{w}"))
                .spawn(move || worker(&shared, w))
                .expect("spawn a mutation worker")
        })
        .collect();

    // The hang guard.
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let now = shared.now_ms();
        let hung = shared.in_flight.iter().find_map(|(case, since)| {
            let (case, since) = (case.load(Ordering::SeqCst), since.load(Ordering::SeqCst));
            (case != IDLE && now.saturating_sub(since) > CASE_TIMEOUT.as_millis() as u64).then_some((case, since))
        });
        if let Some((case, since)) = hung {
            shared.stop.store(true, Ordering::SeqCst);
            let what = format!(
                "HANG: still running after {} s (the guard is {} s)",
                now.saturating_sub(since) / 1000,
                CASE_TIMEOUT.as_secs()
            );
            let msg = failure(run_seed, &make_case(run_seed, case, &shared.seeds), &what);
            panic!("mutation test failed after {:.1} s (seed {run_seed:#x})\n  {msg}", started.elapsed().as_secs_f64());
        }
        if handles.iter().all(|h| h.is_finished()) {
            break;
        }
    }
    for h in handles {
        h.join().expect("a mutation worker died outside catch_unwind");
    }

    let cases = shared.cases.len();
    let failures = std::mem::take(&mut *shared.failures.lock().unwrap());
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!("mutation: {cases} cases in {elapsed:.1} s, {} failures", failures.len());
    if !failures.is_empty() {
        let mut msg = format!(
            "mutation test: {} failing case(s) (seed {run_seed:#x}; stopped early at {MAX_FAILURES})\n",
            failures.len()
        );
        for f in &failures {
            let _ = writeln!(msg, "  {f}");
        }
        panic!("{msg}");
    }
}

#[test]
fn the_mutator_is_deterministic() {
    let seeds = seeds();
    for number in [0, 1, 77, 2999] {
        let a = make_case(DEFAULT_SEED, number, &seeds);
        let b = make_case(DEFAULT_SEED, number, &seeds);
        assert_eq!((a.seed_name, a.steps, a.data), (b.seed_name, b.steps, b.data));
    }
    // The minimal images are what they claim to be.
    for (data, format) in [
        (minimal_pe(true), "pe"),
        (minimal_pe(false), "pe"),
        (minimal_elf(), "elf"),
        (minimal_macho(), "macho"),
        (minimal_fat_macho(), "macho"),
    ] {
        let report = filerep::pipeline::report_from_bytes("minimal", &data);
        assert_eq!(report.format.as_str(), format, "{:?}", report.anomalies);
    }
}

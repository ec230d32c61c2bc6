//! ssdeep (context-triggered piecewise hashing), producing the digests ssdeep 2.14 prints.
//!
//! This follows ssdeep 2.14's `fuzzy.c` (`fuzzy_engine_step`, `fuzzy_try_fork_blockhash`,
//! `fuzzy_try_reduce_blockhash`, `fuzzy_digest` without flags) with the total input length known up front,
//! as `fuzzy_hash_buf` and the `ssdeep` command have it. The piece hashes keep only the six bits that reach
//! the digest (ssdeep 2.14's `sum_table` does the same): FNV-1 with the prime 0x01000193 and the seed
//! 0x28021967, reduced modulo 64, is `h = (h * 19) ^ c` modulo 64.
//!
//! Why our own: the `fuzzyhash` crate gives the same digests but runs at about 30 MB/s (a division per byte,
//! heap-allocated state), which made ssdeep the slowest digest of the hashing pass by a factor of ten; this
//! one tests the trigger with a mask and a multiply, and runs several hundred MB/s. The crate stays as a
//! dev-dependency to test that both agree on many inputs.

/// Rolling-hash window.
const ROLLING_WINDOW: usize = 7;
/// Smallest block size.
const MIN_BLOCKSIZE: u64 = 3;
/// Number of block sizes tried (3 · 2^0 … 3 · 2^30).
const NUM_BLOCKHASHES: usize = 31;
/// Maximum length of each of the two digest parts.
const SPAMSUM_LENGTH: usize = 64;
/// FNV seed modulo 64.
const HASH_INIT: u8 = (0x2802_1967u32 & 0x3f) as u8;
/// FNV prime modulo 64.
const HASH_PRIME: u8 = (0x0100_0193u32 & 0x3f) as u8;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn block_size(index: usize) -> u64 {
    MIN_BLOCKSIZE << index
}

#[inline(always)]
fn sum_hash(c: u8, h: u8) -> u8 {
    (h.wrapping_mul(HASH_PRIME) ^ c) & 0x3f
}

#[derive(Clone, Copy)]
struct BlockHash {
    /// Digest characters so far (`dindex` of them; `digest[dindex]` holds the last one once full).
    digest: [u8; SPAMSUM_LENGTH],
    dindex: usize,
    /// The digest character for the half-length variant (0 when none).
    half_digest: u8,
}

impl BlockHash {
    const EMPTY: BlockHash = BlockHash { digest: [0; SPAMSUM_LENGTH], dindex: 0, half_digest: 0 };
}

/// The six-bit piece hashes of all block sizes, eight to a `u64` (one byte each), updated eight at a time:
/// `(h * 19) mod 64` is `((h << 4) & 0x30) + ((h << 1) & 0x3e) + h` taken mod 64 in each byte, and none of
/// those byte sums (at most 0x30 + 0x3e + 0x3f) carries into the next byte, so plain word arithmetic does
/// the eight lanes at once.
#[derive(Clone, Copy)]
struct Lanes([u64; 4]);

const BYTES: u64 = 0x0101_0101_0101_0101;

impl Lanes {
    const INIT: Lanes = Lanes([HASH_INIT as u64 * BYTES; 4]);

    fn get(&self, i: usize) -> u8 {
        (self.0[i / 8] >> (8 * (i % 8))) as u8
    }

    fn set(&mut self, i: usize, v: u8) {
        let shift = 8 * (i % 8);
        let w = &mut self.0[i / 8];
        *w = (*w & !(0xff << shift)) | (u64::from(v) << shift);
    }

    /// `sum_hash(c, h)` for every lane of the first `W` words (a fixed-length loop the compiler turns into
    /// vector code).
    #[inline(always)]
    fn step<const W: usize>(&mut self, c: u8) {
        let cb = u64::from(c & 0x3f) * BYTES;
        for w in &mut self.0[..W] {
            let h = *w;
            let m = ((h << 4) & (0x30 * BYTES)) + ((h << 1) & (0x3e * BYTES)) + h;
            *w = (m ^ cb) & (0x3f * BYTES);
        }
    }
}

/// An ssdeep digest being computed over an input whose total length is known in advance.
pub struct Ssdeep {
    bh: [BlockHash; NUM_BLOCKHASHES],
    /// Piece hash of each block size.
    h: Lanes,
    /// Piece hash of each block size for the half-length second part.
    half_h: Lanes,
    bh_start: usize,
    bh_end: usize,
    /// Fork no block hash beyond this one: larger block sizes cannot be chosen for this length.
    bh_end_limit: usize,
    total_size: u64,
    /// `2^bh_start - 1`: a trigger needs these low bits of `sum + 1` clear.
    roll_mask: u64,
    window: [u8; ROLLING_WINDOW],
    h1: u32,
    h2: u32,
    h3: u32,
    n: usize,
    /// Piece hash of the largest block size once all 31 exist (ssdeep's `lasth`).
    last_h: u8,
    need_last_h: bool,
}

impl Ssdeep {
    /// Start a digest of `total_size` bytes (the digest depends on the length).
    pub fn new(total_size: u64) -> Ssdeep {
        let mut bi = 0;
        while block_size(bi) * (SPAMSUM_LENGTH as u64) < total_size && bi < NUM_BLOCKHASHES - 2 {
            bi += 1;
        }
        Ssdeep {
            bh: [BlockHash::EMPTY; NUM_BLOCKHASHES],
            h: Lanes::INIT,
            half_h: Lanes::INIT,
            bh_start: 0,
            bh_end: 1,
            bh_end_limit: bi + 1,
            total_size,
            roll_mask: 0,
            window: [0; ROLLING_WINDOW],
            h1: 0,
            h2: 0,
            h3: 0,
            n: 0,
            last_h: 0,
            need_last_h: false,
        }
    }

    fn roll_sum(&self) -> u32 {
        self.h1.wrapping_add(self.h2).wrapping_add(self.h3)
    }

    fn try_fork(&mut self) {
        let last = self.bh_end - 1;
        if self.bh_end <= self.bh_end_limit && self.bh_end < NUM_BLOCKHASHES {
            self.h.set(self.bh_end, self.h.get(last));
            self.half_h.set(self.bh_end, self.half_h.get(last));
            let nb = &mut self.bh[self.bh_end];
            nb.digest[0] = 0;
            nb.half_digest = 0;
            nb.dindex = 0;
            self.bh_end += 1;
        } else if self.bh_end == NUM_BLOCKHASHES && !self.need_last_h {
            self.need_last_h = true;
            self.last_h = self.h.get(last);
        }
    }

    fn try_reduce(&mut self) {
        if self.bh_end - self.bh_start < 2 {
            return;
        }
        if block_size(self.bh_start) * (SPAMSUM_LENGTH as u64) >= self.total_size {
            return;
        }
        if self.bh[self.bh_start + 1].dindex < SPAMSUM_LENGTH / 2 {
            return;
        }
        self.bh_start += 1;
        self.roll_mask = self.roll_mask * 2 + 1;
    }

    /// Feed bytes (in any number of pieces).
    pub fn update(&mut self, data: &[u8]) {
        // Only the lanes up to `bh_end_limit` can ever be forked, so a small input needs one word of lanes
        // instead of four.
        match self.bh_end_limit / 8 + 1 {
            1 => self.update_words::<1>(data),
            2 => self.update_words::<2>(data),
            3 => self.update_words::<3>(data),
            _ => self.update_words::<4>(data),
        }
    }

    /// [`Ssdeep::update`] with `W` words of lanes.
    fn update_words<const W: usize>(&mut self, data: &[u8]) {
        // The rolling hash lives in locals for the loop (the compiler cannot keep fields of `self` in
        // registers across the calls below).
        let (mut h1, mut h2, mut h3) = (self.h1, self.h2, self.h3);
        let mut window = self.window;
        let mut slot = self.n % ROLLING_WINDOW;
        for &c in data {
            // The rolling hash over the last seven bytes.
            h2 = h2.wrapping_sub(h1).wrapping_add(ROLLING_WINDOW as u32 * u32::from(c));
            h1 = h1.wrapping_add(u32::from(c)).wrapping_sub(u32::from(window[slot]));
            window[slot] = c;
            slot = if slot == ROLLING_WINDOW - 1 { 0 } else { slot + 1 };
            h3 = (h3 << 5) ^ u32::from(c);

            // Every lane is updated: a lane below `bh_start` is never read again, and one at or above
            // `bh_end` is overwritten when its block hash is forked, so the extra lanes change nothing.
            self.h.step::<W>(c);
            self.half_h.step::<W>(c);
            if self.need_last_h {
                self.last_h = sum_hash(c, self.last_h);
            }

            // A block boundary at block size 3·2^i is where (sum + 1) is a multiple of 3·2^i.
            let sum = u64::from(h1.wrapping_add(h2).wrapping_add(h3)) + 1;
            if sum & self.roll_mask != 0 || sum % MIN_BLOCKSIZE != 0 {
                continue;
            }
            self.boundary(sum);
        }
        self.h1 = h1;
        self.h2 = h2;
        self.h3 = h3;
        self.window = window;
        self.n = self.n.wrapping_add(data.len());
    }

    /// Emit digest characters at every block size whose boundary `sum` (the rolling sum + 1) marks.
    #[cold]
    fn boundary(&mut self, sum: u64) {
        let mut h = (sum / MIN_BLOCKSIZE) >> self.bh_start;
        let mut i = self.bh_start;
        while i < self.bh_end {
            if self.bh[i].dindex == 0 {
                self.try_fork();
            }
            let (hi, half) = (self.h.get(i), self.half_h.get(i));
            let b = &mut self.bh[i];
            b.digest[b.dindex] = B64[usize::from(hi)];
            b.half_digest = B64[usize::from(half)];
            if b.dindex < SPAMSUM_LENGTH - 1 {
                b.dindex += 1;
                b.digest[b.dindex] = 0;
                self.h.set(i, HASH_INIT);
                if b.dindex < SPAMSUM_LENGTH / 2 {
                    self.half_h.set(i, HASH_INIT);
                    b.half_digest = 0;
                }
            } else {
                self.try_reduce();
            }
            if h & 1 != 0 {
                break;
            }
            h >>= 1;
            i += 1;
        }
    }

    /// The digest, `blocksize:part1:part2`.
    pub fn finish(&self) -> String {
        let mut bi = self.bh_start;
        let h = self.roll_sum();
        while block_size(bi) * (SPAMSUM_LENGTH as u64) < self.total_size {
            bi += 1;
        }
        if bi >= self.bh_end {
            bi = self.bh_end - 1;
        }
        while bi > self.bh_start && self.bh[bi].dindex < SPAMSUM_LENGTH / 2 {
            bi -= 1;
        }
        let mut out = format!("{}:", block_size(bi)).into_bytes();
        let b = &self.bh[bi];
        out.extend_from_slice(&b.digest[..b.dindex]);
        if h != 0 {
            out.push(B64[usize::from(self.h.get(bi))]);
        } else if b.digest[b.dindex] != 0 {
            out.push(b.digest[b.dindex]);
        }
        out.push(b':');
        if bi < self.bh_end - 1 {
            let b = &self.bh[bi + 1];
            let n = b.dindex.min(SPAMSUM_LENGTH / 2 - 1);
            out.extend_from_slice(&b.digest[..n]);
            if h != 0 {
                out.push(B64[usize::from(self.half_h.get(bi + 1))]);
            } else if b.half_digest != 0 {
                out.push(b.half_digest);
            }
        } else if h != 0 {
            out.push(if bi == 0 { B64[usize::from(self.h.get(0))] } else { B64[usize::from(self.last_h)] });
        }
        String::from_utf8(out).expect("digest characters are ASCII")
    }
}

/// The ssdeep digest of `data`.
pub fn hash(data: &[u8]) -> String {
    let mut s = Ssdeep::new(data.len() as u64);
    s.update(data);
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xorshift(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 29) as u8
            })
            .collect()
    }

    #[test]
    fn known_digests() {
        // ssdeep 2.14 (`ssdeep -b`) on these inputs.
        assert_eq!(hash(b""), "3::");
        assert_eq!(hash(b"a"), "3:E:E");
        assert_eq!(hash(&[0u8; 4096]), "3::");
    }

    /// ppdeep's digests (the corpus oracle, equal to ssdeep 2.14) of pseudo-random and repetitive inputs,
    /// with lengths around the block-size boundaries (3 · 2^i · 64).
    #[test]
    fn equals_the_reference_digests() {
        for &(n, seed, random, text, _) in crate::test_vectors::VECTORS {
            assert_eq!(hash(&crate::test_vectors::lcg(n, seed)), random, "random input of {n} bytes");
            assert_eq!(hash(&crate::test_vectors::text(n)), text, "text of {n} bytes");
        }
    }

    /// The `fuzzyhash` crate (which agrees with ssdeep on every corpus file) gives the same digests on
    /// inputs long enough to trigger a block boundary; on the shortest inputs it drops the last character
    /// of the second part (ssdeep 2.14 and ppdeep say "3:E:E" for "a", fuzzyhash "3:E:").
    #[test]
    fn agrees_with_the_fuzzyhash_crate_where_it_is_right() {
        for n in (64..3000).step_by(37).chain([12_287, 12_288, 12_289, 98_304, 98_305, 400_000]) {
            let d = xorshift(n, n as u64);
            assert_eq!(hash(&d), fuzzyhash::FuzzyHash::new(&d).to_string(), "length {n}");
        }
    }

    #[test]
    fn lanes_compute_the_piece_hash() {
        let mut l = Lanes::INIT;
        let mut scalar = [HASH_INIT; 32];
        for (k, i) in (0..32).enumerate() {
            l.set(i, (k * 7 % 64) as u8);
            scalar[i] = (k * 7 % 64) as u8;
        }
        for c in [0u8, 1, 0x3f, 0x40, 0xff, 0x9c] {
            l.step::<4>(c);
            for h in &mut scalar {
                *h = sum_hash(c, *h);
            }
            assert!((0..32).all(|i| l.get(i) == scalar[i]), "byte {c:#x}");
        }
    }

    #[test]
    fn pieces_do_not_matter() {
        let d = xorshift(300_000, 7);
        let mut s = Ssdeep::new(d.len() as u64);
        for c in d.chunks(4093) {
            s.update(c);
        }
        assert_eq!(s.finish(), hash(&d));
    }
}

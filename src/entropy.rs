//! Shannon entropy in bits per byte, from a byte histogram.
//!
//! The formula is pefile's (`SectionStructure.entropy_H`): the sum of `-p·log2 p` over the byte values that
//! occur, `0.0` for no data. The histogram is kept separate so that the hashing pass can fill it while it
//! reads the bytes once.

/// A byte-value histogram that can be filled in pieces.
///
/// Eight interleaved 32-bit tables fed from one 64-bit load break the store-to-load dependency on runs of
/// equal bytes (a long run of zeros would otherwise serialise on one counter); they are folded into the
/// 64-bit totals before any of them can overflow.
#[derive(Clone)]
pub struct Histogram {
    counts: [u64; 256],
    tables: [[u32; 256]; 8],
    /// Bytes counted in `tables` since they were last folded into `counts`.
    pending: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: [0; 256], tables: [[0; 256]; 8], pending: 0 }
    }
}

/// Fold the tables before any 32-bit counter could reach its limit (a counter can see every byte in the worst
/// case, so fold well before 2^32 bytes).
const FOLD_EVERY: u64 = 1 << 31;

impl Histogram {
    /// Add bytes to the histogram.
    pub fn update(&mut self, data: &[u8]) {
        for block in data.chunks(1 << 30) {
            if self.pending + block.len() as u64 >= FOLD_EVERY {
                self.fold();
            }
            let t = &mut self.tables;
            let mut it = block.chunks_exact(8);
            for c in &mut it {
                let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
                t[0][(w & 0xff) as usize] += 1;
                t[1][((w >> 8) & 0xff) as usize] += 1;
                t[2][((w >> 16) & 0xff) as usize] += 1;
                t[3][((w >> 24) & 0xff) as usize] += 1;
                t[4][((w >> 32) & 0xff) as usize] += 1;
                t[5][((w >> 40) & 0xff) as usize] += 1;
                t[6][((w >> 48) & 0xff) as usize] += 1;
                t[7][(w >> 56) as usize] += 1;
            }
            for &b in it.remainder() {
                t[0][b as usize] += 1;
            }
            self.pending += block.len() as u64;
        }
    }

    fn fold(&mut self) {
        for (i, count) in self.counts.iter_mut().enumerate() {
            *count += self.tables.iter().map(|row| u64::from(row[i])).sum::<u64>();
        }
        self.tables = [[0; 256]; 8];
        self.pending = 0;
    }

    /// Add another histogram's counts to this one (the histogram of two disjoint pieces of data).
    pub fn merge(&mut self, other: &Histogram) {
        let theirs = other.totals();
        for (c, t) in self.counts.iter_mut().zip(theirs) {
            *c += t;
        }
    }

    /// The count of each byte value.
    fn totals(&self) -> [u64; 256] {
        let mut c = self.counts;
        for (i, count) in c.iter_mut().enumerate() {
            *count += self.tables.iter().map(|row| u64::from(row[i])).sum::<u64>();
        }
        c
    }

    /// Total bytes counted.
    pub fn total(&self) -> u64 {
        self.totals().iter().sum()
    }

    /// Shannon entropy in bits per byte.
    pub fn entropy(&self) -> f64 {
        let counts = self.totals();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let n = total as f64;
        let mut h = 0.0;
        for &c in &counts {
            if c != 0 {
                let p = c as f64 / n;
                h -= p * p.log2();
            }
        }
        h
    }
}

/// Shannon entropy of `data` in bits per byte (0.0 for empty input).
pub fn shannon(data: &[u8]) -> f64 {
    let mut h = Histogram::default();
    h.update(data);
    h.entropy()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(shannon(b""), 0.0);
        assert_eq!(shannon(b"aaaa"), 0.0);
        assert!((shannon(b"ab") - 1.0).abs() < 1e-12);
        let all: Vec<u8> = (0..=255).collect();
        assert!((shannon(&all) - 8.0).abs() < 1e-12);
        // Three symbols with p = 1/2, 1/4, 1/4 give 1.5 bits.
        assert!((shannon(b"aabc") - 1.5).abs() < 1e-12);
    }

    #[test]
    fn folding_keeps_the_counts() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 13 % 256) as u8).collect();
        let mut folded = Histogram::default();
        folded.update(&data[..1234]);
        folded.fold();
        folded.update(&data[1234..]);
        assert_eq!(folded.totals(), {
            let mut h = Histogram::default();
            h.update(&data);
            h.totals()
        });
        assert_eq!(folded.pending, (data.len() - 1234) as u64);
    }

    #[test]
    fn merged_pieces_equal_whole() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i * 31 % 253) as u8).collect();
        let mut whole = Histogram::default();
        whole.update(&data);
        let mut merged = Histogram::default();
        for c in data.chunks(4099) {
            let mut h = Histogram::default();
            h.update(c);
            merged.merge(&h);
        }
        assert_eq!(merged.totals(), whole.totals());
        assert_eq!(merged.entropy().to_bits(), whole.entropy().to_bits());
    }

    #[test]
    fn pieces_equal_whole() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut h = Histogram::default();
        for c in data.chunks(333) {
            h.update(c);
        }
        assert_eq!(h.entropy(), shannon(&data));
        assert_eq!(h.total(), 10_000);
    }
}

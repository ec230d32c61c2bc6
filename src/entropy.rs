//! Shannon entropy in bits per byte, from a byte histogram.
//!
//! The formula is pefile's (`SectionStructure.entropy_H`): the sum of `-p·log2 p` over the byte values that
//! occur, `0.0` for no data. The histogram is kept separate so that the hashing pass can fill it while it
//! reads the bytes once.

/// A byte-value histogram that can be filled in pieces.
#[derive(Clone)]
pub struct Histogram {
    counts: [u64; 256],
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: [0; 256] }
    }
}

impl Histogram {
    /// Add bytes to the histogram.
    pub fn update(&mut self, data: &[u8]) {
        // Four interleaved tables break the store-to-load dependency on runs of equal bytes
        // (a long run of zeros would otherwise serialise on one counter).
        let mut t = [[0u32; 256]; 4];
        for block in data.chunks(1 << 30) {
            let mut it = block.chunks_exact(4);
            for c in &mut it {
                t[0][c[0] as usize] += 1;
                t[1][c[1] as usize] += 1;
                t[2][c[2] as usize] += 1;
                t[3][c[3] as usize] += 1;
            }
            for &b in it.remainder() {
                t[0][b as usize] += 1;
            }
            for (i, count) in self.counts.iter_mut().enumerate() {
                *count += u64::from(t[0][i]) + u64::from(t[1][i]) + u64::from(t[2][i]) + u64::from(t[3][i]);
            }
            t = [[0u32; 256]; 4];
        }
    }

    /// Total bytes counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Shannon entropy in bits per byte.
    pub fn entropy(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        let n = total as f64;
        let mut h = 0.0;
        for &c in &self.counts {
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

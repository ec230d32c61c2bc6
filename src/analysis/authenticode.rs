//! Authenticode structure: which bytes the image hash (authentihash) covers, and the certificate table.
//!
//! The authentihash is the digest of the whole file minus three ranges: the optional header's CheckSum, the
//! security data-directory entry, and the certificate table itself (PE/COFF "Calculating the PE image
//! hash"). We locate them as signify does (`SignedPEFile._parse_pe_header_locations`), which covers the whole
//! file in one walk and agrees with LIEF and osslsigncode on real files while still giving an answer for a
//! truncated one. The ranges are computed from the headers before hashing starts, so that the hashing pass
//! can feed the authentihash digests in the same single pass over the bytes.
//!
//! Verifying signatures (PKCS#7, chain, timestamp) is not done here.

use std::ops::Range;

use crate::report::{Anomaly, CertificateEntry, EmbeddedSignature};

fn u16_at(d: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(d.get(off..off.checked_add(2)?)?.try_into().ok()?))
}

fn u32_at(d: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(off..off.checked_add(4)?)?.try_into().ok()?))
}

/// Where the excluded ranges lie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageHashLayout {
    /// File ranges the authentihash covers, in order.
    pub hashed: Vec<Range<u64>>,
    /// The certificate table (file offset range), when the directory points at one inside the file.
    pub certificate_table: Option<Range<u64>>,
    /// The security data directory (file offset, size) as the headers state it, when it is non-zero.
    pub directory: Option<(u64, u64)>,
}

/// Compute which ranges of a file of `file_len` bytes the authentihash covers, reading the headers from
/// `head` (a prefix of the file, or all of it). `None` when the file is not a PE that can carry
/// Authenticode (no PE signature, an optional header too short to hold the CheckSum, unknown magic).
pub fn image_hash_layout(head: &[u8], file_len: u64) -> Option<ImageHashLayout> {
    if !head.starts_with(b"MZ") {
        return None;
    }
    let pe = u64::from(u32_at(head, 0x3c)?);
    if pe >= file_len {
        return None;
    }
    let pe = usize::try_from(pe).ok()?;
    if head.get(pe..pe.checked_add(4)?)? != b"PE\0\0" {
        return None;
    }
    let opt_size = u64::from(u16_at(head, pe + 20)?);
    let opt = pe as u64 + 24;
    if opt + opt_size > file_len || opt_size < 68 {
        return None;
    }
    let (rva_base, cert_base) = match u16_at(head, opt as usize)? {
        0x10b => (opt + 92, opt + 128),
        0x20b => (opt + 108, opt + 144),
        _ => return None,
    };
    let mut omit: Vec<Range<u64>> = Vec::with_capacity(3);
    omit.push(opt + 64..opt + 68);
    let mut table = None;
    let mut directory = None;
    let opt_end = opt + opt_size;
    if opt_end >= rva_base + 4 {
        let n = u32_at(head, rva_base as usize)?;
        if n >= 5 && opt_end >= cert_base + 8 {
            omit.push(cert_base..cert_base + 8);
            let address = u64::from(u32_at(head, cert_base as usize)?);
            let size = u64::from(u32_at(head, cert_base as usize + 4)?);
            if address != 0 || size != 0 {
                directory = Some((address, size));
            }
            if size != 0 && address >= opt_end && address + size <= file_len {
                omit.push(address..address + size);
                table = Some(address..address + size);
            }
        }
    }
    omit.sort_by_key(|r| r.start);
    let mut hashed = Vec::with_capacity(omit.len() + 1);
    let mut at = 0u64;
    for r in &omit {
        if r.start > at {
            hashed.push(at..r.start);
        }
        at = at.max(r.end);
    }
    if file_len > at {
        hashed.push(at..file_len);
    }
    Some(ImageHashLayout { hashed, certificate_table: table, directory })
}

/// Cap on WIN_CERTIFICATE entries walked (a real file has one or two).
const MAX_CERTIFICATE_ENTRIES: usize = 64;

/// Describe the certificate table that the security directory (`offset`, `size`) points at.
pub fn certificate_table(data: &[u8], offset: u32, size: u32, anomalies: &mut Vec<Anomaly>) -> EmbeddedSignature {
    let mut sig = EmbeddedSignature { present: false, offset: None, size: None, entries: Vec::new() };
    if offset == 0 && size == 0 {
        return sig;
    }
    sig.offset = Some(offset);
    sig.size = Some(size);
    let start = offset as usize;
    let end = offset as u64 + size as u64;
    if size == 0 {
        return sig;
    }
    if end > data.len() as u64 {
        anomalies.push(Anomaly::new(
            "certificate-table-beyond-eof",
            format!(
                "the certificate table (offset {offset}, {size} bytes) runs past the end of the file ({} bytes): the file was cut or the signature damaged",
                data.len()
            ),
        ));
        return sig;
    }
    sig.present = true;
    let end = end as usize;
    let mut pos = start;
    while pos < end {
        if sig.entries.len() >= MAX_CERTIFICATE_ENTRIES {
            anomalies.push(Anomaly::new("certificate-table-too-many-entries", "more than 64 WIN_CERTIFICATE entries"));
            break;
        }
        let (Some(length), Some(revision), Some(kind)) =
            (u32_at(data, pos), u16_at(data, pos + 4), u16_at(data, pos + 6))
        else {
            anomalies.push(Anomaly::new(
                "certificate-table-malformed",
                format!("a WIN_CERTIFICATE header at {pos} is cut short"),
            ));
            break;
        };
        if length < 8 || pos as u64 + length as u64 > end as u64 {
            anomalies.push(Anomaly::new(
                "certificate-table-malformed",
                format!("WIN_CERTIFICATE at {pos} has length {length}, which does not fit the table"),
            ));
            break;
        }
        sig.entries.push(CertificateEntry { length, revision, certificate_type: kind });
        // Entries are 8-byte aligned.
        pos += (length as usize + 7) & !7;
    }
    if end as u64 != data.len() as u64 {
        anomalies.push(Anomaly::new(
            "data-after-certificate-table",
            format!("{} bytes follow the certificate table (data appended after signing?)", data.len() - end),
        ));
    }
    sig
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal PE32+ header: MZ, e_lfanew = 0x40, PE, COFF, optional header of 240 bytes.
    fn header(cert: (u32, u32), len: usize) -> Vec<u8> {
        let mut d = vec![0u8; len];
        d[..2].copy_from_slice(b"MZ");
        d[0x3c] = 0x40;
        d[0x40..0x44].copy_from_slice(b"PE\0\0");
        d[0x40 + 20..0x40 + 22].copy_from_slice(&240u16.to_le_bytes());
        let opt = 0x58;
        d[opt..opt + 2].copy_from_slice(&0x20bu16.to_le_bytes());
        d[opt + 108..opt + 112].copy_from_slice(&16u32.to_le_bytes());
        d[opt + 144..opt + 148].copy_from_slice(&cert.0.to_le_bytes());
        d[opt + 148..opt + 152].copy_from_slice(&cert.1.to_le_bytes());
        d
    }

    #[test]
    fn unsigned_file_skips_checksum_and_directory_entry() {
        let d = header((0, 0), 1024);
        let l = image_hash_layout(&d, 1024).unwrap();
        let opt = 0x58u64;
        assert_eq!(l.hashed, vec![0..opt + 64, opt + 68..opt + 144, opt + 152..1024]);
        assert_eq!(l.certificate_table, None);
    }

    #[test]
    fn signed_file_skips_the_table() {
        let d = header((1000, 24), 1024);
        let l = image_hash_layout(&d, 1024).unwrap();
        assert_eq!(l.hashed.last().unwrap(), &(0x58 + 152..1000));
        assert_eq!(l.certificate_table, Some(1000..1024));
        // A table past the end of the file is not excluded (signify: "makes no sense").
        let l = image_hash_layout(&d, 1010).unwrap();
        assert_eq!(l.certificate_table, None);
        assert_eq!(l.hashed.last().unwrap(), &(0x58 + 152..1010));
    }

    #[test]
    fn not_a_pe() {
        assert!(image_hash_layout(b"MZ", 2).is_none());
        assert!(image_hash_layout(b"hello world", 11).is_none());
        let mut d = header((0, 0), 1024);
        d[0x3c..0x40].copy_from_slice(&0xFFFF_FF00u32.to_le_bytes());
        assert!(image_hash_layout(&d, 1024).is_none());
    }

    #[test]
    fn certificate_entries_are_walked() {
        let mut d = vec![0u8; 64];
        d[32..36].copy_from_slice(&20u32.to_le_bytes());
        d[36..38].copy_from_slice(&0x200u16.to_le_bytes());
        d[38..40].copy_from_slice(&2u16.to_le_bytes());
        d[56..60].copy_from_slice(&8u32.to_le_bytes());
        let mut a = Vec::new();
        let s = certificate_table(&d, 32, 32, &mut a);
        assert!(s.present);
        assert_eq!(s.entries.len(), 2);
        assert_eq!(s.entries[0].certificate_type, 2);
        assert!(a.is_empty(), "{a:?}");
        let s = certificate_table(&d, 32, 64, &mut a);
        assert!(!s.present);
        assert_eq!(a[0].id, "certificate-table-beyond-eof");
    }
}

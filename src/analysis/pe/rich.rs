//! The Rich header: the MSVC linker's XOR-masked list of the tools that built the image.
//!
//! Located and decoded as pefile's `parse_rich_header` does, so that the hash (pefile
//! `get_rich_header_hash`: MD5 of the decoded bytes from `DanS` up to, not including, `Rich`) is the one other
//! tools index by.

use md5::{Digest, Md5};

use super::headers::Pe;
use crate::report::{Anomaly, RichEntry, RichHeader};

const DANS: u32 = 0x536e_6144;
const RICH: u32 = 0x6863_6952;

/// The decoded header and its hash.
pub struct Rich {
    /// Key and entries.
    pub info: RichHeader,
    /// MD5 of the decoded `DanS`…entries block.
    pub hash_md5: String,
}

/// Find and decode the Rich header between the DOS stub (0x80) and the optional header.
pub fn parse(pe: &Pe<'_>, anomalies: &mut Vec<Anomaly>) -> Option<Rich> {
    let data = pe.data;
    let end = pe.optional_header_offset.min(data.len());
    if end <= 0x80 {
        return None;
    }
    let rich_index = 0x80 + data[0x80..end].windows(4).position(|w| w == b"Rich")?;
    let stop = (rich_index + 8).min(data.len());
    let block = &data[0x80..stop];
    let block = &block[..block.len() / 4 * 4];
    let dwords: Vec<u32> = block.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let at = dwords.iter().position(|&d| d == RICH)?;
    let key = *dwords.get(at + 1)?;
    let key_bytes = key.to_le_bytes();
    let raw_end = block.windows(4).position(|w| w == b"Rich").unwrap_or(block.len());
    let clear: Vec<u8> = block[..raw_end].iter().enumerate().map(|(i, &b)| b ^ key_bytes[i % 4]).collect();
    let valid =
        dwords.len() >= 4 && dwords[0] ^ key == DANS && dwords[1] == key && dwords[2] == key && dwords[3] == key;
    if !valid {
        anomalies.push(Anomaly::new("rich-header-malformed", "the Rich header is not in Microsoft's format"));
    }
    let mut entries = Vec::new();
    let rest = dwords.get(4..).unwrap_or(&[]);
    for pair in rest.chunks_exact(2) {
        if pair[0] == RICH {
            break;
        }
        let (comp, count) = (pair[0] ^ key, pair[1] ^ key);
        entries.push(RichEntry { prod_id: (comp >> 16) as u16, build: (comp & 0xffff) as u16, count });
    }
    Some(Rich {
        info: RichHeader { key: crate::hex::encode(&key_bytes), valid, entries },
        hash_md5: crate::hex::encode(&Md5::digest(&clear)),
    })
}

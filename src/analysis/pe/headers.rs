//! PE headers and the section table, read the way pefile reads them.
//!
//! The fixed structures (DOS header, COFF header, optional header, data directories, section table) are read
//! here with bounds-checked little-endian reads, before any goblin sub-parser sees the file: this is where
//! untrusted counts are capped (sections, directories). The reading rules follow pefile 2024.8.26
//! (`PE.__parse__`, `parse_sections`, `get_offset_from_rva`, `SectionStructure.get_data`,
//! `get_overlay_data_start_offset`, `generate_checksum`) because pefile is the reference our numbers are
//! compared with; where pefile gives up on a file (a section header cut in half), we keep what was read and
//! record an anomaly instead.

use crate::report::Anomaly;

/// pefile's cap on sections (`MAX_SECTIONS`).
pub const MAX_SECTIONS: usize = 0x800;

/// Little-endian reads that return `None` past the end.
pub fn u16_at(d: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(d.get(off..off.checked_add(2)?)?.try_into().ok()?))
}

/// Little-endian u32 at `off`.
pub fn u32_at(d: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(off..off.checked_add(4)?)?.try_into().ok()?))
}

/// Little-endian u64 at `off`.
pub fn u64_at(d: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(d.get(off..off.checked_add(8)?)?.try_into().ok()?))
}

/// Read a structure that may run past the end of `d`: missing bytes read as zero (as pefile pads).
fn padded(d: &[u8], off: usize, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    if off < d.len() {
        let avail = (d.len() - off).min(len);
        v[..avail].copy_from_slice(&d[off..off + avail]);
    }
    v
}

/// The COFF file header.
#[derive(Debug, Clone, Default)]
pub struct FileHeader {
    /// Machine.
    pub machine: u16,
    /// NumberOfSections.
    pub number_of_sections: u16,
    /// TimeDateStamp.
    pub time_date_stamp: u32,
    /// PointerToSymbolTable.
    pub pointer_to_symbol_table: u32,
    /// NumberOfSymbols.
    pub number_of_symbols: u32,
    /// SizeOfOptionalHeader.
    pub size_of_optional_header: u16,
    /// Characteristics.
    pub characteristics: u16,
}

/// The optional header fields filerep uses.
#[derive(Debug, Clone, Default)]
pub struct OptionalHeader {
    /// Magic (0x10b PE32, 0x20b PE32+).
    pub magic: u16,
    /// MajorLinkerVersion.
    pub major_linker_version: u8,
    /// MinorLinkerVersion.
    pub minor_linker_version: u8,
    /// AddressOfEntryPoint.
    pub address_of_entry_point: u32,
    /// ImageBase.
    pub image_base: u64,
    /// SectionAlignment.
    pub section_alignment: u32,
    /// FileAlignment.
    pub file_alignment: u32,
    /// SizeOfImage.
    pub size_of_image: u32,
    /// SizeOfHeaders.
    pub size_of_headers: u32,
    /// CheckSum.
    pub checksum: u32,
    /// Subsystem.
    pub subsystem: u16,
    /// DllCharacteristics.
    pub dll_characteristics: u16,
    /// NumberOfRvaAndSizes.
    pub number_of_rva_and_sizes: u32,
}

impl OptionalHeader {
    /// True for PE32+.
    pub fn is_64(&self) -> bool {
        self.magic == 0x20b
    }
}

/// One section header.
#[derive(Debug, Clone, Default)]
pub struct SectionHeader {
    /// Index in the file's section table.
    pub index: usize,
    /// File offset of this header.
    pub header_offset: usize,
    /// The 8 name bytes.
    pub name: [u8; 8],
    /// VirtualSize (Misc).
    pub virtual_size: u32,
    /// VirtualAddress.
    pub virtual_address: u32,
    /// SizeOfRawData.
    pub size_of_raw_data: u32,
    /// PointerToRawData.
    pub pointer_to_raw_data: u32,
    /// Characteristics.
    pub characteristics: u32,
}

/// A parsed PE: the bytes plus its fixed headers and sections, with pefile's address arithmetic.
#[derive(Debug)]
pub struct Pe<'a> {
    /// The whole file.
    pub data: &'a [u8],
    /// e_lfanew.
    pub e_lfanew: usize,
    /// COFF header.
    pub file_header: FileHeader,
    /// File offset of the optional header.
    pub optional_header_offset: usize,
    /// Optional header.
    pub opt: OptionalHeader,
    /// Data directories as pefile reads them (at most 16).
    pub data_directories: Vec<(u32, u32)>,
    /// Sections, sorted by VirtualAddress as pefile keeps them.
    pub sections: Vec<SectionHeader>,
    /// End of the headers as pefile computes it (start of the first section's data, or end of the table).
    pub header_len: usize,
    /// The section the last RVA lookup found (pefile keeps the same cache): lookups cluster, and a hostile
    /// file with thousands of sections would otherwise cost a scan per lookup.
    last_section: std::cell::Cell<Option<usize>>,
}

/// Why the headers could not be read at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    /// The DOS header is shorter than 64 bytes.
    #[error("the DOS header is cut short")]
    DosHeaderTruncated,
    /// No MZ.
    #[error("no MZ signature")]
    NoMz,
    /// e_lfanew past the end.
    #[error("e_lfanew points past the end of the file")]
    ELfanewOutOfBounds,
    /// No PE signature.
    #[error("no PE signature at e_lfanew")]
    NoPeSignature,
    /// COFF header cut.
    #[error("the COFF file header is cut short")]
    FileHeaderTruncated,
    /// Optional header cut below pefile's minimum.
    #[error("the optional header is cut short")]
    OptionalHeaderTruncated,
}

impl<'a> Pe<'a> {
    /// Read the headers and the section table. Anomalies found on the way are appended.
    pub fn parse(data: &'a [u8], anomalies: &mut Vec<Anomaly>) -> Result<Pe<'a>, HeaderError> {
        if data.len() < 64 {
            return Err(HeaderError::DosHeaderTruncated);
        }
        if !data.starts_with(b"MZ") {
            return Err(HeaderError::NoMz);
        }
        let e_lfanew = u32_at(data, 0x3c).ok_or(HeaderError::DosHeaderTruncated)? as usize;
        if e_lfanew > data.len() {
            return Err(HeaderError::ELfanewOutOfBounds);
        }
        if data.get(e_lfanew..e_lfanew.saturating_add(4)) != Some(b"PE\0\0".as_slice()) {
            return Err(HeaderError::NoPeSignature);
        }
        let fh_off = e_lfanew + 4;
        if data.len() < fh_off + 20 {
            return Err(HeaderError::FileHeaderTruncated);
        }
        let file_header = FileHeader {
            machine: u16_at(data, fh_off).unwrap_or(0),
            number_of_sections: u16_at(data, fh_off + 2).unwrap_or(0),
            time_date_stamp: u32_at(data, fh_off + 4).unwrap_or(0),
            pointer_to_symbol_table: u32_at(data, fh_off + 8).unwrap_or(0),
            number_of_symbols: u32_at(data, fh_off + 12).unwrap_or(0),
            size_of_optional_header: u16_at(data, fh_off + 16).unwrap_or(0),
            characteristics: u16_at(data, fh_off + 18).unwrap_or(0),
        };
        let opt_off = fh_off + 20;
        // pefile reads the optional header from its offset, padding with zeros when at least 69 bytes
        // (73 for PE32+) are present, and refuses the file below that.
        let available = data.len().saturating_sub(opt_off);
        let magic = u16_at(data, opt_off).unwrap_or(0);
        let (fixed_size, minimum) = if magic == 0x20b { (112, 73) } else { (96, 69) };
        if available < fixed_size && available < minimum {
            return Err(HeaderError::OptionalHeaderTruncated);
        }
        if available < fixed_size {
            anomalies.push(Anomaly::new(
                "optional-header-truncated",
                format!("the optional header is cut short ({available} of {fixed_size} bytes)"),
            ));
        }
        let o = padded(data, opt_off, fixed_size);
        let is64 = magic == 0x20b;
        if magic != 0x10b && magic != 0x20b {
            anomalies.push(Anomaly::new(
                "optional-header-magic-unknown",
                format!("unknown optional header magic 0x{magic:x} (read as PE32)"),
            ));
        }
        let r16 = |off: usize| u16_at(&o, off).unwrap_or(0);
        let r32 = |off: usize| u32_at(&o, off).unwrap_or(0);
        let opt = OptionalHeader {
            magic,
            major_linker_version: o[2],
            minor_linker_version: o[3],
            address_of_entry_point: r32(16),
            image_base: if is64 { u64_at(&o, 24).unwrap_or(0) } else { u64::from(r32(28)) },
            section_alignment: r32(32),
            file_alignment: r32(36),
            size_of_image: r32(56),
            size_of_headers: r32(60),
            checksum: r32(64),
            subsystem: r16(68),
            dll_characteristics: r16(70),
            number_of_rva_and_sizes: r32(if is64 { 108 } else { 92 }),
        };

        // Data directories: right after the fixed part (whatever SizeOfOptionalHeader says), at most 16,
        // stopping at the end of the file and zero-padding a last partial entry.
        if opt.number_of_rva_and_sizes > 16 {
            anomalies.push(Anomaly::new(
                "too-many-data-directories",
                format!("NumberOfRvaAndSizes is {} (at most 16 are used)", opt.number_of_rva_and_sizes),
            ));
        }
        let mut data_directories = Vec::new();
        let mut off = opt_off + fixed_size;
        for _ in 0..(opt.number_of_rva_and_sizes & 0x7fff_ffff).min(16) {
            if off >= data.len() {
                break;
            }
            let e = padded(data, off, 8);
            data_directories.push((u32_at(&e, 0).unwrap_or(0), u32_at(&e, 4).unwrap_or(0)));
            off += 8;
        }

        let mut pe = Pe {
            data,
            e_lfanew,
            file_header,
            optional_header_offset: opt_off,
            opt,
            data_directories,
            sections: Vec::new(),
            header_len: 0,
            last_section: std::cell::Cell::new(None),
        };
        let table = opt_off + usize::from(pe.file_header.size_of_optional_header);
        let table_end = pe.parse_sections(table, anomalies);
        // pefile: the header is everything before the lowest section data, or up to the end of the table.
        let lowest =
            pe.sections.iter().filter(|s| s.pointer_to_raw_data > 0).map(|s| adjust_ptr(s.pointer_to_raw_data)).min();
        pe.header_len = match lowest {
            Some(l) if (l as usize) >= table_end => l as usize,
            _ => table_end,
        };
        Ok(pe)
    }

    /// pefile `parse_sections`: read up to NumberOfSections headers, stopping at an all-zero header or
    /// after too many problems in one header; then sort by VirtualAddress. Returns the end of the table.
    fn parse_sections(&mut self, table: usize, anomalies: &mut Vec<Anomaly>) -> usize {
        let n = usize::from(self.file_header.number_of_sections);
        let len = self.data.len() as u64;
        for i in 0..n {
            if i >= MAX_SECTIONS {
                anomalies.push(Anomaly::limiting(
                    "too-many-sections",
                    format!("NumberOfSections is {n}; only the first {MAX_SECTIONS} headers were read"),
                ));
                break;
            }
            let off = table + 40 * i;
            let raw = self.data.get(off..self.data.len().min(off + 40)).unwrap_or(&[]);
            if raw.is_empty() {
                anomalies.push(Anomaly::new(
                    "section-table-truncated",
                    format!("the section table ends at the end of the file: {i} of {n} section headers present"),
                ));
                break;
            }
            if raw.len() == 40 && raw.iter().all(|&b| b == 0) {
                anomalies.push(Anomaly::new(
                    "section-table-null-entry",
                    format!("section header {i} of {n} is all zeros; the table ends there"),
                ));
                break;
            }
            if raw.len() < 40 {
                anomalies.push(Anomaly::limiting(
                    "section-table-truncated",
                    format!("section header {i} is cut short by the end of the file ({} of 40 bytes)", raw.len()),
                ));
                break;
            }
            let mut name = [0u8; 8];
            name.copy_from_slice(&raw[..8]);
            let s = SectionHeader {
                index: i,
                header_offset: off,
                name,
                virtual_size: u32_at(raw, 8).unwrap_or(0),
                virtual_address: u32_at(raw, 12).unwrap_or(0),
                size_of_raw_data: u32_at(raw, 16).unwrap_or(0),
                pointer_to_raw_data: u32_at(raw, 20).unwrap_or(0),
                characteristics: u32_at(raw, 36).unwrap_or(0),
            };
            let mut problems = 0;
            let label = section_label(&s);
            if u64::from(s.size_of_raw_data) + u64::from(s.pointer_to_raw_data) > len {
                problems += 1;
                // The missing bytes cannot be analysed: the file was cut, or the header lies.
                anomalies.push(Anomaly::limiting(
                    "section-beyond-eof",
                    format!("section {i} ({label}): raw data runs past the end of the file"),
                ));
            }
            if u64::from(adjust_ptr(s.pointer_to_raw_data)) > len {
                problems += 1;
            }
            if s.virtual_size > 0x1000_0000 {
                problems += 1;
                anomalies.push(Anomaly::new(
                    "section-virtual-size-huge",
                    format!("section {i} ({label}): VirtualSize 0x{:x} is over 256 MiB", s.virtual_size),
                ));
            }
            if adjust_va(s.virtual_address, self.opt.section_alignment, self.opt.file_alignment) > 0x1000_0000 {
                problems += 1;
            }
            if self.opt.file_alignment != 0 && s.pointer_to_raw_data % self.opt.file_alignment != 0 {
                problems += 1;
                anomalies.push(Anomaly::new(
                    "section-misaligned",
                    format!("section {i} ({label}): PointerToRawData is not a multiple of FileAlignment"),
                ));
            }
            if problems >= 3 {
                anomalies.push(Anomaly::limiting(
                    "section-table-corrupt",
                    format!("section header {i} has {problems} inconsistencies; the rest of the table was not read"),
                ));
                break;
            }
            self.sections.push(s);
        }
        self.sections.sort_by_key(|s| s.virtual_address);
        if n > 0 && !self.sections.is_empty() { table + 40 * n } else { table }
    }

    /// pefile `SectionStructure.get_PointerToRawData_adj`.
    fn ptr_adj(&self, s: &SectionHeader) -> u64 {
        if self.opt.section_alignment < 0x1000 && s.pointer_to_raw_data == s.virtual_address {
            u64::from(s.virtual_address)
        } else {
            u64::from(adjust_ptr(s.pointer_to_raw_data))
        }
    }

    fn va_adj(&self, s: &SectionHeader) -> u64 {
        u64::from(adjust_va(s.virtual_address, self.opt.section_alignment, self.opt.file_alignment))
    }

    /// pefile `SectionStructure.contains_rva` (with the clamp to the next section's address).
    fn contains_rva(&self, idx: usize, rva: u64) -> bool {
        let s = &self.sections[idx];
        let va = self.va_adj(s);
        let len = self.data.len() as u64;
        let mut size = if len.saturating_sub(self.ptr_adj(s)) < u64::from(s.size_of_raw_data) || self.ptr_adj(s) > len {
            u64::from(s.virtual_size)
        } else {
            u64::from(s.size_of_raw_data.max(s.virtual_size))
        };
        if let Some(next) = self.sections.get(idx + 1) {
            let next_va = u64::from(next.virtual_address);
            if next_va > u64::from(s.virtual_address) && va + size > next_va {
                size = next_va.saturating_sub(va);
            }
        }
        va <= rva && rva < va + size
    }

    /// pefile `get_section_by_rva` (the index into `sections`).
    pub fn section_by_rva(&self, rva: u32) -> Option<usize> {
        if let Some(i) = self.last_section.get() {
            if self.contains_rva(i, u64::from(rva)) {
                return Some(i);
            }
        }
        let found = (0..self.sections.len()).find(|&i| self.contains_rva(i, u64::from(rva)));
        if found.is_some() {
            self.last_section.set(found);
        }
        found
    }

    /// pefile `get_offset_from_rva`: the file offset of an RVA, or `None` where pefile raises.
    pub fn offset_from_rva(&self, rva: u32) -> Option<u64> {
        match self.section_by_rva(rva) {
            Some(i) => {
                let s = &self.sections[i];
                Some((u64::from(rva) + self.ptr_adj(s)).saturating_sub(self.va_adj(s)))
            }
            None if (rva as usize) < self.data.len() => Some(u64::from(rva)),
            None => None,
        }
    }

    /// pefile `SectionStructure.get_data()`: the section's raw bytes present in the file.
    pub fn section_data(&self, s: &SectionHeader) -> &'a [u8] {
        let len = self.data.len() as u64;
        let start = self.ptr_adj(s);
        let mut end = start + u64::from(s.size_of_raw_data);
        end = end.min(u64::from(s.pointer_to_raw_data) + u64::from(s.size_of_raw_data));
        let (start, end) = (start.min(len), end.min(len));
        if start >= end { &[] } else { &self.data[start as usize..end as usize] }
    }

    /// pefile `SectionStructure.get_data(start=rva, length)`.
    fn section_data_at(&self, s: &SectionHeader, rva: u32, len: Option<u64>) -> &'a [u8] {
        let file_len = self.data.len() as u64;
        let offset = (u64::from(rva) + self.ptr_adj(s)).saturating_sub(self.va_adj(s));
        let mut end = match len {
            Some(l) => offset.saturating_add(l),
            None => offset + u64::from(s.size_of_raw_data),
        };
        end = end.min(u64::from(s.pointer_to_raw_data) + u64::from(s.size_of_raw_data));
        let (a, b) = (offset.min(file_len), end.min(file_len));
        if a >= b { &[] } else { &self.data[a as usize..b as usize] }
    }

    /// pefile `PE.get_data(rva, length)`: bytes at an RVA, from its section, else from the header, else
    /// from the file at that offset; `None` where pefile raises ("data at RVA can't be fetched").
    pub fn get_data(&self, rva: u32, len: usize) -> Option<&'a [u8]> {
        match self.section_by_rva(rva) {
            Some(i) => Some(self.section_data_at(&self.sections[i], rva, Some(len as u64))),
            None => {
                let r = rva as usize;
                let limit = if r < self.header_len.min(self.data.len()) {
                    self.header_len.min(self.data.len())
                } else {
                    self.data.len()
                };
                if r < limit { Some(&self.data[r..r.saturating_add(len).min(limit)]) } else { None }
            }
        }
    }

    /// pefile `get_string_at_rva(rva, max_length)`: bytes up to the first NUL (never fails; empty when
    /// nothing is there).
    pub fn string_at_rva(&self, rva: u32, max_len: usize) -> &'a [u8] {
        let bytes = match self.section_by_rva(rva) {
            Some(i) => self.section_data_at(&self.sections[i], rva, Some(max_len as u64)),
            None => {
                let r = (rva as usize).min(self.data.len());
                &self.data[r..r.saturating_add(max_len).min(self.data.len())]
            }
        };
        match bytes.iter().position(|&b| b == 0) {
            Some(end) => &bytes[..end],
            None => bytes,
        }
    }

    /// Read `len` bytes at an RVA (through the section that holds it, or the header), clipped to the file.
    pub fn bytes_at_rva(&self, rva: u32, len: usize) -> Option<&'a [u8]> {
        let off = usize::try_from(self.offset_from_rva(rva)?).ok()?;
        let end = off.checked_add(len)?.min(self.data.len());
        self.data.get(off..end)
    }

    /// pefile `get_overlay_data_start_offset`.
    pub fn overlay_start(&self) -> Option<u64> {
        let file_len = self.data.len() as u64;
        let mut best = (0u64, 0u64);
        let mut consider = |off: u64, size: u64| {
            let end = off.saturating_add(size);
            if best.0 + best.1 < end && end <= file_len {
                best = (off, size);
            }
        };
        consider(self.optional_header_offset as u64, u64::from(self.file_header.size_of_optional_header));
        for s in &self.sections {
            consider(u64::from(s.pointer_to_raw_data), u64::from(s.size_of_raw_data));
        }
        for (i, &(rva, size)) in self.data_directories.iter().enumerate() {
            if i == 4 {
                continue; // the security directory holds a file offset, and is the overlay itself
            }
            if let Some(off) = self.offset_from_rva(rva) {
                consider(off, u64::from(size));
            }
        }
        let end = best.0 + best.1;
        (file_len > end).then_some(end)
    }

    /// pefile `generate_checksum`: the Windows image checksum, skipping the CheckSum field.
    pub fn computed_checksum(&self) -> u32 {
        pe_checksum(self.data, (self.optional_header_offset + 64) / 4)
    }

    /// The data directory at `index` (zero when absent).
    pub fn directory(&self, index: usize) -> (u32, u32) {
        self.data_directories.get(index).copied().unwrap_or((0, 0))
    }
}

/// pefile `generate_checksum`: the sum of the file's little-endian dwords (the one at dword index `skip`, the
/// CheckSum field, left out; a short last dword zero-padded) with end-around carry, folded to 16 bits, plus
/// the file length.
///
/// pefile folds the carry after every addition; folding once at the end gives the same value (both are the
/// sum modulo 2^32 - 1, and both are zero only for an all-zero sum), and lets the loop vectorise: it was a
/// visible share of a scan's time, as it reads every byte of the file.
pub fn pe_checksum(data: &[u8], skip: usize) -> u32 {
    let words = data.len() / 4;
    let dword =
        |i: usize| u64::from(u32::from_le_bytes([data[4 * i], data[4 * i + 1], data[4 * i + 2], data[4 * i + 3]]));
    let mut total: u128 = 0;
    // 2^28 dwords per block: a block's sum stays below 2^60.
    for block in data[..words * 4].chunks(1 << 30) {
        let s: u64 = block.chunks_exact(4).map(|c| u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))).sum();
        total += u128::from(s);
    }
    if skip < words {
        total -= u128::from(dword(skip));
    }
    let rest = &data[words * 4..];
    if !rest.is_empty() && words != skip {
        let mut last = [0u8; 4];
        last[..rest.len()].copy_from_slice(rest);
        total += u128::from(u32::from_le_bytes(last));
    }
    while total >= 1 << 32 {
        total = (total & 0xffff_ffff) + (total >> 32);
    }
    let mut c = (total & 0xffff) + (total >> 16);
    c += c >> 16;
    c &= 0xffff;
    (c + data.len() as u128) as u32
}

/// pefile `adjust_PointerToRawData`: round down to 0x200.
pub fn adjust_ptr(v: u32) -> u32 {
    v & !0x1ff
}

/// pefile `adjust_SectionAlignment`.
pub fn adjust_va(v: u32, section_alignment: u32, file_alignment: u32) -> u32 {
    let a = if section_alignment < 0x1000 { file_alignment } else { section_alignment };
    if a != 0 && v % a != 0 { a * (v / a) } else { v }
}

/// The section's name for messages: printable ASCII up to the first NUL.
pub fn section_label(s: &SectionHeader) -> String {
    let end = s.name.iter().position(|&b| b == 0).unwrap_or(8);
    String::from_utf8_lossy(&s.name[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// pefile's loop, folding after every addition.
    fn checksum_reference(data: &[u8], skip: usize) -> u32 {
        let mut sum: u64 = 0;
        let mut chunks = data.chunks_exact(4);
        for (i, c) in (&mut chunks).enumerate() {
            if i == skip {
                continue;
            }
            sum += u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            if sum >= 1 << 32 {
                sum = (sum & 0xffff_ffff) + (sum >> 32);
            }
        }
        let rest = chunks.remainder();
        if !rest.is_empty() && data.len() / 4 != skip {
            let mut last = [0u8; 4];
            last[..rest.len()].copy_from_slice(rest);
            sum += u64::from(u32::from_le_bytes(last));
            if sum >= 1 << 32 {
                sum = (sum & 0xffff_ffff) + (sum >> 32);
            }
        }
        let mut c = (sum & 0xffff) + (sum >> 16);
        c += c >> 16;
        c &= 0xffff;
        (c + data.len() as u64) as u32
    }

    #[test]
    fn checksum_folding_once_equals_folding_every_step() {
        let mut cases: Vec<Vec<u8>> = vec![vec![], vec![0; 7], vec![0xff; 4096], vec![0xff; 4099], vec![1, 2, 3]];
        for seed in 1..40u32 {
            let n = (seed * 7919 % 5000) as usize;
            cases.push(crate::test_vectors::lcg(n, seed));
        }
        // Sums that are multiples of 2^32 - 1 (the end-around carry's zero).
        let mut m = vec![0xffu8; 4 * 17];
        m.extend_from_slice(&[1, 0, 0, 0]);
        cases.push(m);
        for data in &cases {
            for skip in [0usize, 1, 16, data.len() / 4, usize::MAX] {
                assert_eq!(pe_checksum(data, skip), checksum_reference(data, skip), "len {} skip {skip}", data.len());
            }
        }
    }

    #[test]
    fn alignment_rules() {
        assert_eq!(adjust_ptr(0x401), 0x400);
        assert_eq!(adjust_ptr(0x1ff), 0);
        assert_eq!(adjust_va(0x1234, 0x1000, 0x200), 0x1000);
        assert_eq!(adjust_va(0x1234, 0x200, 0x200), 0x1200);
        assert_eq!(adjust_va(0x1234, 0x100, 0), 0x1234);
    }

    #[test]
    fn refuses_what_pefile_refuses() {
        let mut a = Vec::new();
        assert_eq!(Pe::parse(b"MZ", &mut a).unwrap_err(), HeaderError::DosHeaderTruncated);
        let mut d = vec![0u8; 64];
        d[..2].copy_from_slice(b"MZ");
        d[0x3c] = 0xff;
        assert_eq!(Pe::parse(&d, &mut a).unwrap_err(), HeaderError::ELfanewOutOfBounds);
        d[0x3c] = 0x30;
        assert_eq!(Pe::parse(&d, &mut a).unwrap_err(), HeaderError::NoPeSignature);
        d[0x30..0x34].copy_from_slice(b"PE\0\0");
        assert_eq!(Pe::parse(&d, &mut a).unwrap_err(), HeaderError::FileHeaderTruncated);
        d.resize(0x48 + 68, 0);
        assert_eq!(Pe::parse(&d, &mut a).unwrap_err(), HeaderError::OptionalHeaderTruncated);
        // 69 bytes of a PE32 optional header are enough for pefile: the rest reads as zeros.
        d.push(0);
        let pe = Pe::parse(&d, &mut a).unwrap();
        assert_eq!(pe.opt.number_of_rva_and_sizes, 0);
        assert!(a.iter().any(|x| x.id == "optional-header-truncated"));
    }
}

//! ELF analysis: the header, program headers, section headers, the dynamic section, notes and symbol names,
//! turned into filerep's [`ElfInfo`] (hardening flags as LIEF 1.0 defines them, linked libraries, build id,
//! sections with their entropy).
//!
//! It does not own format detection (`analysis::detect_format`), panic recovery (`analysis::guarded`) or the
//! JSON types (`report`). Every count read from the file (program headers, sections, dynamic entries,
//! symbols, notes) is bounded by what the file can actually hold, and by a fixed cap, before goblin allocates
//! anything for it; goblin is only used for its table parsers (`Elf::parse_header`, `ProgramHeader::parse`,
//! `SectionHeader::parse_from`, `Symtab`), never for the all-at-once `Elf::parse`, whose hash-table and
//! relocation walks trust the file. What a damaged file still lets us read is reported, with anomalies.

use std::collections::BTreeSet;

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::dynamic::{
    DF_1_NOW, DF_1_PIE, DF_BIND_NOW, DT_BIND_NOW, DT_FLAGS, DT_FLAGS_1, DT_GNU_HASH, DT_HASH, DT_NEEDED, DT_NULL,
    DT_RPATH, DT_RUNPATH, DT_SONAME, DT_STRSZ, DT_STRTAB, DT_SYMTAB,
};
use goblin::elf::header::{self, EI_CLASS, EI_DATA, EI_OSABI, ELFCLASS32, ELFCLASS64, ELFDATA2LSB, ELFDATA2MSB};
use goblin::elf::program_header::{PF_X, PT_DYNAMIC, PT_GNU_RELRO, PT_GNU_STACK, PT_INTERP, PT_LOAD, PT_NOTE};
use goblin::elf::section_header::{SHN_XINDEX, SHT_DYNAMIC, SHT_DYNSYM, SHT_NOBITS, SHT_NOTE, SHT_SYMTAB};
use goblin::elf::{Elf, ProgramHeader, SectionHeader, Symtab};

use crate::report::{Anomaly, ElfInfo, ElfSection};

/// Program headers read at most (e_phnum is 16 bits, but PN_XNUM moves the count to a 32-bit field).
const MAX_PROGRAM_HEADERS: usize = 65_536;
/// Section headers read at most (e_shnum 0 moves the count to a 64-bit field).
const MAX_SECTIONS: usize = 65_536;
/// Dynamic entries read at most.
const MAX_DYNAMIC_ENTRIES: usize = 65_536;
/// DT_NEEDED entries reported at most.
const MAX_NEEDED: usize = 1_024;
/// Symbols looked at, over all symbol tables (tables may overlap, so the file size alone does not bound this).
const MAX_SYMBOLS: usize = 1 << 21;
/// Notes walked, over all note segments or sections.
const MAX_NOTES: usize = 65_536;
/// Bytes of section names kept, over all sections (a real file needs a few hundred kilobytes at most).
const MAX_SECTION_NAME_BYTES: usize = 8 << 20;
/// Longest string (library, path, section name) kept.
const MAX_STRING: usize = 4_096;
/// A symbol name longer than this is not one of the few names we look for.
const MAX_SYMBOL_NAME: usize = 256;
/// Distinct FORTIFY_SOURCE function names kept (glibc has fewer than a hundred).
const MAX_FORTIFIED: usize = 1_024;
/// Longest build id kept (SHA-1 ids are 20 bytes; anything past this is junk).
const MAX_BUILD_ID: usize = 1_024;
/// PN_XNUM: e_phnum says the real count is in section 0's sh_info.
const PN_XNUM: u16 = 0xffff;
/// NT_GNU_BUILD_ID.
const NT_GNU_BUILD_ID: u32 = 3;
/// Symbols whose presence means the stack protector is used (the oracle's list).
const CANARY_SYMBOLS: [&[u8]; 3] = [b"__stack_chk_fail", b"__stack_chk_guard", b"__stack_chk_fail_local"];

/// Analyse an ELF image.
///
/// Returns `None` only for data without the ELF magic; anything after that yields what could be read,
/// with anomalies for the rest.
pub fn analyse(data: &[u8], anomalies: &mut Vec<Anomaly>) -> Option<ElfInfo> {
    if !data.starts_with(b"\x7fELF") {
        return None;
    }
    let header = match Elf::parse_header(data) {
        Ok(h) => h,
        Err(err) => return Some(from_ident(data, anomalies, &err.to_string())),
    };
    let is_64 = header.e_ident[EI_CLASS] == ELFCLASS64;
    let le = header.e_ident[EI_DATA] == ELFDATA2LSB;
    let ctx =
        Ctx::new(if is_64 { Container::Big } else { Container::Little }, if le { Endian::Little } else { Endian::Big });
    let r = Reader { data, le, is_64 };

    let mut info = ElfInfo {
        class: class_name(header.e_ident[EI_CLASS]),
        endianness: endian_name(header.e_ident[EI_DATA]),
        machine: machine_name(header.e_machine),
        kind: type_name(header.e_type),
        os_abi: os_abi_name(header.e_ident[EI_OSABI]),
        entry: header.e_entry,
        relro: "none".to_string(),
        ..Default::default()
    };

    let sections = section_headers(&r, &header, ctx, anomalies);
    let phdrs = program_headers(&r, &header, sections.first(), ctx, anomalies);
    let names = section_names(&r, &header, &sections, anomalies);
    info.sections = describe_sections(&r, &sections, &names, header.e_machine, anomalies);

    // Segment-level facts, with LIEF's definitions: the first PT_GNU_STACK decides NX.
    let has_interp = phdrs.iter().any(|p| p.p_type == PT_INTERP);
    let has_dynamic = phdrs.iter().any(|p| p.p_type == PT_DYNAMIC);
    let has_relro = phdrs.iter().any(|p| p.p_type == PT_GNU_RELRO);
    info.nx = phdrs.iter().find(|p| p.p_type == PT_GNU_STACK).is_some_and(|p| p.p_flags & PF_X == 0);
    info.is_static = !has_interp && !has_dynamic;
    info.interpreter = interpreter(&r, &phdrs, anomalies);

    let dynamic = phdrs
        .iter()
        .find(|p| p.p_type == PT_DYNAMIC)
        .map(|p| read_dynamic(&r, p, &phdrs, &sections, anomalies))
        .unwrap_or_default();
    info.needed = dynamic.needed.clone();
    info.soname = dynamic.soname.clone();
    info.rpath = dynamic.rpath.clone();
    info.runpath = dynamic.runpath.clone();
    info.pie = dynamic.flags_1 & DF_1_PIE != 0 || (header.e_type == header::ET_DYN && has_interp);
    info.relro = match (has_relro, dynamic.bind_now()) {
        (true, true) => "full",
        (true, false) => "partial",
        (false, _) => "none",
    }
    .to_string();

    info.build_id = build_id(&r, &phdrs, &sections);
    info.stripped = !sections.iter().zip(&names).any(|(s, n)| s.sh_type == SHT_SYMTAB || n == ".symtab");

    let symbols = symbol_facts(&r, ctx, &sections, &dynamic, anomalies);
    info.canary = symbols.canary;
    info.fortified_functions = symbols.fortified;
    info.fortify = !info.fortified_functions.is_empty();
    Some(info)
}

// ------------------------------------------------------------------------------------------- header

/// A header goblin refused (cut short, or a bad class/data byte): report the e_ident bytes and whatever
/// of e_type (offset 16), e_machine (18) and e_entry (24) the file still holds, as LIEF does.
fn from_ident(data: &[u8], anomalies: &mut Vec<Anomaly>, why: &str) -> ElfInfo {
    let class = data.get(EI_CLASS).copied().unwrap_or(0);
    let endian = data.get(EI_DATA).copied().unwrap_or(0);
    let full = if class == ELFCLASS32 { header::header32::SIZEOF_EHDR } else { header::header64::SIZEOF_EHDR };
    if data.len() < full {
        anomalies.push(Anomaly::limiting(
            "elf-header-truncated",
            format!(
                "the ELF header is cut short ({} of {full} bytes); only the identification, type and machine were read",
                data.len()
            ),
        ));
    } else {
        anomalies.push(Anomaly::limiting(
            "elf-header-invalid",
            format!("the ELF header could not be parsed ({why}); only the identification, type and machine were read"),
        ));
    }
    // With an invalid data byte the byte order is a guess: little-endian, as on nearly every ELF target.
    let r = Reader { data, le: endian != ELFDATA2MSB, is_64: class == ELFCLASS64 };
    ElfInfo {
        class: class_name(class),
        endianness: endian_name(endian),
        machine: r.u16(18).map(machine_name).unwrap_or_else(|| "unknown".to_string()),
        kind: r.u16(16).map(type_name).unwrap_or_else(|| "unknown".to_string()),
        os_abi: data.get(EI_OSABI).map(|&b| os_abi_name(b)).unwrap_or_else(|| "unknown".to_string()),
        entry: if class == ELFCLASS32 || class == ELFCLASS64 { r.word(24).unwrap_or(0) } else { 0 },
        relro: "none".to_string(),
        // No PT_INTERP, no PT_DYNAMIC, no .symtab were seen: the definitions give static and stripped.
        is_static: true,
        stripped: true,
        ..Default::default()
    }
}

/// Read the section header table, its count bounded by the file and by [`MAX_SECTIONS`].
fn section_headers(r: &Reader<'_>, h: &header::Header, ctx: Ctx, anomalies: &mut Vec<Anomaly>) -> Vec<SectionHeader> {
    if h.e_shoff == 0 {
        return Vec::new();
    }
    let entsize = SectionHeader::size(ctx);
    if h.e_shnum != 0 && usize::from(h.e_shentsize) != entsize {
        anomalies.push(Anomaly::new(
            "elf-section-header-size-unusual",
            format!("e_shentsize is {} (expected {entsize}); entries were read at the standard size", h.e_shentsize),
        ));
    }
    let fits = r.fits(h.e_shoff, entsize);
    if fits == 0 {
        anomalies.push(Anomaly::limiting(
            "elf-section-headers-invalid",
            format!("the section header table at offset {:#x} lies outside the file; no sections were read", h.e_shoff),
        ));
        return Vec::new();
    }
    // e_shnum 0 with a table present: the real count is section 0's sh_size (extended numbering).
    let first = SectionHeader::parse_from(r.data, h.e_shoff as usize, 1, ctx).ok().and_then(|v| v.into_iter().next());
    let declared = if h.e_shnum == 0 { first.map_or(0, |s| s.sh_size) } else { u64::from(h.e_shnum) };
    let count = clamp_count(declared, fits, MAX_SECTIONS);
    if (count as u64) < declared {
        anomalies.push(Anomaly::limiting(
            "elf-section-headers-invalid",
            format!("the header declares {declared} sections but only {count} were read (the table is cut by the end of the file or over the limit of {MAX_SECTIONS})"),
        ));
    }
    if count == 0 {
        return Vec::new();
    }
    match SectionHeader::parse_from(r.data, h.e_shoff as usize, count, ctx) {
        Ok(v) => v,
        Err(err) => {
            anomalies.push(Anomaly::limiting(
                "elf-section-headers-invalid",
                format!("the section header table could not be read ({err})"),
            ));
            Vec::new()
        }
    }
}

/// Read the program header table, its count bounded by the file and by [`MAX_PROGRAM_HEADERS`].
fn program_headers(
    r: &Reader<'_>,
    h: &header::Header,
    section0: Option<&SectionHeader>,
    ctx: Ctx,
    anomalies: &mut Vec<Anomaly>,
) -> Vec<ProgramHeader> {
    // PN_XNUM: the real count is section 0's sh_info (gABI, "Extended numbering").
    let declared = match (h.e_phnum, section0) {
        (PN_XNUM, Some(s0)) if s0.sh_info != 0 => u64::from(s0.sh_info),
        (n, _) => u64::from(n),
    };
    if declared == 0 {
        return Vec::new();
    }
    let entsize = ProgramHeader::size(ctx);
    if usize::from(h.e_phentsize) != entsize {
        anomalies.push(Anomaly::new(
            "elf-program-header-size-unusual",
            format!("e_phentsize is {} (expected {entsize}); entries were read at the standard size", h.e_phentsize),
        ));
    }
    let fits = if h.e_phoff == 0 { 0 } else { r.fits(h.e_phoff, entsize) };
    let count = clamp_count(declared, fits, MAX_PROGRAM_HEADERS);
    if (count as u64) < declared {
        anomalies.push(Anomaly::limiting(
            "elf-program-headers-invalid",
            format!("the header declares {declared} program headers at offset {:#x} but only {count} were read (the table is cut by the end of the file or over the limit of {MAX_PROGRAM_HEADERS})", h.e_phoff),
        ));
    }
    if count == 0 {
        return Vec::new();
    }
    match ProgramHeader::parse(r.data, h.e_phoff as usize, count, ctx) {
        Ok(v) => v,
        Err(err) => {
            anomalies.push(Anomaly::limiting(
                "elf-program-headers-invalid",
                format!("the program header table could not be read ({err})"),
            ));
            Vec::new()
        }
    }
}

/// `declared` entries, no more than fit in the file and no more than `cap`.
fn clamp_count(declared: u64, fits: usize, cap: usize) -> usize {
    usize::try_from(declared).unwrap_or(usize::MAX).min(fits).min(cap)
}

// ----------------------------------------------------------------------------------------- sections

/// The name of each section, from the section-name string table (e_shstrndx, or section 0's sh_link
/// when it is SHN_XINDEX).
fn section_names(
    r: &Reader<'_>,
    h: &header::Header,
    sections: &[SectionHeader],
    anomalies: &mut Vec<Anomaly>,
) -> Vec<String> {
    let index = if u32::from(h.e_shstrndx) == SHN_XINDEX {
        sections.first().map_or(0, |s| s.sh_link as usize)
    } else {
        usize::from(h.e_shstrndx)
    };
    let table = sections.get(index).filter(|_| index != 0);
    if table.is_none() && index != 0 {
        anomalies.push(Anomaly::new(
            "elf-section-names-missing",
            format!("the section-name string table index {index} names no section; sections are unnamed"),
        ));
    }
    let Some(t) = table else { return vec![String::new(); sections.len()] };
    // Names may all point at one long string: bound the total kept.
    let mut budget = MAX_SECTION_NAME_BYTES;
    let mut out = Vec::with_capacity(sections.len());
    for s in sections {
        let name = r.string_in(t.sh_offset, t.sh_size, s.sh_name as u64).unwrap_or_default();
        if name.len() > budget {
            anomalies.push(Anomaly::limiting(
                "elf-section-names-invalid",
                format!(
                    "the section names add up to more than {MAX_SECTION_NAME_BYTES} bytes; later sections are unnamed"
                ),
            ));
            out.resize(sections.len(), String::new());
            break;
        }
        budget -= name.len();
        out.push(name);
    }
    out
}

/// Each section with its decoded type and flags and the entropy of its bytes in the file.
fn describe_sections(
    r: &Reader<'_>,
    sections: &[SectionHeader],
    names: &[String],
    machine: u16,
    anomalies: &mut Vec<Anomaly>,
) -> Vec<ElfSection> {
    // Sections may overlap (or all cover the whole file): bound the bytes we scan for entropy.
    let mut budget = (r.data.len() as u64).saturating_mul(4).max(1 << 20);
    let mut beyond_eof = 0usize;
    let mut skipped = 0usize;
    let mut out = Vec::with_capacity(sections.len());
    for (s, name) in sections.iter().zip(names) {
        let entropy = if s.sh_type == SHT_NOBITS || s.sh_size == 0 {
            0.0
        } else {
            let bytes = r.clipped(s.sh_offset, s.sh_size);
            if (bytes.len() as u64) < s.sh_size {
                beyond_eof += 1;
            }
            if bytes.len() as u64 > budget {
                skipped += 1;
                0.0
            } else {
                budget -= bytes.len() as u64;
                crate::entropy::shannon(bytes)
            }
        };
        out.push(ElfSection {
            name: name.clone(),
            kind: section_type_name(s.sh_type, machine),
            offset: s.sh_offset,
            size: s.sh_size,
            entropy,
            flags: section_flags(s.sh_flags),
        });
    }
    if beyond_eof > 0 {
        anomalies.push(Anomaly::new(
            "elf-section-beyond-eof",
            format!("{beyond_eof} section(s) extend past the end of the file; their entropy covers the bytes present"),
        ));
    }
    if skipped > 0 {
        anomalies.push(Anomaly::limiting(
            "elf-section-entropy-skipped",
            format!(
                "{skipped} section(s) were not scanned for entropy: the sections overlap far more than a real file's"
            ),
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------- segments

/// PT_INTERP's string, without its NUL.
fn interpreter(r: &Reader<'_>, phdrs: &[ProgramHeader], anomalies: &mut Vec<Anomaly>) -> Option<String> {
    let p = phdrs.iter().find(|p| p.p_type == PT_INTERP)?;
    let bytes = r.clipped(p.p_offset, p.p_filesz.min(MAX_STRING as u64));
    if bytes.is_empty() {
        anomalies.push(Anomaly::new(
            "elf-interpreter-invalid",
            format!("PT_INTERP (offset {:#x}, size {}) holds no string inside the file", p.p_offset, p.p_filesz),
        ));
        return None;
    }
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Some(String::from_utf8_lossy(bytes.get(..end).unwrap_or_default()).into_owned())
}

/// The file offset of a virtual address, through the PT_LOAD segment whose file bytes hold it.
fn vaddr_to_offset(phdrs: &[ProgramHeader], vaddr: u64) -> Option<u64> {
    phdrs.iter().filter(|p| p.p_type == PT_LOAD).find_map(|p| {
        let delta = vaddr.checked_sub(p.p_vaddr)?;
        (delta < p.p_filesz).then(|| p.p_offset.checked_add(delta)).flatten()
    })
}

/// What the dynamic section says, reduced to the facts we report.
#[derive(Debug, Default, Clone)]
struct DynamicFacts {
    needed: Vec<String>,
    soname: Option<String>,
    rpath: Option<String>,
    runpath: Option<String>,
    flags: u64,
    flags_1: u64,
    has_bind_now: bool,
    /// File offset and size of the dynamic string table.
    strtab: Option<(u64, u64)>,
    /// DT_SYMTAB, DT_HASH and DT_GNU_HASH as file offsets.
    symtab: Option<u64>,
    hash: Option<u64>,
    gnu_hash: Option<u64>,
}

impl DynamicFacts {
    /// BIND_NOW in any of its three spellings.
    fn bind_now(&self) -> bool {
        self.has_bind_now || self.flags & DF_BIND_NOW != 0 || self.flags_1 & DF_1_NOW != 0
    }
}

/// Walk PT_DYNAMIC (up to DT_NULL) and resolve its strings through DT_STRTAB.
fn read_dynamic(
    r: &Reader<'_>,
    seg: &ProgramHeader,
    phdrs: &[ProgramHeader],
    sections: &[SectionHeader],
    anomalies: &mut Vec<Anomaly>,
) -> DynamicFacts {
    let entsize: u64 = if r.is_64 { 16 } else { 8 };
    let bytes = r.clipped(seg.p_offset, seg.p_filesz);
    if (bytes.len() as u64) < seg.p_filesz {
        anomalies.push(Anomaly::limiting(
            "elf-dynamic-invalid",
            format!(
                "PT_DYNAMIC (offset {:#x}, size {}) extends past the end of the file; only the bytes present were read",
                seg.p_offset, seg.p_filesz
            ),
        ));
    }
    let mut facts = DynamicFacts::default();
    let (mut needed, mut soname, mut rpath, mut runpath) = (Vec::new(), None, None, None);
    let (mut strtab, mut strsz, mut symtab, mut hash, mut gnu_hash) = (None, None, None, None, None);
    let mut off = seg.p_offset;
    let end = seg.p_offset.saturating_add(bytes.len() as u64);
    let mut n = 0usize;
    while off.saturating_add(entsize) <= end {
        if n == MAX_DYNAMIC_ENTRIES {
            anomalies.push(Anomaly::limiting(
                "elf-dynamic-invalid",
                format!("the dynamic section has more than {MAX_DYNAMIC_ENTRIES} entries; the rest were not read"),
            ));
            break;
        }
        let (Some(tag), Some(val)) = (r.word(off), r.word(off + entsize / 2)) else { break };
        n += 1;
        off += entsize;
        match tag {
            DT_NULL => break,
            DT_NEEDED => needed.push(val),
            DT_SONAME => soname = soname.or(Some(val)),
            DT_RPATH => rpath = rpath.or(Some(val)),
            DT_RUNPATH => runpath = runpath.or(Some(val)),
            DT_FLAGS => facts.flags |= val,
            DT_FLAGS_1 => facts.flags_1 |= val,
            DT_BIND_NOW => facts.has_bind_now = true,
            DT_STRTAB => strtab = strtab.or(Some(val)),
            DT_STRSZ => strsz = strsz.or(Some(val)),
            DT_SYMTAB => symtab = symtab.or(Some(val)),
            DT_HASH => hash = hash.or(Some(val)),
            DT_GNU_HASH => gnu_hash = gnu_hash.or(Some(val)),
            _ => {}
        }
    }
    facts.symtab = symtab.and_then(|v| vaddr_to_offset(phdrs, v));
    facts.hash = hash.and_then(|v| vaddr_to_offset(phdrs, v));
    facts.gnu_hash = gnu_hash.and_then(|v| vaddr_to_offset(phdrs, v));

    // The string table: DT_STRTAB through the load segments, else the one the SHT_DYNAMIC section links.
    let file_len = r.data.len() as u64;
    facts.strtab = strtab
        .and_then(|v| vaddr_to_offset(phdrs, v))
        .map(|o| (o, strsz.filter(|&sz| o.saturating_add(sz) <= file_len).unwrap_or(file_len.saturating_sub(o))))
        .or_else(|| {
            let link = sections.iter().find(|s| s.sh_type == SHT_DYNAMIC)?.sh_link as usize;
            sections.get(link).filter(|_| link != 0).map(|s| (s.sh_offset, s.sh_size))
        });
    let has_strings = !needed.is_empty() || soname.is_some() || rpath.is_some() || runpath.is_some();
    let Some((str_off, str_size)) = facts.strtab else {
        if has_strings {
            anomalies.push(Anomaly::limiting(
                "elf-dynamic-strtab-invalid",
                "the dynamic string table could not be located; library names and paths were not read",
            ));
        }
        return facts;
    };
    let mut unreadable = 0usize;
    let mut string = |idx: u64| {
        let s = r.string_in(str_off, str_size, idx);
        if s.is_none() {
            unreadable += 1;
        }
        s
    };
    if needed.len() > MAX_NEEDED {
        anomalies.push(Anomaly::limiting(
            "elf-too-many-needed",
            format!("{} DT_NEEDED entries; only the first {MAX_NEEDED} are reported", needed.len()),
        ));
        needed.truncate(MAX_NEEDED);
    }
    facts.needed = needed.into_iter().filter_map(&mut string).collect();
    facts.soname = soname.and_then(&mut string);
    facts.rpath = rpath.and_then(&mut string);
    facts.runpath = runpath.and_then(&mut string);
    if unreadable > 0 {
        anomalies.push(Anomaly::new(
            "elf-dynamic-string-invalid",
            format!("{unreadable} dynamic entries point outside the dynamic string table"),
        ));
    }
    facts
}

// -------------------------------------------------------------------------------------------- notes

/// The GNU build id, from the PT_NOTE segments (or the SHT_NOTE sections when there are none, as LIEF does).
fn build_id(r: &Reader<'_>, phdrs: &[ProgramHeader], sections: &[SectionHeader]) -> Option<String> {
    let from_segments: Vec<(u64, u64, u64)> =
        phdrs.iter().filter(|p| p.p_type == PT_NOTE).map(|p| (p.p_offset, p.p_filesz, p.p_align)).collect();
    let areas = if from_segments.is_empty() {
        sections.iter().filter(|s| s.sh_type == SHT_NOTE).map(|s| (s.sh_offset, s.sh_size, s.sh_addralign)).collect()
    } else {
        from_segments
    };
    let mut budget = MAX_NOTES;
    areas.into_iter().find_map(|(off, size, align)| find_build_id(r, off, size, align, &mut budget))
}

/// Walk the notes in `[off, off + size)` and return the first NT_GNU_BUILD_ID's descriptor, in hex.
fn find_build_id(r: &Reader<'_>, off: u64, size: u64, align: u64, budget: &mut usize) -> Option<String> {
    // Notes are 4-aligned, or 8-aligned in an 8-aligned segment (gABI; glibc's note reader does the same).
    let align = if align == 8 { 8 } else { 4 };
    let end = off.saturating_add(size).min(r.data.len() as u64);
    let mut pos = off;
    while *budget > 0 {
        *budget -= 1;
        if pos.saturating_add(12) > end {
            return None;
        }
        let namesz = u64::from(r.u32(pos)?);
        let descsz = u64::from(r.u32(pos + 4)?);
        let kind = r.u32(pos + 8)?;
        let name_off = pos + 12;
        let desc_off = align_up(name_off.checked_add(namesz)?, align)?;
        let next = align_up(desc_off.checked_add(descsz)?, align)?;
        if desc_off.saturating_add(descsz) > end {
            return None;
        }
        let name = r.bytes(name_off, namesz)?;
        if kind == NT_GNU_BUILD_ID && (name == b"GNU\0" || name == b"GNU") {
            let desc = r.bytes(desc_off, descsz.min(MAX_BUILD_ID as u64))?;
            return Some(crate::hex::encode(desc));
        }
        pos = next;
    }
    None
}

fn align_up(v: u64, align: u64) -> Option<u64> {
    Some(v.checked_add(align - 1)? & !(align - 1))
}

// ------------------------------------------------------------------------------------------ symbols

/// What the symbol names say about hardening.
#[derive(Debug, Default)]
struct SymbolFacts {
    canary: bool,
    fortified: Vec<String>,
}

/// Look through .dynsym and .symtab for the stack protector, and through the dynamic symbols for the
/// `__*_chk` FORTIFY_SOURCE functions (the oracle's definitions). Without a SHT_DYNSYM section, the dynamic
/// symbols are found through DT_SYMTAB, counted with DT_GNU_HASH or DT_HASH.
fn symbol_facts(
    r: &Reader<'_>,
    ctx: Ctx,
    sections: &[SectionHeader],
    dynamic: &DynamicFacts,
    anomalies: &mut Vec<Anomaly>,
) -> SymbolFacts {
    let mut scan =
        SymbolScan { r, ctx, budget: MAX_SYMBOLS, canary: false, fortified: BTreeSet::new(), problems: Vec::new() };
    let sym_size: u64 = if r.is_64 { 24 } else { 16 };
    // Whether a SHT_DYNSYM section could be read; if not, DT_SYMTAB is the way to the dynamic symbols.
    let mut read_dynsym = false;
    for s in sections.iter().filter(|s| s.sh_type == SHT_SYMTAB || s.sh_type == SHT_DYNSYM) {
        let is_dynsym = s.sh_type == SHT_DYNSYM;
        let Some(strtab) = sections.get(s.sh_link as usize).filter(|_| s.sh_link != 0) else {
            scan.problems.push(format!(
                "the symbol table at offset {:#x} links to no string table; its names were not read",
                s.sh_offset
            ));
            continue;
        };
        let read = scan.table(s.sh_offset, s.sh_size / sym_size, (strtab.sh_offset, strtab.sh_size), is_dynsym);
        read_dynsym |= is_dynsym && read;
    }
    if let (false, Some(off), Some(strtab)) = (read_dynsym, dynamic.symtab, dynamic.strtab) {
        let count = dynamic
            .gnu_hash
            .and_then(|h| gnu_hash_count(r, h))
            .or_else(|| dynamic.hash.and_then(|h| r.u32(h + 4).map(u64::from)));
        match count {
            Some(count) => {
                scan.table(off, count, strtab, true);
            }
            None => scan.problems.push(
                "the dynamic symbol table has no section and no hash table to count it; its names were not read"
                    .to_string(),
            ),
        }
    }
    // One anomaly however many tables are damaged (a crafted file can have thousands).
    if let Some(first) = scan.problems.first() {
        let more = scan.problems.len() - 1;
        let message =
            if more == 0 { first.clone() } else { format!("{first} (and {more} more symbol table problems)") };
        anomalies.push(Anomaly::limiting("elf-symbol-table-invalid", message));
    }
    if scan.fortified.len() == MAX_FORTIFIED {
        anomalies.push(Anomaly::new(
            "elf-too-many-fortified-functions",
            format!("more than {MAX_FORTIFIED} distinct `__*_chk` names; only the first {MAX_FORTIFIED} are listed"),
        ));
    }
    SymbolFacts { canary: scan.canary, fortified: scan.fortified.into_iter().collect() }
}

/// Symbol tables walked so far, with one budget of symbols for all of them.
struct SymbolScan<'r, 'a> {
    r: &'r Reader<'a>,
    ctx: Ctx,
    budget: usize,
    canary: bool,
    /// Sorted and deduplicated as found, at most [`MAX_FORTIFIED`].
    fortified: BTreeSet<String>,
    /// What could not be read, one line per table.
    problems: Vec<String>,
}

impl SymbolScan<'_, '_> {
    /// Look at `declared` symbols from `off` (bounded by the file and the remaining budget), with names in
    /// the string table `(offset, size)`. False when no symbol could be read.
    fn table(&mut self, off: u64, declared: u64, strtab: (u64, u64), is_dynamic: bool) -> bool {
        let r = self.r;
        let sym_size = if r.is_64 { 24 } else { 16 };
        let count = clamp_count(declared, r.fits(off, sym_size), self.budget);
        if (count as u64) < declared {
            self.problems.push(format!("a symbol table at offset {off:#x} declares {declared} symbols but only {count} were read (cut by the end of the file or over the limit of {MAX_SYMBOLS} symbols in all)"));
        }
        if count == 0 {
            return false;
        }
        self.budget -= count;
        let table = match Symtab::parse(r.data, off as usize, count, self.ctx) {
            Ok(t) => t,
            Err(err) => {
                self.problems.push(format!("the symbol table at offset {off:#x} could not be read ({err})"));
                return false;
            }
        };
        for sym in table.iter() {
            let Some(name) = symbol_name(r, strtab, sym.st_name as u64) else { continue };
            if CANARY_SYMBOLS.contains(&name) {
                self.canary = true;
            }
            if is_dynamic && self.fortified.len() < MAX_FORTIFIED && is_fortify_name(name) {
                self.fortified.insert(String::from_utf8_lossy(name).into_owned());
            }
        }
        true
    }
}

/// The symbol name at `idx` in the string table `(offset, size)`, or `None` when it is outside the table
/// or longer than any name we look for.
fn symbol_name<'a>(r: &Reader<'a>, (str_off, str_size): (u64, u64), idx: u64) -> Option<&'a [u8]> {
    if idx >= str_size {
        return None;
    }
    let bytes = r.clipped(str_off.checked_add(idx)?, (str_size - idx).min(MAX_SYMBOL_NAME as u64 + 1));
    let end = bytes.iter().position(|&b| b == 0)?;
    bytes.get(..end)
}

/// `^__\w+_chk$`, the oracle's FORTIFY_SOURCE pattern (`__printf_chk`, `__memcpy_chk`, …).
fn is_fortify_name(name: &[u8]) -> bool {
    name.len() > b"___chk".len()
        && name.starts_with(b"__")
        && name.ends_with(b"_chk")
        && name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The number of dynamic symbols, from a DT_GNU_HASH table: one past the end of the last hash chain.
fn gnu_hash_count(r: &Reader<'_>, off: u64) -> Option<u64> {
    let nbuckets = u64::from(r.u32(off)?);
    let symoffset = u64::from(r.u32(off + 4)?);
    let bloom_words = u64::from(r.u32(off + 8)?);
    let word = if r.is_64 { 8 } else { 4 };
    let buckets = off.checked_add(16)?.checked_add(bloom_words.checked_mul(word)?)?;
    // The bucket array must be in the file before we walk it.
    r.bytes(buckets, nbuckets.checked_mul(4)?)?;
    let mut last = 0u64;
    for i in 0..nbuckets {
        last = last.max(u64::from(r.u32(buckets + i * 4)?));
    }
    if last < symoffset {
        return Some(symoffset);
    }
    let mut chain = (buckets + nbuckets * 4).checked_add((last - symoffset).checked_mul(4)?)?;
    // Each step reads 4 more bytes of the file, so the walk ends at the end of the file at the latest.
    loop {
        let h = r.u32(chain)?;
        last += 1;
        chain += 4;
        if h & 1 != 0 {
            return Some(last);
        }
    }
}

// ------------------------------------------------------------------------------------------- reader

/// Bounds-checked reads in the file's byte order.
#[derive(Clone, Copy)]
struct Reader<'a> {
    data: &'a [u8],
    le: bool,
    is_64: bool,
}

impl<'a> Reader<'a> {
    /// Exactly `len` bytes at `off`, or `None` when they are not all in the file.
    fn bytes(&self, off: u64, len: u64) -> Option<&'a [u8]> {
        let start = usize::try_from(off).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.data.get(start..end)
    }

    /// The part of `[off, off + len)` that lies in the file (possibly empty).
    fn clipped(&self, off: u64, len: u64) -> &'a [u8] {
        let n = self.data.len() as u64;
        if off >= n {
            return &[];
        }
        let end = off.saturating_add(len).min(n);
        self.data.get(off as usize..end as usize).unwrap_or_default()
    }

    /// How many `entsize`-byte entries fit in the file from `off`.
    fn fits(&self, off: u64, entsize: usize) -> usize {
        let n = self.data.len() as u64;
        if off >= n || entsize == 0 { 0 } else { ((n - off) / entsize as u64) as usize }
    }

    fn array<const N: usize>(&self, off: u64) -> Option<[u8; N]> {
        self.bytes(off, N as u64)?.try_into().ok()
    }

    fn u16(&self, off: u64) -> Option<u16> {
        let b = self.array(off)?;
        Some(if self.le { u16::from_le_bytes(b) } else { u16::from_be_bytes(b) })
    }

    fn u32(&self, off: u64) -> Option<u32> {
        let b = self.array(off)?;
        Some(if self.le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    }

    fn u64(&self, off: u64) -> Option<u64> {
        let b = self.array(off)?;
        Some(if self.le { u64::from_le_bytes(b) } else { u64::from_be_bytes(b) })
    }

    /// An address-sized word (4 bytes in ELF32, 8 in ELF64).
    fn word(&self, off: u64) -> Option<u64> {
        if self.is_64 { self.u64(off) } else { self.u32(off).map(u64::from) }
    }

    /// The NUL-terminated string at `idx` in the string table `[table, table + size)` (clipped to the
    /// file), lossily decoded and cut at [`MAX_STRING`] bytes; `None` when `idx` is outside the table.
    fn string_in(&self, table: u64, size: u64, idx: u64) -> Option<String> {
        if idx >= size {
            return None;
        }
        let bytes = self.clipped(table.checked_add(idx)?, (size - idx).min(MAX_STRING as u64));
        if bytes.is_empty() {
            return None;
        }
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        Some(String::from_utf8_lossy(bytes.get(..end).unwrap_or_default()).into_owned())
    }
}

// -------------------------------------------------------------------------------------------- names

fn class_name(class: u8) -> String {
    match class {
        ELFCLASS32 => "elf32".to_string(),
        ELFCLASS64 => "elf64".to_string(),
        n => format!("unknown-{n}"),
    }
}

fn endian_name(data: u8) -> String {
    match data {
        ELFDATA2LSB => "little".to_string(),
        ELFDATA2MSB => "big".to_string(),
        n => format!("unknown-{n}"),
    }
}

fn type_name(t: u16) -> String {
    match t {
        header::ET_REL => "rel".to_string(),
        header::ET_EXEC => "exec".to_string(),
        header::ET_DYN => "dyn".to_string(),
        header::ET_CORE => "core".to_string(),
        n => format!("unknown-{n}"),
    }
}

fn os_abi_name(abi: u8) -> String {
    let name = match abi {
        0 => "sysv",
        1 => "hpux",
        2 => "netbsd",
        3 => "linux",
        4 => "hurd",
        6 => "solaris",
        7 => "aix",
        8 => "irix",
        9 => "freebsd",
        10 => "tru64",
        11 => "modesto",
        12 => "openbsd",
        13 => "openvms",
        14 => "nsk",
        15 => "aros",
        16 => "fenixos",
        17 => "cloudabi",
        18 => "openvos",
        64 => "arm-aeabi",
        97 => "arm",
        255 => "standalone",
        n => return format!("unknown-{n}"),
    };
    name.to_string()
}

/// Lower-case machine names (LIEF's ARCH names, lower-cased, with `i386` for EM_386).
fn machine_name(m: u16) -> String {
    let name = match m {
        0 => "none",
        1 => "m32",
        2 => "sparc",
        3 => "i386",
        4 => "m68k",
        5 => "m88k",
        6 => "iamcu",
        7 => "i860",
        8 => "mips",
        9 => "s370",
        10 => "mips-rs3-le",
        15 => "parisc",
        18 => "sparc32plus",
        19 => "i960",
        20 => "ppc",
        21 => "ppc64",
        22 => "s390",
        23 => "spu",
        40 => "arm",
        41 => "alpha",
        42 => "sh",
        43 => "sparcv9",
        44 => "tricore",
        45 => "arc",
        46 => "h8-300",
        50 => "ia64",
        51 => "mips-x",
        52 => "coldfire",
        53 => "m68hc12",
        62 => "x86_64",
        75 => "vax",
        83 => "avr",
        87 => "v850",
        88 => "m32r",
        92 => "openrisc",
        93 => "arc-compact",
        94 => "xtensa",
        105 => "msp430",
        106 => "blackfin",
        113 => "nios2",
        140 => "tic6x",
        164 => "hexagon",
        183 => "aarch64",
        188 => "tilepro",
        189 => "microblaze",
        190 => "cuda",
        191 => "tilegx",
        195 => "arc-compact2",
        220 => "z80",
        224 => "amdgpu",
        243 => "riscv",
        247 => "bpf",
        252 => "csky",
        258 => "loongarch",
        0x9026 => "alpha",
        n => return format!("unknown-{n}"),
    };
    name.to_string()
}

/// sh_type, kebab-case; processor-specific types depend on the machine. Unknown types are `unknown-0x…`.
fn section_type_name(t: u32, machine: u16) -> String {
    let name = match (t, machine) {
        (0, _) => "null",
        (1, _) => "progbits",
        (2, _) => "symtab",
        (3, _) => "strtab",
        (4, _) => "rela",
        (5, _) => "hash",
        (6, _) => "dynamic",
        (7, _) => "note",
        (8, _) => "nobits",
        (9, _) => "rel",
        (10, _) => "shlib",
        (11, _) => "dynsym",
        (14, _) => "init-array",
        (15, _) => "fini-array",
        (16, _) => "preinit-array",
        (17, _) => "group",
        (18, _) => "symtab-shndx",
        (19, _) => "relr",
        (0x6000_0001, _) => "android-rel",
        (0x6000_0002, _) => "android-rela",
        (0x6fff_4c00, _) => "llvm-odrtab",
        (0x6fff_4c01, _) => "llvm-linker-options",
        (0x6fff_4c03, _) => "llvm-addrsig",
        (0x6fff_4c04, _) => "llvm-dependent-libraries",
        (0x6fff_fff5, _) => "gnu-attributes",
        (0x6fff_fff6, _) => "gnu-hash",
        (0x6fff_fff7, _) => "gnu-liblist",
        (0x6fff_fff8, _) => "checksum",
        (0x6fff_fffd, _) => "gnu-verdef",
        (0x6fff_fffe, _) => "gnu-verneed",
        (0x6fff_ffff, _) => "gnu-versym",
        (0x7000_0001, header::EM_ARM) => "arm-exidx",
        (0x7000_0002, header::EM_ARM) => "arm-preemptmap",
        (0x7000_0003, header::EM_ARM) => "arm-attributes",
        (0x7000_0001, header::EM_X86_64) => "x86-64-unwind",
        (0x7000_0003, header::EM_RISCV) => "riscv-attributes",
        (0x7000_0003, header::EM_AARCH64) => "aarch64-attributes",
        (0x7000_0006, header::EM_MIPS) => "mips-reginfo",
        (0x7000_000d, header::EM_MIPS) => "mips-options",
        (0x7000_002a, header::EM_MIPS) => "mips-abiflags",
        (n, _) => return format!("unknown-{n:#x}"),
    };
    name.to_string()
}

/// sh_flags decoded; bits without a name are kept as one `unknown-0x…` entry.
fn section_flags(flags: u64) -> Vec<String> {
    const NAMES: [(u64, &str); 13] = [
        (0x1, "write"),
        (0x2, "alloc"),
        (0x4, "exec"),
        (0x10, "merge"),
        (0x20, "strings"),
        (0x40, "info-link"),
        (0x80, "link-order"),
        (0x100, "os-nonconforming"),
        (0x200, "group"),
        (0x400, "tls"),
        (0x800, "compressed"),
        (0x20_0000, "gnu-retain"),
        (0x8000_0000, "exclude"),
    ];
    let mut out: Vec<String> = NAMES.iter().filter(|(bit, _)| flags & bit != 0).map(|(_, n)| n.to_string()).collect();
    let rest = NAMES.iter().fold(flags, |acc, (bit, _)| acc & !bit);
    if rest != 0 {
        out.push(format!("unknown-{rest:#x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DT_FLAGS_1_TAG: u64 = DT_FLAGS_1;

    /// What to put in a test image.
    #[derive(Clone)]
    struct Spec {
        is_64: bool,
        le: bool,
        e_type: u16,
        machine: u16,
        interp: Option<&'static str>,
        /// PT_GNU_STACK flags, or no PT_GNU_STACK.
        stack: Option<u32>,
        relro: bool,
        /// A PT_DYNAMIC segment (with DT_STRTAB/DT_SYMTAB/DT_HASH) is emitted.
        dynamic: bool,
        needed: Vec<&'static str>,
        soname: Option<&'static str>,
        runpath: Option<&'static str>,
        extra_dyn: Vec<(u64, u64)>,
        dynsyms: Vec<&'static str>,
        symtab: Option<Vec<&'static str>>,
        build_id: Option<Vec<u8>>,
        sections: bool,
    }

    impl Default for Spec {
        fn default() -> Self {
            Spec {
                is_64: true,
                le: true,
                e_type: header::ET_DYN,
                machine: header::EM_X86_64,
                interp: Some("/lib64/ld-linux-x86-64.so.2"),
                stack: Some(goblin::elf::program_header::PF_R | goblin::elf::program_header::PF_W),
                relro: true,
                dynamic: true,
                needed: vec!["libc.so.6"],
                soname: None,
                runpath: None,
                extra_dyn: Vec::new(),
                dynsyms: vec!["puts", "__stack_chk_fail", "__printf_chk"],
                symtab: None,
                build_id: Some((1..=20).collect()),
                sections: true,
            }
        }
    }

    /// Offsets of header fields and tables in a built image.
    struct Built {
        data: Vec<u8>,
        phnum_at: usize,
        shnum_at: usize,
        shoff_at: usize,
        shoff: usize,
        dynsym_section: usize,
    }

    /// A byte buffer that writes in the image's class and byte order.
    struct Buf {
        is_64: bool,
        le: bool,
        b: Vec<u8>,
    }

    impl Buf {
        fn put(&mut self, off: usize, v: u64, size: usize) {
            if self.b.len() < off + size {
                self.b.resize(off + size, 0);
            }
            let bytes = if self.le { v.to_le_bytes() } else { v.to_be_bytes() };
            let src = if self.le { &bytes[..size] } else { &bytes[8 - size..] };
            self.b[off..off + size].copy_from_slice(src);
        }
        fn word(&mut self, off: usize, v: u64) {
            self.put(off, v, if self.is_64 { 8 } else { 4 });
        }
        fn append(&mut self, bytes: &[u8], align: usize) -> usize {
            while self.b.len() % align != 0 {
                self.b.push(0);
            }
            let at = self.b.len();
            self.b.extend_from_slice(bytes);
            at
        }
        fn reserve(&mut self, len: usize, align: usize) -> usize {
            self.append(&vec![0; len], align)
        }
    }

    /// A string table: the index of each string added.
    fn strtab(names: &[&str]) -> (Vec<u8>, Vec<u64>) {
        let mut t = vec![0u8];
        let mut idx = Vec::new();
        for n in names {
            idx.push(t.len() as u64);
            t.extend_from_slice(n.as_bytes());
            t.push(0);
        }
        (t, idx)
    }

    /// Build an ELF image: header, program headers, the data they point at, section headers last. One PT_LOAD
    /// maps the whole file at virtual address 0, so file offsets and addresses coincide.
    fn build(spec: &Spec) -> Built {
        let w = if spec.is_64 { 8 } else { 4 };
        let (ehsize, phentsize, shentsize, symsize, dynsize) =
            if spec.is_64 { (64, 56, 64, 24, 16) } else { (52, 32, 40, 16, 8) };
        let mut phdrs: Vec<(u32, u32, usize, usize, usize)> = Vec::new(); // type, flags, off, size, align
        let mut b = Buf { is_64: spec.is_64, le: spec.le, b: vec![0; ehsize] };
        let nph = 1
            + usize::from(spec.interp.is_some())
            + usize::from(spec.stack.is_some())
            + usize::from(spec.relro)
            + usize::from(spec.dynamic)
            + usize::from(spec.build_id.is_some());
        let phoff = b.reserve(nph * phentsize, 8);

        let mut sections: Vec<(&str, u32, u64, usize, usize, u32)> = Vec::new(); // name, type, flags, off, size, link
        sections.push(("", 0, 0, 0, 0, 0));
        if let Some(interp) = spec.interp {
            let mut s = interp.as_bytes().to_vec();
            s.push(0);
            let at = b.append(&s, 1);
            phdrs.push((PT_INTERP, 4, at, s.len(), 1));
            sections.push((".interp", 1, 2, at, s.len(), 0));
        }
        if let Some(id) = &spec.build_id {
            let mut note = Buf { is_64: spec.is_64, le: spec.le, b: Vec::new() };
            note.put(0, 4, 4);
            note.put(4, id.len() as u64, 4);
            note.put(8, u64::from(NT_GNU_BUILD_ID), 4);
            note.b.extend_from_slice(b"GNU\0");
            note.b.extend_from_slice(id);
            let at = b.append(&note.b, 4);
            phdrs.push((PT_NOTE, 4, at, note.b.len(), 4));
            sections.push((".note.gnu.build-id", 7, 2, at, note.b.len(), 0));
        }
        // Dynamic strings and symbols.
        let mut dyn_strings: Vec<&str> = spec.needed.clone();
        dyn_strings.extend(spec.soname);
        dyn_strings.extend(spec.runpath);
        dyn_strings.extend(spec.dynsyms.iter().copied());
        let (dynstr, idx) = strtab(&dyn_strings);
        let dynstr_at = b.append(&dynstr, 1);
        let dynstr_section = sections.len();
        sections.push((".dynstr", 3, 2, dynstr_at, dynstr.len(), 0));
        let sym_names = &idx[idx.len() - spec.dynsyms.len()..];
        let dynsym_at = b.reserve((sym_names.len() + 1) * symsize, 8);
        for (i, &name) in sym_names.iter().enumerate() {
            let at = dynsym_at + (i + 1) * symsize;
            b.put(at, name, 4);
            b.put(at + if spec.is_64 { 4 } else { 12 }, 0x12, 1); // STB_GLOBAL, STT_FUNC
        }
        let dynsym_section = sections.len();
        sections.push((".dynsym", SHT_DYNSYM, 2, dynsym_at, (sym_names.len() + 1) * symsize, dynstr_section as u32));
        // A SysV hash table, only for its nchain (the symbol count).
        let hash_at = b.reserve(8 + 4 + 4 * (sym_names.len() + 1), 4);
        b.put(hash_at, 1, 4);
        b.put(hash_at + 4, (sym_names.len() + 1) as u64, 4);
        if spec.dynamic {
            let mut entries: Vec<(u64, u64)> = Vec::new();
            for &name in &idx[..spec.needed.len()] {
                entries.push((DT_NEEDED, name));
            }
            let mut next = spec.needed.len();
            if spec.soname.is_some() {
                entries.push((DT_SONAME, idx[next]));
                next += 1;
            }
            if spec.runpath.is_some() {
                entries.push((DT_RUNPATH, idx[next]));
            }
            entries.push((DT_STRTAB, dynstr_at as u64));
            entries.push((DT_STRSZ, dynstr.len() as u64));
            entries.push((DT_SYMTAB, dynsym_at as u64));
            entries.push((DT_HASH, hash_at as u64));
            entries.extend(spec.extra_dyn.iter().copied());
            entries.push((DT_NULL, 0));
            let at = b.reserve(entries.len() * dynsize, 8);
            for (i, (tag, val)) in entries.iter().enumerate() {
                b.word(at + i * dynsize, *tag);
                b.word(at + i * dynsize + w, *val);
            }
            phdrs.push((PT_DYNAMIC, 6, at, entries.len() * dynsize, 8));
            sections.push((".dynamic", SHT_DYNAMIC, 3, at, entries.len() * dynsize, dynstr_section as u32));
            if spec.relro {
                phdrs.push((PT_GNU_RELRO, 4, at, entries.len() * dynsize, 1));
            }
        } else if spec.relro {
            phdrs.push((PT_GNU_RELRO, 4, dynsym_at, symsize, 1));
        }
        if let Some(flags) = spec.stack {
            phdrs.push((PT_GNU_STACK, flags, 0, 0, 16));
        }
        if let Some(names) = &spec.symtab {
            let (tab, idx) = strtab(names);
            let str_at = b.append(&tab, 1);
            let str_section = sections.len();
            sections.push((".strtab", 3, 0, str_at, tab.len(), 0));
            let at = b.reserve((names.len() + 1) * symsize, 8);
            for (i, &name) in idx.iter().enumerate() {
                b.put(at + (i + 1) * symsize, name, 4);
            }
            sections.push((".symtab", SHT_SYMTAB, 0, at, (names.len() + 1) * symsize, str_section as u32));
        }
        let bss_at = b.b.len();
        sections.push((".bss", SHT_NOBITS, 3, bss_at, 4096, 0));
        let names: Vec<&str> = sections.iter().map(|s| s.0).skip(1).chain([".shstrtab"]).collect();
        let (shstr, shidx) = strtab(&names);
        let shstr_at = b.append(&shstr, 1);
        let shstrndx = sections.len();
        sections.push((".shstrtab", 3, 0, shstr_at, shstr.len(), 0));
        let end = b.b.len();
        phdrs.insert(0, (PT_LOAD, 5, 0, end, 0x1000));
        for (i, &(t, flags, off, size, align)) in phdrs.iter().enumerate() {
            let at = phoff + i * phentsize;
            b.put(at, u64::from(t), 4);
            if spec.is_64 {
                b.put(at + 4, u64::from(flags), 4);
                for (k, v) in [off, off, off, size, size, align].iter().enumerate() {
                    b.put(at + 8 + 8 * k, *v as u64, 8);
                }
            } else {
                for (k, v) in [off, off, off, size, size].iter().enumerate() {
                    b.put(at + 4 + 4 * k, *v as u64, 4);
                }
                b.put(at + 24, u64::from(flags), 4);
                b.put(at + 28, align as u64, 4);
            }
        }
        let shoff = if spec.sections { b.reserve(sections.len() * shentsize, 8) } else { 0 };
        if spec.sections {
            for (i, &(_, t, flags, off, size, link)) in sections.iter().enumerate() {
                let at = shoff + i * shentsize;
                let name = if i == 0 { 0 } else { shidx[i - 1] };
                b.put(at, name, 4);
                b.put(at + 4, u64::from(t), 4);
                b.word(at + 8, flags);
                b.word(at + 8 + 2 * w, off as u64);
                b.word(at + 8 + 3 * w, size as u64);
                b.put(at + 8 + 4 * w, u64::from(link), 4);
            }
        }
        // The ELF header.
        b.b[..4].copy_from_slice(b"\x7fELF");
        b.b[4] = if spec.is_64 { 2 } else { 1 };
        b.b[5] = if spec.le { 1 } else { 2 };
        b.b[6] = 1;
        b.put(16, u64::from(spec.e_type), 2);
        b.put(18, u64::from(spec.machine), 2);
        b.put(20, 1, 4);
        b.word(24, 0x1040);
        let (phoff_at, shoff_at, rest) = if spec.is_64 { (32, 40, 52) } else { (28, 32, 40) };
        b.word(phoff_at, phoff as u64);
        b.word(shoff_at, shoff as u64);
        b.put(rest, ehsize as u64, 2);
        b.put(rest + 2, phentsize as u64, 2);
        b.put(rest + 4, phdrs.len() as u64, 2);
        b.put(rest + 6, shentsize as u64, 2);
        b.put(rest + 8, if spec.sections { sections.len() as u64 } else { 0 }, 2);
        b.put(rest + 10, if spec.sections { shstrndx as u64 } else { 0 }, 2);
        Built { data: b.b, phnum_at: rest + 4, shnum_at: rest + 8, shoff_at, shoff, dynsym_section }
    }

    fn run(data: &[u8]) -> (ElfInfo, Vec<Anomaly>) {
        let mut anomalies = Vec::new();
        let info = analyse(data, &mut anomalies).expect("an ELF image yields facts");
        (info, anomalies)
    }

    fn ids(anomalies: &[Anomaly]) -> Vec<&str> {
        anomalies.iter().map(|a| a.id.as_str()).collect()
    }

    fn has_limit(anomalies: &[Anomaly], id: &str) -> bool {
        anomalies.iter().any(|a| a.id == id && a.limits_analysis)
    }

    #[test]
    fn hardened_pie_executable() {
        let spec = Spec {
            needed: vec!["libc.so.6", "libm.so.6"],
            runpath: Some("/opt/lib:$ORIGIN"),
            extra_dyn: vec![(DT_FLAGS, DF_BIND_NOW)],
            dynsyms: vec!["puts", "__stack_chk_fail", "__printf_chk", "__memcpy_chk", "__printf_chk", "my_chk"],
            ..Spec::default()
        };
        let built = build(&spec);
        let (info, anomalies) = run(&built.data);
        assert_eq!(anomalies, vec![]);
        assert_eq!(info.class, "elf64");
        assert_eq!(info.endianness, "little");
        assert_eq!(info.machine, "x86_64");
        assert_eq!(info.kind, "dyn");
        assert_eq!(info.os_abi, "sysv");
        assert_eq!(info.entry, 0x1040);
        assert!(info.pie);
        assert!(info.nx);
        assert_eq!(info.relro, "full");
        assert!(info.canary);
        assert!(info.fortify);
        assert_eq!(info.fortified_functions, vec!["__memcpy_chk", "__printf_chk"]);
        assert_eq!(info.needed, vec!["libc.so.6", "libm.so.6"]);
        assert_eq!(info.soname, None);
        assert_eq!(info.rpath, None);
        assert_eq!(info.runpath.as_deref(), Some("/opt/lib:$ORIGIN"));
        assert_eq!(info.interpreter.as_deref(), Some("/lib64/ld-linux-x86-64.so.2"));
        assert_eq!(info.build_id.as_deref(), Some("0102030405060708090a0b0c0d0e0f1011121314"));
        assert!(!info.is_static);
        assert!(info.stripped);

        let names: Vec<&str> = info.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["", ".interp", ".note.gnu.build-id", ".dynstr", ".dynsym", ".dynamic", ".bss", ".shstrtab"]);
        let kinds: Vec<&str> = info.sections.iter().map(|s| s.kind.as_str()).collect();
        assert_eq!(kinds, ["null", "progbits", "note", "strtab", "dynsym", "dynamic", "nobits", "strtab"]);
        let interp = &info.sections[1];
        assert_eq!(interp.flags, vec!["alloc"]);
        assert_eq!(info.sections[5].flags, vec!["write", "alloc"]);
        let bytes = &built.data[interp.offset as usize..(interp.offset + interp.size) as usize];
        assert_eq!(interp.entropy, crate::entropy::shannon(bytes));
        assert!(interp.entropy > 3.0);
        // NOBITS has no bytes in the file, even though its offset points at some.
        assert_eq!(info.sections[6].size, 4096);
        assert_eq!(info.sections[6].entropy, 0.0);
    }

    #[test]
    fn shared_object_is_pie_only_with_df_1_pie() {
        let spec = Spec { interp: None, ..Spec::default() };
        let (info, _) = run(&build(&spec).data);
        assert!(!info.pie, "a shared object without PT_INTERP is not a PIE");
        assert!(!info.is_static);
        assert_eq!(info.interpreter, None);
        let spec = Spec { interp: None, extra_dyn: vec![(DT_FLAGS_1_TAG, DF_1_PIE)], ..Spec::default() };
        assert!(run(&build(&spec).data).0.pie);
        // ET_EXEC with an interpreter is a classic, non-PIE executable.
        let spec = Spec { e_type: header::ET_EXEC, ..Spec::default() };
        let (info, _) = run(&build(&spec).data);
        assert!(!info.pie);
        assert_eq!(info.kind, "exec");
    }

    #[test]
    fn relro_and_nx_follow_the_segments() {
        let (info, _) = run(&build(&Spec::default()).data);
        assert_eq!(info.relro, "partial");
        assert!(info.nx);
        for bind_now in [(DT_BIND_NOW, 0), (DT_FLAGS_1_TAG, DF_1_NOW), (DT_FLAGS, DF_BIND_NOW)] {
            let spec = Spec { extra_dyn: vec![bind_now], ..Spec::default() };
            assert_eq!(run(&build(&spec).data).0.relro, "full", "{bind_now:?}");
        }
        let spec = Spec { relro: false, extra_dyn: vec![(DT_BIND_NOW, 0)], ..Spec::default() };
        assert_eq!(run(&build(&spec).data).0.relro, "none");
        let spec = Spec { stack: Some(7), ..Spec::default() };
        assert!(!run(&build(&spec).data).0.nx, "an executable stack");
        let spec = Spec { stack: None, ..Spec::default() };
        assert!(!run(&build(&spec).data).0.nx, "no PT_GNU_STACK");
    }

    #[test]
    fn static_binary_with_symtab() {
        let spec = Spec {
            e_type: header::ET_EXEC,
            interp: None,
            dynamic: false,
            needed: vec![],
            dynsyms: vec![],
            symtab: Some(vec!["main", "__stack_chk_guard", "__sprintf_chk"]),
            ..Spec::default()
        };
        let (info, anomalies) = run(&build(&spec).data);
        assert_eq!(anomalies, vec![]);
        assert!(info.is_static);
        assert!(!info.stripped);
        assert!(info.canary, "__stack_chk_guard in .symtab");
        // FORTIFY is read from the dynamic symbols only, as the oracle does.
        assert!(!info.fortify);
        assert!(info.needed.is_empty());
        assert_eq!(info.relro, "partial");
    }

    #[test]
    fn no_canary_without_the_symbols() {
        let spec = Spec { dynsyms: vec!["puts", "__stack_chk_failx", "stack_chk_fail"], ..Spec::default() };
        let (info, _) = run(&build(&spec).data);
        assert!(!info.canary);
        assert!(!info.fortify);
    }

    #[test]
    fn big_endian_elf32() {
        let spec = Spec {
            is_64: false,
            le: false,
            machine: header::EM_PPC,
            interp: Some("/lib/ld.so.1"),
            needed: vec!["libc.so.6", "libz.so.1"],
            soname: Some("libfoo.so.1"),
            extra_dyn: vec![(DT_FLAGS_1_TAG, DF_1_NOW)],
            ..Spec::default()
        };
        let (info, anomalies) = run(&build(&spec).data);
        assert_eq!(anomalies, vec![]);
        assert_eq!(info.class, "elf32");
        assert_eq!(info.endianness, "big");
        assert_eq!(info.machine, "ppc");
        assert_eq!(info.entry, 0x1040);
        assert_eq!(info.needed, vec!["libc.so.6", "libz.so.1"]);
        assert_eq!(info.soname.as_deref(), Some("libfoo.so.1"));
        assert_eq!(info.interpreter.as_deref(), Some("/lib/ld.so.1"));
        assert_eq!(info.relro, "full");
        assert!(info.pie && info.nx && info.canary && info.fortify);
        assert_eq!(info.build_id.as_deref(), Some("0102030405060708090a0b0c0d0e0f1011121314"));
        assert_eq!(info.sections.len(), 8);
        assert_eq!(info.sections[4].name, ".dynsym");
    }

    #[test]
    fn truncated_header_reports_the_ident() {
        let data = build(&Spec::default()).data;
        let (info, anomalies) = run(&data[..40]);
        assert_eq!(info.machine, "x86_64");
        assert_eq!(info.kind, "dyn");
        assert_eq!(info.class, "elf64");
        assert_eq!(info.endianness, "little");
        assert_eq!(info.entry, 0x1040);
        assert!(!info.pie && !info.nx && !info.canary && !info.fortify);
        assert_eq!(info.relro, "none");
        assert!(info.needed.is_empty() && info.sections.is_empty());
        assert_eq!(info.interpreter, None);
        assert!(has_limit(&anomalies, "elf-header-truncated"));

        // Cut inside e_ident: nothing beyond the class and byte order.
        let (info, anomalies) = run(b"\x7fELF\x02\x01");
        assert_eq!(info.class, "elf64");
        assert_eq!(info.machine, "unknown");
        assert!(has_limit(&anomalies, "elf-header-truncated"));
        assert!(analyse(b"MZ\x90\x00", &mut Vec::new()).is_none());
    }

    #[test]
    fn invalid_class_is_an_anomaly() {
        let mut data = build(&Spec::default()).data;
        data[4] = 9;
        let (info, anomalies) = run(&data);
        assert_eq!(info.class, "unknown-9");
        assert_eq!(info.machine, "x86_64");
        assert!(has_limit(&anomalies, "elf-header-invalid"));
    }

    #[test]
    fn absurd_program_header_count() {
        let mut built = build(&Spec::default());
        built.data[built.phnum_at..built.phnum_at + 2].copy_from_slice(&0xfffeu16.to_le_bytes());
        let (info, anomalies) = run(&built.data);
        assert!(has_limit(&anomalies, "elf-program-headers-invalid"), "{:?}", ids(&anomalies));
        // The real headers come first and are still read.
        assert_eq!(info.interpreter.as_deref(), Some("/lib64/ld-linux-x86-64.so.2"));
        assert_eq!(info.needed, vec!["libc.so.6"]);
    }

    #[test]
    fn pn_xnum_takes_the_count_from_section_zero() {
        let mut built = build(&Spec::default());
        let real = u16::from_le_bytes([built.data[built.phnum_at], built.data[built.phnum_at + 1]]);
        built.data[built.phnum_at..built.phnum_at + 2].copy_from_slice(&PN_XNUM.to_le_bytes());
        // sh_info of section 0 (offset 44 in an ELF64 section header).
        built.data[built.shoff + 44..built.shoff + 48].copy_from_slice(&u32::from(real).to_le_bytes());
        let (info, anomalies) = run(&built.data);
        assert_eq!(anomalies, vec![]);
        assert!(info.pie && info.nx);
        assert_eq!(info.relro, "partial");
    }

    #[test]
    fn absurd_section_counts() {
        let mut built = build(&Spec::default());
        built.data[built.shnum_at..built.shnum_at + 2].copy_from_slice(&0xff00u16.to_le_bytes());
        let (info, anomalies) = run(&built.data);
        assert!(has_limit(&anomalies, "elf-section-headers-invalid"), "{:?}", ids(&anomalies));
        assert!(info.sections.len() < 0xff00);
        assert!(info.sections.len() >= 8, "the real sections are still read");
        assert_eq!(info.needed, vec!["libc.so.6"]);

        // e_shnum 0: the count is section 0's sh_size (offset 32 in ELF64), here absurd.
        let mut built = build(&Spec::default());
        built.data[built.shnum_at..built.shnum_at + 2].copy_from_slice(&0u16.to_le_bytes());
        built.data[built.shoff + 32..built.shoff + 40].copy_from_slice(&u64::MAX.to_le_bytes());
        let (info, anomalies) = run(&built.data);
        assert!(has_limit(&anomalies, "elf-section-headers-invalid"));
        assert!(info.sections.len() < 64);
    }

    #[test]
    fn section_table_outside_the_file_falls_back_to_the_dynamic_segment() {
        let mut built = build(&Spec::default());
        let at = built.shoff_at;
        built.data[at..at + 8].copy_from_slice(&0x7fff_ffff_0000u64.to_le_bytes());
        let (info, anomalies) = run(&built.data);
        assert!(has_limit(&anomalies, "elf-section-headers-invalid"));
        assert!(info.sections.is_empty());
        assert!(info.stripped);
        // Needed libraries come from DT_STRTAB, the dynamic symbols from DT_SYMTAB counted by DT_HASH.
        assert_eq!(info.needed, vec!["libc.so.6"]);
        assert!(info.canary);
        assert_eq!(info.fortified_functions, vec!["__printf_chk"]);
        assert!(info.build_id.is_some());
    }

    #[test]
    fn dynamic_strings_outside_the_table() {
        let spec = Spec { extra_dyn: vec![(DT_NEEDED, 0xffff_ff00)], ..Spec::default() };
        let (info, anomalies) = run(&build(&spec).data);
        assert_eq!(info.needed, vec!["libc.so.6"]);
        assert!(ids(&anomalies).contains(&"elf-dynamic-string-invalid"));
    }

    #[test]
    fn oversized_symbol_table_is_clamped() {
        let mut built = build(&Spec::default());
        // sh_size of .dynsym (offset 32 in an ELF64 section header).
        let at = built.shoff + built.dynsym_section * 64 + 32;
        built.data[at..at + 8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
        let (info, anomalies) = run(&built.data);
        assert!(has_limit(&anomalies, "elf-symbol-table-invalid"));
        assert!(info.canary, "the symbols that are there are still read");
    }

    #[test]
    fn damaged_symbol_tables_make_one_anomaly() {
        let spec = Spec { symtab: Some(vec!["__stack_chk_fail"]), ..Spec::default() };
        let mut built = build(&spec);
        // sh_link (offset 40 in an ELF64 section header) of .dynsym and of .symtab (three sections later).
        for section in [built.dynsym_section, built.dynsym_section + 3] {
            let at = built.shoff + section * 64 + 40;
            built.data[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
        }
        let (info, anomalies) = run(&built.data);
        let bad: Vec<&Anomaly> = anomalies.iter().filter(|a| a.id == "elf-symbol-table-invalid").collect();
        assert_eq!(bad.len(), 1, "{anomalies:?}");
        assert!(bad[0].limits_analysis && bad[0].message.contains("(and 1 more"));
        assert!(!info.stripped);
        // The unreadable .dynsym is replaced by DT_SYMTAB (counted through DT_HASH).
        assert!(info.canary);
        assert_eq!(info.fortified_functions, vec!["__printf_chk"]);
    }

    #[test]
    fn hostile_note_sizes() {
        let mut built = build(&Spec::default());
        let data = &mut built.data;
        let at = data.windows(4).position(|w| w == b"GNU\0").expect("the note name") - 12;
        data[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let (info, _) = run(data);
        assert_eq!(info.build_id, None);
        data[at..at + 4].copy_from_slice(&4u32.to_le_bytes());
        data[at + 4..at + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(run(data).0.build_id, None);
    }

    #[test]
    fn overlapping_sections_have_an_entropy_budget() {
        // A header and 64 section headers that each cover the whole (64 KiB) file.
        let len = 64 * 1024;
        let mut b = Buf { is_64: true, le: true, b: vec![0; len] };
        b.b[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        b.put(16, 3, 2);
        b.put(18, 62, 2);
        let shoff = 4096;
        b.put(40, shoff, 8);
        b.put(58, 64, 2);
        b.put(60, 64, 2);
        for i in 1..64 {
            let at = shoff as usize + i * 64;
            b.put(at + 4, 1, 4);
            b.put(at + 32, len as u64, 8);
        }
        let (info, anomalies) = run(&b.b);
        assert_eq!(info.sections.len(), 64);
        assert!(has_limit(&anomalies, "elf-section-entropy-skipped"), "{:?}", ids(&anomalies));
    }

    #[test]
    fn gnu_hash_counts_the_dynamic_symbols() {
        // nbuckets 1, symoffset 1, one 64-bit bloom word; bucket 0 starts at symbol 1; the chain ends at
        // symbol 2 (its low bit set): 3 symbols in all.
        let mut t = Vec::new();
        for v in [1u32, 1, 1, 0] {
            t.extend_from_slice(&v.to_le_bytes());
        }
        t.extend_from_slice(&[0xff; 8]);
        for v in [1u32, 0x1234_5670, 0x89ab_cdef] {
            t.extend_from_slice(&v.to_le_bytes());
        }
        let r = Reader { data: &t, le: true, is_64: true };
        assert_eq!(gnu_hash_count(&r, 0), Some(3));
        // A chain that never ends stops at the end of the data.
        let cut = &t[..t.len() - 4];
        assert_eq!(gnu_hash_count(&Reader { data: cut, ..r }, 0), None);
    }

    #[test]
    fn names() {
        assert!(is_fortify_name(b"__printf_chk"));
        assert!(is_fortify_name(b"__memcpy_chk"));
        assert!(!is_fortify_name(b"__chk"));
        assert!(!is_fortify_name(b"printf_chk"));
        assert!(!is_fortify_name(b"__printf_chk@GLIBC_2.3.4"));
        assert_eq!(machine_name(183), "aarch64");
        assert_eq!(machine_name(3), "i386");
        assert_eq!(machine_name(258), "loongarch");
        assert_eq!(machine_name(0x1234), "unknown-4660");
        assert_eq!(type_name(0xfe00), "unknown-65024");
        assert_eq!(os_abi_name(3), "linux");
        assert_eq!(section_type_name(0x6fff_fff6, 62), "gnu-hash");
        assert_eq!(section_type_name(0x7000_0001, 40), "arm-exidx");
        assert_eq!(section_type_name(0x7000_0001, 3), "unknown-0x70000001");
        assert_eq!(section_flags(0x1 | 0x2 | 0x4 | 0x1000_0000), vec!["write", "alloc", "exec", "unknown-0x10000000"]);
    }
}

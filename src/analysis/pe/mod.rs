//! PE analysis: headers, sections, imports, exports, resources, debug data, .NET, Rich header, overlay,
//! packer guess and the certificate table, as filerep's own [`PeInfo`].
//!
//! The fixed headers and the section table are read by [`headers`] with pefile's rules (pefile is the
//! reference the corpus is checked against), which is also where untrusted counts are capped. The
//! variable structures are then handed to goblin's sub-parsers one directory at a time (exports, debug
//! directory, resources/version information, CLR header), each under `catch_unwind` with its counts
//! checked first, so that one damaged directory costs only that directory: it becomes an anomaly and the
//! rest of the file is still analysed. Imports are walked by [`imports`] (pefile's rules, needed for an
//! exact imphash); the load configuration (/GS cookie, SafeSEH, CFG) is read by [`loadconfig`].

mod dotnet;
pub mod headers;
mod imports;
pub mod loadconfig;
mod ordlookup;
mod packer;
mod resources;
mod rich;

use goblin::pe::data_directories::DataDirectory as GDataDirectory;
use goblin::pe::options::{ParseMode, ParseOptions};
use goblin::pe::section_table::SectionTable;

use self::headers::{Pe, SectionHeader, section_label};
use super::authenticode;
use super::guarded;
use crate::entropy::{Histogram, shannon};
use crate::report::{Anomaly, Checksum, DataDirectory, Export, Mitigations, Overlay, PeInfo, Section, VersionInfo};

/// What the PE analysis returns besides the facts.
pub struct PeOutput {
    /// The facts.
    pub info: PeInfo,
    /// pefile-compatible imphash (`""` without imports).
    pub imphash: Option<String>,
    /// MD5 of the decoded Rich header.
    pub rich_header_md5: Option<String>,
    /// Shannon entropy of the whole file (assembled from the sections' histograms when they do not overlap).
    pub file_entropy: f64,
}

/// Export counts above this are not believed (ordinals are 16-bit).
const MAX_EXPORTS: u32 = 0x1_0000;

/// Analyse a PE image held in memory. `None` when even the headers cannot be read (an anomaly says why).
pub fn analyse(data: &[u8], anomalies: &mut Vec<Anomaly>) -> Option<PeOutput> {
    let pe = match Pe::parse(data, anomalies) {
        Ok(pe) => pe,
        Err(e) => {
            anomalies.push(Anomaly::limiting("pe-header-invalid", format!("the PE headers cannot be read: {e}")));
            return None;
        }
    };
    let fh = &pe.file_header;
    let opt = &pe.opt;

    // Section entropy reads each section's bytes; overlapping sections could make that many times the file
    // (2,048 headers all covering a 256 MiB file), so the bytes read are budgeted.
    let mut budget = SectionBudget::new(data.len());
    // When the sections' bytes do not overlap, the file's histogram is theirs plus the bytes between them:
    // the whole-file entropy then costs no second pass over the file.
    let ranges = disjoint_section_ranges(&pe, data);
    if ranges.is_some() {
        budget.total = Some(Box::default());
    }
    let sections: Vec<Section> = pe.sections.iter().map(|s| section_info(&pe, s, &mut budget)).collect();
    if budget.skipped > 0 {
        anomalies.push(Anomaly::limiting(
            "section-entropy-skipped",
            format!(
                "{} sections overlap so much that reading them all would mean more than {} times the file; their entropy was not computed (reported as 0)",
                budget.skipped, SECTION_BYTES_FACTOR
            ),
        ));
    }
    let imports = imports::parse(&pe, anomalies);
    let gsections: Vec<SectionTable> = pe.sections.iter().map(goblin_section).collect();
    let opts = ParseOptions::default().with_parse_mode(ParseMode::Permissive);

    let (export_name, exports) =
        guarded("export directory", anomalies, |a| exports(&pe, &gsections, &opts, a)).unwrap_or((None, Vec::new()));
    let version_info = guarded("resource directory", anomalies, |a| version_info(&pe, &gsections, &opts, a)).flatten();
    let (pdb, repro) =
        guarded("debug directory", anomalies, |a| debug_info(&pe, &gsections, &opts, a)).unwrap_or((None, false));
    let dotnet = guarded(".NET metadata", anomalies, |a| dotnet::parse(&pe, a)).flatten();
    let rich = rich::parse(&pe, anomalies);
    let load_config = guarded("load configuration", anomalies, |a| loadconfig::parse(&pe, a)).flatten();

    let (sec_off, sec_size) = pe.directory(4);
    let signature = authenticode::certificate_table(data, sec_off, sec_size, anomalies);
    let overlay_start = pe.overlay_start();
    let (file_entropy, overlay_entropy) = match (budget.total.take(), &ranges) {
        (Some(total), Some(ranges)) => entropy_from_parts(data, *total, ranges, overlay_start),
        _ => (shannon(data), None),
    };
    let overlay = overlay_start.map(|start| {
        let size = data.len() as u64 - start;
        Overlay {
            offset: start,
            size,
            entropy: overlay_entropy.unwrap_or_else(|| shannon(&data[start as usize..])),
            is_certificate_table: signature.present
                && u64::from(sec_off) == start
                && u64::from(sec_off) + u64::from(sec_size) == data.len() as u64,
        }
    });

    let computed = pe.computed_checksum();
    let timestamp_kind = if repro {
        "reproducible-build-hash"
    } else if fh.time_date_stamp == 0 {
        "zero"
    } else {
        "time"
    };
    let data_directories = pe
        .data_directories
        .iter()
        .enumerate()
        .filter(|(_, (rva, size))| *rva != 0 || *size != 0)
        .map(|(i, &(rva, size))| DataDirectory { index: i as u32, name: DIRECTORY_NAMES[i].to_string(), rva, size })
        .collect();

    let mut info = PeInfo {
        machine: machine_name(fh.machine),
        machine_value: fh.machine,
        magic: match opt.magic {
            0x10b => "PE32".to_string(),
            0x20b => "PE32+".to_string(),
            m => format!("unknown-0x{m:x}"),
        },
        subsystem: subsystem_name(opt.subsystem),
        subsystem_value: opt.subsystem,
        is_dll: fh.characteristics & 0x2000 != 0,
        characteristics: fh.characteristics,
        timestamp: fh.time_date_stamp,
        timestamp_utc: (timestamp_kind == "time").then(|| rfc3339(i64::from(fh.time_date_stamp))),
        timestamp_kind: timestamp_kind.to_string(),
        entry_point: opt.address_of_entry_point,
        image_base: opt.image_base,
        size_of_image: opt.size_of_image,
        size_of_headers: opt.size_of_headers,
        linker_version: format!("{}.{}", opt.major_linker_version, opt.minor_linker_version),
        checksum: Checksum { header: opt.checksum, computed, matches: opt.checksum == computed },
        dll_characteristics: opt.dll_characteristics,
        mitigations: mitigations(opt.dll_characteristics),
        number_of_sections: fh.number_of_sections,
        number_of_rva_and_sizes: opt.number_of_rva_and_sizes,
        data_directories,
        sections,
        imports: imports.imports,
        delay_imports: imports.delay_imports,
        export_name,
        exports,
        version_info,
        dotnet,
        load_config,
        overlay,
        pdb,
        rich_header: rich.as_ref().map(|r| r.info.clone()),
        packer: None,
        signature,
    };
    info.packer = packer::guess(&info, data);
    Some(PeOutput { info, imphash: Some(imports.imphash), rich_header_md5: rich.map(|r| r.hash_md5), file_entropy })
}

/// Sections read for entropy at most for the whole-file histogram to be assembled from them.
const MAX_PARTS: usize = 1024;

/// The file ranges of the sections' data, sorted, when no two overlap (else `None`).
fn disjoint_section_ranges(pe: &Pe<'_>, data: &[u8]) -> Option<Vec<(usize, usize)>> {
    if pe.sections.len() > MAX_PARTS {
        return None;
    }
    let mut ranges: Vec<(usize, usize)> = pe
        .sections
        .iter()
        .map(|s| pe.section_data(s))
        .filter(|d| !d.is_empty())
        .map(|d| {
            let start = (d.as_ptr() as usize).wrapping_sub(data.as_ptr() as usize);
            (start, start + d.len())
        })
        .collect();
    ranges.sort_unstable();
    ranges.windows(2).all(|w| w[0].1 <= w[1].0).then_some(ranges)
}

/// The whole-file entropy from the sections' histogram (`total`) and the bytes between and around them; also
/// the overlay's entropy when the overlay is exactly the bytes after the last section.
fn entropy_from_parts(
    data: &[u8],
    mut total: Histogram,
    ranges: &[(usize, usize)],
    overlay_start: Option<u64>,
) -> (f64, Option<f64>) {
    let mut overlay = None;
    let mut pos = 0;
    for &(a, b) in ranges.iter().chain(std::iter::once(&(data.len(), data.len()))) {
        if pos < a {
            let mut h = Histogram::default();
            h.update(&data[pos..a]);
            if a == data.len() && overlay_start == Some(pos as u64) {
                overlay = Some(h.entropy());
            }
            total.merge(&h);
        }
        pos = pos.max(b);
    }
    (total.entropy(), overlay)
}

/// Section bytes read for entropy at most, as a multiple of the file size (plus a fixed allowance).
const SECTION_BYTES_FACTOR: usize = 4;

/// How many section bytes may still be read for entropy.
struct SectionBudget {
    left: usize,
    skipped: usize,
    /// Entropy of ranges already read (hostile tables repeat the same range).
    seen: std::collections::HashMap<(usize, usize), f64>,
    /// The sum of the sections' histograms, kept when the sections do not overlap.
    total: Option<Box<Histogram>>,
}

impl SectionBudget {
    fn new(file_len: usize) -> Self {
        SectionBudget {
            left: file_len.saturating_mul(SECTION_BYTES_FACTOR) + (16 << 20),
            skipped: 0,
            seen: Default::default(),
            total: None,
        }
    }

    fn entropy(&mut self, data: &[u8], whole: &[u8]) -> f64 {
        if data.is_empty() {
            return 0.0;
        }
        // `data` is a slice of `whole`, so this is its offset.
        let start = (data.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
        let key = (start, data.len());
        if let Some(&e) = self.seen.get(&key) {
            return e;
        }
        if data.len() > self.left {
            self.skipped += 1;
            return 0.0;
        }
        self.left -= data.len();
        let mut h = Histogram::default();
        h.update(data);
        let e = h.entropy();
        if let Some(total) = &mut self.total {
            total.merge(&h);
        }
        self.seen.insert(key, e);
        e
    }
}

/// The section as reported: name (COFF long names resolved), sizes, entropy of its raw data, flags.
fn section_info(pe: &Pe<'_>, s: &SectionHeader, budget: &mut SectionBudget) -> Section {
    Section {
        name: section_name(pe, s),
        name_raw_hex: crate::hex::encode(&s.name),
        virtual_address: s.virtual_address,
        virtual_size: s.virtual_size,
        raw_pointer: s.pointer_to_raw_data,
        raw_size: s.size_of_raw_data,
        entropy: budget.entropy(pe.section_data(s), pe.data),
        characteristics: s.characteristics,
        flags: section_flags(s.characteristics),
    }
}

/// A section name: the 8 bytes up to the first NUL; `/N` is an offset into the COFF string table (the
/// long names that MinGW and objcopy write), resolved as binutils does.
fn section_name(pe: &Pe<'_>, s: &SectionHeader) -> String {
    let short = section_label(s);
    if let Some(digits) = short.strip_prefix('/') {
        if let Ok(off) = digits.parse::<u32>() {
            if let Some(long) = coff_string(pe, off) {
                return long;
            }
        }
    }
    short
}

/// A string from the COFF string table, which follows the symbol table (18-byte records).
fn coff_string(pe: &Pe<'_>, off: u32) -> Option<String> {
    let fh = &pe.file_header;
    if fh.pointer_to_symbol_table == 0 {
        return None;
    }
    let table = u64::from(fh.pointer_to_symbol_table) + u64::from(fh.number_of_symbols) * 18;
    let table = usize::try_from(table).ok()?;
    let size = headers::u32_at(pe.data, table)? as usize;
    if (off as usize) < 4 || off as usize >= size {
        return None;
    }
    let start = table.checked_add(off as usize)?;
    let rest = pe.data.get(start..pe.data.len().min(table.saturating_add(size)))?;
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len()).min(256);
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

fn goblin_section(s: &SectionHeader) -> SectionTable {
    SectionTable {
        name: s.name,
        real_name: None,
        virtual_size: s.virtual_size,
        virtual_address: s.virtual_address,
        size_of_raw_data: s.size_of_raw_data,
        pointer_to_raw_data: s.pointer_to_raw_data,
        pointer_to_relocations: 0,
        pointer_to_linenumbers: 0,
        number_of_relocations: 0,
        number_of_linenumbers: 0,
        characteristics: s.characteristics,
    }
}

fn gdir(pe: &Pe<'_>, index: usize) -> GDataDirectory {
    let (virtual_address, size) = pe.directory(index);
    GDataDirectory { virtual_address, size }
}

/// Exports, through goblin's export tables (counts checked first), named and by ordinal only.
fn exports(
    pe: &Pe<'_>,
    sections: &[SectionTable],
    opts: &ParseOptions,
    anomalies: &mut Vec<Anomaly>,
) -> (Option<String>, Vec<Export>) {
    let (rva, size) = pe.directory(0);
    if rva == 0 || pe.data_directories.is_empty() {
        return (None, Vec::new());
    }
    // The directory table itself (40 bytes): check its counts before goblin allocates tables from them.
    let Some(dir) = pe.get_data(rva, 40).filter(|d| d.len() == 40) else {
        anomalies.push(Anomaly::new(
            "export-directory-invalid",
            format!("the export directory at RVA 0x{rva:x} lies outside the file; exports were not read"),
        ));
        return (None, Vec::new());
    };
    let n_functions = headers::u32_at(dir, 20).unwrap_or(0);
    let n_names = headers::u32_at(dir, 24).unwrap_or(0);
    if n_functions > MAX_EXPORTS || n_names > MAX_EXPORTS {
        anomalies.push(Anomaly::limiting(
            "export-table-too-large",
            format!("the export directory claims {n_functions} functions and {n_names} names (over {MAX_EXPORTS}); exports were not read"),
        ));
        return (None, Vec::new());
    }
    let file_alignment = pe.opt.file_alignment;
    let ed = match goblin::pe::export::ExportData::parse_with_opts(pe.data, gdir(pe, 0), sections, file_alignment, opts)
    {
        Ok(ed) => ed,
        Err(e) => {
            anomalies
                .push(Anomaly::new("export-directory-invalid", format!("the export directory cannot be read: {e}")));
            return (None, Vec::new());
        }
    };
    let base = ed.export_directory_table.ordinal_base;
    let name_of = |name_rva: u32| -> Option<String> {
        let s = pe.string_at_rva(name_rva, 0x200);
        (!s.is_empty()).then(|| String::from_utf8_lossy(s).into_owned())
    };
    let addresses: Vec<u32> = ed
        .export_address_table
        .iter()
        .map(|e| match *e {
            goblin::pe::export::ExportAddressTableEntry::ExportRVA(r)
            | goblin::pe::export::ExportAddressTableEntry::ForwarderRVA(r) => r,
        })
        .collect();
    let is_forwarder = |r: u32| u64::from(r) >= u64::from(rva) && u64::from(r) < u64::from(rva) + u64::from(size);
    let mut named = vec![false; addresses.len()];
    let mut out = Vec::new();
    for (i, &name_rva) in ed.export_name_pointer_table.iter().enumerate() {
        let Some(&idx) = ed.export_ordinal_table.get(i) else { break };
        let Some(&addr) = addresses.get(usize::from(idx)) else { continue };
        if addr == 0 {
            continue;
        }
        named[usize::from(idx)] = true;
        out.push(Export {
            name: name_of(name_rva),
            ordinal: base.wrapping_add(u32::from(idx)),
            rva: addr,
            forwarder: is_forwarder(addr).then(|| String::from_utf8_lossy(pe.string_at_rva(addr, 0x200)).into_owned()),
        });
    }
    for (idx, &addr) in addresses.iter().enumerate() {
        if addr != 0 && !named[idx] {
            out.push(Export {
                name: None,
                ordinal: base.wrapping_add(idx as u32),
                rva: addr,
                forwarder: is_forwarder(addr)
                    .then(|| String::from_utf8_lossy(pe.string_at_rva(addr, 0x200)).into_owned()),
            });
        }
    }
    out.sort_by_key(|e| e.ordinal);
    (ed.name.map(str::to_string), out)
}

/// Version information from the RT_VERSION resource, through goblin's resource parser.
fn version_info(
    pe: &Pe<'_>,
    sections: &[SectionTable],
    opts: &ParseOptions,
    anomalies: &mut Vec<Anomaly>,
) -> Option<VersionInfo> {
    let (rva, _) = pe.directory(2);
    if rva == 0 || pe.data_directories.len() <= 2 {
        return None;
    }
    if resources::walk(pe, rva, anomalies).unsound {
        return None;
    }
    let rd = match goblin::pe::resource::ResourceData::parse_with_opts(
        pe.data,
        gdir(pe, 2),
        sections,
        pe.opt.file_alignment,
        opts,
    ) {
        Ok(rd) => rd,
        Err(e) => {
            anomalies.push(Anomaly::new(
                "resource-directory-invalid",
                format!("the resource directory cannot be read: {e}"),
            ));
            return None;
        }
    };
    let vi = rd.version_info?;
    let s = &vi.string_info;
    let fixed = vi.fixed_info.filter(|f| f.signature == 0xfeef04bd);
    let ver = |ms: u32, ls: u32| format!("{}.{}.{}.{}", ms >> 16, ms & 0xffff, ls >> 16, ls & 0xffff);
    let original_filename = s.original_filename();
    Some(VersionInfo {
        company_name: s.company_name(),
        file_description: s.file_description(),
        file_version: s.file_version(),
        internal_name: s.internal_name(),
        legal_copyright: s.legal_copyright(),
        original_filename_mui: original_filename.as_deref().is_some_and(|n| n.to_ascii_lowercase().ends_with(".mui")),
        original_filename,
        product_name: s.product_name(),
        product_version: s.product_version(),
        fixed_file_version: fixed.map(|f| ver(f.file_version_ms, f.file_version_ls)),
        fixed_product_version: fixed.map(|f| ver(f.product_version_ms, f.product_version_ls)),
    })
}

/// The CodeView PDB path, and whether a REPRO debug entry says the timestamp is a hash.
fn debug_info(
    pe: &Pe<'_>,
    sections: &[SectionTable],
    opts: &ParseOptions,
    anomalies: &mut Vec<Anomaly>,
) -> (Option<String>, bool) {
    let (rva, size) = pe.directory(6);
    if rva == 0 || pe.data_directories.len() <= 6 {
        return (None, false);
    }
    // Each entry is 28 bytes; a directory claiming more than a few thousand is not believed.
    if size / 28 > 4096 {
        anomalies.push(Anomaly::new(
            "debug-directory-too-large",
            format!("the debug directory claims {} entries", size / 28),
        ));
        return (None, false);
    }
    let dd = match goblin::pe::debug::DebugData::parse_with_opts(
        pe.data,
        gdir(pe, 6),
        sections,
        pe.opt.file_alignment,
        opts,
    ) {
        Ok(dd) => dd,
        Err(e) => {
            anomalies.push(Anomaly::new("debug-directory-invalid", format!("the debug directory cannot be read: {e}")));
            return (None, false);
        }
    };
    const IMAGE_DEBUG_TYPE_REPRO: u32 = 16;
    let repro = dd.entries().filter_map(Result::ok).any(|e| e.data_type == IMAGE_DEBUG_TYPE_REPRO);
    let pdb = dd
        .codeview_pdb70_debug_info
        .map(|cv| cv.filename.split(|&b| b == 0).next().unwrap_or(&[]).to_vec())
        .or_else(|| {
            dd.codeview_pdb20_debug_info.map(|cv| cv.filename.split(|&b| b == 0).next().unwrap_or(&[]).to_vec())
        })
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(&p).into_owned());
    (pdb, repro)
}

fn mitigations(dc: u16) -> Mitigations {
    Mitigations {
        aslr: dc & 0x0040 != 0,
        high_entropy_va: dc & 0x0020 != 0,
        nx: dc & 0x0100 != 0,
        cfg: dc & 0x4000 != 0,
        no_seh: dc & 0x0400 != 0,
        force_integrity: dc & 0x0080 != 0,
    }
}

const DIRECTORY_NAMES: [&str; 16] = [
    "export",
    "import",
    "resource",
    "exception",
    "security",
    "basereloc",
    "debug",
    "architecture",
    "globalptr",
    "tls",
    "load-config",
    "bound-import",
    "iat",
    "delay-import",
    "com-descriptor",
    "reserved",
];

/// Lower-case machine names.
pub fn machine_name(m: u16) -> String {
    match m {
        0x0 => "unknown",
        0x14c => "i386",
        0x8664 => "amd64",
        0xaa64 => "arm64",
        0xa641 => "arm64ec",
        0xa64e => "arm64x",
        0x1c4 => "armnt",
        0x1c0 => "arm",
        0x1c2 => "thumb",
        0x200 => "ia64",
        0xebc => "ebc",
        0x5032 => "riscv32",
        0x5064 => "riscv64",
        0x5128 => "riscv128",
        0x6232 => "loongarch32",
        0x6264 => "loongarch64",
        0x1f0 => "powerpc",
        0x1f1 => "powerpcfp",
        0x166 => "r4000",
        0x169 => "wcemipsv2",
        0x1a2 => "sh3",
        0x1a6 => "sh4",
        0x9041 => "m32r",
        0x284 => "alpha64",
        0x184 => "alpha",
        _ => return format!("unknown-0x{m:04x}"),
    }
    .to_string()
}

/// Kebab-case subsystem names.
pub fn subsystem_name(s: u16) -> String {
    match s {
        0 => "unknown",
        1 => "native",
        2 => "windows-gui",
        3 => "windows-cui",
        5 => "os2-cui",
        7 => "posix-cui",
        8 => "native-windows",
        9 => "windows-ce-gui",
        10 => "efi-application",
        11 => "efi-boot-service-driver",
        12 => "efi-runtime-driver",
        13 => "efi-rom",
        14 => "xbox",
        16 => "windows-boot-application",
        _ => return format!("unknown-{s}"),
    }
    .to_string()
}

/// Decoded section characteristics.
fn section_flags(c: u32) -> Vec<String> {
    const FLAGS: &[(u32, &str)] = &[
        (0x0000_0020, "code"),
        (0x0000_0040, "initialized-data"),
        (0x0000_0080, "uninitialized-data"),
        (0x0000_0200, "info"),
        (0x0000_0800, "remove"),
        (0x0000_1000, "comdat"),
        (0x0000_8000, "gprel"),
        (0x0100_0000, "extended-relocations"),
        (0x0200_0000, "discardable"),
        (0x0400_0000, "not-cached"),
        (0x0800_0000, "not-paged"),
        (0x1000_0000, "shared"),
        (0x2000_0000, "execute"),
        (0x4000_0000, "read"),
        (0x8000_0000, "write"),
    ];
    FLAGS.iter().filter(|(bit, _)| c & bit != 0).map(|(_, n)| n.to_string()).collect()
}

/// Seconds since the Unix epoch as RFC 3339 UTC (`1978-01-20T05:49:53Z`).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(254_123_393), "1978-01-20T05:49:53Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_294_967_295), "2106-02-07T06:28:15Z");
    }

    #[test]
    fn file_entropy_from_disjoint_parts_is_exact() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let ranges = [(1024, 9000), (9000, 20_000), (30_000, 41_000)];
        let mut total = Histogram::default();
        for &(a, b) in &ranges {
            let mut h = Histogram::default();
            h.update(&data[a..b]);
            total.merge(&h);
        }
        let (whole, overlay) = entropy_from_parts(&data, total.clone(), &ranges, Some(41_000));
        assert_eq!(whole.to_bits(), shannon(&data).to_bits());
        assert_eq!(overlay.map(f64::to_bits), Some(shannon(&data[41_000..]).to_bits()));
        // An overlay that is not exactly the tail gap is left to the caller.
        assert_eq!(entropy_from_parts(&data, total, &ranges, Some(45_000)).1, None);
    }

    #[test]
    fn section_entropy_is_budgeted() {
        let file = vec![0xabu8; 1 << 20];
        let mut b = SectionBudget::new(file.len());
        // The same range a thousand times is read once.
        for _ in 0..1000 {
            assert_eq!(b.entropy(&file, &file), 0.0);
        }
        assert_eq!(b.skipped, 0);
        // Distinct overlapping ranges stop once 4x the file (+16 MiB) has been read.
        let mut read = 0;
        for i in 0..100 {
            b.entropy(&file[i..], &file);
            read += 1;
        }
        assert!(b.skipped > 0 && b.skipped < read, "{} skipped", b.skipped);
        assert_eq!(b.entropy(&[], &file), 0.0);
    }

    #[test]
    fn names() {
        assert_eq!(machine_name(0x8664), "amd64");
        assert_eq!(machine_name(0x1234), "unknown-0x1234");
        assert_eq!(subsystem_name(10), "efi-application");
        assert_eq!(section_flags(0x6000_0020), ["code", "execute", "read"]);
    }
}

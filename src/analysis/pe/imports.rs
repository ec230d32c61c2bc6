//! Imports, delay imports and the imphash, walked with pefile's rules.
//!
//! The imphash is defined by pefile's `get_imphash` over pefile's own import list, so the list must be
//! walked the way pefile walks it (`parse_import_directory`, `parse_imports`, `get_import_table`,
//! `parse_delay_import_directory`): which descriptors are kept, when a thunk table is abandoned as bogus,
//! which names count as invalid, the ordinal names of ws2_32/wsock32/oleaut32, and the cap of 0x2000 thunk
//! reads per file. goblin's import walker differs from pefile on damaged tables and has no delay-import
//! parser, so this one walk (bounded by the cap, so a hostile table cannot make it slow) serves both.

use md5::{Digest, Md5};

use super::headers::{Pe, u32_at, u64_at};
use super::ordlookup;
use crate::report::{Anomaly, Import, ImportedFunction};

/// pefile `MAX_IMPORT_SYMBOLS`: thunk reads per file (imports and delay imports together).
const MAX_IMPORT_SYMBOLS: u32 = 0x2000;
/// pefile `MAX_DLL_LENGTH` / `MAX_IMPORT_NAME_LENGTH`.
const MAX_NAME: usize = 0x200;
/// pefile `MAX_ADDRESS_SPREAD`.
const MAX_ADDRESS_SPREAD: u64 = 128 << 20;
/// pefile `MAX_REPEATED_ADDRESSES`.
const MAX_REPEATED_ADDRESSES: u32 = 15;

/// One library's imports as walked (names as raw bytes until the end).
struct Desc {
    dll: Vec<u8>,
    functions: Vec<Func>,
}

struct Func {
    name: Option<Vec<u8>>,
    ordinal: Option<u16>,
}

/// The walk state shared by the import and delay-import directories (pefile's `__total_import_symbols`).
pub struct Walker<'p, 'a> {
    pe: &'p Pe<'a>,
    total_symbols: u32,
    hit_cap: bool,
    /// Thunk tables dropped as bogus (pefile's repeated-address, address-spread and ordinal checks).
    bogus_tables: u32,
}

/// Import tables: the regular ones and the delay-load ones.
pub struct Imports {
    /// Regular imports.
    pub imports: Vec<Import>,
    /// Delay-load imports.
    pub delay_imports: Vec<Import>,
    /// pefile-compatible imphash over the regular imports (`""` when there are none).
    pub imphash: String,
}

/// Walk both import directories.
pub fn parse(pe: &Pe<'_>, anomalies: &mut Vec<Anomaly>) -> Imports {
    let mut w = Walker { pe, total_symbols: 0, hit_cap: false, bogus_tables: 0 };
    let (rva, _) = pe.directory(1);
    let regular = if rva != 0 { w.import_directory(rva, anomalies) } else { Vec::new() };
    // pefile parses the directories in a fixed order and stops at the first index beyond
    // NumberOfRvaAndSizes; the delay-import directory (13) comes after the others that matter here.
    let (drva, _) = pe.directory(13);
    let delay =
        if drva != 0 && pe.data_directories.len() > 13 { w.delay_directory(drva, anomalies) } else { Vec::new() };
    if w.hit_cap {
        anomalies.push(Anomaly::limiting(
            "import-table-too-large",
            format!("more than {MAX_IMPORT_SYMBOLS} import thunks: the rest of the import tables was not read (pefile's cap, so the imphash stays comparable)"),
        ));
    }
    if w.bogus_tables > 0 {
        anomalies.push(Anomaly::limiting(
            "import-table-bogus",
            format!(
                "{} import thunk table{} dropped as crafted (repeated or scattered name addresses, or impossible ordinals), as pefile does",
                w.bogus_tables,
                if w.bogus_tables == 1 { "" } else { "s" }
            ),
        ));
    }
    let imphash = imphash(&regular);
    Imports {
        imports: regular.into_iter().map(to_report).collect(),
        delay_imports: delay.into_iter().map(to_report).collect(),
        imphash,
    }
}

fn to_report(d: Desc) -> Import {
    Import {
        library: String::from_utf8_lossy(&d.dll).into_owned(),
        functions: d
            .functions
            .into_iter()
            .map(|f| ImportedFunction {
                name: f.name.map(|n| String::from_utf8_lossy(&n).into_owned()),
                ordinal: f.ordinal,
            })
            .collect(),
    }
}

/// pefile `get_imphash`.
fn imphash(descs: &[Desc]) -> String {
    if descs.is_empty() {
        return String::new();
    }
    let mut parts: Vec<String> = Vec::new();
    for d in descs {
        let dll = String::from_utf8_lossy(&d.dll).to_lowercase();
        let lib = match dll.rsplit_once('.') {
            Some((stem, "ocx" | "sys" | "dll")) => stem.to_string(),
            _ => dll.clone(),
        };
        for f in &d.functions {
            let name = match (&f.name, f.ordinal) {
                (Some(n), _) if !n.is_empty() => String::from_utf8_lossy(n).into_owned(),
                (_, Some(o)) => ordlookup::lookup_or_make(&dll, o),
                _ => continue,
            };
            parts.push(format!("{}.{}", lib, name.to_lowercase()));
        }
    }
    crate::hex::encode(&Md5::digest(parts.join(",").as_bytes()))
}

/// pefile `is_valid_dos_filename`.
fn valid_dll_name(s: &[u8]) -> bool {
    s.iter().all(|&c| c.is_ascii_alphanumeric() || b"!#$%&'()-@^_`{}~+,.;=[]:\\/".contains(&c))
}

/// pefile `is_valid_function_name`.
fn valid_function_name(s: &[u8]) -> bool {
    s.iter().all(|&c| c.is_ascii_alphanumeric() || b"._?@$()<>".contains(&c))
}

/// One entry of a thunk table.
struct Thunk {
    value: u64,
}

/// Why a table walk gave up.
enum TableResult {
    /// pefile returns `None` (data could not be read).
    Unreadable,
    /// The entries read (possibly none: pefile returns `[]` for a table it judges bogus).
    Entries(Vec<Thunk>),
}

impl<'p, 'a> Walker<'p, 'a> {
    fn is64(&self) -> bool {
        self.pe.opt.is_64()
    }

    /// pefile `get_import_table`.
    fn import_table(&mut self, start: u32, max_length: Option<u64>, contains_addresses: bool) -> TableResult {
        let size = if self.is64() { 8usize } else { 4 };
        let ordinal_flag: u64 = if self.is64() { 1 << 63 } else { 1 << 31 };
        let mut table = Vec::new();
        let mut repeated = 0u32;
        let (mut set32, mut set64): (AddrSet, AddrSet) = Default::default();
        let mut rva = u64::from(start);
        while rva != 0 {
            if let Some(m) = max_length {
                if rva >= u64::from(start) + m {
                    break;
                }
            }
            if self.total_symbols > MAX_IMPORT_SYMBOLS {
                self.hit_cap = true;
                break;
            }
            self.total_symbols += 1;
            if repeated >= MAX_REPEATED_ADDRESSES
                || set32.spread() > MAX_ADDRESS_SPREAD
                || set64.spread() > MAX_ADDRESS_SPREAD
            {
                self.bogus_tables += 1;
                return TableResult::Entries(Vec::new());
            }
            let Ok(r32) = u32::try_from(rva) else { return TableResult::Unreadable };
            let data = match self.pe.get_data(r32, size) {
                Some(d) if d.len() == size => d,
                _ => return TableResult::Unreadable,
            };
            let mut value =
                if size == 8 { u64_at(data, 0).unwrap_or(0) } else { u64::from(u32_at(data, 0).unwrap_or(0)) };
            if contains_addresses {
                value = self.normalize_va(value);
            }
            if value >= u64::from(start) && value <= rva {
                // AddressOfData overlaps with the thunk table itself.
                break;
            }
            if value != 0 {
                if value & ordinal_flag != 0 {
                    if value & 0x7fff_ffff > 0xffff {
                        self.bogus_tables += 1;
                        return TableResult::Entries(Vec::new());
                    }
                } else {
                    let set = if value >= 1 << 32 { &mut set64 } else { &mut set32 };
                    if !set.insert(value) {
                        repeated += 1;
                    }
                }
            }
            if value == 0 {
                break;
            }
            rva += size as u64;
            table.push(Thunk { value });
        }
        TableResult::Entries(table)
    }

    /// pefile `normalize_import_va`.
    fn normalize_va(&self, va: u64) -> u64 {
        let begin = self.pe.opt.image_base;
        let end = begin.saturating_add(u64::from(self.pe.opt.size_of_image));
        if begin <= va && va < end { va - begin } else { va }
    }

    /// pefile `parse_imports`: `Err` where pefile raises "Invalid entries, aborting parsing".
    fn imports(
        &mut self,
        oft: u32,
        ft: u32,
        max_length: Option<u64>,
        contains_addresses: bool,
    ) -> Result<Vec<Func>, ()> {
        let ilt = self.import_table(oft, max_length, contains_addresses);
        let iat = self.import_table(ft, max_length, contains_addresses);
        let nonempty = |t: &TableResult| matches!(t, TableResult::Entries(e) if !e.is_empty());
        let table = match (nonempty(&ilt), nonempty(&iat)) {
            (true, _) => ilt,
            (false, true) => iat,
            (false, false) => return Ok(Vec::new()),
        };
        let TableResult::Entries(table) = table else { return Ok(Vec::new()) };
        let ordinal_flag: u64 = if self.is64() { 1 << 63 } else { 1 << 31 };
        let mask: u64 = if self.is64() { 0x7fff_ffff_ffff_ffff } else { 0x7fff_ffff };
        let mut out = Vec::new();
        let mut invalid = 0usize;
        for (idx, t) in table.iter().enumerate() {
            let (mut ordinal, mut name) = (None, None);
            if t.value & ordinal_flag != 0 {
                ordinal = Some((t.value & 0xffff) as u16);
            } else {
                let hint_rva = t.value & mask;
                let readable = u32::try_from(hint_rva).ok().and_then(|r| self.pe.get_data(r, 2)).is_some();
                if readable {
                    let n = match u32::try_from(t.value + 2) {
                        Ok(r) => self.pe.string_at_rva(r, MAX_NAME).to_vec(),
                        Err(_) => Vec::new(),
                    };
                    name = Some(if valid_function_name(&n) { n } else { b"*invalid*".to_vec() });
                }
            }
            if ordinal.is_none() && name.is_none() {
                return Err(());
            }
            if name.as_deref() == Some(b"*invalid*".as_slice()) {
                if invalid > 1000 && invalid == idx {
                    return Err(());
                }
                invalid += 1;
                continue;
            }
            // pefile keeps an entry when it has a non-zero ordinal or a non-empty name.
            if ordinal.is_some_and(|o| o != 0) || name.as_ref().is_some_and(|n| !n.is_empty()) {
                out.push(Func { name, ordinal });
            }
        }
        Ok(out)
    }

    /// pefile `parse_import_directory`.
    fn import_directory(&mut self, mut rva: u32, anomalies: &mut Vec<Anomaly>) -> Vec<Desc> {
        let mut descs = Vec::new();
        let mut errors = 0;
        loop {
            let Some(data) = self.pe.get_data(rva, 20) else {
                anomalies.push(Anomaly::new(
                    "import-directory-invalid",
                    format!("the import directory at RVA 0x{rva:x} lies outside the file; its imports were not read"),
                ));
                break;
            };
            if data.len() < 20 || data.iter().all(|&b| b == 0) {
                break;
            }
            let file_offset = self.pe.offset_from_rva(rva).unwrap_or(0);
            let oft = u32_at(data, 0).unwrap_or(0);
            let name_rva = u32_at(data, 12).unwrap_or(0);
            let ft = u32_at(data, 16).unwrap_or(0);
            rva = rva.wrapping_add(20);
            let mut max_len = (self.pe.data.len() as u64).saturating_sub(file_offset);
            if rva > oft || rva > ft {
                max_len = u64::from(rva.saturating_sub(oft)).max(u64::from(rva.saturating_sub(ft)));
            }
            let funcs = match self.imports(oft, ft, Some(max_len), false) {
                Ok(f) => f,
                Err(()) => {
                    anomalies.push(Anomaly::new(
                        "import-entries-invalid",
                        format!("invalid import entries near RVA 0x{rva:x}; that library's imports were skipped"),
                    ));
                    Vec::new()
                }
            };
            if errors > 5 {
                anomalies.push(Anomaly::new("import-directory-invalid", "too many errors in the import directory"));
                break;
            }
            if funcs.is_empty() {
                errors += 1;
                continue;
            }
            if let Some(d) = self.desc(name_rva, funcs) {
                descs.push(d);
            }
        }
        descs
    }

    /// Name the library and resolve known ordinals (pefile's last step for each descriptor).
    fn desc(&self, name_rva: u32, mut funcs: Vec<Func>) -> Option<Desc> {
        let mut dll = self.pe.string_at_rva(name_rva, MAX_NAME).to_vec();
        if !valid_dll_name(&dll) {
            dll = b"*invalid*".to_vec();
        }
        if dll.is_empty() {
            return None;
        }
        let dll_text = String::from_utf8_lossy(&dll).into_owned();
        for f in &mut funcs {
            if f.name.is_none() {
                if let Some(o) = f.ordinal {
                    f.name = ordlookup::lookup(&dll_text, o).map(String::into_bytes);
                }
            }
        }
        Some(Desc { dll, functions: funcs })
    }

    /// pefile `parse_delay_import_directory`.
    fn delay_directory(&mut self, mut rva: u32, anomalies: &mut Vec<Anomaly>) -> Vec<Desc> {
        let mut descs = Vec::new();
        let mut errors = 0;
        loop {
            let Some(data) = self.pe.get_data(rva, 32) else {
                anomalies.push(Anomaly::new(
                    "delay-import-directory-invalid",
                    format!("the delay-import directory at RVA 0x{rva:x} lies outside the file"),
                ));
                break;
            };
            if data.len() < 32 || data.iter().all(|&b| b == 0) {
                break;
            }
            let file_offset = self.pe.offset_from_rva(rva).unwrap_or(0);
            let attrs = u32_at(data, 0).unwrap_or(0);
            let mut name = u64::from(u32_at(data, 4).unwrap_or(0));
            let mut iat = u64::from(u32_at(data, 12).unwrap_or(0));
            let mut int = u64::from(u32_at(data, 16).unwrap_or(0));
            // Old-style (Visual C++ 6) delay descriptors on i386 hold VAs, not RVAs.
            let contains_addresses = attrs == 0 && self.pe.file_header.machine == 0x14c;
            if contains_addresses {
                name = self.normalize_va(name);
                iat = self.normalize_va(iat);
                int = self.normalize_va(int);
            }
            rva = rva.wrapping_add(32);
            let mut max_len = (self.pe.data.len() as u64).saturating_sub(file_offset);
            if u64::from(rva) > int || u64::from(rva) > iat {
                max_len = u64::from(rva).saturating_sub(int).max(u64::from(rva).saturating_sub(iat));
            }
            let (Ok(int32), Ok(iat32)) = (u32::try_from(int), u32::try_from(iat)) else {
                errors += 1;
                if errors > 5 {
                    break;
                }
                continue;
            };
            let funcs = self.imports(int32, iat32, Some(max_len), contains_addresses).unwrap_or_default();
            if errors > 5 {
                break;
            }
            if funcs.is_empty() {
                errors += 1;
                continue;
            }
            if self.total_symbols > MAX_IMPORT_SYMBOLS {
                self.hit_cap = true;
                break;
            }
            if let Some(d) = u32::try_from(name).ok().and_then(|n| self.desc(n, funcs)) {
                descs.push(d);
            }
        }
        descs
    }
}

/// pefile's `AddressSet`: membership plus the spread between the smallest and largest member.
#[derive(Default)]
struct AddrSet {
    seen: std::collections::HashSet<u64>,
    min: Option<u64>,
    max: Option<u64>,
}

impl AddrSet {
    /// Insert; false when the value was already present.
    fn insert(&mut self, v: u64) -> bool {
        self.min = Some(self.min.map_or(v, |m| m.min(v)));
        self.max = Some(self.max.map_or(v, |m| m.max(v)));
        self.seen.insert(v)
    }

    fn spread(&self) -> u64 {
        match (self.min, self.max) {
            (Some(a), Some(b)) => b - a,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(dll: &str, funcs: &[(&str, u16)]) -> Desc {
        Desc {
            dll: dll.as_bytes().to_vec(),
            functions: funcs
                .iter()
                .map(|&(n, o)| Func {
                    name: if n.is_empty() { None } else { Some(n.as_bytes().to_vec()) },
                    ordinal: if n.is_empty() { Some(o) } else { None },
                })
                .collect(),
        }
    }

    #[test]
    fn imphash_follows_pefile() {
        // md5("kernel32.getprocaddress,kernel32.loadlibrarya,ws2_32.socket,mylib.ord7") computed with
        // pefile's rules by hand: extension stripped for dll/ocx/sys, names lower-cased, ordinals named.
        let d = vec![
            desc("KERNEL32.dll", &[("GetProcAddress", 0), ("LoadLibraryA", 0)]),
            desc("WS2_32.dll", &[("", 23)]),
            desc("mylib.cpl", &[("", 7)]),
        ];
        let want = crate::hex::encode(&Md5::digest(
            b"kernel32.getprocaddress,kernel32.loadlibrarya,ws2_32.socket,mylib.cpl.ord7",
        ));
        assert_eq!(imphash(&d), want);
        assert_eq!(imphash(&[]), "");
    }

    #[test]
    fn name_rules() {
        assert!(valid_function_name(b"??0_Lockit@std@@QEAA@H@Z"));
        assert!(!valid_function_name(b"bad name"));
        assert!(valid_dll_name(b"api-ms-win-crt-runtime-l1-1-0.dll"));
        assert!(!valid_dll_name(b"evil\x1b.dll"));
    }
}

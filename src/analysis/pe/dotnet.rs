//! .NET: the CLR header (IMAGE_COR20_HEADER) and just enough of the ECMA-335 metadata to name the assembly.
//!
//! This module owns locating the CLR header through the COM descriptor directory (14), its flags and runtime
//! version, and a bounded reader of the metadata root (II.24.2.1), the stream headers (II.24.2.2), the `#~`/`#-`
//! table stream header (II.24.2.6) and the rows of the Module (0x00) and Assembly (0x20) tables, with names from
//! the `#Strings` heap. It does not decode IL, signatures, resources or the strong-name signature.
//!
//! Every count and offset here comes from the file, so nothing is trusted: a table's row count times its row
//! size must fit in the stream, strings are capped, arithmetic is checked, and each failure becomes a
//! `dotnet-metadata-invalid` anomaly while the values already read are kept. Where a choice had to be made
//! (duplicate stream names: the first one wins) we follow dnfile, the reference our values are compared with.

use super::headers::{Pe, u16_at, u32_at, u64_at};
use crate::report::{Anomaly, DotNet};

/// Anomaly id for every problem in the CLR header or metadata.
const ANOMALY_ID: &str = "dotnet-metadata-invalid";
/// Size of IMAGE_COR20_HEADER.
const COR20_LEN: usize = 72;
/// "BSJB", the metadata root signature (II.24.2.1).
const METADATA_SIGNATURE: u32 = 0x424A_5342;
/// Cap on any string read from the metadata (version string, `#Strings` entries).
const STRING_CAP: usize = 1024;
/// Stream names are at most 32 bytes including the terminating NUL (II.24.2.2).
const STREAM_NAME_CAP: usize = 32;

// COMIMAGE_FLAGS_* (II.25.3.3.1, and corhdr.h for 32BITPREFERRED).
const FLAG_IL_ONLY: u32 = 0x1;
const FLAG_32BIT_REQUIRED: u32 = 0x2;
const FLAG_STRONG_NAME_SIGNED: u32 = 0x8;
const FLAG_NATIVE_ENTRYPOINT: u32 = 0x10;
const FLAG_32BIT_PREFERRED: u32 = 0x2_0000;

// HeapSizes bits of the `#~` header (II.24.2.6), plus the `#-` ExtraData bit (dnlib `MDStreamFlags`).
const HEAP_STRINGS_4: u8 = 0x01;
const HEAP_GUID_4: u8 = 0x02;
const HEAP_BLOB_4: u8 = 0x04;
const HEAP_EXTRA_DATA: u8 = 0x40;

// Table numbers used by name below (II.22).
const TABLE_MODULE: usize = 0x00;
const TABLE_ASSEMBLY: usize = 0x20;

/// Parse the CLR header when the COM descriptor directory is set.
///
/// Returns `None` only when directory 14 has no RVA; otherwise the presence of the header is itself the fact,
/// so the result is `Some` with whatever could be read, and each unreadable part is recorded as an anomaly.
pub fn parse(pe: &Pe<'_>, anomalies: &mut Vec<Anomaly>) -> Option<DotNet> {
    let (rva, _) = pe.directory(14);
    if rva == 0 {
        return None;
    }
    let mut out = DotNet::default();
    // The directory's size is not trusted: the loader reads the fixed-size structure (dnfile does the same).
    let hdr = pe.get_data(rva, COR20_LEN).unwrap_or(&[]);
    if hdr.len() < COR20_LEN {
        invalid(anomalies, format!("CLR header at RVA {rva:#x}: only {} of {COR20_LEN} bytes readable", hdr.len()));
    }
    if let (Some(major), Some(minor)) = (u16_at(hdr, 4), u16_at(hdr, 6)) {
        out.clr_header_version = format!("{major}.{minor}");
    }
    if let Some(flags) = u32_at(hdr, 16) {
        out.il_only = flags & FLAG_IL_ONLY != 0;
        out.requires_32bit = flags & FLAG_32BIT_REQUIRED != 0;
        out.prefers_32bit = flags & FLAG_32BIT_PREFERRED != 0;
        out.strong_name_signed = flags & FLAG_STRONG_NAME_SIGNED != 0;
        out.native_entry_point = flags & FLAG_NATIVE_ENTRYPOINT != 0;
    }
    let (Some(md_rva), Some(md_size)) = (u32_at(hdr, 8), u32_at(hdr, 12)) else {
        return Some(out);
    };
    if md_rva == 0 || md_size == 0 {
        invalid(anomalies, format!("CLR header names no metadata (RVA {md_rva:#x}, size {md_size:#x})"));
        return Some(out);
    }
    // `get_data` clips to the section and the file, so an absurd size costs nothing.
    let Some(md) = pe.get_data(md_rva, md_size as usize) else {
        invalid(anomalies, format!("metadata at RVA {md_rva:#x} cannot be read"));
        return Some(out);
    };
    if md.len() < md_size as usize {
        invalid(anomalies, format!("metadata at RVA {md_rva:#x}: only {} of {md_size} bytes readable", md.len()));
    }
    let meta = parse_metadata(md, anomalies);
    out.runtime_version = meta.version;
    out.module_name = meta.module_name;
    out.assembly_name = meta.assembly_name;
    out.assembly_version = meta.assembly_version;
    Some(out)
}

/// Push an informational `dotnet-metadata-invalid` anomaly.
fn invalid(anomalies: &mut Vec<Anomaly>, message: String) {
    anomalies.push(Anomaly::new(ANOMALY_ID, message));
}

/// What the metadata gives us; each field is `None` when it could not be read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Metadata {
    /// The metadata root's version string.
    version: Option<String>,
    /// Module.Name.
    module_name: Option<String>,
    /// Assembly.Name.
    assembly_name: Option<String>,
    /// Assembly "Major.Minor.Build.Revision".
    assembly_version: Option<String>,
}

/// Parse the metadata root (the bytes the CLR header's MetaData directory points at).
fn parse_metadata(md: &[u8], anomalies: &mut Vec<Anomaly>) -> Metadata {
    let mut out = Metadata::default();
    let Some(sig) = u32_at(md, 0) else {
        invalid(anomalies, format!("metadata root truncated: {} bytes", md.len()));
        return out;
    };
    if sig != METADATA_SIGNATURE {
        invalid(anomalies, format!("metadata signature is {sig:#010x}, not BSJB"));
        return out;
    }
    let Some(version_len) = u32_at(md, 12) else {
        invalid(anomalies, format!("metadata root truncated: {} bytes", md.len()));
        return out;
    };
    // Read the version string before judging its length, so a bad length still leaves the version readable.
    let version_area = md.get(16..).unwrap_or(&[]);
    let shown = usize::try_from(version_len).unwrap_or(usize::MAX).min(version_area.len());
    out.version = Some(c_string(version_area.get(..shown).unwrap_or(&[])));
    // dnlib and dnfile use the length as written (the spec says it is already rounded up to 4).
    let after_version = match usize::try_from(version_len).ok().and_then(|l| l.checked_add(16)) {
        Some(off) if off.checked_add(4).is_some_and(|end| end <= md.len()) => off,
        _ => {
            invalid(anomalies, format!("metadata version length {version_len:#x} runs past the metadata"));
            return out;
        }
    };
    // Flags (u16) then the stream count (u16); the check above guarantees both are present.
    let stream_count = u16_at(md, after_version + 2).unwrap_or(0);
    let streams = parse_stream_headers(md, after_version + 4, stream_count, anomalies);

    let strings = streams.strings;
    if strings.is_none() {
        invalid(anomalies, "metadata has no #Strings stream".to_string());
    }
    let Some(tables_bytes) = streams.tables else {
        invalid(anomalies, "metadata has no #~ or #- table stream".to_string());
        return out;
    };
    let Some(tables) = Tables::parse(tables_bytes, anomalies) else {
        return out;
    };
    let name = |idx: u32, what: &str, anomalies: &mut Vec<Anomaly>| {
        let heap = strings?;
        let s = heap_string(heap, idx);
        if s.is_none() {
            invalid(anomalies, format!("{what} string index {idx:#x} is past the #Strings heap"));
        }
        s
    };

    // Module: Generation, Name, Mvid, EncId, EncBaseId.
    if let Some(row) = tables.row(TABLE_MODULE, 0) {
        out.module_name = name(row[1], "Module.Name", anomalies);
    }
    // Assembly: HashAlgId, Major, Minor, Build, Revision, Flags, PublicKey, Name, Culture.
    if let Some(row) = tables.row(TABLE_ASSEMBLY, 0) {
        out.assembly_version = Some(format!("{}.{}.{}.{}", row[1], row[2], row[3], row[4]));
        out.assembly_name = name(row[7], "Assembly.Name", anomalies);
    }
    out
}

/// The streams we use, as slices of the metadata.
#[derive(Default)]
struct Streams<'a> {
    /// `#~` (compressed) or `#-` (uncompressed) table stream.
    tables: Option<&'a [u8]>,
    /// `#Strings` heap.
    strings: Option<&'a [u8]>,
}

/// At most this many anomalies from the stream headers; a hostile root can hold 65,535 of them.
const MAX_STREAM_ANOMALIES: usize = 4;

/// Walk the stream headers (II.24.2.2): offset, size, NUL-terminated name padded to 4 bytes.
fn parse_stream_headers<'a>(md: &'a [u8], start: usize, count: u16, anomalies: &mut Vec<Anomaly>) -> Streams<'a> {
    let mut out = Streams::default();
    let mut problems = 0usize;
    let mut report = |anomalies: &mut Vec<Anomaly>, message: String| {
        problems += 1;
        if problems <= MAX_STREAM_ANOMALIES {
            invalid(anomalies, message);
        }
    };
    let mut pos = start;
    for i in 0..count {
        let (Some(offset), Some(size)) = (u32_at(md, pos), u32_at(md, pos.saturating_add(4))) else {
            report(anomalies, format!("stream header {i} of {count} is past the end of the metadata"));
            break;
        };
        let name_area = md.get(pos.saturating_add(8)..).unwrap_or(&[]);
        let name_area = name_area.get(..STREAM_NAME_CAP.min(name_area.len())).unwrap_or(&[]);
        let Some(name_len) = name_area.iter().position(|&b| b == 0) else {
            report(anomalies, format!("stream header {i} has no terminated name within {STREAM_NAME_CAP} bytes"));
            break;
        };
        let name = name_area.get(..name_len).unwrap_or(&[]);
        // Name plus NUL, rounded up to 4 (at most 32, so no overflow).
        pos = pos.saturating_add(8).saturating_add((name_len + 1 + 3) & !3);

        let slot = match name {
            b"#~" | b"#-" => &mut out.tables,
            b"#Strings" => &mut out.strings,
            _ => continue,
        };
        if slot.is_some() {
            // dnfile keeps the first stream of a name and warns about the rest.
            report(anomalies, format!("duplicate stream {}", lossy(name)));
            continue;
        }
        let off = offset as usize;
        if off > md.len() {
            let message =
                format!("stream {} at offset {offset:#x} is past the metadata ({:#x} bytes)", lossy(name), md.len());
            report(anomalies, message);
            continue;
        }
        let end = off.saturating_add(size as usize);
        if end > md.len() {
            report(anomalies, format!("stream {} ({size:#x} bytes at {offset:#x}) is truncated", lossy(name)));
        }
        *slot = md.get(off..end.min(md.len()));
    }
    if problems > MAX_STREAM_ANOMALIES {
        invalid(anomalies, format!("{} more stream header problems not listed", problems - MAX_STREAM_ANOMALIES));
    }
    out
}

/// Lossy text of a stream name for messages (at most 32 bytes, ASCII in practice).
fn lossy(name: &[u8]) -> String {
    String::from_utf8_lossy(name).escape_debug().to_string()
}

/// A NUL-terminated string (or the whole slice), capped and lossily decoded.
fn c_string(bytes: &[u8]) -> String {
    let bytes = bytes.get(..STRING_CAP.min(bytes.len())).unwrap_or(&[]);
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(bytes.get(..end).unwrap_or(&[])).into_owned()
}

/// The string at `idx` in the `#Strings` heap, `None` when the index is past the heap.
fn heap_string(heap: &[u8], idx: u32) -> Option<String> {
    heap.get(usize::try_from(idx).ok()?..).map(c_string)
}

// ------------------------------------------------------------------------------------------- table schemas

/// Coded indexes (II.24.2.6): a tag of `bits` bits selects one of `tables`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coded {
    TypeDefOrRef,
    HasConstant,
    HasCustomAttribute,
    HasFieldMarshal,
    HasDeclSecurity,
    MemberRefParent,
    HasSemantics,
    MethodDefOrRef,
    MemberForwarded,
    Implementation,
    CustomAttributeType,
    ResolutionScope,
    TypeOrMethodDef,
}

impl Coded {
    /// Tag width in bits.
    fn bits(self) -> u32 {
        match self {
            Coded::HasCustomAttribute => 5,
            Coded::MemberRefParent | Coded::CustomAttributeType => 3,
            Coded::TypeDefOrRef
            | Coded::HasConstant
            | Coded::HasDeclSecurity
            | Coded::Implementation
            | Coded::ResolutionScope => 2,
            Coded::HasFieldMarshal
            | Coded::HasSemantics
            | Coded::MethodDefOrRef
            | Coded::MemberForwarded
            | Coded::TypeOrMethodDef => 1,
        }
    }

    /// The tables the index can point to (unused tags of CustomAttributeType omitted: they have no rows).
    fn tables(self) -> &'static [usize] {
        match self {
            Coded::TypeDefOrRef => &[0x02, 0x01, 0x1B],
            Coded::HasConstant => &[0x04, 0x08, 0x17],
            Coded::HasCustomAttribute => &[
                0x06, 0x04, 0x01, 0x02, 0x08, 0x09, 0x0A, 0x00, 0x0E, 0x17, 0x14, 0x11, 0x1A, 0x1B, 0x20, 0x23, 0x26,
                0x27, 0x28, 0x2A, 0x2C, 0x2B,
            ],
            Coded::HasFieldMarshal => &[0x04, 0x08],
            Coded::HasDeclSecurity => &[0x02, 0x06, 0x20],
            Coded::MemberRefParent => &[0x02, 0x01, 0x1A, 0x06, 0x1B],
            Coded::HasSemantics => &[0x14, 0x17],
            Coded::MethodDefOrRef => &[0x06, 0x0A],
            Coded::MemberForwarded => &[0x04, 0x06],
            Coded::Implementation => &[0x26, 0x23, 0x27],
            Coded::CustomAttributeType => &[0x06, 0x0A],
            Coded::ResolutionScope => &[0x00, 0x1A, 0x23, 0x01],
            Coded::TypeOrMethodDef => &[0x02, 0x06],
        }
    }
}

/// One column of a table row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    /// A constant of 2 or 4 bytes (Constant.Type is a byte plus a padding byte: 2).
    Fixed(usize),
    /// Index into `#Strings`.
    Str,
    /// Index into `#GUID`.
    Guid,
    /// Index into `#Blob`.
    Blob,
    /// Simple index into the table with this number.
    Table(usize),
    /// Coded index.
    Coded(Coded),
}

use Col::{Blob, Fixed, Guid, Str, Table};

const U16: Col = Fixed(2);
const U32: Col = Fixed(4);
const TYPE_DEF_OR_REF: Col = Col::Coded(Coded::TypeDefOrRef);
const METHOD_DEF_OR_REF: Col = Col::Coded(Coded::MethodDefOrRef);
const IMPLEMENTATION: Col = Col::Coded(Coded::Implementation);

/// Table schemas 0x00–0x2C (ECMA-335 II.22, with the pointer tables of `#-` streams and EncLog/EncMap from
/// the CLR's metamodel). Tables past 0x2C are unknown: their rows cannot be skipped, which only matters for
/// tables after them, and none we read is.
const SCHEMAS: [&[Col]; 0x2D] = [
    // 0x00 Module: Generation, Name, Mvid, EncId, EncBaseId
    &[U16, Str, Guid, Guid, Guid],
    // 0x01 TypeRef: ResolutionScope, TypeName, TypeNamespace
    &[Col::Coded(Coded::ResolutionScope), Str, Str],
    // 0x02 TypeDef: Flags, TypeName, TypeNamespace, Extends, FieldList, MethodList
    &[U32, Str, Str, TYPE_DEF_OR_REF, Table(0x04), Table(0x06)],
    // 0x03 FieldPtr: Field
    &[Table(0x04)],
    // 0x04 Field: Flags, Name, Signature
    &[U16, Str, Blob],
    // 0x05 MethodPtr: Method
    &[Table(0x06)],
    // 0x06 MethodDef: RVA, ImplFlags, Flags, Name, Signature, ParamList
    &[U32, U16, U16, Str, Blob, Table(0x08)],
    // 0x07 ParamPtr: Param
    &[Table(0x08)],
    // 0x08 Param: Flags, Sequence, Name
    &[U16, U16, Str],
    // 0x09 InterfaceImpl: Class, Interface
    &[Table(0x02), TYPE_DEF_OR_REF],
    // 0x0A MemberRef: Class, Name, Signature
    &[Col::Coded(Coded::MemberRefParent), Str, Blob],
    // 0x0B Constant: Type (+ padding byte), Parent, Value
    &[U16, Col::Coded(Coded::HasConstant), Blob],
    // 0x0C CustomAttribute: Parent, Type, Value
    &[Col::Coded(Coded::HasCustomAttribute), Col::Coded(Coded::CustomAttributeType), Blob],
    // 0x0D FieldMarshal: Parent, NativeType
    &[Col::Coded(Coded::HasFieldMarshal), Blob],
    // 0x0E DeclSecurity: Action, Parent, PermissionSet
    &[U16, Col::Coded(Coded::HasDeclSecurity), Blob],
    // 0x0F ClassLayout: PackingSize, ClassSize, Parent
    &[U16, U32, Table(0x02)],
    // 0x10 FieldLayout: Offset, Field
    &[U32, Table(0x04)],
    // 0x11 StandAloneSig: Signature
    &[Blob],
    // 0x12 EventMap: Parent, EventList
    &[Table(0x02), Table(0x14)],
    // 0x13 EventPtr: Event
    &[Table(0x14)],
    // 0x14 Event: EventFlags, Name, EventType
    &[U16, Str, TYPE_DEF_OR_REF],
    // 0x15 PropertyMap: Parent, PropertyList
    &[Table(0x02), Table(0x17)],
    // 0x16 PropertyPtr: Property
    &[Table(0x17)],
    // 0x17 Property: Flags, Name, Type
    &[U16, Str, Blob],
    // 0x18 MethodSemantics: Semantics, Method, Association
    &[U16, Table(0x06), Col::Coded(Coded::HasSemantics)],
    // 0x19 MethodImpl: Class, MethodBody, MethodDeclaration
    &[Table(0x02), METHOD_DEF_OR_REF, METHOD_DEF_OR_REF],
    // 0x1A ModuleRef: Name
    &[Str],
    // 0x1B TypeSpec: Signature
    &[Blob],
    // 0x1C ImplMap: MappingFlags, MemberForwarded, ImportName, ImportScope
    &[U16, Col::Coded(Coded::MemberForwarded), Str, Table(0x1A)],
    // 0x1D FieldRVA: RVA, Field
    &[U32, Table(0x04)],
    // 0x1E EncLog: Token, FuncCode
    &[U32, U32],
    // 0x1F EncMap: Token
    &[U32],
    // 0x20 Assembly: HashAlgId, MajorVersion, MinorVersion, BuildNumber, RevisionNumber, Flags, PublicKey,
    // Name, Culture
    &[U32, U16, U16, U16, U16, U32, Blob, Str, Str],
    // 0x21 AssemblyProcessor: Processor
    &[U32],
    // 0x22 AssemblyOS: OSPlatformID, OSMajorVersion, OSMinorVersion
    &[U32, U32, U32],
    // 0x23 AssemblyRef: Major, Minor, Build, Revision, Flags, PublicKeyOrToken, Name, Culture, HashValue
    &[U16, U16, U16, U16, U32, Blob, Str, Str, Blob],
    // 0x24 AssemblyRefProcessor: Processor, AssemblyRef
    &[U32, Table(0x23)],
    // 0x25 AssemblyRefOS: OSPlatformID, OSMajorVersion, OSMinorVersion, AssemblyRef
    &[U32, U32, U32, Table(0x23)],
    // 0x26 File: Flags, Name, HashValue
    &[U32, Str, Blob],
    // 0x27 ExportedType: Flags, TypeDefId, TypeName, TypeNamespace, Implementation
    &[U32, U32, Str, Str, IMPLEMENTATION],
    // 0x28 ManifestResource: Offset, Flags, Name, Implementation
    &[U32, U32, Str, IMPLEMENTATION],
    // 0x29 NestedClass: NestedClass, EnclosingClass
    &[Table(0x02), Table(0x02)],
    // 0x2A GenericParam: Number, Flags, Owner, Name
    &[U16, U16, Col::Coded(Coded::TypeOrMethodDef), Str],
    // 0x2B MethodSpec: Method, Instantiation
    &[METHOD_DEF_OR_REF, Blob],
    // 0x2C GenericParamConstraint: Owner, Constraint
    &[Table(0x2A), TYPE_DEF_OR_REF],
];

/// Width in bytes of one column, given every table's row count and the HeapSizes byte.
fn col_size(col: Col, rows: &[u32; 64], heap_sizes: u8) -> usize {
    let wide = |flag: u8| if heap_sizes & flag != 0 { 4 } else { 2 };
    match col {
        Fixed(n) => n,
        Str => wide(HEAP_STRINGS_4),
        Guid => wide(HEAP_GUID_4),
        Blob => wide(HEAP_BLOB_4),
        // "2 bytes if the table has fewer than 2^16 rows" (II.24.2.6).
        Table(t) => {
            if rows.get(t).copied().unwrap_or(0) < 1 << 16 {
                2
            } else {
                4
            }
        }
        // 2 bytes when every target table has fewer than 2^(16 - tag bits) rows.
        Col::Coded(c) => {
            let max = c.tables().iter().map(|&t| rows.get(t).copied().unwrap_or(0)).max().unwrap_or(0);
            if u64::from(max) < 1u64 << (16 - c.bits()) { 2 } else { 4 }
        }
    }
}

/// Bytes per row of `table`, or `None` for a table number we have no schema for.
fn row_size(table: usize, rows: &[u32; 64], heap_sizes: u8) -> Option<usize> {
    Some(SCHEMAS.get(table)?.iter().map(|&c| col_size(c, rows, heap_sizes)).sum())
}

/// The table stream, with each reachable table located.
struct Tables<'a> {
    /// The whole `#~`/`#-` stream.
    data: &'a [u8],
    /// HeapSizes byte.
    heap_sizes: u8,
    /// Row count of every table (0 when absent).
    rows: [u32; 64],
    /// Byte offset of each table in `data`, `None` when absent or beyond a table that could not be laid out.
    offsets: [Option<usize>; 64],
}

impl<'a> Tables<'a> {
    /// Read the table stream header (II.24.2.6) and lay out the tables; `None` when the header itself is
    /// unreadable.
    fn parse(data: &'a [u8], anomalies: &mut Vec<Anomaly>) -> Option<Tables<'a>> {
        let (Some(heap_sizes), Some(valid)) = (data.get(6).copied(), u64_at(data, 8)) else {
            invalid(anomalies, format!("table stream header truncated: {} bytes", data.len()));
            return None;
        };
        let mut rows = [0u32; 64];
        let mut pos = 24usize;
        for (t, count) in rows.iter_mut().enumerate() {
            if valid & (1u64 << t) == 0 {
                continue;
            }
            let Some(n) = u32_at(data, pos) else {
                invalid(anomalies, format!("table stream row counts truncated at table {t:#04x}"));
                return None;
            };
            *count = n;
            pos += 4; // at most 24 + 64 * 4
        }
        if heap_sizes & HEAP_EXTRA_DATA != 0 {
            // A `#-` stream may carry 4 more bytes after the row counts (dnlib `MDStreamFlags.ExtraData`).
            pos += 4;
        }
        let mut tables = Tables { data, heap_sizes, rows, offsets: [None; 64] };
        for t in 0..64 {
            if valid & (1u64 << t) == 0 {
                continue;
            }
            let Some(size) = row_size(t, &tables.rows, heap_sizes) else {
                // Tables are stored in order, so nothing after an unknown one can be located.
                invalid(anomalies, format!("table stream lists unknown table {t:#04x}; later tables skipped"));
                break;
            };
            let n = tables.rows[t];
            let len = u64::from(n).checked_mul(size as u64);
            let end = len.and_then(|l| l.checked_add(pos as u64));
            match end {
                Some(end) if end <= data.len() as u64 => {
                    tables.offsets[t] = Some(pos);
                    pos = end as usize;
                }
                _ => {
                    invalid(
                        anomalies,
                        format!(
                            "table {t:#04x} ({n} rows of {size} bytes at {pos:#x}) runs past the table stream \
                             ({:#x} bytes)",
                            data.len()
                        ),
                    );
                    break;
                }
            }
        }
        Some(tables)
    }

    /// The column values of row `idx` (0-based) of `table`, or `None` when the table is absent, not located,
    /// or has no such row.
    fn row(&self, table: usize, idx: u32) -> Option<Vec<u32>> {
        let schema = SCHEMAS.get(table)?;
        if idx >= *self.rows.get(table)? {
            return None;
        }
        let size = row_size(table, &self.rows, self.heap_sizes)?;
        let mut pos = (*self.offsets.get(table)?)?.checked_add(size.checked_mul(idx as usize)?)?;
        let mut out = Vec::with_capacity(schema.len());
        for &c in schema.iter() {
            let w = col_size(c, &self.rows, self.heap_sizes);
            let v = if w == 4 { u32_at(self.data, pos)? } else { u32::from(u16_at(self.data, pos)?) };
            out.push(v);
            pos = pos.checked_add(w)?;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID_MODULE: u64 = 1 << 0x00;
    const VALID_TYPEDEF: u64 = 1 << 0x02;
    const VALID_METHODDEF: u64 = 1 << 0x06;
    const VALID_ASSEMBLY: u64 = 1 << 0x20;

    fn rows_with(pairs: &[(usize, u32)]) -> [u32; 64] {
        let mut rows = [0u32; 64];
        for &(t, n) in pairs {
            rows[t] = n;
        }
        rows
    }

    /// A `#~` stream: header, row counts for the `valid` tables, then `body`.
    fn table_stream(heap_sizes: u8, valid: u64, counts: &[u32], body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&0u32.to_le_bytes()); // Reserved
        v.extend_from_slice(&[2, 0, heap_sizes, 1]); // Major, Minor, HeapSizes, Reserved
        v.extend_from_slice(&valid.to_le_bytes());
        v.extend_from_slice(&0u64.to_le_bytes()); // Sorted
        for c in counts {
            v.extend_from_slice(&c.to_le_bytes());
        }
        v.extend_from_slice(body);
        v
    }

    /// A metadata root with the given version string and streams (name, bytes), each 4-byte aligned.
    fn metadata_root(version: &[u8], streams: &[(&str, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&METADATA_SIGNATURE.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        let padded = (version.len() + 1 + 3) & !3;
        v.extend_from_slice(&(padded as u32).to_le_bytes());
        let mut ver = version.to_vec();
        ver.resize(padded, 0);
        v.extend_from_slice(&ver);
        v.extend_from_slice(&0u16.to_le_bytes()); // Flags
        v.extend_from_slice(&(streams.len() as u16).to_le_bytes());
        let headers_len: usize = streams.iter().map(|(n, _)| 8 + ((n.len() + 1 + 3) & !3)).sum();
        let mut data_off = v.len() + headers_len;
        let mut data = Vec::new();
        for (name, bytes) in streams {
            v.extend_from_slice(&(data_off as u32).to_le_bytes());
            v.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            let mut n = name.as_bytes().to_vec();
            n.resize((name.len() + 1 + 3) & !3, 0);
            v.extend_from_slice(&n);
            let mut b = bytes.to_vec();
            b.resize((b.len() + 3) & !3, 0);
            data_off += b.len();
            data.extend_from_slice(&b);
        }
        v.extend_from_slice(&data);
        v
    }

    /// `#Strings`: "\0" at 0, "Demo.dll" at 1, "Demo" at 10, "Foo" at 15, "Bar" at 19.
    const STRINGS: &[u8] = b"\0Demo.dll\0Demo\0Foo\0Bar\0";

    /// A small but complete assembly: Module, TypeDef (2 rows), MethodDef (3 rows), Assembly; 2-byte indexes.
    fn sample_tables() -> Vec<u8> {
        let mut body = Vec::new();
        // Module: Generation, Name=1, Mvid=1, EncId=0, EncBaseId=0 (10 bytes).
        for v in [0u16, 1, 1, 0, 0] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        // TypeDef x2: Flags u32, Name, Namespace, Extends, FieldList, MethodList (14 bytes).
        for name in [15u16, 19] {
            body.extend_from_slice(&0x0010_0001u32.to_le_bytes());
            for v in [name, 0, 0, 1, 1] {
                body.extend_from_slice(&v.to_le_bytes());
            }
        }
        // MethodDef x3: RVA u32, ImplFlags, Flags, Name, Signature, ParamList (14 bytes).
        for _ in 0..3 {
            body.extend_from_slice(&0x2050u32.to_le_bytes());
            for v in [0u16, 0x86, 15, 1, 1] {
                body.extend_from_slice(&v.to_le_bytes());
            }
        }
        // Assembly: HashAlgId, 1.2.3.4, Flags, PublicKey, Name=10, Culture=0 (22 bytes).
        body.extend_from_slice(&0x8004u32.to_le_bytes());
        for v in [1u16, 2, 3, 4] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        body.extend_from_slice(&0u32.to_le_bytes());
        for v in [0u16, 10, 0] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        table_stream(0, VALID_MODULE | VALID_TYPEDEF | VALID_METHODDEF | VALID_ASSEMBLY, &[1, 2, 3, 1], &body)
    }

    fn ids(anomalies: &[Anomaly]) -> Vec<&str> {
        anomalies.iter().map(|a| a.id.as_str()).collect()
    }

    #[test]
    fn row_sizes_with_small_tables_and_heaps() {
        let rows = rows_with(&[(0x00, 1), (0x02, 2), (0x06, 3), (0x20, 1)]);
        assert_eq!(row_size(0x00, &rows, 0), Some(10)); // Module 2+2+2+2+2
        assert_eq!(row_size(0x01, &rows, 0), Some(6)); // TypeRef
        assert_eq!(row_size(0x02, &rows, 0), Some(14)); // TypeDef 4+2*5
        assert_eq!(row_size(0x06, &rows, 0), Some(14)); // MethodDef 4+2+2+2+2+2
        assert_eq!(row_size(0x0B, &rows, 0), Some(6)); // Constant 2+2+2
        assert_eq!(row_size(0x0F, &rows, 0), Some(8)); // ClassLayout 2+4+2
        assert_eq!(row_size(0x1E, &rows, 0), Some(8)); // EncLog
        assert_eq!(row_size(0x1F, &rows, 0), Some(4)); // EncMap
        assert_eq!(row_size(0x20, &rows, 0), Some(22)); // Assembly 4+2*4+4+2+2+2
        assert_eq!(row_size(0x23, &rows, 0), Some(20)); // AssemblyRef
        assert_eq!(row_size(0x2C, &rows, 0), Some(4)); // GenericParamConstraint
        assert_eq!(row_size(0x2D, &rows, 0), None);
        assert_eq!(row_size(64, &rows, 0), None);
    }

    #[test]
    fn row_sizes_with_wide_heaps() {
        let rows = rows_with(&[(0x00, 1)]);
        // Module: u16 + Str(4) + 3 * Guid(4).
        assert_eq!(row_size(0x00, &rows, HEAP_STRINGS_4 | HEAP_GUID_4), Some(18));
        // Assembly: 16 fixed + Blob(4) + 2 * Str(4).
        assert_eq!(row_size(0x20, &rows, HEAP_STRINGS_4 | HEAP_GUID_4 | HEAP_BLOB_4), Some(28));
        // Only the blob heap wide: 16 + 4 + 2 + 2.
        assert_eq!(row_size(0x20, &rows, HEAP_BLOB_4), Some(24));
    }

    #[test]
    fn simple_index_threshold_is_two_to_the_sixteen() {
        let below = rows_with(&[(0x04, 0xFFFF), (0x06, 0xFFFF)]);
        let at = rows_with(&[(0x04, 0x1_0000), (0x06, 0xFFFF)]);
        assert_eq!(row_size(0x02, &below, 0), Some(14));
        // TypeDef.FieldList goes to 4 bytes; Extends (TypeDefOrRef) is unaffected by Field.
        assert_eq!(row_size(0x02, &at, 0), Some(16));
        assert_eq!(row_size(0x03, &at, 0), Some(4)); // FieldPtr
        assert_eq!(row_size(0x05, &at, 0), Some(2)); // MethodPtr
    }

    #[test]
    fn coded_index_thresholds_follow_tag_bits() {
        // TypeDefOrRef (2 bits): 2 bytes below 2^14 rows in TypeDef/TypeRef/TypeSpec.
        let r = rows_with(&[(0x1B, (1 << 14) - 1)]);
        assert_eq!(col_size(TYPE_DEF_OR_REF, &r, 0), 2);
        let r = rows_with(&[(0x1B, 1 << 14)]);
        assert_eq!(col_size(TYPE_DEF_OR_REF, &r, 0), 4);
        // InterfaceImpl = Table(TypeDef) + TypeDefOrRef.
        assert_eq!(row_size(0x09, &r, 0), Some(6));

        // HasCustomAttribute (5 bits): 2^11 rows in any target (here Assembly, a late table) widens it.
        let hca = Col::Coded(Coded::HasCustomAttribute);
        assert_eq!(col_size(hca, &rows_with(&[(0x20, (1 << 11) - 1)]), 0), 2);
        assert_eq!(col_size(hca, &rows_with(&[(0x20, 1 << 11)]), 0), 4);
        assert_eq!(col_size(hca, &rows_with(&[(0x2B, 1 << 11)]), 0), 4);
        // CustomAttribute: Parent(4) + Type(2) + Blob(2).
        assert_eq!(row_size(0x0C, &rows_with(&[(0x2B, 1 << 11)]), 0), Some(8));

        // MemberRefParent and CustomAttributeType (3 bits): 2^13.
        let mrp = Col::Coded(Coded::MemberRefParent);
        assert_eq!(col_size(mrp, &rows_with(&[(0x1A, (1 << 13) - 1)]), 0), 2);
        assert_eq!(col_size(mrp, &rows_with(&[(0x1A, 1 << 13)]), 0), 4);
        let cat = Col::Coded(Coded::CustomAttributeType);
        assert_eq!(col_size(cat, &rows_with(&[(0x0A, 1 << 13)]), 0), 4);
        assert_eq!(col_size(cat, &rows_with(&[(0x01, 1 << 15)]), 0), 2); // TypeRef is not a target

        // One-bit indexes: 2^15.
        let mdor = METHOD_DEF_OR_REF;
        assert_eq!(col_size(mdor, &rows_with(&[(0x06, (1 << 15) - 1)]), 0), 2);
        assert_eq!(col_size(mdor, &rows_with(&[(0x06, 1 << 15)]), 0), 4);
        // MethodImpl: TypeDef(2) + 2 * MethodDefOrRef(4).
        assert_eq!(row_size(0x19, &rows_with(&[(0x0A, 1 << 15)]), 0), Some(10));

        // ResolutionScope (2 bits) reaches AssemblyRef.
        let rs = Col::Coded(Coded::ResolutionScope);
        assert_eq!(col_size(rs, &rows_with(&[(0x23, 1 << 14)]), 0), 4);
        // Absurd counts never overflow.
        assert_eq!(col_size(rs, &rows_with(&[(0x23, u32::MAX)]), 0), 4);
    }

    #[test]
    fn every_schema_has_the_column_count_of_ecma_335() {
        let counts: [usize; 0x2D] = [
            5, 3, 6, 1, 3, 1, 6, 1, 3, 2, 3, 3, 3, 2, 3, 3, 2, 1, 2, 1, 3, 2, 1, 3, 3, 3, 1, 1, 4, 2, 2, 1, 9, 1, 3, 9,
            2, 4, 3, 5, 4, 2, 4, 2, 2,
        ];
        for (t, s) in SCHEMAS.iter().enumerate() {
            assert_eq!(s.len(), counts[t], "table {t:#x}");
        }
    }

    #[test]
    fn parses_module_and_assembly_past_other_tables() {
        let tables = sample_tables();
        let md = metadata_root(b"v4.0.30319", &[("#~", &tables), ("#Strings", STRINGS), ("#US", b"\0")]);
        let mut anomalies = Vec::new();
        let m = parse_metadata(&md, &mut anomalies);
        assert!(anomalies.is_empty(), "{anomalies:?}");
        assert_eq!(m.version.as_deref(), Some("v4.0.30319"));
        assert_eq!(m.module_name.as_deref(), Some("Demo.dll"));
        assert_eq!(m.assembly_name.as_deref(), Some("Demo"));
        assert_eq!(m.assembly_version.as_deref(), Some("1.2.3.4"));
    }

    #[test]
    fn uncompressed_stream_with_pointer_tables_and_extra_data() {
        // `#-` with MethodPtr (0x05) between TypeDef and MethodDef, and the ExtraData word after the counts.
        let mut body = Vec::new();
        for v in [0u16, 1, 1, 0, 0] {
            body.extend_from_slice(&v.to_le_bytes()); // Module
        }
        body.extend_from_slice(&[0u8; 14]); // TypeDef x1
        body.extend_from_slice(&[1, 0, 2, 0]); // MethodPtr x2
        body.extend_from_slice(&[0u8; 14]); // MethodDef x1
        body.extend_from_slice(&0u32.to_le_bytes());
        for v in [9u16, 8, 7, 6] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        body.extend_from_slice(&0u32.to_le_bytes());
        for v in [0u16, 10, 0] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        let valid = VALID_MODULE | VALID_TYPEDEF | (1 << 0x05) | VALID_METHODDEF | VALID_ASSEMBLY;
        let mut extra = 0xDEAD_BEEFu32.to_le_bytes().to_vec();
        extra.extend_from_slice(&body);
        let tables = table_stream(HEAP_EXTRA_DATA, valid, &[1, 1, 2, 1, 1], &extra);
        let md = metadata_root(b"v2.0.50727", &[("#Strings", STRINGS), ("#-", &tables)]);
        let mut anomalies = Vec::new();
        let m = parse_metadata(&md, &mut anomalies);
        assert!(anomalies.is_empty(), "{anomalies:?}");
        assert_eq!(m.assembly_version.as_deref(), Some("9.8.7.6"));
        assert_eq!(m.assembly_name.as_deref(), Some("Demo"));
        assert_eq!(m.module_name.as_deref(), Some("Demo.dll"));
    }

    #[test]
    fn four_byte_string_indexes() {
        let mut body = Vec::new();
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&1u32.to_le_bytes()); // Module.Name
        body.extend_from_slice(&[0u8; 6]); // Guids
        body.extend_from_slice(&[0u8; 16]); // Assembly fixed part
        body.extend_from_slice(&0u16.to_le_bytes()); // PublicKey
        body.extend_from_slice(&10u32.to_le_bytes()); // Name
        body.extend_from_slice(&0u32.to_le_bytes()); // Culture
        let tables = table_stream(HEAP_STRINGS_4, VALID_MODULE | VALID_ASSEMBLY, &[1, 1], &body);
        let md = metadata_root(b"v4.0.30319", &[("#~", &tables), ("#Strings", STRINGS)]);
        let mut anomalies = Vec::new();
        let m = parse_metadata(&md, &mut anomalies);
        assert!(anomalies.is_empty(), "{anomalies:?}");
        assert_eq!(m.module_name.as_deref(), Some("Demo.dll"));
        assert_eq!(m.assembly_name.as_deref(), Some("Demo"));
    }

    #[test]
    fn truncated_root_is_an_anomaly() {
        let md = metadata_root(b"v4.0.30319", &[("#~", &sample_tables()), ("#Strings", STRINGS)]);
        for len in [0, 3, 4, 12, 15, 20, 33, 40] {
            let mut anomalies = Vec::new();
            let m = parse_metadata(&md[..len], &mut anomalies);
            assert!(!anomalies.is_empty(), "len {len}");
            assert!(ids(&anomalies).iter().all(|&id| id == ANOMALY_ID));
            assert_eq!(m.assembly_name, None);
        }
        // Every prefix: never a panic.
        for len in 0..md.len() {
            let mut anomalies = Vec::new();
            let _ = parse_metadata(&md[..len], &mut anomalies);
        }
    }

    #[test]
    fn wrong_signature_is_an_anomaly() {
        let mut md = metadata_root(b"v4.0.30319", &[("#~", &sample_tables()), ("#Strings", STRINGS)]);
        md[0] = b'X';
        let mut anomalies = Vec::new();
        assert_eq!(parse_metadata(&md, &mut anomalies), Metadata::default());
        assert_eq!(ids(&anomalies), [ANOMALY_ID]);
    }

    #[test]
    fn huge_version_length_keeps_the_version() {
        let mut md = metadata_root(b"v4.0.30319", &[("#~", &sample_tables()), ("#Strings", STRINGS)]);
        md[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut anomalies = Vec::new();
        let m = parse_metadata(&md, &mut anomalies);
        assert_eq!(m.version.as_deref(), Some("v4.0.30319"));
        assert_eq!(m.assembly_name, None);
        assert_eq!(ids(&anomalies), [ANOMALY_ID]);
    }

    #[test]
    fn stream_offsets_past_the_end() {
        let tables = sample_tables();
        let md = metadata_root(b"v4.0.30319", &[("#~", &tables), ("#Strings", STRINGS)]);
        // The first stream header starts at 16 + 12 + 4 = 32: point #~ far past the end.
        let mut bad = md.clone();
        bad[32..36].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        let mut anomalies = Vec::new();
        let m = parse_metadata(&bad, &mut anomalies);
        assert_eq!(m.version.as_deref(), Some("v4.0.30319"));
        assert_eq!(m.assembly_name, None);
        assert!(anomalies.len() >= 2, "{anomalies:?}");
        // A size that overruns: the stream is clipped, reported, and still read.
        let mut long = md.clone();
        long[36..40].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut anomalies = Vec::new();
        let m = parse_metadata(&long, &mut anomalies);
        assert_eq!(m.assembly_name.as_deref(), Some("Demo"));
        assert_eq!(ids(&anomalies), [ANOMALY_ID]);
        // A stream count far above what is there.
        let mut many = md.clone();
        many[30..32].copy_from_slice(&u16::MAX.to_le_bytes());
        let mut anomalies = Vec::new();
        let m = parse_metadata(&many, &mut anomalies);
        assert_eq!(m.assembly_name.as_deref(), Some("Demo"));
        assert!(!anomalies.is_empty());
    }

    #[test]
    fn absurd_row_counts_stop_at_the_table() {
        let tables = sample_tables();
        // Row counts start at 24: Module, TypeDef, MethodDef, Assembly. Give MethodDef 2^32-1 rows.
        let mut bad = tables.clone();
        bad[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
        let md = metadata_root(b"v4.0.30319", &[("#~", &bad), ("#Strings", STRINGS)]);
        let mut anomalies = Vec::new();
        let m = parse_metadata(&md, &mut anomalies);
        // Module precedes the bad table and is still read; Assembly is not.
        assert_eq!(m.module_name.as_deref(), Some("Demo.dll"));
        assert_eq!(m.assembly_name, None);
        assert_eq!(ids(&anomalies), [ANOMALY_ID]);
        // Every Valid bit set with absurd counts.
        let counts = [u32::MAX; 64];
        let all = table_stream(0xFF, u64::MAX, &counts, &[]);
        let mut anomalies = Vec::new();
        let t = Tables::parse(&all, &mut anomalies).expect("header readable");
        assert_eq!(t.row(TABLE_MODULE, 0), None);
        assert_eq!(ids(&anomalies), [ANOMALY_ID]);
    }

    #[test]
    fn bad_string_index_and_missing_heaps() {
        let mut tables = sample_tables();
        // Module.Name is at 24 + 16 + 2.
        tables[42..44].copy_from_slice(&0xFFFFu16.to_le_bytes());
        let md = metadata_root(b"v4.0.30319", &[("#~", &tables), ("#Strings", STRINGS)]);
        let mut anomalies = Vec::new();
        let m = parse_metadata(&md, &mut anomalies);
        assert_eq!(m.module_name, None);
        assert_eq!(m.assembly_name.as_deref(), Some("Demo"));
        assert_eq!(ids(&anomalies), [ANOMALY_ID]);

        let md = metadata_root(b"v4.0.30319", &[("#~", &sample_tables())]);
        let mut anomalies = Vec::new();
        let m = parse_metadata(&md, &mut anomalies);
        assert_eq!(m.assembly_version.as_deref(), Some("1.2.3.4"));
        assert_eq!(m.assembly_name, None);
        assert_eq!(ids(&anomalies), [ANOMALY_ID]);

        let md = metadata_root(b"v4.0.30319", &[("#Strings", STRINGS)]);
        let mut anomalies = Vec::new();
        let m = parse_metadata(&md, &mut anomalies);
        assert_eq!(m.version.as_deref(), Some("v4.0.30319"));
        assert_eq!(ids(&anomalies), [ANOMALY_ID]);
    }

    #[test]
    fn unterminated_strings_are_capped() {
        let long = vec![b'A'; 5000];
        assert_eq!(heap_string(&long, 0).map(|s| s.len()), Some(STRING_CAP));
        assert_eq!(heap_string(&long, 5000).as_deref(), Some(""));
        assert_eq!(heap_string(&long, 5001), None);
        assert_eq!(heap_string(&long, u32::MAX), None);
    }

    #[test]
    fn duplicate_streams_keep_the_first() {
        let other = b"\0Other\0";
        let md = metadata_root(b"v4.0.30319", &[("#~", &sample_tables()), ("#Strings", STRINGS), ("#Strings", other)]);
        let mut anomalies = Vec::new();
        let m = parse_metadata(&md, &mut anomalies);
        assert_eq!(m.module_name.as_deref(), Some("Demo.dll"));
        assert_eq!(ids(&anomalies), [ANOMALY_ID]);
    }

    #[test]
    fn many_duplicate_streams_give_few_anomalies() {
        let tables = sample_tables();
        let mut streams: Vec<(&str, &[u8])> = vec![("#Strings", STRINGS)];
        streams.extend(std::iter::repeat_n(("#~", tables.as_slice()), 1000));
        let md = metadata_root(b"v4.0.30319", &streams);
        let mut anomalies = Vec::new();
        let m = parse_metadata(&md, &mut anomalies);
        assert_eq!(m.assembly_name.as_deref(), Some("Demo"));
        assert_eq!(anomalies.len(), MAX_STREAM_ANOMALIES + 1);
        assert!(anomalies[MAX_STREAM_ANOMALIES].message.starts_with("995 more"));
    }
}

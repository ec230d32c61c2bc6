//! Conformance: `filerep check --json` on every corpus file against the oracle values in
//! `tests/data/corpus/expected/` (pefile, LIEF, signify, py-tlsh, ppdeep…; see that directory's README).
//!
//! The comparison is a port of the team's `compare.py`: the same field groups, the same paths into the report,
//! the same rules (machine-name aliases, a section name may be the `objdump` resolution of a COFF long name,
//! imphash `""` equals null, TLSH `TNULL` equals null, `pe` is compared only when pefile parsed the file, the
//! authentihash only when the oracle tools agreed on one, `elf` only when LIEF parsed an ELF file) and the same
//! float tolerance (1e-6). Every mismatch of every file is collected and the test fails once, at the end, with
//! the whole list and a tally per group. A panic or a run longer than 30 s fails too.
//!
//! The corpus itself is not in the repository: `scripts/fetch-corpus` downloads it into
//! `$FILEREP_CORPUS` (default `~/.cache/filerep/corpus`). Without it the test passes after saying it skipped,
//! unless `FILEREP_REQUIRE_CORPUS=1` (as in `scripts/test` and CI), where a missing corpus or a missing or
//! altered corpus file is a failure.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support;

/// A run longer than this is a hang: the process is killed and the file reported.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// Held by the conformance and mutation tests while they run: both keep every core busy, and run side by side
/// in a debug build they would slow each other down towards their hang guards.
pub static HEAVY_TEST: Mutex<()> = Mutex::new(());

/// Floats (entropies) are equal when they differ by less than this (compare.py `feq`).
const FLOAT_TOLERANCE: f64 = 1e-6;

// ------------------------------------------------------------------------------------------ the corpus

/// `tests/data/corpus` in the source tree: the manifest and the expected values.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("data").join("corpus")
}

/// One row of `manifest.tsv`.
#[derive(Debug, Clone)]
pub struct ManifestRow {
    /// File name in the corpus directory.
    pub name: String,
    /// SHA-256 of the file.
    pub sha256: String,
}

/// The rows of `tests/data/corpus/manifest.tsv`, in order.
pub fn manifest() -> Vec<ManifestRow> {
    let path = data_dir().join("manifest.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 10, "manifest row with {} columns instead of 10: {l}", cols.len());
            ManifestRow { name: cols[0].to_string(), sha256: cols[9].to_string() }
        })
        .collect()
}

/// Where the corpus is expected: `$FILEREP_CORPUS`, else `$HOME/.cache/filerep/corpus`.
pub fn corpus_location() -> PathBuf {
    match std::env::var_os("FILEREP_CORPUS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
            home.join(".cache").join("filerep").join("corpus")
        }
    }
}

/// The corpus directory, when it exists and holds at least one (non-hidden) file.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = corpus_location();
    let entries = std::fs::read_dir(&dir).ok()?;
    let has_file = entries.flatten().any(|e| !e.file_name().to_string_lossy().starts_with('.'));
    has_file.then_some(dir)
}

/// The corpus for a test that needs it; `None` (after saying so on stderr) when it is not fetched, and a
/// failure instead when `FILEREP_REQUIRE_CORPUS=1`.
#[allow(clippy::print_stderr)] // a skip has to be visible somewhere
pub fn corpus_or_skip() -> Option<PathBuf> {
    let dir = corpus_dir();
    if dir.is_none() {
        assert!(
            !corpus_required(),
            "corpus required but not found: run scripts/fetch-corpus (looked in {})",
            corpus_location().display()
        );
        eprintln!("skipped: corpus not fetched ({}): run scripts/fetch-corpus", corpus_location().display());
    }
    dir
}

/// The expected documents of the corpus files that are present, by file name.
pub fn corpus_documents(corpus: &Path) -> Vec<(String, Value)> {
    expected_documents()
        .into_iter()
        .filter_map(|(_, doc)| {
            let name = doc["name"].as_str()?.to_string();
            corpus.join(&name).is_file().then_some((name, doc))
        })
        .collect()
}

/// `FILEREP_REQUIRE_CORPUS=1`: a missing corpus is a failure, not a skip.
pub fn corpus_required() -> bool {
    std::env::var("FILEREP_REQUIRE_CORPUS").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// The expected documents, `(file name of the JSON, document)`, sorted by file name as compare.py reads them.
pub fn expected_documents() -> Vec<(String, Value)> {
    let dir = data_dir().join("expected");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let path = dir.join(&n);
            let text = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let doc: Value =
                serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            (n, doc)
        })
        .collect()
}

// ------------------------------------------------------------------------- compare.py's value semantics

static NULL: Value = Value::Null;

/// `get(d, "a.b.c")`: the value at a dotted path, null when any step is missing or not an object.
fn get<'a>(v: &'a Value, path: &str) -> &'a Value {
    let mut cur = v;
    for part in path.split('.') {
        match cur.get(part) {
            Some(next) if cur.is_object() => cur = next,
            _ => return &NULL,
        }
    }
    cur
}

/// `d.get(key)` on something that may not be an object.
fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    if v.is_object() { v.get(key).unwrap_or(&NULL) } else { &NULL }
}

/// Python truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// A number as Python sees it (`True == 1`); integers stay exact.
enum Num {
    Int(i128),
    Float(f64),
}

fn as_num(v: &Value) -> Option<Num> {
    match v {
        Value::Bool(b) => Some(Num::Int(i128::from(*b))),
        Value::Number(n) => Some(if let Some(i) = n.as_i64() {
            Num::Int(i128::from(i))
        } else if let Some(u) = n.as_u64() {
            Num::Int(i128::from(u))
        } else {
            Num::Float(n.as_f64().unwrap_or(f64::NAN))
        }),
        _ => None,
    }
}

/// Python `==` on JSON values: numbers compare by value (`1 == 1.0 == True`), containers element-wise.
fn py_eq(a: &Value, b: &Value) -> bool {
    if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
        return match (x, y) {
            (Num::Int(x), Num::Int(y)) => x == y,
            (Num::Int(x), Num::Float(y)) | (Num::Float(y), Num::Int(x)) => x as f64 == y,
            (Num::Float(x), Num::Float(y)) => x == y,
        };
    }
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, p)| y.get(k).is_some_and(|q| py_eq(p, q)))
        }
        _ => false,
    }
}

/// compare.py `feq`: `got` is a number (not a bool) within the tolerance of `want`.
fn feq(want: &Value, got: &Value) -> bool {
    match (want.as_f64(), got) {
        (Some(w), Value::Number(g)) => g.as_f64().is_some_and(|g| (w - g).abs() < FLOAT_TOLERANCE),
        _ => false,
    }
}

fn lower_or_none(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.to_lowercase()),
        other => other.clone(),
    }
}

fn is_emptyish(v: &Value) -> bool {
    matches!(v, Value::Null) || matches!(v.as_str(), Some("" | "TNULL"))
}

/// compare.py `empty_or`: null, `""` and `TNULL` are all "no value"; otherwise equal ignoring case.
fn empty_or(want: &Value, got: &Value) -> bool {
    if is_emptyish(want) {
        is_emptyish(got)
    } else {
        match (want.as_str(), got.as_str()) {
            (Some(w), Some(g)) => w.to_lowercase() == g.to_lowercase(),
            _ => false,
        }
    }
}

/// Names a PE machine goes by, keyed as pefile's `IMAGE_FILE_MACHINE_*` suffix in lower case.
fn machine_aliases(key: &str) -> Option<&'static [&'static str]> {
    Some(match key {
        "amd64" => &["amd64", "x86_64", "x86-64", "x64"],
        "i386" => &["i386", "x86", "i686", "intel386"],
        "arm64" => &["arm64", "aarch64"],
        "armnt" => &["armnt", "arm", "armv7", "thumb2"],
        _ => return None,
    })
}

fn machine_eq(want: &Value, got: &Value) -> bool {
    let (Some(want), Some(got)) = (want.as_str(), got.as_str()) else { return false };
    let key = want.replace("IMAGE_FILE_MACHINE_", "").to_lowercase();
    let got = got.to_lowercase();
    match machine_aliases(&key) {
        Some(names) => names.contains(&got.as_str()),
        None => got == key,
    }
}

/// LIEF's ELF machine names and what filerep may call them.
fn elf_machine_eq(want: &Value, got: &Value) -> bool {
    let (Some(want), Some(got)) = (want.as_str(), got.as_str()) else { return false };
    let got = got.to_lowercase();
    let key = match want {
        "X86_64" => "amd64",
        "AARCH64" => "arm64",
        "I386" | "386" => "i386",
        other => return got == other.to_lowercase(),
    };
    machine_aliases(key).is_some_and(|names| names.contains(&got.as_str()))
}

/// Python's `f"{x}"` of a JSON scalar (for `#{ordinal}`).
fn py_str(v: &Value) -> String {
    match v {
        Value::Null => "None".to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `fn.get("name") or f"#{fn.get('ordinal')}"`.
fn name_or_ordinal(f: &Value) -> String {
    let name = field(f, "name");
    if truthy(name) { py_str(name) } else { format!("#{}", py_str(field(f, "ordinal"))) }
}

/// A value as the failure list shows it: strings quoted, other values as compact JSON, long ones cut.
fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if s.chars().count() <= 120 { s } else { format!("{}...", s.chars().take(117).collect::<String>()) }
}

// ---------------------------------------------------------------------------------------------- tally

#[derive(Debug)]
struct Mismatch {
    group: &'static str,
    file: String,
    field: String,
    want: String,
    got: String,
}

#[derive(Default)]
struct Tally {
    /// group → (equal, compared)
    groups: BTreeMap<&'static str, (usize, usize)>,
    mismatches: Vec<Mismatch>,
}

impl Tally {
    fn check(
        &mut self,
        group: &'static str,
        file: &str,
        field: &str,
        want: &Value,
        got: &Value,
        equal: impl Fn(&Value, &Value) -> bool,
    ) {
        let entry = self.groups.entry(group).or_default();
        entry.1 += 1;
        if equal(want, got) {
            entry.0 += 1;
        } else {
            self.mismatches.push(Mismatch {
                group,
                file: file.to_string(),
                field: field.to_string(),
                want: short(want),
                got: short(got),
            });
        }
    }

    /// One check over two sets (imports, exports): equal as sets; a mismatch lists what each side lacks.
    fn sets<T: Ord + std::fmt::Debug>(
        &mut self,
        group: &'static str,
        file: &str,
        field: &str,
        want: &BTreeSet<T>,
        got: &BTreeSet<T>,
    ) {
        let entry = self.groups.entry(group).or_default();
        entry.1 += 1;
        if want == got {
            entry.0 += 1;
            return;
        }
        let some = |a: &BTreeSet<T>, b: &BTreeSet<T>| {
            let diff: Vec<&T> = a.difference(b).collect();
            let shown: Vec<&&T> = diff.iter().take(4).collect();
            format!("{} ({} not in the other, e.g. {shown:?})", a.len(), diff.len())
        };
        self.mismatches.push(Mismatch {
            group,
            file: file.to_string(),
            field: field.to_string(),
            want: some(want, got),
            got: some(got, want),
        });
    }

    fn eq(&mut self, group: &'static str, file: &str, field: &str, want: &Value, got: &Value) {
        self.check(group, file, field, want, got, py_eq);
    }

    fn totals(&self) -> (usize, usize) {
        self.groups.values().fold((0, 0), |(a, b), (ok, n)| (a + ok, b + n))
    }
}

// ------------------------------------------------------------------------------------ the comparison

/// compare.py `compare`: one file's report against its expected document.
fn compare(name: &str, exp: &Value, rep: &Value, t: &mut Tally) {
    let f = field(exp, "file");
    t.eq("file", name, "size", field(f, "size"), field(rep, "size"));
    for h in ["md5", "sha1", "sha256"] {
        t.eq("digests", name, h, field(f, h), &lower_or_none(get(rep, &format!("hashes.{h}"))));
    }
    t.check("entropy", name, "entropy", field(f, "entropy"), field(rep, "entropy"), feq);
    if !field(f, "tlsh").is_null() {
        t.check("fuzzy", name, "tlsh", field(f, "tlsh"), get(rep, "hashes.tlsh"), empty_or);
    }
    if !field(f, "ssdeep").is_null() {
        t.eq("fuzzy", name, "ssdeep", field(f, "ssdeep"), get(rep, "hashes.ssdeep"));
    }
    let fmt = field(f, "format").as_str().unwrap_or("");
    let want_fmt = if fmt == "macho-fat" { "macho" } else { fmt };
    if matches!(want_fmt, "pe" | "elf" | "macho") {
        t.check(
            "file",
            name,
            "format",
            &json!(want_fmt),
            field(rep, "format"),
            |w, g| matches!((w.as_str(), g.as_str()), (Some(w), Some(g)) if g.starts_with(w)),
        );
    }

    let mut pe = field(exp, "pe");
    if truthy(pe) && pe.get("error").is_some() {
        pe = &NULL; // pefile refused the file too: only the file-level fields are compared
    }
    let p = field(rep, "pe");
    if truthy(pe) && !p.is_null() {
        compare_pe(name, exp, pe, rep, p, t);
    } else if truthy(pe) {
        t.eq("pe-header", name, "pe section present", &json!(true), &json!(false));
    }

    let elf = field(exp, "elf");
    if truthy(elf) && truthy(field(elf, "parsed_by_lief")) && fmt == "elf" {
        let e = if truthy(field(rep, "elf")) { field(rep, "elf") } else { &NULL };
        t.check("elf", name, "machine", field(elf, "machine"), field(e, "machine"), elf_machine_eq);
        for (key, aliases) in
            [("pie", &["pie"][..]), ("nx_stack", &["nx_stack", "nx"][..]), ("canary", &["canary"][..])]
        {
            let got = aliases.iter().find_map(|a| e.get(a)).unwrap_or(&NULL);
            t.eq("elf", name, key, field(elf, key), got);
        }
        t.check("elf", name, "relro", field(elf, "relro"), field(e, "relro"), |w, g| {
            let w = w.as_str().filter(|s| !s.is_empty()).unwrap_or("none").to_lowercase();
            g.as_str().is_some_and(|g| g.to_lowercase() == w)
        });
        let sorted = |v: &Value| {
            let mut items: Vec<Value> = v.as_array().cloned().unwrap_or_default();
            items.sort_by_key(|x| x.to_string());
            Value::Array(items)
        };
        t.eq("elf", name, "needed", &sorted(field(elf, "needed")), &sorted(field(e, "needed")));
    }
}

fn compare_pe(name: &str, exp: &Value, pe: &Value, rep: &Value, p: &Value, t: &mut Tally) {
    t.check("pe-header", name, "machine", get(pe, "machine.name"), field(p, "machine"), machine_eq);
    t.eq("pe-header", name, "magic", field(pe, "magic"), field(p, "magic"));
    t.eq("pe-header", name, "is_dll", field(pe, "is_dll"), field(p, "is_dll"));
    t.eq("pe-header", name, "timestamp", get(pe, "timestamp.value"), field(p, "timestamp"));
    t.eq("pe-header", name, "entry_point", field(pe, "entry_point_rva"), field(p, "entry_point"));
    t.eq("pe-header", name, "image_base", field(pe, "image_base"), field(p, "image_base"));
    if truthy(field(pe, "checksum")) {
        t.eq("pe-header", name, "checksum.header", get(pe, "checksum.header"), get(p, "checksum.header"));
        t.eq("pe-header", name, "checksum.computed", get(pe, "checksum.computed"), get(p, "checksum.computed"));
    }
    let dc = field(pe, "dll_characteristics");
    for (key, src) in [
        ("aslr", "aslr_dynamic_base"),
        ("high_entropy_va", "high_entropy_va"),
        ("nx", "nx_compat"),
        ("cfg", "guard_cf"),
        ("no_seh", "no_seh"),
        ("force_integrity", "force_integrity"),
    ] {
        t.eq("mitigations", name, key, field(dc, src), get(p, &format!("mitigations.{key}")));
    }

    let empty = Vec::new();
    let want_secs = field(pe, "sections").as_array().unwrap_or(&empty);
    let secs = field(p, "sections").as_array().unwrap_or(&empty);
    t.eq("sections", name, "section count", &json!(want_secs.len()), &json!(secs.len()));
    for (i, s) in want_secs.iter().enumerate() {
        let g = secs.get(i).unwrap_or(&NULL);
        let mut names = vec![field(s, "name").clone()];
        if truthy(field(s, "objdump_name")) {
            names.push(field(s, "objdump_name").clone());
        }
        t.check("sections", name, &format!("section[{i}].name"), field(s, "name"), field(g, "name"), |_, got| {
            names.iter().any(|n| py_eq(n, got))
        });
        for key in ["virtual_size", "raw_size"] {
            t.eq("sections", name, &format!("section[{i}].{key}"), field(s, key), field(g, key));
        }
        t.check("sections", name, &format!("section[{i}].entropy"), field(s, "entropy"), field(g, "entropy"), feq);
    }

    if !field(pe, "imphash").is_null() {
        t.check("imphash", name, "imphash", field(pe, "imphash"), get(rep, "hashes.imphash"), empty_or);
    }

    let mut want_imp = BTreeSet::new();
    for imp in field(pe, "imports").as_array().unwrap_or(&empty) {
        let dll = field(imp, "dll").as_str().unwrap_or("").to_lowercase();
        for f in field(imp, "functions").as_array().unwrap_or(&empty) {
            want_imp.insert((dll.clone(), name_or_ordinal(f)));
        }
    }
    let mut got_imp = BTreeSet::new();
    for imp in field(p, "imports").as_array().unwrap_or(&empty) {
        let lib = [field(imp, "library"), field(imp, "dll")].into_iter().find(|v| truthy(v)).unwrap_or(&NULL);
        let lib = lib.as_str().unwrap_or("").to_lowercase();
        let functions = field(imp, "functions");
        for f in functions.as_array().filter(|_| truthy(functions)).unwrap_or(&empty) {
            let fname = if let Some(s) = f.as_str() { s.to_string() } else { name_or_ordinal(f) };
            got_imp.insert((lib.clone(), fname));
        }
    }
    t.sets("imports", name, "import set (dll, function)", &want_imp, &got_imp);

    let want_exp: BTreeSet<String> = field(field(pe, "exports"), "symbols")
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .filter(|e| truthy(field(e, "name")))
        .map(|e| py_str(field(e, "name")))
        .collect();
    let got_exp: BTreeSet<String> = field(p, "exports")
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|e| if e.is_object() { field(e, "name") } else { e })
        .filter(|n| !n.is_null())
        .map(py_str)
        .collect();
    t.sets("exports", name, "export names", &want_exp, &got_exp);

    let rh = field(pe, "rich_header");
    if truthy(rh) && truthy(field(rh, "hash_md5")) {
        t.eq(
            "rich",
            name,
            "rich_header_md5",
            field(rh, "hash_md5"),
            &lower_or_none(get(rep, "hashes.rich_header_md5")),
        );
    }

    let strings = field(field(pe, "version_info"), "strings");
    for (src, key) in [
        ("CompanyName", "company_name"),
        ("FileDescription", "file_description"),
        ("FileVersion", "file_version"),
        ("InternalName", "internal_name"),
        ("LegalCopyright", "legal_copyright"),
        ("OriginalFilename", "original_filename"),
        ("ProductName", "product_name"),
        ("ProductVersion", "product_version"),
    ] {
        if let Some(want) = strings.get(src).filter(|_| strings.is_object()) {
            t.eq("version-info", name, key, want, get(p, &format!("version_info.{key}")));
        }
    }

    // `p.get("dotnet") not in (None, False)`: Python's `in` uses `==`, so 0 counts as False too.
    let dotnet = field(p, "dotnet");
    let has_dotnet = !(dotnet.is_null() || py_eq(dotnet, &json!(false)));
    t.eq("dotnet", name, "dotnet", &json!(truthy(field(pe, "clr_present"))), &json!(has_dotnet));

    let ov = field(pe, "overlay");
    if truthy(ov) {
        t.eq("overlay", name, "overlay.offset", field(ov, "offset"), get(p, "overlay.offset"));
        t.eq("overlay", name, "overlay.size", field(ov, "size"), get(p, "overlay.size"));
    }

    let ah = get(exp, "authenticode.authentihash");
    for h in ["sha1", "sha256"] {
        let want = field(ah, h);
        if truthy(want) {
            let got = lower_or_none(get(rep, &format!("hashes.authentihash_{h}")));
            t.eq("authentihash", name, &format!("authentihash_{h}"), want, &got);
        }
    }
}

// ------------------------------------------------------------------------------------ running filerep

enum Outcome {
    /// `reports[0]` of the JSON document (an empty object when there was no usable JSON).
    Report(Value),
    /// No usable JSON: why, and the start of stderr.
    NoJson(Value, String),
    Panic(String),
    Hang,
}

fn run_filerep(dir: &Path, file: &Path) -> Outcome {
    let started = Instant::now();
    let out = support::filerep(dir)
        .arg("check")
        .arg("--json")
        .arg(file)
        .timeout(RUN_TIMEOUT)
        .output()
        .expect("filerep can be started");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if started.elapsed() >= RUN_TIMEOUT {
        return Outcome::Hang;
    }
    let code = out.status.code();
    if code == Some(101) || code.is_none() || stderr.contains("panicked at") {
        let how = code.map_or_else(|| format!("killed: {}", out.status), |c| format!("exit {c}"));
        let first = stderr.lines().find(|l| l.contains("panicked at")).unwrap_or("");
        return Outcome::Panic(format!("{how} {first}"));
    }
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    match doc.get("reports").and_then(|r| r.get(0)) {
        Some(rep) if rep.is_object() => Outcome::Report(rep.clone()),
        _ => {
            let head: String = stderr.chars().take(160).collect();
            Outcome::NoJson(json!({}), format!("exit {}, no usable JSON; stderr: {}", code.unwrap_or(-1), head.trim()))
        }
    }
}

/// Run `filerep check --json` on each file on a few threads; results in the order given.
fn run_all(files: &[PathBuf]) -> Vec<Outcome> {
    let dir = tempfile::tempdir().expect("temp dir");
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new(files.iter().map(|_| None).collect());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(file) = files.get(i) else { break };
                    let outcome = run_filerep(dir.path(), file);
                    results.lock().unwrap()[i] = Some(outcome);
                }
            });
        }
    });
    results.into_inner().unwrap().into_iter().map(|o| o.expect("every file was run")).collect()
}

// ------------------------------------------------------------------------------------------- the tests

/// The manifest and the expected values in the repository agree with each other (no corpus needed).
#[test]
fn corpus_manifest_and_expected_values_agree() {
    let rows = manifest();
    let by_name: BTreeMap<&str, &ManifestRow> = rows.iter().map(|r| (r.name.as_str(), r)).collect();
    assert_eq!(by_name.len(), rows.len(), "duplicate names in manifest.tsv");
    let docs = expected_documents();
    let mut seen = BTreeSet::new();
    for (json_name, doc) in &docs {
        let name = doc["name"].as_str().unwrap_or_else(|| panic!("{json_name}: no \"name\""));
        assert_eq!(format!("{name}.json"), *json_name, "expected file named after its corpus file");
        let row = by_name.get(name).unwrap_or_else(|| panic!("{json_name}: {name} is not in manifest.tsv"));
        assert_eq!(doc["file"]["sha256"].as_str(), Some(row.sha256.as_str()), "{name}: sha256 differs from manifest");
        seen.insert(name);
    }
    let unmatched: Vec<&str> = by_name.keys().filter(|n| !seen.contains(*n)).copied().collect();
    assert!(unmatched.is_empty(), "manifest rows without expected/<name>.json: {unmatched:?}");
}

#[test]
#[allow(clippy::print_stderr)] // prints the agreement summary
fn corpus_matches_the_oracle() {
    let Some(corpus) = corpus_or_skip() else { return };

    // Every manifest file, byte for byte: a stale or damaged corpus would show up as wrong digests.
    let mut problems = Vec::new();
    for row in manifest() {
        let path = corpus.join(&row.name);
        match std::fs::read(&path) {
            Ok(data) if sha256_hex(&data) != row.sha256 => {
                problems.push(format!("{}: SHA-256 differs from manifest.tsv (re-run scripts/fetch-corpus)", row.name))
            }
            Ok(_) => {}
            Err(_) if corpus_required() => problems.push(format!("{}: missing from {}", row.name, corpus.display())),
            Err(_) => {}
        }
    }

    let docs = corpus_documents(&corpus);
    let files: Vec<PathBuf> = docs.iter().map(|(n, _)| corpus.join(n)).collect();
    let outcomes = {
        let _heavy = HEAVY_TEST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        run_all(&files)
    };

    let mut t = Tally::default();
    let (mut panics, mut hangs, mut no_json) = (Vec::new(), Vec::new(), Vec::new());
    for ((name, exp), outcome) in docs.iter().zip(outcomes) {
        match outcome {
            Outcome::Report(rep) => compare(name, exp, &rep, &mut t),
            Outcome::NoJson(rep, why) => {
                no_json.push(format!("{name}: {why}"));
                compare(name, exp, &rep, &mut t);
            }
            Outcome::Panic(why) => panics.push(format!("{name} ({why})")),
            Outcome::Hang => hangs.push(format!("{name} (still running after {} s)", RUN_TIMEOUT.as_secs())),
        }
    }

    let (ok, total) = t.totals();
    let pct = if total > 0 { 100.0 * ok as f64 / total as f64 } else { 0.0 };
    let mut msg = format!(
        "conformance: {ok}/{total} fields equal ({pct:.1}%) on {} files; {} panics, {} hangs, {} without JSON\n",
        docs.len(),
        panics.len(),
        hangs.len(),
        no_json.len()
    );
    msg.push_str("per group (equal/compared):\n");
    for (group, (g_ok, g_total)) in &t.groups {
        let _ = writeln!(msg, "  {group:14} {g_ok:5}/{g_total:<5}{}", if g_ok == g_total { "" } else { "  MISMATCH" });
    }
    for (title, list) in [("corpus", &problems), ("PANICS", &panics), ("HANG (killed)", &hangs), ("no JSON", &no_json)]
    {
        for item in list {
            let _ = writeln!(msg, "{title}: {item}");
        }
    }
    if !t.mismatches.is_empty() {
        let _ = writeln!(msg, "mismatches ({}), by file:", t.mismatches.len());
        let mut last_file = "";
        for m in &t.mismatches {
            if m.file != last_file {
                let _ = writeln!(msg, "  {}", m.file);
                last_file = &m.file;
            }
            let _ = writeln!(msg, "    [{}] {}: want {} got {}", m.group, m.field, m.want, m.got);
        }
    }
    let report = Path::new(env!("CARGO_TARGET_TMPDIR")).join("conformance-report.txt");
    let _ = std::fs::write(&report, &msg);

    let failed = !problems.is_empty() || !panics.is_empty() || !hangs.is_empty() || ok != total || total == 0;
    assert!(!failed, "the report differs from the oracle\n{msg}(also written to {})", report.display());
    eprint!("{msg}");
}

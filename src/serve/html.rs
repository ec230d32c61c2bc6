//! The HTML card page of `GET /files/{hash}`: the terminal card (`report::card`) for a browser.
//!
//! Server-rendered, one document with inline CSS, no script, no external asset (not even a favicon), so the
//! Content-Security-Policy [`CSP`] can forbid everything else. Verdict first, then who made the file, what it
//! is made of (from an analysis report a client stored with `POST /v1/reports`, when there is one), and what
//! the store knows. Every string from the store, a report or the URL goes through [`escape`]. A pure
//! function of its inputs: no store, no clock, no environment.

use std::fmt::Write as _;

use crate::report::{LookupReport, Report, Reputation, SignatureStatus};
use crate::store::DigestKind;
use crate::verdict::{Level, Verdict};

/// The Content-Security-Policy of every HTML answer: inline styles and data: images only.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Escape text for HTML element content and double- or single-quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters (terminal escapes included) are shown, not passed on.
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// An analysis report the store keeps for the file: read, or why it could not be.
#[derive(Debug, Clone)]
pub enum StoredReport {
    /// The report, with its reputation and verdict decided again against this server's store.
    Report(Box<Report>),
    /// The stored JSON is not a report this version reads.
    Unreadable(String),
}

impl StoredReport {
    /// Read a stored report's JSON.
    pub fn parse(text: &str) -> StoredReport {
        match serde_json::from_str::<Report>(text) {
            Ok(r) => StoredReport::Report(Box::new(r)),
            Err(e) => StoredReport::Unreadable(e.to_string()),
        }
    }
}

const STYLE: &str = r#"
:root{--bg:#f4f5f7;--card:#fff;--ink:#1d2330;--dim:#5f6b7a;--line:#e3e6eb;--good:#1a7f37;--good-bg:#e6f4ea;
--unk:#3d4a5c;--unk-bg:#eceff3;--sus:#9a6700;--sus-bg:#fff4d6;--bad:#b42318;--bad-bg:#fde8e6;--vul:#c2410c;--vul-bg:#ffedd5}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1080px;margin:0 auto;padding:24px 20px 48px}
header.top{display:flex;justify-content:space-between;align-items:baseline;gap:16px;flex-wrap:wrap;margin-bottom:14px}
header.top h1{font-size:24px;margin:0;word-break:break-all}
header.top .facts{color:var(--dim);font-size:14px}
.path{color:var(--dim);font-size:13px;margin:-8px 0 14px;word-break:break-all}
.verdict{border-radius:10px;padding:18px 22px;margin-bottom:18px;border-left:8px solid}
.verdict .q{font-size:13px;text-transform:uppercase;letter-spacing:.06em;font-weight:600;opacity:.8}
.verdict .a{font-size:21px;font-weight:650;margin:2px 0 8px}
.verdict ul{list-style:none;margin:0;padding:0}
.verdict li{padding:3px 0;display:grid;grid-template-columns:22px minmax(170px,auto) 1fr;gap:6px;align-items:baseline}
.verdict li .id{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px;opacity:.85}
.verdict li .src{color:var(--dim);font-size:13px;margin-left:6px}
.lv-good{background:var(--good-bg);border-color:var(--good);color:#0f3d1c}
.lv-unknown{background:var(--unk-bg);border-color:var(--unk)}
.lv-suspicious{background:var(--sus-bg);border-color:var(--sus);color:#4d3400}
.lv-vulnerable{background:var(--vul-bg);border-color:var(--vul);color:#5a1f05}
.lv-malicious{background:var(--bad-bg);border-color:var(--bad);color:#5c0f09}
.badge{display:inline-block;border-radius:999px;padding:1px 9px;font-size:12px;font-weight:600;white-space:nowrap}
.b-good,.b-known-good{background:var(--good-bg);color:var(--good)}
.b-known-file,.b-unknown,.b-none{background:var(--unk-bg);color:var(--unk)}
.b-suspicious{background:var(--sus-bg);color:var(--sus)}
.b-vulnerable{background:var(--vul-bg);color:var(--vul)}
.b-malicious{background:var(--bad-bg);color:var(--bad)}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 20px;margin-bottom:14px}
section h2:last-child{margin-bottom:0}
section h2{font-size:15px;margin:0 0 10px;text-transform:uppercase;letter-spacing:.05em;color:#344054}
section h2 small{text-transform:none;letter-spacing:0;color:var(--dim);font-weight:400;margin-left:6px}
dl.kv{display:grid;grid-template-columns:150px 1fr 150px 1fr;gap:4px 14px;margin:0}
dl.kv.one{grid-template-columns:150px 1fr}
dl.kv dt{color:var(--dim)}
dl.kv dd{margin:0;word-break:break-word}
.mono,dl.kv dd.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px;word-break:break-all}
table{border-collapse:collapse;width:100%;font-size:14px}
th{text-align:left;color:var(--dim);font-weight:500;border-bottom:1px solid var(--line);padding:5px 8px}
td{border-bottom:1px solid var(--line);padding:5px 8px;vertical-align:top;word-break:break-word}
tr:last-child td{border-bottom:0}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.nw,th.nw{white-space:nowrap}
.ok{color:var(--good);font-weight:600}.no{color:var(--bad);font-weight:600}
.note{color:var(--dim);margin:0}
details summary{cursor:pointer;color:#175cd3}
details[open] summary{margin-bottom:8px}
footer{color:var(--dim);font-size:13px;text-align:center;margin-top:22px}
footer a{color:#175cd3}
.dist{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:10px 24px}
.dist h3{font-size:13px;margin:6px 0;color:#344054;font-weight:600}
.barrow{display:grid;grid-template-columns:minmax(110px,50%) 1fr 52px;gap:8px;align-items:center;font-size:13.5px;padding:2px 0}
.barrow .lbl{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.barrow .track{background:var(--unk-bg);border-radius:4px;height:12px;overflow:hidden}
.barrow .fill{background:#175cd3;height:100%}
.barrow .pc{text-align:right;font-variant-numeric:tabular-nums;color:var(--dim)}
@media (max-width:720px){dl.kv{grid-template-columns:120px 1fr}}
"#;

struct Page {
    out: String,
}

impl Page {
    fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn text(&mut self, s: &str) {
        self.out.push_str(&escape(s));
    }

    fn section(&mut self, title: &str, note: Option<&str>) {
        self.raw("<section><h2>");
        self.text(title);
        if let Some(n) = note {
            self.raw("<small>");
            self.text(n);
            self.raw("</small>");
        }
        self.raw("</h2>");
    }

    fn end(&mut self) {
        self.raw("</section>\n");
    }

    /// A definition list of (label, value, monospace) pairs; empty values are left out.
    fn kv(&mut self, rows: &[(&str, Option<String>, bool)], one_column: bool) {
        let rows: Vec<_> = rows.iter().filter(|(_, v, _)| v.as_deref().is_some_and(|v| !v.is_empty())).collect();
        if rows.is_empty() {
            self.raw("<p class=\"note\">nothing known</p>");
            return;
        }
        self.raw(if one_column { "<dl class=\"kv one\">" } else { "<dl class=\"kv\">" });
        for (label, value, mono) in rows {
            self.raw("<dt>");
            self.text(label);
            self.raw(if *mono { "</dt><dd class=\"mono\">" } else { "</dt><dd>" });
            self.text(value.as_deref().unwrap_or(""));
            self.raw("</dd>");
        }
        self.raw("</dl>");
    }
}

fn thousands(n: u64) -> String {
    crate::report::card::thousands(n)
}

/// The answer to "Should I block it?", as the terminal card words it.
fn answer(verdict: &Verdict) -> String {
    let level = verdict.level;
    let top = verdict.reasons.iter().find(|x| x.level == level);
    match level {
        Level::Malicious => format!("Yes. Malicious: {}", top.map(|t| t.message.as_str()).unwrap_or("known bad")),
        Level::Vulnerable => format!(
            "Yes, unless you need it. Vulnerable: {}",
            top.map(|t| t.message.as_str()).unwrap_or("known vulnerable")
        ),
        Level::Suspicious => {
            let n = verdict.reasons.iter().filter(|x| x.level >= Level::Suspicious).count();
            format!("Look closer. Suspicious: {n} warning sign{}, below.", if n == 1 { "" } else { "s" })
        }
        Level::Unknown => "Cannot tell yet. Unknown: nothing here marks it as good or bad.".to_string(),
        Level::Good => format!(
            "No. Known good{}",
            top.map(|t| format!(": {}", t.message.strip_prefix("known good: ").unwrap_or(&t.message)))
                .unwrap_or_default()
        ),
    }
}

fn verdict_banner(p: &mut Page, verdict: &Verdict) {
    let _ = write!(p.out, "<div class=\"verdict lv-{}\" id=\"verdict\">", verdict.level.as_str());
    p.raw("<div class=\"q\">Should I block it?</div><div class=\"a\">");
    p.text(&answer(verdict));
    p.raw("</div>");
    if !verdict.reasons.is_empty() {
        p.raw("<ul>");
        for r in &verdict.reasons {
            let mark = match r.level {
                Level::Good => "+",
                Level::Unknown => "·",
                Level::Suspicious => "!",
                Level::Vulnerable | Level::Malicious => "✗",
            };
            let _ = write!(p.out, "<li><span>{mark}</span><span class=\"id\">");
            p.text(&r.id);
            p.raw("</span><span>");
            p.text(&r.message);
            if r.source != "file" {
                p.raw("<span class=\"src\">(");
                p.text(&r.source);
                if let Some(v) = &r.source_version {
                    p.raw(" ");
                    p.text(v);
                }
                p.raw(")</span>");
            }
            p.raw("</span></li>");
        }
        p.raw("</ul>");
    }
    p.raw("</div>\n");
}

fn badge(p: &mut Page, class: &str, text: &str) {
    let _ = write!(p.out, "<span class=\"badge b-{}\">", escape(class));
    p.text(text);
    p.raw("</span>");
}

/// How people say the subsystem.
fn subsystem_text(s: &str) -> String {
    match s {
        "windows-gui" => "Windows GUI".into(),
        "windows-cui" => "Windows console".into(),
        "native" => "native (driver or boot-time program)".into(),
        other => other.replace('-', " "),
    }
}

fn tick(on: bool) -> &'static str {
    if on { "<span class=\"ok\">✓</span>" } else { "<span class=\"no\">✗</span>" }
}

/// The card page about a hash: the store's answer, and the analysis report stored for the file (if any).
pub fn page(lookup: &LookupReport, stored: Option<&StoredReport>) -> String {
    let report = match stored {
        Some(StoredReport::Report(r)) => Some(r.as_ref()),
        _ => None,
    };
    let rep = report.and_then(|r| r.reputation.as_ref()).unwrap_or(&lookup.reputation);
    let verdict = report.map(|r| &r.verdict).unwrap_or(&lookup.verdict);
    let best_meta = lookup.reputation.matches.iter().find(|m| !m.meta.is_empty()).map(|m| &m.meta);
    let name = report
        .filter(|r| r.path != "-")
        .map(|r| r.path.rsplit(['/', '\\']).next().unwrap_or(&r.path).to_string())
        .or_else(|| best_meta.and_then(|m| m.file_name.clone().or_else(|| m.original_name.clone())))
        .unwrap_or_else(|| lookup.query.clone());

    let mut p = Page { out: String::with_capacity(32 * 1024) };
    p.raw("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    p.raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    p.raw("<meta name=\"referrer\" content=\"no-referrer\"><link rel=\"icon\" href=\"data:,\">");
    p.raw("<title>");
    p.text(&format!("{name} · {} · filerep", verdict.level));
    p.raw("</title><style>");
    p.raw(STYLE);
    p.raw("</style></head><body><main>\n");

    // Title: the name, and what the file is.
    let mut facts = Vec::new();
    if let Some(r) = report {
        if let Some(s) = r.size {
            facts.push(format!("{} bytes", thousands(s)));
        }
        if let Some(pe) = &r.pe {
            facts.push(format!("{} {}", pe.magic, if pe.is_dll { "DLL" } else { "executable" }));
            facts.push(pe.machine.clone());
        } else if let Some(e) = &r.elf {
            facts.push(format!("{} {}", e.class.to_uppercase(), e.kind));
            facts.push(e.machine.clone());
        } else {
            facts.push(r.format.as_str().to_string());
        }
    } else {
        facts.push(format!("{} lookup", lookup.kind));
    }
    p.raw("<header class=\"top\"><h1 id=\"name\">");
    p.text(&name);
    p.raw("</h1><div class=\"facts\">");
    p.text(&facts.join(" · "));
    p.raw("</div></header>\n");
    if let Some(r) = report.filter(|r| r.path.contains(['/', '\\'])) {
        p.raw("<div class=\"path\">");
        p.text(&r.path);
        p.raw("</div>");
    }

    verdict_banner(&mut p, verdict);

    match stored {
        Some(StoredReport::Report(r)) => {
            details(&mut p, r, rep);
            hashes(&mut p, r);
            dna(&mut p, r);
            signature(&mut p, r);
            imports(&mut p, r);
        }
        other => {
            p.section("Details", Some("from the store"));
            let m = best_meta.cloned().unwrap_or_default();
            p.kv(
                &[
                    ("File name", m.file_name.clone(), false),
                    ("Publisher", m.company.clone(), false),
                    ("Product", m.product.clone(), false),
                    ("Original name", m.original_name.clone(), false),
                    ("Description", m.description.clone(), false),
                    ("File version", m.file_version.clone(), false),
                    ("Product version", m.product_version.clone(), false),
                    ("Size", m.size.map(|s| format!("{} bytes", thousands(s))), false),
                    ("Signer", m.signer.clone(), false),
                    ("Typical path", rep.typical_path.clone(), false),
                ],
                false,
            );
            p.end();
            p.section("Hashes", None);
            let mut rows = vec![("Query", Some(lookup.query.clone()), true)];
            for m in &lookup.reputation.matches {
                let label = match m.matched_by {
                    DigestKind::Md5 => "MD5",
                    DigestKind::Sha1 => "SHA-1",
                    DigestKind::Sha256 => "SHA-256",
                    DigestKind::AuthentihashSha1 => "Authentihash SHA-1",
                    DigestKind::AuthentihashSha256 => "Authentihash",
                    DigestKind::Imphash => "Imphash",
                };
                if !rows.iter().any(|(l, v, _)| *l == label && v.as_deref() == Some(m.digest.as_str())) {
                    rows.push((label, Some(m.digest.clone()), true));
                }
            }
            p.kv(&rows, true);
            p.end();
            p.section("Digital DNA", None);
            match other {
                Some(StoredReport::Unreadable(why)) => {
                    p.raw("<p class=\"note\">The analysis report stored for this file cannot be read: ");
                    p.text(why);
                    p.raw("</p>");
                }
                _ => p.raw(
                    "<p class=\"note\" id=\"no-report\">No analysis report is stored for this file: what follows is \
                     what the store knows. Store one with <span class=\"mono\">filerep check --json FILE</span> \
                     and <span class=\"mono\">POST /v1/reports</span>.</p>",
                ),
            }
            p.end();
        }
    }

    reputation(&mut p, rep);
    // The fleet's figures are the server's live ones, never those of a report stored earlier.
    prevalence(&mut p, lookup.reputation.prevalence.as_ref());
    versions(&mut p, rep);
    relationships(&mut p, rep);

    p.raw("<footer>filerep ");
    p.text(env!("CARGO_PKG_VERSION"));
    p.raw(" · every value names its source · <a href=\"/v1/files/");
    p.text(&lookup.query);
    p.raw("\">JSON</a></footer>\n</main></body></html>\n");
    p.out
}

fn details(p: &mut Page, r: &Report, rep: &Reputation) {
    p.section("Details", None);
    let size = r.size.map(|s| format!("{} bytes", thousands(s)));
    if let Some(pe) = &r.pe {
        let vi = pe.version_info.clone().unwrap_or_default();
        let bits = if pe.magic == "PE32+" { "64-bit" } else { "32-bit" };
        let linked = match pe.timestamp_kind.as_str() {
            "reproducible-build-hash" => Some("a hash (reproducible build)".to_string()),
            "zero" => Some("not set (0)".to_string()),
            _ => pe.timestamp_utc.clone().map(|t| t.replace('T', " ").replace('Z', " UTC")),
        };
        p.kv(
            &[
                ("Publisher", vi.company_name.clone(), false),
                ("Product", vi.product_name.clone(), false),
                ("Description", vi.file_description.clone(), false),
                ("Original name", vi.original_filename.clone(), false),
                ("Internal name", vi.internal_name.clone(), false),
                ("File version", vi.file_version.clone(), false),
                ("Product version", vi.product_version.clone(), false),
                ("Copyright", vi.legal_copyright.clone(), false),
                ("Platform", Some(format!("{bits} ({}), {}", pe.machine, subsystem_text(&pe.subsystem))), false),
                ("Linked", linked, false),
                ("Size", size, false),
                ("Typical path", rep.typical_path.clone(), false),
                ("PDB", pe.pdb.clone(), true),
            ],
            false,
        );
        if pe.version_info.is_none() {
            p.raw("<p class=\"note\">No version resource.</p>");
        }
    } else {
        let platform =
            r.elf.as_ref().map(|e| format!("{} {} ({})", e.class.to_uppercase(), e.kind, e.machine)).or_else(|| {
                r.macho.as_ref().map(|m| m.slices.iter().map(|s| s.cpu.as_str()).collect::<Vec<_>>().join("+"))
            });
        p.kv(
            &[
                ("Format", Some(r.format.as_str().to_string()), false),
                ("Platform", platform, false),
                ("Size", size, false),
                ("Typical path", rep.typical_path.clone(), false),
            ],
            false,
        );
    }
    if !r.fully_analysed {
        p.raw("<p class=\"note\">Not fully analysed: ");
        p.text(&r.limits.join("; "));
        p.raw("</p>");
    }
    p.end();
}

fn hashes(p: &mut Page, r: &Report) {
    p.section("Hashes", Some("computed from the file"));
    let h = &r.hashes;
    let imp = match h.imphash.as_deref() {
        Some("") => Some("- (no imports)".to_string()),
        other => other.map(str::to_string),
    };
    p.kv(
        &[
            ("MD5", h.md5.clone(), true),
            ("SHA-1", h.sha1.clone(), true),
            ("SHA-256", h.sha256.clone(), true),
            ("Authentihash", h.authentihash_sha256.as_ref().map(|a| format!("{a} (SHA-256)")), true),
            ("", h.authentihash_sha1.as_ref().map(|a| format!("{a} (SHA-1)")), true),
            ("Imphash", imp, true),
            ("Rich header", h.rich_header_md5.clone(), true),
            ("TLSH", h.tlsh.clone(), true),
            ("ssdeep", h.ssdeep.clone(), true),
        ],
        true,
    );
    p.end();
}

fn dna(p: &mut Page, r: &Report) {
    p.section("Digital DNA", None);
    let entropy = r.entropy.map(|e| format!("{e:.2} bits/byte (whole file)"));
    if let Some(pe) = &r.pe {
        let packed = match &pe.packer {
            Some(k) => format!("yes: {} ({}: {})", k.name, k.method, k.evidence),
            None => "no".to_string(),
        };
        let dotnet = match &pe.dotnet {
            Some(d) => format!(".NET {}", d.runtime_version.clone().unwrap_or_else(|| d.clr_header_version.clone())),
            None => "native code".to_string(),
        };
        let bits = if pe.magic == "PE32+" { "64-bit" } else { "32-bit" };
        p.kv(
            &[
                ("Entropy", entropy, false),
                ("Packed", Some(packed), false),
                ("Code", Some(dotnet), false),
                ("Bitness", Some(format!("{bits} ({})", pe.machine)), false),
                ("Subsystem", Some(subsystem_text(&pe.subsystem)), false),
                ("Sections", Some(pe.sections.len().to_string()), false),
            ],
            false,
        );
        let m = &pe.mitigations;
        let _ = write!(
            p.out,
            "<p id=\"mitigations\">Mitigations: ASLR {} · high-entropy VA {} · NX {} · CFG {} · SEH {} · force-integrity {}</p>",
            tick(m.aslr),
            tick(m.high_entropy_va),
            tick(m.nx),
            tick(m.cfg),
            tick(!m.no_seh),
            tick(m.force_integrity)
        );
        if !pe.sections.is_empty() {
            p.raw(
                "<details><summary>Sections</summary><table><tr><th>name</th><th class=\"num\">virtual size</th>\
                   <th class=\"num\">raw size</th><th class=\"num\">entropy</th><th>flags</th></tr>",
            );
            for s in &pe.sections {
                p.raw("<tr><td class=\"mono\">");
                p.text(&s.name);
                let _ = write!(
                    p.out,
                    "</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.2}</td><td>",
                    thousands(u64::from(s.virtual_size)),
                    thousands(u64::from(s.raw_size)),
                    s.entropy
                );
                p.text(&s.flags.join(", "));
                p.raw("</td></tr>");
            }
            p.raw("</table></details>");
        }
    } else if let Some(e) = &r.elf {
        p.kv(
            &[
                ("Entropy", entropy, false),
                ("PIE", Some(if e.pie { "yes" } else { "no" }.into()), false),
                ("NX", Some(if e.nx { "yes" } else { "no" }.into()), false),
                ("RELRO", Some(e.relro.clone()), false),
                ("Stack canary", Some(if e.canary { "yes" } else { "no" }.into()), false),
                ("Stripped", Some(if e.stripped { "yes" } else { "no" }.into()), false),
            ],
            false,
        );
    } else {
        p.kv(&[("Entropy", entropy, false)], true);
    }
    let failing: Vec<_> = r
        .hardening
        .iter()
        .filter(|c| matches!(c.status, crate::hardening::Status::Fail))
        .map(|c| c.id.as_str())
        .collect();
    if !r.hardening.is_empty() {
        p.raw("<p class=\"note\">Hardening: ");
        if failing.is_empty() {
            p.text(&format!("all {} applicable checks pass", r.hardening.len()));
        } else {
            p.text(&format!("failing {}", failing.join(", ")));
        }
        p.raw("</p>");
    }
    p.end();
}

fn signature(p: &mut Page, r: &Report) {
    let Some(sig) = &r.signature else { return };
    let n = sig.signatures.len();
    let note = match n {
        0 => "no embedded signature".to_string(),
        1 => "embedded, 1 signature".to_string(),
        _ => format!("embedded, {n} signatures"),
    };
    p.section("Signature", Some(&note));
    let cls = match sig.status {
        SignatureStatus::Valid => "good",
        SignatureStatus::Untrusted | SignatureStatus::Absent => "unknown",
        _ => "malicious",
    };
    p.raw("<p>");
    badge(p, cls, sig.status.as_str());
    p.raw(" ");
    p.text(&sig.summary);
    p.raw("</p>");
    if n > 0 {
        p.raw("<table><tr><th>#</th><th>signer</th><th>digest</th><th class=\"nw\">signer ok</th><th>chain</th><th>timestamp</th></tr>");
        for (i, c) in sig.signatures.iter().enumerate() {
            let _ = write!(p.out, "<tr><td class=\"nw\">{}{}</td><td>", i + 1, if c.nested { " (nested)" } else { "" });
            p.text(c.signer_subject.as_deref().unwrap_or("-"));
            let _ = write!(p.out, "</td><td class=\"nw\">{} ", tick(c.digest_ok));
            p.text(&c.digest_algorithm);
            let _ = write!(p.out, "</td><td>{}</td><td>{}</td><td class=\"nw\">", tick(c.signer_ok), tick(c.chain_ok));
            p.text(c.timestamp.as_deref().unwrap_or("-"));
            p.raw("</td></tr>");
        }
        p.raw("</table>");
    }
    for problem in &sig.problems {
        p.raw("<p class=\"note\">Problem: ");
        p.text(problem);
        p.raw("</p>");
    }
    p.raw("<p class=\"note\">Revocation: not checked (offline).</p>");
    p.end();
}

fn imports(p: &mut Page, r: &Report) {
    let Some(pe) = &r.pe else { return };
    let all: Vec<(&crate::report::Import, bool)> =
        pe.imports.iter().map(|i| (i, false)).chain(pe.delay_imports.iter().map(|i| (i, true))).collect();
    let funcs: usize = all.iter().map(|(i, _)| i.functions.len()).sum();
    let note = format!(
        "{} librar{}, {funcs} function{}",
        all.len(),
        if all.len() == 1 { "y" } else { "ies" },
        if funcs == 1 { "" } else { "s" }
    );
    p.section("Imports", Some(&note));
    if all.is_empty() {
        p.raw("<p class=\"note\">none</p>");
    } else {
        p.raw("<details><summary>Libraries and functions</summary><table><tr><th>library</th><th class=\"num\">functions</th><th>names</th></tr>");
        for (imp, delayed) in all {
            p.raw("<tr><td class=\"mono\">");
            p.text(&imp.library);
            if delayed {
                p.raw(" <small>(delay-loaded)</small>");
            }
            let _ = write!(p.out, "</td><td class=\"num\">{}</td><td class=\"mono\">", imp.functions.len());
            let names: Vec<String> = imp
                .functions
                .iter()
                .take(200)
                .map(|f| match (&f.name, f.ordinal) {
                    (Some(n), _) => n.clone(),
                    (None, Some(o)) => format!("#{o}"),
                    (None, None) => "?".into(),
                })
                .collect();
            p.text(&names.join(", "));
            if imp.functions.len() > 200 {
                p.text(&format!(", … and {} more", imp.functions.len() - 200));
            }
            p.raw("</td></tr>");
        }
        p.raw("</table></details>");
    }
    if !pe.exports.is_empty() {
        let names: Vec<&str> = pe.exports.iter().filter_map(|e| e.name.as_deref()).take(12).collect();
        p.raw("<p class=\"note\">Exports: ");
        p.text(&format!(
            "{} ({}{})",
            pe.exports.len(),
            names.join(", "),
            if pe.exports.len() > names.len() { ", …" } else { "" }
        ));
        p.raw("</p>");
    }
    p.end();
}

fn reputation(p: &mut Page, rep: &Reputation) {
    p.section("Reputation", Some("from the store"));
    if rep.sources.is_empty() {
        p.raw("<p class=\"note\">The store is empty: import feeds with <span class=\"mono\">filerep db import</span>.</p>");
        p.end();
        return;
    }
    p.raw("<table id=\"sources\"><tr><th>source</th><th>version / date</th><th>says</th></tr>");
    for s in &rep.sources {
        let best = rep.matches.iter().filter(|m| m.source == s.name).max_by_key(|m| m.class);
        p.raw("<tr><td>");
        p.text(&s.name);
        p.raw("</td><td>");
        p.text(s.version.as_deref().or(s.date.as_deref()).unwrap_or("-"));
        p.raw("</td><td>");
        match best {
            Some(m) if m.matched_by == DigestKind::Imphash => {
                badge(p, "suspicious", &format!("imphash only: {}", m.class))
            }
            Some(m) if m.probabilistic => badge(p, "known-file", "known file (Bloom filter)"),
            Some(m) => badge(p, m.class.as_str(), m.class.as_str()),
            None => badge(p, "none", "no match"),
        }
        p.raw("</td></tr>");
    }
    p.raw("</table>");
    let with_meta: Vec<_> = rep.matches.iter().take(20).collect();
    if !with_meta.is_empty() {
        p.raw(
            "<h2 style=\"margin-top:16px\">Matches</h2><table id=\"matches\"><tr><th>source</th><th>class</th>\
               <th>matched by</th><th>what the source says</th></tr>",
        );
        for m in with_meta {
            let meta = &m.meta;
            let mut facts: Vec<&String> = Vec::new();
            for f in [
                &meta.original_name,
                &meta.file_name,
                &meta.description,
                &meta.company,
                &meta.product,
                &meta.file_version,
                &meta.family,
                &meta.signer,
                &meta.first_seen,
            ]
            .into_iter()
            .flatten()
            {
                if !facts.contains(&f) {
                    facts.push(f);
                }
            }
            p.raw("<tr><td>");
            p.text(&m.source);
            if let Some(v) = m.source_version.as_deref().or(m.source_date.as_deref()) {
                p.raw(" <small>");
                p.text(v);
                p.raw("</small>");
            }
            p.raw("</td><td>");
            badge(p, m.class.as_str(), m.class.as_str());
            p.raw("</td><td>");
            p.text(m.matched_by.as_str());
            p.raw("</td><td class=\"meta\">");
            p.text(&facts.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" · "));
            p.raw("</td></tr>");
        }
        p.raw("</table>");
    }
    p.end();
}

/// Fleet prevalence: the participants, and once there are enough of them the resource figures, the process
/// properties and three bar charts (OS version, country, manufacturer).
fn prevalence(p: &mut Page, prev: Option<&crate::report::Prevalence>) {
    let Some(prev) = prev else { return };
    let who = format!("{} participant{}", thousands(prev.participants), if prev.participants == 1 { "" } else { "s" });
    if prev.participants == 0 {
        p.section("Fleet prevalence", Some("not seen by any participant (filerep observe --submit)"));
        p.end();
        return;
    }
    if prev.withheld {
        p.section("Fleet prevalence", Some(&who));
        p.raw("<p class=\"note\" id=\"prevalence-withheld\">");
        p.text(&format!(
            "Fewer than {} participants: every figure is withheld, so that no participant can be singled out.",
            thousands(prev.min_participants)
        ));
        p.raw("</p>");
        p.end();
        return;
    }
    let mut note = who.clone();
    if let Some(n) = prev.sightings {
        note.push_str(&format!(" · {} sightings", thousands(n)));
    }
    p.section("Resource utilization", Some(&format!("averaged over {note}")));
    p.raw(
        "<table id=\"resources\"><tr><th></th><th class=\"num\">average</th><th class=\"num\">min</th>\
           <th class=\"num\">max</th><th class=\"num\">participants</th></tr>",
    );
    let r = &prev.resources;
    let pct = |x: f64| format!("{x:.2} %");
    let count = |x: f64| format!("{x:.1}");
    type Row<'a> = (&'a str, &'a Option<crate::report::Figure>, &'a dyn Fn(f64) -> String);
    let rows: [Row<'_>; 8] = [
        ("CPU", &r.cpu_percent, &pct),
        ("Private bytes", &r.private_bytes, &crate::report::card::human_bytes),
        ("Working set", &r.working_set, &crate::report::card::human_bytes),
        ("Peak working set", &r.peak_working_set, &crate::report::card::human_bytes),
        ("Virtual bytes", &r.virtual_bytes, &crate::report::card::human_bytes),
        ("Threads", &r.threads, &count),
        ("Handles", &r.handles, &count),
        ("Processes", &r.processes, &count),
    ];
    for (label, f, fmt) in rows {
        p.raw("<tr><td>");
        p.text(label);
        match f {
            Some(f) => {
                let _ = write!(
                    p.out,
                    "</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                     <td class=\"num\">{}</td></tr>",
                    escape(&fmt(f.mean)),
                    escape(&fmt(f.min)),
                    escape(&fmt(f.max)),
                    thousands(f.participants)
                );
            }
            None => {
                let _ = write!(
                    p.out,
                    "</td><td colspan=\"4\" class=\"note\">fewer than {} participants reported it</td></tr>",
                    thousands(prev.min_participants)
                );
            }
        }
    }
    p.raw("</table>");
    p.end();
    let pr = &prev.process;
    p.section("Process properties", Some(&format!("most common over {who}")));
    p.kv(
        &[
            ("Typical path", pr.typical_path.clone(), true),
            ("Typical command line", pr.typical_command_line.clone(), true),
            ("Typical owner", pr.typical_owner.clone(), false),
            ("Typical privilege", pr.typical_privilege.clone(), false),
            ("Typical parent", pr.typical_parent.clone(), false),
            ("Platform", pr.platform.clone(), false),
            ("First seen", prev.first_seen.clone(), false),
            ("Last seen", prev.last_seen.clone(), false),
        ],
        true,
    );
    p.end();
    p.section("Distribution", Some(&format!("share of {who}")));
    p.raw("<div class=\"dist\">");
    for (id, title, shares) in [
        ("os", "Operating system", &prev.os_versions),
        ("country", "Country", &prev.countries),
        ("manufacturer", "PC manufacturer", &prev.manufacturers),
    ] {
        let _ = write!(p.out, "<div class=\"chart\" id=\"dist-{id}\"><h3>");
        p.text(title);
        p.raw("</h3>");
        for s in shares.iter().flatten() {
            p.raw("<div class=\"barrow\"><span class=\"lbl\" title=\"");
            p.text(&s.value);
            p.raw("\">");
            p.text(&s.value);
            let _ = write!(
                p.out,
                "</span><span class=\"track\"><span class=\"fill\" style=\"display:block;width:{:.1}%\"></span></span>\
                 <span class=\"pc\">{:.1} %</span></div>",
                s.percent.clamp(0.0, 100.0),
                s.percent
            );
        }
        p.raw("</div>");
    }
    p.raw("</div>");
    p.end();
}

fn versions(p: &mut Page, rep: &Reputation) {
    if rep.additional_versions.is_empty() {
        p.section("Additional versions", Some("none in the store"));
        p.end();
        return;
    }
    p.section("Additional versions", Some(&format!("{} in the store", rep.additional_versions.len())));
    p.raw("<table><tr><th>file version</th><th>hash</th><th>class</th><th>source</th><th>path</th></tr>");
    for o in &rep.additional_versions {
        p.raw("<tr><td>");
        p.text(o.file_version.as_deref().unwrap_or("-"));
        p.raw("</td><td class=\"mono\">");
        if o.hash_kind != DigestKind::Sha256 {
            p.text(&format!("{} ", o.hash_kind));
        }
        p.text(&o.hash);
        p.raw("</td><td>");
        badge(p, o.class.as_str(), o.class.as_str());
        p.raw("</td><td>");
        p.text(&o.source);
        p.raw("</td><td>");
        p.text(o.path.as_deref().unwrap_or("-"));
        p.raw("</td></tr>");
    }
    p.raw("</table>");
    p.end();
}

fn relationships(p: &mut Page, rep: &Reputation) {
    let libs = &rep.relationships.libraries;
    let pkgs = &rep.relationships.packages;
    if libs.is_empty() && pkgs.is_empty() {
        p.section("Relationships", Some("none known to the store"));
        p.end();
        return;
    }
    p.section("Relationships", Some("from the store"));
    if !libs.is_empty() {
        p.raw(
            "<table><tr><th>imported library</th><th class=\"num\">records</th><th>classes</th><th>sources</th></tr>",
        );
        for l in libs {
            p.raw("<tr><td class=\"mono\">");
            p.text(&l.name);
            let _ = write!(p.out, "</td><td class=\"num\">{}</td><td>", l.records);
            for c in &l.classes {
                badge(p, c.as_str(), c.as_str());
                p.raw(" ");
            }
            p.raw("</td><td>");
            p.text(&l.sources.join(", "));
            p.raw("</td></tr>");
        }
        p.raw("</table>");
    }
    if !pkgs.is_empty() {
        p.raw("<p>In packages: ");
        p.text(&pkgs.join("; "));
        p.raw("</p>");
    }
    p.end();
}

/// A small error page for a browser.
pub fn error_page(status: axum::http::StatusCode, message: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\">\
         <title>{code} · filerep</title><style>{STYLE}</style></head><body><main><div class=\"verdict lv-unknown\">\
         <div class=\"q\">{code} {reason}</div><div class=\"a\" id=\"error\">{msg}</div></div></main></body></html>\n",
        code = status.as_u16(),
        reason = escape(status.canonical_reason().unwrap_or("error")),
        msg = escape(message),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Class;

    #[test]
    fn escape_neutralises_markup_quotes_and_controls() {
        assert_eq!(escape("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;");
        assert_eq!(escape(r#"a "b" & 'c'"#), "a &quot;b&quot; &amp; &#39;c&#39;");
        assert_eq!(escape("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(escape("plain ü"), "plain ü");
        assert_eq!(escape("&amp;"), "&amp;amp;");
    }

    #[test]
    fn a_page_escapes_what_the_store_says() {
        let meta =
            crate::store::Meta { file_name: Some("<img src=x onerror=alert(1)>.exe".into()), ..Default::default() };
        let lookup = LookupReport {
            query: "44d88612fea8a8f36de82e1278abb02f".into(),
            kind: DigestKind::Md5,
            reputation: Reputation {
                sources: vec![crate::report::SourceRef {
                    name: "mine".into(),
                    format: "manual".into(),
                    version: None,
                    date: Some("2026-01-01".into()),
                }],
                matches: vec![crate::report::StoreMatch {
                    source: "mine".into(),
                    source_version: None,
                    source_date: None,
                    source_imported: "2026-01-01T00:00:00Z".into(),
                    class: Class::Malicious,
                    matched_by: DigestKind::Md5,
                    digest: "44d88612fea8a8f36de82e1278abb02f".into(),
                    probabilistic: false,
                    false_positive_rate: None,
                    meta,
                    remote: None,
                }],
                ..Reputation::default()
            },
            providers: Vec::new(),
            verdict: Verdict {
                level: Level::Malicious,
                reasons: vec![crate::verdict::Reason {
                    id: "known-malicious".into(),
                    level: Level::Malicious,
                    message: "listed as <b>malicious</b>".into(),
                    source: "mine".into(),
                    source_version: None,
                }],
            },
        };
        let html = page(&lookup, None);
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;.exe"));
        assert!(html.contains("listed as &lt;b&gt;malicious&lt;/b&gt;"));
        assert!(html.contains("class=\"verdict lv-malicious\""));
        assert!(html.contains("Should I block it?"));
        assert!(html.contains("id=\"no-report\""));
        assert!(!html.contains("http://") && !html.contains("https://"), "no external asset");
        let unreadable = page(&lookup, Some(&StoredReport::parse("{\"not\": \"a report\"}")));
        assert!(unreadable.contains("cannot be read"));
    }
}

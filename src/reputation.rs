//! Evidence about a file beyond its own bytes, and the report's `reputation` section.
//!
//! Two kinds of evidence feed the verdict: what the file claims to be checked against the built-in table of
//! Windows system binaries ([`local_evidence`]: masquerading, no store needed), and what the reputation store
//! says about the file's digests ([`consult`]). This module gathers both, fills `Report::reputation` (matches,
//! typical path, other versions, relationships) and re-decides the verdict with `verdict::decide`, which stays
//! a pure function. It never prints and never touches the network.

use std::collections::BTreeSet;

use crate::report::{LookupReport, ProviderAnswer, Relationships, RemoteStatus, Report, Reputation, SourceRef};
use crate::store::sqlite::{self, SqliteStore, most_common, normalise_name};
use crate::store::{Digest, DigestKind};
use crate::verdict::{self, Evidence, MasqueradeFinding};

/// Other versions listed at most.
pub const MAX_OTHER_VERSIONS: usize = 10;
/// Imported libraries looked up by name at most.
pub const MAX_LIBRARIES: usize = 64;
/// Packages listed at most.
pub const MAX_PACKAGES: usize = 10;

/// The last component of a report's path (`-` for standard input).
fn file_name(report: &Report) -> &str {
    report.path.rsplit(['/', '\\']).next().unwrap_or(&report.path)
}

/// Evidence that needs no store: masquerading, from the PE's version information and name.
pub fn local_evidence(report: &Report) -> Evidence {
    let mut ev = Evidence::default();
    let Some(pe) = &report.pe else { return ev };
    if report.path == "-" {
        return ev;
    }
    let vi = pe.version_info.as_ref();
    let claims = crate::masquerade::Claims {
        file_name: file_name(report),
        path: Some(&report.path),
        original_name: vi.and_then(|v| v.original_filename.as_deref()),
        company: vi.and_then(|v| v.company_name.as_deref()),
        // Only a signer whose signature over the file verifies is a claim worth checking; a broken signature
        // is reported on its own.
        signer: report
            .signature
            .as_ref()
            .and_then(|s| s.signatures.first())
            .filter(|c| c.digest_ok && c.signer_ok)
            .and_then(|c| c.signer_subject.as_deref()),
    };
    ev.masquerade = crate::masquerade::check(&claims)
        .into_iter()
        // The reason names its source itself; the table's messages end with it too.
        .map(|f| MasqueradeFinding {
            id: f.id.to_string(),
            message: f.message.strip_suffix(" (xcyclopedia)").unwrap_or(&f.message).to_string(),
        })
        .collect();
    ev
}

/// Every digest of the report the store is keyed by.
pub fn digests_of(report: &Report) -> Vec<Digest> {
    let h = &report.hashes;
    let pairs = [
        (DigestKind::Sha256, &h.sha256),
        (DigestKind::Sha1, &h.sha1),
        (DigestKind::Md5, &h.md5),
        (DigestKind::AuthentihashSha256, &h.authentihash_sha256),
        (DigestKind::AuthentihashSha1, &h.authentihash_sha1),
        (DigestKind::Imphash, &h.imphash),
    ];
    pairs.into_iter().filter_map(|(k, v)| v.as_deref().and_then(|hex| Digest::parse_hex(k, hex).ok())).collect()
}

/// Consult the store about a report: fill `reputation` and decide the verdict again with all the evidence.
/// A report whose file could not be read is left as it is.
pub fn consult(store: &SqliteStore, report: &mut Report) -> Result<(), sqlite::Error> {
    consult_all(Some(store), report, &External::default())
}

/// What a remote store answered about one file's (or hash's) queries.
#[derive(Debug, Clone)]
pub struct RemoteAnswer {
    /// The remote's base URL.
    pub url: String,
    /// One answer per query, or why there is none.
    pub result: Result<Vec<LookupReport>, String>,
}

/// Evidence from outside this machine, fetched beforehand: a remote store's answers and the providers'.
#[derive(Debug, Clone, Default)]
pub struct External {
    /// `--remote`.
    pub remote: Option<RemoteAnswer>,
    /// `--provider`.
    pub providers: Vec<ProviderAnswer>,
}

/// The remote queries for a file: `KIND:HEX` for each of its digests.
pub fn remote_queries(report: &Report) -> Vec<String> {
    digests_of(report).iter().map(|d| format!("{}:{}", d.kind(), d.hex())).collect()
}

/// Consult the local store (when there is one), a remote store's answers and the providers' answers, fill
/// `reputation` and `providers`, and decide the verdict again with all the evidence.
pub fn consult_all(store: Option<&SqliteStore>, report: &mut Report, external: &External) -> Result<(), sqlite::Error> {
    if report.error.is_some() {
        return Ok(());
    }
    if let Some(store) = store {
        let mut evidence = local_evidence(report);
        consult_local(store, report, &mut evidence)?;
    }
    add_external(report, external);
    Ok(())
}

/// Add evidence from outside this machine to a report the local store was (or was not) consulted for, and
/// decide the verdict again with everything: the file's own facts, the local matches, the remote's and the
/// providers'.
pub fn add_external(report: &mut Report, external: &External) {
    if report.error.is_some() {
        return;
    }
    let mut evidence = local_evidence(report);
    if let Some(rep) = &report.reputation {
        evidence.matches = rep.matches.clone();
        evidence.signer_listings = rep.signer_listings.clone();
    }
    if let Some(remote) = &external.remote {
        let own = digests_of(report);
        let rep =
            report.reputation.get_or_insert_with(|| Reputation { store: remote.url.clone(), ..Default::default() });
        merge_remote(rep, &mut evidence, remote, &own);
    }
    report.providers = external.providers.clone();
    evidence.providers = external.providers.iter().filter_map(|p| p.evidence.clone()).collect();
    report.verdict = verdict::decide(report, &evidence);
}

/// Add a remote store's answers to a reputation section and to the evidence: its matches (marked with the
/// remote's URL, without duplicating what the local store said), other versions, typical path and sources.
pub fn merge_remote(rep: &mut Reputation, evidence: &mut Evidence, remote: &RemoteAnswer, own: &[Digest]) {
    let answers = match &remote.result {
        Ok(a) => a,
        Err(e) => {
            rep.remote = Some(RemoteStatus { url: remote.url.clone(), error: Some(e.clone()), sources: Vec::new() });
            return;
        }
    };
    let mut status = RemoteStatus { url: remote.url.clone(), error: None, sources: Vec::new() };
    for a in answers {
        for s in &a.reputation.sources {
            if !status.sources.iter().any(|x| x.name == s.name && x.version == s.version) {
                status.sources.push(s.clone());
            }
        }
        for m in &a.reputation.matches {
            let dup = evidence.matches.iter().any(|x| {
                x.source == m.source && x.digest == m.digest && x.class == m.class && x.matched_by == m.matched_by
            });
            if !dup {
                let mut m = m.clone();
                m.remote = Some(remote.url.clone());
                evidence.matches.push(m);
            }
        }
        for v in &a.reputation.additional_versions {
            let mine = own.iter().any(|d| d.hex() == v.hash);
            if !mine
                && rep.additional_versions.len() < MAX_OTHER_VERSIONS
                && !rep.additional_versions.iter().any(|x| x.hash == v.hash)
            {
                rep.additional_versions.push(v.clone());
            }
        }
        if let Some(theirs) = &a.reputation.prevalence {
            let more = rep.prevalence.as_ref().is_none_or(|mine| theirs.participants > mine.participants);
            if more {
                let mut theirs = theirs.clone();
                theirs.source = Some(remote.url.clone());
                // The fleet's typical path wins over the stores' once it may be shown.
                if let Some(p) = &theirs.process.typical_path {
                    rep.typical_path = Some(p.clone());
                }
                rep.prevalence = Some(theirs);
            }
        }
        if rep.typical_path.is_none() {
            rep.typical_path.clone_from(&a.reputation.typical_path);
        }
        for p in &a.reputation.relationships.packages {
            if !rep.relationships.packages.contains(p) && rep.relationships.packages.len() < MAX_PACKAGES {
                rep.relationships.packages.push(p.clone());
            }
        }
    }
    evidence.matches.sort_by(|a, b| b.class.cmp(&a.class).then_with(|| a.source.cmp(&b.source)));
    rep.matches = evidence.matches.clone();
    rep.remote = Some(status);
}

/// The local store's part of [`consult_all`].
fn consult_local(store: &SqliteStore, report: &mut Report, evidence: &mut Evidence) -> Result<(), sqlite::Error> {
    let digests = digests_of(report);
    evidence.matches = store.lookup(&digests)?;
    // Signers whose signature over this file verifies, checked against the store's blocklists.
    let mut signers: Vec<&str> = Vec::new();
    for c in report.signature.iter().flat_map(|s| &s.signatures).filter(|c| c.digest_ok && c.signer_ok) {
        if let Some(cn) = c.signer_subject.as_deref().map(crate::authenticode::short_name) {
            if !signers.iter().any(|s| s.eq_ignore_ascii_case(cn)) {
                signers.push(cn);
            }
        }
    }
    for s in signers {
        evidence.signer_listings.extend(store.signer_listings(s)?);
    }

    let own_name = report
        .pe
        .as_ref()
        .and_then(|pe| pe.version_info.as_ref())
        .and_then(|v| v.original_filename.as_deref())
        .map(normalise_name);
    let libraries: Vec<String> = report
        .pe
        .as_ref()
        .map(|pe| {
            let mut seen = BTreeSet::new();
            pe.imports
                .iter()
                .chain(&pe.delay_imports)
                .map(|i| i.library.to_lowercase())
                .filter(|l| seen.insert(l.clone()))
                .take(MAX_LIBRARIES)
                .collect()
        })
        .unwrap_or_default();
    let name_fallback = (report.path != "-").then(|| normalise_name(file_name(report)));
    report.reputation = Some(build(store, evidence, &digests, own_name.or(name_fallback), &libraries)?);
    report.verdict = verdict::decide(report, evidence);
    Ok(())
}

/// The reputation section from the evidence: matches, typical path, other versions, relationships.
pub fn build(
    store: &SqliteStore,
    evidence: &Evidence,
    own: &[Digest],
    name_key: Option<String>,
    libraries: &[String],
) -> Result<Reputation, sqlite::Error> {
    let matches = &evidence.matches;
    // Name for "other versions": the file's own original name, else what the strongest match calls it.
    let key = name_key.or_else(|| {
        matches.iter().find_map(|m| m.meta.original_name.as_deref().or(m.meta.file_name.as_deref())).map(normalise_name)
    });
    let additional_versions = match &key {
        Some(k) if !k.is_empty() => store.versions_of(k, own, MAX_OTHER_VERSIONS)?,
        _ => Vec::new(),
    };
    let prevalence = store.prevalence(own, store.fleet_floor())?;
    // The fleet's own data first, once enough participants saw the file.
    let fleet_path = prevalence.process.typical_path.clone();
    let typical_path =
        fleet_path.or_else(|| most_common(matches.iter().filter_map(|m| m.meta.path.as_deref()))).or_else(|| {
            // The built-in table knows where a Windows system binary lives; say so only when nothing disputes it.
            let k = key.as_deref()?;
            if !evidence.masquerade.is_empty() {
                return None;
            }
            let known = crate::masquerade::known(k)?;
            let dir = known.expected_dirs.first()?;
            Some(format!("{dir}\\{k} (typical for {k}, xcyclopedia)"))
        });
    let mut packages = Vec::new();
    for m in matches {
        if let Some(p) = &m.meta.package {
            if !packages.contains(p) && packages.len() < MAX_PACKAGES {
                packages.push(p.clone());
            }
        }
    }
    Ok(Reputation {
        store: store.path().display().to_string(),
        sources: store
            .active_feeds()
            .into_iter()
            .map(|f| SourceRef { name: f.source, format: f.format, version: f.version, date: f.date })
            .collect(),
        matches: matches.clone(),
        typical_path,
        additional_versions,
        relationships: Relationships { libraries: store.known_names(libraries)?, packages },
        signer_listings: evidence.signer_listings.clone(),
        remote: None,
        prevalence: Some(prevalence),
    })
}

/// What the store knows about one queried hash, as `filerep lookup` and `filerep serve` answer it: every
/// record matching any of `digests` (the kinds a hash of that length can be), the reputation section, and the
/// verdict from that evidence alone. `kind` in the answer is the kind that matched first, else the first one
/// asked for.
pub fn lookup_report(
    store: &SqliteStore,
    query: &str,
    digests: &[Digest],
) -> Result<crate::report::LookupReport, sqlite::Error> {
    let evidence = Evidence { matches: store.lookup(digests)?, ..Evidence::default() };
    let reputation = build(store, &evidence, digests, None, &[])?;
    let kind = evidence
        .matches
        .first()
        .map(|m| m.matched_by)
        .or_else(|| digests.first().map(Digest::kind))
        .unwrap_or(DigestKind::Sha256);
    Ok(crate::report::LookupReport {
        query: query.to_ascii_lowercase(),
        kind,
        reputation,
        providers: Vec::new(),
        verdict: verdict::decide_evidence(&evidence),
    })
}

/// [`lookup_report`] with a remote store's answer for the same query and the providers' answers; without a
/// local store (`--remote-only`) the answer is the remote's alone.
pub fn lookup_report_with(
    store: Option<&SqliteStore>,
    query: &str,
    digests: &[Digest],
    external: &External,
) -> Result<LookupReport, sqlite::Error> {
    let mut report = match store {
        Some(s) => lookup_report(s, query, digests)?,
        None => LookupReport {
            query: query.to_ascii_lowercase(),
            kind: digests.first().map_or(DigestKind::Sha256, Digest::kind),
            reputation: Reputation::default(),
            providers: Vec::new(),
            verdict: Default::default(),
        },
    };
    let mut evidence = Evidence {
        matches: report.reputation.matches.clone(),
        signer_listings: report.reputation.signer_listings.clone(),
        ..Evidence::default()
    };
    if let Some(remote) = &external.remote {
        if store.is_none() {
            report.reputation.store = remote.url.clone();
        }
        merge_remote(&mut report.reputation, &mut evidence, remote, digests);
    }
    report.providers = external.providers.clone();
    evidence.providers = external.providers.iter().filter_map(|p| p.evidence.clone()).collect();
    report.verdict = verdict::decide_evidence(&evidence);
    if let Some(m) = evidence.matches.first() {
        report.kind = m.matched_by;
    }
    Ok(report)
}

/// Every digest kind a bare hex string of this length can be: 32 → MD5 and imphash, 40 → SHA-1 and
/// authentihash-SHA-1, 64 → SHA-256 and authentihash-SHA-256; file hashes first.
pub fn kinds_of_hex_len(len: usize) -> &'static [DigestKind] {
    match len {
        32 => &[DigestKind::Md5, DigestKind::Imphash],
        40 => &[DigestKind::Sha1, DigestKind::AuthentihashSha1],
        64 => &[DigestKind::Sha256, DigestKind::AuthentihashSha256],
        _ => &[],
    }
}

/// Parse a query hash: `HEX` (every kind of that length, see [`kinds_of_hex_len`]) or `KIND:HEX`
/// (`imphash:…`, `authentihash-sha256:…`). Strict: ASCII hex of the exact length, nothing else.
pub fn parse_query(s: &str) -> Result<Vec<Digest>, String> {
    const ACCEPTED: &str = "accepted: ASCII hex of 32 (MD5, imphash), 40 (SHA-1, authentihash-sha1) or 64 (SHA-256, \
                            authentihash-sha256) characters, optionally prefixed by a kind and a colon \
                            (imphash:HEX)";
    let shown = || crate::term::sanitize(&s.chars().take(80).collect::<String>()).into_owned();
    if let Some((kind, hex)) = s.split_once(':') {
        let kind: DigestKind = kind.parse().map_err(|e| format!("invalid hash '{}': {e}; {ACCEPTED}", shown()))?;
        return Digest::parse_hex(kind, hex)
            .map(|d| vec![d])
            .map_err(|e| format!("invalid hash '{}': {e}; {ACCEPTED}", shown()));
    }
    let kinds = kinds_of_hex_len(s.len());
    if kinds.is_empty() {
        return Err(format!("invalid hash '{}': {} characters; {ACCEPTED}", shown(), s.chars().count()));
    }
    kinds
        .iter()
        .map(|k| Digest::parse_hex(*k, s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid hash '{}': {e}; {ACCEPTED}", shown()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_strictly() {
        let d = parse_query("D41D8CD98F00B204E9800998ECF8427E").unwrap();
        assert_eq!(d.iter().map(|d| d.kind()).collect::<Vec<_>>(), [DigestKind::Md5, DigestKind::Imphash]);
        assert_eq!(d[0].hex(), "d41d8cd98f00b204e9800998ecf8427e");
        let d = parse_query("imphash:d41d8cd98f00b204e9800998ecf8427e").unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].kind(), DigestKind::Imphash);
        for bad in
            ["", "xyz", "d41d8cd98f00b204e9800998ecf8427", "g41d8cd98f00b204e9800998ecf8427e", "md4:00", "sha1:00"]
        {
            let e = parse_query(bad).unwrap_err();
            assert!(e.contains("accepted: ASCII hex"), "{bad}: {e}");
        }
        assert!(!parse_query("\u{1b}[31m").unwrap_err().contains('\u{1b}'));
    }
}

//! Windows catalog files (`.cat`) as a feed: `db import --format catalog FILE|DIR`.
//!
//! Each catalog is verified as `check --catalog` verifies it (signer, timestamp, chain to a bundled anchor);
//! the members of a catalog whose signature is valid become records keyed by their hash (the image hash for
//! PE members, the file hash otherwise), `known-good` unless `--class` says otherwise, with the member's file
//! name, the catalog's signer and the catalog's file name as the package. A catalog that does not verify is
//! skipped with its reason (and aborts the import under `--strict`), so that an untrusted list never vouches
//! for anything. A directory is walked (Windows keeps catalogs in `CatRoot\{GUID}\`), files ending in `.cat`
//! only, in name order, at most 8 levels deep.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use super::{Error, FeedInfo, ParseOptions, Sink};
use crate::authenticode::catalog::{self, MAX_CATALOG_SIZE};
use crate::authenticode::trust::TrustStore;
use crate::authenticode::{Verifier, short_name};
use crate::store::{Class, Digest, DigestKind, FeedRecord, Meta};

/// Directory levels walked at most.
const MAX_DEPTH: usize = 8;

/// Import the catalogs at `path`. Returns the feed's info and the SHA-256 over every catalog's bytes (in
/// walk order), which makes a re-import of the same catalogs idempotent.
pub fn parse(path: &Path, opts: &ParseOptions, sink: &mut dyn Sink) -> Result<(FeedInfo, String), Error> {
    let mut files = Vec::new();
    collect(path, 0, &mut files)?;
    if files.is_empty() {
        return Err(Error::WrongFormat { format: "catalog", why: format!("{}: no .cat file here", path.display()) });
    }
    let mut trust = TrustStore::bundled();
    for f in &opts.trust {
        trust.add_file(f).map_err(|e| Error::Aborted(format!("--trust {e}")))?;
    }
    let verifier = Verifier::new(Arc::new(trust));
    let mut all = Sha256::new();
    let mut latest: Option<String> = None;
    for (n, file) in files.iter().enumerate() {
        let line = n as u64 + 1;
        let shown = file.display().to_string();
        let bytes = match std::fs::metadata(file) {
            Ok(m) if m.len() > MAX_CATALOG_SIZE => {
                sink.skipped(line, &format!("{shown}: larger than {} MiB", MAX_CATALOG_SIZE >> 20))?;
                continue;
            }
            _ => std::fs::read(file)?,
        };
        all.update((bytes.len() as u64).to_le_bytes());
        all.update(&bytes);
        let cat = match catalog::parse(&shown, &bytes, &verifier) {
            Ok(c) => c,
            Err(e) => {
                sink.skipped(line, &format!("{shown}: {e}"))?;
                continue;
            }
        };
        if !cat.valid() {
            let why = cat.signature.errors.first().cloned().unwrap_or_else(|| "its signature does not verify".into());
            sink.skipped(line, &format!("{shown}: not trusted: {why}"))?;
            continue;
        }
        if let Some(t) = &cat.signature.timestamp {
            if latest.as_deref().is_none_or(|l| l < t.as_str()) {
                latest = Some(t.clone());
            }
        }
        let package = file.file_name().map(|n| n.to_string_lossy().into_owned());
        let signer = cat.signature.signer_subject.as_deref().map(|s| short_name(s).to_string());
        for m in &cat.members {
            let kind = match (m.pe, m.hash.len()) {
                (true, 20) => DigestKind::AuthentihashSha1,
                (true, 32) => DigestKind::AuthentihashSha256,
                (false, 20) => DigestKind::Sha1,
                (false, 32) => DigestKind::Sha256,
                (_, len) => {
                    sink.skipped(line, &format!("{shown}: a member hash of {len} bytes"))?;
                    continue;
                }
            };
            let Some(digest) = Digest::from_bytes(kind, &m.hash) else { continue };
            let meta = Meta {
                file_name: m.name.clone(),
                signer: signer.clone(),
                package: package.clone(),
                reference: Some(format!("catalog {shown}")),
                ..Default::default()
            };
            sink.record(FeedRecord { class: opts.class.unwrap_or(Class::KnownGood), digests: vec![digest], meta })?;
        }
    }
    let date = latest.map(|t| t.get(..10).unwrap_or(&t).to_string());
    Ok((FeedInfo { version: None, date }, crate::hex::encode(&all.finalize())))
}

fn collect(path: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    if depth >= MAX_DEPTH {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            collect(&e, depth + 1, out)?;
        } else if e.extension().is_some_and(|x| x.eq_ignore_ascii_case("cat")) {
            out.push(e);
        }
    }
    Ok(())
}

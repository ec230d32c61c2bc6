//! The pipeline for one input: sample → hashing → analysis → verdict → report.
//!
//! Errors reading the input become a report with `error` set (and the caller prints one line and exits 2);
//! nothing here prints.

use base64::Engine;

use std::sync::Arc;

use crate::analysis::{self, authenticode};
use crate::authenticode::crypto::HashAlg;
use crate::authenticode::trust::TrustStore;
use crate::authenticode::{ImageHashes, Verifier};
use crate::hashing::{self, Digests, Plan};
use crate::report::{Anomaly, Format, Hashes, Report};
use crate::sample::{self, Content, Input};
use crate::verdict;

/// Options for checking one input.
#[derive(Debug, Clone)]
pub struct Options {
    /// Bytes read into memory at most; above it the digests are streamed and the file is not fully analysed.
    pub max_size: u64,
    /// Trust anchors and clock for Authenticode verification.
    pub verifier: Arc<Verifier>,
    /// Compute the fuzzy hashes (TLSH, ssdeep): about two thirds of the hashing time, and nothing in the
    /// verdict or the store uses them (`scan` leaves them out unless asked).
    pub fuzzy: bool,
    /// Split the work on one large file over two threads (hashing beside the analysis, and the digests over
    /// two threads). Off when the caller already checks one file per core: the extra threads only cost
    /// context switches then.
    pub threads_per_file: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_size: sample::DEFAULT_MAX_SIZE,
            verifier: Arc::new(Verifier::new(Arc::new(TrustStore::bundled()))),
            fuzzy: true,
            threads_per_file: true,
        }
    }
}

/// Check one input: read it once, hash it, analyse it and decide the verdict.
pub fn check(input: &Input, opts: &Options) -> Report {
    let report = Report {
        path: input.display_name(),
        path_base64: input.raw_path_bytes().map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
        ..Default::default()
    };
    finish(report, sample::load(input, opts.max_size), opts)
}

/// Check a file found by a directory walk: `None` when its first bytes are not an executable's (unless
/// `all_files`); a file that cannot be read still gets a report, with `error` set.
pub fn check_if_executable(path: &std::path::Path, opts: &Options, all_files: bool) -> Option<Report> {
    let input = Input::Path(path.to_path_buf());
    let loaded = match sample::load_if_executable(path, opts.max_size, all_files) {
        Ok(None) => return None,
        Ok(Some(content)) => Ok(content),
        Err(e) => Err(e),
    };
    let report = Report {
        path: input.display_name(),
        path_base64: input.raw_path_bytes().map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
        ..Default::default()
    };
    Some(finish(report, loaded, opts))
}

fn finish(mut report: Report, loaded: Result<Content, sample::Error>, opts: &Options) -> Report {
    match loaded {
        Ok(Content::Whole(data)) => fill_from_bytes(&mut report, &data, opts),
        Ok(Content::OverCap { head, mut rest }) => {
            let format = analysis::detect_format(&head);
            match hashing::digest_stream(head, &mut rest) {
                Ok(d) => {
                    report.format = format;
                    set_file_digests(&mut report, &d);
                    report.fully_analysed = false;
                    let msg = format!(
                        "larger than the {} MiB size cap: only the digests were computed",
                        opts.max_size / (1024 * 1024)
                    );
                    report.limits.push(msg.clone());
                    report.anomalies.push(Anomaly::limiting("size-cap", msg));
                }
                Err(e) => report.error = Some(sample::Error::from(e).to_string()),
            }
        }
        Err(e) => report.error = Some(e.to_string()),
    }
    report.hardening = crate::hardening::evaluate(&report);
    report.verdict = verdict::decide(&report, &crate::reputation::local_evidence(&report));
    report
}

/// Build the report of a file held whole in memory (also the entry point for fuzzing and tests).
pub fn report_from_bytes(path: &str, data: &[u8]) -> Report {
    let mut report = Report { path: path.to_string(), ..Default::default() };
    fill_from_bytes(&mut report, data, &Options::default());
    report.hardening = crate::hardening::evaluate(&report);
    report.verdict = verdict::decide(&report, &crate::reputation::local_evidence(&report));
    report
}

fn fill_from_bytes(report: &mut Report, data: &[u8], opts: &Options) {
    let (verifier, fuzzy) = (&*opts.verifier, opts.fuzzy);
    let format = analysis::detect_format(data);
    let layout = if format == Format::Pe { authenticode::image_hash_layout(data, data.len() as u64) } else { None };
    let plan = Plan {
        fuzzy,
        authentihash: layout.as_ref().map(|l| l.hashed.clone()),
        skip_entropy: format == Format::Pe,
        one_thread: !opts.threads_per_file,
    };
    // For a large file the analysis runs while the digests are computed; a small one is not worth a thread.
    let (digests, facts) = if data.len() >= hashing::PARALLEL_THRESHOLD && opts.threads_per_file {
        std::thread::scope(|s| {
            let hashing = s.spawn(|| hashing::digest_in_memory(data, &plan));
            let facts = analysis::analyse(data);
            let digests = hashing.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            (digests, facts)
        })
    } else {
        (hashing::digest_in_memory(data, &plan), analysis::analyse(data))
    };

    set_file_digests(report, &digests);
    if plan.skip_entropy {
        // The PE analysis assembled the whole-file histogram; when it could not read the headers, one pass here.
        report.entropy = Some(facts.entropy.unwrap_or_else(|| crate::entropy::shannon(data)));
    }
    report.hashes.tlsh = digests.tlsh;
    report.hashes.ssdeep = digests.ssdeep;
    report.hashes.authentihash_sha1 = digests.authentihash_sha1;
    report.hashes.authentihash_sha256 = digests.authentihash_sha256;
    report.hashes.imphash = facts.imphash.clone();
    report.hashes.rich_header_md5 = facts.rich_header_md5.clone();
    report.format = facts.format;
    report.limits = facts.limits();
    report.fully_analysed = report.limits.is_empty();
    report.pe = facts.pe;
    report.elf = facts.elf;
    report.macho = facts.macho;
    report.anomalies = facts.anomalies;
    if let Some(layout) = &layout {
        let known = [
            (HashAlg::Sha1, report.hashes.authentihash_sha1.as_deref()),
            (HashAlg::Sha256, report.hashes.authentihash_sha256.as_deref()),
        ];
        let mut hashes = ImageHashes::new(data, &layout.hashed, &known);
        report.signature = Some(crate::authenticode::verify_pe(data, layout, &mut hashes, verifier));
    }
}

fn set_file_digests(report: &mut Report, d: &Digests) {
    report.size = Some(d.size);
    report.entropy = Some(d.entropy);
    report.hashes = Hashes {
        md5: Some(d.md5.clone()),
        sha1: Some(d.sha1.clone()),
        sha256: Some(d.sha256.clone()),
        ..Default::default()
    };
}

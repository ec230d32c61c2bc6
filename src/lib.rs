//! filerep: file reputation from the command line.
//!
//! One file flows one way through the pipeline, and every stage is a pure function of the one before:
//!
//! ```text
//! path ─► sample   (open, size limits, read ONCE into memory; beyond a cap, stream the hashes)
//!      ─► hashing  (every digest in ONE pass over the bytes)
//!      ─► analysis (goblin in, our own facts out: PE/ELF/Mach-O, anomalies instead of failures)
//!      ─► verdict  (pure policy: facts → level + reasons)
//!      ─► report   (our own serialisable Report) ─► renderer (card | json | jsonl)
//! ```
//!
//! [`pipeline::check_sample`] runs the stages for one input; the `filerep` binary (`cli`) drives it for each
//! argument and decides the exit status once, at the end.

pub mod analysis;
pub mod authenticode;
pub mod cli;
pub mod config;
pub mod entropy;
pub mod hardening;
pub mod hashing;
pub mod hex;
pub mod masquerade;
pub mod observe;
pub mod pipeline;
pub mod providers;
pub mod remote;
pub mod report;
pub mod reputation;
pub mod sample;
pub mod scan;
pub mod serve;
pub mod ssdeep;
pub mod store;
pub mod term;
#[cfg(test)]
mod test_vectors;
pub mod verdict;

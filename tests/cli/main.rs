//! The one integration-test binary: runs the real `filerep` binary (and, for the mutation test, the library
//! entry point) on generated fixtures and on the fetched corpus.

#[path = "../fixtures/mod.rs"]
mod fixtures;

mod authenticode;
mod bad_input;
mod check;
mod conformance;
mod fleet;
mod hardening;
mod mutation;
mod observe;
mod online;
mod providers;
mod remote;
mod sarif;
mod scan;
mod serve;
mod sigkit;
mod signatures;
mod snapshots;
mod store;
mod support;

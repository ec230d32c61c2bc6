//! `filerep serve`: the reputation store over HTTP (see `crate::serve` and docs/serve.md).
//!
//! This edge reads the options and the write token (`FILEREP_SERVE_TOKEN` or `--token-file`; never printed),
//! prints one line to stderr once the port is open (tests read the port from it), and maps failures to
//! exit status 2. Shutting down on SIGTERM or SIGINT is a success (0).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::EXIT_OK;
use super::check::parse_size;
use crate::serve::Config;

/// Arguments of `filerep serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address and port to listen on (port 0: any free port, printed on stderr).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:7878")]
    pub listen: SocketAddr,
    /// Read the write token from this file (not readable by others; one line). Default: $FILEREP_SERVE_TOKEN;
    /// without a token, writes are refused.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Request body limit (suffixes K, M, G); imports and reports have their own.
    #[arg(long, value_name = "SIZE", default_value = "1M", value_parser = parse_size)]
    pub max_body_bytes: u64,
    /// Body limit of a feed upload (`POST /v1/feeds/{format}`).
    #[arg(long, value_name = "SIZE", default_value = "512M", value_parser = parse_size)]
    pub max_import_bytes: u64,
    /// Body limit of `POST /v1/reports` (each report is at most 2 MiB).
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_size)]
    pub max_report_body_bytes: u64,
    /// Open connections at most; more wait to be accepted.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_connections: usize,
    /// Requests handled at once at most; beyond, 503 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub max_in_flight: usize,
    /// Requests a second allowed per client address (0: no limit); beyond, 429 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub rate_limit: u32,
    /// Burst allowed per client address above the rate (at least the rate).
    #[arg(long, value_name = "N", default_value_t = 400)]
    pub rate_burst: u32,
    /// Time a client has to send a request's headers before the connection is dropped (e.g. 10s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// Time a request (body included) may take; beyond, 408.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Time a feed upload and its import may take.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub import_timeout: Duration,
    /// Time in-flight requests get to finish after SIGTERM.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// Worker threads (default: one per CPU).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Log one line per request to stderr (method, path, status, time). Off by default: the hashes people
    /// look up are private.
    #[arg(long)]
    pub log: bool,
    /// Fleet prevalence: withhold every figure of a file until this many unique participants reported it
    /// (at least 5).
    #[arg(long, value_name = "N", default_value_t = crate::store::fleet::DEFAULT_FLOOR,
          value_parser = clap::value_parser!(u64).range(crate::store::fleet::MIN_FLOOR..))]
    pub min_participants: u64,
    /// Files in one `POST /v1/sightings` batch at most.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_sightings_per_batch: usize,
    /// Body limit of `POST /v1/sightings`.
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = parse_size)]
    pub max_sightings_body_bytes: u64,
    /// A participant may send one sightings batch per this interval on average (bursts of
    /// --sightings-burst); beyond, 429 with Retry-After.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub sightings_interval: Duration,
    /// Sightings batches a participant may send at once.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub sightings_burst: u32,
}

/// `10`, `10s`, `500ms`, `2m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid duration '{s}': use e.g. 10s, 500ms, 2m or 1h"))?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("invalid duration '{s}': use e.g. 10s, 500ms, 2m or 1h")),
    };
    if d.is_zero() {
        return Err(format!("invalid duration '{s}': must be more than zero"));
    }
    Ok(d)
}

/// The write token: from `--token-file` (refused when others may read it), else `FILEREP_SERVE_TOKEN`.
fn read_token(file: Option<&Path>) -> Result<Option<String>> {
    let token = match file {
        Some(path) => {
            let meta = std::fs::metadata(path).with_context(|| format!("token file {}", path.display()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                if meta.permissions().mode() & 0o004 != 0 {
                    bail!("token file {} is readable by every user: chmod o-r (or 600) it", path.display());
                }
            }
            if meta.len() > 4096 {
                bail!("token file {}: more than 4096 bytes; expected one line", path.display());
            }
            let text = std::fs::read_to_string(path).with_context(|| format!("token file {}", path.display()))?;
            let token = text.trim().to_string();
            if token.is_empty() {
                bail!("token file {} is empty", path.display());
            }
            Some(token)
        }
        None => match std::env::var("FILEREP_SERVE_TOKEN") {
            Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
            Ok(_) => bail!("FILEREP_SERVE_TOKEN is set but empty"),
            Err(std::env::VarError::NotUnicode(_)) => bail!("FILEREP_SERVE_TOKEN is not valid UTF-8"),
            Err(std::env::VarError::NotPresent) => None,
        },
    };
    if token.as_deref().is_some_and(|t| t.chars().any(|c| c.is_control() || c.is_whitespace())) {
        bail!("the write token must be one word of printable characters");
    }
    Ok(token)
}

/// Run `serve` until SIGTERM or SIGINT.
pub fn run(args: &Args, db: Option<&Path>) -> Result<u8> {
    let store = crate::store::sqlite::resolve_path(db)?;
    let token = read_token(args.token_file.as_deref())?;
    let writes = token.is_some();
    let cfg = Config {
        listen: args.listen,
        store: store.clone(),
        token,
        max_body_bytes: args.max_body_bytes,
        max_import_bytes: args.max_import_bytes,
        max_report_body_bytes: args.max_report_body_bytes,
        max_connections: args.max_connections,
        max_in_flight: args.max_in_flight,
        rate_limit: args.rate_limit,
        rate_burst: args.rate_burst,
        header_timeout: args.header_timeout,
        request_timeout: args.request_timeout,
        import_timeout: args.import_timeout,
        shutdown_timeout: args.shutdown_timeout,
        threads: args.threads.unwrap_or(0),
        log: args.log,
        min_participants: args.min_participants,
        max_sightings_body_bytes: args.max_sightings_body_bytes,
        max_sightings_per_batch: args.max_sightings_per_batch.max(1),
        sightings_interval: args.sightings_interval,
        sightings_burst: args.sightings_burst,
    };
    // The CLI's SIGINT handler exits at once with 130; the server shuts down gracefully instead.
    default_sigint();
    crate::serve::run(cfg, |addr| {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "filerep serve: listening on http://{addr} (store {}; writes {})",
            crate::term::sanitize(&store.display().to_string()),
            if writes { "enabled" } else { "disabled" }
        );
        let _ = err.flush();
    })
    .with_context(|| format!("serve {}", args.listen))?;
    Ok(EXIT_OK)
}

#[cfg(unix)]
fn default_sigint() {
    // SAFETY: restores the default disposition of SIGINT; no handler code, no pointers.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn default_sigint() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("10 s").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("s").is_err());
    }
}

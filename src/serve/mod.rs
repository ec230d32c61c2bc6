//! `filerep serve`: the reputation store over HTTP, for the remote-store client and for browsers.
//!
//! This module owns the routes, their JSON and the guards around them: a body limit per route, header-read
//! and request timeouts, a cap on connections and on requests in flight, a token bucket per peer address,
//! strict hash validation and a bearer token for writes, compared in constant time. Answers reuse the
//! library's types (`LookupReport`, `FeedRow`), so the JSON is the one `filerep lookup --json` prints. The
//! HTML card page is in [`html`]; the pure guards in [`limits`]. It never prints: the CLI edge
//! (`cli::serve`) is told where it listens through a callback, and access logging is off unless asked for
//! (the hashes people ask about are private).
//!
//! Store work is blocking (rusqlite): it runs on tokio's blocking pool, on read-only stores kept in a small
//! pool. Before each use a pooled store checks SQLite's `data_version` and reloads its active feeds when
//! another connection switched them (`filerep db import` while the server runs, or `POST /v1/feeds`).
//! Writes take the server's own writer mutex, then open the store for writing (the store's writer lock:
//! another process writing makes it a 503 "store busy").

pub mod html;
pub mod limits;
pub mod sightings;

use std::convert::Infallible;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path as UrlPath, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::report::LookupReport;
use crate::store::feeds::{DEFAULT_MAX_EXPANDED, FeedFormat, ParseOptions};
use crate::store::sqlite::{self, CatalogueState, FeedRow, ImportRequest, Mode, SqliteStore};
use crate::store::{Class, Digest, DigestKind, Meta};

use limits::{RateLimiter, WriteToken, wants_html};

/// Hashes in one `POST /v1/lookup` at most.
pub const MAX_LOOKUP_HASHES: usize = 1_000;
/// Records in one `POST /v1/records` at most.
pub const MAX_RECORDS: usize = 10_000;
/// Reports in one `POST /v1/reports` at most.
pub const MAX_REPORTS: usize = 1_000;
/// One stored report's JSON at most.
pub const MAX_REPORT_BYTES: usize = 2 << 20;
/// Read stores kept in the pool at most (more may be open at once under load; the extra ones are closed).
const MAX_POOLED_READERS: usize = 16;
/// The JSON contract version of the server's own documents.
pub const SCHEMA_VERSION: u32 = 1;

/// The message of the 403 a server without a token gives to writes.
pub const WRITES_DISABLED: &str = "writes are disabled: start filerep serve with FILEREP_SERVE_TOKEN or --token-file";

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The store.
    pub store: PathBuf,
    /// The write token (trimmed, not empty); `None` disables writes.
    pub token: Option<String>,
    /// Request body limit for every route but imports and reports.
    pub max_body_bytes: u64,
    /// Request body limit for `POST /v1/feeds/{format}`.
    pub max_import_bytes: u64,
    /// Request body limit for `POST /v1/reports`.
    pub max_report_body_bytes: u64,
    /// Open connections at most (further ones wait in the listen backlog).
    pub max_connections: usize,
    /// Requests being handled at once at most (503 beyond).
    pub max_in_flight: usize,
    /// Requests a second per peer address (0: no rate limit).
    pub rate_limit: u32,
    /// Burst per peer address.
    pub rate_burst: u32,
    /// Time a client has to send a request's headers.
    pub header_timeout: Duration,
    /// Time a request (body included) may take, imports excepted.
    pub request_timeout: Duration,
    /// Time an import (upload and import) may take.
    pub import_timeout: Duration,
    /// Time in-flight requests get to finish after SIGTERM.
    pub shutdown_timeout: Duration,
    /// Worker threads (0: one per CPU).
    pub threads: usize,
    /// Log one line per request to stderr (method, path, status, time).
    pub log: bool,
    /// Fleet prevalence is withheld below this many unique participants (never below 5).
    pub min_participants: u64,
    /// Request body limit for `POST /v1/sightings`.
    pub max_sightings_body_bytes: u64,
    /// Files in one `POST /v1/sightings` batch at most.
    pub max_sightings_per_batch: usize,
    /// Sightings batches a participant may send: one per this interval on average …
    pub sightings_interval: Duration,
    /// … with bursts of this many.
    pub sightings_burst: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            store: PathBuf::new(),
            token: None,
            max_body_bytes: 1 << 20,
            max_import_bytes: 512 << 20,
            max_report_body_bytes: 64 << 20,
            max_connections: 1024,
            max_in_flight: 512,
            rate_limit: 200,
            rate_burst: 400,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            import_timeout: Duration::from_secs(3600),
            shutdown_timeout: Duration::from_secs(30),
            threads: 0,
            log: false,
            min_participants: crate::store::fleet::DEFAULT_FLOOR,
            max_sightings_body_bytes: 16 << 20,
            max_sightings_per_batch: 10_000,
            sightings_interval: Duration::from_secs(60),
            sightings_burst: 10,
        }
    }
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The async runtime could not start.
    #[error("cannot start the server's runtime: {0}")]
    Runtime(std::io::Error),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] sqlite::Error),
}

// ----------------------------------------------------------------------------------------------- state

/// A read-only store and the catalogue state it loaded.
struct Reader {
    store: SqliteStore,
    state: CatalogueState,
}

impl Reader {
    fn open(path: &Path, floor: u64) -> Result<Reader, sqlite::Error> {
        let mut store = SqliteStore::open(path, Mode::Read)?;
        store.set_fleet_floor(floor);
        let state = store.catalogue_state()?;
        Ok(Reader { store, state })
    }

    /// Reload the active feeds when another connection switched them since the last use.
    fn refresh(&mut self) -> Result<(), sqlite::Error> {
        if self.store.data_version()? == self.state.data_version {
            return Ok(());
        }
        let now = self.store.catalogue_state()?;
        if now.signature != self.state.signature {
            self.store.reload_feeds()?;
        }
        self.state = now;
        Ok(())
    }
}

struct AppState {
    cfg: Config,
    readers: Mutex<Vec<Reader>>,
    writer: tokio::sync::Mutex<()>,
    token: Option<WriteToken>,
    limiter: Option<RateLimiter>,
    participants: RateLimiter<String>,
    sightings: Mutex<Vec<SightingsJob>>,
    in_flight: Arc<Semaphore>,
    uploads: AtomicU64,
}

type App = Arc<AppState>;

/// A checked `POST /v1/sightings` waiting for the writer, and where its answer goes.
type SightingsJob =
    (sqlite::ObservationRow, Vec<sqlite::SightingRow>, tokio::sync::oneshot::Sender<Result<Option<i64>, ApiError>>);

impl AppState {
    /// Run `f` on a pooled read store, on the blocking pool.
    async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&SqliteStore) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let app = self.clone();
        blocking(move || {
            let pooled = app.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let mut reader = match pooled {
                Some(r) => r,
                None => Reader::open(&app.cfg.store, app.cfg.min_participants).map_err(ApiError::store)?,
            };
            reader.refresh().map_err(ApiError::store)?;
            let out = f(&reader.store);
            let mut pool = app.readers.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < MAX_POOLED_READERS {
                pool.push(reader);
            }
            out
        })
        .await
    }

    /// Run `f` on the store opened for writing (one writer at a time in this server), on the blocking pool.
    async fn write<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut SqliteStore) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let _one_writer = self.writer.lock().await;
        let path = self.cfg.store.clone();
        blocking(move || {
            let mut store = SqliteStore::open(&path, Mode::Write).map_err(ApiError::store)?;
            f(&mut store)
        })
        .await
    }
}

impl AppState {
    /// Record a sightings batch. Group commit: the batch joins a queue, and whoever gets the writer next
    /// records every batch queued by then in one transaction (a server that receives many machines at once
    /// writes each shared page once per transaction, not once per machine).
    async fn record_sightings(
        self: &Arc<Self>,
        run: sqlite::ObservationRow,
        rows: Vec<sqlite::SightingRow>,
    ) -> Result<Option<i64>, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.sightings.lock().unwrap_or_else(|p| p.into_inner()).push((run, rows, tx));
        {
            let _one_writer = self.writer.lock().await;
            let jobs = std::mem::take(&mut *self.sightings.lock().unwrap_or_else(|p| p.into_inner()));
            if !jobs.is_empty() {
                let path = self.cfg.store.clone();
                // Errors reach each waiting request through its channel.
                let _ = blocking(move || {
                    let result = SqliteStore::open(&path, Mode::Write).and_then(|store| {
                        let runs: Vec<(&sqlite::ObservationRow, &[sqlite::SightingRow])> =
                            jobs.iter().map(|(run, rows, _)| (run, rows.as_slice())).collect();
                        store.record_observations(&runs)
                    });
                    match result {
                        Ok(ids) => {
                            for ((_, _, tx), id) in jobs.into_iter().zip(ids) {
                                let _ = tx.send(Ok(id));
                            }
                        }
                        Err(e) => {
                            let e = ApiError::store(e);
                            for (_, _, tx) in jobs {
                                let _ = tx.send(Err(e.clone()));
                            }
                        }
                    }
                    Ok(())
                })
                .await;
            }
        }
        match rx.await {
            Ok(answer) => answer,
            Err(_) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error while recording sightings")),
        }
    }
}

/// Run blocking store work off the async workers; a panic there is a 500, never a dead server.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(_) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error while handling the request")),
    }
}

// ---------------------------------------------------------------------------------------------- errors

/// An error answer: `{"error": "..."}` (or a small HTML page for a browser).
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

/// The message of an error response, kept so that a browser's answer can become an HTML page.
#[derive(Debug, Clone)]
struct ErrorMessage(String);

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        // One line: no stack traces, no multi-line chains.
        let message: String = message.into();
        let message = message.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
        ApiError { status, message, retry_after: None }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    fn store(e: sqlite::Error) -> ApiError {
        let status = match &e {
            sqlite::Error::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            sqlite::Error::Full { .. } => StatusCode::INSUFFICIENT_STORAGE,
            sqlite::Error::Invalid(_) | sqlite::Error::Feed(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message }).to_string();
        let mut resp = (self.status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp.extensions_mut().insert(ErrorMessage(self.message));
        resp
    }
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the answer could not be serialised").into_response()
        }
    }
}

// --------------------------------------------------------------------------------------------- serving

/// The peer address of a connection, attached to each of its requests.
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

/// Open the store (creating or upgrading it first), bind, call `on_listening` with the bound address, and
/// serve until SIGTERM or SIGINT; then stop accepting and let in-flight requests finish (up to
/// `shutdown_timeout`).
pub fn run(cfg: Config, on_listening: impl FnOnce(SocketAddr)) -> Result<(), Error> {
    prepare_store(&cfg.store)?;
    // The first reader proves the store readable before the port opens.
    let first = Reader::open(&cfg.store, cfg.min_participants)?;
    let threads =
        if cfg.threads == 0 { std::thread::available_parallelism().map_or(2, |n| n.get()) } else { cfg.threads };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .max_blocking_threads((threads * 4).max(8))
        .thread_name("filerep-serve")
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let app = Arc::new(AppState {
        token: cfg.token.as_deref().map(WriteToken::new),
        limiter: (cfg.rate_limit > 0).then(|| RateLimiter::new(cfg.rate_limit, cfg.rate_burst.max(cfg.rate_limit))),
        in_flight: Arc::new(Semaphore::new(cfg.max_in_flight.clamp(1, Semaphore::MAX_PERMITS))),
        sightings: Mutex::new(Vec::new()),
        participants: RateLimiter::with_rate(
            1.0 / cfg.sightings_interval.as_secs_f64().max(0.001),
            cfg.sightings_burst,
        ),
        readers: Mutex::new(vec![first]),
        writer: tokio::sync::Mutex::new(()),
        uploads: AtomicU64::new(0),
        cfg,
    });
    let result = rt.block_on(serve(app.clone(), on_listening));
    // Blocking store work still running after the grace period is abandoned, not waited for.
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Create or migrate the store with a short-lived writer, so that the pooled readers never need to (a reader
/// that migrates would keep the writer lock as long as it lives).
fn prepare_store(path: &Path) -> Result<(), sqlite::Error> {
    match SqliteStore::open(path, Mode::Write) {
        Ok(_) => Ok(()),
        // Another process is writing (an import): an existing store is served as it is.
        Err(sqlite::Error::Busy { .. }) if path.exists() => Ok(()),
        Err(e) => Err(e),
    }
}

/// The routes and their guards.
fn router(app: App) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/files/{hash}", get(get_file))
        .route("/files/{hash}", get(get_file_page))
        .route("/v1/lookup", post(post_lookup))
        .route("/v1/info", get(get_info))
        .route("/v1/records", post(post_records))
        .route("/v1/reports", post(post_reports))
        .route("/v1/sightings", post(post_sightings))
        .route("/v1/feeds/{format}", post(post_feed))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

async fn serve(app: App, on_listening: impl FnOnce(SocketAddr)) -> Result<(), Error> {
    let addr = app.cfg.listen;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| Error::Bind { addr, source })?;
    let local = listener.local_addr().map_err(|source| Error::Bind { addr, source })?;
    let router = router(app.clone());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(app.cfg.header_timeout)
        .max_buf_size(64 * 1024)
        .keep_alive(true);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(app.cfg.max_connections.clamp(1, Semaphore::MAX_PERMITS)));
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    on_listening(local);
    loop {
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(_) => {
                    // Out of file descriptors, or a connection reset before accept: wait a little, go on.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(Peer(peer));
            let router = router.clone();
            async move { Ok::<_, Infallible>(tower::ServiceExt::oneshot(router, req.map(Body::new)).await.into_response()) }
        });
        let conn = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(app.cfg.shutdown_timeout) => {}
    }
    Ok(())
}

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

// ---------------------------------------------------------------------------------------------- guards

/// The body limit of a route.
fn body_limit(cfg: &Config, path: &str) -> u64 {
    if path.starts_with("/v1/feeds/") {
        cfg.max_import_bytes
    } else if path == "/v1/reports" {
        cfg.max_report_body_bytes
    } else if path == "/v1/sightings" {
        cfg.max_sightings_body_bytes
    } else {
        cfg.max_body_bytes
    }
}

/// Every request passes here: rate limit (429), requests in flight (503), declared body size (413), the
/// request timeout (408); then every answer gets its security headers, and error answers without a body
/// (from the router: 404, 405) get one in JSON, or an HTML page for a browser.
async fn guard(State(app): State<App>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let html = wants_html(req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut resp = guarded(&app, req, next).await;
    finish(&mut resp, html);
    if app.cfg.log {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "filerep serve: {} {} {} {:.1} ms",
            method,
            crate::term::sanitize(&path),
            resp.status().as_u16(),
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    resp
}

async fn guarded(app: &App, req: Request, next: Next) -> Response {
    if let (Some(limiter), Some(Peer(peer))) = (&app.limiter, req.extensions().get::<Peer>().copied()) {
        if let Err(wait) = limiter.check(canonical_ip(peer.ip()), Instant::now()) {
            let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded: slow down and retry");
            e.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
            return e.into_response();
        }
    }
    let Ok(_permit) = app.in_flight.clone().try_acquire_owned() else {
        let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server busy: too many requests in flight");
        e.retry_after = Some(1);
        return e.into_response();
    };
    let path = req.uri().path();
    let limit = body_limit(&app.cfg, path);
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return ApiError::too_large(format!("request body too large: the limit is {limit} bytes")).into_response();
    }
    let timeout = if path.starts_with("/v1/feeds/") { app.cfg.import_timeout } else { app.cfg.request_timeout };
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("request timed out: not complete within {} s", timeout.as_secs()),
        )
        .into_response(),
    }
}

/// An IPv4 peer seen through an IPv6 socket is the same peer.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn finish(resp: &mut Response, html: bool) {
    let status = resp.status();
    if status.is_client_error() || status.is_server_error() {
        let message = match resp.extensions().get::<ErrorMessage>() {
            Some(m) => Some(m.0.clone()),
            // An answer of the router or an extractor, not ours: one JSON line with the status's reason.
            None => Some(status.canonical_reason().unwrap_or("error").to_lowercase()),
        };
        if let Some(message) = message {
            let keep: Vec<_> = [header::RETRY_AFTER, header::WWW_AUTHENTICATE, header::ALLOW]
                .into_iter()
                .filter_map(|h| resp.headers().get(&h).cloned().map(|v| (h, v)))
                .collect();
            let mut new = if html {
                (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html::error_page(status, &message))
                    .into_response()
            } else {
                ApiError::new(status, message).into_response()
            };
            for (h, v) in keep {
                new.headers_mut().insert(h, v);
            }
            *resp = new;
        }
    }
    let h = resp.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    let is_html = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(html::CSP));
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
}

/// Check the bearer token of a write.
fn authorize(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &app.token else {
        return Err(ApiError::new(StatusCode::FORBIDDEN, WRITES_DISABLED));
    };
    let offered = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()).and_then(WriteToken::bearer);
    match offered {
        Some(t) if token.matches(t) => Ok(()),
        Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid token")),
        None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "a write needs an Authorization: Bearer TOKEN header")),
    }
}

/// A JSON body must say so.
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "expected Content-Type: application/json"))
    }
}

/// Read a request body, at most `limit` bytes (413 beyond), handing each chunk to `sink`.
async fn read_body(
    body: Body,
    limit: u64,
    mut sink: impl FnMut(&[u8]) -> Result<(), ApiError>,
) -> Result<u64, ApiError> {
    let mut body = std::pin::pin!(body);
    let mut total = 0u64;
    loop {
        let frame = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await;
        match frame {
            None => return Ok(total),
            Some(Err(_)) => return Err(ApiError::bad_request("the request body could not be read")),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    total += data.len() as u64;
                    if total > limit {
                        return Err(ApiError::too_large(format!("request body too large: the limit is {limit} bytes")));
                    }
                    sink(&data)?;
                }
            }
        }
    }
}

/// The whole body in memory (for JSON), at most `limit` bytes.
async fn body_bytes(body: Body, limit: u64) -> Result<Bytes, ApiError> {
    let mut buf = Vec::new();
    read_body(body, limit, |chunk| {
        buf.extend_from_slice(chunk);
        Ok(())
    })
    .await?;
    Ok(Bytes::from(buf))
}

/// Parse a JSON body into `T`, with a one-line 400 for anything malformed.
fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

// -------------------------------------------------------------------------------------------- handlers

async fn healthz() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ok").into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route: see GET /v1/info and the documentation (docs/serve.md)")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this route")
}

/// A path's `{hash}`, parsed as `reputation::parse_query` does.
fn query_digests(hash: &str) -> Result<Vec<Digest>, ApiError> {
    crate::reputation::parse_query(hash).map_err(ApiError::bad_request)
}

async fn lookup_one(app: &App, hash: String) -> Result<LookupReport, ApiError> {
    let digests = query_digests(&hash)?;
    app.read(move |store| crate::reputation::lookup_report(store, &hash, &digests).map_err(ApiError::store)).await
}

/// A path parameter, or a one-line 400 (percent-encoding that is not UTF-8, say).
fn path_param(p: Result<UrlPath<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|UrlPath(s)| s).map_err(|e| ApiError::bad_request(format!("invalid URL: {}", e.body_text())))
}

async fn get_file(State(app): State<App>, hash: Result<UrlPath<String>, PathRejection>) -> Result<Response, ApiError> {
    Ok(json(&lookup_one(&app, path_param(hash)?).await?))
}

async fn get_file_page(
    State(app): State<App>,
    headers: HeaderMap,
    hash: Result<UrlPath<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let hash = path_param(hash)?;
    if !wants_html(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())) {
        return Ok(json(&lookup_one(&app, hash).await?));
    }
    let digests = query_digests(&hash)?;
    let page = app
        .read(move |store| {
            let lookup = crate::reputation::lookup_report(store, &hash, &digests).map_err(ApiError::store)?;
            let stored = stored_report_for(store, &digests, &lookup)?;
            Ok(html::page(&lookup, stored.as_ref()))
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response())
}

/// The stored analysis report for the file a page is about: by the queried SHA-256, else by the SHA-256 a
/// store record matched.
fn stored_report_for(
    store: &SqliteStore,
    digests: &[Digest],
    lookup: &LookupReport,
) -> Result<Option<html::StoredReport>, ApiError> {
    let mut candidates: Vec<[u8; 32]> = Vec::new();
    for d in digests.iter().filter(|d| d.kind() == DigestKind::Sha256) {
        if let Ok(b) = <[u8; 32]>::try_from(d.bytes()) {
            candidates.push(b);
        }
    }
    for m in lookup.reputation.matches.iter().filter(|m| m.matched_by == DigestKind::Sha256) {
        if let Ok(d) = Digest::parse_hex(DigestKind::Sha256, &m.digest) {
            if let Ok(b) = <[u8; 32]>::try_from(d.bytes()) {
                if !candidates.contains(&b) {
                    candidates.push(b);
                }
            }
        }
    }
    for c in candidates {
        if let Some(text) = store.get_report(&c).map_err(ApiError::store)? {
            let mut stored = html::StoredReport::parse(&text);
            if let html::StoredReport::Report(r) = &mut stored {
                // The report's reputation and verdict, decided again against this server's store.
                crate::reputation::consult(store, r).map_err(ApiError::store)?;
            }
            return Ok(Some(stored));
        }
    }
    Ok(None)
}

/// `POST /v1/lookup`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupRequest {
    hashes: Vec<String>,
}

/// The answer to `POST /v1/lookup`.
#[derive(Debug, Serialize)]
struct LookupResponse {
    schema_version: u32,
    results: Vec<LookupReport>,
}

/// Parse and check a `POST /v1/lookup` body: at most [`MAX_LOOKUP_HASHES`] hashes, each valid.
fn parse_lookup_request(bytes: &[u8]) -> Result<Vec<(String, Vec<Digest>)>, ApiError> {
    let req: LookupRequest = parse_json(bytes)?;
    if req.hashes.len() > MAX_LOOKUP_HASHES {
        return Err(ApiError::too_large(format!(
            "too many hashes: {} in one request, at most {MAX_LOOKUP_HASHES}; split the list",
            req.hashes.len()
        )));
    }
    req.hashes
        .into_iter()
        .enumerate()
        .map(|(i, h)| match crate::reputation::parse_query(&h) {
            Ok(d) => Ok((h, d)),
            Err(e) => Err(ApiError::bad_request(format!("hashes[{i}]: {e}"))),
        })
        .collect()
}

async fn post_lookup(State(app): State<App>, req: Request) -> Result<Response, ApiError> {
    require_json(req.headers())?;
    let bytes = body_bytes(req.into_body(), app.cfg.max_body_bytes).await?;
    let queries = parse_lookup_request(&bytes)?;
    let results = app
        .read(move |store| {
            queries
                .iter()
                .map(|(h, d)| crate::reputation::lookup_report(store, h, d).map_err(ApiError::store))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    Ok(json(&LookupResponse { schema_version: SCHEMA_VERSION, results }))
}

/// `GET /v1/info`.
#[derive(Debug, Serialize)]
struct InfoResponse {
    filerep_version: &'static str,
    store_schema_version: i64,
    feeds: Vec<FeedRow>,
    reports: i64,
    sightings: i64,
    writes_enabled: bool,
    limits: InfoLimits,
}

#[derive(Debug, Serialize)]
struct InfoLimits {
    max_lookup_hashes: usize,
    max_records: usize,
    max_reports: usize,
    max_report_bytes: usize,
    max_body_bytes: u64,
    max_import_bytes: u64,
    max_report_body_bytes: u64,
    rate_limit_per_second: u32,
    rate_limit_burst: u32,
    request_timeout_seconds: u64,
    min_participants: u64,
    max_sightings_per_batch: usize,
    max_sightings_body_bytes: u64,
    sightings_interval_seconds: f64,
    sightings_burst: u32,
}

async fn get_info(State(app): State<App>) -> Result<Response, ApiError> {
    let cfg = &app.cfg;
    let limits = InfoLimits {
        max_lookup_hashes: MAX_LOOKUP_HASHES,
        max_records: MAX_RECORDS,
        max_reports: MAX_REPORTS,
        max_report_bytes: MAX_REPORT_BYTES,
        max_body_bytes: cfg.max_body_bytes,
        max_import_bytes: cfg.max_import_bytes,
        max_report_body_bytes: cfg.max_report_body_bytes,
        rate_limit_per_second: cfg.rate_limit,
        rate_limit_burst: if cfg.rate_limit == 0 { 0 } else { cfg.rate_burst.max(cfg.rate_limit) },
        request_timeout_seconds: cfg.request_timeout.as_secs(),
        min_participants: cfg.min_participants.max(crate::store::fleet::MIN_FLOOR),
        max_sightings_per_batch: cfg.max_sightings_per_batch,
        max_sightings_body_bytes: cfg.max_sightings_body_bytes,
        sightings_interval_seconds: cfg.sightings_interval.as_secs_f64(),
        sightings_burst: cfg.sightings_burst,
    };
    let writes_enabled = app.token.is_some();
    let (info, reports) = app
        .read(|store| {
            let info = store.info().map_err(ApiError::store)?;
            let reports = store.report_count().map_err(ApiError::store)?;
            Ok((info, reports))
        })
        .await?;
    Ok(json(&InfoResponse {
        filerep_version: env!("CARGO_PKG_VERSION"),
        store_schema_version: info.schema_version,
        feeds: info.feeds,
        reports,
        sightings: info.sightings,
        writes_enabled,
        limits,
    }))
}

/// `POST /v1/records`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordsRequest {
    source: String,
    records: Vec<RecordIn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordIn {
    class: String,
    hash: String,
    #[serde(default)]
    meta: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A source name as `db import` accepts it: 1-64 letters, digits, `-`, `_` or `.`.
fn valid_source(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// A record's hash: `KIND:HEX`, or a bare file hash told by its length.
fn parse_record_hash(s: &str) -> Result<Digest, String> {
    let parsed = match s.split_once(':') {
        Some((kind, hex)) => {
            let kind: DigestKind = kind.parse()?;
            Digest::parse_hex(kind, hex)
        }
        None => Digest::parse_file_hash(s),
    };
    parsed.map_err(|e| {
        format!(
            "invalid hash '{}': {e}; accepted: ASCII hex of 32 (MD5), 40 (SHA-1) or 64 (SHA-256) characters, or \
             KIND:HEX (imphash:, authentihash-sha1:, authentihash-sha256:, md5:, sha1:, sha256:)",
            crate::term::sanitize(&s.chars().take(80).collect::<String>())
        )
    })
}

/// A record's metadata: the fields of [`Meta`] only, empty strings and placeholders dropped.
fn parse_meta(map: serde_json::Map<String, serde_json::Value>) -> Result<Meta, String> {
    let mut cleaned = serde_json::Map::new();
    for (k, v) in map {
        match v {
            serde_json::Value::Null => {}
            serde_json::Value::String(s) => {
                if let Some(c) = Meta::clean(&s) {
                    cleaned.insert(k, serde_json::Value::String(c));
                } else {
                    // Still a known field? Checked below with a placeholder value.
                    cleaned.insert(k, serde_json::Value::Null);
                }
            }
            other => {
                cleaned.insert(k, other);
            }
        }
    }
    let keys: Vec<String> = cleaned.keys().cloned().collect();
    let probe: serde_json::Map<String, serde_json::Value> = cleaned
        .iter()
        .map(|(k, v)| (k.clone(), if v.is_null() { serde_json::Value::String("x".into()) } else { v.clone() }))
        .collect();
    let probe_meta: Meta = serde_json::from_value(serde_json::Value::Object(probe)).map_err(|e| e.to_string())?;
    let known = serde_json::to_value(&probe_meta).map_err(|e| e.to_string())?;
    if let Some(unknown) = keys.iter().find(|k| known.get(k.as_str()).is_none()) {
        return Err(format!("unknown meta field '{}'", crate::term::sanitize(unknown)));
    }
    cleaned.retain(|_, v| !v.is_null());
    serde_json::from_value(serde_json::Value::Object(cleaned)).map_err(|e| e.to_string())
}

/// One record to add: class, digest, metadata.
type NewRecord = (Class, Digest, Meta);

/// Parse and check a `POST /v1/records` body.
fn parse_records_request(bytes: &[u8]) -> Result<(String, Vec<NewRecord>), ApiError> {
    let req: RecordsRequest = parse_json(bytes)?;
    if !valid_source(&req.source) {
        return Err(ApiError::bad_request(format!(
            "invalid source name '{}': use 1-64 letters, digits, '-', '_' or '.'",
            crate::term::sanitize(&req.source.chars().take(80).collect::<String>())
        )));
    }
    if req.records.len() > MAX_RECORDS {
        return Err(ApiError::too_large(format!(
            "too many records: {} in one request, at most {MAX_RECORDS}",
            req.records.len()
        )));
    }
    let mut out = Vec::with_capacity(req.records.len());
    for (i, r) in req.records.into_iter().enumerate() {
        let class: Class = r.class.parse().map_err(|e| ApiError::bad_request(format!("records[{i}].class: {e}")))?;
        let digest =
            parse_record_hash(&r.hash).map_err(|e| ApiError::bad_request(format!("records[{i}].hash: {e}")))?;
        let meta = match r.meta {
            Some(m) => parse_meta(m).map_err(|e| ApiError::bad_request(format!("records[{i}].meta: {e}")))?,
            None => Meta::default(),
        };
        out.push((class, digest, meta));
    }
    Ok((req.source, out))
}

/// The answer to `POST /v1/records`.
#[derive(Debug, Serialize)]
struct RecordsResponse {
    added: u64,
    unchanged: u64,
}

async fn post_records(State(app): State<App>, req: Request) -> Result<Response, ApiError> {
    authorize(&app, req.headers())?;
    require_json(req.headers())?;
    let bytes = body_bytes(req.into_body(), app.cfg.max_body_bytes).await?;
    let (source, records) = parse_records_request(&bytes)?;
    let answer = app
        .write(move |store| {
            let (mut added, mut unchanged) = (0, 0);
            for (class, digest, meta) in &records {
                if store.add(&source, *class, digest, meta).map_err(ApiError::store)? {
                    added += 1;
                } else {
                    unchanged += 1;
                }
            }
            Ok(RecordsResponse { added, unchanged })
        })
        .await?;
    Ok(json(&answer))
}

/// Parse and check a `POST /v1/reports` body: a `check --json` document (`reports`) or a `scan --format
/// json` one (`files`). Each entry must read as a filerep report with a SHA-256; it is kept as sent.
fn parse_reports_request(bytes: &[u8]) -> Result<Vec<([u8; 32], String)>, ApiError> {
    let doc: serde_json::Value = parse_json(bytes)?;
    let Some(obj) = doc.as_object() else {
        return Err(ApiError::bad_request("expected a JSON object with schema_version and reports"));
    };
    match obj.get("schema_version").and_then(serde_json::Value::as_u64) {
        Some(1) => {}
        Some(v) => return Err(ApiError::bad_request(format!("unsupported schema_version {v}: this server reads 1"))),
        None => return Err(ApiError::bad_request("missing schema_version (1)")),
    }
    let Some(entries) = obj.get("reports").or_else(|| obj.get("files")).and_then(serde_json::Value::as_array) else {
        return Err(ApiError::bad_request("missing reports: an array of filerep reports (check --json)"));
    };
    if entries.len() > MAX_REPORTS {
        return Err(ApiError::too_large(format!(
            "too many reports: {} in one request, at most {MAX_REPORTS}",
            entries.len()
        )));
    }
    let mut out = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        if !e.is_object() {
            return Err(ApiError::bad_request(format!("reports[{i}]: not a JSON object")));
        }
        let sha = e
            .pointer("/hashes/sha256")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| ApiError::bad_request(format!("reports[{i}]: no hashes.sha256")))?;
        let digest = Digest::parse_hex(DigestKind::Sha256, sha)
            .map_err(|err| ApiError::bad_request(format!("reports[{i}]: hashes.sha256: {err}")))?;
        let Ok(key) = <[u8; 32]>::try_from(digest.bytes()) else {
            return Err(ApiError::bad_request(format!("reports[{i}]: hashes.sha256 is not 32 bytes")));
        };
        if let Err(err) = serde_json::from_value::<crate::report::Report>(e.clone()) {
            return Err(ApiError::bad_request(format!("reports[{i}]: not a filerep report: {err}")));
        }
        let text = serde_json::to_string(e).map_err(|err| ApiError::bad_request(format!("reports[{i}]: {err}")))?;
        if text.len() > MAX_REPORT_BYTES {
            return Err(ApiError::too_large(format!(
                "reports[{i}]: {} bytes, at most {MAX_REPORT_BYTES} a report",
                text.len()
            )));
        }
        out.push((key, text));
    }
    Ok(out)
}

async fn post_reports(State(app): State<App>, req: Request) -> Result<Response, ApiError> {
    authorize(&app, req.headers())?;
    require_json(req.headers())?;
    let bytes = body_bytes(req.into_body(), app.cfg.max_report_body_bytes).await?;
    let reports = parse_reports_request(&bytes)?;
    let stored = app
        .write(move |store| {
            for (key, text) in &reports {
                store.put_report(key, text).map_err(ApiError::store)?;
            }
            Ok(reports.len())
        })
        .await?;
    Ok(json(&serde_json::json!({ "stored": stored })))
}

/// `POST /v1/sightings`: one participant's observation (see [`sightings`]), at most one batch per
/// `sightings_interval` per participant on average (429 with Retry-After beyond).
async fn post_sightings(State(app): State<App>, req: Request) -> Result<Response, ApiError> {
    authorize(&app, req.headers())?;
    require_json(req.headers())?;
    let bytes = body_bytes(req.into_body(), app.cfg.max_sightings_body_bytes).await?;
    let (run, rows) = sightings::parse(&bytes, app.cfg.max_sightings_per_batch)?;
    if let Err(wait) = app.participants.check(run.participant.clone(), Instant::now()) {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many sightings from this participant: send one observation at a time, less often",
        );
        e.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
        return Err(e);
    }
    let files = rows.len();
    let id = app.record_sightings(run, rows).await?;
    Ok(json(&serde_json::json!({ "recorded": if id.is_some() { files } else { 0 }, "duplicate": id.is_none() })))
}

/// The query of `POST /v1/feeds/{format}`.
#[derive(Debug, Default, PartialEq, Eq)]
struct FeedParams {
    source: Option<String>,
    version: Option<String>,
    date: Option<String>,
    class: Option<Class>,
    kind: Option<DigestKind>,
    strict: bool,
}

/// Percent-decode a query component (`+` is a space); `None` when it is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let mut v = [0u8; 1];
                if !crate::store::decode_hex_into(hex, &mut v) {
                    return None;
                }
                out.push(v[0]);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn parse_feed_params(query: Option<&str>) -> Result<FeedParams, ApiError> {
    let mut p = FeedParams::default();
    for pair in query.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v).ok_or_else(|| ApiError::bad_request(format!("query parameter {k}: bad encoding")))?;
        let text = |v: String| -> Result<Option<String>, ApiError> {
            if v.len() > 200 || v.chars().any(char::is_control) {
                return Err(ApiError::bad_request(format!("query parameter {k}: at most 200 printable characters")));
            }
            Ok(Meta::clean(&v))
        };
        match k {
            "source" => p.source = text(v)?,
            "version" => p.version = text(v)?,
            "date" => p.date = text(v)?,
            "class" => p.class = Some(v.parse().map_err(ApiError::bad_request)?),
            "kind" => p.kind = Some(v.parse().map_err(ApiError::bad_request)?),
            "strict" => p.strict = matches!(v.as_str(), "" | "1" | "true"),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter '{}': accepted source, version, date, class, kind, strict",
                    crate::term::sanitize(&other.chars().take(40).collect::<String>())
                )));
            }
        }
    }
    Ok(p)
}

/// A feed format as `db import --format` names it; Bloom filters are queried in place, never uploaded.
fn parse_feed_format(name: &str) -> Result<FeedFormat, ApiError> {
    let formats = <FeedFormat as clap::ValueEnum>::value_variants();
    let accepted = || {
        formats.iter().filter(|f| **f != FeedFormat::HashlookupBloom).map(|f| f.as_str()).collect::<Vec<_>>().join(", ")
    };
    match formats.iter().find(|f| f.as_str() == name) {
        Some(FeedFormat::HashlookupBloom) => Err(ApiError::bad_request(
            "hashlookup-bloom is queried in place: import it with `filerep db import` on the server's machine",
        )),
        Some(f) => Ok(*f),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "unknown feed format '{}': accepted {}",
                crate::term::sanitize(&name.chars().take(40).collect::<String>()),
                accepted()
            ),
        )),
    }
}

/// A temporary upload next to the store, removed when dropped.
struct Upload {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl Upload {
    fn create(store: &Path, n: u64) -> Result<Upload, ApiError> {
        let mut name = store.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".upload-{}-{n}.tmp", std::process::id()));
        let path = store.with_file_name(name);
        let file =
            std::fs::OpenOptions::new().write(true).create_new(true).open(&path).map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot store the upload: {e}"))
            })?;
        Ok(Upload { path, file: Some(file) })
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        self.file = None;
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn post_feed(
    State(app): State<App>,
    format: Result<UrlPath<String>, PathRejection>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Result<Response, ApiError> {
    authorize(&app, req.headers())?;
    let format = path_param(format)?;
    let format = parse_feed_format(&format)?;
    let params = parse_feed_params(query.as_deref())?;
    let source = match (params.source.clone(), format.default_source()) {
        (Some(s), _) => s,
        (None, Some(d)) => d.to_string(),
        (None, None) => return Err(ApiError::bad_request(format!("source is required for {}", format.as_str()))),
    };
    if !valid_source(&source) {
        return Err(ApiError::bad_request(format!(
            "invalid source name '{}': use 1-64 letters, digits, '-', '_' or '.'",
            crate::term::sanitize(&source)
        )));
    }
    if format == FeedFormat::Hashlist && params.class.is_none() {
        return Err(ApiError::bad_request(
            "class is required for hashlist (known-good, known-file, vulnerable or malicious)",
        ));
    }
    let mut upload = Upload::create(&app.cfg.store, app.uploads.fetch_add(1, Ordering::Relaxed))?;
    {
        let file = upload.file.as_mut().ok_or_else(|| ApiError::bad_request("upload closed"))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        read_body(req.into_body(), app.cfg.max_import_bytes, |chunk| {
            out.write_all(chunk)
                .map_err(|e| ApiError::new(StatusCode::INSUFFICIENT_STORAGE, format!("cannot store the upload: {e}")))
        })
        .await?;
        out.flush()
            .map_err(|e| ApiError::new(StatusCode::INSUFFICIENT_STORAGE, format!("cannot store the upload: {e}")))?;
    }
    upload.file = None;
    let request = ImportRequest {
        format,
        path: upload.path.clone(),
        source,
        version: params.version,
        date: params.date,
        options: ParseOptions { class: params.class, kind: params.kind, trust: Vec::new() },
        strict: params.strict,
        max_expanded: DEFAULT_MAX_EXPANDED,
    };
    let summary = app
        .write(move |store| {
            let s = store.import(&request, &|_| {}).map_err(ApiError::store);
            drop(upload);
            s
        })
        .await?;
    Ok(json(&serde_json::json!({
        "source": summary.source,
        "format": format.as_str(),
        "version": summary.version,
        "date": summary.date,
        "records": summary.records,
        "digests": summary.digests,
        "skipped": summary.skipped,
        "skipped_examples": summary.skipped_examples.iter().map(|(line, why)| serde_json::json!({"line": line, "reason": why})).collect::<Vec<_>>(),
        "unchanged": summary.unchanged,
        "replaced": summary.replaced,
        "seconds": summary.seconds,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_requests_are_checked() {
        let ok = parse_lookup_request(
            br#"{"hashes": ["d41d8cd98f00b204e9800998ecf8427e", "imphash:d41d8cd98f00b204e9800998ecf8427e"]}"#,
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].1.len(), 2);
        assert_eq!(ok[1].1.len(), 1);
        let e = parse_lookup_request(br#"{"hashes": ["d41d8cd98f00b204e9800998ecf8427e", "0x12"]}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.message.starts_with("hashes[1]: invalid hash '0x12'") && e.message.contains("accepted"),
            "{}",
            e.message
        );
        let e = parse_lookup_request(br#"{"hashes": [], "extra": 1}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("unknown field"), "{}", e.message);
        let many = serde_json::json!({ "hashes": vec!["d41d8cd98f00b204e9800998ecf8427e"; 1001] }).to_string();
        assert_eq!(parse_lookup_request(many.as_bytes()).unwrap_err().status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(parse_lookup_request(br#"{"hashes": []}"#).unwrap().is_empty());
        assert_eq!(parse_lookup_request(b"\xff\xfe").unwrap_err().status, StatusCode::BAD_REQUEST);
        // Unicode digits and a fullwidth hex are not hex.
        let e =
            parse_lookup_request("{\"hashes\": [\"\u{0661}41d8cd98f00b204e9800998ecf8427\"]}".as_bytes()).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn records_are_checked() {
        let body = br#"{"source": "mine", "records": [
            {"class": "malicious", "hash": "44d88612fea8a8f36de82e1278abb02f", "meta": {"file_name": "<script>x</script>", "size": 68, "product": ""}},
            {"class": "known-good", "hash": "imphash:44d88612fea8a8f36de82e1278abb02f"}]}"#;
        let (source, recs) = parse_records_request(body).unwrap();
        assert_eq!(source, "mine");
        assert_eq!(recs[0].0, Class::Malicious);
        assert_eq!(recs[0].1.kind(), DigestKind::Md5);
        assert_eq!(recs[0].2.file_name.as_deref(), Some("<script>x</script>"));
        assert_eq!(recs[0].2.size, Some(68));
        assert_eq!(recs[0].2.product, None);
        assert_eq!(recs[1].1.kind(), DigestKind::Imphash);
        for (bad, want) in [
            (r#"{"source": "a b", "records": []}"#, "invalid source name"),
            (
                r#"{"source": "a", "records": [{"class": "evil", "hash": "44d88612fea8a8f36de82e1278abb02f"}]}"#,
                "records[0].class",
            ),
            (
                r#"{"source": "a", "records": [{"class": "malicious", "hash": "+4d88612fea8a8f36de82e1278abb02f"}]}"#,
                "records[0].hash",
            ),
            (
                r#"{"source": "a", "records": [{"class": "malicious", "hash": "44d88612fea8a8f36de82e1278abb02f", "meta": {"colour": "red"}}]}"#,
                "unknown meta field 'colour'",
            ),
            (
                r#"{"source": "a", "records": [{"class": "malicious", "hash": "44d88612fea8a8f36de82e1278abb02f", "meta": {"size": "big"}}]}"#,
                "records[0].meta",
            ),
            (r#"{"source": "a", "records": [], "x": 1}"#, "unknown field"),
        ] {
            let e = parse_records_request(bad.as_bytes()).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(e.message.contains(want), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn feed_queries_are_checked() {
        let p = parse_feed_params(Some("source=my-list&version=2026.01&class=malicious&date=2026-01-02%2010%3A00"))
            .unwrap();
        assert_eq!(p.source.as_deref(), Some("my-list"));
        assert_eq!(p.version.as_deref(), Some("2026.01"));
        assert_eq!(p.date.as_deref(), Some("2026-01-02 10:00"));
        assert_eq!(p.class, Some(Class::Malicious));
        assert_eq!(parse_feed_params(None).unwrap(), FeedParams::default());
        assert!(parse_feed_params(Some("colour=red")).unwrap_err().message.contains("unknown query parameter"));
        assert!(parse_feed_params(Some("class=evil")).is_err());
        assert!(parse_feed_params(Some("version=%ff")).is_err());
        assert!(parse_feed_params(Some("version=%0a")).is_err());
        assert!(parse_feed_params(Some("version=%4")).is_err());
        assert_eq!(parse_feed_format("hashlist").unwrap(), FeedFormat::Hashlist);
        assert_eq!(parse_feed_format("nope").unwrap_err().status, StatusCode::NOT_FOUND);
        assert_eq!(parse_feed_format("hashlookup-bloom").unwrap_err().status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn errors_are_one_line() {
        let e = ApiError::new(StatusCode::BAD_REQUEST, "first\n  second\n");
        assert_eq!(e.message, "first second");
        let resp = e.into_response();
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    }
}

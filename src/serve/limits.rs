//! The server's guards that are pure logic: the per-peer rate limiter (a token bucket per IP address), the
//! constant-time write-token check, and content negotiation. No I/O here, so each is unit-tested alone.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

/// Peers tracked at most; beyond this, buckets that are full again (idle peers) are dropped first, then the
/// table is cleared (a flood of spoofed-looking addresses must not grow memory without bound).
const MAX_PEERS: usize = 65_536;

/// A token bucket per peer address: `rate` requests a second on average, bursts of up to `burst`.
#[derive(Debug)]
pub struct RateLimiter<K = IpAddr> {
    rate: f64,
    burst: f64,
    peers: Mutex<HashMap<K, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter<IpAddr> {
    /// A limiter allowing `rate` requests a second per peer with bursts of `burst` (at least 1).
    pub fn new(rate: u32, burst: u32) -> RateLimiter {
        RateLimiter::with_rate(f64::from(rate.max(1)), burst)
    }
}

impl<K: std::hash::Hash + Eq> RateLimiter<K> {
    /// A limiter allowing `per_second` requests a second per key (more than zero) with bursts of `burst`
    /// (at least 1).
    pub fn with_rate(per_second: f64, burst: u32) -> RateLimiter<K> {
        let rate = if per_second.is_finite() && per_second > 0.0 { per_second } else { 1.0 };
        RateLimiter { rate, burst: f64::from(burst.max(1)), peers: Mutex::new(HashMap::new()) }
    }

    /// Take one token for `peer` at time `now`: `Ok(())` when the request may go, or how long until a token
    /// is available.
    pub fn check(&self, peer: K, now: Instant) -> Result<(), Duration> {
        // A poisoned lock only means another request panicked while holding it; the map is still usable.
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if peers.len() >= MAX_PEERS && !peers.contains_key(&peer) {
            let (rate, burst) = (self.rate, self.burst);
            peers.retain(|_, b| b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate < burst);
            if peers.len() >= MAX_PEERS {
                peers.clear();
            }
        }
        let b = peers.entry(peer).or_insert(Bucket { tokens: self.burst, last: now });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.rate))
        }
    }
}

/// The configured write token, kept only as its SHA-256 so that comparing takes the same time whatever the
/// length or content of the token offered.
#[derive(Clone)]
pub struct WriteToken([u8; 32]);

impl std::fmt::Debug for WriteToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token, not even its hash.
        f.write_str("WriteToken(..)")
    }
}

impl WriteToken {
    /// The token (already trimmed and known not to be empty).
    pub fn new(token: &str) -> WriteToken {
        WriteToken(Sha256::digest(token.as_bytes()).into())
    }

    /// True when `offered` is the token, compared in constant time (both sides hashed first).
    pub fn matches(&self, offered: &[u8]) -> bool {
        let h: [u8; 32] = Sha256::digest(offered).into();
        h.ct_eq(&self.0).into()
    }

    /// The token offered in an `Authorization: Bearer TOKEN` header value, if it has that form.
    pub fn bearer(header: &[u8]) -> Option<&[u8]> {
        let (scheme, rest) = header.split_at_checked(7)?;
        if !scheme.eq_ignore_ascii_case(b"bearer ") {
            return None;
        }
        let token = rest.trim_ascii();
        (!token.is_empty()).then_some(token)
    }
}

/// True when an `Accept` header asks for HTML (a browser): it lists `text/html` (or `application/xhtml+xml`)
/// with a non-zero quality.
pub fn wants_html(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        let html = media.eq_ignore_ascii_case("text/html") || media.eq_ignore_ascii_case("application/xhtml+xml");
        let q_zero = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")).and_then(|q| q.trim().parse::<f32>().ok())
                == Some(0.0)
        });
        html && !q_zero
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limiter_allows_a_burst_then_the_rate() {
        let l = RateLimiter::new(5, 3);
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "::1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check(peer, t0), Ok(()));
        }
        let wait = l.check(peer, t0).unwrap_err();
        // One token comes back every 1/5 s.
        assert!(wait > Duration::from_millis(150) && wait <= Duration::from_millis(200), "{wait:?}");
        // Another peer has its own bucket.
        assert_eq!(l.check(other, t0), Ok(()));
        // After 200 ms, one more request; then refused again.
        let t1 = t0 + Duration::from_millis(200);
        assert_eq!(l.check(peer, t1), Ok(()));
        assert!(l.check(peer, t1).is_err());
        // After a long pause, the bucket is full again but never above the burst.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(l.check(peer, t2), Ok(()));
        }
        assert!(l.check(peer, t2).is_err());
    }

    #[test]
    fn tokens_compare_whole_and_bearer_parses_strictly() {
        let t = WriteToken::new("s3cret-token");
        assert!(t.matches(b"s3cret-token"));
        assert!(!t.matches(b"s3cret-toke"));
        assert!(!t.matches(b"s3cret-token "));
        assert!(!t.matches(b""));
        assert_eq!(WriteToken::bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(WriteToken::bearer(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(WriteToken::bearer(b"Basic abc"), None);
        assert_eq!(WriteToken::bearer(b"Bearer "), None);
        assert_eq!(WriteToken::bearer(b"Bear"), None);
        assert_eq!(format!("{t:?}"), "WriteToken(..)");
    }

    #[test]
    fn browsers_get_html_and_clients_json() {
        let chrome = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8";
        assert!(wants_html(Some(chrome)));
        assert!(wants_html(Some("TEXT/HTML")));
        assert!(!wants_html(Some("application/json")));
        assert!(!wants_html(Some("*/*")));
        assert!(!wants_html(None));
        assert!(!wants_html(Some("text/html;q=0, application/json")));
        assert!(!wants_html(Some("text/htmlx")));
    }
}

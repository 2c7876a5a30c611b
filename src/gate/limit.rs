//! A token bucket per client, only built when `[gate] rate_limit` is set.
//! Clients are sharded over a few locks by a randomly keyed hash, so one
//! hot client does not serialise the others and nobody can aim at one shard.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::HeaderMap;

/// Clients kept per shard before idle ones are forgotten.
const SHARD_CAPACITY: usize = 100_000;
const SHARDS: usize = 16;

pub(crate) struct RateLimiter {
    per_second: f64,
    burst: f64,
    /// A header set by a trusted proxy that names the client's address.
    client_header: Option<String>,
    hasher: std::collections::hash_map::RandomState,
    shards: Vec<Mutex<HashMap<String, (f64, Instant)>>>,
}

impl RateLimiter {
    /// `per_second` requests per second per client, bursts of twice that.
    pub(crate) fn new(per_second: u32, client_header: Option<String>) -> RateLimiter {
        RateLimiter {
            per_second: per_second as f64,
            burst: (per_second * 2) as f64,
            client_header,
            hasher: Default::default(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Takes a token for the client of this request, if it has one.
    pub(crate) fn allow(&self, headers: &HeaderMap, peer: SocketAddr) -> bool {
        let client = self
            .client_header
            .as_deref()
            .and_then(|h| headers.get(h))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| peer.ip().to_string());
        self.allow_client(&client)
    }

    fn allow_client(&self, client: &str) -> bool {
        let shard = &self.shards[self.hasher.hash_one(client) as usize % self.shards.len()];
        let mut map = shard.lock().expect("limiter lock poisoned");
        let now = Instant::now();
        if map.len() > SHARD_CAPACITY {
            // Forget clients idle long enough to have a full bucket again.
            let full = Duration::from_secs_f64(self.burst / self.per_second);
            map.retain(|_, (_, at)| now.duration_since(*at) < full);
        }
        let (tokens, at) = map.entry(client.to_string()).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusals_per_client() {
        let limiter = RateLimiter::new(2, None);
        let allowed = (0..10).filter(|_| limiter.allow_client("a")).count();
        assert_eq!(allowed, 4, "burst of twice the rate");
        assert!(
            limiter.allow_client("b"),
            "another client has its own bucket"
        );
    }
}

//! A token bucket per client, only built when `[gate] rate_limit` is set.
//!
//! The client is the address a trusted proxy put in `client_ip_header` (the
//! entry `client_ip_hops` from the right of an `X-Forwarded-For` list: what a
//! client writes itself is to the left of what its proxies append), when the
//! connection's peer is one of `[gate] trusted_proxies` ([`Proxies`]); else
//! the peer itself. Keys are addresses, never text a client chose, so a
//! key is 16 bytes whatever the header holds. Buckets live in two
//! generations per shard: a bucket untouched for a whole refill period is
//! full again and may be forgotten, so memory stays bounded and no call ever
//! scans a shard. Shards are picked by a randomly keyed hash, so nobody can
//! aim at one.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::HeaderMap;

use crate::util::sync::lock;

/// The key a client counts under: an IPv4 address whole (an IPv4-mapped
/// IPv6 address as the IPv4 one), an IPv6 address as its network of
/// `prefix` bits — one /64 is one household's, 2^64 addresses, not 2^64
/// clients.
pub(crate) fn client_key(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = match prefix.min(128) {
                0 => 0,
                p => u128::MAX << (128 - u32::from(p)),
            };
            IpAddr::V6((bits & mask).into())
        }
    }
}

/// The peers whose headers are believed: `[gate] trusted_proxies`.
pub(crate) struct Proxies(Vec<ipnet::IpNet>);

impl Proxies {
    pub(crate) fn new(nets: Vec<ipnet::IpNet>) -> Proxies {
        Proxies(nets)
    }

    /// Whether a connection from `peer` is a trusted proxy's (an
    /// IPv4-mapped IPv6 peer as its IPv4 address).
    pub(crate) fn trust(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.0.iter().any(|n| n.contains(&peer))
    }

    /// For the start-up line.
    pub(crate) fn describe(&self) -> String {
        match self.0.as_slice() {
            [] => "no peer".to_string(),
            nets => nets
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// Clients one generation of a shard holds before it is retired early.
const GENERATION: usize = 20_000;
const SHARDS: usize = 16;

struct Shard {
    current: HashMap<IpAddr, (f64, Instant)>,
    previous: HashMap<IpAddr, (f64, Instant)>,
    since: Instant,
}

pub(crate) struct RateLimiter {
    per_second: f64,
    burst: f64,
    /// A bucket left alone this long is full again.
    refill: Duration,
    /// A header set by a trusted proxy that names the client's address.
    client_header: Option<String>,
    /// Which entry of that header, counted from the right (1: the last).
    hops: usize,
    /// The IPv6 prefix length a client is keyed by.
    ipv6_prefix: u8,
    hasher: std::collections::hash_map::RandomState,
    shards: Vec<Mutex<Shard>>,
}

impl RateLimiter {
    /// `per_second` requests per second per client, bursts of twice that.
    pub(crate) fn new(
        per_second: u32,
        client_header: Option<String>,
        hops: usize,
        ipv6_prefix: u8,
    ) -> RateLimiter {
        let burst = (per_second * 2) as f64;
        let now = Instant::now();
        RateLimiter {
            per_second: per_second as f64,
            burst,
            refill: Duration::from_secs_f64(burst / per_second as f64),
            client_header,
            hops: hops.max(1),
            ipv6_prefix,
            hasher: Default::default(),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        current: HashMap::new(),
                        previous: HashMap::new(),
                        since: now,
                    })
                })
                .collect(),
        }
    }

    /// The client a request counts against; `proxied`: the peer is a
    /// trusted proxy, so its header names the client.
    fn client(&self, headers: &HeaderMap, peer: SocketAddr, proxied: bool) -> IpAddr {
        let header = self.client_header.as_deref().filter(|_| proxied);
        let named = header.and_then(|h| {
            // Every value of the header, in order, as one list.
            let entries: Vec<&str> = headers
                .get_all(h)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .collect();
            let entry = entries.len().checked_sub(self.hops).map(|i| entries[i])?;
            entry.parse::<IpAddr>().ok()
        });
        client_key(named.unwrap_or_else(|| peer.ip()), self.ipv6_prefix)
    }

    /// Takes a token for the client of this request, if it has one.
    pub(crate) fn allow(&self, headers: &HeaderMap, peer: SocketAddr, proxied: bool) -> bool {
        self.allow_client(self.client(headers, peer, proxied), Instant::now())
    }

    fn allow_client(&self, client: IpAddr, now: Instant) -> bool {
        let shard = &self.shards[self.hasher.hash_one(client) as usize % self.shards.len()];
        let mut shard = lock(shard);
        if now.duration_since(shard.since) >= self.refill || shard.current.len() >= GENERATION {
            // What the previous generation held is full by now (or, retired
            // early under a flood of clients, more lenient): forget it.
            shard.previous = std::mem::take(&mut shard.current);
            shard.since = now;
        }
        let bucket = match shard.previous.remove(&client) {
            Some(b) => b,
            None => *shard.current.get(&client).unwrap_or(&(self.burst, now)),
        };
        let (tokens, at) = bucket;
        let tokens =
            (tokens + now.duration_since(at).as_secs_f64() * self.per_second).min(self.burst);
        let (left, allowed) = if tokens >= 1.0 {
            (tokens - 1.0, true)
        } else {
            (tokens, false)
        };
        shard.current.insert(client, (left, now));
        allowed
    }

    /// Clients remembered now (for tests).
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap();
                s.current.len() + s.previous.len()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn an_ipv6_client_is_its_slash_64_and_ipv4_stays_whole() {
        let k = |s: &str, p| client_key(s.parse().unwrap(), p);
        assert_eq!(k("2001:db8:1:2:aaaa::1", 64), k("2001:db8:1:2:ffff::9", 64));
        assert_ne!(k("2001:db8:1:2::1", 64), k("2001:db8:1:3::1", 64));
        assert_eq!(k("2001:db8:1:2::1", 128).to_string(), "2001:db8:1:2::1");
        assert_eq!(k("192.0.2.7", 64).to_string(), "192.0.2.7");
        assert_eq!(k("::ffff:192.0.2.7", 64).to_string(), "192.0.2.7");
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_burst_then_refusals_per_client() {
        let limiter = RateLimiter::new(2, None, 1, 64);
        let now = Instant::now();
        let allowed = (0..10)
            .filter(|_| limiter.allow_client(ip("192.0.2.1"), now))
            .count();
        assert_eq!(allowed, 4, "burst of twice the rate");
        assert!(
            limiter.allow_client(ip("192.0.2.2"), now),
            "another client has its own bucket"
        );
    }

    #[test]
    fn the_client_is_what_the_trusted_proxy_appended() {
        let limiter = RateLimiter::new(5, Some("X-Forwarded-For".into()), 1, 64);
        let peer: SocketAddr = "10.0.0.1:1234".parse().unwrap();
        let mut h = HeaderMap::new();
        // The client wrote the first entry; the proxy appended the last.
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.7"),
        );
        assert_eq!(limiter.client(&h, peer, true), ip("203.0.113.7"));
        // Two header lines are one list.
        h.append("x-forwarded-for", HeaderValue::from_static("198.51.100.9"));
        assert_eq!(limiter.client(&h, peer, true), ip("198.51.100.9"));
        let two_hops = RateLimiter::new(5, Some("X-Forwarded-For".into()), 2, 64);
        assert_eq!(two_hops.client(&h, peer, true), ip("203.0.113.7"));
        // Not an address (12 KB of anything): the peer, never the text.
        let mut junk = HeaderMap::new();
        junk.insert(
            "x-forwarded-for",
            HeaderValue::from_str(&"x".repeat(12_000)).unwrap(),
        );
        assert_eq!(limiter.client(&junk, peer, true), peer.ip());
        assert_eq!(limiter.client(&HeaderMap::new(), peer, true), peer.ip());
        // From a peer that is no trusted proxy, the header is the client's own words.
        assert_eq!(limiter.client(&h, peer, false), peer.ip());
    }

    #[test]
    fn proxies_are_trusted_by_network_and_mapped_addresses_as_ipv4() {
        let proxies = Proxies::new(vec![
            "10.0.0.0/8".parse().unwrap(),
            "fd00::/8".parse().unwrap(),
        ]);
        assert!(proxies.trust(ip("10.200.3.4")));
        assert!(proxies.trust(ip("::ffff:10.1.1.1")));
        assert!(proxies.trust(ip("fd12::1")));
        assert!(!proxies.trust(ip("11.0.0.1")));
        assert!(!proxies.trust(ip("127.0.0.1")));
        assert!(!Proxies::new(Vec::new()).trust(ip("127.0.0.1")));
    }

    #[test]
    fn a_new_forged_leftmost_entry_per_request_does_not_get_around_it() {
        let limiter = RateLimiter::new(5, Some("X-Forwarded-For".into()), 1, 64);
        let peer: SocketAddr = "10.0.0.1:1234".parse().unwrap();
        let allowed = (0..30)
            .filter(|i| {
                let mut h = HeaderMap::new();
                let v = format!("10.9.{}.{}, 203.0.113.7", i / 250, i % 250);
                h.insert("x-forwarded-for", HeaderValue::from_str(&v).unwrap());
                limiter.allow(&h, peer, true)
            })
            .count();
        assert_eq!(allowed, 10, "the burst, then refused");
    }

    #[test]
    fn memory_is_bounded_and_nothing_is_scanned() {
        let limiter = RateLimiter::new(5, None, 1, 64);
        let now = Instant::now();
        for i in 0..200_000u32 {
            limiter.allow_client(IpAddr::from(i.to_be_bytes()), now);
        }
        assert!(
            limiter.remembered() <= 2 * GENERATION * SHARDS,
            "{}",
            limiter.remembered()
        );
        // After a refill period every bucket is full: all forgotten.
        let later = now + Duration::from_secs(10);
        for s in 0..SHARDS {
            // One call per shard rotates it.
            let mut n = 0u32;
            while limiter
                .hasher
                .hash_one(IpAddr::from((1_000_000 + n).to_be_bytes())) as usize
                % SHARDS
                != s
            {
                n += 1;
            }
            limiter.allow_client(IpAddr::from((1_000_000 + n).to_be_bytes()), later);
            limiter.allow_client(
                IpAddr::from((1_000_000 + n).to_be_bytes()),
                later + Duration::from_secs(10),
            );
        }
        assert!(
            limiter.remembered() <= 2 * SHARDS,
            "{}",
            limiter.remembered()
        );
    }
}

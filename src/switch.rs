//! Switching the live toggle: `open` and `close` upload a new `sale.js` with
//! the toggle's no-cache headers and invalidate its path; `status` reads it
//! back. Works on any [`Remote`] and [`Cdn`], so a directory target and dry
//! runs behave like S3.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::headers::{self, HeaderRule, TOGGLE_PATH};
use crate::publish::cdn::Cdn;
use crate::publish::plan::{headers_hash, Known};
use crate::publish::remote::{metadata, Remote, RemoteError};
use crate::sale::Toggle;

/// What the remote holds at `sale.js`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Live {
    Missing,
    Unreadable(String),
    Toggle(Toggle),
}

pub async fn live<R: Remote>(remote: &R) -> Result<Live, RemoteError> {
    Ok(match remote.get(TOGGLE_PATH).await? {
        None => Live::Missing,
        Some(bytes) => match Toggle::parse_script(&String::from_utf8_lossy(&bytes)) {
            Ok(t) => Live::Toggle(t),
            Err(e) => Live::Unreadable(e),
        },
    })
}

/// When the switch happened.
#[derive(Debug, Clone)]
pub struct Switched {
    pub put_started: SystemTime,
    /// The new toggle is live at the origin from here on.
    pub put_done: SystemTime,
    pub invalidation: Option<String>,
    pub invalidated_at: Option<SystemTime>,
}

/// Uploads `toggle` as `sale.js` with the headers the manifest would give it,
/// then invalidates `<base_path>sale.js`. The invalidation's caller reference
/// is the toggle's version: a retried switch never invalidates twice.
pub async fn switch<R: Remote, C: Cdn>(
    remote: &R,
    cdn: Option<&C>,
    toggle: &Toggle,
    rules: &[HeaderRule],
    base_path: &str,
) -> Result<Switched, RemoteError> {
    let body = toggle.to_script().into_bytes();
    let headers: BTreeMap<String, String> = headers::for_path(TOGGLE_PATH, rules);
    let known = Known {
        sha256: hex::encode(Sha256::digest(&body)),
        headers: headers_hash(&headers),
        etag: None,
    };
    let put_started = SystemTime::now();
    remote
        .put(TOGGLE_PATH, body, &headers, &metadata(&known))
        .await?;
    let put_done = SystemTime::now();
    let (invalidation, invalidated_at) = match cdn {
        Some(cdn) => {
            let paths = vec![format!("{base_path}{TOGGLE_PATH}")];
            let id = cdn
                .invalidate(&paths, &format!("flashsale-toggle-{}", toggle.v))
                .await?;
            (Some(id), Some(SystemTime::now()))
        }
        None => (None, None),
    };
    Ok(Switched {
        put_started,
        put_done,
        invalidation,
        invalidated_at,
    })
}

/// Sleeps until the wall clock reads `target`, calling `tick` with the time
/// left about once a second. Re-reads the wall clock after every nap, so a
/// long wait, a clock step or a suspended laptop still ends on time.
pub async fn wait_until(target: SystemTime, mut tick: impl FnMut(Duration)) {
    loop {
        let left = match target.duration_since(SystemTime::now()) {
            Ok(d) if !d.is_zero() => d,
            _ => return,
        };
        tick(left);
        // Nap to the next whole second of the countdown, or to the target.
        let nap = if left > Duration::from_secs(1) {
            Duration::from_nanos((left.as_nanos() % 1_000_000_000) as u64)
                .max(Duration::from_millis(50))
        } else {
            left
        };
        tokio::time::sleep(nap).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_until_ends_on_time() {
        let target = SystemTime::now() + Duration::from_millis(1300);
        let mut ticks = 0;
        wait_until(target, |_| ticks += 1).await;
        let late = SystemTime::now().duration_since(target).unwrap();
        assert!(late < Duration::from_millis(50), "{late:?}");
        assert!((1..=4).contains(&ticks), "{ticks}");
    }
}

/// Units left at one gate, per item, from its `/metrics`.
pub fn remaining_from_metrics(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter(|l| l.starts_with("flashsale_gate_remaining{"))
        .filter_map(|l| {
            let sku = l.split("sku=\"").nth(1)?.split('"').next()?.to_string();
            let n = l.rsplit(' ').next()?.parse::<f64>().ok()? as u64;
            Some((sku, n))
        })
        .collect()
}

/// What the gates said at one poll: per gate, units left or why it did not answer.
pub type GatePoll = Vec<(String, Result<u64, String>)>;

/// Resolves once every gate reports every item sold out (0 remaining);
/// `polled` sees each round. A gate that does not answer is not sold out.
pub async fn wait_sold_out(gates: &[String], every: Duration, mut polled: impl FnMut(&GatePoll)) {
    let Ok(client) = crate::client::HttpClient::new() else {
        return std::future::pending().await;
    };
    loop {
        let mut round = Vec::new();
        for g in gates {
            let url = format!("{}/metrics", g.trim_end_matches('/'));
            let left = match client.get(&url, Duration::from_secs(5)).await {
                Ok(r) if r.status == 200 => {
                    let items = remaining_from_metrics(&String::from_utf8_lossy(&r.body));
                    if items.is_empty() {
                        Err("no flashsale_gate_remaining in its metrics".to_string())
                    } else {
                        Ok(items.iter().map(|(_, n)| n).sum())
                    }
                }
                Ok(r) => Err(format!("HTTP {}", r.status)),
                Err(e) => Err(e),
            };
            round.push((g.clone(), left));
        }
        polled(&round);
        if round.iter().all(|(_, r)| matches!(r, Ok(0))) {
            return;
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod metrics_tests {
    use super::*;

    #[test]
    fn reads_remaining_units() {
        let text = "# TYPE x gauge\nflashsale_gate_remaining{sale=\"s\",gate=\"g\",sku=\"A\"} 0\nflashsale_gate_remaining{sale=\"s\",gate=\"g\",sku=\"B\"} 3\nflashsale_gate_quota{sku=\"A\"} 5\n";
        assert_eq!(
            remaining_from_metrics(text),
            vec![("A".to_string(), 0), ("B".to_string(), 3)]
        );
    }
}

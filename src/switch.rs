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

//! Watching gates from outside: how many units each has left, read from its
//! `/metrics`, and a future that resolves once every gate is sold out (what
//! `close --when-sold-out` waits for).

use std::time::Duration;

use super::metrics::REMAINING;
use crate::util::http::{Client, HttpError};
use crate::util::prometheus;

/// Why a gate's units are not known.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ProbeError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("HTTP {0}")]
    Status(u16),
    #[error("no {REMAINING} in its metrics")]
    NoMetric,
}

/// Units left at the gate at `base` (its base URL), summed over its items.
pub(crate) async fn remaining(client: &Client, base: &str) -> Result<u64, ProbeError> {
    let url = format!("{}/metrics", base.trim_end_matches('/'));
    let r = client.get(&url, Duration::from_secs(5)).await?;
    if r.status != 200 {
        return Err(ProbeError::Status(r.status));
    }
    let samples = prometheus::samples(&String::from_utf8_lossy(&r.body), REMAINING);
    if samples.is_empty() {
        return Err(ProbeError::NoMetric);
    }
    Ok(samples.iter().map(|s| s.value as u64).sum())
}

/// The sale and gate id of the live gate whose admin listener is at `base`
/// (the labels of its metrics), asked for at most `within`.
pub(crate) async fn who(
    client: &Client,
    base: &str,
    within: Duration,
) -> Result<(String, String), ProbeError> {
    let url = format!("{}/metrics", base.trim_end_matches('/'));
    let r = client.get(&url, within).await?;
    if r.status != 200 {
        return Err(ProbeError::Status(r.status));
    }
    let samples = prometheus::samples(&String::from_utf8_lossy(&r.body), REMAINING);
    let first = samples.first().ok_or(ProbeError::NoMetric)?;
    match (first.label("sale"), first.label("gate")) {
        (Some(sale), Some(gate)) => Ok((sale.to_string(), gate.to_string())),
        _ => Err(ProbeError::NoMetric),
    }
}

/// What the gates said at one poll: per gate, units left or why it did not answer.
pub(crate) type Poll = Vec<(String, Result<u64, ProbeError>)>;

/// Resolves once every gate reports 0 units left; `polled` sees each round.
/// A gate that does not answer is not sold out.
pub(crate) async fn sold_out(gates: &[String], every: Duration, mut polled: impl FnMut(&Poll)) {
    let client = Client::new();
    loop {
        let mut round = Vec::new();
        for g in gates {
            round.push((g.clone(), remaining(&client, g).await));
        }
        polled(&round);
        if round.iter().all(|(_, r)| matches!(r, Ok(0))) {
            return;
        }
        tokio::time::sleep(every).await;
    }
}

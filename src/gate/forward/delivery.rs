//! Delivering one winner to the order system: POST with its order id as the
//! `Idempotency-Key`, retried with backoff; a refusal for good goes to the
//! dead letters, so later winners are not held up.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::sale::Winner;
use crate::util::clock::Clock;
use crate::util::http::Client;

/// Where winners go and what happens on the way: the webhook, the counts,
/// and the dead letters (winners the order system refused for good).
pub(crate) struct Delivery {
    client: Client,
    url: String,
    pub(crate) delivered: AtomicU64,
    pub(crate) attempts_failed: AtomicU64,
    pub(crate) dead: AtomicU64,
    dead_letters: PathBuf,
    /// When a dead letter was refused.
    clock: Clock,
}

/// The file of winners the order system refused for good, next to the journal.
pub(crate) const DEAD_LETTERS: &str = "dead-letters.jsonl";

/// One dead letter: the winner, and why the order system refused it.
#[derive(serde::Serialize, serde::Deserialize)]
struct DeadLetter {
    #[serde(flatten)]
    winner: Winner,
    status: u16,
    at: String,
}

impl Delivery {
    pub(crate) fn new(
        url: &str,
        journal_dir: &Path,
        clock: Clock,
    ) -> Result<Arc<Delivery>, crate::util::http::HttpError> {
        let client = Client::new();
        // An order system the gate cannot reach at all is found now, not
        // at the first winner.
        client.check(url)?;
        Ok(Arc::new(Delivery {
            client,
            url: url.to_string(),
            delivered: AtomicU64::new(0),
            attempts_failed: AtomicU64::new(0),
            dead: AtomicU64::new(0),
            dead_letters: journal_dir.join(DEAD_LETTERS),
            clock,
        }))
    }

    /// POSTs `winner` until the order system accepts it (2xx), with backoff
    /// from 100 ms to 30 s while it is down, slow or busy (transport errors,
    /// 408, 429, 5xx). A refusal for good (3xx, other 4xx) goes to the dead
    /// letters instead, so later winners are not held up; `flashsale gate
    /// --resend-dead-letters` tries them again.
    pub(crate) async fn deliver(&self, winner: &Winner) {
        let body: Vec<u8> = serde_json::to_vec(winner).expect("a winner serialises");
        let mut backoff = Duration::from_millis(100);
        loop {
            let headers = [
                ("content-type", "application/json"),
                ("idempotency-key", winner.order.as_str()),
            ];
            let result = self
                .client
                .send(
                    hyper::Method::POST,
                    &self.url,
                    &headers,
                    body.clone().into(),
                    Duration::from_secs(10),
                )
                .await;
            let why = match result {
                Ok(r) if (200..300).contains(&r.status) => {
                    self.delivered.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(order = winner.order, "forwarded");
                    return;
                }
                Ok(r) if permanent(r.status) => return self.bury(winner, r.status),
                Ok(r) => format!("HTTP {}", r.status),
                Err(e) => e.to_string(),
            };
            self.attempts_failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                order = winner.order,
                error = why,
                retry_in_ms = backoff.as_millis() as u64,
                "forward_retry"
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    /// Writes a refused winner to the dead letters (fsynced, 0600).
    fn bury(&self, winner: &Winner, status: u16) {
        self.dead.fetch_add(1, Ordering::Relaxed);
        let letter = DeadLetter {
            winner: winner.clone(),
            status,
            at: self.clock.stamp(),
        };
        let mut line = serde_json::to_vec(&letter).expect("a dead letter serialises");
        line.push(b'\n');
        let written = crate::util::fs::append_durably(&self.dead_letters, &line);
        tracing::error!(
            order = winner.order,
            status,
            file = %self.dead_letters.display(),
            written = written.is_ok(),
            "forward_dead_letter"
        );
    }

    /// Tries the dead letters again: they are taken out of the file first, and
    /// those refused again go back in. Returns how many were tried.
    pub(crate) async fn resend_dead_letters(&self) -> std::io::Result<usize> {
        let resending = self.dead_letters.with_extension("resending.jsonl");
        if self.dead_letters.exists() {
            std::fs::rename(&self.dead_letters, &resending)?;
        }
        let text = match std::fs::read_to_string(&resending) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let letters: Vec<Winner> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<DeadLetter>(l).ok())
            .map(|d| d.winner)
            .collect();
        tracing::info!(count = letters.len(), "forward_resending_dead_letters");
        for w in &letters {
            self.deliver(w).await;
        }
        std::fs::remove_file(&resending)?;
        Ok(letters.len())
    }
}

/// A refusal that trying again will not change: redirects and client errors
/// other than "too slow" (408) and "too many" (429).
fn permanent(status: u16) -> bool {
    (300..400).contains(&status) || ((400..500).contains(&status) && status != 408 && status != 429)
}

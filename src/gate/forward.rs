//! Forwarding winners to the order system, at least once, each with an
//! `Idempotency-Key` (its order id) so duplicates are recognisable, retried
//! with backoff until accepted. The gate keeps admitting while the order
//! system is slow or down.
//!
//! A gate on its own forwards its journal ([`Forwarder`]): in journal order,
//! with how far it got kept in `forward.offset` next to the journal, so a
//! restart resumes there. A fleet on a shared ledger forwards the ledger's
//! stream of winners instead ([`Relay`]): every live gate consumes it in one
//! consumer group, and takes over what a gate that died left unacknowledged,
//! so a winner reaches the order system even if its gate never comes back.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::journal::Winner;
use crate::ledger::Ledger;
use crate::util::http::Client;

pub(super) const OFFSET_FILE: &str = "forward.offset";

pub(super) struct Forwarder {
    url: String,
    offset_path: PathBuf,
    /// Every winner in journal order (replayed ones first).
    records: Mutex<Vec<Winner>>,
    wake: Notify,
    pub(crate) delivered: AtomicU64,
    pub(crate) attempts_failed: AtomicU64,
    /// Index of the next record to deliver.
    pub(crate) offset: AtomicU64,
}

impl Forwarder {
    pub(super) fn new(
        url: &str,
        journal_dir: &std::path::Path,
        replayed: Vec<Winner>,
    ) -> Arc<Forwarder> {
        let offset_path = journal_dir.join(OFFSET_FILE);
        let offset = std::fs::read_to_string(&offset_path)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0)
            .min(replayed.len() as u64);
        Arc::new(Forwarder {
            url: url.to_string(),
            offset_path,
            records: Mutex::new(replayed),
            wake: Notify::new(),
            delivered: AtomicU64::new(0),
            attempts_failed: AtomicU64::new(0),
            offset: AtomicU64::new(offset),
        })
    }

    /// New durable winners (called by the journal writer).
    pub(super) fn push(&self, batch: &[Winner]) {
        self.records
            .lock()
            .expect("forward lock poisoned")
            .extend_from_slice(batch);
        self.wake.notify_one();
    }

    /// Winners not yet accepted by the order system.
    pub(super) fn backlog(&self) -> u64 {
        let total = self.records.lock().expect("forward lock poisoned").len() as u64;
        total.saturating_sub(self.offset.load(Ordering::Relaxed))
    }

    /// Delivers forever; run it as a task.
    pub(super) async fn run(self: Arc<Self>) {
        let client = match Client::new() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "forward_disabled");
                return;
            }
        };
        tracing::info!(
            offset = self.offset.load(Ordering::Relaxed),
            backlog = self.backlog(),
            "forward_resumed"
        );
        loop {
            let next = {
                let records = self.records.lock().expect("forward lock poisoned");
                records
                    .get(self.offset.load(Ordering::Relaxed) as usize)
                    .cloned()
            };
            let Some(winner) = next else {
                self.wake.notified().await;
                continue;
            };
            deliver(&client, &self.url, &winner, &self.attempts_failed).await;
            let offset = self.offset.fetch_add(1, Ordering::Relaxed) + 1;
            self.delivered.fetch_add(1, Ordering::Relaxed);
            // Losing this write only means a duplicate with the same key later.
            let _ = crate::util::fs::write_atomically(
                &self.offset_path,
                format!("{offset}\n").as_bytes(),
            );
            tracing::info!(order = winner.order, offset, "forwarded");
        }
    }
}

/// POSTs `winner` to `url` until the order system accepts it (2xx), with
/// backoff from 100 ms to 30 s; counts failed attempts.
async fn deliver(client: &Client, url: &str, winner: &Winner, failures: &AtomicU64) {
    let body: Vec<u8> = serde_json::to_vec(winner).expect("a winner serialises");
    let mut backoff = Duration::from_millis(100);
    loop {
        let headers = [
            ("content-type", "application/json"),
            ("idempotency-key", winner.order.as_str()),
        ];
        let result = client
            .send(
                hyper::Method::POST,
                url,
                &headers,
                body.clone().into(),
                Duration::from_secs(10),
            )
            .await;
        let why = match result {
            Ok(r) if (200..300).contains(&r.status) => return,
            Ok(r) => format!("HTTP {}", r.status),
            Err(e) => e.to_string(),
        };
        failures.fetch_add(1, Ordering::Relaxed);
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

/// A fleet's forwarder: one consumer of the ledger's stream of winners.
pub(crate) struct Relay {
    url: String,
    /// A connection of its own: its blocking reads must not hold up admissions.
    ledger: Ledger,
    consumer: String,
    pub(crate) delivered: AtomicU64,
    pub(crate) attempts_failed: AtomicU64,
    /// Winners handed to a forwarder and not yet accepted, fleet-wide, as last seen.
    pub(crate) backlog: AtomicU64,
}

/// How long a winner may sit with a silent forwarder before another takes it.
const TAKE_OVER_AFTER: Duration = Duration::from_secs(5);

impl Relay {
    pub(crate) fn new(url: &str, ledger: Ledger, consumer: &str) -> Arc<Relay> {
        Arc::new(Relay {
            url: url.to_string(),
            ledger,
            consumer: consumer.to_string(),
            delivered: AtomicU64::new(0),
            attempts_failed: AtomicU64::new(0),
            backlog: AtomicU64::new(0),
        })
    }

    /// Delivers forever; run it as a task. A ledger that does not answer is
    /// asked again after a pause.
    pub(crate) async fn run(self: Arc<Self>) {
        let client = match Client::new() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "forward_disabled");
                return;
            }
        };
        let pause = Duration::from_millis(200);
        while let Err(e) = self.ledger.ensure_group().await {
            tracing::warn!(error = %e, "forward_waiting_for_ledger");
            tokio::time::sleep(pause).await;
        }
        tracing::info!(consumer = self.consumer, "forward_resumed");
        loop {
            let batch = self
                .ledger
                .next_winners(&self.consumer, TAKE_OVER_AFTER, Duration::from_millis(250))
                .await;
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "forward_waiting_for_ledger");
                    tokio::time::sleep(pause).await;
                    continue;
                }
            };
            for (id, winners) in batch {
                for winner in &winners {
                    deliver(&client, &self.url, winner, &self.attempts_failed).await;
                    self.delivered.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(order = winner.order, "forwarded");
                }
                // Until acknowledged the entry stays pending and is delivered
                // again (same Idempotency-Keys), by this gate or another.
                while let Err(e) = self.ledger.forwarded(&id).await {
                    tracing::warn!(error = %e, entry = id, "forward_ack_retry");
                    tokio::time::sleep(pause).await;
                }
            }
            if let Ok(n) = self.ledger.unforwarded().await {
                self.backlog.store(n, Ordering::Relaxed);
            }
        }
    }
}

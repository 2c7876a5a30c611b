//! The forwarder: sends every winner to the order system, in journal order, at
//! least once, each with an `Idempotency-Key` (its order id) so duplicates are
//! recognisable. Retries with backoff until accepted; how far it got is kept
//! in `forward.offset` next to the journal, so a restart resumes there. The
//! gate keeps admitting while the order system is slow or down.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::journal::Winner;
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
            let body: Vec<u8> = serde_json::to_vec(&winner).expect("a winner serialises");
            let mut backoff = Duration::from_millis(100);
            loop {
                let headers = [
                    ("content-type", "application/json"),
                    ("idempotency-key", winner.order.as_str()),
                ];
                let result = client
                    .send(
                        hyper::Method::POST,
                        &self.url,
                        &headers,
                        body.clone().into(),
                        Duration::from_secs(10),
                    )
                    .await;
                match result {
                    Ok(r) if (200..300).contains(&r.status) => break,
                    other => {
                        self.attempts_failed.fetch_add(1, Ordering::Relaxed);
                        let why = match other {
                            Ok(r) => format!("HTTP {}", r.status),
                            Err(e) => e.to_string(),
                        };
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
            }
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

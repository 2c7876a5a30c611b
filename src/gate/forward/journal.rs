//! A gate on its own forwards its journal: in journal order, with how far
//! it got kept in `forward.offset` next to the journal, so a restart resumes
//! there.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::Delivery;
use crate::sale::Winner;
use crate::util::sync::lock;

pub(super) const OFFSET_FILE: &str = "forward.offset";

/// A gate on its own: forwards its journal, in order.
pub(in crate::gate) struct Forwarder {
    delivery: Arc<Delivery>,
    offset_path: PathBuf,
    /// Every winner in journal order (replayed ones first).
    records: Mutex<Vec<Winner>>,
    wake: Notify,
    /// Index of the next record to deliver.
    pub(crate) offset: AtomicU64,
}

impl Forwarder {
    pub(in crate::gate) fn new(
        delivery: Arc<Delivery>,
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
            delivery,
            offset_path,
            records: Mutex::new(replayed),
            wake: Notify::new(),
            offset: AtomicU64::new(offset),
        })
    }

    /// New durable winners (called by the journal writer).
    pub(in crate::gate) fn push(&self, batch: &[Winner]) {
        lock(&self.records).extend_from_slice(batch);
        self.wake.notify_one();
    }

    /// Winners not yet accepted by the order system.
    pub(in crate::gate) fn backlog(&self) -> u64 {
        let total = lock(&self.records).len() as u64;
        total.saturating_sub(self.offset.load(Ordering::Relaxed))
    }

    /// Delivers until the gate stops; run it as a task.
    pub(in crate::gate) async fn run(self: Arc<Self>) {
        tracing::info!(
            offset = self.offset.load(Ordering::Relaxed),
            backlog = self.backlog(),
            "forward_resumed"
        );
        loop {
            let next = {
                let records = lock(&self.records);
                records
                    .get(self.offset.load(Ordering::Relaxed) as usize)
                    .cloned()
            };
            let Some(winner) = next else {
                self.wake.notified().await;
                continue;
            };
            self.delivery.deliver(&winner).await;
            let offset = self.offset.fetch_add(1, Ordering::Relaxed) + 1;
            // Losing this write only means a duplicate with the same key later.
            let _ =
                crate::util::fs::write_durably(&self.offset_path, format!("{offset}\n").as_bytes());
        }
    }
}

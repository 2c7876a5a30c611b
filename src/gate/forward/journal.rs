//! A gate on its own forwards its journal: up to [`IN_FLIGHT`] winners at
//! once, started in journal order, each retried on its own schedule (one
//! failing winner never holds up the others). How far it got is kept in
//! `forward.offset` next to the journal: the first winner not yet done, so a
//! restart resumes there (winners done after it are sent again, with the
//! same idempotency keys).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::stream::{FuturesUnordered, StreamExt};
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
    /// Index of the first record not yet done (every one before it is).
    pub(crate) offset: AtomicU64,
}

/// Winners on their way at once.
pub(in crate::gate) const IN_FLIGHT: usize = 16;

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
        let mut next = self.offset.load(Ordering::Relaxed) as usize;
        // Done, but after the first one not yet done.
        let mut done_ahead = BTreeSet::new();
        let mut on_the_way = FuturesUnordered::new();
        loop {
            while on_the_way.len() < IN_FLIGHT {
                let Some(winner) = lock(&self.records).get(next).cloned() else {
                    break;
                };
                let delivery = self.delivery.clone();
                let index = next;
                on_the_way.push(async move {
                    delivery.deliver(&winner).await;
                    index
                });
                next += 1;
            }
            tokio::select! {
                Some(index) = on_the_way.next(), if !on_the_way.is_empty() => {
                    done_ahead.insert(index);
                    self.advance(&mut done_ahead);
                }
                _ = self.wake.notified(), if on_the_way.len() < IN_FLIGHT => {}
            }
        }
    }

    /// Moves the offset past every record done without a gap.
    fn advance(&self, done_ahead: &mut BTreeSet<usize>) {
        let mut offset = self.offset.load(Ordering::Relaxed) as usize;
        while done_ahead.remove(&offset) {
            offset += 1;
        }
        if self.offset.swap(offset as u64, Ordering::Relaxed) != offset as u64 {
            // Losing this write only means a duplicate with the same key later.
            let _ =
                crate::util::fs::write_durably(&self.offset_path, format!("{offset}\n").as_bytes());
        }
    }
}

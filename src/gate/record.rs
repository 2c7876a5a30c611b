//! How a winner is recorded, once the stock said who wins: an order id
//! (`sale::order_id`), a line in the winners' journal (fsynced, group
//! commit) before anyone is answered, and then the stock told it is on disk.
//! The journal hands each durable batch to the stock and the forwarder, and
//! settles each winner's ticket itself, on its writer thread: no task per
//! winner, and a client that hangs up leaves nothing unsettled.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::forward::Forwarder;
use super::stock::{Admission, Stock, Ticket};
use crate::journal::{FsyncStats, Journal, JournalError, WINNERS};
use crate::sale::{self, Winner};
use crate::util::clock::Clock;

pub(super) struct Recorder {
    sale: String,
    gate_id: String,
    /// The last order number given.
    order_seq: AtomicU64,
    journal: Journal<Winner>,
    clock: Clock,
}

impl Recorder {
    /// Opens the winners' journal in `dir` (already replayed: `replayed`),
    /// numbering new orders after the highest number in it.
    pub(super) fn open(
        dir: &Path,
        sale: &str,
        gate_id: &str,
        replayed: &[Winner],
        stock: Arc<Stock>,
        clock: Clock,
        forwarder: Option<Arc<Forwarder>>,
    ) -> Result<Recorder, JournalError> {
        let last = replayed
            .iter()
            .filter_map(|w| sale::parse_order_id(&w.order).map(|(_, n)| n))
            .max()
            .unwrap_or(0);
        let journal = Journal::open(
            dir,
            WINNERS,
            Box::new(move |batch: &[Winner]| {
                for w in batch {
                    stock.recorded(w);
                }
                if let Some(f) = &forwarder {
                    f.push(batch);
                }
            }),
        )?;
        Ok(Recorder {
            sale: sale.to_string(),
            gate_id: gate_id.to_string(),
            order_seq: AtomicU64::new(last),
            journal,
            clock,
        })
    }

    pub(super) fn gate_id(&self) -> &str {
        &self.gate_id
    }

    /// A new winner's order id.
    pub(super) fn next_order(&self) -> String {
        let n = self.order_seq.fetch_add(1, Ordering::Relaxed) + 1;
        sale::order_id(&self.gate_id, n)
    }

    /// Journals a winner (fsynced) before it is answered; the journal tells
    /// the stock and settles the ticket once it is on disk, whether or not
    /// this request still waits (its repeats wait for the ticket).
    pub(super) async fn record(
        &self,
        t: &Ticket,
        sku: &str,
        user: &str,
    ) -> Result<(), JournalError> {
        let winner = Winner {
            order: t.order.to_string(),
            sale: self.sale.clone(),
            sku: sku.to_string(),
            user: user.to_string(),
            time: self.clock.stamp(),
            gate: self.gate_id.clone(),
        };
        let settle = Settle(Some(t.clone()));
        let queued = self
            .journal
            .enqueue_with(winner, Box::new(move |ok| settle.finish(ok)));
        let written = match queued {
            Ok(_) if t.is_durable().await => Ok(()),
            Ok(_) => Err(JournalError::Failed),
            Err(e) => Err(e),
        };
        if let Err(e) = &written {
            tracing::error!(error = %e, "journal_failed");
        }
        written
    }

    /// Whether nothing more can be recorded (the disk failed).
    pub(super) fn failed(&self) -> bool {
        self.journal.failed()
    }

    /// As if the disk had failed: nothing more is admitted.
    #[cfg(test)]
    pub(super) fn break_down(&self) {
        self.journal.break_down();
    }

    /// Resolves once every winner admitted so far is on disk (or the journal failed).
    pub(super) async fn settled(&self) -> Result<(), JournalError> {
        self.journal.settled().await
    }

    /// Writes what is queued and stops the writer.
    pub(super) fn close(&self) {
        self.journal.close();
    }

    /// fsync latencies, for `/metrics`.
    pub(super) fn fsyncs(&self) -> &FsyncStats {
        &self.journal.fsyncs
    }
}

/// A winner's ticket until the journal settles it: durable or not, once;
/// if the journal drops it unsettled (it stopped), not durable.
struct Settle(Option<Ticket>);

impl Settle {
    fn finish(mut self, durable: bool) {
        if let Some(t) = self.0.take() {
            t.set_durable(durable);
        }
    }
}

impl Drop for Settle {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.set_durable(false);
        }
    }
}

//! How a winner is recorded, once the stock said who wins: an order id
//! (`sale::order_id`), a line in the winners' journal (fsynced, group
//! commit) before anyone is answered, and then the stock told it is on disk.
//! The journal hands each durable batch to the stock and the forwarder, and
//! settles each winner's ticket itself, on its writer thread: no task per
//! winner, and a client that hangs up leaves nothing unsettled.
//!
//! A fleet's gate journals each *attempt* while the ledger decides it (the
//! recorder is the stock's [`Orders`]): the winner's ticket settles on the
//! attempt's line, and the winner line that confirms it is not waited for
//! (`journal::Winners` adds the lines up).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::forward::Forwarder;
use super::stock::{Admission, Orders, Stock, Ticket};
use super::Error;
use crate::journal::{FsyncStats, Journal, JournalError, WinnerLine, Winners, WINNERS};
use crate::ledger::{Ledger, LedgerError};
use crate::sale::{self, Winner};
use crate::util::clock::Clock;

pub(super) struct Recorder {
    sale: String,
    gate_id: String,
    /// The last order number given.
    order_seq: AtomicU64,
    journal: Journal<WinnerLine>,
    clock: Clock,
}

impl Recorder {
    /// Opens the winners' journal in `dir` (already replayed), numbering
    /// new orders after `last`.
    pub(super) fn open(
        dir: &Path,
        sale: &str,
        gate_id: &str,
        last: u64,
        stock: Arc<Stock>,
        clock: Clock,
        forwarder: Option<Arc<Forwarder>>,
    ) -> Result<Recorder, JournalError> {
        let journal = Journal::open(
            dir,
            WINNERS,
            Box::new(move |batch: &[WinnerLine]| {
                let winners: Vec<Winner> = batch
                    .iter()
                    .filter_map(|l| match l {
                        WinnerLine::Winner(w) => Some(w.clone()),
                        _ => None,
                    })
                    .collect();
                for w in &winners {
                    stock.recorded(w);
                }
                if let Some(f) = forwarder.as_ref().filter(|_| !winners.is_empty()) {
                    f.push(&winners);
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

    fn winner(&self, order: &str, sku: &str, user: &str) -> Winner {
        Winner {
            order: order.to_string(),
            sale: self.sale.clone(),
            sku: sku.to_string(),
            user: user.to_string(),
            time: self.clock.stamp(),
            gate: self.gate_id.clone(),
        }
    }

    /// Journals a winner (fsynced) before it is answered; the journal tells
    /// the stock and settles the ticket once it is on disk, whether or not
    /// this request still waits (its repeats wait for the ticket). A fleet's
    /// winner is on disk once its attempt is: the winner line confirming it
    /// is written with the next commit, not waited for.
    pub(super) async fn record(
        &self,
        t: &Ticket,
        sku: &str,
        user: &str,
    ) -> Result<(), JournalError> {
        let winner = WinnerLine::Winner(self.winner(&t.order, sku, user));
        let queued = if t.attempted {
            self.journal.enqueue(winner)
        } else {
            let settle = Settle(Some(t.clone()));
            self.journal
                .enqueue_with(winner, Box::new(move |ok| settle.finish(ok)))
        };
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

impl Orders for Recorder {
    fn next_order(&self) -> String {
        let n = self.order_seq.fetch_add(1, Ordering::Relaxed) + 1;
        sale::order_id(&self.gate_id, n)
    }

    fn attempt(&self, sku: &str, user: &str, epoch: &str) -> Option<Ticket> {
        let t = Ticket::attempt(&self.next_order());
        let line = WinnerLine::Attempt {
            attempt: self.winner(&t.order, sku, user),
            epoch: epoch.to_string(),
        };
        let settle = Settle(Some(t.clone()));
        self.journal
            .enqueue_with(line, Box::new(move |ok| settle.finish(ok)))
            .ok()?;
        Some(t)
    }

    fn void(&self, order: &str) {
        let _ = self.journal.enqueue(WinnerLine::Void {
            void: order.to_string(),
        });
    }
}

/// How often, and how far apart, a start asks a silent ledger about
/// unresolved attempts before giving up.
const RESOLVE_TRIES: u32 = 10;
const RESOLVE_PAUSE: Duration = Duration::from_millis(500);

/// The winners' journal read back at start, and the lines that settle
/// what a stopped run left unresolved (journaled before anything else).
pub(super) struct Replayed {
    pub(super) winners: Vec<Winner>,
    /// Attempts of a fleet's gate that stopped before the ledger answered.
    pub(super) unresolved: Vec<(Winner, String)>,
    /// The highest order number given (by the journal, or the ledger's).
    pub(super) highest: u64,
    pub(super) settle: Vec<WinnerLine>,
}

impl From<Winners> for Replayed {
    fn from(w: Winners) -> Replayed {
        Replayed {
            winners: w.confirmed,
            unresolved: w.unresolved,
            highest: w.highest,
            settle: Vec::new(),
        }
    }
}

impl Replayed {
    /// Settles the attempts a previous run journaled without learning the
    /// ledger's answer (it stopped in between), before anything is
    /// admitted: one the ledger has (that order for that customer) is a
    /// winner, the others are void. A ledger whose epoch changed since
    /// (lost, loaded again) cannot tell: they are kept as winners — one may
    /// have been answered — and put back like any (an oversell alarm if that
    /// exceeds the stock). A ledger that does not answer: the gate does not
    /// start (it could not admit anyway), saying why. Also numbers new
    /// orders after the ledger's highest of this gate (its journal may be
    /// younger than the ledger).
    pub(super) async fn settle_attempts(
        &mut self,
        ledger: &Ledger,
        gate: &str,
    ) -> Result<(), Error> {
        let asked: Vec<(&str, &str, &str)> = self
            .unresolved
            .iter()
            .map(|(w, _)| (w.sku.as_str(), w.user.as_str(), w.order.as_str()))
            .collect();
        // Attempts go out under one epoch at a time: the newest is asked.
        let epoch = self
            .unresolved
            .last()
            .map(|(_, e)| e.clone())
            .unwrap_or_default();
        let mut tries = 0;
        let (won, highest) = loop {
            match ledger.resolve(&epoch, gate, &asked).await {
                Ok(answer) => break answer,
                Err(e @ LedgerError::Refused { .. }) => return Err(e.into()),
                // Nothing to settle: the gate starts closed, opens when it answers.
                Err(_) if asked.is_empty() => return Ok(()),
                Err(e) if tries + 1 >= RESOLVE_TRIES => {
                    return Err(Error::AttemptsUnresolved {
                        count: asked.len(),
                        at: ledger.at().to_string(),
                        why: e.to_string(),
                    })
                }
                Err(_) => {
                    tries += 1;
                    tokio::time::sleep(RESOLVE_PAUSE).await;
                }
            }
        };
        self.highest = self.highest.max(highest);
        if asked.is_empty() {
            return Ok(());
        }
        let same_epoch = self.unresolved.iter().all(|(_, e)| *e == epoch);
        let Some(won) = won.filter(|_| same_epoch) else {
            tracing::warn!(
                attempts = asked.len(),
                hint = "`flashsale audit` after the sale names any item sold over its stock",
                "attempts_kept: the ledger was loaded again since these attempts; nobody can tell which won, so they count as winners (one may have been answered)"
            );
            self.keep_attempts();
            return Ok(());
        };
        let (mut winners, mut voided) = (0, 0);
        for ((w, _), won) in std::mem::take(&mut self.unresolved).into_iter().zip(won) {
            if won {
                winners += 1;
                self.settle.push(WinnerLine::Winner(w.clone()));
                self.winners.push(w);
            } else {
                voided += 1;
                self.settle.push(WinnerLine::Void { void: w.order });
            }
        }
        tracing::info!(winners, voided, "attempts_settled");
        Ok(())
    }

    /// Journals the lines that settle the attempts (on their own: the
    /// recorder, opened next, reads them back as the winners they are, and
    /// nobody is told twice), before anything else is journaled.
    pub(super) async fn write_settled(&mut self, dir: &Path) -> Result<(), JournalError> {
        if self.settle.is_empty() {
            return Ok(());
        }
        let journal = Journal::open(dir, WINNERS, Box::new(|_: &[WinnerLine]| {}))?;
        for line in std::mem::take(&mut self.settle) {
            journal.enqueue(line)?;
        }
        let written = journal.settled().await;
        journal.close();
        written
    }

    /// Unresolved attempts counted as winners.
    pub(super) fn keep_attempts(&mut self) {
        for (w, _) in std::mem::take(&mut self.unresolved) {
            self.settle.push(WinnerLine::Winner(w.clone()));
            self.winners.push(w);
        }
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

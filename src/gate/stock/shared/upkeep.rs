//! Keeping up with the ledger, whatever the traffic: the poll (epoch,
//! counts, heartbeat), putting this gate's journal back whenever the ledger
//! failed, lost its epoch or was loaded again, and when to admit again.
//!
//! After a lost ledger a gate admits again only once the ledger is loaded
//! and every gate of `[gate] fleet` has put its winners back (its marker in
//! the ledger) or was excused by the load; without a listed fleet, two polls
//! after its own re-assert. What a re-assert finds that does not fit (another
//! order for one of its customers, more winners than stock) is an
//! `oversell_alarm`: logged and counted, for a person to look at.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::{LedgerState, SharedStock, POLL};
use crate::ledger::{LedgerError, Status};
use crate::util::shutdown::Shutdown;
use crate::util::sync::{lock, read, write};

impl SharedStock {
    pub(crate) fn state(&self) -> LedgerState {
        LedgerState::from(self.state.load(Ordering::Relaxed))
    }

    pub(super) fn set_state(&self, to: LedgerState, why: &str) {
        let from = LedgerState::from(self.state.swap(to as u8, Ordering::Relaxed));
        if from == to {
            return;
        }
        match to {
            LedgerState::Up => tracing::info!(at = self.ledger.at(), "ledger_up"),
            LedgerState::Down => {
                tracing::error!(at = self.ledger.at(), error = why, "ledger_down")
            }
            LedgerState::NotLoaded => tracing::error!(
                at = self.ledger.at(),
                sale = self.sale,
                hint = "check every gate is up (`flashsale ledger status`), then `flashsale ledger load`",
                "{why}"
            ),
            LedgerState::Starting => {}
        }
    }

    /// Something failed: nobody is admitted until the ledger answers again
    /// and this gate's winners are back in it.
    pub(super) fn failed(&self, e: &LedgerError) {
        self.reassert.store(true, Ordering::Relaxed);
        self.set_state(LedgerState::Down, &e.to_string());
    }

    /// Polls the ledger until `shutdown`: epoch, counts, heartbeat;
    /// re-asserts the journal whenever the ledger failed, lost its epoch or
    /// was loaded again. Sends attempts to the ledger meanwhile.
    pub(crate) fn run(self: Arc<Self>, shutdown: &Shutdown) {
        if let Some(queued) = lock(&self.queued).take() {
            shutdown.spawn(self.clone().send_attempts(queued, shutdown.clone()));
        }
        shutdown.spawn(async move {
            let mut resume_at: Option<Instant> = None;
            loop {
                self.poll(&mut resume_at).await;
                tokio::time::sleep(POLL).await;
            }
        });
    }

    async fn poll(&self, resume_at: &mut Option<Instant>) {
        self.upkeep_calls.fetch_add(2, Ordering::Relaxed);
        if let Err(e) = self.ledger.watch_primary().await {
            return self.failed(&e);
        }
        if self.ledger.primary_changes() != self.asserted.load(Ordering::Acquire) {
            // A failover: the promoted replica may lack takes its primary
            // acknowledged; they are in the journal. Takes wait meanwhile.
            self.reassert.store(true, Ordering::Relaxed);
            self.set_state(LedgerState::Starting, "");
        }
        let status = match self.ledger.status(&self.skus, Some(&self.gate)).await {
            Ok(s) => s,
            Err(e) => return self.failed(&e),
        };
        self.take_counts(&status);
        let known = read(&self.epoch).clone();
        if status.epoch.is_none() {
            // Never loaded, or lost: put this gate's winners back now, so they
            // are there when the stock is loaded again (and the load knows).
            let why = if known.is_some() {
                "ledger_lost: the ledger has no epoch any more (a Redis restarted empty?); admissions paused"
            } else {
                "ledger_not_loaded: the ledger has no stock for this sale; admissions paused"
            };
            self.set_state(LedgerState::NotLoaded, why);
            let marked = status.members.contains_key(&self.gate);
            if self.reassert.swap(false, Ordering::Relaxed) || known.is_some() || !marked {
                if !self.reassert_journal().await {
                    return;
                }
                *write(&self.epoch) = None;
            }
            *resume_at = None;
            return;
        }
        if status.epoch != known || self.reassert.load(Ordering::Relaxed) {
            if !self.reassert_journal().await {
                return;
            }
            self.reassert.store(false, Ordering::Relaxed);
            if status.epoch != known {
                // Loaded again: an item is sold out as the new stock says
                // (more units, or units of a gate named missing, sell again).
                self.recount(&status);
            }
            *write(&self.epoch) = status.epoch.clone();
            *resume_at = Some(Instant::now() + POLL * 2);
        }
        if let Some(at) = *resume_at {
            if self.may_resume(&status, at) {
                *resume_at = None;
                self.set_state(LedgerState::Up, "");
            }
        }
    }

    /// Units taken and stock per item, as the ledger has them.
    fn take_counts(&self, status: &Status) {
        for (sku, (taken, total)) in &status.items {
            if let Some(item) = self.items.get(sku) {
                item.taken.store(*taken, Ordering::Relaxed);
                if *total > 0 {
                    item.total.store(*total, Ordering::Relaxed);
                    if taken >= total {
                        item.sold_out.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// Each item's sold-out flag as `status` has it, either way.
    fn recount(&self, status: &Status) {
        for (sku, (taken, total)) in &status.items {
            if let Some(item) = self.items.get(sku) {
                let sold_out = *total > 0 && taken >= total;
                item.sold_out.store(sold_out, Ordering::Relaxed);
            }
        }
    }

    /// Whether every gate of the fleet has put its winners back (or was
    /// excused): then nobody's unit can be sold twice. Without a listed
    /// fleet, once two polls (`at`) gave the live gates time to.
    fn may_resume(&self, status: &Status, at: Instant) -> bool {
        if self.fleet.is_empty() {
            return Instant::now() >= at;
        }
        let away: Vec<String> = self
            .fleet
            .iter()
            .filter(|g| **g != self.gate && !status.members.contains_key(*g))
            .cloned()
            .collect();
        let mut said = lock(&self.waiting_for);
        if away.is_empty() {
            said.clear();
            return true;
        }
        if *said != away {
            tracing::warn!(
                gates = away.join(","),
                hint = "start them: each puts its winners back from its journal",
                "waiting_for_gates: admissions stay paused until every gate of the fleet has put its winners back"
            );
            *said = away;
        }
        false
    }

    /// Puts this gate's journal (winners and fair-start entries) back into
    /// the ledger; `false` if the ledger failed.
    pub(super) async fn reassert_journal(&self) -> bool {
        let changes = self.ledger.primary_changes();
        let failover = changes != self.asserted.load(Ordering::Acquire);
        let winners = lock(&self.journal).clone();
        let entries = lock(&self.entrants).clone();
        self.upkeep_calls.fetch_add(1, Ordering::Relaxed);
        let found = match self.ledger.reassert(&self.gate, &winners, &entries).await {
            Ok(found) => found,
            Err(e) => {
                self.failed(&e);
                return false;
            }
        };
        if failover {
            // The promoted replica lacked `missing` of this gate's winners.
            tracing::warn!(
                winners = winners.len(),
                missing = found.missing,
                at = self.ledger.at(),
                "ledger_reasserted_after_failover"
            );
        } else if found.missing > 0 || !winners.is_empty() || !entries.is_empty() {
            tracing::warn!(
                winners = winners.len(),
                entries = entries.len(),
                missing = found.missing,
                "ledger_reasserted"
            );
        }
        let mut seen = lock(&self.alarms);
        for alarm in found.alarms {
            tracing::error!(
                alarm = %alarm,
                hint = "a unit may be sold twice: run `flashsale audit` over every gate's journal, and settle it with the customers",
                "oversell_alarm"
            );
            seen.insert(alarm);
        }
        self.asserted.store(changes, Ordering::Release);
        true
    }
}

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
//! [`Forwarding`] is the choice, made at start; its tasks end with the gate.
//! With a forward key every delivery is signed (`sign`).

mod delivery;
mod journal;
mod relay;
mod sign;

use std::sync::atomic::Ordering;
use std::sync::Arc;

pub(crate) use delivery::Delivery;
pub(in crate::gate) use journal::Forwarder;
use relay::Relay;
pub(crate) use sign::{Signer, MIN_KEY as MIN_FORWARD_KEY};

use super::{Error, Options};
use crate::config::Config;
use crate::ledger::Ledger;
use crate::sale::Winner;
use crate::util::shutdown::Shutdown;

/// Who sends winners to the order system, and how it went.
pub(super) struct Forwarding {
    delivery: Arc<Delivery>,
    from: Source,
}

enum Source {
    /// This gate's journal.
    Journal(Arc<Forwarder>),
    /// The fleet ledger's stream, shared with the other live gates.
    Stream(Arc<Relay>),
}

impl Forwarding {
    /// Forwarding to `--forward` or `[gate] forward`, if either is set: from
    /// the fleet's stream with a ledger, else from this gate's journal
    /// (`replayed` so far).
    pub(super) fn new(
        config: &Config,
        opts: &Options,
        gate_id: &str,
        replayed: &[Winner],
    ) -> Result<Option<Forwarding>, Error> {
        let Some(url) = opts.forward.as_ref().or(config.gate.forward.as_ref()) else {
            return Ok(None);
        };
        let delivery = Delivery::new(
            url,
            config.gate.forward_attempts,
            opts.forward_keys.clone().map(Signer::new),
            &opts.journal_dir,
            opts.clock.clone(),
        )?;
        let from = match &config.gate.ledger {
            // A fleet forwards the ledger's stream, on a connection of its own.
            Some(ledger) => Source::Stream(Relay::new(
                delivery.clone(),
                Ledger::new(ledger, &config.gate.ledger_access, &config.name)?,
                gate_id,
            )),
            None => Source::Journal(Forwarder::new(
                delivery.clone(),
                &opts.journal_dir,
                replayed.to_vec(),
            )),
        };
        Ok(Some(Forwarding { delivery, from }))
    }

    /// What the winners' journal hands each durable batch to (none in a
    /// fleet: the ledger's stream has them).
    pub(super) fn journal_feed(&self) -> Option<Arc<Forwarder>> {
        match &self.from {
            Source::Journal(f) => Some(f.clone()),
            Source::Stream(_) => None,
        }
    }

    /// Delivers until `shutdown`; first the dead letters again if asked.
    pub(super) fn run(&self, shutdown: &Shutdown, resend_dead_letters: bool) {
        match &self.from {
            Source::Journal(j) => shutdown.spawn(j.clone().run()),
            Source::Stream(r) => shutdown.spawn(r.clone().run()),
        }
        if resend_dead_letters {
            let delivery = self.delivery.clone();
            shutdown.spawn(async move {
                match delivery.resend_dead_letters().await {
                    Ok(n) => tracing::info!(count = n, "forward_dead_letters_resent"),
                    Err(e) => tracing::error!(error = %e, "forward_dead_letters_unreadable"),
                }
            });
        }
    }

    /// Winners not yet accepted by the order system.
    pub(super) fn backlog(&self) -> u64 {
        match &self.from {
            Source::Journal(f) => f.backlog(),
            Source::Stream(r) => r.backlog.load(Ordering::Relaxed),
        }
    }

    pub(super) fn delivered(&self) -> u64 {
        self.delivery.delivered.load(Ordering::Relaxed)
    }

    pub(super) fn failures(&self) -> u64 {
        self.delivery.attempts_failed.load(Ordering::Relaxed)
    }

    pub(super) fn dead(&self) -> u64 {
        self.delivery.dead.load(Ordering::Relaxed)
    }

    pub(super) fn gave_up(&self) -> u64 {
        self.delivery.gave_up.load(Ordering::Relaxed)
    }
}

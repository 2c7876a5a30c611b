//! A fleet forwards the ledger's stream of winners: every live gate
//! consumes it in one consumer group, and takes over what a gate that died
//! left unacknowledged — only from the dead: an entry is claimed when its
//! forwarder's heartbeat is stale and it has sat for [`TAKE_OVER_AFTER`], so
//! a live gate retrying a struggling order system keeps its winners (each is
//! delivered by one gate). An entry handed out [`MAX_HANDOUTS`] times is set
//! aside in the claimer's dead letters instead of being passed on again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::task::JoinSet;

use super::Delivery;
use crate::ledger::{Ledger, LedgerError};

/// A fleet's forwarder: one consumer of the ledger's stream of winners.
pub(crate) struct Relay {
    delivery: Arc<Delivery>,
    /// A connection of its own: its blocking reads must not hold up admissions.
    ledger: Ledger,
    consumer: String,
    /// Winners handed to a forwarder and not yet accepted, fleet-wide, as last seen.
    pub(crate) backlog: AtomicU64,
}

/// How long a winner may sit with a dead forwarder before another takes it.
pub(super) const TAKE_OVER_AFTER: Duration = Duration::from_secs(5);

/// A forwarder whose gate's heartbeat is this old is dead (gates beat every 50 ms).
const DEAD_AFTER: Duration = Duration::from_secs(3);

/// How often a relay looks for entries of dead forwarders.
const LOOK_FOR_STRANDED: Duration = Duration::from_secs(1);

/// Entries on their way at once.
const IN_FLIGHT: usize = 16;

/// An entry handed out this often (each a forwarder that died with it) is
/// set aside, not passed on.
pub(super) const MAX_HANDOUTS: usize = 5;

impl Relay {
    pub(crate) fn new(delivery: Arc<Delivery>, ledger: Ledger, consumer: &str) -> Arc<Relay> {
        Arc::new(Relay {
            delivery,
            ledger,
            consumer: consumer.to_string(),
            backlog: AtomicU64::new(0),
        })
    }

    /// Delivers until the gate stops; run it as a task: up to [`IN_FLIGHT`]
    /// entries on their way at once, each acknowledged when its winners are
    /// accepted or set aside, so a winner that keeps failing holds up none of
    /// the others. A ledger that does not answer is asked again after a
    /// pause; one that lost the consumer group (a Redis that restarted empty,
    /// `ledger clear`) gets it again, from the start of the stream, so
    /// winners re-asserted since are delivered.
    pub(crate) async fn run(self: Arc<Self>) {
        let pause = Duration::from_millis(200);
        while let Err(e) = self.ledger.ensure_group().await {
            tracing::warn!(error = %e, "forward_waiting_for_ledger");
            tokio::time::sleep(pause).await;
        }
        tracing::info!(consumer = self.consumer, "forward_resumed");
        // Tasks of their own (they go on while the ledger is asked), ended with this one.
        let mut on_the_way = JoinSet::new();
        // This gate's own unacknowledged entries are read first, after this id.
        let mut own: Option<String> = Some("0".to_string());
        let mut looked = tokio::time::Instant::now();
        let mut fleet_forwarded = self.ledger.forwarded_count().await.unwrap_or(0);
        loop {
            let free = IN_FLIGHT - on_the_way.len();
            if free > 0 {
                // Idle: wait for new winners at the ledger; busy: just look.
                let block = on_the_way.is_empty().then_some(Duration::from_millis(250));
                let read = self
                    .ledger
                    .read_winners(&self.consumer, own.as_deref(), free, block)
                    .await;
                match read {
                    Ok(entries) => {
                        if own.is_some() {
                            own = (entries.len() == free)
                                .then(|| entries.last().map(|(id, _)| id.clone()))
                                .flatten();
                        }
                        for e in entries {
                            on_the_way.spawn(self.clone().deliver(e));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "forward_waiting_for_ledger");
                        // NOGROUP after a lost ledger: made again (BUSYGROUP otherwise).
                        let _ = self.ledger.ensure_group().await;
                        own = Some("0".to_string());
                        if on_the_way.is_empty() {
                            tokio::time::sleep(pause).await;
                        }
                    }
                }
            }
            if looked.elapsed() >= LOOK_FOR_STRANDED {
                looked = tokio::time::Instant::now();
                if let Ok(taken) = self.take_over().await {
                    for e in taken {
                        on_the_way.spawn(self.clone().deliver(e));
                    }
                }
                if let Ok(n) = self.ledger.unforwarded().await {
                    self.backlog.store(n, Ordering::Relaxed);
                }
                // Winners the order system took at any gate: a winner failing
                // here alone is a poison one (`Delivery::deliver`).
                if let Ok(n) = self.ledger.forwarded_count().await {
                    if n > fleet_forwarded {
                        self.delivery.accepted_elsewhere(n - fleet_forwarded);
                    }
                    fleet_forwarded = n;
                }
            }
            if !on_the_way.is_empty() {
                // Full: until one is done; else a moment, then read again.
                let wait = if on_the_way.len() < IN_FLIGHT {
                    50
                } else {
                    1_000
                };
                tokio::select! {
                    _ = on_the_way.join_next() => {}
                    _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                }
            }
        }
    }

    /// Delivers one entry's winners at once, then acknowledges it. Until
    /// acknowledged the entry stays pending and is delivered again (same
    /// Idempotency-Keys), by this gate or, if it dies, another.
    async fn deliver(self: Arc<Self>, (id, winners): (String, Vec<crate::sale::Winner>)) {
        join_all(winners.iter().map(|w| self.delivery.deliver(w))).await;
        while let Err(e) = self.ledger.forwarded(&id).await {
            tracing::warn!(error = %e, entry = id, "forward_ack_retry");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Claims what dead forwarders left: to deliver, or (handed out too
    /// often) to set aside.
    async fn take_over(&self) -> Result<Vec<(String, Vec<crate::sale::Winner>)>, LedgerError> {
        let stranded = self
            .ledger
            .stranded(&self.consumer, DEAD_AFTER, TAKE_OVER_AFTER)
            .await?;
        let ids: Vec<String> = stranded.iter().map(|(id, _)| id.clone()).collect();
        let claimed = self
            .ledger
            .claim(&self.consumer, &ids, TAKE_OVER_AFTER)
            .await?;
        let mut deliver = Vec::new();
        for (id, winners) in claimed {
            let handouts = stranded
                .iter()
                .find(|(s, _)| *s == id)
                .map_or(0, |(_, n)| *n);
            if handouts < MAX_HANDOUTS {
                tracing::warn!(entry = id, winners = winners.len(), "forward_took_over");
                deliver.push((id, winners));
                continue;
            }
            for w in &winners {
                self.delivery.set_aside(
                    w,
                    format!("handed out {handouts} times: every forwarder died with it"),
                );
            }
            // Set aside: acknowledged, never passed on again.
            self.ledger.forwarded(&id).await?;
        }
        Ok(deliver)
    }
}

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

    /// Delivers until the gate stops; run it as a task. A ledger that does
    /// not answer is asked again after a pause; one that lost the consumer
    /// group (a Redis that restarted empty, `ledger clear`) gets it again,
    /// from the start of the stream, so winners re-asserted since are delivered.
    pub(crate) async fn run(self: Arc<Self>) {
        let pause = Duration::from_millis(200);
        while let Err(e) = self.ledger.ensure_group().await {
            tracing::warn!(error = %e, "forward_waiting_for_ledger");
            tokio::time::sleep(pause).await;
        }
        tracing::info!(consumer = self.consumer, "forward_resumed");
        let mut looked = tokio::time::Instant::now();
        loop {
            let mut batch = self
                .ledger
                .next_winners(&self.consumer, Duration::from_millis(250))
                .await;
            if looked.elapsed() >= LOOK_FOR_STRANDED {
                looked = tokio::time::Instant::now();
                if let (Ok(b), Ok(taken)) = (&mut batch, self.take_over().await) {
                    b.extend(taken);
                }
            }
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "forward_waiting_for_ledger");
                    // NOGROUP after a lost ledger: made again (BUSYGROUP otherwise).
                    let _ = self.ledger.ensure_group().await;
                    tokio::time::sleep(pause).await;
                    continue;
                }
            };
            // The batch's entries, and each entry's winners, on their way at
            // once: a winner that keeps failing holds up none of the others.
            let me = &self;
            join_all(batch.into_iter().map(|(id, winners)| async move {
                join_all(winners.iter().map(|w| me.delivery.deliver(w))).await;
                // Until acknowledged the entry stays pending and is delivered
                // again (same Idempotency-Keys), by this gate or another.
                while let Err(e) = me.ledger.forwarded(&id).await {
                    tracing::warn!(error = %e, entry = id, "forward_ack_retry");
                    tokio::time::sleep(pause).await;
                }
            }))
            .await;
            if let Ok(n) = self.ledger.unforwarded().await {
                self.backlog.store(n, Ordering::Relaxed);
            }
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

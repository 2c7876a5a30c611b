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

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::{Error, Options};
use crate::config::Config;
use crate::ledger::Ledger;
use crate::sale::Winner;
use crate::util::clock::Clock;
use crate::util::http::Client;
use crate::util::shutdown::Shutdown;
use crate::util::sync::lock;

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
        let delivery = Delivery::new(url, &opts.journal_dir, opts.clock.clone())?;
        let from = match &config.gate.ledger {
            // A fleet forwards the ledger's stream, on a connection of its own.
            Some(ledger) => Source::Stream(Relay::new(
                delivery.clone(),
                Ledger::new(ledger, &config.name)?,
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
}

pub(super) const OFFSET_FILE: &str = "forward.offset";

/// A gate on its own: forwards its journal, in order.
pub(super) struct Forwarder {
    delivery: Arc<Delivery>,
    offset_path: PathBuf,
    /// Every winner in journal order (replayed ones first).
    records: Mutex<Vec<Winner>>,
    wake: Notify,
    /// Index of the next record to deliver.
    pub(crate) offset: AtomicU64,
}

impl Forwarder {
    pub(super) fn new(
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
    pub(super) fn push(&self, batch: &[Winner]) {
        lock(&self.records).extend_from_slice(batch);
        self.wake.notify_one();
    }

    /// Winners not yet accepted by the order system.
    pub(super) fn backlog(&self) -> u64 {
        let total = lock(&self.records).len() as u64;
        total.saturating_sub(self.offset.load(Ordering::Relaxed))
    }

    /// Delivers until the gate stops; run it as a task.
    pub(super) async fn run(self: Arc<Self>) {
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

/// Where winners go and what happens on the way: the webhook, the counts,
/// and the dead letters (winners the order system refused for good).
pub(crate) struct Delivery {
    client: Client,
    url: String,
    pub(crate) delivered: AtomicU64,
    pub(crate) attempts_failed: AtomicU64,
    pub(crate) dead: AtomicU64,
    dead_letters: PathBuf,
    /// When a dead letter was refused.
    clock: Clock,
}

/// The file of winners the order system refused for good, next to the journal.
pub(crate) const DEAD_LETTERS: &str = "dead-letters.jsonl";

/// One dead letter: the winner, and why the order system refused it.
#[derive(serde::Serialize, serde::Deserialize)]
struct DeadLetter {
    #[serde(flatten)]
    winner: Winner,
    status: u16,
    at: String,
}

impl Delivery {
    pub(crate) fn new(
        url: &str,
        journal_dir: &Path,
        clock: Clock,
    ) -> Result<Arc<Delivery>, crate::util::http::HttpError> {
        let client = Client::new();
        // An order system the gate cannot reach at all is found now, not
        // at the first winner.
        client.check(url)?;
        Ok(Arc::new(Delivery {
            client,
            url: url.to_string(),
            delivered: AtomicU64::new(0),
            attempts_failed: AtomicU64::new(0),
            dead: AtomicU64::new(0),
            dead_letters: journal_dir.join(DEAD_LETTERS),
            clock,
        }))
    }

    /// POSTs `winner` until the order system accepts it (2xx), with backoff
    /// from 100 ms to 30 s while it is down, slow or busy (transport errors,
    /// 408, 429, 5xx). A refusal for good (3xx, other 4xx) goes to the dead
    /// letters instead, so later winners are not held up; `flashsale gate
    /// --resend-dead-letters` tries them again.
    pub(crate) async fn deliver(&self, winner: &Winner) {
        let body: Vec<u8> = serde_json::to_vec(winner).expect("a winner serialises");
        let mut backoff = Duration::from_millis(100);
        loop {
            let headers = [
                ("content-type", "application/json"),
                ("idempotency-key", winner.order.as_str()),
            ];
            let result = self
                .client
                .send(
                    hyper::Method::POST,
                    &self.url,
                    &headers,
                    body.clone().into(),
                    Duration::from_secs(10),
                )
                .await;
            let why = match result {
                Ok(r) if (200..300).contains(&r.status) => {
                    self.delivered.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(order = winner.order, "forwarded");
                    return;
                }
                Ok(r) if permanent(r.status) => return self.bury(winner, r.status),
                Ok(r) => format!("HTTP {}", r.status),
                Err(e) => e.to_string(),
            };
            self.attempts_failed.fetch_add(1, Ordering::Relaxed);
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

    /// Writes a refused winner to the dead letters (fsynced, 0600).
    fn bury(&self, winner: &Winner, status: u16) {
        self.dead.fetch_add(1, Ordering::Relaxed);
        let letter = DeadLetter {
            winner: winner.clone(),
            status,
            at: self.clock.stamp(),
        };
        let mut line = serde_json::to_vec(&letter).expect("a dead letter serialises");
        line.push(b'\n');
        let written = crate::util::fs::append_durably(&self.dead_letters, &line);
        tracing::error!(
            order = winner.order,
            status,
            file = %self.dead_letters.display(),
            written = written.is_ok(),
            "forward_dead_letter"
        );
    }

    /// Tries the dead letters again: they are taken out of the file first, and
    /// those refused again go back in. Returns how many were tried.
    pub(crate) async fn resend_dead_letters(&self) -> std::io::Result<usize> {
        let resending = self.dead_letters.with_extension("resending.jsonl");
        if self.dead_letters.exists() {
            std::fs::rename(&self.dead_letters, &resending)?;
        }
        let text = match std::fs::read_to_string(&resending) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let letters: Vec<Winner> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<DeadLetter>(l).ok())
            .map(|d| d.winner)
            .collect();
        tracing::info!(count = letters.len(), "forward_resending_dead_letters");
        for w in &letters {
            self.deliver(w).await;
        }
        std::fs::remove_file(&resending)?;
        Ok(letters.len())
    }
}

/// A refusal that trying again will not change: redirects and client errors
/// other than "too slow" (408) and "too many" (429).
fn permanent(status: u16) -> bool {
    (300..400).contains(&status) || ((400..500).contains(&status) && status != 408 && status != 429)
}

/// A fleet's forwarder: one consumer of the ledger's stream of winners.
pub(crate) struct Relay {
    delivery: Arc<Delivery>,
    /// A connection of its own: its blocking reads must not hold up admissions.
    ledger: Ledger,
    consumer: String,
    /// Winners handed to a forwarder and not yet accepted, fleet-wide, as last seen.
    pub(crate) backlog: AtomicU64,
}

/// How long a winner may sit with a silent forwarder before another takes it.
const TAKE_OVER_AFTER: Duration = Duration::from_secs(5);

impl Relay {
    pub(crate) fn new(delivery: Arc<Delivery>, ledger: Ledger, consumer: &str) -> Arc<Relay> {
        Arc::new(Relay {
            delivery,
            ledger,
            consumer: consumer.to_string(),
            backlog: AtomicU64::new(0),
        })
    }

    /// Delivers until the gate stops; run it as a task. A ledger that does not answer is
    /// asked again after a pause.
    pub(crate) async fn run(self: Arc<Self>) {
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
                    self.delivery.deliver(winner).await;
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

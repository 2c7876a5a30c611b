//! Delivering one winner to the order system: POST with its order id as the
//! `Idempotency-Key`, retried with backoff. Two kinds of winner are set
//! aside in the dead letters, so the others are never held up: one the order
//! system refuses for good (3xx, 4xx but 408/429), and a poison one — failing
//! `[gate] forward_attempts` times in a row while the order system accepted
//! other winners meanwhile. An order system that fails everyone (down) has
//! every winner retried, however long, and nothing set aside.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::Signer;
use crate::sale::Winner;
use crate::util::clock::Clock;
use crate::util::http::Client;

/// Where winners go and what happens on the way: the webhook, the counts,
/// and the dead letters.
pub(crate) struct Delivery {
    client: Client,
    url: String,
    pub(crate) delivered: AtomicU64,
    /// Grows whenever the order system takes a winner, here or (in a
    /// fleet) at another gate: what tells a poison winner from a down system.
    progress: AtomicU64,
    pub(crate) attempts_failed: AtomicU64,
    /// Winners set aside in the dead letters, for any reason.
    pub(crate) dead: AtomicU64,
    /// Of those, the poison ones (failing while others were accepted).
    pub(crate) gave_up: AtomicU64,
    /// Failed attempts in a row after which a poison winner is set aside.
    attempts: u32,
    dead_letters: PathBuf,
    /// When a dead letter was set aside, and a signature's time.
    clock: Clock,
    /// Signs each POST, when the order system gave a forward key.
    signer: Option<Signer>,
}

/// How one winner's delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivered {
    /// The order system took it (2xx).
    Accepted,
    /// In the dead letters: refused for good, or a poison winner.
    SetAside,
}

/// The file of winners the order system refused for good, next to the journal.
pub(crate) const DEAD_LETTERS: &str = "dead-letters.jsonl";

/// One dead letter: the winner, and why it was set aside.
#[derive(serde::Serialize, serde::Deserialize)]
struct DeadLetter {
    #[serde(flatten)]
    winner: Winner,
    /// The order system's last answer (0: none, a transport error).
    status: u16,
    at: String,
    /// Attempts made (1 for a refusal for good).
    #[serde(default)]
    attempts: u32,
    /// What the last attempt got, in words.
    #[serde(default)]
    error: String,
}

impl Delivery {
    /// Delivery to `url`, signed by `signer` if given, setting poison
    /// winners aside after `attempts` failures in a row; dead letters in
    /// `journal_dir`.
    pub(crate) fn new(
        url: &str,
        attempts: u32,
        signer: Option<Signer>,
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
            progress: AtomicU64::new(0),
            attempts_failed: AtomicU64::new(0),
            dead: AtomicU64::new(0),
            gave_up: AtomicU64::new(0),
            attempts: attempts.max(1),
            dead_letters: journal_dir.join(DEAD_LETTERS),
            clock,
            signer,
        }))
    }

    /// POSTs `winner` until the order system accepts it (2xx), with backoff
    /// from 100 ms to 30 s while it is down, slow or busy (transport errors,
    /// 408, 429, 5xx). Set aside in the dead letters instead: a refusal for
    /// good (3xx, other 4xx), or `attempts` failures in a row while other
    /// winners were accepted since this one was first tried (a poison
    /// winner, not an order system that is down). `flashsale gate
    /// --resend-dead-letters` tries them again.
    pub(crate) async fn deliver(&self, winner: &Winner) -> Delivered {
        let body: Vec<u8> = serde_json::to_vec(winner).expect("a winner serialises");
        let mut backoff = Duration::from_millis(100);
        let mut failures = 0;
        // Winners accepted before this one was first tried: any accepted
        // since (alongside it included) say the order system is up.
        let others_then = self.progress.load(Ordering::Relaxed);
        loop {
            // Signed now: each attempt carries the time it is sent.
            let signature = self
                .signer
                .as_ref()
                .map(|s| s.header(self.clock.now_ms() / 1000, &body));
            let mut headers = vec![
                ("content-type", "application/json"),
                ("idempotency-key", winner.order.as_str()),
            ];
            if let Some(sig) = &signature {
                headers.push((super::sign::HEADER, sig.as_str()));
            }
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
            let (status, why) = match result {
                Ok(r) if (200..300).contains(&r.status) => {
                    self.delivered.fetch_add(1, Ordering::Relaxed);
                    self.progress.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(order = winner.order, "forwarded");
                    return Delivered::Accepted;
                }
                Ok(r) if permanent(r.status) => {
                    let why = format!("HTTP {}: refused for good", r.status);
                    self.bury(winner, r.status, 1, why);
                    return Delivered::SetAside;
                }
                Ok(r) => (r.status, format!("HTTP {}", r.status)),
                Err(e) => (0, e.to_string()),
            };
            self.attempts_failed.fetch_add(1, Ordering::Relaxed);
            failures += 1;
            if failures >= self.attempts && self.progress.load(Ordering::Relaxed) > others_then {
                self.gave_up.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    order = winner.order,
                    attempts = failures,
                    error = why,
                    hint = "the order system takes other winners but fails this one: see its logs; `flashsale gate --resend-dead-letters` tries it again",
                    "forward_gave_up"
                );
                self.bury(winner, status, failures, why);
                return Delivered::SetAside;
            }
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

    /// Other gates got `n` more winners accepted (a fleet's relay says so).
    pub(crate) fn accepted_elsewhere(&self, n: u64) {
        self.progress.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets a winner aside without trying it (`why` says why), as given up on.
    pub(crate) fn set_aside(&self, winner: &Winner, why: String) {
        self.gave_up.fetch_add(1, Ordering::Relaxed);
        tracing::error!(order = winner.order, error = why, "forward_gave_up");
        self.bury(winner, 0, 0, why);
    }

    /// Writes a winner set aside to the dead letters (fsynced, 0600).
    fn bury(&self, winner: &Winner, status: u16, attempts: u32, error: String) {
        self.dead.fetch_add(1, Ordering::Relaxed);
        let letter = DeadLetter {
            winner: winner.clone(),
            status,
            at: self.clock.stamp(),
            attempts,
            error,
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
    /// those refused again go back in. Returns how many were tried. Letters
    /// left by a resend that was interrupted are tried too, never overwritten.
    pub(crate) async fn resend_dead_letters(&self) -> std::io::Result<usize> {
        let resending = self.dead_letters.with_extension("resending.jsonl");
        match (self.dead_letters.exists(), resending.exists()) {
            (true, false) => std::fs::rename(&self.dead_letters, &resending)?,
            (true, true) => {
                // An earlier resend stopped part-way: keep its letters, add these.
                let more = std::fs::read(&self.dead_letters)?;
                crate::util::fs::append_durably(&resending, &more)?;
                std::fs::remove_file(&self.dead_letters)?;
            }
            (false, _) => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    fn winner(user: &str) -> Winner {
        Winner {
            order: format!("g-{user}"),
            sale: "s".into(),
            sku: "A".into(),
            user: user.into(),
            time: "2026-01-01T00:00:00.000Z".into(),
            gate: "g".into(),
        }
    }

    #[tokio::test]
    async fn a_resend_interrupted_part_way_loses_no_letter() {
        let dir = tempfile::tempdir().unwrap();
        // Nothing listens there: every letter is retried, none delivered.
        let d = Delivery::new(
            "http://127.0.0.1:9/orders",
            1,
            None,
            dir.path(),
            Clock::system(),
        )
        .unwrap();
        d.set_aside(&winner("first"), "test".into());
        // A resend stops part-way (the gate was killed): its file stays.
        std::fs::rename(
            dir.path().join(DEAD_LETTERS),
            dir.path()
                .join(DEAD_LETTERS)
                .with_extension("resending.jsonl"),
        )
        .unwrap();
        d.set_aside(&winner("second"), "test".into());
        // The next resend takes both (it would retry forever here: stop it).
        let _ = tokio::time::timeout(Duration::from_millis(300), d.resend_dead_letters()).await;
        let left = std::fs::read_to_string(
            dir.path()
                .join(DEAD_LETTERS)
                .with_extension("resending.jsonl"),
        )
        .unwrap();
        assert!(
            left.contains("\"user\":\"first\"") && left.contains("\"user\":\"second\""),
            "{left}"
        );
        assert!(!dir.path().join(DEAD_LETTERS).exists());
    }
}

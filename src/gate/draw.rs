//! A fair start at the gate (`[gate] fair_window`): orders that pass every
//! check in `[start − tolerance, start + fair_window)` are entries, not wins.
//! Each entry is journaled (`entries.jsonl`, group commit) and its request
//! held until the draw; at the window's end each item's units are drawn among
//! its entrants (`sale::draw`) and the drawn are admitted and journaled as any
//! winner; then every held request goes on through the admission, where a drawn
//! entrant is a repeat (their order) and the others find the item sold out
//! (answered "not drawn"). Units left over go first come, first served.
//!
//! Why held requests and not a 202 and a result URL to poll: the answer
//! reaches each entrant the moment the draw is done, with one request per
//! entrant instead of a poll storm right when everyone wants the result, and
//! no result URL that would need its own authentication. The cost is one open
//! connection per entrant for at most the window (≤ 30 s); proxies in front
//! of the gates must wait that long.
//!
//! The draw is idempotent: drawing again admits the same entrants (already
//! winners: repeats), so a gate killed during the window or the draw draws
//! again on restart from its journals, with the units it recorded first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::admission::{Admission, Verdict};
use super::journal::{Journal, JournalError};
use super::Gate;
use crate::sale::draw::{self, Line, Seed};

pub(crate) const FILE_NAME: &str = "entries.jsonl";

/// Entries a gate keeps at most (identities are authenticated, so this is a
/// bound on memory, not the real limit); further ones are answered busy.
const MAX_ENTRIES: usize = 2_000_000;

/// An entrant waits at most this long past the window for the draw.
pub(super) const DRAW_GRACE: Duration = Duration::from_secs(10);

/// Where the draw stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Taking entries (or the window is over and the draw is running).
    Entering,
    /// Every item is drawn: admission as usual.
    Done,
    /// The draw could not be done (the journal failed) or the gate is
    /// stopping: entrants are answered 503; their entries stand.
    Stopped,
}

struct Entries {
    /// Set once the window is over: no more entries.
    closed: bool,
    by_sku: HashMap<String, HashSet<Arc<str>>>,
    count: usize,
    /// The journal's number of the last entry queued.
    last_seq: u64,
    /// Units each item's draw began with (a replayed `Drawn` line).
    drawn: HashMap<String, u32>,
}

/// What happened to an order that arrived while the draw was on.
pub(super) enum Entered {
    /// Not an entry: the window is over (admission as usual, after the draw).
    No,
    /// An entry, on disk (or an entry already).
    Yes,
}

pub(super) struct StartDraw {
    seed: Seed,
    /// Entries from `start − tolerance`, until this (Unix ms).
    pub(super) until_ms: i64,
    gate_id: String,
    skus: Vec<String>,
    journal: Journal<Line>,
    entries: Mutex<Entries>,
    phase: watch::Sender<Phase>,
}

impl StartDraw {
    /// Opens `dir/entries.jsonl` and puts its entries back.
    pub(super) fn open(
        dir: &Path,
        seed: Seed,
        until_ms: i64,
        gate_id: &str,
        skus: Vec<String>,
    ) -> Result<(StartDraw, usize), JournalError> {
        let replayed: Vec<Line> = super::journal::replay_file(&dir.join(FILE_NAME))?;
        let mut entries = Entries {
            closed: false,
            by_sku: skus.iter().map(|s| (s.clone(), HashSet::new())).collect(),
            count: 0,
            last_seq: 0,
            drawn: HashMap::new(),
        };
        for line in &replayed {
            match line {
                Line::Entry { sku, user, .. } => {
                    if let Some(set) = entries.by_sku.get_mut(sku) {
                        if set.insert(user.as_str().into()) {
                            entries.count += 1;
                        }
                    }
                }
                Line::Drawn { drawn, units, .. } => {
                    entries.drawn.insert(drawn.clone(), *units);
                }
                Line::Seed { .. } => {}
            }
        }
        let count = entries.count;
        let journal = Journal::open_file(dir, FILE_NAME, Box::new(|_: &[Line]| {}))?;
        Ok((
            StartDraw {
                seed,
                until_ms,
                gate_id: gate_id.to_string(),
                skus,
                journal,
                entries: Mutex::new(entries),
                phase: watch::channel(Phase::Entering).0,
            },
            count,
        ))
    }

    pub(super) fn commitment(&self) -> String {
        self.seed.commitment()
    }

    pub(super) fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    /// Whether `user` entered `sku`'s draw.
    pub(super) fn entered(&self, sku: &str, user: &str) -> bool {
        let e = self.entries.lock().expect("entries lock poisoned");
        e.by_sku.get(sku).is_some_and(|s| s.contains(user))
    }

    /// Entries so far, for `/metrics`.
    pub(super) fn count(&self) -> usize {
        self.entries.lock().expect("entries lock poisoned").count
    }

    /// Whether the draw knows this item (else: 404).
    pub(super) fn sells(&self, sku: &str) -> bool {
        self.skus.iter().any(|s| s == sku)
    }

    /// Enters `user` into `sku`'s draw unless the window is over; resolves
    /// once the entry is on disk. An entrant entering again is an entry
    /// already (and waits for nothing).
    pub(super) async fn enter(&self, sku: &str, user: &str) -> Result<Entered, JournalError> {
        let seq = {
            let mut e = self.entries.lock().expect("entries lock poisoned");
            if e.closed || chrono::Utc::now().timestamp_millis() >= self.until_ms {
                return Ok(Entered::No);
            }
            if e.by_sku.get(sku).is_some_and(|s| s.contains(user)) {
                return Ok(Entered::Yes);
            }
            if e.count >= MAX_ENTRIES {
                return Err(JournalError::Failed);
            }
            // Queued under the lock, so the draw (which closes under it)
            // waits for every entry it counts.
            let seq = self.journal.enqueue(Line::Entry {
                sku: sku.to_string(),
                user: user.to_string(),
                time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                gate: self.gate_id.clone(),
            })?;
            e.by_sku
                .get_mut(sku)
                .expect("sells() was asked first")
                .insert(user.into());
            e.count += 1;
            e.last_seq = seq;
            seq
        };
        self.journal.wait(seq).await?;
        Ok(Entered::Yes)
    }

    /// Waits until the draw is done (true) or stopped, or `until` passes.
    pub(super) async fn done(&self, until: tokio::time::Instant) -> bool {
        let mut rx = self.phase.subscribe();
        let phase = tokio::time::timeout_at(until, rx.wait_for(|p| *p != Phase::Entering))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|p| *p);
        phase == Some(Phase::Done)
    }

    /// The gate is stopping: entrants waiting are answered now.
    pub(super) fn stop(&self) {
        self.phase.send_if_modified(|p| {
            let was = *p;
            *p = Phase::Stopped;
            was != Phase::Stopped
        });
        self.journal.close();
    }

    /// Closes the entries and returns each item's entrants and the units its
    /// draw began with (if it began before a restart), once every entry
    /// counted is on disk.
    async fn close(&self) -> Result<Vec<(String, Vec<Arc<str>>, Option<u32>)>, JournalError> {
        let (seq, items) = {
            let mut e = self.entries.lock().expect("entries lock poisoned");
            e.closed = true;
            let items = self
                .skus
                .iter()
                .map(|sku| {
                    let set = &e.by_sku[sku];
                    (
                        sku.clone(),
                        set.iter().cloned().collect(),
                        e.drawn.get(sku).copied(),
                    )
                })
                .collect();
            (e.last_seq, items)
        };
        self.journal.wait(seq).await?;
        Ok(items)
    }
}

/// Waits for the window's end, then draws every item: the drawn are admitted
/// and journaled, then entrants get their answers. Holds the gate only while
/// drawing, so a gate dropped (or stopped) during the window goes away.
pub(super) async fn run<L: Admission>(gate: std::sync::Weak<Gate<L>>) {
    let gate = loop {
        let Some(gate) = gate.upgrade() else { return };
        let Some(d) = gate.draw.as_ref() else { return };
        let left = d.until_ms - chrono::Utc::now().timestamp_millis();
        if left <= 0 {
            break gate;
        }
        let mut phase = d.phase.subscribe();
        drop(gate);
        // Wall-clock time: look at the clock again at least every second.
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(left.min(1_000) as u64)) => {}
            _ = phase.wait_for(|p| *p == Phase::Stopped) => return,
        }
    };
    let Some(d) = gate.draw.as_ref() else { return };
    match draw_all(&gate, d).await {
        Ok(()) => {
            d.phase.send_if_modified(|p| {
                let go = *p == Phase::Entering;
                if go {
                    *p = Phase::Done;
                }
                go
            });
        }
        Err(e) => {
            tracing::error!(
                error = %e,
                hint = "entrants are answered 503; their entries stand and the gate draws when it starts again",
                "draw_failed"
            );
            d.stop();
        }
    }
}

async fn draw_all<L: Admission>(gate: &Arc<Gate<L>>, d: &StartDraw) -> Result<(), JournalError> {
    let items = d.close().await?;
    let remaining: BTreeMap<String, u32> = gate
        .stock
        .counts()
        .into_iter()
        .map(|c| (c.sku.clone(), c.remaining()))
        .collect();
    for (sku, entrants, recorded) in items {
        let units = match recorded {
            Some(u) => u,
            None => {
                let units = remaining.get(&sku).copied().unwrap_or(0);
                d.journal
                    .append(Line::Drawn {
                        drawn: sku.clone(),
                        units,
                        entrants: entrants.len() as u32,
                        commitment: d.seed.commitment(),
                    })
                    .await?;
                units
            }
        };
        let winners = draw::draw(&d.seed, &sku, entrants.iter().map(|u| &**u), units as usize);
        let mut fresh = 0;
        // Admitted in ticket order, journaled together (one group commit).
        let mut writes = Vec::new();
        for user in &winners {
            let next_order = || gate.next_order();
            match gate.stock.admit(&sku, user, next_order).await {
                Verdict::Won(t) | Verdict::Adopt(t) => {
                    fresh += 1;
                    let (gate, sku, user) = (gate.clone(), sku.clone(), user.to_string());
                    writes.push(tokio::spawn(
                        async move { gate.record(&t, &sku, &user).await },
                    ));
                }
                Verdict::Repeat(_) => {} // drawn before a restart
                Verdict::SoldOut | Verdict::NoSuchItem => break,
                Verdict::Unavailable => return Err(JournalError::Failed),
            }
        }
        for w in writes {
            w.await.unwrap_or(Err(JournalError::Failed))?;
        }
        tracing::info!(
            sku,
            entrants = entrants.len(),
            units,
            drawn = winners.len(),
            admitted_now = fresh,
            "draw"
        );
    }
    let seed = d.seed.to_hex();
    // Revealed once the draw is done, for `flashsale draw verify`.
    d.journal.append(Line::Seed { seed: seed.clone() }).await?;
    tracing::info!(
        seed,
        commitment = d.seed.commitment(),
        hint = "the seed is revealed; `flashsale draw verify --journal DIR` recomputes the draw",
        "draw_done"
    );
    Ok(())
}

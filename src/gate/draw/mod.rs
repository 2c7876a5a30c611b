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
//!
//! A fleet on a shared ledger: entries go to the ledger too (`enter`, refused
//! once the item's entries are closed), and one draw per item covers the
//! fleet: the gate that takes the item's lease closes its entries (fixing the
//! units), draws, takes the drawn through the ledger and marks it done; the
//! others wait for `done`, then answer their entrants (the drawn ones adopt
//! their order here). A drawing gate that dies loses its lease after
//! `ledger::DRAW_LEASE` and another draws the same winners.

mod run;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::watch;

pub(super) use run::run;

use crate::journal::{self, Journal, JournalError, ENTRIES};
use crate::ledger::{Ledger, LedgerError};
use crate::sale::draw::{self as sale_draw, Line, Receipt, Secret, Signer};
use crate::sale::GateKey;
use crate::util::clock::Clock;
use crate::util::sync::lock;

/// Why an entry or a draw failed (the entrant is answered 503).
#[derive(Debug, thiserror::Error)]
pub(super) enum DrawError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("the draw cannot admit (the ledger is not up)")]
    Unavailable,
}

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
    /// Entrants (sku, user) whose request is held until the draw: one each.
    holding: HashSet<(String, Arc<str>)>,
}

/// Each item's entrants, fixed once the draw is done (a fleet: every gate's).
type Entrants = HashMap<String, HashSet<Arc<str>>>;

/// Entries closed: each item's entrants and the units its draw began with.
type Closed = Vec<(String, Vec<Arc<str>>, Option<u32>)>;

/// What happened to an order that arrived while the draw was on.
pub(super) enum Entered {
    /// Not an entry: the window is over (admission as usual, after the draw).
    No,
    /// An entry, on disk: this order's, or one made before (another tab, a
    /// retry). Whether it is held or answered at once is the order's to
    /// decide (`hold`).
    Yes,
}

pub(super) struct StartDraw {
    /// The draw's secret (committed to before the start).
    secret: Secret,
    /// The sale, its round (start, Unix ms) and the key its leaves come from.
    sale: String,
    round_ms: i64,
    key: GateKey,
    /// Signs the entrants' receipts.
    signer: Signer,
    /// The journal directory: `draw.json` is written there after the draw.
    dir: PathBuf,
    /// Entries from `start − tolerance`, until this (Unix ms).
    pub(super) until_ms: i64,
    gate_id: String,
    tolerance_ms: i64,
    skus: Vec<String>,
    journal: Journal<Line>,
    entries: Mutex<Entries>,
    /// Entries on disk (what `/metrics` says: an entry still being written
    /// would not survive a kill -9).
    on_disk: AtomicUsize,
    phase: watch::Sender<Phase>,
    /// Set once every item is drawn: the sold-out flood after the draw asks
    /// who entered without a lock (nor, in a fleet, the ledger).
    done: OnceLock<Entrants>,
    /// The fleet's ledger, when the gates share one: one draw for all.
    fleet: Option<Ledger>,
    /// Told of each entry on disk (and each read back): a fleet's stock
    /// puts them back after a lost ledger.
    on_entry: Option<OnEntry>,
    clock: Clock,
}

/// An entrant's request held until the draw; its place is freed when dropped.
pub(super) struct Held<'a> {
    draw: &'a StartDraw,
    key: (String, Arc<str>),
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        lock(&self.draw.entries).holding.remove(&self.key);
    }
}

/// Told `(sku, user)` of each entry this gate holds.
pub(super) type OnEntry = Box<dyn Fn(&str, &str) + Send + Sync>;

/// What a draw is opened with.
pub(super) struct Setup<'a> {
    /// The journal directory: entries go to `entries.jsonl` in it.
    pub(super) dir: &'a Path,
    pub(super) key: &'a GateKey,
    pub(super) sale: &'a str,
    /// The sale's start, Unix ms: the draw's round.
    pub(super) round_ms: i64,
    /// Entries until this (Unix ms): the end of the fair window.
    pub(super) until_ms: i64,
    pub(super) gate_id: &'a str,
    /// The clock tolerance: in a fleet, a gate asks the ledger about orders
    /// until this long past the window (the ledger's clock decides).
    pub(super) tolerance_ms: i64,
    pub(super) skus: Vec<String>,
    /// The fleet's ledger, when the gates share one.
    pub(super) fleet: Option<Ledger>,
    pub(super) on_entry: Option<OnEntry>,
    pub(super) clock: Clock,
}

impl StartDraw {
    /// Opens `dir/entries.jsonl` and puts its entries back; also how many.
    pub(super) fn open(setup: Setup<'_>) -> Result<(StartDraw, usize), JournalError> {
        let Setup {
            dir,
            key,
            sale,
            round_ms,
            until_ms,
            gate_id,
            tolerance_ms,
            skus,
            fleet,
            on_entry,
            clock,
        } = setup;
        let replayed: Vec<Line> = journal::replay_file(&dir.join(ENTRIES))?;
        let mut entries = Entries {
            closed: false,
            by_sku: skus.iter().map(|s| (s.clone(), HashSet::new())).collect(),
            count: 0,
            last_seq: 0,
            drawn: HashMap::new(),
            holding: HashSet::new(),
        };
        for line in &replayed {
            match line {
                Line::Entry { sku, user, .. } => {
                    if let Some(set) = entries.by_sku.get_mut(sku) {
                        if set.insert(user.as_str().into()) {
                            entries.count += 1;
                            if let Some(tell) = &on_entry {
                                tell(sku, user);
                            }
                        }
                    }
                }
                Line::Drawn { drawn, units, .. } => {
                    entries.drawn.insert(drawn.clone(), *units);
                }
                Line::Revealed { .. } => {}
            }
        }
        let count = entries.count;
        let journal = Journal::open(dir, ENTRIES, Box::new(|_: &[Line]| {}))?;
        Ok((
            StartDraw {
                secret: Secret::derive(key, sale, round_ms),
                sale: sale.to_string(),
                round_ms,
                key: key.clone(),
                signer: Signer::new(key, sale, round_ms),
                dir: dir.to_path_buf(),
                until_ms,
                gate_id: gate_id.to_string(),
                tolerance_ms,
                skus,
                journal,
                entries: Mutex::new(entries),
                on_disk: AtomicUsize::new(count),
                phase: watch::channel(Phase::Entering).0,
                done: OnceLock::new(),
                fleet,
                on_entry,
                clock,
            },
            count,
        ))
    }

    pub(super) fn commitment(&self) -> String {
        self.secret.commitment()
    }

    /// The public key of the receipts' signatures.
    pub(super) fn receipt_key(&self) -> String {
        self.signer.public_hex()
    }

    /// `user`'s leaf in `sku`'s draw.
    pub(super) fn leaf(&self, sku: &str, user: &str) -> String {
        sale_draw::leaf(&self.key, &self.sale, sku, user)
    }

    /// The receipt of `user`'s entry into `sku`'s draw.
    pub(super) fn receipt(&self, sku: &str, user: &str) -> Receipt {
        self.signer.sign(sku, &self.leaf(sku, user))
    }

    pub(super) fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    /// Whether every item is drawn: admission as usual from here on.
    pub(super) fn is_done(&self) -> bool {
        self.done.get().is_some()
    }

    /// Whether `user` entered `sku`'s draw (here, or once drawn, at any gate
    /// of a fleet).
    pub(super) fn entered(&self, sku: &str, user: &str) -> bool {
        let has = |m: &Entrants| m.get(sku).is_some_and(|s| s.contains(user));
        match self.done.get() {
            Some(all) => has(all),
            None => has(&lock(&self.entries).by_sku),
        }
    }

    /// Entries on disk so far, for `/metrics`.
    pub(super) fn count(&self) -> usize {
        self.on_disk.load(Ordering::Relaxed)
    }

    /// Whether the draw knows this item (else: 404).
    pub(super) fn sells(&self, sku: &str) -> bool {
        self.skus.iter().any(|s| s == sku)
    }

    /// Enters `user` into `sku`'s draw unless the window is over; resolves
    /// once the entry (this one, or the first of an entrant asking again)
    /// is on disk.
    pub(super) async fn enter(&self, sku: &str, user: &str) -> Result<Entered, DrawError> {
        let again = {
            let e = lock(&self.entries);
            if self.late(e.closed) {
                return Ok(Entered::No);
            }
            if e.count >= MAX_ENTRIES {
                return Err(DrawError::Unavailable);
            }
            e.by_sku
                .get(sku)
                .is_some_and(|s| s.contains(user))
                .then_some(e.last_seq)
        };
        if let Some(seq) = again {
            // An entrant asking again: told (with a receipt) only once the
            // first entry is on disk.
            self.journal.wait(seq).await?;
            return Ok(Entered::Yes);
        }
        // A fleet: the ledger's entries are the draw's, and its clock says
        // when they close — one clock for every gate, however theirs drift.
        if let Some(ledger) = &self.fleet {
            if !ledger.enter(sku, user, self.until_ms).await? {
                return Ok(Entered::No);
            }
        }
        let queued = {
            let mut e = lock(&self.entries);
            if e.by_sku.get(sku).is_some_and(|s| s.contains(user)) {
                Err(e.last_seq)
            } else if e.closed && self.fleet.is_none() {
                return Ok(Entered::No);
            } else {
                Ok(self.queue(&mut e, sku, user)?)
            }
        };
        let seq = match queued {
            Ok(seq) => seq,
            Err(seq) => {
                self.journal.wait(seq).await?;
                return Ok(Entered::Yes);
            }
        };
        self.journal.wait(seq).await?;
        self.on_disk.fetch_add(1, Ordering::Relaxed);
        if let Some(tell) = &self.on_entry {
            tell(sku, user);
        }
        Ok(Entered::Yes)
    }

    /// Whether an order now is too late to be an entry: past the window by
    /// this gate's clock; in a fleet, by more than the clock tolerance (the
    /// ledger's clock decides, see [`Ledger::enter`]).
    fn late(&self, closed: bool) -> bool {
        let now = self.clock.now_ms();
        match &self.fleet {
            None => closed || now >= self.until_ms,
            Some(_) => now >= self.until_ms + self.tolerance_ms,
        }
    }

    /// Queues `user`'s entry into `sku` (under the entries' lock, so the
    /// draw, which closes under it, waits for every entry it counts).
    fn queue(&self, e: &mut Entries, sku: &str, user: &str) -> Result<u64, DrawError> {
        let seq = self.journal.enqueue(Line::Entry {
            sku: sku.to_string(),
            user: user.to_string(),
            time: self.clock.stamp(),
            gate: self.gate_id.clone(),
            leaf: self.leaf(sku, user),
        })?;
        e.by_sku
            .get_mut(sku)
            .expect("sells() was asked first")
            .insert(user.into());
        e.count += 1;
        e.last_seq = seq;
        Ok(seq)
    }

    /// A place for `user`'s request in `sku`'s draw to be held until the
    /// draw, unless another of theirs holds it: one connection per entrant,
    /// however often they ask.
    pub(super) fn hold(&self, sku: &str, user: &str) -> Option<Held<'_>> {
        let key = (sku.to_string(), Arc::<str>::from(user));
        let free = lock(&self.entries).holding.insert(key.clone());
        // Made only when its place is taken: dropping one frees the place.
        free.then(|| Held { draw: self, key })
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
    async fn close(&self) -> Result<Closed, DrawError> {
        let (seq, items) = {
            let mut e = lock(&self.entries);
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

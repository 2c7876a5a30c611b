//! Admission for a fleet: one stock shared by every gate, on the Redis
//! ledger (`crate::ledger`). One atomic step per attempt decides won, repeat
//! (at any gate: the same order id everywhere) or sold out.
//!
//! The flood stays off Redis: once an item is sold out (from a reply, or from
//! the poll every 50 ms) this gate fetches the item's winners and answers
//! everyone else locally, fetching them again on a miss at most once every
//! [`WINNERS_FRESH`] (a winner put back after the fetch is found); while the
//! ledger is away a miss is answered 503, never "sold out". A winner
//! is answered only once this gate's journal has it too; a winner of another
//! gate asking here is journaled here first.
//!
//! Fail closed: when the ledger does not answer, or lost its epoch (a Redis
//! restarted empty), nobody is admitted (503). Before admitting again the gate
//! re-asserts its journal into the ledger (idempotent) and waits for the rest
//! of the fleet to have done the same (`upkeep`).

mod upkeep;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, Semaphore};

use super::{Admission, ItemCount, LedgerCalls, Orders, Ticket, Verdict};
use crate::ledger::{Alarm, Ledger, Take};
use crate::sale::Winner;
use crate::util::shutdown::Shutdown;
use crate::util::sync::{lock, read, write};

/// How often the gate asks the ledger how things stand (and beats its heart).
pub(crate) const POLL: Duration = Duration::from_millis(50);

/// A sold-out item's winners, fetched, answer misses this long before a miss
/// fetches them again: at most one ledger call a second per item, whatever
/// the flood of latecomers.
const WINNERS_FRESH: Duration = Duration::from_secs(1);

/// Attempts sent to the ledger in one call at most, and calls in flight at
/// once: attempts that arrive while the calls are out go together in the next
/// (a group commit, as the journal does).
const BATCH: usize = 64;
const IN_FLIGHT: usize = 4;

/// One attempt waiting for the ledger.
struct Attempt {
    sku: String,
    user: String,
    /// The order id this gate chose for it (won or not).
    order: String,
    answer: oneshot::Sender<Option<Take>>,
}

/// Where the gate stands with the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum LedgerState {
    /// Not yet read (or not yet re-asserted): nobody is admitted.
    Starting = 0,
    Up = 1,
    /// Does not answer: nobody is admitted.
    Down = 2,
    /// Has no epoch: never loaded, or lost (a Redis restarted empty).
    NotLoaded = 3,
}

impl LedgerState {
    fn from(v: u8) -> LedgerState {
        match v {
            1 => LedgerState::Up,
            2 => LedgerState::Down,
            3 => LedgerState::NotLoaded,
            _ => LedgerState::Starting,
        }
    }
}

/// One item as this gate knows it.
struct Item {
    /// Units taken fleet-wide, as last seen.
    taken: AtomicU32,
    total: AtomicU32,
    /// Set once the item is known to be sold out.
    sold_out: AtomicBool,
    /// Every winner of the item (user → order), fetched after it sold out.
    winners: SoldOutWinners,
    /// Winners this gate journaled or is journaling, by user.
    mine: Mutex<HashMap<String, Ticket>>,
}

/// A sold-out item's winners as last fetched, and when.
#[derive(Default)]
struct SoldOutWinners {
    map: RwLock<Arc<HashMap<String, String>>>,
    fetched: Mutex<Option<Instant>>,
    /// One fetch at a time; the others answer from the map meanwhile.
    fetching: tokio::sync::Mutex<()>,
}

pub(crate) struct SharedStock {
    ledger: Ledger,
    sale: String,
    gate: String,
    skus: Vec<String>,
    items: HashMap<String, Item>,
    epoch: RwLock<Option<String>>,
    state: AtomicU8,
    /// This gate's journal, for re-asserting.
    journal: Mutex<Vec<Winner>>,
    /// The journal must be re-asserted before admitting again.
    reassert: AtomicBool,
    /// The ledger's primary changes when the journal was last re-asserted
    /// (see [`Ledger::primary_changes`]).
    asserted: AtomicU64,
    /// Attempts on their way to the ledger (see [`Self::take`]).
    attempts: mpsc::UnboundedSender<Attempt>,
    queued: Mutex<Option<mpsc::UnboundedReceiver<Attempt>>>,
    /// Ledger calls made to answer requests (takes, winners of a sold-out item).
    admission_calls: AtomicU64,
    /// Ledger calls made to keep up (polls, re-asserts), whatever the traffic.
    upkeep_calls: AtomicU64,
    /// The gate ids of `[gate] fleet`; empty: not listed.
    fleet: Vec<String>,
    /// The gates of the fleet this gate last said it waits for.
    waiting_for: Mutex<Vec<String>>,
    /// This gate's fair-start entrants (sku, user), for re-asserting.
    entrants: Mutex<Vec<(String, String)>>,
    /// Distinct oversell alarms its re-asserts raised.
    alarms: Mutex<BTreeSet<Alarm>>,
}

impl SharedStock {
    /// A fleet stock for these items (sku → units in `site.toml`), whose
    /// journal so far is `journaled`. Nobody is admitted until [`Self::run`]
    /// has read the ledger and re-asserted the journal.
    pub(crate) fn new(
        ledger: Ledger,
        sale: &str,
        gate: &str,
        stock: &[(String, u32)],
        journaled: Vec<Winner>,
        fleet: Vec<String>,
    ) -> SharedStock {
        let (attempts, queued) = mpsc::unbounded_channel();
        SharedStock {
            ledger,
            sale: sale.to_string(),
            gate: gate.to_string(),
            skus: stock.iter().map(|(s, _)| s.clone()).collect(),
            items: stock
                .iter()
                .map(|(sku, n)| {
                    let item = Item {
                        taken: AtomicU32::new(0),
                        total: AtomicU32::new(*n),
                        sold_out: AtomicBool::new(false),
                        winners: SoldOutWinners::default(),
                        mine: Mutex::new(
                            journaled
                                .iter()
                                .filter(|w| &w.sku == sku)
                                .map(|w| (w.user.clone(), Ticket::durable(&w.order)))
                                .collect(),
                        ),
                    };
                    (sku.clone(), item)
                })
                .collect(),
            epoch: RwLock::new(None),
            state: AtomicU8::new(LedgerState::Starting as u8),
            journal: Mutex::new(journaled),
            reassert: AtomicBool::new(true),
            asserted: AtomicU64::new(0),
            attempts,
            queued: Mutex::new(Some(queued)),
            admission_calls: AtomicU64::new(0),
            upkeep_calls: AtomicU64::new(0),
            fleet,
            waiting_for: Mutex::new(Vec::new()),
            entrants: Mutex::new(Vec::new()),
            alarms: Mutex::new(BTreeSet::new()),
        }
    }

    /// `user` entered `sku`'s fair-start draw at this gate: put back with
    /// its winners after a lost ledger.
    pub(crate) fn entered(&self, sku: &str, user: &str) {
        lock(&self.entrants).push((sku.to_string(), user.to_string()));
    }

    fn mark_sold_out(&self, sku: &str) {
        if let Some(item) = self.items.get(sku) {
            item.sold_out.store(true, Ordering::Relaxed);
        }
    }

    /// Sends queued attempts to the ledger, many per call, a few calls at once.
    async fn send_attempts(
        self: Arc<Self>,
        mut queued: mpsc::UnboundedReceiver<Attempt>,
        shutdown: Shutdown,
    ) {
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let Some(first) = queued.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match queued.try_recv() {
                    Ok(a) => batch.push(a),
                    Err(_) => break,
                }
            }
            let me = self.clone();
            shutdown.spawn(async move {
                let epoch = read(&me.epoch).clone().unwrap_or_default();
                let attempts: Vec<(String, String, String)> = batch
                    .iter()
                    .map(|a| (a.sku.clone(), a.user.clone(), a.order.clone()))
                    .collect();
                me.admission_calls.fetch_add(1, Ordering::Relaxed);
                let asserted = me.asserted.load(Ordering::Acquire);
                match me.ledger.take(&epoch, &me.gate, &attempts, asserted).await {
                    Ok(answers) => {
                        for (a, t) in batch.into_iter().zip(answers) {
                            let _ = a.answer.send(Some(t));
                        }
                    }
                    Err(e) => {
                        me.failed(&e);
                        for a in batch {
                            let _ = a.answer.send(None);
                        }
                    }
                }
                drop(slot);
            });
        }
    }

    /// One attempt, decided by the ledger; `None` when it did not answer.
    async fn take(&self, sku: &str, user: &str, order: &str) -> Option<Take> {
        let (answer, answered) = oneshot::channel();
        let attempt = Attempt {
            sku: sku.to_string(),
            user: user.to_string(),
            order: order.to_string(),
            answer,
        };
        self.attempts.send(attempt).ok()?;
        answered.await.ok().flatten()
    }

    /// This gate's answer for `user` at a sold-out item, from its winners.
    async fn after_sold_out(&self, sku: &str, user: &str, item: &Item) -> Verdict {
        let w = &item.winners;
        if let Some(order) = read(&w.map).get(user).cloned() {
            return self.known(sku, user, &order);
        }
        if self.state() != LedgerState::Up {
            // A miss while the ledger is away or lost: maybe a winner whose
            // gate has not put it back yet. Nothing final is said.
            return Verdict::Unavailable;
        }
        let fetched = *lock(&w.fetched);
        let _fetching = match fetched {
            Some(at) if at.elapsed() < WINNERS_FRESH => return Verdict::SoldOut,
            // Never fetched: wait for the first fetch, a winner may be asking.
            None => w.fetching.lock().await,
            // A miss on an old map: one fetch; the others answer from the map.
            Some(_) => match w.fetching.try_lock() {
                Ok(g) => g,
                Err(_) => return Verdict::SoldOut,
            },
        };
        if *lock(&w.fetched) == fetched {
            self.admission_calls.fetch_add(1, Ordering::Relaxed);
            match self.ledger.winners(sku).await {
                Ok(map) => {
                    // Winners are never taken away: what was known stays.
                    let mut all = HashMap::clone(&read(&w.map));
                    all.extend(map);
                    *write(&w.map) = Arc::new(all);
                    *lock(&w.fetched) = Some(Instant::now());
                }
                Err(e) => {
                    self.failed(&e);
                    return Verdict::Unavailable;
                }
            }
        }
        match read(&w.map).get(user).cloned() {
            Some(order) => self.known(sku, user, &order),
            None => Verdict::SoldOut,
        }
    }

    /// A winner the ledger knows: this gate's ticket if it has one, else a
    /// new one to journal here before answering.
    fn known(&self, sku: &str, user: &str, order: &str) -> Verdict {
        let Some(item) = self.items.get(sku) else {
            return Verdict::NoSuchItem;
        };
        let mut mine = lock(&item.mine);
        match mine.get(user) {
            Some(t) => Verdict::Repeat(t.clone()),
            None => {
                let t = Ticket::pending(order);
                mine.insert(user.to_string(), t.clone());
                Verdict::Adopt(t)
            }
        }
    }
}

impl Admission for SharedStock {
    async fn admit(&self, sku: &str, user: &str, orders: &dyn Orders) -> Verdict {
        let Some(item) = self.items.get(sku) else {
            return Verdict::NoSuchItem;
        };
        if item.sold_out.load(Ordering::Relaxed) {
            return self.after_sold_out(sku, user, item).await;
        }
        if let Some(t) = lock(&item.mine).get(user) {
            return Verdict::Repeat(t.clone());
        }
        if self.state() != LedgerState::Up {
            return Verdict::Unavailable;
        }
        // The attempt goes to the journal and to the ledger at once: the
        // two fsyncs (Redis's AOF, the journal's) overlap. A winner is
        // answered once both are done; anyone else waits for the ledger only.
        let epoch = read(&self.epoch).clone().unwrap_or_default();
        let Some(attempt) = orders.attempt(sku, user, &epoch) else {
            return Verdict::Unavailable;
        };
        // The ledger records the order id it was sent (`take.lua`).
        let taken = self.take(sku, user, &attempt.order).await;
        if !matches!(taken, Some(Take::Won { .. })) {
            orders.void(&attempt.order);
        }
        match taken {
            Some(Take::Won { left, .. }) => {
                if left == 0 {
                    self.mark_sold_out(sku);
                }
                item.taken.fetch_add(1, Ordering::Relaxed);
                lock(&item.mine).insert(user.to_string(), attempt.clone());
                Verdict::Won(attempt)
            }
            Some(Take::Repeat { order }) => self.known(sku, user, &order),
            Some(Take::SoldOut) => {
                self.mark_sold_out(sku);
                self.after_sold_out(sku, user, item).await
            }
            // Taken, but not yet on the replicas required: not acknowledged.
            Some(Take::Unreplicated { .. } | Take::Held) => Verdict::Unavailable,
            Some(Take::Unknown) => {
                tracing::error!(
                    sku,
                    "ledger_has_no_such_item: load the ledger from this site.toml"
                );
                Verdict::Unavailable
            }
            Some(Take::Reset { .. }) => {
                // The poll re-reads the epoch and re-asserts before resuming.
                self.reassert.store(true, Ordering::Relaxed);
                self.set_state(LedgerState::Starting, "");
                Verdict::Unavailable
            }
            // The ledger failed; the batch already said so.
            None => Verdict::Unavailable,
        }
    }

    fn counts(&self) -> Vec<ItemCount> {
        let mut v: Vec<ItemCount> = self
            .items
            .iter()
            .map(|(sku, i)| ItemCount {
                sku: sku.clone(),
                admitted: i.taken.load(Ordering::Relaxed),
                quota: i.total.load(Ordering::Relaxed),
            })
            .collect();
        v.sort();
        v
    }

    fn ready(&self) -> bool {
        self.state() == LedgerState::Up
    }

    fn winner(&self, sku: &str, user: &str) -> Option<Ticket> {
        lock(&self.items.get(sku)?.mine).get(user).cloned()
    }

    fn ledger(&self) -> Option<LedgerCalls> {
        Some(LedgerCalls {
            up: self.ready(),
            admission: self.admission_calls.load(Ordering::Relaxed),
            upkeep: self.upkeep_calls.load(Ordering::Relaxed),
            oversell_alarms: lock(&self.alarms).len() as u64,
        })
    }

    fn recorded(&self, winner: &Winner) {
        lock(&self.journal).push(winner.clone());
    }
}

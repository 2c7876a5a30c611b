//! Who gets a unit. The gate asks its [`Stock`] once per order attempt that
//! passed every check; the stock decides won, repeat or sold out, never more
//! than the quota and one unit per user and item. It never writes anything:
//! recording a winner is `gate::record`'s, and the stock hears of it
//! ([`Admission::recorded`]) once it is on disk.
//!
//! Two implementations of one trait, [`Admission`]: [`LocalStock`] (`local`)
//! keeps each item's count and winners in this process (the per-gate quota
//! of a single gate or a sticky-routed fleet); [`SharedStock`] (`shared`) is
//! one stock for a fleet, on the Redis ledger. [`Stock`] chooses at run time.

mod local;
mod shared;

use std::future::Future;
use std::sync::Arc;

pub(crate) use local::LocalStock;
pub(crate) use shared::SharedStock;

use crate::sale::Winner;
use crate::util::shutdown::Shutdown;

/// What a user got, kept so that a repeat gets the same answer.
#[derive(Debug, Clone)]
pub(crate) struct Ticket {
    pub(crate) order: Arc<str>,
    /// A fleet's winner: its attempt is what the journal settles the ticket
    /// on; the winner line follows, not waited for.
    pub(crate) attempted: bool,
    /// `Some(true)` once the journal has it on disk (`Some(false)`: it never will).
    durable: Arc<tokio::sync::watch::Sender<Option<bool>>>,
}

impl Ticket {
    /// A winner already on disk (replayed from the journal).
    pub(crate) fn durable(order: &str) -> Ticket {
        Ticket::new(order, Some(true))
    }

    /// A winner the journal is about to write.
    pub(crate) fn pending(order: &str) -> Ticket {
        Ticket::new(order, None)
    }

    /// A fleet's attempt the journal is about to write (see [`Self::attempted`]).
    pub(crate) fn attempt(order: &str) -> Ticket {
        Ticket {
            attempted: true,
            ..Ticket::new(order, None)
        }
    }

    fn new(order: &str, durable: Option<bool>) -> Ticket {
        Ticket {
            order: order.into(),
            attempted: false,
            durable: Arc::new(tokio::sync::watch::channel(durable).0),
        }
    }

    /// Records whether the journal wrote it.
    pub(crate) fn set_durable(&self, written: bool) {
        self.durable.send_replace(Some(written));
    }

    /// Waits until the journal has written it (or failed to).
    pub(crate) async fn is_durable(&self) -> bool {
        let mut rx = self.durable.subscribe();
        matches!(
            rx.wait_for(Option::is_some).await.map(|v| *v),
            Ok(Some(true))
        )
    }
}

/// The answer to one attempt.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// A new winner: journal it before answering.
    Won(Ticket),
    /// This user already won this item: the first answer again.
    Repeat(Ticket),
    /// This user won this item at another gate: journal it here too, then
    /// answer with the same order.
    Adopt(Ticket),
    SoldOut,
    /// The sale has no such item.
    NoSuchItem,
    /// Nobody can be admitted now (the shared ledger is down or lost).
    Unavailable,
}

/// One item's numbers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ItemCount {
    pub(crate) sku: String,
    pub(crate) admitted: u32,
    pub(crate) quota: u32,
}

impl ItemCount {
    pub(crate) fn remaining(&self) -> u32 {
        self.quota.saturating_sub(self.admitted)
    }
}

/// Where new orders come from: the gate's recorder (`gate::record`).
pub(crate) trait Orders: Sync {
    /// A new order id, for a winner (a gate alone numbers its winners).
    fn next_order(&self) -> String;
    /// A fleet's attempt by `user` at `sku`: a new order id, journaled
    /// while the ledger (at `epoch`) decides; its ticket settles once it is
    /// on disk. `None`: the journal failed.
    fn attempt(&self, sku: &str, user: &str, epoch: &str) -> Option<Ticket>;
    /// The attempt with this order id was not won.
    fn void(&self, order: &str);
}

/// Orders numbered `o1`, `o2`, … for a stock's unit tests; no attempts.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct Numbered(std::sync::atomic::AtomicU64);

#[cfg(test)]
impl Orders for Numbered {
    fn next_order(&self) -> String {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        format!("o{n}")
    }
    fn attempt(&self, _: &str, _: &str, _: &str) -> Option<Ticket> {
        unreachable!("a local stock journals no attempts")
    }
    fn void(&self, _: &str) {}
}

/// Decides who gets a unit.
pub(crate) trait Admission: Send + Sync + 'static {
    /// Decides one attempt by `user` at `sku`, new orders from `orders`.
    fn admit(
        &self,
        sku: &str,
        user: &str,
        orders: &dyn Orders,
    ) -> impl Future<Output = Verdict> + Send;

    /// Every item's numbers, sorted by SKU.
    fn counts(&self) -> Vec<ItemCount>;

    /// This user's ticket for this item if this gate knows them as its winner
    /// (asks nobody else).
    fn winner(&self, sku: &str, user: &str) -> Option<Ticket>;

    /// Whether anyone can be admitted now (`/healthz`).
    fn ready(&self) -> bool {
        true
    }

    /// A winner is on disk in this gate's journal.
    fn recorded(&self, _winner: &Winner) {}

    /// With a shared ledger: how the gate stands with it.
    fn ledger(&self) -> Option<LedgerCalls> {
        None
    }
}

/// A gate's dealings with a shared ledger, for `/metrics`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LedgerCalls {
    /// Whether it answers and admits.
    pub(crate) up: bool,
    /// Calls made to answer requests (takes, winners of a sold-out item).
    pub(crate) admission: u64,
    /// Calls made to keep up (polls, re-asserts), whatever the traffic.
    pub(crate) upkeep: u64,
    /// Distinct oversell alarms raised by putting the journal back.
    pub(crate) oversell_alarms: u64,
}

/// The admission a gate runs with, chosen by its configuration.
pub(crate) enum Stock {
    /// Each gate its own quota.
    Local(LocalStock),
    /// One stock for the fleet, on the Redis ledger.
    Shared(Arc<SharedStock>),
}

impl Stock {
    /// Starts what the stock does in the background (a shared stock polls
    /// the ledger and sends attempts to it) until `shutdown`.
    pub(crate) fn run(&self, shutdown: &Shutdown) {
        if let Stock::Shared(s) = self {
            s.clone().run(shutdown);
        }
    }
}

impl Admission for Stock {
    async fn admit(&self, sku: &str, user: &str, orders: &dyn Orders) -> Verdict {
        match self {
            Stock::Local(s) => s.admit(sku, user, orders).await,
            Stock::Shared(s) => s.admit(sku, user, orders).await,
        }
    }

    fn counts(&self) -> Vec<ItemCount> {
        match self {
            Stock::Local(s) => s.counts(),
            Stock::Shared(s) => s.counts(),
        }
    }

    fn ready(&self) -> bool {
        match self {
            Stock::Local(s) => s.ready(),
            Stock::Shared(s) => s.ready(),
        }
    }

    fn winner(&self, sku: &str, user: &str) -> Option<Ticket> {
        match self {
            Stock::Local(s) => s.winner(sku, user),
            Stock::Shared(s) => s.winner(sku, user),
        }
    }

    fn recorded(&self, winner: &Winner) {
        match self {
            Stock::Local(s) => s.recorded(winner),
            Stock::Shared(s) => s.recorded(winner),
        }
    }

    fn ledger(&self) -> Option<LedgerCalls> {
        match self {
            Stock::Local(s) => s.ledger(),
            Stock::Shared(s) => s.ledger(),
        }
    }
}

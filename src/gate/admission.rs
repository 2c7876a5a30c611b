//! Admission: who gets a unit. The gate asks its [`Admission`] once per
//! order attempt that passed every check; it decides won, repeat or sold out,
//! never more than the quota and one unit per user and item.
//!
//! [`LocalStock`] keeps each item's count and winners in this process (the
//! per-gate quota of a single gate or a sticky-routed fleet). Once an item is
//! sold out its winners are frozen into an immutable map, so the flood of
//! late requests never takes a lock. `shared::SharedStock` is the other
//! implementation: one stock for a fleet, on the Redis ledger. [`Stock`]
//! chooses at run time.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// What a user got, kept so that a repeat gets the same answer.
#[derive(Debug, Clone)]
pub(crate) struct Ticket {
    pub(crate) order: Arc<str>,
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

    fn new(order: &str, durable: Option<bool>) -> Ticket {
        Ticket {
            order: order.into(),
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

/// Decides who gets a unit.
pub(crate) trait Admission: Send + Sync + 'static {
    /// Decides one attempt by `user` at `sku`; `next_order` names a new winner's order.
    fn admit(
        &self,
        sku: &str,
        user: &str,
        next_order: impl FnOnce() -> String + Send,
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
    fn recorded(&self, _winner: &super::journal::Winner) {}

    /// With a shared ledger: whether it is up, and the calls made to it for
    /// admissions and for upkeep.
    fn ledger(&self) -> Option<(bool, u64, u64)> {
        None
    }
}

/// The admission a gate runs with, chosen by its configuration.
pub(crate) enum Stock {
    /// Each gate its own quota.
    Local(LocalStock),
    /// One stock for the fleet, on the Redis ledger.
    Shared(Arc<super::shared::SharedStock>),
}

impl Admission for Stock {
    async fn admit(
        &self,
        sku: &str,
        user: &str,
        next_order: impl FnOnce() -> String + Send,
    ) -> Verdict {
        match self {
            Stock::Local(s) => s.admit(sku, user, next_order).await,
            Stock::Shared(s) => s.admit(sku, user, next_order).await,
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

    fn recorded(&self, winner: &super::journal::Winner) {
        match self {
            Stock::Local(s) => s.recorded(winner),
            Stock::Shared(s) => s.recorded(winner),
        }
    }

    fn ledger(&self) -> Option<(bool, u64, u64)> {
        match self {
            Stock::Local(s) => s.ledger(),
            Stock::Shared(s) => s.ledger(),
        }
    }
}

/// One item's stock at this gate.
struct Slot {
    quota: u32,
    admitted: AtomicU32,
    winners: Mutex<HashMap<Arc<str>, Ticket>>,
    /// Filled once the quota is reached: the final winners, read without locks.
    sold_out: OnceLock<HashMap<Arc<str>, Ticket>>,
}

impl Slot {
    fn new(quota: u32) -> Slot {
        Slot {
            quota,
            admitted: AtomicU32::new(0),
            winners: Mutex::new(HashMap::new()),
            sold_out: OnceLock::new(),
        }
    }

    fn admit(&self, user: &str, next_order: impl FnOnce() -> String) -> Verdict {
        if let Some(frozen) = self.sold_out.get() {
            return match frozen.get(user) {
                Some(t) => Verdict::Repeat(t.clone()),
                None => Verdict::SoldOut,
            };
        }
        let mut winners = self.winners.lock().expect("slot lock poisoned");
        if let Some(t) = winners.get(user) {
            return Verdict::Repeat(t.clone());
        }
        if self.admitted.load(Ordering::Relaxed) >= self.quota {
            return Verdict::SoldOut;
        }
        let ticket = Ticket::pending(&next_order());
        self.add(&mut winners, user, ticket.clone());
        Verdict::Won(ticket)
    }

    /// Adds a winner under the lock if there is a unit left; freezes the
    /// winners when that was the last one.
    fn add(&self, winners: &mut HashMap<Arc<str>, Ticket>, user: &str, ticket: Ticket) -> bool {
        let admitted = self.admitted.load(Ordering::Relaxed);
        if admitted >= self.quota {
            return false;
        }
        winners.insert(user.into(), ticket);
        self.admitted.store(admitted + 1, Ordering::Relaxed);
        if admitted + 1 >= self.quota {
            let _ = self.sold_out.set(winners.clone());
        }
        true
    }
}

/// Per-item counts and winners held by this gate alone.
pub(crate) struct LocalStock {
    slots: HashMap<String, Slot>,
}

impl LocalStock {
    /// A ledger for these items and quotas, nobody admitted yet.
    pub(crate) fn new(quotas: impl IntoIterator<Item = (String, u32)>) -> LocalStock {
        LocalStock {
            slots: quotas
                .into_iter()
                .map(|(sku, q)| (sku, Slot::new(q)))
                .collect(),
        }
    }

    /// Puts back a winner from the journal (already on disk), whatever the
    /// quota now: an acknowledged winner keeps their unit. `false` if the
    /// item is unknown. Call [`Self::settle`] when the whole journal is back.
    pub(crate) fn restore(&self, sku: &str, user: &str, order: &str) -> bool {
        let Some(slot) = self.slots.get(sku) else {
            return false;
        };
        let mut winners = slot.winners.lock().expect("slot lock poisoned");
        if winners
            .insert(user.into(), Ticket::durable(order))
            .is_none()
        {
            slot.admitted.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// After a replay: freezes the items whose quota is reached, and names
    /// those with more winners than their quota (a quota lowered since).
    pub(crate) fn settle(&self) -> Vec<ItemCount> {
        let mut over = Vec::new();
        for (sku, slot) in &self.slots {
            let winners = slot.winners.lock().expect("slot lock poisoned");
            let admitted = slot.admitted.load(Ordering::Relaxed);
            if admitted >= slot.quota {
                let _ = slot.sold_out.set(winners.clone());
            }
            if admitted > slot.quota {
                over.push(ItemCount {
                    sku: sku.clone(),
                    admitted,
                    quota: slot.quota,
                });
            }
        }
        over
    }
}

impl Admission for LocalStock {
    fn winner(&self, sku: &str, user: &str) -> Option<Ticket> {
        let slot = self.slots.get(sku)?;
        if let Some(frozen) = slot.sold_out.get() {
            return frozen.get(user).cloned();
        }
        slot.winners
            .lock()
            .expect("slot lock poisoned")
            .get(user)
            .cloned()
    }

    async fn admit(
        &self,
        sku: &str,
        user: &str,
        next_order: impl FnOnce() -> String + Send,
    ) -> Verdict {
        match self.slots.get(sku) {
            Some(slot) => slot.admit(user, next_order),
            None => Verdict::NoSuchItem,
        }
    }

    fn counts(&self) -> Vec<ItemCount> {
        let mut v: Vec<ItemCount> = self
            .slots
            .iter()
            .map(|(sku, s)| ItemCount {
                sku: sku.clone(),
                admitted: s.admitted.load(Ordering::Relaxed),
                quota: s.quota,
            })
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lowered_quota_keeps_every_replayed_winner() {
        // Three winners on disk; the gate comes back with a quota of 2.
        let stock = LocalStock::new([("A".to_string(), 2)]);
        for (u, o) in [("a", "g-1"), ("b", "g-2"), ("c", "g-3")] {
            assert!(stock.restore("A", u, o));
        }
        let over = stock.settle();
        assert_eq!((over[0].admitted, over[0].quota), (3, 2));
        for (u, o) in [("a", "g-1"), ("b", "g-2"), ("c", "g-3")] {
            let again = stock.admit("A", u, || unreachable!()).await;
            assert!(matches!(again, Verdict::Repeat(t) if &*t.order == o), "{u}");
        }
        assert!(matches!(
            stock.admit("A", "d", || unreachable!()).await,
            Verdict::SoldOut
        ));
    }

    #[tokio::test]
    async fn never_more_than_the_quota_and_one_unit_per_user() {
        let ledger = LocalStock::new([("A".to_string(), 3)]);
        let mut n = 0;
        let mut won = 0;
        for u in 0..10 {
            let next = || {
                n += 1;
                format!("o{n}")
            };
            match ledger.admit("A", &format!("u{u}"), next).await {
                Verdict::Won(_) => won += 1,
                Verdict::SoldOut => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(won, 3);
        let repeat = ledger.admit("A", "u0", || unreachable!()).await;
        assert!(matches!(repeat, Verdict::Repeat(t) if &*t.order == "o1"));
        let late = ledger.admit("A", "u9", || unreachable!()).await;
        assert!(matches!(late, Verdict::SoldOut));
        let unknown = ledger.admit("B", "u1", || unreachable!()).await;
        assert!(matches!(unknown, Verdict::NoSuchItem));
        assert_eq!(ledger.counts()[0].remaining(), 0);
    }

    #[tokio::test]
    async fn restored_winners_count_and_repeat() {
        let ledger = LocalStock::new([("A".to_string(), 2)]);
        assert!(ledger.restore("A", "alice", "g-000001"));
        assert!(!ledger.restore("Z", "bob", "g-000002"), "unknown item");
        assert!(ledger.settle().is_empty());
        let again = ledger.admit("A", "alice", || unreachable!()).await;
        let Verdict::Repeat(t) = again else {
            panic!("{again:?}")
        };
        assert!(t.is_durable().await, "restored winners are on disk");
        assert_eq!(ledger.counts()[0].admitted, 1);
    }
}

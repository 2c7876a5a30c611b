//! Admission: who gets a unit. The gate asks a [`Ledger`] once per order
//! attempt that passed every check; the ledger decides won, repeat or sold
//! out, never more than the quota and one unit per user and item.
//!
//! [`LocalLedger`] keeps each item's count and winners in this process (the
//! per-gate quota of a single gate or a sticky-routed fleet). Once an item is
//! sold out its winners are frozen into an immutable map, so the flood of
//! late requests never takes a lock. A ledger shared by a fleet implements
//! the same trait.

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
pub(crate) enum Admission {
    /// A new winner: journal it before answering.
    Won(Ticket),
    /// This user already won this item: the first answer again.
    Repeat(Ticket),
    SoldOut,
    /// The sale has no such item.
    NoSuchItem,
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
pub(crate) trait Ledger: Send + Sync + 'static {
    /// Decides one attempt by `user` at `sku`; `next_order` names a new winner's order.
    fn admit(
        &self,
        sku: &str,
        user: &str,
        next_order: impl FnOnce() -> String + Send,
    ) -> impl Future<Output = Admission> + Send;

    /// Every item's numbers, sorted by SKU.
    fn counts(&self) -> Vec<ItemCount>;
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

    fn admit(&self, user: &str, next_order: impl FnOnce() -> String) -> Admission {
        if let Some(frozen) = self.sold_out.get() {
            return match frozen.get(user) {
                Some(t) => Admission::Repeat(t.clone()),
                None => Admission::SoldOut,
            };
        }
        let mut winners = self.winners.lock().expect("slot lock poisoned");
        if let Some(t) = winners.get(user) {
            return Admission::Repeat(t.clone());
        }
        if self.admitted.load(Ordering::Relaxed) >= self.quota {
            return Admission::SoldOut;
        }
        let ticket = Ticket::new(&next_order(), None);
        self.add(&mut winners, user, ticket.clone());
        Admission::Won(ticket)
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
pub(crate) struct LocalLedger {
    slots: HashMap<String, Slot>,
}

impl LocalLedger {
    /// A ledger for these items and quotas, nobody admitted yet.
    pub(crate) fn new(quotas: impl IntoIterator<Item = (String, u32)>) -> LocalLedger {
        LocalLedger {
            slots: quotas
                .into_iter()
                .map(|(sku, q)| (sku, Slot::new(q)))
                .collect(),
        }
    }

    /// Puts back a winner from the journal (already on disk). `false` if the
    /// item is unknown or already had its quota.
    pub(crate) fn restore(&self, sku: &str, user: &str, order: &str) -> bool {
        let Some(slot) = self.slots.get(sku) else {
            return false;
        };
        let mut winners = slot.winners.lock().expect("slot lock poisoned");
        slot.add(&mut winners, user, Ticket::new(order, Some(true)))
    }
}

impl Ledger for LocalLedger {
    async fn admit(
        &self,
        sku: &str,
        user: &str,
        next_order: impl FnOnce() -> String + Send,
    ) -> Admission {
        match self.slots.get(sku) {
            Some(slot) => slot.admit(user, next_order),
            None => Admission::NoSuchItem,
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
    async fn never_more_than_the_quota_and_one_unit_per_user() {
        let ledger = LocalLedger::new([("A".to_string(), 3)]);
        let mut n = 0;
        let mut won = 0;
        for u in 0..10 {
            let next = || {
                n += 1;
                format!("o{n}")
            };
            match ledger.admit("A", &format!("u{u}"), next).await {
                Admission::Won(_) => won += 1,
                Admission::SoldOut => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(won, 3);
        let repeat = ledger.admit("A", "u0", || unreachable!()).await;
        assert!(matches!(repeat, Admission::Repeat(t) if &*t.order == "o1"));
        let late = ledger.admit("A", "u9", || unreachable!()).await;
        assert!(matches!(late, Admission::SoldOut));
        let unknown = ledger.admit("B", "u1", || unreachable!()).await;
        assert!(matches!(unknown, Admission::NoSuchItem));
        assert_eq!(ledger.counts()[0].remaining(), 0);
    }

    #[tokio::test]
    async fn restored_winners_count_and_repeat() {
        let ledger = LocalLedger::new([("A".to_string(), 2)]);
        assert!(ledger.restore("A", "alice", "g-000001"));
        assert!(!ledger.restore("Z", "bob", "g-000002"), "unknown item");
        let again = ledger.admit("A", "alice", || unreachable!()).await;
        let Admission::Repeat(t) = again else {
            panic!("{again:?}")
        };
        assert!(t.is_durable().await, "restored winners are on disk");
        assert_eq!(ledger.counts()[0].admitted, 1);
    }
}

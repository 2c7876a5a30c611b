//! One gate's own stock: each item's count and winners in this process.
//! Once an item is sold out its winners are frozen into an immutable map, so
//! the flood of late requests never takes a lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::{Admission, ItemCount, Orders, Ticket, Verdict};
use crate::util::sync::lock;

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

    fn admit(&self, user: &str, orders: &dyn Orders) -> Verdict {
        if let Some(frozen) = self.sold_out.get() {
            return match frozen.get(user) {
                Some(t) => Verdict::Repeat(t.clone()),
                None => Verdict::SoldOut,
            };
        }
        let mut winners = lock(&self.winners);
        if let Some(t) = winners.get(user) {
            return Verdict::Repeat(t.clone());
        }
        if self.admitted.load(Ordering::Relaxed) >= self.quota {
            return Verdict::SoldOut;
        }
        let ticket = Ticket::pending(&orders.next_order());
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
    /// A stock of these items and quotas, nobody admitted yet.
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
        let mut winners = lock(&slot.winners);
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
            let winners = lock(&slot.winners);
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
        lock(&slot.winners).get(user).cloned()
    }

    async fn admit(&self, sku: &str, user: &str, orders: &dyn Orders) -> Verdict {
        match self.slots.get(sku) {
            Some(slot) => slot.admit(user, orders),
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
    use crate::gate::stock::Numbered;

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
            let again = stock.admit("A", u, &Numbered::default()).await;
            assert!(matches!(again, Verdict::Repeat(t) if &*t.order == o), "{u}");
        }
        assert!(matches!(
            stock.admit("A", "d", &Numbered::default()).await,
            Verdict::SoldOut
        ));
    }

    #[tokio::test]
    async fn never_more_than_the_quota_and_one_unit_per_user() {
        let stock = LocalStock::new([("A".to_string(), 3)]);
        let orders = Numbered::default();
        let mut won = 0;
        for u in 0..10 {
            match stock.admit("A", &format!("u{u}"), &orders).await {
                Verdict::Won(_) => won += 1,
                Verdict::SoldOut => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(won, 3);
        let repeat = stock.admit("A", "u0", &Numbered::default()).await;
        assert!(matches!(repeat, Verdict::Repeat(t) if &*t.order == "o1"));
        let late = stock.admit("A", "u9", &Numbered::default()).await;
        assert!(matches!(late, Verdict::SoldOut));
        let unknown = stock.admit("B", "u1", &Numbered::default()).await;
        assert!(matches!(unknown, Verdict::NoSuchItem));
        assert_eq!(stock.counts()[0].remaining(), 0);
    }

    #[tokio::test]
    async fn restored_winners_count_and_repeat() {
        let stock = LocalStock::new([("A".to_string(), 2)]);
        assert!(stock.restore("A", "alice", "g-000001"));
        assert!(!stock.restore("Z", "bob", "g-000002"), "unknown item");
        assert!(stock.settle().is_empty());
        let again = stock.admit("A", "alice", &Numbered::default()).await;
        let Verdict::Repeat(t) = again else {
            panic!("{again:?}")
        };
        assert!(t.is_durable().await, "restored winners are on disk");
        assert_eq!(stock.counts()[0].admitted, 1);
    }
}

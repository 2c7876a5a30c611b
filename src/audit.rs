//! After (or during) a sale: did every promise hold? From every gate's
//! journal and dead letters, the fleet's ledger when there is one, and the
//! order system's own list of received order ids when given, one report:
//! each item's stock and sold units, and every problem — an item oversold, a
//! customer with two units of an item, one order id for two winners, an
//! acknowledged winner missing from the ledger, a ledger winner in no
//! journal (a journal line lost), a winner set aside in the dead letters, a
//! winner the order system does not have, one it has twice, one it has that
//! nobody won — and with a fair start, whether the draw follows from its
//! entries and revealed seed (`sale::draw::verify`). A pure function of what
//! was read: `flashsale audit` reads and prints.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::sale::draw::{recorded, verify, Line};
use crate::sale::Winner;

/// What the audit reads.
pub(crate) struct Evidence {
    /// Each item and its units in `site.toml`.
    pub(crate) stock: Vec<(String, u32)>,
    /// Each journal directory (as given) and its winners.
    pub(crate) journals: Vec<(String, Vec<Winner>)>,
    /// Winners set aside in the dead letters, with why.
    pub(crate) dead_letters: Vec<(Winner, String)>,
    /// The ledger's winners (sku, user, order), with a fleet.
    pub(crate) ledger: Option<Vec<(String, String, String)>>,
    /// Units the ledger still offers per item (its stock less its winners),
    /// with a fleet.
    pub(crate) available: Option<BTreeMap<String, u32>>,
    /// Order ids the order system received, one per delivery it counted.
    pub(crate) delivered: Option<Vec<String>>,
    /// A fair start's record: every journal's `entries.jsonl` lines.
    pub(crate) draw: Vec<Line>,
    /// The sale's name and its draw's round (its start, Unix ms).
    pub(crate) sale: String,
    pub(crate) round_ms: i64,
}

/// One item's numbers.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Item {
    pub(crate) sku: String,
    pub(crate) stock: u32,
    /// Units sold: distinct order ids for it (journals and ledger together).
    pub(crate) sold: usize,
    /// Units still for sale (a fleet: as the ledger offers them).
    pub(crate) available: Option<u32>,
    /// Units neither sold nor for sale (a fleet: the ledger was loaded with
    /// less than `site.toml`'s stock).
    pub(crate) stranded: Option<u32>,
}

/// Something that did not hold.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub(crate) enum Problem {
    Oversold {
        sku: String,
        stock: u32,
        sold: usize,
    },
    TwoUnits {
        sku: String,
        user: String,
        orders: Vec<String>,
    },
    OneOrderTwoWinners {
        order: String,
        winners: Vec<String>,
    },
    MissingFromLedger {
        order: String,
        sku: String,
        user: String,
        journal: String,
    },
    InNoJournal {
        order: String,
        sku: String,
        user: String,
    },
    DeadLetter {
        order: String,
        user: String,
        why: String,
    },
    NotDelivered {
        order: String,
        user: String,
    },
    DeliveredTwice {
        order: String,
        times: usize,
    },
    DeliveredButNeverWon {
        order: String,
    },
    /// The draw's commitment or secret does not check out.
    DrawUnproven {
        why: String,
    },
    /// An item's winners are not the ones its draw picks.
    DrawDoesNotFollow {
        sku: String,
        why: String,
    },
    Stranded {
        sku: String,
        units: u32,
        available: u32,
    },
}

impl Problem {
    /// One line for a person.
    pub(crate) fn say(&self) -> String {
        match self {
            Problem::Oversold { sku, stock, sold } => {
                format!("{sku}: {sold} sold of a stock of {stock}")
            }
            Problem::TwoUnits { sku, user, orders } => {
                format!(
                    "{sku}: customer {user} holds {} units ({})",
                    orders.len(),
                    orders.join(", ")
                )
            }
            Problem::OneOrderTwoWinners { order, winners } => {
                format!("order {order} was given to {}", winners.join(" and "))
            }
            Problem::MissingFromLedger {
                order,
                sku,
                user,
                journal,
            } => format!(
                "order {order} ({sku}, {user}) is in the journal {journal} but not in the ledger"
            ),
            Problem::InNoJournal { order, sku, user } => format!(
                "order {order} ({sku}, {user}) is in the ledger but in none of the journals given"
            ),
            Problem::DeadLetter { order, user, why } => {
                format!("order {order} ({user}) is in the dead letters: {why}")
            }
            Problem::NotDelivered { order, user } => {
                format!("order {order} ({user}) never reached the order system")
            }
            Problem::DeliveredTwice { order, times } => {
                format!("order {order} was received {times} times by the order system")
            }
            Problem::DeliveredButNeverWon { order } => {
                format!("order {order} was received by the order system but nobody won it")
            }
            Problem::DrawUnproven { why } => format!("the fair start's draw: {why}"),
            Problem::Stranded {
                sku,
                units,
                available,
            } => format!(
                "{sku}: {units} units neither sold nor for sale (the ledger offers {available}): load the ledger from this site.toml"
            ),
            Problem::DrawDoesNotFollow { sku, why } => {
                format!("{sku}: the draw does not follow: {why}")
            }
        }
    }
}

/// The audit's findings.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) items: Vec<Item>,
    /// Distinct winners (order ids) found.
    pub(crate) winners: usize,
    /// Of those, how many the order system has (when its list was given).
    pub(crate) delivered: Option<usize>,
    pub(crate) problems: Vec<Problem>,
}

impl Report {
    pub(crate) fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Audits the evidence.
pub(crate) fn audit(e: &Evidence) -> Report {
    let mut problems = Vec::new();
    // Every winner known: order → (sku, user), from the journals and the ledger.
    let mut by_order: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for (_, winners) in &e.journals {
        for w in winners {
            by_order
                .entry(w.order.clone())
                .or_default()
                .insert((w.sku.clone(), w.user.clone()));
        }
    }
    for (sku, user, order) in e.ledger.iter().flatten() {
        by_order
            .entry(order.clone())
            .or_default()
            .insert((sku.clone(), user.clone()));
    }
    for (order, who) in &by_order {
        if who.len() > 1 {
            problems.push(Problem::OneOrderTwoWinners {
                order: order.clone(),
                winners: who.iter().map(|(s, u)| format!("{u} ({s})")).collect(),
            });
        }
    }
    // (sku, user) → orders.
    let mut units: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for (order, who) in &by_order {
        for key in who {
            units.entry(key.clone()).or_default().insert(order.clone());
        }
    }
    for ((sku, user), orders) in &units {
        if orders.len() > 1 {
            problems.push(Problem::TwoUnits {
                sku: sku.clone(),
                user: user.clone(),
                orders: orders.iter().cloned().collect(),
            });
        }
    }
    let items: Vec<Item> = e
        .stock
        .iter()
        .map(|(sku, stock)| {
            let sold = by_order
                .values()
                .filter(|who| who.iter().any(|(s, _)| s == sku))
                .count();
            let available = e
                .available
                .as_ref()
                .map(|a| a.get(sku).copied().unwrap_or(0));
            Item {
                sku: sku.clone(),
                stock: *stock,
                sold,
                available,
                stranded: available.map(|a| stock.saturating_sub(sold as u32).saturating_sub(a)),
            }
        })
        .collect();
    for i in &items {
        if let (Some(units @ 1..), Some(available)) = (i.stranded, i.available) {
            problems.push(Problem::Stranded {
                sku: i.sku.clone(),
                units,
                available,
            });
        }
        if i.sold > i.stock as usize {
            problems.push(Problem::Oversold {
                sku: i.sku.clone(),
                stock: i.stock,
                sold: i.sold,
            });
        }
    }
    if let Some(ledger) = &e.ledger {
        let in_ledger: BTreeSet<&str> = ledger.iter().map(|(_, _, o)| o.as_str()).collect();
        let mut journaled = BTreeSet::new();
        for (dir, winners) in &e.journals {
            for w in winners {
                journaled.insert(w.order.as_str());
                if !in_ledger.contains(w.order.as_str()) {
                    problems.push(Problem::MissingFromLedger {
                        order: w.order.clone(),
                        sku: w.sku.clone(),
                        user: w.user.clone(),
                        journal: dir.clone(),
                    });
                }
            }
        }
        for (sku, user, order) in ledger {
            if !journaled.contains(order.as_str()) {
                problems.push(Problem::InNoJournal {
                    order: order.clone(),
                    sku: sku.clone(),
                    user: user.clone(),
                });
            }
        }
    }
    for (w, why) in &e.dead_letters {
        problems.push(Problem::DeadLetter {
            order: w.order.clone(),
            user: w.user.clone(),
            why: why.clone(),
        });
    }
    let mut delivered = None;
    if let Some(received) = &e.delivered {
        let mut times: BTreeMap<String, usize> = BTreeMap::new();
        for id in received {
            *times.entry(id.trim().to_lowercase()).or_default() += 1;
        }
        let won: BTreeMap<String, &String> =
            by_order.keys().map(|o| (o.to_lowercase(), o)).collect();
        let mut have = 0;
        for (lower, order) in &won {
            match times.get(lower) {
                Some(_) => have += 1,
                None => {
                    let user = by_order[*order]
                        .iter()
                        .next()
                        .map(|(_, u)| u.clone())
                        .unwrap_or_default();
                    problems.push(Problem::NotDelivered {
                        order: (*order).clone(),
                        user,
                    });
                }
            }
        }
        for (id, n) in &times {
            if *n > 1 {
                problems.push(Problem::DeliveredTwice {
                    order: id.clone(),
                    times: *n,
                });
            }
            if !won.contains_key(id) {
                problems.push(Problem::DeliveredButNeverWon { order: id.clone() });
            }
        }
        delivered = Some(have);
    }
    let winners = e.journals.iter().flat_map(|(_, w)| w);
    problems.extend(draw_problems(
        &e.draw,
        (&e.sale, e.round_ms),
        winners.map(|w| (w.sku.as_str(), w.user.as_str())),
    ));
    Report {
        items,
        winners: by_order.len(),
        delivered,
        problems,
    }
}

/// A fair start's draw, checked: one commitment, a revealed secret that
/// opens it, and each item's winners the ones its draw picks. Nothing when
/// no draw was recorded.
fn draw_problems<'a>(
    lines: &[Line],
    (sale, round_ms): (&str, i64),
    winners: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<Problem> {
    let unproven = |why: String| vec![Problem::DrawUnproven { why }];
    let (commitment, secret) = match recorded(lines) {
        Ok(None) => return Vec::new(),
        Err(why) => return unproven(why),
        Ok(Some(r)) => (r.commitment, r.secret),
    };
    let Some(secret) = secret else {
        return unproven(
            "no secret revealed: the draw did not finish (a gate draws when it starts again)"
                .to_string(),
        );
    };
    if !secret.opens(commitment) {
        return unproven(format!(
            "the revealed secret does not open the commitment {commitment}"
        ));
    }
    verify(&secret, sale, round_ms, lines, winners)
        .into_iter()
        .filter(|c| !c.holds())
        .map(|c| Problem::DrawDoesNotFollow {
            why: c.explain(),
            sku: c.sku,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(order: &str, sku: &str, user: &str) -> Winner {
        Winner::sample(order, sku, user)
    }

    fn clean() -> Evidence {
        Evidence {
            stock: vec![("A".into(), 2)],
            journals: vec![(
                "j1".into(),
                vec![w("g1-000001", "A", "a"), w("g1-000002", "A", "b")],
            )],
            dead_letters: vec![],
            ledger: Some(vec![
                ("A".into(), "a".into(), "g1-000001".into()),
                ("A".into(), "b".into(), "g1-000002".into()),
            ]),
            delivered: Some(vec!["g1-000001".into(), "G1-000002".into()]),
            available: Some([("A".to_string(), 0)].into()),
            draw: vec![],
            sale: "s".into(),
            round_ms: 1_000,
        }
    }

    /// A fair start over `clean()`'s item: ten entrants, two units, the
    /// journals' winners the drawn ones.
    fn drawn() -> Evidence {
        use crate::sale::draw::{leaf, DrawnItem, Secret};
        let key = crate::sale::GateKey::parse(&"07".repeat(32), "test").unwrap();
        let secret = Secret::derive(&key, "s", 1_000);
        let users: Vec<String> = (0..10).map(|i| format!("u{i}")).collect();
        let mut draw: Vec<Line> = users
            .iter()
            .map(|u| Line::Entry {
                sku: "A".into(),
                user: u.clone(),
                time: "2026-01-01T00:00:00.000Z".into(),
                gate: "g1".into(),
                leaf: leaf(&key, "s", "A", u),
            })
            .collect();
        let item = DrawnItem::new(
            "s",
            1_000,
            &secret,
            "A",
            2,
            users.iter().map(|u| leaf(&key, "s", "A", u)),
        );
        draw.push(Line::Drawn {
            drawn: "A".into(),
            units: 2,
            entrants: 10,
            root: item.root.clone(),
            commitment: secret.commitment(),
        });
        draw.push(Line::Revealed {
            secret: secret.to_hex(),
        });
        let picked: Vec<&String> = item
            .winners
            .iter()
            .map(|l| {
                users
                    .iter()
                    .find(|u| leaf(&key, "s", "A", u) == *l)
                    .unwrap()
            })
            .collect();
        let mut e = clean();
        for (i, user) in picked.iter().enumerate() {
            e.journals[0].1[i].user = user.to_string();
            e.ledger.as_mut().unwrap()[i].1 = user.to_string();
        }
        e.draw = draw;
        e
    }

    #[test]
    fn units_neither_sold_nor_for_sale_are_stranded() {
        let mut e = clean();
        e.stock[0].1 = 5;
        e.available = Some([("A".to_string(), 1)].into());
        let r = audit(&e);
        assert_eq!(
            (r.items[0].available, r.items[0].stranded),
            (Some(1), Some(2))
        );
        let said: Vec<String> = r.problems.iter().map(Problem::say).collect();
        assert_eq!(said, ["A: 2 units neither sold nor for sale (the ledger offers 1): load the ledger from this site.toml"]);
        // Without a ledger nothing is known about what is for sale.
        e.available = None;
        e.ledger = None;
        let r = audit(&e);
        assert!(r.ok() && r.items[0].stranded.is_none(), "{:?}", r.problems);
    }

    #[test]
    fn a_fair_start_is_checked_against_its_draw() {
        let e = drawn();
        let r = audit(&e);
        assert!(r.ok(), "{:?}", r.problems);

        // A winner swapped for an entrant the draw did not pick.
        let mut swapped = drawn();
        let other = (0..10)
            .map(|i| format!("u{i}"))
            .find(|u| swapped.journals[0].1.iter().all(|w| &w.user != u))
            .unwrap();
        swapped.journals[0].1[0].user = other.clone();
        swapped.ledger.as_mut().unwrap()[0].1 = other.clone();
        let said: Vec<String> = audit(&swapped).problems.iter().map(Problem::say).collect();
        assert!(
            said.iter()
                .any(|s| s.starts_with("A: the draw does not follow")
                    && s.contains(&format!("winners not drawn: {other}"))),
            "{said:?}"
        );

        // The secret not revealed; another secret revealed.
        let mut hidden = drawn();
        hidden.draw.pop();
        let said: Vec<String> = audit(&hidden).problems.iter().map(Problem::say).collect();
        assert_eq!(said, ["the fair start's draw: no secret revealed: the draw did not finish (a gate draws when it starts again)"]);
        hidden.draw.push(Line::Revealed {
            secret: "08".repeat(32),
        });
        let said: Vec<String> = audit(&hidden).problems.iter().map(Problem::say).collect();
        assert!(said[0].contains("does not open the commitment"), "{said:?}");
    }

    #[test]
    fn a_clean_sale_has_no_problem() {
        let r = audit(&clean());
        assert!(r.ok(), "{:?}", r.problems);
        assert_eq!((r.winners, r.delivered, r.items[0].sold), (2, Some(2), 2));
    }

    #[test]
    fn each_planted_fault_is_named() {
        let mut e = clean();
        e.journals[0].1.push(w("g1-000003", "A", "c"));
        e.journals[0].1.push(w("g1-000004", "A", "a"));
        e.ledger.as_mut().unwrap().remove(0);
        e.ledger
            .as_mut()
            .unwrap()
            .push(("A".into(), "z".into(), "g2-000001".into()));
        e.dead_letters
            .push((w("g1-000003", "A", "c"), "HTTP 500".into()));
        e.delivered
            .as_mut()
            .unwrap()
            .extend(["g1-000002".to_string(), "forged-1".to_string()]);
        let said: Vec<String> = audit(&e).problems.iter().map(Problem::say).collect();
        for expected in [
            "A: 5 sold of a stock of 2",
            "A: customer a holds 2 units (g1-000001, g1-000004)",
            "order g1-000001 (A, a) is in the journal j1 but not in the ledger",
            "order g2-000001 (A, z) is in the ledger but in none of the journals given",
            "order g1-000003 (c) is in the dead letters: HTTP 500",
            "order g1-000003 (c) never reached the order system",
            "order g1-000002 was received 2 times by the order system",
            "order forged-1 was received by the order system but nobody won it",
        ] {
            assert!(said.iter().any(|s| s == expected), "{expected}\n{said:#?}");
        }
    }
}

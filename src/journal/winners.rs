//! The lines of the winners' journal and what they add up to.
//!
//! A gate alone writes one line per winner, before answering. A gate of a
//! fleet writes an *attempt* (the order id it chose, the ledger epoch it
//! sent) while the ledger decides, so the journal's fsync and the ledger's
//! run at once; then the winner line once the ledger said won (the attempt
//! was already on disk when the customer was answered), or a *void* line
//! when it did not. An attempt with neither is *unresolved*: the gate
//! stopped between the two, and asks the ledger at its next start
//! (`gate::start`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::sale::{parse_order_id, Winner};

/// One line of `winners.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum WinnerLine {
    /// A fleet gate's attempt, on disk while the ledger decides it, with
    /// the ledger epoch it was sent under.
    Attempt {
        attempt: Winner,
        epoch: String,
    },
    /// The attempt with this order id was not won (sold out, a repeat, the
    /// ledger did not acknowledge it).
    Void {
        void: String,
    },
    Winner(Winner),
}

/// A winners' journal read back.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Winners {
    /// Every winner, in journal order.
    pub(crate) confirmed: Vec<Winner>,
    /// Attempts neither confirmed nor voided, with their epoch.
    pub(crate) unresolved: Vec<(Winner, String)>,
    /// The highest order number any line names (voided attempts included:
    /// a number is never given twice).
    pub(crate) highest: u64,
}

impl Winners {
    /// Adds up a journal's lines.
    pub(crate) fn of(lines: Vec<WinnerLine>) -> Winners {
        let mut out = Winners::default();
        let mut open: HashMap<String, usize> = HashMap::new();
        let mut attempts: Vec<Option<(Winner, String)>> = Vec::new();
        let mut note = |order: &str| {
            if let Some((_, n)) = parse_order_id(order) {
                out.highest = out.highest.max(n);
            }
        };
        for line in lines {
            match line {
                WinnerLine::Attempt { attempt, epoch } => {
                    note(&attempt.order);
                    open.insert(attempt.order.clone(), attempts.len());
                    attempts.push(Some((attempt, epoch)));
                }
                WinnerLine::Void { void } => {
                    if let Some(i) = open.remove(&void) {
                        attempts[i] = None;
                    }
                }
                WinnerLine::Winner(w) => {
                    note(&w.order);
                    if let Some(i) = open.remove(&w.order) {
                        attempts[i] = None;
                    }
                    out.confirmed.push(w);
                }
            }
        }
        out.unresolved = attempts.into_iter().flatten().collect();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(order: &str, user: &str) -> Winner {
        Winner::sample(order, "A", user)
    }

    #[test]
    fn each_line_kind_round_trips_and_old_journals_read_as_winners() {
        let lines = vec![
            WinnerLine::Winner(w("g1-000001", "a")),
            WinnerLine::Attempt {
                attempt: w("g1-000002", "b"),
                epoch: "e1".into(),
            },
            WinnerLine::Void {
                void: "g1-000002".into(),
            },
        ];
        for l in &lines {
            let text = serde_json::to_string(l).unwrap();
            assert_eq!(
                &serde_json::from_str::<WinnerLine>(&text).unwrap(),
                l,
                "{text}"
            );
        }
        let old = serde_json::to_string(&w("g1-000001", "a")).unwrap();
        assert_eq!(
            serde_json::from_str::<WinnerLine>(&old).unwrap(),
            WinnerLine::Winner(w("g1-000001", "a"))
        );
    }

    #[test]
    fn attempts_are_confirmed_voided_or_left_unresolved() {
        let attempt = |o: &str, u: &str| WinnerLine::Attempt {
            attempt: w(o, u),
            epoch: "e1".into(),
        };
        let got = Winners::of(vec![
            attempt("g1-000001", "a"),
            attempt("g1-000002", "b"),
            attempt("g1-000003", "c"),
            attempt("g1-000004", "d"),
            WinnerLine::Winner(w("g1-000001", "a")),
            WinnerLine::Void {
                void: "g1-000002".into(),
            },
            // Voided, then adopted under the same order (a repeat of itself).
            WinnerLine::Void {
                void: "g1-000004".into(),
            },
            WinnerLine::Winner(w("g1-000004", "d")),
            WinnerLine::Winner(w("other-000009", "e")),
        ]);
        assert_eq!(
            got.confirmed,
            vec![
                w("g1-000001", "a"),
                w("g1-000004", "d"),
                w("other-000009", "e")
            ]
        );
        assert_eq!(
            got.unresolved,
            vec![(w("g1-000003", "c"), "e1".to_string())]
        );
        assert_eq!(got.highest, 9);
    }
}

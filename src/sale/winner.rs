//! A winner: who won which item of which sale, under which order id, when
//! and at which gate. One line of a gate's journal, one entry of the shared
//! ledger's stream, and the JSON body the order system receives.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Winner {
    pub(crate) order: String,
    pub(crate) sale: String,
    pub(crate) sku: String,
    pub(crate) user: String,
    /// RFC 3339, UTC, milliseconds.
    pub(crate) time: String,
    pub(crate) gate: String,
}

#[cfg(test)]
impl Winner {
    /// A winner of sale `s` at gate `g1`, for unit tests.
    pub(crate) fn sample(order: &str, sku: &str, user: &str) -> Winner {
        Winner {
            order: order.into(),
            sale: "s".into(),
            sku: sku.into(),
            user: user.into(),
            time: "2026-01-01T00:00:00.000Z".into(),
            gate: "g1".into(),
        }
    }
}

/// A winner's order id is `<gate id>-<number>`: the gate that admitted them
/// (1 to 32 letters, digits and '-') and a number, zero-padded to six digits,
/// unique per gate: a gate numbers its own, in a fleet too (its attempts
/// carry them into `take.lua`; the ledger keeps each gate's highest, and
/// `reassert.lua` reads the number back). The id is the order system's
/// idempotency key.
pub(crate) fn order_id(gate: &str, number: u64) -> String {
    format!("{gate}-{number:06}")
}

/// The gate and the number of an order id (`None` if it is not one).
pub(crate) fn parse_order_id(order: &str) -> Option<(&str, u64)> {
    let (gate, n) = order.rsplit_once('-')?;
    let n = n.parse().ok()?;
    is_gate_id(gate).then_some((gate, n))
}

pub(crate) use crate::config::is_gate_id;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_round_trip_and_nothing_else_parses() {
        assert_eq!(order_id("g-1", 7), "g-1-000007");
        assert_eq!(parse_order_id("g-1-000007"), Some(("g-1", 7)));
        assert_eq!(
            parse_order_id(&order_id("a", 1_234_567)),
            Some(("a", 1_234_567))
        );
        for bad in ["", "g", "-000001", "g-x", "g_1-000001", "g-1-"] {
            assert_eq!(parse_order_id(bad), None, "{bad}");
        }
        assert!(!is_gate_id(&"x".repeat(33)));
    }
}

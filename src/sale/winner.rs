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

//! The sale itself, apart from its pages: the toggle script's format, the
//! order token, and the sale-day switch (when `open` and `close` may switch
//! the live toggle, and how). `build`, `open`/`close`, the gate and the
//! preview all go through here, so they cannot disagree on a format or a
//! policy.
//!
//! The toggle format, the order token and the start draw are the crate's
//! public API: a shop verifies order URLs and draws with them, and the tests
//! read toggles through them.

pub mod draw;
pub(crate) mod polling;
mod schedule;
pub(crate) mod switch;
mod toggle;
mod token;
mod winner;

pub(crate) use schedule::wait_until;
pub use toggle::{Draw, State, Toggle, MAX_TOGGLE_BYTES};
pub(crate) use token::{authentic_under, minted_for};
pub use token::{
    order_url, parse_order_url, verify, GateKey, KeyError, OrderKey, Refusal, Window, KEY_ENV,
};
pub(crate) use winner::{is_gate_id, order_id, parse_order_id, Winner};

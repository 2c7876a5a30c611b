//! Tests wait for a condition, never for a fixed time: [`wait_for`] polls
//! it every few milliseconds and fails the test, naming what it waited for,
//! if it does not hold in time.

use std::time::{Duration, Instant};

/// Resolves once `holds()` is true; panics after `within`.
pub(crate) async fn wait_for(what: &str, within: Duration, mut holds: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !holds() {
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

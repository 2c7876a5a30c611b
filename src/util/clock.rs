//! The wall clock, as a seam: the gate and its draw ask a [`Clock`] what time
//! it is and to wait for a moment, so tests about the end of a sale or a
//! fair window set the time instead of sleeping until it comes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// What time it is (Unix milliseconds): the system's (perhaps read a fixed
/// offset off, as a drifting host's would be), or one a test sets.
#[derive(Clone, Default)]
pub(crate) struct Clock(Option<Arc<watch::Sender<i64>>>, i64);

/// How long the system clock is trusted not to jump: a wait looks at it
/// again at least this often.
const RECHECK: Duration = Duration::from_secs(1);

impl Clock {
    /// The system's wall clock.
    pub(crate) fn system() -> Clock {
        Clock(None, 0)
    }

    /// The system's wall clock read `offset_ms` ahead (negative: behind):
    /// a host whose clock is off, for tests and rehearsals of a fleet.
    pub(crate) fn skewed(offset_ms: i64) -> Clock {
        Clock(None, offset_ms)
    }

    /// A clock that reads `now_ms` until [`Clock::set`] moves it.
    #[cfg(test)]
    pub(crate) fn manual(now_ms: i64) -> Clock {
        Clock(Some(Arc::new(watch::channel(now_ms).0)), 0)
    }

    /// Moves a manual clock (wakes whoever waits for the new time).
    #[cfg(test)]
    pub(crate) fn set(&self, now_ms: i64) {
        if let Some(t) = &self.0 {
            t.send_replace(now_ms);
        }
    }

    /// Now, in Unix milliseconds.
    pub(crate) fn now_ms(&self) -> i64 {
        match &self.0 {
            None => chrono::Utc::now().timestamp_millis() + self.1,
            Some(t) => *t.borrow(),
        }
    }

    /// Now, as RFC 3339 with milliseconds (the journals' `time`).
    pub(crate) fn stamp(&self) -> String {
        chrono::DateTime::from_timestamp_millis(self.now_ms())
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    /// Resolves once the clock reads `at_ms` or later. On the system clock
    /// it looks again at least every second, so a clock set forward (NTP)
    /// is noticed.
    pub(crate) async fn until(&self, at_ms: i64) {
        match &self.0 {
            None => loop {
                let left = at_ms - self.now_ms();
                if left <= 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(left as u64).min(RECHECK)).await;
            },
            Some(t) => {
                let _ = t.subscribe().wait_for(|now| *now >= at_ms).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_wakes_its_waiters_when_set() {
        let c = Clock::manual(1_000);
        assert_eq!(c.now_ms(), 1_000);
        assert_eq!(c.stamp(), "1970-01-01T00:00:01.000Z");
        let waiter = tokio::spawn({
            let c = c.clone();
            async move { c.until(5_000).await }
        });
        tokio::task::yield_now().await;
        c.set(4_999);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        c.set(5_000);
        waiter.await.unwrap();
    }

    #[tokio::test]
    async fn the_system_clock_is_now() {
        let before = chrono::Utc::now().timestamp_millis();
        let c = Clock::system();
        assert!(c.now_ms() >= before);
        c.until(before - 1).await;
    }
}

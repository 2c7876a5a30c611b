//! Waiting for a moment on the wall clock.

use std::time::{Duration, SystemTime};

/// Sleeps until the wall clock reads `target`, calling `tick` with the time
/// left about once a second. Re-reads the wall clock after every nap, so a
/// long wait, a clock step or a suspended laptop still ends on time.
pub(crate) async fn wait_until(target: SystemTime, mut tick: impl FnMut(Duration)) {
    loop {
        let left = match target.duration_since(SystemTime::now()) {
            Ok(d) if !d.is_zero() => d,
            _ => return,
        };
        tick(left);
        // Nap to the next whole second of the countdown, or to the target.
        let nap = if left > Duration::from_secs(1) {
            Duration::from_nanos((left.as_nanos() % 1_000_000_000) as u64)
                .max(Duration::from_millis(50))
        } else {
            left
        };
        tokio::time::sleep(nap).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_until_ends_on_time() {
        let target = SystemTime::now() + Duration::from_millis(1300);
        let mut ticks = 0;
        wait_until(target, |_| ticks += 1).await;
        let late = SystemTime::now().duration_since(target).unwrap();
        assert!(late < Duration::from_millis(50), "{late:?}");
        assert!((1..=4).contains(&ticks), "{ticks}");
    }
}

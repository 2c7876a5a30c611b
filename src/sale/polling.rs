//! The page runtime's polling schedule, as the Rust side models it.
//! `themes/default/static/runtime.js` polls the toggle on it; `capacity`
//! (the sale day on paper) and `loadtest` (the rehearsal's customers and
//! viewers) use these constants, and a test reads the script's own
//! `var POLL_MIN = …` line and holds the two equal.

/// Near the start a page polls every `POLL_MIN_MS` plus up to `POLL_SPREAD_MS`.
pub(crate) const POLL_MIN_MS: u64 = 1000;
pub(crate) const POLL_SPREAD_MS: u64 = 2000;
/// A page's first poll is due this long before the start, plus its jitter.
pub(crate) const FIRST_POLL_LEAD_MS: u64 = 2000;
/// Each page's own offset (up to this), so first polls spread out.
pub(crate) const JITTER_MS: u64 = 3000;

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers of the script's `var POLL_MIN = 1000, …;` line.
    fn script_constants() -> Vec<(String, u64)> {
        let js = include_str!("../../themes/default/static/runtime.js");
        let line = js
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("var POLL_MIN ="))
            .expect("runtime.js declares `var POLL_MIN = ...` (the polling schedule)");
        line.trim_start_matches("var ")
            .trim_end_matches(';')
            .split(',')
            .map(|d| {
                let (name, value) = d.split_once('=').expect("NAME = number");
                (
                    name.trim().to_string(),
                    value.trim().parse().expect("a number"),
                )
            })
            .collect()
    }

    #[test]
    fn the_schedule_is_the_runtimes() {
        assert_eq!(
            script_constants(),
            [
                ("POLL_MIN".to_string(), POLL_MIN_MS),
                ("POLL_SPREAD".to_string(), POLL_SPREAD_MS),
                ("FIRST_POLL_LEAD".to_string(), FIRST_POLL_LEAD_MS),
                ("JITTER".to_string(), JITTER_MS),
            ],
            "change src/sale/polling.rs with runtime.js (capacity and rehearse follow it)"
        );
        // And the script schedules with them, not with numbers of its own.
        let js = include_str!("../../themes/default/static/runtime.js");
        for used in [
            "POLL_MIN + Math.random() * POLL_SPREAD",
            "start - FIRST_POLL_LEAD + jitter",
            "Math.random() * JITTER",
        ] {
            assert!(js.contains(used), "runtime.js no longer schedules `{used}`");
        }
    }
}

//! Durations as people write them (`500ms`, `2s`, `15m`, `1h 30m`), one
//! grammar for the command line and `site.toml` (humantime's), and as the
//! tool prints them.

use std::time::Duration;

/// Text that is not a duration; says what to write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a duration ({why}); write it with a unit, e.g. 500ms, 30s, 15m or 2h")]
pub(crate) struct NotADuration {
    text: String,
    why: String,
}

/// Parses a duration.
pub(crate) fn parse(text: &str) -> Result<Duration, NotADuration> {
    humantime::parse_duration(text.trim()).map_err(|e| NotADuration {
        text: text.to_string(),
        why: e.to_string(),
    })
}

/// `1:02:03` for a countdown.
pub(crate) fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `42 s`, `3 min 5 s`, `2 h 10 min`, `3 d 4 h`: how long, in words.
pub(crate) fn words(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        3600..=86_399 => format!("{} h {} min", s / 3600, s / 60 % 60),
        _ => format!("{} d {} h", s / 86_400, s / 3600 % 24),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_grammar() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse(" 15m "), Ok(Duration::from_secs(900)));
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5400)));
        let err = parse("30").unwrap_err().to_string();
        assert!(err.contains("with a unit"), "{err}");
        assert!(parse("soon").is_err());
    }

    #[test]
    fn printed_for_people() {
        assert_eq!(words(Duration::from_secs(185)), "3 min 5 s");
        assert_eq!(clock(Duration::from_secs(3723)), "1:02:03");
    }
}

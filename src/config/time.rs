//! Moments in `site.toml` and on the command line: RFC 3339 with an explicit
//! UTC offset, because a sale starts at one instant for everyone.

use std::fmt;

use chrono::{DateTime, FixedOffset};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// A time as written: a TOML date-time or a string, checked by [`parse_time`].
#[derive(Debug, Clone)]
pub(crate) struct RawTime(pub(crate) String);

impl<'de> Deserialize<'de> for RawTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawTime;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a date and time with a UTC offset, like 2026-12-12T20:00:00+08:00")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawTime, E> {
                Ok(RawTime(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawTime, A::Error> {
                // toml hands its native date-times over as a one-entry map.
                let Some((_, text)) = map.next_entry::<String, String>()? else {
                    return Err(de::Error::custom("expected a date and time"));
                };
                Ok(RawTime(text))
            }
        }
        d.deserialize_any(V)
    }
}

/// Why a text is not a sale time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TimeError {
    #[error("`{0}` has no UTC offset, so it means a different moment in every time zone")]
    NoOffset(String),
    #[error("`{0}` is a date without a time")]
    DateOnly(String),
    #[error("`{0}` is not an RFC 3339 date and time")]
    Invalid(String),
}

impl TimeError {
    /// What to write instead.
    pub(crate) fn help(&self) -> String {
        match self {
            TimeError::NoOffset(t) => format!(
                "add the offset the sale is announced in, e.g. `{t}+08:00`, or `{t}Z` for UTC"
            ),
            TimeError::DateOnly(t) => format!("write the full moment, e.g. `{t}T20:00:00+08:00`"),
            TimeError::Invalid(_) => "write it like 2026-12-12T20:00:00+08:00".to_string(),
        }
    }
}

/// Parses RFC 3339; a time without an offset is refused with a fix.
pub(crate) fn parse_time(text: &str) -> Result<DateTime<FixedOffset>, TimeError> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t);
    }
    let parsed: Result<toml::value::Datetime, _> = text.parse();
    Err(match parsed {
        Ok(dt) if dt.offset.is_none() && dt.date.is_some() && dt.time.is_some() => {
            TimeError::NoOffset(text.to_string())
        }
        Ok(dt) if dt.time.is_none() => TimeError::DateOnly(text.to_string()),
        _ => TimeError::Invalid(text.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_required() {
        assert!(parse_time("2026-12-12T20:00:00+08:00").is_ok());
        let e = parse_time("2026-12-12T20:00:00").unwrap_err();
        assert_eq!(e, TimeError::NoOffset("2026-12-12T20:00:00".into()));
        assert!(e.help().contains("2026-12-12T20:00:00+08:00"));
        assert!(matches!(
            parse_time("2026-12-12"),
            Err(TimeError::DateOnly(_))
        ));
        assert!(matches!(parse_time("soon"), Err(TimeError::Invalid(_))));
    }
}

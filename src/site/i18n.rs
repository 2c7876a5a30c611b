//! Message catalogues: every word the default theme shows, per language.
//!
//! A catalogue is `i18n/<language>.toml` (as in Hugo): one key per message,
//! a string, or a table of CLDR plural categories (`zero`, `one`, `two`,
//! `few`, `many`, `other`; `other` required) where a number is counted.
//! `{name}` is filled in. Layers, key by key, later winning: the built-in
//! theme's, the theme's own, the sale's `i18n/`. English is the fallback: a
//! key the sale's language lacks is said in English, and `check` reports it.
//!
//! Keys ending in `_html` hold markup (the template's `t_html`); keys
//! starting `js_` are the page runtime's (the page carries them as JSON, so
//! the runtime stays one cached file for every language).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, FixedOffset, Timelike};
use icu_datetime::fieldsets::YMDET;
use icu_datetime::options::TimePrecision;
use icu_datetime::DateTimeFormatter;
use icu_plurals::{PluralCategory, PluralRules};
use serde::Serialize;
use writeable::Writeable;

use crate::util::diag::{Diagnostic, Diagnostics};

/// The language every catalogue falls back to.
pub(crate) const FALLBACK: &str = "en";

/// The plural categories CLDR knows, as a catalogue names them.
const CATEGORIES: [&str; 6] = ["zero", "one", "two", "few", "many", "other"];

/// One catalogue file: its language and text.
#[derive(Debug, Clone)]
pub(crate) struct CatalogueSource {
    pub(crate) language: String,
    pub(crate) text: String,
    pub(crate) origin: PathBuf,
}

/// One message: a text, or one text per plural category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub(crate) enum Message {
    Text(String),
    Plural(BTreeMap<String, String>),
}

/// A language's messages, the fallback's filling its gaps.
pub(crate) struct Catalogue {
    pub(crate) language: String,
    messages: BTreeMap<String, Message>,
    /// Keys the fallback has and no catalogue of this language does.
    pub(crate) missing: Vec<String>,
    rules: Option<PluralRules>,
    /// Weekday, day, month, year and time, by CLDR.
    dates: Option<DateTimeFormatter<YMDET>>,
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogue")
            .field("language", &self.language)
            .field("messages", &self.messages.len())
            .field("missing", &self.missing)
            .finish()
    }
}

/// Whether catalogue `file` (named `en`, `zh-CN`, …) serves `language`:
/// the same tag, or the same language when no file has the whole tag.
fn serves(file: &str, language: &str, exact: bool) -> bool {
    let primary = |t: &str| t.split(['-', '_']).next().unwrap_or(t).to_ascii_lowercase();
    if exact {
        file.eq_ignore_ascii_case(language)
    } else {
        primary(file) == primary(language) && !file.contains('-')
    }
}

impl Catalogue {
    /// `language`'s catalogue from `sources` (in layer order).
    pub(crate) fn new(
        language: &str,
        sources: &[CatalogueSource],
    ) -> Result<Catalogue, Diagnostics> {
        let mut fallback = BTreeMap::new();
        let mut own = BTreeMap::new();
        let exact = sources.iter().any(|s| serves(&s.language, language, true));
        for s in sources {
            let is_fallback = s.language == FALLBACK;
            let is_own = serves(&s.language, language, exact);
            if !is_fallback && !is_own {
                continue;
            }
            let parsed = parse(s)?;
            if is_fallback {
                fallback.extend(parsed.clone());
            }
            if is_own {
                own.extend(parsed);
            }
        }
        let missing = fallback
            .keys()
            .filter(|k| !own.contains_key(*k))
            .cloned()
            .collect();
        let mut messages = fallback;
        messages.extend(own);
        let locale = language
            .parse::<icu_locale_core::Locale>()
            .unwrap_or(icu_locale_core::locale!("en"));
        let rules = PluralRules::try_new_cardinal(locale.clone().into()).ok();
        let fields = YMDET::long().with_time_precision(TimePrecision::Minute);
        let dates = DateTimeFormatter::try_new(locale.into(), fields).ok();
        Ok(Catalogue {
            language: language.to_string(),
            messages,
            missing,
            rules,
            dates,
        })
    }

    /// The CLDR plural category of `n` in this language.
    pub(crate) fn category(&self, n: u64) -> &'static str {
        match self.rules.as_ref().map(|r| r.category_for(n)) {
            Some(PluralCategory::Zero) => "zero",
            Some(PluralCategory::One) => "one",
            Some(PluralCategory::Two) => "two",
            Some(PluralCategory::Few) => "few",
            Some(PluralCategory::Many) => "many",
            Some(PluralCategory::Other) => "other",
            None if n == 1 => "one",
            None => "other",
        }
    }

    /// The message `key`, counted by `count`, with `{name}` filled from
    /// `arg` (`{count}` from `count`); `None` for a key nobody defines.
    pub(crate) fn text(
        &self,
        key: &str,
        count: Option<u64>,
        arg: impl Fn(&str) -> Option<String>,
    ) -> Option<String> {
        let template = match self.messages.get(key)? {
            Message::Text(t) => t,
            Message::Plural(forms) => {
                let n = count.unwrap_or(0);
                forms.get(self.category(n)).or_else(|| forms.get("other"))?
            }
        };
        Some(fill(template, |name| match (name, count) {
            ("count", Some(n)) => Some(n.to_string()),
            _ => arg(name),
        }))
    }

    /// `t` in words, as the sale's language writes a moment, at its own UTC
    /// offset: `Saturday, December 12, 2026 at 8:00 PM (UTC+08:00)`,
    /// `2026年12月12日星期六 20:00（UTC+08:00）` — the offset as the
    /// `in_zone` message places it.
    pub(crate) fn moment(&self, t: &DateTime<FixedOffset>) -> String {
        let local = t.naive_local();
        let words =
            icu_calendar::Date::try_new_iso(local.year(), local.month() as u8, local.day() as u8)
                .ok()
                .zip(icu_time::Time::try_new(local.hour() as u8, local.minute() as u8, 0, 0).ok())
                .zip(self.dates.as_ref())
                .map(|((date, time), f)| {
                    f.format(&icu_time::DateTime { date, time })
                        .write_to_string()
                        .into_owned()
                })
                .unwrap_or_else(|| t.to_rfc3339());
        let seconds = t.offset().local_minus_utc();
        let offset = if seconds == 0 {
            String::new()
        } else {
            let sign = if seconds < 0 { '-' } else { '+' };
            let o = seconds.abs();
            format!("{sign}{:02}:{:02}", o / 3600, (o % 3600) / 60)
        };
        self.text("in_zone", None, |name| match name {
            "time" => Some(words.clone()),
            "offset" => Some(offset.clone()),
            _ => None,
        })
        .unwrap_or(words)
    }

    /// `rtl` for a language written right to left (Arabic, Hebrew, Persian,
    /// …, by CLDR), else `ltr`: the page's `dir`.
    pub(crate) fn direction(&self) -> &'static str {
        let rtl = self
            .language
            .parse::<icu_locale_core::LanguageIdentifier>()
            .is_ok_and(|l| icu_locale::LocaleDirectionality::new_common().is_right_to_left(&l));
        if rtl {
            "rtl"
        } else {
            "ltr"
        }
    }

    /// The page runtime's messages (`js_…`), for the page to carry.
    pub(crate) fn runtime(&self) -> BTreeMap<&str, &Message> {
        self.messages
            .iter()
            .filter(|(k, _)| k.starts_with("js_"))
            .map(|(k, m)| (k.as_str(), m))
            .collect()
    }

    /// Message `key` as the language's own catalogues say it; `None` when
    /// only the fallback has it (or it is counted).
    pub(crate) fn own(&self, key: &str) -> Option<String> {
        if self.missing.iter().any(|m| m == key) {
            return None;
        }
        match self.messages.get(key)? {
            Message::Text(t) => Some(t.clone()),
            Message::Plural(_) => None,
        }
    }

    /// Every key, for `check` and the tests.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.messages.keys().map(String::as_str)
    }
}

/// `{name}` in `template` replaced by `arg(name)`; an unknown name is kept
/// as written, so a typo shows on the page instead of vanishing.
pub(crate) fn fill(template: &str, arg: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if is_name(&after[..close]) => {
                let name = &after[..close];
                match arg(name) {
                    Some(v) => out.push_str(&v),
                    None => out.push_str(&rest[open..open + close + 2]),
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// One file's messages; an error names the file, the line and the fix.
fn parse(s: &CatalogueSource) -> Result<BTreeMap<String, Message>, Diagnostics> {
    let table: toml::Table = toml::from_str(&s.text).map_err(|e| {
        let d = match e.span() {
            Some(span) => Diagnostic::at_span(&s.origin, &s.text, span, e.message().to_string()),
            None => Diagnostic::in_file(&s.origin, e.message().to_string()),
        };
        Diagnostics::from(d.with_help("a catalogue is TOML: `key = \"text\"`, or `[key]` with `one = \"…\"` and `other = \"…\"`"))
    })?;
    let bad = |key: &str, why: String| -> Diagnostics {
        let at = s
            .text
            .find(&format!("{key} ="))
            .or_else(|| s.text.find(&format!("[{key}]")));
        match at {
            Some(i) => Diagnostic::at_span(&s.origin, &s.text, i..i + key.len(), why),
            None => Diagnostic::in_file(&s.origin, why),
        }
        .into()
    };
    let mut out = BTreeMap::new();
    for (key, value) in table {
        let message = match value {
            toml::Value::String(t) => Message::Text(t),
            toml::Value::Table(forms) => {
                let mut plural = BTreeMap::new();
                for (category, text) in forms {
                    if !CATEGORIES.contains(&category.as_str()) {
                        return Err(bad(&key, format!("`{category}` is not a plural category; use zero, one, two, few, many or other")));
                    }
                    let toml::Value::String(text) = text else {
                        return Err(bad(&key, format!("`{key}.{category}` is not text")));
                    };
                    plural.insert(category, text);
                }
                if !plural.contains_key("other") {
                    return Err(bad(
                        &key,
                        format!("`{key}` has no `other` form: every language needs it"),
                    ));
                }
                Message::Plural(plural)
            }
            _ => {
                return Err(bad(
                    &key,
                    format!("`{key}` is neither text nor a table of plural forms"),
                ))
            }
        };
        out.insert(key, message);
    }
    Ok(out)
}

/// A catalogue file's language: its name without `.toml`.
pub(crate) fn language_of(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    name.strip_suffix(".toml").map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(language: &str, text: &str) -> CatalogueSource {
        CatalogueSource {
            language: language.into(),
            text: text.into(),
            origin: PathBuf::from(format!("i18n/{language}.toml")),
        }
    }

    /// The default theme's catalogues, as shipped.
    fn builtin() -> Vec<CatalogueSource> {
        ["en", "zh-CN", "ja", "de", "fr", "es", "ar"]
            .iter()
            .map(|l| {
                let path = format!(
                    "{}/themes/default/i18n/{l}.toml",
                    env!("CARGO_MANIFEST_DIR")
                );
                source(l, &std::fs::read_to_string(path).unwrap())
            })
            .collect()
    }

    #[test]
    fn every_shipped_language_has_every_key() {
        let all = builtin();
        let en = Catalogue::new("en", &all).unwrap();
        for language in ["zh-CN", "ja", "de", "fr", "es", "ar"] {
            let c = Catalogue::new(language, &all).unwrap();
            assert!(c.missing.is_empty(), "{language} lacks {:?}", c.missing);
            assert_eq!(c.keys().count(), en.keys().count(), "{language}");
            assert_ne!(
                c.text("buy_now", None, |_| None),
                en.text("buy_now", None, |_| None),
                "{language} is translated"
            );
        }
    }

    #[test]
    fn a_missing_key_falls_back_to_english_and_is_reported() {
        let all = vec![
            source("en", "buy_now = \"Buy now\"\nsold = \"Sold\"\n"),
            source("de", "buy_now = \"Jetzt kaufen\"\n"),
            source("de", "buy_now = \"Kaufen\"\n"), // the sale's own, later: wins
        ];
        let de = Catalogue::new("de-AT", &all).unwrap();
        assert_eq!(de.text("buy_now", None, |_| None).unwrap(), "Kaufen");
        assert_eq!(de.text("sold", None, |_| None).unwrap(), "Sold");
        assert_eq!(de.missing, ["sold"]);
        assert_eq!(de.text("nobody", None, |_| None), None);
    }

    #[test]
    fn plurals_follow_cldr_and_names_are_filled() {
        let all = builtin();
        let fr = Catalogue::new("fr", &all).unwrap();
        // French: 0 and 1 are "one".
        assert_eq!(fr.category(0), "one");
        assert_eq!(fr.category(1), "one");
        assert_eq!(fr.category(2), "other");
        assert_eq!(fr.text("js_days", Some(1), |_| None).unwrap(), "1 jour");
        let en = Catalogue::new("en", &all).unwrap();
        assert_eq!(en.category(0), "other");
        assert_eq!(en.text("js_days", Some(2), |_| None).unwrap(), "2 days");
        let ja = Catalogue::new("ja", &all).unwrap();
        assert_eq!(ja.category(1), "other", "Japanese counts without plurals");
        assert_eq!(
            fill("{a} and {b} but {not a name} or {c}", |n| (n != "c")
                .then(|| n.to_uppercase())),
            "A and B but {not a name} or {c}"
        );
    }

    #[test]
    fn moments_read_the_languages_way() {
        let all = builtin();
        let t = DateTime::parse_from_rfc3339("2026-12-12T20:00:00+08:00").unwrap();
        let at = |l: &str| Catalogue::new(l, &all).unwrap().moment(&t);
        assert_eq!(
            at("en"),
            "Saturday, December 12, 2026 at 8:00\u{202f}PM (UTC+08:00)"
        );
        assert_eq!(at("zh-CN"), "2026年12月12日星期六 20:00（UTC+08:00）");
        assert_eq!(at("ja"), "2026年12月12日土曜日 20:00（UTC+08:00）");
        assert_eq!(at("de"), "Samstag, 12. Dezember 2026 um 20:00 (UTC+08:00)");
        assert_eq!(at("fr"), "samedi 12 décembre 2026 à 20:00 (UTC+08:00)");
        assert_eq!(
            at("es"),
            "sábado, 12 de diciembre de 2026 a las 20:00 (UTC+08:00)"
        );
        let utc = DateTime::parse_from_rfc3339("2026-12-12T20:00:00Z").unwrap();
        assert!(Catalogue::new("de", &all)
            .unwrap()
            .moment(&utc)
            .ends_with("(UTC)"));
    }

    #[test]
    fn arabic_and_hebrew_are_written_right_to_left() {
        let dir = |l: &str| Catalogue::new(l, &[]).unwrap().direction();
        assert_eq!(dir("ar"), "rtl");
        assert_eq!(dir("he"), "rtl");
        assert_eq!(dir("fa-IR"), "rtl");
        assert_eq!(dir("zh-CN"), "ltr");
        assert_eq!(dir("en"), "ltr");
        let ar = Catalogue::new("ar", &builtin()).unwrap();
        assert_eq!(ar.category(2), "two");
        assert_eq!(ar.text("js_days", Some(2), |_| None).unwrap(), "يومان");
    }

    #[test]
    fn a_bad_catalogue_names_its_file_line_and_fix() {
        let bad = |text: &str| {
            let e = Catalogue::new("de", &[source("de", text)]).unwrap_err();
            format!("{e}")
        };
        let said = bad("buy_now = \"Kaufen\"\n[stock_line]\none = \"{count} Stück\"\n");
        assert!(
            said.contains("i18n/de.toml:2") && said.contains("no `other` form"),
            "{said}"
        );
        let said = bad("buy_now = \"Kaufen\"\n[js_days]\nsome = \"x\"\nother = \"y\"\n");
        assert!(said.contains("`some` is not a plural category"), "{said}");
        let said = bad("buy_now = Kaufen\n");
        assert!(said.contains("i18n/de.toml:1"), "{said}");
    }
}

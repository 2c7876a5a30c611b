//! Which HTTP headers each output file is served with.
//!
//! Defaults per class of file (fingerprinted asset, HTML page, the toggle), then
//! the site's `[[headers]]` rules in order. The build writes the result into
//! the manifest, which `serve` and `publish` both obey; `open`/`close` ask here
//! for the toggle's. So there is one answer.

use std::collections::BTreeMap;

use globset::{Glob, GlobMatcher};
use serde::{Deserialize, Serialize};

/// The toggle script's path in the output.
pub(crate) const TOGGLE_PATH: &str = "sale.js";
/// A fair start's published draw (`flashsale draw publish`), next to
/// `ended.html`: written after the build, so never pruned by `publish`.
pub(crate) const DRAW_PATH: &str = "draw.json";

pub(crate) const IMMUTABLE: &str = "public, max-age=31536000, immutable";
pub(crate) const PAGE: &str = "public, max-age=60";
/// The toggle's: a browser never uses a stored copy (`max-age=0` with
/// `must-revalidate`; the runtime also fetches with a random `v` and
/// `cache: "no-store"`), while a shared cache — the CDN — may answer from one
/// for a second (`s-maxage=1`), so the origin sees about one request per edge
/// cache per second however many pages poll. Not `no-store`: CloudFront and
/// Varnish would then pass every poll to the origin.
pub(crate) const TOGGLE: &str = "public, max-age=0, s-maxage=1, must-revalidate";
/// The `s-maxage` of [`TOGGLE`]: how long a shared cache may answer from its copy.
pub(crate) const TOGGLE_SHARED_SECONDS: i64 = 1;

/// Headers an object store keeps with an object (and so the only ones a rule may set).
const SETTABLE: &[&str] = &[
    "Cache-Control",
    "Content-Type",
    "Content-Language",
    "Content-Disposition",
];

/// What kind of output a file is; decides default headers and upload order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Class {
    /// Content-addressed under `assets/`: never changes, cached forever.
    Asset,
    /// An HTML page.
    Page,
    /// `sale.js`: never cached by browsers, at most a second by the CDN.
    Toggle,
    /// Anything else (none today; kept for user files a theme may add).
    Other,
}

impl Class {
    pub(crate) fn of(path: &str) -> Class {
        if path == TOGGLE_PATH {
            Class::Toggle
        } else if path.starts_with("assets/") {
            Class::Asset
        } else if path.ends_with(".html") {
            Class::Page
        } else {
            Class::Other
        }
    }
}

/// One `[[headers]]` rule: a glob over output paths and the headers it sets.
#[derive(Debug, Clone)]
pub(crate) struct HeaderRule {
    matcher: GlobMatcher,
    values: BTreeMap<String, String>,
}

/// Keys of a `[[headers]]` table, with an example line for each.
pub(crate) const HEADER_KEYS: &[(&str, &str)] = &[
    ("for", "for = \"*.html\""),
    (
        "values",
        "values = { \"Cache-Control\" = \"public, max-age=300\" }",
    ),
];

/// Why a `[[headers]]` rule is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RuleError {
    #[error("`{pattern}` is not a valid glob: {why}")]
    BadGlob { pattern: String, why: String },
    #[error("header `{0}` cannot be set per file")]
    NotSettable(String),
    #[error("header `{0}` has an empty or multi-line value")]
    BadValue(String),
    #[error("`{0}` would change the Cache-Control of {TOGGLE_PATH}")]
    CachesToggle(String),
}

impl RuleError {
    /// Whether the pattern (`for`) is at fault rather than the `values`.
    pub(crate) fn in_pattern(&self) -> bool {
        matches!(self, RuleError::BadGlob { .. } | RuleError::CachesToggle(_))
    }

    /// What to write instead.
    pub(crate) fn help(&self) -> String {
        match self {
            RuleError::BadGlob { .. } => "write a pattern over paths in the output, e.g. `for = \"*.html\"` or `for = \"assets/**\"`".to_string(),
            RuleError::NotSettable(_) => format!(
                "an object store keeps only these headers with a file: {}",
                SETTABLE.join(", ")
            ),
            RuleError::BadValue(_) => "write the value on one line".to_string(),
            RuleError::CachesToggle(_) => format!("the toggle's caching is fixed (always `{TOGGLE}`: browsers never keep it, a CDN at most a second): use a pattern that does not match {TOGGLE_PATH}, e.g. `*.html`"),
        }
    }
}

impl HeaderRule {
    /// Checks a rule: a valid glob, only headers an object store keeps, one
    /// line each, and never the toggle's Cache-Control.
    pub(crate) fn new(
        pattern: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<HeaderRule, RuleError> {
        let trimmed = pattern.trim_start_matches('/');
        let matcher = Glob::new(trimmed)
            .map_err(|e| RuleError::BadGlob {
                pattern: pattern.to_string(),
                why: e.kind().to_string(),
            })?
            .compile_matcher();
        let mut canonical = BTreeMap::new();
        for (name, value) in values {
            let Some(known) = SETTABLE.iter().find(|k| k.eq_ignore_ascii_case(name)) else {
                return Err(RuleError::NotSettable(name.clone()));
            };
            if value.contains(['\r', '\n']) || value.trim().is_empty() {
                return Err(RuleError::BadValue(name.clone()));
            }
            if *known == "Cache-Control" && matcher.is_match(TOGGLE_PATH) {
                return Err(RuleError::CachesToggle(pattern.to_string()));
            }
            canonical.insert(known.to_string(), value.trim().to_string());
        }
        Ok(HeaderRule {
            matcher,
            values: canonical,
        })
    }
}

/// The headers `path` (relative to the output root) is served with.
pub(crate) fn for_path(path: &str, rules: &[HeaderRule]) -> BTreeMap<String, String> {
    let mut h = BTreeMap::new();
    h.insert("Content-Type".to_string(), content_type(path));
    let cache = match Class::of(path) {
        Class::Asset => IMMUTABLE,
        Class::Page | Class::Other => PAGE,
        Class::Toggle => TOGGLE,
    };
    h.insert("Cache-Control".to_string(), cache.to_string());
    for rule in rules {
        if rule.matcher.is_match(path) {
            for (k, v) in &rule.values {
                h.insert(k.clone(), v.clone());
            }
        }
    }
    h
}

/// Content-Type by extension, with a charset for text.
pub(crate) fn content_type(path: &str) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let textual = mime.type_() == mime_guess::mime::TEXT
        || matches!(mime.subtype().as_str(), "javascript" | "json" | "xml")
        || mime.suffix().is_some_and(|s| s == "xml" || s == "json");
    if textual {
        format!("{}; charset=utf-8", mime.essence_str())
    } else {
        mime.essence_str().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_by_class() {
        let h = for_path("assets/style.0123456789abcdef.css", &[]);
        assert_eq!(h["Cache-Control"], IMMUTABLE);
        assert_eq!(h["Content-Type"], "text/css; charset=utf-8");
        assert_eq!(for_path("items/a/index.html", &[])["Cache-Control"], PAGE);
        let t = for_path("sale.js", &[]);
        assert_eq!(t["Cache-Control"], TOGGLE);
        assert!(TOGGLE.contains(&format!("s-maxage={TOGGLE_SHARED_SECONDS},")));
        assert_eq!(t["Content-Type"], "text/javascript; charset=utf-8");
        assert_eq!(
            for_path("assets/a.1.svg", &[])["Content-Type"],
            "image/svg+xml; charset=utf-8"
        );
        assert_eq!(for_path("assets/a.1.png", &[])["Content-Type"], "image/png");
    }

    #[test]
    fn rules_override_in_order() {
        let mut v = BTreeMap::new();
        v.insert("cache-control".to_string(), "public, max-age=5".to_string());
        let r = HeaderRule::new("*.html", &v).unwrap();
        assert_eq!(
            for_path("items/a/index.html", std::slice::from_ref(&r))["Cache-Control"],
            "public, max-age=5"
        );
        assert_eq!(for_path("sale.js", &[r])["Cache-Control"], TOGGLE);
    }

    #[test]
    fn rules_cannot_cache_the_toggle_or_set_odd_headers() {
        let mut v = BTreeMap::new();
        v.insert("Cache-Control".to_string(), "max-age=600".to_string());
        let e = HeaderRule::new("*", &v).unwrap_err();
        assert_eq!(e, RuleError::CachesToggle("*".into()));
        assert!(e.in_pattern());
        let mut v = BTreeMap::new();
        v.insert("X-Frame-Options".to_string(), "DENY".to_string());
        let e = HeaderRule::new("*.html", &v).unwrap_err();
        assert_eq!(e, RuleError::NotSettable("X-Frame-Options".into()));
        assert!(!e.in_pattern() && e.help().contains("Cache-Control"));
    }
}

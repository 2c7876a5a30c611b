//! Which HTTP headers each output file is served with.
//!
//! Defaults per class of file (fingerprinted asset, HTML page, the toggle), then
//! the site's `[[headers]]` rules in order. The result is written into the
//! manifest, which `serve` and `publish` both obey, so there is one answer.

use std::collections::BTreeMap;

use globset::{Glob, GlobMatcher};
use serde::{Deserialize, Serialize};

/// The toggle script's path in the output.
pub const TOGGLE_PATH: &str = "sale.js";

pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
pub const PAGE: &str = "public, max-age=60";
pub const NO_CACHE: &str = "no-cache, no-store, max-age=0, must-revalidate";

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
pub enum Class {
    /// Content-addressed under `assets/`: never changes, cached forever.
    Asset,
    /// An HTML page.
    Page,
    /// `sale.js`: must never be served stale.
    Toggle,
    /// Anything else (none today; kept for user files a theme may add).
    Other,
}

impl Class {
    pub fn of(path: &str) -> Class {
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
pub struct HeaderRule {
    pub pattern: String,
    matcher: GlobMatcher,
    pub values: BTreeMap<String, String>,
}

impl HeaderRule {
    /// Checks a rule. The error says whether the pattern (true) or the values
    /// are at fault, what is wrong, and the fix.
    pub fn new(
        pattern: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<HeaderRule, (bool, String, String)> {
        let trimmed = pattern.trim_start_matches('/');
        let matcher = Glob::new(trimmed)
            .map_err(|e| {
                (
                    true,
                    format!("`{pattern}` is not a valid glob: {}", e.kind()),
                    "write a pattern over paths in the output, e.g. `for = \"*.html\"` or `for = \"assets/**\"`".to_string(),
                )
            })?
            .compile_matcher();
        let mut canonical = BTreeMap::new();
        for (name, value) in values {
            let Some(known) = SETTABLE.iter().find(|k| k.eq_ignore_ascii_case(name)) else {
                return Err((
                    false,
                    format!("header `{name}` cannot be set per file"),
                    format!(
                        "an object store keeps only these headers with a file: {}",
                        SETTABLE.join(", ")
                    ),
                ));
            };
            if value.contains(['\r', '\n']) || value.trim().is_empty() {
                return Err((
                    false,
                    format!("header `{name}` has an empty or multi-line value"),
                    "write the value on one line".to_string(),
                ));
            }
            if *known == "Cache-Control" && matcher.is_match(TOGGLE_PATH) {
                return Err((
                    true,
                    format!("`{pattern}` would change the Cache-Control of {TOGGLE_PATH}"),
                    format!("the toggle must never be cached (it is always `{NO_CACHE}`): use a pattern that does not match {TOGGLE_PATH}, e.g. `*.html`"),
                ));
            }
            canonical.insert(known.to_string(), value.trim().to_string());
        }
        Ok(HeaderRule {
            pattern: pattern.to_string(),
            matcher,
            values: canonical,
        })
    }
}

/// The headers `path` (relative to the output root) is served with.
pub fn for_path(path: &str, rules: &[HeaderRule]) -> BTreeMap<String, String> {
    let mut h = BTreeMap::new();
    h.insert("Content-Type".to_string(), content_type(path));
    let cache = match Class::of(path) {
        Class::Asset => IMMUTABLE,
        Class::Page | Class::Other => PAGE,
        Class::Toggle => NO_CACHE,
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
pub fn content_type(path: &str) -> String {
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
        assert_eq!(t["Cache-Control"], NO_CACHE);
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
        assert_eq!(for_path("sale.js", &[r])["Cache-Control"], NO_CACHE);
    }

    #[test]
    fn rules_cannot_cache_the_toggle_or_set_odd_headers() {
        let mut v = BTreeMap::new();
        v.insert("Cache-Control".to_string(), "max-age=600".to_string());
        assert!(HeaderRule::new("*", &v).is_err());
        let mut v = BTreeMap::new();
        v.insert("X-Frame-Options".to_string(), "DENY".to_string());
        assert!(HeaderRule::new("*.html", &v).is_err());
    }
}

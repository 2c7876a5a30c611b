//! `site.toml`: one sale's settings, read strictly.
//!
//! Unknown keys, times without a UTC offset and impossible values are errors
//! that name the file, line and column and say what to write; every problem is
//! reported in one pass. Each section checks itself (`gate`, `publish`,
//! `headers`); [`Config::parse`] only assembles. Items are checked by
//! `site::content`; this module keeps the inline `[[items]]` tables as written.

mod edge;
mod gate;
pub(crate) mod headers;
mod images;
mod items;
pub(crate) mod languages;
pub(crate) mod money;
mod publish;
mod time;

use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, FixedOffset};
use serde::Deserialize;
use toml::Spanned;

use crate::util::diag::{self, Diagnostic, Diagnostics};
pub(crate) use edge::{EdgeConfig, RawEdge, EDGE_KEYS};
pub(crate) use gate::{
    is_gate_id, GateConfig, Identity, LedgerAccess, RawGate, GATE_KEYS, MAX_FAIR_WINDOW,
};
pub(crate) use headers::{HeaderRule, HEADER_KEYS};
pub(crate) use images::{ImagesConfig, RawImages, IMAGES_KEYS};
pub(crate) use items::{PriceText, RawItem, ITEM_KEYS};
use money::Currency;
pub(crate) use publish::{PublishConfig, RawPublish, PUBLISH_KEYS};
pub(crate) use time::{parse_time, RawTime};

/// The built-in theme's name.
pub(crate) const DEFAULT_THEME: &str = "default";

/// Keys of the top-level table, with an example line for each (used in help texts).
const SITE_KEYS: &[(&str, &str)] = &[
    ("name", "name = \"winter-2026\""),
    ("title", "title = \"Winter Flash Sale\""),
    (
        "description",
        "description = \"Ten winter favourites at up to 75 % off, for one hour.\"",
    ),
    ("base_url", "base_url = \"https://sale.example.com/\""),
    ("start", "start = 2026-12-12T20:00:00+08:00"),
    ("end", "end = 2026-12-12T20:30:00+08:00"),
    ("theme", "theme = \"default\""),
    ("currency", "currency = \"EUR\""),
    ("language", "language = \"en\""),
    ("languages", "languages = [\"zh-CN\", \"en\"]"),
    (
        "translations",
        "[translations.en]\ntitle = \"Winter Flash Sale\"",
    ),
    ("paginate", "paginate = 48"),
    ("output_dir", "output_dir = \"public\""),
    ("items_dir", "items_dir = \"items\""),
    ("gate", "[gate]\nurl = \"https://gate.example.com\""),
    ("headers", "[[headers]]"),
    ("items", "[[items]]"),
    ("publish", "[publish]\nbucket = \"my-sale-bucket\""),
    (
        "edge",
        "[edge]\nkvs_arn = \"arn:aws:cloudfront::123456789012:key-value-store/…\"",
    ),
    (
        "images",
        "[images]\nwidths = [320, 480, 640, 800, 1080, 1440]",
    ),
];

/// A sale, as configured.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The file this was read from and its text (for diagnostics about inline items).
    pub(crate) path: PathBuf,
    pub(crate) source: String,
    /// The directory `site.toml` is in; relative paths are resolved against it.
    pub(crate) root: PathBuf,
    /// The sale's identifier, used in order URLs: lowercase letters, digits, `-`.
    pub(crate) name: String,
    pub(crate) title: String,
    /// What search results and shared links say about the sale (listing and
    /// ended pages); `None`: one is made from the title and the start.
    pub(crate) description: Option<String>,
    pub(crate) base_url: String,
    /// The path part of `base_url`, always starting and ending with `/`.
    pub(crate) base_path: String,
    pub(crate) start: DateTime<FixedOffset>,
    pub(crate) end: DateTime<FixedOffset>,
    pub(crate) theme: String,
    pub(crate) currency: Currency,
    /// The default language: `languages[0]`.
    pub(crate) language: String,
    /// Every language the sale is in, the default first (`config::languages`).
    pub(crate) languages: Vec<String>,
    /// The sale's title and description in its other languages.
    pub(crate) translations: std::collections::BTreeMap<String, languages::SaleText>,
    pub(crate) paginate: usize,
    pub(crate) output_dir: PathBuf,
    pub(crate) items_dir: Option<PathBuf>,
    pub(crate) gate: GateConfig,
    /// Where `publish` puts the sale; `None` when the section is absent.
    pub(crate) publish: Option<PublishConfig>,
    /// The order path's edge function's store; `None` without `[edge]`.
    pub(crate) edge: Option<EdgeConfig>,
    /// How product photos are made responsive (`[images]`, defaults without it).
    pub(crate) images: ImagesConfig,
    pub(crate) headers: Vec<HeaderRule>,
    pub(crate) inline_items: Vec<RawItem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    name: Spanned<String>,
    title: Option<String>,
    description: Option<String>,
    base_url: Spanned<String>,
    start: Spanned<RawTime>,
    end: Spanned<RawTime>,
    theme: Option<Spanned<String>>,
    currency: Spanned<String>,
    language: Option<Spanned<String>>,
    languages: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    translations: std::collections::BTreeMap<String, Spanned<languages::SaleText>>,
    paginate: Option<Spanned<i64>>,
    output_dir: Option<Spanned<String>>,
    items_dir: Option<Spanned<String>>,
    gate: Spanned<RawGate>,
    publish: Option<Spanned<RawPublish>>,
    edge: Option<Spanned<RawEdge>>,
    images: Option<Spanned<RawImages>>,
    #[serde(default)]
    headers: Vec<Spanned<RawHeaderRule>>,
    #[serde(default)]
    items: Vec<RawItem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeaderRule {
    #[serde(rename = "for")]
    pattern: Spanned<String>,
    values: Spanned<std::collections::BTreeMap<String, String>>,
}

/// Collects the problems of one file while its sections check themselves.
pub(crate) struct Checker<'a> {
    path: &'a Path,
    source: &'a str,
    problems: Diagnostics,
}

impl Checker<'_> {
    /// Like [`Checker::push`], without quoting the line (it may hold a secret).
    pub(crate) fn push_redacted(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.problems.push(
            Diagnostic::at_span(self.path, self.source, span, message)
                .redacted()
                .with_help(help),
        );
    }

    /// A problem at a byte range of the file, with what to write instead.
    pub(crate) fn push(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.problems
            .push(Diagnostic::at_span(self.path, self.source, span, message).with_help(help));
    }
}

impl Config {
    /// Reads and checks `path`. All problems found are reported together.
    pub(crate) fn load(path: &Path) -> Result<Config, Diagnostics> {
        let source = std::fs::read_to_string(path).map_err(|e| {
            let d = Diagnostic::in_file(path, format!("cannot read the sale's configuration: {e}"));
            if e.kind() == std::io::ErrorKind::NotFound {
                d.with_help(
                    "run this in the sale's directory, or create one with `flashsale new DIR`",
                )
            } else {
                d
            }
        })?;
        Self::parse(path, source)
    }

    /// When `path` has problems, a configuration good enough to find and
    /// check the sale's other files (items, templates, static files): its
    /// `items_dir` and `theme` if they are plain strings, placeholders for
    /// the rest. `None` if it is not even TOML. For `check`, so one run
    /// reports the problems of every file.
    pub(crate) fn stand_in(path: &Path) -> Option<Config> {
        let source = std::fs::read_to_string(path).ok()?;
        let raw: toml::Table = toml::from_str(&source).ok()?;
        let mut text = String::from(
            "name = \"stand-in\"\nbase_url = \"https://stand-in.invalid/\"\n\
             start = 2000-01-01T00:00:00Z\nend = 2000-01-01T01:00:00Z\ncurrency = \"EUR\"\n",
        );
        for key in ["items_dir", "theme"] {
            if let Some(toml::Value::String(v)) = raw.get(key) {
                text.push_str(&format!("{key} = {}\n", toml::Value::String(v.clone())));
            }
        }
        text.push_str("[gate]\nurl = \"https://gate.stand-in.invalid\"\n");
        Self::parse(path, text).ok()
    }

    /// Checks configuration text as if it had been read from `path`.
    pub(crate) fn parse(path: &Path, source: String) -> Result<Config, Diagnostics> {
        let raw: RawSite =
            diag::parse_toml(path, &source, 0, &source, |e| keys_for_error(&source, e))?;
        let root = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let mut cx = Checker {
            path,
            source: &source,
            problems: Diagnostics::default(),
        };
        let site = raw.check(&root, &mut cx);
        let length_ms = (site.end - site.start).num_milliseconds();
        let mut gate = raw.gate.get_ref().check(&site.base_url, length_ms, &mut cx);
        let access = &mut gate.ledger_access;
        for p in [&mut access.ca_file, &mut access.password_file]
            .into_iter()
            .flatten()
        {
            *p = in_root(&root, p);
        }
        let publish = raw.publish.as_ref().map(|p| p.get_ref().check(&mut cx));
        let edge = raw.edge.as_ref().map(|e| e.get_ref().check(&mut cx));
        let images = raw
            .images
            .as_ref()
            .map_or_else(ImagesConfig::default, |i| i.get_ref().check(&mut cx));
        let headers = check_header_rules(&raw.headers, &mut cx);
        let all_languages = languages::check(
            raw.language.as_ref(),
            raw.languages.as_ref(),
            &raw.translations,
            &mut cx,
        );
        let problems = cx.problems;
        problems.into_result(Config {
            path: path.to_path_buf(),
            root,
            name: site.name,
            title: raw.title.unwrap_or_else(|| raw.name.into_inner()),
            description: raw
                .description
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty()),
            base_url: site.base_url,
            base_path: site.base_path,
            start: site.start,
            end: site.end,
            theme: site.theme,
            currency: site.currency,
            language: all_languages[0].clone(),
            languages: all_languages,
            translations: raw
                .translations
                .into_iter()
                .map(|(k, v)| (k, v.into_inner()))
                .collect(),
            paginate: site.paginate,
            output_dir: site.output_dir,
            items_dir: site.items_dir,
            gate,
            publish,
            edge,
            images,
            headers,
            inline_items: raw.items,
            source,
        })
    }

    /// A path as this configuration writes it (`items/a.md`), given the
    /// absolute path a file watcher reports; `None` if it is outside the sale.
    pub(crate) fn local_path(&self, absolute: &Path) -> Option<PathBuf> {
        let root = std::path::absolute(&self.root).ok()?;
        Some(in_root(&self.root, absolute.strip_prefix(&root).ok()?))
    }

    /// `rel` in the sale's directory, as users are shown it: `templates`, not
    /// `./templates`, when site.toml is in the current directory.
    pub(crate) fn in_root(&self, rel: impl AsRef<Path>) -> PathBuf {
        in_root(&self.root, rel.as_ref())
    }

    /// The origin of the sale's pages (`https://sale.example.com`): the one
    /// whose orders gates and edges accept and answer with CORS.
    pub(crate) fn origin(&self) -> String {
        // base_url was checked to be an http(s) URL when the config was read.
        http_url(&self.base_url).map_or_else(String::new, |u| u.origin().ascii_serialization())
    }
}

/// `rel` under `root`, without a leading `./`.
fn in_root(root: &Path, rel: &Path) -> PathBuf {
    if root == Path::new(".") {
        rel.to_path_buf()
    } else {
        root.join(rel)
    }
}

/// The top-level keys, checked.
struct SiteKeys {
    name: String,
    base_url: String,
    base_path: String,
    start: DateTime<FixedOffset>,
    end: DateTime<FixedOffset>,
    theme: String,
    currency: Currency,
    paginate: usize,
    output_dir: PathBuf,
    items_dir: Option<PathBuf>,
}

impl RawSite {
    fn check(&self, root: &Path, cx: &mut Checker) -> SiteKeys {
        // Paths are shown to users: `public`, not `./public`.
        let in_root = |p: &Path| in_root(root, p);
        let name = self.name.get_ref().clone();
        if name.is_empty()
            || name.len() > 40
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            cx.push(
                self.name.span(),
                format!("`{name}` cannot be used as the sale's name"),
                "the name appears in order URLs: use 1 to 40 lowercase letters, digits and '-', e.g. `name = \"winter-2026\"`; put the display name in `title`",
            );
        }
        let base_url = self.base_url.get_ref().clone();
        let base_path = match http_url(&base_url) {
            Some(url) => path_of(&url),
            None => {
                cx.push(
                    self.base_url.span(),
                    format!("`{base_url}` is not an http(s) URL"),
                    "write the address the sale is served at, e.g. `base_url = \"https://sale.example.com/\"`",
                );
                "/".to_string()
            }
        };
        let (start, end) = self.window(cx);
        let theme = self.theme(root, cx);
        let currency = match Currency::parse(self.currency.get_ref()) {
            Ok(c) => c,
            Err(e) => {
                cx.push(
                    self.currency.span(),
                    e.to_string(),
                    "write an ISO 4217 code in capitals, e.g. `currency = \"EUR\"`",
                );
                Currency::parse("EUR").expect("EUR is a currency")
            }
        };
        let paginate = match &self.paginate {
            None => 48,
            Some(p) if (1..=10_000).contains(p.get_ref()) => *p.get_ref() as usize,
            Some(p) => {
                cx.push(
                    p.span(),
                    format!("`paginate = {}` is out of range", p.get_ref()),
                    "give the number of items per listing page, 1 to 10000, e.g. `paginate = 48`",
                );
                48
            }
        };
        let output_dir = match &self.output_dir {
            None => in_root(Path::new("public")),
            Some(o) => {
                let p = Path::new(o.get_ref());
                if p.is_absolute() || p.components().any(|c| !matches!(c, Component::Normal(_))) {
                    cx.push(
                        o.span(),
                        format!("`{}` cannot be the output directory", o.get_ref()),
                        "name a directory inside the sale's directory that flashsale may own, e.g. `output_dir = \"public\"`; its old contents are replaced on every build",
                    );
                }
                in_root(p)
            }
        };
        let items_dir = self.items_dir.as_ref().map(|d| {
            let p = in_root(Path::new(d.get_ref()));
            if !p.is_dir() {
                cx.push(
                    d.span(),
                    format!("items directory `{}` does not exist", p.display()),
                    "create it with one Markdown file per item, or remove `items_dir` and use [[items]] tables",
                );
            }
            p
        });
        if self.items.is_empty() && self.items_dir.is_none() {
            cx.push(
                0..0,
                "the sale has no items",
                "add an [[items]] table (sku, title, price, stock, ...) or `items_dir = \"items\"` with one Markdown file per item",
            );
        }
        SiteKeys {
            name,
            base_url,
            base_path,
            start,
            end,
            theme,
            currency,
            paginate,
            output_dir,
            items_dir,
        }
    }

    /// `start` and `end`: moments with offsets, in that order.
    fn window(&self, cx: &mut Checker) -> (DateTime<FixedOffset>, DateTime<FixedOffset>) {
        let mut time = |t: &Spanned<RawTime>| match parse_time(&t.get_ref().0) {
            Ok(t) => Some(t),
            Err(e) => {
                cx.push(t.span(), e.to_string(), e.help());
                None
            }
        };
        let (start, end) = (time(&self.start), time(&self.end));
        if let (Some(s), Some(e)) = (start, end) {
            if e <= s {
                cx.push(
                    self.end.span(),
                    "the sale ends before it starts",
                    format!("set `end` to a time after `start` ({})", s.to_rfc3339()),
                );
            }
        }
        let epoch = DateTime::UNIX_EPOCH.fixed_offset();
        (start.unwrap_or(epoch), end.unwrap_or(epoch))
    }

    fn theme(&self, root: &Path, cx: &mut Checker) -> String {
        let Some(t) = &self.theme else {
            return DEFAULT_THEME.to_string();
        };
        let v = t.get_ref();
        if v.is_empty() || v.contains(['/', '\\']) || v.starts_with('.') {
            cx.push(
                t.span(),
                format!("`{v}` is not a theme name"),
                "name a directory under themes/, or `theme = \"default\"` for the built-in one",
            );
        } else if v != DEFAULT_THEME && !root.join("themes").join(v).is_dir() {
            cx.push(
                t.span(),
                format!(
                    "theme `{v}` not found: there is no {}",
                    in_root(root, &Path::new("themes").join(v)).display()
                ),
                "create that directory, or write `theme = \"default\"` for the built-in theme",
            );
        }
        v.clone()
    }
}

fn check_header_rules(raw: &[Spanned<RawHeaderRule>], cx: &mut Checker) -> Vec<HeaderRule> {
    let mut rules = Vec::new();
    for rule in raw {
        let r = rule.get_ref();
        match HeaderRule::new(r.pattern.get_ref(), r.values.get_ref()) {
            Ok(rule) => rules.push(rule),
            Err(e) => {
                let span = if e.in_pattern() {
                    r.pattern.span()
                } else {
                    r.values.span()
                };
                cx.push(span, e.to_string(), e.help());
            }
        }
    }
    rules
}

/// Chooses which table's keys to suggest from, by where the error is.
fn keys_for_error(source: &str, e: &toml::de::Error) -> &'static [(&'static str, &'static str)] {
    let at = e.span().map_or(0, |s| s.start).min(source.len());
    let header = source[..at]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['));
    match header {
        Some(h) if h.starts_with("[[items]]") => ITEM_KEYS,
        Some(h) if h.starts_with("[items.translations") || h.starts_with("[translations") => {
            languages::ITEM_TEXT_KEYS
        }
        Some(h) if h.starts_with("[[headers]]") => HEADER_KEYS,
        Some(h) if h.starts_with("[gate]") => GATE_KEYS,
        Some(h) if h.starts_with("[publish]") => PUBLISH_KEYS,
        Some(h) if h.starts_with("[edge]") => EDGE_KEYS,
        Some(h) if h.starts_with("[images]") => IMAGES_KEYS,
        _ => SITE_KEYS,
    }
}

/// An absolute http(s) URL with a host and no query or fragment.
pub(crate) fn http_url(text: &str) -> Option<url::Url> {
    let url = url::Url::parse(text.trim()).ok()?;
    (matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && url.query().is_none()
        && url.fragment().is_none()
        && !text.contains(' '))
    .then_some(url)
}

/// A URL's path, decoded, starting and ending with `/`.
fn path_of(url: &url::Url) -> String {
    let decoded = percent_encoding::percent_decode_str(url.path()).decode_utf8_lossy();
    let mut p = decoded.trim_end_matches('/').to_string();
    p.push('/');
    if !p.starts_with('/') {
        p.insert(0, '/');
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "demo"
base_url = "https://sale.example.com/"
start = 2026-12-12T20:00:00+08:00
end = "2026-12-12T20:30:00+08:00"
currency = "EUR"
[gate]
url = "https://gate.example.com/"
[[items]]
sku = "A1"
title = "Thing"
price = 9.9
stock = 3
"#;

    fn parse(s: &str) -> Result<Config, Diagnostics> {
        Config::parse(Path::new("site.toml"), s.to_string())
    }

    #[test]
    fn reads_a_good_sale() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.name, "demo");
        assert_eq!(c.title, "demo");
        assert_eq!(c.base_path, "/");
        assert_eq!(c.gate.url, "https://gate.example.com");
        assert_eq!(c.start.to_rfc3339(), "2026-12-12T20:00:00+08:00");
        assert_eq!(c.inline_items[0].price.get_ref().0, "9.9");
    }

    #[test]
    fn paths_are_shown_as_written_without_a_leading_dot() {
        let here = parse(GOOD).unwrap();
        assert_eq!(here.in_root("templates"), Path::new("templates"));
        assert_eq!(here.output_dir, Path::new("public"));
        let there = Config::parse(Path::new("shop/site.toml"), GOOD.to_string()).unwrap();
        assert_eq!(there.in_root("templates"), Path::new("shop/templates"));
        assert_eq!(there.output_dir, Path::new("shop/public"));
        let abs = std::path::absolute("shop/items/a.md").unwrap();
        assert_eq!(
            there.local_path(&abs).unwrap(),
            Path::new("shop/items/a.md")
        );
    }

    #[test]
    fn time_without_offset_is_refused_with_a_fix() {
        let src = GOOD.replace("2026-12-12T20:00:00+08:00\n", "2026-12-12T20:00:00\n");
        let err = parse(&src).unwrap_err().to_string();
        assert!(err.contains("site.toml:4:9"), "{err}");
        assert!(err.contains("no UTC offset"), "{err}");
        assert!(err.contains("2026-12-12T20:00:00+08:00"), "{err}");
    }

    #[test]
    fn unknown_key_suggests_the_nearest() {
        let src = GOOD.replace("currency", "curency");
        let err = parse(&src).unwrap_err().to_string();
        assert!(err.contains("unknown key `curency`"), "{err}");
        assert!(err.contains("did you mean `currency`"), "{err}");
    }

    #[test]
    fn unknown_item_key_is_refused() {
        let src = format!("{GOOD}colour = \"red\"\n");
        let err = parse(&src).unwrap_err().to_string();
        assert!(err.contains("unknown key `colour`"), "{err}");
        assert!(err.contains("sku"), "{err}");
    }

    #[test]
    fn a_fair_window_is_short_and_shorter_than_the_sale() {
        let with = |w: &str| GOOD.replace("[gate]\n", &format!("[gate]\nfair_window = \"{w}\"\n"));
        assert_eq!(parse(&with("4s")).unwrap().gate.fair_window_ms, Some(4_000));
        assert_eq!(parse(GOOD).unwrap().gate.fair_window_ms, None);
        for (w, says) in [
            ("0s", "not a fair-start window"),
            ("31s", "at most 30 s"),
            ("soon", "not a fair-start window"),
        ] {
            let err = parse(&with(w)).unwrap_err().to_string();
            assert!(
                err.contains(says) && err.contains("site.toml:8:15"),
                "{w}: {err}"
            );
        }
        // A 20 s sale cannot have a 20 s window.
        let short = with("20s").replace("20:30:00+08:00", "20:00:20+08:00");
        let err = parse(&short).unwrap_err().to_string();
        assert!(err.contains("as long as the sale"), "{err}");
    }

    #[test]
    fn forward_attempts_are_a_few_and_default_to_eight() {
        let with = |n: &str| GOOD.replace("[gate]\n", &format!("[gate]\nforward_attempts = {n}\n"));
        assert_eq!(parse(GOOD).unwrap().gate.forward_attempts, 8);
        assert_eq!(parse(&with("3")).unwrap().gate.forward_attempts, 3);
        for (n, says) in [("0", "at least 1"), ("500", "at most 100")] {
            let err = parse(&with(n)).unwrap_err().to_string();
            assert!(
                err.contains(says) && err.contains("site.toml:8:"),
                "{n}: {err}"
            );
        }
    }

    #[test]
    fn a_fleet_lists_distinct_gate_ids() {
        let with = |f: &str| GOOD.replace("[gate]\n", &format!("[gate]\nfleet = {f}\n"));
        assert!(parse(GOOD).unwrap().gate.fleet.is_empty());
        assert_eq!(
            parse(&with(r#"["g1", "g-2"]"#)).unwrap().gate.fleet,
            ["g1", "g-2"]
        );
        for (f, says) in [
            ("[]", "lists no gate"),
            (r#"["g1", "g1"]"#, "`g1` is in `fleet` twice"),
            (r#"["g 1"]"#, "`g 1` in `fleet` is not a gate id"),
        ] {
            let err = parse(&with(f)).unwrap_err().to_string();
            assert!(
                err.contains(says) && err.contains("site.toml:8:"),
                "{f}: {err}"
            );
        }
    }

    #[test]
    fn base_path_is_normalised() {
        let path = |u: &str| http_url(u).map(|u| path_of(&u));
        assert_eq!(path("https://a.b").as_deref(), Some("/"));
        assert_eq!(path("https://a.b/x/y").as_deref(), Some("/x/y/"));
        assert_eq!(path("https://a.b/x/y/").as_deref(), Some("/x/y/"));
        assert_eq!(path("ftp://a.b"), None);
        assert_eq!(path("https://a.b/?q=1"), None);
        assert_eq!(path("not a url"), None);
    }

    #[test]
    fn every_problem_of_every_section_in_one_pass() {
        let src = GOOD
            .replace("name = \"demo\"", "name = \"Demo Sale\"")
            .replace("url = \"https://gate.example.com/\"", "url = \"gate\"\nquota = 0")
            .replace("2026-12-12T20:30:00+08:00", "2026-12-12T19:00:00+08:00")
            + "[publish]\nbucket = \"B\"\n[[headers]]\nfor = \"*\"\nvalues = { \"Cache-Control\" = \"max-age=60\" }\n";
        let err = parse(&src).unwrap_err();
        let text = err.to_string();
        for needle in [
            "cannot be used as the sale's name",
            "ends before it starts",
            "is not an http(s) URL",
            "`quota = 0` must be a whole number",
            "not an S3 bucket name",
            "would change the Cache-Control of sale.js",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
        assert_eq!(err.0.len(), 6, "{text}");
    }

    #[test]
    fn the_first_of_languages_is_the_default() {
        let c = parse(GOOD).unwrap();
        assert_eq!((c.language.as_str(), c.languages.len()), ("en", 1));
        let two = GOOD.replace(
            "currency = \"EUR\"",
            "currency = \"EUR\"\nlanguages = [\"zh-CN\", \"en\"]\n[translations.en]\ntitle = \"Winter\"",
        );
        let c = parse(&two).unwrap();
        assert_eq!(c.language, "zh-CN");
        assert_eq!(c.languages, ["zh-CN", "en"]);
        assert_eq!(c.translations["en"].title.as_deref(), Some("Winter"));
        assert_eq!(languages::prefix(&c.languages, "zh-CN"), "");
        assert_eq!(languages::prefix(&c.languages, "en"), "en/");
        // `language` agrees with the list or is an error, and so is a tag twice.
        let same = two.replace("languages =", "language = \"zh-CN\"\nlanguages =");
        assert!(parse(&same).is_ok());
        for (was, bad, says) in [
            (
                "languages =",
                "language = \"en\"\nlanguages =",
                "the default language comes first",
            ),
            ("languages = [", "languages = [\"en\", ", "listed twice"),
            (
                "languages = [",
                "languages = [\"x!\", ",
                "`x!` is not a language tag",
            ),
            // So no language's pages can land in the output's own items/ or assets/.
            (
                "languages = [",
                "languages = [\"items\", ",
                "`items` is not a language tag",
            ),
            (
                "languages = [",
                "languages = [\"assets\", ",
                "`assets` is not a language tag",
            ),
        ] {
            let text = two.replacen(was, bad, 1);
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
            assert!(err.starts_with("site.toml:"), "{err}");
        }
    }

    #[test]
    fn the_gates_admin_listeners_are_urls() {
        let with = |line: &str| {
            GOOD.replace(
                "url = \"https://gate.example.com/\"",
                &format!("url = \"https://gate.example.com/\"\n{line}"),
            )
        };
        let c = parse(&with(
            "admin = [\"http://10.0.0.11:9180/\", \"http://10.0.0.12:9180\"]",
        ))
        .unwrap();
        assert_eq!(
            c.gate.admin,
            ["http://10.0.0.11:9180", "http://10.0.0.12:9180"]
        );
        let err = parse(&with("admin = [\"10.0.0.11:9180\"]"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is not an http(s) URL") && err.contains("admin = ["),
            "{err}"
        );
    }
}

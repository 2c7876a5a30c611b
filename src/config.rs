//! `site.toml`: one sale's settings, read strictly.
//!
//! Unknown keys, times without a UTC offset and impossible values are errors that
//! name the file, line and column and say what to write. Items are read by
//! [`crate::content`]; this module only keeps the inline `[[items]]` tables.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use crate::diag::{self, Diagnostic, Diagnostics};
use crate::headers::HeaderRule;
use crate::money::Currency;

/// The built-in theme's name.
pub const DEFAULT_THEME: &str = "default";

/// Keys of the top-level table, with an example line for each (used in help texts).
const SITE_KEYS: &[(&str, &str)] = &[
    ("name", "name = \"winter-2026\""),
    ("title", "title = \"Winter Flash Sale\""),
    ("base_url", "base_url = \"https://sale.example.com/\""),
    ("start", "start = 2026-12-12T20:00:00+08:00"),
    ("end", "end = 2026-12-12T20:30:00+08:00"),
    ("theme", "theme = \"default\""),
    ("currency", "currency = \"EUR\""),
    ("language", "language = \"en\""),
    ("paginate", "paginate = 48"),
    ("output_dir", "output_dir = \"public\""),
    ("items_dir", "items_dir = \"items\""),
    ("gate", "[gate]\nurl = \"https://gate.example.com\""),
    ("headers", "[[headers]]"),
    ("items", "[[items]]"),
    ("publish", "[publish]\nbucket = \"my-sale-bucket\""),
];

const PUBLISH_KEYS: &[(&str, &str)] = &[
    ("bucket", "bucket = \"my-sale-bucket\""),
    ("prefix", "prefix = \"winter/\""),
    ("region", "region = \"eu-central-1\""),
    ("endpoint", "endpoint = \"https://s3.example.com\""),
    ("distribution_id", "distribution_id = \"E2QWRUHAPOMQZL\""),
    ("max_deletes", "max_deletes = 256"),
    ("max_invalidation_paths", "max_invalidation_paths = 20"),
];

const GATE_KEYS: &[(&str, &str)] = &[
    ("url", "url = \"https://gate.example.com\""),
    ("quota", "quota = 10"),
    ("gates", "gates = 10"),
    ("identity_header", "identity_header = \"X-User-Id\""),
    ("identity_cookie", "identity_cookie = \"shop_user\""),
    ("forward", "forward = \"https://orders.example.com/flash\""),
    (
        "confirm_url",
        "confirm_url = \"https://shop.example.com/orders/{order}\"",
    ),
    (
        "ended_url",
        "ended_url = \"https://sale.example.com/ended.html\"",
    ),
    ("tolerance", "tolerance = \"2s\""),
    ("rate_limit", "rate_limit = 5"),
    ("client_ip_header", "client_ip_header = \"X-Forwarded-For\""),
];

/// Keys of an item, inline or in front matter.
pub const ITEM_KEYS: &[(&str, &str)] = &[
    ("sku", "sku = \"MUG-01\""),
    ("title", "title = \"Enamel mug\""),
    ("price", "price = 4.90"),
    ("original_price", "original_price = 19.90"),
    ("stock", "stock = 100"),
    ("image", "image = \"images/mug.svg\""),
    ("slug", "slug = \"enamel-mug\""),
    ("description", "description = \"A **sturdy** mug.\""),
];

const HEADER_KEYS: &[(&str, &str)] = &[
    ("for", "for = \"*.html\""),
    (
        "values",
        "values = { \"Cache-Control\" = \"public, max-age=300\" }",
    ),
];

/// A sale, as configured.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from and its text (for diagnostics about inline items).
    pub path: PathBuf,
    pub source: String,
    /// The directory `site.toml` is in; relative paths are resolved against it.
    pub root: PathBuf,
    /// The sale's identifier, used in order URLs: lowercase letters, digits, `-`.
    pub name: String,
    pub title: String,
    pub base_url: String,
    /// The path part of `base_url`, always starting and ending with `/`.
    pub base_path: String,
    pub start: DateTime<FixedOffset>,
    pub end: DateTime<FixedOffset>,
    pub theme: String,
    pub currency: Currency,
    pub language: String,
    pub paginate: usize,
    pub output_dir: PathBuf,
    pub items_dir: Option<PathBuf>,
    pub gate: GateConfig,
    /// Where `publish` puts the sale; `None` when the section is absent.
    pub publish: Option<PublishConfig>,
    pub headers: Vec<HeaderRule>,
    pub inline_items: Vec<RawItem>,
}

#[derive(Debug, Clone)]
pub struct GateConfig {
    /// Public address of the order gates, without a trailing `/`.
    pub url: String,
    /// Units each gate admits per item; `None` with `gates` set: stock / gates.
    pub quota: Option<u32>,
    /// How many gates share each item's stock.
    pub gates: u32,
    pub identity: Identity,
    /// The order system's webhook for winners.
    pub forward: Option<String>,
    /// Where a winner without JavaScript is sent; `{order}` is replaced.
    pub confirm_url: Option<String>,
    /// Where losers are sent (default: the sale's ended.html).
    pub ended_url: String,
    /// Clock tolerance around the sale window, in milliseconds.
    pub tolerance_ms: i64,
    /// Requests per second per client (token bucket, burst of twice that); `None`: no limit.
    pub rate_limit: Option<u32>,
    /// A header set by a trusted proxy that names the client's address.
    pub client_ip_header: Option<String>,
}

/// Who is ordering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A header set by a trusted proxy (default `X-User-Id`).
    Header(String),
    /// A cookie `<user>.<hex HMAC-SHA256(key, user)>` signed by the shop.
    Cookie(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    name: Spanned<String>,
    title: Option<String>,
    base_url: Spanned<String>,
    start: Spanned<SaleTime>,
    end: Spanned<SaleTime>,
    theme: Option<Spanned<String>>,
    currency: Spanned<String>,
    language: Option<String>,
    paginate: Option<Spanned<i64>>,
    output_dir: Option<Spanned<String>>,
    items_dir: Option<Spanned<String>>,
    gate: Spanned<RawGate>,
    publish: Option<Spanned<RawPublish>>,
    #[serde(default)]
    headers: Vec<Spanned<RawHeaderRule>>,
    #[serde(default)]
    items: Vec<RawItem>,
}

/// `[publish]`: an S3 bucket (or S3-compatible store) and optionally CloudFront.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishConfig {
    pub bucket: String,
    /// Key prefix inside the bucket: empty, or ending with `/`.
    pub prefix: String,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub distribution_id: Option<String>,
    /// More deletions than this refuse without `--force`.
    pub max_deletes: usize,
    /// More CDN paths than this are collapsed into wildcards.
    pub max_invalidation_paths: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPublish {
    bucket: Spanned<String>,
    prefix: Option<Spanned<String>>,
    region: Option<String>,
    endpoint: Option<Spanned<String>>,
    distribution_id: Option<String>,
    max_deletes: Option<Spanned<i64>>,
    max_invalidation_paths: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGate {
    url: Spanned<String>,
    quota: Option<Spanned<i64>>,
    gates: Option<Spanned<i64>>,
    identity_header: Option<Spanned<String>>,
    identity_cookie: Option<Spanned<String>>,
    forward: Option<Spanned<String>>,
    confirm_url: Option<Spanned<String>>,
    ended_url: Option<Spanned<String>>,
    tolerance: Option<Spanned<String>>,
    rate_limit: Option<Spanned<i64>>,
    client_ip_header: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeaderRule {
    #[serde(rename = "for")]
    pattern: Spanned<String>,
    values: Spanned<BTreeMap<String, String>>,
}

/// An item's fields as written, inline or in front matter; checked by `content`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawItem {
    pub sku: Spanned<String>,
    pub title: Spanned<String>,
    pub price: Spanned<PriceText>,
    pub original_price: Option<Spanned<PriceText>>,
    pub stock: Spanned<i64>,
    pub image: Option<Spanned<String>>,
    pub slug: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
}

/// A price as written: an integer, a decimal or a string like `"9.90"`.
/// Kept as decimal text so no floating point rounding touches money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceText(pub String);

impl<'de> Deserialize<'de> for PriceText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PriceText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a price such as 9.90 or \"9.90\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PriceText, E> {
                check_price(&v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PriceText, E> {
                check_price(&v.to_string())
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<PriceText, E> {
                if !v.is_finite() {
                    return Err(E::custom("a price must be a finite number"));
                }
                // Rust prints the shortest text that reads back as the same
                // float, so 9.9 stays "9.9".
                check_price(&v.to_string())
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PriceText, E> {
                check_price(v.trim())
            }
        }
        d.deserialize_any(V)
    }
}

fn check_price<E: de::Error>(s: &str) -> Result<PriceText, E> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(frac) || (s.contains('.') && frac.is_empty()) {
        return Err(E::custom(format!(
            "`{s}` is not a price\nhelp: write a non-negative amount in the sale's currency, like 9.90 or \"9.90\""
        )));
    }
    Ok(PriceText(s.to_string()))
}

/// A point in time with an explicit UTC offset.
#[derive(Debug, Clone, Copy)]
pub struct SaleTime(pub DateTime<FixedOffset>);

impl<'de> Deserialize<'de> for SaleTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SaleTime;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a date and time with a UTC offset, like 2026-12-12T20:00:00+08:00")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SaleTime, E> {
                parse_time(v).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SaleTime, A::Error> {
                // toml hands its native date-times over as a one-entry map.
                let Some((_, text)) = map.next_entry::<String, String>()? else {
                    return Err(de::Error::custom("expected a date and time"));
                };
                parse_time(&text).map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses RFC 3339; a time without an offset is refused with a fix.
pub fn parse_time(text: &str) -> Result<SaleTime, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(SaleTime(t));
    }
    let parsed: Result<toml::value::Datetime, _> = text.parse();
    match parsed {
        Ok(dt) if dt.offset.is_none() && dt.date.is_some() && dt.time.is_some() => Err(format!(
            "`{text}` has no UTC offset, so it means a different moment in every time zone\nhelp: add the offset the sale is announced in, e.g. `{text}+08:00`, or `{text}Z` for UTC"
        )),
        Ok(dt) if dt.time.is_none() => Err(format!(
            "`{text}` is a date without a time\nhelp: write the full moment, e.g. `{text}T20:00:00+08:00`"
        )),
        _ => Err(format!(
            "`{text}` is not an RFC 3339 date and time\nhelp: write it like 2026-12-12T20:00:00+08:00"
        )),
    }
}

impl Config {
    /// Reads and checks `path`. All problems found are reported together.
    pub fn load(path: &Path) -> Result<Config, Diagnostics> {
        let source = std::fs::read_to_string(path).map_err(|e| {
            let d = Diagnostic::in_file(path, format!("cannot read the sale's configuration: {e}"));
            if e.kind() == std::io::ErrorKind::NotFound {
                d.with_help("run this in the sale's directory, pass --config PATH, or create one with `flashsale new DIR`")
            } else {
                d
            }
        })?;
        Self::parse(path, source)
    }

    /// Checks configuration text as if it had been read from `path`.
    pub fn parse(path: &Path, source: String) -> Result<Config, Diagnostics> {
        let raw: RawSite = toml::from_str(&source).map_err(|e| {
            let keys = keys_for_error(&source, &e);
            diag::from_toml(path, &source, &e, keys)
        })?;
        let root = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        // Paths are shown to users: `public`, not `./public`.
        let in_root = |p: &Path| {
            if root == Path::new(".") {
                p.to_path_buf()
            } else {
                root.join(p)
            }
        };
        let mut problems = Diagnostics::default();
        let at = |span: std::ops::Range<usize>, msg: String| {
            Diagnostic::at_span(path, &source, span, msg)
        };

        let name = raw.name.get_ref().clone();
        if name.is_empty()
            || name.len() > 40
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            problems.push(
                at(raw.name.span(), format!("`{name}` cannot be used as the sale's name"))
                    .with_help("the name appears in order URLs: use 1 to 40 lowercase letters, digits and '-', e.g. `name = \"winter-2026\"`; put the display name in `title`"),
            );
        }

        let base_url = raw.base_url.get_ref().clone();
        let base_path = match url_path(&base_url) {
            Some(p) => p,
            None => {
                problems.push(
                    at(raw.base_url.span(), format!("`{base_url}` is not an http(s) URL"))
                        .with_help("write the address the sale is served at, e.g. `base_url = \"https://sale.example.com/\"`"),
                );
                "/".to_string()
            }
        };

        let start = raw.start.get_ref().0;
        let end = raw.end.get_ref().0;
        if end <= start {
            problems.push(
                at(raw.end.span(), "the sale ends before it starts".into()).with_help(format!(
                    "set `end` to a time after `start` ({})",
                    start.to_rfc3339()
                )),
            );
        }

        let theme = raw
            .theme
            .as_ref()
            .map_or(DEFAULT_THEME.to_string(), |t| t.get_ref().clone());
        if let Some(t) = &raw.theme {
            let v = t.get_ref();
            if v.is_empty() || v.contains(['/', '\\']) || v.starts_with('.') {
                problems.push(
                    at(t.span(), format!("`{v}` is not a theme name"))
                        .with_help("name a directory under themes/, or `theme = \"default\"` for the built-in one"),
                );
            } else if v != DEFAULT_THEME && !root.join("themes").join(v).is_dir() {
                problems.push(
                    at(t.span(), format!("theme `{v}` not found: there is no {}", root.join("themes").join(v).display()))
                        .with_help("create that directory, or write `theme = \"default\"` for the built-in theme"),
                );
            }
        }

        let currency = match Currency::parse(raw.currency.get_ref()) {
            Ok(c) => c,
            Err(msg) => {
                problems
                    .push(at(raw.currency.span(), msg).with_help(
                        "write an ISO 4217 code in capitals, e.g. `currency = \"EUR\"`",
                    ));
                Currency::parse("EUR").expect("EUR is a currency")
            }
        };

        let paginate = match &raw.paginate {
            None => 48,
            Some(p) if (1..=10_000).contains(p.get_ref()) => *p.get_ref() as usize,
            Some(p) => {
                problems.push(
                    at(p.span(), format!("`paginate = {}` is out of range", p.get_ref()))
                        .with_help("give the number of items per listing page, 1 to 10000, e.g. `paginate = 48`"),
                );
                48
            }
        };

        let output_dir = match &raw.output_dir {
            None => in_root(Path::new("public")),
            Some(o) => {
                let p = Path::new(o.get_ref());
                if p.is_absolute()
                    || p.components()
                        .any(|c| !matches!(c, std::path::Component::Normal(_)))
                {
                    problems.push(
                        at(o.span(), format!("`{}` cannot be the output directory", o.get_ref()))
                            .with_help("name a directory inside the sale's directory that flashsale may own, e.g. `output_dir = \"public\"`; its old contents are replaced on every build"),
                    );
                }
                in_root(p)
            }
        };

        let items_dir = raw.items_dir.as_ref().map(|d| {
            let p = in_root(Path::new(d.get_ref()));
            if !p.is_dir() {
                problems.push(
                    at(d.span(), format!("items directory `{}` does not exist", p.display()))
                        .with_help("create it with one Markdown file per item, or remove `items_dir` and use [[items]] tables"),
                );
            }
            p
        });
        if raw.items.is_empty() && raw.items_dir.is_none() {
            problems.push(
                Diagnostic::at_span(path, &source, 0..0, "the sale has no items")
                    .with_help("add an [[items]] table (sku, title, price, stock, ...) or `items_dir = \"items\"` with one Markdown file per item"),
            );
        }

        let gate_url = raw
            .gate
            .get_ref()
            .url
            .get_ref()
            .trim_end_matches('/')
            .to_string();
        if url_path(&gate_url).is_none() {
            problems.push(
                at(raw.gate.get_ref().url.span(), format!("`{gate_url}` is not an http(s) URL"))
                    .with_help("write the public address of the order gates, e.g. `url = \"https://gate.example.com\"`"),
            );
        }

        let publish = raw.publish.as_ref().map(|p| {
            let p = p.get_ref();
            let bucket = p.bucket.get_ref().trim().to_string();
            // S3's bucket naming rules, in short.
            let bucket_ok = (3..=63).contains(&bucket.len())
                && bucket
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
                && bucket.as_bytes()[0].is_ascii_alphanumeric();
            if !bucket_ok {
                problems.push(
                    at(p.bucket.span(), format!("`{bucket}` is not an S3 bucket name"))
                        .with_help("bucket names are 3 to 63 lowercase letters, digits, '-' and '.', e.g. `bucket = \"winter-sale-2026\"`"),
                );
            }
            let prefix = p.prefix.as_ref().map_or(String::new(), |s| {
                let v = s.get_ref().trim().trim_start_matches('/');
                if v.contains("..") || v.contains('\\') {
                    problems.push(
                        at(s.span(), format!("`{v}` cannot be a key prefix"))
                            .with_help("write a plain path such as `prefix = \"winter/\"`, or remove it"),
                    );
                }
                match v {
                    "" => String::new(),
                    v if v.ends_with('/') => v.to_string(),
                    v => format!("{v}/"),
                }
            });
            if let Some(e) = &p.endpoint {
                if url_path(e.get_ref()).is_none() {
                    problems.push(
                        at(e.span(), format!("`{}` is not an http(s) URL", e.get_ref()))
                            .with_help("write the S3 endpoint, e.g. `endpoint = \"https://s3.example.com\"`, or remove it for AWS"),
                    );
                }
            }
            let mut count = |v: &Option<Spanned<i64>>, default: usize, key: &str| match v {
                None => default,
                Some(n) if *n.get_ref() >= 1 => *n.get_ref() as usize,
                Some(n) => {
                    problems.push(
                        at(n.span(), format!("`{key} = {}` must be at least 1", n.get_ref()))
                            .with_help(format!("e.g. `{key} = {default}`")),
                    );
                    default
                }
            };
            PublishConfig {
                bucket,
                prefix,
                region: p.region.clone(),
                endpoint: p.endpoint.as_ref().map(|e| e.get_ref().trim_end_matches('/').to_string()),
                distribution_id: p.distribution_id.clone(),
                max_deletes: count(&p.max_deletes, 256, "max_deletes"),
                max_invalidation_paths: count(&p.max_invalidation_paths, 20, "max_invalidation_paths"),
            }
        });

        let gate = {
            let g = raw.gate.get_ref();
            let mut positive =
                |v: &Option<Spanned<i64>>, key: &str, example: &str| -> Option<u32> {
                    let n = v.as_ref()?;
                    match u32::try_from(*n.get_ref()) {
                        Ok(x) if x >= 1 => Some(x),
                        _ => {
                            problems.push(
                                at(
                                    n.span(),
                                    format!(
                                        "`{key} = {}` must be a whole number of at least 1",
                                        n.get_ref()
                                    ),
                                )
                                .with_help(format!("e.g. `{key} = {example}`")),
                            );
                            None
                        }
                    }
                };
            let quota = positive(&g.quota, "quota", "10");
            let gates = positive(&g.gates, "gates", "10").unwrap_or(1);
            let rate_limit = positive(&g.rate_limit, "rate_limit", "5");
            if let (Some(q), Some(_)) = (&g.quota, &g.gates) {
                problems.push(

                    at(q.span(), "set either `quota` (units per gate) or `gates` (stock split evenly), not both".into())
                        .with_help("remove one of them"),
                );
            }
            let identity = match (&g.identity_header, &g.identity_cookie) {
                (Some(_), Some(c)) => {
                    problems.push(
                        at(
                            c.span(),
                            "set either `identity_header` or `identity_cookie`, not both".into(),
                        )
                        .with_help(
                            "a trusted proxy's header, or the shop's signed cookie: choose one",
                        ),
                    );
                    Identity::Cookie(c.get_ref().clone())
                }
                (_, Some(c)) => Identity::Cookie(c.get_ref().clone()),
                (Some(h), None) => Identity::Header(h.get_ref().clone()),
                (None, None) => Identity::Header("X-User-Id".to_string()),
            };
            let mut url_field = |v: &Option<Spanned<String>>, key: &str| -> Option<String> {
                let u = v.as_ref()?;
                if url_path(u.get_ref()).is_none() {
                    problems.push(
                        at(u.span(), format!("`{}` is not an http(s) URL", u.get_ref())).with_help(
                            format!(
                            "write a full address, e.g. `{key} = \"https://shop.example.com/...\"`"
                        ),
                        ),
                    );
                }
                Some(u.get_ref().clone())
            };
            let forward = url_field(&g.forward, "forward");
            let confirm_url = url_field(&g.confirm_url, "confirm_url");
            let ended_url = url_field(&g.ended_url, "ended_url")
                .unwrap_or_else(|| format!("{}/ended.html", base_url.trim_end_matches('/')));
            let tolerance_ms = match &g.tolerance {
                None => 2_000,
                Some(t) => match parse_millis(t.get_ref()) {
                    Some(ms) if ms <= 60_000 => ms as i64,
                    _ => {
                        problems.push(
                            at(t.span(), format!("`{}` is not a clock tolerance", t.get_ref()))
                                .with_help("write a short duration, at most a minute, e.g. `tolerance = \"2s\"` or `\"500ms\"`"),
                        );
                        2_000
                    }
                },
            };
            GateConfig {
                url: gate_url.clone(),
                quota,
                gates,
                identity,
                forward,
                confirm_url,
                ended_url,
                tolerance_ms,
                rate_limit,
                client_ip_header: g.client_ip_header.as_ref().map(|h| h.get_ref().clone()),
            }
        };

        let mut headers = Vec::new();
        for rule in &raw.headers {
            let r = rule.get_ref();
            match HeaderRule::new(r.pattern.get_ref(), r.values.get_ref()) {
                Ok(rule) => headers.push(rule),
                Err((on_pattern, msg, help)) => {
                    let span = if on_pattern {
                        r.pattern.span()
                    } else {
                        r.values.span()
                    };
                    problems.push(at(span, msg).with_help(help));
                }
            }
        }

        problems.into_result(Config {
            path: path.to_path_buf(),
            root,
            name,
            title: raw.title.unwrap_or_else(|| raw.name.into_inner()),
            base_url,
            base_path,
            start,
            end,
            theme,
            currency,
            language: raw.language.unwrap_or_else(|| "en".into()),
            paginate,
            output_dir,
            items_dir,
            gate,

            publish,

            headers,
            inline_items: raw.items,
            source,
        })
    }

    /// A path as this configuration writes it (`items/a.md`), given the
    /// absolute path a file watcher reports; `None` if it is outside the sale.
    pub fn local_path(&self, absolute: &Path) -> Option<PathBuf> {
        let root = std::path::absolute(&self.root).ok()?;
        let rel = absolute.strip_prefix(&root).ok()?;
        Some(if self.root == Path::new(".") {
            rel.to_path_buf()
        } else {
            self.root.join(rel)
        })
    }

    /// A diagnostic at a byte range of `site.toml`.
    pub fn diagnostic(
        &self,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::at_span(&self.path, &self.source, span, message)
    }
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
        Some(h) if h.starts_with("[[headers]]") => HEADER_KEYS,
        Some(h) if h.starts_with("[gate]") => GATE_KEYS,
        Some(h) if h.starts_with("[publish]") => PUBLISH_KEYS,
        _ => SITE_KEYS,
    }
}

/// `500ms`, `2s`, `1m` as milliseconds.
pub fn parse_millis(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let n: u64 = t[..split].parse().ok()?;
    match &t[split..] {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        _ => None,
    }
}

/// The path of an http(s) URL, normalised to start and end with `/`.
fn url_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if host.is_empty() || host.contains([' ', '?', '#']) || path.contains(['?', '#', ' ']) {
        return None;
    }
    let mut p = path.trim_end_matches('/').to_string();
    p.push('/');
    if !p.starts_with('/') {
        p.insert(0, '/');
    }
    Some(p)
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
    fn base_path_is_normalised() {
        assert_eq!(url_path("https://a.b").as_deref(), Some("/"));
        assert_eq!(url_path("https://a.b/x/y").as_deref(), Some("/x/y/"));
        assert_eq!(url_path("ftp://a.b"), None);
    }
}

//! `check`: everything that can be known wrong before a sale goes live.
//!
//! Builds into a scratch directory (the real output is not touched), then looks
//! at the result: links and images that go nowhere, item pages over the
//! one-round-trip budget, the toggle's size, and secrets that must never be
//! published.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use memchr::memmem;
use url::Url;

use crate::config::headers::Class;
use crate::sale::MAX_TOGGLE_BYTES;
use crate::site::{self, Site};

/// Largest gzip-compressed item page: what fits the first TCP round trip
/// (an initial congestion window of 10 segments).
pub(crate) const PAGE_BUDGET_GZIP: usize = 14 * 1024;

/// Most a phone may download for one page: HTML, CSS and JS as served
/// (gzip) and the photo candidates it picks. A camera photo made responsive
/// fits many times over (≈ 30 KiB at 1080 px WebP); the raw photo (MBs) never.
pub(crate) const PHONE_BUDGET: usize = 200 * 1024;

/// The phone the weight is measured for: Lighthouse's mobile profile (a
/// Moto G Power: 412 CSS px wide, device pixel ratio 2.625).
pub(crate) const PHONE_WIDTH: f64 = 412.0;
pub(crate) const PHONE_DPR: f64 = 2.625;

/// How wide the default theme shows a photo on that phone, in CSS px: the
/// item page's (the width less `main`'s padding) and a listing card's (less
/// the card's padding and border too).
const ITEM_SLOT: f64 = PHONE_WIDTH - 32.0;
const CARD_SLOT: f64 = PHONE_WIDTH - 58.0;

/// Listing cards a phone loads at once (the rest are `loading="lazy"`).
const EAGER_CARDS: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Severity {
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub(crate) severity: Severity,
    /// Already names the file (and line where there is one).
    pub(crate) message: String,
}

/// A value that must never appear in published files, and what to call it.
/// The value itself is never printed.
#[derive(Clone)]
pub(crate) struct Secret {
    pub(crate) name: String,
    value: Vec<u8>,
}

impl Secret {
    pub(crate) fn new(name: impl Into<String>, value: impl AsRef<[u8]>) -> Option<Secret> {
        let value = value.as_ref().trim_ascii().to_vec();
        // Short values would match by accident and say nothing.
        (value.len() >= 8).then(|| Secret {
            name: name.into(),
            value,
        })
    }

    /// The gate key and AWS credentials found in the environment.
    pub(crate) fn from_env() -> Vec<Secret> {
        [
            "FLASHSALE_GATE_KEY",
            "FLASHSALE_COOKIE_KEY",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_ACCESS_KEY_ID",
        ]
        .iter()
        .filter_map(|v| {
            std::env::var(v)
                .ok()
                .and_then(|val| Secret::new(format!("the value of ${v}"), val))
        })
        .collect()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({}, <redacted>)", self.name)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) findings: Vec<Finding>,
    pub(crate) pages: usize,
    /// The heaviest item page: (path, gzip bytes).
    pub(crate) heaviest: Option<(String, usize)>,
    /// The page a phone downloads most for: (path, bytes).
    pub(crate) phone_heaviest: Option<(String, usize)>,
    pub(crate) toggle_bytes: usize,
}

impl Report {
    pub(crate) fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    fn error(&mut self, message: String) {
        self.findings.push(Finding {
            severity: Severity::Error,
            message,
        });
    }

    fn warn(&mut self, message: String) {
        self.findings.push(Finding {
            severity: Severity::Warning,
            message,
        });
    }
}

/// Checks `site` (already loaded, which validated config, content and
/// templates) by building it into a scratch directory; the configured output
/// directory, if it exists, is scanned for `secrets` as well.
pub(crate) fn check(site: &mut Site, secrets: &[Secret]) -> Result<Report, site::Error> {
    let scratch = std::env::temp_dir().join(format!(
        "flashsale-check-{}-{}",
        std::process::id(),
        crate::util::random::hex(4)
    ));
    let result = site
        .build_into(&scratch)
        .map(|_| inspect(site, &scratch, secrets));
    let _ = std::fs::remove_dir_all(&scratch);
    let mut report = result?;
    let published = site.config.output_dir.clone();
    if published.is_dir() {
        scan_secrets(&published, secrets, &mut report);
    }
    Ok(report)
}

fn inspect(site: &Site, dir: &Path, secrets: &[Secret]) -> Report {
    let mut report = Report::default();
    let c = &site.config;
    if c.base_url.starts_with("http://") {
        report.warn(format!(
            "{}: base_url is http://; browsers and CDNs expect https:// for a shop",
            c.path.display()
        ));
    }
    for edition in &site.editions {
        missing_messages(site, &edition.catalogue, &mut report);
    }
    missing_translations(site, &mut report);
    if c.gate.url.starts_with("http://") {
        report.warn(format!(
            "{}: [gate] url is http://; orders would travel unencrypted",
            c.path.display()
        ));
    }
    let files: HashSet<&str> = site
        .manifest
        .files
        .iter()
        .map(|e| e.path.as_str())
        .collect();
    let shown = |p: &str| c.output_dir.join(p).display().to_string();
    let mut weigher = Weigher::new(site);
    for entry in &site.manifest.files {
        let bytes = match std::fs::read(dir.join(&entry.path)) {
            Ok(b) => b,
            Err(e) => {
                report.error(format!(
                    "{}: cannot read the built file: {e}",
                    shown(&entry.path)
                ));
                continue;
            }
        };
        match entry.class {
            Class::Toggle => {
                report.toggle_bytes = bytes.len();
                if bytes.len() > MAX_TOGGLE_BYTES {
                    report.error(format!(
                        "{}: the toggle is {} bytes, over its {MAX_TOGGLE_BYTES}-byte budget; shorten [gate] url or the sale's name",
                        shown(&entry.path),
                        bytes.len()
                    ));
                }
            }
            Class::Page => {
                report.pages += 1;
                let html = String::from_utf8_lossy(&bytes);
                for (line, target) in links(&html) {
                    if !resolves(&c.base_path, &entry.path, target, &files) {
                        report.error(format!(
                            "{}:{line}: `{target}` points to nothing in the sale{}",
                            shown(&entry.path),
                            source_hint(site, &entry.path)
                        ));
                    }
                }
                let phone = weigher.page(&entry.path, &bytes).first_view;
                if report
                    .phone_heaviest
                    .as_ref()
                    .is_none_or(|(_, s)| phone > *s)
                {
                    report.phone_heaviest = Some((entry.path.clone(), phone));
                }
                if phone > PHONE_BUDGET {
                    report.error(format!(
                        "{}: a phone downloads {} KiB for this page (HTML, CSS, JS and the images it picks), over the {} KiB budget{}; use JPEG or PNG photos (made responsive) instead of large GIF, WebP or remote images",
                        shown(&entry.path),
                        phone / 1024,
                        PHONE_BUDGET / 1024,
                        source_hint(site, &entry.path)
                    ));
                }
                if site.item_at(&entry.path).is_some() {
                    let size = gzip_len(&bytes);
                    if report.heaviest.as_ref().is_none_or(|(_, s)| size > *s) {
                        report.heaviest = Some((entry.path.clone(), size));
                    }
                    if size > PAGE_BUDGET_GZIP {
                        report.error(format!(
                            "{}: {size} bytes gzip-compressed, over the {PAGE_BUDGET_GZIP}-byte budget (one round trip){}; shorten the description or move images out of it",
                            shown(&entry.path),
                            source_hint(site, &entry.path)
                        ));
                    }
                }
            }
            Class::Asset | Class::Other => {}
        }
    }
    small_photos(site, &mut report);
    scan_secrets(dir, secrets, &mut report);
    // Findings about the scratch build must name the real output directory.
    let scratch = dir.display().to_string();
    let real = c.output_dir.display().to_string();
    for f in &mut report.findings {
        f.message = f.message.replace(&scratch, &real);
    }
    report
}

/// Messages a language's catalogues lack (said in English).
fn missing_messages(site: &Site, catalogue: &crate::site::i18n::Catalogue, report: &mut Report) {
    if catalogue.missing.is_empty() {
        return;
    }
    let lang = &catalogue.language;
    let all = catalogue.missing.len() == catalogue.keys().count();
    report.warn(if all {
        format!(
            "{}: no message catalogue for language `{lang}`: the pages speak English; add i18n/{lang}.toml (start from a copy of i18n/en.toml, which `flashsale new` writes)",
            site.config.path.display()
        )
    } else {
        format!(
            "i18n/{lang}.toml: {} message{} missing, said in English: {}; add {} to i18n/{lang}.toml",
            catalogue.missing.len(),
            if catalogue.missing.len() == 1 { "" } else { "s" },
            catalogue.missing.join(", "),
            if catalogue.missing.len() == 1 { "it" } else { "them" }
        )
    });
}

/// Most items named one by one when they lack a language's text.
const UNTRANSLATED_NAMED: usize = 10;

/// Items without their own words in one of the sale's other languages:
/// that language's page shows the default language's title and description.
fn missing_translations(site: &Site, report: &mut Report) {
    let c = &site.config;
    for lang in &c.languages[1..] {
        let missing: Vec<&site::content::Item> = site
            .items
            .iter()
            .filter(|i| !i.is_translated(c, lang))
            .collect();
        for item in missing.iter().take(UNTRANSLATED_NAMED) {
            let fix = match item.file == c.path {
                true => format!(
                    "add a `[items.translations.{lang}]` table with `title` and `description` after this item's [[items]] table"
                ),
                false => format!(
                    "add {} with front matter `title = \"…\"` and the description after it",
                    site::content::translation_file(&item.file, lang).display()
                ),
            };
            report.warn(format!(
                "{}:{}: item `{}` has no {lang} text: its {lang} page shows the {} title and description; {fix}",
                item.file.display(),
                item.at.0,
                item.sku,
                c.language
            ));
        }
        if missing.len() > UNTRANSLATED_NAMED {
            report.warn(format!(
                "{} more items have no {lang} text",
                missing.len() - UNTRANSLATED_NAMED
            ));
        }
    }
}

/// What a phone downloads for one page: the first view (nothing cached) and
/// a repeat view (fingerprinted CSS, JS and images kept: only the HTML).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct PageWeight {
    pub(crate) first_view: usize,
    pub(crate) repeat_view: usize,
}

/// Weighs pages as a phone (`PHONE_WIDTH` at `PHONE_DPR`) downloads them:
/// the HTML and the stylesheets and scripts it links, gzip as served, and
/// the image each eager photo slot picks (an item page's photo; a
/// listing's first cards).
pub(crate) struct Weigher<'a> {
    site: &'a Site,
    /// An asset by output path.
    assets: std::collections::HashMap<&'a str, &'a crate::site::assets::Asset>,
    /// Gzip sizes of the stylesheets and scripts weighed so far.
    served: std::collections::HashMap<String, usize>,
}

impl<'a> Weigher<'a> {
    pub(crate) fn new(site: &'a Site) -> Weigher<'a> {
        Weigher {
            site,
            assets: site.assets.all().map(|a| (a.output.as_str(), a)).collect(),
            served: Default::default(),
        }
    }

    /// The weight of the page at `path` whose HTML is `html`.
    pub(crate) fn page(&mut self, path: &str, html: &[u8]) -> PageWeight {
        let site = self.site;
        let base = &site.config.base_path;
        let page = gzip_len(html);
        let mut total = page;
        let text = String::from_utf8_lossy(html);
        for (_, target) in links(&text) {
            let Some(file) = target.strip_prefix(base.as_str()) else {
                continue;
            };
            if !(file.ends_with(".css") || file.ends_with(".js")) {
                continue;
            }
            let assets = &self.assets;
            total += *self.served.entry(file.to_string()).or_insert_with(|| {
                assets
                    .get(file)
                    .and_then(|a| a.bytes().ok())
                    .map_or(0, |b| gzip_len(&b))
            });
        }
        let image = |i: &site::content::Item, slot: f64| -> usize {
            let Some(logical) = &i.image else { return 0 };
            match site.assets.responsive(logical) {
                Some(r) => r.pick(slot, PHONE_DPR).map_or(0, |(_, n)| n),
                None => site.assets.get(logical).map_or(0, |a| a.len() as usize),
            }
        };
        if let Some(i) = site.item_at(path) {
            total += image(&site.items[i], ITEM_SLOT);
        } else if let Some(n) = site.listing_at(path) {
            let per = site.config.paginate;
            total += site
                .items
                .iter()
                .skip((n - 1) * per)
                .take(per.min(EAGER_CARDS))
                .map(|i| image(i, CARD_SLOT))
                .sum::<usize>();
        }
        PageWeight {
            first_view: total,
            repeat_view: page,
        }
    }
}

/// The heaviest item page for a phone, rendered in memory: its path and weight.
pub(crate) fn heaviest_item_page(site: &Site) -> Result<Option<(String, PageWeight)>, site::Error> {
    let mut weigher = Weigher::new(site);
    let mut heaviest: Option<(String, PageWeight)> = None;
    let pages = (0..site.editions.len())
        .flat_map(|e| (0..site.items.len()).map(move |i| site::Product::Item(e, i)));
    for page in pages {
        let html = site.render(&page)?;
        let path = site.path_of(&page);
        let w = weigher.page(&path, &html);
        if heaviest
            .as_ref()
            .is_none_or(|(_, h)| w.first_view > h.first_view)
        {
            heaviest = Some((path, w));
        }
    }
    Ok(heaviest)
}

/// Photos narrower than the phone shows them: blurry on the sale's best screens.
fn small_photos(site: &Site, report: &mut Report) {
    let need = (ITEM_SLOT * PHONE_DPR).ceil() as u32;
    let mut seen = HashSet::new();
    for item in &site.items {
        let Some(logical) = &item.image else { continue };
        let Some(r) = site.assets.responsive(logical) else {
            continue;
        };
        if r.size.0 < need && seen.insert(logical.clone()) {
            report.warn(format!(
                "static/{logical}: {} px wide, but phones show it {need} px wide (item `{}`); it will look blurry: use a photo at least {need} px wide",
                r.size.0, item.sku
            ));
        }
    }
}

fn source_hint(site: &Site, output: &str) -> String {
    site.item_at(output).map_or(String::new(), |i| {
        let item = &site.items[i];
        format!(" (item `{}` in {})", item.sku, item.file.display())
    })
}

fn gzip_len(bytes: &[u8]) -> usize {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(bytes).expect("writing to memory");
    gz.finish().expect("writing to memory").len()
}

/// `href`, `src` and `action` values with their 1-based line.
pub(crate) fn links(html: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    for attr in [" href=", " src=", " action="] {
        let mut from = 0;
        while let Some(i) = html[from..].find(attr) {
            let at = from + i + attr.len();
            from = at;
            let Some(q) = html[at..]
                .chars()
                .next()
                .filter(|c| *c == '"' || *c == '\'')
            else {
                continue;
            };
            let Some(len) = html[at + 1..].find(q) else {
                continue;
            };
            let value = &html[at + 1..at + 1 + len];
            let line = html[..at].matches('\n').count() + 1;
            out.push((line, value));
        }
    }
    out.sort();
    out
}

/// Whether an internal link from `page` reaches an output file. External
/// links, fragments and empty form actions (filled in at the sale's start) pass.
fn resolves(base_path: &str, page: &str, target: &str, files: &HashSet<&str>) -> bool {
    // Resolved as a browser would, from the page's URL on a stand-in origin.
    let here =
        Url::parse("https://sale.invalid/").and_then(|o| o.join(&format!("{base_path}{page}")));
    let Ok(to) = here.and_then(|h| h.join(&unescape_html(target.trim())).map(|to| (h, to))) else {
        return false;
    };
    let (here, to) = to;
    // Another site, mailto:, data:, javascript:: not ours to check.
    if to.origin() != here.origin() {
        return true;
    }
    let path = percent_encoding::percent_decode_str(to.path()).decode_utf8_lossy();
    let inside = path
        .strip_prefix(base_path)
        .or_else(|| (path == base_path.trim_end_matches('/')).then_some(""));
    let Some(rel) = inside else {
        return false;
    };
    let file = if rel.is_empty() || rel.ends_with('/') {
        format!("{rel}index.html")
    } else {
        rel.to_string()
    };
    files.contains(file.as_str())
}

/// The entities an attribute value may hold that matter to a URL.
fn unescape_html(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn scan_secrets(dir: &Path, secrets: &[Secret], report: &mut Report) {
    let finders: Vec<(String, memmem::Finder)> = secrets
        .iter()
        .map(|s| (s.name.clone(), memmem::Finder::new(&s.value).into_owned()))
        .collect();
    let files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    for file in files {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        let line_of = |at: usize| bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
        for (name, finder) in &finders {
            if let Some(at) = finder.find(&bytes) {
                report.error(format!(
                    "{}:{}: contains {name}; it must never be published",
                    file.display(),
                    line_of(at)
                ));
            }
        }
        if let Some(at) = aws_key_id(&bytes) {
            report.error(format!(
                "{}:{}: contains what looks like an AWS access key id; remove it",
                file.display(),
                line_of(at)
            ));
        }
        if let Some(why) = key_material(&file, &bytes) {
            report.error(format!(
                "{}: {why}; it must never be published (keep keys next to site.toml, outside static/)",
                file.display()
            ));
        }
        if let Some(at) = memmem::find(&bytes, b"PRIVATE KEY-----") {
            report.error(format!(
                "{}:{}: contains a private key; remove it",
                file.display(),
                line_of(at)
            ));
        }
    }
}

/// Why a file looks like a key, if it does: named like one, or holding
/// exactly what `flashsale keygen` writes (64 hexadecimal characters).
fn key_material(path: &Path, bytes: &[u8]) -> Option<&'static str> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    let stem_ext = |ext: &str| {
        // Fingerprinted assets keep the extension: gate.0123456789abcdef.key
        name.ends_with(ext)
    };
    if stem_ext(".key") || stem_ext(".pem") {
        return Some("a key file");
    }
    let text = bytes.trim_ascii();
    (text.len() == 64 && text.iter().all(|b| b.is_ascii_hexdigit()))
        .then_some("holds 64 hexadecimal characters, what `flashsale keygen` writes")
}

/// Position of an `AKIA…`/`ASIA…` access key id (20 capitals and digits).
fn aws_key_id(bytes: &[u8]) -> Option<usize> {
    let key_char = |b: &u8| b.is_ascii_uppercase() || b.is_ascii_digit();
    bytes
        .windows(20)
        .position(|w| {
            (w.starts_with(b"AKIA") || w.starts_with(b"ASIA")) && w[4..].iter().all(key_char)
        })
        .filter(|&at| at + 20 == bytes.len() || !key_char(&bytes[at + 20]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_resolve_against_the_output() {
        let files: HashSet<&str> = [
            "index.html",
            "items/a/index.html",
            "assets/x.1.css",
            "sale.js",
        ]
        .into_iter()
        .collect();
        let ok = |t: &str| resolves("/", "items/a/index.html", t, &files);
        assert!(ok("/"));
        assert!(ok("/items/a/"));
        assert!(ok("../a/"));
        assert!(ok("/assets/x.1.css?v=2"));
        assert!(ok("https://elsewhere.example/"));
        assert!(ok(""));
        assert!(!ok("/items/b/"));
        assert!(!ok("../../../etc/passwd"));
        assert!(!ok("/missing.png"));
        let sub = |t: &str| resolves("/shop/", "index.html", t, &files);
        assert!(sub("/shop/items/a/"));
        assert!(!sub("/items/a/"));
    }

    #[test]
    fn finds_links_with_lines() {
        let html = "<a href=\"/a/\">\n<img src='/b.png'>";
        assert_eq!(links(html), vec![(1, "/a/"), (2, "/b.png")]);
    }

    #[test]
    fn finds_aws_key_ids() {
        assert_eq!(aws_key_id(b"x AKIAIOSFODNN7EXAMPLE y"), Some(2));
        assert_eq!(aws_key_id(b"AKIAshort"), None);
        assert!(Secret::new("k", "short").is_none());
    }
}

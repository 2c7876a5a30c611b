//! Templates: Tera set up once with the site's extra functions, and the values
//! each kind of page is rendered with.
//!
//! Template errors are turned into diagnostics that name the template file and,
//! where Tera tells or the source shows it, the line.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use pulldown_cmark::{html, Options, Parser};
use serde::Serialize;
use tera::{Context, Tera, Value};

use crate::config::Config;
use crate::site::assets::{Assets, Responsive};
use crate::site::content::Item;
use crate::site::i18n::Catalogue;
use crate::site::theme::Theme;
use crate::util::diag::{self, Diagnostic};

/// Compiled templates plus where each came from.
pub(crate) struct Templates {
    tera: Tera,
    origins: HashMap<String, (PathBuf, String)>,
}

impl Templates {
    pub(crate) fn new(
        theme: &Theme,
        assets: Arc<Assets>,
        catalogue: Arc<Catalogue>,
    ) -> Result<Templates, Diagnostic> {
        let mut tera = Tera::default();
        tera.autoescape_on(vec![".html"]);
        tera.set_escape_fn(escape_html);
        let origins: HashMap<String, (PathBuf, String)> = theme
            .templates
            .iter()
            .map(|t| (t.name.clone(), (t.origin.clone(), t.text.clone())))
            .collect();
        let all = theme
            .templates
            .iter()
            .map(|t| (t.name.as_str(), t.text.as_str()));
        if let Err(e) = tera.add_raw_templates(all) {
            // "Failed to parse 'x.html'" or "Template 'x.html' is inheriting from ...".
            let name = quoted(&chain(&e)).unwrap_or_else(|| "base.html".to_string());
            return Err(template_error(&origins, &name, &e));
        }
        tera.register_function("asset", AssetUrl(assets));
        tera.register_function("t", Translate(catalogue.clone(), false));
        tera.register_function("t_html", Translate(catalogue, true));
        tera.register_filter("json_ld", json_ld);
        Ok(Templates { tera, origins })
    }

    pub(crate) fn render(&self, name: &str, ctx: &Context) -> Result<String, Diagnostic> {
        self.tera
            .render(name, ctx)
            .map_err(|e| template_error(&self.origins, name, &e))
    }
}

pub(crate) use crate::util::html::escape as escape_html;

/// `asset(path="style.css")`: the fingerprinted URL of a static file.
struct AssetUrl(Arc<Assets>);

impl tera::Function for AssetUrl {
    fn call(&self, args: &HashMap<String, Value>) -> tera::Result<Value> {
        let path = args.get("path").and_then(Value::as_str).ok_or_else(|| {
            tera::Error::msg("asset() needs a path, e.g. asset(path=\"style.css\")")
        })?;
        match self.0.url(path) {
            Some(url) => Ok(Value::String(url)),
            None => {
                let known: Vec<&str> = self.0.logical_paths().map(String::as_str).collect();
                let hint = diag::nearest(path, &known)
                    .map_or(String::new(), |n| format!("; did you mean `{n}`?"));
                Err(tera::Error::msg(format!(
                    "asset `{path}` is not a static file{hint} (static files: {})",
                    known.join(", ")
                )))
            }
        }
    }

    fn is_safe(&self) -> bool {
        true
    }
}

/// `t(key="buy_now")`, `t(key="stock_line", count=3)`: a message of the
/// sale's language (`site::i18n`), its `{name}`s filled from the other
/// arguments — text, escaped by the template. `t_html(key="…_html", …)`:
/// a message that holds markup, its arguments escaped unless their name
/// ends in `_html`; not escaped again.
struct Translate(Arc<Catalogue>, bool);

impl tera::Function for Translate {
    fn call(&self, args: &HashMap<String, Value>) -> tera::Result<Value> {
        let html = self.1;
        let key = args
            .get("key")
            .and_then(Value::as_str)
            .ok_or_else(|| tera::Error::msg("t() needs a key, e.g. t(key=\"buy_now\")"))?;
        if html != key.ends_with("_html") {
            return Err(tera::Error::msg(if html {
                format!("t_html() is for keys ending in `_html`: use t(key=\"{key}\")")
            } else {
                format!("`{key}` holds markup: use t_html(key=\"{key}\") | safe")
            }));
        }
        let count = args.get("count").and_then(Value::as_u64);
        let arg = |name: &str| -> Option<String> {
            let v = args.get(name)?;
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some(if html && !name.ends_with("_html") {
                escape_html(&text)
            } else {
                text
            })
        };
        self.0.text(key, count, arg).map(Value::String).ok_or_else(|| {
            let known: Vec<&str> = self.0.keys().collect();
            let hint = diag::nearest(key, &known)
                .map_or(String::new(), |n| format!("; did you mean `{n}`?"));
            tera::Error::msg(format!(
                "no message `{key}` in the {} catalogue nor the English one{hint} (add it to i18n/{}.toml)",
                self.0.language, self.0.language
            ))
        })
    }

    fn is_safe(&self) -> bool {
        self.1
    }
}

fn chain(e: &tera::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push('\n');
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn quoted(s: &str) -> Option<String> {
    let start = s.find('\'')? + 1;
    let len = s[start..].find('\'')?;
    Some(s[start..start + len].to_string())
}

/// Finds file and line for a Tera error as best the error allows.
fn template_error(
    origins: &HashMap<String, (PathBuf, String)>,
    rendering: &str,
    e: &tera::Error,
) -> Diagnostic {
    let text = chain(e);
    // Errors "while rendering 'x'" or "(error happened in 'x')" name the template at fault.
    let name = text
        .rsplit("error happened in '")
        .next()
        .filter(|_| text.contains("error happened in '"))
        .and_then(|s| s.split('\'').next())
        .or_else(|| {
            text.split("while rendering '")
                .nth(1)
                .and_then(|s| s.split('\'').next())
        })
        .unwrap_or(rendering)
        .to_string();
    let Some((origin, src)) = origins.get(&name) else {
        return Diagnostic::in_file(&PathBuf::from(&name), one_line(&text));
    };
    // Syntax errors carry " --> line:col" from the parser.
    if let Some(pos) = text.find(" --> ") {
        let loc = text[pos + 5..].split_whitespace().next().unwrap_or("");
        if let Some((l, c)) = loc.split_once(':') {
            if let (Ok(line), Ok(col)) = (l.parse::<usize>(), c.parse::<usize>()) {
                let expected = text
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("= "))
                    .unwrap_or("syntax error");
                return Diagnostic::at_line(origin, src, line, col, format!("template syntax error: {expected}"))
                    .with_help("check the {{ }} and {% %} tags on this line; see https://keats.github.io/tera/docs/");
            }
        }
    }
    let message = text
        .lines()
        .rfind(|l| !l.starts_with("Failed to render"))
        .unwrap_or(&text)
        .to_string();
    // Render errors name a variable or function; point at its first use.
    let needle = message
        .split('`')
        .nth(1)
        .map(|n| n.split(['.', '[', '(']).next().unwrap_or(n).to_string());
    let found = needle.as_deref().and_then(|n| {
        src.lines().enumerate().find_map(|(i, l)| {
            let col = l.find(n)?;
            let before = &l[..col];
            (before.contains("{{") || before.contains("{%"))
                .then_some((i + 1, l[..col].chars().count() + 1))
        })
    });
    let help = if message.contains("not found in context") {
        "use a variable the page provides (see the theme's templates), or guard it with {% if x is defined %}"
    } else if message.contains("asset `") {
        "put the file in static/ or fix the path"
    } else {
        "see https://keats.github.io/tera/docs/ for template syntax"
    };
    match found {
        Some((line, col)) => Diagnostic::at_line(origin, src, line, col, message).with_help(help),
        None => Diagnostic::in_file(origin, message).with_help(help),
    }
}

fn one_line(s: &str) -> String {
    s.lines().collect::<Vec<_>>().join(": ")
}

/// A value as JSON that is safe inside `<script type="application/ld+json">`:
/// `<`, `>` and `&` written as `\u003c`, `\u003e`, `\u0026` (the same
/// characters to a JSON reader; never `</script>` or an entity to HTML).
/// Use it with `| safe`.
fn json_ld(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    let text = serde_json::to_string(value).map_err(|e| tera::Error::msg(e.to_string()))?;
    Ok(Value::String(
        text.replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026"),
    ))
}

/// Longest meta description: what search results show.
const DESCRIPTION_CHARS: usize = 155;

/// A Markdown description as one line of plain text for `<meta
/// name="description">` and sharing cards: markup dropped, whitespace
/// collapsed, cut at a word boundary with `…` past [`DESCRIPTION_CHARS`].
pub(crate) fn plain_summary(md: &str) -> String {
    use pulldown_cmark::{Event, Tag, TagEnd};
    // Paragraphs, headings and list items, in order; tables and code blocks
    // say little in a search result and are left out.
    let mut blocks: Vec<(bool, String)> = Vec::new();
    let (mut current, mut in_item, mut skip) = (String::new(), false, 0u32);
    for event in Parser::new_ext(md, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH) {
        match event {
            Event::Start(Tag::Table(_) | Tag::CodeBlock(_)) => skip += 1,
            Event::End(TagEnd::Table | TagEnd::CodeBlock) => skip = skip.saturating_sub(1),
            Event::Start(Tag::Item) => in_item = true,
            Event::Text(t) | Event::Code(t) if skip == 0 => current.push_str(&t),
            Event::SoftBreak | Event::HardBreak if skip == 0 => current.push(' '),
            Event::End(TagEnd::Paragraph | TagEnd::Heading(_) | TagEnd::Item) if skip == 0 => {
                let text = current.split_whitespace().collect::<Vec<_>>().join(" ");
                if !text.is_empty() {
                    blocks.push((in_item, text));
                }
                current.clear();
                if matches!(event, Event::End(TagEnd::Item)) {
                    in_item = false;
                }
            }
            _ => {}
        }
    }
    let mut text = String::new();
    let mut last_item = false;
    for (item, block) in blocks {
        if !text.is_empty() {
            let closed = text.ends_with(['.', '!', '?', ':', ';', '…']);
            text.push_str(match (closed, last_item && item) {
                (true, _) => " ",
                (false, true) => ", ",
                (false, false) => ". ",
            });
        }
        text.push_str(&block);
        last_item = item;
    }
    let mut out = String::new();
    for w in text.split_whitespace() {
        let extra = usize::from(!out.is_empty()) + w.chars().count();
        if out.chars().count() + extra > DESCRIPTION_CHARS - 1 {
            out.push('…');
            return out;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// Markdown to HTML: CommonMark plus tables and strikethrough.
pub(crate) fn markdown(md: &str) -> String {
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_TABLES);
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    let mut out = String::with_capacity(md.len() * 3 / 2);
    html::push_html(&mut out, Parser::new_ext(md, opts));
    out
}

/// The sale's values, available to every template as `site`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SiteContext {
    pub(crate) name: String,
    pub(crate) title: String,
    /// For `<meta name="description">` on the listing and ended pages.
    pub(crate) description: String,
    pub(crate) language: String,
    /// The language's own name for itself (`language_name`: "Deutsch").
    pub(crate) language_name: String,
    /// `ltr` or `rtl`, by the language (the page's `dir`).
    pub(crate) direction: String,
    pub(crate) base_url: String,
    /// `https://host`, for absolute links (canonical URLs).
    pub(crate) origin: String,
    pub(crate) base_path: String,
    pub(crate) currency: String,
    pub(crate) start_iso: String,
    pub(crate) start_ms: i64,
    pub(crate) start_words: String,
    pub(crate) end_iso: String,
    pub(crate) end_ms: i64,
    pub(crate) end_words: String,
    /// One toggle for every language.
    pub(crate) toggle_url: String,
    /// This language's pages: its ended page, its listing.
    pub(crate) ended_url: String,
    pub(crate) home_url: String,
    /// The page runtime's messages in the sale's language (`js_…` keys).
    pub(crate) messages: serde_json::Value,
}

impl SiteContext {
    /// The sale in `catalogue`'s language, its pages under `prefix`.
    pub(crate) fn new(c: &Config, catalogue: &Catalogue, prefix: &str) -> SiteContext {
        let language = catalogue.language.clone();
        let own = crate::config::languages::lookup(&c.translations, &language);
        let title = own
            .and_then(|t| t.title.clone())
            .unwrap_or_else(|| c.title.clone());
        // Another language's description is its own or the catalogue's,
        // never the default language's words.
        let description = match c.language == language {
            true => c.description.clone(),
            false => own.and_then(|t| t.description.clone()),
        };
        let base_path = format!("{}{prefix}", c.base_path);
        SiteContext {
            name: c.name.clone(),
            title: title.clone(),
            description: description.unwrap_or_else(|| {
                catalogue
                    .text("site_description", None, |name| match name {
                        "title" => Some(title.clone()),
                        "start" => Some(catalogue.moment(&c.start)),
                        "end" => Some(catalogue.moment(&c.end)),
                        _ => None,
                    })
                    .unwrap_or_default()
            }),
            language_name: catalogue
                .own("language_name")
                .unwrap_or_else(|| language.clone()),
            language,
            direction: catalogue.direction().to_string(),
            base_url: c.base_url.clone(),
            origin: origin(&c.base_url),
            base_path: c.base_path.clone(),
            currency: c.currency.code.clone(),
            start_iso: c.start.to_rfc3339(),
            start_ms: c.start.timestamp_millis(),
            start_words: catalogue.moment(&c.start),
            end_iso: c.end.to_rfc3339(),
            end_ms: c.end.timestamp_millis(),
            end_words: catalogue.moment(&c.end),
            toggle_url: format!("{}sale.js", c.base_path),
            ended_url: format!("{base_path}ended.html"),
            home_url: base_path,
            messages: serde_json::to_value(catalogue.runtime()).unwrap_or_default(),
        }
    }
}

fn origin(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    url[..end].to_string()
}

/// What listings and item pages know about an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ItemSummary {
    pub(crate) sku: String,
    pub(crate) slug: String,
    pub(crate) title: String,
    pub(crate) url: String,
    pub(crate) price: String,
    pub(crate) price_value: String,
    pub(crate) original_price: Option<String>,
    pub(crate) discount_percent: Option<i64>,
    pub(crate) stock: u32,
    pub(crate) image_url: Option<String>,
    /// The image's size, when its file says (pages reserve its box).
    pub(crate) image_width: Option<u32>,
    pub(crate) image_height: Option<u32>,
    /// The image as an absolute URL on `base_url` (sharing cards, structured data).
    pub(crate) image_abs_url: Option<String>,
    /// A photo made responsive (`site::images`): its WebP candidates
    /// (`srcset`), its own format's, and that format's MIME type; `None` for
    /// an SVG, a GIF or an image elsewhere.
    pub(crate) image_webp_srcset: Option<String>,
    pub(crate) image_srcset: Option<String>,
    pub(crate) image_type: Option<String>,
}

impl ItemSummary {
    /// `item` as pages in `site`'s language show it.
    pub(crate) fn new(
        item: &Item,
        config: &Config,
        assets: &Assets,
        site: &SiteContext,
    ) -> ItemSummary {
        let cur = &config.currency;
        let language = &site.language;
        let image_url = item.image.as_ref().map(|i| {
            if i.starts_with("http://") || i.starts_with("https://") {
                i.clone()
            } else {
                assets.url(i).unwrap_or_default()
            }
        });
        let size = item.image.as_ref().and_then(|i| assets.size(i));
        let responsive = item.image.as_ref().and_then(|i| assets.responsive(i));
        // A photo: `src` is its own format at about 800 px (browsers without
        // srcset), sharing cards take its widest made width, not the original.
        let image_url = match responsive {
            Some(r) => r
                .fallback
                .iter()
                .rev()
                .find(|(w, _)| *w <= 800)
                .or(r.fallback.first())
                .map(|(_, u)| u.clone()),
            None => image_url,
        };
        let shared = responsive
            .and_then(|r| r.fallback.last())
            .map(|(_, u)| u.clone())
            .or_else(|| image_url.clone());
        let image_abs_url = shared.as_ref().map(|u| {
            if u.starts_with('/') {
                format!("{}{u}", origin(&config.base_url))
            } else {
                u.clone()
            }
        });
        ItemSummary {
            sku: item.sku.clone(),
            slug: item.slug.clone(),
            title: item.title_in(language).to_string(),
            url: format!("{}items/{}/", site.home_url, item.slug),
            price: cur.format(item.price, language),
            price_value: cur.plain(item.price),
            original_price: item.original_price.map(|m| cur.format(m, language)),
            discount_percent: item.original_price.map(|o| {
                // Rounded down: never promise more off than there is.
                100 - (item.price.0 * 100 + o.0 - 1) / o.0
            }),
            stock: item.stock,
            image_url,
            image_width: size.map(|s| s.0),
            image_height: size.map(|s| s.1),
            image_abs_url,
            image_webp_srcset: responsive.map(|r| Responsive::srcset(&r.webp)),
            image_srcset: responsive.map(|r| Responsive::srcset(&r.fallback)),
            image_type: responsive.map(|r| r.fallback_type.to_string()),
        }
    }
}

/// What an item page alone carries: its description for search results and
/// sharing, and schema.org `Product` data (rendered with the `json_ld` filter).
pub(crate) fn item_page_values(
    item: &Item,
    summary: &ItemSummary,
    config: &Config,
    catalogue: &Catalogue,
    site: &SiteContext,
) -> (String, serde_json::Value) {
    let mut description = plain_summary(item.description_in(&site.language));
    if description.is_empty() {
        description = catalogue
            .text("item_description", None, |name| match name {
                "item" => Some(summary.title.clone()),
                "price" => Some(summary.price.clone()),
                "title" => Some(site.title.clone()),
                "start" => Some(catalogue.moment(&config.start)),
                _ => None,
            })
            .unwrap_or_default();
    }
    let url = format!("{}{}", origin(&config.base_url), summary.url);
    let mut offer = serde_json::json!({
        "@type": "Offer",
        "url": url,
        "price": summary.price_value,
        "priceCurrency": config.currency.code,
        // A static page: it describes the sale, not the moment (the toggle
        // switches the page, never its data). Before the start: a pre-order.
        "availability": "https://schema.org/PreOrder",
        "availabilityStarts": config.start.to_rfc3339(),
        "availabilityEnds": config.end.to_rfc3339(),
        "priceValidUntil": config.end.format("%Y-%m-%d").to_string(),
        "inventoryLevel": {"@type": "QuantitativeValue", "value": summary.stock},
    });
    if let Some(max) = item.original_price {
        offer["priceSpecification"] = serde_json::json!({
            "@type": "UnitPriceSpecification",
            "priceType": "https://schema.org/StrikethroughPrice",
            "price": config.currency.plain(max),
            "priceCurrency": config.currency.code,
        });
    }
    let mut product = serde_json::json!({
        "@context": "https://schema.org",
        "@type": "Product",
        "name": summary.title,
        "sku": item.sku,
        "description": description,
        "url": url,
        "offers": offer,
    });
    if let Some(img) = &summary.image_abs_url {
        product["image"] = serde_json::json!([img]);
    }
    (description, product)
}

/// The same page in one of the sale's languages: a `hreflang` alternate
/// and an entry of the language switcher.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Alternate {
    /// The BCP 47 tag (`hreflang`, `lang`).
    pub(crate) language: String,
    /// The language's name for itself.
    pub(crate) name: String,
    /// The page's URL path in that language.
    pub(crate) url: String,
    /// Whether this is the page being rendered.
    pub(crate) current: bool,
}

/// One listing page's place among all of them.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Paginator {
    /// 1-based.
    pub(crate) current: usize,
    pub(crate) total: usize,
    pub(crate) prev_url: Option<String>,
    pub(crate) next_url: Option<String>,
}

/// The output path and URL of listing page `n` (1-based).
pub(crate) fn listing_path(n: usize) -> String {
    if n <= 1 {
        "index.html".to_string()
    } else {
        format!("page/{n}/index.html")
    }
}

pub(crate) fn listing_url(base_path: &str, n: usize) -> String {
    if n <= 1 {
        base_path.to_string()
    } else {
        format!("{base_path}page/{n}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_has_tables_and_strikethrough() {
        let html = markdown("| a | b |\n|---|---|\n| 1 | 2 |\n\n~~old~~");
        assert!(html.contains("<table>"), "{html}");
        assert!(html.contains("<del>old</del>"), "{html}");
    }

    fn test_catalogue() -> Arc<Catalogue> {
        Arc::new(Catalogue::new("en", &[]).unwrap())
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let theme = Theme {
            templates: vec![crate::site::theme::TemplateSource {
                name: "item.html".into(),
                text: "<p>\n{{ item.title }\n</p>".into(),
                origin: PathBuf::from("templates/item.html"),
            }],
            statics: vec![],
            catalogues: vec![],
        };
        let err = Templates::new(&theme, Arc::new(Assets::default()), test_catalogue())
            .err()
            .unwrap()
            .to_string();
        assert!(err.starts_with("templates/item.html:2:"), "{err}");
    }

    #[test]
    fn render_errors_point_at_the_variable() {
        let theme = Theme {
            templates: vec![crate::site::theme::TemplateSource {
                name: "item.html".into(),
                text: "<p>\n<b>{{ nope.title }}</b>\n</p>".into(),
                origin: PathBuf::from("templates/item.html"),
            }],
            statics: vec![],
            catalogues: vec![],
        };
        let t = Templates::new(&theme, Arc::new(Assets::default()), test_catalogue()).unwrap();
        let err = t
            .render("item.html", &Context::new())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("templates/item.html:2:"), "{err}");
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn a_description_becomes_one_plain_line() {
        let md = "A light **enamel mug** for `coffee`.\n\n- 350 ml\n- dishwasher safe\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nMade in Portugal";
        assert_eq!(
            plain_summary(md),
            "A light enamel mug for coffee. 350 ml, dishwasher safe. Made in Portugal"
        );
        let long = "word ".repeat(100);
        let cut = plain_summary(&long);
        assert!(
            cut.ends_with("word…") && cut.chars().count() <= DESCRIPTION_CHARS,
            "{cut}"
        );
        assert_eq!(plain_summary(""), "");
    }
}

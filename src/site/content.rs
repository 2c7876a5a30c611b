//! Items of a sale: inline `[[items]]` tables and Markdown files with `+++` front matter.
//!
//! Everything a user wrote is checked here (prices against the currency, unique
//! SKUs and slugs, images that exist) so rendering never meets bad data.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use toml::Spanned;

use crate::config::languages::{ItemText, ITEM_TEXT_KEYS};
use crate::config::money::Money;
use crate::config::{Config, PriceText, RawItem, ITEM_KEYS};
use crate::util::diag::{self, Diagnostic, Diagnostics};

/// One item on sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    /// Where it was written: `site.toml` or its Markdown file.
    pub(crate) file: PathBuf,
    /// Line and column of its `sku` in `file`, for diagnostics.
    pub(crate) at: (usize, usize),
    pub(crate) sku: String,
    pub(crate) slug: String,
    pub(crate) title: String,
    pub(crate) price: Money,
    pub(crate) original_price: Option<Money>,
    pub(crate) stock: u32,
    /// A path under `static/`, or an absolute http(s) URL.
    pub(crate) image: Option<String>,
    /// Markdown; shared, so copying an item is cheap.
    pub(crate) description: std::sync::Arc<str>,
    /// Its words in the sale's other languages, by language tag as the
    /// sale lists it.
    pub(crate) translations: BTreeMap<String, Translation>,
}

/// An item's title and description in another language; what is left out
/// is said in the default language.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Translation {
    pub(crate) title: Option<String>,
    pub(crate) description: Option<std::sync::Arc<str>>,
}

impl Item {
    /// The item page's path under a language's `prefix` (`config::languages`).
    pub(crate) fn output_path_in(&self, prefix: &str) -> String {
        format!("{prefix}items/{}/index.html", self.slug)
    }

    /// Its title in `language`, the default language's when not translated.
    pub(crate) fn title_in(&self, language: &str) -> &str {
        self.translations
            .get(language)
            .and_then(|t| t.title.as_deref())
            .unwrap_or(&self.title)
    }

    /// Its Markdown description in `language`, the default's when not translated.
    pub(crate) fn description_in(&self, language: &str) -> &str {
        self.translations
            .get(language)
            .and_then(|t| t.description.as_deref())
            .unwrap_or(&self.description)
    }

    /// Whether it has its own words in `language` (the default always has).
    pub(crate) fn is_translated(&self, config: &Config, language: &str) -> bool {
        config.language == language
            || self
                .translations
                .get(language)
                .is_some_and(|t| t.title.is_some() || t.description.is_some())
    }
}

/// Reads every item: inline ones first in file order, then `items_dir` by file name.
/// `static_files` holds the logical paths of static files, to check images.
pub(crate) fn load(
    config: &Config,
    static_files: &HashSet<String>,
) -> Result<Vec<Item>, Diagnostics> {
    let mut problems = Diagnostics::default();
    let mut items = Vec::new();
    for raw in &config.inline_items {
        let fallback = raw.sku.get_ref().to_lowercase();
        match check_item(
            config,
            &config.path,
            &config.source,
            raw.clone(),
            &fallback,
            static_files,
            true,
        ) {
            Ok(item) => items.push(item),
            Err(d) => problems.0.extend(d.0),
        }
    }
    if let Some(dir) = &config.items_dir {
        let files = item_files(config, dir)
            .map_err(|e| Diagnostic::in_file(dir, format!("cannot list items: {e}")))?;
        let loaded: Vec<Result<Item, Diagnostics>> = files
            .par_iter()
            .map(|f| load_file(config, f, static_files))
            .collect();
        for r in loaded {
            match r {
                Ok(item) => items.push(item),
                Err(d) => problems.0.extend(d.0),
            }
        }
    }
    if let Err(d) = check_unique(&items) {
        problems.0.extend(d.0);
    }
    if let Some(dir) = &config.items_dir {
        problems.0.extend(orphan_translations(config, dir));
    }
    problems.into_result(items)
}

/// Translation files whose item file does not exist.
fn orphan_translations(config: &Config, dir: &Path) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .flatten()
    {
        let Some((item, lang)) = translation_of(config, entry.path()) else {
            continue;
        };
        if !item.exists() {
            found.push(
                Diagnostic::in_file(
                    entry.path(),
                    format!(
                        "the {lang} text of an item that does not exist ({})",
                        item.display()
                    ),
                )
                .with_help(format!(
                    "name it after its item file: `<item>.{lang}.md` next to `<item>.md`"
                )),
            );
        }
    }
    found
}

/// The item files under `dir`: `*.md`, sorted, hidden files and
/// translations (`mug.en.md`, see [`translation_of`]) skipped.
pub(crate) fn item_files(config: &Config, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'))
    {
        let entry = entry.map_err(std::io::Error::other)?;
        if entry.file_type().is_file()
            && is_item_file(entry.path())
            && translation_of(config, entry.path()).is_none()
        {
            files.push(entry.into_path());
        }
    }
    Ok(files)
}

/// For a translation file, `mug.en.md` when the sale is also in `en`: the
/// item file it translates (`mug.md`) and the language (as `languages` has it).
pub(crate) fn translation_of(config: &Config, path: &Path) -> Option<(PathBuf, String)> {
    let stem = path.file_stem()?.to_str()?;
    let (item, lang) = stem.rsplit_once('.')?;
    let lang = config.languages[1..]
        .iter()
        .find(|l| l.eq_ignore_ascii_case(lang))?;
    Some((path.with_file_name(format!("{item}.md")), lang.clone()))
}

/// The translation file of item file `path` for `language`.
pub(crate) fn translation_file(path: &Path, language: &str) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!("{stem}.{language}.md"))
}

pub(crate) fn is_item_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "md")
        && !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// Reads one Markdown item file.
pub(crate) fn load_file(
    config: &Config,
    path: &Path,
    static_files: &HashSet<String>,
) -> Result<Item, Diagnostics> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Diagnostic::in_file(path, format!("cannot read item: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let (front, body, front_offset) = split_front_matter(path, text)?;
    // Reported against the whole file so line numbers are the file's own.
    let raw: RawItem = diag::parse_toml(path, text, front_offset, front, |_| ITEM_KEYS)?;
    if let Some(desc) = &raw.description {
        let span = desc.span().start + front_offset..desc.span().end + front_offset;
        return Err(Diagnostic::at_span(
            path,
            text,
            span,
            "`description` does not belong in front matter",
        )
        .with_help("write the description as Markdown after the closing +++ line")
        .into());
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut raw = raw;
    raw.description = Some(Spanned::new(0..0, body.to_string()));
    // Spans in `raw` are relative to the front matter; re-base them for diagnostics.
    let rebased = Rebased {
        text,
        offset: front_offset,
    };
    let mut problems = Diagnostics::default();
    let mut files = BTreeMap::new();
    for lang in &config.languages[1..] {
        match load_translation(&translation_file(path, lang)) {
            Ok(Some(t)) => {
                files.insert(lang.clone(), t);
            }
            Ok(None) => {}
            Err(d) => problems.0.extend(d.0),
        }
    }
    let item = check_item(config, path, &rebased, raw, &stem, static_files, false);
    match item {
        Ok(mut item) if problems.is_empty() => {
            item.translations.extend(files);
            Ok(item)
        }
        Ok(_) => Err(problems),
        Err(d) => {
            problems.0.extend(d.0);
            Err(problems)
        }
    }
}

/// An item's text in another language (`mug.en.md`): front matter with its
/// `title`, then its description in Markdown; or Markdown alone. `None`
/// when there is no such file.
fn load_translation(path: &Path) -> Result<Option<Translation>, Diagnostics> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(
                Diagnostic::in_file(path, format!("cannot read the translation: {e}")).into(),
            )
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    if !text.starts_with("+++") {
        return Ok(Some(Translation {
            title: None,
            description: Some(text.into()),
        }));
    }
    let (front, body, offset) = split_front_matter(path, text)?;
    let raw: ItemText = diag::parse_toml(path, text, offset, front, |_| ITEM_TEXT_KEYS)
        .map_err(|d| {
            Diagnostics(
                d.0.into_iter()
                    .map(|d| d.with_help("a translation holds the item's `title` and, after the closing +++, its description; price, stock and image are the item's own, in its file without the language"))
                    .collect(),
            )
        })?;
    if raw.description.is_some() {
        return Err(
            Diagnostic::in_file(path, "`description` does not belong in front matter")
                .with_help("write the description as Markdown after the closing +++ line")
                .into(),
        );
    }
    Ok(Some(Translation {
        title: raw.title.map(|t| t.into_inner().trim().to_string()),
        description: (!body.trim().is_empty()).then(|| body.into()),
    }))
}

/// Front matter text, the body, and the byte offset of the front matter in `text`.
fn split_front_matter<'a>(
    path: &Path,
    text: &'a str,
) -> Result<(&'a str, &'a str, usize), Diagnostics> {
    let example = "start the file with a line `+++`, then the item's fields (sku = \"MUG-01\", title, price, stock, ...), then `+++`, then the description in Markdown";
    let Some(rest) = text.strip_prefix("+++") else {
        return Err(
            Diagnostic::at_line(path, text, 1, 1, "item file has no front matter")
                .with_help(example)
                .into(),
        );
    };
    let rest = rest.strip_prefix('\r').unwrap_or(rest);
    let Some(rest) = rest.strip_prefix('\n') else {
        return Err(Diagnostic::at_line(
            path,
            text,
            1,
            4,
            "the opening +++ must be alone on its line",
        )
        .with_help(example)
        .into());
    };
    let front_offset = text.len() - rest.len();
    let mut pos = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "+++" {
            let body = &rest[pos + line.len()..];
            return Ok((&rest[..pos], body, front_offset));
        }
        pos += line.len();
    }
    Err(
        Diagnostic::at_line(path, text, 1, 1, "the front matter is never closed")
            .with_help("add a line `+++` after the item's fields, before the description")
            .into(),
    )
}

/// Source text plus the offset that spans must be moved by.
struct Rebased<'a> {
    text: &'a str,
    offset: usize,
}

trait SpanSource {
    fn at(&self, file: &Path, span: std::ops::Range<usize>, msg: String) -> Diagnostic;
}

impl SpanSource for str {
    fn at(&self, file: &Path, span: std::ops::Range<usize>, msg: String) -> Diagnostic {
        Diagnostic::at_span(file, self, span, msg)
    }
}

impl SpanSource for String {
    fn at(&self, file: &Path, span: std::ops::Range<usize>, msg: String) -> Diagnostic {
        Diagnostic::at_span(file, self, span, msg)
    }
}

impl SpanSource for Rebased<'_> {
    fn at(&self, file: &Path, span: std::ops::Range<usize>, msg: String) -> Diagnostic {
        Diagnostic::at_span(
            file,
            self.text,
            span.start + self.offset..span.end + self.offset,
            msg,
        )
    }
}

fn check_item(
    config: &Config,
    file: &Path,
    src: &(impl SpanSource + ?Sized),
    raw: RawItem,
    fallback_slug: &str,
    static_files: &HashSet<String>,
    inline: bool,
) -> Result<Item, Diagnostics> {
    let mut problems = Diagnostics::default();
    let sku = raw.sku.get_ref().trim().to_string();
    let sku_at = src.at(file, raw.sku.span(), String::new());
    if sku.is_empty()
        || sku.len() > 64
        || !sku
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        problems.push(
            src.at(
                file,
                raw.sku.span(),
                format!("`{sku}` cannot be used as a SKU"),
            )
            .with_help("use 1 to 64 letters, digits, '-', '_' or '.', e.g. `sku = \"MUG-01\"`"),
        );
    }
    let (slug, slug_span) = match &raw.slug {
        Some(s) => (s.get_ref().clone(), Some(s.span())),
        None => (fallback_slug.to_string(), None),
    };
    if !valid_slug(&slug) {
        let help = "a slug is the item's URL path: lowercase letters, digits, '-', '_' or '.', e.g. `slug = \"enamel-mug\"`";
        let d = match slug_span {
            Some(span) => src.at(file, span, format!("`{slug}` cannot be used as a slug")),
            None if inline => src.at(
                file,
                raw.sku.span(),
                format!("the SKU gives the slug `{slug}`, which cannot be a URL path"),
            ),
            None => Diagnostic::in_file(
                file,
                format!("the file name gives the slug `{slug}`, which cannot be a URL path"),
            ),
        };
        problems.push(d.with_help(help));
    }
    let title = raw.title.get_ref().trim().to_string();
    if title.is_empty() {
        problems.push(
            src.at(file, raw.title.span(), "the title is empty".into())
                .with_help("write the item's name, e.g. `title = \"Enamel mug\"`"),
        );
    }
    let amount = |p: &Spanned<PriceText>| -> Result<Money, Diagnostic> {
        let Some(text) = p.get_ref().decimal() else {
            return Err(src
                .at(
                    file,
                    p.span(),
                    format!("`{}` is not a price", p.get_ref().0),
                )
                .with_help(
                    "write a non-negative amount in the sale's currency, like 9.90 or \"9.90\"",
                ));
        };
        config.currency.amount(text).map_err(|e| {
            src.at(file, p.span(), e.to_string()).with_help(format!(
                "write the price in {} with at most {} decimals",
                config.currency.code, config.currency.decimals
            ))
        })
    };
    let price = amount(&raw.price).unwrap_or_else(|d| {
        problems.push(d);
        Money(0)
    });
    let original_price = match &raw.original_price {
        None => None,
        Some(o) => match amount(o) {
            Ok(m) if m > price => Some(m),
            Ok(_) => {
                problems.push(
                    src.at(file, o.span(), "the original price is not above the sale price".into())
                        .with_help("set `original_price` to the regular price, higher than `price`, or remove it"),
                );
                None
            }
            Err(d) => {
                problems.push(d);
                None
            }
        },
    };
    let stock = *raw.stock.get_ref();
    if !(1..=10_000_000).contains(&stock) {
        problems.push(
            src.at(
                file,
                raw.stock.span(),
                format!("stock {stock} is out of range"),
            )
            .with_help("give the number of units on sale, 1 to 10000000, e.g. `stock = 100`"),
        );
    }
    let image = raw.image.as_ref().map(|i| {
        let path = i.get_ref().trim().trim_start_matches('/').to_string();
        let remote = path.starts_with("https://") || path.starts_with("http://");
        if !remote && !static_files.contains(&path) {
            let mut near: Vec<&str> = static_files.iter().map(String::as_str).collect();
            near.sort_unstable();
            let hint = match diag::nearest(&path, &near) {
                Some(n) => format!("did you mean `{n}`? "),
                None if near.is_empty() => String::new(),
                None => {
                    let shown: Vec<&str> = near.iter().copied().filter(|n| !n.ends_with(".css") && !n.ends_with(".js")).take(8).collect();
                    format!("static files include {}; ", shown.join(", "))
                }
            };
            problems.push(
                src.at(file, i.span(), format!("image `{path}` not found among the static files"))
                    .with_help(format!("{hint}put the file in static/{path} (next to site.toml), or give an https:// URL")),
            );
        }
        if remote { i.get_ref().trim().to_string() } else { path }
    });
    let mut translations = BTreeMap::new();
    for (lang, text) in &raw.translations {
        let Some(known) = config.languages[1..]
            .iter()
            .find(|l| l.eq_ignore_ascii_case(lang))
        else {
            problems.push(
                src.at(
                    file,
                    text.span(),
                    format!("a translation to `{lang}`, which is not one of the sale's other languages"),
                )
                .with_help(format!(
                    "add `{lang}` to `languages` in site.toml (now {:?}), or remove the translation",
                    config.languages
                )),
            );
            continue;
        };
        let ItemText { title, description } = text.get_ref();
        translations.insert(
            known.clone(),
            Translation {
                title: title.as_ref().map(|t| t.get_ref().trim().to_string()),
                description: description.as_deref().map(Into::into),
            },
        );
    }
    problems.into_result(Item {
        file: file.to_path_buf(),
        at: (sku_at.line, sku_at.column),
        sku,
        slug,
        title,
        price,
        original_price,
        stock: stock.clamp(0, u32::MAX as i64) as u32,
        image,
        description: raw
            .description
            .map(|d| d.into_inner())
            .unwrap_or_default()
            .into(),
        translations,
    })
}

pub(crate) fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 100
        && !slug.starts_with('.')
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

/// A problem at an item's position, with its line quoted when the file reads.
fn framed(item: &Item, message: String) -> Diagnostic {
    match std::fs::read_to_string(&item.file) {
        Ok(src) => Diagnostic::at_line(&item.file, &src, item.at.0, item.at.1, message),
        Err(_) => Diagnostic::at_position(&item.file, item.at.0, item.at.1, message),
    }
}

/// SKUs and slugs must be unique across inline and file items.
pub(crate) fn check_unique(items: &[Item]) -> Result<(), Diagnostics> {
    let mut problems = Diagnostics::default();
    let mut skus: HashMap<&str, &Item> = HashMap::new();
    let mut slugs: HashMap<&str, &Item> = HashMap::new();
    for item in items {
        if let Some(first) = skus.insert(&item.sku, item) {
            problems.push(
                framed(item, format!("SKU `{}` is used twice", item.sku)).with_help(format!(
                    "it is also the SKU of `{}` in {}; give every item its own SKU",
                    first.title,
                    first.file.display()
                )),
            );
        }
        if let Some(first) = slugs.insert(&item.slug, item) {
            problems.push(
                framed(
                    item,
                    format!("two items would be published at items/{}/", item.slug),
                )
                .with_help(format!(
                    "`{}` in {} has the same slug; set `slug = \"...\"` on one of them",
                    first.title,
                    first.file.display()
                )),
            );
        }
    }
    problems.into_result(())
}

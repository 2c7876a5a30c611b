//! The site build. Data flows `content` (items) and `theme` (templates and
//! static files) → `assets` (fingerprints) → `render` (Tera) → `output`
//! (staged, all or nothing) + `manifest` (every file and its headers);
//! `check` inspects a build, `scaffold` starts a new sale. This file is the
//! orchestrator: it loads a sale, renders every output in parallel, and
//! re-renders only what an edit affects.

pub(crate) mod assets;
pub(crate) mod check;
pub(crate) mod content;
pub(crate) mod i18n;
pub(crate) mod images;
pub(crate) mod manifest;
pub(crate) mod output;
pub(crate) mod render;
pub(crate) mod scaffold;
pub(crate) mod theme;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use tera::Context;

use crate::config::Config;
use crate::sale::Toggle;
use crate::site::assets::{Assets, Body};
use crate::site::i18n::Catalogue;
use crate::site::manifest::Manifest;
use crate::site::output::{Changes, Output, Staged};
use crate::site::theme::Theme;
use crate::util::diag::{Diagnostic, Diagnostics};
use content::Item;
use render::{ItemSummary, Paginator, SiteContext, Templates};

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// Problems in what the user wrote: config, items, templates, static files.
    #[error(transparent)]
    Input(#[from] Diagnostics),
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl From<Diagnostic> for Error {
    fn from(d: Diagnostic) -> Self {
        Error::Input(d.into())
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |error| Error::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// The sale's items, checked against its static files (for images), without
/// rendering anything: what a gate or a rehearsal needs.
pub(crate) fn items(config: &Config) -> Result<Vec<Item>, Diagnostics> {
    let theme = Theme::load(config)?;
    let statics: HashSet<String> = theme.statics.iter().map(|s| s.logical.clone()).collect();
    content::load(config, &statics)
}

/// One file the build produces: a page, an asset or the toggle. Pages name
/// their edition (the index of the language in `config.languages`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Product {
    Asset(String),
    Toggle,
    /// Edition, 1-based listing page.
    Listing(usize, usize),
    /// Edition, item index.
    Item(usize, usize),
    Ended(usize),
    /// One, in the default language: a CDN has one error page.
    NotFound,
}

/// The sale in one of its languages: where its pages go, their words and
/// the templates that speak them (Tera's `t()` is bound to one catalogue).
pub(crate) struct Edition {
    /// `""` for the default language, `"en/"` for another.
    pub(crate) prefix: String,
    /// Its messages (`site::i18n`).
    pub(crate) catalogue: Arc<Catalogue>,
    templates: Templates,
    pub(crate) ctx: SiteContext,
}

/// Everything needed to render a sale, kept between builds by `serve`.
pub(crate) struct Site {
    pub(crate) config: Config,
    pub(crate) assets: Arc<Assets>,
    pub(crate) items: Vec<Item>,
    /// One per language, the default first.
    pub(crate) editions: Vec<Edition>,
    /// What the output holds after the last build (empty before the first).
    pub(crate) manifest: Manifest,
}

/// What a build did.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    pub(crate) changes: Changes,
    pub(crate) items: usize,
    pub(crate) outputs: usize,
    pub(crate) elapsed: Duration,
}

impl Site {
    /// Reads and checks everything; writes nothing.
    pub(crate) fn from_config(config: Config) -> Result<Site, Error> {
        Site::with_progress(config, None)
    }

    /// As [`Site::from_config`], telling `progress` of each photo made
    /// responsive (`site::images`): a command's progress bar.
    pub(crate) fn with_progress(
        config: Config,
        progress: Option<images::Progress>,
    ) -> Result<Site, Error> {
        let theme = Theme::load(&config)?;
        let images = images::Settings {
            config: config.images.clone(),
            dir: images::cache_dir(&config.root).join("images"),
            progress,
            scope: images::scope_of(&config.root),
        };
        let assets = Arc::new(Assets::build(
            &theme.statics,
            &config.base_path,
            Some(&images),
        )?);
        // Templates and items are checked both, and their problems reported together.
        let editions = Edition::all(&config, &theme, &assets);
        let statics: HashSet<String> = assets.logical_paths().cloned().collect();
        let items = content::load(&config, &statics);
        let (editions, items) = match (editions, items) {
            (Ok(t), Ok(i)) => (t, i),
            (t, i) => {
                let mut all = Diagnostics::default();
                all.0.extend(t.err().map(|d| d.0).unwrap_or_default());
                all.0.extend(i.err().map(|d| d.0).unwrap_or_default());
                return Err(Error::Input(all));
            }
        };
        let manifest = Manifest::new(&config.name, Vec::new());
        Ok(Site {
            config,
            assets,
            items,
            editions,
            manifest,
        })
    }

    pub(crate) fn listing_pages(&self) -> usize {
        self.items.len().div_ceil(self.config.paginate).max(1)
    }

    /// Every output of the sale.
    pub(crate) fn products(&self) -> Vec<Product> {
        let mut pages: Vec<Product> = self
            .assets
            .published()
            .map(|p| Product::Asset(p.clone()))
            .collect();
        pages.push(Product::Toggle);
        for e in 0..self.editions.len() {
            pages.extend((1..=self.listing_pages()).map(|n| Product::Listing(e, n)));
            pages.extend((0..self.items.len()).map(|i| Product::Item(e, i)));
            pages.push(Product::Ended(e));
        }
        pages.push(Product::NotFound);
        pages
    }

    /// Output `path` less its language's prefix (`en/items/a/index.html` →
    /// `items/a/index.html`). The default language's prefix is empty: tried last.
    fn unprefixed<'p>(&self, path: &'p str) -> Option<&'p str> {
        self.editions
            .iter()
            .rev()
            .find_map(|e| path.strip_prefix(e.prefix.as_str()))
    }

    /// The item whose page (in any language) is at output `path`.
    pub(crate) fn item_at(&self, path: &str) -> Option<usize> {
        let rest = self.unprefixed(path)?;
        let slug = rest.strip_prefix("items/")?.strip_suffix("/index.html")?;
        self.items.iter().position(|i| i.slug == slug)
    }

    /// The listing page (1-based) at output `path`, in any language.
    pub(crate) fn listing_at(&self, path: &str) -> Option<usize> {
        let rest = self.unprefixed(path)?;
        (1..=self.listing_pages()).find(|n| render::listing_path(*n) == rest)
    }

    pub(crate) fn path_of(&self, page: &Product) -> String {
        match page {
            Product::Asset(p) => self
                .assets
                .get(p)
                .map(|a| a.output.clone())
                .unwrap_or_default(),
            Product::Toggle => crate::config::headers::TOGGLE_PATH.to_string(),
            Product::Listing(e, n) => {
                format!("{}{}", self.editions[*e].prefix, render::listing_path(*n))
            }
            Product::Item(e, i) => self.items[*i].output_path_in(&self.editions[*e].prefix),
            Product::Ended(e) => format!("{}ended.html", self.editions[*e].prefix),
            Product::NotFound => "404.html".to_string(),
        }
    }

    /// The bytes of one output.
    pub(crate) fn render(&self, page: &Product) -> Result<Vec<u8>, Error> {
        let html = |e: usize, name: &str, ctx: Context| -> Result<Vec<u8>, Error> {
            Ok(self.editions[e].templates.render(name, &ctx)?.into_bytes())
        };
        match page {
            Product::Asset(p) => match self.assets.get(p) {
                Some(a) => a
                    .bytes()
                    .map(|b| b.into_owned())
                    .map_err(io(Path::new(&a.output))),
                None => Ok(Vec::new()),
            },
            Product::Toggle => Ok(Toggle::pending(
                &self.config.name,
                self.config.start.timestamp_millis(),
            )
            .to_script()
            .into_bytes()),
            Product::Listing(e, n) => {
                let edition = &self.editions[*e];
                let per = self.config.paginate;
                let items: Vec<ItemSummary> = self
                    .items
                    .iter()
                    .skip((n - 1) * per)
                    .take(per)
                    .map(|i| ItemSummary::new(i, &self.config, &self.assets, &edition.ctx))
                    .collect();
                let total = self.listing_pages();
                let base = &edition.ctx.home_url;
                let paginator = Paginator {
                    current: *n,
                    total,
                    prev_url: (*n > 1).then(|| render::listing_url(base, n - 1)),
                    next_url: (*n < total).then(|| render::listing_url(base, n + 1)),
                };
                let mut ctx = self.context(page, *e);
                ctx.insert("items", &items);
                ctx.insert("paginator", &paginator);
                html(*e, "index.html", ctx)
            }
            Product::Item(e, i) => {
                let edition = &self.editions[*e];
                let item = &self.items[*i];
                let summary = ItemSummary::new(item, &self.config, &self.assets, &edition.ctx);
                let mut ctx = self.context(page, *e);
                let (meta, product) = render::item_page_values(
                    item,
                    &summary,
                    &self.config,
                    &edition.catalogue,
                    &edition.ctx,
                );
                ctx.insert("item", &summary);
                let description = item.description_in(&edition.ctx.language);
                ctx.insert("description", &render::markdown(description));
                ctx.insert("meta_description", &meta);
                ctx.insert("structured_data", &product);
                html(*e, "item.html", ctx)
            }
            Product::Ended(e) => html(*e, "ended.html", self.context(page, *e)),
            Product::NotFound => html(0, "404.html", self.context(page, 0)),
        }
    }

    /// The URL path of a page (`/en/items/mug/`), for links and `hreflang`.
    fn url_of(&self, page: &Product) -> String {
        let path = self.path_of(page);
        let url = path.strip_suffix("index.html").unwrap_or(&path);
        format!("{}{url}", self.config.base_path)
    }

    /// The values every page has: the sale (`site`, in the page's language),
    /// the page's own URL path, and the same page in every language
    /// (`alternates`; empty for a sale in one language).
    fn context(&self, page: &Product, edition: usize) -> Context {
        let mut ctx = Context::new();
        ctx.insert("site", &self.editions[edition].ctx);
        ctx.insert("page_path", &self.url_of(page));
        let alternates: Vec<render::Alternate> = match self.editions.len() {
            1 => Vec::new(),
            _ => (0..self.editions.len())
                .map(|e| {
                    let same = match page {
                        Product::Listing(_, n) => Product::Listing(e, *n),
                        Product::Item(_, i) => Product::Item(e, *i),
                        Product::Ended(_) => Product::Ended(e),
                        other => other.clone(),
                    };
                    let c = &self.editions[e].ctx;
                    render::Alternate {
                        language: c.language.clone(),
                        name: c.language_name.clone(),
                        url: self.url_of(&same),
                        current: e == edition,
                    }
                })
                .collect(),
        };
        ctx.insert("alternates", &alternates);
        ctx
    }

    /// The cache file an asset's bytes are in, when they are not in memory.
    fn cached_asset(&self, page: &Product) -> Option<&Body> {
        let Product::Asset(p) = page else { return None };
        let body = &self.assets.get(p)?.body;
        matches!(body, Body::Cached { .. }).then_some(body)
    }

    /// Renders and stages `pages` in parallel.
    fn stage(&self, out: &Output, pages: &[Product]) -> Result<Vec<Staged>, Error> {
        pages
            .par_iter()
            .map(|page| {
                let path = self.path_of(page);
                if let Some(Body::Cached {
                    path: source,
                    len,
                    sha256,
                }) = self.cached_asset(page)
                {
                    return out
                        .stage_copy(&path, source, *len, sha256, &self.config.headers)
                        .map_err(io(source));
                }
                let bytes = self.render(page)?;
                out.stage(&path, &bytes, &self.config.headers)
                    .map_err(io(&out.root().join(&path)))
            })
            .collect()
    }

    /// A full build into the configured output directory.
    pub(crate) fn build(&mut self) -> Result<Report, Error> {
        let dir = self.config.output_dir.clone();
        self.build_into(&dir)
    }

    /// A full build into `dir`: all or nothing, unchanged files untouched,
    /// files no longer produced removed.
    pub(crate) fn build_into(&mut self, dir: &Path) -> Result<Report, Error> {
        let started = Instant::now();
        guard_output_dir(&self.config, dir)?;
        let out = Output::open(dir).map_err(io(dir))?;
        let pages = self.products();
        let staged = self.stage(&out, &pages)?;
        let manifest = Manifest::new(
            &self.config.name,
            staged.iter().map(|s| s.entry.clone()).collect(),
        );
        let changes = out.commit(staged, None, &manifest).map_err(io(dir))?;
        self.manifest = manifest;
        Ok(Report {
            changes,
            items: self.items.len(),
            outputs: pages.len(),
            elapsed: started.elapsed(),
        })
    }

    /// Re-reads the given item files (changed, added or deleted) and re-renders
    /// only the pages they affect. The output must come from a build of this `Site`.
    pub(crate) fn update_items(&mut self, files: &[PathBuf]) -> Result<Report, Error> {
        let started = Instant::now();
        let statics: HashSet<String> = self.assets.logical_paths().cloned().collect();
        // Read every edited file first: a bad one changes nothing.
        // A translation (`mug.en.md`) is read with its item's file.
        let mut files: Vec<PathBuf> = files
            .iter()
            .map(|f| content::translation_of(&self.config, f).map_or_else(|| f.clone(), |t| t.0))
            .collect();
        files.dedup();
        let mut fresh = Vec::with_capacity(files.len());
        for file in &files {
            let item = match file.is_file() {
                true => Some(content::load_file(&self.config, file, &statics)?),
                false => None,
            };
            fresh.push((file, item));
        }
        // Cheap: descriptions are shared, not copied.
        let mut items = self.items.clone();
        let mut reordered = false;
        // Each edited item's SKU, with its listing summaries before the edit.
        let mut dirty: Vec<(String, Option<Vec<ItemSummary>>)> = Vec::new();
        let mut removed: Vec<String> = Vec::new();
        for (file, item) in fresh {
            let pos = items.iter().position(|i| &i.file == file);
            match (pos, item) {
                (Some(p), Some(item)) => {
                    let old = std::mem::replace(&mut items[p], item);
                    if old.slug != items[p].slug {
                        removed.extend(self.editions.iter().map(|e| old.output_path_in(&e.prefix)));
                    }
                    let summary = self.summaries(&old);
                    dirty.push((items[p].sku.clone(), Some(summary)));
                }
                (None, Some(item)) => {
                    // File items follow inline ones, sorted by path, as a full build orders them.
                    let at = items
                        .iter()
                        .position(|i| i.file != self.config.path && i.file > *file)
                        .unwrap_or(items.len());
                    dirty.push((item.sku.clone(), None));
                    items.insert(at, item);
                    reordered = true;
                }
                (Some(p), None) => {
                    let gone = items.remove(p);
                    removed.extend(self.editions.iter().map(|e| gone.output_path_in(&e.prefix)));
                    reordered = true;
                }
                (None, None) => {}
            }
        }
        content::check_unique(&items)?;

        let old_listings = self.listing_pages();
        self.items = items;
        let mut pages: Vec<Product> = Vec::new();
        for (sku, before) in &dirty {
            let Some(idx) = self.items.iter().position(|i| &i.sku == sku) else {
                continue;
            };
            let now = self.summaries(&self.items[idx]);
            for e in 0..self.editions.len() {
                pages.push(Product::Item(e, idx));
                let listing = Product::Listing(e, idx / self.config.paginate + 1);
                let changed = before.as_ref().map(|b| &b[e]) != Some(&now[e]);
                if !reordered && changed && !pages.contains(&listing) {
                    pages.push(listing);
                }
            }
        }
        for (e, edition) in self.editions.iter().enumerate() {
            if reordered {
                pages.extend((1..=self.listing_pages()).map(|n| Product::Listing(e, n)));
            }
            removed.extend(
                (self.listing_pages() + 1..=old_listings)
                    .map(|n| format!("{}{}", edition.prefix, render::listing_path(n))),
            );
        }

        let dir = self.config.output_dir.clone();
        let out = Output::open(&dir).map_err(io(&dir))?;
        let staged = self.stage(&out, &pages)?;
        for s in &staged {
            self.manifest.upsert(s.entry.clone());
        }
        for p in &removed {
            if !staged.iter().any(|s| &s.entry.path == p) {
                self.manifest.remove(p);
            }
        }
        let changes = out
            .commit(staged, Some(removed), &self.manifest)
            .map_err(io(&dir))?;
        Ok(Report {
            changes,
            items: self.items.len(),
            outputs: pages.len(),
            elapsed: started.elapsed(),
        })
    }

    /// What each language's listing says about `item`.
    fn summaries(&self, item: &Item) -> Vec<ItemSummary> {
        self.editions
            .iter()
            .map(|e| ItemSummary::new(item, &self.config, &self.assets, &e.ctx))
            .collect()
    }
}

impl Edition {
    /// One edition per language of the sale, the default first.
    fn all(
        config: &Config,
        theme: &Theme,
        assets: &Arc<Assets>,
    ) -> Result<Vec<Edition>, Diagnostics> {
        let mut problems = Diagnostics::default();
        let mut editions = Vec::new();
        for language in &config.languages {
            let catalogue = match Catalogue::new(language, &theme.catalogues) {
                Ok(c) => Arc::new(c),
                Err(d) => {
                    // English's problems come with every language: say them once.
                    for d in d.0 {
                        if !problems.0.iter().any(|p| p.to_string() == d.to_string()) {
                            problems.push(d);
                        }
                    }
                    continue;
                }
            };
            match Templates::new(theme, assets.clone(), catalogue.clone()) {
                Ok(templates) => {
                    let prefix = crate::config::languages::prefix(&config.languages, language);
                    let ctx = SiteContext::new(config, &catalogue, &prefix);
                    editions.push(Edition {
                        prefix,
                        catalogue,
                        templates,
                        ctx,
                    });
                }
                // The templates are the same for every language: one report.
                Err(d) if problems.is_empty() => problems.push(d),
                Err(_) => {}
            }
        }
        problems.into_result(editions)
    }
}

/// Refuses output directories that would delete the user's sources.
fn guard_output_dir(config: &Config, dir: &Path) -> Result<(), Error> {
    let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let out = canon(dir);
    let root = canon(&config.root);
    let sources = [Some(root.clone()), config.items_dir.as_deref().map(canon)];
    if sources.iter().flatten().any(|s| s.starts_with(&out)) || dir.join("site.toml").exists() {
        return Err(Diagnostic::in_file(&config.path, format!(
            "the output directory {} holds the sale's own sources, and a build replaces its contents",
            dir.display()
        ))
        .with_help("set `output_dir` to a directory of its own, e.g. `output_dir = \"public\"`")
        .into());
    }
    Ok(())
}

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

/// One file the build produces: a page, an asset or the toggle.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Product {
    Asset(String),
    Toggle,
    /// 1-based listing page.
    Listing(usize),
    Item(usize),
    Ended,
    NotFound,
}

/// Everything needed to render a sale, kept between builds by `serve`.
pub(crate) struct Site {
    pub(crate) config: Config,
    pub(crate) assets: Arc<Assets>,
    pub(crate) items: Vec<Item>,
    templates: Templates,
    site_ctx: SiteContext,
    /// The messages of the sale's language (`site::i18n`).
    pub(crate) catalogue: Arc<Catalogue>,
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
        let catalogue = Arc::new(Catalogue::new(&config.language, &theme.catalogues)?);
        // Templates and items are checked both, and their problems reported together.
        let templates = Templates::new(&theme, assets.clone(), catalogue.clone());
        let statics: HashSet<String> = assets.logical_paths().cloned().collect();
        let items = content::load(&config, &statics);
        let (templates, items) = match (templates, items) {
            (Ok(t), Ok(i)) => (t, i),
            (t, i) => {
                let mut all = Diagnostics::default();
                all.0.extend(t.err());
                all.0.extend(i.err().map(|d| d.0).unwrap_or_default());
                return Err(Error::Input(all));
            }
        };
        let site_ctx = SiteContext::new(&config, &catalogue);
        let manifest = Manifest::new(&config.name, Vec::new());
        Ok(Site {
            config,
            assets,
            items,
            templates,
            site_ctx,
            catalogue,
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
        pages.extend((1..=self.listing_pages()).map(Product::Listing));
        pages.extend((0..self.items.len()).map(Product::Item));
        pages.push(Product::Ended);
        pages.push(Product::NotFound);
        pages
    }

    pub(crate) fn path_of(&self, page: &Product) -> String {
        match page {
            Product::Asset(p) => self
                .assets
                .get(p)
                .map(|a| a.output.clone())
                .unwrap_or_default(),
            Product::Toggle => crate::config::headers::TOGGLE_PATH.to_string(),
            Product::Listing(n) => render::listing_path(*n),
            Product::Item(i) => self.items[*i].output_path(),
            Product::Ended => "ended.html".to_string(),
            Product::NotFound => "404.html".to_string(),
        }
    }

    /// The bytes of one output.
    pub(crate) fn render(&self, page: &Product) -> Result<Vec<u8>, Error> {
        let html = |name: &str, ctx: Context| -> Result<Vec<u8>, Error> {
            Ok(self.templates.render(name, &ctx)?.into_bytes())
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
            Product::Listing(n) => {
                let per = self.config.paginate;
                let items: Vec<ItemSummary> = self
                    .items
                    .iter()
                    .skip((n - 1) * per)
                    .take(per)
                    .map(|i| ItemSummary::new(i, &self.config, &self.assets))
                    .collect();
                let total = self.listing_pages();
                let base = &self.config.base_path;
                let paginator = Paginator {
                    current: *n,
                    total,
                    prev_url: (*n > 1).then(|| render::listing_url(base, n - 1)),
                    next_url: (*n < total).then(|| render::listing_url(base, n + 1)),
                };
                let mut ctx = self.context(&render::listing_url(base, *n));
                ctx.insert("items", &items);
                ctx.insert("paginator", &paginator);
                html("index.html", ctx)
            }
            Product::Item(i) => {
                let item = &self.items[*i];
                let summary = ItemSummary::new(item, &self.config, &self.assets);
                let mut ctx = self.context(&summary.url);
                let (meta, product) =
                    render::item_page_values(item, &summary, &self.config, &self.catalogue);
                ctx.insert("item", &summary);
                ctx.insert("description", &render::markdown(&item.description));
                ctx.insert("meta_description", &meta);
                ctx.insert("structured_data", &product);
                html("item.html", ctx)
            }
            Product::Ended => html("ended.html", self.context(&self.site_ctx.ended_url)),
            Product::NotFound => html(
                "404.html",
                self.context(&format!("{}404.html", self.config.base_path)),
            ),
        }
    }

    fn context(&self, path: &str) -> Context {
        let mut ctx = Context::new();
        ctx.insert("site", &self.site_ctx);
        ctx.insert("page_path", path);
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
        let mut fresh = Vec::with_capacity(files.len());
        for file in files {
            let item = match file.is_file() {
                true => Some(content::load_file(&self.config, file, &statics)?),
                false => None,
            };
            fresh.push((file, item));
        }
        // Cheap: descriptions are shared, not copied.
        let mut items = self.items.clone();
        let mut reordered = false;
        // Each edited item's SKU, with its listing summary before the edit.
        let mut dirty: Vec<(String, Option<ItemSummary>)> = Vec::new();
        let mut removed: Vec<String> = Vec::new();
        for (file, item) in fresh {
            let pos = items.iter().position(|i| &i.file == file);
            match (pos, item) {
                (Some(p), Some(item)) => {
                    let old = std::mem::replace(&mut items[p], item);
                    if old.slug != items[p].slug {
                        removed.push(old.output_path());
                    }
                    let summary = ItemSummary::new(&old, &self.config, &self.assets);
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
                    removed.push(items.remove(p).output_path());
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
            pages.push(Product::Item(idx));
            let listing = Product::Listing(idx / self.config.paginate + 1);
            let now = ItemSummary::new(&self.items[idx], &self.config, &self.assets);
            if !reordered && before.as_ref() != Some(&now) && !pages.contains(&listing) {
                pages.push(listing);
            }
        }
        if reordered {
            pages.extend((1..=self.listing_pages()).map(Product::Listing));
        }
        removed.extend((self.listing_pages() + 1..=old_listings).map(render::listing_path));

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

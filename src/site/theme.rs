//! Where templates and static files come from: the site, its theme, or the
//! built-in default theme compiled into the binary.
//!
//! Lookup is file by file: a site's `templates/item.html` replaces only that
//! template; everything else still comes from the theme.

use std::path::{Path, PathBuf};

use crate::config::{Config, DEFAULT_THEME};
use crate::site::i18n::{language_of, CatalogueSource};
use crate::util::diag::{Diagnostic, Diagnostics};

macro_rules! builtin {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/themes/default/", $path)) as &[u8])),*]
    };
}

/// The default theme, as compiled in: (path inside the theme, contents).
pub(crate) const BUILTIN: &[(&str, &[u8])] = builtin!(
    "base.html",
    "item.html",
    "index.html",
    "ended.html",
    "404.html",
    "critical.css",
    "static/style.css",
    "static/runtime.js",
    "static/favicon.svg",
    "i18n/en.toml",
    "i18n/zh-CN.toml",
    "i18n/ja.toml",
    "i18n/de.toml",
    "i18n/fr.toml",
    "i18n/es.toml",
    "i18n/ar.toml",
);

/// A template's text and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct TemplateSource {
    pub(crate) name: String,
    pub(crate) text: String,
    /// A real file, or `themes/default/<name> (built in)`.
    pub(crate) origin: PathBuf,
}

/// A static file before fingerprinting.
#[derive(Debug, Clone)]
pub(crate) struct StaticSource {
    /// Path relative to `static/`, with `/` separators.
    pub(crate) logical: String,
    /// The file's bytes; empty for a photo on disk (`stat` is set), read
    /// only when the image cache does not know it (`site::images`).
    pub(crate) bytes: Vec<u8>,
    pub(crate) origin: PathBuf,
    /// A photo's size, modification time and inode, instead of its bytes.
    pub(crate) stat: Option<FileStat>,
}

/// What says a file on disk is the one seen before without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FileStat {
    pub(crate) len: u64,
    pub(crate) mtime_ns: i128,
    pub(crate) ino: u64,
}

impl FileStat {
    pub(crate) fn of(path: &Path) -> std::io::Result<FileStat> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path)?;
        Ok(FileStat {
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ino: m.ino(),
        })
    }
}

/// Whether `logical` (a static path) is a photo the build makes responsive
/// (`site::images`): a JPEG or a PNG. Photos are read only when needed.
pub(crate) fn is_photo(logical: &str) -> bool {
    logical
        .rsplit_once('.')
        .is_some_and(|(_, ext)| matches!(ext.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
}

impl StaticSource {
    /// The file's bytes: as read, or (a photo) read now.
    pub(crate) fn read(&self) -> std::io::Result<std::borrow::Cow<'_, [u8]>> {
        match self.stat {
            Some(_) => std::fs::read(&self.origin).map(std::borrow::Cow::Owned),
            None => Ok(std::borrow::Cow::Borrowed(&self.bytes)),
        }
    }
}

/// Every template and static file of a site, layered.
#[derive(Debug, Clone, Default)]
pub(crate) struct Theme {
    pub(crate) templates: Vec<TemplateSource>,
    pub(crate) statics: Vec<StaticSource>,
    /// Message catalogues, in layer order (built in, theme, sale).
    pub(crate) catalogues: Vec<CatalogueSource>,
}

impl Theme {
    pub(crate) fn load(config: &Config) -> Result<Theme, Diagnostics> {
        let mut theme = Theme::default();
        for (path, bytes) in BUILTIN {
            let origin = PathBuf::from(format!("themes/{DEFAULT_THEME}/{path} (built in)"));
            if let Some(file) = path.strip_prefix("i18n/") {
                theme.add_catalogue(Path::new(file), text(bytes, &origin)?, origin);
                continue;
            }
            match path.strip_prefix("static/") {
                Some(logical) => theme.add_static(logical.to_string(), bytes.to_vec(), origin),
                None => theme.add_template(path.to_string(), text(bytes, &origin)?, origin),
            }
        }
        let theme_dir = config.in_root(Path::new("themes").join(&config.theme));
        if config.theme != DEFAULT_THEME || theme_dir.is_dir() {
            theme.add_dir_templates(&theme_dir, false)?;
            theme.add_dir_statics(&theme_dir.join("static"))?;
            theme.add_dir_catalogues(&theme_dir.join("i18n"))?;
        }
        theme.add_dir_templates(&config.in_root("templates"), true)?;
        theme.add_dir_statics(&config.in_root("static"))?;
        theme.add_dir_catalogues(&config.in_root("i18n"))?;
        theme.templates.sort_by(|a, b| a.name.cmp(&b.name));
        theme.statics.sort_by(|a, b| a.logical.cmp(&b.logical));
        Ok(theme)
    }

    fn add_template(&mut self, name: String, text: String, origin: PathBuf) {
        self.templates.retain(|t| t.name != name);
        self.templates.push(TemplateSource { name, text, origin });
    }

    fn add_static(&mut self, logical: String, bytes: Vec<u8>, origin: PathBuf) {
        self.add_source(StaticSource {
            logical,
            bytes,
            origin,
            stat: None,
        });
    }

    fn add_source(&mut self, s: StaticSource) {
        self.statics.retain(|t| t.logical != s.logical);
        self.statics.push(s);
    }

    /// Templates are the `.html` and `.css` files at the top of a theme (or any
    /// depth of a site's `templates/`), excluding `static/`.
    fn add_dir_templates(&mut self, dir: &Path, recursive: bool) -> Result<(), Diagnostics> {
        if !dir.is_dir() {
            return Ok(());
        }
        for entry in walk(dir, if recursive { usize::MAX } else { 1 })? {
            let rel = relative(dir, &entry);
            if rel.starts_with("static/") || !(rel.ends_with(".html") || rel.ends_with(".css")) {
                continue;
            }
            let bytes = std::fs::read(&entry)
                .map_err(|e| Diagnostic::in_file(&entry, format!("cannot read template: {e}")))?;
            let text = text(&bytes, &entry)?;
            self.add_template(rel, text, entry);
        }
        Ok(())
    }

    fn add_catalogue(&mut self, file: &Path, text: String, origin: PathBuf) {
        if let Some(language) = language_of(file) {
            self.catalogues.push(CatalogueSource {
                language,
                text,
                origin,
            });
        }
    }

    /// `<dir>/<language>.toml`, each a catalogue layered over what came before.
    fn add_dir_catalogues(&mut self, dir: &Path) -> Result<(), Diagnostics> {
        if !dir.is_dir() {
            return Ok(());
        }
        for entry in walk(dir, 1)? {
            if entry.extension().is_some_and(|e| e == "toml") {
                let bytes = std::fs::read(&entry)
                    .map_err(|e| Diagnostic::in_file(&entry, format!("cannot read: {e}")))?;
                let text = text(&bytes, &entry)?;
                let file = PathBuf::from(entry.file_name().unwrap_or_default());
                self.add_catalogue(&file, text, entry);
            }
        }
        Ok(())
    }

    fn add_dir_statics(&mut self, dir: &Path) -> Result<(), Diagnostics> {
        if !dir.is_dir() {
            return Ok(());
        }
        for entry in walk(dir, usize::MAX)? {
            let unreadable = |e: std::io::Error| {
                Diagnostic::in_file(&entry, format!("cannot read static file: {e}"))
            };
            let logical = relative(dir, &entry);
            if is_photo(&logical) {
                // Photos are read only when the image cache does not know them.
                let stat = FileStat::of(&entry).map_err(unreadable)?;
                self.add_source(StaticSource {
                    logical,
                    bytes: Vec::new(),
                    origin: entry,
                    stat: Some(stat),
                });
                continue;
            }
            let bytes = std::fs::read(&entry).map_err(unreadable)?;
            self.add_static(logical, bytes, entry);
        }
        Ok(())
    }

    /// Every file a theme is made of, as files a new site can start from.
    pub(crate) fn builtin_files() -> impl Iterator<Item = (&'static str, &'static [u8])> {
        BUILTIN.iter().copied()
    }
}

fn text(bytes: &[u8], origin: &Path) -> Result<String, Diagnostics> {
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        Diagnostic::in_file(
            origin,
            format!("not valid UTF-8 (byte {})", e.utf8_error().valid_up_to()),
        )
        .with_help("save the file as UTF-8")
        .into()
    })
}

/// Files under `dir`, sorted, hidden entries skipped, symlinks followed only
/// when they stay inside `dir`.
fn walk(dir: &Path, depth: usize) -> Result<Vec<PathBuf>, Diagnostics> {
    let mut out = Vec::new();
    let root = dir
        .canonicalize()
        .map_err(|e| Diagnostic::in_file(dir, e.to_string()))?;
    for entry in walkdir::WalkDir::new(dir)
        .max_depth(depth)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'))
    {
        let entry = entry.map_err(|e| {
            let p = e.path().unwrap_or(dir).to_path_buf();
            Diagnostic::in_file(&p, format!("cannot read: {e}"))
        })?;
        // Only a link can lead outside: a directory reached through a link
        // that stays inside holds what is inside (its own links are checked
        // as they come). Resolving only links keeps a walk of many photos cheap.
        if entry.path_is_symlink() {
            let real = entry
                .path()
                .canonicalize()
                .map_err(|e| Diagnostic::in_file(entry.path(), e.to_string()))?;
            if !real.starts_with(&root) {
                let what = if entry.file_type().is_dir() {
                    "a directory"
                } else {
                    "a file"
                };
                return Err(Diagnostic::in_file(
                    entry.path(),
                    format!("is a link to {what} outside its directory"),
                )
                .with_help("copy it in instead of linking to it")
                .into());
            }
        }
        if !entry.file_type().is_file() {
            continue;
        }
        out.push(entry.into_path());
    }
    Ok(out)
}

fn relative(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_follows_links_only_inside_its_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, outside) = (tmp.path().join("static"), tmp.path().join("outside"));
        std::fs::create_dir_all(dir.join("real")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(dir.join("real/a.css"), "a").unwrap();
        std::fs::write(outside.join("secret.txt"), "s").unwrap();
        std::os::unix::fs::symlink(dir.join("real"), dir.join("alias")).unwrap();
        let names = |d: &Path| -> Vec<String> {
            walk(d, usize::MAX)
                .unwrap()
                .iter()
                .map(|p| relative(d, p))
                .collect()
        };
        assert_eq!(names(&dir), ["alias/a.css", "real/a.css"]);
        std::os::unix::fs::symlink(outside.join("secret.txt"), dir.join("s.txt")).unwrap();
        let err = walk(&dir, usize::MAX).unwrap_err().to_string();
        assert!(
            err.contains("s.txt") && err.contains("a file outside"),
            "{err}"
        );
        std::fs::remove_file(dir.join("s.txt")).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("real/out")).unwrap();
        let err = walk(&dir, usize::MAX).unwrap_err().to_string();
        assert!(err.contains("a directory outside"), "{err}");
    }

    #[test]
    fn builtin_list_matches_the_theme_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("themes/default");
        let mut on_disk: Vec<String> = walk(&dir, usize::MAX)
            .unwrap()
            .iter()
            .map(|p| relative(&dir, p))
            .collect();
        on_disk.sort();
        let mut compiled: Vec<String> = BUILTIN.iter().map(|(p, _)| p.to_string()).collect();
        compiled.sort();
        assert_eq!(on_disk, compiled, "update BUILTIN in src/site/theme.rs");
        // Every page kind has a template to fall back on.
        for name in [
            "base.html",
            "item.html",
            "index.html",
            "ended.html",
            "404.html",
        ] {
            assert!(compiled.iter().any(|c| c == name), "{name}");
        }
    }
}

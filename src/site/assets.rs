//! Fingerprinting: every static file is published once under a content-addressed
//! name, `assets/<name>.<16 hex of sha256>.<ext>`, and can then be cached forever.
//!
//! CSS is rewritten first so that its `url(...)` references point at fingerprinted
//! names too (and a change to an image changes the CSS's fingerprint).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::site::theme::StaticSource;
use crate::util::diag::{Diagnostic, Diagnostics};

/// A static file ready to publish.
#[derive(Debug, Clone)]
pub(crate) struct Asset {
    /// Path in the output, e.g. `assets/style.0123456789abcdef.css`.
    pub(crate) output: String,
    pub(crate) body: Body,
    /// An image's intrinsic width and height in CSS pixels, read at build
    /// time so pages can reserve its box before it loads (no layout shift).
    pub(crate) size: Option<(u32, u32)>,
}

/// An asset's bytes: in memory, or a file of the image cache whose length and
/// SHA-256 are known, read only when the output lacks it (`Output::stage_copy`).
#[derive(Debug, Clone)]
pub(crate) enum Body {
    Bytes(Vec<u8>),
    Cached {
        path: PathBuf,
        len: u64,
        sha256: String,
    },
}

impl Asset {
    /// Its bytes (a cached file is read).
    pub(crate) fn bytes(&self) -> std::io::Result<Cow<'_, [u8]>> {
        match &self.body {
            Body::Bytes(b) => Ok(b.into()),
            Body::Cached { path, .. } => std::fs::read(path).map(Into::into).map_err(|e| {
                std::io::Error::new(e.kind(), format!("{} (image cache): {e}", path.display()))
            }),
        }
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> u64 {
        match &self.body {
            Body::Bytes(b) => b.len() as u64,
            Body::Cached { len, .. } => *len,
        }
    }
}

/// Logical static path (`style.css`, `images/mug.svg`) to its fingerprinted asset.
#[derive(Debug, Clone, Default)]
pub(crate) struct Assets {
    map: BTreeMap<String, Asset>,
    /// A photo's logical path to the widths it was made in (`images`).
    responsive: BTreeMap<String, Responsive>,
    /// Photos made by this build, and taken from the cache.
    photos: (usize, usize),
    base_path: String,
}

/// A photo made responsive: its URLs per width, in WebP and in its own format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Responsive {
    /// The photo's own width and height.
    pub(crate) size: (u32, u32),
    /// (width, URL), ascending.
    pub(crate) webp: Vec<(u32, String)>,
    /// (width, URL), ascending: the photo's own format, for browsers without WebP.
    pub(crate) fallback: Vec<(u32, String)>,
    /// (width, bytes) of the WebP candidates: what a page weighs with each.
    pub(crate) webp_bytes: Vec<(u32, usize)>,
    /// The MIME type of the fallback candidates.
    pub(crate) fallback_type: &'static str,
}

impl Responsive {
    /// `url 320w, url 480w, …`
    pub(crate) fn srcset(candidates: &[(u32, String)]) -> String {
        candidates
            .iter()
            .map(|(w, u)| format!("{u} {w}w"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The WebP candidate a browser picks for a slot `css_px` wide at `dpr`:
    /// the narrowest at least that many device pixels, else the widest.
    pub(crate) fn pick(&self, css_px: f64, dpr: f64) -> Option<(u32, usize)> {
        let need = css_px * dpr;
        self.webp_bytes
            .iter()
            .find(|(w, _)| *w as f64 >= need)
            .or(self.webp_bytes.last())
            .copied()
    }
}

impl Assets {
    /// Fingerprints every static file; with `images`, makes the photos
    /// among them responsive first (`site::images`).
    pub(crate) fn build(
        statics: &[StaticSource],
        base_path: &str,
        images: Option<&super::images::Settings>,
    ) -> Result<Assets, Diagnostics> {
        let mut assets = Assets {
            map: BTreeMap::new(),
            responsive: BTreeMap::new(),
            photos: (0, 0),
            base_path: base_path.to_string(),
        };
        if let Some(settings) = images {
            assets.make_responsive(statics, settings)?;
        }
        let (css, other): (Vec<_>, Vec<_>) =
            statics.iter().partition(|s| s.logical.ends_with(".css"));
        for s in other {
            // A photo made responsive is not published as it is: its path
            // (in CSS, Markdown) means its widest made width.
            if !assets.responsive.contains_key(&s.logical) {
                let bytes = s.read().map_err(|e| {
                    Diagnostic::in_file(&s.origin, format!("cannot read static file: {e}"))
                })?;
                assets.insert(s, bytes.into_owned());
            }
        }
        // CSS may reference other CSS (@import): fingerprint in dependency order.
        let mut pending: Vec<&StaticSource> = css;
        let all: HashSet<&str> = statics.iter().map(|s| s.logical.as_str()).collect();
        while !pending.is_empty() {
            let before = pending.len();
            let mut problems = Diagnostics::default();
            let mut waiting = Vec::new();
            for s in pending {
                match rewrite_css(s, &assets, &all) {
                    Ok(Some(bytes)) => assets.insert(s, bytes),
                    Ok(None) => waiting.push(s),
                    Err(d) => problems.push(d),
                }
            }
            if !problems.is_empty() {
                return Err(problems);
            }
            if waiting.len() == before {
                let names: Vec<&str> = waiting.iter().map(|s| s.logical.as_str()).collect();
                return Err(Diagnostic::in_file(
                    &waiting[0].origin,
                    format!(
                        "stylesheets import each other in a cycle: {}",
                        names.join(", ")
                    ),
                )
                .with_help("remove one of the @import references")
                .into());
            }
            pending = waiting;
        }
        Ok(assets)
    }

    /// Makes every photo among `statics` in its widths and formats, each an
    /// asset of its own (`<stem>-<width>.<hash>.<ext>`).
    fn make_responsive(
        &mut self,
        statics: &[StaticSource],
        settings: &super::images::Settings,
    ) -> Result<(), Diagnostics> {
        use super::images::{make_all, Format};
        let photos: Vec<&StaticSource> = statics
            .iter()
            .filter(|s| super::images::is_photo(&s.logical))
            .collect();
        let mut problems = Diagnostics::default();
        for (s, made) in photos.iter().zip(make_all(&photos, settings)) {
            let made =
                match made {
                    Ok(m) => m,
                    Err(e) => {
                        problems.push(Diagnostic::in_file(&s.origin, e.to_string()).with_help(
                            "export it again as a JPEG or PNG, or remove it from static/",
                        ));
                        continue;
                    }
                };
            let stem = s
                .logical
                .rsplit_once('.')
                .map_or(s.logical.as_str(), |(a, _)| a);
            let mut r = Responsive {
                size: made.size,
                webp: Vec::new(),
                fallback: Vec::new(),
                webp_bytes: Vec::new(),
                fallback_type: "image/jpeg",
            };
            if made.cached {
                self.photos.1 += 1;
            } else {
                self.photos.0 += 1;
            }
            for v in made.variants {
                let logical = format!("{stem}-{}.{}", v.width, v.format.ext());
                let output = hashed_name(&logical, &v.sha256);
                let url = format!("{}{output}", self.base_path);
                if v.format == Format::Webp {
                    r.webp.push((v.width, url));
                    r.webp_bytes.push((v.width, v.len as usize));
                } else {
                    r.fallback.push((v.width, url));
                    r.fallback_type = v.format.mime();
                }
                let size = Some((v.width, v.height));
                let body = match v.data {
                    Some(bytes) => Body::Bytes(bytes),
                    None => Body::Cached {
                        path: v.path,
                        len: v.len,
                        sha256: v.sha256,
                    },
                };
                let asset = Asset { output, body, size };
                self.map.insert(format!("{}@{logical}", s.logical), asset);
            }
            let widest = r.fallback.last().map(|(w, _)| *w).unwrap_or(0);
            let ext = r
                .fallback_type
                .rsplit('/')
                .next()
                .unwrap_or("jpg")
                .replace("jpeg", "jpg");
            let key = format!("{}@{stem}-{widest}.{ext}", s.logical);
            if let Some(a) = self.map.get(&key).cloned() {
                self.map.insert(s.logical.clone(), a);
            }
            self.responsive.insert(s.logical.clone(), r);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Photos made responsive by this build, and taken from the cache.
    pub(crate) fn photos(&self) -> (usize, usize) {
        self.photos
    }

    /// A photo's widths and formats, when it was made responsive.
    pub(crate) fn responsive(&self, logical: &str) -> Option<&Responsive> {
        self.responsive.get(logical.trim_start_matches('/'))
    }

    fn insert(&mut self, s: &StaticSource, bytes: Vec<u8>) {
        let output = fingerprinted_name(&s.logical, &bytes);
        let size = image_size(&s.logical, &bytes);
        self.map.insert(
            s.logical.clone(),
            Asset {
                output,
                body: Body::Bytes(bytes),
                size,
            },
        );
    }

    pub(crate) fn get(&self, logical: &str) -> Option<&Asset> {
        self.map.get(logical.trim_start_matches('/'))
    }

    /// The public URL path of a static file (`/assets/style.<hash>.css`).
    pub(crate) fn url(&self, logical: &str) -> Option<String> {
        self.get(logical)
            .map(|a| format!("{}{}", self.base_path, a.output))
    }

    /// An image's width and height, when the file says.
    pub(crate) fn size(&self, logical: &str) -> Option<(u32, u32)> {
        self.get(logical)?.size
    }

    /// Every asset.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Asset> {
        self.map.values()
    }

    /// The logical paths of the files to publish, each once: a photo made
    /// responsive is published as its variants only (its own path is an alias).
    pub(crate) fn published(&self) -> impl Iterator<Item = &String> {
        self.map
            .keys()
            .filter(|k| !self.responsive.contains_key(k.as_str()))
    }

    pub(crate) fn logical_paths(&self) -> impl Iterator<Item = &String> {
        self.map.keys()
    }
}

/// The intrinsic size of an image file: raster formats from their header
/// (`imagesize`), SVG from the root element's `width`/`height` (plain or
/// `px`) or else its `viewBox`.
fn image_size(logical: &str, bytes: &[u8]) -> Option<(u32, u32)> {
    let ext = logical.rsplit_once('.')?.1.to_ascii_lowercase();
    match ext.as_str() {
        "svg" => svg_size(std::str::from_utf8(bytes).ok()?),
        "png" | "jpg" | "jpeg" | "gif" | "webp" | "avif" | "bmp" | "ico" => {
            let s = imagesize::blob_size(bytes).ok()?;
            Some((u32::try_from(s.width).ok()?, u32::try_from(s.height).ok()?))
        }
        _ => None,
    }
}

fn svg_size(text: &str) -> Option<(u32, u32)> {
    let start = text.find("<svg")?;
    let tag = &text[start..start + text[start..].find('>')?];
    let attr = |name: &str| -> Option<&str> {
        let mut rest = tag;
        loop {
            let at = rest.find(name)?;
            let before = rest[..at].chars().last();
            let after = &rest[at + name.len()..];
            if before.is_some_and(char::is_whitespace) {
                if let Some(v) = after.trim_start().strip_prefix('=') {
                    let v = v.trim_start();
                    let quote = v.chars().next().filter(|c| *c == '"' || *c == '\'')?;
                    let v = &v[1..];
                    return Some(&v[..v.find(quote)?]);
                }
            }
            rest = after;
        }
    };
    let px = |v: &str| -> Option<f64> {
        let n: f64 = v.trim().trim_end_matches("px").trim().parse().ok()?;
        (n > 0.0).then_some(n)
    };
    let (w, h) = match (attr("width").and_then(px), attr("height").and_then(px)) {
        (Some(w), Some(h)) => (w, h),
        _ => {
            let v: Vec<f64> = attr("viewBox")?
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|p| !p.is_empty())
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            match v[..] {
                [_, _, w, h] if w > 0.0 && h > 0.0 => (w, h),
                _ => return None,
            }
        }
    };
    Some((w.round().max(1.0) as u32, h.round().max(1.0) as u32))
}

/// `assets/<dir>/<stem>.<16 hex>.<ext>` (the last extension only).
pub(crate) fn fingerprinted_name(logical: &str, bytes: &[u8]) -> String {
    hashed_name(logical, &hex::encode(Sha256::digest(bytes)))
}

/// As [`fingerprinted_name`], from the bytes' hex SHA-256.
fn hashed_name(logical: &str, sha256: &str) -> String {
    let hash = &sha256[..16.min(sha256.len())];
    let (dir, file) = match logical.rsplit_once('/') {
        Some((d, f)) => (format!("{d}/"), f),
        None => (String::new(), logical),
    };
    match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("assets/{dir}{stem}.{hash}.{ext}"),
        _ => format!("assets/{dir}{file}.{hash}"),
    }
}

/// Rewrites `url(...)` and `@import "..."` references to local static files.
/// `Ok(None)` when a referenced stylesheet is not fingerprinted yet.
fn rewrite_css(
    s: &StaticSource,
    done: &Assets,
    all: &HashSet<&str>,
) -> Result<Option<Vec<u8>>, Diagnostic> {
    let text = String::from_utf8_lossy(&s.bytes).into_owned();
    let dir = s.logical.rsplit_once('/').map_or("", |(d, _)| d);
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    let mut consumed = 0;
    while let Some((start, end, target)) = next_reference(rest) {
        out.push_str(&rest[..start]);
        let (path, suffix) = split_suffix(target);
        if is_local(path) {
            let logical = resolve(dir, path);
            match done.url(&logical) {
                Some(url) => out.push_str(&format!("url(\"{url}{suffix}\")")),
                None if all.contains(logical.as_str()) => return Ok(None),
                None => {
                    let at = consumed + start;
                    return Err(Diagnostic::at_span(
                        &s.origin,
                        &text,
                        at..consumed + end,
                        format!("`{path}` is not a static file"),
                    )
                    .with_help(format!("add it as static/{logical}, or fix the reference")));
                }
            }
        } else {
            out.push_str(&rest[start..end]);
        }
        consumed += end;
        rest = &rest[end..];
    }
    out.push_str(rest);
    Ok(Some(out.into_bytes()))
}

/// Finds the next `url(...)` or `@import "..."`: (start, end, target).
fn next_reference(s: &str) -> Option<(usize, usize, &str)> {
    let lower = s.to_ascii_lowercase();
    let url = lower.find("url(");
    let import = lower.find("@import");
    match (url, import) {
        (Some(u), i) if i.is_none_or(|i| u < i) => {
            let inner_start = u + 4;
            let close = s[inner_start..].find(')')? + inner_start;
            let target = s[inner_start..close].trim().trim_matches(['"', '\'']);
            Some((u, close + 1, target))
        }
        (_, Some(i)) => {
            let after = &s[i + 7..];
            let ws = after.len() - after.trim_start().len();
            let q = after[ws..].chars().next()?;
            if q != '"' && q != '\'' {
                // `@import url(...)`: the url( branch handles it next time round.
                let next = next_reference(&s[i + 7..])?;
                return Some((next.0 + i + 7, next.1 + i + 7, next.2));
            }
            let open = i + 7 + ws + 1;
            let close = s[open..].find(q)? + open;
            Some((i + 7 + ws, close + 1, &s[open..close]))
        }
        _ => None,
    }
}

fn split_suffix(target: &str) -> (&str, &str) {
    match target.find(['?', '#']) {
        Some(i) => (&target[..i], &target[i..]),
        None => (target, ""),
    }
}

fn is_local(path: &str) -> bool {
    !(path.is_empty()
        || path.starts_with("data:")
        || path.starts_with("http:")
        || path.starts_with("https:")
        || path.starts_with("//")
        || path.starts_with('#'))
}

/// Resolves a reference relative to the stylesheet's directory (or the static
/// root for `/...`), normalising `.` and `..`.
fn resolve(dir: &str, path: &str) -> String {
    let mut parts: Vec<&str> = if path.starts_with('/') {
        Vec::new()
    } else {
        dir.split('/').filter(|p| !p.is_empty()).collect()
    };
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn src(logical: &str, body: &str) -> StaticSource {
        StaticSource {
            logical: logical.into(),
            bytes: body.as_bytes().to_vec(),
            origin: PathBuf::from(format!("static/{logical}")),
            stat: None,
        }
    }

    #[test]
    fn names_are_content_addressed() {
        let n = fingerprinted_name("css/site.min.css", b"x");
        assert!(n.starts_with("assets/css/site.min."), "{n}");
        assert!(n.ends_with(".css"));
        assert_eq!(n.len(), "assets/css/site.min..css".len() + 16);
        assert_ne!(n, fingerprinted_name("css/site.min.css", b"y"));
        assert!(fingerprinted_name("LICENSE", b"x").starts_with("assets/LICENSE."));
    }

    #[test]
    fn css_references_are_rewritten() {
        let statics = vec![
            src("img/bg.svg", "<svg/>"),
            src("css/a.css", "@import \"b.css\";\nbody{background:url('../img/bg.svg#x')}\na{background:url(data:image/png;base64,AA)}"),
            src("css/b.css", "p{color:red}"),
        ];
        let assets = Assets::build(&statics, "/", None).unwrap();
        let a = String::from_utf8(
            assets
                .get("css/a.css")
                .unwrap()
                .bytes()
                .unwrap()
                .into_owned(),
        )
        .unwrap();
        let bg = assets.url("img/bg.svg").unwrap();
        let b = assets.url("css/b.css").unwrap();
        assert!(a.contains(&format!("url(\"{bg}#x\")")), "{a}");
        assert!(a.contains(&format!("url(\"{b}\")")), "{a}");
        assert!(a.contains("url(data:image/png;base64,AA)"), "{a}");
    }

    #[test]
    fn missing_css_reference_names_file_and_line() {
        let statics = vec![src("style.css", "body{}\nh1{background:url(nope.png)}")];
        let err = Assets::build(&statics, "/", None).unwrap_err().to_string();
        assert!(err.contains("static/style.css:2:"), "{err}");
        assert!(err.contains("nope.png"), "{err}");
    }

    #[test]
    fn image_sizes_come_from_the_file() {
        let svg = |t: &str| image_size("a.svg", t.as_bytes());
        assert_eq!(
            svg("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 400 300\">"),
            Some((400, 300))
        );
        assert_eq!(
            svg("<?xml version=\"1.0\"?>\n<svg width=\"64px\" height='32' viewBox=\"0 0 1 1\">"),
            Some((64, 32))
        );
        // A relative size falls back to the viewBox; no size at all: unknown.
        assert_eq!(
            svg("<svg width=\"100%\" height=\"100%\" viewBox=\"0,0,16,9\">"),
            Some((16, 9))
        );
        assert_eq!(svg("<svg xmlns=\"http://www.w3.org/2000/svg\">"), None);
        assert_eq!(
            svg("<svg stroke-width=\"2\" viewBox=\"0 0 10 20\">"),
            Some((10, 20))
        );
        // A 3x2 PNG's header.
        let png = [
            0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0,
            0, 0, 3, 0, 0, 0, 2, 8, 6, 0, 0, 0,
        ];
        assert_eq!(image_size("p.png", &png), Some((3, 2)));
        assert_eq!(image_size("p.png", b"not a png"), None);
        assert_eq!(image_size("notes.txt", b"x"), None);
    }
}

//! Responsive images. Every JPEG and PNG among the static files is made, once,
//! in the configured widths (`[images] widths`, only those below its own
//! width, and its own width when it is smaller than the largest): each width
//! as lossy WebP, and two of them in the photo's own format (`fallback_widths`:
//! for browsers without WebP and for sharing cards). Pages offer them in a `<picture>` with `srcset` and `sizes`
//! (`render`), fingerprinted like every asset (`assets`). GIFs (maybe
//! animated), WebP, AVIF and SVG pass through untouched.
//!
//! Built once: what a photo becomes is kept in the cache directory
//! (`<sale>/.flashsale-cache/images/`, or `$FLASHSALE_CACHE_DIR/images/`),
//! under the SHA-256 of its bytes and the settings, outside the output
//! directory, so `rm -rf public`, a rebuild, `serve` and a CI runner with the
//! directory cached decode nothing that did not change. Photos are made in
//! parallel on every core.

use std::path::{Path, PathBuf};

use fast_image_resize as fr;
use image::ImageEncoder;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::config::ImagesConfig;
use crate::site::theme::{FileStat, StaticSource};

/// Bumped when what a photo becomes changes (filter, encoder settings):
/// the cache's old entries are then not used.
const PIPELINE: u32 = 3;

/// The cache directory of a sale rooted at `root`: `$FLASHSALE_CACHE_DIR`
/// (for a CI cache), else `<root>/.flashsale-cache`.
pub(crate) fn cache_dir(root: &Path) -> PathBuf {
    match std::env::var_os("FLASHSALE_CACHE_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => root.join(".flashsale-cache"),
    }
}

/// Told after each photo: how many are done, of how many, and whether this
/// one was made (decoded and encoded) rather than taken from the cache.
pub(crate) type Progress = std::sync::Arc<dyn Fn(usize, usize, bool) + Send + Sync>;

/// How photos are made: the widths, the quality, and where they are kept.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) config: ImagesConfig,
    /// `<cache_dir>/images`.
    pub(crate) dir: PathBuf,
    /// For a progress bar (the command's), when there is one.
    pub(crate) progress: Option<Progress>,
    /// The name of the stat index, one per sale (`scope_of` its root).
    pub(crate) scope: String,
}

/// A stat index's name for the sale rooted at `root`.
pub(crate) fn scope_of(root: &Path) -> String {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    hex::encode(&Sha256::digest(root.to_string_lossy().as_bytes())[..8])
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("config", &self.config)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The format a variant is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Webp,
    Jpeg,
    Png,
}

impl Format {
    pub(crate) fn ext(self) -> &'static str {
        match self {
            Format::Webp => "webp",
            Format::Jpeg => "jpg",
            Format::Png => "png",
        }
    }

    pub(crate) fn mime(self) -> &'static str {
        match self {
            Format::Webp => "image/webp",
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
        }
    }
}

/// One width of a photo in one format. Its length and SHA-256 are known
/// without reading it (the cache entry's index keeps them), so a rebuild
/// whose output already holds it never reads its bytes.
#[derive(Debug, Clone)]
pub(crate) struct Variant {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) format: Format,
    pub(crate) len: u64,
    /// Hex SHA-256 of its bytes.
    pub(crate) sha256: String,
    /// Its file in the cache.
    pub(crate) path: PathBuf,
    /// Its bytes, when this build made it (else read from `path` on demand).
    pub(crate) data: Option<Vec<u8>>,
}

impl Variant {
    fn made(width: u32, height: u32, format: Format, bytes: Vec<u8>, entry: &Path) -> Variant {
        Variant {
            width,
            height,
            format,
            len: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&bytes)),
            path: entry.join(cached_name((width, format))),
            data: Some(bytes),
        }
    }

    /// How an index keeps it: `<width>,<height>,<ext>,<len>,<sha256>`.
    fn describe(&self) -> String {
        let ext = self.format.ext();
        format!(
            "{},{},{ext},{},{}",
            self.width, self.height, self.len, self.sha256
        )
    }

    /// A variant `describe` wrote, its file in `entry`.
    fn parse(text: &str, entry: &Path) -> Option<Variant> {
        let f: Vec<&str> = text.split(',').collect();
        let [w, h, ext, len, sha] = f[..] else {
            return None;
        };
        let format = match ext {
            "webp" => Format::Webp,
            "png" => Format::Png,
            _ => Format::Jpeg,
        };
        let width = w.parse().ok()?;
        Some(Variant {
            width,
            height: h.parse().ok()?,
            format,
            len: len.parse().ok()?,
            sha256: sha.to_string(),
            path: entry.join(cached_name((width, format))),
            data: None,
        })
    }

    /// Its bytes: in memory when just made, else from the cache.
    pub(crate) fn read(&self) -> std::io::Result<std::borrow::Cow<'_, [u8]>> {
        match &self.data {
            Some(d) => Ok(d.into()),
            None => std::fs::read(&self.path).map(Into::into),
        }
    }
}

/// What a photo became.
#[derive(Debug, Clone)]
pub(crate) struct Made {
    /// The photo's own width and height.
    pub(crate) size: (u32, u32),
    /// WebP then the photo's own format, each in ascending widths.
    pub(crate) variants: Vec<Variant>,
    /// Whether it was taken from the cache (nothing decoded).
    pub(crate) cached: bool,
    /// Its cache entry's name (the hash of its bytes and the settings).
    pub(crate) entry: String,
}

/// Why a photo could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ImageError {
    #[error("cannot read the image: {0}")]
    Decode(String),
    #[error("cannot make a {format} of {width} px: {why}")]
    Encode {
        format: &'static str,
        width: u32,
        why: String,
    },
}

pub(crate) use crate::site::theme::is_photo;

/// A photo's own format, the fallback's (`is_photo` says which are photos).
fn source_format(logical: &str) -> Option<Format> {
    if !is_photo(logical) {
        return None;
    }
    match logical.rsplit_once('.')?.1.to_ascii_lowercase().as_str() {
        "png" => Some(Format::Png),
        _ => Some(Format::Jpeg),
    }
}

/// The widths a photo of `width` px is made in: the configured ones below
/// it, and its own when it is smaller than the largest.
pub(crate) fn widths_for(width: u32, config: &ImagesConfig) -> Vec<u32> {
    let mut w: Vec<u32> = config
        .widths
        .iter()
        .copied()
        .filter(|x| *x < width)
        .collect();
    if config.widths.last().is_none_or(|max| width <= *max) || w.is_empty() {
        w.push(width);
    }
    w
}

/// Makes every photo of `photos`; one result each, in order. A photo on
/// disk whose path, size, modification time and inode the sale's stat index
/// lists (one file, `<dir>/stat/<scope>`) is not read at all, nor are its
/// variants: the index has their lengths and hashes. The others are made
/// (or found in the cache by their bytes) in parallel, and the index is
/// rewritten to list exactly this build's photos.
pub(crate) fn make_all(
    photos: &[&StaticSource],
    settings: &Settings,
) -> Vec<Result<Made, ImageError>> {
    let index = settings.dir.join("stat").join(&settings.scope);
    let old = std::fs::read_to_string(&index).unwrap_or_default();
    let known: std::collections::HashMap<&str, &str> =
        old.lines().filter_map(|l| l.split_once(' ')).collect();
    let keys: Vec<Option<String>> = photos
        .iter()
        .map(|s| s.stat.map(|st| stat_key(s, st, settings)))
        .collect();
    let mut results: Vec<Option<Result<Made, ImageError>>> = keys
        .iter()
        .map(|k| {
            let line = known.get(k.as_deref()?)?;
            from_index(line, settings).map(Ok)
        })
        .collect();
    let missing: Vec<usize> = (0..photos.len())
        .filter(|i| results[*i].is_none())
        .collect();
    let done = std::sync::atomic::AtomicUsize::new(photos.len() - missing.len());
    let made: Vec<(usize, Result<Made, ImageError>)> = missing
        .par_iter()
        .map(|i| {
            let s = photos[*i];
            let made = s
                .read()
                .map_err(|e| ImageError::Decode(e.to_string()))
                .and_then(|bytes| make(&s.logical, &bytes, settings));
            if let Some(progress) = &settings.progress {
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                progress(n, photos.len(), made.as_ref().is_ok_and(|m| !m.cached));
            }
            (*i, made)
        })
        .collect();
    let changed = !made.is_empty() || known.len() != photos.len();
    for (i, m) in made {
        results[i] = Some(m);
    }
    let results: Vec<Result<Made, ImageError>> = results.into_iter().flatten().collect();
    if changed {
        let mut lines = String::new();
        for (key, made) in keys.iter().zip(&results) {
            if let (Some(key), Ok(made)) = (key, made) {
                lines.push_str(&format!("{key} {}\n", index_line(made)));
            }
        }
        // An optimisation: a failed write costs the next build a read.
        let _ = std::fs::create_dir_all(index.parent().unwrap_or(Path::new(".")))
            .and_then(|_| crate::util::fs::write_atomically(&index, lines.as_bytes()));
    }
    results
}

/// The stat index's name for a photo: where it is, what its file looks
/// like, and the settings.
fn stat_key(s: &StaticSource, st: FileStat, settings: &Settings) -> String {
    let mut h = Sha256::new();
    h.update(s.origin.to_string_lossy().as_bytes());
    h.update(
        format!(
            "|{}|{}|{}|{PIPELINE}|{:?}|{}",
            st.len, st.mtime_ns, st.ino, settings.config.widths, settings.config.quality
        )
        .as_bytes(),
    );
    hex::encode(&h.finalize()[..16])
}

/// A photo in the stat index: `<entry> <width> <height>`, then each variant
/// as `<width>,<height>,<ext>,<len>,<sha256>`.
fn index_line(m: &Made) -> String {
    let mut line = format!("{} {} {}", m.entry, m.size.0, m.size.1);
    for v in &m.variants {
        line.push(' ');
        line.push_str(&v.describe());
    }
    line
}

/// The photo a stat index line names, when its cache entry is still there
/// (entries appear whole, by a rename, so the directory stands for its files).
fn from_index(line: &str, settings: &Settings) -> Option<Made> {
    let mut parts = line.split(' ');
    let name = parts.next()?;
    let size: (u32, u32) = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
    let entry = settings.dir.join(name);
    let variants = parts
        .map(|v| Variant::parse(v, &entry))
        .collect::<Option<Vec<Variant>>>()?;
    (!variants.is_empty() && entry.is_dir()).then(|| Made {
        size,
        variants,
        cached: true,
        entry: name.to_string(),
    })
}

/// Every width in WebP; in the photo's own format only the two widths a
/// browser without WebP or a sharing card takes (`fallback_widths`).
fn plan(size: (u32, u32), widths: &[u32], own: Format) -> Vec<(u32, u32, Format)> {
    let webp = widths.iter().map(|w| (*w, Format::Webp));
    let own = fallback_widths(widths).into_iter().map(|w| (w, own));
    webp.chain(own)
        .map(|(w, f)| (w, height_for(size, w), f))
        .collect()
}

/// The widths made in the photo's own format: the widest up to
/// `FALLBACK_WIDTH` (the `<img src>` of browsers without WebP, about 3 % of
/// them) and the widest of all (sharing cards: not every crawler reads
/// WebP). Every width in both formats would double the files for those few.
pub(crate) fn fallback_widths(widths: &[u32]) -> Vec<u32> {
    let small = widths
        .iter()
        .rev()
        .find(|w| **w <= FALLBACK_WIDTH)
        .or(widths.first());
    let mut out: Vec<u32> = small.into_iter().chain(widths.last()).copied().collect();
    out.dedup();
    out
}

/// The `<img src>` width of a photo for browsers without WebP (at most).
pub(crate) const FALLBACK_WIDTH: u32 = 800;

/// Makes one photo, from the cache when it has it.
pub(crate) fn make(logical: &str, bytes: &[u8], settings: &Settings) -> Result<Made, ImageError> {
    let format = source_format(logical).unwrap_or(Format::Jpeg);
    let size = imagesize::blob_size(bytes)
        .map_err(|e| ImageError::Decode(e.to_string()))
        .map(|s| (s.width as u32, s.height as u32))?;
    let widths = widths_for(size.0, &settings.config);
    let name = key(bytes, &settings.config);
    let entry = settings.dir.join(&name);
    let plan = plan(size, &widths, format);
    if let Some(variants) = read_cached(&entry, &plan) {
        return Ok(Made {
            size,
            variants,
            cached: true,
            entry: name,
        });
    }
    let pixels = decode(bytes)?;
    let variants = plan
        .iter()
        .map(|(w, h, f)| {
            let resized = resize(&pixels, *w, *h)?;
            let bytes = encode(&resized, *w, *h, *f, settings.config.quality)?;
            Ok(Variant::made(*w, *h, *f, bytes, &entry))
        })
        .collect::<Result<Vec<_>, ImageError>>()?;
    // The cache is an optimisation: a failed write costs the next build time.
    if let Err(e) = write_cached(&entry, &variants) {
        tracing::warn!(error = %e, dir = %entry.display(), "image_cache_unwritable");
    }
    Ok(Made {
        size,
        variants,
        cached: false,
        entry: name,
    })
}

fn height_for((w, h): (u32, u32), width: u32) -> u32 {
    ((h as u64 * width as u64 + w as u64 / 2) / w.max(1) as u64).max(1) as u32
}

/// The cache entry's name: the photo's bytes and everything that decides
/// what it becomes.
fn key(bytes: &[u8], config: &ImagesConfig) -> String {
    let mut h = Sha256::new();
    h.update(bytes);
    h.update(format!("|{PIPELINE}|{:?}|{}", config.widths, config.quality).as_bytes());
    hex::encode(&h.finalize()[..16])
}

fn cached_name(v: (u32, Format)) -> String {
    format!("{}.{}", v.0, v.1.ext())
}

/// The variants of `plan` in the cache entry, by its index (a variant a
/// line, as `Variant::describe`): each file's length is checked, none is read.
fn read_cached(entry: &Path, plan: &[(u32, u32, Format)]) -> Option<Vec<Variant>> {
    let index = std::fs::read_to_string(entry.join(INDEX)).ok()?;
    let known: Vec<Variant> = index
        .lines()
        .filter_map(|l| Variant::parse(l, entry))
        .collect();
    plan.iter()
        .map(|(w, h, f)| {
            let v = known
                .iter()
                .find(|v| (v.width, v.height, v.format) == (*w, *h, *f))?;
            let on_disk = std::fs::metadata(&v.path).ok()?;
            (on_disk.len() == v.len).then(|| v.clone())
        })
        .collect()
}

/// A cache entry's index of its variants.
const INDEX: &str = "index";

/// Writes every variant into a fresh directory, then renames it into place:
/// an entry is whole or absent.
fn write_cached(entry: &Path, variants: &[Variant]) -> std::io::Result<()> {
    let parent = entry.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        crate::util::random::hex(4)
    ));
    std::fs::create_dir_all(&tmp)?;
    let mut index = String::new();
    for v in variants {
        let name = cached_name((v.width, v.format));
        std::fs::write(tmp.join(&name), v.read()?)?;
        index.push_str(&v.describe());
        index.push('\n');
    }
    // Last: an entry with an index has every file it names.
    std::fs::write(tmp.join(INDEX), index)?;
    match std::fs::rename(&tmp, entry) {
        Ok(()) => Ok(()),
        // Another build made it meanwhile: theirs is as good.
        Err(_) if entry.is_dir() => std::fs::remove_dir_all(&tmp),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// Decoded pixels: RGB, or RGBA when the photo has transparency.
struct Pixels {
    width: u32,
    height: u32,
    alpha: bool,
    data: Vec<u8>,
}

fn decode(bytes: &[u8]) -> Result<Pixels, ImageError> {
    let img = image::load_from_memory(bytes).map_err(|e| ImageError::Decode(e.to_string()))?;
    let (width, height) = (img.width(), img.height());
    let alpha = img.color().has_alpha();
    let data = if alpha {
        img.into_rgba8().into_raw()
    } else {
        img.into_rgb8().into_raw()
    };
    Ok(Pixels {
        width,
        height,
        alpha,
        data,
    })
}

fn resize(p: &Pixels, width: u32, height: u32) -> Result<Pixels, ImageError> {
    let kind = if p.alpha {
        fr::PixelType::U8x4
    } else {
        fr::PixelType::U8x3
    };
    let failed = |why: String| ImageError::Encode {
        format: "resize",
        width,
        why,
    };
    if (width, height) == (p.width, p.height) {
        return Ok(Pixels {
            width,
            height,
            alpha: p.alpha,
            data: p.data.clone(),
        });
    }
    let src = fr::images::ImageRef::new(p.width, p.height, &p.data, kind)
        .map_err(|e| failed(e.to_string()))?;
    let mut dst = fr::images::Image::new(width, height, kind);
    let options =
        fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3));
    fr::Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| failed(e.to_string()))?;
    Ok(Pixels {
        width,
        height,
        alpha: p.alpha,
        data: dst.into_vec(),
    })
}

fn encode(p: &Pixels, w: u32, h: u32, format: Format, quality: u8) -> Result<Vec<u8>, ImageError> {
    let failed = |why: String| ImageError::Encode {
        format: format.ext(),
        width: w,
        why,
    };
    let color = if p.alpha {
        image::ExtendedColorType::Rgba8
    } else {
        image::ExtendedColorType::Rgb8
    };
    let mut out = Vec::new();
    match format {
        Format::Webp => {
            let enc = if p.alpha {
                webp::Encoder::from_rgba(&p.data, w, h)
            } else {
                webp::Encoder::from_rgb(&p.data, w, h)
            };
            let data = enc
                .encode_simple(false, quality as f32)
                .map_err(|e| failed(format!("{e:?}")))?;
            out.extend_from_slice(&data);
        }
        Format::Jpeg => {
            let rgb: std::borrow::Cow<[u8]> = if p.alpha {
                p.data
                    .chunks_exact(4)
                    .flat_map(|c| [c[0], c[1], c[2]])
                    .collect::<Vec<u8>>()
                    .into()
            } else {
                (&p.data[..]).into()
            };
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
                .write_image(&rgb, w, h, image::ExtendedColorType::Rgb8)
                .map_err(|e| failed(e.to_string()))?;
        }
        Format::Png => {
            image::codecs::png::PngEncoder::new(&mut out)
                .write_image(&p.data, w, h, color)
                .map_err(|e| failed(e.to_string()))?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_is_made_in_the_widths_below_its_own() {
        let c = ImagesConfig {
            widths: vec![320, 640, 1080],
            quality: 75,
        };
        assert_eq!(widths_for(4000, &c), [320, 640, 1080]);
        assert_eq!(widths_for(800, &c), [320, 640, 800]);
        assert_eq!(widths_for(1080, &c), [320, 640, 1080]);
        assert_eq!(widths_for(200, &c), [200]);
        assert_eq!(height_for((4000, 3000), 1080), 810);
        assert_eq!(fallback_widths(&[320, 640, 800, 1080]), [800, 1080]);
        assert_eq!(fallback_widths(&[320, 640, 1080]), [640, 1080]);
        assert_eq!(fallback_widths(&[1080, 1440]), [1080, 1440]);
        assert_eq!(fallback_widths(&[200]), [200]);
    }

    #[test]
    fn a_photo_is_made_once_then_taken_from_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            config: ImagesConfig {
                widths: vec![32, 64],
                quality: 75,
            },
            dir: dir.path().join("images"),
            progress: None,
            scope: "test".into(),
        };
        let mut jpg = Vec::new();
        let px: Vec<u8> = (0..100 * 80 * 3).map(|i| (i % 251) as u8).collect();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpg, 90)
            .write_image(&px, 100, 80, image::ExtendedColorType::Rgb8)
            .unwrap();
        let first = make("p.jpg", &jpg, &settings).unwrap();
        assert!(!first.cached);
        assert_eq!(first.size, (100, 80));
        let kinds: Vec<(u32, u32, Format)> = first
            .variants
            .iter()
            .map(|v| (v.width, v.height, v.format))
            .collect();
        assert_eq!(
            kinds,
            [
                (32, 26, Format::Webp),
                (64, 51, Format::Webp),
                (64, 51, Format::Jpeg)
            ]
        );
        assert!(first.variants[0].read().unwrap().starts_with(b"RIFF"));
        let webp = imagesize::blob_size(&first.variants[1].read().unwrap()).unwrap();
        assert_eq!((webp.width, webp.height), (64, 51));
        let jpeg = image::load_from_memory(&first.variants[2].read().unwrap()).unwrap();
        assert_eq!((jpeg.width(), jpeg.height()), (64, 51));
        let again = make("p.jpg", &jpg, &settings).unwrap();
        assert!(again.cached);
        // Known by the entry's index: nothing read until asked for.
        assert!(again.variants[2].data.is_none());
        assert_eq!(again.variants[2].sha256, first.variants[2].sha256);
        assert_eq!(
            again.variants[2].read().unwrap(),
            first.variants[2].read().unwrap()
        );
        // Other settings, another entry.
        let mut other = settings.clone();
        other.config.quality = 50;
        assert!(!make("p.jpg", &jpg, &other).unwrap().cached);
        // A photo on disk the stat index has seen is not read again: the
        // same size, time and inode with other bytes is taken for the same.
        let path = dir.path().join("p.jpg");
        std::fs::write(&path, &jpg).unwrap();
        let source = |p: &std::path::Path| StaticSource {
            logical: "p.jpg".into(),
            bytes: Vec::new(),
            origin: p.to_path_buf(),
            stat: Some(FileStat::of(p).unwrap()),
        };
        let first = make_all(&[&source(&path)], &settings).remove(0).unwrap();
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::fs::write(&path, vec![0u8; jpg.len()]).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        let again = make_all(&[&source(&path)], &settings).remove(0).unwrap();
        assert!(again.cached);
        assert_eq!(again.variants.len(), first.variants.len());
        assert_eq!(
            again.variants[2].read().unwrap(),
            first.variants[2].read().unwrap()
        );
        // An index line whose cache entry is gone: made again.
        std::fs::write(&path, &jpg).unwrap();
        let known = make_all(&[&source(&path)], &settings).remove(0).unwrap();
        assert!(known.cached);
        std::fs::remove_dir_all(settings.dir.join(&known.entry)).unwrap();
        let remade = make_all(&[&source(&path)], &settings).remove(0).unwrap();
        assert!(!remade.cached);
        assert!(
            make_all(&[&source(&path)], &settings)
                .remove(0)
                .unwrap()
                .cached
        );
        // A change the stat shows is read: these bytes are no photo.
        std::fs::write(&path, vec![0u8; jpg.len() + 1]).unwrap();
        let err = make_all(&[&source(&path)], &settings)
            .remove(0)
            .unwrap_err();
        assert!(err.to_string().contains("cannot read the image"), "{err}");
        // A broken photo says so.
        let err = make("p.jpg", &jpg[..200], &settings).unwrap_err();
        assert!(err.to_string().contains("cannot read the image"), "{err}");
    }
}

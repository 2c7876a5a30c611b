//! `[images]`: the widths product photos are made in, and their quality.

use serde::Deserialize;
use toml::Spanned;

use super::Checker;

/// Keys of `[images]`, with an example line for each.
pub(crate) const IMAGES_KEYS: &[(&str, &str)] = &[
    ("widths", "widths = [320, 480, 640, 800, 1080, 1440]"),
    ("quality", "quality = 75"),
];

/// The widths the default theme shows a photo at, in device pixels: a phone
/// (380 CSS px) at DPR 1 takes 480, at DPR 2.625 takes 1080; a 1280-px
/// desktop (540 CSS px) takes 640, at DPR 2 takes 1440.
pub(crate) const DEFAULT_WIDTHS: &[u32] = &[320, 480, 640, 800, 1080, 1440];

/// WebP quality unless given: photos look right and stay small.
pub(crate) const DEFAULT_QUALITY: u8 = 75;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImagesConfig {
    /// Ascending, distinct, each 16..=4096.
    pub(crate) widths: Vec<u32>,
    /// 1..=100, for WebP and the JPEG fallback alike.
    pub(crate) quality: u8,
}

impl Default for ImagesConfig {
    fn default() -> Self {
        ImagesConfig {
            widths: DEFAULT_WIDTHS.to_vec(),
            quality: DEFAULT_QUALITY,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawImages {
    widths: Option<Spanned<Vec<i64>>>,
    quality: Option<Spanned<i64>>,
}

impl RawImages {
    pub(crate) fn check(&self, cx: &mut Checker) -> ImagesConfig {
        let mut c = ImagesConfig::default();
        if let Some(w) = &self.widths {
            let mut widths: Vec<u32> = Vec::new();
            for n in w.get_ref() {
                match u32::try_from(*n) {
                    Ok(x) if (16..=4096).contains(&x) => widths.push(x),
                    _ => cx.push(
                        w.span(),
                        format!("`{n}` in `widths` is not a width in pixels"),
                        "list widths from 16 to 4096, e.g. `widths = [320, 480, 640, 800, 1080, 1440]`",
                    ),
                }
            }
            widths.sort_unstable();
            widths.dedup();
            if widths.is_empty() {
                cx.push(
                    w.span(),
                    "`widths` lists no width",
                    "e.g. `widths = [320, 480, 640, 800, 1080, 1440]` (the default)",
                );
            } else {
                c.widths = widths;
            }
        }
        if let Some(q) = &self.quality {
            match u8::try_from(*q.get_ref()) {
                Ok(x) if (1..=100).contains(&x) => c.quality = x,
                _ => cx.push(
                    q.span(),
                    format!("`quality = {}` is not a quality", q.get_ref()),
                    "a number from 1 to 100; 75 (the default) suits photos",
                ),
            }
        }
        c
    }
}

//! `[[items]]` tables (and item files' front matter) as written. `content`
//! checks them against the sale: prices against the currency, images against
//! the static files, SKUs and slugs for uniqueness.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;

/// Keys of an item, inline or in front matter, with an example line for each.
pub(crate) const ITEM_KEYS: &[(&str, &str)] = &[
    ("sku", "sku = \"MUG-01\""),
    ("title", "title = \"Enamel mug\""),
    ("price", "price = 4.90"),
    ("original_price", "original_price = 19.90"),
    ("stock", "stock = 100"),
    ("image", "image = \"images/mug.svg\""),
    ("slug", "slug = \"enamel-mug\""),
    ("description", "description = \"A **sturdy** mug.\""),
    (
        "translations",
        "[items.translations.en]\ntitle = \"Enamel mug\"",
    ),
];

/// An item's fields as written, inline or in front matter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawItem {
    pub(crate) sku: Spanned<String>,
    pub(crate) title: Spanned<String>,
    pub(crate) price: Spanned<PriceText>,
    pub(crate) original_price: Option<Spanned<PriceText>>,
    pub(crate) stock: Spanned<i64>,
    pub(crate) image: Option<Spanned<String>>,
    pub(crate) slug: Option<Spanned<String>>,
    pub(crate) description: Option<Spanned<String>>,
    /// Title and description in the sale's other languages.
    #[serde(default)]
    pub(crate) translations:
        std::collections::BTreeMap<String, Spanned<super::languages::ItemText>>,
}

/// A price as written: an integer, a decimal or a string like `"9.90"`.
/// Kept as decimal text so no floating point rounding touches money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PriceText(pub String);

impl<'de> Deserialize<'de> for PriceText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PriceText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a price such as 9.90 or \"9.90\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PriceText, E> {
                Ok(PriceText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PriceText, E> {
                Ok(PriceText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<PriceText, E> {
                // Rust prints the shortest text that reads back as the same
                // float, so 9.9 stays "9.9" (and infinities stay refusable text).
                Ok(PriceText(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PriceText, E> {
                Ok(PriceText(v.trim().to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl PriceText {
    /// The text if it is a non-negative decimal number (`9`, `9.9`, `9.90`).
    pub(crate) fn decimal(&self) -> Option<&str> {
        let s = self.0.as_str();
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        (!whole.is_empty()
            && digits(whole)
            && digits(frac)
            && !(s.contains('.') && frac.is_empty()))
        .then_some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_decimals_are_prices() {
        for ok in ["9", "9.9", "9.90", "0.5"] {
            assert_eq!(PriceText(ok.into()).decimal(), Some(ok));
        }
        for bad in ["", "-1", "9.", ".5", "1e3", "inf", "NaN", "9,90"] {
            assert_eq!(PriceText(bad.into()).decimal(), None, "{bad}");
        }
    }
}

//! `language`, `languages` and `[translations.<language>]`: what languages
//! the sale is in. The first is the default: its pages are at the root, each
//! other language's under `/<language>/` (lowercase, as `/zh-cn/`). One
//! toggle and one gate serve them all.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::Checker;

/// The sale's title and description in one of its other languages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SaleText {
    pub(crate) title: Option<String>,
    pub(crate) description: Option<String>,
}

/// An item's words in one of the sale's other languages: its title and its
/// Markdown description. Either may be left out (the default language's is
/// shown). Everything else about an item is the same in every language.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ItemText {
    pub(crate) title: Option<Spanned<String>>,
    pub(crate) description: Option<String>,
}

/// Keys of an item's translation (`[items.translations.en]`, `mug.en.md`).
pub(crate) const ITEM_TEXT_KEYS: &[(&str, &str)] = &[
    ("title", "title = \"Enamel camping mug\""),
    ("description", "description = \"A light **enamel mug**.\""),
];

/// The languages of a sale, checked: BCP 47 tags, the default first, none twice.
pub(crate) fn check(
    language: Option<&Spanned<String>>,
    languages: Option<&Spanned<Vec<String>>>,
    translations: &BTreeMap<String, Spanned<SaleText>>,
    cx: &mut Checker,
) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    let tag = |text: &str, span: std::ops::Range<usize>, cx: &mut Checker| -> Option<String> {
        match text.parse::<icu_locale_core::LanguageIdentifier>() {
            Ok(_) if !text.is_empty() && text.len() <= 35 => Some(text.to_string()),
            _ => {
                cx.push(
                    span,
                    format!("`{text}` is not a language tag"),
                    "write a BCP 47 tag such as \"en\", \"de\", \"zh-CN\" or \"pt-BR\"",
                );
                None
            }
        }
    };
    if let Some(list) = languages {
        if list.get_ref().is_empty() {
            cx.push(
                list.span(),
                "`languages` is empty",
                "list the sale's languages, its default first, e.g. `languages = [\"zh-CN\", \"en\"]`, or remove the line",
            );
        }
        for l in list.get_ref() {
            let Some(t) = tag(l, list.span(), cx) else {
                continue;
            };
            if all.iter().any(|a| a.eq_ignore_ascii_case(&t)) {
                cx.push(
                    list.span(),
                    format!("`{t}` is listed twice in `languages`"),
                    "list each language once",
                );
            } else {
                all.push(t);
            }
        }
    }
    match (language, all.first()) {
        (Some(l), Some(first)) if !l.get_ref().eq_ignore_ascii_case(first) => cx.push(
            l.span(),
            format!(
                "`language = \"{}\"` but `languages` starts with \"{first}\"",
                l.get_ref()
            ),
            "the default language comes first in `languages`; put it there, or remove `language`",
        ),
        (Some(l), None) => {
            if let Some(t) = tag(l.get_ref(), l.span(), cx) {
                all.push(t);
            }
        }
        _ => {}
    }
    if all.is_empty() {
        all.push("en".to_string());
    }
    for (lang, text) in translations {
        let known = all[1..].iter().any(|a| a.eq_ignore_ascii_case(lang));
        if !known {
            cx.push(
                text.span(),
                format!("`[translations.{lang}]`, but `{lang}` is not one of the sale's other languages"),
                format!(
                    "add it to `languages` (now {:?}), or remove the table; the default language's text is `title` and `description` at the top",
                    all
                ),
            );
        }
    }
    all
}

/// Where a language's pages go under the sale's root: `""` for the default
/// (first) language, `"zh-cn/"` for the others.
pub(crate) fn prefix(languages: &[String], language: &str) -> String {
    if languages.first().is_some_and(|d| d == language) {
        String::new()
    } else {
        format!("{}/", language.to_ascii_lowercase())
    }
}

/// The translation for `language` in a table keyed by language tags, the
/// tag's case not mattering.
pub(crate) fn lookup<'a, T>(table: &'a BTreeMap<String, T>, language: &str) -> Option<&'a T> {
    table
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(language))
        .map(|(_, v)| v)
}

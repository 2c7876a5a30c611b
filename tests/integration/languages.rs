//! A sale in the customer's language, in Chromium: the demo's mug in each
//! shipped language through pending → open → won → too late → ended. At
//! every step no English word is on the page outside the product's own
//! data, and what the page says is its catalogue's message.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use crate::common::webdriver::Browser;
use crate::common::*;
use crate::sale_day::{mug_sale, shots};

/// A shipped catalogue, as TOML.
fn catalogue(language: &str) -> toml::Table {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("themes/default/i18n/{language}.toml"));
    toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every text of a catalogue (plural forms included).
fn texts(t: &toml::Table) -> Vec<String> {
    t.values()
        .flat_map(|v| match v {
            toml::Value::String(s) => vec![s.clone()],
            toml::Value::Table(forms) => forms
                .values()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect(),
            _ => vec![],
        })
        .collect()
}

/// Latin words of three letters or more, lowercased, placeholders left out.
fn words(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut depth = 0;
    let mut word = String::new();
    for c in text.chars().chain([' ']) {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            c if depth == 0 && c.is_ascii_alphabetic() => {
                word.push(c.to_ascii_lowercase());
                continue;
            }
            _ => {}
        }
        if word.len() >= 3 {
            out.insert(std::mem::take(&mut word));
        }
        word.clear();
    }
    out
}

/// A message of the catalogue as text (its `other` form if counted).
fn message(t: &toml::Table, key: &str) -> String {
    match &t[key] {
        toml::Value::String(s) => s.clone(),
        toml::Value::Table(forms) => forms["other"].as_str().unwrap().to_string(),
        v => panic!("{key}: {v}"),
    }
}

/// What the page shows, less the product's own data (its title, the
/// sale's title, the description) and hidden elements.
fn visible(b: &Browser) -> String {
    let text = b.eval(
        "var c = document.body.cloneNode(true); \
         c.querySelectorAll('.description, script, [hidden], h1, .top').forEach(function (e) { e.remove(); }); \
         return c.innerText",
    );
    text.as_str()
        .unwrap()
        .replace("Winter Flash Sale", "")
        .replace("Enamel camping mug", "")
}

/// The English words on the page: those of the English catalogue that the
/// language's own catalogue does not use (German says "Details" too).
fn english_on(page: &str, language: &str) -> Vec<String> {
    let en: BTreeSet<String> = texts(&catalogue("en"))
        .iter()
        .flat_map(|t| words(t))
        .collect();
    let own: BTreeSet<String> = texts(&catalogue(language))
        .iter()
        .flat_map(|t| words(t))
        .collect();
    words(page)
        .into_iter()
        .filter(|w| en.contains(w) && !own.contains(w))
        .collect()
}

fn text_of(b: &Browser, selector: &str) -> String {
    let v = b.eval(&format!(
        "return document.querySelector('{selector}').textContent"
    ));
    v.as_str().unwrap().to_string()
}

/// `text` is `template` with each `{name}` filled by something.
fn fills(text: &str, template: &str) -> bool {
    let parts: Vec<&str> = template
        .split('{')
        .map(|p| p.split_once('}').map_or(p, |(_, rest)| rest))
        .collect();
    let mut at = 0;
    for (i, part) in parts.iter().enumerate() {
        match text[at..].find(part) {
            Some(found) if i > 0 || found == 0 => at += found + part.len(),
            _ => return false,
        }
    }
    parts.last().is_none_or(|last| text.ends_with(last))
}

/// The demo's mug, one unit, in `language` and priced in `currency` (yen
/// prices whole: JPY has no minor unit).
fn mug_sale_in(language: &str, currency: &str) -> Sale {
    let sale = mug_sale(1);
    sale.write(
        "site.toml",
        &sale.read("site.toml").replace(
            "currency = \"EUR\"",
            &format!("currency = \"{currency}\"\nlanguage = \"{language}\""),
        ),
    );
    if currency == "JPY" {
        let item = sale.read("items/mug-01.md");
        sale.write(
            "items/mug-01.md",
            &item
                .replace("price = 4.90", "price = 490")
                .replace("original_price = 19.90", "original_price = 1990"),
        );
    }
    sale
}

fn a_sale_day_in(language: &str, currency: &str, price: &str) {
    let sale = mug_sale_in(language, currency);
    let t = catalogue(language);
    let server = Server::start(sale.path(), &["--no-watch", "--opens-in", "15s"]);
    let page = server.url("/items/mug-01/");
    let (alice, bob) = (Browser::start(), Browser::start());
    let clean = |b: &Browser, step: &str| {
        let shown = visible(b);
        let english = english_on(&shown, language);
        if language != "en" {
            assert!(
                english.is_empty(),
                "{language}, {step}: English {english:?} in:\n{shown}"
            );
        }
        let found = b.axe_violations();
        assert!(found.is_empty(), "{language}, {step}: axe: {found:#?}");
        b.screenshot(&shots().join(format!(
            "language-{language}-{}.png",
            step.replace(' ', "-")
        )));
        eprintln!("{language}, {step}: {}", shown.replace('\n', " / "));
    };
    for b in [&alice, &bob] {
        b.goto(&page);
    }
    alice.wait_until(
        "return document.body.dataset.state === 'pending' && !document.querySelector('[data-countdown]').hidden",
        Duration::from_secs(10),
    );
    alice.eval("window.__sameLoad = true; return true");
    let countdown = text_of(&alice, "[data-countdown]");
    assert!(
        fills(&countdown, &message(&t, "js_starts_in")) || countdown == message(&t, "js_starting"),
        "{language}: {countdown}"
    );
    assert_eq!(text_of(&alice, "[data-buy]"), message(&t, "buy_now"));
    assert!(
        text_of(&alice, ".price strong").contains(price),
        "{language}: price"
    );
    clean(&alice, "pending");
    for b in [&alice, &bob] {
        b.wait_until(
            "return document.querySelector('[data-buy]').disabled === false",
            Duration::from_secs(30),
        );
    }
    assert_eq!(text_of(&alice, "[data-status]"), message(&t, "js_on_sale"));
    clean(&alice, "open");
    alice.buy("won");
    assert!(
        fills(&text_of(&alice, "[data-result]"), &message(&t, "js_won")),
        "{language}: won"
    );
    clean(&alice, "won");
    bob.buy("sold_out");
    assert_eq!(text_of(&bob, "[data-result]"), message(&t, "js_too_late"));
    assert_eq!(text_of(&bob, "[data-stock]"), message(&t, "js_sold_out"));
    clean(&bob, "too late");
    alice.assert_turns_ended_saying(&message(&t, "ended_notice"), &message(&t, "js_sold_out"));
    clean(&alice, "ended");
}

#[test]
fn a_sale_day_in_simplified_chinese() {
    a_sale_day_in("zh-CN", "CNY", "¥4.90");
}

#[test]
fn a_sale_day_in_japanese() {
    a_sale_day_in("ja", "JPY", "￥490");
}

#[test]
fn a_sale_day_in_german() {
    a_sale_day_in("de", "EUR", "4,90\u{a0}€");
}

#[test]
fn a_sale_day_in_french() {
    a_sale_day_in("fr", "EUR", "4,90\u{a0}€");
}

#[test]
fn a_sale_day_in_spanish() {
    a_sale_day_in("es", "EUR", "4,90\u{a0}€");
}

#[test]
fn a_sale_day_in_arabic_right_to_left() {
    a_sale_day_in("ar", "EGP", "4.90");
}

#[test]
fn a_sale_day_in_english() {
    a_sale_day_in("en", "USD", "$4.90");
}

#[test]
fn the_english_check_sees_english_and_only_english() {
    // An untranslated message shows; a word both languages use does not.
    assert_eq!(english_on("Jetzt kaufen · Buy now", "de"), ["buy", "now"]);
    assert!(english_on("Dieser Verkauf ist beendet. Details", "de").is_empty());
    assert_eq!(english_on("立即抢购 Sold out", "zh-CN"), ["out", "sold"]);
    assert!(fills("Beginnt in 00:00:07", "Beginnt in {time}"));
    assert!(!fills("Starts in 00:00:07", "Beginnt in {time}"));
}

#[test]
fn every_language_keeps_the_item_page_in_one_round_trip() {
    for (language, currency) in [
        ("en", "USD"),
        ("zh-CN", "CNY"),
        ("ja", "JPY"),
        ("de", "EUR"),
        ("fr", "EUR"),
        ("es", "EUR"),
        ("ar", "EGP"),
    ] {
        let sale = mug_sale_in(language, currency);
        let out = ok(sale.run(&["check"]));
        let gzip: usize = out
            .split("heaviest item page ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{language}: {out}"));
        eprintln!("{language}: item page {gzip} bytes gzip");
        assert!(gzip < 14 * 1024, "{language}: {gzip} bytes gzip");
        assert!(!out.contains("catalogue"), "{language}: {out}");
    }
}

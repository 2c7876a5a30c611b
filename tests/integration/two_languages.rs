//! One sale in two languages (`examples/two-languages/`: Simplified Chinese
//! at the root, English under `/en/`): both trees built, every `hreflang`
//! pair valid both ways, one toggle and one gate for both, and `check`
//! naming an item without its second-language text.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::common::webdriver::Browser;
use crate::common::*;

/// The example, copied to a directory of its own.
fn example() -> Sale {
    let sale = Sale::new();
    for f in ["items/a-1.md", "items/b-2.md", "items/c-3.md", "site.toml"] {
        std::fs::remove_file(sale.path().join(f)).unwrap();
    }
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/two-languages");
    for entry in walkdir::WalkDir::new(&from) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(&from).unwrap();
        if entry.file_type().is_file() && !rel.starts_with("public") {
            sale.write_bytes(rel.to_str().unwrap(), &std::fs::read(entry.path()).unwrap());
        }
    }
    sale
}

/// One built page: its language and its `hreflang` alternates (language → URL).
#[derive(Debug)]
struct Page {
    lang: String,
    url: String,
    alternates: BTreeMap<String, String>,
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    tag[at..].split('"').next()
}

fn page(html: &str) -> Page {
    let html_tag = html
        .split("<html")
        .nth(1)
        .unwrap()
        .split('>')
        .next()
        .unwrap();
    let mut alternates = BTreeMap::new();
    let mut canonical = String::new();
    for link in html.split("<link").skip(1) {
        let tag = link.split('>').next().unwrap();
        match attr(tag, "rel") {
            Some("alternate") => {
                let lang = attr(tag, "hreflang").unwrap().to_string();
                let href = attr(tag, "href").unwrap().to_string();
                assert!(
                    alternates.insert(lang.clone(), href).is_none(),
                    "{lang} twice"
                );
            }
            Some("canonical") => canonical = attr(tag, "href").unwrap().to_string(),
            _ => {}
        }
    }
    Page {
        lang: attr(html_tag, "lang").unwrap().to_string(),
        url: canonical,
        alternates,
    }
}

/// Every HTML page of the build but the one 404 page, by absolute URL.
fn pages(public: &Path, origin: &str) -> BTreeMap<String, Page> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(public) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(public).unwrap().to_str().unwrap();
        if !rel.ends_with(".html") || rel == "404.html" {
            continue;
        }
        let p = page(&std::fs::read_to_string(entry.path()).unwrap());
        let url = format!("{origin}/{}", rel.strip_suffix("index.html").unwrap_or(rel));
        assert_eq!(p.url, url, "{rel}: canonical");
        out.insert(url, p);
    }
    out
}

#[test]
fn a_sale_in_two_languages_builds_both_trees_linked_both_ways() {
    let sale = example();
    let checked = sale.run(&["check"]);
    let said = stderr(&checked);
    ok(checked);
    assert!(!said.contains("warning"), "the example is complete: {said}");
    ok(sale.run(&["build"]));
    let public = sale.path().join("public");
    for tree in ["", "en/"] {
        for page in [
            "index.html",
            "items/mug/index.html",
            "items/socks/index.html",
            "ended.html",
        ] {
            assert!(public.join(tree).join(page).is_file(), "{tree}{page}");
        }
    }
    let toggles: Vec<_> = walkdir::WalkDir::new(&public)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name() == "sale.js")
        .map(|e| e.path().strip_prefix(&public).unwrap().to_path_buf())
        .collect();
    assert_eq!(toggles, [Path::new("sale.js")], "one toggle");

    let origin = "https://sale.example.cn";
    let all = pages(&public, origin);
    assert_eq!(all.len(), 8, "{:?}", all.keys());
    for (url, p) in &all {
        // Every page names itself, its twin, and the default as x-default.
        assert_eq!(p.alternates.len(), 3, "{url}: {:?}", p.alternates);
        assert_eq!(p.alternates.get(&p.lang), Some(url), "{url}: names itself");
        let default = &p.alternates["zh-CN"];
        assert_eq!(p.alternates.get("x-default"), Some(default), "{url}");
        for (lang, href) in p.alternates.iter().filter(|(l, _)| *l != "x-default") {
            let twin = all
                .get(href)
                .unwrap_or_else(|| panic!("{url}: {lang} → {href}: no such page"));
            assert_eq!(&twin.lang, lang, "{href} is in {}", twin.lang);
            assert_eq!(twin.alternates.get(&p.lang), Some(url), "{href} → back");
        }
        let html_path = url.strip_prefix(origin).unwrap();
        let file = match html_path.ends_with('/') {
            true => format!("{html_path}index.html"),
            false => html_path.to_string(),
        };
        let html = std::fs::read_to_string(public.join(&file[1..])).unwrap();
        assert!(
            html.contains("data-toggle=\"/sale.js\""),
            "{url}: one toggle"
        );
    }
    let en = std::fs::read_to_string(public.join("en/items/mug/index.html")).unwrap();
    let zh = std::fs::read_to_string(public.join("items/mug/index.html")).unwrap();
    assert!(
        en.contains("<h1 dir=\"auto\">Enamel camping mug</h1>"),
        "{en}"
    );
    assert!(
        en.contains("<strong>enamel mug</strong>") && !en.contains("搪瓷"),
        "{en}"
    );
    assert!(
        zh.contains(">搪瓷露营杯</h1>") && zh.contains("¥4.90"),
        "{zh}"
    );
    assert!(en.contains("CN¥4.90") && en.contains("Buy now"), "{en}");
    // The switcher: the other language's page, named in its own language.
    assert!(
        en.contains("<a href=\"/items/mug/\" hreflang=\"zh-CN\" lang=\"zh-CN\">简体中文</a>"),
        "{en}"
    );
    assert!(
        zh.contains("<a href=\"/en/items/mug/\" hreflang=\"en\" lang=\"en\">English</a>"),
        "{zh}"
    );
    // The English listing is in English and links the English pages.
    let listing = std::fs::read_to_string(public.join("en/index.html")).unwrap();
    assert!(
        listing.contains("href=\"/en/items/socks/\"") && listing.contains("Merino hiking socks")
    );
    assert!(
        listing.contains("<title>Winter Flash Sale</title>"),
        "{listing}"
    );

    // An item loses its English text: `check` names it and says what to add;
    // its English page still exists, in the default language's words.
    std::fs::remove_file(sale.path().join("items/socks.en.md")).unwrap();
    let checked = sale.run(&["check"]);
    let out = stderr(&checked);
    ok(checked);
    let warning = out
        .lines()
        .find(|l| l.contains("SOCK-3P"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        warning.contains("items/socks.md:2:")
            && warning.contains("has no en text")
            && warning.contains("items/socks.en.md"),
        "{warning}"
    );
    assert!(!out.contains("MUG-01"), "{out}");
    ok(sale.run(&["build"]));
    let socks = std::fs::read_to_string(public.join("en/items/socks/index.html")).unwrap();
    assert!(socks.contains("美利奴徒步袜") && socks.contains("<html lang=\"en\""));
}

#[test]
fn translations_of_nothing_are_refused_with_the_fix() {
    let sale = example();
    // A language the sale is not in.
    let toml = sale.read("site.toml");
    sale.write(
        "site.toml",
        &toml.replace("[translations.en]", "[translations.fr]"),
    );
    let err = fails(sale.run(&["build"]));
    assert!(
        err.contains("site.toml:") && err.contains("`fr` is not one of the sale's other languages"),
        "{err}"
    );
    assert!(err.contains("add it to `languages`"), "{err}");
    sale.write("site.toml", &toml);
    // A translation whose item file is gone.
    std::fs::rename(
        sale.path().join("items/socks.md"),
        sale.path().join("items/sock.md"),
    )
    .unwrap();
    let err = fails(sale.run(&["build"]));
    assert!(
        err.contains("items/socks.en.md") && err.contains("an item that does not exist"),
        "{err}"
    );
    // `language` that is not the first of `languages`.
    sale.write(
        "site.toml",
        &toml.replace("languages = [", "language = \"en\"\nlanguages = ["),
    );
    let err = fails(sale.run(&["build"]));
    assert!(err.contains("the default language comes first"), "{err}");
    // A tag that is no language.
    sale.write(
        "site.toml",
        &toml.replace("\"zh-CN\", \"en\"", "\"zh-CN\", \"english!\""),
    );
    let err = fails(sale.run(&["build"]));
    assert!(err.contains("`english!` is not a language tag"), "{err}");
}

#[test]
fn one_toggle_and_one_gate_sell_the_last_unit_once_across_languages() {
    let sale = example();
    let server = Server::start(sale.path(), &["--no-watch", "--opens-in", "12s"]);
    let (alice, bob) = (Browser::start(), Browser::start());
    alice.goto(&server.url("/items/mug/"));
    bob.goto(&server.url("/en/items/mug/"));
    for (b, lang) in [(&alice, "zh-CN"), (&bob, "en")] {
        assert_eq!(
            b.eval("return document.documentElement.lang").as_str(),
            Some(lang)
        );
        let found = b.axe_violations();
        assert!(found.is_empty(), "{lang}: axe: {found:#?}");
    }
    for b in [&alice, &bob] {
        b.wait_until(
            "return document.querySelector('[data-buy]').disabled === false",
            Duration::from_secs(30),
        );
    }
    // One unit: the English buyer takes it, the Chinese one is told so in Chinese.
    bob.buy("won");
    alice.buy("sold_out");
    let said = alice.eval("return document.querySelector('[data-result]').textContent");
    let zh: toml::Table = toml::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("themes/default/i18n/zh-CN.toml"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(said.as_str(), zh["js_too_late"].as_str());
    // The switcher leads to the same item in the other language.
    bob.click(".langs a");
    bob.wait_until(
        "return document.documentElement.lang === 'zh-CN' && location.pathname === '/items/mug/'",
        Duration::from_secs(10),
    );
}

#[test]
fn the_preview_rerenders_a_translation_when_it_is_edited() {
    let sale = example();
    let server = Server::start(sale.path(), &[]);
    let page = |path: &str| String::from_utf8(get(&server.url(path)).2).unwrap();
    assert!(page("/en/items/mug/").contains("Enamel camping mug"));
    let zh_before = page("/items/mug/");
    sale.write(
        "items/mug.en.md",
        &sale
            .read("items/mug.en.md")
            .replace("Enamel camping mug", "Enamel mug for campers"),
    );
    wait_for(
        "the English page to change",
        Duration::from_secs(10),
        || page("/en/items/mug/").contains("Enamel mug for campers"),
    );
    assert!(
        page("/en/").contains("Enamel mug for campers"),
        "the English listing"
    );
    assert_eq!(
        page("/items/mug/"),
        zh_before,
        "the Chinese page is untouched"
    );
    // A translation deleted: its page falls back to the default language.
    std::fs::remove_file(sale.path().join("items/socks.en.md")).unwrap();
    wait_for(
        "the English socks page to fall back",
        Duration::from_secs(10),
        || page("/en/items/socks/").contains("美利奴徒步袜"),
    );
}

//! `new`, `build` and `check` through the real binary: output, determinism,
//! incremental writes, and bad input that must fail clearly and change nothing.

use crate::common::*;

#[test]
fn help_explains_every_command_and_usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let top = ok(run(dir.path(), &["--help"]));
    for cmd in ["new", "build", "check", "serve"] {
        assert!(top.contains(cmd), "{top}");
        let help = ok(run(dir.path(), &[cmd, "--help"]));
        assert!(help.len() > 200, "{cmd} --help is too thin:\n{help}");
        assert!(help.contains("--config"), "{help}");
    }
    let o = run(dir.path(), &["build", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(dir.path(), &["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn new_scaffolds_a_sale_that_builds_and_checks() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(run(dir.path(), &["new", "My Sale"]));
    assert!(out.contains("my-sale"), "{out}");
    let sale = dir.path().join("My Sale");
    for f in [
        "site.toml",
        "items/mug-01.md",
        "templates/item.html",
        "static/images/mug.svg",
        "i18n/en.toml",
        "i18n/zh-CN.toml",
    ] {
        assert!(sale.join(f).is_file(), "{f} missing");
    }
    assert!(
        !sale.join("templates/i18n").exists(),
        "catalogues are not templates"
    );
    ok(run(&sale, &["build"]));
    assert!(sale.join("public/items/mug-01/index.html").is_file());
    ok(run(&sale, &["check"]));
    // A second `new` into the same (now non-empty) directory refuses.
    let err = fails(run(dir.path(), &["new", "My Sale"]));
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn build_writes_pages_assets_toggle_and_manifest() {
    let sale = Sale::new();
    let out = ok(sale.run(&["build"]));
    assert!(out.contains("3 items"), "{out}");
    for f in [
        "index.html",
        "items/a-1/index.html",
        "items/b-2/index.html",
        "ended.html",
        "404.html",
        "sale.js",
        "manifest.json",
    ] {
        assert!(sale.path().join("public").join(f).is_file(), "{f}");
    }
    let page = sale.read("public/items/a-1/index.html");
    assert!(
        page.contains("<button type=\"submit\" disabled data-buy>"),
        "{page}"
    );
    assert!(
        page.contains("Tuesday, January 1, 2030 at 10:00\u{202f}AM (UTC+08:00)"),
        "start in words:\n{page}"
    );
    assert!(
        page.contains("<table>") && page.contains("<strong>fine</strong>"),
        "markdown"
    );
    assert!(
        page.contains("€1.50") && page.contains("<s>€99.00</s>"),
        "prices"
    );
    assert!(page.contains("<style>"), "critical CSS inlined");

    let toggle = sale.read("public/sale.js");
    assert!(
        toggle.starts_with("flashsale({\"v\":\"") && toggle.contains("\"state\":\"pending\""),
        "{toggle}"
    );
    assert!(toggle.len() <= 512);

    let manifest: serde_json::Value =
        serde_json::from_str(&sale.read("public/manifest.json")).unwrap();
    let files = manifest["files"].as_array().unwrap();
    let by_path = |p: &str| {
        files
            .iter()
            .find(|f| f["path"] == p)
            .unwrap_or_else(|| panic!("{p} not in manifest"))
    };
    assert_eq!(
        by_path("sale.js")["headers"]["Cache-Control"],
        "public, max-age=0, s-maxage=1, must-revalidate"
    );
    assert_eq!(
        by_path("index.html")["headers"]["Cache-Control"],
        "public, max-age=60"
    );
    assert_eq!(
        by_path("index.html")["headers"]["Content-Type"],
        "text/html; charset=utf-8"
    );
    let assets: Vec<&serde_json::Value> = files
        .iter()
        .filter(|f| f["path"].as_str().unwrap().starts_with("assets/"))
        .collect();
    assert!(assets.len() >= 3, "style, runtime, image");
    for a in &assets {
        let path = a["path"].as_str().unwrap();
        assert_eq!(
            a["headers"]["Cache-Control"], "public, max-age=31536000, immutable",
            "{path}"
        );
        // assets/<name>.<16 hex>.<ext>, and the hash is the content's.
        let bytes = std::fs::read(sale.path().join("public").join(path)).unwrap();
        let sha = a["sha256"].as_str().unwrap();
        assert_eq!(bytes.len() as u64, a["size"].as_u64().unwrap());
        assert!(
            path.contains(&format!(".{}.", &sha[..16])) || path.ends_with(&sha[..16]),
            "{path}"
        );
        // The item page uses every asset: the style sheet, the runtime, its image.
        assert!(
            page.contains(&format!("\"/{path}\"")),
            "{path} is not used by the page"
        );
    }
    // Every output file is listed, and nothing else.
    let listed: std::collections::BTreeSet<String> = files
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    let on_disk: std::collections::BTreeSet<String> = sale
        .snapshot("public")
        .into_keys()
        .filter(|p| p != "manifest.json")
        .collect();
    assert_eq!(listed, on_disk);
}

/// The `content` of the first `<meta {attr}="{name}" content="...">`, HTML-decoded.
fn meta(page: &str, attr: &str, name: &str) -> String {
    let start = format!("<meta {attr}=\"{name}\" content=\"");
    let at = page
        .find(&start)
        .unwrap_or_else(|| panic!("no {name}: {page}"))
        + start.len();
    let raw = &page[at..at + page[at..].find('"').unwrap()];
    // The five entities the page's escaping writes; `&amp;` last.
    raw.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[test]
fn item_pages_carry_a_description_sharing_tags_and_product_data_escaped() {
    let sale = Sale::new();
    let title = "Mug \\\"Camp\\\" <b>bold</b> & Co's";
    let md = sale
        .read("items/a-1.md")
        .replace("title = \"Alpha\"", &format!("title = \"{title}\""));
    sale.write("items/a-1.md", &md);
    ok(sale.run(&["build"]));
    let title = "Mug \"Camp\" <b>bold</b> & Co's";
    let page = sale.read("public/items/a-1/index.html");
    // Never raw in the markup.
    assert!(!page.contains("<b>bold"), "{page}");
    assert!(!page.contains("\"Camp\""), "{page}");
    assert_eq!(meta(&page, "property", "og:title"), title);
    assert_eq!(meta(&page, "name", "twitter:title"), title);
    let description = meta(&page, "name", "description");
    // The Markdown description as plain text (its table left out).
    assert_eq!(description, "A fine Alpha.");
    assert_eq!(meta(&page, "property", "og:description"), description);
    assert_eq!(
        meta(&page, "property", "og:url"),
        "https://sale.example.com/items/a-1/"
    );
    let image = meta(&page, "property", "og:image");
    assert!(
        image.starts_with("https://sale.example.com/assets/img/a.") && image.ends_with(".svg"),
        "absolute, fingerprinted: {image}"
    );
    assert_eq!(meta(&page, "property", "og:image:width"), "10");
    assert_eq!(meta(&page, "property", "product:price:amount"), "1.50");
    assert_eq!(meta(&page, "property", "product:price:currency"), "EUR");
    // JSON-LD: parses, carries the price and currency, and the title comes
    // back exactly (its `<` and `&` escaped for the script element).
    let open = "<script type=\"application/ld+json\">";
    let at = page.find(open).expect("a JSON-LD block") + open.len();
    let json = &page[at..at + page[at..].find("</script>").unwrap()];
    assert!(!json.contains('<') && !json.contains('&'), "{json}");
    let ld: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(ld["@type"], "Product");
    assert_eq!(ld["name"], title);
    assert_eq!(ld["sku"], "A-1");
    assert_eq!(ld["offers"]["price"], "1.50");
    assert_eq!(ld["offers"]["priceCurrency"], "EUR");
    assert_eq!(ld["offers"]["priceValidUntil"], "2030-01-01");
    assert_eq!(ld["offers"]["availability"], "https://schema.org/PreOrder");
    assert_eq!(ld["image"][0].as_str(), Some(image.as_str()));
    // The image's box is reserved (its size read from the file), here and in the listing.
    assert!(page.contains("width=\"10\" height=\"10\""), "{page}");
    let listing = sale.read("public/index.html");
    assert!(
        listing.contains("width=\"10\" height=\"10\" loading=\"lazy\""),
        "{listing}"
    );
    // Every page: a description and the favicon, which exists.
    for f in [
        "index.html",
        "ended.html",
        "404.html",
        "items/a-1/index.html",
    ] {
        let p = sale.read(&format!("public/{f}"));
        assert!(!meta(&p, "name", "description").is_empty(), "{f}");
        let at = p.find("<link rel=\"icon\" href=\"").expect("favicon") + 23;
        let href = &p[at..at + p[at..].find('"').unwrap()];
        assert!(
            sale.path().join("public").join(&href[1..]).is_file(),
            "{f}: {href}"
        );
    }
}

#[test]
fn css_urls_and_header_rules_follow_the_config() {
    let sale = Sale::new();
    sale.write("static/style.css", "body{background:url(img/a.svg)}\n");
    let mut toml = sale.read("site.toml");
    toml.push_str(
        "\n[[headers]]\nfor = \"*.html\"\nvalues = { \"Cache-Control\" = \"public, max-age=5\" }\n",
    );
    sale.write("site.toml", &toml);
    ok(sale.run(&["build"]));
    let manifest: serde_json::Value =
        serde_json::from_str(&sale.read("public/manifest.json")).unwrap();
    let files = manifest["files"].as_array().unwrap();
    let css = files
        .iter()
        .find(|f| f["path"].as_str().unwrap().starts_with("assets/style."))
        .unwrap();
    let svg = files
        .iter()
        .find(|f| f["path"].as_str().unwrap().starts_with("assets/img/a."))
        .unwrap();
    let css_text = sale.read(&format!("public/{}", css["path"].as_str().unwrap()));
    assert!(
        css_text.contains(&format!("url(\"/{}\")", svg["path"].as_str().unwrap())),
        "{css_text}"
    );
    let page = files
        .iter()
        .find(|f| f["path"] == "items/a-1/index.html")
        .unwrap();
    assert_eq!(page["headers"]["Cache-Control"], "public, max-age=5");
}

#[test]
fn build_is_deterministic_and_rewrites_only_what_changed() {
    let sale = Sale::new();
    ok(sale.run(&["build"]));
    let first = sale.snapshot("public");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let out = ok(sale.run(&["build"]));
    assert!(out.contains("0 written"), "{out}");
    let second = sale.snapshot("public");
    for (path, (bytes, mtime)) in &first {
        let (b2, m2) = &second[path];
        assert_eq!(bytes, b2, "{path} changed bytes");
        if path != "manifest.json" {
            assert_eq!(mtime, m2, "{path} was rewritten");
        }
    }
    // The same input in another directory gives byte-identical output.
    let twin = Sale::new();
    ok(twin.run(&["build"]));
    let other = twin.snapshot("public");
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        other.keys().collect::<Vec<_>>()
    );
    for (path, (bytes, _)) in &first {
        assert_eq!(
            bytes, &other[path].0,
            "{path} differs between identical builds"
        );
    }

    // Edit one item: its page and the listing change, the other items do not.
    sale.write("items/b-2.md", &item_md("B-2", "Beta Prime", "2.50"));
    std::thread::sleep(std::time::Duration::from_millis(20));
    let out = ok(sale.run(&["build", "-v"]));
    assert!(
        out.contains("wrote   items/b-2/index.html") && out.contains("wrote   index.html"),
        "{out}"
    );
    let third = sale.snapshot("public");
    assert_eq!(
        first["items/a-1/index.html"].1,
        third["items/a-1/index.html"].1
    );
    assert_ne!(
        first["items/b-2/index.html"].0,
        third["items/b-2/index.html"].0
    );

    // Remove an item: its page goes away.
    std::fs::remove_file(sale.path().join("items/c-3.md")).unwrap();
    let out = ok(sale.run(&["build", "-v"]));
    assert!(out.contains("removed items/c-3/index.html"), "{out}");
    assert!(!sale.path().join("public/items/c-3").exists());
}

/// Each bad input: exit 1, the file and line named, and the output untouched.
fn assert_refused(sale: &Sale, expect: &[&str]) -> String {
    let before = sale.snapshot("public");
    let err = fails(sale.run(&["build"]));
    for e in expect {
        assert!(err.contains(e), "expected {e:?} in:\n{err}");
    }
    let after = sale.snapshot("public");
    assert_eq!(before, after, "a failed build changed public/");
    assert!(!sale.path().join("public/.flashsale-staging").exists());
    err
}

#[test]
fn missing_config_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = fails(run(dir.path(), &["build"]));
    assert!(
        err.contains("site.toml") && err.contains("cannot read"),
        "{err}"
    );
    assert!(err.contains("flashsale new"), "says how to get one: {err}");
    let err = fails(run(
        dir.path(),
        &["build", "--config", "elsewhere/sale.toml"],
    ));
    assert!(err.contains("elsewhere/sale.toml"), "{err}");
    assert!(!dir.path().join("public").exists());
}

#[test]
fn toml_syntax_error_names_line_and_changes_nothing() {
    let sale = Sale::new();
    ok(sale.run(&["build"]));
    let toml = sale
        .read("site.toml")
        .replace("title = \"Test Sale\"", "title = \"Test Sale");
    sale.write("site.toml", &toml);
    let err = assert_refused(&sale, &["site.toml:2:"]);
    // The string left open is what TOML reads wrong; the help says where the syntax is.
    assert!(err.contains("invalid basic string"), "{err}");
    assert!(err.contains("help: see https://toml.io"), "{err}");
}

#[test]
fn unknown_key_names_line_and_suggests_the_fix() {
    let sale = Sale::new();
    ok(sale.run(&["build"]));
    sale.write(
        "site.toml",
        &sale.read("site.toml").replace("currency", "curency"),
    );
    assert_refused(
        &sale,
        &[
            "site.toml:6:1",
            "unknown key `curency`",
            "did you mean `currency`",
        ],
    );
    // In an item's front matter too, with the file's own line numbers.
    sale.write(
        "site.toml",
        &sale.read("site.toml").replace("curency", "currency"),
    );
    sale.write(
        "items/a-1.md",
        &item_md("A-1", "Alpha", "1.50").replace("stock = 10", "stok = 10"),
    );
    assert_refused(
        &sale,
        &[
            "items/a-1.md:6:1",
            "unknown key `stok`",
            "did you mean `stock`",
        ],
    );
}

#[test]
fn time_without_offset_names_line_and_says_what_to_write() {
    let sale = Sale::new();
    ok(sale.run(&["build"]));
    sale.write(
        "site.toml",
        &sale
            .read("site.toml")
            .replace("2030-01-01T10:00:00+08:00", "2030-01-01T10:00:00"),
    );
    assert_refused(
        &sale,
        &[
            "site.toml:4:9",
            "no UTC offset",
            "2030-01-01T10:00:00+08:00",
        ],
    );
}

#[test]
fn template_error_names_template_file_and_line() {
    let sale = Sale::new();
    ok(sale.run(&["build"]));
    sale.write("templates/item.html", "{% extends \"base.html\" %}\n{% block main %}\n<h1>{{ item.title }</h1>\n{% endblock main %}\n");
    assert_refused(&sale, &["templates/item.html:3:"]);
    // A render-time error (unknown variable) points at its use.
    sale.write("templates/item.html", "{% extends \"base.html\" %}\n{% block main %}\n<h1>{{ item.nonexistent }}</h1>\n{% endblock main %}\n");
    assert_refused(&sale, &["templates/item.html:3:", "item.nonexistent"]);
}

#[test]
fn first_build_that_fails_leaves_no_output() {
    let sale = Sale::new();
    sale.write("items/b-2.md", &item_md("B-2", "Beta", "2.505"));
    let err = fails(sale.run(&["build"]));
    assert!(
        err.contains("items/b-2.md:4:9") && err.contains("more decimals"),
        "{err}"
    );
    assert!(!sale.path().join("public/index.html").exists());
}

#[test]
fn content_problems_are_all_reported_with_positions() {
    let sale = Sale::new();
    sale.write("items/b-2.md", &item_md("A-1", "Beta", "2.50"));
    sale.write(
        "items/c-3.md",
        &item_md("C-3", "Gamma", "3.50").replace("img/a.svg", "img/missing.svg"),
    );
    let err = fails(sale.run(&["build"]));
    assert!(
        err.contains("items/b-2.md:2:7: SKU `A-1` is used twice"),
        "{err}"
    );
    assert!(
        err.contains("items/c-3.md:7:9")
            && err.contains("img/missing.svg")
            && err.contains("img/a.svg"),
        "{err}"
    );
    let sale = Sale::new();
    sale.write("items/a-1.md", "sku = \"A-1\"\n");
    let err = fails(sale.run(&["build"]));
    assert!(
        err.contains("items/a-1.md:1:1") && err.contains("+++"),
        "{err}"
    );
}

#[test]
fn check_passes_a_good_sale_and_reports_budgets() {
    let sale = Sale::new();
    let out = ok(sale.run(&["check"]));
    assert!(
        out.contains("heaviest item page") && out.contains("sale.js"),
        "{out}"
    );
    assert!(
        !sale.path().join("public").exists(),
        "check must not write the output"
    );
}

#[test]
fn check_catches_links_weight_and_secrets() {
    let sale = Sale::new();
    sale.write(
        "items/a-1.md",
        &format!(
            "{}\nSee [the other one](/items/nope/).\n",
            item_md("A-1", "Alpha", "1.50")
        ),
    );
    let err = fails(sale.run(&["check"]));
    assert!(
        err.contains("public/items/a-1/index.html:")
            && err.contains("/items/nope/")
            && err.contains("items/a-1.md"),
        "{err}"
    );

    let sale = Sale::new();
    // Incompressible text: a description far over 14 KiB gzip-compressed.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: String = (0..40_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (b'a' + (x % 26) as u8) as char
        })
        .collect();
    sale.write(
        "items/b-2.md",
        &format!("{}\n{noise}\n", item_md("B-2", "Beta", "2.50")),
    );
    let err = fails(sale.run(&["check"]));
    assert!(
        err.contains("items/b-2/index.html") && err.contains("budget"),
        "{err}"
    );

    let sale = Sale::new();
    let key = "5f2b8c1e9d7a4f60b3e8c2d1a9f7e6b5";
    sale.write(
        "items/a-1.md",
        &format!(
            "{}\nkey {key}\nAKIAIOSFODNN7EXAMPLE\n",
            item_md("A-1", "Alpha", "1.50")
        ),
    );
    let o = std::process::Command::new(bin())
        .arg("check")
        .current_dir(sale.path())
        .env("FLASHSALE_GATE_KEY", key)
        .output()
        .unwrap();
    let err = fails(o);
    assert!(
        err.contains("$FLASHSALE_GATE_KEY") && err.contains("AWS access key"),
        "{err}"
    );
    assert!(
        !err.contains(key),
        "the secret itself must never be printed:\n{err}"
    );
}

#[test]
fn the_demo_and_every_example_pass_check() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut configs = vec![root.join("site.toml")];
    for e in std::fs::read_dir(root.join("examples")).unwrap() {
        let site = e.unwrap().path().join("site.toml");
        if site.is_file() {
            configs.push(site);
        }
    }
    assert!(configs.len() >= 2, "{configs:?}");
    let dir = tempfile::tempdir().unwrap();
    for c in configs {
        let out = ok(run(dir.path(), &["check", "--config", c.to_str().unwrap()]));
        assert!(out.contains("no secrets found"), "{out}");
    }
}

#[test]
fn check_reports_mistakes_in_three_files_in_one_run() {
    let sale = Sale::new();
    sale.write(
        "site.toml",
        &sale.read("site.toml").replace("currency", "curency"),
    );
    sale.write(
        "items/b-2.md",
        &item_md("B-2", "Beta", "2.50")
            .replace("stock = 10", "stok = 10")
            .replace("\nprice = ", "\nprise = "),
    );
    sale.write(
        "templates/item.html",
        "{% extends \"base.html\" %}{% block main %}\n{% if %}\n{% endblock main %}",
    );
    let err = fails(sale.run(&["check"]));
    for (file, word) in [
        ("site.toml:", "curency"),
        ("items/b-2.md:", "stok"),
        ("items/b-2.md:", "prise"),
        ("templates/item.html:2:", "{% if %}"),
    ] {
        // Reported, with its line quoted under it.
        let quoted = err.match_indices(file).any(|(at, _)| {
            err[at..]
                .lines()
                .take(4)
                .any(|l| l.contains('|') && l.contains(word))
        });
        assert!(
            quoted,
            "{file} {word}: not reported with a code frame:\n{err}"
        );
    }
    // Both unknown keys of the item, not only the first.
    assert!(err.contains("4 problems found"), "{err}");
}

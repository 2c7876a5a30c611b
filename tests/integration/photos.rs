//! Product photos as a camera makes them: made responsive by the build, and
//! picked by headless Chromium at the width each screen needs.

use std::time::Duration;

use serde_json::Value;

use crate::common::photo::camera_jpeg;
use crate::common::webdriver::Browser;
use crate::common::*;

/// The test sale with item A-1's image a 1600×1200 camera JPEG.
fn sale_with_photo() -> Sale {
    let sale = Sale::new();
    sale.write_bytes("static/img/photo.jpg", &camera_jpeg(1600, 1200, 7));
    let item = sale
        .read("items/a-1.md")
        .replace("image = \"img/a.svg\"", "image = \"img/photo.jpg\"");
    sale.write("items/a-1.md", &item);
    sale
}

/// The photo's box on the page, in CSS px (width, height, top).
fn photo_box(browser: &Browser) -> (f64, f64, f64) {
    let v = browser.eval(
        "const r = document.querySelector('.shot').getBoundingClientRect(); return [r.width, r.height, r.top];",
    );
    let n = |i: usize| v[i].as_f64().unwrap();
    (n(0), n(1), n(2))
}

/// What the page's photo loaded, and the device pixels its box is wide.
fn loaded(browser: &Browser) -> (String, u32) {
    browser.wait_until(
        "const i = document.querySelector('.shot'); return i.complete && i.naturalWidth > 0",
        Duration::from_secs(10),
    );
    let v: Value = browser.eval(
        "const i = document.querySelector('.shot');
         return [i.currentSrc, i.getBoundingClientRect().width * devicePixelRatio];",
    );
    let src = v[0].as_str().unwrap().to_string();
    (src, v[1].as_f64().unwrap().ceil() as u32)
}

/// The width a candidate was made at, from its name (`photo-640.<hash>.webp`).
fn width_of(src: &str) -> u32 {
    let name = src.rsplit('/').next().unwrap();
    let stem = name.split('.').next().unwrap();
    stem.rsplit('-').next().unwrap().parse().unwrap()
}

#[test]
fn each_screen_loads_a_webp_no_wider_than_it_needs_without_layout_shift() {
    let sale = sale_with_photo();
    let server = Server::start(sale.path(), &["--no-watch"]);
    let widths = [320, 480, 640, 800, 1080, 1440];
    let screens = [(412, 900, None), (1280, 900, None), (412, 823, Some(2.625))];
    let mut seen = Vec::new();
    for (width, height, dpr) in screens {
        let browser = Browser::start_sized(width, height, dpr);
        let page = server.url("/items/a-1/");
        // The box the page keeps for the photo before any of it arrives ...
        browser.block_urls(&["*.webp", "*.jpg"]);
        browser.goto(&page);
        let blocked = browser.eval("return document.querySelector('.shot').naturalWidth");
        assert_eq!(blocked, 0, "the photo was blocked");
        let reserved = photo_box(&browser);
        // ... is the box it has once it arrived: nothing moves for it.
        browser.block_urls(&[]);
        browser.goto(&page);
        let (src, needed) = loaded(&browser);
        assert_eq!(
            photo_box(&browser),
            reserved,
            "{width} px: the photo moved the page"
        );
        assert!(src.ends_with(".webp"), "{width} px: {src}");
        let got = width_of(&src);
        // The narrowest candidate that covers the box, as the srcset offers.
        let fits = widths
            .iter()
            .copied()
            .find(|w| *w >= needed)
            .unwrap_or(1440);
        assert_eq!(
            got, fits,
            "{width} px at {dpr:?}: needs {needed} device px, loaded {src}"
        );
        seen.push(got);
    }
    assert!(
        seen[1] > seen[0],
        "1280 px loads a larger photo than 412 px: {seen:?}"
    );
    assert_eq!(
        seen[2], 1080,
        "a phone at DPR 2.625 takes the 1080 px photo"
    );
}

/// `check` weighs each page as a phone downloads it and `capacity` turns the
/// heaviest into egress: a camera photo made responsive passes both; the same
/// bytes as an image nothing resizes (a GIF) fail the budget and cross
/// CloudFront's bandwidth quota for a million viewers.
#[test]
fn check_and_capacity_weigh_the_photo_a_phone_downloads() {
    let sale = sale_with_photo();
    let out = ok(sale.run(&["check"]));
    let kib: f64 = out
        .split("a phone downloads at most ")
        .nth(1)
        .and_then(|r| r.split(" KiB").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(kib < 100.0, "{out}");
    let capacity = |sale: &Sale| {
        let out = sale.run(&["capacity", "--json", "--viewers", "1000000"]);
        let warnings = stderr(&out);
        let json: Value = serde_json::from_str(&ok(out)).unwrap();
        (json["outcome"]["egress"].clone(), warnings)
    };
    let (light, warnings) = capacity(&sale);
    assert!(
        light["first_view_bytes"].as_f64().unwrap() < 100.0 * 1024.0,
        "{light}"
    );
    assert!(
        light["busiest_minute_gbit_s"].as_f64().unwrap() < 150.0,
        "{light}"
    );
    assert!(!warnings.contains("Data transfer rate"), "{warnings}");

    // The photo's bytes as a GIF: published as it is.
    let mut gif = b"GIF89a\x40\x06\xb0\x04\x00\x00\x00".to_vec();
    gif.resize(2_800 * 1024, 0);
    sale.write_bytes("static/img/raw.gif", &gif);
    let item = sale
        .read("items/a-1.md")
        .replace("img/photo.jpg", "img/raw.gif");
    sale.write("items/a-1.md", &item);
    let err = fails(sale.run(&["check"]));
    assert!(
        err.contains("items/a-1/index.html: a phone downloads 28")
            && err.contains("over the 200 KiB budget"),
        "{err}"
    );
    let (heavy, warnings) = capacity(&sale);
    let ratio = heavy["busiest_minute_gbit_s"].as_f64().unwrap()
        / light["busiest_minute_gbit_s"].as_f64().unwrap();
    assert!(ratio > 25.0, "{ratio}: {heavy} vs {light}");
    assert!(
        warnings.contains("Data transfer rate per distribution"),
        "{warnings}"
    );
}

//! The item page in headless Chromium (Debian `chromium` + `chromium-driver`),
//! served by `flashsale serve`: pending with a countdown and a disabled button;
//! when `sale.js` turns `open` the running page enables the button without a
//! reload; when it turns `ended` the page says so.

use std::path::Path;
use std::time::Duration;

use crate::common::webdriver::Browser;
use crate::common::*;
use flashsale::sale::{State, Toggle};

/// Replaces the served toggle the way an upload does: whole, never half-written.
fn switch_toggle(public: &Path, toggle: &Toggle) {
    let tmp = public.join(".sale.js.tmp");
    std::fs::write(&tmp, toggle.to_script()).unwrap();
    std::fs::rename(&tmp, public.join("sale.js")).unwrap();
}

fn out_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/out")
}

#[test]
fn page_follows_the_toggle_without_reloading() {
    let start_in = 15;
    let sale = Sale::with_times(&in_secs(start_in), &in_secs(start_in + 5));
    let server = Server::start(sale.path(), &["--no-watch"]);
    let browser = Browser::start();
    browser.goto(&server.url("/items/a-1/"));

    // Pending: disabled button, the start in words, a running countdown.
    browser.wait_until("return document.body.dataset.state === 'pending' && !document.querySelector('[data-countdown]').hidden", Duration::from_secs(10));
    assert_eq!(
        browser.eval("return document.querySelector('[data-buy]').disabled"),
        true
    );
    let countdown = browser.eval("return document.querySelector('[data-countdown]').textContent");
    assert!(
        countdown.as_str().unwrap().starts_with("Starts in 00:00:"),
        "{countdown}"
    );
    let status = browser.eval("return document.querySelector('[data-status]').textContent");
    assert!(
        status.as_str().unwrap().starts_with("Sale starts "),
        "{status}"
    );
    // The countdown ticks.
    browser.wait_until(
        &format!("return document.querySelector('[data-countdown]').textContent !== {countdown}"),
        Duration::from_secs(3),
    );
    browser.screenshot(&out_dir().join("browser-pending.png"));
    // Marks this page load: a reload would lose it.
    browser.eval("window.__sameLoad = true; return true");

    let order = "https://gate.example.com/o/test-sale/00112233445566778899aabbccddeeff.0123";
    let end_ms = sale_end_ms(&sale);
    switch_toggle(
        &sale.path().join("public"),
        &Toggle::switched(State::Open {
            order: order.into(),
            end: end_ms,
            draw: None,
        }),
    );
    let waited = browser.wait_until(
        "return document.querySelector('[data-buy]').disabled === false",
        Duration::from_secs(start_in as u64 + 10),
    );
    assert_eq!(
        browser.eval("return window.__sameLoad === true"),
        true,
        "the page was reloaded"
    );
    assert_eq!(
        browser.eval("return document.querySelector('[data-order-form]').action"),
        format!("{order}?sku=A-1")
    );
    assert_eq!(browser.eval("return document.body.dataset.state"), "open");
    assert_eq!(
        browser.eval("return document.querySelector('[data-countdown]').hidden"),
        true
    );
    browser.screenshot(&out_dir().join("browser-open.png"));
    eprintln!("button enabled {waited:?} after the toggle switched");

    switch_toggle(
        &sale.path().join("public"),
        &Toggle::switched(State::Ended {
            ended: "/ended.html".into(),
        }),
    );
    browser.assert_turns_ended_without_reload();
    assert_eq!(
        browser.eval("return document.querySelector('[data-status]').hidden"),
        true,
        "the ended message replaces the status"
    );
    browser.screenshot(&out_dir().join("browser-ended.png"));
}

fn sale_end_ms(sale: &Sale) -> i64 {
    let page = sale.read("public/items/a-1/index.html");
    let at = page.find("data-sale-end=\"").unwrap() + "data-sale-end=\"".len();
    page[at..at + 13].parse().unwrap()
}

/// The page is open in the browser before `flashsale open` runs; the real
/// commands switch it: enabled without a reload at the start, ended after `close`.
#[test]
fn open_and_close_commands_switch_a_page_already_open() {
    let start_in = 12;
    let sale = Sale::with_times(&in_secs(start_in), &in_secs(start_in + 6));
    let server = Server::start(sale.path(), &["--no-watch"]);
    ok(run(sale.path(), &["keygen", "gate.key"]));
    let browser = Browser::start();
    browser.goto(&server.url("/items/b-2/"));
    browser.wait_until(
        "return document.body.dataset.state === 'pending'",
        Duration::from_secs(10),
    );
    assert_eq!(
        browser.eval("return document.querySelector('[data-buy]').disabled"),
        true
    );
    browser.eval("window.__sameLoad = true; return true");

    // The served directory stands in for the bucket.
    let target = format!("dir:{}", sale.path().join("public").display());
    let opener = std::process::Command::new(bin())
        .args([
            "open",
            "--json",
            "--key-file",
            "gate.key",
            "--target",
            &target,
        ])
        .current_dir(sale.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    browser.wait_until(
        "return document.querySelector('[data-buy]').disabled === false",
        Duration::from_secs(start_in as u64 + 15),
    );
    let report: serde_json::Value =
        serde_json::from_str(&ok(opener.wait_with_output().unwrap())).unwrap();
    assert_eq!(
        browser.eval("return window.__sameLoad === true"),
        true,
        "the page was reloaded"
    );
    assert_eq!(
        browser.eval("return document.querySelector('[data-order-form]').action"),
        format!("{}?sku=B-2", report["order_url"].as_str().unwrap())
    );

    ok(sale.run(&["close", "--now", "--target", &target]));
    browser.assert_turns_ended_without_reload();
}

#[test]
fn a_broken_edit_shows_in_the_page_until_it_is_fixed() {
    let sale = Sale::new();
    let server = Server::start(sale.path(), &[]);
    let browser = Browser::start();
    let page = server.url("/items/b-2/");
    browser.goto(&page);
    let overlay =
        "var o = document.getElementById('flashsale-error'); return o ? o.textContent : ''";
    assert_eq!(browser.eval(overlay), "");
    // Wait for the live-reload stream before editing.
    browser.wait_until(
        "return !!window.flashsaleLive && window.flashsaleLive.readyState === 1",
        Duration::from_secs(10),
    );
    sale.write(
        "items/b-2.md",
        &item_md("B-2", "Beta", "2.50").replace("stock = 10", "stok = 10"),
    );
    browser.wait_until(
        "var o = document.getElementById('flashsale-error'); return !!o && o.textContent.indexOf('stok') >= 0",
        Duration::from_secs(10),
    );
    let shown = browser.eval(overlay);
    let shown = shown.as_str().unwrap();
    assert!(
        shown.contains("does not build") && shown.contains("items/b-2.md:6:1"),
        "{shown}"
    );
    browser.screenshot(&out_dir().join("browser-build-error.png"));
    // A page opened while the build is broken shows it too.
    browser.goto(&server.url("/"));
    browser.wait_until(
        "var o = document.getElementById('flashsale-error'); return !!o && o.textContent.indexOf('stok') >= 0",
        Duration::from_secs(10),
    );
    // Fixed: the page reloads without it.
    sale.write("items/b-2.md", &item_md("B-2", "Beta", "2.50"));
    browser.wait_until(
        "return document.readyState === 'complete' && !document.getElementById('flashsale-error')",
        Duration::from_secs(10),
    );
}

//! `keygen`, `open`, `close` and `status` through the real binary against the
//! local S3 + CloudFront server: the order URL exists nowhere before `open`,
//! verifies after it, is refused when tampered with or used early; switches
//! land on time; a second `open` keeps the URL.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::moto::{rt, Setup, BUCKET};
use crate::common::*;
use flashsale::sale::{self, GateKey, State, Toggle, Window};
use serde_json::Value;

/// `flashsale ARGS` in the sale with the moto environment.
fn run_in(s: &Setup, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .current_dir(s.sale.path())
        .envs(s.moto.env())
        .env_remove("FLASHSALE_GATE_KEY")
        .output()
        .unwrap()
}

fn keygen(s: &Setup) -> GateKey {
    ok(run_in(s, &["keygen", "gate.key"]));
    GateKey::load(Some(&s.sale.path().join("gate.key"))).unwrap()
}

fn live_toggle(s: &Setup) -> Toggle {
    Toggle::parse_script(&String::from_utf8(s.get("sale.js")).unwrap()).unwrap()
}

fn order_of(t: &Toggle) -> String {
    match &t.state {
        State::Open { order, .. } => order.clone(),
        other => panic!("not open: {other:?}"),
    }
}

/// Every byte under `dir`, and every object in the bucket, as one string each.
fn everything(s: &Setup) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, (bytes, _)) in s.sale.snapshot("public") {
        out.push((
            format!("public/{path}"),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    for key in s.keys() {
        out.push((
            format!("s3://{BUCKET}/{key}"),
            String::from_utf8_lossy(&s.get(&key)).into_owned(),
        ));
    }
    out
}

#[test]
fn open_mints_a_url_that_exists_nowhere_before_and_verifies_after() {
    let s = Setup::with(Sale::with_times(&in_secs(-5), &in_secs(3600)));
    let key = keygen(&s);
    let key_hex = std::fs::read_to_string(s.sale.path().join("gate.key"))
        .unwrap()
        .trim()
        .to_string();
    s.publish_json(&[]);

    // Before open: no order URL and no key anywhere a visitor could read.
    for (place, text) in everything(&s) {
        assert!(
            !text.contains("/o/test-sale/"),
            "{place} has an order URL before open"
        );
        assert!(!text.contains(&key_hex), "{place} has the key");
    }
    let pending = live_toggle(&s);
    assert_eq!(pending.state_name(), "pending");

    let out: Value = serde_json::from_str(&ok(run_in(
        &s,
        &["open", "--now", "--json", "--key-file", "gate.key"],
    )))
    .unwrap();
    assert_eq!(out["state"], "open");
    let toggle = live_toggle(&s);
    let url = order_of(&toggle);
    assert_eq!(out["order_url"], url.as_str());
    assert!(
        url.starts_with("https://gate.example.com/o/test-sale/"),
        "{url}"
    );
    assert!(
        !out.to_string().contains(&key_hex),
        "the key in --json output"
    );

    // The URL verifies now, inside the window, with the key.
    let (url_sale, token) = sale::parse_order_url(&url).unwrap();
    let (url_sale, token) = (url_sale.as_str(), token.as_str());
    let start = s.sale.start_ms();
    let window = Window {
        start_ms: start,
        end_ms: now_ms() + 3_600_000,
        tolerance_ms: 0,
    };
    assert_eq!(
        sale::verify(&key, "test-sale", url_sale, token, now_ms(), window),
        Ok(())
    );
    // A flipped bit, another sale's URL, and a use before the start are refused.
    let mut flipped = token.as_bytes().to_vec();
    flipped[40] = if flipped[40] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).unwrap();
    assert!(sale::verify(&key, "test-sale", url_sale, &flipped, now_ms(), window).is_err());
    let other = key.mint("another-sale", start);
    assert!(sale::verify(&key, "test-sale", "another-sale", &other, now_ms(), window).is_err());
    assert!(sale::verify(&key, "test-sale", "test-sale", &other, now_ms(), window).is_err());
    assert_eq!(
        sale::verify(&key, "test-sale", url_sale, token, start - 1, window),
        Err(sale::Refusal::OutsideWindow)
    );
    // A window moved to another start: the URL is not that sale's.
    let moved = Window {
        start_ms: start + 60_000,
        ..window
    };
    assert_eq!(
        sale::verify(&key, "test-sale", url_sale, token, now_ms(), moved),
        Err(sale::Refusal::BadMac)
    );

    // Served with the toggle's headers, and its path invalidated.
    let head = s.head("sale.js").unwrap();
    assert_eq!(
        head.cache_control(),
        Some("public, max-age=0, s-maxage=1, must-revalidate")
    );
    assert_eq!(head.content_type(), Some("text/javascript; charset=utf-8"));
    assert_eq!(s.invalidations()[0], ["/sale.js"]);
    let size = toggle.to_script().len();
    assert!(size <= sale::MAX_TOGGLE_BYTES, "{size}");
    eprintln!(
        "sale.js sizes: pending {} bytes, open {size} bytes",
        pending.to_script().len()
    );

    // Nothing but sale.js carries it; public/ still does not.
    for (place, text) in everything(&s) {
        if place != format!("s3://{BUCKET}/sale.js") {
            assert!(!text.contains(token), "{place} has the order URL");
        }
        assert!(!text.contains(&key_hex), "{place} has the key");
    }

    // A second open keeps the URL; --rotate mints a new one.
    let again = ok(run_in(&s, &["open", "--now", "--key-file", "gate.key"]));
    assert!(again.contains("already `open`"), "{again}");
    assert_eq!(order_of(&live_toggle(&s)), url);
    ok(run_in(
        &s,
        &["open", "--now", "--rotate", "--key-file", "gate.key"],
    ));
    assert_ne!(order_of(&live_toggle(&s)), url);

    // A publish during the sale leaves the live toggle alone.
    s.sale.write(
        "items/a-1.md",
        &format!("{}\nTypo fixed.\n", item_md("A-1", "Alpha", "1.50")),
    );
    ok(s.sale.run(&["build", "-q"]));
    s.publish_json(&[]);
    assert_eq!(live_toggle(&s).state_name(), "open");

    // close switches to ended; closing again changes nothing.
    let out: Value = serde_json::from_str(&ok(run_in(&s, &["close", "--now", "--json"]))).unwrap();
    assert_eq!(out["state"], "ended");
    let ended = live_toggle(&s);
    assert_eq!(
        ended.state,
        State::Ended {
            ended: "/ended.html".into()
        }
    );
    eprintln!("sale.js size ended: {} bytes", ended.to_script().len());
    assert_eq!(s.invalidations()[0], ["/sale.js"]);
    let again: Value =
        serde_json::from_str(&ok(run_in(&s, &["close", "--now", "--json"]))).unwrap();
    assert_eq!(again["changed"], false);
    // Reopening a closed sale needs --force.
    let err = fails(run_in(&s, &["open", "--now", "--key-file", "gate.key"]));
    assert!(err.contains("--force"), "{err}");

    // status reads it back.
    let st: Value =
        serde_json::from_str(&ok(run_in(&s, &["status", "--json", "--no-cdn"]))).unwrap();
    assert_eq!(st["phase"], "open");
    assert_eq!(st["bucket"]["state"], "ended");
}

#[test]
fn open_at_a_time_switches_within_a_second_and_never_early() {
    let start_in = 4;
    let s = Setup::with(Sale::with_times(&in_secs(start_in), &in_secs(3600)));
    keygen(&s);
    s.publish_json(&[]);
    let start_ms = {
        let page = s.sale.read("public/items/a-1/index.html");
        let at = page.find("data-sale-start=\"").unwrap() + "data-sale-start=\"".len();
        page[at..at + 13].parse::<i64>().unwrap()
    };
    let child = Command::new(bin())
        .args(["open", "--json", "--key-file", "gate.key"])
        .current_dir(s.sale.path())
        .envs(s.moto.env())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Watch the bucket as a visitor's origin fetch would, every 20 ms.
    let s3 = s.moto.s3();
    let within = Duration::from_secs(start_in as u64 + 15);
    let seen_open_ms = wait_for_some("sale.js to turn open", within, || {
        let out = rt()
            .block_on(s3.get_object().bucket(BUCKET).key("sale.js").send())
            .unwrap();
        let body = rt().block_on(out.body.collect()).unwrap().into_bytes();
        let t = now_ms();
        if String::from_utf8_lossy(&body).contains("\"state\":\"open\"") {
            return Some(t);
        }
        assert!(t < start_ms + 5_000, "still pending 5 s after the start");
        None
    });
    let out = child.wait_with_output().unwrap();
    let report: Value = serde_json::from_str(&ok(out)).unwrap();
    let lateness = report["lateness_ms"].as_i64().unwrap();
    let observed = seen_open_ms - start_ms;
    eprintln!("open --at: reported lateness {lateness} ms, observed from the bucket {observed} ms (PUT {} ms)", report["put_ms"]);
    assert!(observed >= 0, "open before the start: {observed} ms");
    assert!((0..1000).contains(&lateness), "{report}");
    assert!(observed < 1000, "observed {observed} ms late");
}

#[test]
fn key_problems_are_clear_errors() {
    let s = Setup::with(Sale::with_times(&in_secs(-5), &in_secs(3600)));
    s.sale.write("bad.key", "this is not a key at all");
    let err = fails(run_in(&s, &["open", "--now", "--key-file", "bad.key"]));
    assert!(
        err.contains("bad.key") && err.contains("64 hexadecimal"),
        "{err}"
    );
    assert!(
        !err.contains("this is not a key"),
        "the key file's contents were printed: {err}"
    );
    let err = fails(run_in(&s, &["open", "--now", "--key-file", "missing.key"]));
    assert!(err.contains("missing.key"), "{err}");
    let err = fails(run_in(&s, &["open", "--now"]));
    assert!(
        err.contains("FLASHSALE_GATE_KEY") && err.contains("keygen"),
        "{err}"
    );
    assert_eq!(live_toggle_or_none(&s), None, "nothing was switched");

    keygen(&s);
    let mode = std::fs::metadata(s.sale.path().join("gate.key")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
    let err = fails(run_in(&s, &["keygen", "gate.key"]));
    assert!(err.contains("never overwritten"), "{err}");
    let err = fails(run_in(&s, &["keygen", "public/gate.key"]));
    assert!(err.contains("published"), "{err}");
    // From the environment too.
    let key = std::fs::read_to_string(s.sale.path().join("gate.key")).unwrap();
    let out = Command::new(bin())
        .args(["open", "--now", "--json"])
        .current_dir(s.sale.path())
        .envs(s.moto.env())
        .env("FLASHSALE_GATE_KEY", key.trim())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

fn live_toggle_or_none(s: &Setup) -> Option<String> {
    s.keys()
        .contains("sale.js")
        .then(|| String::from_utf8(s.get("sale.js")).unwrap())
}

#[test]
fn open_and_close_work_on_a_directory_target() {
    let sale = Sale::with_times(&in_secs(-5), &in_secs(3600));
    ok(sale.run(&["build", "-q"]));
    let target = tempfile::tempdir().unwrap();
    let t = format!("dir:{}", target.path().display());
    ok(sale.run(&["publish", "-q", "--target", &t]));
    ok(run(sale.path(), &["keygen", "k"]));
    ok(sale.run(&["open", "--now", "--target", &t, "--key-file", "k"]));
    let text = std::fs::read_to_string(target.path().join("sale.js")).unwrap();
    assert!(text.contains("\"state\":\"open\""), "{text}");
    let sidecar =
        std::fs::read_to_string(Path::new(target.path()).join(".flashsale/objects/sale.js.json"))
            .unwrap();
    assert!(sidecar.contains("s-maxage=1"), "{sidecar}");
    ok(sale.run(&["close", "--now", "--target", &t]));
    assert!(std::fs::read_to_string(target.path().join("sale.js"))
        .unwrap()
        .contains("\"state\":\"ended\""));
}

#[test]
fn open_announces_a_fair_starts_draw_and_status_checks_its_commitment() {
    let sale = Sale::with_times(&in_secs(-5), &in_secs(3600));
    sale.add_to_gate("fair_window = \"4s\"");
    ok(sale.run(&["build", "-q"]));
    let target = tempfile::tempdir().unwrap();
    let t = format!("dir:{}", target.path().display());
    ok(sale.run(&["publish", "-q", "--target", &t]));
    ok(run(sale.path(), &["keygen", "k"]));
    let said = ok(sale.run(&["open", "--now", "--json", "--target", &t, "--key-file", "k"]));
    let opened: Value = serde_json::from_str(said.trim()).unwrap();
    let commitment = opened["draw"]["commitment"].as_str().unwrap().to_string();
    assert_eq!(commitment.len(), 64, "{opened}");
    let toggle = flashsale::sale::Toggle::parse_script(
        &std::fs::read_to_string(target.path().join("sale.js")).unwrap(),
    )
    .unwrap();
    let flashsale::sale::State::Open { draw: Some(d), .. } = toggle.state else {
        panic!("{toggle:?}")
    };
    assert_eq!(d.commitment, commitment);
    let status = |key: &str| {
        let out = ok(sale.run(&[
            "status",
            "--json",
            "--no-cdn",
            "--target",
            &t,
            "--key-file",
            key,
        ]));
        serde_json::from_str::<Value>(&out).unwrap()["bucket"]["draw"].clone()
    };
    let draw = status("k");
    assert_eq!(draw["commitment"], commitment.as_str());
    assert_eq!(draw["until_ms"], d.until);
    assert_eq!(draw["commitment_matches_key"], true);
    // Another key would draw with another seed: status says so.
    ok(run(sale.path(), &["keygen", "other"]));
    assert_eq!(status("other")["commitment_matches_key"], false);
}

#[test]
fn open_outside_the_window_is_refused_unless_forced() {
    // A week before the start: the gates would answer every order 403.
    let sale = Sale::with_times(&in_secs(7 * 24 * 3600), &in_secs(7 * 24 * 3600 + 1800));
    ok(sale.run(&["build", "-q"]));
    let target = tempfile::tempdir().unwrap();
    let t = format!("dir:{}", target.path().display());
    ok(sale.run(&["publish", "-q", "--target", &t]));
    ok(run(sale.path(), &["keygen", "k"]));
    let toggle = || std::fs::read_to_string(target.path().join("sale.js")).unwrap();
    let before = toggle();
    for when in [vec!["--now"], vec!["--at", &in_secs(60)]] {
        let mut args = vec!["open", "--target", &t, "--key-file", "k"];
        args.extend(when.iter().copied());
        let err = fails(sale.run(&args));
        assert!(
            err.contains("before the sale's start")
                && err.contains("site.toml `start`")
                && err.contains("403")
                && err.contains("--force"),
            "{err}"
        );
        assert_eq!(toggle(), before, "a refused open changed nothing");
    }
    ok(sale.run(&[
        "open",
        "--now",
        "--force",
        "--target",
        &t,
        "--key-file",
        "k",
    ]));
    assert!(toggle().contains("\"state\":\"open\""), "{}", toggle());

    // After the end too.
    let over = Sale::with_times(&in_secs(-3600), &in_secs(-60));
    ok(over.run(&["build", "-q"]));
    ok(over.run(&["publish", "-q", "--target", &t, "--reset-toggle"]));
    ok(run(over.path(), &["keygen", "k"]));
    let err = fails(over.run(&["open", "--now", "--target", &t, "--key-file", "k"]));
    assert!(err.contains("ended") && err.contains("--force"), "{err}");
}

//! The order path's CloudFront Function (`flashsale edge`) against the
//! gate's own rules: 100,000 generated requests of every kind judged by the
//! gate's checks and by the function under njs (CloudFront Functions'
//! engine family) and Node; and the comparison itself shown to catch a
//! function that is off by one millisecond at the window's end.

use crate::common::*;

/// The demo sale with identities in the shop's signed cookie.
fn cookie_sale() -> Sale {
    let sale = Sale::new();
    sale.add_to_gate("identity_cookie = \"shop_user\"");
    sale
}

fn line<'a>(out: &'a str, engine: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("{engine}: ")))
        .unwrap_or_else(|| panic!("no {engine} line: {out}"))
}

#[test]
fn the_function_agrees_with_the_gate_on_100000_requests_in_njs_and_node() {
    let sale = cookie_sale();
    let out = ok(sale.run(&[
        "edge",
        "test",
        "--requests",
        "100000",
        "--engine",
        "njs",
        "--engine",
        "node",
        "-v",
    ]));
    eprintln!("{out}");
    let size: usize = out
        .split("Function: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(size <= 10 * 1024, "{size} bytes");
    for engine in ["njs", "node"] {
        assert!(
            line(&out, engine).contains(
                "100000 requests in"
            ) && line(&out, engine).contains(
                ": 0 disagreements with the gate, 0 valid orders refused, 0 that must be refused passed"
            ),
            "{out}"
        );
    }
    // Every class is there, and each that must be refused is, entirely.
    for class in [
        "forged_mac",
        "other_sale",
        "early",
        "late",
        "unknown_item",
        "bad_cookie",
        "missing_cookie",
        "forged_cookie",
        "wrong_method",
        "cross_site",
        "after_sold_out",
    ] {
        let row = out
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{class} ")))
            .unwrap_or_else(|| panic!("no {class}: {out}"));
        let n: Vec<usize> = row
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        assert!(n[0] > 5000 && n[0] == n[1], "{row}");
    }
    let valid = out
        .lines()
        .find(|l| l.trim_start().starts_with("valid "))
        .unwrap();
    assert!(valid.contains(" 0 refused"), "{valid}");
}

#[test]
fn the_function_passes_identities_it_cannot_check() {
    // A trusted proxy's header may be set behind the edge: not checked there.
    let sale = Sale::new();
    let out = ok(sale.run(&[
        "edge",
        "test",
        "--requests",
        "20000",
        "--engine",
        "node",
        "-v",
    ]));
    assert!(out.contains("identity: a trusted proxy's header"), "{out}");
    assert!(line(&out, "node").contains(": 0 disagreements"), "{out}");
    let missing = out
        .lines()
        .find(|l| l.trim_start().starts_with("missing_cookie "))
        .unwrap();
    assert!(
        missing.trim_end().ends_with(" 0 refused at the edge"),
        "{missing}"
    );
}

#[test]
fn a_function_off_by_a_millisecond_is_caught() {
    let sale = cookie_sale();
    // An engine that runs the function with its window one millisecond long.
    sale.write(
        "bugged-node",
        "#!/bin/sh\nsed 's/now > conf.e + conf.t/now > conf.e + conf.t + 1/' \"$1\" > \"$1.bug.js\"\nexec node \"$1.bug.js\" \"$2\" \"$3\"\n",
    );
    let engine = sale.path().join("bugged-node");
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&engine)
        .status()
        .unwrap();
    let o = sale.run(&[
        "edge",
        "test",
        "--requests",
        "20000",
        "--engine",
        engine.to_str().unwrap(),
    ]);
    let err = fails(o);
    assert!(err.contains("the function and the gate disagree"), "{err}");
    assert!(
        err.contains("late: the gate says R403, the function pass"),
        "{err}"
    );
}

#[test]
fn the_function_is_written_whole_and_small() {
    let sale = cookie_sale();
    let out = ok(sale.run(&["edge", "function", "-o", "edge.js"]));
    assert!(out.contains("bytes (CloudFront allows 10240)"), "{out}");
    let code = sale.read("edge.js");
    assert!(code.len() <= 10 * 1024 && code.contains("import cf from 'cloudfront';"));
    assert!(code.contains("var COOKIE = 'shop_user';") && !code.contains("__SALE__"));
    // No key of any kind is in the code: the store holds them.
    assert!(!code.contains("FLASHSALE") && !code.to_lowercase().contains("secret"));
}

/// `flashsale ARGS` in the sale with test AWS credentials and the keys.
fn run_keyed(sale: &Sale, args: &[&str], gate_key: &str, cookie_key: &str) -> std::process::Output {
    std::process::Command::new(bin())
        .args(args)
        .current_dir(sale.path())
        .envs(crate::common::moto::aws_env("AKIDKVS", "kvs-secret"))
        .env("FLASHSALE_GATE_KEY", gate_key)
        .env("FLASHSALE_COOKIE_KEY", cookie_key)
        .output()
        .unwrap()
}

#[test]
fn the_keys_are_staged_in_50_key_batches_through_stale_etags_and_never_the_gate_key() {
    use crate::common::kvs::KvsStandIn;
    // Two other writers come first: the SDK's calls must read the ETag again.
    let kvs = KvsStandIn::start(2);
    let sale = cookie_sale();
    for i in 0..117 {
        sale.write(
            &format!("items/extra-{i:03}.md"),
            &item_md(&format!("X-{i:03}"), "Extra", "1.00"),
        );
    }
    sale.write(
        "site.toml",
        &format!("{}{}", sale.read("site.toml"), kvs.section()),
    );
    let gate_key = "ab".repeat(32);
    let cookie_key = "the-shops-cookie-key-0123456789";
    let o = run_keyed(&sale, &["edge", "stage"], &gate_key, cookie_key);
    let said = ok(o);
    assert!(said.contains("Edge: staged the sale's keys"), "{said}");
    let d = kvs.dump();
    let store = d["store"].as_object().unwrap();
    // 120 items, the sale's window and order key, the cookie key.
    assert_eq!(store.len(), 122, "{store:?}");
    assert_eq!(d["state"]["largest_batch"], 50, "{d}");
    assert_eq!(d["state"]["conflicts"], 2, "{d}");
    assert_eq!(d["state"]["updates"], 3, "{d}");
    let conf: serde_json::Value =
        serde_json::from_str(store["test-sale"].as_str().unwrap()).unwrap();
    let k = conf["k"].as_str().unwrap();
    assert!(k.len() == 64 && k != gate_key, "{conf}");
    assert!(conf["s"].as_i64().unwrap() < conf["e"].as_i64().unwrap());
    assert_eq!(store["test-sale|ck"], cookie_key);
    assert_eq!(store["test-sale|i|X-042"], "1");
    let all = serde_json::to_string(store).unwrap();
    assert!(
        !all.contains(&gate_key),
        "the gate key never goes to the edge"
    );

    // close marks the sale ended; clear takes everything out.
    ok(run_keyed(&sale, &["edge", "end"], &gate_key, cookie_key));
    assert_eq!(kvs.dump()["store"]["test-sale|ended"], "1");
    let said = ok(run_keyed(&sale, &["edge", "clear"], &gate_key, cookie_key));
    assert!(said.contains("took the sale's keys out"), "{said}");
    assert_eq!(kvs.dump()["store"].as_object().unwrap().len(), 0);

    // Without the cookie key the edge could only refuse: it is not staged.
    let o = std::process::Command::new(bin())
        .args(["edge", "stage"])
        .current_dir(sale.path())
        .envs(crate::common::moto::aws_env("AKIDKVS", "kvs-secret"))
        .env("FLASHSALE_GATE_KEY", &gate_key)
        .env_remove("FLASHSALE_COOKIE_KEY")
        .output()
        .unwrap();
    let err = fails(o);
    assert!(
        err.contains("FLASHSALE_COOKIE_KEY") && !err.contains(&gate_key),
        "{err}"
    );
}

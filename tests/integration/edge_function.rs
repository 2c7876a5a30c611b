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

/// A class's row of `edge test -v`: its requests, and how many were refused.
fn class_counts(out: &str, class: &str) -> (usize, usize) {
    let row = out
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{class} ")))
        .unwrap_or_else(|| panic!("no {class}: {out}"));
    let n: Vec<usize> = row
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (n[0], n[1])
}

fn line<'a>(out: &'a str, engine: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("{engine}: ")))
        .unwrap_or_else(|| panic!("no {engine} line: {out}"))
}

/// `flashsale edge test -v` on `requests` requests in each of `engines`; its output.
fn edge_test(sale: &Sale, requests: u32, engines: &[&str]) -> String {
    let requests = requests.to_string();
    let mut args = vec!["edge", "test", "--requests", &requests, "-v"];
    for e in engines {
        args.extend(["--engine", e]);
    }
    ok(sale.run(&args))
}

#[test]
fn the_function_agrees_with_the_gate_on_100000_requests_in_njs_and_node() {
    let sale = cookie_sale();
    let out = edge_test(&sale, 100000, &["njs", "node"]);
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
        let (n, refused) = class_counts(&out, class);
        assert!(n > 5000 && n == refused, "{class}: {n} {refused}");
    }
    assert_eq!(class_counts(&out, "valid").1, 0, "{out}");
}

#[test]
fn the_function_passes_identities_it_cannot_check() {
    // A trusted proxy's header may be set behind the edge: not checked there.
    let sale = Sale::new();
    let out = edge_test(&sale, 20000, &["node"]);
    assert!(out.contains("identity: a trusted proxy's header"), "{out}");
    assert!(line(&out, "node").contains(": 0 disagreements"), "{out}");
    let (n, refused) = class_counts(&out, "missing_cookie");
    assert!(n > 0 && refused == 0, "{out}");
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

/// The edge function in front of a gate, as CloudFront would run it: a
/// Node proxy (`edge_proxy.js`) reading the KeyValueStore stand-in.
struct EdgeProxy {
    child: std::process::Child,
    base: String,
}

impl EdgeProxy {
    fn start(function: &std::path::Path, kvs: &str, gate: &str) -> EdgeProxy {
        let dir = tempfile::tempdir().unwrap();
        let port_file = dir.path().join("port");
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/integration/common/edge_proxy.js"
        );
        let child = std::process::Command::new("node")
            .arg(script)
            .arg(function)
            .args([kvs, gate])
            .arg(&port_file)
            .spawn()
            .unwrap();
        let port = wait_for_some("the edge proxy", std::time::Duration::from_secs(10), || {
            std::fs::read_to_string(&port_file)
                .ok()
                .filter(|p| !p.is_empty())
        });
        EdgeProxy {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn counts(&self) -> serde_json::Value {
        http()
            .get(&format!("{}/__counts", self.base))
            .call()
            .unwrap()
            .into_json()
            .unwrap()
    }
}

impl Drop for EdgeProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `n` orders for the mug from distinct users at `url` (its sku in the
/// query string, as the page sends it), every `forged`-th with a forged
/// order URL; the statuses answered.
fn flood(
    url: &str,
    first_user: usize,
    n: usize,
    forged: usize,
) -> std::collections::BTreeMap<u16, usize> {
    let agent = http();
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..n {
        let mut target = format!("{url}?sku=A-1");
        if forged > 0 && i % forged == 0 {
            target = target.replacen("/o/test-sale/", "/o/test-sale/0", 1);
        }
        let resp = agent
            .post(&target)
            .set("Content-Type", "application/x-www-form-urlencoded")
            .set("X-User-Id", &format!("u{}", first_user + i))
            .set("Accept", "application/json")
            .send_string("sku=A-1&quantity=1");
        let status = match resp {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(s, _)) => s,
            Err(e) => panic!("{e}"),
        };
        *seen.entry(status).or_default() += 1;
    }
    seen
}

/// What reached the gate, before and after the sale sold out.
#[derive(Debug)]
struct Reached {
    before: f64,
    after: f64,
}

/// A sale of 10 mugs: 500 customers (one in ten with a forged order URL)
/// while it sells out, `close --when-sold-out`, then 2,000 more: through the
/// edge or straight to the gate. What reached the gate each time.
fn rehearse(with_edge: bool) -> Reached {
    use crate::common::gate::{GateProc, GateSale};
    const REQUESTS: &str = "flashsale_gate_requests_total";
    use crate::common::kvs::KvsStandIn;
    let s = GateSale::new("");
    for f in ["items/b-2.md", "items/c-3.md"] {
        std::fs::remove_file(s.sale.path().join(f)).unwrap();
    }
    let kvs = KvsStandIn::start(0);
    let toml = s.sale.read("site.toml");
    s.sale
        .write("site.toml", &format!("{toml}{}", kvs.section()));
    let gate = GateProc::start(&s, &[]);
    let key = std::fs::read_to_string(s.sale.path().join("gate.key")).unwrap();
    let order_url = gate.url(&s);
    let proxy = with_edge.then(|| {
        ok(run_keyed(
            &s.sale,
            &["edge", "stage"],
            key.trim(),
            "unused-cookie-key-000",
        ));
        ok(s.sale.run(&["edge", "function", "-o", "edge.js"]));
        let p = EdgeProxy::start(&s.sale.path().join("edge.js"), &kvs.endpoint, &gate.base);
        wait_for(
            "the edge to read the store",
            std::time::Duration::from_secs(5),
            || p.counts()["reads"].as_u64().unwrap_or(0) > 0,
        );
        p
    });
    let base = proxy.as_ref().map_or(gate.base.clone(), |p| p.base.clone());
    let url = order_url.replacen(&gate.base, &base, 1);
    let first = flood(&url, 0, 500, 10);
    let before = gate.metric(REQUESTS);
    eprintln!("edge {with_edge}: while selling: {first:?}; the gate saw {before}");
    // The operator's close: the gate says sold out, the toggle and the edge follow.
    let closed = run_keyed(
        &s.sale,
        &[
            "close",
            "--when-sold-out",
            "--gates",
            &gate.admin,
            "--target",
            "dir:toggle",
            "--force",
            "--no-edge",
        ],
        key.trim(),
        "unused-cookie-key-000",
    );
    let said = ok(closed);
    if with_edge {
        // --no-edge above, and `edge end` here: the same step, shown apart.
        ok(run_keyed(
            &s.sale,
            &["edge", "end"],
            key.trim(),
            "unused-cookie-key-000",
        ));
        let p = proxy.as_ref().unwrap();
        wait_for(
            "the edge to hear the sale ended",
            std::time::Duration::from_secs(5),
            || p.counts()["ended"] == true,
        );
    }
    let second = flood(&url, 10_000, 2000, 0);
    let after = gate.metric(REQUESTS) - before;
    eprintln!("edge {with_edge}: {said}after sold out: {second:?}; the gate saw {after} more");
    if let Some(p) = &proxy {
        eprintln!("edge counts: {}", p.counts());
    }
    assert_eq!(s.winners().len(), 10);
    // Everyone after the sell-out is told so, by the edge or by the gate.
    assert_eq!(second.get(&200).copied().unwrap_or(0), 2000, "{second:?}");
    Reached { before, after }
}

#[test]
fn the_edge_sheds_the_sold_out_flood_before_it_reaches_the_gate() {
    let without = rehearse(false);
    let with = rehearse(true);
    eprintln!(
        "requests that reached the gate — without the edge: {} while selling, {} after sold out; with it: {} and {}",
        without.before, without.after, with.before, with.after
    );
    assert_eq!(without.before, 500.0);
    assert_eq!(without.after, 2000.0);
    // The forged order URLs never reach it, nor does anyone after the close.
    assert_eq!(with.before, 450.0);
    assert_eq!(with.after, 0.0);
}

#[test]
fn after_a_fair_start_the_results_are_left_to_the_gates() {
    // Entrants ask again for their result after the draw: for a minute past
    // the window an ended sale is not answered at the edge.
    let sale = Sale::with_times("2030-01-01T10:00:00+08:00", "2030-01-01T10:03:00+08:00");
    sale.add_to_gate("identity_cookie = \"shop_user\"\nfair_window = \"30s\"");
    let out = edge_test(&sale, 20000, &["node", "njs"]);
    for engine in ["node", "njs"] {
        assert!(line(&out, engine).contains(": 0 disagreements"), "{out}");
    }
    let (ended, results) = (
        class_counts(&out, "after_sold_out"),
        class_counts(&out, "draw_result"),
    );
    // Half the three minutes is the window and the minute after it: those
    // pass; the rest are answered at the edge.
    assert_eq!(results.1, 0, "{results:?}");
    assert_eq!(ended.0, ended.1, "{ended:?}");
    let share = results.0 * 100 / (results.0 + ended.0);
    assert!((35..65).contains(&share), "{share} %");
}

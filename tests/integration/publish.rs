//! `publish` through the real binary against a real S3 + CloudFront protocol
//! server (moto on loopback): headers per file class, incremental uploads,
//! header-only updates, invalidations of exactly what changed, pruning and its
//! limit, clear errors, and convergence after a publish killed half-way.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::common::moto::{Moto, Setup, BUCKET};
use crate::common::*;
use serde_json::Value;

fn keys_of(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn first_publish_sets_headers_per_file_class() {
    let s = Setup::new();
    let out = s.publish_json(&[]);
    let manifest = s.manifest();
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(keys_of(&out["uploaded"]).len(), files.len(), "{out}");
    for f in files {
        let key = f["path"].as_str().unwrap();
        let head = s.head(key).unwrap_or_else(|| panic!("{key} not uploaded"));
        assert_eq!(
            head.content_type(),
            f["headers"]["Content-Type"].as_str(),
            "{key}"
        );
        assert_eq!(
            head.cache_control(),
            f["headers"]["Cache-Control"].as_str(),
            "{key}"
        );
        assert_eq!(head.content_length(), f["size"].as_i64(), "{key}");
    }
    // One of each class, spelled out.
    let asset = files.iter().find(|f| f["class"] == "asset").unwrap()["path"]
        .as_str()
        .unwrap();
    assert_eq!(
        s.head(asset).unwrap().cache_control(),
        Some("public, max-age=31536000, immutable")
    );
    let page = s.head("items/a-1/index.html").unwrap();
    assert_eq!(page.cache_control(), Some("public, max-age=60"));
    assert_eq!(page.content_type(), Some("text/html; charset=utf-8"));
    let toggle = s.head("sale.js").unwrap();
    assert_eq!(
        toggle.cache_control(),
        Some("public, max-age=0, s-maxage=1, must-revalidate")
    );
    assert_eq!(
        toggle.content_type(),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        s.get("items/a-1/index.html"),
        std::fs::read(s.sale.path().join("public/items/a-1/index.html")).unwrap()
    );
    // The manifest itself is not published; no ACLs are set.
    assert!(!s.keys().contains("manifest.json"));
    // Fingerprinted assets are never invalidated.
    let inv = &s.invalidations()[0];
    assert!(inv.iter().all(|p| !p.starts_with("/assets/")), "{inv:?}");
}

#[test]
fn nothing_changed_uploads_nothing_in_a_handful_of_requests() {
    let s = Setup::new();
    s.publish_json(&[]);
    let invalidations = s.invalidations().len();
    // A fresh build, as CI would run it: new mtimes, same bytes.
    std::fs::remove_dir_all(s.sale.path().join("public")).unwrap();
    ok(s.sale.run(&["build", "-q"]));
    let before = s.moto.requests();
    let out = s.publish_json(&[]);
    assert!(
        keys_of(&out["uploaded"]).is_empty() && keys_of(&out["headers_updated"]).is_empty(),
        "{out}"
    );
    assert_eq!(out["requests"]["put"], 0, "{out}");
    assert!(out["requests"]["total"].as_u64().unwrap() <= 3, "{out}");
    assert_eq!(
        s.moto.requests() - before,
        out["requests"]["total"].as_u64().unwrap() as usize,
        "moto saw other requests"
    );
    assert_eq!(out["toggle"], "kept");
    assert_eq!(
        s.invalidations().len(),
        invalidations,
        "no invalidation for no change"
    );
}

#[test]
fn one_changed_description_uploads_one_page_and_invalidates_exactly_it() {
    let s = Setup::new();
    s.publish_json(&[]);
    s.sale.write(
        "items/b-2.md",
        &format!("{}\nNow with a lid.\n", item_md("B-2", "Beta", "2.50")),
    );
    ok(s.sale.run(&["build", "-q"]));
    let out = s.publish_json(&[]);
    assert_eq!(keys_of(&out["uploaded"]), ["items/b-2/index.html"], "{out}");
    assert_eq!(
        out["invalidation"]["paths"],
        serde_json::json!(["/items/b-2/", "/items/b-2/index.html"])
    );
    assert_eq!(
        s.invalidations()[0],
        ["/items/b-2/", "/items/b-2/index.html"]
    );
    assert!(String::from_utf8(s.get("items/b-2/index.html"))
        .unwrap()
        .contains("Now with a lid."));

    // A price change also changes the listing page: both, and nothing else.
    s.sale
        .write("items/b-2.md", &item_md("B-2", "Beta", "2.00"));
    ok(s.sale.run(&["build", "-q"]));
    let out = s.publish_json(&[]);
    assert_eq!(
        keys_of(&out["uploaded"]),
        ["index.html", "items/b-2/index.html"],
        "{out}"
    );
    assert_eq!(
        s.invalidations()[0],
        ["/", "/index.html", "/items/b-2/", "/items/b-2/index.html"]
    );
}

#[test]
fn header_rule_change_updates_headers_without_reuploading() {
    let s = Setup::new();
    s.publish_json(&[]);
    let mut toml = s.sale.read("site.toml");
    toml = toml.replace("[publish]", "[[headers]]\nfor = \"*.html\"\nvalues = { \"Cache-Control\" = \"public, max-age=5\" }\n\n[publish]");
    s.sale.write("site.toml", &toml);
    ok(s.sale.run(&["build", "-q"]));
    let out = s.publish_json(&[]);
    assert!(
        keys_of(&out["uploaded"]).is_empty(),
        "bodies were re-uploaded: {out}"
    );
    let updated = keys_of(&out["headers_updated"]);
    assert!(
        updated.contains(&"items/a-1/index.html".to_string())
            && updated.contains(&"index.html".to_string()),
        "{out}"
    );
    assert!(updated.iter().all(|k| k.ends_with(".html")), "{out}");
    assert_eq!(out["requests"]["put"], 1, "only the state object: {out}");
    assert_eq!(
        s.head("items/a-1/index.html").unwrap().cache_control(),
        Some("public, max-age=5")
    );
    assert_eq!(
        s.head("items/a-1/index.html").unwrap().content_type(),
        Some("text/html; charset=utf-8")
    );
}

#[test]
fn removed_items_are_deleted_only_with_prune_and_within_max_deletes() {
    let s = Setup::new();
    s.publish_json(&[]);
    std::fs::remove_file(s.sale.path().join("items/c-3.md")).unwrap();
    ok(s.sale.run(&["build", "-q"]));
    let out = s.publish_json(&[]);
    assert_eq!(
        keys_of(&out["stale_kept"]),
        ["items/c-3/index.html"],
        "{out}"
    );
    assert!(s.head("items/c-3/index.html").is_some());
    let out = s.publish_json(&["--prune"]);
    assert_eq!(keys_of(&out["deleted"]), ["items/c-3/index.html"], "{out}");
    assert!(s.head("items/c-3/index.html").is_none());
    assert!(s.invalidations()[0].contains(&"/items/c-3/".to_string()));

    // Two more removals with max_deletes = 1: refused, nothing deleted; --force goes ahead.
    s.sale.write(
        "site.toml",
        &s.sale
            .read("site.toml")
            .replace("[publish]\n", "[publish]\nmax_deletes = 1\n"),
    );
    std::fs::remove_file(s.sale.path().join("items/a-1.md")).unwrap();
    std::fs::remove_file(s.sale.path().join("items/b-2.md")).unwrap();
    s.sale
        .write("items/d-4.md", &item_md("D-4", "Delta", "4.00"));
    ok(s.sale.run(&["build", "-q"]));
    let err = fails(s.publish(&["--prune"]));
    assert!(
        err.contains("max_deletes = 1") && err.contains("--force"),
        "{err}"
    );
    assert!(
        s.head("items/a-1/index.html").is_some() && s.head("items/d-4/index.html").is_none(),
        "a refused plan wrote something"
    );
    let out = s.publish_json(&["--prune", "--force"]);
    assert_eq!(
        keys_of(&out["deleted"]),
        ["items/a-1/index.html", "items/b-2/index.html"],
        "{out}"
    );
}

#[test]
fn publish_never_overwrites_a_live_toggle() {
    let s = Setup::new();
    s.publish_json(&[]);
    // What `open` will do: a new sale.js in the bucket.
    let open = flashsale::sale::Toggle::switched(flashsale::sale::State::Open {
        order: "https://gate.example.com/o/x/y.z".into(),
        end: 1,
        draw: None,
    });
    s.put_toggle(&open);
    s.sale.write(
        "items/a-1.md",
        &format!("{}\nTypo fixed.\n", item_md("A-1", "Alpha", "1.50")),
    );
    ok(s.sale.run(&["build", "-q"]));
    let out = s.publish_json(&[]);
    assert_eq!(out["toggle"], "kept");
    assert_eq!(keys_of(&out["uploaded"]), ["items/a-1/index.html"]);
    assert_eq!(
        String::from_utf8(s.get("sale.js")).unwrap(),
        open.to_script()
    );
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let s = Setup::new();
    let o = s.publish(&["--dry-run"]);
    let (progress, out) = (stderr(&o), ok(o));
    assert!(
        out.contains("dry run") && out.contains("upload  items/a-1/index.html"),
        "{out}"
    );
    assert_eq!(out.matches("dry run").count(), 1, "said once: {out}");
    // Progress speaks of what would be done, never as if it were being done.
    assert!(
        progress.contains("would upload pages") && progress.contains("would upload the toggle"),
        "{progress}"
    );
    assert!(!progress.contains("uploading"), "{progress}");
    assert!(s.keys().is_empty(), "a dry run wrote to the bucket");
    assert!(s.invalidations().is_empty(), "a dry run invalidated");
    let plan: Value = serde_json::from_str(&ok(s.publish(&["--dry-run", "--json"]))).unwrap();
    assert_eq!(plan["dry_run"], true);
    assert!(!keys_of(&plan["uploaded"]).is_empty());
}

#[test]
fn wait_waits_for_the_invalidation() {
    let s = Setup::new();
    let out = s.publish_json(&["--wait", "--wait-timeout", "60s"]);
    assert_eq!(out["invalidation"]["completed"], true, "{out}");
}

#[test]
fn missing_bucket_and_unreachable_endpoint_are_one_line_errors() {
    let s = Setup::new();
    s.sale.write(
        "site.toml",
        &s.sale.read("site.toml").replace(
            &format!("bucket = \"{BUCKET}\""),
            "bucket = \"no-such-bucket\"",
        ),
    );
    let err = fails(s.publish(&[]));
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("no-such-bucket") && err.contains("NoSuchBucket"),
        "{err}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = fails(s.publish(&["--endpoint-url", &format!("http://127.0.0.1:{closed}")]));
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("cannot reach"), "{err}");

    let err = fails(s.sale.run(&["publish"]));
    assert!(
        err.contains("credentials") || err.contains("region"),
        "{err}"
    );
}

#[test]
fn wrong_credentials_are_a_one_line_error_without_the_secret() {
    // A moto that checks signatures, with one real user and key.
    let moto = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "4")]);
    let aws = |args: &[&str]| -> String {
        let out = Command::new(crate::common::moto::venv().join("bin/aws"))
            .args(["--endpoint-url", &moto.endpoint])
            .args(args)
            .envs(crate::common::moto::aws_env("AKIDBOOTSTRAP", "bootstrap"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    aws(&["iam", "create-user", "--user-name", "ci"]);
    aws(&[
        "iam",
        "put-user-policy",
        "--user-name",
        "ci",
        "--policy-name",
        "all",
        "--policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    ]);
    let key: Value =
        serde_json::from_str(&aws(&["iam", "create-access-key", "--user-name", "ci"])).unwrap();
    let id = key["AccessKey"]["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = key["AccessKey"]["SecretAccessKey"]
        .as_str()
        .unwrap()
        .to_string();
    aws(&["s3api", "create-bucket", "--bucket", BUCKET]);

    let sale = Sale::new();
    crate::common::moto::add_publish_section(&sale, &moto.endpoint, None);
    ok(sale.run(&["build", "-q"]));
    let run = |id: &str, secret: &str| {
        Command::new(bin())
            .arg("publish")
            .current_dir(sale.path())
            .envs(crate::common::moto::aws_env(id, secret))
            .output()
            .unwrap()
    };
    let wrong_secret = "definitely-not-the-secret-123";
    let err = fails(run(&id, wrong_secret));
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("SignatureDoesNotMatch") && err.contains("credentials"),
        "{err}"
    );
    assert!(
        !err.contains(wrong_secret) && !err.contains(&secret),
        "a secret in the error: {err}"
    );
    let err = fails(run("AKIDUNKNOWNUNKNOWN", wrong_secret));
    assert!(err.contains("InvalidAccessKeyId"), "{err}");
    // The right key works.
    let out = run(&id, &secret);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_publish_killed_half_way_converges_when_run_again() {
    let sale = Sale::new();
    for i in 0..400 {
        sale.write(
            &format!("items/x-{i:03}.md"),
            &item_md(&format!("X-{i:03}"), &format!("Thing {i}"), "1.00"),
        );
    }
    let s = Setup::with(sale);
    let total = s.manifest()["files"].as_array().unwrap().len();
    let mut child = Command::new(bin())
        .args(["publish", "--concurrency", "1"])
        .current_dir(s.sale.path())
        .envs(s.moto.env())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill it once pages are going up (plain progress lines: about every 10%).
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.map_while(Result::ok) {
        seen.push(line.clone());
        if line.contains("uploading pages: ") && line.contains('/') {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = s.keys().len();
    assert!(
        partial > 0 && partial < total,
        "killed at {partial} of {total} objects; saw {seen:?}"
    );

    let out = s.publish_json(&[]);
    let uploaded = keys_of(&out["uploaded"]).len();
    assert!(
        uploaded < total,
        "re-uploaded everything ({uploaded}); it should finish what was missing: {out}"
    );
    // Everything is there, each with the bytes and headers the manifest says.
    let manifest = s.manifest();
    for f in manifest["files"].as_array().unwrap() {
        let key = f["path"].as_str().unwrap();
        let head = s
            .head(key)
            .unwrap_or_else(|| panic!("{key} missing after the re-run"));
        assert_eq!(
            head.cache_control(),
            f["headers"]["Cache-Control"].as_str(),
            "{key}"
        );
        assert_eq!(
            head.metadata().unwrap()["flashsale-sha256"],
            f["sha256"].as_str().unwrap(),
            "{key}"
        );
    }
    let out = s.publish_json(&[]);
    assert!(
        keys_of(&out["uploaded"]).is_empty(),
        "did not converge: {out}"
    );
}

#[test]
fn publishes_to_a_directory_with_a_headers_sidecar() {
    let sale = Sale::new();
    ok(sale.run(&["build", "-q"]));
    let target = tempfile::tempdir().unwrap();
    let t = format!("dir:{}", target.path().display());
    let out: Value =
        serde_json::from_str(&ok(sale.run(&["publish", "--json", "--target", &t]))).unwrap();
    assert!(!keys_of(&out["uploaded"]).is_empty());
    assert_eq!(
        std::fs::read(target.path().join("items/a-1/index.html")).unwrap(),
        std::fs::read(sale.path().join("public/items/a-1/index.html")).unwrap()
    );
    let sidecar: Value = serde_json::from_str(
        &std::fs::read_to_string(target.path().join(".flashsale/objects/sale.js.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        sidecar["headers"]["Cache-Control"],
        "public, max-age=0, s-maxage=1, must-revalidate"
    );
    assert!(out["not_invalidated"].as_array().is_some());
    let again: Value =
        serde_json::from_str(&ok(sale.run(&["publish", "--json", "--target", &t]))).unwrap();
    assert!(keys_of(&again["uploaded"]).is_empty(), "{again}");
}

#[test]
fn check_remote_fails_when_cloudfront_would_not_shield_the_origin_from_the_polls() {
    use crate::common::moto::{create_distribution, Edge};
    let s = Setup::new();
    let check = |toggle: Option<Edge>| {
        let id = create_distribution(&s.moto, toggle);
        let toml = s.sale.read("site.toml");
        let (head, tail) = toml.split_once("distribution_id = \"").unwrap();
        let tail = &tail[tail.find('"').unwrap()..];
        s.sale.write(
            "site.toml",
            &format!("{head}distribution_id = \"{id}{tail}"),
        );
        Command::new(bin())
            .args(["check", "--remote"])
            .current_dir(s.sale.path())
            .envs(s.moto.env())
            .output()
            .unwrap()
    };
    // The managed CachingDisabled policy: every poll goes to the bucket.
    let err = fails(check(Some(Edge {
        policy: Some("4135ea2d-6df8-44a3-9df3-4b5a84be39ad"),
        ..Edge::LEGACY
    })));
    assert!(
        err.contains("cache behaviour `/sale.js`")
            && err.contains("CachingDisabled")
            && err.contains("MaxTTL is 0")
            && err.contains("every poll"),
        "{err}"
    );
    // The random `v` in the cache key.
    let err = fails(check(Some(Edge {
        query_string: true,
        ..Edge::LEGACY
    })));
    assert!(
        err.contains("query string in the cache key (QueryString true)"),
        "{err}"
    );
    // Kept 30 s despite s-maxage=1.
    let err = fails(check(Some(Edge {
        min_ttl: 30,
        max_ttl: 86_400,
        ..Edge::LEGACY
    })));
    assert!(err.contains("MinTTL 30") && err.contains("0 or 1"), "{err}");
    // CachingOptimized passes, with a warning: a 304 without Cache-Control
    // would be kept a day.
    let out = check(Some(Edge {
        policy: Some("658327ea-f89d-4fab-a63d-7e88639e58f6"),
        origin_shield: true,
        ..Edge::LEGACY
    }));
    let warning = stderr(&out);
    let text = ok(out);
    assert!(
        text.contains("managed cache policy CachingOptimized")
            && text.contains("keeps /sale.js 1 s")
            && text.contains("Origin Shield on"),
        "{text}"
    );
    assert!(
        warning.contains("86400 s (DefaultTTL)") && warning.contains("flashsale-toggle"),
        "{warning}"
    );
    // What the README recommends (MinTTL 0, DefaultTTL 1, MaxTTL 1) passes
    // without a word; here as the default behaviour's legacy settings.
    let out = check(None);
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    let text = ok(out);
    assert!(
        text.contains("the default cache behaviour (its legacy cache settings) keeps /sale.js 1 s"),
        "{text}"
    );
}

#[test]
fn reset_toggle_replaces_an_ended_toggle_for_a_new_sale() {
    let s = Setup::new();
    s.publish_json(&[]);
    let ended = flashsale::sale::Toggle::switched(flashsale::sale::State::Ended {
        ended: "/ended.html".into(),
    });
    s.put_toggle(&ended);
    let out = s.publish_json(&[]);
    assert_eq!(out["toggle"], "kept");
    assert!(String::from_utf8(s.get("sale.js"))
        .unwrap()
        .contains("ended"));
    let out = s.publish_json(&["--reset-toggle"]);
    assert_eq!(out["toggle"], "uploaded");
    assert_eq!(
        String::from_utf8(s.get("sale.js")).unwrap(),
        s.sale.read("public/sale.js")
    );
    assert!(s.invalidations()[0].contains(&"/sale.js".to_string()));
}

#[test]
fn capacity_reads_how_the_distribution_caches_the_toggle_and_warns_at_published_limits() {
    use crate::common::moto::{create_distribution, Edge};
    let s = Setup::new();
    let capacity = |viewers: &str, extra: &[&str]| {
        let out = Command::new(bin())
            .args(["capacity", "--json", "--viewers", viewers])
            .args(extra)
            .current_dir(s.sale.path())
            .envs(s.moto.env())
            .output()
            .unwrap();
        let warnings = stderr(&out);
        let json: Value = serde_json::from_str(&ok(out)).unwrap();
        (json, warnings)
    };
    let use_distribution = |toggle: Edge| {
        let id = create_distribution(&s.moto, Some(toggle));
        let toml = s.sale.read("site.toml");
        let (head, tail) = toml.split_once("distribution_id = \"").unwrap();
        let tail = &tail[tail.find('"').unwrap()..];
        s.sale.write(
            "site.toml",
            &format!("{head}distribution_id = \"{id}{tail}"),
        );
    };

    // On paper, with the README's set-up: the origin sees the 13 regional
    // caches, however many pages; a million pages cross CloudFront's quota.
    let (small, w) = capacity("10000", &[]);
    assert_eq!(small["outcome"]["toggle_edge_per_s"], 5000.0);
    assert_eq!(small["outcome"]["toggle_origin_per_s"], 13.0);
    assert!(w.is_empty(), "{w}");
    let (big, w) = capacity("1000000", &[]);
    assert_eq!(big["outcome"]["toggle_origin_per_s"], 13.0);
    assert!(
        w.contains("CloudFront requests per second") && w.contains("2.0x"),
        "{w}"
    );
    assert!(w.contains("run more gates"), "{w}");

    // Caching disabled for /sale.js: every poll reaches S3, 9x its limit.
    use_distribution(Edge {
        policy: Some("4135ea2d-6df8-44a3-9df3-4b5a84be39ad"),
        ..Edge::LEGACY
    });
    let (j, w) = capacity("100000", &["--remote"]);
    assert_eq!(j["outcome"]["toggle_origin_per_s"], 50000.0);
    assert!(w.contains("S3 GET/HEAD") && w.contains("9.1x"), "{w}");

    // Cached, with Origin Shield: one cache asks the origin, once a second.
    use_distribution(Edge {
        policy: Some("658327ea-f89d-4fab-a63d-7e88639e58f6"),
        origin_shield: true,
        ..Edge::LEGACY
    });
    let (j, w) = capacity("100000", &["--remote"]);
    assert_eq!(j["outcome"]["toggle_origin_per_s"], 1.0);
    assert!(!w.contains("S3"), "{w}");

    let err = fails(s.sale.run(&["capacity", "--viewers", "0"]));
    assert!(err.contains("--viewers must be at least 1"), "{err}");

    // A fair start in site.toml: every clicker is held until the draw, on
    // the sale's one gate — over the per-client cap a balancer runs into.
    let (j, w) = capacity("10000", &[]);
    assert!(j["outcome"]["fair_start"].is_null(), "{j}");
    assert!(w.is_empty(), "{w}");
    s.sale.add_to_gate("fair_window = \"4s\"");
    let (j, w) = capacity("10000", &[]);
    let fair = &j["outcome"]["fair_start"];
    assert_eq!(fair["window_s"], 4.0, "{j}");
    assert_eq!(fair["entrants"].as_f64().unwrap().round(), 10000.0, "{j}");
    assert_eq!(fair["held_per_gate"], fair["entrants"], "one gate: {j}");
    assert!(
        w.contains("--max-connections-per-client 10000") && !w.contains("--max-connections 1"),
        "{w}"
    );
    // The flag overrides the file: no window, or a shorter one.
    let (j, w) = capacity("10000", &["--fair-window", "0s"]);
    assert!(j["outcome"]["fair_start"].is_null(), "{j}");
    assert!(w.is_empty(), "{w}");
    let (j, _) = capacity("10000", &["--fair-window", "1s"]);
    let entrants = j["outcome"]["fair_start"]["entrants"].as_f64().unwrap();
    assert!(entrants < 9000.0, "a 1 s window leaves pages out: {j}");
    let err = fails(
        s.sale
            .run(&["capacity", "--viewers", "10", "--fair-window", "31s"]),
    );
    assert!(err.contains("at most 30 s"), "{err}");
}

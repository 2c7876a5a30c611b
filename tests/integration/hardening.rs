//! The gate, the keys and the switch under hostile and unlucky conditions,
//! through the real binary: a flood of slow bodies, connection caps, short
//! cookie keys, an order system that refuses a winner for good, a journal
//! with a torn tail, keys where they would be published, a switch that
//! raced a close, and redirects that would leave the host.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::gate::{order, order_system, GateProc, GateSale};
use crate::common::*;
use serde_json::Value;

/// Lets this test process hold thousands of sockets.
fn raise_open_files() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a struct we own.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max.min(65_536);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_flood_of_slow_bodies_never_stops_a_customer() {
    raise_open_files();
    let s = GateSale::new("");
    let gate = GateProc::start(&s, &["--quota", "10", "--body-timeout", "2s"]);
    let url = gate.url(&s);
    let path = url.trim_start_matches(&gate.base).to_string();
    let addr = gate.base.trim_start_matches("http://").to_string();
    let before = rss_kib(gate.child.id());
    // Headers complete, a body promised and barely begun.
    let slow: Vec<TcpStream> = (0..2000)
        .map(|i| {
            let mut c = TcpStream::connect(&addr).unwrap();
            let req = format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nX-User-Id: slow-{i}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nsku="
            );
            c.write_all(req.as_bytes()).unwrap();
            c
        })
        .collect();
    let flooded = Instant::now();
    let peak = rss_kib(gate.child.id());
    // The public port answers all along (anything but an order: 404).
    let healthy = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (healthy, stop, base) = (healthy.clone(), stop.clone(), gate.base.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if get(&format!("{base}/")).0 != 404 {
                    healthy.store(false, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let started = Instant::now();
    let (status, body, _) = order(&http(), &url, Some("a-real-customer"), "A-1", true);
    let took = started.elapsed();
    assert!(status == 200 && body.contains("won"), "{status} {body}");
    assert!(
        took < Duration::from_secs(1),
        "the customer waited {took:?}"
    );
    // After the body timeout every slow connection was answered 408 and
    // closed: each read ends when the gate closes it (the cap: 4.5 s).
    let cap = flooded + Duration::from_millis(4500);
    let mut closed = 0;
    for mut c in slow {
        let left = cap.saturating_duration_since(Instant::now());
        c.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let mut answer = Vec::new();
        if c.read_to_end(&mut answer).is_ok()
            && String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408")
        {
            closed += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    assert!(
        healthy.load(Ordering::Relaxed),
        "the public port stopped answering during the flood"
    );
    assert_eq!(closed, 2000, "slow connections answered 408 and closed");
    let after = rss_kib(gate.child.id());
    eprintln!("2,000 slow bodies: RSS {before} KiB before, {peak} KiB with them open, {after} KiB after; a customer answered in {took:?}");
    assert_eq!(
        gate.metric("flashsale_gate_requests_total{sale=\"test-sale\",gate=") as usize,
        2001
    );
    assert_eq!(
        gate.metric_where("flashsale_gate_requests_total", &["outcome=\"too_slow\""]),
        2000.0
    );
    let limits = gate.wait_for_log("gate_limits");
    assert!(
        limits["open_files"].as_u64().unwrap() >= limits["open_files_before"].as_u64().unwrap()
    );
}

#[test]
fn connections_over_the_cap_are_closed_at_once() {
    let s = GateSale::new("");
    let gate = GateProc::start(&s, &["--quota", "10", "--max-connections-per-client", "20"]);
    let addr = gate.base.trim_start_matches("http://").to_string();
    // Each held connection is answered once: then the gate has counted it.
    let held: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut c = TcpStream::connect(&addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut seen = Vec::new();
            let mut b = [0u8; 512];
            while !seen.ends_with(b"not found\n") {
                let n = c.read(&mut b).unwrap();
                assert!(n > 0, "closed before answering");
                seen.extend_from_slice(&b[..n]);
            }
            c
        })
        .collect();
    let mut over = TcpStream::connect(&addr).unwrap();
    over.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = over.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = Vec::new();
    let _ = over.read_to_end(&mut buf);
    assert!(
        buf.is_empty(),
        "over the cap, yet answered: {}",
        String::from_utf8_lossy(&buf)
    );
    drop(held);
    // Room again once the gate has seen them close: the public port answers.
    // (Asked before the gate saw them close, that is refused too: counted.)
    let mut early = 0;
    wait_for_some("a free connection slot", Duration::from_secs(5), || {
        let answered = get_status(&format!("{}/", gate.base));
        early += usize::from(answered.is_none());
        answered
    });
    // The admin port has caps of its own: the public one's never block it.
    let metrics = String::from_utf8(get(&format!("{}/metrics", gate.admin)).2).unwrap();
    let refused = metrics
        .lines()
        .find(|l| {
            l.starts_with("flashsale_gate_connections_refused_total")
                && l.contains("cap=\"per_client\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .unwrap();
    assert_eq!(refused, (1 + early).to_string(), "{metrics}");
    assert_eq!(get(&format!("{}/healthz", gate.admin)).0, 200);
}

#[test]
fn a_cookie_key_too_short_to_be_secret_is_refused() {
    let s = GateSale::new("identity_cookie = \"shop_user\"");
    s.sale.write("empty.key", "");
    s.sale.write("short.key", "0123456789\n");
    for file in ["empty.key", "short.key"] {
        let out = s
            .gate_command("j")
            .args(["--cookie-key-file", file])
            .output()
            .unwrap();
        let err = fails(out);
        assert!(
            err.contains("a cookie key must be at least 16"),
            "{file}: {err}"
        );
        assert!(!err.contains("0123456789"), "the key was printed: {err}");
    }
    let out = s
        .gate_command("j")
        .env("FLASHSALE_COOKIE_KEY", "short")
        .output()
        .unwrap();
    assert!(fails(out).contains("$FLASHSALE_COOKIE_KEY holds 5 bytes"));
}

#[test]
fn a_winner_refused_for_good_goes_to_the_dead_letters_and_the_rest_go_on() {
    let s = GateSale::new("");
    let refuse = Arc::new(Mutex::new(None::<String>));
    let accept_all = Arc::new(AtomicBool::new(false));
    let sys = {
        let (refuse, accept_all) = (refuse.clone(), accept_all.clone());
        order_system(move |_, key, _| {
            let mut r = refuse.lock().unwrap();
            let first = r.get_or_insert_with(|| key.to_string());
            if *first == key && !accept_all.load(Ordering::Relaxed) {
                400
            } else {
                200
            }
        })
    };
    let forward = format!("{}/orders", sys.base);
    let gate = GateProc::start(
        &s,
        &["--quota", "5", "--forward", &forward, "--gate-id", "g1"],
    );
    let url = gate.url(&s);
    let agent = http();
    for u in ["a", "b", "c"] {
        assert!(order(&agent, &url, Some(u), "A-1", true).1.contains("won"));
    }
    wait_for(
        "the winners after a refused one forwarded",
        Duration::from_secs(10),
        || {
            sys.got
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, _, st)| *st == 200)
                .count()
                >= 2
        },
    );
    let dead = gate.wait_for_log("forward_dead_letter");
    assert_eq!(dead["status"], 400);
    assert_eq!(
        gate.metric("flashsale_gate_forward_dead_letters_total"),
        1.0
    );
    let letters = s.sale.read("journal/dead-letters.jsonl");
    let refused = refuse.lock().unwrap().clone().unwrap();
    assert!(letters.to_lowercase().contains(&refused), "{letters}");
    let mode = std::fs::metadata(s.journal().join("dead-letters.jsonl")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
    // The order system is fixed: the dead letters are sent again on request.
    assert!(gate.terminate().success());
    accept_all.store(true, Ordering::Relaxed);
    let again = GateProc::start(
        &s,
        &[
            "--quota",
            "5",
            "--forward",
            &forward,
            "--resend-dead-letters",
        ],
    );
    again.wait_for_log("forward_dead_letters_resent");
    let accepted: Vec<String> = sys
        .got
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, st)| *st == 200)
        .map(|(k, _, _)| k.clone())
        .collect();
    assert!(accepted.contains(&refused), "{accepted:?}");
    assert!(!s.journal().join("dead-letters.jsonl").exists());
}

#[test]
fn a_torn_journal_is_repaired_on_request_keeping_every_winner_before_it() {
    let s = GateSale::new("");
    let gate = GateProc::start(&s, &["--quota", "5", "--gate-id", "g1"]);
    let url = gate.url(&s);
    let won = order(&http(), &url, Some("alice"), "A-1", true).1;
    assert!(won.contains("won"));
    assert!(gate.terminate().success());
    let journal = s.journal().join("winners.jsonl");
    let mode = std::fs::metadata(&journal).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600,
        "customer ids: 0600"
    );
    // A power cut on XFS: a run of NULs, then a line.
    let mut bytes = std::fs::read(&journal).unwrap();
    bytes.extend_from_slice(&[0u8; 512]);
    bytes.extend_from_slice(b"{\"order\":\"g1-000009\",\"sale\":\"test-sale\",\"sku\":\"A-1\",\"user\":\"zed\",\"time\":\"x\",\"gate\":\"g1\"}\n");
    std::fs::write(&journal, bytes).unwrap();
    let start = |extra: &[&str]| s.gate_command(s.journal()).args(extra).output().unwrap();
    let err = fails(start(&["--quota", "5"]));
    assert!(err.contains("--repair-journal"), "{err}");
    let repaired = ok(start(&["--repair-journal"]));
    assert!(
        repaired.contains("kept 1 winners; set aside ")
            && repaired.contains("(1 line that may be a winner) in "),
        "{repaired}"
    );
    let gate = GateProc::start(&s, &["--quota", "5"]);
    assert_eq!(
        order(&http(), &gate.url(&s), Some("alice"), "A-1", true).1,
        won
    );
}

#[test]
fn gate_ids_that_would_break_answers_are_refused() {
    let s = GateSale::new("");
    let out = s
        .gate_command("j")
        .args(["--gate-id", "x\"<b>"])
        .output()
        .unwrap();
    assert!(fails(out).contains("cannot be a gate id"));
}

#[test]
fn a_waiting_open_does_not_reopen_a_sale_closed_meanwhile() {
    let sale = Sale::with_times(&in_secs(-5), &in_secs(3600));
    ok(sale.run(&["build", "-q"]));
    let target = tempfile::tempdir().unwrap();
    let t = format!("dir:{}", target.path().display());
    ok(sale.run(&["publish", "-q", "--target", &t]));
    ok(sale.run(&["keygen", "k.key"]));
    let opener = Command::new(bin())
        .args([
            "open",
            "--at",
            &in_secs(3),
            "--target",
            &t,
            "--key-file",
            "k.key",
        ])
        .current_dir(sale.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(sale.path().join("open.err")).unwrap())
        .spawn()
        .unwrap();
    wait_for("open to be waiting", Duration::from_secs(5), || {
        sale.read("open.err").contains("waiting to open")
    });
    ok(sale.run(&["close", "--now", "--target", &t]));
    let out = opener.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = sale.read("open.err");
    assert!(
        err.contains("sale.js is `ended`") && err.contains("--force"),
        "{err}"
    );
    let live = std::fs::read_to_string(target.path().join("sale.js")).unwrap();
    assert!(live.contains("\"state\":\"ended\""), "{live}");
}

#[test]
fn keys_stay_out_of_what_is_published() {
    let sale = Sale::new();
    let err = fails(sale.run(&["keygen", "static/gate.key"]));
    assert!(err.contains("static/"), "{err}");
    // A key copied there by hand is found by `check` on its own.
    ok(run(sale.path(), &["keygen", "gate.key"]));
    let key = sale.read("gate.key");
    sale.write("static/copied.key", &key);
    let err = fails(sale.run(&["check"]));
    assert!(
        err.contains("a key file") && err.contains("copied."),
        "{err}"
    );
    std::fs::remove_file(sale.path().join("static/copied.key")).unwrap();
    sale.write("static/notes.txt", &key);
    let err = fails(sale.run(&["check"]));
    assert!(err.contains("what `flashsale keygen` writes"), "{err}");
    // A new sale ignores keys in git; a key others can read is warned about.
    let dir = tempfile::tempdir().unwrap();
    ok(run(dir.path(), &["new", "fresh"]));
    assert!(std::fs::read_to_string(dir.path().join("fresh/.gitignore"))
        .unwrap()
        .contains("*.key"));
    std::fs::remove_file(sale.path().join("static/notes.txt")).unwrap();
    let p = sale.path().join("gate.key");
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let target = tempfile::tempdir().unwrap();
    let out = sale.run(&[
        "open",
        "--now",
        "--target",
        &format!("dir:{}", target.path().display()),
        "--key-file",
        "gate.key",
    ]);
    assert!(
        stderr(&out).contains("every user of the machine can read or change it (mode 0644)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn serve_redirects_stay_on_its_host() {
    let sale = Sale::new();
    let server = Server::start(sale.path(), &["--no-watch"]);
    let addr = server.base.trim_start_matches("http://");
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"GET //items/a-1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 301"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("location: /items/a-1/\r\n"),
        "{answer}"
    );
}

/// The status of a GET, or `None` when the connection is closed unanswered.
fn get_status(url: &str) -> Option<u16> {
    match http().get(url).call() {
        Ok(r) => Some(r.status()),
        Err(ureq::Error::Status(s, _)) => Some(s),
        Err(_) => None,
    }
}

/// 1,000 addresses of one IPv6 /64 (a proxy names them in X-Forwarded-For)
/// share one rate-limit bucket: one household is one client, not 2^64.
#[test]
fn a_thousand_addresses_of_one_ipv6_slash_64_share_one_bucket() {
    let s = GateSale::new("rate_limit = 5\nclient_ip_header = \"X-Forwarded-For\"");
    let gate = GateProc::start(&s, &["--quota", "10"]);
    let url = gate.url(&s);
    // A connection each: a refusal before the body is read may end its
    // connection, and a pooled one could be reused as it closes.
    let try_from = |addr: &str| -> u16 {
        let r = http()
            .post(&url)
            .set("Content-Type", "application/x-www-form-urlencoded")
            .set("X-User-Id", addr)
            .set("X-Forwarded-For", addr)
            .set("Accept", "application/json")
            .send_string("sku=NOPE");
        match r {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(s, _)) => s,
            Err(e) => panic!("{e}"),
        }
    };
    let limited = (0..1000)
        .filter(|i| try_from(&format!("2001:db8:7:7:{:x}:{:x}::1", i / 256, i % 256)) == 429)
        .count();
    // A burst of 10 (twice the rate) and what refills meanwhile; the rest 429.
    assert!(limited >= 900, "only {limited} of 1,000 limited");
    // Another /64 is another client: its burst is whole.
    let other: Vec<u16> = (0..5)
        .map(|i| try_from(&format!("2001:db8:7:8::{i}")))
        .collect();
    assert!(other.iter().all(|s| *s != 429), "{other:?}");
}

/// An order id with `"<>&` in it (a fleet's ids come from Redis or a
/// replayed journal, not only from the gate's checked id) is escaped in all
/// three answers: JSON, the small HTML page, and `confirm_url`'s Location.
#[test]
fn an_order_id_with_quotes_and_brackets_is_escaped_in_every_answer() {
    let s = GateSale::new("");
    let gate = GateProc::start(&s, &["--quota", "10"]);
    let (_, body, _) = order(&http(), &gate.url(&s), Some("alice"), "A-1", true);
    assert!(body.contains("won"), "{body}");
    assert!(gate.terminate().success());
    // Her journaled order, as a tampered or foreign source could give it.
    let journal = s.journal().join("winners.jsonl");
    let line = std::fs::read_to_string(&journal).unwrap();
    let v: Value = serde_json::from_str(line.trim()).unwrap();
    let weird = format!("{}\"<>&'x", v["order"].as_str().unwrap());
    let mut planted = v.clone();
    planted["order"] = Value::String(weird.clone());
    std::fs::write(&journal, format!("{planted}\n")).unwrap();
    let ask =
        |gate: &GateProc, json: bool| order(&http(), &gate.url(&s), Some("alice"), "A-1", json);

    let gate = GateProc::start(&s, &["--quota", "10"]);
    let (status, body, _) = ask(&gate, true);
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(answer["order"], weird.as_str());
    let (status, page, _) = ask(&gate, false);
    assert_eq!(status, 200);
    assert!(!page.contains("\"<>&"), "{page}");
    assert!(page.contains("&quot;&lt;&gt;&amp;&#39;x"), "{page}");
    assert!(gate.terminate().success());

    s.sale
        .add_to_gate("confirm_url = \"https://shop.example.com/thanks/{order}\"");
    let gate = GateProc::start(&s, &["--quota", "10"]);
    let (status, _, location) = ask(&gate, false);
    assert_eq!(status, 303);
    let location = location.unwrap();
    assert!(
        location.ends_with("%22%3C%3E%26%27x"),
        "the order percent-encoded: {location}"
    );
}

/// The preview stays on loopback unless told: `--bind 0.0.0.0` is refused
/// without `--public`, at once.
#[test]
fn the_preview_refuses_a_public_bind_without_public() {
    let sale = Sale::new();
    let mut child = Command::new(bin())
        .args(["serve", "--port", "0", "--no-watch", "--bind", "0.0.0.0"])
        .current_dir(sale.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let exited = wait_for_some("serve to refuse", Duration::from_secs(10), || {
        child.try_wait().unwrap()
    });
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(exited.code(), Some(1), "{err}");
    assert!(
        err.contains("--public") && err.contains("X-User-Id"),
        "{err}"
    );
}

/// A preview on a CI runner, where $FLASHSALE_GATE_KEY is production's,
/// mints its order URL with a key of its own: the production gate refuses it.
#[test]
fn a_preview_never_mints_with_the_production_key_from_the_environment() {
    let s = GateSale::new("");
    let production = GateProc::start(&s, &["--quota", "10"]);
    let key = std::fs::read_to_string(s.sale.path().join("gate.key")).unwrap();
    let preview = Server::start_with_env(
        s.sale.path(),
        &["--no-watch", "--opens-in", "1s"],
        &[("FLASHSALE_GATE_KEY", Path::new(key.trim()))],
    );
    let token = preview_token(&preview);
    let url = format!("{}/o/test-sale/{token}", production.base);
    let (status, body, _) = order(&http(), &url, Some("ci-bot"), "A-1", true);
    assert_eq!(
        status, 404,
        "the production gate took the preview's URL: {body}"
    );
}

/// A preview given the production key file on purpose still cannot mint a
/// production URL: its window is moved (`--opens-in`), and an order token's
/// MAC covers the sale's start, so the production gate refuses the
/// preview's token (404) while a token for its own start works.
#[test]
fn a_token_minted_for_another_start_is_refused() {
    let s = GateSale::new("");
    let production = GateProc::start(&s, &["--quota", "10"]);
    let preview = Server::start(
        s.sale.path(),
        &["--no-watch", "--opens-in", "1s", "--key-file", "gate.key"],
    );
    let token = preview_token(&preview);
    let agent = http();
    let url = format!("{}/o/test-sale/{token}", production.base);
    let (status, body, _) = order(&agent, &url, Some("ci-bot"), "A-1", true);
    assert_eq!(
        status, 404,
        "the production gate took the preview's URL: {body}"
    );
    // The same key, minted for this sale's own start: accepted.
    let (status, body, _) = order(&agent, &production.url(&s), Some("ci-bot"), "A-1", true);
    assert_eq!(status, 200, "{body}");
    // And one minted for an hour later (the sale rescheduled): refused.
    let later = s.key.mint("test-sale", s.sale.start_ms() + 3_600_000);
    let url = format!("{}/o/test-sale/{later}", production.base);
    assert_eq!(order(&agent, &url, Some("dave"), "A-1", true).0, 404);
}

/// The key file the way the shipped units prescribe it (root-owned, 0640,
/// read by the service's group) draws no warning; a world-readable one does.
#[test]
fn the_examples_key_mode_is_accepted_and_a_world_readable_key_is_not() {
    use std::os::unix::fs::PermissionsExt;
    let s = GateSale::new("");
    ok(s.sale.run(&["build"]));
    let key = s.sale.path().join("gate.key");
    let open = |mode: u32| {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
        let o = s.sale.run(&[
            "open",
            "--now",
            "--force",
            "--target",
            "dir:public",
            "--key-file",
            "gate.key",
        ]);
        let err = stderr(&o);
        ok(o);
        err
    };
    // As root (CI), root:root 0640 is the units' shape: no warning. Run by
    // another user the file is that user's, not root's: warned about.
    let shared = open(0o640);
    let root = std::fs::metadata(&key).map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    assert_eq!(
        shared.contains("warning: gate.key"),
        !root.unwrap(),
        "{shared}"
    );
    let world = open(0o644);
    assert!(
        world.contains("warning: gate.key: every user of the machine can read"),
        "{world}"
    );
}

/// A gate reached around its load balancer (here: from loopback, which this
/// sale does not list in `trusted_proxies`) believes neither the client's
/// own `X-User-Id` (401, said once in the log) nor its `X-Forwarded-For`
/// (the peer is the client: a fresh forged address per request is still one
/// bucket). From a listed peer both are honoured as before.
#[test]
fn a_forged_user_and_forwarded_for_from_an_untrusted_peer_are_not_believed() {
    let s = GateSale::new("trusted_proxies = [\"10.0.0.0/8\"]");
    let gate = GateProc::start(&s, &["--quota", "10"]);
    let (status, body, _) = order(&http(), &gate.url(&s), Some("mallory"), "A-1", true);
    assert_eq!(status, 401, "{body}");
    let line = gate.wait_for_log(
        "an order from a peer that is not a trusted proxy: its identity header is not believed (401); if this peer is your load balancer, add it to [gate] trusted_proxies (logged once)",
    );
    assert_eq!(line["peer"], "127.0.0.1");
    assert!(s.winners().is_empty());
    assert!(gate.terminate().success());
    // The same gate with loopback listed: her header is believed.
    let toml = s.sale.read("site.toml").replace(
        "trusted_proxies = [\"10.0.0.0/8\"]",
        "trusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1\"]",
    );
    s.sale.write("site.toml", &toml);
    let gate = GateProc::start(&s, &["--quota", "10"]);
    let (status, body, _) = order(&http(), &gate.url(&s), Some("alice"), "A-1", true);
    assert_eq!(status, 200, "{body}");
    drop(gate);

    // Cookie identity and a rate limit keyed by X-Forwarded-For.
    let limited = |trusted: &str| -> usize {
        let s = GateSale::new(&format!(
            "identity_cookie = \"shop_user\"\nrate_limit = 1\nclient_ip_header = \"X-Forwarded-For\"\ntrusted_proxies = [{trusted}]"
        ));
        s.sale.write("cookie.key", "shop-secret-key-0123");
        let gate = GateProc::start(&s, &["--quota", "10", "--cookie-key-file", "cookie.key"]);
        let url = gate.url(&s);
        (0..20)
            .filter(|i| {
                let cookie =
                    flashsale::gate::sign_cookie(b"shop-secret-key-0123", &format!("u{i}"));
                // A connection each: a refusal before the body is read ends
                // its connection, and a pooled one could be reused as it closes.
                let r = http()
                    .post(&url)
                    .set("Cookie", &format!("shop_user={cookie}"))
                    .set("X-Forwarded-For", &format!("198.51.100.{i}"))
                    .set("Accept", "application/json")
                    .send_string("sku=NOPE");
                let status = match r {
                    Ok(r) => r.status(),
                    Err(ureq::Error::Status(s, _)) => s,
                    Err(e) => panic!("{e}"),
                };
                status == 429
            })
            .count()
    };
    // Untrusted: one client (the peer), a burst of 2, the rest refused.
    assert!(limited("\"10.0.0.0/8\"") >= 17);
    // Trusted: twenty clients named by their proxy, none limited.
    assert_eq!(limited("\"127.0.0.0/8\""), 0);
}

/// Two gates alone (no ledger) given one `--gate-id` would give two winners
/// one order id. With the gates listed in `[gate] admin`, the second start
/// finds the live twin and is refused, naming it and the fix; another id
/// starts.
#[test]
fn two_local_gates_with_one_id_are_refused() {
    let s = GateSale::new("");
    let first = GateProc::start_in(
        s.sale.path(),
        &s.sale.path().join("journal-1"),
        &["--quota", "5", "--gate-id", "eu1"],
    );
    s.sale
        .add_to_gate(&format!("admin = [\"{}\"]", first.admin));
    let out = s
        .gate_command(s.sale.path().join("journal-2"))
        .args(["--quota", "5", "--gate-id", "eu1"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("gate id `eu1` is taken by the live gate whose admin listener is")
            && err.contains(&first.admin)
            && err.contains("another --gate-id"),
        "{err}"
    );
    assert!(!s.sale.path().join("journal-2/winners.jsonl").exists());
    let second = GateProc::start_in(
        s.sale.path(),
        &s.sale.path().join("journal-2"),
        &["--quota", "5", "--gate-id", "eu2"],
    );
    let (a, b) = (
        order(&http(), &first.url(&s), Some("alice"), "A-1", true),
        order(&http(), &second.url(&s), Some("bob"), "A-1", true),
    );
    assert!(
        a.1.contains("\"eu1-") && b.1.contains("\"eu2-"),
        "{a:?} {b:?}"
    );
}

/// The order token of a preview's sale once it opens.
fn preview_token(preview: &Server) -> String {
    let toggle = wait_for_some("the preview to open", Duration::from_secs(10), || {
        let body = String::from_utf8(get(&preview.url("/sale.js")).2).unwrap();
        body.contains("\"state\":\"open\"").then_some(body)
    });
    toggle
        .split("/o/test-sale/")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string()
}

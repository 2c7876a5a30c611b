//! `flashsale gate` through the real binary with a real HTTP client: exactly
//! the quota under concurrency, one unit per user, every refusal with its
//! status, journal replay after kill -9, forwarding with retries, and
//! malformed or slow requests that never stop it answering others.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::gate::*;
use crate::common::*;
use serde_json::Value;

#[test]
fn exactly_the_quota_wins_under_concurrency_and_each_user_once() {
    exactly_the_quota_wins(&[]);
}

/// The same on a gate with one thread (a current-thread runtime).
#[test]
fn exactly_the_quota_wins_on_one_thread() {
    exactly_the_quota_wins(&["--threads", "1"]);
}

fn exactly_the_quota_wins(extra: &[&str]) {
    let s = GateSale::new("");
    let gate = GateProc::start(&s, &[&["--quota", "100"], extra].concat());
    let limits = gate.wait_for_log("gate_limits");
    if let Some(n) = extra.iter().position(|a| *a == "--threads") {
        assert_eq!(limits["threads"].to_string(), extra[n + 1], "{limits}");
    }
    // No order system configured: the gate says where the winners go instead.
    let said = wait_for_some("the note on winners", Duration::from_secs(5), || {
        let said = gate.err.lock().unwrap().join("\n");
        said.contains("no order system").then_some(said)
    });
    assert!(
        said.contains("no order system") && said.contains("winners.jsonl"),
        "{said}"
    );
    let url = gate.url(&s);
    let results = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..32)
        .map(|t| {
            let (url, results) = (url.clone(), results.clone());
            std::thread::spawn(move || {
                let agent = http();
                for i in 0..63 {
                    let user = format!("user-{t}-{i}");
                    let r = order(&agent, &url, Some(&user), "A-1", true);
                    results.lock().unwrap().push((user, r));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let results = results.lock().unwrap();
    assert_eq!(results.len(), 2016);
    let won: Vec<&String> = results
        .iter()
        .filter(|(_, r)| r.1.contains("\"won\""))
        .map(|(u, _)| u)
        .collect();
    let sold_out = results
        .iter()
        .filter(|(_, r)| r.1 == "{\"status\":\"sold_out\"}")
        .count();
    let errors: Vec<_> = results.iter().filter(|(_, r)| r.0 != 200).collect();
    assert_eq!(won.len(), 100, "winners");
    assert_eq!(sold_out, 1916, "sold out");
    assert!(errors.is_empty(), "{:?}", &errors[..errors.len().min(5)]);
    let journal = s.winners();
    assert_eq!(journal.len(), 100);
    let users: BTreeSet<&str> = journal
        .iter()
        .map(|w| w["user"].as_str().unwrap())
        .collect();
    assert_eq!(users.len(), 100, "one unit per user");
    assert_eq!(
        users,
        won.iter().map(|u| u.as_str()).collect::<BTreeSet<_>>()
    );
    assert_eq!(
        gate.metric_where("flashsale_gate_remaining", &["sku=\"A-1\""]),
        0.0
    );
    assert_eq!(
        gate.metric_where("flashsale_gate_remaining", &["sku=\"B-2\""]),
        100.0
    );
    assert_eq!(
        gate.metric("flashsale_gate_requests_total{sale=\"test-sale\",gate=") as usize,
        2016
    );

    // A winner asking again gets the same order id; a loser's repeat is still sold out.
    let agent = http();
    let first = journal[0].clone();
    let again = order(&agent, &url, first["user"].as_str(), "A-1", true);
    assert_eq!(
        again.1,
        format!(
            "{{\"status\":\"won\",\"order\":\"{}\"}}",
            first["order"].as_str().unwrap()
        )
    );
    // Sold out without JSON: 303 to the ended page.
    let (status, _, location) = order(&agent, &url, Some("late-user"), "A-1", false);
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("https://sale.example.com/ended.html"))
    );
    assert_eq!(
        s.winners().len(),
        100,
        "no journal write for repeats and losers"
    );
}

#[test]
fn the_same_user_racing_with_itself_gets_one_unit() {
    let s = GateSale::new("");
    let gate = GateProc::start(&s, &["--quota", "50"]);
    let url = gate.url(&s);
    let answers = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (url, answers) = (url.clone(), answers.clone());
            std::thread::spawn(move || {
                let r = order(&http(), &url, Some("the-same-user"), "B-2", true);
                answers.lock().unwrap().push(r.1);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let answers = answers.lock().unwrap();
    let distinct: BTreeSet<&String> = answers.iter().collect();
    assert_eq!(distinct.len(), 1, "{answers:?}");
    assert!(answers[0].contains("\"won\""));
    assert_eq!(s.winners().len(), 1);
}

#[test]
fn refusals_have_their_status() {
    let s = GateSale::new("rate_limit = 2");
    let gate = GateProc::start(&s, &["--quota", "5"]);
    let agent = http();
    let url = gate.url(&s);
    let token = url.rsplit('/').next().unwrap().to_string();
    // Unknown sale, bad token, flipped bit: 404.
    assert_eq!(
        order(
            &agent,
            &format!("{}/o/other-sale/{token}", gate.base),
            Some("u1"),
            "A-1",
            true
        )
        .0,
        404
    );
    assert_eq!(
        order(
            &agent,
            &format!("{}/o/test-sale/nonsense", gate.base),
            Some("u1"),
            "A-1",
            true
        )
        .0,
        404
    );
    let mut flipped = url.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
    assert_eq!(
        order(
            &agent,
            &String::from_utf8(flipped).unwrap(),
            Some("u1"),
            "A-1",
            true
        )
        .0,
        404
    );
    // No identity: 401.
    assert_eq!(order(&agent, &url, None, "A-1", true).0, 401);
    // Over 4 KiB: 413, declared or not.
    let big = "x".repeat(5000);
    let r = agent
        .post(&url)
        .set("X-User-Id", "u2")
        .send_string(&format!("sku=A-1&pad={big}"));
    assert_eq!(
        r.map(|r| r.status())
            .unwrap_or_else(|e| if let ureq::Error::Status(c, _) = e {
                c
            } else {
                0
            }),
        413
    );
    // Unknown item: 404; no item named: 400.
    assert_eq!(order(&agent, &url, Some("u3"), "NOPE", true).0, 404);
    let r = agent
        .post(&url)
        .set("X-User-Id", "u3")
        .send_string("quantity=1");
    assert_eq!(
        r.map(|r| r.status())
            .unwrap_or_else(|e| if let ureq::Error::Status(c, _) = e {
                c
            } else {
                0
            }),
        400
    );
    // The item by query string works too.
    let r = agent
        .post(&format!("{url}?sku=A-1"))
        .set("X-User-Id", "u4")
        .set("Accept", "application/json")
        .send_string("");
    assert!(r.unwrap().into_string().unwrap().contains("won"));
    // Rate limit (2/s, burst 4) per client address: 429.
    let statuses: Vec<u16> = (0..12)
        .map(|i| order(&agent, &url, Some(&format!("r{i}")), "NOPE", true).0)
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    // GET on the order path: 405; healthz and metrics answer on the admin
    // port only: the public one tells a bot nothing of the stock.
    assert_eq!(get(&url).0, 405);
    for path in ["/metrics", "/healthz"] {
        assert_eq!(get(&format!("{}{path}", gate.base)).0, 404, "{path}");
    }
    assert_ne!(gate.base, gate.admin);
    assert_eq!(get(&format!("{}/healthz", gate.admin)).0, 200);
    assert_eq!(get(&format!("{}/metrics", gate.admin)).0, 200);
    assert!(gate.metric("flashsale_gate_requests_total{sale=\"test-sale\",gate=") >= 10.0);
    assert!(String::from_utf8(get(&format!("{}/metrics", gate.admin)).2)
        .unwrap()
        .contains("flashsale_gate_journal_fsync_seconds_bucket"));
}

#[test]
fn outside_the_window_is_403_by_the_gates_clock() {
    let s = GateSale::with_times(&in_secs(600), &in_secs(3600), "");
    let gate = GateProc::start(&s, &["--quota", "5"]);
    assert_eq!(
        order(&http(), &gate.url(&s), Some("early"), "A-1", true).0,
        403
    );
    let s = GateSale::with_times(&in_secs(-3600), &in_secs(-600), "");
    let gate = GateProc::start(&s, &["--quota", "5"]);
    assert_eq!(
        order(&http(), &gate.url(&s), Some("late"), "A-1", true).0,
        403
    );
    assert!(s.winners().is_empty());
}

#[test]
fn signed_cookies_identify_and_forged_ones_are_refused() {
    let s = GateSale::new("identity_cookie = \"shop_user\"");
    s.sale.write("cookie.key", "shop-secret-key-0123");
    let gate = GateProc::start(&s, &["--quota", "5", "--cookie-key-file", "cookie.key"]);
    let url = gate.url(&s);
    let agent = http();
    let send = |cookie: &str| match agent
        .post(&url)
        .set("Cookie", &format!("other=1; shop_user={cookie}"))
        .set("Accept", "application/json")
        .send_string("sku=A-1")
    {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap()),
        Err(e) => panic!("{e}"),
    };
    let good = flashsale::gate::sign_cookie(b"shop-secret-key-0123", "alice");
    assert!(send(&good).1.contains("won"));
    assert_eq!(send(&good.replace("alice", "mallory")).0, 401);
    assert_eq!(
        send(&flashsale::gate::sign_cookie(b"wrong-key", "bob")).0,
        401
    );
    // The header is not an identity in cookie mode.
    assert_eq!(order(&agent, &url, Some("carol"), "A-1", true).0, 401);
    assert_eq!(s.winners()[0]["user"], "alice");
}

#[test]
fn a_journal_directory_serves_one_live_gate() {
    let s = GateSale::new("");
    let first = GateProc::start(&s, &["--quota", "5", "--gate-id", "first"]);
    let out = s
        .gate_command(s.journal())
        .args(["--gate-id", "second"])
        .output()
        .unwrap();
    let err = fails(out);
    assert!(
        err.contains("held by another live gate (gate first, pid ")
            && err.contains(&first.child.id().to_string()),
        "{err}"
    );
    // Once the holder is gone, however it went, the directory is free again.
    let mut first = first;
    first.kill9();
    let again = GateProc::start(&s, &["--quota", "5", "--gate-id", "second"]);
    assert_eq!(get(&format!("{}/healthz", again.admin)).0, 200);
}

#[test]
fn journal_survives_kill_9_mid_load_and_a_restart_never_resells() {
    kill_9_mid_load(&[]);
}

/// The same on a gate with one thread: the journal settles winners from its
/// own thread whatever runtime answers them.
#[test]
fn journal_survives_kill_9_on_one_thread() {
    kill_9_mid_load(&["--threads", "1"]);
}

fn kill_9_mid_load(extra: &[&str]) {
    let s = GateSale::new("");
    let args = [&["--quota", "300", "--gate-id", "g1"], extra].concat();
    let mut gate = GateProc::start(&s, &args);
    let url = gate.url(&s);
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let (url, acked, stop) = (url.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let agent = http();
                for i in 0..200 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let (status, body, _) =
                        order(&agent, &url, Some(&format!("k-{t}-{i}")), "A-1", true);
                    if status == 200 && body.contains("\"won\"") {
                        let v: Value = serde_json::from_str(&body).unwrap();
                        acked
                            .lock()
                            .unwrap()
                            .push(v["order"].as_str().unwrap().to_string());
                    }
                }
            })
        })
        .collect();
    wait_for("100 acknowledged winners", Duration::from_secs(30), || {
        acked.lock().unwrap().len() >= 100
    });
    gate.kill9();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let journal = s.winners();
    let in_journal: BTreeSet<String> = journal
        .iter()
        .map(|w| w["order"].as_str().unwrap().to_string())
        .collect();
    assert!(journal.len() <= 300);
    for o in &acked {
        assert!(
            in_journal.contains(o),
            "acknowledged order {o} is not in the journal"
        );
    }
    eprintln!(
        "kill -9 after {} acknowledged; journal holds {}",
        acked.len(),
        journal.len()
    );

    // Restart: the count comes back, and the rest of the quota, no more, is sold.
    let gate = GateProc::start(&s, &args);
    assert_eq!(
        gate.metric("flashsale_gate_admitted") as usize,
        journal.len()
    );
    let url = gate.url(&s);
    let agent = http();
    let mut extra = 0;
    for i in 0..400 {
        if order(&agent, &url, Some(&format!("after-{i}")), "A-1", true)
            .1
            .contains("\"won\"")
        {
            extra += 1;
        }
    }
    assert_eq!(
        journal.len() + extra,
        300,
        "restarted gate sold {extra} more"
    );
    assert_eq!(s.winners().len(), 300);
    let orders: BTreeSet<String> = s
        .winners()
        .iter()
        .map(|w| w["order"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        orders.len(),
        300,
        "order ids are never reused across restarts"
    );
    assert!(gate.terminate().success());
}

/// A slim image without CA certificates: a gate forwards to an order system
/// over plain HTTP as ever, and one told to forward over HTTPS refuses to
/// start, saying what to install (it could verify nobody).
#[test]
fn without_root_certificates_http_forwarding_works_and_https_is_refused_at_start() {
    let s = GateSale::new("");
    let empty = s.sale.path().join("no-roots.pem");
    std::fs::write(&empty, "").unwrap();
    // rustls-native-certs reads only these two when either is set.
    let no_roots = || {
        let mut c = Command::new(bin());
        c.env_remove("SSL_CERT_DIR").env("SSL_CERT_FILE", &empty);
        c
    };
    let out = no_roots()
        .args(crate::common::gate::ON_FREE_PORTS)
        .arg("--journal")
        .arg(s.sale.path().join("journal-https"))
        .args([
            "--key-file",
            "gate.key",
            "--forward",
            "https://127.0.0.1:9/orders",
        ])
        .current_dir(s.sale.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started: {err}");
    assert!(
        err.contains("cannot forward winners")
            && err.contains("https://127.0.0.1:9/orders")
            && err.contains("ca-certificates")
            && err.contains("SSL_CERT_FILE"),
        "{err}"
    );
    assert_eq!(err.matches("needs TLS").count(), 1, "said once: {err}");

    let rx = receiver(0);
    let gate = GateProc::start_with(
        s.sale.path(),
        &s.journal(),
        &["--quota", "2", "--forward", &format!("{}/orders", rx.base)],
        &mut no_roots(),
    );
    let (status, body, _) = order(&http(), &gate.url(&s), Some("slim"), "A-1", true);
    assert_eq!(status, 200, "{body}");
    wait_for("the winner forwarded", Duration::from_secs(10), || {
        !rx.got.lock().unwrap().is_empty()
    });
    let (_, forwarded, status) = rx.got.lock().unwrap()[0].clone();
    assert_eq!(status, 200);
    assert!(forwarded.contains("\"user\":\"slim\""), "{forwarded}");
}

#[test]
fn winners_are_forwarded_at_least_once_with_their_idempotency_key() {
    let s = GateSale::new("");
    let rx = receiver(3);
    let gate = GateProc::start(
        &s,
        &["--quota", "5", "--forward", &format!("{}/orders", rx.base)],
    );
    let url = gate.url(&s);
    let agent = http();
    for i in 0..8 {
        order(&agent, &url, Some(&format!("f{i}")), "A-1", true);
    }
    let orders: BTreeSet<String> = s
        .winners()
        .iter()
        .map(|w| w["order"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(orders.len(), 5);
    let all: BTreeSet<String> = orders.iter().map(|o| o.to_lowercase()).collect();
    wait_for("all 5 delivered", Duration::from_secs(30), || {
        let accepted: BTreeSet<String> = rx
            .got
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, _, st)| *st == 200)
            .map(|(k, _, _)| k.clone())
            .collect();
        accepted == all
    });
    // Retries carry the same key and the same body.
    let got = rx.got.lock().unwrap().clone();
    let mut bodies: HashMap<String, BTreeSet<String>> = HashMap::new();
    for (k, b, _) in &got {
        bodies.entry(k.clone()).or_default().insert(b.clone());
        let v: Value = serde_json::from_str(b).unwrap();
        assert_eq!(v["order"].as_str().unwrap().to_lowercase(), *k);
    }
    assert!(bodies.values().all(|b| b.len() == 1));
    assert!(got.len() >= 8, "the first 3 attempts failed: {}", got.len());
    // The gate hears the last answers a moment after the order system sent them.
    wait_for("the backlog at 0", Duration::from_secs(5), || {
        gate.metric("flashsale_gate_forward_backlog") == 0.0
    });

    // A restart resumes after what was delivered: nothing is sent again,
    // and the next winner is the next thing delivered.
    let before = rx.got.lock().unwrap().len();
    assert!(gate.terminate().success());
    let gate = GateProc::start(
        &s,
        &["--quota", "5", "--forward", &format!("{}/orders", rx.base)],
    );
    let resumed = gate.wait_for_log("forward_resumed");
    assert_eq!(
        (resumed["offset"].as_u64(), resumed["backlog"].as_u64()),
        (Some(5), Some(0)),
        "{resumed}"
    );
    let (_, body, _) = order(&agent, &gate.url(&s), Some("after-restart"), "B-2", true);
    let next: Value = serde_json::from_str(&body).unwrap();
    let next = next["order"].as_str().unwrap().to_lowercase();
    wait_for("the new winner forwarded", Duration::from_secs(10), || {
        rx.got.lock().unwrap().len() > before
    });
    let got = rx.got.lock().unwrap().clone();
    assert_eq!(got.len(), before + 1, "{:?}", &got[before..]);
    assert_eq!(got[before].0, next, "only the new winner was sent");
}

#[test]
fn the_gate_keeps_admitting_while_the_order_system_is_down() {
    let s = GateSale::new("");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gate = GateProc::start(
        &s,
        &[
            "--quota",
            "3",
            "--forward",
            &format!("http://{closed}/orders"),
        ],
    );
    let url = gate.url(&s);
    let agent = http();
    let won = (0..3)
        .filter(|i| {
            order(&agent, &url, Some(&format!("d{i}")), "A-1", true)
                .1
                .contains("won")
        })
        .count();
    assert_eq!(won, 3);
    let retry = gate.wait_for_log("forward_retry");
    assert!(
        retry["error"].as_str().unwrap().contains("refused"),
        "{retry}"
    );
    assert_eq!(gate.metric("flashsale_gate_forward_backlog"), 3.0);
}

#[test]
fn malformed_and_slow_requests_never_stop_it_answering() {
    let s = GateSale::new("");
    let gate = GateProc::start(&s, &["--quota", "10", "--header-timeout", "2s"]);
    let url = gate.url(&s);
    let path = url.trim_start_matches(&gate.base).to_string();
    // Slowloris: many connections that never finish their headers.
    let slow: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut c = TcpStream::connect(gate.base.trim_start_matches("http://")).unwrap();
            c.write_all(b"POST /o/test-sale/x HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            c
        })
        .collect();
    let started = Instant::now();
    assert!(
        order(&http(), &url, Some("normal"), "A-1", true)
            .1
            .contains("won"),
        "a normal order amid slow connections"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    let huge = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nX-User-Id: h\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    for (name, req) in [
        ("bad path", b"POST /o/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".to_vec()),
        ("traversal", b"POST /o/../../etc/passwd HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".to_vec()),
        ("garbage", b"\x00\x01\x02 nonsense \xff\xfe\r\n\r\n".to_vec()),
        ("invalid utf-8 path", b"POST /o/test-sale/\xff\xfe HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".to_vec()),
        ("invalid utf-8 identity", format!("POST {path} HTTP/1.1\r\nHost: x\r\nX-User-Id: \u{0}\r\nContent-Length: 5\r\n\r\nsku=A").into_bytes().into_iter().map(|b| if b == 0 { 0xff } else { b }).collect()),
        ("huge headers", huge.into_bytes()),
        ("lying length", format!("POST {path} HTTP/1.1\r\nHost: x\r\nX-User-Id: l\r\nContent-Length: 100\r\n\r\nsku=A-1").into_bytes()),
    ] {
        let status = raw_request(&gate.base, &req);
        assert!(!status.starts_with("HTTP/1.1 200") && !status.starts_with("HTTP/1.1 5"), "{name}: {status}");
    }
    assert_eq!(get(&format!("{}/healthz", gate.admin)).0, 200);
    assert!(order(&http(), &url, Some("normal-2"), "A-1", true)
        .1
        .contains("won"));
    // The slow connections are dropped after the header timeout: each read
    // ends when the gate closes it (or at the 5 s cap, counted as not closed).
    let cap = started + Duration::from_secs(5);
    let mut closed = 0;
    for mut c in slow {
        let left = cap.saturating_duration_since(Instant::now());
        c.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let mut b = [0u8; 64];
        if c.read(&mut b).is_ok() {
            closed += 1;
        }
    }
    assert!(
        closed >= 90,
        "only {closed} of 100 slow connections were closed"
    );
    assert_eq!(s.winners().len(), 2);
}

#[test]
fn sigterm_finishes_in_flight_orders_and_flushes_the_journal() {
    let s = GateSale::new("");
    let gate = GateProc::start(&s, &["--quota", "1000"]);
    let url = gate.url(&s);
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (url, acked) = (url.clone(), acked.clone());
            std::thread::spawn(move || {
                let agent = http();
                for i in 0..100 {
                    let (status, body, _) =
                        order(&agent, &url, Some(&format!("t-{t}-{i}")), "A-1", true);
                    if status == 200 && body.contains("won") {
                        let v: Value = serde_json::from_str(&body).unwrap();
                        acked
                            .lock()
                            .unwrap()
                            .push(v["order"].as_str().unwrap().to_string());
                    }
                    if status == 0 {
                        break;
                    }
                }
            })
        })
        .collect();
    // SIGTERM in the middle of the load.
    wait_for("orders under way", Duration::from_secs(10), || {
        acked.lock().unwrap().len() >= 16
    });
    let status = gate.terminate();
    for t in threads {
        t.join().unwrap();
    }
    assert!(status.success(), "{status}");
    let journal: BTreeSet<String> = s
        .winners()
        .iter()
        .map(|w| w["order"].as_str().unwrap().to_string())
        .collect();
    let acked = acked.lock().unwrap();
    assert!(!acked.is_empty());
    for o in acked.iter() {
        assert!(journal.contains(o), "{o} acknowledged but not journaled");
    }
}

#[test]
fn close_when_sold_out_closes_once_every_gate_is_sold_out() {
    let sale = Sale::with_times(&in_secs(-60), &in_secs(3600));
    std::fs::remove_file(sale.path().join("items/b-2.md")).unwrap();
    std::fs::remove_file(sale.path().join("items/c-3.md")).unwrap();
    let s = crate::common::moto::Setup::with(sale);
    ok(s.sale.run(&["keygen", "gate.key"]));
    s.publish_json(&[]);
    let env = s.moto.env();
    let run = |args: &[&str]| {
        Command::new(bin())
            .args(args)
            .current_dir(s.sale.path())
            .envs(env.clone())
            .output()
            .unwrap()
    };
    let opened: Value = serde_json::from_str(&ok(run(&[
        "open",
        "--now",
        "--json",
        "--key-file",
        "gate.key",
    ])))
    .unwrap();
    let token = opened["order_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let g1 = GateProc::start_in(s.sale.path(), &s.sale.path().join("j1"), &["--quota", "2"]);
    let g2 = GateProc::start_in(s.sale.path(), &s.sale.path().join("j2"), &["--quota", "2"]);
    let mut closer = Command::new(bin())
        .args([
            "close",
            "--json",
            "-v",
            "--when-sold-out",
            "--poll",
            "200ms",
            "--gates",
            &format!("{},{}", g1.admin, g2.admin),
        ])
        .current_dir(s.sale.path())
        .envs(env.clone())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // What the closer says about the gates, line by line (-v).
    let (said, heard) = std::sync::mpsc::channel::<String>();
    let stderr = closer.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = said.send(l);
        }
    });
    let agent = http();
    let buy = |gate: &GateProc, user: &str| {
        order(
            &agent,
            &format!("{}/o/test-sale/{token}", gate.base),
            Some(user),
            "A-1",
            true,
        )
        .1
    };
    assert!(buy(&g1, "a").contains("won") && buy(&g1, "b").contains("won"));
    assert!(buy(&g1, "c").contains("sold_out"));
    // One gate sold out is not the sale sold out: once the closer has seen
    // exactly that, the toggle is still open.
    let seen = format!("{}: 0 left; {}: 2 left", g1.admin, g2.admin);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let line = heard.recv_timeout(deadline.saturating_duration_since(Instant::now()));
        match line {
            Ok(l) if l.contains(&seen) => break,
            Ok(_) => {}
            Err(e) => panic!("the closer never saw one gate sold out ({e})"),
        }
    }
    let live = |s: &crate::common::moto::Setup| String::from_utf8(s.get("sale.js")).unwrap();
    assert!(
        live(&s).contains("\"state\":\"open\""),
        "closed while a gate still had units"
    );
    let sold_at = Instant::now();
    assert!(buy(&g2, "d").contains("won") && buy(&g2, "e").contains("won"));
    let out = closer.wait_with_output().unwrap();
    let report: Value = serde_json::from_str(&ok(out)).unwrap();
    let took = sold_at.elapsed();
    assert_eq!(report["state"], "ended");
    assert!(
        report["reason"].as_str().unwrap().contains("sold out"),
        "{report}"
    );
    assert!(live(&s).contains("\"state\":\"ended\""));
    assert_eq!(s.invalidations()[0], ["/sale.js"]);
    assert!(
        took < Duration::from_secs(5),
        "closed {took:?} after the last unit"
    );
    eprintln!("close --when-sold-out switched {took:?} after the last unit was sold");
}

/// One shutdown signal: SIGTERM ends every background task (the forwarder
/// retrying an order system that keeps failing, a fair start's draw waiting
/// for its window) and the next gate takes the journal directory at once.
#[test]
fn a_gate_stopped_by_sigterm_ends_every_task_and_frees_its_journal_at_once() {
    let s = GateSale::with_times(&in_secs(-1), &in_secs(3600), "fair_window = \"30s\"");
    let failing = receiver(usize::MAX);
    let forward = format!("{}/orders", failing.base);
    let gate = GateProc::start(&s, &["--quota", "2", "--forward", &forward]);
    // An entrant held for the draw, and a winner the order system refuses
    // to take (B has no entrants: after the window it sells at once).
    let url = gate.url(&s);
    let entrant = {
        let url = url.clone();
        std::thread::spawn(move || order(&http(), &url, Some("entrant"), "A-1", true).0)
    };
    wait_for("the entry", Duration::from_secs(10), || {
        gate.metric("flashsale_gate_draw_entries") >= 1.0
    });
    let err = gate.err.clone();
    let stopped = Instant::now();
    assert!(gate.terminate().success());
    let took = stopped.elapsed();
    assert_eq!(entrant.join().unwrap(), 503, "the held entrant is answered");
    let said: Vec<Value> = err
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let last = said
        .iter()
        .find(|v| v["message"] == "gate_stopped")
        .expect("gate_stopped logged");
    assert_eq!(
        last["tasks"], 0,
        "a background task outlived SIGTERM: {last}"
    );
    assert!(took < Duration::from_secs(5), "SIGTERM took {took:?}");
    // The next gate takes the directory at once.
    let next = GateProc::start(&s, &["--quota", "2", "--forward", &forward]);
    assert_eq!(get(&format!("{}/healthz", next.admin)).0, 200);
}

//! The toggle behind a real shared cache (Varnish standing in for CloudFront,
//! moto for the S3 origin): a crowd of pages polls through it across a real
//! `flashsale open`; the origin sees about one request a second; every page
//! sees the switch within the cache time plus one poll interval. Headless
//! Chromium behind the same cache enables its button in that bound and keeps
//! its countdown on the true clock when answers carry an `Age`; and the page
//! runtime backs off when the toggle answers 503.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::moto::{Setup, BUCKET};
use crate::common::varnish::Varnish;
use crate::common::webdriver::Browser;
use crate::common::*;

fn ms_of(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

/// When the sale starts (Unix ms), as its pages say.
fn start_ms(s: &Setup) -> i64 {
    let page = s.sale.read("public/items/a-1/index.html");
    let at = page.find("data-sale-start=\"").unwrap() + "data-sale-start=\"".len();
    page[at..at + 13].parse().unwrap()
}

/// A sale starting in `start_in` seconds, published to moto with a gate key.
fn published(start_in: i64) -> Setup {
    let s = Setup::with(Sale::with_times(&in_secs(start_in), &in_secs(3600)));
    ok(s.sale.run(&["keygen", "gate.key"]));
    s.publish_json(&[]);
    // The cache reads without signing: a bucket policy stands in for the
    // origin access control that lets CloudFront read the bucket.
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{BUCKET}/*"}}]}}"#
    );
    crate::common::moto::rt()
        .block_on(
            s.moto
                .s3()
                .put_bucket_policy()
                .bucket(BUCKET)
                .policy(policy)
                .send(),
        )
        .unwrap();
    s
}

/// `flashsale open` waiting for the start; its JSON report when done.
fn open_at_start(s: &Setup) -> std::process::Child {
    Command::new(bin())
        .args(["open", "--json", "--key-file", "gate.key"])
        .current_dir(s.sale.path())
        .envs(s.moto.env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_crowd_behind_the_cache_sees_the_switch_in_time_while_the_origin_sees_a_poll_a_second() {
    let s = published(12);
    let edge = Varnish::start(&s.moto.endpoint, &format!("/{BUCKET}"), None);
    let (before, hits_before) = (edge.origin_requests(), edge.hits());
    let viewers = 2000;
    // Every page polls a few times before the start and at least 6 s after.
    let until_start = (start_ms(&s) - now_ms()) / 1000;
    assert!(
        until_start >= 4,
        "set-up took too long: {until_start} s left"
    );
    let seconds = until_start + 6;
    let crowd = Command::new(bin())
        .args(["rehearse", "--json", "--url", &edge.url()])
        .args(["--viewers", &viewers.to_string()])
        .args(["--duration", &format!("{seconds}s")])
        .current_dir(s.sale.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let open: Value =
        serde_json::from_str(&ok(open_at_start(&s).wait_with_output().unwrap())).unwrap();
    let put_ms = ms_of(open["switched"].as_str().unwrap());
    let r: Value = serde_json::from_str(&ok(crowd.wait_with_output().unwrap())).unwrap();
    let origin = edge.origin_requests() - before;
    let hits = edge.hits() - hits_before;
    let last_ms = r["last_switch_unix_ms"]
        .as_i64()
        .unwrap_or_else(|| panic!("no page saw the switch: {r}"));
    eprintln!(
        "crowd: {} polls ({:.0}/s), {hits} cache hits, origin {origin} requests in {seconds} s, last page saw open {} ms after the PUT, p99 {} ms",
        r["polls"],
        r["polls_per_second"].as_f64().unwrap(),
        last_ms - put_ms,
        r["latency"]["p99_ms"]
    );
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(r["first_state"], "pending", "{r}");
    assert_eq!(r["pages_switched"], viewers, "every page saw open: {r}");
    // About 1,000 polls a second reached the cache ...
    assert!(r["polls_per_second"].as_f64().unwrap() > 800.0, "{r}");
    assert!(
        hits + origin >= r["polls"].as_u64().unwrap(),
        "{hits} hits: {r}"
    );
    assert!(r["max_age_s"].as_u64().unwrap() <= 1, "{r}");
    // ... and at most 2 a second (one per second, plus the refresh right after the PUT) the origin.
    assert!(
        origin <= 2 * seconds as u64,
        "{origin} origin requests in {seconds} s"
    );
    // Every page within the cache's 1 s plus one poll interval (at most 3 s).
    assert!(
        r["first_switch_unix_ms"].as_i64().unwrap() >= put_ms,
        "a page saw open before the PUT: {r}"
    );
    // (Plus this generator's own lag behind its schedule, and one fetch.)
    let lag = r["max_lag_ms"].as_f64().unwrap() as i64;
    assert!(
        last_ms - put_ms <= 4_000 + lag + 100,
        "the last page saw open {} ms after the PUT (generator lag {lag} ms)",
        last_ms - put_ms
    );
}

#[test]
fn the_page_behind_the_cache_switches_in_time_and_counts_down_on_the_true_clock() {
    let s = published(16);
    let start_ms = start_ms(&s);
    // A cache that honours s-maxage=1, and one that keeps everything 8 s
    // (as CloudFront would with a long minimum TTL): its answers are old, and
    // say so in `Age`.
    let edge = Varnish::start(&s.moto.endpoint, &format!("/{BUCKET}"), None);
    let old = Varnish::start(&s.moto.endpoint, &format!("/{BUCKET}"), Some(8));
    let browser = Browser::start();

    // The clock: prime the long-keeping cache, wait, then load the page through it.
    let (status, _, _) = get(&format!("{}sale.js?v=prime", old.url()));
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_secs(5));
    let (_, headers, _) = get(&format!("{}sale.js?v=check", old.url()));
    let age: u64 = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("age"))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap();
    assert!(age >= 4, "the cached copy is {age} s old");
    browser.goto(&format!("{}items/a-1/", old.url()));
    browser.wait_until(
        "return document.body.dataset.state === 'pending' && window.flashsaleRuntime && document.querySelector('[data-countdown]').textContent.indexOf('Starts in') === 0",
        Duration::from_secs(10),
    );
    // Page and test share this machine's clock: the learned offset must be
    // about 0 even though Date is `age` seconds old.
    let skew = browser
        .eval("return window.flashsaleRuntime.skew()")
        .as_f64()
        .unwrap();
    assert!(skew.abs() <= 1000.0, "skew {skew} ms with Age {age}");
    let text = browser.eval("return document.querySelector('[data-countdown]').textContent");
    let shown: i64 = text
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let truth = (start_ms - now_ms()) / 1000;
    assert!(
        (shown - truth).abs() <= 1,
        "countdown shows {shown} s, truly {truth} s left (Age {age})"
    );

    // The switch, through the honest cache.
    browser.goto(&format!("{}items/a-1/", edge.url()));
    browser.wait_until(
        "return document.body.dataset.state === 'pending'",
        Duration::from_secs(10),
    );
    browser.eval("window.__sameLoad = true; return true");
    let open: Value =
        serde_json::from_str(&ok(open_at_start(&s).wait_with_output().unwrap())).unwrap();
    let put_ms = ms_of(open["switched"].as_str().unwrap());
    browser.wait_until(
        "return document.querySelector('[data-buy]').disabled === false",
        Duration::from_secs(10),
    );
    let enabled_ms = now_ms();
    assert_eq!(browser.eval("return window.__sameLoad === true"), true);
    assert_eq!(browser.eval("return document.body.dataset.state"), "open");
    eprintln!(
        "button enabled {} ms after the PUT (Age seen before: {age} s, skew {skew} ms)",
        enabled_ms - put_ms
    );
    // 1 s in the cache + one poll (at most 3 s) + this test's 100 ms polling of the page.
    assert!(
        enabled_ms - put_ms <= 4_100,
        "button enabled {} ms after the PUT",
        enabled_ms - put_ms
    );
}

/// Serves a built sale from `public/`, answering `/sale.js` with the status
/// in `status` (the toggle itself when 200), and notes when each poll came.
struct Origin {
    port: u16,
    status: Arc<AtomicU16>,
    polls: Arc<Mutex<Vec<Instant>>>,
    /// What `POST /o/...` (the gate) answers, and how many came.
    gate: Arc<AtomicU16>,
    orders: Arc<Mutex<usize>>,
}

impl Origin {
    fn start(public: PathBuf) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let status = Arc::new(AtomicU16::new(200));
        let polls = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(AtomicU16::new(503));
        let orders = Arc::new(Mutex::new(0));
        let shared = (status.clone(), polls.clone(), gate.clone(), orders.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (public, (st, pl, g, o)) = (public.clone(), shared.clone());
                std::thread::spawn(move || serve_one(stream, &public, &st, &pl, &g, &o));
            }
        });
        Origin {
            port,
            status,
            polls,
            gate,
            orders,
        }
    }

    fn polls_between(&self, from: Instant, to: Instant) -> usize {
        let p = self.polls.lock().unwrap();
        p.iter().filter(|t| **t >= from && **t < to).count()
    }
}

fn serve_one(
    mut stream: std::net::TcpStream,
    public: &Path,
    status: &AtomicU16,
    polls: &Mutex<Vec<Instant>>,
    gate: &AtomicU16,
    orders: &Mutex<usize>,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        let path = path.split('?').next().unwrap().to_string();
        let (code, kind, bytes) = if line.starts_with("POST /o/") {
            *orders.lock().unwrap() += 1;
            match gate.load(Ordering::SeqCst) {
                200 => (
                    200,
                    "application/json",
                    br#"{"status":"won","order":"T-1"}"#.to_vec(),
                ),
                code => (code, "application/json", br#"{"error":"busy"}"#.to_vec()),
            }
        } else if path == "/sale.js" {
            polls.lock().unwrap().push(Instant::now());
            match status.load(Ordering::SeqCst) {
                200 => (
                    200,
                    "text/javascript",
                    std::fs::read(public.join("sale.js")).unwrap(),
                ),
                code => (code, "text/plain", b"slow down".to_vec()),
            }
        } else {
            let rel = path.trim_start_matches('/');
            let file = if rel.is_empty() || rel.ends_with('/') {
                public.join(rel).join("index.html")
            } else {
                public.join(rel)
            };
            let kind = match file.extension().and_then(|e| e.to_str()) {
                Some("html") => "text/html; charset=utf-8",
                Some("js") => "text/javascript",
                Some("css") => "text/css",
                Some("svg") => "image/svg+xml",
                _ => "application/octet-stream",
            };
            match std::fs::read(&file) {
                Ok(b) => (200, kind, b),
                Err(_) => (404, "text/plain", b"not found".to_vec()),
            }
        };
        let head = format!(
            "HTTP/1.1 {code} X\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\r\n",
            bytes.len()
        );
        if stream.write_all(head.as_bytes()).is_err() || stream.write_all(&bytes).is_err() {
            return;
        }
    }
}

#[test]
fn the_page_backs_off_while_the_toggle_answers_503_and_recovers_on_200() {
    // The start 3 s away: the runtime polls every 1–3 s from now on.
    let sale = Sale::with_times(&in_secs(3), &in_secs(3600));
    ok(sale.run(&["build", "-q"]));
    let origin = Origin::start(sale.path().join("public"));
    let browser = Browser::start();
    browser.goto(&format!("http://127.0.0.1:{}/items/a-1/", origin.port));
    browser.wait_until(
        "return document.body.dataset.state === 'pending'",
        Duration::from_secs(10),
    );
    // Healthy: 1–3 s apart once the start is near.
    std::thread::sleep(Duration::from_secs(4));
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let healthy = origin.polls_between(t0, Instant::now());

    origin.status.store(503, Ordering::SeqCst);
    let throttled_from = Instant::now();
    std::thread::sleep(Duration::from_secs(40));
    let throttled = origin.polls_between(throttled_from, Instant::now());

    // Healed, and the start moved to now (a new version), so that the page
    // is again in the minute after the start, when it polls every 1–3 s.
    let toggle =
        flashsale::sale::Toggle::switched(flashsale::sale::State::Pending { start: now_ms() });
    let public = sale.path().join("public");
    std::fs::write(public.join(".sale.js.tmp"), toggle.to_script()).unwrap();
    std::fs::rename(public.join(".sale.js.tmp"), public.join("sale.js")).unwrap();
    origin.status.store(200, Ordering::SeqCst);
    let healed_at = Instant::now();
    // The next poll comes at the latest after the cap (30 s) and succeeds; from
    // then on the page polls every 1–3 s again.
    let first_ok = wait_for_some("a poll after recovery", Duration::from_secs(35), || {
        let p = origin.polls.lock().unwrap().clone();
        p.iter().find(|t| **t >= healed_at).copied()
    });
    std::thread::sleep(Duration::from_secs(10));
    let recovered = origin.polls_between(
        first_ok + Duration::from_millis(1),
        first_ok + Duration::from_secs(10),
    );
    eprintln!(
        "toggle polls: healthy {healthy} in 10 s ({}/min), under 503 {throttled} in 40 s ({}/min), after recovery {recovered} in 10 s",
        healthy * 6,
        throttled * 3 / 2
    );
    assert!(healthy >= 3, "healthy polling: {healthy} in 10 s");
    // Without backoff: 1–3 s apart, 13 or more in 40 s; with it (1, 2, 4, 8,
    // 16, 30 s caps, full jitter) about 6.
    assert!(
        throttled <= 11,
        "{throttled} polls in 40 s of 503: no backoff"
    );
    assert!(throttled >= 2, "the page stopped polling: {throttled}");
    assert!(
        recovered >= 3,
        "after a good answer the page polls every 1-3 s again: {recovered} in 10 s"
    );
}

#[test]
fn a_busy_gate_keeps_the_button_off_for_a_growing_wait_then_takes_the_order() {
    let sale = Sale::with_times(&in_secs(-5), &in_secs(3600));
    ok(sale.run(&["build", "-q"]));
    let public = sale.path().join("public");
    let origin = Origin::start(public.clone());
    let order = format!(
        "http://127.0.0.1:{}/o/test-sale/00112233445566778899aabbccddeeff.0123",
        origin.port
    );
    let toggle = flashsale::sale::Toggle::switched(flashsale::sale::State::Open {
        order,
        end: now_ms() + 3_600_000,
        draw: None,
    });
    std::fs::write(public.join("sale.js"), toggle.to_script()).unwrap();
    let browser = Browser::start();
    browser.goto(&format!("http://127.0.0.1:{}/items/a-1/", origin.port));
    let enabled = "return document.querySelector('[data-buy]').disabled === false";
    browser.wait_until(enabled, Duration::from_secs(10));

    // 503: the button goes off, the page says when to try again, and comes
    // back on by itself; the second wait may be longer (it doubles, jittered).
    for round in 1..=2u32 {
        browser.click("[data-buy]");
        browser.wait_until(
            "return document.querySelector('[data-result]').textContent.indexOf('The gate is busy. Try again in') === 0",
            Duration::from_secs(5),
        );
        assert_eq!(
            browser.eval("return document.querySelector('[data-buy]').disabled"),
            true,
            "round {round}: the button stays off while the gate is busy"
        );
        // At most 1 s + 2^round s (full jitter), plus this test's polling.
        let waited = browser.wait_until(enabled, Duration::from_secs(1 + (1 << round) + 2));
        eprintln!("round {round}: the button came back after {waited:?}");
        assert!(
            waited >= Duration::from_millis(600),
            "no wait at all: {waited:?}"
        );
    }
    assert_eq!(*origin.orders.lock().unwrap(), 2, "one request per click");

    // The gate recovers: the next click wins.
    origin.gate.store(200, Ordering::SeqCst);
    browser.click("[data-buy]");
    browser.wait_until(
        "return document.querySelector('[data-result]').textContent.indexOf('You got it! Your order number is T-1') === 0",
        Duration::from_secs(5),
    );
    assert_eq!(*origin.orders.lock().unwrap(), 3);
}

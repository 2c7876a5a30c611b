//! The whole request handler in-process, request in, answer out (axum's
//! `oneshot` style): every refusal of the ladder with its status, and the
//! answers of a winner, a repeat and a loser.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};

use super::{Gate, Options};
use crate::config::Config;
use crate::sale::{order_url, GateKey};

const PEER: &str = "192.0.2.1:40000";

struct Fixture {
    gate: Arc<Gate>,
    key: GateKey,
    journal: tempfile::TempDir,
}

/// A gate for sale `demo` (items A, quota 2, and B) whose window is
/// `start_in`..`end_in` seconds from now, with `extra` in `[gate]`.
async fn gate(start_in: i64, end_in: i64, extra: &str) -> Fixture {
    let journal = tempfile::tempdir().unwrap();
    let key = GateKey::generate();
    let gate = start(&journal, &key, start_in, end_in, extra, None, None).await;
    Fixture { gate, key, journal }
}

/// A gate on `journal`; `quota` over the configuration's 2 per item.
async fn start(
    journal: &tempfile::TempDir,
    key: &GateKey,
    start_in: i64,
    end_in: i64,
    extra: &str,
    cookie_key: Option<&[u8]>,
    quota: Option<u32>,
) -> Arc<Gate> {
    let t = |s: i64| (chrono::Utc::now() + chrono::Duration::seconds(s)).to_rfc3339();
    let text = format!(
        "name = \"demo\"\nbase_url = \"https://sale.example.com/\"\nstart = \"{}\"\nend = \"{}\"\ncurrency = \"EUR\"\n[gate]\nurl = \"https://gate.example.com\"\nquota = 2\n{extra}\n[[items]]\nsku = \"A\"\ntitle = \"A\"\nprice = 1\nstock = 2\n[[items]]\nsku = \"B\"\ntitle = \"B\"\nprice = 1\nstock = 2\n",
        t(start_in),
        t(end_in)
    );
    let config = Config::parse(Path::new("site.toml"), text).unwrap();
    let stock = [("A".to_string(), 2), ("B".to_string(), 2)];
    Gate::start(
        &config,
        &stock,
        Options {
            quota,
            journal_dir: journal.path().to_path_buf(),
            forward: None,
            gate_id: Some("g1".into()),
            key: key.clone(),
            cookie_key: cookie_key.map(<[u8]>::to_vec),
            body_timeout: std::time::Duration::from_millis(500),
            resend_dead_letters: false,
            origin: None,
        },
    )
    .await
    .unwrap()
}

impl Fixture {
    /// Stops this gate (SIGTERM's drain) and starts another on the same
    /// journal and key, the window `-60..3600` s, `extra` in `[gate]`.
    async fn restart(self, extra: &str, quota: Option<u32>) -> Fixture {
        self.gate.drain();
        let Fixture { gate, key, journal } = self;
        drop(gate);
        let gate = start(&journal, &key, -60, 3600, extra, None, quota).await;
        Fixture { gate, key, journal }
    }

    /// The order path of a freshly minted token.
    fn path(&self) -> String {
        let url = order_url("https://gate.example.com", "demo", &self.key.mint("demo"));
        url.trim_start_matches("https://gate.example.com")
            .to_string()
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> (StatusCode, String) {
        let resp = self.gate.handle(req, PEER.parse().unwrap()).await;
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn order(&self, path: &str, user: Option<&str>, body: &str) -> (StatusCode, String) {
        let mut req = Request::post(path).header("accept", "application/json");
        if let Some(u) = user {
            req = req.header("x-user-id", u);
        }
        self.send(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
            .await
    }
}

#[tokio::test]
async fn every_refusal_has_its_status() {
    let f = gate(-60, 3600, "rate_limit = 2").await;
    let path = f.path();
    let token = path.rsplit('/').next().unwrap().to_string();
    let mut flipped = path.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).unwrap();

    let ladder = [
        (
            format!("/o/other/{token}"),
            Some("u"),
            "sku=A",
            StatusCode::NOT_FOUND,
        ),
        (
            "/o/demo/nonsense".to_string(),
            Some("u"),
            "sku=A",
            StatusCode::NOT_FOUND,
        ),
        (flipped, Some("u"), "sku=A", StatusCode::NOT_FOUND),
        ("/o/".to_string(), Some("u"), "sku=A", StatusCode::NOT_FOUND),
        (path.clone(), None, "sku=A", StatusCode::UNAUTHORIZED),
        (
            path.clone(),
            Some("u1"),
            &"x".repeat(5000),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            path.clone(),
            Some("u2"),
            "quantity=1",
            StatusCode::BAD_REQUEST,
        ),
        (path.clone(), Some("u3"), "sku=NOPE", StatusCode::NOT_FOUND),
    ];
    for (p, user, body, want) in &ladder {
        let (status, text) = f.order(p, *user, body).await;
        assert_eq!(
            status,
            *want,
            "{p} {user:?} {}: {text}",
            &body[..body.len().min(20)]
        );
    }
    // The declared length alone is enough for 413, before the body is read.
    let req = Request::post(&path)
        .header("x-user-id", "u4")
        .header("content-length", "5000")
        .body(Full::new(Bytes::from_static(b"sku=A")))
        .unwrap();
    assert_eq!(f.send(req).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    // 2 requests/s with a burst of 4, per client address.
    let mut statuses = Vec::new();
    for i in 0..10 {
        statuses.push(f.order(&path, Some(&format!("r{i}")), "sku=NOPE").await.0);
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // Other methods on the order path.
    let get = Request::get(&path).body(Full::default()).unwrap();
    assert_eq!(f.send(get).await.0, StatusCode::METHOD_NOT_ALLOWED);
    let preflight = Request::options(&path).body(Full::default()).unwrap();
    let resp = f.gate.handle(preflight, PEER.parse().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://sale.example.com"
    );
    // Every refusal was counted by its outcome.
    let metrics = f.gate.metrics();
    for (outcome, n) in [("no_identity", 1), ("too_large", 2), ("bad_request", 1)] {
        let line = format!("flashsale_gate_requests_total{{sale=\"demo\",gate=\"g1\",outcome=\"{outcome}\"}} {n}\n");
        assert!(metrics.contains(&line), "{line}{metrics}");
    }
}

#[tokio::test]
async fn a_token_already_verified_does_not_let_forgeries_or_other_sales_through() {
    let f = gate(-60, 3600, "").await;
    let path = f.path();
    let (status, text) = f.order(&path, Some("u1"), "sku=A").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    // The gate now remembers this token; one hex digit off is still a forgery.
    let mut flipped = path.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).unwrap();
    let token = path.rsplit('/').next().unwrap();
    let other_key = GateKey::generate().mint("demo");
    for p in [
        flipped,
        format!("/o/other/{token}"),
        format!("/o/demo/{other_key}"),
        format!("/o/demo/{token}x"),
    ] {
        assert_eq!(
            f.order(&p, Some("u2"), "sku=A").await.0,
            StatusCode::NOT_FOUND,
            "{p}"
        );
    }
    // Another token minted with the key (a re-open) still works, and so does the first.
    let (status, text) = f.order(&f.path(), Some("u3"), "sku=B").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (status, text) = f.order(&path, Some("u4"), "sku=B").await;
    assert_eq!(status, StatusCode::OK, "{text}");
}

#[tokio::test]
async fn outside_the_window_is_403_by_the_gates_clock() {
    let early = gate(600, 3600, "").await;
    assert_eq!(
        early.order(&early.path(), Some("u"), "sku=A").await.0,
        StatusCode::FORBIDDEN
    );
    let late = gate(-3600, -600, "").await;
    assert_eq!(
        late.order(&late.path(), Some("u"), "sku=A").await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn winners_repeats_and_losers() {
    let f = gate(-60, 3600, "").await;
    let path = f.path();
    let (status, body) = f.order(&path, Some("alice"), "sku=A").await;
    assert_eq!(
        (status, body.as_str()),
        (
            StatusCode::OK,
            "{\"status\":\"won\",\"order\":\"g1-000001\"}"
        )
    );
    // The item by query string, the same user again: the same answer.
    let again = f.order(&format!("{path}?sku=A"), Some("alice"), "").await;
    assert_eq!(again.1, body);
    assert_eq!(f.order(&path, Some("bob"), "sku=A").await.0, StatusCode::OK);
    assert_eq!(
        f.order(&path, Some("carol"), "sku=A").await.1,
        "{\"status\":\"sold_out\"}"
    );
    // Without JSON a loser is sent to the ended page.
    let form = Request::post(&path)
        .header("x-user-id", "dave")
        .body(Full::new(Bytes::from_static(b"sku=A")))
        .unwrap();
    let resp = f.gate.handle(form, PEER.parse().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        resp.headers()["location"],
        "https://sale.example.com/ended.html"
    );
    let counts = f.gate.counts();
    assert_eq!((counts[0].admitted, counts[0].remaining()), (2, 0));
    assert_eq!(counts[1].remaining(), 2, "B untouched");
}

/// An order with extra headers.
async fn order_with(f: &Fixture, headers: &[(&str, &str)], body: &str) -> (StatusCode, String) {
    let mut req = Request::post(f.path()).header("accept", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    f.send(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
        .await
}

// Regression tests of the hardening issue, one per finding.

#[tokio::test]
async fn a_forged_leftmost_forwarded_for_does_not_get_around_the_rate_limit() {
    let f = gate(
        -60,
        3600,
        "rate_limit = 5\nclient_ip_header = \"X-Forwarded-For\"",
    )
    .await;
    let mut statuses = Vec::new();
    for i in 0..30 {
        // The client writes whatever it likes first; the proxy appends the real address.
        let xff = format!("10.{}.{}.1, 203.0.113.7", i / 200, i % 200);
        let user = format!("u{i}");
        let r = order_with(
            &f,
            &[("x-user-id", &user), ("x-forwarded-for", &xff)],
            "sku=NOPE",
        )
        .await;
        statuses.push(r.0);
    }
    let allowed = statuses
        .iter()
        .filter(|s| **s != StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(
        allowed, 10,
        "the burst of one client, then 429: {statuses:?}"
    );
}

#[tokio::test]
async fn two_identity_headers_are_refused() {
    let f = gate(-60, 3600, "").await;
    let r = order_with(
        &f,
        &[("x-user-id", "mallory"), ("x-user-id", "alice")],
        "sku=A",
    )
    .await;
    assert_eq!(r.0, StatusCode::BAD_REQUEST, "{}", r.1);
    assert!(f.gate.counts()[0].admitted == 0);
}

#[tokio::test]
async fn signed_cookies_are_read_the_rfc_6265_way() {
    let journal = tempfile::tempdir().unwrap();
    let key = GateKey::generate();
    let shop = b"a-cookie-key-of-32-bytes-exactly";
    let gate = start(
        &journal,
        &key,
        -60,
        3600,
        "identity_cookie = \"shop_user\"",
        Some(shop),
        None,
    )
    .await;
    let f = Fixture { gate, key, journal };
    let signed = super::sign_cookie(shop, "alice");
    // A value-less cookie before it, and the value in quotes.
    for cookie in [
        format!("foo; shop_user={signed}"),
        format!("shop_user=\"{signed}\""),
    ] {
        let r = order_with(&f, &[("cookie", &cookie)], "sku=A").await;
        assert_eq!(r.0, StatusCode::OK, "{cookie}: {}", r.1);
        assert!(r.1.contains("won"), "{}", r.1);
    }
}

#[tokio::test]
async fn orders_from_another_sites_pages_are_refused() {
    let f = gate(-60, 3600, "").await;
    let evil = order_with(
        &f,
        &[("x-user-id", "alice"), ("origin", "https://evil.example")],
        "sku=A",
    )
    .await;
    assert_eq!(evil.0, StatusCode::FORBIDDEN, "{}", evil.1);
    let null = order_with(&f, &[("x-user-id", "alice"), ("origin", "null")], "sku=A").await;
    assert_eq!(null.0, StatusCode::FORBIDDEN);
    let ours = order_with(
        &f,
        &[
            ("x-user-id", "alice"),
            ("origin", "https://sale.example.com"),
        ],
        "sku=A",
    )
    .await;
    assert_eq!(ours.0, StatusCode::OK, "{}", ours.1);
    // No Origin at all (not a browser): allowed.
    assert_eq!(
        order_with(&f, &[("x-user-id", "bob")], "sku=A").await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_winner_asking_again_gets_their_order_after_the_end_and_when_the_gate_is_down() {
    let f = gate(-60, 2, "tolerance = \"0s\"").await;
    let won = order_with(&f, &[("x-user-id", "alice")], "sku=A").await;
    assert!(won.1.contains("won"), "{}", won.1);
    // The journal fails: new customers get 503, the winner their order.
    f.gate.journal.break_down();
    assert_eq!(
        order_with(&f, &[("x-user-id", "bob")], "sku=A").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        order_with(&f, &[("x-user-id", "alice")], "sku=A").await,
        won
    );
    // The sale ends: new customers get 403, the winner their order.
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    assert_eq!(
        order_with(&f, &[("x-user-id", "carol")], "sku=A").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        order_with(&f, &[("x-user-id", "alice")], "sku=A").await,
        won
    );
}

#[tokio::test]
async fn a_restart_with_a_lower_quota_keeps_every_winner() {
    let journal = tempfile::tempdir().unwrap();
    let key = GateKey::generate();
    let first = start(&journal, &key, -60, 3600, "", None, Some(3)).await;
    let f = Fixture {
        gate: first,
        key: key.clone(),
        journal,
    };
    let mut orders = Vec::new();
    for u in ["a", "b", "c"] {
        orders.push(order_with(&f, &[("x-user-id", u)], "sku=A").await);
    }
    // Back with a quota of 2 (more gates share the stock now).
    let f = f.restart("", Some(2)).await;
    for (u, before) in ["a", "b", "c"].iter().zip(&orders) {
        assert_eq!(
            &order_with(&f, &[("x-user-id", u)], "sku=A").await,
            before,
            "{u}"
        );
    }
    assert!(order_with(&f, &[("x-user-id", "d")], "sku=A")
        .await
        .1
        .contains("sold_out"));
}

#[tokio::test]
async fn a_body_that_never_arrives_is_answered_408() {
    let f = gate(-60, 3600, "").await;
    // Headers promise 10 bytes; 5 come, then nothing.
    use futures_util::StreamExt;
    let first =
        Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from_static(b"sku=A")));
    let body = http_body_util::StreamBody::new(
        futures_util::stream::iter([first]).chain(futures_util::stream::pending()),
    );
    let req = Request::post(f.path())
        .header("x-user-id", "slow")
        .header("content-length", "10")
        .body(body)
        .unwrap();
    let started = std::time::Instant::now();
    let resp = f.gate.handle(req, PEER.parse().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(resp.headers()["connection"], "close");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

/// The fair start's records in a gate's journal directory.
fn entries(dir: &Path) -> Vec<crate::sale::draw::Line> {
    super::journal::replay_file(&dir.join(super::draw::FILE_NAME)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fair_start_holds_entrants_draws_the_quota_and_answers_each() {
    // The sale started a second ago; entries until a second from now.
    let f = Arc::new(gate(-1, 3600, "fair_window = \"2s\"").await);
    let path = f.path();
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let (f, path) = (f.clone(), path.clone());
            tokio::spawn(async move {
                let user = format!("entrant-{i}");
                // Everyone asks twice: one entry each all the same.
                let (a, b) = tokio::join!(
                    f.order(&path, Some(&user), "sku=A"),
                    f.order(&path, Some(&user), "sku=A")
                );
                assert_eq!(a, b, "{user}: both requests get the same answer");
                (user, a)
            })
        })
        .collect();
    // An unknown item is refused at once, not entered.
    assert_eq!(
        f.order(&path, Some("x"), "sku=Z").await.0,
        StatusCode::NOT_FOUND
    );
    let mut won = Vec::new();
    for t in tasks {
        let (user, (status, body)) = t.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        if body.contains("\"won\"") {
            won.push(user);
        } else {
            assert_eq!(body, "{\"status\":\"not_drawn\"}");
        }
    }
    let waited = started.elapsed();
    assert!(
        waited > std::time::Duration::from_millis(500),
        "answers came after the window: {waited:?}"
    );
    assert_eq!(won.len(), 2, "the quota, drawn");
    // After the draw: first come, first served on what is left (nothing of A).
    assert!(f
        .order(&path, Some("late"), "sku=A")
        .await
        .1
        .contains("sold_out"));
    // B had no entrants: its units go to whoever comes first.
    assert!(f
        .order(&path, Some("late"), "sku=B")
        .await
        .1
        .contains("won"));
    // The record: 12 entries, the draw's units, the seed; it verifies.
    let lines = entries(f.journal.path());
    use crate::sale::draw::{verify, Line, Seed};
    let seed = lines
        .iter()
        .find_map(|l| match l {
            Line::Seed { seed } => Seed::from_hex(seed),
            _ => None,
        })
        .expect("the seed is revealed after the draw");
    let winners = super::journal::replay(f.journal.path()).unwrap();
    let checks = verify(
        &seed,
        &lines,
        winners.iter().map(|w| (w.sku.as_str(), w.user.as_str())),
    );
    let a = checks.iter().find(|c| c.sku == "A").unwrap();
    assert!(a.holds(), "{a:?}");
    assert_eq!((a.entrants, a.units), (12, 2));
    won.sort();
    assert_eq!(a.published, won);
    let metrics = f.gate.metrics();
    assert!(metrics.contains("outcome=\"not_drawn\"} 20"), "{metrics}");
    assert!(
        metrics.contains("flashsale_gate_draw_entries{"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_of_a_stopped_gate_are_drawn_on_restart_once() {
    let f = gate(-1, 3600, "fair_window = \"30s\"").await;
    let path = f.path();
    // Five entrants; the gate stops during the window (their requests get 503).
    let f = Arc::new(f);
    let tasks: Vec<_> = (0..5)
        .map(|i| {
            let (f, path) = (f.clone(), path.clone());
            tokio::spawn(async move { f.order(&path, Some(&format!("e{i}")), "sku=A").await })
        })
        .collect();
    while f.gate.draw.as_ref().unwrap().count() < 5 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    f.gate.drain();
    for t in tasks {
        assert_eq!(t.await.unwrap().0, StatusCode::SERVICE_UNAVAILABLE);
    }
    let Ok(f) = Arc::try_unwrap(f) else {
        panic!("the fixture is shared still")
    };
    // Back after the window (a window already over): the draw is made at once.
    let f = f.restart("fair_window = \"2s\"", None).await;
    let mut answers = Vec::new();
    for i in 0..5 {
        answers.push(f.order(&f.path(), Some(&format!("e{i}")), "sku=A").await.1);
    }
    assert_eq!(answers.iter().filter(|a| a.contains("won")).count(), 2);
    assert_eq!(
        answers.iter().filter(|a| a.contains("not_drawn")).count(),
        3
    );
    let first = super::journal::replay(f.journal.path()).unwrap();
    // Once more: nothing new is drawn.
    let f = f.restart("fair_window = \"2s\"", None).await;
    assert!(f.order(&f.path(), Some("e0"), "sku=A").await.0.is_success());
    assert_eq!(super::journal::replay(f.journal.path()).unwrap(), first);
    let drawn = entries(f.journal.path())
        .iter()
        .filter(|l| matches!(l, crate::sale::draw::Line::Drawn { drawn, .. } if drawn == "A"))
        .count();
    assert_eq!(drawn, 1, "the draw's units are recorded once");
}

//! Every refusal of the ladder with its status; winners, repeats, losers.

use super::*;

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
    refusals_off_the_ladder(&f, &path).await;
    // Every refusal was counted by its outcome.
    let metrics = f.gate.metrics();
    for (outcome, n) in [("no_identity", 1), ("too_large", 2), ("bad_request", 1)] {
        let line = format!("flashsale_gate_requests_total{{sale=\"demo\",gate=\"g1\",outcome=\"{outcome}\"}} {n}\n");
        assert!(metrics.contains(&line), "{line}{metrics}");
    }
}

/// The refusals that are not one order each: a declared length, the rate
/// limit, other methods.
async fn refusals_off_the_ladder(f: &Fixture, path: &str) {
    // The declared length alone is enough for 413, before the body is read.
    let req = Request::post(path)
        .header("x-user-id", "u4")
        .header("content-length", "5000")
        .body(Full::new(Bytes::from_static(b"sku=A")))
        .unwrap();
    assert_eq!(f.send(req).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    // 2 requests/s with a burst of 4, per client address.
    let mut statuses = Vec::new();
    for i in 0..10 {
        statuses.push(f.order(path, Some(&format!("r{i}")), "sku=NOPE").await.0);
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // Other methods on the order path.
    let get = Request::get(path).body(Full::default()).unwrap();
    assert_eq!(f.send(get).await.0, StatusCode::METHOD_NOT_ALLOWED);
    let preflight = Request::options(path).body(Full::default()).unwrap();
    let resp = f.gate.handle(preflight, PEER.parse().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://sale.example.com"
    );
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
    let start = f.gate.window.start_ms;
    let other_key = GateKey::generate().mint("demo", start);
    // This gate's key, for another start of the sale (a preview's, an old schedule's).
    let other_start = f.key.mint("demo", start + 60_000);
    for p in [
        flipped,
        format!("/o/other/{token}"),
        format!("/o/demo/{other_key}"),
        format!("/o/demo/{other_start}"),
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
    let shop = b"a-cookie-key-of-32-bytes-exactly";
    let f = Fixture::new(Setup {
        extra: "identity_cookie = \"shop_user\"",
        cookie_key: Some(shop),
        ..Setup::default()
    })
    .await;
    let signed = crate::gate::sign_cookie(shop, "alice");
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
    f.gate.recorder.break_down();
    assert_eq!(
        order_with(&f, &[("x-user-id", "bob")], "sku=A").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        order_with(&f, &[("x-user-id", "alice")], "sku=A").await,
        won
    );
    // The sale ends: new customers get 403, the winner their order.
    f.advance(2_200);
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
    let f = Fixture::new(Setup {
        quota: Some(3),
        ..Setup::default()
    })
    .await;
    let mut orders = Vec::new();
    for u in ["a", "b", "c"] {
        orders.push(order_with(&f, &[("x-user-id", u)], "sku=A").await);
    }
    // Back with a quota of 2 (more gates share the stock now).
    let f = f
        .restart(Setup {
            quota: Some(2),
            ..Setup::default()
        })
        .await;
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

//! A fair start: entrants held, the draw at the window's end, restarts.

use super::*;

/// The fair start's records in a gate's journal directory.
fn entries(dir: &Path) -> Vec<crate::sale::draw::Line> {
    crate::journal::replay_file(&dir.join(crate::journal::ENTRIES)).unwrap()
}

/// The draw.json a gate writes while its entrants are answered.
fn published(journal: &Path) -> crate::sale::draw::Published {
    let path = journal.join(crate::sale::draw::PUBLISHED);
    for _ in 0..100 {
        if let Ok(bytes) = std::fs::read(&path) {
            return serde_json::from_slice(&bytes).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{}: not written within 5 s of the draw", path.display());
}

/// The journals' draw of item A: it verifies, with this many entrants and
/// units, and so does the draw.json the gate wrote; its winners.
fn drawn_of_a(journal: &Path, entrants: usize, units: u32) -> Vec<String> {
    use crate::sale::draw::{verify, Line, Secret};
    let lines = entries(journal);
    let secret = lines
        .iter()
        .find_map(|l| match l {
            Line::Revealed { secret } => Secret::from_hex(secret),
            _ => None,
        })
        .expect("the secret is revealed after the draw");
    let published = published(journal);
    assert!(
        published.problems().is_empty(),
        "{:?}",
        published.problems()
    );
    assert_eq!(published.secret, secret.to_hex());
    let winners = crate::journal::replay(journal).unwrap().confirmed;
    let checks = verify(
        &secret,
        &published.sale,
        published.round,
        &lines,
        winners.iter().map(|w| (w.sku.as_str(), w.user.as_str())),
    );
    let a = checks.iter().find(|c| c.sku == "A").unwrap();
    assert!(a.holds(), "{a:?}");
    assert!(
        a.against(&published).is_empty(),
        "{:?}",
        a.against(&published)
    );
    assert_eq!((a.entrants, a.units as usize), (entrants, units as usize));
    a.published.clone()
}

/// `user` asks twice at once: one entry, held until the draw; the other
/// request is told at once it is in the draw (one connection held per
/// customer, not one per click). The held request's answer.
async fn enter_twice(f: &Fixture, path: &str, user: String) -> (String, (StatusCode, String)) {
    let (a, b) = tokio::join!(
        f.order(path, Some(&user), "sku=A"),
        f.order(path, Some(&user), "sku=A")
    );
    let (held, told) = if a.0 == StatusCode::ACCEPTED {
        (b, a)
    } else {
        (a, b)
    };
    assert_eq!(told.0, StatusCode::ACCEPTED, "{user}: {told:?}");
    assert!(
        told.1.starts_with("{\"status\":\"entered\",\"result_at\":"),
        "{told:?}"
    );
    (user, held)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fair_start_holds_entrants_draws_the_quota_and_answers_each() {
    // The sale started a second ago; entries until a second from now.
    let f = Arc::new(gate(-1, 3600, "fair_window = \"2s\"").await);
    let path = f.path();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let (f, path) = (f.clone(), path.clone());
            tokio::spawn(async move { enter_twice(&f, &path, format!("entrant-{i}")).await })
        })
        .collect();
    // An unknown item is refused at once, not entered.
    assert_eq!(
        f.order(&path, Some("x"), "sku=Z").await.0,
        StatusCode::NOT_FOUND
    );
    // Every entry is in; nobody is answered while the window lasts.
    let draw = f.gate.draw.as_ref().unwrap();
    crate::util::wait::wait_for("12 entries", std::time::Duration::from_secs(5), || {
        draw.count() == 12
    })
    .await;
    // Asking again in the window is answered while the window lasts.
    let again = f.order(&path, Some("entrant-0"), "sku=A").await;
    assert_eq!(again.0, StatusCode::ACCEPTED, "{again:?}");
    f.advance(900);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(
        tasks.iter().all(|t| !t.is_finished()),
        "an entrant was answered before the window's end"
    );
    // The window ends: the draw, and every entrant's answer.
    f.advance(200);
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
    won.sort();
    assert_eq!(drawn_of_a(f.journal.path(), 12, 2), won);
    let metrics = f.gate.metrics();
    assert!(metrics.contains("outcome=\"not_drawn\"} 10"), "{metrics}");
    assert!(metrics.contains("outcome=\"entered\"} 13"), "{metrics}");
    assert!(
        metrics.contains("flashsale_gate_draw_entries{"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_comes_at_once_and_the_result_when_asked_again() {
    use crate::sale::draw::Receipt;
    let f = Arc::new(gate(-1, 3600, "fair_window = \"2s\"").await);
    let path = f.path();
    // Asked with receipt=1: 202 at once, with a receipt the gate signed.
    let (status, body) = f.order(&path, Some("r1"), "sku=A&receipt=1").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let receipt: Receipt = serde_json::from_value(v["receipt"].clone()).unwrap();
    let draw = f.gate.draw.as_ref().unwrap();
    assert!(receipt.signed_by(&draw.receipt_key()), "{receipt:?}");
    assert_eq!(receipt.leaf, draw.leaf("A", "r1"));
    // Asked again: held until the draw; a third request is answered at once.
    let held = {
        let (f, path) = (f.clone(), path.clone());
        tokio::spawn(async move { f.order(&path, Some("r1"), "sku=A").await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(!held.is_finished(), "held until the draw");
    let third = f.order(&path, Some("r1"), "sku=A").await;
    assert_eq!(third.0, StatusCode::ACCEPTED, "{third:?}");
    assert!(third.1.contains("\"receipt\":"), "{third:?}");
    f.advance(1100);
    let (status, body) = held.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"won\""), "one entrant, two units: {body}");
    // The published draw holds the receipt's entry, drawn.
    let p = published(f.journal.path());
    let standing = p.standing(&receipt).unwrap();
    assert_eq!((standing.entrants, standing.drawn), (1, true));
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
    let draw = f.gate.draw.as_ref().unwrap();
    crate::util::wait::wait_for("5 entries", std::time::Duration::from_secs(5), || {
        draw.count() == 5
    })
    .await;
    f.gate.stop().await;
    for t in tasks {
        assert_eq!(t.await.unwrap().0, StatusCode::SERVICE_UNAVAILABLE);
    }
    let Ok(f) = Arc::try_unwrap(f) else {
        panic!("the fixture is shared still")
    };
    // Back after the window (a window already over): the draw is made at once.
    let f = f
        .restart(Setup {
            extra: "fair_window = \"2s\"",
            ..Setup::default()
        })
        .await;
    let mut answers = Vec::new();
    for i in 0..5 {
        answers.push(f.order(&f.path(), Some(&format!("e{i}")), "sku=A").await.1);
    }
    assert_eq!(answers.iter().filter(|a| a.contains("won")).count(), 2);
    assert_eq!(
        answers.iter().filter(|a| a.contains("not_drawn")).count(),
        3
    );
    let first = crate::journal::replay(f.journal.path()).unwrap().confirmed;
    // Once more: nothing new is drawn.
    let f = f
        .restart(Setup {
            extra: "fair_window = \"2s\"",
            ..Setup::default()
        })
        .await;
    assert!(f.order(&f.path(), Some("e0"), "sku=A").await.0.is_success());
    assert_eq!(
        crate::journal::replay(f.journal.path()).unwrap().confirmed,
        first
    );
    let drawn = entries(f.journal.path())
        .iter()
        .filter(|l| matches!(l, crate::sale::draw::Line::Drawn { drawn, .. } if drawn == "A"))
        .count();
    assert_eq!(drawn, 1, "the draw's units are recorded once");
}

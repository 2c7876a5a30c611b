//! Replicated before "won": with `[gate] ledger_replicas = 1` a winner is
//! answered only once a replica of the ledger confirms it (`WAIT`); with the
//! replica gone, winners are answered 503 (and the unit is not lost: the
//! customer's retry answers the same order once a replica is back).

use std::time::{Duration, Instant};

use crate::common::gate::{order, wait_healthy, GateProc, GateSale};
use crate::common::redis::Redis;
use crate::common::*;
use flashsale::sale;

#[test]
fn a_winner_is_answered_only_once_a_replica_has_it() {
    let primary = Redis::start();
    let mut replica = Redis::replica_of(&primary);
    let s = GateSale::new("ledger_replicas = 1");
    ok(s.sale.run(&["ledger", "load", "--ledger", &primary.url()]));
    let gate = GateProc::start(&s, &["--ledger", &primary.url(), "--gate-id", "g1"]);
    wait_healthy(&gate);
    let token = s.token();
    let url = sale::order_url(&gate.base, "test-sale", &token);
    // (A replica slow to confirm on a busy machine answers 503: press again.)
    let (status, first) = press(&url, "early");
    assert!(status == 200 && first.contains("won"), "{status} {first}");
    // The replica dies: a winner cannot be confirmed, so it is not answered.
    replica.kill();
    let asked = Instant::now();
    let (status, body, _) = order(&http(), &url, Some("during"), "A-1", true);
    assert_eq!(status, 503, "{body}");
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    gate.wait_for_log("ledger_not_replicated");
    // Back: the retry is answered, with the order the ledger gave it.
    replica.restart();
    replica.wait_in_sync();
    // (Takes are held for a moment after a short WAIT: press again.)
    let (status, body) = press(&url, "during");
    assert!(status == 200 && body.contains("won"), "{status} {body}");
    let (_, again, _) = order(&http(), &url, Some("early"), "A-1", true);
    assert_eq!(
        json_field(&again, "order"),
        json_field(&first, "order"),
        "{again}"
    );
    let status = ok(s
        .sale
        .run(&["ledger", "status", "--json", "--ledger", &primary.url()]));
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(v["items"]["A-1"]["winners"], 2, "{status}");
}

#[test]
fn without_the_setting_a_gate_waits_for_one_replica_when_the_ledger_has_one() {
    let primary = Redis::start();
    let _replica = Redis::replica_of(&primary);
    let s = GateSale::new("");
    ok(s.sale.run(&["ledger", "load", "--ledger", &primary.url()]));
    let gate = GateProc::start(&s, &["--ledger", &primary.url(), "--gate-id", "g1"]);
    wait_healthy(&gate);
    let line = gate.wait_for_log("ledger_replicas");
    assert!(line["replicas"] == 1 && line["probed"] == true, "{line}");
    // A bad setting names its line.
    let bad = GateSale::new("ledger_replicas = 9");
    let err = fails(bad.sale.run(&["check"]));
    assert!(
        err.contains("ledger_replicas = 9") && err.contains("0 to 5"),
        "{err}"
    );
}

/// `user` orders A-1, pressing again on 503 for up to 5 s, as a customer
/// would; the first other answer.
fn press(url: &str, user: &str) -> (u16, String) {
    wait_for_some("an answer", Duration::from_secs(5), || {
        let (status, body, _) = order(&http(), url, Some(user), "A-1", true);
        (status != 503).then_some((status, body))
    })
}

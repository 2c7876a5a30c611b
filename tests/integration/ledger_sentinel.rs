//! A ledger behind Sentinel: a primary, two replicas and three Sentinels
//! (Debian's `redis-server`, on loopback). The primary is killed -9 in the
//! middle of a storm of customers; the gate follows the promotion by itself:
//! no acknowledged winner lost (`ledger_replicas = 1`), none oversold,
//! admission back within seconds, nobody involved.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::gate::{order, wait_healthy, GateProc, GateSale};
use crate::common::redis::{Redis, Sentinels};
use crate::common::*;
use flashsale::sale;

/// When, who, the status and the body of one order.
type Answer = (Instant, String, u16, String);

#[test]
fn the_gate_follows_a_promotion_and_loses_no_acknowledged_winner() {
    let mut primary = Redis::start();
    let replicas = [Redis::replica_of(&primary), Redis::replica_of(&primary)];
    let sentinels = Sentinels::watch(&primary);
    let s = GateSale::new(&format!(
        "ledger = \"{}\"\nledger_replicas = 1",
        sentinels.url()
    ));
    let text = s
        .sale
        .read("items/a-1.md")
        .replace("stock = 10", "stock = 1000");
    s.sale.write("items/a-1.md", &text);
    ok(s.sale.run(&["ledger", "load"]));
    let gate = GateProc::start(&s, &["--gate-id", "g1"]);
    wait_healthy(&gate);
    let token = s.key.mint("test-sale");
    let url = sale::order_url(&gate.base, "test-sale", &token);
    // Customers one after another from 4 threads for 14 s (at most 600).
    let answers: Arc<Mutex<Vec<Answer>>> = Default::default();
    let started = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (url, answers) = (url.clone(), answers.clone());
            std::thread::spawn(move || {
                for n in 0..150 {
                    if started.elapsed() > Duration::from_secs(14) {
                        break;
                    }
                    let user = format!("c{t}-{n}");
                    let (status, body, _) = order(&http(), &url, Some(&user), "A-1", true);
                    answers
                        .lock()
                        .unwrap()
                        .push((Instant::now(), user, status, body));
                    std::thread::sleep(Duration::from_millis(60));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let old = primary.port;
    primary.kill();
    let killed = Instant::now();
    wait_for("a replica promoted", Duration::from_secs(15), || {
        sentinels.primary().is_some_and(|p| p != old)
    });
    let promoted = Instant::now();
    for t in threads {
        t.join().unwrap();
    }
    let answers = answers.lock().unwrap().clone();
    let won: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.2 == 200 && a.3.contains("\"won\""))
        .collect();
    // Admission came back after the promotion, within 5 s of it.
    let back = won
        .iter()
        .map(|a| a.0)
        .filter(|t| *t > killed)
        .min()
        .expect("someone won after the primary was killed");
    let after = back.saturating_duration_since(promoted);
    eprintln!(
        "promotion {:?} after the kill; first winner {:?} after the promotion; {} answers, {} won",
        promoted - killed,
        after,
        answers.len(),
        won.len()
    );
    assert!(after < Duration::from_secs(5), "{after:?}");
    gate.wait_for_log("ledger_primary_changed");
    // Every acknowledged winner is in the new primary's ledger; none twice.
    let export = ok(s.sale.run(&["ledger", "export"]));
    let ledger: Vec<serde_json::Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let users: std::collections::BTreeSet<&str> =
        ledger.iter().filter_map(|e| e["user"].as_str()).collect();
    assert_eq!(users.len(), ledger.len(), "a customer twice");
    for (_, user, _, body) in &won {
        assert!(
            users.contains(user.as_str()),
            "acknowledged winner {user} lost: {body}"
        );
    }
    assert!(ledger.len() <= 1000, "oversold: {}", ledger.len());
    // Nothing else: 200 or 503, never an error page.
    assert!(
        answers.iter().all(|a| a.2 == 200 || a.2 == 503),
        "{:?}",
        answers.iter().map(|a| a.2).collect::<Vec<_>>()
    );
    drop(replicas);
}

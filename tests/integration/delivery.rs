//! Every winner reaches the order system through the faults an order system
//! has: one winner it fails forever (a poison record) must not hold up the
//! others, and an order system down for everyone must not lose anybody.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::gate::*;
use crate::common::*;

/// Each order id with the statuses its deliveries got, in order.
fn deliveries(rx: &Receiver) -> BTreeMap<String, Vec<u16>> {
    let mut by_key: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for (key, _, status) in rx.got.lock().unwrap().iter() {
        by_key.entry(key.clone()).or_default().push(*status);
    }
    by_key
}

fn dead_letters(s: &GateSale) -> Vec<Value> {
    std::fs::read_to_string(s.journal().join("dead-letters.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_poison_winner_is_set_aside_and_the_49_others_are_delivered_at_once() {
    let s = GateSale::new("forward_attempts = 3");
    // An unhandled exception on one odd user id: 500, every time.
    let rx = order_system(|_, _, body| {
        if body.contains("\"user\":\"odd-7\"") {
            500
        } else {
            200
        }
    });
    let gate = GateProc::start(
        &s,
        &["--quota", "50", "--forward", &format!("{}/orders", rx.base)],
    );
    let url = gate.url(&s);
    let agent = http();
    // The poison winner among the first, so the others come after it.
    let users: Vec<String> = (0..50)
        .map(|i| {
            if i == 2 {
                "odd-7".to_string()
            } else {
                format!("even-{i}")
            }
        })
        .collect();
    let started = Instant::now();
    for u in &users {
        let (status, body, _) = order(&agent, &url, Some(u), "A-1", true);
        assert!(body.contains("\"won\""), "{status} {body}");
    }
    wait_for("49 winners accepted", Duration::from_secs(10), || {
        deliveries(&rx)
            .values()
            .filter(|st| st.contains(&200))
            .count()
            == 49
    });
    let took = started.elapsed();
    // The poison one: given up on after its attempts, in the dead letters.
    let gave_up = gate.wait_for_log("forward_gave_up");
    assert_eq!(gave_up["attempts"], 3, "{gave_up}");
    let dead = dead_letters(&s);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["user"], "odd-7");
    assert_eq!(
        (dead[0]["status"].as_u64(), dead[0]["attempts"].as_u64()),
        (Some(500), Some(3))
    );
    assert_eq!(gate.metric("flashsale_gate_forward_gave_up_total"), 1.0);
    assert_eq!(
        gate.metric("flashsale_gate_forward_dead_letters_total"),
        1.0
    );
    wait_for("the backlog at 0", Duration::from_secs(5), || {
        gate.metric("flashsale_gate_forward_backlog") == 0.0
    });
    // Each of the others once.
    let by_key = deliveries(&rx);
    let poison = &dead[0]["order"].as_str().unwrap().to_lowercase();
    for (key, statuses) in &by_key {
        if key != poison {
            assert_eq!(statuses, &[200], "{key}");
        }
    }
    eprintln!("49 delivered and the poison one set aside in {took:?}");
}

#[test]
fn an_order_system_down_for_everyone_for_20_s_loses_nobody_and_gets_each_once() {
    let s = GateSale::new("forward_attempts = 3");
    // Down (503 to everyone) for the first 20 s after the first delivery.
    let first = std::sync::Mutex::new(None::<Instant>);
    let rx = order_system(move |_, _, _| {
        let since = *first.lock().unwrap().get_or_insert_with(Instant::now);
        if since.elapsed() < Duration::from_secs(20) {
            503
        } else {
            200
        }
    });
    let gate = GateProc::start(
        &s,
        &["--quota", "10", "--forward", &format!("{}/orders", rx.base)],
    );
    let url = gate.url(&s);
    let agent = http();
    for i in 0..10 {
        assert!(order(&agent, &url, Some(&format!("d{i}")), "A-1", true)
            .1
            .contains("won"));
    }
    // Down: failures pile up, nobody is set aside.
    wait_for("retries while it is down", Duration::from_secs(15), || {
        gate.metric("flashsale_gate_forward_failures_total") >= 40.0
    });
    assert_eq!(
        gate.metric("flashsale_gate_forward_dead_letters_total"),
        0.0
    );
    // Back: every winner accepted, each exactly once.
    wait_for(
        "all 10 accepted after the outage",
        Duration::from_secs(60),
        || {
            deliveries(&rx)
                .values()
                .filter(|st| st.contains(&200))
                .count()
                == 10
        },
    );
    for (key, statuses) in deliveries(&rx) {
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{key} accepted more than once: {statuses:?}"
        );
    }
    assert!(dead_letters(&s).is_empty());
    assert_eq!(gate.metric("flashsale_gate_forward_gave_up_total"), 0.0);
    wait_for("the backlog at 0", Duration::from_secs(5), || {
        gate.metric("flashsale_gate_forward_backlog") == 0.0
    });
}

//! A ledger on a Redis cluster (3 primaries, 3 replicas: what AWS MemoryDB
//! and ElastiCache's cluster mode are): the primary serving the sale's slot
//! is killed -9 in the middle of a storm of customers; the cluster promotes
//! its replica and the gate follows by itself — no acknowledged winner lost
//! (`WAIT 1` on that slot's primary), none oversold, every winner
//! delivered, admission back within seconds of the promotion (once the
//! restarted node is the new primary's replica: `WAIT 1` needs one).

use std::time::{Duration, Instant};

use crate::common::redis::Cluster;
use crate::common::storm::{assert_nothing_lost, staged, Staged, Storm};
use crate::common::*;

const STOCK: usize = 100_000;

#[test]
fn the_gate_follows_the_promotion_of_its_slots_replica() {
    let mut cluster = Cluster::start();
    let Staged {
        s,
        orders,
        gate,
        url,
    } = staged(&format!("ledger = \"{}\"", cluster.url()), STOCK);
    // The gate found the slot's primary has a replica: it waits for it.
    let replicas = gate.wait_for_log("ledger_replicas");
    assert_eq!(replicas["replicas"], 1, "{replicas}");
    let storm = Storm::start(&url, "A-1", 4, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));
    let key = "fs:{test-sale}:meta";
    let old = cluster
        .primary_of(key)
        .expect("a primary serves the sale's slot");
    cluster.node(old).kill();
    let killed = Instant::now();
    wait_for("its replica promoted", Duration::from_secs(20), || {
        cluster.primary_of(key).is_some_and(|p| p != old)
    });
    let promoted = Instant::now();
    // The promoted primary has no replica of its own until the killed node
    // rejoins as one: restarted at once, as its supervisor (systemd's
    // Restart=always) would, it finds the new configuration and follows.
    cluster.node(old).restart();
    let back = storm
        .first_won_after(promoted, Duration::from_secs(20))
        .expect("a winner after the promotion");
    std::thread::sleep(Duration::from_secs(2));
    let answers = storm.stop();
    let after = back.saturating_duration_since(promoted);
    eprintln!(
        "promotion {:?} after the kill; first winner {after:?} after it; {} answers",
        promoted - killed,
        answers.len()
    );
    assert!(after < Duration::from_secs(5), "{after:?}");
    gate.wait_for_log("ledger_reasserted_after_failover");
    assert_nothing_lost(&s, &[], &answers, STOCK, &orders);
}

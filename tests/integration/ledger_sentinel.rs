//! A ledger behind Sentinel: a primary, two replicas and three Sentinels
//! (Debian's `redis-server`, on loopback). The primary is killed -9 ten
//! times in a row in the middle of a storm of customers, each time after the
//! previous promotion settled (the killed node rejoins as a replica); the
//! gate follows every promotion by itself: no acknowledged winner lost
//! (`ledger_replicas = 1`), none oversold, every winner delivered,
//! admission back within 5 s of each promotion, nobody involved.

use std::time::{Duration, Instant};

use crate::common::gate::order;
use crate::common::redis::{Redis, Sentinels};
use crate::common::storm::{assert_nothing_lost, staged, Staged, Storm};
use crate::common::*;

const KILLS: usize = 10;
const STOCK: usize = 100_000;

#[test]
fn the_gate_follows_ten_promotions_and_loses_no_acknowledged_winner() {
    let primary = Redis::start();
    let mut nodes = [
        Redis::replica_of(&primary),
        Redis::replica_of(&primary),
        primary,
    ];
    let sentinels = Sentinels::watch(&nodes[2]);
    let Staged {
        s,
        orders,
        gate,
        url,
    } = staged(
        &format!("ledger = \"{}\"\nledger_replicas = 1", sentinels.url()),
        STOCK,
    );
    let storm = Storm::start(&url, "A-1", 4, Duration::from_secs(240));
    std::thread::sleep(Duration::from_secs(2));
    // (kill → promotion, promotion → the first winner after it)
    let mut rounds: Vec<(Duration, Duration)> = Vec::new();
    let t0 = Instant::now();
    for round in 0..KILLS {
        let old = sentinels.primary().expect("the Sentinels name a primary");
        let i = nodes.iter().position(|n| n.port == old).unwrap();
        nodes[i].kill();
        let killed = Instant::now();
        eprintln!("{:?} round {round}: killed {old}", t0.elapsed());
        wait_for("a replica promoted", Duration::from_secs(20), || {
            sentinels.primary().is_some_and(|p| p != old)
        });
        let promoted = Instant::now();
        let back = storm
            .first_won_after(promoted, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("round {round}: no winner within 20 s of the promotion"));
        rounds.push((promoted - killed, back.saturating_duration_since(promoted)));
        eprintln!("round {round}: {:?}", rounds[round]);
        // Settle: the killed node rejoins the new primary, which then has
        // both replicas in sync, and the Sentinels agree on it.
        let new = sentinels.primary().unwrap();
        eprintln!("{:?} round {round}: {old} rejoins {new}", t0.elapsed());
        nodes[i].rejoin(new);
        let p = nodes.iter().find(|n| n.port == new).unwrap();
        wait_for(
            "both replicas on the new primary",
            Duration::from_secs(20),
            || p.info("replication").contains("connected_slaves:2"),
        );
        for n in nodes.iter().filter(|n| n.port != new) {
            n.wait_in_sync();
        }
        wait_for("the Sentinels to settle", Duration::from_secs(30), || {
            sentinels.settled(new, 2)
        });
    }
    let answers = storm.stop();
    let mut backs: Vec<Duration> = rounds.iter().map(|r| r.1).collect();
    backs.sort();
    eprintln!(
        "{KILLS} kills: promotion after the kill {:?}; first winner after the promotion {:?} (sorted {:?}); {} answers",
        rounds.iter().map(|r| r.0).collect::<Vec<_>>(),
        rounds.iter().map(|r| r.1).collect::<Vec<_>>(),
        backs,
        answers.len(),
    );
    assert!(
        backs.iter().all(|b| *b < Duration::from_secs(5)),
        "admission back later than 5 s after a promotion: {backs:?}"
    );
    gate.wait_for_log("ledger_primary_changed");
    let put_back = gate.wait_for_log("ledger_reasserted_after_failover");
    eprintln!("after a failover: {put_back}");
    assert_nothing_lost(&s, &[], &answers, STOCK, &orders);
}

/// What a failover can lose, and how the journal covers it: the replica
/// is cut off (its primary now asks for a password it does not have), a
/// customer wins on the primary alone (`ledger_replicas = 0`), the primary
/// is killed -9 and the stale replica promoted. The gate puts its journal
/// back on the new primary before taking on it: the winner is in the ledger
/// again, and their unit is not sold twice.
#[test]
fn a_winner_the_promoted_replica_lacks_is_put_back_from_the_journal() {
    let mut primary = Redis::start();
    let replica = Redis::replica_of(&primary);
    let sentinels = Sentinels::watch(&primary);
    let Staged { s, gate, url, .. } = staged(
        &format!("ledger = \"{}\"\nledger_replicas = 0", sentinels.url()),
        2,
    );
    let (status, body, _) = order(&http(), &url, Some("first"), "A-1", true);
    assert!(status == 200 && body.contains("won"), "{status} {body}");
    wait_for("the replica caught up", Duration::from_secs(10), || {
        let offset = |r: &Redis| {
            r.info("replication")
                .lines()
                .find_map(|l| l.strip_prefix("master_repl_offset:").map(str::to_string))
        };
        offset(&replica).is_some() && offset(&replica) == offset(&primary)
    });
    // Cut the replica off: it cannot reconnect without the password.
    assert_eq!(primary.command("CONFIG SET requirepass cut-off"), "+OK");
    let killed = std::process::Command::new("redis-cli")
        .args(["-p", &primary.port.to_string(), "--no-auth-warning"])
        .args(["-a", "cut-off", "CLIENT", "KILL", "TYPE", "replica"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&killed.stdout).trim(), "1");
    wait_for("the replica cut off", Duration::from_secs(10), || {
        replica
            .info("replication")
            .contains("master_link_status:down")
    });
    let (status, lost, _) = order(&http(), &url, Some("only-on-primary"), "A-1", true);
    assert!(status == 200 && lost.contains("won"), "{status} {lost}");
    primary.kill();
    wait_for(
        "the stale replica promoted",
        Duration::from_secs(20),
        || sentinels.primary() == Some(replica.port),
    );
    let log = gate.wait_for_log("ledger_reasserted_after_failover");
    assert_eq!(log["missing"], 1, "{log}");
    // The last unit: one more customer wins it, the next finds it sold out.
    let sold = wait_for_some("admission back", Duration::from_secs(10), || {
        let (status, body, _) = order(&http(), &url, Some("third"), "A-1", true);
        (status != 503).then_some((status, body))
    });
    assert!(
        !sold.1.contains("won"),
        "the unit of `only-on-primary` sold again: {sold:?}"
    );
    let export = ok(s.sale.run(&["ledger", "export"]));
    assert!(export.contains("\"only-on-primary\""), "{export}");
    assert_eq!(export.lines().count(), 2, "{export}");
}

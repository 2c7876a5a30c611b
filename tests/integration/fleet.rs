//! Many gates, one stock: gates on a shared ledger in a real `redis-server`,
//! through the real binary. Exactly the stock is sold across the fleet, one
//! unit per customer whichever gates they try, nothing stranded when a gate
//! dies, nothing oversold or lost when Redis restarts (with its data or
//! empty), and nobody admitted while Redis is away.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::gate::{
    audit, journal_winners, order, order_system, receiver, wait_healthy, GateProc, GateSale,
    Receiver,
};
use crate::common::redis::Redis;
use crate::common::*;
use flashsale::sale;

/// A sale open now, a ledger loaded with its stock, `n` gates on it that
/// forward winners to one order system.
struct Fleet {
    s: GateSale,
    redis: Redis,
    gates: Vec<GateProc>,
    orders: Receiver,
    token: String,
}

impl Fleet {
    /// Items A-1, B-2 and C-3 with `stock` units each; the order system
    /// refuses its first `refusals` deliveries.
    fn start(n: usize, stock: u32) -> Fleet {
        Self::with_order_system(n, stock, 0)
    }

    fn with_order_system(n: usize, stock: u32, refusals: usize) -> Fleet {
        Self::with_receiver(n, stock, receiver(refusals))
    }

    fn with_receiver(n: usize, stock: u32, orders: Receiver) -> Fleet {
        Self::with(n, stock, orders, "")
    }

    /// `extra` in `[gate]`; the fleet `g1`..`g<n>` is listed in it unless
    /// `extra` lists one. The gates start first, then the stock is loaded
    /// (the sale has started: the load waits for every listed gate).
    fn with(n: usize, stock: u32, orders: Receiver, extra: &str) -> Fleet {
        let listed: Vec<String> = (1..=n).map(|i| format!("\"g{i}\"")).collect();
        let extra = if extra.contains("fleet") {
            extra.to_string()
        } else {
            format!("{extra}\nfleet = [{}]", listed.join(", "))
        };
        let s = GateSale::new(&extra);
        for f in ["items/a-1.md", "items/b-2.md", "items/c-3.md"] {
            let text = s
                .sale
                .read(f)
                .replace("stock = 10", &format!("stock = {stock}"));
            s.sale.write(f, &text);
        }
        let redis = Redis::start();
        let token = s.token();
        let mut fleet = Fleet {
            s,
            redis,
            gates: Vec::new(),
            orders,
            token,
        };
        for i in 1..=n {
            let gate = fleet.gate(i);
            fleet.gates.push(gate);
        }
        ok(fleet.load(&["--wait", "10s"]));
        for g in &fleet.gates {
            wait_healthy(g);
        }
        fleet
    }

    /// Gate `g<i>` on journal `j<i>`.
    fn gate(&self, i: usize) -> GateProc {
        let dir = self.s.sale.path();
        GateProc::start_in(
            dir,
            &dir.join(format!("j{i}")),
            &[
                "--ledger",
                &self.redis.url(),
                "--gate-id",
                &format!("g{i}"),
                "--forward",
                &format!("{}/orders", self.orders.base),
            ],
        )
    }

    fn url(&self, gate: &GateProc) -> String {
        sale::order_url(&gate.base, "test-sale", &self.token)
    }

    /// `flashsale audit` over every gate's journal (`j<i>`), the ledger and
    /// what the order system accepted.
    fn audit(&self) -> std::process::Output {
        let journals: Vec<String> = (1..=9)
            .map(|i| format!("j{i}"))
            .filter(|j| self.s.sale.path().join(j).is_dir())
            .collect();
        let journals: Vec<&str> = journals.iter().map(String::as_str).collect();
        audit(
            &self.s.sale,
            &journals,
            &self.orders,
            &["--ledger", &self.redis.url()],
        )
    }

    /// `flashsale ledger load` with `args`, as the operator runs it.
    fn load(&self, args: &[&str]) -> std::process::Output {
        let url = self.redis.url();
        let mut all = vec!["ledger", "load", "--ledger", &url];
        all.extend_from_slice(args);
        self.s.sale.run(&all)
    }

    /// One unit of `sku` to each of `users`, round robin over the gates:
    /// every one of them must win.
    fn sell(&self, users: impl IntoIterator<Item = String>, sku: &str) {
        let agent = http();
        for (i, user) in users.into_iter().enumerate() {
            let url = self.url(&self.gates[i % self.gates.len()]);
            let (_, body, _) = order(&agent, &url, Some(&user), sku, true);
            assert!(body.contains("won"), "{user}: {body}");
        }
    }

    /// The ledger's winners: (sku, user) → order.
    fn ledger_winners(&self) -> BTreeMap<(String, String), String> {
        let out = ok(self
            .s
            .sale
            .run(&["ledger", "export", "--ledger", &self.redis.url()]));
        out.lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                let s = |k: &str| v[k].as_str().unwrap().to_string();
                ((s("sku"), s("user")), s("order"))
            })
            .collect()
    }

    /// Whether the ledger holds the sale's epoch (it is loaded).
    fn ledger_status_epoch_present(&self) -> bool {
        !self
            .redis
            .command("HGET fs:{test-sale}:meta epoch")
            .starts_with("$-1")
    }

    /// Every journal's winners, as distinct orders with their (sku, user).
    fn journaled(&self) -> BTreeMap<String, (String, String)> {
        let mut out = BTreeMap::new();
        for i in 1..=self.gates.len().max(3) {
            let path = self.s.sale.path().join(format!("j{i}/winners.jsonl"));
            let text = std::fs::read_to_string(path).unwrap_or_default();
            for v in journal_winners(&text) {
                let l = &v;
                let s = |k: &str| v[k].as_str().unwrap().to_string();
                let prev = out.insert(s("order"), (s("sku"), s("user")));
                assert!(
                    prev.is_none_or(|p| p == (s("sku"), s("user"))),
                    "one order id, two winners: {l}"
                );
            }
        }
        out
    }

    /// Orders the order system accepted, waiting up to `wait` for `expected` of them.
    fn delivered(&self, expected: usize, wait: Duration) -> BTreeSet<String> {
        wait_for_some(&format!("{expected} orders delivered"), wait, || {
            let got: BTreeSet<String> = self
                .orders
                .got
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, _, st)| *st == 200)
                .map(|(k, _, _)| k.clone())
                .collect();
            (got.len() >= expected).then_some(got)
        })
    }

    /// A calls metric summed over the live gates.
    fn ledger_calls(&self, kind: &str) -> f64 {
        self.gates
            .iter()
            .map(|g| {
                g.metric_where(
                    "flashsale_gate_ledger_calls_total",
                    &[&format!("kind=\"{kind}\"")],
                )
            })
            .sum()
    }
}

/// What one attempt got: customer, sku, gate index, status, order (when won).
type Attempt = (String, String, usize, u16, Option<String>);

/// `customers` distinct customers, spread round robin over `urls` and the
/// items, `threads` at a time; stops early when `stop` is set.
fn storm(
    urls: &[String],
    customers: usize,
    threads: usize,
    prefix: &str,
    stop: &AtomicBool,
) -> Vec<Attempt> {
    let results = Arc::new(Mutex::new(Vec::new()));
    let skus = ["A-1", "B-2", "C-3"];
    std::thread::scope(|scope| {
        for t in 0..threads {
            let results = results.clone();
            scope.spawn(move || {
                let agent = http();
                for i in (t..customers).step_by(threads) {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let user = format!("{prefix}-{i}");
                    let gate = i % urls.len();
                    let sku = skus[i % skus.len()];
                    let (status, body, _) = order(&agent, &urls[gate], Some(&user), sku, true);
                    let won = serde_json::from_str::<Value>(&body)
                        .ok()
                        .filter(|v| v["status"] == "won")
                        .map(|v| v["order"].as_str().unwrap().to_string());
                    results
                        .lock()
                        .unwrap()
                        .push((user, sku.to_string(), gate, status, won));
                }
            });
        }
    });
    Arc::try_unwrap(results).unwrap().into_inner().unwrap()
}

fn won(attempts: &[Attempt]) -> BTreeMap<String, (String, String)> {
    attempts
        .iter()
        .filter_map(|(u, sku, _, _, o)| o.clone().map(|o| (o, (sku.clone(), u.clone()))))
        .collect()
}

/// After g3 died in `first`: the two gates left storm `customers` more, and
/// every customer of `first` without an answer tries again at g1 (a unit
/// the ledger gave them is theirs, answered by a live gate). Every order
/// answered won, with its (sku, user).
fn sell_the_rest_without_g3(
    f: &mut Fleet,
    urls: &[String],
    first: &[Attempt],
    customers: usize,
) -> BTreeMap<String, (String, String)> {
    let live = urls[..2].to_vec();
    f.gates.truncate(2);
    let rest = storm(&live, customers, 12, "after", &AtomicBool::new(false));
    let mut acked = won(first);
    acked.extend(won(&rest));
    let agent = http();
    for (user, sku, _, status, _) in first.iter().filter(|a| a.3 != 200) {
        let (st, body, _) = order(&agent, &live[0], Some(user), sku, true);
        assert_eq!(st, 200, "{user}: {status} then {st}: {body}");
        if let Some(o) = serde_json::from_str::<Value>(&body).unwrap()["order"].as_str() {
            acked.insert(o.to_string(), (sku.clone(), user.clone()));
        }
    }
    acked
}

#[test]
fn three_gates_sell_exactly_the_stock_to_a_round_robin_storm() {
    let f = Fleet::start(3, 10);
    let urls: Vec<String> = f.gates.iter().map(|g| f.url(g)).collect();
    let attempts = storm(&urls, 900, 24, "c", &AtomicBool::new(false));
    let errors: Vec<&Attempt> = attempts.iter().filter(|a| a.3 != 200).collect();
    assert!(errors.is_empty(), "{:?}", &errors[..errors.len().min(5)]);

    let acked = won(&attempts);
    let ledger = f.ledger_winners();
    let journaled = f.journaled();
    for sku in ["A-1", "B-2", "C-3"] {
        let n = ledger.keys().filter(|(s, _)| s == sku).count();
        assert_eq!(n, 10, "{sku}: winners in the ledger");
    }
    assert_eq!(acked.len(), 30, "answered won");
    assert_eq!(
        journaled, acked,
        "the journals hold exactly the answered winners"
    );
    let by_order: BTreeMap<String, (String, String)> =
        ledger.iter().map(|(k, o)| (o.clone(), k.clone())).collect();
    assert_eq!(
        by_order, acked,
        "the ledger holds exactly the answered winners"
    );
    let delivered = f.delivered(30, Duration::from_secs(20));
    let acked_keys: BTreeSet<String> = acked.keys().map(|o| o.to_lowercase()).collect();
    assert_eq!(delivered, acked_keys, "the order system has every winner");

    // The flood stayed off Redis: admissions called it about once per unit,
    // plus what was in flight when an item sold out, plus one look at each
    // sold-out item's winners per gate; never once per customer.
    let calls = f.ledger_calls("admission");
    eprintln!("{} requests, {calls} ledger calls for admissions (stock 30, 24 in flight, 3 gates x 3 items)", attempts.len());
    assert!(
        calls <= (30 + 24 + 9) as f64,
        "{calls} ledger calls for 900 customers"
    );
}

#[test]
fn one_customer_at_every_gate_gets_one_unit_and_one_order_id() {
    let f = Fleet::start(3, 10);
    let urls: Vec<String> = f.gates.iter().map(|g| f.url(g)).collect();
    // At the same time at every gate, several times over.
    let answers = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        for _ in 0..4 {
            for url in &urls {
                let answers = answers.clone();
                scope.spawn(move || {
                    let r = order(&http(), url, Some("the-same-customer"), "A-1", true);
                    answers.lock().unwrap().push((r.0, r.1));
                });
            }
        }
    });
    // Then one after the other.
    let agent = http();
    for url in urls.iter().rev() {
        let r = order(&agent, url, Some("the-same-customer"), "A-1", true);
        answers.lock().unwrap().push((r.0, r.1));
    }
    let answers = answers.lock().unwrap();
    let distinct: BTreeSet<&(u16, String)> = answers.iter().collect();
    assert_eq!(distinct.len(), 1, "{answers:?}");
    assert!(answers[0].1.contains("\"won\""), "{answers:?}");
    let ledger = f.ledger_winners();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(
        f.journaled().len(),
        1,
        "one order id in every journal that has it"
    );
}

#[test]
fn a_gate_killed_mid_storm_strands_nothing_and_its_winners_reach_the_order_system() {
    // A slow order system: deliveries are still pending when gate 3 dies.
    let mut f = Fleet::with_order_system(3, 40, 6);
    let urls: Vec<String> = f.gates.iter().map(|g| f.url(g)).collect();
    let stop = AtomicBool::new(false);
    let first = std::thread::scope(|scope| {
        let storm = scope.spawn(|| storm(&urls, 90, 12, "before", &stop));
        // Kill gate 3 once it has acknowledged some winners.
        wait_for("gate 3 to win 3", Duration::from_secs(30), || {
            f.gates[2].metric(
                "flashsale_gate_requests_total{sale=\"test-sale\",gate=\"g3\",outcome=\"won\"}",
            ) >= 3.0
        });
        f.gates[2].kill9();
        stop.store(true, Ordering::Relaxed);
        storm.join().unwrap()
    });
    let by_g3: BTreeSet<String> = first
        .iter()
        .filter(|a| a.2 == 2)
        .filter_map(|a| a.4.clone())
        .collect();
    assert!(!by_g3.is_empty());
    // The two gates left sell everything that remains: nothing is stranded at gate 3.
    let acked = sell_the_rest_without_g3(&mut f, &urls, &first, 600);
    let ledger = f.ledger_winners();
    assert_eq!(ledger.len(), 120, "every unit sold");
    assert_eq!(acked.len(), 120, "every unit answered won");
    // What gate 3 acknowledged before it died reaches the order system anyway.
    let delivered = f.delivered(120, Duration::from_secs(30));
    for o in &by_g3 {
        assert!(
            delivered.contains(&o.to_lowercase()),
            "{o}, won at the dead gate, never reached the order system"
        );
    }
    assert_eq!(delivered.len(), 120);
}

/// One storm, two faults: a gate killed with kill -9, then Redis killed with
/// kill -9 and restarted on its AOF. Afterwards winners == stock, every
/// acknowledged winner is in the ledger with the order id it was told, the
/// order system has every one, and `flashsale audit` finds nothing wrong.
#[test]
fn a_gate_and_redis_killed_in_one_storm_end_with_a_clean_audit() {
    let mut f = Fleet::start(3, 100);
    let urls: Vec<String> = f.gates.iter().map(|g| f.url(g)).collect();
    let stop = AtomicBool::new(false);
    let first = std::thread::scope(|scope| {
        let storm = scope.spawn(|| storm(&urls, 100_000, 12, "one", &stop));
        let sold = |f: &Fleet, n: usize| {
            wait_for(&format!("{n} sold"), Duration::from_secs(30), || {
                f.journaled().len() >= n
            })
        };
        sold(&f, 60);
        f.gates[2].kill9();
        sold(&f, f.journaled().len() + 30);
        f.redis.restart();
        sold(&f, f.journaled().len() + 30);
        stop.store(true, Ordering::Relaxed);
        storm.join().unwrap()
    });
    let refused = first.iter().filter(|a| a.3 != 200).count();
    eprintln!("during the faults: {refused} attempts failed or were refused");
    let acked = sell_the_rest_without_g3(&mut f, &urls, &first, 1000);
    let ledger = f.ledger_winners();
    assert_eq!(ledger.len(), 300, "winners == stock");
    assert_eq!(acked.len(), 300, "as many answered won as units");
    for (order_id, (sku, user)) in &acked {
        assert_eq!(
            ledger.get(&(sku.clone(), user.clone())),
            Some(order_id),
            "{user} was told {order_id}"
        );
    }
    let delivered = f.delivered(300, Duration::from_secs(60));
    let orders: BTreeSet<String> = ledger.values().map(|o| o.to_lowercase()).collect();
    assert_eq!(
        delivered, orders,
        "the order system has every winner, and only those"
    );
    ok(f.audit());
}

#[test]
fn redis_restarts_never_oversell_nor_lose_an_acknowledged_winner() {
    let mut f = Fleet::start(3, 400);
    let urls: Vec<String> = f.gates.iter().map(|g| f.url(g)).collect();

    // Killed and restarted on its data (AOF, fsync always) in the middle of a
    // storm: the storm goes on through the outage and after it.
    let stop = AtomicBool::new(false);
    let first = std::thread::scope(|scope| {
        let storm = scope.spawn(|| storm(&urls, 100_000, 8, "one", &stop));
        wait_for("the storm to sell 100", Duration::from_secs(30), || {
            f.journaled().len() >= 100
        });
        f.redis.restart();
        // The storm goes on until the gates sell again after the outage.
        let before = f.journaled().len();
        wait_for("sales after the restart", Duration::from_secs(20), || {
            f.journaled().len() > before
        });
        stop.store(true, Ordering::Relaxed);
        storm.join().unwrap()
    });
    for g in &f.gates {
        wait_healthy(g);
    }
    let refused = first.iter().filter(|a| a.3 == 503).count();
    eprintln!("while Redis restarted: {refused} answered 503");
    let mut acked = won(&first);
    let ledger: BTreeMap<String, (String, String)> = f
        .ledger_winners()
        .into_iter()
        .map(|(k, o)| (o, k))
        .collect();
    for (o, who) in &acked {
        assert_eq!(
            ledger.get(o),
            Some(who),
            "acknowledged {o} is not in the ledger"
        );
    }

    // Restarted empty: the gates stop admitting, put their winners back,
    // and say so; the operator loads the stock again.
    f.redis.restart_empty();
    for g in &f.gates {
        let lost = g.wait_for_log("ledger_lost: the ledger has no epoch any more (a Redis restarted empty?); admissions paused");
        assert!(
            lost["hint"].as_str().unwrap().contains("ledger load"),
            "{lost}"
        );
    }
    let (status, body, _) = order(&http(), &urls[0], Some("during-the-outage"), "A-1", true);
    assert_eq!(status, 503, "{body}");
    wait_for(
        "the gates to put their winners back",
        Duration::from_secs(10),
        || f.ledger_winners().len() >= acked.len(),
    );
    ok(f.s
        .sale
        .run(&["ledger", "load", "--force", "--ledger", &f.redis.url()]));
    for g in &f.gates {
        wait_healthy(g);
    }
    let second = storm(&urls, 3000, 12, "two", &AtomicBool::new(false));
    acked.extend(won(&second));
    let ledger = f.ledger_winners();
    for sku in ["A-1", "B-2", "C-3"] {
        let n = ledger.keys().filter(|(s, _)| s == sku).count();
        assert_eq!(n, 400, "{sku}: every unit sold once, none twice");
    }
    assert_eq!(
        acked.len(),
        1200,
        "0 oversold: as many answered won as units"
    );
    let customers: BTreeSet<&(String, String)> = acked.values().collect();
    assert_eq!(customers.len(), 1200, "no customer won twice");
}

#[test]
fn while_redis_is_away_nobody_is_admitted_and_admission_resumes_by_itself() {
    let mut f = Fleet::start(2, 10);
    let url = f.url(&f.gates[0]);
    f.redis.kill();
    let (status, _, _) = order(&http(), &url, Some("early-bird"), "A-1", true);
    assert_eq!(status, 503, "fail closed");
    let g = &f.gates[0];
    g.wait_for_log("ledger_down");
    assert_eq!(get(&format!("{}/healthz", g.admin)).0, 503);
    assert_eq!(g.metric("flashsale_gate_ledger_up"), 0.0);
    f.redis.restart();
    wait_healthy(&f.gates[0]);
    assert_eq!(f.gates[0].metric("flashsale_gate_ledger_up"), 1.0);
    let (status, body, _) = order(&http(), &url, Some("early-bird"), "A-1", true);
    assert!(status == 200 && body.contains("won"), "{status} {body}");
}

#[test]
fn a_gate_id_live_in_the_ledger_is_refused() {
    let f = Fleet::start(1, 10);
    let out =
        f.s.gate_command("other-journal")
            .args(["--gate-id", "g1", "--ledger", &f.redis.url()])
            .output()
            .unwrap();
    let err = fails(out);
    assert!(err.contains("gate id `g1` is live in the ledger"), "{err}");
}

#[test]
fn rehearse_spreads_customers_over_the_fleet_and_close_follows_the_ledger() {
    let f = Fleet::start(3, 10);
    let dir = f.s.sale.path();
    // The pages as a CDN would serve them, and the toggle opened in place.
    let server = Server::start(dir, &["--no-watch"]);
    let target = format!("dir:{}", dir.join("public").display());
    ok(run(
        dir,
        &[
            "open",
            "--now",
            "--target",
            &target,
            "--key-file",
            "gate.key",
        ],
    ));
    let closer = Command::new(bin())
        .args(["close", "--when-sold-out", "--json", "--poll", "100ms"])
        .args(["--ledger", &f.redis.url(), "--target", &target])
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let gates: Vec<String> = f.gates.iter().map(|g| g.base.clone()).collect();
    let out = ok(run(
        dir,
        &[
            "rehearse",
            "--url",
            &server.base,
            "--gates",
            &gates.join(","),
            "--customers",
            "300",
            "--max-duration",
            "60s",
            "--json",
        ],
    ));
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["winners"], 30, "{report}");
    assert_eq!(report["oversold"], false);
    assert_eq!(report["duplicate_winners"], 0);
    assert_eq!(report["errors"], 0, "{report}");
    let per_gate = report["gates"].as_object().unwrap();
    assert_eq!(per_gate.len(), 3, "{report}");
    // Round robin: a third of the customers each, but for those who came
    // after the closer had already switched the sale off.
    let (mut won, mut orders) = (0, 0);
    for g in &gates {
        let n = per_gate[g]["orders"].as_u64().unwrap();
        assert!(n >= 100 - report["too_late"].as_u64().unwrap(), "{report}");
        orders += n;
        won += per_gate[g]["winners"].as_u64().unwrap();
    }
    assert_eq!(
        orders + report["too_late"].as_u64().unwrap(),
        300,
        "{report}"
    );
    assert_eq!(won, 30);
    // The closer saw the ledger sold out and switched the toggle.
    let closed: Value = serde_json::from_str(&ok(closer.wait_with_output().unwrap())).unwrap();
    assert_eq!(closed["state"], "ended", "{closed}");
    assert!(
        closed["reason"].as_str().unwrap().contains("ledger"),
        "{closed}"
    );
    let toggle = std::fs::read_to_string(dir.join("public/sale.js")).unwrap();
    assert!(toggle.contains("\"state\":\"ended\""), "{toggle}");
}

#[test]
fn unsafe_redis_settings_are_warned_about_and_the_password_never_shown() {
    let password = "s3cret-ledger-pass";
    let redis = Redis::start_with(&["--appendonly", "no", "--requirepass", password]);
    let s = GateSale::new("");
    let load = s.sale.run(&["ledger", "load", "--ledger", &redis.url()]);
    let (out, err) = (stdout(&load), stderr(&load));
    assert!(load.status.success(), "{out}{err}");
    assert!(err.contains("appendonly is off"), "{err}");
    let gate = GateProc::start(&s, &["--ledger", &redis.url(), "--gate-id", "g1"]);
    wait_healthy(&gate);
    wait_for("the appendonly warning", Duration::from_secs(10), || {
        gate.err
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("ledger_settings: appendonly is off"))
    });
    let status = ok(s.sale.run(&["ledger", "status", "--ledger", &redis.url()]));
    // A wrong password is an error that names the ledger, not the password.
    let wrong = redis.url().replace(password, "wrong-pass");
    let refused = fails(s.sale.run(&["ledger", "status", "--ledger", &wrong]));
    let mut everything = format!("{out}{err}{status}{refused}");
    everything.push_str(&gate.err.lock().unwrap().join("\n"));
    assert!(!everything.contains(password), "the password was printed");
    assert!(!refused.contains("wrong-pass"), "{refused}");
    assert!(
        refused.contains(&format!("127.0.0.1:{}", redis.port)),
        "{refused}"
    );
}

#[test]
fn a_fair_start_across_the_fleet_draws_once_even_when_a_gate_dies_in_the_window() {
    // Entries from a second before the start (the gates' tolerance is 2 s)
    // until 8 s from now; the stock of A-1 is 10 for the whole fleet.
    let s = GateSale::with_times(&in_secs(1), &in_secs(3600), "fair_window = \"7s\"");
    let redis = Redis::start();
    ok(s.sale.run(&["ledger", "load", "--ledger", &redis.url()]));
    let dir = s.sale.path().to_path_buf();
    let start = |i: usize| {
        GateProc::start_in(
            &dir,
            &dir.join(format!("j{i}")),
            &["--ledger", &redis.url(), "--gate-id", &format!("g{i}")],
        )
    };
    let mut gates: Vec<GateProc> = (1..=3).map(start).collect();
    for g in &gates {
        wait_healthy(g);
    }
    let token = s.token();
    let url = |g: &GateProc| sale::order_url(&g.base, "test-sale", &token);
    // 30 entrants at each gate, held until the draw.
    let mut held = Vec::new();
    for (i, g) in gates.iter().enumerate() {
        for n in 0..30 {
            let (url, user) = (url(g), format!("u{i}-{n}"));
            held.push(std::thread::spawn(move || {
                let (st, body, _) = order(&http(), &url, Some(&user), "A-1", true);
                (user, st, body)
            }));
        }
    }
    wait_for("30 entries at every gate", Duration::from_secs(5), || {
        gates
            .iter()
            .all(|g| g.metric("flashsale_gate_draw_entries") >= 30.0)
    });
    // g1 dies in the window: its entries are in the ledger already.
    gates[0].kill9();
    let mut answers: Vec<(String, u16, String)> =
        held.into_iter().map(|h| h.join().unwrap()).collect();
    // g1's entrants ask again at g2 once the draw is done.
    gates[1].wait_for_log("draw_done");
    gates[2].wait_for_log("draw_done");
    for a in answers.iter_mut().filter(|a| a.0.starts_with("u0-")) {
        assert_eq!(a.1, 0, "{a:?}: g1 died with the request");
        let (st, body, _) = order(&http(), &url(&gates[1]), Some(&a.0), "A-1", true);
        (a.1, a.2) = (st, body);
    }
    let won: BTreeSet<&str> = answers
        .iter()
        .filter(|a| a.1 == 200 && a.2.contains("\"won\""))
        .map(|a| a.0.as_str())
        .collect();
    let not_drawn = answers
        .iter()
        .filter(|a| a.1 == 200 && a.2 == "{\"status\":\"not_drawn\"}")
        .count();
    assert_eq!((won.len(), not_drawn), (10, 80), "{answers:?}");
    // One draw for the fleet: exactly one gate recorded drawing A-1.
    let journal = |i: usize, f: &str| -> Vec<Value> {
        std::fs::read_to_string(dir.join(format!("j{i}/{f}")))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let draws: usize = (1..=3)
        .map(|i| {
            journal(i, "entries.jsonl")
                .iter()
                .filter(|l| l["drawn"] == "A-1")
                .count()
        })
        .sum();
    assert_eq!(draws, 1, "one draw of A-1 in the fleet");
    // The drawing gate took its 10 winners in a few ledger calls, not one
    // round trip each (the answers after it add a sold-out fetch or two).
    let drawer = (2..=3)
        .find(|i| {
            journal(*i, "entries.jsonl")
                .iter()
                .any(|l| l["drawn"] == "A-1")
        })
        .unwrap();
    let calls = gates[drawer - 1]
        .metric_where("flashsale_gate_ledger_calls_total", &["kind=\"admission\""]);
    eprintln!("g{drawer} drew: {calls} admission calls to the ledger");
    assert!(
        calls <= 6.0,
        "{calls} ledger calls to take 10 drawn winners"
    );
    // The ledger's winners are the drawn entrants.
    let out = ok(s.sale.run(&["ledger", "export", "--ledger", &redis.url()]));
    let ledger: BTreeSet<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["user"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        ledger,
        won.iter().map(|u| u.to_string()).collect::<BTreeSet<_>>()
    );
    // draw verify over the three journals recomputes the same winners.
    drop(gates);
    let out = ok(s.sale.run(&[
        "draw",
        "verify",
        "--journal",
        "j1",
        "--journal",
        "j2",
        "--journal",
        "j3",
    ]));
    assert!(
        out.contains("A-1: 10 units among 90 entrants: the 10 published winners are the draw's"),
        "{out}"
    );
}

#[test]
fn a_draw_begun_by_a_gate_that_died_is_taken_over_once_with_its_units() {
    // The window closed 25 s ago. A gate ("ghost") had closed A-1's entries
    // (fixing 4 units among 20 entrants) and held the draw's lease when it
    // died; the lease has 3 s left.
    let s = GateSale::with_times(&in_secs(-30), &in_secs(3600), "fair_window = \"5s\"");
    let redis = Redis::start();
    ok(s.sale.run(&["ledger", "load", "--ledger", &redis.url()]));
    let entrants: Vec<String> = (0..20).map(|i| format!("e{i}")).collect();
    let key = |k: &str| format!("fs:{{test-sale}}:{k}");
    assert_eq!(
        redis.command(&format!(
            "SADD {} {}",
            key("entries:A-1"),
            entrants.join(" ")
        )),
        ":20"
    );
    assert_eq!(
        redis.command(&format!("HSET {} units 4", key("draw:A-1"))),
        ":1"
    );
    assert_eq!(
        redis.command(&format!("SET {} ghost PX 3000", key("drawlease:A-1"))),
        "+OK"
    );
    // Two gates come up after the window: both reach the draw at once.
    let started = Instant::now();
    let dir = s.sale.path().to_path_buf();
    let gates: Vec<GateProc> = (1..=2)
        .map(|i| {
            GateProc::start_in(
                &dir,
                &dir.join(format!("j{i}")),
                &["--ledger", &redis.url(), "--gate-id", &format!("g{i}")],
            )
        })
        .collect();
    for g in &gates {
        g.wait_for_log("draw_done");
    }
    assert!(
        started.elapsed() >= Duration::from_millis(2500),
        "nobody drew while the dead gate's lease held: {:?}",
        started.elapsed()
    );
    // One draw, with the units the dead gate fixed, among the ledger's entrants.
    let drawn: Vec<Value> = (1..=2)
        .flat_map(|i| {
            std::fs::read_to_string(dir.join(format!("j{i}/entries.jsonl")))
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .filter(|l| l["drawn"] == "A-1")
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(drawn.len(), 1, "{drawn:?}");
    assert_eq!(
        (drawn[0]["units"].as_u64(), drawn[0]["entrants"].as_u64()),
        (Some(4), Some(20))
    );
    let out = ok(s.sale.run(&["ledger", "export", "--ledger", &redis.url()]));
    let won: BTreeSet<String> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["sku"] == "A-1")
        .map(|v| v["user"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(won.len(), 4, "{out}");
    assert!(won.iter().all(|u| entrants.contains(u)), "{won:?}");
    // Every entrant gets their answer at either gate (they entered at the
    // dead one): the drawn their order; the draw was for 4 of the 10 units,
    // so the next 6 to ask get the leftovers, first come first served, and
    // the rest are "not drawn".
    let mut answers = (0, 0);
    let mut leftovers = 0;
    for (n, user) in entrants.iter().enumerate() {
        let url = sale::order_url(&gates[n % 2].base, "test-sale", &s.token());
        let (status, body, _) = order(&http(), &url, Some(user), "A-1", true);
        assert_eq!(status, 200, "{user}: {body}");
        if body.contains("\"won\"") {
            leftovers += usize::from(!won.contains(user));
            answers.0 += 1;
        } else {
            assert_eq!(body, "{\"status\":\"not_drawn\"}", "{user}");
            answers.1 += 1;
        }
    }
    assert_eq!(answers, (10, 10));
    assert_eq!(leftovers, 6, "the 4 drawn were among the winners");
}

/// A Redis that restarts empty loses the stream's consumer group with the
/// rest: once the operator reloads the stock, winners are put on a stream
/// nobody reads unless the relays make the group again.
#[test]
fn after_a_lost_ledger_is_reloaded_every_later_winner_reaches_the_order_system() {
    let mut f = Fleet::start(2, 10);
    f.sell((0..4).map(|i| format!("before-{i}")), "A-1");
    f.delivered(4, Duration::from_secs(10));
    f.redis.restart_empty();
    for g in &f.gates {
        g.wait_for_log("ledger_lost: the ledger has no epoch any more (a Redis restarted empty?); admissions paused");
    }
    wait_for(
        "the gates to put their winners back",
        Duration::from_secs(10),
        || f.ledger_winners().len() >= 4,
    );
    ok(f.s
        .sale
        .run(&["ledger", "load", "--force", "--ledger", &f.redis.url()]));
    for g in &f.gates {
        wait_healthy(g);
    }
    f.sell((0..4).map(|i| format!("after-{i}")), "B-2");
    let journaled = f.journaled();
    assert_eq!(journaled.len(), 8);
    let delivered = f.delivered(8, Duration::from_secs(20));
    for order in journaled.keys() {
        assert!(
            delivered.contains(&order.to_lowercase()),
            "{order} never reached the order system"
        );
    }
    ok(f.audit());
}

/// Sells A-1 (stock 6) through three listed gates, two winners each, kills
/// g3 with kill -9 and restarts Redis empty: g1 and g2 put their winners
/// back, g3 cannot.
fn lost_ledger_with_g3_down() -> Fleet {
    let mut f = Fleet::start(3, 6);
    f.sell((0..6).map(|i| format!("first-{i}")), "A-1");
    f.delivered(6, Duration::from_secs(10));
    // Sold out: g1 has fetched A-1's winners to answer a latecomer.
    let (_, body, _) = order(
        &http(),
        &f.url(&f.gates[0]),
        Some("early-late"),
        "A-1",
        true,
    );
    assert!(body.contains("sold_out"), "{body}");
    f.gates[2].kill9();
    f.redis.restart_empty();
    for g in &f.gates[..2] {
        g.wait_for_log("ledger_lost: the ledger has no epoch any more (a Redis restarted empty?); admissions paused");
    }
    wait_for(
        "g1 and g2 to put their winners back",
        Duration::from_secs(10),
        || f.ledger_winners().len() >= 4,
    );
    f
}

/// A lost ledger while a gate is down: the reload is refused, naming the
/// gate, until it is back with its winners, so none of its units is sold
/// twice; then everything reconciles.
#[test]
fn a_lost_ledger_with_a_gate_down_is_reloaded_only_once_that_gate_is_back() {
    let mut f = lost_ledger_with_g3_down();
    for args in [&["--force"][..], &[]] {
        let err = fails(f.load(args));
        assert!(
            err.contains("gate g3 of sale `test-sale` has not put its winners back")
                && err.contains("--missing g3"),
            "{err}"
        );
    }
    let status = ok(f
        .s
        .sale
        .run(&["ledger", "status", "--ledger", &f.redis.url()]));
    assert!(
        status.contains("fleet gate g3: has NOT put its winners back")
            && status.contains("fleet gate g1: its winners are back"),
        "{status}"
    );
    // Before the reload g1 says only what it knows: g3's winner first-5 (in
    // the winners it fetched) gets the order g3 gave; anyone else is not told
    // "sold out" (they may be a winner g1 cannot know about yet), but 503.
    let url = f.url(&f.gates[0]);
    let (code, body, _) = order(&http(), &url, Some("in-the-gap"), "A-1", true);
    assert_eq!(code, 503, "before the reload: {body}");
    let given = f
        .journaled()
        .into_iter()
        .find(|(_, (_, u))| u == "first-5")
        .unwrap()
        .0;
    let (code, body, _) = order(&http(), &url, Some("first-5"), "A-1", true);
    assert!(code == 200 && body.contains(&given), "{body}");

    // g3 returns: its winners go back, and the load goes through.
    f.gates[2] = f.gate(3);
    ok(f.load(&["--force", "--wait", "10s"]));
    for g in &f.gates {
        wait_healthy(g);
    }
    assert_eq!(f.ledger_winners().len(), 6, "every unit sold once");
    for (i, g) in f.gates.iter().enumerate() {
        let late = format!("late-{i}");
        let (_, body, _) = order(&http(), &f.url(g), Some(&late), "A-1", true);
        assert!(!body.contains("won"), "a unit sold twice: {body}");
    }
    f.sell((0..3).map(|i| format!("second-{i}")), "B-2");
    f.delivered(9, Duration::from_secs(20));
    for g in &f.gates {
        assert_eq!(g.metric("flashsale_gate_oversell_alarms_total"), 0.0);
    }
    ok(f.audit());
}

/// The operator loads without a gate that is down (`--missing`): its units
/// are sold again, and when it returns its re-assert raises the oversell
/// alarm (log, metric), which `audit` confirms.
#[test]
fn a_gate_named_missing_raises_the_oversell_alarm_when_it_returns() {
    let mut f = lost_ledger_with_g3_down();
    let loaded = f.load(&["--force", "--missing", "g3"]);
    let warned = stderr(&loaded);
    ok(loaded);
    assert!(warned.contains("loaded without gate g3"), "{warned}");
    for g in &f.gates[..2] {
        wait_healthy(g);
    }
    // g3's two units, sold again: one to a customer g3 had already sold to.
    let agent = http();
    for user in ["first-2", "newcomer"] {
        let (_, body, _) = order(&agent, &f.url(&f.gates[0]), Some(user), "A-1", true);
        assert!(body.contains("won"), "{user}: {body}");
    }
    // Sold out now: g2 fetches A-1's winners (for the first time) to answer
    // a latecomer.
    let (_, body, _) = order(&agent, &f.url(&f.gates[1]), Some("latecomer"), "A-1", true);
    assert!(!body.contains("won"), "{body}");
    f.gates[2] = f.gate(3);
    f.gates[2].wait_for_log("oversell_alarm");
    wait_for("both alarms counted", Duration::from_secs(10), || {
        f.gates[2].metric("flashsale_gate_oversell_alarms_total") == 2.0
    });
    let said = f.gates[2].err.lock().unwrap().join("\n");
    assert!(
        said.contains("A-1: 7 winners of a stock of 6")
            && said.contains("customer first-2 has order"),
        "{said}"
    );
    // g3's winner first-5, put back after g2 fetched A-1's winners, is
    // found at g2 (it fetches again on a miss), with the order g3 gave.
    let given = f
        .journaled()
        .into_iter()
        .find(|(_, (_, user))| user == "first-5")
        .map(|(o, _)| o)
        .unwrap();
    let first5 = wait_for_some("g2 to find first-5", Duration::from_secs(5), || {
        let (_, body, _) = order(&agent, &f.url(&f.gates[1]), Some("first-5"), "A-1", true);
        body.contains("won").then_some(body)
    });
    assert!(first5.contains(&given), "{first5}");
    let out = f.audit();
    assert_eq!(out.status.code(), Some(1));
    let report = stdout(&out);
    assert!(
        report.contains("A-1: 8 sold of a stock of 6")
            && report.contains("customer first-2 holds 2 units"),
        "{report}"
    );
}

/// A ledger lost in a fair start's window: each gate puts its entrants back
/// with its winners, so the draw after the reload draws from all of them.
#[test]
fn a_ledger_lost_in_a_fair_window_gets_its_entries_back_and_the_draw_holds() {
    let s = GateSale::with_times(
        &in_secs(1),
        &in_secs(3600),
        "fair_window = \"6s\"\nfleet = [\"g1\", \"g2\"]",
    );
    let mut redis = Redis::start();
    let dir = s.sale.path().to_path_buf();
    let gates: Vec<GateProc> = (1..=2)
        .map(|i| {
            GateProc::start_in(
                &dir,
                &dir.join(format!("j{i}")),
                &["--ledger", &redis.url(), "--gate-id", &format!("g{i}")],
            )
        })
        .collect();
    let load = |url: &str, more: &[&str]| {
        let mut args = vec!["ledger", "load", "--wait", "10s", "--ledger", url];
        args.extend_from_slice(more);
        ok(s.sale.run(&args));
    };
    load(&redis.url(), &[]);
    for g in &gates {
        wait_healthy(g);
    }
    let token = s.token();
    let mut held = Vec::new();
    for (i, g) in gates.iter().enumerate() {
        for n in 0..10 {
            let (url, user) = (
                sale::order_url(&g.base, "test-sale", &token),
                format!("u{i}-{n}"),
            );
            held.push(std::thread::spawn(move || {
                order(&http(), &url, Some(&user), "A-1", true)
            }));
        }
    }
    wait_for("10 entries at each gate", Duration::from_secs(5), || {
        gates
            .iter()
            .all(|g| g.metric("flashsale_gate_draw_entries") >= 10.0)
    });
    redis.restart_empty();
    wait_for("the entrants put back", Duration::from_secs(5), || {
        redis.command("SCARD fs:{test-sale}:entries:A-1") == ":20"
    });
    load(&redis.url(), &["--force"]);
    let answers: Vec<String> = held.into_iter().map(|h| h.join().unwrap().1).collect();
    let won = answers.iter().filter(|b| b.contains("\"won\"")).count();
    let not_drawn = answers
        .iter()
        .filter(|b| b.as_str() == "{\"status\":\"not_drawn\"}")
        .count();
    assert_eq!((won, not_drawn), (10, 10), "{answers:?}");
    let out = s.sale.run(&[
        "audit",
        "--journal",
        "j1",
        "--journal",
        "j2",
        "--ledger",
        &redis.url(),
    ]);
    assert!(out.status.success(), "{}", stdout(&out));
}

/// With `[gate] fleet` listed, a gate whose id is not in it is refused, and
/// so is a load naming a stranger missing.
#[test]
fn a_gate_or_a_missing_name_outside_the_listed_fleet_is_refused() {
    let f = Fleet::start(1, 3);
    let err = fails(
        f.s.gate_command("j9")
            .args(["--gate-id", "g9", "--ledger", &f.redis.url()])
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("gate id `g9` is not in `[gate] fleet` (g1)"),
        "{err}"
    );
    let err = fails(f.load(&["--force", "--missing", "g9"]));
    assert!(
        err.contains("--missing g9: not a gate of `[gate] fleet`"),
        "{err}"
    );
}

/// An order system down for everyone for 20 s: every gate keeps retrying
/// its own winners (none is taken over from a live gate), and once it is
/// back each winner is accepted exactly once.
#[test]
fn an_order_system_down_for_20_s_gets_each_winner_once_from_the_gate_that_holds_it() {
    let first = std::sync::Mutex::new(None::<std::time::Instant>);
    let orders = order_system(move |_, _, _| {
        let since = *first
            .lock()
            .unwrap()
            .get_or_insert_with(std::time::Instant::now);
        if since.elapsed() < Duration::from_secs(20) {
            503
        } else {
            200
        }
    });
    let f = Fleet::with_receiver(3, 12, orders);
    f.sell((0..12).map(|i| format!("c{i}")), "A-1");
    let delivered = f.delivered(12, Duration::from_secs(60));
    assert_eq!(delivered.len(), 12);
    let got = f.orders.got.lock().unwrap().clone();
    for order in &delivered {
        let accepted = got
            .iter()
            .filter(|(k, _, st)| k == order && *st == 200)
            .count();
        assert_eq!(accepted, 1, "{order} accepted {accepted} times");
    }
    for g in &f.gates {
        assert_eq!(g.metric("flashsale_gate_forward_dead_letters_total"), 0.0);
        assert!(
            !g.err
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("forward_took_over")),
            "a live gate's winners were taken over"
        );
    }
    ok(f.audit());
}

/// One winner the order system fails forever, among 50 sold by three gates:
/// the 49 others are delivered at once, the poison one is set aside once.
#[test]
fn a_poison_winner_among_50_in_a_fleet_is_set_aside_and_the_others_delivered() {
    let orders = order_system(|_, _, body| {
        if body.contains("\"user\":\"odd-7\"") {
            500
        } else {
            200
        }
    });
    let f = Fleet::with(3, 50, orders, "forward_attempts = 3");
    let users = (0..50).map(|i| {
        if i == 4 {
            "odd-7".to_string()
        } else {
            format!("even-{i}")
        }
    });
    f.sell(users, "A-1");
    let delivered = f.delivered(49, Duration::from_secs(15));
    assert_eq!(delivered.len(), 49);
    wait_for(
        "the poison winner set aside",
        Duration::from_secs(15),
        || {
            f.gates
                .iter()
                .map(|g| g.metric("flashsale_gate_forward_gave_up_total"))
                .sum::<f64>()
                == 1.0
        },
    );
    let letters: Vec<String> = (1..=3)
        .flat_map(|i| {
            std::fs::read_to_string(f.s.sale.path().join(format!("j{i}/dead-letters.jsonl")))
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(letters[0].contains("\"user\":\"odd-7\""), "{letters:?}");
    let out = f.audit();
    assert_eq!(out.status.code(), Some(1));
    let said = stdout(&out);
    assert!(said.contains("(odd-7) is in the dead letters"), "{said}");
    assert!(
        said.contains("(odd-7) never reached the order system"),
        "{said}"
    );
    assert_eq!(said.matches("problem:").count(), 2, "{said}");
}

/// `flashsale audit` over a fleet's journals, its ledger and the order
/// system's list: a clean sale passes; each planted fault fails it, named.
#[test]
fn audit_passes_a_clean_sale_and_names_each_planted_fault() {
    let f = Fleet::start(2, 3);
    let urls: Vec<String> = f.gates.iter().map(|g| f.url(g)).collect();
    let agent = http();
    for i in 0..5 {
        order(&agent, &urls[i % 2], Some(&format!("a{i}")), "A-1", true);
    }
    let delivered = f.delivered(3, Duration::from_secs(10));
    let dir = f.s.sale.path();
    let list = dir.join("delivered.txt");
    let write_list = |ids: &[String]| std::fs::write(&list, ids.join("\n") + "\n").unwrap();
    let ids: Vec<String> = delivered.iter().cloned().collect();
    write_list(&ids);
    let audit = || {
        f.s.sale.run(&[
            "audit",
            "--journal",
            "j1",
            "--journal",
            "j2",
            "--ledger",
            &f.redis.url(),
            "--delivered",
            list.to_str().unwrap(),
        ])
    };
    let out = ok(audit());
    assert!(
        out.contains("A-1: 3 sold of 3") && out.contains("ok: every promise held"),
        "{out}"
    );

    // The order system reports one delivery twice.
    write_list(&[ids.clone(), vec![ids[0].clone()]].concat());
    let out = audit();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains(&format!("order {} was received 2 times", ids[0])),
        "{}",
        stdout(&out)
    );
    write_list(&ids);

    // A winner deleted from the ledger.
    let ledger_winners = f.ledger_winners();
    let ((sku, user), order_id) = ledger_winners.iter().next().unwrap();
    f.redis
        .command(&format!("HDEL fs:{{test-sale}}:w:{sku} {user}"));
    let out = audit();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains(&format!(
            "order {order_id} ({sku}, {user}) is in the journal"
        )),
        "{}",
        stdout(&out)
    );
    f.redis
        .command(&format!("HSET fs:{{test-sale}}:w:{sku} {user} {order_id}"));
    ok(audit());

    // A journal line removed.
    let (path, kept) = (1..=2)
        .map(|i| dir.join(format!("j{i}/winners.jsonl")))
        .find_map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            (!text.is_empty()).then_some((p, text))
        })
        .unwrap();
    // Its attempt too: the gate journals both (a fleet's winner).
    let first_winner = journal_winners(&kept)[0].clone();
    let first = first_winner["order"].to_string();
    std::fs::write(
        &path,
        kept.lines()
            .filter(|l| !l.contains(&first))
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let out = audit();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("in none of the journals given"),
        "{}",
        stdout(&out)
    );
    std::fs::write(&path, &kept).unwrap();
    ok(audit());

    // The ledger offers less than site.toml's stock: units stranded.
    f.redis.command("HSET fs:{test-sale}:meta total:B-2 1");
    let out = audit();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("B-2: 2 units neither sold nor for sale (the ledger offers 1)"),
        "{}",
        stdout(&out)
    );
    f.redis.command("HSET fs:{test-sale}:meta total:B-2 3");
    ok(audit());

    // A unit sold twice: a fourth winner of a stock of 3.
    let mut extra = first_winner;
    extra["order"] = "g1-999999".into();
    extra["user"] = "planted".into();
    std::fs::write(&path, format!("{kept}{extra}\n")).unwrap();
    let out = audit();
    assert_eq!(out.status.code(), Some(1));
    let said = stdout(&out);
    assert!(
        said.contains("A-1: 4 sold of a stock of 3") && said.contains("g1-999999"),
        "{said}"
    );
}

/// `redis-cli` against the fleet's ledger, whole answer.
fn redis_cli(f: &Fleet, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &f.redis.port.to_string()])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Appends attempt lines to gate `i`'s journal, as if it stopped right
/// after journaling them, before the ledger answered.
fn journal_attempts(f: &Fleet, i: usize, epoch: &str, attempts: &[(&str, &str)]) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(f.s.sale.path().join(format!("j{i}/winners.jsonl")))
        .unwrap();
    for (order, user) in attempts {
        let line = serde_json::json!({
            "attempt": {"order": order, "sale": "test-sale", "sku": "A-1", "user": user,
                        "time": "2026-12-05T00:00:00.000Z", "gate": format!("g{i}")},
            "epoch": epoch,
        });
        writeln!(file, "{line}").unwrap();
    }
}

/// A fleet's gate journals each attempt while the ledger decides it (the
/// two fsyncs overlap). One killed between the two has attempts nobody
/// answered for: at its next start it asks the ledger, and the ones the
/// ledger took are winners (delivered, repeats get their order), the rest
/// void — their order numbers never given again. With the ledger loaded
/// again since, nobody can tell: they count as winners. With the ledger
/// silent, the gate does not start, and says why.
#[test]
fn a_gate_stopped_between_its_attempts_and_the_ledgers_answer_settles_them_at_its_start() {
    let mut f = Fleet::start(1, 6);
    f.sell(["ann".to_string(), "bob".to_string()], "A-1");
    f.gates[0].kill9();
    let epoch = redis_cli(&f, &["HGET", "fs:{test-sale}:meta", "epoch"]);
    // The ledger took carol's attempt (its own script, as the gate sends
    // it); dave's and erin's never reached it.
    let take = concat!(env!("CARGO_MANIFEST_DIR"), "/src/ledger/scripts/take.lua");
    let taken = redis_cli(
        &f,
        &[
            "--eval",
            take,
            "fs:{test-sale}:meta",
            "fs:{test-sale}:orders",
            ",",
            "fs:{test-sale}:",
            &epoch,
            "g1",
            "A-1",
            "carol",
            "g1-000003",
        ],
    );
    assert!(taken.starts_with("won\ng1-000003"), "{taken}");
    journal_attempts(
        &f,
        1,
        &epoch,
        &[
            ("g1-000003", "carol"),
            ("g1-000004", "dave"),
            ("g1-000005", "erin"),
        ],
    );
    std::thread::sleep(Duration::from_millis(1100)); // its heartbeat goes stale
    f.gates[0] = f.gate(1);
    wait_healthy(&f.gates[0]);
    let settled = f.gates[0].wait_for_log("attempts_settled");
    assert_eq!(settled["voided"].as_u64(), Some(2), "{settled}");
    // Carol; and bob too when the kill came before his winner line (it
    // follows the answer: his attempt was on disk when he was answered).
    let won = settled["winners"].as_u64().unwrap();
    assert!((1..=2).contains(&won), "{settled}");
    let url = f.url(&f.gates[0]);
    let carol = order(&http(), &url, Some("carol"), "A-1", true).1;
    assert!(carol.contains("g1-000003"), "carol's order stands: {carol}");
    let dave = order(&http(), &url, Some("dave"), "A-1", true).1;
    assert!(
        dave.contains("won") && dave.contains("g1-000006"),
        "a new number: {dave}"
    );
    let journaled: Vec<String> = journal_winners(
        &std::fs::read_to_string(f.s.sale.path().join("j1/winners.jsonl")).unwrap(),
    )
    .iter()
    .map(|w| w["order"].as_str().unwrap().to_string())
    .collect();
    assert_eq!(
        journaled,
        ["g1-000001", "g1-000002", "g1-000003", "g1-000006"]
    );
    assert!(f
        .delivered(4, Duration::from_secs(20))
        .contains("g1-000003"));
    ok(f.audit());

    // Loaded again since the attempt: kept as a winner, and said.
    f.gates[0].kill9();
    journal_attempts(&f, 1, &epoch, &[("g1-000007", "frank")]);
    ok(f.load(&["--force"]));
    std::thread::sleep(Duration::from_millis(1100));
    f.gates[0] = f.gate(1);
    let kept = f.gates[0].wait_for_log("attempts_kept: the ledger was loaded again since these attempts; nobody can tell which won, so they count as winners (one may have been answered)");
    assert_eq!(kept["attempts"].as_u64(), Some(1), "{kept}");
    wait_healthy(&f.gates[0]);
    let frank = order(&http(), &f.url(&f.gates[0]), Some("frank"), "A-1", true).1;
    assert!(frank.contains("g1-000007"), "{frank}");

    // The ledger silent: the gate does not start, and says what to do.
    f.gates[0].kill9();
    journal_attempts(&f, 1, "another", &[("g1-000008", "gus")]);
    f.redis.kill();
    let out =
        f.s.gate_command(f.s.sale.path().join("j1"))
            .args(["--ledger", &f.redis.url(), "--gate-id", "g1"])
            .output()
            .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("1 attempt(s) whose answer the ledger")
            && err.contains("start the gate once the ledger answers"),
        "{err}"
    );
}

/// A fleet's journal with an unresolved attempt, taken over by a gate run
/// alone: no ledger to ask, so the attempt counts as a winner (its customer
/// may have been told so) and is journaled as one.
#[test]
fn a_fleets_attempt_run_by_a_gate_alone_counts_as_a_winner() {
    let s = GateSale::new("");
    std::fs::create_dir_all(s.journal()).unwrap();
    let attempt = serde_json::json!({
        "attempt": {"order": "g1-000001", "sale": "test-sale", "sku": "A-1", "user": "ann",
                    "time": "2026-12-05T00:00:00.000Z", "gate": "g1"},
        "epoch": "e1",
    });
    std::fs::write(s.journal().join("winners.jsonl"), format!("{attempt}\n")).unwrap();
    let gate = GateProc::start(&s, &["--quota", "5", "--gate-id", "g1"]);
    let kept = gate.wait_for_log("attempts_kept: the journal holds a fleet's unresolved attempts and this gate has no ledger to ask; they count as winners");
    assert_eq!(kept["attempts"].as_u64(), Some(1), "{kept}");
    let ann = order(&http(), &gate.url(&s), Some("ann"), "A-1", true).1;
    assert!(ann.contains("g1-000001"), "{ann}");
    let bob = order(&http(), &gate.url(&s), Some("bob"), "A-1", true).1;
    assert!(
        bob.contains("g1-000002"),
        "numbered after the attempt: {bob}"
    );
    let lines = std::fs::read_to_string(s.journal().join("winners.jsonl")).unwrap();
    assert_eq!(
        lines.lines().count(),
        3,
        "the attempt, its winner line, bob: {lines}"
    );
    let orders: Vec<Value> = s.winners().iter().map(|w| w["order"].clone()).collect();
    assert_eq!(orders, ["g1-000001", "g1-000002"]);
}

/// A fleet's gate given its id again on an empty journal (a new disk)
/// numbers its orders after the highest the ledger has of it: an order id
/// is never given twice.
#[test]
fn a_gate_on_a_new_journal_numbers_its_orders_after_the_ledgers() {
    let mut f = Fleet::start(1, 6);
    f.sell(["ann".to_string(), "bob".to_string()], "A-1");
    f.gates[0].kill9();
    std::fs::rename(f.s.sale.path().join("j1"), f.s.sale.path().join("j1-lost")).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    f.gates[0] = f.gate(1);
    wait_healthy(&f.gates[0]);
    let cy = order(&http(), &f.url(&f.gates[0]), Some("cy"), "A-1", true).1;
    assert!(cy.contains("g1-000003"), "{cy}");
}

/// Loading the stock again over a sale with winners is refused (in one step
/// with the look for winners), and forced keeps them.
#[test]
fn a_ledger_with_winners_is_loaded_again_only_by_force_and_keeps_them() {
    let f = Fleet::start(1, 3);
    let url = f.url(&f.gates[0]);
    for u in ["x", "y"] {
        assert!(order(&http(), &url, Some(u), "A-1", true).1.contains("won"));
    }
    let err = fails(
        f.s.sale
            .run(&["ledger", "load", "--ledger", &f.redis.url()]),
    );
    assert!(err.contains("has 2 winners in the ledger"), "{err}");
    ok(f.s
        .sale
        .run(&["ledger", "load", "--force", "--ledger", &f.redis.url()]));
    assert_eq!(f.ledger_winners().len(), 2, "the winners are kept");
}

/// `ledger clear` deletes a sale's stock and winners: refused while a gate
/// of the sale is live, unless forced.
#[test]
fn ledger_clear_is_refused_while_a_gate_is_live() {
    let f = Fleet::start(1, 3);
    let url = f.redis.url();
    let err = fails(
        f.s.sale
            .run(&["ledger", "clear", "--yes", "--ledger", &url]),
    );
    assert!(
        err.contains("has live gates") && err.contains("g1 ("),
        "{err}"
    );
    assert!(f.ledger_status_epoch_present(), "nothing was deleted");
    ok(f.s
        .sale
        .run(&["ledger", "clear", "--yes", "--force", "--ledger", &url]));
    assert!(!f.ledger_status_epoch_present());
}

#[test]
fn entries_close_on_the_ledgers_clock_whatever_each_gates_clock_says() {
    // Three gates whose clocks are 1.9 s behind, right and 1.9 s ahead (the
    // tolerance is 2 s): entries end 5 s after the start by the ledger's
    // clock, for all of them.
    let s = GateSale::with_times(&in_secs(2), &in_secs(3600), "fair_window = \"5s\"");
    let redis = Redis::start();
    ok(s.sale.run(&["ledger", "load", "--ledger", &redis.url()]));
    let dir = s.sale.path().to_path_buf();
    let offsets = [-1900i64, 0, 1900];
    let gates: Vec<GateProc> = offsets
        .iter()
        .enumerate()
        .map(|(i, off)| {
            let off = off.to_string();
            GateProc::start_in(
                &dir,
                &dir.join(format!("j{i}")),
                &[
                    "--ledger",
                    &redis.url(),
                    "--gate-id",
                    &format!("g{i}"),
                    "--clock-offset-ms",
                    &off,
                ],
            )
        })
        .collect();
    for g in &gates {
        wait_healthy(g);
    }
    let until = gates[1].wait_for_log("fair_start")["until"]
        .as_str()
        .map(|t| {
            chrono::DateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f %:z")
                .unwrap_or_else(|e| panic!("{t}: {e}"))
                .timestamp_millis()
        })
        .unwrap();
    let token = s.token();
    let url = |g: &GateProc| sale::order_url(&g.base, "test-sale", &token);
    let now_ms = || chrono::Utc::now().timestamp_millis();
    let sleep_until =
        |at: i64| std::thread::sleep(Duration::from_millis((at - now_ms()).max(0) as u64));
    // Asking for a receipt: an entry is answered 202 at once.
    let enter =
        |g: &GateProc, user: &str| order(&http(), &url(g), Some(user), "A-1&receipt=1", true);
    let entered = |a: &(u16, String, Option<String>)| a.0 == 202 && a.1.contains("\"receipt\"");
    // 0.3 s before the end, at the lagging gate (its clock: 2.2 s before).
    sleep_until(until - 300);
    let lagging = enter(&gates[0], "on-time-at-the-lagging-gate");
    assert!(entered(&lagging), "{lagging:?}");
    // 1 s before the end at the gate ahead (its clock: 0.9 s past the end):
    // still an entry, the ledger's clock says so.
    let ahead = enter(&gates[2], "on-time-at-the-gate-ahead");
    assert!(entered(&ahead), "{ahead:?}");
    // 0.5 s after the end at the lagging gate (its clock: 1.4 s before it):
    // late, whatever that gate's clock says — answered after the draw.
    sleep_until(until + 500);
    let late = enter(&gates[0], "late-at-the-lagging-gate");
    assert!(!entered(&late) && late.0 == 200, "{late:?}");
    // One draw; its set holds both on-time orders and not the late one.
    for g in &gates {
        g.wait_for_log("draw_done");
    }
    let leaf = |u: &str| flashsale::sale::draw::leaf(&s.key, "test-sale", "A-1", u);
    let published: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("j1/draw.json")).unwrap()).unwrap();
    let leaves = published["items"][0]["leaves"].as_array().unwrap();
    for (u, is_in) in [
        ("on-time-at-the-lagging-gate", true),
        ("on-time-at-the-gate-ahead", true),
        ("late-at-the-lagging-gate", false),
    ] {
        assert_eq!(
            leaves.contains(&Value::from(leaf(u))),
            is_in,
            "{u}: {published}"
        );
    }
    // The gate ahead took A-1's lease first and held it, renewed, while it
    // waited for the ledger's clock to end the window: it alone drew A-1;
    // each item was drawn once in the fleet.
    let drawn = |i: usize, sku: &str| -> usize {
        std::fs::read_to_string(dir.join(format!("j{i}/entries.jsonl")))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&format!("\"drawn\":\"{sku}\"")))
            .count()
    };
    for sku in ["A-1", "B-2", "C-3"] {
        assert_eq!((0..3).map(|i| drawn(i, sku)).sum::<usize>(), 1, "{sku}");
    }
    assert_eq!(drawn(2, "A-1"), 1, "the gate ahead drew A-1");
    gates[2].wait_for_log("draw_lease_renewed");
}

/// `flashsale watch --json` alongside a sale on two gates and a ledger: every
/// snapshot at most a second old, sold never above stock, and in the quiet
/// moments between bursts its ledger counts equal what the gates' metrics
/// say; at the end equal to `ledger status` and the ledger's export.
#[test]
fn watch_follows_the_fleet_exactly() {
    let f = Fleet::start(2, 10);
    let admins: Vec<String> = f.gates.iter().map(|g| g.admin.clone()).collect();
    // sale.js as published: a directory standing in for the bucket.
    ok(f.s.sale.run(&["build"]));
    let mut watcher = Command::new(bin())
        .args([
            "watch",
            "--target",
            "dir:public",
            "--json",
            "--every",
            "250ms",
            "--toggle-url",
            "none",
        ])
        .args(["--gates", &admins.join(","), "--ledger", &f.redis.url()])
        .current_dir(f.s.sale.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = lines.clone();
        let out = watcher.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in std::io::BufRead::lines(std::io::BufReader::new(out)).map_while(Result::ok) {
                lines.lock().unwrap().push(l);
            }
        })
    };
    let quiet = || std::thread::sleep(Duration::from_millis(1500));
    quiet();
    f.sell((0..10).map(|i| format!("a{i}")), "A-1");
    quiet();
    f.sell((0..10).map(|i| format!("b{i}")), "B-2");
    f.sell((0..5).map(|i| format!("c{i}")), "C-3");
    let agent = http();
    for i in 0..20 {
        let (_, body, _) = order(
            &agent,
            &f.url(&f.gates[i % 2]),
            Some(&format!("late{i}")),
            "A-1",
            true,
        );
        assert!(body.contains("sold_out"), "{body}");
    }
    quiet();
    let _ = watcher.kill();
    let _ = watcher.wait();
    reader.join().unwrap();
    let snapshots: Vec<Value> = lines
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(snapshots.len() >= 12, "{} snapshots", snapshots.len());
    let mut quiet_checked = 0;
    for (i, s) in snapshots.iter().enumerate() {
        assert!(s["age_ms"].as_u64().unwrap() <= 1000, "{s}");
        assert_eq!(s["counts_from"], "ledger", "{s}");
        assert_eq!(s["bucket"]["state"], "pending", "{s}");
        for item in s["items"].as_array().unwrap() {
            assert!(item["sold"].as_u64() <= item["stock"].as_u64(), "{item}");
        }
        assert!(
            s["gates"]
                .as_array()
                .unwrap()
                .iter()
                .all(|g| g["up"] == true),
            "{s}"
        );
        // A quiet moment — no order answered since the snapshot before, nor
        // before the next (an order in flight during this one would be):
        // the ledger and the gates' own counts agree exactly.
        let still = |s: &Value| s["orders_per_second"].as_f64() == Some(0.0);
        let next_still = snapshots.get(i + 1).is_some_and(still);
        if i >= 2 && still(s) && still(&snapshots[i - 1]) && next_still {
            let won_at_gates: u64 = s["gates"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["requests"]["won"].as_u64().unwrap_or(0))
                .sum();
            assert_eq!(won_at_gates, s["won"].as_u64().unwrap(), "{s}");
            quiet_checked += 1;
        }
    }
    assert!(quiet_checked >= 3, "only {quiet_checked} quiet snapshots");
    let last = snapshots.last().unwrap();
    assert_eq!(last["won"], 25, "{last}");
    let sold_out = last["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["requests"]["sold_out"].as_u64().unwrap_or(0))
        .sum::<u64>();
    assert_eq!(sold_out, 20);
    let status: Value = serde_json::from_str(&ok(f.s.sale.run(&[
        "ledger",
        "status",
        "--json",
        "--ledger",
        &f.redis.url(),
    ])))
    .unwrap();
    for item in last["items"].as_array().unwrap() {
        let sku = item["sku"].as_str().unwrap();
        assert_eq!(item["sold"], status["items"][sku]["winners"], "{sku}");
        assert_eq!(item["left"], status["items"][sku]["remaining"], "{sku}");
        assert_eq!(item["stock"], status["items"][sku]["stock"], "{sku}");
    }
    let export = ok(f
        .s
        .sale
        .run(&["ledger", "export", "--ledger", &f.redis.url()]));
    assert_eq!(export.lines().count(), 25, "{export}");
    // And `flashsale audit` (journals, ledger) finds the same figures.
    let audited = audit(
        &f.s.sale,
        &["j1", "j2"],
        &f.orders,
        &["--ledger", &f.redis.url(), "--json"],
    );
    let report: Value = serde_json::from_str(&stdout(&audited)).unwrap();
    assert_eq!(report["winners"], last["won"], "{report}");
    for item in last["items"].as_array().unwrap() {
        let a = report["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["sku"] == item["sku"])
            .unwrap();
        assert_eq!(a["sold"], item["sold"], "{a}");
        assert_eq!(a["available"], item["left"], "{a}");
    }
}

/// `flashsale watch` in a real terminal (tmux at a fixed size).
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(dir: &std::path::Path, size: (u16, u16), command: &str) -> Tmux {
        let socket = format!(
            "flashsale-watch-{}",
            std::process::id() as u64 * 1000 + u64::from(size.0)
        );
        let status = Command::new("tmux")
            .args(["-L", &socket, "new-session", "-d", "-s", "w"])
            .args(["-x", &size.0.to_string(), "-y", &size.1.to_string(), "-c"])
            .arg(dir)
            .arg(command)
            .env("TERM", "xterm-256color")
            .status()
            .expect("tmux (Debian package; scripts/test installs it)");
        assert!(status.success());
        Tmux { socket }
    }

    fn screen(&self) -> String {
        let o = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "w"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// The screen with what changes from run to run masked: the time, the
/// age, how many seconds the timeline holds so far.
fn masked(screen: &str) -> String {
    /// `text` with the number after `before` (spaces allowed in between,
    /// kept as they are counted) replaced by `#`s to the field's width.
    fn mask_after(text: &str, before: &str, width: usize) -> String {
        let Some(at) = text.find(before) else {
            return text.to_string();
        };
        let from = at + before.len();
        let field: String = text[from..].chars().take(width).collect();
        let keep = field
            .chars()
            .take_while(|c| *c == ' ' || c.is_ascii_digit())
            .count();
        let mut out = text.to_string();
        out.replace_range(from..from + keep, &"#".repeat(keep));
        out
    }
    screen
        .lines()
        .map(|l| {
            let mut l = l.trim_end().to_string();
            if let Some(at) = l.find("  age ") {
                // The clock: HH:MM:SS before it.
                l.replace_range(at - 8..at, "HH:MM:SS");
                l = mask_after(&l, "  age", 6);
            }
            mask_after(&l, "orders/s, last ", 4)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Compares `screen` with `tests/integration/golden/<name>`
/// (FLASHSALE_BLESS=1 writes it).
fn golden(name: &str, screen: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/integration/golden")
        .join(name);
    if std::env::var_os("FLASHSALE_BLESS").is_some() {
        std::fs::write(&path, screen).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(screen, want, "{name} (FLASHSALE_BLESS=1 rewrites it)");
}

#[test]
fn the_watch_screen_in_a_real_terminal_during_and_after_a_sale() {
    let f = Fleet::start(2, 10);
    let admins: Vec<String> = f.gates.iter().map(|g| g.admin.clone()).collect();
    let command = format!(
        "{} watch --every 300ms --toggle-url none --gates {} --ledger {}",
        bin().display(),
        admins.join(","),
        f.redis.url()
    );
    let during = Tmux::start(f.s.sale.path(), (120, 40), &command);
    // A rush on two gates while the screen watches: some win, most lose.
    let stop = Arc::new(AtomicBool::new(false));
    let rush = {
        let (urls, stop) = (vec![f.url(&f.gates[0]), f.url(&f.gates[1])], stop.clone());
        std::thread::spawn(move || {
            let agent = http();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && i < 20_000 {
                order(&agent, &urls[i % 2], Some(&format!("u{i}")), "A-1", true);
                i += 1;
            }
        })
    };
    let seen = wait_for_some(
        "the screen to show the rush",
        Duration::from_secs(15),
        || {
            let s = during.screen();
            let busy = s
                .lines()
                .any(|l| l.contains("orders/s, last") && !l.contains("now 0,"));
            (busy && s.contains("A-1") && s.contains("g1") && s.contains("g2")).then_some(s)
        },
    );
    stop.store(true, Ordering::Relaxed);
    rush.join().unwrap();
    eprintln!("{seen}");
    for needle in [
        "items",
        "gates (per second)",
        "sold out",
        "p99 ms",
        "backlog",
        "ledger up",
    ] {
        assert!(seen.contains(needle), "{needle}:\n{seen}");
    }
    drop(during);
    // After the sale, nothing moving: the layout, golden, at both sizes.
    std::thread::sleep(Duration::from_millis(500));
    for (w, h) in [(120, 40), (80, 24)] {
        let after = Tmux::start(f.s.sale.path(), (w, h), &command);
        let screen = wait_for_some("a settled screen", Duration::from_secs(15), || {
            let s = after.screen();
            // Two snapshots in: rates known (0), p99 empty.
            (s.contains("last 2 s") || s.contains("last 3 s")).then_some(s)
        });
        golden(&format!("watch-{w}x{h}.txt"), &masked(&screen));
    }
}

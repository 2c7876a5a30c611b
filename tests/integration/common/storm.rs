//! A storm of customers for the failover tests: threads ordering one after
//! another, each a new customer, until told to stop (bounded in count and
//! time), and the checks every failover must pass afterwards.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::gate::{order, receiver, wait_healthy, GateProc, GateSale, Receiver};
use super::*;

/// A sale on a ledger with `stock` units of A-1, loaded, and gate `g1`
/// forwarding its winners to an order system that takes them all.
pub(crate) struct Staged {
    pub(crate) s: GateSale,
    pub(crate) orders: Receiver,
    pub(crate) gate: GateProc,
    /// The order URL.
    pub(crate) url: String,
}

/// `gate_toml`: the `[gate]` lines naming the ledger.
pub(crate) fn staged(gate_toml: &str, stock: usize) -> Staged {
    let s = GateSale::new(gate_toml);
    let text = s
        .sale
        .read("items/a-1.md")
        .replace("stock = 10", &format!("stock = {stock}"));
    s.sale.write("items/a-1.md", &text);
    ok(s.sale.run(&["ledger", "load"]));
    let orders = receiver(0);
    let forward = format!("{}/orders", orders.base);
    let gate = GateProc::start(&s, &["--gate-id", "g1", "--forward", &forward]);
    wait_healthy(&gate);
    let url = flashsale::sale::order_url(&gate.base, "test-sale", &s.token());
    Staged {
        s,
        orders,
        gate,
        url,
    }
}

/// When, who, the status and the body of one order.
pub(crate) type Answer = (Instant, String, u16, String);

pub(crate) struct Storm {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    pub(crate) answers: Arc<Mutex<Vec<Answer>>>,
}

impl Storm {
    /// `threads` customers at a time on `url`, each ordering `sku` and then
    /// pausing 60 ms; at most `within` and 5,000 orders per thread.
    pub(crate) fn start(url: &str, sku: &str, threads: usize, within: Duration) -> Storm {
        let stop = Arc::new(AtomicBool::new(false));
        let answers: Arc<Mutex<Vec<Answer>>> = Default::default();
        let started = Instant::now();
        let threads = (0..threads)
            .map(|t| {
                let (url, sku) = (url.to_string(), sku.to_string());
                let (stop, answers) = (stop.clone(), answers.clone());
                std::thread::spawn(move || {
                    let agent = http();
                    for n in 0..5000 {
                        if stop.load(Ordering::Relaxed) || started.elapsed() > within {
                            break;
                        }
                        let user = format!("c{t}-{n}");
                        // A customer answered 503 presses again, up to 3 times.
                        let mut tries = 0;
                        let (status, body) = loop {
                            let (status, body, _) = order(&agent, &url, Some(&user), &sku, true);
                            tries += 1;
                            if status != 503 || tries == 4 {
                                break (status, body);
                            }
                            std::thread::sleep(Duration::from_millis(200));
                        };
                        answers
                            .lock()
                            .unwrap()
                            .push((Instant::now(), user, status, body));
                        std::thread::sleep(Duration::from_millis(60));
                    }
                })
            })
            .collect();
        Storm {
            stop,
            threads,
            answers,
        }
    }

    /// The first customer answered "won" after `since` (waits up to `within`).
    pub(crate) fn first_won_after(&self, since: Instant, within: Duration) -> Option<Instant> {
        let deadline = Instant::now() + within;
        loop {
            let first = self
                .answers
                .lock()
                .unwrap()
                .iter()
                .filter(|a| a.0 > since && won(a))
                .map(|a| a.0)
                .min();
            if first.is_some() || Instant::now() > deadline {
                return first;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the customers; every answer.
    pub(crate) fn stop(self) -> Vec<Answer> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let answers = self.answers.lock().unwrap().clone();
        answers
    }
}

pub(crate) fn won(a: &Answer) -> bool {
    a.2 == 200 && a.3.contains("\"won\"")
}

/// What every failover must leave: each acknowledged winner in the ledger
/// (`ledger export` through `ledger_flag`), no customer twice, no more
/// winners than `stock`, only 200 or 503 answered, and every winner of the
/// ledger delivered to `orders`. Returns the ledger's winners.
pub(crate) fn assert_nothing_lost(
    s: &GateSale,
    ledger_flag: &[&str],
    answers: &[Answer],
    stock: usize,
    orders: &Receiver,
) -> usize {
    let mut args = vec!["ledger", "export"];
    args.extend(ledger_flag);
    let export = ok(s.sale.run(&args));
    let ledger: Vec<serde_json::Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let users: BTreeSet<&str> = ledger.iter().filter_map(|e| e["user"].as_str()).collect();
    assert_eq!(users.len(), ledger.len(), "a customer twice");
    let won: Vec<&Answer> = answers.iter().filter(|a| won(a)).collect();
    for (_, user, _, body) in &won {
        assert!(
            users.contains(user.as_str()),
            "acknowledged winner {user} lost: {body}"
        );
    }
    assert!(ledger.len() <= stock, "oversold: {}", ledger.len());
    let odd: Vec<(u16, &str)> = answers
        .iter()
        .filter(|a| a.2 != 200 && a.2 != 503)
        .map(|a| (a.2, a.3.as_str()))
        .collect();
    assert!(odd.is_empty(), "neither 200 nor 503: {odd:?}");
    // Every acknowledged winner reaches the order system. (A take whose
    // replicas did not confirm it in time was answered 503: when that
    // customer never pressed again it stays in the ledger, unacknowledged
    // and undelivered, and the audit names it stranded.)
    let orders_of: BTreeSet<String> = won
        .iter()
        .map(|a| json_field(&a.3, "order").to_ascii_lowercase())
        .collect();
    wait_for("every winner delivered", Duration::from_secs(30), || {
        let accepted: BTreeSet<String> = orders.accepted().into_iter().collect();
        orders_of.is_subset(&accepted)
    });
    let stranded = ledger.len().saturating_sub(won.len());
    eprintln!(
        "{} acknowledged winners, all in the ledger and delivered; {stranded} unacknowledged",
        won.len()
    );
    ledger.len()
}

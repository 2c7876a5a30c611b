//! A fair start through the real `flashsale gate`: entries held until the
//! draw, a kill -9 during the window, the draw made once, and
//! `flashsale draw verify` agreeing with the published winners.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::gate::{order, receiver, GateProc, GateSale};
use crate::common::*;
use serde_json::Value;

/// Orders `users` at once in threads (each held until the draw, unless
/// `form` asks for a receipt); their answers.
fn order_all(
    url: &str,
    users: &[String],
    form: &'static str,
) -> Vec<std::thread::JoinHandle<(String, u16, String)>> {
    users
        .iter()
        .map(|u| {
            let (url, u) = (url.to_string(), u.clone());
            std::thread::spawn(move || {
                let (status, body, _) = order(&http(), &url, Some(&u), form, true);
                (u, status, body)
            })
        })
        .collect()
}

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_gate_killed_during_the_window_loses_no_entry_and_draws_once() {
    // Started a second ago; entries for 7 s more (the client waits 10 s).
    let s = GateSale::with_times(&in_secs(-1), &in_secs(3600), "fair_window = \"8s\"");
    // The order system, which gets the drawn winners as any winner.
    let orders = receiver(0);
    let forward = format!("{}/orders", orders.base);
    let args = [
        "--quota",
        "5",
        "--gate-id",
        "g1",
        "--forward",
        forward.as_str(),
    ];
    let mut gate = GateProc::start(&s, &args);
    let started = gate.wait_for_log("fair_start");
    let commitment = started["commitment"].as_str().unwrap().to_string();
    let url = gate.url(&s);
    let first: Vec<String> = (0..30).map(|i| format!("early-{i}")).collect();
    let held = order_all(&url, &first, "A-1");
    wait_for("30 entries", Duration::from_secs(5), || {
        gate.metric("flashsale_gate_draw_entries") >= 30.0
    });
    // Every entry was answered by nobody yet: they wait for the draw.
    gate.kill9();
    for h in held {
        let (u, status, _) = h.join().unwrap();
        assert_eq!(status, 0, "{u}: the connection died with the gate");
    }
    let entries = s.journal().join("entries.jsonl");
    assert_eq!(
        lines(&entries).len(),
        30,
        "every entry on disk before kill -9"
    );
    // Back during the window: the entries are back, and more come.
    let gate = GateProc::start(&s, &args);
    let back = gate.wait_for_log("fair_start");
    assert_eq!(back["replayed"], 30, "{back}");
    let url = gate.url(&s);
    let second: Vec<String> = (0..20).map(|i| format!("later-{i}")).collect();
    let everyone: Vec<String> = first.iter().chain(&second).cloned().collect();
    // The first 30 ask again for a receipt (their first requests died):
    // in the draw, told at once, with the receipt and when to ask for the
    // result; the 20 new ones enter, held until the draw.
    let told: Vec<(String, u16, String)> = order_all(&url, &first, "A-1&receipt=1")
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let mut answers: Vec<(String, u16, String)> = order_all(&url, &second, "A-1")
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    for (u, status, body) in &told {
        assert!(
            *status == 202 && body.contains("\"entered\""),
            "{u}: {status} {body}"
        );
    }
    // Asked again after the draw, they get their result.
    gate.wait_for_log("draw_done");
    answers.extend(
        order_all(&url, &first, "A-1")
            .into_iter()
            .map(|h| h.join().unwrap()),
    );
    let won: BTreeSet<&str> = answers
        .iter()
        .filter(|(_, st, b)| *st == 200 && b.contains("\"won\""))
        .map(|(u, _, _)| u.as_str())
        .collect();
    let not_drawn = answers
        .iter()
        .filter(|(_, st, b)| *st == 200 && b == "{\"status\":\"not_drawn\"}")
        .count();
    assert_eq!(won.len(), 5, "{answers:?}");
    assert_eq!(not_drawn, 45, "{answers:?}");
    let done = gate.wait_for_log("draw_done");
    // The record: 50 entries (none lost), one draw of A-1, the seed.
    let record = lines(&entries);
    let users: BTreeSet<&str> = record.iter().filter_map(|l| l["user"].as_str()).collect();
    assert_eq!(users.len(), 50, "no entry lost, none twice");
    let draws: Vec<&Value> = record.iter().filter(|l| l["drawn"] == "A-1").collect();
    assert_eq!(draws.len(), 1, "{record:?}");
    assert_eq!(
        (draws[0]["units"].as_u64(), draws[0]["entrants"].as_u64()),
        (Some(5), Some(50))
    );
    let winners: BTreeSet<String> = s
        .winners()
        .iter()
        .map(|w| w["user"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        winners,
        won.iter().map(|u| u.to_string()).collect::<BTreeSet<_>>()
    );
    // Forwarded to the order system, each once.
    let forwarded = wait_for_some("5 winners forwarded", Duration::from_secs(10), || {
        let got: BTreeSet<String> = orders
            .got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, body, _)| {
                serde_json::from_str::<Value>(body).unwrap()["user"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        (got.len() >= 5).then_some(got)
    });
    assert_eq!(
        forwarded, winners,
        "the drawn winners reach the order system"
    );
    // Killed after the draw and back: nothing is drawn again.
    drop(gate);
    let gate = GateProc::start(&s, &args);
    gate.wait_for_log("draw_done");
    let again = order(&http(), &gate.url(&s), Some("late"), "A-1", true);
    assert_eq!(again.1, "{\"status\":\"sold_out\"}");
    assert_eq!(s.winners().len(), 5, "the same five winners");
    assert_eq!(
        lines(&entries)
            .iter()
            .filter(|l| l["drawn"] == "A-1")
            .count(),
        1
    );
    drop(gate);
    // draw verify recomputes the draw from the journal, the revealed secret
    // opens the commitment the gate announced at its start, and the
    // draw.json the gate wrote follows from both.
    assert!(done["secret"].is_string(), "{done}");
    let receipts = keep_receipts(&s, &told[..3]);
    let mut args = vec![
        "draw",
        "verify",
        "--journal",
        "journal",
        "--commitment",
        &commitment,
    ];
    for r in &receipts {
        args.extend(["--receipt", r.as_str()]);
    }
    let out = ok(s.sale.run(&args));
    assert!(
        out.contains("A-1: 5 units among 50 entrants: the 5 published winners are the draw's"),
        "{out}"
    );
    assert!(out.contains("opens commitment"), "{out}");
    assert!(
        out.contains("published draw: A-1 (5 of 50), B-2 (0 of 0)"),
        "{out}"
    );
    assert!(
        out.contains("in the draw of A-1 among 50 entrants"),
        "{out}"
    );
    // The audit checks the draw too.
    let out = ok(s.sale.run(&["audit", "--journal", "journal"]));
    assert!(out.contains("ok: every promise held"), "{out}");
    // Published next to ended.html; a customer checks their receipt
    // against it alone (no journal).
    let out = ok(s.sale.run(&[
        "draw",
        "publish",
        "--journal",
        "journal",
        "--target",
        "dir:public",
    ]));
    assert!(out.contains("draw.json published"), "{out}");
    let out = ok(s.sale.run(&[
        "draw",
        "verify",
        "--published",
        "public/draw.json",
        "--receipt",
        &receipts[0],
    ]));
    assert!(
        out.contains("in the draw of A-1 among 50 entrants"),
        "{out}"
    );
    tampered_draws_do_not_verify(&s, &receipts[0], &commitment);
    swapped_winners_do_not_verify(&s, &everyone, &won);
}

/// Saves the receipts of `told` (202 answers) as files in the sale's
/// directory; their names.
fn keep_receipts(s: &GateSale, told: &[(String, u16, String)]) -> Vec<String> {
    told.iter()
        .map(|(u, _, body)| {
            let v: Value = serde_json::from_str(body).unwrap();
            let name = format!("receipt-{u}.json");
            std::fs::write(s.sale.path().join(&name), v["receipt"].to_string()).unwrap();
            name
        })
        .collect()
}

/// `draw verify` on a doctored copy of the published draw: exit 1, and
/// the line that says what is wrong.
fn refuted(s: &GateSale, doctor: impl FnOnce(&mut Value), extra: &[&str], says: &str) {
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(s.sale.path().join("public/draw.json")).unwrap())
            .unwrap();
    doctor(&mut v);
    std::fs::write(s.sale.path().join("doctored.json"), v.to_string()).unwrap();
    let mut args = vec![
        "draw",
        "verify",
        "--journal",
        "journal",
        "--published",
        "doctored.json",
    ];
    args.extend(extra);
    let out = s.sale.run(&args);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{says}: {said}");
    assert!(said.contains(says), "wanted `{says}` in:\n{said}");
}

fn tampered_draws_do_not_verify(s: &GateSale, receipt: &str, commitment: &str) {
    use flashsale::sale::draw::{DrawnItem, Published, Secret};
    let mine: Value =
        serde_json::from_str(&std::fs::read_to_string(s.sale.path().join(receipt)).unwrap())
            .unwrap();
    let leaf = mine["leaf"].as_str().unwrap().to_string();
    // A dropped entrant holding a receipt, the rest redone under the secret
    // so the file is consistent in itself: only the receipt (and the
    // journals) show it.
    let drop_mine = |v: &mut Value| {
        let mut p: Published = serde_json::from_value(v.clone()).unwrap();
        let secret = Secret::from_hex(&p.secret).unwrap();
        let item = &p.items[0];
        let leaves = item.leaves.iter().filter(|l| **l != leaf).cloned();
        p.items[0] = DrawnItem::new(&p.sale, p.round, &secret, &item.sku, item.units, leaves);
        assert!(p.problems().is_empty());
        *v = serde_json::to_value(&p).unwrap();
    };
    refuted(
        s,
        drop_mine,
        &["--receipt", receipt],
        "DROPPED: the gate signed this entry",
    );
    let out = s.sale.run(&[
        "draw",
        "verify",
        "--published",
        "doctored.json",
        "--receipt",
        receipt,
    ]);
    assert_eq!(out.status.code(), Some(1), "a receipt alone shows the drop");
    refuted(
        s,
        drop_mine,
        &[],
        "entrants in the journals but not in the published set",
    );
    // An entrant added after the fact, root redone: the draw is another.
    let add_one = |v: &mut Value| {
        let mut leaves: Vec<String> =
            serde_json::from_value(v["items"][0]["leaves"].clone()).unwrap();
        leaves.push("ab".repeat(32));
        leaves.sort();
        v["items"][0]["entrants"] = leaves.len().into();
        v["items"][0]["root"] =
            flashsale::sale::draw::root(leaves.iter().map(String::as_str)).into();
        v["items"][0]["leaves"] = leaves.into();
    };
    refuted(s, add_one, &[], "the seed does not follow");
    // A changed seed input: another round (another instant's start).
    let respell = |v: &mut Value| v["round"] = (v["round"].as_i64().unwrap() + 1).into();
    refuted(s, respell, &[], "its round is");
    // Another secret: it does not open the commitment.
    let other = |v: &mut Value| v["secret"] = "07".repeat(32).into();
    refuted(s, other, &[], "the secret does not open the commitment");
    // The commitment announced was another: the revealed secret does not open it.
    let wrong = commitment.chars().rev().collect::<String>();
    refuted(s, |_| {}, &["--commitment", &wrong], "DOES NOT OPEN");
}

fn swapped_winners_do_not_verify(s: &GateSale, everyone: &[String], won: &BTreeSet<&str>) {
    // In the published file: a drawn leaf swapped for one not drawn.
    let swap = |v: &mut Value| {
        let winners: Vec<String> =
            serde_json::from_value(v["items"][0]["winners"].clone()).unwrap();
        let other = v["items"][0]["leaves"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| !winners.contains(&l.as_str().unwrap().to_string()))
            .unwrap()
            .clone();
        v["items"][0]["winners"][0] = other;
    };
    refuted(s, swap, &[], "the winners do not follow");
    // In the winners' journal: one winner swapped for a loser.
    let journal = s.journal().join("winners.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let loser = everyone.iter().find(|u| !won.contains(u.as_str())).unwrap();
    let first_winner = won.iter().next().unwrap();
    std::fs::write(
        &journal,
        text.replace(&format!("\"{first_winner}\""), &format!("\"{loser}\"")),
    )
    .unwrap();
    let out = s.sale.run(&["draw", "verify", "--journal", "journal"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("DOES NOT FOLLOW") && said.contains(loser.as_str()),
        "{said}"
    );
    let out = s.sale.run(&["audit", "--journal", "journal"]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("A-1: the draw does not follow")
            && said.contains(&format!("winners not drawn: {loser}")),
        "{said}"
    );
}

//! `flashsale audit`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::prelude::{ledger_url, Global, REPAIR};
use crate::audit::{audit, Evidence};
use crate::journal::{self, JournalError, WinnerLine, Winners, ENTRIES, WINNERS};
use crate::sale::draw::Line;
use crate::sale::Winner;

/// After (or during) a sale: did every promise hold? Run it before telling
/// the shop "done".
///
/// Reads every gate's journal directory (winners.jsonl and the dead
/// letters), the fleet's ledger when there is one (its winners, and the
/// units it still offers: units neither sold nor for sale are stranded) ([gate] ledger,
/// $FLASHSALE_LEDGER_URL or --ledger), and, with --delivered, the order
/// system's own list of the order ids it received (one per line, once per
/// delivery it counted). Prints each item's stock and sold units, and every
/// problem: an item oversold, a customer with two units, one order id for
/// two winners, a journaled winner missing from the ledger, a ledger winner
/// in none of the journals (a lost journal line — give every gate's
/// journal), a winner in the dead letters, one the order system does not
/// have, has twice, or has though nobody won it; with a fair start
/// (entries.jsonl in the journals), a draw whose revealed seed does not open
/// its commitment or whose winners are not the ones it picks (as `flashsale
/// draw verify`). Changes nothing. Exits 1 on any problem.
#[derive(Args, Debug)]
pub(super) struct AuditArgs {
    /// A gate's journal directory (again for each gate of a fleet).
    #[arg(long = "journal", value_name = "DIR", required = true)]
    journals: Vec<PathBuf>,
    /// The fleet's ledger (default: $FLASHSALE_LEDGER_URL, else [gate] ledger).
    #[arg(long, value_name = "URL")]
    ledger: Option<String>,
    /// The order ids the order system received, one per line.
    #[arg(long, value_name = "FILE")]
    delivered: Option<PathBuf>,
    /// The report as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(g: &Global, a: AuditArgs) -> anyhow::Result<()> {
    let config = g.sale()?;
    let stock: Vec<(String, u32)> = crate::site::items(&config)?
        .into_iter()
        .map(|i| (i.sku, i.stock))
        .collect();
    let mut journals = Vec::new();
    let mut unresolved = Vec::new();
    let mut dead_letters = Vec::new();
    let mut draw = Vec::new();
    for dir in &a.journals {
        if !dir.is_dir() {
            anyhow::bail!(
                "{}: not a directory; give the gate's journal directory (its --journal)",
                dir.display()
            );
        }
        let lines = journal::read_file::<WinnerLine>(&dir.join(WINNERS))
            .map_err(|e| match e {
                JournalError::Corrupt { .. } => anyhow::anyhow!("{e}\n  = help: {REPAIR}"),
                e => e.into(),
            })?
            .0;
        let read = Winners::of(lines);
        unresolved.push(read.unresolved);
        journals.push((dir.display().to_string(), read.confirmed));
        dead_letters.extend(dead_letters_in(dir)?);
        if dir.join(ENTRIES).exists() {
            draw.extend(
                journal::read_file::<Line>(&dir.join(ENTRIES))
                    .map_err(|e| match e {
                        JournalError::Corrupt { .. } => anyhow::anyhow!("{e}\n  = help: {REPAIR}"),
                        e => e.into(),
                    })?
                    .0,
            );
        }
    }
    let (ledger, available) = match ledger_url(a.ledger.as_deref(), &config) {
        None => (None, None),
        Some(url) => {
            let skus: Vec<String> = stock.iter().map(|(s, _)| s.clone()).collect();
            let rt = tokio::runtime::Runtime::new()?;
            let (entries, status) = rt.block_on(async {
                let ledger =
                    crate::ledger::Ledger::new(&url, &config.gate.ledger_access, &config.name)?;
                let entries = ledger.export(&skus).await?;
                let status = ledger.status(&skus, None).await?;
                Ok::<_, crate::ledger::LedgerError>((entries, status))
            })?;
            let winners = entries
                .into_iter()
                .map(|e| (e.sku, e.user, e.order))
                .collect();
            let available = status
                .items
                .into_iter()
                .map(|(sku, (taken, total))| (sku, total.saturating_sub(taken)))
                .collect();
            (Some(winners), Some(available))
        }
    };
    settle_attempts(&mut journals, unresolved, ledger.as_deref());
    let delivered = match &a.delivered {
        None => None,
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect(),
        ),
    };
    let report = audit(&Evidence {
        stock,
        journals,
        dead_letters,
        ledger,
        available,
        delivered,
        draw,
        sale: config.name.clone(),
        round_ms: config.start.timestamp_millis(),
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for i in &report.items {
            match i.available {
                Some(a) => println!("{}: {} sold of {}, {a} for sale", i.sku, i.sold, i.stock),
                None => println!("{}: {} sold of {}", i.sku, i.sold, i.stock),
            }
        }
        match report.delivered {
            Some(d) => println!(
                "{} winners, {d} of them at the order system",
                report.winners
            ),
            None => println!("{} winners", report.winners),
        }
        for p in &report.problems {
            println!("problem: {}", p.say());
        }
        if report.ok() {
            println!("ok: every promise held");
        }
    }
    if !report.ok() {
        std::process::exit(1);
    }
    Ok(())
}

/// The winners set aside in `dir`'s dead letters (and an interrupted
/// resend's), with why.
fn dead_letters_in(dir: &std::path::Path) -> anyhow::Result<Vec<(Winner, String)>> {
    let mut out = Vec::new();
    for name in ["dead-letters.jsonl", "dead-letters.resending.jsonl"] {
        let path = dir.join(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("{}: not a dead letter: {line}", path.display()))?;
            let winner: Winner = serde_json::from_value(v.clone())
                .with_context(|| format!("{}: not a dead letter: {line}", path.display()))?;
            let why = v["error"]
                .as_str()
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| format!("HTTP {}", v["status"]));
            out.push((winner, why));
        }
    }
    Ok(out)
}

/// Attempts a fleet's gate journaled without learning the ledger's answer
/// (it stopped in between; its next start settles them): the ones the
/// ledger has count as that journal's winners, the others were never won.
/// Without the ledger nobody can tell: they count, and the audit says so.
fn settle_attempts(
    journals: &mut [(String, Vec<Winner>)],
    unresolved: Vec<Vec<(Winner, String)>>,
    ledger: Option<&[(String, String, String)]>,
) {
    for ((dir, winners), attempts) in journals.iter_mut().zip(unresolved) {
        if attempts.is_empty() {
            continue;
        }
        let n = attempts.len();
        let won: Vec<Winner> = attempts
            .into_iter()
            .map(|(w, _)| w)
            .filter(|w| {
                ledger.is_none_or(|l| {
                    l.iter()
                        .any(|(s, u, o)| *s == w.sku && *u == w.user && *o == w.order)
                })
            })
            .collect();
        eprintln!(
            "note: {dir}: {n} attempt(s) the gate journaled without the ledger's answer (it stopped in between); {} counted as won{}; start the gate and it settles them",
            won.len(),
            if ledger.is_none() { " (no ledger to ask)" } else { " (the ledger has them)" }
        );
        winners.extend(won);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(order: &str, user: &str) -> Winner {
        Winner::sample(order, "A", user)
    }

    #[test]
    fn an_unresolved_attempt_counts_only_if_the_ledger_took_it() {
        let attempts = || {
            vec![vec![
                (w("g1-000002", "carol"), "e1".to_string()),
                (w("g1-000003", "dave"), "e1".to_string()),
            ]]
        };
        let ledger = [(
            "A".to_string(),
            "carol".to_string(),
            "g1-000002".to_string(),
        )];
        let mut journals = vec![("j1".to_string(), vec![w("g1-000001", "ann")])];
        settle_attempts(&mut journals, attempts(), Some(&ledger));
        let orders: Vec<&str> = journals[0].1.iter().map(|w| w.order.as_str()).collect();
        assert_eq!(orders, ["g1-000001", "g1-000002"]);
        // Without the ledger nobody can tell: both count.
        let mut journals = vec![("j1".to_string(), vec![])];
        settle_attempts(&mut journals, attempts(), None);
        assert_eq!(journals[0].1.len(), 2);
    }
}

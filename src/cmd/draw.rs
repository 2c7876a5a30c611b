//! `flashsale draw`: a fair start's draw, checked from outside the gates.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use crate::journal::{self, JournalError, ENTRIES, WINNERS};
use crate::sale::draw::{verify, Line, Seed};
use crate::sale::Winner;

use super::prelude::Global;

/// A fair start's draw (`[gate] fair_window`).
#[derive(Args, Debug)]
pub(super) struct DrawArgs {
    #[command(subcommand)]
    command: DrawCommand,
}

#[derive(Subcommand, Debug)]
enum DrawCommand {
    Verify(VerifyArgs),
}

/// Recompute a draw from the gates' journals and say whether the published
/// winners follow from it.
///
/// Reads each journal directory's entries.jsonl (the entries, the units each
/// draw began with, the seed revealed after it) and winners.jsonl, without
/// changing them. For every item drawn: the entrants, whom the seed draws,
/// and whether exactly those entrants are the item's winners (winners who
/// were not entrants came after the draw, first come, first served). Exits 1
/// when a draw does not follow, an entry is missing, or the seed does not
/// open the commitment.
///
/// The seed is revealed in the journal and in the gate's `draw_done` log
/// line; its SHA-256, the commitment, was announced before the start in the
/// open toggle (`sale.js`: draw.commitment) and in the gate's `fair_start`
/// log line. Pass that one with --commitment to check the gates kept to it.
#[derive(Args, Debug)]
pub(super) struct VerifyArgs {
    /// A gate's journal directory (again for each gate of a fleet).
    #[arg(long = "journal", value_name = "DIR", required = true)]
    journals: Vec<PathBuf>,
    /// The draw's seed in hex; default: the one the journal reveals.
    #[arg(long, value_name = "HEX")]
    seed: Option<String>,
    /// The commitment announced before the start (`draw.commitment` in the
    /// open sale.js); default: the one the journal recorded at the draw.
    #[arg(long, value_name = "HEX")]
    commitment: Option<String>,
}

pub(super) fn run(_g: &Global, a: DrawArgs) -> anyhow::Result<()> {
    match a.command {
        DrawCommand::Verify(v) => verify_cmd(v),
    }
}

fn verify_cmd(a: VerifyArgs) -> anyhow::Result<()> {
    let mut lines: Vec<Line> = Vec::new();
    let mut winners: Vec<Winner> = Vec::new();
    for dir in &a.journals {
        if !dir.is_dir() {
            bail!(
                "{}: not a directory; give the gate's journal directory (its --journal)",
                dir.display()
            );
        }
        let entries = dir.join(ENTRIES);
        if !entries.exists() {
            bail!(
                "{}: no {ENTRIES}: this gate ran without a fair start (`[gate] fair_window`), or this is not its journal directory",
                dir.display()
            );
        }
        let repairable = |e: JournalError| match e {
            JournalError::Corrupt { .. } => {
                anyhow::anyhow!("{e}\n  = help: {}", super::prelude::REPAIR)
            }
            e => e.into(),
        };
        lines.extend(journal::read_file::<Line>(&entries).map_err(repairable)?.0);
        winners.extend(
            journal::read_file::<Winner>(&dir.join(WINNERS))
                .map_err(repairable)?
                .0,
        );
    }
    let recorded: Vec<&str> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Drawn { commitment, .. } => Some(commitment.as_str()),
            _ => None,
        })
        .collect();
    if recorded.is_empty() {
        bail!("no draw recorded yet: the window is not over, or the gate stopped before drawing (it draws when it starts again)");
    }
    if let Some(other) = recorded.iter().find(|c| **c != recorded[0]) {
        bail!(
            "the journals record two commitments ({} and {other}): they come from different sales or keys",
            recorded[0]
        );
    }
    let commitment = a.commitment.as_deref().unwrap_or(recorded[0]).trim();
    let seed_text = match &a.seed {
        Some(s) => s.clone(),
        None => lines
            .iter()
            .rev()
            .find_map(|l| match l {
                Line::Seed { seed } => Some(seed.clone()),
                _ => None,
            })
            .context(
                "the journals reveal no seed (the draw did not finish); pass it with --seed",
            )?,
    };
    let seed = Seed::from_hex(&seed_text)
        .context("--seed: not a seed; write the 64 hex digits of the gate's draw_done log line")?;
    let opens = seed.opens(commitment);
    println!(
        "seed {} {} commitment {commitment}{}",
        seed.to_hex(),
        if opens { "opens" } else { "DOES NOT open" },
        if a.commitment.is_some() {
            " (as announced)"
        } else {
            " (as recorded at the draw; compare it with the one the open sale.js announced)"
        }
    );
    let checks = verify(
        &seed,
        &lines,
        winners.iter().map(|w| (w.sku.as_str(), w.user.as_str())),
    );
    let mut ok = opens;
    for c in &checks {
        let holds = c.holds();
        ok &= holds;
        println!(
            "{}: {} among {}: {}",
            c.sku,
            count(c.units as usize, "unit"),
            count(c.entrants, "entrant"),
            if holds {
                format!(
                    "the {} are the draw's",
                    count(c.published.len(), "published winner")
                )
            } else {
                format!("DOES NOT FOLLOW: {}", c.explain())
            }
        );
    }
    if !ok {
        bail!("the draw does not verify (see above)");
    }
    Ok(())
}

/// `1 unit`, `5 units`.
fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

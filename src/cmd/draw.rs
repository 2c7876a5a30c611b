//! `flashsale draw`: a fair start's draw, checked and published from outside
//! the gates.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use super::prelude::{connect, AwsArgs, Global};
use crate::journal::{self, JournalError, WinnerLine, Winners, ENTRIES, WINNERS};
use crate::sale::draw::{recorded, verify, Check, Line, Published, Receipt, PUBLISHED};
use crate::sale::Winner;
use crate::store::{Cdn, Known, Remote};

/// A fair start's draw (`[gate] fair_window`).
#[derive(Args, Debug)]
pub(super) struct DrawArgs {
    #[command(subcommand)]
    command: DrawCommand,
}

#[derive(Subcommand, Debug)]
enum DrawCommand {
    Verify(VerifyArgs),
    Publish(PublishArgs),
}

/// Check a draw: from the gates' journals, from the published draw.json,
/// from an entrant's receipt — any of them, each against the others.
///
/// The journals (each gate's entries.jsonl and winners.jsonl, read, never
/// changed): for every item drawn, its entrants, the root of their set
/// recorded at the draw, whom the seed picks and whether exactly those are
/// the item's winners (winners who were not entrants came after the draw,
/// first come, first served).
///
/// The published file (draw.json, as `flashsale draw publish` uploads it;
/// default: the first journal's): the secret opens the commitment, each
/// item's root opens its leaves, its seed follows from the round, the secret
/// and the root, its winners from the seed; with journals, it lists every
/// entrant they hold and their winners; with site.toml, its round is the
/// sale's start.
///
/// A receipt (the JSON an entrant's answer carried, saved to a file): it is
/// signed by the sale's receipt key and its entry is in the published set —
/// else it proves the entry was dropped.
///
/// Exits 1, naming it, when anything does not hold.
#[derive(Args, Debug)]
pub(super) struct VerifyArgs {
    /// A gate's journal directory (again for each gate of a fleet).
    #[arg(long = "journal", value_name = "DIR")]
    journals: Vec<PathBuf>,
    /// The published draw (draw.json); default: the one the first
    /// journal's gate wrote.
    #[arg(long, value_name = "FILE")]
    published: Option<PathBuf>,
    /// An entrant's receipt, a JSON file (again for each).
    #[arg(long = "receipt", value_name = "FILE")]
    receipts: Vec<PathBuf>,
    /// The commitment announced before the start (`draw.commitment` in the
    /// open sale.js); default: the one the journals or the file record.
    #[arg(long, value_name = "HEX")]
    commitment: Option<String>,
    /// The receipt key announced before the start (`draw.receipt_key` in
    /// the open sale.js); default: the published file's.
    #[arg(long, value_name = "HEX")]
    receipt_key: Option<String>,
}

/// Publish a drawn sale's draw.json next to ended.html, for every entrant to
/// check their receipt against.
///
/// Verifies the journals and the draw.json their gate wrote after the draw
/// (as `draw verify` does; nothing is published if anything fails), then
/// uploads draw.json to the target with a short cache lifetime and
/// invalidates it at the CDN. `flashsale publish` keeps it (never prunes it).
#[derive(Args, Debug)]
pub(super) struct PublishArgs {
    /// A gate's journal directory (again for each gate of a fleet).
    #[arg(long = "journal", value_name = "DIR", required = true)]
    journals: Vec<PathBuf>,
    /// `s3` (the [publish] section) or `dir:PATH`.
    #[arg(long, default_value = "s3", value_name = "TARGET")]
    target: String,
    #[command(flatten)]
    aws: AwsArgs,
}

pub(super) fn run(g: &Global, a: DrawArgs) -> anyhow::Result<()> {
    match a.command {
        DrawCommand::Verify(v) => verify_cmd(g, v),
        DrawCommand::Publish(p) => publish_cmd(g, p),
    }
}

/// What the gates' journals hold of a draw.
struct Journals {
    lines: Vec<Line>,
    winners: Vec<Winner>,
}

fn read_journals(dirs: &[PathBuf]) -> anyhow::Result<Journals> {
    let mut j = Journals {
        lines: Vec::new(),
        winners: Vec::new(),
    };
    for dir in dirs {
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
        j.lines
            .extend(journal::read_file::<Line>(&entries).map_err(repairable)?.0);
        // A drawn winner whose attempt a stopped gate never saw answered
        // is still drawn: the draw is checked against both.
        let read = Winners::of(
            journal::read_file::<WinnerLine>(&dir.join(WINNERS))
                .map_err(repairable)?
                .0,
        );
        j.winners.extend(read.confirmed);
        j.winners
            .extend(read.unresolved.into_iter().map(|(w, _)| w));
    }
    Ok(j)
}

fn read_published(path: &Path) -> anyhow::Result<Published> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the published draw", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}:{}: not a published draw ({e}); give the draw.json `flashsale draw publish` uploaded",
            path.display(),
            e.line()
        )
    })
}

/// What was checked, as lines to print, and whether all of it holds.
#[derive(Default)]
struct Verdict {
    said: Vec<String>,
    ok: bool,
}

impl Verdict {
    fn holds(&mut self, line: String) {
        self.said.push(line);
    }

    fn fails(&mut self, line: String) {
        self.said.push(line);
        self.ok = false;
    }
}

fn verify_cmd(g: &Global, a: VerifyArgs) -> anyhow::Result<()> {
    if a.journals.is_empty() && a.published.is_none() {
        bail!("nothing to verify: give the gates' --journal DIR, the --published draw.json, or both (with --receipt FILE to check an entry)");
    }
    let journals = match a.journals.is_empty() {
        true => None,
        false => Some(read_journals(&a.journals)?),
    };
    let published_path = a
        .published
        .clone()
        .or_else(|| a.journals.first().map(|d| d.join(PUBLISHED)))
        .filter(|p| a.published.is_some() || p.exists());
    let published = published_path.as_deref().map(read_published).transpose()?;
    // The sale's own instant, when its site.toml is here.
    let sale = g.sale().ok();
    let mut v = Verdict {
        ok: true,
        ..Verdict::default()
    };
    let checks = match &journals {
        Some(j) => check_journals(j, sale.as_ref(), published.as_ref(), &a, &mut v)?,
        None => Vec::new(),
    };
    if let Some(p) = &published {
        check_published(p, &checks, sale.as_ref(), &a, &mut v);
        for path in &a.receipts {
            check_receipt(p, path, &a, &mut v)?;
        }
    } else if !a.receipts.is_empty() {
        bail!("a receipt is checked against the published draw: give --published draw.json");
    }
    for line in &v.said {
        println!("{line}");
    }
    if !v.ok {
        bail!("the draw does not verify (see above)");
    }
    Ok(())
}

/// The journals' draw: the revealed secret opens the commitment, and each
/// item's winners are the ones its draw picks.
fn check_journals(
    j: &Journals,
    sale: Option<&crate::config::Config>,
    published: Option<&Published>,
    a: &VerifyArgs,
    v: &mut Verdict,
) -> anyhow::Result<Vec<Check>> {
    let record = recorded(&j.lines)
        .map_err(anyhow::Error::msg)?
        .context("no draw recorded yet: the window is not over, or the gate stopped before drawing (it draws when it starts again)")?;
    let secret = record
        .secret
        .context("the journals reveal no secret (the draw did not finish; the gate draws when it starts again)")?;
    let commitment = a.commitment.as_deref().unwrap_or(record.commitment).trim();
    let opens = format!(
        "secret {} opens commitment {commitment}{}",
        secret.to_hex(),
        if a.commitment.is_some() {
            " (as announced)"
        } else {
            " (as recorded at the draw; compare it with the one the open sale.js announced)"
        }
    );
    if secret.opens(commitment) {
        v.holds(opens);
    } else {
        v.fails(format!("DOES NOT OPEN: {opens}"));
    }
    // The round: the sale's start, else the published file's.
    let (name, round) = match (sale, published) {
        (Some(c), _) => (c.name.clone(), c.start.timestamp_millis()),
        (None, Some(p)) => (p.sale.clone(), p.round),
        (None, None) => bail!("the draw's round is the sale's start: run this where its site.toml is (or pass --config), or give --published draw.json"),
    };
    let checks = verify(
        &secret,
        &name,
        round,
        &j.lines,
        j.winners.iter().map(|w| (w.sku.as_str(), w.user.as_str())),
    );
    for c in &checks {
        let head = format!(
            "{}: {} among {}",
            c.sku,
            count(c.units as usize, "unit"),
            count(c.entrants, "entrant")
        );
        if c.holds() {
            v.holds(format!(
                "{head}: the {} are the draw's",
                count(c.published.len(), "published winner")
            ));
        } else {
            v.fails(format!("{head}: DOES NOT FOLLOW: {}", c.explain()));
        }
    }
    Ok(checks)
}

/// The published file: it follows from itself, from the journals' draw,
/// and its round is the sale's start.
fn check_published(
    p: &Published,
    checks: &[Check],
    sale: Option<&crate::config::Config>,
    a: &VerifyArgs,
    v: &mut Verdict,
) {
    let mut wrong = p.problems();
    if let Some(c) = a.commitment.as_deref() {
        if !c.trim().eq_ignore_ascii_case(&p.commitment) {
            wrong.push(format!(
                "its commitment {} is not the announced {}",
                p.commitment,
                c.trim()
            ));
        }
    }
    if let Some(config) = sale {
        let start = config.start.timestamp_millis();
        if p.round != start || p.sale != config.name {
            wrong.push(format!(
                "its round is {} at {}, the sale's is {} at {start} (its start in Unix ms)",
                p.sale, p.round, config.name
            ));
        }
    }
    for c in checks {
        wrong.extend(c.against(p));
    }
    if wrong.is_empty() {
        v.holds(format!(
            "published draw: {} follow from its secret and leaves",
            p.items
                .iter()
                .map(|i| format!("{} ({} of {})", i.sku, i.winners.len(), i.entrants))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for w in wrong {
        v.fails(format!("published draw: DOES NOT HOLD: {w}"));
    }
}

fn check_receipt(
    p: &Published,
    path: &Path,
    a: &VerifyArgs,
    v: &mut Verdict,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the receipt", path.display()))?;
    let receipt: Receipt = serde_json::from_str(text.trim()).map_err(|e| {
        anyhow::anyhow!(
            "{}:{}: not a receipt ({e}); save the `receipt` object of the gate's answer",
            path.display(),
            e.line()
        )
    })?;
    let name = path.display();
    if let Some(k) = &a.receipt_key {
        if !k.trim().eq_ignore_ascii_case(&p.receipt_key) {
            v.fails(format!(
                "receipt {name}: the published receipt key {} is not the announced {}",
                p.receipt_key,
                k.trim()
            ));
            return Ok(());
        }
    }
    match p.standing(&receipt) {
        Ok(s) => v.holds(format!(
            "receipt {name}: in the draw of {} among {}: {}",
            s.sku,
            count(s.entrants, "entrant"),
            if s.drawn { "drawn" } else { "not drawn" }
        )),
        Err(why) => v.fails(format!("receipt {name}: {why}")),
    }
    Ok(())
}

fn publish_cmd(g: &Global, a: PublishArgs) -> anyhow::Result<()> {
    let config = g.sale()?;
    let journals = read_journals(&a.journals)?;
    let path = a.journals[0].join(PUBLISHED);
    if !path.exists() {
        bail!(
            "{}: no {PUBLISHED}: the gate has not drawn yet (it writes it when the draw is done)",
            path.display()
        );
    }
    let published = read_published(&path)?;
    let args = VerifyArgs {
        journals: a.journals.clone(),
        published: Some(path.clone()),
        receipts: Vec::new(),
        commitment: None,
        receipt_key: None,
    };
    let mut v = Verdict {
        ok: true,
        ..Verdict::default()
    };
    let checks = check_journals(&journals, Some(&config), Some(&published), &args, &mut v)?;
    check_published(&published, &checks, Some(&config), &args, &mut v);
    for line in &v.said {
        g.say(line);
    }
    if !v.ok {
        bail!("the draw does not verify (see above): nothing published");
    }
    let body = std::fs::read(&path).with_context(|| format!("{}", path.display()))?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let (remote, cdn) = connect(&config, &a.target, &a.aws).await?;
        let headers = crate::config::headers::for_path(PUBLISHED, &config.headers);
        let meta = Known::of(&body, &headers).metadata();
        remote.put(PUBLISHED, body, &headers, &meta).await?;
        g.say(format!(
            "{PUBLISHED} published on {} ({} in it)",
            remote.describe(),
            count(published.items.len(), "item")
        ));
        if let Some(cdn) = cdn {
            let at = format!("{}{PUBLISHED}", config.base_path);
            let id = cdn
                .invalidate(
                    std::slice::from_ref(&at),
                    &format!("flashsale-draw-{}", &published.commitment[..16]),
                )
                .await?;
            g.say(format!("  CloudFront invalidation {id} for {at}"));
        }
        anyhow::Ok(())
    })
}

/// `1 unit`, `5 units`.
fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

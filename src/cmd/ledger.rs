//! `flashsale ledger`: the fleet's shared stock on Redis, for operators.

use std::io::Write;

use clap::{Args, Subcommand};

use super::prelude::{ledger_url, Global};
use crate::config::Config;
use crate::ledger::{Ledger, LedgerError};

/// The shared ledger of a fleet of gates (Redis): load the stock before the
/// sale, watch it during, export the winners after.
///
/// The ledger's address comes from --ledger, else $FLASHSALE_LEDGER_URL, else
/// [gate] ledger in site.toml; it is never printed with its password.
#[derive(Args, Debug)]
pub(super) struct LedgerArgs {
    /// The ledger, redis://[:password@]host:port/db.
    #[arg(long, value_name = "URL", global = true)]
    ledger: Option<String>,
    #[command(subcommand)]
    command: LedgerCommand,
}

#[derive(Subcommand, Debug)]
enum LedgerCommand {
    /// Load the stock of every item from site.toml, with a new epoch. Gates
    /// admit nobody until the ledger is loaded; after a Redis that lost its
    /// data, load it again (with --force) once every gate is up and has put
    /// its winners back (see `ledger status`).
    Load {
        /// Load even though the sale has winners (they are kept, never deleted).
        #[arg(long)]
        force: bool,
    },
    /// Where the fleet stands: per item the units left, winners and stock; the
    /// live gates; Redis's persistence settings.
    Status {
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every winner as JSON Lines (sale, sku, user, order), for the shop.
    Export,
    /// Delete every key of this sale from the ledger: for rehearsals only.
    /// Refused while a gate of the sale is live (its heartbeat under 3 s old).
    Clear {
        /// Confirm: the sale's stock and winners are gone afterwards.
        #[arg(long)]
        yes: bool,
        /// Clear even while gates are live: they stop admitting, and put the
        /// winners they journaled back when the stock is loaded again.
        #[arg(long)]
        force: bool,
    },
}

/// A gate whose heartbeat is younger than this is live.
const LIVE_GATE_MS: u64 = 3_000;

pub(super) fn run(g: &Global, a: LedgerArgs) -> anyhow::Result<()> {
    let config = g.sale()?;
    let Some(url) = ledger_url(a.ledger.as_deref(), &config) else {
        anyhow::bail!(
            "{}: no ledger: pass --ledger redis://host:port/db, set $FLASHSALE_LEDGER_URL, or `ledger = \"...\"` in [gate]",
            config.path.display()
        );
    };
    let stock: Vec<(String, u32)> = crate::site::items(&config)?
        .into_iter()
        .map(|i| (i.sku, i.stock))
        .collect();
    let skus: Vec<String> = stock.iter().map(|(s, _)| s.clone()).collect();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        // The connection lives on the runtime.
        let ledger = Ledger::new(&url, &config.name)?;
        let ledger = &ledger;
        match a.command {
            LedgerCommand::Load { force } => load(g, &config, ledger, &stock, force).await,
            LedgerCommand::Status { json } => status(g, &config, ledger, &skus, json).await,
            LedgerCommand::Export => {
                let mut out = std::io::stdout().lock();
                for e in ledger.export(&skus).await? {
                    writeln!(out, "{}", serde_json::to_string(&e)?)?;
                }
                Ok(())
            }
            LedgerCommand::Clear { yes, force } => {
                if !yes {
                    anyhow::bail!("this deletes sale `{}`'s stock and winners from {}; pass --yes to do it (rehearsals only)", config.name, ledger.at());
                }
                let live: Vec<String> = ledger
                    .status(&skus, None)
                    .await?
                    .gates
                    .into_iter()
                    .filter(|(_, ago)| *ago < LIVE_GATE_MS)
                    .map(|(g, ago)| format!("{g} ({ago} ms ago)"))
                    .collect();
                if !live.is_empty() && !force {
                    anyhow::bail!(
                        "sale `{}` has live gates on {}: {}; stop them first, or pass --force (a rehearsal: they pause and put their winners back when the stock is loaded again)",
                        config.name,
                        ledger.at(),
                        live.join(", ")
                    );
                }
                let n = ledger.clear().await?;
                g.say(format!("Deleted {n} keys of sale `{}` from {}", config.name, ledger.at()));
                Ok(())
            }
        }
    })
}

async fn load(
    g: &Global,
    config: &Config,
    ledger: &Ledger,
    stock: &[(String, u32)],
    force: bool,
) -> anyhow::Result<()> {
    let epoch = ledger.load(stock, force).await.map_err(|e| match e {
        LedgerError::HasWinners { .. } => {
            anyhow::anyhow!("{e}; pass --force to load it anyway (winners are kept)")
        }
        e => e.into(),
    })?;
    let units: u64 = stock.iter().map(|(_, n)| *n as u64).sum();
    g.say(format!(
        "Loaded sale `{}` into the ledger at {}: {} items, {units} units (epoch {epoch})",
        config.name,
        ledger.at(),
        stock.len()
    ));
    for w in ledger.persistence().await?.warnings() {
        eprintln!("warning: {}: {w}", ledger.at());
    }
    Ok(())
}

async fn status(
    g: &Global,
    config: &Config,
    ledger: &Ledger,
    skus: &[String],
    json: bool,
) -> anyhow::Result<()> {
    let st = ledger.status(skus, None).await?;
    let warnings = ledger.persistence().await?.warnings();
    if json {
        let items: serde_json::Map<String, serde_json::Value> = st
            .items
            .iter()
            .map(|(sku, (taken, total))| {
                let v = serde_json::json!({
                    "winners": taken, "stock": total, "remaining": total.saturating_sub(*taken),
                });
                (sku.clone(), v)
            })
            .collect();
        let gates: serde_json::Map<String, serde_json::Value> = st
            .gates
            .iter()
            .map(|(id, ago)| {
                (
                    id.clone(),
                    serde_json::json!({ "heartbeat_ms_ago": ago, "live": *ago < 1000 }),
                )
            })
            .collect();
        let v = serde_json::json!({
            "sale": config.name, "ledger": ledger.at(), "loaded": st.epoch.is_some(),
            "epoch": st.epoch, "items": items, "gates": gates, "warnings": warnings,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    g.say(format!(
        "Sale `{}` in the ledger at {}: {}",
        config.name,
        ledger.at(),
        match &st.epoch {
            Some(e) => format!("loaded (epoch {e})"),
            None => "NOT loaded: gates admit nobody (`flashsale ledger load`)".to_string(),
        }
    ));
    for (sku, (taken, total)) in &st.items {
        g.say(format!(
            "  {sku}: {} left, {taken} winners of {total}",
            total.saturating_sub(*taken)
        ));
    }
    for (id, ago) in &st.gates {
        let state = if *ago < 1000 { "live" } else { "silent" };
        g.say(format!("  gate {id}: {state}, last heartbeat {ago} ms ago"));
    }
    for w in warnings {
        eprintln!("warning: {}: {w}", ledger.at());
    }
    Ok(())
}

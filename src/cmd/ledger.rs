//! `flashsale ledger`: the fleet's shared stock on Redis, for operators.

use std::io::Write;

use clap::{Args, Subcommand};

use super::prelude::{ledger_url, Global};
use crate::config::Config;
use crate::ledger::{Ledger, LedgerError, Member, Roster};

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
    /// admit nobody until the ledger is loaded.
    ///
    /// After a Redis that lost its data (or `ledger clear`), the gates stop
    /// admitting and put the winners of their journals back; load it again
    /// (with --force: the winners are kept) once they have. With the fleet
    /// listed in site.toml (`[gate] fleet`), a load after the sale's start is
    /// refused until every listed gate has put its winners back (see `ledger
    /// status`), and the gates resume once each has. A gate that cannot come
    /// back can be named with --missing: its winners are not in the ledger,
    /// so its units may be sold again (an oversell), and when it returns its
    /// re-assert raises an `oversell_alarm`.
    Load {
        /// Load even though the sale has winners (they are kept, never deleted).
        #[arg(long)]
        force: bool,
        /// A gate of `[gate] fleet` that will not come back in time: load
        /// without its winners (risks selling its units again). Repeat for more.
        #[arg(long, value_name = "GATE")]
        missing: Vec<String>,
        /// Wait up to this long for the listed gates to put their winners
        /// back, instead of refusing at once (e.g. 30s).
        #[arg(long, value_name = "DURATION", value_parser = super::prelude::duration)]
        wait: Option<std::time::Duration>,
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
        let ledger = Ledger::new(&url, &config.gate.ledger_access, &config.name)?;
        let ledger = &ledger;
        match a.command {
            LedgerCommand::Load {
                force,
                missing,
                wait,
            } => {
                let how = Load {
                    force,
                    missing,
                    wait,
                };
                load(g, &config, ledger, &stock, how).await
            }
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

/// How `ledger load` was asked to load.
struct Load {
    force: bool,
    missing: Vec<String>,
    wait: Option<std::time::Duration>,
}

async fn load(
    g: &Global,
    config: &Config,
    ledger: &Ledger,
    stock: &[(String, u32)],
    how: Load,
) -> anyhow::Result<()> {
    let fleet = &config.gate.fleet;
    if let Some(stranger) = how.missing.iter().find(|m| !fleet.contains(m)) {
        anyhow::bail!(
            "--missing {stranger}: not a gate of `[gate] fleet` in {} ({}); name a listed gate",
            config.path.display(),
            if fleet.is_empty() {
                "none listed".to_string()
            } else {
                fleet.join(", ")
            }
        );
    }
    if fleet.is_empty() {
        eprintln!("warning: {}: `[gate] fleet` lists no gates: a load after a lost ledger cannot tell whether a gate that is down holds winners (list them, e.g. `fleet = [\"g1\", \"g2\"]`)", config.path.display());
    }
    let now = chrono::Utc::now().timestamp_millis();
    let roster = Roster {
        fleet,
        missing: &how.missing,
        started: now >= config.start.timestamp_millis() - config.gate.tolerance_ms,
    };
    let deadline = std::time::Instant::now() + how.wait.unwrap_or_default();
    let mut said = Vec::new();
    let epoch = loop {
        match ledger.load(stock, how.force, roster).await {
            Err(LedgerError::NotBack { gates, .. }) if std::time::Instant::now() < deadline => {
                if gates != said {
                    g.say(format!(
                        "Waiting for gate {} to put its winners back",
                        gates.join(", gate ")
                    ));
                    said = gates;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e @ LedgerError::NotBack { .. }) => {
                let LedgerError::NotBack { gates, .. } = &e else {
                    unreachable!()
                };
                anyhow::bail!(
                    "{e}\n  = help: start it (it puts its winners back from its journal, then waits for the load), or wait for it with --wait 30s; if it cannot come back, --missing {} loads without it, at the risk of selling its units again",
                    gates.join(" --missing ")
                );
            }
            Err(e @ LedgerError::HasWinners { .. }) => {
                anyhow::bail!("{e}; pass --force to load it anyway (winners are kept)")
            }
            Err(e) => return Err(e.into()),
            Ok(epoch) => break epoch,
        }
    };
    let units: u64 = stock.iter().map(|(_, n)| *n as u64).sum();
    g.say(format!(
        "Loaded sale `{}` into the ledger at {}: {} items, {units} units (epoch {epoch})",
        config.name,
        ledger.at(),
        stock.len()
    ));
    for m in &how.missing {
        eprintln!("warning: loaded without gate {m}: its winners are not in the ledger; when it returns, watch its log for `oversell_alarm`");
    }
    for w in settings_warnings(ledger).await {
        eprintln!("warning: {}: {w}", ledger.at());
    }
    Ok(())
}

/// What is unsafe in the ledger's settings; a managed Redis may refuse
/// `CONFIG GET` to its users: then that, as a warning.
async fn settings_warnings(ledger: &Ledger) -> Vec<String> {
    match ledger.persistence().await {
        Ok(p) => p.warnings(),
        Err(e) => vec![format!(
            "cannot read its settings ({e}); make sure it keeps writes (appendonly or the service's durability) and never evicts keys (noeviction)"
        )],
    }
}

async fn status(
    g: &Global,
    config: &Config,
    ledger: &Ledger,
    skus: &[String],
    json: bool,
) -> anyhow::Result<()> {
    let st = ledger.status(skus, None).await?;
    let warnings = settings_warnings(ledger).await;
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
        let fleet: serde_json::Map<String, serde_json::Value> = roll_call(config, &st)
            .into_iter()
            .map(|(id, m)| (id, serde_json::to_value(m).unwrap_or_default()))
            .collect();
        let v = serde_json::json!({
            "sale": config.name, "ledger": ledger.at(), "loaded": st.epoch.is_some(),
            "epoch": st.epoch, "items": items, "gates": gates, "fleet": fleet,
            "warnings": warnings,
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
    for (id, m) in roll_call(config, &st) {
        g.say(format!(
            "  fleet gate {id}: {}",
            match m {
                Some(Member::Back { ago_ms }) =>
                    format!("its winners are back ({} s ago)", ago_ms / 1000),
                Some(Member::Excused) => "loaded without it (excused)".to_string(),
                None =>
                    "has NOT put its winners back since the ledger was lost or cleared".to_string(),
            }
        ));
    }
    for w in warnings {
        eprintln!("warning: {}: {w}", ledger.at());
    }
    Ok(())
}

/// Each gate of `[gate] fleet` (and any other with a marker) and its marker.
fn roll_call(config: &Config, st: &crate::ledger::Status) -> Vec<(String, Option<Member>)> {
    let mut ids: Vec<&String> = config.gate.fleet.iter().collect();
    ids.extend(st.members.keys().filter(|k| !config.gate.fleet.contains(k)));
    ids.into_iter()
        .map(|id| (id.clone(), st.members.get(id).copied()))
        .collect()
}

//! `flashsale close`.

use std::future::Future;
use std::time::Duration;

use clap::Args;

use super::prelude::{duration, edge_step, ledger_url, EdgeStep, Global};
use super::switch::{self, SwitchArgs};
use crate::config::Config;
use crate::gate::watch;
use crate::ledger::Ledger;
use crate::sale::switch::Action;

/// Close the sale: switch sale.js to `ended` (pages send everyone to
/// ended.html) and invalidate it. Waits for --at (default: the sale's end);
/// --now closes at once; --when-sold-out closes as soon as every item is sold
/// out (by the fleet's shared ledger when there is one, else by every gate's
/// /metrics), and at the latest at --at. Closing a closed sale changes nothing.
/// With an [edge] section it then marks the sale ended in the edge's
/// KeyValueStore: edges answer the sold-out way without asking a gate.
#[derive(Args, Debug)]
pub(super) struct CloseArgs {
    #[command(flatten)]
    switch: SwitchArgs,
    /// Close as soon as every item is sold out: the shared ledger says so, or
    /// (without one) every gate's /metrics shows 0 remaining.
    #[arg(long)]
    when_sold_out: bool,
    /// The gates' admin URLs (--admin-listen, where /metrics is),
    /// comma-separated (http://10.0.0.1:9180,...; default: [gate] admin).
    #[arg(long, value_delimiter = ',', value_name = "URL,URL")]
    gates: Vec<String>,
    /// The fleet's shared ledger (default: $FLASHSALE_LEDGER_URL, else [gate] ledger).
    #[arg(long, value_name = "URL")]
    ledger: Option<String>,
    /// How often to ask the ledger or the gates.
    #[arg(long, default_value = "1s", value_parser = duration)]
    poll: Duration,
}

pub(super) fn run(g: &Global, a: CloseArgs) -> anyhow::Result<()> {
    let config = g.sale()?;
    let ledger = ledger_url(a.ledger.as_deref(), &config);
    let mut a = a;
    if a.gates.is_empty() {
        a.gates = config.gate.admin.clone();
    }
    if a.when_sold_out && ledger.is_none() && a.gates.is_empty() {
        anyhow::bail!("--when-sold-out needs a shared ledger (--ledger, $FLASHSALE_LEDGER_URL or [gate] ledger) or the gates to ask (--gates URL,URL)");
    }
    let early: std::pin::Pin<Box<dyn Future<Output = String>>> = match (a.when_sold_out, ledger) {
        (false, _) => Box::pin(std::future::pending()),
        (true, Some(url)) => Box::pin(ledger_sold_out(g, &a, &config, url)?),
        (true, None) => Box::pin(gates_sold_out(g, &a)),
    };
    switch::run(g, &config, &a.switch, Action::Close, config.end, early)?;
    // The edge answers the losers from now on.
    if config.edge.is_some() && !a.switch.no_edge {
        edge_step(g, &config, &a.switch.aws, EdgeStep::End)?;
    }
    Ok(())
}

/// Resolves once the ledger has every item sold out, printing its counts
/// whenever they change.
fn ledger_sold_out(
    g: &Global,
    a: &CloseArgs,
    config: &Config,
    url: String,
) -> anyhow::Result<impl Future<Output = String>> {
    let skus: Vec<String> = crate::site::items(config)?
        .into_iter()
        .map(|i| i.sku)
        .collect();
    let every = a.poll;
    let show = !g.quiet && (!a.switch.json || g.verbose);
    let (access, sale) = (config.gate.ledger_access.clone(), config.name.clone());
    Ok(async move {
        // Made on the runtime its connection lives on.
        let ledger = match Ledger::new(&url, &access, &sale) {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "warning: {e}; --when-sold-out cannot follow the ledger: closing at the end"
                );
                return std::future::pending().await;
            }
        };
        let mut last = String::new();
        loop {
            let line = match ledger.status(&skus, None).await {
                Ok(st) => {
                    let sold = st.epoch.is_some()
                        && st
                            .items
                            .values()
                            .all(|(taken, total)| *total > 0 && taken >= total);
                    if sold {
                        return format!("the ledger has every item sold out ({})", ledger.at());
                    }
                    let left: Vec<String> = st
                        .items
                        .iter()
                        .map(|(sku, (t, n))| format!("{sku}: {} left", n.saturating_sub(*t)))
                        .collect();
                    left.join("; ")
                }
                Err(e) => e.to_string(),
            };
            if show && line != last {
                eprintln!("  ledger: {line}");
                last = line;
            }
            tokio::time::sleep(every).await;
        }
    })
}

/// Resolves once every gate is sold out, printing what the gates say
/// whenever it changes (with --json only if -v).
fn gates_sold_out(g: &Global, a: &CloseArgs) -> impl Future<Output = String> {
    let gates = a.gates.clone();
    let every = a.poll;
    // With --json, stdout is the report; -v still shows the gates on stderr.
    let show = !g.quiet && (!a.switch.json || g.verbose);
    async move {
        let mut last = String::new();
        watch::sold_out(&gates, every, |round| {
            let line: Vec<String> = round
                .iter()
                .map(|(gate, r)| match r {
                    Ok(n) => format!("{gate}: {n} left"),
                    Err(e) => format!("{gate}: {e}"),
                })
                .collect();
            let line = line.join("; ");
            if show && line != last {
                eprintln!("  gates: {line}");
                last = line;
            }
        })
        .await;
        format!("every gate is sold out ({})", gates.join(", "))
    }
}

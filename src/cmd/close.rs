//! `flashsale close`.

use std::future::Future;
use std::time::Duration;

use clap::Args;

use super::prelude::{duration, Global};
use super::switch::{self, SwitchArgs};
use crate::gate::watch;
use crate::sale::switch::Action;

/// Close the sale: switch sale.js to `ended` (pages send everyone to
/// ended.html) and invalidate it. Waits for --at (default: the sale's end);
/// --now closes at once; --when-sold-out closes as soon as every gate reports
/// every item sold out, and at the latest at --at. Closing a closed sale
/// changes nothing.
#[derive(Args, Debug)]
pub(super) struct CloseArgs {
    #[command(flatten)]
    switch: SwitchArgs,
    /// Close as soon as all the gates are sold out (their /metrics show 0 remaining).
    #[arg(long, requires = "gates")]
    when_sold_out: bool,
    /// The gates' base URLs, comma-separated (http://10.0.0.1:8080,...).
    #[arg(long, value_delimiter = ',', value_name = "URL,URL")]
    gates: Vec<String>,
    /// How often to ask the gates.
    #[arg(long, default_value = "1s", value_parser = duration)]
    poll: Duration,
}

pub(super) fn run(g: &Global, a: CloseArgs) -> anyhow::Result<()> {
    let config = g.sale()?;
    let early = sold_out(g, &a);
    switch::run(g, &config, &a.switch, Action::Close, config.end, early)
}

/// With --when-sold-out: resolves once every gate is sold out, printing what
/// the gates say whenever it changes (with --json only if -v). Without: never.
fn sold_out(g: &Global, a: &CloseArgs) -> impl Future<Output = String> {
    let watching = a.when_sold_out;
    let gates = a.gates.clone();
    let every = a.poll;
    // With --json, stdout is the report; -v still shows the gates on stderr.
    let show = !g.quiet && (!a.switch.json || g.verbose);
    async move {
        if !watching {
            return std::future::pending().await;
        }
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

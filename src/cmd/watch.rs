//! `flashsale watch`.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::Args;

use super::prelude::{duration, ledger_url, Global};
use crate::watch::{self, Sources, Watcher};

/// Watch the sale live, once a second: per item stock, sold and left (from
/// the shared ledger when there is one — exact — else the gates' own
/// counts), per gate up or down, order requests per second by outcome, p99,
/// connections, forward backlog and dead letters (from each gate's admin
/// /metrics), the ledger's state and sale.js as the CDN serves it. Every
/// snapshot says how old its oldest figure is.
///
/// On a terminal it draws a full-screen view (q or Ctrl-C to quit); --json
/// prints each snapshot as a JSON line (for scripts and CI); without a
/// terminal, one line of text per snapshot.
#[derive(Args, Debug)]
pub(super) struct WatchArgs {
    /// The gates' admin URLs (--admin-listen), comma-separated (default:
    /// [gate] admin).
    #[arg(long, value_delimiter = ',', value_name = "URL,URL")]
    gates: Vec<String>,
    /// The fleet's shared ledger (default: $FLASHSALE_LEDGER_URL, else [gate] ledger).
    #[arg(long, value_name = "URL")]
    ledger: Option<String>,
    /// Where the CDN serves sale.js (default: base_url's sale.js); `none`: do not read it.
    #[arg(long, value_name = "URL")]
    toggle_url: Option<String>,
    /// How often to take a snapshot.
    #[arg(long, default_value = "1s", value_parser = duration)]
    every: Duration,
    /// Stop after this many snapshots (default: until interrupted).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Print each snapshot as a JSON line.
    #[arg(long)]
    json: bool,
    /// Where to read sale.js as published: `s3` (the [publish] section),
    /// `dir:PATH`, or `none` (default: s3 when there is a [publish] section).
    #[arg(long, value_name = "TARGET")]
    target: Option<String>,
    #[command(flatten)]
    aws: super::prelude::AwsArgs,
}

pub(super) fn run(g: &Global, a: WatchArgs) -> anyhow::Result<()> {
    let config = g.sale()?;
    let skus: Vec<String> = crate::site::items(&config)?
        .into_iter()
        .map(|i| i.sku)
        .collect();
    let ledger = ledger_url(a.ledger.as_deref(), &config);
    let gates = if a.gates.is_empty() {
        config.gate.admin.clone()
    } else {
        a.gates.clone()
    };
    if gates.is_empty() && ledger.is_none() {
        anyhow::bail!("nothing to watch: give the gates' admin URLs (--gates http://10.0.0.11:9180,... or `admin = [...]` in [gate]) or a shared ledger (--ledger, $FLASHSALE_LEDGER_URL or [gate] ledger)");
    }
    let toggle = match a.toggle_url.as_deref() {
        Some("none") => None,
        Some(u) => Some(u.to_string()),
        None => Some(format!("{}sale.js", config.base_url)),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let ledger = match &ledger {
            Some(url) => Some(crate::ledger::Ledger::new(
                url,
                &config.gate.ledger_access,
                &config.name,
            )?),
            None => None,
        };
        let target = match a.target.as_deref() {
            Some("none") => None,
            Some(t) => Some(t.to_string()),
            None => config.publish.as_ref().map(|_| "s3".to_string()),
        };
        let bucket = match target {
            Some(t) => Some(super::prelude::connect(&config, &t, &a.aws).await?.0),
            None => None,
        };
        let mut w = Watcher::new(Sources {
            sale: config.name.clone(),
            skus,
            gates,
            ledger,
            toggle,
            bucket,
        });
        if !a.json && std::io::stdout().is_terminal() {
            return full_screen(&mut w, a.every, a.count).await;
        }
        let mut taken = 0u64;
        let mut next = tokio::time::Instant::now();
        loop {
            let s = w.snapshot().await;
            let mut out = std::io::stdout().lock();
            let line = if a.json {
                serde_json::to_string(&s)?
            } else {
                watch::line(&s)
            };
            // A closed pipe (`| head`) ends the watch, quietly.
            if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                return Ok(());
            }
            drop(out);
            taken += 1;
            if a.count.is_some_and(|n| taken >= n) {
                return Ok(());
            }
            next += a.every;
            tokio::time::sleep_until(next).await;
        }
    })
}

/// The full-screen view until q, Esc or Ctrl-C (or `count` snapshots).
async fn full_screen(w: &mut Watcher, every: Duration, count: Option<u64>) -> anyhow::Result<()> {
    use ratatui::crossterm::event::{self, Event, KeyCode, KeyModifiers};
    let mut terminal = ratatui::init();
    let mut taken = 0u64;
    let result = loop {
        let next = std::time::Instant::now() + every;
        let s = w.snapshot().await;
        if let Err(e) = terminal.draw(|f| watch::screen::draw(f, &s)) {
            break Err(e.into());
        }
        taken += 1;
        if count.is_some_and(|n| taken >= n) {
            break Ok(());
        }
        // Keys until the next snapshot is due.
        let mut quit = false;
        while let Some(left) = next.checked_duration_since(std::time::Instant::now()) {
            if !event::poll(left)? {
                break;
            }
            if let Event::Key(k) = event::read()? {
                let ctrl_c =
                    k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
                if matches!(k.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c {
                    quit = true;
                    break;
                }
            }
        }
        if quit {
            break Ok(());
        }
    };
    ratatui::restore();
    result
}

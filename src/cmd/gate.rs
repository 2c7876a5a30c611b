//! `flashsale gate`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::prelude::{duration, gate_key, ledger_url, log_json, Global};
use crate::gate::{self, Gate};

/// Run an order gate: admit at most the quota per item, journal every winner
/// (fsynced) before answering, forward winners to the order system, send
/// everyone else to the "sale ended" page.
///
/// POST /o/<sale>/<token> with the item's `sku` (form field or ?sku=) and the
/// user's identity: a header set by a trusted proxy ([gate] identity_header,
/// default X-User-Id; only safe behind a proxy that sets it) or the shop's
/// signed cookie ([gate] identity_cookie). GET /healthz, GET /metrics
/// (Prometheus). Restarts replay the journal: sold units stay sold.
/// SIGTERM finishes in-flight requests and flushes the journal.
#[derive(Args, Debug)]
pub(super) struct GateArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Units this gate admits per item (default: [gate] quota, or stock / gates).
    #[arg(long)]
    quota: Option<u32>,
    /// Directory of the winners' journal (winners.jsonl) and forwarder state.
    #[arg(long, value_name = "DIR")]
    journal: PathBuf,
    /// The order system's webhook (default: [gate] forward).
    #[arg(long, value_name = "URL")]
    forward: Option<String>,
    /// This gate's name in order ids (default: generated once, kept in the journal dir).
    #[arg(long)]
    gate_id: Option<String>,
    /// The gate key (default: $FLASHSALE_GATE_KEY).
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// The shop's key for signed identity cookies (default: $FLASHSALE_COOKIE_KEY).
    #[arg(long, value_name = "PATH")]
    cookie_key_file: Option<PathBuf>,
    /// The fleet's shared ledger, redis://[:password@]host:port/db (default:
    /// $FLASHSALE_LEDGER_URL, else [gate] ledger). Without one, each gate
    /// admits its own quota.
    #[arg(long, value_name = "URL")]
    ledger: Option<String>,
    /// Close connections that have not sent their headers within this time.
    #[arg(long, default_value = "10s", value_parser = duration)]
    header_timeout: Duration,
}

pub(super) fn run(g: &Global, a: GateArgs) -> anyhow::Result<()> {
    let mut config = g.sale()?;
    config.gate.ledger = ledger_url(a.ledger.as_deref(), &config);
    let key = gate_key(a.key_file.as_deref())?;
    let cookie_key = match (&a.cookie_key_file, std::env::var("FLASHSALE_COOKIE_KEY")) {
        (Some(p), _) => Some(
            std::fs::read(p)
                .with_context(|| format!("cannot read the cookie key file {}", p.display()))?
                .trim_ascii()
                .to_vec(),
        ),
        (None, Ok(v)) if !v.trim().is_empty() => Some(v.trim().as_bytes().to_vec()),
        _ => None,
    };
    let stock: Vec<(String, u32)> = crate::site::items(&config)?
        .into_iter()
        .map(|i| (i.sku, i.stock))
        .collect();
    log_json();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let gate = Gate::start(
            &config,
            &stock,
            gate::Options {
                quota: a.quota,
                journal_dir: a.journal.clone(),
                forward: a.forward.clone(),
                gate_id: a.gate_id.clone(),
                key,
                cookie_key,
            },
        )
        .await
        .map_err(|e| match e {
            gate::Error::NoCookieKey => {
                anyhow::anyhow!("{e}: set $FLASHSALE_COOKIE_KEY or pass --cookie-key-file")
            }
            e => e.into(),
        })?;
        let listener = gate::bind(a.listen).await?;
        let addr = listener.local_addr()?;
        let identity = gate.identity();
        // Printed even with --quiet: scripts read the address from here.
        println!(
            "Gate listening on http://{addr}/ for sale `{}`; journal {}; identity from {identity}",
            config.name,
            a.journal.display()
        );
        for c in gate.counts() {
            g.detail(format!(
                "  {}: {} of {} admitted",
                c.sku, c.admitted, c.quota
            ));
        }
        gate::serve(gate, listener, a.header_timeout, shutdown_signal()).await;
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use flashsale::config::{Config, Identity};
use flashsale::gate::{self, Gate};
use flashsale::sale::GateKey;
use flashsale::theme::Theme;

use super::publish::parse_duration;
use super::Global;

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
pub struct GateArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Units this gate admits per item (default: [gate] quota, or stock / gates).
    #[arg(long)]
    pub quota: Option<u32>,
    /// Directory of the winners' journal (winners.jsonl) and forwarder state.
    #[arg(long, value_name = "DIR")]
    pub journal: PathBuf,
    /// The order system's webhook (default: [gate] forward).
    #[arg(long, value_name = "URL")]
    pub forward: Option<String>,
    /// This gate's name in order ids (default: generated once, kept in the journal dir).
    #[arg(long)]
    pub gate_id: Option<String>,
    /// The gate key (default: $FLASHSALE_GATE_KEY).
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// The shop's key for signed identity cookies (default: $FLASHSALE_COOKIE_KEY).
    #[arg(long, value_name = "PATH")]
    pub cookie_key_file: Option<PathBuf>,
    /// Close connections that have not sent their headers within this time.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
}

pub fn run(g: &Global, a: GateArgs) -> anyhow::Result<()> {
    let config = Config::load(&g.config)?;
    let key = GateKey::load(a.key_file.as_deref())?;
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
    let theme = Theme::load(&config)?;
    let statics: HashSet<String> = theme.statics.iter().map(|s| s.logical.clone()).collect();
    let items = flashsale::content::load(&config, &statics)?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let gate = Gate::start(
            &config,
            &items,
            gate::Options {
                quota: a.quota,
                journal_dir: a.journal.clone(),
                forward: a.forward.clone(),
                gate_id: a.gate_id.clone(),
                key,
                cookie_key,
            },
        )?;
        let listener = gate::bind(a.listen).await?;
        let addr = listener.local_addr()?;
        let identity = match &config.gate.identity {
            Identity::Header(h) => format!("header {h} (set it at a trusted proxy)"),
            Identity::Cookie(c) => format!("signed cookie {c}"),
        };
        // Printed even with --quiet: scripts read the address from here.
        println!(
            "Gate listening on http://{addr}/ for sale `{}`; journal {}; identity from {identity}",
            config.name,
            a.journal.display()
        );
        for (sku, admitted, quota) in gate.admitted() {
            g.detail(format!("  {sku}: {admitted} of {quota} admitted"));
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

//! `flashsale gate`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::prelude::{duration, gate_key, ledger_url, log_json, warn_if_shared, Global};
use crate::gate::{self, Gate};
use crate::journal::JournalError;
use crate::util::clock::Clock;

/// Run an order gate: admit at most the quota per item, journal every winner
/// (fsynced) before answering, forward winners to the order system, send
/// everyone else to the "sale ended" page.
///
/// POST /o/<sale>/<token> with the item's `sku` (form field or ?sku=) and the
/// user's identity: a header set by a trusted proxy ([gate] identity_header,
/// default X-User-Id; only safe behind a proxy that sets it) or the shop's
/// signed cookie ([gate] identity_cookie). Nothing else on that port: GET
/// /healthz and GET /metrics (Prometheus) are on --admin-listen (loopback by
/// default). Restarts replay the journal: sold units stay sold.
/// SIGTERM finishes in-flight requests and flushes the journal.
#[derive(Args, Debug)]
pub(super) struct GateArgs {
    /// Read the clock this many milliseconds ahead (negative: behind): a
    /// host whose clock is off, for tests and rehearsals of a fleet.
    #[arg(
        long,
        hide = true,
        default_value_t = 0,
        allow_hyphen_values = true,
        value_name = "MS"
    )]
    clock_offset_ms: i64,
    /// Address to listen on for orders (the public port: nothing else is
    /// answered there).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Address of the admin listener: GET /healthz (for the load balancer's
    /// health check) and GET /metrics (for Prometheus, `watch`, `close
    /// --when-sold-out`). Keep it off the public network.
    #[arg(long, default_value = "127.0.0.1:9180", value_name = "ADDR")]
    admin_listen: SocketAddr,
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
    /// The order system's key: every delivery is signed with it
    /// (Flashsale-Signature). Give it twice while rotating, the new key
    /// first (default: $FLASHSALE_FORWARD_KEY, one key or two separated by
    /// a comma). Never the gate key.
    #[arg(long, value_name = "PATH")]
    forward_key_file: Vec<PathBuf>,
    /// The fleet's shared ledger, redis://[:password@]host:port/db (default:
    /// $FLASHSALE_LEDGER_URL, else [gate] ledger). Without one, each gate
    /// admits its own quota.
    #[arg(long, value_name = "URL")]
    ledger: Option<String>,
    /// Close connections that have not sent their headers within this time.
    #[arg(long, default_value = "10s", value_parser = duration)]
    header_timeout: Duration,
    /// Answer 408 and close when an order's body has not arrived within this time.
    #[arg(long, default_value = "10s", value_parser = duration)]
    body_timeout: Duration,
    /// Connections open at once, in all (default: what the open-file limit
    /// allows, after raising it to the hard limit, at most 65536).
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Connections open at once from one address. Behind a load balancer every
    /// connection comes from the balancer: give it room.
    #[arg(long, value_name = "N", default_value_t = gate::DEFAULT_MAX_PER_CLIENT)]
    max_connections_per_client: usize,
    /// Threads answering requests (default: one per CPU the gate may use,
    /// on a work-stealing scheduler). With 1, one thread does everything but
    /// the journal's writes, on a current-thread scheduler (no cross-thread
    /// queues): for a gate given one CPU.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// Repair the journal and exit: keep every winner before the first line
    /// that is not one (what a power cut can leave), set the rest aside in
    /// winners.jsonl.dropped-<time>, and say what was set aside.
    #[arg(long)]
    repair_journal: bool,
    /// Try the dead letters again: winners the order system refused for good
    /// (a 3xx or 4xx), kept in <journal>/dead-letters.jsonl.
    #[arg(long)]
    resend_dead_letters: bool,
}

pub(super) fn run(g: &Global, a: GateArgs) -> anyhow::Result<()> {
    if a.repair_journal {
        return repair(g, &a);
    }
    let mut config = g.sale()?;
    config.gate.ledger = ledger_url(a.ledger.as_deref(), &config);
    let key = gate_key(a.key_file.as_deref())?;
    let forward_keys = forward_keys(&a.forward_key_file)?;
    if let Some(keys) = &forward_keys {
        let gate_key = key.to_file_text();
        if keys.iter().any(|k| k == gate_key.trim().as_bytes()) {
            anyhow::bail!(
                "the forward key is the gate key: the order system would hold the key that mints order URLs; give it a key of its own (`openssl rand -hex 32`)"
            );
        }
    }
    let signed = forward_keys.is_some();
    if let Some(p) = &a.cookie_key_file {
        warn_if_shared(p);
    }
    let cookie_key = super::prelude::cookie_key(a.cookie_key_file.as_deref())?;
    // A descriptor per connection: take what the system allows.
    let (before, after) = crate::util::fd::raise_open_files(1 << 20).unwrap_or((1024, 1024));
    let max_connections = a.max_connections.unwrap_or_else(|| {
        (after.saturating_sub(64) as usize).clamp(16, gate::DEFAULT_MAX_CONNECTIONS)
    });
    let limits = gate::Limits {
        header_timeout: a.header_timeout,
        max_connections,
        max_per_client: a.max_connections_per_client,
        ipv6_prefix: config.gate.ipv6_prefix,
    };
    let stock: Vec<(String, u32)> = crate::site::items(&config)?
        .into_iter()
        .map(|i| (i.sku, i.stock))
        .collect();
    log_json();
    let rt = runtime(a.threads)?;
    let threads = a.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
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
                forward_keys,
                body_timeout: a.body_timeout,
                resend_dead_letters: a.resend_dead_letters,
                origin: None,
                clock: Clock::skewed(a.clock_offset_ms),
            },
        )
        .await
        .map_err(|e| match e {
            gate::Error::NoCookieKey => {
                anyhow::anyhow!("{e}: set $FLASHSALE_COOKIE_KEY or pass --cookie-key-file")
            }
            gate::Error::Journal(JournalError::Corrupt { .. }) => {
                anyhow::anyhow!("{e}\n  = help: {}", super::prelude::REPAIR)
            }
            e => e.into(),
        })?;
        let listener = gate::bind(a.listen).await?;
        let addr = listener.local_addr()?;
        let admin = gate::bind(a.admin_listen).await?;
        let admin_addr = admin.local_addr()?;
        let identity = gate.identity();
        // On stderr, before the address line: scripts read that line first
        // from stdout, and may stop reading after it.
        if !g.quiet && a.forward.is_none() && config.gate.forward.is_none() {
            eprintln!(
                "note: no order system to forward winners to ([gate] forward or --forward): they are only journaled in {}",
                a.journal.join(crate::journal::WINNERS).display()
            );
        }
        let forwarding = a.forward.is_some() || config.gate.forward.is_some();
        if !g.quiet && forwarding && !signed {
            eprintln!(
                "note: deliveries to the order system are not signed: anyone who learns its URL can post winners; give it a key of its own (--forward-key-file or ${FORWARD_KEY_ENV})"
            );
        }
        // Printed even with --quiet: scripts read the address from here.
        println!(
            "Gate listening on http://{addr}/ for sale `{}`; admin on http://{admin_addr}/ (health, metrics); journal {}; identity from {identity}",
            config.name,
            a.journal.display()
        );
        for c in gate.counts() {
            g.detail(format!(
                "  {}: {} of {} admitted",
                c.sku, c.admitted, c.quota
            ));
        }
        tracing::info!(
            open_files_before = before,
            open_files = after,
            max_connections,
            max_connections_per_client = a.max_connections_per_client,
            threads,
            header_timeout_ms = a.header_timeout.as_millis() as u64,
            body_timeout_ms = a.body_timeout.as_millis() as u64,
            "gate_limits"
        );
        gate::serve(gate, listener, admin, limits, shutdown_signal()).await;
        Ok(())
    })
}

fn repair(g: &Global, a: &GateArgs) -> anyhow::Result<()> {
    // No gate may write while the journal is repaired.
    let _held = crate::journal::hold(&a.journal, "repair")?;
    let r = crate::journal::repair(&a.journal)?;
    match &r.set_aside {
        None => g.say(format!(
            "{}: {} winners, nothing to repair",
            a.journal.display(),
            r.kept
        )),
        Some(aside) => {
            g.say(format!(
                "{}: kept {} winners; set aside {} bytes ({}) in {}",
                a.journal.display(),
                r.kept,
                r.dropped_bytes,
                match r.dropped_lines {
                    0 => "no line that looks like a winner".to_string(),
                    1 => "1 line that may be a winner".to_string(),
                    n => format!("{n} lines that may be winners"),
                },
                aside.display()
            ));
            if r.dropped_lines > 0 {
                eprintln!("warning: look at {} before the sale goes on: a winner in it is not in the journal, and its unit could be sold again", aside.display());
            }
        }
    }
    Ok(())
}

/// The order system's keys for signed deliveries: from the files given, else
/// `$FLASHSALE_FORWARD_KEY`; at most two, each long enough to be secret.
fn forward_keys(files: &[PathBuf]) -> anyhow::Result<Option<Vec<Vec<u8>>>> {
    let keys: Vec<(Vec<u8>, String)> = if files.is_empty() {
        match std::env::var(FORWARD_KEY_ENV) {
            Ok(v) if !v.trim().is_empty() => v
                .split(',')
                .map(|k| (k.trim().as_bytes().to_vec(), format!("${FORWARD_KEY_ENV}")))
                .collect(),
            _ => return Ok(None),
        }
    } else {
        files
            .iter()
            .map(|p| {
                let bytes = std::fs::read(p)
                    .with_context(|| format!("cannot read the forward key file {}", p.display()))?;
                warn_if_shared(p);
                Ok((
                    bytes.trim_ascii().to_vec(),
                    format!("the forward key file {}", p.display()),
                ))
            })
            .collect::<anyhow::Result<_>>()?
    };
    if keys.len() > 2 {
        anyhow::bail!(
            "{} forward keys given; sign with at most two (the new one and the old one, while rotating)",
            keys.len()
        );
    }
    keys.into_iter()
        .map(|(key, source)| {
            if key.len() < gate::MIN_FORWARD_KEY {
                anyhow::bail!(
                    "{source} holds {} bytes; a forward key must be at least {} (use 32 random bytes, e.g. `openssl rand -hex 32`)",
                    key.len(),
                    gate::MIN_FORWARD_KEY
                );
            }
            Ok(key)
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .map(Some)
}

/// Where a forward key may come from instead of a file.
const FORWARD_KEY_ENV: &str = "FLASHSALE_FORWARD_KEY";

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// The gate's runtime: `--threads 1` is a current-thread runtime, else a
/// work-stealing one with that many workers (by default, one per CPU).
/// Measured on one CPU (bench/gate.sh's pinned runs), neither was faster
/// beyond the noise: the default stays tokio's.
fn runtime(threads: Option<u16>) -> std::io::Result<tokio::runtime::Runtime> {
    match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(n))
            .enable_all()
            .build(),
        None => tokio::runtime::Runtime::new(),
    }
}

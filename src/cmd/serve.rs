//! `flashsale serve`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::prelude::{duration, time, Global};
use crate::sale::GateKey;
use crate::serve::{self, Event, SaleOptions};

/// Build, then preview the sale locally with the same headers as production.
///
/// Edits to site.toml, items, templates and static files rebuild what they
/// affect and reload open browser pages. Serves only the built files.
///
/// With --opens-in (or --at) the whole sale runs here: the window moves to
/// start then (same length), the page counts down, sale.js switches to `open`
/// on time, orders go to the real gate in-process on the same port (journal in
/// a temporary directory unless --journal), and sale.js turns `ended` at the end
/// or as soon as every unit is sold.
#[derive(Args, Debug)]
pub(super) struct ServeArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, short = 'p', default_value_t = 3000)]
    port: u16,
    /// Address to listen on. The preview is for this machine: an address
    /// other than loopback is refused unless --public.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,
    /// Serve on a non-loopback --bind anyway. Whoever reaches it gets the
    /// preview's gate, which trusts any client's X-User-Id (or an unsigned
    /// cookie), with no connection caps, and its live-reload streams.
    #[arg(long)]
    public: bool,
    /// Do not watch for changes.
    #[arg(long)]
    no_watch: bool,
    /// Run the sale: open it this long after start-up, e.g. 30s or 2m.
    #[arg(long, value_name = "DURATION", value_parser = duration, conflicts_with = "at")]
    opens_in: Option<Duration>,
    /// Run the sale: open it at this time (RFC 3339 with offset).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// With a sale: keep the gate's journal here.
    #[arg(long, value_name = "DIR")]
    journal: Option<PathBuf>,
    /// With a sale: the gate key (default: a new one for this run; never
    /// $FLASHSALE_GATE_KEY, which on a CI runner is production's).
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// With a sale: units the gate admits per item (default: all the stock).
    #[arg(long)]
    quota: Option<u32>,
    /// With a sale: run the in-process gate on this shared ledger
    /// (redis://host:port/db), as a fleet's gates would; it is loaded with
    /// the sale's stock at start.
    #[arg(long, value_name = "URL", requires = "opens_in")]
    ledger: Option<String>,
}

pub(super) fn run(g: &Global, a: ServeArgs) -> anyhow::Result<()> {
    if !a.bind.is_loopback() {
        if !a.public {
            anyhow::bail!(
                "--bind {} would let other machines reach the preview, whose gate trusts any client's X-User-Id and has no connection caps; keep it on 127.0.0.1 (or ::1), or pass --public to expose it anyway",
                a.bind
            );
        }
        eprintln!(
            "warning: the preview is reachable on {} from other machines: its gate trusts any client's X-User-Id (or an unsigned cookie), caps no connections, and streams live reloads to anyone; for a rehearsal only",
            a.bind
        );
    }
    let start = match (&a.opens_in, &a.at) {
        (Some(d), _) => {
            let now = chrono::Utc::now().fixed_offset();
            let whole = now + chrono::Duration::from_std(*d)?;
            // On a whole second: easier to read in the countdown and the logs.
            Some(whole - chrono::Duration::nanoseconds(whole.timestamp_subsec_nanos() as i64))
        }
        (None, Some(t)) => Some(time("--at", t)?),
        (None, None) => None,
    };
    let sale = match start {
        Some(start) => {
            // Only an explicit key file: $FLASHSALE_GATE_KEY is production's
            // on a CI runner, and a preview must not mint its order URLs.
            let key = match &a.key_file {
                Some(path) => GateKey::load(Some(path))?,
                None => GateKey::generate(),
            };
            Some(SaleOptions {
                start,
                journal: a.journal.clone(),
                key,
                quota: a.quota,
                ledger: a.ledger.clone(),
            })
        }
        None => None,
    };
    if g.verbose {
        // The in-process gate's events (winners, refusals' reasons) as text.
        let _ = tracing_subscriber::fmt()
            .with_target(false)
            .with_writer(std::io::stderr)
            .try_init();
    }
    let rt = tokio::runtime::Runtime::new()?;
    let g2 = g.clone();
    let opts = serve::Options {
        config: g.config.clone(),
        addr: SocketAddr::new(a.bind, a.port),
        watch: !a.no_watch,
        sale,
    };
    rt.block_on(async move {
        tokio::select! {
            r = serve::run(opts, move |e| report(&g2, e)) => r.map_err(|e| match e {
                serve::Error::Listen { .. } => anyhow::anyhow!("{e}\n  = help: another program uses that port; pick another with --port, or --port 0 for any free one"),
                serve::Error::Gate(crate::gate::Error::Ledger(crate::ledger::LedgerError::HasWinners { .. })) => anyhow::anyhow!("{e}\n  = help: a rehearsal ledger can be emptied with `flashsale ledger clear --yes --ledger URL`"),
                e => e.into(),
            }),
            _ = stop_signal() => Ok(()),
        }
    })
    // The runtime ends here, with every task: a preview's temporary journal
    // is removed as its last holder goes.
}

/// Ctrl-C, or SIGTERM (a supervisor, `kill`): either stops serving cleanly.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn report(g: &Global, e: Event) {
    match e {
        // Printed even with --quiet: scripts read the address from here.
        Event::Listening(addr) => println!("Serving http://{addr}/ (Ctrl-C to stop)"),
        Event::Rebuilt { report, full, because } => g.say(format!(
            "{}{} in {} ms: {} written, {} removed",
            if full { "Rebuilt" } else { "Updated" },
            if because.is_empty() {
                String::new()
            } else {
                let names: Vec<String> = because.iter().take(3).map(|p| p.display().to_string()).collect();
                format!(" ({}{})", names.join(", "), if because.len() > 3 { ", ..." } else { "" })
            },
            report.elapsed.as_millis(),
            report.changes.written.len(),
            report.changes.removed.len()
        )),
        Event::SaleScheduled { start, end, journal, temporary } => g.say(format!(
            "Sale opens at {start} and ends at {end}; orders go to the gate at /o/ on this port (journal: {}{})",
            journal.display(),
            if temporary { ", removed at exit; --journal DIR keeps one" } else { "" }
        )),
        Event::Switched { state, why } => println!("sale.js is now `{state}` ({why})"),
        Event::Failed(msg) => eprintln!("error: {msg}\n(still serving the last good build)"),
        Event::Request { method, path, status } => g.detail(format!("{status} {method} {path}")),
    }
}

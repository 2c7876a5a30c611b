use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use clap::Args;

use flashsale::serve::{self, Event};

use super::Global;

/// Build, then preview the sale locally with the same headers as production.
///
/// Edits to site.toml, items, templates and static files rebuild what they
/// affect and reload open browser pages. Serves only the built files.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, short = 'p', default_value_t = 3000)]
    pub port: u16,
    /// Address to listen on. The preview is for this machine: keep it on loopback.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// Do not watch for changes.
    #[arg(long)]
    pub no_watch: bool,
}

pub fn run(g: &Global, a: ServeArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let g2 = g.clone();
    let opts = serve::Options {
        config: g.config.clone(),
        addr: SocketAddr::new(a.bind, a.port),
        watch: !a.no_watch,
    };
    rt.block_on(async move {
        tokio::select! {
            r = serve::run(opts, move |e| report(&g2, e)) => r.map_err(|e| match e {
                serve::Error::Listen { .. } => anyhow::anyhow!("{e}\n  = help: another program uses that port; pick another with --port, or --port 0 for any free one"),
                e => e.into(),
            }),

            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}

fn report(g: &Global, e: Event) {
    match e {
        // Printed even with --quiet: scripts read the address from here.
        Event::Listening(addr) => println!("Serving http://{addr}/ (Ctrl-C to stop)"),
        Event::Rebuilt {
            report,
            full,
            because,
        } => g.say(format!(
            "{}{} in {} ms: {} written, {} removed",
            if full { "Rebuilt" } else { "Updated" },
            if because.is_empty() {
                String::new()
            } else {
                let names: Vec<String> = because
                    .iter()
                    .take(3)
                    .map(|p| p.display().to_string())
                    .collect();
                format!(
                    " ({}{})",
                    names.join(", "),
                    if because.len() > 3 { ", ..." } else { "" }
                )
            },
            report.elapsed.as_millis(),
            report.changes.written.len(),
            report.changes.removed.len()
        )),
        Event::Failed(msg) => eprintln!("error: {msg}\n(still serving the last good build)"),
        Event::Request {
            method,
            path,
            status,
        } => g.detail(format!("{status} {method} {path}")),
    }
}

//! `flashsale rehearse`, with its report.

use std::time::Duration;

use clap::Args;

use super::prelude::{duration, Global};
use crate::loadtest::{self, Report};

/// Rehearse sale day: N simulated customers (distinct ids) poll sale.js with
/// jitter the way the page does, order as soon as it opens, and the outcome
/// is reported: requests/s, latency percentiles, winners, sold-out answers,
/// errors, time from open to sold out, and whether any unit was oversold.
///
/// Run it against `flashsale serve --opens-in 30s` or a staging deployment.
/// Talks only to loopback addresses and hosts named with --allow-host. Items
/// and stock come from the sale's site.toml. Exits 1 on errors or overselling.
#[derive(Args, Debug)]
pub(super) struct RehearseArgs {
    /// Where the sale's pages (and sale.js) are served.
    #[arg(long, default_value = "http://127.0.0.1:3000/")]
    url: String,
    /// Simulated customers.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    customers: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    concurrency: u64,
    /// Stop after this long, whatever happened.
    #[arg(long, default_value = "5m", value_parser = duration)]
    max_duration: Duration,
    /// Also allow this host (a staging gate), besides loopback.
    #[arg(long, value_name = "HOST")]
    allow_host: Vec<String>,
    /// Spread the orders over these gates, round robin (base URLs,
    /// comma-separated): the fleet's topology, rehearsed. Default: the order
    /// URL's own host.
    #[arg(long, value_delimiter = ',', value_name = "URL,URL")]
    gates: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(g: &Global, a: RehearseArgs) -> anyhow::Result<()> {
    let config = g.sale()?;
    let items = crate::site::items(&config)?;
    let opts = loadtest::Options {
        url: a.url.clone(),
        customers: a.customers as usize,
        concurrency: a.concurrency as usize,
        max_duration: a.max_duration,
        allow_hosts: a.allow_host.clone(),
        gates: a.gates.clone(),
        items: items
            .iter()
            .map(|i| (i.sku.clone(), i.stock as u64))
            .collect(),
    };
    if !a.json {
        g.say(format!(
            "Rehearsing `{}` at {} with {} customers ({} in flight at most)...",
            config.name, a.url, a.customers, a.concurrency
        ));
    }
    let rt = tokio::runtime::Runtime::new()?;
    let report = rt.block_on(loadtest::run(opts))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    if report.oversold {
        anyhow::bail!("OVERSOLD: more winners than stock");
    }
    if report.errors > 0 || report.duplicate_winners > 0 || report.timed_out {
        anyhow::bail!(
            "the rehearsal had {} errors, {} duplicate winners{}",
            report.errors,
            report.duplicate_winners,
            if report.timed_out {
                ", and timed out"
            } else {
                ""
            }
        );
    }
    Ok(())
}

fn print_report(r: &Report) {
    let ms = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{v} ms"));
    println!("customers           {}", r.customers);
    println!(
        "requests            {} in {:.1} s ({:.0}/s overall; orders {:.0}/s during the rush)",
        r.requests, r.seconds, r.requests_per_second, r.orders_per_second
    );
    println!(
        "sale.js polls       p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms ({} polls)",
        r.toggle.p50_ms, r.toggle.p95_ms, r.toggle.p99_ms, r.toggle.count
    );
    println!(
        "orders              p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} orders)",
        r.orders.p50_ms, r.orders.p95_ms, r.orders.p99_ms, r.orders.max_ms, r.orders.count
    );
    println!(
        "winners             {} of {} units in stock",
        r.winners, r.stock
    );
    println!("sold out answers    {}", r.sold_out);
    if !r.refused.is_empty() {
        println!("refused             {:?} (by HTTP status)", r.refused);
    }
    println!("too late            {}", r.too_late);
    println!(
        "errors              {}{}",
        r.errors,
        if r.error_samples.is_empty() {
            String::new()
        } else {
            format!(" e.g. {:?}", r.error_samples)
        }
    );
    println!(
        "open → sold out     {} (first sold-out answer); last winner after {}",
        ms(r.open_to_sold_out_ms),
        ms(r.open_to_last_win_ms)
    );
    println!(
        "oversold            {}",
        if r.oversold { "YES" } else { "no" }
    );
    for (gate, c) in &r.gates {
        println!(
            "gate {gate}: {} orders, {} won, {} sold out, {} other",
            c.orders, c.winners, c.sold_out, c.other
        );
    }
}

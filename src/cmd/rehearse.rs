//! `flashsale rehearse`, with its report.

use std::time::Duration;

use clap::Args;

use super::prelude::{duration, Global};
use crate::loadtest::{self, viewers, Report};

/// Rehearse sale day: N simulated customers (distinct ids) poll sale.js with
/// jitter the way the page does, order as soon as it opens, and the outcome
/// is reported: requests/s, latency percentiles, winners, sold-out answers,
/// errors, time from open to sold out, and whether any unit was oversold.
///
/// With --viewers instead: a crowd of pages that only poll sale.js (every
/// 1–3 s, about N/2 polls/s) for --duration, through the CDN or a cache
/// standing in for one; run `flashsale open` meanwhile to see how long the
/// last page waits for the switch. Reports polls/s, latency from the moment
/// each poll was due (the generator's own lag included), answers from a
/// cache's copy, and when pages first saw the new state.
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
    /// Besides the customers: bots, scripts that poll sale.js every 10 ms from
    /// just before the start and order the instant it opens, as a script on a
    /// machine next to the gates would. The report shows their share of the
    /// winners against their share of the customers.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    bots: u64,
    /// Pages that only poll sale.js, instead of customers who order.
    #[arg(long, value_name = "N", conflicts_with_all = ["customers", "gates", "bots"], value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    viewers: Option<u64>,
    /// With --viewers: how long they poll.
    #[arg(long, default_value = "30s", value_parser = duration, requires = "viewers")]
    duration: Duration,
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
    if let Some(viewers) = a.viewers {
        return run_viewers(g, &a, viewers);
    }
    let config = g.sale()?;
    let items = crate::site::items(&config)?;
    // A fair start holds each entry until the draw: every customer needs a
    // request in flight at once, as each real one has their own.
    let everyone = (a.customers + a.bots).min(10_000);
    let concurrency = match config.gate.fair_window_ms {
        Some(_) if a.concurrency < everyone => {
            if !a.json {
                g.say(format!("A fair start holds every entry until the draw: {everyone} requests in flight at most (--concurrency {} raised)", a.concurrency));
            }
            everyone
        }
        _ => a.concurrency,
    };
    let opts = loadtest::Options {
        url: a.url.clone(),
        customers: a.customers as usize,
        bots: a.bots as usize,
        concurrency: concurrency as usize,
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
            config.name, a.url, a.customers, concurrency
        ));
    }
    let rt = tokio::runtime::Runtime::new()?;
    let report = rt.block_on(loadtest::run(opts)).map_err(|e| match e {
        loadtest::Error::NotAllowed { .. } => {
            anyhow::anyhow!("{e}\n  = help: a host of your own staging deployment can be allowed with --allow-host HOST")
        }
        e => e.into(),
    })?;
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

/// The crowd in front of the CDN.
fn run_viewers(g: &Global, a: &RehearseArgs, viewers: u64) -> anyhow::Result<()> {
    if a.duration > a.max_duration {
        anyhow::bail!(
            "--duration {} is longer than --max-duration {}",
            crate::util::duration::words(a.duration),
            crate::util::duration::words(a.max_duration)
        );
    }
    let opts = viewers::Options {
        url: a.url.clone(),
        viewers: viewers as usize,
        duration: a.duration,
        concurrency: a.concurrency as usize,
        allow_hosts: a.allow_host.clone(),
    };
    if !a.json {
        g.say(format!(
            "{} pages polling {}sale.js for {} (about {} polls/s, {} in flight at most)...",
            viewers,
            a.url.trim_end_matches('/').to_string() + "/",
            crate::util::duration::words(a.duration),
            viewers / 2,
            a.concurrency
        ));
    }
    let rt = tokio::runtime::Runtime::new()?;
    let r = rt.block_on(viewers::run(opts))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        let spread = r
            .first_switch_unix_ms
            .zip(r.last_switch_unix_ms)
            .map_or("-".to_string(), |(a, b)| format!("{} ms", b - a));
        println!("pages               {}", r.viewers);
        println!(
            "polls               {} in {:.1} s ({:.0}/s)",
            r.polls, r.seconds, r.polls_per_second
        );
        println!(
            "latency             p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (from when each poll was due; generator lag up to {:.0} ms)",
            r.latency.p50_ms, r.latency.p99_ms, r.latency.max_ms, r.max_lag_ms
        );
        println!("answers             {:?} (by HTTP status)", r.statuses);
        println!("oldest answer       Age {} s", r.max_age_s);
        println!(
            "switch              {} of {} pages saw the toggle change from `{}`; first to last {spread}",
            r.pages_switched,
            r.viewers,
            r.first_state.as_deref().unwrap_or("-")
        );
        println!(
            "errors              {}{}",
            r.errors,
            if r.error_samples.is_empty() {
                String::new()
            } else {
                format!(" e.g. {:?}", r.error_samples)
            }
        );
    }
    if r.errors > 0 {
        anyhow::bail!("{} polls failed", r.errors);
    }
    Ok(())
}

fn print_report(r: &Report) {
    let ms = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{v} ms"));
    println!("customers           {}", r.customers);
    if r.bots > 0 {
        let all = (r.customers + r.bots) as f64;
        println!(
            "bots                {} ({:.1} % of those ordering) won {} of {} units ({:.1} %)",
            r.bots,
            100.0 * r.bots as f64 / all,
            r.bot_winners,
            r.winners,
            if r.winners > 0 {
                100.0 * r.bot_winners as f64 / r.winners as f64
            } else {
                0.0
            }
        );
    }
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
    if r.entrants > 0 {
        let share = |part: usize, all: usize| 100.0 * part as f64 / all.max(1) as f64;
        println!(
            "fair start          {} entrants ({} bots, {:.1} %), {} not drawn",
            r.entrants,
            r.bot_entrants,
            share(r.bot_entrants, r.entrants),
            r.not_drawn
        );
        println!(
            "draw answers        p50 {:.0} ms, p99 {:.0} ms, last {:.0} ms after the window closed",
            r.draw_answers.p50_ms, r.draw_answers.p99_ms, r.draw_answers.max_ms
        );
    }
    if !r.refused.is_empty() {
        println!("refused             {:?} (by HTTP status)", r.refused);
    }
    println!(
        "too late            {} (first saw sale.js `ended`, so never ordered)",
        r.too_late
    );
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

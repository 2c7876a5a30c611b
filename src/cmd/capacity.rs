//! `flashsale capacity`.

use clap::Args;

use super::prelude::{connect, duration, AwsArgs, Global};
use crate::capacity::{
    self, thousands, Inputs, PageBytes, CLOUDFRONT_BANDWIDTH, CLOUDFRONT_REQUESTS, EDGE_LAG_S,
    FUNCTION_USD_PER_MILLION, KVS_READ_USD_PER_MILLION, S3_GETS,
};
use crate::config::MAX_FAIR_WINDOW;
use crate::gate::{DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_PER_CLIENT};
use crate::site::Site;

/// Before a sale: the request rates N open pages cause, on paper, against the
/// published limits of S3, CloudFront and your gates.
///
/// From the page runtime's schedule (each page polls sale.js every 1–3 s from
/// its own moment around the start) and how the CDN caches sale.js, it prints
/// toggle polls/s at the edge, toggle requests/s at the origin (the bucket),
/// the orders/s at the gates in the busiest second after the switch, and how
/// long until every page has seen `open`; and a warning, with what to do,
/// for each limit crossed. Without --remote it assumes the README's CloudFront
/// set-up (sale.js cached 1 s, query string out of the cache key). With a
/// fair start ([gate] fair_window, or --fair-window), also the requests each
/// gate holds until the draw, against the gates' connection caps.
#[derive(Args, Debug)]
pub(super) struct CapacityArgs {
    /// Pages open at the start of the sale.
    #[arg(long, value_name = "N")]
    viewers: u64,
    /// How many of them press the button the moment it switches on
    /// (default: all of them).
    #[arg(long, value_name = "N")]
    clickers: Option<u64>,
    /// Read how the CloudFront distribution of [publish] caches sale.js, and
    /// whether its origin has Origin Shield, instead of assuming.
    #[arg(long)]
    remote: bool,
    /// Caches that ask the origin on their own: CloudFront's regional edge
    /// caches (13 at the time of writing), or 1 with Origin Shield.
    #[arg(long, value_name = "N", default_value_t = 13)]
    origin_caches: u32,
    /// Orders/s one gate answers once its quota is gone (nearly every order of
    /// a rush is a loser). The default is what bench/fleet.sh measured on the
    /// 2-core CI machine kind (sold-out path, two gates sharing the cores with
    /// wrk): run it on your gate machines and pass yours.
    #[arg(long, value_name = "N", default_value_t = 45_000)]
    gate_rate: u32,
    /// Over how long before the start the viewers open the page (the busiest
    /// minute of the page loads holds a minute's share of them).
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "1m")]
    arrival: std::time::Duration,
    /// Model a fair start with this window instead of [gate] fair_window
    /// ("0s": without one).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    fair_window: Option<std::time::Duration>,
    /// Model the order path's edge function ([edge] in site.toml, or this
    /// flag): after the last unit, only the orders in flight reach the gates.
    #[arg(long, conflicts_with = "no_edge")]
    edge: bool,
    /// Model the sale without the edge function even with [edge].
    #[arg(long)]
    no_edge: bool,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    aws: AwsArgs,
}

pub(super) fn run(g: &Global, a: CapacityArgs) -> anyhow::Result<()> {
    if a.viewers == 0 {
        anyhow::bail!("--viewers must be at least 1");
    }
    if a.fair_window.is_some_and(|w| w > MAX_FAIR_WINDOW) {
        anyhow::bail!(
            "--fair-window: a gate takes a fair_window of at most {} s; give a shorter one",
            MAX_FAIR_WINDOW.as_secs()
        );
    }
    let site = Site::from_config(g.sale()?)?;
    let config = &site.config;
    let toggle = format!("{}sale.js", config.base_path);
    let mut inputs = Inputs {
        viewers: a.viewers,
        clickers: a.clickers.unwrap_or(a.viewers).min(a.viewers),
        edge_seconds: crate::config::headers::TOGGLE_SHARED_SECONDS,
        forwards_every_poll: false,
        origin_caches: a.origin_caches.max(1),
        gates: config.gate.gates,
        gate_rate: f64::from(a.gate_rate),
        stock: site.items.iter().map(|i| u64::from(i.stock)).sum(),
        fair_window_s: match a.fair_window {
            Some(w) if w.is_zero() => None,
            Some(w) => Some(w.as_secs_f64()),
            None => config.gate.fair_window_ms.map(|ms| ms as f64 / 1e3),
        },
        page: None,
        arrival_s: a.arrival.as_secs_f64(),
        // Per order: the sale's key, its item, the `ended` mark (and the
        // cookie key when identities are signed cookies).
        edge: ((config.edge.is_some() || a.edge) && !a.no_edge).then_some(
            3 + u32::from(matches!(
                config.gate.identity,
                crate::config::Identity::Cookie(_)
            )),
        ),
    };
    // The heaviest item page, as a phone downloads it (the build in memory).
    let heaviest = crate::site::check::heaviest_item_page(&site)?;
    inputs.page = heaviest.as_ref().map(|(_, w)| PageBytes {
        first_view: w.first_view as u64,
        repeat_view: w.repeat_view as u64,
    });
    let mut edge = format!(
        "assumed: {toggle} cached {} s at the edge, query string out of the cache key, {} caches asking the origin (--remote reads your distribution)",
        inputs.edge_seconds, inputs.origin_caches
    );
    if a.remote {
        let Some(id) = config
            .publish
            .as_ref()
            .and_then(|p| p.distribution_id.clone())
        else {
            anyhow::bail!(
                "{}: --remote needs `distribution_id` in [publish]",
                config.path.display()
            );
        };
        let rt = tokio::runtime::Runtime::new()?;
        let caching = rt.block_on(async {
            let (_, cdn) = connect(config, "s3", &a.aws).await?;
            #[cfg_attr(not(feature = "aws"), expect(unused_variables, reason = "no CloudFront client can be made without the AWS SDK: what follows never runs"))]
            let cdn = cdn.expect("a distribution_id gives a CloudFront client");
            anyhow::Ok(cdn.toggle_caching(&toggle).await?)
        })?;
        inputs.edge_seconds = caching.edge_seconds();
        inputs.forwards_every_poll = caching.forwards_every_poll();
        if caching.origin_shield {
            inputs.origin_caches = 1;
        }
        edge = format!(
            "CloudFront distribution {id}: {} ({}){}{}",
            caching.behaviour,
            caching.source,
            if inputs.forwards_every_poll {
                ": every poll is forwarded to the origin".to_string()
            } else {
                format!(": {toggle} cached {} s at the edge", inputs.edge_seconds)
            },
            if caching.origin_shield {
                ", Origin Shield on (1 cache asks the origin)"
            } else {
                ""
            }
        );
    }
    let out = capacity::model(&inputs);
    if a.json {
        let limits = [&S3_GETS, &CLOUDFRONT_REQUESTS, &CLOUDFRONT_BANDWIDTH];
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "viewers": inputs.viewers,
                "clickers": inputs.clickers,
                "edge": edge,
                "gates": inputs.gates,
                "gate_rate": inputs.gate_rate,
                "stock": inputs.stock,
                "heaviest_page": heaviest.as_ref().map(|(p, _)| p),
                "outcome": out,
                "limits": limits,
            }))?
        );
    } else if !g.quiet {
        let row = |what: &str, value: String, note: String| {
            println!("  {what:<38} {value:>12}  {note}");
        };
        println!(
            "Capacity of `{}` for {} open pages ({} clicking at once)",
            config.name,
            thousands(inputs.viewers as f64),
            thousands(inputs.clickers as f64)
        );
        println!("  {edge}");
        println!();
        let mark = |x: f64, limit: f64| if x > limit { "OVER" } else { "ok" };
        row(
            "toggle polls at the edge",
            format!("{}/s", thousands(out.toggle_edge_per_s)),
            format!(
                "{} [1] limit {}/s per distribution",
                mark(out.toggle_edge_per_s, CLOUDFRONT_REQUESTS.per_second),
                thousands(CLOUDFRONT_REQUESTS.per_second)
            ),
        );
        row(
            "toggle requests at the origin (S3)",
            format!("{}/s", thousands(out.toggle_origin_per_s)),
            format!(
                "{} [2] limit {}/s per prefix",
                mark(out.toggle_origin_per_s, S3_GETS.per_second),
                thousands(S3_GETS.per_second)
            ),
        );
        row(
            "orders at the gates, busiest second",
            format!("{}/s", thousands(out.orders_peak_per_s)),
            format!(
                "{} [3] {} gate{} x {}/s = {}/s; at most {} win",
                mark(out.orders_peak_per_s, out.gates_per_s),
                inputs.gates,
                if inputs.gates == 1 { "" } else { "s" },
                thousands(inputs.gate_rate),
                thousands(out.gates_per_s),
                thousands(inputs.stock as f64)
            ),
        );
        row(
            "orders in the first 5 s",
            thousands(out.orders_first_5s),
            String::new(),
        );
        let after = &out.after_sold_out;
        row(
            "orders after the last unit",
            thousands(after.orders),
            after
                .sold_out_s
                .map_or("the clickers do not take all the stock".to_string(), |t| {
                    format!("sold out {t:.2} s after the switch")
                }),
        );
        if let (Some(reach), Some(cost), Some(per)) = (
            after.reaching_gates_with_edge,
            after.edge_cost_usd,
            after.edge_usd_per_million,
        ) {
            row(
                "of those, reaching the gates",
                thousands(reach),
                format!(
                    "[6] the edge answers the rest; its function costs US${cost:.2} for the sale's orders (US${per:.2} per million)"
                ),
            );
        }
        if let Some(f) = &out.fair_start {
            let held = f.held_per_gate.ceil();
            row(
                "held until the draw, per gate",
                thousands(held),
                format!(
                    "{} [4] {} entrants in the {} s window, all answered {:.1} s after it; caps {} per client, {} in all",
                    if held > DEFAULT_MAX_PER_CLIENT as f64 {
                        "OVER"
                    } else {
                        "ok"
                    },
                    thousands(f.entrants),
                    f.window_s,
                    f.answered_after_s,
                    thousands(DEFAULT_MAX_PER_CLIENT as f64),
                    thousands(DEFAULT_MAX_CONNECTIONS as f64)
                ),
            );
        }
        if let Some(e) = &out.egress {
            row(
                "page loads, busiest minute",
                format!("{:.1} Gbit/s", e.busiest_minute_gbit_s),
                format!(
                    "{} [5] limit {:.0} Gbit/s per distribution; {} KiB a first view ({}), {} KiB a repeat view",
                    mark(e.busiest_minute_gbit_s * 1e9, CLOUDFRONT_BANDWIDTH.per_second),
                    CLOUDFRONT_BANDWIDTH.per_second / 1e9,
                    thousands(e.first_view_bytes as f64 / 1024.0),
                    heaviest.as_ref().map_or("", |(p, _)| p.as_str()),
                    thousands(e.repeat_view_bytes as f64 / 1024.0),
                ),
            );
            row(
                "page loads, all viewers",
                if e.total_tb >= 1.0 {
                    format!("{:.2} TB", e.total_tb)
                } else {
                    format!("{:.1} GB", e.total_tb * 1e3)
                },
                format!("over {} s before the start (--arrival)", e.arrival_s),
            );
        }
        row(
            "every page has seen `open`",
            format!("{:.1} s", out.last_page_sees_open_s),
            format!(
                "after the toggle's PUT (edge time {} s + one poll, 1-3 s)",
                if inputs.forwards_every_poll {
                    0
                } else {
                    inputs.edge_seconds
                }
            ),
        );
        println!();
        println!(
            "  [1] {}: {}",
            CLOUDFRONT_REQUESTS.what, CLOUDFRONT_REQUESTS.source
        );
        println!("  [2] {}: {}", S3_GETS.what, S3_GETS.source);
        println!("  [3] --gate-rate: measured by bench/fleet.sh (README, Benchmarks); `gates` from [gate]");
        if out.fair_start.is_some() {
            println!("  [4] a gate's defaults: --max-connections-per-client (behind a load balancer, the balancer's connections) and --max-connections (or what the open-file limit allows)");
        }
        println!(
            "  [5] {}: {}",
            CLOUDFRONT_BANDWIDTH.what, CLOUDFRONT_BANDWIDTH.source
        );
        if out.after_sold_out.reaching_gates_with_edge.is_some() {
            println!("  [6] the orders in the {EDGE_LAG_S} s after the last unit (close --when-sold-out asks every second; the KeyValueStore's change reaches the edges in seconds, 5 assumed); US${FUNCTION_USD_PER_MILLION:.2} per million function invocations and US${KVS_READ_USD_PER_MILLION:.2} per million KeyValueStore reads (Amazon CloudFront pricing)");
        }
        println!("  Page loads are weighed as a phone downloads the heaviest item page (`flashsale check`: gzip HTML, CSS, JS and the photo candidate at 412 CSS px, DPR 2.625).");
    }
    for w in &out.warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}

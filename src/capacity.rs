//! The sale day on paper: from the number of open pages, the page runtime's
//! polling schedule and the CDN's caching of the toggle, the request rates at
//! the edge, at the origin and at the gates in the first seconds, against the
//! providers' published limits. What `flashsale capacity` prints.
//!
//! The order burst comes from a simulation of the runtime's schedule
//! (`sale::polling`, held to `runtime.js` by a test), not a formula.

use serde::Serialize;

use crate::gate::{DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_PER_CLIENT};
use crate::sale::polling;

/// Near the start a page polls every 1–3 s (`sale::polling`, the runtime's schedule).
pub(crate) const POLL_MIN_S: f64 = polling::POLL_MIN_MS as f64 / 1000.0;
pub(crate) const POLL_MAX_S: f64 = (polling::POLL_MIN_MS + polling::POLL_SPREAD_MS) as f64 / 1000.0;
/// Each page starts polling at its own moment in [start − 2 s, start + 1 s].
pub(crate) const FIRST_POLL_FROM_S: f64 = -(polling::FIRST_POLL_LEAD_MS as f64) / 1000.0;
pub(crate) const FIRST_POLL_SPREAD_S: f64 = polling::JITTER_MS as f64 / 1000.0;

/// A published limit and where it is published.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Limit {
    pub(crate) per_second: f64,
    pub(crate) what: &'static str,
    pub(crate) source: &'static str,
}

/// Amazon S3: "at least 5,500 GET/HEAD requests per second per partitioned prefix".
pub(crate) const S3_GETS: Limit = Limit {
    per_second: 5_500.0,
    what: "S3 GET/HEAD requests per second per partitioned prefix",
    source:
        "Amazon S3 User Guide, \"Best practices design patterns: optimizing Amazon S3 performance\"",
};
/// CloudFront: 250,000 requests per second per distribution (a default quota, adjustable).
pub(crate) const CLOUDFRONT_REQUESTS: Limit = Limit {
    per_second: 250_000.0,
    what: "CloudFront requests per second per distribution (default quota, adjustable)",
    source: "Amazon CloudFront Developer Guide, \"Quotas\", general quotas on distributions",
};

/// CloudFront: 150 Gbps per distribution (a default quota, adjustable), in bits per second.
pub(crate) const CLOUDFRONT_BANDWIDTH: Limit = Limit {
    per_second: 150e9,
    what: "CloudFront data transfer rate per distribution (default quota, adjustable), bits per second",
    source: "Amazon CloudFront Developer Guide, \"Quotas\", general quotas on distributions",
};

/// CloudFront Functions: US$0.10 per million invocations; KeyValueStore:
/// US$0.03 per million reads from functions (Amazon CloudFront pricing page,
/// "CloudFront Functions" and "CloudFront KeyValueStore", as of 2026).
pub(crate) const FUNCTION_USD_PER_MILLION: f64 = 0.10;
pub(crate) const KVS_READ_USD_PER_MILLION: f64 = 0.03;

/// From the last unit sold until every edge answers the sold-out way: `close
/// --when-sold-out` asks every second, then the KeyValueStore's change
/// reaches the edges, in seconds by AWS's account (no bound published: 5 s
/// assumed).
pub(crate) const EDGE_LAG_S: f64 = 1.0 + 5.0;

/// What one page view downloads, in bytes (`site::check::PageWeight`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct PageBytes {
    /// Nothing cached: HTML, CSS, JS and the photo a phone picks.
    pub(crate) first_view: u64,
    /// Fingerprinted assets cached: the HTML again.
    pub(crate) repeat_view: u64,
}

/// What the page loads before the start cost the CDN.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Egress {
    pub(crate) first_view_bytes: u64,
    pub(crate) repeat_view_bytes: u64,
    /// Seconds over which the viewers load the page.
    pub(crate) arrival_s: f64,
    /// Gbit/s out of the CDN in the busiest minute of the arrivals.
    pub(crate) busiest_minute_gbit_s: f64,
    /// Terabytes out of the CDN for every viewer's first view.
    pub(crate) total_tb: f64,
}

/// The egress of `viewers` first views spread evenly over `arrival_s`
/// seconds (at least a minute: the busiest minute holds the share of them
/// that a minute is of the arrival).
pub(crate) fn egress(viewers: u64, page: PageBytes, arrival_s: f64) -> Egress {
    let arrival_s = arrival_s.max(60.0);
    let bytes = viewers as f64 * page.first_view as f64;
    let in_busiest_minute = bytes * (60.0 / arrival_s);
    Egress {
        first_view_bytes: page.first_view,
        repeat_view_bytes: page.repeat_view,
        arrival_s,
        busiest_minute_gbit_s: in_busiest_minute * 8.0 / 60.0 / 1e9,
        total_tb: bytes / 1e12,
    }
}

/// What the model is given.
#[derive(Debug, Clone)]
pub(crate) struct Inputs {
    /// Pages open at the start.
    pub(crate) viewers: u64,
    /// How many of them press the button as soon as it switches on.
    pub(crate) clickers: u64,
    /// Seconds an edge answers from its copy of the toggle (0: never).
    pub(crate) edge_seconds: i64,
    /// Whether every poll reaches the origin (caching off, or a per-request
    /// value in the cache key).
    pub(crate) forwards_every_poll: bool,
    /// Caches that ask the origin on their own (regional edge caches, or 1
    /// with Origin Shield).
    pub(crate) origin_caches: u32,
    /// Gates sharing the stock, and what one answers per second.
    pub(crate) gates: u32,
    pub(crate) gate_rate: f64,
    /// Units on sale, all items together.
    pub(crate) stock: u64,
    /// A fair start's window (`fair_window` in `[gate]`), in seconds.
    pub(crate) fair_window_s: Option<f64>,
    /// The heaviest item page, as a phone downloads it; `None`: not weighed.
    pub(crate) page: Option<PageBytes>,
    /// Seconds over which the viewers open the page before the start.
    pub(crate) arrival_s: f64,
    /// The order path's edge function (`[edge]`), and the KeyValueStore
    /// reads it makes per order (with a signed cookie, one more).
    pub(crate) edge: Option<u32>,
}

/// What the model says.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Outcome {
    /// Toggle polls per second at the edge near the start.
    pub(crate) toggle_edge_per_s: f64,
    /// Toggle requests per second reaching the origin (the bucket).
    pub(crate) toggle_origin_per_s: f64,
    /// Orders per second at the gates in the busiest second after the switch.
    pub(crate) orders_peak_per_s: f64,
    /// Orders in the first 5 s after the switch.
    pub(crate) orders_first_5s: f64,
    /// Seconds from the toggle's PUT until the last page has seen `open`.
    pub(crate) last_page_sees_open_s: f64,
    /// What all gates answer per second.
    pub(crate) gates_per_s: f64,
    /// With a fair start: the requests the gates hold until the draw.
    pub(crate) fair_start: Option<FairStart>,
    /// The bytes the page loads cost, when the page was weighed.
    pub(crate) egress: Option<Egress>,
    /// What the gates see after the last unit, with and without the edge.
    pub(crate) after_sold_out: AfterSoldOut,
    /// Each published limit crossed, as a sentence with what to do.
    pub(crate) warnings: Vec<String>,
}

/// The losers' flood: the orders after the last unit is gone.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AfterSoldOut {
    /// Seconds after the switch until the stock is gone (`None`: the
    /// clickers do not take it all).
    pub(crate) sold_out_s: Option<f64>,
    /// Orders after that, all of which a gate answers without an edge.
    pub(crate) orders: f64,
    /// With the edge: the orders that still reach the gates (those in the
    /// [`EDGE_LAG_S`] after the last unit); the rest are answered at the edge.
    pub(crate) reaching_gates_with_edge: Option<f64>,
    /// The function's and its reads' cost for every order of the sale, US$.
    pub(crate) edge_cost_usd: Option<f64>,
    /// The same per million orders.
    pub(crate) edge_usd_per_million: Option<f64>,
}

/// A fair start holds every entrant's request until the window closes: one
/// open connection each, all at once at the window's end.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FairStart {
    pub(crate) window_s: f64,
    /// Clickers who see `open` before the window closes.
    pub(crate) entrants: f64,
    /// Connections each gate holds at the window's end (the entrants spread
    /// evenly over the gates).
    pub(crate) held_per_gate: f64,
    /// Seconds after the window until a gate has answered all it holds, at
    /// its `gate_rate` (the draw itself takes milliseconds).
    pub(crate) answered_after_s: f64,
}

/// Runs the model.
pub(crate) fn model(i: &Inputs) -> Outcome {
    let mean_poll = (POLL_MIN_S + POLL_MAX_S) / 2.0;
    let toggle_edge_per_s = i.viewers as f64 / mean_poll;
    let toggle_origin_per_s = if i.forwards_every_poll {
        toggle_edge_per_s
    } else {
        // One refresh per cache per edge time, and never more than the polls.
        (f64::from(i.origin_caches) / i.edge_seconds as f64).min(toggle_edge_per_s)
    };
    let edge_delay = if i.forwards_every_poll {
        0.0
    } else {
        i.edge_seconds as f64
    };
    let burst = simulate(edge_delay, i.fair_window_s.unwrap_or(0.0), 200_000);
    let scale = i.clickers as f64 / burst.pages as f64;
    let gates_per_s = f64::from(i.gates) * i.gate_rate;
    let mut out = Outcome {
        toggle_edge_per_s,
        toggle_origin_per_s,
        orders_peak_per_s: burst.peak_per_s as f64 * scale,
        orders_first_5s: burst.first_5s as f64 * scale,
        last_page_sees_open_s: burst.last_s,
        gates_per_s,
        fair_start: i.fair_window_s.map(|window_s| {
            let entrants = burst.within_window as f64 * scale;
            let held_per_gate = entrants / f64::from(i.gates.max(1));
            FairStart {
                window_s,
                entrants,
                held_per_gate,
                answered_after_s: held_per_gate / i.gate_rate,
            }
        }),
        egress: i.page.map(|p| egress(i.viewers, p, i.arrival_s)),
        after_sold_out: after_sold_out(i, &burst, scale),
        warnings: Vec::new(),
    };
    if let Some(e) = &out.egress {
        let limit = CLOUDFRONT_BANDWIDTH.per_second / 1e9;
        if e.busiest_minute_gbit_s > limit {
            out.warnings.push(format!(
                "page loads in the busiest minute ({:.0} Gbit/s, {} KiB a view) cross the {} ({limit:.0} Gbit/s, {:.1}x): ask AWS to raise \"Data transfer rate per distribution\" (Service Quotas, CloudFront) weeks before the sale, or make the page lighter (`flashsale check` weighs it)",
                e.busiest_minute_gbit_s,
                e.first_view_bytes / 1024,
                CLOUDFRONT_BANDWIDTH.what,
                e.busiest_minute_gbit_s / limit
            ));
        }
    }
    if toggle_edge_per_s > CLOUDFRONT_REQUESTS.per_second {
        out.warnings.push(format!(
            "toggle polls at the edge ({}/s) cross the {} ({}/s, {:.1}x): ask AWS to raise \"Request rate per distribution\" (Service Quotas, CloudFront) weeks before the sale",
            thousands(toggle_edge_per_s),
            CLOUDFRONT_REQUESTS.what,
            thousands(CLOUDFRONT_REQUESTS.per_second),
            toggle_edge_per_s / CLOUDFRONT_REQUESTS.per_second
        ));
    }
    if toggle_origin_per_s > S3_GETS.per_second {
        out.warnings.push(format!(
            "toggle requests at the origin ({}/s) cross the {} ({}/s, {:.1}x): S3 answers 503 Slow Down; let the CDN cache sale.js for a second with the query string out of the cache key (`flashsale check --remote` says which setting)",
            thousands(toggle_origin_per_s),
            S3_GETS.what,
            thousands(S3_GETS.per_second),
            toggle_origin_per_s / S3_GETS.per_second
        ));
    }
    if out.orders_peak_per_s > gates_per_s {
        out.warnings.push(format!(
            "orders in the busiest second ({}/s) exceed what {} gate{} ({}/s, {:.1}x): run more gates (`gates` in [gate]), or expect 503s that the page runtime retries with backoff",
            thousands(out.orders_peak_per_s),
            i.gates,
            if i.gates == 1 { " answers" } else { "s answer" },
            thousands(gates_per_s),
            out.orders_peak_per_s / gates_per_s
        ));
    }
    if let Some(f) = &out.fair_start {
        let held = f.held_per_gate.ceil();
        if held > DEFAULT_MAX_CONNECTIONS as f64 {
            out.warnings.push(format!(
                "a fair start holds {} connections per gate at the window's end, more than a gate's default cap ({}, or what its open-file limit allows): run more gates (`gates` in [gate]), or give each gate --max-connections {} and an open-file limit above it (LimitNOFILE)",
                thousands(held),
                thousands(DEFAULT_MAX_CONNECTIONS as f64),
                held
            ));
        }
        if held > DEFAULT_MAX_PER_CLIENT as f64 {
            out.warnings.push(format!(
                "a fair start holds {} connections per gate at the window's end, more than --max-connections-per-client allows by default ({}): behind a load balancer every connection is the balancer's, so give each gate --max-connections-per-client {} (and let the balancer wait {} s and more for a response: the window, then the draw)",
                thousands(held),
                thousands(DEFAULT_MAX_PER_CLIENT as f64),
                held,
                f.window_s
            ));
        }
    }
    out
}

/// When the stock is gone in the burst, and what follows it at the gates.
fn after_sold_out(i: &Inputs, burst: &Burst, scale: f64) -> AfterSoldOut {
    let total = i.clickers as f64;
    let mut seen = 0.0;
    let mut sold_out_s = None;
    for (k, n) in burst.bins.iter().enumerate() {
        seen += *n as f64 * scale;
        if seen >= i.stock as f64 {
            sold_out_s = Some((k + 1) as f64 * BIN);
            break;
        }
    }
    let orders = (total - i.stock as f64).max(0.0);
    let in_lag = sold_out_s.map_or(0.0, |t| {
        let from = (t / BIN) as usize;
        let to = ((t + EDGE_LAG_S) / BIN) as usize;
        burst.bins[from.min(burst.bins.len())..to.min(burst.bins.len())]
            .iter()
            .sum::<u64>() as f64
            * scale
    });
    let per_million = i
        .edge
        .map(|reads| FUNCTION_USD_PER_MILLION + f64::from(reads) * KVS_READ_USD_PER_MILLION);
    AfterSoldOut {
        sold_out_s,
        orders,
        reaching_gates_with_edge: i.edge.map(|_| in_lag.min(orders)),
        edge_cost_usd: per_million.map(|p| p * total / 1e6),
        edge_usd_per_million: per_million,
    }
}

/// The simulation's time step, in seconds.
const BIN: f64 = 0.01;

/// The order burst from `pages` simulated pages.
struct Burst {
    /// Pages first seeing `open`, per [`BIN`] from the switch.
    bins: Vec<u64>,
    pages: u64,
    /// Pages first seeing `open` in the busiest 1 s window.
    peak_per_s: u64,
    first_5s: u64,
    last_s: f64,
    /// Pages first seeing `open` before the fair window's end.
    within_window: u64,
}

/// Each page polls on the runtime's schedule; the edge's copy turns `open`
/// at a uniformly random moment within `edge_delay` of the PUT (at 0, the
/// start). A page sees `open` at its first poll after that, and clicks then.
fn simulate(edge_delay: f64, window: f64, pages: u64) -> Burst {
    const SPAN: f64 = 30.0;
    let mut bins = vec![0u64; (SPAN / BIN) as usize];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut last: f64 = 0.0;
    let mut within_window = 0;
    for _ in 0..pages {
        let switch = rng.unit() * edge_delay;
        let mut t = FIRST_POLL_FROM_S + rng.unit() * FIRST_POLL_SPREAD_S;
        while t < switch {
            t += POLL_MIN_S + rng.unit() * (POLL_MAX_S - POLL_MIN_S);
        }
        last = last.max(t);
        within_window += u64::from(t < window);
        let bin = ((t.max(0.0) / BIN) as usize).min(bins.len() - 1);
        bins[bin] += 1;
    }
    let window = (1.0 / BIN) as usize;
    let mut sum: u64 = bins[..window].iter().sum();
    let mut peak = sum;
    for k in window..bins.len() {
        sum = sum + bins[k] - bins[k - window];
        peak = peak.max(sum);
    }
    Burst {
        first_5s: bins[..(5.0 / BIN) as usize].iter().sum(),
        bins,
        pages,
        peak_per_s: peak,
        last_s: last,
        within_window,
    }
}

/// A fixed-seed generator, so the same inputs always print the same figures.
struct XorShift(u64);

impl XorShift {
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `1234567.8` as `1,234,568`.
pub(crate) fn thousands(x: f64) -> String {
    let n = x.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (k, c) in s.chars().enumerate() {
        if k > 0 && (s.len() - k).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(viewers: u64) -> Inputs {
        Inputs {
            viewers,
            clickers: viewers,
            edge_seconds: 1,
            forwards_every_poll: false,
            origin_caches: 13,
            gates: 10,
            gate_rate: 45_000.0,
            stock: 100,
            fair_window_s: None,
            page: None,
            arrival_s: 60.0,
            edge: None,
        }
    }

    #[test]
    fn with_the_edge_the_gates_see_the_orders_in_flight_not_the_crowd() {
        let without = model(&inputs(1_000_000)).after_sold_out;
        let with = model(&Inputs {
            edge: Some(3),
            ..inputs(1_000_000)
        })
        .after_sold_out;
        // 100 units go in the first instants; nearly a million orders follow.
        assert!(without.sold_out_s.unwrap() < 0.5, "{without:?}");
        assert_eq!(without.orders, 999_900.0);
        assert!(without.reaching_gates_with_edge.is_none());
        let reach = with.reaching_gates_with_edge.unwrap();
        // The orders of the first seconds after the last unit still reach
        // the gates; the later ones (pages that see `open` 3 to 8 s late,
        // after an edge's 1 s copy and a 1–3 s poll) do not.
        assert!(reach > 0.0 && reach < with.orders, "{with:?}");
        // US$0.10 per million invocations, 3 reads at US$0.03.
        assert!((with.edge_usd_per_million.unwrap() - 0.19).abs() < 1e-9);
        assert!((with.edge_cost_usd.unwrap() - 0.19).abs() < 1e-9);
    }

    #[test]
    fn the_model_polls_on_the_runtimes_schedule() {
        // sale::polling is held to runtime.js by its own test.
        assert_eq!((POLL_MIN_S, POLL_MAX_S), (1.0, 3.0));
        assert_eq!((FIRST_POLL_FROM_S, FIRST_POLL_SPREAD_S), (-2.0, 3.0));
    }

    #[test]
    fn a_cached_toggle_keeps_the_origin_flat_whatever_the_crowd() {
        let small = model(&inputs(10_000));
        let big = model(&inputs(1_000_000));
        assert_eq!(small.toggle_edge_per_s, 5_000.0);
        assert_eq!(big.toggle_edge_per_s, 500_000.0);
        assert_eq!(small.toggle_origin_per_s, 13.0);
        assert_eq!(big.toggle_origin_per_s, 13.0);
        // 500,000/s is twice CloudFront's default quota: one warning, about it.
        assert_eq!(big.warnings.len(), 1, "{:?}", big.warnings);
        assert!(big.warnings[0].contains("2.0x"), "{:?}", big.warnings);
        assert!(small.warnings.is_empty(), "{:?}", small.warnings);
    }

    #[test]
    fn an_uncached_toggle_sends_every_poll_to_s3() {
        let mut i = inputs(100_000);
        i.forwards_every_poll = true;
        i.edge_seconds = 0;
        let o = model(&i);
        assert_eq!(o.toggle_origin_per_s, 50_000.0);
        assert!(
            o.warnings
                .iter()
                .any(|w| w.contains("9.1x") && w.contains("S3")),
            "{:?}",
            o.warnings
        );
    }

    #[test]
    fn the_burst_spreads_over_the_poll_interval_plus_the_edge_time() {
        let o = model(&inputs(1_000_000));
        // Every page has seen `open` within the edge time plus one poll interval.
        assert!(
            o.last_page_sees_open_s <= 1.0 + POLL_MAX_S,
            "{}",
            o.last_page_sees_open_s
        );
        // Nobody clicks twice: at most everyone within 5 s, at least most of them.
        assert!(o.orders_first_5s <= 1_000_000.5 && o.orders_first_5s > 990_000.0);
        // The busiest second holds more than an even spread, less than everyone.
        assert!(
            o.orders_peak_per_s > 250_000.0 && o.orders_peak_per_s < 700_000.0,
            "{}",
            o.orders_peak_per_s
        );
    }

    #[test]
    fn a_fair_start_holds_its_entrants_and_warns_at_the_gates_connection_caps() {
        // No window: no fair start, no held connections.
        assert!(model(&inputs(100_000)).fair_start.is_none());
        // A 4 s window covers the edge's second plus one poll (at most 3 s):
        // every clicker enters, held on 10 gates.
        let mut i = inputs(100_000);
        i.fair_window_s = Some(4.0);
        let o = model(&i);
        let f = o.fair_start.as_ref().unwrap();
        assert_eq!(f.entrants.round(), 100_000.0, "{f:?}");
        assert_eq!(f.held_per_gate.round(), 10_000.0, "{f:?}");
        // Each gate answers its 10,000 at 45,000/s: 0.22 s after the window.
        assert!(
            (f.answered_after_s - 10_000.0 / 45_000.0).abs() < 0.01,
            "{f:?}"
        );
        // 10,000 per gate: over the per-client default (a balancer's), under
        // the total cap.
        assert_eq!(o.warnings.len(), 1, "{:?}", o.warnings);
        assert!(
            o.warnings[0].contains("--max-connections-per-client 10000"),
            "{:?}",
            o.warnings
        );
        // A million on one gate: both caps.
        let mut i = inputs(1_000_000);
        i.fair_window_s = Some(4.0);
        i.gates = 1;
        let o = model(&i);
        assert!(
            o.warnings
                .iter()
                .any(|w| w.contains("--max-connections 1000000")),
            "{:?}",
            o.warnings
        );
        // A 1 s window: only the pages that see `open` within it enter (the
        // edge's copy turns within 1 s, a page polls every 1–3 s).
        let mut i = inputs(100_000);
        i.fair_window_s = Some(1.0);
        let f = model(&i).fair_start.unwrap();
        assert!(f.entrants > 5_000.0 && f.entrants < 60_000.0, "{f:?}");
    }

    #[test]
    fn the_egress_of_a_million_first_views_in_a_minute() {
        // A camera photo as it is (2,806 KiB a view) against the same page
        // with the photo made responsive (95 KiB).
        let raw = PageBytes {
            first_view: 2_806 * 1024,
            repeat_view: 3 * 1024,
        };
        let light = PageBytes {
            first_view: 95 * 1024,
            repeat_view: 3 * 1024,
        };
        let e = egress(1_000_000, raw, 60.0);
        assert!((e.total_tb - 2.873).abs() < 0.001, "{e:?}");
        assert!((e.busiest_minute_gbit_s - 383.1).abs() < 0.1, "{e:?}");
        let l = egress(1_000_000, light, 60.0);
        assert!((l.busiest_minute_gbit_s - 12.97).abs() < 0.01, "{l:?}");
        let ratio = e.busiest_minute_gbit_s / l.busiest_minute_gbit_s;
        assert!((29.0..30.0).contains(&ratio), "{ratio}");
        // Spread over 10 minutes, the busiest holds a tenth.
        let spread = egress(1_000_000, raw, 600.0);
        assert!((spread.busiest_minute_gbit_s - 38.31).abs() < 0.01);
        assert_eq!(spread.total_tb, e.total_tb);
        // Only the raw page crosses CloudFront's 150 Gbit/s.
        let mut i = inputs(1_000_000);
        i.page = Some(raw);
        let over = model(&i);
        assert!(
            over.warnings
                .iter()
                .any(|w| w.contains("Data transfer rate per distribution")),
            "{:?}",
            over.warnings
        );
        i.page = Some(light);
        assert!(!model(&i)
            .warnings
            .iter()
            .any(|w| w.contains("Data transfer")));
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(0.0), "0");
    }
}

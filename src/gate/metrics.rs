//! The gate's `/metrics` in the Prometheus text format. The metric names are
//! constants here: `watch` reads [`REMAINING`] back from other gates.

use std::sync::atomic::{AtomicU64, Ordering};

use super::stock::{Admission, ItemCount};
use super::Gate;
use crate::journal::FSYNC_BUCKETS;
use crate::util::prometheus::{Kind, Writer};

pub(crate) const REQUESTS: &str = "flashsale_gate_requests_total";
pub(crate) const ADMITTED: &str = "flashsale_gate_admitted";
pub(crate) const QUOTA: &str = "flashsale_gate_quota";
pub(crate) const REMAINING: &str = "flashsale_gate_remaining";
pub(crate) const FSYNC: &str = "flashsale_gate_journal_fsync_seconds";
pub(crate) const FORWARD_BACKLOG: &str = "flashsale_gate_forward_backlog";
pub(crate) const FORWARDED: &str = "flashsale_gate_forwarded_total";
pub(crate) const FORWARD_FAILURES: &str = "flashsale_gate_forward_failures_total";
pub(crate) const FORWARD_DEAD: &str = "flashsale_gate_forward_dead_letters_total";
pub(crate) const CONNECTIONS: &str = "flashsale_gate_connections";
pub(crate) const CONNECTIONS_REFUSED: &str = "flashsale_gate_connections_refused_total";
pub(crate) const LEDGER_UP: &str = "flashsale_gate_ledger_up";
pub(crate) const LEDGER_CALLS: &str = "flashsale_gate_ledger_calls_total";
pub(crate) const DRAW_ENTRIES: &str = "flashsale_gate_draw_entries";
pub(crate) const DRAW_DONE: &str = "flashsale_gate_draw_done";

/// The outcome of one order request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Won,
    Repeat,
    SoldOut,
    /// An entrant of a fair start's draw who was not drawn.
    NotDrawn,
    NotFound,
    OutsideWindow,
    NoIdentity,
    TooLarge,
    RateLimited,
    BadRequest,
    TooSlow,
    CrossSite,
    Unavailable,
}

impl Outcome {
    const ALL: [Outcome; 13] = [
        Outcome::Won,
        Outcome::Repeat,
        Outcome::SoldOut,
        Outcome::NotDrawn,
        Outcome::NotFound,
        Outcome::OutsideWindow,
        Outcome::NoIdentity,
        Outcome::TooLarge,
        Outcome::RateLimited,
        Outcome::BadRequest,
        Outcome::TooSlow,
        Outcome::CrossSite,
        Outcome::Unavailable,
    ];

    fn label(self) -> &'static str {
        match self {
            Outcome::Won => "won",
            Outcome::Repeat => "repeat",
            Outcome::SoldOut => "sold_out",
            Outcome::NotDrawn => "not_drawn",
            Outcome::NotFound => "not_found",
            Outcome::OutsideWindow => "outside_window",
            Outcome::NoIdentity => "no_identity",
            Outcome::TooLarge => "too_large",
            Outcome::RateLimited => "rate_limited",
            Outcome::BadRequest => "bad_request",
            Outcome::TooSlow => "too_slow",
            Outcome::CrossSite => "cross_site",
            Outcome::Unavailable => "unavailable",
        }
    }
}

/// Order requests counted by outcome.
#[derive(Default)]
pub(crate) struct Requests([AtomicU64; Outcome::ALL.len()]);

impl Requests {
    pub(crate) fn count(&self, o: Outcome) {
        self.0[o as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// The whole page.
pub(crate) fn render(gate: &Gate) -> String {
    let mut w = Writer::default();
    let base = [("sale", gate.sale.as_str()), ("gate", gate.id())];
    w.family(REQUESTS, Kind::Counter, "Order requests by outcome.");
    for o in Outcome::ALL {
        let n = gate.requests.0[o as usize].load(Ordering::Relaxed);
        w.sample(REQUESTS, &[base[0], base[1], ("outcome", o.label())], n);
    }
    w.family(CONNECTIONS, Kind::Gauge, "Connections open now.");
    w.sample(CONNECTIONS, &base, gate.connections.open());
    w.family(
        CONNECTIONS_REFUSED,
        Kind::Counter,
        "Connections closed at once for being over a cap (in all, or per client address).",
    );
    let c = &gate.connections;
    let refused = [
        ("total", c.refused_total.load(Ordering::Relaxed)),
        ("per_client", c.refused_per_client.load(Ordering::Relaxed)),
    ];
    for (cap, n) in refused {
        w.sample(CONNECTIONS_REFUSED, &[base[0], base[1], ("cap", cap)], n);
    }
    let counts = gate.stock.counts();
    type Value = fn(&ItemCount) -> u32;
    let per_item: [(&str, &str, Value); 3] = [
        (
            ADMITTED,
            "Winners admitted by this gate (by the fleet, on a shared ledger), per item.",
            |c| c.admitted,
        ),
        (
            QUOTA,
            "Units this gate may admit (the fleet, on a shared ledger), per item.",
            |c| c.quota,
        ),
        (
            REMAINING,
            "Units left at this gate (in the fleet, on a shared ledger), per item.",
            |c| c.remaining(),
        ),
    ];
    for (name, help, value) in per_item {
        w.family(name, Kind::Gauge, help);
        for c in &counts {
            w.sample(name, &[base[0], base[1], ("sku", &c.sku)], value(c));
        }
    }
    let f = gate.recorder.fsyncs();
    w.family(
        FSYNC,
        Kind::Histogram,
        "Time to write and fsync one batch of winners.",
    );
    let bucket = format!("{FSYNC}_bucket");
    for (i, b) in FSYNC_BUCKETS.iter().enumerate() {
        let le = b.to_string();
        let n = f.buckets[i].load(Ordering::Relaxed);
        w.sample(&bucket, &[base[0], base[1], ("le", &le)], n);
    }
    let count = f.count.load(Ordering::Relaxed);
    w.sample(&bucket, &[base[0], base[1], ("le", "+Inf")], count);
    let sum = f.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
    w.sample(&format!("{FSYNC}_sum"), &base, sum);
    w.sample(&format!("{FSYNC}_count"), &base, count);
    if let Some(calls) = gate.stock.ledger() {
        w.family(
            LEDGER_UP,
            Kind::Gauge,
            "1 while the shared ledger answers and admits.",
        );
        w.sample(LEDGER_UP, &base, u8::from(calls.up));
        w.family(
            LEDGER_CALLS,
            Kind::Counter,
            "Calls this gate made to the shared ledger: to answer requests (admission), or to keep up (upkeep: polls, re-asserts).",
        );
        w.sample(
            LEDGER_CALLS,
            &[base[0], base[1], ("kind", "admission")],
            calls.admission,
        );
        w.sample(
            LEDGER_CALLS,
            &[base[0], base[1], ("kind", "upkeep")],
            calls.upkeep,
        );
    }
    if let Some(d) = &gate.draw {
        w.family(
            DRAW_ENTRIES,
            Kind::Gauge,
            "Entries of the fair start's draw at this gate (each customer once per item).",
        );
        w.sample(DRAW_ENTRIES, &base, d.count() as u64);
        w.family(
            DRAW_DONE,
            Kind::Gauge,
            "1 once the fair start's draw is done and entrants have their answers.",
        );
        w.sample(DRAW_DONE, &base, u8::from(d.is_done()));
    }
    if let Some(fw) = &gate.forwarding {
        w.family(
            FORWARD_BACKLOG,
            Kind::Gauge,
            "Winners not yet accepted by the order system.",
        );
        w.sample(FORWARD_BACKLOG, &base, fw.backlog());
        w.family(
            FORWARDED,
            Kind::Counter,
            "Winners accepted by the order system.",
        );
        w.sample(FORWARDED, &base, fw.delivered());
        w.family(
            FORWARD_FAILURES,
            Kind::Counter,
            "Failed attempts to forward a winner.",
        );
        w.sample(FORWARD_FAILURES, &base, fw.failures());
        w.family(
            FORWARD_DEAD,
            Kind::Counter,
            "Winners the order system refused for good, kept in dead-letters.jsonl.",
        );
        w.sample(FORWARD_DEAD, &base, fw.dead());
    }
    w.finish()
}

//! The gate's `/metrics` in the Prometheus text format. The metric names are
//! constants here: `watch` reads [`REMAINING`] back from other gates.

use std::sync::atomic::{AtomicU64, Ordering};

use super::forward::Forwarding;
use super::stock::{Admission, ItemCount, LedgerCalls};
use super::Gate;
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
pub(crate) const FORWARD_GAVE_UP: &str = "flashsale_gate_forward_gave_up_total";
pub(crate) const CONNECTIONS: &str = "flashsale_gate_connections";
pub(crate) const CONNECTIONS_REFUSED: &str = "flashsale_gate_connections_refused_total";
pub(crate) const LEDGER_UP: &str = "flashsale_gate_ledger_up";
pub(crate) const LEDGER_CALLS: &str = "flashsale_gate_ledger_calls_total";
pub(crate) const OVERSELL_ALARMS: &str = "flashsale_gate_oversell_alarms_total";
pub(crate) const DRAW_ENTRIES: &str = "flashsale_gate_draw_entries";
pub(crate) const DRAW_DONE: &str = "flashsale_gate_draw_done";
pub(crate) const ORDER_SECONDS: &str = "flashsale_gate_order_seconds";
pub(crate) const SALE_START: &str = "flashsale_gate_sale_start_seconds";
pub(crate) const SALE_END: &str = "flashsale_gate_sale_end_seconds";

/// The outcome of one order request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Won,
    Repeat,
    SoldOut,
    /// An entrant of a fair start's draw who was not drawn.
    NotDrawn,
    /// An entrant asking again in the window: told at once it is in the draw.
    Entered,
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
    const ALL: [Outcome; 14] = [
        Outcome::Won,
        Outcome::Repeat,
        Outcome::SoldOut,
        Outcome::NotDrawn,
        Outcome::Entered,
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
            Outcome::Entered => "entered",
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

/// A sample's labels: the sale and the gate, then one more.
type Base<'a> = [(&'a str, &'a str); 2];

fn with<'a>(base: &Base<'a>, label: (&'a str, &'a str)) -> [(&'a str, &'a str); 3] {
    [base[0], base[1], label]
}

/// The whole page.
pub(crate) fn render(gate: &Gate) -> String {
    let mut w = Writer::default();
    let base = [("sale", gate.sale.as_str()), ("gate", gate.id())];
    requests(&mut w, &base, gate);
    // The window, so alerts can say "5 s after the start" without a clock of their own.
    w.family(SALE_START, Kind::Gauge, "The sale's start, Unix seconds.");
    w.sample(SALE_START, &base, (gate.window.start_ms / 1000) as u64);
    w.family(SALE_END, Kind::Gauge, "The sale's end, Unix seconds.");
    w.sample(SALE_END, &base, (gate.window.end_ms / 1000) as u64);
    stock(&mut w, &base, &gate.stock.counts());
    w.histogram(
        FSYNC,
        "Time to write and fsync one batch of winners.",
        &base,
        gate.recorder.fsyncs(),
    );
    w.histogram(
        ORDER_SECONDS,
        "Time from an order's headers to its answer (a fair start's held entries included).",
        &base,
        &gate.order_latency,
    );
    if let Some(calls) = gate.stock.ledger() {
        ledger(&mut w, &base, calls);
    }
    if let Some(d) = &gate.draw {
        w.family(
            DRAW_ENTRIES,
            Kind::Gauge,
            "Entries of the fair start's draw on disk at this gate (each customer once per item).",
        );
        w.sample(DRAW_ENTRIES, &base, d.count() as u64);
        w.family(
            DRAW_DONE,
            Kind::Gauge,
            "1 once the fair start's draw is done and entrants have their answers.",
        );
        w.sample(DRAW_DONE, &base, u8::from(d.is_done()));
    }
    if let Some(f) = &gate.forwarding {
        forwarding(&mut w, &base, f);
    }
    w.finish()
}

/// Order requests by outcome; connections open and refused.
fn requests(w: &mut Writer, base: &Base<'_>, gate: &Gate) {
    w.family(REQUESTS, Kind::Counter, "Order requests by outcome.");
    for o in Outcome::ALL {
        let n = gate.requests.0[o as usize].load(Ordering::Relaxed);
        w.sample(REQUESTS, &with(base, ("outcome", o.label())), n);
    }
    let c = &gate.connections;
    w.family(CONNECTIONS, Kind::Gauge, "Connections open now.");
    w.sample(CONNECTIONS, base, c.open());
    w.family(
        CONNECTIONS_REFUSED,
        Kind::Counter,
        "Connections closed at once for being over a cap (in all, or per client address).",
    );
    let (total, per_client) = c.refused();
    let refused = [("total", total), ("per_client", per_client)];
    for (cap, n) in refused {
        w.sample(CONNECTIONS_REFUSED, &with(base, ("cap", cap)), n);
    }
}

/// Each item's admitted, quota and remaining.
fn stock(w: &mut Writer, base: &Base<'_>, counts: &[ItemCount]) {
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
        for c in counts {
            w.sample(name, &with(base, ("sku", &c.sku)), value(c));
        }
    }
}

/// How the gate stands with a shared ledger.
fn ledger(w: &mut Writer, base: &Base<'_>, calls: LedgerCalls) {
    w.family(
        LEDGER_UP,
        Kind::Gauge,
        "1 while the shared ledger answers and admits.",
    );
    w.sample(LEDGER_UP, base, u8::from(calls.up));
    w.family(
        LEDGER_CALLS,
        Kind::Counter,
        "Calls this gate made to the shared ledger: to answer requests (admission), or to keep up (upkeep: polls, re-asserts).",
    );
    w.sample(
        LEDGER_CALLS,
        &with(base, ("kind", "admission")),
        calls.admission,
    );
    w.sample(LEDGER_CALLS, &with(base, ("kind", "upkeep")), calls.upkeep);
    w.family(
        OVERSELL_ALARMS,
        Kind::Counter,
        "Distinct oversell alarms: putting this gate's journal back found another order for one of its customers, or more winners than stock. Alert on any.",
    );
    w.sample(OVERSELL_ALARMS, base, calls.oversell_alarms);
}

/// Winners on their way to the order system.
fn forwarding(w: &mut Writer, base: &Base<'_>, f: &Forwarding) {
    let families = [
        (
            FORWARD_BACKLOG,
            Kind::Gauge,
            "Winners not yet accepted by the order system.",
            f.backlog(),
        ),
        (
            FORWARDED,
            Kind::Counter,
            "Winners accepted by the order system.",
            f.delivered(),
        ),
        (
            FORWARD_FAILURES,
            Kind::Counter,
            "Failed attempts to forward a winner.",
            f.failures(),
        ),
        (
            FORWARD_DEAD,
            Kind::Counter,
            "Winners set aside in dead-letters.jsonl (refused for good, or given up on).",
            f.dead(),
        ),
        (
            FORWARD_GAVE_UP,
            Kind::Counter,
            "Winners given up on: failing forward_attempts times while the order system accepted others (a poison record; alert on it).",
            f.gave_up(),
        ),
    ];
    for (name, kind, help, value) in families {
        w.family(name, kind, help);
        w.sample(name, base, value);
    }
}

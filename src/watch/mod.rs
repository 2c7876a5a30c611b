//! `flashsale watch`: the sale as it stands, once a second — per item the
//! stock, sold and left (from the shared ledger when there is one: exact,
//! else summed over the gates' counts), per gate whether it answers, its
//! requests per second by outcome, its p99, connections, forward backlog and
//! dead letters (from its admin `/metrics`), the ledger's state and the
//! toggle as the CDN serves it. Each snapshot says how old its oldest source
//! is. `cmd/watch.rs` draws it or prints it as JSON Lines.

pub(crate) mod screen;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::gate::metrics_names as m;
use crate::ledger::Ledger;
use crate::util::http::Client;
use crate::util::prometheus::{self, Sample, LATENCY_BUCKETS};

/// How long a source may take to answer before it counts as down.
const TIMEOUT: Duration = Duration::from_millis(800);

/// Seconds of orders/s the timeline keeps.
pub(crate) const HISTORY: usize = 60;

/// One item as the snapshot sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ItemRow {
    pub(crate) sku: String,
    pub(crate) stock: u64,
    pub(crate) sold: u64,
    pub(crate) left: u64,
}

/// One gate as its admin listener shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct GateRow {
    pub(crate) admin: String,
    pub(crate) id: Option<String>,
    pub(crate) up: bool,
    /// Why it is not up.
    pub(crate) error: Option<String>,
    /// Order requests so far, by outcome.
    pub(crate) requests: BTreeMap<String, u64>,
    /// Order requests per second since the last snapshot, by outcome.
    pub(crate) per_second: BTreeMap<String, f64>,
    /// The 99th percentile of its answers since the last snapshot (the
    /// upper bound of the histogram's bucket), in ms.
    pub(crate) p99_ms: Option<f64>,
    pub(crate) connections: u64,
    pub(crate) forward_backlog: Option<u64>,
    pub(crate) dead_letters: Option<u64>,
    pub(crate) ledger_up: Option<bool>,
    pub(crate) draw_done: Option<bool>,
}

/// The shared ledger.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LedgerRow {
    pub(crate) at: String,
    pub(crate) up: bool,
    pub(crate) error: Option<String>,
    /// Gates with a heartbeat, and how old it is (ms).
    pub(crate) gates: BTreeMap<String, u64>,
}

/// The toggle as the CDN serves it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ToggleRow {
    pub(crate) url: String,
    /// `pending`, `open`, `ended`, or why it could not be read.
    pub(crate) state: String,
}

/// The sale at one moment.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Snapshot {
    pub(crate) sale: String,
    /// When it was taken, Unix ms.
    pub(crate) at_ms: i64,
    /// How long its slowest source took to answer, ms: no count in it is older.
    pub(crate) age_ms: u64,
    /// `ledger` (exact, shared) or `gates` (their own counts, summed).
    pub(crate) counts_from: &'static str,
    pub(crate) items: Vec<ItemRow>,
    pub(crate) won: u64,
    /// A fair start's entrants, all items, summed over the gates (their
    /// metric is per gate, not per item); `None` without a draw.
    pub(crate) draw_entrants: Option<u64>,
    pub(crate) gates: Vec<GateRow>,
    pub(crate) ledger: Option<LedgerRow>,
    /// sale.js as the CDN serves it.
    pub(crate) toggle: Option<ToggleRow>,
    /// sale.js in the bucket (or the directory standing in for it).
    pub(crate) bucket: Option<ToggleRow>,
    /// Order requests per second, all gates, since the last snapshot.
    pub(crate) orders_per_second: f64,
    /// The last [`HISTORY`] values of `orders_per_second`, oldest first.
    pub(crate) history: Vec<f64>,
}

/// What to watch.
pub(crate) struct Sources {
    pub(crate) sale: String,
    pub(crate) skus: Vec<String>,
    /// The gates' admin base URLs.
    pub(crate) gates: Vec<String>,
    pub(crate) ledger: Option<Ledger>,
    /// The toggle's public URL.
    pub(crate) toggle: Option<String>,
    /// Where `publish` puts it.
    pub(crate) bucket: Option<crate::store::Target>,
}

/// Takes snapshots, remembering the last one's counters for the rates.
pub(crate) struct Watcher {
    sources: Sources,
    client: Client,
    last: Option<(Instant, BTreeMap<String, Vec<Sample>>)>,
    history: Vec<f64>,
}

impl Watcher {
    pub(crate) fn new(sources: Sources) -> Watcher {
        Watcher {
            sources,
            client: Client::new(),
            last: None,
            history: Vec::new(),
        }
    }

    /// The sale now: every source asked at once.
    pub(crate) async fn snapshot(&mut self) -> Snapshot {
        let started = Instant::now();
        let at_ms = crate::util::clock::Clock::system().now_ms();
        let s = &self.sources;
        let metrics = futures_util::future::join_all(s.gates.iter().map(|g| {
            let url = format!("{}/metrics", g.trim_end_matches('/'));
            let client = &self.client;
            async move {
                match client.get(&url, TIMEOUT).await {
                    Ok(r) if r.status == 200 => Ok(String::from_utf8_lossy(&r.body).into_owned()),
                    Ok(r) => Err(format!("HTTP {}", r.status)),
                    Err(e) => Err(e.to_string()),
                }
            }
        }));
        let ledger = async {
            match &s.ledger {
                None => None,
                Some(l) => Some((
                    l.at().to_string(),
                    tokio::time::timeout(TIMEOUT, l.status(&s.skus, None)).await,
                )),
            }
        };
        let toggle = async {
            let url = s.toggle.as_ref()?;
            let state = match self.client.get(url, TIMEOUT).await {
                Ok(r) if r.status == 200 => toggle_state(&String::from_utf8_lossy(&r.body)),
                Ok(r) => format!("HTTP {}", r.status),
                Err(e) => e.to_string(),
            };
            Some(ToggleRow {
                url: url.clone(),
                state,
            })
        };
        let bucket = async {
            let target = s.bucket.as_ref()?;
            use crate::store::Remote;
            let state = match tokio::time::timeout(TIMEOUT, crate::sale::switch::live(target)).await
            {
                Ok(Ok(live)) => live.state_name().to_string(),
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer in {} ms", TIMEOUT.as_millis()),
            };
            Some(ToggleRow {
                url: target.describe(),
                state,
            })
        };
        let (metrics, ledger, toggle, bucket) = tokio::join!(metrics, ledger, toggle, bucket);
        let age_ms = started.elapsed().as_millis() as u64;
        let now = Instant::now();
        let mut parsed: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
        let mut gates = Vec::new();
        for (admin, text) in s.gates.iter().zip(metrics) {
            let samples = text.as_ref().map(|t| all_samples(t)).unwrap_or_default();
            let before = self
                .last
                .as_ref()
                .and_then(|(t, m)| m.get(admin).map(|s| (now - *t, s)));
            gates.push(gate_row(admin, &text, &samples, before));
            parsed.insert(admin.clone(), samples);
        }
        let (items, counts_from, ledger) = match ledger {
            Some((at, Ok(Ok(st)))) => {
                let items = st
                    .items
                    .iter()
                    .map(|(sku, (taken, total))| ItemRow {
                        sku: sku.clone(),
                        stock: u64::from(*total),
                        sold: u64::from(*taken),
                        left: u64::from(total.saturating_sub(*taken)),
                    })
                    .collect();
                let row = LedgerRow {
                    at,
                    up: true,
                    error: None,
                    gates: st.gates.clone(),
                };
                (items, "ledger", Some(row))
            }
            Some((at, failed)) => {
                let error = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no answer in {} ms", TIMEOUT.as_millis()),
                };
                let row = LedgerRow {
                    at,
                    up: false,
                    error: Some(error),
                    gates: BTreeMap::new(),
                };
                (from_gates(&s.skus, &parsed), "gates", Some(row))
            }
            None => (from_gates(&s.skus, &parsed), "gates", None),
        };
        // `+ 0.0`: an empty f64 sum is -0.0, which prints as "-0".
        let orders_per_second: f64 = gates
            .iter()
            .flat_map(|g| g.per_second.values())
            .sum::<f64>()
            + 0.0;
        self.history.push(orders_per_second);
        if self.history.len() > HISTORY {
            self.history.remove(0);
        }
        let draw_entrants = entrants(&parsed);
        self.last = Some((now, parsed));
        Snapshot {
            sale: s.sale.clone(),
            at_ms,
            age_ms,
            counts_from,
            won: items.iter().map(|i| i.sold).sum(),
            draw_entrants,
            items,
            gates,
            ledger,
            toggle,
            bucket,
            orders_per_second,
            history: self.history.clone(),
        }
    }
}

/// Every sample of a metrics page.
fn all_samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(prometheus::parse_sample)
        .collect()
}

fn sum(samples: &[Sample], name: &str, label: Option<(&str, &str)>) -> Option<u64> {
    let mut found = false;
    let mut total = 0.0;
    for s in samples.iter().filter(|s| s.name == name) {
        if label.is_none_or(|(k, v)| s.label(k) == Some(v)) {
            found = true;
            total += s.value;
        }
    }
    found.then_some(total as u64)
}

/// One gate's row, from its page now and (for rates) the one before.
fn gate_row(
    admin: &str,
    text: &Result<String, String>,
    samples: &[Sample],
    before: Option<(Duration, &Vec<Sample>)>,
) -> GateRow {
    let mut requests = BTreeMap::new();
    for s in samples.iter().filter(|s| s.name == m::REQUESTS) {
        if let Some(o) = s.label("outcome") {
            requests.insert(o.to_string(), s.value as u64);
        }
    }
    let mut per_second = BTreeMap::new();
    let mut p99_ms = None;
    if let Some((dt, old)) = before {
        let secs = dt.as_secs_f64().max(1e-3);
        for (o, n) in &requests {
            let was = sum(old, m::REQUESTS, Some(("outcome", o))).unwrap_or(0);
            per_second.insert(o.clone(), n.saturating_sub(was) as f64 / secs);
        }
        p99_ms = p99(samples, old);
    }
    GateRow {
        admin: admin.to_string(),
        id: samples
            .iter()
            .find(|s| s.name == m::REQUESTS)
            .and_then(|s| s.label("gate"))
            .map(str::to_string),
        up: text.is_ok(),
        error: text.as_ref().err().cloned(),
        requests,
        per_second,
        p99_ms,
        connections: sum(samples, m::CONNECTIONS, None).unwrap_or(0),
        forward_backlog: sum(samples, m::FORWARD_BACKLOG, None),
        dead_letters: sum(samples, m::FORWARD_DEAD, None),
        ledger_up: sum(samples, m::LEDGER_UP, None).map(|v| v > 0),
        draw_done: sum(samples, m::DRAW_DONE, None).map(|v| v > 0),
    }
}

/// The 99th percentile of the answers between two pages: the upper bound of
/// the bucket it falls in (ms); `None` without answers in between.
fn p99(now: &[Sample], before: &[Sample]) -> Option<f64> {
    let bucket = format!("{}_bucket", m::ORDER_SECONDS);
    let at = |samples: &[Sample], le: &str| sum(samples, &bucket, Some(("le", le))).unwrap_or(0);
    let total = at(now, "+Inf").saturating_sub(at(before, "+Inf"));
    if total == 0 {
        return None;
    }
    let want = (total as f64 * 0.99).ceil() as u64;
    for b in LATENCY_BUCKETS {
        let le = b.to_string();
        if at(now, &le).saturating_sub(at(before, &le)) >= want {
            return Some(b * 1000.0);
        }
    }
    Some(f64::INFINITY)
}

/// A fair start's entrants, summed over the gates (`None`: no draw).
fn entrants(gates: &BTreeMap<String, Vec<Sample>>) -> Option<u64> {
    let all: Vec<u64> = gates
        .values()
        .filter_map(|s| sum(s, m::DRAW_ENTRIES, None))
        .collect();
    (!all.is_empty()).then(|| all.iter().sum())
}

/// Items from the gates' own counts, summed (each gate its quota).
fn from_gates(skus: &[String], gates: &BTreeMap<String, Vec<Sample>>) -> Vec<ItemRow> {
    skus.iter()
        .map(|sku| {
            let of = |name: &str| -> u64 {
                gates
                    .values()
                    .filter_map(|s| sum(s, name, Some(("sku", sku))))
                    .sum()
            };
            let (stock, sold) = (of(m::QUOTA), of(m::ADMITTED));
            ItemRow {
                sku: sku.clone(),
                stock,
                sold,
                left: stock.saturating_sub(sold),
            }
        })
        .collect()
}

/// The toggle's state from its script text.
fn toggle_state(script: &str) -> String {
    for state in ["open", "ended", "pending"] {
        if script.contains(&format!("\"state\":\"{state}\"")) {
            return state.to_string();
        }
    }
    "unreadable".to_string()
}

/// One line of text for a snapshot (no terminal, no --json).
pub(crate) fn line(s: &Snapshot) -> String {
    let items: Vec<String> = s
        .items
        .iter()
        .map(|i| format!("{} {}/{} left", i.sku, i.left, i.stock))
        .collect();
    let up = s.gates.iter().filter(|g| g.up).count();
    let toggle = s.toggle.as_ref().map_or("-", |t| t.state.as_str());
    let bucket = s.bucket.as_ref().map_or("-", |t| t.state.as_str());
    format!(
        "{} {}: {}; won {}; gates {up}/{} up; {:.0} orders/s; sale.js: CDN {toggle}, bucket {bucket}; age {} ms ({})",
        chrono::DateTime::from_timestamp_millis(s.at_ms)
            .map(|t| t.format("%H:%M:%S").to_string())
            .unwrap_or_default(),
        s.sale,
        items.join(", "),
        s.won,
        s.gates.len(),
        s.orders_per_second,
        s.age_ms,
        s.counts_from
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_p99_is_the_bucket_the_99th_answer_falls_in() {
        let page = |fast: u64, slow: u64| {
            all_samples(&format!(
                "flashsale_gate_order_seconds_bucket{{le=\"0.001\"}} {fast}\nflashsale_gate_order_seconds_bucket{{le=\"0.05\"}} {}\nflashsale_gate_order_seconds_bucket{{le=\"+Inf\"}} {}\n",
                fast + slow,
                fast + slow
            ))
        };
        let before = page(100, 0);
        assert_eq!(p99(&page(1100, 0), &before), Some(1.0));
        assert_eq!(p99(&page(1090, 20), &before), Some(50.0));
        assert_eq!(p99(&before, &before), None);
    }

    #[test]
    fn toggle_states_are_read_from_the_script() {
        assert_eq!(
            toggle_state("window.__flashsale={\"v\":1,\"state\":\"open\",\"order\":\"x\"}"),
            "open"
        );
        assert_eq!(toggle_state("nonsense"), "unreadable");
    }
}

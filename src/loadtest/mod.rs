//! The load generator behind `rehearse`: a sale-day rehearsal against a
//! local or staging deployment.
//! N simulated customers (distinct ids) poll `sale.js` the way the page runtime
//! does (each from its own random moment around the start), submit when it
//! opens, and the outcome is reported: throughput, latency percentiles,
//! winners, sold-out answers, errors, time from open to sold out, and whether
//! any unit was oversold. Bounded in customers, concurrency and time; it talks
//! only to loopback addresses and hosts given explicitly.
//!
//! `viewers` is the other half of a sale day: pages that only poll the toggle,
//! as a crowd in front of a CDN does.

pub(crate) mod viewers;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::Semaphore;
use url::{Host, Url};

use crate::sale::{polling, State, Toggle};
use crate::util::http::{Client, HttpError};
use crate::util::random;
use crate::util::sync::lock;

pub(crate) struct Options {
    /// Where the sale's pages are served (`sale.js` is fetched from here).
    pub(crate) url: String,
    pub(crate) customers: usize,
    /// Besides the customers: scripts that poll `sale.js` every 10 ms from
    /// just before the start and order the instant it opens.
    pub(crate) bots: usize,
    /// Requests in flight at once.
    pub(crate) concurrency: usize,
    /// Give up after this long.
    pub(crate) max_duration: Duration,
    /// Hosts besides loopback and the `url`'s host that may be contacted.
    pub(crate) allow_hosts: Vec<String>,
    /// Gates to spread orders over, round robin (base URLs); empty: the
    /// order URL's own host.
    pub(crate) gates: Vec<String>,
    /// Items to buy (customer `i` buys `skus[i % len]`) with their stock.
    pub(crate) items: Vec<(String, u64)>,
}

/// Why a rehearsal does not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("{url}: rehearse only talks to loopback addresses and hosts it is allowed")]
    NotAllowed { url: String },
    #[error("rehearse speaks plain HTTP (a local or staging deployment); give an http:// URL")]
    Https,
    #[error("the sale has no items")]
    NoItems,
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Latency {
    pub(crate) count: usize,
    pub(crate) p50_ms: f64,
    pub(crate) p95_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
}

pub(super) fn latency(mut v: Vec<f64>) -> Latency {
    if v.is_empty() {
        return Latency::default();
    }
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
    Latency {
        count: v.len(),
        p50_ms: at(0.50),
        p95_ms: at(0.95),
        p99_ms: at(0.99),
        max_ms: v[v.len() - 1],
    }
}

/// What happened.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Report {
    pub(crate) customers: usize,
    pub(crate) bots: usize,
    /// Winners among the bots.
    pub(crate) bot_winners: usize,
    pub(crate) requests: usize,
    pub(crate) seconds: f64,
    pub(crate) requests_per_second: f64,
    /// Orders per second from the first order sent to the last answer.
    pub(crate) orders_per_second: f64,
    pub(crate) toggle: Latency,
    pub(crate) orders: Latency,
    pub(crate) winners: usize,
    pub(crate) sold_out: usize,
    /// A fair start: customers whose order was an entry of the draw (sent
    /// before its end and answered by it: won or not drawn), and the bots among them.
    pub(crate) entrants: usize,
    pub(crate) bot_entrants: usize,
    /// Entrants the draw did not pick.
    pub(crate) not_drawn: usize,
    /// Entrants' answers after the window's end: the draw and the way back.
    pub(crate) draw_answers: Latency,
    /// Refusals by HTTP status (403 outside the window, 429, ...).
    pub(crate) refused: BTreeMap<u16, usize>,
    /// Transport errors and unexpected answers.
    pub(crate) errors: usize,
    pub(crate) error_samples: Vec<String>,
    /// Customers who found the sale over before they could order.
    pub(crate) too_late: usize,
    /// From the first customer seeing `open` to the first sold-out answer.
    pub(crate) open_to_sold_out_ms: Option<u64>,
    /// From the first customer seeing `open` to the last winner's answer.
    pub(crate) open_to_last_win_ms: Option<u64>,
    pub(crate) stock: u64,
    pub(crate) oversold: bool,
    /// The same customer answered with two different orders.
    pub(crate) duplicate_winners: usize,
    pub(crate) timed_out: bool,
    /// Per gate (base URL) when orders were spread over several.
    pub(crate) gates: BTreeMap<String, GateCounts>,
}

/// What one gate answered.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct GateCounts {
    pub(crate) orders: usize,
    pub(crate) winners: usize,
    pub(crate) sold_out: usize,
    /// Refusals and errors.
    pub(crate) other: usize,
}

#[derive(Default)]
struct Tally {
    requests: usize,
    toggle_ms: Vec<f64>,
    order_ms: Vec<f64>,
    won: Vec<(String, String, String)>,
    sold_out: usize,
    /// Users whose order was a fair start's entry.
    entrants: Vec<String>,
    not_drawn: usize,
    /// Per entrant: its answer's arrival after the window's end, in ms.
    after_window_ms: Vec<f64>,
    refused: BTreeMap<u16, usize>,
    errors: usize,
    samples: Vec<String>,
    too_late: usize,
    first_open: Option<Instant>,
    first_sold_out: Option<Instant>,
    last_win: Option<Instant>,
    first_order: Option<Instant>,
    last_answer: Option<Instant>,
    gates: BTreeMap<String, GateCounts>,
}

impl Tally {
    fn error(&mut self, e: String) {
        self.errors += 1;
        if self.samples.len() < 5 {
            self.samples.push(e);
        }
    }
}

/// The host of an http(s) URL, lowercased; IPv6 without brackets.
pub(super) fn host_of(url: &str) -> Option<Host<String>> {
    Url::parse(url).ok()?.host().map(|h| h.to_owned())
}

pub(super) fn is_loopback(host: &Host<String>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// Only loopback, the sale's own host, and hosts named on the command line.
fn allowed(url: &str, opts: &Options) -> bool {
    let Some(host) = host_of(url) else {
        return false;
    };
    is_loopback(&host)
        || host_of(&opts.url).as_ref() == Some(&host)
        || opts
            .allow_hosts
            .iter()
            .any(|h| host.to_string().eq_ignore_ascii_case(h))
}

/// The wall clock in Unix milliseconds (the toggle's times are on it).
pub(super) fn unix_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The user ids of bots start with this.
const BOT_PREFIX: &str = "bot-";

/// Bounded in time: a generator that waited forever would not be one.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(45);

async fn send(
    http: &Client,
    method: hyper::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, Vec<u8>), HttpError> {
    let r = http
        .send(
            method,
            url,
            headers,
            Bytes::from(body.to_string()),
            REQUEST_TIMEOUT,
        )
        .await?;
    Ok((r.status, r.body))
}

/// How often a bot polls, and how long before the start it begins.
const BOT_POLL: Duration = Duration::from_millis(10);
const BOT_LEAD_MS: i64 = 200;

/// What every simulated customer of one rehearsal shares.
#[derive(Clone)]
struct Crowd {
    /// This run's id, in every user id (runs do not share customers).
    run: Arc<str>,
    opts: Arc<Options>,
    http: Client,
    /// Requests in flight at once (`--concurrency`).
    gate: Arc<Semaphore>,
    tally: Arc<Mutex<Tally>>,
    /// Nobody starts anything after this.
    deadline: Instant,
}

/// One customer: watch the toggle, order when it opens. A bot polls every
/// 10 ms from just before the start instead of as the page does.
async fn customer(i: usize, bot: bool, crowd: &Crowd) {
    let Crowd {
        run,
        opts,
        http,
        gate,
        tally,
        deadline,
    } = crowd;
    let (run, opts, tally, deadline): (&str, &Options, &Mutex<Tally>, Instant) =
        (run, opts, tally, *deadline);
    let toggle_url = format!("{}/sale.js", opts.url.trim_end_matches('/'));
    let jitter = Duration::from_millis(random::below(polling::JITTER_MS));
    let mut first = true;
    let (order_url, draw_until) = loop {
        if Instant::now() > deadline {
            return;
        }
        let url = format!("{toggle_url}?v={}", random::hex(4));
        // Timed from the moment a connection slot is ours: the server's
        // latency, not this generator's queue.
        let (answer, took) = {
            let _permit = gate.acquire().await.expect("semaphore open");
            let started = Instant::now();
            let answer = send(http, hyper::Method::GET, &url, &[], "").await;
            (answer, started.elapsed())
        };
        let toggle = {
            let mut t = lock(tally);
            t.requests += 1;
            t.toggle_ms.push(took.as_secs_f64() * 1e3);
            match answer {
                Ok((200, body)) => match Toggle::parse_script(&String::from_utf8_lossy(&body)) {
                    Ok(toggle) => Some(toggle),
                    Err(e) => {
                        t.error(format!("sale.js: {e}"));
                        None
                    }
                },
                Ok((status, _)) => {
                    t.error(format!("sale.js: HTTP {status}"));
                    None
                }
                Err(e) => {
                    t.error(format!("sale.js: {e}"));
                    None
                }
            }
        };
        let wait = match toggle.map(|t| t.state) {
            Some(State::Open { order, draw, .. }) => {
                let mut t = lock(tally);
                t.first_open.get_or_insert_with(Instant::now);
                break (order, draw.map(|d| d.until));
            }
            Some(State::Ended { .. }) => {
                lock(tally).too_late += 1;
                return;
            }
            Some(State::Pending { start }) if bot => {
                let due = start - BOT_LEAD_MS - unix_ms();
                Duration::from_millis(due.max(0) as u64).max(BOT_POLL)
            }
            Some(State::Pending { start }) if first => {
                // Like the page: each customer's own moment in [start - 2 s, start + 1 s].
                let due = start - polling::FIRST_POLL_LEAD_MS as i64 + jitter.as_millis() as i64
                    - unix_ms();
                Duration::from_millis(due.max(0) as u64)
            }
            _ if bot => BOT_POLL,
            _ => {
                Duration::from_millis(polling::POLL_MIN_MS + random::below(polling::POLL_SPREAD_MS))
            }
        };
        first = false;
        tokio::time::sleep(wait.min(deadline.saturating_duration_since(Instant::now()))).await;
    };
    // Spread over the fleet: the same order path at each gate in turn.
    let (order_url, gate_name) = match opts.gates.as_slice() {
        [] => (order_url, None),
        gates => {
            let base = gates[i % gates.len()].trim_end_matches('/');
            let path = Url::parse(&order_url)
                .map(|u| u.path().to_string())
                .unwrap_or_default();
            (format!("{base}{path}"), Some(base.to_string()))
        }
    };
    if !allowed(&order_url, opts) {
        lock(tally).error(format!(
            "sale.js sends orders to {order_url}: not loopback and not an allowed host"
        ));
        return;
    }
    let user = if bot {
        format!("{BOT_PREFIX}{run}-{i}")
    } else {
        format!("rehearsal-{run}-{i}")
    };
    let (sku, _) = &opts.items[i % opts.items.len()];
    let headers = [
        ("x-user-id", user.as_str()),
        ("accept", "application/json"),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let form = format!("sku={sku}&quantity=1");
    let (answer, started, entry) = {
        let _permit = gate.acquire().await.expect("semaphore open");
        let started = Instant::now();
        let entry = draw_until.is_some_and(|until| unix_ms() < until);
        tally
            .lock()
            .expect("tally lock")
            .first_order
            .get_or_insert(started);
        let answer = if entry && !bot {
            // As the page does in a fair start's window: its receipt first
            // (answered at once), then the request held until the draw.
            let asked = format!("{form}&receipt=1");
            match send(http, hyper::Method::POST, &order_url, &headers, &asked).await {
                Ok((202, body)) if body.windows(10).any(|w| w == b"\"receipt\":") => {
                    send(http, hyper::Method::POST, &order_url, &headers, &form).await
                }
                other => other,
            }
        } else {
            send(http, hyper::Method::POST, &order_url, &headers, &form).await
        };
        (answer, started, entry)
    };
    let now = Instant::now();
    let answered_unix_ms = unix_ms();
    let mut t = lock(tally);
    t.requests += 1;
    t.order_ms
        .push(now.duration_since(started).as_secs_f64() * 1e3);
    t.last_answer = Some(now);
    let outcome = match &answer {
        Ok((200, body)) if body.starts_with(b"{\"status\":\"won\"") => 0,
        Ok((200, body)) if body.starts_with(b"{\"status\":\"sold_out\"") => 1,
        Ok((200, body)) if body.starts_with(b"{\"status\":\"not_drawn\"") => 1,
        _ => 2,
    };
    if let Some(g) = gate_name {
        let c = t.gates.entry(g).or_default();
        c.orders += 1;
        match outcome {
            0 => c.winners += 1,
            1 => c.sold_out += 1,
            _ => c.other += 1,
        }
    }
    match answer {
        Ok((200, body)) => {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            match v["status"].as_str() {
                Some("won") => {
                    if let (true, Some(until)) = (entry, draw_until) {
                        t.entrants.push(user.clone());
                        t.after_window_ms.push((answered_unix_ms - until) as f64);
                    }
                    t.won.push((
                        user,
                        sku.clone(),
                        v["order"].as_str().unwrap_or("").to_string(),
                    ));
                    t.last_win = Some(now);
                }
                Some("sold_out") => {
                    t.sold_out += 1;
                    t.first_sold_out.get_or_insert(now);
                }
                Some("not_drawn") => {
                    t.not_drawn += 1;
                    if let Some(until) = draw_until {
                        t.after_window_ms.push((answered_unix_ms - until) as f64);
                    }
                    t.entrants.push(user);
                    t.first_sold_out.get_or_insert(now);
                }
                _ => t.error(format!(
                    "order: unexpected answer {}",
                    String::from_utf8_lossy(&body)
                )),
            }
        }
        Ok((status @ (401 | 403 | 404 | 413 | 429), _)) => {
            *t.refused.entry(status).or_default() += 1
        }
        Ok((status, _)) => t.error(format!("order: HTTP {status}")),
        Err(e) => t.error(format!("order: {e}")),
    }
}

/// Refuses a URL that is not plain HTTP to loopback or a named host.
pub(super) fn check_target(url: &str, allow_hosts: &[String]) -> Result<(), Error> {
    let url_host = host_of(url);
    let named = url_host.as_ref().is_some_and(|host| {
        allow_hosts
            .iter()
            .any(|h| host.to_string().eq_ignore_ascii_case(h))
    });
    if !(url_host.as_ref().is_some_and(is_loopback) || named)
        || !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(Error::NotAllowed {
            url: url.to_string(),
        });
    }
    if url.starts_with("https://") {
        return Err(Error::Https);
    }
    Ok(())
}

pub(crate) async fn run(opts: Options) -> Result<Report, Error> {
    check_target(&opts.url, &opts.allow_hosts)?;
    if opts.items.is_empty() {
        return Err(Error::NoItems);
    }
    let started = Instant::now();
    let crowd = Crowd {
        run: random::hex(3).into(),
        http: Client::with_pool(opts.concurrency, 64 * 1024),
        gate: Arc::new(Semaphore::new(opts.concurrency.max(1))),
        tally: Arc::new(Mutex::new(Tally::default())),
        deadline: started + opts.max_duration,
        opts: Arc::new(opts),
    };
    let (opts, tally, deadline) = (crowd.opts.clone(), crowd.tally.clone(), crowd.deadline);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..opts.customers + opts.bots {
        let bot = i >= opts.customers;
        let crowd = crowd.clone();
        tasks.spawn(async move { customer(i, bot, &crowd).await });
    }
    let timed_out = tokio::time::timeout(opts.max_duration + Duration::from_secs(35), async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_err()
        || Instant::now() > deadline;
    let seconds = started.elapsed().as_secs_f64();
    let t = std::mem::take(&mut *lock(&tally));
    let stock: u64 = opts.items.iter().map(|(_, s)| s).sum();
    let mut per_sku: BTreeMap<&str, u64> = BTreeMap::new();
    let mut orders_by_user: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (user, sku, order) in &t.won {
        *per_sku.entry(sku).or_default() += 1;
        orders_by_user.entry(user).or_default().insert(order);
    }
    let oversold = opts
        .items
        .iter()
        .any(|(sku, s)| per_sku.get(sku.as_str()).copied().unwrap_or(0) > *s);
    let since_open = |at: Option<Instant>| {
        t.first_open
            .zip(at)
            .map(|(o, a)| a.saturating_duration_since(o).as_millis() as u64)
    };
    let rush = t
        .first_order
        .zip(t.last_answer)
        .map_or(0.0, |(a, b)| b.saturating_duration_since(a).as_secs_f64());
    let bot_winners = t
        .won
        .iter()
        .filter(|(user, _, _)| user.starts_with(BOT_PREFIX))
        .count();
    Ok(Report {
        customers: opts.customers,
        bots: opts.bots,
        bot_winners,
        requests: t.requests,
        seconds,
        requests_per_second: t.requests as f64 / seconds.max(1e-9),
        orders_per_second: if rush > 0.0 {
            t.order_ms.len() as f64 / rush
        } else {
            0.0
        },
        toggle: latency(t.toggle_ms),
        winners: t.won.len(),
        orders: latency(t.order_ms),
        sold_out: t.sold_out,
        entrants: t.entrants.len(),
        bot_entrants: t
            .entrants
            .iter()
            .filter(|u| u.starts_with(BOT_PREFIX))
            .count(),
        not_drawn: t.not_drawn,
        draw_answers: latency(t.after_window_ms),
        refused: t.refused,
        errors: t.errors,
        error_samples: t.samples,
        too_late: t.too_late,
        open_to_sold_out_ms: since_open(t.first_sold_out),
        open_to_last_win_ms: since_open(t.last_win),
        stock,
        oversold,
        duplicate_winners: orders_by_user.values().filter(|o| o.len() > 1).count(),
        timed_out,
        gates: t.gates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_and_named_hosts() {
        let opts = Options {
            url: "http://127.0.0.1:3000/".into(),
            customers: 1,
            bots: 0,
            concurrency: 1,
            max_duration: Duration::from_secs(1),
            allow_hosts: vec!["staging.example.com".into()],
            gates: vec![],
            items: vec![],
        };
        assert!(allowed("http://127.0.0.1:9/o/x/y", &opts));
        assert!(allowed("http://localhost:9/o/x/y", &opts));
        assert!(allowed("http://[::1]:9/o", &opts));
        assert!(allowed("https://staging.example.com/o/x", &opts));
        assert!(!allowed("https://gate.example.com/o/x", &opts));
        assert!(!allowed("http://10.0.0.1/", &opts));
    }

    #[test]
    fn percentiles() {
        let l = latency((1..=100).map(f64::from).collect());
        assert_eq!(
            (l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms),
            (50.0, 95.0, 99.0, 100.0)
        );
    }
}

//! `rehearse`: sale-day rehearsal against a local or staging deployment.
//! N simulated customers (distinct ids) poll `sale.js` the way the page runtime
//! does (each from its own random moment around the start), submit when it
//! opens, and the outcome is reported: throughput, latency percentiles,
//! winners, sold-out answers, errors, time from open to sold out, and whether
//! any unit was oversold. Bounded in customers, concurrency and time; it talks
//! only to loopback addresses and hosts given explicitly.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::sale::{self, State, Toggle};

pub struct Options {
    /// Where the sale's pages are served (`sale.js` is fetched from here).
    pub url: String,
    pub customers: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Give up after this long.
    pub max_duration: Duration,
    /// Hosts besides loopback and the `url`'s host that may be contacted.
    pub allow_hosts: Vec<String>,
    /// Items to buy (customer `i` buys `skus[i % len]`) with their stock.
    pub items: Vec<(String, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Failed(String),
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn latency(mut v: Vec<f64>) -> Latency {
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
pub struct Report {
    pub customers: usize,
    pub requests: usize,
    pub seconds: f64,
    pub requests_per_second: f64,
    /// Orders per second from the first order sent to the last answer.
    pub orders_per_second: f64,
    pub toggle: Latency,
    pub orders: Latency,
    pub winners: usize,
    pub sold_out: usize,
    /// Refusals by HTTP status (403 outside the window, 429, ...).
    pub refused: BTreeMap<u16, usize>,
    /// Transport errors and unexpected answers.
    pub errors: usize,
    pub error_samples: Vec<String>,
    /// Customers who found the sale over before they could order.
    pub too_late: usize,
    /// From the first customer seeing `open` to the first sold-out answer.
    pub open_to_sold_out_ms: Option<u64>,
    /// From the first customer seeing `open` to the last winner's answer.
    pub open_to_last_win_ms: Option<u64>,
    pub stock: u64,
    pub oversold: bool,
    /// The same customer answered with two different orders.
    pub duplicate_winners: usize,
    pub timed_out: bool,
}

#[derive(Default)]
struct Tally {
    requests: usize,
    toggle_ms: Vec<f64>,
    order_ms: Vec<f64>,
    won: Vec<(String, String, String)>,
    sold_out: usize,
    refused: BTreeMap<u16, usize>,
    errors: usize,
    samples: Vec<String>,
    too_late: usize,
    first_open: Option<Instant>,
    first_sold_out: Option<Instant>,
    last_win: Option<Instant>,
    first_order: Option<Instant>,
    last_answer: Option<Instant>,
}

impl Tally {
    fn error(&mut self, e: String) {
        self.errors += 1;
        if self.samples.len() < 5 {
            self.samples.push(e);
        }
    }
}

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = authority.rsplit_once(':').map_or(authority, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            authority
        }
    });
    Some(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase(),
    )
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Only loopback, the sale's own host, and hosts named on the command line.
fn allowed(url: &str, opts: &Options) -> bool {
    let Some(host) = host_of(url) else {
        return false;
    };
    is_loopback(&host)
        || host_of(&opts.url).as_deref() == Some(host.as_str())
        || opts
            .allow_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&host))
}

async fn send(http: &Http, req: hyper::Request<Full<Bytes>>) -> Result<(u16, Vec<u8>), String> {
    let work = async {
        let resp = http
            .request(req)
            .await
            .map_err(|e| crate::client::root_cause(&e))?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), 64 * 1024)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes()
            .to_vec();
        Ok((status, body))
    };
    tokio::time::timeout(Duration::from_secs(30), work)
        .await
        .map_err(|_| "no answer within 30 s".to_string())?
}

/// One customer: watch the toggle, order when it opens.
async fn customer(
    i: usize,
    run: &str,
    opts: &Options,
    http: &Http,
    gate: &Semaphore,
    tally: &Mutex<Tally>,
    deadline: Instant,
) {
    let toggle_url = format!("{}/sale.js", opts.url.trim_end_matches('/'));
    let jitter = Duration::from_millis(rand_below(3000));
    let mut first = true;
    let order_url = loop {
        if Instant::now() > deadline {
            return;
        }
        let req = hyper::Request::get(format!("{toggle_url}?v={}", sale::random_hex(4)))
            .body(Full::new(Bytes::new()))
            .expect("valid request");
        // Timed from the moment a connection slot is ours: the server's
        // latency, not this generator's queue.
        let (answer, took) = {
            let _permit = gate.acquire().await.expect("semaphore open");
            let started = Instant::now();
            (send(http, req).await, started.elapsed())
        };
        let toggle = {
            let mut t = tally.lock().expect("tally lock");
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
            Some(State::Open { order, .. }) => {
                let mut t = tally.lock().expect("tally lock");
                t.first_open.get_or_insert_with(Instant::now);
                break order;
            }
            Some(State::Ended { .. }) => {
                tally.lock().expect("tally lock").too_late += 1;
                return;
            }
            Some(State::Pending { start }) if first => {
                // Like the page: each customer's own moment in [start - 2 s, start + 1 s].
                let now_ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                let due = start - 2000 + jitter.as_millis() as i64 - now_ms;
                Duration::from_millis(due.max(0) as u64)
            }
            _ => Duration::from_millis(1000 + rand_below(2000)),
        };
        first = false;
        tokio::time::sleep(wait.min(deadline.saturating_duration_since(Instant::now()))).await;
    };
    if !allowed(&order_url, opts) {
        tally.lock().expect("tally lock").error(format!(
            "sale.js sends orders to {order_url}: not loopback and not allowed (--allow-host)"
        ));
        return;
    }
    let user = format!("rehearsal-{run}-{i}");
    let (sku, _) = &opts.items[i % opts.items.len()];
    let req = hyper::Request::post(&order_url)
        .header("x-user-id", &user)
        .header("accept", "application/json")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(format!("sku={sku}&quantity=1"))))
        .expect("valid request");
    let (answer, started) = {
        let _permit = gate.acquire().await.expect("semaphore open");
        let started = Instant::now();
        tally
            .lock()
            .expect("tally lock")
            .first_order
            .get_or_insert(started);
        (send(http, req).await, started)
    };
    let now = Instant::now();
    let mut t = tally.lock().expect("tally lock");
    t.requests += 1;
    t.order_ms
        .push(now.duration_since(started).as_secs_f64() * 1e3);
    t.last_answer = Some(now);
    match answer {
        Ok((200, body)) => {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            match v["status"].as_str() {
                Some("won") => {
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

fn rand_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("random");
    u64::from_le_bytes(b) % n.max(1)
}

pub async fn run(opts: Options) -> Result<Report, Error> {
    let url_host = host_of(&opts.url).unwrap_or_default();
    let named = opts
        .allow_hosts
        .iter()
        .any(|h| h.eq_ignore_ascii_case(&url_host));
    if !(is_loopback(&url_host) || named)
        || !(opts.url.starts_with("http://") || opts.url.starts_with("https://"))
    {
        return Err(Error::Refused(format!(
            "{}: rehearse only talks to loopback addresses and hosts named with --allow-host",
            opts.url
        )));
    }
    if opts.url.starts_with("https://") {
        return Err(Error::Refused(
            "rehearse speaks plain HTTP (a local or staging deployment); give an http:// URL"
                .into(),
        ));
    }
    if opts.items.is_empty() {
        return Err(Error::Refused("the sale has no items".into()));
    }
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_nodelay(true);
    let http: Http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(opts.concurrency)
        .build(connector);
    let run_id = sale::random_hex(3);
    let opts = Arc::new(opts);
    let gate = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let deadline = started + opts.max_duration;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..opts.customers {
        let (opts, http, gate, tally, run_id) = (
            opts.clone(),
            http.clone(),
            gate.clone(),
            tally.clone(),
            run_id.clone(),
        );
        tasks.spawn(
            async move { customer(i, &run_id, &opts, &http, &gate, &tally, deadline).await },
        );
    }
    let timed_out = tokio::time::timeout(opts.max_duration + Duration::from_secs(35), async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_err()
        || Instant::now() > deadline;
    let seconds = started.elapsed().as_secs_f64();
    let t = std::mem::take(&mut *tally.lock().expect("tally lock"));
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
    Ok(Report {
        customers: opts.customers,
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
            concurrency: 1,
            max_duration: Duration::from_secs(1),
            allow_hosts: vec!["staging.example.com".into()],
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

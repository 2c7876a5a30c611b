//! The order gate: admits at most its quota per item, records each winner
//! durably before answering, forwards winners to the order system, and sends
//! everyone else to the "sale ended" page.
//!
//! `POST /o/<sale>/<token>` is checked in order, each step cheap and lock-free
//! on the common path: unknown sale or bad token (404), outside the window by
//! the gate's own clock (403), no identity (401), body over 4 KiB (413), over
//! the per-client rate limit (429), unknown item (404). Then the item's slot
//! decides: a repeat gets the user's first answer, a new winner is journaled
//! (group commit) before the 303/200, everyone else gets the sold-out answer.
//! Once an item is sold out its winners are frozen into an immutable map, so
//! the flood of late requests never takes a lock.

pub mod forward;
pub mod journal;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use sha2::Sha256;
use tokio::net::TcpListener;

use crate::config::{Config, Identity};
use crate::content::Item;
use crate::sale::{self, GateKey, Refusal, Window};
use forward::Forwarder;
use journal::{Journal, JournalError, Winner};

/// Largest order body accepted.
pub const MAX_BODY: usize = 4 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{0}")]
    Setup(String),
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        addr: SocketAddr,
        error: std::io::Error,
    },
}

/// How a gate is run.
pub struct Options {
    /// Units per item for this gate; default from `[gate]` (quota, or stock / gates).
    pub quota: Option<u32>,
    pub journal_dir: PathBuf,
    /// The order system's webhook; default `[gate] forward`.
    pub forward: Option<String>,
    /// This gate's name in order ids and logs; default: kept in the journal dir.
    pub gate_id: Option<String>,
    pub key: GateKey,
    /// The shop's key for signed identity cookies.
    pub cookie_key: Option<Vec<u8>>,
}

/// The outcome of one order request, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
enum Outcome {
    Won,
    Repeat,
    SoldOut,
    NotFound,
    OutsideWindow,
    NoIdentity,
    TooLarge,
    RateLimited,
    BadRequest,
    Unavailable,
}

const OUTCOMES: [&str; 10] = [
    "won",
    "repeat",
    "sold_out",
    "not_found",
    "outside_window",
    "no_identity",
    "too_large",
    "rate_limited",
    "bad_request",
    "unavailable",
];

/// What a user got, kept so that a repeat gets the same answer.
#[derive(Debug, Clone)]
struct Ticket {
    order: Arc<str>,
    /// `Some(true)` once the journal has it on disk (`Some(false)`: it never will).
    durable: Arc<tokio::sync::watch::Sender<Option<bool>>>,
}

impl Ticket {
    fn new(order: &str, durable: Option<bool>) -> Ticket {
        Ticket {
            order: order.into(),
            durable: Arc::new(tokio::sync::watch::channel(durable).0),
        }
    }

    async fn is_durable(&self) -> bool {
        let mut rx = self.durable.subscribe();
        matches!(
            rx.wait_for(Option::is_some).await.map(|v| *v),
            Ok(Some(true))
        )
    }
}

/// One item's stock at this gate.
struct Slot {
    sku: String,
    quota: u32,
    admitted: AtomicU32,
    winners: Mutex<HashMap<Arc<str>, Ticket>>,
    /// Filled once the quota is reached: the final winners, read without locks.
    sold_out: OnceLock<HashMap<Arc<str>, Ticket>>,
}

enum Admission {
    New(Ticket),
    Repeat(Ticket),
    SoldOut,
}

impl Slot {
    fn admit(&self, user: &str, next_order: impl FnOnce() -> String) -> Admission {
        if let Some(frozen) = self.sold_out.get() {
            return match frozen.get(user) {
                Some(t) => Admission::Repeat(t.clone()),
                None => Admission::SoldOut,
            };
        }
        let mut winners = self.winners.lock().expect("slot lock poisoned");
        if let Some(t) = winners.get(user) {
            return Admission::Repeat(t.clone());
        }
        let admitted = self.admitted.load(Ordering::Relaxed);
        if admitted >= self.quota {
            return Admission::SoldOut;
        }
        let ticket = Ticket::new(&next_order(), None);
        winners.insert(user.into(), ticket.clone());
        self.admitted.store(admitted + 1, Ordering::Relaxed);
        if admitted + 1 >= self.quota {
            let _ = self.sold_out.set(winners.clone());
        }
        Admission::New(ticket)
    }

    fn remaining(&self) -> u32 {
        self.quota
            .saturating_sub(self.admitted.load(Ordering::Relaxed))
    }
}

/// A token bucket per client; only built when a rate limit is configured.
struct RateLimiter {
    per_second: f64,
    burst: f64,
    shards: Vec<Mutex<HashMap<String, (f64, Instant)>>>,
}

impl RateLimiter {
    fn allow(&self, client: &str) -> bool {
        let shard = &self.shards[fxhash(client) % self.shards.len()];
        let mut map = shard.lock().expect("limiter lock poisoned");
        let now = Instant::now();
        if map.len() > 100_000 {
            // Forget clients idle long enough to have a full bucket again.
            let full = Duration::from_secs_f64(self.burst / self.per_second);
            map.retain(|_, (_, at)| now.duration_since(*at) < full);
        }
        let (tokens, at) = map.entry(client.to_string()).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn fxhash(s: &str) -> usize {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    }) as usize
}

/// A running gate's state; `handle` answers one request.
pub struct Gate {
    sale: String,
    window: Window,
    key: GateKey,
    identity: Identity,
    cookie_key: Option<Vec<u8>>,
    slots: HashMap<String, Arc<Slot>>,
    journal: Journal,
    forwarder: Option<Arc<Forwarder>>,
    gate_id: String,
    order_seq: AtomicU64,
    confirm_url: Option<String>,
    ended_location: HeaderValue,
    cors_origin: HeaderValue,
    limiter: Option<RateLimiter>,
    client_ip_header: Option<String>,
    requests: [AtomicU64; OUTCOMES.len()],
    draining: AtomicBool,
}

fn log(event: &str, fields: serde_json::Value) {
    let mut line = serde_json::json!({
        "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "event": event,
    });
    if let (Some(obj), serde_json::Value::Object(extra)) = (line.as_object_mut(), fields) {
        obj.extend(extra);
    }
    eprintln!("{line}");
}

impl Gate {
    /// Replays the journal and starts the forwarder; nothing listens yet.
    pub fn start(config: &Config, items: &[Item], opts: Options) -> Result<Arc<Gate>, Error> {
        std::fs::create_dir_all(&opts.journal_dir)
            .map_err(|e| Error::Setup(format!("{}: {e}", opts.journal_dir.display())))?;
        let gate_id = match opts.gate_id.clone() {
            Some(id) => id,
            None => gate_id_in(&opts.journal_dir)?,
        };
        let replayed = journal::replay(&opts.journal_dir)?;
        if let Some(other) = replayed.iter().find(|w| w.sale != config.name) {
            return Err(Error::Setup(format!(
                "{}: the journal holds winners of sale `{}`, not `{}`; give each sale its own journal directory",
                opts.journal_dir.display(),
                other.sale,
                config.name
            )));
        }
        let mut slots = HashMap::new();
        for item in items {
            let quota = match opts.quota.or(config.gate.quota) {
                Some(q) => q,
                None => {
                    let q = item.stock / config.gate.gates;
                    if q == 0 {
                        return Err(Error::Setup(format!(
                            "item `{}` has stock {} for {} gates: 0 units per gate; lower `gates` or set `quota`",
                            item.sku, item.stock, config.gate.gates
                        )));
                    }
                    q
                }
            };
            slots.insert(
                item.sku.clone(),
                Arc::new(Slot {
                    sku: item.sku.clone(),
                    quota,
                    admitted: AtomicU32::new(0),
                    winners: Mutex::new(HashMap::new()),
                    sold_out: OnceLock::new(),
                }),
            );
        }
        let mut max_seq = 0;
        for w in &replayed {
            let Some(slot) = slots.get(&w.sku) else {
                log(
                    "replay_unknown_item",
                    serde_json::json!({ "order": w.order, "sku": w.sku }),
                );
                continue;
            };
            let mut winners = slot.winners.lock().expect("fresh lock");
            winners.insert(w.user.as_str().into(), Ticket::new(&w.order, Some(true)));
            slot.admitted.fetch_add(1, Ordering::Relaxed);
            if slot.admitted.load(Ordering::Relaxed) >= slot.quota && slot.sold_out.get().is_none()
            {
                let _ = slot.sold_out.set(winners.clone());
            }
            if let Some(n) = w
                .order
                .rsplit('-')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
            {
                max_seq = max_seq.max(n);
            }
        }
        let forward_url = opts.forward.clone().or_else(|| config.gate.forward.clone());
        let forwarder =
            forward_url.map(|url| Forwarder::new(&url, &opts.journal_dir, replayed.clone()));
        let f2 = forwarder.clone();
        let journal = Journal::open(
            &opts.journal_dir,
            Box::new(move |batch: &[Winner]| {
                if let Some(f) = &f2 {
                    f.push(batch);
                }
            }),
        )?;
        let origin = {
            let u = &config.base_url;
            let after = u.find("://").map_or(0, |i| i + 3);
            let end = u[after..].find('/').map_or(u.len(), |i| after + i);
            u[..end].to_string()
        };
        let header = |v: &str, what: &str| {
            HeaderValue::from_str(v)
                .map_err(|_| Error::Setup(format!("{what} `{v}` cannot be an HTTP header value")))
        };
        let gate = Gate {
            sale: config.name.clone(),
            window: Window {
                start_ms: config.start.timestamp_millis(),
                end_ms: config.end.timestamp_millis(),
                tolerance_ms: config.gate.tolerance_ms,
            },
            key: opts.key,
            identity: config.gate.identity.clone(),
            cookie_key: opts.cookie_key,
            slots,
            journal,
            forwarder,
            gate_id: gate_id.clone(),
            order_seq: AtomicU64::new(max_seq),
            confirm_url: config.gate.confirm_url.clone(),
            ended_location: header(&config.gate.ended_url, "ended_url")?,
            cors_origin: header(&origin, "base_url origin")?,
            limiter: config.gate.rate_limit.map(|r| RateLimiter {
                per_second: r as f64,
                burst: (r * 2) as f64,
                shards: (0..16).map(|_| Mutex::new(HashMap::new())).collect(),
            }),
            client_ip_header: config.gate.client_ip_header.clone(),
            requests: Default::default(),
            draining: AtomicBool::new(false),
        };
        if matches!(gate.identity, Identity::Cookie(_)) && gate.cookie_key.is_none() {
            return Err(Error::Setup(
                "identity_cookie is set but there is no cookie key: set $FLASHSALE_COOKIE_KEY or pass --cookie-key-file".into(),
            ));
        }
        let gate = Arc::new(gate);
        let summary: Vec<serde_json::Value> = gate
            .slots
            .values()
            .map(|s| serde_json::json!({ "sku": s.sku, "quota": s.quota, "admitted": s.admitted.load(Ordering::Relaxed) }))
            .collect();
        log(
            "gate_start",
            serde_json::json!({ "sale": gate.sale, "gate": gate_id, "replayed": replayed.len(), "items": summary }),
        );
        if let Some(f) = gate.forwarder.clone() {
            tokio::spawn(f.run(log));
        }
        Ok(gate)
    }

    /// Answers one request.
    pub async fn handle(
        self: &Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Full<Bytes>> {
        let path = req.uri().path();
        if path.starts_with("/o/") {
            return match *req.method() {
                Method::POST => {
                    let (outcome, resp) = self.order(req, peer).await;
                    self.requests[outcome as usize].fetch_add(1, Ordering::Relaxed);
                    resp
                }
                Method::OPTIONS => self.preflight(),
                _ => text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n"),
            };
        }
        match (req.method(), path) {
            (&Method::GET, "/healthz") => {
                if self.journal.failed() {
                    text(StatusCode::SERVICE_UNAVAILABLE, "journal failed\n")
                } else if self.draining.load(Ordering::Relaxed) {
                    text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
                } else {
                    text(StatusCode::OK, "ok\n")
                }
            }
            (&Method::GET, "/metrics") => {
                let mut r = Response::new(Full::new(Bytes::from(self.metrics())));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                r
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    /// Answers an order. Until a unit is actually won nothing is allocated but
    /// the response: every check borrows from the request.
    async fn order(
        self: &Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> (Outcome, Response<Full<Bytes>>) {
        let (parts, body) = req.into_parts();
        let rest = parts.uri.path().strip_prefix("/o/").unwrap_or_default();
        let json = parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json"));
        let refuse = |outcome: Outcome, status: StatusCode, msg: &'static str| {
            (outcome, self.cors(text(status, msg)))
        };
        let Some((url_sale, token)) = rest.split_once('/') else {
            return refuse(Outcome::NotFound, StatusCode::NOT_FOUND, "not found\n");
        };
        let now = chrono::Utc::now().timestamp_millis();
        match sale::verify(&self.key, &self.sale, url_sale, token, now, self.window) {
            Ok(()) => {}
            Err(Refusal::Unknown | Refusal::BadMac) => {
                return refuse(Outcome::NotFound, StatusCode::NOT_FOUND, "not found\n")
            }
            Err(Refusal::OutsideWindow) => {
                return refuse(
                    Outcome::OutsideWindow,
                    StatusCode::FORBIDDEN,
                    "the sale is not open\n",
                );
            }
        }
        let Some(user) = self.identify(&parts.headers) else {
            return refuse(
                Outcome::NoIdentity,
                StatusCode::UNAUTHORIZED,
                "sign in to the shop first\n",
            );
        };
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY as u64) {
            return refuse(
                Outcome::TooLarge,
                StatusCode::PAYLOAD_TOO_LARGE,
                "order too large\n",
            );
        }
        if let Some(limiter) = &self.limiter {
            let client = self
                .client_ip_header
                .as_deref()
                .and_then(|h| parts.headers.get(h))
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| peer.ip().to_string());
            if !limiter.allow(&client) {
                return refuse(
                    Outcome::RateLimited,
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many requests; try again in a moment\n",
                );
            }
        }
        let query_sku = parts
            .uri
            .query()
            .and_then(|q| form_value(q.as_bytes(), "sku"));
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                return refuse(
                    Outcome::TooLarge,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "order too large\n",
                );
            }
            Err(_) => {
                return refuse(
                    Outcome::BadRequest,
                    StatusCode::BAD_REQUEST,
                    "incomplete request\n",
                )
            }
        };
        let Some(sku) = query_sku.or_else(|| form_value(&body, "sku")) else {
            return refuse(
                Outcome::BadRequest,
                StatusCode::BAD_REQUEST,
                "which item? send sku=...\n",
            );
        };
        let Some(slot) = self.slots.get(&*sku) else {
            return refuse(Outcome::NotFound, StatusCode::NOT_FOUND, "no such item\n");
        };
        if self.journal.failed() || self.draining.load(Ordering::Relaxed) {
            return refuse(
                Outcome::Unavailable,
                StatusCode::SERVICE_UNAVAILABLE,
                "the gate cannot take orders now\n",
            );
        }
        let admission = slot.admit(user, || {
            let n = self.order_seq.fetch_add(1, Ordering::Relaxed) + 1;
            format!("{}-{n:06}", self.gate_id)
        });
        match admission {
            Admission::SoldOut => (Outcome::SoldOut, self.sold_out(json)),
            Admission::Repeat(t) => {
                // The first answer may still be waiting for the disk: never acknowledge before it.
                if t.is_durable().await {
                    (Outcome::Repeat, self.won(&t, json))
                } else {
                    refuse(
                        Outcome::Unavailable,
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the gate cannot take orders now\n",
                    )
                }
            }
            Admission::New(t) => {
                let winner = Winner {
                    order: t.order.to_string(),
                    sale: self.sale.clone(),
                    sku: slot.sku.clone(),
                    user: user.to_string(),
                    time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    gate: self.gate_id.clone(),
                };
                // In a task of its own: a client that hangs up must not leave
                // the record unconfirmed (its repeats wait for it).
                let (gate, ticket) = (self.clone(), t.clone());
                let written = tokio::spawn(async move {
                    let r = gate.journal.append(winner).await;
                    ticket.durable.send_replace(Some(r.is_ok()));
                    r
                })
                .await
                .unwrap_or(Err(JournalError::Failed));
                match written {
                    Ok(()) => {
                        log(
                            "won",
                            serde_json::json!({ "order": &*t.order, "sku": slot.sku }),
                        );
                        (Outcome::Won, self.won(&t, json))
                    }
                    Err(e) => {
                        log(
                            "journal_failed",
                            serde_json::json!({ "error": e.to_string() }),
                        );
                        refuse(
                            Outcome::Unavailable,
                            StatusCode::SERVICE_UNAVAILABLE,
                            "the gate cannot take orders now\n",
                        )
                    }
                }
            }
        }
    }

    fn identify<'a>(&self, headers: &'a hyper::HeaderMap) -> Option<&'a str> {
        match &self.identity {
            Identity::Header(h) => {
                let v = headers.get(h)?.to_str().ok()?.trim();
                (!v.is_empty() && v.len() <= 256).then_some(v)
            }
            Identity::Cookie(name) => {
                let key = self.cookie_key.as_ref()?;
                let cookies = headers.get_all(header::COOKIE);
                for value in cookies.iter().filter_map(|v| v.to_str().ok()) {
                    for pair in value.split(';') {
                        let (k, v) = pair.trim().split_once('=')?;
                        if k == name {
                            return verify_cookie(key, v);
                        }
                    }
                }
                None
            }
        }
    }

    fn won(&self, t: &Ticket, json: bool) -> Response<Full<Bytes>> {
        let mut r = if json {
            let body = format!("{{\"status\":\"won\",\"order\":\"{}\"}}", t.order);
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        } else if let Some(url) = &self.confirm_url {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::SEE_OTHER;
            if let Ok(v) = HeaderValue::from_str(&url.replace("{order}", &t.order)) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        } else {
            let body = format!(
                "<!doctype html><meta charset=utf-8><title>You got it</title><h1>You got it!</h1><p>Your order number is <strong>{}</strong>. The shop will confirm it shortly.</p>",
                t.order
            );
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        };
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        self.cors(r)
    }

    fn sold_out(&self, json: bool) -> Response<Full<Bytes>> {
        let mut r = if json {
            let mut r = Response::new(Full::new(Bytes::from_static(b"{\"status\":\"sold_out\"}")));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        } else {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::SEE_OTHER;
            r.headers_mut()
                .insert(header::LOCATION, self.ended_location.clone());
            r
        };
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        self.cors(r)
    }

    /// The shop's pages (another origin) may read the answer, with cookies.
    fn cors(&self, mut r: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            self.cors_origin.clone(),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        r
    }

    fn preflight(&self) -> Response<Full<Bytes>> {
        let mut r = text(StatusCode::NO_CONTENT, "");
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Content-Type, Accept"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        self.cors(r)
    }

    /// Prometheus text format.
    pub fn metrics(&self) -> String {
        use std::fmt::Write;
        let mut m = String::with_capacity(2048);
        let labels = format!("sale=\"{}\",gate=\"{}\"", self.sale, self.gate_id);
        m.push_str("# HELP flashsale_gate_requests_total Order requests by outcome.\n# TYPE flashsale_gate_requests_total counter\n");
        for (i, name) in OUTCOMES.iter().enumerate() {
            let _ = writeln!(
                m,
                "flashsale_gate_requests_total{{{labels},outcome=\"{name}\"}} {}",
                self.requests[i].load(Ordering::Relaxed)
            );
        }
        let mut skus: Vec<&Arc<Slot>> = self.slots.values().collect();
        skus.sort_by(|a, b| a.sku.cmp(&b.sku));
        m.push_str("# HELP flashsale_gate_admitted Winners admitted by this gate, per item.\n# TYPE flashsale_gate_admitted gauge\n");
        for s in &skus {
            let _ = writeln!(
                m,
                "flashsale_gate_admitted{{{labels},sku=\"{}\"}} {}",
                s.sku,
                s.admitted.load(Ordering::Relaxed)
            );
        }
        m.push_str("# HELP flashsale_gate_quota Units this gate may admit, per item.\n# TYPE flashsale_gate_quota gauge\n");
        for s in &skus {
            let _ = writeln!(
                m,
                "flashsale_gate_quota{{{labels},sku=\"{}\"}} {}",
                s.sku, s.quota
            );
        }
        m.push_str("# HELP flashsale_gate_remaining Units left at this gate, per item.\n# TYPE flashsale_gate_remaining gauge\n");
        for s in &skus {
            let _ = writeln!(
                m,
                "flashsale_gate_remaining{{{labels},sku=\"{}\"}} {}",
                s.sku,
                s.remaining()
            );
        }
        let f = &self.journal.fsyncs;
        m.push_str("# HELP flashsale_gate_journal_fsync_seconds Time to write and fsync one batch of winners.\n# TYPE flashsale_gate_journal_fsync_seconds histogram\n");
        for (i, b) in journal::FSYNC_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                m,
                "flashsale_gate_journal_fsync_seconds_bucket{{{labels},le=\"{b}\"}} {}",
                f.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = f.count.load(Ordering::Relaxed);
        let _ = writeln!(
            m,
            "flashsale_gate_journal_fsync_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            m,
            "flashsale_gate_journal_fsync_seconds_sum{{{labels}}} {}",
            f.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            m,
            "flashsale_gate_journal_fsync_seconds_count{{{labels}}} {count}"
        );
        if let Some(fw) = &self.forwarder {
            m.push_str("# HELP flashsale_gate_forward_backlog Winners not yet accepted by the order system.\n# TYPE flashsale_gate_forward_backlog gauge\n");
            let _ = writeln!(
                m,
                "flashsale_gate_forward_backlog{{{labels}}} {}",
                fw.backlog()
            );
            m.push_str("# TYPE flashsale_gate_forwarded_total counter\n");
            let _ = writeln!(
                m,
                "flashsale_gate_forwarded_total{{{labels}}} {}",
                fw.delivered.load(Ordering::Relaxed)
            );
            m.push_str("# TYPE flashsale_gate_forward_failures_total counter\n");
            let _ = writeln!(
                m,
                "flashsale_gate_forward_failures_total{{{labels}}} {}",
                fw.attempts_failed.load(Ordering::Relaxed)
            );
        }
        m
    }

    /// Stops admitting and writes what is queued.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
        self.journal.close();
    }

    /// Winners admitted so far, per item.
    pub fn admitted(&self) -> Vec<(String, u32, u32)> {
        let mut v: Vec<(String, u32, u32)> = self
            .slots
            .values()
            .map(|s| (s.sku.clone(), s.admitted.load(Ordering::Relaxed), s.quota))
            .collect();
        v.sort();
        v
    }
}

fn text(status: StatusCode, msg: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(msg.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The value of `name` in an `a=1&b=2` form, if valid UTF-8; borrowed
/// unless it had to be decoded (`%xx`, `+`).
fn form_value<'a>(form: &'a [u8], name: &str) -> Option<std::borrow::Cow<'a, str>> {
    use std::borrow::Cow;
    for pair in form.split(|b| *b == b'&') {
        let mut kv = pair.splitn(2, |b| *b == b'=');
        if kv.next()? == name.as_bytes() {
            let raw = kv.next().unwrap_or(b"");
            let v: Cow<'a, str> = if raw.iter().any(|b| *b == b'%' || *b == b'+') {
                let plus: Vec<u8> = raw
                    .iter()
                    .map(|b| if *b == b'+' { b' ' } else { *b })
                    .collect();
                Cow::Owned(
                    percent_encoding::percent_decode(&plus)
                        .decode_utf8()
                        .ok()?
                        .trim()
                        .to_string(),
                )
            } else {
                Cow::Borrowed(std::str::from_utf8(raw).ok()?.trim())
            };
            return (!v.is_empty() && v.len() <= 64).then_some(v);
        }
    }
    None
}

/// `<user>.<hex mac>` with `mac = HMAC-SHA256(key, user)`; the user if it verifies.
pub fn verify_cookie<'a>(key: &[u8], value: &'a str) -> Option<&'a str> {
    let (user, mac) = value.rsplit_once('.')?;
    let mut given = [0u8; 32];
    hex::decode_to_slice(mac, &mut given).ok()?;
    let mut m = Hmac::<Sha256>::new_from_slice(key).ok()?;
    m.update(user.as_bytes());
    m.verify_slice(&given).ok()?;
    (!user.is_empty() && user.len() <= 256).then_some(user)
}

/// Signs a user id the way the shop must (for tests and the shop's docs).
pub fn sign_cookie(key: &[u8], user: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(user.as_bytes());
    format!("{user}.{}", hex::encode(m.finalize().into_bytes()))
}

/// The gate's id, made once and kept in the journal directory.
fn gate_id_in(dir: &Path) -> Result<String, Error> {
    let path = dir.join("gate-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim().to_string();
        if !id.is_empty() {
            return Ok(id);
        }
    }
    let id = format!("g{}", sale::random_hex(3));
    crate::output::write_atomically(&path, format!("{id}\n").as_bytes())
        .map_err(|e| Error::Setup(format!("{}: {e}", path.display())))?;
    Ok(id)
}

/// Serves the gate on `listener` until `shutdown` resolves; then stops
/// accepting, lets in-flight requests finish (up to 10 s) and flushes the journal.
pub async fn serve(
    gate: Arc<Gate>,
    listener: TcpListener,
    header_timeout: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let gate = gate.clone();
                let service = hyper::service::service_fn(move |req| {
                    let gate = gate.clone();
                    async move { Ok::<_, Infallible>(gate.handle(req, peer).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .max_buf_size(16 * 1024)
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            _ = &mut shutdown => break,
        }
    }
    gate.draining.store(true, Ordering::Relaxed);
    drop(listener);
    log("gate_stopping", serde_json::json!({}));
    let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
    gate.drain();
    log(
        "gate_stopped",
        serde_json::json!({ "admitted": gate.admitted() }),
    );
}

/// Binds `addr` (errors say which address).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|error| Error::Listen { addr, error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_decode() {
        assert_eq!(
            form_value(b"sku=MUG-01&quantity=1", "sku").as_deref(),
            Some("MUG-01")
        );
        assert_eq!(
            form_value(b"quantity=1&sku=A%2D1", "sku").as_deref(),
            Some("A-1")
        );
        assert_eq!(form_value(b"sku=%ff", "sku"), None);
        assert_eq!(form_value(b"sk=1", "sku"), None);
    }

    #[test]
    fn cookies_verify_only_when_signed_with_the_key() {
        let c = sign_cookie(b"shop-key", "alice");
        assert_eq!(verify_cookie(b"shop-key", &c), Some("alice"));
        assert_eq!(verify_cookie(b"other-key", &c), None);
        let forged = c.replace("alice", "mallory");
        assert_eq!(verify_cookie(b"shop-key", &forged), None);
    }

    #[test]
    fn a_slot_never_admits_more_than_its_quota() {
        let slot = Slot {
            sku: "A".into(),
            quota: 3,
            admitted: AtomicU32::new(0),
            winners: Mutex::new(HashMap::new()),
            sold_out: OnceLock::new(),
        };
        let mut n = 0;
        let mut won = 0;
        for u in 0..10 {
            match slot.admit(&format!("u{u}"), || {
                n += 1;
                format!("o{n}")
            }) {
                Admission::New(_) => won += 1,
                Admission::Repeat(_) => panic!("no repeats here"),
                Admission::SoldOut => {}
            }
        }
        assert_eq!(won, 3);
        assert!(
            matches!(slot.admit("u0", || unreachable!()), Admission::Repeat(t) if &*t.order == "o1")
        );
        assert!(matches!(
            slot.admit("u9", || unreachable!()),
            Admission::SoldOut
        ));
    }
}

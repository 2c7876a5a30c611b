//! The order gate: admits at most its quota per item, records each winner
//! durably before answering, forwards winners to the order system, and sends
//! everyone else to the "sale ended" page.
//!
//! The parts, each in its file: `http` (the request handler and its refusal
//! ladder), `identity` (header or signed cookie), `limit` (per-client rate
//! limit), `admission` and `shared` (who gets a unit), `draw` (a fair
//! start's entries and draw), `journal` (winners and entries on disk, group
//! commit), `forward` (winners to the order system), `metrics` (`/metrics`),
//! `server` (sockets, timeouts, graceful shutdown) and `watch` (reading other
//! gates from outside). This file assembles a gate from the configuration.

mod admission;
mod draw;
mod forward;
mod http;
mod identity;
mod journal;
mod limit;
mod metrics;
mod server;
mod shared;
pub(crate) mod watch;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use hyper::header::HeaderValue;

use crate::config::Config;
use crate::sale::{GateKey, Window};
pub(crate) use admission::{Admission, ItemCount, LocalStock, Stock};
pub(crate) use draw::FILE_NAME as ENTRIES_FILE;
use forward::Forwarder;
pub use identity::sign_cookie;
use identity::Identify;
pub(crate) use journal::{
    hold as hold_journal, read_file as read_journal, repair as repair_journal, Winner,
    FILE_NAME as WINNERS_FILE,
};
use journal::{Journal, JournalError};
use limit::RateLimiter;
pub(crate) use server::{bind, serve, Limits, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_PER_CLIENT};
use shared::SharedStock;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{}: the journal holds winners of sale `{found}`, not `{expected}`; give each sale its own journal directory", path.display())]
    ForeignJournal {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("item `{sku}` has stock {stock} for {gates} gates: 0 units per gate; lower `gates` or set `quota`")]
    ZeroQuota { sku: String, stock: u32, gates: u32 },
    #[error("{what} `{value}` cannot be an HTTP header value")]
    HeaderValue { what: &'static str, value: String },
    #[error("identity_cookie is set but there is no cookie key for the shop's signed cookies")]
    NoCookieKey,
    #[error("`{0}` cannot be a gate id: use 1 to 32 letters, digits and '-'")]
    BadGateId(String),
    #[error("gate id `{gate}` is live in the ledger (its last heartbeat {ago_ms} ms ago): give each gate its own id")]
    GateIdTaken { gate: String, ago_ms: u64 },
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error("cannot forward winners")]
    Forward(#[from] crate::util::http::HttpError),
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        addr: SocketAddr,
        error: std::io::Error,
    },
}

/// How a gate is run.
pub(crate) struct Options {
    /// Units per item for this gate; default from `[gate]` (quota, or stock / gates).
    pub(crate) quota: Option<u32>,
    pub(crate) journal_dir: PathBuf,
    /// The order system's webhook; default `[gate] forward`.
    pub(crate) forward: Option<String>,
    /// This gate's name in order ids and logs; default: kept in the journal dir.
    pub(crate) gate_id: Option<String>,
    pub(crate) key: GateKey,
    /// The shop's key for signed identity cookies.
    pub(crate) cookie_key: Option<Vec<u8>>,
    /// A request's body must arrive within this (else 408).
    pub(crate) body_timeout: std::time::Duration,
    /// Try the dead letters (winners the order system refused for good) again.
    pub(crate) resend_dead_letters: bool,
    /// The origin whose pages may order (`Origin`, CORS); default: base_url's.
    pub(crate) origin: Option<String>,
}

/// Who sends winners to the order system, and how it went.
struct Forwarding {
    delivery: Arc<forward::Delivery>,
    from: Source,
}

enum Source {
    /// This gate's journal.
    Journal(Arc<Forwarder>),
    /// The fleet ledger's stream, shared with the other live gates.
    Stream(Arc<forward::Relay>),
}

impl Forwarding {
    fn backlog(&self) -> u64 {
        match &self.from {
            Source::Journal(f) => f.backlog(),
            Source::Stream(r) => r.backlog.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    fn delivered(&self) -> u64 {
        self.delivery
            .delivered
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn failures(&self) -> u64 {
        self.delivery
            .attempts_failed
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn dead(&self) -> u64 {
        self.delivery
            .dead
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A heartbeat younger than this means the gate id is in use.
const LIVE_GATE: std::time::Duration = std::time::Duration::from_secs(1);

/// A running gate's state; `handle` answers one request.
pub(crate) struct Gate<L: Admission = Stock> {
    sale: String,
    window: Window,
    key: GateKey,
    /// The order token last verified, so the MAC is not recomputed per request.
    known_token: http::KnownToken,
    identify: Identify,
    stock: L,
    /// A fair start's draw (`[gate] fair_window`).
    draw: Option<draw::StartDraw>,
    journal: Journal,
    forwarder: Option<Forwarding>,
    gate_id: String,
    order_seq: AtomicU64,
    confirm_url: Option<String>,
    ended_location: HeaderValue,
    cors_origin: HeaderValue,
    limiter: Option<RateLimiter>,
    requests: metrics::Requests,
    connections: Arc<server::Connections>,
    /// A request's body must arrive within this.
    body_timeout: std::time::Duration,
    draining: AtomicBool,
    /// One live gate per journal directory, for as long as this gate runs.
    _held: journal::Held,
}

impl Gate {
    /// Takes the journal directory, replays it, connects the ledger (if the
    /// fleet shares one) and starts the forwarder; nothing listens yet.
    /// `stock` is every item's SKU and units in stock.
    pub(crate) async fn start(
        config: &Config,
        stock: &[(String, u32)],
        opts: Options,
    ) -> Result<Arc<Gate>, Error> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |error| Error::Io { path, error }
        };
        crate::util::fs::create_dir_durably(&opts.journal_dir).map_err(io(&opts.journal_dir))?;
        let gate_id = match opts.gate_id.clone() {
            Some(id) => id,
            None => gate_id_in(&opts.journal_dir)?,
        };
        if gate_id.is_empty()
            || gate_id.len() > 32
            || !gate_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(Error::BadGateId(gate_id));
        }
        let held = journal::hold(&opts.journal_dir, &gate_id)?;
        let replayed = journal::replay(&opts.journal_dir)?;
        if let Some(other) = replayed.iter().find(|w| w.sale != config.name) {
            return Err(Error::ForeignJournal {
                path: opts.journal_dir.clone(),
                found: other.sale.clone(),
                expected: config.name.clone(),
            });
        }
        let mut max_seq = 0;
        for w in &replayed {
            if let Some(n) = w.order.rsplit('-').next().and_then(|n| n.parse().ok()) {
                max_seq = max_seq.max(n);
            }
        }
        let ledger = match &config.gate.ledger {
            Some(url) => Stock::Shared(Arc::new(
                shared_stock(config, url, &gate_id, stock, replayed.clone()).await?,
            )),
            None => {
                let local = LocalStock::new(quotas(config, stock, opts.quota)?);
                for w in &replayed {
                    if !local.restore(&w.sku, &w.user, &w.order) {
                        tracing::warn!(order = w.order, sku = w.sku, "replay_unknown_item");
                    }
                }
                for c in local.settle() {
                    tracing::warn!(
                        sku = c.sku,
                        winners = c.admitted,
                        quota = c.quota,
                        "replay_over_quota: the journal holds more winners than this gate's quota; they keep their units, nobody else is admitted"
                    );
                }
                Stock::Local(local)
            }
        };
        let start_draw = match config.gate.fair_window_ms {
            None => None,
            Some(window) => {
                let (d, entries) = draw::StartDraw::open(
                    &opts.journal_dir,
                    crate::sale::draw::Seed::of(&opts.key, config),
                    config.start.timestamp_millis() + window,
                    &gate_id,
                    stock.iter().map(|(s, _)| s.clone()).collect(),
                    match &config.gate.ledger {
                        Some(url) => Some(crate::ledger::Ledger::new(url, &config.name)?),
                        None => None,
                    },
                )?;
                tracing::info!(
                    commitment = d.commitment(),
                    until = %chrono::DateTime::from_timestamp_millis(d.until_ms)
                        .unwrap_or_default()
                        .with_timezone(config.start.offset()),
                    replayed = entries,
                    hint = "orders until then are entries of a draw; the commitment is the SHA-256 of its seed",
                    "fair_start"
                );
                Some(d)
            }
        };
        let forward_url = opts.forward.clone().or_else(|| config.gate.forward.clone());
        let opts_resend = opts.resend_dead_letters;
        let forwarder = match forward_url {
            None => None,
            Some(url) => {
                let delivery = forward::Delivery::new(&url, &opts.journal_dir)?;
                let from = match &config.gate.ledger {
                    // A fleet forwards the ledger's stream, on a connection of its own.
                    Some(ledger) => Source::Stream(forward::Relay::new(
                        delivery.clone(),
                        crate::ledger::Ledger::new(ledger, &config.name)?,
                        &gate_id,
                    )),
                    None => Source::Journal(Forwarder::new(
                        delivery.clone(),
                        &opts.journal_dir,
                        replayed.clone(),
                    )),
                };
                Some(Forwarding { delivery, from })
            }
        };
        let to_forwarder = match forwarder.as_ref().map(|f| &f.from) {
            Some(Source::Journal(f)) => Some(f.clone()),
            _ => None,
        };
        let journal = Journal::open(
            &opts.journal_dir,
            Box::new(move |batch: &[Winner]| {
                if let Some(f) = &to_forwarder {
                    f.push(batch);
                }
            }),
        )?;
        let header = |value: &str, what: &'static str| {
            HeaderValue::from_str(value).map_err(|_| Error::HeaderValue {
                what,
                value: value.to_string(),
            })
        };
        // base_url was checked to be an http(s) URL when the config was read.
        let origin = opts.origin.clone().unwrap_or_else(|| {
            crate::config::http_url(&config.base_url)
                .map_or_else(String::new, |u| u.origin().ascii_serialization())
        });
        let gate = Gate {
            sale: config.name.clone(),
            window: Window {
                start_ms: config.start.timestamp_millis(),
                end_ms: config.end.timestamp_millis(),
                tolerance_ms: config.gate.tolerance_ms,
            },
            key: opts.key,
            known_token: http::KnownToken::default(),
            identify: Identify::new(config.gate.identity.clone(), opts.cookie_key)?,
            stock: ledger,
            draw: start_draw,
            journal,
            forwarder,
            gate_id: gate_id.clone(),
            order_seq: AtomicU64::new(max_seq),
            confirm_url: config.gate.confirm_url.clone(),
            ended_location: header(&config.gate.ended_url, "ended_url")?,
            cors_origin: header(&origin, "base_url origin")?,
            limiter: config.gate.rate_limit.map(|r| {
                RateLimiter::new(
                    r,
                    config.gate.client_ip_header.clone(),
                    config.gate.client_ip_hops,
                )
            }),
            requests: Default::default(),
            connections: Default::default(),
            body_timeout: opts.body_timeout,
            draining: AtomicBool::new(false),
            _held: held,
        };
        let gate = Arc::new(gate);
        tracing::info!(
            sale = gate.sale,
            gate = gate_id,
            replayed = replayed.len(),
            items = gate
                .stock
                .counts()
                .iter()
                .map(|c| format!("{} {}/{}", c.sku, c.admitted, c.quota))
                .collect::<Vec<_>>()
                .join(", "),
            "gate_start"
        );
        if let Some(f) = &gate.forwarder {
            match &f.from {
                Source::Journal(j) => drop(tokio::spawn(j.clone().run())),
                Source::Stream(r) => drop(tokio::spawn(r.clone().run())),
            }
            if opts_resend {
                let delivery = f.delivery.clone();
                tokio::spawn(async move {
                    match delivery.resend_dead_letters().await {
                        Ok(n) => tracing::info!(count = n, "forward_dead_letters_resent"),
                        Err(e) => tracing::error!(error = %e, "forward_dead_letters_unreadable"),
                    }
                });
            }
        }
        if let Stock::Shared(s) = &gate.stock {
            tokio::spawn(s.clone().run());
        }
        if gate.draw.is_some() {
            tokio::spawn(draw::run(Arc::downgrade(&gate)));
        }
        Ok(gate)
    }
}

impl<L: Admission> Gate<L> {
    /// The Prometheus text of `/metrics`.
    pub(crate) fn metrics(&self) -> String {
        metrics::render(self)
    }

    /// Stops admitting and writes what is queued.
    pub(crate) fn drain(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(d) = &self.draw {
            d.stop();
        }
        self.journal.close();
    }

    /// A new winner's order id: `<gate id>-<number>`.
    fn next_order(&self) -> String {
        let n = self
            .order_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        format!("{}-{n:06}", self.gate_id)
    }

    /// Where user ids come from, for the start-up line.
    pub(crate) fn identity(&self) -> String {
        self.identify.describe()
    }

    /// Every item's numbers at this gate.
    pub(crate) fn counts(&self) -> Vec<ItemCount> {
        self.stock.counts()
    }

    /// Resolves once every item is sold out at this gate, with a reason to say.
    pub(crate) async fn sold_out(self: Arc<Self>) -> String {
        loop {
            let counts = self.counts();
            if !counts.is_empty() && counts.iter().all(|c| c.remaining() == 0) {
                let sold: u32 = counts.iter().map(|c| c.admitted).sum();
                // The last winners are answered (and logged) once on disk:
                // "sold out" comes after them.
                let _ = self.journal.settled().await;
                return format!("sold out, {sold} units");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The fleet's stock on the ledger at `url`: refuses a gate id another live
/// gate uses, and warns when Redis could lose acknowledged winners.
async fn shared_stock(
    config: &Config,
    url: &str,
    gate_id: &str,
    stock: &[(String, u32)],
    journaled: Vec<Winner>,
) -> Result<SharedStock, Error> {
    let ledger = crate::ledger::Ledger::new(url, &config.name)?;
    let skus: Vec<String> = stock.iter().map(|(s, _)| s.clone()).collect();
    // A ledger that is down now is not fatal: the gate starts closed and
    // opens when it answers. A gate id in use is.
    match ledger.status(&skus, None).await {
        Ok(status) => {
            if let Some(ago) = status.gates.get(gate_id) {
                if *ago < LIVE_GATE.as_millis() as u64 {
                    return Err(Error::GateIdTaken {
                        gate: gate_id.to_string(),
                        ago_ms: *ago,
                    });
                }
            }
            match ledger.persistence().await {
                Ok(p) => {
                    for warning in p.warnings() {
                        tracing::warn!(at = ledger.at(), "ledger_settings: {warning}");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "ledger_settings_unknown"),
            }
        }
        Err(e) => tracing::error!(error = %e, "ledger_down"),
    }
    Ok(SharedStock::new(
        ledger,
        &config.name,
        gate_id,
        stock,
        journaled,
    ))
}

/// Each item's quota at this gate: the given one, `[gate] quota`, or stock / gates.
fn quotas(
    config: &Config,
    stock: &[(String, u32)],
    quota: Option<u32>,
) -> Result<Vec<(String, u32)>, Error> {
    stock
        .iter()
        .map(|(sku, units)| {
            let gates = config.gate.gates;
            let q = match quota.or(config.gate.quota) {
                Some(q) => q,
                None if *units < gates => {
                    return Err(Error::ZeroQuota {
                        sku: sku.clone(),
                        stock: *units,
                        gates,
                    })
                }
                None => units / gates,
            };
            Ok((sku.clone(), q))
        })
        .collect()
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
    let id = format!("g{}", crate::util::random::hex(3));
    crate::util::fs::write_durably(&path, format!("{id}\n").as_bytes())
        .map_err(|error| Error::Io { path, error })?;
    Ok(id)
}

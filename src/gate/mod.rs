//! The order gate: admits at most its quota per item, records each winner
//! durably before answering, forwards winners to the order system, and sends
//! everyone else to the "sale ended" page.
//!
//! The rooms, each a file: `start` (a gate assembled from the configuration,
//! in named steps), `http` (routing, `/healthz`, `/metrics`), `order` (one
//! order's refusal ladder: token, identity, body, admit), `answer` (what
//! customers are told), `stock` (who wins: local or fleet-wide), `record`
//! (how a winner is recorded: order ids and the journal), `draw` (a fair
//! start's entries and draw), `forward` (winners to the order system),
//! `identity`, `limit`, `metrics`, `server` (sockets, caps, graceful
//! shutdown) and `watch` (reading other gates from outside).
//!
//! Every background task (the stock's ledger poll, the forwarder, the draw)
//! runs under one `Shutdown` (`util::shutdown`): `Gate::stop` ends them all and releases
//! the journal directory. The gate asks one `Clock` (`util::clock`) what time it is.

mod answer;
mod draw;
mod edge;
mod forward;
mod http;
mod identity;
mod limit;
mod metrics;
mod order;
mod record;
mod server;
mod start;
mod stock;
pub(crate) mod watch;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::journal::{Held, JournalError};
use crate::sale::Window;
use crate::util::clock::Clock;
use crate::util::shutdown::Shutdown;
use crate::util::sync::lock;

pub(crate) use edge::{EdgeRules, Verdict as EdgeVerdict};
/// The names of the gate's metrics, for those who read them back (`watch`).
pub(crate) mod metrics_names {
    pub(crate) use super::metrics::{
        ADMITTED, CONNECTIONS, DRAW_DONE, DRAW_ENTRIES, FORWARD_BACKLOG, FORWARD_DEAD, LEDGER_UP,
        ORDER_SECONDS, QUOTA, REQUESTS,
    };
}
pub(crate) use forward::MIN_FORWARD_KEY;
pub use identity::sign_cookie;
pub(crate) use server::{bind, serve, Limits, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_PER_CLIENT};
pub(crate) use stock::ItemCount;

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
    #[error("gate id `{gate}` is taken by the live gate whose admin listener is {admin} (`[gate] admin`): two gates with one id issue the same order ids, and the order system drops real winners as duplicates; start this one with another --gate-id")]
    GateIdInUse { gate: String, admin: String },
    #[error("gate id `{gate}` is not in `[gate] fleet` ({}) of the sale: start the gate with --gate-id one of those, or add it to the list (every gate and `ledger load` read it)", fleet.join(", "))]
    NotInFleet { gate: String, fleet: Vec<String> },
    #[error("the journal holds {count} attempt(s) whose answer the ledger at {at} never gave (the gate stopped in between), and it does not answer now ({why}): start the gate once the ledger answers; it settles them first")]
    AttemptsUnresolved {
        count: usize,
        at: String,
        why: String,
    },
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
    pub(crate) key: crate::sale::GateKey,
    /// The shop's key for signed identity cookies.
    pub(crate) cookie_key: Option<Vec<u8>>,
    /// The order system's keys for signed deliveries (one, or two while
    /// rotating: the new one first); `None`: deliveries are not signed.
    pub(crate) forward_keys: Option<Vec<Vec<u8>>>,
    /// A request's body must arrive within this (else 408).
    pub(crate) body_timeout: Duration,
    /// Try the dead letters (winners the order system refused for good) again.
    pub(crate) resend_dead_letters: bool,
    /// The origin whose pages may order (`Origin`, CORS); default: base_url's.
    pub(crate) origin: Option<String>,
    /// What time it is (the system's, but for tests).
    pub(crate) clock: Clock,
}

/// A running gate's state; [`Gate::handle`] answers one request.
pub(crate) struct Gate {
    sale: String,
    window: Window,
    clock: Clock,
    /// The order URL's token, checked once per token.
    token: order::TokenCheck,
    identify: identity::Identify,
    /// Whose `client_ip_header` and identity header are believed.
    proxies: limit::Proxies,
    /// Set once an untrusted peer sent an identity header (logged once).
    untrusted_identity: AtomicBool,
    limiter: Option<limit::RateLimiter>,
    /// A request's body must arrive within this.
    body_timeout: Duration,
    /// Who wins.
    stock: Arc<stock::Stock>,
    /// A fair start's draw (`[gate] fair_window`).
    draw: Option<Arc<draw::StartDraw>>,
    /// How winners are recorded.
    recorder: Arc<record::Recorder>,
    forwarding: Option<forward::Forwarding>,
    answers: answer::Answers,
    requests: metrics::Requests,
    /// How long orders take to be answered (`/metrics`).
    order_latency: crate::util::prometheus::Histogram,
    connections: Arc<server::Connections>,
    /// Set when the gate stops taking orders (SIGTERM): answers are 503.
    draining: AtomicBool,
    /// Ends every background task.
    shutdown: Shutdown,
    /// One live gate per journal directory, until [`Gate::stop`].
    held: Mutex<Option<Held>>,
}

impl Gate {
    /// The Prometheus text of `/metrics`.
    pub(crate) fn metrics(&self) -> String {
        metrics::render(self)
    }

    /// Where user ids come from, for the start-up line.
    pub(crate) fn identity(&self) -> String {
        let id = self.identify.describe();
        if self.identify.by_header() {
            format!("{id}; proxies trusted: {}", self.proxies.describe())
        } else {
            id
        }
    }

    /// Every item's numbers at this gate.
    pub(crate) fn counts(&self) -> Vec<ItemCount> {
        use stock::Admission;
        self.stock.counts()
    }

    /// This gate's id (order ids begin with it).
    pub(crate) fn id(&self) -> &str {
        self.recorder.gate_id()
    }

    /// Whether the gate has stopped taking orders.
    fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Stops taking orders: from now on every order is answered 503, and so
    /// are entrants held for a fair start's draw (their entries stand); other
    /// in-flight orders finish.
    pub(crate) fn begin_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
        if let Some(d) = &self.draw {
            d.stop();
        }
    }

    /// Stops the gate: no more orders; entrants waiting for a draw are
    /// answered; what is queued is written; every background task ends; the
    /// journal directory is free for the next gate when this returns.
    pub(crate) async fn stop(&self) {
        self.begin_draining();
        self.recorder.close();
        self.shutdown.stop().await;
        lock(&self.held).take();
    }

    /// Background tasks still running (none once stopped).
    pub(crate) fn tasks(&self) -> usize {
        self.shutdown.running()
    }

    /// Resolves once every item is sold out at this gate, with a reason to say.
    pub(crate) async fn sold_out(self: Arc<Self>) -> String {
        loop {
            let counts = self.counts();
            if !counts.is_empty() && counts.iter().all(|c| c.remaining() == 0) {
                let sold: u32 = counts.iter().map(|c| c.admitted).sum();
                // The last winners are answered (and logged) once on disk:
                // "sold out" comes after them.
                let _ = self.recorder.settled().await;
                return format!("sold out, {sold} units");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

//! The shared ledger of a fleet of gates, on Redis: the single truth for
//! each item's stock, who won what (one unit per customer and item across
//! every gate), order ids unique across the fleet, and the stream of winners
//! the live gates forward to the order system.
//!
//! Loading the stock is one step too (`load.lua`: refused while the ledger
//! holds winners, unless forced). Every admission attempt is one atomic server-side step (the `take`
//! script; a gate sends the attempts that arrive together in one call, as its
//! journal writes them in one fsync); the scripts live in `scripts/`. Keys of sale `S` share the hash
//! tag `{S}`: `fs:{S}:meta` (epoch, `total:<sku>`), `fs:{S}:w:<sku>` (user →
//! order), `fs:{S}:seq`, `fs:{S}:orders` (a stream), `fs:{S}:forwarded` (how
//! many of its entries the order system took, fleet-wide), `fs:{S}:gates`
//! (gate id → last heartbeat, ms), `fs:{S}:members` (gate id → when it put
//! its journal back, or `excused`: the markers a load after a loss waits for,
//! lost with the rest). The epoch is written by `ledger load`; a ledger whose
//! epoch vanished was lost (a Redis restarted empty) and admits nobody until
//! it is loaded again — after the start, only once every gate of `[gate]
//! fleet` has put its winners back or is named missing (`load.lua`).
//!
//! A fair start (`gate::draw`) adds, per item: `fs:{S}:entries:<sku>` (a set of
//! entrants), `fs:{S}:draw:<sku>` (`units` once the entries are closed, `done`
//! once the drawn are taken) and `fs:{S}:drawlease:<sku>` (the gate drawing,
//! expiring), so one draw per item covers the fleet.
//!
//! `gate::stock::shared` admits through it; `cmd/ledger.rs` loads, reports and
//! exports with it.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, IntoConnectionInfo, Script};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub(crate) use crate::config::LedgerAccess;

mod link;
use link::{Con, Link};

/// The environment variable a ledger's password may come in (wins over
/// `[gate] ledger_password_file`; a password in the URL wins over both).
pub(crate) const PASSWORD_ENV: &str = "FLASHSALE_LEDGER_PASSWORD";

/// The password (from the environment, else the file) and the CA's PEM
/// bytes `access` names.
fn secrets(access: &LedgerAccess) -> Result<(Option<String>, Option<Vec<u8>>), LedgerError> {
    let file = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| LedgerError::AccessFile {
            path: path.to_path_buf(),
            why: format!("cannot read it: {e}"),
        })
    };
    let from_env = std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty());
    let password = match (from_env, &access.password_file) {
        (Some(p), _) => Some(p),
        (None, Some(path)) => {
            let text = String::from_utf8(file(path)?).map_err(|_| LedgerError::AccessFile {
                path: path.clone(),
                why: "not UTF-8 text; write the password on the first line".into(),
            })?;
            let first = text.lines().next().unwrap_or("").to_string();
            if first.is_empty() {
                return Err(LedgerError::AccessFile {
                    path: path.clone(),
                    why: "its first line is empty; write the password there".into(),
                });
            }
            Some(first)
        }
        (None, None) => None,
    };
    let ca = access.ca_file.as_deref().map(file).transpose()?;
    Ok((password, ca))
}

/// The Redis client for `url` with `access` applied.
fn client(url: &str, access: &LedgerAccess) -> Result<redis::Client, LedgerError> {
    let bad_url = |e: redis::RedisError| LedgerError::BadUrl(e.to_string());
    let mut info = url.into_connection_info().map_err(bad_url)?;
    let (password, ca) = secrets(access)?;
    // A password written into the URL is the most specific; else the
    // environment's; else the file's.
    if info.redis_settings().password().is_none() {
        if let Some(p) = password {
            let settings = info.redis_settings().clone().set_password(p);
            info = info.set_redis_settings(settings);
        }
    }
    ca_needs_tls(
        access,
        matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. }),
    )?;
    match (&access.ca_file, ca) {
        (Some(path), Some(root_cert)) => with_ca(info, path, root_cert),
        _ => redis::Client::open(info).map_err(bad_url),
    }
}

/// A CA file for a ledger reached without TLS is a mistake: said, not ignored.
fn ca_needs_tls(access: &LedgerAccess, tls: bool) -> Result<(), LedgerError> {
    match &access.ca_file {
        Some(path) if !tls => Err(LedgerError::AccessFile {
            path: path.clone(),
            why: "a CA for the ledger, but its URL is not TLS; write it rediss://… (rediss+sentinel://, rediss+cluster://), or remove `ledger_ca`".into(),
        }),
        _ => Ok(()),
    }
}

/// TLS roots of one private CA (its PEM bytes), no client certificate.
#[cfg(feature = "ledger-tls")]
fn trusting(root_cert: Vec<u8>) -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(root_cert),
    }
}

/// A TLS client trusting the CA in `path` (its PEM bytes `root_cert`).
#[cfg(feature = "ledger-tls")]
fn with_ca(
    info: redis::ConnectionInfo,
    path: &std::path::Path,
    root_cert: Vec<u8>,
) -> Result<redis::Client, LedgerError> {
    redis::Client::build_with_tls(info, trusting(root_cert)).map_err(|e| LedgerError::AccessFile {
        path: path.to_path_buf(),
        why: format!("not a usable CA (PEM certificates): {e}"),
    })
}

#[cfg(not(feature = "ledger-tls"))]
fn with_ca(
    _: redis::ConnectionInfo,
    path: &std::path::Path,
    _: Vec<u8>,
) -> Result<redis::Client, LedgerError> {
    Err(LedgerError::AccessFile {
        path: path.to_path_buf(),
        why: NO_TLS.into(),
    })
}

/// Why a build without the `ledger-tls` feature cannot use a TLS ledger.
#[cfg(not(feature = "ledger-tls"))]
const NO_TLS: &str = "this flashsale was built without TLS for the ledger (--no-default-features); build it with the default features";

/// A failed call, as down (it may come back) or refused (it will not, as it is).
fn classify(at: &str, e: redis::RedisError) -> LedgerError {
    let why = e.to_string();
    let auth = e.kind() == redis::ErrorKind::AuthenticationFailed
        || why.contains("WRONGPASS")
        || why.contains("NOAUTH")
        || why.contains("NOPERM");
    let tls = why.contains("certificate") || why.contains("Certificate");
    let help = if auth {
        "check the user in the ledger URL and its password ($FLASHSALE_LEDGER_PASSWORD, or the file in `[gate] ledger_password_file`); the user needs the commands the gates run (see the README's ledger section)"
    } else if tls {
        "give the CA that signed the ledger's certificate in `[gate] ledger_ca`, and reach it by a name or address its certificate holds"
    } else {
        return LedgerError::Down {
            at: at.to_string(),
            why,
        };
    };
    LedgerError::Refused {
        at: at.to_string(),
        why,
        help,
    }
}

/// What a ledger call failed on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LedgerError {
    #[error(
        "the ledger URL is not a Redis URL ({0}); write it like redis://host:port/db, or rediss://USER@host:port/db for TLS"
    )]
    BadUrl(String),
    /// A file the ledger's access needs (its CA, its password) cannot be used.
    #[error("{}: {why}", path.display())]
    AccessFile {
        path: std::path::PathBuf,
        why: String,
    },
    /// The ledger turned the gate away: wrong credentials, a certificate it
    /// cannot trust. Waiting does not mend it.
    #[error("the ledger (Redis at {at}) refused the connection: {why}; {help}")]
    Refused {
        at: String,
        why: String,
        help: &'static str,
    },
    #[error("the ledger (Redis at {at}) does not answer: {why}")]
    Down { at: String, why: String },
    #[error("the ledger (Redis at {at}) answered something unexpected: {why}")]
    Protocol { at: String, why: String },
    #[error("sale `{sale}` has {winners} winners in the ledger at {at}; loading it again would change a running or finished sale")]
    HasWinners {
        sale: String,
        winners: u64,
        at: String,
    },
    #[error("gate {} of sale `{sale}` has not put its winners back into the ledger at {at} since it was lost or cleared (it is down, or has not started); loading now could sell its units again", gates.join(", gate "))]
    NotBack {
        sale: String,
        gates: Vec<String>,
        at: String,
    },
}

/// A connection to the ledger of one sale. Cheap to clone; reconnects by itself.
#[derive(Clone)]
pub(crate) struct Ledger {
    link: Link,
    sale: String,
    prefix: String,
    /// Where Redis is, for messages: host and port, never the password.
    at: String,
    /// Replicas that must confirm a take before it counts (`WAIT`); 0: none.
    replicas: u32,
    /// Until when takes are held after a `WAIT` fell short: each `WAIT`
    /// blocks the shared connection, so they are not queued behind one another.
    held_until: Arc<Mutex<Option<std::time::Instant>>>,
    /// The primary's identity as last seen, and how often it changed.
    primary: Arc<Primary>,
    /// The lane the next take goes over (see [`link::LANES`]).
    lane: Arc<std::sync::atomic::AtomicUsize>,
    /// Wait for the replicas' disks (`WAITAOF`), not only their memory.
    waitaof: bool,
}

/// Which Redis process is the primary (`run_id`), as the gate's poll saw it
/// last: a new one is a failover (or a restart) whatever the topology —
/// Sentinel, a cluster's slot, or a DNS name a managed Redis moves.
#[derive(Default)]
struct Primary {
    run_id: Mutex<Option<String>>,
    changes: AtomicU64,
}

/// The answer of the `take` script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Take {
    /// A new winner, and the units left after it.
    Won {
        order: String,
        left: u32,
    },
    /// This user already won this item (at any gate).
    Repeat {
        order: String,
    },
    SoldOut,
    /// The ledger has no stock for this item.
    Unknown,
    /// The ledger's epoch is not the one given: it was lost or loaded again.
    Reset {
        epoch: Option<String>,
    },
    /// Won (or won before), but fewer replicas than required confirmed it
    /// in time (`WAIT`): a failover now could lose it, so it is not
    /// acknowledged; the customer's retry answers the same order once it is.
    Unreplicated {
        order: String,
    },
    /// Not tried: the primary changed since the gate last put its journal
    /// back, or a take a moment ago found the replicas required missing
    /// (for `REPLICA_WAIT_MS / 2`, takes are answered this way at once).
    Held,
}

/// Whether `INFO server persistence` says `WAITAOF` exists and an AOF is kept.
fn waitaof_supported(info: &str) -> bool {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let version: Vec<u32> = field("redis_version:")
        .unwrap_or("")
        .split('.')
        .map_while(|p| p.parse().ok())
        .collect();
    let new_enough = matches!(version.as_slice(), [major, minor, ..] if (*major, *minor) >= (7, 2));
    new_enough && field("aof_enabled:") == Some("1")
}

/// How long a take waits for its replicas (`WAIT`) before it is answered
/// 503: well inside the call's own timeout.
const REPLICA_WAIT_MS: u64 = 500;

/// One winner as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Entry {
    pub(crate) sale: String,
    pub(crate) sku: String,
    pub(crate) user: String,
    pub(crate) order: String,
}

/// What a poll sees: the epoch and, per item, units taken of the total.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Status {
    pub(crate) epoch: Option<String>,
    /// sku → (taken, total); total 0 when the ledger has none for it.
    pub(crate) items: BTreeMap<String, (u32, u32)>,
    /// Gate id → milliseconds since its last heartbeat.
    pub(crate) gates: BTreeMap<String, u64>,
    /// Gate id → its marker: which gates put their winners back since the
    /// ledger was last lost or cleared (the markers go with the data).
    pub(crate) members: BTreeMap<String, Member>,
}

/// A gate of the fleet, as the ledger's markers show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "marker", rename_all = "snake_case")]
pub(crate) enum Member {
    /// It put its winners (and entries) back this many ms ago.
    Back { ago_ms: u64 },
    /// The stock was loaded without it: named missing by the operator, or
    /// loaded before the sale started (nobody can have won at it yet).
    Excused,
}

/// Which gates a load must hear from: the fleet listed in `site.toml`
/// (`[gate] fleet`), those the operator names missing, and whether the sale
/// has started (before it, nobody can have won at a gate that is away).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Roster<'a> {
    pub(crate) fleet: &'a [String],
    pub(crate) missing: &'a [String],
    pub(crate) started: bool,
}

/// Something a re-assert found that does not fit: a sign of an oversell.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Alarm {
    /// The ledger has another order for a customer this gate's journal has
    /// a winner for.
    Conflict {
        sku: String,
        user: String,
        ledger: String,
        journal: String,
    },
    /// More winners of an item than its stock.
    Oversold {
        sku: String,
        winners: u64,
        stock: u64,
    },
}

impl std::fmt::Display for Alarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Alarm::Conflict {
                sku,
                user,
                ledger,
                journal,
            } => write!(
                f,
                "{sku}: customer {user} has order {journal} in this gate's journal and {ledger} in the ledger"
            ),
            Alarm::Oversold {
                sku,
                winners,
                stock,
            } => write!(f, "{sku}: {winners} winners of a stock of {stock}"),
        }
    }
}

/// What putting a gate's journal back found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Reasserted {
    /// Winners the ledger did not have.
    pub(crate) missing: u64,
    pub(crate) alarms: Vec<Alarm>,
}

/// The Redis settings that decide whether acknowledged winners survive a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Persistence {
    pub(crate) appendonly: String,
    pub(crate) appendfsync: String,
    pub(crate) maxmemory_policy: String,
}

impl Persistence {
    /// What is wrong for a sale, in words; empty when nothing is.
    pub(crate) fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.appendonly != "yes" {
            w.push("appendonly is off: a Redis restart loses every winner since the last snapshot (set `appendonly yes`)".to_string());
        } else if self.appendfsync != "always" {
            w.push(format!("appendfsync is `{}`: a Redis crash can lose the last second of winners (set `appendfsync always`)", self.appendfsync));
        }
        if self.maxmemory_policy != "noeviction" {
            w.push(format!("maxmemory-policy is `{}`: Redis may evict the sale's keys under memory pressure (set `maxmemory-policy noeviction`)", self.maxmemory_policy));
        }
        w
    }
}

// Loaded by SHA (EVALSHA); the client loads a script again when Redis
// answers NOSCRIPT (after a restart or SCRIPT FLUSH).
static TAKE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/take.lua")));
static RESOLVE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/resolve.lua")));
static REASSERT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/reassert.lua")));
static STATUS: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/status.lua")));
static ENTER: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/enter.lua")));
static CLOSE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/close.lua")));
static LEASE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/lease.lua")));
static LOAD: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/load.lua")));

/// A gate drawing an item holds its lease this long; if it dies, another
/// gate takes the draw over after it (drawing the same winners).
pub(crate) const DRAW_LEASE: Duration = Duration::from_secs(5);

/// How long one ledger call may take before it counts as failed (fail closed).
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1000);

impl Ledger {
    /// A ledger for `sale` at `url` (`redis://host:port/db`, `rediss://`
    /// for TLS), reached as `access` says (a CA file; the password from the
    /// URL, else `$FLASHSALE_LEDGER_PASSWORD`, else its file).
    /// Connects lazily: a ledger that is down is found out by the first call.
    pub(crate) fn new(url: &str, access: &LedgerAccess, sale: &str) -> Result<Ledger, LedgerError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(200));
        let prefix = format!("fs:{{{sale}}}:");
        let (link, at) = if let Some(parsed) = link::parse_sentinel(url) {
            let parsed = parsed.map_err(LedgerError::BadUrl)?;
            let (password, ca) = secrets(access)?;
            ca_needs_tls(access, parsed.tls)?;
            let f = link::Followed::new(&parsed, password, ca, config)
                .map_err(|e| LedgerError::BadUrl(e.to_string()))?;
            let at = f.at.clone();
            (Link::Sentinel(Arc::new(f)), at)
        } else if let Some(parsed) = link::parse_cluster(url) {
            let parsed = parsed.map_err(LedgerError::BadUrl)?;
            let (password, ca) = secrets(access)?;
            ca_needs_tls(access, parsed.tls)?;
            let seeds: Vec<String> = parsed
                .seeds
                .iter()
                .map(|(h, p)| format!("{h}:{p}"))
                .collect();
            let at = format!("cluster via {}", seeds.join(","));
            let c = link::Clustered::new(&parsed, password, ca, RESPONSE_TIMEOUT, &prefix)
                .map_err(|e| LedgerError::BadUrl(e.to_string()))?;
            (Link::Cluster(Arc::new(c)), at)
        } else {
            let client = client(url, access)?;
            let at = client.get_connection_info().addr().to_string();
            let lanes = (0..link::LANES)
                .map(|_| ConnectionManager::new_lazy_with_config(client.clone(), config.clone()))
                .collect::<redis::RedisResult<Vec<_>>>()
                .map_err(|e| LedgerError::Down {
                    at: at.clone(),
                    why: e.to_string(),
                })?;
            (Link::Direct(Arc::new(lanes)), at)
        };
        Ok(Ledger {
            link,
            sale: sale.to_string(),
            prefix,
            at,
            replicas: 0,
            held_until: Default::default(),
            primary: Default::default(),
            lane: Default::default(),
            waitaof: false,
        })
    }

    /// The connection for a call (the primary's, through Sentinel).
    async fn con(&self) -> Result<Con, LedgerError> {
        self.link.con().await.map_err(|e| self.down(e))
    }

    /// How many times the ledger's primary changed (a failover followed
    /// through Sentinel, or a new `run_id` seen by [`Ledger::watch_primary`]);
    /// see [`Ledger::take`].
    pub(crate) fn primary_changes(&self) -> u64 {
        self.link.changes() + self.primary.changes.load(Ordering::Acquire)
    }

    /// Asks the primary (of the sale's slot, in a cluster) who it is, and
    /// counts a change when it is another process than last time.
    pub(crate) async fn watch_primary(&self) -> Result<(), LedgerError> {
        let info = self.info(&["server"]).await?;
        let Some(run_id) = info.lines().find_map(|l| l.strip_prefix("run_id:")) else {
            return Ok(());
        };
        let mut known = crate::util::sync::lock(&self.primary.run_id);
        if known.as_deref().is_some_and(|k| k != run_id.trim()) {
            self.primary.changes.fetch_add(1, Ordering::AcqRel);
            tracing::warn!(at = %self.at, "ledger_primary_replaced");
        }
        *known = Some(run_id.trim().to_string());
        Ok(())
    }

    /// This ledger, its takes acknowledged only once `n` replicas confirm
    /// them (`[gate] ledger_replicas`).
    pub(crate) fn with_replicas(mut self, n: u32) -> Ledger {
        self.replicas = n;
        self
    }

    /// This ledger, waiting with `WAITAOF` (the replicas wrote the take to
    /// their AOF and fsynced it) instead of `WAIT` (they received it).
    pub(crate) fn with_waitaof(mut self, on: bool) -> Ledger {
        self.waitaof = on;
        self
    }

    /// Whether the primary can wait for its replicas' disks: `WAITAOF`
    /// exists (Redis ≥ 7.2, which Valkey reports too) and the primary keeps
    /// an AOF (`aof_enabled`: a deployment that does runs its replicas alike;
    /// one without, such as ElastiCache, is waited on with `WAIT`).
    pub(crate) async fn probe_waitaof(&self) -> Result<bool, LedgerError> {
        Ok(waitaof_supported(
            &self.info(&["server", "persistence"]).await?,
        ))
    }

    /// `INFO` of these sections, from the primary (of the sale's slot).
    async fn info(&self, sections: &[&str]) -> Result<String, LedgerError> {
        let mut con = self.con().await?;
        redis::cmd("INFO")
            .arg(sections)
            .query_async(&mut con)
            .await
            .map_err(|e| self.down(e))
    }

    /// The replicas the ledger's primary has connected now (`INFO replication`).
    pub(crate) async fn connected_replicas(&self) -> Result<u32, LedgerError> {
        let info = self.info(&["replication"]).await?;
        Ok(info
            .lines()
            .find_map(|l| l.strip_prefix("connected_slaves:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0))
    }

    /// Where the ledger is, for messages (never with the password).
    pub(crate) fn at(&self) -> &str {
        &self.at
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn down(&self, e: redis::RedisError) -> LedgerError {
        self.link.failed(&e);
        classify(&self.at, e)
    }

    fn protocol(&self, why: impl Into<String>) -> LedgerError {
        LedgerError::Protocol {
            at: self.at.clone(),
            why: why.into(),
        }
    }

    /// Admission attempts `(sku, user, order)` by `gate` (the order id it
    /// chose, won or not), each decided in one atomic step, all in one round
    /// trip; one answer per attempt, in order.
    /// `asserted` is [`Ledger::primary_changes`] when the gate last put its
    /// journal back: on a primary promoted since, the attempts are held.
    pub(crate) async fn take(
        &self,
        epoch: &str,
        gate: &str,
        attempts: &[(String, String, String)],
        asserted: u64,
    ) -> Result<Vec<Take>, LedgerError> {
        let held = crate::util::sync::lock(&self.held_until)
            .is_some_and(|t| std::time::Instant::now() < t);
        if held {
            return Ok(attempts.iter().map(|_| Take::Held).collect());
        }
        // Takes that wait for replicas spread over lanes 1.. (lane 0 is the
        // poll's); without, one connection pipelines them all.
        let lane = if self.replicas > 0 {
            1 + self.lane.fetch_add(1, Ordering::Relaxed) % (link::LANES - 1)
        } else {
            0
        };
        let (mut con, changes) = self.link.con_at(lane).await.map_err(|e| self.down(e))?;
        if changes + self.primary.changes.load(Ordering::Acquire) != asserted {
            return Ok(attempts.iter().map(|_| Take::Held).collect());
        }
        let mut call = TAKE.prepare_invoke();
        call.key(self.key("meta"))
            .key(self.key("orders"))
            .arg(&self.prefix)
            .arg(epoch)
            .arg(gate);
        for (sku, user, order) in attempts {
            call.arg(sku).arg(user).arg(order);
        }
        let reply: Vec<String> = call
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.down(e))?;
        if reply.len() != attempts.len() * 3 {
            return Err(self.protocol(format!(
                "{} answers to {} attempts",
                reply.len() / 3,
                attempts.len()
            )));
        }
        let replicated = self.replicated(&mut con, &reply).await?;
        reply
            .chunks(3)
            .map(|r| {
                let (kind, order, left) = (r[0].as_str(), r[1].clone(), r[2].as_str());
                if !replicated && (kind == "won" || kind == "repeat") {
                    return Ok(Take::Unreplicated { order });
                }
                Ok(match kind {
                    "won" => Take::Won {
                        order,
                        left: left.parse().unwrap_or(0),
                    },
                    "repeat" => Take::Repeat { order },
                    "sold_out" => Take::SoldOut,
                    "unknown" => Take::Unknown,
                    "reset" => Take::Reset {
                        epoch: Some(order).filter(|e| !e.is_empty()),
                    },
                    other => return Err(self.protocol(format!("take answered {other:?}"))),
                })
            })
            .collect()
    }

    /// Which of `gate`'s attempts `(sku, user, order)` the ledger has as
    /// won, if its epoch is still `epoch` (`None`: it is not, or it has none:
    /// what was taken under that epoch is not known any more); and the
    /// highest order number the ledger has of `gate`.
    pub(crate) async fn resolve(
        &self,
        epoch: &str,
        gate: &str,
        attempts: &[(&str, &str, &str)],
    ) -> Result<(Option<Vec<bool>>, u64), LedgerError> {
        let mut con = self.con().await?;
        let mut call = RESOLVE.prepare_invoke();
        call.key(self.key("meta")).arg(&self.prefix).arg(gate);
        for (sku, user, order) in attempts {
            call.arg(*sku).arg(*user).arg(*order);
        }
        let reply: Vec<String> = call
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.down(e))?;
        if reply.len() != attempts.len() + 2 {
            return Err(self.protocol(format!(
                "{} answers to {} attempts",
                reply.len().saturating_sub(2),
                attempts.len()
            )));
        }
        let highest = reply[1].parse().unwrap_or(0);
        if reply[0] != epoch {
            return Ok((None, highest));
        }
        Ok((Some(reply[2..].iter().map(|r| r == "1").collect()), highest))
    }

    /// Puts `gate`'s winners and fair-start entries back (idempotent per
    /// customer and item) and keeps each gate's highest order number above theirs;
    /// a winner that was missing is also put on the stream again, to be
    /// forwarded. Then marks `gate` as back (`members`). Reports winners
    /// the ledger has another order for, and items with more winners than
    /// stock.
    pub(crate) async fn reassert(
        &self,
        gate: &str,
        winners: &[crate::sale::Winner],
        entries: &[(String, String)],
    ) -> Result<Reasserted, LedgerError> {
        type Call<'a> = (&'a [crate::sale::Winner], &'a [(String, String)]);
        let mut calls: Vec<Call<'_>> = winners
            .chunks(500)
            .map(|w| (w, &[][..]))
            .chain(entries.chunks(2000).map(|e| (&[][..], e)))
            .collect();
        if calls.is_empty() {
            calls.push((&[], &[]));
        }
        let last = calls.len() - 1;
        let mut found = Reasserted::default();
        let mut alarms = std::collections::BTreeSet::new();
        for (i, (winners, entries)) in calls.into_iter().enumerate() {
            let mut con = self.con().await?;
            let mut call = REASSERT.prepare_invoke();
            // (Its one key routes the call to the sale's slot in a cluster;
            // the script reaches the others by the prefix, in that slot.)
            call.key(self.key("meta"))
                .arg(&self.prefix)
                .arg(if i == last { gate } else { "" })
                .arg(winners.len());
            for w in winners {
                call.arg(&w.sku)
                    .arg(&w.user)
                    .arg(&w.order)
                    .arg(&w.gate)
                    .arg(&w.time)
                    .arg(&w.sale);
            }
            for (sku, user) in entries {
                call.arg(sku).arg(user);
            }
            let reply: Vec<String> = call
                .invoke_async(&mut con)
                .await
                .map_err(|e| self.down(e))?;
            let mut it = reply.into_iter();
            found.missing += it.next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
            for line in it {
                alarms.insert(self.alarm(&line)?);
            }
        }
        found.alarms = alarms.into_iter().collect();
        Ok(found)
    }

    fn alarm(&self, line: &str) -> Result<Alarm, LedgerError> {
        let f: Vec<&str> = line.split('\t').collect();
        let n = |s: &str| s.parse::<u64>().unwrap_or(0);
        match f.as_slice() {
            ["conflict", sku, user, ledger, journal] => Ok(Alarm::Conflict {
                sku: sku.to_string(),
                user: user.to_string(),
                ledger: ledger.to_string(),
                journal: journal.to_string(),
            }),
            ["oversold", sku, winners, stock] => Ok(Alarm::Oversold {
                sku: sku.to_string(),
                winners: n(winners),
                stock: n(stock),
            }),
            _ => Err(self.protocol(format!("reassert answered {line:?}"))),
        }
    }

    /// The epoch, units taken per item, and the live gates; with `gate`, also
    /// this gate's heartbeat. One round trip.
    pub(crate) async fn status(
        &self,
        skus: &[String],
        gate: Option<&str>,
    ) -> Result<Status, LedgerError> {
        let mut con = self.con().await?;
        let mut call = STATUS.prepare_invoke();
        call.key(self.key("meta"))
            .arg(&self.prefix)
            .arg(gate.unwrap_or(""));
        for sku in skus {
            call.arg(sku);
        }
        let reply: Vec<String> = call
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.down(e))?;
        // epoch, now_ms, n, (member, marker) * n, then (taken, total) per
        // sku, then (gate, beat) pairs.
        let mut it = reply.into_iter();
        let epoch = it.next().filter(|e| !e.is_empty());
        let now: u64 = it.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let n: usize = it.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let mut members = BTreeMap::new();
        for _ in 0..n {
            let (Some(g), Some(marker)) = (it.next(), it.next()) else {
                return Err(self.protocol("status answered half a member"));
            };
            let member = match marker.parse::<u64>() {
                Ok(at) => Member::Back {
                    ago_ms: now.saturating_sub(at),
                },
                Err(_) => Member::Excused,
            };
            members.insert(g, member);
        }
        let mut items = BTreeMap::new();
        for sku in skus {
            let taken = it.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            let total = it.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            items.insert(sku.clone(), (taken, total));
        }
        let mut gates = BTreeMap::new();
        while let (Some(g), Some(beat)) = (it.next(), it.next()) {
            let beat: u64 = beat.parse().unwrap_or(0);
            gates.insert(g, now.saturating_sub(beat));
        }
        Ok(Status {
            epoch,
            items,
            gates,
            members,
        })
    }

    /// Enters `user` into `sku`'s draw; `false` once its entries are closed
    /// or, by the ledger's clock (`TIME`), the window ending at `until_ms`
    /// is over: one clock for the fleet.
    pub(crate) async fn enter(
        &self,
        sku: &str,
        user: &str,
        until_ms: i64,
    ) -> Result<bool, LedgerError> {
        let mut con = self.con().await?;
        let n: u8 = ENTER
            .prepare_invoke()
            .key(self.key(&format!("entries:{sku}")))
            .key(self.key(&format!("draw:{sku}")))
            .arg(user)
            .arg(until_ms)
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.down(e))?;
        Ok(n == 1)
    }

    /// Whether `sku`'s draw is done (every drawn entrant taken).
    pub(crate) async fn drawn(&self, sku: &str) -> Result<bool, LedgerError> {
        let mut con = self.con().await?;
        con.hexists(self.key(&format!("draw:{sku}")), "done")
            .await
            .map_err(|e| self.down(e))
    }

    /// Takes, or renews, the lease on `sku`'s draw for `gate`
    /// ([`DRAW_LEASE`]); `false` if another gate holds it.
    pub(crate) async fn lease_draw(&self, sku: &str, gate: &str) -> Result<bool, LedgerError> {
        let mut con = self.con().await?;
        let n: u8 = LEASE
            .prepare_invoke()
            .key(self.key(&format!("drawlease:{sku}")))
            .arg(gate)
            .arg(DRAW_LEASE.as_millis() as u64)
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.down(e))?;
        Ok(n == 1)
    }

    /// Closes `sku`'s entries: the units its draw is for, and its entrants;
    /// `None` while the window ending at `until_ms` is not over by the
    /// ledger's clock.
    pub(crate) async fn close_entries(
        &self,
        sku: &str,
        until_ms: i64,
    ) -> Result<Option<(u32, Vec<String>)>, LedgerError> {
        let mut con = self.con().await?;
        let reply: Vec<String> = CLOSE
            .prepare_invoke()
            .key(self.key(&format!("entries:{sku}")))
            .key(self.key(&format!("draw:{sku}")))
            .key(self.key("meta"))
            .key(self.key(&format!("w:{sku}")))
            .arg(sku)
            .arg(until_ms)
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.down(e))?;
        let mut it = reply.into_iter();
        let units: i64 = it
            .next()
            .and_then(|u| u.parse().ok())
            .ok_or_else(|| self.protocol("close answered no units"))?;
        if units < 0 {
            return Ok(None);
        }
        Ok(Some((units as u32, it.collect())))
    }

    /// Marks `sku`'s draw done: the gates answer their entrants.
    pub(crate) async fn draw_done(&self, sku: &str) -> Result<(), LedgerError> {
        let mut con = self.con().await?;
        con.hset::<_, _, _, ()>(self.key(&format!("draw:{sku}")), "done", "1")
            .await
            .map_err(|e| self.down(e))
    }

    /// Every winner of `sku`.
    pub(crate) async fn winners(&self, sku: &str) -> Result<BTreeMap<String, String>, LedgerError> {
        let mut con = self.con().await?;
        con.hgetall(self.key(&format!("w:{sku}")))
            .await
            .map_err(|e| self.down(e))
    }

    /// Loads the stock (sku → units) and a new epoch. Refuses when a gate
    /// of `roster` has not put its winners back since the ledger was lost
    /// (after the start), and when the sale has winners unless `force`
    /// (winners are never deleted). Returns the epoch.
    pub(crate) async fn load(
        &self,
        stock: &[(String, u32)],
        force: bool,
        roster: Roster<'_>,
    ) -> Result<String, LedgerError> {
        // One step (`load.lua`): no winner can be taken, nor a marker lost,
        // between the looks and the write.
        let epoch = crate::util::random::hex(8);
        let mut call = LOAD.prepare_invoke();
        call.key(self.key("meta"))
            .arg(&self.prefix)
            .arg(if force { "1" } else { "0" })
            .arg(&epoch)
            .arg(if roster.started { "1" } else { "0" })
            .arg(roster.fleet.len());
        for g in roster.fleet {
            call.arg(g);
        }
        call.arg(roster.missing.len());
        for g in roster.missing {
            call.arg(g);
        }
        for (sku, n) in stock {
            call.arg(sku).arg(n);
        }
        let mut con = self.con().await?;
        let reply: Vec<String> = call
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.down(e))?;
        match reply.split_first() {
            Some((kind, _)) if kind == "loaded" => Ok(epoch),
            Some((kind, rest)) if kind == "has_winners" => Err(LedgerError::HasWinners {
                sale: self.sale.clone(),
                winners: rest.first().and_then(|n| n.parse().ok()).unwrap_or(0),
                at: self.at.clone(),
            }),
            Some((kind, rest)) if kind == "not_back" => Err(LedgerError::NotBack {
                sale: self.sale.clone(),
                gates: rest.to_vec(),
                at: self.at.clone(),
            }),
            _ => Err(self.protocol(format!("load answered {reply:?}"))),
        }
    }

    /// Redis's persistence and eviction settings.
    pub(crate) async fn persistence(&self) -> Result<Persistence, LedgerError> {
        Ok(Persistence {
            appendonly: self.config_get("appendonly").await?,
            appendfsync: self.config_get("appendfsync").await?,
            maxmemory_policy: self.config_get("maxmemory-policy").await?,
        })
    }

    async fn config_get(&self, name: &str) -> Result<String, LedgerError> {
        let mut con = self.con().await?;
        let pair: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query_async(&mut con)
            .await
            .map_err(|e| self.down(e))?;
        Ok(pair.get(1).cloned().unwrap_or_default())
    }

    /// Whether the replicas required confirmed this connection's writes so
    /// far (`WAIT`), when the reply holds a winner; a repeat is waited on too
    /// (its first answer may not have been confirmed).
    async fn replicated(&self, con: &mut Con, reply: &[String]) -> Result<bool, LedgerError> {
        let winners = reply.chunks(3).any(|r| r[0] == "won" || r[0] == "repeat");
        if self.replicas == 0 || !winners {
            return Ok(true);
        }
        let acked: u32 = if self.waitaof {
            // [fsynced locally, replicas that fsynced]; 0 local: the
            // primary's own `appendfsync` covers it.
            let both: (u32, u32) = redis::cmd("WAITAOF")
                .arg(0)
                .arg(self.replicas)
                .arg(REPLICA_WAIT_MS)
                .query_async(con)
                .await
                .map_err(|e| self.down(e))?;
            both.1
        } else {
            redis::cmd("WAIT")
                .arg(self.replicas)
                .arg(REPLICA_WAIT_MS)
                .query_async(con)
                .await
                .map_err(|e| self.down(e))?
        };
        if acked < self.replicas {
            *crate::util::sync::lock(&self.held_until) =
                Some(std::time::Instant::now() + Duration::from_millis(REPLICA_WAIT_MS / 2));
            tracing::warn!(
                at = %self.at,
                acked,
                required = self.replicas,
                hint = "winners are answered 503 until a replica confirms them",
                "ledger_not_replicated"
            );
        }
        Ok(acked >= self.replicas)
    }

    /// Every winner of these items, by item then order.
    pub(crate) async fn export(&self, skus: &[String]) -> Result<Vec<Entry>, LedgerError> {
        let mut out = Vec::new();
        for sku in skus {
            let mut winners: Vec<(String, String)> = self.winners(sku).await?.into_iter().collect();
            winners.sort_by(|a, b| a.1.cmp(&b.1));
            out.extend(winners.into_iter().map(|(user, order)| Entry {
                sale: self.sale.clone(),
                sku: sku.clone(),
                user,
                order,
            }));
        }
        Ok(out)
    }

    /// Deletes every key of the sale (for rehearsals); returns how many.
    pub(crate) async fn clear(&self) -> Result<u64, LedgerError> {
        let mut con = self.con().await?;
        let pattern = format!(
            "{}*",
            self.prefix
                .replace('[', "\\[")
                .replace('?', "\\?")
                .replace('*', "\\*")
        );
        let mut keys: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut con)
                .await
                .map_err(|e| self.down(e))?;
            keys.extend(batch);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        if keys.is_empty() {
            return Ok(0);
        }
        con.del(&keys).await.map_err(|e| self.down(e))
    }

    /// Makes sure the forwarders' consumer group exists on the winners' stream.
    pub(crate) async fn ensure_group(&self) -> Result<(), LedgerError> {
        let mut con = self.con().await?;
        let made: redis::RedisResult<()> = con
            .xgroup_create_mkstream(self.key("orders"), GROUP, "0")
            .await;
        match made {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(self.down(e)),
        }
    }

    /// Up to `count` entries of winners for `consumer` to forward: `after`
    /// an entry id, its own unacknowledged ones (after a restart, `"0"`
    /// first), or with `after` `None` new ones, waiting up to `block` for
    /// one. What a gate that died left is taken over apart:
    /// [`Ledger::stranded`], [`Ledger::claim`].
    pub(crate) async fn read_winners(
        &self,
        consumer: &str,
        after: Option<&str>,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<(String, Vec<crate::sale::Winner>)>, LedgerError> {
        use redis::streams::{StreamReadOptions, StreamReadReply};
        let mut opts = StreamReadOptions::default()
            .group(GROUP, consumer)
            .count(count.max(1));
        if let (None, Some(b)) = (after, block) {
            opts = opts.block(b.as_millis() as usize);
        }
        let mut con = self.con().await?;
        let reply: Option<StreamReadReply> = con
            .xread_options(&[self.key("orders")], &[after.unwrap_or(">")], &opts)
            .await
            .map_err(|e| self.down(e))?;
        Ok(reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .map(|e| {
                let winners = self.entry_winners(&e);
                (e.id, winners)
            })
            .collect())
    }

    /// Entries of the winners' stream left by a dead forwarder: pending with
    /// another consumer than `consumer` whose gate's heartbeat is older than
    /// `stale` (or gone), idle at least `idle`; with how often each was
    /// handed out. A live gate that is merely slow keeps its entries.
    pub(crate) async fn stranded(
        &self,
        consumer: &str,
        stale: Duration,
        idle: Duration,
    ) -> Result<Vec<(String, usize)>, LedgerError> {
        let beats = self.status(&[], None).await?.gates;
        let mut con = self.con().await?;
        let pending: redis::streams::StreamPendingCountReply = con
            .xpending_count(self.key("orders"), GROUP, "-", "+", 1000)
            .await
            .map_err(|e| self.down(e))?;
        let dead = |c: &str| {
            beats
                .get(c)
                .is_none_or(|ago| *ago >= stale.as_millis() as u64)
        };
        Ok(pending
            .ids
            .into_iter()
            .filter(|p| {
                p.consumer != consumer
                    && p.last_delivered_ms as u128 >= idle.as_millis()
                    && dead(&p.consumer)
            })
            .map(|p| (p.id, p.times_delivered))
            .collect())
    }

    /// Takes the entries `ids` over for `consumer` (those still idle at
    /// least `idle`: another gate may have been first), with their winners.
    pub(crate) async fn claim(
        &self,
        consumer: &str,
        ids: &[String],
        idle: Duration,
    ) -> Result<Vec<(String, Vec<crate::sale::Winner>)>, LedgerError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut con = self.con().await?;
        let claimed: redis::streams::StreamClaimReply = con
            .xclaim(
                self.key("orders"),
                GROUP,
                consumer,
                idle.as_millis() as u64,
                ids,
            )
            .await
            .map_err(|e| self.down(e))?;
        Ok(claimed
            .ids
            .into_iter()
            .map(|e| {
                let winners = self.entry_winners(&e);
                (e.id, winners)
            })
            .collect())
    }

    /// The winners in one stream entry: `n`, then `o<i>`, `s<i>`, `u<i>` (and
    /// `t<i>` for a re-asserted winner). The gate is the order id's prefix;
    /// the time, the entry id's milliseconds unless the entry says.
    fn entry_winners(&self, e: &redis::streams::StreamId) -> Vec<crate::sale::Winner> {
        let field = |k: String| e.get::<String>(&k);
        let n: usize = field("n".into()).and_then(|n| n.parse().ok()).unwrap_or(0);
        let ms =
            e.id.split('-')
                .next()
                .and_then(|m| m.parse::<i64>().ok())
                .unwrap_or(0);
        let stamp = chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        (1..=n)
            .filter_map(|i| {
                let order = field(format!("o{i}"))?;
                let gate = crate::sale::parse_order_id(&order)
                    .map_or("", |(g, _)| g)
                    .to_string();
                Some(crate::sale::Winner {
                    sale: self.sale.clone(),
                    sku: field(format!("s{i}"))?,
                    user: field(format!("u{i}"))?,
                    time: field(format!("t{i}")).unwrap_or_else(|| stamp.clone()),
                    gate,
                    order,
                })
            })
            .collect()
    }

    /// The order system has a winner: it is not forwarded again.
    pub(crate) async fn forwarded(&self, id: &str) -> Result<(), LedgerError> {
        let mut con = self.con().await?;
        let _: (u64, u64) = redis::pipe()
            .xack(self.key("orders"), GROUP, &[id])
            .incr(self.key("forwarded"), 1)
            .query_async(&mut con)
            .await
            .map_err(|e| self.down(e))?;
        Ok(())
    }

    /// How many stream entries the fleet has acknowledged so far: it grows
    /// while the order system takes winners at any gate.
    pub(crate) async fn forwarded_count(&self) -> Result<u64, LedgerError> {
        let mut con = self.con().await?;
        let n: Option<u64> = con
            .get(self.key("forwarded"))
            .await
            .map_err(|e| self.down(e))?;
        Ok(n.unwrap_or(0))
    }

    /// Winners handed to a forwarder and not yet accepted by the order system.
    pub(crate) async fn unforwarded(&self) -> Result<u64, LedgerError> {
        let mut con = self.con().await?;
        let reply: redis::streams::StreamPendingReply = con
            .xpending(self.key("orders"), GROUP)
            .await
            .map_err(|e| self.down(e))?;
        Ok(reply.count() as u64)
    }
}

/// The consumer group of the gates that forward winners.
const GROUP: &str = "forwarders";

#[cfg(test)]
mod tests {
    #[test]
    fn waitaof_is_used_on_redis_7_2_and_later_with_an_aof() {
        use super::waitaof_supported as ok;
        let info = |v: &str, aof: &str| {
            format!("# Server\r\nredis_version:{v}\r\nrun_id:x\r\n# Persistence\r\naof_enabled:{aof}\r\n")
        };
        assert!(!ok(&info("7.0.15", "1")), "Debian's 7.0 has no WAITAOF");
        assert!(
            ok(&info("7.2.4", "1")),
            "7.2 (and Valkey, which reports 7.2.4)"
        );
        assert!(ok(&info("8.0.1", "1")));
        assert!(!ok(&info("7.4.0", "0")), "no AOF (ElastiCache): WAIT");
        assert!(!ok("garbage"));
    }

    #[test]
    fn the_ledger_scripts_read_order_ids_as_the_gates_make_them() {
        // Gates number their orders (`sale::order_id`: `<gate>-<number:06>`);
        // the scripts only read the number back, after the last '-'.
        let take = include_str!("scripts/take.lua");
        assert!(
            !take.contains("string.format") && take.contains("string.match(order[j], '%-(%d+)$')"),
            "take.lua makes order ids again, or reads them another way: change sale::order_id with it"
        );
        let reassert = include_str!("scripts/reassert.lua");
        assert!(
            reassert.contains("string.match(order, '^(.*)%-(%d+)$')"),
            "reassert.lua no longer reads the gate and the number after the last '-'"
        );
        assert_eq!(
            crate::sale::parse_order_id(&crate::sale::order_id("eu-1", 7)),
            Some(("eu-1", 7))
        );
    }
}

//! A gate assembled from the configuration, in named steps: claim the
//! journal directory (and replay it), choose the stock, open the draw, open
//! the journal with forwarding behind it, and start the background tasks.
//! Nothing listens yet: `server::serve` does.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::answer::Answers;
use super::draw::{self, StartDraw};
use super::forward::Forwarding;
use super::record::{Recorder, Replayed};
use super::stock::{LocalStock, SharedStock, Stock};
use super::{identity, limit, order, Error, Gate, Options};
use crate::config::Config;
use crate::journal::{self, Held};
use crate::ledger::Ledger;
use crate::sale::{self, Window};
use crate::util::shutdown::Shutdown;

/// A heartbeat younger than this means the gate id is in use.
const LIVE_GATE: std::time::Duration = std::time::Duration::from_secs(1);

/// The journal directory, taken: who this gate is and what it recorded so far.
struct Claimed {
    gate_id: String,
    held: Held,
    replayed: Replayed,
}

impl Gate {
    /// Takes the journal directory, replays it, connects the ledger (if the
    /// fleet shares one) and starts the background tasks; nothing listens
    /// yet. `stock` is every item's SKU and units in stock.
    pub(crate) async fn start(
        config: &Config,
        stock: &[(String, u32)],
        opts: Options,
    ) -> Result<Arc<Gate>, Error> {
        let mut claimed = claim_directory(config, &opts)?;
        let shutdown = Shutdown::default();
        let chosen = Arc::new(choose_stock(config, stock, &opts, &mut claimed).await?);
        claimed.replayed.write_settled(&opts.journal_dir).await?;
        let start_draw = open_draw(config, stock, &opts, &claimed.gate_id, &chosen)?;
        let forwarding =
            Forwarding::new(config, &opts, &claimed.gate_id, &claimed.replayed.winners)?;
        let recorder = Arc::new(Recorder::open(
            &opts.journal_dir,
            &config.name,
            &claimed.gate_id,
            claimed.replayed.highest,
            chosen.clone(),
            opts.clock.clone(),
            forwarding.as_ref().and_then(Forwarding::journal_feed),
        )?);
        let gate = Gate {
            sale: config.name.clone(),
            window: Window {
                start_ms: config.start.timestamp_millis(),
                end_ms: config.end.timestamp_millis(),
                tolerance_ms: config.gate.tolerance_ms,
            },
            clock: opts.clock.clone(),
            token: order::TokenCheck::new(
                opts.key
                    .order_key(&config.name, config.start.timestamp_millis()),
            ),
            identify: identity::Identify::new(config.gate.identity.clone(), opts.cookie_key)?,
            proxies: limit::Proxies::new(config.gate.trusted_proxies.clone()),
            untrusted_identity: AtomicBool::new(false),
            limiter: config.gate.rate_limit.map(|r| {
                limit::RateLimiter::new(
                    r,
                    config.gate.client_ip_header.clone(),
                    config.gate.client_ip_hops,
                    config.gate.ipv6_prefix,
                )
            }),
            body_timeout: opts.body_timeout,
            stock: chosen,
            draw: start_draw,
            recorder,
            forwarding,
            answers: Answers::new(config, opts.origin.as_deref())?,
            requests: Default::default(),
            order_latency: Default::default(),
            connections: Default::default(),
            draining: AtomicBool::new(false),
            shutdown,
            held: Mutex::new(Some(claimed.held)),
        };
        gate.start_tasks(opts.resend_dead_letters);
        tracing::info!(
            sale = gate.sale,
            gate = gate.id(),
            replayed = claimed.replayed.winners.len(),
            items = gate
                .counts()
                .iter()
                .map(|c| format!("{} {}/{}", c.sku, c.admitted, c.quota))
                .collect::<Vec<_>>()
                .join(", "),
            "gate_start"
        );
        Ok(Arc::new(gate))
    }

    /// Starts every background task under the gate's one shutdown signal:
    /// the stock's (a fleet's ledger poll), forwarding, the draw.
    fn start_tasks(&self, resend_dead_letters: bool) {
        self.stock.run(&self.shutdown);
        if let Some(f) = &self.forwarding {
            f.run(&self.shutdown, resend_dead_letters);
        }
        if let Some(d) = &self.draw {
            self.shutdown.spawn(draw::run(
                d.clone(),
                self.stock.clone(),
                self.recorder.clone(),
            ));
        }
    }
}

/// Creates and takes the journal directory, names the gate, and reads back
/// what it recorded (refusing another sale's journal).
fn claim_directory(config: &Config, opts: &Options) -> Result<Claimed, Error> {
    let dir = &opts.journal_dir;
    crate::util::fs::create_dir_durably(dir).map_err(|error| Error::Io {
        path: dir.clone(),
        error,
    })?;
    let gate_id = match opts.gate_id.clone() {
        Some(id) => id,
        None => gate_id_in(dir)?,
    };
    if !sale::is_gate_id(&gate_id) {
        return Err(Error::BadGateId(gate_id));
    }
    let held = journal::hold(dir, &gate_id)?;
    let replayed = Replayed::from(journal::replay(dir)?);
    let mut lines = replayed
        .winners
        .iter()
        .chain(replayed.unresolved.iter().map(|(w, _)| w));
    if let Some(other) = lines.find(|w| w.sale != config.name) {
        return Err(Error::ForeignJournal {
            path: dir.clone(),
            found: other.sale.clone(),
            expected: config.name.clone(),
        });
    }
    Ok(Claimed {
        gate_id,
        held,
        replayed,
    })
}

/// The fleet's shared stock when `[gate] ledger` is set, else this gate's
/// own, with the journal's winners put back.
async fn choose_stock(
    config: &Config,
    stock: &[(String, u32)],
    opts: &Options,
    claimed: &mut Claimed,
) -> Result<Stock, Error> {
    if let Some(url) = &config.gate.ledger {
        let shared = shared_stock(config, url, stock, claimed);
        return Ok(Stock::Shared(Arc::new(shared.await?)));
    }
    if !claimed.replayed.unresolved.is_empty() {
        // A fleet's journal, run alone: no ledger to ask.
        tracing::warn!(
            attempts = claimed.replayed.unresolved.len(),
            "attempts_kept: the journal holds a fleet's unresolved attempts and this gate has no ledger to ask; they count as winners"
        );
        claimed.replayed.keep_attempts();
    }
    no_live_twin(config, &claimed.gate_id, opts.gate_id.is_some()).await?;
    let local = LocalStock::new(quotas(config, stock, opts.quota)?);
    for w in &claimed.replayed.winners {
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
    Ok(Stock::Local(local))
}

/// A gate alone has no ledger to tell it another gate has its id: it asks
/// the gates of `[gate] admin` (all at once, a second at most; one that does
/// not answer is not live) and refuses an id a live gate of this sale has.
/// Unlisted, an id `given` by hand is the operator's promise: said at start.
async fn no_live_twin(config: &Config, gate_id: &str, given: bool) -> Result<(), Error> {
    let admin = &config.gate.admin;
    if admin.is_empty() {
        if !given {
            return Ok(());
        }
        tracing::info!(
            gate = gate_id,
            hint = "list every gate's admin listener in `[gate] admin` and each start checks its id against the live ones",
            "gate_id_unchecked: no other gate is listed; a gate id given twice would give two winners one order id"
        );
        return Ok(());
    }
    let client = crate::util::http::Client::new();
    let asked = admin.iter().map(|base| {
        let client = &client;
        async move {
            let r = super::watch::who(client, base, Duration::from_secs(1)).await;
            (base, r)
        }
    });
    for (base, r) in futures_util::future::join_all(asked).await {
        match r {
            Ok((sale, gate)) if sale == config.name && gate == gate_id => {
                return Err(Error::GateIdInUse {
                    gate: gate_id.to_string(),
                    admin: base.clone(),
                });
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(admin = base, error = %e, "gate_id_check: not answering"),
        }
    }
    Ok(())
}

/// The fleet's stock on the ledger at `url`: refuses a gate id another live
/// gate uses, and warns when Redis could lose acknowledged winners.
async fn shared_stock(
    config: &Config,
    url: &str,
    stock: &[(String, u32)],
    claimed: &mut Claimed,
) -> Result<SharedStock, Error> {
    let gate_id = &*claimed.gate_id.clone();
    let fleet = &config.gate.fleet;
    if !fleet.is_empty() && !fleet.iter().any(|g| g == gate_id) {
        return Err(Error::NotInFleet {
            gate: gate_id.to_string(),
            fleet: fleet.clone(),
        });
    }
    if fleet.is_empty() {
        tracing::warn!(
            hint = "list the gates in `[gate] fleet` of site.toml, each started with its --gate-id",
            "fleet_unlisted: after a lost ledger, nobody can tell whether a gate that is down holds winners; the gates resume two polls after putting theirs back"
        );
    }
    let ledger = Ledger::new(url, &config.gate.ledger_access, &config.name)?;
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
        // Turned away (credentials, a certificate): waiting will not mend it.
        Err(e @ crate::ledger::LedgerError::Refused { .. }) => return Err(e.into()),
        Err(e) => tracing::error!(error = %e, "ledger_down"),
    }
    let replicas = match config.gate.ledger_replicas {
        Some(n) => n,
        None => match ledger.connected_replicas().await {
            Ok(n) => u32::from(n > 0),
            Err(_) => {
                tracing::warn!(
                    hint = "set `[gate] ledger_replicas` in site.toml",
                    "ledger_replicas_unknown: the ledger did not answer at start; winners are not waited on replicas"
                );
                0
            }
        },
    };
    // Their disks too, where the server can say (WAITAOF).
    let waitaof = replicas > 0 && ledger.probe_waitaof().await.unwrap_or(false);
    tracing::info!(
        replicas,
        probed = config.gate.ledger_replicas.is_none(),
        wait = if waitaof { "WAITAOF" } else { "WAIT" },
        meaning = "a winner is answered once this many replicas of the ledger have it",
        "ledger_replicas"
    );
    let ledger = ledger.with_replicas(replicas).with_waitaof(waitaof);
    claimed.replayed.settle_attempts(&ledger, gate_id).await?;
    Ok(SharedStock::new(
        ledger,
        &config.name,
        gate_id,
        stock,
        claimed.replayed.winners.clone(),
        fleet.clone(),
    ))
}

/// A fair start's draw when `[gate] fair_window` is set: its entries so far
/// read back from the journal directory.
fn open_draw(
    config: &Config,
    stock: &[(String, u32)],
    opts: &Options,
    gate_id: &str,
    chosen: &Stock,
) -> Result<Option<Arc<StartDraw>>, Error> {
    let Some(window) = config.gate.fair_window_ms else {
        return Ok(None);
    };
    let fleet = match &config.gate.ledger {
        Some(url) => Some(Ledger::new(url, &config.gate.ledger_access, &config.name)?),
        None => None,
    };
    let (d, entries) = StartDraw::open(draw::Setup {
        dir: &opts.journal_dir,
        key: &opts.key,
        sale: &config.name,
        round_ms: config.start.timestamp_millis(),
        until_ms: config.start.timestamp_millis() + window,
        gate_id,
        tolerance_ms: config.gate.tolerance_ms,
        skus: stock.iter().map(|(s, _)| s.clone()).collect(),
        fleet,
        on_entry: match chosen {
            Stock::Shared(shared) => {
                let shared = shared.clone();
                Some(Box::new(move |sku: &str, user: &str| {
                    shared.entered(sku, user)
                }))
            }
            Stock::Local(_) => None,
        },
        clock: opts.clock.clone(),
    })?;
    tracing::info!(
        commitment = d.commitment(),
        receipt_key = d.receipt_key(),
        until = %chrono::DateTime::from_timestamp_millis(d.until_ms)
            .unwrap_or_default()
            .with_timezone(config.start.offset()),
        replayed = entries,
        hint = "orders until then are entries of a draw; the commitment is the SHA-256 of its secret, revealed after the draw; receipts are signed with receipt_key",
        "fair_start"
    );
    Ok(Some(Arc::new(d)))
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
    let path: PathBuf = dir.join("gate-id");
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

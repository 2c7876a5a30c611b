//! `serve --opens-in`: the whole sale on one machine. The sale window is moved
//! to start shortly, the real gate runs in-process on the same port, and the
//! toggle switches pending → open → ended by the same policy as `open` and
//! `close` (`sale::switch`), written into memory instead of a bucket. The sale
//! closes by itself at `end`, or as soon as every unit is sold.
//!
//! Identity: this server plays the trusted proxy of production. It gives each
//! browser a preview cookie and passes it to the gate as `X-User-Id`; a request
//! that already carries `X-User-Id` (a load generator) keeps it.

use std::future::pending;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, FixedOffset};
use hyper::HeaderMap;

use crate::config::{Config, Identity};
use crate::gate::{self, Gate};
use crate::sale::switch::{self, Action, Outcome, Reason};
use crate::sale::GateKey;
use crate::site::content::Item;
use crate::store::{MemoryStore, NoCdn};

/// The cookie that identifies a browser in the preview.
pub(crate) const USER_COOKIE: &str = "flashsale_user";

/// How to run the sale in the preview.
#[derive(Debug, Clone)]
pub(crate) struct SaleOptions {
    /// The moment the sale opens (the configured window is moved there).
    pub(crate) start: DateTime<FixedOffset>,
    /// Keep the journal here (default: a temporary directory, removed at exit).
    pub(crate) journal: Option<PathBuf>,
    pub(crate) key: GateKey,
    /// Units the in-process gate admits per item (default: all the stock).
    pub(crate) quota: Option<u32>,
    /// Run the in-process gate on this shared ledger (`redis://...`).
    pub(crate) ledger: Option<String>,
}

impl SaleOptions {
    /// Moves the window to `start` (same length), points orders at this
    /// server, and makes the one in-process gate hold all the stock.
    pub(crate) fn apply(&self, config: &mut Config, origin: &str) {
        let length = config.end - config.start;
        config.start = self.start;
        config.end = self.start + length;
        config.gate.url = origin.trim_end_matches('/').to_string();
        config.gate.identity = Identity::Header("X-User-Id".into());
        // The preview is its own proxy: it sets X-User-Id from its cookie
        // and keeps a load generator's (what `--public` warns about).
        config.gate.trusted_proxies = ["0.0.0.0/0", "::/0"]
            .iter()
            .map(|n| n.parse().expect("a network"))
            .collect();
        config.gate.gates = 1;
        config.gate.quota = None;
        config.gate.forward = None;
        config.gate.confirm_url = None;
        config.gate.ended_url = format!("{}ended.html", config.base_path);
        config.gate.rate_limit = None;
        // Never the production ledger by accident: only one given for the preview.
        config.gate.ledger = self.ledger.clone();
    }
}

/// A running preview sale: its gate and the "bucket" its toggle lives in.
pub(crate) struct PreviewSale {
    pub(crate) gate: Arc<Gate>,
    pub(crate) store: MemoryStore,
    key: GateKey,
    journal: PathBuf,
    temporary: bool,
}

impl PreviewSale {
    pub(crate) async fn start(
        config: &Config,
        items: &[Item],
        opts: &SaleOptions,
    ) -> Result<PreviewSale, gate::Error> {
        let stock: Vec<(String, u32)> = items.iter().map(|i| (i.sku.clone(), i.stock)).collect();
        // The preview is one gate, whatever fleet the sale lists.
        let mut config = config.clone();
        config.gate.fleet.clear();
        let config = &config;
        if let Some(url) = &config.gate.ledger {
            // The preview's sale starts now: its stock goes into the ledger.
            let roster = crate::ledger::Roster {
                fleet: &[],
                missing: &[],
                started: false,
            };
            crate::ledger::Ledger::new(url, &config.gate.ledger_access, &config.name)?
                .load(&stock, false, roster)
                .await?;
        }
        let (journal, temporary) = match &opts.journal {
            Some(j) => (j.clone(), false),
            None => (
                std::env::temp_dir()
                    .join(format!("flashsale-preview-{}", crate::util::random::hex(4))),
                true,
            ),
        };
        let gate = Gate::start(
            config,
            &stock,
            gate::Options {
                quota: opts.quota,
                journal_dir: journal.clone(),
                forward: None,
                gate_id: Some("preview".into()),
                key: opts.key.clone(),
                cookie_key: None,
                forward_keys: None,
                body_timeout: std::time::Duration::from_secs(10),
                resend_dead_letters: false,
                // The preview's pages are served from here, not from base_url.
                origin: Some(config.gate.url.clone()),
                clock: crate::util::clock::Clock::system(),
            },
        )
        .await?;
        Ok(PreviewSale {
            gate,
            store: MemoryStore::default(),
            key: opts.key.clone(),
            journal,
            temporary,
        })
    }

    pub(crate) fn journal(&self) -> &PathBuf {
        &self.journal
    }

    /// Whether the journal is removed when the preview ends.
    pub(crate) fn temporary(&self) -> bool {
        self.temporary
    }

    /// Opens at the start, closes at the end or when every unit is sold.
    /// `said` hears each switch: (state, why).
    pub(crate) async fn run(self: Arc<Self>, config: Config, said: impl Fn(&'static str, String)) {
        let open = Action::Open {
            key: self.key.clone(),
            rotate: false,
        };
        let at = |t: DateTime<FixedOffset>| switch::Options {
            at: SystemTime::from(t),
            force: false,
            wait: None,
        };
        let no_cdn: Option<&NoCdn> = None;
        let opened = switch::run(
            &config,
            &self.store,
            no_cdn,
            &open,
            &at(config.start),
            pending(),
            |_| {},
        )
        .await;
        if let Ok(Outcome::Switched(_)) = opened {
            said("open", "the sale started".into());
        }
        let sold_out = self.gate.clone().sold_out();
        let closed = switch::run(
            &config,
            &self.store,
            no_cdn,
            &Action::Close,
            &at(config.end),
            sold_out,
            |_| {},
        )
        .await;
        if let Ok(Outcome::Switched(s)) = closed {
            let why = match s.reason {
                Reason::Scheduled => "the sale's end".to_string(),
                Reason::Early(why) => why,
            };
            said("ended", why);
        }
    }
}

/// Removes a temporary journal when dropped. `serve::run` holds it, so it
/// goes when serving stops (Ctrl-C, SIGTERM), although the gate, the file
/// watcher and open connections may still hold the preview.
pub(crate) struct RemoveOnDrop(pub(crate) PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The preview user named by a request's cookie, if any.
pub(crate) fn cookie_user(headers: &HeaderMap) -> Option<&str> {
    crate::util::cookie::find(headers, USER_COOKIE).filter(|v| !v.is_empty() && v.len() <= 64)
}

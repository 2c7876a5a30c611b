//! `serve --opens-in`: the whole sale on one machine. The sale window is moved
//! to start shortly, the real gate runs in-process on the same port, and the
//! toggle switches pending → open → ended on time, written by the same code
//! as `open`/`close` (into memory instead of a bucket). The sale closes by
//! itself at `end`, or as soon as every unit is sold.
//!
//! Identity: this server plays the trusted proxy of production. It gives each
//! browser a preview cookie and passes it to the gate as `X-User-Id`; a request
//! that already carries `X-User-Id` (a load generator) keeps it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, FixedOffset};

use crate::config::{Config, Identity};
use crate::content::Item;
use crate::gate::{self, Gate};
use crate::publish::cdn::NoCdn;
use crate::publish::plan::Known;
use crate::publish::remote::{Listed, Remote, RemoteError};
use crate::sale::{self, GateKey, State, Toggle};
use crate::switch;

/// The cookie that identifies a browser in the preview.
pub const USER_COOKIE: &str = "flashsale_user";

/// How to run the sale in the preview.
#[derive(Debug, Clone)]
pub struct SaleOptions {
    /// The moment the sale opens (the configured window is moved there).
    pub start: DateTime<FixedOffset>,
    /// Keep the journal here (default: a temporary directory, removed at exit).
    pub journal: Option<PathBuf>,
    pub key: GateKey,
    /// Units the in-process gate admits per item (default: all the stock).
    pub quota: Option<u32>,
}

impl SaleOptions {
    /// Moves the window to `start` (same length), points orders at this
    /// server, and makes the one in-process gate hold all the stock.
    pub fn apply(&self, config: &mut Config, origin: &str) {
        let length = config.end - config.start;
        config.start = self.start;
        config.end = self.start + length;
        config.gate.url = origin.trim_end_matches('/').to_string();
        config.gate.identity = Identity::Header("X-User-Id".into());
        config.gate.gates = 1;
        config.gate.quota = None;
        config.gate.forward = None;
        config.gate.confirm_url = None;
        config.gate.ended_url = format!("{}ended.html", config.base_path);
        config.gate.rate_limit = None;
    }
}

/// The toggle as the preview serves it: the "bucket" `open`/`close` write to.
#[derive(Default)]
pub struct LiveToggle(RwLock<Option<Vec<u8>>>);

impl LiveToggle {
    pub fn bytes(&self) -> Option<Vec<u8>> {
        self.0.read().expect("toggle lock poisoned").clone()
    }
}

impl Remote for LiveToggle {
    fn describe(&self) -> String {
        "the preview".to_string()
    }

    async fn list(&self) -> Result<(Vec<Listed>, usize), RemoteError> {
        Ok((Vec::new(), 0))
    }

    async fn head(&self, _: &str) -> Result<Option<Known>, RemoteError> {
        Ok(None)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        Ok((key == crate::headers::TOGGLE_PATH)
            .then(|| self.bytes())
            .flatten())
    }

    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        _: &BTreeMap<String, String>,
        _: &BTreeMap<String, String>,
    ) -> Result<Option<String>, RemoteError> {
        if key == crate::headers::TOGGLE_PATH {
            *self.0.write().expect("toggle lock poisoned") = Some(body);
        }
        Ok(None)
    }

    async fn set_headers(
        &self,
        _: &str,
        _: &BTreeMap<String, String>,
        _: &BTreeMap<String, String>,
    ) -> Result<Option<String>, RemoteError> {
        Ok(None)
    }

    async fn delete(&self, _: &[String]) -> Result<usize, RemoteError> {
        Ok(0)
    }
}

/// A running preview sale.
pub struct Rehearsal {
    pub gate: Arc<Gate>,
    pub toggle: LiveToggle,
    key: GateKey,
    journal: PathBuf,
    temporary: bool,
}

impl Rehearsal {
    pub fn start(
        config: &Config,
        items: &[Item],
        opts: &SaleOptions,
    ) -> Result<Rehearsal, gate::Error> {
        let (journal, temporary) = match &opts.journal {
            Some(j) => (j.clone(), false),
            None => (
                std::env::temp_dir().join(format!("flashsale-preview-{}", sale::random_hex(4))),
                true,
            ),
        };
        let gate = Gate::start(
            config,
            items,
            gate::Options {
                quota: opts.quota,
                journal_dir: journal.clone(),
                forward: None,
                gate_id: Some("preview".into()),
                key: opts.key.clone(),
                cookie_key: None,
            },
        )?;
        Ok(Rehearsal {
            gate,
            toggle: LiveToggle::default(),
            key: opts.key.clone(),
            journal,
            temporary,
        })
    }

    pub fn journal(&self) -> &PathBuf {
        &self.journal
    }

    /// Opens at the start, closes at the end or when every unit is sold.
    /// `said` hears each switch: (state, why).
    pub async fn run(self: Arc<Self>, config: Config, said: impl Fn(&'static str, String)) {
        let start: SystemTime = config.start.into();
        let end: SystemTime = config.end.into();
        switch::wait_until(start, |_| {}).await;
        let token = self.key.mint(&config.name);
        let order = sale::order_url(&config.gate.url, &config.name, &token);
        let open = Toggle::switched(State::Open {
            order,
            end: config.end.timestamp_millis(),
        });
        let none: Option<&NoCdn> = None;
        if switch::switch(
            &self.toggle,
            none,
            &open,
            &config.headers,
            &config.base_path,
        )
        .await
        .is_ok()
        {
            said("open", "the sale started".into());
        }
        let why = loop {
            if SystemTime::now() >= end {
                break "the sale's end".to_string();
            }
            let items = self.gate.admitted();
            if !items.is_empty() && items.iter().all(|(_, admitted, quota)| admitted >= quota) {
                let sold: u32 = items.iter().map(|(_, a, _)| a).sum();
                break format!("sold out ({sold} units)");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let ended = Toggle::switched(State::Ended {
            ended: format!("{}ended.html", config.base_path),
        });
        if switch::switch(
            &self.toggle,
            none,
            &ended,
            &config.headers,
            &config.base_path,
        )
        .await
        .is_ok()
        {
            said("ended", why);
        }
    }
}

impl Drop for Rehearsal {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.journal);
        }
    }
}

/// The preview user named by a request's cookie, if any.
pub fn cookie_user(headers: &hyper::HeaderMap) -> Option<String> {
    headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == USER_COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 64)
}

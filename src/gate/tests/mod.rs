//! The whole gate in-process, request in, answer out (axum's `oneshot`
//! style), on a clock the tests set: `ladder` (every refusal, winners,
//! repeats and losers, the window), `fair` (a fair start's draw), `stop`
//! (one shutdown signal ends every task and frees the directory).

mod fair;
mod ladder;
mod stop;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};

use super::{Gate, Options};
use crate::config::Config;
use crate::sale::{order_url, GateKey};
use crate::util::clock::Clock;

/// A proxy on the gate's own machine: trusted by default (`[gate] trusted_proxies`).
const PEER: &str = "127.0.0.1:40000";

struct Fixture {
    gate: Arc<Gate>,
    key: GateKey,
    journal: tempfile::TempDir,
    /// The gate's clock: the sale's times are relative to where it started.
    clock: Clock,
}

/// How a test's gate differs from the default: sale `demo`, items A and B,
/// quota 2, the window `-60..3600` s from now.
struct Setup<'a> {
    start_in: i64,
    end_in: i64,
    /// More lines for `[gate]`.
    extra: &'a str,
    cookie_key: Option<&'a [u8]>,
    /// Over the configuration's 2 per item.
    quota: Option<u32>,
    forward: Option<String>,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            start_in: -60,
            end_in: 3600,
            extra: "",
            cookie_key: None,
            quota: None,
            forward: None,
        }
    }
}

/// A gate whose window is `start_in..end_in` seconds from now, with `extra`
/// in `[gate]`.
async fn gate(start_in: i64, end_in: i64, extra: &str) -> Fixture {
    Fixture::new(Setup {
        start_in,
        end_in,
        extra,
        ..Setup::default()
    })
    .await
}

impl Fixture {
    async fn new(setup: Setup<'_>) -> Fixture {
        Self::on(tempfile::tempdir().unwrap(), GateKey::generate(), setup).await
    }

    /// A gate on `journal` with `key`, its clock at now.
    async fn on(journal: tempfile::TempDir, key: GateKey, setup: Setup<'_>) -> Fixture {
        let clock = Clock::manual(chrono::Utc::now().timestamp_millis());
        let gate = start(&journal, &key, &clock, setup).await;
        Fixture {
            gate,
            key,
            journal,
            clock,
        }
    }

    /// Stops this gate (what SIGTERM does) and starts another on the same
    /// journal and key, with a new clock and `setup`.
    async fn restart(self, setup: Setup<'_>) -> Fixture {
        self.gate.stop().await;
        let Fixture {
            gate, key, journal, ..
        } = self;
        drop(gate);
        Self::on(journal, key, setup).await
    }

    /// Moves the gate's clock `ms` forward.
    fn advance(&self, ms: i64) {
        self.clock.set(self.clock.now_ms() + ms);
    }

    /// The order path of a freshly minted token.
    fn path(&self) -> String {
        let url = order_url(
            "https://gate.example.com",
            "demo",
            &self.key.mint("demo", self.gate.window.start_ms),
        );
        url.trim_start_matches("https://gate.example.com")
            .to_string()
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> (StatusCode, String) {
        let resp = self.gate.handle(req, PEER.parse().unwrap()).await;
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn order(&self, path: &str, user: Option<&str>, body: &str) -> (StatusCode, String) {
        let mut req = Request::post(path).header("accept", "application/json");
        if let Some(u) = user {
            req = req.header("x-user-id", u);
        }
        self.send(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
            .await
    }
}

/// A gate on `journal`, its times relative to `clock`'s now.
async fn start(
    journal: &tempfile::TempDir,
    key: &GateKey,
    clock: &Clock,
    setup: Setup<'_>,
) -> Arc<Gate> {
    let now = chrono::DateTime::from_timestamp_millis(clock.now_ms()).unwrap();
    let t = |s: i64| (now + chrono::Duration::seconds(s)).to_rfc3339();
    let text = format!(
        "name = \"demo\"\nbase_url = \"https://sale.example.com/\"\nstart = \"{}\"\nend = \"{}\"\ncurrency = \"EUR\"\n[gate]\nurl = \"https://gate.example.com\"\nquota = 2\n{}\n[[items]]\nsku = \"A\"\ntitle = \"A\"\nprice = 1\nstock = 2\n[[items]]\nsku = \"B\"\ntitle = \"B\"\nprice = 1\nstock = 2\n",
        t(setup.start_in),
        t(setup.end_in),
        setup.extra,
    );
    let config = Config::parse(Path::new("site.toml"), text).unwrap();
    let stock = [("A".to_string(), 2), ("B".to_string(), 2)];
    Gate::start(
        &config,
        &stock,
        Options {
            quota: setup.quota,
            journal_dir: journal.path().to_path_buf(),
            forward: setup.forward,
            gate_id: Some("g1".into()),
            key: key.clone(),
            cookie_key: setup.cookie_key.map(<[u8]>::to_vec),
            forward_keys: None,
            body_timeout: std::time::Duration::from_millis(500),
            resend_dead_letters: false,
            origin: None,
            clock: clock.clone(),
        },
    )
    .await
    .unwrap()
}

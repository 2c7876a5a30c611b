//! A small WebDriver client for headless Chromium via chromedriver: just what
//! the tests need (open a page, run a script, take a screenshot).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub(crate) struct Browser {
    driver: Child,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile.
    pub(crate) fn start() -> Browser {
        Self::start_sized(1024, 900, None)
    }

    /// With a window `width`×`height` CSS px; with `dpr`, as a phone of that
    /// device pixel ratio (Chromium's mobile emulation).
    pub(crate) fn start_sized(width: u32, height: u32, dpr: Option<f64>) -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver must be installed (apt-get install chromium chromium-driver); the test script installs it");
        let base = format!("http://127.0.0.1:{port}");
        super::wait_for("chromedriver to start", Duration::from_secs(20), || {
            super::http().get(&format!("{base}/status")).call().is_ok()
        });
        let profile = tempfile::tempdir().unwrap();
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut options = json!({"binary": chromium(), "args": args});
        if let Some(dpr) = dpr {
            options["mobileEmulation"] = json!({"deviceMetrics": {
                "width": width, "height": height, "pixelRatio": dpr, "touch": true
            }});
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options
        }}});
        let resp: Value = super::http()
            .post(&format!("{base}/session"))
            .timeout(Duration::from_secs(60))
            .send_json(caps)
            .unwrap_or_else(|e| panic!("new WebDriver session: {e}"))
            .into_json()
            .unwrap();
        let session = resp["value"]["sessionId"]
            .as_str()
            .expect("session id")
            .to_string();
        Browser {
            driver,
            base,
            session,
            _profile: profile,
        }
    }

    #[track_caller]
    fn post(&self, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}/{path}", self.base, self.session);
        match super::http()
            .post(&url)
            .timeout(Duration::from_secs(60))
            .send_json(body)
        {
            Ok(r) => r.into_json::<Value>().unwrap()["value"].clone(),
            Err(ureq::Error::Status(code, r)) => panic!(
                "WebDriver {path}: {code} {}",
                r.into_string().unwrap_or_default()
            ),
            Err(e) => panic!("WebDriver {path}: {e}"),
        }
    }

    /// Requests for URLs matching any of `patterns` (`*.webp`) fail, as
    /// on a network that never delivers them; an empty list lifts it.
    pub(crate) fn block_urls(&self, patterns: &[&str]) {
        let cdp = |cmd: &str, params: Value| {
            self.post("goog/cdp/execute", json!({ "cmd": cmd, "params": params }))
        };
        cdp("Network.enable", json!({}));
        cdp("Network.setBlockedURLs", json!({ "urls": patterns }));
    }

    pub(crate) fn goto(&self, url: &str) {
        self.post("url", json!({ "url": url }));
    }

    /// Runs `script` (a function body; use `return`) in the page.
    #[track_caller]
    pub(crate) fn eval(&self, script: &str) -> Value {
        self.post("execute/sync", json!({ "script": script, "args": [] }))
    }

    /// Runs axe-core (npm, installed by scripts/test into target/npm) on the
    /// page as it is now, every WCAG 2 A/AA rule and best practice; returns
    /// each violation as `rule: selector, selector (help)`.
    #[track_caller]
    pub(crate) fn axe_violations(&self) -> Vec<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/npm/node_modules/axe-core/axe.min.js");
        let source = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; scripts/test installs axe-core", path.display()));
        self.post(
            "execute/sync",
            json!({ "script": "if (!window.axe) { (0, eval)(arguments[0]); } window.__axe = null; axe.run(document).then(function (r) { window.__axe = r.violations.map(function (v) { return v.id + ': ' + v.nodes.map(function (n) { return n.target.join(' '); }).join(', ') + ' (' + v.help + ')'; }); }, function (e) { window.__axe = ['axe failed: ' + e]; }); return true;", "args": [source] }),
        );
        self.wait_until(
            "return Array.isArray(window.__axe)",
            Duration::from_secs(30),
        );
        serde_json::from_value(self.eval("return window.__axe")).unwrap()
    }

    /// Polls `script` until it returns true, up to `timeout`; returns the time it took.
    #[track_caller]
    pub(crate) fn wait_until(&self, script: &str, timeout: Duration) -> Duration {
        let started = Instant::now();
        super::wait_for(&format!("`{script}` to be true"), timeout, || {
            self.eval(script) == Value::Bool(true)
        });
        started.elapsed()
    }

    /// Clicks the first element matching a CSS selector, as a user would.
    #[track_caller]
    pub(crate) fn click(&self, css: &str) {
        let found = self.post("element", json!({ "using": "css selector", "value": css }));
        let id = found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_string();
        self.post(&format!("element/{id}/click"), json!({}));
    }

    /// Clicks the buy button and waits until the page's outcome is `outcome`
    /// (`won`, `sold_out`, …).
    #[track_caller]
    pub(crate) fn buy(&self, outcome: &str) {
        self.click("[data-buy]");
        self.wait_until(
            &format!("return document.body.dataset.outcome === '{outcome}'"),
            Duration::from_secs(10),
        );
    }

    /// Waits until the page shows the ended state, and checks it is still the
    /// same page load (marked with `window.__sameLoad`) with its button off.
    #[track_caller]
    pub(crate) fn assert_turns_ended_without_reload(&self) {
        self.assert_turns_ended_saying("This sale has ended.", "Sold out");
    }

    /// The same, in the page's language: its catalogue's `ended_notice` and
    /// `js_sold_out`.
    #[track_caller]
    pub(crate) fn assert_turns_ended_saying(&self, ended: &str, sold_out: &str) {
        self.wait_until(
            "return document.body.dataset.state === 'ended'",
            Duration::from_secs(30),
        );
        assert_eq!(
            self.eval("return window.__sameLoad === true"),
            true,
            "the page was reloaded"
        );
        assert_eq!(
            self.eval("return document.querySelector('[data-buy]').disabled"),
            true
        );
        assert_eq!(
            self.eval("return document.querySelector('[data-ended]').hidden"),
            false
        );
        // Said once (innerText leaves out what is hidden), and no stock left.
        assert_eq!(
            self.eval(&format!(
                "return document.body.innerText.split({}).length - 1",
                serde_json::to_string(ended).unwrap()
            )),
            1,
            "{}",
            self.eval("return document.body.innerText")
        );
        assert_eq!(
            self.eval(&format!(
                "var s = document.querySelector('[data-stock]'); return !s || s.textContent === {}",
                serde_json::to_string(sold_out).unwrap()
            )),
            true
        );
    }

    pub(crate) fn screenshot(&self, path: &std::path::Path) {
        let url = format!("{}/session/{}/screenshot", self.base, self.session);
        let v: Value = super::http().get(&url).call().unwrap().into_json().unwrap();
        let png = base64_decode(v["value"].as_str().unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = super::http()
            .delete(&format!("{}/session/{}", self.base, self.session))
            .call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn chromium() -> String {
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if PathBuf::from(c).exists() {
            return c.to_string();
        }
    }
    panic!("Chromium is not installed: apt-get install chromium chromium-driver (the test script does this)");
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            _ => 63,
        }
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|b| *b != b'=' && !b.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, c)| acc | val(*c) << (18 - 6 * i));
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    out
}

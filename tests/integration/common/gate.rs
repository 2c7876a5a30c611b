//! `flashsale gate` as the tests run it: a sale open now with its key
//! ([`GateSale`]), a gate process on a free port ([`GateProc`]: its log,
//! metrics, SIGTERM and kill -9), an order through a real HTTP client, and an
//! order system stand-in that fails its first requests ([`receiver`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flashsale::sale::{self, GateKey};
use serde_json::Value;

use super::*;

/// `flashsale gate` with its order and admin listeners on free loopback ports.
pub(crate) const ON_FREE_PORTS: [&str; 5] = [
    "gate",
    "--listen",
    "127.0.0.1:0",
    "--admin-listen",
    "127.0.0.1:0",
];

/// A sale that is open now, with a key, ready for gates.
pub(crate) struct GateSale {
    pub(crate) sale: Sale,
    pub(crate) key: GateKey,
}

impl GateSale {
    pub(crate) fn new(extra_gate_config: &str) -> GateSale {
        Self::with_times(&in_secs(-60), &in_secs(3600), extra_gate_config)
    }

    pub(crate) fn with_times(start: &str, end: &str, extra_gate_config: &str) -> GateSale {
        let sale = Sale::with_times(start, end);
        let toml = sale.read("site.toml").replace(
            "[gate]\nurl = \"https://gate.example.com\"\n",
            &format!("[gate]\nurl = \"https://gate.example.com\"\n{extra_gate_config}\n"),
        );
        sale.write("site.toml", &toml);
        ok(sale.run(&["keygen", "gate.key"]));
        let key = GateKey::load(Some(&sale.path().join("gate.key"))).unwrap();
        GateSale { sale, key }
    }

    /// `flashsale gate` for this sale, in its directory, on a free loopback
    /// port with its key, journaling into `journal`: for the starts that are
    /// refused (add flags or environment, then `.output()`).
    pub(crate) fn gate_command(&self, journal: impl AsRef<std::path::Path>) -> Command {
        let mut c = Command::new(bin());
        c.args(ON_FREE_PORTS)
            .args(["--key-file", "gate.key", "--journal"])
            .arg(journal.as_ref())
            .current_dir(self.sale.path());
        c
    }

    /// A fresh order token for this sale's start.
    pub(crate) fn token(&self) -> String {
        self.key.mint("test-sale", self.sale.start_ms())
    }

    pub(crate) fn journal(&self) -> PathBuf {
        self.sale.path().join("journal")
    }

    pub(crate) fn winners(&self) -> Vec<Value> {
        journal_winners(
            &std::fs::read_to_string(self.journal().join("winners.jsonl")).unwrap_or_default(),
        )
    }
}

/// A winners' journal's winners, as a reader must add its lines up: winner
/// lines, and a fleet's attempts neither confirmed nor voided (the gate
/// stopped before the ledger answered: maybe won, settled at its next
/// start). Whole lines only: a gate may be appending the next one now.
pub(crate) fn journal_winners(text: &str) -> Vec<Value> {
    let mut winners = Vec::new();
    let mut open: Vec<Value> = Vec::new();
    for l in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
        let v: Value = serde_json::from_str(l.trim_end()).unwrap();
        if let Some(a) = v.get("attempt") {
            open.push(a.clone());
        } else if let Some(order) = v.get("void") {
            open.retain(|a| a["order"] != *order);
        } else {
            open.retain(|a| a["order"] != v["order"]);
            winners.push(v);
        }
    }
    winners.extend(open);
    winners
}

pub(crate) struct GateProc {
    pub(crate) child: Child,
    /// The public (order) listener.
    pub(crate) base: String,
    /// The admin listener: /healthz, /metrics.
    pub(crate) admin: String,
    pub(crate) err: Arc<Mutex<Vec<String>>>,
}

impl GateProc {
    pub(crate) fn start(s: &GateSale, args: &[&str]) -> GateProc {
        Self::start_in(s.sale.path(), &s.journal(), args)
    }

    /// A gate for the sale in `dir` (with its gate.key), journaling into `journal`.
    pub(crate) fn start_in(
        dir: &std::path::Path,
        journal: &std::path::Path,
        args: &[&str],
    ) -> GateProc {
        Self::start_with(dir, journal, args, &mut Command::new(bin()))
    }

    /// The same, with `command` set up beforehand (its environment).
    pub(crate) fn start_with(
        dir: &std::path::Path,
        journal: &std::path::Path,
        args: &[&str],
        command: &mut Command,
    ) -> GateProc {
        let mut child = command
            .args(ON_FREE_PORTS)
            .arg("--journal")
            .arg(journal)
            .args(["--key-file", "gate.key"])
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = Arc::new(Mutex::new(Vec::new()));
        let e2 = err.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                e2.lock().unwrap().push(l);
            }
        });
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let (Some(base), Some(admin)) = (
            base_url_after(&line, "Gate listening on "),
            line.split("admin on ")
                .nth(1)
                .and_then(|r| base_url_after(r, "")),
        ) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gate did not start: {line:?} {:?}", err.lock().unwrap());
        };
        GateProc {
            child,
            base,
            admin,
            err,
        }
    }

    pub(crate) fn url(&self, s: &GateSale) -> String {
        sale::order_url(&self.base, "test-sale", &s.token())
    }

    pub(crate) fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        wait_for_some(
            "the gate to stop on SIGTERM",
            Duration::from_secs(20),
            || self.child.try_wait().unwrap(),
        )
    }

    /// Waits (up to 10 s) for a JSON log line whose message is `message`.
    pub(crate) fn wait_for_log(&self, message: &str) -> Value {
        wait_for_some(
            &format!("log line {message}"),
            Duration::from_secs(10),
            || {
                self.err.lock().unwrap().iter().find_map(|l| {
                    serde_json::from_str::<Value>(l)
                        .ok()
                        .filter(|v| v["message"] == message)
                })
            },
        )
    }

    pub(crate) fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// The sum of a metric's samples whose line contains every `filter`.
    pub(crate) fn metric(&self, name: &str) -> f64 {
        self.metric_where(name, &[])
    }

    pub(crate) fn metric_where(&self, name: &str, filters: &[&str]) -> f64 {
        let body = String::from_utf8(get(&format!("{}/metrics", self.admin)).2).unwrap();
        body.lines()
            .filter(|l| {
                l.starts_with(name) && !l.starts_with('#') && filters.iter().all(|f| l.contains(f))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    }
}

impl Drop for GateProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POSTs an order; returns status and body (never follows redirects).
pub(crate) fn order(
    agent: &ureq::Agent,
    url: &str,
    user: Option<&str>,
    sku: &str,
    json: bool,
) -> (u16, String, Option<String>) {
    let mut req = agent
        .post(url)
        .set("Content-Type", "application/x-www-form-urlencoded");
    if let Some(u) = user {
        req = req.set("X-User-Id", u);
    }
    if json {
        req = req.set("Accept", "application/json");
    }
    let resp = match req.send_string(&format!("sku={sku}&quantity=1")) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return (0, e.to_string(), None),
    };
    let status = resp.status();
    let location = resp.header("location").map(str::to_string);
    (status, resp.into_string().unwrap_or_default(), location)
}

/// An order system stand-in that fails its first `failures` requests.
pub(crate) struct Receiver {
    pub(crate) base: String,
    pub(crate) got: Arc<Mutex<Vec<(String, String, u16)>>>,
}

pub(crate) fn receiver(failures: usize) -> Receiver {
    order_system(move |n, _, _| if n < failures { 503 } else { 200 })
}

/// An order system stand-in answering each delivery with `answer(n, key,
/// body)`: `n` counts the deliveries before this one, `key` is its
/// Idempotency-Key (lower case).
pub(crate) fn order_system(answer: impl Fn(usize, &str, &str) -> u16 + Send + 'static) -> Receiver {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let g2 = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut key = String::new();
            let mut len = 0;
            let mut line = String::new();
            let mut seen_request = false;
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                seen_request = true;
                let l = line.trim_end().to_ascii_lowercase();
                if l.is_empty() {
                    break;
                }
                if let Some(v) = l.strip_prefix("idempotency-key:") {
                    key = v.trim().to_string();
                }
                if let Some(v) = l.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            if !seen_request {
                // Connected and closed without a request (a gate killed
                // mid-connect): nothing was delivered.
                continue;
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let body = String::from_utf8(body).unwrap();
            let n = g2.lock().unwrap().len();
            let status = answer(n, &key, &body);
            g2.lock().unwrap().push((key, body, status));
            let mut s = stream;
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    Receiver { base, got }
}

impl Receiver {
    /// The order ids it accepted, once each (as an order system that honours
    /// the Idempotency-Key counts them).
    pub(crate) fn accepted(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .got
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, _, st)| (200..300).contains(st))
            .map(|(k, _, _)| k.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

/// `flashsale audit` of the sale in `sale` over `journals` (relative to it),
/// with what `rx` accepted as the order system's list, and `extra` flags.
pub(crate) fn audit(sale: &Sale, journals: &[&str], rx: &Receiver, extra: &[&str]) -> Output {
    let list = sale.path().join("accepted.txt");
    std::fs::write(&list, rx.accepted().join("\n") + "\n").unwrap();
    let mut args = vec!["audit".to_string()];
    for j in journals {
        args.extend(["--journal".to_string(), j.to_string()]);
    }
    args.extend(["--delivered".to_string(), list.display().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sale.run(&args)
}

/// Waits until `g` answers /healthz with 200.
pub(crate) fn wait_healthy(g: &GateProc) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while super::get(&format!("{}/healthz", g.admin)).0 != 200 {
        if std::time::Instant::now() > deadline {
            let log = g.err.lock().unwrap();
            let tail = &log[log.len().saturating_sub(20)..];
            panic!(
                "waited 10s for gate {} to be healthy; its log ends:\n{}",
                g.base,
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

//! Helpers shared by the integration tests: run the real binary, make sales in
//! temporary directories, run `serve` in the background.
#![allow(dead_code)]

pub(crate) mod gate;
pub(crate) mod kvs;
pub(crate) mod moto;
pub(crate) mod photo;
pub(crate) mod redis;
pub(crate) mod storm;
pub(crate) mod varnish;
pub(crate) mod webdriver;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

pub(crate) fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flashsale"))
}

/// Runs `flashsale ARGS` in `dir`.
pub(crate) fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env_remove("FLASHSALE_GATE_KEY")
        .output()
        .expect("run flashsale")
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
pub(crate) fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "flashsale failed ({:?}):\n{}\n{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// Asserts exit code 1 and returns stderr.
pub(crate) fn fails(o: Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected failure, got:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    stderr(&o)
}

/// A sale in a temporary directory.
pub(crate) struct Sale {
    pub(crate) dir: tempfile::TempDir,
}

pub(crate) const SVG: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 10 10\"><rect width=\"10\" height=\"10\"/></svg>\n";

/// site.toml for a sale with `items_dir = "items"` starting and ending at the given times.
pub(crate) fn site_toml(start: &str, end: &str) -> String {
    format!(
        r#"name = "test-sale"
title = "Test Sale"
base_url = "https://sale.example.com/"
start = {start}
end = {end}
currency = "EUR"
items_dir = "items"

[gate]
url = "https://gate.example.com"
"#
    )
}

pub(crate) fn item_md(sku: &str, title: &str, price: &str) -> String {
    format!(
        "+++\nsku = \"{sku}\"\ntitle = \"{title}\"\nprice = {price}\noriginal_price = 99.00\nstock = 10\nimage = \"img/a.svg\"\n+++\nA **fine** {title}.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
}

impl Sale {
    /// Three items, a sale far in the future.
    pub(crate) fn new() -> Sale {
        Self::with_times("2030-01-01T10:00:00+08:00", "2030-01-01T11:00:00+08:00")
    }

    pub(crate) fn with_times(start: &str, end: &str) -> Sale {
        let sale = Sale {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        sale.write("site.toml", &site_toml(start, end));
        sale.write("static/img/a.svg", SVG);
        for (sku, title, price) in [
            ("A-1", "Alpha", "1.50"),
            ("B-2", "Beta", "2.50"),
            ("C-3", "Gamma", "3.50"),
        ] {
            sale.write(
                &format!("items/{}.md", sku.to_lowercase()),
                &item_md(sku, title, price),
            );
        }
        sale
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn write(&self, rel: &str, text: &str) {
        self.write_bytes(rel, text.as_bytes());
    }

    /// Writes whole or not at all, as an editor's save: a preview watching
    /// never reads a file truncated and not yet written (a dotfile, which
    /// it ignores, renamed over it).
    pub(crate) fn write_bytes(&self, rel: &str, bytes: &[u8]) {
        let p = self.dir.path().join(rel);
        let dir = p.parent().unwrap();
        std::fs::create_dir_all(dir).unwrap();
        let name = p.file_name().unwrap().to_string_lossy();
        let tmp = dir.join(format!(".{name}.writing"));
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, &p).unwrap();
    }

    /// Adds `line` (`key = value`) to site.toml's `[gate]` section.
    pub(crate) fn add_to_gate(&self, line: &str) {
        let toml = self.read("site.toml");
        assert!(toml.contains("[gate]\n"), "no [gate] section: {toml}");
        self.write(
            "site.toml",
            &toml.replacen("[gate]\n", &format!("[gate]\n{line}\n"), 1),
        );
    }

    pub(crate) fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        run(self.path(), args)
    }

    /// The sale's start as site.toml says it now, in Unix ms: order URLs
    /// are minted for it.
    pub(crate) fn start_ms(&self) -> i64 {
        let toml: toml::Value = toml::from_str(&self.read("site.toml")).unwrap();
        let start = match &toml["start"] {
            toml::Value::String(s) => s.clone(),
            toml::Value::Datetime(d) => d.to_string(),
            other => panic!("start = {other}"),
        };
        chrono::DateTime::parse_from_rfc3339(&start)
            .unwrap_or_else(|e| panic!("start {start}: {e}"))
            .timestamp_millis()
    }

    /// Every file under `rel` with its bytes and mtime.
    pub(crate) fn snapshot(&self, rel: &str) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
        snapshot(&self.dir.path().join(rel))
    }
}

pub(crate) fn snapshot(root: &Path) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
    let mut out = BTreeMap::new();
    if !root.exists() {
        return out;
    }
    for e in walk(root) {
        let rel = e
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let meta = std::fs::metadata(&e).unwrap();
        out.insert(rel, (std::fs::read(&e).unwrap(), meta.modified().unwrap()));
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// `flashsale serve` on a free loopback port, stopped on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
    pub(crate) lines: std::sync::mpsc::Receiver<String>,
}

impl Server {
    pub(crate) fn start(dir: &Path, extra: &[&str]) -> Server {
        Self::start_with_env(dir, extra, &[])
    }

    pub(crate) fn start_with_env(dir: &Path, extra: &[&str], env: &[(&str, &Path)]) -> Server {
        let mut child = Command::new(bin())
            .args(["serve", "--port", "0"])
            .args(extra)
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start flashsale serve");
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(format!("stderr: {l}"));
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
                if let Some(base) = base_url_after(&l, "Serving ") {
                    return Server {
                        child,
                        base,
                        lines: rx,
                    };
                }
                seen.push(l);
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("serve did not start: {seen:?}");
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Waits for an output line containing `needle`.
    pub(crate) fn wait_for_line(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(100)) {
                if l.contains(needle) {
                    return l;
                }
                seen.push(l);
            }
        }
        panic!("no line with {needle:?} within {timeout:?}; saw {seen:?}");
    }
}

impl Server {
    /// Stops the server as a supervisor would (SIGTERM), SIGKILL after 5 s;
    /// returns whether it exited on its own.
    pub(crate) fn stop(&mut self) -> bool {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            // A wait that may fail: SIGKILL follows (so not `wait_for`).
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Cleanly, so nothing the server made (a preview's journal) is left behind.
        self.stop();
    }
}

/// The address a server announces in a line `<prefix>http://ADDR/ ...`.
pub(crate) fn base_url_after(line: &str, prefix: &str) -> Option<String> {
    let word = line.strip_prefix(prefix)?.split_whitespace().next()?;
    Some(word.trim_end_matches('/').to_string())
}

/// An HTTP client that never uses a proxy and never follows redirects.
pub(crate) fn http() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(Duration::from_secs(10))
        .try_proxy_from_env(false)
        .build()
}

/// GET returning status, headers and body, for any status.
pub(crate) fn get(url: &str) -> (u16, BTreeMap<String, String>, Vec<u8>) {
    let resp = match http().get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .map(|n| {
            let v = resp.header(&n).unwrap_or("").to_string();
            (n.to_ascii_lowercase(), v)
        })
        .collect();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).unwrap();
    (status, headers, body)
}

/// Sends raw bytes and returns the status line, for requests a client would tidy up.
pub(crate) fn raw_request(base: &str, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // The server may answer and close before it has read everything (huge headers).
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// RFC 3339 for now + `secs`, in UTC.
pub(crate) fn in_secs(secs: i64) -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let t = now + secs;
    let (days, rem) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Waits until `holds()` is true, asking every 20 ms; fails the test after
/// `within`, saying what it waited for. Every wait of the tests is this one.
pub(crate) fn wait_for(what: &str, within: Duration, mut holds: impl FnMut() -> bool) {
    wait_for_some(what, within, || holds().then_some(()))
}

/// Waits until `found()` is `Some`, and returns it (as [`wait_for`]).
pub(crate) fn wait_for_some<T>(
    what: &str,
    within: Duration,
    mut found: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = found() {
            return v;
        }
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A string field of a JSON body ("" when it has none).
pub(crate) fn json_field(body: &str, key: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    v[key].as_str().unwrap_or_default().to_string()
}

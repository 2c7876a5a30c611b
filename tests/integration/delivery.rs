//! Every winner reaches the order system through the faults an order system
//! has: one winner it fails forever (a poison record) must not hold up the
//! others, and an order system down for everyone must not lose anybody.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::gate::*;
use crate::common::*;

/// Each order id with the statuses its deliveries got, in order.
fn deliveries(rx: &Receiver) -> BTreeMap<String, Vec<u16>> {
    let mut by_key: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for (key, _, status) in rx.got.lock().unwrap().iter() {
        by_key.entry(key.clone()).or_default().push(*status);
    }
    by_key
}

fn dead_letters(s: &GateSale) -> Vec<Value> {
    std::fs::read_to_string(s.journal().join("dead-letters.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_poison_winner_is_set_aside_and_the_49_others_are_delivered_at_once() {
    let s = GateSale::new("forward_attempts = 3");
    let item = s
        .sale
        .read("items/a-1.md")
        .replace("stock = 10", "stock = 50");
    s.sale.write("items/a-1.md", &item);
    // An unhandled exception on one odd user id: 500, every time.
    let rx = order_system(|_, _, body| {
        if body.contains("\"user\":\"odd-7\"") {
            500
        } else {
            200
        }
    });
    let gate = GateProc::start(
        &s,
        &["--quota", "50", "--forward", &format!("{}/orders", rx.base)],
    );
    let url = gate.url(&s);
    let agent = http();
    // The poison winner among the first, so the others come after it.
    let users: Vec<String> = (0..50)
        .map(|i| {
            if i == 2 {
                "odd-7".to_string()
            } else {
                format!("even-{i}")
            }
        })
        .collect();
    let started = Instant::now();
    for u in &users {
        let (status, body, _) = order(&agent, &url, Some(u), "A-1", true);
        assert!(body.contains("\"won\""), "{status} {body}");
    }
    wait_for("49 winners accepted", Duration::from_secs(10), || {
        deliveries(&rx)
            .values()
            .filter(|st| st.contains(&200))
            .count()
            == 49
    });
    let took = started.elapsed();
    // The poison one: given up on after its attempts, in the dead letters.
    let gave_up = gate.wait_for_log("forward_gave_up");
    assert_eq!(gave_up["attempts"], 3, "{gave_up}");
    let dead = dead_letters(&s);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["user"], "odd-7");
    assert_eq!(
        (dead[0]["status"].as_u64(), dead[0]["attempts"].as_u64()),
        (Some(500), Some(3))
    );
    assert_eq!(gate.metric("flashsale_gate_forward_gave_up_total"), 1.0);
    assert_eq!(
        gate.metric("flashsale_gate_forward_dead_letters_total"),
        1.0
    );
    wait_for("the backlog at 0", Duration::from_secs(5), || {
        gate.metric("flashsale_gate_forward_backlog") == 0.0
    });
    // Each of the others once.
    let by_key = deliveries(&rx);
    let poison = &dead[0]["order"].as_str().unwrap().to_lowercase();
    for (key, statuses) in &by_key {
        if key != poison {
            assert_eq!(statuses, &[200], "{key}");
        }
    }
    // The audit names the poison one, in the dead letters and not delivered,
    // and nothing else.
    let out = audit(&s.sale, &["journal"], &rx, &[]);
    assert_eq!(out.status.code(), Some(1));
    let problems: Vec<String> = stdout(&out)
        .lines()
        .filter(|l| l.starts_with("problem:"))
        .map(str::to_string)
        .collect();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems.iter().all(|p| p.contains("(odd-7)")),
        "{problems:#?}"
    );
    eprintln!("49 delivered and the poison one set aside in {took:?}");
}

#[test]
fn an_order_system_down_for_everyone_for_20_s_loses_nobody_and_gets_each_once() {
    let s = GateSale::new("forward_attempts = 3");
    // Down (503 to everyone) for the first 20 s after the first delivery.
    let first = std::sync::Mutex::new(None::<Instant>);
    let rx = order_system(move |_, _, _| {
        let since = *first.lock().unwrap().get_or_insert_with(Instant::now);
        if since.elapsed() < Duration::from_secs(20) {
            503
        } else {
            200
        }
    });
    let gate = GateProc::start(
        &s,
        &["--quota", "10", "--forward", &format!("{}/orders", rx.base)],
    );
    let url = gate.url(&s);
    let agent = http();
    for i in 0..10 {
        assert!(order(&agent, &url, Some(&format!("d{i}")), "A-1", true)
            .1
            .contains("won"));
    }
    // Down: failures pile up, nobody is set aside.
    wait_for("retries while it is down", Duration::from_secs(15), || {
        gate.metric("flashsale_gate_forward_failures_total") >= 40.0
    });
    assert_eq!(
        gate.metric("flashsale_gate_forward_dead_letters_total"),
        0.0
    );
    // Back: every winner accepted, each exactly once.
    wait_for(
        "all 10 accepted after the outage",
        Duration::from_secs(60),
        || {
            deliveries(&rx)
                .values()
                .filter(|st| st.contains(&200))
                .count()
                == 10
        },
    );
    for (key, statuses) in deliveries(&rx) {
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{key} accepted more than once: {statuses:?}"
        );
    }
    assert!(dead_letters(&s).is_empty());
    assert_eq!(gate.metric("flashsale_gate_forward_gave_up_total"), 0.0);
    let out = ok(audit(&s.sale, &["journal"], &rx, &[]));
    assert!(
        out.contains("10 winners, 10 of them at the order system"),
        "{out}"
    );
    wait_for("the backlog at 0", Duration::from_secs(5), || {
        gate.metric("flashsale_gate_forward_backlog") == 0.0
    });
}

/// The README's snippet in `lang` (`python` or `js`) under "Verifying a delivery".
fn snippet(lang: &str) -> String {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let section = &readme[readme
        .find("### Verifying a delivery")
        .expect("the README section")..];
    let start = section.find(&format!("```{lang}\n")).expect("the snippet") + 4 + lang.len();
    let end = start + section[start..].find("```").unwrap();
    section[start..end].to_string()
}

/// An order system in `lang` that checks each delivery with the README's
/// snippet (`window` seconds), answering 200 or 401; what it saw, as JSON lines.
struct Verifier {
    base: String,
    seen: std::sync::mpsc::Receiver<Value>,
    _child: ChildGuard,
}

struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn verifier(
    lang: &str,
    dir: &std::path::Path,
    key_file: &std::path::Path,
    window: u32,
) -> Verifier {
    use std::io::BufRead;
    let (file, program, server) = match lang {
        "python" => (
            "verify_server.py",
            "python3",
            r#"
import http.server, json, sys
KEY = open(sys.argv[1], "rb").read().strip()
WINDOW = int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        sig = self.headers.get("Flashsale-Signature", "")
        ok = verify(sig, body, KEY, WINDOW)
        print(json.dumps({"ok": ok, "sig": sig, "body": body.decode()}), flush=True)
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#,
        ),
        _ => (
            "verify_server.js",
            "node",
            r#"
const http = require('http');
const fs = require('fs');
const key = fs.readFileSync(process.argv[2], 'utf8').trim();
const win = Number(process.argv[3]);
const srv = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const sig = req.headers['flashsale-signature'] || '';
    const ok = verify(sig, body, key, win);
    console.log(JSON.stringify({ ok, sig, body: body.toString() }));
    res.writeHead(ok ? 200 : 401, { 'Content-Length': '0' });
    res.end();
  });
});
srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));
"#,
        ),
    };
    let path = dir.join(file);
    std::fs::write(&path, format!("{}\n{server}", snippet(lang))).unwrap();
    let mut child = std::process::Command::new(program)
        .arg(&path)
        .arg(key_file)
        .arg(window.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let port = lines.next().unwrap().unwrap();
    let (tx, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            let _ = tx.send(serde_json::from_str(&l).unwrap());
        }
    });
    Verifier {
        base: format!("http://127.0.0.1:{}", port.trim()),
        seen,
        _child: ChildGuard(child),
    }
}

/// POSTs `body` with `signature` as a delivery would; the status.
fn post(url: &str, signature: &str, body: &str) -> u16 {
    match http()
        .post(url)
        .set("Content-Type", "application/json")
        .set("Flashsale-Signature", signature)
        .send_string(body)
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, _)) => s,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn signed_deliveries_verify_in_python_and_node_and_forgeries_do_not() {
    let s = GateSale::new("");
    let (new, old) = (s.sale.path().join("new.key"), s.sale.path().join("old.key"));
    std::fs::write(&new, "new-forward-key-0123456789abcdef\n").unwrap();
    std::fs::write(&old, "old-forward-key-0123456789abcdef\n").unwrap();
    // The order system still knows only the old key: a rotation under way.
    let py = verifier("python", s.sale.path(), &old, 1);
    let forward = format!("{}/orders", py.base);
    let gate = GateProc::start(
        &s,
        &[
            "--quota",
            "5",
            "--forward",
            &forward,
            "--forward-key-file",
            new.to_str().unwrap(),
            "--forward-key-file",
            old.to_str().unwrap(),
        ],
    );
    assert!(order(&http(), &gate.url(&s), Some("signed"), "A-1", true)
        .1
        .contains("won"));
    let got = py
        .seen
        .recv_timeout(Duration::from_secs(10))
        .expect("a delivery");
    assert_eq!(got["ok"], true, "{got}");
    let (sig, body) = (got["sig"].as_str().unwrap(), got["body"].as_str().unwrap());
    assert_eq!(sig.matches("v1=").count(), 2, "both keys sign: {sig}");
    assert!(body.contains("\"user\":\"signed\""), "{body}");
    // A forgery: the same delivery under a key the order system never gave.
    let forged = sig.split(",v1=").next().unwrap().to_string() + ",v1=" + &"ab".repeat(32);
    assert_eq!(post(&forward, &forged, body), 401, "a forged signature");
    assert_eq!(
        post(&forward, sig, &body.replace("signed", "someone")),
        401,
        "a changed body"
    );
    // A replay: refused once its time is out of the window (1 s here).
    wait_for(
        "the replay to fall out of the window",
        Duration::from_secs(5),
        || post(&forward, sig, body) == 401,
    );

    // Node, knowing the new key, verifies deliveries of the same gate.
    let js = verifier("js", s.sale.path(), &new, 300);
    let gate2 = GateProc::start_in(
        s.sale.path(),
        &s.sale.path().join("journal-2"),
        &[
            "--quota",
            "5",
            "--forward",
            &format!("{}/orders", js.base),
            "--forward-key-file",
            new.to_str().unwrap(),
        ],
    );
    assert!(order(&http(), &gate2.url(&s), Some("node"), "A-1", true)
        .1
        .contains("won"));
    let got = js
        .seen
        .recv_timeout(Duration::from_secs(10))
        .expect("a delivery");
    assert_eq!(got["ok"], true, "{got}");
    let sig = got["sig"].as_str().unwrap().to_string();
    let body = got["body"].as_str().unwrap().to_string();
    let js_url = format!("{}/orders", js.base);
    assert_eq!(
        post(&js_url, &sig, &body.replace("node", "edon")),
        401,
        "a changed body"
    );
    let stale = format!("t=1000000000,{}", sig.split_once(',').unwrap().1);
    assert_eq!(post(&js_url, &stale, &body), 401, "an old time");
    assert_eq!(gate2.metric("flashsale_gate_forwarded_total"), 1.0);
}

#[test]
fn a_forward_key_must_be_the_order_systems_own_and_unsigned_deliveries_are_said() {
    let s = GateSale::new("");
    let run = |extra: &[&str]| {
        s.gate_command("j")
            .args(["--forward", "http://127.0.0.1:9/orders"])
            .args(extra)
            .output()
            .unwrap()
    };
    let err = fails(run(&["--forward-key-file", "gate.key"]));
    assert!(err.contains("the forward key is the gate key"), "{err}");
    assert!(
        !err.contains(s.sale.read("gate.key").trim()),
        "the key itself never shows: {err}"
    );
    s.sale.write("short.key", "0123456789\n");
    let err = fails(run(&["--forward-key-file", "short.key"]));
    assert!(
        err.contains("holds 10 bytes") && err.contains("at least 16"),
        "{err}"
    );
    // Unsigned: the gate starts and says so.
    let gate = GateProc::start(&s, &["--forward", "http://127.0.0.1:9/orders"]);
    wait_for("the unsigned note", Duration::from_secs(5), || {
        gate.err
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("deliveries to the order system are not signed"))
    });
}

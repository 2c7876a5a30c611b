//! The open-model load generator of `bench/gate.sh`: requests leave on a
//! schedule, not when an earlier answer came back, and each latency is
//! counted from the moment its request was due — so when the server (or this
//! generator) falls behind, the queueing shows in the tail instead of being
//! left out (no coordinated omission). Latencies go into an HDR histogram
//! (microseconds, 3 significant digits, up to 60 s).
//!
//! Like wrk2, a fixed set of keep-alive connections (`--connections`, 256 by
//! default) carries the schedule: each connection takes the next request due,
//! waits for its moment, sends it and reads the answer. When every connection
//! is busy, the next request waits for one, and that wait counts in its
//! latency. Tokio's timer has a 1 ms tick, so a request is sent up to 1 ms
//! *early* rather than up to 1 ms late; its latency is then counted from when
//! it was sent: `answer − min(due, sent)`.
//!
//! Two schedules:
//! - `--rate R --duration S`: R requests a second, evenly spaced, for S seconds;
//! - `--spike N --within S`: N requests at independent uniformly random
//!   moments within S seconds (a crowd arriving at the start of a sale).
//!
//! Every request is `POST URL` with `sku=…&quantity=1`, `Accept:
//! application/json` and a distinct `X-User-Id`, as a gate's customers send
//! it. Answers starting `{"status":"won"` count as winners, other 2xx as
//! losers; their latencies are also kept apart. Prints one JSON object.
//!
//! `--threads` (2 by default) single-threaded runtimes share the connections,
//! as wrk's threads do.
//!
//! `--timeline MS` adds `timeline`: per MS-millisecond slice of the schedule
//! (by due time), `[start_ms, answers, p50_ms, p99_ms, max_ms, won]` — where
//! in the run the tail comes from.
//!
//! `cargo run --release -p flashsale-bench-tools --bin openload -- --url URL --rate 20000 --duration 10`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::io::Write as _;

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Args {
    url: String,
    rate: Option<f64>,
    duration: f64,
    spike: Option<u64>,
    within: f64,
    connections: usize,
    threads: usize,
    sku: String,
    prefix: String,
    /// Slices of the timeline, in ms; 0: none.
    timeline_ms: u64,
}

fn args() -> Args {
    let mut a = Args {
        url: String::new(),
        rate: None,
        duration: 10.0,
        spike: None,
        within: 1.0,
        connections: 256,
        threads: 2,
        sku: "BENCH-1".into(),
        prefix: format!("c{}-", std::process::id()),
        timeline_ms: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = value(),
            "--rate" => a.rate = Some(value().parse().expect("--rate: a number")),
            "--duration" => a.duration = value().parse().expect("--duration: seconds"),
            "--spike" => a.spike = Some(value().parse().expect("--spike: a count")),
            "--within" => a.within = value().parse().expect("--within: seconds"),
            "--connections" => a.connections = value().parse().expect("--connections: a count"),
            "--threads" => a.threads = value().parse().expect("--threads: a count"),
            "--sku" => a.sku = value(),
            "--prefix" => a.prefix = value(),
            "--timeline" => a.timeline_ms = value().parse().expect("--timeline: milliseconds"),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(
        a.url.starts_with("http://127.") || a.url.starts_with("http://localhost"),
        "--url must be a loopback http:// URL"
    );
    assert!(
        a.rate.is_some() != a.spike.is_some(),
        "give either --rate R --duration S or --spike N --within S"
    );
    a
}

/// One histogram per kind of answer, and the counts, for one connection;
/// merged at the end.
struct Tally {
    /// Answers other than 2xx, until the end, when `won` and `lost` join it.
    all: Histogram<u64>,
    won: Histogram<u64>,
    lost: Histogram<u64>,
    errors: u64,
    other_status: u64,
    sent: u64,
    /// The most a request left after its due time (the generator behind).
    max_lag: Duration,
    /// When the last winner's answer arrived, from the start.
    last_win: Duration,
    /// (due offset in ms, latency in µs, won) per answer, with `--timeline`.
    points: Vec<(u32, u32, bool)>,
}

/// Microseconds up to a minute: a longer wait than that is a failed run.
const HIGHEST_US: u64 = 60_000_000;

impl Tally {
    fn new() -> Tally {
        let h = || Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("histogram bounds");
        Tally {
            all: h(),
            won: h(),
            lost: h(),
            errors: 0,
            other_status: 0,
            sent: 0,
            max_lag: Duration::ZERO,
            last_win: Duration::ZERO,
            points: Vec::new(),
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.all.add(&other.all).expect("same bounds");
        self.won.add(&other.won).expect("same bounds");
        self.lost.add(&other.lost).expect("same bounds");
        self.errors += other.errors;
        self.other_status += other.other_status;
        self.sent += other.sent;
        self.max_lag = self.max_lag.max(other.max_lag);
        self.last_win = self.last_win.max(other.last_win);
        self.points.extend_from_slice(&other.points);
    }
}

/// `[start_ms, answers, p50_ms, p99_ms, max_ms, won]` per slice of `ms`.
fn timeline(points: &[(u32, u32, bool)], ms: u64) -> serde_json::Value {
    let mut slices: std::collections::BTreeMap<u64, (Vec<u32>, u64)> = Default::default();
    for &(at, us, won) in points {
        let e = slices.entry(u64::from(at) / ms).or_default();
        e.0.push(us);
        e.1 += u64::from(won);
    }
    let rows: Vec<serde_json::Value> = slices
        .into_iter()
        .map(|(n, (mut v, won))| {
            v.sort_unstable();
            let q = |f: f64| f64::from(v[((v.len() - 1) as f64 * f) as usize]) / 1000.0;
            serde_json::json!([n * ms, v.len(), q(0.5), q(0.99), q(1.0), won])
        })
        .collect();
    serde_json::Value::Array(rows)
}

fn percentiles(h: &Histogram<u64>) -> serde_json::Value {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    serde_json::json!({
        "count": h.len(),
        "p50_ms": ms(0.5),
        "p99_ms": ms(0.99),
        "p999_ms": ms(0.999),
        "max_ms": h.max() as f64 / 1000.0,
    })
}

fn main() {
    run(args());
}

/// The moments requests are due, as offsets from the start, in order.
fn schedule(a: &Args) -> Vec<Duration> {
    match (a.rate, a.spike) {
        (Some(rate), _) => {
            let n = (rate * a.duration).round() as u64;
            (0..n)
                .map(|i| Duration::from_secs_f64(i as f64 / rate))
                .collect()
        }
        (_, Some(n)) => {
            // xorshift64: reproducible enough, and no dependency for a bench.
            let mut seed = 0x2545_F491_4F6C_DD1Du64 ^ u64::from(std::process::id());
            let mut v: Vec<Duration> = (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    Duration::from_secs_f64((seed >> 11) as f64 / (1u64 << 53) as f64 * a.within)
                })
                .collect();
            v.sort();
            v
        }
        _ => unreachable!("args() checks one of the two"),
    }
}

/// What every connection shares.
struct Plan {
    addr: String,
    /// The request up to its last header, which is the customer's id.
    head: Vec<u8>,
    body: Vec<u8>,
    prefix: String,
    offsets: Vec<Duration>,
    next: AtomicUsize,
    start: Instant,
    timeline: bool,
}

/// One keep-alive HTTP/1.1 connection, written and read directly (as wrk
/// does): a request is a few `write`s' worth of bytes and an answer is parsed
/// with `httparse`, so the generator spends its CPU on the wire, not on a
/// client's machinery, and leaves more of the machine to the server.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: &str) -> Option<Conn> {
        let stream = TcpStream::connect(addr).await.ok()?;
        stream.set_nodelay(true).ok()?;
        Some(Conn {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends `request` and reads one answer: its status, its body, and
    /// whether the connection stays open.
    async fn exchange(&mut self, request: &[u8]) -> Option<(u16, Vec<u8>, bool)> {
        self.stream.write_all(request).await.ok()?;
        self.buf.clear();
        loop {
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            let httparse::Status::Complete(head) = resp.parse(&self.buf).ok()? else {
                continue;
            };
            let mut length = 0usize;
            let mut keep = true;
            for h in resp.headers.iter() {
                if h.name.eq_ignore_ascii_case("content-length") {
                    length = std::str::from_utf8(h.value).ok()?.trim().parse().ok()?;
                } else if h.name.eq_ignore_ascii_case("connection") {
                    keep = !h.value.eq_ignore_ascii_case(b"close");
                } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                    return None; // the servers measured here always send a length
                }
            }
            let status = resp.code?;
            if self.buf.len() >= head + length {
                return Some((status, self.buf[head..head + length].to_vec(), keep));
            }
        }
    }
}

/// One connection: takes the next request due until the schedule is done.
async fn connection(plan: Arc<Plan>) -> Tally {
    let mut t = Tally::new();
    // Open before the start, so the first requests do not pay for it.
    let mut conn = Conn::open(&plan.addr).await;
    let mut request = Vec::with_capacity(512);
    loop {
        let i = plan.next.fetch_add(1, Ordering::Relaxed);
        let Some(offset) = plan.offsets.get(i) else {
            return t;
        };
        let due = plan.start + *offset;
        let tick = Duration::from_millis(1);
        if due > Instant::now() + tick {
            tokio::time::sleep_until((due - tick).into()).await;
        }
        if conn.is_none() {
            conn = Conn::open(&plan.addr).await;
        }
        let sent_at = Instant::now();
        t.max_lag = t.max_lag.max(sent_at.saturating_duration_since(due));
        t.sent += 1;
        let Some(c) = conn.as_mut() else {
            t.errors += 1;
            continue;
        };
        request.clear();
        request.extend_from_slice(&plan.head);
        write!(request, "X-User-Id: {}{i}\r\n\r\n", plan.prefix).expect("to a Vec");
        request.extend_from_slice(&plan.body);
        let answer = tokio::time::timeout(Duration::from_secs(30), c.exchange(&request)).await;
        let done = Instant::now();
        let us = (done - due.min(sent_at)).as_micros() as u64;
        let us = us.clamp(1, HIGHEST_US);
        if plan.timeline {
            let won =
                matches!(&answer, Ok(Some((_, b, _))) if b.starts_with(b"{\"status\":\"won\""));
            t.points.push((offset.as_millis() as u32, us as u32, won));
        }
        match answer {
            Ok(Some((status, body, keep))) => {
                if (200..300).contains(&status) {
                    if body.starts_with(b"{\"status\":\"won\"") {
                        t.won.record(us).expect("within bounds");
                        t.last_win = t.last_win.max(done.saturating_duration_since(plan.start));
                    } else {
                        t.lost.record(us).expect("within bounds");
                    }
                } else {
                    t.all.record(us).expect("within bounds");
                    t.other_status += 1;
                }
                if !keep {
                    conn = None;
                }
            }
            _ => {
                t.errors += 1;
                conn = None; // a fresh connection for the next one
            }
        }
    }
}

fn run(a: Args) {
    let uri: hyper::Uri = a.url.parse().expect("--url");
    let addr = format!(
        "{}:{}",
        uri.host().expect("--url: a host"),
        uri.port_u16().unwrap_or(80)
    );
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let body = format!("sku={}&quantity=1", a.sku);
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
        body.len()
    );
    let plan = Arc::new(Plan {
        head: head.into_bytes(),
        addr,
        body: body.into_bytes(),
        prefix: a.prefix.clone(),
        offsets: schedule(&a),
        next: AtomicUsize::new(0),
        // Time for the connections to open before the first request is due.
        start: Instant::now() + Duration::from_millis(200),
        timeline: a.timeline_ms > 0,
    });
    // Like wrk's threads: each its own single-threaded runtime with its share
    // of the connections, so a request and its connection never cross threads.
    let threads = a.threads.clamp(1, a.connections);
    let workers: Vec<_> = (0..threads)
        .map(|n| {
            let plan = plan.clone();
            let conns = a.connections / threads + usize::from(n < a.connections % threads);
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    let mut tasks = tokio::task::JoinSet::new();
                    for _ in 0..conns {
                        tasks.spawn(connection(plan.clone()));
                    }
                    // Merged only when every connection is done: adding
                    // histograms takes long enough to delay requests still due.
                    let mut done = Vec::with_capacity(conns);
                    while let Some(one) = tasks.join_next().await {
                        done.push(one.expect("a connection task"));
                    }
                    done
                })
            })
        })
        .collect();
    let mut t = Tally::new();
    for w in workers {
        for one in w.join().expect("a load thread") {
            t.merge(&one);
        }
    }
    // Each answer went into one histogram; `all` is their sum.
    let (won, lost) = (t.won.clone(), t.lost.clone());
    t.all.add(&won).expect("same bounds");
    t.all.add(&lost).expect("same bounds");
    let elapsed = plan.start.elapsed().as_secs_f64();
    let span = plan
        .offsets
        .last()
        .map_or(0.0, |d| d.as_secs_f64())
        .max(1e-9);
    let mut out = serde_json::json!({
            "scheduled": plan.offsets.len(),
            "sent": t.sent,
            "offered_per_s": plan.offsets.len() as f64 / span,
            "achieved_per_s": t.all.len() as f64 / elapsed,
            "seconds": elapsed,
            "max_send_lag_ms": t.max_lag.as_secs_f64() * 1e3,
            "errors": t.errors,
            "other_status": t.other_status,
            "winners": t.won.len(),
            "last_win_ms": t.last_win.as_secs_f64() * 1e3,
            "all": percentiles(&t.all),
            "won": percentiles(&t.won),
            "lost": percentiles(&t.lost),
    });
    if a.timeline_ms > 0 {
        out["timeline"] = timeline(&t.points, a.timeline_ms);
    }
    println!("{out}");
}

//! Edit-to-browser latency on a 10,000-item sale: `flashsale serve` against
//! `hugo server` (its peer, same content and equivalent templates), both with
//! live reload, in one run.
//!
//! For each edit the item's Markdown file gets a new title; the time is from
//! just before the write to the moment the reloaded page's DOM is ready in
//! headless Chromium (the page's own navigation timestamp, so polling does not
//! blur it). Goal: at most 200 ms for flashsale.
//!
//!     cargo bench --bench edit_latency [-- ITEMS EDITS]

#[path = "../tests/integration/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::webdriver::Browser;

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

fn work_dir() -> PathBuf {
    let base = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            if Path::new("/dev/shm").is_dir() {
                PathBuf::from("/dev/shm/flashsale-latency")
            } else {
                std::env::temp_dir().join("flashsale-latency")
            }
        });
    let _ = std::fs::remove_dir_all(&base);
    base
}

/// Edits `file`'s title `edits` times; returns each edit's latency in ms.
fn measure(browser: &Browser, page_url: &str, file: &Path, edits: usize) -> Vec<f64> {
    browser.goto(page_url);
    browser.wait_until(
        "return document.readyState === 'complete'",
        Duration::from_secs(30),
    );
    // Let the live-reload connection settle.
    std::thread::sleep(Duration::from_millis(1500));
    let original = std::fs::read_to_string(file).unwrap();
    let title_line = original
        .lines()
        .find(|l| l.starts_with("title = "))
        .unwrap()
        .to_string();
    let mut out = Vec::new();
    for i in 0..edits {
        let title = format!("Edited title {i} {}", Instant::now().elapsed().as_nanos());
        let text = original.replace(&title_line, &format!("title = \"{title}\""));
        let t0 = now_ms();
        std::fs::write(file, text).unwrap();
        let check = format!("return !!document.querySelector('h1') && document.querySelector('h1').textContent === {title:?}");
        browser.wait_until(&check, Duration::from_secs(20));
        let shown = browser.eval(
            "const n = performance.getEntriesByType('navigation')[0]; return performance.timeOrigin + n.domContentLoadedEventEnd;",
        );
        out.push(shown.as_f64().unwrap() - t0);
        std::thread::sleep(Duration::from_millis(400));
    }
    std::fs::write(file, original).unwrap();
    out
}

fn summary(name: &str, v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = s[s.len() / 2];
    println!(
        "{name:<22} median {median:7.1} ms   min {:7.1} ms   max {:7.1} ms   ({} edits)",
        s[0],
        s[s.len() - 1],
        s.len()
    );
    median
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_http(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while common::http().get(url).call().is_err() {
        assert!(Instant::now() < deadline, "{url} did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let items: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let edits: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let work = work_dir();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    println!("generating {items} items in {}", work.display());
    let ok = Command::new("python3")
        .arg(repo.join("bench/gen.py"))
        .arg(items.to_string())
        .arg(&work)
        .status()
        .expect("python3");
    assert!(ok.success());
    let slug = format!("item-{:05}", items / 2);
    let browser = Browser::start();

    // flashsale serve
    let started = Instant::now();
    let server = common::Server::start(&work.join("sale"), &[]);
    println!(
        "flashsale serve ready in {:.1} s (includes the full build)",
        started.elapsed().as_secs_f64()
    );
    let fs = measure(
        &browser,
        &server.url(&format!("/items/{slug}/")),
        &work.join(format!("sale/items/{slug}.md")),
        edits,
    );
    // The listing page with that item was re-rendered too.
    let listing = (items / 2) / 48 + 1;
    // The listing page holding that item follows its title (restored last).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, _, body) = common::get(&server.url(&format!("/page/{listing}/")));
        let text = String::from_utf8_lossy(&body);
        if text.contains(&format!("Item {} ", items / 2)) && !text.contains("Edited title") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "listing page {listing} did not follow the edits"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    drop(server);

    // hugo server, the peer
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let hugo = Proc(
        Command::new("hugo")
            .args([
                "server",
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--baseURL",
                &format!("http://127.0.0.1:{port}/"),
            ])
            .current_dir(work.join("hugo"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("hugo (Debian package `hugo`)"),
    );
    wait_http(&format!("http://127.0.0.1:{port}/"));
    println!(
        "hugo server ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let hu = measure(
        &browser,
        &format!("http://127.0.0.1:{port}/items/{slug}/"),
        &work.join(format!("hugo/content/items/{slug}.md")),
        edits,
    );
    drop(hugo);

    println!();
    let a = summary("flashsale serve", &fs);
    let b = summary("hugo server", &hu);
    println!("ratio flashsale/hugo (median): {:.2}", a / b);
    println!(
        "goal (flashsale median <= 200 ms, every edit <= 200 ms): {}",
        if fs.iter().all(|v| *v <= 200.0) {
            "met"
        } else {
            "NOT met"
        }
    );
    let _ = std::fs::remove_dir_all(&work);
}

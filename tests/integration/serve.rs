//! `serve` through the real binary: manifest headers, path safety, and
//! rebuild + live reload of only what an edit affects.

use std::io::BufRead;
use std::sync::mpsc;
use std::time::Duration;

use crate::common::*;

fn manifest(sale: &Sale) -> serde_json::Value {
    serde_json::from_str(&sale.read("public/manifest.json")).unwrap()
}

#[test]
fn serves_every_file_with_the_manifest_headers() {
    let sale = Sale::new();
    let server = Server::start(sale.path(), &[]);
    let m = manifest(&sale);
    for f in m["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        let url_path = path.strip_suffix("index.html").unwrap_or(path);
        let (status, headers, body) = get(&server.url(&format!("/{url_path}")));
        assert_eq!(status, 200, "{path}");
        for (k, v) in f["headers"].as_object().unwrap() {
            assert_eq!(
                headers.get(&k.to_ascii_lowercase()).map(String::as_str),
                v.as_str(),
                "{k} of {path}"
            );
        }
        assert!(
            headers.contains_key("date"),
            "the runtime corrects clock skew from Date"
        );
        let on_disk = std::fs::read(sale.path().join("public").join(path)).unwrap();
        if path.ends_with(".html") {
            // The preview adds its live-reload script; the file itself never has it.
            assert!(String::from_utf8_lossy(&body).contains("/__flashsale/live"));
            assert!(!String::from_utf8_lossy(&on_disk).contains("/__flashsale/live"));
        } else {
            assert_eq!(body, on_disk, "{path}");
        }
    }
    let (status, headers, body) = get(&server.url("/sale.js?v=abc123"));
    assert_eq!(status, 200);
    assert_eq!(
        headers["cache-control"],
        "public, max-age=0, s-maxage=1, must-revalidate"
    );
    assert!(String::from_utf8_lossy(&body).contains("pending"));
    let (status, _, body) = get(&server.url("/no/such/page/"));
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("Page not found"));
    let (status, headers, _) = get(&server.url("/items/a-1"));
    assert_eq!(status, 301);
    assert_eq!(headers["location"], "/items/a-1/");
}

#[test]
fn never_serves_outside_public() {
    let sale = Sale::new();
    sale.write("secret.txt", "TOP-SECRET-CONTENT");
    let server = Server::start(sale.path(), &[]);
    for path in [
        "/../secret.txt",
        "/../site.toml",
        "/%2e%2e/secret.txt",
        "/%2E%2E/site.toml",
        "/items/%2e%2e/%2e%2e/secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/..%5csecret.txt",
        "/items/a-1/%00",
        "/%ff%fe",
        "//etc/passwd",
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let status = raw_request(&server.base, request.as_bytes());
        assert!(
            status.starts_with("HTTP/1.1 404") || status.starts_with("HTTP/1.1 400"),
            "{path}: {status}"
        );
    }
    // A file in the manifest replaced by a link to outside is not followed.
    let ended = sale.path().join("public/ended.html");
    std::fs::remove_file(&ended).unwrap();
    std::os::unix::fs::symlink(sale.path().join("secret.txt"), &ended).unwrap();
    let (status, _, body) = get(&server.url("/ended.html"));
    assert_eq!(status, 404);
    assert!(!String::from_utf8_lossy(&body).contains("TOP-SECRET"));
    // Other methods are refused.
    let status = raw_request(
        &server.base,
        b"DELETE /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(status.starts_with("HTTP/1.1 405"), "{status}");
}

/// Reads the live-reload stream on a thread; yields each `data:` payload.
fn live_events(server: &Server) -> mpsc::Receiver<serde_json::Value> {
    use std::io::Write;
    let mut stream =
        std::net::TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
    stream
        .write_all(b"GET /__flashsale/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let (subscribed, ready) = mpsc::channel();
    std::thread::spawn(move || {
        // Chunk-size lines and headers are not `data:` lines; skip them.
        for line in std::io::BufReader::new(stream)
            .lines()
            .map_while(Result::ok)
        {
            // The stream's first frame: from here on no rebuild is missed.
            if line.starts_with("retry:") {
                let _ = subscribed.send(());
            }
            if let Some(data) = line.strip_prefix("data: ") {
                let ev = serde_json::from_str(data).unwrap_or_else(
                    |e| serde_json::json!({ "unparsable": data, "why": e.to_string() }),
                );
                if tx.send(ev).is_err() {
                    return;
                }
            }
        }
    });
    ready
        .recv_timeout(Duration::from_secs(10))
        .expect("the live-reload stream never started");
    rx
}

#[track_caller]
fn next_event(server: &Server, rx: &mpsc::Receiver<serde_json::Value>) -> serde_json::Value {
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(ev) => ev,
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the live-reload stream closed"),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let said: Vec<String> = server.lines.try_iter().collect();
            panic!(
                "no live-reload event within 10 s at {}; serve said: {said:?}",
                std::panic::Location::caller()
            );
        }
    }
}

fn changed(ev: &serde_json::Value) -> Vec<String> {
    ev["changed"]
        .as_array()
        .unwrap_or_else(|| panic!("not a change: {ev}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn body(server: &Server, path: &str) -> String {
    String::from_utf8(get(&server.url(path)).2).unwrap()
}

#[test]
fn edits_rebuild_only_what_they_affect_and_reload_those_pages() {
    let sale = Sale::new();
    let server = Server::start(sale.path(), &["-v"]);
    let events = live_events(&server);
    let a_before = std::fs::metadata(sale.path().join("public/items/a-1/index.html"))
        .unwrap()
        .modified()
        .unwrap();

    // A description edit: only that item's page.
    sale.write(
        "items/b-2.md",
        &format!("{}\nNew paragraph.\n", item_md("B-2", "Beta", "2.50")),
    );
    let ev = next_event(&server, &events);
    assert_eq!(changed(&ev), vec!["/items/b-2/".to_string()], "{ev}");
    assert!(body(&server, "/items/b-2/").contains("New paragraph."));

    // A price edit: the item page and its listing page.
    sale.write("items/b-2.md", &item_md("B-2", "Beta", "2.25"));
    let ev = next_event(&server, &events);
    let mut c = changed(&ev);
    c.sort();
    assert_eq!(c, vec!["/".to_string(), "/items/b-2/".to_string()], "{ev}");
    assert!(body(&server, "/").contains("€2.25"));
    let a_after = std::fs::metadata(sale.path().join("public/items/a-1/index.html"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(a_before, a_after, "an unrelated page was rewritten");

    // A new item appears, a deleted one disappears.
    sale.write("items/d-4.md", &item_md("D-4", "Delta", "4.50"));
    let ev = next_event(&server, &events);
    assert!(changed(&ev).contains(&"/items/d-4/".to_string()), "{ev}");
    assert!(body(&server, "/").contains("Delta"));
    std::fs::remove_file(sale.path().join("items/a-1.md")).unwrap();
    let ev = next_event(&server, &events);
    assert!(changed(&ev).contains(&"/items/a-1/".to_string()), "{ev}");
    assert_eq!(get(&server.url("/items/a-1/")).0, 404);

    // A broken edit is reported to the page and the last good build stays up.
    sale.write(
        "items/b-2.md",
        &item_md("B-2", "Beta", "2.25").replace("stock = 10", "stok = 10"),
    );
    let ev = next_event(&server, &events);
    let err = ev["error"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error event: {ev}"));
    assert!(
        err.contains("items/b-2.md:6:1") && err.contains("stok"),
        "{err}"
    );
    assert!(body(&server, "/items/b-2/").contains("Beta"));
    server.wait_for_line("still serving", Duration::from_secs(5));

    // Template edits rebuild everything.
    let tpl = sale.path().join("templates/404.html");
    std::fs::create_dir_all(tpl.parent().unwrap()).unwrap();
    // Fixing it clears the error in open pages, even though no page changed.
    sale.write("items/b-2.md", &item_md("B-2", "Beta", "2.25"));
    let ev = next_event(&server, &events);
    assert_eq!(changed(&ev), Vec::<String>::new(), "{ev}");
    sale.write(
        "templates/404.html",
        "{% extends \"base.html\" %}{% block main %}<h1>Lost?</h1>{% endblock main %}",
    );
    let _ = next_event(&server, &events);
    let (status, _, b) = get(&server.url("/nowhere"));
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&b).contains("Lost?"));
}

//! `serve`: the local preview. Serves the output exactly as the manifest says
//! (same headers as production), rebuilds what an edit affects, and reloads
//! the browser pages that changed.
//!
//! Only paths listed in the manifest are served, after percent-decoding and
//! refusing `..`, and only from inside the output directory (symlinks included).
//! With a sale (`--opens-in`), the whole sale runs here too: see `rehearsal`.

pub mod rehearsal;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use notify::{RecursiveMode, Watcher};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};

use crate::config::Config;
use crate::content;
use crate::manifest::Manifest;
use crate::site::{self, Report, Site};
use rehearsal::{Rehearsal, SaleOptions};

/// The live-reload event stream's path; never a path in the output.
pub const LIVE_PATH: &str = "/__flashsale/live";

/// What `serve` tells its caller about.
#[derive(Debug)]
pub enum Event {
    Listening(SocketAddr),
    Rebuilt {
        report: Report,
        full: bool,
        /// The edited files (empty for the first build).
        because: Vec<PathBuf>,
    },
    Failed(String),
    /// The preview sale's toggle switched (`open`, `ended`) and why.
    Switched {
        state: &'static str,
        why: String,
    },
    /// The preview sale is scheduled.
    SaleScheduled {
        start: String,
        end: String,
        journal: PathBuf,
    },
    Request {
        method: String,
        path: String,
        status: u16,
    },
}

pub struct Options {
    pub config: PathBuf,
    pub addr: SocketAddr,
    pub watch: bool,
    /// Run the whole sale in the preview.
    pub sale: Option<SaleOptions>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Build(#[from] site::Error),
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("cannot watch the sale's files: {0}")]
    Watch(#[from] notify::Error),
    #[error(transparent)]
    Gate(#[from] crate::gate::Error),
}

type Notify = Arc<dyn Fn(Event) + Send + Sync>;

/// What the HTTP side reads; replaced as a whole after each rebuild.
struct Served {
    root: PathBuf,
    base_path: String,
    files: Manifest,
}

struct Shared {
    served: RwLock<Arc<Served>>,
    /// The preview sale, and how it changes the configuration on every load.
    sale: Option<(Arc<Rehearsal>, SaleOptions, String)>,

    live: broadcast::Sender<String>,
    /// The last rebuild failed (open pages show its error).
    failed: AtomicBool,
    notify: Notify,
}

/// Loads the configuration, as changed by a preview sale.
fn load_config(path: &Path, sale: Option<&(SaleOptions, String)>) -> Result<Config, site::Error> {
    let mut config = Config::load(path)?;
    if let Some((opts, origin)) = sale {
        opts.apply(&mut config, origin);
    }
    Ok(config)
}

/// Builds, then serves until the process is stopped.
pub async fn run(
    opts: Options,
    notify: impl Fn(Event) + Send + Sync + 'static,
) -> Result<(), Error> {
    let notify: Notify = Arc::new(notify);
    let listener = TcpListener::bind(opts.addr)
        .await
        .map_err(|error| Error::Listen {
            addr: opts.addr,
            error,
        })?;
    let addr = listener.local_addr().map_err(|error| Error::Listen {
        addr: opts.addr,
        error,
    })?;
    let sale_cfg = opts.sale.clone().map(|s| (s, format!("http://{addr}")));
    let config = load_config(&opts.config, sale_cfg.as_ref())?;
    let mut site = Site::from_config(config)?;
    let report = site.build()?;
    notify(Event::Rebuilt {
        report,
        full: true,
        because: Vec::new(),
    });
    let sale = match &sale_cfg {
        Some((sale_opts, origin)) => {
            let rehearsal = Arc::new(Rehearsal::start(&site.config, &site.items, sale_opts)?);
            notify(Event::SaleScheduled {
                start: site.config.start.to_rfc3339(),
                end: site.config.end.to_rfc3339(),
                journal: rehearsal.journal().clone(),
            });
            let n = notify.clone();
            tokio::spawn(
                rehearsal
                    .clone()
                    .run(site.config.clone(), move |state, why| {
                        n(Event::Switched { state, why })
                    }),
            );
            Some((rehearsal, sale_opts.clone(), origin.clone()))
        }
        None => None,
    };
    let (live, _) = broadcast::channel(64);
    let shared = Arc::new(Shared {
        served: RwLock::new(Arc::new(served(&site))),
        sale,
        live,
        failed: AtomicBool::new(false),
        notify: notify.clone(),
    });
    if opts.watch {
        watch(site, opts.config.clone(), shared.clone())?;
    }
    notify(Event::Listening(addr));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            // Out of file descriptors and the like: wait a moment rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(&shared, req, peer).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn served(site: &Site) -> Served {
    let root = site
        .config
        .output_dir
        .canonicalize()
        .unwrap_or_else(|_| site.config.output_dir.clone());
    Served {
        root,
        base_path: site.config.base_path.clone(),
        files: site.manifest.clone(),
    }
}

type Body = Either<Full<Bytes>, LiveBody>;

async fn handle(shared: &Shared, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let method = req.method().clone();
    let raw_path = req.uri().path().to_string();
    let resp = match &shared.sale {
        Some((sale, _, _)) => with_sale(shared, sale, req, peer).await,
        None => respond(shared, &req),
    };
    (shared.notify)(Event::Request {
        method: method.to_string(),
        path: raw_path,
        status: resp.status().as_u16(),
    });
    resp
}

/// Routes orders to the in-process gate, serves the live toggle from memory,
/// and gives each browser a preview identity.
async fn with_sale(
    shared: &Shared,
    sale: &Rehearsal,
    mut req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let path = req.uri().path();
    if path.starts_with("/o/") {
        if let Some(user) = rehearsal::cookie_user(req.headers()) {
            if let Ok(v) = HeaderValue::from_str(&user) {
                req.headers_mut().insert("x-user-id", v);
            }
        }
        return sale.gate.handle(req, peer).await.map(Either::Left);
    }
    if path == "/__flashsale/metrics" {
        let mut r = Response::new(Either::Left(Full::new(Bytes::from(sale.gate.metrics()))));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        return r;
    }
    let served = shared.served.read().expect("lock poisoned").clone();
    let is_toggle =
        request_path(path, &served.base_path).as_deref() == Some(crate::headers::TOGGLE_PATH);
    let needs_cookie = rehearsal::cookie_user(req.headers()).is_none();
    let mut resp = match (is_toggle, sale.toggle.bytes()) {
        (true, Some(bytes)) if req.method() == Method::GET || req.method() == Method::HEAD => {
            let head = req.method() == Method::HEAD;
            let mut r = Response::new(Either::Left(Full::new(if head {
                Bytes::new()
            } else {
                Bytes::from(bytes.clone())
            })));
            if let Some(entry) = served.files.get(crate::headers::TOGGLE_PATH) {
                for (k, v) in &entry.headers {
                    if let (Ok(k), Ok(v)) = (
                        header::HeaderName::from_bytes(k.as_bytes()),
                        HeaderValue::from_str(v),
                    ) {
                        r.headers_mut().insert(k, v);
                    }
                }
            }
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            r
        }
        _ => respond(shared, &req),
    };
    let html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if needs_cookie && html {
        let cookie = format!(
            "{}=u{}; Path=/; SameSite=Lax",
            rehearsal::USER_COOKIE,
            crate::sale::random_hex(6)
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    resp
}

fn respond(shared: &Shared, req: &Request<Incoming>) -> Response<Body> {
    if req.uri().path() == LIVE_PATH {
        return live_stream(shared);
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let served = shared.served.read().expect("lock poisoned").clone();
    let head = req.method() == Method::HEAD;
    let Some(rel) = request_path(req.uri().path(), &served.base_path) else {
        return not_found(&served, head);
    };
    if served.files.get(&rel).is_some() {
        return file(&served, &rel, StatusCode::OK, head);
    }
    // `/items/x` → `/items/x/`, as a static host with index documents does.
    let dir_index = format!("{rel}/index.html");
    if !rel.is_empty() && !rel.ends_with("index.html") && served.files.get(&dir_index).is_some() {
        let mut r = plain(StatusCode::MOVED_PERMANENTLY, "");
        let location = format!("{}/", req.uri().path());
        if let Ok(v) = HeaderValue::from_str(&location) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return r;
    }
    not_found(&served, head)
}

/// The output path a request path names, or `None` for anything that is not a
/// plain path inside the sale (`..`, encoded or not, NUL, backslashes, bad UTF-8).
pub fn request_path(path: &str, base_path: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?;
    if decoded.contains(['\0', '\\']) {
        return None;
    }
    let inside = decoded
        .strip_prefix(base_path)
        .or_else(|| (decoded.as_ref() == base_path.trim_end_matches('/')).then_some(""))?;
    let mut parts = Vec::new();
    for seg in inside.split('/') {
        match seg {
            "" => {}
            "." | ".." => return None,
            s => parts.push(s),
        }
    }
    let mut rel = parts.join("/");
    if inside.is_empty() || inside.ends_with('/') {
        if !rel.is_empty() {
            rel.push('/');
        }
        rel.push_str("index.html");
    }
    Some(rel)
}

fn file(served: &Served, rel: &str, status: StatusCode, head: bool) -> Response<Body> {
    let Some(entry) = served.files.get(rel) else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let Some(bytes) = read_inside(&served.root, rel) else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let bytes = if rel.ends_with(".html") {
        inject_live_reload(bytes)
    } else {
        bytes
    };
    let len = bytes.len();
    let mut r = Response::new(Either::Left(Full::new(if head {
        Bytes::new()
    } else {
        Bytes::from(bytes)
    })));
    *r.status_mut() = status;
    let h = r.headers_mut();
    for (k, v) in &entry.headers {
        if let (Ok(k), Ok(v)) = (
            header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            h.insert(k, v);
        }
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    r
}

/// Reads `root/rel` only if its real path (symlinks resolved) is inside `root`.
fn read_inside(root: &Path, rel: &str) -> Option<Vec<u8>> {
    let real = root.join(rel).canonicalize().ok()?;
    if !real.starts_with(root) {
        return None;
    }
    std::fs::read(real).ok()
}

fn not_found(served: &Served, head: bool) -> Response<Body> {
    if served.files.get("404.html").is_some() {
        file(served, "404.html", StatusCode::NOT_FOUND, head)
    } else {
        plain(StatusCode::NOT_FOUND, "not found\n")
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(Either::Left(Full::new(Bytes::from_static(text.as_bytes()))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Only in the preview: a few lines that reload the page when it was rebuilt
/// and show build errors over it. Never part of the built output.
const LIVE_SCRIPT: &str = r#"<script>(function(){var es=new EventSource("/__flashsale/live");es.onmessage=function(e){var m=JSON.parse(e.data),o=document.getElementById("flashsale-error");if(m.error){if(!o){o=document.createElement("pre");o.id="flashsale-error";o.style.cssText="position:fixed;inset:auto 0 0 0;max-height:60vh;overflow:auto;margin:0;padding:1rem;background:#300;color:#fff;font:13px/1.4 monospace;z-index:99999;white-space:pre-wrap";document.body.appendChild(o)}o.textContent=m.error;return}if(o||m.changed.indexOf("*")>=0||m.changed.indexOf(location.pathname)>=0)location.reload()}})();</script>"#;

fn inject_live_reload(mut html: Vec<u8>) -> Vec<u8> {
    let at = memchr::memmem::rfind(&html, b"</body>").unwrap_or(html.len());
    html.splice(at..at, LIVE_SCRIPT.bytes());
    html
}

/// A server-sent event stream fed by a channel.
pub struct LiveBody(mpsc::Receiver<Bytes>);

impl http_body::Body for LiveBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|m| m.map(|b| Ok(Frame::data(b))))
    }
}

fn live_stream(shared: &Shared) -> Response<Body> {
    let (tx, rx) = mpsc::channel(16);
    let mut events = shared.live.subscribe();
    tokio::spawn(async move {
        if tx
            .send(Bytes::from_static(b"retry: 500\n\n"))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let msg = tokio::select! {
                m = events.recv() => m,
                // A comment line now and then notices closed connections.
                _ = tokio::time::sleep(Duration::from_secs(15)) => Ok(String::new()),
            };
            let frame = match msg {
                Ok(m) if m.is_empty() => Bytes::from_static(b": keep-alive\n\n"),
                Ok(m) => Bytes::from(format!("data: {m}\n\n")),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    Bytes::from_static(b"data: {\"changed\":[\"*\"]}\n\n")
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if tx.send(frame).await.is_err() {
                return;
            }
        }
    });
    let mut r = Response::new(Either::Right(LiveBody(rx)));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Watches the sale's sources on a thread of its own and rebuilds on change.
fn watch(site: Site, config_path: PathBuf, shared: Arc<Shared>) -> Result<(), Error> {
    let (tx, rx) = std::sync::mpsc::channel::<notify::Result<notify::Event>>();
    let mut sources = Sources {
        watcher: notify::recommended_watcher(tx)?,
        watched: Vec::new(),
    };
    sources
        .watcher
        .watch(&site.config.root, RecursiveMode::NonRecursive)?;
    sources.add_new(&site.config)?;
    let mut site = site;
    std::thread::spawn(move || {
        while let Ok(first) = rx.recv() {
            let mut paths = event_paths(first);
            // Editors write in bursts (temp file, rename, chmod): wait for a quiet moment.
            while let Ok(more) = rx.recv_timeout(Duration::from_millis(8)) {
                paths.extend(event_paths(more));
            }
            // The watcher reports absolute paths; the site knows them as configured.
            let mut paths: Vec<PathBuf> = paths
                .iter()
                .filter_map(|p| site.config.local_path(p))
                .collect();
            let output = site.config.output_dir.clone();
            paths.retain(|p| {
                relevant(
                    p,
                    &output,
                    &sources.watched,
                    &config_path,
                    site.config.items_dir.as_deref(),
                )
            });
            // A source directory that did not exist before (a first template, say).
            let created = sources.add_new(&site.config).unwrap_or_default();
            paths.extend(created);
            paths.sort();
            paths.dedup();
            if paths.is_empty() {
                continue;
            }
            rebuild(&mut site, &config_path, &paths, &shared);
            let _ = sources.add_new(&site.config);
        }
    });
    Ok(())
}

/// The watcher and the source directories it watches recursively.
struct Sources {
    watcher: notify::RecommendedWatcher,
    watched: Vec<PathBuf>,
}

impl Sources {
    /// Starts watching source directories that exist now and were not watched;
    /// returns them.
    fn add_new(&mut self, config: &crate::config::Config) -> Result<Vec<PathBuf>, notify::Error> {
        let root = &config.root;
        let mut dirs = vec![
            root.join("templates"),
            root.join("themes"),
            root.join("static"),
        ];
        dirs.extend(config.items_dir.clone());
        let mut added = Vec::new();
        for dir in dirs {
            let dir = config
                .local_path(&std::path::absolute(&dir).unwrap_or(dir.clone()))
                .unwrap_or(dir);
            if dir.is_dir() && !self.watched.contains(&dir) {
                self.watcher.watch(&dir, RecursiveMode::Recursive)?;
                self.watched.push(dir.clone());
                added.push(dir);
            }
        }
        Ok(added)
    }
}

fn event_paths(e: notify::Result<notify::Event>) -> Vec<PathBuf> {
    match e {
        Ok(e) if !matches!(e.kind, notify::EventKind::Access(_)) => e.paths,
        _ => Vec::new(),
    }
}

/// The configuration file and files in the source directories count; our own
/// output, editors' swap and backup files, and non-item files among the items
/// (`sed -i` temporaries) do not.
fn relevant(
    path: &Path,
    output: &Path,
    dirs: &[PathBuf],
    config: &Path,
    items: Option<&Path>,
) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let source = path.file_name() == config.file_name() || dirs.iter().any(|d| path.starts_with(d));
    let stray = items.is_some_and(|i| path.starts_with(i) && !content::is_item_file(path));
    source
        && !stray
        && !(path.starts_with(output)
            || name.starts_with('.')
            || name.ends_with('~')
            || name.ends_with(".swp")
            || name.ends_with(".tmp"))
}

fn rebuild(site: &mut Site, config_path: &Path, paths: &[PathBuf], shared: &Shared) {
    let only_items = site.config.items_dir.as_ref().is_some_and(|dir| {
        paths
            .iter()
            .all(|p| p.starts_with(dir) && content::is_item_file(p))
    });
    let result = if only_items {
        site.update_items(paths).map(|r| (r, false))
    } else {
        let sale = shared
            .sale
            .as_ref()
            .map(|(_, o, origin)| (o.clone(), origin.clone()));
        load_config(config_path, sale.as_ref())
            .and_then(Site::from_config)
            .and_then(|mut fresh| {
                let r = fresh.build()?;
                *site = fresh;
                Ok((r, true))
            })
    };
    match result {
        // Nothing to reload, unless a page shows the last build's error.
        Ok((report, _))
            if report.changes.written.is_empty()
                && report.changes.removed.is_empty()
                && !shared.failed.load(Ordering::Relaxed) => {}
        Ok((report, full)) => {
            *shared.served.write().expect("lock poisoned") = Arc::new(served(site));
            let base = &site.config.base_path;
            let changed: Vec<String> =
                if report.changes.written.len() + report.changes.removed.len() > 200 {
                    vec!["*".to_string()]
                } else {
                    report
                        .changes
                        .written
                        .iter()
                        .chain(&report.changes.removed)
                        .map(|p| url_of(base, p))
                        .collect()
                };
            shared.failed.store(false, Ordering::Relaxed);
            let _ = shared
                .live
                .send(serde_json::json!({ "changed": changed }).to_string());
            (shared.notify)(Event::Rebuilt {
                report,
                full,
                because: paths.to_vec(),
            });
        }
        Err(e) => {
            let text = e.to_string();
            shared.failed.store(true, Ordering::Relaxed);
            let _ = shared
                .live
                .send(serde_json::json!({ "error": text }).to_string());
            (shared.notify)(Event::Failed(text));
        }
    }
}

/// The URL path a browser shows for an output file.
fn url_of(base_path: &str, rel: &str) -> String {
    match rel.strip_suffix("index.html") {
        Some(dir) => format!("{base_path}{dir}"),
        None => format!("{base_path}{rel}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_stay_inside() {
        assert_eq!(request_path("/", "/").as_deref(), Some("index.html"));
        assert_eq!(
            request_path("/items/a/", "/").as_deref(),
            Some("items/a/index.html")
        );
        assert_eq!(request_path("/sale.js", "/").as_deref(), Some("sale.js"));
        assert_eq!(
            request_path("/items/%61/", "/").as_deref(),
            Some("items/a/index.html")
        );
        assert_eq!(request_path("/../etc/passwd", "/"), None);
        assert_eq!(request_path("/%2e%2e/etc/passwd", "/"), None);
        assert_eq!(request_path("/items/%2E%2E/%2e%2e/x", "/"), None);
        assert_eq!(request_path("/a%00b", "/"), None);
        assert_eq!(request_path("/a%5c..%5cb", "/"), None);
        assert_eq!(request_path("/%ff", "/"), None);
        assert_eq!(
            request_path("/shop", "/shop/").as_deref(),
            Some("index.html")
        );
        assert_eq!(request_path("/other/", "/shop/"), None);
    }

    #[test]
    fn live_reload_goes_before_body_end() {
        let html = inject_live_reload(b"<body><p>x</p></body></html>".to_vec());
        let s = String::from_utf8(html).unwrap();
        assert!(s.contains("</script></body>"), "{s}");
    }
}

//! The preview's HTTP side: the built files with their production headers,
//! the live-reload stream, and, with a sale, the in-process gate and the
//! toggle from memory.

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use percent_encoding::utf8_percent_encode;

use super::live::{self, LiveBody};
use super::preview::{cookie_user, PreviewSale, USER_COOKIE};
use super::{Event, Served, Shared};
use crate::config::headers::TOGGLE_PATH;
use crate::sale::draw::PUBLISHED;
use crate::util::sync::{lock, read};

/// What a redirect's path must encode (a request path decoded may hold any of it).
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'%');

type Body = Either<Full<Bytes>, LiveBody>;

pub(super) async fn handle(
    shared: &Shared,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
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
    sale: &PreviewSale,
    mut req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let path = req.uri().path();
    if path.starts_with("/o/") {
        if let Some(v) = cookie_user(req.headers()).and_then(|u| HeaderValue::from_str(u).ok()) {
            req.headers_mut().insert("x-user-id", v);
        }
        return sale.gate.handle(req, peer).await.map(Either::Left);
    }
    if path == "/__flashsale/metrics" {
        let mut r = Response::new(Either::Left(Full::new(Bytes::from(sale.gate.metrics()))));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(crate::util::prometheus::CONTENT_TYPE),
        );
        return r;
    }
    let served = read(&shared.served).clone();
    let rel = request_path(path, &served.base_path);
    if rel.as_deref() == Some(PUBLISHED) {
        return published_draw(sale);
    }
    let is_toggle = rel.as_deref() == Some(TOGGLE_PATH);
    let needs_cookie = cookie_user(req.headers()).is_none();
    let mut resp = match (is_toggle, sale.store.bytes(TOGGLE_PATH)) {
        (true, Some(bytes)) if req.method() == Method::GET || req.method() == Method::HEAD => {
            let head = req.method() == Method::HEAD;
            let mut r = Response::new(Either::Left(Full::new(if head {
                Bytes::new()
            } else {
                Bytes::from(bytes.clone())
            })));
            if let Some(entry) = served.files.get(TOGGLE_PATH) {
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
            "{USER_COOKIE}=u{}; Path=/; SameSite=Lax",
            crate::util::random::hex(6)
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    resp
}

/// A fair start's published draw, as `draw publish` would upload it: the
/// in-process gate writes it into its journal after the draw.
fn published_draw(sale: &PreviewSale) -> Response<Body> {
    match std::fs::read(sale.journal().join(PUBLISHED)) {
        Ok(bytes) => {
            let mut r = Response::new(Either::Left(Full::new(Bytes::from(bytes))));
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
        Err(_) => plain(StatusCode::NOT_FOUND, "not drawn yet\n"),
    }
}

fn respond(shared: &Shared, req: &Request<Incoming>) -> Response<Body> {
    if req.uri().path() == live::PATH {
        let failed = lock(&shared.failed).clone();
        return live::stream(&shared.live, failed);
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let served = read(&shared.served).clone();
    let head = req.method() == Method::HEAD;
    let Some(rel) = request_path(req.uri().path(), &served.base_path) else {
        return not_found(&served, head);
    };
    if served.files.get(&rel).is_some() {
        return file(&served, &rel, StatusCode::OK, head);
    }
    // `/items/x` → `/items/x/`, as a static host with index documents does.
    if let Some(location) = redirect_to_directory(&served, req.uri().path()) {
        let mut r = plain(StatusCode::MOVED_PERMANENTLY, "");
        if let Ok(v) = HeaderValue::from_str(&location) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return r;
    }
    not_found(&served, head)
}

/// Where a request for a directory without its `/` goes: built from the
/// normalised path, so `//items/x` never becomes `//items/x/` (to a browser,
/// a URL on the host `items`).
fn redirect_to_directory(served: &Served, path: &str) -> Option<String> {
    let rel = request_path(path, &served.base_path)?;
    let dir_index = format!("{rel}/index.html");
    (!rel.is_empty() && !rel.ends_with("index.html") && served.files.get(&dir_index).is_some())
        .then(|| {
            format!(
                "{}{}/",
                served.base_path,
                utf8_percent_encode(&rel, PATH_SEGMENT)
            )
        })
}

/// The output path a request path names, or `None` for anything that is not a
/// plain path inside the sale (`..`, encoded or not, NUL, backslashes, bad UTF-8).
pub(super) fn request_path(path: &str, base_path: &str) -> Option<String> {
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
        live::inject(bytes)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_on_this_host() {
        let served = Served {
            root: std::path::PathBuf::from("/nonexistent"),
            base_path: "/".into(),
            files: crate::site::manifest::Manifest::new(
                "t",
                vec![crate::site::manifest::Entry {
                    path: "items/mug-01/index.html".into(),
                    sha256: String::new(),
                    size: 0,
                    class: crate::config::headers::Class::Page,
                    headers: Default::default(),
                }],
            ),
        };
        for path in ["/items/mug-01", "//items/mug-01", "//items//mug-01"] {
            let r = redirect_to_directory(&served, path).unwrap_or_else(|| panic!("{path}"));
            assert_eq!(r, "/items/mug-01/", "{path}");
        }
    }

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
}

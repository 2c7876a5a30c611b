//! The one HTTP(S) client: the toggle as the CDN serves it, gates' metrics,
//! the order system's webhook, and the load generator. Bounded in time and
//! size; connections are pooled and sent without Nagle's delay.
//!
//! HTTPS trusts the system's root certificates. A machine without any (a
//! slim container image) still speaks plain HTTP — an order system on the
//! same host or network — and refuses each `https://` URL saying why.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::root_cause;

/// What came back.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// The `Date` header, if any.
    pub(crate) date: Option<String>,
    /// The `Age` header (seconds in a shared cache), if any.
    pub(crate) age: Option<u64>,
    pub(crate) body: Vec<u8>,
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("`{url}` needs TLS, but this machine has no root certificates ({why}): install them (Debian: the ca-certificates package) or point SSL_CERT_FILE at a PEM bundle")]
    NoRoots { url: String, why: String },
    #[error("`{url}` is not a URL: {why}")]
    BadUrl { url: String, why: String },
    #[error("no answer within {} s", .0.as_secs_f64())]
    Timeout(Duration),
    #[error("{0}")]
    Transport(String),
    #[error("reading the body: {0}")]
    Body(String),
}

#[derive(Clone)]
pub(crate) struct Client {
    inner: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<HttpConnector>,
        Full<Bytes>,
    >,
    max_body: usize,
    /// Why the system's root certificates could not be loaded, if they could not.
    no_roots: Option<Arc<str>>,
}

impl Client {
    /// A client keeping a few idle connections per host, reading at most 1 MiB.
    pub(crate) fn new() -> Client {
        Self::with_pool(8, 1 << 20)
    }

    /// A client keeping up to `idle` connections per host (a load generator
    /// wants one per request in flight), reading at most `max_body` bytes.
    pub(crate) fn with_pool(idle: usize, max_body: usize) -> Client {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        let (tls, no_roots) = match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
            Ok(tls) => (tls, None),
            // No roots: nothing can be verified, so nothing https is tried
            // (`check` and `send` refuse it); plain http works as ever.
            Err(e) => (
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                ),
                Some(Arc::from(e.to_string())),
            ),
        };
        let https = tls.https_or_http().enable_http1().wrap_connector(http);
        Client {
            inner: hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(idle)
                .build(https),
            max_body,
            no_roots,
        }
    }

    /// Whether requests to `url` can be made at all: it parses, and if it is
    /// `https://`, this machine has root certificates to verify it with.
    pub(crate) fn check(&self, url: &str) -> Result<hyper::Uri, HttpError> {
        let uri: hyper::Uri =
            url.parse()
                .map_err(|e: hyper::http::uri::InvalidUri| HttpError::BadUrl {
                    url: url.to_string(),
                    why: e.to_string(),
                })?;
        match &self.no_roots {
            Some(why) if uri.scheme() == Some(&hyper::http::uri::Scheme::HTTPS) => {
                Err(HttpError::NoRoots {
                    url: url.to_string(),
                    why: why.to_string(),
                })
            }
            _ => Ok(uri),
        }
    }

    pub(crate) async fn get(&self, url: &str, timeout: Duration) -> Result<Response, HttpError> {
        self.send(hyper::Method::GET, url, &[], Bytes::new(), timeout)
            .await
    }

    /// Sends one request with extra headers and a body; the whole exchange,
    /// body included, within `timeout`.
    pub(crate) async fn send(
        &self,
        method: hyper::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        let uri = self.check(url)?;
        let mut req = hyper::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body)).map_err(|e| HttpError::BadUrl {
            url: url.to_string(),
            why: e.to_string(),
        })?;
        let work = async {
            let resp = self
                .inner
                .request(req)
                .await
                .map_err(|e| HttpError::Transport(root_cause(&e)))?;
            let status = resp.status().as_u16();
            let date = resp
                .headers()
                .get(hyper::header::DATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let age = resp
                .headers()
                .get(hyper::header::AGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok());
            let body = Limited::new(resp.into_body(), self.max_body)
                .collect()
                .await
                .map_err(|e| HttpError::Body(e.to_string()))?
                .to_bytes()
                .to_vec();
            Ok(Response {
                status,
                date,
                age,
                body,
            })
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| HttpError::Timeout(timeout))?
    }
}

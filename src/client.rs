//! A small HTTP(S) client for talking to the outside: the toggle as the CDN
//! serves it, gates' metrics, the order system's webhook. Bounded in time and
//! size; connections are pooled.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// What came back.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// The `Date` header, if any.
    pub date: Option<String>,
    pub body: Vec<u8>,
}

const MAX_BODY: usize = 1 << 20;

#[derive(Clone)]
pub struct HttpClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl HttpClient {
    pub fn new() -> Result<HttpClient, String> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("no TLS root certificates: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(HttpClient {
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    pub async fn get(&self, url: &str, timeout: Duration) -> Result<Response, String> {
        self.send(hyper::Method::GET, url, &[], Bytes::new(), timeout)
            .await
    }

    /// POSTs a JSON body with extra headers.
    pub async fn post_json(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Response, String> {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.send(hyper::Method::POST, url, &all, Bytes::from(body), timeout)
            .await
    }

    async fn send(
        &self,
        method: hyper::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<Response, String> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let mut req = hyper::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
        let work = async {
            let resp = self.client.request(req).await.map_err(|e| root_cause(&e))?;
            let status = resp.status().as_u16();
            let date = resp
                .headers()
                .get(hyper::header::DATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| format!("reading the body: {e}"))?
                .to_bytes()
                .to_vec();
            Ok(Response { status, date, body })
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| format!("no answer within {} s", timeout.as_secs_f64()))?
    }
}

/// GETs `url` with a one-off client.
pub async fn get(url: &str, timeout: Duration) -> Result<Response, String> {
    HttpClient::new()?.get(url, timeout).await
}

/// The innermost error message, which is the one that says what happened.
pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut last = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        last = e.to_string();
        cur = e.source();
    }
    last
}

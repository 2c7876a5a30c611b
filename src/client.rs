//! A small HTTP(S) GET for checks that look from the outside: the toggle as
//! the CDN serves it, a gate's metrics. Bounded in time and size.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
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

/// GETs `url` (http or https, system roots) within `timeout`.
pub async fn get(url: &str, timeout: Duration) -> Result<Response, String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("no TLS root certificates: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let work = async {
        let resp = client.get(uri).await.map_err(|e| root_cause(&e))?;
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
        .map_err(|_| format!("no answer within {} s", timeout.as_secs()))?
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut last = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        last = e.to_string();
        cur = e.source();
    }
    last
}

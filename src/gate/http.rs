//! The gate's routes, on two listeners. The public one ([`Gate::handle`])
//! answers orders only: `POST /o/<sale>/<token>` (`order`) and `OPTIONS`,
//! its CORS preflight; anything else is 404 — what is left of the stock,
//! the draw's entries and the ledger's state are no bot's business. The
//! admin one ([`Gate::handle_admin`], loopback by default): `GET /healthz`
//! says whether the gate takes orders, `GET /metrics` is the Prometheus
//! page. Both take any request body, so tests drive them in-process with a
//! request value, no socket.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body::Body;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::answer::{text, Answer};
use super::stock::Admission;
use super::Gate;
use crate::util::prometheus;

impl Gate {
    /// Answers one request on the public listener.
    pub(crate) async fn handle<B>(self: &Arc<Self>, req: Request<B>, peer: SocketAddr) -> Answer
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = req.uri().path();
        if path.starts_with("/o/") {
            return match *req.method() {
                Method::POST => {
                    let started = std::time::Instant::now();
                    let (outcome, resp) = self.order(req, peer).await;
                    self.requests.count(outcome);
                    self.order_latency
                        .observe(started.elapsed().as_micros() as u64);
                    resp
                }
                Method::OPTIONS => self.answers.preflight(),
                _ => text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n"),
            };
        }
        text(StatusCode::NOT_FOUND, "not found\n")
    }

    /// Answers one request on the admin listener: health and metrics.
    pub(crate) fn handle_admin<B>(&self, req: &Request<B>) -> Answer {
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/healthz") => self.health(),
            (&Method::GET, "/metrics") => {
                let mut r = Response::new(Full::new(Bytes::from(self.metrics())));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(prometheus::CONTENT_TYPE),
                );
                r
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    /// 200 while the gate takes orders, else 503 and why.
    fn health(&self) -> Answer {
        if self.recorder.failed() {
            text(StatusCode::SERVICE_UNAVAILABLE, "journal failed\n")
        } else if !self.stock.ready() {
            text(StatusCode::SERVICE_UNAVAILABLE, "ledger unavailable\n")
        } else if self.draining() {
            text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
        } else {
            text(StatusCode::OK, "ok\n")
        }
    }
}

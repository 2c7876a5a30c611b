//! The gate's HTTP answers. [`Gate::handle`] takes any request body, so tests
//! drive the whole handler in-process with a request value, no socket.
//!
//! `POST /o/<sale>/<token>` is checked in order, each step cheap and lock-free
//! on the common path: unknown sale or bad token (404), no identity (401) or
//! two (400), another site's page (`Origin`, 403), body over 4 KiB (413), over
//! the per-client rate limit (429), body not there in time (408), no item
//! named (400). A winner asking again is answered with their order from here
//! on, whatever follows. Then: outside the window by the gate's own clock
//! (403), journal failed or shutting down (503), unknown item (404), and the
//! admission decides: a repeat gets the user's first answer, a new winner is
//! journaled (group commit) before the 303/200, everyone else gets the
//! sold-out answer. On the refusal paths nothing is allocated but the answer.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::admission::{Admission, Ticket, Verdict};
use super::draw::{Entered, DRAW_GRACE};
use super::identity::Ambiguous;
use super::journal::{JournalError, Winner};
use super::metrics::Outcome;
use super::Gate;
use crate::sale::authentic;
use crate::util::prometheus;

/// Largest order body accepted.
pub(crate) const MAX_BODY: usize = 4 * 1024;

/// Longest item id looked up.
const MAX_SKU: usize = 64;

type Answer = Response<Full<Bytes>>;

/// The order token last found authentic. Every customer posts to the same
/// order URL, so its MAC is checked once rather than per request (that check
/// was ~9 % of the gate's CPU under load). Compared in constant time all the
/// same; a different token, or a forged one, goes through the MAC as before.
#[derive(Default)]
pub(super) struct KnownToken(std::sync::RwLock<Option<Box<str>>>);

impl KnownToken {
    fn is(&self, token: &str) -> bool {
        use subtle::ConstantTimeEq;
        let known = self.0.read().unwrap_or_else(|e| e.into_inner());
        known
            .as_deref()
            .is_some_and(|k| bool::from(k.as_bytes().ct_eq(token.as_bytes())))
    }

    fn remember(&self, token: &str) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(token.into());
    }
}

impl<L: Admission> Gate<L> {
    /// Answers one request.
    pub(crate) async fn handle<B>(self: &Arc<Self>, req: Request<B>, peer: SocketAddr) -> Answer
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = req.uri().path();
        if path.starts_with("/o/") {
            return match *req.method() {
                Method::POST => {
                    let (outcome, resp) = self.order(req, peer).await;
                    self.requests.count(outcome);
                    resp
                }
                Method::OPTIONS => self.preflight(),
                _ => text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n"),
            };
        }
        match (req.method(), path) {
            (&Method::GET, "/healthz") => {
                if self.journal.failed() {
                    text(StatusCode::SERVICE_UNAVAILABLE, "journal failed\n")
                } else if !self.stock.ready() {
                    text(StatusCode::SERVICE_UNAVAILABLE, "ledger unavailable\n")
                } else if self.draining.load(Ordering::Relaxed) {
                    text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
                } else {
                    text(StatusCode::OK, "ok\n")
                }
            }
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

    async fn order<B>(self: &Arc<Self>, req: Request<B>, peer: SocketAddr) -> (Outcome, Answer)
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = req.into_parts();
        let rest = parts.uri.path().strip_prefix("/o/").unwrap_or_default();
        let json = parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json"));
        let refuse = |outcome: Outcome, status: StatusCode, msg: &'static str| {
            (outcome, self.cors(text(status, msg)))
        };
        let unavailable = || {
            refuse(
                Outcome::Unavailable,
                StatusCode::SERVICE_UNAVAILABLE,
                "the gate cannot take orders now\n",
            )
        };
        let Some((url_sale, token)) = rest.split_once('/') else {
            return refuse(Outcome::NotFound, StatusCode::NOT_FOUND, "not found\n");
        };
        if url_sale != self.sale
            || !(self.known_token.is(token) || {
                let ok = authentic(&self.key, &self.sale, url_sale, token).is_ok();
                if ok {
                    self.known_token.remember(token);
                }
                ok
            })
        {
            return refuse(Outcome::NotFound, StatusCode::NOT_FOUND, "not found\n");
        }
        let user = match self.identify.user(&parts.headers) {
            Ok(Some(user)) => user,
            Ok(None) => {
                return refuse(
                    Outcome::NoIdentity,
                    StatusCode::UNAUTHORIZED,
                    "sign in to the shop first\n",
                )
            }
            Err(Ambiguous) => {
                return refuse(
                    Outcome::BadRequest,
                    StatusCode::BAD_REQUEST,
                    "more than one identity in one order\n",
                )
            }
        };
        // A browser says where a request comes from: only the sale's own
        // pages may order (a cross-site form would order in a shopper's name).
        if let Some(origin) = parts.headers.get(header::ORIGIN) {
            if origin != self.cors_origin {
                return refuse(
                    Outcome::CrossSite,
                    StatusCode::FORBIDDEN,
                    "orders come from the sale's own pages\n",
                );
            }
        }
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY as u64) {
            return refuse(
                Outcome::TooLarge,
                StatusCode::PAYLOAD_TOO_LARGE,
                "order too large\n",
            );
        }
        if let Some(limiter) = &self.limiter {
            if !limiter.allow(&parts.headers, peer) {
                return refuse(
                    Outcome::RateLimited,
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many requests; try again in a moment\n",
                );
            }
        }
        let query_sku = parts.uri.query().and_then(|q| sku_of(q.as_bytes()));
        let body = tokio::time::timeout(self.body_timeout, Limited::new(body, MAX_BODY).collect());
        let body = match body.await {
            Err(_) => {
                let mut r = text(
                    StatusCode::REQUEST_TIMEOUT,
                    "the order took too long to arrive\n",
                );
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                return (Outcome::TooSlow, self.cors(r));
            }
            Ok(b) => b,
        };
        let body = match body {
            Ok(b) => b.to_bytes(),
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                return refuse(
                    Outcome::TooLarge,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "order too large\n",
                );
            }
            Err(_) => {
                return refuse(
                    Outcome::BadRequest,
                    StatusCode::BAD_REQUEST,
                    "incomplete request\n",
                )
            }
        };
        let Some(sku) = query_sku.or_else(|| sku_of(&body)) else {
            return refuse(
                Outcome::BadRequest,
                StatusCode::BAD_REQUEST,
                "which item? send sku=...\n",
            );
        };
        // A winner asking again gets their order, whatever else holds now:
        // after the end, with the journal failed, while shutting down.
        if let Some(t) = self.stock.winner(&sku, user) {
            return if t.is_durable().await {
                (Outcome::Repeat, self.won(&t, json))
            } else {
                unavailable()
            };
        }
        let now = chrono::Utc::now().timestamp_millis();
        if !self.window.contains(now) {
            return refuse(
                Outcome::OutsideWindow,
                StatusCode::FORBIDDEN,
                "the sale is not open\n",
            );
        }
        if self.journal.failed() || self.draining.load(Ordering::Relaxed) {
            return unavailable();
        }
        // A fair start: in the window this order is an entry, held until the
        // draw; after it, nobody is admitted before the draw is done.
        let mut entrant = false;
        if let Some(d) = self.draw.as_ref().filter(|d| !d.is_done()) {
            if !d.sells(&sku) {
                return refuse(Outcome::NotFound, StatusCode::NOT_FOUND, "no such item\n");
            }
            match d.enter(&sku, user).await {
                Ok(Entered::Yes) => entrant = true,
                Ok(Entered::No) => {}
                Err(_) => return unavailable(),
            }
            let left = Duration::from_millis((d.until_ms - now).max(0) as u64);
            if !d
                .done(tokio::time::Instant::now() + left + DRAW_GRACE)
                .await
            {
                return unavailable();
            }
        }
        match self.stock.admit(&sku, user, || self.next_order()).await {
            Verdict::NoSuchItem => {
                refuse(Outcome::NotFound, StatusCode::NOT_FOUND, "no such item\n")
            }
            Verdict::SoldOut => match &self.draw {
                Some(d) if entrant || d.entered(&sku, user) => {
                    (Outcome::NotDrawn, self.lost(json, "not_drawn"))
                }
                _ => (Outcome::SoldOut, self.lost(json, "sold_out")),
            },
            Verdict::Repeat(t) => {
                // The first answer may still be waiting for the disk: never acknowledge before it.
                if t.is_durable().await {
                    let drawn = if entrant {
                        Outcome::Won
                    } else {
                        Outcome::Repeat
                    };
                    (drawn, self.won(&t, json))
                } else {
                    unavailable()
                }
            }
            Verdict::Unavailable => unavailable(),
            Verdict::Won(t) => match self.record(&t, &sku, user).await {
                Ok(()) => {
                    tracing::info!(order = &*t.order, sku = &*sku, "won");
                    (Outcome::Won, self.won(&t, json))
                }
                Err(_) => unavailable(),
            },
            Verdict::Adopt(t) => match self.record(&t, &sku, user).await {
                Ok(()) => (Outcome::Repeat, self.won(&t, json)),
                Err(_) => unavailable(),
            },
        }
    }

    /// Journals a winner (fsynced) before it is answered, and tells the
    /// admission it is on disk.
    pub(super) async fn record(
        self: &Arc<Self>,
        t: &Ticket,
        sku: &str,
        user: &str,
    ) -> Result<(), JournalError> {
        let winner = Winner {
            order: t.order.to_string(),
            sale: self.sale.clone(),
            sku: sku.to_string(),
            user: user.to_string(),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            gate: self.gate_id.clone(),
        };
        // In a task of its own: a client that hangs up must not leave the
        // record unconfirmed (its repeats wait for it).
        let (gate, ticket) = (self.clone(), t.clone());
        let written = tokio::spawn(async move {
            let r = gate.journal.append(winner.clone()).await;
            if r.is_ok() {
                gate.stock.recorded(&winner);
            }
            ticket.set_durable(r.is_ok());
            r
        })
        .await
        .unwrap_or(Err(JournalError::Failed));
        if let Err(e) = &written {
            tracing::error!(error = %e, "journal_failed");
        }
        written
    }

    fn won(&self, t: &Ticket, json: bool) -> Answer {
        let mut r = if json {
            // Order ids are `<gate id>-<number>`, both checked at start: no escaping needed.
            let body = format!("{{\"status\":\"won\",\"order\":\"{}\"}}", t.order);
            with_type(
                Response::new(Full::new(Bytes::from(body))),
                "application/json",
            )
        } else if let Some(url) = &self.confirm_url {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::SEE_OTHER;
            if let Ok(v) = HeaderValue::from_str(&url.replace("{order}", &t.order)) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        } else {
            let body = format!(
                "<!doctype html><meta charset=utf-8><title>You got it</title><h1>You got it!</h1><p>Your order number is <strong>{}</strong>. The shop will confirm it shortly.</p>",
                t.order
            );
            with_type(
                Response::new(Full::new(Bytes::from(body))),
                "text/html; charset=utf-8",
            )
        };
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        self.cors(r)
    }

    /// Everyone else's answer: `status` is `sold_out`, or `not_drawn` for an
    /// entrant of a fair start's draw.
    fn lost(&self, json: bool, status: &'static str) -> Answer {
        let mut r = if json {
            let body = match status {
                "not_drawn" => &b"{\"status\":\"not_drawn\"}"[..],
                _ => &b"{\"status\":\"sold_out\"}"[..],
            };
            with_type(
                Response::new(Full::new(Bytes::from_static(body))),
                "application/json",
            )
        } else {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::SEE_OTHER;
            r.headers_mut()
                .insert(header::LOCATION, self.ended_location.clone());
            r
        };
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        self.cors(r)
    }

    /// The shop's pages (another origin) may read the answer, with cookies.
    fn cors(&self, mut r: Answer) -> Answer {
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            self.cors_origin.clone(),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        r
    }

    fn preflight(&self) -> Answer {
        let mut r = text(StatusCode::NO_CONTENT, "");
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Content-Type, Accept"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        self.cors(r)
    }
}

fn with_type(mut r: Answer, content_type: &'static str) -> Answer {
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn text(status: StatusCode, msg: &'static str) -> Answer {
    let mut r = with_type(
        Response::new(Full::new(Bytes::from_static(msg.as_bytes()))),
        "text/plain; charset=utf-8",
    );
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The `sku` field of an `a=1&b=2` form: trimmed, non-empty, at most 64
/// bytes, and valid UTF-8 once decoded (borrowed unless it was encoded).
fn sku_of(form: &[u8]) -> Option<Cow<'_, str>> {
    let (_, v) = form_urlencoded::parse(form).find(|(k, _)| k == "sku")?;
    // Invalid UTF-8 decodes to U+FFFD: not an item anyone sells.
    if v.contains('\u{FFFD}') {
        return None;
    }
    let v = match v {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) => Cow::Owned(s.trim().to_string()),
    };
    (!v.is_empty() && v.len() <= MAX_SKU).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_decode() {
        assert_eq!(sku_of(b"sku=MUG-01&quantity=1").as_deref(), Some("MUG-01"));
        assert_eq!(sku_of(b"quantity=1&sku=A%2D1").as_deref(), Some("A-1"));
        assert_eq!(sku_of(b"sku=+A+").as_deref(), Some("A"));
        assert_eq!(sku_of(b"sku=%ff"), None);
        assert_eq!(sku_of(b"sk=1"), None);
        assert_eq!(sku_of(format!("sku={}", "x".repeat(65)).as_bytes()), None);
    }
}

//! One order, `POST /o/<sale>/<token>`, as a ladder of small steps, each
//! cheap and lock-free on the common path; the first that refuses answers:
//! unknown sale or bad token (404), no identity (401) or two (400), another
//! site's page (`Origin`, 403), body over 4 KiB (413), over the per-client
//! rate limit (429), body not there in time (408), no item named (400).
//! Then [`Gate::admit`]: a winner asking again is answered with their order
//! whatever follows; outside the window by the gate's clock (403), journal
//! failed or shutting down (503), a fair start's entry held until the draw,
//! unknown item (404); and the stock decides: a repeat gets the user's first
//! answer, a new winner is recorded (fsync) before the 303/200, everyone else
//! gets the sold-out answer. On the refusal paths nothing is allocated but
//! the answer.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Request, StatusCode};

use super::answer::{text, Answer};
use super::draw::{Entered, StartDraw, DRAW_GRACE};
use super::identity::Ambiguous;
use super::metrics::Outcome;
use super::stock::{Admission, Ticket, Verdict};
use super::Gate;
use crate::sale::{authentic_under, OrderKey};
use crate::util::sync::{read, write};

/// Largest order body accepted.
pub(crate) const MAX_BODY: usize = 4 * 1024;

/// Longest item id looked up.
const MAX_SKU: usize = 64;

/// An order's answer, with the outcome it is counted under.
type Answered = (Outcome, Answer);

/// Why a step of the ladder ends the order: answered as short text.
#[derive(Debug, Clone, Copy)]
struct Refusal {
    outcome: Outcome,
    status: StatusCode,
    msg: &'static str,
}

const fn refusal(outcome: Outcome, status: StatusCode, msg: &'static str) -> Refusal {
    Refusal {
        outcome,
        status,
        msg,
    }
}

const NOT_FOUND: Refusal = refusal(Outcome::NotFound, StatusCode::NOT_FOUND, "not found\n");
const NO_SUCH_ITEM: Refusal = refusal(Outcome::NotFound, StatusCode::NOT_FOUND, "no such item\n");
const TOO_LARGE: Refusal = refusal(
    Outcome::TooLarge,
    StatusCode::PAYLOAD_TOO_LARGE,
    "order too large\n",
);
const TOO_SLOW: Refusal = refusal(
    Outcome::TooSlow,
    StatusCode::REQUEST_TIMEOUT,
    "the order took too long to arrive\n",
);
const UNAVAILABLE: Refusal = refusal(
    Outcome::Unavailable,
    StatusCode::SERVICE_UNAVAILABLE,
    "the gate cannot take orders now\n",
);

/// A step of the ladder: what it found, or why the order ends there.
type Step<T> = Result<T, Refusal>;

/// How a fair start's window ends an order early: refused, or answered at
/// once that it is in the draw (with a receipt): an entrant who asked for
/// one (`receipt=1`; the page does) or one asking again.
enum DrawStep {
    Refused(Refusal),
    Entered,
}

/// What the client asked for besides an item.
#[derive(Clone, Copy)]
struct Asks {
    /// A JSON answer (`Accept: application/json`), not a page or redirect.
    json: bool,
    /// In a fair start's window: the entry's receipt at once, the result
    /// when asked again after the draw (`receipt=1` in the form).
    receipt: bool,
}

/// The order token's check. Every customer posts to the same order URL, so
/// the token last found authentic is kept and later ones compared to it (in
/// constant time): the MAC is computed once per token, not per request (that
/// was ~9 % of the gate's CPU under load). A different token, or a forged
/// one, goes through the MAC as before.
pub(super) struct TokenCheck {
    key: OrderKey,
    known: std::sync::RwLock<Option<Box<str>>>,
}

impl TokenCheck {
    pub(super) fn new(key: OrderKey) -> TokenCheck {
        TokenCheck {
            key,
            known: Default::default(),
        }
    }

    /// Whether `token` in an order URL of `url_sale` is this gate's sale's.
    pub(super) fn accepts(&self, sale: &str, url_sale: &str, token: &str) -> bool {
        use subtle::ConstantTimeEq;
        if url_sale != sale {
            return false;
        }
        let known = read(&self.known)
            .as_deref()
            .is_some_and(|k| bool::from(k.as_bytes().ct_eq(token.as_bytes())));
        if known {
            return true;
        }
        let ok = authentic_under(&self.key, sale, url_sale, token).is_ok();
        if ok {
            *write(&self.known) = Some(token.into());
        }
        ok
    }
}

impl Gate {
    /// Answers one order, with its outcome.
    pub(super) async fn order<B>(self: &Arc<Self>, req: Request<B>, peer: SocketAddr) -> Answered
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = req.into_parts();
        let steps = async {
            self.token(parts.uri.path())?;
            // Only a trusted proxy's headers name the client and the user.
            let proxied = self.proxies.trust(peer.ip());
            let user = self.user(&parts.headers, peer, proxied)?;
            self.same_site(&parts.headers)?;
            self.declared_size(&parts.headers)?;
            self.rate(&parts.headers, peer, proxied)?;
            let query_sku = parts.uri.query().and_then(|q| sku_of(q.as_bytes()));
            let body = self.body(body).await?;
            let (body_sku, receipt) = read_form(&body);
            let sku = query_sku.or(body_sku).ok_or(refusal(
                Outcome::BadRequest,
                StatusCode::BAD_REQUEST,
                "which item? send sku=...\n",
            ))?;
            let asks = Asks {
                json: wants_json(&parts.headers),
                receipt,
            };
            Ok(self.admit(&sku, user, asks).await)
        };
        match steps.await {
            Ok(a) => a,
            Err(r) => self.refused(r),
        }
    }

    /// The path names this sale and carries its token.
    fn token(&self, path: &str) -> Step<()> {
        let rest = path.strip_prefix("/o/").unwrap_or_default();
        match rest.split_once('/') {
            Some((url_sale, token)) if self.token.accepts(&self.sale, url_sale, token) => Ok(()),
            _ => Err(NOT_FOUND),
        }
    }

    /// Exactly one identity; a header identity only from a trusted proxy
    /// (from anyone else it is the client's own claim: refused, 401).
    fn user<'h>(&self, headers: &'h HeaderMap, peer: SocketAddr, proxied: bool) -> Step<&'h str> {
        let named = self.identify.user(headers);
        if !proxied && self.identify.by_header() {
            let claimed = !matches!(named, Ok(None));
            if claimed && !self.untrusted_identity.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    peer = %peer.ip(),
                    "an order from a peer that is not a trusted proxy: its identity header is not believed (401); if this peer is your load balancer, add it to [gate] trusted_proxies (logged once)"
                );
            }
            return Err(refusal(
                Outcome::NoIdentity,
                StatusCode::UNAUTHORIZED,
                "sign in to the shop first\n",
            ));
        }
        match named {
            Ok(Some(user)) => Ok(user),
            Ok(None) => Err(refusal(
                Outcome::NoIdentity,
                StatusCode::UNAUTHORIZED,
                "sign in to the shop first\n",
            )),
            Err(Ambiguous) => Err(refusal(
                Outcome::BadRequest,
                StatusCode::BAD_REQUEST,
                "more than one identity in one order\n",
            )),
        }
    }

    /// A browser says where a request comes from: only the sale's own pages
    /// may order (a cross-site form would order in a shopper's name).
    fn same_site(&self, headers: &HeaderMap) -> Step<()> {
        match headers.get(header::ORIGIN) {
            Some(origin) if !self.answers.is_own(origin) => Err(refusal(
                Outcome::CrossSite,
                StatusCode::FORBIDDEN,
                "orders come from the sale's own pages\n",
            )),
            _ => Ok(()),
        }
    }

    /// A body announced as too large is refused before it is read.
    fn declared_size(&self, headers: &HeaderMap) -> Step<()> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY as u64) {
            return Err(TOO_LARGE);
        }
        Ok(())
    }

    /// The per-client rate limit, if `[gate] rate_limit` is set.
    fn rate(&self, headers: &HeaderMap, peer: SocketAddr, proxied: bool) -> Step<()> {
        match &self.limiter {
            Some(limiter) if !limiter.allow(headers, peer, proxied) => Err(refusal(
                Outcome::RateLimited,
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests; try again in a moment\n",
            )),
            _ => Ok(()),
        }
    }

    /// The whole body, at most [`MAX_BODY`], within the body timeout.
    async fn body<B>(&self, body: B) -> Step<Bytes>
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        // A small order's body usually came with its headers: taken at once,
        // without arming a timer; else within the body timeout.
        let mut collect = std::pin::pin!(Limited::new(body, MAX_BODY).collect());
        let at_once = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::future::Future::poll(collect.as_mut(), cx))
        })
        .await;
        let read = match at_once {
            std::task::Poll::Ready(r) => Ok(r),
            std::task::Poll::Pending => tokio::time::timeout(self.body_timeout, collect).await,
        };
        match read {
            Err(_) => Err(TOO_SLOW),
            Ok(Ok(b)) => Ok(b.to_bytes()),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(TOO_LARGE),
            Ok(Err(_)) => Err(refusal(
                Outcome::BadRequest,
                StatusCode::BAD_REQUEST,
                "incomplete request\n",
            )),
        }
    }

    /// Everything about the order is in order: who gets a unit.
    async fn admit(self: &Arc<Self>, sku: &str, user: &str, asks: Asks) -> Answered {
        let json = asks.json;
        // A winner asking again gets their order, whatever else holds now:
        // after the end, with the journal failed, while shutting down.
        if let Some(t) = self.stock.winner(sku, user) {
            return self.again(&t, json, Outcome::Repeat).await;
        }
        let now = self.clock.now_ms();
        if !self.window.contains(now) {
            return self.refused(refusal(
                Outcome::OutsideWindow,
                StatusCode::FORBIDDEN,
                "the sale is not open\n",
            ));
        }
        if self.recorder.failed() || self.draining() {
            return self.refused(UNAVAILABLE);
        }
        let entrant = match self.draw.as_deref().filter(|d| !d.is_done()) {
            None => false,
            Some(d) => match self.through_draw(d, sku, user, now, asks.receipt).await {
                Ok(entrant) => entrant,
                Err(DrawStep::Refused(r)) => return self.refused(r),
                Err(DrawStep::Entered) => {
                    let receipt = d.receipt(sku, user);
                    return (
                        Outcome::Entered,
                        self.answers.entered(json, d.until_ms, &receipt),
                    );
                }
            },
        };
        let verdict = self.stock.admit(sku, user, &*self.recorder).await;
        match verdict {
            // The flood after the last unit: answered without another await.
            Verdict::SoldOut => self.lost(sku, user, json, entrant),
            verdict => self.decided(verdict, sku, user, json, entrant).await,
        }
    }

    /// A fair start: in the window this order is an entry, held until the
    /// draw (or answered at once with its receipt, if it asked for one);
    /// after it, nobody is admitted before the draw is done. Whether this
    /// order is an entry.
    async fn through_draw(
        &self,
        d: &StartDraw,
        sku: &str,
        user: &str,
        now: i64,
        receipt: bool,
    ) -> Result<bool, DrawStep> {
        if !d.sells(sku) {
            return Err(DrawStep::Refused(NO_SUCH_ITEM));
        }
        let (entrant, _held) = match d.enter(sku, user).await {
            // Asked for a receipt: answered now, held when it asks again.
            Ok(Entered::Yes) if receipt => return Err(DrawStep::Entered),
            // Held until the draw, unless another request of theirs is.
            Ok(Entered::Yes) => match d.hold(sku, user) {
                Some(held) => (true, Some(held)),
                None => return Err(DrawStep::Entered),
            },
            Ok(Entered::No) => (false, None),
            Err(_) => return Err(DrawStep::Refused(UNAVAILABLE)),
        };
        let left = Duration::from_millis((d.until_ms - now).max(0) as u64);
        if !d
            .done(tokio::time::Instant::now() + left + DRAW_GRACE)
            .await
        {
            return Err(DrawStep::Refused(UNAVAILABLE));
        }
        Ok(entrant)
    }

    /// The stock's verdict, answered: a new winner recorded first.
    async fn decided(
        self: &Arc<Self>,
        verdict: Verdict,
        sku: &str,
        user: &str,
        json: bool,
        entrant: bool,
    ) -> Answered {
        match verdict {
            Verdict::NoSuchItem => self.refused(NO_SUCH_ITEM),
            Verdict::SoldOut => self.lost(sku, user, json, entrant),
            // A drawn entrant is a repeat of the draw's admission: counted won.
            Verdict::Repeat(t) if entrant => self.again(&t, json, Outcome::Won).await,
            Verdict::Repeat(t) => self.again(&t, json, Outcome::Repeat).await,
            Verdict::Unavailable => self.refused(UNAVAILABLE),
            Verdict::Won(t) => match self.recorder.record(&t, sku, user).await {
                Ok(()) => {
                    // The journal holds every winner; a log line each cost
                    // ~4 µs of the one thread answering the rush.
                    tracing::debug!(order = &*t.order, sku, "won");
                    (Outcome::Won, self.answers.won(&t, json))
                }
                Err(_) => self.refused(UNAVAILABLE),
            },
            Verdict::Adopt(t) => match self.recorder.record(&t, sku, user).await {
                Ok(()) => (Outcome::Repeat, self.answers.won(&t, json)),
                Err(_) => self.refused(UNAVAILABLE),
            },
        }
    }

    /// Everyone else's answer: not drawn (an entrant of the draw) or sold out.
    fn lost(&self, sku: &str, user: &str, json: bool, entrant: bool) -> Answered {
        match &self.draw {
            Some(d) if entrant || d.entered(sku, user) => {
                (Outcome::NotDrawn, self.answers.lost(json, "not_drawn"))
            }
            _ => (Outcome::SoldOut, self.answers.lost(json, "sold_out")),
        }
    }

    /// A winner's order again, never before the first answer is on disk.
    async fn again(&self, t: &Ticket, json: bool, outcome: Outcome) -> Answered {
        if t.is_durable().await {
            (outcome, self.answers.won(t, json))
        } else {
            self.refused(UNAVAILABLE)
        }
    }

    /// A refusal's answer: short text, readable by the sale's pages; a body
    /// too slow to arrive also closes the connection.
    fn refused(&self, r: Refusal) -> Answered {
        let mut answer = text(r.status, r.msg);
        if r.outcome == Outcome::TooSlow {
            answer
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        (r.outcome, self.answers.cors(answer))
    }
}

/// The page's runtime asks for JSON; a form without scripts does not.
pub(super) fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"))
}

/// An order form's two fields, read in one pass: its item (as [`sku_of`])
/// and whether it asks for a fair start's receipt (`receipt=1`).
fn read_form(form: &[u8]) -> (Option<Cow<'_, str>>, bool) {
    let (mut sku, mut receipt) = (None, false);
    for (k, v) in form_urlencoded::parse(form) {
        match &*k {
            "sku" if sku.is_none() => sku = Some(v),
            "receipt" => receipt |= v == "1",
            _ => {}
        }
    }
    (sku.and_then(valid_sku), receipt)
}

/// The `sku` field of an `a=1&b=2` form: trimmed, non-empty, at most 64
/// bytes, and valid UTF-8 once decoded (borrowed unless it was encoded).
pub(super) fn sku_of(form: &[u8]) -> Option<Cow<'_, str>> {
    let (_, v) = form_urlencoded::parse(form).find(|(k, _)| k == "sku")?;
    valid_sku(v)
}

/// A form's `sku` value, if it can name an item (see [`sku_of`]).
fn valid_sku(v: Cow<'_, str>) -> Option<Cow<'_, str>> {
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

    #[test]
    fn a_form_is_read_once_for_its_item_and_its_receipt() {
        let (sku, receipt) = read_form(b"receipt=1&sku=A%2D1&sku=B");
        assert_eq!((sku.as_deref(), receipt), (Some("A-1"), true));
        let (sku, receipt) = read_form(b"sku=%ff&receipt=0");
        assert_eq!(
            (sku.as_deref(), receipt),
            (None, false),
            "the first sku decides"
        );
        assert_eq!(read_form(b"quantity=1").0, None);
    }
}

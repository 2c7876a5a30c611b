//! What customers are told: a winner's order (JSON, a redirect to the
//! shop's confirmation page, or a small page), everyone else's "sold out" or
//! "not drawn" (JSON, or a redirect to the static ended page), refusals as
//! short text; every answer `no-store` and readable by the sale's own pages
//! (CORS, with cookies).

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use super::stock::Ticket;
use super::Error;
use crate::config::Config;
use crate::sale::draw::Receipt;

pub(super) type Answer = Response<Full<Bytes>>;

/// What stays as it is in a URL's path or query value: RFC 3986's unreserved.
const URL_PART: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The parts of the answers that come from the configuration.
pub(super) struct Answers {
    /// `[gate] confirm_url`, with `{order}` in it.
    confirm_url: Option<String>,
    /// `[gate] ended_url`.
    ended_location: HeaderValue,
    /// The origin whose pages may order.
    cors_origin: HeaderValue,
    /// The losers' answers, made once: sold out and not drawn, as JSON and
    /// as the redirect (the flood after the last unit is answered by copying).
    lost: [Fixed; 4],
}

/// An answer that never changes: its parts, copied for each request.
#[derive(Default)]
struct Fixed {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: Bytes,
}

impl Fixed {
    fn of(r: Answer) -> Fixed {
        let (parts, body) = r.into_parts();
        let body = futures_util::FutureExt::now_or_never(http_body_util::BodyExt::collect(body))
            .and_then(Result::ok)
            .map_or_else(Bytes::new, |b| b.to_bytes());
        Fixed {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    fn answer(&self) -> Answer {
        let mut r = Response::new(Full::new(self.body.clone()));
        *r.status_mut() = self.status;
        *r.headers_mut() = self.headers.clone();
        r
    }
}

impl Answers {
    /// From `[gate]`; `origin` overrides base_url's origin.
    pub(super) fn new(config: &Config, origin: Option<&str>) -> Result<Answers, Error> {
        let header = |value: &str, what: &'static str| {
            HeaderValue::from_str(value).map_err(|_| Error::HeaderValue {
                what,
                value: value.to_string(),
            })
        };
        let origin = origin.map_or_else(|| config.origin(), str::to_string);
        let mut answers = Answers {
            confirm_url: config.gate.confirm_url.clone(),
            ended_location: header(&config.gate.ended_url, "ended_url")?,
            cors_origin: header(&origin, "base_url origin")?,
            lost: Default::default(),
        };
        answers.lost = [
            Fixed::of(answers.make_lost(true, "sold_out")),
            Fixed::of(answers.make_lost(false, "sold_out")),
            Fixed::of(answers.make_lost(true, "not_drawn")),
            Fixed::of(answers.make_lost(false, "not_drawn")),
        ];
        Ok(answers)
    }

    /// Whether a request's `Origin` is the sale's own pages'.
    pub(super) fn is_own(&self, origin: &HeaderValue) -> bool {
        *origin == self.cors_origin
    }

    pub(super) fn won(&self, t: &Ticket, json: bool) -> Answer {
        // The order id is escaped for each answer, whatever its source: in
        // a fleet it comes from Redis or a replayed journal, not only from
        // this gate's checked id.
        let mut r = if json {
            let order = serde_json::to_string(&*t.order).expect("a string serialises");
            let body = format!("{{\"status\":\"won\",\"order\":{order}}}");
            with_type(
                Response::new(Full::new(Bytes::from(body))),
                "application/json",
            )
        } else if let Some(url) = &self.confirm_url {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::SEE_OTHER;
            let order = percent_encoding::utf8_percent_encode(&t.order, URL_PART).to_string();
            if let Ok(v) = HeaderValue::from_str(&url.replace("{order}", &order)) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        } else {
            let body = format!(
                "<!doctype html><meta charset=utf-8><title>You got it</title><h1>You got it!</h1><p>Your order number is <strong>{}</strong>. The shop will confirm it shortly.</p>",
                crate::util::html::escape(&t.order)
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
    /// entrant of a fair start's draw (a copy of the one made at start).
    pub(super) fn lost(&self, json: bool, status: &'static str) -> Answer {
        let n = usize::from(!json) + if status == "not_drawn" { 2 } else { 0 };
        self.lost[n].answer()
    }

    fn make_lost(&self, json: bool, status: &'static str) -> Answer {
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

    /// An entrant in a fair start's window: in the draw, with its receipt,
    /// the result at `result_at_ms` (202; JSON for the page, text for a form).
    pub(super) fn entered(&self, json: bool, result_at_ms: i64, receipt: &Receipt) -> Answer {
        let receipt = serde_json::to_string(receipt).expect("plain data serialises");
        let mut r = if json {
            let body = format!(
                "{{\"status\":\"entered\",\"result_at\":{result_at_ms},\"receipt\":{receipt}}}"
            );
            with_type(
                Response::new(Full::new(Bytes::from(body))),
                "application/json",
            )
        } else {
            let at = chrono::DateTime::from_timestamp_millis(result_at_ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            let body = format!(
                "You are in the draw; ask again after {at} for its result.\nYour receipt (keep it to check the published draw): {receipt}\n"
            );
            with_type(
                Response::new(Full::new(Bytes::from(body))),
                "text/plain; charset=utf-8",
            )
        };
        *r.status_mut() = StatusCode::ACCEPTED;
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        self.cors(r)
    }

    /// The shop's pages (another origin) may read the answer, with cookies.
    pub(super) fn cors(&self, mut r: Answer) -> Answer {
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

    pub(super) fn preflight(&self) -> Answer {
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

pub(super) fn with_type(mut r: Answer, content_type: &'static str) -> Answer {
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub(super) fn text(status: StatusCode, msg: &'static str) -> Answer {
    let mut r = with_type(
        Response::new(Full::new(Bytes::from_static(msg.as_bytes()))),
        "text/plain; charset=utf-8",
    );
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

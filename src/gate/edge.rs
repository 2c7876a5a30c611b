//! The part of an order's ladder an edge can apply before a request reaches
//! a gate (a CloudFront Function sees the method, the path, the headers and
//! the cookies, never the body), made of the gate's own steps: the same
//! token check, the same identity, the same `Origin` rule, the same item
//! field and window. `edge` generates the function and holds it to these
//! rules request by request; a request the edge lets through meets the
//! whole ladder at a gate, which stays the authority.

use std::collections::HashSet;

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::Method;

use super::identity::{Ambiguous, Identify};
use super::order::{sku_of, wants_json, TokenCheck};
use crate::config::{Config, Identity};
use crate::sale::{OrderKey, Window};

/// What an edge does with an order request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// To the gates, unchanged.
    Pass,
    /// Refused at the edge with this status, as a gate would refuse it.
    Refuse(u16),
    /// The sale is closed or sold out: the sold-out answer (JSON for the
    /// page's runtime, else a 303 to the ended page).
    Ended { json: bool },
}

/// The rules of one sale, from its configuration and its order key.
pub(crate) struct EdgeRules {
    sale: String,
    token: TokenCheck,
    /// Only a signed cookie can be checked at the edge: a trusted proxy's
    /// header may be set behind it.
    identify: Option<Identify>,
    origin: HeaderValue,
    window: Window,
    items: HashSet<String>,
    /// From when the edge may answer the sold-out way once the sale is
    /// marked ended ([`EdgeRules::ended_from`]).
    ended_from: i64,
}

/// After a fair start's draw, entrants ask again for their result: the
/// edge leaves those answers to the gates this long past the window.
pub(crate) const DRAW_RESULTS_MS: i64 = 60_000;

impl EdgeRules {
    pub(crate) fn new(
        config: &Config,
        key: OrderKey,
        cookie_key: Option<Vec<u8>>,
        items: impl IntoIterator<Item = String>,
    ) -> Result<EdgeRules, super::Error> {
        let identify = match &config.gate.identity {
            Identity::Cookie(_) => Some(Identify::new(config.gate.identity.clone(), cookie_key)?),
            Identity::Header(_) => None,
        };
        let origin = config.origin();
        Ok(EdgeRules {
            sale: config.name.clone(),
            token: TokenCheck::new(key),
            identify,
            origin: HeaderValue::from_str(&origin).map_err(|_| super::Error::HeaderValue {
                what: "base_url origin",
                value: origin,
            })?,
            window: Window {
                start_ms: config.start.timestamp_millis(),
                end_ms: config.end.timestamp_millis(),
                tolerance_ms: config.gate.tolerance_ms,
            },
            items: items.into_iter().collect(),
            ended_from: Self::ended_from(config),
        })
    }

    /// The moment (Unix ms) from which an ended sale is answered at the
    /// edge: at once, or with a fair start [`DRAW_RESULTS_MS`] after its
    /// window (an entrant's result is the gate's to give: won or not drawn).
    pub(crate) fn ended_from(config: &Config) -> i64 {
        config
            .gate
            .fair_window_ms
            .map_or(0, |w| config.start.timestamp_millis() + w + DRAW_RESULTS_MS)
    }

    /// The edge's verdict on a request at `now_ms`, with the sale `ended`
    /// (closed or sold out) or not. `staged`: whether the edge has the
    /// sale's key material at all; an edge that has not heard of the sale
    /// passes everything (it must never refuse an honest buyer).
    pub(crate) fn verdict(
        &self,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        now_ms: i64,
        staged: bool,
        ended: bool,
    ) -> Verdict {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let Some(rest) = path.strip_prefix("/o/") else {
            return Verdict::Pass;
        };
        if *method == Method::OPTIONS || !staged {
            return Verdict::Pass;
        }
        if *method != Method::POST {
            return Verdict::Refuse(405);
        }
        // The gate's ladder, in its order, less what needs the body.
        let ours = rest
            .split_once('/')
            .is_some_and(|(sale, token)| self.token.accepts(&self.sale, sale, token));
        if !ours {
            return Verdict::Refuse(404);
        }
        if let Some(identify) = &self.identify {
            match identify.user(headers) {
                Ok(Some(_)) => {}
                Ok(None) => return Verdict::Refuse(401),
                // Two cookies: the gate says 400; an edge parses cookies its
                // own way, so it leaves that to the gate.
                Err(Ambiguous) => return Verdict::Pass,
            }
        }
        if headers
            .get(header::ORIGIN)
            .is_some_and(|o| *o != self.origin)
        {
            return Verdict::Refuse(403);
        }
        // Without the item in the query string it may be in the body: a gate's.
        let Some(sku) = sku_of(query.as_bytes()) else {
            return Verdict::Pass;
        };
        if !self.window.contains(now_ms) {
            return Verdict::Refuse(403);
        }
        if !self.items.contains(sku.as_ref()) {
            return Verdict::Refuse(404);
        }
        if ended && now_ms >= self.ended_from {
            return Verdict::Ended {
                json: wants_json(headers),
            };
        }
        Verdict::Pass
    }
}

//! The CDN's edge: a CloudFront Function (cloudfront-js-2.0, viewer
//! request) on the order path that sheds, before they reach a gate, the
//! requests every gate would refuse — a forged or another sale's order URL,
//! no signed identity, another site's page, outside the window, an item the
//! sale does not sell — and, once the sale is closed or sold out, the
//! losers' flood, answered the sold-out way. Everything else passes to the
//! gates unchanged: they stay the authority (one unit per customer, the
//! stock, the journal).
//!
//! The function is generated from `site.toml` ([`Edge::function`]); what it
//! reads is in the distribution's KeyValueStore ([`Edge::entries`]): the
//! sale's order key (`sale::OrderKey`, never the gate key), its window, the
//! shop's cookie key when identities are signed cookies, one key per item,
//! and `<sale>|ended` once `close` says so. Until those are staged the
//! function passes everything: an edge that has not heard of the sale never
//! refuses an honest buyer. `corpus` holds the function to the gate's own
//! rules (`gate::EdgeRules`) request by request, in a JavaScript engine.

pub(crate) mod corpus;
pub(crate) mod infra;

use crate::config::{Config, Identity};
use crate::sale::GateKey;

/// Most bytes a CloudFront Function's code may have.
pub(crate) const MAX_FUNCTION_BYTES: usize = 10 * 1024;

/// Most bytes of one KeyValueStore value.
pub(crate) const MAX_VALUE_BYTES: usize = 1024;

/// The function's template; `__SALE__` and the like are filled in.
const TEMPLATE: &str = include_str!("function.js");

/// One sale's edge, as `site.toml` describes it.
#[derive(Debug, Clone)]
pub(crate) struct Edge {
    pub(crate) sale: String,
    /// The identity cookie's name, when identities are signed cookies.
    pub(crate) cookie: Option<String>,
    /// The sale's pages' origin: the only `Origin` that may order, and the
    /// answers' CORS origin.
    pub(crate) origin: String,
    /// Where the sold-out answer sends a browser without JavaScript.
    pub(crate) ended_url: String,
}

/// Why the key material cannot be staged.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("identities are signed cookies ([gate] identity_cookie), but there is no cookie key: set $FLASHSALE_COOKIE_KEY")]
    NoCookieKey,
    #[error("the cookie key is {0} bytes; a KeyValueStore value holds at most {MAX_VALUE_BYTES}")]
    CookieKeyTooLong(usize),
}

impl Edge {
    pub(crate) fn new(config: &Config) -> Edge {
        Edge {
            sale: config.name.clone(),
            cookie: match &config.gate.identity {
                Identity::Cookie(name) => Some(name.clone()),
                Identity::Header(_) => None,
            },
            origin: config.origin(),
            ended_url: config.gate.ended_url.clone(),
        }
    }

    /// The function's code.
    pub(crate) fn function(&self) -> String {
        // Every value is checked config (a sale name, a cookie name, URLs);
        // quoted for a single-quoted JavaScript string all the same.
        let quoted = |s: &str| s.replace('\\', "\\\\").replace('\'', "\\'");
        TEMPLATE
            .replace("__SALE__", &quoted(&self.sale))
            .replace("__COOKIE__", &quoted(self.cookie.as_deref().unwrap_or("")))
            .replace("__ORIGIN__", &quoted(&self.origin))
            .replace("__ENDED__", &quoted(&self.ended_url))
    }

    /// What the KeyValueStore holds for the sale while it runs: its order
    /// key and window, the cookie key (cookie identities), one key per item.
    pub(crate) fn entries(
        &self,
        config: &Config,
        key: &GateKey,
        cookie_key: Option<&[u8]>,
        items: &[String],
    ) -> Result<Vec<(String, String)>, Error> {
        let conf = serde_json::json!({
            "k": key.order_key(&self.sale, config.start.timestamp_millis()).expose(),
            "s": config.start.timestamp_millis(),
            "e": config.end.timestamp_millis(),
            "t": config.gate.tolerance_ms,
            "d": crate::gate::EdgeRules::ended_from(config),
        });
        let mut out = vec![(self.sale.clone(), conf.to_string())];
        if self.cookie.is_some() {
            let k = cookie_key.ok_or(Error::NoCookieKey)?;
            let text = String::from_utf8_lossy(k).into_owned();
            if text.len() > MAX_VALUE_BYTES {
                return Err(Error::CookieKeyTooLong(text.len()));
            }
            out.push((format!("{}|ck", self.sale), text));
        }
        out.extend(
            items
                .iter()
                .map(|sku| (self.item_key(sku), "1".to_string())),
        );
        Ok(out)
    }

    /// The key that says the sale sells `sku`.
    pub(crate) fn item_key(&self, sku: &str) -> String {
        format!("{}|i|{sku}", self.sale)
    }

    /// The key `close` writes: the sale is closed or sold out.
    pub(crate) fn ended_key(&self) -> String {
        format!("{}|ended", self.sale)
    }
}

/// Puts the sale's keys in the store: its order key and window, the cookie
/// key, its items; and takes back an `ended` mark from an earlier run.
#[cfg(feature = "aws")]
pub(crate) async fn stage(
    edge: &Edge,
    store: &crate::store::kvs::KeyValueStore,
    entries: &[(String, String)],
) -> Result<crate::store::kvs::Written, crate::store::RemoteError> {
    store.update(entries, &[edge.ended_key()]).await
}

/// Marks the sale closed or sold out: from now the edge answers the losers.
#[cfg(feature = "aws")]
pub(crate) async fn end(
    edge: &Edge,
    store: &crate::store::kvs::KeyValueStore,
) -> Result<crate::store::kvs::Written, crate::store::RemoteError> {
    store.update(&[(edge.ended_key(), "1".into())], &[]).await
}

/// Takes every key of the sale out of the store (after the sale: the order
/// key has no business there any more).
#[cfg(feature = "aws")]
pub(crate) async fn clear(
    edge: &Edge,
    store: &crate::store::kvs::KeyValueStore,
    entries: &[(String, String)],
) -> Result<crate::store::kvs::Written, crate::store::RemoteError> {
    let mut keys: Vec<String> = entries.iter().map(|(k, _)| k.clone()).collect();
    keys.push(edge.ended_key());
    store.update(&[], &keys).await
}

/// A sale `demo` of one item, with `gate` added to its `[gate]`.
#[cfg(test)]
pub(crate) fn test_config(gate: &str) -> Config {
    let text = format!(
        "name = \"demo\"\nbase_url = \"https://sale.example.com/\"\nstart = 2026-12-12T20:00:00+08:00\nend = 2026-12-12T20:30:00+08:00\ncurrency = \"EUR\"\n[gate]\nurl = \"https://gate.example.com/\"\n{gate}\n[[items]]\nsku = \"A1\"\ntitle = \"Thing\"\nprice = 9.9\nstock = 3\n"
    );
    Config::parse(std::path::Path::new("site.toml"), text).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        test_config("identity_cookie = \"shop_user\"")
    }

    #[test]
    fn the_function_fits_and_the_store_holds_no_gate_key() {
        let c = config();
        let edge = Edge::new(&c);
        let code = edge.function();
        assert!(code.len() <= MAX_FUNCTION_BYTES, "{} bytes", code.len());
        assert!(!code.contains("__"), "every placeholder filled");
        assert!(code.contains("var SALE = 'demo';") && code.contains("var COOKIE = 'shop_user';"));
        let key = GateKey::generate();
        let entries = edge
            .entries(&c, &key, Some(b"shop-cookie-key"), &["A1".into()])
            .unwrap();
        let all: String = entries.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        assert!(!all.contains(key.to_file_text().trim()), "{all}");
        assert!(all.contains(key.order_key("demo", c.start.timestamp_millis()).expose()));
        assert!(entries.iter().all(|(_, v)| v.len() <= MAX_VALUE_BYTES));
        assert_eq!(entries.last().unwrap().0, "demo|i|A1");
        assert!(matches!(
            edge.entries(&c, &key, None, &[]),
            Err(Error::NoCookieKey)
        ));
    }
}

//! The order URL `open` mints and gates verify:
//! `<gate>/o/<sale>/<nonce>.<mac>` with `mac = HMAC-SHA256(order key,
//! "<sale>|<nonce>")`. It cannot be guessed before `open` mints it, and gates
//! verify it with the shared key alone, in constant time, and only inside
//! the sale window.
//!
//! The *order key* is the sale's own, for its start: `hex(HMAC-SHA256(gate
//! key, "order-url|<sale>|<start in Unix ms>"))`, used as the HMAC key as
//! that ASCII text (so a CloudFront Function verifies with a string key, as
//! gates do). A URL minted for one start (a preview's moved window, a sale
//! rescheduled) is refused by gates running another: it does not verify. It is all an
//! edge needs to check order URLs (`edge`), and all it could do with it is
//! mint this sale's URLs, which every gate and edge refuses outside the
//! window: it signs no cookie, receipt, draw or delivery, names no other
//! sale, and HMAC does not lead back to the gate key.

use std::fmt;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The key gates and `open` share. Never printed, never serialised.
#[derive(Clone)]
pub struct GateKey([u8; 32]);

impl fmt::Debug for GateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GateKey(<redacted>)")
    }
}

/// The environment variable a key may come from.
pub const KEY_ENV: &str = "FLASHSALE_GATE_KEY";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("no gate key: set ${KEY_ENV} (create one with `flashsale keygen`)")]
    Missing,
    /// Says where the key came from and what it must look like, never what it is.
    #[error("{0} is not a flashsale gate key: expected 64 hexadecimal characters, as `flashsale keygen` writes")]
    Malformed(String),
    #[error("cannot read the key file {0}: {1}")]
    Unreadable(String, String),
}

impl GateKey {
    pub fn generate() -> GateKey {
        let mut k = [0u8; 32];
        crate::util::random::fill(&mut k);
        GateKey(k)
    }

    /// The text stored in a key file.
    pub fn to_file_text(&self) -> String {
        format!("{}\n", hex::encode(self.0))
    }

    /// Reads a key from text (`source` names it in errors).
    pub fn parse(text: &str, source: &str) -> Result<GateKey, KeyError> {
        let mut k = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut k)
            .map_err(|_| KeyError::Malformed(source.to_string()))?;
        Ok(GateKey(k))
    }

    /// From `--key-file` if given, else `$FLASHSALE_GATE_KEY`.
    pub fn load(file: Option<&Path>) -> Result<GateKey, KeyError> {
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| KeyError::Unreadable(path.display().to_string(), e.to_string()))?;
            return GateKey::parse(&text, &format!("the key file {}", path.display()));
        }
        match std::env::var(KEY_ENV) {
            Ok(v) if !v.trim().is_empty() => GateKey::parse(&v, &format!("${KEY_ENV}")),
            _ => Err(KeyError::Missing),
        }
    }

    /// HMAC-SHA256 under this key of the parts, in order: what other values
    /// derived from the key (the start draw's seed) are made with.
    pub(crate) fn derive(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// The order key of `sale` starting at `start_ms` (see the module's
    /// text): what an edge holds.
    pub fn order_key(&self, sale: &str, start_ms: i64) -> OrderKey {
        let start = start_ms.to_string();
        OrderKey(hex::encode(self.derive(&[
            b"order-url|",
            sale.as_bytes(),
            b"|",
            start.as_bytes(),
        ])))
    }

    /// A new order token for `sale` starting at `start_ms`:
    /// `<128-bit nonce>.<mac>`, both hex.
    pub fn mint(&self, sale: &str, start_ms: i64) -> String {
        self.order_key(sale, start_ms).mint(sale)
    }
}

/// A sale's order key: 64 hex characters, the HMAC key of its order URLs.
/// Never printed.
#[derive(Clone)]
pub struct OrderKey(String);

impl fmt::Debug for OrderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OrderKey(<redacted>)")
    }
}

impl OrderKey {
    /// The key as the edge's store holds it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    fn mac(&self, sale: &str, nonce: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.0.as_bytes()).expect("HMAC takes any key length");
        mac.update(sale.as_bytes());
        mac.update(b"|");
        mac.update(nonce.as_bytes());
        mac
    }

    /// A new order token for `sale`: `<128-bit nonce>.<mac>`, both hex.
    pub fn mint(&self, sale: &str) -> String {
        let nonce = crate::util::random::hex(16);
        let mac = hex::encode(self.mac(sale, &nonce).finalize().into_bytes());
        format!("{nonce}.{mac}")
    }
}

/// The order URL for a token.
pub fn order_url(gate_url: &str, sale: &str, token: &str) -> String {
    format!("{}/o/{sale}/{token}", gate_url.trim_end_matches('/'))
}

/// The sale and token an order URL names (`<gate>/o/<sale>/<token>`).
pub fn parse_order_url(url: &str) -> Option<(String, String)> {
    let url = url::Url::parse(url).ok()?;
    let segments: Vec<&str> = url.path_segments()?.collect();
    match segments.as_slice() {
        [.., "o", sale, token] if !sale.is_empty() && !token.is_empty() => {
            Some((sale.to_string(), token.to_string()))
        }
        _ => None,
    }
}

/// Why an order token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Another sale, or not a token at all: answer 404.
    Unknown,
    /// A well-formed token whose MAC does not verify: 404 too (no oracle).
    BadMac,
    /// Before the start or after the end, by the verifier's clock: 403.
    OutsideWindow,
}

/// The sale window a token is valid in, with a tolerance for clocks, in Unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
    pub tolerance_ms: i64,
}

impl Window {
    pub fn contains(&self, now_ms: i64) -> bool {
        now_ms >= self.start_ms - self.tolerance_ms && now_ms <= self.end_ms + self.tolerance_ms
    }
}

/// Accepts exactly the tokens [`GateKey::mint`] made for `sale` starting at
/// the window's start, compared in constant time, and only inside the window.
pub fn verify(
    key: &GateKey,
    sale: &str,
    url_sale: &str,
    token: &str,
    now_ms: i64,
    window: Window,
) -> Result<(), Refusal> {
    authentic_under(&key.order_key(sale, window.start_ms), sale, url_sale, token)?;
    if !window.contains(now_ms) {
        return Err(Refusal::OutsideWindow);
    }
    Ok(())
}

/// Accepts exactly the tokens minted under the sale's order key (what an
/// edge holds), compared in constant time, whatever the time.
pub(crate) fn authentic_under(
    key: &OrderKey,
    sale: &str,
    url_sale: &str,
    token: &str,
) -> Result<(), Refusal> {
    if url_sale != sale {
        return Err(Refusal::Unknown);
    }
    let (nonce, mac) = token.split_once('.').ok_or(Refusal::Unknown)?;
    // Exactly the minted form: lowercase hex only, so no two spellings of one token.
    let lower_hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let mut given = [0u8; 32];
    if nonce.len() != 32
        || !lower_hex(nonce)
        || !lower_hex(mac)
        || hex::decode_to_slice(mac, &mut given).is_err()
    {
        return Err(Refusal::Unknown);
    }

    key.mac(sale, nonce)
        .verify_slice(&given)
        .map_err(|_| Refusal::BadMac)
}

/// Whether an order URL was minted with `key` for `sale` starting at
/// `start_ms`, whatever the time.
pub(crate) fn minted_for(key: &GateKey, sale: &str, start_ms: i64, url: &str) -> bool {
    let order_key = key.order_key(sale, start_ms);
    parse_order_url(url).is_some_and(|(url_sale, token)| {
        authentic_under(&order_key, sale, &url_sale, &token).is_ok()
    })
}

#[cfg(test)]
mod token_tests {
    use super::*;

    const W: Window = Window {
        start_ms: 1_000,
        end_ms: 2_000,
        tolerance_ms: 0,
    };

    #[test]
    fn minted_tokens_verify_and_nothing_else_does() {
        let key = GateKey::generate();
        let token = key.mint("demo", W.start_ms);
        assert_eq!(verify(&key, "demo", "demo", &token, 1_500, W), Ok(()));
        // Minted for another start of the same sale: refused, even inside its window.
        let moved = Window {
            start_ms: 1_001,
            ..W
        };
        assert_eq!(
            verify(&key, "demo", "demo", &token, 1_500, moved),
            Err(Refusal::BadMac)
        );
        assert!(!minted_for(
            &key,
            "demo",
            1_001,
            &order_url("https://g", "demo", &token)
        ));
        assert!(minted_for(
            &key,
            "demo",
            1_000,
            &order_url("https://g", "demo", &token)
        ));
        // Every single flipped bit is refused.
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            for bit in 0..8 {
                bytes[i] ^= 1 << bit;
                if let Ok(t) = std::str::from_utf8(&bytes) {
                    if t != token {
                        assert!(verify(&key, "demo", "demo", t, 1_500, W).is_err(), "{t}");
                    }
                }
                bytes[i] ^= 1 << bit;
            }
        }
        assert_eq!(
            verify(&key, "demo", "other", &token, 1_500, W),
            Err(Refusal::Unknown)
        );
        assert_eq!(
            verify(&key, "other", "other", &token, 1_500, W),
            Err(Refusal::BadMac)
        );
        assert_eq!(
            verify(&GateKey::generate(), "demo", "demo", &token, 1_500, W),
            Err(Refusal::BadMac)
        );
        assert_eq!(
            verify(&key, "demo", "demo", &token, 999, W),
            Err(Refusal::OutsideWindow)
        );
        assert_eq!(
            verify(&key, "demo", "demo", &token, 2_001, W),
            Err(Refusal::OutsideWindow)
        );
        assert_eq!(
            verify(&key, "demo", "demo", "nonsense", 1_500, W),
            Err(Refusal::Unknown)
        );
    }

    #[test]
    fn keys_round_trip_and_never_show() {
        let key = GateKey::generate();
        let text = key.to_file_text();
        let back = GateKey::parse(&text, "x").unwrap();
        assert_eq!(back.mint("s", 0).len(), 32 + 1 + 64);
        assert_eq!(format!("{key:?}"), "GateKey(<redacted>)");
        let err = GateKey::parse("abc", "the key file k")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the key file k") && !err.contains("abc"),
            "{err}"
        );
    }

    #[test]
    fn order_urls_parse() {
        let url = order_url("https://gate.example.com/", "demo", "ab.cd");
        assert_eq!(url, "https://gate.example.com/o/demo/ab.cd");
        assert_eq!(parse_order_url(&url), Some(("demo".into(), "ab.cd".into())));
        let behind_a_path = order_url("https://x.example/gates/", "demo", "ab.cd");
        assert_eq!(
            parse_order_url(&behind_a_path),
            Some(("demo".into(), "ab.cd".into()))
        );
        assert_eq!(parse_order_url("https://x.example/o/demo/"), None);
        assert_eq!(parse_order_url("not a url"), None);
    }
}

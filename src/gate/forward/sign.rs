//! Signed deliveries: every POST to the order system carries
//! `Flashsale-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]`, each `v1` an
//! HMAC-SHA256 of `<t>.<body>` under a forward key — a key of the order
//! system's own, never the gate key. Two keys sign during a rotation (the
//! new one first), so an order system that knows either accepts. The order
//! system checks one `v1` with its key and that `t` is recent (a replay
//! window, five minutes in the README's snippets); the Idempotency-Key
//! (the order id) stops a replay within the window from counting twice.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header's name.
pub(crate) const HEADER: &str = "flashsale-signature";

/// The shortest forward key accepted: a short key can be guessed.
pub(crate) const MIN_KEY: usize = 16;

/// The keys deliveries are signed with (one, or two during a rotation).
#[derive(Clone)]
pub(crate) struct Signer {
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({} keys, <redacted>)", self.keys.len())
    }
}

impl Signer {
    /// Signs with `keys` (at most two, each at least [`MIN_KEY`] bytes:
    /// the caller checked).
    pub(crate) fn new(keys: Vec<Vec<u8>>) -> Signer {
        Signer { keys }
    }

    /// The header's value for `body` sent at `t` (Unix seconds).
    pub(crate) fn header(&self, t: i64, body: &[u8]) -> String {
        let mut value = format!("t={t}");
        for key in &self.keys {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(t.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            value.push_str(",v1=");
            value.push_str(&hex::encode(mac.finalize().into_bytes()));
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_signs_the_time_and_the_body() {
        let one = Signer::new(vec![b"0123456789abcdef".to_vec()]);
        let h = one.header(1_700_000_000, b"{}");
        // HMAC-SHA256("0123456789abcdef", "1700000000.{}"), computed apart.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"0123456789abcdef").unwrap();
        mac.update(b"1700000000.{}");
        assert_eq!(
            h,
            format!(
                "t=1700000000,v1={}",
                hex::encode(mac.finalize().into_bytes())
            )
        );
        let two = Signer::new(vec![
            b"new-key-new-key-".to_vec(),
            b"0123456789abcdef".to_vec(),
        ]);
        let h2 = two.header(1_700_000_000, b"{}");
        assert!(
            h2.ends_with(&h["t=1700000000".len()..]),
            "the old key's v1 comes second: {h2}"
        );
        assert_ne!(one.header(1_700_000_001, b"{}"), h, "the time is signed");
        assert!(!format!("{two:?}").contains("new-key"));
    }
}

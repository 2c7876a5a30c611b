//! Who is ordering: a header set by a trusted proxy, or the shop's signed
//! cookie `<user>.<hex HMAC-SHA256(cookie key, user)>`, verified in constant
//! time. Anything else is no identity (401).

use hmac::{Hmac, Mac};
use hyper::HeaderMap;
use sha2::Sha256;

use super::Error;
use crate::config::Identity;

/// Longest user id accepted.
const MAX_USER: usize = 256;

/// How this gate identifies users.
pub(crate) struct Identify {
    identity: Identity,
    cookie_key: Option<Vec<u8>>,
}

impl Identify {
    /// A cookie identity needs the shop's key.
    pub(crate) fn new(identity: Identity, cookie_key: Option<Vec<u8>>) -> Result<Identify, Error> {
        if matches!(identity, Identity::Cookie(_)) && cookie_key.is_none() {
            return Err(Error::NoCookieKey);
        }
        Ok(Identify {
            identity,
            cookie_key,
        })
    }

    /// The user a request is from, borrowed from its headers.
    pub(crate) fn user<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        match &self.identity {
            Identity::Header(h) => {
                let v = headers.get(h)?.to_str().ok()?.trim();
                (!v.is_empty() && v.len() <= MAX_USER).then_some(v)
            }
            Identity::Cookie(name) => {
                let key = self.cookie_key.as_ref()?;
                verify_cookie(key, crate::util::cookie::find(headers, name)?)
            }
        }
    }

    /// For the start-up line: where identities come from.
    pub(crate) fn describe(&self) -> String {
        match &self.identity {
            Identity::Header(h) => format!("header {h} (set it at a trusted proxy)"),
            Identity::Cookie(c) => format!("signed cookie {c}"),
        }
    }
}

/// `<user>.<hex mac>` with `mac = HMAC-SHA256(key, user)`; the user if it verifies.
fn verify_cookie<'a>(key: &[u8], value: &'a str) -> Option<&'a str> {
    let (user, mac) = value.rsplit_once('.')?;
    let mut given = [0u8; 32];
    hex::decode_to_slice(mac, &mut given).ok()?;
    let mut m = Hmac::<Sha256>::new_from_slice(key).ok()?;
    m.update(user.as_bytes());
    m.verify_slice(&given).ok()?;
    (!user.is_empty() && user.len() <= MAX_USER).then_some(user)
}

/// Signs a user id the way the shop must, for its cookie `<user>.<hex mac>`.
pub fn sign_cookie(key: &[u8], user: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(user.as_bytes());
    format!("{user}.{}", hex::encode(m.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::{HeaderValue, COOKIE};

    #[test]
    fn cookies_verify_only_when_signed_with_the_key() {
        let c = sign_cookie(b"shop-key", "alice");
        assert_eq!(verify_cookie(b"shop-key", &c), Some("alice"));
        assert_eq!(verify_cookie(b"other-key", &c), None);
        let forged = c.replace("alice", "mallory");
        assert_eq!(verify_cookie(b"shop-key", &forged), None);
    }

    #[test]
    fn a_cookie_identity_needs_a_key_and_a_signed_cookie() {
        let cookie = Identity::Cookie("shop_user".into());
        assert!(matches!(
            Identify::new(cookie.clone(), None),
            Err(Error::NoCookieKey)
        ));
        let id = Identify::new(cookie, Some(b"k".to_vec())).unwrap();
        let mut h = HeaderMap::new();
        let value = format!("junk; shop_user={}", sign_cookie(b"k", "alice"));
        h.insert(COOKIE, HeaderValue::from_str(&value).unwrap());
        assert_eq!(id.user(&h), Some("alice"));
        h.insert("x-user-id", HeaderValue::from_static("bob"));
        h.remove(COOKIE);
        assert_eq!(
            id.user(&h),
            None,
            "the header is no identity in cookie mode"
        );
        let header = Identify::new(Identity::Header("X-User-Id".into()), None).unwrap();
        assert_eq!(header.user(&h), Some("bob"));
    }
}

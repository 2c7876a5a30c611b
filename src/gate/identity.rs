//! Who is ordering: a header set by a trusted proxy, or the shop's signed
//! cookie `<user>.<hex HMAC-SHA256(cookie key, user)>`, verified in constant
//! time. Anything else is no identity (401).

use hmac::{Hmac, Mac};
use hyper::HeaderMap;
use sha2::Sha256;

use super::Error;
use crate::config::Identity;

/// A request that names more than one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ambiguous;

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

    /// The user a request is from, borrowed from its headers; `Err` when it
    /// names more than one (a header sent twice: a client's and a proxy's).
    pub(crate) fn user<'a>(&self, headers: &'a HeaderMap) -> Result<Option<&'a str>, Ambiguous> {
        match &self.identity {
            Identity::Header(h) => {
                let mut values = headers.get_all(h).iter();
                let (Some(v), None) = (values.next(), values.next()) else {
                    return if headers.contains_key(h) {
                        Err(Ambiguous)
                    } else {
                        Ok(None)
                    };
                };
                let v = v.to_str().ok().map(str::trim);
                Ok(v.filter(|v| !v.is_empty() && v.len() <= MAX_USER))
            }
            Identity::Cookie(name) => {
                let Some(key) = self.cookie_key.as_ref() else {
                    return Ok(None);
                };
                let mut values = crate::util::cookie::all(headers, name);
                match (values.next(), values.next()) {
                    (None, _) => Ok(None),
                    (Some(v), None) => Ok(verify_cookie(key, v)),
                    (Some(_), Some(_)) => Err(Ambiguous),
                }
            }
        }
    }

    /// Whether the identity is a proxy's header (believed only from trusted proxies).
    pub(crate) fn by_header(&self) -> bool {
        matches!(self.identity, Identity::Header(_))
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
        assert_eq!(id.user(&h), Ok(Some("alice")));
        // A quoted value is the same cookie; two of them are two identities.
        let quoted = format!("shop_user=\"{}\"", sign_cookie(b"k", "alice"));
        h.insert(COOKIE, HeaderValue::from_str(&quoted).unwrap());
        assert_eq!(id.user(&h), Ok(Some("alice")));
        h.append(COOKIE, HeaderValue::from_str(&value).unwrap());
        assert_eq!(id.user(&h), Err(Ambiguous));
        h.insert("x-user-id", HeaderValue::from_static("bob"));
        h.remove(COOKIE);
        assert_eq!(
            id.user(&h),
            Ok(None),
            "the header is no identity in cookie mode"
        );
        let header = Identify::new(Identity::Header("X-User-Id".into()), None).unwrap();
        assert_eq!(header.user(&h), Ok(Some("bob")));
        h.append("x-user-id", HeaderValue::from_static("mallory"));
        assert_eq!(header.user(&h), Err(Ambiguous), "a client's and a proxy's");
    }
}

//! Reading a cookie from a request, the one way: the `cookie` crate splits
//! the `Cookie` headers (malformed pairs are skipped, not fatal), and a value
//! in double quotes (RFC 6265 allows it) is read without them.

use cookie::Cookie;
use hyper::header::{HeaderMap, COOKIE};

/// The value of the first cookie called `name`, borrowed from the headers.
pub(crate) fn find<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    all(headers, name).next()
}

/// Every value of the cookies called `name`, in order.
pub(crate) fn all<'a, 'n>(
    headers: &'a HeaderMap,
    name: &'n str,
) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(move |c| c.name_raw() == Some(name))
        .filter_map(|c| c.value_raw())
        .map(|v| {
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(COOKIE, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn skips_malformed_pairs_and_unquotes() {
        let h = headers(&["junk; a=1; user=alice.1f", "user=bob"]);
        assert_eq!(find(&h, "user"), Some("alice.1f"));
        assert_eq!(find(&h, "a"), Some("1"));
        assert_eq!(
            find(&headers(&["x=1", "=v; user=\"carol\""]), "user"),
            Some("carol")
        );
        assert_eq!(find(&headers(&["users=1"]), "user"), None);
        assert_eq!(find(&HeaderMap::new(), "user"), None);
    }
}

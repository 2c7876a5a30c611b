//! CloudFront: invalidations, and how a distribution caches the toggle (what
//! `check --remote` and `capacity --remote` read).

use aws_config::SdkConfig;

use super::aws::describe;
use super::edge::{managed_policy, ToggleCaching};
use super::{Cdn, ErrorKind, RemoteError};

/// A CloudFront distribution.
pub(crate) struct CloudFront {
    client: aws_sdk_cloudfront::Client,
    id: String,
}

impl CloudFront {
    pub(crate) fn new(shared: &SdkConfig, id: &str) -> CloudFront {
        CloudFront {
            client: aws_sdk_cloudfront::Client::new(shared),
            id: id.to_string(),
        }
    }

    /// How the distribution caches `path` (the toggle): the cache behaviour
    /// that matches it, its TTL bounds and cache key (from its cache policy,
    /// or its legacy settings without one), and whether its origin has
    /// Origin Shield. Managed policies flashsale knows are not looked up.
    pub(crate) async fn toggle_caching(&self, path: &str) -> Result<ToggleCaching, RemoteError> {
        let out = self
            .client
            .get_distribution_config()
            .id(&self.id)
            .send()
            .await
            .map_err(|e| describe("GetDistributionConfig", &self.describe(), &e))?;
        let cfg = out.distribution_config().ok_or_else(|| {
            RemoteError::new(
                ErrorKind::Other,
                format!("{}: no configuration returned", self.describe()),
            )
        })?;
        let behaviour = cfg
            .cache_behaviors()
            .map(|b| b.items())
            .unwrap_or_default()
            .iter()
            .find(|b| cloudfront_match(b.path_pattern(), path));
        #[allow(deprecated)]
        let (name, settings) = match behaviour {
            Some(b) => (
                format!("cache behaviour `{}`", b.path_pattern()),
                Settings {
                    origin: b.target_origin_id(),
                    policy: b.cache_policy_id(),
                    min_ttl: b.min_ttl(),
                    default_ttl: b.default_ttl(),
                    max_ttl: b.max_ttl(),
                    forwarded: b.forwarded_values(),
                },
            ),
            None => {
                let d = cfg.default_cache_behavior().ok_or_else(|| {
                    RemoteError::new(
                        ErrorKind::Other,
                        format!("{}: no default cache behaviour", self.describe()),
                    )
                })?;
                (
                    "the default cache behaviour".to_string(),
                    Settings {
                        origin: d.target_origin_id(),
                        policy: d.cache_policy_id(),
                        min_ttl: d.min_ttl(),
                        default_ttl: d.default_ttl(),
                        max_ttl: d.max_ttl(),
                        forwarded: d.forwarded_values(),
                    },
                )
            }
        };
        let origin_shield = cfg
            .origins()
            .map(|o| o.items())
            .unwrap_or_default()
            .iter()
            .find(|o| o.id() == settings.origin)
            .and_then(|o| o.origin_shield())
            .is_some_and(|s| s.enabled());
        let mut caching = match settings.policy.filter(|p| !p.is_empty()) {
            Some(id) => match managed_policy(id) {
                Some(p) => ToggleCaching {
                    behaviour: name,
                    source: format!("the managed cache policy {}", p.name),
                    policy: true,
                    min_ttl: p.min_ttl,
                    default_ttl: p.default_ttl,
                    max_ttl: p.max_ttl,
                    query_in_key: p
                        .query_in_key
                        .then(|| "QueryStringBehavior all".to_string()),
                    cookies_in_key: None,
                    origin_shield,
                },
                None => self.policy_caching(name, id).await?,
            },
            None => legacy_caching(name, &settings),
        };
        caching.origin_shield = origin_shield;
        Ok(caching)
    }

    /// A cache policy's TTLs and cache key, read with GetCachePolicy.
    async fn policy_caching(
        &self,
        behaviour: String,
        id: &str,
    ) -> Result<ToggleCaching, RemoteError> {
        use aws_sdk_cloudfront::types::{
            CachePolicyCookieBehavior as C, CachePolicyQueryStringBehavior as Q,
        };
        let out = self
            .client
            .get_cache_policy()
            .id(id)
            .send()
            .await
            .map_err(|e| describe("GetCachePolicy", &format!("cache policy {id}"), &e))?;
        let cfg = out
            .cache_policy()
            .and_then(|p| p.cache_policy_config())
            .ok_or_else(|| {
                RemoteError::new(
                    ErrorKind::Other,
                    format!("cache policy {id}: no configuration returned"),
                )
            })?;
        let key = cfg.parameters_in_cache_key_and_forwarded_to_origin();
        let query_in_key = key.and_then(|k| k.query_strings_config()).and_then(|q| {
            let names: Vec<&str> = q
                .query_strings()
                .map(|n| n.items().iter().map(String::as_str).collect())
                .unwrap_or_default();
            match q.query_string_behavior() {
                Q::None => None,
                Q::Whitelist if !names.contains(&"v") => None,
                Q::AllExcept if names.contains(&"v") => None,
                other => Some(format!("QueryStringBehavior {}", other.as_str())),
            }
        });
        let cookies_in_key = key
            .and_then(|k| k.cookies_config())
            .map(|c| c.cookie_behavior())
            .filter(|b| **b != C::None)
            .map(|b| format!("CookieBehavior {}", b.as_str()));
        Ok(ToggleCaching {
            behaviour,
            source: format!("cache policy {} ({id})", cfg.name()),
            policy: true,
            min_ttl: cfg.min_ttl(),
            default_ttl: cfg.default_ttl().unwrap_or(LEGACY_DEFAULT_TTL),
            max_ttl: cfg.max_ttl().unwrap_or(LEGACY_MAX_TTL),
            query_in_key,
            cookies_in_key,
            origin_shield: false,
        })
    }
}

/// CloudFront's defaults when a behaviour does not set them: MaxTTL one year,
/// DefaultTTL one day.
const LEGACY_MAX_TTL: i64 = 31_536_000;
const LEGACY_DEFAULT_TTL: i64 = 86_400;

/// What a cache behaviour (default or per path: two SDK types) says about caching.
struct Settings<'a> {
    origin: &'a str,
    policy: Option<&'a str>,
    min_ttl: Option<i64>,
    default_ttl: Option<i64>,
    max_ttl: Option<i64>,
    forwarded: Option<&'a aws_sdk_cloudfront::types::ForwardedValues>,
}

/// A behaviour without a cache policy: its legacy TTLs and forwarded values.
fn legacy_caching(behaviour: String, s: &Settings<'_>) -> ToggleCaching {
    use aws_sdk_cloudfront::types::ItemSelection;
    let query_in_key = s.forwarded.filter(|f| f.query_string()).and_then(|f| {
        let keys: Vec<&str> = f
            .query_string_cache_keys()
            .map(|k| k.items().iter().map(String::as_str).collect())
            .unwrap_or_default();
        (keys.is_empty() || keys.contains(&"v")).then(|| "QueryString true".to_string())
    });
    let cookies_in_key = s
        .forwarded
        .and_then(|f| f.cookies())
        .map(|c| c.forward())
        .filter(|f| **f != ItemSelection::None)
        .map(|f| format!("Cookies Forward {}", f.as_str()));
    ToggleCaching {
        behaviour,
        source: "its legacy cache settings".to_string(),
        policy: false,
        min_ttl: s.min_ttl.unwrap_or(0),
        default_ttl: s.default_ttl.unwrap_or(LEGACY_DEFAULT_TTL),
        max_ttl: s.max_ttl.unwrap_or(LEGACY_MAX_TTL),
        query_in_key,
        cookies_in_key,
        origin_shield: false,
    }
}

/// CloudFront path patterns: `*` any run of characters, `?` one; leading `/` optional.
fn cloudfront_match(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    go(
        pattern.trim_start_matches('/').as_bytes(),
        path.trim_start_matches('/').as_bytes(),
    )
}

impl Cdn for CloudFront {
    async fn invalidate(
        &self,
        paths: &[String],
        caller_reference: &str,
    ) -> Result<String, RemoteError> {
        use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
        let batch = InvalidationBatch::builder()
            .paths(
                Paths::builder()
                    .quantity(paths.len() as i32)
                    .set_items(Some(paths.to_vec()))
                    .build()
                    .expect("quantity is set"),
            )
            .caller_reference(caller_reference)
            .build()
            .expect("paths and caller reference are set");
        let out = self
            .client
            .create_invalidation()
            .distribution_id(&self.id)
            .invalidation_batch(batch)
            .send()
            .await
            .map_err(|e| describe("CreateInvalidation", &self.describe(), &e))?;
        Ok(out
            .invalidation()
            .map(|i| i.id().to_string())
            .unwrap_or_default())
    }

    async fn completed(&self, id: &str) -> Result<bool, RemoteError> {
        let out = self
            .client
            .get_invalidation()
            .distribution_id(&self.id)
            .id(id)
            .send()
            .await
            .map_err(|e| describe("GetInvalidation", &self.describe(), &e))?;
        Ok(out
            .invalidation()
            .is_some_and(|i| i.status().eq_ignore_ascii_case("completed")))
    }

    async fn warm(&self) -> Result<(), RemoteError> {
        self.client
            .get_distribution()
            .id(&self.id)
            .send()
            .await
            .map_err(|e| describe("GetDistribution", &self.describe(), &e))?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("CloudFront distribution {}", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudfront_patterns() {
        assert!(cloudfront_match("sale.js", "/sale.js"));
        assert!(cloudfront_match("/sale.js*", "/sale.js"));
        assert!(cloudfront_match("*.js", "/sale.js"));
        assert!(cloudfront_match("/shop/sale.js", "/shop/sale.js"));
        assert!(!cloudfront_match("assets/*", "/sale.js"));
        assert!(cloudfront_match("sal?.js", "sale.js"));
    }
}

//! CloudFront: invalidations, and the minimum TTL a distribution applies to a
//! path (what `check --remote` reads).

use aws_config::SdkConfig;

use super::s3::describe;
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

    /// The minimum TTL the distribution applies to `path`, and which cache
    /// behaviour says so. Above 0, CloudFront may keep a copy despite `no-cache`.
    /// Reads the legacy per-behaviour TTL when there is no cache policy.
    #[allow(deprecated)]
    pub(crate) async fn min_ttl_for(&self, path: &str) -> Result<(String, i64), RemoteError> {
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
        let (name, legacy, policy) = match behaviour {
            Some(b) => (
                format!("cache behaviour `{}`", b.path_pattern()),
                b.min_ttl(),
                b.cache_policy_id(),
            ),
            None => {
                let d = cfg.default_cache_behavior();
                (
                    "the default cache behaviour".to_string(),
                    d.and_then(|d| d.min_ttl()),
                    d.and_then(|d| d.cache_policy_id()),
                )
            }
        };
        let ttl = match policy.filter(|p| !p.is_empty()) {
            Some(policy) => {
                let out = self
                    .client
                    .get_cache_policy()
                    .id(policy)
                    .send()
                    .await
                    .map_err(|e| describe("GetCachePolicy", &self.describe(), &e))?;
                out.cache_policy()
                    .and_then(|p| p.cache_policy_config())
                    .map_or(0, |c| c.min_ttl())
            }
            None => legacy.unwrap_or(0),
        };
        Ok((name, ttl))
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

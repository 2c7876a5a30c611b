//! `[publish]`: an S3 bucket (or S3-compatible store) and optionally CloudFront.

use serde::Deserialize;
use toml::Spanned;

use super::{http_url, Checker};

/// Keys of `[publish]`, with an example line for each.
pub(crate) const PUBLISH_KEYS: &[(&str, &str)] = &[
    ("bucket", "bucket = \"my-sale-bucket\""),
    ("prefix", "prefix = \"winter/\""),
    ("region", "region = \"eu-central-1\""),
    ("endpoint", "endpoint = \"https://s3.example.com\""),
    ("distribution_id", "distribution_id = \"E2QWRUHAPOMQZL\""),
    ("max_deletes", "max_deletes = 256"),
    ("max_invalidation_paths", "max_invalidation_paths = 20"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublishConfig {
    pub(crate) bucket: String,
    /// Key prefix inside the bucket: empty, or ending with `/`.
    pub(crate) prefix: String,
    pub(crate) region: Option<String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) distribution_id: Option<String>,
    /// More deletions than this refuse without being forced.
    pub(crate) max_deletes: usize,
    /// More CDN paths than this are collapsed into wildcards.
    pub(crate) max_invalidation_paths: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPublish {
    bucket: Spanned<String>,
    prefix: Option<Spanned<String>>,
    region: Option<String>,
    endpoint: Option<Spanned<String>>,
    distribution_id: Option<String>,
    max_deletes: Option<Spanned<i64>>,
    max_invalidation_paths: Option<Spanned<i64>>,
}

impl RawPublish {
    pub(crate) fn check(&self, cx: &mut Checker) -> PublishConfig {
        let bucket = self.bucket.get_ref().trim().to_string();
        // S3's bucket naming rules, in short.
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && bucket.as_bytes()[0].is_ascii_alphanumeric();
        if !bucket_ok {
            cx.push(
                self.bucket.span(),
                format!("`{bucket}` is not an S3 bucket name"),
                "bucket names are 3 to 63 lowercase letters, digits, '-' and '.', e.g. `bucket = \"winter-sale-2026\"`",
            );
        }
        let prefix = self.prefix.as_ref().map_or(String::new(), |s| {
            let v = s.get_ref().trim().trim_start_matches('/');
            if v.contains("..") || v.contains('\\') {
                cx.push(
                    s.span(),
                    format!("`{v}` cannot be a key prefix"),
                    "write a plain path such as `prefix = \"winter/\"`, or remove it",
                );
            }
            match v {
                "" => String::new(),
                v if v.ends_with('/') => v.to_string(),
                v => format!("{v}/"),
            }
        });
        if let Some(e) = &self.endpoint {
            if http_url(e.get_ref()).is_none() {
                cx.push(
                    e.span(),
                    format!("`{}` is not an http(s) URL", e.get_ref()),
                    "write the S3 endpoint, e.g. `endpoint = \"https://s3.example.com\"`, or remove it for AWS",
                );
            }
        }
        PublishConfig {
            bucket,
            prefix,
            region: self.region.clone(),
            endpoint: self
                .endpoint
                .as_ref()
                .map(|e| e.get_ref().trim_end_matches('/').to_string()),
            distribution_id: self.distribution_id.clone(),
            max_deletes: at_least_one(cx, &self.max_deletes, 256, "max_deletes"),
            max_invalidation_paths: at_least_one(
                cx,
                &self.max_invalidation_paths,
                20,
                "max_invalidation_paths",
            ),
        }
    }
}

fn at_least_one(cx: &mut Checker, v: &Option<Spanned<i64>>, default: usize, key: &str) -> usize {
    match v {
        None => default,
        Some(n) if *n.get_ref() >= 1 => *n.get_ref() as usize,
        Some(n) => {
            cx.push(
                n.span(),
                format!("`{key} = {}` must be at least 1", n.get_ref()),
                format!("e.g. `{key} = {default}`"),
            );
            default
        }
    }
}

//! `[edge]`: the CloudFront KeyValueStore the order path's function reads,
//! and how long before the start the sale's keys are staged in it.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{http_url, Checker};

/// Keys of `[edge]`, with an example line for each.
pub(crate) const EDGE_KEYS: &[(&str, &str)] = &[
    (
        "kvs_arn",
        "kvs_arn = \"arn:aws:cloudfront::123456789012:key-value-store/5f1b0c5e-0000-4000-8000-000000000000\"",
    ),
    ("stage_ahead", "stage_ahead = \"5m\""),
    ("endpoint", "endpoint = \"http://127.0.0.1:4010\""),
];

/// KeyValueStore changes reach every edge location in seconds, by AWS's
/// account, with no published bound: a minute is the least flashsale stages
/// ahead, five the default.
pub(crate) const MIN_STAGE_AHEAD: Duration = Duration::from_secs(60);
pub(crate) const DEFAULT_STAGE_AHEAD: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EdgeConfig {
    pub(crate) kvs_arn: String,
    pub(crate) stage_ahead: Duration,
    /// A KeyValueStore API other than AWS's (a stand-in).
    pub(crate) endpoint: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEdge {
    kvs_arn: Spanned<String>,
    stage_ahead: Option<Spanned<String>>,
    endpoint: Option<Spanned<String>>,
}

impl RawEdge {
    pub(crate) fn check(&self, cx: &mut Checker) -> EdgeConfig {
        let arn = self.kvs_arn.get_ref().trim().to_string();
        if !(arn.starts_with("arn:aws:cloudfront::") && arn.contains(":key-value-store/")) {
            cx.push(
                self.kvs_arn.span(),
                format!("`{arn}` is not a CloudFront KeyValueStore ARN"),
                "copy the store's ARN from `aws cloudfront describe-key-value-store --name NAME` (or the template `flashsale infra` writes: its KeyValueStoreArn output)",
            );
        }
        let stage_ahead = match &self.stage_ahead {
            None => DEFAULT_STAGE_AHEAD,
            Some(t) => match crate::util::duration::parse(t.get_ref()) {
                Ok(d) if d >= MIN_STAGE_AHEAD && d <= Duration::from_secs(86_400) => d,
                _ => {
                    cx.push(
                        t.span(),
                        format!("`{}` cannot be how long ahead the keys are staged", t.get_ref()),
                        "at least a minute (edges hear of a change in seconds, with no promise), at most a day: e.g. `stage_ahead = \"5m\"`",
                    );
                    DEFAULT_STAGE_AHEAD
                }
            },
        };
        let endpoint = self.endpoint.as_ref().map(|e| {
            if http_url(e.get_ref()).is_none() {
                cx.push(
                    e.span(),
                    format!("`{}` is not an http(s) URL", e.get_ref()),
                    "leave it out for AWS, or name a KeyValueStore stand-in, e.g. `endpoint = \"http://127.0.0.1:4010\"`",
                );
            }
            e.get_ref().trim_end_matches('/').to_string()
        });
        EdgeConfig {
            kvs_arn: arn,
            stage_ahead,
            endpoint,
        }
    }
}

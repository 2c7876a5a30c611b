//! What S3 and CloudFront share: the AWS settings (region, credentials,
//! endpoint, retries, the TLS stack) loaded once per command, and one line
//! for an SDK error saying what failed and what to do. Without the `aws`
//! cargo feature the settings cannot be loaded ([`AwsError`] says how to
//! get a build that can).

#[cfg(feature = "aws")]
use std::time::Duration;

#[cfg(feature = "aws")]
use aws_config::retry::RetryConfig;
#[cfg(feature = "aws")]
use aws_config::timeout::TimeoutConfig;
#[cfg(feature = "aws")]
pub(crate) use aws_config::SdkConfig;
#[cfg(feature = "aws")]
use aws_config::{BehaviorVersion, Region};
#[cfg(feature = "aws")]
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
#[cfg(feature = "aws")]
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

#[cfg(feature = "aws")]
use super::{ErrorKind, RemoteError};
use crate::config::PublishConfig;
#[cfg(feature = "aws")]
use crate::util::root_cause;

/// AWS overrides from the command line.
#[derive(Debug, Clone, Default)]
#[cfg_attr(
    not(feature = "aws"),
    expect(dead_code, reason = "only the AWS SDK's loader reads them")
)]
pub(crate) struct AwsFlags {
    pub(crate) profile: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) endpoint_url: Option<String>,
}

/// Why AWS cannot be talked to at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AwsError {
    #[cfg_attr(
        not(feature = "aws"),
        expect(dead_code, reason = "found out by the AWS SDK's loader")
    )]
    #[error("no AWS region: set `region` in [publish], or AWS_REGION")]
    NoRegion,
    #[cfg_attr(
        not(feature = "aws"),
        expect(dead_code, reason = "found out by the AWS SDK's loader")
    )]
    #[error("no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile, or run where a role provides them")]
    NoCredentials,
    /// Built with `--no-default-features`.
    #[cfg(not(feature = "aws"))]
    #[error("this flashsale was built without the AWS SDK (cargo feature `aws`): install it with default features (`cargo install --path .`), or use a `dir:PATH` target")]
    NotBuilt,
}

/// Never made: there are no AWS settings without the SDK.
#[cfg(not(feature = "aws"))]
pub(crate) enum SdkConfig {}

#[cfg(not(feature = "aws"))]
pub(crate) async fn load(_: &PublishConfig, _: &AwsFlags) -> Result<SdkConfig, AwsError> {
    Err(AwsError::NotBuilt)
}

/// Resolves region, endpoint and credentials once; fails early and plainly.
#[cfg(feature = "aws")]
pub(crate) async fn load(cfg: &PublishConfig, flags: &AwsFlags) -> Result<SdkConfig, AwsError> {
    // rustls on ring, as flashsale's own HTTP client (no aws-lc to compile).
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(5)
                .with_initial_backoff(Duration::from_millis(200)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(p) = &flags.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = flags.region.clone().or_else(|| cfg.region.clone()) {
        loader = loader.region(Region::new(r));
    }
    if let Some(e) = flags.endpoint_url.clone().or_else(|| cfg.endpoint.clone()) {
        loader = loader.endpoint_url(e);
    }
    let shared = loader.load().await;
    if shared.region().is_none() {
        return Err(AwsError::NoRegion);
    }
    let creds = shared
        .credentials_provider()
        .ok_or(AwsError::NoCredentials)?;
    use aws_credential_types::provider::ProvideCredentials;
    creds
        .provide_credentials()
        .await
        .map_err(|_| AwsError::NoCredentials)?;
    Ok(shared)
}

/// One line for an SDK error: what failed, why, and what to do.
#[cfg(feature = "aws")]
pub(crate) fn describe<E, R>(op: &str, target: &str, err: &SdkError<E, R>) -> RemoteError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => RemoteError::new(
            ErrorKind::Unreachable,
            format!(
                "cannot reach {target} ({op}): {}; check the endpoint and the network",
                root_cause(err)
            ),
        ),
        _ => {
            let code = err.code().unwrap_or("");
            let msg = err.message().unwrap_or("").trim_end_matches('.');
            let (kind, hint) = match code {
                "NoSuchBucket" => (
                    ErrorKind::Missing,
                    "create the bucket or fix `bucket` in [publish]",
                ),
                "NoSuchDistribution" => (ErrorKind::Missing, "fix `distribution_id` in [publish]"),
                "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "InvalidToken"
                | "InvalidClientTokenId"
                | "UnrecognizedClientException"
                | "TokenRefreshRequired" => (
                    ErrorKind::Auth,
                    "check the AWS credentials (environment, profile, SSO login)",
                ),
                "AccessDenied" | "Forbidden" | "AllAccessDisabled" => (
                    ErrorKind::Auth,
                    "the credentials are not allowed to do this; check their IAM policy",
                ),
                _ => (ErrorKind::Other, ""),
            };
            let what = match (code, msg) {
                ("", "") => root_cause(err),
                ("", m) => m.to_string(),
                (c, "") => c.to_string(),
                (c, m) => format!("{c}: {m}"),
            };
            let hint = if hint.is_empty() {
                String::new()
            } else {
                format!("; {hint}")
            };
            RemoteError::new(kind, format!("{target}: {op} failed: {what}{hint}"))
        }
    }
}

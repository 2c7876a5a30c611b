//! Where a sale is stored and served from: the object store ([`Remote`]) and
//! the CDN in front of it ([`Cdn`]), with their implementations: S3 and
//! CloudFront through the AWS SDK, a local directory, a dry run that writes
//! nothing, and an in-memory store (the preview's toggle, and tests that make
//! a store fail at the Nth call). Without the `aws` cargo feature, `no_aws`
//! stands in for S3 and CloudFront: their types exist but none can be made.
//!
//! `publish` and `sale::switch` work on any of them, so a dry run, a directory
//! target and the preview take the same code paths as S3.

mod aws;
#[cfg(feature = "aws")]
mod cloudfront;
mod dir;
mod dry_run;
pub(crate) mod edge;
#[cfg(feature = "aws")]
pub(crate) mod kvs;
mod memory;
#[cfg(not(feature = "aws"))]
mod no_aws;
#[cfg(feature = "aws")]
mod s3;
mod target;
#[cfg(not(feature = "aws"))]
use no_aws as cloudfront;
#[cfg(not(feature = "aws"))]
use no_aws as s3;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub(crate) use aws::{AwsError, AwsFlags};
pub(crate) use cloudfront::CloudFront;
pub(crate) use dir::DirRemote;
pub(crate) use dry_run::{DryRun, DryRunCdn};
pub(crate) use memory::MemoryStore;
pub(crate) use target::{Target, TargetError};

/// Why a store or CDN operation failed, in one line a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct RemoteError {
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// Credentials missing, wrong or not allowed.
    #[cfg_attr(
        not(feature = "aws"),
        expect(dead_code, reason = "only the AWS SDK's errors are about credentials")
    )]
    Auth,
    /// The bucket (or distribution) does not exist.
    Missing,
    /// The endpoint could not be reached.
    Unreachable,
    Other,
}

impl RemoteError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        RemoteError {
            kind,
            message: message.into(),
        }
    }
}

/// One listed object.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    /// Relative to the store's prefix.
    pub(crate) key: String,
    pub(crate) etag: Option<String>,
}

/// An object's content and headers, by hash, and the ETag it had when
/// recorded. Stored with every object flashsale writes (as metadata), so a
/// later run can tell what an object holds without downloading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Known {
    pub(crate) sha256: String,
    pub(crate) headers: String,
    pub(crate) etag: Option<String>,
}

impl Known {
    /// What is known of `body` served with `headers`, before it is written.
    pub(crate) fn of(body: &[u8], headers: &BTreeMap<String, String>) -> Known {
        Known {
            sha256: hex::encode(Sha256::digest(body)),
            headers: headers_hash(headers),
            etag: None,
        }
    }

    /// The metadata stored with the object.
    pub(crate) fn metadata(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (META_SHA256.to_string(), self.sha256.clone()),
            (META_HEADERS.to_string(), self.headers.clone()),
        ])
    }

    /// Reads [`Known::metadata`] back (keys are case-insensitive on the wire).
    pub(crate) fn from_metadata(
        meta: &BTreeMap<String, String>,
        etag: Option<String>,
    ) -> Option<Known> {
        let get = |k: &str| {
            meta.iter()
                .find(|(m, _)| m.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        Some(Known {
            sha256: get(META_SHA256)?,
            headers: get(META_HEADERS)?,
            etag,
        })
    }
}

const META_SHA256: &str = "flashsale-sha256";
const META_HEADERS: &str = "flashsale-headers";

/// Hash of the headers an object is served with (stored as metadata too).
pub(crate) fn headers_hash(headers: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (k, v) in headers {
        h.update(k.to_ascii_lowercase().as_bytes());
        h.update(b": ");
        h.update(v.as_bytes());
        h.update(b"\n");
    }
    hex::encode(&h.finalize()[..8])
}

/// An object store: keys are relative to its prefix. Writes return the new ETag.
pub(crate) trait Remote {
    /// `s3://bucket/prefix`, `dir:PATH`, ... for messages.
    fn describe(&self) -> String;
    /// Every key, and how many requests the listing took.
    fn list(&self) -> impl Future<Output = Result<(Vec<Listed>, usize), RemoteError>>;
    /// The flashsale metadata of an object; `Ok(None)` if it has none or is gone.
    fn head(&self, key: &str) -> impl Future<Output = Result<Option<Known>, RemoteError>>;
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, RemoteError>>;
    fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        headers: &BTreeMap<String, String>,
        meta: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<Option<String>, RemoteError>>;
    /// An object's bytes and its ETag (what [`Remote::put_if`] names); `Ok(None)` if gone.
    fn get_tagged(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<(Vec<u8>, String)>, RemoteError>>;
    /// [`Remote::put`] only if the object is still the one read: `read` is
    /// its ETag then, `None` when there was none (S3's `If-Match` /
    /// `If-None-Match: *`). `Ok(false)`: it changed meanwhile, nothing written.
    fn put_if(
        &self,
        key: &str,
        body: Vec<u8>,
        headers: &BTreeMap<String, String>,
        meta: &BTreeMap<String, String>,
        read: Option<&str>,
    ) -> impl Future<Output = Result<bool, RemoteError>>;
    /// Replaces an object's headers and metadata without sending its bytes.
    fn set_headers(
        &self,
        key: &str,
        headers: &BTreeMap<String, String>,
        meta: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<Option<String>, RemoteError>>;
    /// Deletes keys; returns how many requests it took.
    fn delete(&self, keys: &[String]) -> impl Future<Output = Result<usize, RemoteError>>;
}

/// A CDN that can drop cached copies of paths.
pub(crate) trait Cdn {
    /// Starts an invalidation; the same `caller_reference` never creates a
    /// second one. Returns its id.
    fn invalidate(
        &self,
        paths: &[String],
        caller_reference: &str,
    ) -> impl Future<Output = Result<String, RemoteError>>;
    /// `true` once the invalidation has completed at every edge.
    fn completed(&self, id: &str) -> impl Future<Output = Result<bool, RemoteError>>;
    /// One cheap request: checks the distribution exists and opens a connection.
    fn warm(&self) -> impl Future<Output = Result<(), RemoteError>>;

    fn describe(&self) -> String;
}

/// No CDN in front: nothing to invalidate (a preview, a bucket served directly).
pub(crate) struct NoCdn;

impl Cdn for NoCdn {
    async fn invalidate(&self, _: &[String], _: &str) -> Result<String, RemoteError> {
        Ok(String::new())
    }

    async fn completed(&self, _: &str) -> Result<bool, RemoteError> {
        Ok(true)
    }

    async fn warm(&self) -> Result<(), RemoteError> {
        Ok(())
    }

    fn describe(&self) -> String {
        "no CDN".to_string()
    }
}

/// Why waiting for an invalidation ended without it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WaitError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("invalidation {id} was not completed after {}; it goes on in the background (check it in the CloudFront console)", crate::util::duration::words(*.waited))]
    Timeout { id: String, waited: Duration },
}

/// Waits until invalidation `id` has completed at every edge, asking with a
/// growing pause (0.5 s, doubling up to 10 s), for at most `timeout`.
/// Returns how many times it asked.
pub(crate) async fn wait_completed<C: Cdn>(
    cdn: &C,
    id: &str,
    timeout: Duration,
) -> Result<usize, WaitError> {
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(500);
    let mut asked = 0;
    loop {
        asked += 1;
        if cdn.completed(id).await? {
            return Ok(asked);
        }
        if Instant::now() + delay > deadline {
            return Err(WaitError::Timeout {
                id: id.to_string(),
                waited: timeout,
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

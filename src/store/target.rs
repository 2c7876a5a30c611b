//! The store a command works on, chosen at run time: the bucket of
//! `[publish]` (and its CloudFront distribution), or a local directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::aws::{load, AwsError, AwsFlags};
use super::s3::S3Remote;
use super::{CloudFront, DirRemote, Known, Listed, Remote, RemoteError};
use crate::config::Config;

/// A remote chosen at run time: the bucket of `[publish]`, or a directory.
pub(crate) enum Target {
    S3(S3Remote),
    Dir(DirRemote),
}

impl Target {
    /// `s3` (the `[publish]` section) or `dir:PATH`; for S3 also the
    /// CloudFront distribution, if configured. Credentials are resolved here.
    pub(crate) async fn connect(
        config: &Config,
        target: &str,
        flags: &AwsFlags,
    ) -> Result<(Target, Option<CloudFront>), TargetError> {
        if let Some(dir) = target.strip_prefix("dir:") {
            return Ok((Target::Dir(DirRemote::new(Path::new(dir))), None));
        }
        if target != "s3" {
            return Err(TargetError::Unknown {
                target: target.to_string(),
                config: config.path.clone(),
            });
        }
        let cfg = config
            .publish
            .as_ref()
            .ok_or_else(|| TargetError::NoPublish(config.path.clone()))?;
        let shared = load(cfg, flags).await?;
        #[cfg_attr(
            not(feature = "aws"),
            expect(
                unused_variables,
                reason = "no CloudFront client can be made without the AWS SDK: what follows never runs"
            )
        )]
        let cdn = cfg
            .distribution_id
            .as_deref()
            .map(|id| CloudFront::new(&shared, id));
        Ok((Target::S3(S3Remote::new(&shared, cfg)), cdn))
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum TargetError {
    #[error("unknown target `{target}`: use `s3` (the [publish] section of {}) or `dir:PATH`", config.display())]
    Unknown { target: String, config: PathBuf },
    #[error("{}: no [publish] section; add one, e.g.\n\n[publish]\nbucket = \"my-sale-bucket\"\nregion = \"eu-central-1\"\ndistribution_id = \"E2QWRUHAPOMQZL\"   # optional, CloudFront", .0.display())]
    NoPublish(PathBuf),
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl Remote for Target {
    fn describe(&self) -> String {
        match self {
            Target::S3(r) => r.describe(),
            Target::Dir(r) => r.describe(),
        }
    }

    async fn list(&self) -> Result<(Vec<Listed>, usize), RemoteError> {
        match self {
            Target::S3(r) => r.list().await,
            Target::Dir(r) => r.list().await,
        }
    }

    async fn head(&self, key: &str) -> Result<Option<Known>, RemoteError> {
        match self {
            Target::S3(r) => r.head(key).await,
            Target::Dir(r) => r.head(key).await,
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        match self {
            Target::S3(r) => r.get(key).await,
            Target::Dir(r) => r.get(key).await,
        }
    }

    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        headers: &BTreeMap<String, String>,
        meta: &BTreeMap<String, String>,
    ) -> Result<Option<String>, RemoteError> {
        match self {
            Target::S3(r) => r.put(key, body, headers, meta).await,
            Target::Dir(r) => r.put(key, body, headers, meta).await,
        }
    }

    async fn get_tagged(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, RemoteError> {
        match self {
            Target::S3(r) => r.get_tagged(key).await,
            Target::Dir(r) => r.get_tagged(key).await,
        }
    }

    async fn put_if(
        &self,
        key: &str,
        body: Vec<u8>,
        headers: &BTreeMap<String, String>,
        meta: &BTreeMap<String, String>,
        read: Option<&str>,
    ) -> Result<bool, RemoteError> {
        match self {
            Target::S3(r) => r.put_if(key, body, headers, meta, read).await,
            Target::Dir(r) => r.put_if(key, body, headers, meta, read).await,
        }
    }

    async fn set_headers(
        &self,
        key: &str,
        headers: &BTreeMap<String, String>,
        meta: &BTreeMap<String, String>,
    ) -> Result<Option<String>, RemoteError> {
        match self {
            Target::S3(r) => r.set_headers(key, headers, meta).await,
            Target::Dir(r) => r.set_headers(key, headers, meta).await,
        }
    }

    async fn delete(&self, keys: &[String]) -> Result<usize, RemoteError> {
        match self {
            Target::S3(r) => r.delete(keys).await,
            Target::Dir(r) => r.delete(keys).await,
        }
    }
}

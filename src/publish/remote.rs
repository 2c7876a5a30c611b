//! Where a publish writes: the `Remote` trait and its local implementations.
//!
//! S3 is one implementation (`s3.rs`); a directory with a headers sidecar is
//! another (previews and tests without a server); `DryRun` wraps either, reads
//! through and records writes instead of doing them, so a dry run executes the
//! very same plan code.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::plan::Known;

/// Why a remote operation failed, in one line a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Credentials missing, wrong or not allowed.
    Auth,
    /// The bucket (or distribution) does not exist.
    Missing,
    /// The endpoint could not be reached.
    Unreachable,
    Other,
}

impl RemoteError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        RemoteError {
            kind,
            message: message.into(),
        }
    }
}

/// One listed object.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Relative to the remote's prefix.
    pub key: String,
    pub etag: Option<String>,
}

/// What `publish` stores with every object besides its headers.
pub fn metadata(known: &Known) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("flashsale-sha256".to_string(), known.sha256.clone()),
        ("flashsale-headers".to_string(), known.headers.clone()),
    ])
}

/// Reads [`metadata`] back (keys are case-insensitive on the wire).
pub fn known_from_metadata(meta: &BTreeMap<String, String>, etag: Option<String>) -> Option<Known> {
    let get = |k: &str| {
        meta.iter()
            .find(|(m, _)| m.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    Some(Known {
        sha256: get("flashsale-sha256")?,
        headers: get("flashsale-headers")?,
        etag,
    })
}

/// An object store: keys are relative to its prefix. Writes return the new ETag.
pub trait Remote {
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

/// A directory standing in for a bucket: objects are files, and each one's
/// headers and metadata are in `.flashsale/objects/<key>.json`.
pub struct DirRemote {
    root: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Sidecar {
    headers: BTreeMap<String, String>,
    metadata: BTreeMap<String, String>,
    etag: String,
}

const SIDECARS: &str = ".flashsale/objects";

impl DirRemote {
    pub fn new(root: &Path) -> DirRemote {
        DirRemote {
            root: root.to_path_buf(),
        }
    }

    fn io(&self, what: &str, e: std::io::Error) -> RemoteError {
        RemoteError::new(
            ErrorKind::Other,
            format!("{what} in {}: {e}", self.root.display()),
        )
    }

    fn sidecar_path(&self, key: &str) -> PathBuf {
        self.root.join(SIDECARS).join(format!("{key}.json"))
    }

    fn read_sidecar(&self, key: &str) -> Option<Sidecar> {
        let text = std::fs::read_to_string(self.sidecar_path(key)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The headers an object would be served with (for previews and tests).
    pub fn headers(&self, key: &str) -> Option<BTreeMap<String, String>> {
        self.read_sidecar(key).map(|s| s.headers)
    }

    fn write_sidecar(&self, key: &str, sidecar: &Sidecar) -> Result<(), RemoteError> {
        let json = serde_json::to_vec(sidecar).expect("serialisable");
        crate::output::write_atomically(&self.sidecar_path(key), &json)
            .map_err(|e| self.io("cannot write headers", e))
    }
}

fn etag_of(body: &[u8]) -> String {
    format!("\"{}\"", &hex::encode(Sha256::digest(body))[..32])
}

impl Remote for DirRemote {
    fn describe(&self) -> String {
        format!("dir:{}", self.root.display())
    }

    async fn list(&self) -> Result<(Vec<Listed>, usize), RemoteError> {
        let mut out = Vec::new();
        if !self.root.exists() {
            return Ok((out, 1));
        }
        for entry in walkdir::WalkDir::new(&self.root).sort_by_file_name() {
            let entry = entry.map_err(|e| self.io("cannot list", std::io::Error::other(e)))?;
            if !entry.file_type().is_file() {
                continue;
            }
            let key = entry
                .path()
                .strip_prefix(&self.root)
                .expect("below root")
                .to_string_lossy()
                .replace('\\', "/");
            // Our own sidecars, and temporary files of an interrupted write.
            let name = entry.file_name().to_string_lossy();
            if key.starts_with(SIDECARS) || (name.starts_with('.') && name.contains(".tmp-")) {
                continue;
            }

            let etag = self.read_sidecar(&key).map(|s| s.etag);
            out.push(Listed { key, etag });
        }
        Ok((out, 1))
    }

    async fn head(&self, key: &str) -> Result<Option<Known>, RemoteError> {
        Ok(self
            .read_sidecar(key)
            .and_then(|s| known_from_metadata(&s.metadata, Some(s.etag))))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        match std::fs::read(self.root.join(key)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io("cannot read", e)),
        }
    }

    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        headers: &BTreeMap<String, String>,
        meta: &BTreeMap<String, String>,
    ) -> Result<Option<String>, RemoteError> {
        let etag = etag_of(&body);
        crate::output::write_atomically(&self.root.join(key), &body)
            .map_err(|e| self.io("cannot write", e))?;
        self.write_sidecar(
            key,
            &Sidecar {
                headers: headers.clone(),
                metadata: meta.clone(),
                etag: etag.clone(),
            },
        )?;
        Ok(Some(etag))
    }

    async fn set_headers(
        &self,
        key: &str,
        headers: &BTreeMap<String, String>,
        meta: &BTreeMap<String, String>,
    ) -> Result<Option<String>, RemoteError> {
        let body = std::fs::read(self.root.join(key)).map_err(|e| self.io("cannot read", e))?;
        let etag = etag_of(&body);
        self.write_sidecar(
            key,
            &Sidecar {
                headers: headers.clone(),
                metadata: meta.clone(),
                etag: etag.clone(),
            },
        )?;
        Ok(Some(etag))
    }

    async fn delete(&self, keys: &[String]) -> Result<usize, RemoteError> {
        for key in keys {
            for p in [self.root.join(key), self.sidecar_path(key)] {
                match std::fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(self.io("cannot delete", e)),
                }
            }
        }
        Ok(1)
    }
}

/// Reads from the real remote, records writes instead of doing them.
pub struct DryRun<R> {
    inner: R,
    pub writes: Mutex<Vec<String>>,
}

impl<R> DryRun<R> {
    pub fn new(inner: R) -> Self {
        DryRun {
            inner,
            writes: Mutex::new(Vec::new()),
        }
    }

    fn record(&self, what: String) {
        self.writes.lock().expect("lock poisoned").push(what);
    }
}

impl<R: Remote> Remote for DryRun<R> {
    fn describe(&self) -> String {
        format!("{} (dry run)", self.inner.describe())
    }

    async fn list(&self) -> Result<(Vec<Listed>, usize), RemoteError> {
        self.inner.list().await
    }

    async fn head(&self, key: &str) -> Result<Option<Known>, RemoteError> {
        self.inner.head(key).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        self.inner.get(key).await
    }

    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        _: &BTreeMap<String, String>,
        _: &BTreeMap<String, String>,
    ) -> Result<Option<String>, RemoteError> {
        self.record(format!("put {key}"));
        Ok(Some(etag_of(&body)))
    }

    async fn set_headers(
        &self,
        key: &str,
        _: &BTreeMap<String, String>,
        _: &BTreeMap<String, String>,
    ) -> Result<Option<String>, RemoteError> {
        self.record(format!("set headers {key}"));
        Ok(None)
    }

    async fn delete(&self, keys: &[String]) -> Result<usize, RemoteError> {
        for k in keys {
            self.record(format!("delete {k}"));
        }
        Ok(0)
    }
}

/// A CDN stand-in for dry runs: records what it would invalidate.
pub struct DryRunCdn<C>(pub C);

impl<C: super::cdn::Cdn> super::cdn::Cdn for DryRunCdn<C> {
    async fn invalidate(&self, _: &[String], _: &str) -> Result<String, RemoteError> {
        Ok("(dry run)".to_string())
    }

    async fn completed(&self, _: &str) -> Result<bool, RemoteError> {
        Ok(true)
    }

    async fn warm(&self) -> Result<(), RemoteError> {
        self.0.warm().await
    }

    fn describe(&self) -> String {
        format!("{} (dry run)", self.0.describe())
    }
}

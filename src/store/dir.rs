//! A directory standing in for a bucket: objects are files, and each one's
//! headers and metadata are in `.flashsale/objects/<key>.json`. For previews,
//! tests and deployments that serve files straight from a disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ErrorKind, Known, Listed, Remote, RemoteError};
use crate::util::fs::{is_temporary, write_atomically};

pub(crate) struct DirRemote {
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
    pub(crate) fn new(root: &Path) -> DirRemote {
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

    /// Writes the sidecar of `key`, whose bytes are `body`; returns its ETag.
    fn record(
        &self,
        key: &str,
        body: &[u8],
        headers: &BTreeMap<String, String>,
        meta: &BTreeMap<String, String>,
    ) -> Result<Option<String>, RemoteError> {
        let sidecar = Sidecar {
            headers: headers.clone(),
            metadata: meta.clone(),
            etag: etag_of(body),
        };
        let json = serde_json::to_vec(&sidecar).expect("serialisable");
        write_atomically(&self.sidecar_path(key), &json)
            .map_err(|e| self.io("cannot write headers", e))?;
        Ok(Some(sidecar.etag))
    }
}

pub(super) fn etag_of(body: &[u8]) -> String {
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
            if key.starts_with(SIDECARS) || is_temporary(&name) {
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
            .and_then(|s| Known::from_metadata(&s.metadata, Some(s.etag))))
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
        write_atomically(&self.root.join(key), &body).map_err(|e| self.io("cannot write", e))?;
        self.record(key, &body, headers, meta)
    }

    async fn get_tagged(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, RemoteError> {
        Ok(self.get(key).await?.map(|b| {
            let etag = etag_of(&b);
            (b, etag)
        }))
    }

    /// S3's conditional write, emulated: the check and the write under an
    /// exclusive lock of the directory's `.flashsale/objects/lock`, which every
    /// `put_if` on this directory takes (any process of this machine).
    async fn put_if(
        &self,
        key: &str,
        body: Vec<u8>,
        headers: &BTreeMap<String, String>,
        meta: &BTreeMap<String, String>,
        read: Option<&str>,
    ) -> Result<bool, RemoteError> {
        // Among the sidecars (never listed as an object), named unlike any (`<key>.json`).
        let lock_path = self.root.join(SIDECARS).join("lock");
        std::fs::create_dir_all(self.root.join(SIDECARS))
            .map_err(|e| self.io("cannot create", e))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| self.io("cannot open the lock", e))?;
        lock.lock().map_err(|e| self.io("cannot lock", e))?;
        let now = self.get(key).await?.map(|b| etag_of(&b));
        if now.as_deref() != read {
            return Ok(false);
        }
        self.put(key, body, headers, meta).await?;
        Ok(true)
    }

    async fn set_headers(
        &self,
        key: &str,
        headers: &BTreeMap<String, String>,
        meta: &BTreeMap<String, String>,
    ) -> Result<Option<String>, RemoteError> {
        let body = std::fs::read(self.root.join(key)).map_err(|e| self.io("cannot read", e))?;
        self.record(key, &body, headers, meta)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_conditional_write_holds_only_over_the_version_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirRemote::new(dir.path());
        let none = BTreeMap::new();
        assert!(store
            .put_if("sale.js", b"a".to_vec(), &none, &none, None)
            .await
            .unwrap());
        // Not absent any more.
        assert!(!store
            .put_if("sale.js", b"b".to_vec(), &none, &none, None)
            .await
            .unwrap());
        let (bytes, read) = store.get_tagged("sale.js").await.unwrap().unwrap();
        assert_eq!(bytes, b"a");
        // Another writer lands after the read: the stale write is refused.
        store
            .put("sale.js", b"c".to_vec(), &none, &none)
            .await
            .unwrap();
        assert!(!store
            .put_if("sale.js", b"d".to_vec(), &none, &none, Some(&read))
            .await
            .unwrap());
        assert_eq!(store.get("sale.js").await.unwrap().unwrap(), b"c");
        let (_, read) = store.get_tagged("sale.js").await.unwrap().unwrap();
        assert!(store
            .put_if("sale.js", b"d".to_vec(), &none, &none, Some(&read))
            .await
            .unwrap());
        // The lock is no object of the store.
        let (listed, _) = store.list().await.unwrap();
        assert_eq!(
            listed.iter().map(|l| l.key.as_str()).collect::<Vec<_>>(),
            ["sale.js"]
        );
    }
}

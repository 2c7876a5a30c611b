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

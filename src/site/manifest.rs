//! `public/manifest.json`: every output file with its sha256, size, class and the
//! exact headers it must be served with. `serve` and `publish` read headers from
//! here and nowhere else.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::headers::Class;

pub(crate) const FILE_NAME: &str = "manifest.json";
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// Relative to the output root, `/`-separated.
    pub(crate) path: String,
    pub(crate) sha256: String,
    pub(crate) size: u64,
    pub(crate) class: Class,
    pub(crate) headers: BTreeMap<String, String>,
}

/// Why a manifest cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ManifestError {
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}:{line}:{column}: not a flashsale manifest: {why}; run `flashsale build` again", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        why: String,
    },
    #[error("{}: manifest format {version} is not supported by this flashsale (expects {FORMAT_VERSION}); run `flashsale build` again", path.display())]
    Version { path: PathBuf, version: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub(crate) version: u32,
    pub(crate) sale: String,
    /// Sorted by path.
    pub(crate) files: Vec<Entry>,
}

impl Manifest {
    pub(crate) fn new(sale: &str, mut files: Vec<Entry>) -> Manifest {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Manifest {
            version: FORMAT_VERSION,
            sale: sale.to_string(),
            files,
        }
    }

    /// Reads `dir/manifest.json`; `Ok(None)` when there is none.
    pub(crate) fn read(dir: &Path) -> Result<Option<Manifest>, ManifestError> {
        let path = dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(ManifestError::Io { path, error }),
        };
        let m: Manifest = serde_json::from_str(&text).map_err(|e| ManifestError::Invalid {
            line: e.line(),
            column: e.column(),
            why: e.to_string(),
            path: path.clone(),
        })?;
        if m.version != FORMAT_VERSION {
            return Err(ManifestError::Version {
                path,
                version: m.version,
            });
        }
        Ok(Some(m))
    }

    /// One entry per line: small, and diffs of two builds read well.
    pub(crate) fn to_json(&self) -> String {
        let out = format!(
            "{{\"version\":{},\"sale\":{},\"files\":[\n",
            self.version,
            serde_json::to_string(&self.sale).expect("string")
        );
        let mut out = out.into_bytes();
        out.reserve(self.files.len() * 200);
        for (i, e) in self.files.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b",\n");
            }
            serde_json::to_writer(&mut out, e).expect("entry");
        }
        out.extend_from_slice(b"\n]}\n");
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    /// Adds or replaces the entry for `entry.path`, keeping the order.
    pub(crate) fn upsert(&mut self, entry: Entry) {
        match self.files.binary_search_by(|e| e.path.cmp(&entry.path)) {
            Ok(i) => self.files[i] = entry,
            Err(i) => self.files.insert(i, entry),
        }
    }

    pub(crate) fn remove(&mut self, path: &str) {
        if let Ok(i) = self.files.binary_search_by(|e| e.path.as_str().cmp(path)) {
            self.files.remove(i);
        }
    }

    pub(crate) fn get(&self, path: &str) -> Option<&Entry> {
        self.files
            .binary_search_by(|e| e.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.files[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_and_is_sorted() {
        let e = |p: &str| Entry {
            path: p.into(),
            sha256: "00".into(),
            size: 1,
            class: Class::of(p),
            headers: BTreeMap::new(),
        };
        let m = Manifest::new("demo", vec![e("sale.js"), e("index.html")]);
        assert_eq!(m.files[0].path, "index.html");
        let back: Manifest = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(back, m);
        assert!(back.get("sale.js").is_some());
        assert!(back.get("nope").is_none());
    }
}

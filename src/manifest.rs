//! `public/manifest.json`: every output file with its sha256, size, class and the
//! exact headers it must be served with. `serve` and `publish` read headers from
//! here and nowhere else.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::headers::Class;

pub const FILE_NAME: &str = "manifest.json";
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative to the output root, `/`-separated.
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub class: Class,
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub sale: String,
    /// Sorted by path.
    pub files: Vec<Entry>,
}

impl Manifest {
    pub fn new(sale: &str, mut files: Vec<Entry>) -> Manifest {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Manifest {
            version: FORMAT_VERSION,
            sale: sale.to_string(),
            files,
        }
    }

    /// Reads `dir/manifest.json`; `Ok(None)` when there is none.
    pub fn read(dir: &Path) -> Result<Option<Manifest>, String> {
        let path = dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let m: Manifest = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}:{}:{}: not a flashsale manifest: {e}; run `flashsale build` again",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
        if m.version != FORMAT_VERSION {
            return Err(format!(
                "{}: manifest format {} is not supported by this flashsale (expects {FORMAT_VERSION}); run `flashsale build` again",
                path.display(),
                m.version
            ));
        }
        Ok(Some(m))
    }

    /// One entry per line: small, and diffs of two builds read well.
    pub fn to_json(&self) -> String {
        let mut out = format!(
            "{{\"version\":{},\"sale\":{},\"files\":[\n",
            self.version,
            serde_json::to_string(&self.sale).expect("string")
        );
        for (i, e) in self.files.iter().enumerate() {
            if i > 0 {
                out.push_str(",\n");
            }
            out.push_str(&serde_json::to_string(e).expect("entry"));
        }
        out.push_str("\n]}\n");
        out
    }

    /// Adds or replaces the entry for `entry.path`, keeping the order.
    pub fn upsert(&mut self, entry: Entry) {
        match self.files.binary_search_by(|e| e.path.cmp(&entry.path)) {
            Ok(i) => self.files[i] = entry,
            Err(i) => self.files.insert(i, entry),
        }
    }

    pub fn remove(&mut self, path: &str) {
        if let Ok(i) = self.files.binary_search_by(|e| e.path.as_str().cmp(path)) {
            self.files.remove(i);
        }
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
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

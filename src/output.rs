//! Writing the output directory all-or-nothing, and only what changed.
//!
//! Files are first written to a staging directory inside the output; nothing
//! visible changes until [`Output::commit`] renames them into place. A failed
//! build drops the staging directory and leaves the previous output as it was.
//! A file whose bytes are unchanged is not touched, so its mtime stays.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use crate::headers::{self, Class, HeaderRule};
use crate::manifest::{self, Entry, Manifest};

const STAGING: &str = ".flashsale-staging";

/// An output file, staged or found unchanged.
#[derive(Debug)]
pub struct Staged {
    pub entry: Entry,
    /// The staged copy, or `None` when the file on disk already has these bytes.
    tmp: Option<PathBuf>,
}

impl Staged {
    pub fn changed(&self) -> bool {
        self.tmp.is_some()
    }
}

/// What a commit did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub written: Vec<String>,
    pub unchanged: usize,
    pub removed: Vec<String>,
}

/// The output directory during one build.
pub struct Output {
    root: PathBuf,
    staging: PathBuf,
    counter: AtomicUsize,
    committed: bool,
}

impl Output {
    /// Prepares `root` (created if missing) with an empty staging directory.
    pub fn open(root: &Path) -> io::Result<Output> {
        std::fs::create_dir_all(root)?;
        let staging = root.join(STAGING);
        if staging.exists() {
            std::fs::remove_dir_all(&staging)?;
        }
        std::fs::create_dir(&staging)?;
        Ok(Output {
            root: root.to_path_buf(),
            staging,
            counter: AtomicUsize::new(0),
            committed: false,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Computes `path`'s manifest entry and stages its bytes unless the file on
    /// disk already holds exactly them. Safe to call from many threads.
    pub fn stage(&self, path: &str, bytes: &[u8], rules: &[HeaderRule]) -> io::Result<Staged> {
        let entry = Entry {
            path: path.to_string(),
            sha256: hex::encode(Sha256::digest(bytes)),
            size: bytes.len() as u64,
            class: Class::of(path),
            headers: headers::for_path(path, rules),
        };
        let target = self.root.join(path);
        let same = match std::fs::metadata(&target) {
            Ok(m) if m.is_file() && m.len() == bytes.len() as u64 => {
                std::fs::read(&target)? == bytes
            }
            _ => false,
        };
        if same {
            return Ok(Staged { entry, tmp: None });
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let tmp = self.staging.join(n.to_string());
        std::fs::write(&tmp, bytes)?;
        Ok(Staged {
            entry,
            tmp: Some(tmp),
        })
    }

    /// Moves staged files into place, removes `removed` (or, with `None`, every
    /// file not in `manifest`), and writes the manifest last.
    pub fn commit(
        mut self,
        staged: Vec<Staged>,
        removed: Option<Vec<String>>,
        manifest: &Manifest,
    ) -> io::Result<Changes> {
        let mut changes = Changes::default();
        // Without a manifest a half-done commit can never look complete.
        remove_if_exists(&self.root.join(manifest::FILE_NAME))?;
        for s in staged {
            match s.tmp {
                Some(tmp) => {
                    let target = self.root.join(&s.entry.path);
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    std::fs::rename(&tmp, &target)?;
                    changes.written.push(s.entry.path);
                }
                None => changes.unchanged += 1,
            }
        }
        match removed {
            Some(paths) => {
                for p in paths {
                    if manifest.get(&p).is_none() && remove_if_exists(&self.root.join(&p))? {
                        remove_empty_parents(&self.root, &self.root.join(&p));
                        changes.removed.push(p);
                    }
                }
            }
            None => {
                let keep: HashSet<&str> = manifest.files.iter().map(|e| e.path.as_str()).collect();
                changes.removed = self.remove_stale(&keep)?;
            }
        }
        write_atomically(
            &self.root.join(manifest::FILE_NAME),
            manifest.to_json().as_bytes(),
        )?;
        std::fs::remove_dir_all(&self.staging)?;
        self.committed = true;
        changes.written.sort();
        changes.removed.sort();
        Ok(changes)
    }

    fn remove_stale(&self, keep: &HashSet<&str>) -> io::Result<Vec<String>> {
        let mut removed = Vec::new();
        let mut dirs = Vec::new();
        for entry in walkdir::WalkDir::new(&self.root)
            .min_depth(1)
            .into_iter()
            .filter_entry(|e| e.file_name() != STAGING)
        {
            let entry = entry.map_err(io::Error::other)?;
            let rel = entry
                .path()
                .strip_prefix(&self.root)
                .expect("walk stays below root")
                .to_string_lossy()
                .replace('\\', "/");
            if entry.file_type().is_dir() {
                dirs.push(entry.into_path());
            } else if rel != manifest::FILE_NAME && !keep.contains(rel.as_str()) {
                std::fs::remove_file(entry.path())?;
                removed.push(rel);
            }
        }
        // Deepest first, so emptied parents go too.
        for dir in dirs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
        Ok(removed)
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

fn remove_if_exists(path: &Path) -> io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn remove_empty_parents(root: &Path, path: &Path) {
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d == root || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// Writes `path` through a temporary file in the same directory and a rename,
/// so readers see the old or the new contents, never a part.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

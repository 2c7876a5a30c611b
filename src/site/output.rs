//! Writing the output directory all-or-nothing, and only what changed.
//!
//! Changed files are first written to a staging tree inside the output that
//! mirrors its layout; nothing visible changes until [`Output::commit`] moves
//! them into place. A failed build drops the staging tree and leaves the
//! previous output as it was. A file whose bytes are unchanged is not touched,
//! so its mtime stays.
//!
//! Commit moves a whole staged directory with one rename when its target does
//! not exist yet (a first build is a handful of renames), and file by file
//! otherwise. Staging in a mirrored tree also keeps parallel writers out of
//! each other's way: ext4 serialises file creation per directory.
//!
//! The staging root and each directory directly below it (`items/`,
//! `assets/`) ask the file system to spread their subdirectories
//! ([`spread_subdirectories`]): after `rm -rf public`, 10,000 item directories
//! created next to where the old ones were deleted cost ext4 seconds of
//! scanning past recently deleted inodes; spread, a clean build after a
//! delete costs what a build into a fresh directory does.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::config::headers::{self, Class, HeaderRule};
use crate::site::manifest::{self, Entry, Manifest};
use crate::util::fs::{spread_subdirectories, write_atomically};
use crate::util::sync::lock;

const STAGING: &str = ".flashsale-staging";

/// An output file, staged or found unchanged.
#[derive(Debug)]
pub(crate) struct Staged {
    pub(crate) entry: Entry,
    /// Whether new bytes were staged (else the file on disk already has them).
    changed: bool,
}

/// What a commit did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Changes {
    pub(crate) written: Vec<String>,
    pub(crate) unchanged: usize,
    pub(crate) removed: Vec<String>,
}

/// The output directory during one build.
pub(crate) struct Output {
    root: PathBuf,
    staging: PathBuf,
    committed: bool,
    /// Directories directly below the staging root, created (and spread) once.
    tops: std::sync::Mutex<HashSet<std::ffi::OsString>>,
    /// Every file in the output before this build, listed once when first
    /// needed (`stage_copy`, a full commit).
    existing: std::sync::OnceLock<Result<HashSet<String>, (io::ErrorKind, String)>>,
}

impl Output {
    /// Prepares `root` (created if missing) with an empty staging tree.
    pub(crate) fn open(root: &Path) -> io::Result<Output> {
        std::fs::create_dir_all(root)?;
        let staging = root.join(STAGING);
        if staging.exists() {
            std::fs::remove_dir_all(&staging)?;
        }
        std::fs::create_dir(&staging)?;
        spread_subdirectories(&staging);
        Ok(Output {
            root: root.to_path_buf(),
            staging,
            committed: false,
            tops: Default::default(),
            existing: Default::default(),
        })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Computes `path`'s manifest entry and stages its bytes unless the file on
    /// disk already holds exactly them. Safe to call from many threads.
    pub(crate) fn stage(
        &self,
        path: &str,
        bytes: &[u8],
        rules: &[HeaderRule],
    ) -> io::Result<Staged> {
        let entry = entry(
            path,
            hex::encode(Sha256::digest(bytes)),
            bytes.len() as u64,
            rules,
        );
        let target = self.root.join(path);
        let same = match std::fs::metadata(&target) {
            Ok(m) if m.is_file() && m.len() == bytes.len() as u64 => {
                std::fs::read(&target)? == bytes
            }
            _ => false,
        };
        if !same {
            std::fs::write(self.staging_path(path)?, bytes)?;
        }
        Ok(Staged {
            entry,
            changed: !same,
        })
    }

    /// Stages a content-addressed file (its name carries its hash) whose
    /// length and SHA-256 are known, copied from `source` only when the
    /// output lacks a file of that name: a rebuild with the file in place
    /// reads nothing, not even its metadata (the output is listed once per
    /// build). Files reach the output whole (staged, then renamed), so a file
    /// of that name holds those bytes.
    pub(crate) fn stage_copy(
        &self,
        path: &str,
        source: &Path,
        len: u64,
        sha256: &str,
        rules: &[HeaderRule],
    ) -> io::Result<Staged> {
        let entry = entry(path, sha256.to_string(), len, rules);
        let same = self.existing()?.contains(path);
        if !same {
            std::fs::copy(source, self.staging_path(path)?)?;
        }
        Ok(Staged {
            entry,
            changed: !same,
        })
    }

    /// Where `path` is staged, its directories made.
    fn staging_path(&self, path: &str) -> io::Result<PathBuf> {
        let staged = self.staging.join(path);
        if let Some(parent) = staged.parent() {
            self.make_top(path)?;
            std::fs::create_dir_all(parent)?;
        }
        Ok(staged)
    }

    fn existing(&self) -> io::Result<&HashSet<String>> {
        // Other threads wait while one lists.
        let listed = self.existing.get_or_init(|| {
            self.files()
                .map(|f| f.into_iter().collect())
                .map_err(|e| (e.kind(), e.to_string()))
        });
        listed
            .as_ref()
            .map_err(|(kind, e)| io::Error::new(*kind, e.clone()))
    }

    /// Creates the staging directory directly below the root that `path`
    /// lies in (`items/` for `items/x/index.html`), once, spreading its
    /// subdirectories; before any of them exists.
    fn make_top(&self, path: &str) -> io::Result<()> {
        let mut parts = Path::new(path).components();
        let (Some(top), Some(_)) = (parts.next(), parts.next()) else {
            return Ok(());
        };
        let mut tops = lock(&self.tops);
        if tops.insert(top.as_os_str().to_os_string()) {
            let dir = self.staging.join(top);
            match std::fs::create_dir(&dir) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
            spread_subdirectories(&dir);
        }
        Ok(())
    }

    /// Moves staged files into place, removes `removed` (or, with `None`, every
    /// file not in `manifest`), and writes the manifest last.
    pub(crate) fn commit(
        mut self,
        staged: Vec<Staged>,
        removed: Option<Vec<String>>,
        manifest: &Manifest,
    ) -> io::Result<Changes> {
        let mut changes = Changes::default();
        // Without a manifest a half-done commit can never look complete.
        remove_if_exists(&self.root.join(manifest::FILE_NAME))?;
        move_tree(&self.staging, &self.root)?;
        for s in staged {
            if s.changed {
                changes.written.push(s.entry.path);
            } else {
                changes.unchanged += 1;
            }
        }
        let doomed: Vec<String> = match removed {
            Some(paths) => paths
                .into_iter()
                .filter(|p| manifest.get(p).is_none())
                .collect(),
            None => {
                // Listed before the staged files moved in: those are all kept.
                let keep: HashSet<&str> = manifest.files.iter().map(|e| e.path.as_str()).collect();
                let mut doomed: Vec<String> = self
                    .existing()?
                    .iter()
                    .filter(|p| *p != manifest::FILE_NAME && !keep.contains(p.as_str()))
                    .cloned()
                    .collect();
                doomed.sort();
                doomed
            }
        };
        for p in doomed {
            let path = self.root.join(&p);
            if remove_if_exists(&path)? {
                remove_empty_parents(&self.root, &path);
                changes.removed.push(p);
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

    /// Every file now in the output (outside the staging tree), `/`-separated.
    fn files(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        list(&self.root, &mut String::new(), &mut out)?;
        Ok(out)
    }
}

/// Appends the files below `dir` to `out` as `<prefix><name>`, recursing
/// into directories (not into links, nor the staging tree). By hand rather
/// than by `walkdir`: an output of thousands of photos' variants is listed on
/// every build, and building a path per entry is most of a walk's cost.
fn list(dir: &Path, prefix: &mut String, out: &mut Vec<String>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if prefix.is_empty() && name == STAGING {
            continue;
        }
        if entry.file_type()?.is_dir() {
            let len = prefix.len();
            prefix.push_str(&name);
            prefix.push('/');
            list(&entry.path(), prefix, out)?;
            prefix.truncate(len);
        } else {
            out.push(format!("{prefix}{name}"));
        }
    }
    Ok(())
}

/// The manifest entry of the output file `path`.
fn entry(path: &str, sha256: String, size: u64, rules: &[HeaderRule]) -> Entry {
    Entry {
        path: path.to_string(),
        sha256,
        size,
        class: Class::of(path),
        headers: headers::for_path(path, rules),
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

/// Moves everything under `from` to the same place under `to`: a directory
/// whose target is missing goes over whole, otherwise entry by entry.
fn move_tree(from: &Path, to: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let src_is_dir = entry.file_type()?.is_dir();
        match std::fs::symlink_metadata(&dst) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::rename(&src, &dst)?,
            Err(e) => return Err(e),
            Ok(m) if src_is_dir && m.is_dir() => move_tree(&src, &dst)?,
            Ok(m) => {
                // A file where a directory was, or the reverse.
                if m.is_dir() != src_is_dir {
                    if m.is_dir() {
                        std::fs::remove_dir_all(&dst)?;
                    } else {
                        std::fs::remove_file(&dst)?;
                    }
                }
                std::fs::rename(&src, &dst)?;
            }
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::fs::tests::{has_topdir_flag, on_ext};

    #[test]
    fn a_build_spreads_the_item_directories_and_moves_them_into_place() {
        let dir = tempfile::tempdir_in(concat!(env!("CARGO_MANIFEST_DIR"), "/target")).unwrap();
        let root = dir.path().join("public");
        let out = Output::open(&root).unwrap();
        let staged: Vec<Staged> = ["items/a/index.html", "items/b/index.html", "index.html"]
            .iter()
            .map(|p| out.stage(p, p.as_bytes(), &[]).unwrap())
            .collect();
        let entries = staged.iter().map(|s| s.entry.clone()).collect();
        let changes = out
            .commit(staged, None, &Manifest::new("t", entries))
            .unwrap();
        assert_eq!(changes.written.len(), 3);
        assert_eq!(
            std::fs::read_to_string(root.join("items/b/index.html")).unwrap(),
            "items/b/index.html"
        );
        assert!(!root.join(STAGING).exists());
        if on_ext(&root) {
            // The item directories were created below a spreading `items/`.
            assert_eq!(has_topdir_flag(&root.join("items")), Some(true));
            assert_eq!(has_topdir_flag(&root.join("items/a")), Some(false));
        }
    }

    #[test]
    fn a_content_addressed_file_is_copied_only_when_the_output_lacks_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("public");
        let source = dir.path().join("cached.webp");
        std::fs::write(&source, b"webp bytes").unwrap();
        let path = "assets/p-320.0123456789abcdef.webp";
        let build = || {
            let out = Output::open(&root).unwrap();
            let staged = vec![out.stage_copy(path, &source, 10, "ab", &[]).unwrap()];
            let entries = staged.iter().map(|s| s.entry.clone()).collect();
            out.commit(staged, None, &Manifest::new("t", entries))
                .unwrap()
        };
        assert_eq!(build().written, [path]);
        assert_eq!(std::fs::read(root.join(path)).unwrap(), b"webp bytes");
        let again = build();
        assert_eq!((again.written.len(), again.unchanged), (0, 1));
        // Deleted by hand: put back.
        std::fs::remove_file(root.join(path)).unwrap();
        assert_eq!(build().written, [path]);
        assert!(root.join(path).is_file());
    }
}

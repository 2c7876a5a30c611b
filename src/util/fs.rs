//! File writes that readers and crashes never see half done.

use std::io;
use std::path::Path;

/// Writes `path` through a temporary file in the same directory and a rename,
/// so readers see the old or the new contents, never a part.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}{TMP_MARK}{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// What the temporary files of [`write_atomically`] have in their names.
pub(crate) const TMP_MARK: &str = ".tmp-";

/// Whether a file name is one of [`write_atomically`]'s temporary files
/// (left behind when a write was interrupted).
pub(crate) fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.contains(TMP_MARK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b.txt");
        write_atomically(&p, b"one").unwrap();
        write_atomically(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<String> = std::fs::read_dir(dir.path().join("a"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["b.txt"]);
        assert!(is_temporary(".b.txt.tmp-42") && !is_temporary("b.txt"));
    }
}

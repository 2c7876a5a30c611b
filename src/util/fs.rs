//! File writes that readers and crashes never see half done, and one hint to
//! the file system about where new directories should go.

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// `path`'s directory (made if missing) and a temporary name beside `path`.
fn temp_beside(path: &Path) -> io::Result<(&Path, std::path::PathBuf)> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((
        dir,
        dir.join(format!(".{name}{TMP_MARK}{}", std::process::id())),
    ))
}

/// Writes `path` through a temporary file in the same directory and a rename,
/// so readers see the old or the new contents, never a part.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (_, tmp) = temp_beside(path)?;
    std::fs::write(&tmp, bytes)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// Like [`write_atomically`], and durable when it returns: the file is
/// fsynced before the rename and its directory after, so a power cut leaves
/// the old contents or the new, never none. Created 0600: what is kept this
/// way sits beside a journal (a gate id, an offset, a repair's set-aside
/// lines with customer ids) and is for the gate's user only.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (dir, tmp) = temp_beside(path)?;
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Appends `bytes` to `path` (created 0600 if missing) and fsyncs it, and its
/// directory when the file is new.
pub(crate) fn append_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let existed = path.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_data()?;
    match (existed, path.parent()) {
        (false, Some(dir)) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => Ok(()),
    }
}

/// Makes a directory's entries (new or renamed files) survive a power cut.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Creates `dir` and any missing parents, each made durable in its own parent.
pub(crate) fn create_dir_durably(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    std::fs::create_dir_all(dir)?;
    for d in missing.iter().rev() {
        if let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
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

/// Asks the file system to spread the subdirectories later created in `dir`
/// over its block groups, as `chattr +T dir` does: ext2/3/4's "top of a
/// directory hierarchy" flag (`FS_TOPDIR_FL`), which makes its Orlov
/// allocator place each new subdirectory in a lightly used group instead of
/// next to its parent. Returns whether the flag is set.
///
/// Why: on ext4 without a journal, a new inode is not given one freed in the
/// last minute (five if its inode table block is still dirty); the allocator
/// skips such inodes one by one, from the start of the group, for every
/// inode it allocates. After `rm -rf public`, the group where the old output
/// lived is full of them, and a build that put 10,000 new directories and
/// files back there spent seconds in that scan (`recently_deleted`), more
/// with every repetition. Spread over the groups, each new directory and its
/// file land where free inodes were never used. Elsewhere (tmpfs, XFS, btrfs,
/// a journaled ext4 where the flag changes only placement) it costs nothing.
pub(crate) fn spread_subdirectories(dir: &Path) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        /// `FS_TOPDIR_FL` in `<linux/fs.h>`.
        const TOPDIR: libc::c_int = 0x0002_0000;
        let Ok(f) = std::fs::File::open(dir) else {
            return false;
        };
        let mut flags: libc::c_int = 0;
        // SAFETY: both ioctls read or write one int through a valid pointer,
        // on a descriptor this function owns.
        unsafe {
            if libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) != 0 {
                return false;
            }
            if flags & TOPDIR != 0 {
                return true;
            }
            flags |= TOPDIR;
            libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) == 0
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        false
    }
}

#[cfg(test)]
pub(crate) mod tests {
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

    /// Whether `dir` has ext2/3/4's TOPDIR flag; `None` where flags cannot be read.
    pub(crate) fn has_topdir_flag(dir: &Path) -> Option<bool> {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(dir).ok()?;
        let mut flags: libc::c_int = 0;
        // SAFETY: reads one int through a valid pointer.
        let r = unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) };
        (r == 0).then_some(flags & 0x0002_0000 != 0)
    }

    /// Whether `dir` is on ext2/3/4 (they share one magic number).
    pub(crate) fn on_ext(dir: &Path) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
        // SAFETY: statfs fills the zeroed struct for a valid C string.
        unsafe {
            let mut st: libc::statfs = std::mem::zeroed();
            libc::statfs(path.as_ptr(), &mut st) == 0 && st.f_type as i64 == 0xEF53
        }
    }

    #[test]
    fn spreading_sets_the_topdir_flag_on_ext_and_nowhere_else() {
        // The checkout's own disk: where a user's sale lives.
        let dir = tempfile::tempdir_in(concat!(env!("CARGO_MANIFEST_DIR"), "/target")).unwrap();
        let ext = on_ext(dir.path());
        assert_eq!(spread_subdirectories(dir.path()), ext);
        assert_eq!(spread_subdirectories(dir.path()), ext, "twice is fine");
        if ext {
            assert_eq!(has_topdir_flag(dir.path()), Some(true));
        }
        if Path::new("/dev/shm").is_dir() {
            let shm = tempfile::tempdir_in("/dev/shm").unwrap();
            assert!(!spread_subdirectories(shm.path()), "tmpfs has no such flag");
        }
        assert!(!spread_subdirectories(&dir.path().join("missing")));
    }
}

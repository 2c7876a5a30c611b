//! Reading a journal back: every complete line, a torn last line cut off
//! (it was never fsynced, so never acknowledged), a bad line in the middle
//! refused with its file and line; and the repair that keeps the valid
//! prefix and sets the rest aside.

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};

use super::{JournalError, Record, WinnerLine, Winners, WINNERS};

/// Reads `dir`'s winners' journal back, repairing a torn last line.
pub(crate) fn replay(dir: &Path) -> Result<Winners, JournalError> {
    Ok(Winners::of(replay_file::<WinnerLine>(&dir.join(WINNERS))?))
}

/// Reads every line of the journal at `path` (none if there is no file),
/// cutting off a torn last line.
pub(crate) fn replay_file<T: Record>(path: &Path) -> Result<Vec<T>, JournalError> {
    let (lines, good, len) = read_file(path)?;
    if good < len {
        let io = |error| JournalError::Io {
            path: path.to_path_buf(),
            error,
        };
        let f = OpenOptions::new().write(true).open(path).map_err(io)?;
        f.set_len(good).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    Ok(lines)
}

/// Reads every complete line of the journal at `path` without changing it
/// (none if there is no file); also the length of those lines and the file's.
pub(crate) fn read_file<T: Record>(path: &Path) -> Result<(Vec<T>, u64, u64), JournalError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0, 0)),
        Err(error) => {
            return Err(JournalError::Io {
                path: path.to_path_buf(),
                error,
            })
        }
    };
    let mut lines = Vec::new();
    let mut good = 0;
    let mut rest = &bytes[..];
    let mut line_no = 0;
    while !rest.is_empty() {
        line_no += 1;
        let Some(end) = rest.iter().position(|b| *b == b'\n') else {
            break; // no newline: a write cut short by a crash
        };
        match serde_json::from_slice::<T>(&rest[..end]) {
            Ok(w) => lines.push(w),
            Err(e) => {
                return Err(JournalError::Corrupt {
                    path: path.to_path_buf(),
                    line: line_no,
                    why: e.to_string(),
                });
            }
        }
        good += end + 1;
        rest = &rest[end + 1..];
    }
    Ok((lines, good as u64, bytes.len() as u64))
}

/// What a repair set aside.
#[derive(Debug)]
pub(crate) struct Repaired {
    /// Winners kept (the valid lines before the first bad one).
    pub(crate) kept: usize,
    /// Bytes set aside, and where they went.
    pub(crate) dropped_bytes: usize,
    /// Complete-looking lines among them (winners that may be lost).
    pub(crate) dropped_lines: usize,
    pub(crate) set_aside: Option<PathBuf>,
}

/// Keeps the journal's valid prefix (every line up to the first one that is
/// not a winners' journal line) and moves the rest to `winners.jsonl.dropped-<time>`.
pub(crate) fn repair(dir: &Path) -> Result<Repaired, JournalError> {
    let path = dir.join(WINNERS);
    let io = |error| JournalError::Io {
        path: path.clone(),
        error,
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Repaired {
                kept: 0,
                dropped_bytes: 0,
                dropped_lines: 0,
                set_aside: None,
            })
        }
        Err(e) => return Err(io(e)),
    };
    let mut good = 0;
    let mut kept = 0;
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        if !line.ends_with(b"\n")
            || serde_json::from_slice::<WinnerLine>(&line[..line.len() - 1]).is_err()
        {
            break;
        }
        good += line.len();
        kept += 1;
    }
    let tail = &bytes[good..];
    let mut set_aside = None;
    if !tail.is_empty() {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let aside = dir.join(format!("{WINNERS}.dropped-{stamp}"));
        crate::util::fs::write_durably(&aside, tail).map_err(io)?;
        let f = OpenOptions::new().write(true).open(&path).map_err(io)?;
        f.set_len(good as u64).map_err(io)?;
        f.sync_all().map_err(io)?;
        set_aside = Some(aside);
    }
    Ok(Repaired {
        kept,
        dropped_bytes: tail.len(),
        dropped_lines: tail
            .split(|b| *b == b'\n')
            .filter(|l| l.iter().any(|b| *b != 0 && !b.is_ascii_whitespace()))
            .count(),
        set_aside,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::journal::tests::winner;

    #[test]
    fn repair_keeps_the_valid_prefix_and_sets_the_rest_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WINNERS);
        let good = format!(
            "{}\n{}\n",
            serde_json::to_string(&winner(1)).unwrap(),
            serde_json::to_string(&winner(2)).unwrap()
        );
        // What XFS can leave after a power cut: a run of NULs, then a line.
        let mut text = good.clone().into_bytes();
        text.extend_from_slice(&[0u8; 300]);
        text.extend_from_slice(serde_json::to_string(&winner(3)).unwrap().as_bytes());
        text.push(b'\n');
        std::fs::write(&path, &text).unwrap();
        let err = replay(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("not a journal line") && err.contains("a repair keeps"),
            "{err}"
        );
        let r = repair(dir.path()).unwrap();
        assert_eq!(
            (r.kept, r.dropped_bytes, r.dropped_lines),
            (2, text.len() - good.len(), 1)
        );
        let aside_path = r.set_aside.unwrap();
        let aside = std::fs::read(&aside_path).unwrap();
        assert_eq!(aside, &text[good.len()..]);
        // Customer ids: for the gate's user only, like the journal.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&aside_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        assert_eq!(
            replay(dir.path()).unwrap().confirmed,
            vec![winner(1), winner(2)]
        );
    }

    #[test]
    fn a_torn_last_line_is_cut_and_a_corrupt_middle_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WINNERS);
        let line = serde_json::to_string(&winner(1)).unwrap();
        std::fs::write(&path, format!("{line}\n{{\"order\":\"o-2\",\"sa")).unwrap();
        assert_eq!(replay(dir.path()).unwrap().confirmed, vec![winner(1)]);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{line}\n"));
        std::fs::write(&path, format!("garbage\n{line}\n")).unwrap();
        let err = replay(dir.path()).unwrap_err().to_string();
        assert!(err.contains(":1:"), "{err}");
    }
}

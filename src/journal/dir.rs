//! A journal directory belongs to one live gate at a time: an exclusive
//! lock on its `lock` file, which names the holder for the next one to see.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::JournalError;

/// An exclusive hold on a journal directory: one live gate per journal.
/// Released when dropped, or when the gate's process ends, however it ends.
pub(crate) struct Held {
    _file: File,
}

/// Takes the journal directory `dir` for `gate`, or says who holds it.
pub(crate) fn hold(dir: &Path, gate: &str) -> Result<Held, JournalError> {
    let path = dir.join(LOCK_FILE);
    let io = |error| JournalError::Io {
        path: path.clone(),
        error,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            return Err(JournalError::Held {
                path: dir.to_path_buf(),
                holder: holder.trim().to_string(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let me = format!("gate {gate}, pid {}, since {since}\n", std::process::id());
    file.set_len(0)
        .and_then(|_| file.write_all(me.as_bytes()))
        .map_err(io)?;
    Ok(Held { _file: file })
}

const LOCK_FILE: &str = "lock";

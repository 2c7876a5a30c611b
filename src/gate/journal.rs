//! The winners' journal: one JSON line per winner, appended and fsynced before
//! the winner is answered. Winners arriving together share one write and one
//! fsync (group commit), so durability does not cost throughput.
//!
//! On start the journal is replayed; a last line torn by a crash (never
//! fsynced, so never acknowledged) is cut off before appending again.
//!
//! The same machinery keeps a fair start's entries (`entries.jsonl`, see
//! `gate::draw`): a [`Journal`] is generic over the line it writes.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::watch;

pub(crate) use crate::sale::Winner;

pub(crate) const FILE_NAME: &str = "winners.jsonl";

/// An exclusive hold on a journal directory: one live gate per journal.
/// Released when the gate's process ends, however it ends.
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

#[derive(Debug, thiserror::Error)]
pub(crate) enum JournalError {
    #[error("{}: held by another live gate ({holder}); give each gate its own journal directory", path.display())]
    Held { path: PathBuf, holder: String },
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("{}:{line}: not a journal line ({why}): a power cut can leave such a tail; `flashsale gate --repair-journal` keeps every line before it and sets the rest aside (moving the journal away would sell its units again)", path.display())]
    Corrupt {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error("the journal could not be written (the disk may be full or failing); no more winners are admitted")]
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Durable {
    seq: u64,
    failed: bool,
}

/// Called with each batch right after it is durable (the forwarder listens).
pub(super) type OnDurable<T> = Box<dyn Fn(&[T]) + Send>;

/// What a journal holds, one JSON line each.
pub(crate) trait Line: Serialize + DeserializeOwned + Send + 'static {}
impl<T: Serialize + DeserializeOwned + Send + 'static> Line for T {}

pub(super) struct Journal<T: Line = Winner> {
    queue: Mutex<(u64, mpsc::Sender<(u64, T)>)>,
    durable: watch::Receiver<Durable>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// fsync latencies in microseconds, for metrics.
    pub(crate) fsyncs: Arc<FsyncStats>,
    /// Failed from outside the writer (tests stand in for a failing disk).
    broken: std::sync::atomic::AtomicBool,
}

/// A histogram of fsync latencies.
#[derive(Default)]
pub(super) struct FsyncStats {
    pub(crate) buckets: [AtomicU64; FSYNC_BUCKETS.len()],
    pub(crate) count: AtomicU64,
    pub(crate) sum_micros: AtomicU64,
}

/// Upper bounds in seconds.
pub(super) const FSYNC_BUCKETS: [f64; 10] =
    [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0];

impl FsyncStats {
    fn observe(&self, micros: u64) {
        let secs = micros as f64 / 1e6;
        for (i, b) in FSYNC_BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// Reads every winner in `dir`'s journal, repairing a torn last line.
pub(super) fn replay(dir: &Path) -> Result<Vec<Winner>, JournalError> {
    replay_file(&dir.join(FILE_NAME))
}

/// Reads every line of the journal at `path` (none if there is no file),
/// cutting off a torn last line.
pub(super) fn replay_file<T: Line>(path: &Path) -> Result<Vec<T>, JournalError> {
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
pub(crate) fn read_file<T: Line>(path: &Path) -> Result<(Vec<T>, u64, u64), JournalError> {
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
/// not a winner) and moves the rest to `winners.jsonl.dropped-<time>`.
pub(crate) fn repair(dir: &Path) -> Result<Repaired, JournalError> {
    let path = dir.join(FILE_NAME);
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
            || serde_json::from_slice::<Winner>(&line[..line.len() - 1]).is_err()
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
        let aside = dir.join(format!("{FILE_NAME}.dropped-{stamp}"));
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

impl Journal<Winner> {
    /// Opens (creating) `dir/winners.jsonl` for appending, after [`replay`]
    /// has read and repaired it. `on_durable` sees every new batch once it is
    /// on disk, on the writer thread (a slow `on_durable` delays the next batch).
    pub(super) fn open(dir: &Path, on_durable: OnDurable<Winner>) -> Result<Self, JournalError> {
        Self::open_file(dir, FILE_NAME, on_durable)
    }
}

impl<T: Line> Journal<T> {
    /// Opens (creating) `dir/<name>` for appending, after [`replay_file`]
    /// has read and repaired it.
    pub(super) fn open_file(
        dir: &Path,
        name: &str,
        on_durable: OnDurable<T>,
    ) -> Result<Self, JournalError> {
        let io_at = |p: &Path| {
            let p = p.to_path_buf();
            move |error| JournalError::Io { path: p, error }
        };
        crate::util::fs::create_dir_durably(dir).map_err(io_at(dir))?;
        let path = dir.join(name);
        let existed = path.exists();
        // Customer ids: for the gate's user only.
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_at(&path))?;
        if !existed {
            // The new file's name must survive a crash too.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_at(dir))?;
        }
        Self::start(file, &path, on_durable)
    }

    /// Starts the writer thread on `sink` (the file at `path`).
    fn start(sink: impl Sink, path: &Path, on_durable: OnDurable<T>) -> Result<Self, JournalError> {
        let (tx, rx) = mpsc::channel::<(u64, T)>();
        let (durable_tx, durable_rx) = watch::channel(Durable {
            seq: 0,
            failed: false,
        });
        let fsyncs = Arc::new(FsyncStats::default());
        let stats = fsyncs.clone();
        let writer = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || write_loop(sink, rx, durable_tx, stats, on_durable))
            .map_err(|error| JournalError::Io {
                path: path.to_path_buf(),
                error,
            })?;
        Ok(Journal {
            queue: Mutex::new((0, tx)),
            durable: durable_rx,
            writer: Mutex::new(Some(writer)),
            fsyncs,
            broken: Default::default(),
        })
    }

    /// Appends a line; resolves once it is on disk (or the journal failed).
    pub(super) async fn append(&self, winner: T) -> Result<(), JournalError> {
        let seq = self.enqueue(winner)?;
        self.wait(seq).await
    }

    /// Queues a line for the next write; its number, for [`Self::wait`].
    pub(super) fn enqueue(&self, winner: T) -> Result<u64, JournalError> {
        Ok({
            // Numbering and queueing under one lock keeps the file in seq order,
            // so "durable up to n" means every record up to n.
            let mut q = self.queue.lock().expect("journal lock poisoned");
            q.0 += 1;
            let seq = q.0;
            q.1.send((seq, winner)).map_err(|_| JournalError::Failed)?;
            seq
        })
    }

    /// Resolves once every line up to `seq` is on disk (or the journal failed).
    pub(super) async fn wait(&self, seq: u64) -> Result<(), JournalError> {
        let mut rx = self.durable.clone();
        let d = *rx
            .wait_for(|d| d.seq >= seq || d.failed)
            .await
            .map_err(|_| JournalError::Failed)?;
        if d.seq >= seq {
            Ok(())
        } else {
            Err(JournalError::Failed)
        }
    }

    /// Resolves once every line queued so far is on disk (or the journal
    /// failed): what "every winner admitted until now is recorded" waits for.
    pub(super) async fn settled(&self) -> Result<(), JournalError> {
        let seq = self.queue.lock().expect("journal lock poisoned").0;
        self.wait(seq).await
    }

    pub(super) fn failed(&self) -> bool {
        self.durable.borrow().failed || self.broken.load(Ordering::Relaxed)
    }

    /// As if the disk had failed: nothing more is written or acknowledged.
    #[cfg(test)]
    pub(super) fn break_down(&self) {
        self.broken.store(true, Ordering::Relaxed);
    }

    /// Writes what is queued and stops the writer.
    pub(super) fn close(&self) {
        let (_, tx) = std::mem::replace(
            &mut *self.queue.lock().expect("journal lock poisoned"),
            (0, mpsc::channel().0),
        );
        drop(tx);
        if let Some(h) = self.writer.lock().expect("journal lock poisoned").take() {
            let _ = h.join();
        }
    }
}

/// What the journal writes to: its file (in tests, one that fails on cue).
trait Sink: Send + 'static {
    /// Appends and makes it durable.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Cuts the file back to `len` bytes, durably.
    fn cut(&mut self, len: u64) -> io::Result<()>;
    fn len(&self) -> u64;
}

impl Sink for File {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes).and_then(|_| self.sync_data())
    }

    fn cut(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len).and_then(|_| self.sync_data())
    }

    fn len(&self) -> u64 {
        self.metadata().map_or(0, |m| m.len())
    }
}

fn write_loop<T: Line>(
    mut file: impl Sink,
    rx: mpsc::Receiver<(u64, T)>,
    durable: watch::Sender<Durable>,
    stats: Arc<FsyncStats>,
    on_durable: OnDurable<T>,
) {
    // The length of what is on disk and acknowledged.
    let mut durable_len = file.len();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let mut buf = Vec::with_capacity(batch.len() * 160);
        for (_, w) in &batch {
            serde_json::to_writer(&mut buf, w).expect("a journal line serialises");
            buf.push(b'\n');
        }
        let started = Instant::now();
        let result = file.append(&buf);
        stats.observe(started.elapsed().as_micros() as u64);
        match result {
            Ok(()) => {
                durable_len += buf.len() as u64;
                let last = batch.last().map_or(0, |(s, _)| *s);
                let winners: Vec<T> = batch.into_iter().map(|(_, w)| w).collect();
                durable.send_modify(|d| d.seq = last);
                on_durable(&winners);
            }
            Err(_) => {
                // Fail closed: nothing after this is acknowledged, and what
                // of this batch did reach the file is cut away, so those
                // customers (answered 503) never replay as winners.
                let _ = file.cut(durable_len);
                durable.send_modify(|d| d.failed = true);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn winner(n: u32) -> Winner {
        Winner {
            order: format!("o-{n}"),
            sale: "s".into(),
            sku: "A".into(),
            user: format!("u{n}"),
            time: "2026-01-01T00:00:00.000Z".into(),
            gate: "g".into(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_are_all_durable_and_replayed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let j = Arc::new(
            Journal::open(
                dir.path(),
                Box::new(move |b| s2.lock().unwrap().extend_from_slice(b)),
            )
            .unwrap(),
        );
        let mut tasks = Vec::new();
        for n in 0..200 {
            let j = j.clone();
            tasks.push(tokio::spawn(async move { j.append(winner(n)).await }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        j.close();
        let back = replay(dir.path()).unwrap();
        assert_eq!(back.len(), 200);
        assert_eq!(
            &back,
            &*seen.lock().unwrap(),
            "forwarder order is file order"
        );
    }

    /// A journal whose writer stays in its first batch's callback until
    /// released, so everything appended meanwhile queues up behind it.
    fn held_after_first_batch(dir: &Path) -> (Arc<Journal>, std::sync::mpsc::Sender<()>) {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = Mutex::new(Some(held));
        let j = Journal::open(
            dir,
            Box::new(move |_| {
                if let Some(rx) = held.lock().unwrap().take() {
                    rx.recv().unwrap();
                }
            }),
        )
        .unwrap();
        (Arc::new(j), release)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn winners_queued_during_a_write_share_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let (j, release) = held_after_first_batch(dir.path());
        let first = tokio::spawn({
            let j = j.clone();
            async move { j.append(winner(0)).await }
        });
        // Once the first batch is on disk the writer sits in its callback.
        while j.durable.borrow().seq < 1 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let rest: Vec<_> = (1..100)
            .map(|n| {
                let j = j.clone();
                tokio::spawn(async move { j.append(winner(n)).await })
            })
            .collect();
        while j.queue.lock().unwrap().0 < 100 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
        for t in rest {
            t.await.unwrap().unwrap();
        }
        j.close();
        assert_eq!(replay(dir.path()).unwrap().len(), 100);
        assert_eq!(
            j.fsyncs.count.load(Ordering::Relaxed),
            2,
            "one write for the first winner, one for the 99 queued behind it"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn settled_waits_for_every_line_queued_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let (j, release) = held_after_first_batch(dir.path());
        // Nothing queued: settled at once.
        j.settled().await.unwrap();
        // The writer holds its first batch; two more lines queue behind it.
        let first = j.enqueue(winner(0)).unwrap();
        while j.durable.borrow().seq < first {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        j.enqueue(winner(1)).unwrap();
        j.enqueue(winner(2)).unwrap();
        let settled = tokio::spawn({
            let j = j.clone();
            async move { j.settled().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            !settled.is_finished(),
            "settled before the queued lines were written"
        );
        release.send(()).unwrap();
        settled.await.unwrap().unwrap();
        assert!(j.durable.borrow().seq >= 3);
        j.close();
        assert_eq!(replay(dir.path()).unwrap().len(), 3);
    }

    /// A journal file that fails its `n`th append (1-based) after writing
    /// only part of it, as a disk that fills up does.
    struct FillsUp {
        file: File,
        appends: usize,
        fail_at: usize,
    }

    impl Sink for FillsUp {
        fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.appends += 1;
            if self.appends == self.fail_at {
                self.file.write_all(&bytes[..bytes.len() / 2 + 1])?;
                return Err(io::Error::from_raw_os_error(28)); // ENOSPC
            }
            self.file.append(bytes)
        }

        fn cut(&mut self, len: u64) -> io::Result<()> {
            self.file.cut(len)
        }

        fn len(&self) -> u64 {
            self.file.len()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_that_fails_part_way_is_cut_back_to_what_was_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let sink = FillsUp {
            file,
            appends: 0,
            fail_at: 2,
        };
        let j = Journal::start(sink, &path, Box::new(|_| {})).unwrap();
        j.append(winner(1)).await.unwrap();
        // Several complete lines reached the disk before it filled up:
        // nobody was told they won, so none may replay as a winner.
        let (a, b, c) = tokio::join!(
            j.append(winner(2)),
            j.append(winner(3)),
            j.append(winner(4))
        );
        assert!(a.is_err() || b.is_err() || c.is_err());
        assert!(j.failed());
        j.close();
        assert_eq!(replay(dir.path()).unwrap(), vec![winner(1)]);
    }

    #[test]
    fn repair_keeps_the_valid_prefix_and_sets_the_rest_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
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
        assert!(err.contains("--repair-journal"), "{err}");
        let r = repair(dir.path()).unwrap();
        assert_eq!(
            (r.kept, r.dropped_bytes, r.dropped_lines),
            (2, text.len() - good.len(), 1)
        );
        let aside = std::fs::read(r.set_aside.unwrap()).unwrap();
        assert_eq!(aside, &text[good.len()..]);
        assert_eq!(replay(dir.path()).unwrap(), vec![winner(1), winner(2)]);
    }

    #[test]
    fn a_torn_last_line_is_cut_and_a_corrupt_middle_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let line = serde_json::to_string(&winner(1)).unwrap();
        std::fs::write(&path, format!("{line}\n{{\"order\":\"o-2\",\"sa")).unwrap();
        assert_eq!(replay(dir.path()).unwrap(), vec![winner(1)]);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{line}\n"));
        std::fs::write(&path, format!("garbage\n{line}\n")).unwrap();
        let err = replay(dir.path()).unwrap_err().to_string();
        assert!(err.contains(":1:"), "{err}");
    }
}

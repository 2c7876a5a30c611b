//! Journals: JSON lines appended and fsynced before anyone is told about
//! them. The gate keeps its winners in one (`winners.jsonl`, each winner on
//! disk before it is answered) and a fair start's entries in another
//! (`entries.jsonl`); [`Journal`] is generic over its [`Record`]. Records
//! arriving together share one write and one fsync (group commit), so
//! durability does not cost throughput; a write that fails stops the journal
//! for good (fail closed) and cuts away what of it reached the file.
//!
//! `file` reads a journal back (a last line torn by a crash, never fsynced
//! and so never acknowledged, is cut off) and repairs one; `dir` holds the
//! directory for one live gate at a time.

mod dir;
mod file;
mod winners;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::watch;

pub(crate) use dir::{hold, Held};
pub(crate) use file::{read_file, repair, replay, replay_file};
pub(crate) use winners::{WinnerLine, Winners};

use crate::util::sync::lock;

/// The winners' journal, in the gate's journal directory.
pub(crate) const WINNERS: &str = "winners.jsonl";
/// A fair start's entries, beside the winners.
pub(crate) const ENTRIES: &str = "entries.jsonl";

#[derive(Debug, thiserror::Error)]
pub(crate) enum JournalError {
    #[error("{}: held by another live gate ({holder}); give each gate its own journal directory", path.display())]
    Held { path: PathBuf, holder: String },
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("{}:{line}: not a journal line ({why}): a power cut can leave such a tail; a repair keeps every line before it and sets the rest aside (moving the journal away would sell its units again)", path.display())]
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
pub(crate) type OnDurable<T> = Box<dyn Fn(&[T]) + Send>;

/// Told, on the writer thread, whether one record reached the disk: how a
/// record's owner learns it without a task waiting for it.
pub(crate) type Done = Box<dyn FnOnce(bool) + Send>;

/// A queued record: its number, itself, and who to tell.
type Queued<T> = (u64, T, Option<Done>);

/// What a journal holds, one JSON line each.
pub(crate) trait Record: Serialize + DeserializeOwned + Send + 'static {}
impl<T: Serialize + DeserializeOwned + Send + 'static> Record for T {}

/// An append-only file of records, written by a thread of its own.
pub(crate) struct Journal<T: Record> {
    queue: Mutex<(u64, mpsc::Sender<Queued<T>>)>,
    durable: watch::Receiver<Durable>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// fsync latencies in microseconds, for metrics.
    pub(crate) fsyncs: Arc<FsyncStats>,
    /// Failed from outside the writer (tests stand in for a failing disk).
    broken: std::sync::atomic::AtomicBool,
}

/// The journal's fsync latencies.
pub(crate) type FsyncStats = crate::util::prometheus::Histogram;

impl<T: Record> Journal<T> {
    /// Opens (creating) `dir/<name>` for appending, after [`replay_file`]
    /// has read and repaired it. `on_durable` sees every new batch once it is
    /// on disk, on the writer thread (a slow `on_durable` delays the next batch).
    pub(crate) fn open(
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
        let (tx, rx) = mpsc::channel::<Queued<T>>();
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
    pub(crate) async fn append(&self, winner: T) -> Result<(), JournalError> {
        let seq = self.enqueue(winner)?;
        self.wait(seq).await
    }

    /// Queues a line for the next write; its number, for [`Self::wait`].
    pub(crate) fn enqueue(&self, winner: T) -> Result<u64, JournalError> {
        self.queue_line(winner, None)
    }

    /// Queues a line; `done` is told on the writer thread whether it
    /// reached the disk (false: the journal failed), whoever still waits.
    /// Nothing wakes a task per line: a rush's winners are answered from
    /// their own `done`s.
    pub(crate) fn enqueue_with(&self, winner: T, done: Done) -> Result<u64, JournalError> {
        self.queue_line(winner, Some(done))
    }

    fn queue_line(&self, winner: T, done: Option<Done>) -> Result<u64, JournalError> {
        // Numbering and queueing under one lock keeps the file in seq order,
        // so "durable up to n" means every record up to n.
        let mut q = lock(&self.queue);
        q.0 += 1;
        let seq = q.0;
        q.1.send((seq, winner, done))
            .map_err(|_| JournalError::Failed)?;
        Ok(seq)
    }

    /// Resolves once every line up to `seq` is on disk (or the journal failed).
    pub(crate) async fn wait(&self, seq: u64) -> Result<(), JournalError> {
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
    pub(crate) async fn settled(&self) -> Result<(), JournalError> {
        let seq = lock(&self.queue).0;
        self.wait(seq).await
    }

    pub(crate) fn failed(&self) -> bool {
        self.durable.borrow().failed || self.broken.load(Ordering::Relaxed)
    }

    /// As if the disk had failed: nothing more is written or acknowledged.
    #[cfg(test)]
    pub(crate) fn break_down(&self) {
        self.broken.store(true, Ordering::Relaxed);
    }

    /// Writes what is queued and stops the writer.
    pub(crate) fn close(&self) {
        let (_, tx) = std::mem::replace(&mut *lock(&self.queue), (0, mpsc::channel().0));
        drop(tx);
        if let Some(h) = lock(&self.writer).take() {
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

/// How long a rush's batch waits for more records before its write.
const COMMIT_WINDOW: Duration = Duration::from_millis(1);
/// A record this soon after the last write is part of a rush.
const RUSH: Duration = Duration::from_millis(5);
/// The most records one write takes.
const MAX_BATCH: usize = 1024;

fn write_loop<T: Record>(
    mut file: impl Sink,
    rx: mpsc::Receiver<Queued<T>>,
    durable: watch::Sender<Durable>,
    stats: Arc<FsyncStats>,
    on_durable: OnDurable<T>,
) {
    // The length of what is on disk and acknowledged.
    let mut durable_len = file.len();
    // When the last write ended: records arriving soon after are a rush.
    let mut last_write = Instant::now()
        .checked_sub(RUSH)
        .unwrap_or_else(Instant::now);
    while let Ok(first) = rx.recv() {
        // In a rush, gather what arrives within the commit window (asleep:
        // a sender to a sleeping writer wakes nobody), so a thousand winners
        // are tens of fsyncs, not hundreds — each costs CPU the answers need.
        // A record after a quiet spell is written at once.
        if last_write.elapsed() < RUSH {
            std::thread::sleep(COMMIT_WINDOW);
        }
        let mut batch = vec![first];
        batch.extend(rx.try_iter().take(MAX_BATCH));
        let mut buf = Vec::with_capacity(batch.len() * 160);
        for (_, w, _) in &batch {
            serde_json::to_writer(&mut buf, w).expect("a journal line serialises");
            buf.push(b'\n');
        }
        let started = Instant::now();
        let result = file.append(&buf);
        last_write = Instant::now();
        stats.observe(started.elapsed().as_micros() as u64);
        let last = batch.last().map_or(0, |(s, _, _)| *s);
        let mut dones = Vec::with_capacity(batch.len());
        let records: Vec<T> = batch
            .into_iter()
            .map(|(_, w, done)| {
                dones.extend(done);
                w
            })
            .collect();
        match result {
            Ok(()) => {
                durable_len += buf.len() as u64;
                durable.send_modify(|d| d.seq = last);
                on_durable(&records);
                dones.into_iter().for_each(|done| done(true));
            }
            Err(_) => {
                // Fail closed: nothing after this is acknowledged, and what
                // of this batch did reach the file is cut away, so those
                // customers (answered 503) never replay as winners.
                let _ = file.cut(durable_len);
                durable.send_modify(|d| d.failed = true);
                dones.into_iter().for_each(|done| done(false));
                // Nor what was queued after it.
                for (_, _, done) in rx.try_iter() {
                    done.into_iter().for_each(|done| done(false));
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sale::Winner;
    use crate::util::wait::wait_for;

    const SECOND: std::time::Duration = std::time::Duration::from_secs(1);

    pub(super) fn winner(n: u32) -> Winner {
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
                WINNERS,
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
        let back = replay(dir.path()).unwrap().confirmed;
        assert_eq!(back.len(), 200);
        assert_eq!(
            &back,
            &*seen.lock().unwrap(),
            "forwarder order is file order"
        );
    }

    /// A journal whose writer stays in its first batch's callback until
    /// released, so everything appended meanwhile queues up behind it.
    fn held_after_first_batch(dir: &Path) -> (Arc<Journal<Winner>>, std::sync::mpsc::Sender<()>) {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = Mutex::new(Some(held));
        let j = Journal::open(
            dir,
            WINNERS,
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
        wait_for("the first batch on disk", SECOND, || {
            j.durable.borrow().seq >= 1
        })
        .await;
        let rest: Vec<_> = (1..100)
            .map(|n| {
                let j = j.clone();
                tokio::spawn(async move { j.append(winner(n)).await })
            })
            .collect();
        wait_for("99 more queued", SECOND, || {
            j.queue.lock().unwrap().0 >= 100
        })
        .await;
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
        for t in rest {
            t.await.unwrap().unwrap();
        }
        j.close();
        assert_eq!(replay(dir.path()).unwrap().confirmed.len(), 100);
        assert_eq!(
            j.fsyncs.count(),
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
        wait_for("the first batch on disk", SECOND, || {
            j.durable.borrow().seq >= first
        })
        .await;
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
        assert_eq!(replay(dir.path()).unwrap().confirmed.len(), 3);
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

    /// A winners' journal in `dir` whose disk fills up at append `fail_at`.
    fn filling_up(dir: &Path, fail_at: usize) -> Journal<Winner> {
        let path = dir.join(WINNERS);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let sink = FillsUp {
            file,
            appends: 0,
            fail_at,
        };
        Journal::start(sink, &path, Box::new(|_| {})).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_that_fails_part_way_is_cut_back_to_what_was_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let j = filling_up(dir.path(), 2);
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
        assert_eq!(replay(dir.path()).unwrap().confirmed, vec![winner(1)]);
    }

    /// What the `done`s were told: record number, durable.
    type Told = Arc<Mutex<Vec<(u32, bool)>>>;

    /// Records told apart by their `done`s, for the tests below.
    fn recorder() -> (Told, impl Fn(u32) -> Done) {
        let told = Arc::new(Mutex::new(Vec::new()));
        let t2 = told.clone();
        let make = move |n: u32| -> Done {
            let t = t2.clone();
            Box::new(move |ok| t.lock().unwrap().push((n, ok)))
        };
        (told, make)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rush_shares_commit_windows_and_each_record_is_told_on_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path(), WINNERS, Box::new(|_| {})).unwrap();
        let (told, done) = recorder();
        // A lone record after a quiet spell: written at once, one fsync.
        j.enqueue_with(winner(0), done(0)).unwrap();
        wait_for("the first told", SECOND, || told.lock().unwrap().len() == 1).await;
        assert_eq!(j.fsyncs.count(), 1);
        // Then a rush of 300, as fast as they come.
        for n in 1..=300 {
            j.enqueue_with(winner(n), done(n)).unwrap();
        }
        wait_for("all told", SECOND, || told.lock().unwrap().len() == 301).await;
        let told = told.lock().unwrap().clone();
        assert!(told.iter().all(|(_, ok)| *ok), "every one durable");
        let order: Vec<u32> = told.iter().map(|(n, _)| *n).collect();
        assert_eq!(order, (0..=300).collect::<Vec<_>>(), "told in file order");
        // Queued well within a commit window or two: a handful of writes, not 300.
        assert!(j.fsyncs.count() <= 20, "{} fsyncs", j.fsyncs.count());
        j.close();
        assert_eq!(replay(dir.path()).unwrap().confirmed.len(), 301);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn when_the_disk_fails_every_waiting_record_is_told_not_durable() {
        let dir = tempfile::tempdir().unwrap();
        let j = filling_up(dir.path(), 2);
        let (told, done) = recorder();
        j.enqueue_with(winner(1), done(1)).unwrap();
        wait_for("the first told", SECOND, || told.lock().unwrap().len() == 1).await;
        let mut refused = 0;
        for n in 2..=50 {
            if j.enqueue_with(winner(n), done(n)).is_err() {
                refused += 1;
            }
        }
        wait_for("every queued one told", SECOND, || {
            told.lock().unwrap().len() + refused == 50
        })
        .await;
        let told = told.lock().unwrap().clone();
        assert_eq!(told[0], (1, true));
        assert!(told[1..].iter().all(|(_, ok)| !ok), "{told:?}");
        assert!(j.failed());
        j.close();
        assert_eq!(replay(dir.path()).unwrap().confirmed, vec![winner(1)]);
    }
}

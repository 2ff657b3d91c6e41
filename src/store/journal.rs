//! The instance journal: a snapshot file plus an append-only log of JSON
//! lines, written by one background thread with group commit.
//!
//! * `snapshot.jsonl`: one [`Instance`] per line, the state at the last
//!   compaction.
//! * `journal.jsonl`: `{"put":{…instance…}}` or `{"remove":{…key…}}` per
//!   line, every change since.
//!
//! Replay = snapshot, then the log in order. A torn last line (a crash in
//! the middle of a write) is skipped with a warning. Files are created with
//! mode 0600: instance attributes may hold secrets (ESCM mail password);
//! caller tokens are never journaled. Writes happen on a dedicated thread,
//! never on the async runtime; callers await [`Durable`] before answering.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::{Instance, InstanceKey};

const SNAPSHOT: &str = "snapshot.jsonl";
const LOG: &str = "journal.jsonl";

/// Journal settings.
#[derive(Clone, Debug)]
pub struct JournalOptions {
    /// `fsync` after every batch (survives power loss, not only crashes).
    pub fsync: bool,
    /// Compact into a new snapshot after this many logged changes.
    pub compact_after: usize,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            fsync: true,
            compact_after: 50_000,
        }
    }
}

/// Why the journal could not be opened or written.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum JournalError {
    /// A file operation failed.
    #[error("journal {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        message: String,
    },
    /// The writer thread is gone (shut down or failed earlier).
    #[error("the journal writer has stopped")]
    Stopped,
}

fn io_err(path: &Path, e: std::io::Error) -> JournalError {
    JournalError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Entry {
    Put(Box<Instance>),
    Remove(InstanceKey),
}

type Ack = oneshot::Sender<Result<(), JournalError>>;

enum Msg {
    Put(Arc<Instance>, Ack),
    Remove(InstanceKey, Ack),
    Compact(Vec<Arc<Instance>>),
    Close,
}

/// Resolves once a change is on disk (or the journal failed).
#[must_use = "await it before telling the caller the change is done"]
#[derive(Debug)]
pub struct Durable(Option<oneshot::Receiver<Result<(), JournalError>>>);

impl Durable {
    /// A change with nothing to wait for (in-memory store).
    pub fn done() -> Self {
        Durable(None)
    }

    /// Wait until the change is written.
    pub async fn wait(self) -> Result<(), JournalError> {
        match self.0 {
            None => Ok(()),
            Some(rx) => rx.await.unwrap_or(Err(JournalError::Stopped)),
        }
    }
}

/// Handle to the journal writer thread.
pub struct Journal {
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
}

impl Journal {
    /// Open (creating if needed) the journal in `dir` and replay it.
    pub fn open(
        dir: &Path,
        options: JournalOptions,
    ) -> Result<(Self, Vec<Instance>), JournalError> {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let instances = replay(dir)?;
        let log_path = dir.join(LOG);
        let log = open_append(&log_path)?;
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            dir: dir.to_path_buf(),
            log: BufWriter::new(log),
            options,
        };
        let thread = thread::Builder::new()
            .name("occi-so-journal".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| io_err(dir, e))?;
        Ok((
            Journal {
                tx: Mutex::new(Some(tx)),
                thread: Mutex::new(Some(thread)),
            },
            instances,
        ))
    }

    fn send(&self, make: impl FnOnce(Ack) -> Msg) -> Durable {
        let (ack, rx) = oneshot::channel();
        let sent = match self.tx.lock() {
            Ok(guard) => guard.as_ref().map(|tx| tx.send(make(ack)).is_ok()),
            Err(_) => None,
        };
        match sent {
            Some(true) => Durable(Some(rx)),
            _ => {
                let (ack, rx) = oneshot::channel();
                let _ = ack.send(Err(JournalError::Stopped));
                Durable(Some(rx))
            }
        }
    }

    /// Log the new state of an instance.
    pub fn put(&self, inst: Arc<Instance>) -> Durable {
        self.send(|ack| Msg::Put(inst, ack))
    }

    /// Log the removal of an instance.
    pub fn remove(&self, key: &InstanceKey) -> Durable {
        let key = key.clone();
        self.send(|ack| Msg::Remove(key, ack))
    }

    /// Rewrite the snapshot from `instances` and start an empty log. The
    /// caller must pass the state as of now, with every change up to now
    /// already queued (the store does this under its locks).
    pub fn compact(&self, instances: Vec<Arc<Instance>>) {
        if let Ok(guard) = self.tx.lock() {
            if let Some(tx) = guard.as_ref() {
                let _ = tx.send(Msg::Compact(instances));
            }
        }
    }

    /// Write everything queued, then stop the writer thread.
    pub fn close(&self) {
        if let Ok(mut guard) = self.tx.lock() {
            if let Some(tx) = guard.take() {
                let _ = tx.send(Msg::Close);
            }
        }
        if let Ok(mut guard) = self.thread.lock() {
            if let Some(handle) = guard.take() {
                let _ = handle.join();
            }
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.close();
    }
}

fn open_append(path: &Path) -> Result<File, JournalError> {
    let mut o = OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).map_err(|e| io_err(path, e))
}

fn create_private(path: &Path) -> Result<File, JournalError> {
    let mut o = OpenOptions::new();
    o.create(true).write(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).map_err(|e| io_err(path, e))
}

/// Read the snapshot and the log; later lines win.
fn replay(dir: &Path) -> Result<Vec<Instance>, JournalError> {
    let mut state: HashMap<InstanceKey, Instance> = HashMap::new();
    let snapshot = dir.join(SNAPSHOT);
    for_each_line(&snapshot, |line| {
        let inst: Instance = serde_json::from_str(line)?;
        state.insert(inst.key.clone(), inst);
        Ok(())
    })?;
    for_each_line(&dir.join(LOG), |line| {
        match serde_json::from_str::<Entry>(line)? {
            Entry::Put(inst) => {
                state.insert(inst.key.clone(), *inst);
            }
            Entry::Remove(key) => {
                state.remove(&key);
            }
        }
        Ok(())
    })?;
    let mut v: Vec<Instance> = state.into_values().collect();
    v.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(v)
}

fn for_each_line(
    path: &Path,
    mut f: impl FnMut(&str) -> Result<(), serde_json::Error>,
) -> Result<(), JournalError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(path, e)),
    };
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| io_err(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        if let Err(e) = f(&line) {
            // A torn write at the end after a crash, or a damaged line:
            // skip it rather than refuse to start, and say so.
            tracing::warn!(file = %path.display(), line = n + 1, error = %e, "skipping unreadable journal line");
        }
    }
    Ok(())
}

struct Writer {
    dir: PathBuf,
    log: BufWriter<File>,
    options: JournalOptions,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        let mut acks: Vec<Ack> = Vec::new();
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < 4096 {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            let mut result = Ok(());
            let mut close = false;
            for msg in batch {
                match msg {
                    Msg::Put(inst, ack) => {
                        acks.push(ack);
                        if result.is_ok() {
                            result = self.append(&Entry::Put(Box::new((*inst).clone())));
                        }
                    }
                    Msg::Remove(key, ack) => {
                        acks.push(ack);
                        if result.is_ok() {
                            result = self.append(&Entry::Remove(key));
                        }
                    }
                    Msg::Compact(instances) => {
                        if result.is_ok() {
                            result = self.flush().and_then(|_| self.compact(&instances));
                        }
                    }
                    Msg::Close => close = true,
                }
            }
            if result.is_ok() {
                result = self.flush();
            }
            if let Err(e) = &result {
                tracing::error!(error = %e, "journal write failed");
            }
            for ack in acks.drain(..) {
                let _ = ack.send(result.clone());
            }
            if close {
                break;
            }
        }
        let _ = self.flush();
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join(LOG)
    }

    fn append(&mut self, entry: &Entry) -> Result<(), JournalError> {
        let path = self.log_path();
        serde_json::to_writer(&mut self.log, entry).map_err(|e| JournalError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        self.log.write_all(b"\n").map_err(|e| io_err(&path, e))
    }

    fn flush(&mut self) -> Result<(), JournalError> {
        let path = self.log_path();
        self.log.flush().map_err(|e| io_err(&path, e))?;
        if self.options.fsync {
            self.log
                .get_ref()
                .sync_data()
                .map_err(|e| io_err(&path, e))?;
        }
        Ok(())
    }

    fn compact(&mut self, instances: &[Arc<Instance>]) -> Result<(), JournalError> {
        let tmp = self.dir.join("snapshot.jsonl.tmp");
        {
            let mut w = BufWriter::new(create_private(&tmp)?);
            for inst in instances {
                serde_json::to_writer(&mut w, inst.as_ref()).map_err(|e| JournalError::Io {
                    path: tmp.display().to_string(),
                    message: e.to_string(),
                })?;
                w.write_all(b"\n").map_err(|e| io_err(&tmp, e))?;
            }
            w.flush().map_err(|e| io_err(&tmp, e))?;
            w.get_ref().sync_all().map_err(|e| io_err(&tmp, e))?;
        }
        let snapshot = self.dir.join(SNAPSHOT);
        fs::rename(&tmp, &snapshot).map_err(|e| io_err(&snapshot, e))?;
        let log = create_private(&self.log_path())?;
        self.log = BufWriter::new(log);
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

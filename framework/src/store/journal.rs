//! The local journal, the store's first [`Persistence`]: a snapshot file
//! plus an append-only log of JSON lines, written by one background thread
//! with group commit.
//!
//! * `snapshot.jsonl`: one entry per line, the state at the last
//!   compaction (an instance, or `{"doc": …}`; snapshots written before
//!   documents existed hold bare instances, and still read).
//! * `journal.jsonl`: `{"put":{…instance…}}`, `{"remove":{…key…}}` or
//!   `{"doc":{"space":…,"key":…,"value":…}}` per line, every change since.
//!
//! Replay = snapshot, then the log in order. A torn last line (a crash in
//! the middle of a write) is skipped with a warning. Files are created with
//! mode 0600: instance attributes may hold secrets (ESCM mail password);
//! caller tokens are never journaled. Writes happen on a dedicated thread,
//! never on the async runtime: a batch is written, flushed and (with
//! `fsync`) synced, then each change of it is published and acknowledged,
//! in order. The first failed batch stops the writer: every later change
//! fails too, so the files always hold a prefix of the changes made.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::persist::{Change, DocKey, Done, Durable, JournalError, Persistence, Snapshot};
use super::{Instance, InstanceKey};
use crate::operation::{OpKey, OperationRecord};

const SNAPSHOT: &str = "snapshot.jsonl";
const LOG: &str = "journal.jsonl";

/// Journal settings.
#[derive(Clone, Debug)]
pub struct JournalOptions {
    /// `fsync` after every batch (survives power loss, not only crashes).
    pub fsync: bool,
    /// Compact into a new snapshot after this many logged changes.
    pub compact_after: usize,
    /// Seal every line (secrets at rest); `None`: plain JSON lines.
    pub sealer: Option<occi_so_sdk::seal::Sealer>,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            fsync: true,
            compact_after: 50_000,
            sealer: None,
        }
    }
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
    Doc(DocEntry),
    Op(Box<OperationRecord>),
    #[serde(rename = "op_removed")]
    OpRemoved(OpKey),
}

#[derive(Serialize, Deserialize)]
struct DocEntry {
    space: String,
    key: String,
    value: Option<serde_json::Value>,
}

/// How snapshot lines serialize: entries, written by reference.
#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum SnapshotRef<'a> {
    Put(&'a Instance),
    Doc(DocRef<'a>),
    Op(&'a OperationRecord),
}

#[derive(Serialize)]
struct DocRef<'a> {
    space: &'a str,
    key: &'a str,
    value: Option<&'a serde_json::Value>,
}

type Ack = oneshot::Sender<Result<(), JournalError>>;

enum Msg {
    Change(Change, Done, Ack),
    Compact(Snapshot),
    Close,
}

/// Handle to the journal writer thread.
pub struct Journal {
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
}

impl Journal {
    /// Open (creating if needed) the journal in `dir` and replay it.
    pub fn open(dir: &Path, options: JournalOptions) -> Result<(Self, Replayed), JournalError> {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let replayed = replay(dir, options.sealer.as_ref())?;
        let log_path = dir.join(LOG);
        let log = open_append(&log_path)?;
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            dir: dir.to_path_buf(),
            log: BufWriter::new(log),
            options,
            failed: false,
            buf: Vec::new(),
            crash_after: crash_after(),
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
            replayed,
        ))
    }

    fn send(&self, msg: Msg) -> Result<(), Msg> {
        match self.tx.lock() {
            Ok(guard) => match guard.as_ref() {
                Some(tx) => tx.send(msg).map_err(|e| e.0),
                None => Err(msg),
            },
            Err(_) => Err(msg),
        }
    }

    /// Write everything queued, then stop the writer thread.
    fn stop(&self) {
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

impl Persistence for Journal {
    fn name(&self) -> &'static str {
        "journal"
    }

    fn write(&self, change: Change, done: Done) -> Durable {
        let (ack, durable) = Durable::pending();
        if let Err(Msg::Change(_, done, ack)) = self.send(Msg::Change(change, done, ack)) {
            done(false);
            let _ = ack.send(Err(JournalError::Stopped));
        }
        durable
    }

    fn compact(&self, snapshot: Snapshot) {
        let _ = self.send(Msg::Compact(snapshot));
    }

    fn close(&self) {
        self.stop();
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a replay found: the instances and documents, latest state.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Every instance, by key order.
    pub instances: Vec<Instance>,
    /// Every document.
    pub documents: BTreeMap<DocKey, serde_json::Value>,
    /// Every operation record.
    pub operations: Vec<OperationRecord>,
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
fn replay(
    dir: &Path,
    sealer: Option<&occi_so_sdk::seal::Sealer>,
) -> Result<Replayed, JournalError> {
    let mut state: HashMap<InstanceKey, Instance> = HashMap::new();
    let mut documents = BTreeMap::new();
    let mut operations: BTreeMap<OpKey, OperationRecord> = BTreeMap::new();
    let mut apply = |entry: Entry| match entry {
        Entry::Put(inst) => {
            state.insert(inst.key.clone(), *inst);
        }
        Entry::Remove(key) => {
            state.remove(&key);
        }
        Entry::Doc(d) => {
            let key = DocKey::new(d.space, d.key);
            match d.value {
                Some(v) => documents.insert(key, v),
                None => documents.remove(&key),
            };
        }
        Entry::Op(o) => {
            operations.insert(o.key(), *o);
        }
        Entry::OpRemoved(k) => {
            operations.remove(&k);
        }
    };
    for_each_line(&dir.join(SNAPSHOT), sealer, |line| {
        // Snapshots of earlier versions hold bare instances.
        match serde_json::from_str::<Entry>(line) {
            Ok(e) => apply(e),
            Err(_) => apply(Entry::Put(Box::new(serde_json::from_str(line)?))),
        }
        Ok(())
    })?;
    for_each_line(&dir.join(LOG), sealer, |line| {
        apply(serde_json::from_str::<Entry>(line)?);
        Ok(())
    })?;
    let mut instances: Vec<Instance> = state.into_values().collect();
    instances.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(Replayed {
        instances,
        documents,
        operations: operations.into_values().collect(),
    })
}

fn for_each_line(
    path: &Path,
    sealer: Option<&occi_so_sdk::seal::Sealer>,
    mut f: impl FnMut(&str) -> Result<(), serde_json::Error>,
) -> Result<(), JournalError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(path, e)),
    };
    // A sealed line that does not open is a torn write only when it is the
    // last line; anywhere else (or without the key) it stops the replay:
    // skipping it would lose what it holds.
    let mut unopened: Option<(usize, occi_so_sdk::seal::SealError)> = None;
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| io_err(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        if let Some((at, e)) = unopened.take() {
            return Err(sealed_err(path, at, &e));
        }
        let opened = match occi_so_sdk::seal::open_with(sealer, line.as_bytes()) {
            Ok(b) => b,
            Err(e @ occi_so_sdk::seal::SealError::KeyNeeded) => {
                return Err(sealed_err(path, n + 1, &e))
            }
            Err(e) => {
                unopened = Some((n + 1, e));
                continue;
            }
        };
        let Ok(line) = std::str::from_utf8(&opened) else {
            tracing::warn!(file = %path.display(), line = n + 1, "skipping a journal line that is not UTF-8");
            continue;
        };
        if let Err(e) = f(line) {
            // A torn write at the end after a crash, or a damaged line:
            // skip it rather than refuse to start, and say so.
            tracing::warn!(file = %path.display(), line = n + 1, error = %e, "skipping unreadable journal line");
        }
    }
    if let Some((at, e)) = unopened {
        tracing::warn!(file = %path.display(), line = at, error = %e, "skipping a torn sealed last line");
    }
    Ok(())
}

fn sealed_err(path: &Path, line: usize, e: &occi_so_sdk::seal::SealError) -> JournalError {
    JournalError::Io {
        path: path.display().to_string(),
        message: format!("line {line}: {e}"),
    }
}

/// Writes `value` as one journal line into `w`: JSON, sealed when a key
/// is configured.
fn write_line(
    w: &mut impl Write,
    path: &Path,
    sealer: Option<&occi_so_sdk::seal::Sealer>,
    buf: &mut Vec<u8>,
    value: &impl Serialize,
) -> Result<(), JournalError> {
    let ser = |e: serde_json::Error| JournalError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    buf.clear();
    serde_json::to_writer(&mut *buf, value).map_err(ser)?;
    let line = occi_so_sdk::seal::seal_with(sealer, buf).map_err(|e| JournalError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    w.write_all(&line).map_err(|e| io_err(path, e))?;
    w.write_all(b"\n").map_err(|e| io_err(path, e))
}

struct Writer {
    dir: PathBuf,
    log: BufWriter<File>,
    options: JournalOptions,
    /// A batch failed: nothing more is written (fail-stop).
    failed: bool,
    /// One serialization buffer, reused for every line.
    buf: Vec<u8>,
    /// Fault injection for the crash tests: abort the process once this
    /// many more changes are written (`OCCI_SO_FAULT_CRASH_AFTER_WRITES`).
    crash_after: Option<usize>,
}

/// `OCCI_SO_FAULT_CRASH_AFTER_WRITES=N`: the process aborts right after
/// the N-th change is on disk, before it is published or acknowledged (a
/// test knob that puts a crash at every write boundary; never set it in
/// production).
fn crash_after() -> Option<usize> {
    let n = std::env::var("OCCI_SO_FAULT_CRASH_AFTER_WRITES").ok()?;
    let n = n.trim().parse().ok()?;
    tracing::warn!(
        changes = n,
        "fault injection: the process aborts after this many journal writes"
    );
    Some(n)
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        let mut done: Vec<(Done, Ack)> = Vec::new();
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < 4096 {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            let mut result = if self.failed {
                Err(JournalError::Stopped)
            } else {
                Ok(())
            };
            let mut close = false;
            for msg in batch {
                match msg {
                    Msg::Change(change, d, ack) => {
                        done.push((d, ack));
                        if result.is_ok() {
                            result = self.append(&change);
                        }
                        if let Some(n) = &mut self.crash_after {
                            *n = n.saturating_sub(1);
                            if *n == 0 {
                                let _ = self.flush();
                                std::process::abort();
                            }
                        }
                    }
                    Msg::Compact(snapshot) => {
                        if result.is_ok() {
                            result = self.flush().and_then(|_| self.compact(&snapshot));
                        }
                    }
                    Msg::Close => close = true,
                }
            }
            if result.is_ok() {
                result = self.flush();
            }
            if let Err(e) = &result {
                if !self.failed {
                    tracing::error!(error = %e, "journal write failed; the journal stops taking changes");
                }
                self.failed = true;
            }
            // Published, then acknowledged: a caller that sees its change
            // done finds it visible.
            for (d, ack) in done.drain(..) {
                d(result.is_ok());
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

    fn append(&mut self, change: &Change) -> Result<(), JournalError> {
        let path = self.log_path();
        let sealer = self.options.sealer.as_ref();
        let (w, buf) = (&mut self.log, &mut self.buf);
        match change {
            Change::Put(inst) => write_line(w, &path, sealer, buf, &SnapshotRef::Put(inst)),
            Change::Remove(key) => write_line(w, &path, sealer, buf, &Entry::Remove(key.clone())),
            Change::Operation(o) => write_line(w, &path, sealer, buf, &SnapshotRef::Op(o)),
            Change::OperationRemoved(k) => {
                write_line(w, &path, sealer, buf, &Entry::OpRemoved(k.clone()))
            }
            Change::Document(key, value) => write_line(
                w,
                &path,
                sealer,
                buf,
                &SnapshotRef::Doc(DocRef {
                    space: &key.space,
                    key: &key.key,
                    value: value.as_deref(),
                }),
            ),
        }
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

    fn compact(&mut self, snapshot: &Snapshot) -> Result<(), JournalError> {
        let tmp = self.dir.join("snapshot.jsonl.tmp");
        {
            let mut w = BufWriter::new(create_private(&tmp)?);
            let lines = snapshot
                .instances
                .iter()
                .map(|i| SnapshotRef::Put(i))
                .chain(snapshot.documents.iter().map(|(k, v)| {
                    SnapshotRef::Doc(DocRef {
                        space: &k.space,
                        key: &k.key,
                        value: Some(v),
                    })
                }))
                .chain(snapshot.operations.iter().map(|o| SnapshotRef::Op(o)));
            let sealer = self.options.sealer.as_ref();
            for line in lines {
                write_line(&mut w, &tmp, sealer, &mut self.buf, &line)?;
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

//! Stacks kept across restarts under `<state_dir>/embedded/`:
//!
//! * `templates/<sha256>.json`: each template (with its environment and
//!   files) once, by content;
//! * `stacks/<stack id>.json`: each live stack's inputs (a template digest
//!   and the parameters given), status, resources (ids, random values,
//!   addresses), events and settled outputs.
//!
//! A stack is marked dirty on every change; one writer thread writes the
//! latest state of each dirty stack (changes in between coalesce), each
//! file atomically (a temporary file renamed over it; no fsync: a process
//! crash loses nothing written, a power cut may lose the last changes). A
//! deleted stack's file is removed. Nothing here runs on the async runtime.
//! A settled status (`*_COMPLETE`, `*_FAILED`) is told to the stack's
//! watchers only after its file is written (`dirty_then`), so what the
//! server records of an outcome is never newer than what a restart reads.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;

use occi_so_sdk::{StackAction, StackState as Phase, StackStatus};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::prepared::{Prepared, TemplateCache};
use super::state::{Event, Inputs, Reason, StackCell, StackState, Tree};

const VERSION: u32 = 1;

/// A problem with the state dir.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The directory cannot be made or read.
    #[error("embedded state dir {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Why one stack file was skipped at load.
#[derive(Debug, thiserror::Error)]
enum StackFileError {
    /// The file cannot be read.
    #[error("{0}")]
    Read(#[from] std::io::Error),
    /// The file is not a stack file.
    #[error("{0}")]
    Parse(#[from] serde_json::Error),
    /// A version this build does not know.
    #[error("unknown version {0}")]
    Version(u32),
    /// A sealed file without the key, or with another key.
    #[error("{0}")]
    Sealed(#[from] occi_so_sdk::seal::SealError),
    /// The template the stack names cannot be used.
    #[error("template {0} is missing or unreadable")]
    Template(String),
}

#[derive(Serialize, Deserialize)]
struct TemplateFile {
    template: String,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    files: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct InputsFile {
    template: String,
    params: Vec<(String, String)>,
    timeout_mins: Option<u32>,
    disable_rollback: bool,
    tags: Vec<String>,
}

#[derive(Serialize)]
struct StackFileOut<'a> {
    version: u32,
    project: &'a str,
    id: Uuid,
    name: &'a str,
    status: StackStatus,
    reason: &'a Reason,
    created: u32,
    updated: u32,
    inputs: InputsFile,
    previous: Option<InputsFile>,
    tree: &'a Tree,
    events: &'a [Event],
    events_purged: u64,
    outputs: Option<&'a str>,
}

#[derive(Deserialize)]
struct StackFileIn {
    version: u32,
    project: String,
    id: Uuid,
    name: String,
    status: StackStatus,
    reason: Reason,
    created: u32,
    updated: u32,
    inputs: InputsFile,
    previous: Option<InputsFile>,
    tree: Tree,
    events: Vec<Event>,
    events_purged: u64,
    outputs: Option<String>,
}

fn inputs_file(i: &Inputs) -> InputsFile {
    InputsFile {
        template: i.prepared.digest().to_string(),
        params: i
            .params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        timeout_mins: i.timeout_mins,
        disable_rollback: i.disable_rollback,
        tags: i.tags.iter().map(|t| t.to_string()).collect(),
    }
}

/// What runs once the stacks marked dirty with it are written.
pub(crate) type AfterWrite = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Pending {
    dirty: HashMap<Uuid, Weak<StackCell>>,
    after: Vec<AfterWrite>,
    flushers: Vec<tokio::sync::oneshot::Sender<()>>,
    stop: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
}

/// The writer of the state dir.
pub(crate) struct Journal {
    dir: PathBuf,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    sealer: Option<occi_so_sdk::seal::Sealer>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically (temporary file, then rename),
/// readable by the owner only: stack files hold parameter values and
/// generated secrets (random strings, tokens) in clear.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
    }
    fs::rename(&tmp, path)
}

/// Makes `dir` (and its parents), owner-only.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

impl Journal {
    /// Opens (making it if needed) `<state_dir>/embedded/` and starts the
    /// writer thread.
    pub(super) fn open(
        state_dir: &Path,
        sealer: Option<occi_so_sdk::seal::Sealer>,
    ) -> Result<Journal, JournalError> {
        let dir = state_dir.join("embedded");
        for sub in ["stacks", "templates"] {
            let p = dir.join(sub);
            private_dir(&p).map_err(io_err(&p))?;
        }
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
        });
        let writer = Writer {
            dir: dir.clone(),
            shared: shared.clone(),
            written_templates: HashSet::new(),
            sealer: sealer.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("embedded-journal".into())
            .spawn(move || writer.run())
            .map_err(io_err(&dir))?;
        Ok(Journal {
            dir,
            shared,
            thread: Mutex::new(Some(thread)),
            sealer,
        })
    }

    /// Where it writes.
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The stack changed: write it soon.
    pub(super) fn dirty(&self, cell: &Arc<StackCell>) {
        let mut p = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let fresh = p.dirty.is_empty();
        p.dirty
            .entry(cell.id)
            .or_insert_with(|| Arc::downgrade(cell));
        drop(p);
        if fresh {
            self.shared.wake.notify_one();
        }
    }

    /// The stack changed: write it now, then run `after` (on the writer
    /// thread, once the file is written).
    pub(super) fn dirty_then(&self, cell: &Arc<StackCell>, after: AfterWrite) {
        let mut p = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        p.dirty
            .entry(cell.id)
            .or_insert_with(|| Arc::downgrade(cell));
        p.after.push(after);
        drop(p);
        self.shared.wake.notify_one();
    }

    /// Resolves once everything marked dirty before the call is written.
    pub(super) async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let mut p = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            p.flushers.push(tx);
        }
        self.shared.wake.notify_one();
        let _ = rx.await;
    }

    /// Reads every stack back: `(project, id, name, state)` for the caller
    /// to register, templates parsed once each through `cache`.
    pub(super) fn load(
        &self,
        cache: &TemplateCache,
    ) -> Result<Vec<(String, Uuid, String, StackState)>, JournalError> {
        let stacks_dir = self.dir.join("stacks");
        let mut templates: HashMap<String, Option<Arc<Prepared>>> = HashMap::new();
        let mut out = Vec::new();
        let entries = fs::read_dir(&stacks_dir).map_err(io_err(&stacks_dir))?;
        for entry in entries {
            let path = match entry {
                Ok(e) => e.path(),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list an embedded stack file");
                    continue;
                }
            };
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match self.read_stack(&path, cache, &mut templates) {
                Ok(s) => out.push(s),
                // Without the key (or with another) nothing is readable:
                // refuse to start rather than forget every stack.
                Err(StackFileError::Sealed(e)) => {
                    return Err(JournalError::Io {
                        path: path.clone(),
                        source: std::io::Error::other(e.to_string()),
                    })
                }
                Err(why) => {
                    tracing::warn!(file = %path.display(), %why, "skipped an unreadable embedded stack")
                }
            }
        }
        Ok(out)
    }

    fn template(
        &self,
        digest: &str,
        cache: &TemplateCache,
        templates: &mut HashMap<String, Option<Arc<Prepared>>>,
    ) -> Option<Arc<Prepared>> {
        if let Some(t) = templates.get(digest) {
            return t.clone();
        }
        let path = self.dir.join("templates").join(format!("{digest}.json"));
        let parsed = fs::read(&path)
            .ok()
            .and_then(|b| {
                occi_so_sdk::seal::open_with(self.sealer.as_ref(), &b)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<TemplateFile>(&b).ok())
            })
            .and_then(|t| Prepared::parse(&t.template, t.environment.as_deref(), &t.files).ok())
            .map(|p| cache.adopt(p));
        templates.insert(digest.to_string(), parsed.clone());
        parsed
    }

    fn read_stack(
        &self,
        path: &Path,
        cache: &TemplateCache,
        templates: &mut HashMap<String, Option<Arc<Prepared>>>,
    ) -> Result<(String, Uuid, String, StackState), StackFileError> {
        let bytes = fs::read(path)?;
        let bytes = occi_so_sdk::seal::open_with(self.sealer.as_ref(), &bytes)?;
        let f: StackFileIn = serde_json::from_slice(&bytes)?;
        if f.version != VERSION {
            return Err(StackFileError::Version(f.version));
        }
        let mut inputs = |i: InputsFile| -> Result<Inputs, StackFileError> {
            let prepared = self
                .template(&i.template, cache, templates)
                .ok_or_else(|| StackFileError::Template(i.template.clone()))?;
            Ok(Inputs {
                prepared,
                params: i
                    .params
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
                timeout_mins: i.timeout_mins,
                disable_rollback: i.disable_rollback,
                tags: i.tags.into_iter().map(Into::into).collect(),
            })
        };
        let current = inputs(f.inputs)?;
        // An update's previous inputs only serve its rollback, which the
        // restart ends.
        let _ = f.previous;
        let state = StackState {
            status: f.status,
            reason: f.reason,
            created: f.created,
            updated: f.updated,
            deleted: 0,
            inputs: current,
            previous: None,
            tree: f.tree,
            events: f.events,
            events_purged: f.events_purged,
            outputs: f.outputs.map(String::into_boxed_str),
            live: None,
            op: None,
            generation: 0,
            watch: None,
        };
        Ok((f.project, f.id, f.name, state))
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        {
            let mut p = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            p.stop = true;
        }
        self.shared.wake.notify_one();
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

struct Writer {
    dir: PathBuf,
    shared: Arc<Shared>,
    written_templates: HashSet<String>,
    sealer: Option<occi_so_sdk::seal::Sealer>,
}

impl Writer {
    fn run(mut self) {
        loop {
            let (dirty, after, flushers, stop) = {
                let mut p = self
                    .shared
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                while p.dirty.is_empty() && p.flushers.is_empty() && !p.stop {
                    p = self.shared.wake.wait(p).unwrap_or_else(|e| e.into_inner());
                }
                (
                    std::mem::take(&mut p.dirty),
                    std::mem::take(&mut p.after),
                    std::mem::take(&mut p.flushers),
                    p.stop,
                )
            };
            for (id, cell) in dirty {
                self.write(id, cell.upgrade());
            }
            for a in after {
                a();
            }
            for f in flushers {
                let _ = f.send(());
            }
            if stop {
                let empty = self
                    .shared
                    .pending
                    .lock()
                    .map(|p| p.dirty.is_empty())
                    .unwrap_or(true);
                if empty {
                    return;
                }
            }
        }
    }

    fn write(&mut self, id: Uuid, cell: Option<Arc<StackCell>>) {
        let path = self.dir.join("stacks").join(format!("{id}.json"));
        let Some(cell) = cell else {
            let _ = fs::remove_file(&path);
            return;
        };
        let (bytes, templates) = {
            let st = cell.lock();
            let deleted = st.status == StackStatus::new(StackAction::Delete, Phase::Complete);
            if deleted {
                drop(st);
                if let Err(e) = fs::remove_file(&path) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!(file = %path.display(), error = %e, "cannot remove a deleted stack's file");
                    }
                }
                return;
            }
            let mut templates = vec![st.inputs.prepared.clone()];
            templates.extend(st.previous.as_ref().map(|p| p.prepared.clone()));
            let out = StackFileOut {
                version: VERSION,
                project: &cell.project,
                id: cell.id,
                name: &cell.name,
                status: st.status,
                reason: &st.reason,
                created: st.created,
                updated: st.updated,
                inputs: inputs_file(&st.inputs),
                previous: st.previous.as_deref().map(inputs_file),
                tree: &st.tree,
                events: &st.events,
                events_purged: st.events_purged,
                outputs: st.outputs.as_deref(),
            };
            let sealer = self.sealer.as_ref();
            let bytes = serde_json::to_vec(&out)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    occi_so_sdk::seal::seal_with(sealer, &b)
                        .map(|c| c.into_owned())
                        .map_err(|e| e.to_string())
                });
            (bytes, templates)
        };
        for t in templates {
            self.write_template(&t);
        }
        match bytes {
            Ok(b) => {
                if let Err(e) = write_atomically(&path, &b) {
                    tracing::warn!(file = %path.display(), error = %e, "cannot write an embedded stack");
                }
            }
            Err(e) => tracing::warn!(stack = %id, error = %e, "cannot encode an embedded stack"),
        }
    }

    fn write_template(&mut self, t: &Prepared) {
        let digest = t.digest().to_string();
        if self.written_templates.contains(&digest) {
            return;
        }
        let path = self.dir.join("templates").join(format!("{digest}.json"));
        if !path.exists() {
            let file = TemplateFile {
                template: t.template_text.clone(),
                environment: t.environment_text.clone(),
                files: t.files().clone(),
            };
            let sealer = self.sealer.as_ref();
            let written = serde_json::to_vec(&file)
                .map_err(std::io::Error::other)
                .and_then(|b| {
                    occi_so_sdk::seal::seal_with(sealer, &b)
                        .map_err(std::io::Error::other)
                        .and_then(|b| write_atomically(&path, &b))
                });
            if let Err(e) = written {
                tracing::warn!(file = %path.display(), error = %e, "cannot write an embedded template");
                return;
            }
        }
        self.written_templates.insert(digest);
    }
}

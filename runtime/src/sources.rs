//! Where run-time plugins come from, and the one task that changes them.
//!
//! Sources: the `--plugins` directories (each sub-folder holding a
//! `plugin.yaml` is a declarative plugin; a directory holding one itself
//! is one), uploads (`<state-dir>/plugins/<name>/`, written by the admin
//! API), folders registered through the admin API, and remote plugins.
//! Registrations made through the admin API are kept as a document of the
//! store (space `plugins`), written and durable before the change is made
//! in memory, so a restart brings them back (instances in the journal need
//! their plugin); a `plugins.json` of an earlier version is imported once.
//!
//! Every change (a file event, an admin call, a pending removal) goes
//! through one task, in order, so no two reloads of a folder race and no
//! lock is held across an `.await`. The task runs on a thread of its own
//! (a current-thread runtime), so its file reads and writes never block the
//! server's runtime. Readers (listings) see a status snapshot.
//!
//! Hot reload rules:
//! * a new folder registers a new kind;
//! * an edited manifest, template or environment re-registers the plugin
//!   (`Registry::replace`; if the kind or name changed and it has no live
//!   instances, unregister + register); a broken edit is refused with a
//!   log line naming the file and line, and the previous version keeps
//!   serving;
//! * a removed folder unregisters the plugin once it has no live
//!   instances; until then it serves only its existing instances (new ones
//!   are refused), and `DELETE /admin/plugins/{name}?force=true` removes it
//!   at once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use occi_so_sdk::{
    Attributes, InstanceView, LifecycleCtx, Operation, Orchestrator, PluginError, PluginInfo,
    PluginSource, StateReport,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::load::{self, LoadError};
use super::manifest::{self, Upload};
use super::remote::{ClientError, RemotePlugin, RemoteSpec};
use super::watch::{Change, FolderWatcher, WatchError, DEBOUNCE, MAX_DELAY};
use occi_so_framework::registry::{Registry, RegistryError};
use occi_so_framework::store::{DocKey, JournalError, Store};

/// Where the registrations are kept in the store.
fn registrations_key() -> DocKey {
    DocKey::new("plugins", "registrations")
}

/// Why an admin change was refused. The HTTP mapping is in `crate::error`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// The plugin folder or manifest is broken (file and line named).
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The registry refused (name or kind taken, live instances, ...).
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The request is wrong.
    #[error("{0}")]
    Invalid(String),
    /// A remote orchestrator refused or could not be reached.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The server failed (a file could not be written...).
    #[error("{0}")]
    Internal(String),
}

/// Why the plugin sources could not start (the server does not start).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The plugin task's runtime cannot be built.
    #[error("the plugin task's runtime: {0}")]
    Runtime(std::io::Error),
    /// The plugin task's thread cannot be spawned.
    #[error("the plugin task's thread: {0}")]
    Thread(std::io::Error),
    /// The plugin task ended before it reported.
    #[error("the plugin task stopped while starting")]
    Stopped,
    /// The HTTP client of remote plugins cannot be built.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A `--plugins` directory cannot be opened.
    #[error("--plugins {}: {source}", .path.display())]
    PluginsDir {
        /// The directory as given.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A `--plugins` path is not a directory.
    #[error("--plugins {}: not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// A file or directory of the state dir cannot be made, read or renamed.
    #[error("{}: {source}", .path.display())]
    File {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The `plugins.json` of an earlier version cannot be read.
    #[error("{}: {source}", .path.display())]
    OldRegistrations {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// The registrations document in the journal has another shape.
    #[error("plugin registrations in the journal: {0}")]
    Registrations(serde_json::Error),
    /// The registrations cannot be encoded as JSON.
    #[error("{0}")]
    Encode(serde_json::Error),
    /// The imported registrations cannot be written to the journal.
    #[error("plugin registrations: {0}")]
    Journal(#[from] JournalError),
    /// A directory cannot be watched.
    #[error(transparent)]
    Watch(#[from] WatchError),
}

/// Where a declarative folder was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Inside a `--plugins` directory.
    Directory,
    /// Uploaded through the admin API.
    Upload,
    /// Registered by path through the admin API.
    Registered,
}

/// What is known about one declarative folder.
#[derive(Clone, Debug, Serialize)]
pub struct FolderStatus {
    /// The folder (canonical path).
    pub path: PathBuf,
    /// How it came.
    pub origin: Origin,
    /// The plugin it registered, if any.
    pub plugin: Option<String>,
    /// Digest of the files the serving version was built from.
    pub fingerprint: Option<String>,
    /// Why the latest version was refused (the serving one, if any, stays).
    pub error: Option<String>,
    /// The folder is gone; the plugin waits for its last instance.
    pub removing: bool,
    /// Unregistered through the admin API; not loaded until registered again.
    pub disabled: bool,
    /// Unix ms of the last successful (re)load.
    pub loaded_at: Option<u64>,
}

/// What the admin API shows about declarative folders.
#[derive(Clone, Debug, Default)]
pub struct Status {
    /// Every known folder.
    pub folders: BTreeMap<PathBuf, FolderStatus>,
}

impl Status {
    /// The folder that registered plugin `name`.
    pub fn folder_of(&self, name: &str) -> Option<&FolderStatus> {
        self.folders
            .values()
            .find(|f| f.plugin.as_deref() == Some(name))
    }
}

/// The registrations made through the admin API.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Registrations {
    #[serde(default)]
    folders: Vec<PathBuf>,
    #[serde(default)]
    disabled: Vec<PathBuf>,
    #[serde(default)]
    remotes: Vec<RemoteSpec>,
}

enum Command {
    RegisterFolder(PathBuf, oneshot::Sender<Result<String, SourceError>>),
    Upload(Upload, oneshot::Sender<Result<String, SourceError>>),
    RegisterRemote(
        Box<RemoteSpec>,
        oneshot::Sender<Result<String, SourceError>>,
    ),
    Unregister(String, bool, oneshot::Sender<Result<(), SourceError>>),
}

/// Handle to the plugin sources (cheap to clone).
#[derive(Clone)]
pub struct PluginSources {
    tx: mpsc::Sender<Command>,
    status: Arc<RwLock<Status>>,
    http: reqwest::Client,
}

/// Settings of the plugin sources.
pub struct SourcesConfig {
    /// `--plugins` directories.
    pub dirs: Vec<PathBuf>,
    /// The state directory (uploads and `plugins.json` live there).
    pub state_dir: PathBuf,
}

/// Most files one upload may carry.
const MAX_UPLOAD_FILES: usize = 200;

/// How often plugins whose folder is gone are checked for live instances.
const REMOVAL_CHECK: Duration = Duration::from_secs(1);

fn now_ms() -> u64 {
    occi_so_framework::store::now_ms()
}

impl PluginSources {
    /// Loads every source (compiled plugins are registered by the caller),
    /// starts watching the folders, and returns the handle. Broken folders
    /// are logged and listed, not fatal; an unusable `--plugins` directory is.
    pub async fn start(
        config: SourcesConfig,
        registry: Arc<Registry>,
        store: Arc<Store>,
        stop: tokio_util::sync::CancellationToken,
    ) -> Result<PluginSources, StartError> {
        let (ready, started) = oneshot::channel();
        std::thread::Builder::new()
            .name("occi-so-plugins".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready.send(Err(StartError::Runtime(e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    match Task::setup(config, registry, store).await {
                        Ok((task, handle, change_rx, rx)) => {
                            let _ = ready.send(Ok(handle));
                            task.run(rx, change_rx, stop).await;
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e));
                        }
                    }
                });
            })
            .map_err(StartError::Thread)?;
        started.await.map_err(|_| StartError::Stopped)?
    }

    /// The status snapshot of the declarative folders.
    pub fn status(&self) -> Status {
        self.status
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The HTTP client remote plugins use.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, SourceError>>) -> Command,
    ) -> Result<T, SourceError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| SourceError::Internal("the plugin task has stopped".into()))?;
        rx.await
            .map_err(|_| SourceError::Internal("the plugin task has stopped".into()))?
    }

    /// Registers (or reloads) the declarative plugin in folder `path`;
    /// returns its name.
    pub async fn register_folder(&self, path: PathBuf) -> Result<String, SourceError> {
        self.ask(|r| Command::RegisterFolder(path, r)).await
    }

    /// Writes an uploaded plugin (relative path → text, `plugin.yaml`
    /// included) under the state directory and registers it; a new upload
    /// of the same name replaces it. Returns its name.
    pub async fn upload(&self, files: Upload) -> Result<String, SourceError> {
        self.ask(|r| Command::Upload(files, r)).await
    }

    /// Registers a remote plugin; returns its name.
    pub async fn register_remote(&self, spec: RemoteSpec) -> Result<String, SourceError> {
        self.ask(|r| Command::RegisterRemote(Box::new(spec), r))
            .await
    }

    /// Unregisters plugin `name` (refused with live instances unless `force`).
    pub async fn unregister(&self, name: String, force: bool) -> Result<(), SourceError> {
        self.ask(|r| Command::Unregister(name, force, r)).await
    }
}

struct Task {
    registry: Arc<Registry>,
    store: Arc<Store>,
    http: reqwest::Client,
    dirs: Vec<PathBuf>,
    uploads: PathBuf,
    persisted: Registrations,
    folders: BTreeMap<PathBuf, FolderStatus>,
    watcher: FolderWatcher,
    status: Arc<RwLock<Status>>,
}

fn hidden(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().starts_with('.')
}

impl Task {
    /// Everything `start` does before the task runs: the directories, the
    /// persisted registrations, the watcher and a first scan.
    #[allow(clippy::type_complexity)]
    async fn setup(
        config: SourcesConfig,
        registry: Arc<Registry>,
        store: Arc<Store>,
    ) -> Result<
        (
            Task,
            PluginSources,
            mpsc::UnboundedReceiver<Change>,
            mpsc::Receiver<Command>,
        ),
        StartError,
    > {
        let http = super::remote::http_client()?;
        let mut dirs = Vec::new();
        for d in &config.dirs {
            let c = std::fs::canonicalize(d).map_err(|source| StartError::PluginsDir {
                path: d.clone(),
                source,
            })?;
            if !c.is_dir() {
                return Err(StartError::NotADirectory(d.clone()));
            }
            dirs.push(c);
        }
        let uploads = config.state_dir.join("plugins");
        let in_state_dir = |source| StartError::File {
            path: uploads.clone(),
            source,
        };
        std::fs::create_dir_all(&uploads).map_err(in_state_dir)?;
        let uploads = std::fs::canonicalize(&uploads).map_err(in_state_dir)?;
        let persisted = persisted_registrations(&store, &config.state_dir).await?;
        let (change_tx, change_rx) = mpsc::unbounded_channel();
        let mut watcher = FolderWatcher::new(change_tx)?;
        for d in dirs.iter().chain(std::iter::once(&uploads)) {
            watcher.watch(d)?;
        }
        for f in &persisted.folders {
            if let Err(e) = watcher.watch(f) {
                tracing::warn!(error = %e, "a registered plugin folder cannot be watched");
            }
        }
        let status = Arc::new(RwLock::new(Status::default()));
        let mut task = Task {
            registry,
            store,
            http: http.clone(),
            dirs,
            uploads,
            persisted,
            folders: BTreeMap::new(),
            watcher,
            status: status.clone(),
        };
        for spec in task.persisted.remotes.clone() {
            let name = spec.name.clone();
            match task
                .registry
                .register(Arc::new(RemotePlugin::new(spec, http.clone())))
            {
                Ok(_) => tracing::info!(plugin = %name, "remote plugin registered"),
                Err(e) => {
                    tracing::error!(plugin = %name, error = %e, "remote plugin not registered")
                }
            }
        }
        task.rescan().await;
        let (tx, rx) = mpsc::channel(32);
        Ok((task, PluginSources { tx, status, http }, change_rx, rx))
    }

    /// Makes `next` the registrations: durable in the store first, then here.
    async fn commit(&mut self, next: Registrations) -> Result<(), SourceError> {
        let value =
            serde_json::to_value(&next).map_err(|e| SourceError::Internal(e.to_string()))?;
        let durable = self
            .store
            .update_document(&registrations_key(), |_| {
                Ok::<_, std::convert::Infallible>(Some(value))
            })
            .unwrap_or_else(|never| match never {});
        durable
            .wait()
            .await
            .map_err(|e| SourceError::Internal(format!("plugin registrations: {e}")))?;
        self.persisted = next;
        Ok(())
    }

    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut changes: mpsc::UnboundedReceiver<Change>,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let mut pending: BTreeSet<PathBuf> = BTreeSet::new();
        let mut rescan = false;
        let mut first: Option<Instant> = None;
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut tick = tokio::time::interval(REMOVAL_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let sleep_until =
                deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = stop.cancelled() => break,
                c = commands.recv() => match c {
                    Some(c) => self.command(c).await,
                    None => break,
                },
                c = changes.recv() => {
                    let Some(c) = c else { break };
                    match c {
                        Change::Rescan => rescan = true,
                        Change::Path(p) => {
                            if let Some(f) = self.folder_of(&p) {
                                pending.insert(f);
                            }
                        }
                    }
                    if rescan || !pending.is_empty() {
                        let started = *first.get_or_insert_with(Instant::now);
                        let quiet = tokio::time::Instant::now() + DEBOUNCE;
                        let latest = tokio::time::Instant::from_std(started + MAX_DELAY);
                        deadline = Some(quiet.min(latest));
                    }
                }
                _ = tokio::time::sleep_until(sleep_until), if deadline.is_some() => {
                    deadline = None;
                    first = None;
                    if std::mem::take(&mut rescan) {
                        pending.clear();
                        self.rescan().await;
                    } else {
                        for f in std::mem::take(&mut pending) {
                            let _ = self.sync(&f, false).await;
                        }
                    }
                }
                _ = tick.tick() => self.check_removals(),
            }
        }
    }

    async fn command(&mut self, c: Command) {
        match c {
            Command::RegisterFolder(path, reply) => {
                let r = self.register_folder(&path).await;
                let _ = reply.send(r);
            }
            Command::Upload(files, reply) => {
                let r = self.upload(files).await;
                let _ = reply.send(r);
            }
            Command::RegisterRemote(spec, reply) => {
                let r = self.register_remote(*spec).await;
                let _ = reply.send(r);
            }
            Command::Unregister(name, force, reply) => {
                let r = self.unregister(&name, force).await;
                let _ = reply.send(r);
            }
        }
    }

    fn publish(&self) {
        let mut s = self.status.write().unwrap_or_else(|p| p.into_inner());
        s.folders = self.folders.clone();
    }

    /// The plugin folder a changed path belongs to.
    fn folder_of(&self, p: &Path) -> Option<PathBuf> {
        if let Some(f) = self.persisted.folders.iter().find(|f| p.starts_with(f)) {
            return Some(f.clone());
        }
        for d in self.dirs.iter().chain(std::iter::once(&self.uploads)) {
            let Ok(rel) = p.strip_prefix(d) else { continue };
            if d.join(manifest::FILE_NAME).is_file() || self.folders.contains_key(d) {
                return Some(d.clone());
            }
            let first = rel.components().next()?;
            let Component::Normal(name) = first else {
                return None;
            };
            if hidden(name) {
                return None;
            }
            return Some(d.join(name));
        }
        None
    }

    fn origin_of(&self, folder: &Path) -> Origin {
        if folder.starts_with(&self.uploads) {
            Origin::Upload
        } else if self.dirs.iter().any(|d| folder.starts_with(d)) {
            Origin::Directory
        } else {
            Origin::Registered
        }
    }

    /// Every folder that is (or was) a plugin.
    fn candidates(&self) -> BTreeSet<PathBuf> {
        let mut out: BTreeSet<PathBuf> = self.folders.keys().cloned().collect();
        out.extend(self.persisted.folders.iter().cloned());
        for d in self.dirs.iter().chain(std::iter::once(&self.uploads)) {
            if d.join(manifest::FILE_NAME).is_file() {
                out.insert(d.clone());
                continue;
            }
            let Ok(entries) = std::fs::read_dir(d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() && !hidden(&e.file_name()) && p.join(manifest::FILE_NAME).is_file() {
                    out.insert(p);
                }
            }
        }
        out
    }

    async fn rescan(&mut self) {
        for f in self.candidates() {
            let _ = self.sync(&f, false).await;
        }
    }

    fn live(&self, name: &str) -> usize {
        self.store.count_for_plugin(name)
    }

    /// Brings the registry in line with folder `folder`; returns the name
    /// of the plugin it serves.
    async fn sync(&mut self, folder: &Path, admin: bool) -> Result<String, SourceError> {
        let origin = self.origin_of(folder);
        let disabled = self.persisted.disabled.iter().any(|d| d == folder);
        let entry = self.folders.get(folder).cloned();
        if !folder.join(manifest::FILE_NAME).is_file() {
            self.gone(folder, entry);
            self.publish();
            return Err(SourceError::Invalid(format!(
                "{}: no plugin.yaml in this folder",
                folder.display()
            )));
        }
        if disabled && !admin {
            let mut e = entry.unwrap_or_else(|| blank(folder, origin));
            e.disabled = true;
            self.folders.insert(folder.to_path_buf(), e);
            self.publish();
            return Err(SourceError::Invalid(format!(
                "{} was unregistered by an administrator",
                folder.display()
            )));
        }
        let dir = folder.to_path_buf();
        let loaded = tokio::task::spawn_blocking(move || load::load(&dir))
            .await
            .map_err(|e| SourceError::Internal(format!("loading {}: {e}", folder.display())))?;
        let mut status = entry.clone().unwrap_or_else(|| blank(folder, origin));
        status.disabled = false;
        let result = match loaded {
            Err(e) => {
                tracing::warn!(
                    file = %e.file,
                    line = e.line.unwrap_or(0),
                    serving = status.plugin.as_deref().unwrap_or("-"),
                    "plugin rejected: {e}{}",
                    if status.plugin.is_some() { " (the previous version keeps serving)" } else { "" }
                );
                status.error = Some(e.to_string());
                Err(SourceError::Load(e))
            }
            Ok(l) => {
                let def = l.definition;
                let name = def.info.name.clone();
                let unchanged = status.plugin.as_deref() == Some(name.as_str())
                    && status.fingerprint.as_deref() == Some(def.fingerprint.as_str())
                    && !status.removing;
                if unchanged {
                    status.error = None;
                    Ok(name)
                } else {
                    let fingerprint = def.fingerprint.clone();
                    match self.apply(status.plugin.clone(), def) {
                        Ok(action) => {
                            tracing::info!(plugin = %name, folder = %folder.display(), fingerprint = %fingerprint, "plugin {action}");
                            status.plugin = Some(name.clone());
                            status.fingerprint = Some(fingerprint);
                            status.error = None;
                            status.removing = false;
                            status.loaded_at = Some(now_ms());
                            Ok(name)
                        }
                        Err(e) => {
                            tracing::warn!(plugin = %name, folder = %folder.display(), error = %e, "plugin rejected by the registry");
                            status.error = Some(e.to_string());
                            Err(e)
                        }
                    }
                }
            }
        };
        self.folders.insert(folder.to_path_buf(), status);
        self.publish();
        result
    }

    /// Registers or replaces; says which it did.
    fn apply(
        &mut self,
        serving: Option<String>,
        def: Arc<super::declarative::Definition>,
    ) -> Result<&'static str, SourceError> {
        let name = def.info.name.clone();
        let plugin: Arc<dyn Orchestrator> = def;
        match serving {
            None => {
                self.registry.register(plugin)?;
                Ok("registered")
            }
            Some(old) if old == name => match self.registry.replace(plugin.clone()) {
                Ok(_) => Ok("reloaded"),
                Err(RegistryError::Invalid { message, .. })
                    if message.contains("may not change") =>
                {
                    let live = self.live(&old);
                    if live > 0 {
                        return Err(SourceError::Invalid(format!(
                            "plugin {old}: {message}; it has {live} live instance(s), so the kind and location stay until they are disposed"
                        )));
                    }
                    self.swap(&old, plugin)?;
                    Ok("re-registered with its new kind")
                }
                Err(e) => Err(e.into()),
            },
            Some(old) => {
                let live = self.live(&old);
                if live > 0 {
                    return Err(SourceError::Invalid(format!(
                        "the folder's plugin was renamed from {old} to {name}; {old} has {live} live instance(s), so it keeps its name until they are disposed"
                    )));
                }
                self.swap(&old, plugin)?;
                Ok("re-registered under its new name")
            }
        }
    }

    /// Unregisters `old` and registers `plugin`; puts `old` back if the
    /// new one is refused.
    fn swap(&mut self, old: &str, plugin: Arc<dyn Orchestrator>) -> Result<(), SourceError> {
        let previous = self.registry.by_name(old).map(|b| b.plugin.clone());
        self.registry.unregister(old, 0, false)?;
        if let Err(e) = self.registry.register(plugin) {
            if let Some(p) = previous {
                let _ = self.registry.register(p);
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// The folder is gone (or lost its manifest).
    fn gone(&mut self, folder: &Path, entry: Option<FolderStatus>) {
        let Some(mut e) = entry else { return };
        let Some(name) = e.plugin.clone() else {
            self.folders.remove(folder);
            return;
        };
        let live = self.live(&name);
        if live == 0 {
            match self.registry.unregister(&name, 0, false) {
                Ok(()) => {
                    tracing::info!(plugin = %name, folder = %folder.display(), "plugin unregistered (its folder is gone)")
                }
                Err(err) => {
                    tracing::warn!(plugin = %name, error = %err, "plugin could not be unregistered")
                }
            }
            self.folders.remove(folder);
        } else if !e.removing {
            if let Some(b) = self.registry.by_name(&name) {
                let draining: Arc<dyn Orchestrator> = Arc::new(Draining(b.plugin.clone()));
                let _ = self.registry.replace(draining);
            }
            tracing::warn!(plugin = %name, folder = %folder.display(), instances = live, "plugin folder removed: it serves only its {live} live instance(s) and is unregistered when the last is disposed (or DELETE /admin/plugins/{name}?force=true)");
            e.removing = true;
            self.folders.insert(folder.to_path_buf(), e);
        }
    }

    fn check_removals(&mut self) {
        let waiting: Vec<(PathBuf, String)> = self
            .folders
            .iter()
            .filter(|(_, f)| f.removing)
            .filter_map(|(p, f)| f.plugin.clone().map(|n| (p.clone(), n)))
            .collect();
        let mut changed = false;
        for (folder, name) in waiting {
            if folder.join(manifest::FILE_NAME).is_file() {
                continue; // it came back; the next sync reloads it
            }
            if self.live(&name) == 0 {
                if self.registry.unregister(&name, 0, false).is_ok() {
                    tracing::info!(plugin = %name, "plugin unregistered: its folder is gone and its last instance was disposed");
                }
                self.folders.remove(&folder);
                changed = true;
            }
        }
        if changed {
            self.publish();
        }
    }

    async fn register_folder(&mut self, path: &Path) -> Result<String, SourceError> {
        let folder = std::fs::canonicalize(path)
            .map_err(|e| SourceError::Invalid(format!("path {}: {e}", path.display())))?;
        if !folder.is_dir() {
            return Err(SourceError::Invalid(format!(
                "path {}: not a folder",
                path.display()
            )));
        }
        let origin = self.origin_of(&folder);
        let mut next = self.persisted.clone();
        next.disabled.retain(|d| d != &folder);
        let new_folder = origin == Origin::Registered && !next.folders.contains(&folder);
        if new_folder {
            next.folders.push(folder.clone());
        }
        // The folder must load before anything is kept of it; a disabled
        // folder loads only once its registration says it is enabled.
        crate::load::load(&folder)?;
        let before = self.persisted.clone();
        if next.folders != before.folders || next.disabled != before.disabled {
            self.commit(next).await?;
        }
        match self.sync(&folder, true).await {
            Ok(name) => {
                if new_folder {
                    if let Err(e) = self.watcher.watch(&folder) {
                        tracing::warn!(error = %e, "hot reload is off for this folder");
                    }
                }
                Ok(name)
            }
            Err(e) => {
                if self.persisted.folders != before.folders
                    || self.persisted.disabled != before.disabled
                {
                    let _ = self.commit(before).await;
                }
                Err(e)
            }
        }
    }

    async fn upload(&mut self, files: Upload) -> Result<String, SourceError> {
        let Some(text) = files.get(manifest::FILE_NAME) else {
            return Err(SourceError::Invalid("an upload needs plugin.yaml".into()));
        };
        if files.len() > MAX_UPLOAD_FILES {
            return Err(SourceError::Invalid(format!(
                "an upload carries at most {MAX_UPLOAD_FILES} files"
            )));
        }
        let name = manifest::parse(text, Path::new("plugin.yaml"))?
            .manifest
            .name;
        if name.is_empty()
            || name.starts_with('.')
            || name.contains(['/', '\\'])
            || name.contains("..")
        {
            return Err(SourceError::Invalid(format!(
                "plugin name {name:?} cannot name a folder"
            )));
        }
        for rel in files.keys() {
            let p = Path::new(rel);
            let ok = !rel.is_empty()
                && p.components()
                    .all(|c| matches!(c, Component::Normal(n) if !hidden(n)));
            if !ok {
                return Err(SourceError::Invalid(format!(
                    "file name {rel:?} must be a relative path inside the plugin folder (no '..', no hidden files)"
                )));
            }
        }
        let target = self.uploads.join(&name);
        if let Some(owner) = self.registry.by_name(&name) {
            let ours =
                self.folders.get(&target).and_then(|f| f.plugin.as_deref()) == Some(name.as_str());
            if !ours {
                return Err(RegistryError::NameTaken(format!(
                    "{name} (registered from {})",
                    source_text(&owner.plugin.info().source)
                ))
                .into());
            }
        }
        let scratch = self
            .uploads
            .join(format!(".incoming-{}", uuid::Uuid::new_v4()));
        let write = |dir: &Path| -> std::io::Result<()> {
            for (rel, text) in &files {
                let p = dir.join(rel);
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&p, text)?;
            }
            Ok(())
        };
        if let Err(e) = write(&scratch) {
            let _ = std::fs::remove_dir_all(&scratch);
            return Err(SourceError::Internal(format!("writing the upload: {e}")));
        }
        let (dir, shown) = (scratch.clone(), PathBuf::from(&name));
        let checked = tokio::task::spawn_blocking(move || load::load_as(&dir, &shown))
            .await
            .map_err(|e| SourceError::Internal(e.to_string()))?;
        if let Err(e) = checked {
            let _ = std::fs::remove_dir_all(&scratch);
            return Err(e.into());
        }
        // Swap the folder in; the previous upload is kept until the new one registered.
        let old = self
            .uploads
            .join(format!(".previous-{}", uuid::Uuid::new_v4()));
        let had_old = target.exists();
        let swapped = (|| -> std::io::Result<()> {
            if had_old {
                std::fs::rename(&target, &old)?;
            }
            std::fs::rename(&scratch, &target)
        })();
        if let Err(e) = swapped {
            let _ = std::fs::remove_dir_all(&scratch);
            if had_old && !target.exists() {
                let _ = std::fs::rename(&old, &target);
            }
            return Err(SourceError::Internal(format!("installing the upload: {e}")));
        }
        match self.sync(&target, true).await {
            Ok(n) => {
                if had_old {
                    let _ = std::fs::remove_dir_all(&old);
                }
                if self.persisted.disabled.contains(&target) {
                    let mut next = self.persisted.clone();
                    next.disabled.retain(|d| d != &target);
                    self.commit(next).await?;
                }
                Ok(n)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&target);
                if had_old {
                    let _ = std::fs::rename(&old, &target);
                    let _ = self.sync(&target, true).await;
                } else {
                    self.folders.remove(&target);
                    self.publish();
                }
                Err(e)
            }
        }
    }

    async fn register_remote(&mut self, spec: RemoteSpec) -> Result<String, SourceError> {
        let name = spec.name.clone();
        let plugin = Arc::new(RemotePlugin::new(spec.clone(), self.http.clone()));
        // Refused before anything is kept when the registry would refuse it.
        if let Some(owner) = self.registry.by_name(&name) {
            return Err(RegistryError::NameTaken(format!(
                "{name} (registered from {})",
                source_text(&owner.plugin.info().source)
            ))
            .into());
        }
        occi_so_framework::registry::check_kind(plugin.info())?;
        let before = self.persisted.clone();
        let mut next = before.clone();
        next.remotes.retain(|r| r.name != name);
        next.remotes.push(spec);
        self.commit(next).await?;
        if let Err(e) = self.registry.register(plugin) {
            let _ = self.commit(before).await;
            return Err(e.into());
        }
        tracing::info!(plugin = %name, "remote plugin registered");
        Ok(name)
    }

    async fn unregister(&mut self, name: &str, force: bool) -> Result<(), SourceError> {
        let binding = self
            .registry
            .by_name(name)
            .ok_or_else(|| RegistryError::NotFound(name.to_string()))?;
        let live = self.live(name);
        if live > 0 && !force {
            return Err(RegistryError::InUse {
                name: name.to_string(),
                instances: live,
            }
            .into());
        }
        // What is kept changes first; the registry follows once it is durable.
        let mut next = self.persisted.clone();
        let folder = self
            .folders
            .iter()
            .find(|(_, f)| f.plugin.as_deref() == Some(name))
            .map(|(p, f)| (p.clone(), f.origin));
        match (binding.plugin.info().source.clone(), &folder) {
            (PluginSource::Remote { .. }, _) => next.remotes.retain(|r| r.name != name),
            (PluginSource::Declarative { .. }, Some((folder, Origin::Registered))) => {
                next.folders.retain(|f| f != folder)
            }
            (PluginSource::Declarative { .. }, Some((folder, Origin::Directory)))
                if !next.disabled.contains(folder) =>
            {
                next.disabled.push(folder.clone());
            }
            _ => {}
        }
        if next.folders != self.persisted.folders
            || next.disabled != self.persisted.disabled
            || next.remotes.len() != self.persisted.remotes.len()
        {
            self.commit(next).await?;
        }
        self.registry.unregister(name, live, force)?;
        if live > 0 {
            tracing::warn!(plugin = %name, instances = live, "plugin unregistered with force; its instances stay (their stacks too) until it is registered again");
        } else {
            tracing::info!(plugin = %name, "plugin unregistered");
        }
        match binding.plugin.info().source.clone() {
            PluginSource::Remote { .. } => {}
            PluginSource::Declarative { .. } => {
                if let Some((folder, origin)) = folder {
                    match origin {
                        Origin::Registered => {
                            self.watcher.unwatch(&folder);
                            self.folders.remove(&folder);
                        }
                        Origin::Upload => {
                            self.folders.remove(&folder);
                            if let Err(e) = std::fs::remove_dir_all(&folder) {
                                tracing::warn!(error = %e, folder = %folder.display(), "uploaded plugin folder not removed");
                            }
                        }
                        Origin::Directory => {
                            if let Some(f) = self.folders.get_mut(&folder) {
                                f.plugin = None;
                                f.fingerprint = None;
                                f.removing = false;
                                f.disabled = true;
                            }
                        }
                    }
                    self.publish();
                }
            }
            PluginSource::Compiled => {}
        }
        Ok(())
    }
}

fn blank(folder: &Path, origin: Origin) -> FolderStatus {
    FolderStatus {
        path: folder.to_path_buf(),
        origin,
        plugin: None,
        fingerprint: None,
        error: None,
        removing: false,
        disabled: false,
        loaded_at: None,
    }
}

/// How a plugin's source reads in messages.
pub fn source_text(s: &PluginSource) -> String {
    match s {
        PluginSource::Compiled => "compiled in".into(),
        PluginSource::Declarative { path } => format!("folder {path}"),
        PluginSource::Remote { url } => format!("remote {url}"),
    }
}

/// A plugin whose folder is gone: it serves its existing instances and
/// refuses new ones.
struct Draining(Arc<dyn Orchestrator>);

#[async_trait]
impl Orchestrator for Draining {
    fn info(&self) -> &PluginInfo {
        self.0.info()
    }
    async fn validate(&self, op: &Operation, attributes: &Attributes) -> Result<(), PluginError> {
        if matches!(op, Operation::Design) {
            return Err(PluginError::Invalid(format!(
                "plugin {} is being removed (its folder is gone): it serves only its existing instances",
                self.0.info().name
            )));
        }
        self.0.validate(op, attributes).await
    }
    async fn run(&self, op: &Operation, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        self.0.run(op, ctx).await
    }
    async fn state(&self, instance: InstanceView<'_>) -> Result<StateReport, PluginError> {
        self.0.state(instance).await
    }
}

/// The registrations kept in the store; on the first start of this
/// version, those of `<state-dir>/plugins.json` (imported, then renamed
/// `plugins.json.imported`).
async fn persisted_registrations(
    store: &Store,
    state_dir: &Path,
) -> Result<Registrations, StartError> {
    if let Some(v) = store.document(&registrations_key()) {
        return serde_json::from_value(v.as_ref().clone()).map_err(StartError::Registrations);
    }
    let file = state_dir.join("plugins.json");
    let old: Registrations = match std::fs::read_to_string(&file) {
        Ok(t) => serde_json::from_str(&t).map_err(|source| StartError::OldRegistrations {
            path: file.clone(),
            source,
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Registrations::default()),
        Err(source) => return Err(StartError::File { path: file, source }),
    };
    let value = serde_json::to_value(&old).map_err(StartError::Encode)?;
    store
        .update_document(&registrations_key(), |_| {
            Ok::<_, std::convert::Infallible>(Some(value))
        })
        .unwrap_or_else(|never| match never {})
        .wait()
        .await?;
    std::fs::rename(&file, file.with_extension("json.imported")).map_err(|source| {
        StartError::File {
            path: file.clone(),
            source,
        }
    })?;
    tracing::info!("plugin registrations imported from plugins.json into the journal");
    Ok(old)
}

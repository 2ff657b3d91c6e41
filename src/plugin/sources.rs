//! Where run-time plugins come from, and the one task that changes them.
//!
//! Sources: the `--plugins` directories (each sub-folder holding a
//! `plugin.yaml` is a declarative plugin; a directory holding one itself
//! is one), uploads (`<state-dir>/plugins/<name>/`, written by the admin
//! API), folders registered through the admin API, and remote plugins.
//! Registrations made through the admin API are kept in
//! `<state-dir>/plugins.json`, so a restart brings them back (instances in
//! the journal need their plugin).
//!
//! Every change (a file event, an admin call, a pending removal) goes
//! through one task, in order, so no two reloads of a folder race and no
//! lock is held across an `.await`. Readers (listings) see a status
//! snapshot.
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
use super::remote::{RemotePlugin, RemoteSpec};
use super::watch::{Change, FolderWatcher, DEBOUNCE, MAX_DELAY};
use crate::registry::{Registry, RegistryError};
use crate::store::Store;

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

/// The registrations kept in `<state-dir>/plugins.json`.
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
    crate::store::now_ms()
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
    ) -> Result<PluginSources, String> {
        let http = super::remote::http_client()?;
        let mut dirs = Vec::new();
        for d in &config.dirs {
            let c =
                std::fs::canonicalize(d).map_err(|e| format!("--plugins {}: {e}", d.display()))?;
            if !c.is_dir() {
                return Err(format!("--plugins {}: not a directory", d.display()));
            }
            dirs.push(c);
        }
        let uploads = config.state_dir.join("plugins");
        std::fs::create_dir_all(&uploads).map_err(|e| format!("{}: {e}", uploads.display()))?;
        let uploads =
            std::fs::canonicalize(&uploads).map_err(|e| format!("{}: {e}", uploads.display()))?;
        let file = config.state_dir.join("plugins.json");
        let persisted: Registrations = match std::fs::read_to_string(&file) {
            Ok(t) => serde_json::from_str(&t).map_err(|e| format!("{}: {e}", file.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Registrations::default(),
            Err(e) => return Err(format!("{}: {e}", file.display())),
        };
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
            file,
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
        tokio::spawn(task.run(rx, change_rx, stop));
        Ok(PluginSources { tx, status, http })
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
    file: PathBuf,
    folders: BTreeMap<PathBuf, FolderStatus>,
    watcher: FolderWatcher,
    status: Arc<RwLock<Status>>,
}

fn hidden(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().starts_with('.')
}

impl Task {
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
                let r = self.register_remote(*spec);
                let _ = reply.send(r);
            }
            Command::Unregister(name, force, reply) => {
                let r = self.unregister(&name, force);
                let _ = reply.send(r);
            }
        }
    }

    fn publish(&self) {
        let mut s = self.status.write().unwrap_or_else(|p| p.into_inner());
        s.folders = self.folders.clone();
    }

    fn save(&self) -> Result<(), SourceError> {
        let text = serde_json::to_string_pretty(&self.persisted)
            .map_err(|e| SourceError::Internal(e.to_string()))?;
        let tmp = self.file.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            std::fs::write(&tmp, text.as_bytes())?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
            }
            std::fs::rename(&tmp, &self.file)
        };
        write().map_err(|e| SourceError::Internal(format!("{}: {e}", self.file.display())))
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
        let was_disabled = self.persisted.disabled.contains(&folder);
        let name = self.sync(&folder, true).await?;
        let mut dirty = false;
        if was_disabled {
            self.persisted.disabled.retain(|d| d != &folder);
            dirty = true;
        }
        if origin == Origin::Registered && !self.persisted.folders.contains(&folder) {
            if let Err(e) = self.watcher.watch(&folder) {
                tracing::warn!(error = %e, "hot reload is off for this folder");
            }
            self.persisted.folders.push(folder.clone());
            dirty = true;
        }
        if dirty {
            self.save()?;
        }
        Ok(name)
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
                self.persisted.disabled.retain(|d| d != &target);
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

    fn register_remote(&mut self, spec: RemoteSpec) -> Result<String, SourceError> {
        let name = spec.name.clone();
        let plugin = Arc::new(RemotePlugin::new(spec.clone(), self.http.clone()));
        self.registry.register(plugin)?;
        self.persisted.remotes.retain(|r| r.name != name);
        self.persisted.remotes.push(spec);
        if let Err(e) = self.save() {
            let _ = self.registry.unregister(&name, 0, true);
            return Err(e);
        }
        tracing::info!(plugin = %name, "remote plugin registered");
        Ok(name)
    }

    fn unregister(&mut self, name: &str, force: bool) -> Result<(), SourceError> {
        let binding = self
            .registry
            .by_name(name)
            .ok_or_else(|| RegistryError::NotFound(name.to_string()))?;
        let live = self.live(name);
        self.registry.unregister(name, live, force)?;
        if live > 0 {
            tracing::warn!(plugin = %name, instances = live, "plugin unregistered with force; its instances stay (their stacks too) until it is registered again");
        } else {
            tracing::info!(plugin = %name, "plugin unregistered");
        }
        match binding.plugin.info().source.clone() {
            PluginSource::Remote { .. } => {
                self.persisted.remotes.retain(|r| r.name != name);
                self.save()?;
            }
            PluginSource::Declarative { .. } => {
                let folder = self
                    .folders
                    .iter()
                    .find(|(_, f)| f.plugin.as_deref() == Some(name))
                    .map(|(p, f)| (p.clone(), f.origin));
                if let Some((folder, origin)) = folder {
                    match origin {
                        Origin::Registered => {
                            self.watcher.unwatch(&folder);
                            self.persisted.folders.retain(|f| f != &folder);
                            self.folders.remove(&folder);
                        }
                        Origin::Upload => {
                            self.folders.remove(&folder);
                            if let Err(e) = std::fs::remove_dir_all(&folder) {
                                tracing::warn!(error = %e, folder = %folder.display(), "uploaded plugin folder not removed");
                            }
                        }
                        Origin::Directory => {
                            if !self.persisted.disabled.contains(&folder) {
                                self.persisted.disabled.push(folder.clone());
                            }
                            if let Some(f) = self.folders.get_mut(&folder) {
                                f.plugin = None;
                                f.fingerprint = None;
                                f.removing = false;
                                f.disabled = true;
                            }
                        }
                    }
                    self.save()?;
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

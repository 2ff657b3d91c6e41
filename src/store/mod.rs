//! Service-orchestrator instances in memory (dashmap), with every change
//! appended to a journal so a restart finds them again.
//!
//! Each instance is an immutable [`Instance`] snapshot behind an `Arc`:
//! readers clone the `Arc` (a `GET` costs no copy), writers replace it under
//! the map's shard lock and queue the new snapshot to the journal in the
//! same critical section, so journal order equals map order per instance.

mod journal;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use occi_so_sdk::{Attributes, Phase, PluginState, StackRecord};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

pub use journal::{Durable, Journal, JournalError, JournalOptions};

/// Where an instance lives: its tenant and its path. Tenants never share
/// keys, so one tenant can never reach another's instances.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InstanceKey {
    /// Tenant (project) name from `X-Tenant-Name`.
    pub tenant: String,
    /// Path, e.g. `/orchestrator/default` or `/ims/3f2c…`.
    pub location: String,
}

impl InstanceKey {
    /// Key for `location` in `tenant`.
    pub fn new(tenant: impl Into<String>, location: impl Into<String>) -> Self {
        InstanceKey {
            tenant: tenant.into(),
            location: location.into(),
        }
    }
}

/// A lifecycle operation that is running now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Running {
    /// Operation name (`deploy`, `update`, `add_nodes`, ...).
    pub operation: String,
    /// When it started (Unix milliseconds).
    pub since: u64,
}

/// The last operation that failed, kept until one succeeds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Operation name.
    pub operation: String,
    /// What went wrong (never contains secrets).
    pub message: String,
    /// When (Unix milliseconds).
    pub at: u64,
}

/// An OCCI link from this instance to another resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkRecord {
    /// Link id (UUID).
    pub id: String,
    /// Link path, e.g. `/link/<id>`.
    pub location: String,
    /// Link kind id (`http://schemas.ogf.org/occi/core#link` by default).
    pub kind: String,
    /// Link mixins.
    #[serde(default)]
    pub mixins: Vec<String>,
    /// Target path or URL.
    pub target: String,
    /// Kind id of the target, when known.
    #[serde(default)]
    pub target_kind: Option<String>,
    /// Link attributes.
    #[serde(default)]
    pub attributes: Attributes,
}

/// One service-orchestrator instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// Tenant and path.
    pub key: InstanceKey,
    /// Last path segment (`default`, or a UUID for collection creates).
    pub id: String,
    /// A UUID unique to this instance, also used in stack names.
    pub uid: String,
    /// Kind id (`scheme` + `term`) the instance was created with.
    pub kind: String,
    /// Registry name of the plugin that owns it.
    pub plugin: String,
    /// Caller-set attributes with defaults applied (secrets included; the
    /// renderer drops secret ones).
    pub attributes: Attributes,
    /// Mixin ids applied to the instance.
    #[serde(default)]
    pub mixins: Vec<String>,
    /// Links from this instance.
    #[serde(default)]
    pub links: Vec<LinkRecord>,
    /// Lifecycle phase reached.
    pub phase: Phase,
    /// The operation in flight, if any.
    #[serde(default)]
    pub running: Option<Running>,
    /// The last failure, until an operation succeeds.
    #[serde(default)]
    pub last_error: Option<Failure>,
    /// The instance's stacks with their last known status.
    #[serde(default)]
    pub stacks: Vec<StackRecord>,
    /// The plugin's private state.
    #[serde(default)]
    pub plugin_state: PluginState,
    /// Creation time (Unix milliseconds).
    pub created: u64,
    /// Last change (Unix milliseconds).
    pub updated: u64,
    /// Bumped on every change; lets watchers and tests see progress.
    pub generation: u64,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

struct Slot {
    current: Arc<Instance>,
    watchers: Option<watch::Sender<Arc<Instance>>>,
}

/// Why a store change was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// No instance at that key.
    #[error("no instance at {0}")]
    NotFound(String),
    /// An instance already exists at that key.
    #[error("an instance already exists at {0}")]
    Exists(String),
}

/// All instances of all tenants.
pub struct Store {
    slots: DashMap<InstanceKey, Slot>,
    journal: Option<Journal>,
    /// Writers hold it shared; compaction holds it exclusively while it
    /// captures the state and queues the snapshot, so no change can slip
    /// between the capture and the log truncation.
    gate: RwLock<()>,
    changes: AtomicUsize,
    compact_after: usize,
}

impl Store {
    /// A store that keeps nothing on disk.
    pub fn in_memory() -> Self {
        Store {
            slots: DashMap::new(),
            journal: None,
            gate: RwLock::new(()),
            changes: AtomicUsize::new(0),
            compact_after: usize::MAX,
        }
    }

    /// A store backed by the journal in `dir`: replays it, then compacts
    /// it into a fresh snapshot. Returns the store and how many instances
    /// were recovered.
    pub fn open(dir: &Path, options: JournalOptions) -> Result<(Self, usize), JournalError> {
        let compact_after = options.compact_after.max(1);
        let (journal, instances) = Journal::open(dir, options)?;
        let slots = DashMap::new();
        for inst in instances {
            slots.insert(
                inst.key.clone(),
                Slot {
                    current: Arc::new(inst),
                    watchers: None,
                },
            );
        }
        let store = Store {
            slots,
            journal: Some(journal),
            gate: RwLock::new(()),
            changes: AtomicUsize::new(0),
            compact_after,
        };
        let n = store.slots.len();
        store.compact();
        Ok((store, n))
    }

    /// Rewrite the journal as one snapshot of the current state.
    pub fn compact(&self) {
        if let Some(j) = &self.journal {
            let _exclusive = self.gate.write().unwrap_or_else(|p| p.into_inner());
            j.compact(self.all());
        }
    }

    fn shared(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Count a logged change; compact when enough have accumulated.
    fn changed(&self) {
        let n = self.changes.fetch_add(1, Ordering::Relaxed) + 1;
        if n % self.compact_after == 0 {
            self.compact();
        }
    }

    /// The instance at `key`.
    pub fn get(&self, key: &InstanceKey) -> Option<Arc<Instance>> {
        self.slots.get(key).map(|s| s.current.clone())
    }

    /// Every instance (any tenant), in no particular order.
    pub fn all(&self) -> Vec<Arc<Instance>> {
        self.slots.iter().map(|s| s.current.clone()).collect()
    }

    /// The instances of `tenant` whose kind is `kind` (any kind if `None`),
    /// sorted by location.
    pub fn list(&self, tenant: &str, kind: Option<&str>) -> Vec<Arc<Instance>> {
        let mut v: Vec<Arc<Instance>> = self
            .slots
            .iter()
            .filter(|s| s.key().tenant == tenant && kind.is_none_or(|k| s.current.kind == k))
            .map(|s| s.current.clone())
            .collect();
        v.sort_by(|a, b| a.key.location.cmp(&b.key.location));
        v
    }

    /// How many instances (of any tenant) the plugin `name` owns.
    pub fn count_for_plugin(&self, name: &str) -> usize {
        self.slots
            .iter()
            .filter(|s| s.current.plugin == name)
            .count()
    }

    /// Number of instances.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when there are no instances.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Insert a new instance; fails if the key is taken.
    pub fn insert(&self, inst: Instance) -> Result<(Arc<Instance>, Durable), StoreError> {
        use dashmap::mapref::entry::Entry;
        let result = {
            let _shared = self.shared();
            match self.slots.entry(inst.key.clone()) {
                Entry::Occupied(_) => Err(StoreError::Exists(inst.key.location.clone())),
                Entry::Vacant(v) => {
                    let arc = Arc::new(inst);
                    let durable = self.log_put(&arc);
                    v.insert(Slot {
                        current: arc.clone(),
                        watchers: None,
                    });
                    Ok((arc, durable))
                }
            }
        };
        if result.is_ok() {
            self.changed();
        }
        result
    }

    /// Change the instance at `key` with `f`, atomically with respect to
    /// other writers. `f` may refuse the change by returning `Err`, in
    /// which case nothing changes. Returns the new snapshot.
    pub fn update<E>(
        &self,
        key: &InstanceKey,
        f: impl FnOnce(&mut Instance) -> Result<(), E>,
    ) -> Result<(Arc<Instance>, Durable), UpdateError<E>> {
        let result = self.update_locked(key, f);
        if result.is_ok() {
            self.changed();
        }
        result
    }

    fn update_locked<E>(
        &self,
        key: &InstanceKey,
        f: impl FnOnce(&mut Instance) -> Result<(), E>,
    ) -> Result<(Arc<Instance>, Durable), UpdateError<E>> {
        let _shared = self.shared();
        let mut slot = self
            .slots
            .get_mut(key)
            .ok_or_else(|| UpdateError::Store(StoreError::NotFound(key.location.clone())))?;
        let mut next = (*slot.current).clone();
        f(&mut next).map_err(UpdateError::Refused)?;
        next.generation = slot.current.generation + 1;
        next.updated = now_ms();
        let arc = Arc::new(next);
        let durable = self.log_put(&arc);
        slot.current = arc.clone();
        if let Some(tx) = &slot.watchers {
            // A send error only means nobody listens any more.
            let _ = tx.send(arc.clone());
        }
        Ok((arc, durable))
    }

    /// Remove the instance at `key`.
    pub fn remove(&self, key: &InstanceKey) -> Result<(Arc<Instance>, Durable), StoreError> {
        use dashmap::mapref::entry::Entry;
        let result = {
            let _shared = self.shared();
            match self.slots.entry(key.clone()) {
                Entry::Vacant(_) => Err(StoreError::NotFound(key.location.clone())),
                Entry::Occupied(o) => {
                    // Queued under the entry lock, so a later re-insert at
                    // the same key is always logged after this removal.
                    let durable = match &self.journal {
                        Some(j) => j.remove(key),
                        None => Durable::done(),
                    };
                    // Dropping the sender ends every watch stream of the instance.
                    let slot = o.remove();
                    Ok((slot.current, durable))
                }
            }
        };
        if result.is_ok() {
            self.changed();
        }
        result
    }

    /// Subscribe to changes of the instance at `key` (for `?watch` streams).
    /// The channel closes when the instance is removed.
    pub fn watch(&self, key: &InstanceKey) -> Option<watch::Receiver<Arc<Instance>>> {
        let mut slot = self.slots.get_mut(key)?;
        let current = slot.current.clone();
        let tx = slot
            .watchers
            .get_or_insert_with(|| watch::channel(current).0);
        Some(tx.subscribe())
    }

    fn log_put(&self, inst: &Arc<Instance>) -> Durable {
        match &self.journal {
            Some(j) => j.put(inst.clone()),
            None => Durable::done(),
        }
    }

    /// Stop the journal writer after it has written everything queued.
    pub fn close(&self) {
        if let Some(j) = &self.journal {
            j.close();
        }
    }
}

/// Why [`Store::update`] changed nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum UpdateError<E> {
    /// The store refused (no such instance).
    Store(StoreError),
    /// The update function refused.
    Refused(E),
}

/// Summaries for `/metrics`: instances by plugin and phase.
pub fn count_by_phase(store: &Store) -> BTreeMap<(String, &'static str), u64> {
    let mut m = BTreeMap::new();
    for s in store.slots.iter() {
        let phase = if s.current.running.is_some() {
            "busy"
        } else if s.current.last_error.is_some() {
            "failed"
        } else {
            s.current.phase.as_str()
        };
        *m.entry((s.current.plugin.clone(), phase)).or_insert(0) += 1;
    }
    m
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn instance(tenant: &str, location: &str) -> Instance {
        Instance {
            key: InstanceKey::new(tenant, location),
            id: location.rsplit('/').next().unwrap_or_default().to_string(),
            uid: uuid::Uuid::new_v4().to_string(),
            kind: "http://schemas.mobile-cloud-networking.eu/occi/service#orchestrator".into(),
            plugin: "sample".into(),
            attributes: Attributes::from([("a".to_string(), serde_json::json!("1"))]),
            mixins: vec![],
            links: vec![],
            phase: Phase::Initialised,
            running: None,
            last_error: None,
            stacks: vec![],
            plugin_state: PluginState::default(),
            created: now_ms(),
            updated: now_ms(),
            generation: 0,
        }
    }

    #[test]
    fn tenants_are_apart() {
        let s = Store::in_memory();
        let _ = s.insert(instance("t1", "/orchestrator/default")).unwrap();
        let _ = s.insert(instance("t2", "/orchestrator/default")).unwrap();
        assert_eq!(s.list("t1", None).len(), 1);
        assert!(s
            .get(&InstanceKey::new("t3", "/orchestrator/default"))
            .is_none());
        assert_eq!(
            s.insert(instance("t1", "/orchestrator/default"))
                .unwrap_err(),
            StoreError::Exists("/orchestrator/default".into())
        );
    }

    #[test]
    fn refused_update_changes_nothing() {
        let s = Store::in_memory();
        let key = InstanceKey::new("t1", "/x/1");
        let _ = s.insert(instance("t1", "/x/1")).unwrap();
        let before = s.get(&key).unwrap();
        let r = s.update(&key, |i| {
            i.phase = Phase::Deployed;
            Err::<(), _>("no")
        });
        assert_eq!(r.unwrap_err(), UpdateError::Refused("no"));
        assert_eq!(s.get(&key).unwrap(), before);
        let (after, _) = s
            .update(&key, |i| {
                i.phase = Phase::Deployed;
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!(after.generation, before.generation + 1);
    }

    #[tokio::test]
    async fn watchers_see_changes_and_end_on_remove() {
        let s = Store::in_memory();
        let key = InstanceKey::new("t1", "/x/1");
        let _ = s.insert(instance("t1", "/x/1")).unwrap();
        let mut rx = s.watch(&key).unwrap();
        let _ = s
            .update(&key, |i| {
                i.phase = Phase::Deployed;
                Ok::<(), ()>(())
            })
            .unwrap();
        rx.changed().await.unwrap();
        assert_eq!(rx.borrow().phase, Phase::Deployed);
        let _ = s.remove(&key).unwrap();
        let closed = rx.changed().await.unwrap_err();
        assert_eq!(closed.to_string(), "channel closed", "the watch ends");
    }
}

#[cfg(test)]
mod journal_tests {
    use super::tests::instance;
    use super::*;

    fn opts(compact_after: usize) -> JournalOptions {
        JournalOptions {
            fsync: false,
            compact_after,
        }
    }

    #[tokio::test]
    async fn replay_restores_the_last_state_of_every_instance() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (s, n) = Store::open(dir.path(), opts(1000)).unwrap();
            assert_eq!(n, 0);
            for i in 0..5 {
                let (_, d) = s.insert(instance("t1", &format!("/x/{i}"))).unwrap();
                d.wait().await.unwrap();
            }
            let (_, d) = s
                .update(&InstanceKey::new("t1", "/x/1"), |i| {
                    i.phase = Phase::Provisioned;
                    Ok::<(), ()>(())
                })
                .unwrap();
            d.wait().await.unwrap();
            let (_, d) = s.remove(&InstanceKey::new("t1", "/x/2")).unwrap();
            d.wait().await.unwrap();
            s.close();
        }
        let (s, n) = Store::open(dir.path(), opts(1000)).unwrap();
        assert_eq!(n, 4);
        assert_eq!(
            s.get(&InstanceKey::new("t1", "/x/1")).unwrap().phase,
            Phase::Provisioned
        );
        assert!(s.get(&InstanceKey::new("t1", "/x/2")).is_none());
    }

    #[tokio::test]
    async fn compaction_keeps_everything_and_shrinks_the_log() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (s, _) = Store::open(dir.path(), opts(10)).unwrap();
            s.insert(instance("t1", "/x/1"))
                .unwrap()
                .1
                .wait()
                .await
                .unwrap();
            for _ in 0..95 {
                let (_, d) = s
                    .update(&InstanceKey::new("t1", "/x/1"), |i| {
                        i.attributes
                            .insert("n".into(), serde_json::json!(i.generation));
                        Ok::<(), ()>(())
                    })
                    .unwrap();
                d.wait().await.unwrap();
            }
            s.close();
        }
        let log = std::fs::read_to_string(dir.path().join("journal.jsonl")).unwrap();
        assert!(
            log.lines().count() < 10,
            "log was not compacted: {} lines",
            log.lines().count()
        );
        let (s, _) = Store::open(dir.path(), opts(10)).unwrap();
        let i = s.get(&InstanceKey::new("t1", "/x/1")).unwrap();
        assert_eq!(i.generation, 95);
        assert_eq!(i.attributes["n"], serde_json::json!(94));
    }

    #[tokio::test]
    async fn a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (s, _) = Store::open(dir.path(), opts(1000)).unwrap();
            s.insert(instance("t1", "/x/1"))
                .unwrap()
                .1
                .wait()
                .await
                .unwrap();
            s.close();
        }
        // Simulate a crash in the middle of writing the next line.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("journal.jsonl"))
            .unwrap();
        std::io::Write::write_all(&mut f, b"{\"put\":{\"key\":{\"tenant\":\"t1\",\"loc").unwrap();
        drop(f);
        let (s, n) = Store::open(dir.path(), opts(1000)).unwrap();
        assert_eq!(n, 1);
        assert!(s.get(&InstanceKey::new("t1", "/x/1")).is_some());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn journal_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(dir.path(), opts(1000)).unwrap();
        s.insert(instance("t1", "/x/1"))
            .unwrap()
            .1
            .wait()
            .await
            .unwrap();
        s.close();
        for f in ["journal.jsonl", "snapshot.jsonl"] {
            let mode = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{f} is readable by others: {mode:o}");
        }
    }
}

//! The framework's state: service-orchestrator instances and named
//! documents (user mixins, plugin registrations), in memory (dashmap) and
//! behind the [`Persistence`] seam (the local [`Journal`] by default), so
//! a restart finds them again.
//!
//! Each value is immutable behind an `Arc`: readers clone the `Arc` (a
//! `GET` costs no copy); writers replace it under the map's shard lock and
//! queue the change to the persistence in the same critical section, so
//! persistence order equals change order. **Memory changes only after the
//! write succeeded**: a change becomes visible to readers and watchers when
//! the persistence says it is durable (`table`), and a failed write is
//! taken back; writers see their own pending changes, so checks stay atomic.

mod journal;
mod persist;
mod table;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use occi_so_sdk::{Attributes, Phase, PluginState, StackRecord};

use crate::events::EventLog;
use crate::operation::{OpKey, OpState, OperationRecord, Queued};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

pub use journal::{Journal, JournalOptions, Replayed};
pub use persist::{Change, DocKey, Done, Durable, JournalError, Persistence, Snapshot};
use table::{Table, Taken};

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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Running {
    /// Operation name (`deploy`, `update`, `add_nodes`, ...).
    pub operation: String,
    /// When it started (Unix milliseconds).
    pub since: u64,
    /// Its operation record (empty in journals of earlier versions).
    #[serde(default)]
    pub id: String,
    /// What it does (to resume it even if its record was not written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<occi_so_sdk::Operation>,
    /// For an update: the values its changed attributes had before it
    /// (`None`: unset), to put back when it is cancelled.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub before: BTreeMap<String, Option<serde_json::Value>>,
}

impl Instance {
    /// Makes `op` (of record `id`) the running operation at `now`: an
    /// update's attributes are merged in (and remembered to be put back
    /// if it is cancelled), and the events say so.
    pub fn start_running(
        &mut self,
        id: &str,
        op: &occi_so_sdk::Operation,
        now: u64,
        shown: Option<BTreeMap<String, serde_json::Value>>,
        retention: usize,
    ) {
        let mut before = BTreeMap::new();
        if let occi_so_sdk::Operation::Update { changed } = op {
            for (k, v) in changed {
                before.insert(k.clone(), self.attributes.get(k).cloned());
                self.attributes.insert(k.clone(), v.clone());
            }
        }
        self.running = Some(Running {
            operation: op.name().to_string(),
            since: now,
            id: id.to_string(),
            op: Some(op.clone()),
            before,
        });
        self.events.push(
            now,
            crate::events::EventKind::Operation {
                operation_id: id.to_string(),
                operation: op.name().to_string(),
                state: OpState::Running.as_str().into(),
                error: None,
                position: None,
            },
            retention,
        );
        if let Some(changed) = shown {
            self.events.push(
                now,
                crate::events::EventKind::Attributes { changed },
                retention,
            );
        }
    }
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

/// How an instance's last operation ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastOperation {
    /// The operation record's id.
    pub id: String,
    /// Its final state.
    pub state: OpState,
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
    /// Operations accepted behind the running one, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queue: Vec<Queued>,
    /// The last operation that ended: its record's id and how it ended
    /// (the record itself is written after the instance, so at a restart
    /// the instance tells how an unfinished record ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_operation: Option<LastOperation>,
    /// The instance's latest events.
    #[serde(default)]
    pub events: EventLog,
    /// The last event the instance's callback (`occi.so.callback`)
    /// acknowledged.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub callback_acked: u64,
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

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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

/// All instances and documents of all tenants.
pub struct Store {
    instances: Arc<Table<InstanceKey, Instance>>,
    documents: Arc<Table<DocKey, serde_json::Value>>,
    operations: Arc<Table<OpKey, OperationRecord>>,
    persistence: Option<Arc<dyn Persistence>>,
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
            instances: Arc::new(Table::new()),
            documents: Arc::new(Table::new()),
            operations: Arc::new(Table::new()),
            persistence: None,
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
        let (journal, replayed) = Journal::open(dir, options)?;
        let store = Store::with_persistence(Arc::new(journal), replayed, compact_after);
        let n = store.len();
        store.compact();
        Ok((store, n))
    }

    /// A store over `persistence`, holding what it replayed.
    pub fn with_persistence(
        persistence: Arc<dyn Persistence>,
        replayed: Replayed,
        compact_after: usize,
    ) -> Self {
        Store {
            instances: Arc::new(Table::with(
                replayed.instances.into_iter().map(|i| (i.key.clone(), i)),
            )),
            documents: Arc::new(Table::with(replayed.documents)),
            operations: Arc::new(Table::with(
                replayed.operations.into_iter().map(|o| (o.key(), o)),
            )),
            persistence: Some(persistence),
            gate: RwLock::new(()),
            changes: AtomicUsize::new(0),
            compact_after: compact_after.max(1),
        }
    }

    /// Rewrite the persistence as one snapshot of the current state.
    pub fn compact(&self) {
        if let Some(p) = &self.persistence {
            let _exclusive = self.gate.write().unwrap_or_else(|p| p.into_inner());
            p.compact(Snapshot {
                instances: self
                    .instances
                    .latest_all()
                    .into_iter()
                    .map(|(_, v)| v)
                    .collect(),
                documents: self.documents.latest_all(),
                operations: self
                    .operations
                    .latest_all()
                    .into_iter()
                    .map(|(_, v)| v)
                    .collect(),
            });
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

    /// Queue `change` (inside the table's critical section); `publish`
    /// makes it visible once durable, `revert` takes it back on failure.
    fn take<K, V>(
        &self,
        table: &Arc<Table<K, V>>,
        key: &K,
        seq: u64,
        value: Option<&Arc<V>>,
        change: Change,
        durable: &mut Option<Durable>,
    ) -> Taken
    where
        K: Eq + std::hash::Hash + Clone + Send + Sync + 'static,
        V: Send + Sync + 'static,
    {
        let Some(p) = &self.persistence else {
            *durable = Some(Durable::done());
            return Taken::Applied;
        };
        let weak: Weak<Table<K, V>> = Arc::downgrade(table);
        let key = key.clone();
        let value = value.cloned();
        let done: Done = Box::new(move |ok| {
            if let Some(t) = weak.upgrade() {
                if ok {
                    t.publish(&key, seq, value);
                } else {
                    t.revert(&key, seq);
                }
            }
        });
        *durable = Some(p.write(change, done));
        Taken::Queued
    }

    /// The instance at `key`.
    pub fn get(&self, key: &InstanceKey) -> Option<Arc<Instance>> {
        self.instances.get(key)
    }

    /// Every instance (any tenant), in no particular order.
    pub fn all(&self) -> Vec<Arc<Instance>> {
        self.instances.filter(|_, _| true)
    }

    /// The instances of `tenant` whose kind is `kind` (any kind if `None`),
    /// sorted by location.
    pub fn list(&self, tenant: &str, kind: Option<&str>) -> Vec<Arc<Instance>> {
        let mut v = self
            .instances
            .filter(|k, i| k.tenant == tenant && kind.is_none_or(|kind| i.kind == kind));
        v.sort_by(|a, b| a.key.location.cmp(&b.key.location));
        v
    }

    /// How many instances (of any tenant) the plugin `name` owns.
    pub fn count_for_plugin(&self, name: &str) -> usize {
        self.instances.filter(|_, i| i.plugin == name).len()
    }

    /// Number of instances.
    pub fn len(&self) -> usize {
        self.instances.len()
    }

    /// True when there are no instances.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Insert a new instance; fails if the key is taken. It becomes visible
    /// once durable: await the [`Durable`].
    pub fn insert(&self, inst: Instance) -> Result<(Arc<Instance>, Durable), StoreError> {
        let key = inst.key.clone();
        let mut durable = None;
        let result = {
            let _shared = self.shared();
            self.instances.write(
                &key,
                |current| match current {
                    Some(_) => Err(StoreError::Exists(key.location.clone())),
                    None => Ok(Some(inst)),
                },
                |seq, v| {
                    let change = instance_change(&key, v);
                    self.take(&self.instances, &key, seq, v, change, &mut durable)
                },
            )
        };
        let inst = result?.ok_or_else(|| StoreError::NotFound(key.location.clone()))?;
        self.changed();
        Ok((inst, durable.unwrap_or_else(Durable::done)))
    }

    /// Change the instance at `key` with `f`, atomically with respect to
    /// other writers (`f` sees every change made before, durable or not).
    /// `f` may refuse the change by returning `Err`, in which case nothing
    /// changes. Returns the new snapshot, visible once durable.
    pub fn update<E>(
        &self,
        key: &InstanceKey,
        f: impl FnOnce(&mut Instance) -> Result<(), E>,
    ) -> Result<(Arc<Instance>, Durable), UpdateError<E>> {
        let mut durable = None;
        let result = {
            let _shared = self.shared();
            self.instances.write(
                key,
                |current| {
                    let Some(current) = current else {
                        return Err(UpdateError::Store(StoreError::NotFound(
                            key.location.clone(),
                        )));
                    };
                    let mut next = current.clone();
                    f(&mut next).map_err(UpdateError::Refused)?;
                    next.generation = current.generation + 1;
                    next.updated = now_ms();
                    Ok(Some(next))
                },
                |seq, v| {
                    let change = instance_change(key, v);
                    self.take(&self.instances, key, seq, v, change, &mut durable)
                },
            )
        };
        let inst = result?
            .ok_or_else(|| UpdateError::Store(StoreError::NotFound(key.location.clone())))?;
        self.changed();
        Ok((inst, durable.unwrap_or_else(Durable::done)))
    }

    /// Remove the instance at `key` (it disappears once durable; its watch
    /// streams end then).
    pub fn remove(&self, key: &InstanceKey) -> Result<(Arc<Instance>, Durable), StoreError> {
        let mut durable = None;
        let mut removed = None;
        let result = {
            let _shared = self.shared();
            self.instances.write(
                key,
                |current| match current {
                    None => Err(StoreError::NotFound(key.location.clone())),
                    Some(i) => {
                        removed = Some(Arc::new(i.clone()));
                        Ok(None)
                    }
                },
                |seq, v| {
                    let change = instance_change(key, v);
                    self.take(&self.instances, key, seq, v, change, &mut durable)
                },
            )
        };
        result?;
        self.changed();
        let removed = removed.ok_or_else(|| StoreError::NotFound(key.location.clone()))?;
        Ok((removed, durable.unwrap_or_else(Durable::done)))
    }

    /// Subscribe to changes of the instance at `key` (for `?watch` streams):
    /// every version that became durable. The channel closes when the
    /// instance is removed.
    pub fn watch(&self, key: &InstanceKey) -> Option<watch::Receiver<Arc<Instance>>> {
        self.instances.watch(key)
    }

    /// The document `key`, as durable.
    pub fn document(&self, key: &DocKey) -> Option<Arc<serde_json::Value>> {
        self.documents.get(key)
    }

    /// Every document of `space`, by key.
    pub fn documents(&self, space: &str) -> Vec<(String, Arc<serde_json::Value>)> {
        let mut v: Vec<(String, Arc<serde_json::Value>)> = self
            .documents
            .visible()
            .into_iter()
            .filter(|(k, _)| k.space == space)
            .map(|(k, v)| (k.key, v))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Change the document `key` with `f`, atomically with respect to
    /// other writers of it (`f` sees the latest value, durable or not, and
    /// gives the new one, `None` to remove it, or refuses). Visible once
    /// durable: await the [`Durable`].
    pub fn update_document<E>(
        &self,
        key: &DocKey,
        f: impl FnOnce(Option<&serde_json::Value>) -> Result<Option<serde_json::Value>, E>,
    ) -> Result<Durable, E> {
        let mut durable = None;
        {
            let _shared = self.shared();
            self.documents.write(key, f, |seq, v| {
                let change = Change::Document(key.clone(), v.cloned());
                self.take(&self.documents, key, seq, v, change, &mut durable)
            })?;
        }
        self.changed();
        Ok(durable.unwrap_or_else(Durable::done))
    }

    /// The operation record `id` of `tenant`, as durable.
    pub fn operation(&self, tenant: &str, id: &str) -> Option<Arc<OperationRecord>> {
        self.operations.get(&OpKey {
            tenant: tenant.to_string(),
            id: id.to_string(),
        })
    }

    /// Operation records for which `keep` holds (any tenant).
    pub fn operations(
        &self,
        mut keep: impl FnMut(&OperationRecord) -> bool,
    ) -> Vec<Arc<OperationRecord>> {
        self.operations.filter(|_, o| keep(o))
    }

    /// Writes an operation record (new or changed; `f` gets the latest
    /// version), durable once the [`Durable`] resolves.
    pub fn put_operation<E>(
        &self,
        key: &OpKey,
        f: impl FnOnce(Option<&OperationRecord>) -> Result<Option<OperationRecord>, E>,
    ) -> Result<(Option<Arc<OperationRecord>>, Durable), E> {
        let mut durable = None;
        let written = {
            let _shared = self.shared();
            self.operations.write(key, f, |seq, v| {
                let change = match v {
                    Some(v) => Change::Operation(v.clone()),
                    None => Change::OperationRemoved(key.clone()),
                };
                self.take(&self.operations, key, seq, v, change, &mut durable)
            })?
        };
        self.changed();
        Ok((written, durable.unwrap_or_else(Durable::done)))
    }

    /// Stop the persistence after it has written everything queued.
    pub fn close(&self) {
        if let Some(p) = &self.persistence {
            p.close();
        }
    }

    /// Which persistence keeps the state (`memory` or its name).
    pub fn persistence_name(&self) -> &'static str {
        self.persistence.as_ref().map_or("memory", |p| p.name())
    }
}

/// The change that makes `key` hold `value` (none: removed).
fn instance_change(key: &InstanceKey, value: Option<&Arc<Instance>>) -> Change {
    match value {
        Some(v) => Change::Put(v.clone()),
        None => Change::Remove(key.clone()),
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

impl<E> From<StoreError> for UpdateError<E> {
    fn from(e: StoreError) -> Self {
        UpdateError::Store(e)
    }
}

/// Summaries for `/metrics`: instances by plugin and phase.
pub fn count_by_phase(store: &Store) -> BTreeMap<(String, &'static str), u64> {
    let mut m = BTreeMap::new();
    for i in store.all() {
        let phase = if i.running.is_some() {
            "busy"
        } else if i.last_error.is_some() {
            "failed"
        } else {
            i.phase.as_str()
        };
        *m.entry((i.plugin.clone(), phase)).or_insert(0) += 1;
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
            queue: vec![],
            last_operation: None,
            events: Default::default(),
            callback_acked: 0,
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
mod visibility_tests {
    //! Memory changes only after the write succeeded: a persistence that
    //! holds its writes until told shows when a change becomes visible.

    use std::sync::Mutex;

    use super::tests::instance;
    use super::*;

    type Ack = tokio::sync::oneshot::Sender<Result<(), JournalError>>;

    /// Holds every write until `release`.
    #[derive(Default)]
    struct Held {
        queue: Mutex<Vec<(Change, Done, Ack)>>,
    }

    impl Held {
        fn release(&self, ok: bool) -> usize {
            let batch: Vec<_> = self.queue.lock().unwrap().drain(..).collect();
            let n = batch.len();
            for (_, done, ack) in batch {
                done(ok);
                let _ = ack.send(if ok {
                    Ok(())
                } else {
                    Err(JournalError::Stopped)
                });
            }
            n
        }
    }

    impl Persistence for Held {
        fn name(&self) -> &'static str {
            "held"
        }
        fn write(&self, change: Change, done: Done) -> Durable {
            let (ack, durable) = Durable::pending();
            self.queue.lock().unwrap().push((change, done, ack));
            durable
        }
        fn compact(&self, _: Snapshot) {}
        fn close(&self) {}
    }

    fn store() -> (Arc<Held>, Store) {
        let held = Arc::new(Held::default());
        let store = Store::with_persistence(held.clone(), Replayed::default(), 1000);
        (held, store)
    }

    #[tokio::test]
    async fn nothing_is_visible_before_it_is_durable() {
        let (held, s) = store();
        let key = InstanceKey::new("t1", "/x/1");
        let (_, d) = s.insert(instance("t1", "/x/1")).unwrap();
        assert!(s.get(&key).is_none(), "visible before durable");
        assert!(s.list("t1", None).is_empty());
        // Writers build on the pending change: a second insert is refused.
        assert_eq!(
            s.insert(instance("t1", "/x/1")).unwrap_err(),
            StoreError::Exists("/x/1".into())
        );
        let (_, d2) = s
            .update(&key, |i| {
                i.phase = Phase::Deployed;
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!(held.release(true), 2);
        d.wait().await.unwrap();
        d2.wait().await.unwrap();
        let now = s.get(&key).unwrap();
        assert_eq!(now.phase, Phase::Deployed);
        // A watcher sees only durable versions.
        let mut rx = s.watch(&key).unwrap();
        let (_, d3) = s
            .update(&key, |i| {
                i.phase = Phase::Provisioned;
                Ok::<(), ()>(())
            })
            .unwrap();
        assert!(!rx.has_changed().unwrap());
        held.release(true);
        d3.wait().await.unwrap();
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().phase, Phase::Provisioned);
    }

    #[tokio::test]
    async fn a_failed_write_is_taken_back() {
        let (held, s) = store();
        let key = InstanceKey::new("t1", "/x/1");
        let (_, d) = s.insert(instance("t1", "/x/1")).unwrap();
        held.release(true);
        d.wait().await.unwrap();
        let (_, d) = s
            .update(&key, |i| {
                i.phase = Phase::Deployed;
                Ok::<(), ()>(())
            })
            .unwrap();
        held.release(false);
        assert_eq!(d.wait().await.unwrap_err(), JournalError::Stopped);
        assert_eq!(s.get(&key).unwrap().phase, Phase::Initialised);
        // The next writer starts from what is durable, not from the failure.
        let (next, _) = s
            .update(&key, |i| {
                assert_eq!(i.phase, Phase::Initialised);
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!(next.generation, 1);
        // A new instance whose write failed is gone again.
        let (_, d) = s.insert(instance("t1", "/x/2")).unwrap();
        held.release(false);
        assert!(d.wait().await.is_err());
        let (_, d) = s.insert(instance("t1", "/x/2")).unwrap();
        held.release(true);
        d.wait().await.unwrap();
        assert!(s.get(&InstanceKey::new("t1", "/x/2")).is_some());
    }

    #[tokio::test]
    async fn documents_follow_the_same_rule() {
        let (held, s) = store();
        let key = DocKey::new("mixins", "t1");
        let d = s
            .update_document(&key, |_| Ok::<_, ()>(Some(serde_json::json!([1]))))
            .unwrap();
        assert!(s.document(&key).is_none());
        held.release(true);
        d.wait().await.unwrap();
        assert_eq!(*s.document(&key).unwrap(), serde_json::json!([1]));
        assert_eq!(s.documents("mixins").len(), 1);
        let d = s.update_document(&key, |_| Ok::<_, ()>(None)).unwrap();
        held.release(true);
        d.wait().await.unwrap();
        assert!(s.document(&key).is_none());
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
            sealer: None,
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
    async fn documents_and_instances_survive_a_reopen_and_a_compaction() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (s, _) = Store::open(dir.path(), opts(3)).unwrap();
            for i in 0..4 {
                s.insert(instance("t1", &format!("/x/{i}")))
                    .unwrap()
                    .1
                    .wait()
                    .await
                    .unwrap();
            }
            s.update_document(&DocKey::new("plugins", "registrations"), |_| {
                Ok::<_, ()>(Some(serde_json::json!({"remotes": []})))
            })
            .unwrap()
            .wait()
            .await
            .unwrap();
            s.close();
        }
        let (s, n) = Store::open(dir.path(), opts(3)).unwrap();
        assert_eq!(n, 4);
        assert_eq!(
            *s.document(&DocKey::new("plugins", "registrations"))
                .unwrap(),
            serde_json::json!({"remotes": []})
        );
        s.close();
        // The snapshot written at open holds both kinds of lines.
        let snap = std::fs::read_to_string(dir.path().join("snapshot.jsonl")).unwrap();
        assert!(snap.lines().any(|l| l.starts_with("{\"doc\"")), "{snap}");
        assert_eq!(
            snap.lines().filter(|l| l.starts_with("{\"put\"")).count(),
            4
        );
    }

    #[tokio::test]
    async fn a_snapshot_of_an_earlier_version_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let old = serde_json::to_string(&instance("t1", "/x/old")).unwrap();
        std::fs::write(dir.path().join("snapshot.jsonl"), format!("{old}\n")).unwrap();
        let (s, n) = Store::open(dir.path(), opts(1000)).unwrap();
        assert_eq!(n, 1);
        assert!(s.get(&InstanceKey::new("t1", "/x/old")).is_some());
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

    #[tokio::test]
    async fn a_sealed_journal_replays_with_its_key_and_a_torn_sealed_line_is_skipped() {
        let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
        let sealed = |compact_after| JournalOptions {
            sealer: Some(occi_so_sdk::seal::Sealer::from_key_text(key, "test").unwrap()),
            ..opts(compact_after)
        };
        let dir = tempfile::tempdir().unwrap();
        {
            // compact after 2 changes: both the snapshot and the log are sealed
            let (s, _) = Store::open(dir.path(), sealed(2)).unwrap();
            for loc in ["/x/1", "/x/2", "/x/3"] {
                s.insert(instance("t1", loc))
                    .unwrap()
                    .1
                    .wait()
                    .await
                    .unwrap();
            }
            s.close();
        }
        for f in ["journal.jsonl", "snapshot.jsonl"] {
            let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
            for line in text.lines() {
                assert!(line.starts_with("occi-so-sealed:v1:"), "{f}: {line}");
            }
            assert!(!text.contains("/x/"), "{f} holds a location in clear");
        }
        // A torn sealed last line is skipped; the rest replays.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("journal.jsonl"))
            .unwrap();
        std::io::Write::write_all(&mut f, b"occi-so-sealed:v1:AAAA").unwrap();
        drop(f);
        let (s, n) = Store::open(dir.path(), sealed(1000)).unwrap();
        assert_eq!(n, 3);
        assert!(s.get(&InstanceKey::new("t1", "/x/3")).is_some());
        s.close();
        // Without the key: an error naming the file and line, not an empty store.
        let e = Store::open(dir.path(), opts(1000))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("snapshot.jsonl") && e.contains("line 1: the record is sealed"),
            "{e}"
        );
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

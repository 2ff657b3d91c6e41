//! The per-instance lifecycle: which operation applies now, and every
//! accepted request as a durable [operation record](crate::operation).
//!
//! * Which operations apply: `deploy` in `initialised`, `provision` in
//!   `deployed`, custom actions in the phases they declare, `notify` once
//!   deployed, `dispose` always.
//! * **A queue instead of refusals.** One operation runs per instance; a
//!   request on a busy instance is queued behind it (bounded, then 409
//!   naming the running one), and operations run in order. A queued
//!   operation that no longer applies when its turn comes fails with the
//!   reason. Accepting is one atomic instance update (the running slot or
//!   the queue), journaled before the answer.
//! * Operations run as tasks of their own, so a client that hangs up never
//!   cancels a half-done deploy; a plugin that panics fails the operation.
//!   A running operation can be cancelled (its stacks' operations are
//!   cancelled in the backend and the instance stays as it was), a queued
//!   one removed; a failed or cancelled one retried (really run again).
//! * **Reconcile on start instead of "interrupted".** An operation that
//!   was running when occi-so stopped runs again from where the journal
//!   left it: the plugin's stack calls are idempotent per role, so a stack
//!   that completed meanwhile completes the operation, one still in
//!   progress is waited for again, one that failed fails it with the
//!   backend's reason. A backend that is unreachable is retried with
//!   backoff until it answers (the same when Heat goes away mid-operation).
//! * **Events**: every change a client can see is an event of the
//!   instance's durable history, journaled with the change.

mod op;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use occi_so_sdk::{
    Attributes, BackendError, Credentials, InstanceView, Operation, Phase, PluginError,
    PluginState, StackBackend, StackPlan, StateReport, WaitOptions, MCN_SERVICE_SCHEME,
};
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::events::{EventKind, DEFAULT_RETENTION};
use crate::operation::{ErrorChain, OpKey, OpState, OperationRecord, Queued};
use crate::registry::{Binding, Registry};
use crate::schema::AttributeError;
use crate::store::{
    now_ms, Instance, InstanceKey, JournalError, LastOperation, Running, Store, UpdateError,
};

pub use op::LifecycleObserver;

/// Why a lifecycle request was refused or failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LifecycleError {
    /// No instance at that location (for this tenant).
    #[error("no instance at {0}")]
    NotFound(String),
    /// An instance already exists there.
    #[error("an instance already exists at {0}")]
    Exists(String),
    /// No plugin serves the kind.
    #[error("no orchestrator plugin serves kind {0}")]
    UnknownKind(String),
    /// A `PUT` names another kind than the existing instance has.
    #[error("{location} is an instance of kind {existing}; it cannot become {requested}")]
    KindMismatch {
        /// The instance.
        location: String,
        /// Its kind.
        existing: String,
        /// The kind requested.
        requested: String,
    },
    /// The plugin that owns the instance is not registered any more.
    #[error("plugin '{0}', which owns this instance, is not registered")]
    PluginGone(String),
    /// An attribute is wrong.
    #[error(transparent)]
    Attribute(#[from] AttributeError),
    /// The action does not apply in the current phase.
    #[error("action '{action}' does not apply to an instance that is {phase}; {}", applicable_text(.applicable))]
    NotApplicable {
        /// The action requested.
        action: String,
        /// The phase it would run in.
        phase: &'static str,
        /// The actions that apply in that phase.
        applicable: Vec<String>,
    },
    /// The action is not one of the kind's.
    #[error("no such action '{action}' on {kind} (actions: {}){}", .known.join(", "), did_you_mean(.suggestion))]
    NoSuchAction {
        /// The action requested.
        action: String,
        /// The kind.
        kind: String,
        /// The kind's actions.
        known: Vec<String>,
        /// The closest one, if any is close.
        suggestion: Option<String>,
    },
    /// The instance's queue is full.
    #[error("operation '{running}' ({location}) is in progress on this instance since {since} and {queued} more wait behind it (at most {queued} may wait); retry when they have finished")]
    Busy {
        /// The running operation.
        running: String,
        /// Its record's location.
        location: String,
        /// When it started (RFC 3339).
        since: String,
        /// How many wait.
        queued: usize,
    },
    /// No operation record with that id (for this tenant).
    #[error("no operation {0}")]
    NoSuchOperation(String),
    /// The operation cannot be cancelled or retried in its state.
    #[error("operation {id} is {state}: {why}")]
    OperationState {
        /// The record's id.
        id: String,
        /// Its state.
        state: &'static str,
        /// What can be done instead.
        why: String,
    },
    /// The plugin refused or failed.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The journal could not record the change.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The server is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
}

fn applicable_text(applicable: &[String]) -> String {
    if applicable.is_empty() {
        "no action applies now".to_string()
    } else {
        format!("actions that apply now: {}", applicable.join(", "))
    }
}

fn did_you_mean(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!("; did you mean {s}?"))
        .unwrap_or_default()
}

/// An action as rendered in an action link: scheme + term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionRef {
    /// Scheme (ends with `#`).
    pub scheme: String,
    /// Term.
    pub term: String,
}

/// The result of a dispose.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposed {
    /// Everything is gone.
    Done(Arc<OperationRecord>),
    /// Still running (or queued) after the dispose wait; it goes on.
    Continuing(Arc<OperationRecord>),
}

/// An accepted request: the instance as it is now and its operation.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The instance after accepting.
    pub instance: Arc<Instance>,
    /// The operation record.
    pub operation: Arc<OperationRecord>,
}

impl Accepted {
    /// Whether the operation waits behind another.
    pub fn queued(&self) -> bool {
        self.operation.state == OpState::Queued
    }
}

/// What an update did.
#[derive(Debug, Clone)]
pub enum Updated {
    /// Nothing changed (every value was an echo).
    Unchanged(Arc<Instance>),
    /// The change was stored (before deploy there is nothing to update).
    Stored(Arc<Instance>),
    /// An update operation was accepted.
    Accepted(Accepted),
}

/// What an operation would do, computed without doing it.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    /// The operation previewed.
    pub operation: String,
    /// What would happen to each stack (and its resources), in order.
    pub stacks: Vec<StackPlan>,
    /// Why the preview stops early, when it does (e.g. a stack needs the
    /// outputs of one that does not exist yet).
    pub incomplete: Option<String>,
}

/// Tunables.
#[derive(Clone, Debug)]
pub struct LifecycleOptions {
    /// How long a plugin may wait for one stack.
    pub stack_wait: WaitOptions,
    /// How long a `DELETE` waits for dispose before answering 202.
    pub dispose_timeout: Duration,
    /// How long `design` may take before creation fails.
    pub design_timeout: Duration,
    /// How many operations may wait behind the running one, per instance.
    pub queue_limit: usize,
    /// How many events each instance keeps for `?watch` replays.
    pub event_retention: usize,
    /// How many finished operation records each tenant keeps.
    pub operation_retention: usize,
    /// How long finished operation records are kept.
    pub operation_max_age: Duration,
    /// Longest time an operation retries a backend that cannot be reached.
    pub unavailable_retry: Duration,
}

impl Default for LifecycleOptions {
    fn default() -> Self {
        LifecycleOptions {
            stack_wait: WaitOptions {
                timeout: Duration::from_secs(30 * 60),
            },
            dispose_timeout: Duration::from_secs(120),
            design_timeout: Duration::from_secs(30),
            queue_limit: 16,
            event_retention: DEFAULT_RETENTION,
            operation_retention: 1000,
            operation_max_age: Duration::from_secs(7 * 24 * 3600),
            unavailable_retry: Duration::from_secs(30 * 60),
        }
    }
}

/// What a create needs.
#[derive(Clone, Debug)]
pub struct CreateRequest {
    /// Tenant and location of the new instance.
    pub key: InstanceKey,
    /// Kind id from the request's Category.
    pub kind: String,
    /// Attributes in request order.
    pub attributes: Vec<(String, Value)>,
    /// Mixin ids.
    pub mixins: Vec<String>,
}

/// The lifecycle engine: store + registry + backend.
pub struct Lifecycle {
    store: Arc<Store>,
    registry: Arc<Registry>,
    backend: Arc<dyn StackBackend>,
    clouds: BTreeMap<String, Arc<dyn StackBackend>>,
    options: LifecycleOptions,
    tasks: TaskTracker,
    closing: AtomicBool,
    observer: Arc<dyn LifecycleObserver>,
    /// Running operations: how to cancel each.
    cancels: DashMap<String, CancellationToken>,
    /// Operations someone waits for: told their final state.
    finals: DashMap<String, watch::Sender<Option<OpState>>>,
    /// The callers' credentials of queued operations (memory only).
    queued_creds: DashMap<String, Credentials>,
}

/// RFC 3339 (seconds) of Unix milliseconds.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

impl Lifecycle {
    /// A lifecycle engine over these parts.
    pub fn new(
        store: Arc<Store>,
        registry: Arc<Registry>,
        backend: Arc<dyn StackBackend>,
        options: LifecycleOptions,
    ) -> Self {
        Lifecycle {
            store,
            registry,
            backend,
            clouds: BTreeMap::new(),
            options,
            tasks: TaskTracker::new(),
            closing: AtomicBool::new(false),
            observer: Arc::new(op::NoObserver),
            cancels: DashMap::new(),
            finals: DashMap::new(),
            queued_creds: DashMap::new(),
        }
    }

    /// Report finished operations to `observer` (metrics).
    pub fn with_observer(mut self, observer: Arc<dyn LifecycleObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Named clouds plugins may place stacks on besides the default
    /// backend (`Stacks::with_clouds`).
    pub fn with_clouds(mut self, clouds: BTreeMap<String, Arc<dyn StackBackend>>) -> Self {
        self.clouds = clouds;
        self
    }

    /// The backend of named cloud `cloud`, or the default backend.
    pub fn backend_of(&self, cloud: Option<&str>) -> Option<&Arc<dyn StackBackend>> {
        match cloud {
            None | Some("default") => Some(&self.backend),
            Some(name) => self.clouds.get(name),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn StackBackend> {
        &self.backend
    }

    /// The tunables.
    pub fn options(&self) -> &LifecycleOptions {
        &self.options
    }

    fn check_open(&self) -> Result<(), LifecycleError> {
        if self.closing.load(Ordering::Acquire) {
            Err(LifecycleError::ShuttingDown)
        } else {
            Ok(())
        }
    }

    /// The binding that serves an existing instance: its kind's binding if
    /// that is still its plugin, else its plugin's own kind.
    pub fn binding_of(&self, inst: &Instance) -> Result<Arc<Binding>, LifecycleError> {
        if let Some(b) = self.registry.by_kind(&inst.kind) {
            if b.name() == inst.plugin {
                return Ok(b);
            }
        }
        self.registry
            .by_name(&inst.plugin)
            .ok_or_else(|| LifecycleError::PluginGone(inst.plugin.clone()))
    }

    /// The instance at `key`.
    pub fn get(&self, key: &InstanceKey) -> Result<Arc<Instance>, LifecycleError> {
        self.store
            .get(key)
            .ok_or_else(|| LifecycleError::NotFound(key.location.clone()))
    }

    /// The operation record `id` of `tenant`.
    pub fn operation(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Arc<OperationRecord>, LifecycleError> {
        self.store
            .operation(tenant, id)
            .ok_or_else(|| LifecycleError::NoSuchOperation(crate::operation::location_of(id)))
    }

    /// The tenant's operation records (of one instance when given), newest
    /// first.
    pub fn operations(&self, tenant: &str, instance: Option<&str>) -> Vec<Arc<OperationRecord>> {
        let mut v = self.store.operations(|o| {
            o.instance.tenant == tenant && instance.is_none_or(|l| o.instance.location == l)
        });
        v.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
        v
    }

    /// The queue position of a queued operation (1: next), if it waits.
    pub fn position(&self, record: &OperationRecord) -> Option<usize> {
        if record.state != OpState::Queued {
            return None;
        }
        let inst = self.store.get(&record.instance)?;
        inst.queue
            .iter()
            .position(|q| q.id == record.id)
            .map(|i| i + 1)
    }

    /// The phase `inst` will be in when what is queued has run (assuming
    /// it succeeds): what a newly queued operation is checked against.
    fn projected_phase(inst: &Instance) -> Phase {
        let mut phase = inst.phase;
        let ops = inst
            .running
            .iter()
            .filter_map(|r| r.op.clone())
            .chain(inst.queue.iter().map(|q| q.operation.clone()));
        for op in ops {
            phase = match (op, phase) {
                (Operation::Deploy, Phase::Initialised) => Phase::Deployed,
                (Operation::Provision, Phase::Deployed) => Phase::Provisioned,
                (_, p) => p,
            };
        }
        phase
    }

    /// Whether a dispose runs or waits on `inst`: nothing may follow it.
    fn being_disposed(inst: &Instance) -> bool {
        inst.running
            .as_ref()
            .is_some_and(|r| r.op.as_ref() == Some(&Operation::Dispose) || r.operation == "dispose")
            || inst.queue.iter().any(|q| q.operation == Operation::Dispose)
    }

    /// The actions that apply to `inst` in `phase`.
    fn applicable_in(&self, phase: Phase, binding: &Binding) -> Vec<ActionRef> {
        let mut v = Vec::new();
        let builtin = |term: &str| ActionRef {
            scheme: MCN_SERVICE_SCHEME.to_string(),
            term: term.to_string(),
        };
        match phase {
            Phase::Initialised => v.push(builtin("deploy")),
            Phase::Deployed => v.push(builtin("provision")),
            Phase::Provisioned => {}
        }
        for a in &binding.kind().actions {
            let applies = if a.applies_in.is_empty() {
                phase != Phase::Initialised
            } else {
                a.applies_in.contains(&phase)
            };
            if applies {
                v.push(ActionRef {
                    scheme: a.scheme.clone(),
                    term: a.term.clone(),
                });
            }
        }
        if phase != Phase::Initialised {
            v.push(builtin("notify"));
        }
        v
    }

    /// The actions that apply to `inst` now (rendered as action links):
    /// those of the phase it will be in once its queue has run.
    pub fn applicable(&self, inst: &Instance, binding: &Binding) -> Vec<ActionRef> {
        if inst.queue.len() >= self.options.queue_limit || Self::being_disposed(inst) {
            return Vec::new();
        }
        self.applicable_in(Self::projected_phase(inst), binding)
    }

    /// What `GET` shows beyond the instance's own attributes.
    pub async fn state(&self, inst: &Instance) -> Result<StateReport, LifecycleError> {
        let binding = self.binding_of(inst)?;
        Ok(binding
            .plugin
            .state(InstanceView {
                attributes: &inst.attributes,
                stacks: &inst.stacks,
                state: &inst.plugin_state,
            })
            .await?)
    }

    /// Create an instance and run the plugin's `design` (an operation of
    /// its own, recorded). On any error nothing remains but the record.
    pub async fn create(
        self: &Arc<Self>,
        req: CreateRequest,
        creds: Credentials,
    ) -> Result<(Arc<Instance>, Arc<OperationRecord>), LifecycleError> {
        self.check_open()?;
        let binding = self
            .registry
            .by_kind(&req.kind)
            .ok_or_else(|| LifecycleError::UnknownKind(req.kind.clone()))?;
        let attributes = binding.schema.for_create(&req.attributes)?;
        binding
            .plugin
            .validate(&Operation::Design, &attributes)
            .await?;
        let id = req
            .key
            .location
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let now = now_ms();
        let op_id = uuid::Uuid::new_v4().to_string();
        let mut inst = Instance {
            key: req.key.clone(),
            id,
            uid: uuid::Uuid::new_v4().to_string(),
            kind: req.kind.clone(),
            plugin: binding.name().to_string(),
            attributes,
            mixins: req.mixins,
            links: Vec::new(),
            phase: Phase::Initialised,
            running: Some(Running {
                operation: "design".into(),
                since: now,
                id: op_id.clone(),
                op: Some(Operation::Design),
                before: BTreeMap::new(),
            }),
            last_error: None,
            queue: Vec::new(),
            last_operation: None,
            events: Default::default(),
            callback_acked: 0,
            stacks: Vec::new(),
            plugin_state: PluginState::default(),
            created: now,
            updated: now,
            generation: 0,
        };
        inst.events.push(
            now,
            EventKind::Operation {
                operation_id: op_id.clone(),
                operation: "design".into(),
                state: OpState::Running.as_str().into(),
                error: None,
                position: None,
            },
            self.options.event_retention,
        );
        let record = OperationRecord {
            id: op_id.clone(),
            instance: req.key.clone(),
            plugin: binding.name().to_string(),
            operation: Operation::Design,
            state: OpState::Running,
            created: now,
            started: Some(now),
            finished: None,
            error: None,
            retry_of: None,
            resumed: 0,
        };
        let (_, durable) = self
            .store
            .insert(inst)
            .map_err(|_| LifecycleError::Exists(req.key.location.clone()))?;
        durable.wait().await?;
        self.put_record(record).await?;
        // Design runs while the caller waits: its own error is the answer.
        match self
            .run_inline(&req.key, &binding, &op_id, &Operation::Design, creds)
            .await
        {
            None => {
                let record = self.operation(&req.key.tenant, &op_id)?;
                Ok((self.get(&req.key)?, record))
            }
            Some(e) => Err(e.into()),
        }
    }

    /// Accept `deploy`, `provision`, `notify` or a custom action: started
    /// at once when the instance is idle, else queued. Returns once it is
    /// accepted (and journaled).
    pub async fn start(
        self: &Arc<Self>,
        key: &InstanceKey,
        scheme: Option<&str>,
        term: &str,
        parameters: &[(String, Value)],
        creds: Credentials,
    ) -> Result<Accepted, LifecycleError> {
        self.check_open()?;
        let inst = self.get(key)?;
        let binding = self.binding_of(&inst)?;
        let operation = self.operation_of(&inst, &binding, scheme, term, parameters)?;
        binding
            .plugin
            .validate(&operation, &inst.attributes)
            .await?;
        self.accept(key, &binding, operation, creds, None).await
    }

    /// The operation `term` names on `inst`, checked against the phase it
    /// will run in.
    fn operation_of(
        &self,
        inst: &Instance,
        binding: &Binding,
        scheme: Option<&str>,
        term: &str,
        parameters: &[(String, Value)],
    ) -> Result<Operation, LifecycleError> {
        let phase = Self::projected_phase(inst);
        let applicable = self.applicable_in(phase, binding);
        let matches = |a: &ActionRef| a.term == term && scheme.is_none_or(|s| s == a.scheme);
        if !applicable.iter().any(matches) {
            let known = self
                .applicable_in(Phase::Initialised, binding)
                .into_iter()
                .chain(
                    self.applicable_in(Phase::Deployed, binding)
                        .into_iter()
                        .chain(self.applicable_in(Phase::Provisioned, binding)),
                );
            let mut known: Vec<String> = known.map(|a| a.term).collect();
            known.sort();
            known.dedup();
            if !known.iter().any(|k| k == term) {
                return Err(LifecycleError::NoSuchAction {
                    action: term.to_string(),
                    kind: binding.kind().id(),
                    suggestion: closest(term, &known),
                    known,
                });
            }
            return Err(LifecycleError::NotApplicable {
                action: term.to_string(),
                phase: phase.as_str(),
                applicable: applicable.into_iter().map(|a| a.term).collect(),
            });
        }
        Ok(match term {
            "deploy" if scheme.is_none_or(|s| s == MCN_SERVICE_SCHEME) => Operation::Deploy,
            "provision" if scheme.is_none_or(|s| s == MCN_SERVICE_SCHEME) => Operation::Provision,
            "notify" if scheme.is_none_or(|s| s == MCN_SERVICE_SCHEME) => Operation::Notify {
                event: parameters.iter().cloned().collect(),
            },
            _ => Operation::Action {
                term: term.to_string(),
                parameters: binding.schema.for_action(term, parameters)?,
            },
        })
    }

    /// Apply changed attributes: checked against the kind, echoes of
    /// current values and of the reported `current_state` dropped. Before
    /// deploy (and with nothing queued) the change is only stored;
    /// afterwards it is an update operation. Sending again the values of
    /// an update that failed runs it again.
    pub async fn update(
        self: &Arc<Self>,
        key: &InstanceKey,
        given: &[(String, Value)],
        current_state: &Attributes,
        creds: Credentials,
    ) -> Result<Updated, LifecycleError> {
        self.check_open()?;
        let inst = self.get(key)?;
        let binding = self.binding_of(&inst)?;
        let mut changed = binding
            .schema
            .for_update(&inst.attributes, current_state, given)?;
        if changed.is_empty() {
            match self.failed_update_to_retry(&inst, given) {
                Some(again) => changed = again,
                None => return Ok(Updated::Unchanged(inst)),
            }
        }
        let mut merged = inst.attributes.clone();
        merged.extend(changed.clone());
        let operation = Operation::Update {
            changed: changed.clone(),
        };
        binding.plugin.validate(&operation, &merged).await?;
        let idle = inst.running.is_none() && inst.queue.is_empty();
        if idle && inst.phase == Phase::Initialised {
            let retention = self.options.event_retention;
            let shown = self.shown(&binding, &changed);
            let r = self.store.update(key, move |i| {
                if i.running.is_some() || !i.queue.is_empty() {
                    return Err(());
                }
                i.attributes.extend(changed);
                i.events.push(
                    now_ms(),
                    EventKind::Attributes { changed: shown },
                    retention,
                );
                Ok(())
            });
            return match r {
                Ok((inst, durable)) => {
                    durable.wait().await?;
                    Ok(Updated::Stored(inst))
                }
                // An operation was accepted meanwhile: queue behind it.
                Err(UpdateError::Refused(())) => self
                    .accept(key, &binding, operation, creds, None)
                    .await
                    .map(Updated::Accepted),
                Err(UpdateError::Store(e)) => Err(LifecycleError::NotFound(e.to_string())),
            };
        }
        self.accept(key, &binding, operation, creds, None)
            .await
            .map(Updated::Accepted)
    }

    /// When the last operation was an update that failed and `given`
    /// sends its values again, those values (to run it again).
    fn failed_update_to_retry(
        &self,
        inst: &Instance,
        given: &[(String, Value)],
    ) -> Option<Attributes> {
        let last = inst.last_operation.as_ref()?;
        if last.state != OpState::Failed || inst.running.is_some() {
            return None;
        }
        let record = self.store.operation(&inst.key.tenant, &last.id)?;
        let Operation::Update { changed } = &record.operation else {
            return None;
        };
        let sent: Attributes = given
            .iter()
            .filter(|(k, _)| changed.contains_key(k))
            .cloned()
            .collect();
        (!sent.is_empty() && sent.iter().all(|(k, v)| inst.attributes.get(k) == Some(v)))
            .then_some(sent)
    }

    /// Values of `changed` as events show them (secrets masked).
    fn shown(&self, binding: &Binding, changed: &Attributes) -> BTreeMap<String, Value> {
        changed
            .iter()
            .map(|(k, v)| {
                let secret = binding.kind().attribute(k).is_some_and(|a| a.secret);
                let v = if secret {
                    Value::String("******".into())
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect()
    }

    /// Dispose the instance: queued like any operation; the plugin deletes
    /// its stacks, then the instance is removed. Waits up to the dispose
    /// timeout.
    pub async fn dispose(
        self: &Arc<Self>,
        key: &InstanceKey,
        creds: Credentials,
    ) -> Result<Disposed, LifecycleError> {
        self.check_open()?;
        let inst = self.get(key)?;
        let binding = self.binding_of(&inst)?;
        binding
            .plugin
            .validate(&Operation::Dispose, &inst.attributes)
            .await?;
        let accepted = self
            .accept(key, &binding, Operation::Dispose, creds, None)
            .await?;
        let id = accepted.operation.id.clone();
        let mut rx = self.watch_final(&id);
        let done = tokio::time::timeout(self.options.dispose_timeout, async {
            loop {
                if rx.borrow_and_update().is_some() {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        let record = self.operation(&key.tenant, &id)?;
        match (done, record.state) {
            (Ok(()), OpState::Succeeded) => Ok(Disposed::Done(record)),
            (Ok(()), OpState::Failed | OpState::Cancelled) => Err(PluginError::Failed(
                record
                    .error
                    .as_ref()
                    .map(|e| e.text())
                    .unwrap_or_else(|| "dispose failed".into()),
            )
            .into()),
            _ => Ok(Disposed::Continuing(record)),
        }
    }

    /// Accepts `operation` on the instance at `key`: it starts at once
    /// when the instance is idle, else waits in its queue (bounded).
    async fn accept(
        self: &Arc<Self>,
        key: &InstanceKey,
        binding: &Arc<Binding>,
        operation: Operation,
        creds: Credentials,
        retry_of: Option<String>,
    ) -> Result<Accepted, LifecycleError> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_ms();
        let limit = self.options.queue_limit;
        let retention = self.options.event_retention;
        let name = operation.name().to_string();
        let op = operation.clone();
        let op_id = id.clone();
        let shown = match &operation {
            Operation::Update { changed } => Some(self.shown(binding, changed)),
            _ => None,
        };
        let reserved = self.store.update(key, move |i| {
            // The phase check of `operation_of` ran before this write:
            // repeat it here, atomically, so that two requests racing
            // (eight deploys at once) cannot both be accepted.
            if let Operation::Deploy | Operation::Provision | Operation::Action { .. } = &op {
                let phase = Self::projected_phase(i);
                let applicable = self.applicable_in(phase, binding);
                if !applicable.iter().any(|a| a.term == name) {
                    return Err(LifecycleError::NotApplicable {
                        action: name.clone(),
                        phase: phase.as_str(),
                        applicable: applicable.into_iter().map(|a| a.term).collect(),
                    });
                }
            }
            let state = if i.running.is_none() && i.queue.is_empty() {
                i.start_running(&op_id, &op, now, shown, retention);
                OpState::Running
            } else {
                if i.queue.len() >= limit {
                    let running = i.running.as_ref();
                    return Err(LifecycleError::Busy {
                        running: running.map(|r| r.operation.clone()).unwrap_or_default(),
                        location: running
                            .map(|r| crate::operation::location_of(&r.id))
                            .unwrap_or_default(),
                        since: rfc3339(running.map_or(now, |r| r.since)),
                        queued: i.queue.len(),
                    });
                }
                if Self::being_disposed(i) {
                    return Err(LifecycleError::NotApplicable {
                        action: name.clone(),
                        phase: "being disposed",
                        applicable: Vec::new(),
                    });
                }
                i.queue.push(Queued {
                    id: op_id.clone(),
                    operation: op.clone(),
                });
                i.events.push(
                    now,
                    EventKind::Operation {
                        operation_id: op_id.clone(),
                        operation: name.clone(),
                        state: OpState::Queued.as_str().into(),
                        error: None,
                        position: Some(i.queue.len()),
                    },
                    retention,
                );
                OpState::Queued
            };
            let _ = state;
            Ok(())
        });
        let instance = match reserved {
            Ok((inst, durable)) => {
                durable.wait().await?;
                inst
            }
            Err(UpdateError::Refused(e)) => return Err(e),
            Err(UpdateError::Store(e)) => return Err(LifecycleError::NotFound(e.to_string())),
        };
        let running = instance.running.as_ref().is_some_and(|r| r.id == id);
        let record = OperationRecord {
            id: id.clone(),
            instance: key.clone(),
            plugin: binding.name().to_string(),
            operation: operation.clone(),
            state: if running {
                OpState::Running
            } else {
                OpState::Queued
            },
            created: now,
            started: running.then_some(now),
            finished: None,
            error: None,
            retry_of,
            resumed: 0,
        };
        let record = self.put_record(record).await?;
        if running {
            drop(self.spawn(key.clone(), binding.clone(), id, operation, creds));
        } else {
            self.remember_credentials(&id, creds);
        }
        tracing::info!(tenant = %key.tenant, location = %key.location, operation = %record.operation.name(), id = %record.id, state = record.state.as_str(), "operation accepted");
        Ok(Accepted {
            instance,
            operation: record,
        })
    }

    /// Cancel operation `id` of `tenant`: a queued one is removed from its
    /// queue; a running one has its stacks' operations cancelled and the
    /// instance left as it was before it. Waits a little for it to end.
    pub async fn cancel(
        self: &Arc<Self>,
        tenant: &str,
        id: &str,
    ) -> Result<Arc<OperationRecord>, LifecycleError> {
        let record = self.operation(tenant, id)?;
        match record.state {
            OpState::Queued => {
                let retention = self.options.event_retention;
                let op_id = id.to_string();
                let name = record.operation.name().to_string();
                let removed = self.store.update(&record.instance, move |i| {
                    let before = i.queue.len();
                    i.queue.retain(|q| q.id != op_id);
                    if i.queue.len() == before {
                        return Err(());
                    }
                    i.events.push(
                        now_ms(),
                        EventKind::Operation {
                            operation_id: op_id.clone(),
                            operation: name.clone(),
                            state: OpState::Cancelled.as_str().into(),
                            error: None,
                            position: None,
                        },
                        retention,
                    );
                    Ok(())
                });
                match removed {
                    Ok((_, durable)) => durable.wait().await?,
                    // It started meanwhile: cancel it as a running one.
                    Err(_) => return Box::pin(self.cancel(tenant, id)).await,
                }
                self.end_record(
                    &record.key(),
                    OpState::Cancelled,
                    Some(ErrorChain::message("cancelled by the caller while queued")),
                )
                .await?;
                self.forget_credentials(id);
                self.operation(tenant, id)
            }
            OpState::Running => {
                let Some(token) = self.cancels.get(id).map(|t| t.clone()) else {
                    return Err(LifecycleError::OperationState {
                        id: record.location(),
                        state: "running",
                        why: "it is being resumed after a restart; cancel it again in a moment"
                            .into(),
                    });
                };
                let mut rx = self.watch_final(id);
                token.cancel();
                let _ = tokio::time::timeout(Duration::from_secs(10), async {
                    loop {
                        if rx.borrow_and_update().is_some() || rx.changed().await.is_err() {
                            return;
                        }
                    }
                })
                .await;
                self.operation(tenant, id)
            }
            state => Err(LifecycleError::OperationState {
                id: record.location(),
                state: state.as_str(),
                why: "only a queued or running operation can be cancelled".into(),
            }),
        }
    }

    /// Run a failed or cancelled operation again, as a new operation
    /// (`retry_of` names the old one); an update re-applies its values.
    pub async fn retry(
        self: &Arc<Self>,
        tenant: &str,
        id: &str,
        creds: Credentials,
    ) -> Result<Accepted, LifecycleError> {
        self.check_open()?;
        let record = self.operation(tenant, id)?;
        if !matches!(record.state, OpState::Failed | OpState::Cancelled) {
            return Err(LifecycleError::OperationState {
                id: record.location(),
                state: record.state.as_str(),
                why: "only a failed or cancelled operation can be retried".into(),
            });
        }
        if record.operation == Operation::Design {
            return Err(LifecycleError::OperationState {
                id: record.location(),
                state: record.state.as_str(),
                why: "a failed create left no instance: create it again".into(),
            });
        }
        let inst = self.get(&record.instance)?;
        let binding = self.binding_of(&inst)?;
        let mut attributes = inst.attributes.clone();
        if let Operation::Update { changed } = &record.operation {
            attributes.extend(changed.clone());
        }
        if let Operation::Deploy | Operation::Provision | Operation::Action { .. } =
            &record.operation
        {
            let term = record.operation.name().to_string();
            let phase = Self::projected_phase(&inst);
            if !self
                .applicable_in(phase, &binding)
                .iter()
                .any(|a| a.term == term)
            {
                return Err(LifecycleError::NotApplicable {
                    action: term,
                    phase: phase.as_str(),
                    applicable: self
                        .applicable_in(phase, &binding)
                        .into_iter()
                        .map(|a| a.term)
                        .collect(),
                });
            }
        }
        binding
            .plugin
            .validate(&record.operation, &attributes)
            .await?;
        self.accept(
            &record.instance,
            &binding,
            record.operation.clone(),
            creds,
            Some(record.id.clone()),
        )
        .await
    }

    /// What `operation` would do to the instance's stacks, computed by the
    /// plugin against previews of the backend (Heat's stack and update
    /// previews, or the embedded engine's), without doing anything.
    pub async fn preview(
        self: &Arc<Self>,
        key: &InstanceKey,
        scheme: Option<&str>,
        term: Option<&str>,
        parameters: &[(String, Value)],
        current_state: &Attributes,
        creds: Credentials,
    ) -> Result<Preview, LifecycleError> {
        let inst = self.get(key)?;
        let binding = self.binding_of(&inst)?;
        let mut attributes = inst.attributes.clone();
        let operation = match term {
            Some("dispose") => Operation::Dispose,
            Some(term) => self.operation_of(&inst, &binding, scheme, term, parameters)?,
            None => {
                let changed =
                    binding
                        .schema
                        .for_update(&inst.attributes, current_state, parameters)?;
                attributes.extend(changed.clone());
                Operation::Update { changed }
            }
        };
        binding.plugin.validate(&operation, &attributes).await?;
        self.preview_run(&inst, &binding, operation, attributes, creds)
            .await
    }

    /// Stop accepting operations and wait up to `grace` for running ones.
    /// Returns false if some were still running (they are journaled as
    /// running and resumed at the next start).
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.closing.store(true, Ordering::Release);
        self.tasks.close();
        tokio::time::timeout(grace, self.tasks.wait()).await.is_ok()
    }

    /// Number of operations running now.
    pub fn running(&self) -> usize {
        self.tasks.len()
    }

    /// Writes `record`, durably.
    async fn put_record(
        &self,
        record: OperationRecord,
    ) -> Result<Arc<OperationRecord>, LifecycleError> {
        let key = record.key();
        let (written, durable) = self
            .store
            .put_operation(&key, |_| Ok::<_, std::convert::Infallible>(Some(record)))
            .unwrap_or_else(|never| match never {});
        durable.wait().await?;
        written.ok_or(LifecycleError::NoSuchOperation(key.id))
    }

    /// Ends the record `key` in `state` (unless it already ended).
    async fn end_record(
        &self,
        key: &OpKey,
        state: OpState,
        error: Option<ErrorChain>,
    ) -> Result<(), LifecycleError> {
        let now = now_ms();
        let (_, durable) = self
            .store
            .put_operation(key, |current| {
                let Some(current) = current else {
                    return Ok::<_, std::convert::Infallible>(None);
                };
                let mut next = current.clone();
                if !next.state.is_final() {
                    next.state = state;
                    next.finished = Some(now);
                    next.error = error;
                }
                Ok(Some(next))
            })
            .unwrap_or_else(|never| match never {});
        durable.wait().await?;
        self.tell_final(&key.id, state);
        Ok(())
    }

    async fn fail_record(&self, tenant: &str, id: &str, error: ErrorChain) {
        let key = OpKey {
            tenant: tenant.to_string(),
            id: id.to_string(),
        };
        if let Err(e) = self.end_record(&key, OpState::Failed, Some(error)).await {
            tracing::error!(error = %e, id, "cannot record the failed operation");
        }
    }

    /// A receiver told the final state of operation `id`.
    fn watch_final(&self, id: &str) -> watch::Receiver<Option<OpState>> {
        self.finals
            .entry(id.to_string())
            .or_insert_with(|| watch::channel(None).0)
            .subscribe()
    }

    fn tell_final(&self, id: &str, state: OpState) {
        if let Some((_, tx)) = self.finals.remove(id) {
            let _ = tx.send(Some(state));
        }
    }
}

/// The closest of `known` to `word`, if it is close (a typo).
pub fn closest(word: &str, known: &[String]) -> Option<String> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(word, k), k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.clone())
}

impl From<BackendError> for LifecycleError {
    fn from(e: BackendError) -> Self {
        LifecycleError::Plugin(PluginError::Backend(e))
    }
}

/// How an operation ended, for the instance.
fn last(id: &str, state: OpState) -> LastOperation {
    LastOperation {
        id: id.to_string(),
        state,
    }
}

#[cfg(test)]
mod tests;

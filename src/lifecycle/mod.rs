//! The per-instance lifecycle state machine.
//!
//! * Which operations apply now: `deploy` in `initialised`, `provision` in
//!   `deployed`, custom actions in the phases they declare; nothing while
//!   an operation runs.
//! * One operation per instance at a time: the reservation is taken inside
//!   the store's atomic update, so a second concurrent one gets
//!   [`LifecycleError::Busy`] (HTTP 409) and changes nothing.
//! * Operations run as tasks of their own, so a client that hangs up never
//!   cancels a half-done deploy; a plugin that panics fails the operation
//!   instead of leaving the instance stuck.
//! * A restart marks operations that were running as interrupted; their
//!   stacks are still recorded (see `sdk::Stacks`), so nothing is orphaned.

mod op;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use occi_so_sdk::{
    Attributes, BackendError, Credentials, InstanceView, Operation, Phase, PluginError,
    PluginState, StackBackend, StateReport, WaitOptions, MCN_SERVICE_SCHEME,
};
use serde_json::Value;
use tokio_util::task::TaskTracker;

use crate::registry::{Binding, Registry};
use crate::schema::AttributeError;
use crate::store::{
    now_ms, Failure, Instance, InstanceKey, JournalError, Running, Store, UpdateError,
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
        /// The current phase.
        phase: &'static str,
        /// The actions that do apply now.
        applicable: Vec<String>,
    },
    /// Another operation is running on the instance.
    #[error("operation '{running}' is in progress on this instance (since {since} ms); retry when it has finished")]
    Busy {
        /// The running operation.
        running: String,
        /// When it started (Unix ms).
        since: u64,
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

/// An action as rendered in an action link: scheme + term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionRef {
    /// Scheme (ends with `#`).
    pub scheme: String,
    /// Term.
    pub term: String,
}

/// The result of a dispose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposed {
    /// Everything is gone.
    Done,
    /// Still deleting after the dispose timeout; it goes on in the background.
    Continuing,
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
}

impl Default for LifecycleOptions {
    fn default() -> Self {
        LifecycleOptions {
            stack_wait: WaitOptions {
                timeout: Duration::from_secs(30 * 60),
            },
            dispose_timeout: Duration::from_secs(120),
            design_timeout: Duration::from_secs(30),
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

    /// The actions that apply to `inst` now (none while one runs).
    pub fn applicable(&self, inst: &Instance, binding: &Binding) -> Vec<ActionRef> {
        if inst.running.is_some() {
            return Vec::new();
        }
        let mut v = Vec::new();
        let builtin = |term: &str| ActionRef {
            scheme: MCN_SERVICE_SCHEME.to_string(),
            term: term.to_string(),
        };
        match inst.phase {
            Phase::Initialised => v.push(builtin("deploy")),
            Phase::Deployed => v.push(builtin("provision")),
            Phase::Provisioned => {}
        }
        for a in &binding.kind().actions {
            let applies = if a.applies_in.is_empty() {
                inst.phase != Phase::Initialised
            } else {
                a.applies_in.contains(&inst.phase)
            };
            if applies {
                v.push(ActionRef {
                    scheme: a.scheme.clone(),
                    term: a.term.clone(),
                });
            }
        }
        if inst.phase != Phase::Initialised {
            v.push(builtin("notify"));
        }
        v
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

    /// Create an instance and run the plugin's `design`. On any error
    /// nothing remains.
    pub async fn create(
        self: &Arc<Self>,
        req: CreateRequest,
        creds: Credentials,
    ) -> Result<Arc<Instance>, LifecycleError> {
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
        let inst = Instance {
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
            }),
            last_error: None,
            stacks: Vec::new(),
            plugin_state: PluginState::default(),
            created: now,
            updated: now,
            generation: 0,
        };
        let (_, durable) = self
            .store
            .insert(inst)
            .map_err(|_| LifecycleError::Exists(req.key.location.clone()))?;
        durable.wait().await?;
        let handle = self.spawn(req.key.clone(), binding, Operation::Design, creds);
        let outcome = tokio::time::timeout(self.options.design_timeout, handle).await;
        let result = match outcome {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(PluginError::Failed("design task ended abnormally".into())),
            Err(_) => Err(PluginError::Failed(format!(
                "design did not finish within {:?}",
                self.options.design_timeout
            ))),
        };
        match result {
            Ok(()) => self.get(&req.key),
            Err(e) => {
                if let Ok((_, d)) = self.store.remove(&req.key) {
                    let _ = d.wait().await;
                }
                Err(e.into())
            }
        }
    }

    /// Start `deploy`, `provision`, `notify` or a custom action. Returns as
    /// soon as the operation is accepted (and journaled).
    pub async fn start(
        self: &Arc<Self>,
        key: &InstanceKey,
        scheme: Option<&str>,
        term: &str,
        parameters: &[(String, Value)],
        creds: Credentials,
    ) -> Result<Arc<Instance>, LifecycleError> {
        self.check_open()?;
        let inst = self.get(key)?;
        let binding = self.binding_of(&inst)?;
        busy(&inst)?;
        let applicable = self.applicable(&inst, &binding);
        let matches = |a: &ActionRef| a.term == term && scheme.is_none_or(|s| s == a.scheme);
        if !applicable.iter().any(matches) {
            return Err(not_applicable(term, &inst, &applicable));
        }
        let operation = match term {
            "deploy" if scheme.is_none_or(|s| s == MCN_SERVICE_SCHEME) => Operation::Deploy,
            "provision" if scheme.is_none_or(|s| s == MCN_SERVICE_SCHEME) => Operation::Provision,
            "notify" if scheme.is_none_or(|s| s == MCN_SERVICE_SCHEME) => Operation::Notify {
                event: parameters.iter().cloned().collect(),
            },
            _ => Operation::Action {
                term: term.to_string(),
                parameters: binding.schema.for_action(term, parameters)?,
            },
        };
        binding
            .plugin
            .validate(&operation, &inst.attributes)
            .await?;
        let phase = inst.phase;
        let reserved = self.reserve(key, operation.name(), |i| {
            if i.phase != phase {
                return Err(not_applicable(term, i, &[]));
            }
            Ok(())
        });
        let inst = self.finish_reservation(reserved).await?;
        // The handle is dropped: the task runs on by itself.
        drop(self.spawn(key.clone(), binding, operation, creds));
        Ok(inst)
    }

    /// Apply changed attributes: checked against the kind, echoes of
    /// current values and of the reported `current_state` dropped. Before
    /// deploy the change is only stored; afterwards the plugin's `update`
    /// runs (accepted now, finished in the background).
    pub async fn update(
        self: &Arc<Self>,
        key: &InstanceKey,
        given: &[(String, Value)],
        current_state: &Attributes,
        creds: Credentials,
    ) -> Result<Arc<Instance>, LifecycleError> {
        self.check_open()?;
        let inst = self.get(key)?;
        let binding = self.binding_of(&inst)?;
        busy(&inst)?;
        let changed = binding
            .schema
            .for_update(&inst.attributes, current_state, given)?;
        if changed.is_empty() {
            return Ok(inst);
        }
        let mut merged = inst.attributes.clone();
        merged.extend(changed.clone());
        let operation = Operation::Update {
            changed: changed.clone(),
        };
        binding.plugin.validate(&operation, &merged).await?;
        if inst.phase == Phase::Initialised {
            let changed_now = changed.clone();
            let r = self.store.update(key, move |i| {
                busy(i)?;
                i.attributes.extend(changed_now);
                Ok(())
            });
            return self.finish_reservation(r).await;
        }
        let changed_now = changed.clone();
        let reserved = self.reserve(key, "update", move |i| {
            i.attributes.extend(changed_now);
            Ok(())
        });
        let inst = self.finish_reservation(reserved).await?;
        drop(self.spawn(key.clone(), binding, operation, creds));
        Ok(inst)
    }

    /// Dispose the instance: the plugin deletes its stacks, then the
    /// instance is removed. Waits up to the dispose timeout.
    pub async fn dispose(
        self: &Arc<Self>,
        key: &InstanceKey,
        creds: Credentials,
    ) -> Result<Disposed, LifecycleError> {
        self.check_open()?;
        let inst = self.get(key)?;
        let binding = self.binding_of(&inst)?;
        busy(&inst)?;
        binding
            .plugin
            .validate(&Operation::Dispose, &inst.attributes)
            .await?;
        let reserved = self.reserve(key, "dispose", |_| Ok(()));
        self.finish_reservation(reserved).await?;
        let handle = self.spawn(key.clone(), binding, Operation::Dispose, creds);
        match tokio::time::timeout(self.options.dispose_timeout, handle).await {
            Ok(Ok(Ok(()))) => Ok(Disposed::Done),
            Ok(Ok(Err(e))) => Err(e.into()),
            Ok(Err(_)) => Err(PluginError::Failed("dispose task ended abnormally".into()).into()),
            Err(_) => Ok(Disposed::Continuing),
        }
    }

    fn reserve(
        &self,
        key: &InstanceKey,
        operation: &str,
        check: impl FnOnce(&mut Instance) -> Result<(), LifecycleError>,
    ) -> Result<(Arc<Instance>, crate::store::Durable), UpdateError<LifecycleError>> {
        let operation = operation.to_string();
        self.store.update(key, move |i| {
            busy(i)?;
            check(i)?;
            i.running = Some(Running {
                operation,
                since: now_ms(),
            });
            Ok(())
        })
    }

    async fn finish_reservation(
        &self,
        r: Result<(Arc<Instance>, crate::store::Durable), UpdateError<LifecycleError>>,
    ) -> Result<Arc<Instance>, LifecycleError> {
        match r {
            Ok((inst, durable)) => {
                durable.wait().await?;
                Ok(inst)
            }
            Err(UpdateError::Refused(e)) => Err(e),
            Err(UpdateError::Store(e)) => Err(LifecycleError::NotFound(e.to_string())),
        }
    }

    /// After a restart: operations that were running are marked as
    /// interrupted (their stacks stay recorded), so the instance accepts
    /// new operations. Returns how many were interrupted.
    pub fn recover(&self) -> usize {
        let mut n = 0;
        for inst in self.store.all() {
            if let Some(running) = &inst.running {
                let op = running.operation.clone();
                let r = self.store.update(&inst.key, |i| {
                    i.running = None;
                    i.last_error = Some(Failure {
                        operation: op.clone(),
                        message: format!("interrupted: occi-so stopped during {op}; its stacks are kept, retry the operation"),
                        at: now_ms(),
                    });
                    Ok::<(), ()>(())
                });
                if r.is_ok() {
                    n += 1;
                    tracing::warn!(tenant = %inst.key.tenant, location = %inst.key.location, operation = %running.operation, "operation interrupted by restart");
                }
            }
        }
        n
    }

    /// Stop accepting operations and wait up to `grace` for running ones.
    /// Returns false if some were still running (they are journaled as
    /// running and marked interrupted at the next start).
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.closing.store(true, Ordering::Release);
        self.tasks.close();
        tokio::time::timeout(grace, self.tasks.wait()).await.is_ok()
    }

    /// Number of operations running now.
    pub fn running(&self) -> usize {
        self.tasks.len()
    }
}

fn busy(i: &Instance) -> Result<(), LifecycleError> {
    match &i.running {
        Some(r) => Err(LifecycleError::Busy {
            running: r.operation.clone(),
            since: r.since,
        }),
        None => Ok(()),
    }
}

fn not_applicable(term: &str, inst: &Instance, applicable: &[ActionRef]) -> LifecycleError {
    LifecycleError::NotApplicable {
        action: term.to_string(),
        phase: inst.phase.as_str(),
        applicable: applicable.iter().map(|a| a.term.clone()).collect(),
    }
}

impl From<BackendError> for LifecycleError {
    fn from(e: BackendError) -> Self {
        LifecycleError::Plugin(PluginError::Backend(e))
    }
}

#[cfg(test)]
mod tests;

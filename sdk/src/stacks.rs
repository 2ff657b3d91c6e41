//! The stacks of one instance, as a plugin sees them: create, wait,
//! update and delete by *role* (`main`, `volumes`, `instance`, `cloud-b`),
//! with every change reported to a [`StackSink`] so the server can journal
//! it before and after the backend call.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{
    BackendError, ChangeAction, Credentials, ResourceChange, StackAction, StackBackend, StackInfo,
    StackRef, StackSpec, StackStatus, StackUpdate, WaitOptions,
};

/// One stack of an instance, as journaled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StackRecord {
    /// The plugin's name for this stack within the instance.
    pub role: String,
    /// The Heat stack name (known before the create call returns).
    pub name: String,
    /// Name and id, once the backend accepted the create.
    pub stack: Option<StackRef>,
    /// The last status seen, if any.
    pub last: Option<StackInfo>,
    /// The named cloud the stack runs on (`None`: the default backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<String>,
}

/// Receives every change to an instance's stacks, synchronously and
/// without blocking (the server updates its map and appends to the journal).
pub trait StackSink: Send + Sync {
    /// A stack record was added or changed.
    fn stack_changed(&self, record: &StackRecord);
    /// A stack record was removed (the stack is deleted).
    fn stack_removed(&self, role: &str);
}

/// A sink that keeps nothing: for tests and validation runs.
pub struct NullSink;

impl StackSink for NullSink {
    fn stack_changed(&self, _record: &StackRecord) {}
    fn stack_removed(&self, _role: &str) {}
}

/// The stacks of one instance, bound to a backend and the caller's
/// credentials.
pub struct Stacks {
    backend: Arc<dyn StackBackend>,
    clouds: BTreeMap<String, Arc<dyn StackBackend>>,
    credentials: Credentials,
    sink: Arc<dyn StackSink>,
    name_prefix: String,
    records: Vec<StackRecord>,
    wait: WaitOptions,
    /// In a preview, what each call would do (nothing is changed).
    plan: Option<Vec<StackPlan>>,
}

/// What an operation would do to one stack of the instance (a preview).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StackPlan {
    /// The plugin's role for the stack.
    pub role: String,
    /// The stack name.
    pub name: String,
    /// What would happen to the stack as a whole.
    pub action: ChangeAction,
    /// The named cloud it runs on (`None`: the default backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<String>,
    /// What would happen to each of its resources.
    pub resources: Vec<ResourceChange>,
}

/// The id a stack that only exists in a preview gets.
const PREVIEW_ID: &str = "preview";

impl Stacks {
    /// Stacks of one instance. `name_prefix` makes stack names unique
    /// (`{prefix}-{role}`); `records` are the ones already journaled.
    pub fn new(
        backend: Arc<dyn StackBackend>,
        credentials: Credentials,
        sink: Arc<dyn StackSink>,
        name_prefix: impl Into<String>,
        records: Vec<StackRecord>,
    ) -> Self {
        Stacks {
            backend,
            clouds: BTreeMap::new(),
            credentials,
            sink,
            name_prefix: name_prefix.into(),
            records,
            wait: WaitOptions::default(),
            plan: None,
        }
    }

    /// These stacks in preview mode: every create, update and delete asks
    /// the backend what it *would* do (Heat's stack and update previews)
    /// and records it in [`Stacks::plan`]; nothing is created, changed or
    /// deleted, and nothing reaches the sink. A stack that would be created
    /// reads as complete without outputs (outputs are not known before).
    pub fn previewing(mut self) -> Self {
        self.plan = Some(Vec::new());
        self
    }

    /// What a preview found, in call order (`None` when not previewing).
    pub fn plan(&self) -> Option<&[StackPlan]> {
        self.plan.as_deref()
    }

    fn plan_step(&mut self, step: StackPlan) {
        if let Some(plan) = &mut self.plan {
            plan.push(step);
        }
    }

    /// Stacks with a [`NullSink`] (tests, dry runs).
    pub fn detached(backend: Arc<dyn StackBackend>, credentials: Credentials) -> Self {
        Stacks::new(
            backend,
            credentials,
            Arc::new(NullSink),
            "stack",
            Vec::new(),
        )
    }

    /// Use these wait options for every wait.
    pub fn with_wait_options(mut self, wait: WaitOptions) -> Self {
        self.wait = wait;
        self
    }

    /// Named clouds besides the default backend (multi-cloud services
    /// place stacks on them with [`Stacks::create_on`]).
    pub fn with_clouds(mut self, clouds: BTreeMap<String, Arc<dyn StackBackend>>) -> Self {
        self.clouds = clouds;
        self
    }

    /// The names of the configured clouds (the default backend not included).
    pub fn cloud_names(&self) -> Vec<String> {
        self.clouds.keys().cloned().collect()
    }

    /// The default backend, for calls this handle does not wrap (validate, resources).
    pub fn backend(&self) -> &Arc<dyn StackBackend> {
        &self.backend
    }

    /// The backend of cloud `name` (`None`: the default one).
    pub fn backend_of(&self, cloud: Option<&str>) -> Result<&Arc<dyn StackBackend>, BackendError> {
        match cloud {
            None => Ok(&self.backend),
            Some(name) => self.clouds.get(name).ok_or_else(|| BackendError::Rejected {
                kind: "UnknownCloud".into(),
                message: format!(
                    "no cloud named '{name}' is configured (configured: {})",
                    if self.clouds.is_empty() {
                        "none".to_string()
                    } else {
                        self.cloud_names().join(", ")
                    }
                ),
            }),
        }
    }

    fn record_backend(&self, role: &str) -> Result<&Arc<dyn StackBackend>, BackendError> {
        let cloud = self.get(role).and_then(|r| r.cloud.as_deref());
        self.backend_of(cloud)
    }

    /// The caller's credentials.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Every stack record, in creation order.
    pub fn records(&self) -> &[StackRecord] {
        &self.records
    }

    /// The record of `role`, if there is one.
    pub fn get(&self, role: &str) -> Option<&StackRecord> {
        self.records.iter().find(|r| r.role == role)
    }

    /// The stack name used for `role`: `{prefix}-{role}`.
    pub fn name_for(&self, role: &str) -> String {
        format!("{}-{}", self.name_prefix, role)
    }

    fn stack_ref(&self, role: &str) -> Result<StackRef, BackendError> {
        self.get(role)
            .and_then(|r| r.stack.clone())
            .ok_or_else(|| BackendError::NotFound {
                message: format!("this instance has no stack '{role}'"),
            })
    }

    fn put(&mut self, record: StackRecord) {
        self.sink.stack_changed(&record);
        match self.records.iter_mut().find(|r| r.role == record.role) {
            Some(slot) => *slot = record,
            None => self.records.push(record),
        }
    }

    fn remove(&mut self, role: &str) {
        self.records.retain(|r| r.role != role);
        self.sink.stack_removed(role);
    }

    /// Start creating the stack for `role`. An empty `spec.name` becomes
    /// [`Stacks::name_for`]. The name is recorded before the backend call
    /// and the id right after, so a crash in between leaves a name to find.
    ///
    /// Idempotent per role: if this instance already has a stack for
    /// `role` (say a deploy is retried after a restart), that stack is
    /// returned and nothing is created; if only its name was recorded, it
    /// is looked up by name first. A stack of `role` whose create failed
    /// (`CREATE_FAILED`, or rolled back) is deleted first, so deploying
    /// again after a failed deploy starts from a clean slate.
    pub async fn create(&mut self, role: &str, spec: StackSpec) -> Result<StackRef, BackendError> {
        self.create_on(None, role, spec).await
    }

    /// [`Stacks::create`] on the named cloud (`None`: the default backend).
    pub async fn create_on(
        &mut self,
        cloud: Option<&str>,
        role: &str,
        mut spec: StackSpec,
    ) -> Result<StackRef, BackendError> {
        let backend = self.backend_of(cloud)?.clone();
        if self.plan.is_some() {
            return self.preview_create(&backend, cloud, role, spec).await;
        }
        let cloud = cloud.map(str::to_string);
        let create_failed = self
            .get(role)
            .and_then(|r| r.last.as_ref())
            .is_some_and(|l| {
                l.status.is_failed()
                    && matches!(l.status.action, StackAction::Create | StackAction::Rollback)
            });
        if create_failed {
            self.delete(role).await?;
        }
        if let Some(existing) = self.get(role).cloned() {
            if let Some(stack) = existing.stack {
                return Ok(stack);
            }
            if let Some(stack) = backend.find(&self.credentials, &existing.name).await? {
                self.put(StackRecord {
                    stack: Some(stack.clone()),
                    ..existing
                });
                return Ok(stack);
            }
            spec.name = existing.name;
        }
        if spec.name.is_empty() {
            spec.name = self.name_for(role);
        }
        self.put(StackRecord {
            role: role.to_string(),
            name: spec.name.clone(),
            stack: None,
            last: None,
            cloud: cloud.clone(),
        });
        match backend.create(&self.credentials, &spec).await {
            Ok(stack) => {
                self.put(StackRecord {
                    role: role.to_string(),
                    name: spec.name,
                    stack: Some(stack.clone()),
                    last: None,
                    cloud,
                });
                Ok(stack)
            }
            Err(e) => {
                self.remove(role);
                Err(e)
            }
        }
    }

    async fn preview_create(
        &mut self,
        backend: &Arc<dyn StackBackend>,
        cloud: Option<&str>,
        role: &str,
        mut spec: StackSpec,
    ) -> Result<StackRef, BackendError> {
        let existing = self.get(role).cloned();
        let replaced = match &existing {
            Some(StackRecord {
                stack: Some(stack),
                last,
                ..
            }) => {
                let failed = last.as_ref().is_some_and(|l| l.status.is_failed());
                if !failed {
                    self.plan_step(StackPlan {
                        role: role.to_string(),
                        name: stack.name.clone(),
                        action: ChangeAction::Unchanged,
                        cloud: cloud.map(str::to_string),
                        resources: Vec::new(),
                    });
                    return Ok(stack.clone());
                }
                true
            }
            _ => false,
        };
        if spec.name.is_empty() {
            spec.name = existing.map_or_else(|| self.name_for(role), |e| e.name);
        }
        let preview = backend.preview_create(&self.credentials, &spec).await?;
        self.plan_step(StackPlan {
            role: role.to_string(),
            name: spec.name.clone(),
            action: if replaced {
                ChangeAction::Replace
            } else {
                ChangeAction::Create
            },
            cloud: cloud.map(str::to_string),
            resources: preview.resources,
        });
        let stack = StackRef {
            name: spec.name.clone(),
            id: PREVIEW_ID.into(),
        };
        let info = StackInfo {
            stack: stack.clone(),
            status: StackStatus::new(StackAction::Create, crate::StackState::Complete),
            status_reason: "preview: not created".into(),
            outputs: Vec::new(),
            parameters: spec.parameters.clone(),
            creation_time: None,
            updated_time: None,
            description: None,
            tags: spec.tags.clone(),
        };
        let record = StackRecord {
            role: role.to_string(),
            name: spec.name,
            stack: Some(stack.clone()),
            last: Some(info),
            cloud: cloud.map(str::to_string),
        };
        match self.records.iter_mut().find(|r| r.role == role) {
            Some(slot) => *slot = record,
            None => self.records.push(record),
        }
        Ok(stack)
    }

    /// Cancel the operation in progress on the stack of `role` (an update
    /// rolls back, a create stops `CREATE_FAILED`), then wait until it
    /// settles and record what it became.
    pub async fn cancel(&mut self, role: &str) -> Result<StackInfo, BackendError> {
        let stack = self.stack_ref(role)?;
        self.record_backend(role)?
            .cancel(&self.credentials, &stack)
            .await?;
        self.wait(role).await
    }

    /// Wait until the stack of `role` leaves `*_IN_PROGRESS`, recording
    /// every status seen on the way. A `*_FAILED` end is `Ok` here (dispose
    /// and restart recovery want to see it); lifecycle steps use
    /// [`Stacks::wait_ready`], which makes it an error.
    pub async fn wait(&mut self, role: &str) -> Result<StackInfo, BackendError> {
        let stack = self.stack_ref(role)?;
        if self.plan.is_some() {
            if let Some(last) = self.get(role).and_then(|r| r.last.clone()) {
                return Ok(last);
            }
            return self
                .record_backend(role)?
                .get(&self.credentials, &stack)
                .await;
        }
        let backend = self.record_backend(role)?.clone();
        let mut rx = backend.watch(&self.credentials, &stack).await?;
        let deadline = tokio::time::Instant::now() + self.wait.timeout;
        loop {
            let info = rx.borrow_and_update().clone();
            self.record_info(role, &stack, &info);
            if !info.status.in_progress() {
                return Ok(info);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    let info = backend.get(&self.credentials, &stack).await?;
                    self.record_info(role, &stack, &info);
                    if info.status.in_progress() {
                        return Err(BackendError::Unavailable {
                            message: format!(
                                "stopped watching stack {} while it was {}",
                                stack.name, info.status
                            ),
                        });
                    }
                    return Ok(info);
                }
                Err(_) => {
                    return Err(BackendError::Timeout {
                        what: format!("stack {} to finish", stack.name),
                        after: self.wait.timeout,
                    })
                }
            }
        }
    }

    fn record_info(&mut self, role: &str, stack: &StackRef, info: &StackInfo) {
        let unchanged = self
            .get(role)
            .and_then(|r| r.last.as_ref())
            .is_some_and(|l| l == info);
        if !unchanged {
            let cloud = self.get(role).and_then(|r| r.cloud.clone());
            self.put(StackRecord {
                role: role.to_string(),
                name: stack.name.clone(),
                stack: Some(stack.clone()),
                last: Some(info.clone()),
                cloud,
            });
        }
    }

    /// Wait for the stack of `role` (see [`Stacks::wait`]) and require it
    /// to have ended ready (`*_COMPLETE`, not a delete or rollback): a
    /// stack that ended otherwise is [`BackendError::StackFailed`] with
    /// Heat's reason.
    pub async fn wait_ready(&mut self, role: &str) -> Result<StackInfo, BackendError> {
        let info = self.wait(role).await?;
        ready(info)
    }

    /// Create the stack for `role` on the default backend and wait until it
    /// is complete ([`Stacks::wait_ready`]).
    pub async fn create_ready(
        &mut self,
        role: &str,
        spec: StackSpec,
    ) -> Result<StackInfo, BackendError> {
        self.create_ready_on(None, role, spec).await
    }

    /// [`Stacks::create_ready`] on the named cloud (`None`: the default backend).
    pub async fn create_ready_on(
        &mut self,
        cloud: Option<&str>,
        role: &str,
        spec: StackSpec,
    ) -> Result<StackInfo, BackendError> {
        self.create_on(cloud, role, spec).await?;
        self.wait_ready(role).await
    }

    /// Start an update of the stack of `role`.
    pub async fn update(&mut self, role: &str, update: &StackUpdate) -> Result<(), BackendError> {
        let stack = self.stack_ref(role)?;
        let backend = self.record_backend(role)?.clone();
        if self.plan.is_some() {
            let resources = if stack.id == PREVIEW_ID {
                Vec::new() // created by this very preview
            } else {
                backend
                    .preview_update(&self.credentials, &stack, update)
                    .await?
                    .resources
            };
            let cloud = self.get(role).and_then(|r| r.cloud.clone());
            self.plan_step(StackPlan {
                role: role.to_string(),
                name: stack.name,
                action: ChangeAction::Update,
                cloud,
                resources,
            });
            return Ok(());
        }
        backend.update(&self.credentials, &stack, update).await
    }

    /// Update the stack of `role` and wait until it is complete
    /// ([`Stacks::wait_ready`]).
    pub async fn update_ready(
        &mut self,
        role: &str,
        update: &StackUpdate,
    ) -> Result<StackInfo, BackendError> {
        self.update(role, update).await?;
        self.wait_ready(role).await
    }

    /// Read the stack of `role` from the backend now and record it.
    pub async fn refresh(&mut self, role: &str) -> Result<StackInfo, BackendError> {
        let stack = self.stack_ref(role)?;
        if stack.id == PREVIEW_ID {
            if let Some(last) = self.get(role).and_then(|r| r.last.clone()) {
                return Ok(last);
            }
        }
        let info = self
            .record_backend(role)?
            .get(&self.credentials, &stack)
            .await?;
        self.record_info(role, &stack, &info);
        Ok(info)
    }

    /// Delete the stack of `role` and wait until it is gone. A stack the
    /// backend no longer knows counts as deleted.
    pub async fn delete(&mut self, role: &str) -> Result<(), BackendError> {
        if self.get(role).is_none() {
            return Ok(());
        }
        let backend = self.record_backend(role)?.clone();
        if self.plan.is_some() {
            let record = self.get(role).cloned();
            let resources = match record.as_ref().and_then(|r| r.stack.clone()) {
                Some(stack) if stack.id != PREVIEW_ID => backend
                    .resources(&self.credentials, &stack)
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .map(|r| ResourceChange {
                        resource_name: r.resource_name,
                        resource_type: r.resource_type,
                        action: ChangeAction::Delete,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            if let Some(r) = record {
                self.plan_step(StackPlan {
                    role: role.to_string(),
                    name: r.name,
                    action: ChangeAction::Delete,
                    cloud: r.cloud,
                    resources,
                });
            }
            self.records.retain(|r| r.role != role);
            return Ok(());
        }
        let stack = match self.get(role) {
            None => return Ok(()),
            Some(StackRecord { stack: Some(s), .. }) => s.clone(),
            Some(StackRecord { name, .. }) => {
                // Created but never acknowledged (crash): find it by name.
                match backend.find(&self.credentials, name).await? {
                    Some(s) => s,
                    None => {
                        self.remove(role);
                        return Ok(());
                    }
                }
            }
        };
        match backend.delete(&self.credentials, &stack).await {
            Ok(()) => {}
            Err(BackendError::NotFound { .. }) => {
                self.remove(role);
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        match self.wait(role).await {
            Ok(info) if info.status.is_failed() => Err(BackendError::StackFailed {
                stack: stack.name,
                status: info.status,
                reason: info.status_reason,
            }),
            Ok(_) | Err(BackendError::NotFound { .. }) => {
                self.remove(role);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Delete every stack, last created first.
    pub async fn delete_all(&mut self) -> Result<(), BackendError> {
        let roles: Vec<String> = self.records.iter().rev().map(|r| r.role.clone()).collect();
        for role in roles {
            self.delete(&role).await?;
        }
        Ok(())
    }
}

/// `info` if the stack ended ready, else why not.
fn ready(info: StackInfo) -> Result<StackInfo, BackendError> {
    if info.status.is_ready() {
        Ok(info)
    } else {
        Err(BackendError::StackFailed {
            stack: info.stack.name,
            status: info.status,
            reason: info.status_reason,
        })
    }
}

//! Stacks as Heat knows them, and the [`StackBackend`] trait that runs them.
//!
//! The shapes follow the Heat v1 API (`stack_status`, `outputs` with
//! `output_key`/`output_value`, `******` for hidden parameters) so that the
//! embedded engine and a real Heat are interchangeable behind the trait.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::Credentials;

/// Everything needed to create a stack (the body of `POST /v1/{project}/stacks`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct StackSpec {
    /// Stack name; Heat wants `[a-zA-Z][a-zA-Z0-9_.-]*`, unique per project.
    pub name: String,
    /// The HOT template as YAML or JSON text.
    pub template: String,
    /// Parameter values as strings, as Heat's API receives them.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// An environment document (YAML or JSON text), already merged.
    #[serde(default)]
    pub environment: Option<String>,
    /// The `files` map: `get_file` targets and nested templates by name.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Stack timeout in minutes.
    #[serde(default)]
    pub timeout_mins: Option<u32>,
    /// Leave a failed stack as it is instead of rolling it back.
    #[serde(default)]
    pub disable_rollback: bool,
    /// Heat stack tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl fmt::Debug for StackSpec {
    /// Parameter values may be hidden ones (passwords): only keys are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackSpec")
            .field("name", &self.name)
            .field("template_bytes", &self.template.len())
            .field("parameters", &self.parameters.keys().collect::<Vec<_>>())
            .field("environment", &self.environment.as_ref().map(String::len))
            .field("files", &self.files.keys().collect::<Vec<_>>())
            .field("timeout_mins", &self.timeout_mins)
            .field("disable_rollback", &self.disable_rollback)
            .field("tags", &self.tags)
            .finish()
    }
}

/// A change to an existing stack.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub enum StackUpdate {
    /// `PATCH`: keep the template and every parameter not given here.
    Patch {
        /// Parameters to change.
        parameters: BTreeMap<String, String>,
    },
    /// `PUT`: a new template; parameters not given fall back to defaults.
    Replace {
        /// The new template text.
        template: String,
        /// All parameter values.
        parameters: BTreeMap<String, String>,
        /// The new environment, if any.
        environment: Option<String>,
        /// The new files map.
        files: BTreeMap<String, String>,
        /// New timeout, if any.
        timeout_mins: Option<u32>,
    },
}

impl fmt::Debug for StackUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StackUpdate::Patch { parameters } => f
                .debug_struct("Patch")
                .field("parameters", &parameters.keys().collect::<Vec<_>>())
                .finish(),
            StackUpdate::Replace {
                template,
                parameters,
                files,
                ..
            } => f
                .debug_struct("Replace")
                .field("template_bytes", &template.len())
                .field("parameters", &parameters.keys().collect::<Vec<_>>())
                .field("files", &files.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// Names a stack the way Heat's URLs do: `stacks/{name}/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StackRef {
    /// Stack name.
    pub name: String,
    /// Stack id (a UUID).
    pub id: String,
}

/// The action part of a Heat status (`CREATE` in `CREATE_COMPLETE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum StackAction {
    Init,
    Create,
    Update,
    Delete,
    Rollback,
    Suspend,
    Resume,
    Adopt,
    Snapshot,
    Check,
    Restore,
}

/// The state part of a Heat status (`COMPLETE` in `CREATE_COMPLETE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum StackState {
    InProgress,
    Complete,
    Failed,
}

/// A Heat `stack_status` such as `CREATE_IN_PROGRESS`, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StackStatus {
    /// What Heat is doing or did.
    pub action: StackAction,
    /// How far it got.
    pub state: StackState,
}

impl StackStatus {
    /// Shorthand constructor.
    pub const fn new(action: StackAction, state: StackState) -> Self {
        StackStatus { action, state }
    }
    /// Still moving: poll again.
    pub fn in_progress(&self) -> bool {
        self.state == StackState::InProgress
    }
    /// The MCN readiness rule: `CREATE_COMPLETE` or `UPDATE_COMPLETE`
    /// (also any other `*_COMPLETE` except delete and rollback).
    pub fn is_ready(&self) -> bool {
        self.state == StackState::Complete
            && !matches!(self.action, StackAction::Delete | StackAction::Rollback)
    }
    /// `*_FAILED`, or a completed rollback (the create or update failed).
    pub fn is_failed(&self) -> bool {
        self.state == StackState::Failed
            || (self.action == StackAction::Rollback && self.state == StackState::Complete)
    }
    /// Rank for "least successful of several stacks": failed < in progress < complete.
    pub fn rank(&self) -> u8 {
        if self.is_failed() {
            0
        } else if self.in_progress() {
            1
        } else {
            2
        }
    }
}

impl fmt::Display for StackStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = match self.action {
            StackAction::Init => "INIT",
            StackAction::Create => "CREATE",
            StackAction::Update => "UPDATE",
            StackAction::Delete => "DELETE",
            StackAction::Rollback => "ROLLBACK",
            StackAction::Suspend => "SUSPEND",
            StackAction::Resume => "RESUME",
            StackAction::Adopt => "ADOPT",
            StackAction::Snapshot => "SNAPSHOT",
            StackAction::Check => "CHECK",
            StackAction::Restore => "RESTORE",
        };
        let s = match self.state {
            StackState::InProgress => "IN_PROGRESS",
            StackState::Complete => "COMPLETE",
            StackState::Failed => "FAILED",
        };
        write!(f, "{a}_{s}")
    }
}

/// `stack_status` text that is not `<ACTION>_<STATE>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Heat stack status: {0:?}")]
pub struct BadStatus(pub String);

impl FromStr for StackStatus {
    type Err = BadStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadStatus(s.to_string());
        let (action, state) = if let Some(a) = s.strip_suffix("_IN_PROGRESS") {
            (a, StackState::InProgress)
        } else if let Some(a) = s.strip_suffix("_COMPLETE") {
            (a, StackState::Complete)
        } else if let Some(a) = s.strip_suffix("_FAILED") {
            (a, StackState::Failed)
        } else {
            return Err(bad());
        };
        let action = match action {
            "INIT" => StackAction::Init,
            "CREATE" => StackAction::Create,
            "UPDATE" => StackAction::Update,
            "DELETE" => StackAction::Delete,
            "ROLLBACK" => StackAction::Rollback,
            "SUSPEND" => StackAction::Suspend,
            "RESUME" => StackAction::Resume,
            "ADOPT" => StackAction::Adopt,
            "SNAPSHOT" => StackAction::Snapshot,
            "CHECK" => StackAction::Check,
            "RESTORE" => StackAction::Restore,
            _ => return Err(bad()),
        };
        Ok(StackStatus { action, state })
    }
}

impl Serialize for StackStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StackStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One stack output (`outputs[]` in Heat's stack body).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StackOutput {
    /// `output_key`.
    pub output_key: String,
    /// `output_value` (any JSON; `null` when not resolvable).
    #[serde(default)]
    pub output_value: serde_json::Value,
    /// `description`.
    #[serde(default)]
    pub description: Option<String>,
    /// `output_error`, when Heat could not compute the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_error: Option<String>,
}

/// What `GET /stacks/{name}/{id}` tells about a stack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StackInfo {
    /// Name and id.
    #[serde(flatten)]
    pub stack: StackRef,
    /// `stack_status`.
    pub status: StackStatus,
    /// `stack_status_reason`.
    #[serde(default)]
    pub status_reason: String,
    /// Outputs; meaningful once the stack is `*_COMPLETE`.
    #[serde(default)]
    pub outputs: Vec<StackOutput>,
    /// Parameter values as Heat reports them (hidden ones as `******`).
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// `creation_time` (ISO 8601).
    #[serde(default)]
    pub creation_time: Option<String>,
    /// `updated_time` (ISO 8601).
    #[serde(default)]
    pub updated_time: Option<String>,
    /// `description` of the template.
    #[serde(default)]
    pub description: Option<String>,
    /// Stack tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl StackInfo {
    /// The value of output `key`, if the stack has it.
    pub fn output(&self, key: &str) -> Option<&serde_json::Value> {
        self.outputs
            .iter()
            .find(|o| o.output_key == key)
            .map(|o| &o.output_value)
    }
}

/// One row of `GET .../resources`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceInfo {
    /// `resource_name`.
    pub resource_name: String,
    /// `resource_type`.
    pub resource_type: String,
    /// `physical_resource_id` (empty until created).
    #[serde(default)]
    pub physical_resource_id: String,
    /// `resource_status`, e.g. `CREATE_COMPLETE`.
    pub resource_status: String,
    /// `resource_status_reason`.
    #[serde(default)]
    pub resource_status_reason: String,
    /// `required_by`: names of resources that depend on this one.
    #[serde(default)]
    pub required_by: Vec<String>,
}

/// One row of `GET .../events`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventInfo {
    /// Event id.
    pub id: String,
    /// `event_time` (ISO 8601).
    pub event_time: String,
    /// `resource_name` (the stack's own name for stack events).
    pub resource_name: String,
    /// `physical_resource_id`.
    #[serde(default)]
    pub physical_resource_id: String,
    /// `resource_status`.
    pub resource_status: String,
    /// `resource_status_reason`.
    #[serde(default)]
    pub resource_status_reason: String,
}

/// Body of `POST /v1/{project}/validate`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ValidateRequest {
    /// Template text.
    pub template: String,
    /// Environment text.
    #[serde(default)]
    pub environment: Option<String>,
    /// Files map.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Parameter values (optional, as with Heat).
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

/// Heat's answer to a successful validate: the parameter schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidateInfo {
    /// `Description`.
    #[serde(default)]
    pub description: Option<String>,
    /// `Parameters`: name → Heat's parameter schema object.
    #[serde(default)]
    pub parameters: BTreeMap<String, serde_json::Value>,
}

/// What a create or an update would do to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeAction {
    /// The resource would be created.
    Create,
    /// It would be updated in place.
    Update,
    /// It would be replaced (deleted and created again).
    Replace,
    /// It would be deleted.
    Delete,
    /// It would stay as it is.
    Unchanged,
}

impl ChangeAction {
    /// The word used in renderings.
    pub fn as_str(&self) -> &'static str {
        match self {
            ChangeAction::Create => "create",
            ChangeAction::Update => "update",
            ChangeAction::Replace => "replace",
            ChangeAction::Delete => "delete",
            ChangeAction::Unchanged => "unchanged",
        }
    }
}

/// One resource of a preview.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceChange {
    /// `resource_name`.
    pub resource_name: String,
    /// `resource_type`.
    pub resource_type: String,
    /// What would happen to it.
    pub action: ChangeAction,
}

/// What a create or an update would do to a stack (Heat's stack preview
/// and update preview), without doing it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackPreview {
    /// Every resource and what would happen to it, in name order.
    pub resources: Vec<ResourceChange>,
}

/// How long and how to wait for a stack to leave `*_IN_PROGRESS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitOptions {
    /// Give up (with [`BackendError::Timeout`]) after this long.
    pub timeout: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            timeout: Duration::from_secs(3600),
        }
    }
}

/// Why a backend call failed. The server maps these to HTTP statuses in one
/// place: `Rejected` → 400, `NotFound` → 404, `Conflict` → 409,
/// `Unauthorized` → 401, `Forbidden` → 403, `BadGateway` → 502,
/// `Unavailable` → 503, `Timeout` → 504, `StackFailed` → 502 (when it
/// happens while the caller waits; otherwise the operation records it).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    /// Heat (or the embedded engine) refused the template or parameters.
    #[error("Heat rejected the request ({kind}): {message}")]
    Rejected {
        /// Heat's error type, e.g. `StackValidationFailed`.
        kind: String,
        /// Heat's message, e.g. `Parameter 'flavor' is invalid: ...`.
        message: String,
    },
    /// The stack (or project) does not exist.
    #[error("{message}")]
    NotFound {
        /// What was not found.
        message: String,
    },
    /// A name clash or an operation already in progress.
    #[error("conflict ({kind}): {message}")]
    Conflict {
        /// Heat's error type, e.g. `StackExists`.
        kind: String,
        /// Heat's message.
        message: String,
    },
    /// The token was refused.
    #[error("not authenticated: {message}")]
    Unauthorized {
        /// Why.
        message: String,
    },
    /// The token is valid but may not do this.
    #[error("forbidden: {message}")]
    Forbidden {
        /// Why.
        message: String,
    },
    /// Heat answered something we cannot use (5xx other than 503, bad JSON).
    #[error("Heat answered badly (HTTP {status}): {message}")]
    BadGateway {
        /// HTTP status Heat sent (0 when the body was the problem).
        status: u16,
        /// What was wrong.
        message: String,
    },
    /// Heat cannot be reached (connection refused, 503).
    #[error("Heat is unavailable: {message}")]
    Unavailable {
        /// Why.
        message: String,
    },
    /// A call or a wait took too long.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What we waited for.
        what: String,
        /// How long we waited.
        after: Duration,
    },
    /// A stack operation ended `*_FAILED` (or rolled back): the stack, its
    /// status and Heat's reason.
    #[error("stack {stack} ended {status}: {reason}")]
    StackFailed {
        /// The stack name.
        stack: String,
        /// Its final status, e.g. `CREATE_FAILED`.
        status: StackStatus,
        /// Heat's `stack_status_reason`.
        reason: String,
    },
    /// A bug or a local failure (journal write, ...), not the caller's fault.
    #[error("internal backend error: {0}")]
    Internal(String),
}

/// How stacks run. Implemented by the embedded engine and by the OpenStack
/// Heat client; object safe, so the server holds an `Arc<dyn StackBackend>`.
///
/// Every call acts for `creds.project`. Calls are safe to issue concurrently.
#[async_trait]
pub trait StackBackend: Send + Sync + 'static {
    /// `"embedded"` or `"openstack"`, for logs and `/metrics`.
    fn kind(&self) -> &'static str;

    /// Start creating a stack; returns once the backend accepted it
    /// (status `CREATE_IN_PROGRESS`).
    async fn create(&self, creds: &Credentials, spec: &StackSpec)
        -> Result<StackRef, BackendError>;

    /// The stack's current status, reason and outputs.
    async fn get(&self, creds: &Credentials, stack: &StackRef) -> Result<StackInfo, BackendError>;

    /// Look a stack up by name (restart recovery when only the name was
    /// journaled). `Ok(None)` when no live stack has that name.
    async fn find(&self, creds: &Credentials, name: &str)
        -> Result<Option<StackRef>, BackendError>;

    /// Start an update (PATCH or PUT); returns once accepted.
    async fn update(
        &self,
        creds: &Credentials,
        stack: &StackRef,
        update: &StackUpdate,
    ) -> Result<(), BackendError>;

    /// Start deleting; returns once accepted. Deleting a stack that is
    /// already gone is `NotFound`.
    async fn delete(&self, creds: &Credentials, stack: &StackRef) -> Result<(), BackendError>;

    /// The stack's resources.
    async fn resources(
        &self,
        creds: &Credentials,
        stack: &StackRef,
    ) -> Result<Vec<ResourceInfo>, BackendError>;

    /// The stack's events, oldest first.
    async fn events(
        &self,
        creds: &Credentials,
        stack: &StackRef,
    ) -> Result<Vec<EventInfo>, BackendError>;

    /// Validate a template as `POST /validate` does.
    async fn validate(
        &self,
        creds: &Credentials,
        request: &ValidateRequest,
    ) -> Result<ValidateInfo, BackendError>;

    /// Cancel the operation in progress on the stack: an update is rolled
    /// back to what the stack was (Heat's `cancel_update`), a create stops
    /// where it is and the stack ends `CREATE_FAILED` (Heat's
    /// `cancel_without_rollback`). A stack not in progress is `Conflict`.
    async fn cancel(&self, creds: &Credentials, stack: &StackRef) -> Result<(), BackendError>;

    /// What creating `spec` would create, without creating it (Heat's
    /// `POST /stacks/preview`); the same checks as a create.
    async fn preview_create(
        &self,
        creds: &Credentials,
        spec: &StackSpec,
    ) -> Result<StackPreview, BackendError>;

    /// What `update` would change on the stack, without changing it
    /// (Heat's `PUT|PATCH /stacks/{name}/{id}/preview`).
    async fn preview_update(
        &self,
        creds: &Credentials,
        stack: &StackRef,
        update: &StackUpdate,
    ) -> Result<StackPreview, BackendError>;

    /// Subscribe to the stack's state. The receiver holds the latest known
    /// [`StackInfo`] and changes whenever the status changes. All watchers of
    /// one stack share one poller (or, for the embedded engine, the engine's
    /// own notifications); the poller stops when the stack is no longer in
    /// progress and nobody watches.
    async fn watch(
        &self,
        creds: &Credentials,
        stack: &StackRef,
    ) -> Result<watch::Receiver<StackInfo>, BackendError>;

    /// Wait until the stack is no longer `*_IN_PROGRESS` and return its
    /// final info (which may be `*_FAILED`: that is not an `Err`).
    async fn wait(
        &self,
        creds: &Credentials,
        stack: &StackRef,
        options: &WaitOptions,
    ) -> Result<StackInfo, BackendError> {
        let mut rx = self.watch(creds, stack).await?;
        let deadline = tokio::time::Instant::now() + options.timeout;
        loop {
            {
                let info = rx.borrow_and_update();
                if !info.status.in_progress() {
                    return Ok(info.clone());
                }
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => {
                    // The poller ended (stack gone, engine unreachable, or
                    // backend shutting down): one direct read tells which.
                    let info = self.get(creds, stack).await?;
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
                        after: options.timeout,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_every_heat_status() {
        for a in [
            "INIT", "CREATE", "UPDATE", "DELETE", "ROLLBACK", "SUSPEND", "RESUME", "ADOPT",
            "SNAPSHOT", "CHECK", "RESTORE",
        ] {
            for s in ["IN_PROGRESS", "COMPLETE", "FAILED"] {
                let text = format!("{a}_{s}");
                let st: StackStatus = text.parse().unwrap();
                assert_eq!(st.to_string(), text);
            }
        }
        for bad in ["CREATE_DONE", "", "MELT_COMPLETE"] {
            let e = bad.parse::<StackStatus>().unwrap_err();
            assert_eq!(e, BadStatus(bad.to_string()), "the text is named");
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn readiness_rule_matches_mcn() {
        let p = |s: &str| s.parse::<StackStatus>().unwrap();
        assert!(p("CREATE_COMPLETE").is_ready());
        assert!(p("UPDATE_COMPLETE").is_ready());
        assert!(!p("DELETE_COMPLETE").is_ready());
        assert!(p("ROLLBACK_COMPLETE").is_failed());
        assert!(p("CREATE_FAILED").is_failed());
        assert!(p("CREATE_IN_PROGRESS").in_progress());
        assert!(p("CREATE_FAILED").rank() < p("UPDATE_IN_PROGRESS").rank());
        assert!(p("UPDATE_IN_PROGRESS").rank() < p("CREATE_COMPLETE").rank());
    }

    #[test]
    fn spec_debug_hides_parameter_values() {
        let mut spec = StackSpec {
            name: "s".into(),
            template: "heat_template_version: 2018-08-31".into(),
            parameters: BTreeMap::new(),
            environment: None,
            files: BTreeMap::new(),
            timeout_mins: None,
            disable_rollback: false,
            tags: vec![],
        };
        spec.parameters
            .insert("db_password".into(), "hunter2".into());
        let text = format!("{spec:?}");
        assert!(text.contains("db_password"));
        assert!(!text.contains("hunter2"));
    }
}

//! The orchestrator-plugin trait: the MCN service-orchestrator lifecycle
//! (`design`, `deploy`, `provision`, `update`, `notify`, `dispose`) plus
//! custom actions, for one service type (one OCCI kind), as **one
//! dispatch**: every operation is an [`Operation`], checked by
//! [`Orchestrator::validate`] before it is accepted and carried out by
//! [`Orchestrator::run`].

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Attributes, BackendError, Credentials, KindSpec, StackInfo, StackRecord, Stacks};

/// The MCN service scheme: kind `orchestrator`, actions `deploy`, `provision`.
pub const MCN_SERVICE_SCHEME: &str = "http://schemas.mobile-cloud-networking.eu/occi/service#";

/// How far an instance's lifecycle has come (the last step that succeeded).
/// An operation in flight and the last failure are kept beside it by the
/// server; a failed deploy leaves the phase at `Initialised`, so the caller
/// can deploy again or dispose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// `design` done (after `PUT`/`POST` create): `deploy` applies.
    Initialised,
    /// `deploy` done (stacks complete): `provision` applies.
    Deployed,
    /// `provision` done: the service runs.
    Provisioned,
}

impl Phase {
    /// The word used in renderings and messages.
    pub fn as_str(&self) -> &'static str {
        match self {
            Phase::Initialised => "initialised",
            Phase::Deployed => "deployed",
            Phase::Provisioned => "provisioned",
        }
    }
}

/// A lifecycle operation: what the server asks a plugin to check
/// ([`Orchestrator::validate`]) and then to do ([`Orchestrator::run`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "operation", rename_all = "lowercase")]
pub enum Operation {
    /// Instance creation (`PUT` or `POST` to the collection): MCN `design`.
    /// No stacks yet.
    Design,
    /// `?action=deploy`: create the service's stacks and wait until they
    /// are complete. Called only in [`Phase::Initialised`].
    Deploy,
    /// `?action=provision`: configure the deployed service. Called only in
    /// [`Phase::Deployed`].
    Provision,
    /// `POST` with attributes and no action, once deployed: the changed
    /// attributes (already merged into [`LifecycleCtx::attributes`]).
    Update {
        /// The attributes whose values changed, with their new values.
        changed: Attributes,
    },
    /// A custom action declared in the kind.
    Action {
        /// Action term.
        term: String,
        /// `X-OCCI-Attribute` parameters of the call, checked against the
        /// action's declared attributes.
        parameters: Attributes,
    },
    /// `?action=notify`: a run-time notification (a monitoring alarm, ...).
    Notify {
        /// The notification's attributes, as sent.
        event: Attributes,
    },
    /// `DELETE`: tear everything down (MCN `dispose`).
    Dispose,
}

impl Operation {
    /// [`Operation::Update`] with these changed attributes.
    pub fn update(changed: Attributes) -> Self {
        Operation::Update { changed }
    }

    /// [`Operation::Action`] `term` with these parameters.
    pub fn action(term: impl Into<String>, parameters: Attributes) -> Self {
        Operation::Action {
            term: term.into(),
            parameters,
        }
    }

    /// [`Operation::Notify`] with this event.
    pub fn notify(event: Attributes) -> Self {
        Operation::Notify { event }
    }

    /// Short name for logs, metrics and messages (`deploy`, `update`, the
    /// action's term, ...).
    pub fn name(&self) -> &str {
        match self {
            Operation::Design => "design",
            Operation::Deploy => "deploy",
            Operation::Provision => "provision",
            Operation::Update { .. } => "update",
            Operation::Action { term, .. } => term,
            Operation::Notify { .. } => "notify",
            Operation::Dispose => "dispose",
        }
    }
}

/// Where a plugin came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum PluginSource {
    /// Built into the binary (a crate under `plugins/`).
    Compiled,
    /// A manifest folder.
    Declarative {
        /// The folder holding `plugin.yaml`.
        path: String,
    },
    /// A service orchestrator elsewhere, reached over HTTP.
    Remote {
        /// Its base URL.
        url: String,
    },
}

/// What the registry and `/-/` know about a plugin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Registry name (unique), e.g. `ims`.
    pub name: String,
    /// Plugin version (its own, not occi-so's).
    pub version: String,
    /// One line on what it deploys.
    #[serde(default)]
    pub description: Option<String>,
    /// Where it came from.
    pub source: PluginSource,
    /// Its OCCI kind.
    pub kind: KindSpec,
}

/// What kind of refusal a service the plugin relies on gave (a remote
/// service orchestrator's 4xx, in words: the seam carries no HTTP status;
/// the server maps each to its own status in one place).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The request is malformed or breaks a rule.
    Invalid,
    /// The caller is not authenticated.
    Unauthenticated,
    /// The caller may not do this.
    Forbidden,
    /// The thing named does not exist.
    NotFound,
    /// It clashes with the current state.
    Conflict,
    /// The request is too large.
    TooLarge,
}

impl Refusal {
    /// The word used in messages.
    pub fn as_str(&self) -> &'static str {
        match self {
            Refusal::Invalid => "invalid",
            Refusal::Unauthenticated => "unauthenticated",
            Refusal::Forbidden => "forbidden",
            Refusal::NotFound => "not found",
            Refusal::Conflict => "conflict",
            Refusal::TooLarge => "too large",
        }
    }
}

/// Why a plugin call failed. The server maps, in one place:
/// `InvalidAttribute`, `Invalid`, `NotApplicable` → 400; `Refused` → the
/// refusal's own 4xx; `Backend` → the backend's mapping; `Upstream` → 502;
/// `Failed` → the operation is recorded as failed (500 only if it happened
/// synchronously).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PluginError {
    /// One attribute's value is wrong.
    #[error("attribute '{name}': {message}")]
    InvalidAttribute {
        /// The attribute name.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// The request is wrong as a whole (e.g. a rendered template fails validation).
    #[error("{0}")]
    Invalid(String),
    /// The action does not apply now.
    #[error("action '{action}' does not apply: {message}")]
    NotApplicable {
        /// The action term.
        action: String,
        /// Why, and which actions do.
        message: String,
    },
    /// A service the plugin relies on (a remote service orchestrator)
    /// refused the request.
    #[error("{service} refused the request ({}): {message}", .refusal.as_str())]
    Refused {
        /// The service, e.g. `remote orchestrator http://so.example:8051`.
        service: String,
        /// What kind of refusal.
        refusal: Refusal,
        /// Its message.
        message: String,
    },
    /// A service the plugin relies on failed or could not be reached.
    #[error("{service} failed: {message}")]
    Upstream {
        /// The service.
        service: String,
        /// What went wrong.
        message: String,
    },
    /// A stack backend call failed (including a stack that ended
    /// `*_FAILED`: [`BackendError::StackFailed`]).
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The operation failed at run time for a reason of the plugin's own.
    #[error("{0}")]
    Failed(String),
}

impl PluginError {
    /// Shorthand for [`PluginError::InvalidAttribute`].
    pub fn attribute(name: impl Into<String>, message: impl Into<String>) -> Self {
        PluginError::InvalidAttribute {
            name: name.into(),
            message: message.into(),
        }
    }
}

/// A plugin's private, persisted state of one instance: any serde type,
/// kept by the server as JSON (in the journal) and handed back on every
/// call. `null` (a new instance) reads as the type's `Default`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PluginState(serde_json::Value);

impl PluginState {
    /// The state as `T` (`T::default()` while nothing was stored). A state
    /// of another shape (a plugin's older version) is a
    /// [`PluginError::Failed`] naming the field.
    pub fn get<T: DeserializeOwned + Default>(&self) -> Result<T, PluginError> {
        if self.0.is_null() {
            return Ok(T::default());
        }
        serde_path_to_error::deserialize(&self.0).map_err(|e| {
            PluginError::Failed(format!(
                "the plugin state of this instance cannot be read (at {}): {}",
                e.path(),
                e.inner()
            ))
        })
    }

    /// Store `value` as the state (committed when the operation ends).
    pub fn set<T: Serialize>(&mut self, value: &T) -> Result<(), PluginError> {
        self.0 = serde_json::to_value(value)
            .map_err(|e| PluginError::Failed(format!("the plugin state cannot be stored: {e}")))?;
        Ok(())
    }

    /// The state as stored (JSON).
    pub fn as_json(&self) -> &serde_json::Value {
        &self.0
    }

    /// Whether nothing was stored yet.
    pub fn is_empty(&self) -> bool {
        self.0.is_null()
    }
}

impl From<serde_json::Value> for PluginState {
    fn from(v: serde_json::Value) -> Self {
        PluginState(v)
    }
}

/// Everything one lifecycle call may read and change. Owned by the task
/// that runs the call; the server commits `attributes` and `state` when the
/// call returns, while [`Stacks`] records stack changes as they happen.
pub struct LifecycleCtx {
    /// Instance id (the last path segment, e.g. `default` or a UUID).
    pub instance_id: String,
    /// Instance path, e.g. `/orchestrator/default`.
    pub location: String,
    /// The caller's credentials.
    pub credentials: Credentials,
    /// Current attribute values, defaults applied, secrets included
    /// (never render or log these without the kind's `secret` flags).
    pub attributes: Attributes,
    /// The plugin's private, persisted state.
    pub state: PluginState,
    /// The provided mixins applied to the instance (an `os_tpl` image, a
    /// `resource_tpl` flavor), as their providers describe them now.
    pub mixins: Vec<crate::MixinSpec>,
    /// The instance's stacks.
    pub stacks: Stacks,
}

impl LifecycleCtx {
    /// What an operation does when a plugin has nothing of its own for it:
    /// `design`, `provision` and `notify` do nothing; `dispose` deletes
    /// every stack, last created first; a custom action is refused as not
    /// defined; `deploy` and `update` fail (a plugin must say how it
    /// deploys and updates).
    pub async fn default_run(&mut self, plugin: &str, op: &Operation) -> Result<(), PluginError> {
        match op {
            Operation::Design | Operation::Provision | Operation::Notify { .. } => Ok(()),
            Operation::Dispose => Ok(self.stacks.delete_all().await?),
            Operation::Action { term, .. } => Err(PluginError::NotApplicable {
                action: term.clone(),
                message: format!("{plugin} defines no action '{term}'"),
            }),
            Operation::Deploy | Operation::Update { .. } => Err(PluginError::Failed(format!(
                "plugin {plugin} does not implement {}",
                op.name()
            ))),
        }
    }
}

/// An instance as `GET` reads it: what [`Orchestrator::state`] may look at.
#[derive(Clone, Copy, Debug)]
pub struct InstanceView<'a> {
    /// Current attribute values (secrets included; never render them).
    pub attributes: &'a Attributes,
    /// The stack records the server keeps (last known status and outputs).
    pub stacks: &'a [StackRecord],
    /// The plugin's state.
    pub state: &'a PluginState,
}

/// What `GET` on an instance shows beyond the caller's own attributes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StateReport {
    /// `occi.mcn.stack.id`, `occi.mcn.stack.state`, one per stack output, ...
    pub attributes: Attributes,
}

impl StateReport {
    /// The MCN state of a set of stacks: `occi.mcn.stack.id` (one id, or
    /// `role:id` pairs joined by `,`), `occi.mcn.stack.state` (Heat's raw
    /// status; the least successful of several), and every output of every
    /// complete stack as an attribute. Before any stack exists the state is
    /// `uninitialized` and the id `N/A`, as MCN SOs report.
    pub fn from_stacks(records: &[StackRecord]) -> Self {
        let mut attributes = Attributes::new();
        let infos: Vec<(&StackRecord, Option<&StackInfo>)> =
            records.iter().map(|r| (r, r.last.as_ref())).collect();
        let id = match records {
            [] => "N/A".to_string(),
            [one] => one
                .stack
                .as_ref()
                .map(|s| s.id.clone())
                .unwrap_or_else(|| "N/A".into()),
            many => many
                .iter()
                .map(|r| {
                    let id = r.stack.as_ref().map(|s| s.id.as_str()).unwrap_or("N/A");
                    format!("{}:{}", r.role, id)
                })
                .collect::<Vec<_>>()
                .join(","),
        };
        let state = infos
            .iter()
            .map(|(_, info)| match info {
                Some(i) => (i.status.rank(), i.status.to_string()),
                None => (1, "CREATE_IN_PROGRESS".to_string()),
            })
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, s)| s)
            .unwrap_or_else(|| "uninitialized".to_string());
        attributes.insert("occi.mcn.stack.id".into(), id.into());
        attributes.insert("occi.mcn.stack.state".into(), state.into());
        for (_, info) in infos {
            if let Some(info) = info {
                if info.status.in_progress() {
                    continue;
                }
                for o in &info.outputs {
                    if !o.output_value.is_null() {
                        attributes.insert(o.output_key.clone(), o.output_value.clone());
                    }
                }
            }
        }
        StateReport { attributes }
    }
}

/// One service type's orchestrator. Small, async and object safe (the
/// registry holds `Arc<dyn Orchestrator>`), like tower's `Service`: the
/// lifecycle is one [`Operation`] enum and the kind's schema is data
/// ([`PluginInfo`]).
///
/// The server guarantees: attributes were checked against the kind
/// (types, required, immutable, bounds, patterns) before any call; every
/// operation was [`validate`](Orchestrator::validate)d before it was accepted;
/// only one operation per instance runs at a time; `deploy` runs only in
/// [`Phase::Initialised`], `provision` only in [`Phase::Deployed`].
#[async_trait]
pub trait Orchestrator: Send + Sync + 'static {
    /// Name, version, source and OCCI kind.
    fn info(&self) -> &PluginInfo;

    /// Fast, side-effect-free check of `op` before it is accepted, with the
    /// attributes it would run with (for an update: the merged ones), so a
    /// caller's mistake is a 400 now rather than a failed stack later
    /// (e.g. render the templates with these attributes and validate them).
    async fn validate(&self, op: &Operation, attributes: &Attributes) -> Result<(), PluginError> {
        let _ = (op, attributes);
        Ok(())
    }

    /// Carry out `op`. Use the stacks of `ctx` ([`Stacks::create_ready`],
    /// [`Stacks::update_ready`]: a stack that ends `*_FAILED` is an error
    /// with Heat's reason); what has nothing of its own can fall back to
    /// [`LifecycleCtx::default_run`].
    async fn run(&self, op: &Operation, ctx: &mut LifecycleCtx) -> Result<(), PluginError>;

    /// What `GET` shows. Must be cheap: the default reads the stack
    /// snapshots the server keeps, without calling the backend.
    async fn state(&self, instance: InstanceView<'_>) -> Result<StateReport, PluginError> {
        Ok(StateReport::from_stacks(instance.stacks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Counter {
        n: u32,
    }

    #[test]
    fn state_is_typed_and_defaults_while_empty() {
        let mut s = PluginState::default();
        assert_eq!(s.get::<Counter>().unwrap(), Counter::default());
        s.set(&Counter { n: 3 }).unwrap();
        assert_eq!(s.get::<Counter>().unwrap(), Counter { n: 3 });
        assert_eq!(s.as_json(), &serde_json::json!({"n": 3}));
    }

    #[test]
    fn a_state_of_another_shape_names_the_field() {
        let s = PluginState::from(serde_json::json!({"n": "three"}));
        match s.get::<Counter>().unwrap_err() {
            PluginError::Failed(m) => {
                assert!(m.contains("at n"), "{m}");
                assert!(m.contains("invalid type: string \"three\""), "{m}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn operation_names() {
        assert_eq!(Operation::Deploy.name(), "deploy");
        assert_eq!(
            Operation::Notify {
                event: Attributes::new()
            }
            .name(),
            "notify"
        );
        assert_eq!(
            Operation::Action {
                term: "add_nodes".into(),
                parameters: Attributes::new()
            }
            .name(),
            "add_nodes"
        );
    }

    #[test]
    fn refusals_read_as_words() {
        let e = PluginError::Refused {
            service: "remote orchestrator http://so:8051".into(),
            refusal: Refusal::NotFound,
            message: "no such instance".into(),
        };
        assert_eq!(
            e.to_string(),
            "remote orchestrator http://so:8051 refused the request (not found): no such instance"
        );
    }
}

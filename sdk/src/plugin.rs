//! The orchestrator-plugin trait: the MCN service-orchestrator lifecycle
//! (`design`, `deploy`, `provision`, `update`, `dispose`, `state`, `notify`)
//! plus custom actions, for one service type (one OCCI kind).

use async_trait::async_trait;
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

/// A lifecycle operation, as checked by [`Orchestrator::validate`] before
/// the server accepts it.
#[derive(Clone, Debug, PartialEq)]
pub enum Operation {
    /// Instance creation (`PUT` or `POST` to the collection).
    Design,
    /// `?action=deploy`.
    Deploy,
    /// `?action=provision`.
    Provision,
    /// `POST` with attributes and no action: the changed attributes.
    Update(Attributes),
    /// A custom action with its parameters.
    Action {
        /// Action term.
        term: String,
        /// `X-OCCI-Attribute` parameters of the call.
        parameters: Attributes,
    },
    /// `DELETE`.
    Dispose,
}

impl Operation {
    /// Short name for logs, metrics and messages (`deploy`, `update`, ...).
    pub fn name(&self) -> &str {
        match self {
            Operation::Design => "design",
            Operation::Deploy => "deploy",
            Operation::Provision => "provision",
            Operation::Update(_) => "update",
            Operation::Action { term, .. } => term,
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

/// Why a plugin call failed. The server maps: `InvalidAttribute`,
/// `Invalid`, `NotApplicable` → 400; `Backend` → the backend's mapping;
/// `Remote` → the remote status for 4xx, 502 otherwise; `Failed` → the
/// operation is recorded as failed (500 only if it happened synchronously).
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
    /// A stack backend call failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A remote service orchestrator answered with an error.
    #[error("remote orchestrator answered HTTP {status}: {message}")]
    Remote {
        /// Its HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// The operation failed at run time (a stack reached `*_FAILED`, ...).
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

/// Everything one lifecycle call may read and change. Owned by the task
/// that runs the call; the server commits `attributes` and `plugin_state`
/// when the call returns, while [`Stacks`] records stack changes as they
/// happen.
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
    /// The plugin's private, persisted state (JSON; `Null` at first).
    pub plugin_state: serde_json::Value,
    /// The instance's stacks.
    pub stacks: Stacks,
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
/// lifecycle is its methods and the kind's schema is data ([`PluginInfo`]).
///
/// The server guarantees: attributes were checked against the kind
/// (types, required, immutable) before any call; only one lifecycle call
/// per instance runs at a time; `deploy` is called only in
/// [`Phase::Initialised`], `provision` only in [`Phase::Deployed`].
#[async_trait]
pub trait Orchestrator: Send + Sync + 'static {
    /// Name, version, source and OCCI kind.
    fn info(&self) -> &PluginInfo;

    /// Fast, side-effect-free check of an operation before it is accepted,
    /// so a caller's mistake is a 400 now rather than a failed stack later
    /// (e.g. render the templates with these attributes and validate them).
    async fn validate(&self, op: &Operation, attributes: &Attributes) -> Result<(), PluginError> {
        let _ = (op, attributes);
        Ok(())
    }

    /// Initialise a new instance (MCN `design`). No stacks yet.
    async fn design(&self, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        let _ = ctx;
        Ok(())
    }

    /// Create the service's stacks and wait until they are complete.
    async fn deploy(&self, ctx: &mut LifecycleCtx) -> Result<(), PluginError>;

    /// Configure the deployed service (MCN `provision`).
    async fn provision(&self, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        let _ = ctx;
        Ok(())
    }

    /// React to changed attributes (already merged into `ctx.attributes`);
    /// usually re-render and update the stacks. Called only once deployed.
    async fn update(&self, ctx: &mut LifecycleCtx, changed: &Attributes)
        -> Result<(), PluginError>;

    /// Run a custom action declared in the kind.
    async fn action(
        &self,
        ctx: &mut LifecycleCtx,
        term: &str,
        parameters: &Attributes,
    ) -> Result<(), PluginError> {
        let _ = (ctx, parameters);
        Err(PluginError::NotApplicable {
            action: term.to_string(),
            message: format!("{} defines no action '{term}'", self.info().name),
        })
    }

    /// Tear everything down (MCN `dispose`). The default deletes every
    /// stack, last created first, and waits for each.
    async fn dispose(&self, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        ctx.stacks.delete_all().await?;
        Ok(())
    }

    /// What `GET` shows. Must be cheap: the default reads the stack
    /// snapshots the server keeps, without calling the backend.
    async fn state(
        &self,
        attributes: &Attributes,
        stacks: &[StackRecord],
        plugin_state: &serde_json::Value,
    ) -> Result<StateReport, PluginError> {
        let _ = (attributes, plugin_state);
        Ok(StateReport::from_stacks(stacks))
    }

    /// A runtime notification (monitoring alarm, ...): MCN `notify`.
    async fn notify(&self, ctx: &mut LifecycleCtx, event: &Attributes) -> Result<(), PluginError> {
        let _ = (ctx, event);
        Ok(())
    }
}

//! The seam of occi-so.
//!
//! Two small, object-safe async traits meet here, and nothing else:
//!
//! * [`StackBackend`] — *how* stacks run: the embedded engine or a real
//!   OpenStack Heat. It knows nothing of OCCI or plugins.
//! * [`Orchestrator`] — *what* a service deploys: one implementation per
//!   service type (IMS, ESCM, ConPaaS, a declarative manifest, a remote SO).
//!   It never touches HTTP; it works through a [`LifecycleCtx`].
//!
//! The server owns HTTP, OCCI, auth, the per-instance state machine and the
//! journal; it hands each lifecycle call a context whose [`Stacks`] handle
//! records every stack it creates before and after the backend call, so a
//! restart never orphans a cloud stack.

mod attributes;
mod build;
mod credentials;
pub mod files;
mod mixins;
mod plugin;
pub mod seal;
mod stack;
mod stacks;

pub use attributes::{ActionSpec, AttributeSpec, AttributeType, Attributes, KindSpec};
pub use build::{Build, BuildContext, BuildError, ENV_PREFIX};
pub use credentials::{
    tenant_name_problem, Credentials, Secret, TENANT_MAX_LEN, TENANT_RESERVED_CHARS,
};
pub use mixins::{MixinProvider, MixinSpec};
pub use plugin::{
    InstanceView, LifecycleCtx, Operation, Orchestrator, Phase, PluginError, PluginInfo,
    PluginSource, PluginState, Refusal, StateReport, MCN_SERVICE_SCHEME,
};
pub use stack::{
    BackendError, ChangeAction, EventInfo, ResourceChange, ResourceInfo, StackAction, StackBackend,
    StackInfo, StackOutput, StackPreview, StackRef, StackSpec, StackState, StackStatus,
    StackUpdate, ValidateInfo, ValidateRequest, WaitOptions,
};
pub use stacks::{NullSink, StackPlan, StackRecord, StackSink, Stacks};

/// `docs/plugins.md`, compiled: its Rust examples run as doctests of this
/// crate, so the guide cannot drift from the seam.
#[cfg(doctest)]
#[doc = include_str!("../../docs/plugins.md")]
pub struct PluginGuide;

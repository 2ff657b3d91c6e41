//! The embedded stack engine: Heat without a cloud, in process. The
//! zero-setup default backend, and what fast tests run on.
//!
//! ```no_run
//! use occi_so_backend::{EmbeddedBackend, EmbeddedConfig};
//! use occi_so_sdk::StackBackend;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // In memory; or with `state_dir: Some(...)` to keep stacks across restarts.
//! let backend: std::sync::Arc<dyn StackBackend> =
//!     std::sync::Arc::new(EmbeddedBackend::new(EmbeddedConfig::default())?);
//! # Ok(()) }
//! ```
//!
//! It validates and renders templates with the `heat` crate (the same
//! checks, error types and messages as Heat 27), then simulates each
//! resource: stacks and resources move through Heat's states
//! asynchronously (`CREATE_IN_PROGRESS` → `CREATE_COMPLETE`, `*_FAILED`
//! with Heat's reasons, rollback, updates that create, update in place,
//! replace or delete only what changed), resources get plausible ids and
//! attributes (see `kinds`), and outputs are computed from them. What
//! the caller sees (statuses, reasons, parameters, outputs, resources,
//! events, errors) has the shapes and texts a real Heat gives for the same
//! calls; `backend/tests/embedded.rs` runs the same conformance suite as
//! against a real Heat.
//!
//! Modules: [`config`] (the serde configuration) → `engine` (accepting
//! calls, running operations) → `kinds` (per-type simulation) over
//! `state` (the compact per-stack state), `view` (the resolver the heat
//! crate evaluates through), `render` (Heat's JSON shapes), `store` (per
//! project dashmaps), `prepared` (templates parsed once, shared), `pool`
//! (address pools), `journal` (the state dir), `ids` (ids and times).

mod config;
mod engine;
mod ids;
mod journal;
pub(crate) mod kinds;
mod pool;
mod prepared;
mod render;
mod state;
mod store;
mod view;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use occi_so_sdk::{
    BackendError, Credentials, EventInfo, ResourceInfo, StackAction, StackBackend, StackInfo,
    StackPreview, StackRef, StackSpec, StackState as Phase, StackUpdate, ValidateInfo,
    ValidateRequest,
};
use tokio::sync::watch;
use uuid::Uuid;

pub use config::{EmbeddedConfig, NetworkConfig};
pub use journal::JournalError;

use engine::Engine;
use pool::{Pool, Pools};
use state::StackCell;

/// Why an [`EmbeddedBackend`] cannot start.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// A configuration value is wrong.
    #[error("embedded backend configuration: {field}: {message}")]
    Config {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The state dir cannot be used.
    #[error(transparent)]
    State(#[from] JournalError),
}

/// What an [`EmbeddedBackend`] holds, for logs and `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EmbeddedStats {
    /// Stacks known (deleted ones included until forgotten).
    pub stacks: usize,
    /// Of those, with an operation in progress.
    pub in_progress: usize,
    /// Distinct parsed templates shared by those stacks.
    pub templates: usize,
    /// Private-pool addresses in use.
    pub private_addresses: usize,
    /// Floating addresses in use.
    pub floating_addresses: usize,
    /// Stack documents rendered for watchers so far: one per change of a
    /// watched stack, shared by all its watchers.
    pub watch_updates: u64,
}

/// The embedded engine as a [`StackBackend`]. Build it once and share it
/// (`Arc<dyn StackBackend>`); it needs a Tokio runtime for its calls.
pub struct EmbeddedBackend {
    engine: Arc<Engine>,
}

fn not_found(name: &str) -> BackendError {
    BackendError::NotFound {
        message: format!("The Stack ({name}) could not be found."),
    }
}

impl EmbeddedBackend {
    /// An engine with `config`. With `state_dir`, the stacks kept there are
    /// read back (those that were in progress become `*_FAILED` with
    /// Heat's `Engine went down during stack <ACTION>`); without, stacks
    /// live in memory only. Reads files, so call it at start-up.
    pub fn new(config: EmbeddedConfig) -> Result<Self, EmbeddedError> {
        Self::sealed(config, None)
    }

    /// As [`EmbeddedBackend::new`], with the stack files under `state_dir`
    /// sealed by `sealer` (secrets at rest; see [`occi_so_sdk::seal`]).
    pub fn sealed(
        config: EmbeddedConfig,
        sealer: Option<occi_so_sdk::seal::Sealer>,
    ) -> Result<Self, EmbeddedError> {
        let pool = |field: &'static str, n: &NetworkConfig| {
            Pool::new(n).map_err(|e| EmbeddedError::Config {
                field,
                message: e.to_string(),
            })
        };
        let pools = Pools {
            private: pool("private_network", &config.private_network)?,
            floating: pool("floating_network", &config.floating_network)?,
        };
        let journal = match &config.state_dir {
            Some(dir) => Some(journal::Journal::open(dir, sealer)?),
            None => None,
        };
        let engine = Arc::new(Engine {
            config,
            pools,
            templates: prepared::TemplateCache::default(),
            store: store::Store::default(),
            journal,
            watch_renders: Default::default(),
        });
        match &engine.journal {
            Some(j) => {
                let loaded = j.load(&engine.templates)?;
                let n = loaded.len();
                let mut recovered = 0usize;
                for (project, id, name, st) in loaded {
                    if Self::adopt(&engine, &project, id, &name, st) {
                        recovered += 1;
                    }
                }
                tracing::info!(
                    dir = %j.dir().display(),
                    stacks = n,
                    interrupted = recovered,
                    "embedded stack engine: stacks are kept in the state dir"
                );
            }
            None => tracing::info!(
                "embedded stack engine: stacks are kept in memory only (no state_dir): they end with the process"
            ),
        }
        Ok(EmbeddedBackend { engine })
    }

    /// Registers a stack read back from the state dir; true when it was
    /// interrupted by the restart.
    fn adopt(
        engine: &Arc<Engine>,
        project: &str,
        id: Uuid,
        name: &str,
        st: state::StackState,
    ) -> bool {
        let store = &engine.store;
        let project_name = store.project_name(project);
        let interrupted = st.status.state == Phase::InProgress;
        st.tree.walk(&mut |r| kinds::restore(r, &engine.pools));
        let cell = Arc::new(StackCell {
            project: project_name,
            id,
            name: Arc::from(name),
            state: std::sync::Mutex::new(st),
        });
        {
            let mut st = cell.lock();
            engine::recover(engine, &cell, &mut st);
            if interrupted {
                engine::publish(engine, &cell, &mut st);
            }
        }
        let p = store.project(project);
        p.names.insert(cell.name.clone(), id);
        p.stacks.insert(id, cell);
        interrupted
    }

    /// Waits until every change so far is written to the state dir (at
    /// once without one). For tests and orderly shutdowns.
    pub async fn flush(&self) {
        if let Some(j) = &self.engine.journal {
            j.flush().await;
        }
    }

    /// Counts of what it holds.
    pub fn stats(&self) -> EmbeddedStats {
        let all = self.engine.store.all();
        let in_progress = all
            .iter()
            .filter(|c| c.lock().status.state == Phase::InProgress)
            .count();
        EmbeddedStats {
            stacks: all.len(),
            in_progress,
            templates: self.engine.templates.len(),
            private_addresses: self.engine.pools.private.in_use(),
            floating_addresses: self.engine.pools.floating.in_use(),
            watch_updates: self
                .engine
                .watch_renders
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    fn cell(&self, creds: &Credentials, stack: &StackRef) -> Result<Arc<StackCell>, BackendError> {
        let id = Uuid::parse_str(&stack.id).map_err(|_| not_found(&stack.name))?;
        let cell = self
            .engine
            .store
            .get(&creds.project, &id)
            .ok_or_else(|| not_found(&stack.name))?;
        if *cell.name != *stack.name {
            return Err(not_found(&stack.name));
        }
        Ok(cell)
    }
}

#[async_trait]
impl StackBackend for EmbeddedBackend {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn create(
        &self,
        creds: &Credentials,
        spec: &StackSpec,
    ) -> Result<StackRef, BackendError> {
        engine::create(&self.engine, creds, spec)
    }

    async fn get(&self, creds: &Credentials, stack: &StackRef) -> Result<StackInfo, BackendError> {
        let cell = self.cell(creds, stack)?;
        let st = cell.lock();
        let env = self.engine.env();
        Ok(render::stack_info(&env, &cell, &st))
    }

    async fn find(
        &self,
        creds: &Credentials,
        name: &str,
    ) -> Result<Option<StackRef>, BackendError> {
        let Some(project) = self.engine.store.existing(&creds.project) else {
            return Ok(None);
        };
        let Some(id) = project.names.get(name).map(|e| *e.value()) else {
            return Ok(None);
        };
        let Some(cell) = project.stacks.get(&id).map(|c| c.clone()) else {
            return Ok(None);
        };
        let deleted = {
            let st = cell.lock();
            st.status.action == StackAction::Delete && st.status.state == Phase::Complete
        };
        Ok((!deleted).then(|| StackRef {
            name: cell.name.to_string(),
            id: cell.id.to_string(),
        }))
    }

    async fn update(
        &self,
        creds: &Credentials,
        stack: &StackRef,
        update: &StackUpdate,
    ) -> Result<(), BackendError> {
        let cell = self.cell(creds, stack)?;
        engine::update(&self.engine, &cell, update)
    }

    async fn delete(&self, creds: &Credentials, stack: &StackRef) -> Result<(), BackendError> {
        let cell = self.cell(creds, stack)?;
        engine::delete(&self.engine, &cell)
    }

    async fn cancel(&self, creds: &Credentials, stack: &StackRef) -> Result<(), BackendError> {
        let cell = self.cell(creds, stack)?;
        engine::cancel(&self.engine, &cell)
    }

    async fn preview_create(
        &self,
        creds: &Credentials,
        spec: &StackSpec,
    ) -> Result<StackPreview, BackendError> {
        engine::preview_create(&self.engine, creds, spec)
    }

    async fn preview_update(
        &self,
        creds: &Credentials,
        stack: &StackRef,
        update: &StackUpdate,
    ) -> Result<StackPreview, BackendError> {
        let cell = self.cell(creds, stack)?;
        engine::preview_update(&self.engine, &cell, update)
    }

    async fn resources(
        &self,
        creds: &Credentials,
        stack: &StackRef,
    ) -> Result<Vec<ResourceInfo>, BackendError> {
        let cell = self.cell(creds, stack)?;
        let st = cell.lock();
        let env = self.engine.env();
        Ok(render::resources(&env, &cell, &st))
    }

    async fn events(
        &self,
        creds: &Credentials,
        stack: &StackRef,
    ) -> Result<Vec<EventInfo>, BackendError> {
        let cell = self.cell(creds, stack)?;
        let st = cell.lock();
        Ok(render::events(&cell, &st))
    }

    async fn validate(
        &self,
        _creds: &Credentials,
        request: &ValidateRequest,
    ) -> Result<ValidateInfo, BackendError> {
        let prepared = self
            .engine
            .templates
            .get(
                &request.template,
                request.environment.as_deref(),
                &request.files,
            )
            .map_err(|e| engine_rejected(&e))?;
        let params: heat::ParameterValues = (&request.parameters).into();
        let report = prepared
            .template
            .validate(&params)
            .map_err(|e| engine_rejected(&e))?;
        // With values for every parameter, the types' own checks too.
        let identity = heat::StackIdentity {
            stack_name: Some("validate".into()),
            stack_id: Some(Uuid::nil().to_string()),
            project_id: Some("validate".into()),
        };
        if let Ok(def) = prepared.template.define(&params, &identity) {
            engine::check_resources_pub(&def)?;
        }
        Ok(ValidateInfo {
            description: Some(report.description),
            parameters: report.parameters.into_iter().collect(),
        })
    }

    async fn watch(
        &self,
        creds: &Credentials,
        stack: &StackRef,
    ) -> Result<watch::Receiver<StackInfo>, BackendError> {
        let cell = self.cell(creds, stack)?;
        Ok(engine::subscribe(&self.engine, &cell))
    }
}

fn engine_rejected(errors: &heat::Errors) -> BackendError {
    match errors.first() {
        Some(e) => BackendError::Rejected {
            kind: e.kind.heat_type().to_string(),
            message: e.message.clone(),
        },
        None => BackendError::Rejected {
            kind: "StackValidationFailed".into(),
            message: "the template is not valid".into(),
        },
    }
}

//! The engine: accepts creates, updates and deletes (checking them as Heat
//! does, synchronously), then runs each as its own task that walks the
//! dependency graph level by level, the resources of a level at the same
//! time, moving every resource and the stack through Heat's states.
//!
//! One operation runs per stack. A new update lets the running one finish
//! the resources it has started and then takes over (Heat's convergence
//! does the same); a delete cancels it (`Stack CREATE cancelled`). A
//! failure rolls back unless `disable_rollback`. Watchers are told of every
//! change through the stack's `tokio::sync::watch` channel.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use heat::{
    Dependencies, ParameterValues, StackDefinition, StackIdentity, StackTemplate, Template,
};
use occi_so_sdk::{
    BackendError, Credentials, StackAction, StackInfo, StackRef, StackSpec, StackState as Phase,
    StackStatus, StackUpdate,
};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::config::EmbeddedConfig;
use super::ids::{new_uuid, now, physical_name};
use super::journal::Journal;
use super::kinds::{self, Apply, Kind};
use super::pool::Pools;
use super::prepared::TemplateCache;
use super::render;
use super::state::{
    action_text, Data, Event, Inputs, NestedStack, OutputValue, Physical, Reason, ResourceState,
    StackCell, StackState, Tree,
};
use super::store::Store;
use super::view::{Env, Probe, View};

/// Everything the engine shares between stacks.
pub(crate) struct Engine {
    /// The configuration.
    pub config: EmbeddedConfig,
    /// The address pools.
    pub pools: Pools,
    /// Parsed templates, shared.
    pub templates: TemplateCache,
    /// The stacks.
    pub store: Store,
    /// The state dir's writer, when there is one.
    pub journal: Option<Journal>,
    /// Stack documents rendered for watchers (one per change of a watched
    /// stack, however many watch it).
    pub watch_renders: std::sync::atomic::AtomicU64,
}

impl Engine {
    /// What views need.
    pub fn env(&self) -> Env<'_> {
        Env {
            config: &self.config,
            pools: &self.pools,
        }
    }
}

/// What a running operation is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Carry on.
    Run,
    /// A newer operation takes over: finish what has started, start nothing.
    Supersede,
    /// Stop now (a delete, or the stack timed out).
    Abort(Abort),
}

/// Why an operation is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Abort {
    /// A delete came.
    Cancel,
    /// The stack's timeout passed.
    Timeout,
}

/// The operation running on a stack.
pub(crate) struct OpSlot {
    /// Tells it to stop.
    pub signal: Arc<watch::Sender<Signal>>,
    /// Its task (the next operation waits for it).
    pub handle: Option<tokio::task::JoinHandle<()>>,
}

/// Why a walk stopped early.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Stop {
    /// A resource failed, with Heat's reason (`ValueError: resources.x: ...`)
    /// and the action that failed.
    Failed(StackAction, Arc<str>),
    /// The stack's timeout passed.
    TimedOut,
    /// A newer operation took over.
    Superseded,
    /// A delete cancelled it.
    Cancelled,
}

/// One running operation.
struct Op {
    engine: Arc<Engine>,
    cell: Arc<StackCell>,
    generation: u64,
    signal: Arc<watch::Sender<Signal>>,
    deadline: Instant,
}

impl Op {
    fn current(&self) -> Signal {
        *self.signal.borrow()
    }
}

// ------------------------------------------------------------ helpers

fn rejected(errors: &heat::Errors) -> BackendError {
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

fn not_found(name: &str) -> BackendError {
    BackendError::NotFound {
        message: format!("The Stack ({name}) could not be found."),
    }
}

/// Heat's stack-name rule.
fn check_name(name: &str) -> Result<(), BackendError> {
    let ok = name.len() <= 255
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(BackendError::Rejected {
            kind: "StackValidationFailed".into(),
            message: format!(
                "Invalid stack name {name} must contain only alphanumeric or \"_-.\" characters, must start with alpha and must be 255 characters or less."
            ),
        })
    }
}

fn identity(cell_project: &str, name: &str, id: &uuid::Uuid) -> StackIdentity {
    StackIdentity {
        stack_name: Some(name.to_string()),
        stack_id: Some(id.to_string()),
        project_id: Some(cell_project.to_string()),
    }
}

/// The definition of a stack's current inputs.
pub(crate) fn definition(
    cell: &StackCell,
    inputs: &Inputs,
) -> Result<StackDefinition, heat::Errors> {
    inputs.prepared.template.define(
        &inputs.parameter_values(),
        &identity(&cell.project, &cell.name, &cell.id),
    )
}

/// Heat's checks of the simulated types' properties, before anything runs.
pub(crate) fn check_resources_pub(def: &StackDefinition) -> Result<(), BackendError> {
    check_resources(def)
}

fn check_resources(def: &StackDefinition) -> Result<(), BackendError> {
    for r in def.resources() {
        let kind = Kind::of(&r.resolved_type);
        if r.external_id.is_some() {
            // Heat checks an external resource exists instead; in the
            // simulated cloud every id does.
            continue;
        }
        let Ok(props) = def.properties(&r.name, &Probe) else {
            continue;
        };
        kinds::check(kind, &r.name, &props, def.stack_template()).map_err(|e| {
            BackendError::Rejected {
                kind: e.kind.heat_type().to_string(),
                message: e.message,
            }
        })?;
    }
    Ok(())
}

fn status(action: StackAction, state: Phase) -> StackStatus {
    StackStatus::new(action, state)
}

/// Records an event (top-level resources and the stack only; nested
/// stacks' events are their own, as in Heat).
fn event(
    st: &mut StackState,
    max: usize,
    subject: Option<&Arc<str>>,
    s: StackStatus,
    reason: Reason,
    physical: Physical,
) {
    st.events.push(Event {
        time: now(),
        subject: subject.cloned(),
        status: s,
        reason,
        physical,
    });
    if st.events.len() > max.max(1) {
        let purge = (max / 5).max(1).min(st.events.len());
        st.events.drain(..purge);
        st.events_purged += purge as u64;
    }
}

/// Moves the stack to `s` with `reason`, as an event too.
fn set_stack(
    engine: &Engine,
    cell: &StackCell,
    st: &mut StackState,
    s: StackStatus,
    reason: Reason,
) {
    st.status = s;
    st.reason = reason.clone();
    event(
        st,
        engine.config.max_events_per_stack,
        None,
        s,
        reason,
        Physical::Uuid(cell.id),
    );
}

/// Tells watchers and the journal that the stack changed.
pub(crate) fn publish(engine: &Engine, cell: &Arc<StackCell>, st: &mut StackState) {
    if let Some(tx) = &st.watch {
        if tx.receiver_count() == 0 {
            st.watch = None;
        } else {
            let env = engine.env();
            let info = render::stack_info(&env, cell, st);
            engine
                .watch_renders
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tx.send_replace(info);
        }
    }
    if let Some(j) = &engine.journal {
        j.dirty(cell);
    }
}

/// A watch receiver of the stack, the channel made on first use and
/// dropped again once every receiver is gone.
pub(crate) fn subscribe(engine: &Arc<Engine>, cell: &Arc<StackCell>) -> watch::Receiver<StackInfo> {
    let mut st = cell.lock();
    if let Some(tx) = &st.watch {
        return tx.subscribe();
    }
    let env = engine.env();
    let info = render::stack_info(&env, cell, &st);
    engine
        .watch_renders
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tx = Arc::new(watch::Sender::new(info));
    let rx = tx.subscribe();
    st.watch = Some(tx.clone());
    drop(st);
    let cell = cell.clone();
    tokio::spawn(async move {
        loop {
            tx.closed().await;
            let mut st = cell.lock();
            let ours = st.watch.as_ref().is_some_and(|w| Arc::ptr_eq(w, &tx));
            if !ours {
                return;
            }
            if tx.receiver_count() == 0 {
                st.watch = None;
                return;
            }
        }
    });
    rx
}

// ------------------------------------------------------------ accept

/// Accepts a create: checks it as Heat does, records the stack
/// `CREATE_IN_PROGRESS` and starts creating it.
pub(crate) fn create(
    engine: &Arc<Engine>,
    creds: &Credentials,
    spec: &StackSpec,
) -> Result<StackRef, BackendError> {
    check_name(&spec.name)?;
    let prepared = engine
        .templates
        .get(&spec.template, spec.environment.as_deref(), &spec.files)
        .map_err(|e| rejected(&e))?;
    let project_name = engine.store.project_name(&creds.project);
    let project = engine.store.project(&creds.project);
    let exists = || BackendError::Conflict {
        kind: "StackExists".into(),
        message: format!("The Stack ({}) already exists.", spec.name),
    };
    if project.names.contains_key(spec.name.as_str()) {
        return Err(exists());
    }
    let id = new_uuid();
    let name: Arc<str> = Arc::from(spec.name.as_str());
    let inputs = Inputs {
        prepared,
        params: spec
            .parameters
            .iter()
            .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
            .collect(),
        timeout_mins: spec.timeout_mins,
        disable_rollback: spec.disable_rollback,
        tags: spec.tags.iter().map(|t| t.as_str().into()).collect(),
    };
    let def = inputs
        .prepared
        .template
        .define(
            &inputs.parameter_values(),
            &identity(&project_name, &name, &id),
        )
        .map_err(|e| rejected(&e))?;
    check_resources(&def)?;
    match project.names.entry(name.clone()) {
        dashmap::mapref::entry::Entry::Occupied(_) => return Err(exists()),
        dashmap::mapref::entry::Entry::Vacant(v) => {
            v.insert(id);
        }
    }
    let created = now();
    let tree = initial_tree(&inputs, &def);
    let cell = Arc::new(StackCell {
        project: project_name,
        id,
        name,
        state: std::sync::Mutex::new(StackState {
            status: status(StackAction::Create, Phase::InProgress),
            reason: Reason::Started,
            created,
            updated: 0,
            deleted: 0,
            inputs,
            previous: None,
            tree,
            events: Vec::new(),
            events_purged: 0,
            outputs: None,
            live: None,
            op: None,
            generation: 0,
            watch: None,
        }),
    });
    project.stacks.insert(id, cell.clone());
    {
        let mut st = cell.lock();
        let s = st.status;
        event(
            &mut st,
            engine.config.max_events_per_stack,
            None,
            s,
            Reason::Started,
            Physical::Uuid(id),
        );
        let def = Arc::new(def);
        st.live = Some(def.clone());
        start(engine, &cell, &mut st, Work::Create(def));
        publish(engine, &cell, &mut st);
    }
    tracing::debug!(stack = %spec.name, %id, project = %creds.project, "embedded create accepted");
    Ok(StackRef {
        name: spec.name.clone(),
        id: id.to_string(),
    })
}

/// The resources of a new stack, not created yet.
fn initial_tree(inputs: &Inputs, def: &StackDefinition) -> Tree {
    let mut tree = Tree::default();
    for r in def.resources() {
        let name = inputs
            .prepared
            .name(&r.name)
            .cloned()
            .unwrap_or_else(|| Arc::from(r.name.as_str()));
        let ty = inputs
            .prepared
            .type_of(&r.name)
            .cloned()
            .unwrap_or_else(|| Arc::from(r.type_name.as_str()));
        tree.resources
            .push(ResourceState::new(name, ty, Kind::of(&r.resolved_type)));
    }
    tree
}

/// Accepts an update (PATCH or PUT), checking it as Heat does.
pub(crate) fn update(
    engine: &Arc<Engine>,
    cell: &Arc<StackCell>,
    change: &StackUpdate,
) -> Result<(), BackendError> {
    let current = {
        let st = cell.lock();
        if st.status.action == StackAction::Delete {
            if st.status.state == Phase::Complete {
                return Err(not_found(&cell.name));
            }
            return Err(BackendError::Rejected {
                kind: "NotSupported".into(),
                message: "Updating a stack when it is deleting is not supported.".into(),
            });
        }
        st.inputs.clone()
    };
    let new = match change {
        StackUpdate::Patch { parameters } => {
            let mut params: BTreeMap<String, String> = current
                .params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            for (k, v) in parameters {
                params.insert(k.clone(), v.clone());
            }
            Inputs {
                params: params
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
                ..current.clone()
            }
        }
        StackUpdate::Replace {
            template,
            parameters,
            environment,
            files,
            timeout_mins,
        } => Inputs {
            prepared: engine
                .templates
                .get(template, environment.as_deref(), files)
                .map_err(|e| rejected(&e))?,
            params: parameters
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                .collect(),
            timeout_mins: timeout_mins.or(current.timeout_mins),
            ..current.clone()
        },
    };
    let new_def = definition(cell, &new).map_err(|e| rejected(&e))?;
    check_resources(&new_def)?;
    // Only a template with immutable parameters needs the old definition.
    let immutable = new
        .prepared
        .template
        .template()
        .parameters
        .values()
        .any(|p| p.immutable);
    let old_def = immutable.then(|| definition(cell, &current).ok()).flatten();
    if let Some(old_def) = old_def {
        old_def
            .immutable_changes(&new_def)
            .map_err(|e| BackendError::Rejected {
                kind: e.kind.heat_type().to_string(),
                message: e.message,
            })?;
    }
    let mut st = cell.lock();
    if st.status.action == StackAction::Delete {
        return Err(not_found(&cell.name));
    }
    let previous = std::mem::replace(&mut st.inputs, new);
    st.previous = Some(Box::new(previous));
    st.updated = now();
    let def = Arc::new(new_def);
    st.live = Some(def.clone());
    set_stack(
        engine,
        cell,
        &mut st,
        status(StackAction::Update, Phase::InProgress),
        Reason::Started,
    );
    start(engine, cell, &mut st, Work::Update(def));
    publish(engine, cell, &mut st);
    Ok(())
}

/// Accepts a delete: cancels what runs (`Stack CREATE cancelled`) and
/// starts deleting. Deleting a stack that is being deleted changes nothing.
pub(crate) fn delete(engine: &Arc<Engine>, cell: &Arc<StackCell>) -> Result<(), BackendError> {
    let mut st = cell.lock();
    if st.status.action == StackAction::Delete {
        return match st.status.state {
            Phase::Complete => Err(not_found(&cell.name)),
            Phase::InProgress => Ok(()),
            Phase::Failed => {
                restart_delete(engine, cell, &mut st);
                Ok(())
            }
        };
    }
    if st.status.state == Phase::InProgress {
        let action = st.status.action;
        set_stack(
            engine,
            cell,
            &mut st,
            status(action, Phase::Failed),
            Reason::text(format!("Stack {} cancelled", action_text(action))),
        );
    }
    restart_delete(engine, cell, &mut st);
    Ok(())
}

fn restart_delete(engine: &Arc<Engine>, cell: &Arc<StackCell>, st: &mut StackState) {
    st.updated = now();
    set_stack(
        engine,
        cell,
        st,
        status(StackAction::Delete, Phase::InProgress),
        Reason::Started,
    );
    st.live = None;
    start(engine, cell, st, Work::Delete);
    publish(engine, cell, st);
}

// ------------------------------------------------------------ operations

/// What an operation does.
enum Work {
    Create(Arc<StackDefinition>),
    Update(Arc<StackDefinition>),
    Delete,
}

/// Starts `work` as the stack's operation, after the running one stops.
fn start(engine: &Arc<Engine>, cell: &Arc<StackCell>, st: &mut StackState, work: Work) {
    let previous = st.op.take();
    if let Some(p) = &previous {
        let why = match work {
            Work::Delete => Signal::Abort(Abort::Cancel),
            _ => Signal::Supersede,
        };
        p.signal.send_replace(why);
    }
    st.generation += 1;
    let signal = Arc::new(watch::channel(Signal::Run).0);
    let minutes = st.inputs.timeout_mins.unwrap_or(60).max(1);
    let op = Op {
        engine: engine.clone(),
        cell: cell.clone(),
        generation: st.generation,
        signal: signal.clone(),
        deadline: Instant::now() + Duration::from_secs(u64::from(minutes) * 60),
    };
    let handle = tokio::spawn(async move {
        if let Some(p) = previous.and_then(|p| p.handle) {
            let _ = p.await;
        }
        let op = Arc::new(op);
        match work {
            Work::Create(def) => run_create(&op, def).await,
            Work::Update(def) => run_update(&op, def).await,
            Work::Delete => run_delete(&op).await,
        }
    });
    st.op = Some(Box::new(OpSlot {
        signal,
        handle: Some(handle),
    }));
}

impl Op {
    /// The state, if this operation still owns the stack.
    fn owns(&self, st: &StackState) -> bool {
        st.generation == self.generation
    }

    /// Ends the operation: outputs computed from `def`, the stack's final
    /// status, the operation slot freed.
    fn finish(&self, def: Option<&StackDefinition>, s: StackStatus, reason: Reason) {
        let engine = &self.engine;
        let mut st = self.cell.lock();
        if !self.owns(&st) {
            return;
        }
        if let Some(def) = def {
            let env = engine.env();
            let view = render::root_view(&env, &self.cell, &st);
            let outputs: Vec<OutputValue> = def
                .outputs(&view)
                .into_iter()
                .map(|o| match o.value {
                    Ok(v) => OutputValue::Value(v),
                    Err(e) => OutputValue::Error(e.message.into()),
                })
                .collect();
            st.outputs = serde_json::to_string(&outputs)
                .ok()
                .map(String::into_boxed_str);
        }
        st.live = None;
        st.op = None;
        st.previous = None;
        set_stack(engine, &self.cell, &mut st, s, reason);
        st.events.shrink_to_fit();
        publish(engine, &self.cell, &mut st);
    }
}

/// Heat's stack reason for a failed walk.
fn failure_reason(stop: &Stop) -> Reason {
    match stop {
        Stop::Failed(action, why) => {
            Reason::text(format!("Resource {} failed: {why}", action_text(*action)))
        }
        Stop::TimedOut => Reason::text("Timed out"),
        Stop::Superseded | Stop::Cancelled => Reason::Empty,
    }
}

async fn run_create(op: &Arc<Op>, def: Arc<StackDefinition>) {
    let result = converge(op, Arc::from(Vec::new()), Some(def.clone()), None).await;
    match result {
        Ok(()) => op.finish(
            Some(&def),
            status(StackAction::Create, Phase::Complete),
            Reason::Completed,
        ),
        Err(Stop::Superseded | Stop::Cancelled) => {}
        Err(stop) => {
            let rollback = {
                let mut st = op.cell.lock();
                if !op.owns(&st) {
                    return;
                }
                let rollback = !st.inputs.disable_rollback;
                if rollback {
                    // Failed and rolling back in one step: a watcher never
                    // sees the failure as the end.
                    let engine = &op.engine;
                    set_stack(
                        engine,
                        &op.cell,
                        &mut st,
                        status(StackAction::Create, Phase::Failed),
                        failure_reason(&stop),
                    );
                    set_stack(
                        engine,
                        &op.cell,
                        &mut st,
                        status(StackAction::Rollback, Phase::InProgress),
                        Reason::Started,
                    );
                    publish(engine, &op.cell, &mut st);
                }
                rollback
            };
            if !rollback {
                op.finish(
                    Some(&def),
                    status(StackAction::Create, Phase::Failed),
                    failure_reason(&stop),
                );
                return;
            }
            match converge(op, Arc::from(Vec::new()), None, Some(def.clone())).await {
                Ok(()) => op.finish(
                    Some(&def),
                    status(StackAction::Rollback, Phase::Complete),
                    Reason::Completed,
                ),
                Err(Stop::Superseded | Stop::Cancelled) => {}
                Err(stop) => op.finish(
                    Some(&def),
                    status(StackAction::Rollback, Phase::Failed),
                    failure_reason(&stop),
                ),
            }
        }
    }
}

async fn run_update(op: &Arc<Op>, def: Arc<StackDefinition>) {
    let old_def = {
        let st = op.cell.lock();
        st.previous
            .as_ref()
            .and_then(|p| definition(&op.cell, p).ok())
            .map(Arc::new)
    };
    let result = converge(
        op,
        Arc::from(Vec::new()),
        Some(def.clone()),
        old_def.clone(),
    )
    .await;
    let stop = match result {
        Ok(()) => {
            {
                let mut st = op.cell.lock();
                if op.owns(&st) {
                    st.previous = None;
                }
            }
            op.finish(
                Some(&def),
                status(StackAction::Update, Phase::Complete),
                Reason::Completed,
            );
            return;
        }
        Err(Stop::Superseded | Stop::Cancelled) => return,
        Err(stop) => stop,
    };
    let rollback_to = {
        let mut st = op.cell.lock();
        if !op.owns(&st) {
            return;
        }
        let engine = &op.engine;
        let target = match (&old_def, st.inputs.disable_rollback) {
            (Some(old), false) => Some(old.clone()),
            _ => None,
        };
        if target.is_some() {
            set_stack(
                engine,
                &op.cell,
                &mut st,
                status(StackAction::Update, Phase::Failed),
                failure_reason(&stop),
            );
            set_stack(
                engine,
                &op.cell,
                &mut st,
                status(StackAction::Rollback, Phase::InProgress),
                Reason::Started,
            );
            if let Some(previous) = st.previous.take() {
                st.inputs = *previous;
            }
            st.live = target.clone();
            publish(engine, &op.cell, &mut st);
        }
        target
    };
    let Some(old) = rollback_to else {
        op.finish(
            Some(&def),
            status(StackAction::Update, Phase::Failed),
            failure_reason(&stop),
        );
        return;
    };
    restore_replaced(op, Arc::from(Vec::new())).await;
    match converge(
        op,
        Arc::from(Vec::new()),
        Some(old.clone()),
        Some(def.clone()),
    )
    .await
    {
        Ok(()) => op.finish(
            Some(&old),
            status(StackAction::Rollback, Phase::Complete),
            Reason::Completed,
        ),
        Err(Stop::Superseded | Stop::Cancelled) => {}
        Err(stop) => op.finish(
            Some(&old),
            status(StackAction::Rollback, Phase::Failed),
            failure_reason(&stop),
        ),
    }
}

async fn run_delete(op: &Arc<Op>) {
    let def = {
        let st = op.cell.lock();
        definition(&op.cell, &st.inputs).ok().map(Arc::new)
    };
    match converge(op, Arc::from(Vec::new()), None, def).await {
        Ok(()) => {
            let engine = &op.engine;
            let mut st = op.cell.lock();
            if !op.owns(&st) {
                return;
            }
            st.tree.resources.clear();
            st.op = None;
            st.live = None;
            st.deleted = now();
            set_stack(
                engine,
                &op.cell,
                &mut st,
                status(StackAction::Delete, Phase::Complete),
                Reason::Completed,
            );
            publish(engine, &op.cell, &mut st);
            drop(st);
            engine
                .store
                .deleted(&op.cell, engine.config.deleted_retention);
        }
        Err(Stop::Superseded | Stop::Cancelled) => {}
        Err(stop) => op.finish(
            None,
            status(StackAction::Delete, Phase::Failed),
            failure_reason(&stop),
        ),
    }
}

// ------------------------------------------------------------ the walk

/// The names and id of the (nested) stack at `path`.
fn stack_at(cell: &StackCell, st: &StackState, path: &[Arc<str>]) -> Option<(String, uuid::Uuid)> {
    match path.split_last() {
        None => Some((cell.name.to_string(), cell.id)),
        Some((last, parent)) => {
            let n = st.tree.at(parent)?.get(last)?.nested()?;
            Some((n.name.to_string(), n.id))
        }
    }
}

/// Heat's path of a resource in failure reasons: `resources.group.resources[0].resources.inner`.
fn resource_path(st: &StackState, path: &[Arc<str>], name: &str) -> String {
    let mut out = String::new();
    let mut tree = Some(&st.tree);
    let mut in_group = false;
    for seg in path.iter().map(|s| &**s).chain(std::iter::once(name)) {
        if !out.is_empty() {
            out.push('.');
        }
        if in_group {
            out.push_str(&format!("resources[{seg}]"));
        } else {
            out.push_str(&format!("resources.{seg}"));
        }
        let r = tree.and_then(|t| t.get(seg));
        in_group = r.is_some_and(|r| r.kind == Kind::ResourceGroup);
        tree = r.and_then(|r| r.nested()).map(|n| &n.tree);
    }
    out
}

/// What happens to one resource in a walk towards a definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Skip,
    Create,
    Update,
    /// Replaced: a property that cannot change in place changed, or it failed.
    Replace,
    /// Replaced because the resource itself asks to be (Heat's
    /// `needs_replace_with_prop_diff`).
    ReplaceAsked,
}

/// The dependency graph with the ordering Heat adds on its own: ports and
/// servers after the subnets of their networks, floating IPs after router
/// interfaces.
fn graph_of(def: &StackDefinition) -> Dependencies {
    let mut g = def.dependencies().clone();
    struct Names;
    impl heat::Resolver for Names {
        fn resource_id(&self, r: &str) -> Value {
            Value::String(r.to_string())
        }
        fn attribute(&self, _: &str, _: &str) -> Value {
            Value::Null
        }
    }
    let kinds: Vec<(String, Kind, Value)> = def
        .resources()
        .map(|r| {
            let props = def.properties(&r.name, &Names).unwrap_or(Value::Null);
            (r.name.clone(), Kind::of(&r.resolved_type), props)
        })
        .collect();
    let net_of = |p: &Value| -> Option<String> {
        p.get("network")
            .or_else(|| p.get("network_id"))
            .filter(|v| !v.is_null())
            .map(kinds::value_text)
    };
    let requires_transitively = |g: &Dependencies, from: &str, to: &str| -> bool {
        let mut stack = vec![from.to_string()];
        let mut seen = std::collections::HashSet::new();
        while let Some(n) = stack.pop() {
            if n == to {
                return true;
            }
            if seen.insert(n.clone()) {
                stack.extend(g.requires(&n).into_iter().map(String::from));
            }
        }
        false
    };
    for (name, kind, props) in &kinds {
        let nets: Vec<String> = match kind {
            Kind::Port => net_of(props).into_iter().collect(),
            Kind::Server => props
                .get("networks")
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .filter_map(|e| {
                            e.get("network")
                                .or_else(|| e.get("uuid"))
                                .filter(|v| !v.is_null())
                                .map(kinds::value_text)
                        })
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        for (other, okind, oprops) in &kinds {
            let wanted = match (kind, okind) {
                (Kind::Port | Kind::Server, Kind::Subnet) if !nets.is_empty() => {
                    net_of(oprops).is_none_or(|n| nets.contains(&n))
                }
                (Kind::FloatingIp, Kind::RouterInterface) => true,
                _ => false,
            };
            if wanted && other != name && !requires_transitively(&g, other, name) {
                g.add(name, other);
            }
        }
    }
    g
}

/// Makes the tree at `path` match `target` (every resource created or
/// updated level by level, then what is left over deleted), or, without
/// a target, deletes every resource (in the reverse order of `order`).
fn converge(
    op: &Arc<Op>,
    path: Arc<[Arc<str>]>,
    target: Option<Arc<StackDefinition>>,
    order: Option<Arc<StackDefinition>>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Stop>> + Send + '_>> {
    Box::pin(async move {
        match target {
            Some(def) => {
                plan_tree(op, &path, &def);
                let graph = graph_of(&def);
                let levels: Vec<Vec<String>> = graph
                    .create_levels()
                    .unwrap_or_else(|| vec![graph.names().iter().map(String::as_str).collect()])
                    .into_iter()
                    .map(|l| l.into_iter().map(String::from).collect())
                    .collect();
                for level in levels {
                    let mut jobs = Vec::new();
                    for name in level {
                        let step = decide(op, &path, &def, &name);
                        if step != Step::Skip {
                            jobs.push((name, step));
                        }
                    }
                    run_level(op, &path, &def, jobs).await?;
                }
                cleanup(op, &path, order.as_deref()).await
            }
            None => delete_all(op, &path, order.as_deref()).await,
        }
    })
}

/// Puts every resource of `def` in the tree (not created yet where new)
/// and marks the others as left over.
fn plan_tree(op: &Op, path: &[Arc<str>], def: &StackDefinition) {
    let mut st = op.cell.lock();
    let prepared = st.inputs.prepared.clone();
    let Some(tree) = st.tree.at_mut(path) else {
        return;
    };
    let mut ordered: Vec<ResourceState> = Vec::with_capacity(tree.resources.len());
    let mut rest = std::mem::take(&mut tree.resources);
    for r in def.resources() {
        let kind = Kind::of(&r.resolved_type);
        match rest.iter().position(|x| *x.name == *r.name) {
            Some(i) => {
                let mut x = rest.remove(i);
                x.orphan = false;
                if !x.attempted() {
                    x.kind = kind;
                }
                if *x.type_name != *r.type_name {
                    x.type_name = Arc::from(r.type_name.as_str());
                }
                ordered.push(x);
            }
            None => {
                let (name, ty) = if path.is_empty() {
                    (
                        prepared.name(&r.name).cloned(),
                        prepared.type_of(&r.name).cloned(),
                    )
                } else {
                    (None, None)
                };
                ordered.push(ResourceState::new(
                    name.unwrap_or_else(|| Arc::from(r.name.as_str())),
                    ty.unwrap_or_else(|| Arc::from(r.type_name.as_str())),
                    kind,
                ));
            }
        }
    }
    for mut x in rest {
        if x.attempted() {
            x.orphan = true;
            ordered.push(x);
        }
    }
    tree.resources = ordered;
}

/// What to do with resource `name` to reach `def`.
fn decide(op: &Op, path: &[Arc<str>], def: &StackDefinition, name: &str) -> Step {
    let engine = &op.engine;
    let st = op.cell.lock();
    let Some(tree) = st.tree.at(path) else {
        return Step::Skip;
    };
    let Some(r) = tree.get(name) else {
        return Step::Skip;
    };
    let Some(rd) = def.resource(name) else {
        return Step::Skip;
    };
    let kind = Kind::of(&rd.resolved_type);
    if !r.physical.is_some() || !r.attempted() || r.status.action == StackAction::Delete {
        return Step::Create;
    }
    if rd.external_id.is_some() {
        // Adopted: Heat leaves it alone.
        return Step::Skip;
    }
    if r.status.state == Phase::Failed || r.kind != kind {
        return Step::Replace;
    }
    let Some((sname, sid)) = stack_at(&op.cell, &st, path) else {
        return Step::Skip;
    };
    let env = engine.env();
    let view = View {
        env: &env,
        project: &op.cell.project,
        stack_name: &sname,
        stack_id: &sid,
        tree,
        root: &st.tree,
    };
    let Ok(props) = def.properties(name, &view) else {
        return Step::Update;
    };
    let metadata = def.metadata(name, &view).unwrap_or(Value::Null);
    let (all, fixed) = kinds::digests(kind, rd.resolved_type.name(), &props, &metadata);
    if fixed != r.fixed_digest {
        Step::Replace
    } else if kinds::replaces_anyway(kind, r, &props) {
        Step::ReplaceAsked
    } else if all != r.props_digest || kind.is_nested() {
        // Heat updates a nested stack on every update of its parent.
        Step::Update
    } else {
        Step::Skip
    }
}

/// Runs one level's steps at the same time; the first failure (after the
/// others have finished) stops the walk.
async fn run_level(
    op: &Arc<Op>,
    path: &Arc<[Arc<str>]>,
    def: &Arc<StackDefinition>,
    jobs: Vec<(String, Step)>,
) -> Result<(), Stop> {
    match op.current() {
        Signal::Run => {}
        Signal::Supersede => return Err(Stop::Superseded),
        Signal::Abort(Abort::Cancel) => return Err(Stop::Cancelled),
        Signal::Abort(Abort::Timeout) => return Err(Stop::TimedOut),
    }
    if jobs.is_empty() {
        return Ok(());
    }
    let mut set = JoinSet::new();
    for (name, step) in jobs {
        let (op, path, def) = (op.clone(), path.clone(), def.clone());
        set.spawn(async move { act(&op, &path, &def, &name, step).await });
    }
    join_level(op, set).await
}

async fn join_level(op: &Arc<Op>, mut set: JoinSet<Result<(), Stop>>) -> Result<(), Stop> {
    let mut first: Option<Stop> = None;
    let mut timed_out = false;
    loop {
        let next = if timed_out {
            set.join_next().await
        } else {
            match tokio::time::timeout_at(op.deadline, set.join_next()).await {
                Ok(n) => n,
                Err(_) => {
                    timed_out = true;
                    op.signal.send_replace(Signal::Abort(Abort::Timeout));
                    continue;
                }
            }
        };
        match next {
            None => break,
            Some(Ok(Ok(()))) => {}
            Some(Ok(Err(stop))) => {
                first.get_or_insert(stop);
            }
            Some(Err(join)) => {
                first.get_or_insert(Stop::Failed(
                    StackAction::Create,
                    Arc::from(format!("Error: the simulation stopped: {join}")),
                ));
            }
        }
    }
    if timed_out {
        return Err(Stop::TimedOut);
    }
    match first {
        Some(stop) => Err(stop),
        None => Ok(()),
    }
}

/// Waits `wait`, or less if the operation is aborted.
async fn pause(op: &Op, wait: Duration) -> Result<(), Abort> {
    let mut rx = op.signal.subscribe();
    let now_signal = *rx.borrow_and_update();
    if let Signal::Abort(a) = now_signal {
        return Err(a);
    }
    if wait.is_zero() {
        tokio::task::yield_now().await;
        return Ok(());
    }
    let aborted = async move {
        match rx.wait_for(|s| matches!(s, Signal::Abort(_))).await {
            Ok(s) => Some(*s),
            Err(_) => None,
        }
    };
    let sleep = tokio::time::sleep(wait);
    tokio::pin!(sleep);
    tokio::select! {
        _ = &mut sleep => Ok(()),
        a = aborted => match a {
            Some(Signal::Abort(a)) => Err(a),
            // The operation is gone: finish the wait.
            _ => {
                sleep.await;
                Ok(())
            }
        },
    }
}

/// The view of the tree at `path` while the state is locked (`ident`:
/// that stack's name and id, from [`stack_at`]).
fn view_of<'a>(
    env: &'a Env<'a>,
    cell: &'a StackCell,
    st: &'a StackState,
    path: &[Arc<str>],
    ident: &'a (String, uuid::Uuid),
) -> Option<View<'a>> {
    Some(View {
        env,
        project: &cell.project,
        stack_name: &ident.0,
        stack_id: &ident.1,
        tree: st.tree.at(path)?,
        root: &st.tree,
    })
}

/// Moves resource `name` (at `path`) to `s`, recording the event when the
/// resource is the stack's own.
fn mark(
    op: &Op,
    st: &mut StackState,
    path: &[Arc<str>],
    name: &str,
    s: StackStatus,
    reason: Reason,
) {
    let max = op.engine.config.max_events_per_stack;
    let Some(r) = st.tree.at_mut(path).and_then(|t| t.get_mut(name)) else {
        return;
    };
    r.status = s;
    r.reason = reason.clone();
    r.updated = now();
    let physical = match &r.physical {
        Physical::None => Physical::Name(r.short),
        p => p.clone(),
    };
    let subject = r.name.clone();
    if path.is_empty() {
        event(st, max, Some(&subject), s, reason, physical);
    }
}

/// One resource's create, update or replacement.
async fn act(
    op: &Arc<Op>,
    path: &Arc<[Arc<str>]>,
    def: &Arc<StackDefinition>,
    name: &str,
    step: Step,
) -> Result<(), Stop> {
    let action = match step {
        Step::Update => StackAction::Update,
        _ => StackAction::Create,
    };
    if step == Step::Create {
        if let Some(external) = def.resource(name).and_then(|r| r.external_id.clone()) {
            return adopt(op, path, name, &external).await;
        }
    }
    let engine = &op.engine;
    // Start: properties, effort, IN_PROGRESS.
    let started = {
        let mut st = op.cell.lock();
        if matches!(step, Step::Replace | Step::ReplaceAsked) {
            let kind = def.resource(name).map(|r| Kind::of(&r.resolved_type));
            let reason = match step {
                Step::ReplaceAsked => replacement_reason(op, &st, path, name),
                _ => Reason::Replacement,
            };
            begin_replacement(op, &mut st, path, name, kind, reason);
        }
        let env = engine.env();
        let ident = stack_at(&op.cell, &st, path).unwrap_or_default();
        let outcome = {
            let Some(view) = view_of(&env, &op.cell, &st, path, &ident) else {
                return Ok(());
            };
            let current = view.tree.get(name);
            let kind = current.map(|r| r.kind).unwrap_or(Kind::Generic);
            def.properties(name, &view).map(|props| {
                let effort = kinds::effort(kind, action, name, &props, current, &engine.config);
                (kind, props, effort)
            })
        };
        let reason_path = resource_path(&st, path, name);
        mark(
            op,
            &mut st,
            path,
            name,
            status(action, Phase::InProgress),
            Reason::StateChanged,
        );
        let started = match outcome {
            Ok(x) => Ok(x),
            Err(e) => Err(format!(
                "StackValidationFailed: {reason_path}: {}",
                e.message
            )),
        };
        if let Ok((kind, _, _)) = &started {
            if kind.is_nested() {
                begin_nested(op, &mut st, path, name, action);
            }
        }
        publish(engine, &op.cell, &mut st);
        started.map(|x| (x, reason_path))
    };
    let ((kind, props, effort), reason_path) = match started {
        Ok(x) => x,
        Err(why) => return fail(op, path, name, action, why.into()),
    };
    // The work: a nested walk, or the simulated time.
    if kind.is_nested() {
        let child = match nested_definition(op, path, def, name, kind, &props) {
            Ok(d) => Arc::new(d),
            Err(why) => {
                return fail(
                    op,
                    path,
                    name,
                    action,
                    format!("{reason_path}: {why}").into(),
                )
            }
        };
        let mut child_path = path.to_vec();
        child_path.push(Arc::from(name));
        match converge(op, Arc::from(child_path.clone()), Some(child.clone()), None).await {
            Ok(()) => {}
            Err(Stop::Failed(_, why)) => return fail(op, path, name, action, why),
            Err(other) => {
                abort_mark(op, path, name, action, &other);
                return Err(other);
            }
        }
        nested_outputs(op, &child_path, &child);
    } else if let Err(a) = pause(op, effort.wait).await {
        let stop = match a {
            Abort::Cancel => Stop::Cancelled,
            Abort::Timeout => Stop::TimedOut,
        };
        abort_mark(op, path, name, action, &stop);
        return Err(stop);
    }
    if let Some(f) = effort.failure {
        return fail(
            op,
            path,
            name,
            action,
            format!("{}: {reason_path}: {}", f.class, f.message).into(),
        );
    }
    // Complete: what the resource keeps.
    let mut st = op.cell.lock();
    let env = engine.env();
    let ident = stack_at(&op.cell, &st, path).unwrap_or_default();
    let result = {
        let Some(view) = view_of(&env, &op.cell, &st, path, &ident) else {
            return Ok(());
        };
        let current = view.tree.get(name);
        let short = current.map(|r| r.short).unwrap_or(0);
        let apply = Apply {
            view,
            props: &props,
            physical_name: physical_name(view.stack_name, name, short),
            current,
        };
        let checked = if kind == Kind::WaitCondition {
            kinds::signal::check_handle(&apply)
        } else {
            Ok(())
        };
        let result = checked.and_then(|()| match (step, kind.is_nested()) {
            (_, true) => Ok(None),
            (Step::Update, false) => kinds::update(kind, &apply).map(|d| Some((None, d))),
            _ => kinds::create(kind, &apply).map(|(p, d)| Some((Some(p), d))),
        });
        let metadata = def.metadata(name, &view).unwrap_or(Value::Null);
        let builtin = def
            .resource(name)
            .map(|r| r.resolved_type.name().to_string())
            .unwrap_or_default();
        (result, kinds::digests(kind, &builtin, &props, &metadata))
    };
    let (result, (all, fixed)) = result;
    match result {
        Err(f) => {
            drop(st);
            fail(
                op,
                path,
                name,
                action,
                format!("{}: {reason_path}: {}", f.class, f.message).into(),
            )
        }
        Ok(made) => {
            if let Some(r) = st.tree.at_mut(path).and_then(|t| t.get_mut(name)) {
                if let Some((physical, data)) = made {
                    if let Some(p) = physical {
                        r.physical = p;
                        r.created = now();
                    }
                    r.data = data;
                }
                r.props_digest = all;
                r.fixed_digest = fixed;
            }
            mark(
                op,
                &mut st,
                path,
                name,
                status(action, Phase::Complete),
                Reason::StateChanged,
            );
            publish(engine, &op.cell, &mut st);
            Ok(())
        }
    }
}

/// A resource with an `external_id` is adopted, not created, and then
/// checked (`CHECK not supported for <type>` for Heat's own types).
async fn adopt(op: &Arc<Op>, path: &[Arc<str>], name: &str, external: &Value) -> Result<(), Stop> {
    let engine = &op.engine;
    {
        let mut st = op.cell.lock();
        let s = status(StackAction::Adopt, Phase::InProgress);
        mark(op, &mut st, path, name, s, Reason::StateChanged);
        publish(engine, &op.cell, &mut st);
    }
    if let Err(a) = pause(op, engine.config.resource_delay).await {
        let stop = match a {
            Abort::Cancel => Stop::Cancelled,
            Abort::Timeout => Stop::TimedOut,
        };
        abort_mark(op, path, name, StackAction::Adopt, &stop);
        return Err(stop);
    }
    let mut st = op.cell.lock();
    let id = kinds::value_text(external);
    let check = match st.tree.at_mut(path).and_then(|t| t.get_mut(name)) {
        Some(r) => {
            r.physical = match uuid::Uuid::parse_str(&id) {
                Ok(u) => Physical::Uuid(u),
                Err(_) => Physical::Text(Arc::from(id.as_str())),
            };
            r.created = now();
            if kinds::checkable(r.kind) {
                Reason::StateChanged
            } else {
                Reason::text(format!("CHECK not supported for {}", r.type_name))
            }
        }
        None => return Ok(()),
    };
    let done = status(StackAction::Adopt, Phase::Complete);
    mark(op, &mut st, path, name, done, Reason::StateChanged);
    mark(
        op,
        &mut st,
        path,
        name,
        status(StackAction::Check, Phase::Complete),
        check,
    );
    publish(engine, &op.cell, &mut st);
    Ok(())
}

/// Marks a failed resource and gives the walk its reason.
fn fail(
    op: &Op,
    path: &[Arc<str>],
    name: &str,
    action: StackAction,
    why: Arc<str>,
) -> Result<(), Stop> {
    let mut st = op.cell.lock();
    mark(
        op,
        &mut st,
        path,
        name,
        status(action, Phase::Failed),
        Reason::text(why.to_string()),
    );
    publish(&op.engine, &op.cell, &mut st);
    Err(Stop::Failed(action, why))
}

/// Marks a resource whose action was stopped by a delete or a timeout.
fn abort_mark(op: &Op, path: &[Arc<str>], name: &str, action: StackAction, stop: &Stop) {
    let why = match stop {
        Stop::Cancelled => format!("{} aborted (user triggered cancel)", action_text(action)),
        Stop::TimedOut => "Timed out".to_string(),
        _ => return,
    };
    let mut st = op.cell.lock();
    mark(
        op,
        &mut st,
        path,
        name,
        status(action, Phase::Failed),
        Reason::text(why),
    );
    publish(&op.engine, &op.cell, &mut st);
}

/// Why a resource is replaced, as Heat says it: `The Resource x requires
/// replacement.` for a property that cannot change in place; a resource
/// that decides itself (a TestResource with `update_replace`) names
/// itself in full, as Heat's `str(resource)`.
fn replacement_reason(op: &Op, st: &StackState, path: &[Arc<str>], name: &str) -> Reason {
    let Some(r) = st.tree.at(path).and_then(|t| t.get(name)) else {
        return Reason::Replacement;
    };
    if r.kind != Kind::TestResource {
        return Reason::Replacement;
    }
    let Some((sname, sid)) = stack_at(&op.cell, st, path) else {
        return Reason::Replacement;
    };
    Reason::text(format!(
        "The Resource TestResource \"{name}\" [{}] Stack \"{sname}\" [{sid}] requires replacement.",
        r.physical.render(&sname, name)
    ))
}

/// The resource to be replaced steps aside (`UPDATE_COMPLETE The Resource
/// x requires replacement.`); a fresh one takes its place and keeps it
/// until the update ends.
fn begin_replacement(
    op: &Op,
    st: &mut StackState,
    path: &[Arc<str>],
    name: &str,
    kind: Option<Kind>,
    reason: Reason,
) {
    mark(
        op,
        st,
        path,
        name,
        status(StackAction::Update, Phase::InProgress),
        Reason::StateChanged,
    );
    mark(
        op,
        st,
        path,
        name,
        status(StackAction::Update, Phase::Complete),
        reason,
    );
    let Some(tree) = st.tree.at_mut(path) else {
        return;
    };
    let Some(r) = tree.get_mut(name) else {
        return;
    };
    let fresh = ResourceState::new(r.name.clone(), r.type_name.clone(), kind.unwrap_or(r.kind));
    let old = std::mem::replace(r, fresh);
    r.replaced = Some(Box::new(old));
}

/// A nested resource gets its (empty) nested stack as it starts.
fn begin_nested(op: &Op, st: &mut StackState, path: &[Arc<str>], name: &str, action: StackAction) {
    let Some((sname, _)) = stack_at(&op.cell, st, path) else {
        return;
    };
    let Some(r) = st.tree.at_mut(path).and_then(|t| t.get_mut(name)) else {
        return;
    };
    if action == StackAction::Create || r.nested().is_none() {
        let id = new_uuid();
        r.physical = Physical::Uuid(id);
        r.created = now();
        r.data = Data::Nested(Box::new(NestedStack {
            id,
            name: physical_name(&sname, name, r.short).into(),
            tree: Tree::default(),
            outputs: serde_json::Map::new(),
        }));
    }
}

/// The definition of a nested stack: a template resource's template with
/// its properties as parameters, or a group's members.
fn nested_definition(
    op: &Op,
    path: &[Arc<str>],
    def: &StackDefinition,
    name: &str,
    kind: Kind,
    props: &Value,
) -> Result<StackDefinition, String> {
    let parent = def.stack_template();
    let template: StackTemplate = match kind {
        Kind::Template => {
            let rd = def.resource(name).ok_or("no such resource")?;
            match &rd.nested {
                Some(t) => t.clone(),
                None => parent
                    .resolve_type(&rd.type_name, Some(name))
                    .map_err(|e| first_message(&e))?
                    .1
                    .ok_or("not a template resource")?,
            }
        }
        _ => {
            let doc = kinds::group::group_template(props);
            let t = Template::from_value(doc, None).map_err(|e| first_message(&e))?;
            StackTemplate::new(
                t,
                parent.environment().clone(),
                parent.files().clone(),
                parent.options().clone(),
            )
            .map_err(|e| first_message(&e))?
        }
    };
    let mut params = ParameterValues::new();
    if kind == Kind::Template {
        if let Value::Object(m) = props {
            for (k, v) in m {
                if !v.is_null() {
                    params.insert(k.clone(), v.clone());
                }
            }
        }
    }
    let st = op.cell.lock();
    let (nname, nid) = {
        let mut p = path.to_vec();
        p.push(Arc::from(name));
        stack_at(&op.cell, &st, &p).ok_or("the nested stack is gone")?
    };
    drop(st);
    let ident = identity(&op.cell.project, &nname, &nid);
    template
        .define(&params, &ident)
        .map_err(|e| first_message(&e))
}

fn first_message(e: &heat::Errors) -> String {
    e.first()
        .map(|e| e.message.clone())
        .unwrap_or_else(|| "invalid nested template".into())
}

/// Stores a nested stack's outputs (its parent's attributes).
fn nested_outputs(op: &Op, child_path: &[Arc<str>], def: &StackDefinition) {
    let engine = &op.engine;
    let mut st = op.cell.lock();
    let env = engine.env();
    let ident = stack_at(&op.cell, &st, child_path).unwrap_or_default();
    let outputs: serde_json::Map<String, Value> = {
        let Some(view) = view_of(&env, &op.cell, &st, child_path, &ident) else {
            return;
        };
        def.outputs(&view)
            .into_iter()
            .map(|o| (o.key, o.value.unwrap_or(Value::Null)))
            .collect()
    };
    let Some((last, parent)) = child_path.split_last() else {
        return;
    };
    if let Some(Data::Nested(n)) = st
        .tree
        .at_mut(parent)
        .and_then(|t| t.get_mut(last))
        .map(|r| &mut r.data)
    {
        n.outputs = outputs;
    }
}

/// After a failed update: every replaced resource comes back and its
/// replacement is deleted (recursively in nested stacks).
async fn restore_replaced(op: &Arc<Op>, path: Arc<[Arc<str>]>) {
    let names: Vec<(String, bool)> = {
        let st = op.cell.lock();
        st.tree
            .at(&path)
            .map(|t| {
                t.resources
                    .iter()
                    .map(|r| (r.name.to_string(), r.replaced.is_some()))
                    .collect()
            })
            .unwrap_or_default()
    };
    for (name, replaced) in names {
        if replaced {
            // The replacement goes, the original comes back.
            let _ = delete_one(op, &path, &name, false).await;
            let mut st = op.cell.lock();
            let Some(r) = st.tree.at_mut(&path).and_then(|t| t.get_mut(&name)) else {
                continue;
            };
            if let Some(old) = r.replaced.take() {
                *r = *old;
            }
            let back = status(StackAction::Create, Phase::InProgress);
            mark(op, &mut st, &path, &name, back, Reason::StateChanged);
            let done = status(StackAction::Create, Phase::Complete);
            mark(op, &mut st, &path, &name, done, Reason::StateChanged);
            publish(&op.engine, &op.cell, &mut st);
        } else {
            let mut child = path.to_vec();
            child.push(Arc::from(name.as_str()));
            let nested = {
                let st = op.cell.lock();
                st.tree.at(&child).is_some()
            };
            if nested {
                Box::pin(restore_replaced(op, Arc::from(child))).await;
            }
        }
    }
}

/// After a walk: deletes the left-over and replaced resources, those
/// others depended on last.
async fn cleanup(
    op: &Arc<Op>,
    path: &Arc<[Arc<str>]>,
    order: Option<&StackDefinition>,
) -> Result<(), Stop> {
    let (orphans, replaced): (Vec<String>, Vec<String>) = {
        let st = op.cell.lock();
        let Some(tree) = st.tree.at(path) else {
            return Ok(());
        };
        (
            tree.resources
                .iter()
                .filter(|r| r.orphan)
                .map(|r| r.name.to_string())
                .collect(),
            tree.resources
                .iter()
                .filter(|r| !r.orphan && r.replaced.is_some())
                .map(|r| r.name.to_string())
                .collect(),
        )
    };
    if orphans.is_empty() && replaced.is_empty() {
        return Ok(());
    }
    let levels = delete_levels(
        path,
        order,
        &orphans.iter().chain(&replaced).cloned().collect::<Vec<_>>(),
    );
    for level in levels {
        let mut set = JoinSet::new();
        for name in level {
            let is_orphan = orphans.contains(&name);
            let (op, path) = (op.clone(), path.clone());
            set.spawn(async move {
                delete_one(&op, &path, &name, true).await?;
                if is_orphan {
                    delete_one(&op, &path, &name, false).await?;
                }
                Ok(())
            });
        }
        join_level(op, set).await?;
    }
    let mut st = op.cell.lock();
    if let Some(tree) = st.tree.at_mut(path) {
        tree.resources.retain(|r| !r.orphan);
    }
    publish(&op.engine, &op.cell, &mut st);
    Ok(())
}

/// Deletion order for `names`: the reverse of `order`'s creation levels
/// (only the stack's own resources; nested ones in reverse tree order).
fn delete_levels(
    path: &[Arc<str>],
    order: Option<&StackDefinition>,
    names: &[String],
) -> Vec<Vec<String>> {
    let mut levels: Vec<Vec<String>> = Vec::new();
    let mut placed: Vec<&String> = Vec::new();
    if let (true, Some(def)) = (path.is_empty(), order) {
        let g = graph_of(def);
        if let Some(ls) = g.delete_levels() {
            for l in ls {
                let level: Vec<String> = l
                    .into_iter()
                    .filter(|n| names.iter().any(|x| x == n))
                    .map(String::from)
                    .collect();
                placed.extend(names.iter().filter(|n| level.contains(n)));
                if !level.is_empty() {
                    levels.push(level);
                }
            }
        }
    }
    // Anything the order does not know goes first, last-defined first.
    let unplaced: Vec<String> = names
        .iter()
        .rev()
        .filter(|n| !placed.contains(n))
        .cloned()
        .collect();
    let mut out: Vec<Vec<String>> = unplaced.into_iter().map(|n| vec![n]).collect();
    out.extend(levels);
    out
}

/// Deletes every resource of the tree at `path`.
async fn delete_all(
    op: &Arc<Op>,
    path: &Arc<[Arc<str>]>,
    order: Option<&StackDefinition>,
) -> Result<(), Stop> {
    let names: Vec<String> = {
        let st = op.cell.lock();
        st.tree
            .at(path)
            .map(|t| t.resources.iter().map(|r| r.name.to_string()).collect())
            .unwrap_or_default()
    };
    for level in delete_levels(path, order, &names) {
        let mut set = JoinSet::new();
        for name in level {
            let (op, path) = (op.clone(), path.clone());
            set.spawn(async move {
                // A replaced resource left by an update goes too.
                delete_one(&op, &path, &name, true).await?;
                delete_one(&op, &path, &name, false).await
            });
        }
        join_level(op, set).await?;
    }
    let mut st = op.cell.lock();
    if let Some(tree) = st.tree.at_mut(path) {
        tree.resources.clear();
    }
    publish(&op.engine, &op.cell, &mut st);
    Ok(())
}

/// Deletes resource `name` (or, with `replaced`, the one it replaced):
/// `DELETE_IN_PROGRESS`, the simulated time, addresses given back,
/// `DELETE_COMPLETE`. One never acted on goes silently.
async fn delete_one(
    op: &Arc<Op>,
    path: &Arc<[Arc<str>]>,
    name: &str,
    replaced: bool,
) -> Result<(), Stop> {
    let engine = &op.engine;
    let (effort, nested, attempted) = {
        let mut st = op.cell.lock();
        let Some(r) = st.tree.at(path).and_then(|t| t.get(name)) else {
            return Ok(());
        };
        let target = if replaced {
            match &r.replaced {
                Some(old) => &**old,
                None => return Ok(()),
            }
        } else {
            r
        };
        let attempted = target.attempted() && target.status.action != StackAction::Delete;
        let effort = kinds::effort(
            target.kind,
            StackAction::Delete,
            name,
            &Value::Null,
            Some(target),
            &engine.config,
        );
        let nested = target.nested().is_some() && !replaced;
        if attempted {
            if replaced {
                mark_replaced(
                    op,
                    &mut st,
                    path,
                    name,
                    status(StackAction::Delete, Phase::InProgress),
                );
            } else {
                mark(
                    op,
                    &mut st,
                    path,
                    name,
                    status(StackAction::Delete, Phase::InProgress),
                    Reason::StateChanged,
                );
            }
            publish(engine, &op.cell, &mut st);
        }
        (effort, nested, attempted)
    };
    if !attempted {
        return Ok(());
    }
    if nested {
        let mut child = path.to_vec();
        child.push(Arc::from(name));
        converge(op, Arc::from(child), None, None).await?;
    }
    // Deletes are not cancelled: a delete that supersedes waits for them.
    let _ = pause_uninterrupted(effort.wait).await;
    let mut st = op.cell.lock();
    let env = engine.env();
    let ident = stack_at(&op.cell, &st, path).unwrap_or_default();
    {
        if let Some(view) = view_of(&env, &op.cell, &st, path, &ident) {
            if let Some(r) = view.tree.get(name) {
                let target = if replaced {
                    r.replaced.as_deref()
                } else {
                    Some(r)
                };
                if let Some(t) = target {
                    kinds::release(t, &view);
                }
            }
        }
    }
    if replaced {
        mark_replaced(
            op,
            &mut st,
            path,
            name,
            status(StackAction::Delete, Phase::Complete),
        );
        if let Some(r) = st.tree.at_mut(path).and_then(|t| t.get_mut(name)) {
            r.replaced = None;
        }
    } else {
        mark(
            op,
            &mut st,
            path,
            name,
            status(StackAction::Delete, Phase::Complete),
            Reason::StateChanged,
        );
        if let Some(r) = st.tree.at_mut(path).and_then(|t| t.get_mut(name)) {
            r.data = Data::None;
        }
    }
    publish(engine, &op.cell, &mut st);
    Ok(())
}

async fn pause_uninterrupted(wait: Duration) {
    if wait.is_zero() {
        tokio::task::yield_now().await;
    } else {
        tokio::time::sleep(wait).await;
    }
}

/// Moves the resource a replacement stands in for to `s` (its own event,
/// with its own physical id).
fn mark_replaced(op: &Op, st: &mut StackState, path: &[Arc<str>], name: &str, s: StackStatus) {
    let max = op.engine.config.max_events_per_stack;
    let Some(old) = st
        .tree
        .at_mut(path)
        .and_then(|t| t.get_mut(name))
        .and_then(|r| r.replaced.as_deref_mut())
    else {
        return;
    };
    old.status = s;
    old.reason = Reason::StateChanged;
    old.updated = now();
    let (subject, physical) = (old.name.clone(), old.physical.clone());
    if path.is_empty() {
        event(st, max, Some(&subject), s, Reason::StateChanged, physical);
    }
}

// ------------------------------------------------------------ restart

/// A stack read back from the state dir that was in progress when the
/// engine stopped: Heat's `Engine went down during stack <ACTION>`.
pub(crate) fn recover(engine: &Engine, cell: &StackCell, st: &mut StackState) {
    if st.status.state != Phase::InProgress {
        return;
    }
    let action = st.status.action;
    let why = Reason::text(format!(
        "Engine went down during stack {}",
        action_text(action)
    ));
    fn reset(tree: &mut Tree, why: &Reason) -> Vec<(Arc<str>, StackStatus, Physical)> {
        let mut changed = Vec::new();
        for r in &mut tree.resources {
            if r.status.state == Phase::InProgress {
                r.status = StackStatus::new(r.status.action, Phase::Failed);
                r.reason = why.clone();
                changed.push((r.name.clone(), r.status, r.physical.clone()));
            }
            if let Data::Nested(n) = &mut r.data {
                reset(&mut n.tree, why);
            }
        }
        changed
    }
    let changed = reset(&mut st.tree, &why);
    for (name, s, physical) in changed {
        let physical = match physical {
            Physical::None => Physical::Name(0),
            p => p,
        };
        event(
            st,
            engine.config.max_events_per_stack,
            Some(&name),
            s,
            why.clone(),
            physical,
        );
    }
    set_stack(
        engine,
        cell,
        st,
        StackStatus::new(action, Phase::Failed),
        why,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names_follow_heats_rule() {
        assert!(check_name("a-b_c.1").is_ok());
        let e = check_name("1bad").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Heat rejected the request (StackValidationFailed): Invalid stack name 1bad must contain only alphanumeric or \"_-.\" characters, must start with alpha and must be 255 characters or less."
        );
        assert!(check_name("").is_err());
        assert!(check_name(&"a".repeat(256)).is_err());
    }
}

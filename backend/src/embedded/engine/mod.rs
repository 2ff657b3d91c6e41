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
//!
//! `accept` (the calls) → `operation` (one task per stack operation) →
//! `walk` (levels of the graph) → `action` (one resource) and `removal`
//! (deletes); this module holds what they share (events, publishing, the
//! stack's status) and the restart recovery.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use heat::{
    Dependencies, ParameterValues, StackDefinition, StackIdentity, StackTemplate, Template,
};
use occi_so_sdk::{
    BackendError, ChangeAction, Credentials, ResourceChange, StackAction, StackInfo, StackPreview,
    StackRef, StackSpec, StackState as Phase, StackStatus, StackUpdate,
};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

mod accept;
mod action;
mod operation;
mod removal;
mod walk;

pub(crate) use accept::{cancel, create, delete, preview_create, preview_update, update};
use action::*;
use operation::*;
use removal::*;
use walk::*;

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
    pub(super) fn env(&self) -> Env<'_> {
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
    /// The caller cancelled it (Heat's `cancel_update` /
    /// `cancel_without_rollback`).
    User,
}

impl Abort {
    /// How a walk stopped by this ends.
    fn stop(self) -> Stop {
        match self {
            Abort::Cancel => Stop::Cancelled,
            Abort::Timeout => Stop::TimedOut,
            Abort::User => Stop::UserCancelled,
        }
    }
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
    /// The caller cancelled it: a create ends `CREATE_FAILED`, an update
    /// rolls back.
    UserCancelled,
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
        let template = def.stack_template();
        kinds::check(kind, &r.name, &props, template)
            .and_then(|()| {
                kinds::group::check_nested(
                    kind,
                    &r.name,
                    r.resolved_type.name(),
                    r.nested.as_ref(),
                    &props,
                    template,
                )
            })
            .map_err(|e| BackendError::Rejected {
                kind: e.kind.heat_type().to_string(),
                message: e.message,
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
pub(crate) fn publish(engine: &Arc<Engine>, cell: &Arc<StackCell>, st: &mut StackState) {
    match &engine.journal {
        // A settled status reaches watchers only once the state dir has it,
        // so nobody (the server's journal) can record an outcome that a
        // crash would take back from the engine.
        Some(j) if !st.status.in_progress() => {
            let (weak_engine, weak_cell) = (Arc::downgrade(engine), Arc::downgrade(cell));
            j.dirty_then(
                cell,
                Box::new(move || {
                    if let (Some(engine), Some(cell)) = (weak_engine.upgrade(), weak_cell.upgrade())
                    {
                        let mut st = cell.lock();
                        tell_watchers(&engine, &cell, &mut st);
                    }
                }),
            );
        }
        Some(j) => {
            tell_watchers(engine, cell, st);
            j.dirty(cell);
        }
        None => tell_watchers(engine, cell, st),
    }
}

/// Sends the stack as it is now to its watchers.
fn tell_watchers(engine: &Engine, cell: &Arc<StackCell>, st: &mut StackState) {
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
        for bad in [String::new(), "a".repeat(256)] {
            let e = check_name(&bad).unwrap_err();
            assert!(
                matches!(&e, BackendError::Rejected { kind, message }
                    if kind == "StackValidationFailed"
                        && message.starts_with(&format!("Invalid stack name {bad} must"))),
                "{e:?}"
            );
        }
    }
}

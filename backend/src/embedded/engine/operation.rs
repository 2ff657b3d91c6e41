//! One operation per stack: create, update (with rollback to what was)
//! and delete, each a task that walks the graph and ends the stack's status.

use super::*;

/// What an operation does.
pub(super) enum Work {
    Create(Arc<StackDefinition>),
    Update(Arc<StackDefinition>),
    Delete,
}

/// Starts `work` as the stack's operation, after the running one stops.
pub(super) fn start(engine: &Arc<Engine>, cell: &Arc<StackCell>, st: &mut StackState, work: Work) {
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
        tracing::debug!(
            project = %self.cell.project,
            stack = %self.cell.name,
            status = %s,
            reason = %reason.render(&self.cell.name, s),
            "embedded stack settled"
        );
        set_stack(engine, &self.cell, &mut st, s, reason);
        st.events.shrink_to_fit();
        publish(engine, &self.cell, &mut st);
    }
}

/// Heat's stack reason for a failed walk.
pub(super) fn failure_reason(stop: &Stop) -> Reason {
    match stop {
        Stop::Failed(action, why) => {
            Reason::text(format!("Resource {} failed: {why}", action_text(*action)))
        }
        Stop::TimedOut => Reason::text("Timed out"),
        Stop::Superseded | Stop::Cancelled => Reason::Empty,
        Stop::UserCancelled => Reason::text("Stack cancelled by the user"),
    }
}

pub(super) async fn run_create(op: &Arc<Op>, def: Arc<StackDefinition>) {
    let result = converge(op, Arc::from(Vec::new()), Some(def.clone()), None).await;
    match result {
        Ok(()) => op.finish(
            Some(&def),
            status(StackAction::Create, Phase::Complete),
            Reason::Completed,
        ),
        Err(Stop::Superseded | Stop::Cancelled) => {}
        Err(Stop::UserCancelled) => op.finish(
            Some(&def),
            status(StackAction::Create, Phase::Failed),
            Reason::text("Stack CREATE cancelled"),
        ),
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

pub(super) async fn run_update(op: &Arc<Op>, def: Arc<StackDefinition>) {
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
        // A cancelled update always rolls back (Heat's `cancel_update`).
        let cancelled = stop == Stop::UserCancelled;
        let target = match (&old_def, st.inputs.disable_rollback && !cancelled) {
            (Some(old), false) => Some(old.clone()),
            _ => None,
        };
        if target.is_some() {
            let reason = if cancelled {
                Reason::text("Stack UPDATE cancelled")
            } else {
                failure_reason(&stop)
            };
            set_stack(
                engine,
                &op.cell,
                &mut st,
                status(StackAction::Update, Phase::Failed),
                reason,
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
    // The caller's cancel ended the update; the rollback itself runs.
    op.signal.send_if_modified(|s| {
        let user = *s == Signal::Abort(Abort::User);
        if user {
            *s = Signal::Run;
        }
        user
    });
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

pub(super) async fn run_delete(op: &Arc<Op>) {
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
            // The name is free before anyone can see DELETE_COMPLETE, so a
            // watcher that creates the same name at once is not refused.
            engine
                .store
                .deleted(&op.cell, engine.config.deleted_retention);
            publish(engine, &op.cell, &mut st);
        }
        Err(Stop::Superseded | Stop::Cancelled) => {}
        Err(stop) => op.finish(
            None,
            status(StackAction::Delete, Phase::Failed),
            failure_reason(&stop),
        ),
    }
}

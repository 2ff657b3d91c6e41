//! Accepting calls: Heat's synchronous checks, then the stack recorded
//! `*_IN_PROGRESS` and its operation started.

use super::*;

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
pub(super) fn initial_tree(inputs: &Inputs, def: &StackDefinition) -> Tree {
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

/// The inputs an update gives a stack that has `current`.
fn next_inputs(
    engine: &Engine,
    current: &Inputs,
    change: &StackUpdate,
) -> Result<Inputs, BackendError> {
    Ok(match change {
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
    })
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
    let new = next_inputs(engine, &current, change)?;
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

pub(super) fn restart_delete(engine: &Arc<Engine>, cell: &Arc<StackCell>, st: &mut StackState) {
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

/// Cancels the operation in progress: a create stops (`CREATE_FAILED`,
/// "Stack CREATE cancelled"), an update rolls back to what the stack was.
/// Deletes and rollbacks cannot be cancelled, as in Heat.
pub(crate) fn cancel(_engine: &Arc<Engine>, cell: &Arc<StackCell>) -> Result<(), BackendError> {
    let st = cell.lock();
    let cancellable = st.status.state == Phase::InProgress
        && matches!(st.status.action, StackAction::Create | StackAction::Update);
    if !cancellable {
        if st.status.action == StackAction::Delete && st.status.state == Phase::Complete {
            return Err(not_found(&cell.name));
        }
        return Err(BackendError::Conflict {
            kind: "NotSupported".into(),
            message: format!(
                "Cancelling update when stack is {} is not supported.",
                st.status
            ),
        });
    }
    match &st.op {
        Some(op) => {
            op.signal.send_replace(Signal::Abort(Abort::User));
            Ok(())
        }
        None => Err(BackendError::Conflict {
            kind: "NotSupported".into(),
            message: format!("Stack {} has no operation to cancel.", cell.name),
        }),
    }
}

/// What creating `spec` would create: the same checks as a create, and
/// every enabled resource to be created; nothing is kept.
pub(crate) fn preview_create(
    engine: &Arc<Engine>,
    creds: &Credentials,
    spec: &StackSpec,
) -> Result<StackPreview, BackendError> {
    check_name(&spec.name)?;
    let prepared = engine
        .templates
        .get(&spec.template, spec.environment.as_deref(), &spec.files)
        .map_err(|e| rejected(&e))?;
    let params: ParameterValues = spec
        .parameters
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let def = prepared
        .template
        .define(
            &params,
            &identity(&creds.project, &spec.name, &uuid::Uuid::nil()),
        )
        .map_err(|e| rejected(&e))?;
    check_resources(&def)?;
    let mut resources: Vec<ResourceChange> = def
        .resources()
        .map(|r| ResourceChange {
            resource_name: r.name.clone(),
            resource_type: r.type_name.clone(),
            action: ChangeAction::Create,
        })
        .collect();
    resources.sort_by(|a, b| a.resource_name.cmp(&b.resource_name));
    Ok(StackPreview { resources })
}

/// What `change` would do to the stack's resources (Heat's update
/// preview): the same checks as an update; nothing is kept.
pub(crate) fn preview_update(
    engine: &Arc<Engine>,
    cell: &Arc<StackCell>,
    change: &StackUpdate,
) -> Result<StackPreview, BackendError> {
    let current = {
        let st = cell.lock();
        if st.status.action == StackAction::Delete {
            return Err(not_found(&cell.name));
        }
        st.inputs.clone()
    };
    let new = next_inputs(engine, &current, change)?;
    let new_def = definition(cell, &new).map_err(|e| rejected(&e))?;
    check_resources(&new_def)?;
    let st = cell.lock();
    let mut resources: Vec<ResourceChange> = new_def
        .resources()
        .map(|r| {
            let action = match decide_in(engine, cell, &st, &[], &new_def, &r.name) {
                Step::Skip => ChangeAction::Unchanged,
                Step::Create => ChangeAction::Create,
                Step::Update => ChangeAction::Update,
                Step::Replace | Step::ReplaceAsked => ChangeAction::Replace,
            };
            ResourceChange {
                resource_name: r.name.clone(),
                resource_type: r.type_name.clone(),
                action,
            }
        })
        .collect();
    for r in &st.tree.resources {
        let gone = new_def.resource(&r.name).is_none() && r.attempted();
        let deleted = r.status.action == StackAction::Delete && r.status.state == Phase::Complete;
        if gone && !deleted {
            resources.push(ResourceChange {
                resource_name: r.name.to_string(),
                resource_type: r.type_name.to_string(),
                action: ChangeAction::Delete,
            });
        }
    }
    resources.sort_by(|a, b| a.resource_name.cmp(&b.resource_name));
    Ok(StackPreview { resources })
}

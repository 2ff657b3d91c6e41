//! One resource's create, update, replacement or adoption: its events,
//! the simulated time or nested walk, and what it keeps.

use super::*;

/// One resource's create, update or replacement.
pub(super) async fn act(
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
        let child = match nested_definition(op, path, def, name, kind, &props)
            .and_then(|d| members_checked(name, kind, d))
        {
            Ok(d) => Arc::new(d),
            Err(why) => {
                return fail(
                    op,
                    path,
                    name,
                    action,
                    format!("StackValidationFailed: {reason_path}: {why}").into(),
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
        let stop = a.stop();
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
pub(super) async fn adopt(
    op: &Arc<Op>,
    path: &[Arc<str>],
    name: &str,
    external: &Value,
) -> Result<(), Stop> {
    let engine = &op.engine;
    {
        let mut st = op.cell.lock();
        let s = status(StackAction::Adopt, Phase::InProgress);
        mark(op, &mut st, path, name, s, Reason::StateChanged);
        publish(engine, &op.cell, &mut st);
    }
    if let Err(a) = pause(op, engine.config.resource_delay).await {
        let stop = a.stop();
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
pub(super) fn fail(
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
pub(super) fn abort_mark(op: &Op, path: &[Arc<str>], name: &str, action: StackAction, stop: &Stop) {
    let why = match stop {
        Stop::Cancelled | Stop::UserCancelled => {
            format!("{} aborted (user triggered cancel)", action_text(action))
        }
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
pub(super) fn replacement_reason(
    op: &Op,
    st: &StackState,
    path: &[Arc<str>],
    name: &str,
) -> Reason {
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
pub(super) fn begin_replacement(
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
pub(super) fn begin_nested(
    op: &Op,
    st: &mut StackState,
    path: &[Arc<str>],
    name: &str,
    action: StackAction,
) {
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

/// Why a nested stack cannot be defined (the resource then fails with
/// `StackValidationFailed: <path>: <this>`).
#[derive(Debug, thiserror::Error)]
pub(super) enum NestedError {
    /// The resource is not in the definition.
    #[error("no such resource")]
    NoSuchResource,
    /// The resource's type resolves to no template.
    #[error("not a template resource")]
    NotTemplate,
    /// The nested template or its parameters are invalid: Heat's first message.
    #[error("{}", first_message(.0))]
    Heat(heat::Errors),
    /// The nested stack was removed meanwhile.
    #[error("the nested stack is gone")]
    Gone,
    /// A group member of Heat's own types is invalid (Heat's message, the
    /// member's path rewritten to the group's).
    #[error("{0}")]
    Member(String),
}

/// The definition of a nested stack: a template resource's template with
/// its properties as parameters, or a group's members.
pub(super) fn nested_definition(
    op: &Op,
    path: &[Arc<str>],
    def: &StackDefinition,
    name: &str,
    kind: Kind,
    props: &Value,
) -> Result<StackDefinition, NestedError> {
    let parent = def.stack_template();
    let template: StackTemplate = match kind {
        Kind::Template => {
            let rd = def.resource(name).ok_or(NestedError::NoSuchResource)?;
            match &rd.nested {
                Some(t) => t.clone(),
                None => parent
                    .resolve_type(&rd.type_name, Some(name))
                    .map_err(NestedError::Heat)?
                    .1
                    .ok_or(NestedError::NotTemplate)?,
            }
        }
        _ => {
            let doc = kinds::group::group_template(props);
            let t = Template::from_value(doc, None).map_err(NestedError::Heat)?;
            StackTemplate::new(
                t,
                parent.environment().clone(),
                parent.files().clone(),
                parent.options().clone(),
            )
            .map_err(NestedError::Heat)?
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
        stack_at(&op.cell, &st, &p).ok_or(NestedError::Gone)?
    };
    drop(st);
    let ident = identity(&op.cell.project, &nname, &nid);
    template.define(&params, &ident).map_err(NestedError::Heat)
}

/// A group's members of Heat's own types are checked when the group's
/// nested stack is made, not before the stack is created (as Heat does):
/// `Property error: g.resources[0].properties.length: ...`.
pub(super) fn members_checked(
    group: &str,
    kind: Kind,
    def: StackDefinition,
) -> Result<StackDefinition, NestedError> {
    if kind != Kind::ResourceGroup {
        return Ok(def);
    }
    for m in def.resources() {
        let Ok(props) = def.properties(&m.name, &Probe) else {
            continue;
        };
        let member = Kind::of(&m.resolved_type);
        if let Err(e) = kinds::check(member, &m.name, &props, def.stack_template()) {
            let own = format!("resources.{}", m.name);
            let theirs = format!("{group}.resources[{}]", m.name);
            return Err(NestedError::Member(e.message.replacen(&own, &theirs, 1)));
        }
    }
    Ok(def)
}

pub(super) fn first_message(e: &heat::Errors) -> String {
    e.first()
        .map(|e| e.message.clone())
        .unwrap_or_else(|| "invalid nested template".into())
}

/// Stores a nested stack's outputs (its parent's attributes).
pub(super) fn nested_outputs(op: &Op, child_path: &[Arc<str>], def: &StackDefinition) {
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

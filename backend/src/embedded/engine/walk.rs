//! Walking a stack towards a definition: which resources to create,
//! update or replace, level by level, at the same time within a level.

use super::*;

/// The names and id of the (nested) stack at `path`.
pub(super) fn stack_at(
    cell: &StackCell,
    st: &StackState,
    path: &[Arc<str>],
) -> Option<(String, uuid::Uuid)> {
    match path.split_last() {
        None => Some((cell.name.to_string(), cell.id)),
        Some((last, parent)) => {
            let n = st.tree.at(parent)?.get(last)?.nested()?;
            Some((n.name.to_string(), n.id))
        }
    }
}

/// Heat's path of a resource in failure reasons: `resources.group.resources[0].resources.inner`.
pub(super) fn resource_path(st: &StackState, path: &[Arc<str>], name: &str) -> String {
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
pub(super) enum Step {
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
pub(super) fn graph_of(def: &StackDefinition) -> Dependencies {
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
pub(super) fn converge(
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
pub(super) fn plan_tree(op: &Op, path: &[Arc<str>], def: &StackDefinition) {
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
pub(super) fn decide(op: &Op, path: &[Arc<str>], def: &StackDefinition, name: &str) -> Step {
    let st = op.cell.lock();
    decide_in(&op.engine, &op.cell, &st, path, def, name)
}

/// [`decide`] on a stack's state as it is (a preview uses it too).
pub(super) fn decide_in(
    engine: &Engine,
    cell: &StackCell,
    st: &StackState,
    path: &[Arc<str>],
    def: &StackDefinition,
    name: &str,
) -> Step {
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
    let Some((sname, sid)) = stack_at(cell, st, path) else {
        return Step::Skip;
    };
    let env = engine.env();
    let view = View {
        env: &env,
        project: &cell.project,
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
pub(super) async fn run_level(
    op: &Arc<Op>,
    path: &Arc<[Arc<str>]>,
    def: &Arc<StackDefinition>,
    jobs: Vec<(String, Step)>,
) -> Result<(), Stop> {
    match op.current() {
        Signal::Run => {}
        Signal::Supersede => return Err(Stop::Superseded),
        Signal::Abort(a) => return Err(a.stop()),
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

pub(super) async fn join_level(
    op: &Arc<Op>,
    mut set: JoinSet<Result<(), Stop>>,
) -> Result<(), Stop> {
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
pub(super) async fn pause(op: &Op, wait: Duration) -> Result<(), Abort> {
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
pub(super) fn view_of<'a>(
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
pub(super) fn mark(
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

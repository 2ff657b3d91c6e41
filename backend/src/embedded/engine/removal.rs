//! Deleting: left-over and replaced resources after a walk, every
//! resource of a deleted stack, and the originals a rollback brings back.

use super::*;

/// After a failed update: every replaced resource comes back and its
/// replacement is deleted (recursively in nested stacks).
pub(super) async fn restore_replaced(op: &Arc<Op>, path: Arc<[Arc<str>]>) {
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
pub(super) async fn cleanup(
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
pub(super) fn delete_levels(
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
pub(super) async fn delete_all(
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
pub(super) async fn delete_one(
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

pub(super) async fn pause_uninterrupted(wait: Duration) {
    if wait.is_zero() {
        tokio::task::yield_now().await;
    } else {
        tokio::time::sleep(wait).await;
    }
}

/// Moves the resource a replacement stands in for to `s` (its own event,
/// with its own physical id).
pub(super) fn mark_replaced(
    op: &Op,
    st: &mut StackState,
    path: &[Arc<str>],
    name: &str,
    s: StackStatus,
) {
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

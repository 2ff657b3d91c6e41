//! The stored state as Heat's API shows it: the stack document (status,
//! reason, parameters as strings with hidden ones masked, outputs), the
//! resources listing and the events listing.

use std::collections::BTreeMap;

use occi_so_sdk::{
    EventInfo, ResourceInfo, StackAction, StackInfo, StackOutput, StackRef, StackState as Phase,
};
use serde_json::Value;

use super::ids::{derived_uuid, iso_time};
use super::state::{OutputValue, Physical, StackCell, StackState};
use super::view::{Env, View};

/// The view of a stack's own resources.
pub(crate) fn root_view<'a>(env: &'a Env<'a>, cell: &'a StackCell, st: &'a StackState) -> View<'a> {
    View {
        env,
        project: &cell.project,
        stack_name: &cell.name,
        stack_id: &cell.id,
        tree: &st.tree,
        root: &st.tree,
    }
}

/// The stack's parameters as Heat shows them: the pseudo parameters, then
/// every template parameter with its value or default, as a string.
pub(crate) fn parameters(cell: &StackCell, st: &StackState) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    out.insert("OS::stack_id".into(), cell.id.to_string());
    out.insert("OS::project_id".into(), cell.project.to_string());
    out.insert("OS::stack_name".into(), cell.name.to_string());
    let prepared = &st.inputs.prepared;
    let env = prepared.template.environment();
    for (name, schema) in &prepared.template.template().parameters {
        let given = st
            .inputs
            .params
            .iter()
            .find(|(k, _)| &**k == name)
            .map(|(_, v)| Value::String(v.to_string()));
        let raw = given
            .or_else(|| env.parameters.get(name).cloned())
            .or_else(|| env.parameter_defaults.get(name).cloned())
            .or_else(|| schema.default.clone());
        if let Some(raw) = raw {
            let shown = match schema.coerce_unchecked(&raw) {
                Ok(v) => schema.display(&v),
                Err(_) if schema.hidden => "******".into(),
                Err(_) => heat::pyfmt::py_str(&raw),
            };
            out.insert(name.clone(), shown);
        }
    }
    out
}

/// The outputs: computed live while an operation runs, else as computed
/// when the stack settled; none once deleted.
pub(crate) fn outputs(env: &Env<'_>, cell: &StackCell, st: &StackState) -> Vec<StackOutput> {
    if st.status.action == StackAction::Delete && st.status.state == Phase::Complete {
        return Vec::new();
    }
    let keys = &st.inputs.prepared.outputs;
    if let Some(def) = &st.live {
        let view = root_view(env, cell, st);
        return def
            .outputs(&view)
            .into_iter()
            .map(|o| match o.value {
                Ok(v) => StackOutput {
                    output_key: o.key,
                    output_value: v,
                    description: Some(o.description),
                    output_error: None,
                },
                Err(e) => StackOutput {
                    output_key: o.key,
                    output_value: Value::Null,
                    description: Some(o.description),
                    output_error: Some(e.message),
                },
            })
            .collect();
    }
    let values: Option<Vec<OutputValue>> = st
        .outputs
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok());
    let Some(values) = values else {
        return keys
            .iter()
            .map(|(k, d)| StackOutput {
                output_key: k.to_string(),
                output_value: Value::Null,
                description: Some(d.to_string()),
                output_error: None,
            })
            .collect();
    };
    keys.iter()
        .zip(values.iter())
        .map(|((k, d), v)| {
            let (value, error) = match v {
                OutputValue::Value(v) => (v.clone(), None),
                OutputValue::Error(e) => (Value::Null, Some(e.to_string())),
            };
            StackOutput {
                output_key: k.to_string(),
                output_value: value,
                description: Some(d.to_string()),
                output_error: error,
            }
        })
        .collect()
}

/// `GET /stacks/{name}/{id}`.
pub(crate) fn stack_info(env: &Env<'_>, cell: &StackCell, st: &StackState) -> StackInfo {
    StackInfo {
        stack: StackRef {
            name: cell.name.to_string(),
            id: cell.id.to_string(),
        },
        status: st.status,
        status_reason: st.reason.render(&cell.name, st.status),
        outputs: outputs(env, cell, st),
        parameters: parameters(cell, st),
        creation_time: Some(iso_time(st.created)),
        updated_time: (st.updated != 0).then(|| iso_time(st.updated)),
        description: Some(st.inputs.prepared.description.to_string()),
        tags: st.inputs.tags.iter().map(|t| t.to_string()).collect(),
    }
}

/// `GET .../resources`.
pub(crate) fn resources(env: &Env<'_>, cell: &StackCell, st: &StackState) -> Vec<ResourceInfo> {
    let view = root_view(env, cell, st);
    // `required_by` from the definition's graph (live, or rebuilt).
    let graph = match &st.live {
        Some(def) => Some(def.dependencies().clone()),
        None => super::engine::definition(cell, &st.inputs)
            .ok()
            .map(|d| d.dependencies().clone()),
    };
    st.tree
        .resources
        .iter()
        .filter(|r| !(r.status.action == StackAction::Delete && r.status.state == Phase::Complete))
        .map(|r| ResourceInfo {
            resource_name: r.name.to_string(),
            resource_type: r.type_name.to_string(),
            physical_resource_id: view.physical_id(r),
            resource_status: r.status.to_string(),
            resource_status_reason: r.reason.render(&r.name, r.status),
            required_by: graph
                .as_ref()
                .map(|g| {
                    g.required_by(&r.name)
                        .into_iter()
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// `GET .../events?sort_dir=asc`.
pub(crate) fn events(cell: &StackCell, st: &StackState) -> Vec<EventInfo> {
    st.events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let name = e.subject.as_deref().unwrap_or(&cell.name);
            let physical = match (&e.subject, &e.physical) {
                (None, _) => cell.id.to_string(),
                (Some(_), Physical::None) => String::new(),
                (Some(r), p) => p.render(&cell.name, r),
            };
            EventInfo {
                id: derived_uuid(&cell.id, st.events_purged + i as u64).to_string(),
                event_time: iso_time(e.time),
                resource_name: name.to_string(),
                physical_resource_id: physical,
                resource_status: e.status.to_string(),
                resource_status_reason: e.reason.render(name, e.status),
            }
        })
        .collect()
}

//! The Heat v1 JSON bodies: what we send for create, update and validate,
//! and how Heat's stack, resource and event documents become sdk types.

use std::collections::BTreeMap;

use occi_so_sdk::{
    BackendError, ChangeAction, EventInfo, ResourceChange, ResourceInfo, StackInfo, StackOutput,
    StackPreview, StackRef, StackSpec, StackStatus, ValidateInfo, ValidateRequest,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

fn bad(message: String) -> BackendError {
    BackendError::BadGateway { status: 0, message }
}

/// An environment as sent to Heat: the caller's text untouched, or (when
/// extra registry entries must be merged in) a JSON object.
#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum EnvironmentBody {
    Text(String),
    Object(Value),
}

/// The caller's environment with `extra` resource_registry entries added
/// where the environment does not map that type itself.
///
/// Heat prefers a wildcard entry (`OS::Neutron::*`) to an exact one
/// (`OS::Neutron::Net`) of the same environment, so an extra wildcard is
/// left out when the caller maps any type it covers: the caller's mappings
/// always win, and the caller then owns that namespace.
pub(crate) fn environment(
    text: Option<&str>,
    extra: &BTreeMap<String, String>,
) -> Result<Option<EnvironmentBody>, BackendError> {
    if extra.is_empty() {
        return Ok(text.map(|t| EnvironmentBody::Text(t.to_string())));
    }
    let mut env: Value = match text.filter(|t| !t.trim().is_empty()) {
        None => Value::Object(Default::default()),
        Some(t) => serde_yaml::from_str(t).map_err(|e| BackendError::Rejected {
            kind: "InvalidEnvironment".into(),
            message: format!("the environment is not valid YAML: {e}"),
        })?,
    };
    if env.is_null() {
        env = Value::Object(Default::default());
    }
    let Some(map) = env.as_object_mut() else {
        return Err(BackendError::Rejected {
            kind: "InvalidEnvironment".into(),
            message: "the environment must be a mapping".into(),
        });
    };
    let registry = map
        .entry("resource_registry")
        .or_insert_with(|| Value::Object(Default::default()));
    if registry.is_null() {
        *registry = Value::Object(Default::default());
    }
    let Some(registry) = registry.as_object_mut() else {
        return Err(BackendError::Rejected {
            kind: "InvalidEnvironment".into(),
            message: "the environment's resource_registry must be a mapping".into(),
        });
    };
    for (from, to) in extra {
        if let Some(prefix) = from.strip_suffix('*') {
            if registry.keys().any(|k| k.starts_with(prefix)) {
                continue;
            }
        }
        registry
            .entry(from.clone())
            .or_insert_with(|| Value::String(to.clone()));
    }
    Ok(Some(EnvironmentBody::Object(env)))
}

/// Heat takes tags as one comma-separated string, so a tag cannot hold a
/// comma.
fn tags(tags: &[String]) -> Result<Option<String>, BackendError> {
    if tags.is_empty() {
        return Ok(None);
    }
    if let Some(t) = tags.iter().find(|t| t.contains(',') || t.is_empty()) {
        return Err(BackendError::Rejected {
            kind: "InvalidTag".into(),
            message: format!("stack tag {t:?} is empty or holds a comma"),
        });
    }
    Ok(Some(tags.join(",")))
}

/// Body of `POST /stacks`.
#[derive(Serialize)]
pub(crate) struct CreateBody<'a> {
    stack_name: &'a str,
    template: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    parameters: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<EnvironmentBody>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    files: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_mins: Option<u32>,
    disable_rollback: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<String>,
}

impl<'a> CreateBody<'a> {
    pub(crate) fn new(
        spec: &'a StackSpec,
        extra_registry: &BTreeMap<String, String>,
    ) -> Result<Self, BackendError> {
        Ok(CreateBody {
            stack_name: &spec.name,
            template: &spec.template,
            parameters: &spec.parameters,
            environment: environment(spec.environment.as_deref(), extra_registry)?,
            files: &spec.files,
            timeout_mins: spec.timeout_mins,
            disable_rollback: spec.disable_rollback,
            tags: tags(&spec.tags)?,
        })
    }
}

/// Body of `PATCH /stacks/{name}/{id}`.
#[derive(Serialize)]
pub(crate) struct PatchBody<'a> {
    pub parameters: &'a BTreeMap<String, String>,
}

/// Body of `PUT /stacks/{name}/{id}`.
#[derive(Serialize)]
pub(crate) struct PutBody<'a> {
    pub template: &'a str,
    pub parameters: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentBody>,
    pub files: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_mins: Option<u32>,
}

/// Body of `POST /validate`.
#[derive(Serialize)]
pub(crate) struct ValidateBody<'a> {
    template: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<EnvironmentBody>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    files: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    parameters: &'a BTreeMap<String, String>,
}

impl<'a> ValidateBody<'a> {
    pub(crate) fn new(
        req: &'a ValidateRequest,
        extra_registry: &BTreeMap<String, String>,
    ) -> Result<Self, BackendError> {
        Ok(ValidateBody {
            template: &req.template,
            environment: environment(req.environment.as_deref(), extra_registry)?,
            files: &req.files,
            parameters: &req.parameters,
        })
    }
}

#[derive(Deserialize)]
struct CreatedEnvelope {
    stack: Created,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

/// The id in `201 {"stack":{"id":…,"links":[…]}}`.
pub(crate) fn created_id(body: &[u8]) -> Result<String, BackendError> {
    let e: CreatedEnvelope = serde_json::from_slice(body)
        .map_err(|e| bad(format!("Heat's create answer has no stack id: {e}")))?;
    Ok(e.stack.id)
}

#[derive(Deserialize)]
struct StackEnvelope {
    stack: StackBody,
}

#[derive(Deserialize)]
struct StackBody {
    id: String,
    stack_name: String,
    stack_status: String,
    #[serde(default)]
    stack_status_reason: Option<String>,
    #[serde(default)]
    outputs: Option<Vec<StackOutput>>,
    #[serde(default)]
    parameters: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    creation_time: Option<String>,
    #[serde(default)]
    updated_time: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// A `GET /stacks/{name}/{id}` answer as [`StackInfo`].
pub(crate) fn stack_info(body: &[u8]) -> Result<StackInfo, BackendError> {
    let e: StackEnvelope = serde_json::from_slice(body)
        .map_err(|e| bad(format!("Heat's stack document is not as expected: {e}")))?;
    let s = e.stack;
    let status: StackStatus = s
        .stack_status
        .parse()
        .map_err(|e| bad(format!("Heat sent an unknown stack status: {e}")))?;
    let parameters = s
        .parameters
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (k, v)
        })
        .collect();
    Ok(StackInfo {
        stack: StackRef {
            name: s.stack_name,
            id: s.id,
        },
        status,
        status_reason: s.stack_status_reason.unwrap_or_default(),
        outputs: s.outputs.unwrap_or_default(),
        parameters,
        creation_time: s.creation_time,
        updated_time: s.updated_time,
        description: s.description,
        tags: s.tags.unwrap_or_default(),
    })
}

/// Name and id from the `Location` of Heat's `302` for a lookup by name
/// (`…/stacks/{name}/{id}`).
pub(crate) fn location_ref(location: &str) -> Result<StackRef, BackendError> {
    let url = reqwest::Url::parse(location)
        .or_else(|_| reqwest::Url::parse("http://heat.invalid/")?.join(location))
        .map_err(|e| {
            bad(format!(
                "Heat redirected to an unusable Location {location:?}: {e}"
            ))
        })?;
    let segments: Vec<String> = url
        .path_segments()
        .map(|s| s.filter(|s| !s.is_empty()).map(decode).collect())
        .unwrap_or_default();
    match segments.as_slice() {
        [.., stacks, name, id] if stacks == "stacks" => Ok(StackRef {
            name: name.clone(),
            id: id.clone(),
        }),
        _ => Err(bad(format!(
            "Heat redirected to {location:?}, which is not …/stacks/NAME/ID"
        ))),
    }
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

#[derive(Deserialize)]
struct ResourcesEnvelope {
    resources: Vec<ResourceBody>,
}

#[derive(Deserialize)]
struct ResourceBody {
    resource_name: String,
    resource_type: String,
    #[serde(default)]
    physical_resource_id: Option<String>,
    resource_status: String,
    #[serde(default)]
    resource_status_reason: Option<String>,
    #[serde(default)]
    required_by: Option<Vec<String>>,
}

/// `GET …/resources` as [`ResourceInfo`]s.
pub(crate) fn resources(body: &[u8]) -> Result<Vec<ResourceInfo>, BackendError> {
    let e: ResourcesEnvelope = serde_json::from_slice(body)
        .map_err(|e| bad(format!("Heat's resource list is not as expected: {e}")))?;
    Ok(e.resources
        .into_iter()
        .map(|r| ResourceInfo {
            resource_name: r.resource_name,
            resource_type: r.resource_type,
            physical_resource_id: r.physical_resource_id.unwrap_or_default(),
            resource_status: r.resource_status,
            resource_status_reason: r.resource_status_reason.unwrap_or_default(),
            required_by: r.required_by.unwrap_or_default(),
        })
        .collect())
}

/// The resources of `POST /stacks/preview` (nested stacks' resources come
/// as nested lists; they are the nested stack's, and listed flat).
pub(crate) fn create_preview(body: &[u8]) -> Result<StackPreview, BackendError> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("Heat's stack preview is not JSON: {e}")))?;
    let Some(list) = v.pointer("/stack/resources") else {
        return Err(bad("Heat's stack preview has no stack.resources".into()));
    };
    let mut resources = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<ResourceChange>) {
        match v {
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            serde_json::Value::Object(m) => {
                if let (Some(n), Some(t)) = (
                    m.get("resource_name").and_then(|x| x.as_str()),
                    m.get("resource_type").and_then(|x| x.as_str()),
                ) {
                    out.push(ResourceChange {
                        resource_name: n.to_string(),
                        resource_type: t.to_string(),
                        action: ChangeAction::Create,
                    });
                }
            }
            _ => {}
        }
    }
    walk(list, &mut resources);
    resources.sort_by(|a, b| a.resource_name.cmp(&b.resource_name));
    Ok(StackPreview { resources })
}

/// The resource changes of `PUT|PATCH /stacks/{name}/{id}/preview`.
pub(crate) fn update_preview(body: &[u8]) -> Result<StackPreview, BackendError> {
    #[derive(Deserialize)]
    struct Envelope {
        resource_changes: BTreeMap<String, Vec<Changed>>,
    }
    #[derive(Deserialize)]
    struct Changed {
        resource_name: String,
        #[serde(default)]
        resource_type: String,
    }
    let e: Envelope = serde_json::from_slice(body)
        .map_err(|e| bad(format!("Heat's update preview is not as expected: {e}")))?;
    let mut resources = Vec::new();
    for (what, list) in e.resource_changes {
        let action = match what.as_str() {
            "added" => ChangeAction::Create,
            "deleted" => ChangeAction::Delete,
            "replaced" => ChangeAction::Replace,
            "updated" => ChangeAction::Update,
            "unchanged" => ChangeAction::Unchanged,
            _ => continue,
        };
        resources.extend(list.into_iter().map(|c| ResourceChange {
            resource_name: c.resource_name,
            resource_type: c.resource_type,
            action,
        }));
    }
    resources.sort_by(|a, b| a.resource_name.cmp(&b.resource_name));
    Ok(StackPreview { resources })
}

#[derive(Deserialize)]
struct EventsEnvelope {
    events: Vec<EventBody>,
}

#[derive(Deserialize)]
struct EventBody {
    id: String,
    event_time: String,
    #[serde(default)]
    resource_name: Option<String>,
    #[serde(default)]
    logical_resource_id: Option<String>,
    #[serde(default)]
    physical_resource_id: Option<String>,
    resource_status: String,
    #[serde(default)]
    resource_status_reason: Option<String>,
}

/// One page of `GET …/events` as [`EventInfo`]s.
pub(crate) fn events(body: &[u8]) -> Result<Vec<EventInfo>, BackendError> {
    let e: EventsEnvelope = serde_json::from_slice(body)
        .map_err(|e| bad(format!("Heat's event list is not as expected: {e}")))?;
    Ok(e.events
        .into_iter()
        .map(|ev| EventInfo {
            id: ev.id,
            event_time: ev.event_time,
            resource_name: ev
                .resource_name
                .or(ev.logical_resource_id)
                .unwrap_or_default(),
            physical_resource_id: ev.physical_resource_id.unwrap_or_default(),
            resource_status: ev.resource_status,
            resource_status_reason: ev.resource_status_reason.unwrap_or_default(),
        })
        .collect())
}

#[derive(Deserialize)]
struct ValidateAnswer {
    #[serde(default, rename = "Description")]
    description: Option<String>,
    #[serde(default, rename = "Parameters")]
    parameters: BTreeMap<String, Value>,
}

/// A `POST /validate` answer as [`ValidateInfo`].
pub(crate) fn validate_info(body: &[u8]) -> Result<ValidateInfo, BackendError> {
    let v: ValidateAnswer = serde_json::from_slice(body)
        .map_err(|e| bad(format!("Heat's validate answer is not as expected: {e}")))?;
    Ok(ValidateInfo {
        description: v.description,
        parameters: v.parameters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shapes as the local Heat 27 answers them (see research/heat-local).
    const STACK: &str = r#"{"stack": {"parent": null, "disable_rollback": true, "description": "d", "parameters": {"OS::project_id": "admin", "OS::stack_id": "ab", "OS::stack_name": "s1", "length": "12", "flag": true}, "deletion_time": null, "stack_name": "s1", "stack_user_project_id": "admin", "stack_status_reason": "Stack CREATE completed successfully", "creation_time": "2026-11-21T10:00:00Z", "links": [], "capabilities": [], "notification_topics": [], "tags": null, "timeout_mins": null, "stack_status": "CREATE_COMPLETE", "stack_owner": null, "updated_time": null, "id": "ab", "outputs": [{"output_value": "x1", "output_key": "val", "description": "No description given"}, {"output_key": "bad", "output_value": null, "description": "", "output_error": "boom"}], "template_description": "d"}}"#;

    #[test]
    fn reads_a_stack_document() {
        let info = stack_info(STACK.as_bytes()).unwrap();
        assert_eq!(info.stack.name, "s1");
        assert_eq!(info.stack.id, "ab");
        assert_eq!(info.status.to_string(), "CREATE_COMPLETE");
        assert_eq!(info.parameters["length"], "12");
        assert_eq!(info.parameters["flag"], "true");
        assert_eq!(info.output("val"), Some(&Value::String("x1".into())));
        assert_eq!(info.outputs[1].output_error.as_deref(), Some("boom"));
        assert!(info.tags.is_empty());
    }

    #[test]
    fn unknown_statuses_and_garbage_are_bad_gateways() {
        let odd = STACK.replace("CREATE_COMPLETE\"", "CREATE_DONE\"");
        assert!(matches!(
            stack_info(odd.as_bytes()),
            Err(BackendError::BadGateway { .. })
        ));
        assert!(matches!(
            stack_info(b"<html>"),
            Err(BackendError::BadGateway { status: 0, .. })
        ));
    }

    #[test]
    fn redirect_locations_give_name_and_id() {
        let r = location_ref("http://127.0.0.1:8004/v1/admin/stacks/my-stack/0f1e").unwrap();
        assert_eq!((r.name.as_str(), r.id.as_str()), ("my-stack", "0f1e"));
        let r = location_ref("/v1/admin/stacks/a%2Eb/9").unwrap();
        assert_eq!(r.name, "a.b");
        let e = location_ref("http://h/v1/admin/other/x/y").unwrap_err();
        assert!(
            matches!(&e, BackendError::BadGateway { status: 0, message }
                if message.ends_with("which is not …/stacks/NAME/ID")),
            "{e:?}"
        );
    }

    #[test]
    fn extra_registry_entries_never_override_the_callers() {
        let extra: BTreeMap<String, String> = [
            ("OS::Nova::Server".to_string(), "OS::Heat::None".to_string()),
            (
                "OS::Cinder::Volume".to_string(),
                "OS::Heat::None".to_string(),
            ),
        ]
        .into();
        let env =
            "resource_registry:\n  OS::Nova::Server: OS::Heat::TestResource\nparameters:\n  a: 1\n";
        let Some(EnvironmentBody::Object(v)) = environment(Some(env), &extra).unwrap() else {
            panic!("merged into an object")
        };
        assert_eq!(
            v["resource_registry"]["OS::Nova::Server"],
            "OS::Heat::TestResource"
        );
        assert_eq!(
            v["resource_registry"]["OS::Cinder::Volume"],
            "OS::Heat::None"
        );
        assert_eq!(v["parameters"]["a"], 1);
        let globs: BTreeMap<String, String> = [
            ("OS::Nova::*".to_string(), "OS::Heat::None".to_string()),
            ("OS::Cinder::*".to_string(), "OS::Heat::None".to_string()),
        ]
        .into();
        let Some(EnvironmentBody::Object(v)) = environment(Some(env), &globs).unwrap() else {
            panic!()
        };
        assert!(v["resource_registry"].get("OS::Nova::*").is_none(), "{v}");
        assert_eq!(v["resource_registry"]["OS::Cinder::*"], "OS::Heat::None");
        let Some(EnvironmentBody::Object(v)) = environment(None, &extra).unwrap() else {
            panic!()
        };
        assert_eq!(v["resource_registry"]["OS::Nova::Server"], "OS::Heat::None");
        assert!(matches!(
            environment(Some("- a list"), &extra),
            Err(BackendError::Rejected { .. })
        ));
        assert!(matches!(
            environment(Some("a: [unclosed"), &extra),
            Err(BackendError::Rejected { .. })
        ));
        assert!(matches!(
            environment(Some("text"), &BTreeMap::new()).unwrap(),
            Some(EnvironmentBody::Text(t)) if t == "text"
        ));
    }

    #[test]
    fn create_bodies_have_heat_field_names_and_comma_tags() {
        let spec = StackSpec {
            name: "s".into(),
            template: "heat_template_version: 2018-08-31".into(),
            parameters: [("a".to_string(), "1".to_string())].into(),
            environment: None,
            files: BTreeMap::new(),
            timeout_mins: Some(5),
            disable_rollback: true,
            tags: vec!["x".into(), "y".into()],
        };
        let v = serde_json::to_value(CreateBody::new(&spec, &BTreeMap::new()).unwrap()).unwrap();
        assert_eq!(v["stack_name"], "s");
        assert_eq!(v["parameters"]["a"], "1");
        assert_eq!(v["timeout_mins"], 5);
        assert_eq!(v["disable_rollback"], true);
        assert_eq!(v["tags"], "x,y");
        assert!(v.get("files").is_none());
        let bad = StackSpec {
            tags: vec!["a,b".into()],
            ..spec
        };
        let e = CreateBody::new(&bad, &BTreeMap::new()).err();
        assert!(
            matches!(&e, Some(BackendError::Rejected { kind, message })
                if kind == "InvalidTag" && message == "stack tag \"a,b\" is empty or holds a comma"),
            "{e:?}"
        );
    }

    #[test]
    fn events_and_resources_tolerate_nulls() {
        let r = resources(br#"{"resources":[{"resource_name":"r","resource_type":"OS::Heat::None","physical_resource_id":null,"resource_status":"INIT_COMPLETE","resource_status_reason":null,"required_by":[],"links":[]}]}"#).unwrap();
        assert_eq!(r[0].physical_resource_id, "");
        let e = events(br#"{"events":[{"id":"1","event_time":"t","logical_resource_id":"s","physical_resource_id":null,"resource_status":"CREATE_IN_PROGRESS","resource_status_reason":"Stack CREATE started","links":[]}]}"#).unwrap();
        assert_eq!(e[0].resource_name, "s");
    }
}

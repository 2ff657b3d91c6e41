//! `GET /admin/stacks?tenant=T&instance=/kind/id`: the stacks one SO
//! instance holds, as the backend of each stack's cloud reports them now
//! (status, reason, parameters with hidden ones masked, outputs, and the
//! resources). This is how an operator sees what an instance deployed,
//! on the embedded engine (which has no API of its own) as on a Heat.
//!
//! The backend is called with the instance's tenant as project and the
//! request's `X-Auth-Token`, if any (a Heat that passes the caller's token
//! through needs one; the embedded engine does not).

use std::sync::Arc;

use http::HeaderMap;
use occi_so_sdk::{Credentials, Secret, StackRef};
use serde_json::{json, Value};

use super::App;
use crate::error::ApiError;
use occi_so_framework::store::InstanceKey;

/// The path.
pub(super) const PATH: &str = "/admin/stacks";

/// The query's `tenant` and `instance` (percent-decoded).
fn instance_key(query: Option<&str>) -> Result<InstanceKey, ApiError> {
    let mut tenant = None;
    let mut instance = None;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "tenant" => tenant = Some(v.into_owned()),
            "instance" => instance = Some(v.into_owned()),
            other => {
                return Err(ApiError::bad_request(format!(
                    "{PATH}: unknown query parameter '{other}' (tenant, instance)"
                )))
            }
        }
    }
    match (tenant, instance) {
        (Some(t), Some(i)) if !t.is_empty() && i.starts_with('/') => Ok(InstanceKey::new(t, i)),
        _ => Err(ApiError::bad_request(format!(
            "{PATH} needs ?tenant=NAME&instance=/kind/id (the instance's path)"
        ))),
    }
}

/// The answer for one instance.
pub(super) async fn handle(
    app: &Arc<App>,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Value, ApiError> {
    let key = instance_key(query)?;
    let inst = app.lifecycle.store().get(&key).ok_or_else(|| {
        ApiError::not_found(format!(
            "tenant '{}' has no instance at {}",
            key.tenant, key.location
        ))
    })?;
    let token = headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .map(|t| Secret::new(t.trim()));
    let creds = Credentials::new(key.tenant.clone(), token);
    let mut stacks = Vec::new();
    for record in &inst.stacks {
        let cloud = record.cloud.as_deref();
        let mut entry = json!({
            "role": record.role,
            "cloud": cloud.unwrap_or("default"),
            "name": record.name,
            "id": record.stack.as_ref().map(|s| s.id.clone()),
        });
        let Some(stack) = &record.stack else {
            entry["error"] = json!("the backend has not accepted this stack yet");
            stacks.push(entry);
            continue;
        };
        match app.lifecycle.backend_of(cloud) {
            None => {
                entry["error"] = json!(format!(
                    "no cloud named '{}' is configured",
                    cloud.unwrap_or("")
                ))
            }
            Some(backend) => {
                let stack = StackRef {
                    name: stack.name.clone(),
                    id: stack.id.clone(),
                };
                match backend.get(&creds, &stack).await {
                    Ok(info) => entry["stack"] = json!(info),
                    Err(e) => entry["error"] = json!(e.to_string()),
                }
                match backend.resources(&creds, &stack).await {
                    Ok(r) => entry["resources"] = json!(r),
                    Err(e) => entry["resources_error"] = json!(e.to_string()),
                }
            }
        }
        stacks.push(entry);
    }
    Ok(json!({
        "tenant": key.tenant,
        "instance": key.location,
        "kind": inst.kind,
        "stacks": stacks,
    }))
}

#[cfg(test)]
mod tests {
    use super::instance_key;

    #[test]
    fn the_query_names_tenant_and_instance() {
        let k = instance_key(Some("tenant=demo&instance=%2Forchestrator%2Fdefault")).unwrap();
        assert_eq!(k.tenant, "demo");
        assert_eq!(k.location, "/orchestrator/default");
        for bad in [
            None,
            Some("tenant=demo"),
            Some("instance=/x/y"),
            Some("tenant=d&instance=x"),
            Some("tenant=d&instance=/x&cloud=a"),
        ] {
            let e = instance_key(bad).unwrap_err();
            assert_eq!(e.status.as_u16(), 400, "{bad:?}");
        }
    }
}

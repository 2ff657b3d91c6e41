//! What the plugins' tests on the embedded engine share: a config file
//! for `serve` with no backend (the embedded engine) and the admin API on,
//! and `GET /admin/stacks`, the operator's view of the stacks an instance
//! holds (parameters, outputs, resources) on an engine with no API of its
//! own.
#![allow(dead_code)]

use std::path::Path;

use reqwest::Method;
use serde_json::Value;

use crate::common::{call, Server};

/// The admin token of these tests.
pub const TOKEN: &str = "embedded-test-admin-token-42";

/// The embedded engine's settings of [`embedded_args`]: simulated
/// resources done at once, wait conditions signalled after 10 ms.
pub const FAST: &str = "{resource_delay: 0s, signal_delay: 10ms}";

/// `serve` arguments for the embedded engine (no `--backend`): a config
/// file in `dir` with fast simulated resources ([`FAST`]), the admin token
/// file, and `extra` (YAML lines, e.g. a `clouds:` section) appended.
pub fn embedded_args(dir: &Path, extra: &str) -> Vec<String> {
    embedded_args_with(dir, FAST, extra)
}

/// [`embedded_args`] with the config file's `embedded:` section given
/// (YAML flow mapping, e.g. `{resource_delay: 100ms}`).
pub fn embedded_args_with(dir: &Path, embedded: &str, extra: &str) -> Vec<String> {
    let token = dir.join("admin.token");
    std::fs::write(&token, format!("{TOKEN}\n")).expect("token file");
    let config = dir.join("occi-so-embedded.yaml");
    let text = format!(
        "embedded: {embedded}\nadmin-token-file: {}\n{extra}",
        token.display()
    );
    std::fs::write(&config, text).expect("config file");
    vec!["--config".into(), config.display().to_string()]
}

/// `GET /admin/stacks?tenant=T&instance=PATH`: status and JSON body.
pub async fn admin_stacks(s: &Server, tenant: &str, instance: &str) -> (u16, Value) {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("tenant", tenant)
        .append_pair("instance", instance)
        .finish();
    let auth = format!("Bearer {TOKEN}");
    let a = call(
        &crate::common::client(),
        Method::GET,
        &s.url(&format!("/admin/stacks?{query}")),
        &[("Authorization", auth.as_str())],
        "",
    )
    .await;
    let v = serde_json::from_str(&a.body).unwrap_or(Value::String(a.body.clone()));
    (a.status.as_u16(), v)
}

/// The stacks of `/admin/stacks`' answer, failing on any error entry.
pub fn stacks(doc: &Value) -> Vec<Value> {
    let list = doc["stacks"].as_array().cloned().unwrap_or_default();
    for s in &list {
        assert!(
            s.get("error").is_none() && s.get("resources_error").is_none(),
            "the backend did not report the stack: {s}"
        );
    }
    list
}

/// The stack with `role` (panics naming the roles there are).
pub fn stack<'a>(list: &'a [Value], role: &str) -> &'a Value {
    list.iter().find(|s| s["role"] == role).unwrap_or_else(|| {
        let roles: Vec<&Value> = list.iter().map(|s| &s["role"]).collect();
        panic!("no stack with role {role}: roles {roles:?}")
    })
}

/// A parameter as the engine reports it (`""` when missing).
pub fn parameter(entry: &Value, name: &str) -> String {
    entry["stack"]["parameters"][name]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// An output's value (`Null` when missing).
pub fn output(entry: &Value, key: &str) -> Value {
    entry["stack"]["outputs"]
        .as_array()
        .and_then(|os| os.iter().find(|o| o["output_key"] == key))
        .map(|o| o["output_value"].clone())
        .unwrap_or(Value::Null)
}

/// The stack's status as reported (`CREATE_COMPLETE`...).
pub fn stack_status(entry: &Value) -> String {
    let s = &entry["stack"];
    s["status"]
        .as_str()
        .or(s["stack_status"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// Names of the stack's resources of `resource_type`, sorted.
pub fn resources_of(entry: &Value, resource_type: &str) -> Vec<String> {
    let mut names: Vec<String> = entry["resources"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter(|r| r["resource_type"] == resource_type)
                .filter_map(|r| r["resource_name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `a.b.c.d` within `prefix` (e.g. `"172.24."`), as an IPv4 address.
pub fn is_address_in(value: &str, prefix: &str) -> bool {
    value.starts_with(prefix) && value.parse::<std::net::Ipv4Addr>().is_ok()
}

/// How many times the engine logged stack `name` of `project` settling in
/// `status` (its debug line `embedded stack settled`): one per create,
/// update or delete the engine ran.
pub fn settled_count(log: &str, project: &str, name: &str, status: &str) -> usize {
    let project = format!(" project={project} ");
    let stack = format!(" stack={name} ");
    let status = format!(" status={status} ");
    log.lines()
        .filter(|l| {
            l.contains("embedded stack settled")
                && l.contains(&project)
                && l.contains(&stack)
                && l.contains(&status)
        })
        .count()
}

//! The server's configuration file as the tests write it (always with the
//! admin API on, [`ADMIN_TOKEN`]), and the admin API's calls.

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::Value;

use crate::http::{call, client, Answer};
use crate::server::Server;

/// The admin token of every test server.
pub const ADMIN_TOKEN: &str = "occi-so-testkit-admin-token-0123456789";

/// The embedded engine's settings of a quick test: simulated resources
/// done at once, wait conditions signalled after 10 ms.
pub const FAST: &str = "{resource_delay: 0s, signal_delay: 10ms}";

/// Writes the admin token file into `dir`; its path.
pub fn admin_token_file(dir: &Path) -> PathBuf {
    let path = dir.join("admin.token");
    if let Err(e) = std::fs::write(&path, format!("{ADMIN_TOKEN}\n")) {
        panic!("{}: {e}", path.display());
    }
    path
}

/// `serve` arguments for a config file in `dir` made of the admin token
/// file and `yaml` (top-level keys of the server's config file).
pub fn config_args(dir: &Path, yaml: &str) -> Vec<String> {
    let token = admin_token_file(dir);
    let path = dir.join("occi-so-test.yaml");
    let text = format!("admin-token-file: {}\n{yaml}", token.display());
    if let Err(e) = std::fs::write(&path, text) {
        panic!("{}: {e}", path.display());
    }
    vec!["--config".into(), path.display().to_string()]
}

/// `serve` arguments for the embedded engine (no `backend:`, the
/// default) with the `embedded:` section `engine` (a YAML flow mapping,
/// e.g. [`FAST`]) and `extra` YAML (e.g. a `clouds:` section).
pub fn embedded_args(dir: &Path, engine: &str, extra: &str) -> Vec<String> {
    config_args(dir, &format!("embedded: {engine}\n{extra}"))
}

/// One admin API call with [`ADMIN_TOKEN`] and a JSON body, if any.
pub async fn admin(s: &Server, method: Method, path: &str, body: Option<&Value>) -> Answer {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let text = body.map(Value::to_string).unwrap_or_default();
    let mut h = vec![("Authorization", auth.as_str())];
    if body.is_some() {
        h.push(("Content-Type", "application/json"));
    }
    call(&client(), method, &s.url(path), &h, &text).await
}

/// `GET /admin/stacks?tenant=T&instance=PATH`: the status and the JSON
/// body (the body as a JSON string when it is not JSON).
pub async fn admin_stacks(s: &Server, tenant: &str, instance: &str) -> (u16, Value) {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("tenant", tenant)
        .append_pair("instance", instance)
        .finish();
    let a = admin(s, Method::GET, &format!("/admin/stacks?{query}"), None).await;
    let doc = serde_json::from_str(&a.body).unwrap_or(Value::String(a.body.clone()));
    (a.status.as_u16(), doc)
}

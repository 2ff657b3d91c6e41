//! The admin API: plugins registered, listed and removed at run time.
//! JSON in and out; authenticated with the admin token
//! (`Authorization: Bearer <token>`, the first line of `--admin-token-file`),
//! separately from the OCCI callers' tokens. Without `--admin-token-file`
//! the API is off (403).
//!
//! | request | what |
//! |---|---|
//! | `GET /admin/plugins` | every plugin (and folders whose latest version was refused) |
//! | `GET /admin/plugins/{name}` | one plugin: kind, attributes, actions, source, instances |
//! | `POST /admin/plugins` `{"path": DIR}` | register the declarative plugin in folder DIR (on the server's file system; watched) |
//! | `POST /admin/plugins` `{"manifest": YAML, "files": {REL: TEXT}}` | upload a declarative plugin (kept in the state directory) |
//! | `POST /admin/plugins` `{"remote": {"url", "kind": {"term", ...}, ...}}` | register a remote SO under a kind |
//! | `DELETE /admin/plugins/{name}[?force=true]` | unregister (409 with live instances unless forced) |
//! | `GET /admin/stacks?tenant=T&instance=/kind/id` | the instance's stacks as their backends report them now ([`super::admin_stacks`]) |
//!
//! A registration answers `201` with `Location: /admin/plugins/{name}` and
//! the plugin; the kind is in `/-/` at once. Errors are
//! `{"message": "..."}` with the status of [`crate::error`].

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use occi_so_sdk::{PluginSource, Secret};
use serde::Deserialize;
use serde_json::{json, Value};

use super::App;
use crate::error::ApiError;
use crate::server::layers::{full, Body};
use occi_so_framework::registry::Binding;
use occi_so_runtime::manifest::{self, Upload};
use occi_so_runtime::sources::{source_text, FolderStatus};
use occi_so_runtime::RemoteRequest;

/// The admin API's path prefix.
pub(super) const PREFIX: &str = "/admin/";
/// The plugins collection.
pub(super) const PLUGINS: &str = "/admin/plugins";

/// A registration request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Register {
    /// A folder on the server's file system.
    #[serde(default)]
    path: Option<String>,
    /// An uploaded manifest (`plugin.yaml` text).
    #[serde(default)]
    manifest: Option<String>,
    /// The upload's other files, by relative path.
    #[serde(default)]
    files: BTreeMap<String, String>,
    /// A remote orchestrator.
    #[serde(default)]
    remote: Option<RemoteRequest>,
}

fn json_response(status: StatusCode, v: &Value) -> Response<Body> {
    let mut body = serde_json::to_vec_pretty(v).unwrap_or_default();
    body.push(b'\n');
    let mut r = Response::new(full(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Constant-time comparison, so the token cannot be guessed by timing.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorize(token: Option<&Secret>, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Err(ApiError::forbidden(
            "the admin API is off: start occi-so with --admin-token-file FILE",
        ));
    };
    let challenge = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the admin API needs header Authorization: Bearer <admin token>",
        )
        .with_header(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"occi-so admin\""),
        )
    };
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(challenge)?;
    if !same(given.as_bytes(), token.expose().as_bytes()) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Authorization: the admin token is not valid",
        )
        .with_header(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"occi-so admin\""),
        ));
    }
    Ok(())
}

/// Answers one admin request (`path` starts with [`PREFIX`]).
pub(super) async fn handle(
    app: &Arc<App>,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    authorize(app.admin_token.as_ref(), headers)?;
    if path == super::admin_stacks::PATH {
        return match *method {
            Method::GET => {
                let v = super::admin_stacks::handle(app, query, headers).await?;
                Ok(json_response(StatusCode::OK, &v))
            }
            _ => Err(ApiError::method_not_allowed(path, "GET, HEAD")),
        };
    }
    let Some(sources) = app.plugins.as_ref() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "run-time plugins are not available in this server",
        ));
    };
    let rest = path.strip_prefix(PLUGINS).unwrap_or("-");
    match (method, rest) {
        (&Method::GET, "" | "/") => Ok(json_response(StatusCode::OK, &list(app))),
        (&Method::POST, "" | "/") => {
            let req: Register = serde_json::from_slice(&body).map_err(|e| {
                ApiError::bad_request(format!(
                    "the body must be JSON: {{\"path\": DIR}}, {{\"manifest\": YAML, \"files\": {{...}}}} or {{\"remote\": {{\"url\": URL, \"kind\": {{\"term\": T}}}}}} ({e})"
                ))
            })?;
            let name = match (req.path, req.manifest, req.remote) {
                (Some(path), None, None) if req.files.is_empty() => {
                    sources.register_folder(path.into()).await?
                }
                (None, Some(manifest_text), None) => {
                    let mut files: Upload = req.files;
                    files.insert(manifest::FILE_NAME.to_string(), manifest_text);
                    sources.upload(files).await?
                }
                (None, None, Some(remote)) if req.files.is_empty() => {
                    let spec = remote.resolve(sources.http()).await?;
                    sources.register_remote(spec).await?
                }
                _ => {
                    return Err(ApiError::bad_request(
                        "give exactly one of path, manifest (with files) or remote",
                    ))
                }
            };
            let binding =
                app.lifecycle.registry().by_name(&name).ok_or_else(|| {
                    ApiError::internal(format!("{name} registered but not found"))
                })?;
            let mut r = json_response(StatusCode::CREATED, &show(app, &binding));
            if let Ok(v) = HeaderValue::from_str(&format!("{PLUGINS}/{name}")) {
                r.headers_mut().insert(LOCATION, v);
            }
            Ok(r)
        }
        (_, "" | "/") => Err(ApiError::method_not_allowed(path, "GET, POST")),
        (m, rest) => {
            let Some(name) = rest
                .strip_prefix('/')
                .filter(|n| !n.is_empty() && !n.contains('/'))
            else {
                return Err(ApiError::not_found(format!(
                    "{path}: the admin API serves {PLUGINS}, {PLUGINS}/{{name}} and {}",
                    super::admin_stacks::PATH
                )));
            };
            match *m {
                Method::GET | Method::HEAD => {
                    let binding =
                        app.lifecycle.registry().by_name(name).ok_or_else(|| {
                            ApiError::not_found(format!("no plugin named '{name}'"))
                        })?;
                    Ok(json_response(StatusCode::OK, &show(app, &binding)))
                }
                Method::DELETE => {
                    let force = query
                        .unwrap_or("")
                        .split('&')
                        .any(|p| p == "force" || p == "force=true" || p == "force=1");
                    sources.unregister(name.to_string(), force).await?;
                    let mut r = Response::new(full(Bytes::new()));
                    *r.status_mut() = StatusCode::NO_CONTENT;
                    Ok(r)
                }
                _ => Err(ApiError::method_not_allowed(path, "GET, HEAD, DELETE")),
            }
        }
    }
}

fn source_json(s: &PluginSource) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

fn folder_json(f: &FolderStatus) -> Value {
    serde_json::to_value(f).unwrap_or(Value::Null)
}

/// `GET /admin/plugins`.
fn list(app: &App) -> Value {
    let registry = app.lifecycle.registry();
    let status = app.plugins.as_ref().map(|p| p.status()).unwrap_or_default();
    let default = registry.default_name();
    let plugins: Vec<Value> = registry
        .plugins()
        .iter()
        .map(|b| {
            let info = b.plugin.info();
            let folder = status.folder_of(b.name());
            json!({
                "name": info.name,
                "version": info.version,
                "description": info.description,
                "source": source_json(&info.source),
                "kind": info.kind.id(),
                "location": info.kind.location(),
                "instances": app.lifecycle.store().count_for_plugin(b.name()),
                "default": default.as_deref() == Some(b.name()),
                "state": if folder.is_some_and(|f| f.removing) { "removing" } else { "serving" },
                "error": folder.and_then(|f| f.error.clone()),
            })
        })
        .collect();
    let rejected: Vec<Value> = status
        .folders
        .values()
        .filter(|f| f.plugin.is_none())
        .map(folder_json)
        .collect();
    json!({ "plugins": plugins, "rejected": rejected })
}

/// `GET /admin/plugins/{name}`.
fn show(app: &App, b: &Binding) -> Value {
    let info = b.plugin.info();
    let registry = app.lifecycle.registry();
    let status = app.plugins.as_ref().map(|p| p.status()).unwrap_or_default();
    let mut v = json!({
        "name": info.name,
        "version": info.version,
        "description": info.description,
        "source": source_json(&info.source),
        "source_text": source_text(&info.source),
        "kind": {
            "id": info.kind.id(),
            "term": info.kind.term,
            "scheme": info.kind.scheme,
            "title": info.kind.title,
            "location": info.kind.location(),
        },
        "attributes": info.kind.attributes,
        "actions": info.kind.actions,
        "instances": app.lifecycle.store().count_for_plugin(b.name()),
        "default": registry.default_name().as_deref() == Some(b.name()),
    });
    if let Some(f) = status.folder_of(b.name()) {
        v["folder"] = folder_json(f);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
    }

    #[test]
    fn the_admin_api_is_off_without_a_token_and_wants_bearer() {
        let h = HeaderMap::new();
        assert_eq!(authorize(None, &h).unwrap_err().status, 403);
        let t = Secret::new("s3cret-token");
        let e = authorize(Some(&t), &h).unwrap_err();
        assert_eq!(e.status, 401);
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer wrong"));
        assert_eq!(authorize(Some(&t), &h).unwrap_err().status, 401);
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret-token"),
        );
        authorize(Some(&t), &h).unwrap();
    }
}

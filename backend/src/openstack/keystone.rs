//! Keystone v3: asking for a token (`POST /v3/auth/tokens`) and reading the
//! answer: the token (`X-Subject-Token`), its lifetime, its project and the
//! service catalog.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use occi_so_sdk::{BackendError, Secret};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::auth::EndpointError;
use super::config::Interface;
use super::fault;
use super::rest::{Request, Resend, Rest, Service};

/// Who asks for a token.
pub(crate) enum Identity<'a> {
    Password {
        username: &'a str,
        user_domain_name: &'a str,
        password: &'a Secret,
    },
    ApplicationCredential {
        id: Option<&'a str>,
        name: Option<&'a str>,
        username: Option<&'a str>,
        user_domain_name: &'a str,
        secret: &'a Secret,
    },
    /// Re-scoping an existing token (to read its catalog).
    Token(&'a Secret),
}

/// Which project the token is for.
pub(crate) enum Scope<'a> {
    /// None in the request (application credentials carry their own).
    Implied,
    ProjectId(&'a str),
    ProjectName {
        name: &'a str,
        domain: &'a str,
    },
}

/// The JSON body of a token request.
pub(crate) fn auth_body(identity: &Identity<'_>, scope: &Scope<'_>) -> Value {
    let identity = match identity {
        Identity::Password {
            username,
            user_domain_name,
            password,
        } => json!({
            "methods": ["password"],
            "password": {"user": {
                "name": username,
                "domain": {"name": user_domain_name},
                "password": password.expose(),
            }}
        }),
        Identity::ApplicationCredential {
            id,
            name,
            username,
            user_domain_name,
            secret,
        } => {
            let mut cred = json!({"secret": secret.expose()});
            if let Some(id) = id {
                cred["id"] = json!(id);
            } else {
                cred["name"] = json!(name);
                cred["user"] = json!({"name": username, "domain": {"name": user_domain_name}});
            }
            json!({"methods": ["application_credential"], "application_credential": cred})
        }
        Identity::Token(token) => json!({
            "methods": ["token"],
            "token": {"id": token.expose()},
        }),
    };
    let mut auth = json!({ "identity": identity });
    match scope {
        Scope::Implied => {}
        Scope::ProjectId(id) => auth["scope"] = json!({"project": {"id": id}}),
        Scope::ProjectName { name, domain } => {
            auth["scope"] = json!({"project": {"name": name, "domain": {"name": domain}}})
        }
    }
    json!({ "auth": auth })
}

/// A token and what came with it.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub value: Secret,
    pub project_id: String,
    /// When it expires, on our monotonic clock.
    pub expires: Instant,
    /// How long it lived when issued.
    pub lifetime: Duration,
    pub catalog: Vec<CatalogService>,
}

impl Token {
    /// Usable for at least `margin` more (at most half its lifetime, so a
    /// short-lived token is still used for a while).
    pub(crate) fn fresh(&self, margin: Duration) -> bool {
        let margin = margin.min(self.lifetime / 2);
        Instant::now() + margin < self.expires
    }
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct CatalogService {
    #[serde(rename = "type")]
    pub service_type: String,
    #[serde(default)]
    pub endpoints: Vec<CatalogEndpoint>,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct CatalogEndpoint {
    pub interface: String,
    #[serde(default)]
    pub region_id: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    pub url: String,
}

#[derive(Deserialize)]
struct TokenBody {
    token: TokenFields,
}

#[derive(Deserialize)]
struct TokenFields {
    expires_at: String,
    #[serde(default)]
    issued_at: Option<String>,
    #[serde(default)]
    project: Option<ProjectRef>,
    #[serde(default)]
    catalog: Vec<CatalogService>,
}

#[derive(Deserialize)]
struct ProjectRef {
    id: String,
}

/// `auth_url` as the base of Keystone v3 (`…/v3`), whichever way it was
/// written (`http://k:5000`, `http://k:5000/v3/`, `http://k:5000/identity/v3`).
pub(crate) fn v3_base(auth_url: &str) -> Result<Url, EndpointError> {
    let trimmed = auth_url.trim().trim_end_matches('/');
    let with_v3 = if trimmed.ends_with("/v3") {
        trimmed.to_string()
    } else if let Some(stem) = trimmed.strip_suffix("/v2.0") {
        format!("{stem}/v3")
    } else {
        format!("{trimmed}/v3")
    };
    let url = Url::parse(&with_v3).map_err(|source| EndpointError::AuthUnparsable {
        given: auth_url.to_string(),
        source,
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(EndpointError::AuthNotHttp(auth_url.to_string()));
    }
    Ok(url)
}

/// Ask Keystone at `base` (`…/v3`) for a token.
pub(crate) async fn issue(rest: &Rest, base: &Url, body: &Value) -> Result<Token, BackendError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|_| BackendError::Internal("auth_url cannot be a base".into()))?
        .pop_if_empty()
        .extend(["auth", "tokens"]);
    let body =
        Bytes::from(serde_json::to_vec(body).map_err(|e| BackendError::Internal(e.to_string()))?);
    let answer = rest
        .send(&Request {
            service: Service::Keystone,
            method: Method::POST,
            url,
            token: None,
            project_header: None,
            body: Some(body),
            // Asking for a token twice only yields two tokens.
            resend: Resend::Always,
        })
        .await?;
    if answer.status == StatusCode::NOT_FOUND {
        // An unknown user, project or token: the credentials are wrong.
        let (_, message) = fault::describe(answer.status, &answer.body);
        return Err(BackendError::Unauthorized {
            message: format!("Keystone refused the credentials: {message}"),
        });
    }
    if answer.status != StatusCode::CREATED && answer.status != StatusCode::OK {
        return Err(fault::from_status(
            "Keystone",
            answer.status,
            &answer.body,
            answer.elapsed,
        ));
    }
    parse_token(&answer.headers, &answer.body, SystemTime::now())
}

fn bad(message: String) -> BackendError {
    BackendError::BadGateway { status: 0, message }
}

/// Read a token answer; `now` is the wall clock when it arrived.
pub(crate) fn parse_token(
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<Token, BackendError> {
    let value = headers
        .get("X-Subject-Token")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| bad("Keystone's token answer has no X-Subject-Token header".into()))?;
    let body: TokenBody = serde_json::from_slice(body)
        .map_err(|e| bad(format!("Keystone's token answer is not a v3 token: {e}")))?;
    let t = body.token;
    let expires_at = parse_time(&t.expires_at)?;
    // Measure the lifetime on Keystone's own clock when it says when it
    // issued the token, so a skewed local clock does not matter.
    let issued_at = match &t.issued_at {
        Some(s) => parse_time(s)?,
        None => now,
    };
    let lifetime = expires_at
        .duration_since(issued_at)
        .map_err(|_| bad("Keystone issued a token that has already expired".into()))?;
    let project_id = t
        .project
        .map(|p| p.id)
        .ok_or_else(|| bad("Keystone issued a token without a project scope".into()))?;
    Ok(Token {
        value: Secret::new(value),
        project_id,
        expires: Instant::now() + lifetime,
        lifetime,
        catalog: t.catalog,
    })
}

fn parse_time(text: &str) -> Result<SystemTime, BackendError> {
    humantime::parse_rfc3339_weak(text.trim_end_matches('Z'))
        .map_err(|e| bad(format!("Keystone time {text:?}: {e}")))
}

/// The URL of `service_type` for `interface` (and `region`, if given).
pub(crate) fn find_endpoint<'a>(
    catalog: &'a [CatalogService],
    service_type: &str,
    interface: Interface,
    region: Option<&str>,
) -> Result<&'a str, BackendError> {
    let endpoint = catalog
        .iter()
        .filter(|s| s.service_type == service_type)
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| e.interface == interface.as_str())
        .find(|e| {
            region
                .is_none_or(|r| e.region_id.as_deref() == Some(r) || e.region.as_deref() == Some(r))
        });
    endpoint
        .map(|e| e.url.as_str())
        .ok_or_else(|| BackendError::Unavailable {
            message: format!(
                "the service catalog has no {} endpoint of type {service_type:?}{}",
                interface.as_str(),
                region
                    .map(|r| format!(" in region {r:?}"))
                    .unwrap_or_default()
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    const BODY: &str = r#"{"token": {"methods": ["password"], "user": {"domain": {"id": "default", "name": "Default"}, "id": "f6", "name": "admin", "password_expires_at": null}, "audit_ids": ["gc"], "expires_at": "2026-11-22T03:53:45.000000Z", "issued_at": "2026-11-22T02:53:45.000000Z", "project": {"domain": {"id": "default", "name": "Default"}, "id": "b163", "name": "admin"}, "is_domain": false, "roles": [{"id": "87", "name": "admin"}], "catalog": [{"endpoints": [{"id": "4b", "interface": "public", "region_id": "RegionOne", "url": "http://127.0.0.1:18205/v3", "region": "RegionOne"}], "id": "f3", "type": "identity", "name": "keystone"}, {"endpoints": [{"id": "46", "interface": "public", "region_id": "RegionOne", "url": "http://127.0.0.1:18204/v1/b163", "region": "RegionOne"}, {"id": "55", "interface": "internal", "region_id": "RegionOne", "url": "http://10.0.0.1:8004/v1/b163", "region": "RegionOne"}, {"id": "57", "interface": "public", "region_id": "RegionTwo", "url": "http://127.0.0.2:8004/v1/b163", "region": "RegionTwo"}], "id": "8b", "type": "orchestration", "name": "heat"}]}}"#;

    fn headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("X-Subject-Token", HeaderValue::from_static("gAAAA-token"));
        h
    }

    #[test]
    fn reads_a_real_keystone_token_answer() {
        let t = parse_token(&headers(), BODY.as_bytes(), SystemTime::now()).unwrap();
        assert_eq!(t.value.expose(), "gAAAA-token");
        assert_eq!(t.project_id, "b163");
        assert_eq!(t.lifetime, Duration::from_secs(3600));
        assert!(t.fresh(Duration::from_secs(120)));
        assert!(!t.fresh(Duration::from_secs(7200)) || t.lifetime / 2 < Duration::from_secs(7200));
        let public = find_endpoint(&t.catalog, "orchestration", Interface::Public, None).unwrap();
        assert_eq!(public, "http://127.0.0.1:18204/v1/b163");
        let two = find_endpoint(
            &t.catalog,
            "orchestration",
            Interface::Public,
            Some("RegionTwo"),
        )
        .unwrap();
        assert_eq!(two, "http://127.0.0.2:8004/v1/b163");
        let internal =
            find_endpoint(&t.catalog, "orchestration", Interface::Internal, None).unwrap();
        assert_eq!(internal, "http://10.0.0.1:8004/v1/b163");
        let none = find_endpoint(&t.catalog, "orchestration", Interface::Admin, None).unwrap_err();
        assert!(none.to_string().contains("admin endpoint"), "{none}");
    }

    #[test]
    fn a_short_lived_token_is_fresh_for_half_its_life() {
        let t = Token {
            value: Secret::new("t"),
            project_id: "p".into(),
            expires: Instant::now() + Duration::from_secs(60),
            lifetime: Duration::from_secs(60),
            catalog: vec![],
        };
        assert!(t.fresh(Duration::from_secs(120)));
        let t = Token {
            expires: Instant::now() + Duration::from_secs(20),
            ..t
        };
        assert!(!t.fresh(Duration::from_secs(120)));
    }

    #[test]
    fn answers_without_token_or_project_are_bad_gateways() {
        let e = parse_token(&HeaderMap::new(), BODY.as_bytes(), SystemTime::now()).unwrap_err();
        assert!(matches!(e, BackendError::BadGateway { .. }));
        let unscoped = BODY.replace(r#""project": {"domain": {"id": "default", "name": "Default"}, "id": "b163", "name": "admin"}, "#, "");
        let e = parse_token(&headers(), unscoped.as_bytes(), SystemTime::now()).unwrap_err();
        assert!(e.to_string().contains("project"), "{e}");
    }

    #[test]
    fn auth_bodies_match_keystone_v3() {
        let pw = Secret::new("pw");
        let body = auth_body(
            &Identity::Password {
                username: "so",
                user_domain_name: "Default",
                password: &pw,
            },
            &Scope::ProjectName {
                name: "demo",
                domain: "Default",
            },
        );
        assert_eq!(body["auth"]["identity"]["methods"][0], "password");
        assert_eq!(
            body["auth"]["identity"]["password"]["user"]["password"],
            "pw"
        );
        assert_eq!(body["auth"]["scope"]["project"]["name"], "demo");
        let s = Secret::new("s");
        let body = auth_body(
            &Identity::ApplicationCredential {
                id: Some("ac1"),
                name: None,
                username: None,
                user_domain_name: "Default",
                secret: &s,
            },
            &Scope::Implied,
        );
        assert_eq!(
            body["auth"]["identity"]["application_credential"]["id"],
            "ac1"
        );
        assert!(body["auth"].get("scope").is_none());
    }

    #[test]
    fn auth_urls_are_normalised_to_v3() {
        for (given, want) in [
            ("http://k:5000", "http://k:5000/v3"),
            ("http://k:5000/", "http://k:5000/v3"),
            ("http://k:5000/v3/", "http://k:5000/v3"),
            ("http://k:5000/v2.0", "http://k:5000/v3"),
            ("https://k/identity/v3", "https://k/identity/v3"),
        ] {
            assert_eq!(v3_base(given).unwrap().as_str(), want);
        }
        assert_eq!(
            v3_base("ftp://k").unwrap_err().to_string(),
            "auth_url \"ftp://k\": not http(s)"
        );
        assert_eq!(
            v3_base("not a url").unwrap_err().to_string(),
            "auth_url \"not a url\": relative URL without a base"
        );
    }
}

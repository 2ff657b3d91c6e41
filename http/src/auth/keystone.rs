//! Keystone v3 token validation, cached.
//!
//! The caller's own token validates itself (`X-Auth-Token` and
//! `X-Subject-Token` both the caller's: Keystone's default policy lets a
//! token's subject validate it), so occi-so needs no service account.

use std::time::{Duration, Instant, SystemTime};

use dashmap::DashMap;
use serde::Deserialize;

use super::AuthError;

/// How many validated tokens are kept before expired ones are swept.
const CACHE_LIMIT: usize = 10_000;

#[derive(Clone, Debug)]
struct Validated {
    project_id: String,
    project_name: Option<String>,
    until: Instant,
}

#[derive(Deserialize)]
struct TokenBody {
    token: TokenInfo,
}

#[derive(Deserialize)]
struct TokenInfo {
    expires_at: String,
    #[serde(default)]
    project: Option<Project>,
}

#[derive(Deserialize)]
struct Project {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

/// A Keystone v3 endpoint with a cache of validated tokens.
pub(crate) struct Keystone {
    url: String,
    max_age: Duration,
    client: reqwest::Client,
    cache: DashMap<String, Validated>,
}

impl Keystone {
    /// Keystone at `url` (base, without `/v3`); a validation is trusted
    /// until the token expires, at most `max_age`.
    pub(crate) fn new(url: String, max_age: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Keystone {
            url,
            max_age,
            client,
            cache: DashMap::new(),
        }
    }

    /// Whether `token` is valid and scoped to `tenant` (project name or id).
    pub(crate) async fn check(&self, token: &str, tenant: &str) -> Result<(), AuthError> {
        let now = Instant::now();
        let cached = self
            .cache
            .get(token)
            .filter(|v| v.until > now)
            .map(|v| v.clone());
        let v = match cached {
            Some(v) => v,
            None => {
                let v = self.validate(token).await.map_err(|e| match e {
                    AuthError::WrongTenant { detail, .. } => AuthError::WrongTenant {
                        tenant: tenant.to_string(),
                        detail,
                    },
                    e => e,
                })?;
                self.remember(token, v.clone());
                v
            }
        };
        if v.project_id == tenant || v.project_name.as_deref() == Some(tenant) {
            Ok(())
        } else {
            Err(AuthError::WrongTenant {
                tenant: tenant.to_string(),
                detail: format!(
                    "; it is scoped to project '{}'",
                    v.project_name.as_deref().unwrap_or(&v.project_id)
                ),
            })
        }
    }

    fn remember(&self, token: &str, v: Validated) {
        if self.cache.len() >= CACHE_LIMIT {
            let now = Instant::now();
            self.cache.retain(|_, v| v.until > now);
            if self.cache.len() >= CACHE_LIMIT {
                self.cache.clear();
            }
        }
        self.cache.insert(token.to_string(), v);
    }

    async fn validate(&self, token: &str) -> Result<Validated, AuthError> {
        let started = Instant::now();
        let response = self
            .client
            .get(format!("{}/v3/auth/tokens?nocatalog", self.url))
            .header("X-Auth-Token", token)
            .header("X-Subject-Token", token)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| AuthError::Unavailable(format!("Keystone at {}: {e}", self.url)))?;
        let status = response.status();
        tracing::debug!(
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "keystone token validation"
        );
        match status.as_u16() {
            200 => {}
            401 | 403 | 404 => {
                return Err(AuthError::InvalidToken(
                    "Keystone does not accept the token (unknown, expired or revoked)".into(),
                ))
            }
            s => {
                return Err(AuthError::Unavailable(format!(
                    "Keystone at {} answered HTTP {s}",
                    self.url
                )))
            }
        }
        let body: TokenBody = response.json().await.map_err(|e| {
            AuthError::Unavailable(format!("Keystone's answer is not a token document: {e}"))
        })?;
        let project = body.token.project.ok_or_else(|| AuthError::WrongTenant {
            tenant: String::new(),
            detail: "; it is not scoped to a project (ask Keystone for a project-scoped token)"
                .into(),
        })?;
        let expires = humantime::parse_rfc3339(&body.token.expires_at)
            .or_else(|_| humantime::parse_rfc3339_weak(body.token.expires_at.trim_end_matches('Z')))
            .map_err(|e| {
                AuthError::Unavailable(format!(
                    "Keystone's expires_at {:?} is not a time: {e}",
                    body.token.expires_at
                ))
            })?;
        let left = expires
            .duration_since(SystemTime::now())
            .map_err(|_| AuthError::InvalidToken("the token has expired".into()))?;
        Ok(Validated {
            project_id: project.id,
            project_name: project.name,
            until: Instant::now() + left.min(self.max_age),
        })
    }
}

//! For each call: which Heat URL, with which token. Pass-through forwards
//! the caller's token; password and application-credential auth use
//! occi-so's own Keystone token, cached per project until shortly before it
//! expires. The Heat endpoint is configured or read from the catalog.

use std::sync::Arc;

use occi_so_sdk::{BackendError, Credentials, Secret};
use reqwest::Url;
use tokio::time::Instant;

use super::config::{AuthConfig, ConfigError, Interface, OpenStackConfig};
use super::keystone::{self, Identity, Scope, Token};
use super::rest::Rest;
use super::token_cache::TokenCache;

/// Where and as whom one call goes.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// `…/v1/{project_id}`.
    pub base: Url,
    pub token: Option<Secret>,
    /// `X-Auth-Project`, for a noauth Heat (ignored by a Keystone one).
    pub project_header: Option<String>,
    /// The token-cache key when the token is ours (it can be renewed).
    pub token_key: Option<String>,
}

/// A Heat endpoint found in a catalog for the caller's token.
#[derive(Clone, Debug)]
struct FoundEndpoint {
    url: Url,
    expires: Instant,
    lifetime: std::time::Duration,
}

/// Resolves [`Target`]s.
pub(crate) struct Authenticator {
    auth: AuthConfig,
    heat_url: Option<String>,
    keystone: Option<Url>,
    service_type: String,
    interface: Interface,
    region: Option<String>,
    margin: std::time::Duration,
    tokens: TokenCache<Arc<Token>>,
    endpoints: TokenCache<FoundEndpoint>,
}

/// Placeholders Keystone catalogs and heat.conf use for the project.
const PROJECT_PLACEHOLDERS: [&str; 4] = [
    "%(tenant_id)s",
    "$(tenant_id)s",
    "%(project_id)s",
    "$(project_id)s",
];

/// `template` with the project placeholders replaced by `project`
/// (percent-encoded), as a URL.
pub(crate) fn heat_base(template: &str, project: &str) -> Result<Url, String> {
    let mut text = template.trim().to_string();
    if PROJECT_PLACEHOLDERS.iter().any(|p| text.contains(p)) {
        let encoded: String = Url::parse("http://x/")
            .ok()
            .and_then(|mut u| {
                u.path_segments_mut().ok()?.clear().push(project);
                Some(u.path().trim_start_matches('/').to_string())
            })
            .unwrap_or_default();
        for p in PROJECT_PLACEHOLDERS {
            text = text.replace(p, &encoded);
        }
    }
    let url = Url::parse(&text).map_err(|e| format!("Heat URL {template:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(format!("Heat URL {template:?}: not an http(s) URL"));
    }
    Ok(url)
}

impl Authenticator {
    pub(crate) fn new(config: &OpenStackConfig) -> Result<Self, ConfigError> {
        config.check()?;
        if let Some(url) = &config.heat_url {
            heat_base(url, "project").map_err(ConfigError::Invalid)?;
        }
        let auth_url = match &config.auth {
            AuthConfig::PassThrough { auth_url, .. } => auth_url.clone(),
            AuthConfig::Password { auth_url, .. }
            | AuthConfig::ApplicationCredential { auth_url, .. } => Some(auth_url.clone()),
        };
        let keystone = auth_url
            .map(|u| keystone::v3_base(&u))
            .transpose()
            .map_err(ConfigError::Invalid)?;
        Ok(Authenticator {
            auth: config.auth.clone(),
            heat_url: config.heat_url.clone(),
            keystone,
            service_type: config.service_type.clone(),
            interface: config.interface,
            region: config.region.clone(),
            margin: config.token_refresh_margin,
            tokens: TokenCache::new(),
            endpoints: TokenCache::new(),
        })
    }

    /// Whether a 401 from Heat is worth one retry with a new token.
    pub(crate) fn renewable(&self, target: &Target) -> bool {
        target.token_key.is_some()
    }

    /// Drop the token `target` used (Heat refused it), unless it was
    /// already replaced.
    pub(crate) fn invalidate(&self, target: &Target) {
        if let (Some(key), Some(used)) = (&target.token_key, &target.token) {
            self.tokens.invalidate(key, |t| t.value == *used);
        }
    }

    /// The Heat URL and token for a call on behalf of `creds`.
    pub(crate) async fn target(
        &self,
        rest: &Rest,
        creds: &Credentials,
    ) -> Result<Target, BackendError> {
        if creds.project.trim().is_empty() {
            return Err(BackendError::Rejected {
                kind: "MissingProject".into(),
                message: "no project (tenant) was given for the Heat call".into(),
            });
        }
        match &self.auth {
            AuthConfig::PassThrough {
                project_domain_name,
                ..
            } => {
                let base = match &self.heat_url {
                    Some(t) => heat_base(t, &creds.project).map_err(BackendError::Internal)?,
                    None => {
                        self.catalog_for_caller(rest, creds, project_domain_name)
                            .await?
                    }
                };
                Ok(Target {
                    base,
                    token: creds.token.clone(),
                    project_header: Some(creds.project.clone()),
                    token_key: None,
                })
            }
            AuthConfig::Password {
                username,
                password,
                user_domain_name,
                project_name,
                project_id,
                project_domain_name,
                ..
            } => {
                let (key, scope) = match (project_id, project_name) {
                    (Some(id), _) => (String::new(), Scope::ProjectId(id)),
                    (None, Some(name)) => (
                        String::new(),
                        Scope::ProjectName {
                            name,
                            domain: project_domain_name,
                        },
                    ),
                    (None, None) => (
                        creds.project.clone(),
                        Scope::ProjectName {
                            name: &creds.project,
                            domain: project_domain_name,
                        },
                    ),
                };
                let identity = Identity::Password {
                    username,
                    user_domain_name,
                    password,
                };
                self.own_token_target(rest, key, &identity, &scope).await
            }
            AuthConfig::ApplicationCredential {
                id,
                name,
                username,
                user_domain_name,
                secret,
                ..
            } => {
                let identity = Identity::ApplicationCredential {
                    id: id.as_deref(),
                    name: name.as_deref(),
                    username: username.as_deref(),
                    user_domain_name,
                    secret,
                };
                self.own_token_target(rest, String::new(), &identity, &Scope::Implied)
                    .await
            }
        }
    }

    fn keystone(&self) -> Result<&Url, BackendError> {
        self.keystone
            .as_ref()
            .ok_or_else(|| BackendError::Internal("no Keystone auth_url configured".into()))
    }

    async fn own_token_target(
        &self,
        rest: &Rest,
        key: String,
        identity: &Identity<'_>,
        scope: &Scope<'_>,
    ) -> Result<Target, BackendError> {
        let keystone = self.keystone()?;
        let margin = self.margin;
        let token = self
            .tokens
            .get(
                &key,
                |t| t.fresh(margin),
                || async {
                    let body = keystone::auth_body(identity, scope);
                    let token = keystone::issue(rest, keystone, &body).await?;
                    tracing::info!(
                        project = %token.project_id,
                        lifetime_s = token.lifetime.as_secs(),
                        "got a Keystone token"
                    );
                    Ok(Arc::new(token))
                },
            )
            .await?;
        let base = self.endpoint_from(&token)?;
        Ok(Target {
            base,
            token: Some(token.value.clone()),
            project_header: None,
            token_key: Some(key),
        })
    }

    /// The Heat base URL for a token: configured, or from its catalog.
    fn endpoint_from(&self, token: &Token) -> Result<Url, BackendError> {
        let template = match &self.heat_url {
            Some(t) => t.as_str(),
            None => keystone::find_endpoint(
                &token.catalog,
                &self.service_type,
                self.interface,
                self.region.as_deref(),
            )?,
        };
        heat_base(template, &token.project_id).map_err(|m| BackendError::BadGateway {
            status: 0,
            message: format!("the catalog's Heat endpoint is unusable: {m}"),
        })
    }

    /// Pass-through without a configured endpoint: rescope the caller's
    /// token to their project once, and read Heat's URL from that catalog
    /// (cached per project while the token lives).
    async fn catalog_for_caller(
        &self,
        rest: &Rest,
        creds: &Credentials,
        domain: &str,
    ) -> Result<Url, BackendError> {
        let keystone = self.keystone()?;
        let token = creds
            .token
            .as_ref()
            .ok_or_else(|| BackendError::Unauthorized {
                message: "an X-Auth-Token is needed to find Heat in the service catalog".into(),
            })?;
        let margin = self.margin;
        let found = self
            .endpoints
            .get(
                &creds.project,
                |e| Instant::now() + margin.min(e.lifetime / 2) < e.expires,
                || async {
                    let body = keystone::auth_body(
                        &Identity::Token(token),
                        &Scope::ProjectName {
                            name: &creds.project,
                            domain,
                        },
                    );
                    let scoped = keystone::issue(rest, keystone, &body).await?;
                    Ok(FoundEndpoint {
                        url: self.endpoint_from(&scoped)?,
                        expires: scoped.expires,
                        lifetime: scoped.lifetime,
                    })
                },
            )
            .await?;
        Ok(found.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_the_encoded_project() {
        for t in [
            "http://h:8004/v1/%(tenant_id)s",
            "http://h:8004/v1/$(tenant_id)s",
            "http://h:8004/v1/%(project_id)s",
            "http://h:8004/v1/$(project_id)s",
        ] {
            assert_eq!(
                heat_base(t, "abc").unwrap().as_str(),
                "http://h:8004/v1/abc"
            );
        }
        assert_eq!(
            heat_base("http://h/v1/%(tenant_id)s", "a b/c")
                .unwrap()
                .as_str(),
            "http://h/v1/a%20b%2Fc"
        );
        assert_eq!(
            heat_base("http://h:8004/v1/admin", "ignored")
                .unwrap()
                .as_str(),
            "http://h:8004/v1/admin"
        );
        assert!(heat_base("mailto:x@y", "p").is_err());
        assert!(heat_base("::", "p").is_err());
    }
}

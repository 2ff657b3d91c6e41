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

/// What `Url::parse` fails with.
type UrlParseError = <Url as std::str::FromStr>::Err;

/// A configured or catalogued endpoint URL that cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EndpointError {
    /// A Heat URL (configured, or from the catalog) does not parse.
    #[error("Heat URL {given:?}: {source}")]
    HeatUnparsable {
        /// The URL as given.
        given: String,
        /// Why it does not parse.
        source: UrlParseError,
    },
    /// A Heat URL is not http(s), or cannot be a base.
    #[error("Heat URL {0:?}: not an http(s) URL")]
    HeatNotHttp(String),
    /// Keystone's `auth_url` does not parse.
    #[error("auth_url {given:?}: {source}")]
    AuthUnparsable {
        /// The URL as given.
        given: String,
        /// Why it does not parse.
        source: UrlParseError,
    },
    /// Keystone's `auth_url` is not http(s).
    #[error("auth_url {0:?}: not http(s)")]
    AuthNotHttp(String),
}

/// `template` with the project placeholders replaced by `project`
/// (percent-encoded), as a URL.
pub(crate) fn heat_base(template: &str, project: &str) -> Result<Url, EndpointError> {
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
    let url = Url::parse(&text).map_err(|source| EndpointError::HeatUnparsable {
        given: template.to_string(),
        source,
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(EndpointError::HeatNotHttp(template.to_string()));
    }
    Ok(url)
}

impl Authenticator {
    pub(crate) fn new(config: &OpenStackConfig) -> Result<Self, ConfigError> {
        config.check()?;
        if let Some(url) = &config.heat_url {
            heat_base(url, "project").map_err(|e| ConfigError::Invalid(e.to_string()))?;
        }
        let auth_url = match &config.auth {
            AuthConfig::PassThrough { auth_url, .. } => auth_url.clone(),
            AuthConfig::Password { auth_url, .. }
            | AuthConfig::ApplicationCredential { auth_url, .. } => Some(auth_url.clone()),
        };
        let keystone = auth_url
            .map(|u| keystone::v3_base(&u))
            .transpose()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
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
                    Some(t) => heat_base(t, &creds.project)
                        .map_err(|e| BackendError::Internal(e.to_string()))?,
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
    use super::super::fake_keystone::{Behaviour, FakeKeystone};
    use super::*;
    use std::time::Duration;

    const HOUR: Behaviour = Behaviour {
        lifetime: Duration::from_secs(3600),
        delay: Duration::ZERO,
    };

    fn password(keystone: &FakeKeystone, project: Option<&str>) -> OpenStackConfig {
        OpenStackConfig {
            auth: AuthConfig::Password {
                auth_url: keystone.url.clone(),
                username: "so".into(),
                password: Secret::new("pw"),
                user_domain_name: "Default".into(),
                project_name: project.map(String::from),
                project_id: None,
                project_domain_name: "Default".into(),
            },
            ..OpenStackConfig::default()
        }
    }

    fn parts(config: &OpenStackConfig) -> (Authenticator, Rest) {
        (
            Authenticator::new(config).unwrap(),
            Rest::new(config).unwrap(),
        )
    }

    fn caller(project: &str) -> Credentials {
        Credentials::new(project, None)
    }

    #[tokio::test]
    async fn one_token_request_serves_many_concurrent_calls() {
        let ks = FakeKeystone::start(Behaviour {
            delay: Duration::from_millis(100),
            ..HOUR
        })
        .await;
        let (auth, rest) = parts(&password(&ks, Some("demo")));
        let (auth, rest) = (Arc::new(auth), Arc::new(rest));
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let (auth, rest) = (auth.clone(), rest.clone());
            calls.spawn(async move { auth.target(&rest, &caller("ignored")).await });
        }
        while let Some(t) = calls.join_next().await {
            let t = t.unwrap().unwrap();
            assert_eq!(t.base.as_str(), "http://127.0.0.1:9/v1/pid-demo");
            assert_eq!(t.token.as_ref().map(Secret::expose), Some("tok-1"));
        }
        assert_eq!(ks.count(), 1, "single flight");
        auth.target(&rest, &caller("x")).await.unwrap();
        assert_eq!(ks.count(), 1, "cached");
    }

    #[tokio::test]
    async fn a_token_is_renewed_shortly_before_it_expires() {
        let ks = FakeKeystone::start(Behaviour {
            lifetime: Duration::from_secs(2),
            delay: Duration::ZERO,
        })
        .await;
        let (auth, rest) = parts(&password(&ks, Some("demo")));
        let first = auth.target(&rest, &caller("p")).await.unwrap();
        let cached = auth.target(&rest, &caller("p")).await.unwrap();
        assert_eq!(first.token, cached.token);
        assert_eq!(ks.count(), 1);
        // margin = min(120 s, lifetime / 2) = 1 s before expiry
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let renewed = auth.target(&rest, &caller("p")).await.unwrap();
        assert_ne!(renewed.token, first.token);
        assert_eq!(ks.count(), 2);
    }

    #[tokio::test]
    async fn callers_projects_get_their_own_tokens_and_urls() {
        let ks = FakeKeystone::start(HOUR).await;
        let (auth, rest) = parts(&password(&ks, None));
        let a = auth.target(&rest, &caller("alpha")).await.unwrap();
        let b = auth.target(&rest, &caller("beta")).await.unwrap();
        assert_eq!(a.base.as_str(), "http://127.0.0.1:9/v1/pid-alpha");
        assert_eq!(b.base.as_str(), "http://127.0.0.1:9/v1/pid-beta");
        assert_ne!(a.token, b.token);
        auth.target(&rest, &caller("alpha")).await.unwrap();
        assert_eq!(ks.count(), 2);
    }

    #[tokio::test]
    async fn a_refused_token_is_dropped_and_replaced() {
        let ks = FakeKeystone::start(HOUR).await;
        let (auth, rest) = parts(&password(&ks, Some("demo")));
        let first = auth.target(&rest, &caller("p")).await.unwrap();
        assert!(auth.renewable(&first));
        auth.invalidate(&first);
        let second = auth.target(&rest, &caller("p")).await.unwrap();
        assert_ne!(first.token, second.token);
        // invalidating the old one again does not drop the new one
        auth.invalidate(&first);
        let third = auth.target(&rest, &caller("p")).await.unwrap();
        assert_eq!(second.token, third.token);
        assert_eq!(ks.count(), 2);
    }

    #[tokio::test]
    async fn catalog_interface_region_and_explicit_urls() {
        let ks = FakeKeystone::start(HOUR).await;
        let mut c = password(&ks, Some("demo"));
        c.interface = Interface::Internal;
        let (auth, rest) = parts(&c);
        let t = auth.target(&rest, &caller("p")).await.unwrap();
        assert_eq!(t.base.as_str(), "http://10.0.0.1:8004/v1/pid-demo");

        let mut c = password(&ks, Some("demo"));
        c.region = Some("RegionTwo".into());
        let (auth, rest) = parts(&c);
        let t = auth.target(&rest, &caller("p")).await.unwrap();
        assert_eq!(t.base.as_str(), "http://127.0.0.2:8004/v1/pid-demo");

        let mut c = password(&ks, Some("demo"));
        c.region = Some("Nowhere".into());
        let (auth, rest) = parts(&c);
        let e = auth.target(&rest, &caller("p")).await.unwrap_err();
        assert!(
            matches!(&e, BackendError::Unavailable { message } if message.contains("Nowhere")),
            "{e}"
        );

        let mut c = password(&ks, Some("demo"));
        c.heat_url = Some("https://heat.example:8004/v1/%(project_id)s".into());
        let (auth, rest) = parts(&c);
        let t = auth.target(&rest, &caller("p")).await.unwrap();
        assert_eq!(t.base.as_str(), "https://heat.example:8004/v1/pid-demo");
    }

    #[tokio::test]
    async fn application_credentials_carry_their_project() {
        let ks = FakeKeystone::start(HOUR).await;
        let c = OpenStackConfig {
            auth: AuthConfig::ApplicationCredential {
                auth_url: ks.url.clone(),
                id: Some("ac".into()),
                name: None,
                username: None,
                user_domain_name: "Default".into(),
                secret: Secret::new("s3cr3t"),
            },
            ..OpenStackConfig::default()
        };
        let (auth, rest) = parts(&c);
        let t = auth.target(&rest, &caller("whoever")).await.unwrap();
        assert_eq!(t.base.as_str(), "http://127.0.0.1:9/v1/appcred-project");
    }

    #[tokio::test]
    async fn keystone_refusals_and_absence_are_typed() {
        let ks = FakeKeystone::start(HOUR).await;
        let mut c = password(&ks, Some("demo"));
        if let AuthConfig::Password { password, .. } = &mut c.auth {
            *password = Secret::new("wrong");
        }
        let (auth, rest) = parts(&c);
        let e = auth.target(&rest, &caller("p")).await.unwrap_err();
        assert!(
            matches!(&e, BackendError::Unauthorized { message } if message.contains("Keystone")),
            "{e}"
        );

        let mut c = password(&ks, Some("demo"));
        c.retry.attempts = 1;
        if let AuthConfig::Password { auth_url, .. } = &mut c.auth {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            *auth_url = format!("http://127.0.0.1:{port}/v3");
        }
        let (auth, rest) = parts(&c);
        let e = auth.target(&rest, &caller("p")).await.unwrap_err();
        assert!(
            matches!(&e, BackendError::Unavailable { message } if message.contains("Keystone")),
            "{e}"
        );
    }

    #[tokio::test]
    async fn pass_through_finds_heat_with_the_callers_token() {
        let ks = FakeKeystone::start(HOUR).await;
        let c = OpenStackConfig {
            auth: AuthConfig::PassThrough {
                auth_url: Some(ks.url.clone()),
                project_domain_name: "Default".into(),
            },
            ..OpenStackConfig::default()
        };
        let (auth, rest) = parts(&c);
        let creds = Credentials::new("demo", Some(Secret::new("caller-token")));
        let t = auth.target(&rest, &creds).await.unwrap();
        assert_eq!(t.base.as_str(), "http://127.0.0.1:9/v1/pid-demo");
        assert_eq!(
            t.token.as_ref().map(Secret::expose),
            Some("caller-token"),
            "forwarded as is"
        );
        assert_eq!(t.project_header.as_deref(), Some("demo"));
        assert!(!auth.renewable(&t), "a caller's token is not ours to renew");
        auth.target(&rest, &creds).await.unwrap();
        assert_eq!(ks.count(), 1, "endpoint cached per project");
        let e = auth.target(&rest, &caller("demo2")).await.unwrap_err();
        assert!(matches!(e, BackendError::Unauthorized { .. }), "{e}");
        let bad = Credentials::new("demo3", Some(Secret::new("forged")));
        let e = auth.target(&rest, &bad).await.unwrap_err();
        assert!(matches!(e, BackendError::Unauthorized { .. }), "{e}");
    }

    #[tokio::test]
    async fn pass_through_with_an_explicit_endpoint_asks_nobody() {
        let c = OpenStackConfig {
            heat_url: Some("http://127.0.0.1:8004/v1/%(tenant_id)s".into()),
            ..OpenStackConfig::default()
        };
        let (auth, rest) = parts(&c);
        let creds = Credentials::new("t1", Some(Secret::new("tok")));
        let t = auth.target(&rest, &creds).await.unwrap();
        assert_eq!(t.base.as_str(), "http://127.0.0.1:8004/v1/t1");
        assert_eq!(
            rest.counters
                .keystone
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
        let e = auth.target(&rest, &caller(" ")).await.unwrap_err();
        assert!(matches!(e, BackendError::Rejected { .. }));
    }

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
        assert_eq!(
            heat_base("mailto:x@y", "p").unwrap_err().to_string(),
            "Heat URL \"mailto:x@y\": not an http(s) URL"
        );
        assert_eq!(
            heat_base("::", "p").unwrap_err().to_string(),
            "Heat URL \"::\": relative URL without a base"
        );
    }
}

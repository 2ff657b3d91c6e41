//! A real OpenStack Heat over its v1 REST API, as a [`StackBackend`].
//!
//! * `config` ([`OpenStackConfig`]): endpoint or catalog, auth, TLS, timeouts,
//!   retries, polling.
//! * `auth`, `keystone`, `token_cache`: which URL and token each call uses.
//! * `rest`: one HTTP exchange (retries, tracing, counters).
//! * `wire`: Heat's JSON bodies; `fault`: Heat's errors as [`BackendError`]s.
//!
//! Waiting is shared: [`StackBackend::watch`] joins the stack's one poller
//! in `crate::poller`.

mod auth;
mod config;
#[cfg(test)]
mod fake_keystone;
pub(crate) mod fault;
mod keystone;
mod rest;
mod token_cache;
mod wire;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use occi_so_sdk::{
    BackendError, Credentials, EventInfo, ResourceInfo, StackAction, StackBackend, StackInfo,
    StackPreview, StackRef, StackSpec, StackState, StackStatus, StackUpdate, ValidateInfo,
    ValidateRequest,
};
use reqwest::header::LOCATION;
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use tokio::sync::watch;

pub use config::{
    AuthConfig, ConfigError, Interface, OpenStackConfig, RetryConfig, LOCAL_HEAT_STUBS,
};

use self::auth::Authenticator;
use self::rest::{Answer, Request, Resend, Rest, SendError, Service};
use crate::poller::{Fetch, PollerStats, StackPollers, WatchKey};

/// Request counters of an [`OpenStackBackend`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenStackStats {
    /// HTTP requests sent to Heat (retries included).
    pub heat_requests: u64,
    /// Of those, `GET`s.
    pub heat_gets: u64,
    /// HTTP requests sent to Keystone.
    pub keystone_requests: u64,
    /// The stack pollers' counters.
    pub pollers: PollerStats,
}

/// The OpenStack Heat backend. Build it once and share it
/// (`Arc<dyn StackBackend>`); dropping it stops its pollers.
pub struct OpenStackBackend {
    client: Arc<Client>,
    pollers: StackPollers,
}

/// Everything a call needs; shared with the pollers.
struct Client {
    rest: Rest,
    auth: Authenticator,
    registry: BTreeMap<String, String>,
}

const DELETED: StackStatus = StackStatus::new(StackAction::Delete, StackState::Complete);
const EVENTS_PAGE: usize = 500;
const EVENTS_MAX_PAGES: usize = 200;

fn json_body(value: &impl Serialize) -> Result<Bytes, BackendError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| BackendError::Internal(format!("cannot encode a Heat request: {e}")))
}

fn heat_error(answer: &Answer) -> BackendError {
    fault::from_status("Heat", answer.status, &answer.body, answer.elapsed)
}

impl OpenStackBackend {
    /// The method and body of an update (or its preview).
    fn update_body(&self, update: &StackUpdate) -> Result<(Method, Bytes), BackendError> {
        Ok(match update {
            StackUpdate::Patch { parameters } => {
                (Method::PATCH, json_body(&wire::PatchBody { parameters })?)
            }
            StackUpdate::Replace {
                template,
                parameters,
                environment,
                files,
                timeout_mins,
            } => (
                Method::PUT,
                json_body(&wire::PutBody {
                    template,
                    parameters,
                    environment: wire::environment(environment.as_deref(), &self.client.registry)?,
                    files,
                    timeout_mins: *timeout_mins,
                })?,
            ),
        })
    }

    /// A backend for `config`. Checks the configuration and reads the CA
    /// file; talks to nobody yet (Keystone is asked on the first call).
    pub fn new(config: OpenStackConfig) -> Result<Self, ConfigError> {
        let auth = Authenticator::new(&config)?;
        let rest = Rest::new(&config)?;
        Ok(OpenStackBackend {
            client: Arc::new(Client {
                rest,
                auth,
                registry: config.resource_registry.clone(),
            }),
            pollers: StackPollers::new(config.poll),
        })
    }

    /// Request and poller counters.
    pub fn stats(&self) -> OpenStackStats {
        let c = &self.client.rest.counters;
        OpenStackStats {
            heat_requests: c.heat.load(Ordering::Relaxed),
            heat_gets: c.heat_get.load(Ordering::Relaxed),
            keystone_requests: c.keystone.load(Ordering::Relaxed),
            pollers: self.pollers.stats(),
        }
    }

    /// Stop every poller (watchers see their channel close) and refuse new
    /// watches. Other calls keep working.
    pub fn shutdown(&self) {
        self.pollers.shutdown();
    }

    fn key(creds: &Credentials, stack: &StackRef) -> WatchKey {
        WatchKey {
            project: creds.project.clone(),
            stack_id: stack.id.clone(),
        }
    }
}

impl Client {
    /// Send one Heat request for `creds`; on a 401 with our own token, get
    /// a new token and send it once more (Keystone may have revoked it).
    async fn call(
        &self,
        creds: &Credentials,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<Bytes>,
        resend: Resend,
    ) -> Result<Answer, SendError> {
        let undelivered = |error| SendError {
            error,
            maybe_delivered: false,
        };
        let mut target = self
            .auth
            .target(&self.rest, creds)
            .await
            .map_err(undelivered)?;
        let mut renewed = false;
        loop {
            let url = join(&target.base, segments, query);
            let answer = self
                .rest
                .send(&Request {
                    service: Service::Heat,
                    method: method.clone(),
                    url,
                    token: target.token.as_ref(),
                    project_header: target.project_header.as_deref(),
                    body: body.clone(),
                    resend,
                })
                .await?;
            if answer.status == StatusCode::UNAUTHORIZED && !renewed && self.auth.renewable(&target)
            {
                tracing::info!("Heat refused our token; renewing it once");
                self.auth.invalidate(&target);
                target = self
                    .auth
                    .target(&self.rest, creds)
                    .await
                    .map_err(undelivered)?;
                renewed = true;
                continue;
            }
            return Ok(answer);
        }
    }

    async fn get(&self, creds: &Credentials, stack: &StackRef) -> Result<StackInfo, BackendError> {
        let mut stack = stack.clone();
        for _hop in 0..2 {
            let a = self
                .call(
                    creds,
                    Method::GET,
                    &["stacks", &stack.name, &stack.id],
                    &[],
                    None,
                    Resend::Always,
                )
                .await?;
            match a.status {
                StatusCode::OK => return wire::stack_info(&a.body),
                // Heat redirects when name and id disagree: follow once.
                StatusCode::FOUND => stack = location_of(&a)?,
                _ => return Err(heat_error(&a)),
            }
        }
        Err(BackendError::BadGateway {
            status: 302,
            message: format!("Heat keeps redirecting the lookup of stack {}", stack.name),
        })
    }

    async fn find(
        &self,
        creds: &Credentials,
        name: &str,
    ) -> Result<Option<StackRef>, BackendError> {
        let a = self
            .call(
                creds,
                Method::GET,
                &["stacks", name],
                &[],
                None,
                Resend::Always,
            )
            .await?;
        let found = match a.status {
            StatusCode::FOUND | StatusCode::SEE_OTHER => location_of(&a)?,
            StatusCode::OK => wire::stack_info(&a.body)?.stack,
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(heat_error(&a)),
        };
        // Heat marks a stack DELETE_COMPLETE a moment before its name stops
        // resolving; such a stack is not live.
        match self.get(creds, &found).await {
            Ok(info) if info.status == DELETED => Ok(None),
            Ok(_) => Ok(Some(found)),
            Err(BackendError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn location_of(answer: &Answer) -> Result<StackRef, BackendError> {
    let location = answer
        .headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| BackendError::BadGateway {
            status: answer.status.as_u16(),
            message: "Heat redirected without a Location".into(),
        })?;
    wire::location_ref(location)
}

/// `base` + path segments (each percent-encoded) + query.
fn join(base: &Url, segments: &[&str], query: &[(&str, &str)]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url.set_query(None);
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    url
}

#[async_trait]
impl StackBackend for OpenStackBackend {
    fn kind(&self) -> &'static str {
        "openstack"
    }

    async fn create(
        &self,
        creds: &Credentials,
        spec: &StackSpec,
    ) -> Result<StackRef, BackendError> {
        let body = json_body(&wire::CreateBody::new(spec, &self.client.registry)?)?;
        let sent = self
            .client
            .call(
                creds,
                Method::POST,
                &["stacks"],
                &[],
                Some(body),
                Resend::IfUndelivered,
            )
            .await;
        match sent {
            Ok(a) if a.status == StatusCode::CREATED => Ok(StackRef {
                name: spec.name.clone(),
                id: wire::created_id(&a.body)?,
            }),
            Ok(a) => Err(heat_error(&a)),
            Err(e) if e.maybe_delivered => {
                // The create may have happened with its answer lost: never
                // resend it blindly; look for the stack by its name instead.
                match self.client.find(creds, &spec.name).await {
                    Ok(Some(found)) => {
                        tracing::warn!(stack = %spec.name, id = %found.id, error = %e.error,
                            "the create's answer was lost; found the stack by name");
                        Ok(found)
                    }
                    _ => Err(e.error),
                }
            }
            Err(e) => Err(e.error),
        }
    }

    async fn get(&self, creds: &Credentials, stack: &StackRef) -> Result<StackInfo, BackendError> {
        self.client.get(creds, stack).await
    }

    async fn find(
        &self,
        creds: &Credentials,
        name: &str,
    ) -> Result<Option<StackRef>, BackendError> {
        self.client.find(creds, name).await
    }

    async fn update(
        &self,
        creds: &Credentials,
        stack: &StackRef,
        update: &StackUpdate,
    ) -> Result<(), BackendError> {
        let (method, body) = self.update_body(update)?;
        // Not resent after a lost answer: a second update while the first
        // runs is refused (409) by a legacy Heat and restarts the traversal
        // on a convergence one; the caller's wait shows what happened.
        let a = self
            .client
            .call(
                creds,
                method,
                &["stacks", &stack.name, &stack.id],
                &[],
                Some(body),
                Resend::IfUndelivered,
            )
            .await?;
        self.pollers.kick(&Self::key(creds, stack));
        match a.status {
            StatusCode::ACCEPTED | StatusCode::OK => Ok(()),
            _ => Err(heat_error(&a)),
        }
    }

    async fn delete(&self, creds: &Credentials, stack: &StackRef) -> Result<(), BackendError> {
        let a = self
            .client
            .call(
                creds,
                Method::DELETE,
                &["stacks", &stack.name, &stack.id],
                &[],
                None,
                Resend::Always,
            )
            .await?;
        self.pollers.kick(&Self::key(creds, stack));
        match a.status {
            StatusCode::NO_CONTENT | StatusCode::OK | StatusCode::ACCEPTED => Ok(()),
            // An earlier try, whose answer we lost, deleted it.
            StatusCode::NOT_FOUND if a.repeated => Ok(()),
            _ => Err(heat_error(&a)),
        }
    }

    async fn cancel(&self, creds: &Credentials, stack: &StackRef) -> Result<(), BackendError> {
        // An update rolls back (`cancel_update`); a create stops where it is
        // (`cancel_without_rollback`, convergence Heat).
        let current = self.client.get(creds, stack).await?;
        let verb = match (current.status.action, current.status.in_progress()) {
            (StackAction::Update, true) => "cancel_update",
            (StackAction::Create, true) => "cancel_without_rollback",
            _ => {
                return Err(BackendError::Conflict {
                    kind: "NotSupported".into(),
                    message: format!(
                        "Cancelling update when stack is {} is not supported.",
                        current.status
                    ),
                })
            }
        };
        let body = json_body(&serde_json::json!({ verb: null }))?;
        let a = self
            .client
            .call(
                creds,
                Method::POST,
                &["stacks", &stack.name, &stack.id, "actions"],
                &[],
                Some(body),
                Resend::IfUndelivered,
            )
            .await?;
        self.pollers.kick(&Self::key(creds, stack));
        match a.status {
            StatusCode::OK | StatusCode::ACCEPTED | StatusCode::NO_CONTENT => Ok(()),
            _ => Err(heat_error(&a)),
        }
    }

    async fn preview_create(
        &self,
        creds: &Credentials,
        spec: &StackSpec,
    ) -> Result<StackPreview, BackendError> {
        let body = json_body(&wire::CreateBody::new(spec, &self.client.registry)?)?;
        let a = self
            .client
            .call(
                creds,
                Method::POST,
                &["stacks", "preview"],
                &[],
                Some(body),
                Resend::Always,
            )
            .await?;
        match a.status {
            StatusCode::OK => wire::create_preview(&a.body),
            _ => Err(heat_error(&a)),
        }
    }

    async fn preview_update(
        &self,
        creds: &Credentials,
        stack: &StackRef,
        update: &StackUpdate,
    ) -> Result<StackPreview, BackendError> {
        let (method, body) = self.update_body(update)?;
        let a = self
            .client
            .call(
                creds,
                method,
                &["stacks", &stack.name, &stack.id, "preview"],
                &[],
                Some(body),
                Resend::Always,
            )
            .await?;
        match a.status {
            StatusCode::OK => wire::update_preview(&a.body),
            _ => Err(heat_error(&a)),
        }
    }

    async fn resources(
        &self,
        creds: &Credentials,
        stack: &StackRef,
    ) -> Result<Vec<ResourceInfo>, BackendError> {
        let a = self
            .client
            .call(
                creds,
                Method::GET,
                &["stacks", &stack.name, &stack.id, "resources"],
                &[],
                None,
                Resend::Always,
            )
            .await?;
        match a.status {
            StatusCode::OK => wire::resources(&a.body),
            _ => Err(heat_error(&a)),
        }
    }

    async fn events(
        &self,
        creds: &Credentials,
        stack: &StackRef,
    ) -> Result<Vec<EventInfo>, BackendError> {
        let limit = EVENTS_PAGE.to_string();
        let mut all: Vec<EventInfo> = Vec::new();
        for _page in 0..EVENTS_MAX_PAGES {
            let marker = all.last().map(|e| e.id.clone());
            let mut query = vec![("sort_dir", "asc"), ("limit", limit.as_str())];
            if let Some(m) = &marker {
                query.push(("marker", m.as_str()));
            }
            let a = self
                .client
                .call(
                    creds,
                    Method::GET,
                    &["stacks", &stack.name, &stack.id, "events"],
                    &query,
                    None,
                    Resend::Always,
                )
                .await?;
            if a.status != StatusCode::OK {
                return Err(heat_error(&a));
            }
            let page = wire::events(&a.body)?;
            let done = page.len() < EVENTS_PAGE;
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
        Ok(all)
    }

    async fn validate(
        &self,
        creds: &Credentials,
        request: &ValidateRequest,
    ) -> Result<ValidateInfo, BackendError> {
        let body = json_body(&wire::ValidateBody::new(request, &self.client.registry)?)?;
        let a = self
            .client
            .call(
                creds,
                Method::POST,
                &["validate"],
                &[],
                Some(body),
                Resend::Always,
            )
            .await?;
        match a.status {
            StatusCode::OK => wire::validate_info(&a.body),
            _ => Err(heat_error(&a)),
        }
    }

    async fn watch(
        &self,
        creds: &Credentials,
        stack: &StackRef,
    ) -> Result<watch::Receiver<StackInfo>, BackendError> {
        let client = self.client.clone();
        let owner = creds.clone();
        let target = stack.clone();
        let fetch: Fetch = Arc::new(move || {
            let client = client.clone();
            let creds = owner.clone();
            let stack = target.clone();
            Box::pin(async move { client.get(&creds, &stack).await })
        });
        self.pollers.watch(Self::key(creds, stack), fetch).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_joined_segment_by_segment() {
        let base = Url::parse("http://127.0.0.1:8004/v1/admin").unwrap();
        assert_eq!(
            join(&base, &["stacks", "a b", "1"], &[]).as_str(),
            "http://127.0.0.1:8004/v1/admin/stacks/a%20b/1"
        );
        let base = Url::parse("http://h/v1/p/").unwrap();
        assert_eq!(
            join(
                &base,
                &["stacks", "s", "1", "events"],
                &[("sort_dir", "asc")]
            )
            .as_str(),
            "http://h/v1/p/stacks/s/1/events?sort_dir=asc"
        );
        assert_eq!(
            join(&base, &["stacks", "../x"], &[]).path(),
            "/v1/p/stacks/..%2Fx"
        );
    }

    #[test]
    fn a_bad_configuration_is_refused_up_front() {
        let e = OpenStackBackend::new(OpenStackConfig::default())
            .err()
            .expect("no endpoint");
        assert!(e.to_string().contains("heat_url"));
        let e = OpenStackBackend::new(OpenStackConfig {
            heat_url: Some("http://h/v1/x".into()),
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..OpenStackConfig::default()
        })
        .err()
        .expect("missing CA file");
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }
}

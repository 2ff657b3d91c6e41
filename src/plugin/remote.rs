//! Remote plugins: a service orchestrator elsewhere (any language) that
//! speaks the MCN SO contract over HTTP, registered under a kind of ours.
//! Each lifecycle call is forwarded with reqwest, passing the caller's
//! `X-Auth-Token` and `X-Tenant-Name`:
//!
//! | here | remote |
//! |---|---|
//! | design (create) | `PUT {collection}{id}` with the remote kind's `Category` and every attribute |
//! | deploy / provision / action | `POST {instance}?action=term` with the action's `Category`, then `GET` until settled |
//! | update | `POST {instance}` with the changed `X-OCCI-Attribute`s, then `GET` until settled |
//! | state | `GET {instance}` (`Accept: text/occi`), parsed with the `occi` crate |
//! | dispose | `DELETE {instance}` (a `202` is followed by `GET` until `404`) |
//!
//! **Tenants.** In `shared` mode (the default) each instance gets its own
//! remote path, `{collection}{uuid}`: a fresh UUID per instance, so no two
//! tenants' instances can meet at one remote path even when the remote
//! ignores `X-Tenant-Name` (an occi-so remote keeps tenants apart by it as
//! well). In `single` mode (a classic one-instance-per-process MCN SO) the
//! remote path is `{collection}default`: a create first reads it and is
//! refused (409) when an instance is there, so a classic SO hosts one
//! instance for everyone (an occi-so remote has a default instance per
//! tenant, so there it is one per tenant).
//!
//! **Errors.** A remote 4xx is relayed as the refusal it is, with its
//! message (`PluginError::Refused`: 400, 401, 403, 404, 409 and 413 keep
//! their meaning, any other 4xx reads as invalid); a 5xx, an unreadable
//! answer or an unreachable remote is `PluginError::Upstream` (502).
//!
//! **State.** `GET` on our instance relays the remote's current state
//! (every remote attribute except `occi.core.*`, `occi.so.*` and our own
//! input attributes; the remote's last error as `occi.so.remote.error`),
//! read live with the credentials of the instance's latest lifecycle call
//! (kept in memory only, never journaled) and cached for one second; when
//! it cannot be read (after a restart, or the remote is down) the snapshot
//! taken at the end of the last operation is shown.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use dashmap::DashMap;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use occi::{Category, CategoryClass};
use occi_so_sdk::{
    ActionSpec, AttributeSpec, AttributeType, Attributes, Credentials, InstanceView, KindSpec,
    LifecycleCtx, Operation, Orchestrator, Phase, PluginError, PluginInfo, PluginSource,
    PluginState, Refusal, StateReport, MCN_SERVICE_SCHEME,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The scheme remote kinds get when the registration gives none.
pub const DEFAULT_SCHEME: &str = "http://schemas.mobile-cloud-networking.eu/occi/sm#";

/// How a remote endpoint hosts instances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemoteMode {
    /// One remote path per instance: `{collection}{uuid}`.
    #[default]
    Shared,
    /// One instance per endpoint: `{collection}default`.
    Single,
}

/// A remote plugin as registered (and persisted in the state directory).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemoteSpec {
    /// Registry name.
    pub name: String,
    /// Plugin version shown in listings.
    #[serde(default = "remote_version")]
    pub version: String,
    /// One line on what it deploys.
    #[serde(default)]
    pub description: Option<String>,
    /// The remote SO's base URL (no trailing `/`).
    pub url: String,
    /// The kind served here (attributes and actions imported from the
    /// remote's query interface at registration).
    pub kind: KindSpec,
    /// The remote kind instances are created with (term, scheme).
    pub remote_kind: RemoteKind,
    /// The remote collection path (`/orchestrator/`).
    pub collection: String,
    /// How instances map to remote paths.
    #[serde(default)]
    pub mode: RemoteMode,
    /// Longest wait for one remote operation to settle (seconds).
    pub timeout_secs: u64,
}

fn remote_version() -> String {
    "remote".into()
}

/// A kind at the remote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteKind {
    /// Term.
    pub term: String,
    /// Scheme.
    pub scheme: String,
}

/// The admin API's request to register a remote plugin.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteRequest {
    /// Registry name (default: the kind term).
    #[serde(default)]
    pub name: Option<String>,
    /// The remote SO's base URL.
    pub url: String,
    /// The kind to serve here.
    pub kind: RequestKind,
    /// The remote collection (default `/orchestrator/`).
    #[serde(default)]
    pub collection: Option<String>,
    /// `shared` (default) or `single`.
    #[serde(default)]
    pub mode: RemoteMode,
    /// Longest wait for a remote operation, e.g. `30m` (default).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Attributes to declare besides (or instead of) the imported ones.
    #[serde(default)]
    pub attributes: Vec<AttributeSpec>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Plugin version to show.
    #[serde(default)]
    pub version: Option<String>,
    /// A token for reading the remote's query interface at registration
    /// (when it wants one); used once, never stored.
    #[serde(default)]
    pub token: Option<occi_so_sdk::Secret>,
    /// The tenant sent with `token`.
    #[serde(default)]
    pub tenant: Option<String>,
}

/// The kind part of a [`RemoteRequest`].
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestKind {
    /// Kind term.
    pub term: String,
    /// Kind scheme (default: the MCN service-manager scheme).
    #[serde(default)]
    pub scheme: Option<String>,
    /// Title (default: the remote kind's).
    #[serde(default)]
    pub title: Option<String>,
    /// Location (default `/{term}/`).
    #[serde(default)]
    pub location: Option<String>,
}

/// The HTTP client remote plugins use: bounded connect and request time,
/// no redirects, no proxy from the environment for loopback tests.
pub fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("occi-so/", env!("CARGO_PKG_VERSION"), " OCCI/1.2"))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

fn unreachable(url: &str, e: &reqwest::Error) -> PluginError {
    let what = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        e.to_string()
    };
    PluginError::Upstream {
        service: service(url),
        message: what,
    }
}

/// How messages name a remote orchestrator.
fn service(url: &str) -> String {
    format!("remote orchestrator {url}")
}

/// The remote's answer could not be used.
fn unreadable(url: &str, message: String) -> PluginError {
    PluginError::Upstream {
        service: service(url),
        message,
    }
}

/// A remote answer that is not a success, as a plugin error.
fn remote_error(url: &str, status: StatusCode, body: &str) -> PluginError {
    // An occi-so remote answers errors as {"message": ...} in JSON.
    let json_message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string));
    let text = json_message.as_deref().unwrap_or(body).trim();
    let mut message: String = text.chars().take(500).collect();
    if message.is_empty() {
        message = status.canonical_reason().unwrap_or("error").to_string();
    }
    let refusal = match status.as_u16() {
        401 => Refusal::Unauthenticated,
        403 => Refusal::Forbidden,
        404 | 410 => Refusal::NotFound,
        409 => Refusal::Conflict,
        413 => Refusal::TooLarge,
        400..=499 => Refusal::Invalid,
        _ => {
            return PluginError::Upstream {
                service: service(url),
                message: format!("HTTP {}: {message}", status.as_u16()),
            }
        }
    };
    PluginError::Refused {
        service: service(url),
        refusal,
        message,
    }
}

/// The attributes of an OCCI answer (text/occi headers, text/plain or
/// JSON body), as JSON values.
fn attributes_of(headers: &HeaderMap, body: &[u8]) -> Result<Attributes, String> {
    let content = occi::parse_request(headers, body).map_err(|e| e.to_string())?;
    let mut out = Attributes::new();
    for (name, value) in content.attributes.iter() {
        out.insert(name.to_string(), value.to_json());
    }
    if let Some(r) = content.resources.first() {
        for (name, value) in r.attributes.iter() {
            out.entry(name.to_string())
                .or_insert_with(|| value.to_json());
        }
    }
    Ok(out)
}

fn attribute_type(ty: &occi::AttributeType) -> AttributeType {
    match ty {
        occi::AttributeType::String => AttributeType::String,
        occi::AttributeType::Number => AttributeType::Number,
        occi::AttributeType::Integer => AttributeType::Integer,
        occi::AttributeType::Boolean => AttributeType::Boolean,
        occi::AttributeType::Enum(v) => AttributeType::Enum(v.clone()),
        occi::AttributeType::List => AttributeType::List,
        occi::AttributeType::Object => AttributeType::Object,
    }
}

/// Whether the server itself reports this attribute (never imported).
fn server_attribute(name: &str) -> bool {
    name.starts_with("occi.core.")
        || name.starts_with("occi.so.")
        || name.starts_with("occi.mcn.stack.")
}

fn import_attribute(d: &occi::AttributeDef) -> AttributeSpec {
    AttributeSpec {
        name: d.name.clone(),
        ty: attribute_type(&d.ty),
        required: d.required,
        mutable: d.mutable,
        default: d.default.as_ref().map(occi::Value::to_json),
        description: d.description.clone(),
        secret: false,
        pattern: d.pattern.clone(),
        min: None,
        max: None,
        output: false,
    }
}

fn parse_duration(text: Option<&str>) -> Result<u64, String> {
    match text {
        None => Ok(30 * 60),
        Some(t) => humantime::parse_duration(t.trim())
            .map(|d| d.as_secs().max(1))
            .map_err(|e| format!("timeout: {t:?} is not a duration like 30m ({e})")),
    }
}

impl RemoteRequest {
    /// Reads the remote's query interface and builds the registration:
    /// the remote kind (the one at `collection`, else MCN `orchestrator`),
    /// its attributes and actions imported, the request's attributes added.
    pub async fn resolve(self, http: &reqwest::Client) -> Result<RemoteSpec, PluginError> {
        let invalid = |m: String| PluginError::Invalid(m);
        let url = reqwest::Url::parse(self.url.trim())
            .map_err(|e| invalid(format!("url: {:?} is not a URL ({e})", self.url)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid(format!(
                "url: {:?} must be an http:// or https:// URL with a host",
                self.url
            )));
        }
        let base = self.url.trim().trim_end_matches('/').to_string();
        let collection = match self.collection.as_deref() {
            Some(c) => {
                let mut c = c.trim().to_string();
                if !c.starts_with('/') {
                    c.insert(0, '/');
                }
                if !c.ends_with('/') {
                    c.push('/');
                }
                c
            }
            None => "/orchestrator/".to_string(),
        };
        let timeout_secs = parse_duration(self.timeout.as_deref()).map_err(invalid)?;
        let qi = format!("{base}/-/");
        let mut rb = http
            .get(&qi)
            .header(ACCEPT, "application/occi+json, text/plain;q=0.5");
        if let Some(t) = &self.token {
            if let Ok(mut v) = HeaderValue::from_str(t.expose()) {
                v.set_sensitive(true);
                rb = rb.header("X-Auth-Token", v);
            }
        }
        if let Some(tenant) = &self.tenant {
            rb = rb.header("X-Tenant-Name", tenant.as_str());
        }
        let r = rb.send().await.map_err(|e| unreachable(&base, &e))?;
        let status = r.status();
        let headers = r.headers().clone();
        let body = r.bytes().await.map_err(|e| unreachable(&base, &e))?;
        if !status.is_success() {
            return Err(remote_error(&base, status, &String::from_utf8_lossy(&body)));
        }
        let content = occi::parse_request(&headers, &body).map_err(|e| {
            unreadable(
                &base,
                format!("the remote query interface {qi} cannot be read: {e}"),
            )
        })?;
        let kinds: Vec<&Category> = content
            .categories
            .iter()
            .filter(|c| c.class == Some(CategoryClass::Kind))
            .collect();
        let remote = kinds
            .iter()
            .find(|c| c.location.as_deref().is_some_and(|l| l.ends_with(&collection)))
            .or_else(|| {
                kinds
                    .iter()
                    .find(|c| c.term == "orchestrator" && c.scheme == MCN_SERVICE_SCHEME)
            })
            .ok_or_else(|| {
                unreadable(
                    &base,
                    format!(
                        "the remote query interface {qi} has no kind at {collection} nor the MCN orchestrator kind"
                    ),
                )
            })?;
        let mut attributes: Vec<AttributeSpec> = remote
            .attributes
            .iter()
            .filter(|d| !server_attribute(&d.name))
            .map(import_attribute)
            .collect();
        for a in self.attributes {
            attributes.retain(|x| x.name != a.name);
            attributes.push(a);
        }
        let builtin = |id: &str| {
            ["deploy", "provision", "notify"]
                .iter()
                .any(|t| id == format!("{MCN_SERVICE_SCHEME}{t}"))
        };
        let mut actions = Vec::new();
        for id in remote.actions.iter().filter(|id| !builtin(id)) {
            let (scheme, term) = occi::split_type_id(id);
            let def = content
                .categories
                .iter()
                .find(|c| c.class == Some(CategoryClass::Action) && c.type_id() == *id);
            actions.push(ActionSpec {
                term: term.to_string(),
                scheme: scheme.to_string(),
                title: def.and_then(|d| d.title.clone()),
                attributes: def
                    .map(|d| d.attributes.iter().map(import_attribute).collect())
                    .unwrap_or_default(),
                applies_in: vec![Phase::Deployed, Phase::Provisioned],
            });
        }
        let name = self.name.unwrap_or_else(|| self.kind.term.clone());
        Ok(RemoteSpec {
            name,
            version: self.version.unwrap_or_else(remote_version),
            description: self
                .description
                .or_else(|| Some(format!("remote service orchestrator at {base}"))),
            url: base,
            kind: KindSpec {
                term: self.kind.term,
                scheme: self.kind.scheme.unwrap_or_else(|| DEFAULT_SCHEME.into()),
                title: self.kind.title.or_else(|| remote.title.clone()),
                location: self.kind.location,
                related: vec![],
                attributes,
                actions,
            },
            remote_kind: RemoteKind {
                term: remote.term.clone(),
                scheme: remote.scheme.clone(),
            },
            collection,
            mode: self.mode,
            timeout_secs,
        })
    }
}

/// What the plugin remembers of one instance in memory only.
struct Live {
    credentials: Credentials,
    snapshot: Option<(Instant, Attributes)>,
    /// When a live read last failed (the snapshot is shown for a while).
    failed: Option<Instant>,
}

/// How fresh a relayed state must be to skip a remote `GET`.
const STATE_CACHE: Duration = Duration::from_secs(1);

/// How long after a failed live read the snapshot is shown without trying again.
const FAILURE_BACKOFF: Duration = Duration::from_secs(5);

/// A remote service orchestrator as a plugin.
pub struct RemotePlugin {
    info: PluginInfo,
    spec: RemoteSpec,
    http: reqwest::Client,
    live: DashMap<String, Live>,
}

impl std::fmt::Debug for RemotePlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemotePlugin")
            .field("name", &self.info.name)
            .field("url", &self.spec.url)
            .finish()
    }
}

/// Settled or not, from a remote state.
enum Progress {
    Running,
    Done,
    Failed(String),
}

impl RemotePlugin {
    /// A plugin forwarding to the remote of `spec`.
    pub fn new(spec: RemoteSpec, http: reqwest::Client) -> Self {
        let info = PluginInfo {
            name: spec.name.clone(),
            version: spec.version.clone(),
            description: spec.description.clone(),
            source: PluginSource::Remote {
                url: spec.url.clone(),
            },
            kind: spec.kind.clone(),
        };
        RemotePlugin {
            info,
            spec,
            http,
            live: DashMap::new(),
        }
    }

    /// The registration.
    pub fn spec(&self) -> &RemoteSpec {
        &self.spec
    }

    fn path_of(state: &PluginState) -> Option<String> {
        state.get::<RemoteState>().ok().and_then(|s| s.remote)
    }

    fn url(&self, path: &str, action: Option<&str>) -> String {
        match action {
            Some(a) => format!("{}{path}?action={a}", self.spec.url),
            None => format!("{}{path}", self.spec.url),
        }
    }

    fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        credentials: &Credentials,
    ) -> reqwest::RequestBuilder {
        let mut rb = self
            .http
            .request(method, url)
            .header("X-Tenant-Name", credentials.project.as_str());
        if let Some(t) = &credentials.token {
            if let Ok(mut v) = HeaderValue::from_str(t.expose()) {
                v.set_sensitive(true);
                rb = rb.header("X-Auth-Token", v);
            }
        }
        rb
    }

    /// `X-OCCI-Attribute` header values for `attributes` (`occi.core.id` left out).
    fn attribute_headers(attributes: &Attributes) -> Vec<HeaderValue> {
        attributes
            .iter()
            .filter(|(n, _)| n.as_str() != "occi.core.id")
            .filter_map(|(n, v)| {
                let v = occi::Value::try_from(v.clone()).ok()?;
                let mut h = HeaderValue::from_str(&occi::text::attribute_to_string(n, &v)).ok()?;
                h.set_sensitive(true); // may carry a secret attribute
                Some(h)
            })
            .collect()
    }

    async fn send(
        &self,
        rb: reqwest::RequestBuilder,
        ok: &[u16],
    ) -> Result<(StatusCode, HeaderMap, bytes::Bytes), PluginError> {
        let r = rb
            .send()
            .await
            .map_err(|e| unreachable(&self.spec.url, &e))?;
        let status = r.status();
        let headers = r.headers().clone();
        let body = r
            .bytes()
            .await
            .map_err(|e| unreachable(&self.spec.url, &e))?;
        if !ok.contains(&status.as_u16()) {
            return Err(remote_error(
                &self.spec.url,
                status,
                &String::from_utf8_lossy(&body),
            ));
        }
        Ok((status, headers, body))
    }

    /// `GET` the remote instance: its attributes, or `None` when it is gone.
    async fn fetch(
        &self,
        path: &str,
        credentials: &Credentials,
        timeout: Duration,
    ) -> Result<Option<Attributes>, PluginError> {
        let rb = self
            .request(reqwest::Method::GET, &self.url(path, None), credentials)
            .header(ACCEPT, "text/occi")
            .timeout(timeout);
        let (status, headers, body) = self.send(rb, &[200, 404]).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        attributes_of(&headers, &body).map(Some).map_err(|e| {
            unreadable(
                &self.spec.url,
                format!("the remote state of {path} cannot be read: {e}"),
            )
        })
    }

    fn remember(&self, path: &str, credentials: &Credentials, snapshot: Option<Attributes>) {
        self.live.insert(
            path.to_string(),
            Live {
                credentials: credentials.clone(),
                snapshot: snapshot.map(|s| (Instant::now(), s)),
                failed: None,
            },
        );
    }

    fn progress(state: &Attributes, operation: &str) -> Progress {
        if state.contains_key("occi.so.operation") {
            return Progress::Running;
        }
        if state.get("occi.so.error.operation").and_then(Value::as_str) == Some(operation) {
            let message = state
                .get("occi.so.error")
                .and_then(Value::as_str)
                .unwrap_or("failed")
                .to_string();
            return Progress::Failed(message);
        }
        let status = state
            .get("occi.mcn.stack.state")
            .and_then(Value::as_str)
            .unwrap_or("");
        if status.ends_with("_IN_PROGRESS") {
            return Progress::Running;
        }
        if status.ends_with("_FAILED") {
            return Progress::Failed(format!("the remote stack is {status}"));
        }
        if status.is_empty() || status == "uninitialized" || status == "N/A" {
            // Nothing created yet: a deploy has not started its stacks.
            return if operation == "deploy" {
                Progress::Running
            } else {
                Progress::Done
            };
        }
        Progress::Done
    }

    /// Polls the remote until `operation` settled; records the last state.
    async fn settle(
        &self,
        ctx: &mut LifecycleCtx,
        path: &str,
        operation: &str,
    ) -> Result<(), PluginError> {
        let deadline = Instant::now() + Duration::from_secs(self.spec.timeout_secs);
        let mut delay = Duration::from_millis(150);
        loop {
            let state = self
                .fetch(path, &ctx.credentials, Duration::from_secs(30))
                .await?
                .ok_or_else(|| {
                    PluginError::Failed(format!(
                        "the remote instance {} disappeared during {operation}",
                        self.url(path, None)
                    ))
                })?;
            let progress = Self::progress(&state, operation);
            self.remember(path, &ctx.credentials, Some(state.clone()));
            let mut st: RemoteState = ctx.state.get()?;
            st.snapshot = Some(state);
            ctx.state.set(&st)?;
            match progress {
                Progress::Done => return Ok(()),
                Progress::Failed(m) => {
                    return Err(PluginError::Failed(format!(
                        "remote {operation} failed: {m}"
                    )))
                }
                Progress::Running => {}
            }
            if Instant::now() > deadline {
                return Err(PluginError::Failed(format!(
                    "remote {operation} did not settle within {}s",
                    self.spec.timeout_secs
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 3 / 2).min(Duration::from_secs(2));
        }
    }

    fn instance_path(&self, ctx: &LifecycleCtx) -> Result<String, PluginError> {
        Self::path_of(&ctx.state).ok_or_else(|| {
            PluginError::Failed(
                "this instance has no remote counterpart (its design did not finish)".into(),
            )
        })
    }

    async fn invoke(
        &self,
        ctx: &mut LifecycleCtx,
        scheme: &str,
        term: &str,
        parameters: &Attributes,
    ) -> Result<(), PluginError> {
        let path = self.instance_path(ctx)?;
        let category = occi::text::category_to_string(&Category::action(scheme, term), false);
        let mut rb = self
            .request(
                reqwest::Method::POST,
                &self.url(&path, Some(term)),
                &ctx.credentials,
            )
            .header(CONTENT_TYPE, "text/occi")
            .header("Category", category);
        for h in Self::attribute_headers(parameters) {
            rb = rb.header("X-OCCI-Attribute", h);
        }
        self.send(rb, &[200, 201, 202, 204]).await?;
        self.settle(ctx, &path, term).await
    }

    /// The remote state to relay now: cached, live, or the last snapshot.
    async fn current(&self, path: &str, plugin_state: &PluginState) -> Option<Attributes> {
        let cached = self.live.get(path).map(|l| {
            let fresh = l
                .snapshot
                .as_ref()
                .filter(|(at, _)| at.elapsed() < STATE_CACHE)
                .map(|(_, s)| s.clone());
            let resting = l.failed.is_some_and(|at| at.elapsed() < FAILURE_BACKOFF);
            (l.credentials.clone(), fresh, resting)
        });
        match cached {
            Some((_, Some(fresh), _)) => return Some(fresh),
            Some((credentials, None, false)) => {
                match self.fetch(path, &credentials, Duration::from_secs(3)).await {
                    Ok(Some(s)) => {
                        self.remember(path, &credentials, Some(s.clone()));
                        return Some(s);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, path, "remote state not readable; showing the last snapshot");
                        if let Some(mut l) = self.live.get_mut(path) {
                            l.failed = Some(Instant::now());
                        }
                    }
                }
            }
            _ => {}
        }
        plugin_state
            .get::<RemoteState>()
            .ok()
            .and_then(|s| s.snapshot)
    }
}

/// What the plugin remembers about an instance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct RemoteState {
    /// The remote instance's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    remote: Option<String>,
    /// The remote state at the end of the last operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    snapshot: Option<Attributes>,
}

#[async_trait]
impl Orchestrator for RemotePlugin {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    async fn run(&self, op: &Operation, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        match op {
            Operation::Design => self.design(ctx).await,
            Operation::Deploy => self.deploy(ctx).await,
            Operation::Provision => {
                self.invoke(ctx, MCN_SERVICE_SCHEME, "provision", &Attributes::new())
                    .await
            }
            Operation::Update { changed } => self.update(ctx, changed).await,
            Operation::Action { term, parameters } => self.action(ctx, term, parameters).await,
            Operation::Notify { event } => {
                self.invoke(ctx, MCN_SERVICE_SCHEME, "notify", event).await
            }
            Operation::Dispose => self.dispose(ctx).await,
        }
    }

    async fn state(&self, instance: InstanceView<'_>) -> Result<StateReport, PluginError> {
        self.report(instance).await
    }
}

impl RemotePlugin {
    async fn design(&self, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        let path = match self.spec.mode {
            RemoteMode::Shared => format!("{}{}", self.spec.collection, uuid::Uuid::new_v4()),
            RemoteMode::Single => {
                let path = format!("{}default", self.spec.collection);
                if self
                    .fetch(&path, &ctx.credentials, Duration::from_secs(30))
                    .await?
                    .is_some()
                {
                    return Err(PluginError::Refused {
                        service: service(&self.spec.url),
                        refusal: Refusal::Conflict,
                        message: "it hosts a single instance and it exists already".into(),
                    });
                }
                path
            }
        };
        let category = occi::text::category_to_string(
            &Category::kind(&self.spec.remote_kind.scheme, &self.spec.remote_kind.term),
            false,
        );
        let mut rb = self
            .request(
                reqwest::Method::PUT,
                &self.url(&path, None),
                &ctx.credentials,
            )
            .header(CONTENT_TYPE, "text/occi")
            .header("Category", category);
        for h in Self::attribute_headers(&ctx.attributes) {
            rb = rb.header("X-OCCI-Attribute", h);
        }
        self.send(rb, &[200, 201]).await?;
        let state = self
            .fetch(&path, &ctx.credentials, Duration::from_secs(30))
            .await
            .ok()
            .flatten();
        ctx.state.set(&RemoteState {
            remote: Some(path.clone()),
            snapshot: state.clone(),
        })?;
        self.remember(&path, &ctx.credentials, state);
        Ok(())
    }

    async fn deploy(&self, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        // Attributes changed here before deploy were only stored: tell the
        // remote first (it drops values it already has).
        let path = self.instance_path(ctx)?;
        let snapshot = ctx.state.get::<RemoteState>()?.snapshot.unwrap_or_default();
        let stale: Attributes = ctx
            .attributes
            .iter()
            .filter(|(n, v)| {
                !self.spec.kind.attribute(n).is_some_and(|a| a.secret)
                    && snapshot.get(n.as_str()).is_some_and(|s| s != *v)
            })
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        if !stale.is_empty() {
            let mut rb = self
                .request(
                    reqwest::Method::POST,
                    &self.url(&path, None),
                    &ctx.credentials,
                )
                .header(CONTENT_TYPE, "text/occi");
            for h in Self::attribute_headers(&stale) {
                rb = rb.header("X-OCCI-Attribute", h);
            }
            self.send(rb, &[200, 201, 202, 204]).await?;
        }
        self.invoke(ctx, MCN_SERVICE_SCHEME, "deploy", &Attributes::new())
            .await
    }

    async fn update(
        &self,
        ctx: &mut LifecycleCtx,
        changed: &Attributes,
    ) -> Result<(), PluginError> {
        let path = self.instance_path(ctx)?;
        let mut rb = self
            .request(
                reqwest::Method::POST,
                &self.url(&path, None),
                &ctx.credentials,
            )
            .header(CONTENT_TYPE, "text/occi");
        for h in Self::attribute_headers(changed) {
            rb = rb.header("X-OCCI-Attribute", h);
        }
        self.send(rb, &[200, 201, 202, 204]).await?;
        self.settle(ctx, &path, "update").await
    }

    async fn action(
        &self,
        ctx: &mut LifecycleCtx,
        term: &str,
        parameters: &Attributes,
    ) -> Result<(), PluginError> {
        let scheme = self
            .spec
            .kind
            .actions
            .iter()
            .find(|a| a.term == term)
            .map(|a| a.scheme.clone())
            .ok_or_else(|| PluginError::NotApplicable {
                action: term.into(),
                message: format!("{} defines no action '{term}'", self.info.name),
            })?;
        self.invoke(ctx, &scheme, term, parameters).await
    }

    async fn dispose(&self, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        let Some(path) = Self::path_of(&ctx.state) else {
            return Ok(()); // never reached the remote
        };
        let rb = self.request(
            reqwest::Method::DELETE,
            &self.url(&path, None),
            &ctx.credentials,
        );
        let (status, _, _) = self.send(rb, &[200, 202, 204, 404]).await?;
        if status == StatusCode::ACCEPTED {
            let deadline = Instant::now() + Duration::from_secs(self.spec.timeout_secs);
            while self
                .fetch(&path, &ctx.credentials, Duration::from_secs(30))
                .await?
                .is_some()
            {
                if Instant::now() > deadline {
                    return Err(PluginError::Failed(format!(
                        "the remote instance {path} was not gone within {}s",
                        self.spec.timeout_secs
                    )));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        self.live.remove(&path);
        Ok(())
    }

    async fn report(&self, instance: InstanceView<'_>) -> Result<StateReport, PluginError> {
        let attributes = instance.attributes;
        let mut report = StateReport::default();
        let remote = match Self::path_of(instance.state) {
            Some(path) => self.current(&path, instance.state).await,
            None => None,
        };
        for (name, value) in remote.unwrap_or_default() {
            if name == "occi.so.error" {
                report
                    .attributes
                    .insert("occi.so.remote.error".into(), value);
                continue;
            }
            if name.starts_with("occi.core.")
                || name.starts_with("occi.so.")
                || attributes.contains_key(&name)
                || self.spec.kind.attribute(&name).is_some_and(|a| !a.output)
            {
                continue;
            }
            report.attributes.insert(name, value);
        }
        report
            .attributes
            .entry("occi.mcn.stack.id".into())
            .or_insert_with(|| "N/A".into());
        report
            .attributes
            .entry("occi.mcn.stack.state".into())
            .or_insert_with(|| "uninitialized".into());
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(pairs: &[(&str, &str)]) -> Attributes {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect()
    }

    #[test]
    fn progress_follows_the_remote_lifecycle() {
        let running = state(&[
            ("occi.so.operation", "deploy"),
            ("occi.mcn.stack.state", "uninitialized"),
        ]);
        assert!(matches!(
            RemotePlugin::progress(&running, "deploy"),
            Progress::Running
        ));
        let fresh = state(&[("occi.mcn.stack.state", "uninitialized")]);
        assert!(matches!(
            RemotePlugin::progress(&fresh, "deploy"),
            Progress::Running
        ));
        let done = state(&[("occi.mcn.stack.state", "CREATE_COMPLETE")]);
        assert!(matches!(
            RemotePlugin::progress(&done, "deploy"),
            Progress::Done
        ));
        let failed = state(&[
            ("occi.mcn.stack.state", "CREATE_FAILED"),
            ("occi.so.error", "boom"),
            ("occi.so.error.operation", "deploy"),
        ]);
        match RemotePlugin::progress(&failed, "deploy") {
            Progress::Failed(m) => assert_eq!(m, "boom"),
            _ => panic!("not failed"),
        }
        let heat_only = state(&[("occi.mcn.stack.state", "UPDATE_FAILED")]);
        assert!(matches!(
            RemotePlugin::progress(&heat_only, "update"),
            Progress::Failed(_)
        ));
    }

    #[test]
    fn remote_errors_keep_their_meaning_and_message() {
        let url = "http://so.example:8051";
        match remote_error(url, StatusCode::BAD_REQUEST, "attribute 'x': bad\n") {
            PluginError::Refused {
                service,
                refusal,
                message,
            } => {
                assert_eq!(service, "remote orchestrator http://so.example:8051");
                assert_eq!(refusal, Refusal::Invalid);
                assert_eq!(message, "attribute 'x': bad");
            }
            other => panic!("{other:?}"),
        }
        for (status, refusal) in [
            (StatusCode::NOT_FOUND, Refusal::NotFound),
            (StatusCode::CONFLICT, Refusal::Conflict),
            (StatusCode::FORBIDDEN, Refusal::Forbidden),
            (StatusCode::UNAUTHORIZED, Refusal::Unauthenticated),
            (StatusCode::PAYLOAD_TOO_LARGE, Refusal::TooLarge),
            (StatusCode::UNPROCESSABLE_ENTITY, Refusal::Invalid),
        ] {
            match remote_error(url, status, "{\"message\": \"no\"}") {
                PluginError::Refused {
                    refusal: r,
                    message,
                    ..
                } => {
                    assert_eq!((r, message.as_str()), (refusal, "no"), "{status}");
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        match remote_error(url, StatusCode::BAD_GATEWAY, "") {
            PluginError::Upstream { message, .. } => assert_eq!(message, "HTTP 502: Bad Gateway"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn attribute_headers_render_and_parse_back() {
        let attrs: Attributes = [
            ("a.b".to_string(), json!("x, \"y\"")),
            ("n".to_string(), json!(5)),
            ("occi.core.id".to_string(), json!("ignored")),
        ]
        .into_iter()
        .collect();
        let hs = RemotePlugin::attribute_headers(&attrs);
        assert_eq!(hs.len(), 2);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/occi"));
        for h in hs {
            headers.append("x-occi-attribute", h);
        }
        let back = attributes_of(&headers, b"").unwrap();
        assert_eq!(back["a.b"], json!("x, \"y\""));
        assert_eq!(back["n"], json!(5));
    }
}

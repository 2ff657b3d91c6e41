//! The OCCI application: one request in, one response out.
//!
//! `App::handle` negotiates the rendering (`Accept`), checks the OCCI
//! version, authenticates the caller (tenant), reads the body, and routes
//! by path:
//!
//! | path | what |
//! |---|---|
//! | `/healthz`, `/metrics` | liveness, Prometheus metrics (no auth) |
//! | `/admin/plugins...` | the admin API (`admin`; admin token, JSON) |
//! | `/-/`, `/.well-known/org/ogf/occi/-/` | query interface, user mixins ([`query`]) |
//! | `/` | every entity of the tenant |
//! | `/link/`, `/link/{id}` | links between instances (`link`) |
//! | a kind location (`/sample/`, `/orchestrator/`) | kind collection (`collection`) |
//! | a user mixin location | mixin collection (`collection`) |
//! | `{kind location}{id}` | one instance (`entity`; `?watch`: `watch`) |
//!
//! Errors become `ApiError`s and are rendered in exactly one place,
//! `App::error_response`.

mod admin;
mod admin_stacks;
mod collection;
mod entity;
mod link;
mod operation;
pub mod query;
mod render;
mod watch;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HOST, USER_AGENT, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use occi::{MediaType, Rendered, Renderer};
use tokio_util::sync::CancellationToken;

use crate::auth::{Authenticator, Caller};
use crate::error::ApiError;
use crate::metrics::{self, Metrics};
use crate::server::layers::{full, Body};
use occi_so_framework::lifecycle::Lifecycle;
use occi_so_framework::mixins::Mixins;
use occi_so_framework::store::InstanceKey;

/// Everything the routes share.
pub struct App {
    /// The lifecycle engine (store, registry, backend).
    pub lifecycle: Arc<Lifecycle>,
    /// Caller authentication.
    pub auth: Authenticator,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// User-defined mixins.
    pub mixins: Arc<Mixins>,
    /// Query-interface renderings, cached per registry generation.
    pub query_cache: query::QueryCache,
    /// Fixed base URL, if configured.
    pub public_url: Option<String>,
    /// Whether the server speaks HTTPS (for base URLs from `Host`).
    pub tls: bool,
    /// The listen address (base URL when a request has no `Host`).
    pub listen: std::net::SocketAddr,
    /// Cancelled when the server shuts down (ends `?watch` streams).
    pub stop: CancellationToken,
    /// Largest request body accepted.
    pub max_body: usize,
    /// Run-time plugin sources (declarative folders, uploads, remotes).
    pub plugins: Option<occi_so_runtime::PluginSources>,
    /// The admin API's token (`None`: the admin API is off).
    pub admin_token: Option<occi_so_sdk::Secret>,
}

/// Up to this much of an oversized body is read and dropped before the
/// 413, so the client (which sends the whole body before it reads) sees
/// the answer instead of a reset connection.
const DRAIN_CAP: u64 = 16 << 20;

/// Reads the request body, at most `limit` bytes (413 beyond).
async fn read_body<B>(body: B, headers: &HeaderMap, limit: usize) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than the server accepts ({limit} bytes, see --max-body)"),
        )
    };
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_CAP) {
        return Err(too_large());
    }
    let mut body = std::pin::pin!(body);
    let mut buf = bytes::BytesMut::new();
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            let e: Box<dyn std::error::Error + Send + Sync> = e.into();
            ApiError::bad_request(format!("the request body could not be read: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
            seen += data.len() as u64;
            if seen > DRAIN_CAP {
                break;
            }
            if seen <= limit as u64 {
                buf.extend_from_slice(&data);
            }
        }
    }
    if seen > limit as u64 {
        return Err(too_large());
    }
    Ok(buf.freeze())
}

/// The parsed query string.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Query {
    /// `action=term`.
    pub action: Option<String>,
    /// `watch` (Server-Sent Events).
    pub watch: bool,
    /// `preview`: say what the operation would do, do nothing.
    pub preview: bool,
    /// `instance=location` (the operation collection's filter).
    pub instance: Option<String>,
}

impl Query {
    fn parse(q: Option<&str>) -> Result<Query, ApiError> {
        let mut out = Query::default();
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "action" => {
                    if v.is_empty() {
                        return Err(ApiError::bad_request(
                            "query parameter action: give the action's term, e.g. ?action=deploy",
                        ));
                    }
                    out.action = Some(v.to_string());
                }
                "watch" => out.watch = !matches!(v, "false" | "0"),
                "preview" => out.preview = !matches!(v, "false" | "0"),
                "instance" => {
                    out.instance = Some(
                        percent_encoding::percent_decode_str(v)
                            .decode_utf8_lossy()
                            .into_owned(),
                    )
                }
                _ => {} // unknown parameters are ignored, as OCCI servers do
            }
        }
        Ok(out)
    }
}

/// One authenticated request, body read.
pub(crate) struct Call {
    /// Method (`HEAD` is served as `GET`).
    pub method: Method,
    /// Path.
    pub path: String,
    /// Query parameters.
    pub query: Query,
    /// Request headers.
    pub headers: HeaderMap,
    /// Request body.
    pub body: Bytes,
    /// Who calls.
    pub caller: Caller,
    /// The response rendering.
    pub media: MediaType,
    /// Renders with this server's base URL.
    pub renderer: Renderer,
}

impl Call {
    /// The OCCI content of the request (categories, attributes, links...).
    pub(crate) fn content(&self) -> Result<occi::Content, ApiError> {
        Ok(occi::parse_request(&self.headers, &self.body)?)
    }

    /// The store key of `location` for the caller's tenant.
    pub(crate) fn key(&self, location: &str) -> InstanceKey {
        InstanceKey::new(self.caller.tenant.clone(), location)
    }

    /// A response with `status` and a rendering.
    pub(crate) fn respond(&self, status: StatusCode, rendered: Rendered) -> Response<Body> {
        respond(status, rendered)
    }

    /// The path of a location as clients send it (absolute URL or path).
    pub(crate) fn path_of(&self, location: &str) -> Result<String, ApiError> {
        path_of(location)
    }
}

/// A location's path: `http://h:p/sample/x` → `/sample/x`; `/sample/x` stays.
pub(crate) fn path_of(location: &str) -> Result<String, ApiError> {
    let l = location.trim();
    if l.starts_with('/') {
        return Ok(l.split(['?', '#']).next().unwrap_or(l).to_string());
    }
    let uri: http::Uri = l.parse().map_err(|_| {
        ApiError::bad_request(format!("location {l:?} is neither a URL nor a path"))
    })?;
    if uri.scheme().is_none() {
        return Err(ApiError::bad_request(format!(
            "location {l:?} is neither a URL nor a path"
        )));
    }
    Ok(uri.path().to_string())
}

/// Builds a response from a rendering.
pub(crate) fn respond(status: StatusCode, rendered: Rendered) -> Response<Body> {
    let mut r = Response::new(full(rendered.body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, rendered.content_type.header_value());
    for (name, value) in rendered.headers {
        h.append(name, value);
    }
    r
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// Whether `host` is a plain `name[:port]` or `[v6][:port]` authority.
fn usable_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        })
}

impl App {
    /// The base URL for absolute locations: the configured public URL, or
    /// the scheme and authority the client used.
    fn base_url(&self, parts: &Parts) -> String {
        if let Some(u) = &self.public_url {
            return u.clone();
        }
        let scheme = if self.tls { "https" } else { "http" };
        let host = parts
            .uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| parts.headers.get(HOST).and_then(|h| h.to_str().ok()))
            .filter(|h| usable_host(h));
        match host {
            Some(h) => format!("{scheme}://{h}"),
            None => format!("{scheme}://{}", self.listen),
        }
    }

    /// Answers one request.
    pub(crate) async fn handle<B>(
        self: Arc<Self>,
        req: Request<B>,
    ) -> Result<Response<Body>, Infallible>
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = req.into_parts();
        match parts.uri.path() {
            "/healthz" => return Ok(self.healthz(&parts.method)),
            "/metrics" => return Ok(self.metrics_text(&parts.method)),
            _ => {}
        }
        let renderer = Renderer::new(&self.base_url(&parts));
        if parts.uri.path().starts_with(admin::PREFIX) {
            return Ok(self.admin(parts, body, &renderer).await);
        }
        let query = match Query::parse(parts.uri.query()) {
            Ok(q) => q,
            Err(e) => return Ok(self.error_response(e, MediaType::TextPlain, &renderer)),
        };
        let media = if query.watch {
            MediaType::OcciJson
        } else {
            match MediaType::negotiate(parts.headers.get(ACCEPT)) {
                Ok(m) => m,
                Err(e) => {
                    return Ok(self.error_response(e.into(), MediaType::TextPlain, &renderer))
                }
            }
        };
        if let Some(ua) = parts.headers.get(USER_AGENT) {
            if let Some(v) = occi::version::client_version(ua) {
                if occi::version::is_unsupported(v) {
                    let e = ApiError::new(
                        StatusCode::NOT_IMPLEMENTED,
                        format!(
                            "header User-Agent asks for OCCI/{}.{}; this server implements OCCI/{}.{}",
                            v.0,
                            v.1,
                            occi::version::OCCI_VERSION.0,
                            occi::version::OCCI_VERSION.1
                        ),
                    );
                    return Ok(self.error_response(e, media, &renderer));
                }
            }
        }
        let caller = match self.auth.authenticate(&parts.headers).await {
            Ok(c) => c,
            Err(e) => {
                tracing::info!(reason = %e, "request refused");
                return Ok(self.error_response(e.into(), media, &renderer));
            }
        };
        tracing::Span::current().record("tenant", caller.tenant.as_str());
        let body = match read_body(body, &parts.headers, self.max_body).await {
            Ok(b) => b,
            Err(e) => {
                let mut r = self.error_response(e, media, &renderer);
                // The rest of an oversized body was not read: do not reuse
                // the connection.
                r.headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
                return Ok(r);
            }
        };
        let method = if parts.method == Method::HEAD {
            Method::GET
        } else {
            parts.method.clone()
        };
        let call = Call {
            method,
            path: parts.uri.path().to_string(),
            query,
            headers: parts.headers,
            body,
            caller,
            media,
            renderer,
        };
        match self.route(&call).await {
            Ok(r) => Ok(r),
            Err(e) => Ok(self.error_response(e, call.media, &call.renderer)),
        }
    }

    /// The admin API: its own token, JSON bodies, errors as JSON.
    async fn admin<B>(
        self: &Arc<Self>,
        parts: Parts,
        body: B,
        renderer: &Renderer,
    ) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let media = MediaType::OcciJson;
        let body = match read_body(body, &parts.headers, self.max_body).await {
            Ok(b) => b,
            Err(e) => {
                let mut r = self.error_response(e, media, renderer);
                r.headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
                return r;
            }
        };
        let method = if parts.method == Method::HEAD {
            Method::GET
        } else {
            parts.method.clone()
        };
        match admin::handle(
            self,
            &method,
            parts.uri.path(),
            parts.uri.query(),
            &parts.headers,
            body,
        )
        .await
        {
            Ok(r) => r,
            Err(e) => self.error_response(e, media, renderer),
        }
    }

    async fn route(self: &Arc<Self>, c: &Call) -> Result<Response<Body>, ApiError> {
        let path = c.path.as_str();
        if path == query::PATH || path == query::WELL_KNOWN_PATH {
            return query::handle(self, c).await;
        }
        if path == "/" {
            return collection::namespace(self, c).await;
        }
        if path == link::COLLECTION {
            return link::collection(self, c).await;
        }
        if path.starts_with(occi_so_framework::operation::COLLECTION) {
            return operation::handle(self, c).await;
        }
        if let Some(id) = path.strip_prefix(link::COLLECTION) {
            return link::entity(self, c, id).await;
        }
        if path.ends_with('/') {
            if let Some(binding) = self.lifecycle.registry().by_location(path) {
                return collection::kind(self, c, binding).await;
            }
            if let Some(mixin) = self.mixins.by_location(&c.caller.tenant, path) {
                return collection::mixin(self, c, mixin).await;
            }
            return Err(ApiError::not_found(format!(
                "{path} is not a kind or mixin collection (GET /-/ lists them)"
            )));
        }
        let split = path.rfind('/').unwrap_or(0);
        let (parent, id) = path.split_at(split + 1);
        match self.lifecycle.registry().by_location(parent) {
            Some(binding) => entity::handle(self, c, binding, id).await,
            None => Err(ApiError::not_found(format!(
                "{path}: {parent} is not a kind collection (GET /-/ lists them)"
            ))),
        }
    }

    /// Renders an error in the client's media type; the one place errors
    /// become responses.
    pub(crate) fn error_response(
        &self,
        e: ApiError,
        media: MediaType,
        renderer: &Renderer,
    ) -> Response<Body> {
        if e.status.is_server_error() {
            tracing::warn!(status = e.status.as_u16(), error = %e.message, "request failed");
        } else {
            tracing::debug!(status = e.status.as_u16(), error = %e.message, "request refused");
        }
        let mut r = respond(e.status, renderer.message(media, &e.message));
        let h = r.headers_mut();
        for (name, value) in e.headers {
            h.insert(name, value);
        }
        if e.status == StatusCode::UNAUTHORIZED && !h.contains_key(WWW_AUTHENTICATE) {
            h.insert(WWW_AUTHENTICATE, self.auth.challenge().clone());
        }
        r
    }

    fn healthz(&self, method: &Method) -> Response<Body> {
        if method != Method::GET && method != Method::HEAD {
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
            r.headers_mut()
                .insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        plain(StatusCode::OK, "OK\n")
    }

    fn metrics_text(&self, method: &Method) -> Response<Body> {
        if method != Method::GET && method != Method::HEAD {
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
            r.headers_mut()
                .insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        let text = self.metrics.render(&self.lifecycle);
        let mut r = Response::new(full(text));
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static(metrics::CONTENT_TYPE),
        );
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings() {
        assert_eq!(
            Query::parse(Some("action=deploy"))
                .unwrap()
                .action
                .as_deref(),
            Some("deploy")
        );
        assert!(Query::parse(Some("watch")).unwrap().watch);
        assert!(!Query::parse(Some("watch=false")).unwrap().watch);
        let e = Query::parse(Some("action=")).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("?action=deploy"), "{e}");
        assert_eq!(Query::parse(None).unwrap(), Query::default());
    }

    #[test]
    fn locations_become_paths() {
        assert_eq!(path_of("http://h:1/sample/x").unwrap(), "/sample/x");
        assert_eq!(path_of("/sample/x").unwrap(), "/sample/x");
        assert_eq!(path_of(" /a/b?action=x").unwrap(), "/a/b");
        let e = path_of("sample/x").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            e.message,
            "location \"sample/x\" is neither a URL nor a path"
        );
    }

    #[test]
    fn odd_hosts_are_not_echoed() {
        assert!(usable_host("127.0.0.1:8051"));
        assert!(usable_host("[::1]:8051"));
        assert!(!usable_host("evil\"host"));
        assert!(!usable_host(""));
    }
}

//! The tower stack every request passes before the OCCI routes, outermost
//! first:
//!
//! 1. request id: `X-Request-Id` taken from the request or generated (UUID),
//!    and echoed in the response;
//! 2. the edge: request metrics, and a text body for error responses a
//!    layer produced without one (timeout);
//! 3. tracing: one span per request (method, path, request id, tenant),
//!    one log line per response (status, latency);
//! 4. panic catcher: a panicking handler answers 500 without internals;
//! 5. request timeout: 503 when a request takes too long;
//! 6. `Server: occi-so/x.y.z OCCI/1.2` on every response.
//!
//! The body size limit (413) is applied where the body is read
//! (`routes::App::handle`): an oversized body is read to the end (up to a
//! cap) before the answer, so clients that send the whole body before
//! reading see the 413 rather than a reset connection.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, SERVER};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use tower::{Layer, Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::metrics::Metrics;
use crate::Limits;

/// The body type of the OCCI application's responses.
pub(crate) type Body = UnsyncBoxBody<Bytes, std::convert::Infallible>;

/// A boxed error.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type leaving the stack.
pub(crate) type EdgeBody = UnsyncBoxBody<Bytes, BoxError>;

/// A whole body from bytes.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The `Server` header value: occi-so's version and the OCCI version it speaks.
pub(crate) const SERVER_NAME: &str = concat!("occi-so/", env!("CARGO_PKG_VERSION"), " OCCI/1.2");

/// [`SERVER_NAME`] as a header value.
pub(crate) fn server_header() -> HeaderValue {
    HeaderValue::from_static(SERVER_NAME)
}

/// `x-request-id`.
pub(crate) const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// Request ids for requests without one: random UUIDs (v4) from the
/// thread-local generator (no system call per request).
#[derive(Clone, Copy, Default)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let mut buf = uuid::Uuid::encode_buffer();
        HeaderValue::from_str(id.hyphenated().encode_lower(&mut buf))
            .ok()
            .map(RequestId::new)
    }
}

fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response<Full<Bytes>> {
    let what = if let Some(s) = err.downcast_ref::<String>() {
        s.as_str()
    } else if let Some(s) = err.downcast_ref::<&str>() {
        s
    } else {
        "(no message)"
    };
    tracing::error!(panic = %what, "request handler panicked");
    let mut r = Response::new(Full::new(Bytes::from_static(
        b"internal error: the server failed while answering; the X-Request-Id header identifies this request in its log\n",
    )));
    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

fn make_span<B>(req: &Request<B>) -> Span {
    let request_id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %req.uri().path(),
        tenant = tracing::field::Empty,
    )
}

/// The per-request log line: 5xx at WARN always; the others at INFO with
/// the access log on, else at DEBUG (an INFO line per request cost a
/// fifth of the GET path's CPU and 800 MB of log in a 5-minute load run).
#[derive(Clone, Copy)]
struct OnResponse {
    access_log: bool,
}

impl<B> tower_http::trace::OnResponse<B> for OnResponse {
    fn on_response(self, res: &Response<B>, latency: Duration, _span: &Span) {
        let status = res.status().as_u16();
        let latency_ms = latency.as_secs_f64() * 1000.0;
        if status >= 500 {
            tracing::warn!(status, latency_ms, "answered");
        } else if self.access_log {
            tracing::info!(status, latency_ms, "answered");
        } else {
            tracing::debug!(status, latency_ms, "answered");
        }
    }
}

/// Wraps the OCCI application in the stack described in the module docs.
pub(crate) fn stack<S>(
    app: S,
    limits: &Limits,
    metrics: Arc<Metrics>,
) -> impl Service<
    Request<hyper::body::Incoming>,
    Response = Response<EdgeBody>,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
       + Send
       + 'static
where
    S: Service<
            Request<hyper::body::Incoming>,
            Response = Response<Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let timeout = limits.request_timeout;
    ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(RandomRequestId))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(EdgeLayer { metrics, timeout })
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(make_span)
                .on_request(())
                .on_response(OnResponse {
                    access_log: limits.access_log,
                })
                .on_body_chunk(())
                .on_eos(())
                .on_failure(()),
        )
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(SetResponseHeaderLayer::overriding(SERVER, server_header()))
        .service(app)
}

/// Metrics for every response, and a message for body-less errors.
#[derive(Clone)]
struct EdgeLayer {
    metrics: Arc<Metrics>,
    timeout: Duration,
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;
    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            metrics: self.metrics.clone(),
            timeout: self.timeout,
        }
    }
}

#[derive(Clone)]
struct Edge<S> {
    inner: S,
    metrics: Arc<Metrics>,
    timeout: Duration,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Edge<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: hyper::body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<EdgeBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<EdgeBody>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let method = req.method().clone();
        let started = Instant::now();
        let metrics = self.metrics.clone();
        let timeout = self.timeout;
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await?;
            metrics.request(&method, res.status().as_u16(), started.elapsed());
            let needs_text = res.status().is_client_error() || res.status().is_server_error();
            let (mut parts, body) = res.into_parts();
            if needs_text && !parts.headers.contains_key(CONTENT_TYPE) {
                let text = match parts.status {
                    StatusCode::SERVICE_UNAVAILABLE => format!(
                        "the request did not finish within the request timeout ({}); \
                         lifecycle operations it started go on, GET shows their progress\n",
                        humantime::format_duration(timeout)
                    ),
                    s => format!("{s}\n"),
                };
                parts
                    .headers
                    .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                parts.headers.remove(http::header::CONTENT_LENGTH);
                let body = full(text).map_err(|never| match never {}).boxed_unsync();
                return Ok(Response::from_parts(parts, body));
            }
            Ok(Response::from_parts(
                parts,
                body.map_err(|e| -> BoxError { e.into() }).boxed_unsync(),
            ))
        })
    }
}

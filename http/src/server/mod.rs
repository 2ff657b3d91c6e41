//! The HTTP transport: accept connections (plain or TLS), serve them with
//! hyper (HTTP/1.1 with keep-alive, or HTTP/2 — h2c by prior knowledge, or
//! negotiated by ALPN over TLS) through the tower stack of `layers`, and
//! shut down gracefully: stop accepting, let in-flight requests finish
//! within the grace period, close idle connections.

pub(crate) mod conn;
pub(crate) mod layers;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::{Service, ServiceExt};

use conn::{ConnLimits, ConnState, Guarded, Tracked};
use layers::EdgeBody;

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; SIGINT only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("interrupt received");
    }
}

fn builder() -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    // No hyper header timeout: `conn::Guarded` keeps the connection's
    // deadlines (it also covers connections that never send a byte, and
    // answers a slow head with 408).
    b.http1().keep_alive(true).timer(TokioTimer::new());
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    b
}

/// How connections are held: their timeouts and how many may be open.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnSettings {
    /// Idle and head timeouts of each connection.
    pub(crate) limits: ConnLimits,
    /// Open connections served in full; beyond it (and up to
    /// [`OVERFLOW`] more) a connection gets one answer: `/healthz`, or a
    /// 503 that says why.
    pub(crate) max: usize,
}

/// Connections beyond the cap that are still answered (503, `/healthz`);
/// more than that are closed at once.
const OVERFLOW: usize = 64;

/// How long a connection beyond the cap may take to send its request.
const OVERFLOW_TIMEOUT: Duration = Duration::from_secs(2);

fn busy_answer(max: usize) -> Response<EdgeBody> {
    use http_body_util::BodyExt;
    let text = format!(
        "the server is at its limit of {max} open connections (--max-connections); retry shortly, or reuse a keep-alive connection\n"
    );
    let body = http_body_util::Full::new(bytes::Bytes::from(text))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut r = Response::new(body);
    *r.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    h.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    r
}

/// Serves `service` on `listener` until `stop` is cancelled, then waits up
/// to `grace` for open connections to finish their requests. Returns
/// whether every connection closed within the grace period.
pub(crate) async fn serve<S>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    service: S,
    conns: ConnSettings,
    stop: CancellationToken,
    grace: Duration,
) -> bool
where
    S: Service<Request<Incoming>, Response = Response<EdgeBody>, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let builder = builder();
    let open = Arc::new(Semaphore::new(conns.max));
    let overflow = Arc::new(Semaphore::new(OVERFLOW));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let (permit, full) = match open.clone().try_acquire_owned() {
            Ok(p) => (p, false),
            Err(_) => match overflow.clone().try_acquire_owned() {
                Ok(p) => (p, true),
                Err(_) => {
                    tracing::warn!(%peer, max = conns.max, "connection refused: over the connection cap and its overflow");
                    drop(stream);
                    continue;
                }
            },
        };
        let limits = if full {
            ConnLimits {
                idle: OVERFLOW_TIMEOUT,
                head: OVERFLOW_TIMEOUT,
            }
        } else {
            conns.limits
        };
        let tls = tls.clone();
        let svc = service.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let max = conns.max;
        tokio::spawn(async move {
            let _permit = permit;
            let state = ConnState::new();
            let served = match tls {
                None => {
                    serve_one(
                        Guarded::new(stream, state.clone(), limits, None),
                        state,
                        svc,
                        full,
                        max,
                        &builder,
                        watcher,
                    )
                    .await
                }
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(limits.head, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                    serve_one(
                        Guarded::new(stream, state.clone(), limits, Some(h2)),
                        state,
                        svc,
                        full,
                        max,
                        &builder,
                        watcher,
                    )
                    .await
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("stopped accepting connections; finishing open requests");
    tokio::select! {
        _ = graceful.shutdown() => true,
        _ = tokio::time::sleep(grace) => {
            tracing::warn!(grace = ?grace, "connections still open after the grace period; closing them");
            false
        }
    }
}

/// Serves one connection: in full, or (beyond the cap) one HTTP/1.1
/// request, `/healthz` or a 503.
async fn serve_one<I, S>(
    io: Guarded<I>,
    state: Arc<ConnState>,
    service: S,
    beyond_cap: bool,
    max: usize,
    builder: &auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<EdgeBody>, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    if beyond_cap {
        let svc = tower::service_fn(move |req: Request<Incoming>| {
            let service = service.clone();
            async move {
                if req.uri().path() == "/healthz" {
                    service.oneshot(req).await
                } else {
                    Ok(busy_answer(max))
                }
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(false)
            .timer(TokioTimer::new())
            .serve_connection(TokioIo::new(io), Tracked { inner: svc, state });
        return watcher.watch(conn).await.map_err(Into::into);
    }
    let conn = builder.serve_connection(
        TokioIo::new(io),
        Tracked {
            inner: service,
            state,
        },
    );
    watcher.watch(conn.into_owned()).await
}

/// Binds `addr` (reporting the address in the error).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// Serves `app` behind the server's tower layers (`layers::stack`) on
/// `listener` until `stop`, as `serve` does; `true` when every
/// connection closed within `grace`.
pub async fn serve_app(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: std::sync::Arc<crate::routes::App>,
    limits: &crate::Limits,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    stop: CancellationToken,
    grace: Duration,
) -> bool {
    let service = layers::stack(
        tower::service_fn(move |req| app.clone().handle(req)),
        limits,
        metrics,
    );
    let conns = ConnSettings {
        limits: ConnLimits {
            idle: limits.idle_timeout,
            head: limits.header_timeout,
        },
        max: limits
            .max_connections
            .unwrap_or_else(|| conn::default_max_connections(conn::open_files_limit())),
    };
    tracing::info!(max_connections = conns.max, idle_timeout = ?conns.limits.idle, header_timeout = ?conns.limits.head, "connection limits");
    serve(listener, tls, service, conns, stop, grace).await
}

//! What one connection may hold: the idle and request-head timeouts, and
//! the server-wide cap on open connections.
//!
//! hyper's own head timeout starts at a request's first byte, so a
//! connection that never sends one (or idles between keep-alive requests)
//! would stay open for good, and a head that is too slow is dropped without
//! a word. [`Guarded`] wraps the socket instead: while no request is in
//! flight it keeps a deadline, `idle` after the last request ended (or the
//! connection opened) and `head` after the first byte of a request head;
//! at the deadline the read side ends (hyper then closes the connection),
//! after a `408 Request Timeout` when a head had begun. [`Tracked`] tells
//! it when requests start and end. HTTP/2 connections (prior knowledge or
//! ALPN) keep only the idle rule: their bytes are frames, not heads.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tower::{Service, ServiceExt};

/// The per-connection timeouts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnLimits {
    /// How long a connection may stay open with no request in flight.
    pub(crate) idle: Duration,
    /// How long a client may take to send a whole request head once it
    /// has begun.
    pub(crate) head: Duration,
}

/// What the socket wrapper and the service share about one connection.
#[derive(Debug)]
pub(crate) struct ConnState {
    opened: Instant,
    /// Requests in flight (started, response body not yet done).
    active: AtomicUsize,
    /// When the last request ended, in ms since `opened`.
    last_end_ms: AtomicU64,
    /// When the pending head's first byte came, in ms since `opened`
    /// plus one (0: no head pending).
    head_since_ms: AtomicU64,
}

impl ConnState {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(ConnState {
            opened: Instant::now(),
            active: AtomicUsize::new(0),
            last_end_ms: AtomicU64::new(0),
            head_since_ms: AtomicU64::new(0),
        })
    }

    fn ms_since_open(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        self.opened + Duration::from_millis(ms)
    }

    fn request_started(&self) {
        self.active.fetch_add(1, Ordering::SeqCst);
        self.head_since_ms.store(0, Ordering::SeqCst);
    }

    fn request_ended(&self) {
        self.last_end_ms
            .store(self.ms_since_open(), Ordering::SeqCst);
        self.active.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expiry {
    Idle,
    SlowHead,
}

/// A socket that ends its read side at the connection's deadline.
pub(crate) struct Guarded<T> {
    inner: T,
    state: Arc<ConnState>,
    limits: ConnLimits,
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
    /// `Some(true)` for HTTP/2, `None` until the first bytes tell.
    h2: Option<bool>,
    expired: Option<Expiry>,
    farewell: Bytes,
}

impl<T> Guarded<T> {
    /// Wraps `inner`; `h2` is known for TLS (ALPN), else found out.
    pub(crate) fn new(
        inner: T,
        state: Arc<ConnState>,
        limits: ConnLimits,
        h2: Option<bool>,
    ) -> Self {
        let first = state.opened + limits.idle;
        Guarded {
            inner,
            state,
            limits,
            sleep: Box::pin(tokio::time::sleep_until(first)),
            armed: Some(first),
            h2,
            expired: None,
            farewell: Bytes::new(),
        }
    }

    /// Bytes came in; `preface`: whether they start as HTTP/2's do
    /// (`None`: too few to tell).
    fn saw(&mut self, preface: Option<bool>) {
        if self.h2.is_none() {
            self.h2 = preface;
        }
        if self.h2 != Some(true) && self.state.active.load(Ordering::SeqCst) == 0 {
            let _ = self.state.head_since_ms.compare_exchange(
                0,
                self.state.ms_since_open() + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
        }
    }

    fn deadline(&self) -> Option<(Instant, Expiry)> {
        if self.state.active.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let head = self.state.head_since_ms.load(Ordering::SeqCst);
        if head > 0 && self.h2 != Some(true) {
            return Some((self.state.at(head - 1) + self.limits.head, Expiry::SlowHead));
        }
        let last = self.state.last_end_ms.load(Ordering::SeqCst);
        Some((self.state.at(last) + self.limits.idle, Expiry::Idle))
    }
}

fn request_timeout_answer(head: Duration) -> Bytes {
    let body = format!(
        "the request head was not received within {} (header timeout); the connection is closed\n",
        humantime::format_duration(head)
    );
    Bytes::from(format!(
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ))
}

impl<T: AsyncRead + AsyncWrite + Unpin> Guarded<T> {
    /// After the deadline: the 408 (for a begun head) goes out, then the
    /// read side ends.
    fn poll_farewell(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.farewell.is_empty() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.farewell) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    self.farewell.clear();
                }
                Poll::Ready(Ok(n)) => {
                    let _ = self.farewell.split_to(n);
                    if self.farewell.is_empty() {
                        let _ = Pin::new(&mut self.inner).poll_flush(cx);
                    }
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.expired.is_some() {
            return this.poll_farewell(cx);
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    let new = &buf.filled()[before..];
                    let preface = if new.len() >= 4 {
                        Some(new.starts_with(b"PRI "))
                    } else if b"PRI ".starts_with(new) {
                        None
                    } else {
                        Some(false)
                    };
                    this.saw(preface);
                }
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        let Some((at, why)) = this.deadline() else {
            return Poll::Pending;
        };
        if this.armed != Some(at) {
            this.sleep.as_mut().reset(at);
            this.armed = Some(at);
        }
        if this.sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        match why {
            Expiry::SlowHead => {
                tracing::debug!(timeout = ?this.limits.head, "request head too slow: 408, closing");
                this.farewell = request_timeout_answer(this.limits.head);
            }
            Expiry::Idle => {
                tracing::debug!(timeout = ?this.limits.idle, "idle connection closed");
            }
        }
        this.expired = Some(why);
        this.poll_farewell(cx)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Marks a request in flight until its response body is done or dropped.
struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// A response body that ends its request's [`InFlight`] when dropped.
pub(crate) struct TrackedBody<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B: HttpBody + Unpin> HttpBody for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The connection's service: the server's tower service, telling the
/// connection's state when each request starts and ends.
#[derive(Clone)]
pub(crate) struct Tracked<S> {
    pub(crate) inner: S,
    pub(crate) state: Arc<ConnState>,
}

impl<S, B, ReqBody> hyper::service::Service<Request<ReqBody>> for Tracked<S>
where
    S: Service<Request<ReqBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = Response<TrackedBody<B>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn call(&self, req: Request<ReqBody>) -> Self::Future {
        self.state.request_started();
        let in_flight = InFlight(self.state.clone());
        let svc = self.inner.clone();
        Box::pin(async move {
            let resp = svc.oneshot(req).await?;
            Ok(resp.map(|inner| TrackedBody {
                inner,
                _in_flight: in_flight,
            }))
        })
    }
}

/// The soft limit on open files of this process, when Linux says.
pub(crate) fn open_files_limit() -> Option<u64> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open("/proc/self/limits")
        .ok()?
        .take(16 * 1024)
        .read_to_string(&mut text)
        .ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The default cap on open connections: 10 000, or the open-files limit
/// less 256 descriptors kept for the journal, stack files, Heat clients
/// and the connections answered 503 beyond the cap (at least 64).
pub(crate) fn default_max_connections(open_files: Option<u64>) -> usize {
    let by_files = open_files
        .map(|n| n.saturating_sub(256).max(64))
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(10_000);
    by_files.min(10_000)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn the_default_cap_keeps_descriptors_for_the_rest() {
        assert_eq!(default_max_connections(Some(1024)), 768);
        assert_eq!(default_max_connections(Some(100)), 64);
        assert_eq!(default_max_connections(Some(1 << 20)), 10_000);
        assert_eq!(default_max_connections(None), 10_000);
    }

    #[test]
    fn the_408_says_why() {
        let a = request_timeout_answer(Duration::from_secs(20));
        let text = std::str::from_utf8(&a).unwrap();
        assert!(text.starts_with("HTTP/1.1 408 Request Timeout\r\n"));
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(body.contains("within 20s"));
    }

    #[test]
    fn linux_reports_an_open_files_limit() {
        if std::path::Path::new("/proc/self/limits").exists() {
            assert!(open_files_limit().unwrap() > 0);
        }
    }
}

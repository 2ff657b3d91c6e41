//! The baseline of `scripts/bench-http.sh`: a bare hyper server (same
//! runtime, same hyper-util builder as occi-so) answering every request
//! with a fixed `text/occi` response of the size occi-so sends for
//! `GET /orchestrator/default`. No routing, no OCCI, no layers.
//!
//! `cargo run --release --example bare_hyper -- 127.0.0.1:18999`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

const CATEGORY: &str = "orchestrator; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"; class=\"kind\"";
const LINK: &str = "<http://127.0.0.1:18999/orchestrator/default?action=provision>; rel=\"http://schemas.mobile-cloud-networking.eu/occi/service#provision\"";
const ATTRIBUTES: &str = "occi.core.id=\"default\", mcn.endpoint.maas=\"\", sample.greeting=\"hello\", sample.length=16, occi.mcn.stack.id=\"9b1f1c8e-3a3f-4c59-a0c4-0d0e5f3b8a11\", occi.mcn.stack.state=\"CREATE_COMPLETE\", mcn.endpoint.sample=\"http://sample-k3j4h5g6f7d8s9a0.service.local:8080/\", occi.so.phase=\"deployed\"";

async fn answer(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut r = Response::new(Full::new(Bytes::from_static(b"OK")));
    let h = r.headers_mut();
    h.insert("content-type", http::HeaderValue::from_static("text/occi"));
    h.insert("category", http::HeaderValue::from_static(CATEGORY));
    h.insert("link", http::HeaderValue::from_static(LINK));
    h.insert(
        "x-occi-attribute",
        http::HeaderValue::from_static(ATTRIBUTES),
    );
    h.insert(
        "server",
        http::HeaderValue::from_static("bare-hyper OCCI/1.2"),
    );
    Ok(r)
}

fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18999".into())
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            eprintln!("bare hyper listening address={addr}");
            let builder = auto::Builder::new(TokioExecutor::new());
            loop {
                let (stream, _) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                let builder = builder.clone();
                tokio::spawn(async move {
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service_fn(answer))
                        .await;
                });
            }
        })
}

//! A stand-in Keystone on loopback for the token-cache unit tests (token
//! lifetimes of seconds, request counting, slow answers). Only
//! `POST /v3/auth/tokens`; real Keystone behaviour is checked against a real
//! Keystone in `tests/openstack_keystone.rs`.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

pub(crate) struct FakeKeystone {
    pub url: String,
    pub requests: Arc<AtomicU64>,
}

#[derive(Clone, Copy)]
pub(crate) struct Behaviour {
    pub lifetime: Duration,
    pub delay: Duration,
}

impl FakeKeystone {
    pub(crate) async fn start(behaviour: Behaviour) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v3", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicU64::new(0));
        let counter = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let counter = counter.clone();
                        async move { Ok::<_, Infallible>(answer(req, &counter, behaviour).await) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        FakeKeystone { url, requests }
    }

    pub(crate) fn count(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

fn reply(status: StatusCode, token: Option<String>, body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::builder()
        .status(status)
        .header("Content-Type", "application/json");
    if let Some(t) = token {
        r = r.header("X-Subject-Token", t);
    }
    r.body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}

async fn answer(
    req: Request<Incoming>,
    counter: &AtomicU64,
    b: Behaviour,
) -> Response<Full<Bytes>> {
    if req.uri().path() != "/v3/auth/tokens" || req.method() != hyper::Method::POST {
        return reply(StatusCode::NOT_FOUND, None, json!({"error": {"code": 404}}));
    }
    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    tokio::time::sleep(b.delay).await;
    let identity = &v["auth"]["identity"];
    let ok = match identity["methods"][0].as_str() {
        Some("password") => identity["password"]["user"]["password"] == "pw",
        Some("application_credential") => identity["application_credential"]["secret"] == "s3cr3t",
        Some("token") => identity["token"]["id"] == "caller-token",
        _ => false,
    };
    if !ok {
        return reply(
            StatusCode::UNAUTHORIZED,
            None,
            json!({"error": {"code": 401, "title": "Unauthorized",
                "message": "The request you have made requires authentication."}}),
        );
    }
    let project = v["auth"]["scope"]["project"]["name"]
        .as_str()
        .map(|n| format!("pid-{n}"))
        .or_else(|| {
            v["auth"]["scope"]["project"]["id"]
                .as_str()
                .map(String::from)
        })
        .unwrap_or_else(|| "appcred-project".into());
    let now = SystemTime::now();
    let body = json!({"token": {
    "methods": [identity["methods"][0]],
    "issued_at": humantime::format_rfc3339_micros(now).to_string(),
    "expires_at": humantime::format_rfc3339_micros(now + b.lifetime).to_string(),
    "project": {"id": project, "name": project, "domain": {"id": "default"}},
    "catalog": [
        {"type": "identity", "endpoints": [
            {"interface": "public", "region_id": "RegionOne", "url": "http://127.0.0.1:9/v3"}]},
        {"type": "orchestration", "endpoints": [
            {"interface": "public", "region_id": "RegionOne",
             "url": "http://127.0.0.1:9/v1/$(tenant_id)s"},
            {"interface": "internal", "region_id": "RegionOne",
             "url": format!("http://10.0.0.1:8004/v1/{project}")},
            {"interface": "public", "region_id": "RegionTwo",
             "url": "http://127.0.0.2:8004/v1/%(tenant_id)s"}]}
    ]}});
    reply(StatusCode::CREATED, Some(format!("tok-{n}")), body)
}

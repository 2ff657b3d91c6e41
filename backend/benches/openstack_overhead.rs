//! What the OpenStack backend itself costs per lifecycle call, Heat's own
//! time excluded: the backend against a loopback HTTP server that answers
//! at once with bodies the real local Heat sent (`fixtures/`), beside a
//! bare reqwest GET of the same bytes (the floor any HTTP client pays).
//! The difference is our overhead: URL building, auth target, JSON
//! (de)serialisation, error mapping, tracing span, counters.
//!
//! With `OCCI_SO_TEST_HEAT_URL` set, the same GET is also measured against
//! the real Heat, for scale.
//!
//! `cargo bench -p occi-so-backend --bench openstack_overhead`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::Full;
use hyper::{Request, Response};
use occi_so_backend::{OpenStackBackend, OpenStackConfig};
use occi_so_sdk::{Credentials, StackBackend, StackRef, StackSpec, StackUpdate, WaitOptions};

const STACK: &str = include_str!("fixtures/stack.json");
const CREATED: &str = include_str!("fixtures/create.json");
const NAME: &str = "bench-fixture";
const ID: &str = "be8ae9dc-e8c6-44fd-a7b7-e548f0cf754c";

fn answer(req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let full = format!("/v1/admin/stacks/{NAME}/{ID}");
    let (status, body, location) = match (req.method().as_str(), path) {
        ("GET", p) if p == full => (200, STACK, None),
        ("GET", p) if p == format!("/v1/admin/stacks/{NAME}") => (302, "", Some(full.clone())),
        ("POST", "/v1/admin/stacks") => (201, CREATED, None),
        ("PATCH", p) | ("PUT", p) if p == full => (202, "", None),
        ("DELETE", p) if p == full => (204, "", None),
        _ => (
            404,
            r#"{"error":{"type":"EntityNotFound","message":"no"}}"#,
            None,
        ),
    };
    let mut r = Response::builder()
        .status(status)
        .header("Content-Type", "application/json");
    if let Some(l) = location {
        r = r.header("Location", l);
    }
    r.body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap_or_default()
}

async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1/admin", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(
                        |req| async move { Ok::<_, Infallible>(answer(&req)) },
                    );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    base
}

fn spec() -> StackSpec {
    StackSpec {
        name: NAME.into(),
        template: "heat_template_version: 2018-08-31\nresources: {}\n".repeat(20),
        parameters: [("greeting".to_string(), "hello".to_string())].into(),
        environment: None,
        files: BTreeMap::new(),
        timeout_mins: Some(10),
        disable_rollback: true,
        tags: vec!["occi-so".into()],
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = rt.block_on(serve());
    let backend = OpenStackBackend::new(OpenStackConfig {
        heat_url: Some(base.clone()),
        ..OpenStackConfig::default()
    })
    .unwrap();
    let creds = Credentials::new("admin", None);
    let stack = StackRef {
        name: NAME.into(),
        id: ID.into(),
    };
    let raw = reqwest::Client::new();
    let url = format!("{base}/stacks/{NAME}/{ID}");
    let spec = spec();
    let patch = StackUpdate::Patch {
        parameters: [("greeting".to_string(), "bye".to_string())].into(),
    };

    let mut g = c.benchmark_group("loopback");
    g.sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("reqwest_get_floor", |b| {
        b.iter(|| rt.block_on(async { raw.get(&url).send().await.unwrap().bytes().await.unwrap() }))
    });
    g.bench_function("get", |b| {
        b.iter(|| rt.block_on(backend.get(&creds, &stack)).unwrap())
    });
    g.bench_function("create", |b| {
        b.iter(|| rt.block_on(backend.create(&creds, &spec)).unwrap())
    });
    g.bench_function("update_patch", |b| {
        b.iter(|| rt.block_on(backend.update(&creds, &stack, &patch)).unwrap())
    });
    g.bench_function("delete", |b| {
        b.iter(|| rt.block_on(backend.delete(&creds, &stack)).unwrap())
    });
    g.bench_function("find_302_then_get", |b| {
        b.iter(|| rt.block_on(backend.find(&creds, NAME)).unwrap())
    });
    g.bench_function("wait_on_settled_stack", |b| {
        let opts = WaitOptions::default();
        b.iter(|| rt.block_on(backend.wait(&creds, &stack, &opts)).unwrap())
    });
    g.finish();

    if let Ok(heat) = std::env::var("OCCI_SO_TEST_HEAT_URL") {
        real_heat(c, &rt, heat.trim_end_matches('/'));
    }
}

/// Against the real local Heat, for scale: Heat's own time dominates.
fn real_heat(c: &mut Criterion, rt: &tokio::runtime::Runtime, heat: &str) {
    let backend = Arc::new(OpenStackBackend::new(OpenStackConfig::local_heat(heat)).unwrap());
    let creds = Credentials::new("admin", None);
    let mut s = spec();
    s.name = format!("bench-real-{}", std::process::id());
    s.parameters.clear();
    s.template = "heat_template_version: 2018-08-31\nresources:\n  v:\n    type: OS::Heat::Value\n    properties: {value: x}\noutputs:\n  v: {value: {get_attr: [v, value]}}\n".into();
    let stack = rt.block_on(backend.create(&creds, &s)).unwrap();
    rt.block_on(backend.wait(&creds, &stack, &WaitOptions::default()))
        .unwrap();
    let raw = reqwest::Client::new();
    let url = format!("{heat}/stacks/{}/{}", stack.name, stack.id);
    let mut g = c.benchmark_group("real_heat");
    g.sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("reqwest_get_floor", |b| {
        b.iter(|| rt.block_on(async { raw.get(&url).send().await.unwrap().bytes().await.unwrap() }))
    });
    g.bench_function("get", |b| {
        b.iter(|| rt.block_on(backend.get(&creds, &stack)).unwrap())
    });
    g.finish();
    let _ = rt.block_on(backend.delete(&creds, &stack));
}

criterion_group!(benches, bench);
criterion_main!(benches);

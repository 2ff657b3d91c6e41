//! The HTTP edge: request ids, body limit, HTTP/2, TLS, health and
//! metrics, and a clean exit on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;

#[tokio::test]
async fn request_ids_are_propagated_or_generated_and_logged() {
    let s = start(&[]);
    let c = client();
    let mut h = mcn("t1");
    h.push(("X-Request-Id", "trace-me-42"));
    let a = call(&c, Method::GET, &s.url("/-/"), &h, "").await;
    assert_eq!(a.header("x-request-id"), "trace-me-42");
    let b = call(&c, Method::GET, &s.url("/-/"), &mcn("t1"), "").await;
    let id = b.header("x-request-id");
    assert_eq!(id.len(), 36, "a UUID: {id}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = s.log();
    let line = log
        .lines()
        .find(|l| l.contains("trace-me-42"))
        .unwrap_or_else(|| panic!("request id not logged:\n{log}"));
    assert!(line.contains("tenant=\"t1\""), "{line}");
    assert!(line.contains("status=200"), "{line}");
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let s = start(&["--max-body", "1KiB"]);
    let c = client();
    let mut h = mcn("t1");
    h.push(("Content-Type", "text/plain"));
    let big = format!(
        "X-OCCI-Attribute: sample.greeting=\"{}\"\n",
        "a".repeat(2000)
    );
    let a = call(&c, Method::POST, &s.url("/sample/"), &h, &big).await;
    assert_eq!(a.status, 413);
    // A chunked body (no Content-Length) is cut off while it is read.
    let chunks: Vec<Result<String, std::io::Error>> = (0..8).map(|_| Ok("x".repeat(300))).collect();
    let r = c
        .post(s.url("/sample/"))
        .header("X-Tenant-Name", "t1")
        .header("Content-Type", "text/plain")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.text().await.unwrap().contains("--max-body"));
    let list = call(&c, Method::GET, &s.url("/sample/"), &mcn("t1"), "").await;
    assert_eq!(list.body, "", "nothing was created");
}

#[tokio::test]
async fn http2_without_tls_by_prior_knowledge() {
    let s = start(&[]);
    let c = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = c
        .get(s.url("/-/"))
        .header("X-Tenant-Name", "t1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn tls_when_a_certificate_is_configured() {
    let Some(openssl) = require_openssl() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    openssl.self_signed(
        &key,
        &cert,
        "/CN=localhost",
        &["subjectAltName=IP:127.0.0.1"],
    );
    let s = start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let https = s.base.replace("http://", "https://");
    let c = reqwest::Client::builder()
        .no_proxy()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let r = c
        .put(format!("{https}/orchestrator/default"))
        .header("X-Tenant-Name", "t1")
        .header(
            "Category",
            "orchestrator; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2, "ALPN offers h2");
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("{https}/orchestrator/default"),
        "locations use https"
    );
    // Plain HTTP on the TLS port gets nowhere.
    let plain = client().get(s.url("/-/")).send().await;
    // The connection is accepted, but what comes back is a TLS alert, not
    // an HTTP answer.
    let e = plain.expect_err("plain HTTP on the TLS port is not answered");
    let mut chain = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        chain.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    assert!(e.is_request() && !e.is_connect(), "{e:?}");
    assert!(chain.contains("invalid HTTP version parsed"), "{chain}");
}

#[tokio::test]
async fn health_and_metrics() {
    let s = start(&[]);
    let c = client();
    let a = call(&c, Method::GET, &s.url("/healthz"), &[], "").await;
    assert_eq!((a.status.as_u16(), a.body.as_str()), (200, "OK\n"));
    let mut h = mcn("t1");
    h.push((
        "Category",
        "orchestrator; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"",
    ));
    assert_eq!(
        call(&c, Method::PUT, &s.url("/orchestrator/default"), &h, "")
            .await
            .status,
        201
    );
    call(&c, Method::GET, &s.url("/nowhere/x"), &mcn("t1"), "").await;
    let m = call(&c, Method::GET, &s.url("/metrics"), &[], "").await;
    assert_eq!(m.status, 200);
    assert!(m
        .header("content-type")
        .starts_with("application/openmetrics-text"));
    for needle in [
        "occi_so_http_requests_total{method=\"PUT\",status=\"201\"} 1",
        "occi_so_http_requests_total{method=\"GET\",status=\"404\"} 1",
        "occi_so_instances{plugin=\"sample\",state=\"initialised\"} 1",
        "occi_so_operations_total{plugin=\"sample\",operation=\"design\",outcome=\"ok\"} 1",
        "# TYPE occi_so_backend_call_duration_seconds histogram",
    ] {
        assert!(m.body.contains(needle), "missing {needle} in\n{}", m.body);
    }
}

#[tokio::test]
async fn sigterm_exits_cleanly_and_the_journal_keeps_everything() {
    let mut s = start(&[]);
    let c = client();
    let mut h = mcn("t1");
    h.push((
        "Category",
        "orchestrator; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"",
    ));
    h.push(("X-OCCI-Attribute", "sample.greeting=\"kept\""));
    assert_eq!(
        call(&c, Method::PUT, &s.url("/orchestrator/default"), &h, "")
            .await
            .status,
        201
    );
    let status = s.terminate(Duration::from_secs(30));
    assert!(status.success(), "exit status {status:?}\n{}", s.log());
    assert!(s.log().contains("journal closed"), "{}", s.log());
    let s2 = s.restart();
    let a = call(
        &c,
        Method::GET,
        &s2.url("/orchestrator/default"),
        &mcn("t1"),
        "",
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.attribute("sample.greeting").as_deref(), Some("kept"));
}

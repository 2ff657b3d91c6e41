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

/// The server's address as `host:port`.
fn addr(s: &Server) -> String {
    s.url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

/// Reads until the server closes the connection (or `within` passes:
/// `None`).
async fn read_to_close(sock: &mut tokio::net::TcpStream, within: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, sock.read_to_end(&mut got)).await;
    match read {
        Ok(_) => Some(String::from_utf8_lossy(&got).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn connections_that_send_nothing_or_idle_are_closed() {
    use tokio::io::AsyncWriteExt;
    let s = start(&["--idle-timeout", "1s", "--header-timeout", "1s"]);
    // Never a byte.
    let mut silent = tokio::net::TcpStream::connect(addr(&s)).await.unwrap();
    let got = read_to_close(&mut silent, Duration::from_secs(10)).await;
    assert_eq!(got.as_deref(), Some(""), "closed without an answer");
    // Idle after one keep-alive request.
    let mut kept = tokio::net::TcpStream::connect(addr(&s)).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let got = read_to_close(&mut kept, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert_eq!(got.matches("HTTP/1.1").count(), 1, "{got}");
}

#[tokio::test]
async fn a_slow_request_head_gets_408_and_the_close() {
    use tokio::io::AsyncWriteExt;
    let s = start(&["--header-timeout", "1s"]);
    let mut slow = tokio::net::TcpStream::connect(addr(&s)).await.unwrap();
    slow.write_all(b"GET /-/ HTTP/1.1\r\nHost: x\r\nX-Tenant-Na")
        .await
        .unwrap();
    let got = read_to_close(&mut slow, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(got.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{got}");
    assert!(
        got.contains("not received within 1s (header timeout)"),
        "{got}"
    );
}

#[tokio::test]
async fn a_request_in_flight_is_not_idle() {
    // A watch stream outlives the idle timeout: only connections with no
    // request in flight are idle.
    let s = start(&["--idle-timeout", "1s"]);
    let c = client();
    let mut h = mcn("t1");
    h.push((
        "Category",
        "sample; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/sm#\"",
    ));
    let made = call(&c, Method::POST, &s.url("/sample/"), &h, "").await;
    assert_eq!(made.status, 201, "{}", made.body);
    let loc = made.header("location");
    let mut r = c
        .get(format!("{loc}?watch"))
        .header("X-Tenant-Name", "t1")
        .header("Accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.chunk().await.unwrap().is_some(), "the first state");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut h = mcn("t1");
    h.push(("X-OCCI-Attribute", "sample.greeting=\"later\""));
    let upd = call(&c, Method::POST, &loc, &h, "").await;
    assert_eq!(upd.status, 200, "{}", upd.body);
    let next = tokio::time::timeout(Duration::from_secs(10), r.chunk())
        .await
        .expect("an event in time")
        .unwrap();
    assert!(
        next.is_some(),
        "the watch is still open after the idle timeout"
    );
}

#[tokio::test]
async fn beyond_the_connection_cap_503_and_healthz_still_answers() {
    use tokio::io::AsyncWriteExt;
    let s = start(&["--max-connections", "2"]);
    let a = tokio::net::TcpStream::connect(addr(&s)).await.unwrap();
    let b = tokio::net::TcpStream::connect(addr(&s)).await.unwrap();
    // The kernel hands connections over in order: a and b hold the cap.
    let mut c = tokio::net::TcpStream::connect(addr(&s)).await.unwrap();
    c.write_all(b"GET /-/ HTTP/1.1\r\nHost: x\r\nX-Tenant-Name: t1\r\n\r\n")
        .await
        .unwrap();
    let got = read_to_close(&mut c, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(got.starts_with("HTTP/1.1 503"), "{got}");
    assert!(
        got.contains("limit of 2 open connections (--max-connections)"),
        "{got}"
    );
    assert!(got.to_ascii_lowercase().contains("retry-after: 1"), "{got}");
    let mut h = tokio::net::TcpStream::connect(addr(&s)).await.unwrap();
    h.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let got = read_to_close(&mut h, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    drop((a, b));
    // Once they are gone, connections are served in full again.
    let cl = client();
    let ok = wait_for(
        &cl,
        &s.url("/-/"),
        &mcn("t1"),
        Duration::from_secs(10),
        |a| a.status == 200,
    )
    .await;
    assert_eq!(ok.status, 200, "the cap frees with the connections");
}

/// The per-request line is INFO only with `--access-log`; without it a
/// 2xx/4xx answer is logged at DEBUG (off at the default INFO level), and
/// a 5xx answer is always a WARN.
#[tokio::test]
async fn the_access_log_is_switched_on_not_paid_for_by_default() {
    let c = client();
    for (args, level) in [(vec![], "DEBUG"), (vec!["--access-log"], "INFO")] {
        let s = start(&args);
        let a = call(&c, Method::GET, &s.url("/-/"), &mcn("t1"), "").await;
        assert_eq!(a.status, 200);
        let id = a.header("x-request-id");
        let until = std::time::Instant::now() + Duration::from_secs(10);
        let line = loop {
            let log = s.log();
            if let Some(l) = log
                .lines()
                .find(|l| l.contains(&id) && l.contains("answered"))
            {
                break l.to_string();
            }
            assert!(
                std::time::Instant::now() < until,
                "no answered line for {id}:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(line.contains(&format!(" {level} ")), "{args:?}: {line}");
        assert!(
            line.contains("status=200") && line.contains("tenant=\"t1\""),
            "{line}"
        );
    }
}

//! `GET ...?watch` (Server-Sent Events) and links between instances.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use reqwest::Method;

const SAMPLE: &str = "sample; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/sm#\"";

async fn create(c: &reqwest::Client, s: &Server, tenant: &'static str) -> String {
    let mut h = mcn(tenant);
    h.push(("Category", SAMPLE));
    let a = call(c, Method::POST, &s.url("/sample/"), &h, "").await;
    assert_eq!(a.status, 201, "{}", a.body);
    a.header("location")
}

/// Reads SSE events (event name, data) until `n` have arrived.
async fn events(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buf: &mut String,
    n: usize,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            if !name.is_empty() {
                out.push((name, data));
            }
        }
        if out.len() >= n {
            break;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("an event in time")
            .expect("stream open")
            .expect("chunk");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    out
}

#[tokio::test]
async fn watch_streams_every_change_and_the_end() {
    let s = start(&[]);
    let c = client();
    let loc = create(&c, &s, "w").await;
    let r = c
        .get(format!("{loc}?watch"))
        .header("X-Tenant-Name", "w")
        .header("Accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut stream = r.bytes_stream();
    let mut buf = String::new();
    let first = events(&mut stream, &mut buf, 1).await;
    assert_eq!(first[0].0, "state");
    let doc: serde_json::Value = serde_json::from_str(&first[0].1).unwrap();
    assert_eq!(doc["attributes"]["sample.greeting"], "hello");

    let mut h = mcn("w");
    h.push(("X-OCCI-Attribute", "sample.greeting=\"watched\""));
    assert_eq!(call(&c, Method::POST, &loc, &h, "").await.status, 200);
    let next = events(&mut stream, &mut buf, 1).await;
    let doc: serde_json::Value = serde_json::from_str(&next[0].1).unwrap();
    assert_eq!(doc["attributes"]["sample.greeting"], "watched");

    assert_eq!(
        call(&c, Method::DELETE, &loc, &mcn("w"), "").await.status,
        200
    );
    // The dispose shows (occi.so.operation), then the end.
    let mut last = events(&mut stream, &mut buf, 1).await.remove(0);
    while last.0 == "state" {
        let doc: serde_json::Value = serde_json::from_str(&last.1).unwrap();
        assert_eq!(doc["attributes"]["occi.so.operation"], "dispose");
        last = events(&mut stream, &mut buf, 1).await.remove(0);
    }
    assert_eq!(last.0, "deleted");
    assert!(last.1.contains(&loc), "{}", last.1);
    let end = tokio::time::timeout(Duration::from_secs(10), stream.next()).await;
    assert!(
        matches!(end, Ok(None)),
        "the stream ends after the instance is gone"
    );

    // Another tenant cannot watch it.
    let loc2 = create(&c, &s, "w").await;
    let r = c
        .get(format!("{loc2}?watch"))
        .header("X-Tenant-Name", "intruder")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn links_between_instances() {
    let s = start(&[]);
    let c = client();
    let a = create(&c, &s, "l").await;
    let b = create(&c, &s, "l").await;

    // POST /link/ needs a target.
    let mut h = mcn("l");
    h.push((
        "Category",
        "link; scheme=\"http://schemas.ogf.org/occi/core#\"; class=\"kind\"",
    ));
    let mut missing = h.clone();
    let source = format!("occi.core.source=\"{a}\"");
    missing.push(("X-OCCI-Attribute", source.as_str()));
    let e = call(&c, Method::POST, &s.url("/link/"), &missing, "").await;
    assert_eq!(e.status, 400);
    assert_eq!(
        e.body.trim(),
        "attribute 'occi.core.target' is required by kind 'link'"
    );

    let attrs = format!("occi.core.source=\"{a}\", occi.core.target=\"{b}\", role=\"depends\"");
    h.push(("X-OCCI-Attribute", attrs.as_str()));
    let made = call(&c, Method::POST, &s.url("/link/"), &h, "").await;
    assert_eq!(made.status, 201, "{}", made.body);
    let link = made.header("location");
    assert!(link.starts_with(&s.url("/link/")), "{link}");

    let src = call(&c, Method::GET, &a, &mcn("l"), "").await;
    assert!(src.body.contains(&format!("Link: <{b}>; rel=\"http://schemas.mobile-cloud-networking.eu/occi/sm#sample\"; self=\"{link}\"")), "{}", src.body);
    let got = call(&c, Method::GET, &link, &mcn("l"), "").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.attribute("occi.core.source"), Some(a.clone()));
    assert_eq!(got.attribute("occi.core.target"), Some(b.clone()));
    assert_eq!(got.attribute("role").as_deref(), Some("depends"));
    // Other tenants see no such link.
    assert_eq!(
        call(&c, Method::GET, &link, &mcn("other"), "").await.status,
        404
    );

    // Inline link on create, to a target that does not exist: 400, nothing made.
    let mut inline = mcn("l");
    inline.push(("Category", SAMPLE));
    inline.push((
        "Link",
        "</sample/nope>; rel=\"http://schemas.mobile-cloud-networking.eu/occi/sm#sample\"",
    ));
    let e = call(&c, Method::PUT, &s.url("/sample/linked"), &inline, "").await;
    assert_eq!(e.status, 400, "{}", e.body);
    assert!(e.body.contains("/sample/nope"), "{}", e.body);
    assert_eq!(
        call(&c, Method::GET, &s.url("/sample/linked"), &mcn("l"), "")
            .await
            .status,
        404
    );

    assert_eq!(
        call(&c, Method::DELETE, &link, &mcn("l"), "").await.status,
        200
    );
    let src = call(&c, Method::GET, &a, &mcn("l"), "").await;
    assert!(!src.body.contains(&format!("Link: <{b}>")), "{}", src.body);
}

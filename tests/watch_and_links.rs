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
    events_with_ids(stream, buf, n)
        .await
        .into_iter()
        .map(|(name, _, data)| (name, data))
        .collect()
}

/// Reads SSE events (event name, id, data) until `n` have arrived.
async fn events_with_ids(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buf: &mut String,
    n: usize,
) -> Vec<(String, Option<u64>, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut name = String::new();
            let mut id = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = v.to_string();
                } else if let Some(v) = line.strip_prefix("id: ") {
                    id = v.parse().ok();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            if !name.is_empty() {
                out.push((name, id, data));
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
    // The change as an event of its own, then the new state.
    let next = events(&mut stream, &mut buf, 2).await;
    assert_eq!(next[0].0, "attributes");
    let change: serde_json::Value = serde_json::from_str(&next[0].1).unwrap();
    assert_eq!(change["changed"]["sample.greeting"], "watched");
    assert_eq!(next[1].0, "state");
    let doc: serde_json::Value = serde_json::from_str(&next[1].1).unwrap();
    assert_eq!(doc["attributes"]["sample.greeting"], "watched");

    assert_eq!(
        call(&c, Method::DELETE, &loc, &mcn("w"), "").await.status,
        200
    );
    // The dispose shows (its operation event, occi.so.operation), then the end.
    let mut last = events(&mut stream, &mut buf, 1).await.remove(0);
    let mut saw_dispose = false;
    while last.0 != "deleted" {
        let doc: serde_json::Value = serde_json::from_str(&last.1).unwrap();
        match last.0.as_str() {
            "state" => assert_eq!(doc["attributes"]["occi.so.operation"], "dispose"),
            "operation" => {
                assert_eq!(doc["operation"], "dispose");
                saw_dispose = true;
            }
            other => panic!("unexpected event {other}: {}", last.1),
        }
        last = events(&mut stream, &mut buf, 1).await.remove(0);
    }
    assert!(saw_dispose, "the dispose operation shows as an event");
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

async fn watch_from(
    c: &reqwest::Client,
    loc: &str,
    tenant: &str,
    last: Option<&str>,
) -> reqwest::Response {
    let mut r = c
        .get(format!("{loc}?watch"))
        .header("X-Tenant-Name", tenant)
        .header("Accept", "text/event-stream");
    if let Some(l) = last {
        r = r.header("Last-Event-ID", l);
    }
    r.send().await.unwrap()
}

/// Events until the first `state` (included).
async fn until_state(r: reqwest::Response) -> Vec<(String, Option<u64>, String)> {
    assert_eq!(r.status(), 200);
    let mut stream = r.bytes_stream();
    let mut buf = String::new();
    let mut out = Vec::new();
    loop {
        let e = events_with_ids(&mut stream, &mut buf, 1).await.remove(0);
        let done = e.0 == "state";
        out.push(e);
        if done {
            return out;
        }
    }
}

#[tokio::test]
async fn a_reconnecting_watch_replays_what_it_missed_even_after_a_restart() {
    let mut s = start(&[]);
    let c = client();
    let loc = create(&c, &s, "r").await;
    let mut h = mcn("r");
    h.push(("Category", "deploy; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"; class=\"action\""));
    let a = call(&c, Method::POST, &format!("{loc}?action=deploy"), &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = settled(
        &c,
        &loc,
        &mcn("r"),
        Duration::from_secs(60),
        Duration::from_millis(50),
    )
    .await;
    assert_eq!(
        g.attribute("occi.so.phase").as_deref(),
        Some("deployed"),
        "{}",
        g.body
    );

    // From the start: every event, ids 1, 2, 3, ... then the state.
    let all = until_state(watch_from(&c, &loc, "r", Some("0")).await).await;
    let ids: Vec<u64> = all
        .iter()
        .filter(|e| e.0 != "state")
        .map(|e| e.1.unwrap())
        .collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "{all:?}");
    let kinds: Vec<&str> = all.iter().map(|e| e.0.as_str()).collect();
    for k in ["operation", "stack", "phase", "state"] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let last = *ids.last().unwrap();
    assert_eq!(
        all.last().unwrap().1,
        Some(last),
        "the state carries the last id"
    );

    // Missed while away: an update; a reconnect gets exactly what came after.
    let mut h = mcn("r");
    h.push(("X-OCCI-Attribute", "sample.greeting=\"again\""));
    assert_eq!(call(&c, Method::POST, &loc, &h, "").await.status, 200);
    settled(
        &c,
        &loc,
        &mcn("r"),
        Duration::from_secs(60),
        Duration::from_millis(50),
    )
    .await;
    let missed = until_state(watch_from(&c, &loc, "r", Some(&last.to_string())).await).await;
    assert_eq!(missed[0].1, Some(last + 1), "{missed:?}");
    let update: Vec<serde_json::Value> = missed
        .iter()
        .filter(|e| e.0 == "operation")
        .map(|e| serde_json::from_str(&e.2).unwrap())
        .collect();
    assert!(
        update
            .iter()
            .any(|u| u["operation"] == "update" && u["state"] == "succeeded"),
        "{missed:?}"
    );

    // The ids are durable: after a restart the same replay.
    s.terminate(Duration::from_secs(20));
    let s = s.restart();
    let path = loc
        .split_once("/sample/")
        .map(|(_, id)| format!("/sample/{id}"))
        .unwrap();
    let loc = s.url(&path);
    let again = until_state(watch_from(&c, &loc, "r", Some(&last.to_string())).await).await;
    let strip = |v: &[(String, Option<u64>, String)]| -> Vec<(String, Option<u64>, String)> {
        v.iter().filter(|e| e.0 != "state").cloned().collect()
    };
    assert_eq!(strip(&again), strip(&missed));

    // A Last-Event-ID that is not one is refused, naming the header.
    let r = watch_from(&c, &loc, "r", Some("yesterday")).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Last-Event-ID"));
    drop(s);
}

//! The query interface: every rendering, the `.well-known` mirror,
//! Category filtering, user-defined mixins, and content negotiation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;

use common::*;
use reqwest::Method;

#[tokio::test]
async fn lists_core_kinds_service_kinds_and_actions_in_every_rendering() {
    let s = start(&[]);
    let c = client();
    let h = mcn("t1");

    // text/plain is the default; Category locations are relative.
    let a = call(&c, Method::GET, &s.url("/-/"), &h, "").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), "text/plain");
    assert!(
        a.header("server").ends_with("OCCI/1.2"),
        "{}",
        a.header("server")
    );
    for needle in [
        "Category: entity; scheme=\"http://schemas.ogf.org/occi/core#\"; class=\"kind\"",
        "Category: resource; scheme=\"http://schemas.ogf.org/occi/core#\"; class=\"kind\"",
        "Category: link; scheme=\"http://schemas.ogf.org/occi/core#\"; class=\"kind\"",
        "Category: orchestrator; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"; class=\"kind\"",
        "location=\"/orchestrator/\"",
        "location=\"/sample/\"",
        "location=\"/sampledb/\"",
        "occi.mcn.stack.state{immutable}",
        "occi.mcn.stack.id{immutable}",
        "sampledb.name{required immutable}",
        "Category: deploy; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"; class=\"action\"",
        "Category: provision; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"; class=\"action\"",
    ] {
        assert!(a.body.contains(needle), "missing {needle} in\n{}", a.body);
    }

    // text/occi: the same in one Category header, body OK.
    let mut occi_h = h.clone();
    occi_h.push(("Accept", "text/occi"));
    let o = call(&c, Method::GET, &s.url("/-/"), &occi_h, "").await;
    assert_eq!(o.status, 200);
    assert_eq!(o.header("content-type"), "text/occi");
    assert_eq!(o.body, "OK");
    assert!(o.header("category").contains("location=\"/orchestrator/\""));

    // JSON (OCCI 1.2): kinds, actions.
    let mut json_h = h.clone();
    json_h.push(("Accept", "application/occi+json"));
    let j = call(&c, Method::GET, &s.url("/-/"), &json_h, "").await;
    assert_eq!(j.status, 200);
    assert_eq!(j.header("content-type"), "application/occi+json");
    let doc: serde_json::Value = serde_json::from_str(&j.body).unwrap();
    let kinds = doc["kinds"].as_array().unwrap();
    let orch = kinds
        .iter()
        .find(|k| k["term"] == "orchestrator")
        .expect("orchestrator kind");
    assert_eq!(orch["location"], "/orchestrator/");
    assert_eq!(orch["attributes"]["sample.length"]["type"], "number");
    assert_eq!(orch["attributes"]["sample.length"]["default"], 16);
    assert!(doc["actions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["term"] == "deploy"));

    // The well-known mirror answers the same.
    let w = call(
        &c,
        Method::GET,
        &s.url("/.well-known/org/ogf/occi/-/"),
        &h,
        "",
    )
    .await;
    assert_eq!(w.status, 200);
    assert_eq!(w.body, a.body);
}

#[tokio::test]
async fn category_filter_returns_only_the_named_categories() {
    let s = start(&[]);
    let c = client();
    let mut h = mcn("t1");
    h.push((
        "Category",
        "deploy; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"",
    ));
    let a = call(&c, Method::GET, &s.url("/-/"), &h, "").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body.lines().count(), 1, "{}", a.body);
    assert!(a.body.starts_with("Category: deploy;"));

    // In a text/plain body too.
    let body = format!("Category: sample; scheme=\"{SM}\"; class=\"kind\"\n");
    let mut h = mcn("t1");
    h.push(("Content-Type", "text/plain"));
    let a = call(&c, Method::GET, &s.url("/-/"), &h, &body).await;
    assert_eq!(a.body.lines().count(), 1, "{}", a.body);
    assert!(a.body.contains("location=\"/sample/\""));
}

#[tokio::test]
async fn user_mixins_are_defined_listed_used_and_deleted_per_tenant() {
    let s = start(&[]);
    let c = client();
    let mixin =
        "blue; scheme=\"http://example.org/tags#\"; class=\"mixin\"; location=\"/tags/blue/\"";
    let mut h = mcn("t1");
    h.push(("Category", mixin));
    let a = call(&c, Method::POST, &s.url("/-/"), &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);

    // Defining it again, or over a provider category, is a conflict.
    assert_eq!(
        call(&c, Method::POST, &s.url("/-/"), &h, "").await.status,
        409
    );
    let mut h2 = mcn("t1");
    h2.push((
        "Category",
        "deploy; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"; class=\"mixin\"; location=\"/d/\"",
    ));
    assert_eq!(
        call(&c, Method::POST, &s.url("/-/"), &h2, "").await.status,
        409
    );
    // A mixin without location is refused, naming the problem.
    let mut h3 = mcn("t1");
    h3.push((
        "Category",
        "red; scheme=\"http://example.org/tags#\"; class=\"mixin\"",
    ));
    let a = call(&c, Method::POST, &s.url("/-/"), &h3, "").await;
    assert_eq!(a.status, 400);
    assert!(a.body.contains("location is required"), "{}", a.body);

    // t1 sees it, t2 does not.
    let q = call(&c, Method::GET, &s.url("/-/"), &mcn("t1"), "").await;
    assert!(q.body.contains("Category: blue;"), "{}", q.body);
    let q2 = call(&c, Method::GET, &s.url("/-/"), &mcn("t2"), "").await;
    assert!(!q2.body.contains("Category: blue;"));

    // Tag an instance through the mixin collection, list it, untag it.
    let mut ph = mcn("t1");
    ph.push((
        "Category",
        "sample; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/sm#\"",
    ));
    let created = call(&c, Method::POST, &s.url("/sample/"), &ph, "").await;
    assert_eq!(created.status, 201, "{}", created.body);
    let loc = created.header("location");
    let mut ah = mcn("t1");
    ah.push(("X-OCCI-Location", loc.as_str()));
    assert_eq!(
        call(&c, Method::POST, &s.url("/tags/blue/"), &ah, "")
            .await
            .status,
        200
    );
    let members = call(&c, Method::GET, &s.url("/tags/blue/"), &mcn("t1"), "").await;
    assert_eq!(members.body.trim(), format!("X-OCCI-Location: {loc}"));
    let inst = call(&c, Method::GET, &loc, &mcn("t1"), "").await;
    assert!(
        inst.body
            .contains("Category: blue; scheme=\"http://example.org/tags#\"; class=\"mixin\""),
        "{}",
        inst.body
    );
    // t2 has no such collection.
    assert_eq!(
        call(&c, Method::GET, &s.url("/tags/blue/"), &mcn("t2"), "")
            .await
            .status,
        404
    );

    // Provider categories cannot be deleted; the user mixin can.
    let mut dh = mcn("t1");
    dh.push(("Category", "orchestrator; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"; class=\"kind\""));
    assert_eq!(
        call(&c, Method::DELETE, &s.url("/-/"), &dh, "")
            .await
            .status,
        403
    );
    let mut dh = mcn("t1");
    dh.push(("Category", mixin));
    assert_eq!(
        call(&c, Method::DELETE, &s.url("/-/"), &dh, "")
            .await
            .status,
        200
    );
    let inst = call(&c, Method::GET, &loc, &mcn("t1"), "").await;
    assert!(
        !inst.body.contains("blue"),
        "association removed: {}",
        inst.body
    );
    assert_eq!(
        call(&c, Method::GET, &s.url("/tags/blue/"), &mcn("t1"), "")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn content_negotiation_errors() {
    let s = start(&[]);
    let c = client();
    // uri-list is for listings only.
    let mut h = mcn("t1");
    h.push(("Accept", "text/uri-list"));
    let a = call(&c, Method::GET, &s.url("/-/"), &h, "").await;
    assert_eq!(a.status, 400);
    assert!(a.body.contains("uri-list"), "{}", a.body);
    // ... and fine for a collection.
    let a = call(&c, Method::GET, &s.url("/sample/"), &h, "").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), "text/uri-list");
    // Nothing acceptable: 406.
    let mut h = mcn("t1");
    h.push(("Accept", "image/png"));
    let a = call(&c, Method::GET, &s.url("/-/"), &h, "").await;
    assert_eq!(a.status, 406);
    assert!(a.body.contains("Accept"), "{}", a.body);
    // A body in an unknown media type: 415.
    let mut h = mcn("t1");
    h.push(("Content-Type", "application/xml"));
    let a = call(&c, Method::POST, &s.url("/sample/"), &h, "<x/>").await;
    assert_eq!(a.status, 415);
    // A client asking for a newer OCCI: 501.
    let mut h = mcn("t1");
    h.push(("User-Agent", "future-client OCCI/2.0"));
    assert_eq!(
        call(&c, Method::GET, &s.url("/-/"), &h, "").await.status,
        501
    );
}

//! Every caller mistake is a precise 4xx that names the header, attribute
//! or action at fault, and changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;

const ORCH: &str =
    "orchestrator; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"";

fn with<'a>(
    mut h: Vec<(&'a str, &'a str)>,
    more: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    h.extend_from_slice(more);
    h
}

/// Tenant t1's headers with `category`.
fn as_t1(category: &str) -> Vec<(&str, &str)> {
    with(mcn("t1"), &[("Category", category)])
}

/// `PUT /orchestrator/default` of the MCN kind as `caller` (201); the
/// instance's rendering then.
async fn init(c: &reqwest::Client, s: &Server, caller: &[(&str, &str)]) -> Answer {
    let url = s.url("/orchestrator/default");
    let a = call(
        c,
        Method::PUT,
        &url,
        &with(caller.to_vec(), &[("Category", ORCH)]),
        "",
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    call(c, Method::GET, &url, caller, "").await
}

#[tokio::test]
async fn malformed_category_is_400_naming_header_and_byte() {
    let s = start(&[]);
    let c = client();
    let h = with(
        mcn("t1"),
        &[
            ("Content-Type", "text/occi"),
            (
                "Category",
                "orchestrator; sheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"",
            ),
        ],
    );
    let a = call(&c, Method::PUT, &s.url("/orchestrator/default"), &h, "").await;
    assert_eq!(a.status, 400);
    assert!(a.body.contains("header Category at byte 12"), "{}", a.body);
    assert!(a.body.contains("scheme"), "{}", a.body);
    assert_eq!(
        call(
            &c,
            Method::GET,
            &s.url("/orchestrator/default"),
            &mcn("t1"),
            ""
        )
        .await
        .status,
        404,
        "nothing was created"
    );
    // The same mistake in a text/plain body names the line.
    let h = with(mcn("t1"), &[("Content-Type", "text/plain")]);
    let body = format!("Category: {ORCH}\nX-OCCI-Attribute: sample.length=\n");
    let a = call(&c, Method::PUT, &s.url("/orchestrator/default"), &h, &body).await;
    assert_eq!(a.status, 400);
    assert!(a.body.contains("body line 2"), "{}", a.body);
}

#[tokio::test]
async fn unknown_kind_is_400_and_unknown_collection_404() {
    let s = start(&[]);
    let c = client();
    let h = as_t1("teleporter; scheme=\"http://example.org/occi#\"; class=\"kind\"");
    let a = call(&c, Method::PUT, &s.url("/orchestrator/default"), &h, "").await;
    assert_eq!(a.status, 400);
    assert!(
        a.body.contains("http://example.org/occi#teleporter"),
        "{}",
        a.body
    );
    let a = call(&c, Method::POST, &s.url("/sample/"), &h, "").await;
    assert_eq!(a.status, 400);
    // A kind served elsewhere: say where.
    let h = as_t1("sampledb; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/sm#\"");
    let a = call(&c, Method::PUT, &s.url("/sample/x"), &h, "").await;
    assert_eq!(a.status, 400);
    assert!(a.body.contains("/sampledb/"), "{}", a.body);
    let a = call(&c, Method::POST, &s.url("/teleporter/"), &mcn("t1"), "").await;
    assert_eq!(a.status, 404);
    assert!(a.body.contains("/teleporter/"), "{}", a.body);
    let list = call(&c, Method::GET, &s.url("/"), &mcn("t1"), "").await;
    assert_eq!(list.body, "", "nothing was created");
}

#[tokio::test]
async fn attribute_of_the_wrong_type_is_400_and_changes_nothing() {
    let s = start(&[]);
    let c = client();
    let bad = with(
        mcn("t1"),
        &[
            ("Category", ORCH),
            ("X-OCCI-Attribute", "sample.length=\"lots\""),
        ],
    );
    let a = call(&c, Method::PUT, &s.url("/orchestrator/default"), &bad, "").await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.body.trim(),
        "attribute 'sample.length': expected a number, got \"lots\""
    );
    // Out of bounds, pattern, unknown name, immutable: each named.
    let before = init(&c, &s, &mcn("t1")).await;
    for (attr, expect, status) in [
        ("sample.length=7", "below the minimum", 400),
        (
            "sample.greeting=\"<script>\"",
            "does not match the pattern",
            400,
        ),
        (
            "sample.lenght=20",
            "is not defined by kind 'orchestrator'",
            400,
        ),
        (
            "occi.mcn.stack.state=\"CREATE_COMPLETE\"",
            "set by the service",
            403,
        ),
    ] {
        let h = with(mcn("t1"), &[("X-OCCI-Attribute", attr)]);
        let a = call(&c, Method::POST, &s.url("/orchestrator/default"), &h, "").await;
        assert_eq!(a.status, status, "{attr}: {}", a.body);
        assert!(a.body.contains(expect), "{attr}: {}", a.body);
    }
    let after = call(
        &c,
        Method::GET,
        &s.url("/orchestrator/default"),
        &mcn("t1"),
        "",
    )
    .await;
    assert_eq!(before.body, after.body);
}

#[tokio::test]
async fn missing_required_attribute_is_400() {
    let s = start(&[]);
    let c = client();
    let h = as_t1("sampledb; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/sm#\"");
    let a = call(&c, Method::POST, &s.url("/sampledb/"), &h, "").await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.body.trim(),
        "attribute 'sampledb.name' is required by kind 'sampledb'"
    );
    let list = call(&c, Method::GET, &s.url("/sampledb/"), &mcn("t1"), "").await;
    assert_eq!(list.body, "");
    // With it, the secret password is accepted and never rendered.
    let h = with(
        h,
        &[(
            "X-OCCI-Attribute",
            "sampledb.name=\"orders\", sampledb.password=\"hunter2\"",
        )],
    );
    let a = call(&c, Method::POST, &s.url("/sampledb/"), &h, "").await;
    assert_eq!(a.status, 201, "{}", a.body);
    let inst = call(&c, Method::GET, &a.header("location"), &mcn("t1"), "").await;
    assert!(inst.body.contains("sampledb.name=\"orders\""));
    assert!(!inst.body.contains("hunter2"), "{}", inst.body);
    assert!(!s.log().contains("hunter2"));
}

#[tokio::test]
async fn missing_token_is_401_with_the_challenge() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "s3cret-1 t1\n").unwrap();
    let s = start(&["--auth", "static", "--token-file", tokens.to_str().unwrap()]);
    let c = client();
    let a = call(
        &c,
        Method::GET,
        &s.url("/-/"),
        &[("X-Tenant-Name", "t1")],
        "",
    )
    .await;
    assert_eq!(a.status, 401);
    assert!(a.body.contains("X-Auth-Token required"), "{}", a.body);
    assert!(!a.header("www-authenticate").is_empty());
    let a = call(
        &c,
        Method::GET,
        &s.url("/-/"),
        &[("X-Auth-Token", "s3cret-1")],
        "",
    )
    .await;
    assert_eq!(a.status, 401);
    assert!(a.body.contains("X-Tenant-Name required"), "{}", a.body);
    let a = call(
        &c,
        Method::GET,
        &s.url("/-/"),
        &[("X-Auth-Token", "guess"), ("X-Tenant-Name", "t1")],
        "",
    )
    .await;
    assert_eq!(a.status, 401);
    let ok = call(
        &c,
        Method::GET,
        &s.url("/-/"),
        &[("X-Auth-Token", "s3cret-1"), ("X-Tenant-Name", "t1")],
        "",
    )
    .await;
    assert_eq!(ok.status, 200);
    assert!(!s.log().contains("s3cret-1"), "tokens never logged");
    // /healthz and /metrics need no token.
    assert_eq!(
        call(&c, Method::GET, &s.url("/healthz"), &[], "")
            .await
            .status,
        200
    );

    // Keystone mode names Keystone in the challenge.
    let k = start(&[
        "--auth",
        "keystone",
        "--keystone-url",
        "http://127.0.0.1:9/v3",
    ]);
    let a = call(
        &c,
        Method::GET,
        &k.url("/-/"),
        &[("X-Tenant-Name", "t1")],
        "",
    )
    .await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.header("www-authenticate"),
        "Keystone uri=\"http://127.0.0.1:9\""
    );
    // A token Keystone cannot check (nothing listens there): 503, not 500.
    let a = call(
        &c,
        Method::GET,
        &k.url("/-/"),
        &[("X-Auth-Token", "abc"), ("X-Tenant-Name", "t1")],
        "",
    )
    .await;
    assert_eq!(a.status, 503, "{}", a.body);
}

#[tokio::test]
async fn wrong_tenant_is_403_and_other_tenants_instances_are_404() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "tok-a t1\ntok-b t2\n").unwrap();
    let s = start(&["--auth", "static", "--token-file", tokens.to_str().unwrap()]);
    let c = client();
    let t1 = [("X-Auth-Token", "tok-a"), ("X-Tenant-Name", "t1")];
    let t2 = [("X-Auth-Token", "tok-b"), ("X-Tenant-Name", "t2")];
    let a = call(
        &c,
        Method::GET,
        &s.url("/-/"),
        &[("X-Auth-Token", "tok-a"), ("X-Tenant-Name", "t2")],
        "",
    )
    .await;
    assert_eq!(a.status, 403);
    assert!(a.body.contains("tenant 't2'"), "{}", a.body);

    let before = init(&c, &s, &t1).await;
    // t2 cannot see, change, act on or delete it.
    assert_eq!(
        call(&c, Method::GET, &s.url("/orchestrator/default"), &t2, "")
            .await
            .status,
        404
    );
    let mut u = t2.to_vec();
    u.push(("X-OCCI-Attribute", "sample.greeting=\"hijacked\""));
    assert_eq!(
        call(&c, Method::POST, &s.url("/orchestrator/default"), &u, "")
            .await
            .status,
        404
    );
    assert_eq!(
        call(
            &c,
            Method::POST,
            &s.url("/orchestrator/default?action=deploy"),
            &t2,
            ""
        )
        .await
        .status,
        404
    );
    assert_eq!(
        call(&c, Method::DELETE, &s.url("/orchestrator/default"), &t2, "")
            .await
            .status,
        404
    );
    assert_eq!(
        call(&c, Method::GET, &s.url("/orchestrator/"), &t2, "")
            .await
            .body,
        ""
    );
    // t2 has its own default instance at the same path.
    init(&c, &s, &t2).await;
    let after = call(&c, Method::GET, &s.url("/orchestrator/default"), &t1, "").await;
    assert_eq!(before.body, after.body);
}

#[tokio::test]
async fn out_of_order_action_is_400_naming_the_applicable_ones() {
    let s = start(&[]);
    let c = client();
    let before = init(&c, &s, &mcn("t1")).await;
    let p = with(
        mcn("t1"),
        &[
            ("Content-Type", "text/occi"),
            (
                "Category",
                "provision; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"",
            ),
        ],
    );
    let a = call(
        &c,
        Method::POST,
        &s.url("/orchestrator/default?action=provision"),
        &p,
        "",
    )
    .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.body.trim(),
        "action 'provision' does not apply to an instance that is initialised; actions that apply now: deploy"
    );
    let a = call(
        &c,
        Method::POST,
        &s.url("/orchestrator/default?action=rotate"),
        &mcn("t1"),
        "",
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(
        a.body.contains("actions that apply now: deploy"),
        "{}",
        a.body
    );
    let a = call(
        &c,
        Method::POST,
        &s.url("/orchestrator/default?action=fly"),
        &mcn("t1"),
        "",
    )
    .await;
    assert_eq!(a.status, 400);
    // The action Category must be the one in the query.
    let a = call(
        &c,
        Method::POST,
        &s.url("/orchestrator/default?action=deploy"),
        &p,
        "",
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(a.body.contains("?action=deploy"), "{}", a.body);
    let after = call(
        &c,
        Method::GET,
        &s.url("/orchestrator/default"),
        &mcn("t1"),
        "",
    )
    .await;
    assert_eq!(before.body, after.body);
}

#[tokio::test]
async fn concurrent_deploys_run_once_and_the_refused_change_nothing() {
    let Some(heat) = require_heat() else {
        return;
    };
    let s = start_with(heat_args(&heat));
    let c = client();
    init(&c, &s, &mcn("t1")).await;
    let url = s.url("/orchestrator/default?action=deploy");
    // Eight deploys at once: exactly one is accepted; for the seven others
    // the instance is (or will be, once the accepted one has run) deployed,
    // so deploy does not apply to it (the queue-full 409 is in
    // tests/operations.rs, where an operation can be made to last).
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (c, url) = (c.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            call(&c, Method::POST, &url, &mcn("t1"), "").await
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let accepted: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status == 200 || a.status == 202)
        .collect();
    let codes: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    assert_eq!(accepted.len(), 1, "{codes:?}");
    for a in answers
        .iter()
        .filter(|a| a.status != 200 && a.status != 202)
    {
        assert_eq!(a.status, 400, "{codes:?}: {}", a.body);
        assert!(
            a.body
                .contains("action 'deploy' does not apply to an instance that is deployed"),
            "{}",
            a.body
        );
    }
    let done = wait_for(
        &c,
        &s.url("/orchestrator/default"),
        &mcn("t1"),
        Duration::from_secs(120),
        |a| a.attribute("occi.so.operation").is_none(),
    )
    .await;
    assert_eq!(
        done.attribute("occi.mcn.stack.state").as_deref(),
        Some("CREATE_COMPLETE"),
        "{}",
        done.body
    );
    assert_eq!(done.attribute("sample.greeting").as_deref(), Some("hello"));
    assert!(done.attribute("occi.so.error").is_none(), "{}", done.body);
    // One stack in Heat for the one deploy.
    let stack_id = done.attribute("occi.mcn.stack.id").unwrap();
    assert!(heat_stack_status(&heat, &stack_id).await.is_some());
    assert_eq!(
        call(
            &c,
            Method::DELETE,
            &s.url("/orchestrator/default"),
            &mcn("t1"),
            ""
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn content_under_the_wrong_type_is_refused_and_changes_nothing() {
    let s = start(&[]);
    let c = client();
    let url = s.url("/orchestrator/default");
    let cat = (
        "Category",
        "orchestrator; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"",
    );
    // OCCI headers under text/html: 415 naming the headers and the type.
    let a = call(
        &c,
        Method::PUT,
        &url,
        &with(mcn("t1"), &[cat, ("Content-Type", "text/html")]),
        "",
    )
    .await;
    assert_eq!(a.status, 415, "{}", a.body);
    assert!(
        a.body
            .contains("OCCI headers (Category) under Content-Type 'text/html'"),
        "{}",
        a.body
    );
    // OCCI headers on a JSON request without a body: 400.
    let a = call(
        &c,
        Method::PUT,
        &url,
        &with(mcn("t1"), &[cat, ("Content-Type", "application/json")]),
        "",
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        a.body
            .contains("its OCCI headers (Category) would be ignored"),
        "{}",
        a.body
    );
    // A JSON body sent as text/occi: 400 naming the body.
    let a = call(
        &c,
        Method::PUT,
        &url,
        &with(mcn("t1"), &[cat, ("Content-Type", "text/occi")]),
        r#"{"kind": "http://schemas.mobile-cloud-networking.eu/occi/service#orchestrator"}"#,
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        a.body.contains("its body (79 bytes) would be ignored"),
        "{}",
        a.body
    );
    // None of them created anything.
    let g = call(&c, Method::GET, &url, &mcn("t1"), "").await;
    assert_eq!(g.status, 404, "{}", g.body);
}

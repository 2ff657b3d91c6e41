//! A remote plugin: a second occi-so on another loopback port, registered
//! under a kind of the first, driven through the first for the whole MCN
//! lifecycle (init, deploy, update, state relayed, dispose), with the
//! caller's token and tenant passed on. Needs a real Heat (the second
//! server's stacks).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;
mod plugin_support;

use std::time::Duration;

use common::*;
use plugin_support::*;
use reqwest::Method;
use serde_json::json;

const RSAMPLE: &str = "rsample; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/sm#\"";

#[tokio::test]
async fn a_second_occi_so_serves_a_kind_of_the_first() {
    let Some(heat) = require_heat() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The remote accepts only the caller's own token: it must be passed on.
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "tok-t1 t1\ntok-t2 t2\n").unwrap();
    let mut remote_args = heat_args(&heat);
    remote_args.extend([
        "--auth".into(),
        "static".into(),
        "--token-file".into(),
        tokens.display().to_string(),
    ]);
    let remote = start_with(remote_args);
    let mut args = heat_args(&heat);
    args.extend([
        "--admin-token-file".into(),
        admin_token_file(dir.path()).display().to_string(),
    ]);
    let s = start_with(args);
    let c = client();

    // Registration imports the remote kind's attributes and actions.
    let body = json!({ "remote": {
        "url": remote.base,
        "kind": { "term": "rsample", "title": "Remote sample" },
        "token": "tok-t1",
        "tenant": "t1",
    } });
    let a = admin(&s, Method::POST, "/admin/plugins", Some(&body)).await;
    assert_eq!(a.status, 201, "{a:?}");
    let q = query(&c, &s).await;
    let kind = kind_line(&q, "rsample").expect("registered kind in /-/");
    assert!(
        kind.contains("sample.greeting") && kind.contains("#rotate"),
        "{kind}"
    );

    let t1 = vec![("X-Auth-Token", "tok-t1"), ("X-Tenant-Name", "t1")];
    let t2 = vec![("X-Auth-Token", "tok-t2"), ("X-Tenant-Name", "t2")];

    // The remote's refusal is relayed with its status and message.
    let mut bad = t1.clone();
    bad.push(("Category", RSAMPLE));
    bad.push(("X-OCCI-Attribute", "sample.length=200"));
    let a = call(&c, Method::PUT, &s.url("/rsample/bad"), &bad, "").await;
    assert_eq!(a.status, 400, "{a:?}");
    assert!(
        a.body.contains("sample.length") && a.body.contains("maximum"),
        "{}",
        a.body
    );
    assert_eq!(
        call(&c, Method::GET, &s.url("/rsample/bad"), &t1, "")
            .await
            .status,
        404
    );

    // init
    let mut create = t1.clone();
    create.push(("Category", RSAMPLE));
    create.push(("X-OCCI-Attribute", "sample.greeting=\"hi\""));
    let a = call(&c, Method::PUT, &s.url("/rsample/r1"), &create, "").await;
    assert_eq!(a.status, 201, "{a:?}");
    // The remote holds it for the same tenant only.
    let listed = call(&c, Method::GET, &remote.url("/orchestrator/"), &t1, "").await;
    let remote_path: String = listed
        .body
        .lines()
        .find_map(|l| l.strip_prefix("X-OCCI-Location: "))
        .map(|u| u.trim().trim_start_matches(&remote.base).to_string())
        .expect("one remote instance");
    let other = call(&c, Method::GET, &remote.url("/orchestrator/"), &t2, "").await;
    assert!(!other.body.contains("X-OCCI-Location"), "{other:?}");

    // deploy: answered at once, followed until the remote stack is complete.
    let a = call(
        &c,
        Method::POST,
        &s.url("/rsample/r1?action=deploy"),
        &t1,
        "",
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let a = wait_for(
        &c,
        &s.url("/rsample/r1"),
        &t1,
        Duration::from_secs(120),
        |a| a.attribute("occi.so.phase").as_deref() == Some("deployed"),
    )
    .await;
    assert_eq!(
        a.attribute("occi.mcn.stack.state").as_deref(),
        Some("CREATE_COMPLETE"),
        "{a:?}"
    );
    let endpoint = a
        .attribute("mcn.endpoint.sample")
        .expect("stack output relayed");
    assert!(endpoint.starts_with("http://sample-"), "{endpoint}");
    // The state is the remote's.
    let r = call(&c, Method::GET, &remote.url(&remote_path), &t1, "").await;
    assert_eq!(
        r.attribute("occi.mcn.stack.id"),
        a.attribute("occi.mcn.stack.id")
    );
    assert_eq!(r.attribute("mcn.endpoint.sample"), Some(endpoint.clone()));
    assert!(
        a.actions().contains(&"provision".to_string()),
        "{:?}",
        a.actions()
    );

    // update: forwarded, followed until the remote stack is updated.
    let mut up = t1.clone();
    up.push(("X-OCCI-Attribute", "mcn.endpoint.maas=\"160.85.4.50\""));
    let a = call(&c, Method::POST, &s.url("/rsample/r1"), &up, "").await;
    assert_eq!(a.status, 200, "{a:?}");
    let a = wait_for(
        &c,
        &s.url("/rsample/r1"),
        &t1,
        Duration::from_secs(120),
        |a| {
            a.attribute("occi.so.operation").is_none()
                && a.attribute("mcn.sample.monitoring").as_deref() == Some("160.85.4.50")
        },
    )
    .await;
    assert_eq!(
        a.attribute("occi.mcn.stack.state").as_deref(),
        Some("UPDATE_COMPLETE"),
        "{a:?}"
    );
    assert_eq!(a.attribute("occi.so.error"), None, "{a:?}");

    // Another tenant cannot see it here either.
    assert_eq!(
        call(&c, Method::GET, &s.url("/rsample/r1"), &t2, "")
            .await
            .status,
        404
    );

    // dispose: the remote instance and its stack are gone.
    let a = call(&c, Method::DELETE, &s.url("/rsample/r1"), &t1, "").await;
    assert!(a.status == 200 || a.status == 204, "{a:?}");
    assert_eq!(
        call(&c, Method::GET, &remote.url(&remote_path), &t1, "")
            .await
            .status,
        404
    );
    assert_eq!(
        call(&c, Method::GET, &s.url("/rsample/r1"), &t1, "")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn an_unreachable_remote_is_a_bad_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_with(vec![
        "--admin-token-file".into(),
        admin_token_file(dir.path()).display().to_string(),
    ]);
    let c = client();
    // A port nothing listens on: bind one, then close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let body = json!({ "remote": { "url": format!("http://127.0.0.1:{port}"), "kind": { "term": "gone" } } });
    let a = admin(&s, Method::POST, "/admin/plugins", Some(&body)).await;
    assert_eq!(a.status, 502, "{a:?}");
    assert!(a.body.contains("cannot connect"), "{}", a.body);
    let body = json!({ "remote": { "url": "ftp://127.0.0.1/", "kind": { "term": "gone" } } });
    let a = admin(&s, Method::POST, "/admin/plugins", Some(&body)).await;
    assert_eq!(a.status, 400, "{a:?}");
    assert!(kind_line(&query(&c, &s).await, "gone").is_none());
}

#[tokio::test]
async fn a_single_instance_remote_hosts_one_instance() {
    // No stacks here: design and dispose only, so no Heat is needed.
    let dir = tempfile::tempdir().unwrap();
    let remote = start(&[]);
    let s = start_with(vec![
        "--admin-token-file".into(),
        admin_token_file(dir.path()).display().to_string(),
    ]);
    let c = client();
    let body = json!({ "remote": { "url": remote.base, "kind": { "term": "classic" }, "mode": "single" } });
    let a = admin(&s, Method::POST, "/admin/plugins", Some(&body)).await;
    assert_eq!(a.status, 201, "{a:?}");
    let cat = "classic; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/sm#\"";
    let mut create = vec![
        ("X-Auth-Token", "secret-caller-token"),
        ("X-Tenant-Name", "t1"),
    ];
    create.push(("Category", cat));
    let a = call(&c, Method::PUT, &s.url("/classic/a"), &create, "").await;
    assert_eq!(a.status, 201, "{a:?}");
    // The remote's one instance is /orchestrator/default.
    let r = call(
        &c,
        Method::GET,
        &remote.url("/orchestrator/default"),
        &mcn("t1"),
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    // A second one is refused: the endpoint is taken.
    let mut other = vec![("X-Auth-Token", "x"), ("X-Tenant-Name", "t1")];
    other.push(("Category", cat));
    let a = call(&c, Method::PUT, &s.url("/classic/b"), &other, "").await;
    assert_eq!(a.status, 409, "{a:?}");
    assert!(a.body.contains("single instance"), "{}", a.body);
    // Dispose frees it.
    let a = call(&c, Method::DELETE, &s.url("/classic/a"), &mcn("t1"), "").await;
    assert!(a.status.is_success(), "{a:?}");
    let r = call(
        &c,
        Method::GET,
        &remote.url("/orchestrator/default"),
        &mcn("t1"),
        "",
    )
    .await;
    assert_eq!(r.status, 404, "{r:?}");
    let a = call(&c, Method::PUT, &s.url("/classic/b"), &other, "").await;
    assert_eq!(a.status, 201, "{a:?}");
    // The caller's token went to the remote, never to a log.
    assert!(!s.log().contains("secret-caller-token"));
}

//! A crash at any point loses at most the in-flight request: SIGKILL in
//! the middle of a deploy on a real Heat, restart, and the instance and
//! its stack id are still there, the stack's state is followed until it
//! settles and the deploy completes with it (reconcile, not "interrupted").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;

#[tokio::test]
async fn sigkill_mid_deploy_keeps_the_instance_and_its_stack() {
    let Some(heat) = require_heat() else {
        return;
    };
    let mut s = start_with(heat_args(&heat));
    let c = client();
    let url = s.url("/orchestrator/default");
    let mut h = mcn("crash");
    h.push((
        "Category",
        "orchestrator; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"",
    ));
    h.push(("X-OCCI-Attribute", "sample.greeting=\"survivor\""));
    assert_eq!(call(&c, Method::PUT, &url, &h, "").await.status, 201);
    let a = call(
        &c,
        Method::POST,
        &format!("{url}?action=deploy"),
        &mcn("crash"),
        "",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    // Kill as soon as the stack id is journaled, while deploy still runs.
    let during = wait_for(&c, &url, &mcn("crash"), Duration::from_secs(60), |g| {
        g.attribute("occi.mcn.stack.id")
            .is_some_and(|id| id != "N/A")
    })
    .await;
    let stack_id = during.attribute("occi.mcn.stack.id").unwrap();
    assert_eq!(
        during.attribute("occi.so.operation").as_deref(),
        Some("deploy"),
        "{}",
        during.body
    );
    s.kill();

    let s2 = s.restart();
    let url = s2.url("/orchestrator/default");
    let g = call(&c, Method::GET, &url, &mcn("crash"), "").await;
    assert_eq!(g.status, 200, "the instance survived: {}", s2.log());
    assert_eq!(g.attribute("occi.mcn.stack.id"), Some(stack_id.clone()));
    assert_eq!(g.attribute("sample.greeting").as_deref(), Some("survivor"));
    // The deploy left in flight is reconciled from Heat, not marked
    // "interrupted": the stack is followed until it settles and the
    // operation completes with it.
    let g = wait_for(&c, &url, &mcn("crash"), Duration::from_secs(120), |g| {
        g.attribute("occi.so.operation").is_none()
    })
    .await;
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("CREATE_COMPLETE"),
        "{}",
        g.body
    );
    assert!(g.attribute("occi.so.error").is_none(), "{}", g.body);
    assert!(g.attribute("mcn.endpoint.sample").is_some(), "{}", g.body);
    assert_eq!(g.attribute("occi.mcn.stack.id"), Some(stack_id));
    assert!(
        !g.actions().contains(&"deploy".to_string()),
        "deployed: {:?}",
        g.actions()
    );
    assert_eq!(
        call(&c, Method::DELETE, &url, &mcn("crash"), "")
            .await
            .status,
        200
    );
}

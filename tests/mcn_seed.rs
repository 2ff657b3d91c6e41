//! The MCN service-orchestrator contract, driven by the seed document's
//! own curl commands (the IMSSO guide's, carried in the tree by the
//! testkit: `testkit/seeds/imsso-guide-requests.txt`), replayed verbatim
//! against the real binary and a real Heat; then the rest of the lifecycle
//! (provision, custom action, renderings, many instances).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;

fn get_as(accept: &'static str) -> Vec<(&'static str, &'static str)> {
    let mut h = mcn("seed");
    h.push(("Accept", accept));
    h
}

async fn the_seed_curl_sequence_works_verbatim(backend: Backend) {
    let probe = backend.probe();
    let dir = tempfile::tempdir().unwrap();
    let s = start_with(backend_args(&backend, dir.path()));
    let c = client();
    let cmds = seed::imsso_requests("test-token", "seed");
    let instance = "/orchestrator/default";
    let url = s.url(instance);

    // 1. init: 201 + absolute Location.
    let a = seed::replay(&c, &s, &cmds[0]).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.header("location"), url);
    assert_eq!(a.body.trim(), format!("X-OCCI-Location: {url}"));
    for accept in ["text/occi", "text/plain", "application/occi+json"] {
        let g = call(&c, Method::GET, &url, &get_as(accept), "").await;
        assert_eq!(g.status, 200);
        assert_eq!(g.header("content-type"), accept);
        if accept == "application/occi+json" {
            let j: serde_json::Value = serde_json::from_str(&g.body).unwrap();
            assert_eq!(
                j["kind"],
                "http://schemas.mobile-cloud-networking.eu/occi/service#orchestrator"
            );
            assert_eq!(j["attributes"]["occi.mcn.stack.state"], "uninitialized");
            assert_eq!(j["attributes"]["occi.mcn.stack.id"], "N/A");
            assert_eq!(j["id"], "default");
            assert_eq!(
                j["actions"],
                serde_json::json!([
                    "http://schemas.mobile-cloud-networking.eu/occi/service#deploy"
                ])
            );
        } else {
            assert_eq!(g.attribute("occi.core.id").as_deref(), Some("default"));
            assert_eq!(
                g.attribute("occi.mcn.stack.state").as_deref(),
                Some("uninitialized")
            );
            assert_eq!(g.attribute("occi.mcn.stack.id").as_deref(), Some("N/A"));
            assert_eq!(g.actions(), ["deploy"]);
        }
    }

    // 2. deploy: answered at once, the operation shows as running.
    let a = seed::replay(&c, &s, &cmds[1]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.attribute("occi.so.operation").as_deref(), Some("deploy"));
    // While it runs, the actions offered are those that may wait behind it.
    let offered = a.actions();
    assert!(
        offered.contains(&"provision".to_string()) && !offered.contains(&"deploy".to_string()),
        "{offered:?}"
    );
    assert!(
        a.header("operation-location").contains("/operation/"),
        "{a:?}"
    );
    let g = backend.succeeded(&c, &url, &mcn("seed")).await;
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("CREATE_COMPLETE"),
        "{}",
        g.body
    );
    let stack_id = g.attribute("occi.mcn.stack.id").unwrap();
    assert_eq!(stack_id.len(), 36, "a Heat stack id: {stack_id}");
    let list = probe.held(&s, "seed", instance).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(
        (list[0].id.as_str(), list[0].status.as_str()),
        (stack_id.as_str(), "CREATE_COMPLETE")
    );
    let endpoint = g
        .attribute("mcn.endpoint.sample")
        .expect("stack output rendered");
    assert!(endpoint.starts_with("http://sample-"), "{endpoint}");
    assert!(g
        .attribute("mcn.sample.greeting")
        .unwrap()
        .starts_with("hello "));
    assert_eq!(g.attribute("occi.so.phase").as_deref(), Some("deployed"));
    assert_eq!(g.actions(), ["provision", "rotate", "notify"]);

    // 3. update with X-OCCI-Attribute: accepted, re-rendered into the stack.
    let g = seed_update(&backend, &c, &s, "seed", &stack_id).await;
    assert_eq!(
        g.attribute("mcn.sample.monitoring").as_deref(),
        Some("160.85.4.50")
    );
    assert_eq!(
        g.attribute("mcn.endpoint.sample"),
        Some(endpoint),
        "the service id is kept"
    );
    let list = probe.held(&s, "seed", instance).await;
    assert_eq!(list[0].id, stack_id);
    assert_eq!(list[0].status, "UPDATE_COMPLETE");
    assert_eq!(
        list[0].parameter("maas_endpoint"),
        "160.85.4.50",
        "{}",
        list[0]
    );

    // 4. delete: the stack is deleted and the instance gone.
    let a = seed::replay(&c, &s, &cmds[3]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        call(&c, Method::GET, &url, &mcn("seed"), "").await.status,
        404
    );
    assert_eq!(probe.stacks(&s, "seed", instance).await, None);
    assert!(
        probe.gone(&s, "seed", instance, &[stack_id]).await,
        "the stack is deleted"
    );
}
on_both_backends!(the_seed_curl_sequence_works_verbatim);

#[tokio::test]
async fn provision_custom_actions_and_many_instances_per_tenant() {
    let Some(heat) = require_heat() else {
        return;
    };
    let s = start_with(heat_args(&heat));
    let c = client();
    let create = {
        let mut h = mcn("many");
        h.push((
            "Category",
            "sample; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/sm#\"",
        ));
        h.push((
            "X-OCCI-Attribute",
            "sample.length=\"12\", sample.greeting=\"hi\"",
        ));
        h
    };
    let mut locations = Vec::new();
    for _ in 0..3 {
        let a = call(&c, Method::POST, &s.url("/sample/"), &create, "").await;
        assert_eq!(a.status, 201, "{}", a.body);
        locations.push(a.header("location"));
    }
    let list = call(&c, Method::GET, &s.url("/sample/"), &mcn("many"), "").await;
    assert_eq!(list.body.lines().count(), 3, "{}", list.body);
    // Deploy all three with one collection action, then provision one.
    let a = call(
        &c,
        Method::POST,
        &s.url("/sample/?action=deploy"),
        &mcn("many"),
        "",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    for l in &locations {
        let g = wait_for(&c, l, &mcn("many"), Duration::from_secs(120), |g| {
            g.attribute("occi.so.phase").as_deref() == Some("deployed")
                && g.attribute("occi.so.operation").is_none()
        })
        .await;
        let id = g.attribute("mcn.endpoint.sample").unwrap();
        assert_eq!(
            id.len(),
            "http://sample-.service.local:8080/".len() + 12,
            "{id}"
        );
    }
    let first = &locations[0];
    let a = call(
        &c,
        Method::POST,
        &format!("{first}?action=provision"),
        &mcn("many"),
        "",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = wait_for(&c, first, &mcn("many"), Duration::from_secs(120), |g| {
        g.attribute("occi.so.phase").as_deref() == Some("provisioned")
    })
    .await;
    assert!(g.body.contains("mcn.sample.configuration="), "{}", g.body);
    let before = g.attribute("mcn.endpoint.sample").unwrap();
    // The custom action with a parameter.
    let mut r = mcn("many");
    r.push(("Category", "rotate; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/sm/sample/action#\"; class=\"action\""));
    r.push(("X-OCCI-Attribute", "sample.salt=\"one\""));
    let a = call(&c, Method::POST, &format!("{first}?action=rotate"), &r, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = wait_for(&c, first, &mcn("many"), Duration::from_secs(120), |g| {
        g.attribute("occi.so.operation").is_none()
    })
    .await;
    assert_ne!(
        g.attribute("mcn.endpoint.sample").unwrap(),
        before,
        "a new service id"
    );
    // Attribute filter on the collection.
    let mut f = mcn("many");
    f.push(("X-OCCI-Attribute", "occi.so.phase=\"provisioned\""));
    let only = call(&c, Method::GET, &s.url("/sample/"), &f, "").await;
    assert_eq!(only.body.trim(), format!("X-OCCI-Location: {first}"));
    // JSON listing: full resources.
    let mut j = mcn("many");
    j.push(("Accept", "application/occi+json"));
    let doc: serde_json::Value =
        serde_json::from_str(&call(&c, Method::GET, &s.url("/sample/"), &j, "").await.body)
            .unwrap();
    assert_eq!(doc["resources"].as_array().unwrap().len(), 3);
    // Dispose them all.
    let a = call(&c, Method::DELETE, &s.url("/sample/"), &mcn("many"), "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        call(&c, Method::GET, &s.url("/sample/"), &mcn("many"), "")
            .await
            .body,
        ""
    );
}

#[tokio::test]
async fn a_dispose_longer_than_the_wait_answers_202_and_finishes() {
    let Some(heat) = require_heat() else {
        return;
    };
    let mut args = heat_args(&heat);
    args.extend(["--dispose-wait".into(), "50ms".into()]);
    let s = start_with(args);
    let c = client();
    let url = s.url("/orchestrator/default");
    let mut h = mcn("slow");
    h.push((
        "Category",
        "orchestrator; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"",
    ));
    assert_eq!(call(&c, Method::PUT, &url, &h, "").await.status, 201);
    assert_eq!(
        call(
            &c,
            Method::POST,
            &format!("{url}?action=deploy"),
            &mcn("slow"),
            ""
        )
        .await
        .status,
        200
    );
    let g = wait_for(&c, &url, &mcn("slow"), Duration::from_secs(120), |g| {
        g.attribute("occi.so.operation").is_none()
    })
    .await;
    let stack_id = g.attribute("occi.mcn.stack.id").unwrap();
    // Heat takes about a second to delete: longer than the 50 ms wait.
    let a = call(&c, Method::DELETE, &url, &mcn("slow"), "").await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert!(a.body.contains("goes on in the background"), "{}", a.body);
    let during = call(&c, Method::GET, &url, &mcn("slow"), "").await;
    if during.status == 200 {
        assert_eq!(
            during.attribute("occi.so.operation").as_deref(),
            Some("dispose")
        );
        assert!(during.actions().is_empty(), "{:?}", during.actions());
    }
    wait_for(&c, &url, &mcn("slow"), Duration::from_secs(120), |g| {
        g.status == 404
    })
    .await;
    let heat_state = heat_stack_status(&heat, &stack_id).await;
    assert!(
        heat_state.is_none() || heat_state.as_deref() == Some("DELETE_COMPLETE"),
        "{heat_state:?}"
    );
}

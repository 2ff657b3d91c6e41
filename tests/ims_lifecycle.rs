//! The IMS service orchestrator through the OCCI API of the real binary:
//! the IMSSO user guide's curl sequence (`shared/seeds/002_*.txt`) replayed
//! verbatim against `/orchestrator/default`, then scaling, provisioning and
//! the choice of topology on the `/ims/` collection, on a real OpenStack
//! Heat (`--backend openstack --heat-url`, Nova/Neutron stubbed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;
mod ims_support;

use std::time::Duration;

use common::*;
use ims_support::{replay, seed};
use reqwest::Method;
use serde_json::Value;

const SM: &str = "http://schemas.mobile-cloud-networking.eu/occi/sm#";

/// `serve` arguments for the local test Heat: a config file whose
/// `openstack:` section is `OpenStackConfig::local_heat` (Nova, Neutron...
/// mapped to `OS::Heat::None`, as that Heat has no such services).
fn local_heat_args(heat: &str, dir: &std::path::Path) -> Vec<String> {
    let config = serde_json::json!({
        "backend": "openstack",
        "openstack": occi_so_backend::OpenStackConfig::local_heat(heat),
    });
    let path = dir.join("occi-so-local-heat.yaml");
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    vec!["--config".into(), path.display().to_string()]
}

/// Waits until no operation runs on the instance; fails on an operation error.
async fn settled(c: &reqwest::Client, url: &str, tenant: &'static str) -> Answer {
    let g = wait_for(c, url, &mcn(tenant), Duration::from_secs(300), |g| {
        g.attribute("occi.so.operation").is_none()
    })
    .await;
    assert!(g.attribute("occi.so.error").is_none(), "{}", g.body);
    g
}

/// Waits until the instance is gone (its dispose finished).
async fn gone(c: &reqwest::Client, url: &str, tenant: &'static str) {
    wait_for(c, url, &mcn(tenant), Duration::from_secs(300), |g| {
        g.status == 404
    })
    .await;
}

/// Heat's own view of a stack (`GET /stacks/{id}`, redirect followed).
async fn heat_stack(heat: &str, id: &str) -> Option<Value> {
    let r = client()
        .get(format!("{heat}/stacks/{id}"))
        .header("X-Auth-Token", "test-token")
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    let body: Value = r.json().await.ok()?;
    Some(body["stack"].clone())
}

fn heat_parameter(stack: &Value, name: &str) -> String {
    stack["parameters"][name]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_imsso_seed_sequence_scaling_and_provision_on_heat() {
    let Some(heat) = heat_url("the_imsso_seed_sequence_scaling_and_provision_on_heat") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut args = local_heat_args(&heat, dir.path());
    args.extend(["--default-service".to_string(), "ims".to_string()]);
    let s = Server::start_with(args);
    let c = client();
    let cmds = seed("test-token", "imsso");
    assert_eq!(cmds.len(), 4, "init, deploy, update, delete");
    let url = s.url("/orchestrator/default");

    // 1. init (PUT, verbatim): the IMS SO, with its defaults.
    let a = replay(&c, &s, &cmds[0]).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.header("location"), url);
    let g = call(&c, Method::GET, &url, &mcn("imsso"), "").await;
    assert_eq!(g.attribute("mcn.topology.type").as_deref(), Some("openims"));
    assert_eq!(g.attribute("ims.size.cscfs").as_deref(), Some("1"));
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("uninitialized")
    );
    assert_eq!(g.actions(), ["deploy"]);

    // 2. deploy (verbatim): one stack with the OpenIMS units.
    let a = replay(&c, &s, &cmds[1]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = settled(&c, &url, "imsso").await;
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("CREATE_COMPLETE"),
        "{}",
        g.body
    );
    assert_eq!(
        g.attribute("mcn.ims.hosts").as_deref(),
        Some("cscfs-1 db-1 hss-1 slf-1 dns-1")
    );
    assert_eq!(g.attribute("occi.so.phase").as_deref(), Some("deployed"));
    let id = g.attribute("occi.mcn.stack.id").unwrap();
    let stack = heat_stack(&heat, &id).await.expect("Heat has the stack");
    assert_eq!(stack["stack_status"], "CREATE_COMPLETE");
    assert_eq!(heat_parameter(&stack, "image_hss"), "ims-5g-hss-r198");
    assert_eq!(heat_parameter(&stack, "maas_endpoint"), "");

    // 3. update (verbatim): mcn.endpoint.maas reaches the nodes' configuration.
    let a = replay(&c, &s, &cmds[2]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.attribute("mcn.endpoint.maas").as_deref(),
        Some("160.85.4.50")
    );
    let g = settled(&c, &url, "imsso").await;
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("UPDATE_COMPLETE"),
        "{}",
        g.body
    );
    assert_eq!(
        g.attribute("occi.mcn.stack.id"),
        Some(id.clone()),
        "same stack"
    );
    let stack = heat_stack(&heat, &id).await.unwrap();
    assert_eq!(heat_parameter(&stack, "maas_endpoint"), "160.85.4.50");

    // A size outside the topology's bounds: 400 naming the attribute and
    // its bounds, and nothing starts.
    let mut h = mcn("imsso");
    h.push(("X-OCCI-Attribute", "ims.size.cscfs=9"));
    let a = call(&c, Method::POST, &url, &h, "").await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("ims.size.cscfs"), "{}", a.body);
    assert!(a.body.contains("5"), "the bound is named: {}", a.body);
    let g = call(&c, Method::GET, &url, &mcn("imsso"), "").await;
    assert!(g.attribute("occi.so.operation").is_none());
    assert_eq!(g.attribute("ims.size.cscfs").as_deref(), Some("1"));

    // Scale cscfs 1 -> 3: one POST, one stack update that adds the units.
    let mut h = mcn("imsso");
    h.push(("X-OCCI-Attribute", "ims.size.cscfs=3"));
    let a = call(&c, Method::POST, &url, &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.attribute("occi.so.operation").as_deref(), Some("update"));
    let g = settled(&c, &url, "imsso").await;
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("UPDATE_COMPLETE")
    );
    assert_eq!(
        g.attribute("mcn.ims.hosts").as_deref(),
        Some("cscfs-1 cscfs-2 cscfs-3 db-1 hss-1 slf-1 dns-1")
    );
    assert_eq!(g.attribute("ims.size.cscfs").as_deref(), Some("3"));

    // provision: the endpoints pass again and the services start.
    let mut h = mcn("imsso");
    h.push((
        "Category",
        "provision; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"",
    ));
    let a = call(&c, Method::POST, &format!("{url}?action=provision"), &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = settled(&c, &url, "imsso").await;
    assert_eq!(g.attribute("occi.so.phase").as_deref(), Some("provisioned"));
    let stack = heat_stack(&heat, &id).await.unwrap();
    assert_eq!(heat_parameter(&stack, "lifecycle"), "provisioned");
    assert_eq!(heat_parameter(&stack, "maas_endpoint"), "160.85.4.50");

    // 4. delete (verbatim): the stack goes, then the instance (200, or 202
    // when Heat takes longer than --dispose-wait).
    let a = replay(&c, &s, &cmds[3]).await;
    assert!(
        a.status == 200 || a.status == 202,
        "{} {}",
        a.status,
        a.body
    );
    gone(&c, &url, "imsso").await;
    if let Some(stack) = heat_stack(&heat, &id).await {
        assert_eq!(stack["stack_status"], "DELETE_COMPLETE");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clearwater_ims_on_the_ims_collection_on_heat() {
    let Some(heat) = heat_url("a_clearwater_ims_on_the_ims_collection_on_heat") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(local_heat_args(&heat, dir.path()));
    let c = client();
    let category = format!("ims; scheme=\"{SM}\"; class=\"kind\"");
    let mut h = mcn("cw");
    h.push(("Content-Type", "text/occi"));
    h.push(("Category", &category));
    h.push((
        "X-OCCI-Attribute",
        "mcn.topology.type=\"clearwater\", ims.size.sprout=2, ims.size.ralf=0, ims.clearwater.signup_key=\"s3cr3t-code\"",
    ));
    let a = call(&c, Method::POST, &s.url("/ims/"), &h, "").await;
    assert_eq!(a.status, 201, "{}", a.body);
    let url = a.header("location");
    assert!(url.starts_with(&s.url("/ims/")), "{url}");
    let g = call(&c, Method::GET, &url, &mcn("cw"), "").await;
    assert_eq!(
        g.attribute("mcn.topology.type").as_deref(),
        Some("clearwater")
    );
    assert!(
        g.attribute("ims.clearwater.signup_key").is_none(),
        "secrets are never rendered"
    );
    assert!(!g.body.contains("s3cr3t-code"));

    // Topology is chosen at creation.
    let mut h = mcn("cw");
    h.push(("X-OCCI-Attribute", "mcn.topology.type=\"openims\""));
    let a = call(&c, Method::POST, &url, &h, "").await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(a.body.contains("mcn.topology.type"), "{}", a.body);

    // A Clearwater size on it is fine; an OpenIMS one is not.
    let mut h = mcn("cw");
    h.push(("X-OCCI-Attribute", "ims.size.cscfs=2"));
    let a = call(&c, Method::POST, &url, &h, "").await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        a.body.contains("clearwater has no service instance"),
        "{}",
        a.body
    );

    let mut h = mcn("cw");
    h.push((
        "Category",
        "deploy; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"",
    ));
    let a = call(&c, Method::POST, &format!("{url}?action=deploy"), &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = settled(&c, &url, "cw").await;
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("CREATE_COMPLETE"),
        "{}",
        g.body
    );
    assert_eq!(
        g.attribute("mcn.ims.hosts").as_deref(),
        Some("bono-1 sprout-1 sprout-2 homer-1 homestead-1 ellis-1 dns-1")
    );
    let id = g.attribute("occi.mcn.stack.id").unwrap();
    let stack = heat_stack(&heat, &id).await.unwrap();
    assert_eq!(
        heat_parameter(&stack, "signup_key"),
        "******",
        "passed hidden"
    );
    assert_eq!(heat_parameter(&stack, "dns_zone"), "example.com");
    assert!(!s.log().contains("s3cr3t-code"), "the secret is not logged");

    let a = call(&c, Method::DELETE, &url, &mcn("cw"), "").await;
    assert!(
        a.status == 200 || a.status == 202,
        "{} {}",
        a.status,
        a.body
    );
    gone(&c, &url, "cw").await;
}

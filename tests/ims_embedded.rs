//! The IMS service orchestrator through the OCCI API of the real binary on
//! the embedded engine (no `--backend`: the default): the IMSSO user
//! guide's curl sequence replayed verbatim against `/orchestrator/default`,
//! the endpoints as real addresses, the update and scale paths as seen in
//! the engine's stacks (`GET /admin/stacks`), a restart that keeps the
//! instance and its stack, provisioning, dispose; and a Clearwater IMS on
//! the `/ims/` collection with its secrets hidden.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;
mod embedded_support;
mod ims_support;

use std::time::Duration;

use common::*;
use embedded_support::*;
use ims_support::*;
use reqwest::Method;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// Waits until no operation runs on the instance; fails on an operation error.
async fn settled(c: &reqwest::Client, url: &str, tenant: &'static str) -> Answer {
    let g = wait_for(c, url, &mcn(tenant), WAIT, |g| {
        g.status == 200 && g.attribute("occi.so.operation").is_none()
    })
    .await;
    assert!(g.attribute("occi.so.error").is_none(), "{}", g.body);
    g
}

/// The instance's one stack on the engine.
async fn ims_stack(s: &Server, tenant: &str, instance: &str) -> Value {
    let (status, doc) = admin_stacks(s, tenant, instance).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["instance"], instance);
    let list = stacks(&doc);
    assert_eq!(list.len(), 1, "one IMS stack: {doc}");
    assert_eq!(list[0]["cloud"], "default");
    list[0].clone()
}

/// Every `mcn.endpoint.<host>` attribute of a host is a floating address
/// from the engine's external pool, and its `.mgmt.private` one a fixed
/// address from the tenant network; the stack's outputs say the same.
fn endpoints_are_real(g: &Answer, stack: &Value, hosts: &[&str]) {
    let mut seen = std::collections::BTreeSet::new();
    for host in hosts {
        let public = g
            .attribute(&format!("mcn.endpoint.{host}"))
            .unwrap_or_else(|| panic!("mcn.endpoint.{host} is an attribute: {}", g.body));
        assert!(is_address_in(&public, "172.24."), "{host}: {public}");
        let private = g
            .attribute(&format!("mcn.endpoint.{host}.mgmt.private"))
            .unwrap_or_else(|| panic!("mcn.endpoint.{host}.mgmt.private: {}", g.body));
        assert!(is_address_in(&private, "10.0."), "{host}: {private}");
        assert_eq!(
            g.attribute(&format!("mcn.endpoint.{host}.mgmt.public")),
            Some(public.clone())
        );
        assert_eq!(
            output(stack, &format!("mcn.endpoint.{host}")),
            Value::String(public.clone()),
            "the attribute is the stack's output"
        );
        assert!(seen.insert(public), "{host}: an address given twice");
        assert!(seen.insert(private), "{host}: an address given twice");
    }
}

fn deploy_header(tenant: &'static str) -> Vec<(&'static str, &'static str)> {
    let mut h = mcn(tenant);
    h.push((
        "Category",
        "deploy; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"",
    ));
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_imsso_seed_sequence_scaling_restart_and_provision_on_the_embedded_engine() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = embedded_args(dir.path(), "");
    args.extend(["--default-service".to_string(), "ims".to_string()]);
    let mut s = Server::start_with(args);
    let c = client();
    let cmds = seed("test-token", "imsso");
    assert_eq!(cmds.len(), 4, "init, deploy, update, delete");
    let url = s.url("/orchestrator/default");
    let instance = "/orchestrator/default";

    // 1. init (PUT, verbatim): the IMS SO; no stack yet.
    let a = replay(&c, &s, &cmds[0]).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let g = call(&c, Method::GET, &url, &mcn("imsso"), "").await;
    assert_eq!(g.attribute("mcn.topology.type").as_deref(), Some("openims"));
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("uninitialized")
    );
    let (status, doc) = admin_stacks(&s, "imsso", instance).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["stacks"], serde_json::json!([]), "{doc}");

    // 2. deploy (verbatim): one stack on the engine, every VM with real
    // addresses.
    let a = replay(&c, &s, &cmds[1]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = settled(&c, &url, "imsso").await;
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("CREATE_COMPLETE"),
        "{}",
        g.body
    );
    assert_eq!(g.attribute("occi.so.phase").as_deref(), Some("deployed"));
    let hosts = ["cscfs-1", "db-1", "hss-1", "slf-1", "dns-1"];
    assert_eq!(
        g.attribute("mcn.ims.hosts").as_deref(),
        Some(hosts.join(" ").as_str())
    );
    let id = g.attribute("occi.mcn.stack.id").unwrap();
    let stack = ims_stack(&s, "imsso", instance).await;
    assert_eq!(stack["id"], id.as_str());
    assert_eq!(stack_status(&stack), "CREATE_COMPLETE");
    assert_eq!(parameter(&stack, "image_hss"), "ims-5g-hss-r198");
    assert_eq!(parameter(&stack, "maas_endpoint"), "");
    assert_eq!(parameter(&stack, "lifecycle"), "deployed");
    assert_eq!(resources_of(&stack, "OS::Nova::Server"), sorted(&hosts));
    assert_eq!(resources_of(&stack, "OS::Neutron::FloatingIP").len(), 5);
    endpoints_are_real(&g, &stack, &hosts);
    let cscfs_address = g.attribute("mcn.endpoint.cscfs-1").unwrap();

    // A restart keeps the instance and its stack (same id, complete, same
    // addresses).
    let exit = s.terminate(Duration::from_secs(20));
    assert!(exit.success(), "{exit:?}");
    assert!(
        std::fs::read_dir(s.state_dir().join("stacks"))
            .map(|d| d.count() > 0)
            .unwrap_or(false),
        "the engine's stacks are kept under <state-dir>/stacks"
    );
    let s = s.restart();
    let url = s.url("/orchestrator/default");
    let g = settled(&c, &url, "imsso").await;
    assert_eq!(g.attribute("occi.mcn.stack.id"), Some(id.clone()));
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("CREATE_COMPLETE"),
        "{}",
        g.body
    );
    assert_eq!(
        g.attribute("mcn.endpoint.cscfs-1"),
        Some(cscfs_address.clone())
    );
    let stack = ims_stack(&s, "imsso", instance).await;
    assert_eq!(stack["id"], id.as_str());
    assert_eq!(stack_status(&stack), "CREATE_COMPLETE");
    assert_eq!(resources_of(&stack, "OS::Nova::Server"), sorted(&hosts));

    // 3. update (verbatim): mcn.endpoint.maas reaches the stack.
    let a = replay(&c, &s, &cmds[2]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = settled(&c, &url, "imsso").await;
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("UPDATE_COMPLETE"),
        "{}",
        g.body
    );
    assert_eq!(g.attribute("occi.mcn.stack.id"), Some(id.clone()));
    assert_eq!(
        g.attribute("mcn.endpoint.maas").as_deref(),
        Some("160.85.4.50")
    );
    let stack = ims_stack(&s, "imsso", instance).await;
    assert_eq!(stack_status(&stack), "UPDATE_COMPLETE");
    assert_eq!(parameter(&stack, "maas_endpoint"), "160.85.4.50");
    assert_eq!(
        g.attribute("mcn.endpoint.cscfs-1"),
        Some(cscfs_address.clone()),
        "an update keeps the VMs' addresses"
    );
    let name = stack["name"].as_str().expect("stack name").to_string();
    let updates = settled_count(&s.log(), "imsso", &name, "UPDATE_COMPLETE");
    assert_eq!(updates, 1, "one update so far (after the restart)");

    // A size outside the bounds: 400 naming the attribute, nothing changes.
    let mut h = mcn("imsso");
    h.push(("X-OCCI-Attribute", "ims.size.cscfs=6"));
    let a = call(&c, Method::POST, &url, &h, "").await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("ims.size.cscfs"), "{}", a.body);
    let g = call(&c, Method::GET, &url, &mcn("imsso"), "").await;
    assert!(g.attribute("occi.so.operation").is_none(), "{}", g.body);
    assert_eq!(g.attribute("ims.size.cscfs").as_deref(), Some("1"));
    let stack = ims_stack(&s, "imsso", instance).await;
    assert_eq!(stack_status(&stack), "UPDATE_COMPLETE");
    assert_eq!(
        settled_count(&s.log(), "imsso", &name, "UPDATE_COMPLETE"),
        updates,
        "no stack update"
    );
    assert_eq!(resources_of(&stack, "OS::Nova::Server"), sorted(&hosts));

    // Scale cscfs 1 -> 3: one POST, one update of the same stack, which
    // then has three cscfs servers, each with its own addresses.
    let mut h = mcn("imsso");
    h.push(("X-OCCI-Attribute", "ims.size.cscfs=3"));
    let a = call(&c, Method::POST, &url, &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.attribute("occi.so.operation").as_deref(), Some("update"));
    let g = settled(&c, &url, "imsso").await;
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("UPDATE_COMPLETE"),
        "{}",
        g.body
    );
    assert_eq!(g.attribute("occi.mcn.stack.id"), Some(id.clone()));
    assert_eq!(g.attribute("ims.size.cscfs").as_deref(), Some("3"));
    let scaled = [
        "cscfs-1", "cscfs-2", "cscfs-3", "db-1", "hss-1", "slf-1", "dns-1",
    ];
    assert_eq!(
        g.attribute("mcn.ims.hosts").as_deref(),
        Some(scaled.join(" ").as_str())
    );
    let stack = ims_stack(&s, "imsso", instance).await;
    assert_eq!(stack["id"], id.as_str());
    assert_eq!(stack_status(&stack), "UPDATE_COMPLETE");
    assert_eq!(
        settled_count(&s.log(), "imsso", &name, "UPDATE_COMPLETE"),
        updates + 1,
        "one stack update for the scale"
    );
    assert_eq!(resources_of(&stack, "OS::Nova::Server"), sorted(&scaled));
    assert_eq!(resources_of(&stack, "OS::Neutron::FloatingIP").len(), 7);
    endpoints_are_real(&g, &stack, &scaled);
    assert_eq!(
        g.attribute("mcn.endpoint.cscfs-1"),
        Some(cscfs_address.clone()),
        "scaling keeps the existing VMs"
    );
    assert_eq!(parameter(&stack, "maas_endpoint"), "160.85.4.50");

    // provision: the nodes' configuration gets the lifecycle and endpoints.
    let mut h = mcn("imsso");
    h.push((
        "Category",
        "provision; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"",
    ));
    let a = call(&c, Method::POST, &format!("{url}?action=provision"), &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = settled(&c, &url, "imsso").await;
    assert_eq!(g.attribute("occi.so.phase").as_deref(), Some("provisioned"));
    let stack = ims_stack(&s, "imsso", instance).await;
    assert_eq!(stack_status(&stack), "UPDATE_COMPLETE");
    assert_eq!(parameter(&stack, "lifecycle"), "provisioned");
    assert_eq!(parameter(&stack, "maas_endpoint"), "160.85.4.50");

    // 4. delete (verbatim): the stack and the instance go.
    let a = replay(&c, &s, &cmds[3]).await;
    assert!(
        a.status == 200 || a.status == 202,
        "{} {}",
        a.status,
        a.body
    );
    wait_for(&c, &url, &mcn("imsso"), WAIT, |g| g.status == 404).await;
    let (status, doc) = admin_stacks(&s, "imsso", instance).await;
    assert_eq!(status, 404, "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clearwater_ims_on_the_ims_collection_on_the_embedded_engine() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(embedded_args(dir.path(), ""));
    let c = client();
    let category = format!("ims; scheme=\"{SM}\"; class=\"kind\"");
    let mut h = mcn("cw");
    h.push(("Content-Type", "text/occi"));
    h.push(("Category", &category));
    h.push((
        "X-OCCI-Attribute",
        "mcn.topology.type=\"clearwater\", ims.size.sprout=2, ims.size.ralf=0, \
         ims.clearwater.signup_key=\"s3cr3t-code\", ims.dns.zone=\"ims.example.net\"",
    ));
    let a = call(&c, Method::POST, &s.url("/ims/"), &h, "").await;
    assert_eq!(a.status, 201, "{}", a.body);
    let url = a.header("location");
    let instance = url
        .strip_prefix(&s.base)
        .expect("a location on this server")
        .to_string();
    assert!(instance.starts_with("/ims/"), "{instance}");

    let a = call(
        &c,
        Method::POST,
        &format!("{url}?action=deploy"),
        &deploy_header("cw"),
        "",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = settled(&c, &url, "cw").await;
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("CREATE_COMPLETE"),
        "{}",
        g.body
    );
    let hosts = [
        "bono-1",
        "sprout-1",
        "sprout-2",
        "homer-1",
        "homestead-1",
        "ellis-1",
        "dns-1",
    ];
    assert_eq!(
        g.attribute("mcn.ims.hosts").as_deref(),
        Some(hosts.join(" ").as_str())
    );
    let (status, doc) = admin_stacks(&s, "cw", &instance).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["kind"].as_str().map(|k| k.ends_with("ims")), Some(true));
    let list = stacks(&doc);
    assert_eq!(list.len(), 1, "{doc}");
    let stack = &list[0];
    assert_eq!(stack_status(stack), "CREATE_COMPLETE");
    assert_eq!(
        stack["id"],
        g.attribute("occi.mcn.stack.id").unwrap().as_str()
    );
    assert_eq!(resources_of(stack, "OS::Nova::Server"), sorted(&hosts));
    endpoints_are_real(&g, stack, &hosts);
    assert_eq!(parameter(stack, "dns_zone"), "ims.example.net");
    // Secrets: hidden parameters for the engine, never rendered or logged.
    assert_eq!(parameter(stack, "signup_key"), "******");
    // No TSIG key given: the stack generates one (never a parameter).
    assert_eq!(parameter(stack, "tsig_key"), "");
    assert_eq!(resources_of(stack, "OS::Heat::RandomString").len(), 1);
    assert!(!doc.to_string().contains("s3cr3t-code"));
    assert!(g.attribute("ims.clearwater.signup_key").is_none());
    assert!(!g.body.contains("s3cr3t-code"));
    assert!(!s.log().contains("s3cr3t-code"), "the secret is not logged");

    let a = call(&c, Method::DELETE, &url, &mcn("cw"), "").await;
    assert!(
        a.status == 200 || a.status == 202,
        "{} {}",
        a.status,
        a.body
    );
    wait_for(&c, &url, &mcn("cw"), WAIT, |g| g.status == 404).await;
    let (status, _) = admin_stacks(&s, "cw", &instance).await;
    assert_eq!(status, 404);
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    v.sort();
    v
}

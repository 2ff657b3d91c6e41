//! The IMS service orchestrator through the OCCI API of the real binary,
//! each scenario run on the embedded engine (the default backend) and on
//! the real local Heat (Nova, Neutron... stubbed), with what the backend
//! holds read through the testkit's probe: the IMSSO user guide's curl
//! sequence replayed verbatim against `/orchestrator/default` with a
//! restart in the middle, a refused size, scaling and provisioning; and a
//! Clearwater IMS on the `/ims/` collection with its secrets hidden.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;

use common::*;
use reqwest::Method;
use serde_json::Value;

/// The engine's address pools (floating, fixed) where servers have
/// addresses: the embedded engine's; the local Heat's servers are stubs
/// without any.
fn pools(backend: &Backend) -> Option<(&'static str, &'static str)> {
    backend.is_embedded().then_some(("172.24.", "10.0."))
}

/// The instance's one stack on the backend.
async fn ims_stack(backend: &Backend, s: &Server, tenant: &str, instance: &str) -> StackView {
    let list = backend.probe().held(s, tenant, instance).await;
    assert_eq!(list.len(), 1, "one IMS stack: {list:?}");
    assert_eq!(list[0].role, "ims");
    assert_eq!(list[0].cloud, "default");
    list[0].clone()
}

/// Every `mcn.endpoint.<host>` attribute of a host is a floating address
/// of the engine's pool, and its `.mgmt.private` one a fixed address of
/// the tenant network, each given once; the stack's outputs say the same.
fn endpoints_are_real(backend: &Backend, g: &Answer, stack: &StackView, hosts: &[&str]) {
    let Some((floating, fixed)) = pools(backend) else {
        return;
    };
    let mut seen = std::collections::BTreeSet::new();
    for host in hosts {
        let public = g
            .attribute(&format!("mcn.endpoint.{host}"))
            .unwrap_or_else(|| panic!("mcn.endpoint.{host} is an attribute: {}", g.body));
        assert!(is_address_in(&public, floating), "{host}: {public}");
        let private = g
            .attribute(&format!("mcn.endpoint.{host}.mgmt.private"))
            .unwrap_or_else(|| panic!("mcn.endpoint.{host}.mgmt.private: {}", g.body));
        assert!(is_address_in(&private, fixed), "{host}: {private}");
        assert_eq!(
            g.attribute(&format!("mcn.endpoint.{host}.mgmt.public")),
            Some(public.clone())
        );
        assert_eq!(
            stack.output(&format!("mcn.endpoint.{host}")),
            Value::String(public.clone()),
            "the attribute is the stack's output"
        );
        assert!(seen.insert(public), "{host}: an address given twice");
        assert!(seen.insert(private), "{host}: an address given twice");
    }
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    v.sort();
    v
}

/// `POST <url>?action=<term>` with the MCN action's Category.
async fn mcn_action(c: &reqwest::Client, url: &str, tenant: &str, term: &str) -> Answer {
    let category = format!("{term}; scheme=\"{MCN}\"");
    let mut h = mcn(tenant);
    h.push(("Category", &category));
    call(c, Method::POST, &format!("{url}?action={term}"), &h, "").await
}

/// A partial update with `X-OCCI-Attribute: attributes`.
async fn update(c: &reqwest::Client, url: &str, tenant: &str, attributes: &str) -> Answer {
    let mut h = mcn(tenant);
    h.push(("X-OCCI-Attribute", attributes));
    call(c, Method::POST, url, &h, "").await
}

async fn the_imsso_seed_sequence(backend: Backend) {
    let probe = backend.probe();
    let tenant = "imsso";
    let dir = tempfile::tempdir().unwrap();
    let mut args = lifecycle_args(&backend, dir.path(), FAST);
    args.extend(["--default-service".to_string(), "ims".to_string()]);
    let mut s = start_with(args);
    let c = client();
    let cmds = seed::imsso_requests("test-token", tenant);
    assert_eq!(cmds.len(), 4, "init, deploy, update, delete");
    let instance = "/orchestrator/default";
    let url = s.url(instance);

    // 1. init (PUT, verbatim): the IMS SO with its defaults; no stack yet.
    let a = seed::replay(&c, &s, &cmds[0]).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.header("location"), url);
    let g = call(&c, Method::GET, &url, &mcn(tenant), "").await;
    assert_eq!(g.attribute("mcn.topology.type").as_deref(), Some("openims"));
    assert_eq!(g.attribute("ims.size.cscfs").as_deref(), Some("1"));
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("uninitialized")
    );
    assert_eq!(g.actions(), ["deploy"]);
    assert_eq!(probe.stacks(&s, tenant, instance).await, Some(vec![]));

    // 2. deploy (verbatim): one stack with the OpenIMS units, every VM
    // with real addresses where the backend gives them.
    let a = seed::replay(&c, &s, &cmds[1]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = backend.succeeded(&c, &url, &mcn(tenant)).await;
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
    let stack = ims_stack(&backend, &s, tenant, instance).await;
    assert_eq!(stack.id, id);
    assert_eq!(stack.status, "CREATE_COMPLETE");
    assert_eq!(stack.parameter("image_hss"), "ims-5g-hss-r198");
    assert_eq!(stack.parameter("maas_endpoint"), "");
    assert_eq!(stack.parameter("lifecycle"), "deployed");
    assert_eq!(stack.resources_of("OS::Nova::Server"), sorted(&hosts));
    assert_eq!(stack.resources_of("OS::Neutron::FloatingIP").len(), 5);
    endpoints_are_real(&backend, &g, &stack, &hosts);
    let cscfs_address = g.attribute("mcn.endpoint.cscfs-1");

    // A restart keeps the instance and its stack (same id, complete, same
    // addresses); the embedded engine keeps its stacks under
    // <state-dir>/stacks.
    let exit = s.terminate(std::time::Duration::from_secs(20));
    assert!(exit.success(), "{exit:?}");
    if backend.is_embedded() {
        let kept = std::fs::read_dir(s.state_dir().join("stacks")).map(|d| d.count());
        assert!(
            kept.as_ref().is_ok_and(|n| *n > 0),
            "the engine's stacks are kept under <state-dir>/stacks: {kept:?}"
        );
    }
    let s = s.restart();
    let url = s.url(instance);
    let g = backend.succeeded(&c, &url, &mcn(tenant)).await;
    assert_eq!(g.attribute("occi.mcn.stack.id"), Some(id.clone()));
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("CREATE_COMPLETE"),
        "{}",
        g.body
    );
    assert_eq!(g.attribute("mcn.endpoint.cscfs-1"), cscfs_address);
    let stack = ims_stack(&backend, &s, tenant, instance).await;
    assert_eq!(stack.id, id);
    assert_eq!(stack.status, "CREATE_COMPLETE");
    assert_eq!(stack.resources_of("OS::Nova::Server"), sorted(&hosts));

    // 3. update (verbatim): mcn.endpoint.maas reaches the stack, in one
    // stack update.
    let updates = probe.updates(&s, tenant, &stack).await;
    let g = seed_update(&backend, &c, &s, tenant, &id).await;
    assert_eq!(
        g.attribute("mcn.endpoint.cscfs-1"),
        cscfs_address,
        "an update keeps the VMs' addresses"
    );
    let stack = ims_stack(&backend, &s, tenant, instance).await;
    assert_eq!(stack.status, "UPDATE_COMPLETE");
    assert_eq!(stack.parameter("maas_endpoint"), "160.85.4.50");
    let updates = updates + 1;
    assert_eq!(
        probe.updates(&s, tenant, &stack).await,
        updates,
        "one update"
    );

    // A size outside the topology's bounds: 400 naming the attribute and
    // its bound; nothing starts, the stack is not touched.
    let a = update(&c, &url, tenant, "ims.size.cscfs=6").await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("ims.size.cscfs"), "{}", a.body);
    assert!(
        a.body.contains("above the maximum 5"),
        "the bound is named: {}",
        a.body
    );
    let g = call(&c, Method::GET, &url, &mcn(tenant), "").await;
    assert_eq!(g.attribute("occi.so.operation"), None, "{}", g.body);
    assert_eq!(g.attribute("ims.size.cscfs").as_deref(), Some("1"));
    let stack = ims_stack(&backend, &s, tenant, instance).await;
    assert_eq!(stack.status, "UPDATE_COMPLETE");
    assert_eq!(
        probe.updates(&s, tenant, &stack).await,
        updates,
        "no update"
    );
    assert_eq!(stack.resources_of("OS::Nova::Server"), sorted(&hosts));

    // Scale cscfs 1 -> 3: one POST, one update of the same stack, which
    // then has three cscfs servers, each with its own addresses.
    let a = update(&c, &url, tenant, "ims.size.cscfs=3").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.attribute("occi.so.operation").as_deref(), Some("update"));
    let g = backend.succeeded(&c, &url, &mcn(tenant)).await;
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
    let stack = ims_stack(&backend, &s, tenant, instance).await;
    assert_eq!(stack.id, id);
    assert_eq!(stack.status, "UPDATE_COMPLETE");
    assert_eq!(
        probe.updates(&s, tenant, &stack).await,
        updates + 1,
        "one stack update for the scale"
    );
    assert_eq!(stack.resources_of("OS::Nova::Server"), sorted(&scaled));
    assert_eq!(stack.resources_of("OS::Neutron::FloatingIP").len(), 7);
    endpoints_are_real(&backend, &g, &stack, &scaled);
    assert_eq!(
        g.attribute("mcn.endpoint.cscfs-1"),
        cscfs_address,
        "scaling keeps the existing VMs"
    );
    assert_eq!(stack.parameter("maas_endpoint"), "160.85.4.50");

    // provision: the nodes' configuration gets the lifecycle and the
    // endpoints again.
    let a = mcn_action(&c, &url, tenant, "provision").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = backend.succeeded(&c, &url, &mcn(tenant)).await;
    assert_eq!(g.attribute("occi.so.phase").as_deref(), Some("provisioned"));
    let stack = ims_stack(&backend, &s, tenant, instance).await;
    assert_eq!(stack.status, "UPDATE_COMPLETE");
    assert_eq!(stack.parameter("lifecycle"), "provisioned");
    assert_eq!(stack.parameter("maas_endpoint"), "160.85.4.50");

    // 4. delete (verbatim): the stack goes, then the instance (200, or 202
    // when the backend takes longer than --dispose-wait).
    let a = seed::replay(&c, &s, &cmds[3]).await;
    assert!(
        a.status == 200 || a.status == 202,
        "{} {}",
        a.status,
        a.body
    );
    wait_for(&c, &url, &mcn(tenant), backend.within(), |g| {
        g.status == 404
    })
    .await;
    assert_eq!(probe.stacks(&s, tenant, instance).await, None);
    assert!(
        probe.gone(&s, tenant, instance, &[id]).await,
        "the stack is deleted"
    );
}
on_both_backends!(the_imsso_seed_sequence);

async fn a_clearwater_ims_on_the_ims_collection(backend: Backend) {
    const SECRET: &str = "s3cr3t-code";
    let probe = backend.probe();
    let tenant = "cw";
    let dir = tempfile::tempdir().unwrap();
    let s = start_with(lifecycle_args(&backend, dir.path(), FAST));
    let c = client();
    let category = format!("ims; scheme=\"{SM}\"; class=\"kind\"");
    let mut h = mcn(tenant);
    h.push(("Content-Type", "text/occi"));
    h.push(("Category", &category));
    let attributes = format!(
        "mcn.topology.type=\"clearwater\", ims.size.sprout=2, ims.size.ralf=0, \
         ims.clearwater.signup_key=\"{SECRET}\""
    );
    h.push(("X-OCCI-Attribute", &attributes));
    let a = call(&c, Method::POST, &s.url("/ims/"), &h, "").await;
    assert_eq!(a.status, 201, "{}", a.body);
    let url = a.header("location");
    let instance = s.path_of(&url);
    assert!(instance.starts_with("/ims/"), "{instance}");
    let g = call(&c, Method::GET, &url, &mcn(tenant), "").await;
    assert_eq!(
        g.attribute("mcn.topology.type").as_deref(),
        Some("clearwater")
    );
    assert_eq!(
        g.attribute("ims.clearwater.signup_key"),
        None,
        "secrets are never rendered"
    );
    assert!(!g.body.contains(SECRET));

    // The topology is chosen at creation.
    let a = update(&c, &url, tenant, "mcn.topology.type=\"openims\"").await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(a.body.contains("mcn.topology.type"), "{}", a.body);

    // An OpenIMS size on it is refused.
    let a = update(&c, &url, tenant, "ims.size.cscfs=2").await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        a.body.contains("clearwater has no service instance"),
        "{}",
        a.body
    );

    // deploy: one stack with the Clearwater units; the secret a hidden
    // parameter; no TSIG key given, so the stack generates one.
    let a = mcn_action(&c, &url, tenant, "deploy").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = backend.succeeded(&c, &url, &mcn(tenant)).await;
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
    let (status, doc) = admin_stacks(&s, tenant, &instance).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(
        doc["kind"].as_str().map(|k| k.ends_with("#ims")),
        Some(true),
        "{doc}"
    );
    assert!(!doc.to_string().contains(SECRET), "{doc}");
    let stack = ims_stack(&backend, &s, tenant, &instance).await;
    assert_eq!(stack.status, "CREATE_COMPLETE");
    let id = g.attribute("occi.mcn.stack.id").unwrap();
    assert_eq!(stack.id, id);
    assert_eq!(stack.resources_of("OS::Nova::Server"), sorted(&hosts));
    endpoints_are_real(&backend, &g, &stack, &hosts);
    assert_eq!(stack.parameter("dns_zone"), "example.com", "the default");
    assert_eq!(stack.parameter("signup_key"), "******", "passed hidden");
    assert_eq!(stack.parameter("tsig_key"), "", "never a parameter");
    assert_eq!(stack.resources_of("OS::Heat::RandomString").len(), 1);
    assert!(!format!("{stack:?}").contains(SECRET));
    assert_eq!(g.attribute("ims.clearwater.signup_key"), None);
    assert!(!g.body.contains(SECRET));

    // update: a zone of its own reaches the stack, in one update.
    let updates = probe.updates(&s, tenant, &stack).await;
    let a = update(&c, &url, tenant, "ims.dns.zone=\"ims.example.net\"").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = backend.succeeded(&c, &url, &mcn(tenant)).await;
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("UPDATE_COMPLETE"),
        "{}",
        g.body
    );
    let stack = ims_stack(&backend, &s, tenant, &instance).await;
    assert_eq!(stack.parameter("dns_zone"), "ims.example.net");
    assert_eq!(stack.parameter("signup_key"), "******");
    assert_eq!(probe.updates(&s, tenant, &stack).await, updates + 1);
    assert_eq!(stack.resources_of("OS::Nova::Server"), sorted(&hosts));
    assert!(!s.log().contains(SECRET), "the secret is not logged");

    let a = call(&c, Method::DELETE, &url, &mcn(tenant), "").await;
    assert!(
        a.status == 200 || a.status == 202,
        "{} {}",
        a.status,
        a.body
    );
    wait_for(&c, &url, &mcn(tenant), backend.within(), |g| {
        g.status == 404
    })
    .await;
    assert_eq!(probe.stacks(&s, tenant, &instance).await, None);
    assert!(
        probe.gone(&s, tenant, &instance, &[id]).await,
        "the stack is deleted"
    );
}
on_both_backends!(a_clearwater_ims_on_the_ims_collection);

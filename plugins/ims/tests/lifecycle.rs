//! The IMS plugin's whole lifecycle through `Stacks` against real stack
//! backends: the local real OpenStack Heat (`OCCI_SO_TEST_HEAT_URL`, with
//! Nova/Neutron mapped to `OS::Heat::None` as `OpenStackConfig::local_heat`
//! does) and the embedded engine (which gives servers, ports and floating
//! IPs addresses, so the endpoint outputs have values). Each step asserts
//! what the backend itself reports: the parameters it received, the
//! resources it holds, the outputs, and that a scale-out is one stack
//! update.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod support;

use std::sync::Arc;

use occi_so_backend::{OpenStackBackend, OpenStackConfig};
use occi_so_plugin_ims::{ImsPlugin, STACK_ROLE};
use occi_so_sdk::{
    Attributes, BackendError, LifecycleCtx, Operation, Orchestrator, PluginError, StackBackend,
};
use serde_json::json;
use support::*;

fn local_heat() -> Option<Arc<dyn StackBackend>> {
    let url = occi_so_testkit::require_heat()?;
    let backend =
        OpenStackBackend::new(OpenStackConfig::local_heat(url)).expect("local Heat config");
    Some(Arc::new(backend))
}

fn attrs(pairs: &[(&str, serde_json::Value)]) -> Attributes {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Applies a change as the server does: validate, merge, `update`.
async fn update(
    plugin: &ImsPlugin,
    ctx: &mut LifecycleCtx,
    changed: Attributes,
) -> Result<(), PluginError> {
    let mut merged = ctx.attributes.clone();
    merged.extend(changed.clone());
    plugin
        .validate(&Operation::update(changed.clone()), &merged)
        .await?;
    ctx.attributes = merged;
    plugin
        .run(
            &Operation::Update {
                changed: changed.clone(),
            },
            ctx,
        )
        .await
}

async fn state(plugin: &ImsPlugin, ctx: &LifecycleCtx) -> Attributes {
    plugin
        .state(occi_so_sdk::InstanceView {
            attributes: &ctx.attributes,
            stacks: ctx.stacks.records(),
            state: &ctx.state,
        })
        .await
        .expect("state")
        .attributes
}

fn units(hosts: &[&str]) -> Vec<String> {
    let mut v = Vec::new();
    for h in hosts {
        for suffix in ["", "-port-mgmt", "-floating_ip-mgmt", "-config"] {
            v.push(format!("{h}{suffix}"));
        }
    }
    v
}

/// OpenIMS, the seed's sequence and more: design, deploy, the seed's
/// `mcn.endpoint.maas` update, provision, scale cscfs 1 → 3 (one update),
/// an out-of-bounds size refused with nothing changed, (scale back,) a
/// MaaS alarm scaling hss by its policy, dispose.
async fn openims_lifecycle(backend: Arc<dyn StackBackend>, scale_in: bool) {
    let plugin = ImsPlugin::new().expect("built-in topologies load");
    let embedded = backend.kind() == "embedded";
    let mut ctx = ctx(backend.clone(), "openims", Attributes::new());

    // design
    plugin
        .validate(&Operation::Design, &ctx.attributes)
        .await
        .unwrap();
    plugin.run(&Operation::Design, &mut ctx).await.unwrap();
    assert_eq!(ctx.state.as_json()["topology"], "openims");
    let before = state(&plugin, &ctx).await;
    assert_eq!(before["occi.mcn.stack.state"], "uninitialized");
    assert_eq!(before["occi.mcn.stack.id"], "N/A");
    assert_eq!(before["ims.size.cscfs"], 1);

    // deploy
    plugin.run(&Operation::Deploy, &mut ctx).await.unwrap();
    let heat = heat_view(&backend, &ctx).await;
    assert_eq!(
        heat.status.to_string(),
        "CREATE_COMPLETE",
        "{}",
        heat.status_reason
    );
    let p = &heat.parameters;
    assert_eq!(p["image_cscfs"], "ims-5g-bin-r177");
    assert_eq!(p["image_hss"], "ims-5g-hss-r198");
    assert_eq!(p["flavor_slf"], "m1.medium");
    assert_eq!(p["key_name_db"], "mcn-key");
    assert_eq!(p["private_network"], "private");
    assert_eq!(p["public_network"], "public");
    assert_eq!(p["dns_zone"], "epc.mnc001.mcc001.3gppnetwork.org");
    assert_eq!(p["maas_endpoint"], "");
    assert_eq!(p["lifecycle"], "deployed");
    let names = resource_names(&backend, &ctx).await;
    let mut expected: Vec<String> = units(&["cscfs-1", "db-1", "hss-1", "slf-1", "dns-1"]);
    for sg in ["ims-base", "cscfs", "hss", "dra", "db", "dns"] {
        expected.push(format!("sg-{sg}"));
    }
    expected.push("ims-configure".into());
    assert_eq!(
        names,
        expected.into_iter().collect(),
        "Heat holds exactly one server, port, floating IP and deployment per unit"
    );
    let s = state(&plugin, &ctx).await;
    assert_eq!(s["occi.mcn.stack.state"], "CREATE_COMPLETE");
    assert_eq!(s["occi.mcn.stack.id"], heat.stack.id.as_str());
    assert_eq!(s["mcn.ims.hosts"], "cscfs-1 db-1 hss-1 slf-1 dns-1");
    if embedded {
        // The embedded engine's pools: private 10.0.0.0/16, floating 172.24.4.0/22.
        let public = s["mcn.endpoint.cscfs-1"].as_str().expect("an address");
        assert!(public.starts_with("172.24."), "{public}");
        assert_eq!(
            s["mcn.endpoint.cscfs-1"],
            s["mcn.endpoint.cscfs-1.mgmt.public"]
        );
        let private = s["mcn.endpoint.hss-1.mgmt.private"]
            .as_str()
            .expect("an address");
        assert!(private.starts_with("10.0."), "{private}");
    } else {
        // The local Heat has no Nova/Neutron: their stand-ins have no
        // addresses, so those outputs are null and not shown.
        assert!(!s.contains_key("mcn.endpoint.cscfs-1"), "{s:?}");
        assert!(heat
            .outputs
            .iter()
            .any(|o| o.output_key == "mcn.endpoint.cscfs-1.mgmt.public"));
    }

    // the seed's update: POST with mcn.endpoint.maas
    update(
        &plugin,
        &mut ctx,
        attrs(&[("mcn.endpoint.maas", json!("160.85.4.50"))]),
    )
    .await
    .unwrap();
    let heat = heat_view(&backend, &ctx).await;
    assert_eq!(
        heat.status.to_string(),
        "UPDATE_COMPLETE",
        "{}",
        heat.status_reason
    );
    assert_eq!(heat.parameters["maas_endpoint"], "160.85.4.50");
    assert_eq!(heat.parameters["lifecycle"], "deployed");

    // provision: the DNSaaS endpoints reach the nodes, services start
    ctx.attributes
        .insert("mcn.endpoint.api".into(), json!("http://10.0.0.2:8080"));
    ctx.attributes
        .insert("mcn.endpoint.forwarder".into(), json!("10.0.0.3"));
    plugin
        .validate(&Operation::Provision, &ctx.attributes)
        .await
        .unwrap();
    plugin.run(&Operation::Provision, &mut ctx).await.unwrap();
    let heat = heat_view(&backend, &ctx).await;
    assert_eq!(
        heat.status.to_string(),
        "UPDATE_COMPLETE",
        "{}",
        heat.status_reason
    );
    assert_eq!(heat.parameters["dnsaas_api"], "http://10.0.0.2:8080");
    assert_eq!(heat.parameters["dns_forwarder"], "10.0.0.3");
    assert_eq!(heat.parameters["maas_endpoint"], "160.85.4.50");
    assert_eq!(heat.parameters["lifecycle"], "provisioned");

    // scale cscfs 1 -> 3: one POST, one stack update that adds the units
    let updates_before = stack_events(&backend, &ctx, "UPDATE_COMPLETE").await;
    update(&plugin, &mut ctx, attrs(&[("ims.size.cscfs", json!(3))]))
        .await
        .unwrap();
    let heat = heat_view(&backend, &ctx).await;
    assert_eq!(
        heat.status.to_string(),
        "UPDATE_COMPLETE",
        "{}",
        heat.status_reason
    );
    assert_eq!(
        stack_events(&backend, &ctx, "UPDATE_COMPLETE").await,
        updates_before + 1,
        "a scale-out is exactly one stack update"
    );
    let names = resource_names(&backend, &ctx).await;
    for r in units(&["cscfs-2", "cscfs-3"]) {
        assert!(names.contains(&r), "{r} missing from {names:?}");
    }
    assert_eq!(
        heat.parameters["lifecycle"], "provisioned",
        "scaling keeps the services started"
    );
    let s = state(&plugin, &ctx).await;
    assert_eq!(
        s["mcn.ims.hosts"],
        "cscfs-1 cscfs-2 cscfs-3 db-1 hss-1 slf-1 dns-1"
    );
    assert_eq!(s["ims.size.cscfs"], 3);

    // out of bounds: a 400 naming the attribute and its bounds; nothing changes
    let err = plugin
        .validate(
            &Operation::update(attrs(&[("ims.size.cscfs", json!(9))])),
            &{
                let mut m = ctx.attributes.clone();
                m.insert("ims.size.cscfs".into(), json!(9));
                m
            },
        )
        .await
        .unwrap_err();
    match &err {
        PluginError::InvalidAttribute { name, message } => {
            assert_eq!(name, "ims.size.cscfs");
            assert!(message.contains("min 1, max 5"), "{message}");
        }
        other => panic!("expected an attribute error, got {other:?}"),
    }
    assert_eq!(
        stack_events(&backend, &ctx, "UPDATE_COMPLETE").await,
        updates_before + 1
    );

    // scale back in (each Heat update of this stack takes 10-25 s on the
    // local Heat, so only the embedded engine runs this step)
    if scale_in {
        update(&plugin, &mut ctx, attrs(&[("ims.size.cscfs", json!(1))]))
            .await
            .unwrap();
        let names = resource_names(&backend, &ctx).await;
        assert!(
            !names.contains("cscfs-2") && !names.contains("cscfs-3-port-mgmt"),
            "{names:?}"
        );
        assert_eq!(
            state(&plugin, &ctx).await["mcn.ims.hosts"],
            "cscfs-1 db-1 hss-1 slf-1 dns-1"
        );
    }

    // a MaaS alarm names the IMSSO's hss scale-up policy: one more hss, in
    // one update; a second alarm within the policy's cooldown changes nothing
    let event = attrs(&[("ims.policy", json!("hss.msg_scaleup"))]);
    let updates_before = stack_events(&backend, &ctx, "UPDATE_COMPLETE").await;
    plugin
        .run(
            &Operation::Notify {
                event: event.clone(),
            },
            &mut ctx,
        )
        .await
        .unwrap();
    assert_eq!(ctx.attributes["ims.size.hss"], 2);
    assert!(resource_names(&backend, &ctx).await.contains("hss-2"));
    plugin
        .run(
            &Operation::Notify {
                event: event.clone(),
            },
            &mut ctx,
        )
        .await
        .unwrap();
    assert_eq!(ctx.attributes["ims.size.hss"], 2, "cooling down");
    assert_eq!(
        stack_events(&backend, &ctx, "UPDATE_COMPLETE").await,
        updates_before + 1
    );

    // dispose
    let stack = ctx
        .stacks
        .get(STACK_ROLE)
        .and_then(|r| r.stack.clone())
        .unwrap();
    plugin.run(&Operation::Dispose, &mut ctx).await.unwrap();
    assert!(ctx.stacks.records().is_empty());
    match backend.get(&creds(), &stack).await {
        Err(BackendError::NotFound { .. }) => {}
        Ok(info) => assert_eq!(info.status.to_string(), "DELETE_COMPLETE"),
        Err(e) => panic!("{e}"),
    }
}

/// Clearwater: the second topology, with a caller's secret passed hidden,
/// the other secret generated in the stack, and Ralf scaled to 0.
async fn clearwater_lifecycle(backend: Arc<dyn StackBackend>) {
    let plugin = ImsPlugin::new().unwrap();
    let attributes = attrs(&[
        ("mcn.topology.type", json!("clearwater")),
        ("ims.clearwater.signup_key", json!("s3cr3t-signup")),
        ("ims.size.ralf", json!(0)),
        ("ims.size.sprout", json!(2)),
        ("ims.dns.zone", json!("ims.example.net")),
        ("ims.image", json!("ubuntu-14.04-clearwater")),
    ]);
    let mut ctx = ctx(backend.clone(), "clearwater", attributes);
    plugin
        .validate(&Operation::Design, &ctx.attributes)
        .await
        .unwrap();
    plugin.run(&Operation::Design, &mut ctx).await.unwrap();
    plugin.run(&Operation::Deploy, &mut ctx).await.unwrap();
    let heat = heat_view(&backend, &ctx).await;
    assert_eq!(
        heat.status.to_string(),
        "CREATE_COMPLETE",
        "{}",
        heat.status_reason
    );
    assert_eq!(
        heat.parameters["signup_key"], "******",
        "the secret is a hidden parameter"
    );
    assert!(!heat.parameters.contains_key("tsig_key"));
    assert_eq!(heat.parameters["image_bono"], "ubuntu-14.04-clearwater");
    assert_eq!(heat.parameters["image_dns"], "ubuntu-14.04-clearwater");
    assert_eq!(heat.parameters["flavor_sprout"], "m1.medium");
    assert_eq!(heat.parameters["dns_zone"], "ims.example.net");
    let names = resource_names(&backend, &ctx).await;
    for r in units(&[
        "bono-1",
        "sprout-1",
        "sprout-2",
        "homer-1",
        "homestead-1",
        "ellis-1",
        "dns-1",
    ]) {
        assert!(names.contains(&r), "{r} missing from {names:?}");
    }
    assert!(
        names.contains("tsig-key"),
        "the TSIG key is generated per stack"
    );
    assert!(!names.contains("signup-key"));
    assert!(!names.iter().any(|n| n.starts_with("ralf-")), "{names:?}");
    for sg in [
        "clearwater",
        "bono",
        "sprout",
        "homestead",
        "homer",
        "ellis",
        "ralf",
        "dns",
    ] {
        assert!(names.contains(&format!("sg-{sg}")), "sg-{sg}");
    }
    let s = state(&plugin, &ctx).await;
    assert_eq!(
        s["mcn.ims.hosts"],
        "bono-1 sprout-1 sprout-2 homer-1 homestead-1 ellis-1 dns-1"
    );
    assert_eq!(s["ims.size.ralf"], 0);
    plugin.run(&Operation::Dispose, &mut ctx).await.unwrap();
    assert!(ctx.stacks.records().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openims_lifecycle_on_local_heat() {
    let Some(backend) = local_heat() else {
        return;
    };
    openims_lifecycle(backend, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearwater_lifecycle_on_local_heat() {
    let Some(backend) = local_heat() else {
        return;
    };
    clearwater_lifecycle(backend).await;
}

fn embedded() -> Arc<dyn StackBackend> {
    let engine = occi_so_backend::EmbeddedBackend::new(occi_so_backend::EmbeddedConfig::instant())
        .expect("embedded engine");
    Arc::new(engine)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openims_lifecycle_on_the_embedded_engine() {
    openims_lifecycle(embedded(), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearwater_lifecycle_on_the_embedded_engine() {
    clearwater_lifecycle(embedded()).await;
}

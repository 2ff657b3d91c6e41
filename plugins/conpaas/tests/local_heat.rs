//! The whole ConPaaS lifecycle through `Stacks` against the real local Heat
//! (`OCCI_SO_TEST_HEAT_URL`): what Heat received (parameters, servers per
//! role), the outputs, scaling as stack updates, stop and start, and
//! placement on two named clouds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use occi_so_plugin_conpaas::kind::{ATTR_FLAVOR, ATTR_NODES, ATTR_SERVICES, ATTR_STATE};
use occi_so_plugin_conpaas::Conpaas;
use occi_so_sdk::{Operation, Orchestrator, PluginError, StackBackend};
use occi_so_testkit::require_heat;
use serde_json::{json, Value};
use support::*;

const SERVER: &str = "OS::Nova::Server";

async fn deploy(plugin: &Conpaas, ctx: &mut occi_so_sdk::LifecycleCtx) {
    plugin
        .validate(&Operation::Design, &ctx.attributes)
        .await
        .unwrap();
    plugin.run(&Operation::Design, ctx).await.unwrap();
    plugin
        .validate(&Operation::Deploy, &ctx.attributes)
        .await
        .unwrap();
    plugin.run(&Operation::Deploy, ctx).await.unwrap();
}

fn is_test_net_2(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.starts_with(&format!("{FLOATING_IP_PREFIX}1")) && s.len() == 14)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_lifecycle_on_the_local_heat() {
    let Some(heat) = require_heat() else {
        return;
    };
    let provider = serve_floating_ip_provider().await;
    let backend = backend_with_floating_ips(&heat, &provider);
    let plugin = Conpaas::new().unwrap().with_clouds(vec![]);
    let prefix = unique_prefix("life");
    let attrs = attributes(
        &plugin,
        &[
            ("conpaas.application.name", json!("Sudoku example")),
            (
                ATTR_SERVICES,
                json!({"web": {"type": "php"}, "db": {"type": "mysql"}}),
            ),
        ],
    );
    let mut ctx = context(&prefix, backend.clone(), BTreeMap::new(), attrs);

    // deploy: the manager, then the agents with the startup nodes
    deploy(&plugin, &mut ctx).await;
    assert_eq!(roles(&ctx), ["agents", "manager"]);
    assert_eq!(ctx.attributes[ATTR_STATE], "RUNNING");
    assert_eq!(
        ctx.attributes[ATTR_NODES],
        json!({"db": {"default": {"mysql": 1}}, "web": {"default": {"proxybackendweb": 1}}})
    );
    let manager = stack(&mut ctx, "manager").await;
    assert_eq!(manager.status.to_string(), "CREATE_COMPLETE");
    assert_eq!(manager.parameters["image"], "conpaas");
    assert_eq!(manager.parameters["flavor"], "m1.small");
    assert_eq!(manager.parameters["application"], "Sudoku example");
    assert_eq!(manager.parameters["cloud"], "default");
    assert_eq!(
        manager.parameters["auto_assign_floating_ip"], "False",
        "Heat's boolean text"
    );
    let manager_ip = manager.output("conpaas.manager.ip").cloned().unwrap();
    assert!(is_test_net_2(&manager_ip), "{manager_ip}");
    assert_eq!(
        manager.output("conpaas.manager.url").unwrap(),
        &json!(format!("https://{}:443/", manager_ip.as_str().unwrap()))
    );
    assert_eq!(count_resources(&ctx, "manager", SERVER).await, 1);
    let agents = stack(&mut ctx, "agents").await;
    assert_eq!(agents.status.to_string(), "CREATE_COMPLETE");
    assert_eq!(
        agents.parameters["manager_ip"], "",
        "services not started yet"
    );
    assert_eq!(count_resources(&ctx, "agents", SERVER).await, 2);
    let web = agents
        .output("conpaas.agents.default.web.proxybackendweb")
        .unwrap();
    assert!(
        web.as_array()
            .is_some_and(|a| a.len() == 1 && is_test_net_2(&a[0])),
        "{web}"
    );

    // provision: the manager's address reaches the agents
    plugin
        .validate(&Operation::Provision, &ctx.attributes)
        .await
        .unwrap();
    plugin.run(&Operation::Provision, &mut ctx).await.unwrap();
    let agents = stack(&mut ctx, "agents").await;
    assert_eq!(agents.status.to_string(), "UPDATE_COMPLETE");
    assert_eq!(
        agents.parameters["manager_ip"],
        manager_ip.as_str().unwrap()
    );
    assert_eq!(count_resources(&ctx, "agents", SERVER).await, 2);

    // the state as GET shows it
    let report = plugin
        .state(occi_so_sdk::InstanceView {
            attributes: &ctx.attributes,
            stacks: ctx.stacks.records(),
            state: &ctx.state,
        })
        .await
        .unwrap();
    let a = &report.attributes;
    assert_eq!(a["conpaas.manager.ip"], manager_ip);
    assert_eq!(a["occi.mcn.stack.state"], "CREATE_COMPLETE");
    assert!(a["occi.mcn.stack.id"]
        .as_str()
        .unwrap()
        .contains("manager:"));
    assert_eq!(a["conpaas.nodes.web.proxybackendweb"], 1);
    assert_eq!(a["conpaas.nodes.db.mysql"], 1);
    assert_eq!(a["conpaas.service.web.state"], "RUNNING");
    assert_eq!(a["conpaas.service.db.type"], "mysql");

    // add_nodes: two web servers, one stack update
    act(
        &plugin,
        &mut ctx,
        "add_nodes",
        &[
            ("conpaas.service", json!("web")),
            ("conpaas.nodes", json!({"web": 2})),
        ],
    )
    .await
    .unwrap();
    let agents = stack(&mut ctx, "agents").await;
    assert_eq!(agents.status.to_string(), "UPDATE_COMPLETE");
    assert_eq!(count_resources(&ctx, "agents", SERVER).await, 4);
    assert_eq!(
        agents
            .output("conpaas.agents.default.web.web")
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        agents.parameters["manager_ip"],
        manager_ip.as_str().unwrap(),
        "new nodes know their manager"
    );
    assert_eq!(
        ctx.attributes[ATTR_NODES]["web"]["default"],
        json!({"proxybackendweb": 1, "web": 2})
    );

    // remove_nodes: one web server goes
    act(
        &plugin,
        &mut ctx,
        "remove_nodes",
        &[
            ("conpaas.service", json!("web")),
            ("conpaas.nodes", json!({"web": "1"})),
        ],
    )
    .await
    .unwrap();
    assert_eq!(count_resources(&ctx, "agents", SERVER).await, 3);

    // refused without touching anything: more than exist, below the
    // minimum, a starting-node role, an unknown role or service
    let before = stack(&mut ctx, "agents").await;
    for (params, attr, words) in [
        (
            json!({"web": 5}),
            "conpaas.nodes",
            "cannot remove 5 'web' nodes of service 'web': 1 runs",
        ),
        (
            json!({"mysql": 1}),
            "conpaas.nodes",
            "unknown role 'mysql' for service type 'php'",
        ),
        (
            json!({"proxybackendweb": 1}),
            "conpaas.nodes",
            "starting node",
        ),
    ] {
        let e = act(
            &plugin,
            &mut ctx,
            "remove_nodes",
            &[("conpaas.service", json!("web")), ("conpaas.nodes", params)],
        )
        .await
        .unwrap_err();
        match &e {
            PluginError::InvalidAttribute { name, message } => {
                assert_eq!(name, attr);
                assert!(message.contains(words), "{message}");
            }
            other => panic!("expected a 400 naming {attr}, got {other:?}"),
        }
    }
    let e = act(
        &plugin,
        &mut ctx,
        "remove_nodes",
        &[
            ("conpaas.service", json!("db")),
            ("conpaas.nodes", json!({"mysql": 1})),
        ],
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string().contains("at least one node doing 'mysql'"),
        "{e}"
    );
    let e = act(
        &plugin,
        &mut ctx,
        "add_nodes",
        &[
            ("conpaas.service", json!("cache")),
            ("conpaas.nodes", json!({"node": 1})),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "attribute 'conpaas.service': unknown service 'cache' (services: db, web)"
    );
    let after = stack(&mut ctx, "agents").await;
    assert_eq!(
        after.updated_time, before.updated_time,
        "refusals change no stack"
    );

    // update: a new flavor reaches both stacks; a new service starts
    ctx.attributes
        .insert(ATTR_FLAVOR.into(), json!("m1.medium"));
    ctx.attributes.insert(
        ATTR_SERVICES.into(),
        json!({"web": {"type": "php"}, "db": {"type": "mysql"}, "hello": {"type": "helloworld", "nodes": {"node": 2}}}),
    );
    let changed = [(ATTR_FLAVOR.to_string(), json!("m1.medium"))]
        .into_iter()
        .collect();
    plugin
        .validate(&Operation::update(changed), &ctx.attributes)
        .await
        .unwrap();
    plugin
        .run(
            &Operation::Update {
                changed: BTreeMap::new(),
            },
            &mut ctx,
        )
        .await
        .unwrap();
    assert_eq!(
        stack(&mut ctx, "manager").await.parameters["flavor"],
        "m1.medium"
    );
    let agents = stack(&mut ctx, "agents").await;
    assert_eq!(agents.parameters["flavor"], "m1.medium");
    assert_eq!(
        count_resources(&ctx, "agents", SERVER).await,
        5,
        "web kept its scaled nodes, hello added 2"
    );

    // stop: no stack is left, nodes are remembered
    act(&plugin, &mut ctx, "stop", &[]).await.unwrap();
    assert!(roles(&ctx).is_empty());
    assert_eq!(ctx.attributes[ATTR_STATE], "STOPPED");
    for role in ["manager", "agents"] {
        let name = ctx.stacks.name_for(role);
        assert_eq!(
            backend.find(&creds(), &name).await.unwrap(),
            None,
            "{name} deleted"
        );
    }
    let e = act(
        &plugin,
        &mut ctx,
        "add_nodes",
        &[
            ("conpaas.service", json!("web")),
            ("conpaas.nodes", json!({"web": 1})),
        ],
    )
    .await
    .unwrap_err();
    assert!(matches!(e, PluginError::NotApplicable { .. }), "{e:?}");
    let e = act(&plugin, &mut ctx, "stop", &[]).await.unwrap_err();
    assert!(e.to_string().contains("STOPPED"), "{e}");

    // start: the manager and the same nodes come back, with the new address
    act(&plugin, &mut ctx, "start", &[]).await.unwrap();
    assert_eq!(roles(&ctx), ["agents", "manager"]);
    let new_ip = stack(&mut ctx, "manager")
        .await
        .output("conpaas.manager.ip")
        .cloned()
        .unwrap();
    assert!(is_test_net_2(&new_ip));
    let agents = stack(&mut ctx, "agents").await;
    assert_eq!(agents.status.to_string(), "CREATE_COMPLETE");
    assert_eq!(agents.parameters["manager_ip"], new_ip.as_str().unwrap());
    assert_eq!(count_resources(&ctx, "agents", SERVER).await, 5);
    assert_eq!(ctx.attributes[ATTR_STATE], "RUNNING");

    // dispose: agents first, then the manager; nothing left
    plugin.run(&Operation::Dispose, &mut ctx).await.unwrap();
    assert!(roles(&ctx).is_empty());
    for role in ["manager", "agents"] {
        let name = ctx.stacks.name_for(role);
        assert_eq!(backend.find(&creds(), &name).await.unwrap(), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_on_two_named_clouds_get_a_stack_each() {
    let Some(heat) = require_heat() else {
        return;
    };
    let provider = serve_floating_ip_provider().await;
    let default = backend_with_floating_ips(&heat, &provider);
    let cloud_b = backend_with_floating_ips(&heat, &provider);
    let plugin = Conpaas::new().unwrap().with_clouds(vec!["cloud-b".into()]);
    let prefix = unique_prefix("multi");
    let attrs = attributes(
        &plugin,
        &[
            (
                ATTR_SERVICES,
                json!({"web": {"type": "java"}, "fs": {"type": "xtreemfs", "cloud": "cloud-b"}}),
            ),
            (
                "conpaas.clouds",
                json!({"cloud-b": {"image": "conpaas-b", "flavor": "m1.large"}}),
            ),
        ],
    );
    let clouds: BTreeMap<String, Arc<dyn StackBackend>> = BTreeMap::from([(
        "cloud-b".to_string(),
        cloud_b.clone() as Arc<dyn StackBackend>,
    )]);
    let mut ctx = context(&prefix, default.clone(), clouds, attrs);
    let b_before = cloud_b.stats().heat_requests;

    deploy(&plugin, &mut ctx).await;
    assert_eq!(roles(&ctx), ["agents", "agents-cloud-b", "manager"]);
    assert_eq!(
        ctx.stacks.get("agents-cloud-b").unwrap().cloud.as_deref(),
        Some("cloud-b")
    );
    assert_eq!(ctx.stacks.get("agents").unwrap().cloud, None);
    assert!(
        cloud_b.stats().heat_requests > b_before,
        "cloud-b's backend created its stack"
    );
    let b = stack(&mut ctx, "agents-cloud-b").await;
    assert_eq!(b.parameters["cloud"], "cloud-b");
    assert_eq!(b.parameters["image"], "conpaas-b");
    assert_eq!(b.parameters["flavor"], "m1.large");
    assert_eq!(count_resources(&ctx, "agents-cloud-b", SERVER).await, 1);
    assert!(b.output("conpaas.agents.cloud-b.fs.dir_mrc_osd").is_some());
    assert_eq!(
        stack(&mut ctx, "agents").await.parameters["image"],
        "conpaas"
    );

    plugin.run(&Operation::Provision, &mut ctx).await.unwrap();
    let ip = ctx.state.as_json()["manager_ip"].clone();
    assert_eq!(
        stack(&mut ctx, "agents-cloud-b").await.parameters["manager_ip"],
        ip.as_str().unwrap()
    );

    // java nodes placed on cloud-b join that cloud's stack
    act(
        &plugin,
        &mut ctx,
        "add_nodes",
        &[
            ("conpaas.service", json!("web")),
            ("conpaas.nodes", json!({"backend": 2})),
            ("conpaas.cloud", json!("cloud-b")),
        ],
    )
    .await
    .unwrap();
    assert_eq!(count_resources(&ctx, "agents-cloud-b", SERVER).await, 3);
    assert_eq!(count_resources(&ctx, "agents", SERVER).await, 1);
    assert_eq!(
        ctx.attributes[ATTR_NODES]["web"],
        json!({"cloud-b": {"backend": 2}, "default": {"proxybackendweb": 1}})
    );

    // an unknown cloud is refused, naming the configured ones
    let e = act(
        &plugin,
        &mut ctx,
        "add_nodes",
        &[
            ("conpaas.service", json!("web")),
            ("conpaas.nodes", json!({"web": 1})),
            ("conpaas.cloud", json!("cloud-c")),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "attribute 'conpaas.cloud': unknown cloud 'cloud-c' (configured clouds: default, cloud-b)"
    );

    // removing without a cloud takes the other cloud's nodes first
    act(
        &plugin,
        &mut ctx,
        "remove_nodes",
        &[
            ("conpaas.service", json!("web")),
            ("conpaas.nodes", json!({"backend": 1})),
        ],
    )
    .await
    .unwrap();
    assert_eq!(count_resources(&ctx, "agents-cloud-b", SERVER).await, 2);

    // a cloud without nodes has no stack
    ctx.attributes
        .insert(ATTR_SERVICES.into(), json!({"web": {"type": "java"}}));
    plugin
        .run(
            &Operation::Update {
                changed: BTreeMap::new(),
            },
            &mut ctx,
        )
        .await
        .unwrap();
    assert_eq!(
        count_resources(&ctx, "agents-cloud-b", SERVER).await,
        1,
        "fs gone, the java backend stays"
    );
    act(
        &plugin,
        &mut ctx,
        "remove_nodes",
        &[
            ("conpaas.service", json!("web")),
            ("conpaas.nodes", json!({"backend": 1})),
            ("conpaas.cloud", json!("cloud-b")),
        ],
    )
    .await
    .unwrap();
    assert_eq!(roles(&ctx), ["agents", "manager"]);
    assert_eq!(
        cloud_b
            .find(&creds(), &ctx.stacks.name_for("agents-cloud-b"))
            .await
            .unwrap(),
        None
    );

    plugin.run(&Operation::Dispose, &mut ctx).await.unwrap();
    assert!(roles(&ctx).is_empty());
}

/// On a Heat whose Neutron is a stub, the manager has no address: provision
/// says so instead of starting agents that cannot reach their manager.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_without_a_manager_address_fails_clearly() {
    let Some(heat) = require_heat() else {
        return;
    };
    let backend = stub_backend(&heat);
    let plugin = Conpaas::new().unwrap();
    let prefix = unique_prefix("noip");
    let attrs = attributes(
        &plugin,
        &[(ATTR_SERVICES, json!({"hello": {"type": "helloworld"}}))],
    );
    let mut ctx = context(&prefix, backend, BTreeMap::new(), attrs);
    deploy(&plugin, &mut ctx).await;
    let e = plugin
        .run(&Operation::Provision, &mut ctx)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PluginError::Failed(m) if m.contains("reports no public address") && m.contains("conpaas.manager.ip")),
        "{e}"
    );
    assert_eq!(stack(&mut ctx, "agents").await.parameters["manager_ip"], "");
    plugin.run(&Operation::Dispose, &mut ctx).await.unwrap();
    assert!(roles(&ctx).is_empty());
}

//! The ConPaaS plugin through the OCCI API of the real binary, each
//! scenario run on the embedded engine (the default backend) and on the
//! real local Heat (floating IPs from a provider template there), with
//! what the backend received read through the testkit's probe at each
//! step: create, deploy, provision, add_nodes and remove_nodes as updates
//! of the agents stack, stop, start, delete; and a service placed on a
//! named cloud of the config file (`clouds:`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;
mod conpaas_support;

use common::*;
use conpaas_support::*;
use reqwest::Method;
use serde_json::Value;

/// Where a backend's floating addresses come from, and whether it never
/// gives one twice (the provider template on Heat draws from 100).
struct Pool {
    floating: &'static str,
    unique: bool,
}

fn pool(backend: &Backend) -> Pool {
    match backend {
        Backend::Embedded(_) => Pool {
            floating: "172.24.",
            unique: true,
        },
        Backend::Heat(_) => Pool {
            floating: FLOATING_IP_PREFIX,
            unique: false,
        },
    }
}

/// `serve` arguments on `backend` with `clouds` (YAML of named clouds on
/// the embedded engine, or on the same Heat when `heat_cloud` says so).
async fn serve_args(backend: &Backend, dir: &std::path::Path, clouds: &str) -> Vec<String> {
    match backend.heat_url() {
        None => embedded_args(dir, FAST, clouds),
        Some(heat) => {
            let yaml = local_heat_with_floating_ips(heat).await;
            config_args(dir, &format!("{yaml}{clouds}"))
        }
    }
}

/// The JSON rendering's headers of `tenant`.
fn json(tenant: &str) -> Vec<(&str, &str)> {
    let mut h = mcn(tenant);
    h.push(("Accept", "application/occi+json"));
    h
}

/// The instance's attributes once no operation runs and the last one
/// succeeded.
async fn done(backend: &Backend, url: &str, tenant: &str) -> Value {
    let a = backend.succeeded(&client(), url, &json(tenant)).await;
    a.json()["attributes"].clone()
}

/// Runs action `term` (accepted, settled, succeeded); the attributes.
async fn act(backend: &Backend, url: &str, tenant: &str, term: &str, params: &str) -> Value {
    let a = action(url, &mcn(tenant), term, params).await;
    assert_eq!(a.status, 200, "{term}: {}", a.body);
    done(backend, url, tenant).await
}

/// `POST <url>?action=<term>` of the MCN lifecycle.
async fn lifecycle(backend: &Backend, url: &str, tenant: &str, term: &str) -> Value {
    let a = call(
        &client(),
        Method::POST,
        &format!("{url}?action={term}"),
        &mcn(tenant),
        "",
    )
    .await;
    assert_eq!(a.status, 200, "{term}: {}", a.body);
    done(backend, url, tenant).await
}

/// `(role, cloud)` of each stack, in the order held.
fn roles(list: &[StackView]) -> Vec<(String, String)> {
    list.iter()
        .map(|s| (s.role.clone(), s.cloud.clone()))
        .collect()
}

/// The addresses listed in an attribute (`conpaas.agents.<cloud>...`).
fn addresses(attrs: &Value, name: &str) -> Vec<String> {
    attrs[name]
        .as_array()
        .unwrap_or_else(|| panic!("{name} lists addresses: {attrs}"))
        .iter()
        .map(|a| a.as_str().unwrap_or_default().to_string())
        .collect()
}

fn floating(pool: &Pool, ips: &[String]) {
    for ip in ips {
        assert!(is_address_in(ip, pool.floating), "a floating address: {ip}");
    }
}

async fn create(s: &Server, tenant: &str, attributes: &str) -> Answer {
    let category = format!("conpaas; scheme=\"{SM}\"; class=\"kind\"");
    let mut h = mcn(tenant);
    h.push(("Category", category.as_str()));
    h.push(("X-OCCI-Attribute", attributes));
    call(&client(), Method::POST, &s.url("/conpaas/"), &h, "").await
}

/// A create with `attributes` is a 400 whose message holds every one of
/// `named`, and creates nothing.
async fn refused(s: &Server, tenant: &str, attributes: &str, named: &[&str]) {
    let a = create(s, tenant, attributes).await;
    assert_eq!(a.status, 400, "{}", a.body);
    for part in named {
        assert!(a.body.contains(part), "{part:?} is not named: {}", a.body);
    }
    let a = call(
        &client(),
        Method::GET,
        &s.url("/conpaas/"),
        &mcn(tenant),
        "",
    )
    .await;
    assert_eq!(
        (a.status.as_u16(), a.body.as_str()),
        (200, ""),
        "nothing created"
    );
}

/// A create with `attributes` (201): the instance's URL and path.
async fn created(s: &Server, tenant: &str, attributes: &str) -> (String, String) {
    let a = create(s, tenant, attributes).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let url = a.header("location");
    let instance = s.path_of(&url);
    (url, instance)
}

async fn conpaas_lifecycle(backend: Backend) {
    let probe = backend.probe();
    let pool = pool(&backend);
    let dir = tempfile::tempdir().unwrap();
    let s = start_with(serve_args(&backend, dir.path(), "").await);
    let c = client();
    let tenant = "conpaas";
    let h = mcn(tenant);

    // A caller's mistake is a 400 naming the attribute, and creates nothing.
    let postgres = r#"conpaas.services="{\"db\": {\"type\": \"postgres\"}}""#;
    let why = ["conpaas.services", "unknown service type 'postgres'"];
    refused(&s, tenant, postgres, &why).await;

    // create: no stack yet
    let (url, instance) = created(
        &s,
        tenant,
        r#"conpaas.application.name="Sudoku example", conpaas.services="{\"web\": {\"type\": \"php\"}, \"db\": {\"type\": \"mysql\"}}", conpaas.flavor="m1.micro""#,
    )
    .await;
    let attrs = done(&backend, &url, tenant).await;
    assert_eq!(attrs["conpaas.application.state"], "INIT", "{attrs}");
    assert_eq!(attrs["conpaas.image"], "conpaas");
    assert_eq!(attrs["occi.mcn.stack.state"], "uninitialized");
    assert_eq!(probe.stacks(&s, tenant, &instance).await, Some(vec![]));

    // deploy: the manager stack, then the agents with one node per service
    let attrs = lifecycle(&backend, &url, tenant, "deploy").await;
    assert_eq!(attrs["occi.so.phase"], "deployed", "{attrs}");
    assert_eq!(attrs["occi.mcn.stack.state"], "CREATE_COMPLETE");
    assert_eq!(attrs["conpaas.application.state"], "RUNNING");
    assert_eq!(attrs["conpaas.nodes.web.proxybackendweb"], 1);
    assert_eq!(attrs["conpaas.nodes.db.mysql"], 1);
    assert_eq!(attrs["conpaas.service.web.state"], "INIT");
    let manager_ip = attrs["conpaas.manager.ip"]
        .as_str()
        .expect("manager address")
        .to_string();
    floating(&pool, std::slice::from_ref(&manager_ip));
    assert_eq!(
        attrs["conpaas.manager.url"],
        format!("https://{manager_ip}:443/").as_str()
    );
    let ids = stack_ids(&attrs);
    let list = probe.held(&s, tenant, &instance).await;
    let default = |role: &str| (role.to_string(), "default".to_string());
    assert_eq!(roles(&list), [default("manager"), default("agents")]);
    assert_eq!(ids[0], ("manager".to_string(), list[0].id.clone()));
    assert_eq!(ids[1], ("agents".to_string(), list[1].id.clone()));
    let manager = by_role(&list, "manager");
    assert_eq!(manager.status, "CREATE_COMPLETE");
    assert_eq!(manager.parameter("flavor"), "m1.micro");
    assert_eq!(manager.parameter("application"), "Sudoku example");
    assert_eq!(manager.servers(), 1);
    let agents = by_role(&list, "agents");
    assert_eq!(agents.status, "CREATE_COMPLETE");
    assert_eq!(agents.parameter("manager_ip"), "");
    assert_eq!(agents.servers(), 2);
    let web = addresses(&attrs, "conpaas.agents.default.web.proxybackendweb");
    let db = addresses(&attrs, "conpaas.agents.default.db.mysql");
    assert_eq!((web.len(), db.len()), (1, 1), "{attrs}");
    floating(&pool, &web);
    floating(&pool, &db);
    if pool.unique {
        assert_ne!(web, db);
    }

    // provision: the agents learn the manager's address; the services run
    let attrs = lifecycle(&backend, &url, tenant, "provision").await;
    assert_eq!(attrs["occi.so.phase"], "provisioned", "{attrs}");
    assert_eq!(attrs["conpaas.service.web.state"], "RUNNING");
    assert_eq!(attrs["conpaas.service.db.state"], "RUNNING");
    let list = probe.held(&s, tenant, &instance).await;
    let agents = by_role(&list, "agents").clone();
    assert_eq!(agents.status, "UPDATE_COMPLETE");
    assert_eq!(agents.parameter("manager_ip"), manager_ip);
    let a = call(&c, Method::GET, &url, &json(tenant), "").await;
    let mut actions = a.actions();
    actions.sort();
    assert_eq!(
        actions,
        ["add_nodes", "notify", "remove_nodes", "start", "stop"]
    );
    let updates = probe.updates(&s, tenant, &agents).await;

    // add_nodes: one POST, one update of the same agents stack, two more
    // servers
    let attrs = act(
        &backend,
        &url,
        tenant,
        "add_nodes",
        r#"conpaas.service="web", conpaas.nodes="{\"web\": 2}""#,
    )
    .await;
    assert_eq!(attrs["conpaas.nodes.web.web"], 2);
    let web = addresses(&attrs, "conpaas.agents.default.web.web");
    assert_eq!(web.len(), 2, "{attrs}");
    floating(&pool, &web);
    let list = probe.held(&s, tenant, &instance).await;
    let now = by_role(&list, "agents");
    assert_eq!(now.servers(), 4);
    assert_eq!(now.status, "UPDATE_COMPLETE");
    assert_eq!(now.id, agents.id, "the same agents stack");
    assert_eq!(
        probe.updates(&s, tenant, now).await,
        updates + 1,
        "one update"
    );

    // remove_nodes: more than exist is a 400 and changes nothing; so is
    // an unknown role
    let a = action(
        &url,
        &h,
        "remove_nodes",
        r#"conpaas.service="web", conpaas.nodes="{\"web\": 3}""#,
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        a.body.contains("conpaas.nodes") && a.body.contains("cannot remove 3 'web' nodes"),
        "{}",
        a.body
    );
    let a = action(
        &url,
        &h,
        "add_nodes",
        r#"conpaas.service="web", conpaas.nodes="{\"glb\": 1}""#,
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("unknown role 'glb'"), "{}", a.body);
    let list = probe.held(&s, tenant, &instance).await;
    let now = by_role(&list, "agents");
    assert_eq!(now.servers(), 4);
    assert_eq!(
        probe.updates(&s, tenant, now).await,
        updates + 1,
        "no update"
    );
    let attrs = act(
        &backend,
        &url,
        tenant,
        "remove_nodes",
        r#"conpaas.service="web", conpaas.nodes="{\"web\": 1}""#,
    )
    .await;
    assert_eq!(attrs["conpaas.nodes.web.web"], 1);
    let list = probe.held(&s, tenant, &instance).await;
    let now = by_role(&list, "agents");
    assert_eq!(now.servers(), 3);
    assert_eq!(probe.updates(&s, tenant, now).await, updates + 2);

    // stop: every stack deleted, the nodes remembered; nodes cannot be
    // added to a stopped application
    let attrs = act(&backend, &url, tenant, "stop", "").await;
    assert_eq!(attrs["conpaas.application.state"], "STOPPED");
    assert_eq!(attrs["occi.mcn.stack.id"], "N/A");
    assert_eq!(probe.stacks(&s, tenant, &instance).await, Some(vec![]));
    let old: Vec<String> = ids.iter().map(|(_, id)| id.clone()).collect();
    assert!(
        probe.gone(&s, tenant, &instance, &old).await,
        "{old:?} deleted"
    );
    let a = action(
        &url,
        &h,
        "add_nodes",
        r#"conpaas.service="web", conpaas.nodes="{\"web\": 1}""#,
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("STOPPED"), "{}", a.body);

    // start: the manager and the same nodes come back, on new stacks
    let attrs = act(&backend, &url, tenant, "start", "").await;
    assert_eq!(attrs["conpaas.application.state"], "RUNNING");
    assert_eq!(attrs["conpaas.nodes.web.web"], 1);
    let new_ip = attrs["conpaas.manager.ip"].as_str().unwrap();
    floating(&pool, &[new_ip.to_string()]);
    let new_ids = stack_ids(&attrs);
    let list = probe.held(&s, tenant, &instance).await;
    assert_eq!(roles(&list), [default("manager"), default("agents")]);
    let agents = by_role(&list, "agents");
    assert_eq!(new_ids[1], ("agents".to_string(), agents.id.clone()));
    assert!(!old.contains(&agents.id), "a new agents stack: {agents}");
    assert_eq!(agents.servers(), 3);
    assert_eq!(agents.parameter("manager_ip"), new_ip);

    // delete: the stacks, then the instance
    let a = call(&c, Method::DELETE, &url, &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(call(&c, Method::GET, &url, &h, "").await.status, 404);
    assert_eq!(probe.stacks(&s, tenant, &instance).await, None);
    let new: Vec<String> = new_ids.into_iter().map(|(_, id)| id).collect();
    assert!(
        probe.gone(&s, tenant, &instance, &new).await,
        "{new:?} deleted"
    );
}
on_both_backends!(conpaas_lifecycle);

async fn a_service_on_a_named_cloud_gets_its_own_agents_stack(backend: Backend) {
    let probe = backend.probe();
    let dir = tempfile::tempdir().unwrap();
    // The edge cloud: an embedded engine of its own with its own address
    // pools, or a second backend on the same Heat.
    let (clouds, edge_pool) = match backend.heat_url() {
        None => (
            "clouds:\n  edge:\n    backend: embedded\n    embedded: {resource_delay: 0s, signal_delay: 10ms, \
             private_network: {name: private, cidr: 10.8.0.0/16}, \
             floating_network: {name: public, cidr: 192.168.240.0/24}}\n"
                .to_string(),
            "192.168.240.",
        ),
        Some(heat) => {
            let edge = local_heat_with_floating_ips(heat).await;
            let indented: String = edge.lines().map(|l| format!("    {l}\n")).collect();
            (format!("clouds:\n  edge:\n{indented}"), FLOATING_IP_PREFIX)
        }
    };
    let default_pool = pool(&backend);
    let mut s = start_with(serve_args(&backend, dir.path(), &clouds).await);
    let c = client();
    let tenant = "conpaas-mc";
    let h = mcn(tenant);

    // An unknown cloud is a 400 naming it and the clouds there are;
    // nothing is created.
    let mars = r#"conpaas.services="{\"web\": {\"type\": \"php\"}, \"db\": {\"type\": \"mysql\", \"cloud\": \"mars\"}}""#;
    refused(&s, tenant, mars, &["unknown cloud 'mars'", "default, edge"]).await;

    // The database on the edge cloud, the web service on the default one.
    let (url, instance) = created(
        &s,
        tenant,
        r#"conpaas.services="{\"web\": {\"type\": \"php\"}, \"db\": {\"type\": \"mysql\", \"cloud\": \"edge\"}}""#,
    )
    .await;
    let attrs = lifecycle(&backend, &url, tenant, "deploy").await;
    assert_eq!(attrs["occi.mcn.stack.state"], "CREATE_COMPLETE");
    let list = probe.held(&s, tenant, &instance).await;
    let mut placed = roles(&list);
    placed.sort();
    let on = |role: &str, cloud: &str| (role.to_string(), cloud.to_string());
    assert_eq!(
        placed,
        [
            on("agents", "default"),
            on("agents-edge", "edge"),
            on("manager", "default")
        ]
    );
    for stack in &list {
        assert_eq!(stack.status, "CREATE_COMPLETE", "{stack}");
    }
    assert_eq!(by_role(&list, "agents").servers(), 1);
    assert_eq!(by_role(&list, "agents-edge").servers(), 1);
    let edge = addresses(&attrs, "conpaas.agents.edge.db.mysql");
    assert_eq!(edge.len(), 1, "{attrs}");
    assert!(
        is_address_in(&edge[0], edge_pool),
        "a floating address of the edge cloud: {edge:?}"
    );
    let web = addresses(&attrs, "conpaas.agents.default.web.proxybackendweb");
    assert_eq!(web.len(), 1);
    floating(&default_pool, &web);
    assert!(attrs.get("conpaas.agents.default.db.mysql").is_none());

    // A restart keeps the stacks of both clouds (on the embedded engines,
    // the edge engine's under <state-dir>/clouds/edge).
    let before: Vec<(String, String, String)> = list
        .iter()
        .map(|e| (e.role.clone(), e.id.clone(), e.status.clone()))
        .collect();
    let exit = s.terminate(std::time::Duration::from_secs(20));
    assert!(exit.success(), "{exit:?}");
    let s = s.restart();
    let url = s.url(&instance);
    done(&backend, &url, tenant).await;
    let list = probe.held(&s, tenant, &instance).await;
    let after: Vec<(String, String, String)> = list
        .iter()
        .map(|e| (e.role.clone(), e.id.clone(), e.status.clone()))
        .collect();
    assert_eq!(after, before, "the same stacks after a restart");
    assert_eq!(by_role(&list, "agents-edge").servers(), 1);

    // provision: both agents stacks learn the manager's address
    let attrs = lifecycle(&backend, &url, tenant, "provision").await;
    let manager_ip = attrs["conpaas.manager.ip"]
        .as_str()
        .expect("manager address");
    let list = probe.held(&s, tenant, &instance).await;
    for role in ["agents", "agents-edge"] {
        assert_eq!(by_role(&list, role).parameter("manager_ip"), manager_ip);
    }

    // add_nodes on an unknown cloud is a 400; on the edge cloud, an
    // update of that cloud's stack only
    let a = action(
        &url,
        &h,
        "add_nodes",
        r#"conpaas.service="web", conpaas.nodes="{\"web\": 1}", conpaas.cloud="mars""#,
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("unknown cloud 'mars'"), "{}", a.body);
    let edge_stack = by_role(&list, "agents-edge").clone();
    let default_stack = by_role(&list, "agents").clone();
    let edge_updates = probe.updates(&s, tenant, &edge_stack).await;
    let default_updates = probe.updates(&s, tenant, &default_stack).await;
    let attrs = act(
        &backend,
        &url,
        tenant,
        "add_nodes",
        r#"conpaas.service="web", conpaas.nodes="{\"web\": 1}", conpaas.cloud="edge""#,
    )
    .await;
    let list = probe.held(&s, tenant, &instance).await;
    assert_eq!(by_role(&list, "agents-edge").servers(), 2);
    assert_eq!(by_role(&list, "agents").servers(), 1);
    assert_eq!(
        probe.updates(&s, tenant, &edge_stack).await,
        edge_updates + 1
    );
    assert_eq!(
        probe.updates(&s, tenant, &default_stack).await,
        default_updates,
        "the default cloud's stack is not touched"
    );
    let edge_web = addresses(&attrs, "conpaas.agents.edge.web.web");
    assert_eq!(edge_web.len(), 1, "{attrs}");
    assert!(is_address_in(&edge_web[0], edge_pool), "{edge_web:?}");

    // delete: every stack on both clouds, then the instance
    let ids: Vec<String> = list.iter().map(|e| e.id.clone()).collect();
    let a = call(&c, Method::DELETE, &url, &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(call(&c, Method::GET, &url, &h, "").await.status, 404);
    assert_eq!(probe.stacks(&s, tenant, &instance).await, None);
    assert!(
        probe.gone(&s, tenant, &instance, &ids).await,
        "{ids:?} deleted"
    );
}
on_both_backends!(a_service_on_a_named_cloud_gets_its_own_agents_stack);

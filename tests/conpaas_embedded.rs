//! The ConPaaS plugin through the OCCI API of the real binary on the
//! embedded engine (no `--backend`: the default): create, deploy,
//! provision (the manager has a floating IP here), add_nodes and
//! remove_nodes as updates of the agents stack, stop, start, delete; and
//! a service placed on a named cloud of the config file (`clouds:`), with
//! what the engines received seen through `GET /admin/stacks`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;
mod conpaas_support;
mod embedded_support;

use std::time::Duration;

use common::*;
use conpaas_support::*;
use embedded_support::*;
use reqwest::Method;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// Runs action `term` (accepted, settled, succeeded); the rendering.
async fn act(url: &str, h: &[(&str, &str)], term: &str, params: &str) -> Value {
    act_and_settle(url, h, term, params, WAIT, Duration::from_millis(50)).await
}

/// Polls the instance until no operation runs; its rendering as JSON.
async fn settled(url: &str, h: &[(&str, &str)]) -> Value {
    settled_within(url, h, WAIT, Duration::from_millis(50)).await
}

/// The application's stacks on the engines, by role, in the order held.
async fn app_stacks(s: &Server, tenant: &str, instance: &str) -> Vec<Value> {
    let (status, doc) = admin_stacks(s, tenant, instance).await;
    assert_eq!(status, 200, "{doc}");
    stacks(&doc)
}

fn roles(list: &[Value]) -> Vec<(String, String)> {
    list.iter()
        .map(|s| {
            (
                s["role"].as_str().unwrap_or_default().to_string(),
                s["cloud"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn servers(entry: &Value) -> usize {
    resources_of(entry, "OS::Nova::Server").len()
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

fn instance_path(s: &Server, url: &str) -> String {
    url.strip_prefix(&s.base)
        .expect("a location on this server")
        .to_string()
}

async fn create(s: &Server, h: &[(&str, &str)], attributes: &str) -> Answer {
    let category = format!("conpaas; scheme=\"{SM}\"; class=\"kind\"");
    let mut create = h.to_vec();
    create.push(("Category", category.as_str()));
    create.push(("X-OCCI-Attribute", attributes));
    call(&client(), Method::POST, &s.url("/conpaas/"), &create, "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conpaas_lifecycle_through_the_occi_api_on_the_embedded_engine() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(embedded_args(dir.path(), ""));
    let c = client();
    let tenant = "conpaas-emb";
    let h = mcn(tenant);

    // create
    let a = create(
        &s,
        &h,
        r#"conpaas.application.name="Sudoku example", conpaas.services="{\"web\": {\"type\": \"php\"}, \"db\": {\"type\": \"mysql\"}}", conpaas.flavor="m1.micro""#,
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let url = a.header("location");
    let instance = instance_path(&s, &url);
    let doc = settled(&url, &h).await;
    assert_eq!(doc["attributes"]["conpaas.application.state"], "INIT");
    assert!(app_stacks(&s, tenant, &instance).await.is_empty());

    // deploy: the manager stack, then the agents with one node per service
    let a = call(&c, Method::POST, &format!("{url}?action=deploy"), &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let doc = settled(&url, &h).await;
    no_error(&doc);
    let attrs = &doc["attributes"];
    assert_eq!(attrs["occi.so.phase"], "deployed", "{doc}");
    assert_eq!(attrs["occi.mcn.stack.state"], "CREATE_COMPLETE");
    assert_eq!(attrs["conpaas.application.state"], "RUNNING");
    let manager_ip = attrs["conpaas.manager.ip"]
        .as_str()
        .expect("manager address")
        .to_string();
    assert!(is_address_in(&manager_ip, "172.24."), "{manager_ip}");
    assert_eq!(
        attrs["conpaas.manager.url"],
        format!("https://{manager_ip}:443/").as_str()
    );
    let list = app_stacks(&s, tenant, &instance).await;
    assert_eq!(
        roles(&list),
        [
            ("manager".to_string(), "default".to_string()),
            ("agents".to_string(), "default".to_string())
        ]
    );
    let ids = stack_ids(attrs);
    assert_eq!(ids[0].1, list[0]["id"].as_str().unwrap());
    assert_eq!(ids[1].1, list[1]["id"].as_str().unwrap());
    let manager = stack(&list, "manager");
    assert_eq!(stack_status(manager), "CREATE_COMPLETE");
    assert_eq!(parameter(manager, "flavor"), "m1.micro");
    assert_eq!(parameter(manager, "application"), "Sudoku example");
    assert_eq!(servers(manager), 1);
    let agents = stack(&list, "agents");
    assert_eq!(stack_status(agents), "CREATE_COMPLETE");
    assert_eq!(parameter(agents, "manager_ip"), "");
    assert_eq!(servers(agents), 2);
    let web = addresses(attrs, "conpaas.agents.default.web.proxybackendweb");
    let db = addresses(attrs, "conpaas.agents.default.db.mysql");
    assert_eq!((web.len(), db.len()), (1, 1), "{doc}");
    for ip in web.iter().chain(&db) {
        assert!(is_address_in(ip, "172.24."), "a floating address: {ip}");
    }
    assert_ne!(web, db);
    let agents_name = agents["name"].as_str().unwrap().to_string();

    // provision: the agents learn the manager's address; the services run
    let a = call(&c, Method::POST, &format!("{url}?action=provision"), &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let doc = settled(&url, &h).await;
    no_error(&doc);
    assert_eq!(doc["attributes"]["occi.so.phase"], "provisioned", "{doc}");
    assert_eq!(doc["attributes"]["conpaas.service.web.state"], "RUNNING");
    assert_eq!(doc["attributes"]["conpaas.service.db.state"], "RUNNING");
    let list = app_stacks(&s, tenant, &instance).await;
    let agents = stack(&list, "agents");
    assert_eq!(stack_status(agents), "UPDATE_COMPLETE");
    assert_eq!(parameter(agents, "manager_ip"), manager_ip);
    let updates = settled_count(&s.log(), tenant, &agents_name, "UPDATE_COMPLETE");

    // add_nodes: one POST, one update of the agents stack, two more servers
    let doc = act(
        &url,
        &h,
        "add_nodes",
        r#"conpaas.service="web", conpaas.nodes="{\"web\": 2}""#,
    )
    .await;
    assert_eq!(doc["attributes"]["conpaas.nodes.web.web"], 2);
    assert_eq!(
        addresses(&doc["attributes"], "conpaas.agents.default.web.web").len(),
        2
    );
    let list = app_stacks(&s, tenant, &instance).await;
    assert_eq!(servers(stack(&list, "agents")), 4);
    assert_eq!(stack_status(stack(&list, "agents")), "UPDATE_COMPLETE");
    assert_eq!(
        stack(&list, "agents")["id"],
        list[1]["id"],
        "the same agents stack"
    );
    assert_eq!(
        settled_count(&s.log(), tenant, &agents_name, "UPDATE_COMPLETE"),
        updates + 1,
        "one stack update"
    );

    // remove_nodes: more than exist is a 400 and changes nothing
    let a = action(
        &url,
        &h,
        "remove_nodes",
        r#"conpaas.service="web", conpaas.nodes="{\"web\": 3}""#,
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("cannot remove 3 'web' nodes"), "{}", a.body);
    let list = app_stacks(&s, tenant, &instance).await;
    assert_eq!(servers(stack(&list, "agents")), 4);
    assert_eq!(
        settled_count(&s.log(), tenant, &agents_name, "UPDATE_COMPLETE"),
        updates + 1,
        "no stack update"
    );
    let doc = act(
        &url,
        &h,
        "remove_nodes",
        r#"conpaas.service="web", conpaas.nodes="{\"web\": 1}""#,
    )
    .await;
    assert_eq!(doc["attributes"]["conpaas.nodes.web.web"], 1);
    let list = app_stacks(&s, tenant, &instance).await;
    assert_eq!(servers(stack(&list, "agents")), 3);
    assert_eq!(
        settled_count(&s.log(), tenant, &agents_name, "UPDATE_COMPLETE"),
        updates + 2
    );

    // stop: every stack deleted, the nodes remembered
    let doc = act(&url, &h, "stop", "").await;
    assert_eq!(doc["attributes"]["conpaas.application.state"], "STOPPED");
    assert_eq!(doc["attributes"]["occi.mcn.stack.id"], "N/A");
    assert!(app_stacks(&s, tenant, &instance).await.is_empty());

    // start: the manager and the same nodes come back, on new stacks
    let doc = act(&url, &h, "start", "").await;
    let attrs = &doc["attributes"];
    assert_eq!(attrs["conpaas.application.state"], "RUNNING");
    let new_ip = attrs["conpaas.manager.ip"].as_str().unwrap();
    assert!(is_address_in(new_ip, "172.24."), "{new_ip}");
    let list = app_stacks(&s, tenant, &instance).await;
    assert_eq!(list.len(), 2);
    assert_ne!(
        stack(&list, "agents")["id"],
        Value::String(ids[1].1.clone())
    );
    assert_eq!(servers(stack(&list, "agents")), 3);
    assert_eq!(parameter(stack(&list, "agents"), "manager_ip"), new_ip);
    assert_eq!(attrs["conpaas.nodes.web.web"], 1);

    // delete: the stacks and the instance go
    let a = call(&c, Method::DELETE, &url, &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(call(&c, Method::GET, &url, &h, "").await.status, 404);
    let (status, doc) = admin_stacks(&s, tenant, &instance).await;
    assert_eq!(status, 404, "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_on_a_named_cloud_gets_its_own_agents_stack() {
    let dir = tempfile::tempdir().unwrap();
    // The edge cloud is an engine of its own, with its own address pools.
    let clouds = "clouds:\n  edge:\n    backend: embedded\n    embedded: {resource_delay: 0s, signal_delay: 10ms, \
                  private_network: {name: private, cidr: 10.8.0.0/16}, \
                  floating_network: {name: public, cidr: 192.168.240.0/24}}\n";
    let mut s = Server::start_with(embedded_args(dir.path(), clouds));
    let c = client();
    let tenant = "conpaas-mc";
    let h = mcn(tenant);

    // An unknown cloud is a 400 naming it; nothing is created.
    let a = create(
        &s,
        &h,
        r#"conpaas.services="{\"web\": {\"type\": \"php\"}, \"db\": {\"type\": \"mysql\", \"cloud\": \"mars\"}}""#,
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        a.body.contains("unknown cloud 'mars'") && a.body.contains("default, edge"),
        "{}",
        a.body
    );
    assert_eq!(
        call(&c, Method::GET, &s.url("/conpaas/"), &h, "")
            .await
            .body,
        ""
    );

    // The database on the edge cloud, the web service on the default one.
    let a = create(
        &s,
        &h,
        r#"conpaas.services="{\"web\": {\"type\": \"php\"}, \"db\": {\"type\": \"mysql\", \"cloud\": \"edge\"}}""#,
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let url = a.header("location");
    let instance = instance_path(&s, &url);
    let a = call(&c, Method::POST, &format!("{url}?action=deploy"), &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let doc = settled(&url, &h).await;
    no_error(&doc);
    assert_eq!(doc["attributes"]["occi.mcn.stack.state"], "CREATE_COMPLETE");
    let list = app_stacks(&s, tenant, &instance).await;
    let mut placed = roles(&list);
    placed.sort();
    assert_eq!(
        placed,
        [
            ("agents".to_string(), "default".to_string()),
            ("agents-edge".to_string(), "edge".to_string()),
            ("manager".to_string(), "default".to_string()),
        ]
    );
    for entry in &list {
        assert_eq!(stack_status(entry), "CREATE_COMPLETE", "{entry}");
    }
    assert_eq!(servers(stack(&list, "agents")), 1);
    assert_eq!(servers(stack(&list, "agents-edge")), 1);
    let attrs = &doc["attributes"];
    let edge = addresses(attrs, "conpaas.agents.edge.db.mysql");
    assert_eq!(edge.len(), 1, "{doc}");
    assert!(
        is_address_in(&edge[0], "192.168.240."),
        "a floating address of the edge engine: {edge:?}"
    );
    let web = addresses(attrs, "conpaas.agents.default.web.proxybackendweb");
    assert_eq!(web.len(), 1);
    assert!(
        is_address_in(&web[0], "172.24."),
        "a floating address of the default engine: {web:?}"
    );
    assert!(attrs.get("conpaas.agents.default.db.mysql").is_none());
    let edge_name = stack(&list, "agents-edge")["name"]
        .as_str()
        .unwrap()
        .to_string();

    // A restart keeps the stacks of both clouds (the edge engine's under
    // <state-dir>/clouds/edge).
    let before: Vec<(Value, Value, String)> = list
        .iter()
        .map(|e| (e["role"].clone(), e["id"].clone(), stack_status(e)))
        .collect();
    let exit = s.terminate(Duration::from_secs(20));
    assert!(exit.success(), "{exit:?}");
    let s = s.restart();
    let url = s.url(&instance);
    settled(&url, &h).await;
    let list = app_stacks(&s, tenant, &instance).await;
    let after: Vec<(Value, Value, String)> = list
        .iter()
        .map(|e| (e["role"].clone(), e["id"].clone(), stack_status(e)))
        .collect();
    assert_eq!(after, before, "the same stacks after a restart");
    assert_eq!(servers(stack(&list, "agents-edge")), 1);

    // provision: both agents stacks learn the manager's address
    let a = call(&c, Method::POST, &format!("{url}?action=provision"), &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let doc = settled(&url, &h).await;
    no_error(&doc);
    let manager_ip = doc["attributes"]["conpaas.manager.ip"]
        .as_str()
        .expect("manager address")
        .to_string();
    let list = app_stacks(&s, tenant, &instance).await;
    for role in ["agents", "agents-edge"] {
        assert_eq!(parameter(stack(&list, role), "manager_ip"), manager_ip);
    }

    // add_nodes on the edge cloud: an update of that cloud's stack only
    let a = action(
        &url,
        &h,
        "add_nodes",
        r#"conpaas.service="web", conpaas.nodes="{\"web\": 1}", conpaas.cloud="mars""#,
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("unknown cloud 'mars'"), "{}", a.body);
    let edge_updates = settled_count(&s.log(), tenant, &edge_name, "UPDATE_COMPLETE");
    let doc = act(
        &url,
        &h,
        "add_nodes",
        r#"conpaas.service="web", conpaas.nodes="{\"web\": 1}", conpaas.cloud="edge""#,
    )
    .await;
    let list = app_stacks(&s, tenant, &instance).await;
    assert_eq!(servers(stack(&list, "agents-edge")), 2);
    assert_eq!(servers(stack(&list, "agents")), 1);
    assert_eq!(
        settled_count(&s.log(), tenant, &edge_name, "UPDATE_COMPLETE"),
        edge_updates + 1
    );
    let edge_web = addresses(&doc["attributes"], "conpaas.agents.edge.web.web");
    assert_eq!(edge_web.len(), 1, "{doc}");
    assert!(is_address_in(&edge_web[0], "192.168.240."), "{edge_web:?}");

    // delete: every stack on both clouds, then the instance
    let a = call(&c, Method::DELETE, &url, &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(call(&c, Method::GET, &url, &h, "").await.status, 404);
    let (status, _) = admin_stacks(&s, tenant, &instance).await;
    assert_eq!(status, 404);
}

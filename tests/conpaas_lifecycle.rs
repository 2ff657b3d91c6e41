//! The ConPaaS plugin through the OCCI API of the real binary, on the real
//! local Heat: create, deploy, provision, add_nodes, remove_nodes, stop,
//! start and delete, with what Heat received checked at each step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;
mod conpaas_support;

use std::time::Duration;

use common::*;
use conpaas_support::*;
use reqwest::Method;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(240);

/// Runs action `term` (accepted, settled, succeeded); the rendering.
async fn act(url: &str, h: &[(&str, &str)], term: &str, params: &str) -> Value {
    act_and_settle(url, h, term, params, WAIT, Duration::from_millis(300)).await
}

/// Polls the instance until no operation runs; its rendering as JSON.
async fn settled(url: &str, h: &[(&str, &str)]) -> Value {
    settled_within(url, h, WAIT, Duration::from_millis(300)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conpaas_lifecycle_through_the_occi_api_on_the_local_heat() {
    let Some(heat) = heat_url("conpaas_lifecycle_through_the_occi_api_on_the_local_heat") else {
        return;
    };
    let provider = serve_floating_ip_provider().await;
    let dir = tempfile::tempdir().unwrap();
    let config = local_heat_config(dir.path(), &heat, &provider);
    let s = Server::start_with(vec!["--config".into(), config.display().to_string()]);
    let c = client();
    let h = mcn("conpaas");

    // A caller's mistake is a 400 naming the attribute, and creates nothing.
    let category = format!("conpaas; scheme=\"{SM}\"; class=\"kind\"");
    let mut bad = h.clone();
    bad.push(("Category", category.as_str()));
    bad.push((
        "X-OCCI-Attribute",
        r#"conpaas.services="{\"db\": {\"type\": \"postgres\"}}""#,
    ));
    let a = call(&c, Method::POST, &s.url("/conpaas/"), &bad, "").await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        a.body.contains("conpaas.services") && a.body.contains("unknown service type 'postgres'"),
        "{}",
        a.body
    );
    assert_eq!(
        call(&c, Method::GET, &s.url("/conpaas/"), &h, "")
            .await
            .body,
        ""
    );

    // create
    let mut create = h.clone();
    create.push(("Category", category.as_str()));
    create.push((
        "X-OCCI-Attribute",
        r#"conpaas.application.name="Sudoku example", conpaas.services="{\"web\": {\"type\": \"php\"}, \"db\": {\"type\": \"mysql\"}}", conpaas.flavor="m1.micro""#,
    ));
    let a = call(&c, Method::POST, &s.url("/conpaas/"), &create, "").await;
    assert_eq!(a.status, 201, "{}", a.body);
    let url = a.header("location");
    let doc = settled(&url, &h).await;
    assert_eq!(
        doc["attributes"]["conpaas.application.state"], "INIT",
        "{doc}"
    );
    assert_eq!(doc["attributes"]["conpaas.image"], "conpaas");
    assert_eq!(doc["attributes"]["occi.mcn.stack.state"], "uninitialized");

    // deploy: manager stack, then the agents
    let a = call(&c, Method::POST, &format!("{url}?action=deploy"), &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let doc = settled(&url, &h).await;
    no_error(&doc);
    let attrs = &doc["attributes"];
    assert_eq!(attrs["occi.so.phase"], "deployed", "{doc}");
    assert_eq!(attrs["occi.mcn.stack.state"], "CREATE_COMPLETE");
    assert_eq!(attrs["conpaas.application.state"], "RUNNING");
    assert_eq!(attrs["conpaas.nodes.web.proxybackendweb"], 1);
    assert_eq!(attrs["conpaas.nodes.db.mysql"], 1);
    assert_eq!(attrs["conpaas.service.web.state"], "INIT");
    let manager_ip = attrs["conpaas.manager.ip"]
        .as_str()
        .expect("manager address")
        .to_string();
    assert!(manager_ip.starts_with("198.51.100."), "{manager_ip}");
    let ids = stack_ids(attrs);
    let roles: Vec<&str> = ids.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(roles, ["manager", "agents"]);
    let manager = heat_stack(&heat, &ids[0].1)
        .await
        .expect("manager stack in Heat");
    assert_eq!(manager["parameters"]["flavor"], "m1.micro");
    assert_eq!(manager["parameters"]["application"], "Sudoku example");
    let agents = heat_stack(&heat, &ids[1].1)
        .await
        .expect("agents stack in Heat");
    assert_eq!(agents["parameters"]["manager_ip"], "");
    assert_eq!(heat_servers(&heat, &agents).await, 2);

    // provision: the agents learn their manager's address
    let a = call(&c, Method::POST, &format!("{url}?action=provision"), &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let doc = settled(&url, &h).await;
    no_error(&doc);
    assert_eq!(doc["attributes"]["occi.so.phase"], "provisioned");
    assert_eq!(doc["attributes"]["conpaas.service.web.state"], "RUNNING");
    let agents = heat_stack(&heat, &ids[1].1).await.unwrap();
    assert_eq!(agents["stack_status"], "UPDATE_COMPLETE");
    assert_eq!(agents["parameters"]["manager_ip"], manager_ip.as_str());
    let mut actions: Vec<String> = doc["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().rsplit('#').next().unwrap().to_string())
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        ["add_nodes", "notify", "remove_nodes", "start", "stop"]
    );

    // add_nodes: one POST, one stack update, two more servers
    let doc = act(
        &url,
        &h,
        "add_nodes",
        r#"conpaas.service="web", conpaas.nodes="{\"web\": 2}""#,
    )
    .await;
    assert_eq!(doc["attributes"]["conpaas.nodes.web.web"], 2);
    let agents = heat_stack(&heat, &ids[1].1).await.unwrap();
    assert_eq!(agents["stack_status"], "UPDATE_COMPLETE");
    assert_eq!(heat_servers(&heat, &agents).await, 4);
    let web = &doc["attributes"]["conpaas.agents.default.web.web"];
    assert_eq!(web.as_array().map(Vec::len), Some(2), "{doc}");

    // remove_nodes: more than exist is a 400 and changes nothing
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
    let doc = act(
        &url,
        &h,
        "remove_nodes",
        r#"conpaas.service="web", conpaas.nodes="{\"web\": 1}""#,
    )
    .await;
    assert_eq!(doc["attributes"]["conpaas.nodes.web.web"], 1);
    assert_eq!(
        heat_servers(&heat, &heat_stack(&heat, &ids[1].1).await.unwrap()).await,
        3
    );

    // stop: every stack is deleted, the nodes remembered
    let doc = act(&url, &h, "stop", "").await;
    assert_eq!(doc["attributes"]["conpaas.application.state"], "STOPPED");
    assert_eq!(doc["attributes"]["occi.mcn.stack.id"], "N/A");
    for (_, id) in &ids {
        assert!(heat_stack(&heat, id).await.is_none(), "stack {id} deleted");
    }
    let a = action(
        &url,
        &h,
        "add_nodes",
        r#"conpaas.service="web", conpaas.nodes="{\"web\": 1}""#,
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("STOPPED"), "{}", a.body);

    // start: the manager and the same nodes come back
    let doc = act(&url, &h, "start", "").await;
    let attrs = &doc["attributes"];
    assert_eq!(attrs["conpaas.application.state"], "RUNNING");
    let new_ids = stack_ids(attrs);
    assert_eq!(new_ids.len(), 2);
    let new_ip = attrs["conpaas.manager.ip"].as_str().unwrap();
    let agents_id = &new_ids.iter().find(|(r, _)| r == "agents").unwrap().1;
    let agents = heat_stack(&heat, agents_id).await.unwrap();
    assert_eq!(agents["parameters"]["manager_ip"], new_ip);
    assert_eq!(heat_servers(&heat, &agents).await, 3);

    // delete: agents, then manager
    let a = call(&c, Method::DELETE, &url, &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(call(&c, Method::GET, &url, &h, "").await.status, 404);
    for (_, id) in &new_ids {
        assert!(heat_stack(&heat, id).await.is_none(), "stack {id} deleted");
    }
}

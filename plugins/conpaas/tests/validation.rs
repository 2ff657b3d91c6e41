//! Every attribute and every action parameter of the `conpaas` kind with a
//! good and a bad value, as `validate` sees them before the server accepts
//! a request: a bad value is an error naming it (a 400), a good one passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod support;

use occi_so_plugin_conpaas::kind::*;
use occi_so_plugin_conpaas::Conpaas;
use occi_so_sdk::{Attributes, Operation, Orchestrator, PluginError};
use serde_json::{json, Value};
use support::attributes;

fn plugin() -> Conpaas {
    Conpaas::new()
        .unwrap()
        .with_clouds(vec!["ec2virginia".into()])
}

async fn design(plugin: &Conpaas, given: &[(&str, Value)]) -> Result<(), PluginError> {
    plugin
        .validate(&Operation::Design, &attributes(plugin, given))
        .await
}

fn names(e: &PluginError) -> (&str, &str) {
    match e {
        PluginError::InvalidAttribute { name, message } => (name, message),
        other => panic!("expected an error naming an attribute, got {other:?}"),
    }
}

#[tokio::test]
async fn every_attribute_with_a_good_and_a_bad_value() {
    let p = plugin();
    design(&p, &[]).await.expect("the defaults are valid");
    let cases: Vec<(&str, Value, Value, &str)> = vec![
        (
            ATTR_APPLICATION,
            json!("MediaWiki"),
            json!(""),
            "must not be empty",
        ),
        (
            ATTR_APPLICATION,
            json!("Sudoku example"),
            json!("a\u{7}b"),
            "control character",
        ),
        (
            ATTR_SERVICES,
            json!({"wiki": {"type": "php"}, "db": {"type": "mysql", "nodes": {"mysql": "2"}}}),
            json!({"db": {"type": "postgres"}}),
            "unknown service type 'postgres'",
        ),
        (
            ATTR_SERVICES,
            json!({"fs": {"type": "xtreemfs", "nodes": {"dir": 1, "mrc": 1, "osd": 2}}}),
            json!({"fs": {"type": "xtreemfs", "nodes": {"web": 1}}}),
            "unknown role 'web' for service type 'xtreemfs'",
        ),
        (
            ATTR_SERVICES,
            json!({"jobs": {"type": "generic", "cloud": "ec2virginia"}}),
            json!({"jobs": {"type": "generic", "cloud": "azure"}}),
            "unknown cloud 'azure' (configured clouds: default, ec2virginia)",
        ),
        (
            ATTR_CLOUD,
            json!("ec2virginia"),
            json!("azure"),
            "unknown cloud 'azure'",
        ),
        (
            ATTR_CLOUDS,
            json!({"ec2virginia": {"image": "ami-41890256", "flavor": "t1.micro", "key_name": "my_keyname", "security_group": "my_securitygroup", "auto_assign_floating_ip": true}}),
            json!({"ec2virginia": {"REGION": "ec2.us-east-1.amazonaws.com"}}),
            "unknown setting 'REGION'",
        ),
        (
            ATTR_IMAGE,
            json!("conpaas-2.1.0"),
            json!(""),
            "must not be empty",
        ),
        (
            ATTR_FLAVOR,
            json!("m1.micro"),
            json!("m1.\nsmall"),
            "control character",
        ),
        (
            ATTR_KEY_NAME,
            json!("test-key"),
            json!("k".repeat(256)),
            "longer than 255",
        ),
        (
            ATTR_SECURITY_GROUP,
            json!("default"),
            json!("g\u{0}"),
            "control character",
        ),
        (
            ATTR_NETWORK,
            json!("conpaas-net"),
            json!(""),
            "must not be empty",
        ),
        (
            ATTR_FLOATING_NETWORK,
            json!("ext-net"),
            json!(""),
            "must not be empty",
        ),
        (
            ATTR_AUTO_FIP,
            json!(true),
            json!("sometimes"),
            "true or false",
        ),
        (
            ATTR_DIRECTOR_URL,
            json!("https://director.example.org:5555"),
            json!("https://director.example.org/$(reboot)"),
            "not a usable URL",
        ),
    ];
    for (name, good, bad, words) in cases {
        design(&p, &[(name, good.clone())])
            .await
            .unwrap_or_else(|e| panic!("{name}={good}: {e}"));
        let e = design(&p, &[(name, bad.clone())]).await.unwrap_err();
        let (attr, message) = names(&e);
        assert_eq!(attr, name, "{name}={bad}: {e}");
        assert!(message.contains(words), "{name}={bad}: {message}");
    }
}

/// Attributes as they are once the application runs: the mirror the
/// plugin keeps (`conpaas.application.state`, `conpaas.nodes`).
fn running(p: &Conpaas) -> Attributes {
    let mut a = attributes(
        p,
        &[(
            ATTR_SERVICES,
            json!({"web": {"type": "php"}, "db": {"type": "mysql"}}),
        )],
    );
    a.insert(ATTR_STATE.into(), json!("RUNNING"));
    a.insert(
        ATTR_NODES.into(),
        json!({"web": {"default": {"proxybackendweb": 1}}, "db": {"default": {"mysql": 1}}}),
    );
    a
}

async fn action(
    p: &Conpaas,
    attrs: &Attributes,
    term: &str,
    params: Value,
) -> Result<(), PluginError> {
    let parameters: Attributes = serde_json::from_value(params).unwrap();
    p.validate(
        &Operation::Action {
            term: term.into(),
            parameters,
        },
        attrs,
    )
    .await
}

#[tokio::test]
async fn every_action_parameter_with_a_good_and_a_bad_value() {
    let p = plugin();
    let a = running(&p);
    let ok = |params: Value| (params, None::<(&str, &str)>);
    let bad =
        |params: Value, name: &'static str, words: &'static str| (params, Some((name, words)));
    let cases = [
        ok(json!({PARAM_SERVICE: "web", PARAM_NODES: {"web": 2}})),
        ok(json!({PARAM_SERVICE: "web", PARAM_NODES: {"proxy": 1, "web": 1, "backend": 1}})),
        ok(json!({PARAM_SERVICE: "db", PARAM_NODES: {"glb": "1"}, PARAM_CLOUD: "ec2virginia"})),
        ok(json!({PARAM_SERVICE: "web", PARAM_NODES: {"web": 1}, PARAM_CLOUD: "default"})),
        bad(json!({PARAM_SERVICE: "cache", PARAM_NODES: {"web": 1}}), PARAM_SERVICE, "unknown service 'cache' (services: db, web)"),
        bad(json!({PARAM_NODES: {"web": 1}}), PARAM_SERVICE, "several services (db, web)"),
        bad(json!({PARAM_SERVICE: "web", PARAM_NODES: {"web": -1}}), PARAM_NODES, "whole number"),
        bad(json!({PARAM_SERVICE: "web", PARAM_NODES: {"web": "lots"}}), PARAM_NODES, "whole number"),
        bad(json!({PARAM_SERVICE: "web", PARAM_NODES: {}}), PARAM_NODES, "positive count"),
        bad(json!({PARAM_SERVICE: "web", PARAM_NODES: {"web": 0}}), PARAM_NODES, "positive count"),
        bad(json!({PARAM_SERVICE: "web", PARAM_NODES: {"glb": 1}}), PARAM_NODES, "unknown role 'glb' for service type 'php' (roles add_nodes takes: proxy, web, backend)"),
        bad(json!({PARAM_SERVICE: "web", PARAM_NODES: {"proxybackendweb": 1}}), PARAM_NODES, "starting node"),
        bad(json!({PARAM_SERVICE: "web", PARAM_NODES: {"proxy": 1}}), PARAM_NODES, "stand-alone 'web' node"),
        bad(json!({PARAM_SERVICE: "web", PARAM_NODES: {"web": 65}}), PARAM_NODES, "at most 64"),
        bad(json!({PARAM_SERVICE: "web", PARAM_NODES: "web=2"}), PARAM_NODES, "object of counts"),
        bad(json!({PARAM_SERVICE: "web", PARAM_NODES: {"web": 1}, PARAM_CLOUD: "azure"}), PARAM_CLOUD, "unknown cloud 'azure' (configured clouds: default, ec2virginia)"),
    ];
    for (params, expect) in cases {
        let r = action(&p, &a, ADD_NODES, params.clone()).await;
        match expect {
            None => r.unwrap_or_else(|e| panic!("add_nodes {params}: {e}")),
            Some((name, words)) => {
                let e = r.expect_err(&format!("add_nodes {params}"));
                let (attr, message) = names(&e);
                assert_eq!(attr, name, "add_nodes {params}: {e}");
                assert!(message.contains(words), "add_nodes {params}: {message}");
            }
        }
    }
    let cases = [
        bad(
            json!({PARAM_SERVICE: "web", PARAM_NODES: {"web": 1}}),
            PARAM_NODES,
            "cannot remove 1 'web' node of service 'web': 0 run",
        ),
        bad(
            json!({PARAM_SERVICE: "db", PARAM_NODES: {"mysql": 1}}),
            PARAM_NODES,
            "at least one node doing 'mysql'",
        ),
        bad(
            json!({PARAM_SERVICE: "db", PARAM_NODES: {"glb": 1}, PARAM_CLOUD: "ec2virginia"}),
            PARAM_NODES,
            "0 run on cloud 'ec2virginia'",
        ),
    ];
    for (params, expect) in cases {
        let (name, words) = expect.unwrap();
        let e = action(&p, &a, REMOVE_NODES, params.clone())
            .await
            .expect_err(&format!("remove_nodes {params}"));
        let (attr, message) = names(&e);
        assert_eq!(attr, name, "remove_nodes {params}: {e}");
        assert!(message.contains(words), "remove_nodes {params}: {message}");
    }
    // with more nodes, removal passes; the packed and fixed roles never go
    let mut more = a.clone();
    more.insert(
        ATTR_NODES.into(),
        json!({"web": {"default": {"proxybackendweb": 1, "web": 2}}, "db": {"default": {"mysql": 2}}}),
    );
    action(
        &p,
        &more,
        REMOVE_NODES,
        json!({PARAM_SERVICE: "web", PARAM_NODES: {"web": 2}}),
    )
    .await
    .unwrap();
    action(
        &p,
        &more,
        REMOVE_NODES,
        json!({PARAM_SERVICE: "db", PARAM_NODES: {"mysql": 1}}),
    )
    .await
    .unwrap();
    let mut fs = attributes(&p, &[(ATTR_SERVICES, json!({"fs": {"type": "xtreemfs"}}))]);
    fs.insert(ATTR_STATE.into(), json!("RUNNING"));
    fs.insert(
        ATTR_NODES.into(),
        json!({"fs": {"default": {"dir_mrc_osd": 1, "dir": 1}}}),
    );
    let e = action(&p, &fs, REMOVE_NODES, json!({PARAM_NODES: {"dir": 1}}))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "attribute 'conpaas.nodes': the 'dir' node of a xtreemfs service cannot be removed"
    );
}

#[tokio::test]
async fn start_and_stop_apply_to_the_right_state() {
    let p = plugin();
    let mut a = running(&p);
    action(&p, &a, STOP, json!({})).await.unwrap();
    let e = action(&p, &a, START, json!({})).await.unwrap_err();
    assert!(
        matches!(&e, PluginError::NotApplicable { message, .. } if message.contains("RUNNING, not STOPPED")),
        "{e:?}"
    );
    a.insert(ATTR_STATE.into(), json!("STOPPED"));
    action(&p, &a, START, json!({})).await.unwrap();
    let e = action(&p, &a, STOP, json!({})).await.unwrap_err();
    assert!(matches!(e, PluginError::NotApplicable { .. }), "{e:?}");
    let e = action(
        &p,
        &a,
        ADD_NODES,
        json!({PARAM_SERVICE: "web", PARAM_NODES: {"web": 1}}),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, PluginError::NotApplicable { message, .. } if message.contains("STOPPED; start it first")),
        "{e:?}"
    );
}

#[tokio::test]
async fn an_update_is_checked_like_a_create() {
    let p = plugin();
    let mut a = running(&p);
    a.insert(
        ATTR_SERVICES.into(),
        json!({"web": {"type": "php", "nodes": {"web": 1}}}),
    );
    let e = p
        .validate(&Operation::update(Attributes::new()), &a)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "attribute 'conpaas.services': service 'web': a php service needs at least one node doing 'proxy' (role proxy or proxybackendweb)"
    );
}

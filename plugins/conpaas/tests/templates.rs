//! The templates the plugin sends, for every service type, checked with
//! the heat engine: resources, the security group's ports, each agent's
//! contextualisation (role, service type, manager, cloud) and the outputs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

use std::collections::BTreeMap;

use occi_so_plugin_conpaas::kind::{
    ATTR_AUTO_FIP, ATTR_KEY_NAME, ATTR_SECURITY_GROUP, ATTR_SERVICES,
};
use occi_so_plugin_conpaas::settings::Settings;
use occi_so_plugin_conpaas::template::RenderError;
use occi_so_plugin_conpaas::topology::{parse_services, Placement};
use occi_so_plugin_conpaas::{Conpaas, Rendered, ServiceType};
use occi_so_sdk::Attributes;
use serde_json::{json, Value};

/// The ports the ConPaaS installation guide says must be open.
const CONPAAS_PORTS: [u64; 13] = [
    443, 5555, 80, 8000, 8080, 9000, 3306, 4444, 4567, 4568, 32636, 32638, 32640,
];

fn attrs(pairs: &[(&str, Value)]) -> Attributes {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn agents(
    plugin: &Conpaas,
    attributes: &Attributes,
    cloud: &str,
    manager_ip: &str,
) -> (Rendered, Value) {
    let settings = Settings::from_attributes(attributes, Some(&["b".to_string()])).unwrap();
    let services = parse_services(
        &attributes[ATTR_SERVICES],
        &settings.cloud,
        Some(&["b".to_string()]),
    )
    .unwrap();
    let placement = Placement::startup(&services);
    let r = plugin
        .render_agents(&settings, &services, &placement, cloud, manager_ip)
        .unwrap();
    let resolved = r.resolve().unwrap();
    (r, resolved)
}

fn resources_of_type<'a>(doc: &'a Value, ty: &str) -> BTreeMap<&'a str, &'a Value> {
    doc["resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["type"] == ty)
        .map(|(n, r)| (n.as_str(), r))
        .collect()
}

fn open_ports(doc: &Value) -> Vec<u64> {
    let groups = resources_of_type(doc, "OS::Neutron::SecurityGroup");
    assert_eq!(groups.len(), 1, "one ConPaaS security group");
    let rules = groups.values().next().unwrap()["properties"]["rules"]
        .as_array()
        .unwrap();
    rules
        .iter()
        .map(|r| {
            assert_eq!(r["protocol"], "tcp");
            assert_eq!(r["port_range_min"], r["port_range_max"]);
            assert_eq!(r["remote_ip_prefix"], "0.0.0.0/0");
            r["port_range_min"].as_u64().unwrap()
        })
        .collect()
}

fn user_data(server: &Value) -> &str {
    server["properties"]["user_data"]
        .as_str()
        .expect("user_data resolved to text")
}

#[test]
fn manager_template_has_the_manager_vm_the_conpaas_ports_and_outputs() {
    let plugin = Conpaas::new().unwrap();
    let settings = Settings::from_attributes(
        &attrs(&[
            (ATTR_KEY_NAME, json!("test-key")),
            ("conpaas.application.name", json!("Sudoku example")),
        ]),
        None,
    )
    .unwrap();
    let r = plugin.render_manager(&settings).unwrap();
    assert_eq!(r.parameters["image"], "conpaas");
    assert_eq!(r.parameters["flavor"], "m1.small");
    assert_eq!(r.parameters["application"], "Sudoku example");
    assert!(r.files.contains_key("manager-context.sh"));
    let doc = r.resolve().unwrap();
    assert_eq!(open_ports(&doc), CONPAAS_PORTS);
    let servers = resources_of_type(&doc, "OS::Nova::Server");
    assert_eq!(
        servers.keys().copied().collect::<Vec<_>>(),
        ["manager_server"]
    );
    let server = servers["manager_server"];
    assert_eq!(server["properties"]["image"], "conpaas");
    assert_eq!(server["properties"]["key_name"], "test-key");
    assert_eq!(server["properties"]["metadata"]["conpaas_role"], "manager");
    let ud = user_data(server);
    assert!(ud.starts_with("#!/bin/bash"), "{ud}");
    assert!(ud.contains("[manager]\n"), "{ud}");
    assert!(ud.contains("APP_ID = Sudoku example\n"), "{ud}");
    assert!(ud.contains("CLOUD = default\n"), "{ud}");
    assert!(ud.contains("default-cpsmanager"), "{ud}");
    assert!(
        !ud.contains("%APPLICATION%") && !ud.contains("%CLOUD%"),
        "placeholders filled"
    );
    assert_eq!(resources_of_type(&doc, "OS::Neutron::FloatingIP").len(), 1);
    assert_eq!(resources_of_type(&doc, "OS::Neutron::Port").len(), 1);
    let outputs: Vec<&str> = doc["outputs"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        outputs,
        [
            "conpaas.manager.ip",
            "conpaas.manager.url",
            "conpaas.manager.id"
        ]
    );
    assert_eq!(
        doc["outputs"]["conpaas.manager.ip"]["value"],
        json!({"get_attr": ["manager_floating_ip", "floating_ip_address"]})
    );
}

#[test]
fn manager_without_floating_ip_or_own_group_uses_the_clouds() {
    let plugin = Conpaas::new().unwrap();
    let settings = Settings::from_attributes(
        &attrs(&[
            (ATTR_AUTO_FIP, json!(true)),
            (ATTR_SECURITY_GROUP, json!("default")),
        ]),
        None,
    )
    .unwrap();
    let doc = plugin.render_manager(&settings).unwrap().resolve().unwrap();
    assert!(resources_of_type(&doc, "OS::Neutron::FloatingIP").is_empty());
    assert!(resources_of_type(&doc, "OS::Neutron::SecurityGroup").is_empty());
    let port = &doc["resources"]["manager_port"]["properties"];
    assert_eq!(port["security_groups"], json!(["default"]));
    let server = &doc["resources"]["manager_server"]["properties"];
    assert!(
        server["key_name"].is_null(),
        "no key pair (null: Heat leaves it unset)"
    );
    assert_eq!(
        doc["outputs"]["conpaas.manager.ip"]["value"],
        json!({"get_attr": ["manager_server", "first_address"]})
    );
}

/// Each type with its starting node, and one shape with every role.
#[test]
fn every_service_type_gets_its_agents_with_their_roles() {
    let plugin = Conpaas::new().unwrap();
    type Case = (ServiceType, Value, Vec<(&'static str, u32)>);
    let cases: Vec<Case> = vec![
        (ServiceType::Php, json!(null), vec![("proxybackendweb", 1)]),
        (
            ServiceType::Php,
            json!({"proxy": 1, "web": 2, "backend": 1}),
            vec![("proxy", 1), ("web", 2), ("backend", 1)],
        ),
        (
            ServiceType::Java,
            json!({"proxybackendweb": 1, "backend": 2}),
            vec![("backend", 2), ("proxybackendweb", 1)],
        ),
        (
            ServiceType::Mysql,
            json!({"mysql": 2, "glb": 1}),
            vec![("mysql", 2), ("glb", 1)],
        ),
        (ServiceType::Xtreemfs, json!(null), vec![("dir_mrc_osd", 1)]),
        (
            ServiceType::Xtreemfs,
            json!({"dir": 1, "mrc": 1, "osd": 3}),
            vec![("dir", 1), ("mrc", 1), ("osd", 3)],
        ),
        (
            ServiceType::Generic,
            json!({"master": 1, "node": 2}),
            vec![("master", 1), ("node", 2)],
        ),
        (ServiceType::Helloworld, json!(null), vec![("node", 1)]),
    ];
    for (t, nodes, expect) in cases {
        let mut svc = json!({"type": t.name()});
        if !nodes.is_null() {
            svc["nodes"] = nodes;
        }
        let a = attrs(&[(ATTR_SERVICES, json!({ "svc": svc }))]);
        let (r, doc) = agents(&plugin, &a, "default", "172.24.4.10");
        assert_eq!(r.parameters["manager_ip"], "172.24.4.10");
        assert!(
            !r.parameters.keys().any(|k| k.starts_with("node_")),
            "{:?}",
            r.parameters
        );
        assert_eq!(open_ports(&doc), CONPAAS_PORTS, "{t}");
        let servers = resources_of_type(&doc, "OS::Nova::Server");
        let total: u32 = expect.iter().map(|(_, n)| n).sum();
        assert_eq!(servers.len() as u32, total, "{t}: {:?}", servers.keys());
        assert_eq!(
            resources_of_type(&doc, "OS::Neutron::FloatingIP").len() as u32,
            total
        );
        assert_eq!(
            resources_of_type(&doc, "OS::Neutron::Port").len() as u32,
            total
        );
        for (role, n) in &expect {
            let mut addresses = Vec::new();
            for i in 0..*n {
                let name = format!("svc_{role}_{i}_server");
                let server = servers
                    .get(name.as_str())
                    .unwrap_or_else(|| panic!("{t}: no {name}"));
                let p = &server["properties"];
                assert_eq!(
                    p["name"],
                    json!({"list_join": ["-", [{"get_param": "OS::stack_name"}, "svc", role, i.to_string()]]}),
                    "server name"
                );
                assert_eq!(
                    p["networks"],
                    json!([{"port": {"get_resource": format!("svc_{role}_{i}_port")}}])
                );
                assert_eq!(p["metadata"]["conpaas_role"], *role);
                assert_eq!(p["metadata"]["conpaas_service_type"], t.name());
                assert_eq!(p["metadata"]["conpaas_manager_ip"], "172.24.4.10");
                assert_eq!(p["user_data_update_policy"], "IGNORE");
                let ud = user_data(server);
                assert!(ud.contains(&format!("TYPE = {}\n", t.agent_type())), "{ud}");
                assert!(ud.contains(&format!("ROLE = {role}\n")), "{ud}");
                assert!(
                    ud.contains(&format!("SERVICE_TYPE = {}\n", t.name())),
                    "{ud}"
                );
                assert!(ud.contains("SERVICE_ID = svc\n"), "{ud}");
                assert!(ud.contains("CLOUD = default\n"), "{ud}");
                assert!(ud.contains("MANAGER_IP='172.24.4.10'"), "{ud}");
                assert!(
                    !ud.contains("%ROLE%") && !ud.contains("%MANAGER_IP%"),
                    "{ud}"
                );
                let fip = &doc["resources"][format!("svc_{role}_{i}_floating_ip")];
                assert_eq!(
                    fip["properties"]["port_id"],
                    json!({"get_resource": format!("svc_{role}_{i}_port")})
                );
                addresses.push(json!({"get_attr": [format!("svc_{role}_{i}_floating_ip"), "floating_ip_address"]}));
            }
            assert_eq!(
                doc["outputs"][format!("conpaas.agents.default.svc.{role}")]["value"],
                Value::Array(addresses),
                "{t} {role}"
            );
        }
        assert_eq!(doc["outputs"].as_object().unwrap().len(), expect.len());
    }
}

#[test]
fn agents_before_the_services_start_wait_for_their_manager() {
    let plugin = Conpaas::new().unwrap();
    let a = attrs(&[(ATTR_SERVICES, json!({"hello": {"type": "helloworld"}}))]);
    let (r, doc) = agents(&plugin, &a, "default", "");
    assert_eq!(r.parameters["manager_ip"], "");
    let server = &doc["resources"]["hello_node_0_server"];
    assert_eq!(server["properties"]["metadata"]["conpaas_manager_ip"], "");
    let ud = user_data(server);
    assert!(ud.contains("MANAGER_IP=''"), "{ud}");
    assert!(
        ud.contains("conpaas_manager_ip"),
        "the agent polls its metadata: {ud}"
    );
}

#[test]
fn each_cloud_gets_only_its_own_nodes_and_settings() {
    let plugin = Conpaas::new().unwrap();
    let a = attrs(&[
        (
            ATTR_SERVICES,
            json!({"web": {"type": "php"}, "db": {"type": "mysql", "cloud": "b", "nodes": {"mysql": 2}}}),
        ),
        (
            "conpaas.clouds",
            json!({"b": {"image": "conpaas-b", "auto_assign_floating_ip": true}}),
        ),
    ]);
    let (rb, doc_b) = agents(&plugin, &a, "b", "");
    assert_eq!(rb.parameters["cloud"], "b");
    assert_eq!(rb.parameters["image"], "conpaas-b");
    let servers = resources_of_type(&doc_b, "OS::Nova::Server");
    assert_eq!(
        servers.keys().copied().collect::<Vec<_>>(),
        ["db_mysql_0_server", "db_mysql_1_server"]
    );
    assert!(
        resources_of_type(&doc_b, "OS::Neutron::FloatingIP").is_empty(),
        "auto-assigned on b"
    );
    assert_eq!(
        doc_b["outputs"]["conpaas.agents.b.db.mysql"]["value"],
        json!([{"get_attr": ["db_mysql_0_server", "first_address"]}, {"get_attr": ["db_mysql_1_server", "first_address"]}])
    );
    assert!(user_data(servers["db_mysql_0_server"]).contains("CLOUD = b\n"));
    let (rd, doc_d) = agents(&plugin, &a, "default", "");
    assert_eq!(rd.parameters["image"], "conpaas");
    assert_eq!(
        resources_of_type(&doc_d, "OS::Nova::Server")
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        ["web_proxybackendweb_0_server"]
    );
}

#[test]
fn the_written_templates_are_valid_on_their_own() {
    use occi_so_plugin_conpaas::template::{
        AGENTS_YAML, AGENT_CONTEXT, MANAGER_CONTEXT, MANAGER_YAML,
    };
    for (text, file, body) in [
        (MANAGER_YAML, "manager-context.sh", MANAGER_CONTEXT),
        (AGENTS_YAML, "agent-context.sh", AGENT_CONTEXT),
    ] {
        let files = BTreeMap::from([(file.to_string(), body.to_string())]);
        let t = heat::StackTemplate::parse(
            text,
            heat::Environment::new(),
            files,
            heat::Options::default(),
        )
        .unwrap();
        t.validate(&heat::ParameterValues::new()).unwrap();
    }
}

#[test]
fn a_bad_parameter_is_caught_before_any_stack() {
    let plugin = Conpaas::new().unwrap();
    let settings = Settings::from_attributes(&Attributes::new(), None).unwrap();
    let mut params = settings.stack_parameters("default");
    params.insert("auto_assign_floating_ip".into(), "perhaps".into());
    let e = plugin.templates().manager(params).unwrap_err();
    assert!(matches!(e, RenderError::Manager(_)), "{e:?}");
    assert!(e.to_string().contains("auto_assign_floating_ip"), "{e}");
}

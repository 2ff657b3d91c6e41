//! The HOT templates the IMS plugin generates, per topology: the resources
//! per unit, the service's real ports in the security groups, the outputs,
//! the user_data placeholders and the deployments' inputs, each template
//! parsed and checked by the heat engine as Heat does at stack create.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

use std::collections::BTreeSet;

use heat::{Environment, Files, Options, ParameterValues, StackIdentity, StackTemplate};
use occi_so_plugin_ims::{Generated, ImsPlugin};
use occi_so_sdk::Attributes;
use serde_json::{json, Value};

fn generate(pairs: &[(&str, Value)]) -> Generated {
    let attrs: Attributes = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    static PLUGIN: std::sync::OnceLock<ImsPlugin> = std::sync::OnceLock::new();
    let plugin = PLUGIN.get_or_init(|| ImsPlugin::new().unwrap());
    plugin.render(&attrs).unwrap().2
}

fn resources(g: &Generated) -> &serde_json::Map<String, Value> {
    g.template["resources"].as_object().unwrap()
}

fn of_type<'a>(g: &'a Generated, ty: &str) -> BTreeSet<&'a str> {
    resources(g)
        .iter()
        .filter(|(_, r)| r["type"] == ty)
        .map(|(n, _)| n.as_str())
        .collect()
}

/// `(protocol, min, max)` of every rule of security group `sg-<name>`.
fn ports(g: &Generated, name: &str) -> Vec<(String, Option<u64>, Option<u64>)> {
    resources(g)[&format!("sg-{name}")]["properties"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["protocol"].as_str().unwrap().to_string(),
                r["port_range_min"].as_u64(),
                r["port_range_max"].as_u64(),
            )
        })
        .collect()
}

fn opens(g: &Generated, sg: &str, protocol: &str, min: u64, max: u64) -> bool {
    ports(g, sg)
        .iter()
        .any(|(p, a, b)| p == protocol && *a == Some(min) && *b == Some(max))
}

/// Heat's own verdict through the heat engine, with the values we send.
fn heat_definition(g: &Generated) -> heat::StackDefinition {
    let t = StackTemplate::parse(&g.text(), Environment::new(), Files::new(), Options::heat())
        .expect("Heat parses the generated template");
    let values: ParameterValues = g
        .parameters
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    t.define(
        &values,
        &StackIdentity {
            stack_name: Some("so-ims-test".into()),
            ..StackIdentity::default()
        },
    )
    .expect("Heat would create it")
}

fn hosts(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn openims_default_has_one_unit_per_service_instance() {
    let g = generate(&[]);
    assert_eq!(g.template["heat_template_version"], "2015-04-30");
    let servers = of_type(&g, "OS::Nova::Server");
    assert_eq!(
        servers
            .iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>(),
        hosts(&["cscfs-1", "db-1", "hss-1", "slf-1", "dns-1"])
    );
    for h in &servers {
        assert!(of_type(&g, "OS::Neutron::Port").contains(format!("{h}-port-mgmt").as_str()));
        assert!(of_type(&g, "OS::Neutron::FloatingIP")
            .contains(format!("{h}-floating_ip-mgmt").as_str()));
        assert!(
            of_type(&g, "OS::Heat::SoftwareDeployment").contains(format!("{h}-config").as_str())
        );
    }
    assert_eq!(
        of_type(&g, "OS::Heat::SoftwareConfig"),
        BTreeSet::from(["ims-configure"])
    );
    assert_eq!(
        of_type(&g, "OS::Neutron::SecurityGroup"),
        BTreeSet::from([
            "sg-ims-base",
            "sg-cscfs",
            "sg-hss",
            "sg-dra",
            "sg-db",
            "sg-dns"
        ])
    );
    assert!(
        of_type(&g, "OS::Heat::RandomString").is_empty(),
        "OpenIMS takes no secrets"
    );
    assert_eq!(resources(&g).len(), 5 * 4 + 6 + 1);

    let hss = &resources(&g)["hss-1"]["properties"];
    assert_eq!(hss["image"], json!({"get_param": "image_hss"}));
    assert_eq!(
        hss["networks"],
        json!([{"port": {"get_resource": "hss-1-port-mgmt"}}])
    );
    assert_eq!(hss["user_data_format"], "SOFTWARE_CONFIG");
    assert_eq!(hss["user_data_update_policy"], "IGNORE");
    assert_eq!(g.parameters["image_hss"], "ims-5g-hss-r198");
    assert_eq!(g.parameters["flavor_slf"], "m1.medium");
    assert_eq!(g.parameters["image_dns"], "ims-base-r154");
    assert_eq!(g.parameters["lifecycle"], "deployed");
    let port = &resources(&g)["hss-1-port-mgmt"]["properties"];
    assert_eq!(port["network"], json!({"get_param": "private_network"}));
    assert_eq!(
        port["security_groups"],
        json!([{"get_resource": "sg-ims-base"}, {"get_resource": "sg-hss"}])
    );
    assert!(port.get("fixed_ips").is_none(), "no subnet asked for");
    let fip = &resources(&g)["hss-1-floating_ip-mgmt"]["properties"];
    assert_eq!(
        fip["floating_network"],
        json!({"get_param": "public_network"})
    );
    assert_eq!(fip["port_id"], json!({"get_resource": "hss-1-port-mgmt"}));
    heat_definition(&g);
}

#[test]
fn openims_security_groups_open_the_openims_core_ports() {
    let g = generate(&[]);
    for p in [4060, 5060, 6060] {
        assert!(opens(&g, "cscfs", "udp", p, p), "cscfs udp {p}");
        assert!(opens(&g, "cscfs", "tcp", p, p), "cscfs tcp {p}");
    }
    assert!(opens(&g, "cscfs", "tcp", 3869, 3870));
    assert!(opens(&g, "hss", "tcp", 3868, 3868));
    assert!(opens(&g, "hss", "tcp", 8080, 8080));
    assert!(opens(&g, "dra", "tcp", 3868, 3868));
    assert!(opens(&g, "db", "tcp", 3306, 3306));
    assert!(opens(&g, "dns", "udp", 53, 53) && opens(&g, "dns", "tcp", 53, 53));
    assert!(opens(&g, "ims-base", "tcp", 22, 22));
    assert!(
        opens(&g, "ims-base", "tcp", 8390, 8390),
        "the MCN EMS agent"
    );
    assert!(
        opens(&g, "ims-base", "tcp", 10050, 10050),
        "the Zabbix agent"
    );
    // The database only from IMS nodes: a group rule, not the world.
    let db = &resources(&g)["sg-db"]["properties"]["rules"][0];
    assert_eq!(db["remote_mode"], "remote_group_id");
    assert_eq!(
        db["remote_group_id"],
        json!({"get_resource": "sg-ims-base"})
    );
    assert!(db.get("remote_ip_prefix").is_none());
    let ssh = &resources(&g)["sg-ims-base"]["properties"]["rules"][1];
    assert_eq!(ssh["remote_ip_prefix"], "0.0.0.0/0");
}

#[test]
fn clearwater_security_groups_open_clearwaters_ports() {
    let g = generate(&[("mcn.topology.type", json!("clearwater"))]);
    for (p, min, max) in [
        ("icmp", None, None),
        ("tcp", Some(22), Some(22)),
        ("udp", Some(161), Some(162)),
        ("tcp", Some(2812), Some(2812)),
        ("tcp", Some(2380), Some(2380)),
        ("tcp", Some(4000), Some(4000)),
    ] {
        assert!(
            ports(&g, "clearwater").contains(&(p.to_string(), min, max)),
            "clearwater {p} {min:?}"
        );
    }
    for proto in ["tcp", "udp"] {
        assert!(opens(&g, "bono", proto, 3478, 3478));
        assert!(opens(&g, "bono", proto, 5060, 5060));
        assert!(opens(&g, "dns", proto, 53, 53));
    }
    assert!(opens(&g, "bono", "tcp", 5062, 5062));
    assert!(opens(&g, "bono", "tcp", 5058, 5058));
    assert!(opens(&g, "bono", "udp", 32768, 65535));
    for p in [5052, 5054, 443, 7000, 7253, 9160, 9888, 11211] {
        assert!(opens(&g, "sprout", "tcp", p, p), "sprout {p}");
    }
    assert!(opens(&g, "homestead", "tcp", 8888, 8888) && opens(&g, "homestead", "tcp", 7000, 7000));
    assert!(opens(&g, "homer", "tcp", 7888, 7888) && opens(&g, "homer", "tcp", 7000, 7000));
    assert!(opens(&g, "ellis", "tcp", 80, 80) && opens(&g, "ellis", "tcp", 443, 443));
    for p in [10888, 7253, 11211] {
        assert!(opens(&g, "ralf", "tcp", p, p), "ralf {p}");
    }
    // Each node's port has the shared group and its own.
    assert_eq!(
        resources(&g)["sprout-1-port-mgmt"]["properties"]["security_groups"],
        json!([{"get_resource": "sg-clearwater"}, {"get_resource": "sg-sprout"}])
    );
    assert_eq!(
        resources(&g)["dns-1-port-mgmt"]["properties"]["security_groups"],
        json!([{"get_resource": "sg-dns"}])
    );
}

#[test]
fn clearwater_has_every_node_type_and_generates_its_secrets() {
    let g = generate(&[("mcn.topology.type", json!("clearwater"))]);
    assert_eq!(
        of_type(&g, "OS::Nova::Server")
            .iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>(),
        hosts(&[
            "bono-1",
            "sprout-1",
            "homer-1",
            "homestead-1",
            "ellis-1",
            "ralf-1",
            "dns-1"
        ])
    );
    assert_eq!(
        of_type(&g, "OS::Heat::RandomString"),
        BTreeSet::from(["tsig-key", "signup-key"])
    );
    assert!(!g.parameters.contains_key("tsig_key"));
    let ud = &resources(&g)["ellis-1"]["properties"]["user_data"]["str_replace"];
    assert_eq!(
        ud["params"]["__TSIG_KEY__"],
        json!({"get_attr": ["tsig-key", "value"]})
    );
    assert_eq!(
        ud["params"]["__SIGNUP_KEY__"],
        json!({"get_attr": ["signup-key", "value"]})
    );
    assert_eq!(
        ud["params"]["__CONFIGURATION__"],
        "IMS_CONF_DN_RANGE_LENGTH='1000'\nIMS_CONF_DN_RANGE_START='6505550000'"
    );
    let template = ud["template"].as_str().unwrap();
    assert!(template.contains("/etc/clearwater/shared_config"));
    assert!(template.contains("repo.cw-ngv.com"));
    heat_definition(&g);

    // A caller's secret is a hidden parameter and never in the template text.
    let g = generate(&[
        ("mcn.topology.type", json!("clearwater")),
        (
            "ims.dns.tsig_key",
            json!("c2VjcmV0LXRzaWcta2V5LWZvci10ZXN0cw=="),
        ),
    ]);
    assert!(!of_type(&g, "OS::Heat::RandomString").contains("tsig-key"));
    assert_eq!(g.template["parameters"]["tsig_key"]["hidden"], true);
    assert_eq!(
        g.parameters["tsig_key"],
        "c2VjcmV0LXRzaWcta2V5LWZvci10ZXN0cw=="
    );
    assert!(!g.text().contains("c2VjcmV0LXRzaWcta2V5LWZvci10ZXN0cw=="));
    let def = heat_definition(&g);
    assert_eq!(def.parameters()["tsig_key"], "******");
}

#[test]
fn outputs_name_every_host_and_network() {
    let g = generate(&[("ims.size.hss", json!(2))]);
    let outputs = g.template["outputs"].as_object().unwrap();
    for h in ["cscfs-1", "db-1", "hss-1", "hss-2", "slf-1", "dns-1"] {
        assert_eq!(
            outputs[&format!("mcn.endpoint.{h}.mgmt.private")]["value"],
            json!({"get_attr": [format!("{h}-port-mgmt"), "fixed_ips", 0, "ip_address"]})
        );
        assert_eq!(
            outputs[&format!("mcn.endpoint.{h}.mgmt.public")]["value"],
            json!({"get_attr": [format!("{h}-floating_ip-mgmt"), "floating_ip_address"]})
        );
        assert_eq!(
            outputs[&format!("mcn.endpoint.{h}")]["value"],
            outputs[&format!("mcn.endpoint.{h}.mgmt.public")]["value"],
            "a host's endpoint is its public address"
        );
    }
    assert_eq!(
        outputs["mcn.ims.hosts"]["value"],
        "cscfs-1 db-1 hss-1 hss-2 slf-1 dns-1"
    );
    assert_eq!(outputs.len(), 6 * 3 + 1);
}

#[test]
fn user_data_passes_relations_requirements_and_endpoints() {
    let g = generate(&[("ims.size.hss", json!(2))]);
    let ud = &resources(&g)["cscfs-1"]["properties"]["user_data"]["str_replace"];
    let params = ud["params"].as_object().unwrap();
    assert_eq!(params["__HOSTNAME__"], "cscfs-1");
    assert_eq!(params["__SERVICE_TYPE__"], "cscfs");
    assert_eq!(params["__ZONE__"], json!({"get_param": "dns_zone"}));
    assert_eq!(params["__MAAS_IP__"], json!({"get_param": "maas_endpoint"}));
    assert_eq!(params["__DNSAAS_API__"], json!({"get_param": "dnsaas_api"}));
    assert_eq!(
        params["__DNS_FORWARDER__"],
        json!({"get_param": "dns_forwarder"})
    );
    assert_eq!(
        params["__LOCAL_IP__"],
        json!({"get_attr": ["cscfs-1-port-mgmt", "fixed_ips", 0, "ip_address"]})
    );
    assert_eq!(
        params["__PUBLIC_IP__"],
        json!({"get_attr": ["cscfs-1-floating_ip-mgmt", "floating_ip_address"]})
    );
    // cscfs relates to hss (two units now) and dns.
    let ip =
        |h: &str| json!({"get_attr": [format!("{h}-port-mgmt"), "fixed_ips", 0, "ip_address"]});
    assert_eq!(
        params["__RELATIONS__"],
        json!({"list_join": ["\n", [
            {"list_join": ["", ["HSS_IPS='", {"list_join": [";", [ip("hss-1"), ip("hss-2")]]}, "'"]]},
            {"list_join": ["", ["DNS_IPS='", {"list_join": [";", [ip("dns-1")]]}, "'"]]},
        ]]})
    );
    // The IMSSO's requirement: $DNS_IP bound to the dns units' private IPs.
    assert_eq!(
        params["$DNS_IP"],
        json!({"list_join": [";", [ip("dns-1")]]})
    );
    let text = ud["template"].as_str().unwrap();
    assert!(
        text.contains("nameserver $DNS_IP"),
        "the service instance's own user_data lines"
    );
    for p in params.keys() {
        assert!(text.contains(p.as_str()), "{p} is not in the script");
    }
    // The deployment carries the same relations, so a scaled hss reaches cscfs.
    let dep = &resources(&g)["cscfs-1-config"]["properties"];
    assert_eq!(dep["server"], json!({"get_resource": "cscfs-1"}));
    assert_eq!(dep["config"], json!({"get_resource": "ims-configure"}));
    assert_eq!(dep["signal_transport"], "NO_SIGNAL");
    assert_eq!(dep["actions"], json!(["CREATE", "UPDATE"]));
    assert_eq!(
        dep["input_values"]["IMS_RELATIONS"],
        params["__RELATIONS__"]
    );
    assert_eq!(
        dep["input_values"]["IMS_LIFECYCLE"],
        json!({"get_param": "lifecycle"})
    );
    assert_eq!(
        dep["input_values"]["MAAS_IP"],
        json!({"get_param": "maas_endpoint"})
    );
    // Servers depend on ports only, so relations in both directions make no cycle.
    let def = heat_definition(&g);
    let levels = def
        .dependencies()
        .create_levels()
        .expect("no dependency cycle");
    let level_of = |r: &str| levels.iter().position(|l| l.contains(&r)).unwrap();
    assert!(level_of("hss-1-port-mgmt") < level_of("cscfs-1"));
    assert!(level_of("cscfs-1-port-mgmt") < level_of("slf-1"));
    assert!(level_of("cscfs-1") < level_of("cscfs-1-config"));
}

#[test]
fn scaling_adds_units_and_their_addresses_everywhere() {
    let one = generate(&[]);
    let three = generate(&[("ims.size.cscfs", json!(3))]);
    let added: BTreeSet<&String> = resources(&three)
        .keys()
        .filter(|k| !resources(&one).contains_key(*k))
        .collect();
    let expected: BTreeSet<String> = ["cscfs-2", "cscfs-3"]
        .iter()
        .flat_map(|h| ["", "-port-mgmt", "-floating_ip-mgmt", "-config"].map(|s| format!("{h}{s}")))
        .collect();
    assert_eq!(added, expected.iter().collect());
    // slf relates to cscfs: its inputs now list three addresses.
    let rel = three.template["resources"]["slf-1-config"]["properties"]["input_values"]
        ["IMS_RELATIONS"]
        .to_string();
    for h in ["cscfs-1", "cscfs-2", "cscfs-3"] {
        assert!(rel.contains(&format!("{h}-port-mgmt")), "{rel}");
    }
    heat_definition(&three);
}

#[test]
fn subnet_and_overrides_reach_the_parameters() {
    let g = generate(&[
        ("ims.network.private", json!("mgmt-net")),
        ("ims.network.private_subnet", json!("mgmt-subnet")),
        ("ims.network.public", json!("ext-net")),
        ("ims.flavor", json!("m1.large")),
        ("ims.key_name", json!("operator key")),
        ("ims.dns.zone", json!("ims.example.org")),
        ("mcn.endpoint.maas", json!("160.85.4.50")),
    ]);
    assert_eq!(g.parameters["private_network"], "mgmt-net");
    assert_eq!(g.parameters["private_subnet"], "mgmt-subnet");
    assert_eq!(g.parameters["public_network"], "ext-net");
    assert_eq!(g.parameters["flavor_cscfs"], "m1.large");
    assert_eq!(g.parameters["flavor_slf"], "m1.large");
    assert_eq!(
        g.parameters["image_hss"], "ims-5g-hss-r198",
        "images keep their own"
    );
    assert_eq!(g.parameters["key_name_dns"], "operator key");
    assert_eq!(g.parameters["dns_zone"], "ims.example.org");
    assert_eq!(g.parameters["maas_endpoint"], "160.85.4.50");
    assert_eq!(
        g.template["resources"]["db-1-port-mgmt"]["properties"]["fixed_ips"],
        json!([{"subnet": {"get_param": "private_subnet"}}])
    );
    heat_definition(&g);
}

#[test]
fn the_largest_templates_stay_within_heats_limits() {
    let g = generate(&[
        ("mcn.topology.type", json!("clearwater")),
        ("ims.size.bono", json!(5)),
        ("ims.size.sprout", json!(5)),
        ("ims.size.homer", json!(3)),
        ("ims.size.homestead", json!(3)),
        ("ims.size.ralf", json!(3)),
    ]);
    assert_eq!(of_type(&g, "OS::Nova::Server").len(), 21);
    assert!(g.text().len() < 512 * 1024, "{} bytes", g.text().len());
    heat_definition(&g);
}

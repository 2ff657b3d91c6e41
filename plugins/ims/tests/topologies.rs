//! Topology files are loaded and checked when the plugin is built: the
//! built-in ones load, an operator's directory loads, and a broken file
//! is an error that names the file and the field at fault.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

use occi_so_plugin_ims::catalog::BUILTIN_FILES;
use occi_so_plugin_ims::{Catalog, ImsPlugin, TopologyError};
use occi_so_sdk::Orchestrator;

fn builtin() -> Vec<(String, String)> {
    BUILTIN_FILES
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

/// The built-in files with `openims.yaml` edited by `edit`.
fn with_openims(edit: impl Fn(&str) -> String) -> Result<Catalog, TopologyError> {
    let files: Vec<(String, String)> = builtin()
        .into_iter()
        .map(|(p, t)| {
            if p == "topologies/openims.yaml" {
                let edited = edit(&t);
                assert_ne!(edited, t, "the edit changed nothing");
                (p, edited)
            } else {
                (p, t)
            }
        })
        .collect();
    Catalog::from_files(&files, "openims")
}

fn broken(edit: impl Fn(&str) -> String, field: &str, words: &str) {
    let e = with_openims(edit).expect_err("a broken topology must not load");
    assert_eq!(e.file, "topologies/openims.yaml", "{e}");
    assert_eq!(e.field, field, "{e}");
    assert!(e.message.contains(words), "{e}");
    let shown = e.to_string();
    assert!(
        shown.starts_with("topology file topologies/openims.yaml: "),
        "{shown}"
    );
}

/// [`broken`] by replacing the first `from` of the OpenIMS file by `to`.
fn edited(from: &str, to: &str, field: &str, words: &str) {
    broken(|t| t.replacen(from, to, 1), field, words);
}

#[test]
fn the_builtin_topologies_load() {
    let c = Catalog::builtin().unwrap();
    assert_eq!(c.names(), ["clearwater", "openims"]);
    assert_eq!(c.default_name(), "openims");
    let o = &c.get("openims").unwrap().topology;
    let names: Vec<&str> = o
        .service_instances
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["cscfs", "db", "hss", "slf", "dns"]);
    assert_eq!(o.service_instance("slf").unwrap().service_type, "dra");
    let hss = o.service_instance("hss").unwrap();
    assert_eq!((hss.size.min, hss.size.def, hss.size.max), (1, 1, 3));
    assert_eq!(
        hss.policies.len(),
        2,
        "the IMSSO's scaling policies are kept as data"
    );
    assert_eq!(hss.policies[0].alarm.meter_name, "system.cpu.util[,idle]");
    assert_eq!(hss.relations, ["db", "slf", "dns"]);
    let cw = &c.get("clearwater").unwrap().topology;
    let names: Vec<&str> = cw
        .service_instances
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "bono",
            "sprout",
            "homer",
            "homestead",
            "ellis",
            "ralf",
            "dns"
        ]
    );
}

#[test]
fn unknown_fields_are_named_with_their_path() {
    edited(
        "    flavor: m1.small\n",
        "    flavour: m1.small\n",
        "service_instances[0].flavour",
        "unknown field `flavour`",
    );
}

#[test]
fn wrong_types_are_named_with_their_path() {
    edited(
        "size: {min: 1, def: 1, max: 3}",
        "size: {min: 1, def: 1, max: three}",
        "service_instances[2].size.max",
        "invalid type",
    );
}

#[test]
fn sizes_must_be_ordered() {
    edited(
        "size: {min: 1, def: 1, max: 3}",
        "size: {min: 2, def: 1, max: 3}",
        "service_instances[2].size",
        "min <= def <= max",
    );
    edited(
        "size: {min: 1, def: 1, max: 5}",
        "size: {min: 1, def: 1, max: 50}",
        "service_instances[0].size",
        "max <= 20",
    );
}

#[test]
fn relations_must_name_service_instances() {
    edited(
        "relations: [hss, dns]",
        "relations: [hss, pcscf]",
        "service_instances[0].relations[1]",
        "no service instance \"pcscf\"",
    );
    edited(
        "relations: [hss, dns]",
        "relations: [hss, cscfs]",
        "service_instances[0].relations[1]",
        "cannot relate to itself",
    );
}

#[test]
fn security_groups_must_exist_and_be_sound() {
    edited(
        "security_groups: [ims-base, cscfs]",
        "security_groups: [ims-base, sip]",
        "service_instances[0].networks[0].security_groups[1]",
        "no security group \"sip\"",
    );
    edited(
        "port_range_min: 4060, port_range_max: 4060",
        "port_range_min: 4061, port_range_max: 4060",
        "security_groups[1].rules[0].port_range_min",
        "1 <= min <= max",
    );
    edited(
        "remote_group: ims-base}",
        "remote_group: nobody}",
        "security_groups[1].rules[6].remote_group",
        "no security group \"nobody\"",
    );
    edited(
        "{name: icmp, protocol: icmp}",
        "{name: icmp, protocol: icmp, port_range_min: 1, port_range_max: 2}",
        "security_groups[0].rules[0]",
        "icmp rules take no ports",
    );
}

#[test]
fn requirements_must_point_at_real_addresses() {
    edited(
        "source: dns, network: mgmt}",
        "source: dns, network: sig}",
        "service_instances[0].requirements[0].network",
        "has no network \"sig\"",
    );
    edited(
        "{name: $DNS_IP,",
        "{name: DNS_IP,",
        "service_instances[0].requirements[0].name",
        "placeholder like $DNS_IP",
    );
}

#[test]
fn scripts_must_exist_and_use_known_placeholders() {
    edited(
        "boot_script: openims-boot.sh",
        "boot_script: missing.sh",
        "boot_script",
        "no script \"missing.sh\" under scripts/",
    );
    edited(
        "      - \"domain __ZONE__\"",
        "      - \"domain __DOMAIN__\"",
        "service_instances[0].user_data",
        "uses __DOMAIN__",
    );
    edited(
        "      - \"domain __ZONE__\"",
        "      - \"key __TSIG_KEY__\"",
        "service_instances[0].user_data",
        "uses __TSIG_KEY__",
    );
}

#[test]
fn policies_are_checked_as_data() {
    edited(
        "comparison_operator: gt",
        "comparison_operator: above",
        "service_instances[2].policies[0].alarm.comparison_operator",
        "not one of gt, lt",
    );
    edited(
        "scaling_adjustment: 1,",
        "scaling_adjustment: 0,",
        "service_instances[2].policies[0].action.scaling_adjustment",
        "a change of 0 units",
    );
    edited(
        "size: {min: 1, def: 1, max: 3}",
        "size: {min: 1, def: 1, max: 1}",
        "service_instances[2].policies[0]",
        "needs a scalable size",
    );
}

#[test]
fn duplicate_names_and_bad_defaults_are_refused() {
    edited(
        "  - name: db\n    service_type: db",
        "  - name: hss\n    service_type: db",
        "service_instances[2].name",
        "defined twice",
    );
    edited(
        "dns_zone: epc.mnc001.mcc001.3gppnetwork.org",
        "dns_zone: localhost",
        "defaults.dns_zone",
        "not a DNS domain",
    );
}

#[test]
fn a_yaml_syntax_error_names_the_line() {
    let e =
        with_openims(|t| t.replacen("service_instances:", "service_instances: [", 1)).unwrap_err();
    assert_eq!(e.file, "topologies/openims.yaml");
    assert!(e.message.contains("line "), "{e}");
}

#[test]
fn the_default_topology_must_exist() {
    let e = Catalog::from_files(&builtin(), "bern-no-dns").unwrap_err();
    assert!(
        e.message
            .contains("\"bern-no-dns\" is not defined (defined: clearwater, openims)"),
        "{e}"
    );
}

#[test]
fn an_operators_directory_adds_topologies() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("topologies")).unwrap();
    std::fs::create_dir_all(dir.path().join("scripts")).unwrap();
    for (p, t) in BUILTIN_FILES {
        std::fs::write(dir.path().join(p), t).unwrap();
    }
    // A site topology in the IMSSO's JSON style: one CSCF box and an HSS.
    let site = r#"{
      "name": "bern-small",
      "defaults": {"key_name": "bern-key", "private_network": "367d1aba-c539-46e1-8047-65c28283d9c9",
                   "private_subnet": "fe3ca710-133d-496c-af44-83028bbc4c5d",
                   "public_network": "fde9f17b-eb51-4d4b-a474-deb583d03d86", "dns_zone": "bern.example.ch"},
      "boot_script": "openims-boot.sh", "configure_script": "openims-configure.sh",
      "security_groups": [{"name": "security-group-ims", "rules": [
        {"name": "tcp-all", "protocol": "tcp", "remote_ip_prefix": "0.0.0.0/0", "port_range_min": 1, "port_range_max": 65535},
        {"name": "icmp", "protocol": "icmp"}]}],
      "service_instances": [
        {"name": "cscfs", "service_type": "cscfs", "image": "ims-5g-bin-r177", "flavor": "m1.small",
         "size": {"min": 1, "def": 1, "max": 2}, "relation": ["hss"],
         "networks": [{"name": "mgmt", "public": true, "security_groups": ["security-group-ims"]}]},
        {"name": "hss", "service_type": "hss", "image": "ims-5g-hss-r198", "flavor": "m1.small",
         "size": {"min": 1, "def": 1, "max": 2},
         "networks": [{"name": "mgmt", "security_groups": ["security-group-ims"]}]}
      ]
    }"#;
    std::fs::write(dir.path().join("topologies/bern-small.json"), site).unwrap();
    let catalog = Catalog::from_dir(dir.path(), "bern-small").unwrap();
    assert_eq!(catalog.names(), ["bern-small", "clearwater", "openims"]);
    let plugin = ImsPlugin::with_catalog(catalog).unwrap();
    let kind = &plugin.info().kind;
    assert_eq!(
        kind.attribute("mcn.topology.type").unwrap().default,
        Some(serde_json::json!("bern-small"))
    );
    let (_, settings, g) = plugin.render(&Default::default()).unwrap();
    assert_eq!(
        settings.private_subnet.as_deref(),
        Some("fe3ca710-133d-496c-af44-83028bbc4c5d")
    );
    assert_eq!(g.hosts, ["cscfs-1", "hss-1"]);
    // hss has no public network: its endpoint is its private address.
    assert_eq!(
        g.template["outputs"]["mcn.endpoint.hss-1"]["value"],
        serde_json::json!({"get_attr": ["hss-1-port-mgmt", "fixed_ips", 0, "ip_address"]})
    );
    // A broken file in the directory stops the plugin, naming it.
    std::fs::write(dir.path().join("topologies/broken.yaml"), "name: broken\n").unwrap();
    let e = Catalog::from_dir(dir.path(), "openims").unwrap_err();
    assert_eq!(e.file, "topologies/broken.yaml");
    assert!(e.message.contains("missing field"), "{e}");
}

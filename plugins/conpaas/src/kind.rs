//! The `conpaas` kind: its attributes (what `director.cfg` and a ConPaaS
//! manifest set, plus what the service reports) and its actions (the
//! director operations that change infrastructure).

use occi_so_sdk::{ActionSpec, AttributeSpec, AttributeType, KindSpec, Phase};
use serde_json::json;

/// The scheme MCN service managers give their service kinds.
pub const SCHEME: &str = "http://schemas.mobile-cloud-networking.eu/occi/sm#";
/// The scheme of the kind's actions.
pub const ACTION_SCHEME: &str = "http://schemas.mobile-cloud-networking.eu/occi/sm/conpaas/action#";
/// The kind term (and the collection `/conpaas/`).
pub const TERM: &str = "conpaas";

/// Application name (the director's `createapp` name).
pub const ATTR_APPLICATION: &str = "conpaas.application.name";
/// The services: `{"<name>": {"type", "cloud", "nodes": {role: count}}}`.
pub const ATTR_SERVICES: &str = "conpaas.services";
/// The cloud the manager runs on (`startapp/<app>/<cloud>`).
pub const ATTR_CLOUD: &str = "conpaas.cloud";
/// Per-cloud sections (`OTHER_CLOUDS` sections of director.cfg).
pub const ATTR_CLOUDS: &str = "conpaas.clouds";
/// `IMAGE_ID`.
pub const ATTR_IMAGE: &str = "conpaas.image";
/// `SIZE_ID`.
pub const ATTR_FLAVOR: &str = "conpaas.flavor";
/// `KEY_NAME`.
pub const ATTR_KEY_NAME: &str = "conpaas.key_name";
/// `SECURITY_GROUP_NAME`.
pub const ATTR_SECURITY_GROUP: &str = "conpaas.security_group";
/// `NETWORK_ID`.
pub const ATTR_NETWORK: &str = "conpaas.network";
/// The external network of floating IPs.
pub const ATTR_FLOATING_NETWORK: &str = "conpaas.floating_network";
/// `AUTO_ASSIGN_FLOATING_IP`.
pub const ATTR_AUTO_FIP: &str = "conpaas.auto_assign_floating_ip";
/// `DIRECTOR_URL`.
pub const ATTR_DIRECTOR_URL: &str = "conpaas.director_url";
/// Output: the application's ConPaaS state.
pub const ATTR_STATE: &str = "conpaas.application.state";
/// Output: the nodes running now, service → cloud → role → count.
pub const ATTR_NODES: &str = "conpaas.nodes";
/// Output (of the manager stack): the manager's public address.
pub const ATTR_MANAGER_IP: &str = "conpaas.manager.ip";

/// Action parameter: the service to scale.
pub const PARAM_SERVICE: &str = "conpaas.service";
/// Action parameter: nodes by role.
pub const PARAM_NODES: &str = "conpaas.nodes";
/// Action parameter: the cloud to place nodes on or take them from.
pub const PARAM_CLOUD: &str = "conpaas.cloud";

/// `add_nodes`.
pub const ADD_NODES: &str = "add_nodes";
/// `remove_nodes`.
pub const REMOVE_NODES: &str = "remove_nodes";
/// `start` (the director's `startapp`).
pub const START: &str = "start";
/// `stop` (the director's `stopapp`).
pub const STOP: &str = "stop";

/// The director's name for a new application.
pub const DEFAULT_APPLICATION: &str = "New Application";
/// The ConPaaS image name the installation guide registers.
pub const DEFAULT_IMAGE: &str = "conpaas";
/// A stock OpenStack flavor big enough for the ConPaaS image.
pub const DEFAULT_FLAVOR: &str = "m1.small";
/// DevStack's tenant network.
pub const DEFAULT_NETWORK: &str = "private";
/// DevStack's external network.
pub const DEFAULT_FLOATING_NETWORK: &str = "public";

fn string(name: &str, default: &str, description: &str) -> AttributeSpec {
    AttributeSpec::new(name, AttributeType::String)
        .default_value(default)
        .describe(description)
}

fn scaling_parameters(verb: &str) -> Vec<AttributeSpec> {
    vec![
        AttributeSpec::new(PARAM_SERVICE, AttributeType::String)
            .pattern("[a-z][a-z0-9-]{0,31}")
            .describe(format!(
                "The service to {verb} nodes; may be left out when the application has one service"
            )),
        AttributeSpec::new(PARAM_NODES, AttributeType::Object)
            .required()
            .describe("Nodes by role, e.g. {\"web\": 2, \"backend\": 1} (the manager's add_nodes/remove_nodes 'nodes')"),
        AttributeSpec::new(PARAM_CLOUD, AttributeType::String)
            .pattern("[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
            .describe(if verb == "add" {
                "The cloud the new nodes run on (default: the service's cloud)"
            } else {
                "Only take nodes running on this cloud (default: other clouds first, then the service's own)"
            }),
    ]
}

/// The kind.
pub fn kind() -> KindSpec {
    KindSpec {
        term: TERM.into(),
        scheme: SCHEME.into(),
        title: Some("ConPaaS application (manager and service agents)".into()),
        location: Some(format!("/{TERM}/")),
        related: vec![],
        attributes: vec![
            string(ATTR_APPLICATION, DEFAULT_APPLICATION, "Application name (1 to 256 characters)"),
            AttributeSpec::new(ATTR_SERVICES, AttributeType::Object)
                .default_value(json!({}))
                .describe("The services, by name: {\"web\": {\"type\": \"php\", \"cloud\": \"default\", \"nodes\": {\"proxy\": 1, \"web\": 2, \"backend\": 1}}}; type is one of php, java, mysql, xtreemfs, generic, helloworld; nodes are the startup nodes by role (default: the type's starting node); cloud defaults to conpaas.cloud. Adding an entry starts a service, removing one removes its nodes, changing one replaces it"),
            AttributeSpec::new(ATTR_CLOUD, AttributeType::String)
                .default_value("default")
                .pattern("[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
                .immutable()
                .describe("The cloud the manager runs on: 'default' (director.cfg [iaas]) or a configured cloud"),
            AttributeSpec::new(ATTR_CLOUDS, AttributeType::Object)
                .default_value(json!({}))
                .describe("Per-cloud settings, as director.cfg's OTHER_CLOUDS sections: {\"<cloud>\": {\"image\", \"flavor\", \"key_name\", \"security_group\", \"network\", \"floating_network\", \"auto_assign_floating_ip\"}}; a value left out is the top-level one"),
            string(ATTR_IMAGE, DEFAULT_IMAGE, "ConPaaS services image, name or id (director.cfg IMAGE_ID)"),
            string(ATTR_FLAVOR, DEFAULT_FLAVOR, "Flavor, name or id (director.cfg SIZE_ID)"),
            string(ATTR_KEY_NAME, "", "Key pair for root SSH logins (director.cfg KEY_NAME); empty for none"),
            string(ATTR_SECURITY_GROUP, "", "An existing security group (director.cfg SECURITY_GROUP_NAME); empty: each stack creates the ConPaaS group (TCP 443, 5555, 80, 8000, 8080, 9000, 3306, 4444, 4567, 4568, 32636, 32638, 32640)"),
            string(ATTR_NETWORK, DEFAULT_NETWORK, "Network the VMs boot on (director.cfg NETWORK_ID)"),
            string(ATTR_FLOATING_NETWORK, DEFAULT_FLOATING_NETWORK, "External network floating IPs are allocated from"),
            AttributeSpec::new(ATTR_AUTO_FIP, AttributeType::Boolean)
                .default_value(false)
                .describe("The cloud assigns public addresses itself (director.cfg AUTO_ASSIGN_FLOATING_IP, nova-network); false allocates a floating IP per VM, as ConPaaS does on Neutron"),
            string(ATTR_DIRECTOR_URL, "", "Director the VMs download the ConPaaS code from (director.cfg DIRECTOR_URL, http:// or https://); empty when the image carries it"),
            AttributeSpec::new(ATTR_STATE, AttributeType::String)
                .output()
                .describe("ConPaaS application state: INIT, RUNNING or STOPPED"),
            AttributeSpec::new(ATTR_NODES, AttributeType::Object)
                .output()
                .describe("Agent nodes running now: service → cloud → role → count"),
            AttributeSpec::new(ATTR_MANAGER_IP, AttributeType::String)
                .output()
                .describe("Public address of the application manager"),
        ],
        actions: vec![
            ActionSpec {
                term: ADD_NODES.into(),
                scheme: ACTION_SCHEME.into(),
                title: Some("Add nodes to a service (manager add_nodes)".into()),
                attributes: scaling_parameters("add"),
                applies_in: vec![Phase::Provisioned],
            },
            ActionSpec {
                term: REMOVE_NODES.into(),
                scheme: ACTION_SCHEME.into(),
                title: Some("Remove nodes from a service (manager remove_nodes)".into()),
                attributes: scaling_parameters("remove"),
                applies_in: vec![Phase::Provisioned],
            },
            ActionSpec {
                term: START.into(),
                scheme: ACTION_SCHEME.into(),
                title: Some("Start a stopped application: manager and agents come back (director startapp)".into()),
                attributes: vec![],
                applies_in: vec![Phase::Deployed, Phase::Provisioned],
            },
            ActionSpec {
                term: STOP.into(),
                scheme: ACTION_SCHEME.into(),
                title: Some("Stop the application: its agents and manager are deleted and its services and nodes remembered (director stopapp)".into()),
                attributes: vec![],
                applies_in: vec![Phase::Deployed, Phase::Provisioned],
            },
        ],
    }
}

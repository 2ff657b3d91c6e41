//! The HOT template of an IMS instance, generated from its topology and
//! settings as the MCN IMSSO's TemplateManager does. Per unit (VM)
//! `<si>-<n>` of each service instance:
//!
//! * `<host>`: `OS::Nova::Server` (image, flavor, key of its service
//!   instance; one port per network; `user_data` = the topology's boot
//!   script + the service instance's lines, placeholders filled by
//!   `str_replace` with the unit's addresses, its relations' and
//!   requirements' addresses, the zone and the MCN endpoints;
//!   `user_data_update_policy: IGNORE`, so later changes never rebuild it);
//! * `<host>-port-<net>`: `OS::Neutron::Port` on the private network with
//!   the network's security groups;
//! * `<host>-floating_ip-<net>`: `OS::Neutron::FloatingIP` where the network
//!   is public;
//! * `<host>-config`: `OS::Heat::SoftwareDeployment` of the topology's
//!   configure script with the relations and endpoints as inputs, so a
//!   provision, an update or a scaled relation reaches running nodes
//!   (`NO_SIGNAL`: Heat does not wait for an agent the image may lack).
//!
//! Shared: `sg-<name>` (`OS::Neutron::SecurityGroup` per topology group),
//! `ims-configure` (`OS::Heat::SoftwareConfig`), and per secret the caller
//! did not give an `OS::Heat::RandomString`. Outputs:
//! `mcn.endpoint.<host>` (its public address, else private),
//! `mcn.endpoint.<host>.<net>.private|public`, and `mcn.ims.hosts`.

use std::collections::BTreeMap;

use heat::{Environment, Files, Options, ParameterValues, StackIdentity, StackTemplate};
use occi_so_sdk::PluginError;
use serde_json::{json, Map, Value};

use crate::catalog::LoadedTopology;
use crate::settings::{self, Settings};
use crate::topology::{AddressKind, Direction, Protocol, SecretSetting, ServiceInstance};

/// The HOT version generated.
pub const HOT_VERSION: &str = "2015-04-30";
/// The shared software config resource.
pub const CONFIG_RESOURCE: &str = "ims-configure";
/// Heat's default `max_template_size`.
pub const MAX_TEMPLATE_BYTES: usize = 512 * 1024;
/// Output listing every unit's hostname, space-separated.
pub const HOSTS_OUTPUT: &str = "mcn.ims.hosts";

/// Where the service's nodes are in their lifecycle (`lifecycle` parameter,
/// the configure script's `IMS_LIFECYCLE`): services start once provisioned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeLifecycle {
    /// Created and configured, not started.
    Deployed,
    /// Started (after `provision`).
    Provisioned,
}

impl NodeLifecycle {
    /// The parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeLifecycle::Deployed => "deployed",
            NodeLifecycle::Provisioned => "provisioned",
        }
    }
}

/// The parameters of the generated template and the attribute each comes
/// from (so Heat's message about a value names the attribute).
fn parameter_attribute(parameter: &str) -> Option<&'static str> {
    Some(match parameter {
        "private_network" => settings::PRIVATE_NETWORK,
        "private_subnet" => settings::PRIVATE_SUBNET,
        "public_network" => settings::PUBLIC_NETWORK,
        "dns_zone" => settings::DNS_ZONE,
        "maas_endpoint" => settings::MAAS,
        "dnsaas_api" => settings::DNSAAS_API,
        "dns_forwarder" => settings::FORWARDER,
        "tsig_key" => settings::TSIG_KEY,
        "signup_key" => settings::SIGNUP_KEY,
        p if p.starts_with("image_") => settings::IMAGE,
        p if p.starts_with("flavor_") => settings::FLAVOR,
        p if p.starts_with("key_name_") => settings::KEY_NAME,
        _ => return None,
    })
}

/// A generated template and the parameter values to create it with.
#[derive(Clone, Debug)]
pub struct Generated {
    /// The template document.
    pub template: Value,
    /// Every parameter value (hidden ones included; never log these).
    pub parameters: BTreeMap<String, String>,
    /// Unit hostnames, in template order.
    pub hosts: Vec<String>,
}

fn port_name(host: &str, net: &str) -> String {
    format!("{host}-port-{net}")
}

fn floating_name(host: &str, net: &str) -> String {
    format!("{host}-floating_ip-{net}")
}

fn private_ip(host: &str, net: &str) -> Value {
    json!({"get_attr": [port_name(host, net), "fixed_ips", 0, "ip_address"]})
}

fn public_ip(host: &str, net: &str) -> Value {
    json!({"get_attr": [floating_name(host, net), "floating_ip_address"]})
}

fn join(separator: &str, items: Vec<Value>) -> Value {
    json!({"list_join": [separator, items]})
}

fn stack_scoped(name: &str) -> Value {
    json!({"list_join": ["-", [{"get_param": "OS::stack_name"}, name]]})
}

fn param(name: &str) -> Value {
    json!({"get_param": name})
}

/// Renders a generated template and the values Heat gets.
pub fn generate(loaded: &LoadedTopology, s: &Settings) -> Generated {
    Generator { loaded, s }.generate()
}

struct Generator<'a> {
    loaded: &'a LoadedTopology,
    s: &'a Settings,
}

impl Generator<'_> {
    fn units(&self, si: &ServiceInstance) -> u32 {
        self.s.sizes.get(&si.name).copied().unwrap_or(si.size.def)
    }

    fn hosts_of(&self, si: &ServiceInstance) -> Vec<String> {
        (1..=self.units(si)).map(|n| si.host(n)).collect()
    }

    /// The private IPs of every unit of `name` on its first network.
    fn private_ips_of(&self, name: &str) -> Vec<Value> {
        let Some(si) = self.loaded.topology.service_instance(name) else {
            return Vec::new();
        };
        let net = &si.networks[0].name;
        self.hosts_of(si)
            .iter()
            .map(|h| private_ip(h, net))
            .collect()
    }

    /// `<SI>_IPS='a;b'` lines, one per relation.
    fn relations(&self, si: &ServiceInstance) -> Value {
        let lines: Vec<Value> = si
            .relations
            .iter()
            .map(|r| {
                let var = format!("{}_IPS='", r.to_ascii_uppercase());
                join(
                    "",
                    vec![json!(var), join(";", self.private_ips_of(r)), json!("'")],
                )
            })
            .collect();
        join("\n", lines)
    }

    fn all_private_ips(&self) -> Value {
        let ips: Vec<Value> = self
            .loaded
            .topology
            .service_instances
            .iter()
            .flat_map(|si| self.private_ips_of(&si.name))
            .collect();
        join(",", ips)
    }

    fn secret_value(&self, secret: SecretSetting) -> Value {
        if self.s.secrets.contains_key(&secret) {
            param(secret.parameter())
        } else {
            json!({"get_attr": [secret.parameter().replace('_', "-"), "value"]})
        }
    }

    fn parameters(&self, out: &mut BTreeMap<String, String>) -> Map<String, Value> {
        let t = &self.loaded.topology;
        let s = self.s;
        let mut p = Map::new();
        let mut add = |name: &str,
                       default: &str,
                       description: String,
                       extra: Option<Value>,
                       value: String| {
            let mut def = json!({"type": "string", "default": default, "description": description});
            if let (Some(Value::Object(e)), Value::Object(m)) = (extra, &mut def) {
                m.extend(e);
            }
            p.insert(name.to_string(), def);
            out.insert(name.to_string(), value);
        };
        for si in &t.service_instances {
            let key = si
                .key
                .clone()
                .unwrap_or_else(|| t.defaults.key_name.clone());
            add(
                &format!("image_{}", si.name),
                &si.image,
                format!("Glance image of the {} units", si.name),
                None,
                s.image.clone().unwrap_or_else(|| si.image.clone()),
            );
            add(
                &format!("flavor_{}", si.name),
                &si.flavor,
                format!("Nova flavor of the {} units", si.name),
                None,
                s.flavor.clone().unwrap_or_else(|| si.flavor.clone()),
            );
            add(
                &format!("key_name_{}", si.name),
                &key,
                format!("Nova keypair of the {} units", si.name),
                None,
                s.key_name.clone().unwrap_or(key.clone()),
            );
        }
        add(
            "private_network",
            &t.defaults.private_network,
            "Management/private network of every port".into(),
            None,
            s.private_network.clone(),
        );
        if let Some(subnet) = &s.private_subnet {
            add(
                "private_subnet",
                t.defaults.private_subnet.as_deref().unwrap_or(subnet),
                "Subnet of the private network for fixed IPs".into(),
                None,
                subnet.clone(),
            );
        }
        add(
            "public_network",
            &t.defaults.public_network,
            "External network of the floating IPs".into(),
            None,
            s.public_network.clone(),
        );
        add(
            "dns_zone",
            &t.defaults.dns_zone,
            "The IMS domain".into(),
            Some(json!({"constraints": [{"allowed_pattern": settings::DOMAIN_PATTERN}]})),
            s.dns_zone.clone(),
        );
        add(
            "maas_endpoint",
            "",
            "MaaS (Zabbix) server of the nodes".into(),
            Some(json!({"constraints": [{"allowed_pattern": settings::HOST_PATTERN}]})),
            s.maas.clone(),
        );
        add(
            "dnsaas_api",
            "",
            "DNSaaS API for the nodes' records".into(),
            Some(json!({"constraints": [{"allowed_pattern": settings::API_PATTERN}]})),
            s.dnsaas_api.clone(),
        );
        add(
            "dns_forwarder",
            "",
            "DNS server the nodes resolve through".into(),
            Some(json!({"constraints": [{"allowed_pattern": settings::IPV4_PATTERN}]})),
            s.forwarder.clone(),
        );
        add(
            "lifecycle",
            NodeLifecycle::Deployed.as_str(),
            "deployed, or provisioned: the nodes start their services".into(),
            Some(json!({"constraints": [{"allowed_values": ["deployed", "provisioned"]}]})),
            NodeLifecycle::Deployed.as_str().into(),
        );
        for secret in &t.secrets {
            if let Some(value) = s.secrets.get(secret) {
                let pattern = match secret {
                    SecretSetting::TsigKey => settings::TSIG_PATTERN,
                    SecretSetting::SignupKey => settings::SIGNUP_PATTERN,
                };
                p.insert(
                    secret.parameter().to_string(),
                    json!({"type": "string", "hidden": true, "description": format!("{} (secret)", secret.parameter()),
                           "constraints": [{"allowed_pattern": pattern}]}),
                );
                out.insert(secret.parameter().to_string(), value.clone());
            }
        }
        p
    }

    fn security_groups(&self, resources: &mut Map<String, Value>) {
        for sg in &self.loaded.topology.security_groups {
            let rules: Vec<Value> = sg
                .rules
                .iter()
                .map(|r| {
                    let mut rule = Map::new();
                    rule.insert(
                        "direction".into(),
                        json!(match r.direction {
                            Direction::Ingress => "ingress",
                            Direction::Egress => "egress",
                        }),
                    );
                    rule.insert("protocol".into(), json!(r.protocol.as_str()));
                    if r.protocol != Protocol::Icmp {
                        rule.insert("port_range_min".into(), json!(r.port_range_min));
                        rule.insert("port_range_max".into(), json!(r.port_range_max));
                    }
                    match &r.remote_group {
                        Some(g) => {
                            rule.insert("remote_mode".into(), json!("remote_group_id"));
                            if g != &sg.name {
                                rule.insert(
                                    "remote_group_id".into(),
                                    json!({"get_resource": format!("sg-{g}")}),
                                );
                            }
                        }
                        None => {
                            let prefix = r.remote_ip_prefix.as_deref().unwrap_or("0.0.0.0/0");
                            if prefix.contains(':') {
                                rule.insert("ethertype".into(), json!("IPv6"));
                            }
                            rule.insert("remote_ip_prefix".into(), json!(prefix));
                        }
                    }
                    Value::Object(rule)
                })
                .collect();
            let mut props = Map::new();
            props.insert("name".into(), stack_scoped(&sg.name));
            if let Some(d) = &sg.description {
                props.insert("description".into(), json!(d));
            }
            props.insert("rules".into(), Value::Array(rules));
            resources.insert(
                format!("sg-{}", sg.name),
                json!({"type": "OS::Neutron::SecurityGroup", "properties": props}),
            );
        }
    }

    fn shared(&self, resources: &mut Map<String, Value>) {
        let inputs: Vec<Value> = [
            "IMS_HOSTNAME",
            "IMS_SERVICE_TYPE",
            "IMS_ZONE",
            "IMS_RELATIONS",
            "IMS_ALL_PRIVATE_IPS",
            "MAAS_IP",
            "DNSAAS_API",
            "DNS_FORWARDER",
            "IMS_LIFECYCLE",
        ]
        .iter()
        .map(|n| json!({"name": n, "type": "String"}))
        .collect();
        resources.insert(
            CONFIG_RESOURCE.into(),
            json!({"type": "OS::Heat::SoftwareConfig", "properties": {
                "group": "script",
                "inputs": inputs,
                "config": self.loaded.configure_script,
            }}),
        );
        for secret in &self.loaded.topology.secrets {
            if !self.s.secrets.contains_key(secret) {
                let length = match secret {
                    SecretSetting::TsigKey => 44,
                    SecretSetting::SignupKey => 16,
                };
                resources.insert(
                    secret.parameter().replace('_', "-"),
                    json!({"type": "OS::Heat::RandomString", "properties": {
                        "length": length,
                        "character_classes": [{"class": "lettersdigits"}],
                    }}),
                );
            }
        }
    }

    fn user_data(&self, si: &ServiceInstance, host: &str, unit: u32) -> Value {
        let mut text = self.loaded.boot_script.clone();
        if !si.user_data.is_empty() {
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&si.user_data.join("\n"));
            text.push('\n');
        }
        let first = &si.networks[0];
        let public = si.networks.iter().find(|n| n.public);
        let mut params = Map::new();
        let configuration: Vec<String> = si
            .configuration
            .iter()
            .map(|(k, v)| format!("IMS_CONF_{}='{v}'", k.to_ascii_uppercase()))
            .collect();
        let mut values: Vec<(&str, Value)> = vec![
            ("__HOSTNAME__", json!(host)),
            ("__SERVICE_INSTANCE__", json!(si.name)),
            ("__SERVICE_TYPE__", json!(si.service_type)),
            ("__UNIT__", json!(unit.to_string())),
            ("__ZONE__", param("dns_zone")),
            ("__LOCAL_IP__", private_ip(host, &first.name)),
            (
                "__PUBLIC_IP__",
                public.map_or(json!(""), |n| public_ip(host, &n.name)),
            ),
            ("__ALL_PRIVATE_IPS__", self.all_private_ips()),
            ("__RELATIONS__", self.relations(si)),
            ("__CONFIGURATION__", json!(configuration.join("\n"))),
            ("__MAAS_IP__", param("maas_endpoint")),
            ("__DNSAAS_API__", param("dnsaas_api")),
            ("__DNS_FORWARDER__", param("dns_forwarder")),
        ];
        for secret in &self.loaded.topology.secrets {
            values.push((secret.placeholder(), self.secret_value(*secret)));
        }
        for (placeholder, value) in values {
            if text.contains(placeholder) {
                params.insert(placeholder.into(), value);
            }
        }
        for req in &si.requirements {
            let Some(source) = self.loaded.topology.service_instance(&req.source) else {
                continue;
            };
            let addresses: Vec<Value> = self
                .hosts_of(source)
                .iter()
                .map(|h| match req.parameter {
                    AddressKind::PrivateIp => private_ip(h, &req.network),
                    AddressKind::PublicIp => public_ip(h, &req.network),
                })
                .collect();
            params.insert(req.name.clone(), join(";", addresses));
        }
        json!({"str_replace": {"template": text, "params": params}})
    }

    fn unit(
        &self,
        si: &ServiceInstance,
        host: &str,
        unit: u32,
        resources: &mut Map<String, Value>,
        outputs: &mut Map<String, Value>,
    ) {
        let t = &self.loaded.topology;
        let mut networks = Vec::new();
        for net in &si.networks {
            let port = port_name(host, &net.name);
            let mut props = Map::new();
            props.insert("name".into(), stack_scoped(&port));
            props.insert("network".into(), param("private_network"));
            if self.s.private_subnet.is_some() {
                props.insert(
                    "fixed_ips".into(),
                    json!([{"subnet": {"get_param": "private_subnet"}}]),
                );
            }
            let groups: Vec<Value> = net
                .security_groups
                .iter()
                .map(|g| json!({"get_resource": format!("sg-{g}")}))
                .collect();
            props.insert("security_groups".into(), Value::Array(groups));
            resources.insert(
                port.clone(),
                json!({"type": "OS::Neutron::Port", "properties": props}),
            );
            networks.push(json!({"port": {"get_resource": port}}));
            outputs.insert(
                format!("mcn.endpoint.{host}.{}.private", net.name),
                json!({"description": format!("Fixed IP of {host} on {}", net.name),
                       "value": private_ip(host, &net.name)}),
            );
            if net.public {
                resources.insert(
                    floating_name(host, &net.name),
                    json!({"type": "OS::Neutron::FloatingIP", "properties": {
                        "floating_network": {"get_param": "public_network"},
                        "port_id": {"get_resource": port},
                    }}),
                );
                outputs.insert(
                    format!("mcn.endpoint.{host}.{}.public", net.name),
                    json!({"description": format!("Floating IP of {host} on {}", net.name),
                           "value": public_ip(host, &net.name)}),
                );
            }
        }
        let primary = match si.networks.iter().find(|n| n.public) {
            Some(n) => public_ip(host, &n.name),
            None => private_ip(host, &si.networks[0].name),
        };
        outputs.insert(
            format!("mcn.endpoint.{host}"),
            json!({"description": format!("Endpoint of {host} ({})", si.service_type), "value": primary}),
        );
        let mut server = Map::new();
        server.insert("name".into(), stack_scoped(host));
        server.insert("image".into(), param(&format!("image_{}", si.name)));
        server.insert("flavor".into(), param(&format!("flavor_{}", si.name)));
        server.insert("key_name".into(), param(&format!("key_name_{}", si.name)));
        if let Some(az) = &si.availability_zone {
            server.insert("availability_zone".into(), json!(az));
        }
        server.insert("networks".into(), Value::Array(networks));
        server.insert(
            "metadata".into(),
            json!({"mcn.ims.topology": t.name, "mcn.ims.service_instance": si.name,
                   "mcn.ims.service_type": si.service_type}),
        );
        server.insert("user_data_format".into(), json!("SOFTWARE_CONFIG"));
        server.insert("user_data_update_policy".into(), json!("IGNORE"));
        server.insert("user_data".into(), self.user_data(si, host, unit));
        resources.insert(
            host.to_string(),
            json!({"type": "OS::Nova::Server", "properties": server}),
        );
        resources.insert(
            format!("{host}-config"),
            json!({"type": "OS::Heat::SoftwareDeployment", "properties": {
                "config": {"get_resource": CONFIG_RESOURCE},
                "server": {"get_resource": host},
                "actions": ["CREATE", "UPDATE"],
                "signal_transport": "NO_SIGNAL",
                "input_values": {
                    "IMS_HOSTNAME": host,
                    "IMS_SERVICE_TYPE": si.service_type,
                    "IMS_ZONE": param("dns_zone"),
                    "IMS_RELATIONS": self.relations(si),
                    "IMS_ALL_PRIVATE_IPS": self.all_private_ips(),
                    "MAAS_IP": param("maas_endpoint"),
                    "DNSAAS_API": param("dnsaas_api"),
                    "DNS_FORWARDER": param("dns_forwarder"),
                    "IMS_LIFECYCLE": param("lifecycle"),
                },
            }}),
        );
    }

    fn generate(&self) -> Generated {
        let t = &self.loaded.topology;
        let mut values = BTreeMap::new();
        let parameters = self.parameters(&mut values);
        let mut resources = Map::new();
        self.security_groups(&mut resources);
        self.shared(&mut resources);
        let mut outputs = Map::new();
        let mut hosts = Vec::new();
        for si in &t.service_instances {
            for n in 1..=self.units(si) {
                let host = si.host(n);
                self.unit(si, &host, n, &mut resources, &mut outputs);
                hosts.push(host);
            }
        }
        outputs.insert(
            HOSTS_OUTPUT.into(),
            json!({"description": "Every unit's hostname", "value": hosts.join(" ")}),
        );
        let description = format!(
            "IMS service, topology {}{}; generated by occi-so from {}",
            t.name,
            t.description
                .as_ref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default(),
            self.loaded.file
        );
        let template = json!({
            "heat_template_version": HOT_VERSION,
            "description": description,
            "parameters": parameters,
            "resources": resources,
            "outputs": outputs,
        });
        Generated {
            template,
            parameters: values,
            hosts,
        }
    }
}

/// A template generated from a topology that Heat would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the template generated from {file} is not one Heat takes: {errors}")]
pub struct GeneratedError {
    /// The topology file.
    pub file: String,
    /// Heat's messages.
    pub errors: heat::Errors,
}

impl Generated {
    /// The template as sent to Heat: compact JSON (Heat's own format for
    /// `GET .../template`), which keeps the largest topology well under
    /// Heat's `max_template_size` (512 KiB).
    pub fn text(&self) -> String {
        serde_json::to_string(&self.template).unwrap_or_default()
    }

    /// The template as YAML, for people (`--example render`).
    pub fn yaml(&self) -> String {
        serde_yaml::to_string(&self.template).unwrap_or_default()
    }

    /// Parses the text and checks it with these parameter values as Heat
    /// does when it creates the stack; the error is Heat's messages.
    pub fn check(&self, loaded: &LoadedTopology) -> Result<(), GeneratedError> {
        self.check_heat().map_err(|errors| GeneratedError {
            file: loaded.file.clone(),
            errors,
        })
    }

    fn check_heat(&self) -> Result<(), heat::Errors> {
        // The document as sent (JSON text of this value), without parsing
        // the text again; its size is checked against Heat's limit.
        let size = self.text().len();
        if size > MAX_TEMPLATE_BYTES {
            return Err(heat::Error::validation(
                format!("Template size ({size} bytes) exceeds maximum allowed size ({MAX_TEMPLATE_BYTES} bytes)."),
                heat::Path::root(),
            )
            .into());
        }
        let template = heat::Template::from_value(self.template.clone(), None)?;
        let parsed = StackTemplate::new(
            template,
            Environment::new(),
            Files::new(),
            Options::default(),
        )?;
        let values: ParameterValues = self
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        parsed.define(
            &values,
            &StackIdentity {
                stack_name: Some("so-ims-check".into()),
                ..StackIdentity::default()
            },
        )?;
        Ok(())
    }

    /// [`Generated::check`] for a caller's values: Heat's complaint about
    /// a parameter becomes a 400 naming the attribute it came from.
    pub fn check_for_caller(&self) -> Result<(), PluginError> {
        let Err(errors) = self.check_heat() else {
            return Ok(());
        };
        let first = errors
            .first()
            .map(|e| e.message.clone())
            .unwrap_or_default();
        let parameter = first
            .strip_prefix("Parameter '")
            .and_then(|rest| rest.split_once('\''))
            .map(|(p, _)| p.to_string());
        match parameter.as_deref().and_then(parameter_attribute) {
            Some(attr) => Err(PluginError::attribute(attr, first)),
            None => Err(PluginError::Invalid(format!(
                "the generated IMS template is not one Heat takes: {errors}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    #[test]
    fn heats_complaint_about_a_value_names_the_attribute() {
        let catalog = Catalog::builtin().unwrap();
        let loaded = catalog.get("openims").unwrap();
        // Values that bypassed the kind's patterns still meet Heat's
        // constraints in the generated template.
        let mut s = Settings::defaults(&loaded.topology);
        s.forwarder = "not-an-ip".into();
        match generate(loaded, &s).check_for_caller() {
            Err(PluginError::InvalidAttribute { name, message }) => {
                assert_eq!(name, settings::FORWARDER);
                assert!(
                    message.starts_with("Parameter 'dns_forwarder' is invalid"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        let mut s = Settings::defaults(&loaded.topology);
        s.dns_zone = "no_zone".into();
        match generate(loaded, &s).check_for_caller() {
            Err(PluginError::InvalidAttribute { name, .. }) => assert_eq!(name, settings::DNS_ZONE),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_parameter_maps_back_to_an_attribute() {
        let catalog = Catalog::builtin().unwrap();
        for loaded in catalog.iter() {
            let mut s = Settings::defaults(&loaded.topology);
            s.private_subnet = Some("subnet".into());
            for secret in &loaded.topology.secrets {
                s.secrets
                    .insert(*secret, "c2VjcmV0LXNlY3JldC1zZWNyZXQ=".into());
            }
            let g = generate(loaded, &s);
            for p in g.parameters.keys().filter(|p| *p != "lifecycle") {
                assert!(parameter_attribute(p).is_some(), "{p} has no attribute");
            }
        }
    }
}

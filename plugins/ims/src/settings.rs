//! The `ims` kind's attributes and what they mean for one instance:
//! [`kind_attributes`] declares them (names, types, defaults, bounds,
//! patterns, secrets) and [`Settings::from_attributes`] reads an
//! instance's values into the settings the template generator takes,
//! checking what only the chosen topology knows (which service instances
//! exist, their size bounds, which secrets apply). Every error names the
//! attribute.

use std::collections::BTreeMap;
use std::sync::Arc;

use occi_so_sdk::{AttributeSpec, AttributeType, Attributes, PluginError};
use regex::Regex;
use serde_json::Value;

use crate::catalog::{Catalog, LoadedTopology};
use crate::topology::{SecretSetting, Topology};

/// `mcn.topology.type`: which topology (immutable once created).
pub const TOPOLOGY: &str = "mcn.topology.type";
/// `mcn.endpoint.maas`: the MaaS (Zabbix) server the nodes report to.
pub const MAAS: &str = "mcn.endpoint.maas";
/// `mcn.endpoint.api`: the DNSaaS API the nodes register their records with.
pub const DNSAAS_API: &str = "mcn.endpoint.api";
/// `mcn.endpoint.forwarder`: the DNS server (DNSaaS) the nodes resolve through.
pub const FORWARDER: &str = "mcn.endpoint.forwarder";
/// `ims.image`: one Glance image for every unit.
pub const IMAGE: &str = "ims.image";
/// `ims.flavor`: one Nova flavor for every unit.
pub const FLAVOR: &str = "ims.flavor";
/// `ims.key_name`: one Nova keypair for every unit.
pub const KEY_NAME: &str = "ims.key_name";
/// `ims.network.private`: the management/private network.
pub const PRIVATE_NETWORK: &str = "ims.network.private";
/// `ims.network.private_subnet`: the subnet fixed IPs come from.
pub const PRIVATE_SUBNET: &str = "ims.network.private_subnet";
/// `ims.network.public`: the external network of the floating IPs.
pub const PUBLIC_NETWORK: &str = "ims.network.public";
/// `ims.dns.zone`: the IMS domain.
pub const DNS_ZONE: &str = "ims.dns.zone";
/// `ims.dns.tsig_key`: the zone's TSIG key (secret).
pub const TSIG_KEY: &str = "ims.dns.tsig_key";
/// `ims.clearwater.signup_key`: Ellis' sign-up code (secret).
pub const SIGNUP_KEY: &str = "ims.clearwater.signup_key";
/// `ims.size.<service instance>`: units of a service instance.
pub const SIZE_PREFIX: &str = "ims.size.";

/// A name Glance, Nova or Neutron takes: printable, not starting with a
/// space, up to 255 characters; empty means "the topology's".
pub const NAME_PATTERN: &str = r"(?:[^\x00-\x20\x7F][^\x00-\x1F\x7F]{0,254})?";
/// A Nova keypair name; empty means "the topology's".
pub const KEY_PATTERN: &str = r"(?:[A-Za-z0-9._@-][A-Za-z0-9._@ -]{0,254})?";
/// A DNS domain of two labels or more.
pub const DOMAIN_PATTERN: &str = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
/// A host (IPv4 address or DNS name) with an optional port, or empty.
pub const HOST_PATTERN: &str = r"(?:[A-Za-z0-9][A-Za-z0-9.-]{0,252}(?::[0-9]{1,5})?)?";
/// An http(s) URL or a host with an optional port, or empty.
pub const API_PATTERN: &str =
    r"(?:(?:https?://)?[A-Za-z0-9][A-Za-z0-9.-]{0,252}(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~%/-]*)?)?";
/// An IPv4 address, or empty.
pub const IPV4_PATTERN: &str = r"(?:(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))?";
/// A base64 TSIG key (16 to 256 characters).
pub const TSIG_PATTERN: &str = r"[A-Za-z0-9+/]{16,256}={0,2}";
/// Ellis' sign-up code: 6 to 64 characters safe in a shell script.
pub const SIGNUP_PATTERN: &str = r"[A-Za-z0-9._~+-]{6,64}";

/// The `ims` kind's attributes for the topologies of `catalog`.
pub fn kind_attributes(catalog: &Catalog) -> Vec<AttributeSpec> {
    let names = catalog.names();
    let default = catalog.default_name();
    let mut v = vec![
        AttributeSpec::new(TOPOLOGY, AttributeType::Enum(names.clone()))
            .default_value(default)
            .immutable()
            .describe(format!(
                "IMS topology: {} (chosen at creation; default {default})",
                names.join(" or ")
            )),
        AttributeSpec::new(MAAS, AttributeType::String)
            .default_value("")
            .pattern(HOST_PATTERN)
            .describe("MaaS (Zabbix) server the nodes report to: IP or host[:port]; empty: none. Passed to the nodes at provision and on every update"),
        AttributeSpec::new(DNSAAS_API, AttributeType::String)
            .default_value("")
            .pattern(API_PATTERN)
            .describe("DNSaaS API the nodes register their A records with (http[s]://host[:port][/path]); empty: none"),
        AttributeSpec::new(FORWARDER, AttributeType::String)
            .default_value("")
            .pattern(IPV4_PATTERN)
            .describe("DNS server (DNSaaS forwarder) IPv4 address the nodes resolve through; empty: none"),
        AttributeSpec::new(IMAGE, AttributeType::String)
            .pattern(NAME_PATTERN)
            .describe(format!(
                "Glance image for every unit; unset: each service instance's own ({})",
                per_instance(catalog, |si| si.image.clone())
            )),
        AttributeSpec::new(FLAVOR, AttributeType::String)
            .pattern(NAME_PATTERN)
            .describe(format!(
                "Nova flavor for every unit; unset: each service instance's own ({})",
                per_instance(catalog, |si| si.flavor.clone())
            )),
        AttributeSpec::new(KEY_NAME, AttributeType::String)
            .pattern(KEY_PATTERN)
            .describe(format!(
                "Nova keypair for every unit; unset: the topology's ({})",
                per_topology(catalog, |t| t.defaults.key_name.clone())
            )),
        AttributeSpec::new(PRIVATE_NETWORK, AttributeType::String)
            .pattern(NAME_PATTERN)
            .describe(format!(
                "Management/private Neutron network (name or id) of every port; unset: {}",
                per_topology(catalog, |t| t.defaults.private_network.clone())
            )),
        AttributeSpec::new(PRIVATE_SUBNET, AttributeType::String)
            .pattern(NAME_PATTERN)
            .describe("Subnet (name or id) of the private network the fixed IPs come from; unset: Neutron's choice"),
        AttributeSpec::new(PUBLIC_NETWORK, AttributeType::String)
            .pattern(NAME_PATTERN)
            .describe(format!(
                "External Neutron network (name or id) the floating IPs come from; unset: {}",
                per_topology(catalog, |t| t.defaults.public_network.clone())
            )),
        AttributeSpec::new(DNS_ZONE, AttributeType::String)
            .pattern(format!("(?:{DOMAIN_PATTERN})?"))
            .describe(format!(
                "IMS domain (DNS zone); unset: {}",
                per_topology(catalog, |t| t.defaults.dns_zone.clone())
            )),
    ];
    let uses = |s: SecretSetting| -> Vec<String> {
        catalog
            .iter()
            .filter(|t| t.topology.secrets.contains(&s))
            .map(|t| t.topology.name.clone())
            .collect()
    };
    let tsig = uses(SecretSetting::TsigKey);
    if !tsig.is_empty() {
        v.push(
            AttributeSpec::new(TSIG_KEY, AttributeType::String)
                .pattern(TSIG_PATTERN)
                .secret()
                .describe(format!("Base64 TSIG (DNSSEC) key the nodes update the zone with ({}); unset: generated per stack", tsig.join(", "))),
        );
    }
    let signup = uses(SecretSetting::SignupKey);
    if !signup.is_empty() {
        v.push(
            AttributeSpec::new(SIGNUP_KEY, AttributeType::String)
                .pattern(SIGNUP_PATTERN)
                .secret()
                .describe(format!(
                    "Ellis sign-up code ({}); unset: generated per stack",
                    signup.join(", ")
                )),
        );
    }
    // One size attribute per service instance name of any topology, with
    // the widest bounds; the chosen topology's own are checked in validate.
    let mut sizes: BTreeMap<String, (u32, u32, Vec<String>)> = BTreeMap::new();
    for t in catalog.iter() {
        for si in &t.topology.service_instances {
            let e = sizes
                .entry(si.name.clone())
                .or_insert((u32::MAX, 0, Vec::new()));
            e.0 = e.0.min(si.size.min);
            e.1 = e.1.max(si.size.max);
            e.2.push(format!(
                "{} {}..{} (default {})",
                t.topology.name, si.size.min, si.size.max, si.size.def
            ));
        }
    }
    for (name, (min, max, bounds)) in sizes {
        v.push(
            AttributeSpec::new(format!("{SIZE_PREFIX}{name}"), AttributeType::Integer)
                .range(Some(f64::from(min)), Some(f64::from(max)))
                .describe(format!(
                    "Units (VMs) of service instance {name}: {}; a change scales with one stack update",
                    bounds.join("; ")
                )),
        );
    }
    v
}

fn per_instance(
    catalog: &Catalog,
    f: impl Fn(&crate::topology::ServiceInstance) -> String,
) -> String {
    catalog
        .iter()
        .map(|t| {
            let list: Vec<String> = t
                .topology
                .service_instances
                .iter()
                .map(|si| format!("{} {}", si.name, f(si)))
                .collect();
            format!("{}: {}", t.topology.name, list.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn per_topology(catalog: &Catalog, f: impl Fn(&Topology) -> String) -> String {
    catalog
        .iter()
        .map(|t| format!("{} {}", t.topology.name, f(&t.topology)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The attributes' patterns, compiled once per plugin.
#[derive(Debug)]
pub struct Patterns(BTreeMap<String, Regex>);

impl Patterns {
    /// Compiles the patterns of `attributes` (anchored, as the server does).
    pub fn new(attributes: &[AttributeSpec]) -> Result<Patterns, regex::Error> {
        let mut m = BTreeMap::new();
        for a in attributes {
            if let Some(p) = &a.pattern {
                m.insert(a.name.clone(), Regex::new(&format!("^(?:{p})$"))?);
            }
        }
        Ok(Patterns(m))
    }
}

/// What one instance deploys: the chosen topology and every value the
/// template generator needs, defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Units per service instance.
    pub sizes: BTreeMap<String, u32>,
    /// Image override for every unit.
    pub image: Option<String>,
    /// Flavor override for every unit.
    pub flavor: Option<String>,
    /// Keypair override for every unit.
    pub key_name: Option<String>,
    /// Private network.
    pub private_network: String,
    /// Private subnet, if any.
    pub private_subnet: Option<String>,
    /// Public network.
    pub public_network: String,
    /// DNS zone.
    pub dns_zone: String,
    /// MaaS endpoint (may be empty).
    pub maas: String,
    /// DNSaaS API (may be empty).
    pub dnsaas_api: String,
    /// DNS forwarder (may be empty).
    pub forwarder: String,
    /// Secrets the caller gave (the others are generated per stack).
    pub secrets: BTreeMap<SecretSetting, String>,
}

impl Settings {
    /// The topology's defaults: default sizes, no overrides, no endpoints.
    pub fn defaults(t: &Topology) -> Settings {
        Settings {
            sizes: t
                .service_instances
                .iter()
                .map(|si| (si.name.clone(), si.size.def))
                .collect(),
            image: None,
            flavor: None,
            key_name: None,
            private_network: t.defaults.private_network.clone(),
            private_subnet: t.defaults.private_subnet.clone(),
            public_network: t.defaults.public_network.clone(),
            dns_zone: t.defaults.dns_zone.clone(),
            maas: String::new(),
            dnsaas_api: String::new(),
            forwarder: String::new(),
            secrets: BTreeMap::new(),
        }
    }

    /// Reads an instance's attributes: the topology, then every value,
    /// checked against the kind's patterns and the topology. Attributes
    /// not of this kind (`occi.core.title`, ...) are left alone.
    pub fn from_attributes(
        catalog: &Catalog,
        patterns: &Patterns,
        attrs: &Attributes,
    ) -> Result<(Arc<LoadedTopology>, Settings), PluginError> {
        let name = match attrs.get(TOPOLOGY) {
            None => catalog.default_name().to_string(),
            Some(v) => text(TOPOLOGY, v)?,
        };
        let loaded = catalog.get(&name).cloned().ok_or_else(|| {
            PluginError::attribute(
                TOPOLOGY,
                format!(
                    "no topology {name:?} (topologies: {})",
                    catalog.names().join(", ")
                ),
            )
        })?;
        let t = &loaded.topology;
        let mut s = Settings::defaults(t);
        let string = |attr: &str| -> Result<Option<String>, PluginError> {
            match attrs.get(attr) {
                None => Ok(None),
                Some(v) => {
                    let text = text(attr, v)?;
                    if let Some(re) = patterns.0.get(attr) {
                        if !re.is_match(&text) {
                            return Err(PluginError::attribute(
                                attr,
                                format!(
                                    "{} does not match the pattern {}",
                                    shown(attr, &text),
                                    re.as_str()
                                ),
                            ));
                        }
                    }
                    Ok(Some(text))
                }
            }
        };
        let non_empty = |v: Option<String>| v.filter(|s| !s.is_empty());
        s.image = non_empty(string(IMAGE)?);
        s.flavor = non_empty(string(FLAVOR)?);
        s.key_name = non_empty(string(KEY_NAME)?);
        if let Some(v) = non_empty(string(PRIVATE_NETWORK)?) {
            s.private_network = v;
        }
        if let Some(v) = non_empty(string(PRIVATE_SUBNET)?) {
            s.private_subnet = Some(v);
        }
        if let Some(v) = non_empty(string(PUBLIC_NETWORK)?) {
            s.public_network = v;
        }
        if let Some(v) = non_empty(string(DNS_ZONE)?) {
            s.dns_zone = v;
        }
        s.maas = string(MAAS)?.unwrap_or_default();
        s.dnsaas_api = string(DNSAAS_API)?.unwrap_or_default();
        s.forwarder = string(FORWARDER)?.unwrap_or_default();
        for (attr, secret) in [
            (TSIG_KEY, SecretSetting::TsigKey),
            (SIGNUP_KEY, SecretSetting::SignupKey),
        ] {
            if let Some(v) = string(attr)? {
                if !t.secrets.contains(&secret) {
                    let users: Vec<String> = catalog
                        .iter()
                        .filter(|l| l.topology.secrets.contains(&secret))
                        .map(|l| l.topology.name.clone())
                        .collect();
                    return Err(PluginError::attribute(
                        attr,
                        format!(
                            "topology {} does not use it (topologies that do: {})",
                            t.name,
                            if users.is_empty() {
                                "none".into()
                            } else {
                                users.join(", ")
                            }
                        ),
                    ));
                }
                s.secrets.insert(secret, v);
            }
        }
        for (attr, v) in attrs.range(SIZE_PREFIX.to_string()..) {
            let Some(si_name) = attr.strip_prefix(SIZE_PREFIX) else {
                break;
            };
            let Some(si) = t.service_instance(si_name) else {
                return Err(PluginError::attribute(
                    attr,
                    format!(
                        "topology {} has no service instance {si_name:?} (its service instances: {})",
                        t.name,
                        t.service_instances.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            };
            let n = integer(attr, v)?;
            let fits = u32::try_from(n).ok().filter(|n| si.size.allows(*n));
            let Some(n) = fits else {
                return Err(PluginError::attribute(
                    attr,
                    format!(
                        "{n} is outside the bounds of service instance {} in topology {}: min {}, max {}",
                        si.name, t.name, si.size.min, si.size.max
                    ),
                ));
            };
            s.sizes.insert(si.name.clone(), n);
        }
        Ok((loaded, s))
    }
}

fn shown(attr: &str, v: &str) -> String {
    if attr == TSIG_KEY || attr == SIGNUP_KEY {
        "the given value".into()
    } else {
        format!("{v:?}")
    }
}

fn text(attr: &str, v: &Value) -> Result<String, PluginError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(PluginError::attribute(attr, "expected a string")),
    }
}

fn integer(attr: &str, v: &Value) -> Result<i64, PluginError> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    n.ok_or_else(|| {
        PluginError::attribute(attr, format!("expected a whole number of units, got {v}"))
    })
}

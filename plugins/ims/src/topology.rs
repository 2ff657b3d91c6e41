//! An IMS topology as data, modelled on the MCN IMSSO's topology JSON
//! (`data/topologies/*.json` + `data/services/*.json`): service instances
//! with their type, image, flavor, key, networks with security groups,
//! relations, requirements (user-data placeholders bound to other units'
//! addresses), size min/default/max and scaling policies.
//!
//! [`Topology::parse`] reads one YAML (or JSON) file and [`Topology::check`]
//! checks everything a template generator relies on; every error names the
//! file and the field at fault.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Most units one service instance may have (the generated template stays
/// well within Heat's 1000 resources per stack).
pub const MAX_UNITS: u32 = 20;

/// Heat's default `max_resources_per_stack`.
pub const MAX_RESOURCES: usize = 1000;

/// A topology file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("topology file {file}: {field}: {message}")]
pub struct TopologyError {
    /// The file (as named in the catalog, e.g. `topologies/openims.yaml`).
    pub file: String,
    /// The field at fault, e.g. `service_instances[2].size`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Secret settings a topology's scripts may take (as hidden Heat
/// parameters, or generated per stack when the caller gives none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSetting {
    /// The DNSSEC/TSIG key the nodes use to update the zone (`__TSIG_KEY__`).
    TsigKey,
    /// Ellis' sign-up code (`__SIGNUP_KEY__`).
    SignupKey,
}

impl SecretSetting {
    /// The HOT parameter (and generated resource stem) for this secret.
    pub fn parameter(self) -> &'static str {
        match self {
            SecretSetting::TsigKey => "tsig_key",
            SecretSetting::SignupKey => "signup_key",
        }
    }
    /// The user-data placeholder it fills.
    pub fn placeholder(self) -> &'static str {
        match self {
            SecretSetting::TsigKey => "__TSIG_KEY__",
            SecretSetting::SignupKey => "__SIGNUP_KEY__",
        }
    }
    /// Every secret setting.
    pub const ALL: [SecretSetting; 2] = [SecretSetting::TsigKey, SecretSetting::SignupKey];
}

/// Deploy-time defaults (the generated template's parameter defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Nova keypair for service instances that name none.
    pub key_name: String,
    /// The management/private network (name or id) every port is on.
    pub private_network: String,
    /// The external network floating IPs come from.
    pub public_network: String,
    /// A subnet of the private network to take fixed IPs from.
    #[serde(default)]
    pub private_subnet: Option<String>,
    /// The IMS domain.
    pub dns_zone: String,
}

/// IP protocol of a security-group rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP (no ports).
    Icmp,
}

impl Protocol {
    /// As Heat spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
        }
    }
}

/// Traffic direction of a rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Incoming (the default).
    #[default]
    Ingress,
    /// Outgoing.
    Egress,
}

/// One rule of a security group (the IMSSO's `SecurityGroup-*.json` rules).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A label for readers (`sip-udp`); not sent to Heat.
    #[serde(default)]
    pub name: Option<String>,
    /// Protocol.
    pub protocol: Protocol,
    /// First port (TCP/UDP).
    #[serde(default)]
    pub port_range_min: Option<u16>,
    /// Last port (TCP/UDP).
    #[serde(default)]
    pub port_range_max: Option<u16>,
    /// Who may send: a CIDR (default `0.0.0.0/0`).
    #[serde(default)]
    pub remote_ip_prefix: Option<String>,
    /// Or: members of this security group of the topology.
    #[serde(default)]
    pub remote_group: Option<String>,
    /// Direction (default ingress).
    #[serde(default)]
    pub direction: Direction,
}

/// A named security group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroup {
    /// Name, referenced by service instances' networks.
    pub name: String,
    /// Description (sent to Neutron).
    #[serde(default)]
    pub description: Option<String>,
    /// Rules.
    pub rules: Vec<Rule>,
}

/// Size bounds of a service instance, in units (VMs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Size {
    /// Fewest units.
    pub min: u32,
    /// Units when the caller names no size.
    pub def: u32,
    /// Most units.
    pub max: u32,
}

impl Size {
    /// Whether `n` is within the bounds.
    pub fn allows(&self, n: u32) -> bool {
        (self.min..=self.max).contains(&n)
    }
}

/// One network attachment of every unit of a service instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkAttachment {
    /// Name used in resource and output names (`mgmt`).
    pub name: String,
    /// Allocate a floating IP from the public network for it.
    #[serde(default)]
    pub public: bool,
    /// Security groups of the port.
    #[serde(default)]
    pub security_groups: Vec<String>,
}

/// Which address of a source unit a requirement takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressKind {
    /// The port's fixed IP.
    PrivateIp,
    /// The floating IP.
    PublicIp,
}

/// A user-data placeholder bound to the addresses of another service
/// instance's units (the IMSSO's `requirements`), joined with `;`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// The placeholder, e.g. `$DNS_IP`.
    pub name: String,
    /// Which address.
    pub parameter: AddressKind,
    /// The service instance whose units' addresses fill it.
    pub source: String,
    /// The network of the source (the IMSSO's `obj_name`).
    pub network: String,
}

/// A Zabbix alarm of a scaling policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alarm {
    /// The Zabbix item, e.g. `system.cpu.util[,idle]`.
    pub meter_name: String,
    /// `gt`, `lt`, `ge`, `le`, `eq` or `ne`.
    pub comparison_operator: String,
    /// Threshold.
    pub threshold: f64,
    /// `avg`, `min`, `max`, `sum` or `count`.
    pub statistic: String,
    /// Periods the condition must hold.
    pub evaluation_periods: u32,
}

/// What a scaling policy does when its alarm fires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalingAction {
    /// `ChangeInCapacity` (as the IMSSO) or `ExactCapacity`.
    pub adjustment_type: String,
    /// Units to add (negative: remove), or the exact size.
    pub scaling_adjustment: i32,
    /// Seconds before the policy may act again.
    pub cooldown: u32,
}

/// A scaling policy, kept as data (the IMSSO polled Zabbix for it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Name, unique within the service instance.
    pub name: String,
    /// Polling period in seconds.
    pub period: u32,
    /// The alarm.
    pub alarm: Alarm,
    /// The action.
    pub action: ScalingAction,
}

/// A service instance: a set of identical units (VMs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceInstance {
    /// Name; units are `<name>-1`, `<name>-2`, ...
    pub name: String,
    /// Service type (`cscfs`, `dra`, `sprout`, ...), passed to the node.
    pub service_type: String,
    /// Glance image.
    pub image: String,
    /// Nova flavor.
    pub flavor: String,
    /// Nova keypair (default: the topology's).
    #[serde(default)]
    pub key: Option<String>,
    /// Availability zone (the IMSSO's `location`).
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// Size bounds.
    pub size: Size,
    /// Service instances this one talks to (their addresses reach its
    /// configuration; the IMSSO's `relation`).
    #[serde(default, alias = "relation")]
    pub relations: Vec<String>,
    /// Network attachments, first one primary.
    pub networks: Vec<NetworkAttachment>,
    /// Placeholders bound to other units' addresses.
    #[serde(default)]
    pub requirements: Vec<Requirement>,
    /// Extra user-data lines appended to the topology's boot script.
    #[serde(default)]
    pub user_data: Vec<String>,
    /// Static `key: value` settings passed to the node (`IMS_CONF_<KEY>`).
    #[serde(default)]
    pub configuration: BTreeMap<String, String>,
    /// Scaling policies.
    #[serde(default)]
    pub policies: Vec<Policy>,
}

impl ServiceInstance {
    /// The hostname of unit `n` (1-based), e.g. `hss-2`.
    pub fn host(&self, n: u32) -> String {
        format!("{}-{}", self.name, n)
    }
    /// The network attachment named `name`.
    pub fn network(&self, name: &str) -> Option<&NetworkAttachment> {
        self.networks.iter().find(|n| n.name == name)
    }
}

/// A whole topology.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Name, the value of `mcn.topology.type`.
    pub name: String,
    /// One line on what it deploys.
    #[serde(default)]
    pub description: Option<String>,
    /// Deploy-time defaults.
    pub defaults: Defaults,
    /// File name (under `scripts/`) of the first-boot script every unit runs.
    pub boot_script: String,
    /// File name (under `scripts/`) of the configuration script Heat
    /// (re)runs on every unit at create and update.
    pub configure_script: String,
    /// Secret settings the scripts use.
    #[serde(default)]
    pub secrets: Vec<SecretSetting>,
    /// Security groups.
    #[serde(default)]
    pub security_groups: Vec<SecurityGroup>,
    /// Service instances.
    pub service_instances: Vec<ServiceInstance>,
}

/// The user-data placeholders every unit's boot script may use (besides
/// the topology's secrets and each service instance's requirements).
pub const STANDARD_PLACEHOLDERS: &[&str] = &[
    "__HOSTNAME__",
    "__SERVICE_INSTANCE__",
    "__SERVICE_TYPE__",
    "__UNIT__",
    "__ZONE__",
    "__LOCAL_IP__",
    "__PUBLIC_IP__",
    "__ALL_PRIVATE_IPS__",
    "__RELATIONS__",
    "__CONFIGURATION__",
    "__MAAS_IP__",
    "__DNSAAS_API__",
    "__DNS_FORWARDER__",
];

/// `__NAME__` tokens in `text`, in order of appearance, deduplicated.
pub fn placeholders(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found: Vec<String> = Vec::new();
    let mut i = 0;
    while i + 4 <= bytes.len() {
        if bytes[i] == b'_' && bytes[i + 1] == b'_' {
            let start = i + 2;
            let mut j = start;
            while j < bytes.len() && (bytes[j].is_ascii_uppercase() || bytes[j].is_ascii_digit()) {
                j += 1;
            }
            // `_` inside names: accept `A_B` but stop at `__`.
            while j + 1 < bytes.len()
                && bytes[j] == b'_'
                && bytes[j + 1] != b'_'
                && (bytes[j + 1].is_ascii_uppercase() || bytes[j + 1].is_ascii_digit())
            {
                j += 1;
                while j < bytes.len()
                    && (bytes[j].is_ascii_uppercase() || bytes[j].is_ascii_digit())
                {
                    j += 1;
                }
            }
            if j > start && j + 1 < bytes.len() && bytes[j] == b'_' && bytes[j + 1] == b'_' {
                let token = &text[i..j + 2];
                if !found.iter().any(|f| f == token) {
                    found.push(token.to_string());
                }
                i = j + 2;
                continue;
            }
        }
        i += 1;
    }
    found
}

fn is_name(s: &str, first: fn(char) -> bool, rest: fn(char) -> bool, max: usize) -> bool {
    let mut chars = s.chars();
    s.len() <= max && chars.next().is_some_and(first) && chars.all(rest)
}

fn lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// A DNS domain: dot-separated labels of letters, digits and inner hyphens.
pub fn is_domain(s: &str) -> bool {
    s.len() <= 253
        && s.contains('.')
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn is_cidr(s: &str) -> bool {
    let Some((addr, prefix)) = s.split_once('/') else {
        return false;
    };
    let v4 =
        addr.parse::<std::net::Ipv4Addr>().is_ok() && prefix.parse::<u8>().is_ok_and(|p| p <= 32);
    let v6 =
        addr.parse::<std::net::Ipv6Addr>().is_ok() && prefix.parse::<u8>().is_ok_and(|p| p <= 128);
    v4 || v6
}

fn printable(s: &str) -> bool {
    !s.trim().is_empty() && s.len() <= 255 && !s.chars().any(char::is_control)
}

impl Topology {
    /// Parses one topology file (YAML or JSON). Unknown fields are errors.
    pub fn parse(file: &str, text: &str) -> Result<Topology, TopologyError> {
        let de = serde_yaml::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            let at = inner
                .location()
                .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
                .unwrap_or_default();
            TopologyError {
                file: file.to_string(),
                field: if field == "." {
                    "(document)".into()
                } else {
                    field
                },
                message: format!("{inner}{at}"),
            }
        })
    }

    /// The service instance named `name`.
    pub fn service_instance(&self, name: &str) -> Option<&ServiceInstance> {
        self.service_instances.iter().find(|s| s.name == name)
    }

    /// The security group named `name`.
    pub fn security_group(&self, name: &str) -> Option<&SecurityGroup> {
        self.security_groups.iter().find(|g| g.name == name)
    }

    /// Checks everything the template generator relies on. `scripts`
    /// holds the text of the boot and configure scripts (by file name).
    pub fn check(
        &self,
        file: &str,
        scripts: &BTreeMap<String, String>,
    ) -> Result<(), TopologyError> {
        let err = |field: String, message: String| TopologyError {
            file: file.to_string(),
            field,
            message,
        };
        if !is_name(
            &self.name,
            |c| c.is_ascii_lowercase(),
            |c| lower_alnum(c) || c == '-',
            32,
        ) {
            return Err(err(
                "name".into(),
                format!(
                    "{:?} must be 1-32 lower-case letters, digits or '-', starting with a letter",
                    self.name
                ),
            ));
        }
        self.check_defaults(&err)?;
        let mut secrets = BTreeSet::new();
        for (i, s) in self.secrets.iter().enumerate() {
            if !secrets.insert(*s) {
                return Err(err(
                    format!("secrets[{i}]"),
                    format!("{} is listed twice", s.parameter()),
                ));
            }
        }
        self.check_security_groups(&err)?;
        if self.service_instances.is_empty() {
            return Err(err(
                "service_instances".into(),
                "a topology needs at least one service instance".into(),
            ));
        }
        let mut names = BTreeSet::new();
        for (i, si) in self.service_instances.iter().enumerate() {
            let field = |f: &str| format!("service_instances[{i}]{f}");
            if !is_name(&si.name, |c| c.is_ascii_lowercase(), lower_alnum, 24) {
                return Err(err(
                    field(".name"),
                    format!("{:?} must be 1-24 lower-case letters or digits, starting with a letter (it names hosts and Heat parameters)", si.name),
                ));
            }
            if !names.insert(si.name.as_str()) {
                return Err(err(
                    field(".name"),
                    format!("service instance {:?} is defined twice", si.name),
                ));
            }
        }
        // The other checks look service instances up by name: names first.
        for (i, si) in self.service_instances.iter().enumerate() {
            let field = |f: &str| format!("service_instances[{i}]{f}");
            self.check_service_instance(si, &field, &err)?;
        }
        self.check_scripts(scripts, &err)?;
        let resources = self.resources_at_max();
        if resources > MAX_RESOURCES {
            return Err(err(
                "service_instances".into(),
                format!("at their maximum sizes the service instances need {resources} Heat resources; Heat allows {MAX_RESOURCES} per stack"),
            ));
        }
        Ok(())
    }

    fn check_defaults(
        &self,
        err: &impl Fn(String, String) -> TopologyError,
    ) -> Result<(), TopologyError> {
        let d = &self.defaults;
        for (f, v) in [
            ("key_name", &d.key_name),
            ("private_network", &d.private_network),
            ("public_network", &d.public_network),
        ] {
            if !printable(v) {
                return Err(err(
                    format!("defaults.{f}"),
                    "must be a non-empty name without control characters".into(),
                ));
            }
        }
        if let Some(s) = &d.private_subnet {
            if !printable(s) {
                return Err(err(
                    "defaults.private_subnet".into(),
                    "must be a non-empty name without control characters".into(),
                ));
            }
        }
        if !is_domain(&d.dns_zone) {
            return Err(err(
                "defaults.dns_zone".into(),
                format!("{:?} is not a DNS domain", d.dns_zone),
            ));
        }
        Ok(())
    }

    fn check_security_groups(
        &self,
        err: &impl Fn(String, String) -> TopologyError,
    ) -> Result<(), TopologyError> {
        let mut seen = BTreeSet::new();
        for (g, sg) in self.security_groups.iter().enumerate() {
            if !is_name(
                &sg.name,
                |c| c.is_ascii_lowercase(),
                |c| lower_alnum(c) || c == '-',
                32,
            ) {
                return Err(err(
                    format!("security_groups[{g}].name"),
                    format!("{:?} must be 1-32 lower-case letters, digits or '-', starting with a letter", sg.name),
                ));
            }
            if !seen.insert(sg.name.as_str()) {
                return Err(err(
                    format!("security_groups[{g}].name"),
                    format!("security group {:?} is defined twice", sg.name),
                ));
            }
            for (r, rule) in sg.rules.iter().enumerate() {
                let field = |f: &str| format!("security_groups[{g}].rules[{r}]{f}");
                match (rule.protocol, rule.port_range_min, rule.port_range_max) {
                    (Protocol::Icmp, None, None) => {}
                    (Protocol::Icmp, _, _) => {
                        return Err(err(field(""), "icmp rules take no ports".into()));
                    }
                    (_, Some(min), Some(max)) => {
                        if min == 0 || min > max {
                            return Err(err(
                                field(".port_range_min"),
                                format!("port range {min}-{max} must have 1 <= min <= max"),
                            ));
                        }
                    }
                    (p, _, _) => {
                        return Err(err(
                            field(""),
                            format!(
                                "{} rules need port_range_min and port_range_max",
                                p.as_str()
                            ),
                        ));
                    }
                }
                match (&rule.remote_ip_prefix, &rule.remote_group) {
                    (Some(_), Some(_)) => {
                        return Err(err(
                            field(""),
                            "give remote_ip_prefix or remote_group, not both".into(),
                        ));
                    }
                    (Some(cidr), None) if !is_cidr(cidr) => {
                        return Err(err(
                            field(".remote_ip_prefix"),
                            format!("{cidr:?} is not a CIDR like 10.0.0.0/24"),
                        ));
                    }
                    (None, Some(group)) if self.security_group(group).is_none() => {
                        return Err(err(
                            field(".remote_group"),
                            format!("no security group {group:?} in this topology"),
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn check_service_instance(
        &self,
        si: &ServiceInstance,
        field: &impl Fn(&str) -> String,
        err: &impl Fn(String, String) -> TopologyError,
    ) -> Result<(), TopologyError> {
        if !is_name(
            &si.service_type,
            |c| c.is_ascii_lowercase(),
            |c| lower_alnum(c) || c == '-' || c == '_',
            32,
        ) {
            return Err(err(
                field(".service_type"),
                format!("{:?} must be a lower-case name", si.service_type),
            ));
        }
        for (f, v) in [
            (".image", Some(&si.image)),
            (".flavor", Some(&si.flavor)),
            (".key", si.key.as_ref()),
            (".availability_zone", si.availability_zone.as_ref()),
        ] {
            if let Some(v) = v {
                if !printable(v) {
                    return Err(err(
                        field(f),
                        "must be a non-empty name without control characters".into(),
                    ));
                }
            }
        }
        let s = si.size;
        if s.max == 0 || s.max > MAX_UNITS || s.min > s.def || s.def > s.max {
            return Err(err(
                field(".size"),
                format!("min {} / def {} / max {} must satisfy min <= def <= max, 1 <= max <= {MAX_UNITS}", s.min, s.def, s.max),
            ));
        }
        let mut seen = BTreeSet::new();
        for (r, rel) in si.relations.iter().enumerate() {
            if rel == &si.name {
                return Err(err(
                    field(&format!(".relations[{r}]")),
                    "a service instance cannot relate to itself".into(),
                ));
            }
            if self.service_instance(rel).is_none() {
                return Err(err(
                    field(&format!(".relations[{r}]")),
                    format!("no service instance {rel:?} in this topology"),
                ));
            }
            if !seen.insert(rel.as_str()) {
                return Err(err(
                    field(&format!(".relations[{r}]")),
                    format!("{rel:?} is listed twice"),
                ));
            }
        }
        if si.networks.is_empty() {
            return Err(err(
                field(".networks"),
                "every unit needs at least one network".into(),
            ));
        }
        let mut nets = BTreeSet::new();
        for (n, net) in si.networks.iter().enumerate() {
            if !is_name(
                &net.name,
                |c| c.is_ascii_lowercase(),
                |c| lower_alnum(c) || c == '_',
                16,
            ) {
                return Err(err(
                    field(&format!(".networks[{n}].name")),
                    format!(
                        "{:?} must be 1-16 lower-case letters, digits or '_'",
                        net.name
                    ),
                ));
            }
            if !nets.insert(net.name.as_str()) {
                return Err(err(
                    field(&format!(".networks[{n}].name")),
                    format!("network {:?} is attached twice", net.name),
                ));
            }
            for (g, group) in net.security_groups.iter().enumerate() {
                if self.security_group(group).is_none() {
                    return Err(err(
                        field(&format!(".networks[{n}].security_groups[{g}]")),
                        format!("no security group {group:?} in this topology"),
                    ));
                }
            }
        }
        let mut placeholders: Vec<&str> = STANDARD_PLACEHOLDERS.to_vec();
        placeholders.extend(SecretSetting::ALL.iter().map(|s| s.placeholder()));
        for (q, req) in si.requirements.iter().enumerate() {
            let f = |x: &str| field(&format!(".requirements[{q}]{x}"));
            let name_ok = req.name.strip_prefix('$').is_some_and(|rest| {
                is_name(
                    rest,
                    |c| c.is_ascii_alphabetic() || c == '_',
                    |c| c.is_ascii_alphanumeric() || c == '_',
                    64,
                )
            });
            if !name_ok {
                return Err(err(
                    f(".name"),
                    format!(
                        "{:?} must be a shell-style placeholder like $DNS_IP",
                        req.name
                    ),
                ));
            }
            if let Some(clash) = placeholders
                .iter()
                .find(|p| p.starts_with(req.name.as_str()) || req.name.starts_with(**p))
            {
                return Err(err(
                    f(".name"),
                    format!(
                        "{:?} and {clash:?} overlap: one is a prefix of the other",
                        req.name
                    ),
                ));
            }
            placeholders.push(req.name.as_str());
            let Some(source) = self.service_instance(&req.source) else {
                return Err(err(
                    f(".source"),
                    format!("no service instance {:?} in this topology", req.source),
                ));
            };
            let Some(net) = source.network(&req.network) else {
                return Err(err(
                    f(".network"),
                    format!(
                        "service instance {:?} has no network {:?}",
                        req.source, req.network
                    ),
                ));
            };
            if req.parameter == AddressKind::PublicIp && !net.public {
                return Err(err(
                    f(".parameter"),
                    format!(
                        "network {:?} of {:?} is not public: it has no floating IP",
                        req.network, req.source
                    ),
                ));
            }
        }
        for (k, v) in &si.configuration {
            if !is_name(
                k,
                |c| c.is_ascii_lowercase(),
                |c| lower_alnum(c) || c == '_',
                64,
            ) {
                return Err(err(
                    field(&format!(".configuration.{k}")),
                    "keys are lower-case names (letters, digits, '_')".into(),
                ));
            }
            if v.contains('\'') || v.chars().any(char::is_control) {
                return Err(err(
                    field(&format!(".configuration.{k}")),
                    "values may not hold quotes or control characters".into(),
                ));
            }
        }
        let mut policies = BTreeSet::new();
        for (p, policy) in si.policies.iter().enumerate() {
            let f = |x: &str| field(&format!(".policies[{p}]{x}"));
            if policy.name.trim().is_empty() || !policies.insert(policy.name.as_str()) {
                return Err(err(
                    f(".name"),
                    format!(
                        "policy names must be non-empty and unique ({:?})",
                        policy.name
                    ),
                ));
            }
            if s.min == s.max {
                return Err(err(
                    f(""),
                    format!(
                        "a scaling policy needs a scalable size; {} is fixed at {}",
                        si.name, s.min
                    ),
                ));
            }
            if policy.period == 0 {
                return Err(err(f(".period"), "must be at least 1 second".into()));
            }
            let a = &policy.alarm;
            if a.meter_name.trim().is_empty() {
                return Err(err(
                    f(".alarm.meter_name"),
                    "names the monitored item; it may not be empty".into(),
                ));
            }
            if !["gt", "lt", "ge", "le", "eq", "ne"].contains(&a.comparison_operator.as_str()) {
                return Err(err(
                    f(".alarm.comparison_operator"),
                    format!(
                        "{:?} is not one of gt, lt, ge, le, eq, ne",
                        a.comparison_operator
                    ),
                ));
            }
            if !["avg", "min", "max", "sum", "count"].contains(&a.statistic.as_str()) {
                return Err(err(
                    f(".alarm.statistic"),
                    format!("{:?} is not one of avg, min, max, sum, count", a.statistic),
                ));
            }
            if a.evaluation_periods == 0 {
                return Err(err(
                    f(".alarm.evaluation_periods"),
                    "must be at least 1".into(),
                ));
            }
            if !a.threshold.is_finite() {
                return Err(err(f(".alarm.threshold"), "must be a finite number".into()));
            }
            let act = &policy.action;
            match act.adjustment_type.as_str() {
                "ChangeInCapacity" if act.scaling_adjustment == 0 => {
                    return Err(err(
                        f(".action.scaling_adjustment"),
                        "a change of 0 units does nothing".into(),
                    ));
                }
                "ChangeInCapacity" => {}
                "ExactCapacity"
                    if !s.allows(u32::try_from(act.scaling_adjustment).unwrap_or(u32::MAX)) =>
                {
                    return Err(err(
                        f(".action.scaling_adjustment"),
                        format!(
                            "{} is outside the size bounds {}..{}",
                            act.scaling_adjustment, s.min, s.max
                        ),
                    ));
                }
                "ExactCapacity" => {}
                other => {
                    return Err(err(
                        f(".action.adjustment_type"),
                        format!("{other:?} is not ChangeInCapacity or ExactCapacity"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_scripts(
        &self,
        scripts: &BTreeMap<String, String>,
        err: &impl Fn(String, String) -> TopologyError,
    ) -> Result<(), TopologyError> {
        let mut known: Vec<&str> = STANDARD_PLACEHOLDERS.to_vec();
        known.extend(self.secrets.iter().map(|s| s.placeholder()));
        for (field, name) in [
            ("boot_script", &self.boot_script),
            ("configure_script", &self.configure_script),
        ] {
            let Some(text) = scripts.get(name) else {
                return Err(err(
                    field.into(),
                    format!("no script {name:?} under scripts/"),
                ));
            };
            if text.trim().is_empty() {
                return Err(err(field.into(), format!("script {name:?} is empty")));
            }
            if field == "boot_script" {
                if let Some(p) = placeholders(text)
                    .into_iter()
                    .find(|p| !known.contains(&p.as_str()))
                {
                    return Err(err(field.into(), format!("script {name:?} uses {p}, which is not a placeholder of this topology (known: {})", known.join(", "))));
                }
            }
        }
        for (i, si) in self.service_instances.iter().enumerate() {
            let text = si.user_data.join("\n");
            if let Some(p) = placeholders(&text)
                .into_iter()
                .find(|p| !known.contains(&p.as_str()))
            {
                return Err(err(
                    format!("service_instances[{i}].user_data"),
                    format!("uses {p}, which is not a placeholder of this topology"),
                ));
            }
        }
        Ok(())
    }

    /// How many Heat resources the generated template has with every
    /// service instance at `sizes` (missing ones at their default).
    pub fn resource_count(&self, sizes: &BTreeMap<String, u32>) -> usize {
        let per_unit = |si: &ServiceInstance| {
            2 + si.networks.len() + si.networks.iter().filter(|n| n.public).count()
        };
        let units: usize = self
            .service_instances
            .iter()
            .map(|si| {
                let n = sizes.get(&si.name).copied().unwrap_or(si.size.def) as usize;
                n * per_unit(si)
            })
            .sum();
        self.security_groups.len() + 1 + self.secrets.len() + units
    }

    fn resources_at_max(&self) -> usize {
        let max = self
            .service_instances
            .iter()
            .map(|si| (si.name.clone(), si.size.max))
            .collect();
        self.resource_count(&max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_once_each() {
        let text = "a __HOSTNAME__ b __ALL_PRIVATE_IPS__ __HOSTNAME__ $X __x__ ___ __A_B__";
        assert_eq!(
            placeholders(text),
            ["__HOSTNAME__", "__ALL_PRIVATE_IPS__", "__A_B__"]
        );
        assert!(placeholders("no tokens __ here__").is_empty());
    }

    #[test]
    fn domains_and_cidrs() {
        assert!(is_domain("epc.mnc001.mcc001.3gppnetwork.org"));
        assert!(is_domain("example.com"));
        assert!(!is_domain("localhost"));
        assert!(!is_domain("-bad.example.com"));
        assert!(!is_domain("a..b"));
        assert!(is_cidr("0.0.0.0/0"));
        assert!(is_cidr("::/0"));
        assert!(!is_cidr("10.0.0.0/33"));
        assert!(!is_cidr("10.0.0.0"));
    }
}

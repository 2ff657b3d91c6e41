//! An application's services and where their nodes run.
//!
//! * [`Services`]: the `conpaas.services` attribute, one entry per service
//!   as in a ConPaaS manifest (`Type`, `Cloud`, `StartupInstances`):
//!   `{"web": {"type": "php", "cloud": "default", "nodes": {"proxy": 1, ...}}}`.
//! * [`Placement`]: the nodes running now, by service, cloud and role;
//!   changed by `add_nodes` / `remove_nodes` and by adding or replacing
//!   services, and always checked against the service type's rules.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use occi_so_sdk::PluginError;

use crate::service_type::{CountsError, RoleCounts, ServiceType};
use crate::settings::check_cloud;

/// At most this many services per application.
pub const MAX_SERVICES: usize = 16;
/// At most this many nodes of one role in one service (all clouds).
pub const MAX_ROLE_NODES: u32 = 64;
/// At most this many agent nodes per application (all services, all clouds).
pub const MAX_NODES: u32 = 256;

/// One service of the application.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// Its type.
    #[serde(rename = "type", with = "type_name")]
    pub service_type: ServiceType,
    /// The cloud its nodes start on.
    pub cloud: String,
    /// The nodes it starts with, by role.
    pub startup: RoleCounts,
}

mod type_name {
    use super::ServiceType;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &ServiceType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(t.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ServiceType, D::Error> {
        let name = String::deserialize(d)?;
        ServiceType::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown service type {name:?}")))
    }
}

/// The services by name.
pub type Services = BTreeMap<String, ServiceSpec>;

/// Why `conpaas.services` cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServicesError {
    /// Not an object of services.
    #[error("expected a JSON object of services by name, e.g. {{\"web\": {{\"type\": \"php\"}}}}, got {}", .0)]
    NotAnObject(Value),
    /// More services than [`MAX_SERVICES`].
    #[error("{0} services; an application has at most {MAX_SERVICES}")]
    TooManyServices(usize),
    /// A name that cannot name Heat resources.
    #[error("service name {0:?} must be a lower-case letter then up to 31 lower-case letters, digits or '-'")]
    BadName(String),
    /// One service's entry is wrong.
    #[error("service '{name}': {problem}")]
    Service {
        /// The service.
        name: String,
        /// What is wrong with it.
        problem: ServiceProblem,
    },
    /// More startup nodes than [`MAX_NODES`].
    #[error("{0} startup nodes; an application has at most {MAX_NODES} agent nodes")]
    TooManyNodes(u32),
}

/// What is wrong with one service's entry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServiceProblem {
    /// Not an object.
    #[error("expected an object with \"type\" (and \"cloud\", \"nodes\"), got {0}")]
    NotAnObject(Value),
    /// A field other than `type`, `cloud`, `nodes`.
    #[error("unknown field '{0}' (fields: type, cloud, nodes)")]
    UnknownField(String),
    /// A type ConPaaS does not have.
    #[error("unknown service type '{0}' (types: {types})", types = ServiceType::names())]
    UnknownType(String),
    /// `type` is not a string.
    #[error("\"type\" must be a string, got {0}")]
    TypeNotText(Value),
    /// No `type`.
    #[error("\"type\" is required (types: {})", ServiceType::names())]
    NoType,
    /// The cloud is unknown or not a cloud name.
    #[error("{}", cloud_message(.0))]
    Cloud(PluginError),
    /// `cloud` is not a string.
    #[error("\"cloud\" must be a string, got {0}")]
    CloudNotText(Value),
    /// A role's count is not a whole number.
    #[error("the count of role '{role}' must be a whole number >= 0, got {count}")]
    BadCount {
        /// The role.
        role: String,
        /// The count given.
        count: Value,
    },
    /// `nodes` is not an object.
    #[error("\"nodes\" must be an object of counts by role, got {0}")]
    NodesNotObject(Value),
    /// The startup nodes break the type's rules or the bounds.
    #[error(transparent)]
    Roles(#[from] RolesError),
}

/// A cloud check's complaint, without the attribute it would name.
fn cloud_message(e: &PluginError) -> String {
    match e {
        PluginError::InvalidAttribute { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// One service's nodes break its type's rules or the per-role bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolesError {
    /// The type's rules.
    #[error(transparent)]
    Type(#[from] CountsError),
    /// More nodes of one role than [`MAX_ROLE_NODES`].
    #[error("{count} '{role}' nodes; a role has at most {MAX_ROLE_NODES}")]
    TooMany {
        /// The role.
        role: String,
        /// Its nodes.
        count: u32,
    },
}

/// A placement that cannot be, or nodes that cannot be removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// Nodes of a service the application does not define.
    #[error("service '{0}' is not defined")]
    Undefined(String),
    /// A service's nodes break its rules.
    #[error("service '{name}': {problem}")]
    Service {
        /// The service.
        name: String,
        /// What is wrong.
        problem: RolesError,
    },
    /// More agent nodes than [`MAX_NODES`].
    #[error("{0} agent nodes; an application has at most {MAX_NODES}")]
    TooManyNodes(u32),
    /// Removing nodes of a service that has none.
    #[error("service '{0}' has no nodes")]
    NoNodes(String),
    /// Removing more nodes than run.
    #[error("cannot remove {count} '{role}' node{} of service '{service}': {available} run{}{}", plural(*.count), singular(*.available), on_cloud(.cloud))]
    NotEnough {
        /// The service.
        service: String,
        /// The role.
        role: String,
        /// How many were to be removed.
        count: u32,
        /// How many run (on `cloud`, or everywhere).
        available: u32,
        /// The cloud asked for, if any.
        cloud: Option<String>,
    },
}

/// `s` after a plural noun.
fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `s` after a singular verb.
fn singular(n: u32) -> &'static str {
    if n == 1 {
        "s"
    } else {
        ""
    }
}

fn on_cloud(cloud: &Option<String>) -> String {
    match cloud {
        Some(c) => format!(" on cloud '{c}'"),
        None => String::new(),
    }
}

/// Service names: a lower-case letter, then up to 31 lower-case letters,
/// digits and `-` (they name Heat resources and attributes).
pub fn valid_service_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 32
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A node count from JSON: a whole number or its text (ConPaaS manifests
/// write `"1"`).
pub fn count_of(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Reads `conpaas.services`; `app_cloud` is where services without a
/// `cloud` start. The error says which service and field is wrong.
pub fn parse_services(
    value: &Value,
    app_cloud: &str,
    known_clouds: Option<&[String]>,
) -> Result<Services, ServicesError> {
    let entries = match value {
        Value::Null => return Ok(Services::new()),
        Value::Object(m) => m,
        other => return Err(ServicesError::NotAnObject(other.clone())),
    };
    if entries.len() > MAX_SERVICES {
        return Err(ServicesError::TooManyServices(entries.len()));
    }
    let mut services = Services::new();
    let mut total = 0;
    for (name, entry) in entries {
        if !valid_service_name(name) {
            return Err(ServicesError::BadName(name.clone()));
        }
        let fault = |problem: ServiceProblem| ServicesError::Service {
            name: name.clone(),
            problem,
        };
        let Value::Object(fields) = entry else {
            return Err(fault(ServiceProblem::NotAnObject(entry.clone())));
        };
        for key in fields.keys() {
            if !matches!(key.as_str(), "type" | "cloud" | "nodes") {
                return Err(fault(ServiceProblem::UnknownField(key.clone())));
            }
        }
        let service_type = match fields.get("type") {
            Some(Value::String(t)) => ServiceType::parse(t)
                .ok_or_else(|| fault(ServiceProblem::UnknownType(t.clone())))?,
            Some(other) => return Err(fault(ServiceProblem::TypeNotText(other.clone()))),
            None => return Err(fault(ServiceProblem::NoType)),
        };
        let cloud = match fields.get("cloud") {
            None | Some(Value::Null) => app_cloud.to_string(),
            Some(Value::String(c)) => {
                check_cloud("", c, known_clouds).map_err(|e| fault(ServiceProblem::Cloud(e)))?;
                c.clone()
            }
            Some(other) => return Err(fault(ServiceProblem::CloudNotText(other.clone()))),
        };
        let startup = match fields.get("nodes") {
            None | Some(Value::Null) => service_type.starting_nodes(),
            Some(Value::Object(roles)) => {
                let mut counts = RoleCounts::new();
                for (role, n) in roles {
                    let n = count_of(n).ok_or_else(|| {
                        fault(ServiceProblem::BadCount {
                            role: role.clone(),
                            count: n.clone(),
                        })
                    })?;
                    if n > 0 {
                        counts.insert(role.clone(), n);
                    } else if service_type.role(role).is_none() {
                        counts.insert(role.clone(), 0);
                    }
                }
                counts
            }
            Some(other) => return Err(fault(ServiceProblem::NodesNotObject(other.clone()))),
        };
        check_role_totals(service_type, &startup).map_err(|e| fault(e.into()))?;
        total += startup.values().sum::<u32>();
        services.insert(
            name.clone(),
            ServiceSpec {
                service_type,
                cloud,
                startup,
            },
        );
    }
    if total > MAX_NODES {
        return Err(ServicesError::TooManyNodes(total));
    }
    Ok(services)
}

/// The type's rules plus the per-role bound.
fn check_role_totals(t: ServiceType, counts: &RoleCounts) -> Result<(), RolesError> {
    t.check_counts(counts)?;
    for (role, n) in counts {
        if *n > MAX_ROLE_NODES {
            return Err(RolesError::TooMany {
                role: role.clone(),
                count: *n,
            });
        }
    }
    Ok(())
}

/// The nodes running now: service → cloud → role → count. Entries with
/// no nodes are never kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Placement(pub BTreeMap<String, BTreeMap<String, RoleCounts>>);

impl Placement {
    /// The startup placement of `services`.
    pub fn startup(services: &Services) -> Placement {
        let mut p = Placement::default();
        for (name, spec) in services {
            p.add(name, &spec.cloud, &spec.startup);
        }
        p
    }

    /// Reads the `conpaas.nodes` attribute back.
    pub fn from_value(v: &Value) -> Placement {
        serde_json::from_value(v.clone()).unwrap_or_default()
    }

    /// As the `conpaas.nodes` attribute shows it.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Adds nodes of service `name` on `cloud`.
    pub fn add(&mut self, name: &str, cloud: &str, counts: &RoleCounts) {
        for (role, n) in counts {
            if *n == 0 {
                continue;
            }
            *self
                .0
                .entry(name.to_string())
                .or_default()
                .entry(cloud.to_string())
                .or_default()
                .entry(role.clone())
                .or_default() += n;
        }
    }

    /// Drops every node of service `name`.
    pub fn remove_service(&mut self, name: &str) {
        self.0.remove(name);
    }

    /// Takes `counts` nodes of service `name` away: from `cloud` only when
    /// given, else from the clouds other than `home` first (last name
    /// first), then from `home`. Nothing changes on error.
    pub fn remove(
        &mut self,
        name: &str,
        cloud: Option<&str>,
        home: &str,
        counts: &RoleCounts,
    ) -> Result<(), PlacementError> {
        let mut next = self.clone();
        let Some(clouds) = next.0.get_mut(name) else {
            return Err(PlacementError::NoNodes(name.to_string()));
        };
        for (role, n) in counts {
            let mut left = *n;
            let order: Vec<String> = match cloud {
                Some(c) => vec![c.to_string()],
                None => {
                    let mut others: Vec<String> =
                        clouds.keys().filter(|c| *c != home).cloned().collect();
                    others.reverse();
                    others.push(home.to_string());
                    others
                }
            };
            let available: u32 = order
                .iter()
                .filter_map(|c| clouds.get(c).and_then(|r| r.get(role)))
                .sum();
            if available < left {
                return Err(PlacementError::NotEnough {
                    service: name.to_string(),
                    role: role.clone(),
                    count: *n,
                    available,
                    cloud: cloud.map(str::to_string),
                });
            }
            for c in order {
                if left == 0 {
                    break;
                }
                if let Some(have) = clouds.get_mut(&c).and_then(|r| r.get_mut(role)) {
                    let take = left.min(*have);
                    *have -= take;
                    left -= take;
                }
            }
        }
        next.prune();
        *self = next;
        Ok(())
    }

    fn prune(&mut self) {
        for clouds in self.0.values_mut() {
            for roles in clouds.values_mut() {
                roles.retain(|_, n| *n > 0);
            }
            clouds.retain(|_, roles| !roles.is_empty());
        }
        self.0.retain(|_, clouds| !clouds.is_empty());
    }

    /// Service `name`'s nodes by role over all clouds.
    pub fn totals(&self, name: &str) -> RoleCounts {
        let mut t = RoleCounts::new();
        for roles in self.0.get(name).into_iter().flat_map(|c| c.values()) {
            for (role, n) in roles {
                *t.entry(role.clone()).or_default() += n;
            }
        }
        t
    }

    /// Every agent node of the application.
    pub fn node_count(&self) -> u32 {
        self.0
            .values()
            .flat_map(|c| c.values())
            .flat_map(|r| r.values())
            .sum()
    }

    /// The clouds that have nodes.
    pub fn clouds(&self) -> Vec<String> {
        let mut v: Vec<String> = self.0.values().flat_map(|c| c.keys().cloned()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// The nodes on `cloud`: service → role → count.
    pub fn on_cloud(&self, cloud: &str) -> BTreeMap<String, RoleCounts> {
        self.0
            .iter()
            .filter_map(|(svc, clouds)| clouds.get(cloud).map(|r| (svc.clone(), r.clone())))
            .collect()
    }

    /// Checks every service against its type's rules and the bounds.
    pub fn check(&self, services: &Services) -> Result<(), PlacementError> {
        for name in self.0.keys() {
            if !services.contains_key(name) {
                return Err(PlacementError::Undefined(name.clone()));
            }
        }
        for (name, spec) in services {
            check_role_totals(spec.service_type, &self.totals(name)).map_err(|problem| {
                PlacementError::Service {
                    name: name.clone(),
                    problem,
                }
            })?;
        }
        let n = self.node_count();
        if n > MAX_NODES {
            return Err(PlacementError::TooManyNodes(n));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn counts(pairs: &[(&str, u32)]) -> RoleCounts {
        pairs.iter().map(|(r, n)| (r.to_string(), *n)).collect()
    }

    #[test]
    fn services_parse_with_defaults_and_manifest_counts() {
        let s = parse_services(
            &json!({
                "web": {"type": "php", "nodes": {"proxy": "1", "web": 2, "backend": 1}},
                "db": {"type": "mysql", "cloud": "b"},
                "fs": {"type": "xtreemfs"}
            }),
            "default",
            Some(&["b".to_string()]),
        )
        .unwrap();
        assert_eq!(
            s["web"].startup,
            counts(&[("proxy", 1), ("web", 2), ("backend", 1)])
        );
        assert_eq!(s["web"].cloud, "default");
        assert_eq!(s["db"].startup, counts(&[("mysql", 1)]));
        assert_eq!(s["db"].cloud, "b");
        assert_eq!(s["fs"].startup, counts(&[("dir_mrc_osd", 1)]));
        assert!(parse_services(&json!({}), "default", None)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn service_mistakes_are_named() {
        let err = |v: Value| {
            parse_services(&v, "default", Some(&["b".to_string()]))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(json!({"db": {"type": "postgres"}})),
            "service 'db': unknown service type 'postgres' (types: php, java, mysql, xtreemfs, generic, helloworld)"
        );
        assert_eq!(
            err(json!({"db": {"type": "mysql", "nodes": {"master": 1}}})),
            "service 'db': unknown role 'master' for service type 'mysql' (roles: mysql, glb)"
        );
        assert!(err(json!({"db": {"type": "mysql", "cloud": "c"}}))
            .contains("unknown cloud 'c' (configured clouds: default, b)"));
        assert!(err(json!({"Web": {"type": "php"}})).contains("service name"));
        assert!(err(json!({"w": {"type": "php", "size": 1}})).contains("unknown field 'size'"));
        assert!(err(json!({"w": {}})).contains("\"type\" is required"));
        assert!(err(json!({"w": {"type": "php", "nodes": {"web": -1}}})).contains("whole number"));
        assert!(
            err(json!({"w": {"type": "helloworld", "nodes": {"node": 65}}})).contains("at most 64")
        );
        assert!(err(json!([1])).contains("JSON object"));
        assert!(err(json!({"w": {"type": "php", "nodes": {"web": 1}}})).contains("'proxy'"));
    }

    #[test]
    fn placement_adds_and_removes_across_clouds() {
        let mut p = Placement::default();
        p.add("web", "default", &counts(&[("proxybackendweb", 1)]));
        p.add("web", "b", &counts(&[("web", 2)]));
        p.add("web", "default", &counts(&[("web", 1)]));
        assert_eq!(
            p.totals("web"),
            counts(&[("proxybackendweb", 1), ("web", 3)])
        );
        assert_eq!(p.clouds(), ["b", "default"]);
        // other clouds first
        p.remove("web", None, "default", &counts(&[("web", 2)]))
            .unwrap();
        assert_eq!(p.on_cloud("b"), BTreeMap::new());
        assert_eq!(p.clouds(), ["default"]);
        let before = p.clone();
        let e = p
            .remove("web", Some("default"), "default", &counts(&[("web", 2)]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot remove 2 'web' nodes of service 'web': 1 runs on cloud 'default'"
        );
        assert_eq!(p, before, "a refused removal changes nothing");
        let v = p.to_value();
        assert_eq!(
            v,
            json!({"web": {"default": {"proxybackendweb": 1, "web": 1}}})
        );
        assert_eq!(Placement::from_value(&v), p);
    }

    #[test]
    fn placement_check_applies_the_type_rules() {
        let services = parse_services(&json!({"db": {"type": "mysql"}}), "default", None).unwrap();
        let mut p = Placement::startup(&services);
        p.check(&services).unwrap();
        p.remove("db", None, "default", &counts(&[("mysql", 1)]))
            .unwrap();
        let e = p.check(&services).unwrap_err().to_string();
        assert!(e.contains("at least one node doing 'mysql'"), "{e}");
    }
}

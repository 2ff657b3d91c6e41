//! The ConPaaS service types and their agent roles, as the ConPaaS 2.x
//! service managers define them (`get_node_roles`, `get_starting_nodes`,
//! `check_add_nodes`, `check_remove_nodes`).
//!
//! A role is what one agent VM does. Some roles are *packed*: the single
//! node a service starts with does several jobs at once (`proxybackendweb`
//! for php and java, `dir_mrc_osd` for xtreemfs). Packed roles exist only
//! from the service's start; `add_nodes` and `remove_nodes` take the
//! type's scalable roles, as the managers' `check_node_roles` does.
//!
//! Every service keeps at least one node doing each of its *functions*
//! (php: a proxy, a web server and a backend, packed or not), and the
//! type-specific rules of the real managers hold after every change.

use std::collections::BTreeMap;
use std::fmt;

/// Node counts by role.
pub type RoleCounts = BTreeMap<String, u32>;

/// A shape of nodes the service's manager would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CountsError {
    /// A role the type does not have.
    #[error("unknown role '{role}' for service type '{service_type}' (roles: {})", .service_type.role_names())]
    UnknownRole {
        /// The service type.
        service_type: ServiceType,
        /// The role given.
        role: String,
    },
    /// More nodes of a role than the type allows.
    #[error("a {service_type} service has at most {max} '{role}' node{}", plural(*.max))]
    TooMany {
        /// The service type.
        service_type: ServiceType,
        /// The role.
        role: String,
        /// Its maximum.
        max: u32,
    },
    /// No node performs a function the type needs.
    #[error("a {service_type} service needs at least one node doing '{function}' (role {})", .roles.join(" or "))]
    MissingFunction {
        /// The service type.
        service_type: ServiceType,
        /// The function.
        function: &'static str,
        /// The roles that perform it.
        roles: Vec<&'static str>,
    },
    /// More than one proxy without stand-alone web and backend nodes.
    #[error("a {0} service with more than one proxy needs at least one stand-alone 'web' node and one stand-alone 'backend' node")]
    ProxyRule(ServiceType),
}

/// The plural `s` of a count in messages.
fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// A ConPaaS service type (`GET /available_services` of a 2.x director).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceType {
    /// PHP web hosting (webservers manager).
    Php,
    /// Java servlet hosting (webservers manager).
    Java,
    /// MySQL with Galera replication and the Galera load balancer.
    Mysql,
    /// The XtreemFS distributed file system.
    Xtreemfs,
    /// Generic service: a master and regular nodes running user scripts.
    Generic,
    /// The example service.
    Helloworld,
}

/// One role of a service type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Role {
    /// The role name as ConPaaS spells it.
    pub name: &'static str,
    /// The functions a node of this role performs.
    pub functions: &'static [&'static str],
    /// Taken by `add_nodes` (a role of `get_node_roles`).
    pub scalable: bool,
    /// `remove_nodes` may take nodes of this role away.
    pub removable: bool,
    /// At most this many nodes of the role.
    pub max: Option<u32>,
}

const fn role(name: &'static str, functions: &'static [&'static str]) -> Role {
    Role {
        name,
        functions,
        scalable: true,
        removable: true,
        max: None,
    }
}

const PROXY: &str = "proxy";
const WEB: &str = "web";
const BACKEND: &str = "backend";

const WEBSERVER_ROLES: &[Role] = &[
    role(PROXY, &[PROXY]),
    role(WEB, &[WEB]),
    role(BACKEND, &[BACKEND]),
    Role {
        scalable: false,
        removable: false,
        ..role("proxybackendweb", &[PROXY, BACKEND, WEB])
    },
];

const MYSQL_ROLES: &[Role] = &[role("mysql", &["mysql"]), role("glb", &["glb"])];

const XTREEMFS_ROLES: &[Role] = &[
    Role {
        removable: false,
        ..role("dir", &["dir"])
    },
    Role {
        removable: false,
        ..role("mrc", &["mrc"])
    },
    role("osd", &["osd"]),
    Role {
        scalable: false,
        removable: false,
        ..role("dir_mrc_osd", &["dir", "mrc", "osd"])
    },
];

const GENERIC_ROLES: &[Role] = &[
    Role {
        removable: false,
        max: Some(1),
        ..role("master", &["master"])
    },
    role("node", &["node"]),
];

const HELLOWORLD_ROLES: &[Role] = &[role("node", &["node"])];

impl ServiceType {
    /// Every type, in the order ConPaaS lists them.
    pub const ALL: [ServiceType; 6] = [
        ServiceType::Php,
        ServiceType::Java,
        ServiceType::Mysql,
        ServiceType::Xtreemfs,
        ServiceType::Generic,
        ServiceType::Helloworld,
    ];

    /// The type name (`php`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ServiceType::Php => "php",
            ServiceType::Java => "java",
            ServiceType::Mysql => "mysql",
            ServiceType::Xtreemfs => "xtreemfs",
            ServiceType::Generic => "generic",
            ServiceType::Helloworld => "helloworld",
        }
    }

    /// The type called `name`.
    pub fn parse(name: &str) -> Option<ServiceType> {
        ServiceType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// `php, java, ...` for messages.
    pub fn names() -> String {
        ServiceType::ALL.map(ServiceType::name).join(", ")
    }

    /// The agent type its nodes run (`TYPE` in the agent's config.cfg):
    /// php and java share the web-hosting agent.
    pub fn agent_type(self) -> &'static str {
        match self {
            ServiceType::Php | ServiceType::Java => "web",
            other => other.name(),
        }
    }

    /// Its roles, scalable ones first.
    pub fn roles(self) -> &'static [Role] {
        match self {
            ServiceType::Php | ServiceType::Java => WEBSERVER_ROLES,
            ServiceType::Mysql => MYSQL_ROLES,
            ServiceType::Xtreemfs => XTREEMFS_ROLES,
            ServiceType::Generic => GENERIC_ROLES,
            ServiceType::Helloworld => HELLOWORLD_ROLES,
        }
    }

    /// The role called `name`.
    pub fn role(self, name: &str) -> Option<&'static Role> {
        self.roles().iter().find(|r| r.name == name)
    }

    /// `proxy, web, ...` for messages.
    pub fn role_names(self) -> String {
        self.roles()
            .iter()
            .map(|r| r.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The roles `add_nodes` and `remove_nodes` take.
    pub fn scalable_role_names(self) -> String {
        self.roles()
            .iter()
            .filter(|r| r.scalable)
            .map(|r| r.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The functions every running service of this type needs a node for.
    fn required_functions(self) -> &'static [&'static str] {
        match self {
            ServiceType::Php | ServiceType::Java => &[PROXY, WEB, BACKEND],
            ServiceType::Mysql => &["mysql"],
            ServiceType::Xtreemfs => &["dir", "mrc", "osd"],
            ServiceType::Generic => &["master"],
            ServiceType::Helloworld => &["node"],
        }
    }

    /// The nodes a service starts with when its startup counts are not
    /// given (the managers' `get_starting_nodes`).
    pub fn starting_nodes(self) -> RoleCounts {
        let (role, n) = match self {
            ServiceType::Php | ServiceType::Java => ("proxybackendweb", 1),
            ServiceType::Mysql => ("mysql", 1),
            ServiceType::Xtreemfs => ("dir_mrc_osd", 1),
            ServiceType::Generic => ("master", 1),
            ServiceType::Helloworld => ("node", 1),
        };
        RoleCounts::from([(role.to_string(), n)])
    }

    /// Checks that `counts` (the service's nodes over all clouds) is a
    /// shape the service's manager accepts: known roles, each function
    /// provided, the per-role maxima and the type's own rules.
    pub fn check_counts(self, counts: &RoleCounts) -> Result<(), CountsError> {
        for (name, n) in counts {
            let Some(role) = self.role(name) else {
                return Err(CountsError::UnknownRole {
                    service_type: self,
                    role: name.clone(),
                });
            };
            if let Some(max) = role.max {
                if *n > max {
                    return Err(CountsError::TooMany {
                        service_type: self,
                        role: name.clone(),
                        max,
                    });
                }
            }
        }
        let providers = |function: &str| -> u32 {
            counts
                .iter()
                .filter(|(name, _)| {
                    self.role(name)
                        .is_some_and(|r| r.functions.contains(&function))
                })
                .map(|(_, n)| *n)
                .sum()
        };
        for function in self.required_functions() {
            if providers(function) == 0 {
                let roles: Vec<&str> = self
                    .roles()
                    .iter()
                    .filter(|r| r.functions.contains(function))
                    .map(|r| r.name)
                    .collect();
                return Err(CountsError::MissingFunction {
                    service_type: self,
                    function,
                    roles,
                });
            }
        }
        if matches!(self, ServiceType::Php | ServiceType::Java) && providers(PROXY) > 1 {
            // webservers check_add_nodes / check_remove_nodes
            let dedicated = |r: &str| counts.get(r).copied().unwrap_or(0);
            if dedicated(WEB) == 0 || dedicated(BACKEND) == 0 {
                return Err(CountsError::ProxyRule(self));
            }
        }
        Ok(())
    }
}

impl fmt::Display for ServiceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, u32)]) -> RoleCounts {
        pairs.iter().map(|(r, n)| (r.to_string(), *n)).collect()
    }

    #[test]
    fn every_type_starts_with_a_valid_shape() {
        for t in ServiceType::ALL {
            t.check_counts(&t.starting_nodes()).unwrap();
            assert_eq!(ServiceType::parse(t.name()), Some(t));
        }
        assert_eq!(ServiceType::parse("postgres"), None);
        assert_eq!(
            ServiceType::names(),
            "php, java, mysql, xtreemfs, generic, helloworld"
        );
    }

    #[test]
    fn roles_are_the_managers_roles() {
        assert_eq!(
            ServiceType::Php.role_names(),
            "proxy, web, backend, proxybackendweb"
        );
        assert_eq!(
            ServiceType::Java.scalable_role_names(),
            "proxy, web, backend"
        );
        assert_eq!(ServiceType::Mysql.role_names(), "mysql, glb");
        assert_eq!(
            ServiceType::Xtreemfs.role_names(),
            "dir, mrc, osd, dir_mrc_osd"
        );
        assert_eq!(ServiceType::Generic.role_names(), "master, node");
        assert_eq!(ServiceType::Helloworld.role_names(), "node");
        assert_eq!(ServiceType::Php.agent_type(), "web");
        assert_eq!(ServiceType::Mysql.agent_type(), "mysql");
    }

    #[test]
    fn webservers_need_every_function_and_the_proxy_rule() {
        let t = ServiceType::Php;
        t.check_counts(&counts(&[("proxybackendweb", 1), ("web", 3)]))
            .unwrap();
        t.check_counts(&counts(&[("proxy", 1), ("web", 1), ("backend", 1)]))
            .unwrap();
        let e = t
            .check_counts(&counts(&[("web", 2)]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'proxy'") && e.contains("proxy or proxybackendweb"),
            "{e}"
        );
        let e = t
            .check_counts(&counts(&[("proxybackendweb", 1), ("proxy", 1)]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("stand-alone 'web'"), "{e}");
        t.check_counts(&counts(&[
            ("proxybackendweb", 1),
            ("proxy", 1),
            ("web", 1),
            ("backend", 1),
        ]))
        .unwrap();
        let e = t
            .check_counts(&counts(&[("mysql", 1)]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown role 'mysql' for service type 'php'"),
            "{e}"
        );
    }

    #[test]
    fn other_types_keep_their_minimum_and_maximum() {
        let e = ServiceType::Mysql
            .check_counts(&counts(&[("glb", 1)]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'mysql'"), "{e}");
        ServiceType::Mysql
            .check_counts(&counts(&[("mysql", 2), ("glb", 1)]))
            .unwrap();
        let e = ServiceType::Generic
            .check_counts(&counts(&[("master", 2)]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 1 'master' node"), "{e}");
        let e = ServiceType::Xtreemfs
            .check_counts(&counts(&[("dir", 1), ("mrc", 1)]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'osd'"), "{e}");
        ServiceType::Helloworld
            .check_counts(&counts(&[("node", 5)]))
            .unwrap();
        let e = ServiceType::Helloworld
            .check_counts(&counts(&[("node", 0)]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least one node"), "{e}");
    }
}

//! How occi-so reaches an OpenStack Heat: endpoint or service catalog,
//! authentication, TLS, timeouts, retries and polling. Loadable with serde
//! (config file) or from the usual `OS_*` environment variables.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use occi_so_sdk::Secret;
use serde::{Deserialize, Serialize};

use crate::poller::PollConfig;

/// Everything the OpenStack Heat backend needs to know.
///
/// Durations are written the humantime way (`"5s"`, `"250ms"`, `"2h"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenStackConfig {
    /// The Heat endpoint, e.g. `https://heat.example.org:8004/v1/%(tenant_id)s`
    /// (`%(tenant_id)s`, `$(tenant_id)s`, `%(project_id)s` and
    /// `$(project_id)s` become the project id) or a fixed
    /// `http://127.0.0.1:8004/v1/admin`. When absent, the endpoint is looked
    /// up in the Keystone service catalog.
    pub heat_url: Option<String>,
    /// How requests are authenticated.
    pub auth: AuthConfig,
    /// Catalog service type of Heat.
    pub service_type: String,
    /// Catalog interface to use.
    pub interface: Interface,
    /// Catalog region; `None` takes the first endpoint of the interface.
    pub region: Option<String>,
    /// A PEM file of CA certificates to trust instead of the built-in
    /// roots (like `OS_CACERT`).
    pub ca_file: Option<PathBuf>,
    /// Skip TLS certificate verification (like `--insecure`); for labs only.
    pub insecure: bool,
    /// Time to set up a TCP (and TLS) connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Time for one whole HTTP request, answer included.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// A Keystone token is renewed this long before it expires (at most
    /// half its lifetime).
    #[serde(with = "humantime_serde")]
    pub token_refresh_margin: Duration,
    /// Retries of calls that are safe to repeat.
    pub retry: RetryConfig,
    /// How stacks are polled while someone waits for them.
    pub poll: PollConfig,
    /// Extra `resource_registry` entries merged into every stack's
    /// environment (entries of the stack's own environment win). For a Heat
    /// that lacks some services, e.g. `OS::Nova::Server: OS::Heat::None` on
    /// a local test Heat.
    pub resource_registry: BTreeMap<String, String>,
}

impl Default for OpenStackConfig {
    fn default() -> Self {
        OpenStackConfig {
            heat_url: None,
            auth: AuthConfig::default(),
            service_type: "orchestration".into(),
            interface: Interface::Public,
            region: None,
            ca_file: None,
            insecure: false,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            token_refresh_margin: Duration::from_secs(120),
            retry: RetryConfig::default(),
            poll: PollConfig::default(),
            resource_registry: BTreeMap::new(),
        }
    }
}

/// `resource_registry` entries that let templates written for a full cloud
/// run on the local test Heat of `scripts/heat-local.sh`, which has no Nova,
/// Neutron, Cinder, ... and no Keystone. Each maps to `OS::Heat::None`
/// (accepts any properties; every attribute is `null`):
///
/// * every resource of the services it lacks (`OS::Nova::*`, ...);
/// * `OS::Heat::WaitConditionHandle`/`WaitCondition` and the AWS ones:
///   their handle needs a Keystone user;
/// * `OS::Heat::SoftwareDeployment`/`StructuredDeployment` (+ groups): with
///   the default `signal_transport` they need a Keystone user too (they do
///   work for real with `signal_transport: NO_SIGNAL`, but a registry entry
///   cannot tell the two apart).
///
/// `OS::Heat::SoftwareConfig`, `CloudConfig`, `MultipartMime`,
/// `StructuredConfig` and `SoftwareComponent` are *not* mapped: they work
/// for real there.
pub const LOCAL_HEAT_STUBS: &[(&str, &str)] = &[
    ("OS::Nova::*", "OS::Heat::None"),
    ("OS::Neutron::*", "OS::Heat::None"),
    ("OS::Cinder::*", "OS::Heat::None"),
    ("OS::Glance::*", "OS::Heat::None"),
    ("OS::Swift::*", "OS::Heat::None"),
    ("OS::Octavia::*", "OS::Heat::None"),
    ("OS::Designate::*", "OS::Heat::None"),
    ("OS::Manila::*", "OS::Heat::None"),
    ("OS::Trove::*", "OS::Heat::None"),
    ("OS::Aodh::*", "OS::Heat::None"),
    ("OS::Barbican::*", "OS::Heat::None"),
    ("OS::Zaqar::*", "OS::Heat::None"),
    ("OS::Mistral::*", "OS::Heat::None"),
    ("OS::Magnum::*", "OS::Heat::None"),
    ("OS::Zun::*", "OS::Heat::None"),
    ("OS::Keystone::*", "OS::Heat::None"),
    ("AWS::EC2::*", "OS::Heat::None"),
    ("OS::Heat::WaitConditionHandle", "OS::Heat::None"),
    ("OS::Heat::WaitCondition", "OS::Heat::None"),
    ("OS::Heat::UpdateWaitConditionHandle", "OS::Heat::None"),
    ("AWS::CloudFormation::WaitConditionHandle", "OS::Heat::None"),
    ("AWS::CloudFormation::WaitCondition", "OS::Heat::None"),
    ("OS::Heat::SoftwareDeployment", "OS::Heat::None"),
    ("OS::Heat::SoftwareDeploymentGroup", "OS::Heat::None"),
    ("OS::Heat::StructuredDeployment", "OS::Heat::None"),
    ("OS::Heat::StructuredDeploymentGroup", "OS::Heat::None"),
];

impl OpenStackConfig {
    /// A configuration for the local test Heat of `scripts/heat-local.sh`
    /// at `heat_url` (`http://127.0.0.1:PORT/v1/admin`): pass-through auth
    /// (that Heat ignores tokens), polling tuned to its 1–3 s operations,
    /// and [`LOCAL_HEAT_STUBS`] merged into every stack's environment.
    pub fn local_heat(heat_url: impl Into<String>) -> Self {
        OpenStackConfig {
            heat_url: Some(heat_url.into()),
            poll: PollConfig {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(2),
                ..PollConfig::default()
            },
            resource_registry: LOCAL_HEAT_STUBS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..OpenStackConfig::default()
        }
    }
}

/// How requests to Heat are authenticated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum AuthConfig {
    /// Forward the caller's `X-Auth-Token` and act in the caller's project,
    /// as MCN service orchestrators do. With `auth_url` and no `heat_url`,
    /// the Heat endpoint is looked up in the catalog that Keystone returns
    /// for the caller's token scoped to the caller's project (by name, in
    /// `project_domain_name`).
    PassThrough {
        /// Keystone v3 (`https://keystone:5000/v3`), for catalog lookup.
        #[serde(default)]
        auth_url: Option<String>,
        /// Domain of the callers' projects.
        #[serde(default = "default_domain")]
        project_domain_name: String,
    },
    /// Keystone v3 password auth with occi-so's own user. The token is
    /// scoped to `project_id` or `project_name`; with neither, to the
    /// caller's project (by name, one token per project), so tenants'
    /// stacks stay apart.
    Password {
        /// Keystone v3 URL.
        auth_url: String,
        /// User name.
        username: String,
        /// Password (never logged; serialised as `******`).
        #[serde(serialize_with = "redacted")]
        password: Secret,
        /// The user's domain.
        #[serde(default = "default_domain")]
        user_domain_name: String,
        /// Fixed project, by name.
        #[serde(default)]
        project_name: Option<String>,
        /// Fixed project, by id (wins over the name).
        #[serde(default)]
        project_id: Option<String>,
        /// Domain of `project_name` and of callers' projects.
        #[serde(default = "default_domain")]
        project_domain_name: String,
    },
    /// Keystone v3 application-credential auth; the credential fixes the
    /// project.
    ApplicationCredential {
        /// Keystone v3 URL.
        auth_url: String,
        /// Credential id (or give `name` and `username`).
        #[serde(default)]
        id: Option<String>,
        /// Credential name, with `username`.
        #[serde(default)]
        name: Option<String>,
        /// The owner's user name, with `name`.
        #[serde(default)]
        username: Option<String>,
        /// The owner's domain, with `name`.
        #[serde(default = "default_domain")]
        user_domain_name: String,
        /// The credential secret (never logged; serialised as `******`).
        #[serde(serialize_with = "redacted")]
        secret: Secret,
    },
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig::PassThrough {
            auth_url: None,
            project_domain_name: default_domain(),
        }
    }
}

/// Secrets in a serialised configuration (a config dump, `--show-config`)
/// are written as `******`, never as themselves.
fn redacted<S: serde::Serializer>(_: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("******")
}

fn default_domain() -> String {
    "Default".into()
}

/// Catalog endpoint interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interface {
    /// `public`.
    #[default]
    Public,
    /// `internal`.
    Internal,
    /// `admin`.
    Admin,
}

impl Interface {
    /// The catalog's spelling.
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Interface::Public => "public",
            Interface::Internal => "internal",
            Interface::Admin => "admin",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "public" | "publicurl" => Some(Interface::Public),
            "internal" | "internalurl" => Some(Interface::Internal),
            "admin" | "adminurl" => Some(Interface::Admin),
            _ => None,
        }
    }
}

/// Bounded retries with exponential backoff and full jitter.
///
/// `GET`, `DELETE` and `POST /validate` are retried after connection
/// failures, timeouts and HTTP 502/503/504. `POST /stacks`, `PATCH` and
/// `PUT` are retried only when the request certainly never reached Heat
/// (the connection could not be made).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Tries in all, the first included (1 = no retry).
    pub attempts: u32,
    /// Upper bound of the first backoff.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Upper bound of any backoff.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            attempts: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A field is missing or malformed.
    #[error("OpenStack backend configuration: {0}")]
    Invalid(String),
    /// The CA file could not be read or parsed.
    #[error("CA file {path}: {message}")]
    CaFile {
        /// The configured path.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
}

impl OpenStackConfig {
    /// A configuration from OpenStack-client environment variables, read
    /// through `var` (pass `|k| std::env::var(k).ok()`):
    /// `OS_AUTH_URL`, `OS_USERNAME`, `OS_PASSWORD`, `OS_USER_DOMAIN_NAME`,
    /// `OS_PROJECT_NAME`, `OS_PROJECT_ID`, `OS_PROJECT_DOMAIN_NAME`,
    /// `OS_APPLICATION_CREDENTIAL_ID`, `OS_APPLICATION_CREDENTIAL_NAME`,
    /// `OS_APPLICATION_CREDENTIAL_SECRET`, `OS_REGION_NAME`, `OS_INTERFACE`,
    /// `OS_CACERT`, `OS_INSECURE`, and `HEAT_URL` (python-heatclient's
    /// endpoint override). `OS_AUTH_TYPE` picks the method (`password`,
    /// `v3password`, `v3applicationcredential`, `token`/`passthrough`);
    /// without it, an application-credential secret means that method, a
    /// password means password auth, and anything else pass-through.
    pub fn from_os_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let domain = |k: &str| get(k).unwrap_or_else(default_domain);
        let mut config = OpenStackConfig {
            heat_url: get("HEAT_URL"),
            region: get("OS_REGION_NAME"),
            ca_file: get("OS_CACERT").map(PathBuf::from),
            insecure: get("OS_INSECURE")
                .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes")),
            ..OpenStackConfig::default()
        };
        if let Some(i) = get("OS_INTERFACE") {
            config.interface = Interface::parse(&i).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "OS_INTERFACE={i:?}: expected public, internal or admin"
                ))
            })?;
        }
        let method = get("OS_AUTH_TYPE").map(|m| m.to_ascii_lowercase());
        let method = match method.as_deref() {
            Some(m) => m.to_string(),
            None if get("OS_APPLICATION_CREDENTIAL_SECRET").is_some() => {
                "v3applicationcredential".into()
            }
            None if get("OS_PASSWORD").is_some() => "password".into(),
            None => "passthrough".into(),
        };
        let need = |k: &str| {
            get(k).ok_or_else(|| {
                ConfigError::Invalid(format!("{k} is required with OS_AUTH_TYPE={method}"))
            })
        };
        config.auth = match method.as_str() {
            "password" | "v3password" => AuthConfig::Password {
                auth_url: need("OS_AUTH_URL")?,
                username: need("OS_USERNAME")?,
                password: Secret::new(need("OS_PASSWORD")?),
                user_domain_name: domain("OS_USER_DOMAIN_NAME"),
                project_name: get("OS_PROJECT_NAME"),
                project_id: get("OS_PROJECT_ID"),
                project_domain_name: domain("OS_PROJECT_DOMAIN_NAME"),
            },
            "v3applicationcredential" | "applicationcredential" => {
                AuthConfig::ApplicationCredential {
                    auth_url: need("OS_AUTH_URL")?,
                    id: get("OS_APPLICATION_CREDENTIAL_ID"),
                    name: get("OS_APPLICATION_CREDENTIAL_NAME"),
                    username: get("OS_USERNAME"),
                    user_domain_name: domain("OS_USER_DOMAIN_NAME"),
                    secret: Secret::new(need("OS_APPLICATION_CREDENTIAL_SECRET")?),
                }
            }
            "token" | "v3token" | "passthrough" | "pass_through" => AuthConfig::PassThrough {
                auth_url: get("OS_AUTH_URL"),
                project_domain_name: domain("OS_PROJECT_DOMAIN_NAME"),
            },
            other => {
                return Err(ConfigError::Invalid(format!(
                    "OS_AUTH_TYPE={other:?}: expected password, v3applicationcredential or token"
                )))
            }
        };
        config.check()?;
        Ok(config)
    }

    /// Reject configurations that cannot work, naming the field at fault.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        match &self.auth {
            AuthConfig::PassThrough { auth_url, .. } => {
                if self.heat_url.is_none() && auth_url.is_none() {
                    return bad("pass-through auth needs heat_url, or auth_url to find Heat in the service catalog".into());
                }
            }
            AuthConfig::Password {
                username, auth_url, ..
            } => {
                if username.is_empty() {
                    return bad("password auth needs a username".into());
                }
                if auth_url.is_empty() {
                    return bad("password auth needs auth_url".into());
                }
            }
            AuthConfig::ApplicationCredential {
                auth_url,
                id,
                name,
                username,
                ..
            } => {
                if auth_url.is_empty() {
                    return bad("application-credential auth needs auth_url".into());
                }
                if id.is_none() && (name.is_none() || username.is_none()) {
                    return bad(
                        "application-credential auth needs an id, or a name and a username".into(),
                    );
                }
            }
        }
        if self.service_type.is_empty() {
            return bad("service_type must not be empty".into());
        }
        if self.retry.attempts == 0 {
            return bad("retry.attempts must be at least 1".into());
        }
        let multiplier_ok = self.poll.multiplier.is_finite() && self.poll.multiplier >= 1.0;
        if !multiplier_ok || !(0.0..=1.0).contains(&self.poll.jitter) {
            return bad("poll.multiplier must be ≥ 1 and poll.jitter within 0..1".into());
        }
        if self.poll.initial.is_zero() {
            return bad("poll.initial must be more than zero".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn reads_a_password_openrc() {
        let c = OpenStackConfig::from_os_env(env(&[
            ("OS_AUTH_URL", "https://keystone.example:5000/v3"),
            ("OS_USERNAME", "so"),
            ("OS_PASSWORD", "hunter2"),
            ("OS_PROJECT_NAME", "demo"),
            ("OS_USER_DOMAIN_NAME", "Default"),
            ("OS_REGION_NAME", "RegionTwo"),
            ("OS_INTERFACE", "internal"),
        ]))
        .unwrap();
        assert_eq!(c.region.as_deref(), Some("RegionTwo"));
        assert_eq!(c.interface, Interface::Internal);
        match &c.auth {
            AuthConfig::Password {
                username,
                password,
                project_name,
                ..
            } => {
                assert_eq!(username, "so");
                assert_eq!(password.expose(), "hunter2");
                assert_eq!(project_name.as_deref(), Some("demo"));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            !format!("{c:?}").contains("hunter2"),
            "password never printed"
        );
    }

    #[test]
    fn reads_an_application_credential_and_a_pass_through() {
        let c = OpenStackConfig::from_os_env(env(&[
            ("OS_AUTH_URL", "http://127.0.0.1:5000/v3"),
            ("OS_APPLICATION_CREDENTIAL_ID", "abc"),
            ("OS_APPLICATION_CREDENTIAL_SECRET", "s3cr3t"),
        ]))
        .unwrap();
        assert!(matches!(c.auth, AuthConfig::ApplicationCredential { .. }));
        let c = OpenStackConfig::from_os_env(env(&[(
            "HEAT_URL",
            "http://127.0.0.1:8004/v1/%(tenant_id)s",
        )]))
        .unwrap();
        assert!(matches!(c.auth, AuthConfig::PassThrough { .. }));
    }

    #[test]
    fn missing_pieces_are_named() {
        let e = OpenStackConfig::from_os_env(env(&[])).unwrap_err();
        assert!(e.to_string().contains("heat_url"), "{e}");
        let e = OpenStackConfig::from_os_env(env(&[("OS_PASSWORD", "x")])).unwrap_err();
        assert!(e.to_string().contains("OS_AUTH_URL"), "{e}");
        let e = OpenStackConfig::from_os_env(env(&[
            ("HEAT_URL", "http://h/v1/x"),
            ("OS_INTERFACE", "sideways"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("OS_INTERFACE"), "{e}");
    }

    #[test]
    fn loads_from_a_config_file_with_humantime_durations() {
        let text = r#"
heat_url: "http://127.0.0.1:8004/v1/%(tenant_id)s"
request_timeout: 30s
auth:
  method: password
  auth_url: http://127.0.0.1:5000/v3
  username: so
  password: pw
poll:
  initial: 250ms
  max: 5s
resource_registry:
  "OS::Nova::Server": "OS::Heat::None"
"#;
        let c: OpenStackConfig = serde_yaml::from_str(text).unwrap();
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!(c.poll.initial, Duration::from_millis(250));
        assert_eq!(c.poll.multiplier, PollConfig::default().multiplier);
        assert_eq!(c.resource_registry.len(), 1);
        c.check().unwrap();
        let dumped = serde_yaml::to_string(&c).unwrap();
        assert!(dumped.contains("password: '******'"), "{dumped}");
        assert!(!dumped.contains("pw\n"), "{dumped}");
        let bad: Result<OpenStackConfig, _> = serde_yaml::from_str("heat_urll: x");
        assert!(bad.unwrap_err().to_string().contains("heat_urll"));
    }
}

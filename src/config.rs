//! `occi-so serve` settings: command-line flags, environment variables
//! and an optional YAML file, resolved once into [`Settings`].
//!
//! Precedence: flag > environment variable > config file > default. The
//! file uses the flags' names as keys (`heat-url: ...`); unknown keys are
//! refused with their name, so a typo never silently falls back to a
//! default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ValueEnum;
use occi_so_backend::{AuthConfig, EmbeddedConfig, OpenStackConfig};
use occi_so_http::{AuthSettings, Limits, TlsSettings};
use serde::Deserialize;

/// Where stacks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The embedded engine (zero setup).
    Embedded,
    /// A real OpenStack Heat over its REST API (`--heat-url`).
    Openstack,
}

/// How callers are authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Development: no token check; the tenant is `X-Tenant-Name` or the
    /// default tenant.
    None,
    /// Tokens listed in a file (`--token-file`), each for some tenants.
    Static,
    /// Keystone v3 token validation (`--keystone-url`).
    Keystone,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, one line per event.
    Pretty,
    /// One JSON object per line (for log shippers).
    Json,
}

/// Options of `occi-so serve` (each also an environment variable and a
/// config-file key).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ServeArgs {
    /// YAML config file; its keys are the long flag names (`heat-url: ...`).
    #[arg(long, env = "OCCI_SO_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8051].
    #[arg(long, env = "OCCI_SO_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Base URL used in `Location` headers [default: from the request's Host].
    #[arg(long, env = "OCCI_SO_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Stack backend [default: embedded].
    #[arg(long, env = "OCCI_SO_BACKEND", value_enum)]
    pub backend: Option<BackendKind>,
    /// OpenStack Heat endpoint with the project, e.g. http://127.0.0.1:8004/v1/admin.
    #[arg(long, env = "OCCI_SO_HEAT_URL", value_name = "URL")]
    pub heat_url: Option<String>,
    /// Authentication mode [default: none].
    #[arg(long, env = "OCCI_SO_AUTH", value_enum)]
    pub auth: Option<AuthMode>,
    /// Static tokens, one `TOKEN TENANT [TENANT...]` per line (`*`: any tenant).
    #[arg(long, env = "OCCI_SO_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Keystone base URL, e.g. http://127.0.0.1:5000 (v3 is used).
    #[arg(long, env = "OCCI_SO_KEYSTONE_URL", value_name = "URL")]
    pub keystone_url: Option<String>,
    /// Longest time a validated Keystone token is trusted without asking again [default: 10m].
    #[arg(long, env = "OCCI_SO_KEYSTONE_CACHE", value_name = "DURATION")]
    pub keystone_cache: Option<String>,
    /// Tenant used with `--auth none` when a request has no X-Tenant-Name [default: default].
    #[arg(long, env = "OCCI_SO_DEFAULT_TENANT", value_name = "NAME")]
    pub default_tenant: Option<String>,
    /// Directory of declarative plugins (repeatable).
    #[arg(
        long = "plugins",
        env = "OCCI_SO_PLUGINS",
        value_name = "DIR",
        value_delimiter = ','
    )]
    pub plugins: Vec<PathBuf>,
    /// File whose first line is the admin API's token (`Authorization:
    /// Bearer ...`) [default: the admin API is off].
    #[arg(long, env = "OCCI_SO_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Journal directory [default: a fresh temporary directory, said in the log].
    #[arg(long, env = "OCCI_SO_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Seal the journal and the embedded engine's stack files with the key in this file (32 bytes, base64; mode 600); OCCI_SO_SECRET_KEY may hold the key itself [default: plain files, mode 600].
    #[arg(long, env = "OCCI_SO_SECRET_KEY_FILE", value_name = "FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// fsync the journal after every batch of changes [default: true].
    #[arg(long, env = "OCCI_SO_JOURNAL_FSYNC", value_name = "BOOL")]
    pub journal_fsync: Option<bool>,
    /// Plugin bound to `/orchestrator/` [default: ims].
    #[arg(long, env = "OCCI_SO_DEFAULT_SERVICE", value_name = "NAME")]
    pub default_service: Option<String>,
    /// Largest request body, e.g. 1MiB or 65536 [default: 1MiB].
    #[arg(long, env = "OCCI_SO_MAX_BODY", value_name = "SIZE")]
    pub max_body: Option<String>,
    /// Longest time one request may take [default: 60s].
    #[arg(long, env = "OCCI_SO_REQUEST_TIMEOUT", value_name = "DURATION")]
    pub request_timeout: Option<String>,
    /// Close a connection with no request in flight after this long [default: 30s].
    #[arg(long, env = "OCCI_SO_IDLE_TIMEOUT", value_name = "DURATION")]
    pub idle_timeout: Option<String>,
    /// Longest time to send a request head once begun (then 408) [default: 20s].
    #[arg(long, env = "OCCI_SO_HEADER_TIMEOUT", value_name = "DURATION")]
    pub header_timeout: Option<String>,
    /// Open connections served in full; beyond, /healthz or 503 [default: 10000 or the open-files limit - 256].
    #[arg(long, env = "OCCI_SO_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Log every answered request at INFO (an access log); off, only 5xx answers are [default: false].
    #[arg(long, env = "OCCI_SO_ACCESS_LOG", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub access_log: Option<bool>,
    /// How long DELETE waits for dispose before answering 202 [default: 30s].
    #[arg(long, env = "OCCI_SO_DISPOSE_WAIT", value_name = "DURATION")]
    pub dispose_wait: Option<String>,
    /// Longest time a plugin may wait for one stack [default: 30m].
    #[arg(long, env = "OCCI_SO_STACK_TIMEOUT", value_name = "DURATION")]
    pub stack_timeout: Option<String>,
    /// On SIGTERM/SIGINT, how long to wait for requests and operations [default: 20s].
    #[arg(long, env = "OCCI_SO_SHUTDOWN_GRACE", value_name = "DURATION")]
    pub shutdown_grace: Option<String>,
    /// How many operations may wait behind the running one, per instance [default: 16].
    #[arg(long, env = "OCCI_SO_QUEUE_LIMIT", value_name = "COUNT")]
    pub queue_limit: Option<usize>,
    /// How many events each instance keeps for `?watch` replays [default: 64].
    #[arg(long, env = "OCCI_SO_EVENT_RETENTION", value_name = "COUNT")]
    pub event_retention: Option<usize>,
    /// How many finished operation records each tenant keeps [default: 1000].
    #[arg(long, env = "OCCI_SO_OPERATION_RETENTION", value_name = "COUNT")]
    pub operation_retention: Option<usize>,
    /// How long finished operation records are kept [default: 7d].
    #[arg(long, env = "OCCI_SO_OPERATION_MAX_AGE", value_name = "DURATION")]
    pub operation_max_age: Option<String>,
    /// Log format [default: pretty].
    #[arg(long, env = "OCCI_SO_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter (tracing env-filter syntax) [default: RUST_LOG, else info].
    #[arg(long, env = "OCCI_SO_LOG", value_name = "FILTER")]
    pub log: Option<String>,
    /// PEM certificate chain; with --tls-key the server speaks HTTPS only.
    #[arg(long, env = "OCCI_SO_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "OCCI_SO_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
}

/// The config file: the same settings, keyed by flag name.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    public_url: Option<String>,
    backend: Option<BackendKind>,
    heat_url: Option<String>,
    openstack: Option<OpenStackConfig>,
    embedded: Option<EmbeddedConfig>,
    #[serde(default)]
    clouds: BTreeMap<String, CloudFile>,
    /// One section per compiled plugin crate, by its section name.
    #[serde(default)]
    plugin_config: BTreeMap<String, serde_json::Value>,
    auth: Option<AuthMode>,
    token_file: Option<PathBuf>,
    keystone_url: Option<String>,
    keystone_cache: Option<String>,
    default_tenant: Option<String>,
    #[serde(default)]
    plugins: Vec<PathBuf>,
    admin_token_file: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    secret_key_file: Option<PathBuf>,
    journal_fsync: Option<bool>,
    default_service: Option<String>,
    max_body: Option<serde_yaml::Value>,
    request_timeout: Option<String>,
    idle_timeout: Option<String>,
    header_timeout: Option<String>,
    max_connections: Option<usize>,
    access_log: Option<bool>,
    dispose_wait: Option<String>,
    stack_timeout: Option<String>,
    shutdown_grace: Option<String>,
    queue_limit: Option<usize>,
    event_retention: Option<usize>,
    operation_retention: Option<usize>,
    operation_max_age: Option<String>,
    log_format: Option<LogFormat>,
    log: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

/// One named cloud of the config file's `clouds:` section: a backend of
/// its own that plugins may place stacks on (`StackRecord.cloud`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct CloudFile {
    backend: BackendKind,
    heat_url: Option<String>,
    openstack: Option<OpenStackConfig>,
    embedded: Option<EmbeddedConfig>,
}

/// A setting that cannot be used; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Where stacks run, resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum BackendSettings {
    /// The embedded engine (with no `state_dir` of its own, its stacks are
    /// kept under the server's state directory).
    Embedded(Box<EmbeddedConfig>),
    /// A real OpenStack Heat.
    OpenStack(Box<OpenStackConfig>),
}

/// Where the key sealing the state files comes from (read at start; the
/// key itself is never kept in the settings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretKeySource {
    /// `--secret-key-file` (or `secret_key_file:` in the config file).
    File(PathBuf),
    /// The `OCCI_SO_SECRET_KEY` environment variable.
    Env,
}

/// The variable that may hold the sealing key itself.
pub const SECRET_KEY_VAR: &str = "OCCI_SO_SECRET_KEY";

/// Everything `serve` needs, resolved and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Listen address.
    pub listen: SocketAddr,
    /// Fixed base URL for `Location` headers, if configured.
    pub public_url: Option<String>,
    /// Backend of the default cloud.
    pub backend: BackendSettings,
    /// Named clouds (`clouds:` in the config file), by name.
    pub clouds: BTreeMap<String, BackendSettings>,
    /// The compiled plugins' settings (`plugin-config:` in the config
    /// file), by section name; handed to them through `BuildContext`.
    pub plugin_config: BTreeMap<String, serde_json::Value>,
    /// Auth.
    pub auth: AuthSettings,
    /// Declarative plugin directories (loaded and watched at start).
    pub plugin_dirs: Vec<PathBuf>,
    /// The admin token's file (`None`: the admin API is off).
    pub admin_token_file: Option<PathBuf>,
    /// Journal directory; `None` means a fresh temporary one.
    pub state_dir: Option<PathBuf>,
    /// Where the key that seals state files comes from (`None`: plain).
    pub secret_key: Option<SecretKeySource>,
    /// fsync the journal.
    pub journal_fsync: bool,
    /// Plugin bound to `/orchestrator/`.
    pub default_service: String,
    /// Request limits.
    pub limits: Limits,
    /// How long `DELETE` waits for dispose.
    pub dispose_wait: Duration,
    /// How long a plugin may wait for one stack.
    pub stack_timeout: Duration,
    /// Shutdown grace period.
    pub shutdown_grace: Duration,
    /// Operations that may wait per instance.
    pub queue_limit: usize,
    /// Events each instance keeps.
    pub event_retention: usize,
    /// Finished operation records each tenant keeps.
    pub operation_retention: usize,
    /// How long finished operation records are kept.
    pub operation_max_age: Duration,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter, if set.
    pub log: Option<String>,
    /// TLS, if configured.
    pub tls: Option<TlsSettings>,
}

fn duration(key: &str, text: Option<&str>, default: Duration) -> Result<Duration, ConfigError> {
    match text {
        None => Ok(default),
        Some(t) => humantime::parse_duration(t.trim()).map_err(|e| {
            ConfigError(format!(
                "{key}: {t:?} is not a duration like 30s, 5m or 1h ({e})"
            ))
        }),
    }
}

/// A count setting: `default` when not given, at least `min`.
fn count(
    key: &str,
    given: Option<usize>,
    default: usize,
    min: usize,
) -> Result<usize, ConfigError> {
    match given {
        None => Ok(default),
        Some(n) if n >= min => Ok(n),
        Some(n) => Err(ConfigError(format!(
            "{key}: {n} is too small (at least {min})"
        ))),
    }
}

/// Parses `65536`, `64KiB`, `64k`, `1MiB`, `1M` (binary units).
fn size(key: &str, text: &str) -> Result<usize, ConfigError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let bad = || {
        ConfigError(format!(
            "{key}: {text:?} is not a size like 65536, 64KiB or 1MiB"
        ))
    };
    let n: usize = digits.parse().map_err(|_| bad())?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(factor).filter(|n| *n > 0).ok_or_else(bad)
}

fn http_url(key: &str, text: &str) -> Result<String, ConfigError> {
    let url = reqwest::Url::parse(text.trim())
        .map_err(|e| ConfigError(format!("{key}: {text:?} is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError(format!(
            "{key}: {text:?} must be an http:// or https:// URL with a host"
        )));
    }
    Ok(text.trim().trim_end_matches('/').to_string())
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("config file {}: {e}", path.display())))?;
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    serde_yaml::from_str(&text)
        .map_err(|e| ConfigError(format!("config file {}: {e}", path.display())))
}

/// The OpenStack settings of the default cloud (`what` empty) or of a
/// named one: its `openstack:` section, else (default cloud only) the
/// OpenStack client's `OS_*` environment; `heat_url` wins over both.
fn openstack_settings(
    what: &str,
    section: Option<&OpenStackConfig>,
    heat_url: Option<&String>,
    os_env_allowed: bool,
) -> Result<BackendSettings, ConfigError> {
    let os_env = os_env_allowed
        && ["OS_AUTH_URL", "HEAT_URL"]
            .iter()
            .any(|k| std::env::var(k).is_ok_and(|v| !v.trim().is_empty()));
    let mut os = match section {
        Some(c) => c.clone(),
        None if os_env => OpenStackConfig::from_os_env(|k| std::env::var(k).ok())
            .map_err(|e| ConfigError(format!("{what}{e}")))?,
        None => OpenStackConfig::default(),
    };
    if let Some(url) = heat_url {
        os.heat_url = Some(http_url(&format!("{what}heat-url"), url)?);
    }
    let catalog = !matches!(os.auth, AuthConfig::PassThrough { auth_url: None, .. });
    if os.heat_url.is_none() && !catalog {
        return Err(ConfigError(if what.is_empty() {
            "--backend openstack needs --heat-url (or OCCI_SO_HEAT_URL), e.g. \
             http://127.0.0.1:8004/v1/admin, or Keystone settings (OS_AUTH_URL, or \
             an openstack: section in the config file) to find Heat in the catalog"
                .into()
        } else {
            format!(
                "{what}backend openstack needs heat-url, or an openstack: section with \
                 Keystone settings to find Heat in the catalog"
            )
        }));
    }
    Ok(BackendSettings::OpenStack(Box::new(os)))
}

/// A named cloud's settings; errors start with `clouds.<name>: `.
fn cloud_settings(name: &str, cloud: &CloudFile) -> Result<BackendSettings, ConfigError> {
    let what = format!("clouds.{name}: ");
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Err(ConfigError(format!(
            "clouds: {name:?} is not a cloud name (1 to 64 of A-Z a-z 0-9 - _ .)"
        )));
    }
    if name == "default" {
        return Err(ConfigError(
            "clouds.default: the name 'default' is the server's own backend \
             (--backend); give the other clouds other names"
                .into(),
        ));
    }
    match cloud.backend {
        BackendKind::Embedded => {
            if cloud.openstack.is_some() || cloud.heat_url.is_some() {
                return Err(ConfigError(format!(
                    "{what}openstack settings given for backend embedded"
                )));
            }
            Ok(BackendSettings::Embedded(Box::new(
                cloud.embedded.clone().unwrap_or_default(),
            )))
        }
        BackendKind::Openstack => {
            if cloud.embedded.is_some() {
                return Err(ConfigError(format!(
                    "{what}embedded settings given for backend openstack"
                )));
            }
            openstack_settings(
                &what,
                cloud.openstack.as_ref(),
                cloud.heat_url.as_ref(),
                false,
            )
        }
    }
}

impl ServeArgs {
    /// Resolve flags, environment and the config file into [`Settings`].
    pub fn resolve(&self) -> Result<Settings, ConfigError> {
        let file = match &self.config {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        let listen = match (&self.listen, &file.listen) {
            (Some(a), _) => *a,
            (None, Some(t)) => t.trim().parse().map_err(|_| {
                ConfigError(format!(
                    "listen: {t:?} is not an address like 127.0.0.1:8051"
                ))
            })?,
            (None, None) => SocketAddr::from(([127, 0, 0, 1], 8051)),
        };
        let public_url = match self.public_url.as_ref().or(file.public_url.as_ref()) {
            Some(u) => Some(http_url("public-url", u)?),
            None => None,
        };
        let backend = match self
            .backend
            .or(file.backend)
            .unwrap_or(BackendKind::Embedded)
        {
            BackendKind::Embedded => {
                BackendSettings::Embedded(Box::new(file.embedded.clone().unwrap_or_default()))
            }
            BackendKind::Openstack => openstack_settings(
                "",
                file.openstack.as_ref(),
                self.heat_url.as_ref().or(file.heat_url.as_ref()),
                true,
            )?,
        };
        let mut clouds = BTreeMap::new();
        for (name, cloud) in &file.clouds {
            clouds.insert(name.clone(), cloud_settings(name, cloud)?);
        }
        let auth = match self.auth.or(file.auth).unwrap_or(AuthMode::None) {
            AuthMode::None => {
                let default_tenant = self
                    .default_tenant
                    .clone()
                    .or(file.default_tenant.clone())
                    .unwrap_or_else(|| "default".into());
                if let Some(problem) = occi_so_sdk::tenant_name_problem(&default_tenant) {
                    return Err(ConfigError(format!(
                        "--default-tenant {default_tenant:?}: {problem}"
                    )));
                }
                AuthSettings::None { default_tenant }
            }
            AuthMode::Static => AuthSettings::Static {
                token_file: self
                    .token_file
                    .clone()
                    .or(file.token_file.clone())
                    .ok_or_else(|| {
                        ConfigError(
                            "--auth static needs --token-file (or OCCI_SO_TOKEN_FILE)".into(),
                        )
                    })?,
            },
            AuthMode::Keystone => {
                let url = self
                    .keystone_url
                    .as_ref()
                    .or(file.keystone_url.as_ref())
                    .ok_or_else(|| {
                        ConfigError(
                            "--auth keystone needs --keystone-url (or OCCI_SO_KEYSTONE_URL)".into(),
                        )
                    })?;
                let url = http_url("keystone-url", url)?;
                let url = url.strip_suffix("/v3").unwrap_or(&url).to_string();
                AuthSettings::Keystone {
                    url,
                    cache: duration(
                        "keystone-cache",
                        self.keystone_cache
                            .as_deref()
                            .or(file.keystone_cache.as_deref()),
                        Duration::from_secs(600),
                    )?,
                }
            }
        };
        let mut plugin_dirs = self.plugins.clone();
        if plugin_dirs.is_empty() {
            plugin_dirs = file.plugins.clone();
        }
        let max_body = match (&self.max_body, &file.max_body) {
            (Some(t), _) => size("max-body", t)?,
            (None, Some(serde_yaml::Value::Number(n))) => n
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| ConfigError(format!("max-body: {n} is not a size")))?,
            (None, Some(serde_yaml::Value::String(t))) => size("max-body", t)?,
            (None, Some(other)) => {
                return Err(ConfigError(format!("max-body: {other:?} is not a size")))
            }
            (None, None) => 1 << 20,
        };
        let limits = Limits {
            max_body,
            request_timeout: duration(
                "request-timeout",
                self.request_timeout
                    .as_deref()
                    .or(file.request_timeout.as_deref()),
                Duration::from_secs(60),
            )?,
            idle_timeout: duration(
                "idle-timeout",
                self.idle_timeout
                    .as_deref()
                    .or(file.idle_timeout.as_deref()),
                Duration::from_secs(30),
            )?,
            header_timeout: duration(
                "header-timeout",
                self.header_timeout
                    .as_deref()
                    .or(file.header_timeout.as_deref()),
                Duration::from_secs(20),
            )?,
            max_connections: match self.max_connections.or(file.max_connections) {
                Some(0) => return Err(ConfigError("max-connections: must be at least 1".into())),
                n => n,
            },
            access_log: self.access_log.or(file.access_log).unwrap_or(false),
        };
        let dispose_wait = duration(
            "dispose-wait",
            self.dispose_wait
                .as_deref()
                .or(file.dispose_wait.as_deref()),
            Duration::from_secs(30),
        )?;
        if dispose_wait >= limits.request_timeout {
            return Err(ConfigError(format!(
                "dispose-wait ({}) must be shorter than request-timeout ({})",
                humantime::format_duration(dispose_wait),
                humantime::format_duration(limits.request_timeout)
            )));
        }
        let tls = match (
            self.tls_cert.clone().or(file.tls_cert.clone()),
            self.tls_key.clone().or(file.tls_key.clone()),
        ) {
            (Some(cert), Some(key)) => Some(TlsSettings { cert, key }),
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError("--tls-cert needs --tls-key".into())),
            (None, Some(_)) => return Err(ConfigError("--tls-key needs --tls-cert".into())),
        };
        Ok(Settings {
            listen,
            public_url,
            backend,
            clouds,
            plugin_config: file.plugin_config.clone(),
            auth,
            plugin_dirs,
            admin_token_file: self
                .admin_token_file
                .clone()
                .or(file.admin_token_file.clone()),
            state_dir: self.state_dir.clone().or(file.state_dir.clone()),
            secret_key: match (
                self.secret_key_file
                    .clone()
                    .or(file.secret_key_file.clone()),
                std::env::var_os(SECRET_KEY_VAR).is_some(),
            ) {
                (Some(_), true) => {
                    return Err(ConfigError(format!(
                        "secret-key-file and {SECRET_KEY_VAR} are both set: give the key one way"
                    )))
                }
                (Some(f), false) => Some(SecretKeySource::File(f)),
                (None, true) => Some(SecretKeySource::Env),
                (None, false) => None,
            },
            journal_fsync: self.journal_fsync.or(file.journal_fsync).unwrap_or(true),
            default_service: self
                .default_service
                .clone()
                .or(file.default_service.clone())
                .unwrap_or_else(|| "ims".into()),
            limits,
            dispose_wait,
            stack_timeout: duration(
                "stack-timeout",
                self.stack_timeout
                    .as_deref()
                    .or(file.stack_timeout.as_deref()),
                Duration::from_secs(30 * 60),
            )?,
            shutdown_grace: duration(
                "shutdown-grace",
                self.shutdown_grace
                    .as_deref()
                    .or(file.shutdown_grace.as_deref()),
                Duration::from_secs(20),
            )?,
            queue_limit: count("queue-limit", self.queue_limit.or(file.queue_limit), 16, 1)?,
            event_retention: count(
                "event-retention",
                self.event_retention.or(file.event_retention),
                64,
                1,
            )?,
            operation_retention: count(
                "operation-retention",
                self.operation_retention.or(file.operation_retention),
                1000,
                1,
            )?,
            operation_max_age: duration(
                "operation-max-age",
                self.operation_max_age
                    .as_deref()
                    .or(file.operation_max_age.as_deref()),
                Duration::from_secs(7 * 24 * 3600),
            )?,
            log_format: self
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Pretty),
            log: self.log.clone().or(file.log.clone()),
            tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = ServeArgs::default().resolve().unwrap();
        assert_eq!(s.listen, "127.0.0.1:8051".parse().unwrap());
        assert_eq!(s.backend, BackendSettings::Embedded(Box::default()));
        assert!(s.clouds.is_empty());
        assert_eq!(
            s.auth,
            AuthSettings::None {
                default_tenant: "default".into()
            }
        );
        assert_eq!(s.default_service, "ims");
        assert_eq!(s.limits.max_body, 1 << 20);
        assert!(s.journal_fsync);
        assert!(s.tls.is_none());
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("occi-so.yaml");
        std::fs::write(
            &path,
            "listen: 127.0.0.1:9000\nbackend: openstack\nheat-url: http://127.0.0.1:8004/v1/admin/\n\
             max-body: 64KiB\nrequest-timeout: 2m\nplugins: [/a, /b]\nlog-format: json\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path),
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..ServeArgs::default()
        };
        let s = args.resolve().unwrap();
        assert_eq!(s.listen.port(), 9100);
        match &s.backend {
            BackendSettings::OpenStack(c) => {
                assert_eq!(
                    c.heat_url.as_deref(),
                    Some("http://127.0.0.1:8004/v1/admin")
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.limits.max_body, 64 * 1024);
        assert_eq!(s.limits.request_timeout, Duration::from_secs(120));
        assert_eq!(s.plugin_dirs.len(), 2);
        assert_eq!(s.log_format, LogFormat::Json);
    }

    fn resolve_file(text: &str) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("occi-so.yaml");
        std::fs::write(&path, text).unwrap();
        ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        }
        .resolve()
    }

    #[test]
    fn plugin_sections_are_kept_for_the_plugins() {
        let s = resolve_file(
            "plugin-config:\n  escm: {certificate-dir: /srv/escm/ssl}\n  ims: {topologies: /etc/occi-so/ims}\n",
        )
        .unwrap();
        assert_eq!(
            s.plugin_config["escm"],
            serde_json::json!({"certificate-dir": "/srv/escm/ssl"})
        );
        assert_eq!(s.plugin_config.keys().collect::<Vec<_>>(), ["escm", "ims"]);
    }

    #[test]
    fn named_clouds_and_the_embedded_section() {
        let s = resolve_file(
            "embedded: {resource_delay: 5ms}\nclouds:\n  edge: {backend: embedded, embedded: {signal_delay: 1s}}\n  region-2: {backend: openstack, heat-url: 'http://127.0.0.1:8004/v1/p2'}\n",
        )
        .unwrap();
        match &s.backend {
            BackendSettings::Embedded(c) => {
                assert_eq!(c.resource_delay, Duration::from_millis(5))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.clouds.keys().collect::<Vec<_>>(), ["edge", "region-2"]);
        match &s.clouds["edge"] {
            BackendSettings::Embedded(c) => assert_eq!(c.signal_delay, Duration::from_secs(1)),
            other => panic!("{other:?}"),
        }
        match &s.clouds["region-2"] {
            BackendSettings::OpenStack(c) => {
                assert_eq!(c.heat_url.as_deref(), Some("http://127.0.0.1:8004/v1/p2"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_clouds_are_refused_with_their_name() {
        for (text, needle) in [
            ("clouds: {default: {backend: embedded}}\n", "clouds.default"),
            (
                "clouds: {'a b': {backend: embedded}}\n",
                "\"a b\" is not a cloud name",
            ),
            (
                "clouds: {r2: {backend: openstack}}\n",
                "clouds.r2: backend openstack needs heat-url",
            ),
            (
                "clouds: {r2: {backend: openstack, heat-url: 'ftp://x'}}\n",
                "clouds.r2: heat-url",
            ),
            (
                "clouds: {e: {backend: embedded, heat-url: 'http://x'}}\n",
                "clouds.e: openstack settings",
            ),
            (
                "clouds: {e: {backend: embedded, embedded: {colour: red}}}\n",
                "colour",
            ),
            ("clouds: {e: {backend: cloudy}}\n", "cloudy"),
        ] {
            let e = resolve_file(text).unwrap_err();
            assert!(e.0.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn mistakes_name_the_setting() {
        let e = ServeArgs {
            backend: Some(BackendKind::Openstack),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(e.0.contains("--heat-url"), "{e}");
        let e = ServeArgs {
            auth: Some(AuthMode::Keystone),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(e.0.contains("--keystone-url"), "{e}");
        let e = ServeArgs {
            max_body: Some("lots".into()),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(e.0.starts_with("max-body"), "{e}");
        let e = ServeArgs {
            request_timeout: Some("soon".into()),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(e.0.starts_with("request-timeout"), "{e}");
        let e = ServeArgs {
            tls_cert: Some("c.pem".into()),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(e.0.contains("--tls-key"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "heat_url: x\n").unwrap();
        let e = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(e.0.contains("heat_url"), "{e}");
    }

    #[test]
    fn sizes_and_keystone_urls_are_normalised() {
        assert_eq!(size("k", "65536").unwrap(), 65536);
        assert_eq!(size("k", "1MiB").unwrap(), 1 << 20);
        assert_eq!(size("k", "2k").unwrap(), 2048);
        for bad in ["0", "12 parsecs", "-1"] {
            assert_eq!(
                size("max-body", bad).unwrap_err().0,
                format!("max-body: {bad:?} is not a size like 65536, 64KiB or 1MiB")
            );
        }
        let s = ServeArgs {
            auth: Some(AuthMode::Keystone),
            keystone_url: Some("http://127.0.0.1:5000/v3/".into()),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap();
        assert!(
            matches!(s.auth, AuthSettings::Keystone { ref url, .. } if url == "http://127.0.0.1:5000")
        );
    }
}

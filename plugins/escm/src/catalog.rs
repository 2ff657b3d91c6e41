//! Every setting of the ESCM deployment guide (and the barclamp's raw-mode
//! Heat settings) as data: the OCCI attribute, its type, the barclamp's
//! default, its validation, and the Heat parameter it becomes. The kind,
//! the checks and the stack parameters are all derived from this one table.
//!
//! Naming: `escm.<section>.<key>` after the barclamp's attribute paths
//! (`attributes.escm.mail.host` → `escm.mail.host`,
//! `openstack.volume_stack.data_volume_size` →
//! `escm.openstack.volume_stack.data_volume_size`).

use occi_so_sdk::{AttributeSpec, AttributeType};
use serde_json::{json, Value};

/// Which stack a setting's Heat parameter belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stack {
    /// `volumes.yaml`.
    Volumes,
    /// `application.yaml`.
    Instance,
}

/// How a setting reaches Heat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// Not a Heat parameter (checked only, e.g. `escm.ssl.protocol`).
    None,
    /// The value itself, as the named parameter of a stack.
    Value(Stack, &'static str),
    /// The value is a file path on the occi-so host; the file's content
    /// becomes the named (instance) parameter.
    FileContent(&'static str),
}

/// What a string value must look like, with the words used in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Regular expression for the whole value.
    pub pattern: &'static str,
    /// "a host name or IPv4 address", for messages.
    pub hint: &'static str,
    /// Longest value, in characters (checked apart from the pattern, so
    /// the pattern stays cheap to compile).
    pub max_len: usize,
}

/// A host name, FQDN or IPv4 address.
pub const HOST: Shape = Shape {
    pattern: r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*",
    hint: "a host name, FQDN or IPv4 address",
    max_len: 253,
};
/// Empty, or [`HOST`].
pub const HOST_OR_EMPTY: Shape = Shape {
    pattern: r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)?",
    hint: "empty, or a host name, FQDN or IPv4 address",
    max_len: 253,
};
/// An e-mail address.
pub const EMAIL: Shape = Shape {
    pattern: r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*",
    hint: "an e-mail address (local-part@domain)",
    max_len: 254,
};
/// An OpenSSH public key line.
pub const SSH_PUBLIC_KEY: Shape = Shape {
    pattern: r"(?:ssh-rsa|ssh-dss|ssh-ed25519|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) AAAA[A-Za-z0-9+/]+={0,3}(?: [^\x00-\x1f\x7f]*)?",
    hint: "an OpenSSH public key (type, base64 key, optional comment)",
    max_len: 16384,
};
/// A name OpenStack accepts (image, flavor, network): no control characters.
pub const NAME: Shape = Shape {
    pattern: r"[^\x00-\x1f\x7f]+",
    hint: "a name of 1 to 255 characters without control characters",
    max_len: 255,
};
/// A Nova keypair name (the stack name is appended).
pub const KEYPAIR: Shape = Shape {
    pattern: r"[A-Za-z0-9_.@ -]+",
    hint: "1 to 200 letters, digits, spaces or _ . @ -",
    max_len: 200,
};
/// A Docker registry namespace.
pub const ORGANIZATION: Shape = Shape {
    pattern: r"[a-z0-9]+(?:[._-][a-z0-9]+)*",
    hint: "a Docker organization (lower-case letters and digits, separated by . _ -)",
    max_len: 255,
};
/// A Docker image tag.
pub const TAG: Shape = Shape {
    pattern: r"[A-Za-z0-9_][A-Za-z0-9_.-]*",
    hint: "a Docker tag (up to 128 letters, digits, _ . -, not starting with . or -)",
    max_len: 128,
};
/// Free text on one line (user names, passwords).
pub const LINE: Shape = Shape {
    pattern: r"[^\x00-\x1f\x7f]*",
    hint: "up to 255 characters without line breaks or control characters",
    max_len: 255,
};
/// A comma-separated list of hosts, addresses, CIDRs or `.domain` suffixes.
pub const HOST_LIST: Shape = Shape {
    pattern: r"(?:[A-Za-z0-9.*:/_-]+(?: *, *[A-Za-z0-9.*:/_-]+)*)?",
    hint: "a comma-separated list of host names, IP addresses, CIDRs or .domain suffixes",
    max_len: 4096,
};
/// An absolute file path.
pub const PATH: Shape = Shape {
    pattern: r"/[^\x00-\x1f\x7f]*",
    hint: "an absolute file path",
    max_len: 4096,
};
/// Empty, or [`PATH`].
pub const PATH_OR_EMPTY: Shape = Shape {
    pattern: r"(?:/[^\x00-\x1f\x7f]*)?",
    hint: "empty, or an absolute file path",
    max_len: 4096,
};

/// One setting.
#[derive(Clone, Debug)]
pub struct Setting {
    /// OCCI attribute name.
    pub name: &'static str,
    /// Type.
    pub ty: AttributeType,
    /// The barclamp's default (`None`: the caller must give a value).
    pub default: Option<Value>,
    /// Shape of string values.
    pub shape: Option<Shape>,
    /// Inclusive bounds of integers.
    pub range: Option<(i64, i64)>,
    /// A password: never rendered, logged or put in a message.
    pub secret: bool,
    /// Where the value goes.
    pub param: Param,
    /// The deployment guide's description.
    pub description: &'static str,
}

impl Setting {
    fn new(name: &'static str, ty: AttributeType, param: Param, description: &'static str) -> Self {
        Setting {
            name,
            ty,
            default: None,
            shape: None,
            range: None,
            secret: false,
            param,
            description,
        }
    }
    fn default(mut self, v: Value) -> Self {
        self.default = Some(v);
        self
    }
    fn shape(mut self, s: Shape) -> Self {
        self.shape = Some(s);
        self
    }
    fn range(mut self, min: i64, max: i64) -> Self {
        self.range = Some((min, max));
        self
    }
    fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// The OCCI attribute definition.
    pub fn spec(&self) -> AttributeSpec {
        let mut a = AttributeSpec::new(self.name, self.ty.clone()).describe(self.description);
        if let Some(d) = &self.default {
            a = a.default_value(d.clone());
        } else {
            a = a.required();
        }
        if let Some(s) = self.shape {
            a = a.pattern(s.pattern);
        }
        if let Some((min, max)) = self.range {
            a = a.range(Some(min as f64), Some(max as f64));
        }
        if self.secret {
            a = a.secret();
        }
        a
    }
}

/// Attribute names, for code that reads settings.
pub mod names {
    #![allow(missing_docs)]
    pub const IMAGE: &str = "escm.openstack.image";
    pub const FLAVOR: &str = "escm.openstack.flavor.name";
    pub const FLAVOR_CREATE: &str = "escm.openstack.flavor.create";
    pub const FLAVOR_RAM: &str = "escm.openstack.flavor.ram";
    pub const FLAVOR_VCPUS: &str = "escm.openstack.flavor.vcpus";
    pub const FLAVOR_DISK: &str = "escm.openstack.flavor.disk";
    pub const KEYPAIR_NAME: &str = "escm.openstack.keypair.name";
    pub const PUBLIC_KEY: &str = "escm.openstack.keypair.publickey";
    pub const FLOATING_NETWORK: &str = "escm.openstack.floating_network";
    pub const LOGS_SIZE: &str = "escm.openstack.volume_stack.logs_volume_size";
    pub const DATA_SIZE: &str = "escm.openstack.volume_stack.data_volume_size";
    pub const WAIT_TIMEOUT: &str = "escm.openstack.wait_condition_timeout";
    pub const DEBUG: &str = "escm.debug";

    pub const MAIL_HOST: &str = "escm.mail.host";
    pub const MAIL_PORT: &str = "escm.mail.port";
    pub const MAIL_TLS: &str = "escm.mail.tls";
    pub const MAIL_FROM: &str = "escm.mail.from";
    pub const MAIL_AUTH: &str = "escm.mail.auth";
    pub const MAIL_USER: &str = "escm.mail.user";
    pub const MAIL_PASSWORD: &str = "escm.mail.password";

    pub const DOCKER_HUB: &str = "escm.docker.dockerhub";
    pub const DOCKER_HOST: &str = "escm.docker.host";
    pub const DOCKER_PORT: &str = "escm.docker.port";
    pub const DOCKER_ORGANIZATION: &str = "escm.docker.organization";
    pub const DOCKER_TAG: &str = "escm.docker.tag";
    pub const DOCKER_AUTH: &str = "escm.docker.auth";
    pub const DOCKER_USER: &str = "escm.docker.user";
    pub const DOCKER_PASSWORD: &str = "escm.docker.password";

    pub const PROXY_USE: &str = "escm.proxy.use_proxy";
    pub const PROXY_HTTP_HOST: &str = "escm.proxy.http_host";
    pub const PROXY_HTTP_PORT: &str = "escm.proxy.http_port";
    pub const PROXY_HTTPS_HOST: &str = "escm.proxy.https_host";
    pub const PROXY_HTTPS_PORT: &str = "escm.proxy.https_port";
    pub const PROXY_NO_PROXY: &str = "escm.proxy.no_proxy";
    pub const PROXY_AUTH: &str = "escm.proxy.auth";
    pub const PROXY_USER: &str = "escm.proxy.user";
    pub const PROXY_PASSWORD: &str = "escm.proxy.password";

    pub const SSL_PROTOCOL: &str = "escm.ssl.protocol";
    pub const SSL_GENERATE: &str = "escm.ssl.generate_certs";
    pub const SSL_FQDN: &str = "escm.ssl.fqdn";
    pub const SSL_CERTFILE: &str = "escm.ssl.certfile";
    pub const SSL_KEYFILE: &str = "escm.ssl.keyfile";
    pub const SSL_CA_CERTS: &str = "escm.ssl.ca_certs";
}

/// The hosts that always bypass the proxy (the barclamp's `no_proxy_default`).
pub const NO_PROXY_DEFAULT: &str = "localhost,127.0.0.1";
/// The barclamp's default SSL certificate path on the control node.
pub const DEFAULT_CERTFILE: &str = "/etc/escm/ssl/certs/signing_cert.pem";
/// The barclamp's default SSL key path.
pub const DEFAULT_KEYFILE: &str = "/etc/escm/ssl/private/signing_key.pem";
/// The barclamp's default CA chain path (optional file).
pub const DEFAULT_CA_CERTS: &str = "/etc/escm/ssl/certs/ca.pem";

/// Every setting, built once.
pub fn all() -> &'static [Setting] {
    static ALL: std::sync::OnceLock<Vec<Setting>> = std::sync::OnceLock::new();
    ALL.get_or_init(settings)
}

/// Every setting, in the deployment guide's order.
pub fn settings() -> Vec<Setting> {
    use names::*;
    use AttributeType::{Boolean, Integer, String as Text};
    use Param::{FileContent, Value as P};
    use Stack::{Instance, Volumes};
    let port = |name, param, default: i64, description| {
        Setting::new(name, Integer, P(Instance, param), description)
            .default(json!(default))
            .range(1, 65535)
    };
    let flag = |name, param, default: bool, description| {
        Setting::new(name, Boolean, P(Instance, param), description).default(json!(default))
    };
    vec![
        // OpenStack (raw mode, except the public key)
        Setting::new(IMAGE, Text, P(Instance, "image"), "Glance image of the ESCM instance; it must contain Docker and Docker Compose")
            .default(json!("sles12-sp3"))
            .shape(NAME),
        Setting::new(FLAVOR, Text, P(Instance, "flavor"), "Nova flavor of the ESCM instance")
            .default(json!("escm.small"))
            .shape(NAME),
        flag(FLAVOR_CREATE, "flavor_create", false, "Create a private flavor <name>-<stack> with the RAM, vCPUs and disk below (needs the right to create flavors)"),
        Setting::new(FLAVOR_RAM, Integer, P(Instance, "flavor_ram"), "RAM of the created flavor in MB")
            .default(json!(8192))
            .range(512, 16_777_216),
        Setting::new(FLAVOR_VCPUS, Integer, P(Instance, "flavor_vcpus"), "vCPUs of the created flavor")
            .default(json!(4))
            .range(1, 1024),
        Setting::new(FLAVOR_DISK, Integer, P(Instance, "flavor_disk"), "Root disk of the created flavor in GB")
            .default(json!(20))
            .range(1, 65536),
        Setting::new(KEYPAIR_NAME, Text, P(Instance, "key_name"), "Name of the SSH keypair created for the instance (the stack name is appended)")
            .default(json!("escm"))
            .shape(KEYPAIR),
        Setting::new(PUBLIC_KEY, Text, P(Instance, "public_key"), "Public part of the OpenStack SSH keypair for accessing the instance (mandatory)")
            .shape(SSH_PUBLIC_KEY),
        Setting::new(FLOATING_NETWORK, Text, P(Instance, "floating_network"), "External network for the floating IP and the router gateway")
            .default(json!("floating"))
            .shape(NAME),
        Setting::new(LOGS_SIZE, Integer, P(Volumes, "logs_size"), "Size of the logs volume in GB (it can grow, not shrink)")
            .default(json!(2))
            .range(1, 16384),
        Setting::new(DATA_SIZE, Integer, P(Volumes, "data_size"), "Size of the data volume in GB (it can grow, not shrink)")
            .default(json!(2))
            .range(1, 16384),
        Setting::new(WAIT_TIMEOUT, Integer, P(Instance, "wait_condition_timeout"), "Seconds the instance has to mount its volumes and signal Heat")
            .default(json!(1800))
            .range(60, 43200),
        flag(DEBUG, "debug", false, "TomEE debug logs in ESCM's containers"),
        // Mail
        Setting::new(MAIL_HOST, Text, P(Instance, "mail_host"), "Host of the mail server to be used (mandatory)")
            .shape(HOST),
        port(MAIL_PORT, "mail_port", 25, "SMTP port of the mail server"),
        flag(MAIL_TLS, "mail_tls", false, "true if the mail server requires a secure connection"),
        Setting::new(MAIL_FROM, Text, P(Instance, "mail_from"), "The e-mail address ESCM sends notifications from (mandatory)")
            .shape(EMAIL),
        flag(MAIL_AUTH, "mail_auth", true, "true if the mail server requires authentication (then user and password are required)"),
        Setting::new(MAIL_USER, Text, P(Instance, "mail_user"), "User name for SMTP authentication")
            .default(json!(""))
            .shape(LINE),
        Setting::new(MAIL_PASSWORD, Text, P(Instance, "mail_password"), "Password for SMTP authentication")
            .default(json!(""))
            .shape(LINE)
            .secret(),
        // Docker registry
        flag(DOCKER_HUB, "docker_dockerhub", true, "true to use the official ESCM images on Docker Hub; false for the custom registry below"),
        Setting::new(DOCKER_HOST, Text, P(Instance, "docker_host"), "Custom Docker registry host (required when dockerhub is false)")
            .default(json!(""))
            .shape(HOST_OR_EMPTY),
        port(DOCKER_PORT, "docker_port", 5000, "Custom Docker registry port"),
        Setting::new(DOCKER_ORGANIZATION, Text, P(Instance, "docker_organization"), "Organization that holds the ESCM images in the registry")
            .default(json!("servicecatalog"))
            .shape(ORGANIZATION),
        Setting::new(DOCKER_TAG, Text, P(Instance, "docker_tag"), "Tag of the ESCM images")
            .default(json!("v17.5.0"))
            .shape(TAG),
        flag(DOCKER_AUTH, "docker_auth", false, "true if the registry requires (or you want) authentication"),
        Setting::new(DOCKER_USER, Text, P(Instance, "docker_user"), "Login for registry authentication")
            .default(json!(""))
            .shape(LINE),
        Setting::new(DOCKER_PASSWORD, Text, P(Instance, "docker_password"), "Password for registry authentication")
            .default(json!(""))
            .shape(LINE)
            .secret(),
        // Proxy
        flag(PROXY_USE, "proxy_enabled", false, "true to use the proxy below for the Docker engine and ESCM's containers"),
        Setting::new(PROXY_HTTP_HOST, Text, P(Instance, "proxy_http_host"), "The HTTP proxy host (required when use_proxy is true)")
            .default(json!(""))
            .shape(HOST_OR_EMPTY),
        port(PROXY_HTTP_PORT, "proxy_http_port", 80, "The HTTP proxy port"),
        Setting::new(PROXY_HTTPS_HOST, Text, P(Instance, "proxy_https_host"), "The HTTPS proxy host (required when use_proxy is true)")
            .default(json!(""))
            .shape(HOST_OR_EMPTY),
        port(PROXY_HTTPS_PORT, "proxy_https_port", 80, "The HTTPS proxy port"),
        Setting::new(PROXY_NO_PROXY, Text, P(Instance, "proxy_no_proxy"), "Hosts that bypass the proxy, comma separated; localhost, 127.0.0.1 and the instance's floating IP always do")
            .default(json!(NO_PROXY_DEFAULT))
            .shape(HOST_LIST),
        flag(PROXY_AUTH, "proxy_auth", false, "true if the proxy requires authentication"),
        Setting::new(PROXY_USER, Text, P(Instance, "proxy_user"), "User name for proxy authentication")
            .default(json!(""))
            .shape(LINE),
        Setting::new(PROXY_PASSWORD, Text, P(Instance, "proxy_password"), "Password for proxy authentication")
            .default(json!(""))
            .shape(LINE)
            .secret(),
        // SSL
        Setting::new(SSL_PROTOCOL, AttributeType::Enum(vec!["https".into()]), Param::None, "Protocol of ESCM's listeners (ESCM always uses HTTPS)")
            .default(json!("https")),
        flag(SSL_GENERATE, "ssl_generate", false, "true to generate a self-signed certificate on the instance; false to use the files below"),
        Setting::new(SSL_FQDN, Text, P(Instance, "ssl_fqdn"), "Host name or IP address for the certificate and the URLs (empty: the floating IP)")
            .default(json!(""))
            .shape(HOST_OR_EMPTY),
        Setting::new(SSL_CERTFILE, Text, FileContent("ssl_cert"), "PEM certificate file on the occi-so host, under its ESCM certificate directory")
            .default(json!(DEFAULT_CERTFILE))
            .shape(PATH),
        Setting::new(SSL_KEYFILE, Text, FileContent("ssl_key"), "PEM private key file on the occi-so host, under its ESCM certificate directory")
            .default(json!(DEFAULT_KEYFILE))
            .shape(PATH),
        Setting::new(SSL_CA_CERTS, Text, FileContent("ssl_chain"), "PEM intermediate certificates file (optional; empty for none)")
            .default(json!(DEFAULT_CA_CERTS))
            .shape(PATH_OR_EMPTY),
    ]
}

/// The attributes the plugin reports (read-only for callers).
pub mod outputs {
    #![allow(missing_docs)]
    pub const IP_APPSERVER: &str = "ip_appserver";
    pub const LOGS_VOLUME_ID: &str = "logs_volume_id";
    pub const DATA_VOLUME_ID: &str = "data_volume_id";
    pub const VOLUMES_STACK_ID: &str = "escm.stack.volumes.id";
    pub const VOLUMES_STACK_STATE: &str = "escm.stack.volumes.state";
    pub const INSTANCE_STACK_ID: &str = "escm.stack.instance.id";
    pub const INSTANCE_STACK_STATE: &str = "escm.stack.instance.state";
    pub const URL_PORTAL: &str = "escm.url.portal";
    pub const URL_MARKETPLACE: &str = "escm.url.marketplace";
    pub const URL_APP: &str = "escm.url.app";
    pub const URL_REPORTS: &str = "escm.url.reports";
    pub const URL_BRANDING: &str = "escm.url.branding";
    pub const URL_HELP: &str = "escm.url.help";
}

/// The Heat outputs shown as attributes; every other output is dropped.
pub const SHOWN_OUTPUTS: &[&str] = &[
    outputs::IP_APPSERVER,
    outputs::LOGS_VOLUME_ID,
    outputs::DATA_VOLUME_ID,
];

/// Definitions of the reported attributes.
pub fn output_specs() -> Vec<AttributeSpec> {
    use outputs::*;
    let out = |name: &str, d: &str| {
        AttributeSpec::new(name, AttributeType::String)
            .output()
            .describe(d)
    };
    vec![
        out(
            IP_APPSERVER,
            "Floating IP address of the ESCM application server",
        ),
        out(LOGS_VOLUME_ID, "Cinder id of the logs volume"),
        out(DATA_VOLUME_ID, "Cinder id of the data volume"),
        out(VOLUMES_STACK_ID, "Heat id of the volume stack"),
        out(VOLUMES_STACK_STATE, "Heat status of the volume stack"),
        out(INSTANCE_STACK_ID, "Heat id of the instance stack"),
        out(INSTANCE_STACK_STATE, "Heat status of the instance stack"),
        out(
            URL_PORTAL,
            "ESCM administration portal (port 8081), once provisioned",
        ),
        out(
            URL_MARKETPLACE,
            "ESCM marketplace (port 8081), once provisioned",
        ),
        out(
            URL_APP,
            "Asynchronous Provisioning Platform (port 8881), once provisioned",
        ),
        out(
            URL_REPORTS,
            "BIRT report engine (port 8681), once provisioned",
        ),
        out(
            URL_BRANDING,
            "Branding server (port 8443), once provisioned",
        ),
        out(URL_HELP, "Online help (port 8543), once provisioned"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_parameter_is_used_once() {
        let all = settings();
        let mut names: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
        let mut params = std::collections::BTreeSet::new();
        for s in &all {
            assert!(names.insert(s.name), "{} twice", s.name);
            match s.param {
                Param::Value(_, p) | Param::FileContent(p) => {
                    assert!(params.insert(p), "parameter {p} twice")
                }
                Param::None => {}
            }
        }
        let outputs = output_specs();
        for o in &outputs {
            assert!(names.insert(o.name.as_str()), "{} twice", o.name);
        }
    }
}

//! An instance's settings, checked: every value against its definition in
//! the [`catalog`](crate::catalog) (type, bounds, shape), then the rules
//! that tie settings together (authentication on → user and password
//! required, a custom registry → its host required, the proxy on → its
//! hosts required). A mistake is a [`PluginError::InvalidAttribute`] naming
//! the attribute; secret values never appear in a message.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use base64::Engine as _;
use occi_so_sdk::{AttributeType, Attributes, PluginError, Secret};
use regex::Regex;
use serde_json::Value;

use crate::catalog::{self, names, Setting, Shape};

/// One checked value.
#[derive(Clone, PartialEq)]
pub enum Checked {
    /// A string.
    Text(String),
    /// A password (never printed).
    Secret(Secret),
    /// A whole number.
    Int(i64),
    /// A flag.
    Bool(bool),
}

impl Checked {
    /// The value as a Heat parameter string (`true`/`false` for flags, as
    /// the templates' string-typed flags expect).
    pub fn heat_value(&self) -> String {
        match self {
            Checked::Text(s) => s.clone(),
            Checked::Secret(s) => s.expose().to_string(),
            Checked::Int(n) => n.to_string(),
            Checked::Bool(b) => b.to_string(),
        }
    }
}

impl fmt::Debug for Checked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Checked::Text(s) => write!(f, "{s:?}"),
            Checked::Secret(s) => write!(f, "{s}"),
            Checked::Int(n) => write!(f, "{n}"),
            Checked::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// The checked settings of one instance, by attribute name. `Debug` shows
/// passwords as `******`.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    values: BTreeMap<&'static str, Checked>,
}

impl Settings {
    /// The checked value of `name` (every catalog setting has one).
    pub fn get(&self, name: &str) -> Option<&Checked> {
        self.values.get(name)
    }

    /// A string setting (`""` if `name` is not a string setting).
    pub fn text(&self, name: &str) -> &str {
        match self.values.get(name) {
            Some(Checked::Text(s)) => s,
            Some(Checked::Secret(s)) => s.expose(),
            _ => "",
        }
    }

    /// A whole-number setting (0 if `name` is not one).
    pub fn int(&self, name: &str) -> i64 {
        match self.values.get(name) {
            Some(Checked::Int(n)) => *n,
            _ => 0,
        }
    }

    /// A flag (false if `name` is not one).
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.values.get(name), Some(Checked::Bool(true)))
    }

    /// Every value, by attribute name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Checked)> {
        self.values.iter().map(|(k, v)| (*k, v))
    }
}

/// The catalog with its patterns compiled once.
#[derive(Debug)]
pub struct Checker {
    settings: Vec<Setting>,
    patterns: HashMap<&'static str, Regex>,
}

fn invalid(name: &str, message: impl Into<String>) -> PluginError {
    PluginError::attribute(name, message)
}

impl Checker {
    /// Compiles the catalog's patterns.
    pub fn new() -> Result<Self, regex::Error> {
        let settings = catalog::settings();
        let mut patterns = HashMap::new();
        for s in &settings {
            if let Some(shape) = s.shape {
                patterns.insert(s.name, Regex::new(&format!("^(?:{})$", shape.pattern))?);
            }
        }
        Ok(Checker { settings, patterns })
    }

    /// The catalog.
    pub fn settings(&self) -> &[Setting] {
        &self.settings
    }

    /// Checks every setting in `attributes` (defaults for those not given)
    /// and the rules between them.
    pub fn check(&self, attributes: &Attributes) -> Result<Settings, PluginError> {
        let mut values = BTreeMap::new();
        for s in &self.settings {
            let raw = match attributes.get(s.name).or(s.default.as_ref()) {
                Some(v) => v,
                None => return Err(invalid(s.name, format!("is required: {}", s.description))),
            };
            values.insert(s.name, self.check_one(s, raw)?);
        }
        let settings = Settings { values };
        check_rules(&settings)?;
        Ok(settings)
    }

    fn check_one(&self, s: &Setting, raw: &Value) -> Result<Checked, PluginError> {
        let shown = |v: &Value| {
            if s.secret {
                "the given value".to_string()
            } else {
                v.to_string()
            }
        };
        match &s.ty {
            AttributeType::Boolean => match raw {
                Value::Bool(b) => Ok(Checked::Bool(*b)),
                Value::String(t) if t == "true" || t == "false" => Ok(Checked::Bool(t == "true")),
                other => Err(invalid(
                    s.name,
                    format!("expected true or false, got {}", shown(other)),
                )),
            },
            AttributeType::Integer => {
                let n = match raw {
                    Value::Number(n) => n.as_i64(),
                    Value::String(t) => t.trim().parse::<i64>().ok(),
                    _ => None,
                };
                let Some(n) = n else {
                    return Err(invalid(
                        s.name,
                        format!("expected a whole number, got {}", shown(raw)),
                    ));
                };
                if let Some((min, max)) = s.range {
                    if n < min || n > max {
                        return Err(invalid(
                            s.name,
                            format!("{n} is out of range: expected {min} to {max}"),
                        ));
                    }
                }
                Ok(Checked::Int(n))
            }
            AttributeType::Enum(allowed) => match raw {
                Value::String(t) if allowed.contains(t) => Ok(Checked::Text(t.clone())),
                other => Err(invalid(
                    s.name,
                    format!(
                        "expected one of {}, got {}",
                        allowed.join(", "),
                        shown(other)
                    ),
                )),
            },
            _ => {
                let text = match raw {
                    Value::String(t) => t.clone(),
                    Value::Number(n) if !s.secret => n.to_string(),
                    other => {
                        return Err(invalid(
                            s.name,
                            format!("expected a string, got {}", shown(other)),
                        ))
                    }
                };
                if let (Some(re), Some(shape)) = (self.patterns.get(s.name), s.shape) {
                    let len = text.chars().count();
                    if len > shape.max_len {
                        return Err(invalid(
                            s.name,
                            format!(
                                "is {len} characters long; at most {} are allowed",
                                shape.max_len
                            ),
                        ));
                    }
                    if !re.is_match(&text) {
                        return Err(shape_error(s, &text, shape));
                    }
                }
                if s.secret {
                    Ok(Checked::Secret(Secret::new(text)))
                } else {
                    Ok(Checked::Text(text))
                }
            }
        }
    }
}

fn shape_error(s: &Setting, text: &str, shape: Shape) -> PluginError {
    if s.secret {
        invalid(s.name, format!("the given value is not {}", shape.hint))
    } else {
        invalid(s.name, format!("{text:?} is not {}", shape.hint))
    }
}

fn require(settings: &Settings, name: &str, because: &str) -> Result<(), PluginError> {
    if settings.text(name).trim().is_empty() {
        return Err(invalid(name, format!("is required when {because}")));
    }
    Ok(())
}

/// The rules between settings.
fn check_rules(s: &Settings) -> Result<(), PluginError> {
    use names::*;
    check_public_key(s.text(PUBLIC_KEY))?;
    if s.flag(MAIL_AUTH) {
        let why = "escm.mail.auth is true";
        require(s, MAIL_USER, why)?;
        require(s, MAIL_PASSWORD, why)?;
    }
    if !s.flag(DOCKER_HUB) {
        require(s, DOCKER_HOST, "escm.docker.dockerhub is false")?;
    }
    if s.flag(DOCKER_AUTH) {
        let why = "escm.docker.auth is true";
        require(s, DOCKER_USER, why)?;
        require(s, DOCKER_PASSWORD, why)?;
        if s.text(DOCKER_USER).contains(':') {
            return Err(invalid(
                DOCKER_USER,
                "a registry login cannot contain ':' (Docker joins login and password with it)",
            ));
        }
    }
    if s.flag(PROXY_USE) {
        let why = "escm.proxy.use_proxy is true";
        require(s, PROXY_HTTP_HOST, why)?;
        require(s, PROXY_HTTPS_HOST, why)?;
        if s.flag(PROXY_AUTH) {
            let why = "escm.proxy.auth is true";
            require(s, PROXY_USER, why)?;
            require(s, PROXY_PASSWORD, why)?;
        }
    }
    Ok(())
}

/// A plausible OpenSSH public key: the base64 blob decodes and names the
/// same key type as the line's first field.
fn check_public_key(line: &str) -> Result<(), PluginError> {
    let name = names::PUBLIC_KEY;
    let mut fields = line.split(' ');
    let (Some(kind), Some(blob)) = (fields.next(), fields.next()) else {
        return Err(invalid(name, "is not an OpenSSH public key"));
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .map_err(|_| invalid(name, "the key is not valid base64"))?;
    let embedded = bytes
        .get(..4)
        .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
        .and_then(|len| bytes.get(4..4 + len));
    if embedded != Some(kind.as_bytes()) {
        return Err(invalid(
            name,
            format!("the key data does not hold a {kind} key"),
        ));
    }
    if bytes.len() < 4 + kind.len() + 32 {
        return Err(invalid(name, "the key data is too short to be a key"));
    }
    Ok(())
}

/// The proxy bypass list Heat receives: the barclamp's defaults
/// (`localhost,127.0.0.1`) first, then the caller's hosts, without repeats.
pub fn no_proxy(given: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for h in catalog::NO_PROXY_DEFAULT.split(',').chain(given.split(',')) {
        let h = h.trim();
        if !h.is_empty() && !out.contains(&h) {
            out.push(h);
        }
    }
    out.join(",")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A real ed25519 public key line.
    pub const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0+xwYILmv6Zx+/+O5vSh7lGb3/KGp57cRQIsicsat7 escm@example";

    pub fn minimal() -> Attributes {
        [
            (names::PUBLIC_KEY, json!(KEY)),
            (names::MAIL_HOST, json!("mail.example.com")),
            (names::MAIL_FROM, json!("escm@example.com")),
            (names::MAIL_AUTH, json!(false)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    #[test]
    fn defaults_are_the_barclamps() {
        let s = Checker::new().unwrap().check(&minimal()).unwrap();
        assert_eq!(s.text(names::IMAGE), "sles12-sp3");
        assert_eq!(s.int(names::MAIL_PORT), 25);
        assert_eq!(s.int(names::LOGS_SIZE), 2);
        assert_eq!(s.int(names::DATA_SIZE), 2);
        assert_eq!(s.text(names::DOCKER_TAG), "v17.5.0");
        assert_eq!(s.text(names::DOCKER_ORGANIZATION), "servicecatalog");
        assert_eq!(s.int(names::DOCKER_PORT), 5000);
        assert!(s.flag(names::DOCKER_HUB));
        assert_eq!(s.text(names::PROXY_NO_PROXY), "localhost,127.0.0.1");
        assert_eq!(s.int(names::PROXY_HTTP_PORT), 80);
        assert_eq!(s.text(names::SSL_PROTOCOL), "https");
    }

    #[test]
    fn quoted_numbers_and_flags_are_accepted() {
        let mut a = minimal();
        a.insert(names::MAIL_PORT.into(), json!("587"));
        a.insert(names::MAIL_TLS.into(), json!("true"));
        let s = Checker::new().unwrap().check(&a).unwrap();
        assert_eq!(s.int(names::MAIL_PORT), 587);
        assert!(s.flag(names::MAIL_TLS));
    }

    #[test]
    fn public_key_must_hold_what_it_says() {
        assert!(check_public_key(KEY).is_ok());
        // an ed25519 blob labelled as RSA
        let wrong = KEY.replacen("ssh-ed25519", "ssh-rsa", 1);
        let e = check_public_key(&wrong).unwrap_err();
        assert!(e.to_string().contains("does not hold a ssh-rsa key"), "{e}");
        let short = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5";
        for (line, why) in [
            (short, "the key data is too short to be a key"),
            ("ssh-ed25519 AAAA!!!", "the key is not valid base64"),
            ("ssh-ed25519", "is not an OpenSSH public key"),
        ] {
            let e = check_public_key(line).unwrap_err();
            assert!(
                matches!(&e, PluginError::InvalidAttribute { name, message }
                    if name == names::PUBLIC_KEY && message == why),
                "{line:?}: {e:?}"
            );
        }
    }

    #[test]
    fn no_proxy_always_starts_with_the_defaults() {
        assert_eq!(no_proxy(""), "localhost,127.0.0.1");
        assert_eq!(no_proxy("localhost,127.0.0.1"), "localhost,127.0.0.1");
        assert_eq!(
            no_proxy("intranet.example.com, 10.0.0.0/8,localhost"),
            "localhost,127.0.0.1,intranet.example.com,10.0.0.0/8"
        );
    }

    #[test]
    fn lengths_are_bounded_apart_from_the_patterns() {
        let checker = Checker::new().unwrap();
        let mut a = minimal();
        a.insert(names::MAIL_USER.into(), json!("u".repeat(256)));
        let e = checker.check(&a).unwrap_err();
        assert!(e.to_string().contains("at most 255"), "{e}");
        a.insert(names::MAIL_USER.into(), json!("u".repeat(255)));
        checker.check(&a).unwrap();
        let long_host = vec!["a".repeat(60); 5].join(".");
        a.insert(names::MAIL_HOST.into(), json!(long_host));
        let e = checker.check(&a).unwrap_err();
        assert!(
            matches!(&e, PluginError::InvalidAttribute { name, .. } if name == names::MAIL_HOST),
            "{e}"
        );
    }

    #[test]
    fn debug_hides_passwords() {
        let mut a = minimal();
        a.insert(names::MAIL_AUTH.into(), json!(true));
        a.insert(names::MAIL_USER.into(), json!("mailer"));
        a.insert(names::MAIL_PASSWORD.into(), json!("s3cr3t-mail"));
        let s = Checker::new().unwrap().check(&a).unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cr3t-mail"), "{shown}");
        assert!(shown.contains("mailer"));
        assert_eq!(s.text(names::MAIL_PASSWORD), "s3cr3t-mail");
    }
}

//! What `director.cfg` configures for an application's VMs, read from the
//! instance's attributes: the `[iaas]` values (the `default` cloud) as
//! top-level attributes, and one section per other cloud in
//! `conpaas.clouds`, each value falling back to the top-level one.

use std::collections::BTreeMap;

use occi_so_sdk::{Attributes, PluginError};
use serde_json::Value;

use crate::kind::{
    ATTR_APPLICATION, ATTR_AUTO_FIP, ATTR_CLOUD, ATTR_CLOUDS, ATTR_DIRECTOR_URL, ATTR_FLAVOR,
    ATTR_FLOATING_NETWORK, ATTR_IMAGE, ATTR_KEY_NAME, ATTR_NETWORK, ATTR_SECURITY_GROUP,
};

/// The name ConPaaS gives the cloud of `[iaas]`: the default backend.
pub const DEFAULT_CLOUD: &str = "default";

/// The per-cloud keys of `conpaas.clouds` sections.
pub const CLOUD_KEYS: &[&str] = &[
    "image",
    "flavor",
    "key_name",
    "security_group",
    "network",
    "floating_network",
    "auto_assign_floating_ip",
];

/// The VM settings of one cloud (one `director.cfg` cloud section).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudSettings {
    /// `IMAGE_ID`.
    pub image: String,
    /// `SIZE_ID`.
    pub flavor: String,
    /// `KEY_NAME` (empty: no key pair).
    pub key_name: String,
    /// `SECURITY_GROUP_NAME` (empty: the stack creates the ConPaaS group).
    pub security_group: String,
    /// `NETWORK_ID`.
    pub network: String,
    /// The external network floating IPs come from.
    pub floating_network: String,
    /// `AUTO_ASSIGN_FLOATING_IP`.
    pub auto_assign_floating_ip: bool,
}

/// Everything about the application's VMs that does not depend on its
/// services.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The application name.
    pub application: String,
    /// The cloud the manager runs on (`default` or a configured cloud).
    pub cloud: String,
    /// `DIRECTOR_URL` (empty: the image carries the ConPaaS code).
    pub director_url: String,
    /// The `[iaas]` settings.
    pub default: CloudSettings,
    /// Other clouds' sections, already merged over `default`.
    pub clouds: BTreeMap<String, CloudSettings>,
}

fn invalid(name: &str, message: impl Into<String>) -> PluginError {
    PluginError::attribute(name, message)
}

/// A printable name for OpenStack (image, flavor, network, ...): 1 to 255
/// characters, no control characters.
fn check_name(attr: &str, value: &str, may_be_empty: bool) -> Result<(), PluginError> {
    if value.is_empty() && !may_be_empty {
        return Err(invalid(attr, "must not be empty"));
    }
    if value.chars().count() > 255 {
        return Err(invalid(attr, "is longer than 255 characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(attr, "contains a control character"));
    }
    Ok(())
}

/// An application name: 1 to 256 characters (the director's column), no
/// control characters.
pub fn check_application_name(value: &str) -> Result<(), PluginError> {
    if value.trim().is_empty() {
        return Err(invalid(ATTR_APPLICATION, "must not be empty"));
    }
    if value.chars().count() > 256 {
        return Err(invalid(ATTR_APPLICATION, "is longer than 256 characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(ATTR_APPLICATION, "contains a control character"));
    }
    Ok(())
}

/// A director URL: empty, or `http(s)://` and no whitespace, quotes,
/// backslashes, backquotes or `$` (it is written into a boot script).
pub fn check_director_url(value: &str) -> Result<(), PluginError> {
    if value.is_empty() {
        return Ok(());
    }
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    let Some(rest) = rest else {
        return Err(invalid(
            ATTR_DIRECTOR_URL,
            format!("{value:?} is not an http:// or https:// URL"),
        ));
    };
    if rest.is_empty()
        || value.len() > 2048
        || value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "'\"\\`$".contains(c))
    {
        return Err(invalid(
            ATTR_DIRECTOR_URL,
            format!(
                "{value:?} is not a usable URL (no spaces, quotes, backslashes, backquotes or '$')"
            ),
        ));
    }
    Ok(())
}

/// A cloud name as occi-so's configuration spells them.
pub fn valid_cloud_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Checks that `cloud` is `default` or one of `known` (when the configured
/// clouds are known); the error lists the configured ones.
pub fn check_cloud(attr: &str, cloud: &str, known: Option<&[String]>) -> Result<(), PluginError> {
    if cloud == DEFAULT_CLOUD {
        return Ok(());
    }
    let listed = |known: &[String]| {
        std::iter::once(DEFAULT_CLOUD.to_string())
            .chain(known.iter().cloned())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match known {
        Some(known) if !known.iter().any(|k| k == cloud) => Err(invalid(
            attr,
            format!(
                "unknown cloud '{cloud}' (configured clouds: {})",
                listed(known)
            ),
        )),
        _ if !valid_cloud_name(cloud) => {
            Err(invalid(attr, format!("{cloud:?} is not a cloud name")))
        }
        _ => Ok(()),
    }
}

fn text<'a>(attrs: &'a Attributes, name: &str, default: &'a str) -> Result<&'a str, PluginError> {
    match attrs.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(invalid(name, format!("expected a string, got {other}"))),
    }
}

fn flag(attrs: &Attributes, name: &str, default: bool) -> Result<bool, PluginError> {
    match attrs.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
        Some(other) => Err(invalid(
            name,
            format!("expected true or false, got {other}"),
        )),
    }
}

impl Settings {
    /// Reads and checks the settings; `known_clouds` are the configured
    /// named clouds, when known.
    pub fn from_attributes(
        attrs: &Attributes,
        known_clouds: Option<&[String]>,
    ) -> Result<Settings, PluginError> {
        let application = text(attrs, ATTR_APPLICATION, crate::kind::DEFAULT_APPLICATION)?;
        check_application_name(application)?;
        let cloud = text(attrs, ATTR_CLOUD, DEFAULT_CLOUD)?;
        check_cloud(ATTR_CLOUD, cloud, known_clouds)?;
        let director_url = text(attrs, ATTR_DIRECTOR_URL, "")?;
        check_director_url(director_url)?;
        let default = CloudSettings {
            image: text(attrs, ATTR_IMAGE, crate::kind::DEFAULT_IMAGE)?.to_string(),
            flavor: text(attrs, ATTR_FLAVOR, crate::kind::DEFAULT_FLAVOR)?.to_string(),
            key_name: text(attrs, ATTR_KEY_NAME, "")?.to_string(),
            security_group: text(attrs, ATTR_SECURITY_GROUP, "")?.to_string(),
            network: text(attrs, ATTR_NETWORK, crate::kind::DEFAULT_NETWORK)?.to_string(),
            floating_network: text(
                attrs,
                ATTR_FLOATING_NETWORK,
                crate::kind::DEFAULT_FLOATING_NETWORK,
            )?
            .to_string(),
            auto_assign_floating_ip: flag(attrs, ATTR_AUTO_FIP, false)?,
        };
        check_name(ATTR_IMAGE, &default.image, false)?;
        check_name(ATTR_FLAVOR, &default.flavor, false)?;
        check_name(ATTR_KEY_NAME, &default.key_name, true)?;
        check_name(ATTR_SECURITY_GROUP, &default.security_group, true)?;
        check_name(ATTR_NETWORK, &default.network, false)?;
        check_name(ATTR_FLOATING_NETWORK, &default.floating_network, false)?;
        let clouds = match attrs.get(ATTR_CLOUDS) {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(sections)) => {
                let mut clouds = BTreeMap::new();
                for (name, section) in sections {
                    if name == DEFAULT_CLOUD {
                        return Err(invalid(
                            ATTR_CLOUDS,
                            "the default cloud's settings are the top-level attributes (conpaas.image, conpaas.flavor, ...), not a 'default' section",
                        ));
                    }
                    check_cloud(ATTR_CLOUDS, name, known_clouds)?;
                    clouds.insert(name.clone(), merged_section(name, section, &default)?);
                }
                clouds
            }
            Some(other) => {
                return Err(invalid(
                    ATTR_CLOUDS,
                    format!("expected a JSON object of cloud sections, got {other}"),
                ))
            }
        };
        Ok(Settings {
            application: application.to_string(),
            cloud: cloud.to_string(),
            director_url: director_url.to_string(),
            default,
            clouds,
        })
    }

    /// The settings of `cloud` (its section, else `[iaas]`).
    pub fn for_cloud(&self, cloud: &str) -> &CloudSettings {
        self.clouds.get(cloud).unwrap_or(&self.default)
    }

    /// The Heat parameters every ConPaaS stack on `cloud` takes.
    pub fn stack_parameters(&self, cloud: &str) -> BTreeMap<String, String> {
        let c = self.for_cloud(cloud);
        BTreeMap::from([
            ("image".to_string(), c.image.clone()),
            ("flavor".to_string(), c.flavor.clone()),
            ("key_name".to_string(), c.key_name.clone()),
            ("security_group".to_string(), c.security_group.clone()),
            ("network".to_string(), c.network.clone()),
            ("floating_network".to_string(), c.floating_network.clone()),
            (
                "auto_assign_floating_ip".to_string(),
                c.auto_assign_floating_ip.to_string(),
            ),
            ("application".to_string(), self.application.clone()),
            ("cloud".to_string(), cloud.to_string()),
            ("director_url".to_string(), self.director_url.clone()),
        ])
    }
}

fn merged_section(
    cloud: &str,
    section: &Value,
    default: &CloudSettings,
) -> Result<CloudSettings, PluginError> {
    let Value::Object(map) = section else {
        return Err(invalid(
            ATTR_CLOUDS,
            format!(
                "cloud '{cloud}': expected an object of settings ({}), got {section}",
                CLOUD_KEYS.join(", ")
            ),
        ));
    };
    let mut merged = default.clone();
    for (key, value) in map {
        let what = format!("cloud '{cloud}': '{key}'");
        let string = || match value {
            Value::String(s) => Ok(s.clone()),
            other => Err(invalid(
                ATTR_CLOUDS,
                format!("{what}: expected a string, got {other}"),
            )),
        };
        match key.as_str() {
            "image" => merged.image = string()?,
            "flavor" => merged.flavor = string()?,
            "key_name" => merged.key_name = string()?,
            "security_group" => merged.security_group = string()?,
            "network" => merged.network = string()?,
            "floating_network" => merged.floating_network = string()?,
            "auto_assign_floating_ip" => {
                merged.auto_assign_floating_ip = match value {
                    Value::Bool(b) => *b,
                    Value::String(s) if s == "true" || s == "false" => s == "true",
                    other => {
                        return Err(invalid(
                            ATTR_CLOUDS,
                            format!("{what}: expected true or false, got {other}"),
                        ))
                    }
                }
            }
            _ => {
                return Err(invalid(
                    ATTR_CLOUDS,
                    format!(
                        "cloud '{cloud}': unknown setting '{key}' (settings: {})",
                        CLOUD_KEYS.join(", ")
                    ),
                ))
            }
        }
    }
    for (key, value, may_be_empty) in [
        ("image", &merged.image, false),
        ("flavor", &merged.flavor, false),
        ("key_name", &merged.key_name, true),
        ("security_group", &merged.security_group, true),
        ("network", &merged.network, false),
        ("floating_network", &merged.floating_network, false),
    ] {
        check_name(ATTR_CLOUDS, value, may_be_empty).map_err(|e| match e {
            PluginError::InvalidAttribute { name, message } => PluginError::InvalidAttribute {
                name,
                message: format!("cloud '{cloud}': '{key}' {message}"),
            },
            other => other,
        })?;
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(pairs: &[(&str, Value)]) -> Attributes {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn defaults_are_conpaas_defaults() {
        let s = Settings::from_attributes(&Attributes::new(), None).unwrap();
        assert_eq!(s.application, "New Application");
        assert_eq!(s.cloud, "default");
        assert_eq!(s.default.image, "conpaas");
        assert_eq!(s.default.flavor, "m1.small");
        assert!(!s.default.auto_assign_floating_ip);
        let p = s.stack_parameters("default");
        assert_eq!(p["image"], "conpaas");
        assert_eq!(p["auto_assign_floating_ip"], "false");
        assert_eq!(p["cloud"], "default");
    }

    #[test]
    fn cloud_sections_override_the_default_per_key() {
        let known = vec!["ec2virginia".to_string()];
        let s = Settings::from_attributes(
            &attrs(&[
                (ATTR_FLAVOR, json!("m1.medium")),
                (
                    ATTR_CLOUDS,
                    json!({"ec2virginia": {"image": "ami-41890256", "auto_assign_floating_ip": true}}),
                ),
            ]),
            Some(&known),
        )
        .unwrap();
        let c = s.for_cloud("ec2virginia");
        assert_eq!(c.image, "ami-41890256");
        assert_eq!(c.flavor, "m1.medium");
        assert!(c.auto_assign_floating_ip);
        assert_eq!(s.for_cloud("default").image, "conpaas");
        assert_eq!(s.stack_parameters("ec2virginia")["cloud"], "ec2virginia");
    }

    #[test]
    fn bad_values_name_the_attribute() {
        let known = vec!["b".to_string()];
        let err = |pairs: &[(&str, Value)]| {
            Settings::from_attributes(&attrs(pairs), Some(&known)).unwrap_err()
        };
        let e = err(&[(ATTR_CLOUD, json!("nowhere"))]);
        assert_eq!(
            e.to_string(),
            "attribute 'conpaas.cloud': unknown cloud 'nowhere' (configured clouds: default, b)"
        );
        let e = err(&[(ATTR_CLOUDS, json!({"c": {}}))]);
        assert!(e.to_string().contains("unknown cloud 'c'"), "{e}");
        let e = err(&[(ATTR_CLOUDS, json!({"b": {"colour": "red"}}))]);
        assert!(e.to_string().contains("unknown setting 'colour'"), "{e}");
        let e = err(&[(ATTR_CLOUDS, json!({"default": {}}))]);
        assert!(e.to_string().contains("top-level"), "{e}");
        let e = err(&[(ATTR_CLOUDS, json!({"b": {"image": ""}}))]);
        assert!(e.to_string().contains("'image' must not be empty"), "{e}");
        let e = err(&[(ATTR_IMAGE, json!(""))]);
        assert_eq!(
            e.to_string(),
            "attribute 'conpaas.image': must not be empty"
        );
        let e = err(&[(ATTR_FLAVOR, json!("m1\nsmall"))]);
        assert!(e.to_string().contains("control character"), "{e}");
        let e = err(&[(ATTR_DIRECTOR_URL, json!("ftp://x"))]);
        assert!(
            e.to_string()
                .starts_with("attribute 'conpaas.director_url'"),
            "{e}"
        );
        let e = err(&[(ATTR_DIRECTOR_URL, json!("https://x/'; rm -rf /"))]);
        assert!(e.to_string().contains("not a usable URL"), "{e}");
        let e = err(&[(ATTR_APPLICATION, json!(" "))]);
        assert!(e.to_string().contains("conpaas.application.name"), "{e}");
        let e = err(&[(ATTR_AUTO_FIP, json!("yes"))]);
        assert!(e.to_string().contains("true or false"), "{e}");
        Settings::from_attributes(
            &attrs(&[(
                ATTR_DIRECTOR_URL,
                json!("https://director.example.org:5555"),
            )]),
            Some(&known),
        )
        .unwrap();
    }
}

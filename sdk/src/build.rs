//! How the server builds a compiled plugin crate: one [`Build`] function
//! per crate, handed a [`BuildContext`] that carries the named clouds and
//! the crate's own configuration, so a plugin is configured one way only:
//! a typed serde section of the server's config file
//! (`plugin-config: {escm: {certificate-dir: /etc/escm/ssl}}`), which
//! environment variables may override through the same path
//! (`OCCI_SO_PLUGIN_ESCM_CERTIFICATE_DIR=/srv/ssl`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{MixinProvider, Orchestrator};

/// The prefix of environment variables that override plugin settings:
/// `OCCI_SO_PLUGIN_<SECTION>_<KEY>`, with `SECTION` the section name in
/// upper case (`-` as `_`), `KEY` the setting's name in upper case (`-` as
/// `_`) and `__` between the keys of nested settings.
pub const ENV_PREFIX: &str = "OCCI_SO_PLUGIN_";

/// Builds the plugins of one compiled crate (templates parsed and
/// checked). Every plugin crate exports one, named `build`.
pub type Build = fn(&BuildContext) -> Result<Vec<Arc<dyn Orchestrator>>, BuildError>;

/// Why a compiled plugin cannot be built: a defect of its build or of the
/// operator's configuration, never of a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {message}")]
pub struct BuildError {
    /// What failed: the plugin, or the setting (`plugin-config.escm.certificate-dir`).
    pub what: String,
    /// Why.
    pub message: String,
}

impl BuildError {
    /// An error about `what`.
    pub fn new(what: impl Into<String>, message: impl Into<String>) -> Self {
        BuildError {
            what: what.into(),
            message: message.into(),
        }
    }
}

/// What the server tells a compiled plugin when it builds it.
#[derive(Debug, Default)]
pub struct BuildContext {
    clouds: Vec<String>,
    sections: BTreeMap<String, Value>,
    env: Vec<(String, String)>,
    read: Mutex<BTreeSet<String>>,
    providers: Mutex<Vec<Arc<dyn MixinProvider>>>,
}

impl std::fmt::Debug for dyn MixinProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MixinProvider({})", self.name())
    }
}

impl BuildContext {
    /// A context with these named clouds and config-file sections; the
    /// overrides are read from this process's environment.
    pub fn new(clouds: Vec<String>, sections: BTreeMap<String, Value>) -> Self {
        let env = std::env::vars()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        Self::with_env(clouds, sections, env)
    }

    /// A context with explicit environment overrides (tests).
    pub fn with_env(
        clouds: Vec<String>,
        sections: BTreeMap<String, Value>,
        env: Vec<(String, String)>,
    ) -> Self {
        BuildContext {
            clouds,
            sections,
            env,
            read: Mutex::new(BTreeSet::new()),
            providers: Mutex::new(Vec::new()),
        }
    }

    /// The named clouds (`clouds:` in the config file) a plugin may place
    /// stacks on besides the default one.
    pub fn clouds(&self) -> &[String] {
        &self.clouds
    }

    /// The settings of `section` as `T`: the config file's
    /// `plugin-config.<section>` with the environment overrides applied,
    /// or `T::default()` when neither gives anything. Config types are
    /// best `#[serde(default, deny_unknown_fields, rename_all =
    /// "kebab-case")]`, so a typo is an error naming the key.
    pub fn config<T: DeserializeOwned + Default>(&self, section: &str) -> Result<T, BuildError> {
        if let Ok(mut read) = self.read.lock() {
            read.insert(section.to_string());
        }
        let overrides = self.overrides(section);
        let file = self.sections.get(section);
        if file.is_none() && overrides.is_empty() {
            return Ok(T::default());
        }
        let mut value = file.cloned().unwrap_or_else(|| Value::Object(Map::new()));
        if !value.is_object() && !overrides.is_empty() {
            return Err(BuildError::new(
                format!("plugin-config.{section}"),
                "must be a mapping when environment variables override its keys",
            ));
        }
        // First as JSON scalars (`8080` a number, `true` a boolean); a key
        // that wants text gets its variable's text as it was given.
        let mut as_text: BTreeSet<usize> = BTreeSet::new();
        loop {
            for (i, o) in overrides.iter().enumerate() {
                let v = if as_text.contains(&i) {
                    Value::String(o.text.clone())
                } else {
                    scalar(&o.text)
                };
                set_path(&mut value, &o.path, v);
            }
            match serde_path_to_error::deserialize::<_, T>(&value) {
                Ok(t) => return Ok(t),
                Err(e) => {
                    let at = e.path().to_string();
                    let retry = overrides
                        .iter()
                        .enumerate()
                        .find(|(i, o)| o.path.join(".") == at && !as_text.contains(i))
                        .map(|(i, _)| i);
                    match retry {
                        Some(i) if !scalar(&overrides[i].text).is_string() => {
                            as_text.insert(i);
                        }
                        _ => {
                            let from = overrides
                                .iter()
                                .find(|o| o.path.join(".") == at)
                                .map(|o| format!(" (from {})", o.var))
                                .unwrap_or_default();
                            let at = if at == "." {
                                String::new()
                            } else {
                                format!(".{at}")
                            };
                            return Err(BuildError::new(
                                format!("plugin-config.{section}{at}{from}"),
                                e.inner().to_string(),
                            ));
                        }
                    }
                }
            }
        }
    }

    /// Registers a source of mixins (templates callers apply to
    /// instances), shown in each tenant's query interface.
    pub fn provide(&self, provider: Arc<dyn MixinProvider>) {
        if let Ok(mut p) = self.providers.lock() {
            p.push(provider);
        }
    }

    /// The mixin providers the plugins registered while being built.
    pub fn providers(&self) -> Vec<Arc<dyn MixinProvider>> {
        self.providers.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// The config-file sections no plugin asked for (typos, or a plugin
    /// that is not built in): the server refuses to start with them.
    pub fn unread_sections(&self) -> Vec<String> {
        let read = self.read.lock().map(|r| r.clone()).unwrap_or_default();
        self.sections
            .keys()
            .filter(|k| !read.contains(*k))
            .cloned()
            .collect()
    }

    fn overrides(&self, section: &str) -> Vec<Override> {
        let prefix = format!(
            "{ENV_PREFIX}{}_",
            section.to_ascii_uppercase().replace('-', "_")
        );
        self.env
            .iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix(&prefix)?;
                if rest.is_empty() {
                    return None;
                }
                let path = rest
                    .split("__")
                    .map(|p| p.to_ascii_lowercase().replace('_', "-"))
                    .collect();
                Some(Override {
                    var: k.clone(),
                    path,
                    text: v.clone(),
                })
            })
            .collect()
    }
}

struct Override {
    var: String,
    path: Vec<String>,
    text: String,
}

fn scalar(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ (Value::Bool(_) | Value::Number(_))) => v,
        _ => Value::String(text.to_string()),
    }
}

fn set_path(root: &mut Value, path: &[String], v: Value) {
    let mut at = root;
    for (i, key) in path.iter().enumerate() {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let Value::Object(m) = at else { return };
        if i + 1 == path.len() {
            m.insert(key.clone(), v);
            return;
        }
        at = m
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
    struct Conf {
        certificate_dir: Option<String>,
        port: u16,
        name: String,
        nested: Nested,
    }

    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
    struct Nested {
        enabled: bool,
    }

    fn ctx(section: Value, env: &[(&str, &str)]) -> BuildContext {
        BuildContext::with_env(
            vec![],
            BTreeMap::from([("escm".to_string(), section)]),
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn a_section_is_read_and_the_environment_overrides_it() {
        let c = ctx(
            serde_json::json!({"certificate-dir": "/etc/escm/ssl", "port": 1}),
            &[
                ("OCCI_SO_PLUGIN_ESCM_PORT", "8443"),
                ("OCCI_SO_PLUGIN_ESCM_NAME", "1234"),
                ("OCCI_SO_PLUGIN_ESCM_NESTED__ENABLED", "true"),
                ("OCCI_SO_PLUGIN_IMS_PORT", "9"),
            ],
        );
        let conf: Conf = c.config("escm").unwrap();
        assert_eq!(
            conf,
            Conf {
                certificate_dir: Some("/etc/escm/ssl".into()),
                port: 8443,
                name: "1234".into(),
                nested: Nested { enabled: true },
            }
        );
        assert!(c.unread_sections().is_empty());
    }

    #[test]
    fn a_missing_section_is_the_default_and_unread_sections_are_named() {
        let c = ctx(serde_json::json!({}), &[]);
        let conf: Conf = c.config("other").unwrap();
        assert_eq!(conf, Conf::default());
        assert_eq!(c.unread_sections(), vec!["escm".to_string()]);
    }

    #[test]
    fn mistakes_name_the_setting_and_the_variable() {
        let c = ctx(serde_json::json!({"certficate-dir": "/x"}), &[]);
        let e = c.config::<Conf>("escm").unwrap_err();
        assert_eq!(e.what, "plugin-config.escm.certficate-dir");
        assert!(e.message.contains("unknown field `certficate-dir`"), "{e}");
        let c = ctx(
            serde_json::json!({}),
            &[("OCCI_SO_PLUGIN_ESCM_PORT", "eighty")],
        );
        let e = c.config::<Conf>("escm").unwrap_err();
        assert_eq!(
            e.what,
            "plugin-config.escm.port (from OCCI_SO_PLUGIN_ESCM_PORT)"
        );
        assert!(e.message.contains("invalid type: string \"eighty\""), "{e}");
    }
}

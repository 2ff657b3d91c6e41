//! The HOT templates the sample plugins render, loaded once and checked
//! against what the plugin passes them when the plugin is built (not on
//! every request).

use std::collections::BTreeMap;

/// A template that does not fit the plugin using it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Not YAML, or not a HOT template.
    #[error("template {name}: {message}")]
    Invalid {
        /// Template file name.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The plugin passes a parameter the template does not declare.
    #[error("template {name} declares no parameter '{parameter}' (the plugin sets it)")]
    UnknownParameter {
        /// Template file name.
        name: &'static str,
        /// The parameter.
        parameter: String,
    },
}

/// One HOT template: its file name under `templates/sample/` and its text.
#[derive(Clone, Debug)]
pub struct StackTemplate {
    /// File name, for messages.
    pub name: &'static str,
    /// The template text, as sent to the backend.
    pub text: &'static str,
    parameters: BTreeMap<String, serde_yaml::Value>,
}

impl StackTemplate {
    /// Parses `text` and checks that it is a HOT template declaring every
    /// parameter in `passed`.
    pub fn load(
        name: &'static str,
        text: &'static str,
        passed: &[&str],
    ) -> Result<Self, TemplateError> {
        let invalid = |message: String| TemplateError::Invalid { name, message };
        let doc: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let map = doc
            .as_mapping()
            .ok_or_else(|| invalid("the document is not a mapping".into()))?;
        if map.get("heat_template_version").is_none() {
            return Err(invalid("heat_template_version is missing".into()));
        }
        if map.get("resources").and_then(|r| r.as_mapping()).is_none() {
            return Err(invalid("resources is missing or not a mapping".into()));
        }
        let parameters: BTreeMap<String, serde_yaml::Value> = match map.get("parameters") {
            None => BTreeMap::new(),
            Some(p) => serde_yaml::from_value(p.clone())
                .map_err(|e| invalid(format!("parameters: {e}")))?,
        };
        for p in passed {
            if !parameters.contains_key(*p) {
                return Err(TemplateError::UnknownParameter {
                    name,
                    parameter: p.to_string(),
                });
            }
        }
        Ok(StackTemplate {
            name,
            text,
            parameters,
        })
    }

    /// Whether the template declares parameter `name`.
    pub fn declares(&self, name: &str) -> bool {
        self.parameters.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_must_declare_what_the_plugin_passes() {
        let t =
            "heat_template_version: 2018-08-31\nparameters:\n  a: {type: string}\nresources: {}\n";
        let ok = StackTemplate::load("t.yaml", t, &["a"]).unwrap();
        assert!(ok.declares("a"));
        assert_eq!(
            StackTemplate::load("t.yaml", t, &["b"]).unwrap_err(),
            TemplateError::UnknownParameter {
                name: "t.yaml",
                parameter: "b".into()
            }
        );
        assert!(matches!(
            StackTemplate::load("t.yaml", "resources: {}\n", &[]),
            Err(TemplateError::Invalid { .. })
        ));
        assert!(matches!(
            StackTemplate::load("t.yaml", "a: [", &[]),
            Err(TemplateError::Invalid { .. })
        ));
    }
}

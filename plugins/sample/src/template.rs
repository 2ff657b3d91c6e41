//! The HOT templates the sample plugins render: parsed and validated with
//! the `heat` engine once, when the plugin is built (a broken template
//! stops the server at start with Heat's message and line), and checked
//! against each request's parameter values in microseconds, so a value
//! Heat would refuse is a 400 before any stack exists.

use std::collections::BTreeMap;

use heat::{Environment, Files, Options, ParameterValues, StackIdentity};
use occi_so_sdk::PluginError;

/// A template that does not fit the plugin using it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Not a valid HOT template (Heat's message, with path and line).
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

/// One HOT template: its file name under `templates/sample/`, its text,
/// and the parsed form.
#[derive(Clone, Debug)]
pub struct StackTemplate {
    /// File name, for messages.
    pub name: &'static str,
    /// The template text, as sent to the backend.
    pub text: &'static str,
    parsed: heat::StackTemplate,
}

impl StackTemplate {
    /// Parses and validates `text` as Heat's `POST /validate` does, and
    /// checks that it declares every parameter in `passed`.
    pub fn load(
        name: &'static str,
        text: &'static str,
        passed: &[&str],
    ) -> Result<Self, TemplateError> {
        let invalid = |e: heat::error::Errors| TemplateError::Invalid {
            name,
            message: e.to_string(),
        };
        let parsed =
            heat::StackTemplate::parse(text, Environment::new(), Files::new(), Options::default())
                .map_err(invalid)?;
        parsed.validate(&ParameterValues::new()).map_err(invalid)?;
        for p in passed {
            if !parsed.template().parameters.contains_key(*p) {
                return Err(TemplateError::UnknownParameter {
                    name,
                    parameter: p.to_string(),
                });
            }
        }
        Ok(StackTemplate { name, text, parsed })
    }

    /// Whether the template declares parameter `name`.
    pub fn declares(&self, name: &str) -> bool {
        self.parsed.template().parameters.contains_key(name)
    }

    /// Checks parameter values as Heat does when it creates the stack;
    /// the error is [`PluginError::Invalid`] with Heat's first message
    /// (`Parameter 'x' is invalid: ...`).
    pub fn check(&self, parameters: &BTreeMap<String, String>) -> Result<(), PluginError> {
        let values: ParameterValues = parameters
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.parsed
            .define(&values, &StackIdentity::default())
            .map(|_| ())
            .map_err(|e| {
                PluginError::Invalid(
                    e.first()
                        .map(|f| f.message.clone())
                        .unwrap_or_else(|| e.to_string()),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "heat_template_version: 2018-08-31\nparameters:\n  a:\n    type: number\n    constraints:\n      - range: {min: 1, max: 3}\nresources:\n  r: {type: OS::Heat::None}\n";

    #[test]
    fn templates_must_declare_what_the_plugin_passes() {
        let ok = StackTemplate::load("t.yaml", T, &["a"]).unwrap();
        assert!(ok.declares("a"));
        assert_eq!(
            StackTemplate::load("t.yaml", T, &["b"]).unwrap_err(),
            TemplateError::UnknownParameter {
                name: "t.yaml",
                parameter: "b".into()
            }
        );
        let e = StackTemplate::load("t.yaml", "resources: {}\n", &[]).unwrap_err();
        assert!(matches!(e, TemplateError::Invalid { .. }), "{e}");
        let e = StackTemplate::load(
            "t.yaml",
            "heat_template_version: 2018-08-31\nresources:\n  r: {type: OS::Heat::Nope}\n",
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("OS::Heat::Nope"), "{e}");
    }

    #[test]
    fn parameter_values_are_checked_as_heat_does() {
        let t = StackTemplate::load("t.yaml", T, &["a"]).unwrap();
        t.check(&BTreeMap::from([("a".to_string(), "2".to_string())]))
            .unwrap();
        let e = t
            .check(&BTreeMap::from([("a".to_string(), "9".to_string())]))
            .unwrap_err();
        assert!(matches!(e, PluginError::Invalid(_)), "{e:?}");
        assert!(e.to_string().contains("Parameter 'a' is invalid"), "{e}");
    }
}

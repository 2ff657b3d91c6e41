//! A plugin's OCCI schema as data: its kind, attribute definitions and
//! actions. The server turns these into OCCI `Kind`/`Action` categories and
//! checks every request against them before a plugin sees it.
//!
//! [`AttributeSpec`] is *the* attribute model of occi-so. It has two outside
//! forms, each derived from it in exactly one place:
//!
//! * the declarative manifest's YAML form (`plugin.yaml` v1, a versioned
//!   user format): `immutable: true` is `mutable: false`, `type: enum` with
//!   `values: [...]` is [`AttributeType::Enum`], `example` is only for
//!   `plugins validate`; converted by the plugin runtime's loader;
//! * OCCI's rendering (`occi::AttributeDef`, in `/-/` and in JSON): integer
//!   renders as `number`, an output or immutable attribute as not mutable, a
//!   secret's default is withheld; converted by the HTTP edge's renderer, and
//!   back (for a remote orchestrator's query interface) by the remote runtime.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Phase;

/// Attribute values of one instance, by OCCI attribute name
/// (`mcn.endpoint.maas`, `escm.mail.host`, ...). Values are JSON: string,
/// number, boolean, and (OCCI 1.2) list or object.
pub type Attributes = BTreeMap<String, serde_json::Value>;

/// The type of an attribute value (OCCI 1.2 attribute `type`, plus the
/// refinements callers rely on: integer and enumerations).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttributeType {
    /// Any string.
    String,
    /// Any number.
    Number,
    /// A whole number.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// One of the listed strings.
    Enum(Vec<String>),
    /// A JSON array.
    List,
    /// A JSON object.
    Object,
}

impl AttributeType {
    /// The OCCI 1.2 JSON `type` word for this type.
    pub fn occi_type(&self) -> &'static str {
        match self {
            AttributeType::String | AttributeType::Enum(_) => "string",
            AttributeType::Number | AttributeType::Integer => "number",
            AttributeType::Boolean => "boolean",
            AttributeType::List => "array",
            AttributeType::Object => "object",
        }
    }
}

/// One attribute a kind (or action) accepts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributeSpec {
    /// Full OCCI name, e.g. `escm.mail.port`.
    pub name: String,
    /// Value type.
    #[serde(rename = "type")]
    pub ty: AttributeType,
    /// Must be given when the instance is created (unless it has a default).
    #[serde(default)]
    pub required: bool,
    /// May be changed after creation (OCCI `mutable`; `{immutable}` in text).
    #[serde(default = "yes")]
    pub mutable: bool,
    /// Value used when the caller gives none.
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    /// Human description.
    #[serde(default)]
    pub description: Option<String>,
    /// A password or key: accepted, passed on, never rendered or logged.
    #[serde(default)]
    pub secret: bool,
    /// Regular expression a string value must match (whole value).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Inclusive lower bound for numbers.
    #[serde(default)]
    pub min: Option<f64>,
    /// Inclusive upper bound for numbers.
    #[serde(default)]
    pub max: Option<f64>,
    /// Set by the service (stack state, endpoints), never by the caller.
    #[serde(default)]
    pub output: bool,
}

fn yes() -> bool {
    true
}

impl AttributeSpec {
    /// A mutable, optional attribute of type `ty`.
    pub fn new(name: impl Into<String>, ty: AttributeType) -> Self {
        AttributeSpec {
            name: name.into(),
            ty,
            required: false,
            mutable: true,
            default: None,
            description: None,
            secret: false,
            pattern: None,
            min: None,
            max: None,
            output: false,
        }
    }
    /// Builder: mark required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    /// Builder: mark immutable after creation.
    pub fn immutable(mut self) -> Self {
        self.mutable = false;
        self
    }
    /// Builder: set the default value.
    pub fn default_value(mut self, v: impl Into<serde_json::Value>) -> Self {
        self.default = Some(v.into());
        self
    }
    /// Builder: set the description.
    pub fn describe(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }
    /// Builder: mark as a secret.
    pub fn secret(mut self) -> Self {
        self.secret = true;
        self
    }
    /// Builder: mark as service-set output (read-only for callers).
    pub fn output(mut self) -> Self {
        self.output = true;
        self.mutable = false;
        self
    }
    /// Builder: numeric bounds.
    pub fn range(mut self, min: Option<f64>, max: Option<f64>) -> Self {
        self.min = min;
        self.max = max;
        self
    }
    /// Builder: regular expression for strings.
    pub fn pattern(mut self, p: impl Into<String>) -> Self {
        self.pattern = Some(p.into());
        self
    }
}

/// An action a kind offers beyond the MCN lifecycle (`add_nodes`, `start`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionSpec {
    /// Action term (`add_nodes`).
    pub term: String,
    /// Action scheme; defaults to the kind's scheme with `/action#`-style
    /// naming left to the plugin.
    pub scheme: String,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Parameters the action takes (as `X-OCCI-Attribute`).
    #[serde(default)]
    pub attributes: Vec<AttributeSpec>,
    /// Phases in which the action applies (an action link is rendered
    /// only then; otherwise the call gets 400 naming the applicable ones).
    #[serde(default)]
    pub applies_in: Vec<Phase>,
}

/// A plugin's OCCI kind: what `/-/` shows and what instances are checked against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KindSpec {
    /// Kind term, e.g. `ims` or `orchestrator`.
    pub term: String,
    /// Kind scheme, ending in `#`.
    pub scheme: String,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Collection location, e.g. `/ims/`; defaults to `/{term}/`.
    #[serde(default)]
    pub location: Option<String>,
    /// Parent kinds (`rel`); defaults to `http://schemas.ogf.org/occi/core#resource`.
    #[serde(default)]
    pub related: Vec<String>,
    /// Attribute definitions.
    #[serde(default)]
    pub attributes: Vec<AttributeSpec>,
    /// Custom actions (deploy and provision are always there).
    #[serde(default)]
    pub actions: Vec<ActionSpec>,
}

impl KindSpec {
    /// The collection path, always with leading and trailing `/`.
    pub fn location(&self) -> String {
        match &self.location {
            Some(l) => {
                let mut l = l.clone();
                if !l.starts_with('/') {
                    l.insert(0, '/');
                }
                if !l.ends_with('/') {
                    l.push('/');
                }
                l
            }
            None => format!("/{}/", self.term),
        }
    }
    /// `scheme + term`, the kind's identifier.
    pub fn id(&self) -> String {
        format!("{}{}", self.scheme, self.term)
    }
    /// The definition of attribute `name`, if the kind has one.
    pub fn attribute(&self, name: &str) -> Option<&AttributeSpec> {
        self.attributes.iter().find(|a| a.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_defaults_and_normalises() {
        let mut k = KindSpec {
            term: "ims".into(),
            scheme: "http://example.org/occi#".into(),
            title: None,
            location: None,
            related: vec![],
            attributes: vec![],
            actions: vec![],
        };
        assert_eq!(k.location(), "/ims/");
        k.location = Some("svc/ims".into());
        assert_eq!(k.location(), "/svc/ims/");
        assert_eq!(k.id(), "http://example.org/occi#ims");
    }
}

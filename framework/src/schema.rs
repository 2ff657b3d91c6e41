//! Checks attribute values against a kind's attribute definitions, so a
//! caller's mistake is a 400 naming the attribute before any plugin runs.
//!
//! Callers of text renderings often quote every value (`port="25"`): a
//! quoted string is accepted for a number or boolean attribute when it
//! reads as one, and stored with the declared type.

use std::collections::HashMap;

use occi_so_sdk::{AttributeSpec, AttributeType, Attributes, KindSpec};
use regex::Regex;
use serde_json::Value;

/// Core attributes every entity accepts besides its kind's own.
pub const CORE_TITLE: &str = "occi.core.title";
/// `occi.core.summary`.
pub const CORE_SUMMARY: &str = "occi.core.summary";
/// `occi.core.id` (set by the server, immutable).
pub const CORE_ID: &str = "occi.core.id";

/// What is wrong with an attribute in a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributeError {
    /// Not defined by the kind.
    #[error("attribute '{name}' is not defined by kind '{kind}' (defined: {known})")]
    Unknown {
        /// The attribute.
        name: String,
        /// The kind term.
        kind: String,
        /// The names it defines.
        known: String,
    },
    /// Wrong type or out of bounds.
    #[error("attribute '{name}': {message}")]
    Invalid {
        /// The attribute.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// Required and missing.
    #[error("attribute '{name}' is required by kind '{kind}'")]
    Missing {
        /// The attribute.
        name: String,
        /// The kind term.
        kind: String,
    },
    /// Immutable (or set by the service) and the request changes it.
    #[error("attribute '{name}' is immutable{why}")]
    Immutable {
        /// The attribute.
        name: String,
        /// `""` or `" (set by the service)"`.
        why: String,
    },
}

impl AttributeError {
    /// The attribute at fault.
    pub fn attribute(&self) -> &str {
        match self {
            AttributeError::Unknown { name, .. }
            | AttributeError::Invalid { name, .. }
            | AttributeError::Missing { name, .. }
            | AttributeError::Immutable { name, .. } => name,
        }
    }
}

/// A kind's attribute definitions, with patterns compiled once.
#[derive(Debug)]
pub struct Schema {
    kind: KindSpec,
    patterns: HashMap<String, Regex>,
}

impl Schema {
    /// Compiles the kind's patterns and checks its defaults; the error
    /// names the attribute whose definition is broken.
    pub fn new(kind: KindSpec) -> Result<Self, AttributeError> {
        let mut patterns = HashMap::new();
        for spec in &kind.attributes {
            if let Some(p) = &spec.pattern {
                let re =
                    Regex::new(&format!("^(?:{p})$")).map_err(|e| AttributeError::Invalid {
                        name: spec.name.clone(),
                        message: format!("pattern {p:?} does not compile: {e}"),
                    })?;
                patterns.insert(spec.name.clone(), re);
            }
            if let AttributeType::Enum(values) = &spec.ty {
                if values.is_empty() {
                    return Err(AttributeError::Invalid {
                        name: spec.name.clone(),
                        message: "enum type lists no values".into(),
                    });
                }
            }
        }
        let schema = Schema { kind, patterns };
        for spec in &schema.kind.attributes {
            if let Some(d) = &spec.default {
                schema
                    .check_value(spec, d.clone())
                    .map_err(|e| AttributeError::Invalid {
                        name: spec.name.clone(),
                        message: format!("default does not fit its own definition: {e}"),
                    })?;
            }
        }
        Ok(schema)
    }

    /// The kind.
    pub fn kind(&self) -> &KindSpec {
        &self.kind
    }

    /// Is `name` a secret attribute?
    pub fn is_secret(&self, name: &str) -> bool {
        self.kind.attribute(name).is_some_and(|a| a.secret)
    }

    fn lookup(&self, name: &str) -> Result<Option<&AttributeSpec>, AttributeError> {
        if name == CORE_TITLE || name == CORE_SUMMARY {
            return Ok(None);
        }
        match self.kind.attribute(name) {
            Some(spec) => Ok(Some(spec)),
            None => Err(AttributeError::Unknown {
                name: name.to_string(),
                kind: self.kind.term.clone(),
                known: self.known_names(),
            }),
        }
    }

    fn known_names(&self) -> String {
        let names: Vec<&str> = self
            .kind
            .attributes
            .iter()
            .filter(|a| !a.output)
            .map(|a| a.name.as_str())
            .chain([CORE_TITLE, CORE_SUMMARY])
            .collect();
        names.join(", ")
    }

    /// Check one value and return it with its declared type.
    pub fn check_value(&self, spec: &AttributeSpec, value: Value) -> Result<Value, AttributeError> {
        let invalid = |message: String| AttributeError::Invalid {
            name: spec.name.clone(),
            message,
        };
        let shown = |v: &Value| {
            if spec.secret {
                "the given value".to_string()
            } else {
                format!("{v}")
            }
        };
        let value = match (&spec.ty, value) {
            (AttributeType::String, Value::String(s)) => Value::String(s),
            (AttributeType::String, v @ (Value::Number(_) | Value::Bool(_))) => {
                // An unquoted 42 for a string attribute: keep its text.
                Value::String(v.to_string())
            }
            (AttributeType::Enum(allowed), v) => {
                let s = match v {
                    Value::String(s) => s,
                    other @ (Value::Number(_) | Value::Bool(_)) => other.to_string(),
                    other => {
                        return Err(invalid(format!(
                            "expected one of {}, got {}",
                            allowed.join(", "),
                            shown(&other)
                        )))
                    }
                };
                if !allowed.iter().any(|a| a == &s) {
                    return Err(invalid(format!(
                        "expected one of {}, got {}",
                        allowed.join(", "),
                        shown(&Value::String(s))
                    )));
                }
                Value::String(s)
            }
            (AttributeType::Number | AttributeType::Integer, Value::Number(n)) => Value::Number(n),
            (AttributeType::Number | AttributeType::Integer, Value::String(s)) => {
                match serde_json::from_str::<serde_json::Number>(s.trim()) {
                    Ok(n) => Value::Number(n),
                    Err(_) => {
                        return Err(invalid(format!(
                            "expected a number, got {}",
                            shown(&Value::String(s))
                        )))
                    }
                }
            }
            (AttributeType::Boolean, Value::Bool(b)) => Value::Bool(b),
            (AttributeType::Boolean, Value::String(s)) if s == "true" || s == "false" => {
                Value::Bool(s == "true")
            }
            (AttributeType::List, Value::Array(a)) => Value::Array(a),
            (AttributeType::List, Value::String(s)) => match serde_json::from_str(&s) {
                Ok(Value::Array(a)) => Value::Array(a),
                _ => return Err(invalid("expected a JSON list".into())),
            },
            (AttributeType::Object, Value::Object(o)) => Value::Object(o),
            (AttributeType::Object, Value::String(s)) => match serde_json::from_str(&s) {
                Ok(Value::Object(o)) => Value::Object(o),
                _ => return Err(invalid("expected a JSON object".into())),
            },
            (ty, other) => {
                return Err(invalid(format!(
                    "expected {}, got {}",
                    type_word(ty),
                    shown(&other)
                )))
            }
        };
        if let Value::Number(n) = &value {
            if spec.ty == AttributeType::Integer && !(n.is_i64() || n.is_u64()) {
                return Err(invalid(format!("expected a whole number, got {n}")));
            }
            let x = n.as_f64().unwrap_or(f64::NAN);
            if let Some(min) = spec.min {
                if x < min {
                    return Err(invalid(format!("{n} is below the minimum {min}")));
                }
            }
            if let Some(max) = spec.max {
                if x > max {
                    return Err(invalid(format!("{n} is above the maximum {max}")));
                }
            }
        }
        if let (Some(re), Value::String(s)) = (self.patterns.get(&spec.name), &value) {
            if !re.is_match(s) {
                return Err(invalid(format!(
                    "{} does not match the pattern {}",
                    shown(&value),
                    spec.pattern.as_deref().unwrap_or_default()
                )));
            }
        }
        Ok(value)
    }

    /// The attributes of a new instance: the given ones checked, defaults
    /// filled in, required ones present. Output attributes may not be set.
    pub fn for_create(&self, given: &[(String, Value)]) -> Result<Attributes, AttributeError> {
        let mut out = Attributes::new();
        for (name, value) in given {
            if name == CORE_ID {
                continue; // the server assigns ids; a PUT may echo it back
            }
            let value = match self.lookup(name)? {
                None => Value::String(text_of(value)),
                Some(spec) if spec.output => {
                    return Err(AttributeError::Immutable {
                        name: name.clone(),
                        why: " (set by the service)".into(),
                    })
                }
                Some(spec) => self.check_value(spec, value.clone())?,
            };
            out.insert(name.clone(), value);
        }
        for spec in &self.kind.attributes {
            if spec.output || out.contains_key(&spec.name) {
                continue;
            }
            match &spec.default {
                Some(d) => {
                    out.insert(spec.name.clone(), d.clone());
                }
                None if spec.required => {
                    return Err(AttributeError::Missing {
                        name: spec.name.clone(),
                        kind: self.kind.term.clone(),
                    })
                }
                None => {}
            }
        }
        Ok(out)
    }

    /// The changes an update makes: every given attribute checked; values
    /// equal to the current ones are dropped (clients PUT back what they
    /// GOT); immutable ones may not change. `current_state` holds what the
    /// service reports (stack state, outputs), which may be echoed back but
    /// not changed.
    pub fn for_update(
        &self,
        current: &Attributes,
        current_state: &Attributes,
        given: &[(String, Value)],
    ) -> Result<Attributes, AttributeError> {
        let mut changed = Attributes::new();
        for (name, value) in given {
            if name == CORE_ID {
                continue;
            }
            if let Some(reported) = current_state.get(name) {
                if same_value(reported, value) {
                    continue;
                }
                if self.kind.attribute(name).is_none_or(|s| s.output) {
                    return Err(AttributeError::Immutable {
                        name: name.clone(),
                        why: " (set by the service)".into(),
                    });
                }
            }
            let value = match self.lookup(name)? {
                None => Value::String(text_of(value)),
                Some(spec) => {
                    let v = self.check_value(spec, value.clone())?;
                    if spec.output {
                        return Err(AttributeError::Immutable {
                            name: name.clone(),
                            why: " (set by the service)".into(),
                        });
                    }
                    if current.get(name) == Some(&v) {
                        continue;
                    }
                    if !spec.mutable {
                        return Err(AttributeError::Immutable {
                            name: name.clone(),
                            why: String::new(),
                        });
                    }
                    v
                }
            };
            if current.get(name) != Some(&value) {
                changed.insert(name.clone(), value);
            }
        }
        Ok(changed)
    }

    /// Check the parameters of a call to action `term` (if the kind
    /// declares them); unknown parameters are refused.
    pub fn for_action(
        &self,
        term: &str,
        given: &[(String, Value)],
    ) -> Result<Attributes, AttributeError> {
        let Some(action) = self.kind.actions.iter().find(|a| a.term == term) else {
            return Ok(given.iter().cloned().collect());
        };
        let mut out = Attributes::new();
        for (name, value) in given {
            let Some(spec) = action.attributes.iter().find(|a| &a.name == name) else {
                let known: Vec<&str> = action.attributes.iter().map(|a| a.name.as_str()).collect();
                return Err(AttributeError::Unknown {
                    name: name.clone(),
                    kind: format!("{} action {term}", self.kind.term),
                    known: known.join(", "),
                });
            };
            out.insert(name.clone(), self.check_value(spec, value.clone())?);
        }
        for spec in &action.attributes {
            if out.contains_key(&spec.name) {
                continue;
            }
            match &spec.default {
                Some(d) => {
                    out.insert(spec.name.clone(), d.clone());
                }
                None if spec.required => {
                    return Err(AttributeError::Missing {
                        name: spec.name.clone(),
                        kind: format!("{} action {term}", self.kind.term),
                    })
                }
                None => {}
            }
        }
        Ok(out)
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Equal as OCCI text would show them (`5` equals `"5"`).
fn same_value(a: &Value, b: &Value) -> bool {
    a == b || text_of(a) == text_of(b)
}

fn type_word(ty: &AttributeType) -> &'static str {
    match ty {
        AttributeType::String => "a string",
        AttributeType::Number => "a number",
        AttributeType::Integer => "a whole number",
        AttributeType::Boolean => "true or false",
        AttributeType::Enum(_) => "one of the allowed values",
        AttributeType::List => "a list",
        AttributeType::Object => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use occi_so_sdk::ActionSpec;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::new(KindSpec {
            term: "escm".into(),
            scheme: "http://example.org/occi#".into(),
            title: None,
            location: None,
            related: vec![],
            attributes: vec![
                AttributeSpec::new("mail.host", AttributeType::String).required(),
                AttributeSpec::new("mail.port", AttributeType::Integer)
                    .default_value(25)
                    .range(Some(1.0), Some(65535.0)),
                AttributeSpec::new("mail.tls", AttributeType::Boolean).default_value(false),
                AttributeSpec::new("mail.password", AttributeType::String).secret(),
                AttributeSpec::new("mail.from", AttributeType::String).pattern(r"[^@\s]+@[^@\s]+"),
                AttributeSpec::new(
                    "topology",
                    AttributeType::Enum(vec!["a".into(), "b".into()]),
                )
                .default_value("a")
                .immutable(),
                AttributeSpec::new("occi.mcn.stack.state", AttributeType::String).output(),
            ],
            actions: vec![ActionSpec {
                term: "add_nodes".into(),
                scheme: "http://example.org/occi/action#".into(),
                title: None,
                attributes: vec![AttributeSpec::new("count", AttributeType::Integer).required()],
                applies_in: vec![],
            }],
        })
        .unwrap()
    }

    fn given(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn create_fills_defaults_and_coerces_quoted_values() {
        let s = schema();
        let a = s
            .for_create(&given(&[
                ("mail.host", json!("smtp")),
                ("mail.port", json!("587")),
            ]))
            .unwrap();
        assert_eq!(a["mail.port"], json!(587));
        assert_eq!(a["mail.tls"], json!(false));
        assert_eq!(a["topology"], json!("a"));
    }

    #[test]
    fn create_errors_name_the_attribute() {
        let s = schema();
        let e = s.for_create(&[]).unwrap_err();
        assert_eq!(e.attribute(), "mail.host");
        let e = s
            .for_create(&given(&[
                ("mail.host", json!("h")),
                ("mail.port", json!("lots")),
            ]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "attribute 'mail.port': expected a number, got \"lots\""
        );
        let e = s
            .for_create(&given(&[
                ("mail.host", json!("h")),
                ("mail.port", json!(70000)),
            ]))
            .unwrap_err();
        assert!(e.to_string().contains("above the maximum"), "{e}");
        let e = s
            .for_create(&given(&[("mail.hots", json!("h"))]))
            .unwrap_err();
        assert!(matches!(e, AttributeError::Unknown { .. }));
        assert!(e.to_string().contains("mail.host"), "{e}");
        let e = s
            .for_create(&given(&[
                ("mail.host", json!("h")),
                ("mail.from", json!("nobody")),
            ]))
            .unwrap_err();
        assert!(e.to_string().contains("pattern"), "{e}");
        let e = s
            .for_create(&given(&[
                ("mail.host", json!("h")),
                ("topology", json!("c")),
            ]))
            .unwrap_err();
        assert!(e.to_string().contains("one of a, b"), "{e}");
        let e = s
            .for_create(&given(&[
                ("mail.host", json!("h")),
                ("occi.mcn.stack.state", json!("X")),
            ]))
            .unwrap_err();
        assert!(matches!(e, AttributeError::Immutable { .. }));
    }

    #[test]
    fn secret_values_never_appear_in_errors() {
        let mut kind = schema().kind().clone();
        kind.attributes.push(
            AttributeSpec::new("pin", AttributeType::Integer)
                .secret()
                .range(Some(0.0), Some(9.0)),
        );
        let s = Schema::new(kind).unwrap();
        let e = s
            .for_create(&given(&[
                ("mail.host", json!("h")),
                ("pin", json!("s3cr3t")),
            ]))
            .unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
    }

    #[test]
    fn update_drops_echoes_and_guards_immutables() {
        let s = schema();
        let current = s.for_create(&given(&[("mail.host", json!("h"))])).unwrap();
        let state = Attributes::from([("occi.mcn.stack.state".into(), json!("CREATE_COMPLETE"))]);
        let c = s
            .for_update(
                &current,
                &state,
                &given(&[
                    ("mail.host", json!("h")),
                    ("topology", json!("a")),
                    ("occi.mcn.stack.state", json!("CREATE_COMPLETE")),
                    ("mail.port", json!(2525)),
                ]),
            )
            .unwrap();
        assert_eq!(c, Attributes::from([("mail.port".into(), json!(2525))]));
        let e = s
            .for_update(&current, &state, &given(&[("topology", json!("b"))]))
            .unwrap_err();
        assert!(matches!(e, AttributeError::Immutable { .. }));
        let e = s
            .for_update(
                &current,
                &state,
                &given(&[("occi.mcn.stack.state", json!("X"))]),
            )
            .unwrap_err();
        assert!(matches!(e, AttributeError::Immutable { .. }));
    }

    #[test]
    fn action_parameters_are_checked() {
        let s = schema();
        assert_eq!(
            s.for_action("add_nodes", &given(&[("count", json!("3"))]))
                .unwrap()["count"],
            json!(3)
        );
        let e = s.for_action("add_nodes", &[]).unwrap_err();
        assert!(
            matches!(&e, AttributeError::Missing { name, .. } if name == "count"),
            "{e:?}"
        );
        assert!(
            e.to_string().starts_with("attribute 'count' is required"),
            "{e}"
        );
        let e = s
            .for_action("add_nodes", &given(&[("cnt", json!(1))]))
            .unwrap_err();
        assert!(
            matches!(&e, AttributeError::Unknown { name, known, .. } if name == "cnt" && known == "count"),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "attribute 'cnt' is not defined by kind 'escm action add_nodes' (defined: count)"
        );
    }

    #[test]
    fn broken_definitions_are_refused() {
        let mut kind = schema().kind().clone();
        kind.attributes
            .push(AttributeSpec::new("x", AttributeType::String).pattern("("));
        assert_eq!(Schema::new(kind).unwrap_err().attribute(), "x");
        let mut kind = schema().kind().clone();
        kind.attributes
            .push(AttributeSpec::new("y", AttributeType::Integer).default_value("no"));
        assert_eq!(Schema::new(kind).unwrap_err().attribute(), "y");
    }
}

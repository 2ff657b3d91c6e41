//! Attribute definitions: what a kind, mixin or action accepts.

use crate::Value;

/// The type of an attribute (OCCI 1.2 `type`, plus enumerations, which the
/// JSON rendering carries as a string type with an `enum` pattern).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AttributeType {
    /// Any string (the OCCI default).
    #[default]
    String,
    /// An integer or float.
    Number,
    /// A whole number (OCCI `number`; JSON Schema `integer` in the JSON
    /// rendering's `pattern`).
    Integer,
    /// `true` / `false`.
    Boolean,
    /// One of the listed strings.
    Enum(Vec<String>),
    /// An OCCI 1.2 list (JSON array).
    List,
    /// An OCCI 1.2 object (JSON object).
    Object,
}

impl AttributeType {
    /// The OCCI 1.2 JSON `type` word.
    pub fn json_type(&self) -> &'static str {
        match self {
            AttributeType::String | AttributeType::Enum(_) => "string",
            AttributeType::Number | AttributeType::Integer => "number",
            AttributeType::Boolean => "boolean",
            AttributeType::List => "array",
            AttributeType::Object => "object",
        }
    }
}

/// One attribute definition of a category.
///
/// The text renderings carry only the name and the `required` /
/// `immutable` properties (`name{required immutable}`); type, default,
/// description and pattern travel in the JSON rendering only.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributeDef {
    /// Full attribute name, e.g. `occi.mcn.stack.state`.
    pub name: String,
    /// Value type.
    pub ty: AttributeType,
    /// Must be given on creation.
    pub required: bool,
    /// May change after creation (`{immutable}` in text when false).
    pub mutable: bool,
    /// Value used when none is given.
    pub default: Option<Value>,
    /// Human description.
    pub description: Option<String>,
    /// A regular expression a string value must match (JSON Schema
    /// `pattern`). Carried, not checked here: this crate has no regex engine.
    pub pattern: Option<String>,
}

/// Why a value does not fit an attribute definition.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("attribute '{name}': expected {expected}, got {got}")]
pub struct ValueError {
    /// The attribute.
    pub name: String,
    /// What the definition wants.
    pub expected: String,
    /// What was given (short).
    pub got: String,
}

impl AttributeDef {
    /// A mutable, optional string attribute.
    pub fn new(name: impl Into<String>) -> Self {
        AttributeDef {
            name: name.into(),
            ty: AttributeType::String,
            required: false,
            mutable: true,
            default: None,
            description: None,
            pattern: None,
        }
    }

    /// Builder: set the type.
    pub fn with_type(mut self, ty: AttributeType) -> Self {
        self.ty = ty;
        self
    }

    /// Builder: mark required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Builder: mark immutable.
    pub fn immutable(mut self) -> Self {
        self.mutable = false;
        self
    }

    /// Builder: set the default.
    pub fn with_default(mut self, v: impl Into<Value>) -> Self {
        self.default = Some(v.into());
        self
    }

    /// Builder: set the description.
    pub fn with_description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }

    /// Converts a parsed value to this definition's type, or says why not.
    ///
    /// Text renderings cannot tell `"5"` from a string, nor a quoted JSON
    /// list from a string, so this is where a server turns what a client
    /// sent into the declared type: strings holding a number, boolean, JSON
    /// list or object become that; numbers and booleans given for a string
    /// attribute become their text (clients send `port=8080` unquoted).
    /// The pattern is not checked (no regex engine here).
    pub fn coerce(&self, value: Value) -> Result<Value, ValueError> {
        let bad = |v: &Value| ValueError {
            name: self.name.clone(),
            expected: match &self.ty {
                AttributeType::Enum(options) => format!("one of {}", options.join(", ")),
                AttributeType::Integer => "a whole number".to_owned(),
                t => format!("a {}", t.json_type()),
            },
            got: short(v),
        };
        match (&self.ty, value) {
            (AttributeType::String, Value::String(s)) => Ok(Value::String(s)),
            (AttributeType::String, v @ (Value::Number(_) | Value::Bool(_))) => {
                Ok(Value::String(v.to_string()))
            }
            (AttributeType::Number, v @ Value::Number(_)) => Ok(v),
            (AttributeType::Number, Value::String(s)) => crate::text::number(s.trim())
                .map(Value::Number)
                .ok_or_else(|| bad(&Value::String(s))),
            (AttributeType::Integer, Value::Number(n)) => {
                integer(&n).ok_or_else(|| bad(&Value::Number(n)))
            }
            (AttributeType::Integer, Value::String(s)) => crate::text::number(s.trim())
                .as_ref()
                .and_then(integer)
                .ok_or_else(|| bad(&Value::String(s))),
            (AttributeType::Boolean, v @ Value::Bool(_)) => Ok(v),
            (AttributeType::Boolean, Value::String(s)) => match s.trim() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(bad(&Value::String(s))),
            },
            (AttributeType::Enum(options), Value::String(s)) if options.contains(&s) => {
                Ok(Value::String(s))
            }
            (AttributeType::List, v @ Value::List(_)) => Ok(v),
            (AttributeType::Object, v @ Value::Object(_)) => Ok(v),
            (AttributeType::List | AttributeType::Object, Value::String(s)) => {
                match serde_json::from_str::<serde_json::Value>(&s) {
                    Ok(serde_json::Value::Array(a)) if self.ty == AttributeType::List => {
                        Ok(Value::List(a))
                    }
                    Ok(serde_json::Value::Object(o)) if self.ty == AttributeType::Object => {
                        Ok(Value::Object(o))
                    }
                    _ => Err(bad(&Value::String(s))),
                }
            }
            (_, v) => Err(bad(&v)),
        }
    }
}

/// `n` as an integer value: integers as they are, floats only when whole
/// and within `i64`.
fn integer(n: &serde_json::Number) -> Option<Value> {
    if n.is_i64() || n.is_u64() {
        return Some(Value::Number(n.clone()));
    }
    let f = n.as_f64()?;
    if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
        Some(Value::from(f as i64))
    } else {
        None
    }
}

fn short(v: &Value) -> String {
    let text = v.to_string();
    let mut s: String = text.chars().take(40).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    format!("{} '{}'", v.type_name(), s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coerce_turns_text_forms_into_declared_types() {
        let n = AttributeDef::new("n").with_type(AttributeType::Number);
        assert_eq!(n.coerce("5".into()).unwrap(), Value::from(5));
        let e = n.coerce("five".into()).unwrap_err();
        assert_eq!((e.name.as_str(), e.expected.as_str()), ("n", "a number"));
        assert!(e.to_string().contains("five"), "the value is named: {e}");
        let i = AttributeDef::new("i").with_type(AttributeType::Integer);
        assert_eq!(i.coerce("7".into()).unwrap(), Value::from(7));
        assert_eq!(
            i.coerce(Value::float(7.0).unwrap()).unwrap(),
            Value::from(7)
        );
        let e = i.coerce(Value::float(7.5).unwrap()).unwrap_err();
        assert_eq!(
            (e.name.as_str(), e.expected.as_str()),
            ("i", "a whole number")
        );
        assert!(e.got.contains("7.5"), "{e}");
        let b = AttributeDef::new("b").with_type(AttributeType::Boolean);
        assert_eq!(b.coerce("true".into()).unwrap(), Value::Bool(true));
        let l = AttributeDef::new("l").with_type(AttributeType::List);
        assert_eq!(
            l.coerce("[1,\"a\"]".into()).unwrap(),
            Value::List(vec![1.into(), "a".into()])
        );
        let e = l.coerce("{}".into()).unwrap_err();
        assert_eq!(e.name, "l");
        assert!(e.expected.ends_with("array"), "{e}");
        let s = AttributeDef::new("s");
        assert_eq!(s.coerce(Value::from(8080)).unwrap(), Value::from("8080"));
        let e = AttributeDef::new("e").with_type(AttributeType::Enum(vec!["a".into(), "b".into()]));
        assert!(e.coerce("a".into()).is_ok());
        let err = e.coerce("c".into()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "attribute 'e': expected one of a, b, got string 'c'"
        );
    }
}

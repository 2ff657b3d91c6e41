//! Attribute values and the ordered attribute set of an entity or request.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number};

/// One OCCI attribute value.
///
/// Numbers keep whether they were integers or floats (`5` stays `5`,
/// `5.0` stays `5.0`). Lists and objects are OCCI 1.2 additions: JSON
/// renders them natively; the text renderings carry them as a quoted JSON
/// text, which parses back as a [`Value::String`] until
/// [`AttributeDef::coerce`](crate::AttributeDef::coerce) turns it into the
/// declared type.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A string (`"..."` in text renderings).
    String(String),
    /// An integer or a float.
    Number(Number),
    /// `true` or `false`.
    Bool(bool),
    /// An OCCI 1.2 list (JSON array).
    List(Vec<serde_json::Value>),
    /// An OCCI 1.2 object (JSON object).
    Object(Map<String, serde_json::Value>),
}

/// A JSON `null` has no OCCI counterpart: an unset attribute is simply not
/// rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("null is not an OCCI attribute value (leave the attribute out instead)")]
pub struct NullValue;

impl Value {
    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number as `i64`, if it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    /// The number as `f64` (integers too).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The value as a `serde_json::Value` (lossless).
    pub fn to_json(&self) -> serde_json::Value {
        self.clone().into()
    }

    /// The OCCI 1.2 JSON type word of this value (`string`, `number`,
    /// `boolean`, `array`, `object`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::Number(_) => "number",
            Value::Bool(_) => "boolean",
            Value::List(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// A float value; `None` for NaN and infinities, which OCCI cannot carry.
    pub fn float(f: f64) -> Option<Value> {
        Number::from_f64(f).map(Value::Number)
    }
}

/// Text form without quotes: strings as they are, numbers and booleans as
/// rendered, lists and objects as compact JSON.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(s) => f.write_str(s),
            Value::Number(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::List(l) => write!(f, "{}", serde_json::Value::Array(l.clone())),
            Value::Object(o) => write!(f, "{}", serde_json::Value::Object(o.clone())),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Number(n.into())
    }
}
impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Number(n.into())
    }
}
impl From<i32> for Value {
    fn from(n: i32) -> Self {
        Value::Number(n.into())
    }
}
impl From<Number> for Value {
    fn from(n: Number) -> Self {
        Value::Number(n)
    }
}

impl TryFrom<serde_json::Value> for Value {
    type Error = NullValue;
    fn try_from(v: serde_json::Value) -> Result<Self, NullValue> {
        Ok(match v {
            serde_json::Value::Null => return Err(NullValue),
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Number(n),
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => Value::List(a),
            serde_json::Value::Object(o) => Value::Object(o),
        })
    }
}

impl From<Value> for serde_json::Value {
    fn from(v: Value) -> Self {
        match v {
            Value::String(s) => serde_json::Value::String(s),
            Value::Number(n) => serde_json::Value::Number(n),
            Value::Bool(b) => serde_json::Value::Bool(b),
            Value::List(l) => serde_json::Value::Array(l),
            Value::Object(o) => serde_json::Value::Object(o),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::String(v) => s.serialize_str(v),
            Value::Number(v) => v.serialize(s),
            Value::Bool(v) => s.serialize_bool(*v),
            Value::List(v) => v.serialize(s),
            Value::Object(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Value::try_from(v).map_err(serde::de::Error::custom)
    }
}

/// Attribute name → value, in the order given (requests) or chosen by the
/// server (responses). Setting an existing name replaces its value in place.
///
/// Small (an entity has tens of attributes), so a vector with linear lookup
/// beats a hash map here and keeps the order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attributes(Vec<(String, Value)>);

impl Attributes {
    /// No attributes.
    pub fn new() -> Self {
        Attributes(Vec::new())
    }

    /// Room for `n` attributes.
    pub fn with_capacity(n: usize) -> Self {
        Attributes(Vec::with_capacity(n))
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Sets `name`; an existing value is replaced where it stands.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        let name = name.into();
        let value = value.into();
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    /// Removes `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        let at = self.0.iter().position(|(n, _)| n == name)?;
        Some(self.0.remove(at).1)
    }

    /// Whether `name` is set.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `(name, value)` pairs in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// Converts to a JSON object (the plugin SDK's attribute map).
    pub fn to_json_map(&self) -> Map<String, serde_json::Value> {
        self.0
            .iter()
            .map(|(n, v)| (n.clone(), v.to_json()))
            .collect()
    }

    /// Builds from `(name, JSON value)` pairs; `null`s are skipped (unset).
    pub fn from_json_pairs<I, K>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, serde_json::Value)>,
        K: Into<String>,
    {
        let mut out = Attributes::new();
        for (k, v) in pairs {
            if let Ok(v) = Value::try_from(v) {
                out.insert(k, v);
            }
        }
        out
    }
}

impl IntoIterator for Attributes {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut out = Attributes::new();
        for (k, v) in iter {
            out.insert(k, v);
        }
        out
    }
}

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_stay_integers_and_floats_stay_floats() {
        let five: Value = serde_json::from_str("5").unwrap();
        assert_eq!(serde_json::to_string(&five).unwrap(), "5");
        let f: Value = serde_json::from_str("5.0").unwrap();
        assert_eq!(serde_json::to_string(&f).unwrap(), "5.0");
        assert_eq!(five.as_i64(), Some(5));
    }

    #[test]
    fn json_conversion_is_lossless_and_rejects_null() {
        for j in [
            json!("x"),
            json!(1),
            json!(-1.5),
            json!(true),
            json!([1, "a", null]),
            json!({"a": {"b": [1]}}),
        ] {
            let v = Value::try_from(j.clone()).unwrap();
            assert_eq!(serde_json::Value::from(v), j);
        }
        assert_eq!(Value::try_from(json!(null)), Err(NullValue));
        let e = serde_json::from_str::<Value>("null").unwrap_err();
        assert!(e.to_string().starts_with(&NullValue.to_string()), "{e}");
    }

    #[test]
    fn insert_replaces_in_place_and_keeps_order() {
        let mut a = Attributes::new();
        a.insert("b", 1);
        a.insert("a", "x");
        a.insert("b", 2);
        let names: Vec<_> = a.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(a.get("b"), Some(&Value::from(2)));
        assert_eq!(a.remove("b"), Some(Value::from(2)));
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn json_map_round_trip_skips_nulls() {
        let a = Attributes::from_json_pairs([("x", json!(1)), ("y", json!(null))]);
        assert_eq!(a.len(), 1);
        assert_eq!(a.to_json_map().get("x"), Some(&json!(1)));
    }
}

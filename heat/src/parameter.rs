//! Template parameters as Heat handles them: the schema (type, default,
//! constraints, hidden, immutable...), coercion of the strings Heat's API
//! receives into typed values, constraint checks with Heat's messages, and
//! the string form Heat shows in a stack (`******` for hidden ones).

use fancy_regex::Regex;
use serde_json::{Map, Number, Value};

use crate::error::{Error, ErrorKind, Path};
use crate::pyfmt::{py_json, py_number, py_str};
use crate::version::Version;

/// A parameter type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    /// `string`
    String,
    /// `number`
    Number,
    /// `comma_delimited_list`
    CommaDelimitedList,
    /// `json`
    Json,
    /// `boolean`
    Boolean,
}

impl ParamType {
    /// The HOT name of the type.
    pub fn name(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Number => "number",
            ParamType::CommaDelimitedList => "comma_delimited_list",
            ParamType::Json => "json",
            ParamType::Boolean => "boolean",
        }
    }

    /// The CFN-style name Heat's `/validate` answer uses (`String`, `Json`...).
    pub fn validate_name(self) -> &'static str {
        match self {
            ParamType::String => "String",
            ParamType::Number => "Number",
            ParamType::CommaDelimitedList => "CommaDelimitedList",
            ParamType::Json => "Json",
            ParamType::Boolean => "Boolean",
        }
    }

    fn parse(s: &str) -> Option<ParamType> {
        Some(match s {
            "string" => ParamType::String,
            "number" => ParamType::Number,
            "comma_delimited_list" => ParamType::CommaDelimitedList,
            "json" => ParamType::Json,
            "boolean" => ParamType::Boolean,
            _ => return None,
        })
    }
}

/// What a constraint requires.
#[derive(Clone, Debug)]
pub enum ConstraintKind {
    /// Length of a string, list or map.
    Length {
        /// Inclusive minimum.
        min: Option<Number>,
        /// Inclusive maximum.
        max: Option<Number>,
    },
    /// Numeric range.
    Range {
        /// Inclusive minimum.
        min: Option<Number>,
        /// Inclusive maximum.
        max: Option<Number>,
    },
    /// `value % step == offset` (from 2017-02-24).
    Modulo {
        /// The step.
        step: Number,
        /// The offset.
        offset: Number,
    },
    /// One of these values.
    AllowedValues(Vec<Value>),
    /// A regular expression the whole value must match.
    AllowedPattern {
        /// The pattern as written.
        pattern: String,
        /// The compiled pattern (anchored at the start, backtracking like
        /// Python's `re`, look-around included), compiled on first use;
        /// `None` when it does not compile.
        regex: std::sync::OnceLock<Option<Regex>>,
    },
    /// A named constraint checked against a cloud (`nova.flavor`...): kept
    /// as data; only a real Heat can check it.
    CustomConstraint(String),
}

/// One constraint and its optional description (which, when set, is the
/// whole error message, as in Heat).
#[derive(Clone, Debug)]
pub struct Constraint {
    /// What it requires.
    pub kind: ConstraintKind,
    /// The template's description of it.
    pub description: Option<String>,
}

impl Constraint {
    fn class_name(&self) -> &'static str {
        match self.kind {
            ConstraintKind::Length { .. } => "Length",
            ConstraintKind::Range { .. } => "Range",
            ConstraintKind::Modulo { .. } => "Modulo",
            ConstraintKind::AllowedValues(_) => "AllowedValues",
            ConstraintKind::AllowedPattern { .. } => "AllowedPattern",
            ConstraintKind::CustomConstraint(_) => "CustomConstraint",
        }
    }

    fn valid_for(&self, ty: ParamType) -> bool {
        use ParamType as T;
        match self.kind {
            ConstraintKind::Range { .. } | ConstraintKind::Modulo { .. } => ty == T::Number,
            ConstraintKind::Length { .. } => {
                matches!(ty, T::String | T::CommaDelimitedList | T::Json)
            }
            ConstraintKind::AllowedValues(_) | ConstraintKind::CustomConstraint(_) => ty != T::Json,
            ConstraintKind::AllowedPattern { .. } => ty == T::String,
        }
    }

    /// The constraint as data, as Heat's `/validate` lists it.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        match &self.kind {
            ConstraintKind::Length { min, max } | ConstraintKind::Range { min, max } => {
                let mut r = Map::new();
                if let Some(n) = min {
                    r.insert("min".into(), Value::Number(n.clone()));
                }
                if let Some(n) = max {
                    r.insert("max".into(), Value::Number(n.clone()));
                }
                let key = if matches!(self.kind, ConstraintKind::Length { .. }) {
                    "length"
                } else {
                    "range"
                };
                m.insert(key.into(), Value::Object(r));
            }
            ConstraintKind::Modulo { step, offset } => {
                let mut r = Map::new();
                r.insert("step".into(), Value::Number(step.clone()));
                r.insert("offset".into(), Value::Number(offset.clone()));
                m.insert("modulo".into(), Value::Object(r));
            }
            ConstraintKind::AllowedValues(v) => {
                m.insert("allowed_values".into(), Value::Array(v.clone()));
            }
            ConstraintKind::AllowedPattern { pattern, .. } => {
                m.insert("allowed_pattern".into(), Value::String(pattern.clone()));
            }
            ConstraintKind::CustomConstraint(n) => {
                m.insert("custom_constraint".into(), Value::String(n.clone()));
            }
        }
        if let Some(d) = &self.description {
            m.insert("description".into(), Value::String(d.clone()));
        }
        Value::Object(m)
    }

    /// Checks `value` (as Heat passes it to the constraint: the raw string
    /// for strings and numbers, the parsed list or map otherwise).
    /// Custom constraints are not checked (they need a cloud).
    fn check(&self, value: &Value, ty: ParamType) -> Result<(), String> {
        if self.holds(value, ty)? {
            return Ok(());
        }
        if let Some(d) = &self.description {
            return Err(d.clone());
        }
        Err(self.failure(value))
    }

    /// Whether `value` meets the constraint (an error when it cannot be
    /// compared at all).
    fn holds(&self, value: &Value, ty: ParamType) -> Result<bool, String> {
        Ok(match &self.kind {
            ConstraintKind::Range { min, max } => {
                let v = str_to_num(value)?;
                range_ok(&v, min, max)
            }
            ConstraintKind::Length { min, max } => {
                let len = match value {
                    Value::String(s) => s.chars().count(),
                    Value::Array(a) => a.len(),
                    Value::Object(m) => m.len(),
                    other => {
                        return Err(format!(
                            "object of type '{}' has no len()",
                            py_type_name(other)
                        ))
                    }
                };
                range_ok(&Num::Int(len as i128), min, max)
            }
            ConstraintKind::Modulo { step, offset } => {
                let v = str_to_num(value)?;
                let step = Num::from_number(step);
                let offset = Num::from_number(offset);
                v.py_mod(&step).eq_num(&offset)
            }
            ConstraintKind::AllowedValues(allowed) => {
                if let Value::Array(items) = value {
                    items.iter().all(|v| allowed.iter().any(|a| py_eq(a, v)))
                } else {
                    let v = to_schema_type(value, ty)?;
                    let mut found = false;
                    for a in allowed {
                        if py_eq(&to_schema_type(a, ty)?, &v) {
                            found = true;
                            break;
                        }
                    }
                    found
                }
            }
            ConstraintKind::AllowedPattern { regex, pattern } => match (
                regex.get_or_init(|| Regex::new(&format!("^(?:{pattern})")).ok()),
                value,
            ) {
                (Some(re), Value::String(s)) => {
                    matches!(re.find(s), Ok(Some(m)) if m.end() == s.len())
                }
                (None, _) => true,
                (Some(_), _) => false,
            },
            ConstraintKind::CustomConstraint(_) => true,
        })
    }

    /// Heat's message for a value that does not meet the constraint (when
    /// the constraint has no description of its own).
    fn failure(&self, value: &Value) -> String {
        match &self.kind {
            ConstraintKind::Range { min, max } => format!(
                "{} is out of range (min: {}, max: {})",
                py_str(value),
                opt_num(min),
                opt_num(max)
            ),
            ConstraintKind::Length { min, max } => {
                let len = match value {
                    Value::String(s) => s.chars().count(),
                    Value::Array(a) => a.len(),
                    Value::Object(m) => m.len(),
                    _ => 0,
                };
                format!(
                    "length ({len}) is out of range (min: {}, max: {})",
                    opt_num(min),
                    opt_num(max)
                )
            }
            ConstraintKind::Modulo { step, offset } => format!(
                "{} is not a multiple of {} with an offset of {}",
                py_str(value),
                py_number(step),
                py_number(offset)
            ),
            ConstraintKind::AllowedValues(allowed) => format!(
                "{} is not an allowed value [{}]",
                py_json(value, false),
                allowed
                    .iter()
                    .map(|a| py_json(a, false))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ConstraintKind::AllowedPattern { pattern, .. } => {
                format!("\"{}\" does not match pattern \"{pattern}\"", py_str(value))
            }
            ConstraintKind::CustomConstraint(n) => {
                format!("\"{}\" does not validate {n}", py_str(value))
            }
        }
    }
}

fn opt_num(n: &Option<Number>) -> String {
    n.as_ref().map(py_number).unwrap_or_else(|| "None".into())
}

fn range_ok(v: &Num, min: &Option<Number>, max: &Option<Number>) -> bool {
    if let Some(m) = min {
        if v.lt(&Num::from_number(m)) {
            return false;
        }
    }
    if let Some(m) = max {
        if Num::from_number(m).lt(v) {
            return false;
        }
    }
    true
}

/// A Python int or float.
#[derive(Clone, Copy, Debug)]
enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    fn from_number(n: &Number) -> Num {
        if let Some(i) = n.as_i64() {
            Num::Int(i as i128)
        } else if let Some(u) = n.as_u64() {
            Num::Int(u as i128)
        } else {
            Num::Float(n.as_f64().unwrap_or(0.0))
        }
    }
    fn f(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
    fn lt(&self, o: &Num) -> bool {
        match (self, o) {
            (Num::Int(a), Num::Int(b)) => a < b,
            _ => self.f() < o.f(),
        }
    }
    fn eq_num(&self, o: &Num) -> bool {
        match (self, o) {
            (Num::Int(a), Num::Int(b)) => a == b,
            _ => self.f() == o.f(),
        }
    }
    fn py_mod(&self, o: &Num) -> Num {
        match (self, o) {
            (Num::Int(a), Num::Int(b)) if *b != 0 => Num::Int(
                a.rem_euclid(*b)
                    + if *b < 0 && a.rem_euclid(*b) != 0 {
                        *b
                    } else {
                        0
                    },
            ),
            _ => {
                let (a, b) = (self.f(), o.f());
                if b == 0.0 {
                    return Num::Float(f64::NAN);
                }
                let r = a % b;
                Num::Float(if r != 0.0 && (r < 0.0) != (b < 0.0) {
                    r + b
                } else {
                    r
                })
            }
        }
    }
    fn to_value(self) -> Value {
        match self {
            Num::Int(i) => {
                if let Ok(v) = i64::try_from(i) {
                    Value::Number(v.into())
                } else if let Ok(v) = u64::try_from(i) {
                    Value::Number(v.into())
                } else {
                    Number::from_f64(i as f64)
                        .map(Value::Number)
                        .unwrap_or(Value::Null)
                }
            }
            Num::Float(f) => Number::from_f64(f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
        }
    }
}

/// Python's `type(v).__name__` for a decoded JSON value.
fn py_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Heat's `Schema.str_to_num`: `int(v)`, else `float(v)`, with Python's
/// string rules (surrounding spaces, `_` separators, `inf`...).
pub(crate) fn str_to_num_ok(v: &Value) -> bool {
    str_to_num(v).is_ok()
}

fn str_to_num(v: &Value) -> Result<Num, String> {
    match v {
        Value::Number(n) => Ok(Num::from_number(n)),
        Value::Bool(b) => Ok(Num::Int(i128::from(*b))),
        Value::String(s) => {
            if let Some(i) = py_int(s) {
                return Ok(Num::Int(i));
            }
            py_float(s)
                .map(Num::Float)
                .ok_or_else(|| format!("could not convert string to float: '{s}'"))
        }
        other => Err(format!(
            "int() argument must be a string, a bytes-like object or a real number, not '{}'",
            py_type_name(other)
        )),
    }
}

pub(crate) fn py_int(s: &str) -> Option<i128> {
    let t = s.trim();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    // Python rejects leading zeros only in literals, not in int("007").
    let v: i128 = clean.parse().ok()?;
    Some(if neg { -v } else { v })
}

fn py_float(s: &str) -> Option<f64> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    if matches!(body, "inf" | "infinity" | "nan") {
        let neg = lower.starts_with('-');
        return Some(match body {
            "nan" => f64::NAN,
            _ if neg => f64::NEG_INFINITY,
            _ => f64::INFINITY,
        });
    }
    if t.contains("__") || t.starts_with('_') || t.ends_with('_') {
        return None;
    }
    let clean: String = t.chars().filter(|c| *c != '_').collect();
    if clean.is_empty()
        || !clean
            .chars()
            .all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
    {
        return None;
    }
    clean.parse::<f64>().ok()
}

/// Heat's `Schema.to_schema_type` for a parameter's type.
fn to_schema_type(v: &Value, ty: ParamType) -> Result<Value, String> {
    match ty {
        ParamType::Number => str_to_num(v).map(Num::to_value).map_err(|_| {
            format!(
                "Value \"{}\" is invalid for data type \"Number\".",
                py_str(v)
            )
        }),
        ParamType::String => Ok(Value::String(py_str(v))),
        ParamType::Boolean => bool_from_string(v).map(Value::Bool).map_err(|_| {
            format!(
                "Value \"{}\" is invalid for data type \"Boolean\".",
                py_str(v)
            )
        }),
        _ => Ok(v.clone()),
    }
}

/// Python `==` between decoded JSON values (1 == 1.0 == True).
fn py_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_) | Value::Bool(_), Value::Number(_) | Value::Bool(_)) => {
            match (str_to_num(a), str_to_num(b)) {
                (Ok(x), Ok(y)) => x.eq_num(&y),
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w)))
        }
        _ => a == b,
    }
}

/// oslo's `strutils.bool_from_string(v, strict=True)`.
pub fn bool_from_string(v: &Value) -> Result<bool, String> {
    let s = match v {
        Value::Bool(b) => return Ok(*b),
        other => py_str(other),
    };
    match s.trim().to_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Ok(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Ok(false),
        _ => Err(format!(
            "Unrecognized value '{s}', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"
        )),
    }
}

/// Python truthiness of a decoded value (`hidden: "false"` is true, as in Heat).
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// One parameter's declaration in a template.
#[derive(Clone, Debug)]
pub struct ParameterSchema {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: ParamType,
    /// `description`.
    pub description: Option<String>,
    /// `default` as written.
    pub default: Option<Value>,
    /// `hidden`: never shown (`******`).
    pub hidden: bool,
    /// `label`.
    pub label: Option<String>,
    /// `immutable`: may not change on stack update.
    pub immutable: bool,
    /// `tags` (from 2018-03-02).
    pub tags: Vec<String>,
    /// `constraints`, in order.
    pub constraints: Vec<Constraint>,
}

fn schema_err(msg: impl Into<String>, path: Path) -> Error {
    Error::new(ErrorKind::InvalidSchemaError, msg, path)
}

fn get_num(v: &Value) -> Result<Number, String> {
    match v {
        Value::Number(n) => Ok(n.clone()),
        Value::String(_) => match str_to_num(v)?.to_value() {
            Value::Number(n) => Ok(n),
            _ => Err("min/max must be numeric".into()),
        },
        Value::Bool(b) => Ok(Number::from(i64::from(*b))),
        other => Err(format!(
            "int() argument must be a string, a bytes-like object or a real number, not '{}'",
            py_type_name(other)
        )),
    }
}

fn check_keys(
    m: &Map<String, Value>,
    allowed: &[&str],
    entity: &str,
    path: &Path,
) -> Result<(), Error> {
    for k in m.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(schema_err(
                format!("Invalid key '{k}' for {entity}"),
                path.key(k.as_str()),
            ));
        }
    }
    Ok(())
}

impl ParameterSchema {
    /// Reads one entry of the `parameters` section as Heat's
    /// `HOTParamSchema.from_dict` does (Heat reports these as
    /// `InvalidSchemaError`).
    pub fn parse(name: &str, v: &Value, version: Version, path: &Path) -> Result<Self, Error> {
        let entity = format!("parameter ({name})");
        let Value::Object(m) = v else {
            return Err(schema_err(
                format!("Invalid {entity}, expected a mapping"),
                path.clone(),
            ));
        };
        let mut keys = vec![
            "type",
            "description",
            "default",
            "schema",
            "constraints",
            "hidden",
            "label",
            "immutable",
        ];
        if version.has_parameter_tags() {
            keys.push("tags");
        }
        check_keys(m, &keys, &entity, path)?;
        let Some(ty) = m.get("type") else {
            return Err(schema_err(
                format!("Missing parameter type for parameter: {name}"),
                path.clone(),
            ));
        };
        let tags = match m.get("tags") {
            None => Vec::new(),
            Some(Value::Array(a)) => a.iter().map(py_str).collect(),
            Some(_) => {
                return Err(schema_err(
                    format!("Tags property should be a list for parameter: {name}"),
                    path.key("tags"),
                ))
            }
        };
        let mut constraints = Vec::new();
        match m.get("constraints") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, c) in items.iter().enumerate() {
                    constraints.push(parse_constraint(
                        c,
                        version,
                        &path.key("constraints").index(i),
                    )?);
                }
            }
            Some(_) => {
                return Err(schema_err(
                    format!("Invalid parameter constraints for parameter {name}, expected a list"),
                    path.key("constraints"),
                ))
            }
        }
        let ty = match ty.as_str().and_then(ParamType::parse) {
            Some(t) => t,
            None => {
                return Err(schema_err(
                    format!("Invalid type ({})", py_str(ty)),
                    path.key("type"),
                ))
            }
        };
        let default = match m.get("default") {
            None | Some(Value::Null) => None,
            Some(d) => Some(d.clone()),
        };
        Ok(ParameterSchema {
            name: name.to_string(),
            ty,
            description: m.get("description").map(py_str),
            default,
            hidden: m.get("hidden").is_some_and(truthy),
            label: m.get("label").map(py_str),
            immutable: m.get("immutable").is_some_and(truthy),
            tags,
            constraints,
        })
    }

    /// Heat's `Schema.validate`: each constraint suits the type, and the
    /// template's default (if any) meets the constraints (custom ones
    /// aside). Messages are prefixed `Parameter 'x' is invalid:`.
    pub fn check(&self, path: &Path) -> Result<(), Error> {
        let wrap = |msg: String| {
            schema_err(
                format!("Parameter '{}' is invalid: {msg}", self.name),
                path.clone(),
            )
        };
        for c in &self.constraints {
            if !c.valid_for(self.ty) {
                return Err(wrap(format!(
                    "{} constraint invalid for {}",
                    c.class_name(),
                    self.ty.name()
                )));
            }
        }
        if let Some(d) = &self.default {
            let value = match (self.ty, d) {
                (ParamType::CommaDelimitedList, Value::Array(a)) => {
                    Value::Array(a.iter().map(|x| Value::String(py_str(x))).collect())
                }
                (ParamType::CommaDelimitedList, Value::String(s)) => {
                    Value::Array(s.split(',').map(|x| Value::String(x.into())).collect())
                }
                (ParamType::CommaDelimitedList, other) => {
                    return Err(wrap(format!(
                        "Default must be a comma-delimited list string: '{}' object has no attribute 'split'",
                        py_type_name(other)
                    )))
                }
                (_, other) => other.clone(),
            };
            for c in &self.constraints {
                if matches!(c.kind, ConstraintKind::CustomConstraint(_)) {
                    continue;
                }
                if let Err(e) = c.check(&value, self.ty) {
                    return Err(wrap(format!("Invalid default {} ({e})", py_str(d))));
                }
            }
        }
        Ok(())
    }

    /// Checks a value (the user's, or the default when the user gave none)
    /// and returns the typed value `get_param` gives. `Err` carries Heat's
    /// message after `Parameter 'x' is invalid: `.
    pub fn coerce(&self, raw: &Value) -> Result<Value, String> {
        match self.ty {
            ParamType::Number => {
                let n = str_to_num(raw)?;
                self.check_constraints(raw)?;
                Ok(n.to_value())
            }
            ParamType::String => {
                self.check_constraints(raw)?;
                Ok(Value::String(py_str(raw)))
            }
            ParamType::Boolean => {
                let b = bool_from_string(raw)?;
                self.check_constraints(raw)?;
                Ok(Value::Bool(b))
            }
            ParamType::CommaDelimitedList => {
                let parsed = parse_list(raw)?;
                self.check_constraints(&parsed)?;
                Ok(parsed)
            }
            ParamType::Json => {
                let parsed = parse_json(raw)?;
                self.check_constraints(&parsed)?;
                Ok(parsed)
            }
        }
    }

    /// The typed value without checking constraints (what `get_param`
    /// yields when Heat does not validate values, e.g. in `/validate`).
    pub fn coerce_unchecked(&self, raw: &Value) -> Result<Value, String> {
        match self.ty {
            ParamType::Number => str_to_num(raw).map(Num::to_value),
            ParamType::String => Ok(Value::String(py_str(raw))),
            ParamType::Boolean => bool_from_string(raw).map(Value::Bool),
            ParamType::CommaDelimitedList => parse_list(raw),
            ParamType::Json => parse_json(raw),
        }
    }

    fn check_constraints(&self, v: &Value) -> Result<(), String> {
        for c in &self.constraints {
            c.check(v, self.ty)?;
        }
        Ok(())
    }

    /// The string Heat shows for this parameter in a stack (`******` when hidden).
    pub fn display(&self, typed: &Value) -> String {
        if self.hidden {
            return "******".into();
        }
        match (self.ty, typed) {
            (ParamType::CommaDelimitedList, Value::Array(a)) => {
                a.iter().map(py_str).collect::<Vec<_>>().join(",")
            }
            (ParamType::Json, v) => py_json(v, false),
            (ParamType::Boolean, Value::Bool(b)) => if *b { "True" } else { "False" }.into(),
            (_, v) => py_str(v),
        }
    }

    /// The entry Heat's `/validate` answer gives this parameter.
    pub fn validate_info(&self, default: Option<&Value>) -> Value {
        let mut m = Map::new();
        m.insert("Type".into(), Value::String(self.ty.validate_name().into()));
        if let Some(d) = default {
            let shown = if self.hidden {
                Value::String("******".into())
            } else {
                d.clone()
            };
            m.insert("Default".into(), shown);
        }
        m.insert(
            "Description".into(),
            Value::String(self.description.clone().unwrap_or_default()),
        );
        m.insert(
            "Label".into(),
            Value::String(self.label.clone().unwrap_or_else(|| self.name.clone())),
        );
        m.insert(
            "NoEcho".into(),
            Value::String(if self.hidden { "true" } else { "false" }.into()),
        );
        for c in &self.constraints {
            match &c.kind {
                ConstraintKind::Length { min, max } => {
                    if let Some(n) = min {
                        m.insert("MinLength".into(), Value::Number(n.clone()));
                    }
                    if let Some(n) = max {
                        m.insert("MaxLength".into(), Value::Number(n.clone()));
                    }
                }
                ConstraintKind::Range { min, max } => {
                    if let Some(n) = min {
                        m.insert("MinValue".into(), Value::Number(n.clone()));
                    }
                    if let Some(n) = max {
                        m.insert("MaxValue".into(), Value::Number(n.clone()));
                    }
                }
                ConstraintKind::AllowedValues(v) => {
                    m.insert("AllowedValues".into(), Value::Array(v.clone()));
                }
                ConstraintKind::AllowedPattern { pattern, .. } => {
                    m.insert("AllowedPattern".into(), Value::String(pattern.clone()));
                }
                _ => {}
            }
            if let Some(d) = &c.description {
                m.insert("ConstraintDescription".into(), Value::String(d.clone()));
            }
        }
        if !self.tags.is_empty() {
            m.insert(
                "Tags".into(),
                Value::Array(self.tags.iter().cloned().map(Value::String).collect()),
            );
        }
        Value::Object(m)
    }
}

fn parse_list(raw: &Value) -> Result<Value, String> {
    match raw {
        Value::Array(a) => Ok(Value::Array(
            a.iter().map(|x| Value::String(py_str(x))).collect(),
        )),
        Value::String(s) if s.is_empty() => Ok(Value::Array(Vec::new())),
        Value::String(s) => Ok(Value::Array(
            s.split(',').map(|x| Value::String(x.into())).collect(),
        )),
        other => Err(format!(
            "Value must be a comma-delimited list string: '{}' object has no attribute 'split'",
            py_type_name(other)
        )),
    }
}

fn parse_json(raw: &Value) -> Result<Value, String> {
    match raw {
        Value::String(s) if s.is_empty() => Ok(raw.clone()),
        Value::String(s) => {
            serde_json::from_str(s).map_err(|e| format!("Value must be valid JSON: {e}"))
        }
        other => Ok(other.clone()),
    }
}

fn parse_constraint(c: &Value, version: Version, path: &Path) -> Result<Constraint, Error> {
    const KEYS: &[&str] = &[
        "description",
        "length",
        "range",
        "modulo",
        "allowed_values",
        "allowed_pattern",
        "custom_constraint",
    ];
    let Value::Object(m) = c else {
        return Err(schema_err(
            "Invalid parameter constraints, expected a mapping",
            path.clone(),
        ));
    };
    check_keys(m, KEYS, "parameter constraints", path)?;
    let description = m.get("description").map(py_str);
    let e = |msg: String| schema_err(msg, path.clone());
    let kind = if version.has_modulo() && m.contains_key("modulo") {
        parse_modulo(&m["modulo"], path)?
    } else if m.contains_key("range") {
        let (min, max) = min_max(m, "range", "range constraint", path)?;
        if min.is_none() && max.is_none() {
            return Err(e(
                "A range constraint must have a min value and/or a max value specified.".into(),
            ));
        }
        ConstraintKind::Range { min, max }
    } else if m.contains_key("length") {
        let (min, max) = min_max(m, "length", "length constraint", path)?;
        if min.is_none() && max.is_none() {
            return Err(e(
                "A length constraint must have a min value and/or a max value specified.".into(),
            ));
        }
        for n in [&min, &max].into_iter().flatten() {
            if !(n.is_i64() || n.is_u64()) {
                return Err(e("min/max length must be integral".into()));
            }
        }
        ConstraintKind::Length { min, max }
    } else if let Some(a) = m.get("allowed_values") {
        match a {
            Value::Array(items) => ConstraintKind::AllowedValues(items.clone()),
            _ => return Err(e("AllowedValues must be a list".into())),
        }
    } else if let Some(p) = m.get("allowed_pattern") {
        match p {
            Value::String(s) => ConstraintKind::AllowedPattern {
                pattern: s.clone(),
                regex: std::sync::OnceLock::new(),
            },
            _ => return Err(e("AllowedPattern must be a string".into())),
        }
    } else if let Some(n) = m.get("custom_constraint") {
        ConstraintKind::CustomConstraint(py_str(n))
    } else {
        return Err(e("No constraint expressed".into()));
    };
    Ok(Constraint { kind, description })
}

/// One optional number of a constraint's mapping (`min`, `step`...);
/// errors are named at the constraint's `path`.
fn optional_num(r: &Map<String, Value>, key: &str, path: &Path) -> Result<Option<Number>, Error> {
    match r.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => get_num(v)
            .map(Some)
            .map_err(|msg| schema_err(msg, path.clone())),
    }
}

/// A `range` or `length` constraint's `min` and `max`.
fn min_max(
    m: &Map<String, Value>,
    key: &str,
    entity: &str,
    path: &Path,
) -> Result<(Option<Number>, Option<Number>), Error> {
    let Value::Object(r) = &m[key] else {
        return Err(schema_err(
            format!("Invalid {entity}, expected a mapping"),
            path.clone(),
        ));
    };
    check_keys(r, &["min", "max"], entity, &path.key(key))?;
    Ok((optional_num(r, "min", path)?, optional_num(r, "max", path)?))
}

/// A `modulo` constraint: integral `step` (not 0) and `offset`, the
/// offset smaller than the step and of the same sign.
fn parse_modulo(def: &Value, path: &Path) -> Result<ConstraintKind, Error> {
    let e = |msg: &str| schema_err(msg, path.clone());
    let Value::Object(r) = def else {
        return Err(e("Invalid modulo constraint, expected a mapping"));
    };
    check_keys(
        r,
        &["step", "offset"],
        "modulo constraint",
        &path.key("modulo"),
    )?;
    let step = optional_num(r, "step", path)?;
    let offset = optional_num(r, "offset", path)?;
    let (Some(step), Some(offset)) = (step, offset) else {
        return Err(e(
            "A modulo constraint must have a step value and an offset value specified.",
        ));
    };
    let (s, o) = (Num::from_number(&step).f(), Num::from_number(&offset).f());
    if s.trunc() != s || o.trunc() != o {
        return Err(e("step/offset must be integer"));
    }
    if s == 0.0 {
        return Err(e("step cannot be 0."));
    }
    if o.abs() >= s.abs() {
        return Err(e("offset must be smaller (by absolute value) than step."));
    }
    if s * o < 0.0 {
        return Err(e("step and offset must be both positive or both negative."));
    }
    Ok(ConstraintKind::Modulo { step, offset })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(v: Value) -> ParameterSchema {
        ParameterSchema::parse("p", &v, Version::V2021_04_16, &Path::root()).unwrap()
    }

    #[test]
    fn number_range_message_like_heat() {
        let s =
            schema(json!({"type": "number", "constraints": [{"range": {"min": 4, "max": 64}}]}));
        assert_eq!(
            s.coerce(&json!("2")).unwrap_err(),
            "2 is out of range (min: 4, max: 64)"
        );
        assert_eq!(s.coerce(&json!("12")).unwrap(), json!(12));
        assert_eq!(s.coerce(&json!("12.5")).unwrap(), json!(12.5));
        assert_eq!(
            s.coerce(&json!("abc")).unwrap_err(),
            "could not convert string to float: 'abc'"
        );
    }

    #[test]
    fn allowed_values_message_like_heat() {
        let s = schema(
            json!({"type": "string", "constraints": [{"allowed_values": ["m1.small", "m1.large"]}]}),
        );
        assert_eq!(
            s.coerce(&json!("m1.huge")).unwrap_err(),
            "\"m1.huge\" is not an allowed value [\"m1.small\", \"m1.large\"]"
        );
        let d = schema(
            json!({"type": "string", "constraints": [{"allowed_values": ["a"], "description": "pick a"}]}),
        );
        assert_eq!(d.coerce(&json!("b")).unwrap_err(), "pick a");
    }

    #[test]
    fn pattern_must_match_whole_value() {
        let s = schema(json!({"type": "string", "constraints": [{"allowed_pattern": "[a-z]+"}]}));
        assert!(s.coerce(&json!("abc")).is_ok());
        assert_eq!(
            s.coerce(&json!("abc1")).unwrap_err(),
            "\"abc1\" does not match pattern \"[a-z]+\""
        );
    }

    #[test]
    fn lists_booleans_json() {
        let s = schema(
            json!({"type": "comma_delimited_list", "constraints": [{"length": {"max": 2}}]}),
        );
        assert_eq!(s.coerce(&json!("a,b")).unwrap(), json!(["a", "b"]));
        assert_eq!(
            s.coerce(&json!("a,b,c")).unwrap_err(),
            "length (3) is out of range (min: None, max: 2)"
        );
        let b = schema(json!({"type": "boolean"}));
        assert_eq!(b.coerce(&json!("yes")).unwrap(), json!(true));
        assert!(b
            .coerce(&json!("maybe"))
            .unwrap_err()
            .starts_with("Unrecognized value 'maybe'"));
        let j = schema(json!({"type": "json"}));
        assert_eq!(j.coerce(&json!("{\"a\": 1}")).unwrap(), json!({"a": 1}));
        assert!(j
            .coerce(&json!("{"))
            .unwrap_err()
            .starts_with("Value must be valid JSON"));
    }

    #[test]
    fn schema_errors_like_heat() {
        let e = ParameterSchema::parse(
            "p",
            &json!({"type": "string", "foo": 1}),
            Version::V2015_04_30,
            &Path::root(),
        )
        .unwrap_err();
        assert_eq!(e.message, "Invalid key 'foo' for parameter (p)");
        let e = ParameterSchema::parse(
            "p",
            &json!({"type": "strin"}),
            Version::V2015_04_30,
            &Path::root(),
        )
        .unwrap_err();
        assert_eq!(e.message, "Invalid type (strin)");
        let s = schema(json!({"type": "string", "constraints": [{"range": {"min": 1}}]}));
        assert_eq!(
            s.check(&Path::root()).unwrap_err().message,
            "Parameter 'p' is invalid: Range constraint invalid for string"
        );
        let s =
            schema(json!({"type": "number", "default": 3, "constraints": [{"range": {"min": 4}}]}));
        assert_eq!(
            s.check(&Path::root()).unwrap_err().message,
            "Parameter 'p' is invalid: Invalid default 3 (3 is out of range (min: 4, max: None))"
        );
    }

    #[test]
    fn hidden_is_never_displayed() {
        let s = schema(json!({"type": "string", "hidden": true}));
        assert_eq!(s.display(&json!("secret")), "******");
        assert_eq!(s.validate_info(Some(&json!("secret")))["Default"], "******");
    }

    #[test]
    fn modulo() {
        let s = schema(
            json!({"type": "number", "constraints": [{"modulo": {"step": 2, "offset": 1}}]}),
        );
        assert!(s.coerce(&json!("7")).is_ok());
        assert_eq!(
            s.coerce(&json!("8")).unwrap_err(),
            "8 is not a multiple of 2 with an offset of 1"
        );
    }
}

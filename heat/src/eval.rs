//! Evaluation of intrinsic functions with Heat's semantics.
//!
//! One evaluator serves two uses:
//! - **rendering** before a stack exists: parameters, conditions, files and
//!   pure functions are computed; `get_resource`/`get_attr` (and anything
//!   that needs them) stay as function calls with their arguments resolved
//!   as far as possible;
//! - **resolving** inside a running (embedded) stack: a [`Resolver`]
//!   answers `get_resource` and `get_attr`, and everything is computed.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Path};
use crate::function::{Call, Expr, Func};
use crate::pyfmt::{py_json, py_repr, py_str};
use crate::version::Version;

/// Answers what only a running stack knows. An embedded engine implements
/// it over its resources; rendering runs without one.
pub trait Resolver {
    /// `get_resource`: the resource's reference id (usually its physical id);
    /// `Null` while it has none.
    fn resource_id(&self, resource: &str) -> Value;
    /// `get_attr`: the value of one attribute (`Null` while unknown). Any
    /// path after the attribute name is applied by the evaluator.
    fn attribute(&self, resource: &str, attribute: &str) -> Value;
    /// `get_attr: [resource, attribute, path...]`: the attribute's value
    /// with the path applied. Heat hands the path to the resource (its
    /// `get_attribute(key, *path)`), so a type may give it a meaning of its
    /// own (a ResourceGroup's `resource.0` is the member's id alone, but the
    /// member's attribute with a path); by default the path selects keys and
    /// indices from [`Resolver::attribute`]'s value.
    fn attribute_path(&self, resource: &str, attribute: &str, path: &[Value]) -> Value {
        match self.attribute(resource, attribute) {
            Value::Null => Value::Null,
            v => select_attr_path(v, path),
        }
    }
    /// `get_attr: [resource]` (2015-10-15 and later): all attributes as a map.
    fn all_attributes(&self, resource: &str) -> Value {
        let _ = resource;
        Value::Object(Map::new())
    }
    /// `Fn::GetAZs`: the availability zones.
    fn availability_zones(&self) -> Vec<String> {
        vec!["nova".to_string()]
    }
    /// `resource_facade`: the parent resource's `metadata`,
    /// `deletion_policy` or `update_policy`, in a nested stack.
    fn resource_facade(&self, field: &str) -> Option<Value> {
        let _ = field;
        None
    }
}

/// The `files` map: `get_file` targets and nested templates by name.
pub type Files = BTreeMap<String, String>;

/// The outcome of evaluating a snippet.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Out {
    /// Fully computed.
    Val(Value),
    /// `if` without an else branch, false: the enclosing item disappears.
    Omit,
    /// Needs a running stack: the snippet with what could be resolved.
    Res(Value),
}

/// A parameter as the evaluator sees it.
#[derive(Clone, Debug)]
pub(crate) struct ParamSlot {
    /// The typed value, or the message explaining why there is none.
    pub value: Result<Value, Error>,
    /// Hidden parameters stay `get_param` calls when rendering.
    pub hidden: bool,
}

/// What a condition reference resolves against.
pub(crate) struct ConditionSet<'a> {
    pub defs: &'a indexmap::IndexMap<String, Expr>,
    pub cache: RefCell<HashMap<String, Option<bool>>>,
}

/// Everything evaluation needs.
pub(crate) struct Scope<'a> {
    pub version: Version,
    pub params: &'a HashMap<String, ParamSlot>,
    pub conditions: &'a ConditionSet<'a>,
    pub files: &'a Files,
    /// Names of enabled resources (for `Ref` and reference checks).
    pub resources: &'a dyn Fn(&str) -> bool,
    pub resolver: Option<&'a dyn Resolver>,
    /// Keep hidden parameters and pseudo parameters as `get_param` calls.
    pub rendering: bool,
}

fn err(call: &Call, msg: impl Into<String>) -> Error {
    let msg = msg.into();
    Error::new(
        ErrorKind::StackValidationFailed,
        format!("{}: {msg}", call.path),
        call.path.clone(),
    )
}

/// `Fn::Split`: the delimiter as written (it must be a literal string),
/// the string evaluated.
fn fn_split(c: &Call, args: &Value) -> Result<Value, Error> {
    let name = c.func.name();
    let a = args.as_array().cloned().unwrap_or_default();
    let delim = c
        .args
        .as_list()
        .and_then(|l| l.first().and_then(|d| d.as_str().map(String::from)));
    let Some(delim) = delim else {
        return Err(err(c, format!("Delimiter for {name} must be string")));
    };
    match a.get(1) {
        Some(Value::String(s)) => Ok(Value::Array(
            py_split(s, Some(&delim))
                .map_err(|m| err(c, m))?
                .into_iter()
                .map(Value::String)
                .collect(),
        )),
        other => Err(err(
            c,
            format!(
                "String to split must be string; got <class '{}'>",
                type_name(other.unwrap_or(&Value::Null))
            ),
        )),
    }
}

/// `contains`: a value in a list, or a string in a string.
fn contains(c: &Call, args: &Value) -> Result<Value, Error> {
    let a = args.as_array().cloned().unwrap_or_default();
    let (value, seq) = (
        a.first().cloned().unwrap_or(Value::Null),
        a.get(1).cloned().unwrap_or(Value::Null),
    );
    match &seq {
        Value::Array(items) => Ok(Value::Bool(items.iter().any(|i| py_eq(i, &value)))),
        Value::String(s) => match &value {
            Value::String(v) => Ok(Value::Bool(s.contains(v.as_str()))),
            other => Err(err(
                c,
                format!(
                    "'in <string>' requires string as left operand, not {}",
                    type_name(other)
                ),
            )),
        },
        _ => Err(err(
            c,
            format!(
                "Second argument to \"{}\" should be a sequence.",
                c.func.name()
            ),
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
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

fn truncated_repr(v: &Value) -> String {
    let r = py_repr(v);
    r.chars().take(200).collect()
}

/// Python `==` on decoded JSON values.
pub(crate) fn py_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(p), Some(q)) => p == q,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Bool(x), Value::Number(y)) | (Value::Number(y), Value::Bool(x)) => {
            y.as_f64() == Some(if *x { 1.0 } else { 0.0 })
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

fn truthy(v: &Value) -> bool {
    crate::parameter::truthy(v)
}

impl Scope<'_> {
    /// Evaluates a snippet.
    pub fn eval(&self, e: &Expr) -> Result<Out, Error> {
        match e {
            Expr::Lit(v) => Ok(Out::Val(v.clone())),
            Expr::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut residual = false;
                for item in items {
                    match self.eval(item)? {
                        Out::Val(v) => out.push(v),
                        Out::Res(v) => {
                            residual = true;
                            out.push(v)
                        }
                        Out::Omit => {}
                    }
                }
                Ok(if residual {
                    Out::Res(Value::Array(out))
                } else {
                    Out::Val(Value::Array(out))
                })
            }
            Expr::Map(entries) => {
                let mut out = Map::new();
                let mut residual = false;
                for (k, item) in entries {
                    match self.eval(item)? {
                        Out::Val(v) => {
                            out.insert(k.clone(), v);
                        }
                        Out::Res(v) => {
                            residual = true;
                            out.insert(k.clone(), v);
                        }
                        Out::Omit => {}
                    }
                }
                Ok(if residual {
                    Out::Res(Value::Object(out))
                } else {
                    Out::Val(Value::Object(out))
                })
            }
            Expr::Removed(r) => Err(crate::function::removed_error(r)),
            Expr::Call(c) => self.call(c),
        }
    }

    /// Evaluates a snippet that must be fully known (a value, never omitted).
    pub fn eval_value(&self, e: &Expr) -> Result<Option<Value>, Error> {
        match self.eval(e)? {
            Out::Val(v) => Ok(Some(v)),
            Out::Omit => Ok(Some(Value::Null)),
            Out::Res(_) => Ok(None),
        }
    }

    fn residual(&self, c: &Call, args: Value) -> Out {
        let mut m = Map::new();
        m.insert(c.func.name().to_string(), args);
        Out::Res(Value::Object(m))
    }

    /// Evaluates a call's arguments as Heat's `function.resolve(args)`.
    fn args(&self, c: &Call) -> Result<Result<Value, Value>, Error> {
        Ok(match self.eval(&c.args)? {
            Out::Val(v) => Ok(v),
            Out::Omit => Ok(Value::Null),
            Out::Res(v) => Err(v),
        })
    }

    fn call(&self, c: &Call) -> Result<Out, Error> {
        match c.func {
            Func::If => return self.eval_if(c),
            Func::GetParam => return self.get_param(c),
            _ => {}
        }
        let args = match self.args(c)? {
            Ok(v) => v,
            Err(res) => return Ok(self.residual(c, res)),
        };
        let name = c.func.name();
        let v = match c.func {
            Func::GetResource => match self.resolver {
                Some(r) => {
                    let n = args
                        .as_str()
                        .map(String::from)
                        .unwrap_or_else(|| py_str(&args));
                    r.resource_id(&n)
                }
                None => return Ok(self.residual(c, args)),
            },
            Func::GetAttr => return self.get_attr(c, args),
            Func::Ref => return self.eval_ref(c, args),
            Func::GetFile => self.get_file(c, &args)?,
            Func::StrReplace | Func::StrReplaceStrict | Func::StrReplaceVstrict => {
                let json = self.version >= Version::V2015_10_15;
                let strict = c.func != Func::StrReplace;
                let allow_empty = c.func != Func::StrReplaceVstrict;
                let tmpl = args.get("template").cloned().unwrap_or(Value::Null);
                let params = args.get("params").cloned().unwrap_or(Value::Null);
                str_replace(name, &tmpl, &params, json, strict, allow_empty)
                    .map_err(|m| err(c, m))?
            }
            Func::FnReplace => {
                let a = args.as_array().cloned().unwrap_or_default();
                let params = a.first().cloned().unwrap_or(Value::Null);
                let tmpl = a.get(1).cloned().unwrap_or(Value::Null);
                str_replace(name, &tmpl, &params, false, false, true).map_err(|m| err(c, m))?
            }
            Func::ListJoin | Func::FnJoin => {
                let multiple = c.func == Func::ListJoin && self.version >= Version::V2015_10_15;
                list_join(name, &args, multiple).map_err(|m| err(c, m))?
            }
            Func::StrSplit => str_split(name, &args).map_err(|m| err(c, m))?,
            Func::FnSplit => fn_split(c, &args)?,
            Func::Repeat => repeat(self.version, &args).map_err(|m| err(c, m))?,
            Func::MapMerge => map_merge(name, &args).map_err(|m| err(c, m))?,
            Func::MapReplace => map_replace(name, &args).map_err(|m| err(c, m))?,
            Func::Digest => digest(name, &args).map_err(|m| err(c, m))?,
            Func::Equals => {
                let a = args.as_array().cloned().unwrap_or_default();
                Value::Bool(a.len() == 2 && py_eq(&a[0], &a[1]))
            }
            Func::Not => Value::Bool(!self.condition_value(&args, c)?),
            Func::And | Func::Or => self.and_or(c, &args)?,
            Func::Contains => contains(c, &args)?,
            Func::Filter => filter(name, &args).map_err(|m| err(c, m))?,
            Func::MakeUrl => make_url(name, &args).map_err(|m| err(c, m))?,
            Func::ListConcat | Func::ListConcatUnique => {
                list_concat(name, &args, c.func == Func::ListConcatUnique).map_err(|m| err(c, m))?
            }
            Func::Yaql => {
                return if self.resolver.is_some() || !self.rendering {
                    Err(err(
                        c,
                        "yaql expressions are kept as data: occi-so does not evaluate them (a real Heat does)",
                    ))
                } else {
                    Ok(self.residual(c, args))
                };
            }
            Func::ResourceFacade | Func::FnResourceFacade => return self.resource_facade(c, args),
            Func::FnGetAzs => match self.resolver {
                Some(r) => Value::Array(
                    r.availability_zones()
                        .into_iter()
                        .map(Value::String)
                        .collect(),
                ),
                None => return Ok(self.residual(c, args)),
            },
            Func::FnSelect => fn_select(name, &args).map_err(|m| err(c, m))?,
            Func::FnBase64 => match args {
                Value::String(_) => args,
                _ => return Err(err(c, format!("\"{name}\" argument must be a string"))),
            },
            Func::FnMemberListToMap => member_list_to_map(&args).map_err(|m| err(c, m))?,
            Func::If | Func::GetParam => Value::Null,
        };
        Ok(Out::Val(v))
    }

    /// `Ref`: a resource's id when it names an enabled resource, else a
    /// parameter's value.
    fn eval_ref(&self, c: &Call, args: Value) -> Result<Out, Error> {
        let n = py_str(&args);
        if (self.resources)(&n) {
            return match self.resolver {
                Some(r) => Ok(Out::Val(r.resource_id(&n))),
                None => Ok(self.residual(c, args)),
            };
        }
        match self.params.get(&n) {
            Some(ParamSlot { hidden: true, .. }) if self.rendering => Ok(self.residual(c, args)),
            Some(slot) => Ok(Out::Val(slot.value.clone()?)),
            None => Err(Error::new(
                ErrorKind::InvalidTemplateReference,
                format!("The specified reference \"{n}\" (in unknown) is incorrect."),
                c.path.clone(),
            )),
        }
    }

    /// `get_file`: the content of a `files` entry.
    fn get_file(&self, c: &Call, args: &Value) -> Result<Value, Error> {
        let name = c.func.name();
        let Value::String(key) = args else {
            return Err(err(c, format!("Argument to \"{name}\" must be a string")));
        };
        match self.files.get(key) {
            Some(content) => Ok(Value::String(content.clone())),
            None => Err(err(
                c,
                format!("No content found in the \"files\" section for {name} path: {key}"),
            )),
        }
    }

    /// `and` / `or`: each condition evaluated until the answer is known.
    fn and_or(&self, c: &Call, args: &Value) -> Result<Value, Error> {
        let Value::Array(items) = args else {
            return Err(err(
                c,
                format!(
                    "Arguments to \"{}\" must be a list of conditions",
                    c.func.name()
                ),
            ));
        };
        let mut acc = c.func == Func::And;
        for item in items {
            let b = self.condition_value(item, c)?;
            if c.func == Func::And && !b {
                acc = false;
                break;
            }
            if c.func == Func::Or && b {
                acc = true;
                break;
            }
        }
        Ok(Value::Bool(acc))
    }

    /// `resource_facade`: a field of the parent's resource definition,
    /// only known in a nested stack.
    fn resource_facade(&self, c: &Call, args: Value) -> Result<Out, Error> {
        let field = py_str(&args);
        match self.resolver.and_then(|r| r.resource_facade(&field)) {
            Some(v) => Ok(Out::Val(v)),
            None if self.resolver.is_none() => Ok(self.residual(c, args)),
            None => Err(err(
                c,
                "'NoneType' object has no attribute 'metadata_get' (resource_facade is only valid in a nested stack)",
            )),
        }
    }

    fn get_param(&self, c: &Call) -> Result<Out, Error> {
        let name_fn = c.func.name();
        let args = match self.args(c)? {
            Ok(v) => v,
            Err(res) => return Ok(self.residual(c, res)),
        };
        let (pname, path): (Value, Vec<Value>) = match &args {
            Value::Null => {
                return Err(err(
                    c,
                    format!("Function \"{name_fn}\" must have arguments"),
                ))
            }
            Value::String(s) if s.is_empty() => {
                return Err(err(
                    c,
                    format!("Function \"{name_fn}\" must have arguments"),
                ))
            }
            Value::Array(a) if a.is_empty() => {
                return Err(err(
                    c,
                    format!("Function \"{name_fn}\" must have arguments"),
                ))
            }
            Value::String(_) => (args.clone(), Vec::new()),
            Value::Array(a) => (a[0].clone(), a[1..].to_vec()),
            _ => {
                return Err(err(
                    c,
                    format!("Argument to \"{name_fn}\" must be string or list"),
                ))
            }
        };
        let Value::String(pname) = pname else {
            return Err(err(
                c,
                format!("Parameter name in \"{name_fn}\" must be string"),
            ));
        };
        let slot = match self.params.get(&pname) {
            Some(s) => s,
            None => {
                return Err(Error::new(
                    ErrorKind::UserParameterMissing,
                    format!("The Parameter ({pname}) was not provided."),
                    c.path.clone(),
                ))
            }
        };
        if self.rendering && slot.hidden {
            return Ok(self.residual(c, args));
        }
        let value = match &slot.value {
            Ok(v) => v.clone(),
            Err(e)
                if self.rendering
                    && e.kind == ErrorKind::UserParameterMissing
                    && pname.starts_with("OS::") =>
            {
                return Ok(self.residual(c, args));
            }
            Err(e) => {
                let mut e = e.clone();
                e.path = c.path.clone();
                return Err(e);
            }
        };
        Ok(Out::Val(select_param_path(value, &path)))
    }

    fn get_attr(&self, c: &Call, args: Value) -> Result<Out, Error> {
        let Some(r) = self.resolver else {
            return Ok(self.residual(c, args));
        };
        let a = match &args {
            Value::Array(a) => a.clone(),
            Value::String(s) => vec![Value::String(s.clone())],
            _ => Vec::new(),
        };
        let res = a.first().map(py_str).unwrap_or_default();
        match a.get(1) {
            None => Ok(Out::Val(r.all_attributes(&res))),
            Some(attr) => {
                let attr = py_str(attr);
                Ok(Out::Val(r.attribute_path(&res, &attr, &a[2..])))
            }
        }
    }

    fn eval_if(&self, c: &Call) -> Result<Out, Error> {
        let owned;
        let items: &[Expr] = match &c.args {
            Expr::List(items) => items,
            other => {
                owned = other.as_list().unwrap_or_default();
                &owned
            }
        };
        let Some(cond) = items.first() else {
            return Err(err(c, "Arguments to \"if\" must be of the form: [condition_name, value_if_true, value_if_false]"));
        };
        let cv = match self.eval(cond)? {
            Out::Val(v) => v,
            Out::Omit => Value::Null,
            Out::Res(_) => {
                return Err(err(
                    c,
                    "the condition of \"if\" cannot be decided before the stack exists",
                ))
            }
        };
        let b = self.condition_value(&cv, c)?;
        let branch = if b { items.get(1) } else { items.get(2) };
        match branch {
            Some(e) => self.eval(e),
            None => Ok(Out::Omit),
        }
    }

    /// Heat's `_get_condition`: a boolean, or the name of a condition.
    fn condition_value(&self, v: &Value, c: &Call) -> Result<bool, Error> {
        match v {
            Value::Bool(b) => Ok(*b),
            other => self.is_enabled(Some(other)).map_err(|mut e| {
                if e.path.is_root() {
                    e.path = c.path.clone();
                }
                e
            }),
        }
    }

    /// Heat's `Conditions.is_enabled`.
    pub fn is_enabled(&self, cond: Option<&Value>) -> Result<bool, Error> {
        let name = match cond {
            None | Some(Value::Null) => return Ok(true),
            Some(Value::Bool(b)) => return Ok(*b),
            Some(Value::String(s)) if self.conditions.defs.contains_key(s) => s.clone(),
            Some(other) => {
                return Err(Error::validation(
                    format!("Invalid condition \"{}\"", py_str(other)),
                    Path::root(),
                ))
            }
        };
        if let Some(state) = self.conditions.cache.borrow().get(&name) {
            return match state {
                Some(b) => Ok(*b),
                None => Err(Error::validation(
                    format!(
                        "Condition validation error: Circular definition for condition \"{name}\""
                    ),
                    Path::keys(["conditions", name.as_str()]),
                )),
            };
        }
        self.conditions
            .cache
            .borrow_mut()
            .insert(name.clone(), None);
        let def = &self.conditions.defs[&name];
        let cond_scope = Scope {
            rendering: false,
            resolver: None,
            ..*self
        };
        let result = cond_scope.eval(def);
        let result = match result {
            Ok(Out::Val(Value::Bool(b))) => Ok(b),
            Ok(Out::Val(v)) => Err(Error::validation(
                format!(
                    "Condition validation error: The definition of condition \"{name}\" is invalid: {}",
                    py_str(&v)
                ),
                Path::keys(["conditions", name.as_str()]),
            )),
            Ok(_) => Err(Error::validation(
                format!("Condition validation error: condition \"{name}\" cannot be decided"),
                Path::keys(["conditions", name.as_str()]),
            )),
            Err(e) => Err(e),
        };
        match &result {
            Ok(b) => {
                self.conditions.cache.borrow_mut().insert(name, Some(*b));
            }
            Err(_) => {
                self.conditions.cache.borrow_mut().remove(&name);
            }
        }
        result
    }
}

/// `get_param` path traversal: lists take integer (or numeric string)
/// indices; anything that does not resolve gives `""`, as in Heat.
fn select_param_path(mut v: Value, path: &[Value]) -> Value {
    for key in path {
        let next = match (&v, key) {
            (Value::Object(m), Value::String(k)) => m.get(k).cloned(),
            (Value::Object(m), Value::Number(n)) => m.get(&n.to_string()).cloned(),
            (Value::Array(a), k) => {
                let idx = match k {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    _ => None,
                };
                idx.and_then(|i| py_index(a.len(), i)).map(|i| a[i].clone())
            }
            (Value::String(s), k) => {
                let idx = match k {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    _ => None,
                };
                let chars: Vec<char> = s.chars().collect();
                idx.and_then(|i| py_index(chars.len(), i))
                    .map(|i| Value::String(chars[i].to_string()))
            }
            _ => None,
        };
        match next {
            Some(n) => v = n,
            None => return Value::String(String::new()),
        }
    }
    v
}

/// Heat's `select_from_attribute`: anything that does not resolve gives `null`.
/// Applies a `get_attr` path (mapping keys, list and string indices,
/// negative ones from the end) to an attribute value; `Null` when a step
/// does not exist.
pub fn select_attr_path(mut v: Value, path: &[Value]) -> Value {
    for key in path {
        let next = match (&v, key) {
            (Value::Object(m), Value::String(k)) => m.get(k).cloned(),
            (Value::Array(a), Value::Number(n)) => n
                .as_i64()
                .and_then(|i| py_index(a.len(), i))
                .map(|i| a[i].clone()),
            (Value::String(s), Value::Number(n)) => {
                let chars: Vec<char> = s.chars().collect();
                n.as_i64()
                    .and_then(|i| py_index(chars.len(), i))
                    .map(|i| Value::String(chars[i].to_string()))
            }
            _ => None,
        };
        match next {
            Some(n) => v = n,
            None => return Value::Null,
        }
    }
    v
}

fn py_index(len: usize, i: i64) -> Option<usize> {
    let len = len as i64;
    let j = if i < 0 { len + i } else { i };
    (0..len).contains(&j).then_some(j as usize)
}

/// Python's `str.split(sep)` (`None`: split on whitespace).
fn py_split(s: &str, sep: Option<&str>) -> Result<Vec<String>, String> {
    match sep {
        None => Ok(s.split_whitespace().map(String::from).collect()),
        Some("") => Err("empty separator".into()),
        Some(d) => Ok(s.split(d).map(String::from).collect()),
    }
}

fn str_replace(
    name: &str,
    tmpl: &Value,
    params: &Value,
    json: bool,
    strict: bool,
    allow_empty: bool,
) -> Result<Value, String> {
    let Value::String(template) = tmpl else {
        return Err(format!("\"{name}\" template must be a string"));
    };
    let Value::Object(mapping) = params else {
        return Err(format!("\"{name}\" params must be a map"));
    };
    let mut keys: Vec<&String> = mapping.keys().collect();
    keys.sort();
    keys.sort_by_key(|k| std::cmp::Reverse(k.chars().count()));
    let values = replacement_values(name, &keys, mapping, json, allow_empty)?;
    let mut unreplaced: Vec<&String> = if strict { keys.clone() } else { Vec::new() };
    let result = replace_all(
        vec![template.clone()],
        &keys,
        &values,
        &mut unreplaced,
        strict,
    )?;
    if strict && !unreplaced.is_empty() {
        return Err(format!(
            "The following params were not found in the template: {}",
            unreplaced
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(",")
        ));
    }
    Ok(Value::String(result.into_iter().next().unwrap_or_default()))
}

/// `str_replace`'s values as strings, in the order of `keys` (lists and
/// maps as JSON when `json`); an empty one is an error unless
/// `allow_empty`.
fn replacement_values(
    name: &str,
    keys: &[&String],
    mapping: &Map<String, Value>,
    json: bool,
    allow_empty: bool,
) -> Result<Vec<String>, String> {
    let empty_err = |p: &str| {
        format!("{name} has an undefined or empty value for param {p}, must be a defined non-empty value")
    };
    let mut values = Vec::with_capacity(keys.len());
    for k in keys {
        let v = &mapping[k.as_str()];
        let s = match v {
            Value::Null => {
                if allow_empty {
                    String::new()
                } else {
                    return Err(empty_err(k));
                }
            }
            Value::String(s) => s.clone(),
            Value::Bool(_) | Value::Number(_) => py_str(v),
            Value::Array(_) | Value::Object(_) if json => {
                let empty = match v {
                    Value::Array(a) => a.is_empty(),
                    Value::Object(m) => m.is_empty(),
                    _ => false,
                };
                if !allow_empty && empty {
                    return Err(empty_err(k));
                }
                py_json(v, true)
            }
            _ => {
                return Err(format!(
                    "\"{name}\" params must be strings or numbers, param {k} is not valid"
                ))
            }
        };
        if !allow_empty && s.is_empty() {
            return Err(empty_err(k));
        }
        values.push(s);
    }
    Ok(values)
}

/// Heat's replacement: split on the first (longest) key, replace the rest
/// in each piece, join with the key's value; with `strict`, each key
/// found is struck from `unreplaced`.
fn replace_all(
    strings: Vec<String>,
    keys: &[&String],
    values: &[String],
    unreplaced: &mut Vec<&String>,
    strict: bool,
) -> Result<Vec<String>, String> {
    let Some((key, rest)) = keys.split_first() else {
        return Ok(strings);
    };
    if key.is_empty() {
        return Err("empty separator".into());
    }
    let value = &values[0];
    let mut out = Vec::with_capacity(strings.len());
    for s in strings {
        let pieces: Vec<String> = s.split(key.as_str()).map(String::from).collect();
        if strict && pieces.len() > 1 {
            unreplaced.retain(|k| k != key);
        }
        let replaced = replace_all(pieces, rest, &values[1..], unreplaced, strict)?;
        out.push(replaced.join(value));
    }
    Ok(out)
}

fn list_join(name: &str, args: &Value, multiple: bool) -> Result<Value, String> {
    let a = args.as_array().cloned().unwrap_or_default();
    let delim = a.first().cloned().unwrap_or(Value::Null);
    let mut strings: Vec<Value> = Vec::new();
    if multiple {
        for jl in &a[1.min(a.len())..] {
            if !truthy(jl) {
                continue;
            }
            match jl {
                Value::Array(items) => strings.extend(items.iter().cloned()),
                _ => return Err(format!("\"{name}\" must operate on a list")),
            }
        }
    } else {
        match a.get(1) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => strings = items.clone(),
            Some(_) => return Err(format!("\"{name}\" must operate on a list")),
        }
    }
    let Value::String(delim) = delim else {
        return Err(format!("\"{name}\" delimiter must be a string"));
    };
    let mut parts = Vec::with_capacity(strings.len());
    for s in &strings {
        parts.push(match s {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            Value::Array(_) | Value::Object(_) if multiple => py_json(s, true),
            other if multiple => {
                return Err(format!(
                    "Items to join must be string, map or list not {}",
                    truncated_repr(other)
                ))
            }
            other => {
                return Err(format!(
                    "Items to join must be strings not {}",
                    truncated_repr(other)
                ))
            }
        });
    }
    Ok(Value::String(parts.join(&delim)))
}

fn str_split(name: &str, args: &Value) -> Result<Value, String> {
    let example = format!("\"{name}\" : [ \",\", \"apples,pears\", <index>]");
    let Value::Array(a) = args else {
        return Err(format!(
            "Incorrect arguments to \"{name}\" should be: {example}"
        ));
    };
    if a.len() < 2 {
        return Err(format!(
            "Incorrect arguments to \"{name}\" should be: {example}"
        ));
    }
    let s = match &a[1] {
        Value::Null => return Ok(Value::Null),
        Value::String(s) => s.clone(),
        other => {
            return Err(format!(
                "'{}' object has no attribute 'split'",
                type_name(other)
            ))
        }
    };
    let delim = match &a[0] {
        Value::Null => None,
        Value::String(d) => Some(d.as_str()),
        other => return Err(format!("must be str or None, not {}", type_name(other))),
    };
    let parts = py_split(&s, delim)?;
    if let Some(idx) = a.get(2) {
        let i = match idx {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        };
        let Some(i) = i else {
            return Err(format!(
                "Incorrect index to \"{name}\" should be: {example}"
            ));
        };
        return match py_index(parts.len(), i) {
            Some(j) => Ok(Value::String(parts[j].clone())),
            None => Err(format!(
                "Incorrect index to \"{name}\" should be between 0 and {}",
                parts.len() as i64 - 1
            )),
        };
    }
    Ok(Value::Array(parts.into_iter().map(Value::String).collect()))
}

fn repeat(version: Version, args: &Value) -> Result<Value, String> {
    let name = "repeat";
    let for_each = args.get("for_each").cloned().unwrap_or(Value::Null);
    let template = args.get("template").cloned().unwrap_or(Value::Null);
    let nested = if version >= Version::V2017_09_01 {
        args.get("permutations")
            .and_then(Value::as_bool)
            .unwrap_or(true)
    } else {
        true
    };
    let Value::Object(fe) = for_each else {
        return Err(format!(
            "The \"for_each\" argument to \"{name}\" must contain a map"
        ));
    };
    if fe.is_empty() {
        return Err("not enough values to unpack (expected 2, got 0)".into());
    }
    let maps_ok = version >= Version::V2016_10_14 && nested;
    let mut keys = Vec::new();
    let mut lists: Vec<Vec<Value>> = Vec::new();
    let mut lens = Vec::new();
    for (k, v) in &fe {
        keys.push(k.clone());
        match v {
            Value::Null => lists.push(Vec::new()),
            Value::Array(a) => {
                lens.push(a.len());
                lists.push(a.clone());
            }
            Value::Object(m) if maps_ok => {
                lens.push(m.len());
                lists.push(m.keys().cloned().map(Value::String).collect());
            }
            _ => {
                return Err(if maps_ok {
                    format!("The values of the \"for_each\" argument to \"{name}\" must be lists or maps")
                } else {
                    format!("The values of the \"for_each\" argument to \"{name}\" must be lists")
                })
            }
        }
    }
    if !nested && lens.windows(2).any(|w| w[0] != w[1]) {
        return Err(format!(
            "For {name}, the length of for_each values should be equal if no nested loop."
        ));
    }
    let combos: Vec<Vec<Value>> = if nested {
        permutations(name, &lists)?
    } else {
        let n = lists.iter().map(Vec::len).min().unwrap_or(0);
        (0..n)
            .map(|i| lists.iter().map(|l| l[i].clone()).collect())
            .collect()
    };
    let mut out = Vec::with_capacity(combos.len());
    for combo in combos {
        let mut strs = Vec::with_capacity(combo.len());
        for v in &combo {
            match v {
                Value::String(s) => strs.push(s.clone()),
                other => {
                    return Err(format!(
                        "replace() argument 2 must be str, not {}",
                        type_name(other)
                    ))
                }
            }
        }
        out.push(do_replacement(&keys, &strs, &template));
    }
    Ok(Value::Array(out))
}

/// `repeat`'s nested loop: every combination of one item of each list, in
/// order (at most 100 000).
fn permutations(name: &str, lists: &[Vec<Value>]) -> Result<Vec<Vec<Value>>, String> {
    let mut acc: Vec<Vec<Value>> = vec![Vec::new()];
    for l in lists {
        let mut next = Vec::with_capacity(acc.len() * l.len());
        for prefix in &acc {
            for item in l {
                let mut p = prefix.clone();
                p.push(item.clone());
                next.push(p);
            }
        }
        acc = next;
        if acc.len() > 100_000 {
            return Err(format!("{name} would produce more than 100000 items"));
        }
    }
    Ok(acc)
}

fn do_replacement(keys: &[String], values: &[String], t: &Value) -> Value {
    match t {
        Value::String(s) => {
            let mut s = s.clone();
            for (k, v) in keys.iter().zip(values) {
                if !k.is_empty() {
                    s = s.replace(k.as_str(), v);
                }
            }
            Value::String(s)
        }
        Value::Array(a) => {
            Value::Array(a.iter().map(|x| do_replacement(keys, values, x)).collect())
        }
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let nk = match do_replacement(keys, values, &Value::String(k.clone())) {
                    Value::String(s) => s,
                    _ => k.clone(),
                };
                out.insert(nk, do_replacement(keys, values, v));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn map_merge(name: &str, args: &Value) -> Result<Value, String> {
    let items: Vec<Value> = match args {
        Value::Array(a) => a.clone(),
        Value::String(s) => s.chars().map(|c| Value::String(c.to_string())).collect(),
        _ => {
            return Err(format!(
                "Incorrect arguments to \"{name}\" should be: \"{name}\" : [ {{ \"key1\": \"val1\" }}, {{ \"key2\": \"val2\" }} ]"
            ))
        }
    };
    let mut out = Map::new();
    for m in items {
        match m {
            Value::Null => {}
            Value::Object(o) => {
                for (k, v) in o {
                    out.insert(k, v);
                }
            }
            other => {
                return Err(format!(
                    "Incorrect arguments: Items to merge must be maps. {} is type <class '{}'> instead of a dict",
                    truncated_repr(&other),
                    type_name(&other)
                ))
            }
        }
    }
    Ok(Value::Object(out))
}

fn map_replace(name: &str, args: &Value) -> Result<Value, String> {
    let example = format!(
        "\"{name}\" : [ {{ \"key1\": \"val1\" }}, {{\"keys\": {{\"key1\": \"key2\"}}, \"values\": {{\"val1\": \"val2\"}}}}]"
    );
    let ensure_map = |v: &Value| -> Result<Map<String, Value>, String> {
        match v {
            Value::Null => Ok(Map::new()),
            Value::Object(m) => Ok(m.clone()),
            _ => Err(format!(
                "Incorrect arguments: to \"{name}\", arguments must be a list of maps. Example:  {example}"
            )),
        }
    };
    let Value::Array(a) = args else {
        return Err(format!(
            "Incorrect arguments to \"{name}\" should be: {example}"
        ));
    };
    if a.len() != 2 {
        return Err(format!(
            "Incorrect arguments to \"{name}\" should be: {example}"
        ));
    }
    let in_map = ensure_map(&a[0])?;
    let repl = ensure_map(&a[1])?;
    if repl.keys().any(|k| k != "keys" && k != "values") {
        return Err(format!(
            "Incorrect arguments to \"{name}\" should be: {example}"
        ));
    }
    let keys = ensure_map(repl.get("keys").unwrap_or(&Value::Null))?;
    let values = ensure_map(repl.get("values").unwrap_or(&Value::Null))?;
    let mut out = Map::new();
    for (k, v) in &in_map {
        let key = match keys.get(k) {
            None | Some(Value::Null) => k.clone(),
            Some(nk) => {
                let nk = py_str(nk);
                if in_map.contains_key(&nk) && &nk != k {
                    return Err(format!(
                        "key replacement {nk} collides with a key in the input map"
                    ));
                }
                if out.contains_key(&nk) {
                    return Err(format!(
                        "key replacement {nk} collides with a key in the output map"
                    ));
                }
                nk
            }
        };
        let value = match v {
            Value::String(s) => values.get(s).cloned().unwrap_or_else(|| v.clone()),
            _ => v.clone(),
        };
        out.insert(key, value);
    }
    Ok(Value::Object(out))
}

fn digest(name: &str, args: &Value) -> Result<Value, String> {
    use md5::Md5;
    use sha1::Sha1;
    use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};
    use sha3::{Sha3_224, Sha3_256, Sha3_384, Sha3_512};
    let ok = matches!(args, Value::Array(a) if a.iter().all(Value::is_string));
    if !ok {
        return Err(format!(
            "Argument to function \"{name}\" must be a list of strings"
        ));
    }
    let a = args.as_array().cloned().unwrap_or_default();
    if a.len() != 2 {
        return Err(format!(
            "Function \"{name}\" usage: [\"<algorithm>\", \"<value>\"]"
        ));
    }
    let alg = a[0].as_str().unwrap_or_default().to_lowercase();
    let value = a[1].as_str().unwrap_or_default();
    let mut bytes = Vec::with_capacity(value.len());
    for ch in value.chars() {
        let cp = ch as u32;
        if cp > 255 {
            return Err(format!(
                "'latin-1' codec can't encode character '\\u{cp:04x}': ordinal not in range(256)"
            ));
        }
        bytes.push(cp as u8);
    }
    fn hex(d: &[u8]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }
    let out = match alg.as_str() {
        "md5" => hex(&Md5::digest(&bytes)),
        "sha1" => hex(&Sha1::digest(&bytes)),
        "sha224" => hex(&Sha224::digest(&bytes)),
        "sha256" => hex(&Sha256::digest(&bytes)),
        "sha384" => hex(&Sha384::digest(&bytes)),
        "sha512" => hex(&Sha512::digest(&bytes)),
        "sha3_224" => hex(&Sha3_224::digest(&bytes)),
        "sha3_256" => hex(&Sha3_256::digest(&bytes)),
        "sha3_384" => hex(&Sha3_384::digest(&bytes)),
        "sha3_512" => hex(&Sha3_512::digest(&bytes)),
        _ => {
            return Err(
                "Algorithm must be one of {'md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512', 'sha3_224', 'sha3_256', 'sha3_384', 'sha3_512'}".into(),
            )
        }
    };
    Ok(Value::String(out))
}

fn filter(name: &str, args: &Value) -> Result<Value, String> {
    let a = args.as_array().cloned().unwrap_or_default();
    let values = a.first().cloned().unwrap_or(Value::Null);
    let seq = a.get(1).cloned().unwrap_or(Value::Null);
    if !truthy(&seq) {
        return Ok(seq);
    }
    let Value::Array(items) = seq else {
        return Err(format!("\"{name}\" only works with lists"));
    };
    if !truthy(&values) {
        return Ok(Value::Array(items));
    }
    let Value::Array(vals) = values else {
        return Err(format!("\"{name}\" filters a list of values"));
    };
    Ok(Value::Array(
        items
            .into_iter()
            .filter(|i| !vals.iter().any(|v| py_eq(v, i)))
            .collect(),
    ))
}

fn list_concat(name: &str, args: &Value, unique: bool) -> Result<Value, String> {
    let Value::Array(items) = args else {
        return Err(format!(
            "Incorrect arguments to \"{name}\" should be: \"{name}\" : [ [ <value 1>, <value 2> ], [ <value 3>, <value 4> ] ]"
        ));
    };
    let mut out: Vec<Value> = Vec::new();
    for m in items {
        match m {
            Value::Null => {}
            Value::Array(a) => out.extend(a.iter().cloned()),
            other => {
                return Err(format!(
                    "Incorrect arguments: Items to concat must be lists. {} contains an item that is not a list: {}",
                    py_json(args, false),
                    py_json(other, false)
                ))
            }
        }
    }
    if unique {
        let mut u: Vec<Value> = Vec::with_capacity(out.len());
        for i in out {
            if !u.iter().any(|x| py_eq(x, &i)) {
                u.push(i);
            }
        }
        out = u;
    }
    Ok(Value::Array(out))
}

fn fn_select(name: &str, args: &Value) -> Result<Value, String> {
    let a = args.as_array().cloned().unwrap_or_default();
    let index = a.first().cloned().unwrap_or(Value::Null);
    let mut strings = a.get(1).cloned().unwrap_or(Value::Null);
    if strings == Value::String(String::new()) {
        return Ok(strings);
    }
    if let Value::String(s) = &strings {
        strings = serde_json::from_str(s).map_err(|e| format!("\"{name}\": {e}"))?;
    }
    match &strings {
        Value::Object(m) => match &index {
            Value::String(k) => Ok(m.get(k).cloned().unwrap_or(Value::String(String::new()))),
            _ => Err(format!("Index to \"{name}\" must be a string")),
        },
        Value::Array(items) => {
            let i = match &index {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            let Some(i) = i else {
                return Err(format!("Index to \"{name}\" must be an integer"));
            };
            Ok(py_index(items.len(), i)
                .map(|j| items[j].clone())
                .unwrap_or(Value::String(String::new())))
        }
        Value::Null => Ok(Value::String(String::new())),
        _ => Err(format!("Arguments to {name} not fully resolved")),
    }
}

fn member_list_to_map(args: &Value) -> Result<Value, String> {
    let a = args.as_array().cloned().unwrap_or_default();
    let key_name = a.first().map(py_str).unwrap_or_default();
    let value_name = a.get(1).map(py_str).unwrap_or_default();
    let Some(Value::Array(list)) = a.get(2) else {
        return Err("Member list must be a list".into());
    };
    // ".member.N.Key=value" items, grouped by N.
    let mut groups: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for item in list {
        let Value::String(s) = item else {
            return Err("Member list items must be strings".into());
        };
        let (k, v) = s.split_once('=').unwrap_or((s.as_str(), ""));
        let parts: Vec<&str> = k.trim_start_matches('.').split('.').collect();
        if let [member, idx, field] = parts.as_slice() {
            if *member == "member" {
                groups
                    .entry(idx.to_string())
                    .or_default()
                    .insert(field.to_string(), Value::String(v.to_string()));
            }
        }
    }
    let mut out = Map::new();
    for g in groups.values() {
        if let (Some(k), Some(v)) = (g.get(&key_name), g.get(&value_name)) {
            out.insert(py_str(k), v.clone());
        }
    }
    Ok(Value::Object(out))
}

/// `make_url`, with Python's `urllib.parse` quoting and `urlunsplit` rules.
fn make_url(name: &str, args: &Value) -> Result<Value, String> {
    let Value::Object(m) = args else {
        return Err(format!("The arguments to \"{name}\" must be a map"));
    };
    check_url_parts(name, m, args)?;
    let get = |k: &str| m.get(k).map(py_str).unwrap_or_default();
    let scheme = get("scheme");
    if scheme.contains(':') {
        return Err("URL \"scheme\" should not contain ':'".into());
    }
    let netloc = url_netloc(m);
    let path = quote(&get("path"), "/");
    let query = match m.get("query") {
        Some(Value::Object(q)) => q
            .iter()
            .map(|(k, v)| format!("{}={}", quote_plus(k), quote_plus(&py_str(v))))
            .collect::<Vec<_>>()
            .join("&")
            .replace("%2F", "/"),
        _ => String::new(),
    };
    let fragment = quote(&get("fragment"), "/");
    Ok(Value::String(url_unsplit(
        &scheme, &netloc, path, &query, &fragment,
    )))
}

/// `make_url`'s parts, checked in Heat's order (nothing after `query` is
/// looked at).
fn check_url_parts(name: &str, m: &Map<String, Value>, args: &Value) -> Result<(), String> {
    for key in [
        "scheme", "username", "password", "host", "port", "path", "query", "fragment",
    ] {
        let Some(v) = m.get(key) else { continue };
        match key {
            "query" => {
                if !v.is_object() {
                    return Err(format!(
                        "The \"{key}\" argument to \"{name}\" must be a map"
                    ));
                }
                break;
            }
            "port" => {
                let p = match v {
                    Value::Number(n) if n.is_i64() || n.is_u64() => n.as_i64(),
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    _ => None,
                };
                let Some(p) = p else {
                    return Err(format!(
                        "Invalid URL port \"{}\" for {name} called with {}",
                        py_str(v),
                        py_repr(args)
                    ));
                };
                if !(1..=65535).contains(&p) {
                    return Err(format!("Invalid URL port {p}, must be in range 1-65535"));
                }
            }
            _ => {
                if !v.is_string() {
                    return Err(format!(
                        "The \"{key}\" argument to \"{name}\" must be a string"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The URL's `user:password@host:port`, quoted (an IPv6 host bracketed).
fn url_netloc(m: &Map<String, Value>) -> String {
    let get = |k: &str| m.get(k).map(py_str).unwrap_or_default();
    let mut netloc = String::new();
    let username = quote(&get("username"), "");
    let password = quote(&get("password"), "");
    if !username.is_empty() || !password.is_empty() {
        netloc.push_str(&username);
        if !password.is_empty() {
            netloc.push(':');
            netloc.push_str(&password);
        }
        netloc.push('@');
    }
    let mut host = get("host");
    if host.starts_with('[') && host.ends_with(']') && host.len() >= 2 {
        host = host[1..host.len() - 1].to_string();
    }
    let mut host = quote(&host, ":");
    if host.contains(':') {
        host = format!("[{host}]");
    }
    netloc.push_str(&host);
    let port = m.get("port").map(py_str).unwrap_or_default();
    if !port.is_empty() {
        netloc.push(':');
        netloc.push_str(&port);
    }
    netloc
}

/// Python 3.11's `urlunsplit`.
fn url_unsplit(scheme: &str, netloc: &str, path: String, query: &str, fragment: &str) -> String {
    const USES_NETLOC: &[&str] = &[
        "", "ftp", "http", "gopher", "nntp", "telnet", "imap", "wais", "file", "mms", "https",
        "shttp", "snews", "prospero", "rtsp", "rtspu", "rsync", "svn", "svn+ssh", "sftp", "nfs",
        "git", "git+ssh", "ws", "wss",
    ];
    let mut url = path;
    if !netloc.is_empty()
        || (!scheme.is_empty() && USES_NETLOC.contains(&scheme) && !url.starts_with("//"))
    {
        if !url.is_empty() && !url.starts_with('/') {
            url = format!("/{url}");
        }
        url = format!("//{netloc}{url}");
    }
    if !scheme.is_empty() {
        url = format!("{scheme}:{url}");
    }
    if !query.is_empty() {
        url = format!("{url}?{query}");
    }
    if !fragment.is_empty() {
        url = format!("{url}#{fragment}");
    }
    url
}

/// Python's `urllib.parse.quote(s, safe)`.
fn quote(s: &str, safe: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let c = b as char;
        if b.is_ascii_alphanumeric() || "_.-~".contains(c) || (b.is_ascii() && safe.contains(c)) {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Python's `urllib.parse.quote_plus(s)`.
fn quote_plus(s: &str) -> String {
    quote(s, " ").replace(' ', "+")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn str_replace_prefers_longer_keys_and_does_not_rescan() {
        let r = str_replace(
            "str_replace",
            &json!("$a $ab"),
            &json!({"$a": "X", "$ab": "$a"}),
            true,
            false,
            true,
        )
        .unwrap();
        assert_eq!(r, json!("X $a"));
        let r = str_replace(
            "str_replace",
            &json!("v=$v"),
            &json!({"$v": {"b": 1, "a": [2]}}),
            true,
            false,
            true,
        )
        .unwrap();
        assert_eq!(r, json!("v={\"a\": [2], \"b\": 1}"));
        let e = str_replace(
            "str_replace_strict",
            &json!("x"),
            &json!({"$v": "1"}),
            true,
            true,
            true,
        )
        .unwrap_err();
        assert_eq!(e, "The following params were not found in the template: $v");
        let e = str_replace(
            "str_replace_vstrict",
            &json!("$v"),
            &json!({"$v": ""}),
            true,
            true,
            false,
        )
        .unwrap_err();
        assert!(e.contains("has an undefined or empty value for param $v"));
    }

    #[test]
    fn list_join_versions() {
        assert_eq!(
            list_join("list_join", &json!([",", ["a", "b"], ["c"]]), true).unwrap(),
            json!("a,b,c")
        );
        assert_eq!(
            list_join("list_join", &json!([",", ["a", {"k": 1}]]), true).unwrap(),
            json!("a,{\"k\": 1}")
        );
        assert!(list_join("list_join", &json!([",", ["a", 1]]), true).is_err());
        assert!(list_join("list_join", &json!([",", ["a", {"k": 1}]]), false).is_err());
    }

    #[test]
    fn repeat_nested_and_zip() {
        let r = repeat(
            Version::V2017_09_01,
            &json!({"template": "%a%-%b%", "for_each": {"%a%": ["1", "2"], "%b%": ["x", "y"]}}),
        )
        .unwrap();
        assert_eq!(r, json!(["1-x", "1-y", "2-x", "2-y"]));
        let r = repeat(Version::V2017_09_01, &json!({"template": {"k%a%": "%b%"}, "for_each": {"%a%": ["1", "2"], "%b%": ["x", "y"]}, "permutations": false})).unwrap();
        assert_eq!(r, json!([{"k1": "x"}, {"k2": "y"}]));
    }

    #[test]
    fn map_functions() {
        assert_eq!(
            map_merge("map_merge", &json!([{"a": 1, "b": 2}, null, {"a": 3}])).unwrap(),
            json!({"a": 3, "b": 2})
        );
        assert_eq!(
            map_replace(
                "map_replace",
                &json!([{"k1": "v1", "k2": "v2"}, {"keys": {"k1": "K1"}, "values": {"v2": "V2"}}])
            )
            .unwrap(),
            json!({"K1": "v1", "k2": "V2"})
        );
        assert!(map_replace(
            "map_replace",
            &json!([{"a": 1, "b": 2}, {"keys": {"a": "b"}}])
        )
        .is_err());
    }

    #[test]
    fn digest_and_split_and_url() {
        assert_eq!(
            digest("digest", &json!(["sha256", "abc"])).unwrap(),
            json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(
            digest("digest", &json!(["MD5", "abc"])).unwrap(),
            json!("900150983cd24fb0d6963f7d28e17f72")
        );
        assert_eq!(
            str_split("str_split", &json!([",", "a,b,c", 1])).unwrap(),
            json!("b")
        );
        assert!(str_split("str_split", &json!([",", "a,b,c", 5]))
            .unwrap_err()
            .contains("between 0 and 2"));
        assert_eq!(
            make_url("make_url", &json!({"scheme": "https", "host": "example.com", "port": 8443, "path": "/a b", "query": {"x": "1 2", "y": "a/b"}, "fragment": "f"})).unwrap(),
            json!("https://example.com:8443/a%20b?x=1+2&y=a/b#f")
        );
        assert_eq!(
            make_url("make_url", &json!({"scheme": "http", "host": "::1"})).unwrap(),
            json!("http://[::1]")
        );
    }

    #[test]
    fn get_param_paths() {
        assert_eq!(
            select_param_path(json!({"a": [1, 2]}), &[json!("a"), json!("1")]),
            json!(2)
        );
        assert_eq!(
            select_param_path(json!({"a": [1, 2]}), &[json!("b")]),
            json!("")
        );
        assert_eq!(
            select_attr_path(json!({"a": [1, 2]}), &[json!("a"), json!("1")]),
            Value::Null
        );
    }
}

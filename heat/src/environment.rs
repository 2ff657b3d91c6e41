//! Heat environments: `parameters`, `parameter_defaults`,
//! `resource_registry` (type aliases, wildcards, nested-template mappings,
//! per-resource overrides, hooks), `event_sinks` and the rest kept as data;
//! merged as the OpenStack client merges several `-e` files.

use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Path};
use crate::pyfmt::{py_repr, py_str};
use crate::resource_types::ResourceTypes;
use crate::yaml::{self, Limits};

/// The sections an environment may have.
pub const SECTIONS: &[&str] = &[
    "parameters",
    "resource_registry",
    "parameter_defaults",
    "encrypted_param_names",
    "event_sinks",
    "parameter_merge_strategies",
];

/// A Heat environment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Environment {
    /// Parameter values (the request's own parameters override these).
    pub parameters: Map<String, Value>,
    /// Defaults that override the template's (and nested templates') defaults.
    pub parameter_defaults: Map<String, Value>,
    /// The resource registry as given.
    pub resource_registry: Map<String, Value>,
    /// Event sinks, kept as data.
    pub event_sinks: Vec<Value>,
    /// Names of parameters Heat stores encrypted, kept as data.
    pub encrypted_param_names: Vec<Value>,
    /// Merge strategies for server-side environment merging, kept as data.
    pub parameter_merge_strategies: Map<String, Value>,
}

fn env_err(msg: impl Into<String>, path: Path) -> Error {
    let mut e = Error::new(ErrorKind::HttpBadRequest, msg, path);
    e.document = Some("environment".into());
    e
}

impl Environment {
    /// An empty environment.
    pub fn new() -> Self {
        Environment::default()
    }

    /// Parses an environment document (YAML or JSON) as Heat does.
    pub fn parse(text: &str) -> Result<Self, Error> {
        Environment::parse_with(text, &Limits::default())
    }

    /// Parses within explicit limits.
    pub fn parse_with(text: &str, limits: &Limits) -> Result<Self, Error> {
        let v = yaml::load(text, limits).map_err(|mut e| {
            e.document = Some("environment".into());
            e
        })?;
        let v = if v.is_null() {
            Value::Object(Map::new())
        } else {
            v
        };
        Environment::from_value(&v)
    }

    /// Reads an already-decoded environment (as Heat's API receives it in
    /// a request body).
    pub fn from_value(v: &Value) -> Result<Self, Error> {
        let Value::Object(m) = v else {
            return Err(env_err(
                "The environment is not a valid YAML mapping data type.",
                Path::root(),
            ));
        };
        for (k, val) in m {
            if !SECTIONS.contains(&k.as_str()) {
                return Err(env_err(
                    format!("environment has wrong section \"{k}\""),
                    Path::keys([k.as_str()]),
                ));
            }
            if val.is_null() {
                return Err(env_err(
                    format!("environment has empty section \"{k}\""),
                    Path::keys([k.as_str()]),
                ));
            }
        }
        let map = |k: &str| -> Result<Map<String, Value>, Error> {
            match m.get(k) {
                None => Ok(Map::new()),
                Some(Value::Object(o)) => Ok(o.clone()),
                Some(_) => Err(env_err(
                    format!("environment section \"{k}\" must be a mapping"),
                    Path::keys([k]),
                )),
            }
        };
        let list = |k: &str| -> Result<Vec<Value>, Error> {
            match m.get(k) {
                None => Ok(Vec::new()),
                Some(Value::Array(a)) => Ok(a.clone()),
                Some(_) => Err(env_err(
                    format!("environment section \"{k}\" must be a list"),
                    Path::keys([k]),
                )),
            }
        };
        let env = Environment {
            parameters: map("parameters")?,
            parameter_defaults: map("parameter_defaults")?,
            resource_registry: map("resource_registry")?,
            event_sinks: list("event_sinks")?,
            encrypted_param_names: list("encrypted_param_names")?,
            parameter_merge_strategies: map("parameter_merge_strategies")?,
        };
        for (i, sink) in env.event_sinks.iter().enumerate() {
            if sink.get("type").and_then(Value::as_str).is_none() {
                return Err(env_err(
                    "each event sink must be a mapping with a \"type\"",
                    Path::keys(["event_sinks"]).index(i),
                ));
            }
        }
        env.registry()?;
        Ok(env)
    }

    /// Merges `other` over this environment the way the OpenStack client
    /// merges several `-e` files (a deep update: nested mappings merge, the
    /// later file wins, a `null` never erases a mapping; lists are replaced
    /// except `event_sinks`, which accumulate as Heat's `Environment.load`
    /// does).
    pub fn merge(&mut self, other: &Environment) {
        deep_update(&mut self.parameters, &other.parameters);
        deep_update(&mut self.parameter_defaults, &other.parameter_defaults);
        deep_update(&mut self.resource_registry, &other.resource_registry);
        deep_update(
            &mut self.parameter_merge_strategies,
            &other.parameter_merge_strategies,
        );
        self.event_sinks.extend(other.event_sinks.iter().cloned());
        if !other.encrypted_param_names.is_empty() {
            self.encrypted_param_names = other.encrypted_param_names.clone();
        }
    }

    /// The environment as a document (for sending to Heat). Empty sections
    /// are left out.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        if !self.parameters.is_empty() {
            m.insert("parameters".into(), Value::Object(self.parameters.clone()));
        }
        if !self.parameter_defaults.is_empty() {
            m.insert(
                "parameter_defaults".into(),
                Value::Object(self.parameter_defaults.clone()),
            );
        }
        if !self.resource_registry.is_empty() {
            m.insert(
                "resource_registry".into(),
                Value::Object(self.resource_registry.clone()),
            );
        }
        if !self.event_sinks.is_empty() {
            m.insert("event_sinks".into(), Value::Array(self.event_sinks.clone()));
        }
        if !self.encrypted_param_names.is_empty() {
            m.insert(
                "encrypted_param_names".into(),
                Value::Array(self.encrypted_param_names.clone()),
            );
        }
        if !self.parameter_merge_strategies.is_empty() {
            m.insert(
                "parameter_merge_strategies".into(),
                Value::Object(self.parameter_merge_strategies.clone()),
            );
        }
        Value::Object(m)
    }

    /// The parsed resource registry.
    pub fn registry(&self) -> Result<ResourceRegistry, Error> {
        ResourceRegistry::from_map(&self.resource_registry)
    }
}

/// heatclient's `deep_update`.
fn deep_update(old: &mut Map<String, Value>, new: &Map<String, Value>) {
    for (k, v) in new {
        match v {
            Value::Object(nm) => {
                let entry = old
                    .entry(k.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                if let Value::Object(om) = entry {
                    deep_update(om, nm);
                }
            }
            Value::Null if old.get(k).is_some_and(Value::is_object) => {}
            other => {
                old.insert(k.clone(), other.clone());
            }
        }
    }
}

/// What a registry entry maps a type to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mapping {
    /// Another type name (`OS::Nova::Server: OS::Heat::None`).
    Alias(String),
    /// A wildcard mapping (`OS::Neutron::*: OS::Heat::None` or `OS::X::*: OS::Y::*`).
    Glob(String),
    /// A nested template, by its `files` key or URL.
    Template(String),
}

/// One registry entry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    /// `["OS::Nova::Server"]` or `["resources", "my_server", "OS::Nova::Server"]`.
    path: Vec<String>,
    mapping: Mapping,
}

/// Hooks and restricted actions for resources matching a name pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceHooks {
    /// Resource name pattern (`*` wildcards).
    pub pattern: String,
    /// Breakpoint hooks (`pre-create`, ...).
    pub hooks: Vec<String>,
    /// Restricted actions (`update`, `replace`).
    pub restricted_actions: Vec<String>,
}

/// The resource registry of an environment, resolved as Heat resolves it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceRegistry {
    entries: Vec<Entry>,
    /// Hooks and restricted actions per resource pattern.
    pub hooks: Vec<ResourceHooks>,
}

const HOOK_TYPES: &[&str] = &[
    "pre-create",
    "pre-update",
    "pre-delete",
    "post-create",
    "post-update",
    "post-delete",
];

/// Where a resource type leads after the registry is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolvedType {
    /// A type implemented by Heat itself (a resource plugin).
    Builtin(String),
    /// A nested stack from this template (a `files` key or URL).
    Template(String),
}

impl ResolvedType {
    /// The type name a stack reports for the resource (the template name
    /// for nested ones).
    pub fn name(&self) -> &str {
        match self {
            ResolvedType::Builtin(n) | ResolvedType::Template(n) => n,
        }
    }
}

fn is_template_name(s: &str) -> bool {
    s.ends_with(".yaml") || s.ends_with(".template")
}

/// An error in the environment's document.
fn environment_error(kind: ErrorKind, message: String, path: Path) -> Error {
    let mut e = Error::new(kind, message, path);
    e.document = Some("environment".into());
    e
}

fn str_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => a.iter().map(|x| x.as_str().map(String::from)).collect(),
        _ => None,
    }
}

impl ResourceRegistry {
    /// Reads a `resource_registry` mapping.
    pub fn from_map(m: &Map<String, Value>) -> Result<Self, Error> {
        let mut r = ResourceRegistry::default();
        r.load(&[], m)?;
        Ok(r)
    }

    fn load(&mut self, prefix: &[String], m: &Map<String, Value>) -> Result<(), Error> {
        for (k, v) in m {
            let mut path = prefix.to_vec();
            path.push(k.clone());
            let doc_path = Path::keys(
                std::iter::once("resource_registry".to_string()).chain(path.iter().cloned()),
            );
            if k == "hooks" || k == "restricted_actions" {
                self.load_hooks(prefix, k, v, doc_path)?;
                continue;
            }
            match v {
                Value::Null => self.remove_entries(k, &path),
                Value::Object(inner) => self.load(&path, inner)?,
                Value::String(s) => {
                    let mapping = if is_template_name(k) {
                        Mapping::Template(k.clone())
                    } else if is_template_name(s) {
                        Mapping::Template(s.clone())
                    } else if k.ends_with('*') {
                        Mapping::Glob(s.clone())
                    } else {
                        Mapping::Alias(s.clone())
                    };
                    self.entries.retain(|e| e.path != path);
                    self.entries.push(Entry { path, mapping });
                }
                other => {
                    return Err(environment_error(
                        ErrorKind::StackValidationFailed,
                        format!(
                            "resource_registry entry \"{k}\" must map to a type name or a template, not {}",
                            py_repr(other)
                        ),
                        doc_path,
                    ));
                }
            }
        }
        Ok(())
    }

    /// A resource's `hooks` or `restricted_actions` (`k`): a list of
    /// Heat's hook or action names.
    fn load_hooks(
        &mut self,
        prefix: &[String],
        k: &str,
        v: &Value,
        doc_path: Path,
    ) -> Result<(), Error> {
        if k == "hooks" {
            let ok =
                str_list(v).is_some_and(|l| l.iter().all(|h| HOOK_TYPES.contains(&h.as_str())));
            if !ok {
                return Err(environment_error(
                    ErrorKind::InvalidBreakPointHook,
                    format!(
                        "Invalid hook type \"{}\" for resource breakpoint, acceptable hook types are: ('pre-create', 'pre-update', 'pre-delete', 'post-create', 'post-update', 'post-delete')",
                        py_str(v)
                    ),
                    doc_path,
                ));
            }
            self.hook_entry(prefix).hooks = str_list(v).unwrap_or_default();
        } else {
            let ok = str_list(v).is_some_and(|l| l.iter().all(|h| h == "update" || h == "replace"));
            if !ok {
                return Err(environment_error(
                    ErrorKind::InvalidRestrictedAction,
                    format!(
                        "Invalid restricted_action type \"{}\" for resource, acceptable restricted_action types are: ('update', 'replace')",
                        py_str(v)
                    ),
                    doc_path,
                ));
            }
            self.hook_entry(prefix).restricted_actions = str_list(v).unwrap_or_default();
        }
        Ok(())
    }

    /// `type: null` removes an entry (and `X*: null` all matching).
    fn remove_entries(&mut self, k: &str, path: &[String]) {
        if let Some(stem) = k.strip_suffix('*') {
            self.entries.retain(|e| {
                !(e.path.len() == path.len()
                    && e.path[..path.len() - 1] == path[..path.len() - 1]
                    && e.path[path.len() - 1].starts_with(stem))
            });
        } else {
            self.entries.retain(|e| e.path != path);
        }
    }

    fn hook_entry(&mut self, prefix: &[String]) -> &mut ResourceHooks {
        let pattern = prefix.get(1).cloned().unwrap_or_default();
        if let Some(i) = self.hooks.iter().position(|h| h.pattern == pattern) {
            return &mut self.hooks[i];
        }
        self.hooks.push(ResourceHooks {
            pattern,
            hooks: Vec::new(),
            restricted_actions: Vec::new(),
        });
        let last = self.hooks.len() - 1;
        &mut self.hooks[last]
    }

    /// Every nested-template name the registry mentions.
    pub fn template_names(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter_map(|e| match &e.mapping {
                Mapping::Template(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    /// Rewrites nested-template names (e.g. to absolute `file://` URLs as
    /// the OpenStack client does).
    pub fn map_template_names(&mut self, f: &mut dyn FnMut(&str) -> String) {
        for e in &mut self.entries {
            if let Mapping::Template(t) = &mut e.mapping {
                *t = f(t);
            }
        }
    }

    /// Resolves a resource's type as Heat's `ResourceRegistry.get_resource_info`
    /// does: per-resource entries first, then the type's own entry, then
    /// wildcards, then the types Heat implements (`known`). The error is
    /// Heat's `The Resource Type (X) could not be found.`
    pub fn resolve(
        &self,
        ty: &str,
        resource_name: Option<&str>,
        known: &ResourceTypes,
    ) -> Result<ResolvedType, String> {
        self.resolve_depth(ty, resource_name, known, 0)
            .ok_or_else(|| format!("The Resource Type ({ty}) could not be found."))
    }

    fn resolve_depth(
        &self,
        ty: &str,
        resource_name: Option<&str>,
        known: &ResourceTypes,
        depth: usize,
    ) -> Option<ResolvedType> {
        if depth > 32 {
            return None;
        }
        // Candidates: (user entry?, path, mapping), sorted as Heat sorts
        // ResourceInfo: the user's environment first, longer (per-resource)
        // paths first, then by path.
        let mut candidates: Vec<(bool, Vec<String>, Mapping)> = Vec::new();
        if is_template_name(ty) {
            candidates.push((
                true,
                vec![ty.to_string()],
                Mapping::Template(ty.to_string()),
            ));
        }
        self.push_matches(ty, resource_name, true, &mut candidates);
        known
            .global_registry()
            .push_matches(ty, resource_name, false, &mut candidates);
        if known.contains(ty) {
            candidates.push((false, vec![ty.to_string()], Mapping::Alias(String::new())));
        }
        candidates.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then(b.1.len().cmp(&a.1.len()))
                .then(a.1.cmp(&b.1))
        });
        for (user, path, mapping) in candidates {
            match mapping {
                // A type Heat implements.
                Mapping::Alias(target) if !user && target.is_empty() => {
                    return Some(ResolvedType::Builtin(ty.to_string()))
                }
                // A template of Heat's own global environment (read from
                // its /etc, not from `files`): Heat implements the type.
                Mapping::Template(_) if !user => {
                    return Some(ResolvedType::Builtin(ty.to_string()))
                }
                Mapping::Template(t) => return Some(ResolvedType::Template(t)),
                Mapping::Alias(target) => {
                    if let Some(r) = self.resolve_depth(&target, resource_name, known, depth + 1) {
                        return Some(r);
                    }
                }
                Mapping::Glob(target) => {
                    let stem = path.last().map(|p| p.trim_end_matches('*')).unwrap_or("");
                    let new_type = match target.strip_suffix('*') {
                        Some(t) => format!("{t}{}", &ty[stem.len().min(ty.len())..]),
                        None => target.clone(),
                    };
                    if let Some(r) = self.resolve_depth(&new_type, resource_name, known, depth + 1)
                    {
                        return Some(r);
                    }
                }
            }
        }
        None
    }

    /// This registry's entries that match `ty` (for `resource_name`).
    fn push_matches(
        &self,
        ty: &str,
        resource_name: Option<&str>,
        user: bool,
        candidates: &mut Vec<(bool, Vec<String>, Mapping)>,
    ) {
        for e in &self.entries {
            let matches = match e.path.as_slice() {
                [name] => {
                    if name == ty {
                        true
                    } else if let (Some(stem), Mapping::Glob(target)) =
                        (name.strip_suffix('*'), &e.mapping)
                    {
                        ty != target && ty.starts_with(stem)
                    } else {
                        false
                    }
                }
                [res, rname, name] if res == "resources" => {
                    resource_name == Some(rname.as_str()) && name == ty
                }
                _ => false,
            };
            if matches {
                candidates.push((user, e.path.clone(), e.mapping.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reg(v: Value) -> ResourceRegistry {
        ResourceRegistry::from_map(v.as_object().unwrap()).unwrap()
    }

    #[test]
    fn registry_errors_name_the_entry() {
        let err = |v: Value| ResourceRegistry::from_map(v.as_object().unwrap()).unwrap_err();
        let e = err(json!({"resources": {"r": {"hooks": ["pre-create", "pre-nap"]}}}));
        assert_eq!(e.kind, ErrorKind::InvalidBreakPointHook);
        assert_eq!(
            e.message,
            "Invalid hook type \"['pre-create', 'pre-nap']\" for resource breakpoint, acceptable hook types are: ('pre-create', 'pre-update', 'pre-delete', 'post-create', 'post-update', 'post-delete')"
        );
        assert_eq!(e.path.to_string(), "resource_registry.resources.r.hooks");
        assert_eq!(e.document.as_deref(), Some("environment"));
        let e = err(json!({"resources": {"r": {"restricted_actions": "delete"}}}));
        assert_eq!(e.kind, ErrorKind::InvalidRestrictedAction);
        assert_eq!(
            e.message,
            "Invalid restricted_action type \"delete\" for resource, acceptable restricted_action types are: ('update', 'replace')"
        );
        assert_eq!(e.document.as_deref(), Some("environment"));
        let e = err(json!({"My::T": 3}));
        assert_eq!(e.kind, ErrorKind::StackValidationFailed);
        assert_eq!(
            e.message,
            "resource_registry entry \"My::T\" must map to a type name or a template, not 3"
        );
        assert_eq!(e.path.to_string(), "resource_registry.My::T");
        assert_eq!(e.document.as_deref(), Some("environment"));
    }

    #[test]
    fn null_entries_remove_and_hooks_load() {
        let known = ResourceTypes::heat();
        let r = reg(json!({
            "resources": {
                "r": {"A::B": "OS::Heat::None", "A::C": "OS::Heat::None", "hooks": "pre-create", "restricted_actions": ["update"]},
            }
        }));
        assert_eq!(
            r.resolve("A::B", Some("r"), known),
            Ok(ResolvedType::Builtin("OS::Heat::None".into()))
        );
        let mut r2 = r.clone();
        r2.load(
            &[],
            json!({"resources": {"r": {"A::*": null}}})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert!(r2.resolve("A::B", Some("r"), known).is_err());
        assert!(r2.resolve("A::C", Some("r"), known).is_err());
        let mut r3 = r.clone();
        r3.load(
            &[],
            json!({"resources": {"r": {"A::B": null}}})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert!(r3.resolve("A::B", Some("r"), known).is_err());
        assert!(r3.resolve("A::C", Some("r"), known).is_ok());
        assert_eq!(format!("{:?}", r.hooks).matches("pre-create").count(), 1);
        assert_eq!(format!("{:?}", r.hooks).matches("update").count(), 1);
    }

    #[test]
    fn aliases_globs_templates_and_per_resource() {
        let known = ResourceTypes::heat();
        let r = reg(json!({
            "OS::Nova::Server": "OS::Heat::None",
            "OS::Neutron::*": "OS::Heat::None",
            "My::Thing": "thing.yaml",
            "resources": {"special": {"OS::Nova::Server": "OS::Heat::RandomString"}}
        }));
        assert_eq!(
            r.resolve("OS::Nova::Server", Some("s"), known),
            Ok(ResolvedType::Builtin("OS::Heat::None".into()))
        );
        assert_eq!(
            r.resolve("OS::Nova::Server", Some("special"), known),
            Ok(ResolvedType::Builtin("OS::Heat::RandomString".into()))
        );
        assert_eq!(
            r.resolve("OS::Neutron::Port", None, known),
            Ok(ResolvedType::Builtin("OS::Heat::None".into()))
        );
        assert_eq!(
            r.resolve("My::Thing", None, known),
            Ok(ResolvedType::Template("thing.yaml".into()))
        );
        assert_eq!(
            r.resolve("./x.yaml", None, known),
            Ok(ResolvedType::Template("./x.yaml".into()))
        );
        assert_eq!(
            r.resolve("OS::Heat::Nope", None, known),
            Err("The Resource Type (OS::Heat::Nope) could not be found.".into())
        );
        let looped = reg(json!({"A::B": "C::D", "C::D": "A::B"}));
        assert!(looped.resolve("A::B", None, known).is_err());
    }

    #[test]
    fn glob_prefix_rewrite() {
        let known = ResourceTypes::heat();
        let r = reg(json!({"Old::*": "OS::Heat::*"}));
        assert_eq!(
            r.resolve("Old::None", None, known),
            Ok(ResolvedType::Builtin("OS::Heat::None".into()))
        );
    }

    #[test]
    fn parse_rejects_bad_sections_and_hooks() {
        assert!(Environment::parse("parameters: {a: 1}\nfoo: {}\n")
            .unwrap_err()
            .message
            .contains("wrong section \"foo\""));
        assert!(Environment::parse("parameters:\n")
            .unwrap_err()
            .message
            .contains("empty section"));
        let e = Environment::parse("resource_registry: {resources: {x: {hooks: pre-nothing}}}")
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidBreakPointHook);
    }

    #[test]
    fn merge_like_the_client() {
        let mut a = Environment::parse("parameters: {a: 1, b: 2}\nresource_registry: {X::Y: a.yaml, resources: {r: {hooks: pre-create}}}\nevent_sinks: [{type: zaqar-queue, target: q}]").unwrap();
        let b = Environment::parse("parameters: {b: 3}\nresource_registry: {X::Z: OS::Heat::None}\nevent_sinks: [{type: zaqar-queue, target: q2}]").unwrap();
        a.merge(&b);
        assert_eq!(a.parameters, *json!({"a": 1, "b": 3}).as_object().unwrap());
        assert_eq!(a.resource_registry.len(), 3);
        assert_eq!(a.event_sinks.len(), 2);
        assert_eq!(
            a.registry().unwrap().hooks[0].hooks,
            vec!["pre-create".to_string()]
        );
    }
}

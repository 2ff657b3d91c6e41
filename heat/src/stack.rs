//! A template with its environment and `files` ([`StackTemplate`], parsed
//! once), and that template given parameter values ([`StackDefinition`]):
//! the enabled resources with their resolved types, the dependency graph,
//! and evaluation of properties and outputs. Validation follows the order
//! of Heat's own checks, so the first error is the one Heat reports.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::environment::{Environment, ResolvedType, ResourceRegistry};
use crate::error::{Error, ErrorKind, Errors, Path};
use crate::eval::{ConditionSet, Files, Out, ParamSlot, Resolver, Scope};
use crate::function::{Call, Expr, Func};
use crate::graph::Dependencies;
use crate::parameter::ParameterSchema;
use crate::pyfmt::py_str;
use crate::resource_types::ResourceTypes;
use crate::template::{ResourceTemplate, Template};
use crate::yaml::Limits;

/// Parameter values as Heat's API receives them (usually strings).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParameterValues(pub IndexMap<String, Value>);

impl ParameterValues {
    /// No values.
    pub fn new() -> Self {
        ParameterValues::default()
    }
    /// Sets one value.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        self.0.insert(name.into(), value.into());
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for ParameterValues {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        ParameterValues(
            iter.into_iter()
                .map(|(k, v)| (k.into(), Value::String(v.into())))
                .collect(),
        )
    }
}

impl From<&BTreeMap<String, String>> for ParameterValues {
    fn from(m: &BTreeMap<String, String>) -> Self {
        m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// What a stack knows about itself, for the pseudo parameters
/// `OS::stack_name`, `OS::stack_id` and `OS::project_id`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StackIdentity {
    /// The stack's name.
    pub stack_name: Option<String>,
    /// The stack's id.
    pub stack_id: Option<String>,
    /// The project (tenant) id.
    pub project_id: Option<String>,
}

/// How strictly to validate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strictness {
    /// Exactly Heat's verdicts (what the embedded engine must do).
    Heat,
    /// Heat's checks plus the mistakes Heat silently accepts: misspelt
    /// function names, functions of another version used as data,
    /// references to parameters or resources that do not exist anywhere.
    #[default]
    Strict,
}

/// Options for building a [`StackTemplate`].
#[derive(Clone, Debug)]
pub struct Options {
    /// Document limits.
    pub limits: Limits,
    /// The resource types the target Heat implements (shared, cheap to clone).
    pub types: Arc<ResourceTypes>,
    /// How strictly to validate.
    pub strictness: Strictness,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            limits: Limits::default(),
            types: ResourceTypes::heat_shared(),
            strictness: Strictness::Strict,
        }
    }
}

impl Options {
    /// Heat's verdicts, all of a stock Heat's resource types.
    pub fn heat() -> Self {
        Options {
            strictness: Strictness::Heat,
            ..Options::default()
        }
    }
}

/// A template, its environment and `files`, parsed once and checked as
/// far as possible without parameter values. Cheap to clone.
#[derive(Clone, Debug)]
pub struct StackTemplate {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    template: Arc<Template>,
    environment: Environment,
    registry: ResourceRegistry,
    files: Arc<Files>,
    options: Arc<Options>,
    /// Each resource's type after the registry, or Heat's error.
    types: IndexMap<String, Result<ResolvedType, String>>,
    /// Nested templates by `files` key (or their parse errors).
    nested: BTreeMap<String, Result<StackTemplate, Errors>>,
    depth: usize,
}

/// The deletion policy of a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// Delete the physical resource (default).
    Delete,
    /// Keep it.
    Retain,
    /// Snapshot it, then delete.
    Snapshot,
}

impl DeletionPolicy {
    /// The policy's name as Heat writes it.
    pub fn name(self) -> &'static str {
        match self {
            DeletionPolicy::Delete => "Delete",
            DeletionPolicy::Retain => "Retain",
            DeletionPolicy::Snapshot => "Snapshot",
        }
    }
}

/// One enabled resource of a [`StackDefinition`].
#[derive(Clone, Debug)]
pub struct ResourceDefinition {
    /// Its name.
    pub name: String,
    /// `type` as written.
    pub type_name: String,
    /// Its type after the environment's resource registry.
    pub resolved_type: ResolvedType,
    /// The nested template, for a nested-template type.
    pub nested: Option<StackTemplate>,
    /// `depends_on` (enabled resources only).
    pub depends_on: Vec<String>,
    /// Every resource this one requires (explicit and implicit).
    pub requires: Vec<String>,
    /// `deletion_policy`.
    pub deletion_policy: DeletionPolicy,
    /// `description`.
    pub description: Option<String>,
    /// The condition that enabled it, if any (as written).
    pub condition: Option<Value>,
    /// `external_id`, evaluated.
    pub external_id: Option<Value>,
}

/// An output's computed value.
#[derive(Clone, Debug)]
pub struct OutputValue {
    /// Its name (`output_key`).
    pub key: String,
    /// Its description (Heat says `No description given` when none).
    pub description: String,
    /// Its value (`null` when its condition is false), or Heat's error.
    pub value: Result<Value, Error>,
}

/// Heat's answer to `POST /validate`.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidateReport {
    /// The template's description.
    pub description: String,
    /// Each parameter's schema, as Heat lists it (hidden defaults masked).
    pub parameters: Map<String, Value>,
    /// `parameter_groups`, if any.
    pub parameter_groups: Option<Value>,
    /// The environment Heat used.
    pub environment: Value,
}

impl ValidateReport {
    /// The JSON body Heat's `POST /validate` answers.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "Description".into(),
            Value::String(self.description.clone()),
        );
        m.insert("Parameters".into(), Value::Object(self.parameters.clone()));
        if let Some(g) = &self.parameter_groups {
            m.insert("ParameterGroups".into(), g.clone());
        }
        m.insert("Environment".into(), self.environment.clone());
        Value::Object(m)
    }
}

const PSEUDO: &[&str] = &["OS::stack_id", "OS::stack_name", "OS::project_id"];

impl StackTemplate {
    /// Combines a parsed template with its environment and files.
    /// Nested templates named by `type:` or the registry are parsed from
    /// `files` now. Errors are only those that hold whatever the parameters.
    pub fn new(
        template: Template,
        environment: Environment,
        files: Files,
        options: Options,
    ) -> Result<StackTemplate, Errors> {
        StackTemplate::build(
            Arc::new(template),
            environment,
            Arc::new(files),
            Arc::new(options),
            0,
        )
    }

    /// Parses a template text and combines it (the usual entry point).
    pub fn parse(
        text: &str,
        environment: Environment,
        files: Files,
        options: Options,
    ) -> Result<StackTemplate, Errors> {
        let t = Template::parse_with(text, None, &options.limits)?;
        StackTemplate::new(t, environment, files, options)
    }

    fn build(
        template: Arc<Template>,
        environment: Environment,
        files: Arc<Files>,
        options: Arc<Options>,
        depth: usize,
    ) -> Result<StackTemplate, Errors> {
        let registry = environment.registry().map_err(Errors::from)?;
        let mut types = IndexMap::new();
        let mut nested = BTreeMap::new();
        for (name, r) in &template.resources {
            let resolved = registry.resolve(&r.type_name, Some(name), &options.types);
            if let Ok(ResolvedType::Template(t)) = &resolved {
                if !nested.contains_key(t) {
                    let parsed = StackTemplate::nested(t, &environment, &files, &options, depth);
                    nested.insert(t.clone(), parsed);
                }
            }
            types.insert(name.clone(), resolved);
        }
        Ok(StackTemplate {
            inner: Arc::new(Inner {
                template,
                environment,
                registry,
                files,
                options,
                types,
                nested,
                depth,
            }),
        })
    }

    fn nested(
        name: &str,
        environment: &Environment,
        files: &Arc<Files>,
        options: &Arc<Options>,
        depth: usize,
    ) -> Result<StackTemplate, Errors> {
        if depth + 1 > options.limits.max_nested_depth {
            return Err(Error::validation(
                format!(
                    "Recursion depth exceeds {}.",
                    options.limits.max_nested_depth
                ),
                Path::root(),
            )
            .into());
        }
        let Some(text) = files.get(name) else {
            return Err(Error::validation(
                format!("Could not fetch remote template \"{name}\": Invalid URL scheme"),
                Path::root(),
            )
            .into());
        };
        let t = Template::parse_with(text, Some(name), &options.limits)?;
        // The child environment: the parent's registry and parameter
        // defaults, no parameters (they come from the resource's properties).
        let mut child_env = environment.clone();
        child_env.parameters = Map::new();
        StackTemplate::build(
            Arc::new(t),
            child_env,
            files.clone(),
            options.clone(),
            depth + 1,
        )
    }

    /// The template.
    pub fn template(&self) -> &Template {
        &self.inner.template
    }

    /// The environment.
    pub fn environment(&self) -> &Environment {
        &self.inner.environment
    }

    /// The `files` map.
    pub fn files(&self) -> &Files {
        &self.inner.files
    }

    /// The environment's resource registry, parsed.
    pub fn registry(&self) -> &ResourceRegistry {
        &self.inner.registry
    }

    /// How deep this template is nested (0 for a stack's own template).
    pub fn nesting_depth(&self) -> usize {
        self.inner.depth
    }

    /// The options it was built with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// A nested template by its `files` key.
    pub fn nested_template(&self, name: &str) -> Option<&StackTemplate> {
        self.inner.nested.get(name).and_then(|r| r.as_ref().ok())
    }

    /// Resolves a type name as this template's resources are resolved
    /// (the environment's registry, then the types Heat knows), with the
    /// nested template when it leads to one: what an engine needs for the
    /// members of a group, whose type is only known from a property. The
    /// error is Heat's (`The Resource Type (X) could not be found.`, or the
    /// nested template's own).
    pub fn resolve_type(
        &self,
        type_name: &str,
        resource_name: Option<&str>,
    ) -> Result<(ResolvedType, Option<StackTemplate>), Errors> {
        let resolved = self
            .inner
            .registry
            .resolve(type_name, resource_name, &self.inner.options.types)
            .map_err(|m| Errors::from(Error::validation(m, Path::root())))?;
        let nested = match &resolved {
            ResolvedType::Template(t) => Some(match self.inner.nested.get(t) {
                Some(Ok(st)) => st.clone(),
                Some(Err(es)) => return Err(es.clone()),
                None => StackTemplate::nested(
                    t,
                    &self.inner.environment,
                    &self.inner.files,
                    &self.inner.options,
                    self.inner.depth,
                )?,
            }),
            ResolvedType::Builtin(_) => None,
        };
        Ok((resolved, nested))
    }

    /// Checks the template as Heat's `POST /validate` does: parameter
    /// values are not checked (a required parameter without a value is
    /// fine), but every parameter given must exist. With
    /// [`Strictness::Strict`] the strict findings are errors too.
    pub fn validate(&self, params: &ParameterValues) -> Result<ValidateReport, Errors> {
        let identity = StackIdentity {
            stack_name: Some("dummy".into()),
            ..StackIdentity::default()
        };
        let def = self.instantiate(params, &identity, false)?;
        let t = self.template();
        let mut parameters = Map::new();
        for (name, s) in &t.parameters {
            let default = self
                .inner
                .environment
                .parameter_defaults
                .get(name)
                .or(s.default.as_ref());
            let mut info = s.validate_info(default);
            if let Some(v) = def.user_values.get(name) {
                if let Value::Object(m) = &mut info {
                    let shown = if s.hidden {
                        Value::String("******".into())
                    } else {
                        v.clone()
                    };
                    m.insert("Value".into(), shown);
                }
            }
            parameters.insert(name.clone(), info);
        }
        let mut env = self.inner.environment.clone();
        for (k, v) in &params.0 {
            env.parameters.insert(k.clone(), v.clone());
        }
        let mut env_v = Map::new();
        env_v.insert(
            "parameters".into(),
            Value::Object(mask_hidden(t, &env.parameters)),
        );
        env_v.insert(
            "resource_registry".into(),
            Value::Object(env.resource_registry.clone()),
        );
        env_v.insert(
            "parameter_defaults".into(),
            Value::Object(mask_hidden(t, &env.parameter_defaults)),
        );
        env_v.insert("event_sinks".into(), Value::Array(env.event_sinks.clone()));
        Ok(ValidateReport {
            description: t.description.clone().unwrap_or_default(),
            parameters,
            parameter_groups: t.parameter_groups_value(),
            environment: Value::Object(env_v),
        })
    }

    /// Checks the template with these parameter values as Heat does when
    /// it creates a stack, and gives the stack's definition: enabled
    /// resources, their types, the dependency graph, and evaluation.
    pub fn define(
        &self,
        params: &ParameterValues,
        identity: &StackIdentity,
    ) -> Result<StackDefinition, Errors> {
        self.instantiate(params, identity, true)
    }

    /// Renders the template with these parameter values: parameters,
    /// conditions, `get_file` and pure functions resolved; `get_resource`
    /// and `get_attr` (and what depends on them) left as calls; hidden
    /// parameters left as `get_param` (their values never appear).
    pub fn render(
        &self,
        params: &ParameterValues,
        options: &RenderOptions,
    ) -> Result<RenderedTemplate, Errors> {
        let def = self.define(params, &StackIdentity::default())?;
        def.render(options)
    }

    fn locate(&self, errors: &mut Errors) {
        for e in &mut errors.0 {
            if e.document.is_none() {
                self.inner.template.source().locate(e);
            }
        }
    }

    fn instantiate(
        &self,
        params: &ParameterValues,
        identity: &StackIdentity,
        check_values: bool,
    ) -> Result<StackDefinition, Errors> {
        let mut errors = Errors::new();
        let r = self.instantiate_inner(params, identity, check_values, &mut errors);
        self.locate(&mut errors);
        match r {
            Some(def) if errors.is_empty() => Ok(def),
            _ => {
                if errors.is_empty() {
                    errors.push(Error::validation("validation failed", Path::root()));
                }
                Err(errors)
            }
        }
    }

    /// Heat's checks with these values, phase by phase (parameters →
    /// conditions → resources → dependencies → per-resource checks →
    /// outputs), each phase filling its part of a [`Draft`]. A phase whose
    /// errors would make the next meaningless ends the run (`None`).
    fn instantiate_inner(
        &self,
        params: &ParameterValues,
        identity: &StackIdentity,
        check_values: bool,
        errors: &mut Errors,
    ) -> Option<StackDefinition> {
        let t = &self.inner.template;
        let mut d = Draft {
            user: self.user_values(params, errors),
            ..Draft::default()
        };
        d.slots = self.parameter_slots(&d.user, identity, check_values, errors);
        check_condition_definitions(t, errors);
        if self.inner.options.strictness == Strictness::Strict {
            for e in &t.strict_findings {
                errors.push(e.clone());
            }
            self.strict_references(errors);
        }

        let cond_set = ConditionSet {
            defs: &t.conditions,
            cache: RefCell::new(HashMap::new()),
        };
        d.enabled = self.enabled_resources(&d.slots, &cond_set, errors);
        if !errors.is_empty() {
            return None;
        }

        let enabled = &d.enabled;
        let is_enabled = |n: &str| enabled.iter().any(|e| e == n);
        let scope = Scope {
            version: t.version,
            params: &d.slots,
            conditions: &cond_set,
            files: &self.inner.files,
            resources: &is_enabled,
            resolver: None,
            rendering: true,
        };
        d.resources = self.resource_definitions(&scope, enabled, errors);
        if !errors.is_empty() {
            return None;
        }
        d.graph = self.dependencies(&scope, enabled, &mut d.resources, errors)?;
        self.check_resources(&scope, &d.graph, &d.resources, check_values, errors);
        d.outputs = self.enabled_outputs(&scope, &d.resources, errors);
        if !errors.is_empty() {
            return None;
        }

        let conditions: HashMap<String, Option<bool>> = cond_set.cache.into_inner();
        Some(StackDefinition {
            template: self.clone(),
            params: d.slots,
            user_values: d.user,
            identity: identity.clone(),
            conditions,
            resources: d.resources,
            outputs: d.outputs,
            graph: d.graph,
        })
    }

    /// Parameters, first phase: the user's values are the environment's,
    /// overridden by the request's; each must be a parameter of the
    /// template.
    fn user_values(
        &self,
        params: &ParameterValues,
        errors: &mut Errors,
    ) -> IndexMap<String, Value> {
        let t = &self.inner.template;
        let mut user: IndexMap<String, Value> = self
            .inner
            .environment
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in &params.0 {
            user.insert(k.clone(), v.clone());
        }
        for k in user.keys() {
            if !t.parameters.contains_key(k) {
                errors.push(Error::new(
                    ErrorKind::UnknownUserParameter,
                    format!("The Parameter ({k}) was not defined in template."),
                    Path::keys(["parameters"]),
                ));
            }
        }
        user
    }

    /// Parameters, second phase: one slot per parameter (the pseudo
    /// parameters, then the template's, each schema checked), holding its
    /// coerced value or Heat's error. With `check_values` a bad or missing
    /// value is an error of the stack too.
    fn parameter_slots(
        &self,
        user: &IndexMap<String, Value>,
        identity: &StackIdentity,
        check_values: bool,
        errors: &mut Errors,
    ) -> HashMap<String, ParamSlot> {
        let mut slots: HashMap<String, ParamSlot> = HashMap::new();
        let pseudo = [
            ("OS::stack_id", identity.stack_id.clone()),
            ("OS::stack_name", identity.stack_name.clone()),
            ("OS::project_id", identity.project_id.clone()),
        ];
        for (name, v) in pseudo {
            slots.insert(
                name.to_string(),
                ParamSlot {
                    value: v.map(Value::String).ok_or_else(|| {
                        Error::new(
                            ErrorKind::UserParameterMissing,
                            format!("The Parameter ({name}) was not provided."),
                            Path::root(),
                        )
                    }),
                    hidden: false,
                },
            );
        }
        let env = &self.inner.environment;
        for (name, s) in &self.inner.template.parameters {
            let ppath = Path::keys(["parameters", name.as_str()]);
            if let Err(e) = s.check(&ppath) {
                errors.push(e);
                continue;
            }
            let default = env.parameter_defaults.get(name).or(s.default.as_ref());
            let raw = user.get(name).or(default);
            let value = parameter_value(name, s, raw, &ppath, check_values);
            if check_values {
                if let Err(e) = &value {
                    errors.push(e.clone());
                }
            }
            slots.insert(
                name.clone(),
                ParamSlot {
                    value,
                    hidden: s.hidden,
                },
            );
        }
        slots
    }

    /// Resources, first phase: which are enabled by their `condition`
    /// (evaluated with no resource known yet).
    fn enabled_resources(
        &self,
        slots: &HashMap<String, ParamSlot>,
        cond_set: &ConditionSet,
        errors: &mut Errors,
    ) -> Vec<String> {
        let t = &self.inner.template;
        let yes = |_: &str| false;
        let scope = Scope {
            version: t.version,
            params: slots,
            conditions: cond_set,
            files: &self.inner.files,
            resources: &yes,
            resolver: None,
            rendering: false,
        };
        let mut enabled: Vec<String> = Vec::new();
        for (name, r) in &t.resources {
            match condition_holds(&scope, r.condition.as_ref(), "resources", name) {
                Ok(true) => enabled.push(name.clone()),
                Ok(false) => {}
                Err(e) => errors.push(e),
            }
        }
        enabled
    }

    /// Resources, second phase: each enabled resource's definition (type,
    /// nested template, deletion policy, `external_id`); a resource with
    /// an error has none.
    fn resource_definitions(
        &self,
        scope: &Scope,
        enabled: &[String],
        errors: &mut Errors,
    ) -> IndexMap<String, ResourceDefinition> {
        let mut resources: IndexMap<String, ResourceDefinition> = IndexMap::new();
        for name in enabled {
            if let Some(def) = self.resource_definition(scope, name, errors) {
                resources.insert(name.clone(), def);
            }
        }
        resources
    }

    /// One enabled resource's definition, or `None` after its first error
    /// (an `external_id` that fails to evaluate is an error but no reason
    /// to stop).
    fn resource_definition(
        &self,
        scope: &Scope,
        name: &str,
        errors: &mut Errors,
    ) -> Option<ResourceDefinition> {
        let r = &self.inner.template.resources[name];
        let (resolved, nested) = self.resource_type(name, errors)?;
        let deletion_policy = self.deletion_policy(scope, name, r, errors)?;
        let external_id = match &r.external_id {
            None => None,
            Some(e) => match scope.eval_value(e) {
                Ok(v) => v,
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
        };
        let depends_on: Vec<String> = r
            .depends_on
            .iter()
            .filter(|d| (scope.resources)(d))
            .cloned()
            .collect();
        Some(ResourceDefinition {
            name: name.to_string(),
            type_name: r.type_name.clone(),
            resolved_type: resolved,
            nested,
            depends_on,
            requires: Vec::new(),
            deletion_policy,
            description: r.description.clone(),
            condition: r.condition.as_ref().map(Expr::to_value),
            external_id,
        })
    }

    /// A resource's type after the registry, with its nested template for
    /// a nested-template type; `None` after pushing the type's errors (or
    /// the nested template's, named after the resource).
    fn resource_type(
        &self,
        name: &str,
        errors: &mut Errors,
    ) -> Option<(ResolvedType, Option<StackTemplate>)> {
        let type_path = Path::keys(["resources", name, "type"]);
        let resolved = match &self.inner.types[name] {
            Ok(rt) => rt.clone(),
            Err(msg) => {
                errors.push(Error::validation(msg.clone(), type_path));
                return None;
            }
        };
        let nested = match &resolved {
            ResolvedType::Template(tn) => match self.inner.nested.get(tn) {
                Some(Ok(st)) => Some(st.clone()),
                Some(Err(es)) => {
                    for e in es.iter() {
                        let mut e = e.clone();
                        if e.document.is_none() {
                            e.path = type_path.clone();
                            e.message = format!("resources.{name}: {}", e.message);
                        }
                        errors.push(e);
                    }
                    return None;
                }
                None => None,
            },
            ResolvedType::Builtin(_) => None,
        };
        Some((resolved, nested))
    }

    /// A resource's `deletion_policy`, evaluated (`Delete` when absent or
    /// null); `None` after pushing Heat's error.
    fn deletion_policy(
        &self,
        scope: &Scope,
        name: &str,
        r: &ResourceTemplate,
        errors: &mut Errors,
    ) -> Option<DeletionPolicy> {
        let Some(e) = &r.deletion_policy else {
            return Some(DeletionPolicy::Delete);
        };
        let path = Path::keys(["resources", name, "deletion_policy"]);
        match scope.eval_value(e) {
            Ok(Some(Value::String(p))) => {
                let lowercase = self
                    .inner
                    .template
                    .version
                    .has_lowercase_deletion_policies();
                match p.as_str() {
                    "Delete" => Some(DeletionPolicy::Delete),
                    "Retain" => Some(DeletionPolicy::Retain),
                    "Snapshot" => Some(DeletionPolicy::Snapshot),
                    "delete" if lowercase => Some(DeletionPolicy::Delete),
                    "retain" if lowercase => Some(DeletionPolicy::Retain),
                    "snapshot" if lowercase => Some(DeletionPolicy::Snapshot),
                    _ => {
                        errors.push(Error::validation(
                            format!("Invalid deletion policy \"{p}\""),
                            path,
                        ));
                        None
                    }
                }
            }
            Ok(Some(other)) => {
                errors.push(Error::validation(
                    format!(
                        "Resource {name} deletion_policy type must be string ({})",
                        py_str(&other)
                    ),
                    path,
                ));
                None
            }
            Ok(None) => Some(DeletionPolicy::Delete),
            Err(e) => {
                errors.push(e);
                None
            }
        }
    }

    /// Dependencies: explicit `depends_on`, and `get_resource`/`get_attr`
    /// in properties and metadata (only `if` branches that are taken);
    /// each definition's `requires` is filled. `None` after a reference
    /// error or a cycle.
    fn dependencies(
        &self,
        scope: &Scope,
        enabled: &[String],
        resources: &mut IndexMap<String, ResourceDefinition>,
        errors: &mut Errors,
    ) -> Option<Dependencies> {
        let mut graph = Dependencies::new(enabled.to_vec());
        for name in enabled {
            let requires = self.requirements(scope, name, errors);
            for req in &requires {
                graph.add(name, req);
            }
            if let Some(def) = resources.get_mut(name) {
                def.requires = requires;
            }
        }
        if !errors.is_empty() {
            return None;
        }
        if let Some(cycle) = graph.find_cycle() {
            errors.push(Error::new(
                ErrorKind::CircularDependencyException,
                format!("Circular Dependency Found: {}", cycle.join(" -> ")),
                Path::keys(["resources", cycle[0].as_str()]),
            ));
            return None;
        }
        Some(graph)
    }

    /// The enabled resources one resource requires, sorted; a reference to
    /// a resource that is not enabled is an error (a `depends_on` on a
    /// disabled one is not).
    fn requirements(&self, scope: &Scope, name: &str, errors: &mut Errors) -> Vec<String> {
        let t = &self.inner.template;
        let r = &t.resources[name];
        let is_enabled = scope.resources;
        let mut requires: Vec<String> = Vec::new();
        for d in &r.depends_on {
            if is_enabled(d) {
                requires.push(d.clone());
            } else if !t.resources.contains_key(d) {
                errors.push(Error::new(
                    ErrorKind::InvalidTemplateReference,
                    format!("The specified reference \"{d}\" (in {name}) is incorrect."),
                    Path::keys(["resources", name, "depends_on"]),
                ));
            }
        }
        for (section, e) in [("Properties", &r.properties), ("Metadata", &r.metadata)] {
            let Some(e) = e else { continue };
            let mut refs = Vec::new();
            collect_refs(scope, e, &mut refs, errors);
            for (target, call) in refs {
                if is_enabled(&target) {
                    requires.push(target);
                } else {
                    errors.push(reference_error(&target, name, section, call));
                }
            }
        }
        requires.sort();
        requires.dedup();
        requires
    }

    /// Per resource, in creation order: removed functions, attribute
    /// names, property names; with `check_values`, the properties must
    /// evaluate and their values fit the type.
    fn check_resources(
        &self,
        scope: &Scope,
        graph: &Dependencies,
        resources: &IndexMap<String, ResourceDefinition>,
        check_values: bool,
        errors: &mut Errors,
    ) {
        let t = &self.inner.template;
        let order: Vec<String> = graph
            .create_order()
            .unwrap_or_default()
            .into_iter()
            .map(String::from)
            .collect();
        let types = &self.inner.options.types;
        for name in &order {
            let r = &t.resources[name];
            let def = &resources[name];
            for e in [
                &r.properties,
                &r.metadata,
                &r.update_policy,
                &r.deletion_policy,
                &r.external_id,
            ]
            .into_iter()
            .flatten()
            {
                check_removed(e, errors);
                self.check_attributes(scope, e, resources, errors);
            }
            self.check_snapshot_policy(name, def, check_values, errors);
            let keys: Vec<String> = match &r.properties {
                Some(Expr::Lit(Value::Object(props))) => props.keys().cloned().collect(),
                Some(Expr::Map(entries)) => entries.iter().map(|(k, _)| k.clone()).collect(),
                _ => Vec::new(),
            };
            self.check_property_names(name, def, &keys, types, errors);
            if check_values {
                self.check_resource_values(scope, name, r, def, errors);
            }
        }
    }

    /// `deletion_policy: Snapshot` on a type that cannot snapshot (Heat's
    /// `validate_deletion_policy`). Heat skips the check for a resource
    /// with an `external_id`, and at stack creation for `OS::Heat::None`
    /// (whose own validation does nothing); strict validation does not.
    fn check_snapshot_policy(
        &self,
        name: &str,
        def: &ResourceDefinition,
        check_values: bool,
        errors: &mut Errors,
    ) {
        if def.deletion_policy != DeletionPolicy::Snapshot
            || def.external_id.as_ref().is_some_and(|v| !v.is_null())
        {
            return;
        }
        let supported = match &def.resolved_type {
            ResolvedType::Builtin(ty) => {
                self.inner.options.types.can_snapshot(ty)
                    || (check_values
                        && ty == "OS::Heat::None"
                        && self.inner.options.strictness == Strictness::Heat)
            }
            ResolvedType::Template(_) => false,
        };
        if !supported {
            errors.push(Error::validation(
                format!(
                    "resources.{name}.deletion_policy: \"Snapshot\" deletion policy not supported"
                ),
                Path::keys(["resources", name, "deletion_policy"]),
            ));
        }
    }

    /// With values: a builtin resource's properties fit its type (a group
    /// member's too), and properties and metadata evaluate.
    fn check_resource_values(
        &self,
        scope: &Scope,
        name: &str,
        r: &ResourceTemplate,
        def: &ResourceDefinition,
        errors: &mut Errors,
    ) {
        let types = &self.inner.options.types;
        if let (ResolvedType::Builtin(ty), Some(props)) = (&def.resolved_type, &r.properties) {
            match scope.eval(props) {
                Ok(Out::Val(Value::Object(values))) => {
                    check_property_values(name, ty, &values, types, errors);
                    self.check_group_member(name, ty, &values, errors);
                }
                // Some values need the running stack: the member's
                // property names are known all the same.
                Ok(Out::Res(Value::Object(values))) => {
                    self.check_group_member(name, ty, &values, errors)
                }
                _ => {}
            }
        } else if let (ResolvedType::Builtin(ty), None) = (&def.resolved_type, &r.properties) {
            check_property_values(name, ty, &Map::new(), types, errors);
        }
        for (section, e) in [("properties", &r.properties), ("metadata", &r.metadata)] {
            if let Some(e) = e {
                if let Err(mut err) = scope.eval(e) {
                    if !err.message.starts_with("resources.") && !err.message.starts_with("The ") {
                        err.message = format!("resources.{name}.{section}: {}", err.message);
                    }
                    errors.push(err);
                }
            }
        }
    }

    /// Outputs: whether each one's condition holds, and for those that do,
    /// removed functions, references and attribute names in the value.
    fn enabled_outputs(
        &self,
        scope: &Scope,
        resources: &IndexMap<String, ResourceDefinition>,
        errors: &mut Errors,
    ) -> IndexMap<String, bool> {
        let mut outputs: IndexMap<String, bool> = IndexMap::new();
        for (name, o) in &self.inner.template.outputs {
            match condition_holds(scope, o.condition.as_ref(), "outputs", name) {
                Ok(true) => {
                    check_removed(&o.value, errors);
                    let mut refs = Vec::new();
                    collect_refs(scope, &o.value, &mut refs, errors);
                    for (target, call) in refs {
                        if !(scope.resources)(&target) && call.func == Func::GetAttr {
                            errors.push(Error::validation(
                                format!(
                                    "{}: The specified reference \"{target}\" (in unknown) is incorrect.",
                                    call.path
                                ),
                                call.path.clone(),
                            ));
                        }
                    }
                    self.check_attributes(scope, &o.value, resources, errors);
                    outputs.insert(name.clone(), true);
                }
                Ok(false) => {
                    outputs.insert(name.clone(), false);
                }
                Err(e) => errors.push(e),
            }
        }
        outputs
    }

    fn check_property_names(
        &self,
        name: &str,
        def: &ResourceDefinition,
        keys: &[String],
        types: &ResourceTypes,
        errors: &mut Errors,
    ) {
        for k in keys {
            let known = match &def.resolved_type {
                ResolvedType::Builtin(ty) => types.has_property(ty, k),
                ResolvedType::Template(_) => def
                    .nested
                    .as_ref()
                    .is_none_or(|n| n.template().parameters.contains_key(k)),
            };
            if !known {
                errors.push(Error::validation(
                    format!("Property error: resources.{name}.properties: Unknown Property {k}"),
                    Path::keys(["resources", name, "properties", k.as_str()]),
                ));
            }
        }
    }

    /// The member definition of a resource group or autoscaling group:
    /// Heat checks it when it creates the group's nested stack (before the
    /// create call returns), so an unknown member property is a create error.
    fn check_group_member(
        &self,
        name: &str,
        ty: &str,
        values: &Map<String, Value>,
        errors: &mut Errors,
    ) {
        let key = match ty {
            "OS::Heat::ResourceGroup" => "resource_def",
            "OS::Heat::AutoScalingGroup" => "resource",
            _ => return,
        };
        let Some(Value::Object(member)) = values.get(key) else {
            return;
        };
        let Some(Value::String(member_type)) = member.get("type") else {
            return;
        };
        let Some(Value::Object(props)) = member.get("properties") else {
            return;
        };
        let known = &self.inner.options.types;
        let member_name = if key == "resource_def" { "0" } else { "member" };
        let unknown: Vec<String> = match self.inner.registry.resolve(member_type, None, known) {
            Ok(ResolvedType::Builtin(b)) => props
                .keys()
                .filter(|k| !known.has_property(&b, k))
                .cloned()
                .collect(),
            Ok(ResolvedType::Template(t)) => self
                .inner
                .files
                .get(&t)
                .and_then(|text| {
                    Template::parse_with(text, Some(&t), &self.inner.options.limits).ok()
                })
                .map(|nt| {
                    props
                        .keys()
                        .filter(|k| !nt.parameters.contains_key(*k))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
            Err(msg) => {
                errors.push(Error::validation(
                    format!("resources.{name}<nested_stack>.resources.{member_name}: {msg}"),
                    Path::keys(["resources", name, "properties", key, "type"]),
                ));
                Vec::new()
            }
        };
        for k in unknown {
            errors.push(Error::validation(
                format!(
                    "Property error: resources.{name}<nested_stack>.resources.{member_name}.properties: Unknown Property {k}"
                ),
                Path::keys(["resources", name, "properties", key, "properties", k.as_str()]),
            ));
        }
    }

    /// `get_attr` on an attribute the (known) type lacks, or on one that
    /// Heat cannot list yet: Heat's validation knows a resource's
    /// attributes only from the `get_attr`s whose path it can compute (see
    /// [`StackTemplate::attribute_known`]).
    fn check_attributes(
        &self,
        scope: &Scope<'_>,
        e: &Expr,
        resources: &IndexMap<String, ResourceDefinition>,
        errors: &mut Errors,
    ) {
        let types = &self.inner.options.types;
        let mut calls: Vec<&Call> = Vec::new();
        e.for_each_call(&mut |c| {
            if c.func == Func::GetAttr {
                calls.push(c);
            }
        });
        for c in calls {
            let (res, attr) = match &c.args {
                Expr::Lit(Value::Array(a)) if a.len() >= 2 => (a[0].clone(), a[1].clone()),
                Expr::List(items) if items.len() >= 2 => {
                    match (scope.eval_value(&items[0]), scope.eval_value(&items[1])) {
                        (Ok(Some(r)), Ok(Some(a))) => (r, a),
                        _ => continue,
                    }
                }
                _ => continue,
            };
            let (res, attr) = (py_str(&res), py_str(&attr));
            let Some(def) = resources.get(&res) else {
                continue;
            };
            let ok = match &def.resolved_type {
                ResolvedType::Builtin(ty) => attr == "show" || types.has_attribute(ty, &attr),
                ResolvedType::Template(_) => true,
            };
            let ok = ok
                && (path_computable(scope, &c.args)
                    || self.attribute_known(scope, def, &attr, resources));
            if !ok {
                errors.push(Error::new(
                    ErrorKind::InvalidTemplateAttribute,
                    format!(
                        "{}: The Referenced Attribute ({res} {attr}) is incorrect.",
                        c.path
                    ),
                    c.path.clone(),
                ));
            }
        }
    }

    /// Whether Heat's validation lists `attr` among the attributes of
    /// resource `def`: some `get_attr` in an enabled resource's properties
    /// or metadata, or in an enabled output, names it with a path that can
    /// be computed now (a path with the value of a parameter that has none
    /// cannot), or asks for all of the resource's attributes and the type's
    /// schema has it. Heat builds the attribute list of a resource from
    /// these references before it checks them.
    fn attribute_known(
        &self,
        scope: &Scope<'_>,
        def: &ResourceDefinition,
        attr: &str,
        resources: &IndexMap<String, ResourceDefinition>,
    ) -> bool {
        let t = &self.inner.template;
        let in_schema = match &def.resolved_type {
            ResolvedType::Builtin(ty) => self
                .inner
                .options
                .types
                .schema(ty)
                .and_then(|s| s.attributes.as_ref())
                .is_some_and(|a| a.contains(attr)),
            ResolvedType::Template(_) => true,
        };
        let mut sources: Vec<&Expr> = Vec::new();
        for name in resources.keys() {
            let r = &t.resources[name];
            sources.extend(r.properties.iter().chain(r.metadata.iter()));
        }
        for o in t.outputs.values() {
            if condition_holds(scope, o.condition.as_ref(), "outputs", &o.name).unwrap_or(false) {
                sources.push(&o.value);
            }
        }
        let mut known = false;
        for e in sources {
            e.for_each_call(&mut |c| {
                if known || c.func != Func::GetAttr {
                    return;
                }
                let items: Vec<Expr> = match c.args.as_list() {
                    Some(items) => items,
                    None => return,
                };
                let named = |i: usize| {
                    items.get(i).is_some_and(|e| match scope.eval_value(e) {
                        Ok(Some(v)) => py_str(&v) == if i == 0 { def.name.as_str() } else { attr },
                        _ => false,
                    })
                };
                if !named(0) {
                    return;
                }
                known = if items.len() == 1 {
                    in_schema
                } else {
                    named(1) && path_computable(scope, &c.args)
                };
            });
            if known {
                return true;
            }
        }
        false
    }

    /// Strict: parameters and resources referenced but defined nowhere
    /// (Heat finds these only when it resolves them, or never in untaken
    /// `if` branches).
    fn strict_references(&self, errors: &mut Errors) {
        let t = self.template();
        let mut check = |e: &Expr| {
            e.for_each_call(&mut |c: &Call| {
                let first = match c.func {
                    Func::GetParam => match &c.args {
                        Expr::Lit(Value::String(s)) => Some(s.clone()),
                        Expr::Lit(Value::Array(a)) => a.first().and_then(Value::as_str).map(String::from),
                        _ => None,
                    },
                    Func::GetResource => c.args.as_str().map(String::from),
                    Func::GetAttr => match &c.args {
                        Expr::Lit(Value::Array(a)) => a.first().and_then(Value::as_str).map(String::from),
                        Expr::List(items) => items.first().and_then(Expr::as_str).map(String::from),
                        _ => None,
                    },
                    _ => None,
                };
                let Some(name) = first else { return };
                let (kind, known) = match c.func {
                    Func::GetParam => (
                        "parameter",
                        t.parameters.contains_key(&name) || PSEUDO.contains(&name.as_str()),
                    ),
                    _ => ("resource", t.resources.contains_key(&name)),
                };
                if !known {
                    errors.push(Error::validation(
                        format!("{}: {} refers to {kind} \"{name}\", which the template does not define", c.path, c.func.name()),
                        c.path.clone(),
                    ));
                }
            })
        };
        for r in t.resources.values() {
            for e in [
                &r.properties,
                &r.metadata,
                &r.update_policy,
                &r.deletion_policy,
                &r.external_id,
            ]
            .into_iter()
            .flatten()
            {
                check(e);
            }
        }
        for o in t.outputs.values() {
            check(&o.value);
        }
        for c in t.conditions.values() {
            check(c);
        }
    }
}

/// Heat's property checks at create: values of the property's type (only for types whose schema is known, and only
/// for values known before the stack exists).
fn check_property_values(
    name: &str,
    ty: &str,
    values: &Map<String, Value>,
    types: &ResourceTypes,
    errors: &mut Errors,
) {
    if ty == "OS::Heat::None" {
        return;
    }
    let Some(schema) = types.schema(ty).and_then(|s| s.properties.as_ref()) else {
        return;
    };
    let prefix = format!("Property error: resources.{name}.properties");
    for (key, prop) in schema {
        let path = Path::keys(["resources", name, "properties", key.as_str()]);
        // A missing required property is left to Heat: translation rules
        // (deprecated names) may supply it under another name.
        let v = match values.get(key) {
            None | Some(Value::Null) => continue,
            Some(v) => v,
        };
        let problem = property_value_error(&prop.ty, prop.allow_conversion, v);
        if let Some(p) = problem {
            errors.push(Error::validation(format!("{prefix}.{key}: {p}"), path));
        }
    }
}

/// Whether the path of a `get_attr` (its arguments after the resource and
/// attribute names) can be computed now: Heat cannot when a part of it
/// fails to evaluate, such as a parameter without a value at validation.
fn path_computable(scope: &Scope<'_>, args: &Expr) -> bool {
    match args {
        Expr::List(items) => items
            .iter()
            .skip(2)
            .all(|e| scope.eval_value(e).is_ok() && !uses_missing_hidden(scope, e)),
        _ => true,
    }
}

/// Whether `e` asks for a hidden parameter that has no value (evaluation
/// keeps such a `get_param` as a call, but Heat cannot resolve it).
fn uses_missing_hidden(scope: &Scope<'_>, e: &Expr) -> bool {
    let mut missing = false;
    e.for_each_call(&mut |c| {
        if c.func != Func::GetParam {
            return;
        }
        let name = match &c.args {
            Expr::Lit(Value::String(n)) => Some(n.as_str()),
            Expr::Lit(Value::Array(a)) => a.first().and_then(Value::as_str),
            _ => None,
        };
        if let Some(slot) = name.and_then(|n| scope.params.get(n)) {
            missing |= slot.hidden && slot.value.is_err();
        }
    });
    missing
}

/// A [`StackDefinition`] in the making: each phase of
/// `StackTemplate::instantiate_inner` fills its part.
#[derive(Default)]
struct Draft {
    /// The user's parameter values (the environment's, then the request's).
    user: IndexMap<String, Value>,
    /// Every parameter's value or error, pseudo parameters included.
    slots: HashMap<String, ParamSlot>,
    /// The enabled resources, in template order.
    enabled: Vec<String>,
    /// Their definitions.
    resources: IndexMap<String, ResourceDefinition>,
    /// Their dependencies.
    graph: Dependencies,
    /// Each output, and whether its condition holds.
    outputs: IndexMap<String, bool>,
}

/// One parameter's value: the given one (or the default) coerced to its
/// type, checked against its constraints with `check_values`; a hidden
/// value never appears in the error.
fn parameter_value(
    name: &str,
    s: &ParameterSchema,
    raw: Option<&Value>,
    ppath: &Path,
    check_values: bool,
) -> Result<Value, Error> {
    let Some(raw) = raw else {
        return Err(Error::new(
            ErrorKind::UserParameterMissing,
            format!("The Parameter ({name}) was not provided."),
            ppath.clone(),
        ));
    };
    let coerced = if check_values {
        s.coerce(raw)
    } else {
        s.coerce_unchecked(raw)
    };
    coerced.map_err(|m| {
        // Heat would echo the value; a hidden one never is.
        let m = if s.hidden {
            let shown = py_str(raw);
            if shown.is_empty() {
                m
            } else {
                m.replace(&shown, "******")
            }
        } else {
            m
        };
        Error::validation(format!("Parameter '{name}' is invalid: {m}"), ppath.clone())
    })
}

/// Conditions: each must be a boolean or a function (and use no removed
/// function).
fn check_condition_definitions(t: &Template, errors: &mut Errors) {
    for (name, c) in &t.conditions {
        match c {
            Expr::Lit(Value::Bool(_)) | Expr::Call(_) => {}
            Expr::Removed(r) => errors.push(crate::function::removed_error(r)),
            other => errors.push(Error::validation(
                format!(
                    "Condition validation error: The definition of condition \"{name}\" is invalid: {}",
                    py_str(&other.to_value())
                ),
                Path::keys(["conditions", name.as_str()]),
            )),
        }
        check_removed(c, errors);
    }
}

/// Whether a resource's or an output's `condition` holds (true when there
/// is none or it cannot be known yet); a value that is no condition is
/// Heat's error, named `{section}.{name}.condition`.
fn condition_holds(
    scope: &Scope,
    condition: Option<&Expr>,
    section: &str,
    name: &str,
) -> Result<bool, Error> {
    let Some(c) = condition else {
        return Ok(true);
    };
    match scope.eval(c)? {
        Out::Val(v) => scope.is_enabled(Some(&v)).map_err(|mut e| {
            if e.path.is_root() {
                e.path = Path::keys([section, name, "condition"]);
                e.message = format!("{section}.{name}.condition: {}", e.message);
            }
            e
        }),
        _ => Ok(true),
    }
}

/// Heat's error for a `get_resource`/`get_attr` in a resource's
/// `section` (`Properties` or `Metadata`) naming a resource that is not
/// enabled: the place is the call's path below the section.
fn reference_error(target: &str, name: &str, section: &str, call: &Call) -> Error {
    let rel = call
        .path
        .0
        .iter()
        .skip(3)
        .map(|s| match s {
            crate::error::Segment::Key(k) => format!(".{k}"),
            crate::error::Segment::Index(i) => format!("[{i}]"),
        })
        .collect::<String>();
    let rel = rel
        .trim_end_matches(&format!(".{}", call.func.name()))
        .to_string();
    Error::new(
        ErrorKind::InvalidTemplateReference,
        format!("The specified reference \"{target}\" (in {name}.{section}{rel}) is incorrect."),
        call.path.clone(),
    )
}

/// Heat's complaint about a property value of property type `ty`
/// (`integer`, `number`, `string`, `boolean`, `map`, `list`; anything else
/// takes any value), as it words it after `Property error: <path>: `;
/// `None` when the value is acceptable. `allow_conversion` is the schema's
/// flag (a `list` taking a comma-delimited string, a `map` a string or list).
pub fn property_value_error(ty: &str, allow_conversion: bool, v: &Value) -> Option<String> {
    match (ty, v) {
        ("integer", Value::Number(n)) if n.is_f64() => None,
        ("integer", Value::Number(_) | Value::Bool(_)) => None,
        ("integer", Value::String(s)) if crate::parameter::py_int(s).is_some() => None,
        ("integer", other) => Some(format!("Value '{}' is not an integer", py_str(other))),
        ("number", v) if crate::parameter::str_to_num_ok(v) => None,
        ("number", Value::String(s)) => Some(format!("could not convert string to float: '{s}'")),
        ("string", Value::String(_) | Value::Bool(_) | Value::Number(_)) => None,
        ("string", other) => Some(format!(
            "Value must be a string; got {}",
            crate::pyfmt::py_repr(other)
        )),
        ("boolean", Value::Bool(_)) => None,
        ("boolean", Value::String(s)) if matches!(s.to_lowercase().as_str(), "true" | "false") => {
            None
        }
        ("boolean", Value::String(s)) => {
            Some(format!("\"{}\" is not a valid boolean", s.to_lowercase()))
        }
        ("boolean", other) => Some(format!("\"{}\" is not a valid boolean", py_str(other))),
        ("map", Value::Object(_)) => None,
        ("map", Value::String(_) | Value::Array(_)) if allow_conversion => None,
        ("map", other) => Some(format!("\"{}\" is not a map", py_str(other))),
        ("list", Value::Array(_)) => None,
        ("list", Value::String(_)) if allow_conversion => None,
        ("list", other) => Some(format!(
            "\"{}\" is not a list",
            crate::pyfmt::py_repr(other)
        )),
        _ => None,
    }
}

fn mask_hidden(t: &Template, m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .map(|(k, v)| {
            let hidden = t.parameters.get(k).is_some_and(|s| s.hidden);
            (
                k.clone(),
                if hidden {
                    Value::String("******".into())
                } else {
                    v.clone()
                },
            )
        })
        .collect()
}

/// Removed functions anywhere in the snippet.
fn check_removed(e: &Expr, errors: &mut Errors) {
    match e {
        Expr::Removed(r) => errors.push(crate::function::removed_error(r)),
        Expr::List(items) => items.iter().for_each(|i| check_removed(i, errors)),
        Expr::Map(entries) => entries.iter().for_each(|(_, i)| check_removed(i, errors)),
        Expr::Call(c) => check_removed(&c.args, errors),
        Expr::Lit(_) => {}
    }
}

/// Resources referenced by `get_resource`, `get_attr` and `Ref` (to a
/// resource), following only the `if` branches the conditions select.
fn collect_refs<'e>(
    scope: &Scope<'_>,
    e: &'e Expr,
    out: &mut Vec<(String, &'e Call)>,
    errors: &mut Errors,
) {
    match e {
        Expr::Lit(_) | Expr::Removed(_) => {}
        Expr::List(items) => items
            .iter()
            .for_each(|i| collect_refs(scope, i, out, errors)),
        Expr::Map(entries) => entries
            .iter()
            .for_each(|(_, i)| collect_refs(scope, i, out, errors)),
        Expr::Call(c) => match c.func {
            Func::If => {
                // A literal `if` holds no references: nothing to follow.
                let Expr::List(items) = &c.args else { return };
                let Some(cond) = items.first() else { return };
                let b = match scope.eval(cond) {
                    Ok(Out::Val(Value::Bool(b))) => Ok(b),
                    Ok(Out::Val(v)) => scope.is_enabled(Some(&v)),
                    Ok(_) => Ok(true),
                    Err(e) => Err(e),
                };
                match b {
                    Ok(true) => {
                        if let Some(x) = items.get(1) {
                            collect_refs(scope, x, out, errors)
                        }
                    }
                    Ok(false) => {
                        if let Some(x) = items.get(2) {
                            collect_refs(scope, x, out, errors)
                        }
                    }
                    Err(mut err) => {
                        if err.path.is_root() {
                            err.path = c.path.clone();
                            err.message = format!("{}: {}", c.path, err.message);
                        }
                        errors.push(err)
                    }
                }
            }
            Func::GetResource | Func::GetAttr | Func::Ref => {
                collect_refs(scope, &c.args, out, errors);
                let first_of_list;
                let name_expr: Option<&Expr> = match c.func {
                    Func::GetResource | Func::Ref => Some(&c.args),
                    _ => match &c.args {
                        Expr::List(items) => items.first(),
                        Expr::Lit(Value::Array(a)) => {
                            first_of_list = a.first().cloned().map(Expr::Lit);
                            first_of_list.as_ref()
                        }
                        Expr::Lit(Value::String(_)) => Some(&c.args),
                        _ => None,
                    },
                };
                let Some(ne) = name_expr else { return };
                match scope.eval_value(ne) {
                    Ok(Some(v)) => {
                        let n = py_str(&v);
                        if c.func == Func::Ref
                            && !scope_has_resource(scope, &n)
                            && scope.params.contains_key(&n)
                        {
                            return;
                        }
                        if c.func == Func::Ref && !scope_has_resource(scope, &n) {
                            return;
                        }
                        out.push((n, &**c));
                    }
                    Ok(None) => {}
                    Err(e) => errors.push(e),
                }
            }
            _ => collect_refs(scope, &c.args, out, errors),
        },
    }
}

fn scope_has_resource(scope: &Scope<'_>, n: &str) -> bool {
    (scope.resources)(n)
}

/// A template given parameter values: what a stack of it consists of, and
/// the evaluation of its properties and outputs. Send + Sync; keep one per
/// stack.
#[derive(Clone, Debug)]
pub struct StackDefinition {
    template: StackTemplate,
    params: HashMap<String, ParamSlot>,
    user_values: IndexMap<String, Value>,
    identity: StackIdentity,
    conditions: HashMap<String, Option<bool>>,
    resources: IndexMap<String, ResourceDefinition>,
    outputs: IndexMap<String, bool>,
    graph: Dependencies,
}

/// Options for rendering.
#[derive(Clone, Debug)]
pub struct RenderOptions {
    /// Replace each resource's `type` by its type after the environment's
    /// registry (nested templates by their `files` key).
    pub apply_registry: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            apply_registry: true,
        }
    }
}

/// A rendered template, ready to send to Heat (with the hidden parameter
/// values, passed separately so they never appear in the text).
#[derive(Clone, Debug, PartialEq)]
pub struct RenderedTemplate {
    /// The template document.
    pub template: Value,
    /// Values of hidden parameters, to pass as stack parameters.
    pub hidden_parameters: ParameterValues,
    /// The `files` a Heat needs for it (nested templates).
    pub files: Files,
}

impl RenderedTemplate {
    /// The template as YAML.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(&self.template).unwrap_or_default()
    }
    /// The template as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.template).unwrap_or_default()
    }
}

impl StackDefinition {
    /// The stack template this definition came from.
    pub fn stack_template(&self) -> &StackTemplate {
        &self.template
    }

    /// The stack identity the pseudo parameters were taken from.
    pub fn identity(&self) -> &StackIdentity {
        &self.identity
    }

    /// The enabled resources, in template order.
    pub fn resources(&self) -> impl Iterator<Item = &ResourceDefinition> {
        self.resources.values()
    }

    /// One enabled resource.
    pub fn resource(&self, name: &str) -> Option<&ResourceDefinition> {
        self.resources.get(name)
    }

    /// An enabled resource as written in the template (its unevaluated
    /// properties, metadata and update policy).
    pub fn raw(&self, name: &str) -> Option<&crate::template::ResourceTemplate> {
        if !self.resources.contains_key(name) {
            return None;
        }
        self.template.template().resources.get(name)
    }

    /// The dependency graph of the enabled resources.
    pub fn dependencies(&self) -> &Dependencies {
        &self.graph
    }

    /// The stack's parameters as Heat shows them (strings; hidden ones as
    /// `******`; the pseudo parameters included when known).
    pub fn parameters(&self) -> IndexMap<String, String> {
        let t = self.template.template();
        let mut out = IndexMap::new();
        for name in PSEUDO {
            if let Some(ParamSlot { value: Ok(v), .. }) = self.params.get(*name) {
                out.insert(name.to_string(), py_str(v));
            }
        }
        for (name, s) in &t.parameters {
            if let Some(ParamSlot { value: Ok(v), .. }) = self.params.get(name) {
                out.insert(name.clone(), s.display(v));
            }
        }
        out
    }

    /// A parameter's typed value (what `get_param` gives).
    pub fn parameter_value(&self, name: &str) -> Option<&Value> {
        self.params.get(name).and_then(|s| s.value.as_ref().ok())
    }

    /// The parameter schemas.
    pub fn parameter_schemas(&self) -> impl Iterator<Item = &ParameterSchema> {
        self.template.template().parameters.values()
    }

    /// Parameters marked `immutable` whose value differs in `new`
    /// (Heat refuses such an update with `ImmutableParameterModified`).
    pub fn immutable_changes(&self, new: &StackDefinition) -> Result<(), Error> {
        let mut changed = Vec::new();
        for (name, s) in &new.template.template().parameters {
            if !s.immutable || !self.template.template().parameters.contains_key(name) {
                continue;
            }
            if self.parameter_value(name) != new.parameter_value(name) {
                changed.push(name.clone());
            }
        }
        if changed.is_empty() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::ImmutableParameterModified,
                format!(
                    "The following parameters are immutable and may not be updated: {}",
                    changed.join(", ")
                ),
                Path::keys(["parameters"]),
            ))
        }
    }

    fn scope<'a>(
        &'a self,
        conds: &'a ConditionSet<'a>,
        enabled: &'a dyn Fn(&str) -> bool,
        resolver: Option<&'a dyn Resolver>,
    ) -> Scope<'a> {
        Scope {
            version: self.template.template().version,
            params: &self.params,
            conditions: conds,
            files: self.template.files(),
            resources: enabled,
            resolver,
            rendering: resolver.is_none(),
        }
    }

    fn conditions(&self) -> ConditionSet<'_> {
        ConditionSet {
            defs: &self.template.template().conditions,
            cache: RefCell::new(self.conditions.clone()),
        }
    }

    fn eval_full(&self, e: &Expr, resolver: &dyn Resolver) -> Result<Value, Error> {
        let conds = self.conditions();
        let enabled = |n: &str| self.resources.contains_key(n);
        let scope = self.scope(&conds, &enabled, Some(resolver));
        let mut r = match scope.eval(e)? {
            Out::Val(v) | Out::Res(v) => Ok(v),
            Out::Omit => Ok(Value::Null),
        };
        if let Err(err) = &mut r {
            self.template.template().source().locate(err);
        }
        r
    }

    /// A resource's properties, every function resolved (`get_resource`
    /// and `get_attr` through `resolver`). Properties an `if` omits are absent.
    pub fn properties(&self, name: &str, resolver: &dyn Resolver) -> Result<Value, Error> {
        match self.raw(name).and_then(|r| r.properties.as_ref()) {
            Some(e) => self.eval_full(e, resolver),
            None => Ok(Value::Object(Map::new())),
        }
    }

    /// A resource's metadata, resolved.
    pub fn metadata(&self, name: &str, resolver: &dyn Resolver) -> Result<Value, Error> {
        match self.raw(name).and_then(|r| r.metadata.as_ref()) {
            Some(e) => self.eval_full(e, resolver),
            None => Ok(Value::Object(Map::new())),
        }
    }

    /// A resource's update policy, resolved.
    pub fn update_policy(&self, name: &str, resolver: &dyn Resolver) -> Result<Value, Error> {
        match self.raw(name).and_then(|r| r.update_policy.as_ref()) {
            Some(e) => self.eval_full(e, resolver),
            None => Ok(Value::Object(Map::new())),
        }
    }

    /// The stack's outputs, resolved (a disabled output's value is `null`).
    pub fn outputs(&self, resolver: &dyn Resolver) -> Vec<OutputValue> {
        let t = self.template.template();
        let mut out = Vec::new();
        for (name, enabled) in &self.outputs {
            let o = &t.outputs[name];
            let value = if *enabled {
                self.eval_full(&o.value, resolver)
            } else {
                Ok(Value::Null)
            };
            out.push(OutputValue {
                key: name.clone(),
                description: o
                    .description
                    .clone()
                    .unwrap_or_else(|| "No description given".into()),
                value,
            });
        }
        out
    }

    /// Renders the definition (see [`StackTemplate::render`]).
    pub fn render(&self, options: &RenderOptions) -> Result<RenderedTemplate, Errors> {
        let t = self.template.template();
        let conds = self.conditions();
        let enabled = |n: &str| self.resources.contains_key(n);
        let scope = self.scope(&conds, &enabled, None);
        let mut errors = Errors::new();
        let mut eval = |e: &Expr| -> Option<Value> {
            match scope.eval(e) {
                Ok(Out::Val(v) | Out::Res(v)) => Some(v),
                Ok(Out::Omit) => None,
                Err(mut err) => {
                    t.source().locate(&mut err);
                    errors.push(err);
                    None
                }
            }
        };
        let mut doc = Map::new();
        doc.insert(
            "heat_template_version".into(),
            Value::String(t.version_name.clone()),
        );
        if let Some(d) = &t.description {
            doc.insert("description".into(), Value::String(d.clone()));
        }
        if let Some(g) = t.parameter_groups_value() {
            doc.insert("parameter_groups".into(), g);
        }
        let mut hidden = ParameterValues::new();
        if !t.parameters.is_empty() {
            let params = self.render_parameters(&mut hidden);
            doc.insert("parameters".into(), Value::Object(params));
        }
        let mut res_doc = Map::new();
        let mut files = Files::new();
        for r in self.resources.values() {
            if let ResolvedType::Template(tn) = &r.resolved_type {
                if let Some(text) = self.template.files().get(tn) {
                    files.insert(tn.clone(), text.clone());
                }
            }
            let m = render_resource(r, &t.resources[&r.name], options, &mut eval);
            res_doc.insert(r.name.clone(), Value::Object(m));
        }
        doc.insert("resources".into(), Value::Object(res_doc));
        let mut out_doc = Map::new();
        for (name, enabled) in &self.outputs {
            if !enabled {
                continue;
            }
            let o = &t.outputs[name];
            let mut m = Map::new();
            if let Some(d) = &o.description {
                m.insert("description".into(), Value::String(d.clone()));
            }
            m.insert("value".into(), eval(&o.value).unwrap_or(Value::Null));
            out_doc.insert(name.clone(), Value::Object(m));
        }
        if !out_doc.is_empty() {
            doc.insert("outputs".into(), Value::Object(out_doc));
        }
        errors.into_result(RenderedTemplate {
            template: Value::Object(doc),
            hidden_parameters: hidden,
            files,
        })
    }

    /// The rendered `parameters` section: each declaration as written,
    /// with the value given (or the environment's default) as its default;
    /// a hidden parameter's given value goes to `hidden` instead.
    fn render_parameters(&self, hidden: &mut ParameterValues) -> Map<String, Value> {
        let t = self.template.template();
        let mut params = Map::new();
        for (name, s) in &t.parameters {
            let mut decl = t
                .parameters_document
                .get(name)
                .cloned()
                .unwrap_or(Value::Object(Map::new()));
            let raw = self
                .user_values
                .get(name)
                .or_else(|| self.template.environment().parameter_defaults.get(name))
                .cloned();
            if let (Some(raw), Value::Object(m)) = (raw, &mut decl) {
                if s.hidden {
                    if self.user_values.contains_key(name) {
                        hidden.insert(name.clone(), raw);
                    }
                } else {
                    m.insert("default".into(), raw);
                }
            }
            params.insert(name.clone(), decl);
        }
        params
    }
}

/// One rendered resource: its type (after the registry with
/// `apply_registry`), properties, metadata and update policy evaluated
/// by `eval` (in that order), and the rest of its definition.
fn render_resource(
    r: &ResourceDefinition,
    rt: &ResourceTemplate,
    options: &RenderOptions,
    eval: &mut dyn FnMut(&Expr) -> Option<Value>,
) -> Map<String, Value> {
    let mut m = Map::new();
    let ty = if options.apply_registry {
        r.resolved_type.name().to_string()
    } else {
        r.type_name.clone()
    };
    m.insert("type".into(), Value::String(ty));
    if let Some(e) = &rt.properties {
        if let Some(v) = eval(e) {
            m.insert("properties".into(), v);
        }
    }
    if let Some(e) = &rt.metadata {
        if let Some(v) = eval(e) {
            m.insert("metadata".into(), v);
        }
    }
    if !r.depends_on.is_empty() {
        m.insert(
            "depends_on".into(),
            Value::Array(r.depends_on.iter().cloned().map(Value::String).collect()),
        );
    }
    if rt.deletion_policy.is_some() {
        m.insert(
            "deletion_policy".into(),
            Value::String(r.deletion_policy.name().into()),
        );
    }
    if let Some(e) = &rt.update_policy {
        if let Some(v) = eval(e) {
            m.insert("update_policy".into(), v);
        }
    }
    if let Some(d) = &r.description {
        m.insert("description".into(), Value::String(d.clone()));
    }
    if let Some(x) = &r.external_id {
        m.insert("external_id".into(), x.clone());
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn definitions_can_be_shared_across_threads() {
        send_sync::<StackTemplate>();
        send_sync::<StackDefinition>();
        send_sync::<RenderedTemplate>();
    }

    #[test]
    fn immutable_parameters_may_not_change() {
        let text = "heat_template_version: 2016-10-14\nparameters:\n  size: {type: number, immutable: true}\nresources: {}\n";
        let t =
            StackTemplate::parse(text, Environment::new(), Files::new(), Options::heat()).unwrap();
        let a = t
            .define(
                &[("size", "1")].into_iter().collect(),
                &StackIdentity::default(),
            )
            .unwrap();
        let b = t
            .define(
                &[("size", "2")].into_iter().collect(),
                &StackIdentity::default(),
            )
            .unwrap();
        assert!(a.immutable_changes(&a).is_ok());
        let e = a.immutable_changes(&b).unwrap_err();
        assert_eq!(e.kind, ErrorKind::ImmutableParameterModified);
        assert_eq!(
            e.message,
            "The following parameters are immutable and may not be updated: size"
        );
    }

    #[test]
    fn validate_report_like_heat() {
        let text = "heat_template_version: 2016-10-14\ndescription: d\nparameters:\n  pw: {type: string, hidden: true, default: secret, label: Password}\n  n: {type: number, default: 2, constraints: [{range: {min: 1, max: 5}}]}\nresources: {}\n";
        let t =
            StackTemplate::parse(text, Environment::new(), Files::new(), Options::heat()).unwrap();
        let r = t.validate(&ParameterValues::new()).unwrap().to_json();
        assert_eq!(r["Description"], "d");
        assert_eq!(r["Parameters"]["pw"]["NoEcho"], "true");
        assert_eq!(r["Parameters"]["pw"]["Default"], "******");
        assert_eq!(r["Parameters"]["pw"]["Label"], "Password");
        assert_eq!(r["Parameters"]["n"]["Type"], "Number");
        assert_eq!(r["Parameters"]["n"]["MaxValue"], 5);
        assert!(!r.to_string().contains("secret"));
    }
}

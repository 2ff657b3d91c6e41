//! One HOT document, parsed once: version, description, parameter groups,
//! parameters, resources, outputs and conditions, in the order written,
//! with every function call found. Checks that need nothing but the
//! document itself (Heat's section, keyword and function-shape checks)
//! happen here.

use std::sync::{Arc, OnceLock};

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Errors, Path};
use crate::function::{Context, Expr, ExprParser};
use crate::parameter::ParameterSchema;
use crate::pyfmt::py_str;
use crate::version::Version;
use crate::yaml::{self, Limits, PositionIndex};

/// The text a document came from, for `line:column` in errors.
#[derive(Debug)]
pub struct Source {
    /// The document's name (file name or `files` key), if any.
    pub name: Option<String>,
    text: Option<Arc<str>>,
    index: OnceLock<PositionIndex>,
}

impl Source {
    /// A source with its text.
    pub fn new(name: Option<String>, text: &str) -> Self {
        Source {
            name,
            text: Some(Arc::from(text)),
            index: OnceLock::new(),
        }
    }

    /// A source with no text (a document given as data).
    pub fn without_text(name: Option<String>) -> Self {
        Source {
            name,
            text: None,
            index: OnceLock::new(),
        }
    }

    /// Names the document in `e` and fills in `line:column` from the path
    /// (the position index is built the first time it is needed).
    pub fn locate(&self, e: &mut Error) {
        if e.document.is_none() {
            e.document.clone_from(&self.name);
        }
        if e.position.is_none() && !e.path.is_root() {
            if let Some(text) = &self.text {
                let idx = self.index.get_or_init(|| PositionIndex::build(text));
                e.position = idx.find(&e.path);
            }
        }
    }
}

/// A resource as written in the template.
#[derive(Clone, Debug)]
pub struct ResourceTemplate {
    /// Its name.
    pub name: String,
    /// `type` as written (before the environment's registry applies).
    pub type_name: String,
    /// `properties`.
    pub properties: Option<Expr>,
    /// `metadata`.
    pub metadata: Option<Expr>,
    /// `depends_on`, as a list.
    pub depends_on: Vec<String>,
    /// `deletion_policy`.
    pub deletion_policy: Option<Expr>,
    /// `update_policy`.
    pub update_policy: Option<Expr>,
    /// `description`.
    pub description: Option<String>,
    /// `condition` (a condition name, a boolean or a condition expression).
    pub condition: Option<Expr>,
    /// `external_id`.
    pub external_id: Option<Expr>,
}

/// An output as written in the template.
#[derive(Clone, Debug)]
pub struct OutputTemplate {
    /// Its name.
    pub name: String,
    /// `value`.
    pub value: Expr,
    /// `description`.
    pub description: Option<String>,
    /// `condition`.
    pub condition: Option<Expr>,
}

/// A parsed HOT template.
#[derive(Debug)]
pub struct Template {
    /// The version.
    pub version: Version,
    /// The version as written (`2016-10-14` or `newton`).
    pub version_name: String,
    /// `description`.
    pub description: Option<String>,
    /// `parameter_groups`, as written.
    pub parameter_groups: Option<Value>,
    /// `parameters`, in template order.
    pub parameters: IndexMap<String, ParameterSchema>,
    /// `resources`, in template order.
    pub resources: IndexMap<String, ResourceTemplate>,
    /// `outputs`, in template order.
    pub outputs: IndexMap<String, OutputTemplate>,
    /// `conditions`, in template order.
    pub conditions: IndexMap<String, Expr>,
    /// The `parameters` section as written.
    pub parameters_document: Map<String, Value>,
    /// Mistakes Heat silently accepts (misspelt function names, functions
    /// of other versions, references in branches Heat never checks); they
    /// are errors in strict validation.
    pub strict_findings: Vec<Error>,
    source: Arc<Source>,
}

fn bad_request(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::HttpBadRequest, msg, Path::root())
}

impl Template {
    /// Parses a template text (YAML or JSON) with default limits.
    pub fn parse(text: &str) -> Result<Template, Errors> {
        Template::parse_with(text, None, &Limits::default())
    }

    /// Parses a template text; `name` (a file name or `files` key) names
    /// it in errors.
    pub fn parse_with(text: &str, name: Option<&str>, limits: &Limits) -> Result<Template, Errors> {
        let source = Arc::new(Source::new(name.map(String::from), text));
        let doc = match yaml::load(text, limits) {
            Ok(v) => v,
            Err(mut e) => {
                source.locate(&mut e);
                return Err(e.into());
            }
        };
        let doc = if doc.is_null() {
            Value::Object(Map::new())
        } else {
            doc
        };
        Template::from_document(doc, source, limits)
    }

    /// Builds a template from an already-decoded document (as Heat's API
    /// receives a JSON `template` object).
    pub fn from_value(doc: Value, name: Option<&str>) -> Result<Template, Errors> {
        let source = Arc::new(Source::without_text(name.map(String::from)));
        Template::from_document(doc, source, &Limits::default())
    }

    /// The source the template came from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Parses the document section by section: the version first (its
    /// errors stop everything), then the section names, the resources'
    /// keywords and types, the parameters, the conditions, the resource
    /// definitions and the outputs, and last the checks across sections.
    fn from_document(doc: Value, source: Arc<Source>, limits: &Limits) -> Result<Template, Errors> {
        let fail = |mut e: Error| -> Errors {
            source.locate(&mut e);
            e.into()
        };
        let Value::Object(mut top) = doc else {
            return Err(fail(bad_request(
                "The template is not a JSON object or YAML mapping.",
            )));
        };
        let (version_name, version) = template_version(&top).map_err(fail)?;

        let mut errors = Vec::new();
        let mut strict = Vec::new();
        check_sections(&top, version, &mut errors);
        let resources_raw = section_map(&top, "resources", &mut errors);
        check_resource_shapes(resources_raw, version, limits, &mut errors);
        let params_raw = section_map(&top, "parameters", &mut errors);
        let parameters = parse_parameters(params_raw, version, &mut errors);

        let parameters_document = params_raw.clone();
        let description = top.get("description").map(py_str);
        let parameter_groups = top.get("parameter_groups").cloned();
        // From here on the sections are taken out of the document and
        // parsed in place: nothing is copied.
        let conditions_v = top.remove("conditions");
        let resources_v = top.remove("resources");
        let outputs_v = top.remove("outputs");
        let mut parser = ExprParser {
            version,
            errors: &mut errors,
            strict: &mut strict,
        };
        let conditions = parse_conditions(&mut parser, conditions_v);
        let resources = parse_resources(&mut parser, resources_v);
        let outputs = parse_outputs(&mut parser, outputs_v);
        check_duplicate_names(&parameters, &resources, &mut errors);

        let mut tmpl = Template {
            version,
            version_name,
            description,
            parameter_groups,
            parameters,
            resources,
            outputs,
            conditions,
            parameters_document,
            strict_findings: strict,
            source,
        };
        tmpl.check_parameter_groups(&mut errors);
        for e in &mut errors {
            tmpl.source.locate(e);
        }
        for e in &mut tmpl.strict_findings {
            tmpl.source.locate(e);
        }
        if errors.is_empty() {
            Ok(tmpl)
        } else {
            Err(Errors(errors))
        }
    }

    fn check_parameter_groups(&self, errors: &mut Vec<Error>) {
        let Some(groups) = &self.parameter_groups else {
            return;
        };
        if groups.is_null() {
            return;
        }
        let path = Path::keys(["parameter_groups"]);
        let Value::Array(groups) = groups else {
            errors.push(Error::validation(
                "Parameter Groups error: parameter_groups: The parameter_groups should be a list.",
                path,
            ));
            return;
        };
        let mut seen: Vec<String> = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            let label = g.get("label").map(py_str).unwrap_or_default();
            let gpath = path.index(i);
            let heat_path = if label.is_empty() {
                "parameter_groups".to_string()
            } else {
                format!("parameter_groups.{label}")
            };
            let params = g.get("parameters");
            let Some(params) = params.filter(|p| !p.is_null()) else {
                errors.push(Error::validation(
                    format!("Parameter Groups error: {heat_path}: The parameters must be provided for each parameter group."),
                    gpath,
                ));
                continue;
            };
            let Value::Array(params) = params else {
                errors.push(Error::validation(
                    format!("Parameter Groups error: {heat_path}: The parameters of parameter group should be a list."),
                    gpath.key("parameters"),
                ));
                continue;
            };
            for (j, p) in params.iter().enumerate() {
                let p = py_str(p);
                if seen.contains(&p) {
                    errors.push(Error::validation(
                        format!("Parameter Groups error: {heat_path}: The {p} parameter must be assigned to one parameter group only."),
                        gpath.key("parameters").index(j),
                    ));
                } else {
                    seen.push(p.clone());
                }
                if !self.parameters.contains_key(&p) {
                    errors.push(Error::validation(
                        format!("Parameter Groups error: {heat_path}: The grouped parameter {p} does not reference a valid parameter."),
                        gpath.key("parameters").index(j),
                    ));
                }
            }
        }
    }

    /// The template as a document again (function calls as written).
    pub fn to_document(&self) -> Value {
        let mut doc = Map::new();
        doc.insert(
            "heat_template_version".into(),
            Value::String(self.version_name.clone()),
        );
        if let Some(d) = &self.description {
            doc.insert("description".into(), Value::String(d.clone()));
        }
        if let Some(g) = self.parameter_groups_value() {
            doc.insert("parameter_groups".into(), g);
        }
        if !self.parameters_document.is_empty() {
            doc.insert(
                "parameters".into(),
                Value::Object(self.parameters_document.clone()),
            );
        }
        if !self.conditions.is_empty() {
            doc.insert(
                "conditions".into(),
                Value::Object(
                    self.conditions
                        .iter()
                        .map(|(k, e)| (k.clone(), e.to_value()))
                        .collect(),
                ),
            );
        }
        let mut res = Map::new();
        for r in self.resources.values() {
            let mut m = Map::new();
            m.insert("type".into(), Value::String(r.type_name.clone()));
            for (k, e) in [
                ("properties", &r.properties),
                ("metadata", &r.metadata),
                ("deletion_policy", &r.deletion_policy),
                ("update_policy", &r.update_policy),
                ("condition", &r.condition),
                ("external_id", &r.external_id),
            ] {
                if let Some(e) = e {
                    m.insert(k.into(), e.to_value());
                }
            }
            if !r.depends_on.is_empty() {
                m.insert(
                    "depends_on".into(),
                    Value::Array(r.depends_on.iter().cloned().map(Value::String).collect()),
                );
            }
            if let Some(d) = &r.description {
                m.insert("description".into(), Value::String(d.clone()));
            }
            res.insert(r.name.clone(), Value::Object(m));
        }
        doc.insert("resources".into(), Value::Object(res));
        if !self.outputs.is_empty() {
            let mut outs = Map::new();
            for o in self.outputs.values() {
                let mut m = Map::new();
                if let Some(d) = &o.description {
                    m.insert("description".into(), Value::String(d.clone()));
                }
                m.insert("value".into(), o.value.to_value());
                if let Some(c) = &o.condition {
                    m.insert("condition".into(), c.to_value());
                }
                outs.insert(o.name.clone(), Value::Object(m));
            }
            doc.insert("outputs".into(), Value::Object(outs));
        }
        Value::Object(doc)
    }

    /// The parameter groups as Heat's `/validate` lists them.
    pub fn parameter_groups_value(&self) -> Option<Value> {
        self.parameter_groups.clone().filter(|g| !g.is_null())
    }

    /// Every `get_file` target named by a literal string, and every
    /// nested-template `type` (`x.yaml`/`x.template`), for loading a `files` map.
    pub fn file_references(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut visit = |e: &Expr| {
            e.for_each_call(&mut |c| {
                if c.func == crate::function::Func::GetFile {
                    if let Some(s) = c.args.as_str() {
                        out.push(s.to_string());
                    }
                }
            })
        };
        for r in self.resources.values() {
            for e in [&r.properties, &r.metadata, &r.update_policy]
                .into_iter()
                .flatten()
            {
                visit(e);
            }
        }
        for o in self.outputs.values() {
            visit(&o.value);
        }
        for r in self.resources.values() {
            if r.type_name.ends_with(".yaml") || r.type_name.ends_with(".template") {
                out.push(r.type_name.clone());
            }
        }
        out
    }
}

/// The document's version: exactly one version key, `heat_template_version`
/// (CloudFormation-style templates are refused), naming a known version.
/// Gives the version as written and as parsed.
fn template_version(top: &Map<String, Value>) -> Result<(String, Version), Error> {
    let version_keys = [
        "heat_template_version",
        "HeatTemplateFormatVersion",
        "AWSTemplateFormatVersion",
    ];
    if !version_keys.iter().any(|k| top.contains_key(*k)) {
        return Err(bad_request(
            "Template not in valid format: Template format version not found.",
        ));
    }
    let present: Vec<&str> = version_keys
        .iter()
        .copied()
        .filter(|k| top.get(*k).is_some_and(Value::is_string))
        .collect();
    if present.len() > 1 {
        return Err(Error::new(
            ErrorKind::InvalidTemplateVersion,
            format!(
                "The template version is invalid: Ambiguous versions ({})",
                present.join(", ")
            ),
            Path::root(),
        ));
    }
    let Some(key) = present.first() else {
        return Err(Error::new(
            ErrorKind::InvalidTemplateVersion,
            "The template version is invalid: Template version was not provided",
            Path::root(),
        ));
    };
    if *key != "heat_template_version" {
        return Err(Error::new(
            ErrorKind::InvalidTemplateVersion,
            format!(
                "The template version is invalid: {key} (CloudFormation-style) templates are not supported; occi-so reads HOT templates (heat_template_version)"
            ),
            Path::keys([*key]),
        ));
    }
    let version_name = top
        .get("heat_template_version")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let Some(version) = Version::parse(&version_name) else {
        return Err(Error::new(
            ErrorKind::InvalidTemplateVersion,
            format!(
                "The template version is invalid: \"heat_template_version: {version_name}\". \"heat_template_version\" should be one of: {}",
                Version::accepted_names().join(", ")
            ),
            Path::keys(["heat_template_version"]),
        ));
    };
    Ok((version_name, version))
}

/// Top-level sections (Heat: InvalidTemplateSection).
fn check_sections(top: &Map<String, Value>, version: Version, errors: &mut Vec<Error>) {
    let mut sections = vec![
        "heat_template_version",
        "description",
        "parameter_groups",
        "parameters",
        "resources",
        "outputs",
        "__undefined__",
    ];
    if version.has_conditions() {
        sections.push("conditions");
    }
    for k in top.keys() {
        if !sections.contains(&k.as_str()) {
            errors.push(Error::new(
                ErrorKind::InvalidTemplateSection,
                format!("The template section is invalid: {k}"),
                Path::keys([k.as_str()]),
            ));
        }
    }
}

/// A section that must be a map of maps (`resources`, `parameters`):
/// absent, null or `""` is an empty one; anything else that is not a map
/// is Heat's error (and an empty map).
fn section_map<'a>(
    top: &'a Map<String, Value>,
    name: &str,
    errors: &mut Vec<Error>,
) -> &'a Map<String, Value> {
    static EMPTY: OnceLock<Map<String, Value>> = OnceLock::new();
    let empty = EMPTY.get_or_init(Map::new);
    match top.get(name) {
        Some(Value::Object(m)) => m,
        None | Some(Value::Null) => empty,
        Some(Value::String(s)) if s.is_empty() => empty,
        Some(other) => {
            errors.push(Error::validation(
                format!(
                    "\"{name}\" must contain a map of {} maps. Found a [{}] instead",
                    &name[..name.len() - 1],
                    python_class(other)
                ),
                Path::keys([name]),
            ));
            empty
        }
    }
}

/// Resources as Heat first checks them: how many, then each one's
/// keywords and type, sorted by name.
fn check_resource_shapes(
    resources_raw: &Map<String, Value>,
    version: Version,
    limits: &Limits,
    errors: &mut Vec<Error>,
) {
    if resources_raw.len() > limits.max_resources {
        errors.push(Error::new(
            ErrorKind::RequestLimitExceeded,
            "Request limit exceeded: Maximum resources per stack exceeded.",
            Path::keys(["resources"]),
        ));
    }
    let mut res_keys = vec![
        "type",
        "properties",
        "metadata",
        "depends_on",
        "deletion_policy",
        "update_policy",
        "description",
    ];
    if version.has_conditions() {
        res_keys.extend(["external_id", "condition"]);
    }
    let mut sorted: Vec<&String> = resources_raw.keys().collect();
    sorted.sort();
    for name in sorted {
        let path = Path::keys(["resources", name.as_str()]);
        match &resources_raw[name] {
            Value::Object(m) if !m.is_empty() => {
                for k in m.keys() {
                    if !res_keys.contains(&k.as_str()) {
                        errors.push(Error::validation(
                            format!("\"{k}\" is not a valid keyword inside a resource definition"),
                            path.key(k.as_str()),
                        ));
                    }
                }
                check_resource_type(name, m.get("type"), &path, errors);
            }
            Value::Object(_) | Value::Null => errors.push(Error::validation(
                "Each resource must contain a type key.",
                path.clone(),
            )),
            other => errors.push(Error::validation(
                format!(
                    "\"resources\" must contain a map of resource maps. Found a [{}] instead",
                    python_class(other)
                ),
                path.clone(),
            )),
        }
        if name.contains('/') {
            errors.push(Error::validation(
                "Resource name may not contain \"/\"",
                path.clone(),
            ));
        }
    }
}

/// A resource's `type`: present, a non-empty string.
fn check_resource_type(name: &str, ty: Option<&Value>, path: &Path, errors: &mut Vec<Error>) {
    match ty {
        None => errors.push(Error::validation(
            "Each resource must contain a type key.",
            path.clone(),
        )),
        Some(Value::String(s)) if s.is_empty() => errors.push(Error::validation(
            format!("Resource \"{name}\" has no type"),
            path.key("type"),
        )),
        Some(Value::String(_)) => {}
        Some(Value::Null) => errors.push(Error::validation(
            "Each Resource must contain a Type key.",
            path.key("type"),
        )),
        Some(_) => errors.push(Error::validation(
            format!("Resource {name} type type must be string"),
            path.key("type"),
        )),
    }
}

/// Parameters: each one's schema.
fn parse_parameters(
    params_raw: &Map<String, Value>,
    version: Version,
    errors: &mut Vec<Error>,
) -> IndexMap<String, ParameterSchema> {
    let mut parameters = IndexMap::new();
    for (name, v) in params_raw {
        let path = Path::keys(["parameters", name.as_str()]);
        match ParameterSchema::parse(name, v, version, &path) {
            Ok(s) => {
                parameters.insert(name.clone(), s);
            }
            Err(e) => errors.push(e),
        }
    }
    parameters
}

/// Conditions (only in versions that have them): a map of condition
/// expressions.
fn parse_conditions(parser: &mut ExprParser<'_>, section: Option<Value>) -> IndexMap<String, Expr> {
    let mut conditions = IndexMap::new();
    if !parser.version.has_conditions() {
        return conditions;
    }
    match section {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (name, c) in m {
                let path = Path::keys(["conditions", name.as_str()]);
                let e = parser.parse_owned(c, &path, Context::Condition);
                conditions.insert(name, e);
            }
        }
        Some(other) => parser.errors.push(Error::new(
            ErrorKind::StackValidationFailed,
            format!(
                "Conditions validation error: Condition definitions must be a map. Found a {} instead",
                python_class(&other)
            ),
            Path::keys(["conditions"]),
        )),
    }
    conditions
}

/// Resource definitions (those that are maps; the others were reported
/// by [`check_resource_shapes`]).
fn parse_resources(
    parser: &mut ExprParser<'_>,
    section: Option<Value>,
) -> IndexMap<String, ResourceTemplate> {
    let mut resources = IndexMap::new();
    let Some(Value::Object(section)) = section else {
        return resources;
    };
    for (name, r) in section {
        let Value::Object(m) = r else { continue };
        let r = parse_resource(parser, &name, m);
        resources.insert(name, r);
    }
    resources
}

/// One resource definition: its expressions parsed, the types of its
/// other fields checked.
fn parse_resource(
    parser: &mut ExprParser<'_>,
    name: &str,
    mut m: Map<String, Value>,
) -> ResourceTemplate {
    let path = Path::keys(["resources", name]);
    let mut field = |parser: &mut ExprParser<'_>, key: &str, ctx: Context| {
        m.remove(key)
            .map(|v| parser.parse_owned(v, &path.key(key), ctx))
    };
    let properties = field(parser, "properties", Context::Normal);
    let metadata = field(parser, "metadata", Context::Normal);
    let deletion_policy = field(parser, "deletion_policy", Context::Normal);
    let update_policy = field(parser, "update_policy", Context::Normal);
    let external_id = field(parser, "external_id", Context::Normal);
    let condition = field(parser, "condition", Context::Condition);
    for (key, e) in [
        ("properties", &properties),
        ("metadata", &metadata),
        ("update_policy", &update_policy),
    ] {
        if let Some(Expr::Lit(v)) = e {
            if !(v.is_object() || v.is_null()) {
                parser.errors.push(Error::validation(
                    format!("Resource {name} {key} type must be object"),
                    path.key(key),
                ));
            }
        }
    }
    let depends_on = resource_depends_on(parser, name, m.get("depends_on"), &path);
    let description = match m.get("description") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            parser.errors.push(Error::validation(
                format!("Resource {name} description type must be string"),
                path.key("description"),
            ));
            None
        }
    };
    if let Some(Expr::Lit(v)) = &condition {
        if !(v.is_string() || v.is_boolean()) {
            parser.errors.push(Error::validation(
                format!("Resource {name} condition type must be string_or_boolean"),
                path.key("condition"),
            ));
        }
    }
    ResourceTemplate {
        name: name.to_string(),
        type_name: m
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        properties,
        metadata,
        depends_on,
        deletion_policy,
        update_policy,
        description,
        condition,
        external_id,
    }
}

/// A resource's `depends_on`: a string or a list of strings (the list is
/// cut at its first non-string).
fn resource_depends_on(
    parser: &mut ExprParser<'_>,
    name: &str,
    depends_on: Option<&Value>,
    path: &Path,
) -> Vec<String> {
    match depends_on {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => {
            let mut out = Vec::new();
            for d in a {
                match d {
                    Value::String(s) => out.push(s.clone()),
                    _ => {
                        parser.errors.push(Error::validation(
                            format!("Resource {name} depends_on must be a list of strings"),
                            path.key("depends_on"),
                        ));
                        break;
                    }
                }
            }
            out
        }
        Some(_) => {
            parser.errors.push(Error::validation(
                format!("Resource {name} depends_on type must be list or string"),
                path.key("depends_on"),
            ));
            Vec::new()
        }
    }
}

/// Outputs: each a map with a `value` (and a `condition` in versions
/// that have them); other keywords are strict findings only.
fn parse_outputs(
    parser: &mut ExprParser<'_>,
    section: Option<Value>,
) -> IndexMap<String, OutputTemplate> {
    let mut outputs = IndexMap::new();
    match section {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (name, o) in m {
                if let Some(out) = parse_output(parser, &name, o) {
                    outputs.insert(name, out);
                }
            }
        }
        Some(other) => parser.errors.push(Error::validation(
            format!(
                "\"outputs\" must contain a map of output maps. Found a [{}] instead",
                python_class(&other)
            ),
            Path::keys(["outputs"]),
        )),
    }
    outputs
}

/// One output definition, or `None` after Heat's error (not a map, no
/// `value`).
fn parse_output(parser: &mut ExprParser<'_>, name: &str, o: Value) -> Option<OutputTemplate> {
    let version = parser.version;
    let mut out_keys = vec!["description", "value"];
    if version.has_conditions() {
        out_keys.push("condition");
    }
    let path = Path::keys(["outputs", name]);
    let Value::Object(mut om) = o else {
        parser.errors.push(Error::validation(
            format!(
                "Output validation error: outputs.{name}: Output definitions must be a map. Found a {} instead",
                python_class(&o)
            ),
            path.clone(),
        ));
        return None;
    };
    // Heat never checks output keywords when validating
    // or creating: a misspelt one is a strict finding.
    for k in om.keys() {
        if !out_keys.contains(&k.as_str()) {
            parser.strict.push(Error::validation(
                format!(
                    "\"{k}\" is not a valid keyword inside an output definition (Heat ignores it)"
                ),
                path.key(k.as_str()),
            ));
        }
    }
    let Some(v) = om.remove("value") else {
        parser.errors.push(Error::validation(
            format!("Output validation error: outputs.{name}: Each output definition must contain a value key."),
            path.clone(),
        ));
        return None;
    };
    let condition = om
        .remove("condition")
        .filter(|c| !c.is_null() && version.has_conditions())
        .map(|c| parser.parse_owned(c, &path.key("condition"), Context::Condition));
    let value = parser.parse_owned(v, &path.key("value"), Context::Normal);
    Some(OutputTemplate {
        name: name.to_string(),
        value,
        description: om.get("description").map(py_str),
        condition,
    })
}

/// Names shared by a parameter and a resource.
fn check_duplicate_names(
    parameters: &IndexMap<String, ParameterSchema>,
    resources: &IndexMap<String, ResourceTemplate>,
    errors: &mut Vec<Error>,
) {
    let dups: Vec<&String> = parameters
        .keys()
        .filter(|p| resources.contains_key(*p))
        .collect();
    if let Some(first) = dups.first() {
        let names = dups
            .iter()
            .map(|d| format!("'{d}'"))
            .collect::<Vec<_>>()
            .join(", ");
        errors.push(Error::validation(
            format!("Duplicate names {{{names}}}"),
            Path::keys(["resources", first.as_str()]),
        ));
    }
}

/// Python's `type(v)` as Heat puts it in messages.
pub(crate) fn python_class(v: &Value) -> &'static str {
    match v {
        Value::Null => "<class 'NoneType'>",
        Value::Bool(_) => "<class 'bool'>",
        Value::Number(n) if n.is_f64() => "<class 'float'>",
        Value::Number(_) => "<class 'int'>",
        Value::String(_) => "<class 'str'>",
        Value::Array(_) => "<class 'list'>",
        Value::Object(_) => "<class 'dict'>",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections_in_order() {
        let t = Template::parse(
            "heat_template_version: 2016-10-14\ndescription: d\nparameters:\n  b: {type: string}\n  a: {type: number, default: 1}\nresources:\n  z: {type: OS::Heat::None}\n  y: {type: OS::Heat::None, depends_on: z}\noutputs:\n  o: {value: {get_attr: [y, show]}}\n",
        )
        .unwrap();
        assert_eq!(t.version, Version::V2016_10_14);
        assert_eq!(t.parameters.keys().collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(t.resources.keys().collect::<Vec<_>>(), ["z", "y"]);
        assert_eq!(t.resources["y"].depends_on, ["z"]);
        assert!(matches!(t.outputs["o"].value, Expr::Call(_)));
    }

    #[test]
    fn unknown_version_lists_accepted_ones() {
        let e = Template::parse("heat_template_version: 2099-01-01\n").unwrap_err();
        let e = e.first().unwrap();
        assert_eq!(e.kind, ErrorKind::InvalidTemplateVersion);
        assert!(e.message.starts_with("The template version is invalid: \"heat_template_version: 2099-01-01\". \"heat_template_version\" should be one of: 2013-05-23, 2014-10-16"), "{}", e.message);
        assert!(e.message.ends_with("rocky, wallaby"));
        assert_eq!(e.position.map(|p| p.line), Some(1));
    }

    #[test]
    fn structure_errors_name_the_place() {
        let e = Template::parse(
            "heat_template_version: 2015-04-30\nresources:\n  a:\n    type: OS::Heat::None\n    propertes: {}\nfoo: 1\n",
        )
        .unwrap_err();
        let msgs: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert!(
            msgs.iter()
                .any(|m| m == "line 6:1: foo: The template section is invalid: foo"),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("5:5") && m.contains("\"propertes\" is not a valid keyword")),
            "{msgs:?}"
        );
    }

    #[test]
    fn conditions_only_from_newton() {
        let e = Template::parse("heat_template_version: 2016-04-08\nconditions: {}\n").unwrap_err();
        assert_eq!(e.first().unwrap().kind, ErrorKind::InvalidTemplateSection);
        assert!(Template::parse("heat_template_version: newton\nconditions: {}\n").is_ok());
    }
}

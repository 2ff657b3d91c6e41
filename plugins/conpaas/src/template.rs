//! The HOT templates of `templates/conpaas/`, and the agents template
//! generated from them.
//!
//! * `manager.yaml`: the application manager stack, sent as written with
//!   the application's parameters.
//! * `agents.yaml`: one cloud's agents. As written it is a valid template
//!   of one node; the resources named `agent_*` and the output
//!   `agent_address` are that node's pattern. For a cloud's nodes the
//!   pattern is copied once per node, its resources renamed
//!   `<service>_<role>_<index>_*` (references rewritten) and the `node_*`
//!   parameters replaced by the node's values; the node addresses become
//!   one output per service and role, `conpaas.agents.<cloud>.<service>.<role>`.
//! * `manager-context.sh`, `agent-context.sh`: the contextualisation
//!   scripts (`get_file`), passed to Heat in `files`.
//!
//! Everything is parsed and validated with the `heat` engine when the
//! plugin is built, and every template the plugin sends is checked with
//! its parameter values first.

use std::collections::BTreeMap;

use heat::{Environment, Files, Options, ParameterValues, StackIdentity};
use serde_json::{json, Map, Value};

use crate::service_type::RoleCounts;
use crate::topology::Services;

/// `templates/conpaas/manager.yaml`.
pub const MANAGER_YAML: &str = include_str!("../../../templates/conpaas/manager.yaml");
/// `templates/conpaas/agents.yaml`.
pub const AGENTS_YAML: &str = include_str!("../../../templates/conpaas/agents.yaml");
/// `templates/conpaas/manager-context.sh`.
pub const MANAGER_CONTEXT: &str = include_str!("../../../templates/conpaas/manager-context.sh");
/// `templates/conpaas/agent-context.sh`.
pub const AGENT_CONTEXT: &str = include_str!("../../../templates/conpaas/agent-context.sh");

const PATTERN_RESOURCE: &str = "agent_";
const PATTERN_OUTPUT: &str = "agent_address";
const NODE_PARAMETER: &str = "node_";
/// Heat's default `max_template_size`.
pub const MAX_TEMPLATE_BYTES: usize = 524_288;

/// A template the plugin cannot use (a bug in `templates/conpaas/`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {name}: {message}")]
pub struct TemplateError {
    /// Template file name.
    pub name: &'static str,
    /// What is wrong.
    pub message: String,
}

/// A template the plugin would send that Heat would refuse (with these
/// parameter values), or too large for Heat.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The manager stack: Heat's messages.
    #[error("manager template: {0}")]
    Manager(heat::Errors),
    /// One cloud's agents stack: Heat's messages.
    #[error("agents template for cloud '{cloud}': {errors}")]
    Agents {
        /// The cloud.
        cloud: String,
        /// Heat's messages.
        errors: heat::Errors,
    },
    /// One cloud's agents document cannot be written as JSON.
    #[error("agents template for cloud '{cloud}': {source}")]
    Encode {
        /// The cloud.
        cloud: String,
        /// Why.
        source: serde_json::Error,
    },
    /// One cloud's agents template exceeds Heat's `max_template_size`.
    #[error("agents template for cloud '{cloud}': {bytes} bytes, more than Heat's max_template_size ({MAX_TEMPLATE_BYTES}); place fewer nodes on this cloud")]
    TooLarge {
        /// The cloud.
        cloud: String,
        /// The template's size.
        bytes: usize,
    },
}

/// A template ready for the backend: text, every parameter, files.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    /// The template text.
    pub template: String,
    /// Every parameter value.
    pub parameters: BTreeMap<String, String>,
    /// The `files` map (`get_file` targets).
    pub files: BTreeMap<String, String>,
}

impl Rendered {
    /// A short digest of everything sent, to tell whether a stack needs
    /// an update (FNV-1a; stable across builds).
    pub fn digest(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for b in bytes.iter().chain([0xffu8].iter()) {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        eat(self.template.as_bytes());
        for (k, v) in &self.parameters {
            eat(k.as_bytes());
            eat(v.as_bytes());
        }
        for (k, v) in &self.files {
            eat(k.as_bytes());
            eat(v.as_bytes());
        }
        format!("{h:016x}")
    }

    /// The template as Heat resolves it with these parameters: conditions
    /// applied, `get_file`, `get_param` and `str_replace` evaluated (the
    /// boot scripts as the VMs receive them); `get_resource` and
    /// `get_attr` left as they are.
    pub fn resolve(&self) -> Result<Value, heat::Errors> {
        let parsed = heat::StackTemplate::parse(
            &self.template,
            Environment::new(),
            self.files.clone(),
            Options::default(),
        )?;
        let values: ParameterValues = self
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        parsed
            .render(&values, &heat::RenderOptions::default())
            .map(|r| r.template)
    }
}

/// One group of identical nodes on a cloud.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeGroup {
    /// Service name.
    pub service: String,
    /// Service type name.
    pub service_type: &'static str,
    /// Agent type.
    pub agent_type: &'static str,
    /// Role.
    pub role: String,
    /// How many.
    pub count: u32,
}

/// The node groups of one cloud, in a stable order.
pub fn node_groups(services: &Services, on_cloud: &BTreeMap<String, RoleCounts>) -> Vec<NodeGroup> {
    let mut groups = Vec::new();
    for (service, roles) in on_cloud {
        let Some(spec) = services.get(service) else {
            continue;
        };
        // roles in the type's order, so names and outputs read naturally
        for role in spec.service_type.roles() {
            if let Some(n) = roles.get(role.name).filter(|n| **n > 0) {
                groups.push(NodeGroup {
                    service: service.clone(),
                    service_type: spec.service_type.name(),
                    agent_type: spec.service_type.agent_type(),
                    role: role.name.to_string(),
                    count: *n,
                });
            }
        }
    }
    groups
}

/// The output key of one service role's node addresses on `cloud`.
pub fn agents_output_key(cloud: &str, service: &str, role: &str) -> String {
    format!("conpaas.agents.{cloud}.{service}.{role}")
}

/// The name of node `index`'s resource `part` (`server`, `port`, ...).
pub fn node_resource_name(service: &str, role: &str, index: u32, part: &str) -> String {
    format!("{service}_{role}_{index}_{part}")
}

/// The parsed templates.
#[derive(Debug)]
pub struct Templates {
    manager: heat::StackTemplate,
    manager_files: Files,
    agents_files: Files,
    /// `agents.yaml` without the pattern (parameters, conditions, shared resources).
    agents_base: Value,
    /// The pattern resources, by name.
    pattern: Map<String, Value>,
    /// The pattern output's value.
    pattern_output: Value,
}

fn parse(
    name: &'static str,
    text: &str,
    files: &Files,
) -> Result<heat::StackTemplate, TemplateError> {
    let invalid = |e: heat::Errors| TemplateError {
        name,
        message: e.to_string(),
    };
    let t = heat::StackTemplate::parse(text, Environment::new(), files.clone(), Options::default())
        .map_err(invalid)?;
    t.validate(&ParameterValues::new()).map_err(invalid)?;
    Ok(t)
}

/// Checks `params` against `template` as Heat does when it creates the
/// stack; the error is Heat's message, with its path.
fn check(
    template: &heat::StackTemplate,
    params: &BTreeMap<String, String>,
) -> Result<(), heat::Errors> {
    let values: ParameterValues = params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    template
        .define(&values, &StackIdentity::default())
        .map(|_| ())
}

impl Templates {
    /// Loads and validates `templates/conpaas/`.
    pub fn load() -> Result<Templates, TemplateError> {
        let manager_files = Files::from([(
            "manager-context.sh".to_string(),
            MANAGER_CONTEXT.to_string(),
        )]);
        let agents_files =
            Files::from([("agent-context.sh".to_string(), AGENT_CONTEXT.to_string())]);
        let manager = parse("manager.yaml", MANAGER_YAML, &manager_files)?;
        parse("agents.yaml", AGENTS_YAML, &agents_files)?;
        let bad = |message: String| TemplateError {
            name: "agents.yaml",
            message,
        };
        // The document as data, to copy the node pattern from (the heat
        // engine above has checked it).
        let mut base: Value = serde_yaml::from_str(AGENTS_YAML).map_err(|e| bad(e.to_string()))?;
        let resources = base
            .get_mut("resources")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| bad("no resources".into()))?;
        let names: Vec<String> = resources.keys().cloned().collect();
        let mut pattern = Map::new();
        for name in names {
            if name.starts_with(PATTERN_RESOURCE) {
                if let Some(r) = resources.remove(&name) {
                    pattern.insert(name, r);
                }
            }
        }
        if !pattern.contains_key("agent_server") {
            return Err(bad("the node pattern has no agent_server".into()));
        }
        let pattern_output = base
            .get_mut("outputs")
            .and_then(Value::as_object_mut)
            .and_then(|o| o.remove(PATTERN_OUTPUT))
            .and_then(|o| o.get("value").cloned())
            .ok_or_else(|| bad(format!("no output {PATTERN_OUTPUT}")))?;
        if let Some(params) = base.get_mut("parameters").and_then(Value::as_object_mut) {
            params.retain(|name, _| !name.starts_with(NODE_PARAMETER));
        }
        Ok(Templates {
            manager,
            manager_files,
            agents_files,
            agents_base: base,
            pattern,
            pattern_output,
        })
    }

    /// The manager stack with `params`, checked.
    pub fn manager(&self, params: BTreeMap<String, String>) -> Result<Rendered, RenderError> {
        check(&self.manager, &params).map_err(RenderError::Manager)?;
        Ok(Rendered {
            template: MANAGER_YAML.to_string(),
            parameters: params,
            files: self.manager_files.clone(),
        })
    }

    /// The agents stack of `cloud` for `groups`, with `params` (the cloud's
    /// stack parameters and `manager_ip`), checked.
    pub fn agents(
        &self,
        cloud: &str,
        application: &str,
        groups: &[NodeGroup],
        params: BTreeMap<String, String>,
    ) -> Result<Rendered, RenderError> {
        let doc = self.agents_document(cloud, application, groups);
        let refused = |errors| RenderError::Agents {
            cloud: cloud.to_string(),
            errors,
        };
        let text = serde_json::to_string(&doc).map_err(|source| RenderError::Encode {
            cloud: cloud.to_string(),
            source,
        })?;
        if text.len() > MAX_TEMPLATE_BYTES {
            return Err(RenderError::TooLarge {
                cloud: cloud.to_string(),
                bytes: text.len(),
            });
        }
        // Checked from the document itself: the text is its JSON form.
        let template = heat::Template::from_value(doc, Some("agents")).map_err(refused)?;
        let parsed = heat::StackTemplate::new(
            template,
            Environment::new(),
            self.agents_files.clone(),
            Options::default(),
        )
        .map_err(refused)?;
        check(&parsed, &params).map_err(refused)?;
        Ok(Rendered {
            template: text,
            parameters: params,
            files: self.agents_files.clone(),
        })
    }

    /// The agents template document of `cloud` (not yet checked).
    pub fn agents_document(&self, cloud: &str, application: &str, groups: &[NodeGroup]) -> Value {
        let mut doc = self.agents_base.clone();
        let summary: Vec<String> = groups
            .iter()
            .map(|g| format!("{} ({}) {} x{}", g.service, g.service_type, g.role, g.count))
            .collect();
        doc["description"] = json!(format!(
            "ConPaaS agents of application '{application}' on cloud '{cloud}': {}. Generated by occi-so from templates/conpaas/agents.yaml.",
            summary.join(", ")
        ));
        let mut resources = doc
            .get("resources")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut outputs = doc
            .get("outputs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for g in groups {
            let mut addresses = Vec::new();
            for index in 0..g.count {
                let node = Node {
                    group: g,
                    index,
                    pattern: &self.pattern,
                };
                for (name, body) in &self.pattern {
                    resources.insert(node.rename(name), node.rewrite(body));
                }
                addresses.push(node.rewrite(&self.pattern_output));
            }
            outputs.insert(
                agents_output_key(cloud, &g.service, &g.role),
                json!({
                    "description": format!("Public addresses of the '{}' nodes of service '{}' on cloud '{cloud}'", g.role, g.service),
                    "value": addresses,
                }),
            );
        }
        doc["resources"] = Value::Object(resources);
        doc["outputs"] = Value::Object(outputs);
        doc
    }
}

/// One node being stamped from the pattern.
struct Node<'a> {
    group: &'a NodeGroup,
    index: u32,
    pattern: &'a Map<String, Value>,
}

impl Node<'_> {
    fn rename(&self, pattern_name: &str) -> String {
        let part = pattern_name
            .strip_prefix(PATTERN_RESOURCE)
            .unwrap_or(pattern_name);
        node_resource_name(&self.group.service, &self.group.role, self.index, part)
    }

    fn renamed(&self, name: &Value) -> Value {
        match name.as_str() {
            Some(n) if self.pattern.contains_key(n) => Value::String(self.rename(n)),
            _ => name.clone(),
        }
    }

    fn parameter(&self, name: &str) -> Option<String> {
        let g = self.group;
        match name.strip_prefix(NODE_PARAMETER)? {
            "service" => Some(g.service.clone()),
            "type" => Some(g.service_type.to_string()),
            "agent_type" => Some(g.agent_type.to_string()),
            "role" => Some(g.role.clone()),
            "index" => Some(self.index.to_string()),
            _ => None,
        }
    }

    /// The pattern snippet for this node: `node_*` parameters by value,
    /// references to pattern resources renamed.
    fn rewrite(&self, v: &Value) -> Value {
        match v {
            Value::Object(m) if m.len() == 1 => {
                let (key, arg) = m
                    .iter()
                    .next()
                    .map(|(k, a)| (k.as_str(), a))
                    .unwrap_or(("", v));
                match (key, arg) {
                    ("get_param", Value::String(p)) => match self.parameter(p) {
                        Some(value) => Value::String(value),
                        None => v.clone(),
                    },
                    ("get_resource", name) => json!({"get_resource": self.renamed(name)}),
                    ("get_attr", Value::Array(args)) if !args.is_empty() => {
                        let mut args: Vec<Value> = args.iter().map(|a| self.rewrite(a)).collect();
                        args[0] = self.renamed(&args[0]);
                        json!({"get_attr": args})
                    }
                    _ => Value::Object(
                        m.iter()
                            .map(|(k, x)| (k.clone(), self.rewrite(x)))
                            .collect(),
                    ),
                }
            }
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| {
                        let x = if k == "depends_on" {
                            match x {
                                Value::Array(names) => {
                                    Value::Array(names.iter().map(|n| self.renamed(n)).collect())
                                }
                                one => self.renamed(one),
                            }
                        } else {
                            self.rewrite(x)
                        };
                        (k.clone(), x)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(|x| self.rewrite(x)).collect()),
            other => other.clone(),
        }
    }
}

//! A read-only view of one (possibly nested) stack's resources, answering
//! `get_resource` and `get_attr` for the heat crate's evaluator as Heat's
//! resources do: a resource that does not exist yet gives its name as its
//! reference and `null` attributes.

use heat::Resolver;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::config::EmbeddedConfig;
use super::kinds;
use super::pool::Pools;
use super::state::{ResourceState, Tree};

/// What every view needs from the engine.
pub(crate) struct Env<'a> {
    /// The configuration.
    pub config: &'a EmbeddedConfig,
    /// The address pools.
    pub pools: &'a Pools,
}

/// One stack's resources, with the root stack for lookups across nested
/// stacks (a port in a member template on a network of the parent).
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    /// Configuration and pools.
    pub env: &'a Env<'a>,
    /// The project.
    pub project: &'a str,
    /// This stack's name.
    pub stack_name: &'a str,
    /// This stack's id.
    pub stack_id: &'a Uuid,
    /// This stack's resources.
    pub tree: &'a Tree,
    /// The outermost stack's resources.
    pub root: &'a Tree,
}

impl<'a> View<'a> {
    /// The view of `resource`'s nested stack.
    pub(crate) fn nested(&self, resource: &'a ResourceState) -> Option<View<'a>> {
        let n = resource.nested()?;
        Some(View {
            stack_name: &n.name,
            stack_id: &n.id,
            tree: &n.tree,
            ..*self
        })
    }

    /// The physical id of `r` as Heat shows it.
    pub(crate) fn physical_id(&self, r: &ResourceState) -> String {
        r.physical.render(self.stack_name, &r.name)
    }

    fn live(&self, name: &str) -> Option<&'a ResourceState> {
        self.tree.get(name).filter(|r| r.exists())
    }
}

impl Resolver for View<'_> {
    fn resource_id(&self, resource: &str) -> Value {
        match self.live(resource) {
            Some(r) => kinds::reference(self, r),
            None => Value::String(resource.to_string()),
        }
    }

    fn attribute(&self, resource: &str, attribute: &str) -> Value {
        match self.live(resource) {
            Some(r) => kinds::attribute(self, r, attribute, &[]),
            None => Value::Null,
        }
    }

    fn attribute_path(&self, resource: &str, attribute: &str, path: &[Value]) -> Value {
        match self.live(resource) {
            Some(r) => kinds::attribute(self, r, attribute, path),
            None => Value::Null,
        }
    }

    fn all_attributes(&self, resource: &str) -> Value {
        match self.live(resource) {
            Some(r) => kinds::all_attributes(self, r),
            None => Value::Object(Map::new()),
        }
    }

    fn availability_zones(&self) -> Vec<String> {
        vec!["nova".to_string()]
    }
}

/// A resolver for checks before a stack exists: `get_resource` and
/// `get_attr` give [`UNKNOWN`], so a check can tell "not known yet" from a
/// value.
pub(crate) struct Probe;

/// What [`Probe`] answers for values only known at run time.
pub(crate) const UNKNOWN: &str = "\u{1}occi-so:unknown\u{1}";

/// Whether a value (or any string inside it) depends on run-time values.
pub(crate) fn is_unknown(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains(UNKNOWN),
        Value::Array(a) => a.iter().any(is_unknown),
        Value::Object(m) => m.values().any(is_unknown),
        _ => false,
    }
}

impl Resolver for Probe {
    fn resource_id(&self, _resource: &str) -> Value {
        Value::String(UNKNOWN.into())
    }
    fn attribute(&self, _resource: &str, _attribute: &str) -> Value {
        Value::String(UNKNOWN.into())
    }
    fn attribute_path(&self, _resource: &str, _attribute: &str, _path: &[Value]) -> Value {
        Value::String(UNKNOWN.into())
    }
    fn all_attributes(&self, _resource: &str) -> Value {
        Value::String(UNKNOWN.into())
    }
}

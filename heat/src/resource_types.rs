//! The resource types a Heat knows: the registry hook that decides which
//! `type:` names are accepted, and (when known) each type's property and
//! attribute names so that `Unknown Property` and bad `get_attr` names are
//! caught as Heat catches them.
//!
//! [`ResourceTypes::heat`] is the full set of a stock OpenStack Heat 27
//! (generated from Heat itself by `heat/tools/heat_resource_types.py`);
//! an embedded engine that implements fewer types builds its own set with
//! [`ResourceTypes::new`] and [`ResourceTypes::insert`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde::Deserialize;

/// One property of a resource type.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PropertySchema {
    /// Heat's property type (`string`, `integer`, `number`, `boolean`,
    /// `list`, `map`).
    #[serde(rename = "type")]
    pub ty: String,
    /// Must be given when creating.
    #[serde(default)]
    pub required: bool,
    /// May change without replacing the resource.
    #[serde(default)]
    pub update_allowed: bool,
    /// A `list` property also takes a comma-delimited string, a `map`
    /// property a string or a list (Heat's `allow_conversion`).
    #[serde(default)]
    pub allow_conversion: bool,
}

/// What is known about one resource type.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct TypeSchema {
    /// Its properties; `None` accepts any property (as `OS::Heat::None` does).
    #[serde(default)]
    pub properties: Option<BTreeMap<String, PropertySchema>>,
    /// Its attribute names; `None` accepts any attribute.
    #[serde(default)]
    pub attributes: Option<BTreeSet<String>>,
    /// Heat's support status (`SUPPORTED`, `DEPRECATED`, `HIDDEN`...).
    #[serde(default)]
    pub status: Option<String>,
}

/// The set of resource types a Heat (real or embedded) implements, and
/// the aliases of its global environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceTypes {
    types: BTreeMap<String, TypeSchema>,
    global: crate::environment::ResourceRegistry,
    any: bool,
}

#[derive(Deserialize)]
struct Dump {
    heat_version: String,
    #[serde(default)]
    global_resource_registry: serde_json::Map<String, serde_json::Value>,
    resource_types: BTreeMap<String, TypeSchema>,
}

static HEAT: OnceLock<(ResourceTypes, String)> = OnceLock::new();
static ANY: OnceLock<ResourceTypes> = OnceLock::new();

/// Types whose attributes Heat computes at run time from names it cannot
/// list up front (group members, nested outputs, any name at all).
const DYNAMIC_ATTRIBUTES: &[&str] = &[
    "OS::Heat::None",
    "OS::Heat::ResourceGroup",
    "OS::Heat::AutoScalingGroup",
    "OS::Heat::ResourceChain",
    "OS::Heat::SoftwareDeployment",
    "OS::Heat::SoftwareDeploymentGroup",
    "OS::Heat::StructuredDeployment",
    "OS::Heat::StructuredDeploymentGroup",
    "OS::Heat::SoftwareDeployments",
    "OS::Heat::StructuredDeployments",
    "OS::Heat::Stack",
    "OS::Heat::TestResource",
    "AWS::CloudFormation::Stack",
];

/// Types whose Heat resource class can take a snapshot before it is deleted
/// (Heat 27's classes with `handle_snapshot_delete`: servers and volumes);
/// `deletion_policy: Snapshot` is refused on any other.
const SNAPSHOT_TYPES: &[&str] = &[
    "OS::Nova::Server",
    "OS::Heat::DeployedServer",
    "OS::Cinder::Volume",
    "AWS::EC2::Volume",
];

impl ResourceTypes {
    /// An empty set: every type is unknown.
    pub fn new() -> Self {
        ResourceTypes::default()
    }

    /// Accepts every type name, checking no properties or attributes (for
    /// validating a template without knowing the target cloud).
    pub fn any() -> &'static ResourceTypes {
        ANY.get_or_init(|| ResourceTypes {
            types: BTreeMap::new(),
            global: Default::default(),
            any: true,
        })
    }

    /// Every type a stock OpenStack Heat 27 implements, with property and
    /// attribute names (hidden, retired types included: Heat still accepts them).
    pub fn heat() -> &'static ResourceTypes {
        &heat_dump().0
    }

    /// [`ResourceTypes::heat`] behind a shared pointer (what [`crate::Options`] holds).
    pub fn heat_shared() -> std::sync::Arc<ResourceTypes> {
        static SHARED: OnceLock<std::sync::Arc<ResourceTypes>> = OnceLock::new();
        SHARED
            .get_or_init(|| std::sync::Arc::new(ResourceTypes::heat().clone()))
            .clone()
    }

    /// The Heat release [`ResourceTypes::heat`] was generated from.
    pub fn heat_version() -> &'static str {
        &heat_dump().1
    }

    /// Adds (or replaces) a type.
    pub fn insert(&mut self, name: impl Into<String>, schema: TypeSchema) {
        self.types.insert(name.into(), schema);
    }

    /// A set of just these names, with no schemas.
    pub fn from_names<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut t = ResourceTypes::new();
        for n in names {
            t.insert(n, TypeSchema::default());
        }
        t
    }

    /// This set restricted to `names` (e.g. what an embedded engine
    /// implements); the global aliases are kept.
    pub fn subset<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut t = ResourceTypes::new();
        t.global = self.global.clone();
        for n in names {
            if let Some(s) = self.types.get(n) {
                t.insert(n, s.clone());
            }
        }
        t
    }

    /// Heat's global environment: aliases every stack sees after its own
    /// environment's (a stock Heat maps `OS::Ceilometer::Alarm` to
    /// `OS::Aodh::Alarm`, `OS::Quantum*` to `OS::Neutron*`...).
    pub fn global_registry(&self) -> &crate::environment::ResourceRegistry {
        &self.global
    }

    /// Replaces the global environment's registry.
    pub fn set_global_registry(&mut self, registry: crate::environment::ResourceRegistry) {
        self.global = registry;
    }

    /// True when the type is implemented.
    pub fn contains(&self, name: &str) -> bool {
        self.any || self.types.contains_key(name)
    }

    /// What is known about a type.
    pub fn schema(&self, name: &str) -> Option<&TypeSchema> {
        self.types.get(name)
    }

    /// The type names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.types.keys().map(String::as_str)
    }

    /// Whether `attribute` can be asked of a resource of type `name`
    /// (unknown types and types with run-time attributes accept any).
    pub fn has_attribute(&self, name: &str, attribute: &str) -> bool {
        if DYNAMIC_ATTRIBUTES.contains(&name) {
            return true;
        }
        match self.types.get(name).and_then(|s| s.attributes.as_ref()) {
            Some(a) => a.contains(attribute),
            None => true,
        }
    }

    /// Whether a resource of type `name` supports `deletion_policy:
    /// Snapshot` (a set that accepts any type accepts this too).
    pub fn can_snapshot(&self, name: &str) -> bool {
        self.any || SNAPSHOT_TYPES.contains(&name)
    }

    /// Whether `property` is one of type `name`'s properties (unknown types,
    /// `OS::Heat::None` and schemaless types accept any).
    pub fn has_property(&self, name: &str, property: &str) -> bool {
        match self.types.get(name).and_then(|s| s.properties.as_ref()) {
            Some(p) => p.contains_key(property),
            None => true,
        }
    }
}

fn heat_dump() -> &'static (ResourceTypes, String) {
    HEAT.get_or_init(|| {
        let text = include_str!("../data/heat-resource-types.json");
        match serde_json::from_str::<Dump>(text) {
            Ok(d) => (
                ResourceTypes {
                    types: d.resource_types,
                    global: crate::environment::ResourceRegistry::from_map(
                        &d.global_resource_registry,
                    )
                    .unwrap_or_default(),
                    any: false,
                },
                d.heat_version,
            ),
            Err(_) => (ResourceTypes::default(), String::from("unknown")),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_27_types_are_embedded() {
        let t = ResourceTypes::heat();
        assert!(t.contains("OS::Nova::Server"));
        assert!(t.contains("OS::Heat::RandomString"));
        assert!(!t.contains("OS::Heat::Nope"));
        assert!(ResourceTypes::heat_version().starts_with("27."));
        assert!(t.has_property("OS::Heat::RandomString", "length"));
        assert!(!t.has_property("OS::Heat::RandomString", "lenght"));
        assert!(t.has_property("OS::Heat::None", "anything"));
        assert!(t.has_attribute("OS::Heat::RandomString", "value"));
        assert!(!t.has_attribute("OS::Heat::RandomString", "nope"));
        assert!(ResourceTypes::any().contains("Whatever::Type"));
    }
}

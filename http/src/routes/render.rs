//! From the framework's model to the OCCI model: instances to resources,
//! kinds and actions to categories.
//!
//! Besides the caller's attributes (secret ones never rendered) and what
//! the plugin reports (`occi.mcn.stack.id`, `occi.mcn.stack.state`, every
//! stack output), an instance shows its lifecycle:
//!
//! * `occi.so.phase`: `initialised`, `deployed` or `provisioned`;
//! * `occi.so.operation`: the operation running now (only while one runs);
//! * `occi.so.error`, `occi.so.error.operation`: the last failure and the
//!   operation it ended (until an operation succeeds).

use occi::{AttributeDef, Category, CategoryClass, Link, Resource, Value};
use occi_so_sdk::{AttributeSpec, AttributeType, Attributes, StateReport, MCN_SERVICE_SCHEME};

use occi_so_framework::lifecycle::ActionRef;
use occi_so_framework::registry::Binding;
use occi_so_framework::schema::{CORE_ID, CORE_SUMMARY, CORE_TITLE};
use occi_so_framework::store::{Instance, LinkRecord};

/// `occi.so.phase`.
pub(super) const SO_PHASE: &str = "occi.so.phase";
/// `occi.so.operation`.
pub(super) const SO_OPERATION: &str = "occi.so.operation";
/// `occi.so.error`.
pub(super) const SO_ERROR: &str = "occi.so.error";
/// `occi.so.error.operation`.
pub(super) const SO_ERROR_OPERATION: &str = "occi.so.error.operation";

/// The built-in MCN actions: term and title.
pub(super) const MCN_ACTIONS: [(&str, &str); 3] = [
    ("deploy", "Deploy the service: create its stacks"),
    ("provision", "Provision the deployed service"),
    (
        "notify",
        "Runtime notification for the service (e.g. a monitoring alarm)",
    ),
];

fn value(v: &serde_json::Value) -> Option<Value> {
    Value::try_from(v.clone()).ok()
}

/// What the server itself reports about an instance's lifecycle.
pub(super) fn lifecycle_attributes(inst: &Instance) -> Attributes {
    let mut a = Attributes::new();
    a.insert(SO_PHASE.into(), inst.phase.as_str().into());
    if let Some(r) = &inst.running {
        a.insert(SO_OPERATION.into(), r.operation.clone().into());
    }
    if let Some(f) = &inst.last_error {
        a.insert(SO_ERROR.into(), f.message.clone().into());
        a.insert(SO_ERROR_OPERATION.into(), f.operation.clone().into());
    }
    a
}

/// Everything a client may echo back that the server reports (for
/// `Schema::for_update`): `occi.core.id`, the plugin's state report and
/// the lifecycle attributes.
pub(super) fn reported(inst: &Instance, report: &StateReport) -> Attributes {
    let mut a = report.attributes.clone();
    a.extend(lifecycle_attributes(inst));
    a.insert(CORE_ID.into(), inst.id.clone().into());
    a
}

/// An instance as an OCCI resource. `binding` is `None` when the plugin
/// that owns it is gone (it is then shown without actions).
pub(super) fn resource(
    inst: &Instance,
    binding: Option<&Binding>,
    report: &StateReport,
    actions: &[ActionRef],
) -> Resource {
    let mut attributes =
        occi::Attributes::with_capacity(inst.attributes.len() + report.attributes.len() + 4);
    attributes.insert(CORE_ID, inst.id.as_str());
    for core in [CORE_TITLE, CORE_SUMMARY] {
        if let Some(v) = inst.attributes.get(core).and_then(value) {
            attributes.insert(core, v);
        }
    }
    let secret = |name: &str| binding.is_some_and(|b| b.schema.is_secret(name));
    for (name, v) in &inst.attributes {
        if name == CORE_TITLE || name == CORE_SUMMARY || secret(name) {
            continue;
        }
        if let Some(v) = value(v) {
            attributes.insert(name.as_str(), v);
        }
    }
    for (name, v) in &report.attributes {
        if secret(name) {
            continue;
        }
        if let Some(v) = value(v) {
            attributes.insert(name.as_str(), v);
        }
    }
    for (name, v) in lifecycle_attributes(inst) {
        if let Some(v) = value(&v) {
            attributes.insert(name, v);
        }
    }
    Resource {
        kind: inst.kind.clone(),
        mixins: inst.mixins.clone(),
        location: Some(inst.key.location.clone()),
        attributes,
        links: inst.links.iter().map(|l| link(inst, l)).collect(),
        actions: actions
            .iter()
            .map(|a| format!("{}{}", a.scheme, a.term))
            .collect(),
    }
}

/// A link record of `source` as an OCCI link.
pub(super) fn link(source: &Instance, l: &LinkRecord) -> Link {
    let mut attributes = occi::Attributes::with_capacity(l.attributes.len() + 1);
    attributes.insert(CORE_ID, l.id.as_str());
    for (name, v) in &l.attributes {
        if let Some(v) = value(v) {
            attributes.insert(name.as_str(), v);
        }
    }
    Link {
        kind: l.kind.clone(),
        mixins: l.mixins.clone(),
        location: Some(l.location.clone()),
        source: Some(source.key.location.clone()),
        source_kind: Some(source.kind.clone()),
        target: l.target.clone(),
        rel: l.target_kind.iter().cloned().collect(),
        attributes,
        actions: Vec::new(),
    }
}

/// An attribute definition as OCCI renders it (secret defaults withheld).
pub(super) fn attribute_def(a: &AttributeSpec) -> AttributeDef {
    let ty = match &a.ty {
        AttributeType::String => occi::AttributeType::String,
        AttributeType::Number | AttributeType::Integer => occi::AttributeType::Number,
        AttributeType::Boolean => occi::AttributeType::Boolean,
        AttributeType::Enum(v) => occi::AttributeType::Enum(v.clone()),
        AttributeType::List => occi::AttributeType::List,
        AttributeType::Object => occi::AttributeType::Object,
    };
    let mut d = AttributeDef::new(a.name.clone()).with_type(ty);
    d.required = a.required;
    d.mutable = a.mutable && !a.output;
    if !a.secret {
        d.default = a.default.as_ref().and_then(value);
    }
    d.description = a.description.clone();
    d.pattern = a.pattern.clone();
    d
}

/// The kind a binding serves, with every action it offers.
pub(super) fn kind_category(b: &Binding) -> Category {
    let k = b.kind();
    let mut c = Category::kind(k.scheme.clone(), k.term.clone()).with_location(k.location());
    c.title = k.title.clone();
    c.rel = k.related.clone();
    c.attributes = k.attributes.iter().map(attribute_def).collect();
    for (term, _) in MCN_ACTIONS {
        c.actions.push(format!("{MCN_SERVICE_SCHEME}{term}"));
    }
    for a in &k.actions {
        c.actions.push(format!("{}{}", a.scheme, a.term));
    }
    c
}

/// The action categories of a binding's custom actions.
pub(super) fn action_categories(b: &Binding) -> impl Iterator<Item = Category> + '_ {
    b.kind().actions.iter().map(|a| {
        let mut c = Category::action(a.scheme.clone(), a.term.clone());
        c.title = a.title.clone();
        c.attributes = a.attributes.iter().map(attribute_def).collect();
        c
    })
}

/// The built-in MCN action categories.
pub(super) fn mcn_action_categories() -> impl Iterator<Item = Category> {
    MCN_ACTIONS
        .iter()
        .map(|(term, title)| Category::action(MCN_SERVICE_SCHEME, *term).with_title(*title))
}

/// A user mixin as a category.
pub(super) fn mixin_category(m: &occi_so_framework::mixins::UserMixin) -> Category {
    let mut c = Category::mixin(m.scheme.clone(), m.term.clone()).with_location(m.location.clone());
    c.title = m.title.clone();
    c.rel = m.rel.clone();
    c
}

/// Whether `c` names the category `class`, or leaves the class out.
pub(super) fn class_is(c: &Category, class: CategoryClass) -> bool {
    c.class.is_none_or(|k| k == class)
}

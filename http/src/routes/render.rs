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

use occi_so_framework::lifecycle::{rfc3339, ActionRef};
use occi_so_framework::operation::{OpState, OperationRecord};
use occi_so_framework::registry::Binding;
use occi_so_framework::schema::{CORE_ID, CORE_SUMMARY, CORE_TITLE};
use occi_so_framework::store::{Instance, LinkRecord};

/// `occi.so.phase`.
pub(super) const SO_PHASE: &str = "occi.so.phase";
/// `occi.so.operation`.
pub(super) const SO_OPERATION: &str = "occi.so.operation";
/// `occi.so.queued`: how many operations wait behind the running one.
pub(super) const SO_QUEUED: &str = "occi.so.queued";
/// `occi.so.error`.
pub(super) const SO_ERROR: &str = "occi.so.error";
/// `occi.so.error.operation`.
pub(super) const SO_ERROR_OPERATION: &str = "occi.so.error.operation";

/// The scheme of occi-so's own kinds (the operation record).
pub(super) const SO_SCHEME: &str = "http://schemas.occi-so.org/occi/so#";
/// The operation kind's term.
pub(super) const OPERATION_TERM: &str = "operation";
/// The scheme of the operation kind's actions.
pub(super) const OPERATION_ACTION_SCHEME: &str =
    "http://schemas.occi-so.org/occi/so/operation/action#";
/// The kind of links from an instance to its operations.
pub(super) const OPERATION_LINK_TERM: &str = "operationlink";
/// The attribute naming what an operation link points at (`current`, `last`).
pub(super) const OPERATION_LINK_ROLE: &str = "occi.so.operation.role";

/// The operation kind's attributes: name, type, description.
const OPERATION_ATTRIBUTES: &[(&str, occi::AttributeType, &str)] = &[
    (
        "occi.so.operation.instance",
        occi::AttributeType::String,
        "The instance it acts on",
    ),
    (
        "occi.so.operation.name",
        occi::AttributeType::String,
        "deploy, provision, update, dispose, notify, design or an action's term",
    ),
    (
        "occi.so.operation.state",
        occi::AttributeType::String,
        "queued, running, succeeded, failed or cancelled",
    ),
    (
        "occi.so.operation.position",
        occi::AttributeType::Number,
        "Place in the instance's queue while queued (1: next)",
    ),
    (
        "occi.so.operation.parameters",
        occi::AttributeType::Object,
        "What it was asked with (secret values as ******)",
    ),
    (
        "occi.so.operation.created",
        occi::AttributeType::String,
        "When it was accepted (RFC 3339)",
    ),
    (
        "occi.so.operation.started",
        occi::AttributeType::String,
        "When it started running (RFC 3339)",
    ),
    (
        "occi.so.operation.finished",
        occi::AttributeType::String,
        "When it ended (RFC 3339)",
    ),
    (
        "occi.so.operation.error",
        occi::AttributeType::String,
        "Why it failed: the operation, the stack and the failing resources",
    ),
    (
        "occi.so.operation.error.stack",
        occi::AttributeType::Object,
        "The stack that ended *_FAILED: name, status, reason",
    ),
    (
        "occi.so.operation.error.resources",
        occi::AttributeType::List,
        "The failing resources: stack, name, type, status, reason",
    ),
    (
        "occi.so.operation.retry_of",
        occi::AttributeType::String,
        "The operation this one retries",
    ),
    (
        "occi.so.operation.resumed",
        occi::AttributeType::Number,
        "How often it was resumed after a restart",
    ),
];

/// The operation kind (`/operation/`), as the query interface shows it.
pub(super) fn operation_kind_category() -> Category {
    let mut c = Category::kind(SO_SCHEME, OPERATION_TERM)
        .with_location(occi_so_framework::operation::COLLECTION)
        .with_title(
            "A lifecycle operation of an instance (queued then running then succeeded or failed or cancelled)",
        );
    c.rel = vec![CORE_RESOURCE_ID.into()];
    c.attributes = OPERATION_ATTRIBUTES
        .iter()
        .map(|(name, ty, d)| {
            let mut a = AttributeDef::new(*name).with_type(ty.clone());
            a.mutable = false;
            a.description = Some((*d).to_string());
            a
        })
        .collect();
    for (term, _) in OPERATION_ACTIONS {
        c.actions.push(format!("{OPERATION_ACTION_SCHEME}{term}"));
    }
    c
}

/// The operation kind's actions: term and title.
pub(super) const OPERATION_ACTIONS: [(&str, &str); 2] = [
    (
        "cancel",
        "Cancel: a queued operation is removed and a running one stops with its stacks rolled back",
    ),
    ("retry", "Run a failed or cancelled operation again"),
];

/// The operation actions' categories.
pub(super) fn operation_action_categories() -> impl Iterator<Item = Category> {
    OPERATION_ACTIONS
        .iter()
        .map(|(term, title)| Category::action(OPERATION_ACTION_SCHEME, *term).with_title(*title))
}

/// The link kind from an instance to its operations.
pub(super) fn operation_link_category() -> Category {
    let mut c = Category::kind(SO_SCHEME, OPERATION_LINK_TERM)
        .with_title("Links an instance to its current and last operations");
    c.rel = vec![occi::LINK.into()];
    let mut a = AttributeDef::new(OPERATION_LINK_ROLE).with_type(occi::AttributeType::String);
    a.mutable = false;
    a.description = Some("current (running), queued or last (ended)".into());
    c.attributes = vec![a];
    c
}

const CORE_RESOURCE_ID: &str = "http://schemas.ogf.org/occi/core#resource";

/// An operation record as an OCCI resource; `secret` says which
/// parameters never show.
pub(super) fn operation_resource(
    r: &OperationRecord,
    position: Option<usize>,
    secret: impl Fn(&str) -> bool,
) -> Resource {
    let mut a = occi::Attributes::with_capacity(12);
    a.insert(CORE_ID, r.id.as_str());
    a.insert(
        CORE_TITLE,
        format!("{} of {}", r.operation.name(), r.instance.location).as_str(),
    );
    a.insert("occi.so.operation.instance", r.instance.location.as_str());
    a.insert("occi.so.operation.name", r.operation.name());
    a.insert("occi.so.operation.state", r.state.as_str());
    if let Some(p) = position {
        a.insert(
            "occi.so.operation.position",
            Value::Number((p as u64).into()),
        );
    }
    let params = r.shown_parameters(&secret);
    if !params.is_empty() {
        if let Some(v) = value(&serde_json::Value::Object(params.into_iter().collect())) {
            a.insert("occi.so.operation.parameters", v);
        }
    }
    a.insert("occi.so.operation.created", rfc3339(r.created).as_str());
    if let Some(t) = r.started {
        a.insert("occi.so.operation.started", rfc3339(t).as_str());
    }
    if let Some(t) = r.finished {
        a.insert("occi.so.operation.finished", rfc3339(t).as_str());
    }
    if let Some(e) = &r.error {
        a.insert("occi.so.operation.error", e.text().as_str());
        if let Some(s) = &e.stack {
            if let Some(v) = serde_json::to_value(s).ok().as_ref().and_then(value) {
                a.insert("occi.so.operation.error.stack", v);
            }
        }
        if !e.resources.is_empty() {
            if let Some(v) = serde_json::to_value(&e.resources)
                .ok()
                .as_ref()
                .and_then(value)
            {
                a.insert("occi.so.operation.error.resources", v);
            }
        }
    }
    if let Some(id) = &r.retry_of {
        a.insert(
            "occi.so.operation.retry_of",
            occi_so_framework::operation::location_of(id).as_str(),
        );
    }
    if r.resumed > 0 {
        a.insert("occi.so.operation.resumed", Value::Number(r.resumed.into()));
    }
    let actions = match r.state {
        OpState::Queued | OpState::Running => vec!["cancel"],
        OpState::Failed | OpState::Cancelled if r.operation != occi_so_sdk::Operation::Design => {
            vec!["retry"]
        }
        _ => vec![],
    };
    Resource {
        kind: format!("{SO_SCHEME}{OPERATION_TERM}"),
        mixins: Vec::new(),
        location: Some(r.location()),
        attributes: a,
        links: vec![Link::new(r.instance.location.clone(), CORE_RESOURCE_ID)],
        actions: actions
            .into_iter()
            .map(|t| format!("{OPERATION_ACTION_SCHEME}{t}"))
            .collect(),
    }
}

/// The operation links of an instance: the running one, the queued ones
/// and the last that ended.
fn operation_links(inst: &Instance) -> Vec<Link> {
    let mut out = Vec::new();
    let mut add = |id: &str, role: &str| {
        let mut l = Link::new(
            occi_so_framework::operation::location_of(id),
            format!("{SO_SCHEME}{OPERATION_TERM}"),
        );
        l.kind = format!("{SO_SCHEME}{OPERATION_LINK_TERM}");
        l.source = Some(inst.key.location.clone());
        l.source_kind = Some(inst.kind.clone());
        l.attributes.insert(OPERATION_LINK_ROLE, role);
        out.push(l);
    };
    if let Some(r) = inst.running.as_ref().filter(|r| !r.id.is_empty()) {
        add(&r.id, "current");
    }
    for q in &inst.queue {
        add(&q.id, "queued");
    }
    if let Some(l) = &inst.last_operation {
        add(&l.id, "last");
    }
    out
}

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
    if !inst.queue.is_empty() {
        a.insert(SO_QUEUED.into(), serde_json::json!(inst.queue.len()));
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
        links: inst
            .links
            .iter()
            .map(|l| link(inst, l))
            .chain(operation_links(inst))
            .collect(),
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

/// A mixin a plugin provides (`os_tpl`, `resource_tpl`) as an OCCI
/// category, with the attributes it adds.
pub(super) fn provided_mixin_category(m: &occi_so_sdk::MixinSpec) -> Category {
    let mut c = Category::mixin(m.scheme.clone(), m.term.clone());
    if let Some(l) = &m.location {
        c = c.with_location(l.clone());
    }
    c.title = m.title.clone();
    c.rel = m.related.clone();
    c.attributes = m.attributes.iter().map(attribute_def).collect();
    c
}

/// Whether `c` names the category `class`, or leaves the class out.
pub(super) fn class_is(c: &Category, class: CategoryClass) -> bool {
    c.class.is_none_or(|k| k == class)
}

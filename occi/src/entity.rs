//! Entities: resources and links.

use crate::{category::split_type_id, Attributes, Value, LINK};

/// An OCCI entity.
#[derive(Clone, Debug, PartialEq)]
pub enum Entity {
    /// A resource (e.g. an SO instance).
    Resource(Resource),
    /// A link between two resources.
    Link(Link),
}

/// A resource instance.
///
/// Core attributes (`occi.core.id`, `occi.core.title`,
/// `occi.core.summary`) live in `attributes` like any other; the JSON
/// rendering also lifts them to its top-level `id`/`title`/`summary`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Resource {
    /// Kind type identifier, e.g.
    /// `http://schemas.mobile-cloud-networking.eu/occi/service#orchestrator`.
    pub kind: String,
    /// Mixin type identifiers.
    pub mixins: Vec<String>,
    /// Path of the instance, e.g. `/orchestrator/default` (rendered
    /// absolute with the renderer's base URL).
    pub location: Option<String>,
    /// Attribute values in rendering order.
    pub attributes: Attributes,
    /// Outgoing links.
    pub links: Vec<Link>,
    /// Type identifiers of the actions applicable *now*; each is rendered as
    /// an action link `<location?action=term>`.
    pub actions: Vec<String>,
}

impl Resource {
    /// A resource of kind `kind` (type identifier) at `location`.
    pub fn new(kind: impl Into<String>, location: impl Into<String>) -> Self {
        Resource {
            kind: kind.into(),
            location: Some(location.into()),
            ..Resource::default()
        }
    }

    /// `occi.core.id` as a string, if set.
    pub fn id(&self) -> Option<&str> {
        self.attributes.get("occi.core.id").and_then(Value::as_str)
    }
}

/// A link entity, standalone or inline in a resource rendering.
///
/// In text renderings an inline link is
/// `<target>; rel="target kind"; self="location"; category="kind mixins";
/// name=value...`; its source is the resource being rendered.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    /// Link kind type identifier (core `link` when a client gave none).
    pub kind: String,
    /// Mixin type identifiers.
    pub mixins: Vec<String>,
    /// The link's own location (`self`).
    pub location: Option<String>,
    /// Source resource location (implicit for inline links).
    pub source: Option<String>,
    /// Kind of the source resource.
    pub source_kind: Option<String>,
    /// Target resource location (or an external URI).
    pub target: String,
    /// Kind (and mixins) of the target resource (text `rel`; the first one
    /// is JSON `target.kind`).
    pub rel: Vec<String>,
    /// Link attributes.
    pub attributes: Attributes,
    /// Type identifiers of applicable actions.
    pub actions: Vec<String>,
}

impl Link {
    /// A core link to `target` whose target has kind `target_kind`.
    pub fn new(target: impl Into<String>, target_kind: impl Into<String>) -> Self {
        Link {
            kind: LINK.to_owned(),
            mixins: Vec::new(),
            location: None,
            source: None,
            source_kind: None,
            target: target.into(),
            rel: vec![target_kind.into()],
            attributes: Attributes::new(),
            actions: Vec::new(),
        }
    }
}

/// An action link as parsed from a request
/// (`Link: </orchestrator/default?action=deploy>; rel="...service#deploy"`),
/// or an action id from a JSON `actions` list (no target then).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionLink {
    /// The invocation URI as sent, if any.
    pub target: Option<String>,
    /// The action's type identifier.
    pub action: String,
}

impl ActionLink {
    /// The action's term (after the last `#`).
    pub fn term(&self) -> &str {
        split_type_id(&self.action).1
    }
}

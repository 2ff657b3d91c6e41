//! Categories: the OCCI type system (kinds, mixins, actions).

use std::fmt;

use crate::AttributeDef;

/// The OCCI Core scheme.
pub const CORE_SCHEME: &str = "http://schemas.ogf.org/occi/core#";
/// Type identifier of the core `entity` kind.
pub const ENTITY: &str = "http://schemas.ogf.org/occi/core#entity";
/// Type identifier of the core `resource` kind.
pub const RESOURCE: &str = "http://schemas.ogf.org/occi/core#resource";
/// Type identifier of the core `link` kind.
pub const LINK: &str = "http://schemas.ogf.org/occi/core#link";

/// The three classes of category.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CategoryClass {
    /// Defines an entity type; every entity has exactly one kind.
    Kind,
    /// Adds attributes/actions to entities at run time.
    Mixin,
    /// An operation invocable on entities.
    Action,
}

impl CategoryClass {
    /// `kind`, `mixin` or `action`.
    pub fn as_str(self) -> &'static str {
        match self {
            CategoryClass::Kind => "kind",
            CategoryClass::Mixin => "mixin",
            CategoryClass::Action => "action",
        }
    }
}

impl fmt::Display for CategoryClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A category: a full definition (query interface) or a reference to one
/// (in an entity or request: term, scheme and maybe class).
///
/// `class` is optional because MCN clients omit it in requests
/// (`Category: orchestrator; scheme="..."`): the server resolves the
/// category by scheme and term.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Category {
    /// Scheme, normally ending in `#`.
    pub scheme: String,
    /// Term, unique within the scheme.
    pub term: String,
    /// Kind, mixin or action; `None` when a request left it out.
    pub class: Option<CategoryClass>,
    /// Human title.
    pub title: Option<String>,
    /// Related categories as type identifiers: a kind's parent (one), a
    /// mixin's `depends` (text `rel`).
    pub rel: Vec<String>,
    /// Kinds a mixin applies to (OCCI 1.2 `applies`; JSON only).
    pub applies: Vec<String>,
    /// Collection path, e.g. `/orchestrator/` (rendered relative).
    pub location: Option<String>,
    /// Attribute definitions.
    pub attributes: Vec<AttributeDef>,
    /// Type identifiers of the actions (kinds and mixins).
    pub actions: Vec<String>,
}

impl Category {
    /// A category of the given class with scheme and term only.
    pub fn new(class: CategoryClass, scheme: impl Into<String>, term: impl Into<String>) -> Self {
        Category {
            scheme: scheme.into(),
            term: term.into(),
            class: Some(class),
            ..Category::default()
        }
    }

    /// A kind.
    pub fn kind(scheme: impl Into<String>, term: impl Into<String>) -> Self {
        Self::new(CategoryClass::Kind, scheme, term)
    }

    /// A mixin.
    pub fn mixin(scheme: impl Into<String>, term: impl Into<String>) -> Self {
        Self::new(CategoryClass::Mixin, scheme, term)
    }

    /// An action.
    pub fn action(scheme: impl Into<String>, term: impl Into<String>) -> Self {
        Self::new(CategoryClass::Action, scheme, term)
    }

    /// A reference by type identifier (`scheme#term`), class unknown.
    /// Splits after the last `#`; without one the whole id is the term.
    pub fn reference(type_id: &str) -> Self {
        let (scheme, term) = split_type_id(type_id);
        Category {
            scheme: scheme.to_owned(),
            term: term.to_owned(),
            ..Category::default()
        }
    }

    /// Builder: set the class.
    pub fn with_class(mut self, class: CategoryClass) -> Self {
        self.class = Some(class);
        self
    }

    /// Builder: set the title.
    pub fn with_title(mut self, t: impl Into<String>) -> Self {
        self.title = Some(t.into());
        self
    }

    /// Builder: add a related category (kind parent / mixin depends).
    pub fn with_rel(mut self, type_id: impl Into<String>) -> Self {
        self.rel.push(type_id.into());
        self
    }

    /// Builder: set the location (a path ending in `/`).
    pub fn with_location(mut self, l: impl Into<String>) -> Self {
        self.location = Some(l.into());
        self
    }

    /// Builder: add an attribute definition.
    pub fn with_attribute(mut self, a: AttributeDef) -> Self {
        self.attributes.push(a);
        self
    }

    /// Builder: add an action by type identifier.
    pub fn with_action(mut self, type_id: impl Into<String>) -> Self {
        self.actions.push(type_id.into());
        self
    }

    /// The type identifier `scheme` + `term`.
    pub fn type_id(&self) -> String {
        let mut s = String::with_capacity(self.scheme.len() + self.term.len());
        s.push_str(&self.scheme);
        s.push_str(&self.term);
        s
    }

    /// Whether this category has the type identifier `type_id`
    /// (without allocating).
    pub fn is(&self, type_id: &str) -> bool {
        type_id.len() == self.scheme.len() + self.term.len()
            && type_id.starts_with(self.scheme.as_str())
            && type_id.ends_with(self.term.as_str())
    }

    /// Whether scheme and term equal those of `other` (class and the rest
    /// ignored): how OCCI identifies categories.
    pub fn same_type(&self, other: &Category) -> bool {
        self.scheme == other.scheme && self.term == other.term
    }

    /// The attribute definition called `name`.
    pub fn attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// The core `entity` kind (abstract: no location, OCCI 1.2).
    pub fn core_entity() -> Self {
        Category::kind(CORE_SCHEME, "entity")
            .with_title("Entity")
            .with_attribute(AttributeDef::new("occi.core.id").immutable())
            .with_attribute(AttributeDef::new("occi.core.title"))
    }

    /// The core `resource` kind (parent `entity`).
    pub fn core_resource() -> Self {
        Category::kind(CORE_SCHEME, "resource")
            .with_title("Resource")
            .with_rel(ENTITY)
            .with_attribute(AttributeDef::new("occi.core.summary"))
    }

    /// The core `link` kind (parent `entity`).
    pub fn core_link() -> Self {
        Category::kind(CORE_SCHEME, "link")
            .with_title("Link")
            .with_rel(ENTITY)
            .with_attribute(AttributeDef::new("occi.core.source").required())
            .with_attribute(AttributeDef::new("occi.core.target").required())
    }
}

/// Splits a type identifier into (scheme, term) after the last `#`.
/// Without a `#` the scheme is empty.
pub fn split_type_id(type_id: &str) -> (&str, &str) {
    match type_id.rfind('#') {
        Some(i) => type_id.split_at(i + 1),
        None => ("", type_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_ids_split_after_the_last_hash() {
        assert_eq!(
            split_type_id("http://schemas.ogf.org/occi/core#resource"),
            ("http://schemas.ogf.org/occi/core#", "resource")
        );
        let c = Category::reference(RESOURCE);
        assert!(c.is(RESOURCE));
        assert!(!c.is(LINK));
        assert_eq!(c.type_id(), RESOURCE);
        assert_eq!(c.class, None);
    }

    #[test]
    fn core_kinds_have_the_core_scheme() {
        for (c, id) in [
            (Category::core_entity(), ENTITY),
            (Category::core_resource(), RESOURCE),
            (Category::core_link(), LINK),
        ] {
            assert!(c.is(id));
            assert_eq!(c.class, Some(CategoryClass::Kind));
        }
        assert_eq!(Category::core_resource().rel, [ENTITY]);
    }
}

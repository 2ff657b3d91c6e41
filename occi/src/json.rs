//! `application/occi+json`: the OCCI 1.2 JSON rendering (GFD.225), both
//! directions, with serde.
//!
//! Documents: resource `{kind, mixins, attributes, actions, id, title,
//! summary, links, location}`; link `{kind, mixins, attributes, actions, id,
//! title, source: {location, kind}, target: {location, kind}, location}`;
//! action invocation `{action, attributes}`; collection `{resources,
//! links, kinds, mixins, actions}`; kind `{term, scheme, title, attributes:
//! {name: definition}, actions, parent, location}`; mixin `{..., depends,
//! applies}`; action `{term, scheme, title, attributes}`; attribute
//! definition `{type, required, mutable, default, description, pattern}`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Map;

use crate::{
    ActionLink, AttributeDef, AttributeType, Attributes, Category, CategoryClass, Content, Link,
    Origin, ParseError, Resource, Value, LINK,
};

// ------------------------------------------------------------- rendering

fn absolute<'a>(base: &str, path: &'a str) -> Cow<'a, str> {
    if path.starts_with('/') && !base.is_empty() {
        let mut s = String::with_capacity(base.len() + path.len());
        s.push_str(base);
        s.push_str(path);
        Cow::Owned(s)
    } else {
        Cow::Borrowed(path)
    }
}

fn core_str<'a>(attrs: &'a Attributes, name: &str) -> Option<&'a str> {
    attrs.get(name).and_then(Value::as_str)
}

#[derive(Serialize)]
struct KindedUriOut<'a> {
    location: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
}

#[derive(Serialize)]
struct ResourceOut<'a> {
    kind: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    mixins: &'a [String],
    #[serde(skip_serializing_if = "Attributes::is_empty")]
    attributes: &'a Attributes,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    actions: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    links: Vec<LinkOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
struct LinkOut<'a> {
    kind: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    mixins: &'a [String],
    #[serde(skip_serializing_if = "Attributes::is_empty")]
    attributes: &'a Attributes,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    actions: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<KindedUriOut<'a>>,
    target: KindedUriOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<Cow<'a, str>>,
}

fn resource_out<'a>(base: &str, r: &'a Resource) -> ResourceOut<'a> {
    ResourceOut {
        kind: &r.kind,
        mixins: &r.mixins,
        attributes: &r.attributes,
        actions: &r.actions,
        id: core_str(&r.attributes, "occi.core.id"),
        title: core_str(&r.attributes, "occi.core.title"),
        summary: core_str(&r.attributes, "occi.core.summary"),
        links: r
            .links
            .iter()
            .map(|l| link_out(base, l, r.location.as_deref(), Some(&r.kind)))
            .collect(),
        location: r.location.as_deref().map(|l| absolute(base, l)),
    }
}

fn link_out<'a>(
    base: &str,
    l: &'a Link,
    parent: Option<&'a str>,
    parent_kind: Option<&'a str>,
) -> LinkOut<'a> {
    let source = match (&l.source, parent) {
        (Some(s), _) => Some(KindedUriOut {
            location: absolute(base, s),
            kind: l.source_kind.as_deref(),
        }),
        (None, Some(p)) => Some(KindedUriOut {
            location: absolute(base, p),
            kind: parent_kind,
        }),
        (None, None) => None,
    };
    LinkOut {
        kind: &l.kind,
        mixins: &l.mixins,
        attributes: &l.attributes,
        actions: &l.actions,
        id: core_str(&l.attributes, "occi.core.id"),
        title: core_str(&l.attributes, "occi.core.title"),
        source,
        target: KindedUriOut {
            location: absolute(base, &l.target),
            kind: l.rel.first().map(String::as_str),
        },
        location: l.location.as_deref().map(|p| absolute(base, p)),
    }
}

#[derive(Serialize)]
struct AttrDefOut<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    required: bool,
    mutable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    default: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pattern: Option<serde_json::Value>,
}

struct AttrDefsOut<'a>(&'a [AttributeDef]);

impl Serialize for AttrDefsOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for a in self.0 {
            let pattern = match (&a.ty, &a.pattern) {
                (AttributeType::Enum(options), p) => {
                    let mut o = Map::new();
                    o.insert("type".into(), "string".into());
                    o.insert("enum".into(), options.clone().into());
                    if let Some(p) = p {
                        o.insert("pattern".into(), p.clone().into());
                    }
                    Some(serde_json::Value::Object(o))
                }
                (AttributeType::Integer, p) => {
                    let mut o = Map::new();
                    o.insert("type".into(), "integer".into());
                    if let Some(p) = p {
                        o.insert("pattern".into(), p.clone().into());
                    }
                    Some(serde_json::Value::Object(o))
                }
                (ty, Some(p)) => {
                    let mut o = Map::new();
                    o.insert("type".into(), ty.json_type().into());
                    o.insert("pattern".into(), p.clone().into());
                    Some(serde_json::Value::Object(o))
                }
                (_, None) => None,
            };
            m.serialize_entry(
                &a.name,
                &AttrDefOut {
                    ty: a.ty.json_type(),
                    required: a.required,
                    mutable: a.mutable,
                    default: a.default.as_ref(),
                    description: a.description.as_deref(),
                    pattern,
                },
            )?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct CategoryOut<'a> {
    term: &'a str,
    scheme: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "attr_defs_empty")]
    attributes: AttrDefsOut<'a>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    actions: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    depends: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    applies: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<&'a str>,
}

fn attr_defs_empty(a: &AttrDefsOut<'_>) -> bool {
    a.0.is_empty()
}

fn category_out(c: &Category) -> CategoryOut<'_> {
    let class = c.class.unwrap_or(CategoryClass::Kind);
    let none: &[String] = &[];
    CategoryOut {
        term: &c.term,
        scheme: &c.scheme,
        title: c.title.as_deref(),
        attributes: AttrDefsOut(&c.attributes),
        actions: if class == CategoryClass::Action {
            none
        } else {
            &c.actions
        },
        parent: match class {
            CategoryClass::Kind => c.rel.first().map(String::as_str),
            _ => None,
        },
        depends: if class == CategoryClass::Mixin {
            &c.rel
        } else {
            none
        },
        applies: if class == CategoryClass::Mixin {
            &c.applies
        } else {
            none
        },
        location: if class == CategoryClass::Action {
            None
        } else {
            c.location.as_deref()
        },
    }
}

#[derive(Serialize)]
struct CollectionOut<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    kinds: Vec<CategoryOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mixins: Vec<CategoryOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    actions: Vec<CategoryOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<Vec<ResourceOut<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    links: Option<Vec<LinkOut<'a>>>,
}

fn to_vec<T: Serialize>(v: &T) -> Vec<u8> {
    // Serializing these borrowed views into memory cannot fail: every map
    // key is a string and no Serialize impl here returns an error.
    serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec())
}

/// Renders a resource. Relative locations (entity, link source/target)
/// get `base` prepended; inline links without a source get the resource.
pub fn render_resource(base: &str, r: &Resource) -> Vec<u8> {
    to_vec(&resource_out(base, r))
}

/// Renders a standalone link entity.
pub fn render_link(base: &str, l: &Link) -> Vec<u8> {
    to_vec(&link_out(base, l, None, None))
}

/// Renders a resource collection `{"resources": [...]}`.
pub fn render_resources(base: &str, resources: &[Resource]) -> Vec<u8> {
    to_vec(&CollectionOut {
        kinds: Vec::new(),
        mixins: Vec::new(),
        actions: Vec::new(),
        resources: Some(resources.iter().map(|r| resource_out(base, r)).collect()),
        links: None,
    })
}

/// Renders a link collection `{"links": [...]}`.
pub fn render_links(base: &str, links: &[Link]) -> Vec<u8> {
    to_vec(&CollectionOut {
        kinds: Vec::new(),
        mixins: Vec::new(),
        actions: Vec::new(),
        resources: None,
        links: Some(
            links
                .iter()
                .map(|l| link_out(base, l, None, None))
                .collect(),
        ),
    })
}

/// Renders the query interface `{"kinds": [...], "mixins": [...],
/// "actions": [...]}`; a category without class counts as a kind.
pub fn render_categories(categories: &[Category]) -> Vec<u8> {
    let mut out = CollectionOut {
        kinds: Vec::new(),
        mixins: Vec::new(),
        actions: Vec::new(),
        resources: None,
        links: None,
    };
    for c in categories {
        let v = category_out(c);
        match c.class {
            Some(CategoryClass::Mixin) => out.mixins.push(v),
            Some(CategoryClass::Action) => out.actions.push(v),
            Some(CategoryClass::Kind) | None => out.kinds.push(v),
        }
    }
    to_vec(&out)
}

/// Renders an action invocation `{"action": "...", "attributes": {...}}`
/// (what a client sends).
pub fn render_action_invocation(action: &str, attributes: &Attributes) -> Vec<u8> {
    #[derive(Serialize)]
    struct Out<'a> {
        action: &'a str,
        #[serde(skip_serializing_if = "Attributes::is_empty")]
        attributes: &'a Attributes,
    }
    to_vec(&Out { action, attributes })
}

// --------------------------------------------------------------- parsing

/// A JSON object's members in order, read without building a hash map
/// (attribute maps are small and read once).
#[derive(Default)]
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Members, A::Error> {
                let mut v = Vec::with_capacity(m.size_hint().unwrap_or(8));
                while let Some(entry) = m.next_entry::<String, serde_json::Value>()? {
                    v.push(entry);
                }
                Ok(Members(v))
            }
        }
        d.deserialize_map(Visit)
    }
}

#[derive(Deserialize)]
struct KindedUriIn {
    location: String,
    #[serde(default)]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct ResourceIn {
    kind: String,
    #[serde(default)]
    mixins: Vec<String>,
    #[serde(default)]
    attributes: Members,
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    links: Vec<LinkIn>,
    #[serde(default)]
    location: Option<String>,
}

#[derive(Deserialize)]
struct LinkIn {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    mixins: Vec<String>,
    #[serde(default)]
    attributes: Members,
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    source: Option<KindedUriIn>,
    target: KindedUriIn,
    #[serde(default)]
    location: Option<String>,
}

#[derive(Deserialize)]
struct AttrDefIn {
    #[serde(rename = "type", default)]
    ty: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default = "yes")]
    mutable: bool,
    #[serde(default)]
    default: Option<serde_json::Value>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    pattern: Option<serde_json::Value>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct CategoryIn {
    term: String,
    scheme: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    attributes: Members,
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    depends: Vec<String>,
    #[serde(default)]
    applies: Vec<String>,
    #[serde(default)]
    location: Option<String>,
}

/// Every top-level field any OCCI JSON document has; fields whose shape
/// depends on the document (`attributes`, `mixins`, `actions`) stay raw.
#[derive(Deserialize)]
struct Doc {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    mixins: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    attributes: Option<Members>,
    #[serde(default)]
    actions: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    links: Option<Vec<LinkIn>>,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    source: Option<KindedUriIn>,
    #[serde(default)]
    target: Option<KindedUriIn>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    resources: Option<Vec<ResourceIn>>,
    #[serde(default)]
    kinds: Option<Vec<CategoryIn>>,
    #[serde(default)]
    term: Option<String>,
    #[serde(default)]
    scheme: Option<String>,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    depends: Option<Vec<String>>,
    #[serde(default)]
    applies: Option<Vec<String>>,
}

fn content_error(expected: impl Into<Cow<'static, str>>) -> ParseError {
    ParseError {
        origin: Origin::Json { line: 0, column: 0 },
        position: 0,
        expected: expected.into(),
        found: None,
    }
}

fn syntax_error(e: serde_json::Error) -> ParseError {
    ParseError {
        origin: Origin::Json {
            line: e.line(),
            column: e.column(),
        },
        position: 0,
        expected: Cow::Owned(format!("a valid OCCI JSON document ({e})")),
        found: None,
    }
}

fn attributes_from(
    map: Members,
    extra: [(&str, Option<String>); 3],
) -> Result<Attributes, ParseError> {
    let mut out = Attributes::with_capacity(map.0.len() + 1);
    for (k, v) in map.0 {
        let v = Value::try_from(v).map_err(|_| {
            content_error(format!(
                "attribute '{k}' to have a string, number, boolean, list or object value, not null"
            ))
        })?;
        out.insert(k, v);
    }
    for (name, v) in extra {
        if let Some(v) = v {
            if !out.contains(name) {
                out.insert(name, v);
            }
        }
    }
    Ok(out)
}

fn resource_from(r: ResourceIn) -> Result<Resource, ParseError> {
    let attributes = attributes_from(
        r.attributes,
        [
            ("occi.core.id", r.id),
            ("occi.core.title", r.title),
            ("occi.core.summary", r.summary),
        ],
    )?;
    Ok(Resource {
        kind: r.kind,
        mixins: r.mixins,
        location: r.location,
        attributes,
        links: r
            .links
            .into_iter()
            .map(link_from)
            .collect::<Result<_, _>>()?,
        actions: r.actions,
    })
}

fn link_from(l: LinkIn) -> Result<Link, ParseError> {
    let attributes = attributes_from(
        l.attributes,
        [
            ("occi.core.id", l.id),
            ("occi.core.title", l.title),
            ("occi.core.summary", None),
        ],
    )?;
    let (source, source_kind) = match l.source {
        Some(s) => (Some(s.location), s.kind),
        None => (None, None),
    };
    Ok(Link {
        kind: l.kind.unwrap_or_else(|| LINK.to_owned()),
        mixins: l.mixins,
        location: l.location,
        source,
        source_kind,
        target: l.target.location,
        rel: l.target.kind.into_iter().collect(),
        attributes,
        actions: l.actions,
    })
}

fn attr_def_from(name: String, v: serde_json::Value) -> Result<AttributeDef, ParseError> {
    let d: AttrDefIn = serde_json::from_value(v).map_err(|e| {
        content_error(format!(
            "attribute definition '{name}' as {{type, required, mutable, default, description, pattern}} ({e})"
        ))
    })?;
    let mut pattern = None;
    let mut options = None;
    let mut integer = false;
    if let Some(serde_json::Value::Object(p)) = &d.pattern {
        pattern = p.get("pattern").and_then(|v| v.as_str()).map(str::to_owned);
        integer = p.get("type").and_then(|v| v.as_str()) == Some("integer");
        if let Some(serde_json::Value::Array(e)) = p.get("enum") {
            options = Some(
                e.iter()
                    .map(|v| match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect(),
            );
        }
    }
    let ty = match (d.ty.as_deref(), options) {
        (_, Some(o)) => AttributeType::Enum(o),
        (None | Some("string"), None) => AttributeType::String,
        (Some("integer"), None) => AttributeType::Integer,
        (Some("number"), None) if integer => AttributeType::Integer,
        (Some("number"), None) => AttributeType::Number,
        (Some("boolean"), None) => AttributeType::Boolean,
        (Some("array"), None) => AttributeType::List,
        (Some("object"), None) => AttributeType::Object,
        (Some(_), None) => {
            return Err(content_error(format!(
                "attribute definition '{name}' type string, number, boolean, array or object"
            )))
        }
    };
    let default = match d.default {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Value::try_from(v).ok(),
    };
    Ok(AttributeDef {
        name,
        ty,
        required: d.required,
        mutable: d.mutable,
        default,
        description: d.description,
        pattern,
    })
}

fn category_from(c: CategoryIn, class: Option<CategoryClass>) -> Result<Category, ParseError> {
    let class = class.or(if c.parent.is_some() {
        Some(CategoryClass::Kind)
    } else if !c.depends.is_empty() || !c.applies.is_empty() {
        Some(CategoryClass::Mixin)
    } else {
        None
    });
    let mut rel = Vec::new();
    if let Some(p) = c.parent {
        rel.push(p);
    }
    rel.extend(c.depends);
    Ok(Category {
        scheme: c.scheme,
        term: c.term,
        class,
        title: c.title,
        rel,
        applies: c.applies,
        location: c.location,
        attributes: c
            .attributes
            .0
            .into_iter()
            .map(|(k, v)| attr_def_from(k, v))
            .collect::<Result<_, _>>()?,
        actions: c.actions,
    })
}

fn categories_from(
    items: Vec<serde_json::Value>,
    class: CategoryClass,
    out: &mut Vec<Category>,
) -> Result<(), ParseError> {
    for item in items {
        let c: CategoryIn = serde_json::from_value(item).map_err(|e| {
            content_error(format!(
                "each {class} as {{term, scheme, title, attributes, actions, ...}} ({e})"
            ))
        })?;
        out.push(category_from(c, Some(class))?);
    }
    Ok(())
}

fn strings(items: Vec<serde_json::Value>, what: &'static str) -> Result<Vec<String>, ParseError> {
    items
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(content_error(what)),
        })
        .collect()
}

/// The body as UTF-8 (validated once, up front: serde_json then skips
/// per-string validation), or an error at the first bad byte.
fn utf8(body: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(body).map_err(|e| {
        let bad = e.valid_up_to();
        let before = &body[..bad];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = bad
            - before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1)
            + 1;
        ParseError {
            origin: Origin::Json { line, column },
            position: 0,
            expected: "UTF-8 text".into(),
            found: None,
        }
    })
}

/// Parses a single resource document.
pub fn parse_resource(body: &[u8]) -> Result<Resource, ParseError> {
    let r: ResourceIn = serde_json::from_str(utf8(body)?).map_err(syntax_error)?;
    resource_from(r)
}

/// Parses any OCCI JSON request document into [`Content`]:
///
/// - a resource → its kind and mixins as `categories` (with class),
///   `attributes` (plus `id`/`title`/`summary` as the core attributes),
///   `links`, and `actions` as `action_links` without target;
/// - a link (`target` present) → `links`;
/// - an action invocation → the action as a category (class action) and
///   its `attributes`;
/// - a collection → `resources`, `links`, and kinds/mixins/actions as full
///   `categories`;
/// - a bare category definition (`term` + `scheme`, e.g. a user mixin) →
///   `categories`;
/// - `{}` → empty content.
pub fn parse(body: &[u8]) -> Result<Content, ParseError> {
    let doc: Doc = serde_json::from_str(utf8(body)?).map_err(syntax_error)?;
    let mut content = Content::default();
    if let Some(action) = doc.action {
        let mut c = Category::reference(&action);
        c.class = Some(CategoryClass::Action);
        content.categories.push(c);
        content.attributes =
            attributes_from(doc.attributes.unwrap_or_default(), Default::default())?;
        return Ok(content);
    }
    if let Some(kind) = doc.kind {
        let mixins = strings(
            doc.mixins.unwrap_or_default(),
            "an entity's mixins as a list of type identifier strings",
        )?;
        let actions = strings(
            doc.actions.unwrap_or_default(),
            "an entity's actions as a list of type identifier strings",
        )?;
        if let Some(target) = doc.target {
            let link = link_from(LinkIn {
                kind: Some(kind),
                mixins,
                attributes: doc.attributes.unwrap_or_default(),
                actions,
                id: doc.id,
                title: doc.title,
                source: doc.source,
                target,
                location: doc.location,
            })?;
            content.links.push(link);
            return Ok(content);
        }
        let r = resource_from(ResourceIn {
            kind,
            mixins,
            attributes: doc.attributes.unwrap_or_default(),
            actions,
            id: doc.id,
            title: doc.title,
            summary: doc.summary,
            links: doc.links.unwrap_or_default(),
            location: doc.location,
        })?;
        let mut k = Category::reference(&r.kind);
        k.class = Some(CategoryClass::Kind);
        content.categories.push(k);
        for m in &r.mixins {
            let mut c = Category::reference(m);
            c.class = Some(CategoryClass::Mixin);
            content.categories.push(c);
        }
        content.attributes = r.attributes;
        content.links = r.links;
        content.action_links = r
            .actions
            .into_iter()
            .map(|action| ActionLink {
                target: None,
                action,
            })
            .collect();
        return Ok(content);
    }
    if let (Some(term), Some(scheme)) = (doc.term.clone(), doc.scheme.clone()) {
        let c = category_from(
            CategoryIn {
                term,
                scheme,
                title: doc.title,
                attributes: doc.attributes.unwrap_or_default(),
                actions: strings(
                    doc.actions.unwrap_or_default(),
                    "a category's actions as a list of type identifier strings",
                )?,
                parent: doc.parent,
                depends: doc.depends.unwrap_or_default(),
                applies: doc.applies.unwrap_or_default(),
                location: doc.location,
            },
            None,
        )?;
        content.categories.push(c);
        return Ok(content);
    }
    if doc.attributes.is_some() || doc.source.is_some() || doc.target.is_some() {
        return Err(content_error(
            "an entity with a \"kind\" or an action invocation with an \"action\"",
        ));
    }
    if let Some(kinds) = doc.kinds {
        for k in kinds {
            content
                .categories
                .push(category_from(k, Some(CategoryClass::Kind))?);
        }
    }
    if let Some(m) = doc.mixins {
        categories_from(m, CategoryClass::Mixin, &mut content.categories)?;
    }
    if let Some(a) = doc.actions {
        categories_from(a, CategoryClass::Action, &mut content.categories)?;
    }
    if let Some(resources) = doc.resources {
        content.resources = resources
            .into_iter()
            .map(resource_from)
            .collect::<Result<_, _>>()?;
    }
    if let Some(links) = doc.links {
        content.links = links.into_iter().map(link_from).collect::<Result<_, _>>()?;
    }
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // GFD.225 style resource example.
    #[test]
    fn spec_resource_example_parses() {
        let body = json!({
            "kind": "http://schemas.ogf.org/occi/infrastructure#compute",
            "mixins": ["http://schemas.ogf.org/occi/infrastructure/compute#ubuntu"],
            "attributes": {"occi.compute.speed": 2, "occi.compute.memory": 4.0, "occi.compute.state": "active"},
            "actions": ["http://schemas.ogf.org/occi/infrastructure/compute/action#start"],
            "id": "urn:uuid:70d3e2a2-1b1a-4e3f-9e0f-1a2b3c4d5e6f",
            "title": "vm1",
            "links": [{
                "kind": "http://schemas.ogf.org/occi/infrastructure#networkinterface",
                "attributes": {"occi.networkinterface.interface": "eth0"},
                "id": "urn:uuid:1",
                "source": {"location": "/compute/1", "kind": "http://schemas.ogf.org/occi/infrastructure#compute"},
                "target": {"location": "/network/1", "kind": "http://schemas.ogf.org/occi/infrastructure#network"}
            }]
        })
        .to_string();
        let c = parse(body.as_bytes()).unwrap();
        assert_eq!(c.categories.len(), 2);
        assert_eq!(c.categories[0].class, Some(CategoryClass::Kind));
        assert_eq!(
            c.attributes.get("occi.compute.speed").unwrap().to_string(),
            "2"
        );
        assert_eq!(
            c.attributes.get("occi.compute.memory").unwrap().to_string(),
            "4.0"
        );
        assert_eq!(
            c.attributes.get("occi.core.id"),
            Some(&Value::from(
                "urn:uuid:70d3e2a2-1b1a-4e3f-9e0f-1a2b3c4d5e6f"
            ))
        );
        assert_eq!(
            c.links[0].rel,
            ["http://schemas.ogf.org/occi/infrastructure#network"]
        );
        assert_eq!(c.action_links[0].term(), "start");
    }

    #[test]
    fn action_invocation_and_mixin_definition() {
        let c = parse(br#"{"action": "http://s#deploy", "attributes": {"x": "1"}}"#).unwrap();
        assert_eq!(c.categories[0].class, Some(CategoryClass::Action));
        assert_eq!(c.categories[0].term, "deploy");
        assert_eq!(c.attributes.get("x"), Some(&Value::from("1")));
        let c = parse(
            br#"{"mixins": [{"term": "m", "scheme": "http://u#", "location": "/m/", "depends": ["http://s#x"],
                 "attributes": {"a": {"type": "number", "required": true, "mutable": false, "default": 3}}}]}"#,
        )
        .unwrap();
        let m = &c.categories[0];
        assert_eq!(m.class, Some(CategoryClass::Mixin));
        assert_eq!(m.rel, ["http://s#x"]);
        assert_eq!(
            m.attributes[0],
            AttributeDef::new("a")
                .with_type(AttributeType::Number)
                .required()
                .immutable()
                .with_default(3)
        );
    }

    #[test]
    fn errors_are_positioned_or_explained() {
        let e = parse(b"{\n  \"kind\": 5}").unwrap_err();
        assert_eq!(
            e.origin,
            Origin::Json {
                line: 2,
                column: 11
            }
        );
        let e = parse(br#"{"kind": "k", "attributes": {"a": null}}"#).unwrap_err();
        assert!(e.to_string().contains("attribute 'a'"), "{e}");
        let e = parse(br#"{"attributes": {"a": 1}}"#).unwrap_err();
        assert!(e.to_string().contains("kind"), "{e}");
        for (body, line, column) in [(&b"[1]"[..], 1, 2), (b"", 1, 0)] {
            let e = parse(body).unwrap_err();
            assert_eq!(e.origin, Origin::Json { line, column }, "{e}");
            assert!(
                e.to_string().starts_with(&format!(
                    "JSON body line {line} column {column}: expected a valid OCCI JSON document"
                )),
                "{e}"
            );
        }
        assert_eq!(parse(b"{}").unwrap(), Content::default());
        let e = parse(b"{\n \"kind\": \"\xff\"}").unwrap_err();
        assert_eq!(
            e.origin,
            Origin::Json {
                line: 2,
                column: 11
            }
        );
    }

    #[test]
    fn rendering_lifts_core_attributes_and_makes_locations_absolute() {
        let mut r = Resource::new("http://s#orchestrator", "/orchestrator/default");
        r.attributes.insert("occi.core.id", "default");
        r.attributes.insert("n", 5);
        r.actions.push("http://s#deploy".into());
        r.links
            .push(Link::new("/orchestrator/other", "http://s#orchestrator"));
        let v: serde_json::Value =
            serde_json::from_slice(&render_resource("http://h:1", &r)).unwrap();
        assert_eq!(v["id"], "default");
        assert_eq!(v["location"], "http://h:1/orchestrator/default");
        assert_eq!(v["attributes"]["n"], json!(5));
        assert_eq!(
            v["links"][0]["source"]["location"],
            "http://h:1/orchestrator/default"
        );
        assert_eq!(v["links"][0]["target"]["kind"], "http://s#orchestrator");
    }

    #[test]
    fn query_interface_rendering_sorts_categories_by_class() {
        let kind = Category::kind("http://s#", "orchestrator")
            .with_rel(crate::RESOURCE)
            .with_location("/orchestrator/")
            .with_attribute(AttributeDef::new("occi.mcn.stack.state").immutable())
            .with_action("http://s#deploy");
        let v: serde_json::Value = serde_json::from_slice(&render_categories(&[
            kind,
            Category::action("http://s#", "deploy"),
        ]))
        .unwrap();
        assert_eq!(v["kinds"][0]["parent"], crate::RESOURCE);
        assert_eq!(
            v["kinds"][0]["attributes"]["occi.mcn.stack.state"],
            json!({"type": "string", "required": false, "mutable": false})
        );
        assert_eq!(v["actions"][0]["term"], "deploy");
        assert!(v.get("mixins").is_none());
    }
}

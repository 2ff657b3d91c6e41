//! Property tests: for every rendering, render → parse gives back the same
//! value; and nothing rendered ever breaks a header.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

use http::{HeaderMap, HeaderValue};
use occi::{
    json, parse_request, text, uri_list, AttributeDef, AttributeType, Attributes, Category,
    CategoryClass, Content, Link, MediaType, Renderer, Resource, Value,
};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_-]{0,6}(\\.[a-z][a-z0-9_-]{0,6}){0,3}"
}

fn term() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._-]{0,10}"
}

fn scheme() -> impl Strategy<Value = String> {
    "http://[a-z]{1,8}\\.example(/[a-z0-9]{1,6}){0,2}#"
}

fn type_id() -> impl Strategy<Value = String> {
    (scheme(), term()).prop_map(|(s, t)| s + &t)
}

fn path() -> impl Strategy<Value = String> {
    "(/[a-z0-9._~-]{1,8}){1,3}"
}

fn finite() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("finite", |f| f.is_finite())
}

/// Values every text rendering carries exactly (no lists/objects).
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        finite().prop_map(|f| Value::float(f).unwrap()),
        any::<bool>().prop_map(Value::Bool),
    ]
}

fn json_leaf() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        finite().prop_map(serde_json::Value::from),
        ".{0,8}".prop_map(serde_json::Value::from),
    ]
}

fn json_tree() -> impl Strategy<Value = serde_json::Value> {
    json_leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every value, lists and objects included.
fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => scalar(),
        1 => vec(json_tree(), 0..4).prop_map(Value::List),
        1 => btree_map("[a-z]{1,4}", json_tree(), 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
    ]
}

fn attributes(v: impl Strategy<Value = Value>) -> impl Strategy<Value = Attributes> {
    btree_map(name(), v, 0..8).prop_map(|m| m.into_iter().collect())
}

fn link(v: impl Strategy<Value = Value>) -> impl Strategy<Value = Link> {
    (
        path(),
        vec(type_id(), 0..3),
        proptest::option::of(path()),
        type_id(),
        vec(type_id(), 0..3),
        // link attribute names never collide with rel/self/category
        btree_map("occi\\.[a-z]{1,6}\\.[a-z]{1,6}", v, 0..4),
    )
        .prop_map(|(target, rel, location, kind, mixins, attrs)| Link {
            kind,
            mixins,
            location,
            source: None,
            source_kind: None,
            target,
            rel,
            attributes: attrs.into_iter().collect(),
            actions: Vec::new(),
        })
}

fn resource() -> impl Strategy<Value = Resource> {
    (
        type_id(),
        vec(type_id(), 0..3),
        path(),
        attributes(scalar()),
        vec(link(scalar()), 0..3),
        vec(type_id(), 0..3),
    )
        .prop_map(
            |(kind, mixins, location, attributes, links, actions)| Resource {
                kind,
                mixins,
                location: Some(location),
                attributes,
                links,
                actions,
            },
        )
}

fn class() -> impl Strategy<Value = CategoryClass> {
    prop_oneof![
        Just(CategoryClass::Kind),
        Just(CategoryClass::Mixin),
        Just(CategoryClass::Action)
    ]
}

/// Categories with what the text renderings carry.
fn text_category() -> impl Strategy<Value = Category> {
    (
        scheme(),
        term(),
        proptest::option::of(class()),
        proptest::option::of(any::<String>()),
        vec(type_id(), 0..3),
        proptest::option::of("(/[a-z0-9]{1,8}){1,2}/"),
        btree_map(name(), (any::<bool>(), any::<bool>()), 0..5),
        vec(type_id(), 0..3),
    )
        .prop_map(
            |(scheme, term, class, title, rel, location, attrs, actions)| Category {
                scheme,
                term,
                class,
                title,
                rel,
                applies: Vec::new(),
                location,
                attributes: attrs
                    .into_iter()
                    .map(|(n, (required, mutable))| AttributeDef {
                        required,
                        mutable,
                        ..AttributeDef::new(n)
                    })
                    .collect(),
                actions,
            },
        )
}

fn attr_type() -> impl Strategy<Value = AttributeType> {
    prop_oneof![
        Just(AttributeType::String),
        Just(AttributeType::Number),
        Just(AttributeType::Integer),
        Just(AttributeType::Boolean),
        Just(AttributeType::List),
        Just(AttributeType::Object),
        vec("[a-z]{1,6}", 1..4).prop_map(AttributeType::Enum),
    ]
}

fn attr_def() -> impl Strategy<
    Value = (
        AttributeType,
        bool,
        bool,
        Option<Value>,
        Option<String>,
        Option<String>,
    ),
> {
    (
        attr_type(),
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(any_value()),
        proptest::option::of(".{0,12}"),
        proptest::option::of("[a-z.*+]{1,8}"),
    )
}

/// Categories with everything the JSON rendering carries for their class.
fn json_category() -> impl Strategy<Value = Category> {
    (
        scheme(),
        term(),
        class(),
        proptest::option::of(".{0,12}"),
        vec(type_id(), 0..3),
        vec(type_id(), 0..3),
        proptest::option::of("(/[a-z0-9]{1,8}){1,2}/"),
        btree_map(name(), attr_def(), 0..4),
        vec(type_id(), 0..3),
    )
        .prop_map(
            |(scheme, term, class, title, rel, applies, location, attrs, actions)| {
                let attributes = attrs
                    .into_iter()
                    .map(
                        |(n, (ty, required, mutable, default, description, pattern))| {
                            AttributeDef {
                                name: n,
                                ty,
                                required,
                                mutable,
                                default,
                                description,
                                pattern,
                            }
                        },
                    )
                    .collect();
                let mut c = Category {
                    scheme,
                    term,
                    class: Some(class),
                    title,
                    rel,
                    applies,
                    location,
                    attributes,
                    actions,
                };
                match class {
                    CategoryClass::Kind => {
                        c.rel.truncate(1);
                        c.applies.clear();
                    }
                    CategoryClass::Mixin => {}
                    CategoryClass::Action => {
                        c.rel.clear();
                        c.applies.clear();
                        c.location = None;
                        c.actions.clear();
                    }
                }
                c
            },
        )
}

/// The resource a text request describes (its location is the URL's).
fn resource_from(content: Content, location: Option<String>) -> Resource {
    let mut categories = content.categories.into_iter();
    let kind = categories.next().map(|c| c.type_id()).unwrap_or_default();
    Resource {
        kind,
        mixins: categories.map(|c| c.type_id()).collect(),
        location,
        attributes: content.attributes,
        links: content.links,
        actions: content.action_links.into_iter().map(|a| a.action).collect(),
    }
}

fn request(media: MediaType, headers: Vec<(http::HeaderName, HeaderValue)>) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("content-type", media.header_value());
    for (k, v) in headers {
        h.append(k, v);
    }
    h
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn attribute_element_round_trips(name in name(), v in scalar()) {
        let s = text::attribute_to_string(&name, &v);
        prop_assert!(HeaderValue::from_str(&s).is_ok());
        prop_assert_eq!(text::parse_attributes(&s).unwrap(), vec![(name, v)]);
    }

    #[test]
    fn lists_and_objects_round_trip_through_text_with_their_definition(name in name(), v in any_value()) {
        let ty = match &v {
            Value::List(_) => AttributeType::List,
            Value::Object(_) => AttributeType::Object,
            Value::Number(_) => AttributeType::Number,
            Value::Bool(_) => AttributeType::Boolean,
            Value::String(_) => AttributeType::String,
        };
        let s = text::attribute_to_string(&name, &v);
        let (_, parsed) = text::parse_attributes(&s).unwrap().remove(0);
        let def = AttributeDef::new(name).with_type(ty);
        prop_assert_eq!(def.coerce(parsed).unwrap(), v);
    }

    #[test]
    fn values_convert_losslessly_to_and_from_json(v in any_value()) {
        let j: serde_json::Value = v.clone().into();
        prop_assert_eq!(Value::try_from(j.clone()).unwrap(), v.clone());
        let text = serde_json::to_string(&v).unwrap();
        prop_assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
    }

    #[test]
    fn category_element_round_trips(c in text_category()) {
        let s = text::category_to_string(&c, true);
        prop_assert!(HeaderValue::from_str(&s).is_ok());
        prop_assert_eq!(text::parse_categories(&s).unwrap(), vec![c]);
    }

    #[test]
    fn link_element_round_trips(l in link(scalar())) {
        let s = text::link_to_string("", &l);
        prop_assert!(HeaderValue::from_str(&s).is_ok());
        prop_assert_eq!(text::parse_links(&s).unwrap(), vec![text::LinkValue::Link(l)]);
    }

    #[test]
    fn resource_round_trips_in_text_plain_and_text_occi(r in resource()) {
        let renderer = Renderer::new("");
        for media in [MediaType::TextPlain, MediaType::TextOcci] {
            let out = renderer.resource(media, &r).unwrap();
            prop_assert_eq!(out.content_type, media);
            let h = request(media, out.headers);
            let content = parse_request(&h, &out.body).unwrap();
            prop_assert_eq!(resource_from(content, r.location.clone()), r.clone());
        }
    }

    #[test]
    fn resource_round_trips_in_json(mut r in resource(), attrs in attributes(any_value())) {
        for (n, v) in attrs {
            r.attributes.insert(n, v);
        }
        // JSON gives inline links the resource as source.
        for l in &mut r.links {
            l.source = r.location.clone();
            l.source_kind = Some(r.kind.clone());
            l.rel.truncate(1);
        }
        let out = Renderer::new("").resource(MediaType::OcciJson, &r).unwrap();
        prop_assert_eq!(json::parse_resource(&out.body).unwrap(), r.clone());
        let h = request(MediaType::OcciJson, out.headers);
        let content = parse_request(&h, &out.body).unwrap();
        prop_assert_eq!(resource_from(content, r.location.clone()), r);
    }

    #[test]
    fn query_interface_round_trips_in_text(cs in vec(text_category(), 0..5)) {
        let renderer = Renderer::new("http://h:1");
        for media in [MediaType::TextPlain, MediaType::TextOcci] {
            let out = renderer.query_interface(media, &cs).unwrap();
            let content = parse_request(&request(media, out.headers), &out.body).unwrap();
            prop_assert_eq!(&content.categories, &cs);
        }
    }

    #[test]
    fn query_interface_round_trips_in_json(cs in vec(json_category(), 0..5)) {
        let out = Renderer::new("").query_interface(MediaType::OcciJson, &cs).unwrap();
        let content = json::parse(&out.body).unwrap();
        // JSON groups by class: kinds, then mixins, then actions.
        let mut expected = cs.clone();
        expected.sort_by_key(|c| match c.class {
            Some(CategoryClass::Kind) | None => 0,
            Some(CategoryClass::Mixin) => 1,
            Some(CategoryClass::Action) => 2,
        });
        prop_assert_eq!(content.categories, expected);
    }

    #[test]
    fn locations_round_trip_in_every_rendering(paths in vec(path(), 0..6)) {
        let renderer = Renderer::new("http://127.0.0.1:8051");
        let abs: Vec<String> = paths.iter().map(|p| format!("http://127.0.0.1:8051{p}")).collect();
        for media in [MediaType::TextPlain, MediaType::TextOcci, MediaType::UriList] {
            let out = renderer.locations(media, paths.iter().map(String::as_str));
            let content = parse_request(&request(media, out.headers), &out.body).unwrap();
            prop_assert_eq!(&content.locations, &abs);
        }
        let out = renderer.locations(MediaType::UriList, paths.iter().map(String::as_str));
        prop_assert_eq!(uri_list::parse(std::str::from_utf8(&out.body).unwrap()).unwrap(), abs);
    }

    #[test]
    fn anything_rendered_is_a_valid_header(
        term in any::<String>(),
        scheme in ".+",
        title in any::<String>(),
        name in any::<String>(),
        value in any::<String>(),
        target in any::<String>(),
    ) {
        let c = Category::kind(scheme.clone(), term).with_title(title).with_rel(scheme)
            .with_location(target.clone());
        let s = text::category_to_string(&c, true);
        prop_assert!(HeaderValue::from_str(&s).is_ok(), "{:?}", s);
        prop_assert_eq!(text::parse_categories(&s).unwrap().len(), 1);
        let mut l = Link::new(target.clone(), "http://s#k");
        l.attributes.insert(name.clone(), value.clone());
        let s = text::link_to_string("http://h", &l);
        prop_assert!(HeaderValue::from_str(&s).is_ok(), "{:?}", s);
        prop_assert_eq!(text::parse_links(&s).unwrap().len(), 1);
        let s = text::attribute_to_string(&name, &Value::String(value));
        prop_assert!(HeaderValue::from_str(&s).is_ok(), "{:?}", s);
        let mut r = Resource::new("http://s#k", target);
        r.attributes.insert(name, 1);
        for media in [MediaType::TextOcci, MediaType::TextPlain] {
            let out = Renderer::new("http://h").resource(media, &r).unwrap();
            for (_, v) in &out.headers {
                prop_assert!(!v.is_empty());
            }
            prop_assert!(parse_request(&request(media, out.headers), &out.body).is_ok());
        }
    }
}

//! The OCCI text renderings: `text/occi` (elements in HTTP headers) and
//! `text/plain` (the same elements as body lines).
//!
//! The element-level functions here parse one header value (which may hold
//! a comma-separated list) or render one element; [`crate::parse_request`]
//! and [`crate::Renderer`] use them for whole requests and responses.

mod grammar;
pub(crate) mod render;

pub use grammar::LinkValue;
pub(crate) use grammar::{number, Field};

use crate::{Category, Content, Link, Origin, ParseError, Value};

fn to_error(origin: Origin, input: &str, f: grammar::Fail<'_>) -> ParseError {
    let start = input.as_ptr() as usize;
    let at = f.rest.as_ptr() as usize;
    let position = if at >= start && at <= start + input.len() {
        at - start
    } else {
        0
    };
    ParseError::at(origin, input, position, f.expected)
}

/// Parses the value of a `Category` header (one or more comma-separated
/// `category-value`s).
pub fn parse_categories(value: &str) -> Result<Vec<Category>, ParseError> {
    let mut out = Vec::new();
    grammar::list(value, grammar::category, |c| out.push(c))
        .map_err(|f| to_error(Origin::Value, value, f))?;
    Ok(out)
}

/// Parses the value of a `Link` header: resource links and action links.
pub fn parse_links(value: &str) -> Result<Vec<LinkValue>, ParseError> {
    let mut out = Vec::new();
    grammar::list(value, grammar::link, |l| out.push(l))
        .map_err(|f| to_error(Origin::Value, value, f))?;
    Ok(out)
}

/// Parses the value of an `X-OCCI-Attribute` header into `(name, value)`
/// pairs in order.
pub fn parse_attributes(value: &str) -> Result<Vec<(String, Value)>, ParseError> {
    let mut out = Vec::new();
    grammar::list(value, grammar::attribute, |a| out.push(a))
        .map_err(|f| to_error(Origin::Value, value, f))?;
    Ok(out)
}

/// Parses the value of an `X-OCCI-Location` (or `Location`) header.
pub fn parse_locations(value: &str) -> Result<Vec<String>, ParseError> {
    let mut out = Vec::new();
    grammar::list(value, grammar::location, |l| out.push(l))
        .map_err(|f| to_error(Origin::Value, value, f))?;
    Ok(out)
}

/// Adds the elements of one header value (or body line value) of `field`
/// to `content`.
pub(crate) fn add_field(
    field: Field,
    value: &str,
    origin: impl Fn() -> Origin,
    content: &mut Content,
) -> Result<(), ParseError> {
    let r = match field {
        Field::Category => grammar::list(value, grammar::category, |c| content.categories.push(c)),
        Field::Link => grammar::list(value, grammar::link, |l| match l {
            LinkValue::Link(l) => content.links.push(l),
            LinkValue::Action(a) => content.action_links.push(a),
        }),
        Field::Attribute => grammar::list(value, grammar::attribute, |(n, v)| {
            content.attributes.insert(n, v)
        }),
        Field::OcciLocation | Field::Location => {
            grammar::list(value, grammar::location, |l| content.locations.push(l))
        }
    };
    r.map_err(|f| to_error(origin(), value, f))
}

/// Splits a body into logical lines: a line that starts with a space or tab
/// continues the previous one (folding). Yields (1-based first line number,
/// line without its line break).
fn logical_lines(body: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = body;
    let mut line_no = 1usize;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let start_line = line_no;
        let bytes = rest.as_bytes();
        let mut end = rest.len();
        let mut next = rest.len();
        let mut i = 0;
        while let Some(off) = memchr_newline(&bytes[i..]) {
            let nl = i + off;
            line_no += 1;
            match bytes.get(nl + 1) {
                Some(b' ' | b'\t') => i = nl + 1,
                _ => {
                    end = nl;
                    next = nl + 1;
                    break;
                }
            }
        }
        let line = &rest[..end];
        let line = line.strip_suffix('\r').unwrap_or(line);
        rest = &rest[next..];
        Some((start_line, line))
    })
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

/// Parses a `text/plain` body: one element per line (`Category: ...`,
/// `Link: ...`, `X-OCCI-Attribute: ...`, `X-OCCI-Location: ...`,
/// `Location: ...`), field names case-insensitive, LF or CRLF line ends,
/// folded lines joined, blank lines skipped. A line may also carry a
/// comma-separated list, as a header would.
pub fn parse_body(body: &str) -> Result<Content, ParseError> {
    let mut content = Content::default();
    parse_body_into(body, &mut content)?;
    Ok(content)
}

pub(crate) fn parse_body_into(body: &str, content: &mut Content) -> Result<(), ParseError> {
    for (line_no, line) in logical_lines(body) {
        let origin = || Origin::BodyLine { line: line_no };
        let trimmed = grammar::ows(line);
        if trimmed.trim().is_empty() {
            continue;
        }
        let (value, field) = match grammar::field(trimmed) {
            Ok(v) => v,
            Err(nom::Err::Error(f) | nom::Err::Failure(f)) => {
                return Err(to_error(origin(), line, f))
            }
            Err(nom::Err::Incomplete(_)) => {
                return Err(ParseError::at(origin(), line, 0, "a complete line"))
            }
        };
        // Positions are reported relative to the whole line.
        let offset = line.len() - value.len();
        add_field(field, value, origin, content).map_err(|mut e| {
            e.position += offset;
            e
        })?;
    }
    Ok(())
}

/// Renders a category (`full`: with title, rel, location, attributes,
/// actions) as a header value, without the `Category:` name.
pub fn category_to_string(c: &Category, full: bool) -> String {
    let mut s = String::with_capacity(128);
    render::write_category(&mut s, c, full);
    s
}

/// Renders a resource link as a `Link` header value; relative target and
/// `self` locations are prefixed with `base`.
pub fn link_to_string(base: &str, l: &Link) -> String {
    let mut s = String::with_capacity(128);
    render::write_link(&mut s, base, l);
    s
}

/// Renders an action link for the entity at `location`.
pub fn action_link_to_string(base: &str, location: &str, action: &str) -> String {
    let mut s = String::with_capacity(128);
    render::write_action_link(&mut s, base, location, action);
    s
}

/// Renders `name=value` as an `X-OCCI-Attribute` header value.
pub fn attribute_to_string(name: &str, v: &Value) -> String {
    let mut s = String::with_capacity(name.len() + 16);
    render::write_attribute(&mut s, name, v);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AttributeDef, CategoryClass, LINK};

    const MCN: &str = "http://schemas.mobile-cloud-networking.eu/occi/service#";

    // GFD.185 section 3.4.1 example (with its trailing ';').
    #[test]
    fn spec_category_definition_with_trailing_semicolon() {
        let v = "storage; scheme=\"http://schemas.ogf.org/occi/infrastructure#\"; class=\"kind\"; \
                 title=\"Storage Resource\"; rel=\"http://schemas.ogf.org/occi/core#resource\"; \
                 location=\"/storage/\"; attributes=\"occi.storage.size{required} occi.storage.state{immutable}\"; \
                 actions=\"http://schemas.ogf.org/occi/infrastructure/storage/action#resize \
                 http://schemas.ogf.org/occi/infrastructure/storage/action#online\";";
        let c = parse_categories(v).unwrap();
        assert_eq!(c.len(), 1);
        let c = &c[0];
        assert_eq!(c.term, "storage");
        assert_eq!(c.class, Some(CategoryClass::Kind));
        assert_eq!(c.title.as_deref(), Some("Storage Resource"));
        assert_eq!(c.rel, ["http://schemas.ogf.org/occi/core#resource"]);
        assert_eq!(c.location.as_deref(), Some("/storage/"));
        assert_eq!(
            c.attributes,
            [
                AttributeDef::new("occi.storage.size").required(),
                AttributeDef::new("occi.storage.state").immutable()
            ]
        );
        assert_eq!(c.actions.len(), 2);
    }

    #[test]
    fn mcn_category_without_class_and_pyssf_rendering() {
        let c = parse_categories(&format!("orchestrator; scheme=\"{MCN}\"")).unwrap();
        assert_eq!(c[0].class, None);
        assert!(c[0].is(&format!("{MCN}orchestrator")));
        // As pyssf renders it on GET /-/ (absolute location, no spaces in attributes list end).
        let v = format!(
            "orchestrator; scheme=\"{MCN}\"; class=\"kind\"; rel=\"http://schemas.ogf.org/occi/core#resource\"; \
             location=\"http://HOST/orchestrator/\"; attributes=\"occi.mcn.stack.state{{immutable}} occi.mcn.stack.id{{immutable}}\"; \
             actions=\"{MCN}deploy {MCN}provision\""
        );
        let c = &parse_categories(&v).unwrap()[0];
        assert_eq!(c.attributes.len(), 2);
        assert!(!c.attributes[0].mutable);
        assert_eq!(
            c.actions,
            [format!("{MCN}deploy"), format!("{MCN}provision")]
        );
    }

    #[test]
    fn several_categories_in_one_value_with_odd_spacing() {
        let v = "compute ;scheme = \"http://schemas.ogf.org/occi/infrastructure#\" ; class=kind ;,\
                 ipnetwork; scheme=\"http://schemas.ogf.org/occi/infrastructure/network#\"; class=\"mixin\";";
        let c = parse_categories(v).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].class, Some(CategoryClass::Kind));
        assert_eq!(c[1].class, Some(CategoryClass::Mixin));
    }

    #[test]
    fn category_errors_name_the_byte_and_expectation() {
        let e = parse_categories("orchestrator; sheme=\"x\"").unwrap_err();
        assert_eq!(e.position, 12);
        assert!(e.expected.contains("scheme"), "{e}");
        let e = parse_categories("a; scheme=\"x\"; class=\"thing\"").unwrap_err();
        assert_eq!(e.position, 21);
        let e = parse_categories("a; scheme=\"x").unwrap_err();
        assert!(e.expected.contains("closing"), "{e}");
        let e = parse_categories("a; scheme=\"x\"; attributes=\"a{required\"").unwrap_err();
        assert!(e.expected.contains('}'), "{e}");
        assert_eq!(e.position, 37);
    }

    #[test]
    fn spec_link_examples() {
        let v = "</network/123>; rel=\"http://schemas.ogf.org/occi/infrastructure#network\"; \
                 self=\"/link/networkinterface/456\"; \
                 category=\"http://schemas.ogf.org/occi/infrastructure#networkinterface\"; \
                 occi.networkinterface.interface=\"eth0\"; occi.networkinterface.mac=\"00:11:22:33:44:55\", \
                 </compute/123?action=start>; rel=\"http://schemas.ogf.org/occi/infrastructure/compute/action#start\"";
        let links = parse_links(v).unwrap();
        assert_eq!(links.len(), 2);
        let LinkValue::Link(l) = &links[0] else {
            panic!("not a link")
        };
        assert_eq!(l.target, "/network/123");
        assert_eq!(l.location.as_deref(), Some("/link/networkinterface/456"));
        assert_eq!(
            l.kind,
            "http://schemas.ogf.org/occi/infrastructure#networkinterface"
        );
        assert_eq!(
            l.attributes.get("occi.networkinterface.mac"),
            Some(&Value::from("00:11:22:33:44:55"))
        );
        let LinkValue::Action(a) = &links[1] else {
            panic!("not an action link")
        };
        assert_eq!(a.term(), "start");
        assert_eq!(a.target.as_deref(), Some("/compute/123?action=start"));
    }

    #[test]
    fn link_without_category_is_a_core_link_and_action_link_needs_rel() {
        let l = parse_links("</a>").unwrap();
        assert!(matches!(&l[0], LinkValue::Link(l) if l.kind == LINK));
        let e = parse_links("</a?action=x>; self=\"/l\"").unwrap_err();
        assert!(e.expected.contains("rel"), "{e}");
    }

    #[test]
    fn attributes_with_commas_equals_semicolons_and_types() {
        let v = "occi.epc.attr_1=\"foo, bar=baz; qux\", n=5, f=5.0, b=true, e=active, \
                 esc=\"say \\\"hi\\\"\", neg=-3";
        let a = parse_attributes(v).unwrap();
        assert_eq!(
            a[0],
            ("occi.epc.attr_1".into(), Value::from("foo, bar=baz; qux"))
        );
        assert_eq!(a[1].1.to_string(), "5");
        assert_eq!(a[2].1.to_string(), "5.0");
        assert_eq!(a[3].1, Value::Bool(true));
        assert_eq!(a[4].1, Value::from("active"));
        assert_eq!(a[5].1, Value::from("say \"hi\""));
        assert_eq!(a[6].1, Value::from(-3));
        let e = parse_attributes("x=\"a\" y=2").unwrap_err();
        assert_eq!(e.position, 6);
        let e = parse_attributes("x=").unwrap_err();
        assert!(e.expected.contains("value"), "{e}");
    }

    #[test]
    fn locations_in_lists() {
        let l = parse_locations("http://h/a/1, http://h/a/2,,/a/3;v=1").unwrap();
        assert_eq!(l, ["http://h/a/1", "http://h/a/2", "/a/3;v=1"]);
    }

    #[test]
    fn text_plain_body_with_crlf_folding_and_mixed_case() {
        let body = format!(
            "category: orchestrator;\r\n  scheme=\"{MCN}\";\r\n\r\nX-OCCI-Attribute: a=\"1\"\r\nx-occi-attribute: b=2, c=\"x,y\"\r\nLink: </x>\nX-OCCI-Location: http://h/x/1\n"
        );
        let c = parse_body(&body).unwrap();
        assert_eq!(c.categories.len(), 1);
        assert_eq!(c.attributes.len(), 3);
        assert_eq!(c.links.len(), 1);
        assert_eq!(c.locations, ["http://h/x/1"]);
    }

    #[test]
    fn body_errors_give_line_and_byte() {
        let e = parse_body("Category: a; scheme=\"s\"\nX-OCCI-Atribute: x=1\n").unwrap_err();
        assert_eq!(e.origin, Origin::BodyLine { line: 2 });
        assert_eq!(e.position, 0);
        let e = parse_body("\nX-OCCI-Attribute: x=1 y\n").unwrap_err();
        assert_eq!(e.origin, Origin::BodyLine { line: 2 });
        assert_eq!(e.position, 22);
    }
}

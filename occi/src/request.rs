//! Reading the OCCI content of a request (headers + body + content type).

use http::{header::CONTENT_TYPE, HeaderMap, HeaderName};

use crate::{
    text::{self, Field},
    ActionLink, Attributes, Category, CategoryClass, Link, Origin, ParseError, RequestError,
    RequestFormat, Resource,
};

/// `Category` header name.
pub const CATEGORY: HeaderName = HeaderName::from_static("category");
/// `Link` header name.
pub const LINK: HeaderName = http::header::LINK;
/// `X-OCCI-Attribute` header name.
pub const X_OCCI_ATTRIBUTE: HeaderName = HeaderName::from_static("x-occi-attribute");
/// `X-OCCI-Location` header name.
pub const X_OCCI_LOCATION: HeaderName = HeaderName::from_static("x-occi-location");
/// `Location` header name.
pub const LOCATION: HeaderName = http::header::LOCATION;

/// The OCCI content of a request, whatever rendering it came in.
///
/// Text renderings fill `categories`, `links`, `action_links`,
/// `attributes` and `locations`; JSON documents are mapped onto the same
/// fields (see [`crate::json::parse`]), and a JSON collection also fills
/// `resources`. Categories are as sent: references (maybe without class)
/// or full definitions (`POST /-/` of a user mixin).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Content {
    /// `Category` elements in order.
    pub categories: Vec<Category>,
    /// Resource links (`Link` elements whose URI has no `?action=`).
    pub links: Vec<Link>,
    /// Action links (`<...?action=term>; rel="..."`), e.g. from a client
    /// that PUTs back a GET rendering.
    pub action_links: Vec<ActionLink>,
    /// `X-OCCI-Attribute` values in order; a repeated name keeps its first
    /// position and its last value.
    pub attributes: Attributes,
    /// `X-OCCI-Location` / `Location` values, or a uri-list body.
    pub locations: Vec<String>,
    /// Resources of a JSON `{"resources": [...]}` collection.
    pub resources: Vec<Resource>,
}

impl Content {
    /// Whether the request carried no OCCI content at all.
    pub fn is_empty(&self) -> bool {
        self.categories.is_empty()
            && self.links.is_empty()
            && self.action_links.is_empty()
            && self.attributes.is_empty()
            && self.locations.is_empty()
            && self.resources.is_empty()
    }

    /// Categories sent with class `class` (not those without class).
    pub fn categories_of(&self, class: CategoryClass) -> impl Iterator<Item = &Category> {
        self.categories
            .iter()
            .filter(move |c| c.class == Some(class))
    }
}

/// Reads the OCCI content of a request: classifies its `Content-Type`
/// ([`RequestFormat::classify`]) and parses accordingly
/// ([`parse_content`]).
///
/// Errors: [`RequestError::UnsupportedMediaType`] (415) or
/// [`RequestError::Parse`] (400, naming header/line, byte and expectation).
///
/// Strict about what would otherwise be ignored: OCCI headers under a
/// type that is none of the renderings (415), a `text/occi` body other
/// than the rendering's own `OK` (400), OCCI headers on a JSON request
/// without a body (400). A request without `Content-Type` or with
/// `text/plain`/`text/uri-list` and no body still has its headers read
/// (curl users send `-H 'Category: ...'` alone).
pub fn parse_request(headers: &HeaderMap, body: &[u8]) -> Result<Content, RequestError> {
    let blank = is_blank(body);
    let content_type = headers.get(CONTENT_TYPE);
    let format = RequestFormat::classify(content_type, blank)?;
    match format {
        RequestFormat::Headers if content_type.is_some() => {
            if let Some(names) = occi_header_names(headers) {
                return Err(RequestError::HeadersUnderUnsupportedType {
                    content_type: content_type
                        .map(|v| {
                            String::from_utf8_lossy(v.as_bytes())
                                .chars()
                                .take(100)
                                .collect()
                        })
                        .unwrap_or_default(),
                    headers: names,
                });
            }
        }
        RequestFormat::TextOcci if !blank && body.trim_ascii() != b"OK" => {
            return Err(RequestError::BodyIgnored { bytes: body.len() });
        }
        RequestFormat::OcciJson if blank => {
            if let Some(names) = occi_header_names(headers) {
                return Err(RequestError::HeadersIgnored { headers: names });
            }
        }
        _ => {}
    }
    Ok(parse_content(format, headers, body)?)
}

/// The OCCI header names present in `headers` (`None` when none is).
fn occi_header_names(headers: &HeaderMap) -> Option<String> {
    let present: Vec<&str> = [
        ("Category", &CATEGORY),
        ("Link", &LINK),
        ("X-OCCI-Attribute", &X_OCCI_ATTRIBUTE),
        ("X-OCCI-Location", &X_OCCI_LOCATION),
    ]
    .into_iter()
    .filter(|(_, h)| headers.contains_key(*h))
    .map(|(n, _)| n)
    .collect();
    (!present.is_empty()).then(|| present.join(", "))
}

fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

/// Parses a request whose format is known.
///
/// - `TextOcci` and `Headers`: the `Category`, `Link`, `X-OCCI-Attribute`
///   and `X-OCCI-Location` headers (names case-insensitive; repeated lines
///   and comma lists both work); the body is ignored.
/// - `TextPlain`, `UriList`, `OcciJson`: the body; when it is empty, the
///   headers instead (curl users send `-H 'Category: ...'` with any
///   content type).
pub fn parse_content(
    format: RequestFormat,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Content, ParseError> {
    let blank = is_blank(body);
    match format {
        RequestFormat::TextOcci | RequestFormat::Headers => parse_headers(headers),
        _ if blank => parse_headers(headers),
        RequestFormat::TextPlain => text::parse_body(body_str(body)?),
        RequestFormat::UriList => Ok(Content {
            locations: crate::uri_list::parse(body_str(body)?)?,
            ..Content::default()
        }),
        RequestFormat::OcciJson => crate::json::parse(body),
    }
}

/// The body as UTF-8, or an error at the first invalid byte.
fn body_str(body: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(body).map_err(|e| {
        let bad = e.valid_up_to();
        let line_start = body[..bad]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        let line = body[..bad].iter().filter(|&&b| b == b'\n').count() + 1;
        ParseError {
            origin: Origin::BodyLine { line },
            position: bad - line_start,
            expected: "UTF-8 text".into(),
            found: None,
        }
    })
}

/// Parses only the OCCI headers of a request.
pub fn parse_headers(headers: &HeaderMap) -> Result<Content, ParseError> {
    let mut content = Content::default();
    for (name, field) in [
        (CATEGORY, Field::Category),
        (LINK, Field::Link),
        (X_OCCI_ATTRIBUTE, Field::Attribute),
        (X_OCCI_LOCATION, Field::OcciLocation),
    ] {
        for (index, value) in headers.get_all(&name).iter().enumerate() {
            let origin = || Origin::Header {
                name: field.name(),
                index,
            };
            let value = std::str::from_utf8(value.as_bytes()).map_err(|e| ParseError {
                origin: origin(),
                position: e.valid_up_to(),
                expected: "UTF-8 text".into(),
                found: None,
            })?;
            text::add_field(field, value, origin, &mut content)?;
        }
    }
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;
    use http::HeaderValue;

    const MCN: &str = "http://schemas.mobile-cloud-networking.eu/occi/service#";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    // The MCN SM's init request: lower-case names, no class.
    #[test]
    fn mcn_put_with_lower_case_headers() {
        let h = headers(&[
            ("content-type", "text/occi"),
            ("category", &format!("orchestrator; scheme=\"{MCN}\"")),
            ("x-occi-attribute", "mcn.endpoint.maas=\"160.85.4.50\""),
            ("x-occi-attribute", "a=\"x, y\", b=2"),
        ]);
        let c = parse_request(&h, b"").unwrap();
        assert_eq!(c.categories.len(), 1);
        assert!(c.categories[0].is(&format!("{MCN}orchestrator")));
        assert_eq!(c.attributes.len(), 3);
        assert_eq!(c.attributes.get("a"), Some(&Value::from("x, y")));
    }

    #[test]
    fn content_that_would_be_ignored_is_refused() {
        let cat = format!("orchestrator; scheme=\"{MCN}\"");
        // OCCI headers under a type that is no rendering: 415.
        for ct in ["text/html", "application/x-www-form-urlencoded"] {
            let h = headers(&[("content-type", ct), ("category", &cat)]);
            let e = parse_request(&h, b"").unwrap_err();
            assert!(
                matches!(e, RequestError::HeadersUnderUnsupportedType { .. }),
                "{e:?}"
            );
            assert_eq!(
                e.to_string(),
                format!("OCCI headers (Category) under Content-Type '{ct}': send them as text/occi (or in a text/plain or application/occi+json body)")
            );
        }
        // The same type without OCCI headers is a request without content.
        let h = headers(&[("content-type", "text/html")]);
        assert!(parse_request(&h, b"").unwrap().is_empty());
        // A JSON body sent as text/occi: 400, the body named.
        let h = headers(&[("content-type", "text/occi"), ("category", &cat)]);
        let e = parse_request(&h, br#"{"kind": "x"}"#).unwrap_err();
        assert_eq!(e, RequestError::BodyIgnored { bytes: 13 });
        assert!(
            e.to_string()
                .contains("its body (13 bytes) would be ignored"),
            "{e}"
        );
        // The text/occi rendering's own body is fine.
        assert_eq!(parse_request(&h, b"OK\n").unwrap().categories.len(), 1);
        // OCCI headers on a JSON request without a body: 400, the headers named.
        for ct in ["application/json", "application/occi+json"] {
            let h = headers(&[
                ("content-type", ct),
                ("category", &cat),
                ("x-occi-attribute", "a=1"),
            ]);
            let e = parse_request(&h, b"").unwrap_err();
            assert_eq!(
                e,
                RequestError::HeadersIgnored {
                    headers: "Category, X-OCCI-Attribute".into()
                }
            );
        }
        // A JSON request with neither body nor headers (an action by query).
        let h = headers(&[("content-type", "application/occi+json")]);
        assert!(parse_request(&h, b"").unwrap().is_empty());
        // curl users: no Content-Type, or text/plain, and headers only.
        for pairs in [
            vec![("category", cat.as_str())],
            vec![("content-type", "text/plain"), ("category", cat.as_str())],
        ] {
            assert_eq!(
                parse_request(&headers(&pairs), b"")
                    .unwrap()
                    .categories
                    .len(),
                1
            );
        }
    }

    #[test]
    fn deploy_action_request() {
        let h = headers(&[
            ("Content-Type", "text/occi"),
            (
                "Category",
                &format!("deploy; scheme=\"{MCN}\"; class=\"action\""),
            ),
        ]);
        let c = parse_request(&h, b"OK").unwrap();
        assert_eq!(c.categories_of(CategoryClass::Action).count(), 1);
    }

    #[test]
    fn text_plain_body_or_headers_when_body_empty() {
        let body = format!("Category: orchestrator; scheme=\"{MCN}\"\nX-OCCI-Attribute: x=1\n");
        let h = headers(&[("content-type", "text/plain; charset=utf-8")]);
        let c = parse_request(&h, body.as_bytes()).unwrap();
        assert_eq!(c.categories.len(), 1);
        let h = headers(&[
            ("content-type", "text/plain"),
            ("Category", &format!("orchestrator; scheme=\"{MCN}\"")),
        ]);
        assert_eq!(parse_request(&h, b"\r\n").unwrap().categories.len(), 1);
        // curl -X POST -H 'Category: ...' without a body or Content-Type
        let h = headers(&[("Category", &format!("deploy; scheme=\"{MCN}\""))]);
        assert_eq!(parse_request(&h, b"").unwrap().categories.len(), 1);
    }

    #[test]
    fn errors_name_the_header_line() {
        let h = headers(&[
            ("content-type", "text/occi"),
            ("x-occi-attribute", "a=1"),
            ("x-occi-attribute", "b=\"open"),
        ]);
        let e = parse_request(&h, b"").unwrap_err();
        let RequestError::Parse(e) = e else {
            panic!("{e:?}")
        };
        assert_eq!(
            e.origin,
            Origin::Header {
                name: "X-OCCI-Attribute",
                index: 1
            }
        );
        assert!(
            e.to_string()
                .starts_with("header X-OCCI-Attribute (line 2) at byte 7"),
            "{e}"
        );
    }

    #[test]
    fn unsupported_type_and_bad_utf8() {
        let h = headers(&[("content-type", "application/xml")]);
        assert!(matches!(
            parse_request(&h, b"<x/>"),
            Err(RequestError::UnsupportedMediaType(_))
        ));
        let h = headers(&[("content-type", "text/plain")]);
        let e = parse_request(
            &h,
            b"Category: a; scheme=\"s\"\nX-OCCI-Attribute: x=\"\xff\"",
        )
        .unwrap_err();
        assert!(e.to_string().contains("body line 2 at byte 21"), "{e}");
        let mut h = HeaderMap::new();
        h.insert("category", HeaderValue::from_bytes(b"a\xff").unwrap());
        let e = parse_request(&h, b"").unwrap_err();
        assert_eq!(
            e.to_string(),
            "header Category at byte 1: expected UTF-8 text, found the end"
        );
    }

    #[test]
    fn uri_list_and_json_bodies() {
        let h = headers(&[("content-type", "text/uri-list")]);
        let c = parse_request(&h, b"http://h/a/1\r\nhttp://h/a/2\r\n").unwrap();
        assert_eq!(c.locations.len(), 2);
        let h = headers(&[("content-type", "application/occi+json")]);
        let c = parse_request(&h, format!(r#"{{"action": "{MCN}deploy"}}"#).as_bytes()).unwrap();
        assert_eq!(c.categories[0].term, "deploy");
    }
}

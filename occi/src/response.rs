//! Rendering responses: entities, collections, the query interface and
//! plain messages, in the rendering the client accepted.

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

use crate::{
    json,
    request::{CATEGORY, LINK, LOCATION, X_OCCI_ATTRIBUTE, X_OCCI_LOCATION},
    text::render::{
        write_action_link, write_attribute, write_category, write_category_ref, write_link,
        write_url,
    },
    uri_list, Category, CategoryClass, Entity, Link, MediaType, RenderError, Resource,
};

/// A rendered response: its media type, the OCCI headers to add, and the
/// body. `headers` holds only OCCI headers (`Category`, `Link`,
/// `X-OCCI-Attribute`, `X-OCCI-Location`, `Location`); the server adds
/// `Content-Type` (from [`Rendered::content_type`]) and `Server`.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    /// The media type of `body` (`text/plain` for a message asked as
    /// uri-list).
    pub content_type: MediaType,
    /// OCCI headers, in order.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body.
    pub body: Bytes,
}

impl Rendered {
    /// The `Content-Type` header value.
    pub fn content_type_value(&self) -> HeaderValue {
        self.content_type.header_value()
    }
}

/// Renders OCCI responses for one server: knows the base URL that turns
/// paths into the absolute URLs clients need in `Location`,
/// `X-OCCI-Location`, link targets and action links. Category locations stay
/// relative (`/orchestrator/`). Cheap to share; build it once.
#[derive(Clone, Debug)]
pub struct Renderer {
    base: String,
}

/// A header value from text the writers made safe; never fails for their
/// output (an empty value stands in should that ever be broken).
fn header_value(s: String) -> HeaderValue {
    HeaderValue::from_maybe_shared(Bytes::from(s)).unwrap_or_else(|_| HeaderValue::from_static(""))
}

const OK_BODY: &[u8] = b"OK";

impl Renderer {
    /// A renderer for the server reachable at `base_url`
    /// (`http://127.0.0.1:8051`; a trailing `/` is dropped).
    pub fn new(base_url: &str) -> Self {
        Renderer {
            base: base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The absolute URL of `path` (unchanged if already absolute).
    pub fn url(&self, path: &str) -> String {
        let mut s = String::with_capacity(self.base.len() + path.len());
        write_url(&mut s, &self.base, path, false);
        s
    }

    /// Renders an entity (resource or link).
    pub fn entity(&self, media: MediaType, entity: &Entity) -> Result<Rendered, RenderError> {
        match entity {
            Entity::Resource(r) => self.resource(media, r),
            Entity::Link(l) => self.link(media, l),
        }
    }

    /// Renders a resource: its kind and mixins as `Category`, its links and
    /// action links (one per entry of `resource.actions`) as `Link`, its
    /// attributes as `X-OCCI-Attribute`. `text/occi` puts each field in one
    /// comma-separated header (body `OK`); `text/plain` writes one element
    /// per line; JSON renders the 1.2 resource document. uri-list →
    /// [`RenderError::UriListNotApplicable`] (400).
    pub fn resource(&self, media: MediaType, r: &Resource) -> Result<Rendered, RenderError> {
        let categories = || {
            std::iter::once((r.kind.as_str(), CategoryClass::Kind))
                .chain(r.mixins.iter().map(|m| (m.as_str(), CategoryClass::Mixin)))
        };
        let location = r.location.as_deref().unwrap_or("");
        match media {
            MediaType::UriList => Err(RenderError::UriListNotApplicable),
            MediaType::OcciJson => Ok(self.json(json::render_resource(&self.base, r))),
            MediaType::TextPlain => {
                let mut b = String::with_capacity(256 + 96 * r.attributes.len());
                for (id, class) in categories() {
                    b.push_str("Category: ");
                    write_category_ref(&mut b, id, class);
                    b.push('\n');
                }
                for l in &r.links {
                    b.push_str("Link: ");
                    write_link(&mut b, &self.base, l);
                    b.push('\n');
                }
                for a in &r.actions {
                    b.push_str("Link: ");
                    write_action_link(&mut b, &self.base, location, a);
                    b.push('\n');
                }
                for (n, v) in r.attributes.iter() {
                    b.push_str("X-OCCI-Attribute: ");
                    write_attribute(&mut b, n, v);
                    b.push('\n');
                }
                Ok(self.plain(b))
            }
            MediaType::TextOcci => {
                let mut headers = Vec::with_capacity(3);
                let mut h = String::with_capacity(128);
                for (i, (id, class)) in categories().enumerate() {
                    if i > 0 {
                        h.push_str(", ");
                    }
                    write_category_ref(&mut h, id, class);
                }
                headers.push((CATEGORY, header_value(h)));
                if !r.links.is_empty() || !r.actions.is_empty() {
                    let mut h = String::with_capacity(160 * (r.links.len() + r.actions.len()));
                    for l in &r.links {
                        if !h.is_empty() {
                            h.push_str(", ");
                        }
                        write_link(&mut h, &self.base, l);
                    }
                    for a in &r.actions {
                        if !h.is_empty() {
                            h.push_str(", ");
                        }
                        write_action_link(&mut h, &self.base, location, a);
                    }
                    headers.push((LINK, header_value(h)));
                }
                if !r.attributes.is_empty() {
                    let mut h = String::with_capacity(64 * r.attributes.len());
                    for (i, (n, v)) in r.attributes.iter().enumerate() {
                        if i > 0 {
                            h.push_str(", ");
                        }
                        write_attribute(&mut h, n, v);
                    }
                    headers.push((X_OCCI_ATTRIBUTE, header_value(h)));
                }
                Ok(self.occi(headers))
            }
        }
    }

    /// Renders a standalone link entity: its kind and mixins as `Category`,
    /// `occi.core.source`/`occi.core.target` (absolute) and its attributes as
    /// `X-OCCI-Attribute`; JSON as the 1.2 link document.
    pub fn link(&self, media: MediaType, l: &Link) -> Result<Rendered, RenderError> {
        if media == MediaType::OcciJson {
            return Ok(self.json(json::render_link(&self.base, l)));
        }
        let mut r = Resource {
            kind: l.kind.clone(),
            mixins: l.mixins.clone(),
            location: l.location.clone(),
            attributes: crate::Attributes::with_capacity(l.attributes.len() + 2),
            links: Vec::new(),
            actions: l.actions.clone(),
        };
        if let Some(s) = &l.source {
            r.attributes.insert("occi.core.source", self.url(s));
        }
        r.attributes.insert("occi.core.target", self.url(&l.target));
        for (n, v) in l.attributes.iter() {
            r.attributes.insert(n, v.clone());
        }
        self.resource(media, &r)
    }

    /// Renders a collection of resources: their locations as
    /// `X-OCCI-Location` (one comma-separated header for `text/occi`, one line
    /// each for `text/plain`), a uri-list, or JSON `{"resources": [...]}`
    /// with the full resources. Resources without a location are skipped
    /// in the text forms.
    pub fn collection(&self, media: MediaType, resources: &[Resource]) -> Rendered {
        if media == MediaType::OcciJson {
            return self.json(json::render_resources(&self.base, resources));
        }
        self.locations(
            media,
            resources.iter().filter_map(|r| r.location.as_deref()),
        )
    }

    /// Renders a list of locations (collection, mixin membership, a
    /// namespace listing). JSON has no locations-only document, so JSON
    /// renders `{"resources": [{"location": ...}]}`; prefer
    /// [`Renderer::collection`] with full resources for JSON.
    pub fn locations<'a>(
        &self,
        media: MediaType,
        locations: impl IntoIterator<Item = &'a str>,
    ) -> Rendered {
        match media {
            MediaType::UriList => {
                let mut b = String::with_capacity(256);
                uri_list::render_into(&mut b, &self.base, locations);
                self.body(MediaType::UriList, b.into_bytes())
            }
            MediaType::TextPlain => {
                let mut b = String::with_capacity(256);
                for l in locations {
                    b.push_str("X-OCCI-Location: ");
                    write_url(&mut b, &self.base, l, true);
                    b.push('\n');
                }
                self.plain(b)
            }
            MediaType::TextOcci => {
                let mut h = String::with_capacity(256);
                for l in locations {
                    if !h.is_empty() {
                        h.push_str(", ");
                    }
                    write_url(&mut h, &self.base, l, true);
                }
                let headers = if h.is_empty() {
                    Vec::new()
                } else {
                    vec![(X_OCCI_LOCATION, header_value(h))]
                };
                self.occi(headers)
            }
            MediaType::OcciJson => {
                let items: Vec<serde_json::Value> = locations
                    .into_iter()
                    .map(|l| serde_json::json!({ "location": self.url(l) }))
                    .collect();
                self.json(
                    serde_json::to_vec(&serde_json::json!({ "resources": items }))
                        .unwrap_or_default(),
                )
            }
        }
    }

    /// Renders the query interface: every category in its full form
    /// (`text/occi`: one `Category` header with all of them; `text/plain`:
    /// one line each; JSON: `{"kinds", "mixins", "actions"}`). uri-list →
    /// [`RenderError::UriListNotApplicable`].
    pub fn query_interface(
        &self,
        media: MediaType,
        categories: &[Category],
    ) -> Result<Rendered, RenderError> {
        match media {
            MediaType::UriList => Err(RenderError::UriListNotApplicable),
            MediaType::OcciJson => Ok(self.json(json::render_categories(categories))),
            MediaType::TextPlain => {
                let mut b = String::with_capacity(256 * categories.len());
                for c in categories {
                    b.push_str("Category: ");
                    write_category(&mut b, c, true);
                    b.push('\n');
                }
                Ok(self.plain(b))
            }
            MediaType::TextOcci => {
                let mut h = String::with_capacity(256 * categories.len());
                for (i, c) in categories.iter().enumerate() {
                    if i > 0 {
                        h.push_str(", ");
                    }
                    write_category(&mut h, c, true);
                }
                let headers = if h.is_empty() {
                    Vec::new()
                } else {
                    vec![(CATEGORY, header_value(h))]
                };
                Ok(self.occi(headers))
            }
        }
    }

    /// Renders "created at `location`" (201): a `Location` header with the
    /// absolute URL in every rendering, and as body `X-OCCI-Location: <url>`
    /// (`text/plain`), `OK` plus an `X-OCCI-Location` header (`text/occi`),
    /// the URL (uri-list) or `{"location": "<url>"}` (JSON).
    pub fn created(&self, media: MediaType, location: &str) -> Rendered {
        let url = self.url(location);
        let loc = (LOCATION, header_value(url.clone()));
        let mut r = match media {
            MediaType::OcciJson => self.json(
                serde_json::to_vec(&serde_json::json!({ "location": url })).unwrap_or_default(),
            ),
            _ => self.locations(media, [location]),
        };
        r.headers.insert(0, loc);
        r
    }

    /// Renders a plain message (an error text, or `OK`): `text/plain` and
    /// `text/occi` bodies hold the text, JSON `{"message": "..."}`; a
    /// uri-list client gets it as `text/plain`.
    pub fn message(&self, media: MediaType, message: &str) -> Rendered {
        match media {
            MediaType::OcciJson => self.json(
                serde_json::to_vec(&serde_json::json!({ "message": message })).unwrap_or_default(),
            ),
            MediaType::TextOcci => self.body(MediaType::TextOcci, message.as_bytes().to_vec()),
            MediaType::TextPlain | MediaType::UriList => {
                let mut b = String::with_capacity(message.len() + 1);
                b.push_str(message);
                if !b.ends_with('\n') {
                    b.push('\n');
                }
                self.plain(b)
            }
        }
    }

    fn body(&self, media: MediaType, body: Vec<u8>) -> Rendered {
        Rendered {
            content_type: media,
            headers: Vec::new(),
            body: Bytes::from(body),
        }
    }

    fn plain(&self, body: String) -> Rendered {
        self.body(MediaType::TextPlain, body.into_bytes())
    }

    fn json(&self, body: Vec<u8>) -> Rendered {
        self.body(MediaType::OcciJson, body)
    }

    fn occi(&self, headers: Vec<(HeaderName, HeaderValue)>) -> Rendered {
        Rendered {
            content_type: MediaType::TextOcci,
            headers,
            body: Bytes::from_static(OK_BODY),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AttributeDef, Value};

    const MCN: &str = "http://schemas.mobile-cloud-networking.eu/occi/service#";

    fn so() -> Resource {
        let mut r = Resource::new(format!("{MCN}orchestrator"), "/orchestrator/default");
        r.attributes.insert("occi.core.id", "default");
        r.attributes
            .insert("occi.mcn.stack.state", "CREATE_COMPLETE");
        r.attributes.insert("n", 5);
        r.actions.push(format!("{MCN}provision"));
        r
    }

    fn body(r: &Rendered) -> &str {
        std::str::from_utf8(&r.body).unwrap()
    }

    #[test]
    fn text_plain_entity_is_lines_with_absolute_action_links() {
        let out = Renderer::new("http://127.0.0.1:8051/")
            .resource(MediaType::TextPlain, &so())
            .unwrap();
        assert_eq!(out.content_type, MediaType::TextPlain);
        assert!(out.headers.is_empty());
        assert_eq!(
            body(&out),
            format!(
                "Category: orchestrator; scheme=\"{MCN}\"; class=\"kind\"\n\
                 Link: <http://127.0.0.1:8051/orchestrator/default?action=provision>; rel=\"{MCN}provision\"\n\
                 X-OCCI-Attribute: occi.core.id=\"default\"\n\
                 X-OCCI-Attribute: occi.mcn.stack.state=\"CREATE_COMPLETE\"\n\
                 X-OCCI-Attribute: n=5\n"
            )
        );
    }

    #[test]
    fn text_occi_entity_is_comma_joined_headers_and_ok() {
        let out = Renderer::new("http://h:1")
            .resource(MediaType::TextOcci, &so())
            .unwrap();
        assert_eq!(body(&out), "OK");
        let names: Vec<_> = out.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["category", "link", "x-occi-attribute"]);
        assert_eq!(
            out.headers[2].1,
            "occi.core.id=\"default\", occi.mcn.stack.state=\"CREATE_COMPLETE\", n=5"
        );
    }

    #[test]
    fn uri_list_is_refused_for_entities_and_query_interface() {
        let r = Renderer::new("http://h");
        assert_eq!(
            r.resource(MediaType::UriList, &so()),
            Err(RenderError::UriListNotApplicable)
        );
        assert_eq!(
            r.query_interface(MediaType::UriList, &[]).err(),
            Some(RenderError::UriListNotApplicable)
        );
    }

    #[test]
    fn collections_render_absolute_locations() {
        let r = Renderer::new("http://h:1");
        let items = [
            so(),
            Resource::new(format!("{MCN}orchestrator"), "/orchestrator/b"),
        ];
        let out = r.collection(MediaType::TextPlain, &items);
        assert_eq!(
            body(&out),
            "X-OCCI-Location: http://h:1/orchestrator/default\nX-OCCI-Location: http://h:1/orchestrator/b\n"
        );
        let out = r.collection(MediaType::TextOcci, &items);
        assert_eq!(
            out.headers,
            [(
                X_OCCI_LOCATION,
                HeaderValue::from_static(
                    "http://h:1/orchestrator/default, http://h:1/orchestrator/b"
                )
            )]
        );
        let out = r.collection(MediaType::UriList, &items);
        assert_eq!(
            body(&out),
            "http://h:1/orchestrator/default\r\nhttp://h:1/orchestrator/b\r\n"
        );
        let out = r.collection(MediaType::OcciJson, &items);
        let v: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(v["resources"][1]["location"], "http://h:1/orchestrator/b");
        let out = r.collection(MediaType::TextOcci, &[]);
        assert!(out.headers.is_empty());
    }

    #[test]
    fn query_interface_has_relative_category_locations() {
        let kind = Category::kind(MCN, "orchestrator")
            .with_rel(crate::RESOURCE)
            .with_location("/orchestrator/")
            .with_attribute(AttributeDef::new("occi.mcn.stack.state").immutable())
            .with_action(format!("{MCN}deploy"));
        let out = Renderer::new("http://h:1")
            .query_interface(MediaType::TextPlain, &[Category::core_entity(), kind])
            .unwrap();
        let text = body(&out);
        assert!(text.starts_with(
            "Category: entity; scheme=\"http://schemas.ogf.org/occi/core#\"; class=\"kind\"; title=\"Entity\"; \
             attributes=\"occi.core.id{immutable} occi.core.title\"\n"
        ), "{text}");
        assert!(text.contains("location=\"/orchestrator/\""), "{text}");
    }

    #[test]
    fn created_and_messages() {
        let r = Renderer::new("http://h:1");
        let out = r.created(MediaType::TextOcci, "/orchestrator/default");
        assert_eq!(
            out.headers[0],
            (
                LOCATION,
                HeaderValue::from_static("http://h:1/orchestrator/default")
            )
        );
        assert_eq!(body(&out), "OK");
        let out = r.created(MediaType::TextPlain, "/orchestrator/default");
        assert_eq!(
            body(&out),
            "X-OCCI-Location: http://h:1/orchestrator/default\n"
        );
        let out = r.message(MediaType::OcciJson, "Not applicable atm.");
        assert_eq!(body(&out), r#"{"message":"Not applicable atm."}"#);
        let out = r.message(MediaType::UriList, "bad");
        assert_eq!(out.content_type, MediaType::TextPlain);
    }

    #[test]
    fn standalone_link_carries_source_and_target() {
        let mut l = crate::Link::new("/orchestrator/b", format!("{MCN}orchestrator"));
        l.source = Some("/orchestrator/default".into());
        l.location = Some("/link/1".into());
        let out = Renderer::new("http://h:1")
            .link(MediaType::TextPlain, &l)
            .unwrap();
        assert!(body(&out)
            .contains("X-OCCI-Attribute: occi.core.source=\"http://h:1/orchestrator/default\"\n"));
        assert!(body(&out).contains(
            "Category: link; scheme=\"http://schemas.ogf.org/occi/core#\"; class=\"kind\"\n"
        ));
        let _ = Value::from(1);
    }

    #[test]
    fn hostile_values_never_break_headers() {
        let mut r = so();
        r.attributes
            .insert("evil name\r\n", "a\r\nSet-Cookie: x\"\\\u{0}");
        r.links.push(crate::Link::new("/x>\r\n, <y", "k\"#t"));
        let out = Renderer::new("http://h\r\n")
            .resource(MediaType::TextOcci, &r)
            .unwrap();
        for (_, v) in &out.headers {
            assert!(!v.is_empty());
            assert!(!v.as_bytes().iter().any(|b| *b == b'\r' || *b == b'\n'));
        }
        let mut h = http::HeaderMap::new();
        for (k, v) in out.headers {
            h.append(k, v);
        }
        let back = crate::parse_headers(&h).unwrap();
        assert_eq!(
            back.attributes.get("evil_name__"),
            Some(&Value::from("a\r\nSet-Cookie: x\"\\\u{0}"))
        );
        assert_eq!(back.links[0].target, "http://h%0D%0A/x%3E%0D%0A,%20%3Cy");
    }
}

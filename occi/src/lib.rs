//! The OCCI Core model and its HTTP renderings.
//!
//! This crate knows OCCI and nothing else (no server, no plugins, no Heat):
//! any Rust OCCI client or server can use it. It offers
//!
//! - the model: [`Category`] with its classes ([`CategoryClass`]: kind,
//!   mixin, action), [`AttributeDef`], [`Value`] and [`Attributes`],
//!   [`Entity`] as [`Resource`] or [`Link`], the core kinds
//!   ([`Category::core_entity`], [`Category::core_resource`],
//!   [`Category::core_link`]);
//! - nom parsers and renderers for every header-level element (`Category`,
//!   `Link`, action links, `X-OCCI-Attribute`, `X-OCCI-Location`,
//!   `Location`) in both `text/occi` (headers) and `text/plain` (body lines)
//!   form ([`text`]), `text/uri-list` ([`uri_list`]) and
//!   `application/occi+json` ([`json`]);
//! - the request/response API a server calls on every request:
//!   [`MediaType::negotiate`] (Accept), [`parse_request`] (headers + body →
//!   [`Content`]) and [`Renderer`] (entity / collection / query interface /
//!   message → [`Rendered`]).
//!
//! Nothing here panics on any input; parse errors ([`ParseError`]) name
//! the header or body line, the byte position and what was expected.
//!
//! # Example: one request, one response
//!
//! ```
//! use http::{HeaderMap, HeaderValue};
//! use occi::{parse_request, MediaType, Renderer, Resource};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("content-type", HeaderValue::from_static("text/occi"));
//! headers.insert("category", HeaderValue::from_static(
//!     "orchestrator; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\""));
//! headers.insert("x-occi-attribute", HeaderValue::from_static("mcn.endpoint.maas=\"160.85.4.50\""));
//! let content = parse_request(&headers, b"").unwrap();          // 415 / 400 on Err
//! assert_eq!(content.categories[0].term, "orchestrator");
//!
//! let media = MediaType::negotiate(headers.get("accept")).unwrap(); // 406 on Err
//! let mut so = Resource::new(format!("{}{}", content.categories[0].scheme, "orchestrator"),
//!                            "/orchestrator/default");
//! so.attributes = content.attributes;
//! so.actions.push("http://schemas.mobile-cloud-networking.eu/occi/service#deploy".into());
//! let out = Renderer::new("http://127.0.0.1:8051").resource(media, &so).unwrap();
//! assert_eq!(out.content_type, MediaType::TextPlain);
//! assert!(std::str::from_utf8(&out.body).unwrap().contains(
//!     "Link: <http://127.0.0.1:8051/orchestrator/default?action=deploy>"));
//! ```
//!
//! # Choices where the specifications leave room
//!
//! Each follows what real OCCI clients (MCN SDK/SM on pyssf, rOCCI, ooi,
//! the OCCI compliance test client) send or need.
//!
//! **Parsing (lenient)**
//! - Header names are case-insensitive (MCN clients send `category`,
//!   `x-occi-attribute`); repeated header lines and comma lists in one line
//!   both work; a comma inside a quoted string or inside `<...>` never
//!   separates; empty list elements are skipped (RFC 7230).
//! - `Category` needs a term and `scheme`; `class` may be omitted (MCN
//!   clients do), quoted or bare, any case. White space around `;` and `=`,
//!   a trailing `;`, and folded lines (CRLF + space) are accepted.
//!   Unknown parameters are ignored; a repeated one overrides; empty
//!   parameters (`;;`) are skipped. `scheme=""` is accepted (a type
//!   identifier without `#` renders that way; the server's lookup rejects
//!   it), a missing `scheme` is an error.
//! - Terms and attribute names use the OCCI 1.2 grammar
//!   (`[A-Za-z0-9._-]+`), a superset of 1.1's lower-case names.
//! - Attribute definitions accept the properties `required`, `immutable`
//!   and `mutable`; others are ignored.
//! - Attribute values: a quoted string is always a string; a bare token is
//!   `true`/`false`, a number (integer → kept integer; fraction or exponent
//!   → float; sign allowed), or else a string (enum values are often sent
//!   bare). The declared type is applied later by [`AttributeDef::coerce`],
//!   which also turns a quoted JSON text into a list/object.
//! - Quoted strings unescape `\"` and `\\` as RFC 7230 says, and also `\n`,
//!   `\r`, `\t` and `\uXXXX`: the renderer must escape control characters
//!   (a header cannot hold them raw), and this keeps render → parse exact.
//! - A `Link` whose URI has an `action=` query parameter is an action link
//!   and needs exactly one `rel`; other links default to the core `link`
//!   kind when `category` is missing; parameters other than `rel`, `self`
//!   and `category` are link attributes.
//! - `Link: <>` is an empty URI-reference (the same document) and parses;
//!   an empty `X-OCCI-Location` (`<>` or `""`) is an error. A bare location
//!   may contain `;` (locations have no parameters).
//! - `Accept`: a malformed q-value is ignored (q = 1) rather than turned
//!   into a 406.
//! - `text/occi` requests are read from headers; a body other than the
//!   rendering's own `OK` is a 400 (it would be ignored). `text/plain` and
//!   `text/uri-list` requests are read from the body, or from the headers
//!   when the body is empty (curl users). JSON requests are read from the
//!   body; OCCI headers on a JSON request without a body are a 400 (they
//!   would be ignored). A body without `Content-Type` is read as
//!   `text/plain`; an unknown type with a body is 415, and so is one with
//!   OCCI headers (`text/html` with a `Category`); an unknown type with
//!   neither is a request without content.
//! - `text/occi+plain` is read as `text/plain`, `application/json` as
//!   `application/occi+json`; responses use the canonical names.
//! - A repeated attribute name keeps its first position and its last value.
//! - JSON `null` attribute values are rejected (OCCI has no null; leave the
//!   attribute out).
//!
//! **Rendering (strict)**
//! - Category `location`s are rendered as given (relative paths such as
//!   `/orchestrator/`: the compliance client builds URLs as base +
//!   location); `Location`, `X-OCCI-Location`, link targets, `self` and
//!   action links are absolute URLs built from the [`Renderer`]'s base URL
//!   (the compliance client rejects relative ones).
//! - `text/occi` renders one header per field with comma-separated values
//!   (the form GFD.185 recommends) and the body `OK`; `text/plain` renders
//!   one element per line, LF-terminated; uri-list lines are CRLF-terminated.
//! - Entities render their kind and mixins in the short reference form
//!   (term, scheme, class); the query interface renders full definitions.
//! - Nothing rendered can break a header: quotes, backslashes and control
//!   characters are escaped in quoted strings; names outside
//!   `[A-Za-z0-9._-]` get `_`; URIs percent-encode white space, controls,
//!   `"<>\` (and `,` in bare location lists).
//! - Lists and objects render in text as quoted JSON text.
//! - JSON: core attributes stay in `attributes` and are also lifted to the
//!   top-level `id`/`title`/`summary`; inline links get the resource as
//!   `source` when they have none; a kind's first `rel` is its `parent`, a
//!   mixin's `rel` its `depends`; enumerations are `type: "string"` with a
//!   JSON-Schema `pattern: {"enum": [...]}`.
//! - `text/uri-list` is chosen only when asked for by name; asking it for a
//!   non-listing gives [`RenderError::UriListNotApplicable`] (400).
//! - The `Server` header claims OCCI/1.2 ([`version::SERVER`]).
//!
//! **Interop rules for the clients that exist**
//!
//! Real clients (the OCCI compliance tools, rOCCI-style command lines,
//! pyssf-based SDKs) are not strict parsers; a server that wants to be
//! used by them renders what both a strict and a naive reader parse:
//! - *Quote-insensitive splitters.* Many clients split a Category on every
//!   `;` (and often on `,`) without honouring quotes. The renderer stays
//!   legal for any value, but a server should never put `;` or `,` into
//!   a quoted value it writes itself (titles, descriptions); only a value
//!   a user chose may hold them. occi-so's built-in titles follow this, and
//!   its test suite reads every built-in Category through such a splitter.
//! - *Ordering of Category parameters.* Render `term; scheme; class` first
//!   and then `title`, `rel`, `location`, `attributes`, `actions` (the
//!   order of GFD.185's examples): clients index parameters by position.
//! - *`Location` vs `X-OCCI-Location`.* A create answers `201` with an
//!   absolute `Location` header, and in `text/occi`/`text/plain` also
//!   names the entity as `X-OCCI-Location`: some clients read one, some the
//!   other. Collections list `X-OCCI-Location` lines (or a uri-list).
//! - *Absolute vs relative.* Entity locations, link targets and action
//!   links are absolute URLs; Category `location`s stay relative paths,
//!   because clients build URLs as base + location.

mod attribute;
mod category;
mod entity;
mod error;
pub mod json;
mod media;
mod request;
mod response;
pub mod text;
pub mod uri_list;
mod value;
pub mod version;

pub use attribute::{AttributeDef, AttributeType, ValueError};
pub use category::{split_type_id, Category, CategoryClass, CORE_SCHEME, ENTITY, LINK, RESOURCE};
pub use entity::{ActionLink, Entity, Link, Resource};
pub use error::{NotAcceptable, Origin, ParseError, RenderError, RequestError};
pub use media::{MediaType, RequestFormat};
pub use request::{
    parse_content, parse_headers, parse_request, Content, CATEGORY, LOCATION, X_OCCI_ATTRIBUTE,
    X_OCCI_LOCATION,
};
pub use response::{Rendered, Renderer};
pub use value::{Attributes, NullValue, Value};

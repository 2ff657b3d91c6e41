//! Inputs cargo-fuzz found that once broke render → parse; kept so they
//! stay fixed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

use http::{HeaderMap, HeaderValue};
use occi::{parse_request, text, MediaType, Renderer, Resource};

/// `fuzz/artifacts/location/crash-23aa…`: a quoted location holding `;`,
/// white space, NULs and `<` rendered as a bare list element that the
/// parser cut at `;`.
#[test]
fn odd_locations_render_to_parsable_lists() {
    let input = "*b>, \"htt S\t, \0\0\0\0+\0\0%t:, <h;t \u{69e}q\"";
    let first = text::parse_locations(input).unwrap();
    assert_eq!(first.len(), 2);
    let out = Renderer::new("").locations(MediaType::TextOcci, first.iter().map(String::as_str));
    let value = std::str::from_utf8(out.headers[0].1.as_bytes()).unwrap();
    assert_eq!(text::parse_locations(value).unwrap().len(), 2);
}

/// `fuzz/artifacts/location/crash-d214…`: `<>` parsed as an empty
/// location, which renders as an empty list element and vanishes.
#[test]
fn empty_bracketed_location_is_an_error() {
    let e = text::parse_locations(":8, /a/2, <>, \"q\"").unwrap_err();
    assert_eq!(e.position, 10);
    assert!(e.expected.contains("non-empty"), "{e}");
}

/// `fuzz/artifacts/text_plain_body/crash-1f27…`: a category whose scheme
/// has no `#` gives a type identifier that splits into an empty scheme;
/// rendering it as a mixin must still parse.
#[test]
fn type_ids_without_hash_round_trip() {
    let c = &text::parse_categories("x; scheme=\"abc\"").unwrap()[0];
    let mut r = Resource::new("http://s#k", "/k/1");
    r.mixins.push(c.type_id());
    for media in [MediaType::TextPlain, MediaType::TextOcci] {
        let out = Renderer::new("").resource(media, &r).unwrap();
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static(media.as_str()));
        for (k, v) in out.headers {
            h.append(k, v);
        }
        let back = parse_request(&h, &out.body).unwrap();
        assert_eq!(back.categories[1].type_id(), "abcx");
    }
}

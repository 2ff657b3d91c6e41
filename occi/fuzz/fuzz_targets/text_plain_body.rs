//! Whole `text/plain` request bodies (and the same bytes as `text/occi`
//! header values), through the request-level API.
#![no_main]
use libfuzzer_sys::fuzz_target;
use occi::{parse_request, MediaType, Renderer, Resource};

fuzz_target!(|data: &[u8]| {
    let mut headers = http::HeaderMap::new();
    headers.insert("content-type", http::HeaderValue::from_static("text/plain"));
    if let Ok(v) = http::HeaderValue::from_bytes(data) {
        headers.insert("category", v.clone());
        headers.insert("x-occi-attribute", v);
    }
    let _ = parse_request(&headers, b"");
    let Ok(content) = parse_request(&headers, data) else {
        return;
    };
    let r = Resource {
        kind: "http://s#k".into(),
        mixins: content.categories.iter().map(|c| c.type_id()).collect(),
        location: Some("/k/1".into()),
        attributes: content.attributes,
        links: content.links,
        actions: content.action_links.into_iter().map(|a| a.action).collect(),
    };
    let renderer = Renderer::new("http://127.0.0.1:1");
    for media in [
        MediaType::TextPlain,
        MediaType::TextOcci,
        MediaType::OcciJson,
    ] {
        let out = renderer.resource(media, &r).expect("renders");
        let mut h = http::HeaderMap::new();
        h.insert("content-type", media.header_value());
        for (k, v) in out.headers {
            h.append(k, v);
        }
        let back = parse_request(&h, &out.body).expect("rendered resource parses");
        assert_eq!(back.attributes.len(), r.attributes.len());
        assert_eq!(back.links.len(), r.links.len());
    }
});

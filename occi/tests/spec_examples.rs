//! The specifications' own examples (GFD.185 OCCI 1.1 HTTP Rendering,
//! GFD.229/225 OCCI 1.2 text and JSON), and requests real clients send,
//! through the request-level API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

use http::{HeaderMap, HeaderValue};
use occi::{parse_request, CategoryClass, MediaType, Renderer, RequestError, Value};

const INFRA: &str = "http://schemas.ogf.org/occi/infrastructure#";

fn request(content_type: Option<&'static str>, headers: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(ct) = content_type {
        h.insert("content-type", HeaderValue::from_static(ct));
    }
    for (k, v) in headers {
        h.append(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

/// GFD.185 3.4.2: a compute resource rendered as text/plain (trailing
/// semicolons included).
#[test]
fn gfd185_compute_rendering_as_text_plain() {
    let body = format!(
        "Category: compute; scheme=\"{INFRA}\"; class=\"kind\";\r\n\
         Link: </network/123>; rel=\"{INFRA}network\"; self=\"/link/networkinterface/456\"; \
         category=\"{INFRA}networkinterface\"; occi.networkinterface.interface=\"eth0\"; \
         occi.networkinterface.mac=\"00:11:22:33:44:55\"; occi.networkinterface.state=\"active\";\r\n\
         Link: </compute/123?action=start>; rel=\"http://schemas.ogf.org/occi/infrastructure/compute/action#start\"\r\n\
         X-OCCI-Attribute: occi.core.id=\"urn:uuid:996ad860-2a9a-504f-8861-aeafd0b2ae29\"\r\n\
         X-OCCI-Attribute: occi.compute.architecture=\"x86\"\r\n\
         X-OCCI-Attribute: occi.compute.cores=2\r\n\
         X-OCCI-Attribute: occi.compute.hostname=\"testserver\"\r\n\
         X-OCCI-Attribute: occi.compute.speed=1.66\r\n\
         X-OCCI-Attribute: occi.compute.memory=3.0\r\n\
         X-OCCI-Attribute: occi.compute.state=\"active\"\r\n"
    );
    let c = parse_request(&request(Some("text/plain"), &[]), body.as_bytes()).unwrap();
    assert_eq!(c.categories.len(), 1);
    assert_eq!(c.categories[0].class, Some(CategoryClass::Kind));
    assert_eq!(c.links.len(), 1);
    assert_eq!(c.links[0].attributes.len(), 3);
    assert_eq!(c.action_links[0].term(), "start");
    assert_eq!(c.attributes.len(), 7);
    assert_eq!(
        c.attributes.get("occi.compute.cores"),
        Some(&Value::from(2))
    );
    assert_eq!(
        c.attributes.get("occi.compute.memory").unwrap().to_string(),
        "3.0"
    );
    assert_eq!(
        c.attributes.get("occi.compute.speed").unwrap().as_f64(),
        Some(1.66)
    );
}

/// GFD.185 3.4.1: creating a compute resource with text/occi headers.
#[test]
fn gfd185_create_compute_as_text_occi() {
    let h = request(
        Some("text/occi"),
        &[
            (
                "Category",
                &format!("compute; scheme=\"{INFRA}\"; class=\"kind\";"),
            ),
            (
                "X-OCCI-Attribute",
                "occi.compute.cores=2, occi.compute.hostname=\"foobar\"",
            ),
        ],
    );
    let c = parse_request(&h, b"").unwrap();
    assert_eq!(c.attributes.len(), 2);
    assert_eq!(
        c.attributes.get("occi.compute.hostname"),
        Some(&Value::from("foobar"))
    );
}

/// A curl user creating a resource with a kind and a mixin in one header,
/// each value ending in `;` (MartServer documentation style).
#[test]
fn curl_kind_and_mixin_in_one_header() {
    let h = request(
        Some("text/occi"),
        &[
            (
                "Category",
                &format!(
                    "network; scheme=\"{INFRA}\"; class=\"kind\", ipnetwork; \
                     scheme=\"http://schemas.ogf.org/occi/infrastructure/network#\"; class=\"mixin\";"
                ),
            ),
            ("X-OCCI-Attribute", "occi.network.vlan=12"),
            ("X-OCCI-Attribute", "occi.network.label=\"private\""),
        ],
    );
    let c = parse_request(&h, b"").unwrap();
    assert_eq!(c.categories_of(CategoryClass::Kind).count(), 1);
    assert_eq!(c.categories_of(CategoryClass::Mixin).count(), 1);
    assert_eq!(c.attributes.len(), 2);
}

/// The MCN SM: lower-case names, no class, an update with a value that
/// holds commas and `=`.
#[test]
fn mcn_service_manager_requests() {
    let so = "http://schemas.mobile-cloud-networking.eu/occi/service#";
    let h = request(
        Some("text/occi"),
        &[
            ("category", &format!("orchestrator; scheme=\"{so}\"")),
            ("x-occi-attribute", "mcn.endpoint.maas=\"160.85.4.50\""),
            ("x-occi-attribute", "occi.epc.attr_1=\"a=1, b=2; c\""),
        ],
    );
    let c = parse_request(&h, b"").unwrap();
    assert_eq!(c.categories[0].class, None);
    assert_eq!(
        c.attributes.get("occi.epc.attr_1"),
        Some(&Value::from("a=1, b=2; c"))
    );
}

/// GFD.185: collection listing as X-OCCI-Location (text/plain) and as
/// text/uri-list; asking a uri-list for an entity is a 400.
#[test]
fn collections_and_uri_list() {
    let h = request(Some("text/plain"), &[]);
    let c = parse_request(
        &h,
        b"X-OCCI-Location: http://example.com/compute/123\nX-OCCI-Location: http://example.com/compute/456\n",
    )
    .unwrap();
    assert_eq!(c.locations.len(), 2);
    let h = request(Some("text/uri-list"), &[]);
    let c = parse_request(&h, b"# uri:/compute/\r\nhttp://example.com/compute/123\r\n").unwrap();
    assert_eq!(c.locations, ["http://example.com/compute/123"]);
}

/// GFD.225: an action invocation document and a mixin definition.
#[test]
fn gfd225_json_documents() {
    let h = request(Some("application/occi+json"), &[]);
    let c = parse_request(
        &h,
        br#"{"action": "http://schemas.ogf.org/occi/infrastructure/compute/action#stop",
             "attributes": {"method": "graceful"}}"#,
    )
    .unwrap();
    assert_eq!(c.categories[0].term, "stop");
    assert_eq!(c.attributes.get("method"), Some(&Value::from("graceful")));
    let c = parse_request(
        &h,
        br#"{"mixins": [{"term": "my_stuff", "scheme": "http://example.com/occi/my_stuff#",
             "title": "My Stuff", "location": "/my_stuff/"}]}"#,
    )
    .unwrap();
    assert_eq!(c.categories[0].class, Some(CategoryClass::Mixin));
    assert_eq!(c.categories[0].location.as_deref(), Some("/my_stuff/"));
}

#[test]
fn bad_requests_say_where_and_what() {
    let h = request(
        Some("text/occi"),
        &[("Category", "compute; class=\"kind\"")],
    );
    let RequestError::Parse(e) = parse_request(&h, b"").unwrap_err() else {
        panic!()
    };
    assert_eq!(
        e.to_string(),
        "header Category at byte 7: expected a scheme=\"...\" parameter (every category needs one), \
         found \"; class=\\\"kind\\\"\""
    );
    let h = request(Some("application/occi+json"), &[]);
    let e = parse_request(&h, b"{\"kind\": }").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("JSON body line 1 column 10: expected a valid OCCI JSON document"),
        "{e}"
    );
    assert!(!e.to_string().contains("found"), "{e}");
}

#[test]
fn negotiation_then_render() {
    let media = MediaType::negotiate(Some(&HeaderValue::from_static("text/occi"))).unwrap();
    let out = Renderer::new("http://127.0.0.1:8051").created(media, "/orchestrator/default");
    assert_eq!(
        out.headers[0].1,
        "http://127.0.0.1:8051/orchestrator/default"
    );
    assert_eq!(&out.body[..], b"OK");
}

//! `Link` header values (resource and action links).
#![no_main]
use libfuzzer_sys::fuzz_target;
use occi::text::{action_link_to_string, link_to_string, parse_links, LinkValue};

fuzz_target!(|data: &str| {
    let Ok(first) = parse_links(data) else { return };
    for l in first {
        let r1 = match &l {
            LinkValue::Link(l) => link_to_string("", l),
            LinkValue::Action(a) => {
                let target = a.target.as_deref().unwrap_or("");
                let location = target.split('?').next().unwrap_or("");
                action_link_to_string("", location, &a.action)
            }
        };
        assert!(http::HeaderValue::from_str(&r1).is_ok(), "{r1:?}");
        let again = parse_links(&r1).expect("rendered link parses");
        assert_eq!(again.len(), 1);
        if let (LinkValue::Link(_), LinkValue::Link(l2)) = (&l, &again[0]) {
            assert_eq!(link_to_string("", l2), r1);
        }
    }
});

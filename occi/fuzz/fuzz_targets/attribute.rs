//! `X-OCCI-Attribute` header values.
#![no_main]
use libfuzzer_sys::fuzz_target;
use occi::text::{attribute_to_string, parse_attributes};

fuzz_target!(|data: &str| {
    let Ok(first) = parse_attributes(data) else {
        return;
    };
    for (name, value) in first {
        let r1 = attribute_to_string(&name, &value);
        assert!(http::HeaderValue::from_str(&r1).is_ok(), "{r1:?}");
        let again = parse_attributes(&r1).expect("rendered attribute parses");
        assert_eq!(again, vec![(name, value)]);
    }
});

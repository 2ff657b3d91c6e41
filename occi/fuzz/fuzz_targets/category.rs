//! `Category` header values: parsing never panics; whatever parses renders
//! to a valid header value that parses again, and rendering reaches a fixed
//! point after one round.
#![no_main]
use libfuzzer_sys::fuzz_target;
use occi::text::{category_to_string, parse_categories};

fuzz_target!(|data: &str| {
    let Ok(first) = parse_categories(data) else {
        return;
    };
    for c in first {
        let r1 = category_to_string(&c, true);
        assert!(http::HeaderValue::from_str(&r1).is_ok(), "{r1:?}");
        let again = parse_categories(&r1).expect("rendered category parses");
        assert_eq!(again.len(), 1);
        assert_eq!(category_to_string(&again[0], true), r1);
    }
});

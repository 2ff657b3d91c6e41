//! `Accept` and `Content-Type` values.
#![no_main]
use libfuzzer_sys::fuzz_target;
use occi::{MediaType, RequestFormat};

fuzz_target!(|data: &[u8]| {
    let Ok(v) = http::HeaderValue::from_bytes(data) else {
        return;
    };
    let _ = MediaType::negotiate(Some(&v));
    let _ = RequestFormat::classify(Some(&v), data.is_empty());
});

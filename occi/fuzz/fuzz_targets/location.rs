//! `X-OCCI-Location` header values, rendered back through the renderer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use occi::{text::parse_locations, MediaType, Renderer};

fuzz_target!(|data: &str| {
    let Ok(first) = parse_locations(data) else {
        return;
    };
    let r = Renderer::new("");
    let out = r.locations(MediaType::TextOcci, first.iter().map(String::as_str));
    for (_, v) in &out.headers {
        let again =
            parse_locations(std::str::from_utf8(v.as_bytes()).expect("UTF-8")).expect("parses");
        assert_eq!(again.len(), first.len());
    }
});

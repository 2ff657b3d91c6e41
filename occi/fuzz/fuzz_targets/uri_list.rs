//! `text/uri-list` bodies.
#![no_main]
use libfuzzer_sys::fuzz_target;
use occi::{uri_list, MediaType, Renderer};

fuzz_target!(|data: &str| {
    let Ok(first) = uri_list::parse(data) else {
        return;
    };
    let out = Renderer::new("").locations(MediaType::UriList, first.iter().map(String::as_str));
    let again = uri_list::parse(std::str::from_utf8(&out.body).expect("UTF-8")).expect("parses");
    assert_eq!(again.len(), first.len());
});

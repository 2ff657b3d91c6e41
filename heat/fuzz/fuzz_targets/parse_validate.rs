//! Any bytes: parsing, validating and rendering never panic, and finish.
//!
//!     cd heat/fuzz && cargo +nightly fuzz run parse_validate -- -max_total_time=60
#![no_main]

use heat::{Environment, Files, Options, ParameterValues, RenderOptions, StackIdentity, StackTemplate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = Environment::parse(text);
    if let Ok(t) = StackTemplate::parse(text, Environment::new(), Files::new(), Options::default()) {
        let _ = t.validate(&ParameterValues::new());
        let _ = t.define(&ParameterValues::new(), &StackIdentity::default());
        let _ = t.render(&ParameterValues::new(), &RenderOptions::default());
    }
});

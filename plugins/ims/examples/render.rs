//! Prints the HOT template the IMS plugin generates for `name=value`
//! attributes, e.g. `cargo run -p occi-so-plugin-ims --example render --
//! mcn.topology.type=clearwater ims.size.sprout=2`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

use occi_so_plugin_ims::ImsPlugin;
use occi_so_sdk::Attributes;

fn main() -> std::process::ExitCode {
    let plugin = match ImsPlugin::new() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut attrs = Attributes::new();
    for arg in std::env::args().skip(1) {
        let Some((k, v)) = arg.split_once('=') else {
            eprintln!("{arg}: expected name=value");
            return std::process::ExitCode::FAILURE;
        };
        attrs.insert(k.to_string(), serde_json::Value::String(v.to_string()));
    }
    match plugin.render(&attrs) {
        Ok((_, _, generated)) => {
            print!("{}", generated.yaml());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

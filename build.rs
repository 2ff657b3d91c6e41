//! Generates the list of compiled plugins from this package's own
//! dependencies: every dependency named `occi-so-plugin-*` is a plugin
//! crate that exports `build(&BuildContext)`, so adding a compiled plugin
//! is one edit (its line under `[dependencies]`).

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=Cargo.toml");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let text = match std::fs::read_to_string(dir.join("Cargo.toml")) {
        Ok(t) => t,
        Err(e) => {
            println!("cargo:warning=cannot read Cargo.toml: {e}");
            std::process::exit(1);
        }
    };
    let manifest: toml::Table = match text.parse() {
        Ok(m) => m,
        Err(e) => {
            println!("cargo:warning=cannot parse Cargo.toml: {e}");
            std::process::exit(1);
        }
    };
    let mut names: Vec<&String> = manifest
        .get("dependencies")
        .and_then(toml::Value::as_table)
        .map(|deps| {
            deps.keys()
                .filter(|k| k.starts_with("occi-so-plugin-"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = String::from(
        "/// Every compiled plugin crate: (crate name, its `build` function).\n\
         pub const BUILTIN: &[(&str, occi_so_sdk::Build)] = &[\n",
    );
    for name in names {
        let _ = writeln!(out, "    ({name:?}, {}::build),", name.replace('-', "_"));
    }
    out.push_str("];\n");
    let path = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("builtin.rs");
    if let Err(e) = std::fs::write(&path, out) {
        println!("cargo:warning=cannot write {}: {e}", path.display());
        std::process::exit(1);
    }
}

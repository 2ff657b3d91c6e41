//! The manifest's JSON Schema (`docs/plugin-manifest.schema.json`): every
//! plugin folder shipped in `plugins/` validates against it, and mistakes
//! the loader refuses are refused by the schema too, so editors and CI
//! that use the schema agree with the server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

use std::path::Path;

use serde_json::Value;

fn schema() -> (boon::Schemas, boon::SchemaIndex) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("docs/plugin-manifest.schema.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).expect("the schema is JSON");
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    let url = "https://occi-so.org/schemas/plugin-manifest/v1.json";
    compiler.add_resource(url, doc).unwrap();
    let idx = compiler
        .compile(url, &mut schemas)
        .expect("the schema compiles");
    (schemas, idx)
}

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).expect("YAML")
}

#[test]
fn every_shipped_plugin_manifest_validates() {
    let (schemas, idx) = schema();
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins");
    let mut seen = 0;
    for e in std::fs::read_dir(&plugins).unwrap() {
        let m = e.unwrap().path().join("plugin.yaml");
        if !m.is_file() {
            continue;
        }
        let doc = yaml(&std::fs::read_to_string(&m).unwrap());
        if let Err(e) = schemas.validate(&doc, idx) {
            panic!("{} does not validate:\n{e:#}", m.display());
        }
        seen += 1;
    }
    assert!(
        seen >= 1,
        "no plugin.yaml found under {}",
        plugins.display()
    );
}

const MINIMAL: &str = "manifest_version: 1\nname: t\nversion: 1\nkind: {term: t, scheme: 'http://e.org/occi#'}\nstacks:\n  main:\n    template: t.yaml\n    parameters:\n      a: {attribute: t.a}\n      b: 3\n      c: {output: other.url}\n      d: {generate: uuid}\nattributes:\n  t.a: {type: integer, min: 1}\n";

#[test]
fn what_the_loader_refuses_the_schema_refuses() {
    let (schemas, idx) = schema();
    assert!(schemas.validate(&yaml(MINIMAL), idx).is_ok());
    let broken = [
        (
            "unknown key",
            MINIMAL.replace("stacks:", "stakcs: {}\nstacks:"),
        ),
        (
            "newer version",
            MINIMAL.replace("manifest_version: 1", "manifest_version: 2"),
        ),
        (
            "no stacks",
            MINIMAL[..MINIMAL.find("stacks:").unwrap()].to_string(),
        ),
        (
            "bad scheme",
            MINIMAL.replace("'http://e.org/occi#'", "'http://e.org/occi'"),
        ),
        ("bad term", MINIMAL.replace("term: t,", "term: '-t',")),
        (
            "enum without values",
            MINIMAL.replace("{type: integer, min: 1}", "{type: enum}"),
        ),
        (
            "values on a string",
            MINIMAL.replace("{type: integer, min: 1}", "{values: [a]}"),
        ),
        (
            "secret with a default",
            MINIMAL.replace("{type: integer, min: 1}", "{secret: true, default: x}"),
        ),
        (
            "reserved attribute",
            MINIMAL.replace("  t.a:", "  occi.core.title:"),
        ),
        (
            "path out of the folder",
            MINIMAL.replace("template: t.yaml", "template: ../t.yaml"),
        ),
        (
            "two sources",
            MINIMAL.replace("{generate: uuid}", "{generate: uuid, value: 1}"),
        ),
        (
            "unknown source",
            MINIMAL.replace("{generate: uuid}", "{random: yes}"),
        ),
        (
            "a step with two verbs",
            format!("{MINIMAL}lifecycle:\n  deploy:\n    - {{create: main, delete: main}}\n"),
        ),
    ];
    for (what, text) in broken {
        assert!(
            schemas.validate(&yaml(&text), idx).is_err(),
            "the schema accepts a manifest with {what}"
        );
    }
}

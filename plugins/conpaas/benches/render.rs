//! What a ConPaaS request costs before any stack exists: `validate` of a
//! typical application (settings, services, the manager and agents
//! templates rendered and checked with the heat engine), and generating +
//! checking one cloud's agents template as it grows.
//!
//! `cargo bench -p occi-so-plugin-conpaas --bench render`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use occi_so_plugin_conpaas::settings::Settings;
use occi_so_plugin_conpaas::topology::{parse_services, Placement};
use occi_so_plugin_conpaas::Conpaas;
use occi_so_sdk::{Attributes, Operation, Orchestrator};
use serde_json::json;

fn attributes(plugin: &Conpaas, services: serde_json::Value) -> Attributes {
    let mut a = Attributes::new();
    for spec in &plugin.info().kind.attributes {
        if let Some(d) = &spec.default {
            a.insert(spec.name.clone(), d.clone());
        }
    }
    a.insert("conpaas.services".into(), services);
    a
}

fn bench(c: &mut Criterion) {
    let plugin = Conpaas::new().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mediawiki = attributes(
        &plugin,
        json!({"wiki": {"type": "php"}, "db": {"type": "mysql"}, "fs": {"type": "xtreemfs"}}),
    );
    c.bench_function("validate/design mediawiki (3 services, 3 nodes)", |b| {
        b.iter(|| {
            rt.block_on(plugin.validate(&Operation::Design, &mediawiki))
                .unwrap()
        })
    });
    let mut group = c.benchmark_group("agents template (generate + check)");
    for nodes in [1u32, 16, 64, 256] {
        // helloworld services of at most 64 nodes (the per-role bound)
        let mut services = serde_json::Map::new();
        let mut left = nodes;
        while left > 0 {
            let n = left.min(64);
            services.insert(
                format!("hello{}", services.len()),
                json!({"type": "helloworld", "nodes": {"node": n}}),
            );
            left -= n;
        }
        let a = attributes(&plugin, serde_json::Value::Object(services));
        let settings = Settings::from_attributes(&a, None).unwrap();
        let services = parse_services(&a["conpaas.services"], "default", None).unwrap();
        let placement = Placement::startup(&services);
        let size = plugin
            .render_agents(&settings, &services, &placement, "default", "")
            .unwrap()
            .template
            .len();
        println!("{nodes} nodes: agents template {size} bytes");
        group.bench_with_input(BenchmarkId::from_parameter(nodes), &nodes, |b, _| {
            b.iter(|| {
                plugin
                    .render_agents(&settings, &services, &placement, "default", "172.24.4.10")
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

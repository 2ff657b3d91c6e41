//! What the IMS plugin costs per request: `validate` generates the HOT
//! template for the attributes and checks it with the heat engine
//! (`ImsPlugin::render`), for the default OpenIMS and the largest
//! Clearwater; and building the plugin (every topology checked at start).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

use criterion::{criterion_group, criterion_main, Criterion};
use occi_so_plugin_ims::ImsPlugin;
use occi_so_sdk::Attributes;
use serde_json::json;

fn render(c: &mut Criterion) {
    let plugin = ImsPlugin::new().unwrap();
    let openims = Attributes::new();
    let mut clearwater_max = Attributes::new();
    clearwater_max.insert("mcn.topology.type".into(), json!("clearwater"));
    for (si, n) in [
        ("bono", 5),
        ("sprout", 5),
        ("homer", 3),
        ("homestead", 3),
        ("ralf", 3),
    ] {
        clearwater_max.insert(format!("ims.size.{si}"), json!(n));
    }
    let (loaded, settings, generated) = plugin.render(&clearwater_max).unwrap();
    println!(
        "clearwater at maximum sizes: {} units, {} resources, template {} bytes",
        generated.hosts.len(),
        generated.template["resources"]
            .as_object()
            .map_or(0, |r| r.len()),
        generated.text().len()
    );
    let mut g = c.benchmark_group("ims");
    g.sample_size(20);
    g.bench_function("render openims default (5 units)", |b| {
        b.iter(|| plugin.render(&openims).unwrap())
    });
    g.bench_function("render clearwater max (21 units)", |b| {
        b.iter(|| plugin.render(&clearwater_max).unwrap())
    });
    g.bench_function("generate only, clearwater max", |b| {
        b.iter(|| occi_so_plugin_ims::template::generate(&loaded, &settings))
    });
    g.bench_function("plugin start (2 topologies checked)", |b| {
        b.iter(|| ImsPlugin::new().unwrap())
    });
    g.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);

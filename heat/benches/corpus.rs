//! Parse + validate + render the whole shared HOT corpus.
//!
//!     cargo bench -p heat --bench corpus
//!
//! Throughput is in templates per second. The corpus comes from
//! `$OCCI_SO_SHARED/heat-corpus/hot` or `<workspace>/../shared/heat-corpus/hot`;
//! the cases are also written to `target/heat-bench-cases.json` for
//! `heat/tools/bench_heat_python.py`, which times Heat's own Python on them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use heat::{Options, ParameterValues, RenderOptions, StackIdentity, StackTemplate, Template};

#[path = "../tests/common/mod.rs"]
mod common;

fn cases() -> Vec<common::Case> {
    let Some(root) = common::corpus_dir() else {
        eprintln!("no heat corpus found: set OCCI_SO_SHARED");
        return Vec::new();
    };
    let all = common::corpus_cases(&root);
    // Only the templates Heat accepts (what the bench compares with Heat).
    all.into_iter()
        .filter(|c| {
            c.load_error.is_none()
                && StackTemplate::parse(
                    &c.text,
                    c.environment.clone(),
                    c.files.clone(),
                    Options::heat(),
                )
                .and_then(|t| t.validate(&ParameterValues::new()))
                .is_ok()
        })
        .collect()
}

fn write_cases_for_python(cases: &[common::Case]) {
    let list: Vec<serde_json::Value> = cases
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c.name,
                "template": c.text,
                "environment": c.environment.to_value(),
                "files": c.files,
            })
        })
        .collect();
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/heat-bench-cases.json");
    let _ = std::fs::write(path, serde_json::to_string(&list).unwrap_or_default());
}

fn bench(c: &mut Criterion) {
    let cases = cases();
    if cases.is_empty() {
        return;
    }
    write_cases_for_python(&cases);
    let n = cases.len() as u64;
    let params: Vec<ParameterValues> = cases
        .iter()
        .map(|c| {
            Template::parse(&c.text)
                .map(|t| common::sample_values(&t))
                .unwrap_or_default()
        })
        .collect();

    let mut g = c.benchmark_group("corpus");
    g.throughput(Throughput::Elements(n));
    g.bench_function("yaml load only", |b| {
        b.iter(|| {
            for case in &cases {
                black_box(heat::yaml::load(&case.text, &heat::Limits::default()).ok());
            }
        })
    });
    g.bench_function("parse", |b| {
        b.iter(|| {
            for case in &cases {
                black_box(Template::parse(&case.text).ok());
            }
        })
    });
    g.bench_function("parse+validate (as POST /validate)", |b| {
        b.iter(|| {
            for case in &cases {
                let t = StackTemplate::parse(
                    &case.text,
                    case.environment.clone(),
                    case.files.clone(),
                    Options::heat(),
                );
                black_box(t.and_then(|t| t.validate(&ParameterValues::new())).ok());
            }
        })
    });
    g.bench_function("parse+validate+render", |b| {
        b.iter(|| {
            for (case, p) in cases.iter().zip(&params) {
                let t = StackTemplate::parse(
                    &case.text,
                    case.environment.clone(),
                    case.files.clone(),
                    Options::heat(),
                );
                if let Ok(t) = t {
                    black_box(t.validate(&ParameterValues::new()).ok());
                    black_box(t.render(p, &RenderOptions::default()).ok());
                }
            }
        })
    });
    // The per-request path: parsed once at registration, then values
    // checked and the template rendered on every request.
    let parsed: Vec<StackTemplate> = cases
        .iter()
        .filter_map(|c| {
            StackTemplate::parse(
                &c.text,
                c.environment.clone(),
                c.files.clone(),
                Options::heat(),
            )
            .ok()
        })
        .collect();
    g.bench_function("define+render (pre-parsed, per request)", |b| {
        b.iter(|| {
            for (t, p) in parsed.iter().zip(&params) {
                black_box(t.define(p, &StackIdentity::default()).ok());
                black_box(t.render(p, &RenderOptions::default()).ok());
            }
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4)).warm_up_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);

//! What the embedded engine costs per lifecycle call, with no simulated
//! delay: a 5-resource stack (`fixtures/five.yaml`: two levels, three
//! outputs) created, read, found, updated (PATCH) and deleted, each call
//! alone ("accept", what the caller waits for) and until the stack
//! settles ("→ *_COMPLETE": the whole simulated walk).
//!
//!     cargo bench -p occi-so-backend --bench embedded_overhead
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use occi_so_backend::{EmbeddedBackend, EmbeddedConfig};
use occi_so_sdk::{Credentials, StackBackend, StackRef, StackSpec, StackUpdate, WaitOptions};

const FIVE: &str = include_str!("fixtures/five.yaml");

static SEQ: AtomicU64 = AtomicU64::new(0);

fn spec() -> StackSpec {
    StackSpec {
        name: format!("bench{}", SEQ.fetch_add(1, Ordering::Relaxed)),
        template: FIVE.into(),
        parameters: [("greeting".to_string(), "bench".to_string())].into(),
        environment: None,
        files: BTreeMap::new(),
        timeout_mins: None,
        disable_rollback: true,
        tags: vec![],
    }
}

fn patch(i: u64) -> StackUpdate {
    StackUpdate::Patch {
        parameters: [("greeting".to_string(), format!("g{i}"))].into(),
    }
}

async fn settle(b: &EmbeddedBackend, c: &Credentials, s: &StackRef) {
    b.wait(c, s, &WaitOptions::default()).await.unwrap();
}

async fn clean(b: &EmbeddedBackend, c: &Credentials, stacks: Vec<StackRef>) {
    for s in &stacks {
        settle(b, c, s).await;
        b.delete(c, s).await.unwrap();
    }
    for s in &stacks {
        settle(b, c, s).await;
    }
}

/// Benchmarks `$name` as `iters` awaits of `$call` (a future made anew
/// each time), timed together.
macro_rules! calls {
    ($g:expr, $rt:expr, $name:expr, $call:expr) => {
        $g.bench_function($name, |bn| {
            bn.iter_custom(|iters| {
                $rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box($call.await);
                    }
                    start.elapsed()
                })
            })
        })
    };
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let b = Arc::new(EmbeddedBackend::new(EmbeddedConfig::instant()).unwrap());
    let creds = Credentials::new("bench", None);
    let (settled, fresh) = rt.block_on(async {
        let s = b.create(&creds, &spec()).await.unwrap();
        settle(&b, &creds, &s).await;
        // Listed as created (12 events); `settled` gathers many updates.
        let f = b.create(&creds, &spec()).await.unwrap();
        settle(&b, &creds, &f).await;
        (s, f)
    });
    let mut g = c.benchmark_group("embedded");
    g.measurement_time(Duration::from_secs(4));

    g.bench_function("create (accept)", |bn| {
        bn.iter_custom(|iters| {
            rt.block_on(async {
                let specs: Vec<StackSpec> = (0..iters).map(|_| spec()).collect();
                let mut made = Vec::with_capacity(specs.len());
                let start = Instant::now();
                for s in &specs {
                    made.push(b.create(&creds, s).await.unwrap());
                }
                let t = start.elapsed();
                clean(&b, &creds, made).await;
                t
            })
        })
    });
    g.bench_function("create → CREATE_COMPLETE", |bn| {
        bn.iter_custom(|iters| {
            rt.block_on(async {
                let specs: Vec<StackSpec> = (0..iters).map(|_| spec()).collect();
                let mut made = Vec::with_capacity(specs.len());
                let start = Instant::now();
                for s in &specs {
                    let st = b.create(&creds, s).await.unwrap();
                    settle(&b, &creds, &st).await;
                    made.push(st);
                }
                let t = start.elapsed();
                clean(&b, &creds, made).await;
                t
            })
        })
    });
    calls!(g, rt, "get", async {
        b.get(&creds, &settled).await.unwrap()
    });
    calls!(g, rt, "find", async {
        b.find(&creds, &settled.name).await.unwrap()
    });
    calls!(g, rt, "wait on a settled stack", async {
        settle(&b, &creds, &settled).await
    });
    g.bench_function("update PATCH (accept)", |bn| {
        bn.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    let start = Instant::now();
                    b.update(&creds, &settled, &patch(i)).await.unwrap();
                    total += start.elapsed();
                    settle(&b, &creds, &settled).await;
                }
                total
            })
        })
    });
    g.bench_function("update PATCH → UPDATE_COMPLETE", |bn| {
        bn.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    b.update(&creds, &settled, &patch(i)).await.unwrap();
                    settle(&b, &creds, &settled).await;
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("delete (accept)", |bn| {
        bn.iter_custom(|iters| {
            rt.block_on(async {
                let mut made = Vec::new();
                for _ in 0..iters {
                    let s = b.create(&creds, &spec()).await.unwrap();
                    settle(&b, &creds, &s).await;
                    made.push(s);
                }
                let start = Instant::now();
                for s in &made {
                    b.delete(&creds, s).await.unwrap();
                }
                let t = start.elapsed();
                for s in &made {
                    settle(&b, &creds, s).await;
                }
                t
            })
        })
    });
    g.bench_function("delete → DELETE_COMPLETE", |bn| {
        bn.iter_custom(|iters| {
            rt.block_on(async {
                let mut made = Vec::new();
                for _ in 0..iters {
                    let s = b.create(&creds, &spec()).await.unwrap();
                    settle(&b, &creds, &s).await;
                    made.push(s);
                }
                let start = Instant::now();
                for s in &made {
                    b.delete(&creds, s).await.unwrap();
                    settle(&b, &creds, s).await;
                }
                start.elapsed()
            })
        })
    });
    calls!(g, rt, "resources", async {
        b.resources(&creds, &fresh).await.unwrap()
    });
    calls!(g, rt, "events (12)", async {
        b.events(&creds, &fresh).await.unwrap()
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

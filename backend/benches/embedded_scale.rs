//! The embedded engine at scale: 10,000 stacks of a 5-resource template
//! created at once (time until all are `CREATE_COMPLETE`), the heap each
//! tracked stack costs once settled (a counting global allocator), and the
//! process RSS.
//!
//!     cargo bench -p occi-so-backend --bench embedded_scale
//!     cargo bench -p occi-so-backend --bench embedded_scale -- 2000   # fewer stacks
//!
//! Not a criterion bench: one run is the measurement (it prints a table).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job
#![allow(unsafe_code)] // clock_gettime(CLOCK_THREAD_CPUTIME_ID): the CPU time a benchmark reports

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use occi_so_backend::{EmbeddedBackend, EmbeddedConfig};
use occi_so_sdk::{Credentials, StackBackend, StackSpec, WaitOptions};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(by: isize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Five resources on two levels, three outputs, two parameters.
const FIVE: &str = include_str!("fixtures/five.yaml");

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map(|pages| pages * 4)
        .unwrap_or(0)
}

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Creates `n` stacks at once; returns (seconds until all complete, heap
/// bytes per stack once settled, peak heap bytes per stack while all were
/// in flight, RSS growth in KiB).
async fn round(n: usize, distinct_params: bool, tag: &str) -> (f64, f64, f64, u64) {
    let backend = Arc::new(EmbeddedBackend::new(EmbeddedConfig::instant()).unwrap());
    let creds = Credentials::new("bench", None);
    // Warm up: the template parsed once, the runtime's pools grown.
    let warm = backend
        .create(&creds, &spec(&format!("{tag}-warm"), 0, distinct_params))
        .await
        .unwrap();
    backend
        .wait(&creds, &warm, &WaitOptions::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (heap0, rss0) = (live(), rss_kib());
    PEAK.store(heap0, Ordering::Relaxed);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (b, c) = (backend.clone(), creds.clone());
        let s = spec(&format!("{tag}-{i}"), i, distinct_params);
        tasks.spawn(async move {
            let stack = b.create(&c, &s).await.unwrap();
            let info = b.wait(&c, &stack, &WaitOptions::default()).await.unwrap();
            assert_eq!(
                info.status.to_string(),
                "CREATE_COMPLETE",
                "{}",
                info.status_reason
            );
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    // Let the watch channels of finished waits go.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let peak = (PEAK.load(Ordering::Relaxed) - heap0) as f64 / n as f64;
    let per_stack = (live() - heap0) as f64 / n as f64;
    let rss = rss_kib().saturating_sub(rss0);
    assert_eq!(backend.stats().stacks, n + 1);
    assert_eq!(backend.stats().in_progress, 0);
    (secs, per_stack, peak, rss)
}

fn spec(name: &str, i: usize, distinct: bool) -> StackSpec {
    let mut parameters = BTreeMap::new();
    if distinct {
        parameters.insert("greeting".to_string(), format!("hello-{i}"));
    }
    StackSpec {
        name: name.into(),
        template: FIVE.into(),
        parameters,
        environment: None,
        files: BTreeMap::new(),
        timeout_mins: None,
        disable_rollback: true,
        tags: vec![],
    }
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("embedded engine, {n} stacks of 5 resources created at once (2 worker threads, zero delay)");
        println!("| parameters | time to all CREATE_COMPLETE | stacks/s | heap per settled stack | peak heap per stack in flight | RSS growth |");
        println!("|---|---|---|---|---|---|");
        for (distinct, label) in [(true, "distinct per stack"), (false, "all defaults")] {
            let (secs, per, peak, rss) =
                round(n, distinct, if distinct { "d" } else { "s" }).await;
            println!(
                "| {label} | {:.2} s | {:.0} | {:.0} B ({:.2} KiB) | {:.1} KiB | {:.1} MiB ({:.2} KiB/stack) |",
                secs,
                n as f64 / secs,
                per,
                per / 1024.0,
                peak / 1024.0,
                rss as f64 / 1024.0,
                rss as f64 / n as f64
            );
        }
    });
}

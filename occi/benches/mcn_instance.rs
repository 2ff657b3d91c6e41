//! Parse + render of a realistic MCN orchestrator instance (one kind, 12
//! attributes including long quoted values, 3 links, 2 action links) in
//! each rendering. Run:
//! `cargo bench -p occi --bench mcn_instance -- --warm-up-time 1 --measurement-time 3`
//!
//! Times are the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`),
//! not wall time: the reference machine is shared (other builds run on its
//! 2 cores), and wall time there measures the neighbours as much as us.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job
#![allow(unsafe_code)] // clock_gettime(CLOCK_THREAD_CPUTIME_ID): the CPU time a benchmark reports

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Bencher, Criterion};
use http::{HeaderMap, HeaderValue};
use occi::{parse_request, Link, MediaType, Renderer, Resource, Value};

const MCN: &str = "http://schemas.mobile-cloud-networking.eu/occi/service#";

fn instance() -> Resource {
    let mut r = Resource::new(format!("{MCN}orchestrator"), "/orchestrator/default");
    let a = &mut r.attributes;
    a.insert("occi.core.id", "default");
    a.insert("occi.core.title", "IMS as a Service, tenant demo");
    a.insert(
        "occi.mcn.stack.id",
        "region1:6f1c2a4e-3b1d-4c55-9a7e-2f0d8c1b9e3a,region2:0b4e9d2c-7a61-4f3e-8d25-1c9b7e6a5f40",
    );
    a.insert("occi.mcn.stack.state", "CREATE_COMPLETE");
    a.insert("mcn.endpoint.maas", "160.85.4.50");
    a.insert(
        "mcn.endpoint.dnsaas",
        "http://160.85.4.51:8080/dnsaas/api/v1",
    );
    a.insert("mcn.endpoint.hss", "160.85.4.52");
    a.insert("mcn.endpoint.mme", "160.85.4.53");
    a.insert("mcn.service.state", "provision");
    a.insert("mcn.so.svcinsts", "http://sm.example:8888/maas/5a1f2b3c http://sm.example:8888/dnsaas/9d8e7f6a http://sm.example:8888/slaaas/1a2b3c4d");
    a.insert("ims.scale.max_nodes", 12);
    a.insert("ims.config", Value::from("# cloud-init\nruncmd:\n  - [ sh, -c, \"echo \\\"deployed, ready\\\" > /tmp/state\" ]\n  - systemctl restart kamailio; echo done=1"));
    for (i, target) in ["/maas/5a1f2b3c", "/dnsaas/9d8e7f6a", "/slaaas/1a2b3c4d"]
        .iter()
        .enumerate()
    {
        let mut l = Link::new(*target, format!("{MCN}orchestrator"));
        l.location = Some(format!("/link/dependency/{i}"));
        l.attributes.insert("mcn.dependency.role", "required");
        r.links.push(l);
    }
    r.actions.push(format!("{MCN}deploy"));
    r.actions.push(format!("{MCN}provision"));
    r
}

/// CPU time consumed by this thread so far.
#[cfg(target_os = "linux")]
fn thread_cpu_time() -> Duration {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut t = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `t`, which lives here.
    unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_time() -> Duration {
    use std::sync::OnceLock;
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

/// Runs `f` `iters` times and reports the thread CPU time it took.
fn cpu<R>(b: &mut Bencher<'_>, mut f: impl FnMut() -> R) {
    b.iter_custom(|iters| {
        let start = thread_cpu_time();
        for _ in 0..iters {
            black_box(f());
        }
        thread_cpu_time() - start
    })
}

fn to_request(media: MediaType, headers: Vec<(http::HeaderName, HeaderValue)>) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(4);
    h.insert(http::header::CONTENT_TYPE, media.header_value());
    for (k, v) in headers {
        h.append(k, v);
    }
    h
}

fn bench(c: &mut Criterion) {
    let r = instance();
    let renderer = Renderer::new("http://127.0.0.1:8051");
    for media in [
        MediaType::TextPlain,
        MediaType::TextOcci,
        MediaType::OcciJson,
    ] {
        let name = media.as_str();
        c.bench_function(&format!("{name}/render"), |b| {
            cpu(b, || renderer.resource(media, black_box(&r)).unwrap())
        });
        let out = renderer.resource(media, &r).unwrap();
        let headers = to_request(media, out.headers.clone());
        let body = out.body.clone();
        let header_bytes: usize = out.headers.iter().map(|(_, v)| v.len()).sum();
        eprintln!(
            "{name}: body {} bytes, OCCI headers {header_bytes} bytes",
            body.len()
        );
        let parsed = parse_request(&headers, &body).unwrap();
        assert_eq!(parsed.attributes.len(), 12);
        assert_eq!(parsed.links.len(), 3);
        assert_eq!(parsed.action_links.len(), 2);
        c.bench_function(&format!("{name}/parse"), |b| {
            cpu(b, || {
                parse_request(black_box(&headers), black_box(&body)).unwrap()
            })
        });
        c.bench_function(&format!("{name}/render+parse"), |b| {
            cpu(b, || {
                let out = renderer.resource(media, black_box(&r)).unwrap();
                let h = to_request(media, out.headers);
                parse_request(&h, &out.body).unwrap()
            })
        });
    }
    let items: Vec<Resource> = (0..10)
        .map(|i| {
            Resource::new(
                format!("{MCN}orchestrator"),
                format!("/orchestrator/so-{i}"),
            )
        })
        .collect();
    c.bench_function("text/uri-list/collection-10/render+parse", |b| {
        cpu(b, || {
            let out = renderer.collection(MediaType::UriList, black_box(&items));
            let h = to_request(MediaType::UriList, out.headers);
            parse_request(&h, &out.body).unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

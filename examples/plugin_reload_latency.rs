//! Hot-reload latency of declarative plugins: the time from saving a
//! plugin file to its change being served in `/-/` of a running server.
//! Run by `scripts/bench-plugins.sh` (BENCHMARKS.md, plugins section).
//!
//! Usage: `plugin_reload_latency SERVER_URL PLUGIN_DIR [RUNS]` where
//! PLUGIN_DIR is the server's `--plugins` directory holding a copy of
//! `plugins/webapp` in `webapp/`. Each run (1) edits the manifest's kind
//! title and (2) adds a new plugin folder, then polls `/-/` every
//! millisecond until the change is served.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), target)?;
        }
    }
    Ok(())
}

/// Polls `url` until its body contains `needle`; the time since `start`.
async fn until_served(c: &reqwest::Client, url: &str, needle: &str, start: Instant) -> Duration {
    loop {
        if let Ok(r) = c.get(url).send().await {
            if let Ok(body) = r.text().await {
                if body.contains(needle) {
                    return start.elapsed();
                }
            }
        }
        if start.elapsed() > Duration::from_secs(10) {
            panic!("{needle:?} not served within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn summary(what: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pick = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what}: n={} min {:.1} ms, p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        v.len(),
        ms(v[0]),
        ms(pick(0.5)),
        ms(pick(0.9)),
        ms(v[v.len() - 1])
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: plugin_reload_latency SERVER_URL PLUGIN_DIR [RUNS]");
        std::process::exit(2);
    }
    let url = format!("{}/-/", args[1].trim_end_matches('/'));
    let dir = PathBuf::from(&args[2]);
    let runs: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(20);
    let c = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let manifest = dir.join("webapp/plugin.yaml");
    let original = std::fs::read_to_string(&manifest).expect("webapp/plugin.yaml in PLUGIN_DIR");
    let mut edits = Vec::new();
    let mut adds = Vec::new();
    for i in 0..runs {
        // An edited manifest: the new title is served.
        let title = format!("Edited {i}");
        let text = original.replace(
            "title: Two-tier web application",
            &format!("title: {title}"),
        );
        let start = Instant::now();
        std::fs::write(&manifest, text).expect("write");
        edits.push(until_served(&c, &url, &format!("title=\"{title}\""), start).await);
        // A new folder: its kind is served.
        let name = format!("bench{i}");
        let folder = dir.join(&name);
        let staging = dir.join(format!(".{name}"));
        copy_dir(&dir.join("webapp"), &staging).expect("copy");
        let m = staging.join("plugin.yaml");
        let t = std::fs::read_to_string(&m)
            .expect("read")
            .replace("name: webapp", &format!("name: {name}"))
            .replace("term: webapp", &format!("term: {name}"))
            .replace("location: /webapp/", &format!("location: /{name}/"));
        std::fs::write(&m, t).expect("write");
        let start = Instant::now();
        std::fs::rename(&staging, &folder).expect("rename");
        adds.push(until_served(&c, &url, &format!("Category: {name}; "), start).await);
        std::fs::remove_dir_all(&folder).expect("remove");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    std::fs::write(&manifest, original).expect("restore");
    summary("edited manifest -> served in /-/", edits);
    summary("new plugin folder -> kind served in /-/", adds);
}

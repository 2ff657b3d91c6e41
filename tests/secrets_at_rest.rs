//! Secrets at rest: with a key (`OCCI_SO_SECRET_KEY` or
//! `--secret-key-file`) nothing the journal or the embedded engine writes
//! holds an attribute value in clear; the same key reads it all back after
//! a restart, and without it (or with another) the server refuses to start
//! instead of forgetting its instances. Without a key the files are plain
//! (the zero-setup default), which is also what shows this test can fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const OTHER_KEY: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
const MARKER: &str = "marker-8f3a-not-in-clear";

/// Every file under `dir` whose bytes contain `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
            {
                found.push(p.display().to_string());
            }
        }
    }
    found
}

async fn deployed_with_marker(s: &Server) {
    let c = client();
    let url = s.url("/orchestrator/default");
    let mut h = mcn("vault");
    h.push((
        "Category",
        "orchestrator; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"",
    ));
    let attr = format!("sample.greeting=\"{MARKER}\"");
    h.push(("X-OCCI-Attribute", &attr));
    assert_eq!(call(&c, Method::PUT, &url, &h, "").await.status, 201);
    let a = call(
        &c,
        Method::POST,
        &format!("{url}?action=deploy"),
        &mcn("vault"),
        "",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    wait_for(&c, &url, &mcn("vault"), Duration::from_secs(60), |g| {
        g.attribute("occi.mcn.stack.state").as_deref() == Some("CREATE_COMPLETE")
    })
    .await;
}

/// Runs `occi-so serve` on `state` and expects it to stop by itself with
/// an error; returns its stderr.
fn refused_start(state: &Path, env: &[(&str, &str)]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_occi-so"))
        .args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(state)
        .env_remove("OCCI_SO_SECRET_KEY")
        .env_remove("OCCI_SO_SECRET_KEY_FILE")
        .envs(env.iter().copied())
        .env("OCCI_SO_DEFAULT_SERVICE", "sample")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            assert!(!status.success(), "it must refuse to start");
            return String::from_utf8_lossy(&out.stderr).into_owned();
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("occi-so started on state it cannot read");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn with_a_key_nothing_is_written_in_clear_and_the_key_reads_it_back() {
    let mut s = server().env("OCCI_SO_SECRET_KEY", KEY).start();
    deployed_with_marker(&s).await;
    s.terminate(Duration::from_secs(20));
    assert_eq!(
        files_holding(s.state_dir(), MARKER),
        Vec::<String>::new(),
        "sealed state holds the value in clear"
    );

    // The same key reads everything back.
    let s2 = s.restart();
    let c = client();
    let g = call(
        &c,
        Method::GET,
        &s2.url("/orchestrator/default"),
        &mcn("vault"),
        "",
    )
    .await;
    assert_eq!(g.status, 200, "{}", s2.log());
    assert_eq!(g.attribute("sample.greeting").as_deref(), Some(MARKER));
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("CREATE_COMPLETE")
    );
    assert!(!s2.log().contains(KEY), "the key is never logged");
    let mut s2 = s2;
    s2.terminate(Duration::from_secs(20));

    // Without the key, or with another, the server refuses to start.
    let err = refused_start(s.state_dir(), &[]);
    assert!(
        err.contains("no secret key is configured: start with the --secret-key-file (or OCCI_SO_SECRET_KEY) it was written with"),
        "{err}"
    );
    let err = refused_start(s.state_dir(), &[("OCCI_SO_SECRET_KEY", OTHER_KEY)]);
    assert!(
        err.contains("does not open with the configured secret key"),
        "{err}"
    );
    assert!(!err.contains(OTHER_KEY), "the key is never shown: {err}");
    // A malformed key is named by where it came from, never shown.
    let err = refused_start(s.state_dir(), &[("OCCI_SO_SECRET_KEY", "c2hvcnQ=")]);
    assert!(
        err.contains("OCCI_SO_SECRET_KEY: the secret key must be 32 bytes"),
        "{err}"
    );
    assert!(!err.contains("c2hvcnQ="), "{err}");
}

#[tokio::test]
async fn without_a_key_the_files_are_plain_and_private() {
    let mut s = server().start();
    deployed_with_marker(&s).await;
    s.terminate(Duration::from_secs(20));
    let plain = files_holding(s.state_dir(), MARKER);
    assert!(
        plain
            .iter()
            .any(|f| f.ends_with("journal.jsonl") || f.ends_with("snapshot.jsonl")),
        "the zero-setup default is plain JSON: {plain:?}"
    );
    #[cfg(unix)]
    for f in &plain {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
}

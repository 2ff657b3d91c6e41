//! A crash at every journal write boundary of a lifecycle (create, deploy,
//! update, dispose) on the embedded default: the server aborts right after
//! its N-th journal write is on disk (before anyone is told), for every N
//! the lifecycle has; then it starts again on the same state directory.
//! Whatever the crash point:
//!
//! * what a client was told is never taken back: an instance whose create
//!   was answered 201 exists after the restart (unless a dispose was
//!   answered), a deploy answered as done stays deployed;
//! * nothing is left "interrupted": every operation that was running ends
//!   (resumed from its stacks), none says it was interrupted;
//! * the instance and the engine agree: the stack the instance records is
//!   the one the engine has, in the state the instance says;
//! * an operation record exists for every accepted request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;

const CRASH: &str = "OCCI_SO_FAULT_CRASH_AFTER_WRITES";

/// What the client was told before the server died.
#[derive(Debug, Default)]
struct Told {
    created: bool,
    deployed: bool,
    updated: bool,
    /// A dispose was sent (answered or not: it may have happened).
    dispose_sent: bool,
    disposed: bool,
}

/// Drives the lifecycle until a request fails (the server died); what was
/// answered.
async fn drive(c: &reqwest::Client, s: &Server) -> Told {
    let mut told = Told::default();
    let url = s.url("/orchestrator/default");
    let t = mcn("crash");
    let mut h = t.clone();
    h.push((
        "Category",
        "orchestrator; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"",
    ));
    let Some(a) = try_call(c, Method::PUT, &url, &h).await else {
        return told;
    };
    assert_eq!(a.status, 201, "{}", a.body);
    told.created = true;
    if try_call(c, Method::POST, &format!("{url}?action=deploy"), &t)
        .await
        .is_none()
    {
        return told;
    }
    if !settled_or_gone(c, &url, &t).await {
        return told;
    }
    told.deployed = true;
    let mut u = t.clone();
    u.push(("X-OCCI-Attribute", "sample.greeting=\"after\""));
    if try_call(c, Method::POST, &url, &u).await.is_none() {
        return told;
    }
    if !settled_or_gone(c, &url, &t).await {
        return told;
    }
    told.updated = true;
    told.dispose_sent = true;
    match try_call(c, Method::DELETE, &url, &t).await {
        Some(a) if a.status == 200 => told.disposed = true,
        _ => {}
    }
    told
}

async fn try_call(c: &reqwest::Client, m: Method, url: &str, h: &[(&str, &str)]) -> Option<Answer> {
    let mut r = c.request(m, url);
    for (k, v) in h {
        r = r.header(*k, *v);
    }
    let resp = r.send().await.ok()?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.text().await.ok()?;
    Some(Answer {
        status,
        headers,
        body,
    })
}

/// Waits until nothing runs on the instance; false when the server died.
async fn settled_or_gone(c: &reqwest::Client, url: &str, h: &[(&str, &str)]) -> bool {
    for _ in 0..400 {
        match try_call(c, Method::GET, url, h).await {
            None => return false,
            Some(a) if a.attribute("occi.so.operation").is_none() => {
                return a.attribute("occi.so.error").is_none();
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
    panic!("the instance never settled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_journal_write_loses_nothing_told_and_leaves_nothing_inconsistent() {
    let c = client();
    for n in 1..200 {
        let dir = tempfile::tempdir().unwrap();
        let mut s = server()
            .args(embedded_args(dir.path(), FAST, ""))
            .env(CRASH, n.to_string())
            .start();
        let told = drive(&c, &s).await;
        // The server is gone (aborted at write n) or the lifecycle ran out
        // of writes before n.
        let mut waited = 0;
        while !s.exited() && waited < 100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            waited += 1;
        }
        if !s.exited() {
            assert!(
                told.disposed,
                "write {n}: the server neither crashed nor finished: {told:?}"
            );
            s.kill();
            assert!(n > 10, "only {} crash points were reached", n - 1);
            return;
        }
        let s = s.restart_without(CRASH);
        let url = s.url("/orchestrator/default");
        let t = mcn("crash");
        // Let what was running settle.
        let g = poll(
            &c,
            &url,
            &t,
            Duration::from_secs(60),
            Duration::from_millis(50),
            |a| a.status == 404 || a.attribute("occi.so.operation").is_none(),
        )
        .await;
        if told.disposed {
            assert_eq!(
                g.status, 404,
                "write {n}: a dispose that was answered is undone: {}",
                g.body
            );
            continue;
        }
        if told.created && !told.dispose_sent {
            assert_eq!(
                g.status, 200,
                "write {n}: a create that was answered is lost ({told:?})"
            );
        }
        if g.status == 404 {
            continue; // nothing answered, nothing kept
        }
        let error = g.attribute("occi.so.error");
        assert!(
            error.as_deref().is_none_or(|e| !e.contains("interrupted")),
            "write {n}: {error:?}"
        );
        let phase = g.attribute("occi.so.phase").unwrap();
        if told.deployed {
            assert_ne!(
                phase, "initialised",
                "write {n}: an answered deploy is taken back: {}",
                g.body
            );
        }
        if told.updated {
            assert_eq!(
                g.attribute("sample.greeting").as_deref(),
                Some("after"),
                "write {n}"
            );
        }
        // The instance and the engine agree on the stack.
        let (_, doc) = admin_stacks(&s, "crash", "/orchestrator/default").await;
        let stacks = doc["stacks"].as_array().cloned().unwrap_or_default();
        let state = g.attribute("occi.mcn.stack.state").unwrap();
        match phase.as_str() {
            "initialised" => {}
            _ => {
                assert!(
                    state.ends_with("_COMPLETE"),
                    "write {n}: deployed but {state}"
                );
                let engine = stacks
                    .first()
                    .and_then(|e| e["stack"]["status"].as_str())
                    .unwrap_or_default()
                    .to_string();
                assert_eq!(
                    engine, state,
                    "write {n}: instance says {state}, engine says {engine}"
                );
            }
        }
        // Every operation the instance links to has its record.
        for op in g.body.lines().filter(|l| l.contains("/operation/")) {
            let loc = op
                .split('<')
                .nth(1)
                .and_then(|r| r.split('>').next())
                .unwrap();
            let r = call(&c, Method::GET, loc, &t, "").await;
            assert_eq!(r.status, 200, "write {n}: {loc}");
            let st = r.attribute("occi.so.operation.state").unwrap();
            assert!(
                st != "running" && st != "queued",
                "write {n}: {loc} still {st}"
            );
        }
    }
    panic!("the lifecycle never ran out of writes");
}

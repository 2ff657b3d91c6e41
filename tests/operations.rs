//! Operations as durable records, through the OCCI API, on both backends:
//! the queue, cancel (queued and running: Heat's `cancel_update` and the
//! embedded engine's), retry, previews, and the mistakes a caller can make
//! with them. A declarative plugin whose one stack takes as long as it is
//! told (`OS::Heat::TestResource`'s `wait_secs`) gives the time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use reqwest::Method;

const MANIFEST: &str = r#"manifest_version: 1
name: slow
version: 1
kind: {term: slow, scheme: "http://example.org/occi/slow#", location: /slow/}
attributes:
  slow.wait: {type: integer, default: 0, min: 0, max: 120}
  slow.greeting: {type: string, default: hello}
outputs:
  slow.said: {from: main.said}
stacks:
  main:
    template: slow.yaml
    parameters:
      wait: {attribute: slow.wait}
      greeting: {attribute: slow.greeting}
"#;

const TEMPLATE: &str = r#"heat_template_version: 2018-08-31
parameters:
  wait: {type: number, default: 0}
  greeting: {type: string, default: hello}
resources:
  r:
    type: OS::Heat::TestResource
    properties:
      value: {get_param: greeting}
      wait_secs: {get_param: wait}
      update_replace: false
outputs:
  said:
    value: {get_attr: [r, output]}
"#;

fn plugin_dir(root: &Path) -> std::path::PathBuf {
    let dir = root.join("plugins").join("slow");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("plugin.yaml"), MANIFEST).unwrap();
    std::fs::write(dir.join("slow.yaml"), TEMPLATE).unwrap();
    root.join("plugins")
}

fn with_attr(tenant: &'static str, attr: &str) -> Vec<(&'static str, String)> {
    let mut h: Vec<(&'static str, String)> = mcn(tenant)
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
    h.push(("X-OCCI-Attribute", attr.to_string()));
    h
}

async fn send(
    c: &reqwest::Client,
    method: Method,
    url: &str,
    headers: &[(&'static str, String)],
) -> Answer {
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    call(c, method, url, &h, "").await
}

/// The operation record behind an answer's `Operation-Location`.
async fn operation_of(c: &reqwest::Client, a: &Answer, tenant: &'static str) -> Answer {
    let loc = a.header("operation-location");
    assert!(loc.contains("/operation/"), "no Operation-Location: {a:?}");
    call(c, Method::GET, &loc, &mcn(tenant), "").await
}

async fn until_state(c: &reqwest::Client, loc: &str, tenant: &'static str, state: &str) -> Answer {
    poll(
        c,
        loc,
        &mcn(tenant),
        Duration::from_secs(120),
        Duration::from_millis(100),
        |a| a.attribute("occi.so.operation.state").as_deref() == Some(state),
    )
    .await
}

async fn queue_cancel_retry_and_preview(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let plugins = plugin_dir(dir.path());
    let mut args = lifecycle_args(&backend, dir.path(), FAST);
    args.push("--plugins".into());
    args.push(plugins.display().to_string());
    args.extend(["--queue-limit".into(), "1".into()]);
    let s = start_with(args);
    let c = client();
    let t = "ops";

    // A preview of a deploy: what would be created, and nothing is.
    let mut h = mcn(t);
    h.push(("Category", "slow; scheme=\"http://example.org/occi/slow#\""));
    let a = call(&c, Method::PUT, &s.url("/slow/one"), &h, "").await;
    assert_eq!(a.status, 201, "{}", a.body);
    let design = operation_of(&c, &a, t).await;
    assert_eq!(
        design.attribute("occi.so.operation.name").as_deref(),
        Some("design")
    );
    assert_eq!(
        design.attribute("occi.so.operation.state").as_deref(),
        Some("succeeded")
    );
    let url = s.url("/slow/one");
    let p = call(
        &c,
        Method::POST,
        &format!("{url}?action=deploy&preview"),
        &mcn(t),
        "",
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(p.header("content-type"), "application/json");
    let plan: serde_json::Value = serde_json::from_str(&p.body).unwrap();
    assert_eq!(plan["operation"], "deploy");
    assert_eq!(plan["stacks"][0]["action"], "create");
    assert_eq!(plan["stacks"][0]["resources"][0]["resource_name"], "r");
    assert_eq!(plan["stacks"][0]["resources"][0]["action"], "create");
    assert!(plan["incomplete"].is_null(), "{plan}");
    let g = call(&c, Method::GET, &url, &mcn(t), "").await;
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("uninitialized"),
        "the preview created nothing"
    );

    // Deploy, then preview an update: the resource would be updated in place.
    let a = call(
        &c,
        Method::POST,
        &format!("{url}?action=deploy"),
        &mcn(t),
        "",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let deploy_loc = a.header("operation-location");
    let d = until_state(&c, &deploy_loc, t, "succeeded").await;
    assert!(
        d.attribute("occi.so.operation.finished")
            .is_some_and(|f| f.ends_with('Z')),
        "{}",
        d.body
    );
    let p = send(
        &c,
        Method::POST,
        &format!("{url}?preview"),
        &with_attr(t, "slow.greeting=\"changed\""),
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.body);
    let plan: serde_json::Value = serde_json::from_str(&p.body).unwrap();
    assert_eq!(plan["operation"], "update");
    assert_eq!(plan["stacks"][0]["action"], "update", "{plan}");
    let r = plan["stacks"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource_name"] == "r")
        .cloned()
        .unwrap();
    assert!(
        r["action"] == "update" || r["action"] == "replace",
        "{plan}"
    );
    let g = call(&c, Method::GET, &url, &mcn(t), "").await;
    assert_eq!(
        g.attribute("slow.greeting").as_deref(),
        Some("hello"),
        "the preview changed nothing"
    );

    // A slow update runs (TestResource waits when its value changes); a
    // second one waits behind it.
    let slow = send(
        &c,
        Method::POST,
        &url,
        &with_attr(t, "slow.wait=6, slow.greeting=\"slowly\""),
    )
    .await;
    assert_eq!(slow.status, 200, "{}", slow.body);
    let running_loc = slow.header("operation-location");
    let queued = send(
        &c,
        Method::POST,
        &url,
        &with_attr(t, "slow.greeting=\"later\""),
    )
    .await;
    assert_eq!(queued.status, 202, "{}", queued.body);
    assert_eq!(
        queued.attribute("occi.so.operation.state").as_deref(),
        Some("queued")
    );
    assert_eq!(
        queued.attribute("occi.so.operation.position").as_deref(),
        Some("1")
    );
    let queued_loc = queued.header("operation-location");
    // The queue holds one (--queue-limit 1): a third is 409, naming the
    // running operation and when it started (RFC 3339), and changes nothing.
    let full = send(
        &c,
        Method::POST,
        &url,
        &with_attr(t, "slow.greeting=\"too many\""),
    )
    .await;
    assert_eq!(full.status, 409, "{}", full.body);
    let running_id = running_loc.rsplit('/').next().unwrap();
    assert!(
        full.body.contains(&format!(
            "operation 'update' (/operation/{running_id}) is in progress on this instance since 20"
        )) && full
            .body
            .contains("Z and 1 more wait behind it (at most 1 may wait)"),
        "{}",
        full.body
    );
    let g = call(&c, Method::GET, &url, &mcn(t), "").await;
    assert_eq!(
        g.attribute("occi.so.queued").as_deref(),
        Some("1"),
        "{}",
        g.body
    );

    // Cancel the queued one: removed from the queue, nothing applied.
    let x = call(
        &c,
        Method::POST,
        &format!("{queued_loc}?action=cancel"),
        &mcn(t),
        "",
    )
    .await;
    assert_eq!(x.status, 200, "{}", x.body);
    assert_eq!(
        x.attribute("occi.so.operation.state").as_deref(),
        Some("cancelled")
    );
    // Cancel the running one: its stack update is cancelled and rolled back.
    until_state(&c, &running_loc, t, "running").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let x = call(
        &c,
        Method::POST,
        &format!("{running_loc}?action=cancel"),
        &mcn(t),
        "",
    )
    .await;
    assert!(x.status == 200 || x.status == 202, "{}", x.body);
    let cancelled = until_state(&c, &running_loc, t, "cancelled").await;
    assert_eq!(
        cancelled.attribute("occi.so.operation.error").as_deref(),
        Some("cancelled by the caller")
    );
    let g = poll(
        &c,
        &url,
        &mcn(t),
        Duration::from_secs(120),
        Duration::from_millis(200),
        |a| a.attribute("occi.so.operation").is_none(),
    )
    .await;
    assert_eq!(
        g.attribute("slow.wait").as_deref(),
        Some("0"),
        "the attributes are as before: {}",
        g.body
    );
    assert_eq!(g.attribute("slow.greeting").as_deref(), Some("hello"));
    let state = g.attribute("occi.mcn.stack.state").unwrap();
    assert!(
        state == "ROLLBACK_COMPLETE" || state == "UPDATE_FAILED",
        "{state}"
    );

    // Retry the cancelled update: a new operation that really runs it.
    let r = call(
        &c,
        Method::POST,
        &format!("{running_loc}?action=retry"),
        &mcn(t),
        "",
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let retry_of = r.attribute("occi.so.operation.retry_of").unwrap();
    assert!(
        retry_of.starts_with("/operation/") && running_loc.ends_with(&retry_of),
        "{retry_of}"
    );
    let again = r.header("operation-location");
    assert_ne!(again, running_loc);
    until_state(&c, &again, t, "succeeded").await;
    let g = call(&c, Method::GET, &url, &mcn(t), "").await;
    assert_eq!(g.attribute("slow.wait").as_deref(), Some("6"), "{}", g.body);
    assert_eq!(g.attribute("slow.greeting").as_deref(), Some("slowly"));
    assert_eq!(g.attribute("slow.said").as_deref(), Some("slowly"));
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("UPDATE_COMPLETE")
    );

    // Mistakes: a clear 4xx each, nothing changed.
    let done = call(
        &c,
        Method::POST,
        &format!("{deploy_loc}?action=cancel"),
        &mcn(t),
        "",
    )
    .await;
    assert_eq!(done.status, 409);
    assert!(
        done.body
            .contains("is succeeded: only a queued or running operation can be cancelled"),
        "{}",
        done.body
    );
    let done = call(
        &c,
        Method::POST,
        &format!("{deploy_loc}?action=retry"),
        &mcn(t),
        "",
    )
    .await;
    assert_eq!(done.status, 409);
    assert!(
        done.body
            .contains("only a failed or cancelled operation can be retried"),
        "{}",
        done.body
    );
    let typo = call(
        &c,
        Method::POST,
        &format!("{deploy_loc}?action=cancle"),
        &mcn(t),
        "",
    )
    .await;
    assert_eq!(typo.status, 400);
    assert!(typo.body.contains("did you mean cancel?"), "{}", typo.body);
    let unknown = call(&c, Method::GET, &s.url("/operation/nope"), &mcn(t), "").await;
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.body.contains("no operation /operation/nope"),
        "{}",
        unknown.body
    );
    let other = call(&c, Method::GET, &deploy_loc, &mcn("intruder"), "").await;
    assert_eq!(other.status, 404, "another tenant's operation is not found");
    let list = call(
        &c,
        Method::GET,
        &format!("{}?instance=/slow/one", s.url("/operation/")),
        &mcn(t),
        "",
    )
    .await;
    assert_eq!(list.status, 200);
    assert_eq!(
        list.body.matches("/operation/").count(),
        5,
        "design, deploy, two updates, the retry: {}",
        list.body
    );

    // Dispose: the record outlives the instance.
    let a = call(&c, Method::DELETE, &url, &mcn(t), "").await;
    assert!(a.status == 200 || a.status == 202, "{}", a.body);
    let dispose_loc = a.header("operation-location");
    until_state(&c, &dispose_loc, t, "succeeded").await;
    let g = call(&c, Method::GET, &url, &mcn(t), "").await;
    assert_eq!(g.status, 404);
}

on_both_backends!(queue_cancel_retry_and_preview);

/// The IMSSO guide's sequence as a script types it: update right after
/// deploy, without waiting. The update waits behind the deploy (202 with
/// its record) and both end as asked.
async fn the_seed_sequence_typed_by_a_script(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = lifecycle_args(&backend, dir.path(), FAST);
    args.extend(["--default-service".to_string(), "ims".to_string()]);
    let s = start_with(args);
    let c = client();
    let cmds = seed::imsso_requests("test-token", "script");
    let init = seed::replay(&c, &s, &cmds[0]).await;
    assert_eq!(init.status, 201, "{}", init.body);
    let deploy = seed::replay(&c, &s, &cmds[1]).await;
    assert_eq!(deploy.status, 200, "{}", deploy.body);
    let update = seed::replay(&c, &s, &cmds[2]).await;
    assert_eq!(
        update.status, 202,
        "the update waits behind the deploy: {}",
        update.body
    );
    assert_eq!(
        update.attribute("occi.so.operation.name").as_deref(),
        Some("update")
    );
    assert_eq!(
        update.attribute("occi.so.operation.position").as_deref(),
        Some("1")
    );
    let loc = update.header("operation-location");
    let done = poll(
        &c,
        &loc,
        &mcn("script"),
        backend.within(),
        Duration::from_millis(200),
        |a| {
            a.attribute("occi.so.operation.state")
                .is_some_and(|s| s != "queued" && s != "running")
        },
    )
    .await;
    assert_eq!(
        done.attribute("occi.so.operation.state").as_deref(),
        Some("succeeded"),
        "{}",
        done.body
    );
    let g = call(
        &c,
        Method::GET,
        &s.url("/orchestrator/default"),
        &mcn("script"),
        "",
    )
    .await;
    assert_eq!(
        g.attribute("mcn.endpoint.maas").as_deref(),
        Some("160.85.4.50")
    );
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("UPDATE_COMPLETE")
    );
    assert_eq!(g.attribute("occi.so.phase").as_deref(), Some("deployed"));
}

on_both_backends!(the_seed_sequence_typed_by_a_script);

/// SIGKILL while a deploy runs, then a restart on the same state: the
/// deploy is not "interrupted", it resumes from its recorded stack and
/// ends as the backend says (on Heat the stack went on meanwhile; on the
/// embedded engine, which died with the server, the stack Heat-style
/// "went down" and the resumed deploy replaces it).
async fn a_killed_server_resumes_its_operation(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let plugins = plugin_dir(dir.path());
    let mut args = lifecycle_args(&backend, dir.path(), FAST);
    args.push("--plugins".into());
    args.push(plugins.display().to_string());
    let mut s = start_with(args);
    let c = client();
    let t = "resume";
    let mut h = mcn(t);
    h.push(("Category", "slow; scheme=\"http://example.org/occi/slow#\""));
    h.push(("X-OCCI-Attribute", "slow.wait=3"));
    let a = call(&c, Method::PUT, &s.url("/slow/r"), &h, "").await;
    assert_eq!(a.status, 201, "{}", a.body);
    let a = call(
        &c,
        Method::POST,
        &format!("{}?action=deploy", s.url("/slow/r")),
        &mcn(t),
        "",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let op = s.path_of(&a.header("operation-location"));
    // Killed once the stack exists.
    poll(
        &c,
        &s.url("/slow/r"),
        &mcn(t),
        Duration::from_secs(60),
        Duration::from_millis(50),
        |a| {
            a.attribute("occi.mcn.stack.id")
                .is_some_and(|id| id != "N/A")
        },
    )
    .await;
    s.kill();
    let s = s.restart();
    let done = until_state(&c, &s.url(&op), t, "succeeded").await;
    assert_eq!(
        done.attribute("occi.so.operation.resumed").as_deref(),
        Some("1"),
        "{}",
        done.body
    );
    let g = call(&c, Method::GET, &s.url("/slow/r"), &mcn(t), "").await;
    assert_eq!(
        g.attribute("occi.so.phase").as_deref(),
        Some("deployed"),
        "{}",
        g.body
    );
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("CREATE_COMPLETE")
    );
    assert!(g.attribute("occi.so.error").is_none(), "{}", g.body);
    let probe = backend.probe();
    let held = probe.stacks(&s, t, "/slow/r").await.unwrap();
    assert_eq!(held.len(), 1, "exactly one stack");
}

on_both_backends!(a_killed_server_resumes_its_operation);

/// A loopback receiver of callbacks: records every body; answers 500 while
/// `failing` is set.
struct Receiver {
    url: String,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    failing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

async fn receiver() -> Receiver {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/cb", listener.local_addr().unwrap());
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let failing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (b, f) = (bodies.clone(), failing.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (b, f) = (b.clone(), f.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (b, f) = (b.clone(), f.clone());
                        async move {
                            let bytes = req.into_body().collect().await.unwrap().to_bytes();
                            let status = if f.load(std::sync::atomic::Ordering::SeqCst) {
                                500
                            } else {
                                b.lock()
                                    .unwrap()
                                    .push(serde_json::from_slice(&bytes).unwrap());
                                200
                            };
                            let mut r = hyper::Response::new(http_body_util::Full::new(
                                bytes::Bytes::new(),
                            ));
                            *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, std::convert::Infallible>(r)
                        }
                    },
                );
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    Receiver {
        url,
        bodies,
        failing,
    }
}

impl Receiver {
    /// Every event id received so far, in order of arrival.
    fn ids(&self) -> Vec<u64> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| b["events"].as_array().cloned().unwrap_or_default())
            .map(|e| e["id"].as_u64().unwrap())
            .collect()
    }

    fn types(&self) -> Vec<String> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| b["events"].as_array().cloned().unwrap_or_default())
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect()
    }

    async fn until(&self, what: &str, done: impl Fn(&Receiver) -> bool) {
        for _ in 0..400 {
            if done(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("callbacks: {what}; got {:?}", self.bodies.lock().unwrap());
    }
}

/// `occi.so.callback`: every event POSTed there, at least once, across a
/// failing receiver and a restart; the instance's end comes last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_get_every_event_at_least_once() {
    let r = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = start_with(embedded_args(dir.path(), FAST, ""));
    let c = client();
    let t = "cb";
    let url = s.url("/orchestrator/default");
    let mut h: Vec<(&'static str, String)> = mcn(t)
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
    h.push((
        "Category",
        "orchestrator; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"".into(),
    ));
    h.push((
        "X-OCCI-Attribute",
        format!("occi.so.callback=\"{}\"", r.url),
    ));
    let a = send(&c, Method::PUT, &url, &h).await;
    assert_eq!(a.status, 201, "{}", a.body);
    // A receiver that fails at first gets it all once it answers.
    r.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let a = call(
        &c,
        Method::POST,
        &format!("{url}?action=deploy"),
        &mcn(t),
        "",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    settled(
        &c,
        &url,
        &mcn(t),
        Duration::from_secs(60),
        Duration::from_millis(50),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        r.ids().is_empty(),
        "nothing counts as delivered while it fails"
    );
    r.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    r.until("the deploy's events", |r| {
        r.types().contains(&"phase".to_string())
    })
    .await;
    let ids = r.ids();
    assert_eq!(
        ids,
        (1..=ids.len() as u64).collect::<Vec<_>>(),
        "in order, from the first"
    );

    // Events made while the server is down for the receiver are sent
    // after a restart.
    r.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let u = send(
        &c,
        Method::POST,
        &url,
        &with_attr(t, "sample.greeting=\"restart\""),
    )
    .await;
    assert_eq!(u.status, 200, "{}", u.body);
    settled(
        &c,
        &url,
        &mcn(t),
        Duration::from_secs(60),
        Duration::from_millis(50),
    )
    .await;
    s.terminate(Duration::from_secs(20));
    r.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    let s = s.restart();
    let url = s.url("/orchestrator/default");
    let before = ids.len();
    r.until("the update's events after the restart", |r| {
        r.types()[before..].iter().any(|t| t == "attributes")
    })
    .await;
    // Disposed: its end is the last message.
    let a = call(&c, Method::DELETE, &url, &mcn(t), "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    r.until("the end", |r| {
        r.types().last().map(String::as_str) == Some("deleted")
    })
    .await;
    let all = r.ids();
    let mut seen = all.clone();
    seen.dedup();
    assert_eq!(
        seen,
        (1..=*all.last().unwrap()).collect::<Vec<_>>(),
        "none missing: {all:?}"
    );
}

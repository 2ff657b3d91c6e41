//! Heat going away in the middle of an operation, on a private Heat that
//! this test starts and stops (the shared test Heat is left alone): the
//! caller gets `Unavailable` (the server's 503), the instance's stack
//! record survives, and once Heat is back the stack can be read and
//! deleted through that record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod conformance;
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use conformance::{slow, spec, RecordingSink, BASIC};
use occi_so_backend::{OpenStackBackend, OpenStackConfig};
use occi_so_sdk::{BackendError, Credentials, StackBackend, Stacks, WaitOptions};
use support::PrivateHeat;

async fn blocking(heat: &Arc<PrivateHeat>, start: bool) {
    let heat = heat.clone();
    tokio::task::spawn_blocking(move || if start { heat.start() } else { heat.stop() })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heat_stopped_mid_create_is_unavailable_and_loses_no_record() {
    if occi_so_testkit::require_heat().is_none() {
        return;
    }
    let heat = Arc::new(PrivateHeat::new("outage"));
    blocking(&heat, true).await;

    let mut config = OpenStackConfig::local_heat(heat.url());
    config.retry.attempts = 2;
    config.poll.max_failures = 2;
    let backend: Arc<dyn StackBackend> = Arc::new(OpenStackBackend::new(config).unwrap());
    let creds = Credentials::new("admin", None);
    let sink = Arc::new(RecordingSink::default());
    let prefix = format!("outage{}", std::process::id());
    let mut stacks = Stacks::new(
        backend.clone(),
        creds.clone(),
        sink.clone(),
        &prefix,
        vec![],
    )
    .with_wait_options(WaitOptions {
        timeout: Duration::from_secs(120),
    });

    let created = stacks
        .create("main", spec(String::new(), &slow(6)))
        .await
        .unwrap();
    let record = sink.get("main").expect("journaled");
    assert_eq!(record.stack.as_ref(), Some(&created));

    blocking(&heat, false).await;

    // A waiter learns that Heat is gone, promptly.
    let t0 = Instant::now();
    let waited = stacks.wait("main").await;
    assert!(
        matches!(&waited, Err(BackendError::Unavailable { message }) if message.contains("cannot connect")),
        "{waited:?}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t0.elapsed()
    );
    // Every other call says the same, and nothing is forgotten.
    let refused = stacks.create("second", spec(String::new(), BASIC)).await;
    assert!(
        matches!(refused, Err(BackendError::Unavailable { .. })),
        "{refused:?}"
    );
    assert!(
        sink.get("second").is_none(),
        "a create Heat never saw leaves no record"
    );
    let kept = sink.get("main").expect("the record survives the outage");
    assert_eq!(kept.stack.as_ref(), Some(&created));
    assert_eq!(stacks.records().len(), 1);

    // Heat is back: the recorded stack is there and can be deleted.
    blocking(&heat, true).await;
    let info = stacks.refresh("main").await.unwrap();
    assert_eq!(info.stack, created);
    stacks.delete("main").await.unwrap();
    assert!(sink.get("main").is_none());
    assert_eq!(backend.find(&creds, &created.name).await.unwrap(), None);
}

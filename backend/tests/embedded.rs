//! The embedded engine against the shared conformance suite: the same
//! cases a real Heat passes (`tests/openstack_heat.rs`), on the default
//! in-process backend. Always runs (no Heat needed).
//!
//! `waiters_share_one_poll` counts, instead of Heat GETs, the stack
//! documents the engine renders for watchers: eight waiters share one
//! channel, so they cost what one does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

#[macro_use]
mod conformance;

use std::sync::Arc;
use std::time::Duration;

use conformance::Harness;
use occi_so_backend::{EmbeddedBackend, EmbeddedConfig};
use occi_so_sdk::Credentials;

async fn harness() -> Option<Harness> {
    let backend = Arc::new(
        EmbeddedBackend::new(EmbeddedConfig {
            resource_delay: Duration::from_millis(5),
            signal_delay: Duration::from_millis(20),
            ..EmbeddedConfig::default()
        })
        .expect("embedded backend"),
    );
    let counter = backend.clone();
    Some(
        Harness::new(backend, Credentials::new("admin", None))
            .with_reads(Arc::new(move || counter.stats().watch_updates)),
    )
}

conformance_tests!(harness);

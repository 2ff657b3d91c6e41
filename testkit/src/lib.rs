//! Test support for occi-so, a dev-dependency of the workspace's tests:
//!
//! * [`Server`]: the real `occi-so serve` (the binary its caller names) on
//!   `127.0.0.1:0` with a fresh state directory; SIGTERM, SIGKILL,
//!   restart on the same state; its log printed when the test fails;
//! * HTTP: [`call`], [`Answer`] (attributes and actions of any OCCI
//!   rendering), [`wait_for`], [`settled`], [`serve_static`]; the config
//!   file with the admin API on ([`config_args`], [`embedded_args`]) and
//!   [`admin_stacks`];
//! * the require switches ([`require_heat`], [`require_keystone`],
//!   [`require_shared`], [`require_openssl`]): a test missing what it
//!   needs skips with a printed reason, or fails when the matching
//!   `OCCI_SO_REQUIRE_*=1` is set (as `scripts/test.sh` does);
//! * [`RecordingSink`], a `StackSink` that keeps every report;
//! * [`Probe`], what a backend holds for an instance, implemented for the
//!   embedded engine ([`EmbeddedProbe`]) and a real Heat ([`HeatProbe`]),
//!   so that a lifecycle scenario is written once and run on both
//!   ([`Backend`], [`on_both_backends!`]);
//! * [`seed`]: the IMSSO guide's curl sequence, in the tree.
//!
//! This is test code: a check that does not hold fails the calling test
//! by panicking with a message naming what was expected, as `assert!`
//! does.
#![allow(clippy::panic)] // a test harness: its checks fail the calling test, as assert! does

mod config;
mod http;
mod probe;
mod require;
pub mod seed;
mod server;
mod sink;

pub use config::{
    admin, admin_stacks, admin_token_file, config_args, embedded_args, ADMIN_TOKEN, FAST,
};
pub use http::{
    call, client, mcn, poll, serve_static, settled, split_attributes, wait_for, Answer, MCN, SM,
};
pub use probe::{
    by_role, is_address_in, Backend, EmbeddedProbe, HeatProbe, Probe, ResourceView, StackView, GONE,
};
pub use require::{
    keystone_password, require_heat, require_keystone, require_openssl, require_shared, required,
    shared_dir, test_name, OpenSsl, REQUIRE_HEAT, REQUIRE_KEYSTONE, REQUIRE_OPENSSL,
    REQUIRE_SHARED,
};
pub use server::{Server, ServerBuilder};
pub use sink::RecordingSink;

/// Re-exported for the tests' convenience.
pub use reqwest::{Method, StatusCode};

//! # occi-so-http: the HTTP edge
//!
//! hyper and tower-http around the framework: the transport ([`server`]:
//! plain or TLS, HTTP/1.1 and h2, graceful shutdown, the tower layers),
//! authentication ([`auth`]: `X-Auth-Token`/`X-Tenant-Name` → a caller),
//! the OCCI application ([`routes`]: negotiation, the query interface,
//! collections, entities, links, `?watch`, the admin API), Prometheus
//! [`metrics`], and `error`, **the one place where a typed error becomes
//! an HTTP status**.
//!
//! **Invariant:** all OCCI parsing and rendering goes through the `occi`
//! crate; every handler returns `Result<_, ApiError>`; 5xx only for the
//! server's or a backend's failures, with internals logged, not sent;
//! tokens travel as `Secret` and are never logged or rendered.

#![warn(unreachable_pub)]

pub mod auth;
pub mod deliver;
mod error;
pub mod metrics;
pub mod routes;
pub mod server;
mod settings;

pub use settings::{AuthSettings, Limits, TlsSettings};

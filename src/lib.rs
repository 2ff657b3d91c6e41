//! occi-so: the server, the framework around the plugins, and the CLI.

pub mod auth;
pub mod cli;
pub mod config;
pub mod lifecycle;
pub mod metrics;
pub mod registry;
pub mod schema;
pub mod server;
pub mod store;

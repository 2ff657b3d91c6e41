//! occi-so: the server, the framework around the plugins, and the CLI.

pub mod auth;
pub mod backend;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod error;
pub mod lifecycle;
pub mod metrics;
pub mod mixins;
pub mod registry;
pub mod routes;
pub mod schema;
pub mod server;
pub mod store;

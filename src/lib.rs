//! occi-so: the server, the framework around the plugins, and the CLI.

pub mod cli;
pub mod lifecycle;
pub mod registry;
pub mod schema;
pub mod store;

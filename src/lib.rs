//! occi-so: the server, the framework around the plugins, and the CLI.

pub mod cli;

//! The plugin framework: the three ways an orchestrator plugin reaches the
//! registry, all of them at run time.
//!
//! * **Compiled** ([`builtin`]): crates under `plugins/` implementing
//!   `occi_so_sdk::Orchestrator`, registered at start from one list.
//! * **Declarative** ([`manifest`], [`load`], [`declarative`]): a folder
//!   with `plugin.yaml` and its HOT templates, run by one generic
//!   orchestrator; templates are parsed and validated with the `heat`
//!   crate when the folder is loaded, every request is checked against
//!   their parameter constraints.
//! * **Remote** ([`remote`]): a service orchestrator elsewhere speaking
//!   the MCN SO contract over HTTP; each lifecycle call is forwarded.
//!
//! [`sources`] owns the run-time set: it loads the `--plugins` directories,
//! uploads and admin registrations at start, hot-reloads folders on change
//! ([`watch`]), and serves the admin API's changes, one at a time.

pub mod builtin;
pub mod declarative;
pub mod load;
pub mod manifest;
pub mod remote;
pub mod sources;
pub mod watch;

pub use declarative::Definition;
pub use load::{load, LoadError};
pub use remote::{RemotePlugin, RemoteRequest, RemoteSpec};
pub use sources::{PluginSources, SourceError, SourcesConfig, Status};

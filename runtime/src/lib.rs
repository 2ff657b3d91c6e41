//! # occi-so-runtime: the plugin runtime
//!
//! The ways an orchestrator plugin reaches the framework's registry at run
//! time besides the compiled ones (crates under `plugins/` implementing
//! `occi_so_sdk::Orchestrator`, which the binary registers at start):
//! * **Declarative** ([`manifest`], [`load`], [`declarative`]): a folder
//!   with `plugin.yaml` and its HOT templates, run by one generic
//!   orchestrator; templates are parsed and validated with the `heat`
//!   crate when the folder is loaded, every request is checked against
//!   their parameter constraints.
//! * **Remote** (`remote`, [`RemoteRequest`]): a service orchestrator elsewhere speaking
//!   the MCN SO contract over HTTP; each lifecycle call is forwarded.
//!
//! [`sources`] owns the run-time set: it loads the `--plugins` directories,
//! uploads and admin registrations at start, hot-reloads folders on change
//! (`watch`), and serves the admin API's changes, one at a time.
//!
//! **Invariant:** depends on the framework core and the seam, never on the
//! HTTP edge or a plugin crate; every registry change made at run time goes
//! through the [`sources`] task, in order; a folder's new version replaces
//! the old only once it loaded completely; files are read only inside the
//! plugin's folder, off the runtime. The remote runtime is an HTTP *client*
//! (reqwest); its answers reach the seam as `PluginError::Refused`/
//! `Upstream`, never as a status code.

#![warn(unreachable_pub)]

pub mod declarative;
pub mod load;
pub mod manifest;
mod remote;
pub mod sources;
mod watch;

pub use declarative::Definition;
pub use load::{load, LoadError};
pub use remote::{ClientError, RemoteRequest, RemoteSpec};
pub use sources::{PluginSources, SourceError, SourcesConfig, StartError, Status};
pub use watch::WatchError;

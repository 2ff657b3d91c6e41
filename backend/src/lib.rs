//! Stack backends of occi-so, behind the sdk's [`occi_so_sdk::StackBackend`]:
//!
//! * [`openstack`]: a real OpenStack Heat over its v1 REST API
//!   (pass-through or Keystone v3 auth, catalog lookup, rustls).
//! * `poller`: one shared poller per watched stack, for backends that
//!   learn a stack's state by asking ([`PollConfig`]).
//! * `embedded`: the embedded engine, the zero-setup default: Heat's
//!   behaviour simulated in process, stacks in memory or in a state dir
//!   ([`EmbeddedBackend`]: `EmbeddedBackend::new(EmbeddedConfig::default())`).
//!
//! The public surface is what the server and the tests use: the two
//! backends, their configuration, statistics and errors; the rest is
//! crate-private.

#![warn(unreachable_pub)]

mod embedded;
pub mod openstack;
mod poller;

pub use embedded::{
    EmbeddedBackend, EmbeddedConfig, EmbeddedError, EmbeddedStats, JournalError, NetworkConfig,
};

pub use openstack::{AuthConfig, Interface, OpenStackBackend, OpenStackConfig, OpenStackStats};
pub use poller::{PollConfig, PollerStats};

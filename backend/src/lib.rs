//! Stack backends of occi-so, behind the sdk's [`occi_so_sdk::StackBackend`]:
//!
//! * [`openstack`]: a real OpenStack Heat over its v1 REST API
//!   (pass-through or Keystone v3 auth, catalog lookup, rustls).
//! * [`poller`]: one shared poller per watched stack, for backends that
//!   learn a stack's state by asking.
//! * [`embedded`]: the embedded engine, the zero-setup default: Heat's
//!   behaviour simulated in process, stacks in memory or in a state dir
//!   (`EmbeddedBackend::new(EmbeddedConfig::default())`).

pub mod embedded;
pub mod openstack;
pub mod poller;

pub use embedded::{EmbeddedBackend, EmbeddedConfig, EmbeddedError, EmbeddedStats, NetworkConfig};

pub use openstack::{AuthConfig, Interface, OpenStackBackend, OpenStackConfig, OpenStackStats};
pub use poller::{PollConfig, PollerStats, StackPollers};

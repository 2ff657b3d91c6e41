//! # The ESCM service orchestrator plugin
//!
//! Deploys FUJITSU Enterprise Service Catalog Manager (ESCM, open-sourced
//! as OSCM) the way its crowbar barclamp does: a **volume stack**
//! (`templates/escm/volumes.yaml`: logs and data Cinder volumes) and then an
//! **instance stack** (`templates/escm/application.yaml`: network, router,
//! security group with ESCM's ports 22, 8081, 8443, 8543, 8681, 8881,
//! floating IP, keypair, the application server with both volumes attached,
//! a wait condition, the boot configuration and four generated secrets),
//! which takes the volume ids from the volume stack's outputs.
//!
//! Every setting of the ESCM deployment guide is an attribute of kind
//! `escm` (scheme `http://schemas.mobile-cloud-networking.eu/occi/sm#`),
//! named after the barclamp's attribute paths: see [`catalog`]. Passwords
//! are secret attributes and hidden Heat parameters.
//!
//! A compiled plugin rather than a declarative manifest: two stacks in
//! order with outputs passed across, rules between settings (authentication
//! on → user and password required, ...), certificate files read and checked,
//! volumes that may grow but not shrink.
//!
//! ```
//! use occi_so_plugin_escm::{EscmConfig, EscmPlugin};
//! use occi_so_sdk::Orchestrator;
//!
//! let plugin = EscmPlugin::new(EscmConfig::default()).unwrap();
//! assert_eq!(plugin.info().kind.term, "escm");
//! ```

#![warn(missing_docs)]

pub mod catalog;
pub mod certificates;
mod plugin;
pub mod settings;
pub mod state;
pub mod templates;

pub use plugin::{
    build, Deployment, EscmConfig, EscmError, EscmPlugin, CONFIG_SECTION, INSTANCE, SCHEME, TERM,
    VOLUMES,
};

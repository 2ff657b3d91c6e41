//! # The IMS orchestrator plugin of occi-so
//!
//! IMS as a Service the way the MCN IMS Service Orchestrator (IMSSO,
//! `MobileCloudNetworking/imsaas`) does it: a *topology* (data, not a
//! static template) describes the service instances — type, image, flavor,
//! key, networks with security groups, relations, size min/default/max and
//! scaling policies — and the HOT template is **generated** from it for the
//! sizes asked, as the IMSSO's TemplateManager did.
//!
//! Two topologies are built in (`templates/ims/topologies/`), chosen by
//! `mcn.topology.type`:
//!
//! * `openims` (default): the IMSSO's OpenIMS Core — `cscfs`, `db`, `hss`,
//!   `slf` (type `dra`), `dns`;
//! * `clearwater`: the ICCLab Clearwater IMSaaS — `bono`, `sprout`,
//!   `homer`, `homestead`, `ellis`, `ralf`, `dns` with Clearwater's ports.
//!
//! Lifecycle, as the IMSSO ([`ImsPlugin`]):
//!
//! * `design`: the attributes are checked against the topology, and its
//!   template is generated and validated with the heat engine;
//! * `deploy`: generate, create the stack (role [`STACK_ROLE`]), wait;
//! * `provision`: a stack update (PATCH) passing the MCN endpoints
//!   (`mcn.endpoint.maas`, `.api`, `.forwarder`) to the nodes'
//!   configuration deployments and starting their services;
//! * `update`: regenerate with the new attributes and update the stack in
//!   one PUT — a size change (`ims.size.cscfs` 1 → 3) adds or removes units
//!   in that one update; a size outside the topology's bounds is a 400;
//! * `notify`: a MaaS alarm naming a topology scaling policy
//!   (`ims.policy="hss.msg_scaleup"`) scales within the bounds, honouring
//!   the policy's cooldown;
//! * `dispose`: delete the stack; `state`: the MCN state of the stack
//!   (`occi.mcn.stack.id`, `occi.mcn.stack.state`, every output such as
//!   `mcn.endpoint.hss-1`) plus the effective `ims.size.*`.
//!
//! ```
//! use occi_so_plugin_ims::ImsPlugin;
//! use occi_so_sdk::{Attributes, Orchestrator};
//!
//! let ims = ImsPlugin::new().unwrap();
//! assert_eq!(ims.info().kind.term, "ims");
//! let attrs = Attributes::from([("ims.size.cscfs".to_string(), serde_json::json!(3))]);
//! let (topology, _, generated) = ims.render(&attrs).unwrap();
//! assert_eq!(topology.topology.name, "openims");
//! assert!(generated.hosts.contains(&"cscfs-3".to_string()));
//! ```

#![warn(missing_docs)]

pub mod catalog;
mod plugin;
pub mod settings;
pub mod template;
pub mod topology;

pub use catalog::{Catalog, LoadedTopology, DEFAULT_TOPOLOGY};
pub use plugin::{ImsPlugin, POLICY_ATTRIBUTE};
pub use settings::Settings;
pub use template::{Generated, NodeLifecycle};
pub use topology::{Topology, TopologyError};

/// The scheme of the MCN service managers' service types
/// (`http://schemas.mobile-cloud-networking.eu/occi/sm#ims`).
pub const MCN_SM_SCHEME: &str = "http://schemas.mobile-cloud-networking.eu/occi/sm#";

/// The role (and stack-name suffix) of an instance's one stack.
pub const STACK_ROLE: &str = "ims";

/// The plugin's settings: the `plugin-config.ims` section of the server's
/// config file (or `OCCI_SO_PLUGIN_IMS_TOPOLOGIES`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImsConfig {
    /// A directory of topologies (laid out as `templates/ims/`:
    /// `topologies/*.yaml|json`, `scripts/*`) that replaces the built-in
    /// ones; it must define `openims`, the default.
    pub topologies: Option<std::path::PathBuf>,
}

/// The config section this crate reads (`plugin-config.ims`).
pub const CONFIG_SECTION: &str = "ims";

/// Builds the IMS plugin as a server registers it: the built-in
/// topologies, or those of the configured directory.
pub fn build(
    ctx: &occi_so_sdk::BuildContext,
) -> Result<Vec<std::sync::Arc<dyn occi_so_sdk::Orchestrator>>, occi_so_sdk::BuildError> {
    let config: ImsConfig = ctx.config(CONFIG_SECTION)?;
    let built = match &config.topologies {
        Some(dir) => Catalog::from_dir(dir, DEFAULT_TOPOLOGY),
        None => Catalog::builtin(),
    }
    .and_then(ImsPlugin::with_catalog)
    .map_err(|e| occi_so_sdk::BuildError::new("ims", e.to_string()))?;
    Ok(vec![std::sync::Arc::new(built)])
}

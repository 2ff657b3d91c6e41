//! # The ConPaaS orchestrator plugin of occi-so
//!
//! Deploys ConPaaS applications the way the ConPaaS 2.x director does, on
//! Heat stacks: an **application** with its **manager** VM and its
//! **services** (php, java, mysql, xtreemfs, generic, helloworld), each
//! with agent VMs per **role**, on one or more **clouds**.
//!
//! * Kind `conpaas` (scheme `http://schemas.mobile-cloud-networking.eu/occi/sm#`,
//!   collection `/conpaas/`): attributes for what `director.cfg` sets
//!   (`conpaas.image` = `IMAGE_ID`, `conpaas.flavor` = `SIZE_ID`,
//!   `conpaas.key_name`, `conpaas.security_group`, `conpaas.network`,
//!   `conpaas.floating_network`, `conpaas.auto_assign_floating_ip`,
//!   `conpaas.director_url`, per-cloud sections in `conpaas.clouds`) and
//!   what a ConPaaS manifest sets (`conpaas.application.name`,
//!   `conpaas.services`). See [`kind`].
//! * Actions `add_nodes`, `remove_nodes` (the manager's operations: a
//!   service, nodes by role, optionally a cloud), `start` and `stop` (the
//!   director's `startapp` / `stopapp`). See [`orchestrator`].
//! * Templates in `templates/conpaas/`: `manager.yaml` as written, and one
//!   agents stack per cloud generated from `agents.yaml`. See [`template`].
//!
//! ```
//! use occi_so_plugin_conpaas::Conpaas;
//! use occi_so_sdk::Orchestrator;
//!
//! let plugin = Conpaas::new().unwrap().with_clouds(vec!["ec2virginia".into()]);
//! assert_eq!(plugin.info().kind.location(), "/conpaas/");
//! ```

pub mod kind;
pub mod orchestrator;
pub mod service_type;
pub mod settings;
pub mod state;
pub mod template;
pub mod topology;

pub use orchestrator::{agents_role, build, Conpaas, AGENTS_ROLE, MANAGER_ROLE};
pub use service_type::{RoleCounts, ServiceType};
pub use template::{Rendered, TemplateError, Templates};

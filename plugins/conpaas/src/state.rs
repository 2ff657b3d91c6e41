//! What the plugin remembers about an application between calls (the
//! instance's persisted plugin state), and its mirror in attributes.

use std::collections::BTreeMap;

use occi_so_sdk::Attributes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::kind::{ATTR_NODES, ATTR_STATE};
use crate::topology::{Placement, Services};

/// The ConPaaS application states the plugin reaches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AppStatus {
    /// Created, not deployed.
    #[default]
    Init,
    /// The manager (and the agents) run.
    Running,
    /// Stopped: no VM runs; services and nodes are remembered.
    Stopped,
}

impl AppStatus {
    /// As ConPaaS writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            AppStatus::Init => "INIT",
            AppStatus::Running => "RUNNING",
            AppStatus::Stopped => "STOPPED",
        }
    }

    /// Reads the `conpaas.application.state` attribute back.
    pub fn from_attributes(attrs: &Attributes) -> AppStatus {
        match attrs.get(ATTR_STATE).and_then(Value::as_str) {
            Some("RUNNING") => AppStatus::Running,
            Some("STOPPED") => AppStatus::Stopped,
            _ => AppStatus::Init,
        }
    }
}

/// The plugin's persisted state of one application.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AppState {
    /// The application's state.
    pub status: AppStatus,
    /// The services were started (provisioned): agents get the manager's address.
    #[serde(default)]
    pub services_started: bool,
    /// The services as last deployed (to tell added, changed and removed ones).
    #[serde(default)]
    pub services: Services,
    /// The nodes running (or to run again after `start`).
    #[serde(default)]
    pub placement: Placement,
    /// The manager's public address, once known.
    #[serde(default)]
    pub manager_ip: Option<String>,
    /// Digest of what each stack (by role) was last created or updated with.
    #[serde(default)]
    pub sent: BTreeMap<String, String>,
}

impl AppState {
    /// Writes the state's mirror into the instance attributes (what `GET`
    /// shows and what [`crate::Conpaas::validate`] reads).
    pub fn mirror(&self, attrs: &mut Attributes) {
        attrs.insert(
            ATTR_STATE.into(),
            Value::String(self.status.as_str().into()),
        );
        attrs.insert(ATTR_NODES.into(), self.placement.to_value());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn state_round_trips_and_mirrors() {
        let mut s = AppState {
            status: AppStatus::Running,
            ..AppState::default()
        };
        s.placement.add(
            "web",
            "default",
            &[("proxybackendweb".to_string(), 1)].into_iter().collect(),
        );
        let mut stored = occi_so_sdk::PluginState::default();
        assert_eq!(stored.get::<AppState>().unwrap(), AppState::default());
        stored.set(&s).unwrap();
        assert_eq!(stored.get::<AppState>().unwrap(), s);
        let mut attrs = Attributes::new();
        s.mirror(&mut attrs);
        assert_eq!(attrs[ATTR_STATE], json!("RUNNING"));
        assert_eq!(
            attrs[ATTR_NODES],
            json!({"web": {"default": {"proxybackendweb": 1}}})
        );
        assert_eq!(AppStatus::from_attributes(&attrs), AppStatus::Running);
    }
}

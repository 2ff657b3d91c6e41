//! The stack backends `serve` runs on, from the settings: the default
//! cloud's and each named cloud's.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use occi_so_backend::{EmbeddedBackend, OpenStackBackend};
use occi_so_sdk::StackBackend;

use crate::config::BackendSettings;

/// Why a backend could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("backend{cloud}: {message}")]
pub struct BackendSetupError {
    /// ` of cloud 'name'` for a named cloud, empty for the default one.
    cloud: String,
    message: String,
}

/// How to stop one backend in an orderly way.
enum Closer {
    /// Stop the stack pollers (their watchers see the end).
    OpenStack(Arc<OpenStackBackend>),
    /// Write every change to the state directory.
    Embedded(Arc<EmbeddedBackend>),
}

/// A backend ready for the lifecycle, and how to stop it.
pub struct Connected {
    /// The backend.
    pub backend: Arc<dyn StackBackend>,
    closer: Closer,
}

impl Connected {
    /// Stops the backend: pollers stopped, the embedded engine's state
    /// written out.
    pub async fn close(&self) {
        match &self.closer {
            Closer::OpenStack(b) => b.shutdown(),
            Closer::Embedded(b) => b.flush().await,
        }
    }
}

/// The default cloud's backend and the named clouds' backends.
pub struct Clouds {
    /// The default cloud (`--backend`).
    pub default: Connected,
    /// The named clouds, by name.
    pub named: BTreeMap<String, Connected>,
}

impl Clouds {
    /// Connects every configured backend. An embedded engine without a
    /// `state_dir` of its own keeps its stacks under `state_dir/stacks/`
    /// (the default cloud) or `state_dir/clouds/<name>/`, so they survive
    /// a restart as the instances in the journal do.
    pub fn connect(
        default: &BackendSettings,
        named: &BTreeMap<String, BackendSettings>,
        state_dir: &Path,
        sealer: Option<&occi_so_sdk::seal::Sealer>,
    ) -> Result<Clouds, BackendSetupError> {
        let default = connect(default, &state_dir.join("stacks"), "", sealer)?;
        let mut clouds = BTreeMap::new();
        for (name, settings) in named {
            let dir = state_dir.join("clouds").join(name);
            let connected = connect(settings, &dir, &format!(" of cloud '{name}'"), sealer)?;
            clouds.insert(name.clone(), connected);
        }
        Ok(Clouds {
            default,
            named: clouds,
        })
    }

    /// Stops every backend.
    pub async fn close(&self) {
        self.default.close().await;
        for c in self.named.values() {
            c.close().await;
        }
    }
}

/// One configured backend.
fn connect(
    settings: &BackendSettings,
    default_dir: &Path,
    cloud: &str,
    sealer: Option<&occi_so_sdk::seal::Sealer>,
) -> Result<Connected, BackendSetupError> {
    let error = |e: &dyn std::fmt::Display| BackendSetupError {
        cloud: cloud.to_string(),
        message: e.to_string(),
    };
    match settings {
        BackendSettings::Embedded(config) => {
            let mut config = (**config).clone();
            if config.state_dir.is_none() {
                config.state_dir = Some(default_dir.to_path_buf());
            }
            let b =
                Arc::new(EmbeddedBackend::sealed(config, sealer.cloned()).map_err(|e| error(&e))?);
            Ok(Connected {
                backend: b.clone(),
                closer: Closer::Embedded(b),
            })
        }
        BackendSettings::OpenStack(config) => {
            let b = Arc::new(OpenStackBackend::new((**config).clone()).map_err(|e| error(&e))?);
            Ok(Connected {
                backend: b.clone(),
                closer: Closer::OpenStack(b),
            })
        }
    }
}

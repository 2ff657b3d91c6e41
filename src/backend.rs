//! The stack backend `serve` runs on, from the settings.

use std::sync::Arc;

use async_trait::async_trait;
use occi_so_backend::OpenStackBackend;
use occi_so_sdk::{
    BackendError, Credentials, EventInfo, ResourceInfo, StackBackend, StackInfo, StackRef,
    StackSpec, StackUpdate, ValidateInfo, ValidateRequest,
};
use tokio::sync::watch;

use crate::config::BackendSettings;

/// Why the backend could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("backend: {0}")]
pub struct BackendSetupError(pub String);

/// A backend ready for the lifecycle, and how to stop its pollers.
pub struct Connected {
    /// The backend.
    pub backend: Arc<dyn StackBackend>,
    shutdown: Option<Box<dyn Fn() + Send + Sync>>,
}

impl Connected {
    /// Stops the backend's stack pollers (their watchers see the end).
    pub fn shutdown(&self) {
        if let Some(f) = &self.shutdown {
            f();
        }
    }
}

/// The configured backend.
pub fn connect(settings: &BackendSettings) -> Result<Connected, BackendSetupError> {
    match settings {
        BackendSettings::Embedded => Ok(Connected {
            backend: Arc::new(NotBuilt {
                name: "embedded",
                why: "the embedded engine is not part of this build yet; use --backend openstack",
            }),
            shutdown: None,
        }),
        BackendSettings::OpenStack(config) => {
            let b = Arc::new(
                OpenStackBackend::new((**config).clone())
                    .map_err(|e| BackendSetupError(e.to_string()))?,
            );
            let stopper = b.clone();
            Ok(Connected {
                backend: b,
                shutdown: Some(Box::new(move || stopper.shutdown())),
            })
        }
    }
}

/// A backend that is not in this build: every call says so. The server
/// still answers everything that needs no stack.
struct NotBuilt {
    name: &'static str,
    why: &'static str,
}

impl NotBuilt {
    fn err(&self) -> BackendError {
        BackendError::Unavailable {
            message: self.why.to_string(),
        }
    }
}

#[async_trait]
impl StackBackend for NotBuilt {
    fn kind(&self) -> &'static str {
        self.name
    }
    async fn create(&self, _: &Credentials, _: &StackSpec) -> Result<StackRef, BackendError> {
        Err(self.err())
    }
    async fn get(&self, _: &Credentials, _: &StackRef) -> Result<StackInfo, BackendError> {
        Err(self.err())
    }
    async fn find(&self, _: &Credentials, _: &str) -> Result<Option<StackRef>, BackendError> {
        Err(self.err())
    }
    async fn update(
        &self,
        _: &Credentials,
        _: &StackRef,
        _: &StackUpdate,
    ) -> Result<(), BackendError> {
        Err(self.err())
    }
    async fn delete(&self, _: &Credentials, _: &StackRef) -> Result<(), BackendError> {
        Err(self.err())
    }
    async fn resources(
        &self,
        _: &Credentials,
        _: &StackRef,
    ) -> Result<Vec<ResourceInfo>, BackendError> {
        Err(self.err())
    }
    async fn events(&self, _: &Credentials, _: &StackRef) -> Result<Vec<EventInfo>, BackendError> {
        Err(self.err())
    }
    async fn validate(
        &self,
        _: &Credentials,
        _: &ValidateRequest,
    ) -> Result<ValidateInfo, BackendError> {
        Err(self.err())
    }
    async fn watch(
        &self,
        _: &Credentials,
        _: &StackRef,
    ) -> Result<watch::Receiver<StackInfo>, BackendError> {
        Err(self.err())
    }
}

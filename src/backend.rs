//! The stack backend `serve` runs on, from the settings.

use std::sync::Arc;

use async_trait::async_trait;
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

/// The configured backend.
pub fn connect(settings: &BackendSettings) -> Result<Arc<dyn StackBackend>, BackendSetupError> {
    match settings {
        BackendSettings::Embedded => Ok(Arc::new(NotBuilt {
            name: "embedded",
            why: "the embedded engine is not part of this build yet",
        })),
        BackendSettings::OpenStack { .. } => Ok(Arc::new(NotBuilt {
            name: "openstack",
            why: "the OpenStack Heat client is not part of this build yet",
        })),
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

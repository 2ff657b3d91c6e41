//! Operations as durable records: every accepted lifecycle request (init,
//! deploy, provision, update, custom action, notify, dispose) is an
//! [`OperationRecord`] with an id, kept in the store beside the instances,
//! so a caller can ask what happened to it, see why it waits, cancel or
//! retry it, across restarts.
//!
//! The instance holds what runs now and the queue behind it (so accepting
//! and starting stay one atomic instance update); the records hold the
//! rest: parameters, state, times and the error chain. Finished records
//! are pruned by count per tenant and by age.

use serde::{Deserialize, Serialize};

use occi_so_sdk::{Attributes, BackendError, Operation, PluginError};

use crate::store::InstanceKey;

/// The state of an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpState {
    /// Accepted, waiting behind the instance's running operation.
    Queued,
    /// Running now.
    Running,
    /// Done.
    Succeeded,
    /// Ended with an error (see the record's error chain).
    Failed,
    /// Cancelled by the caller.
    Cancelled,
}

impl OpState {
    /// The word used in renderings and messages.
    pub fn as_str(&self) -> &'static str {
        match self {
            OpState::Queued => "queued",
            OpState::Running => "running",
            OpState::Succeeded => "succeeded",
            OpState::Failed => "failed",
            OpState::Cancelled => "cancelled",
        }
    }

    /// Whether the operation has ended.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            OpState::Succeeded | OpState::Failed | OpState::Cancelled
        )
    }
}

/// A stack at fault in an error chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackFault {
    /// The stack name.
    pub name: String,
    /// Its final status, e.g. `CREATE_FAILED`.
    pub status: String,
    /// Heat's `stack_status_reason`.
    pub reason: String,
}

/// A resource at fault in an error chain (from the stack's events).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceFault {
    /// The stack the resource belongs to (a nested stack's name when the
    /// failing resource is inside one).
    pub stack: String,
    /// The resource name.
    pub name: String,
    /// Its type.
    #[serde(default)]
    pub resource_type: String,
    /// Its status, e.g. `CREATE_FAILED`.
    pub status: String,
    /// The reason of its failing event.
    pub reason: String,
}

/// Why an operation failed: operation → stack → the failing resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorChain {
    /// The operation's own message (never contains secrets).
    pub message: String,
    /// The stack that ended `*_FAILED`, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<StackFault>,
    /// The resource whose failure made the stack fail, when known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceFault>,
}

impl ErrorChain {
    /// The chain of a plugin error (the stack part filled in when a stack
    /// ended `*_FAILED`; the resource part is added from the stack's events).
    pub fn of(e: &PluginError) -> Self {
        let stack = match e {
            PluginError::Backend(BackendError::StackFailed {
                stack,
                status,
                reason,
            }) => Some(StackFault {
                name: stack.clone(),
                status: status.to_string(),
                reason: reason.clone(),
            }),
            _ => None,
        };
        ErrorChain {
            message: e.to_string(),
            stack,
            resources: Vec::new(),
        }
    }

    /// A chain with only a message.
    pub fn message(message: impl Into<String>) -> Self {
        ErrorChain {
            message: message.into(),
            stack: None,
            resources: Vec::new(),
        }
    }

    /// The whole chain in one line (`occi.so.error`).
    pub fn text(&self) -> String {
        let mut out = self.message.clone();
        for r in &self.resources {
            out.push_str(&format!(
                "; resource {} ({}) of stack {}: {} {}",
                r.name, r.resource_type, r.stack, r.status, r.reason
            ));
        }
        out
    }
}

/// Where an operation record is kept: the tenant and its id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OpKey {
    /// The tenant.
    pub tenant: String,
    /// The operation id (a UUID).
    pub id: String,
}

/// One accepted lifecycle request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperationRecord {
    /// Its id (a UUID); its location is `/operation/{id}`.
    pub id: String,
    /// The instance it acts on.
    pub instance: InstanceKey,
    /// The plugin serving the instance.
    pub plugin: String,
    /// What it does, with its parameters (secret values included: render
    /// with [`OperationRecord::shown_parameters`]).
    pub operation: Operation,
    /// Where it is.
    pub state: OpState,
    /// When it was accepted (Unix ms).
    pub created: u64,
    /// When it started running.
    #[serde(default)]
    pub started: Option<u64>,
    /// When it ended.
    #[serde(default)]
    pub finished: Option<u64>,
    /// Why it failed (or was cancelled).
    #[serde(default)]
    pub error: Option<ErrorChain>,
    /// The operation this one retries.
    #[serde(default)]
    pub retry_of: Option<String>,
    /// How often it was resumed after a restart.
    #[serde(default)]
    pub resumed: u32,
}

impl OperationRecord {
    /// The store key.
    pub fn key(&self) -> OpKey {
        OpKey {
            tenant: self.instance.tenant.clone(),
            id: self.id.clone(),
        }
    }

    /// The location, `/operation/{id}`.
    pub fn location(&self) -> String {
        location_of(&self.id)
    }

    /// The operation's parameters with the values of `secret` attributes
    /// replaced by `******`.
    pub fn shown_parameters(&self, secret: impl Fn(&str) -> bool) -> Attributes {
        let given = match &self.operation {
            Operation::Update { changed } => changed,
            Operation::Action { parameters, .. } => parameters,
            Operation::Notify { event } => event,
            _ => return Attributes::new(),
        };
        given
            .iter()
            .map(|(k, v)| {
                let v = if secret(k) {
                    serde_json::Value::String("******".into())
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect()
    }
}

/// The collection path of operation records.
pub const COLLECTION: &str = "/operation/";

/// The location of operation `id`.
pub fn location_of(id: &str) -> String {
    format!("{COLLECTION}{id}")
}

/// An operation waiting in an instance's queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Queued {
    /// The operation record's id.
    pub id: String,
    /// What it does.
    pub operation: Operation,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_stack_fills_the_chain() {
        let e = PluginError::Backend(BackendError::StackFailed {
            stack: "so-ims-1-ims".into(),
            status: "CREATE_FAILED".parse().unwrap(),
            reason: "Resource CREATE failed: boom".into(),
        });
        let mut c = ErrorChain::of(&e);
        assert_eq!(c.stack.as_ref().unwrap().status, "CREATE_FAILED");
        c.resources.push(ResourceFault {
            stack: "so-ims-1-ims".into(),
            name: "boom".into(),
            resource_type: "OS::Heat::TestResource".into(),
            status: "CREATE_FAILED".into(),
            reason: "Error: boom".into(),
        });
        assert_eq!(
            c.text(),
            "stack so-ims-1-ims ended CREATE_FAILED: Resource CREATE failed: boom; resource boom (OS::Heat::TestResource) of stack so-ims-1-ims: CREATE_FAILED Error: boom"
        );
    }

    #[test]
    fn secret_parameters_never_show() {
        let r = OperationRecord {
            id: "1".into(),
            instance: InstanceKey::new("t", "/escm/1"),
            plugin: "escm".into(),
            operation: Operation::update(Attributes::from([
                (
                    "escm.mail.password".to_string(),
                    serde_json::json!("hunter2"),
                ),
                ("escm.mail.host".to_string(), serde_json::json!("mx")),
            ])),
            state: OpState::Queued,
            created: 0,
            started: None,
            finished: None,
            error: None,
            retry_of: None,
            resumed: 0,
        };
        let shown = r.shown_parameters(|n| n.ends_with("password"));
        assert_eq!(shown["escm.mail.password"], "******");
        assert_eq!(shown["escm.mail.host"], "mx");
        assert_eq!(r.location(), "/operation/1");
    }
}

//! The store seam: where the framework's state is kept durably.
//!
//! [`Persistence`] is what a storage engine implements: take changes in
//! order, make them durable, and say so change by change (the store makes
//! a change visible only then). The local journal ([`super::Journal`]) is
//! the first implementation; a database shared by several replicas is
//! meant to be the next, behind the same trait, without routes or plugins
//! noticing.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::{Instance, InstanceKey};
use crate::operation::{OpKey, OperationRecord};

/// A named document of the store: a value in a space (`mixins`,
/// `plugins`, ...) under a key (a tenant, `registrations`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DocKey {
    /// The space, named by the part of occi-so that owns it.
    pub space: String,
    /// The key within the space.
    pub key: String,
}

impl DocKey {
    /// `key` in `space`.
    pub fn new(space: impl Into<String>, key: impl Into<String>) -> Self {
        DocKey {
            space: space.into(),
            key: key.into(),
        }
    }
}

/// One change, in the order the store made it.
#[derive(Clone, Debug)]
pub enum Change {
    /// The new state of an instance.
    Put(Arc<Instance>),
    /// An instance is gone.
    Remove(InstanceKey),
    /// A document's new value (`None`: removed).
    Document(DocKey, Option<Arc<serde_json::Value>>),
    /// An operation record, new or changed.
    Operation(Arc<OperationRecord>),
    /// An operation record pruned.
    OperationRemoved(OpKey),
}

/// Everything the store holds, as a persistence reads it at start or
/// writes it when it compacts.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Every instance.
    pub instances: Vec<Arc<Instance>>,
    /// Every document.
    pub documents: Vec<(DocKey, Arc<serde_json::Value>)>,
    /// Every operation record.
    pub operations: Vec<Arc<OperationRecord>>,
}

/// Told, on the persistence's own thread and in write order, whether a
/// change is durable (`true`) or failed (`false`).
pub type Done = Box<dyn FnOnce(bool) + Send>;

/// A storage engine for the store.
///
/// Contract: changes are written in the order [`Persistence::write`] is
/// called; each change's `done` runs once it is durable (or failed),
/// before its [`Durable`] resolves, in that same order; after the first
/// failure every later change fails too (fail-stop: the state on disk is
/// always a prefix of the changes made). Never blocks the caller on I/O.
pub trait Persistence: Send + Sync + 'static {
    /// A short name for logs (`journal`).
    fn name(&self) -> &'static str;
    /// Queue `change`; `done` reports its outcome.
    fn write(&self, change: Change, done: Done) -> Durable;
    /// Replace what is stored by `snapshot`: the state after every change
    /// queued so far (the store guarantees no change is queued meanwhile).
    fn compact(&self, snapshot: Snapshot);
    /// Write everything queued, then stop.
    fn close(&self);
}

/// Why the persistence could not be opened or written.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum JournalError {
    /// A file operation failed.
    #[error("journal {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        message: String,
    },
    /// The writer is gone (shut down, or stopped at an earlier failure).
    #[error("the journal writer has stopped")]
    Stopped,
}

/// Resolves once a change is durable (or the persistence failed).
#[must_use = "await it before telling the caller the change is done"]
#[derive(Debug)]
pub struct Durable(Option<oneshot::Receiver<Result<(), JournalError>>>);

impl Durable {
    /// A change with nothing to wait for (in-memory store).
    pub fn done() -> Self {
        Durable(None)
    }

    /// A change that already failed.
    pub fn failed(e: JournalError) -> Self {
        let (ack, rx) = oneshot::channel();
        let _ = ack.send(Err(e));
        Durable(Some(rx))
    }

    /// A pending change and the sender that resolves it.
    pub fn pending() -> (oneshot::Sender<Result<(), JournalError>>, Self) {
        let (ack, rx) = oneshot::channel();
        (ack, Durable(Some(rx)))
    }

    /// Wait until the change is written.
    pub async fn wait(self) -> Result<(), JournalError> {
        match self.0 {
            None => Ok(()),
            Some(rx) => rx.await.unwrap_or(Err(JournalError::Stopped)),
        }
    }
}

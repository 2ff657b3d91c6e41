//! The durable event history of an instance: what happened to it, in
//! order, with ids that are monotonic per instance and survive restarts.
//!
//! Events are appended inside the same atomic store update as the change
//! they describe, so they are journaled with it and become visible with it
//! (never before it is durable). Each instance keeps its latest events (a
//! bounded count); `?watch` streams replay the ones a reconnecting client
//! missed (`Last-Event-ID`) and then go live. Identical consecutive events
//! are not repeated.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum EventKind {
    /// An operation changed state (queued, running, succeeded, failed,
    /// cancelled).
    Operation {
        /// The operation record's id.
        operation_id: String,
        /// The operation (`deploy`, `update`, an action term, ...).
        operation: String,
        /// Its new state.
        state: String,
        /// Why it failed, when it did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// Its place in the queue, while queued (1: next).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        position: Option<usize>,
    },
    /// One of the instance's stacks changed status.
    Stack {
        /// The plugin's role for it.
        role: String,
        /// The stack name.
        name: String,
        /// Heat's status (`CREATE_IN_PROGRESS`, ...; `DELETED` once gone).
        status: String,
        /// Heat's reason.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reason: String,
    },
    /// The lifecycle reached a phase.
    Phase {
        /// `initialised`, `deployed` or `provisioned`.
        phase: String,
    },
    /// Attributes changed (secret values shown as `******`).
    Attributes {
        /// Name → new value.
        changed: BTreeMap<String, serde_json::Value>,
    },
}

/// One event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Monotonic per instance, from 1.
    pub id: u64,
    /// When (Unix ms).
    pub at: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// How many events an instance keeps by default.
pub const DEFAULT_RETENTION: usize = 64;

/// An instance's latest events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventLog {
    /// The id of the last event appended (0: none yet).
    #[serde(default)]
    pub last: u64,
    /// The latest events, oldest first.
    #[serde(default)]
    pub recent: VecDeque<Event>,
}

impl EventLog {
    /// Appends `kind` at time `at`, keeping at most `retention` events;
    /// an event identical to the last one is not repeated. Returns its id
    /// (the last one's when it was not repeated).
    pub fn push(&mut self, at: u64, kind: EventKind, retention: usize) -> u64 {
        if self.recent.back().is_some_and(|e| e.kind == kind) {
            return self.last;
        }
        self.last += 1;
        self.recent.push_back(Event {
            id: self.last,
            at,
            kind,
        });
        while self.recent.len() > retention.max(1) {
            self.recent.pop_front();
        }
        self.last
    }

    /// The events after `id`, and whether some between were dropped
    /// already (the retention is smaller than what the client missed).
    pub fn after(&self, id: u64) -> (Vec<&Event>, bool) {
        let first = self.recent.front().map_or(self.last + 1, |e| e.id);
        let gap = id + 1 < first && id < self.last;
        (self.recent.iter().filter(|e| e.id > id).collect(), gap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(status: &str) -> EventKind {
        EventKind::Stack {
            role: "main".into(),
            name: "s".into(),
            status: status.into(),
            reason: String::new(),
        }
    }

    #[test]
    fn ids_are_monotonic_and_repeats_are_dropped() {
        let mut log = EventLog::default();
        assert_eq!(log.push(1, stack("CREATE_IN_PROGRESS"), 10), 1);
        assert_eq!(log.push(2, stack("CREATE_IN_PROGRESS"), 10), 1);
        assert_eq!(log.push(3, stack("CREATE_COMPLETE"), 10), 2);
        assert_eq!(log.recent.len(), 2);
        let (after, gap) = log.after(1);
        assert_eq!(after.len(), 1);
        assert!(!gap);
    }

    #[test]
    fn retention_bounds_the_log_and_reports_the_gap() {
        let mut log = EventLog::default();
        for i in 0..10 {
            log.push(i, stack(&format!("S{i}")), 3);
        }
        assert_eq!(log.recent.len(), 3);
        assert_eq!(log.recent.front().unwrap().id, 8);
        let (after, gap) = log.after(2);
        assert_eq!(after.len(), 3);
        assert!(gap, "events 3 to 7 are gone");
        let (after, gap) = log.after(7);
        assert_eq!(after.len(), 3);
        assert!(!gap);
        let (after, gap) = log.after(10);
        assert!(after.is_empty() && !gap);
    }

    #[test]
    fn events_serialize_flat_with_their_type() {
        let e = Event {
            id: 3,
            at: 5,
            kind: EventKind::Phase {
                phase: "deployed".into(),
            },
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"id": 3, "at": 5, "type": "phase", "phase": "deployed"})
        );
    }
}

//! A [`StackSink`] that records what a `Stacks` handle reports: the latest
//! record of each role, the roles removed, and every report in order.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use occi_so_sdk::{StackRecord, StackSink};

/// Records every stack change it is told about.
#[derive(Debug, Default)]
pub struct RecordingSink {
    state: Mutex<Recorded>,
}

#[derive(Debug, Default)]
struct Recorded {
    records: BTreeMap<String, StackRecord>,
    removed: Vec<String>,
    events: Vec<String>,
}

impl RecordingSink {
    fn with<T>(&self, f: impl FnOnce(&mut Recorded) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The latest record of `role`, unless it was removed since.
    pub fn get(&self, role: &str) -> Option<StackRecord> {
        self.with(|r| r.records.get(role).cloned())
    }

    /// The roles removed, in order.
    pub fn removed(&self) -> Vec<String> {
        self.with(|r| r.removed.clone())
    }

    /// Every report in order: `changed <role> <status>` (the last status
    /// seen; `ACCEPTED` once the backend has an id, `NAMED` before) and
    /// `removed <role>`.
    pub fn events(&self) -> Vec<String> {
        self.with(|r| r.events.clone())
    }
}

impl StackSink for RecordingSink {
    fn stack_changed(&self, record: &StackRecord) {
        let status = match (&record.last, &record.stack) {
            (Some(last), _) => last.status.to_string(),
            (None, Some(_)) => "ACCEPTED".to_string(),
            (None, None) => "NAMED".to_string(),
        };
        self.with(|r| {
            r.events.push(format!("changed {} {status}", record.role));
            r.records.insert(record.role.clone(), record.clone());
        });
    }

    fn stack_removed(&self, role: &str) {
        self.with(|r| {
            r.events.push(format!("removed {role}"));
            r.records.remove(role);
            r.removed.push(role.to_string());
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use occi_so_sdk::StackRef;

    fn record(role: &str, id: Option<&str>) -> StackRecord {
        StackRecord {
            role: role.into(),
            name: format!("x-{role}"),
            stack: id.map(|id| StackRef {
                name: format!("x-{role}"),
                id: id.into(),
            }),
            last: None,
            cloud: None,
        }
    }

    #[test]
    fn every_report_is_kept_in_order() {
        let sink = RecordingSink::default();
        sink.stack_changed(&record("main", None));
        sink.stack_changed(&record("main", Some("i-1")));
        sink.stack_changed(&record("other", Some("i-2")));
        sink.stack_removed("main");
        assert_eq!(
            sink.events(),
            [
                "changed main NAMED",
                "changed main ACCEPTED",
                "changed other ACCEPTED",
                "removed main"
            ]
        );
        assert_eq!(sink.get("main"), None, "removed");
        assert_eq!(
            sink.get("other").and_then(|r| r.stack).map(|s| s.id),
            Some("i-2".to_string())
        );
        assert_eq!(sink.removed(), ["main"]);
    }
}

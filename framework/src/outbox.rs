//! Deliveries to callers' callback URLs, at least once across restarts.
//!
//! * **Instance events**: an instance whose `occi.so.callback` attribute is
//!   a URL gets every event of its history POSTed there (JSON, in order,
//!   in batches). The instance records the last event the callback
//!   acknowledged (`callback_acked`, journaled with it), so a restart sends
//!   on from there: nothing is lost while the events are retained, and an
//!   event may come twice (after a crash between the answer and the record).
//! * **One-off messages** (an instance's final `deleted` event, an SDC
//!   task's end): documents of the store (space `outbox`) written before
//!   what they report is done, removed once the URL answered 2xx.
//!
//! The sending itself (an HTTP client, backoff) is the HTTP edge's; this
//! module holds what is to be sent.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::events::Event;
use crate::store::{now_ms, DocKey, Durable, InstanceKey, JournalError, Store};

/// The attribute naming an instance's callback URL.
pub const CALLBACK: &str = "occi.so.callback";

const SPACE: &str = "outbox";

/// One message waiting to be delivered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Where to POST it.
    pub url: String,
    /// The JSON body.
    pub body: serde_json::Value,
    /// Tries so far.
    #[serde(default)]
    pub attempts: u32,
    /// Not before (Unix ms).
    #[serde(default)]
    pub next_at: u64,
    /// When it was queued (Unix ms).
    pub created: u64,
}

/// What to deliver for an instance now: the events after the last one its
/// callback acknowledged.
#[derive(Clone, Debug)]
pub struct EventBatch {
    /// The instance.
    pub instance: InstanceKey,
    /// Its callback URL.
    pub url: String,
    /// The events (oldest first).
    pub events: Vec<Event>,
    /// Whether events between were dropped already (retention).
    pub gap: bool,
}

/// The deliveries of a store.
#[derive(Clone)]
pub struct Outbox {
    store: Arc<Store>,
}

impl Outbox {
    /// The outbox of `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Outbox { store }
    }

    /// Queues `body` for `url`; durable once the [`Durable`] resolves.
    pub fn enqueue(&self, url: &str, body: serde_json::Value) -> Durable {
        let message = Message {
            url: url.to_string(),
            body,
            attempts: 0,
            next_at: 0,
            created: now_ms(),
        };
        let key = DocKey::new(SPACE, uuid::Uuid::new_v4().to_string());
        match serde_json::to_value(&message) {
            Ok(v) => self
                .store
                .update_document(&key, |_| Ok::<_, std::convert::Infallible>(Some(v)))
                .unwrap_or_else(|never| match never {}),
            Err(e) => Durable::failed(JournalError::Io {
                path: "outbox".into(),
                message: e.to_string(),
            }),
        }
    }

    /// The messages due at `now`, with their ids.
    pub fn due(&self, now: u64) -> Vec<(String, Message)> {
        self.store
            .documents(SPACE)
            .into_iter()
            .filter_map(|(id, v)| {
                let m: Message = serde_json::from_value(v.as_ref().clone()).ok()?;
                (m.next_at <= now).then_some((id, m))
            })
            .collect()
    }

    /// Message `id` was delivered: it goes.
    pub async fn delivered(&self, id: &str) -> Result<(), JournalError> {
        self.store
            .update_document(&DocKey::new(SPACE, id), |_| {
                Ok::<_, std::convert::Infallible>(None)
            })
            .unwrap_or_else(|never| match never {})
            .wait()
            .await
    }

    /// Message `id` failed: try again at `next_at`, or drop it after
    /// `give_up` tries (logged).
    pub async fn failed(&self, id: &str, next_at: u64, give_up: u32) -> Result<(), JournalError> {
        self.store
            .update_document(&DocKey::new(SPACE, id), |current| {
                let Some(mut m) =
                    current.and_then(|v| serde_json::from_value::<Message>(v.clone()).ok())
                else {
                    return Ok::<_, std::convert::Infallible>(None);
                };
                m.attempts += 1;
                m.next_at = next_at;
                if m.attempts >= give_up {
                    tracing::warn!(url = %m.url, attempts = m.attempts, "a callback message is dropped: its URL kept failing");
                    return Ok(None);
                }
                Ok(serde_json::to_value(&m).ok())
            })
            .unwrap_or_else(|never| match never {})
            .wait()
            .await
    }

    /// The instances with events their callback has not acknowledged.
    pub fn event_batches(&self, max: usize) -> Vec<EventBatch> {
        let mut out = Vec::new();
        for inst in self.store.all() {
            let Some(url) = inst.attributes.get(CALLBACK).and_then(|v| v.as_str()) else {
                continue;
            };
            if url.is_empty() || inst.events.last <= inst.callback_acked {
                continue;
            }
            let (events, gap) = inst.events.after(inst.callback_acked);
            out.push(EventBatch {
                instance: inst.key.clone(),
                url: url.to_string(),
                events: events.into_iter().take(max).cloned().collect(),
                gap,
            });
        }
        out
    }

    /// The callback of `instance` acknowledged the events up to `id`.
    pub async fn acknowledged(&self, instance: &InstanceKey, id: u64) -> Result<(), JournalError> {
        let r = self.store.update(instance, |i| {
            if i.callback_acked >= id {
                return Err(());
            }
            i.callback_acked = id;
            Ok(())
        });
        match r {
            Ok((_, d)) => d.wait().await,
            Err(_) => Ok(()),
        }
    }
}

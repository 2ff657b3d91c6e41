//! `GET {instance}?watch`: a Server-Sent-Events stream of the instance's
//! durable event history, then its live events.
//!
//! * Every event has an `id:` (monotonic per instance, durable: the same
//!   after a restart) and `data:` one JSON line. Types: `operation`
//!   (queued, running, succeeded, failed, cancelled; with the record's id),
//!   `stack` (a stack's status), `phase`, `attributes` (changed values,
//!   secrets as `******`), and `state`: the instance's whole
//!   `application/occi+json` rendering, sent on connect and after every
//!   burst of events (identical renderings are not repeated).
//! * `Last-Event-ID: N` (a reconnecting client) replays the events after
//!   `N` the instance still keeps (`--event-retention`), then goes live;
//!   when some were dropped already, an `event: gap` says which.
//! * `event: deleted` with `data: {"location": "<url>"}` ends the stream
//!   when the instance is gone.
//! * A `: keep-alive` comment every 15 seconds of silence; the stream ends
//!   when the server shuts down.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use occi::MediaType;
use tokio::sync::watch;

use super::{App, Call};
use crate::error::ApiError;
use crate::server::layers::Body;
use occi_so_framework::events::Event;
use occi_so_framework::store::{Instance, InstanceKey};

const KEEP_ALIVE: Duration = Duration::from_secs(15);

struct State {
    app: Arc<App>,
    renderer: occi::Renderer,
    rx: watch::Receiver<Arc<Instance>>,
    location: String,
    /// The id of the last event sent.
    sent: u64,
    /// The last `state` rendering sent.
    last_state: Option<Bytes>,
    /// Frames ready to go.
    pending: std::collections::VecDeque<Bytes>,
    done: bool,
}

/// One SSE frame: `event`, `id`, one line of `data`.
fn frame(event: &str, id: Option<u64>, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 48);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.push(b'\n');
    if let Some(id) = id {
        out.extend_from_slice(format!("id: {id}\n").as_bytes());
    }
    out.extend_from_slice(b"data: ");
    // JSON renderings are one line; be safe anyway.
    for b in data {
        if *b == b'\n' {
            out.extend_from_slice(b"\ndata: ");
        } else {
            out.push(*b);
        }
    }
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

fn event_frame(e: &Event) -> Bytes {
    let data = serde_json::to_vec(e).unwrap_or_default();
    let kind = serde_json::to_value(&e.kind)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_else(|| "event".into());
    frame(&kind, Some(e.id), &data)
}

impl State {
    async fn rendering(&self, inst: &Instance) -> Bytes {
        match self.app.resource_of(inst).await {
            Ok(r) => match self.renderer.resource(MediaType::OcciJson, &r) {
                Ok(rendered) => rendered.body,
                Err(e) => Bytes::from(serde_json::json!({ "error": e.to_string() }).to_string()),
            },
            Err(e) => Bytes::from(serde_json::json!({ "error": e.message }).to_string()),
        }
    }

    /// Queues the events of `inst` after the last one sent, then its state
    /// when it changed.
    async fn catch_up(&mut self, inst: &Instance) {
        let (events, gap) = inst.events.after(self.sent);
        if gap {
            let first = events.first().map_or(inst.events.last + 1, |e| e.id);
            let data = serde_json::json!({"from": self.sent + 1, "to": first - 1}).to_string();
            self.pending.push_back(frame("gap", None, data.as_bytes()));
        }
        for e in events {
            self.pending.push_back(event_frame(e));
        }
        self.sent = self.sent.max(inst.events.last);
        let state = self.rendering(inst).await;
        if self.last_state.as_ref() != Some(&state) {
            self.pending
                .push_back(frame("state", Some(inst.events.last), &state));
            self.last_state = Some(state);
        }
    }
}

/// Starts the stream for `key`; `Last-Event-ID` replays what was missed.
pub(super) fn stream(
    app: &Arc<App>,
    c: &Call,
    key: InstanceKey,
) -> Result<Response<Body>, ApiError> {
    let rx = app
        .lifecycle
        .store()
        .watch(&key)
        .ok_or_else(|| ApiError::not_found(format!("no instance at {}", key.location)))?;
    let last_event_id = match c.headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "header Last-Event-ID: expected the id of an event of this stream (a number)",
                    )
                })?,
        ),
    };
    let current = rx.borrow().clone();
    let state = State {
        app: app.clone(),
        renderer: c.renderer.clone(),
        rx,
        location: c.renderer.url(&key.location),
        // Without Last-Event-ID the history is not replayed: the current
        // state comes first.
        sent: last_event_id.unwrap_or(current.events.last),
        last_state: None,
        pending: Default::default(),
        done: false,
    };
    let stop = app.stop.clone();
    let events = futures_util::stream::unfold(state, move |mut s| {
        let stop = stop.clone();
        async move {
            loop {
                if let Some(f) = s.pending.pop_front() {
                    return Some((f, s));
                }
                if s.done {
                    return None;
                }
                if s.last_state.is_none() {
                    let inst = s.rx.borrow_and_update().clone();
                    s.catch_up(&inst).await;
                    continue;
                }
                tokio::select! {
                    changed = s.rx.changed() => match changed {
                        Ok(()) => {
                            let inst = s.rx.borrow_and_update().clone();
                            s.catch_up(&inst).await;
                        }
                        Err(_) => {
                            s.done = true;
                            let data = serde_json::json!({ "location": s.location }).to_string();
                            let id = s.sent + 1;
                            return Some((frame("deleted", Some(id), data.as_bytes()), s));
                        }
                    },
                    _ = tokio::time::sleep(KEEP_ALIVE) => {
                        return Some((Bytes::from_static(b": keep-alive\n\n"), s));
                    }
                    _ = stop.cancelled() => return None,
                }
            }
        }
    });
    let body = StreamBody::new(events.map(|b| Ok::<_, std::convert::Infallible>(Frame::data(b))));
    let mut r = Response::new(body.boxed_unsync());
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(r)
}

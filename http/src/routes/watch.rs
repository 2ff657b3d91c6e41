//! `GET {instance}?watch`: a Server-Sent-Events stream of the instance's
//! state.
//!
//! * `event: state` with `id: <generation>` and `data:` the instance's
//!   `application/occi+json` rendering (one line), first for the current
//!   state, then after every change;
//! * `event: deleted` with `data: {"location": "<url>"}` when the instance
//!   is gone; the stream then ends;
//! * a `: keep-alive` comment every 15 seconds of silence.
//!
//! The stream ends when the server shuts down.

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
use occi_so_framework::store::{Instance, InstanceKey};

const KEEP_ALIVE: Duration = Duration::from_secs(15);

struct State {
    app: Arc<App>,
    renderer: occi::Renderer,
    rx: watch::Receiver<Arc<Instance>>,
    location: String,
    first: bool,
    done: bool,
}

async fn event(app: &App, renderer: &occi::Renderer, inst: &Instance) -> Bytes {
    let data = match app.resource_of(inst).await {
        Ok(r) => match renderer.resource(MediaType::OcciJson, &r) {
            Ok(rendered) => rendered.body,
            Err(e) => Bytes::from(serde_json::json!({ "error": e.to_string() }).to_string()),
        },
        Err(e) => Bytes::from(serde_json::json!({ "error": e.message }).to_string()),
    };
    let mut out = Vec::with_capacity(data.len() + 48);
    out.extend_from_slice(format!("event: state\nid: {}\ndata: ", inst.generation).as_bytes());
    // JSON renderings are one line; be safe anyway.
    for b in data.iter() {
        if *b == b'\n' {
            out.extend_from_slice(b"\ndata: ");
        } else {
            out.push(*b);
        }
    }
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// Starts the stream for `key`.
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
    let state = State {
        app: app.clone(),
        renderer: c.renderer.clone(),
        rx,
        location: c.renderer.url(&key.location),
        first: true,
        done: false,
    };
    let stop = app.stop.clone();
    let events = futures_util::stream::unfold(state, move |mut s| {
        let stop = stop.clone();
        async move {
            if s.done {
                return None;
            }
            if s.first {
                s.first = false;
                let inst = s.rx.borrow_and_update().clone();
                let e = event(&s.app, &s.renderer, &inst).await;
                return Some((e, s));
            }
            tokio::select! {
                changed = s.rx.changed() => match changed {
                    Ok(()) => {
                        let inst = s.rx.borrow_and_update().clone();
                        let e = event(&s.app, &s.renderer, &inst).await;
                        Some((e, s))
                    }
                    Err(_) => {
                        s.done = true;
                        let data = serde_json::json!({ "location": s.location }).to_string();
                        Some((Bytes::from(format!("event: deleted\ndata: {data}\n\n")), s))
                    }
                },
                _ = tokio::time::sleep(KEEP_ALIVE) => Some((Bytes::from_static(b": keep-alive\n\n"), s)),
                _ = stop.cancelled() => None,
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

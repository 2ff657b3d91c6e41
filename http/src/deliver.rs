//! The sender of the framework's [outbox](occi_so_framework::outbox): POSTs
//! each instance's events to its `occi.so.callback` and the one-off
//! messages to theirs, as JSON, with backoff while a URL fails; an answer
//! of 2xx counts as delivered. At least once: what was not acknowledged is
//! sent again, also after a restart.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use occi_so_framework::outbox::{EventBatch, Outbox};
use occi_so_framework::store::{now_ms, InstanceKey};
use tokio_util::sync::CancellationToken;

/// How often the outbox is looked at.
const TICK: Duration = Duration::from_millis(250);
/// The longest wait between two tries of a failing URL.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Tries of a one-off message before it is dropped (about a day).
const GIVE_UP: u32 = 300;
/// Events in one POST.
const BATCH: usize = 100;

/// Runs until `stop`.
pub async fn run(outbox: Outbox, public_url: Option<String>, stop: CancellationToken) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("occi-so/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "callbacks are off: no HTTP client");
            return;
        }
    };
    let mut waiting: HashMap<InstanceKey, (Instant, Duration)> = HashMap::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        for batch in outbox.event_batches(BATCH) {
            if waiting
                .get(&batch.instance)
                .is_some_and(|(at, _)| *at > Instant::now())
            {
                continue;
            }
            let last = batch.events.last().map(|e| e.id);
            match post(&client, &batch.url, &body(&batch, public_url.as_deref())).await {
                Ok(()) => {
                    waiting.remove(&batch.instance);
                    if let Some(id) = last {
                        if let Err(e) = outbox.acknowledged(&batch.instance, id).await {
                            tracing::error!(error = %e, "cannot record a delivered callback");
                        }
                    }
                }
                Err(why) => {
                    let backoff = waiting
                        .get(&batch.instance)
                        .map_or(Duration::from_secs(1), |(_, b)| (*b * 2).min(MAX_BACKOFF));
                    tracing::warn!(instance = %batch.instance.location, url = %batch.url, error = %why, retry_in = ?backoff, "callback failed");
                    waiting.insert(batch.instance.clone(), (Instant::now() + backoff, backoff));
                }
            }
        }
        for (id, m) in outbox.due(now_ms()) {
            let r = match post(&client, &m.url, &m.body).await {
                Ok(()) => outbox.delivered(&id).await,
                Err(why) => {
                    let backoff = Duration::from_secs(1u64 << m.attempts.min(8)).min(MAX_BACKOFF);
                    tracing::warn!(url = %m.url, error = %why, retry_in = ?backoff, "callback message failed");
                    outbox
                        .failed(&id, now_ms() + backoff.as_millis() as u64, GIVE_UP)
                        .await
                }
            };
            if let Err(e) = r {
                tracing::error!(error = %e, "cannot record a callback message's outcome");
            }
        }
    }
}

fn body(b: &EventBatch, public_url: Option<&str>) -> serde_json::Value {
    let instance = match public_url {
        Some(base) => format!("{}{}", base.trim_end_matches('/'), b.instance.location),
        None => b.instance.location.clone(),
    };
    serde_json::json!({
        "instance": instance,
        "events": b.events,
        "gap": b.gap,
    })
}

/// Why one POST did not count as delivered.
#[derive(Debug, thiserror::Error)]
enum PostError {
    /// No answer (connection, timeout, redirect refused...).
    #[error("{0}")]
    Send(#[from] reqwest::Error),
    /// An answer other than 2xx.
    #[error("HTTP {0}")]
    Status(u16),
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> Result<(), PostError> {
    let r = client.post(url).json(body).send().await?;
    if r.status().is_success() {
        Ok(())
    } else {
        Err(PostError::Status(r.status().as_u16()))
    }
}

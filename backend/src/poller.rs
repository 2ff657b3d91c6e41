//! One poller per watched stack, shared by every watcher of that stack.
//!
//! A backend that can only learn a stack's state by asking (a real Heat)
//! registers a fetch function here. The first [`StackPollers::watch`] of a
//! stack reads it once and starts a task that re-reads it with exponential
//! backoff and jitter, publishing every change through a
//! [`tokio::sync::watch`] channel; later watchers subscribe to the same
//! channel, so ten waiters cost Heat what one does. The task ends, closing
//! the channel, when the stack is no longer in progress, when nobody watches,
//! when it has polled for [`PollConfig::max_total`], after
//! [`PollConfig::max_failures`] failed reads in a row, or on
//! [`StackPollers::shutdown`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use occi_so_sdk::{BackendError, StackInfo};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify, OnceCell};
use tokio::time::Instant;

/// A boxed read of one stack's current state.
pub(crate) type FetchFuture = Pin<Box<dyn Future<Output = Result<StackInfo, BackendError>> + Send>>;

/// How to read one stack's current state; called once per poll.
pub(crate) type Fetch = Arc<dyn Fn() -> FetchFuture + Send + Sync>;

/// How often and how long a stack is polled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PollConfig {
    /// Delay before the first re-read after a watch starts (or after a kick).
    #[serde(with = "humantime_serde")]
    pub initial: Duration,
    /// Longest delay between two reads.
    #[serde(with = "humantime_serde")]
    pub max: Duration,
    /// Each delay is the previous one times this (≥ 1).
    pub multiplier: f64,
    /// Each delay is randomised by ± this fraction (0 to 1), so that many
    /// stacks started together do not poll Heat in lockstep.
    pub jitter: f64,
    /// Stop polling a stack after this long (its watchers then read it once
    /// themselves and see it still in progress).
    #[serde(with = "humantime_serde")]
    pub max_total: Duration,
    /// Stop after this many failed reads in a row (Heat down): the watchers'
    /// own read then reports the error.
    pub max_failures: u32,
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(10),
            multiplier: 1.5,
            jitter: 0.2,
            max_total: Duration::from_secs(4 * 3600),
            max_failures: 4,
        }
    }
}

impl PollConfig {
    /// The delays a poller waits between reads, without jitter.
    fn delay(&self, step: u32) -> Duration {
        let factor = self.multiplier.max(1.0).powi(step.min(64) as i32);
        let secs = (self.initial.as_secs_f64() * factor).min(self.max.as_secs_f64());
        Duration::from_secs_f64(secs.max(0.0))
    }

    /// The `step`th delay with jitter applied.
    fn jittered_delay(&self, step: u32) -> Duration {
        let base = self.delay(step).as_secs_f64();
        let j = self.jitter.clamp(0.0, 1.0);
        let factor = if j > 0.0 {
            rand::rng().random_range(1.0 - j..=1.0 + j)
        } else {
            1.0
        };
        Duration::from_secs_f64(base * factor)
    }
}

/// Which stack a poller watches: the project it lives in and its id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct WatchKey {
    /// The project (tenant) the stack belongs to.
    pub project: String,
    /// The stack id.
    pub stack_id: String,
}

/// Counters for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollerStats {
    /// Poll sequences started (one per stack per watch period).
    pub sequences: u64,
    /// Reads done by pollers, the first one of each sequence included.
    pub reads: u64,
    /// Pollers running now.
    pub active: u64,
}

struct Slot {
    id: u64,
    tx: OnceCell<watch::Sender<StackInfo>>,
    kick: Notify,
}

struct Shared {
    config: PollConfig,
    slots: Mutex<HashMap<WatchKey, Arc<Slot>>>,
    next_id: AtomicU64,
    closed: AtomicBool,
    shutdown: watch::Sender<bool>,
    sequences: AtomicU64,
    reads: AtomicU64,
}

impl Shared {
    fn slots(&self) -> MutexGuard<'_, HashMap<WatchKey, Arc<Slot>>> {
        // A poisoned map only means a panic elsewhere; the map itself is fine.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remove_if_same(&self, key: &WatchKey, id: u64) {
        let mut slots = self.slots();
        if slots.get(key).is_some_and(|s| s.id == id) {
            slots.remove(key);
        }
    }
}

/// The registry of stack pollers of one backend.
pub(crate) struct StackPollers {
    shared: Arc<Shared>,
}

impl StackPollers {
    /// An empty registry polling with `config`.
    pub(crate) fn new(config: PollConfig) -> Self {
        let (shutdown, _) = watch::channel(false);
        StackPollers {
            shared: Arc::new(Shared {
                config,
                slots: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                closed: AtomicBool::new(false),
                shutdown,
                sequences: AtomicU64::new(0),
                reads: AtomicU64::new(0),
            }),
        }
    }

    /// Subscribe to the stack `key`. The first watcher reads the stack with
    /// `fetch` (concurrent first watchers share that read) and starts its
    /// poller; later ones join the running poller. Must be called within a
    /// Tokio runtime.
    pub(crate) async fn watch(
        &self,
        key: WatchKey,
        fetch: Fetch,
    ) -> Result<watch::Receiver<StackInfo>, BackendError> {
        loop {
            if self.shared.closed.load(Ordering::Acquire) {
                return Err(BackendError::Unavailable {
                    message: "the backend is shutting down".into(),
                });
            }
            let slot = {
                let mut slots = self.shared.slots();
                let slot = slots.entry(key.clone()).or_insert_with(|| {
                    Arc::new(Slot {
                        id: self.shared.next_id.fetch_add(1, Ordering::Relaxed),
                        tx: OnceCell::new(),
                        kick: Notify::new(),
                    })
                });
                if let Some(tx) = slot.tx.get() {
                    // Subscribing under the map lock: a poller deciding that
                    // nobody watches checks the count under the same lock.
                    return Ok(tx.subscribe());
                }
                slot.clone()
            };
            let started = AtomicBool::new(false);
            let init = slot
                .tx
                .get_or_try_init(|| async {
                    started.store(true, Ordering::Relaxed);
                    self.shared.reads.fetch_add(1, Ordering::Relaxed);
                    let info = fetch().await?;
                    Ok::<_, BackendError>(watch::channel(info).0)
                })
                .await;
            let tx = match init {
                Ok(tx) => tx,
                Err(e) => {
                    // Nobody else may reuse a slot that never got a value.
                    let mut slots = self.shared.slots();
                    if slots
                        .get(&key)
                        .is_some_and(|s| s.id == slot.id && s.tx.get().is_none())
                    {
                        slots.remove(&key);
                    }
                    return Err(e);
                }
            };
            let rx = {
                let slots = self.shared.slots();
                if slots.get(&key).is_none_or(|s| s.id != slot.id) {
                    // The slot ended (shutdown, or its poller finished)
                    // while we waited for its first read: start over.
                    continue;
                }
                tx.subscribe()
            };
            if started.load(Ordering::Relaxed) {
                self.shared.sequences.fetch_add(1, Ordering::Relaxed);
                let shared = self.shared.clone();
                tokio::spawn(run_poller(shared, key, slot, fetch));
            }
            return Ok(rx);
        }
    }

    /// Tell the poller of `key` that the stack just changed (we sent an
    /// update or a delete): it reads again now and restarts its backoff. A
    /// poller that already saw the stack settle is dropped, so the next
    /// watch starts from a fresh read instead of the stale final state.
    pub(crate) fn kick(&self, key: &WatchKey) {
        let mut slots = self.shared.slots();
        let Some(slot) = slots.get(key) else { return };
        let settled = slot
            .tx
            .get()
            .is_some_and(|tx| !tx.borrow().status.in_progress());
        if settled {
            slots.remove(key);
        } else {
            slot.kick.notify_one();
        }
    }

    /// Stop every poller and refuse new watches; watchers see their channel
    /// close. Idempotent.
    pub(crate) fn shutdown(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.shutdown.send_replace(true);
        self.shared.slots().clear();
    }

    /// Counters: sequences started, reads done, pollers running.
    pub(crate) fn stats(&self) -> PollerStats {
        PollerStats {
            sequences: self.shared.sequences.load(Ordering::Relaxed),
            reads: self.shared.reads.load(Ordering::Relaxed),
            active: self.shared.slots().len() as u64,
        }
    }
}

impl Drop for StackPollers {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Why a poller stopped (for the trace).
#[derive(Debug)]
enum End {
    Settled,
    Unwatched,
    Shutdown,
    TooLong,
    Failing(BackendError),
    Gone(BackendError),
}

async fn run_poller(shared: Arc<Shared>, key: WatchKey, slot: Arc<Slot>, fetch: Fetch) {
    let Some(tx) = slot.tx.get() else { return };
    let config = shared.config.clone();
    let deadline = Instant::now() + config.max_total;
    let mut shutdown = shared.shutdown.subscribe();
    let mut step = 0u32;
    let mut failures = 0u32;
    let end = loop {
        if !tx.borrow().status.in_progress() {
            break End::Settled;
        }
        if *shutdown.borrow() {
            break End::Shutdown;
        }
        let delay = config.jittered_delay(step);
        step = step.saturating_add(1);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = slot.kick.notified() => step = 0,
            _ = tx.closed() => {
                // Decide and unregister under the map lock, which watchers
                // hold while they subscribe.
                let mut slots = shared.slots();
                if tx.receiver_count() == 0 {
                    if slots.get(&key).is_some_and(|s| s.id == slot.id) {
                        slots.remove(&key);
                    }
                    break End::Unwatched;
                }
                continue;
            }
            _ = shutdown.wait_for(|stop| *stop) => break End::Shutdown,
            _ = tokio::time::sleep_until(deadline) => break End::TooLong,
        }
        shared.reads.fetch_add(1, Ordering::Relaxed);
        match fetch().await {
            Ok(info) => {
                failures = 0;
                tx.send_if_modified(|current| {
                    if *current == info {
                        false
                    } else {
                        *current = info;
                        true
                    }
                });
            }
            Err(e) => match e {
                // Heat's own transient miss while it changes the stack:
                // not the stack being gone, and not Heat failing; the
                // poll goes on (still bounded by `max_total`).
                BackendError::NotFound { ref message }
                    if crate::openstack::fault::is_internal_miss(message) =>
                {
                    tracing::debug!(stack = %key.stack_id, error = %e, "transient Heat 404 while the stack changes; polling on");
                }
                BackendError::NotFound { .. }
                | BackendError::Unauthorized { .. }
                | BackendError::Forbidden { .. } => break End::Gone(e),
                _ => {
                    failures += 1;
                    tracing::debug!(stack = %key.stack_id, failures, error = %e, "stack poll failed");
                    if failures >= config.max_failures.max(1) {
                        break End::Failing(e);
                    }
                }
            },
        }
    };
    match &end {
        End::Failing(e) | End::Gone(e) => {
            tracing::warn!(stack = %key.stack_id, project = %key.project, error = %e, "stack poller gave up")
        }
        End::TooLong => {
            tracing::warn!(stack = %key.stack_id, project = %key.project, "stack poller reached max_total")
        }
        End::Settled | End::Unwatched | End::Shutdown => {
            tracing::debug!(stack = %key.stack_id, project = %key.project, end = ?end, "stack poller ended")
        }
    }
    shared.remove_if_same(&key, slot.id);
    // Dropping the last reference to the slot drops the sender, which closes
    // every watcher's channel.
}

#[cfg(test)]
mod tests {
    use super::*;
    use occi_so_sdk::{StackRef, StackStatus};
    use std::sync::atomic::AtomicUsize;

    fn info(status: &str) -> StackInfo {
        StackInfo {
            stack: StackRef {
                name: "s".into(),
                id: "1".into(),
            },
            status: status.parse::<StackStatus>().unwrap(),
            status_reason: String::new(),
            outputs: vec![],
            parameters: Default::default(),
            creation_time: None,
            updated_time: None,
            description: None,
            tags: vec![],
        }
    }

    fn key() -> WatchKey {
        WatchKey {
            project: "p".into(),
            stack_id: "1".into(),
        }
    }

    /// A fetch that answers IN_PROGRESS `n` times, then COMPLETE, counting calls.
    fn scripted(n: usize, calls: Arc<AtomicUsize>) -> Fetch {
        Arc::new(move || {
            let k = calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                Ok(if k < n {
                    info("CREATE_IN_PROGRESS")
                } else {
                    info("CREATE_COMPLETE")
                })
            })
        })
    }

    fn fast() -> PollConfig {
        PollConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            ..PollConfig::default()
        }
    }

    async fn settle(mut rx: watch::Receiver<StackInfo>) -> StackInfo {
        loop {
            if !rx.borrow_and_update().status.in_progress() {
                return rx.borrow().clone();
            }
            if rx.changed().await.is_err() {
                return rx.borrow().clone();
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn many_watchers_share_one_poll_sequence() {
        let pollers = StackPollers::new(fast());
        let calls = Arc::new(AtomicUsize::new(0));
        let fetch = scripted(3, calls.clone());
        let mut waits = Vec::new();
        for _ in 0..10 {
            let rx = pollers.watch(key(), fetch.clone()).await.unwrap();
            waits.push(tokio::spawn(settle(rx)));
        }
        for w in waits {
            assert_eq!(w.await.unwrap().status.to_string(), "CREATE_COMPLETE");
        }
        // 3 in-progress reads then one complete read, whatever the watcher count
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        let stats = pollers.stats();
        assert_eq!(stats.sequences, 1);
        assert_eq!(stats.reads, 4);
        tokio::task::yield_now().await;
        assert_eq!(pollers.stats().active, 0, "poller removed once settled");
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_grows_and_is_bounded() {
        let c = PollConfig {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: 0.0,
            ..PollConfig::default()
        };
        let d: Vec<u64> = (0..8).map(|s| c.delay(s).as_millis() as u64).collect();
        assert_eq!(d, [500, 1000, 2000, 4000, 8000, 10000, 10000, 10000]);
        let j = PollConfig {
            jitter: 0.2,
            ..c.clone()
        };
        for _ in 0..100 {
            let ms = j.jittered_delay(1).as_millis();
            assert!((800..=1200).contains(&ms), "{ms}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn poller_stops_when_nobody_watches() {
        let pollers = StackPollers::new(fast());
        let calls = Arc::new(AtomicUsize::new(0));
        let rx = pollers
            .watch(key(), scripted(usize::MAX, calls.clone()))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(350)).await;
        let before = calls.load(Ordering::SeqCst);
        assert!(before >= 2, "polling while watched ({before})");
        drop(rx);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let after = calls.load(Ordering::SeqCst);
        assert!(after <= before + 1, "stopped after the last watcher left");
        assert_eq!(pollers.stats().active, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_closes_watchers_and_refuses_new_ones() {
        let pollers = StackPollers::new(fast());
        let calls = Arc::new(AtomicUsize::new(0));
        let mut rx = pollers
            .watch(key(), scripted(usize::MAX, calls.clone()))
            .await
            .unwrap();
        pollers.shutdown();
        let closed = rx.changed().await.unwrap_err();
        assert_eq!(closed.to_string(), "channel closed");
        let again = pollers.watch(key(), scripted(0, calls)).await;
        assert!(matches!(again, Err(BackendError::Unavailable { .. })));
    }

    #[tokio::test(start_paused = true)]
    async fn repeated_failures_end_the_poller_and_close_the_channel() {
        let pollers = StackPollers::new(fast());
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let fetch: Fetch = Arc::new(move || {
            let k = c.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if k == 0 {
                    Ok(info("CREATE_IN_PROGRESS"))
                } else {
                    Err(BackendError::Unavailable {
                        message: "down".into(),
                    })
                }
            })
        });
        let mut rx = pollers.watch(key(), fetch).await.unwrap();
        while rx.changed().await.is_ok() {}
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1 + fast().max_failures as usize
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_first_read_leaves_nothing_behind() {
        let pollers = StackPollers::new(fast());
        let fetch: Fetch = Arc::new(|| {
            Box::pin(async {
                Err(BackendError::NotFound {
                    message: "gone".into(),
                })
            })
        });
        let e = pollers.watch(key(), fetch).await.err();
        assert!(
            matches!(&e, Some(BackendError::NotFound { message }) if message == "gone"),
            "the first read's own error: {e:?}"
        );
        assert_eq!(pollers.stats().active, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn kick_after_settle_forces_a_fresh_read() {
        let pollers = StackPollers::new(fast());
        let calls = Arc::new(AtomicUsize::new(0));
        let rx = pollers
            .watch(key(), scripted(0, calls.clone()))
            .await
            .unwrap();
        assert_eq!(rx.borrow().status.to_string(), "CREATE_COMPLETE");
        pollers.kick(&key());
        let rx2 = pollers
            .watch(key(), scripted(0, calls.clone()))
            .await
            .unwrap();
        assert_eq!(rx2.borrow().status.to_string(), "CREATE_COMPLETE");
        assert_eq!(calls.load(Ordering::SeqCst), 2, "second watch read again");
    }
}

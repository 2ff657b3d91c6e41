//! Running one lifecycle operation as a task and committing its outcome.

use std::sync::Arc;
use std::time::{Duration, Instant};

use occi_so_sdk::{
    Attributes, Credentials, LifecycleCtx, Operation, Phase, PluginError, PluginState, StackRecord,
    StackSink, Stacks,
};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::Lifecycle;
use crate::registry::Binding;
use crate::store::{now_ms, Failure, InstanceKey, Store};

/// Told about every finished operation (for `/metrics`).
pub trait LifecycleObserver: Send + Sync {
    /// `outcome` is `ok`, `failed` or `panicked`.
    fn operation_finished(&self, plugin: &str, operation: &str, outcome: &str, elapsed: Duration);
}

pub(super) struct NoObserver;

impl LifecycleObserver for NoObserver {
    fn operation_finished(&self, _: &str, _: &str, _: &str, _: Duration) {}
}

/// Records stack changes of one instance into the store (and so the journal).
struct InstanceSink {
    store: Arc<Store>,
    key: InstanceKey,
}

impl StackSink for InstanceSink {
    fn stack_changed(&self, record: &StackRecord) {
        let record = record.clone();
        let r = self.store.update(&self.key, move |i| {
            match i.stacks.iter_mut().find(|r| r.role == record.role) {
                Some(slot) => *slot = record,
                None => i.stacks.push(record),
            }
            Ok::<(), ()>(())
        });
        if r.is_err() {
            tracing::warn!(location = %self.key.location, "stack change for an instance that is gone");
        }
    }

    fn stack_removed(&self, role: &str) {
        let _ = self.store.update(&self.key, |i| {
            i.stacks.retain(|r| r.role != role);
            Ok::<(), ()>(())
        });
    }
}

/// Records what a stack settled into after a restart, only while no
/// operation runs on the instance and only into the record of that very
/// stack (an operation started since owns the records).
struct SettleSink {
    store: Arc<Store>,
    key: InstanceKey,
}

impl StackSink for SettleSink {
    fn stack_changed(&self, record: &StackRecord) {
        let record = record.clone();
        let _ = self.store.update(&self.key, move |i| {
            if i.running.is_some() {
                return Err(());
            }
            match i
                .stacks
                .iter_mut()
                .find(|r| r.role == record.role && r.stack == record.stack)
            {
                Some(slot) if *slot != record => {
                    *slot = record;
                    Ok(())
                }
                _ => Err(()),
            }
        });
    }

    fn stack_removed(&self, _role: &str) {}
}

/// Stack names start with a letter and are unique per instance:
/// `so-<kind term>-<8 hex of the instance uid>-<role>`.
fn stack_prefix(term: &str, uid: &str) -> String {
    let term: String = term
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let short: String = uid
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(8)
        .collect();
    format!("so-{term}-{short}")
}

impl Lifecycle {
    /// After a restart: follow every stack recorded as still in progress
    /// until it settles, and record what it became, so `GET` tells the
    /// truth without waiting for the caller to retry. Calls act without a
    /// caller token (a backend with its own credentials, or a Heat that
    /// needs none); a stack that cannot be read keeps its last record.
    /// Returns how many stacks are followed.
    pub fn settle_stacks(self: &Arc<Self>) -> usize {
        let mut n = 0;
        for inst in self.store.all() {
            if inst.running.is_some() {
                continue;
            }
            for record in &inst.stacks {
                let unsettled = record.stack.is_some()
                    && record.last.as_ref().is_none_or(|l| l.status.in_progress());
                if !unsettled {
                    continue;
                }
                n += 1;
                let this = self.clone();
                let key = inst.key.clone();
                let role = record.role.clone();
                let records = inst.stacks.clone();
                let span = tracing::info_span!("settle", tenant = %key.tenant, location = %key.location, role = %role);
                tokio::spawn(
                    async move {
                        let sink = Arc::new(SettleSink {
                            store: this.store.clone(),
                            key: key.clone(),
                        });
                        let mut stacks = Stacks::new(
                            this.backend.clone(),
                            Credentials::new(key.tenant.clone(), None),
                            sink,
                            "settle",
                            records,
                        )
                        .with_clouds(this.clouds.clone())
                        .with_wait_options(this.options.stack_wait.clone());
                        match stacks.wait(&role).await {
                            Ok(info) => tracing::info!(status = %info.status, "stack settled after restart"),
                            Err(e) => tracing::warn!(error = %e, "cannot follow the stack after restart; its last record stays"),
                        }
                    }
                    .instrument(span),
                );
            }
        }
        n
    }

    /// Run `op` on the instance at `key` in a task of its own and commit
    /// its outcome. The returned handle may be dropped.
    pub(super) fn spawn(
        self: &Arc<Self>,
        key: InstanceKey,
        binding: Arc<Binding>,
        op: Operation,
        creds: Credentials,
    ) -> JoinHandle<Result<(), PluginError>> {
        let this = self.clone();
        let span = tracing::info_span!(
            "operation",
            tenant = %key.tenant,
            location = %key.location,
            plugin = %binding.name(),
            operation = %op.name(),
        );
        let work = {
            let this = this.clone();
            let key = key.clone();
            let binding = binding.clone();
            let op = op.clone();
            async move { this.execute(&key, &binding, &op, creds).await }.instrument(span.clone())
        };
        self.tasks.spawn(
            async move {
                let started = Instant::now();
                // A nested task, so that a panicking plugin fails the
                // operation instead of leaving the instance busy.
                let (result, outcome) = match tokio::spawn(work).await {
                    Ok(Ok(commit)) => (Ok(commit), "ok"),
                    Ok(Err(e)) => (Err(e), "failed"),
                    Err(join) => {
                        let what = if join.is_panic() { "panicked" } else { "was cancelled" };
                        (
                            Err(PluginError::Failed(format!("plugin {} {what} during {}", binding.name(), op.name()))),
                            "panicked",
                        )
                    }
                };
                let result = this.commit(&key, &op, result).await;
                this.observer
                    .operation_finished(binding.name(), op.name(), outcome, started.elapsed());
                match &result {
                    Ok(()) => tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "operation finished"),
                    Err(e) => tracing::warn!(error = %e, elapsed_ms = started.elapsed().as_millis() as u64, "operation failed"),
                }
                result
            }
            .instrument(span),
        )
    }

    async fn execute(
        &self,
        key: &InstanceKey,
        binding: &Binding,
        op: &Operation,
        creds: Credentials,
    ) -> Result<(Attributes, PluginState), PluginError> {
        let inst = self
            .store
            .get(key)
            .ok_or_else(|| PluginError::Failed(format!("instance {} vanished", key.location)))?;
        let sink = Arc::new(InstanceSink {
            store: self.store.clone(),
            key: key.clone(),
        });
        let stacks = Stacks::new(
            self.backend.clone(),
            creds.clone(),
            sink,
            stack_prefix(&binding.plugin.info().kind.term, &inst.uid),
            inst.stacks.clone(),
        )
        .with_clouds(self.clouds.clone())
        .with_wait_options(self.options.stack_wait.clone());
        let mut ctx = LifecycleCtx {
            instance_id: inst.id.clone(),
            location: inst.key.location.clone(),
            credentials: creds,
            attributes: inst.attributes.clone(),
            state: inst.plugin_state.clone(),
            stacks,
        };
        let result = binding.plugin.run(op, &mut ctx).await;
        match result {
            Ok(()) => Ok((ctx.attributes, ctx.state)),
            Err(e) => {
                // Keep what the plugin changed so far; it is the truth.
                let attrs = ctx.attributes;
                let state = ctx.state;
                let _ = self.store.update(key, move |i| {
                    i.attributes = attrs;
                    i.plugin_state = state;
                    Ok::<(), ()>(())
                });
                Err(e)
            }
        }
    }

    async fn commit(
        &self,
        key: &InstanceKey,
        op: &Operation,
        result: Result<(Attributes, PluginState), PluginError>,
    ) -> Result<(), PluginError> {
        let name = op.name().to_string();
        let durable = match (&result, op) {
            (Ok(_), Operation::Dispose) => self.store.remove(key).ok().map(|(_, d)| d),
            (Ok((attrs, state)), _) => {
                let (attrs, state) = (attrs.clone(), state.clone());
                self.store
                    .update(key, |i| {
                        i.running = None;
                        i.last_error = None;
                        i.attributes = attrs;
                        i.plugin_state = state;
                        match op {
                            Operation::Deploy => i.phase = Phase::Deployed,
                            Operation::Provision => i.phase = Phase::Provisioned,
                            _ => {}
                        }
                        Ok::<(), ()>(())
                    })
                    .ok()
                    .map(|(_, d)| d)
            }
            (Err(e), _) => {
                let message = e.to_string();
                self.store
                    .update(key, |i| {
                        i.running = None;
                        i.last_error = Some(Failure {
                            operation: name.clone(),
                            message,
                            at: now_ms(),
                        });
                        Ok::<(), ()>(())
                    })
                    .ok()
                    .map(|(_, d)| d)
            }
        };
        if let Some(d) = durable {
            if let Err(e) = d.wait().await {
                tracing::error!(error = %e, "journal failed while committing {name}");
            }
        }
        result.map(|_| ())
    }
}

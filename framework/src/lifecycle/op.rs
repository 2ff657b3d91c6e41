//! Running one operation as a task, committing its outcome, starting the
//! next one of the queue, and resuming after a restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use occi_so_sdk::{
    Attributes, BackendError, Credentials, LifecycleCtx, NullSink, Operation, Phase, PluginError,
    PluginState, StackRecord, StackSink, Stacks,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{last, rfc3339, Lifecycle, Preview};
use crate::events::EventKind;
use crate::operation::{ErrorChain, OpKey, OpState, OperationRecord, ResourceFault};
use crate::registry::Binding;
use crate::store::{now_ms, Failure, Instance, InstanceKey, Store};

/// Told about every finished operation (for `/metrics`).
pub trait LifecycleObserver: Send + Sync {
    /// `outcome` is `ok`, `failed`, `cancelled` or `panicked`.
    fn operation_finished(&self, plugin: &str, operation: &str, outcome: &str, elapsed: Duration);
}

pub(super) struct NoObserver;

impl LifecycleObserver for NoObserver {
    fn operation_finished(&self, _: &str, _: &str, _: &str, _: Duration) {}
}

/// Records stack changes of one instance into the store (and so the
/// journal), each status change as an event.
struct InstanceSink {
    store: Arc<Store>,
    key: InstanceKey,
    retention: usize,
}

fn stack_event(record: &StackRecord) -> Option<EventKind> {
    let info = record.last.as_ref()?;
    Some(EventKind::Stack {
        role: record.role.clone(),
        name: record.name.clone(),
        status: info.status.to_string(),
        reason: info.status_reason.clone(),
    })
}

impl StackSink for InstanceSink {
    fn stack_changed(&self, record: &StackRecord) {
        let record = record.clone();
        let retention = self.retention;
        let r = self.store.update(&self.key, move |i| {
            if let Some(e) = stack_event(&record) {
                i.events.push(now_ms(), e, retention);
            }
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
        let retention = self.retention;
        let _ = self.store.update(&self.key, |i| {
            if let Some(r) = i.stacks.iter().find(|r| r.role == role) {
                i.events.push(
                    now_ms(),
                    EventKind::Stack {
                        role: r.role.clone(),
                        name: r.name.clone(),
                        status: "DELETED".into(),
                        reason: String::new(),
                    },
                    retention,
                );
            }
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
    retention: usize,
}

impl StackSink for SettleSink {
    fn stack_changed(&self, record: &StackRecord) {
        let record = record.clone();
        let retention = self.retention;
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
                    if let Some(e) = stack_event(&record) {
                        i.events.push(now_ms(), e, retention);
                    }
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

/// How one run of an operation ended.
enum Outcome {
    Done(Attributes, PluginState),
    Failed(PluginError, Attributes, PluginState),
    /// Cancelled: the attributes and state from before it.
    Cancelled(Attributes, PluginState),
    /// It does not apply any more (its turn came too late).
    Refused(String, Attributes, PluginState),
}

/// Whether an error means the backend could not be reached (worth
/// waiting for), not that it refused.
fn unreachable(e: &PluginError) -> bool {
    matches!(e, PluginError::Backend(BackendError::Unavailable { .. }))
}

impl Lifecycle {
    /// Keeps the caller's credentials of a queued operation (in memory
    /// only) for when its turn comes.
    pub(super) fn remember_credentials(&self, id: &str, creds: Credentials) {
        self.queued_creds.insert(id.to_string(), creds);
    }

    pub(super) fn forget_credentials(&self, id: &str) {
        self.queued_creds.remove(id);
    }

    /// After a restart: every operation that was running runs again from
    /// where the journal left it (its stacks are followed, not recreated);
    /// queued ones follow in order; records the instances no longer know
    /// are ended. Calls act for the instance's tenant without a caller
    /// token (a backend with its own credentials, or a Heat that needs
    /// none). Returns how many operations were resumed.
    pub async fn resume(self: &Arc<Self>) -> usize {
        let mut resumed = 0;
        for inst in self.store.all() {
            let Some(running) = inst.running.clone() else {
                if !inst.queue.is_empty() {
                    self.start_next(&inst.key).await;
                }
                continue;
            };
            let operation = match (
                &running.op,
                self.store.operation(&inst.key.tenant, &running.id),
            ) {
                (_, Some(r)) => r.operation.clone(),
                (Some(op), None) => op.clone(),
                (None, None) => legacy_operation(&running.operation),
            };
            let id = if running.id.is_empty() {
                uuid::Uuid::new_v4().to_string()
            } else {
                running.id.clone()
            };
            let Ok(binding) = self.binding_of(&inst) else {
                tracing::error!(location = %inst.key.location, plugin = %inst.plugin, "cannot resume: the plugin is not registered");
                continue;
            };
            let (tenant, op_key) = (
                inst.key.tenant.clone(),
                OpKey {
                    tenant: inst.key.tenant.clone(),
                    id: id.clone(),
                },
            );
            let now = now_ms();
            let record = match self.store.operation(&tenant, &id) {
                Some(r) => {
                    let mut r = (*r).clone();
                    r.state = OpState::Running;
                    r.resumed += 1;
                    r.started.get_or_insert(now);
                    r
                }
                None => OperationRecord {
                    id: id.clone(),
                    instance: inst.key.clone(),
                    plugin: inst.plugin.clone(),
                    operation: operation.clone(),
                    state: OpState::Running,
                    created: running.since,
                    started: Some(running.since),
                    finished: None,
                    error: None,
                    retry_of: None,
                    resumed: 1,
                },
            };
            let _ = op_key;
            if running.id.is_empty() {
                // A journal of an earlier version: give the operation its id.
                let (rid, op) = (id.clone(), operation.clone());
                if let Ok((_, d)) = self.store.update(&inst.key, move |i| {
                    if let Some(r) = &mut i.running {
                        r.id = rid;
                        r.op = Some(op);
                    }
                    Ok::<(), ()>(())
                }) {
                    let _ = d.wait().await;
                }
            }
            if let Err(e) = self.put_record(record).await {
                tracing::error!(error = %e, "cannot record the resumed operation");
                continue;
            }
            tracing::warn!(tenant = %inst.key.tenant, location = %inst.key.location, operation = %operation.name(), id = %id, "resuming the operation a restart interrupted");
            let creds = Credentials::new(inst.key.tenant.clone(), None);
            // What the backends say now, so the plugin sees a stack that
            // failed meanwhile (and replaces it) or one that completed.
            let mut ctx = self.context(&inst, &binding, creds.clone(), inst.attributes.clone());
            let roles: Vec<String> = inst
                .stacks
                .iter()
                .filter(|r| r.stack.is_some())
                .map(|r| r.role.clone())
                .collect();
            for role in roles {
                if let Err(e) = ctx.stacks.refresh(&role).await {
                    tracing::warn!(role = %role, error = %e, "cannot read a stack before resuming; its last record stays");
                }
            }
            drop(ctx);
            // Persistence is ordered: once this is durable, so are the
            // records just refreshed (the operation reads what is visible).
            if let Ok((_, d)) = self.store.update(&inst.key, |_| Ok::<(), ()>(())) {
                let _ = d.wait().await;
            }
            drop(self.spawn(inst.key.clone(), binding, id, operation, creds));
            resumed += 1;
        }
        self.end_orphan_records().await;
        resumed
    }

    /// Records still queued or running that their instance does not hold
    /// (occi-so stopped between the two writes, or the instance is gone).
    async fn end_orphan_records(&self) {
        let open = self.store.operations(|o| !o.state.is_final());
        for r in open {
            let inst = self.store.get(&r.instance);
            let held = inst.as_ref().is_some_and(|i| {
                i.running.as_ref().is_some_and(|x| x.id == r.id)
                    || i.queue.iter().any(|q| q.id == r.id)
            });
            if held {
                continue;
            }
            let (state, error) = match (&inst, &r.operation) {
                (Some(i), _) if i.last_operation.as_ref().is_some_and(|l| l.id == r.id) => {
                    let state = i
                        .last_operation
                        .as_ref()
                        .map_or(OpState::Failed, |l| l.state);
                    let error = (state != OpState::Succeeded).then(|| {
                        ErrorChain::message(
                            i.last_error
                                .as_ref()
                                .map(|f| f.message.clone())
                                .unwrap_or_else(|| {
                                    format!("the operation ended {}", state.as_str())
                                }),
                        )
                    });
                    (state, error)
                }
                (None, Operation::Dispose) => (OpState::Succeeded, None),
                (None, _) => (
                    OpState::Failed,
                    Some(ErrorChain::message("the instance is gone")),
                ),
                (Some(_), _) => (
                    OpState::Failed,
                    Some(ErrorChain::message(
                        "occi-so stopped before the operation was accepted; nothing was done",
                    )),
                ),
            };
            if let Err(e) = self.end_record(&r.key(), state, error).await {
                tracing::error!(error = %e, id = %r.id, "cannot end an orphan operation record");
            }
        }
    }

    /// After a restart: follow every stack of an idle instance recorded as
    /// still in progress until it settles, and record what it became, so
    /// `GET` tells the truth. A stack that cannot be read keeps its last
    /// record. Returns how many stacks are followed.
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
                            retention: this.options.event_retention,
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

    /// Prunes finished operation records: older than the maximum age, and
    /// beyond the count each tenant keeps. Returns how many went.
    pub async fn prune_operations(&self) -> usize {
        let now = now_ms();
        let max_age = self.options.operation_max_age.as_millis() as u64;
        let mut finished = self.store.operations(|o| o.state.is_final());
        finished.sort_by(|a, b| {
            (&a.instance.tenant, b.finished).cmp(&(&b.instance.tenant, a.finished))
        });
        let mut per_tenant: std::collections::HashMap<&str, usize> = Default::default();
        let mut gone = Vec::new();
        for r in &finished {
            let n = per_tenant.entry(r.instance.tenant.as_str()).or_default();
            *n += 1;
            let old = r.finished.is_some_and(|f| now.saturating_sub(f) > max_age);
            if old || *n > self.options.operation_retention {
                gone.push(r.key());
            }
        }
        let mut last = None;
        for key in &gone {
            let (_, d) = self
                .store
                .put_operation(key, |_| Ok::<_, std::convert::Infallible>(None))
                .unwrap_or_else(|never| match never {});
            last = Some(d);
        }
        if let Some(d) = last {
            let _ = d.wait().await;
        }
        gone.len()
    }

    /// Runs operation `id` on the instance at `key` in a task of its own,
    /// commits its outcome and starts the next queued one. The returned
    /// handle may be dropped.
    pub(super) fn spawn(
        self: &Arc<Self>,
        key: InstanceKey,
        binding: Arc<Binding>,
        id: String,
        op: Operation,
        creds: Credentials,
    ) -> JoinHandle<()> {
        let this = self.clone();
        let span = tracing::info_span!(
            "operation",
            tenant = %key.tenant,
            location = %key.location,
            plugin = %binding.name(),
            operation = %op.name(),
            id = %id,
        );
        let token = CancellationToken::new();
        self.cancels.insert(id.clone(), token.clone());
        self.tasks.spawn(
            async move {
                let started = Instant::now();
                let before = this.store.get(&key);
                let work = {
                    let (this, key, binding, op) =
                        (this.clone(), key.clone(), binding.clone(), op.clone());
                    tokio::spawn(
                        async move { this.execute(&key, &binding, &op, creds, token).await }
                            .in_current_span(),
                    )
                };
                // A nested task, so that a panicking plugin fails the
                // operation instead of leaving the instance busy.
                let (outcome, label) = match work.await {
                    Ok(o) => {
                        let label = match &o {
                            Outcome::Done(..) => "ok",
                            Outcome::Cancelled(..) => "cancelled",
                            _ => "failed",
                        };
                        (o, label)
                    }
                    Err(join) => {
                        let what = if join.is_panic() {
                            "panicked"
                        } else {
                            "was cancelled"
                        };
                        let e = PluginError::Failed(format!(
                            "plugin {} {what} during {}",
                            binding.name(),
                            op.name()
                        ));
                        let (a, s) = before
                            .map(|i| (i.attributes.clone(), i.plugin_state.clone()))
                            .unwrap_or_default();
                        (Outcome::Failed(e, a, s), "panicked")
                    }
                };
                this.commit(&key, &binding, &id, &op, outcome).await;
                this.cancels.remove(&id);
                this.observer.operation_finished(
                    binding.name(),
                    op.name(),
                    label,
                    started.elapsed(),
                );
                tracing::info!(
                    outcome = label,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "operation finished"
                );
                this.start_next(&key).await;
            }
            .instrument(span),
        )
    }

    /// Runs operation `id` while the caller waits (design), bounded by the
    /// design timeout, and commits it; the plugin's error when it failed.
    pub(super) async fn run_inline(
        self: &Arc<Self>,
        key: &InstanceKey,
        binding: &Arc<Binding>,
        id: &str,
        op: &Operation,
        creds: Credentials,
    ) -> Option<PluginError> {
        let token = CancellationToken::new();
        self.cancels.insert(id.to_string(), token.clone());
        let started = Instant::now();
        let work = {
            let (this, key, binding, op, token) = (
                self.clone(),
                key.clone(),
                binding.clone(),
                op.clone(),
                token.clone(),
            );
            tokio::spawn(async move { this.execute(&key, &binding, &op, creds, token).await })
        };
        let outcome = match tokio::time::timeout(self.options.design_timeout, work).await {
            Ok(Ok(o)) => o,
            Ok(Err(join)) => {
                let what = if join.is_panic() {
                    "panicked"
                } else {
                    "was cancelled"
                };
                Outcome::Failed(
                    PluginError::Failed(format!(
                        "plugin {} {what} during {}",
                        binding.name(),
                        op.name()
                    )),
                    Attributes::new(),
                    PluginState::default(),
                )
            }
            Err(_) => {
                token.cancel();
                Outcome::Failed(
                    PluginError::Failed(format!(
                        "{} did not finish within {:?}",
                        op.name(),
                        self.options.design_timeout
                    )),
                    Attributes::new(),
                    PluginState::default(),
                )
            }
        };
        let (error, label) = match &outcome {
            Outcome::Failed(e, ..) => (Some(e.clone()), "failed"),
            Outcome::Refused(why, ..) => (Some(PluginError::Failed(why.clone())), "failed"),
            Outcome::Cancelled(..) => (
                Some(PluginError::Failed(format!("{} was cancelled", op.name()))),
                "cancelled",
            ),
            Outcome::Done(..) => (None, "ok"),
        };
        self.commit(key, binding, id, op, outcome).await;
        self.cancels.remove(id);
        self.observer
            .operation_finished(binding.name(), op.name(), label, started.elapsed());
        error
    }

    /// The plugin's run of `op`, with what it needs; retried with backoff
    /// while the backend cannot be reached.
    async fn execute(
        &self,
        key: &InstanceKey,
        binding: &Binding,
        op: &Operation,
        creds: Credentials,
        token: CancellationToken,
    ) -> Outcome {
        let Some(inst) = self.store.get(key) else {
            return Outcome::Refused(
                format!("the instance {} is gone", key.location),
                Attributes::new(),
                PluginState::default(),
            );
        };
        let before = inst
            .running
            .as_ref()
            .map(|r| r.before.clone())
            .unwrap_or_default();
        let mut restored = inst.attributes.clone();
        for (k, v) in &before {
            match v {
                Some(v) => {
                    restored.insert(k.clone(), v.clone());
                }
                None => {
                    restored.remove(k);
                }
            }
        }
        let inst_before = Instance {
            attributes: restored,
            ..(*inst).clone()
        };
        if let Some(why) = self.no_longer_applies(&inst, binding, op).await {
            return Outcome::Refused(
                why,
                inst_before.attributes.clone(),
                inst.plugin_state.clone(),
            );
        }
        // An update's attributes were merged in when it started; before
        // deploy there is nothing more to do.
        if inst.phase == Phase::Initialised {
            if let Operation::Update { .. } = op {
                return Outcome::Done(inst.attributes.clone(), inst.plugin_state.clone());
            }
        }
        let attributes = inst.attributes.clone();
        let deadline = tokio::time::Instant::now() + self.options.unavailable_retry;
        let mut delay = Duration::from_secs(1);
        loop {
            let inst = self.store.get(key).unwrap_or_else(|| inst.clone());
            let mut ctx = self.context(&inst, binding, creds.clone(), attributes.clone());
            let run = binding.plugin.run(op, &mut ctx);
            let result = tokio::select! {
                r = run => Some(r),
                _ = token.cancelled() => None,
            };
            match result {
                None => {
                    self.cancel_stacks(&mut ctx).await;
                    return Outcome::Cancelled(
                        inst_before.attributes.clone(),
                        inst_before.plugin_state.clone(),
                    );
                }
                Some(Ok(())) => return Outcome::Done(ctx.attributes, ctx.state),
                Some(Err(e)) if unreachable(&e) && tokio::time::Instant::now() < deadline => {
                    tracing::warn!(error = %e, retry_in = ?delay, "the backend cannot be reached; the operation goes on when it answers");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = token.cancelled() => return Outcome::Cancelled(inst_before.attributes.clone(), inst_before.plugin_state.clone()),
                    }
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                Some(Err(e)) => return Outcome::Failed(e, ctx.attributes, ctx.state),
            }
        }
    }

    /// Why a queued operation cannot run now that its turn came.
    async fn no_longer_applies(
        &self,
        inst: &Instance,
        binding: &Binding,
        op: &Operation,
    ) -> Option<String> {
        let required = match op {
            Operation::Deploy => Some(("deploy", Phase::Initialised)),
            Operation::Provision => Some(("provision", Phase::Deployed)),
            _ => None,
        };
        if let Some((term, phase)) = required {
            if inst.phase != phase {
                return Some(format!(
                    "{term} no longer applies: the instance is {} (it applies when it is {})",
                    inst.phase.as_str(),
                    phase.as_str()
                ));
            }
        }
        if let Operation::Action { term, .. } = op {
            let applies = self
                .applicable_in(inst.phase, binding)
                .iter()
                .any(|a| &a.term == term);
            if !applies {
                return Some(format!(
                    "{term} no longer applies to an instance that is {}",
                    inst.phase.as_str()
                ));
            }
        }
        if let Operation::Notify { .. } = op {
            if inst.phase == Phase::Initialised {
                return Some("notify no longer applies: the instance is not deployed".into());
            }
        }
        let mut attributes = inst.attributes.clone();
        if let Operation::Update { changed } = op {
            attributes.extend(changed.clone());
        }
        if matches!(op, Operation::Design | Operation::Dispose) {
            return None;
        }
        binding
            .plugin
            .validate(op, &attributes)
            .await
            .err()
            .map(|e| format!("{} no longer applies: {e}", op.name()))
    }

    /// The context one run of an operation works in.
    fn context(
        &self,
        inst: &Instance,
        binding: &Binding,
        creds: Credentials,
        attributes: Attributes,
    ) -> LifecycleCtx {
        let sink = Arc::new(InstanceSink {
            store: self.store.clone(),
            key: inst.key.clone(),
            retention: self.options.event_retention,
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
        LifecycleCtx {
            instance_id: inst.id.clone(),
            location: inst.key.location.clone(),
            credentials: creds,
            attributes,
            state: inst.plugin_state.clone(),
            mixins: self.provided_mixins(inst),
            stacks,
        }
    }

    /// The provided mixins applied to `inst`, as their providers describe
    /// them now (one no longer provided is left out).
    fn provided_mixins(&self, inst: &Instance) -> Vec<occi_so_sdk::MixinSpec> {
        if inst.mixins.is_empty() {
            return Vec::new();
        }
        let offered = self.registry.provided_mixins(&inst.key.tenant);
        inst.mixins
            .iter()
            .filter_map(|id| offered.iter().find(|m| m.id() == *id).cloned())
            .collect()
    }

    /// Cancels the backend operations of the stacks still in progress and
    /// waits (bounded) for them to settle, recording what they became.
    async fn cancel_stacks(&self, ctx: &mut LifecycleCtx) {
        let busy: Vec<String> = ctx
            .stacks
            .records()
            .iter()
            .filter(|r| r.stack.is_some() && r.last.as_ref().is_none_or(|l| l.status.in_progress()))
            .map(|r| r.role.clone())
            .collect();
        for role in busy {
            let cancelled = tokio::time::timeout(
                self.options
                    .stack_wait
                    .timeout
                    .min(Duration::from_secs(300)),
                ctx.stacks.cancel(&role),
            )
            .await;
            match cancelled {
                Ok(Ok(info)) => {
                    tracing::info!(role = %role, status = %info.status, "stack operation cancelled")
                }
                Ok(Err(e)) => {
                    tracing::warn!(role = %role, error = %e, "the stack's operation could not be cancelled");
                    let _ = ctx.stacks.refresh(&role).await;
                }
                Err(_) => {
                    tracing::warn!(role = %role, "the cancelled stack did not settle in time")
                }
            }
        }
    }

    /// The error chain of a failure, with the failing resource read from
    /// the stack's events.
    async fn chain_of(
        &self,
        e: &PluginError,
        inst: Option<&Instance>,
        creds: &Credentials,
    ) -> ErrorChain {
        let mut chain = ErrorChain::of(e);
        let Some(stack) = chain.stack.clone() else {
            return chain;
        };
        let Some(record) = inst.and_then(|i| i.stacks.iter().find(|r| r.name == stack.name)) else {
            return chain;
        };
        let (Some(stack_ref), Some(backend)) = (
            record.stack.clone(),
            self.backend_of(record.cloud.as_deref()),
        ) else {
            return chain;
        };
        if let Ok(events) = backend.events(creds, &stack_ref).await {
            let mut seen = std::collections::BTreeSet::new();
            for ev in events.iter().rev() {
                if ev.resource_name == stack.name || !ev.resource_status.ends_with("_FAILED") {
                    continue;
                }
                if !seen.insert(ev.resource_name.clone()) {
                    continue;
                }
                chain.resources.push(ResourceFault {
                    stack: stack.name.clone(),
                    name: ev.resource_name.clone(),
                    resource_type: String::new(),
                    status: ev.resource_status.clone(),
                    reason: ev.resource_status_reason.clone(),
                });
                if chain.resources.len() >= 3 {
                    break;
                }
            }
            chain.resources.reverse();
            if let Ok(resources) = backend.resources(creds, &stack_ref).await {
                for f in &mut chain.resources {
                    if let Some(r) = resources.iter().find(|r| r.resource_name == f.name) {
                        f.resource_type = r.resource_type.clone();
                    }
                }
            }
        }
        chain
    }

    /// Writes the outcome: the instance first (phase, attributes, state,
    /// the last operation and its events), then the record.
    async fn commit(
        &self,
        key: &InstanceKey,
        binding: &Binding,
        id: &str,
        op: &Operation,
        outcome: Outcome,
    ) {
        let name = op.name().to_string();
        let retention = self.options.event_retention;
        let now = now_ms();
        let (state, error) = match &outcome {
            Outcome::Done(..) => (OpState::Succeeded, None),
            Outcome::Cancelled(..) => (
                OpState::Cancelled,
                Some(ErrorChain::message("cancelled by the caller")),
            ),
            Outcome::Refused(why, ..) => (OpState::Failed, Some(ErrorChain::message(why.clone()))),
            Outcome::Failed(e, ..) => {
                let inst = self.store.get(key);
                let creds = Credentials::new(key.tenant.clone(), None);
                (
                    OpState::Failed,
                    Some(self.chain_of(e, inst.as_deref(), &creds).await),
                )
            }
        };
        let before = self.store.get(key);
        if state == OpState::Succeeded && *op == Operation::Dispose {
            // The callback hears of the end (and of what it had not yet
            // acknowledged) before the instance goes.
            if let Some(inst) = &before {
                self.last_callback(inst).await;
            }
            if let Ok((_, d)) = self.store.remove(key) {
                if let Err(e) = d.wait().await {
                    tracing::error!(error = %e, "journal failed while removing the disposed instance");
                }
            }
            // What waited behind a dispose ends with the instance.
            if let Some(inst) = before {
                for q in &inst.queue {
                    self.fail_record(
                        &key.tenant,
                        &q.id,
                        ErrorChain::message("the instance was disposed"),
                    )
                    .await;
                }
            }
        } else {
            let error_text = error.as_ref().map(|e| e.text());
            let event_error = error_text.clone();
            let (op_id, op2) = (id.to_string(), op.clone());
            let outcome_state = match outcome {
                Outcome::Done(a, s) => Some((a, s, true)),
                Outcome::Failed(_, a, s) | Outcome::Cancelled(a, s) | Outcome::Refused(_, a, s) => {
                    Some((a, s, false))
                }
            };
            let committed = self.store.update(key, move |i| {
                if i.running.as_ref().is_some_and(|r| r.id == op_id) {
                    i.running = None;
                }
                if let Some((attrs, plugin_state, ok)) = outcome_state {
                    i.attributes = attrs;
                    i.plugin_state = plugin_state;
                    if ok {
                        let phase = match op2 {
                            Operation::Deploy => Some(Phase::Deployed),
                            Operation::Provision => Some(Phase::Provisioned),
                            _ => None,
                        };
                        if let Some(p) = phase {
                            i.phase = p;
                            i.events.push(
                                now,
                                EventKind::Phase {
                                    phase: p.as_str().into(),
                                },
                                retention,
                            );
                        }
                    }
                }
                i.last_error = error_text.as_ref().map(|m| Failure {
                    operation: op2.name().to_string(),
                    message: m.clone(),
                    at: now,
                });
                i.last_operation = Some(last(&op_id, state));
                i.events.push(
                    now,
                    EventKind::Operation {
                        operation_id: op_id.clone(),
                        operation: op2.name().to_string(),
                        state: state.as_str().into(),
                        error: event_error,
                        position: None,
                    },
                    retention,
                );
                Ok::<(), ()>(())
            });
            match committed {
                Ok((_, d)) => {
                    if let Err(e) = d.wait().await {
                        tracing::error!(error = %e, "journal failed while committing {name}");
                    }
                }
                Err(_) => tracing::warn!("the instance is gone; {name} ends with it"),
            }
            // A design that failed leaves nothing behind.
            if *op == Operation::Design && state != OpState::Succeeded {
                if let Ok((_, d)) = self.store.remove(key) {
                    let _ = d.wait().await;
                }
            }
        }
        let _ = binding;
        if let Err(e) = self
            .end_record(
                &OpKey {
                    tenant: key.tenant.clone(),
                    id: id.to_string(),
                },
                state,
                error,
            )
            .await
        {
            tracing::error!(error = %e, "cannot record how {name} ended");
        }
    }

    /// Queues the last message of an instance that has a callback: its
    /// unacknowledged events and its end.
    async fn last_callback(&self, inst: &Instance) {
        let Some(url) = inst
            .attributes
            .get(crate::outbox::CALLBACK)
            .and_then(|v| v.as_str())
            .filter(|u| !u.is_empty())
        else {
            return;
        };
        let (events, gap) = inst.events.after(inst.callback_acked);
        let mut events: Vec<serde_json::Value> = events
            .into_iter()
            .filter_map(|e| serde_json::to_value(e).ok())
            .collect();
        events.push(serde_json::json!({
            "id": inst.events.last + 1,
            "at": now_ms(),
            "type": "deleted",
        }));
        let body = serde_json::json!({
            "instance": inst.key.location,
            "events": events,
            "gap": gap,
        });
        let outbox = crate::outbox::Outbox::new(self.store.clone());
        if let Err(e) = outbox.enqueue(url, body).wait().await {
            tracing::error!(error = %e, "cannot queue the instance's last callback");
        }
    }

    /// Starts the next queued operation of the instance, if it is idle.
    pub(super) async fn start_next(self: &Arc<Self>, key: &InstanceKey) {
        let retention = self.options.event_retention;
        let now = now_ms();
        let mut started = None;
        let r = self.store.update(key, |i| {
            if i.running.is_some() || i.queue.is_empty() {
                return Err(());
            }
            let next = i.queue.remove(0);
            let shown = match (&next.operation, self.binding_of(i).ok()) {
                (Operation::Update { changed }, Some(b)) => Some(self.shown(&b, changed)),
                _ => None,
            };
            i.start_running(&next.id, &next.operation, now, shown, retention);
            started = Some(next);
            Ok(())
        });
        let (Ok((inst, d)), Some(next)) = (r, started) else {
            return;
        };
        if d.wait().await.is_err() {
            return;
        }
        let key_op = OpKey {
            tenant: key.tenant.clone(),
            id: next.id.clone(),
        };
        let (_, d) = self
            .store
            .put_operation(&key_op, |current| {
                let Some(c) = current else {
                    return Ok::<_, std::convert::Infallible>(None);
                };
                let mut n = c.clone();
                n.state = OpState::Running;
                n.started = Some(now);
                Ok(Some(n))
            })
            .unwrap_or_else(|never| match never {});
        let _ = d.wait().await;
        let creds = self
            .queued_creds
            .remove(&next.id)
            .map(|(_, c)| c)
            .unwrap_or_else(|| Credentials::new(key.tenant.clone(), None));
        match self.binding_of(&inst) {
            Ok(binding) => {
                tracing::info!(location = %key.location, operation = %next.operation.name(), id = %next.id, waited_since = %rfc3339(now), "queued operation starts");
                drop(self.spawn(key.clone(), binding, next.id, next.operation, creds));
            }
            Err(e) => {
                let binding_err = e.to_string();
                self.fail_record(&key.tenant, &next.id, ErrorChain::message(binding_err))
                    .await;
                let id = next.id.clone();
                if let Ok((_, d)) = self.store.update(key, move |i| {
                    if i.running.as_ref().is_some_and(|r| r.id == id) {
                        i.running = None;
                    }
                    Ok::<(), ()>(())
                }) {
                    let _ = d.wait().await;
                }
            }
        }
    }

    /// Runs the plugin on previews of the backend: nothing is changed.
    pub(super) async fn preview_run(
        &self,
        inst: &Instance,
        binding: &Binding,
        op: Operation,
        attributes: Attributes,
        creds: Credentials,
    ) -> Result<Preview, super::LifecycleError> {
        let stacks = Stacks::new(
            self.backend.clone(),
            creds.clone(),
            Arc::new(NullSink),
            stack_prefix(&binding.plugin.info().kind.term, &inst.uid),
            inst.stacks.clone(),
        )
        .with_clouds(self.clouds.clone())
        .previewing();
        let mut ctx = LifecycleCtx {
            instance_id: inst.id.clone(),
            location: inst.key.location.clone(),
            credentials: creds,
            attributes,
            state: inst.plugin_state.clone(),
            mixins: self.provided_mixins(inst),
            stacks,
        };
        let result = binding.plugin.run(&op, &mut ctx).await;
        let stacks = ctx.stacks.plan().map(<[_]>::to_vec).unwrap_or_default();
        let incomplete = match result {
            Ok(()) => None,
            // A refusal of the backend (a template it rejects) is the
            // caller's mistake, as it would be for the operation itself.
            Err(PluginError::Backend(BackendError::Rejected { kind, message })) => {
                return Err(PluginError::Backend(BackendError::Rejected { kind, message }).into())
            }
            Err(e) => Some(e.to_string()),
        };
        Ok(Preview {
            operation: op.name().to_string(),
            stacks,
            incomplete,
        })
    }
}

/// The operation a journal of an earlier version names only by its name.
fn legacy_operation(name: &str) -> Operation {
    match name {
        "design" => Operation::Design,
        "deploy" => Operation::Deploy,
        "provision" => Operation::Provision,
        "dispose" => Operation::Dispose,
        "update" => Operation::update(Attributes::new()),
        "notify" => Operation::notify(Attributes::new()),
        term => Operation::action(term, Attributes::new()),
    }
}

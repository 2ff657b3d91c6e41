//! State-machine tests with a minimal in-memory backend double: they check
//! the lifecycle rules, not Heat (the backends have their own suites).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dashmap::DashMap;
use occi_so_sdk::*;
use serde_json::json;
use tokio::sync::{watch, Notify};

use super::*;
use crate::registry::{orchestrator_kind_id, Registry};
use crate::store::{JournalOptions, Store};

#[derive(Default)]
struct Memory {
    stacks: DashMap<String, watch::Sender<StackInfo>>,
}

fn info(stack: &StackRef, status: &str) -> StackInfo {
    StackInfo {
        stack: stack.clone(),
        status: status.parse().unwrap(),
        status_reason: String::new(),
        outputs: vec![StackOutput {
            output_key: "mcn.endpoint.api".into(),
            output_value: json!("10.0.0.7"),
            description: None,
            output_error: None,
        }],
        parameters: BTreeMap::new(),
        creation_time: None,
        updated_time: None,
        description: None,
        tags: vec![],
    }
}

#[async_trait]
impl StackBackend for Memory {
    fn kind(&self) -> &'static str {
        "memory"
    }
    async fn create(&self, _: &Credentials, spec: &StackSpec) -> Result<StackRef, BackendError> {
        let r = StackRef {
            name: spec.name.clone(),
            id: uuid::Uuid::new_v4().to_string(),
        };
        self.stacks
            .insert(r.id.clone(), watch::channel(info(&r, "CREATE_COMPLETE")).0);
        Ok(r)
    }
    async fn get(&self, _: &Credentials, s: &StackRef) -> Result<StackInfo, BackendError> {
        self.stacks
            .get(&s.id)
            .map(|tx| tx.borrow().clone())
            .ok_or(BackendError::NotFound {
                message: "gone".into(),
            })
    }
    async fn find(&self, _: &Credentials, name: &str) -> Result<Option<StackRef>, BackendError> {
        Ok(self
            .stacks
            .iter()
            .find(|e| e.value().borrow().stack.name == name)
            .map(|e| e.value().borrow().stack.clone()))
    }
    async fn update(
        &self,
        _: &Credentials,
        s: &StackRef,
        _: &StackUpdate,
    ) -> Result<(), BackendError> {
        let tx = self.stacks.get(&s.id).ok_or(BackendError::NotFound {
            message: "gone".into(),
        })?;
        tx.send_replace(info(s, "UPDATE_COMPLETE"));
        Ok(())
    }
    async fn delete(&self, _: &Credentials, s: &StackRef) -> Result<(), BackendError> {
        let tx = self.stacks.get(&s.id).ok_or(BackendError::NotFound {
            message: "gone".into(),
        })?;
        tx.send_replace(info(s, "DELETE_COMPLETE"));
        Ok(())
    }
    async fn cancel(&self, _: &Credentials, _: &StackRef) -> Result<(), BackendError> {
        Err(BackendError::Conflict {
            kind: "NotSupported".into(),
            message: "this test double runs no operation long enough to cancel".into(),
        })
    }
    async fn preview_create(
        &self,
        _: &Credentials,
        _: &StackSpec,
    ) -> Result<occi_so_sdk::StackPreview, BackendError> {
        Ok(Default::default())
    }
    async fn preview_update(
        &self,
        _: &Credentials,
        _: &StackRef,
        _: &StackUpdate,
    ) -> Result<occi_so_sdk::StackPreview, BackendError> {
        Ok(Default::default())
    }
    async fn resources(
        &self,
        _: &Credentials,
        _: &StackRef,
    ) -> Result<Vec<ResourceInfo>, BackendError> {
        Ok(vec![])
    }
    async fn events(&self, _: &Credentials, _: &StackRef) -> Result<Vec<EventInfo>, BackendError> {
        Ok(vec![])
    }
    async fn validate(
        &self,
        _: &Credentials,
        _: &ValidateRequest,
    ) -> Result<ValidateInfo, BackendError> {
        Ok(ValidateInfo {
            description: None,
            parameters: BTreeMap::new(),
        })
    }
    async fn watch(
        &self,
        _: &Credentials,
        s: &StackRef,
    ) -> Result<watch::Receiver<StackInfo>, BackendError> {
        self.stacks
            .get(&s.id)
            .map(|tx| tx.subscribe())
            .ok_or(BackendError::NotFound {
                message: "gone".into(),
            })
    }
}

/// Deploys one stack; `gate` (when set) holds deploy until notified;
/// `fail`/`panic` make deploy fail or panic.
struct TestPlugin {
    info: PluginInfo,
    gate: Option<Arc<Notify>>,
    fail: bool,
    panic: bool,
    /// Updates to fail before one succeeds.
    update_failures: Arc<std::sync::atomic::AtomicUsize>,
    /// Updates run (failed ones included).
    updates: Arc<std::sync::atomic::AtomicUsize>,
}

fn spec() -> StackSpec {
    StackSpec {
        name: String::new(),
        template: "heat_template_version: 2018-08-31\nresources: {}\n".into(),
        parameters: BTreeMap::new(),
        environment: None,
        files: BTreeMap::new(),
        timeout_mins: None,
        disable_rollback: true,
        tags: vec![],
    }
}

#[async_trait]
impl Orchestrator for TestPlugin {
    fn info(&self) -> &PluginInfo {
        &self.info
    }
    async fn validate(&self, op: &Operation, attrs: &Attributes) -> Result<(), PluginError> {
        if let Operation::Update { changed } = op {
            if changed.get("flavor") == Some(&json!("huge")) {
                return Err(PluginError::attribute("flavor", "no such flavor"));
            }
        }
        let _ = attrs;
        Ok(())
    }
    async fn run(&self, op: &Operation, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        match op {
            Operation::Deploy => {
                if let Some(g) = &self.gate {
                    g.notified().await;
                }
                if self.panic {
                    panic!("plugin bug");
                }
                if self.fail {
                    return Err(PluginError::Failed("CREATE_FAILED: boom".into()));
                }
                ctx.stacks.create_ready("main", spec()).await?;
                ctx.state = json!({"deployed": true}).into();
                Ok(())
            }
            Operation::Update { .. } => {
                use std::sync::atomic::Ordering::SeqCst;
                self.updates.fetch_add(1, SeqCst);
                if self
                    .update_failures
                    .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    return Err(PluginError::Failed(
                        "UPDATE_FAILED: the update broke".into(),
                    ));
                }
                ctx.stacks
                    .update_ready(
                        "main",
                        &StackUpdate::Patch {
                            parameters: BTreeMap::new(),
                        },
                    )
                    .await?;
                Ok(())
            }
            other => ctx.default_run("sample", other).await,
        }
    }
}

fn plugin(gate: Option<Arc<Notify>>, fail: bool, panic: bool) -> Arc<dyn Orchestrator> {
    test_plugin(gate, fail, panic)
}

fn test_plugin(gate: Option<Arc<Notify>>, fail: bool, panic: bool) -> Arc<TestPlugin> {
    Arc::new(TestPlugin {
        info: PluginInfo {
            name: "sample".into(),
            version: "1".into(),
            description: None,
            source: PluginSource::Compiled,
            kind: KindSpec {
                term: "sample".into(),
                scheme: "http://example.org/occi/sample#".into(),
                title: None,
                location: None,
                related: vec![],
                attributes: vec![
                    AttributeSpec::new("flavor", AttributeType::String).default_value("m1.small"),
                    AttributeSpec::new("size", AttributeType::Integer).default_value(1),
                ],
                actions: vec![ActionSpec {
                    term: "scale".into(),
                    scheme: "http://example.org/occi/sample/action#".into(),
                    title: None,
                    attributes: vec![AttributeSpec::new("count", AttributeType::Integer).required()],
                    applies_in: vec![Phase::Provisioned],
                }],
            },
        },
        gate,
        fail,
        panic,
        update_failures: Default::default(),
        updates: Default::default(),
    })
}

fn lifecycle_with(p: Arc<dyn Orchestrator>, store: Arc<Store>) -> Arc<Lifecycle> {
    lifecycle_on(
        p,
        store,
        Arc::new(Memory::default()),
        LifecycleOptions::default(),
    )
}

fn lifecycle_on(
    p: Arc<dyn Orchestrator>,
    store: Arc<Store>,
    backend: Arc<Memory>,
    options: LifecycleOptions,
) -> Arc<Lifecycle> {
    let registry = Arc::new(Registry::new());
    registry.set_default("sample").unwrap();
    registry.register(p).unwrap();
    Arc::new(Lifecycle::new(store, registry, backend, options))
}

fn creds() -> Credentials {
    Credentials::new("t1", Some(Secret::new("tok")))
}

fn key() -> InstanceKey {
    InstanceKey::new("t1", "/orchestrator/default")
}

async fn created(lc: &Arc<Lifecycle>) -> Arc<Instance> {
    let (inst, record) = lc
        .create(
            CreateRequest {
                key: key(),
                kind: orchestrator_kind_id(),
                attributes: vec![],
                mixins: vec![],
            },
            creds(),
        )
        .await
        .unwrap();
    assert_eq!(record.operation, Operation::Design);
    assert_eq!(record.state, OpState::Succeeded);
    inst
}

/// The instance once nothing runs or waits.
async fn settled(lc: &Lifecycle) -> Arc<Instance> {
    for _ in 0..400 {
        let i = lc.get(&key()).unwrap();
        if i.running.is_none() && i.queue.is_empty() {
            return i;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("operation did not finish");
}

/// The record `id` once it has ended.
async fn ended(lc: &Lifecycle, id: &str) -> Arc<OperationRecord> {
    for _ in 0..400 {
        let r = lc.operation("t1", id).unwrap();
        if r.state.is_final() {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("operation {id} did not end");
}

fn terms(lc: &Lifecycle, inst: &Instance) -> Vec<String> {
    let b = lc.binding_of(inst).unwrap();
    lc.applicable(inst, &b)
        .into_iter()
        .map(|a| a.term)
        .collect()
}

#[tokio::test]
async fn the_mcn_sequence_moves_through_the_phases() {
    let lc = lifecycle_with(plugin(None, false, false), Arc::new(Store::in_memory()));
    let inst = created(&lc).await;
    assert_eq!(inst.phase, Phase::Initialised);
    assert_eq!(inst.attributes["flavor"], json!("m1.small"));
    assert_eq!(terms(&lc, &inst), ["deploy"]);

    let e = lc
        .start(&key(), None, "provision", &[], creds())
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "action 'provision' does not apply to an instance that is initialised; actions that apply now: deploy"
    );
    let e = lc
        .start(&key(), None, "deplyo", &[], creds())
        .await
        .unwrap_err();
    assert!(
        e.to_string().starts_with("no such action 'deplyo'")
            && e.to_string().ends_with("did you mean deploy?"),
        "{e}"
    );

    let a = lc
        .start(&key(), Some(MCN_SERVICE_SCHEME), "deploy", &[], creds())
        .await
        .unwrap();
    assert_eq!(a.operation.state, OpState::Running);
    assert!(!a.queued());
    let inst = settled(&lc).await;
    assert_eq!(inst.phase, Phase::Deployed);
    assert_eq!(inst.stacks.len(), 1);
    assert!(inst.stacks[0].name.starts_with("so-sample-"));
    assert_eq!(inst.plugin_state.as_json(), &json!({"deployed": true}));
    assert_eq!(ended(&lc, &a.operation.id).await.state, OpState::Succeeded);
    let report = lc.state(&inst).await.unwrap();
    assert_eq!(
        report.attributes["occi.mcn.stack.state"],
        json!("CREATE_COMPLETE")
    );
    assert_eq!(report.attributes["mcn.endpoint.api"], json!("10.0.0.7"));

    match lc
        .update(
            &key(),
            &[("size".into(), json!("3"))],
            &report.attributes,
            creds(),
        )
        .await
        .unwrap()
    {
        Updated::Accepted(a) => assert_eq!(
            a.operation.operation,
            Operation::update(Attributes::from([("size".to_string(), json!(3))]))
        ),
        other => panic!("unexpected {other:?}"),
    }
    let inst = settled(&lc).await;
    assert_eq!(inst.attributes["size"], json!(3));
    let report = lc.state(&inst).await.unwrap();
    assert_eq!(
        report.attributes["occi.mcn.stack.state"],
        json!("UPDATE_COMPLETE")
    );

    lc.start(&key(), None, "provision", &[], creds())
        .await
        .unwrap();
    let inst = settled(&lc).await;
    assert_eq!(inst.phase, Phase::Provisioned);
    assert_eq!(terms(&lc, &inst), ["scale", "notify"]);
    let e = lc
        .start(&key(), None, "scale", &[], creds())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("'count' is required"), "{e}");

    // The history: ids from 1, in order, each kind of event there.
    let kinds: Vec<String> = inst
        .events
        .recent
        .iter()
        .map(|e| {
            serde_json::to_value(&e.kind).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(kinds.contains(&"phase".to_string()) && kinds.contains(&"stack".to_string()));
    assert!(inst
        .events
        .recent
        .iter()
        .zip(inst.events.recent.iter().skip(1))
        .all(|(a, b)| b.id == a.id + 1));

    match lc.dispose(&key(), creds()).await.unwrap() {
        Disposed::Done(r) => assert_eq!(r.state, OpState::Succeeded),
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(lc.get(&key()), Err(LifecycleError::NotFound(_))));
    // The records outlive the instance.
    assert_eq!(lc.operations("t1", Some("/orchestrator/default")).len(), 5);
}

#[tokio::test]
async fn operations_on_a_busy_instance_wait_in_order() {
    let gate = Arc::new(Notify::new());
    let lc = lifecycle_on(
        plugin(Some(gate.clone()), false, false),
        Arc::new(Store::in_memory()),
        Arc::new(Memory::default()),
        LifecycleOptions {
            queue_limit: 3,
            ..LifecycleOptions::default()
        },
    );
    created(&lc).await;
    let deploy = lc
        .start(&key(), None, "deploy", &[], creds())
        .await
        .unwrap();
    // A second deploy no longer applies once the first is accepted.
    let e = lc
        .start(&key(), None, "deploy", &[], creds())
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("action 'deploy' does not apply to an instance that is deployed"),
        "{e}"
    );
    let provision = lc
        .start(&key(), None, "provision", &[], creds())
        .await
        .unwrap();
    assert!(provision.queued());
    assert_eq!(lc.position(&provision.operation), Some(1));
    let update = match lc
        .update(
            &key(),
            &[("size".into(), json!(2))],
            &Attributes::new(),
            creds(),
        )
        .await
        .unwrap()
    {
        Updated::Accepted(a) => a,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(lc.position(&update.operation), Some(2));
    assert_eq!(
        lc.get(&key()).unwrap().attributes["size"],
        json!(1),
        "applied when its turn comes"
    );
    let notify = lc
        .start(
            &key(),
            None,
            "notify",
            &[("alarm".into(), json!("cpu"))],
            creds(),
        )
        .await
        .unwrap();
    assert_eq!(lc.position(&notify.operation), Some(3));
    // The queue is full: the refusal names the running operation and when it started.
    let before = lc.get(&key()).unwrap();
    let e = lc.dispose(&key(), creds()).await.unwrap_err();
    match &e {
        LifecycleError::Busy {
            running,
            location,
            since,
            queued,
        } => {
            assert_eq!(running, "deploy");
            assert_eq!(location, &deploy.operation.location());
            assert_eq!(*queued, 3);
            assert!(since.ends_with('Z') && since.contains('T'), "{since}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(lc.get(&key()).unwrap(), before, "a refusal changes nothing");
    gate.notify_one();
    let inst = settled(&lc).await;
    assert_eq!(inst.phase, Phase::Provisioned);
    assert_eq!(inst.attributes["size"], json!(2));
    for a in [&deploy, &provision, &update, &notify] {
        let r = ended(&lc, &a.operation.id).await;
        assert_eq!(r.state, OpState::Succeeded, "{:?}", r.operation);
    }
    let order: Vec<u64> = [&deploy, &provision, &update, &notify]
        .iter()
        .map(|a| {
            lc.operation("t1", &a.operation.id)
                .unwrap()
                .started
                .unwrap()
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
}

#[tokio::test]
async fn a_queued_operation_that_no_longer_applies_fails_with_the_reason() {
    let gate = Arc::new(Notify::new());
    let lc = lifecycle_with(
        plugin(Some(gate.clone()), true, false),
        Arc::new(Store::in_memory()),
    );
    created(&lc).await;
    lc.start(&key(), None, "deploy", &[], creds())
        .await
        .unwrap();
    let provision = lc
        .start(&key(), None, "provision", &[], creds())
        .await
        .unwrap();
    gate.notify_one();
    let r = ended(&lc, &provision.operation.id).await;
    assert_eq!(r.state, OpState::Failed);
    assert_eq!(
        r.error.as_ref().unwrap().message,
        "provision no longer applies: the instance is initialised (it applies when it is deployed)"
    );
}

#[tokio::test]
async fn concurrent_starts_let_exactly_one_through() {
    let gate = Arc::new(Notify::new());
    let lc = lifecycle_with(
        plugin(Some(gate.clone()), false, false),
        Arc::new(Store::in_memory()),
    );
    created(&lc).await;
    let mut handles = vec![];
    for _ in 0..16 {
        let lc = lc.clone();
        handles.push(tokio::spawn(async move {
            lc.start(&key(), None, "deploy", &[], creds()).await
        }));
    }
    let mut ok = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(_) => ok += 1,
            Err(LifecycleError::NotApplicable { .. }) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(ok, 1);
    gate.notify_one();
    settled(&lc).await;
}

#[tokio::test]
async fn failures_and_panics_are_recorded_and_deploy_can_be_retried() {
    for (fail, panic) in [(true, false), (false, true)] {
        let lc = lifecycle_with(plugin(None, fail, panic), Arc::new(Store::in_memory()));
        created(&lc).await;
        let a = lc
            .start(&key(), None, "deploy", &[], creds())
            .await
            .unwrap();
        let inst = settled(&lc).await;
        assert_eq!(inst.phase, Phase::Initialised);
        let err = inst.last_error.clone().unwrap();
        assert_eq!(err.operation, "deploy");
        if panic {
            assert!(err.message.contains("panicked"), "{}", err.message);
        } else {
            assert!(err.message.contains("boom"), "{}", err.message);
        }
        let r = ended(&lc, &a.operation.id).await;
        assert_eq!(r.state, OpState::Failed);
        assert_eq!(r.error.as_ref().unwrap().message, err.message);
        assert_eq!(terms(&lc, &inst)[0], "deploy");
        // A retry really runs again, as a new operation.
        let again = lc.retry("t1", &a.operation.id, creds()).await.unwrap();
        assert_eq!(
            again.operation.retry_of.as_deref(),
            Some(a.operation.id.as_str())
        );
        let r2 = ended(&lc, &again.operation.id).await;
        assert_eq!(r2.state, OpState::Failed);
        assert_ne!(r2.id, r.id);
    }
}

#[tokio::test]
async fn cancelling_and_retrying_follow_the_state_of_the_operation() {
    let gate = Arc::new(Notify::new());
    let lc = lifecycle_with(
        plugin(Some(gate.clone()), false, false),
        Arc::new(Store::in_memory()),
    );
    created(&lc).await;
    let deploy = lc
        .start(&key(), None, "deploy", &[], creds())
        .await
        .unwrap();
    let provision = lc
        .start(&key(), None, "provision", &[], creds())
        .await
        .unwrap();
    // A queued one leaves its queue.
    let r = lc.cancel("t1", &provision.operation.id).await.unwrap();
    assert_eq!(r.state, OpState::Cancelled);
    assert!(lc.get(&key()).unwrap().queue.is_empty());
    // A running one stops; the instance stays as it was.
    let r = lc.cancel("t1", &deploy.operation.id).await.unwrap();
    assert_eq!(r.state, OpState::Cancelled);
    let inst = settled(&lc).await;
    assert_eq!(inst.phase, Phase::Initialised);
    assert!(inst.stacks.is_empty());
    // Neither can be cancelled again; an unknown or another tenant's id is not found.
    let e = lc.cancel("t1", &deploy.operation.id).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "operation {} is cancelled: only a queued or running operation can be cancelled",
            deploy.operation.location()
        )
    );
    assert!(matches!(
        lc.cancel("t2", &deploy.operation.id).await,
        Err(LifecycleError::NoSuchOperation(_))
    ));
    assert!(matches!(
        lc.retry("t1", "nope", creds()).await,
        Err(LifecycleError::NoSuchOperation(_))
    ));
    // A cancelled deploy can be retried; a succeeded one cannot.
    let again = lc.retry("t1", &deploy.operation.id, creds()).await.unwrap();
    gate.notify_one();
    assert_eq!(
        ended(&lc, &again.operation.id).await.state,
        OpState::Succeeded
    );
    let e = lc
        .retry("t1", &again.operation.id, creds())
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .ends_with("only a failed or cancelled operation can be retried"),
        "{e}"
    );
}

#[tokio::test]
async fn sending_a_failed_update_again_really_runs_it_again() {
    let tp = test_plugin(None, false, false);
    let lc = lifecycle_with(tp.clone(), Arc::new(Store::in_memory()));
    created(&lc).await;
    lc.start(&key(), None, "deploy", &[], creds())
        .await
        .unwrap();
    settled(&lc).await;
    // Fail the next update.
    tp.update_failures
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let given = [("size".to_string(), json!(5))];
    lc.update(&key(), &given, &Attributes::new(), creds())
        .await
        .unwrap();
    let inst = settled(&lc).await;
    assert!(inst
        .last_error
        .as_ref()
        .unwrap()
        .message
        .contains("the update broke"));
    assert_eq!(inst.attributes["size"], json!(5));
    // The same values again: not an echo, the update runs again.
    match lc
        .update(&key(), &given, &Attributes::new(), creds())
        .await
        .unwrap()
    {
        Updated::Accepted(a) => assert_eq!(a.operation.operation.name(), "update"),
        other => panic!("expected a new update, got {other:?}"),
    }
    let inst = settled(&lc).await;
    assert!(inst.last_error.is_none());
    assert_eq!(tp.updates.load(std::sync::atomic::Ordering::SeqCst), 2);
    // Once it succeeded, the same values are an echo again.
    assert!(matches!(
        lc.update(&key(), &given, &Attributes::new(), creds())
            .await
            .unwrap(),
        Updated::Unchanged(_)
    ));
}

#[tokio::test]
async fn bad_input_changes_nothing() {
    let lc = lifecycle_with(plugin(None, false, false), Arc::new(Store::in_memory()));
    let e = lc
        .create(
            CreateRequest {
                key: key(),
                kind: orchestrator_kind_id(),
                attributes: vec![("size".into(), json!("three"))],
                mixins: vec![],
            },
            creds(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "attribute 'size': expected a number, got \"three\""
    );
    assert!(lc.store().is_empty());
    let e = lc
        .create(
            CreateRequest {
                key: key(),
                kind: "http://nowhere#thing".into(),
                attributes: vec![],
                mixins: vec![],
            },
            creds(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, LifecycleError::UnknownKind(_)));
    created(&lc).await;
    lc.start(&key(), None, "deploy", &[], creds())
        .await
        .unwrap();
    let before = settled(&lc).await;
    let e = lc
        .update(
            &key(),
            &[("flavor".into(), json!("huge"))],
            &Attributes::new(),
            creds(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "attribute 'flavor': no such flavor");
    assert_eq!(lc.get(&key()).unwrap(), before);
}

#[tokio::test]
async fn a_restart_mid_operation_resumes_it_from_its_stacks() {
    let dir = tempfile::tempdir().unwrap();
    let opts = JournalOptions {
        fsync: false,
        compact_after: 1000,
        sealer: None,
    };
    let backend = Arc::new(Memory::default());
    let gate = Arc::new(Notify::new());
    let deploy_id;
    {
        let (store, _) = Store::open(dir.path(), opts.clone()).unwrap();
        let store = Arc::new(store);
        let lc = lifecycle_on(
            plugin(Some(gate.clone()), false, false),
            store.clone(),
            backend.clone(),
            LifecycleOptions::default(),
        );
        created(&lc).await;
        deploy_id = lc
            .start(&key(), None, "deploy", &[], creds())
            .await
            .unwrap()
            .operation
            .id
            .clone();
        // The stack was created and recorded, then occi-so "crashed"
        // before the operation committed.
        let stack = backend.create(&creds(), &spec()).await.unwrap();
        store
            .update(&key(), |i| {
                i.stacks.push(StackRecord {
                    role: "main".into(),
                    name: stack.name.clone(),
                    stack: Some(stack.clone()),
                    last: None,
                    cloud: None,
                });
                Ok::<(), ()>(())
            })
            .unwrap()
            .1
            .wait()
            .await
            .unwrap();
        store.close();
    }
    let (store, n) = Store::open(dir.path(), opts).unwrap();
    assert_eq!(n, 1);
    let lc = lifecycle_on(
        plugin(None, false, false),
        Arc::new(store),
        backend.clone(),
        LifecycleOptions::default(),
    );
    assert_eq!(lc.resume().await, 1);
    let r = ended(&lc, &deploy_id).await;
    assert_eq!(r.state, OpState::Succeeded, "{:?}", r.error);
    assert_eq!(r.resumed, 1);
    let inst = settled(&lc).await;
    assert_eq!(inst.phase, Phase::Deployed);
    assert!(inst.last_error.is_none());
    assert_eq!(
        backend.stacks.len(),
        1,
        "the recorded stack was followed, not created again"
    );
}

#[tokio::test]
async fn stacks_left_in_progress_by_a_restart_are_followed_until_they_settle() {
    let backend = Arc::new(Memory::default());
    let store = Arc::new(Store::in_memory());
    let lc = lifecycle_on(
        plugin(None, false, false),
        store.clone(),
        backend.clone(),
        LifecycleOptions::default(),
    );
    created(&lc).await;
    // The backend finished the stack; the journal still says in progress.
    let stack = backend.create(&creds(), &spec()).await.unwrap();
    let mut stale = info(&stack, "CREATE_IN_PROGRESS");
    stale.outputs.clear();
    let (_, durable) = store
        .update(&key(), |i| {
            i.stacks.push(StackRecord {
                role: "main".into(),
                name: stack.name.clone(),
                stack: Some(stack.clone()),
                last: Some(stale),
                cloud: None,
            });
            Ok::<(), ()>(())
        })
        .unwrap();
    durable.wait().await.unwrap();
    assert_eq!(lc.settle_stacks(), 1);
    for _ in 0..200 {
        let i = lc.get(&key()).unwrap();
        if i.stacks[0].last.as_ref().unwrap().status.to_string() == "CREATE_COMPLETE" {
            let report = lc.state(&i).await.unwrap();
            assert_eq!(report.attributes["mcn.endpoint.api"], json!("10.0.0.7"));
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the stack record was not settled");
}

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
    })
}

fn lifecycle_with(p: Arc<dyn Orchestrator>, store: Arc<Store>) -> Arc<Lifecycle> {
    let registry = Arc::new(Registry::new());
    registry.set_default("sample").unwrap();
    registry.register(p).unwrap();
    Arc::new(Lifecycle::new(
        store,
        registry,
        Arc::new(Memory::default()),
        LifecycleOptions::default(),
    ))
}

fn creds() -> Credentials {
    Credentials::new("t1", Some(Secret::new("tok")))
}

fn key() -> InstanceKey {
    InstanceKey::new("t1", "/orchestrator/default")
}

async fn created(lc: &Arc<Lifecycle>) -> Arc<Instance> {
    lc.create(
        CreateRequest {
            key: key(),
            kind: orchestrator_kind_id(),
            attributes: vec![],
            mixins: vec![],
        },
        creds(),
    )
    .await
    .unwrap()
}

async fn settled(lc: &Lifecycle) -> Arc<Instance> {
    for _ in 0..200 {
        let i = lc.get(&key()).unwrap();
        if i.running.is_none() {
            return i;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("operation did not finish");
}

#[tokio::test]
async fn the_mcn_sequence_moves_through_the_phases() {
    let lc = lifecycle_with(plugin(None, false, false), Arc::new(Store::in_memory()));
    let inst = created(&lc).await;
    assert_eq!(inst.phase, Phase::Initialised);
    assert_eq!(inst.attributes["flavor"], json!("m1.small"));
    let b = lc.binding_of(&inst).unwrap();
    let terms: Vec<String> = lc
        .applicable(&inst, &b)
        .into_iter()
        .map(|a| a.term)
        .collect();
    assert_eq!(terms, ["deploy"]);

    let e = lc
        .start(&key(), None, "provision", &[], creds())
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "action 'provision' does not apply to an instance that is initialised; actions that apply now: deploy"
    );

    lc.start(&key(), Some(MCN_SERVICE_SCHEME), "deploy", &[], creds())
        .await
        .unwrap();
    let inst = settled(&lc).await;
    assert_eq!(inst.phase, Phase::Deployed);
    assert_eq!(inst.stacks.len(), 1);
    assert!(inst.stacks[0].name.starts_with("so-sample-"));
    assert_eq!(inst.plugin_state.as_json(), &json!({"deployed": true}));
    let report = lc.state(&inst).await.unwrap();
    assert_eq!(
        report.attributes["occi.mcn.stack.state"],
        json!("CREATE_COMPLETE")
    );
    assert_eq!(report.attributes["mcn.endpoint.api"], json!("10.0.0.7"));

    let inst = lc
        .update(
            &key(),
            &[("size".into(), json!("3"))],
            &report.attributes,
            creds(),
        )
        .await
        .unwrap();
    assert_eq!(inst.attributes["size"], json!(3));
    let inst = settled(&lc).await;
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
    let b = lc.binding_of(&inst).unwrap();
    let terms: Vec<String> = lc
        .applicable(&inst, &b)
        .into_iter()
        .map(|a| a.term)
        .collect();
    assert_eq!(terms, ["scale", "notify"]);
    let e = lc
        .start(&key(), None, "scale", &[], creds())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("'count' is required"), "{e}");

    assert_eq!(lc.dispose(&key(), creds()).await.unwrap(), Disposed::Done);
    assert!(matches!(lc.get(&key()), Err(LifecycleError::NotFound(_))));
}

#[tokio::test]
async fn a_second_operation_while_one_runs_is_busy_and_changes_nothing() {
    let gate = Arc::new(Notify::new());
    let lc = lifecycle_with(
        plugin(Some(gate.clone()), false, false),
        Arc::new(Store::in_memory()),
    );
    created(&lc).await;
    lc.start(&key(), None, "deploy", &[], creds())
        .await
        .unwrap();
    let before = lc.get(&key()).unwrap();
    let e = lc
        .start(&key(), None, "deploy", &[], creds())
        .await
        .unwrap_err();
    assert!(
        matches!(e, LifecycleError::Busy { ref running, .. } if running == "deploy"),
        "{e}"
    );
    assert!(matches!(
        lc.dispose(&key(), creds()).await,
        Err(LifecycleError::Busy { .. })
    ));
    assert!(matches!(
        lc.update(
            &key(),
            &[("size".into(), json!(2))],
            &Attributes::new(),
            creds()
        )
        .await,
        Err(LifecycleError::Busy { .. })
    ));
    assert_eq!(lc.get(&key()).unwrap(), before);
    gate.notify_one();
    assert_eq!(settled(&lc).await.phase, Phase::Deployed);
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
            Err(LifecycleError::Busy { .. }) => {}
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
        lc.start(&key(), None, "deploy", &[], creds())
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
        let b = lc.binding_of(&inst).unwrap();
        assert_eq!(lc.applicable(&inst, &b)[0].term, "deploy");
    }
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
async fn a_restart_mid_operation_keeps_the_instance_and_its_stack() {
    let dir = tempfile::tempdir().unwrap();
    let opts = JournalOptions {
        fsync: false,
        compact_after: 1000,
    };
    let gate = Arc::new(Notify::new());
    {
        let (store, _) = Store::open(dir.path(), opts.clone()).unwrap();
        let store = Arc::new(store);
        let lc = lifecycle_with(plugin(Some(gate.clone()), false, false), store.clone());
        created(&lc).await;
        lc.start(&key(), None, "deploy", &[], creds())
            .await
            .unwrap();
        // Let deploy create its stack, then "crash" before it commits.
        store
            .update(&key(), |i| {
                i.stacks.push(StackRecord {
                    role: "main".into(),
                    name: "so-sample-x-main".into(),
                    stack: Some(StackRef {
                        name: "so-sample-x-main".into(),
                        id: "abc".into(),
                    }),
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
    let lc = lifecycle_with(plugin(None, false, false), Arc::new(store));
    assert_eq!(lc.recover(), 1);
    let inst = lc.get(&key()).unwrap();
    assert!(inst.running.is_none());
    assert_eq!(inst.stacks[0].stack.as_ref().unwrap().id, "abc");
    assert!(inst
        .last_error
        .as_ref()
        .unwrap()
        .message
        .contains("interrupted"));
}

#[tokio::test]
async fn stacks_left_in_progress_by_a_restart_are_followed_until_they_settle() {
    let backend = Arc::new(Memory::default());
    let store = Arc::new(Store::in_memory());
    let registry = Arc::new(Registry::new());
    registry.set_default("sample").unwrap();
    registry.register(plugin(None, false, false)).unwrap();
    let lc = Arc::new(Lifecycle::new(
        store.clone(),
        registry,
        backend.clone(),
        LifecycleOptions::default(),
    ));
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

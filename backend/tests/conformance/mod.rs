//! The stack-backend conformance suite: what every `StackBackend` must do,
//! written against `Arc<dyn StackBackend>` so that each backend runs the
//! same cases. A backend gets the whole suite with one test file:
//!
//! ```ignore
//! mod conformance;
//! async fn harness() -> Option<conformance::Harness> { /* build it, or None to skip */ }
//! conformance::conformance_tests!(harness);
//! ```
//!
//! Every case uses its own unique stack names, so cases run concurrently
//! against one engine, and deletes what it created.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use occi_so_sdk::{
    BackendError, Credentials, StackBackend, StackInfo, StackRef, StackSpec, StackUpdate, Stacks,
    ValidateRequest, WaitOptions,
};

/// A backend under test.
pub struct Harness {
    pub backend: Arc<dyn StackBackend>,
    pub creds: Credentials,
    /// How many times the backend has read a stack's state from its engine
    /// so far (Heat GETs), if it reads at all; checks that waiters share
    /// one poll.
    pub reads: Option<Arc<dyn Fn() -> u64 + Send + Sync>>,
    prefix: String,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl Harness {
    /// A harness; stack names get a prefix unique to this process and call.
    pub fn new(backend: Arc<dyn StackBackend>, creds: Credentials) -> Self {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() % 1_000_000_000)
            .unwrap_or(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        Harness {
            backend,
            creds,
            reads: None,
            prefix: format!("cf{}x{t}x{n}", std::process::id()),
        }
    }

    /// With a read counter.
    pub fn with_reads(mut self, reads: Arc<dyn Fn() -> u64 + Send + Sync>) -> Self {
        self.reads = Some(reads);
        self
    }

    /// A unique stack name for `case`.
    pub fn name(&self, case: &str) -> String {
        format!("{}-{case}", self.prefix)
    }

    fn wait_options() -> WaitOptions {
        WaitOptions {
            timeout: Duration::from_secs(180),
        }
    }

    pub async fn wait(&self, stack: &StackRef) -> StackInfo {
        self.backend
            .wait(&self.creds, stack, &Self::wait_options())
            .await
            .unwrap_or_else(|e| panic!("waiting for {}: {e}", stack.name))
    }

    async fn create(&self, spec: &StackSpec) -> StackRef {
        self.backend
            .create(&self.creds, spec)
            .await
            .unwrap_or_else(|e| panic!("creating {}: {e}", spec.name))
    }

    /// Creates `spec`, waits until it settles and checks that it ends
    /// `status` (`CREATE_COMPLETE`...); the stack and what it settled as.
    pub async fn settled_as(&self, spec: &StackSpec, status: &str) -> (StackRef, StackInfo) {
        let stack = self.create(spec).await;
        let info = self.wait(&stack).await;
        assert_eq!(
            info.status.to_string(),
            status,
            "{}: {}",
            spec.name,
            info.status_reason
        );
        (stack, info)
    }

    /// Delete and wait until gone; tolerant (cleanup).
    pub async fn cleanup(&self, stack: &StackRef) {
        if self.backend.delete(&self.creds, stack).await.is_ok() {
            let _ = self
                .backend
                .wait(&self.creds, stack, &Self::wait_options())
                .await;
        }
    }
}

/// Two engine-internal resources, a constrained parameter, three outputs.
pub const BASIC: &str = r#"
heat_template_version: 2018-08-31
description: occi-so conformance stack
parameters:
  greeting:
    type: string
    default: hello
  length:
    type: number
    default: 8
    constraints:
      - range: {min: 4, max: 64}
resources:
  word:
    type: OS::Heat::RandomString
    properties:
      length: {get_param: length}
  echo:
    type: OS::Heat::Value
    properties:
      value: {get_param: greeting}
outputs:
  greeting:
    description: the greeting, echoed
    value: {get_attr: [echo, value]}
  word:
    value: {get_attr: [word, value]}
  length:
    value: {get_param: length}
"#;

/// BASIC with a third output, for PUT.
pub const BASIC_V2: &str = r#"
heat_template_version: 2018-08-31
description: occi-so conformance stack, version 2
parameters:
  greeting:
    type: string
    default: hi
resources:
  echo:
    type: OS::Heat::Value
    properties:
      value: {get_param: greeting}
  extra:
    type: OS::Heat::Value
    properties:
      value: added by PUT
outputs:
  greeting:
    value: {get_attr: [echo, value]}
  extra:
    value: {get_attr: [extra, value]}
"#;

/// A resource that fails at run time.
pub const FAILING: &str = r#"
heat_template_version: 2018-08-31
resources:
  fine:
    type: OS::Heat::None
  boom:
    type: OS::Heat::TestResource
    depends_on: fine
    properties:
      value: doomed
      fail: true
"#;

/// A stack that takes about `secs` seconds to create.
pub fn slow(secs: u32) -> String {
    format!(
        r#"
heat_template_version: 2018-08-31
resources:
  sleeper:
    type: OS::Heat::TestResource
    properties:
      value: awake
      wait_secs: {secs}
outputs:
  value:
    value: {{get_attr: [sleeper, output]}}
"#
    )
}

pub fn spec(name: String, template: &str) -> StackSpec {
    StackSpec {
        name,
        template: template.to_string(),
        parameters: BTreeMap::new(),
        environment: None,
        files: BTreeMap::new(),
        timeout_mins: Some(10),
        disable_rollback: true,
        tags: vec![],
    }
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn text(info: &StackInfo, key: &str) -> String {
    match info.output(key) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => panic!("no output {key} in {:?}", info.outputs),
    }
}

// ---------------------------------------------------------------- cases

/// Create → CREATE_IN_PROGRESS accepted → CREATE_COMPLETE with outputs,
/// parameters as strings, tags kept; `find` by name gives the same ref.
pub async fn create_reaches_complete_with_outputs(h: &Harness) {
    let mut s = spec(h.name("create"), BASIC);
    s.parameters = params(&[("greeting", "bonjour"), ("length", "12")]);
    s.tags = vec!["occi-so".into(), "conformance".into()];
    let stack = h.create(&s).await;
    assert_eq!(stack.name, s.name);
    assert!(!stack.id.is_empty());
    let info = h.wait(&stack).await;
    assert_eq!(
        info.status.to_string(),
        "CREATE_COMPLETE",
        "{}",
        info.status_reason
    );
    assert!(info.status.is_ready());
    assert_eq!(info.stack, stack);
    assert_eq!(text(&info, "greeting"), "bonjour");
    assert_eq!(text(&info, "word").len(), 12);
    assert_eq!(text(&info, "length"), "12");
    assert_eq!(
        info.parameters.get("greeting").map(String::as_str),
        Some("bonjour")
    );
    assert_eq!(
        info.parameters.get("length").map(String::as_str),
        Some("12")
    );
    assert_eq!(
        info.description.as_deref(),
        Some("occi-so conformance stack")
    );
    assert_eq!(
        info.tags,
        vec!["occi-so".to_string(), "conformance".to_string()]
    );
    let found = h.backend.find(&h.creds, &s.name).await.unwrap();
    assert_eq!(found, Some(stack.clone()));
    let again = h.backend.get(&h.creds, &stack).await.unwrap();
    assert_eq!(again.status, info.status);
    h.cleanup(&stack).await;
}

/// PATCH changes one parameter and keeps the others and the template.
pub async fn patch_update_changes_outputs(h: &Harness) {
    let mut s = spec(h.name("patch"), BASIC);
    s.parameters = params(&[("greeting", "hello"), ("length", "10")]);
    let stack = h.create(&s).await;
    let before = h.wait(&stack).await;
    assert_eq!(
        before.status.to_string(),
        "CREATE_COMPLETE",
        "{}",
        before.status_reason
    );
    h.backend
        .update(
            &h.creds,
            &stack,
            &StackUpdate::Patch {
                parameters: params(&[("greeting", "goodbye")]),
            },
        )
        .await
        .unwrap();
    let after = h.wait(&stack).await;
    assert_eq!(
        after.status.to_string(),
        "UPDATE_COMPLETE",
        "{}",
        after.status_reason
    );
    assert_eq!(text(&after, "greeting"), "goodbye");
    assert_eq!(
        text(&after, "length"),
        "10",
        "PATCH kept the other parameter"
    );
    assert_eq!(
        text(&after, "word"),
        text(&before, "word"),
        "untouched resource kept"
    );
    h.cleanup(&stack).await;
}

/// PUT replaces the template; parameters not given fall back to defaults.
pub async fn put_update_changes_outputs(h: &Harness) {
    let mut s = spec(h.name("put"), BASIC);
    s.parameters = params(&[("greeting", "hello")]);
    let stack = h.create(&s).await;
    assert_eq!(h.wait(&stack).await.status.to_string(), "CREATE_COMPLETE");
    h.backend
        .update(
            &h.creds,
            &stack,
            &StackUpdate::Replace {
                template: BASIC_V2.into(),
                parameters: BTreeMap::new(),
                environment: None,
                files: BTreeMap::new(),
                timeout_mins: Some(10),
            },
        )
        .await
        .unwrap();
    let after = h.wait(&stack).await;
    assert_eq!(
        after.status.to_string(),
        "UPDATE_COMPLETE",
        "{}",
        after.status_reason
    );
    assert_eq!(
        text(&after, "greeting"),
        "hi",
        "default of the new template"
    );
    assert_eq!(text(&after, "extra"), "added by PUT");
    assert!(after.output("word").is_none(), "old output gone");
    h.cleanup(&stack).await;
}

/// Delete → DELETE_COMPLETE (or gone); find by name no longer sees it; a
/// second delete is NotFound.
pub async fn delete_removes_the_stack(h: &Harness) {
    let name = h.name("delete");
    let stack = h.create(&spec(name.clone(), BASIC)).await;
    h.wait(&stack).await;
    h.backend.delete(&h.creds, &stack).await.unwrap();
    match h
        .backend
        .wait(&h.creds, &stack, &Harness::wait_options())
        .await
    {
        Ok(info) => assert_eq!(info.status.to_string(), "DELETE_COMPLETE"),
        Err(BackendError::NotFound { .. }) => {}
        Err(e) => panic!("waiting for the delete: {e}"),
    }
    assert_eq!(h.backend.find(&h.creds, &name).await.unwrap(), None);
    let again = h.backend.delete(&h.creds, &stack).await;
    assert!(
        matches!(again, Err(BackendError::NotFound { .. })),
        "{again:?}"
    );
}

/// A resource failing at run time gives CREATE_FAILED (an Ok wait) with
/// Heat's reason naming the resource.
pub async fn runtime_failure_surfaces_reason(h: &Harness) {
    let stack = h.create(&spec(h.name("fail"), FAILING)).await;
    let info = h.wait(&stack).await;
    assert_eq!(info.status.to_string(), "CREATE_FAILED");
    assert!(info.status.is_failed());
    assert!(
        info.status_reason.contains("Resource CREATE failed")
            && info.status_reason.contains("boom"),
        "{}",
        info.status_reason
    );
    let resources = h.backend.resources(&h.creds, &stack).await.unwrap();
    let boom = resources
        .iter()
        .find(|r| r.resource_name == "boom")
        .expect("resource boom listed");
    assert_eq!(boom.resource_status, "CREATE_FAILED");
    assert_eq!(boom.resource_type, "OS::Heat::TestResource");
    h.cleanup(&stack).await;
}

/// Templates and parameters the engine refuses are `Rejected` with its
/// message, and nothing is created.
pub async fn rejected_template_gives_heat_message(h: &Harness) {
    let name = h.name("rejected");
    let bad_type = BASIC.replace("OS::Heat::Value", "OS::Heat::Nope");
    match h
        .backend
        .create(&h.creds, &spec(name.clone(), &bad_type))
        .await
    {
        Err(BackendError::Rejected { kind, message }) => {
            assert_eq!(kind, "StackValidationFailed");
            assert!(message.contains("OS::Heat::Nope"), "{message}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    let mut out_of_range = spec(name.clone(), BASIC);
    out_of_range.parameters = params(&[("length", "2")]);
    match h.backend.create(&h.creds, &out_of_range).await {
        Err(BackendError::Rejected { kind, message }) => {
            assert_eq!(kind, "StackValidationFailed");
            assert!(message.contains("length"), "{message}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    match h
        .backend
        .create(&h.creds, &spec(name.clone(), "resources: ["))
        .await
    {
        Err(BackendError::Rejected { message, .. }) => assert!(!message.is_empty()),
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(h.backend.find(&h.creds, &name).await.unwrap(), None);
}

/// A name in use is a Conflict; unknown stacks are NotFound.
pub async fn name_clash_and_unknown_stacks(h: &Harness) {
    let name = h.name("clash");
    let stack = h.create(&spec(name.clone(), BASIC)).await;
    match h.backend.create(&h.creds, &spec(name.clone(), BASIC)).await {
        Err(BackendError::Conflict { kind, message }) => {
            assert_eq!(kind, "StackExists");
            assert!(message.contains(&name), "{message}");
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    let ghost = StackRef {
        name: h.name("ghost"),
        id: "00000000-0000-4000-8000-000000000000".into(),
    };
    assert!(matches!(
        h.backend.get(&h.creds, &ghost).await,
        Err(BackendError::NotFound { .. })
    ));
    assert_eq!(h.backend.find(&h.creds, &ghost.name).await.unwrap(), None);
    h.wait(&stack).await;
    h.cleanup(&stack).await;
}

/// Resources and events of a finished stack.
pub async fn resources_and_events(h: &Harness) {
    let stack = h.create(&spec(h.name("events"), BASIC)).await;
    h.wait(&stack).await;
    let mut resources = h.backend.resources(&h.creds, &stack).await.unwrap();
    resources.sort_by(|a, b| a.resource_name.cmp(&b.resource_name));
    let names: Vec<_> = resources.iter().map(|r| r.resource_name.as_str()).collect();
    assert_eq!(names, ["echo", "word"]);
    assert!(resources
        .iter()
        .all(|r| r.resource_status == "CREATE_COMPLETE"));
    assert_eq!(resources[1].resource_type, "OS::Heat::RandomString");
    assert!(!resources[1].physical_resource_id.is_empty());
    let events = h.backend.events(&h.creds, &stack).await.unwrap();
    let first = events.first().expect("events");
    let last = events.last().expect("events");
    assert_eq!(first.resource_name, stack.name);
    assert_eq!(first.resource_status, "CREATE_IN_PROGRESS");
    assert_eq!(last.resource_name, stack.name);
    assert_eq!(last.resource_status, "CREATE_COMPLETE");
    for r in ["word", "echo"] {
        assert!(
            events
                .iter()
                .any(|e| e.resource_name == r && e.resource_status == "CREATE_COMPLETE"),
            "{r} completed"
        );
    }
    h.cleanup(&stack).await;
}

/// Validate returns the parameter schema, or Rejected.
pub async fn validate_reports_parameters(h: &Harness) {
    let info = h
        .backend
        .validate(
            &h.creds,
            &ValidateRequest {
                template: BASIC.into(),
                ..ValidateRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        info.description.as_deref(),
        Some("occi-so conformance stack")
    );
    let length = &info.parameters["length"];
    assert_eq!(length["Type"], "Number");
    assert_eq!(length["Default"], 8);
    assert_eq!(length["MinValue"], 4);
    assert_eq!(length["MaxValue"], 64);
    let bad = h
        .backend
        .validate(
            &h.creds,
            &ValidateRequest {
                template: BASIC.replace("OS::Heat::Value", "OS::Heat::Nope"),
                ..ValidateRequest::default()
            },
        )
        .await;
    assert!(
        matches!(&bad, Err(BackendError::Rejected { message, .. }) if message.contains("OS::Heat::Nope")),
        "{bad:?}"
    );
}

/// Twenty stacks created at once all complete, and all delete.
pub async fn concurrent_creates_all_complete(h: &Harness) {
    const N: usize = 20;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        let backend = h.backend.clone();
        let creds = h.creds.clone();
        let mut s = spec(h.name(&format!("many{i}")), BASIC);
        s.parameters = params(&[("greeting", &format!("n{i}"))]);
        tasks.spawn(async move {
            let stack = backend.create(&creds, &s).await?;
            let info = backend
                .wait(&creds, &stack, &Harness::wait_options())
                .await?;
            Ok::<_, BackendError>((i, stack, info))
        });
    }
    let mut stacks = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (i, stack, info) = done.unwrap().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            info.status.to_string(),
            "CREATE_COMPLETE",
            "{}",
            info.status_reason
        );
        assert_eq!(text(&info, "greeting"), format!("n{i}"));
        stacks.push(stack);
    }
    assert_eq!(stacks.len(), N);
    let mut deletes = tokio::task::JoinSet::new();
    for stack in stacks {
        let backend = h.backend.clone();
        let creds = h.creds.clone();
        deletes.spawn(async move {
            backend.delete(&creds, &stack).await?;
            backend.wait(&creds, &stack, &Harness::wait_options()).await
        });
    }
    while let Some(done) = deletes.join_next().await {
        let info = done.unwrap().unwrap();
        assert_eq!(info.status.to_string(), "DELETE_COMPLETE");
    }
}

/// Several waiters on one stack see the same end and share one poll: the
/// reads they cause are those of a single waiter.
pub async fn waiters_share_one_poll(h: &Harness) {
    let stack = h.create(&spec(h.name("waiters"), &slow(3))).await;
    let reads_before = h.reads.as_ref().map(|r| r());
    let mut waiters = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let backend = h.backend.clone();
        let creds = h.creds.clone();
        let stack = stack.clone();
        waiters.spawn(async move { backend.wait(&creds, &stack, &Harness::wait_options()).await });
    }
    while let Some(done) = waiters.join_next().await {
        let info = done.unwrap().unwrap();
        assert_eq!(
            info.status.to_string(),
            "CREATE_COMPLETE",
            "{}",
            info.status_reason
        );
        assert_eq!(text(&info, "value"), "awake");
    }
    if let (Some(before), Some(reads)) = (reads_before, &h.reads) {
        let used = reads() - before;
        // One poll sequence over ~3 s is about 8 reads; eight independent
        // waiters would need eight times that.
        assert!(used <= 14, "8 waiters caused {used} reads");
    }
    h.cleanup(&stack).await;
}

pub use occi_so_testkit::RecordingSink;

/// The plugin-facing `Stacks` handle journals every step: the name before
/// the create, the id after, each status seen, the removal after delete;
/// and a refused create leaves no record.
pub async fn stacks_handle_journals_every_step(h: &Harness) {
    let sink = Arc::new(RecordingSink::default());
    let mut stacks = Stacks::new(
        h.backend.clone(),
        h.creds.clone(),
        sink.clone(),
        h.name("inst"),
        Vec::new(),
    )
    .with_wait_options(Harness::wait_options());
    let info = stacks
        .create_ready("main", spec(String::new(), BASIC))
        .await
        .unwrap();
    assert_eq!(info.status.to_string(), "CREATE_COMPLETE");
    let record = sink.get("main").expect("journaled");
    assert_eq!(record.name, h.name("inst-main"));
    assert_eq!(record.stack.as_ref().map(|s| &s.id), Some(&info.stack.id));
    assert_eq!(record.last.as_ref().map(|l| l.status), Some(info.status));

    let updated = stacks
        .update_ready(
            "main",
            &StackUpdate::Patch {
                parameters: params(&[("greeting", "salut")]),
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.status.to_string(), "UPDATE_COMPLETE");
    assert_eq!(text(&updated, "greeting"), "salut");
    assert_eq!(
        sink.get("main")
            .and_then(|r| r.last)
            .map(|l| l.status.to_string()),
        Some("UPDATE_COMPLETE".into())
    );

    let refused = stacks
        .create(
            "broken",
            spec(String::new(), "heat_template_version: 1999-01-01"),
        )
        .await;
    assert!(
        matches!(refused, Err(BackendError::Rejected { .. })),
        "{refused:?}"
    );
    assert!(
        sink.get("broken").is_none(),
        "a refused create leaves no record"
    );

    stacks.delete_all().await.unwrap();
    assert!(sink.get("main").is_none());
    assert!(stacks.records().is_empty());
    assert_eq!(
        h.backend
            .find(&h.creds, &h.name("inst-main"))
            .await
            .unwrap(),
        None
    );
}

/// `Stacks::create_ready` makes a stack that ends `CREATE_FAILED` an error
/// carrying Heat's reason; creating the role again replaces the failed
/// stack (deleted first) instead of waiting on it again.
pub async fn create_ready_fails_with_heat_reason_and_retries_clean(h: &Harness) {
    let sink = Arc::new(RecordingSink::default());
    let mut stacks = Stacks::new(
        h.backend.clone(),
        h.creds.clone(),
        sink.clone(),
        h.name("ready"),
        Vec::new(),
    )
    .with_wait_options(Harness::wait_options());
    let first = match stacks
        .create_ready("main", spec(String::new(), FAILING))
        .await
    {
        Err(BackendError::StackFailed {
            stack,
            status,
            reason,
        }) => {
            assert_eq!(stack, h.name("ready-main"));
            assert_eq!(status.to_string(), "CREATE_FAILED");
            assert!(reason.contains("boom"), "{reason}");
            sink.get("main")
                .and_then(|r| r.stack)
                .expect("the failed stack stays recorded")
        }
        other => panic!("expected StackFailed, got {other:?}"),
    };
    let again = stacks
        .create_ready("main", spec(String::new(), BASIC))
        .await
        .unwrap();
    assert_eq!(again.status.to_string(), "CREATE_COMPLETE");
    assert_ne!(
        again.stack.id, first.id,
        "a new stack replaces the failed one"
    );
    assert_eq!(
        h.backend
            .find(&h.creds, &h.name("ready-main"))
            .await
            .unwrap()
            .map(|s| s.id),
        Some(again.stack.id.clone())
    );
    stacks.delete_all().await.unwrap();
}

/// One `#[tokio::test]` per case, each with its own harness from `$make`
/// (an `async fn() -> Option<Harness>`; `None` skips, having said why).
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@cases $make;
            create_reaches_complete_with_outputs,
            patch_update_changes_outputs,
            put_update_changes_outputs,
            delete_removes_the_stack,
            runtime_failure_surfaces_reason,
            rejected_template_gives_heat_message,
            name_clash_and_unknown_stacks,
            resources_and_events,
            validate_reports_parameters,
            concurrent_creates_all_complete,
            waiters_share_one_poll,
            stacks_handle_journals_every_step,
            create_ready_fails_with_heat_reason_and_retries_clean,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if let Some(h) = $make().await {
                    conformance::$case(&h).await;
                }
            }
        )*
    };
}

//! The OpenStack backend against the real local Heat (`scripts/heat-local.sh`,
//! URL in `OCCI_SO_TEST_HEAT_URL`): the shared conformance suite, plus what
//! only a real Heat has (software-config resources, the catalog, stubs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

#[macro_use]
mod conformance;

use std::collections::BTreeMap;
use std::sync::Arc;

use conformance::{spec, Harness};
use occi_so_backend::{OpenStackBackend, OpenStackConfig};
use occi_so_sdk::{BackendError, Credentials, Secret, StackBackend};

async fn harness() -> Option<Harness> {
    let url = occi_so_testkit::require_heat()?;
    let backend = Arc::new(OpenStackBackend::new(OpenStackConfig::local_heat(url)).unwrap());
    let counter = backend.clone();
    Some(
        Harness::new(backend, Credentials::new("admin", None))
            .with_reads(Arc::new(move || counter.stats().heat_gets)),
    )
}

conformance_tests!(harness);

/// A harness on the local Heat at `url` for `creds`: with the
/// `local_heat` stubs merged into every stack's environment, or `bare`
/// (every type is Heat's own).
fn local(url: &str, bare: bool, creds: Credentials) -> Harness {
    let mut config = OpenStackConfig::local_heat(url);
    if bare {
        config.resource_registry = BTreeMap::new();
    }
    Harness::new(Arc::new(OpenStackBackend::new(config).unwrap()), creds)
}

/// The software-config family works for real on the local Heat (its noauth
/// catalog lists itself as `orchestration`): configs are stored by Heat's
/// software-config API and a MultipartMime really assembles its parts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn software_config_family_runs_for_real() {
    let Some(url) = occi_so_testkit::require_heat() else {
        return;
    };
    // No stubs at all: every type here is Heat's own.
    let h = local(&url, true, Credentials::new("admin", None));
    let template = r##"
heat_template_version: 2018-08-31
resources:
  cloud:
    type: OS::Heat::CloudConfig
    properties:
      cloud_config:
        package_update: true
  script:
    type: OS::Heat::SoftwareConfig
    properties:
      group: script
      config: "#!/bin/sh\necho occi-so\n"
  structured:
    type: OS::Heat::StructuredConfig
    properties:
      config: {answer: 42}
  mime:
    type: OS::Heat::MultipartMime
    properties:
      parts:
        - config: {get_resource: cloud}
        - config: {get_resource: script}
  server:
    type: OS::Heat::None
  deploy:
    type: OS::Heat::SoftwareDeployment
    properties:
      config: {get_resource: script}
      server: {get_resource: server}
      signal_transport: NO_SIGNAL
outputs:
  script:
    value: {get_attr: [script, config]}
  mime:
    value: {get_attr: [mime, config]}
  structured:
    value: {get_attr: [structured, config]}
"##;
    let stack = h
        .backend
        .create(&h.creds, &spec(h.name("swconfig"), template))
        .await
        .unwrap();
    let info = h.wait(&stack).await;
    assert_eq!(
        info.status.to_string(),
        "CREATE_COMPLETE",
        "{}",
        info.status_reason
    );
    assert_eq!(
        info.output("script").and_then(|v| v.as_str()),
        Some("#!/bin/sh\necho occi-so\n")
    );
    let mime = info.output("mime").and_then(|v| v.as_str()).unwrap_or("");
    assert!(mime.starts_with("Content-Type: multipart/mixed"), "{mime}");
    assert!(
        mime.contains("#cloud-config") && mime.contains("echo occi-so"),
        "{mime}"
    );
    assert_eq!(
        info.output("structured").map(|v| &v["answer"]),
        Some(&serde_json::json!(42))
    );
    let resources = h.backend.resources(&h.creds, &stack).await.unwrap();
    let deploy = resources
        .iter()
        .find(|r| r.resource_name == "deploy")
        .unwrap();
    assert_eq!(deploy.resource_type, "OS::Heat::SoftwareDeployment");
    assert_eq!(deploy.resource_status, "CREATE_COMPLETE");
    assert!(!deploy.physical_resource_id.is_empty());
    h.cleanup(&stack).await;
}

/// What the local Heat cannot do without Keystone, and what the
/// `local_heat` stubs make of it: a WaitCondition fails for real without
/// them, and completes as `OS::Heat::None` with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_conditions_need_keystone_and_are_stubbed() {
    let Some(url) = occi_so_testkit::require_heat() else {
        return;
    };
    let template = r#"
heat_template_version: 2018-08-31
resources:
  handle: {type: OS::Heat::WaitConditionHandle}
  wait:
    type: OS::Heat::WaitCondition
    properties: {handle: {get_resource: handle}, timeout: 30}
outputs:
  curl: {value: {get_attr: [handle, curl_cli]}}
"#;
    let bare = local(
        &url,
        true,
        Credentials::new("admin", Some(Secret::new("any-token"))),
    );
    let (stack, info) = bare
        .settled_as(&spec(bare.name("waitcond"), template), "CREATE_FAILED")
        .await;
    assert!(
        info.status_reason.contains("identity"),
        "{}",
        info.status_reason
    );
    bare.cleanup(&stack).await;

    let stubbed = local(&url, false, Credentials::new("admin", None));
    let (stack, info) = stubbed
        .settled_as(&spec(stubbed.name("waitstub"), template), "CREATE_COMPLETE")
        .await;
    assert_eq!(info.output("curl"), Some(&serde_json::Value::Null));
    stubbed.cleanup(&stack).await;
}

/// Nova/Neutron templates: refused by the bare Heat (400 with Heat's
/// message), deployable with the registry stubs merged into the request's
/// environment; an explicit mapping in the caller's environment wins (and
/// then the caller owns that namespace: our `OS::Neutron::*` is left out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_resources_are_refused_or_stubbed() {
    let Some(url) = occi_so_testkit::require_heat() else {
        return;
    };
    let template = r#"
heat_template_version: 2018-08-31
resources:
  net:
    type: OS::Neutron::Net
  server:
    type: OS::Nova::Server
    properties:
      image: cirros
      flavor: m1.tiny
      networks: [{network: {get_resource: net}}]
outputs:
  ip:
    value: {get_attr: [server, first_address]}
  marker:
    value: {get_attr: [net, output]}
"#;
    let creds = Credentials::new("admin", None);
    let h = local(&url, true, creds.clone());
    match h
        .backend
        .create(&creds, &spec(h.name("nova"), template))
        .await
    {
        Err(BackendError::Rejected { kind, message }) => {
            assert_eq!(kind, "ResourceTypeUnavailable");
            assert!(
                message.contains("nova") || message.contains("neutron"),
                "{message}"
            );
        }
        other => panic!("expected Rejected, got {other:?}"),
    }

    let stubbed = local(&url, false, creds.clone());
    let mut s = spec(stubbed.name("novastub"), template);
    s.environment = Some("resource_registry:\n  OS::Neutron::Net: OS::Heat::TestResource\n".into());
    let (stack, info) = stubbed.settled_as(&s, "CREATE_COMPLETE").await;
    assert_eq!(info.output("ip"), Some(&serde_json::Value::Null));
    // The caller's own mapping won over the stub: a TestResource has an
    // output, an OS::Heat::None has none.
    assert_eq!(
        info.output("marker").and_then(|v| v.as_str()),
        Some("test_string"),
        "caller's mapping kept"
    );
    stubbed.cleanup(&stack).await;
}

/// Pass-through sends `X-Auth-Project`, which a noauth Heat takes as the
/// caller's project: two tenants' stacks are apart, and the same name can
/// be used by both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_kept_apart() {
    let Some(url) = occi_so_testkit::require_heat() else {
        return;
    };
    let templ = url.replace("/v1/admin", "/v1/%(tenant_id)s");
    let backend: Arc<dyn StackBackend> =
        Arc::new(OpenStackBackend::new(OpenStackConfig::local_heat(templ)).unwrap());
    let a = Harness::new(backend.clone(), Credentials::new("tenant-a", None));
    let b = Credentials::new("tenant-b", None);
    let name = a.name("tenant");
    let in_a = backend
        .create(&a.creds, &spec(name.clone(), conformance::BASIC))
        .await
        .unwrap();
    assert_eq!(
        backend.find(&b, &name).await.unwrap(),
        None,
        "b cannot see a's stack"
    );
    let in_b = backend
        .create(&b, &spec(name.clone(), conformance::BASIC))
        .await
        .unwrap();
    assert_ne!(in_a.id, in_b.id);
    a.wait(&in_a).await;
    let b_h = Harness::new(backend.clone(), b.clone());
    b_h.wait(&in_b).await;
    a.cleanup(&in_a).await;
    b_h.cleanup(&in_b).await;
}

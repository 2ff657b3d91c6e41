//! What the plugin's integration tests share: the test Heat (or a reason
//! to skip), a Neutron stand-in that hands out floating IPs on that Heat,
//! and lifecycle contexts as the server builds them.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use occi_so_backend::openstack::LOCAL_HEAT_STUBS;
use occi_so_backend::{OpenStackBackend, OpenStackConfig};
use occi_so_plugin_conpaas::Conpaas;
use occi_so_sdk::{
    Attributes, Credentials, LifecycleCtx, NullSink, Operation, Orchestrator, PluginError,
    StackBackend, StackInfo, Stacks, WaitOptions,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// `OCCI_SO_TEST_HEAT_URL`, or `None` after saying why the test is skipped
/// (a failure instead when `OCCI_SO_REQUIRE_HEAT=1`).
pub fn heat_url(test: &str) -> Option<String> {
    match std::env::var("OCCI_SO_TEST_HEAT_URL") {
        Ok(v) if !v.trim().is_empty() => Some(v.trim().trim_end_matches('/').to_string()),
        _ => {
            if std::env::var("OCCI_SO_REQUIRE_HEAT").as_deref() == Ok("1") {
                panic!("{test}: OCCI_SO_TEST_HEAT_URL is not set but OCCI_SO_REQUIRE_HEAT=1");
            }
            eprintln!("{test}: skipped: OCCI_SO_TEST_HEAT_URL is not set (scripts/test.sh starts a local Heat)");
            None
        }
    }
}

/// A provider template standing in for Neutron's floating IPs on the local
/// Heat (which has no Neutron): every attribute of `OS::Neutron::FloatingIP`
/// as an output, and a fresh address from TEST-NET-2 each time.
pub const FLOATING_IP_PROVIDER: &str = include_str!("../fixtures/floating-ip-provider.yaml");

/// Serves [`FLOATING_IP_PROVIDER`] on loopback for as long as the test's
/// runtime lives; returns its URL.
pub async fn serve_floating_ip_provider() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65536 {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = FLOATING_IP_PROVIDER.as_bytes();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-yaml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(body).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    format!("http://{addr}/floating-ip.yaml")
}

/// The local test Heat as `OpenStackConfig::local_heat` sets it up, except
/// that floating IPs come from `floating_ip_provider` (Heat looks a
/// wildcard up before an exact type, so the Neutron types are listed one
/// by one instead of `OS::Neutron::*`).
pub fn backend_with_floating_ips(heat: &str, floating_ip_provider: &str) -> Arc<OpenStackBackend> {
    let mut config = OpenStackConfig::local_heat(heat);
    let mut registry: BTreeMap<String, String> = LOCAL_HEAT_STUBS
        .iter()
        .filter(|(k, _)| *k != "OS::Neutron::*")
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    registry.insert("OS::Neutron::Port".into(), "OS::Heat::None".into());
    registry.insert("OS::Neutron::SecurityGroup".into(), "OS::Heat::None".into());
    registry.insert(
        "OS::Neutron::FloatingIP".into(),
        floating_ip_provider.into(),
    );
    config.resource_registry = registry;
    Arc::new(OpenStackBackend::new(config).expect("backend"))
}

/// The plain local test Heat: every cloud resource a stub without attributes.
pub fn stub_backend(heat: &str) -> Arc<OpenStackBackend> {
    Arc::new(OpenStackBackend::new(OpenStackConfig::local_heat(heat)).expect("backend"))
}

/// A stack-name prefix of its own for each test run.
pub fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("cps-{test}-{:x}", nanos & 0xffff_ffff)
}

/// The caller the local Heat sees.
pub fn creds() -> Credentials {
    Credentials::new("admin", None)
}

/// The instance attributes as the server holds them: the kind's defaults,
/// then `given`.
pub fn attributes(plugin: &Conpaas, given: &[(&str, Value)]) -> Attributes {
    let mut a = Attributes::new();
    for spec in &plugin.info().kind.attributes {
        if let Some(d) = &spec.default {
            a.insert(spec.name.clone(), d.clone());
        }
    }
    for (k, v) in given {
        a.insert(k.to_string(), v.clone());
    }
    a
}

/// A lifecycle context on `backend` with the named `clouds`.
pub fn context(
    prefix: &str,
    backend: Arc<dyn StackBackend>,
    clouds: BTreeMap<String, Arc<dyn StackBackend>>,
    attributes: Attributes,
) -> LifecycleCtx {
    let stacks = Stacks::new(backend, creds(), Arc::new(NullSink), prefix, Vec::new())
        .with_clouds(clouds)
        .with_wait_options(WaitOptions {
            timeout: std::time::Duration::from_secs(300),
        });
    LifecycleCtx {
        instance_id: prefix.to_string(),
        location: format!("/conpaas/{prefix}"),
        credentials: creds(),
        attributes,
        state: Default::default(),
        stacks,
    }
}

/// Runs an action as the server does: `validate` first (its error is the
/// 400), then the call.
pub async fn act(
    plugin: &Conpaas,
    ctx: &mut LifecycleCtx,
    term: &str,
    params: &[(&str, Value)],
) -> Result<(), PluginError> {
    let parameters: Attributes = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let op = Operation::action(term, parameters);
    plugin.validate(&op, &ctx.attributes).await?;
    plugin.run(&op, ctx).await
}

/// The stack of `role` as its backend reports it now.
pub async fn stack(ctx: &mut LifecycleCtx, role: &str) -> StackInfo {
    ctx.stacks.refresh(role).await.expect("stack readable")
}

/// How many resources of `ty` the stack of `role` has.
pub async fn count_resources(ctx: &LifecycleCtx, role: &str, ty: &str) -> usize {
    let record = ctx.stacks.get(role).expect("stack recorded");
    let stack = record.stack.clone().expect("stack id");
    let backend = ctx
        .stacks
        .backend_of(record.cloud.as_deref())
        .expect("backend")
        .clone();
    backend
        .resources(ctx.stacks.credentials(), &stack)
        .await
        .expect("resources")
        .iter()
        .filter(|r| r.resource_type == ty)
        .count()
}

/// The stack roles of the instance.
pub fn roles(ctx: &LifecycleCtx) -> Vec<String> {
    let mut v: Vec<String> = ctx
        .stacks
        .records()
        .iter()
        .map(|r| r.role.clone())
        .collect();
    v.sort();
    v
}

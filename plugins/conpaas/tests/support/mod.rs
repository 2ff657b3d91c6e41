//! What the plugin's integration tests share: a Neutron stand-in that
//! hands out floating IPs on the local Heat, and lifecycle contexts as the
//! server builds them.

#![allow(dead_code, unused_imports)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use occi_so_backend::{OpenStackBackend, OpenStackConfig};
use occi_so_plugin_conpaas::Conpaas;
use occi_so_sdk::{
    Attributes, Credentials, LifecycleCtx, NullSink, Operation, Orchestrator, PluginError,
    StackBackend, StackInfo, Stacks, WaitOptions,
};
use occi_so_testkit::serve_static;
use serde_json::Value;

mod local_heat;

pub use local_heat::{FLOATING_IP_PREFIX, FLOATING_IP_PROVIDER};

/// Serves [`FLOATING_IP_PROVIDER`] on loopback for as long as the test's
/// runtime lives; returns its URL.
pub async fn serve_floating_ip_provider() -> String {
    serve_static(
        "floating-ip.yaml",
        "application/x-yaml",
        FLOATING_IP_PROVIDER,
    )
    .await
}

/// A backend on the local Heat whose floating IPs come from `provider`.
pub fn backend_with_floating_ips(heat: &str, provider: &str) -> Arc<OpenStackBackend> {
    let config = local_heat::with_floating_ips(heat, provider);
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
        mixins: Vec::new(),
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
